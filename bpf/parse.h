/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Packet parsing for the XDP load balancer: Ethernet, IPv4 with options,
 * TCP and ICMP, with UAPI headers. Every pointer is bounds-checked against
 * data_end before use; nothing here writes to the packet.
 *
 * Rules (docs/datapath.md, "Malformed input"):
 *   - not IPv4 (ARP, IPv6, VLAN...)            -> XDP_PASS, not counted
 *   - truncated Ethernet/IPv4 header, version != 4, IHL < 5, IHL past the
 *     frame, tot_len < IHL or tot_len > frame  -> XDP_PASS + pass_malformed
 *     (the kernel drops them with its own counters; we never guess)
 *   - TCP ports unreadable                     -> XDP_PASS + pass_malformed
 *   - a fragment, a truncated TCP header or doff < 5 is only recorded in
 *     pkt->bad here: whether it is dropped (it is for us) or passed (it is
 *     not) is decided once the VIP/flow lookup has said whose it is.
 */
#ifndef KHA_BPF_PARSE_H
#define KHA_BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "maps.h"

/*
 * linux/icmp.h drags in libc's socket headers, which a BPF target cannot
 * include; the 8-byte ICMP header and the two constants we need are here.
 */
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};
#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4

/* "keep going" return value of the helpers; never a valid XDP action */
#define KHA_CONTINUE (-1)

#define KHA_IP_MF 0x2000
#define KHA_IP_OFFSET 0x1fff

/* why a packet that is ours cannot be translated (pkt.bad) */
enum {
	KHA_BAD_NONE = 0,
	KHA_BAD_FRAGMENT, /* MF set or offset != 0 */
	KHA_BAD_TCP,      /* TCP header truncated, doff < 5 or past tot_len */
};

struct pkt {
	void *data_end;
	struct ethhdr *eth;
	struct iphdr *iph;
	struct tcphdr *tcp;     /* NULL for ICMP */
	struct icmphdr *icmp;   /* NULL for TCP */
	__u32 l4_len;           /* tot_len - IHL: TCP header + payload */
	__u32 frame_len;        /* bytes counted in the stats */
	__u8 bad;               /* KHA_BAD_* */
};

/*
 * Ethernet + IPv4 + the start of TCP/ICMP. Returns KHA_CONTINUE with @p
 * filled for TCP and ICMP, otherwise the verdict (always XDP_PASS).
 */
static __always_inline int parse_packet(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	__u32 ihl, tot_len, frame_l3;

	p->data_end = data_end;
	if ((void *)(eth + 1) > data_end) {
		kha_count(KHA_R_pass_malformed);
		return XDP_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end || iph->version != 4 || iph->ihl < 5) {
		kha_count(KHA_R_pass_malformed);
		return XDP_PASS;
	}
	ihl = iph->ihl * 4;
	tot_len = bpf_ntohs(iph->tot_len);
	frame_l3 = data_end - (void *)iph;
	/* trailing bytes past tot_len (Ethernet padding) are allowed */
	if (tot_len < ihl || tot_len > frame_l3 ||
	    (void *)iph + ihl > data_end) {
		kha_count(KHA_R_pass_malformed);
		return XDP_PASS;
	}
	p->eth = eth;
	p->iph = iph;
	p->l4_len = tot_len - ihl;
	p->frame_len = data_end - data;
	p->tcp = NULL;
	p->icmp = NULL;
	p->bad = KHA_BAD_NONE;

	if (iph->protocol == IPPROTO_ICMP) {
		/* ICMP is only translated whole; fragments are not ours */
		if (iph->frag_off & bpf_htons(KHA_IP_MF | KHA_IP_OFFSET))
			return XDP_PASS;
		p->icmp = (void *)iph + ihl;
		return KHA_CONTINUE;
	}
	if (iph->protocol != IPPROTO_TCP)
		return XDP_PASS;

	/*
	 * A non-first fragment has no ports: it cannot be matched to VIP:port,
	 * so it goes to the kernel, whose reassembly discards it once the
	 * first fragment (dropped below when it is for a VIP) never arrives.
	 */
	if (iph->frag_off & bpf_htons(KHA_IP_OFFSET))
		return XDP_PASS;

	p->tcp = (void *)iph + ihl;
	/* the ports alone identify the flow; the rest is checked later */
	if ((void *)p->tcp + 4 > data_end || p->l4_len < 4) {
		kha_count(KHA_R_pass_malformed);
		return XDP_PASS;
	}
	if (iph->frag_off & bpf_htons(KHA_IP_MF))
		p->bad = KHA_BAD_FRAGMENT;
	else if ((void *)(p->tcp + 1) > data_end ||
		 p->l4_len < sizeof(struct tcphdr) || p->tcp->doff < 5 ||
		 p->tcp->doff * 4 > p->l4_len)
		p->bad = KHA_BAD_TCP;
	return KHA_CONTINUE;
}

