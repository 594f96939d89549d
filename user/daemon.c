// SPDX-License-Identifier: GPL-2.0
/*
 * `kha-xdp run`: the daemon. See daemon.h for what it owns and
 * docs/operations.md for how it starts, reloads, stops and restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "config.h"
#include "ctl.h"
#include "daemon.h"
#include "health.h"
#include "local.h"
#include "log.h"
#include "loop.h"
#include "maps.h"
#include "netlink.h"
#include "probe.h"
#include "systemd.h"
#include "vrrp_io.h"

#define TICK_MS 500

struct daemon {
	const struct kha_daemon_opts *o;
	struct kha_loop *loop;
	struct kha_config *cfg;
	struct kha_dp dp;
	struct kha_dp_vip *dpv; /* [KHA_MAX_VIPS], same indices as cfg */
	int nr_dpv;
	/*
	 * false while an adopted backend waits for its first check: it keeps
	 * the health the previous daemon published instead of the prober's
	 * provisional UP.
	 */
	bool settled[KHA_MAX_VIPS][KHA_MAX_BACKENDS];
	struct kha_prober *prober;
	struct kha_vrrp_node *vrrp;
	struct in_addr added[KHA_MAX_VIPS]; /* VIP addresses we put on */
	int nr_added;
	bool local_tc, local_cgroup;
	struct kha_ctl *ctl;
	char ctl_path[KHA_PATH_MAX];
	int sfd;
	int lock_fd;
	struct kha_timer tick;
	struct sockaddr_in drained[KHA_MAX_BACKENDS];
	int nr_drained;
	bool fault_backend, fault_dp;
	enum kha_exit_mode exit_mode; /* decided at the signal */
};

/* ---- helpers shared with the CLI ---- */

struct kha_addr kha_node_addr(const struct kha_config *cfg)
{
	struct kha_addr a = {};
	struct ifaddrs *ifa, *i;

	if (cfg->local_addr.s_addr) {
		a.v4 = cfg->local_addr.s_addr;
		return a;
	}
	if (getifaddrs(&ifa))
		return a;
	for (i = ifa; i; i = i->ifa_next) {
		struct in_addr in;
		int v;
		bool vip = false;

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    strcmp(i->ifa_name, cfg->ifname))
			continue;
		in = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		/* a VIP we hold is not the node's own address */
		for (v = 0; v < cfg->nr_vips; v++)
			vip |= cfg->vips[v].addr.sin_addr.s_addr == in.s_addr;
		if (!vip) {
			a.v4 = in.s_addr;
			break;
		}
	}
	freeifaddrs(ifa);
	return a;
}

int kha_dp_vips_from_config(const struct kha_config *cfg,
			    struct kha_dp_vip *vips)
{
	int i, j;

	for (i = 0; i < cfg->nr_vips && i < KHA_MAX_VIPS; i++) {
		const struct kha_vip_conf *vc = &cfg->vips[i];
		struct kha_dp_vip *v = &vips[i];

		memset(v, 0, sizeof(*v));
		v->addr.v4 = vc->addr.sin_addr.s_addr;
		v->port = ntohs(vc->addr.sin_port);
		v->nr_backends = vc->nr_backends;
		for (j = 0; j < vc->nr_backends; j++) {
			const struct kha_backend_conf *bc = &vc->backends[j];
			struct kha_dp_backend *b = &v->backends[j];

			b->addr.v4 = bc->addr.sin_addr.s_addr;
			b->port = ntohs(bc->addr.sin_port);
			b->weight = bc->weight;
			b->healthy = true;
			b->local = kha_addr_is_local(&b->addr);
		}
	}
	return i;
}

/* ---- desired state ---- */

static bool is_drained(struct daemon *d, const struct kha_dp_backend *b)
{
	int i;

	for (i = 0; i < d->nr_drained; i++)
		if (d->drained[i].sin_addr.s_addr == b->addr.v4 &&
		    ntohs(d->drained[i].sin_port) == b->port)
			return true;
	return false;
}

