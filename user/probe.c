// SPDX-License-Identifier: GPL-2.0
/*
 * Health probe I/O. Every check is a small state machine driven by the
 * event loop: a non-blocking connect, then (HTTPS) a TLS handshake with
 * OpenSSL on a non-blocking socket, then one HTTP/1.1 request and the status
 * line of the answer. Each check has one deadline timer; each backend one
 * timer for its next check. No thread, no blocking call, no child process.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "probe.h"

enum phase {
	PH_IDLE = 0,
	PH_CONNECT,   /* waiting for the TCP handshake */
	PH_HANDSHAKE, /* TLS handshake */
	PH_SEND,      /* writing the HTTP request */
	PH_RECV,      /* reading up to the end of the status line */
};

struct tls_ctx {
	char ca_file[KHA_PATH_MAX]; /* "" = no verification */
	SSL_CTX *ctx;
	struct tls_ctx *next;
};

struct probe {
	struct kha_prober *p;
	int vip_idx, be_idx;
	struct sockaddr_in vip, be; /* identity across reconfigurations */
	struct sockaddr_in target;  /* where the check connects */
	struct kha_check_conf check;
	struct kha_health h;
	bool keep;                  /* mark for kha_prober_configure() */

	struct kha_timer next;      /* start of the next check */
	struct kha_timer tmo;       /* deadline of the running check */
	uint64_t due_ms;            /* when the next / running check was due */
	uint64_t start_ms;          /* when the running check started */
	enum phase phase;
	int fd;
	uint32_t events;            /* what fd is registered for */
	SSL *ssl;
	SSL_CTX *ctx;               /* borrowed from the prober's cache */
	SSL_SESSION *sess;          /* for resumption on the next check */
	char req[384];
	size_t req_len, req_off;
	char rsp[512];
	size_t rsp_len;
	char name[80];              /* "10.0.0.2:6443 (vip 10.0.0.100:8443)" */
};

struct kha_prober {
	struct kha_loop *loop;
	kha_health_cb cb;
	void *arg;
	enum kha_health_start start;
	struct kha_config_view {
		int nr_vips;
		int nr_backends[KHA_MAX_VIPS];
	} view;
	struct probe *tab[KHA_MAX_VIPS][KHA_MAX_BACKENDS];
	struct tls_ctx *tls;
	struct kha_prober_stats st;
};

static void probe_start(struct kha_loop *l, void *arg);
static void probe_io(struct kha_loop *l, int fd, uint32_t events, void *arg);
static void probe_timeout(struct kha_loop *l, void *arg);

static void fmt_sin(char *buf, size_t len, const struct sockaddr_in *s)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
	snprintf(buf, len, "%s:%u", a, ntohs(s->sin_port));
}

static bool same_sin(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr &&
	       a->sin_port == b->sin_port;
}

static bool same_timing(const struct kha_check_conf *a,
			const struct kha_check_conf *b)
{
	return a->inter == b->inter && a->fastinter == b->fastinter &&
	       a->downinter == b->downinter;
}

/* The settings that change what a check does on the wire (not its timing). */
static bool same_io_conf(const struct kha_check_conf *a,
			 const struct kha_check_conf *b)
{
	return a->type == b->type && a->port == b->port &&
	       !strcmp(a->path, b->path) && !strcmp(a->ca_file, b->ca_file) &&
	       !strcmp(a->sni, b->sni);
}

/* ---- TLS contexts: one per CA file (and one that verifies nothing) ---- */

/*
 * Contexts are rebuilt on every kha_prober_configure() so that a reload
 * re-reads the CA files; a check in flight holds its own reference (SSL_new
 * takes one) and is not disturbed.
 */
