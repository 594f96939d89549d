/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kha-xdp map ABI: every key and value shared by the BPF programs and user
 * space. One definition; both sides include this file. Fixed-width types,
 * byte order explicit in the type name, explicit padding.
 *
 * Maps (pinned by name under <pin_root>/<ifname>/, see docs/maps.md):
 *   vips          HASH   struct kha_vip_key      -> struct kha_vip
 *   vip_state     ARRAY  __u32 vip_id            -> struct kha_vip_state
 *   rings         ARRAY  __u32 line              -> struct kha_ring_line
 *                        slot g = kha_ring_index(vip_id, gen, slot,
 *                        ring_size) is id[g % 32] of line g / 32, so the
 *                        mmap is one flat __u16 array (BPF_F_MMAPABLE;
 *                        two generations per VIP so a new table is
 *                        written aside, then published by flipping
 *                        vip_state.active_gen)
 *   backends      ARRAY  __u32 backend_id        -> struct kha_backend
 *   conntrack     ARRAY  __u32 slot              -> struct kha_ct_slot
 *                        (client -> VIP direction, open-addressed by
 *                         kha_ct_home(); BPF_F_MMAPABLE)
 *   snat          ARRAY  __u32 slot              -> struct kha_snat_slot
 *                        (backend -> VIP:snat_port for remote backends,
 *                         backend -> client for local backends, by
 *                         kha_snat_home(); BPF_F_MMAPABLE)
 *   snat_tw       ARRAY  __u32 slot              -> struct kha_snat_tw
 *                        (the last TCP timestamp a closing flow's client
 *                         sent, by its `snat` slot: TIME_WAIT reuse)
 *   snat_cursor   PERCPU_ARRAY backend_id       -> __u32: the next SNAT
 *                        port's offset in the range + 1, of this CPU's
 *                        walk (0: not started; bpf/nat.h snat_claim())
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
/* Attempts to claim a free SNAT source port before giving up. */
#ifndef KHA_SNAT_RETRIES
#define KHA_SNAT_RETRIES 8
#endif
/* Of those, the next ports of the CPU's walk (bpf/nat.h snat_claim()). */
#ifndef KHA_SNAT_SEQ_TRIES
#define KHA_SNAT_SEQ_TRIES 4
#endif
/*
 * Flow expiry. A slot's stamp counts ticks of 2^30 ns (1.07 s) of
 * CLOCK_MONOTONIC: a shift, where seconds would cost the fast path a
 * 64-bit division. A flow that has shown no packet for
 * KHA_SNAT_IDLE_TICKS (~120 s, longer than TIME_WAIT, so a backend never
 * sees a reused 4-tuple it still remembers) gives its slots (and its
 * SNAT port) to a new flow that needs them; after a reset (either side)
 * they are free
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
/*
 * ... unless a new SYN carries a TCP timestamp newer than the last one the
 * old flow's client sent (struct kha_snat_tw): the backend's TIME_WAIT
 * accepts that SYN (RFC 6191), so the port may be taken over once the old
 * flow has been quiet into the next tick (up to ~1 s: its final ACK is
 * through; a late FIN retransmission of the old client becomes a new
 * flow the backend resets, as it would for any closed connection).
 */
#ifndef KHA_SNAT_TW_REUSE_TICKS
#define KHA_SNAT_TW_REUSE_TICKS 1
#endif
#define KHA_SNAT_PORT_LO_DEFAULT 10240
#define KHA_SNAT_PORT_HI_DEFAULT 32767

/* Backend id meaning "no backend" (user space's Maglev tables). */
#define KHA_NO_BACKEND 0xffffffffu

/*
 * The published Maglev tables hold backend ids as __u16, 32 to a 64-byte
 * line: a 65537-slot generation is 128 KiB and stays in cache, where __u32
 * elements (which an array map stores 8 bytes apart) made it 512 KiB and a
 * new flow's slot a cache miss (docs/benchmarks.md). KHA_RING_NONE is the
 * empty slot. KHA_MAX_VIPS * 2 generations are a whole number of lines per
 * ring slot, so the map has KHA_RING_LINES_PER_SLOT * ring_size entries.
 */
#define KHA_RING_LINE 32
#define KHA_RING_NONE 0xffffu
#define KHA_RING_LINES_PER_SLOT (KHA_MAX_VIPS * 2 / KHA_RING_LINE)

struct kha_ring_line {
	__u16 id[KHA_RING_LINE];
};

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
	__u32 flags; /* KHA_VIP_F_* */
};

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