/* weight as configured unless the operator drained it */
static void apply_weight(struct daemon *d, int v, int b)
{
	struct kha_dp_backend *be = &d->dpv[v].backends[b];

	be->weight = is_drained(d, be) ? 0 : d->cfg->vips[v].backends[b].weight;
}

static void update_faults(struct daemon *d)
{
	bool none = false;
	int v;

	for (v = 0; v < d->nr_dpv; v++)
		none |= d->dpv[v].nr_in_ring == 0;
	if (none && !d->fault_backend)
		log_warn("daemon", "a VIP has no backend in its table: new connections to it get a TCP RST");
	else if (!none && d->fault_backend)
		log_notice("daemon", "every VIP has a backend in its table again");
	d->fault_backend = none;
	if (d->vrrp)
		kha_vrrp_set_faults(d->vrrp, d->fault_backend, d->fault_dp);
}

static int publish_vip(struct daemon *d, int v, const char *why)
{
	struct kha_dp_pubstat ps = {};
	uint64_t t0 = kha_now_ms();
	char a[64];
	int ret;

	ret = kha_dp_update_vip(&d->dp, &d->dpv[v], &ps);
	kha_addr_port_str(&d->dpv[v].addr, d->dpv[v].port, a, sizeof(a));
	if (ret) {
		log_err("daemon", "vip %s: publishing the table: %s", a,
			strerror(-ret));
		return ret;
	}
	log_debug("daemon", "vip %s: table published (%s): %d backends in the table, build %llu us, flip %llu us, total %llu ms",
		  a, why, d->dpv[v].nr_in_ring,
		  (unsigned long long)ps.build_ns / 1000,
		  (unsigned long long)ps.flip_ns / 1000,
		  (unsigned long long)(kha_now_ms() - t0));
	update_faults(d);
	return 0;
}

/* Take the prober's verdicts into dpv; returns VIPs changed as a bitmask. */
static uint32_t reconcile(struct daemon *d)
{
	uint32_t changed = 0;
	int v, b;

	for (v = 0; v < d->nr_dpv; v++) {
		for (b = 0; b < d->dpv[v].nr_backends; b++) {
			const struct kha_health *h =
				kha_prober_get(d->prober, v, b);
			struct kha_dp_backend *be = &d->dpv[v].backends[b];

			if (!h)
				continue;
			if (!d->settled[v][b]) {
				if (!h->checks &&
				    d->cfg->vips[v].backends[b].check.type !=
					    KHA_CHECK_NONE)
					continue;
				d->settled[v][b] = true;
			}
			if (be->healthy != h->up) {
				be->healthy = h->up;
				changed |= 1u << v;
			}
		}
	}
	return changed;
}

static void on_health(void *arg, int v, int b, const struct kha_health *h)
{
	struct daemon *d = arg;
	struct kha_dp_backend *be;

	if (v >= d->nr_dpv || b >= d->dpv[v].nr_backends)
		return;
	be = &d->dpv[v].backends[b];
	d->settled[v][b] = true;
	if (be->healthy == h->up)
		return;
	be->healthy = h->up;
	publish_vip(d, v, h->up ? "backend up" : "backend down");
}

/*
 * The desired state from d->cfg and the prober; `adopted` holds what the
 * maps said before (for backends whose first check is still pending).
 */
