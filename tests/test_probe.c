// SPDX-License-Identifier: GPL-2.0
/*
 * Real probes (user/probe.c) against real listeners on 127.0.0.1 inside a
 * private network namespace (unshare(CLONE_NEWNET), when root): TCP, HTTP
 * and HTTPS checks, each failure kind, rise/fall over time, reconfiguration,
 * and 256 backends checked every 100 ms without falling behind.
 *
 * The servers run in one thread with its own epoll; the prober runs on a
 * kha_loop in the main thread, as in the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "kha_test.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "probe.h"

/* ---- test servers ---- */

enum srv_mode {
	SRV_ACCEPT_CLOSE, /* accept and close: a TCP check target */
	SRV_HTTP,         /* answer one HTTP/1.1 request with `status` */
	SRV_HTTPS,        /* same over TLS */
	SRV_SILENT,       /* listen, never accept: a SIGSTOPped apiserver */
	SRV_FULL,         /* backlog full: SYNs are dropped */
};

struct srv {
	enum srv_mode mode;
	int status;
	int fd;
	uint16_t port; /* host order */
	int filler;    /* SRV_FULL: the connection that fills the queue */
	unsigned long accepted;
};

#define MAX_SRV 1024
static struct srv srvs[MAX_SRV];
static int nr_srv;
static int srv_ep = -1, srv_stop = -1;
#define SRV_THREADS 8
static pthread_t srv_threads[SRV_THREADS];
static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *srv_ctx;
static unsigned long tls_handshakes, tls_resumed;
static char tmpdir[64];
static char ca_good[128], ca_bad[128];

static int listen_on(uint16_t port, int backlog)
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1, fd = socket(AF_INET,
				 SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, backlog)) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint16_t port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	getsockname(fd, (struct sockaddr *)&a, &len);
	return ntohs(a.sin_port);
}

/* A port nobody listens on: bound, to learn a free number, then closed. */
static uint16_t closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	bind(fd, (struct sockaddr *)&a, sizeof(a));
	port = port_of(fd);
	close(fd);
	return port;
}

/* returns the server index; port 0 = ephemeral */
static int srv_add(enum srv_mode mode, int status, uint16_t port)
{
	struct srv *s = &srvs[nr_srv];
	struct epoll_event ev = { .events = EPOLLIN };

	if (nr_srv >= MAX_SRV)
		return -1;
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->status = status;
	s->filler = -1;
	s->fd = listen_on(port, mode == SRV_FULL ? 0 : 4096);
	if (s->fd < 0)
		return -1;
	s->port = port_of(s->fd);
	if (mode == SRV_FULL) {
		struct sockaddr_in a = {
			.sin_family = AF_INET,
			.sin_port = htons(s->port),
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		};

		/* backlog 0 holds one connection: take it, and every later
		 * SYN is dropped by the kernel (LISTENOVERFLOWS) */
		s->filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(s->filler, (struct sockaddr *)&a, sizeof(a)))
			return -1;
	}
	if (mode != SRV_SILENT && mode != SRV_FULL) {
		ev.data.u32 = nr_srv;
		if (epoll_ctl(srv_ep, EPOLL_CTL_ADD, s->fd, &ev))
			return -1;
	}
	return nr_srv++;
}

