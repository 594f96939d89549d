// SPDX-License-Identifier: GPL-2.0
/*
 * Control socket (server and client) and the status document. See ctl.h
 * for the protocol.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "ctl.h"
#include "log.h"
#include "vrrp_io.h"

#define CTL_REQ_MAX 256
#define CTL_MAX_CLIENTS 16

struct ctl_client {
	struct kha_ctl *ctl;
	int fd;
	size_t len;
	char buf[CTL_REQ_MAX];
	struct kha_timer timeout;
	bool used;
};

struct kha_ctl {
	struct kha_loop *loop;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	kha_ctl_handler handler;
	void *arg;
	struct ctl_client clients[CTL_MAX_CLIENTS];
};

static void client_close(struct ctl_client *cl)
{
	kha_timer_cancel(cl->ctl->loop, &cl->timeout);
	kha_loop_del_fd(cl->ctl->loop, cl->fd);
	close(cl->fd);
	cl->used = false;
}

static void client_timeout(struct kha_loop *l, void *arg)
{
	struct ctl_client *cl = arg;

	log_warn("ctl", "client sent no complete request in time; closed");
	client_close(cl);
}

/* Blocking with a deadline: answers are small and the peer is local. */
static void send_all(int fd, const char *p, size_t len)
{
	struct timeval tv = { .tv_sec = 2 };
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= n;
	}
}

static void client_request(struct ctl_client *cl)
{
	char *body = NULL;
	size_t blen = 0;
	FILE *out = open_memstream(&body, &blen);
	int ret;

	if (!out) {
		client_close(cl);
		return;
	}
	log_debug("ctl", "request: %s", cl->buf);
	ret = cl->ctl->handler(cl->ctl->arg, cl->buf, out);
	fclose(out);
	send_all(cl->fd, ret ? "ERR\n" : "OK\n", ret ? 4 : 3);
	send_all(cl->fd, body, blen);
	free(body);
	client_close(cl);
}

static void client_readable(struct kha_loop *l, int fd, uint32_t events,
			    void *arg)
{
	struct ctl_client *cl = arg;
	ssize_t n;
	char *nl;

	n = recv(fd, cl->buf + cl->len, sizeof(cl->buf) - 1 - cl->len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(cl);
		return;
	}
	cl->len += n;
	cl->buf[cl->len] = '\0';
	nl = strchr(cl->buf, '\n');
	if (!nl && cl->len < sizeof(cl->buf) - 1)
		return;
	if (nl)
		*nl = '\0';
	client_request(cl);
}

static void ctl_accept(struct kha_loop *l, int fd, uint32_t events, void *arg)
{
	struct kha_ctl *c = arg;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int cfd, i;

	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	/* the directory is 0700 already; this also covers a moved socket */
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warn("ctl", "refused a client with uid %u (root only)",
			 cred.uid);
		close(cfd);
		return;
	}
	for (i = 0; i < CTL_MAX_CLIENTS; i++)
		if (!c->clients[i].used)
			break;
	if (i == CTL_MAX_CLIENTS) {
		close(cfd);
		return;
	}
	c->clients[i].used = true;
	c->clients[i].ctl = c;
	c->clients[i].fd = cfd;
	c->clients[i].len = 0;
	kha_timer_init(&c->clients[i].timeout, client_timeout, &c->clients[i]);
	if (kha_loop_add_fd(l, cfd, EPOLLIN, client_readable, &c->clients[i])) {
		close(cfd);
		c->clients[i].used = false;
		return;
	}
	kha_timer_arm_in(l, &c->clients[i].timeout, 2000);
}

static int mkdir_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

struct kha_ctl *kha_ctl_listen(struct kha_loop *l, const char *path,
			       kha_ctl_handler h, void *arg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct kha_ctl *c;
	mode_t old;
	int ret, probe;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->loop = l;
	c->handler = h;
	c->arg = arg;
	snprintf(c->path, sizeof(c->path), "%s", path);
	strcpy(sun.sun_path, path);
	ret = mkdir_parent(path);
	if (ret)
		goto fail;
	/* a live daemon answers: do not steal its socket */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		if (!connect(probe, (struct sockaddr *)&sun, sizeof(sun))) {
			close(probe);
			ret = -EADDRINUSE;
			goto fail;
		}
		close(probe);
	}
	unlink(path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		ret = -errno;
		goto fail;
	}
	old = umask(0177);
	ret = bind(c->fd, (struct sockaddr *)&sun, sizeof(sun)) ? -errno : 0;
	umask(old);
	if (ret)
		goto fail_fd;
	if (listen(c->fd, 8)) {
		ret = -errno;
		goto fail_fd;
	}
	ret = kha_loop_add_fd(l, c->fd, EPOLLIN, ctl_accept, c);
	if (ret)
		goto fail_fd;
	return c;
