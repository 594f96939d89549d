// SPDX-License-Identifier: GPL-2.0
/*
 * VRRP on the wire. Everything protocol-shaped is decided by the pure state
 * machine in vrrp.c; this file turns its actions into packets, addresses,
 * gratuitous ARPs and notify runs, and feeds it packets and timer ticks.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netpacket/packet.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "log.h"
#include "netlink.h"
#include "vrrp_io.h"

#define SUB "vrrp"
#define LINK_POLL_MS 250
#define DROP_LOG_MS 10000

struct kha_vrrp_node {
	struct kha_loop *loop;
	struct kha_vrrp_conf conf; /* peers, garp, notify */
	char ifname[IF_NAMESIZE];
	int ifindex;
	uint8_t mac[ETH_ALEN];
	int fd;                    /* raw IPPROTO_VRRP */
	int arp_fd;                /* AF_PACKET for GARP */
	struct kha_vrrp_sm sm;
	struct kha_timer sm_timer;
	struct kha_timer garp_timer;
	struct kha_timer link_timer;
	int garp_bursts_left;      /* takeover: 2 bursts, delay apart */
	uint16_t ip_id;
	bool link_up;
	bool fault_backend, fault_dataplane;
	kha_vrrp_state_cb on_state;
	void *arg;
	time_t last_transition;
	uint64_t garp_sent;
	uint64_t drop_logged_at[KHA_VRRP_DROP_MAX];
	uint64_t send_err_logged_at;
};

static const char *ip4(uint32_t a, char *buf)
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/* ---- notify: fork + execv, no shell, never waits on the child ---- */

static void run_notify(struct kha_vrrp_node *n, const char *state)
{
	char *argv[3];
	pid_t pid;

	if (!n->conf.notify[0])
		return;
	argv[0] = n->conf.notify;
	argv[1] = (char *)state;
	argv[2] = NULL;
	pid = fork();
	if (pid < 0) {
		log_err(SUB, "notify %s %s: fork: %s", n->conf.notify, state,
			strerror(errno));
		return;
	}
	if (pid == 0) {
		/*
		 * Double fork: the grandchild is reparented to init, so the
		 * daemon needs no SIGCHLD handling and leaves no zombie, and
		 * a slow script never blocks the loop.
		 */
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (fork() == 0) {
			execv(argv[0], argv);
			_exit(127);
		}
		_exit(0);
	}
	waitpid(pid, NULL, 0);
}

/* ---- sending ---- */

static void send_advert(struct kha_vrrp_node *n, uint8_t prio)
{
	uint8_t buf[KHA_VRRP_PKT_MAX];
	struct sockaddr_in dst = { .sin_family = AF_INET };
	int nr = n->conf.nr_peers ? n->conf.nr_peers : 1;

	for (int i = 0; i < nr; i++) {
		int len, flags = 0;

		if (n->conf.nr_peers) {
			dst.sin_addr = n->conf.peers[i];
		} else {
			dst.sin_addr.s_addr = htonl(KHA_VRRP_MCAST_GROUP);
			flags = MSG_DONTROUTE;
		}
		if (!++n->ip_id) /* the kernel fills in an id of 0 */
			n->ip_id = 1;
		len = kha_vrrp_build(&n->sm.p, prio, dst.sin_addr.s_addr,
				     n->ip_id, buf, sizeof(buf));
		if (len < 0)
			return;
		if (sendto(n->fd, buf, (size_t)len, flags,
			   (struct sockaddr *)&dst, sizeof(dst)) < 0) {
			uint64_t now = kha_now_ms();
			char a[INET_ADDRSTRLEN];

			if (now - n->send_err_logged_at >= DROP_LOG_MS) {
				n->send_err_logged_at = now;
				log_warn(SUB, "%s: advert to %s: %s", n->ifname,
					 ip4(dst.sin_addr.s_addr, a),
					 strerror(errno));
			}
		}
	}
}