static void srv_close(int i)
{
	struct srv *s = &srvs[i];

	pthread_mutex_lock(&srv_lock);
	if (s->fd >= 0) {
		epoll_ctl(srv_ep, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
		s->fd = -1;
	}
	if (s->filler >= 0) {
		close(s->filler);
		s->filler = -1;
	}
	pthread_mutex_unlock(&srv_lock);
}

/* reopen a closed server on the same port, same mode */
static int srv_reopen(int i)
{
	struct srv *s = &srvs[i];
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

	pthread_mutex_lock(&srv_lock);
	s->fd = listen_on(s->port, 4096);
	if (s->fd >= 0)
		epoll_ctl(srv_ep, EPOLL_CTL_ADD, s->fd, &ev);
	pthread_mutex_unlock(&srv_lock);
	return s->fd < 0 ? -1 : 0;
}

static const char *status_text(int status)
{
	return status == 200 ? "OK" :
	       status == 500 ? "Internal Server Error" :
	       status == 503 ? "Service Unavailable" : "Other";
}

/* Blocking, with a receive timeout: the tests' servers may be simple. */
static void serve_http(struct srv *s, int c)
{
	struct timeval tv = { .tv_sec = 2 };
	char req[1024], rsp[256];
	SSL *ssl = NULL;
	size_t got = 0;
	int n, len;

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (s->mode == SRV_HTTPS) {
		ssl = SSL_new(srv_ctx);
		SSL_set_fd(ssl, c);
		if (SSL_accept(ssl) != 1)
			goto out;
		if (SSL_session_reused(ssl))
			__atomic_fetch_add(&tls_resumed, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&tls_handshakes, 1, __ATOMIC_RELAXED);
	}
	while (got < sizeof(req) - 1) {
		n = ssl ? SSL_read(ssl, req + got, sizeof(req) - 1 - got) :
			  recv(c, req + got, sizeof(req) - 1 - got, 0);
		if (n <= 0)
			goto out;
		got += n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	len = snprintf(rsp, sizeof(rsp),
		       "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
		       "Content-Length: 2\r\nConnection: close\r\n\r\nok",
		       s->status, status_text(s->status));
	if (ssl)
		SSL_write(ssl, rsp, len);
	else
		send(c, rsp, len, MSG_NOSIGNAL);
out:
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
}

static void *srv_main(void *arg)
{
	struct epoll_event evs[8];
	int i, n;

	for (;;) {
		n = epoll_wait(srv_ep, evs, 8, -1);
		for (i = 0; i < n; i++) {
			struct srv *s;
			int c;

			if (evs[i].data.u32 == (uint32_t)-1)
				return NULL;
			s = &srvs[evs[i].data.u32];
			for (;;) {
				/* the lock only keeps srv_close() out of the
				 * accept; connections are served unlocked */
				pthread_mutex_lock(&srv_lock);
				c = s->fd < 0 ? -1 :
					accept4(s->fd, NULL, NULL,
						SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (c >= 0)
					s->accepted++;
				pthread_mutex_unlock(&srv_lock);
				if (c < 0)
					break;
				if (s->mode == SRV_HTTP ||
				    s->mode == SRV_HTTPS) {
					int fl = fcntl(c, F_GETFL);

					fcntl(c, F_SETFL, fl & ~O_NONBLOCK);
					serve_http(s, c);
				}
				close(c);
			}
		}
	}
	return NULL;
}

/* ---- a self-signed certificate, made here ---- */

static X509 *make_cert(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
				  "DNS:apiserver.kha.test,IP:127.0.0.1");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
				  "critical,CA:TRUE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(x, key, EVP_sha256());
	return x;
}

static int write_pem(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = PEM_write_X509(f, x);
	fclose(f);
	return ok ? 0 : -1;
}

static int copy_file(const char *from, const char *to)
{
	char buf[8192];
	FILE *in = fopen(from, "r"), *out = fopen(to, "w");
	size_t n;

	if (!in || !out)
		return -1;
	n = fread(buf, 1, sizeof(buf), in);
	fwrite(buf, 1, n, out);
	fclose(in);
	return fclose(out) ? -1 : 0;
}

static int tls_setup(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256"), *key2 = EVP_EC_gen("P-256");
	X509 *cert, *other;

	if (!key || !key2)
		return -1;
	cert = make_cert(key, "apiserver.kha.test");
	other = make_cert(key2, "someone-else");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/hc-probe-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(ca_good, sizeof(ca_good), "%s/ca.pem", tmpdir);
	snprintf(ca_bad, sizeof(ca_bad), "%s/other.pem", tmpdir);
	if (write_pem(ca_good, cert) || write_pem(ca_bad, other))
		return -1;
	srv_ctx = SSL_CTX_new(TLS_server_method());
	if (!srv_ctx || SSL_CTX_use_certificate(srv_ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(srv_ctx, key) != 1)
		return -1;
	X509_free(cert);
	X509_free(other);
	EVP_PKEY_free(key);
	EVP_PKEY_free(key2);
	return 0;
}

/* ---- suite setup: private netns, servers' thread ---- */

static int lo_up(void)
{
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rc;

	strcpy(ifr.ifr_name, "lo");
	rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (!rc)
		rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	close(fd);
	return rc;
}

static int suite_init(void)
{
	struct rlimit rl = { 8192, 8192 };
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)-1 };
	int i;

	/* the servers write to sockets the checks reset */
	signal(SIGPIPE, SIG_IGN);
	/* private loopback: nobody else's listeners, nobody sees ours */
	if (unshare(CLONE_NEWNET) == 0) {
		if (lo_up())
			return -1;
	} else {
		fprintf(stderr, "test_probe: unshare(CLONE_NEWNET): %s; using the host's loopback with ephemeral ports\n",
			strerror(errno));
	}
	setrlimit(RLIMIT_NOFILE, &rl);
	kha_log_init(KHA_LOG_INFO);
	if (tls_setup())
		return -1;
	srv_ep = epoll_create1(EPOLL_CLOEXEC);
	srv_stop = eventfd(0, EFD_CLOEXEC);
	if (epoll_ctl(srv_ep, EPOLL_CTL_ADD, srv_stop, &ev))
		return -1;
	/* several: a real apiserver serves checks concurrently, and a TLS
	 * handshake served sequentially would be the bottleneck measured */
	for (i = 0; i < SRV_THREADS; i++)
		if (pthread_create(&srv_threads[i], NULL, srv_main, NULL))
			return -1;
	return 0;
}

static int suite_cleanup(void)
{
	uint64_t one = 1;
	int i;

	/* the eventfd stays readable: every thread sees it and returns */
	if (write(srv_stop, &one, sizeof(one)) == sizeof(one))
		for (i = 0; i < SRV_THREADS; i++)
			pthread_join(srv_threads[i], NULL);
	for (i = 0; i < nr_srv; i++)
		srv_close(i);
	unlink(ca_good);
	unlink(ca_bad);
	rmdir(tmpdir);
	SSL_CTX_free(srv_ctx);
	return 0;
}

/* ---- building configs and running the loop ---- */

static struct kha_config cfg;

static void cfg_reset(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.nr_vips = 1;
	cfg.vips[0].addr.sin_family = AF_INET;
	cfg.vips[0].addr.sin_addr.s_addr = inet_addr("10.0.0.100");
	cfg.vips[0].addr.sin_port = htons(8443);
}

static struct kha_backend_conf *cfg_add(int vip, uint16_t port,
					enum kha_check_type type,
					uint32_t inter, uint32_t timeout)
{
	struct kha_vip_conf *v = &cfg.vips[vip];
	struct kha_backend_conf *b = &v->backends[v->nr_backends++];

	memset(b, 0, sizeof(*b));
	b->addr.sin_family = AF_INET;
	b->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	b->addr.sin_port = htons(port);
	b->weight = 1;
	b->check.type = type;
	b->check.inter = inter;
	b->check.timeout = timeout;
	b->check.fall = 2;
	b->check.rise = 2;
	strcpy(b->check.path, "/readyz");
	return b;
}

struct transition {
	int vip, be;
	bool up;
	enum kha_check_result r;
	uint64_t when;
};

static struct transition trans[64];
static int nr_trans;

static void on_transition(void *arg, int vip, int be,
			  const struct kha_health *h)
{
	if (nr_trans < 64)
		trans[nr_trans++] = (struct transition){ vip, be, h->up,
							 h->last,
							 kha_now_ms() };
}

struct runner {
	struct kha_loop *loop;
	struct kha_prober *p;
	struct kha_timer tick;
	uint64_t deadline;
	uint64_t min_checks; /* stop when every backend has this many */
};

static void run_tick(struct kha_loop *l, void *arg)
{
	struct runner *r = arg;
	const struct kha_health *h;
	int v, b;
	bool done = r->min_checks > 0;

	for (v = 0; v < cfg.nr_vips && done; v++)
		for (b = 0; b < cfg.vips[v].nr_backends; b++) {
			h = kha_prober_get(r->p, v, b);
			if (!h || h->checks < r->min_checks) {
				done = false;
				break;
			}
		}
	if (done || kha_now_ms() >= r->deadline) {
		kha_loop_stop(l);
		return;
	}
	kha_timer_arm_in(l, &r->tick, 2);
}

/* run the loop for ms, or until every backend completed min_checks */
static void run_for(struct runner *r, uint64_t ms, uint64_t min_checks)
{
	r->deadline = kha_now_ms() + ms;
	r->min_checks = min_checks;
	kha_timer_init(&r->tick, run_tick, r);
	kha_timer_arm_in(r->loop, &r->tick, 1);
	kha_loop_run(r->loop);
	kha_timer_cancel(r->loop, &r->tick);
}

static void runner_new(struct runner *r)
{
	nr_trans = 0;
	r->loop = kha_loop_new();
	r->p = kha_prober_new(r->loop, on_transition, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->loop);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->p);
}

