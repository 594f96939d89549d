/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test packets for the XDP data plane: build Ethernet/IPv4/TCP and ICMP
 * frames from a plain description, with every checksum computed from
 * scratch (RFC 1071), and verify the checksums of a frame the program
 * produced. Nothing here shares code with bpf/csum.h on purpose: the tests
 * check the program's incremental arithmetic against the definition.
 *
 * Addresses in struct pkt_tcp4 are in network order (as inet_addr() gives
 * them), ports and sequence numbers in host order.
 */
#ifndef KHA_TESTS_PKT_H
#define KHA_TESTS_PKT_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>

#define PKT_MAX 2048

#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_PSH 0x08
#define PKT_TCP_ACK 0x10

struct pkt_tcp4 {
	uint8_t dmac[ETH_ALEN], smac[ETH_ALEN];
	uint32_t saddr, daddr;  /* network order */
	uint16_t sport, dport;  /* host order */
	uint8_t flags;          /* PKT_TCP_* */
	uint32_t seq, ack;
	uint16_t window;        /* 0 means 64240 */
	uint8_t ttl;            /* 0 means 64 */
	uint8_t tos;
	uint16_t id;
	uint16_t frag_off;      /* host order, flags | offset */
	const uint8_t *ip_opts; /* multiple of 4 bytes, <= 40 */
	int ip_opts_len;
	const uint8_t *tcp_opts; /* multiple of 4 bytes, <= 40 */
	int tcp_opts_len;
	int payload_len;        /* filled with a pattern from payload_seed */
	uint8_t payload_seed;
};