static void build_desired(struct daemon *d, const struct kha_dp_view_vip *seen,
			  int nseen)
{
	int v, b, i, j;

	d->nr_dpv = kha_dp_vips_from_config(d->cfg, d->dpv);
	memset(d->settled, 0, sizeof(d->settled));
	for (v = 0; v < d->nr_dpv; v++) {
		struct kha_dp_vip *dv = &d->dpv[v];

		for (b = 0; b < dv->nr_backends; b++) {
			struct kha_dp_backend *be = &dv->backends[b];
			const struct kha_health *h =
				kha_prober_get(d->prober, v, b);
			bool found = false, was_healthy = true;

			apply_weight(d, v, b);
			for (i = 0; i < nseen && !found; i++) {
				if (seen[i].key.addr.v4 != dv->addr.v4 ||
				    ntohs(seen[i].key.port) != dv->port)
					continue;
				for (j = 0; j < seen[i].nr_backends; j++) {
					const struct kha_backend *sb =
						&seen[i].backends[j].be;

					if (sb->addr.v4 == be->addr.v4 &&
					    ntohs(sb->port) == be->port) {
						found = true;
						was_healthy = sb->flags &
							      KHA_BE_F_HEALTHY;
						break;
					}
				}
			}
			if (h && (h->checks ||
				  d->cfg->vips[v].backends[b].check.type ==
					  KHA_CHECK_NONE || !found)) {
				be->healthy = h->up;
				d->settled[v][b] = true;
			} else {
				be->healthy = found ? was_healthy :
					      (h ? h->up : true);
				d->settled[v][b] = !found;
			}
		}
	}
}

/* ---- VIP addresses, VRRP, local paths ---- */

static void vip_addrs_add(struct daemon *d, bool adopted)
{
	int ifindex = kha_nl_ifindex(d->cfg->ifname);
	int v, i, ret;

	if (ifindex < 0)
		return;
	for (v = 0; v < d->cfg->nr_vips; v++) {
		struct in_addr a = d->cfg->vips[v].addr.sin_addr;
		bool present = false, ours = false;
		char s[INET_ADDRSTRLEN];

		for (i = 0; i < d->nr_added; i++)
			ours |= d->added[i].s_addr == a.s_addr;
		if (ours)
			continue;
		inet_ntop(AF_INET, &a, s, sizeof(s));
		kha_nl_addr_has(ifindex, a, &present);
		ret = kha_nl_addr_add(ifindex, a);
		if (ret) {
			log_err("daemon", "vip %s: adding the address to %s: %s",
				s, d->cfg->ifname, strerror(-ret));
			continue;
		}
		/* after an adopting restart, the previous daemon added it */
		if (!present || adopted) {
			d->added[d->nr_added++] = a;
			if (!present)
				log_info("daemon", "vip %s: address added to %s",
					 s, d->cfg->ifname);
		}
	}
}

/* remove the addresses we added that `keep` (may be NULL) does not have */
static void vip_addrs_del(struct daemon *d, const struct kha_config *keep)
{
	int ifindex = kha_nl_ifindex(d->dp.ifname);
	int i, v, n = 0;

	for (i = 0; i < d->nr_added; i++) {
		struct in_addr a = d->added[i];
		char s[INET_ADDRSTRLEN];
		bool stays = false;

		for (v = 0; keep && !keep->vrrp.enabled && v < keep->nr_vips;
		     v++)
			stays |= keep->vips[v].addr.sin_addr.s_addr == a.s_addr;
		if (stays) {
			d->added[n++] = a;
			continue;
		}
		inet_ntop(AF_INET, &a, s, sizeof(s));
		if (ifindex > 0 && !kha_nl_addr_del(ifindex, a))
			log_info("daemon", "vip %s: address removed from %s", s,
				 d->dp.ifname);
	}
	d->nr_added = n;
}

static void on_vrrp_state(void *arg, enum kha_vrrp_state st)
{
	/* vrrp_io logs the transition with its reason; this is the echo */
	log_debug("daemon", "vrrp: now %s", kha_vrrp_state_name(st));
}

static int vrrp_start(struct daemon *d)
{
	d->vrrp = kha_vrrp_start(d->loop, d->cfg, on_vrrp_state, d);
	if (!d->vrrp) {
		log_err("daemon", "vrrp: cannot start on %s: %s",
			d->cfg->ifname, strerror(errno));
		return -errno;
	}
	kha_vrrp_set_faults(d->vrrp, d->fault_backend, d->fault_dp);
	return 0;
}

