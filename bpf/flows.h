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

/* ---- conntrack ---------------------------------------------------- */

/* The flow's slot, or NULL. @idx: its index. */
static __always_inline struct kha_ct_slot *
ct_find(const struct kha_flow_key *k, __u32 *idx)
{
	__u32 home = kha_ct_home(k);

	for (__u32 i = 0; i < KHA_FLOW_PROBES; i++) {
		struct kha_ct_slot *s;

		*idx = kha_flow_probe(home, i);
		s = bpf_map_lookup_elem(&conntrack, idx);
		if (!s)
			return NULL;
		if (s->stamp && ct_key_eq(&s->key, k))
			return s;
		if (!s->chain)
			return NULL;
	}
	return NULL;
}

/* Mark the slots a flow placed at probe @n of @home had to pass. */
#define FLOW_CHAIN(map, home, n)                                            \
	do {                                                                \
		for (__u32 j_ = 0; j_ < KHA_FLOW_PROBES && j_ < (n); j_++) { \
			__u32 ix_ = kha_flow_probe(home, j_);               \
			__u8 *c_ = bpf_map_lookup_elem(map, &ix_);          \
			if (c_ && !c_[4])                                   \
				c_[4] = 1; /* offsetof(..., chain) == 4 */  \
		}                                                           \
	} while (0)

/*
 * A slot for the flow @k: its own (*existing = 1, live or not: the caller
 * decides whether that flow still is one), or a free or expired one now
 * claimed, stamped @now and keyed (*existing = 0; the caller fills the
 * rest). NULL: every probe is held by a live flow, or another CPU won the
 * slot this instant.
 */
static __always_inline struct kha_ct_slot *
ct_claim(const struct kha_flow_key *k, __u32 home, __u32 now, __u32 *idx,
	 int *existing)
{
	__u32 cand = KHA_FLOW_PROBES, old = 0;
	struct kha_ct_slot *s;
	int absent = 0;

	for (__u32 i = 0; i < KHA_FLOW_PROBES; i++) {
		__u32 st;

		*idx = kha_flow_probe(home, i);
		s = bpf_map_lookup_elem(&conntrack, idx);
		if (!s)
			return NULL;
		st = s->stamp;
		if (!absent && st && ct_key_eq(&s->key, k)) {
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
	s = bpf_map_lookup_elem(&conntrack, idx);
	if (!s || __sync_val_compare_and_swap(&s->stamp, old, now) != old)
		return NULL;
	FLOW_CHAIN(&conntrack, home, cand);
	*existing = 0;
	s->key = *k;
	s->flags = 0;
	return s;
}

/* ---- snat --------------------------------------------------------- */

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
	__u32 home = kha_snat_home(backend, bport, port, client);
	struct kha_snat_slot *s;

	if (!client) {
		*idx = kha_flow_probe(home, 0);
		s = bpf_map_lookup_elem(&snat, idx);
		if (s && s->stamp && snat_key_eq(s, backend, bport, port, NULL))
			return s;
		return NULL;
	}
	for (__u32 i = 0; i < KHA_FLOW_PROBES; i++) {
		*idx = kha_flow_probe(home, i);
		s = bpf_map_lookup_elem(&snat, idx);
		if (!s)
			return NULL;
		if (s->stamp && snat_key_eq(s, backend, bport, port, client))
			return s;
		if (!s->chain)
			return NULL;
	}
	return NULL;
}

/*
 * Claim a remote entry's slot (@home: its kha_snat_home()): NULL when the
 * slot holds a live flow (this port's or another). Else the slot, stamped
 * @now, and in *old the stamp it had: nonzero when it held a dead flow,
 * whose forward state the caller must let go (snat_reclaimed()). The caller
 * writes the key.
 */
static __always_inline struct kha_snat_slot *
snat_take_remote(__u32 home, __u32 now, __u32 *idx, __u32 *old)
{
	struct kha_snat_slot *s;
	__u32 st;

	*idx = kha_flow_probe(home, 0);
	s = bpf_map_lookup_elem(&snat, idx);
	if (!s)
		return NULL;
	st = s->stamp;
	if (stamp_live(st, now) ||
	    __sync_val_compare_and_swap(&s->stamp, st, now) != st)
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
	__u32 home = kha_snat_home(backend, bport, port, client);
	__u32 cand = KHA_FLOW_PROBES, ost = 0;
	struct kha_snat_slot *s;
	int absent = 0;

	for (__u32 i = 0; i < KHA_FLOW_PROBES; i++) {
		__u32 st;

		*idx = kha_flow_probe(home, i);
		s = bpf_map_lookup_elem(&snat, idx);
		if (!s)
			return NULL;
		st = s->stamp;
		if (!absent && st &&
		    snat_key_eq(s, backend, bport, port, client)) {
			cand = i; /* the key's own slot, never a second one */
			ost = st;
			break;
		}
		if (cand == KHA_FLOW_PROBES && !stamp_live(st, now)) {
			cand = i;
			ost = st;
		}
		if (!s->chain)
			absent = 1;
		if (absent && cand != KHA_FLOW_PROBES)
			break;
	}
	if (cand >= KHA_FLOW_PROBES)
		return NULL;
	*idx = kha_flow_probe(home, cand);
	s = bpf_map_lookup_elem(&snat, idx);
	if (!s || __sync_val_compare_and_swap(&s->stamp, ost, now) != ost)
		return NULL;
	FLOW_CHAIN(&snat, home, cand);
	return s;
}

#endif /* KHA_BPF_FLOWS_H */
