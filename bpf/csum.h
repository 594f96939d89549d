/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internet checksum arithmetic for XDP (RFC 1071, RFC 1624).
 *
 * bpf_l3/l4_csum_replace() are tc-only, so XDP updates checksums itself:
 * every rewrite of a header field accumulates "~old + new" into a 32-bit
 * one's-complement delta, and each checksum that covers the field is then
 * patched once with RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'). The payload is
 * never touched, so the cost does not depend on the packet length and odd
 * lengths need no special case. Values are added as they sit in the packet
 * (network order): one's-complement sums are byte-order independent as long
 * as every term is in the same order.
 */
#ifndef KHA_BPF_CSUM_H
#define KHA_BPF_CSUM_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* one's-complement 32-bit add: the carry out of bit 31 wraps around */
static __always_inline __u32 csum_add(__u32 sum, __u32 addend)
{
	sum += addend;
	return sum + (sum < addend);
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* delta for a 32-bit field changing from @from to @to */
static __always_inline __u32 csum_delta32(__u32 delta, __be32 from, __be32 to)
{
	return csum_add(csum_add(delta, ~(__u32)from), (__u32)to);
}

/* delta for a 16-bit field; it sits in one 16-bit word of the sum */
static __always_inline __u32 csum_delta16(__u32 delta, __be16 from, __be16 to)
{
	return csum_add(csum_add(delta, (__u16)~from), (__u16)to);
}

/* apply an accumulated delta to the checksum field @check (RFC 1624 eqn 3) */
static __always_inline void csum_apply(__sum16 *check, __u32 delta)
{
	*check = csum_fold(csum_add((__u16)~*check, delta));
}

/*
 * Sum of @words 16-bit words from scratch, for the few headers XDP builds
 * itself (the RST). @words is a compile-time constant at every call site,
 * so the loop is fully unrolled.
 */
static __always_inline __u32 csum_words(const __u16 *p, int words, __u32 sum)
{
#pragma unroll
	for (int i = 0; i < words; i++)
		sum = csum_add(sum, p[i]);
	return sum;
}

#endif /* KHA_BPF_CSUM_H */
