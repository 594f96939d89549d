/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The flow tables, `conntrack` and `snat`: open-addressed hash tables in
 * preallocated arrays of 64-byte slots (layout and rules: headers/kha_abi.h,
 * "flow tables"; docs/maps.md). A new flow's state costs one
 * compare-and-swap per table on a slot that a hash of its key names, where
 * an LRU hash insert pops an element from a free list, takes a bucket lock
 * and moves list nodes (~350 ns each on this kernel, docs/benchmarks.md).
 *
 * Expiry is by time, decided when a slot is wanted: a slot whose stamp is
 * older than KHA_SNAT_IDLE_TICKS (moved into the past when its flow closes,
 * see snat_hold()) is free for the next flow that probes it. Nothing sweeps.
 *
 * The same rules are written for user space in user/flows.c (tests,
 * `status`); change both together.
 */
#ifndef KHA_BPF_FLOWS_H
#define KHA_BPF_FLOWS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "kha_abi.h"
#include "kha_hash.h"
#include "maps.h"
#include "parse.h"

static __always_inline __u32 flow_ticks(__u64 now_ns)
{
	return (__u32)(now_ns >> KHA_SNAT_TICK_SHIFT) + KHA_TICK_BASE;
}

static __always_inline int stamp_live(__u32 stamp, __u32 now)
{
	return stamp && now - stamp <= KHA_SNAT_IDLE_TICKS;
}

static __always_inline int ct_key_eq(const struct kha_flow_key *a,
				     const struct kha_flow_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 d = 0;

	for (int i = 0; i < (int)(sizeof(*a) / 4); i++)
		d |= x[i] ^ y[i];
	return !d;
}

static __always_inline int addr_eq(const struct kha_addr *a,
				   const struct kha_addr *b)
{
	return !((a->v6[0] ^ b->v6[0]) | (a->v6[1] ^ b->v6[1]) |
		 (a->v6[2] ^ b->v6[2]) | (a->v6[3] ^ b->v6[3]));
}

/*
 * Start reading a slot the packet will need: a table slot is a cache miss
 * (the tables are 32 MiB each), and the claim's compare-and-swap is a full
 * barrier, so misses taken one after the other would add up. A new flow
 * touches its conntrack home, its Maglev slot and its first SNAT candidate
 * before claiming anything, and the three misses overlap.
 */
static __always_inline void flow_touch(void *map, __u32 home)
{
	__u32 idx = home & (KHA_FLOW_SLOTS - 1);
	__u32 *stamp = bpf_map_lookup_elem(map, &idx);

	if (stamp)
		(void)*(volatile __u32 *)stamp;
}

/*
 * An IPv4 flow key as its only nonzero words (kha_ct_home4()): 0 (src),
 * 4 (dst), 8 (the two ports) and 9 (proto, family). Every key is zeroed
 * before it is filled, so an IPv4 key's other words are 0, and word 9's
 * family tells it from an IPv6 key: a slot holds this flow when these
 * four words match (not reading the other six is 1 ns of every packet
 * that is not a SYN).
 */
struct ct_key4 {
	__u32 src, dst, ports, pf;
};

static __always_inline int ct_key4_eq(const struct kha_flow_key *a,
				      const struct ct_key4 *k)
{
	const __u32 *x = (const __u32 *)a;

	return !((x[0] ^ k->src) | (x[4] ^ k->dst) | (x[8] ^ k->ports) |
		 (x[9] ^ k->pf));
}

/*
 * What a search looks for: a conntrack 5-tuple, or a local `snat` entry's
 * key (backend:bport -> client:port). One find and one claim serve both
 * tables; @map is a constant once inlined, so each table gets its own
 * compare and nothing else.
 */
struct flow_want {
	const struct kha_flow_key *ct;
	const struct ct_key4 *ct4; /* instead of @ct: a packet's own fields */
	const struct kha_addr *backend;
	const struct kha_addr *client;
	__be16 bport;
	__be16 port;
};