static SSL_CTX *tls_ctx_get(struct tls_ctx **list, const char *ca_file)
{
	struct tls_ctx *t;
	SSL_CTX *ctx;

	for (t = *list; t; t = t->next)
		if (!strcmp(t->ca_file, ca_file))
			return t->ctx;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		log_err("health", "TLS client context: %s",
			ERR_reason_error_string(ERR_get_error()) ?: "failed");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* checks resume their previous session, as haproxy's do, so 256
	 * backends every 100 ms do not cost a full handshake each */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
						    SSL_SESS_CACHE_NO_INTERNAL);
	if (ca_file[0]) {
		ERR_clear_error();
		errno = 0;
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			char e[160];

			if (errno)
				snprintf(e, sizeof(e), "%s", strerror(errno));
			else
				ERR_error_string_n(ERR_get_error(), e,
						   sizeof(e));
			ERR_clear_error();
			log_err("health", "CA file %s: %s", ca_file, e);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		/* apiservers' serving certs are often self-signed; a
		 * health check proves liveness, not identity */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	snprintf(t->ca_file, sizeof(t->ca_file), "%s", ca_file);
	t->ctx = ctx;
	t->next = *list;
	*list = t;
	return ctx;
}

static void tls_ctx_free_all(struct tls_ctx **list)
{
	struct tls_ctx *t, *n;

	for (t = *list; t; t = n) {
		n = t->next;
		SSL_CTX_free(t->ctx);
		free(t);
	}
	*list = NULL;
}

/* ---- one check ---- */

static void probe_close(struct probe *pr)
{
	struct kha_loop *l = pr->p->loop;

	kha_timer_cancel(l, &pr->tmo);
	if (pr->ssl) {
		SSL_free(pr->ssl);
		pr->ssl = NULL;
	}
	if (pr->fd >= 0) {
		kha_loop_del_fd(l, pr->fd);
		close(pr->fd);
		pr->fd = -1;
	}
	if (pr->phase != PH_IDLE)
		pr->p->st.in_flight--;
	pr->phase = PH_IDLE;
	pr->events = 0;
}

static void schedule_next(struct probe *pr, uint64_t now)
{
	uint32_t iv = kha_health_next_interval(&pr->h, &pr->check);

	/* fixed rate: the next check is due one interval after this one was
	 * due, not after it ended, so checks do not drift; never in the past
	 * (no catch-up bursts after a stall) */
	pr->due_ms += iv;
	if (pr->due_ms < now)
		pr->due_ms = now;
	kha_timer_arm_at(pr->p->loop, &pr->next, pr->due_ms);
}

static void probe_finish(struct probe *pr, enum kha_check_result r,
			 int status, const char *detail)
{
	struct kha_prober *p = pr->p;
	uint64_t now = kha_now_ms();
	uint32_t dur = (uint32_t)(now - pr->start_ms);
	bool changed;

	if (pr->ssl && SSL_is_init_finished(pr->ssl)) {
		SSL_SESSION *s = SSL_get1_session(pr->ssl);

		/* SSL_free() of a connection not shut down marks its session
		 * not resumable; the handshake went well (whatever the HTTP
		 * answer), the RST close is ours */
		SSL_set_shutdown(pr->ssl, SSL_SENT_SHUTDOWN |
					  SSL_RECEIVED_SHUTDOWN);
		if (pr->sess)
			SSL_SESSION_free(pr->sess);
		pr->sess = s && SSL_SESSION_is_resumable(s) ? s : NULL;
		if (s && !pr->sess)
			SSL_SESSION_free(s);
	} else if (r == KHA_CHK_L6RSP && pr->sess) {
		/* a handshake that failed may be the session's fault; a
		 * timeout or a bad status is not */
		SSL_SESSION_free(pr->sess);
		pr->sess = NULL;
	}
	probe_close(pr);
	p->st.completed++;

	changed = kha_health_report(&pr->h, &pr->check, r, status, detail,
				    dur, now);
	if (changed) {
		char why[160];

		kha_health_reason(&pr->h, why, sizeof(why));
		log_notice("health", "backend %s is %s: %s, check duration %ums, 0/%u %s",
			   pr->name, pr->h.up ? "UP" : "DOWN", why, dur,
			   pr->h.up ? (pr->check.fall ? pr->check.fall : 1) :
				      (pr->check.rise ? pr->check.rise : 1),
			   pr->h.up ? "fall" : "rise");
	} else if (!kha_check_result_ok(r)) {
		char why[160];

		log_debug("health", "backend %s check failed: %s, %u/%u %s",
			  pr->name, kha_health_reason(&pr->h, why, sizeof(why)),
			  pr->h.count,
			  pr->h.up ? pr->check.fall : pr->check.rise,
			  pr->h.up ? "fall" : "rise");
	}
	schedule_next(pr, now);
	if (changed && p->cb)
		p->cb(p->arg, pr->vip_idx, pr->be_idx, &pr->h);
}