static void send_garp(struct kha_vrrp_node *n, int repeat)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ARP),
		.sll_ifindex = n->ifindex,
		.sll_halen = ETH_ALEN,
	};
	uint8_t f[42];

	if (n->arp_fd < 0)
		return;
	memset(sll.sll_addr, 0xff, ETH_ALEN);
	for (int r = 0; r < repeat; r++) {
		for (int i = 0; i < n->sm.p.nr_addrs; i++) {
			/* keepalived's gratuitous ARP: a broadcast request
			 * for the VIP from the VIP */
			memset(f, 0xff, ETH_ALEN);
			memcpy(f + 6, n->mac, ETH_ALEN);
			f[12] = 0x08, f[13] = 0x06;
			f[14] = 0, f[15] = 1;       /* Ethernet */
			f[16] = 0x08, f[17] = 0x00; /* IPv4 */
			f[18] = 6, f[19] = 4;
			f[20] = 0, f[21] = 1;       /* request */
			memcpy(f + 22, n->mac, ETH_ALEN);
			memcpy(f + 28, &n->sm.p.addrs[i], 4);
			memset(f + 32, 0xff, ETH_ALEN);
			memcpy(f + 38, &n->sm.p.addrs[i], 4);
			if (sendto(n->arp_fd, f, sizeof(f), 0,
				   (struct sockaddr *)&sll, sizeof(sll)) < 0)
				log_debug(SUB, "%s: gratuitous ARP: %s",
					  n->ifname, strerror(errno));
			else
				n->garp_sent++;
		}
	}
}

static void garp_cb(struct kha_loop *l, void *arg)
{
	struct kha_vrrp_node *n = arg;

	if (n->sm.state != KHA_VRRP_MASTER)
		return;
	if (n->garp_bursts_left > 0) {
		n->garp_bursts_left--;
		send_garp(n, (int)n->conf.garp_repeat);
	} else if (n->conf.garp_refresh_ms) {
		send_garp(n, n->conf.garp_refresh_repeat ?
				     (int)n->conf.garp_refresh_repeat : 1);
	}
	if (n->garp_bursts_left > 0)
		kha_timer_arm_in(l, &n->garp_timer, n->conf.garp_delay_ms);
	else if (n->conf.garp_refresh_ms)
		kha_timer_arm_in(l, &n->garp_timer, n->conf.garp_refresh_ms);
}

static void start_garp(struct kha_vrrp_node *n)
{
	/* keepalived: one burst now, another garp_master_delay later */
	n->garp_bursts_left = n->conf.garp_delay_ms ? 1 : 0;
	send_garp(n, n->conf.garp_repeat ? (int)n->conf.garp_repeat : 1);
	if (n->garp_bursts_left)
		kha_timer_arm_in(n->loop, &n->garp_timer,
				 n->conf.garp_delay_ms);
	else if (n->conf.garp_refresh_ms)
		kha_timer_arm_in(n->loop, &n->garp_timer,
				 n->conf.garp_refresh_ms);
}

/* ---- VIPs ---- */

static void vips_add(struct kha_vrrp_node *n)
{
	for (int i = 0; i < n->sm.p.nr_addrs; i++) {
		struct in_addr a = { n->sm.p.addrs[i] };

		kha_nl_addr_add(n->ifindex, a); /* logs its own errors */
	}
}

static void vips_del(struct kha_vrrp_node *n, const struct kha_vrrp_params *p)
{
	for (int i = 0; i < p->nr_addrs; i++) {
		struct in_addr a = { p->addrs[i] };

		kha_nl_addr_del(n->ifindex, a);
	}
}

static bool vips_all_present(struct kha_vrrp_node *n,
			     const struct kha_vrrp_params *p)
{
	for (int i = 0; i < p->nr_addrs; i++) {
		struct in_addr a = { p->addrs[i] };
		bool has = false;

		if (kha_nl_addr_has(n->ifindex, a, &has) || !has)
			return false;
	}
	return true;
}

/* ---- applying the machine's decisions ---- */

static void arm(struct kha_vrrp_node *n)
{
	uint64_t next = kha_vrrp_sm_next(&n->sm);

	if (next)
		kha_timer_arm_at(n->loop, &n->sm_timer, next);
	else
		kha_timer_cancel(n->loop, &n->sm_timer);
}