static __always_inline int snat_key_eq(const struct kha_snat_slot *s,
				       const struct kha_addr *backend,
				       __be16 bport, __be16 port,
				       const struct kha_addr *client)
{
	if (s->backend_port != bport || s->port != port ||
	    !addr_eq(&s->backend, backend))
		return 0;
	if (client)
		return (s->flags & KHA_SNAT_F_LOCAL) &&
		       addr_eq(&s->client, client);
	return !(s->flags & KHA_SNAT_F_LOCAL);
}

static __always_inline int slot_is(void *map, void *slot,
				   const struct flow_want *w)
{
	if (map == (void *)&conntrack)
		return w->ct4 ? ct_key4_eq(&((struct kha_ct_slot *)slot)->key,
					   w->ct4) :
				ct_key_eq(&((struct kha_ct_slot *)slot)->key, w->ct);
	return snat_key_eq(slot, w->backend, w->bport, w->port, w->client);
}

/* Both slot types begin with these. */
struct flow_head {
	__u32 stamp;
	__u8 chain;
};

/*
 * The slot of @w in @map, live or expired (until a new flow takes an
 * expired slot its flow is whole), or NULL. @idx: its index.
 */
static __always_inline void *flow_find(void *map, __u32 home,
				       const struct flow_want *w, __u32 *idx)
{
	for (__u32 i = 0; i < KHA_FLOW_PROBES; i++) {
		struct flow_head *s;

		*idx = kha_flow_probe(home, i);
		s = bpf_map_lookup_elem(map, idx);
		if (!s)
			return NULL;
		if (s->stamp && slot_is(map, s, w))
			return s;
		if (!s->chain)
			return NULL;
	}
	return NULL;
}

/*
 * A slot for @w: its own (*existing = 1, live or not: the caller decides
 * whether that flow still is one), or the first free or expired one of the
 * probe sequence, now claimed with a compare-and-swap and stamped @now
 * (*existing = 0; the slots passed are chained; the caller writes the
 * key). NULL: every probe is held by a live flow, or another CPU won the
 * slot this instant.
 */
static __always_inline void *flow_claim(void *map, __u32 home,
					const struct flow_want *w, __u32 now,
					__u32 *idx, int *existing)
{
	__u32 cand = KHA_FLOW_PROBES, old = 0;
	struct flow_head *s;
	int absent = 0;

	for (__u32 i = 0; i < KHA_FLOW_PROBES; i++) {
		__u32 st;

		*idx = kha_flow_probe(home, i);
		s = bpf_map_lookup_elem(map, idx);
		if (!s)
			return NULL;
		st = s->stamp;
		if (!absent && st && slot_is(map, s, w)) {
			*existing = 1;
			return s;
		}
		if (cand == KHA_FLOW_PROBES && !stamp_live(st, now)) {
			cand = i;
			old = st;
		}
		if (!s->chain)
			absent = 1;
		if (absent && cand != KHA_FLOW_PROBES)
			break;
	}
	if (cand >= KHA_FLOW_PROBES)
		return NULL;
	*idx = kha_flow_probe(home, cand);
	s = bpf_map_lookup_elem(map, idx);
	if (!s || __sync_val_compare_and_swap(&s->stamp, old, now) != old)
		return NULL;
	/* the slots passed: a search for this flow must not stop there */
	for (__u32 j = 0; j < KHA_FLOW_PROBES && j < cand; j++) {
		__u32 ix = kha_flow_probe(home, j);
		struct flow_head *c = bpf_map_lookup_elem(map, &ix);

		if (c && !c->chain)
			c->chain = 1;
	}
	*existing = 0;
	return s;
}

/* ---- ct_syn: flows in their handshake ---------------------------- */

/*
 * A ct_syn search (kha_ct_syn_search()): in, the client flow (its
 * 4-tuple, its home) and the time; out, its entry and the line's first
 * free or expired one.
 */
struct syn_search {
	__u32 home, now;
	__be32 client, vip;
	__be16 cport, vport;
	__u32 idx;      /* out: the flow's entry */
	__u32 cand;     /* out, when not found: a free, expired or moved
			 * entry; or KHA_CT_SYN_SLOTS: none */
	__u64 e;        /* out: the flow's entry's value */
	__u64 cand_old; /* out: the candidate's value */
};