static void fail_errno(struct probe *pr, enum kha_check_result r, int err)
{
	probe_finish(pr, r, 0, strerror(err));
}

static void fail_tls(struct probe *pr, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[96];
	long vr;

	/* without a CA file the result is recorded but ignored */
	if (pr->ssl && pr->check.ca_file[0] &&
	    (vr = SSL_get_verify_result(pr->ssl)) != X509_V_OK) {
		snprintf(buf, sizeof(buf), "certificate verify failed: %s",
			 X509_verify_cert_error_string(vr));
	} else if (e) {
		snprintf(buf, sizeof(buf), "%s: %s", what,
			 ERR_reason_error_string(e) ?: "TLS error");
	} else {
		snprintf(buf, sizeof(buf), "%s: %s", what,
			 errno ? strerror(errno) : "connection closed");
	}
	ERR_clear_error();
	probe_finish(pr, KHA_CHK_L6RSP, 0, buf);
}

static int want(struct probe *pr, uint32_t ev)
{
	int err;

	if (pr->events == ev)
		return 0;
	err = kha_loop_mod_fd(pr->p->loop, pr->fd, ev);
	if (!err)
		pr->events = ev;
	return err;
}

/*
 * OpenSSL asked to wait (either direction, whatever the operation): arm
 * epoll for it and return true; false for a real error or a close.
 */
static bool ssl_wait(struct probe *pr, int ssl_err)
{
	if (ssl_err == SSL_ERROR_WANT_READ) {
		want(pr, EPOLLIN);
		return true;
	}
	if (ssl_err == SSL_ERROR_WANT_WRITE) {
		want(pr, EPOLLOUT);
		return true;
	}
	return false;
}

/* The status line is in rsp[0..len): "HTTP/1.x NNN reason" */
static void parse_status(struct probe *pr)
{
	char *eol = memchr(pr->rsp, '\n', pr->rsp_len);
	char reason[64] = "";
	int code, n = 0;

	if (!eol) {
		probe_finish(pr, KHA_CHK_L7RSP, 0,
			     "no status line in the first 512 bytes");
		return;
	}
	*eol = '\0';
	if (eol > pr->rsp && eol[-1] == '\r')
		eol[-1] = '\0';
	if (sscanf(pr->rsp, "HTTP/1.%*1[01] %3d%n", &code, &n) != 1 ||
	    code < 100 || code > 599 || (pr->rsp[n] && pr->rsp[n] != ' ')) {
		char bad[64];

		snprintf(bad, sizeof(bad), "bad status line \"%.30s\"",
			 pr->rsp);
		probe_finish(pr, KHA_CHK_L7RSP, 0, bad);
		return;
	}
	if (pr->rsp[n] == ' ')
		snprintf(reason, sizeof(reason), "%s", pr->rsp + n + 1);
	probe_finish(pr, code >= 200 && code <= 299 ? KHA_CHK_L7OK :
						     KHA_CHK_L7STS,
		     code, reason);
}

static void do_recv(struct probe *pr)
{
	for (;;) {
		size_t room = sizeof(pr->rsp) - 1 - pr->rsp_len;
		ssize_t n;

		if (!room) {
			parse_status(pr);
			return;
		}
		if (pr->ssl) {
			int rc;

			ERR_clear_error();
			rc = SSL_read(pr->ssl, pr->rsp + pr->rsp_len, room);
			if (rc <= 0) {
				int e = SSL_get_error(pr->ssl, rc);

				if (ssl_wait(pr, e))
					return;
				if (e == SSL_ERROR_ZERO_RETURN ||
				    e == SSL_ERROR_SYSCALL) {
					n = 0; /* closed: parse what came */
				} else {
					probe_finish(pr, KHA_CHK_L7RSP, 0,
						     "TLS error while reading the response");
					return;
				}
			} else {
				n = rc;
			}
		} else {
			n = recv(pr->fd, pr->rsp + pr->rsp_len, room, 0);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					want(pr, EPOLLIN);
					return;
				}
				probe_finish(pr, KHA_CHK_L7RSP, 0,
					     strerror(errno));
				return;
			}
		}
		if (n == 0) {
			if (!pr->rsp_len) {
				probe_finish(pr, KHA_CHK_L7RSP, 0,
					     "connection closed without a response");
				return;
			}
			parse_status(pr);
			return;
		}
		pr->rsp_len += n;
		pr->rsp[pr->rsp_len] = '\0';
		/* the status line is all we judge, as haproxy's httpchk
		 * does without an `http-check expect` */
		if (memchr(pr->rsp, '\n', pr->rsp_len)) {
			parse_status(pr);
			return;
		}
	}
}