static bool any_local_backend(struct daemon *d)
{
	int v, b;

	for (v = 0; v < d->nr_dpv; v++)
		for (b = 0; b < d->dpv[v].nr_backends; b++)
			if (d->dpv[v].backends[b].local)
				return true;
	return false;
}

static void local_apply(struct daemon *d)
{
	struct kha_local_opts lo = {
		.ifname = d->dp.ifname,
		.pin_dir = d->dp.dir,
		.cgroup_path = d->cfg->cgroup,
	};
	bool want_tc = any_local_backend(d);
	bool want_cg = d->cfg->local_clients;
	int ret;

	/* remove what is no longer wanted, then install what is */
	lo.tc = d->local_tc && !want_tc;
	lo.cgroup = d->local_cgroup && !want_cg;
	if (lo.tc || lo.cgroup) {
		kha_local_detach(&lo);
		if (lo.tc)
			d->local_tc = false;
		if (lo.cgroup)
			d->local_cgroup = false;
	}
	lo.tc = want_tc;
	lo.cgroup = want_cg;
	if (!lo.tc && !lo.cgroup)
		return;
	ret = kha_local_attach(&lo);
	if (ret) {
		log_err("daemon", "local paths on %s: %s", d->dp.ifname,
			strerror(-ret));
		return;
	}
	d->local_tc = want_tc;
	d->local_cgroup = want_cg;
}

/* ---- control socket ---- */

static int ctl_drain(struct daemon *d, const char *arg, bool drain, FILE *out)
{
	struct sockaddr_in sin = {};
	char ip[64], *colon;
	unsigned long port;
	int v, b, i, hits = 0;

	snprintf(ip, sizeof(ip), "%s", arg);
	colon = strrchr(ip, ':');
	if (!colon) {
		fprintf(out, "%s: expected ADDR:PORT\n", arg);
		return -EINVAL;
	}
	*colon = '\0';
	port = strtoul(colon + 1, NULL, 10);
	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1 || !port ||
	    port > 65535) {
		fprintf(out, "%s: expected ADDR:PORT\n", arg);
		return -EINVAL;
	}
	sin.sin_port = htons(port);
	for (v = 0; v < d->nr_dpv; v++)
		for (b = 0; b < d->dpv[v].nr_backends; b++)
			hits += d->dpv[v].backends[b].addr.v4 ==
					sin.sin_addr.s_addr &&
				d->dpv[v].backends[b].port == port;
	if (!hits) {
		fprintf(out, "backend %s is not in the configuration\n", arg);
		return -ENOENT;
	}
	for (i = 0; i < d->nr_drained; i++)
		if (d->drained[i].sin_addr.s_addr == sin.sin_addr.s_addr &&
		    d->drained[i].sin_port == sin.sin_port)
			break;
	if (drain && i == d->nr_drained && d->nr_drained < KHA_MAX_BACKENDS)
		d->drained[d->nr_drained++] = sin;
	if (!drain && i < d->nr_drained)
		d->drained[i] = d->drained[--d->nr_drained];
	for (v = 0; v < d->nr_dpv; v++) {
		bool touched = false;

		for (b = 0; b < d->dpv[v].nr_backends; b++) {
			struct kha_dp_backend *be = &d->dpv[v].backends[b];

			if (be->addr.v4 != sin.sin_addr.s_addr ||
			    be->port != port)
				continue;
			apply_weight(d, v, b);
			touched = true;
		}
		if (touched)
			publish_vip(d, v, drain ? "drain" : "enable");
	}
	log_notice("daemon", "backend %s %s by the operator", arg,
		   drain ? "drained (no new flows, established ones stay)" :
			   "enabled");
	fprintf(out, "backend %s %s\n", arg, drain ? "drained" : "enabled");
	return 0;
}

