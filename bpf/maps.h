/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The maps every kha-xdp program shares. Each program's skeleton declares
 * them all; the loader pins the first set under <pin_root>/<ifname>/ and
 * makes later programs reuse the pinned fds, so XDP, tc and cgroup hooks
 * see one conntrack and one Maglev table. Types: headers/kha_abi.h.
 */
#ifndef KHA_BPF_MAPS_H
#define KHA_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "kha_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KHA_MAX_VIPS * 2);
	__type(key, struct kha_vip_key);
	__type(value, struct kha_vip);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KHA_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct kha_vip_state);
} vip_state SEC(".maps");

/* max_entries is set by the loader: KHA_RING_LINES_PER_SLOT * ring_size */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KHA_RING_LINES_PER_SLOT * KHA_RING_SIZE_DEFAULT);
	__type(key, __u32);
	__type(value, struct kha_ring_line);
} rings SEC(".maps");

/* Backend id in ring slot @g (kha_ring_index()), or KHA_RING_NONE. */
static __always_inline __u32 kha_ring_get(__u32 g)
{
	__u32 line = g / KHA_RING_LINE;
	struct kha_ring_line *l = bpf_map_lookup_elem(&rings, &line);

	return l ? l->id[g % KHA_RING_LINE] : KHA_RING_NONE;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KHA_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct kha_backend);
} backends SEC(".maps");

/*
 * conntrack and snat: the flow tables, open-addressed hash tables in
 * preallocated arrays of one-cache-line slots (headers/kha_abi.h, "flow
 * tables"; bpf/flows.h). Mmapable so user space can count and inspect them
 * without 524288 syscalls.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KHA_FLOW_SLOTS);
	__type(key, __u32);
	__type(value, struct kha_ct_slot);
} conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KHA_FLOW_SLOTS);
	__type(key, __u32);
	__type(value, struct kha_snat_slot);
} snat SEC(".maps");

/*
 * ct_syn: flows between their SYN and the next packet of either side,
 * 64-bit entries that name their `snat` slot, eight to an element (a
 * cache line: headers/kha_abi.h, "ct_syn"): 64 KiB, small enough to stay
 * cached.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KHA_CT_SYN_LINES);
	__type(key, __u32);
	__type(value, struct kha_ct_syn_line);
} ct_syn SEC(".maps");

/*
 * The next SNAT port to try, per CPU and backend id: an offset into the
 * VIP's range, plus 1 (0: not started). Ports are handed out in order so
 * that a backend's claims walk consecutive `snat` slots (kha_snat_home());
 * each CPU has its own walk, so two CPUs never race for the same port.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KHA_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, __u32);
} snat_cursor SEC(".maps");

/* TIME_WAIT evidence by snat slot (headers/kha_abi.h struct kha_snat_tw) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KHA_FLOW_SLOTS);
	__type(key, __u32);
	__type(value, struct kha_snat_tw);
} snat_tw SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KHA_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct kha_counters);
} vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KHA_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct kha_counters);
} backend_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kha_reasons);
} reasons SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kha_lb_config);
} lb_config SEC(".maps");

static __always_inline void kha_count(enum kha_reason r)
{
	__u32 zero = 0;
	__u64 *c = bpf_map_lookup_elem(&reasons, &zero);

	if (c && r < KHA_R_MAX)
		c[r] += 1; /* per-CPU slot: no atomics needed */
}

#endif /* KHA_BPF_MAPS_H */