fail_fd:
	close(c->fd);
fail:
	free(c);
	errno = -ret;
	return NULL;
}

void kha_ctl_close(struct kha_ctl *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->clients[i].used)
			client_close(&c->clients[i]);
	kha_loop_del_fd(c->loop, c->fd);
	close(c->fd);
	unlink(c->path);
	free(c);
}

int kha_ctl_request(const char *path, const char *req, char **body)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	char *buf = NULL, *p;
	size_t len = 0, cap = 0;
	int fd, ret = 0;
	ssize_t n;

	*body = NULL;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		ret = -errno;
		goto out;
	}
	if (dprintf(fd, "%s\n", req) < 0) {
		ret = -errno;
		goto out;
	}
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			p = realloc(buf, cap);
			if (!p) {
				ret = -ENOMEM;
				goto out;
			}
			buf = p;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (!n)
			break;
		len += n;
	}
	if (!buf || len < 3) {
		ret = -EPROTO;
		goto out;
	}
	buf[len] = '\0';
	if (!strncmp(buf, "OK\n", 3)) {
		ret = 0;
		memmove(buf, buf + 3, len - 2);
	} else if (!strncmp(buf, "ERR\n", 4)) {
		ret = 1;
		memmove(buf, buf + 4, len - 3);
	} else {
		ret = -EPROTO;
		goto out;
	}
	*body = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}

/* ---- status document ---- */

static void flags_str(uint32_t f, bool drained, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s", f & KHA_BE_F_PRESENT ? "present" : "-",
		 f & KHA_BE_F_HEALTHY ? ",healthy" : "",
		 f & KHA_BE_F_LOCAL ? ",local" : "",
		 drained ? ",drained" : "");
}

