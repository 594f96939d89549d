/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VRRP on the wire: one raw IPPROTO_VRRP socket bound to the configured
 * interface (multicast 224.0.0.18 or unicast peers, TTL 255), timers on the
 * daemon's loop, VIPs added/removed with libnl-route-3, gratuitous ARP via
 * AF_PACKET, the optional notify command via fork+execv (no shell). The
 * protocol decisions are all in user/vrrp.c.
 */
#ifndef KHA_VRRP_IO_H
#define KHA_VRRP_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <netinet/in.h>

#include "config.h"
#include "loop.h"
#include "vrrp.h"

struct kha_vrrp_node;

typedef void (*kha_vrrp_state_cb)(void *arg, enum kha_vrrp_state st);

/*
 * Open the socket on cfg->ifname, join the group (or use cfg->vrrp.peers),
 * and leave INIT: BACKUP, or MASTER at once for priority 255 or when every
 * VIP is already on the interface and preempt is on (adoption after a
 * restart; otherwise leftover VIPs are removed first). on_state
 * (may be NULL) is called after every state change, after the VIPs were
 * added (MASTER) or removed (BACKUP). Returns NULL with errno set; the
 * reason is logged. cfg->vrrp.enabled must be true.
 */
struct kha_vrrp_node *kha_vrrp_start(struct kha_loop *loop,
				     const struct kha_config *cfg,
				     kha_vrrp_state_cb on_state, void *arg);

/*
 * The daemon's health: no backend healthy, data plane not attached. Either
 * lowers the effective priority by track_weight (interface down is tracked
 * here by polling the link). Cheap to call on every health change.
 */
void kha_vrrp_set_faults(struct kha_vrrp_node *n, bool no_healthy_backend,
			 bool dataplane_detached);

/*
 * Apply a reloaded config. Same interface/vrid/version: the state is kept
 * and the new priority, interval, VIPs (VIPs added/removed when MASTER),
 * peers, auth... take effect. Otherwise the caller must stop and start
 * again: returns -EINVAL. 0 on success.
 */
int kha_vrrp_reconfigure(struct kha_vrrp_node *n, const struct kha_config *cfg);

/*
 * Leave the group: a master sends a priority-0 advert and removes the VIPs
 * (backup peers take over after their skew time), notify gets "STOP",
 * then everything is freed. NULL is fine.
 */
void kha_vrrp_stop(struct kha_vrrp_node *n);

/*
 * Leave without a word, for an exit that keeps the data plane (binary
 * upgrade, systemd restart): no priority 0, the VIPs stay where they are,
 * notify is not run. The next daemon's kha_vrrp_start() adopts the VIPs
 * (MASTER at once) when all are still on the interface and preempt is
 * on. NULL is fine.
 */
void kha_vrrp_release(struct kha_vrrp_node *n);

struct kha_vrrp_status {
	enum kha_vrrp_state state;
	int version;
	int vrid;
	char ifname[IF_NAMESIZE];
	int priority;            /* configured */
	int effective_priority;  /* what we advertise */
	bool fault_backend, fault_dataplane, fault_link;
	uint32_t advert_int_cs;  /* ours */
	uint32_t master_adver_int_cs; /* v3: the master's, adopted */
	struct in_addr primary;  /* our source address */
	struct in_addr master;   /* current master (us when MASTER); 0 = none */
	int master_priority;
	int nr_vips;
	struct in_addr vips[KHA_VRRP_MAX_ADDRS];
	time_t last_transition;  /* wall clock; 0 = never */
	enum kha_vrrp_reason last_reason;
	uint64_t rx_adverts, tx_adverts, rx_prio0, tx_prio0, became_master;
	uint64_t garp_sent;
	uint64_t drops[KHA_VRRP_DROP_MAX]; /* by kha_vrrp_drop_name() */
};

void kha_vrrp_status(const struct kha_vrrp_node *n, struct kha_vrrp_status *out);

/*
 * The whole status as one JSON object ({"state":"MASTER",...}, no newline),
 * for `kha-xdp status --json` and the status page: every field above,
 * addresses as strings, drops as {"bad_ttl":0,...} by kha_vrrp_drop_name().
 */
void kha_vrrp_status_json(const struct kha_vrrp_status *st, FILE *f);

#endif /* KHA_VRRP_IO_H */