static void runner_free(struct runner *r)
{
	kha_prober_free(r->p);
	kha_loop_free(r->loop);
}

static const struct kha_health *H(struct runner *r, int be)
{
	return kha_prober_get(r->p, 0, be);
}

/* ---- tests ---- */

static void test_tcp_ok_and_refused(void)
{
	struct runner r;
	int s = srv_add(SRV_ACCEPT_CLOSE, 0, 0);

	CU_ASSERT_FATAL(s >= 0);
	cfg_reset();
	cfg_add(0, srvs[s].port, KHA_CHECK_TCP, 100, 50);
	cfg_add(0, closed_port(), KHA_CHECK_TCP, 100, 50);
	runner_new(&r);
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	/* before any check: provisional UP, "INI" */
	CU_ASSERT_TRUE(H(&r, 0)->up);
	CU_ASSERT_EQUAL(H(&r, 0)->last, KHA_CHK_INI);
	run_for(&r, 2000, 3);
	CU_ASSERT_EQUAL(H(&r, 0)->last, KHA_CHK_L4OK);
	CU_ASSERT_TRUE(H(&r, 0)->up);
	CU_ASSERT_EQUAL(H(&r, 0)->failures, 0);
	CU_ASSERT(srvs[s].accepted >= 3);
	CU_ASSERT_EQUAL(H(&r, 1)->last, KHA_CHK_L4CON);
	CU_ASSERT_STRING_EQUAL(H(&r, 1)->last_detail, "Connection refused");
	CU_ASSERT_FALSE(H(&r, 1)->up);
	/* one transition, for the refused one, at its first check */
	CU_ASSERT_EQUAL(nr_trans, 1);
	CU_ASSERT_EQUAL(trans[0].be, 1);
	CU_ASSERT_FALSE(trans[0].up);
	CU_ASSERT_EQUAL(trans[0].r, KHA_CHK_L4CON);
	runner_free(&r);
	srv_close(s);
}

