// SPDX-License-Identifier: GPL-2.0
/*
 * Packet path 4, second half: replies of the node's own backend.
 *
 * When the VIP holder picks its own apiserver, XDP rewrites only the
 * destination (VIP:vip_port -> node:6443) and passes the packet to the
 * local stack, inserting the reverse entry
 *   snat{src=node, dst=client, sport=6443, dport=cport} -> {client, vip ...}.
 * The apiserver answers node:6443 -> client:cport, from the node address
 * whether it listens on 0.0.0.0 or on that address (the SYN it accepted
 * was addressed to it). This program, on clsact egress of the same
 * interface, finds that entry and puts VIP:vip_port back as the source, so
 * the client sees the peer it connected to.
 *
 * Anything else (no entry, not TCP/IPv4, a fragment, a truncated header)
 * leaves untouched with TC_ACT_OK: this hook must never break the node's
 * own traffic. Checksums are patched with bpf_l3/l4_csum_replace(), which
 * also do the right thing for CHECKSUM_PARTIAL (TSO/offload) skbs, where
 * only the pseudo-header part of the TCP checksum may change.
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "maps.h"
#include "flows.h"

#define KHA_IP_MF 0x2000
#define KHA_IP_OFFSET 0x1fff

#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_SRC_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define TCP_CSUM_OFF(ihl) (ETH_HLEN + (ihl) + offsetof(struct tcphdr, check))
#define TCP_SPORT_OFF(ihl) (ETH_HLEN + (ihl) + offsetof(struct tcphdr, source))

static __always_inline void count(void *map, __u32 id, __u64 bytes)
{
	struct kha_counters *c = bpf_map_lookup_elem(map, &id);

	if (c) { /* per-CPU slot: no atomics needed */
		c->packets += 1;
		c->bytes += bytes;
	}
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct kha_addr node = {}, client = {};
	struct kha_snat_slot *s;
	struct kha_backend *be;
	__u32 idx, id;
	struct iphdr *iph;
	struct tcphdr *tcp;
	__be32 old_ip, new_ip;
	__be16 old_port, new_port;
	__u32 ihl;

	/* parse: Ethernet, IPv4 (options allowed), the TCP ports */
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end || iph->version != 4 || iph->ihl < 5 ||
	    iph->protocol != IPPROTO_TCP)
		return TC_ACT_OK;
	/*
	 * TCP sets DF and the stack segments to the path MTU, so a fragment
	 * here is not one of ours to fix; rewriting only the first one would
	 * break reassembly anyway.
	 */
	if (iph->frag_off & bpf_htons(KHA_IP_MF | KHA_IP_OFFSET))
		return TC_ACT_OK;
	ihl = iph->ihl * 4;
	if (ihl > bpf_ntohs(iph->tot_len))
		return TC_ACT_OK;
	tcp = (void *)iph + ihl;
	/* the checksum field must be in the packet too, not only the ports */
	if ((void *)(tcp + 1) > data_end)
		return TC_ACT_OK;

	/* match: the reverse entry XDP made for a local-backend flow */
	node.v4 = iph->saddr;
	client.v4 = iph->daddr;
	s = snat_find(&node, tcp->source, tcp->dest, &client, &idx);
	if (!s)
		return TC_ACT_OK;

	/* rewrite: source -> VIP:vip_port; checksums before the store */
	old_ip = iph->saddr;
	new_ip = s->vip.v4;
	old_port = tcp->source;
	new_port = s->vip_port;
	id = s->backend_id;
	be = bpf_map_lookup_elem(&backends, &id);
	if (be)
		count(&vip_stats, be->vip_id, skb->len);
	count(&backend_stats, id, skb->len);

	if (bpf_l4_csum_replace(skb, TCP_CSUM_OFF(ihl), old_ip, new_ip,
				BPF_F_PSEUDO_HDR | sizeof(new_ip)) ||
	    bpf_l4_csum_replace(skb, TCP_CSUM_OFF(ihl), old_port, new_port,
				sizeof(new_port)) ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_ip, new_ip,
				sizeof(new_ip)) ||
	    bpf_skb_store_bytes(skb, IP_SRC_OFF, &new_ip, sizeof(new_ip), 0) ||
	    bpf_skb_store_bytes(skb, TCP_SPORT_OFF(ihl), &new_port,
				sizeof(new_port), 0))
		return TC_ACT_SHOT; /* half-rewritten: never send it */
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