/*
 * The two flow tables, `conntrack` and `snat`, are preallocated arrays of
 * one-cache-line slots, used as open-addressed hash tables (docs/maps.md
 * "Flow tables"). A new flow claims a slot with one compare-and-swap on its
 * `stamp`: no element allocation, no LRU list, no bucket lock, which is
 * what made a SYN cost two LRU inserts (~350 ns each) before.
 *
 *   home     kha_ct_home() / kha_snat_home() & (KHA_FLOW_SLOTS - 1)
 *   probing  home, home+1, ... at most KHA_FLOW_PROBES slots (wrapping)
 *   stamp    0: free. Else the flow's last-use tick (KHA_TICK_*), moved
 *            into the past by the flow's close state, so one compare says
 *            whether the slot may be taken: live while
 *            now - stamp <= KHA_SNAT_IDLE_TICKS.
 *   chain    1: a flow whose home is at or before this slot was placed
 *            after it, so a search may not stop here. Set once, never
 *            cleared while the table lives (a search then reads a few more
 *            slots, never a wrong one).
 *
 * Power of two. 524288 slots of 64 bytes: 32 MiB per table; at 262144
 * flows a table is half full and a probe sequence of 8 is all taken with
 * probability ~0.4%.
 */
#ifndef KHA_FLOW_SLOTS
#define KHA_FLOW_SLOTS (1u << 19)
#endif
#ifndef KHA_FLOW_PROBES
#define KHA_FLOW_PROBES 8
#endif

/*
 * `ct_syn`: the flows whose handshake is not through yet, in a table small
 * enough to stay in the CPU's cache, so a SYN touches no cold line
 * (docs/datapath.md, "Handshake table"). A SYN's flow has its `snat` slot
 * (which names client, VIP, backend and port: everything conntrack would
 * hold) and an entry here that finds it; the backend's SYN-ACK, or the
 * client's next packet, moves the flow to `conntrack`. An entry is 64
 * bits: the low word its stamp (0: free), the high word a tag (high bits
 * of kha_ct_home()) above the `snat` slot's index, and a top bit set
 * once the flow has moved (KHA_CT_SYN_MOVED). A flow's entry is one of
 * the KHA_CT_SYN_WAYS of its home's cache line; it is live for
 * KHA_CT_SYN_TICKS after its flow's last SYN (SYN retransmits come 1, 3
 * and 7 s after the first), then free. A moved entry may be taken by a
 * new flow at once; until then a late SYN of its flow finds it and looks
 * in `conntrack`, as every SYN did before. So does a SYN that finds its
 * line all live.
 *
 * 8192 entries: 64 KiB. The map's element is a whole line
 * (struct kha_ct_syn_line), so a search reads its eight entries with one
 * lookup; entry i is e[i % 8] of line i / 8, and user space reads the
 * table through its mmap as KHA_CT_SYN_SLOTS __u64.
 */
#ifndef KHA_CT_SYN_SLOTS
#define KHA_CT_SYN_SLOTS (1u << 13)
#endif
#define KHA_CT_SYN_WAYS 8 /* entries in a 64-byte line */
#define KHA_CT_SYN_LINES (KHA_CT_SYN_SLOTS / KHA_CT_SYN_WAYS)

/* The map's element: one line of KHA_CT_SYN_WAYS entries */
struct kha_ct_syn_line {
	__u64 e[KHA_CT_SYN_WAYS];
};
#define KHA_CT_SYN_SIDX_BITS 20
_Static_assert(KHA_FLOW_SLOTS <= (1u << KHA_CT_SYN_SIDX_BITS),
	       "a snat slot index fits a ct_syn entry");

#define KHA_CT_SYN_MOVED (1ull << 63) /* the flow is in conntrack now */

static inline __u64 kha_ct_syn_entry(__u32 stamp, __u32 tag, __u32 sidx)
{
	return ((__u64)((tag << KHA_CT_SYN_SIDX_BITS) | sidx) << 32) | stamp;
}

static inline int kha_ct_syn_moved(__u64 e)
{
	return !!(e & KHA_CT_SYN_MOVED);
}

static inline __u32 kha_ct_syn_stamp(__u64 e)
{
	return (__u32)e;
}

static inline __u32 kha_ct_syn_etag(__u64 e)
{
	return ((__u32)(e >> 32) & 0x7fffffffu) >> KHA_CT_SYN_SIDX_BITS;
}

static inline __u32 kha_ct_syn_sidx(__u64 e)
{
	return (__u32)(e >> 32) & ((1u << KHA_CT_SYN_SIDX_BITS) - 1);
}

/* the tag of a home: 11 of the bits above the snat index's */
static inline __u32 kha_ct_syn_tag(__u32 home)
{
	return (home & 0x7fffffffu) >> KHA_CT_SYN_SIDX_BITS;
}

#ifndef KHA_CT_SYN_TICKS
#define KHA_CT_SYN_TICKS 8
#endif

/* A ct_syn entry stamped @stamp holds a flow that may not be taken @now. */
static inline int kha_ct_syn_live(__u32 stamp, __u32 now)
{
	return stamp && now - stamp <= KHA_CT_SYN_TICKS;
}
/*
 * Ticks of 2^30 ns (1.07 s) of CLOCK_MONOTONIC, offset so that a live
 * stamp, even moved KHA_SNAT_IDLE_TICKS into the past, is never 0 (free).
 */
#define KHA_TICK_BASE (KHA_SNAT_IDLE_TICKS + 1)

/* kha_ct_slot.flags: what the client sent to close the flow (set once) */
#define KHA_CT_F_CLIENT_FIN (1u << 0)
#define KHA_CT_F_CLIENT_RST (1u << 1)
#define KHA_CT_F_CLOSING (KHA_CT_F_CLIENT_FIN | KHA_CT_F_CLIENT_RST)