static void test_tcp_timeout(void)
{
	struct runner r;
	const struct kha_health *h;
	int s = srv_add(SRV_FULL, 0, 0);

	CU_ASSERT_FATAL(s >= 0);
	cfg_reset();
	cfg_add(0, srvs[s].port, KHA_CHECK_TCP, 1000, 150);
	runner_new(&r);
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	run_for(&r, 2000, 1);
	h = H(&r, 0);
	CU_ASSERT_EQUAL(h->last, KHA_CHK_L4TOUT);
	/* it took the timeout, not the kernel's SYN retries */
	CU_ASSERT(h->last_duration_ms >= 150 && h->last_duration_ms <= 200);
	CU_ASSERT_FALSE(h->up);
	runner_free(&r);
	srv_close(s);
}

static void test_http_and_https_status(void)
{
	struct runner r;
	int ok_s = srv_add(SRV_HTTPS, 200, 0);
	int err_s = srv_add(SRV_HTTPS, 500, 0);
	int hok = srv_add(SRV_HTTP, 200, 0), herr = srv_add(SRV_HTTP, 503, 0);
	char why[128];

	CU_ASSERT_FATAL(ok_s >= 0 && err_s >= 0 && hok >= 0 && herr >= 0);
	cfg_reset();
	cfg_add(0, srvs[ok_s].port, KHA_CHECK_HTTPS, 200, 150);
	cfg_add(0, srvs[err_s].port, KHA_CHECK_HTTPS, 200, 150);
	cfg_add(0, srvs[hok].port, KHA_CHECK_HTTP, 200, 150);
	cfg_add(0, srvs[herr].port, KHA_CHECK_HTTP, 200, 150);
	runner_new(&r);
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	run_for(&r, 3000, 3);

	CU_ASSERT_EQUAL(H(&r, 0)->last, KHA_CHK_L7OK);
	CU_ASSERT_EQUAL(H(&r, 0)->last_status, 200);
	CU_ASSERT_TRUE(H(&r, 0)->up);
	CU_ASSERT_EQUAL(H(&r, 0)->failures, 0);
	CU_ASSERT_EQUAL(H(&r, 1)->last, KHA_CHK_L7STS);
	CU_ASSERT_EQUAL(H(&r, 1)->last_status, 500);
	CU_ASSERT_STRING_EQUAL(kha_health_reason(H(&r, 1), why, sizeof(why)),
			       "L7STS 500 Internal Server Error");
	CU_ASSERT_FALSE(H(&r, 1)->up);
	CU_ASSERT_EQUAL(H(&r, 2)->last, KHA_CHK_L7OK);
	CU_ASSERT_TRUE(H(&r, 2)->up);
	CU_ASSERT_EQUAL(H(&r, 3)->last, KHA_CHK_L7STS);
	CU_ASSERT_EQUAL(H(&r, 3)->last_status, 503);
	CU_ASSERT_FALSE(H(&r, 3)->up);
	/* the servers really answered each check */
	CU_ASSERT(srvs[ok_s].accepted >= 3);
	CU_ASSERT(srvs[hok].accepted >= 3);
	runner_free(&r);
	srv_close(ok_s);
	srv_close(err_s);
	srv_close(hok);
	srv_close(herr);
}