static void apply(struct kha_vrrp_node *n, unsigned act)
{
	char a[INET_ADDRSTRLEN];

	/* keepalived's order on takeover: advert, addresses, then ARP */
	if (act & KHA_VRRP_ACT_SEND_ADVERT)
		send_advert(n, n->sm.eff_prio);
	if (act & KHA_VRRP_ACT_SEND_PRIO0)
		send_advert(n, 0);
	if (act & KHA_VRRP_ACT_ADD_VIPS)
		vips_add(n);
	if (act & KHA_VRRP_ACT_DEL_VIPS) {
		vips_del(n, &n->sm.p);
		kha_timer_cancel(n->loop, &n->garp_timer);
	}
	if (act & KHA_VRRP_ACT_GARP)
		start_garp(n);
	if (act & KHA_VRRP_ACT_STATE) {
		enum kha_vrrp_state st = n->sm.state;

		n->last_transition = time(NULL);
		if (st == KHA_VRRP_BACKUP && n->sm.master_addr)
			log_notice(SUB, "%s vrid %d: entering BACKUP (%s; master %s prio %d)",
				   n->ifname, n->sm.p.vrid,
				   kha_vrrp_reason_name(n->sm.last_reason),
				   ip4(n->sm.master_addr, a), n->sm.master_prio);
		else
			log_notice(SUB, "%s vrid %d: entering %s (%s), priority %d",
				   n->ifname, n->sm.p.vrid,
				   st == KHA_VRRP_INIT ? "STOP" :
							 kha_vrrp_state_name(st),
				   kha_vrrp_reason_name(n->sm.last_reason),
				   n->sm.eff_prio);
		run_notify(n, st == KHA_VRRP_INIT ? "STOP" :
						    kha_vrrp_state_name(st));
		if (n->on_state)
			n->on_state(n->arg, st);
	}
	arm(n);
}

static void sm_timer_cb(struct kha_loop *l, void *arg)
{
	struct kha_vrrp_node *n = arg;

	apply(n, kha_vrrp_sm_timer(&n->sm, kha_now_ms()));
}

static void log_drop(struct kha_vrrp_node *n, enum kha_vrrp_drop d,
		     const uint8_t *pkt, size_t len)
{
	uint64_t now = kha_now_ms();
	char a[INET_ADDRSTRLEN] = "?";

	/* other VRIDs share the segment legitimately: not worth a line */
	if (d == KHA_VRRP_DROP_VRID || d == KHA_VRRP_DROP_OWN)
		return;
	if (n->drop_logged_at[d] && now - n->drop_logged_at[d] < DROP_LOG_MS)
		return;
	n->drop_logged_at[d] = now;
	if (len >= 20) {
		uint32_t s;

		memcpy(&s, pkt + 12, 4);
		ip4(s, a);
	}
	log_warn(SUB, "%s vrid %d: advert from %s dropped: %s (%" PRIu64
		      " so far)",
		 n->ifname, n->sm.p.vrid, a, kha_vrrp_drop_name(d),
		 n->sm.drops[d]);
}

static void rx_cb(struct kha_loop *l, int fd, uint32_t events, void *arg)
{
	struct kha_vrrp_node *n = arg;
	uint8_t buf[2048];

	for (int i = 0; i < 64; i++) {
		struct kha_vrrp_advert adv;
		enum kha_vrrp_drop d;
		ssize_t len = recv(fd, buf, sizeof(buf), 0);

		if (len < 0)
			return; /* EAGAIN, or an error the next read shows */
		d = kha_vrrp_parse(&n->sm.p, buf, (size_t)len, &adv);
		if (d != KHA_VRRP_OK) {
			n->sm.drops[d]++;
			log_drop(n, d, buf, (size_t)len);
			continue;
		}
		n->sm.rx_adverts++;
		if (!adv.priority)
			n->sm.rx_prio0++;
		apply(n, kha_vrrp_sm_advert(&n->sm, kha_now_ms(), &adv));
	}
}

static void update_faults(struct kha_vrrp_node *n)
{
	uint8_t old = n->sm.eff_prio;
	unsigned act = kha_vrrp_sm_set_faults(&n->sm, kha_now_ms(),
					      n->fault_backend,
					      n->fault_dataplane, !n->link_up);

	if (old != n->sm.eff_prio)
		log_notice(SUB, "%s vrid %d: effective priority %d -> %d (%s%s%s)",
			   n->ifname, n->sm.p.vrid, old, n->sm.eff_prio,
			   n->fault_backend ? "no healthy backend " : "",
			   n->fault_dataplane ? "data plane detached " : "",
			   !n->link_up ? "interface down" : "");
	apply(n, act);
}