/*
 * `conntrack` slot: forward state of a flow, client -> VIP:vip_port,
 * keyed by the client's 5-tuple. The backend's address is the backend's
 * (`backends[backend_id]`), checked to still be backend_port's owner.
 */
struct kha_ct_slot {
	__u32 stamp;
	__u8 chain;
	__u8 flags;      /* KHA_CT_F_* */
	__u16 backend_id;
	struct kha_flow_key key;
	__be16 backend_port;
	__be16 snat_port;   /* 0 for a local backend (no SNAT) */
	__u16 vip_id;
	__u8 close;         /* its KHA_SNAT_F_* close flags, mirrored */
	__u8 pad;
	__u32 snat_slot;    /* index of the flow's `snat` slot */
	__u32 be_tag;       /* kha_addr_tag() of the backend's address */
};

/*
 * The backend address a flow was sent to, folded into 32 bits (exact for
 * IPv4): a backend id that names another address since is re-selected.
 */
static inline __u32 kha_addr_tag(const struct kha_addr *a)
{
	return a->v6[0] ^ a->v6[1] ^ a->v6[2] ^ a->v6[3];
}

/* kha_snat_slot.flags: how the flow closed, each set once (datapath.md) */
#define KHA_SNAT_F_CLIENT_FIN (1u << 0)
#define KHA_SNAT_F_BACKEND_FIN (1u << 1)
#define KHA_SNAT_F_BACKEND_FIRST (1u << 2) /* backend's FIN came first */
#define KHA_SNAT_F_RST (1u << 3)           /* either side reset it */
#define KHA_SNAT_F_FIN_BOTH (KHA_SNAT_F_CLIENT_FIN | KHA_SNAT_F_BACKEND_FIN)
#define KHA_SNAT_F_CLOSE_MASK 0x0fu
#define KHA_SNAT_F_LOCAL (1u << 4) /* local backend: keyed by the client */

/*
 * `snat` slot: reverse state, keyed by the packet the backend sends back.
 *   remote backend: backend:backend_port -> VIP:port   (port = SNAT port)
 *   local backend:  backend:backend_port -> client:port (port = client
 *                   port; the client address is part of the key, and of
 *                   kha_snat_home(), only for these: KHA_SNAT_F_LOCAL)
 */
struct kha_snat_slot {
	__u32 stamp;
	__u8 chain;
	__u8 flags;       /* KHA_SNAT_F_* */
	__u16 backend_id;
	struct kha_addr backend;
	struct kha_addr client;
	struct kha_addr vip;
	__be16 backend_port;
	__be16 port;
	__be16 client_port;
	__be16 vip_port;
};

/*
 * The `snat` slot @s names the client flow client:cport -> vip:vport (its
 * reverse state: a ct_syn entry's match, headers/kha_abi.h "ct_syn").
 */
static inline int kha_snat_of_flow(const struct kha_snat_slot *s,
				   __be32 client, __be16 cport, __be32 vip,
				   __be16 vport)
{
	return s->client.v4 == client && s->client_port == cport &&
	       s->vip.v4 == vip && s->vip_port == vport;
}

/*
 * `snat_tw` value, by `snat` slot: for a flow whose backend closed first
 * (the backend keeps VIP:port in TIME_WAIT ~60 s), the newest TCP
 * timestamp (TSval) its client sent once the backend's FIN was seen: the
 * backend's TIME_WAIT holds that value (ts_recent) and accepts a new SYN
 * on the same 4-tuple whose TSval is newer (RFC 6191; Linux
 * tcp_timewait_state_process()). A new flow may take the port over when
 * its SYN's TSval is, instead of waiting out the hold (docs/datapath.md,
 * "TIME_WAIT reuse"). The record names the flow it was written for
 * (client, client port, SNAT port): one of an earlier flow of the slot is
 * never trusted.
 */
struct kha_snat_tw {
	__be32 client;
	__be16 client_port;
	__be16 port;      /* the SNAT port */
	__u32 tsval;      /* host order, as sent */
	__u32 valid;      /* 0: the client sent no timestamp: no reuse */
};

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
	X(snat_reclaimed)     /* idle flow's SNAT port given to a new flow   */ \
	X(snat_tw_reuse)      /* port in the backend's TIME_WAIT reused      */ \
	X(ct_syn_full)        /* SYN's ct_syn window all live: to conntrack */ \
	X(ct_promoted)        /* handshake done: flow moved to conntrack     */

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
	/*
	 * Bumped by user space after every change of `vips`: XDP keeps a
	 * per-CPU cache of `vips` answers and trusts an entry only while its
	 * generation is this one (bpf/xdp_lb.bpf.c, vip_lookup()).
	 */
	__u32 vip_gen;
	struct kha_addr local_addr; /* node's own address (cgroup hook key) */
};

static inline __u32 kha_ring_index(__u32 vip_id, __u32 gen, __u32 slot,
				   __u32 ring_size)
{
	return (vip_id * 2 + gen) * ring_size + slot;
}

#endif /* KHA_ABI_H */
