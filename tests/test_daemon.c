// SPDX-License-Identifier: GPL-2.0
/*
 * The daemon's plumbing that is not the data plane: sd_notify by hand (path
 * and abstract sockets), the D-Bus question that tells a systemd restart
 * from a stop (against tests/tools/fake_systemd.py, which checks every
 * field we send, and against a real dbus-daemon for the wire format), and
 * the config -> desired data plane state conversion.
 */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "kha_test.h"
#include "config.h"
#include "daemon.h"
#include "systemd.h"
#include "log.h"

static char tmpdir[64];

static int suite_init(void)
{
	kha_log_init(KHA_LOG_WARN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ld-td.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : 1;
}

static int suite_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) ? 1 : 0;
}

static int dgram_listen(const char *name, bool abstract)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 2 };
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	if (abstract) {
		memcpy(sun.sun_path + 1, name, strlen(name));
		len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
	} else {
		strcpy(sun.sun_path, name);
		len = sizeof(sun);
	}
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, len))
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void test_sd_notify(void)
{
	char path[128], abs_name[64], env[128], buf[256];
	ssize_t n;
	int fd;

	/* not under systemd: nothing to do, no error */
	unsetenv("NOTIFY_SOCKET");
	CU_ASSERT_EQUAL(kha_sd_notify("READY=1"), 0);

	snprintf(path, sizeof(path), "%s/notify", tmpdir);
	fd = dgram_listen(path, false);
	CU_ASSERT_FATAL(fd >= 0);
	setenv("NOTIFY_SOCKET", path, 1);
	CU_ASSERT_EQUAL(kha_sd_notify("READY=1\nSTATUS=running"), 0);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	CU_ASSERT_FATAL(n > 0);
	buf[n] = '\0';
	CU_ASSERT_STRING_EQUAL(buf, "READY=1\nSTATUS=running");
	close(fd);

	/* '@' is the abstract namespace: no file, leading NUL */
	snprintf(abs_name, sizeof(abs_name), "ld-test-notify-%d", getpid());
	fd = dgram_listen(abs_name, true);
	CU_ASSERT_FATAL(fd >= 0);
	snprintf(env, sizeof(env), "@%s", abs_name);
	setenv("NOTIFY_SOCKET", env, 1);
	CU_ASSERT_EQUAL(kha_sd_notify("RELOADING=1"), 0);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	CU_ASSERT_FATAL(n > 0);
	buf[n] = '\0';
	CU_ASSERT_STRING_EQUAL(buf, "RELOADING=1");
	close(fd);

	/* nobody listening: an error, not a hang */
	snprintf(env, sizeof(env), "%s/nobody", tmpdir);
	setenv("NOTIFY_SOCKET", env, 1);
	CU_ASSERT(kha_sd_notify("READY=1") < 0);
	unsetenv("NOTIFY_SOCKET");
}

static pid_t spawn(char *const argv[])
{
	pid_t p = fork();

	if (p == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	return p;
}

static bool wait_file(const char *path, const char *text)
{
	char buf[4096];
	int i;

	for (i = 0; i < 100; i++) {
		FILE *f = fopen(path, "r");
		size_t n = 0;

		if (f) {
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
		}
		buf[n] = '\0';
		if (strstr(buf, text))
			return true;
		usleep(50000);
	}
	return false;
}

static bool file_has(const char *path, const char *text)
{
	return wait_file(path, text);
}

/* run the fake systemd answering `jobtype` for our pid */
static pid_t fake_systemd(const char *sock, const char *jobtype,
			  const char *log)
{
	char pid[16];
	char *argv[] = { "python3", "tests/tools/fake_systemd.py", (char *)sock,
			 pid, (char *)jobtype, (char *)log, NULL };
	pid_t p;

	snprintf(pid, sizeof(pid), "%d", getpid());
	unlink(log);
	p = spawn(argv);
	if (!wait_file(log, "ready")) {
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		return -1;
	}
	return p;
}

static void test_job_type_fake_systemd(void)
{
	static const char *const types[] = { "restart", "stop", "try-restart" };
	char sock[128], log[128], buf[64];
	unsigned int i;
	pid_t p;
	int ret;

	snprintf(sock, sizeof(sock), "%s/private", tmpdir);
	snprintf(log, sizeof(log), "%s/fake.log", tmpdir);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		p = fake_systemd(sock, types[i], log);
		CU_ASSERT_FATAL(p > 0);
		buf[0] = '\0';
		ret = kha_systemd_job_type_at(sock, false, getpid(), buf,
					      sizeof(buf));
		CU_ASSERT_EQUAL(ret, 0);
		CU_ASSERT_STRING_EQUAL(buf, types[i]);
		/* the fake saw exactly what systemd needs to see */
		CU_ASSERT(file_has(log, "GetUnitByPID"));
		CU_ASSERT(file_has(log, "org.freedesktop.systemd1.Unit Job"));
		CU_ASSERT(file_has(log, "org.freedesktop.systemd1.Job JobType"));
		CU_ASSERT(!file_has(log, "error") || ret);
		/* a pid in no unit: an error reply, reported as such */
		CU_ASSERT_EQUAL(kha_systemd_job_type_at(sock, false, 1, buf,
							sizeof(buf)),
				-EREMOTEIO);
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
	}
	/* no job on the unit */
	p = fake_systemd(sock, "none", log);
	CU_ASSERT_FATAL(p > 0);
	CU_ASSERT_EQUAL(kha_systemd_job_type_at(sock, false, getpid(), buf,
						sizeof(buf)),
			-ENOENT);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	/* nothing listening */
	CU_ASSERT(kha_systemd_job_type_at(sock, false, getpid(), buf,
					  sizeof(buf)) < 0);
}