static __always_inline void syn_search_of(struct syn_search *q, __be32 client,
					  __be16 cport, __be32 vip,
					  __be16 vport, __u32 home, __u32 now)
{
	q->home = home;
	q->now = now;
	q->client = client;
	q->cport = cport;
	q->vip = vip;
	q->vport = vport;
	q->cand = KHA_CT_SYN_SLOTS;
	q->e = 0;
	q->cand_old = 0;
}

/*
 * Search the ct_syn line of @q->home for @q's flow: 1 when an entry names
 * a `snat` slot that holds exactly that flow (the entry's tag only
 * narrows the search), else 0 and the line's first free, expired or
 * moved entry in @q->cand. A global function: the verifier checks
 * its eight-way loop once, not at each of its five callers.
 */
__attribute__((noinline)) int kha_ct_syn_search(struct syn_search *q)
{
	__u32 line, base, tag, now, cand = KHA_CT_SYN_SLOTS;
	struct kha_ct_syn_line *l;
	__u64 cold = 0;

	if (!q)
		return 0;
	line = kha_ct_syn_line(q->home);
	l = bpf_map_lookup_elem(&ct_syn, &line);
	if (!l)
		return 0;
	base = kha_ct_syn_probe(q->home, 0);
	tag = kha_ct_syn_tag(q->home);
	now = q->now;
#pragma unroll
	for (__u32 i = 0; i < KHA_CT_SYN_WAYS; i++) {
		__u64 v = l->e[i];

		if (kha_ct_syn_stamp(v) && kha_ct_syn_etag(v) == tag) {
			__u32 sidx = kha_ct_syn_sidx(v);
			struct kha_snat_slot *s;

			s = bpf_map_lookup_elem(&snat, &sidx);
			if (s && s->stamp &&
			    kha_snat_of_flow(s, q->client, q->cport, q->vip,
					     q->vport)) {
				q->idx = base + i;
				q->e = v;
				return 1;
			}
		}
		if (cand == KHA_CT_SYN_SLOTS &&
		    (kha_ct_syn_moved(v) ||
		     !kha_ct_syn_live(kha_ct_syn_stamp(v), now))) {
			cand = base + i;
			cold = v;
		}
	}
	q->cand = cand;
	q->cand_old = cold;
	return 0;
}

/*
 * Start reading the ct_syn line of @home, as flow_touch() does a table
 * slot: 64 KiB stays cached only in part under a stream of new flows
 * (their `snat` lines pass through), and the line's first read comes late,
 * after the Maglev and SNAT reads.
 */
static __always_inline void ct_syn_touch(__u32 home)
{
	__u32 line = kha_ct_syn_line(home);
	struct kha_ct_syn_line *l = bpf_map_lookup_elem(&ct_syn, &line);

	if (l)
		(void)*(volatile __u64 *)&l->e[0];
}

/* The `snat` slot of the flow kha_ct_syn_search() found. */
static __always_inline struct kha_snat_slot *
syn_found_snat(const struct syn_search *q)
{
	__u32 sidx = kha_ct_syn_sidx(q->e);

	return bpf_map_lookup_elem(&snat, &sidx);
}

/* Entry @idx from @old to @v, unless another CPU changed it: 0 on success */
static __always_inline int ct_syn_set(__u32 idx, __u64 old, __u64 v)
{
	__u32 line = idx / KHA_CT_SYN_WAYS;
	struct kha_ct_syn_line *l = bpf_map_lookup_elem(&ct_syn, &line);

	if (!l || __sync_val_compare_and_swap(&l->e[idx % KHA_CT_SYN_WAYS],
					      old, v) != old)
		return -1;
	return 0;
}

/* ---- conntrack ---------------------------------------------------- */

/*
 * The flow's slot, or NULL. @idx: its index. (A flow still in its
 * handshake has none: its state is its `snat` slot, see ct_syn.)
 */
static __always_inline struct kha_ct_slot *
ct_find(const struct kha_flow_key *k, __u32 *idx)
{
	struct flow_want w = { .ct = k };

	return flow_find(&conntrack, kha_ct_home(k), &w, idx);
}

