// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark helpers for tests/bench.c (docs/benchmarks.md); never attached
 * by the daemon.
 *
 * xdp_floor: the floor every data-plane path is compared with. It does
 * what any forwarder must do at the least (read and write the Ethernet
 * header) and transmits the frame back: the XDP_TX machinery plus one
 * cache line of packet access, nothing else.
 *
 * xdp_pass_floor: the same for a program whose verdict is XDP_PASS, so the
 * cost of non-VIP traffic can be separated from the kernel stack that
 * receives it.
 *
 * xdp_peer: loaded on the far end of the bench veth pair. A native-XDP veth
 * only delivers XDP_TX/XDP_REDIRECT frames when its peer runs an XDP
 * program; it counts and drops them there, so the floor times a real
 * transmit and no socket-buffer work of the receiver.
 *
 * xdp_bench_wrap: live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES) does NOT
 * restore the packet bytes between repeats: a recycled page keeps what the
 * previous run wrote (Documentation/bpf/bpf_prog_run.rst, and measured here:
 * a MAC-swapping program sees each order half of the time). A NAT program
 * would then time its own output, i.e. another path. The wrapper writes the
 * template frame back into the packet, optionally makes it a new flow
 * (a source address and port no repeat has used: bench_seq counts every
 * packet) or one of bench_mod flows in turn (established traffic spread
 * over many connections), and tail-calls the program under test
 * (bench_next[0]). The same wrapper in front of xdp_floor measures what
 * the wrapper itself costs, so bench.c subtracts it exactly.
 *
 * xdp_floor_lru, xdp_floor_hash: the floor plus one insert into a map shaped
 * like conntrack, to show what a connection-table insert costs by itself.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "kha_abi.h"
#include "csum.h"

/* Eth + IPv4 (no options) + TCP (no options): the bench's frame */
#define BENCH_PKT_LEN 54

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_next SEC(".maps");

/* written by bench.c before each run (skeleton .bss) */
__u8 bench_tmpl[BENCH_PKT_LEN];
__u32 bench_newflow; /* 1: give every packet a fresh source addr:port;
			2: cycle over bench_mod sources from bench_base */
__u64 bench_seq;     /* sequence of mode 1 (never reset) */
__u64 bench_base;    /* mode 2: first sequence number of the cycle */
__u64 bench_cyc;     /* mode 2: packets so far */
__u32 bench_mod;     /* mode 2: flows in the cycle */
__u64 bench_runs;    /* wrapper invocations, checked against repeats */
__u64 bench_peer_rx; /* frames xdp_peer received (XDP_TX'd to it) */

/* What every floor variant ends with: the MACs swapped, XDP_TX. */
static __always_inline int swap_macs_tx(struct ethhdr *eth)
{
	unsigned char tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int xdp_floor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	return swap_macs_tx(eth);
}

/*
 * What one connection-table insert costs on its own: the floor plus one
 * update of a map shaped like conntrack (same key, value and size), keyed
 * by the packet's 5-tuple. Timed behind the wrapper in new-flow mode, so
 * every update inserts a new key. One LRU hash (as conntrack and snat
 * were before they became slot tables) and one plain preallocated hash,
 * for comparison.
 *
 * The shape conntrack had as an LRU hash: 5-tuple -> 32-byte value.
 */
#define BENCH_CT_ENTRIES 262144
struct bench_ct {
	__u64 word[4]; /* what is in it does not matter, its size does */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BENCH_CT_ENTRIES);
	__type(key, struct kha_flow_key);
	__type(value, struct bench_ct);
} bench_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BENCH_CT_ENTRIES);
	__type(key, struct kha_flow_key);
	__type(value, struct bench_ct);
} bench_hash SEC(".maps");

static __always_inline int insert_then_tx(struct xdp_md *ctx, void *map)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(iph + 1);
	struct kha_flow_key key = {};
	struct bench_ct ct = {};

	if ((void *)(tcp + 1) > data_end)
		return XDP_DROP;
	key.src.v4 = iph->saddr;
	key.dst.v4 = iph->daddr;
	key.sport = tcp->source;
	key.dport = tcp->dest;
	key.proto = IPPROTO_TCP;
	key.family = KHA_AF_INET;
	ct.word[0] = iph->daddr;
	if (bpf_map_update_elem(map, &key, &ct, BPF_ANY))
		return XDP_ABORTED;
	return swap_macs_tx(eth);
}

SEC("xdp")
int xdp_floor_lru(struct xdp_md *ctx)
{
	return insert_then_tx(ctx, &bench_lru);
}

SEC("xdp")
int xdp_floor_hash(struct xdp_md *ctx)
{
	return insert_then_tx(ctx, &bench_hash);
}

/*
 * xdp_floor_slot, xdp_floor_slot2: the floor plus one (two) claims of a
 * slot in a preallocated array by compare-and-swap, the way the flow
 * tables claim a new flow's state (index: hash of the 5-tuple, linear
 * probing over KHA_BENCH_PROBES slots).
 */
#define KHA_BENCH_SLOTS (1u << 19)
#define KHA_BENCH_PROBES 4
struct bench_slot {
	__u64 word;
	__u32 key[10];
	__u32 val[4];
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KHA_BENCH_SLOTS);
	__type(key, __u32);
	__type(value, struct bench_slot);
} bench_slots SEC(".maps"), bench_slots2 SEC(".maps");

