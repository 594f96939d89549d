/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kha-xdp map ABI: every key and value shared by the BPF programs and user
 * space. One definition; both sides include this file. Fixed-width types,
 * byte order explicit in the type name, explicit padding.
 *
 * Maps (pinned by name under <pin_root>/<ifname>/, see docs/maps.md):
 *   vips          HASH   struct kha_vip_key      -> struct kha_vip
 *   vip_state     ARRAY  __u32 vip_id            -> struct kha_vip_state
 *   rings         ARRAY  __u32 ring index        -> __u32 backend_id
 *                        index = kha_ring_index(vip_id, gen, slot, ring_size)
 *                        (BPF_F_MMAPABLE; two generations per VIP so a
 *                        new table is written aside, then published by
 *                        flipping vip_state.active_gen)
 *   backends      ARRAY  __u32 backend_id        -> struct kha_backend
 *   conntrack     LRU    struct kha_flow_key     -> struct kha_ct
 *                        (client -> VIP direction)
 *   snat          LRU    struct kha_flow_key     -> struct kha_snat
 *                        (backend -> VIP:snat_port for remote backends,
 *                         backend -> client for local backends)
 *   vip_stats     PERCPU_ARRAY vip_id           -> struct kha_counters
 *   backend_stats PERCPU_ARRAY backend_id       -> struct kha_counters
 *   reasons       PERCPU_ARRAY 0                -> struct kha_reasons
 *   lb_config     ARRAY  0                      -> struct kha_lb_config
 */
#ifndef KHA_ABI_H
#define KHA_ABI_H

#include <linux/types.h>

#ifndef KHA_MAX_VIPS
#define KHA_MAX_VIPS 16
#endif
#ifndef KHA_MAX_BACKENDS
#define KHA_MAX_BACKENDS 256
#endif
/* Default Maglev table size: prime, > 100 x KHA_MAX_BACKENDS. */
#ifndef KHA_RING_SIZE_DEFAULT
#define KHA_RING_SIZE_DEFAULT 65537
#endif
#ifndef KHA_RING_SIZE_MAX
#define KHA_RING_SIZE_MAX 131071
#endif
#ifndef KHA_CT_ENTRIES
#define KHA_CT_ENTRIES 262144
#endif
/*
 * conntrack and snat use per-CPU LRU lists (bpf/maps.h) only while each
 * possible CPU's share of KHA_CT_ENTRIES stays at least this many flows.
 */
#ifndef KHA_CT_PERCPU_MIN
#define KHA_CT_PERCPU_MIN 65536
#endif
/* Attempts to claim a free SNAT source port before giving up. */
#ifndef KHA_SNAT_RETRIES
#define KHA_SNAT_RETRIES 8
#endif
/*
 * SNAT port reuse. kha_snat.last_seen counts ticks of 2^30 ns (1.07 s) of
 * CLOCK_MONOTONIC: a shift, where seconds would cost the fast path a
 * 64-bit division. A remote flow whose backend has not replied for
 * KHA_SNAT_IDLE_TICKS (~120 s, longer than TIME_WAIT, so a backend never
 * sees a reused 4-tuple it still remembers) gives its port to a new flow
 * that draws it; after a reset (either side) the port is free
 * KHA_SNAT_RST_TICKS later.
 */
#define KHA_SNAT_TICK_SHIFT 30
#ifndef KHA_SNAT_IDLE_TICKS
#define KHA_SNAT_IDLE_TICKS 112
#endif
#ifndef KHA_SNAT_RST_TICKS
#define KHA_SNAT_RST_TICKS 2
#endif
/*
 * Hold of a closed flow's SNAT port (tc2, docs/datapath.md "Closing"):
 * FIN both ways, the client's first: the TIME_WAIT is the client's, the
 * backend only needs its last ACK, ~2 s. The backend's FIN first: the
 * backend holds TIME_WAIT on VIP:port for 60 s (Linux), so the port
 * waits ~60 s (56 ticks: at least 60.1 s) before another flow may use it.
 */
#ifndef KHA_SNAT_CLOSE_TICKS
#define KHA_SNAT_CLOSE_TICKS 2
#endif
#ifndef KHA_SNAT_TW_TICKS
#define KHA_SNAT_TW_TICKS 56
#endif
#define KHA_SNAT_PORT_LO_DEFAULT 10240
#define KHA_SNAT_PORT_HI_DEFAULT 32767

/* Backend id meaning "no backend" in a ring slot (empty table). */
#define KHA_NO_BACKEND 0xffffffffu

#define KHA_AF_INET 2   /* == AF_INET; kept here so BPF needs no libc */
#define KHA_AF_INET6 10 /* == AF_INET6 */

/* An address of either family; IPv4 uses v4 and leaves the rest zero. */
struct kha_addr {
	union {
		__be32 v4;
		__be32 v6[4];
	};
};

struct kha_vip_key {
	struct kha_addr addr;
	__be16 port;
	__u8 proto;  /* IPPROTO_TCP */
	__u8 family; /* KHA_AF_INET */
};

/* vip flags */
#define KHA_VIP_F_ACTIVE (1u << 0)

struct kha_vip {
	__u32 vip_id;
	__u32 flags; /* KHA_CT_F_* */
};

