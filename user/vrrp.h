/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VRRP for IPv4, versions 2 (RFC 3768) and 3 (RFC 5798), as keepalived
 * speaks them. This half is pure: packet encode/decode/validate, checksums
 * and the state machine. It has no sockets and no clock of its own; every
 * entry point takes `now` (monotonic ms) and returns the actions the caller
 * must carry out (user/vrrp_io.c does that on the real network, the unit
 * tests with a fake clock and fake packets).
 */
#ifndef KHA_VRRP_H
#define KHA_VRRP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "config.h"

#ifndef IPPROTO_VRRP
#define IPPROTO_VRRP 112
#endif
#define KHA_VRRP_MCAST_GROUP 0xe0000012U /* 224.0.0.18, host order */
#define KHA_VRRP_TTL 255
#define KHA_VRRP_TYPE_ADVERT 1
#define KHA_VRRP_AUTH_NONE 0
#define KHA_VRRP_AUTH_PASS 1 /* v2 simple text password */
#define KHA_VRRP_AUTH_AH 2   /* v2 IP AH: not supported, counted */
#define KHA_VRRP_AUTH_LEN 8
#define KHA_VRRP_MAX_ADDRS KHA_MAX_VIPS
#define KHA_VRRP_HDR_LEN 8
/* Largest advert we build or accept: IP header with options + header +
 * every address + v2 auth data. */
#define KHA_VRRP_PKT_MAX (60 + KHA_VRRP_HDR_LEN + 4 * 255 + KHA_VRRP_AUTH_LEN)

/*
 * Why a received packet was ignored. Every reason has a counter; a dropped
 * packet never changes the state. Names in kha_vrrp_drop_name().
 */
enum kha_vrrp_drop {
	KHA_VRRP_OK = 0,
	KHA_VRRP_DROP_IP,        /* truncated/invalid IPv4 header, not proto 112 */
	KHA_VRRP_DROP_TTL,       /* multicast advert with TTL != 255 */
	KHA_VRRP_DROP_LENGTH,    /* length != header + addresses (+ auth), or != IP total */
	KHA_VRRP_DROP_VERSION,   /* not the configured version */
	KHA_VRRP_DROP_TYPE,      /* type != 1 (advertisement) */
	KHA_VRRP_DROP_CHECKSUM,  /* bad checksum (both v3 variants tried) */
	KHA_VRRP_DROP_VRID,      /* another virtual router on the segment */
	KHA_VRRP_DROP_AUTH_TYPE, /* v2 auth type differs from ours */
	KHA_VRRP_DROP_AUTH,      /* v2 password differs */
	KHA_VRRP_DROP_INTERVAL,  /* v2 advert interval differs from ours */
	KHA_VRRP_DROP_ADDR_LIST, /* address count/list differs from our VIPs */
	KHA_VRRP_DROP_DEST,      /* unicast when we use multicast or reverse */
	KHA_VRRP_DROP_ZERO_INTERVAL, /* v3 advert interval of 0 */
	KHA_VRRP_DROP_OWN,       /* from our own source address */
	KHA_VRRP_DROP_MAX
};

/* What the caller must do after an event; a bit mask. */
enum kha_vrrp_action {
	KHA_VRRP_ACT_SEND_ADVERT = 1 << 0, /* advert at sm->eff_prio */
	KHA_VRRP_ACT_SEND_PRIO0 = 1 << 1,  /* advert with priority 0 */
	KHA_VRRP_ACT_ADD_VIPS = 1 << 2,    /* put the VIPs on the interface */
	KHA_VRRP_ACT_DEL_VIPS = 1 << 3,    /* take them off */
	KHA_VRRP_ACT_GARP = 1 << 4,        /* start the takeover GARP bursts */
	KHA_VRRP_ACT_STATE = 1 << 5,       /* state changed: notify, log */
};

