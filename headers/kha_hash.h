/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The client-address hash that picks a Maglev slot. The XDP, cgroup and
 * user-space code must agree bit for bit, so there is exactly one copy.
 * Only the source address is hashed (haproxy `balance source`): one client,
 * one backend, on every LB node with the same healthy set.
 */
#ifndef KHA_HASH_H
#define KHA_HASH_H

#include "kha_abi.h"

#define KHA_HASH_SEED 0x9e3779b9u

/* murmur3's finaliser: full avalanche in five operations */
static inline __u32 kha_fmix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* keys are read as words: an alias of any type, or gcc -O2 may reorder */
typedef __u32 __attribute__((__may_alias__)) kha_word_t;

/*
 * Sum of word i times its own odd constant: the multiplies are independent,
 * so the CPU does them side by side (a chain of fmix rounds, one per word,
 * cost a new flow ~15 ns more before its first table read could start);
 * fmix then mixes the sum. Zero words (the rest of an IPv4 address) add
 * nothing.
 */
static inline __u32 kha_fold(const kha_word_t *w, int n, __u32 h)
{
	for (int i = 0; i < n; i++)
		h += w[i] * (0x9e3779b1u * (__u32)(2 * i + 1));
	return h;
}

/* Hash of the raw address words as stored (network order). */
static inline __u32 kha_hash_addr(const struct kha_addr *a)
{
	return kha_fmix32(kha_fold((const kha_word_t *)a, 4, KHA_HASH_SEED));
}

/* hash * size / 2^32: the same spread as hash % size without a division */
static inline __u32 kha_slot_of(const struct kha_addr *client, __u32 ring_size)
{
	return (__u32)(((__u64)kha_hash_addr(client) * ring_size) >> 32);
}

/*
 * Home slots of the flow tables (headers/kha_abi.h, "flow tables"): any
 * well-mixed hash will do, but BPF and user space (tests, `status`) must
 * agree, so it lives here.
 */
static inline __u32 kha_ct_home(const struct kha_flow_key *k)
{
	return kha_fmix32(kha_fold((const kha_word_t *)k, sizeof(*k) / 4,
				   KHA_HASH_SEED));
}

/*
 * kha_ct_home() of an IPv4 key from its only nonzero words: 0 (source),
 * 4 (destination), 8 (the two ports) and 9 (proto, family), as stored.
 * Keys are zeroed before they are filled, so the other words add nothing
 * and the sum is the same (tests/test_flows.c checks it). The data plane
 * hashes an established packet's fields this way, with no key built.
 */
static inline __u32 kha_ct_home4(__u32 src, __u32 dst, __u32 ports, __u32 pf)
{
	return kha_fmix32(KHA_HASH_SEED + src * 0x9e3779b1u +
			  dst * (0x9e3779b1u * 9u) +
			  ports * (0x9e3779b1u * 17u) +
			  pf * (0x9e3779b1u * 19u));
}

/* a port as a number: network order to host order */
static inline __u32 kha_port_num(__be16 port)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return __builtin_bswap16(port);
#else
	return port;
#endif
}

/* The base of a remote entry's home (below): its backend's address, port */
static inline __u32 kha_snat_base(const struct kha_addr *backend,
				  __be16 backend_port)
{
	__u32 h = kha_fold((const kha_word_t *)backend, 4,
			   KHA_HASH_SEED ^ 0x5bd1e995u);

	return kha_fmix32(h + (__u32)backend_port * 0xc2b2ae35u);
}

/*
 * @client: the client for a local-backend entry, NULL for a remote one.
 *
 * A remote entry's home is a base that the backend (address and port)
 * names, plus the SNAT port: one backend's ports are consecutive slots, so
 * the data plane, which hands a backend's ports out in order (bpf/nat.h,
 * snat_claim()), writes one slot after the other, and the line it claims
 * is the line after the last one, which the CPU has already fetched (a
 * slot anywhere in the 32 MiB table is a miss to DRAM, ~180 ns here:
 * docs/benchmarks.md). A local entry's key is the client's port, not ours
 * to choose: it is hashed like conntrack's.
 */
static inline __u32 kha_snat_home(const struct kha_addr *backend,
				  __be16 backend_port, __be16 port,
				  const struct kha_addr *client)
{
	__u32 h, ports = ((__u32)backend_port << 16) | port;

	if (!client)
		return kha_snat_base(backend, backend_port) +
		       kha_port_num(port);
	h = kha_fold((const kha_word_t *)backend, 4,
		     KHA_HASH_SEED ^ 0x5bd1e995u);
	h ^= kha_fmix32(kha_fold((const kha_word_t *)client, 4, h));
	return kha_fmix32(h + ports * 0xc2b2ae35u);
}

static inline __u32 kha_flow_probe(__u32 home, __u32 i)
{
	return (home + i) & (KHA_FLOW_SLOTS - 1);
}

/* The ct_syn line (the map's element) of @home. */
static inline __u32 kha_ct_syn_line(__u32 home)
{
	return (home & (KHA_CT_SYN_SLOTS - 1)) / KHA_CT_SYN_WAYS;
}

/* Entry @i (< KHA_CT_SYN_WAYS) of the ct_syn line of @home. */
static inline __u32 kha_ct_syn_probe(__u32 home, __u32 i)
{
	return kha_ct_syn_line(home) * KHA_CT_SYN_WAYS + i;
}

#endif /* KHA_HASH_H */