/* kha_ct.flags: what the client sent to close the flow (set once) */
#define KHA_CT_F_CLIENT_FIN (1u << 0)
#define KHA_CT_F_CLIENT_RST (1u << 1)
#define KHA_CT_F_CLOSING (KHA_CT_F_CLIENT_FIN | KHA_CT_F_CLIENT_RST)

/*
 * Published state of a VIP's Maglev table. Writing active_gen (one aligned
 * 32-bit store) switches every new-flow lookup to the other generation.
 */
struct kha_vip_state {
	__u32 active_gen; /* 0 or 1 */
	__u32 nr_healthy; /* backends with at least one slot in the table */
};

/* backend flags */
#define KHA_BE_F_PRESENT (1u << 0) /* configured; may keep its flows */
#define KHA_BE_F_HEALTHY (1u << 1) /* passes health checks */
#define KHA_BE_F_LOCAL (1u << 2)   /* address is local: DNAT only, path 4 */

struct kha_backend {
	struct kha_addr addr;
	__be16 port;
	__u8 family;
	__u8 pad;
	__u32 flags;
	__u32 vip_id;
	__u32 weight;
};

/* A 5-tuple; zero-initialise before filling so padding never hashes. */
struct kha_flow_key {
	struct kha_addr src;
	struct kha_addr dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

/* Forward state of a flow, client -> VIP:vip_port. */
struct kha_ct {
	struct kha_addr backend;
	__be16 backend_port;
	__be16 snat_port; /* 0 for a local backend (no SNAT) */
	__u32 backend_id;
	__u32 vip_id;
	__u32 flags;
};

/* Reverse state, keyed by the packet the backend sends back. */
struct kha_snat {
	struct kha_addr client;
	struct kha_addr vip;
	__be16 client_port;
	__be16 vip_port;
	__u32 vip_id;
	__u32 backend_id;
	union {
		__u32 pad;
		/*
		 * Remote-backend entries: CLOCK_MONOTONIC >>
		 * KHA_SNAT_TICK_SHIFT when the flow was created or its
		 * backend last replied (XDP). Idle for KHA_SNAT_IDLE_TICKS,
		 * the port goes to a new flow (docs/maps.md). 0 in local
		 * entries.
		 */
		__u32 last_seen;
	};
	__u32 flags; /* KHA_SNAT_F_*, remote entries; 0 in local ones */
};

/* kha_snat.flags: how the flow closed, each set once (docs/datapath.md) */
#define KHA_SNAT_F_CLIENT_FIN (1u << 0)
#define KHA_SNAT_F_BACKEND_FIN (1u << 1)
#define KHA_SNAT_F_BACKEND_FIRST (1u << 2) /* backend's FIN came first */
#define KHA_SNAT_F_RST (1u << 3)           /* either side reset it */
#define KHA_SNAT_F_FIN_BOTH (KHA_SNAT_F_CLIENT_FIN | KHA_SNAT_F_BACKEND_FIN)

struct kha_counters {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};

/*
 * Why a packet for a VIP (or one we could not classify) was not forwarded,
 * or an event worth counting. One X-macro makes the enum, the struct fields
 * (named in BTF, so `bpftool map dump` shows them) and user space's names.
 */
#define KHA_REASONS(X)                                                        \
	X(pass_malformed)     /* truncated L2/L3, bad IHL/len: kernel decides */ \
	X(drop_fragment)      /* IPv4 fragment addressed to a VIP            */ \
	X(drop_bad_tcp)       /* TCP header truncated or doff < 5 (to a VIP) */ \
	X(drop_snat_exhausted) /* no free SNAT port after KHA_SNAT_RETRIES   */ \
	X(drop_no_backend)    /* empty Maglev table, non-SYN packet          */ \
	X(rst_no_backend)     /* empty table, SYN answered with RST          */ \
	X(drop_fib)           /* route lookup says blackhole/unreachable     */ \
	X(pass_no_neigh)      /* neighbour unresolved: kernel forwards it    */ \
	X(pass_local_backend) /* DNAT only, handed to the local stack        */ \
	X(reselect)           /* flow's backend gone: picked anew            */ \
	X(icmp_translated)    /* ICMP error about a NATed flow translated    */ \
	X(drop_icmp_bad)      /* ICMP error about a VIP flow, unparseable    */ \
	X(ct_insert_fail)     /* conntrack update failed                     */ \
	X(snat_reclaimed)     /* idle flow's SNAT port given to a new flow   */

enum kha_reason {
#define KHA_X_ENUM(name) KHA_R_##name,
	KHA_REASONS(KHA_X_ENUM)
#undef KHA_X_ENUM
	KHA_R_MAX
};

struct kha_reasons {
#define KHA_X_FIELD(name) __u64 name;
	KHA_REASONS(KHA_X_FIELD)
#undef KHA_X_FIELD
};

/*
 * Load-time knobs the programs read from a map (so a running data plane can
 * be retuned by the daemon without a reload).
 */
struct kha_lb_config {
	__u16 snat_port_lo; /* host order */
	__u16 snat_port_hi; /* host order, inclusive */
	__u32 ring_size;
	__u32 flags;
	__u32 pad;
	struct kha_addr local_addr; /* node's own address (cgroup hook key) */
};

static inline __u32 kha_ring_index(__u32 vip_id, __u32 gen, __u32 slot,
				   __u32 ring_size)
{
	return (vip_id * 2 + gen) * ring_size + slot;
}

#endif /* KHA_ABI_H */
