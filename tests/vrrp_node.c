// SPDX-License-Identifier: GPL-2.0
/*
 * Test driver: only the VRRP node of a kha-xdp config, on the daemon's
 * event loop, so the vmtests can exercise VRRP against keepalived without
 * the data plane. Not installed.
 *
 *   vrrp_node -c FILE [-s STATUS_FILE]
 *   SIGTERM/SIGINT  stop as the daemon does (priority 0, VIPs removed)
 *   SIGQUIT         exit keeping the VIPs (kha_vrrp_release)
 *   SIGUSR1/SIGUSR2 no healthy backend: on / off
 *   SIGHUP          reload the file (kha_vrrp_reconfigure)
 * The status file ({"vrrp": kha_vrrp_status_json()}) is rewritten on every
 * state change and every 100 ms.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "vrrp_io.h"

static struct kha_vrrp_node *node;
static struct kha_loop *loop;
static const char *conf_path, *status_path;
static struct kha_timer status_timer;
static bool quit_keep;

static void write_status(void)
{
	struct kha_vrrp_status st;
	char tmp[512];
	FILE *f;

	if (!status_path || !node)
		return;
	kha_vrrp_status(node, &st);
	snprintf(tmp, sizeof(tmp), "%s.tmp", status_path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	/* the same object `kha-xdp status --json` shows under "vrrp" */
	fputs("{\"vrrp\":", f);
	kha_vrrp_status_json(&st, f);
	fputs("}\n", f);
	fclose(f);
	rename(tmp, status_path);
}

static void status_cb(struct kha_loop *l, void *arg)
{
	write_status();
	kha_timer_arm_in(l, &status_timer, 100);
}

static void on_state(void *arg, enum kha_vrrp_state st)
{
	printf("state %s\n", kha_vrrp_state_name(st));
	fflush(stdout);
	write_status();
}

static void sig_cb(struct kha_loop *l, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGUSR1:
			kha_vrrp_set_faults(node, true, false);
			break;
		case SIGUSR2:
			kha_vrrp_set_faults(node, false, false);
			break;
		case SIGHUP: {
			static struct kha_config cfg;
			char err[256];

			if (kha_config_load(conf_path, &cfg, err, sizeof(err)))
				log_err("vrrp_node", "%s", err);
			else if (kha_vrrp_reconfigure(node, &cfg))
				log_err("vrrp_node", "reconfigure refused");
			write_status();
			break;
		}
		case SIGQUIT:
			quit_keep = true;
			kha_loop_stop(l);
			break;
		default:
			kha_loop_stop(l);
		}
	}
}

int main(int argc, char **argv)
{
	static struct kha_config cfg;
	char err[256];
	sigset_t set;
	int opt, sfd;

	while ((opt = getopt(argc, argv, "c:s:")) != -1) {
		if (opt == 'c')
			conf_path = optarg;
		else if (opt == 's')
			status_path = optarg;
		else
			return 2;
	}
	if (!conf_path) {
		fprintf(stderr, "usage: vrrp_node -c FILE [-s STATUS]\n");
		return 2;
	}
	kha_log_init(KHA_LOG_INFO);
	if (kha_config_load(conf_path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	loop = kha_loop_new();
	if (!loop || sfd < 0)
		return 1;
	kha_loop_add_fd(loop, sfd, EPOLLIN, sig_cb, NULL);
	node = kha_vrrp_start(loop, &cfg, on_state, NULL);
	if (!node) {
		fprintf(stderr, "vrrp start: %s\n", strerror(errno));
		return 1;
	}
	kha_timer_init(&status_timer, status_cb, NULL);
	status_cb(loop, NULL);
	kha_loop_run(loop);
	kha_timer_cancel(loop, &status_timer);
	if (quit_keep)
		kha_vrrp_release(node);
	else
		kha_vrrp_stop(node);
	node = NULL;
	kha_loop_free(loop);
	return 0;
}