/* The packet's flow key as struct ct_key4; -1 if its TCP header is short. */
static __always_inline int ct_key4_of(const struct pkt *p, struct ct_key4 *k)
{
	union {
		struct {
			__u8 proto, family, pad[2];
		};
		__u32 w;
	} pf = { .proto = IPPROTO_TCP, .family = KHA_AF_INET };

	if ((void *)(p->tcp + 1) > p->data_end)
		return -1;
	k->src = p->iph->saddr;
	k->dst = p->iph->daddr;
	k->ports = *(const __u32 *)p->tcp; /* source, dest: the key's word 8 */
	k->pf = pf.w;
	return 0;
}

/*
 * ct_find() for the packet's own flow, with no key built on the stack:
 * the home from the packet's fields (kha_ct_home4()), each slot compared
 * with them (ct_key4_eq()). Every packet that is not a clean SYN pays
 * this lookup.
 */
static __always_inline struct kha_ct_slot *ct_find_pkt(const struct pkt *p,
						       __u32 *idx)
{
	struct flow_want w = {};
	struct ct_key4 k;

	if (ct_key4_of(p, &k))
		return NULL;
	w.ct4 = &k;
	return flow_find(&conntrack, kha_ct_home4(k.src, k.dst, k.ports, k.pf),
			 &w, idx);
}

/* flow_claim() for the flow @k (@home: kha_ct_home(@k)); a new slot keyed. */
static __always_inline struct kha_ct_slot *
ct_claim(const struct kha_flow_key *k, __u32 home, __u32 now, __u32 *idx,
	 int *existing)
{
	struct flow_want w = { .ct = k };
	struct kha_ct_slot *s = flow_claim(&conntrack, home, &w, now, idx,
					   existing);

	if (s && !*existing)
		s->key = *k; /* the caller fills the rest */
	return s;
}

/* ---- snat --------------------------------------------------------- */

/*
 * A remote entry (VIP:port -> backend) lives in its home slot and nowhere
 * else: its port is free to choose, so a port whose home slot holds
 * another live flow is simply not free, and the claim draws another one.
 * Its claim and its lookup read one slot. A local entry's key (the client's
 * address and port) is not ours to choose: it takes the first free slot of
 * its probe sequence, like conntrack.
 */

/*
 * The entry a backend's packet names: backend:bport -> VIP:port for a
 * remote backend (@client NULL), backend:bport -> client:port for a local
 * one. Expired entries are still found: until a new flow takes the slot,
 * its flow is whole.
 */
static __always_inline struct kha_snat_slot *
snat_find(const struct kha_addr *backend, __be16 bport, __be16 port,
	  const struct kha_addr *client, __u32 *idx)
{
	struct flow_want w = { .backend = backend, .client = client,
			       .bport = bport, .port = port };
	__u32 home = kha_snat_home(backend, bport, port, client);
	struct kha_snat_slot *s;

	if (client)
		return flow_find(&snat, home, &w, idx);
	*idx = kha_flow_probe(home, 0);
	s = bpf_map_lookup_elem(&snat, idx);
	if (s && s->stamp && snat_key_eq(s, backend, bport, port, NULL))
		return s;
	return NULL;
}

/* A closed flow's hold, by its snat flags (the table: bpf/nat.h, "Closing") */
static __always_inline __u32 snat_hold(__u32 flags)
{
	if (flags & KHA_SNAT_F_RST)
		return KHA_SNAT_RST_TICKS;
	if ((flags & KHA_SNAT_F_FIN_BOTH) != KHA_SNAT_F_FIN_BOTH)
		return KHA_SNAT_IDLE_TICKS;
	if (flags & KHA_SNAT_F_BACKEND_FIRST)
		return KHA_SNAT_TW_TICKS;
	return KHA_SNAT_CLOSE_TICKS;
}