/*
 * A real dbus-daemon validates our wire format: it accepts the auth, the
 * Hello and the method call (a malformed message gets the connection
 * closed), and answers "no such service" with an error reply.
 */
static void test_job_type_real_bus(void)
{
	char sock[128], addr[160], conf[128], buf[64];
	FILE *f;
	pid_t p;
	int ret, i;
	struct stat st;

	if (access("/usr/bin/dbus-daemon", X_OK)) {
		CU_FAIL("dbus-daemon is not installed");
		return;
	}
	snprintf(sock, sizeof(sock), "%s/bus", tmpdir);
	snprintf(addr, sizeof(addr), "--address=unix:path=%s", sock);
	snprintf(conf, sizeof(conf), "%s/bus.conf", tmpdir);
	f = fopen(conf, "w");
	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
		   " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		   "<busconfig><type>session</type><listen>unix:path=%s</listen>\n"
		   "<auth>EXTERNAL</auth><policy context=\"default\">\n"
		   "<allow send_destination=\"*\" eavesdrop=\"false\"/>\n"
		   "<allow receive_sender=\"*\"/><allow own=\"*\"/></policy></busconfig>\n",
		sock);
	fclose(f);
	{
		char cf[160];
		char *argv[] = { "dbus-daemon", "--nofork", "--nopidfile", cf,
				 NULL };

		snprintf(cf, sizeof(cf), "--config-file=%s", conf);
		p = spawn(argv);
	}
	for (i = 0; i < 100 && stat(sock, &st); i++)
		usleep(20000);
	CU_ASSERT_FATAL(!stat(sock, &st));
	ret = kha_systemd_job_type_at(sock, true, getpid(), buf, sizeof(buf));
	CU_ASSERT_EQUAL(ret, -EREMOTEIO);
	kill(p, SIGTERM);
	waitpid(p, NULL, 0);
}

/* an IPv4 address of this machine, not loopback */
static bool local_ipv4(char *buf, size_t len)
{
	struct ifaddrs *ifa, *i;
	bool found = false;

	if (getifaddrs(&ifa))
		return false;
	for (i = ifa; i && !found; i = i->ifa_next) {
		struct in_addr a;

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		if ((ntohl(a.s_addr) >> 24) == 127)
			continue;
		inet_ntop(AF_INET, &a, buf, len);
		found = true;
	}
	freeifaddrs(ifa);
	return found;
}

static void test_vips_from_config(void)
{
	char text[512], me[INET_ADDRSTRLEN];
	struct kha_config *cfg = calloc(1, sizeof(*cfg));
	struct kha_dp_vip *v = calloc(KHA_MAX_VIPS, sizeof(*v));
	char err[256] = "";
	int n;

	CU_ASSERT_FATAL(cfg && v);
	CU_ASSERT_FATAL(local_ipv4(me, sizeof(me)));
	snprintf(text, sizeof(text),
		 "interface lo\n"
		 "vip 10.96.1.100:8443 {\n"
		 "\tcheck none\n"
		 "\tbackend %s:6443 weight 3\n"
		 "\tbackend 10.96.1.12:6444\n"
		 "}\n"
		 "vip 10.96.1.101:443 {\n"
		 "\tcheck none\n"
		 "\tbackend 10.96.1.13:6443 weight 0\n"
		 "}\n",
		 me);
	if (kha_config_parse("t.conf", text, cfg, err, sizeof(err)))
		fprintf(stderr, "%s\n", err);
	CU_ASSERT_FATAL(err[0] == '\0');
	n = kha_dp_vips_from_config(cfg, v);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(v[0].addr.v4, inet_addr("10.96.1.100"));
	CU_ASSERT_EQUAL(v[0].port, 8443);
	CU_ASSERT_EQUAL(v[0].nr_backends, 2);
	CU_ASSERT_EQUAL(v[0].backends[0].port, 6443);
	CU_ASSERT_EQUAL(v[0].backends[0].weight, 3);
	/* an address of this node: DNAT only */
	CU_ASSERT(v[0].backends[0].local);
	CU_ASSERT(!v[0].backends[1].local);
	CU_ASSERT(v[0].backends[1].healthy);
	CU_ASSERT_EQUAL(v[1].port, 443);
	CU_ASSERT_EQUAL(v[1].backends[0].weight, 0);
	free(cfg);
	free(v);
}

static CU_TestInfo daemon_tests[] = {
	{ "sd_notify to a path and an abstract socket", test_sd_notify },
	{ "systemd job type over D-Bus (fake systemd checks every field)",
	  test_job_type_fake_systemd },
	{ "D-Bus wire format accepted by a real dbus-daemon",
	  test_job_type_real_bus },
	{ "config -> desired data plane state", test_vips_from_config },
	CU_TEST_INFO_NULL,
};

static const struct kha_suite suites[] = {
	{ "daemon", daemon_tests, suite_init, suite_cleanup },
	{ 0 },
};

KHA_TEST_MAIN(suites)