/* A listener that never accepts: what a SIGSTOPped apiserver looks like. */
static void test_hung_server(void)
{
	struct runner r;
	int s = srv_add(SRV_SILENT, 0, 0);

	CU_ASSERT_FATAL(s >= 0);
	cfg_reset();
	cfg_add(0, srvs[s].port, KHA_CHECK_TCP, 300, 100);
	cfg_add(0, srvs[s].port, KHA_CHECK_HTTPS, 300, 100);
	cfg_add(0, srvs[s].port, KHA_CHECK_HTTP, 300, 100);
	/* three backends on one port would be a duplicate for the config
	 * parser; the prober only cares about (vip, backend): vary the vip */
	cfg.nr_vips = 3;
	cfg.vips[1] = cfg.vips[0];
	cfg.vips[2] = cfg.vips[0];
	cfg.vips[0].nr_backends = 1;
	cfg.vips[1].addr.sin_port = htons(8444);
	cfg.vips[1].backends[0] = cfg.vips[0].backends[1];
	cfg.vips[1].nr_backends = 1;
	cfg.vips[2].addr.sin_port = htons(8445);
	cfg.vips[2].backends[0] = cfg.vips[0].backends[2];
	cfg.vips[2].nr_backends = 1;
	runner_new(&r);
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	run_for(&r, 3000, 2);

	CU_ASSERT_EQUAL(kha_prober_get(r.p, 0, 0)->last, KHA_CHK_L4OK);
	CU_ASSERT_TRUE(kha_prober_get(r.p, 0, 0)->up);
	CU_ASSERT_EQUAL(kha_prober_get(r.p, 1, 0)->last, KHA_CHK_L6TOUT);
	CU_ASSERT_FALSE(kha_prober_get(r.p, 1, 0)->up);
	CU_ASSERT(kha_prober_get(r.p, 1, 0)->last_duration_ms >= 100 &&
		  kha_prober_get(r.p, 1, 0)->last_duration_ms <= 150);
	CU_ASSERT_EQUAL(kha_prober_get(r.p, 2, 0)->last, KHA_CHK_L7TOUT);
	CU_ASSERT_FALSE(kha_prober_get(r.p, 2, 0)->up);
	CU_ASSERT_EQUAL(nr_trans, 2);
	runner_free(&r);
	srv_close(s);
}

static void test_tls_verify(void)
{
	struct runner r;
	struct kha_backend_conf *b;
	int s = srv_add(SRV_HTTPS, 200, 0);

	CU_ASSERT_FATAL(s >= 0);
	cfg_reset();
	b = cfg_add(0, srvs[s].port, KHA_CHECK_HTTPS, 200, 150);
	strcpy(b->check.ca_file, ca_good);
	/* the same server through a second vip: a CA that did not sign it */
	cfg.nr_vips = 3;
	cfg.vips[1] = cfg.vips[0];
	cfg.vips[1].addr.sin_port = htons(8444);
	strcpy(cfg.vips[1].backends[0].check.ca_file, ca_bad);
	/* and a third: right CA, SNI naming a host the cert does not have */
	cfg.vips[2] = cfg.vips[0];
	cfg.vips[2].addr.sin_port = htons(8445);
	strcpy(cfg.vips[2].backends[0].check.sni, "wrong.kha.test");
	runner_new(&r);
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	run_for(&r, 3000, 2);
	CU_ASSERT_EQUAL(kha_prober_get(r.p, 0, 0)->last, KHA_CHK_L7OK);
	CU_ASSERT_TRUE(kha_prober_get(r.p, 0, 0)->up);
	CU_ASSERT_EQUAL(kha_prober_get(r.p, 1, 0)->last, KHA_CHK_L6RSP);
	CU_ASSERT_FALSE(kha_prober_get(r.p, 1, 0)->up);
	CU_ASSERT_PTR_NOT_NULL(strstr(kha_prober_get(r.p, 1, 0)->last_detail,
				      "certificate verify failed"));
	CU_ASSERT_EQUAL(kha_prober_get(r.p, 2, 0)->last, KHA_CHK_L6RSP);
	CU_ASSERT_FALSE(kha_prober_get(r.p, 2, 0)->up);

	/* with the right SNI it passes */
	strcpy(cfg.vips[2].backends[0].check.sni, "apiserver.kha.test");
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	run_for(&r, 3000, 5);
	CU_ASSERT_EQUAL(kha_prober_get(r.p, 2, 0)->last, KHA_CHK_L7OK);
	CU_ASSERT_TRUE(kha_prober_get(r.p, 2, 0)->up);

	/* a reload re-reads the CA files: the right CA under the old name */
	CU_ASSERT_FATAL(copy_file(ca_good, ca_bad) == 0);
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	run_for(&r, 3000, 9);
	CU_ASSERT_EQUAL(kha_prober_get(r.p, 1, 0)->last, KHA_CHK_L7OK);
	CU_ASSERT_TRUE(kha_prober_get(r.p, 1, 0)->up);

	/* a CA file that does not exist is a configuration error */
	strcpy(cfg.vips[1].backends[0].check.ca_file, "/nonexistent/ca.pem");
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), -EINVAL);
	/* and the previous set stays in force */
	CU_ASSERT_PTR_NOT_NULL(kha_prober_get(r.p, 2, 0));
	CU_ASSERT_TRUE(kha_prober_get(r.p, 2, 0)->up);
	runner_free(&r);
	srv_close(s);
}