/* Why the last transition happened (status, logs). */
enum kha_vrrp_reason {
	KHA_VRRP_R_NONE = 0,
	KHA_VRRP_R_STARTUP,         /* INIT -> BACKUP (or MASTER for owner) */
	KHA_VRRP_R_MASTER_DOWN,     /* Master_Down_Timer expired */
	KHA_VRRP_R_PRIO0,           /* master resigned: priority-0 advert */
	KHA_VRRP_R_HIGHER_PRIO,     /* advert with a higher priority */
	KHA_VRRP_R_HIGHER_ADDR,     /* equal priority, higher primary address */
	KHA_VRRP_R_PREEMPT,         /* we preempted a lower-priority master */
	KHA_VRRP_R_SHUTDOWN,        /* stopped */
	KHA_VRRP_R_ADOPT,           /* VIPs left by the previous daemon */
	KHA_VRRP_R_MAX
};

/* Everything the pure machine needs, derived from struct kha_vrrp_conf. */
struct kha_vrrp_params {
	int version;             /* 2 or 3 */
	uint8_t vrid;
	uint8_t priority;        /* configured, 1..255 */
	uint16_t advert_int_cs;  /* ours; v2 multiple of 100 */
	enum kha_vrrp_state initial_state; /* BACKUP, or MASTER (see .c) */
	bool preempt;
	uint32_t preempt_delay_ms;
	bool unicast;            /* unicast peers: no TTL check */
	uint8_t auth_type;       /* KHA_VRRP_AUTH_NONE or _PASS (v2 only) */
	char auth_pass[KHA_VRRP_AUTH_LEN]; /* zero padded, not terminated */
	int track_weight;        /* subtracted on any fault, >= 0 */
	uint32_t primary;        /* our source address, network order */
	int nr_addrs;
	uint32_t addrs[KHA_VRRP_MAX_ADDRS]; /* VIPs, network order, deduped */
};

/* A decoded advert, host-order numbers, network-order addresses. */
struct kha_vrrp_advert {
	uint32_t saddr, daddr;   /* from the IPv4 header */
	uint8_t ttl;
	uint8_t version, type, vrid, priority, naddr;
	uint8_t auth_type;       /* v2 only */
	uint16_t adver_int_cs;   /* v2: seconds x 100 */
	uint16_t checksum;
	bool old_checksum;       /* v3 unicast, keepalived < 2.2.0 variant */
	uint32_t addrs[KHA_VRRP_MAX_ADDRS]; /* first min(naddr, MAX) */
	char auth[KHA_VRRP_AUTH_LEN];
};

/* The state machine. Fields are readable; change them only through calls. */
struct kha_vrrp_sm {
	struct kha_vrrp_params p;
	enum kha_vrrp_state state;
	uint8_t eff_prio;            /* priority in our adverts */
	bool fault_backend, fault_dataplane, fault_link;
	uint16_t master_adver_int_cs; /* v3: adopted from the master */
	uint64_t master_down_at;     /* BACKUP: Master_Down_Timer; 0 = off */
	uint64_t adver_at;           /* MASTER: Adver_Timer; 0 = off */
	uint64_t preempt_at;         /* BACKUP: preempt_delay ends; 0 = off */
	uint32_t master_addr;        /* last master seen (or us), net order */
	uint8_t master_prio;         /* its priority */
	bool prio0_seen;             /* the master resigned (reason) */
	uint64_t last_change_ms;
	enum kha_vrrp_reason last_reason;
	/* counters */
	uint64_t rx_adverts, tx_adverts, rx_prio0, tx_prio0, became_master;
	uint64_t drops[KHA_VRRP_DROP_MAX];
};

/* ---- packets ---- */

/* RFC 1071 one's complement sum folded to 16 bits, over `len` bytes
 * starting from `sum` (so parts can be chained); returns ~sum. */
uint16_t kha_vrrp_csum(const void *data, size_t len, uint32_t sum);
/* Checksum of a VRRP message as the version defines it; saddr/daddr
 * (network order) form the v3 pseudo-header and are ignored for v2. */
uint16_t kha_vrrp_msg_csum(int version, const uint8_t *msg, size_t len,
			   uint32_t saddr, uint32_t daddr);

