/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ICMP "fragmentation needed" (type 3 code 4) about a translated flow is
 * translated too, so path-MTU discovery works through the VIP. Two cases,
 * both addressed to the VIP:
 *
 *   about the LB -> backend leg (a router near the backend):
 *       quoted VIP:snat_port -> backend:port   (found in `snat`)
 *       => to the client, quoting client:port -> VIP:vip_port
 *   about the LB -> client leg (a router near the client):
 *       quoted VIP:vip_port -> client:port     (found in `conntrack`)
 *       => to the backend, quoting backend:port -> VIP:snat_port, or for a
 *          local backend handed to the kernel quoting backend:port -> client
 *
 * The outer source (the router) is kept. The outer IP checksum, the quoted
 * IP checksum, the quoted TCP checksum (when the quote reaches it) and the
 * ICMP checksum are all patched incrementally.
 */
#ifndef KHA_BPF_ICMP_H
#define KHA_BPF_ICMP_H

#include "nat.h"

/* ICMP header + quoted IPv4 header + quoted ports, as found in the packet */
struct icmp_quote {
	struct iphdr *ip;
	__be16 *ports;   /* [0] source, [1] dest */
	__u32 l4_quoted; /* bytes of the quoted L4 header present */
};

/*
 * Patch every address, port and checksum of an ICMP error in one pass.
 * The ICMP checksum covers the quote, so it moves by the same delta as the
 * quoted TCP checksum (addresses and ports) plus the change of the two
 * quoted checksums themselves.
 */
static __always_inline void icmp_rewrite(struct pkt *p, struct icmp_quote *q,
					 __be32 outer_daddr, __be32 saddr,
					 __be32 daddr, __be16 sport,
					 __be16 dport)
{
	struct iphdr *in = q->ip;
	__be16 *ports = q->ports;
	__u32 d_outer, d_ip = 0, d_l4, d_icmp;
	__sum16 *l4_check = (void *)ports + 16;
	__sum16 old;

	if ((void *)(ports + 2) > p->data_end)
		return; /* checked by the caller; this reassures the verifier */
	d_outer = csum_delta32(0, p->iph->daddr, outer_daddr);
	d_ip = csum_delta32(d_ip, in->saddr, saddr);
	d_ip = csum_delta32(d_ip, in->daddr, daddr);
	d_l4 = csum_delta16(d_ip, ports[0], sport);
	d_l4 = csum_delta16(d_l4, ports[1], dport);
	d_icmp = d_l4;

	in->saddr = saddr;
	in->daddr = daddr;
	old = in->check;
	csum_apply(&in->check, d_ip);
	d_icmp = csum_delta16(d_icmp, old, in->check);
	ports[0] = sport;
	ports[1] = dport;
	if (q->l4_quoted >= 18 && (void *)(l4_check + 1) <= p->data_end) {
		old = *l4_check;
		csum_apply(l4_check, d_l4);
		d_icmp = csum_delta16(d_icmp, old, *l4_check);
	}
	csum_apply(&p->icmp->checksum, d_icmp);

	p->iph->daddr = outer_daddr;
	csum_apply(&p->iph->check, d_outer);
}

static __always_inline int icmp_translate(struct xdp_md *ctx, struct pkt *p)
{
	struct icmphdr *icmp = p->icmp;
	struct kha_flow_key key = {};
	struct icmp_quote q;
	struct kha_addr bk = {};
	struct kha_snat_slot *s;
	struct kha_ct_slot *ct;
	struct kha_backend *be;
	__u32 in_ihl, idx;

	if ((void *)(icmp + 1) > p->data_end || p->l4_len < sizeof(*icmp))
		return XDP_PASS;
	if (icmp->type != ICMP_DEST_UNREACH || icmp->code != ICMP_FRAG_NEEDED)
		return XDP_PASS;
	q.ip = (void *)(icmp + 1);
	if ((void *)(q.ip + 1) > p->data_end)
		return XDP_PASS;
	/* only a quote whose ports can be found can name a flow */
	if (q.ip->version != 4 || q.ip->ihl < 5 ||
	    q.ip->protocol != IPPROTO_TCP ||
	    (q.ip->frag_off & bpf_htons(KHA_IP_OFFSET)))
		return XDP_PASS;
	in_ihl = q.ip->ihl * 4;
	q.ports = (void *)q.ip + in_ihl;
	if ((void *)(q.ports + 2) > p->data_end ||
	    p->l4_len < sizeof(*icmp) + in_ihl + 4)
		return XDP_PASS;
	q.l4_quoted = p->l4_len - sizeof(*icmp) - in_ihl;

	/* the quote as a backend would answer it: reverse of the quote */
	key.src.v4 = q.ip->daddr;
	key.dst.v4 = q.ip->saddr;
	key.sport = q.ports[1];
	key.dport = q.ports[0];
	key.proto = IPPROTO_TCP;
	key.family = KHA_AF_INET;

	bk.v4 = q.ip->daddr;
	s = snat_find(&bk, q.ports[1], q.ports[0], NULL, &idx);
	if (s && s->vip.v4 == q.ip->saddr && p->iph->daddr == q.ip->saddr) {
		/* RFC 792: at least 8 bytes of the datagram are quoted */
		if (q.l4_quoted < 8)
			return drop(KHA_R_drop_icmp_bad);
		icmp_rewrite(p, &q, s->client.v4, s->client.v4, s->vip.v4,
			     s->client_port, s->vip_port);
		kha_count(KHA_R_icmp_translated);
		return fib_forward(ctx, p);
	}

	/* the same key shape is the client's flow seen from the VIP */
	ct = ct_find(&key, &idx);
	if (!ct) /* a flow in its handshake */
		ct = ct_syn_state(&key);
	be = ct ? ct_backend(ct) : NULL;
	if (be && p->iph->daddr == q.ip->saddr) {
		if (q.l4_quoted < 8)
			return drop(KHA_R_drop_icmp_bad);
		kha_count(KHA_R_icmp_translated);
		if (!ct->snat_port) {
			/* local backend: the kernel's socket is backend:port */
			icmp_rewrite(p, &q, be->addr.v4, be->addr.v4,
				     q.ip->daddr, ct->backend_port,
				     q.ports[1]);
			return XDP_PASS;
		}
		icmp_rewrite(p, &q, be->addr.v4, be->addr.v4,
			     q.ip->saddr, ct->backend_port, ct->snat_port);
		return fib_forward(ctx, p);
	}
	return XDP_PASS;
}

#endif /* KHA_BPF_ICMP_H */