/*
 * Over time, against one backend: killed -> DOWN after `fall` checks,
 * within fall x inter + timeout; back -> UP after `rise` checks. The
 * transition is logged once, in haproxy's words.
 */
static void test_fall_and_rise_live(void)
{
	struct runner r;
	uint64_t killed, back;
	int s = srv_add(SRV_HTTP, 200, 0);
	char logbuf[4096] = "";
	int pipefd[2], saved, n;

	CU_ASSERT_FATAL(s >= 0);
	cfg_reset();
	cfg_add(0, srvs[s].port, KHA_CHECK_HTTP, 100, 50);
	runner_new(&r);
	kha_prober_set_start(r.p, KHA_START_DOWN);
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	CU_ASSERT_FALSE(H(&r, 0)->up);

	/* capture the log: stderr into a pipe big enough for a few lines */
	CU_ASSERT_FATAL(pipe2(pipefd, O_NONBLOCK) == 0);
	fflush(stderr);
	saved = dup(2);
	dup2(pipefd[1], 2);

	run_for(&r, 2000, 4);
	CU_ASSERT_TRUE(H(&r, 0)->up); /* rise 2 from DOWN */
	CU_ASSERT_EQUAL(nr_trans, 1);

	killed = kha_now_ms();
	srv_close(s);
	nr_trans = 0;
	run_for(&r, 1000, 0);
	CU_ASSERT_FALSE(H(&r, 0)->up);
	CU_ASSERT_EQUAL(H(&r, 0)->last, KHA_CHK_L4CON);
	CU_ASSERT_EQUAL(nr_trans, 1);
	/* fall 2 x inter 100 + timeout 50, plus a little scheduling slack */
	CU_ASSERT(nr_trans == 1 && trans[0].when - killed <= 2 * 100 + 50 + 20);

	CU_ASSERT_FATAL(srv_reopen(s) == 0);
	back = kha_now_ms();
	nr_trans = 0;
	run_for(&r, 1000, 0);
	CU_ASSERT_TRUE(H(&r, 0)->up);
	CU_ASSERT_EQUAL(nr_trans, 1);
	CU_ASSERT(nr_trans == 1 && trans[0].when - back <= 2 * 100 + 20);
	CU_ASSERT_EQUAL(H(&r, 0)->transitions, 3);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(pipefd[1]);
	n = read(pipefd[0], logbuf, sizeof(logbuf) - 1);
	close(pipefd[0]);
	logbuf[n > 0 ? n : 0] = '\0';
	fputs(logbuf, stderr);
	{
		char want[128], *first;

		snprintf(want, sizeof(want),
			 "notice health: backend 127.0.0.1:%u (vip 10.0.0.100:8443) is DOWN: L4CON Connection refused, check duration ",
			 srvs[s].port);
		first = strstr(logbuf, want);
		CU_ASSERT_PTR_NOT_NULL(first);
		/* once */
		CU_ASSERT(first && !strstr(first + 1, want));
		CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, ", 0/2 rise\n"));
		snprintf(want, sizeof(want),
			 "backend 127.0.0.1:%u (vip 10.0.0.100:8443) is UP: L7OK 200 OK",
			 srvs[s].port);
		first = strstr(logbuf, want);
		CU_ASSERT_PTR_NOT_NULL(first);
		/* twice: the first rise, and the return */
		CU_ASSERT(first && strstr(first + 1, want));
	}
	runner_free(&r);
	srv_close(s);
}