static void link_cb(struct kha_loop *l, void *arg)
{
	struct kha_vrrp_node *n = arg;
	bool up = n->link_up;

	if (kha_nl_link_up(n->ifindex, &up) == 0 && up != n->link_up) {
		n->link_up = up;
		log_notice(SUB, "%s: link %s", n->ifname, up ? "up" : "down");
		/* keepalived's FAULT, and the state again once it clears */
		run_notify(n, up ? kha_vrrp_state_name(n->sm.state) : "FAULT");
		update_faults(n);
	}
	kha_timer_arm_in(l, &n->link_timer, LINK_POLL_MS);
}

/* ---- sockets ---- */

static int open_vrrp_socket(struct kha_vrrp_node *n)
{
	int one = 1, zero = 0, ttl = KHA_VRRP_TTL;
	struct ip_mreqn mr = { .imr_ifindex = n->ifindex };
	int fd;

	fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    IPPROTO_VRRP);
	if (fd < 0)
		return -errno;
	/* Everything stays on the configured interface, both ways. */
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, n->ifname,
		       (socklen_t)strlen(n->ifname) + 1) ||
	    setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one)) ||
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr)) ||
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero,
		       sizeof(zero)) ||
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)))
		goto err;
	if (!n->conf.nr_peers) {
		mr.imr_multiaddr.s_addr = htonl(KHA_VRRP_MCAST_GROUP);
		if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr,
			       sizeof(mr)))
			goto err;
	}
	return fd;
err:
	one = -errno;
	close(fd);
	return one;
}

static int open_arp_socket(struct kha_vrrp_node *n)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = 0, /* send only: receive nothing */
		.sll_ifindex = n->ifindex,
	};
	struct ifreq ifr = {};
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", n->ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		int err = -errno;

		close(fd);
		return err;
	}
	memcpy(n->mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	return fd;
}

static int node_params(struct kha_vrrp_node *n, const struct kha_config *cfg,
		       struct kha_vrrp_params *p)
{
	struct in_addr skip[KHA_MAX_VIPS], primary = { 0 };
	int err;

	for (int i = 0; i < cfg->nr_vips; i++)
		skip[i] = cfg->vips[i].addr.sin_addr;
	if (!cfg->vrrp.src_addr.s_addr) {
		err = kha_nl_primary_addr(n->ifindex, skip, cfg->nr_vips,
					  &primary);
		if (err) {
			log_err(SUB, "%s: no IPv4 address to send adverts from: %s",
				cfg->ifname, strerror(-err));
			return err;
		}
	}
	err = kha_vrrp_params_from_conf(p, cfg, primary.s_addr);
	if (err)
		log_err(SUB, "%s: invalid vrrp settings (version %d, vrid %d, priority %d)",
			cfg->ifname, cfg->vrrp.version, cfg->vrrp.vrid,
			cfg->vrrp.priority);
	return err;
}