static int ctl_handler(void *arg, const char *req, FILE *out)
{
	struct daemon *d = arg;

	if (!strcmp(req, "status") || !strcmp(req, "status json")) {
		struct kha_status_ctx *sc = calloc(1, sizeof(*sc));
		struct kha_vrrp_status vs;
		int v, b, ret;

		if (!sc)
			return -ENOMEM;
		sc->dp = &d->dp;
		sc->source = "daemon";
		sc->daemon_pid = getpid();
		sc->config_path = d->cfg->path;
		sc->local_tc = d->local_tc;
		sc->local_cgroup = d->local_cgroup;
		sc->nr_vip_addrs = d->nr_added;
		for (v = 0; v < d->nr_dpv; v++) {
			for (b = 0; b < d->dpv[v].nr_backends; b++) {
				uint32_t id = d->dpv[v].backends[b].id;

				if (id >= KHA_MAX_BACKENDS)
					continue;
				sc->health[id] = kha_prober_get(d->prober, v, b);
				sc->drained[id] =
					is_drained(d, &d->dpv[v].backends[b]);
			}
		}
		if (d->vrrp) {
			kha_vrrp_status(d->vrrp, &vs);
			sc->vrrp = &vs;
		}
		ret = kha_status_write(out, !strcmp(req, "status json"), sc);
		free(sc);
		return ret;
	}
	if (!strncmp(req, "drain ", 6))
		return ctl_drain(d, req + 6, true, out);
	if (!strncmp(req, "enable ", 7))
		return ctl_drain(d, req + 7, false, out);
	fprintf(out, "unknown request \"%s\"\n", req);
	return -EINVAL;
}

/* ---- reload ---- */

static void reload(struct daemon *d)
{
	struct kha_config *nc = calloc(1, sizeof(*nc));
	struct kha_config *old = d->cfg;
	char err[512];
	int ret, v;

	kha_sd_notify("RELOADING=1");
	if (!nc)
		goto out;
	ret = kha_config_load(d->o->conf, nc, err, sizeof(err));
	if (ret) {
		log_err("daemon", "reload rejected, the running configuration stays: %s",
			err);
		free(nc);
		goto out;
	}
	if (d->o->pin_root)
		snprintf(nc->pin_root, sizeof(nc->pin_root), "%s",
			 d->o->pin_root);
	if (strcmp(nc->ifname, old->ifname) ||
	    strcmp(nc->pin_root, old->pin_root)) {
		log_err("daemon", "reload rejected: changing interface or pin_root needs a restart (running %s in %s)",
			old->ifname, old->pin_root);
		free(nc);
		goto out;
	}
	if (nc->xdp_generic != old->xdp_generic)
		log_warn("daemon", "xdp_mode: the running program stays in %s mode until a fresh start (detach first)",
			 old->xdp_generic ? "generic" : "native");
	if (strcmp(nc->ctl_socket, old->ctl_socket) && !d->o->ctl_path)
		log_warn("daemon", "control_socket: still listening on %s until a restart",
			 d->ctl_path);
	if (nc->ring_size != d->dp.ring_size)
		log_warn("daemon", "ring_size %u: the pinned maps use %u; a new size takes effect after kha-xdp detach and a fresh start",
			 nc->ring_size, d->dp.ring_size);
	ret = kha_prober_configure(d->prober, nc);
	if (ret) {
		log_err("daemon", "reload rejected: reconfiguring the probes: %s",
			strerror(-ret));
		free(nc);
		goto out;
	}
	d->cfg = nc;
	build_desired(d, NULL, 0);
	ret = kha_dp_sync(&d->dp, d->dpv, d->nr_dpv);
	if (ret)
		log_err("daemon", "reload: writing the maps: %s", strerror(-ret));
	kha_dp_set_lb_config(&d->dp, nc->snat_port_lo, nc->snat_port_hi,
			     kha_node_addr(nc));
	update_faults(d);
	/* VIP addresses: VRRP owns them when enabled */
	if (old->vrrp.enabled && nc->vrrp.enabled) {
		if (kha_vrrp_reconfigure(d->vrrp, nc) == -EINVAL) {
			kha_vrrp_stop(d->vrrp);
			d->vrrp = NULL;
			vrrp_start(d);
		}
	} else if (old->vrrp.enabled) {
		kha_vrrp_stop(d->vrrp);
		d->vrrp = NULL;
		vip_addrs_add(d, false);
	} else {
		vip_addrs_del(d, nc);
		if (nc->vrrp.enabled)
			vrrp_start(d);
		else
			vip_addrs_add(d, false);
	}
	local_apply(d);
	for (v = 0; v < d->nr_dpv; v++) {
		char a[64];

		log_debug("daemon", "vip %s: %d backends, %d in the table",
			  kha_addr_port_str(&d->dpv[v].addr, d->dpv[v].port, a,
					    sizeof(a)),
			  d->dpv[v].nr_backends, d->dpv[v].nr_in_ring);
	}
	log_notice("daemon", "configuration %s reloaded: %d VIPs, %d backends",
		   nc->path, nc->nr_vips, kha_config_nr_backends(nc));
	free(old);
out:
	kha_sd_notify("READY=1");
}