static void do_send(struct probe *pr)
{
	pr->phase = PH_SEND;
	while (pr->req_off < pr->req_len) {
		ssize_t n;

		if (pr->ssl) {
			int rc;

			ERR_clear_error();
			rc = SSL_write(pr->ssl, pr->req + pr->req_off,
				       pr->req_len - pr->req_off);
			if (rc <= 0) {
				int e = SSL_get_error(pr->ssl, rc);

				if (ssl_wait(pr, e))
					return;
				probe_finish(pr, KHA_CHK_L7RSP, 0,
					     "TLS error while sending the request");
				return;
			}
			n = rc;
		} else {
			n = send(pr->fd, pr->req + pr->req_off,
				 pr->req_len - pr->req_off, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					want(pr, EPOLLOUT);
					return;
				}
				probe_finish(pr, KHA_CHK_L7RSP, 0,
					     strerror(errno));
				return;
			}
		}
		pr->req_off += n;
	}
	pr->phase = PH_RECV;
	pr->rsp_len = 0;
	do_recv(pr);
}

static void do_handshake(struct probe *pr)
{
	int rc, e;

	ERR_clear_error();
	errno = 0;
	rc = SSL_connect(pr->ssl);
	if (rc == 1) {
		do_send(pr);
		return;
	}
	e = SSL_get_error(pr->ssl, rc);
	if (ssl_wait(pr, e))
		return;
	fail_tls(pr, "TLS handshake");
}

static void start_tls(struct probe *pr)
{
	pr->ssl = SSL_new(pr->ctx);
	if (!pr->ssl || !SSL_set_fd(pr->ssl, pr->fd)) {
		probe_finish(pr, KHA_CHK_SOCKERR, 0, "SSL_new failed");
		return;
	}
	if (pr->check.sni[0]) {
		SSL_set_tlsext_host_name(pr->ssl, pr->check.sni);
		/* with a CA file, the certificate must also name the SNI
		 * host (haproxy's `verify required` + `sni`) */
		if (pr->check.ca_file[0])
			SSL_set1_host(pr->ssl, pr->check.sni);
	}
	if (pr->sess)
		SSL_set_session(pr->ssl, pr->sess);
	pr->phase = PH_HANDSHAKE;
	do_handshake(pr);
}

static void connected(struct probe *pr)
{
	switch (pr->check.type) {
	case KHA_CHECK_HTTPS:
		start_tls(pr);
		break;
	case KHA_CHECK_HTTP:
		do_send(pr);
		break;
	default:
		probe_finish(pr, KHA_CHK_L4OK, 0, NULL);
		break;
	}
}

static void probe_io(struct kha_loop *l, int fd, uint32_t events, void *arg)
{
	struct probe *pr = arg;
	int err = 0;
	socklen_t elen = sizeof(err);

	switch (pr->phase) {
	case PH_CONNECT:
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen))
			err = errno;
		if (err) {
			fail_errno(pr, KHA_CHK_L4CON, err);
			return;
		}
		if (!(events & EPOLLOUT))
			return; /* spurious: still connecting */
		connected(pr);
		break;
	case PH_HANDSHAKE:
		do_handshake(pr);
		break;
	case PH_SEND:
		do_send(pr);
		break;
	case PH_RECV:
		do_recv(pr);
		break;
	case PH_IDLE:
		break;
	}
}