static __always_inline int slot_claim(void *map, __u32 h, __u32 a, __u32 b)
{
	for (int i = 0; i < KHA_BENCH_PROBES; i++) {
		__u32 idx = (h + i) & (KHA_BENCH_SLOTS - 1);
		struct bench_slot *s = bpf_map_lookup_elem(map, &idx);
		__u64 w;

		if (!s)
			return -1;
		w = s->word;
		if (w)
			continue;
		if (__sync_val_compare_and_swap(&s->word, w, 1 + (__u64)a) != w)
			continue;
		s->key[0] = a;
		s->key[1] = b;
		s->val[0] = h;
		return 0;
	}
	return -1;
}

/*
 * xdp_floor_bits2: the floor plus two claims that own a slot by setting its
 * bit in a small bitmap (atomic or) and then write the slot without reading
 * it, the claim of the occupancy-bitmap design tried in session 3
 * (docs/datapath.md, "Cost": its slot miss becomes a store, which the CPU
 * still pays for).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KHA_BENCH_SLOTS / 64);
	__type(key, __u32);
	__type(value, __u64);
} bench_bits SEC(".maps"), bench_bits2 SEC(".maps");

static __always_inline int bit_claim(void *bits, void *map, __u32 h, __u32 a,
				     __u32 b)
{
	__u32 idx = h & (KHA_BENCH_SLOTS - 1), w = idx >> 6;
	__u64 *word = bpf_map_lookup_elem(bits, &w), bit = 1ull << (idx & 63);
	struct bench_slot *s;

	if (!word || (*word & bit) || (__sync_fetch_and_or(word, bit) & bit))
		return -1;
	s = bpf_map_lookup_elem(map, &idx);
	if (!s)
		return -1;
	s->key[0] = a;
	s->key[1] = b;
	s->val[0] = h;
	asm volatile("" ::: "memory");
	s->word = 1 + (__u64)a;
	return 0;
}

enum { ONE_SLOT, TWO_SLOTS, TWO_BITS };

static __always_inline int slots_then_tx(struct xdp_md *ctx, int mode)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(iph + 1);
	__u32 h;

	if ((void *)(tcp + 1) > data_end)
		return XDP_DROP;
	h = iph->saddr ^ ((__u32)tcp->source << 16);
	h = h * 0x9e3779b1u;
	h ^= h >> 15;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	if (mode == TWO_BITS) {
		if (bit_claim(&bench_bits, &bench_slots, h, iph->saddr,
			      tcp->source) ||
		    bit_claim(&bench_bits2, &bench_slots2, h * 0xc2b2ae35u,
			      iph->saddr, tcp->source))
			return XDP_ABORTED;
		return swap_macs_tx(eth);
	}
	if (slot_claim(&bench_slots, h, iph->saddr, tcp->source))
		return XDP_ABORTED;
	if (mode == TWO_SLOTS &&
	    slot_claim(&bench_slots2, h * 0xc2b2ae35u, iph->saddr, tcp->source))
		return XDP_ABORTED;
	return swap_macs_tx(eth);
}

SEC("xdp")
int xdp_floor_slot(struct xdp_md *ctx)
{
	return slots_then_tx(ctx, ONE_SLOT);
}

SEC("xdp")
int xdp_floor_slot2(struct xdp_md *ctx)
{
	return slots_then_tx(ctx, TWO_SLOTS);
}

SEC("xdp")
int xdp_floor_bits2(struct xdp_md *ctx)
{
	return slots_then_tx(ctx, TWO_BITS);
}

SEC("xdp")
int xdp_pass_floor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	/* one read of the header, like the floor: the verdict is the point */
	return eth->h_proto ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_peer(struct xdp_md *ctx)
{
	/* every frame that really arrived: bench.c checks it per run */
	__sync_fetch_and_add(&bench_peer_rx, 1);
	return XDP_DROP;
}

SEC("xdp")
int xdp_bench_wrap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	struct tcphdr *tcp = (void *)(iph + 1);

	if (data + BENCH_PKT_LEN > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, bench_tmpl, BENCH_PKT_LEN);
	bench_runs++;
	if (bench_newflow) {
		/*
		 * The template's low 16 address bits and its source port are
		 * zero: add the sequence number there, fastest-moving bits in
		 * the address so new flows spread over every backend (Maglev
		 * hashes the address only). 2^31 distinct 5-tuples.
		 */
		__u64 seq;
		__be32 saddr;
		__be16 sport;
		__u32 d = 0;

		if (bench_newflow == 2 && bench_mod)
			seq = bench_base + bench_cyc++ % bench_mod;
		else
			seq = bench_seq++;
		saddr = iph->saddr | bpf_htonl(seq & 0xffff);
		sport = bpf_htons(1024 + ((seq >> 16) & 0x7fff));
		d = csum_delta32(d, iph->saddr, saddr);
		csum_apply(&iph->check, d);
		d = csum_delta16(d, tcp->source, sport);
		csum_apply(&tcp->check, d);
		iph->saddr = saddr;
		tcp->source = sport;
	}
	bpf_tail_call(ctx, &bench_next, 0);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
