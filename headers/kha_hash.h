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

/* Hash of the raw address words as stored (network order). */
static inline __u32 kha_hash_addr(const struct kha_addr *a)
{
	__u32 h = KHA_HASH_SEED;

	h = kha_fmix32(h ^ (__u32)a->v6[0]);
	h = kha_fmix32(h ^ (__u32)a->v6[1]);
	h = kha_fmix32(h ^ (__u32)a->v6[2]);
	h = kha_fmix32(h ^ (__u32)a->v6[3]);
	return h;
}

static inline __u32 kha_slot_of(const struct kha_addr *client, __u32 ring_size)
{
	return kha_hash_addr(client) % ring_size;
}

#endif /* KHA_HASH_H */