/* ---- loop callbacks ---- */

static void on_tick(struct kha_loop *l, void *arg)
{
	struct daemon *d = arg;
	uint32_t changed = reconcile(d);
	bool detached = !kha_dp_attached(&d->dp);
	int v;

	for (v = 0; v < d->nr_dpv; v++)
		if (changed & (1u << v))
			publish_vip(d, v, "first check after adoption");
	if (detached && if_nametoindex(d->dp.ifname)) {
		/*
		 * The interface came back (deleted and re-created, the link
		 * went with it): attach a fresh program to the same maps, so
		 * connection state and tables carry on.
		 */
		char err[256];

		if (!kha_dp_reattach(&d->dp, d->cfg->xdp_generic, err,
				     sizeof(err))) {
			int i, ifx = kha_nl_ifindex(d->dp.ifname);

			detached = false;
			d->local_tc = false;
			local_apply(d);
			/* the VIP addresses went with the old interface */
			for (i = 0; !d->vrrp && ifx > 0 && i < d->nr_added; i++)
				kha_nl_addr_add(ifx, d->added[i]);
		} else if (!d->fault_dp) {
			log_err("daemon", "re-attaching: %s", err);
		}
	}
	if (detached != d->fault_dp) {
		if (detached)
			log_err("daemon", "%s: the XDP program is no longer attached",
				d->dp.ifname);
		else
			log_notice("daemon", "%s: the XDP program is attached again",
				   d->dp.ifname);
		d->fault_dp = detached;
		if (d->vrrp)
			kha_vrrp_set_faults(d->vrrp, d->fault_backend,
					    d->fault_dp);
	}
	kha_timer_arm_in(l, &d->tick, TICK_MS);
}

static enum kha_exit_mode decide_exit(struct daemon *d, int sig)
{
	char job[64];
	int ret;

	if (d->o->exit_mode != KHA_EXIT_AUTO)
		return d->o->exit_mode;
	if (sig == SIGUSR2)
		return KHA_EXIT_KEEP;
	if (!getenv("NOTIFY_SOCKET") && !getenv("INVOCATION_ID"))
		return KHA_EXIT_STOP;
	ret = kha_systemd_job_type(getpid(), job, sizeof(job));
	if (ret == -ENOENT) {
		log_info("daemon", "systemd has no job running on this unit (signal sent directly): a stop");
		return KHA_EXIT_STOP;
	}
	if (ret) {
		log_warn("daemon", "asking systemd whether this is a stop or a restart: %s; treating it as a stop",
			 strerror(-ret));
		return KHA_EXIT_STOP;
	}
	log_info("daemon", "systemd job: %s", job);
	return strstr(job, "restart") ? KHA_EXIT_KEEP : KHA_EXIT_STOP;
}