struct kha_vrrp_node *kha_vrrp_start(struct kha_loop *loop,
				     const struct kha_config *cfg,
				     kha_vrrp_state_cb on_state, void *arg)
{
	struct kha_vrrp_node *n;
	struct kha_vrrp_params p;
	char a[INET_ADDRSTRLEN];
	int err;

	if (!cfg->vrrp.enabled) {
		errno = EINVAL;
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->loop = loop;
	n->conf = cfg->vrrp;
	n->fd = n->arp_fd = -1;
	n->on_state = on_state;
	n->arg = arg;
	n->link_up = true;
	snprintf(n->ifname, sizeof(n->ifname), "%s", cfg->ifname);
	kha_timer_init(&n->sm_timer, sm_timer_cb, n);
	kha_timer_init(&n->garp_timer, garp_cb, n);
	kha_timer_init(&n->link_timer, link_cb, n);

	n->ifindex = kha_nl_ifindex(n->ifname);
	if (n->ifindex < 0) {
		err = n->ifindex;
		log_err(SUB, "interface %s: %s", n->ifname, strerror(-err));
		goto err;
	}
	err = node_params(n, cfg, &p);
	if (err)
		goto err;
	n->fd = open_vrrp_socket(n);
	if (n->fd < 0) {
		err = n->fd;
		log_err(SUB, "%s: VRRP socket: %s", n->ifname, strerror(-err));
		goto err;
	}
	n->arp_fd = open_arp_socket(n);
	if (n->arp_fd < 0) {
		err = n->arp_fd;
		log_err(SUB, "%s: ARP socket: %s", n->ifname, strerror(-err));
		goto err;
	}
	err = kha_loop_add_fd(loop, n->fd, EPOLLIN, rx_cb, n);
	if (err) {
		log_err(SUB, "%s: event loop: %s", n->ifname, strerror(-err));
		goto err;
	}
	kha_nl_link_up(n->ifindex, &n->link_up);
	kha_vrrp_sm_init(&n->sm, &p);
	n->sm.fault_link = !n->link_up;
	log_info(SUB, "%s vrid %d: VRRPv%d from %s, priority %d, advert %u cs, %s",
		 n->ifname, p.vrid, p.version, ip4(p.primary, a), p.priority,
		 p.advert_int_cs, n->conf.nr_peers ? "unicast" : "multicast");
	if (p.nr_addrs && p.preempt && vips_all_present(n, &p)) {
		log_notice(SUB, "%s vrid %d: VIPs already present, adopting them",
			   n->ifname, p.vrid);
		apply(n, kha_vrrp_sm_adopt(&n->sm, kha_now_ms()));
	} else {
		/* a master killed under nopreempt must not keep them */
		vips_del(n, &p);
		apply(n, kha_vrrp_sm_start(&n->sm, kha_now_ms()));
	}
	kha_timer_arm_in(loop, &n->link_timer, LINK_POLL_MS);
	return n;
err:
	if (n->fd >= 0)
		close(n->fd);
	if (n->arp_fd >= 0)
		close(n->arp_fd);
	free(n);
	errno = -err;
	return NULL;
}

void kha_vrrp_set_faults(struct kha_vrrp_node *n, bool no_healthy_backend,
			 bool dataplane_detached)
{
	if (!n || (n->fault_backend == no_healthy_backend &&
		   n->fault_dataplane == dataplane_detached))
		return;
	n->fault_backend = no_healthy_backend;
	n->fault_dataplane = dataplane_detached;
	update_faults(n);
}

int kha_vrrp_reconfigure(struct kha_vrrp_node *n, const struct kha_config *cfg)
{
	struct kha_vrrp_params p, old = n->sm.p;
	int err;

	if (!cfg->vrrp.enabled || strcmp(cfg->ifname, n->ifname) ||
	    cfg->vrrp.vrid != old.vrid || cfg->vrrp.version != old.version ||
	    (cfg->vrrp.nr_peers > 0) != (n->conf.nr_peers > 0))
		return -EINVAL;
	err = node_params(n, cfg, &p);
	if (err)
		return err;
	if (n->sm.state == KHA_VRRP_MASTER) {
		/* VIPs no longer configured leave the interface now */
		struct kha_vrrp_params gone = old;

		gone.nr_addrs = 0;
		for (int i = 0; i < old.nr_addrs; i++) {
			bool kept = false;

			for (int j = 0; j < p.nr_addrs; j++)
				kept |= p.addrs[j] == old.addrs[i];
			if (!kept)
				gone.addrs[gone.nr_addrs++] = old.addrs[i];
		}
		vips_del(n, &gone);
	}
	n->conf = cfg->vrrp;
	apply(n, kha_vrrp_sm_update(&n->sm, kha_now_ms(), &p));
	log_info(SUB, "%s vrid %d: reconfigured: priority %d (effective %d), advert %u cs, %d VIPs, %s",
		 n->ifname, p.vrid, p.priority, n->sm.eff_prio, p.advert_int_cs,
		 p.nr_addrs, kha_vrrp_state_name(n->sm.state));
	return 0;
}

void kha_vrrp_stop(struct kha_vrrp_node *n)
{
	if (!n)
		return;
	kha_timer_cancel(n->loop, &n->garp_timer);
	kha_timer_cancel(n->loop, &n->link_timer);
	apply(n, kha_vrrp_sm_shutdown(&n->sm, kha_now_ms()));
	kha_timer_cancel(n->loop, &n->sm_timer);
	kha_loop_del_fd(n->loop, n->fd);
	close(n->fd);
	close(n->arp_fd);
	free(n);
}

void kha_vrrp_release(struct kha_vrrp_node *n)
{
	if (!n)
		return;
	kha_timer_cancel(n->loop, &n->garp_timer);
	kha_timer_cancel(n->loop, &n->link_timer);
	kha_timer_cancel(n->loop, &n->sm_timer);
	kha_loop_del_fd(n->loop, n->fd);
	close(n->fd);
	close(n->arp_fd);
	free(n);
}

void kha_vrrp_status(const struct kha_vrrp_node *n, struct kha_vrrp_status *out)
{
	const struct kha_vrrp_sm *sm = &n->sm;

	memset(out, 0, sizeof(*out));
	out->state = sm->state;
	out->version = sm->p.version;
	out->vrid = sm->p.vrid;
	snprintf(out->ifname, sizeof(out->ifname), "%s", n->ifname);
	out->priority = sm->p.priority;
	out->effective_priority = sm->eff_prio;
	out->fault_backend = sm->fault_backend;
	out->fault_dataplane = sm->fault_dataplane;
	out->fault_link = sm->fault_link;
	out->advert_int_cs = sm->p.advert_int_cs;
	/* the interval the group runs at: ours as master and in v2, the
	 * master's as a v3 backup once one was heard */
	out->master_adver_int_cs = sm->state == KHA_VRRP_BACKUP &&
						   sm->master_adver_int_cs ?
					   sm->master_adver_int_cs :
					   sm->p.advert_int_cs;
	out->primary.s_addr = sm->p.primary;
	out->master.s_addr = sm->master_addr;
	out->master_priority = sm->master_addr ? sm->master_prio : 0;
	out->nr_vips = sm->p.nr_addrs;
	for (int i = 0; i < sm->p.nr_addrs; i++)
		out->vips[i].s_addr = sm->p.addrs[i];
	out->last_transition = n->last_transition;
	out->last_reason = sm->last_reason;
	out->rx_adverts = sm->rx_adverts;
	out->tx_adverts = sm->tx_adverts;
	out->rx_prio0 = sm->rx_prio0;
	out->tx_prio0 = sm->tx_prio0;
	out->became_master = sm->became_master;
	out->garp_sent = n->garp_sent;
	memcpy(out->drops, sm->drops, sizeof(out->drops));
}

void kha_vrrp_status_json(const struct kha_vrrp_status *st, FILE *f)
{
	char pri[INET_ADDRSTRLEN], m[INET_ADDRSTRLEN], v[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &st->primary, pri, sizeof(pri));
	inet_ntop(AF_INET, &st->master, m, sizeof(m));
	fprintf(f, "{\"state\":\"%s\",\"version\":%d,\"vrid\":%d,"
		   "\"interface\":\"%s\",\"priority\":%d,"
		   "\"effective_priority\":%d,\"fault_backend\":%s,"
		   "\"fault_dataplane\":%s,\"fault_link\":%s,"
		   "\"advert_int_cs\":%u,\"master_adver_int_cs\":%u,"
		   "\"primary\":\"%s\",\"master\":\"%s\","
		   "\"master_priority\":%d,\"last_transition\":%lld,"
		   "\"last_reason\":\"%s\",\"rx_adverts\":%llu,"
		   "\"tx_adverts\":%llu,\"rx_prio0\":%llu,\"tx_prio0\":%llu,"
		   "\"became_master\":%llu,\"garp_sent\":%llu,\"vips\":[",
		kha_vrrp_state_name(st->state), st->version, st->vrid,
		st->ifname, st->priority, st->effective_priority,
		st->fault_backend ? "true" : "false",
		st->fault_dataplane ? "true" : "false",
		st->fault_link ? "true" : "false", st->advert_int_cs,
		st->master_adver_int_cs, pri, m, st->master_priority,
		(long long)st->last_transition,
		kha_vrrp_reason_name(st->last_reason),
		(unsigned long long)st->rx_adverts,
		(unsigned long long)st->tx_adverts,
		(unsigned long long)st->rx_prio0,
		(unsigned long long)st->tx_prio0,
		(unsigned long long)st->became_master,
		(unsigned long long)st->garp_sent);
	for (int i = 0; i < st->nr_vips; i++)
		fprintf(f, "%s\"%s\"", i ? "," : "",
			inet_ntop(AF_INET, &st->vips[i], v, sizeof(v)));
	fprintf(f, "],\"drops\":{");
	for (int i = 1; i < KHA_VRRP_DROP_MAX; i++)
		fprintf(f, "%s\"%s\":%llu", i > 1 ? "," : "",
			kha_vrrp_drop_name(i),
			(unsigned long long)st->drops[i]);
	fprintf(f, "}}");
}