/* RFC 1071 sum of @len bytes (odd length: the last byte is padded) */
static inline uint32_t pkt_sum(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;

	while (len > 1) {
		sum += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

/* fold and complement; result in host order */
static inline uint16_t pkt_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline uint16_t pkt_ip4_csum(const struct iphdr *ip)
{
	return pkt_fold(pkt_sum(ip, ip->ihl * 4, 0));
}

/* TCP/UDP checksum with the IPv4 pseudo-header */
static inline uint16_t pkt_l4_csum(const struct iphdr *ip, const void *l4,
				   size_t l4_len)
{
	uint32_t sum = 0;

	sum = pkt_sum(&ip->saddr, 4, sum);
	sum = pkt_sum(&ip->daddr, 4, sum);
	sum += ip->protocol;
	sum += (uint32_t)l4_len;
	return pkt_fold(pkt_sum(l4, l4_len, sum));
}

/*
 * Recompute the checksums of an Ethernet/IPv4 frame from scratch: IP, and
 * TCP or ICMP (whole message) when the frame holds the whole L4 part.
 * The checksum fields are zeroed first, so the input values do not matter.
 */
static inline void pkt_fix_csums(uint8_t *frame, size_t len)
{
	struct iphdr *ip = (struct iphdr *)(frame + ETH_HLEN);
	size_t ihl = ip->ihl * 4, tot = ntohs(ip->tot_len);
	uint8_t *l4 = (uint8_t *)ip + ihl;

	ip->check = 0;
	ip->check = htons(pkt_ip4_csum(ip));
	if (ETH_HLEN + tot > len || (ntohs(ip->frag_off) & 0x1fff))
		return;
	if (ip->protocol == IPPROTO_TCP && tot >= ihl + 20) {
		struct tcphdr *th = (struct tcphdr *)l4;

		th->check = 0;
		th->check = htons(pkt_l4_csum(ip, l4, tot - ihl));
	} else if (ip->protocol == IPPROTO_ICMP && tot >= ihl + 8) {
		l4[2] = l4[3] = 0;
		uint16_t c = htons(pkt_fold(pkt_sum(l4, tot - ihl, 0)));
		memcpy(l4 + 2, &c, 2);
	}
}

/*
 * Check that every checksum of a frame is right, from scratch. Returns 0,
 * or 1 (IP), 2 (TCP), 3 (ICMP) for the first wrong one.
 */
static inline int pkt_verify_csums(const uint8_t *frame, size_t len)
{
	const struct iphdr *ip = (const struct iphdr *)(frame + ETH_HLEN);
	size_t ihl = ip->ihl * 4, tot = ntohs(ip->tot_len);
	const uint8_t *l4 = (const uint8_t *)ip + ihl;

	if (pkt_fold(pkt_sum(ip, ihl, 0)) != 0)
		return 1;
	if (ETH_HLEN + tot > len)
		return 0;
	if (ip->protocol == IPPROTO_TCP &&
	    pkt_l4_csum(ip, l4, tot - ihl) != 0)
		return 2;
	if (ip->protocol == IPPROTO_ICMP &&
	    pkt_fold(pkt_sum(l4, tot - ihl, 0)) != 0)
		return 3;
	return 0;
}

/* Build an Ethernet/IPv4/TCP frame; returns its length. */
static inline size_t pkt_build_tcp4(uint8_t *buf, const struct pkt_tcp4 *s)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	size_t ihl = 20 + s->ip_opts_len, doff = 20 + s->tcp_opts_len;
	struct tcphdr *th = (struct tcphdr *)((uint8_t *)ip + ihl);
	uint8_t *payload = (uint8_t *)th + doff;
	size_t tot = ihl + doff + s->payload_len;

	memset(buf, 0, ETH_HLEN + tot);
	memcpy(eth->h_dest, s->dmac, ETH_ALEN);
	memcpy(eth->h_source, s->smac, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);

	ip->version = 4;
	ip->ihl = ihl / 4;
	ip->tos = s->tos;
	ip->tot_len = htons(tot);
	ip->id = htons(s->id);
	ip->frag_off = htons(s->frag_off);
	ip->ttl = s->ttl ? s->ttl : 64;
	ip->protocol = IPPROTO_TCP;
	ip->saddr = s->saddr;
	ip->daddr = s->daddr;
	if (s->ip_opts_len)
		memcpy(ip + 1, s->ip_opts, s->ip_opts_len);

	th->source = htons(s->sport);
	th->dest = htons(s->dport);
	th->seq = htonl(s->seq);
	th->ack_seq = htonl(s->ack);
	th->doff = doff / 4;
	th->fin = !!(s->flags & PKT_TCP_FIN);
	th->syn = !!(s->flags & PKT_TCP_SYN);
	th->rst = !!(s->flags & PKT_TCP_RST);
	th->psh = !!(s->flags & PKT_TCP_PSH);
	th->ack = !!(s->flags & PKT_TCP_ACK);
	th->window = htons(s->window ? s->window : 64240);
	if (s->tcp_opts_len)
		memcpy(th + 1, s->tcp_opts, s->tcp_opts_len);
	for (int i = 0; i < s->payload_len; i++)
		payload[i] = (uint8_t)(s->payload_seed + i * 7);

	pkt_fix_csums(buf, ETH_HLEN + tot);
	return ETH_HLEN + tot;
}

/*
 * ICMP "fragmentation needed" (type 3 code 4) from @saddr to @daddr,
 * quoting the first @quote bytes of the IPv4 packet in @inner_frame (an
 * Ethernet frame as pkt_build_tcp4 makes). Returns the frame length.
 */
static inline size_t pkt_build_frag_needed(uint8_t *buf,
					   const uint8_t dmac[ETH_ALEN],
					   const uint8_t smac[ETH_ALEN],
					   uint32_t saddr, uint32_t daddr,
					   uint16_t mtu,
					   const uint8_t *inner_frame,
					   size_t quote)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	uint8_t *icmp = (uint8_t *)(ip + 1);
	size_t tot = 20 + 8 + quote;

	memset(buf, 0, ETH_HLEN + tot);
	memcpy(eth->h_dest, dmac, ETH_ALEN);
	memcpy(eth->h_source, smac, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0xc0;
	ip->tot_len = htons(tot);
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	ip->saddr = saddr;
	ip->daddr = daddr;
	icmp[0] = 3; /* destination unreachable */
	icmp[1] = 4; /* fragmentation needed */
	icmp[6] = mtu >> 8;
	icmp[7] = mtu & 0xff;
	memcpy(icmp + 8, inner_frame + ETH_HLEN, quote);
	pkt_fix_csums(buf, ETH_HLEN + tot);
	return ETH_HLEN + tot;
}

/* accessors for frames built above */
static inline struct iphdr *pkt_ip(uint8_t *frame)
{
	return (struct iphdr *)(frame + ETH_HLEN);
}

static inline struct tcphdr *pkt_tcp(uint8_t *frame)
{
	struct iphdr *ip = pkt_ip(frame);

	return (struct tcphdr *)((uint8_t *)ip + ip->ihl * 4);
}

#endif /* KHA_TESTS_PKT_H */