static uint64_t ago_ms(uint64_t t)
{
	uint64_t now = kha_now_ms();

	return t && now > t ? now - t : 0;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static const char *vrrp_state_str(int st)
{
	return st == KHA_VRRP_MASTER ? "MASTER" :
	       st == KHA_VRRP_BACKUP ? "BACKUP" : "INIT";
}

int kha_status_write(FILE *f, bool json, const struct kha_status_ctx *c)
{
	struct kha_dp *dp = c->dp;
	struct kha_dp_view_vip *vv;
	struct kha_reasons rs = {};
	struct kha_lb_config lc = {};
	uint32_t *conns;
	int nv = 0, i, j, nconn;
	char a[64], fl[64], reason[160];
	bool attached = kha_dp_attached(dp);
	__u64 *rv = (__u64 *)&rs;

	vv = calloc(KHA_MAX_VIPS, sizeof(*vv));
	conns = calloc(KHA_MAX_BACKENDS, sizeof(*conns));
	if (!vv || !conns) {
		free(vv);
		free(conns);
		return -ENOMEM;
	}
	kha_dp_read_view(dp, vv, KHA_MAX_VIPS, &nv);
	nconn = kha_dp_conn_counts(dp, conns);
	kha_dp_reasons(dp, &rs);
	kha_dp_get_lb_config(dp, &lc);

	if (json) {
		fprintf(f, "{\"source\":\"%s\",\"interface\":", c->source);
		json_str(f, dp->ifname);
		fprintf(f, ",\"pin_dir\":");
		json_str(f, dp->dir);
		fprintf(f, ",\"attached\":%s,\"xdp_prog_id\":%u,\"ring_size\":%u,"
			   "\"snat_ports\":[%u,%u],\"connections\":%d",
			attached ? "true" : "false", dp->prog_id, dp->ring_size,
			lc.snat_port_lo, lc.snat_port_hi, nconn < 0 ? 0 : nconn);
		if (c->daemon_pid)
			fprintf(f, ",\"daemon_pid\":%d", c->daemon_pid);
		if (c->config_path) {
			fprintf(f, ",\"config\":");
			json_str(f, c->config_path);
		}
		if (c->source && !strcmp(c->source, "daemon"))
			fprintf(f, ",\"local_tc\":%s,\"local_cgroup\":%s",
				c->local_tc ? "true" : "false",
				c->local_cgroup ? "true" : "false");
		if (c->vrrp) {
			/* one renderer for the VRRP object: vrrp_io.c's */
			fputs(",\"vrrp\":", f);
			kha_vrrp_status_json(c->vrrp, f);
		}
		fprintf(f, ",\"vips\":[");
		for (i = 0; i < nv; i++) {
			struct kha_counters vc = {};

			kha_dp_vip_counters(dp, vv[i].vip.vip_id, &vc);
			kha_addr_port_str(&vv[i].key.addr, ntohs(vv[i].key.port),
					  a, sizeof(a));
			fprintf(f, "%s{\"vip\":\"%s\",\"id\":%u,"
				   "\"active_gen\":%u,\"in_table\":%u,"
				   "\"packets\":%llu,\"bytes\":%llu,"
				   "\"new_flows\":%llu,\"backends\":[",
				i ? "," : "", a, vv[i].vip.vip_id,
				vv[i].state.active_gen, vv[i].state.nr_healthy,
				(unsigned long long)vc.packets,
				(unsigned long long)vc.bytes,
				(unsigned long long)vc.new_flows);
			for (j = 0; j < vv[i].nr_backends; j++) {
				const struct kha_dp_view_backend *b =
					&vv[i].backends[j];
				const struct kha_health *h = c->health[b->id];
				struct kha_counters bc = {};

				kha_dp_backend_counters(dp, b->id, &bc);
				kha_addr_port_str(&b->be.addr,
						  ntohs(b->be.port), a,
						  sizeof(a));
				fprintf(f, "%s{\"backend\":\"%s\",\"id\":%u,"
					   "\"healthy\":%s,\"local\":%s,"
					   "\"drained\":%s,\"weight\":%u,"
					   "\"connections\":%u,\"packets\":%llu,"
					   "\"bytes\":%llu,\"new_flows\":%llu",
					j ? "," : "", a, b->id,
					b->be.flags & KHA_BE_F_HEALTHY ?
						"true" : "false",
					b->be.flags & KHA_BE_F_LOCAL ?
						"true" : "false",
					c->drained[b->id] ? "true" : "false",
					b->be.weight, conns[b->id],
					(unsigned long long)bc.packets,
					(unsigned long long)bc.bytes,
					(unsigned long long)bc.new_flows);
				if (h) {
					kha_health_reason(h, reason,
							  sizeof(reason));
					fprintf(f, ",\"check\":{\"up\":%s,"
						   "\"last\":\"%s\",\"reason\":",
						h->up ? "true" : "false",
						kha_check_result_str(h->last));
					json_str(f, reason);
					fprintf(f, ",\"last_check_ago_ms\":%llu,"
						   "\"duration_ms\":%u,"
						   "\"last_change_ago_ms\":%llu,"
						   "\"checks\":%llu,"
						   "\"failures\":%llu,"
						   "\"transitions\":%llu}",
						(unsigned long long)ago_ms(
							h->last_check_ms),
						h->last_duration_ms,
						(unsigned long long)ago_ms(
							h->last_change_ms),
						(unsigned long long)h->checks,
						(unsigned long long)h->failures,
						(unsigned long long)
							h->transitions);
				}
				fputc('}', f);
			}
			fprintf(f, "]}");
		}
		fprintf(f, "],\"reasons\":{");
		for (i = 0; i < KHA_R_MAX; i++)
			fprintf(f, "%s\"%s\":%llu", i ? "," : "",
				kha_reason_name(i), (unsigned long long)rv[i]);
		fprintf(f, "}}\n");
		goto out;
	}

	fprintf(f, "interface %s: %s, XDP program id %u, pins in %s\n",
		dp->ifname, attached ? "attached" : "NOT ATTACHED",
		dp->prog_id, dp->dir);
	fprintf(f, "source: %s", c->source);
	if (c->daemon_pid)
		fprintf(f, " (daemon pid %d, config %s)", c->daemon_pid,
			c->config_path ? c->config_path : "-");
	fprintf(f, "; ring size %u; snat ports %u-%u; connections %d\n",
		dp->ring_size, lc.snat_port_lo, lc.snat_port_hi,
		nconn < 0 ? 0 : nconn);
	if (c->source && !strcmp(c->source, "daemon"))
		fprintf(f, "local paths: tc egress %s, cgroup connect4 %s\n",
			c->local_tc ? "on" : "off",
			c->local_cgroup ? "on" : "off");
	if (c->vrrp) {
		const struct kha_vrrp_status *v = c->vrrp;
		char m[INET_ADDRSTRLEN];
		char when[32] = "never";

		inet_ntop(AF_INET, &v->master, m, sizeof(m));
		if (v->last_transition) {
			struct tm tm;

			localtime_r(&v->last_transition, &tm);
			strftime(when, sizeof(when), "%F %T", &tm);
		}
		fprintf(f, "vrrp: v%d vrid %d %s, priority %d (effective %d)%s%s%s, master %s, last transition %s (%s)\n",
			v->version, v->vrid, vrrp_state_str(v->state),
			v->priority, v->effective_priority,
			v->fault_backend ? " [no healthy backend]" : "",
			v->fault_dataplane ? " [data plane detached]" : "",
			v->fault_link ? " [link down]" : "", m, when,
			kha_vrrp_reason_name(v->last_reason));
		/* a non-zero drop count is how a config difference with a
		 * keepalived peer shows during a migration (docs/vrrp.md) */
		for (j = 0; j < KHA_VRRP_DROP_MAX; j++)
			if (v->drops[j])
				fprintf(f, "vrrp: %" PRIu64 " adverts ignored: %s\n",
					v->drops[j], kha_vrrp_drop_name(j));
	}
	for (i = 0; i < nv; i++) {
		struct kha_counters vc = {};

		kha_dp_vip_counters(dp, vv[i].vip.vip_id, &vc);
		kha_addr_port_str(&vv[i].key.addr, ntohs(vv[i].key.port), a,
				  sizeof(a));
		fprintf(f, "vip %s (id %u): %u of %d backends in the table (gen %u); packets %llu, bytes %llu, new flows %llu\n",
			a, vv[i].vip.vip_id, vv[i].state.nr_healthy,
			vv[i].nr_backends, vv[i].state.active_gen,
			(unsigned long long)vc.packets,
			(unsigned long long)vc.bytes,
			(unsigned long long)vc.new_flows);
		for (j = 0; j < vv[i].nr_backends; j++) {
			const struct kha_dp_view_backend *b = &vv[i].backends[j];
			const struct kha_health *h = c->health[b->id];
			struct kha_counters bc = {};

			kha_dp_backend_counters(dp, b->id, &bc);
			kha_addr_port_str(&b->be.addr, ntohs(b->be.port), a,
					  sizeof(a));
			flags_str(b->be.flags, c->drained[b->id], fl,
				  sizeof(fl));
			fprintf(f, "  backend %-21s id %-3u %-4s weight %u [%s] conns %u packets %llu bytes %llu new %llu\n",
				a, b->id,
				b->be.flags & KHA_BE_F_HEALTHY ? "UP" : "DOWN",
				b->be.weight, fl, conns[b->id],
				(unsigned long long)bc.packets,
				(unsigned long long)bc.bytes,
				(unsigned long long)bc.new_flows);
			if (h) {
				kha_health_reason(h, reason, sizeof(reason));
				fprintf(f, "    check %s (%u ms) %llu ms ago; last change %llu ms ago; %llu checks, %llu failed\n",
					reason, h->last_duration_ms,
					(unsigned long long)ago_ms(
						h->last_check_ms),
					(unsigned long long)ago_ms(
						h->last_change_ms),
					(unsigned long long)h->checks,
					(unsigned long long)h->failures);
			}
		}
	}
	fprintf(f, "reasons:");
	for (i = 0, j = 0; i < KHA_R_MAX; i++) {
		if (!rv[i])
			continue;
		fprintf(f, " %s %llu", kha_reason_name(i),
			(unsigned long long)rv[i]);
		j++;
	}
	fprintf(f, "%s\n", j ? "" : " none");
out:
	free(vv);
	free(conns);
	return 0;
}