static void probe_timeout(struct kha_loop *l, void *arg)
{
	struct probe *pr = arg;
	enum kha_check_result r;

	switch (pr->phase) {
	case PH_CONNECT:
		r = KHA_CHK_L4TOUT;
		break;
	case PH_HANDSHAKE:
		r = KHA_CHK_L6TOUT;
		break;
	case PH_SEND:
	case PH_RECV:
		r = KHA_CHK_L7TOUT;
		break;
	default:
		return;
	}
	probe_finish(pr, r, 0, NULL);
}

static void build_request(struct probe *pr)
{
	char host[sizeof(pr->check.sni) + 8];

	if (pr->check.sni[0])
		snprintf(host, sizeof(host), "%s", pr->check.sni);
	else
		fmt_sin(host, sizeof(host), &pr->target);
	pr->req_len = snprintf(pr->req, sizeof(pr->req),
			       "GET %s HTTP/1.1\r\nHost: %s\r\n"
			       "User-Agent: kha-xdp-check\r\n"
			       "Accept: */*\r\nConnection: close\r\n\r\n",
			       pr->check.path[0] ? pr->check.path : "/readyz",
			       host);
	if (pr->req_len >= sizeof(pr->req))
		pr->req_len = sizeof(pr->req) - 1;
	pr->req_off = 0;
}

static void probe_start(struct kha_loop *l, void *arg)
{
	struct probe *pr = arg;
	struct kha_prober *p = pr->p;
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	uint64_t now = kha_now_ms();
	uint32_t lag;
	int one = 1, fd, err;

	if (pr->phase != PH_IDLE)
		return;
	lag = now > pr->due_ms ? (uint32_t)(now - pr->due_ms) : 0;
	p->st.started++;
	p->st.in_flight++;
	p->st.sum_lag_ms += lag;
	if (lag > p->st.max_lag_ms)
		p->st.max_lag_ms = lag;
	pr->start_ms = now;
	pr->phase = PH_CONNECT;
	kha_timer_arm_at(l, &pr->tmo, now + kha_check_timeout(&pr->check));

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fail_errno(pr, KHA_CHK_SOCKERR, errno);
		return;
	}
	pr->fd = fd;
	/* close with a RST like haproxy's checks: no TIME_WAIT pile-up from
	 * thousands of checks a second */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (pr->check.type != KHA_CHECK_TCP)
		build_request(pr);
	if (connect(fd, (struct sockaddr *)&pr->target, sizeof(pr->target)) &&
	    errno != EINPROGRESS) {
		err = errno;
		bool local = err == EMFILE || err == ENFILE ||
			     err == ENOBUFS || err == ENOMEM ||
			     err == EADDRNOTAVAIL;

		fail_errno(pr, local ? KHA_CHK_SOCKERR : KHA_CHK_L4CON, err);
		return;
	}
	pr->events = EPOLLOUT;
	err = kha_loop_add_fd(l, fd, EPOLLOUT, probe_io, pr);
	if (err) {
		fail_errno(pr, KHA_CHK_SOCKERR, -err);
		return;
	}
	/* even a loopback connect completes through EPOLLOUT */
}

/* ---- the set of backends ---- */

static void probe_free(struct probe *pr)
{
	if (!pr)
		return;
	probe_close(pr);
	kha_timer_cancel(pr->p->loop, &pr->next);
	if (pr->sess)
		SSL_SESSION_free(pr->sess);
	free(pr);
}