/* the packet's own 5-tuple, as conntrack and snat keys store it */
static __always_inline void flow_key_of(const struct pkt *p,
					struct kha_flow_key *k)
{
	k->src.v4 = p->iph->saddr;
	k->dst.v4 = p->iph->daddr;
	k->sport = p->tcp->source;
	k->dport = p->tcp->dest;
	k->proto = IPPROTO_TCP;
	k->family = KHA_AF_INET;
}

/*
 * The TCP timestamp option's TSval (host order) in *tsval: 1 when the
 * segment carries one. Scans at most KHA_TCP_OPT_SCAN options, unrolled:
 * a SYN's timestamp comes third at the latest (Linux: MSS, SACK-permitted,
 * TS; others NOP, NOP, TS). A global function, so the verifier checks it
 * once rather than at every place it is inlined (its branches multiplied
 * xdp_lb's load time, which the VRRP takeover timing depends on:
 * vmtests/47). @opt_off: the options' offset in the packet, @opt_len their
 * length.
 */
#define KHA_TCP_OPT_SCAN 6
#define KHA_TCPOPT_EOL 0
#define KHA_TCPOPT_NOP 1
#define KHA_TCPOPT_TIMESTAMP 8
#define KHA_TCPOLEN_TIMESTAMP 10

__attribute__((noinline)) int kha_tcp_tsval(struct xdp_md *ctx, __u32 opt_off,
					     __u32 opt_len, __u32 *tsval)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *opt, *end;

	if (!tsval || opt_off > 128 || opt_len > 40)
		return 0;
	opt = (__u8 *)data + opt_off;
	end = opt + opt_len;
#pragma unroll
	for (int i = 0; i < KHA_TCP_OPT_SCAN; i++) {
		__u8 kind, len;

		if (opt + 2 > end || (void *)(opt + 2) > data_end)
			return 0; /* a lone EOL/NOP at the end: no TS either */
		kind = opt[0];
		if (kind == KHA_TCPOPT_EOL)
			return 0;
		if (kind == KHA_TCPOPT_NOP) {
			opt++;
			continue;
		}
		len = opt[1];
		if (kind == KHA_TCPOPT_TIMESTAMP &&
		    len == KHA_TCPOLEN_TIMESTAMP) {
			__be32 v;

			if (opt + KHA_TCPOLEN_TIMESTAMP > end ||
			    (void *)(opt + KHA_TCPOLEN_TIMESTAMP) > data_end)
				return 0;
			__builtin_memcpy(&v, opt + 2, sizeof(v));
			*tsval = bpf_ntohl(v);
			return 1;
		}
		if (len < 2)
			return 0;
		opt += len;
	}
	return 0;
}

/* Where the TCP options of @p are: offset in the packet and length. */
static __always_inline void tcp_opts_at(const struct pkt *p, __u32 *off,
					__u32 *len)
{
	struct tcphdr *tcp = p->tcp;

	*off = *len = 0;
	if (!tcp || (void *)(tcp + 1) > p->data_end)
		return;
	*off = (__u32)((__u8 *)(tcp + 1) - (__u8 *)p->eth);
	*len = tcp->doff * 4 - sizeof(*tcp);
}

static __always_inline int tcp_tsval(struct xdp_md *ctx, const struct pkt *p,
				     __u32 *tsval)
{
	__u32 off, len;

	tcp_opts_at(p, &off, &len);
	return len && kha_tcp_tsval(ctx, off, len, tsval);
}

#endif /* KHA_BPF_PARSE_H */