/* Backends that stay keep their state when the config is reloaded. */
static void test_reconfigure(void)
{
	struct runner r;
	int a = srv_add(SRV_ACCEPT_CLOSE, 0, 0);
	int b = srv_add(SRV_ACCEPT_CLOSE, 0, 0);
	int c = srv_add(SRV_ACCEPT_CLOSE, 0, 0);
	uint16_t dead = closed_port();
	uint64_t checks_a, checks_dead;

	CU_ASSERT_FATAL(a >= 0 && b >= 0 && c >= 0);
	cfg_reset();
	cfg_add(0, srvs[a].port, KHA_CHECK_TCP, 50, 40);
	cfg_add(0, dead, KHA_CHECK_TCP, 50, 40);
	cfg_add(0, srvs[b].port, KHA_CHECK_TCP, 50, 40);
	runner_new(&r);
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	run_for(&r, 2000, 4);
	CU_ASSERT_FALSE(H(&r, 1)->up);
	checks_a = H(&r, 0)->checks;
	checks_dead = H(&r, 1)->checks;

	/* reorder: dead first, then c (new), then a; b is removed */
	cfg_reset();
	cfg_add(0, dead, KHA_CHECK_TCP, 50, 40);
	cfg_add(0, srvs[c].port, KHA_CHECK_TCP, 50, 40);
	cfg_add(0, srvs[a].port, KHA_CHECK_TCP, 50, 40);
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	CU_ASSERT_FALSE(H(&r, 0)->up);
	CU_ASSERT(H(&r, 0)->checks >= checks_dead);
	CU_ASSERT_EQUAL(H(&r, 1)->checks, 0);
	CU_ASSERT_EQUAL(H(&r, 1)->last, KHA_CHK_INI);
	CU_ASSERT(H(&r, 2)->checks >= checks_a);
	CU_ASSERT_EQUAL(H(&r, 2)->last, KHA_CHK_L4OK);
	CU_ASSERT_PTR_NULL(H(&r, 3));
	/* a new backend can be seeded before its first check, not after */
	CU_ASSERT_EQUAL(kha_prober_seed(r.p, 0, 1, KHA_START_DOWN), 0);
	CU_ASSERT_FALSE(H(&r, 1)->up);
	CU_ASSERT_EQUAL(kha_prober_seed(r.p, 0, 1, KHA_START_UP), 0);
	CU_ASSERT_TRUE(H(&r, 1)->up);
	CU_ASSERT_EQUAL(H(&r, 1)->count, 0);
	CU_ASSERT_EQUAL(kha_prober_seed(r.p, 0, 2, KHA_START_DOWN), -EBUSY);
	CU_ASSERT_EQUAL(kha_prober_seed(r.p, 0, 3, KHA_START_DOWN), -ENOENT);
	nr_trans = 0;
	run_for(&r, 2000, 3);
	/* nothing changed state: the new one was UP and stayed UP */
	CU_ASSERT_EQUAL(nr_trans, 0);
	CU_ASSERT_EQUAL(H(&r, 1)->last, KHA_CHK_L4OK);
	/* the callback's indices follow the new config */
	srv_close(a);
	run_for(&r, 1000, 0);
	CU_ASSERT_EQUAL(nr_trans, 1);
	CU_ASSERT(nr_trans == 1 && trans[0].be == 2 && !trans[0].up);

	/* check type NONE: always UP, never probed */
	cfg.vips[0].backends[0].check.type = KHA_CHECK_NONE;
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	CU_ASSERT_TRUE(H(&r, 0)->up);
	checks_dead = H(&r, 0)->checks;
	run_for(&r, 300, 0);
	CU_ASSERT_EQUAL(H(&r, 0)->checks, checks_dead);
	CU_ASSERT_TRUE(H(&r, 0)->up);
	runner_free(&r);
	srv_close(b);
	srv_close(c);
}

/*
 * 256 backends, a check every 100 ms each, for 2 s: every backend gets its
 * ~20 checks, nothing waits behind schedule, and the first round is spread.
 */