struct kha_prober *kha_prober_new(struct kha_loop *loop, kha_health_cb cb,
				  void *arg)
{
	struct kha_prober *p = calloc(1, sizeof(*p));
	struct sigaction sa;

	if (!p)
		return NULL;
	/* OpenSSL writes to its socket with write(2), not send(MSG_NOSIGNAL):
	 * a backend resetting in mid-request would raise SIGPIPE and kill the
	 * daemon. The write then fails with EPIPE, which the check handles. */
	if (!sigaction(SIGPIPE, NULL, &sa) && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	p->loop = loop;
	p->cb = cb;
	p->arg = arg;
	p->start = KHA_START_PROVISIONAL;
	return p;
}

void kha_prober_set_start(struct kha_prober *p, enum kha_health_start start)
{
	p->start = start;
}

static struct probe *find_probe(struct kha_prober *p,
				const struct sockaddr_in *vip,
				const struct sockaddr_in *be)
{
	int v, b;

	for (v = 0; v < p->view.nr_vips; v++)
		for (b = 0; b < p->view.nr_backends[v]; b++) {
			struct probe *pr = p->tab[v][b];

			if (pr && !pr->keep && same_sin(&pr->vip, vip) &&
			    same_sin(&pr->be, be))
				return pr;
		}
	return NULL;
}

int kha_prober_configure(struct kha_prober *p, const struct kha_config *cfg)
{
	struct plan {
		struct probe *pr[KHA_MAX_VIPS][KHA_MAX_BACKENDS];
		SSL_CTX *ctx[KHA_MAX_VIPS][KHA_MAX_BACKENDS];
		bool fresh[KHA_MAX_VIPS][KHA_MAX_BACKENDS];
	} *plan;
	struct tls_ctx *tls = NULL;
	uint64_t now = kha_now_ms();
	int v, b, nr_fresh = 0, i_fresh = 0, nr_vips, err = -ENOMEM;

	nr_vips = cfg->nr_vips < KHA_MAX_VIPS ? cfg->nr_vips : KHA_MAX_VIPS;
	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;

	/* first everything that can fail: contexts and allocations */
	for (v = 0; v < nr_vips; v++) {
		const struct kha_vip_conf *vc = &cfg->vips[v];

		for (b = 0; b < vc->nr_backends && b < KHA_MAX_BACKENDS; b++) {
			const struct kha_backend_conf *bc = &vc->backends[b];
			struct probe *pr;

			if (bc->check.type == KHA_CHECK_HTTPS) {
				plan->ctx[v][b] =
					tls_ctx_get(&tls, bc->check.ca_file);
				if (!plan->ctx[v][b]) {
					err = -EINVAL;
					goto undo;
				}
			}
			pr = find_probe(p, &vc->addr, &bc->addr);
			if (pr) {
				pr->keep = true;
				/* a check that changed on the wire starts
				 * over, as does one that was `none` */
				plan->fresh[v][b] =
					!same_io_conf(&pr->check, &bc->check) ||
					pr->check.type == KHA_CHECK_NONE;
			} else {
				pr = calloc(1, sizeof(*pr));
				if (!pr)
					goto undo;
				pr->fd = -1;
				plan->fresh[v][b] = true;
			}
			plan->pr[v][b] = pr;
			if (plan->fresh[v][b] &&
			    bc->check.type != KHA_CHECK_NONE)
				nr_fresh++;
		}
	}

	/* from here on nothing fails */
	for (v = 0; v < p->view.nr_vips; v++)
		for (b = 0; b < p->view.nr_backends[v]; b++) {
			struct probe *pr = p->tab[v][b];

			if (pr && !pr->keep)
				probe_free(pr);
			p->tab[v][b] = NULL;
		}
	tls_ctx_free_all(&p->tls);
	p->tls = tls;
	memset(&p->view, 0, sizeof(p->view));
	p->view.nr_vips = nr_vips;
	for (v = 0; v < nr_vips; v++) {
		const struct kha_vip_conf *vc = &cfg->vips[v];

		p->view.nr_backends[v] = vc->nr_backends;
		if (p->view.nr_backends[v] > KHA_MAX_BACKENDS)
			p->view.nr_backends[v] = KHA_MAX_BACKENDS;
		for (b = 0; b < p->view.nr_backends[v]; b++) {
			const struct kha_backend_conf *bc = &vc->backends[b];
			struct probe *pr = plan->pr[v][b];
			bool is_new = !pr->p;
			bool retime = !is_new && !same_timing(&pr->check,
							      &bc->check);
			uint32_t first;
			char vs[32], bs[32];

			p->tab[v][b] = pr;
			pr->vip_idx = v;
			pr->be_idx = b;
			pr->keep = false;
			if (is_new) {
				pr->p = p;
				pr->vip = vc->addr;
				pr->be = bc->addr;
				kha_timer_init(&pr->next, probe_start, pr);
				kha_timer_init(&pr->tmo, probe_timeout, pr);
			}
			/* a session belongs with the context that made it */
			if (pr->sess && pr->ctx != plan->ctx[v][b]) {
				SSL_SESSION_free(pr->sess);
				pr->sess = NULL;
			}
			pr->ctx = plan->ctx[v][b];
			pr->target = bc->addr;
			pr->target.sin_family = AF_INET;
			if (bc->check.port)
				pr->target.sin_port = htons(bc->check.port);
			fmt_sin(vs, sizeof(vs), &vc->addr);
			fmt_sin(bs, sizeof(bs), &bc->addr);
			snprintf(pr->name, sizeof(pr->name), "%s (vip %s)", bs,
				 vs);

			if (bc->check.type == KHA_CHECK_NONE) {
				/* no check: always UP, as a haproxy server
				 * without `check` */
				probe_close(pr);
				kha_timer_cancel(p->loop, &pr->next);
				if (is_new || !pr->h.up ||
				    pr->check.type != KHA_CHECK_NONE)
					kha_health_init(&pr->h, &bc->check,
							KHA_START_UP, now);
				pr->check = bc->check;
				continue;
			}
			if (plan->fresh[v][b]) {
				if (is_new || pr->check.type == KHA_CHECK_NONE)
					kha_health_init(&pr->h, &bc->check,
							p->start, now);
				probe_close(pr);
				pr->check = bc->check;
				/* spread first checks over one interval, in
				 * config order, as haproxy does */
				first = kha_health_next_interval(&pr->h,
								 &pr->check);
				pr->due_ms = now + (uint64_t)first * i_fresh /
							   nr_fresh;
				i_fresh++;
				kha_timer_arm_at(p->loop, &pr->next,
						 pr->due_ms);
				continue;
			}
			pr->check = bc->check;
			/* new intervals apply from the last check on; a check
			 * in flight reschedules itself when it ends */
			if (retime && pr->phase == PH_IDLE && pr->start_ms) {
				pr->due_ms = pr->start_ms;
				pr->due_ms += kha_health_next_interval(
					&pr->h, &pr->check);
				if (pr->due_ms < now)
					pr->due_ms = now;
				kha_timer_arm_at(p->loop, &pr->next,
						 pr->due_ms);
			}
		}
	}
	free(plan);
	return 0;

undo:
	for (v = 0; v < nr_vips; v++)
		for (b = 0; b < KHA_MAX_BACKENDS; b++) {
			struct probe *pr = plan->pr[v][b];

			if (!pr)
				continue;
			if (pr->p)
				pr->keep = false;
			else
				free(pr);
		}
	tls_ctx_free_all(&tls);
	free(plan);
	return err;
}

int kha_prober_seed(struct kha_prober *p, int vip_idx, int be_idx,
		    enum kha_health_start start)
{
	struct probe *pr;

	if (!kha_prober_get(p, vip_idx, be_idx))
		return -ENOENT;
	pr = p->tab[vip_idx][be_idx];
	if (pr->h.checks || pr->check.type == KHA_CHECK_NONE)
		return -EBUSY;
	kha_health_init(&pr->h, &pr->check, start, pr->h.last_change_ms);
	return 0;
}

const struct kha_health *kha_prober_get(const struct kha_prober *p,
					int vip_idx, int be_idx)
{
	if (!p || vip_idx < 0 || vip_idx >= p->view.nr_vips || be_idx < 0 ||
	    be_idx >= p->view.nr_backends[vip_idx] || !p->tab[vip_idx][be_idx])
		return NULL;
	return &p->tab[vip_idx][be_idx]->h;
}

void kha_prober_stats(const struct kha_prober *p, struct kha_prober_stats *st)
{
	*st = p->st;
}

void kha_prober_reset_stats(struct kha_prober *p)
{
	uint32_t in_flight = p->st.in_flight;

	memset(&p->st, 0, sizeof(p->st));
	p->st.in_flight = in_flight;
}

void kha_prober_free(struct kha_prober *p)
{
	int v, b;

	if (!p)
		return;
	for (v = 0; v < p->view.nr_vips; v++)
		for (b = 0; b < p->view.nr_backends[v]; b++)
			probe_free(p->tab[v][b]);
	tls_ctx_free_all(&p->tls);
	free(p);
}