/*
 * TIME_WAIT reuse (RFC 6191). A flow closed by FIN both ways holds its
 * port for the backend's sake: KHA_SNAT_TW_TICKS when the backend closed
 * first (its TIME_WAIT for VIP:port), KHA_SNAT_CLOSE_TICKS when the client
 * did (the backend's LAST_ACK, or its TIME_WAIT after a simultaneous close,
 * which the flags cannot tell from a client-first one). In every case the
 * backend accepts a new SYN on the 4-tuple whose TCP timestamp is newer
 * than the last one it got from the old connection's client, which
 * `snat_tw` recorded (struct kha_snat_tw). So a SYN carrying a timestamp
 * may take the port from such a flow once the flow is
 * KHA_SNAT_TW_REUSE_TICKS past its last packet (its final ACK is through)
 * when the timestamp is newer. Without this, a client that opens and
 * closes connections fast (one request per connection) runs a backend's
 * range out in range / 60 s connections a second, or range / 3 s.
 */
static __always_inline int snat_tw_reusable(struct xdp_md *ctx, __u32 idx,
					    __u32 now, __u32 opt_off,
					    __u32 opt_len)
{
	struct kha_snat_slot *s;
	struct kha_snat_tw *r;
	__u32 last, syn_ts = 0;

	/* inlined in kha_snat_open(), a global function the verifier checks
	 * once (xdp_lb's load time, see kha_tcp_tsval()) */
	s = bpf_map_lookup_elem(&snat, &idx);
	r = bpf_map_lookup_elem(&snat_tw, &idx);
	if (!s || !r ||
	    (s->flags & (KHA_SNAT_F_FIN_BOTH | KHA_SNAT_F_RST |
			 KHA_SNAT_F_LOCAL)) != KHA_SNAT_F_FIN_BOTH)
		return 0;
	/* a closed flow's stamp sits IDLE - hold before its last packet */
	last = s->stamp + (KHA_SNAT_IDLE_TICKS - snat_hold(s->flags));
	if ((__s32)(now - last) < KHA_SNAT_TW_REUSE_TICKS || !r->valid ||
	    !kha_tcp_tsval(ctx, opt_off, opt_len, &syn_ts))
		return 0;
	return r->client == s->client.v4 && r->client_port == s->client_port &&
	       r->port == s->port && (__s32)(syn_ts - r->tsval) > 0;
}

/*
 * Claim a remote entry's slot (@home: its kha_snat_home()): NULL when the
 * slot holds a live flow (this port's or another) that may not be taken:
 * every live one, except a closed one the backend would let the SYN reuse
 * by its timestamp (snat_tw_reusable(); @opt_off, @opt_len: its
 * TCP options in @ctx's packet). Else the
 * slot, stamped @now, and in *old the stamp it had: nonzero when it held
 * a dead or reused flow, whose forward state the caller must let go
 * (snat_reclaimed()). The caller writes the key.
 */
static __always_inline struct kha_snat_slot *
snat_take_remote(__u32 home, __u32 now, __u32 *idx, __u32 *old,
		 struct xdp_md *ctx, __u32 opt_off, __u32 opt_len)
{
	struct kha_snat_slot *s;
	__u32 st;

	*idx = kha_flow_probe(home, 0);
	s = bpf_map_lookup_elem(&snat, idx);
	if (!s)
		return NULL;
	st = s->stamp;
	if (stamp_live(st, now) &&
	    !snat_tw_reusable(ctx, *idx, now, opt_off, opt_len))
		return NULL;
	if (__sync_val_compare_and_swap(&s->stamp, st, now) != st)
		return NULL;
	*old = st;
	return s;
}

/*
 * Claim a local entry's slot: its own (a reused client port takes the old
 * entry over) or the first free or expired one of its probe sequence.
 * NULL when every probe holds a live flow.
 */
static __always_inline struct kha_snat_slot *
snat_take_local(const struct kha_addr *backend, __be16 bport, __be16 port,
		const struct kha_addr *client, __u32 now, __u32 *idx)
{
	struct flow_want w = { .backend = backend, .client = client,
			       .bport = bport, .port = port };
	struct kha_snat_slot *s;
	int existing;

	s = flow_claim(&snat, kha_snat_home(backend, bport, port, client), &w,
		       now, idx, &existing);
	if (s && existing)
		s->stamp = now; /* the same client port, reused */
	return s;
}

#endif /* KHA_BPF_FLOWS_H */