/*
 * Build a whole advert for `prio` into buf, IPv4 header included (as
 * keepalived does, and sent with IP_HDRINCL): TOS 0xc0, TTL 255, source
 * p->primary, destination daddr (the group or a unicast peer, network
 * order; also the v3 pseudo-header's), IP id `ip_id`. Returns the length
 * or -ENOSPC.
 */
int kha_vrrp_build(const struct kha_vrrp_params *p, uint8_t prio,
		   uint32_t daddr, uint16_t ip_id, uint8_t *buf, size_t size);

/*
 * Decode and validate a received IPv4 packet (IP header included, as a raw
 * socket returns it) against our parameters, in keepalived's order.
 * Returns KHA_VRRP_OK with *a filled, or the reason to drop it. Pure: it
 * does not count; kha_vrrp_sm_rx() does.
 */
enum kha_vrrp_drop kha_vrrp_parse(const struct kha_vrrp_params *p,
				  const uint8_t *pkt, size_t len,
				  struct kha_vrrp_advert *a);

/* ---- state machine ---- */

/* Fill params from the config: VIPs deduped, v2 interval rounded to whole
 * seconds, auth only for v2. `primary` is the source address (network
 * order) when the config has none. Returns 0 or -EINVAL. */
int kha_vrrp_params_from_conf(struct kha_vrrp_params *p,
			      const struct kha_config *cfg, uint32_t primary);

void kha_vrrp_sm_init(struct kha_vrrp_sm *sm, const struct kha_vrrp_params *p);
/* Startup event (leaves INIT). */
unsigned kha_vrrp_sm_start(struct kha_vrrp_sm *sm, uint64_t now);
/*
 * Startup event when the VIPs are already on the interface (a previous
 * daemon exited leaving them, or was killed): go MASTER at once rather
 * than drop them for a Master_Down_Interval; a better master's next
 * advert still takes over. Only with preempt (see vrrp_io.c).
 */
unsigned kha_vrrp_sm_adopt(struct kha_vrrp_sm *sm, uint64_t now);
/* Run whatever timers are due at `now`. */
unsigned kha_vrrp_sm_timer(struct kha_vrrp_sm *sm, uint64_t now);
/* Earliest deadline (ms) the caller must call kha_vrrp_sm_timer at;
 * 0 = none. */
uint64_t kha_vrrp_sm_next(const struct kha_vrrp_sm *sm);
/* Raw received packet: parses, counts a drop or acts on a valid advert. */
unsigned kha_vrrp_sm_rx(struct kha_vrrp_sm *sm, uint64_t now,
			const uint8_t *pkt, size_t len);
/* An already validated advert. */
unsigned kha_vrrp_sm_advert(struct kha_vrrp_sm *sm, uint64_t now,
			    const struct kha_vrrp_advert *a);
/* Faults lower the effective priority by track_weight (clamped 1..254,
 * 255 never changed). A master whose priority drops sends an advert at
 * once so a higher backup preempts it without waiting. */
unsigned kha_vrrp_sm_set_faults(struct kha_vrrp_sm *sm, uint64_t now,
				bool backend, bool dataplane, bool link);
/* Shutdown event: a master sends priority 0 and drops the VIPs. */
unsigned kha_vrrp_sm_shutdown(struct kha_vrrp_sm *sm, uint64_t now);
/* New parameters on reload, keeping state where the group is the same. */
unsigned kha_vrrp_sm_update(struct kha_vrrp_sm *sm, uint64_t now,
			    const struct kha_vrrp_params *p);

/* Effective priority for a configured priority and fault set. */
uint8_t kha_vrrp_eff_prio(uint8_t prio, int weight, bool faulty);
/* Skew and Master_Down_Interval in ms for the version and priority. */
uint32_t kha_vrrp_skew_ms(int version, uint8_t prio, uint16_t adver_int_cs);
uint32_t kha_vrrp_master_down_ms(int version, uint8_t prio,
				 uint16_t adver_int_cs);

const char *kha_vrrp_state_name(enum kha_vrrp_state st);
const char *kha_vrrp_drop_name(enum kha_vrrp_drop d);
const char *kha_vrrp_reason_name(enum kha_vrrp_reason r);

#endif /* KHA_VRRP_H */