static void on_signal(struct kha_loop *l, int fd, uint32_t events, void *arg)
{
	struct daemon *d = arg;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			log_notice("daemon", "SIGHUP: reloading %s", d->o->conf);
			reload(d);
			break;
		case SIGTERM:
		case SIGINT:
		case SIGUSR2:
			d->exit_mode = decide_exit(d, si.ssi_signo);
			log_notice("daemon", "%s: %s", strsignal(si.ssi_signo),
				   d->exit_mode == KHA_EXIT_KEEP ?
					   "exiting, data plane and VIP left in place for the next daemon" :
					   "stopping, removing everything");
			kha_loop_stop(l);
			break;
		}
	}
}

/* ---- run ---- */

static void teardown(struct daemon *d, bool full)
{
	struct kha_local_opts lo = {
		.ifname = d->dp.ifname,
		.pin_dir = d->dp.dir,
		.cgroup_path = d->cfg->cgroup,
		.tc = true,
		.cgroup = true,
	};

	if (full) {
		kha_sd_notify("STOPPING=1\nSTATUS=removing the data plane");
		kha_vrrp_stop(d->vrrp); /* priority 0, VIPs removed */
		d->vrrp = NULL;
		vip_addrs_del(d, NULL);
		kha_local_detach(&lo);
		kha_dp_destroy(&d->dp);
	} else {
		kha_sd_notify("STOPPING=1\nSTATUS=leaving the data plane for the next daemon");
		/*
		 * No priority-0 advert and no VIP removal: the next daemon
		 * adopts the VIP (kha_vrrp_sm_adopt) and the data plane.
		 */
		kha_vrrp_release(d->vrrp);
		d->vrrp = NULL;
		kha_dp_close(&d->dp);
	}
}