static void run_load(enum kha_check_type type, enum srv_mode mode, int nr,
		     uint32_t inter, uint32_t secs)
{
	struct kha_prober_stats st;
	struct runner r;
	const char *kind = type == KHA_CHECK_TCP  ? "tcp" :
			   type == KHA_CHECK_HTTP ? "http" : "https";
	uint64_t want = secs * 1000 / inter, t0, elapsed;
	struct rusage ru0, ru1;
	long cpu_us;
	int i, first, bad = 0, min_checks = 1 << 30, max_checks = 0;

	first = nr_srv;
	for (i = 0; i < nr; i++)
		CU_ASSERT_FATAL(srv_add(mode, 200, 0) >= 0);
	cfg_reset();
	for (i = 0; i < nr; i++) {
		struct kha_backend_conf *b =
			cfg_add(0, srvs[first + i].port, type, inter, inter);

		b->check.fall = 1;
	}
	runner_new(&r);
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	t0 = kha_now_ms();
	getrusage(RUSAGE_THREAD, &ru0);
	run_for(&r, secs * 1000, 0);
	getrusage(RUSAGE_THREAD, &ru1);
	elapsed = kha_now_ms() - t0;
	cpu_us = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
		  ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000000L +
		 ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
		 ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec;
	kha_prober_stats(r.p, &st);
	for (i = 0; i < nr; i++) {
		const struct kha_health *h = H(&r, i);

		if ((int)h->checks < min_checks)
			min_checks = h->checks;
		if ((int)h->checks > max_checks)
			max_checks = h->checks;
		if (!h->up || h->failures)
			bad++;
	}
	fprintf(stderr,
		"\n  load %s: %d backends every %u ms for %lu ms: %lu checks, %d..%d per backend, lag max %u ms mean %.2f ms, %d failed; prober thread CPU %.1f%% (%.1f us/check)\n",
		kind,
		nr, inter, (unsigned long)elapsed, (unsigned long)st.completed,
		min_checks, max_checks, st.max_lag_ms,
		st.started ? (double)st.sum_lag_ms / st.started : 0.0, bad,
		100.0 * cpu_us / (elapsed * 1000.0),
		st.completed ? (double)cpu_us / st.completed : 0.0);
	if (type == KHA_CHECK_HTTPS)
		fprintf(stderr, "  tls: %lu handshakes, %lu resumed\n",
			tls_handshakes, tls_resumed);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(min_checks >= (int)want - 1);
	CU_ASSERT(max_checks <= (int)want + 1);
	/* on time: on average within a few ms, and no check ever slips by
	 * half an interval (the VM is shared: allow for a preemption) */
	CU_ASSERT(st.started && st.sum_lag_ms / st.started <= 5);
	CU_ASSERT(st.max_lag_ms <= inter / 2);
	CU_ASSERT(st.started >= (uint64_t)nr * (want - 1));
	runner_free(&r);
	for (i = 0; i < nr; i++)
		srv_close(first + i);
}

static void test_load_tcp(void)
{
	run_load(KHA_CHECK_TCP, SRV_ACCEPT_CLOSE, 256, 100, 2);
}

static void test_load_http(void)
{
	run_load(KHA_CHECK_HTTP, SRV_HTTP, 256, 100, 2);
}

/*
 * TLS: the checks resume their session, the handshake stays cheap. At
 * 100 ms this test's own TLS servers (same process, same CPUs) are the
 * bottleneck, not the prober: docs/health.md has the measured cost.
 */
static void test_load_https(void)
{
	run_load(KHA_CHECK_HTTPS, SRV_HTTPS, 256, 1000, 4);
}

/* first checks spread over the first interval, not a burst */
static void test_spread(void)
{
	struct runner r;
	uint64_t t0;
	int i, first = nr_srv, early = 0;

	for (i = 0; i < 100; i++)
		CU_ASSERT_FATAL(srv_add(SRV_ACCEPT_CLOSE, 0, 0) >= 0);
	cfg_reset();
	for (i = 0; i < 100; i++)
		cfg_add(0, srvs[first + i].port, KHA_CHECK_TCP, 500, 100);
	runner_new(&r);
	CU_ASSERT_EQUAL(kha_prober_configure(r.p, &cfg), 0);
	t0 = kha_now_ms();
	run_for(&r, 250, 0);
	for (i = 0; i < 100; i++)
		if (H(&r, i)->checks)
			early++;
	/* half the interval went by: about half the backends were checked */
	CU_ASSERT(early >= 40 && early <= 60);
	/* at ~450 ms: most are checked once, none twice yet (the first one
	 * is due again at 500 ms) */
	run_for(&r, 450 - (kha_now_ms() - t0), 0);
	early = 0;
	for (i = 0; i < 100; i++) {
		CU_ASSERT(H(&r, i)->checks <= 1);
		if (H(&r, i)->checks == 1)
			early++;
	}
	CU_ASSERT(early >= 80 && early <= 95);
	runner_free(&r);
	for (i = 0; i < 100; i++)
		srv_close(first + i);
}

static CU_TestInfo probe_tests[] = {
	{ "tcp: L4OK and L4CON", test_tcp_ok_and_refused },
	{ "tcp: L4TOUT on a full backlog", test_tcp_timeout },
	{ "http/https: L7OK and L7STS", test_http_and_https_status },
	{ "hung server: L4OK but L6TOUT / L7TOUT", test_hung_server },
	{ "https: CA file and SNI verification", test_tls_verify },
	{ "fall and rise over time, logged once", test_fall_and_rise_live },
	{ "reconfigure keeps state", test_reconfigure },
	{ "first checks are spread", test_spread },
	{ "256 tcp backends every 100 ms", test_load_tcp },
	{ "256 http backends every 100 ms", test_load_http },
	{ "256 https backends every 1000 ms", test_load_https },
	CU_TEST_INFO_NULL,
};

static const struct kha_suite suites[] = {
	{ "probe", probe_tests, suite_init, suite_cleanup },
	{ NULL, NULL, NULL, NULL },
};

KHA_TEST_MAIN(suites)