int kha_daemon_run(const struct kha_daemon_opts *o)
{
	struct daemon *d = calloc(1, sizeof(*d));
	struct kha_dp_view_vip *seen = NULL;
	struct kha_dp_opts dpo = {};
	char err[512];
	sigset_t mask;
	int nseen = 0, ret, rc = 1;

	if (!d)
		return 1;
	d->o = o;
	d->sfd = -1;
	d->lock_fd = -1;
	d->cfg = calloc(1, sizeof(*d->cfg));
	d->dpv = calloc(KHA_MAX_VIPS, sizeof(*d->dpv));
	if (!d->cfg || !d->dpv)
		goto out_free;
	if (kha_config_load(o->conf, d->cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		goto out_free;
	}
	if (o->pin_root)
		snprintf(d->cfg->pin_root, sizeof(d->cfg->pin_root), "%s",
			 o->pin_root);
	snprintf(d->ctl_path, sizeof(d->ctl_path), "%s",
		 o->ctl_path ? o->ctl_path : d->cfg->ctl_socket);

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d->loop = kha_loop_new();
	if (d->sfd < 0 || !d->loop) {
		log_err("daemon", "event loop: %s", strerror(errno));
		goto out_free;
	}
	kha_loop_add_fd(d->loop, d->sfd, EPOLLIN, on_signal, d);

	/* one daemon per data plane; the lock goes with the process */
	d->lock_fd = kha_dp_lock(d->cfg->ifname, d->cfg->pin_root);
	if (d->lock_fd < 0) {
		if (d->lock_fd == -EWOULDBLOCK)
			log_err("daemon", "another kha-xdp daemon already runs for %s (it holds %s/%s)",
				d->cfg->ifname, d->cfg->pin_root,
				d->cfg->ifname);
		else
			log_err("daemon", "locking %s/%s: %s", d->cfg->pin_root,
				d->cfg->ifname, strerror(-d->lock_fd));
		goto out_free;
	}

	/* the data plane: adopt what a previous daemon left, or load */
	dpo.ifname = d->cfg->ifname;
	dpo.pin_root = d->cfg->pin_root;
	dpo.ring_size = d->cfg->ring_size;
	dpo.xdp_generic = d->cfg->xdp_generic;
	ret = kha_dp_open(&d->dp, &dpo, err, sizeof(err));
	if (ret) {
		log_err("daemon", "%s", err);
		goto out_free;
	}
	if (d->dp.adopted) {
		seen = calloc(KHA_MAX_VIPS, sizeof(*seen));
		if (seen)
			kha_dp_read_view(&d->dp, seen, KHA_MAX_VIPS, &nseen);
		if (d->cfg->ring_size != d->dp.ring_size)
			log_warn("daemon", "ring_size %u: the pinned maps use %u; kept (detach to change it)",
				 d->cfg->ring_size, d->dp.ring_size);
	}
	kha_dp_set_lb_config(&d->dp, d->cfg->snat_port_lo,
			     d->cfg->snat_port_hi, kha_node_addr(d->cfg));

	d->prober = kha_prober_new(d->loop, on_health, d);
	if (!d->prober || kha_prober_configure(d->prober, d->cfg)) {
		log_err("daemon", "health probes: %s", strerror(errno));
		goto out_dp;
	}
	build_desired(d, seen, nseen);
	free(seen);
	seen = NULL;
	ret = kha_dp_sync(&d->dp, d->dpv, d->nr_dpv);
	if (ret) {
		log_err("daemon", "writing the maps in %s: %s", d->dp.dir,
			strerror(-ret));
		goto out_dp;
	}
	update_faults(d);
	local_apply(d);
	/* a node that cannot speak VRRP must not pretend to be in the group */
	if (d->cfg->vrrp.enabled && vrrp_start(d))
		goto out_dp;
	if (!d->cfg->vrrp.enabled)
		vip_addrs_add(d, d->dp.adopted);

	d->ctl = kha_ctl_listen(d->loop, d->ctl_path, ctl_handler, d);
	if (!d->ctl)
		log_err("daemon", "control socket %s: %s (status and drain need it)",
			d->ctl_path, strerror(errno));
	kha_timer_init(&d->tick, on_tick, d);
	kha_timer_arm_in(d->loop, &d->tick, TICK_MS);

	log_notice("daemon", "running on %s: %d VIPs, %d backends, data plane %s, VRRP %s, control socket %s",
		   d->cfg->ifname, d->cfg->nr_vips,
		   kha_config_nr_backends(d->cfg),
		   d->dp.adopted ? "adopted" : "loaded",
		   d->cfg->vrrp.enabled ? "on" : "off", d->ctl_path);
	if (d->cfg->status.enabled)
		log_warn("daemon", "%s: the status { } block is accepted but this version serves no HTTP status page yet; use `kha-xdp status`",
			 d->cfg->path);
	kha_sd_notify("READY=1\nSTATUS=running");

	ret = kha_loop_run(d->loop);
	if (ret)
		log_err("daemon", "event loop: %s", strerror(-ret));
	rc = 0;
	kha_ctl_close(d->ctl);
	d->ctl = NULL;
	kha_prober_free(d->prober);
	d->prober = NULL;
	teardown(d, d->exit_mode != KHA_EXIT_KEEP);
	goto out_free;
out_dp:
	kha_prober_free(d->prober);
	/* a data plane we loaded ourselves goes; an adopted one stays */
	teardown(d, !d->dp.adopted);
out_free:
	free(seen);
	if (d->loop)
		kha_loop_free(d->loop);
	if (d->sfd >= 0)
		close(d->sfd);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	free(d->dpv);
	free(d->cfg);
	free(d);
	return rc;
}
