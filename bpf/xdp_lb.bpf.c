// SPDX-License-Identifier: GPL-2.0
/*
 * kha-xdp data plane: XDP load balancer for VIP:port -> backends.
 *
 *   client -> VIP:vip_port            Maglev on the client address, then
 *     remote backend: full NAT        VIP:snat_port -> backend:port, FIB out
 *     local backend:  DNAT only       client -> backend:port, to the kernel
 *   backend -> VIP:snat_port          back to VIP:vip_port -> client, FIB out
 *   ICMP frag-needed about a flow     translated to the other side
 *   anything else                     XDP_PASS, untouched
 *
 * The packet's story, the drop/pass rules and the counters are described in
 * docs/datapath.md; the maps in docs/maps.md and headers/kha_abi.h.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "kha_abi.h"
#include "maps.h"
#include "parse.h"
#include "csum.h"
#include "nat.h"
#include "icmp.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * Path 3: a backend answers VIP:snat_port. Only ports of the SNAT range
 * can be ours, so other traffic pays one range compare, not a lookup.
 */
static __always_inline int reply_translate(struct xdp_md *ctx, struct pkt *p,
					   const struct kha_lb_config *cfg)
{
	__u16 dport = bpf_ntohs(p->tcp->dest);
	struct kha_flow_key key = {};
	struct kha_snat *s;
	__u32 tcpf, flags;
	int verdict;
	__u64 now;

	if (dport < cfg->snat_port_lo || dport > cfg->snat_port_hi)
		return KHA_CONTINUE;
	flow_key_of(p, &key);
	s = bpf_map_lookup_elem(&snat, &key);
	/* local-backend entries (dst = client) are the tc program's */
	if (!s || s->vip.v4 != p->iph->daddr)
		return KHA_CONTINUE;
	if (p->bad)
		return drop_bad(p);

	if ((void *)(p->tcp + 1) > p->data_end)
		return XDP_DROP; /* checked by the parser; for the verifier */
	now = coarse_now();
	/* the backend's FIN or RST: recorded once, sets the port's hold */
	flags = s->flags;
	tcpf = tcp_flag_word(p->tcp) & KHA_TCP_CLOSING;
	if (tcpf)
		flags = snat_closing(s, KHA_SNAT_F_BACKEND_FIN, tcpf);
	snat_touch(s, flags, now);
	rewrite_tcp4(p, s->vip.v4, s->client.v4, s->vip_port, s->client_port);
	verdict = forward_client(ctx, p, now);
	if (verdict != XDP_DROP)
		count_packet(p, s->vip_id, s->backend_id, 0);
	return verdict;
}

/* Paths 1+2/4, once the backend is known: rewrite and send. */
static __always_inline int to_backend(struct xdp_md *ctx, struct pkt *p,
				      struct kha_ct *ct, int new_flow)
{
	__u32 tcpf;
	int verdict;

	if ((void *)(p->tcp + 1) > p->data_end)
		return XDP_DROP; /* checked by the parser; for the verifier */
	/* the client's FIN or RST, once: see ct_client_closing() */
	tcpf = tcp_flag_word(p->tcp) & KHA_TCP_CLOSING;
	if (tcpf)
		ct_client_closing(p, ct, tcpf);
	if (!ct->snat_port) {
		/* DNAT only: the local stack answers, tc egress un-NATs */
		rewrite_tcp4(p, p->iph->saddr, ct->backend.v4, p->tcp->source,
			     ct->backend_port);
		count_packet(p, ct->vip_id, ct->backend_id, new_flow);
		kha_count(KHA_R_pass_local_backend);
		return XDP_PASS;
	}
	rewrite_tcp4(p, p->iph->daddr, ct->backend.v4, ct->snat_port,
		     ct->backend_port);
	verdict = forward_backend(ctx, p, ct->backend_id);
	if (verdict != XDP_DROP)
		count_packet(p, ct->vip_id, ct->backend_id, new_flow);
	return verdict;
}

/*
 * An established flow stays on its backend while the backend is configured
 * and healthy, even when drained (weight 0: no longer in the ring). If it
 * is gone, or its id now names another address, the flow is re-selected.
 */
static __always_inline int ct_backend_ok(const struct kha_ct *ct)
{
	struct kha_backend *be;

	be = bpf_map_lookup_elem(&backends, &ct->backend_id);
	return be && backend_usable(be) && be->addr.v4 == ct->backend.v4 &&
	       be->port == ct->backend_port;
}

static __always_inline int established(struct xdp_md *ctx, struct pkt *p,
				       struct kha_ct *ct)
{
	if (!ct_backend_ok(ct))
		return KHA_CONTINUE;
	return to_backend(ctx, p, ct, 0);
}

/*
 * A new flow (or one whose backend left): pick a backend from the Maglev
 * table, claim the NAT state, record the flow, send.
 */
static __always_inline int new_flow(struct xdp_md *ctx, struct pkt *p,
				    const struct kha_lb_config *cfg,
				    const struct kha_vip *vip,
				    struct kha_ct *old, int unlooked)
{
	struct kha_flow_key key = {}, rkey = {};
	struct kha_snat rval = {};
	struct kha_ct ct = {};
	struct kha_backend *be;
	__u32 backend_id = 0;
	int fresh = 1;
	long err;

	if (old) {
		kha_count(KHA_R_reselect);
		snat_release(p, old);
	}
	be = select_backend(cfg, vip->vip_id, p->iph->saddr, &backend_id);
	if (!be) {
		if (old) {
			flow_key_of(p, &key);
			bpf_map_delete_elem(&conntrack, &key);
		}
		if (p->tcp->syn && !p->tcp->ack && !p->tcp->rst)
			return send_rst(ctx, p);
		return drop(KHA_R_drop_no_backend);
	}

	ct.backend = be->addr;
	ct.backend_port = be->port;
	ct.backend_id = backend_id;
	ct.vip_id = vip->vip_id;

	rval.client.v4 = p->iph->saddr;
	rval.vip.v4 = p->iph->daddr;
	rval.client_port = p->tcp->source;
	rval.vip_port = p->tcp->dest;
	rval.vip_id = vip->vip_id;
	rval.backend_id = backend_id;

	rkey.src = be->addr;
	rkey.sport = be->port;
	rkey.proto = IPPROTO_TCP;
	rkey.family = KHA_AF_INET;
	if (be->flags & KHA_BE_F_LOCAL) {
		/* keyed by the local stack's reply, for tc egress */
		rkey.dst.v4 = p->iph->saddr;
		rkey.dport = p->tcp->source;
		if (bpf_map_update_elem(&snat, &rkey, &rval, BPF_ANY))
			return drop(KHA_R_ct_insert_fail);
	} else {
		__u32 hash = kha_fmix32(p->iph->saddr ^
					((__u32)p->tcp->source << 16));

		rkey.dst.v4 = p->iph->daddr;
		if (snat_claim(cfg, &rkey, &rval, hash))
			return drop(KHA_R_drop_snat_exhausted);
		ct.snat_port = rkey.dport;
	}

	/*
	 * A SYN nobody looked up: BPF_NOEXIST is the lookup. A flow that
	 * exists after all keeps its backend and port when it still may,
	 * exactly as established() would have kept it, and gives back what
	 * this packet claimed: a retransmitted SYN. A flow that is closing
	 * or closed (FIN or RST seen) is reopened: the SYN is a new
	 * connection on a reused client port and keeps the fresh claim (a
	 * port other than the old one, whose entry still held it), the old
	 * one is let go (ct_reopen()). A flow whose backend left is
	 * re-selected onto the fresh claim.
	 */
	flow_key_of(p, &key);
	err = bpf_map_update_elem(&conntrack, &key, &ct,
				  unlooked ? BPF_NOEXIST : BPF_ANY);
	if (err && unlooked) {
		struct kha_flow_key okey = {};
		struct kha_snat *os = NULL;
		int closing = 0;

		old = bpf_map_lookup_elem(&conntrack, &key);
		if (old) {
			if (old->snat_port)
				os = snat_owned(p, old, &okey);
			closing = (old->flags & KHA_CT_F_CLOSING) ||
				  (os && os->flags);
		}
		if (old && !closing && ct_backend_ok(old)) {
			/*
			 * a local claim is keyed by the client: on the old
			 * flow's own local backend it is the old flow's entry
			 */
			if (ct.snat_port || old->backend_id != backend_id)
				bpf_map_delete_elem(&snat, &rkey);
			ct = *old;
			fresh = 0;
			err = 0;
		} else {
			if (closing) {
				ct_reopen(p, old, os, &okey, &rkey);
			} else if (old) {
				kha_count(KHA_R_reselect);
				snat_release(p, old);
			}
			err = bpf_map_update_elem(&conntrack, &key, &ct,
						  BPF_ANY);
		}
	}
	if (err) {
		bpf_map_delete_elem(&snat, &rkey);
		return drop(KHA_R_ct_insert_fail);
	}
	return to_backend(ctx, p, &ct, fresh);
}

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	struct kha_flow_key key = {};
	struct kha_vip_key vkey = {};
	struct kha_lb_config *cfg;
	struct kha_vip *vip;
	struct kha_ct *ct;
	struct pkt p;
	__u32 zero = 0;
	int verdict, unlooked = 0;

	/* Ethernet / IPv4 / TCP or ICMP; everything else is the kernel's */
	verdict = parse_packet(ctx, &p);
	if (verdict != KHA_CONTINUE)
		return verdict;
	cfg = bpf_map_lookup_elem(&lb_config, &zero);
	if (!cfg)
		return XDP_PASS;

	/* an ICMP error about one of our flows */
	if (p.icmp)
		return icmp_translate(ctx, &p);
	if (!p.tcp)
		return XDP_PASS; /* cannot happen; the verifier cannot know */

	/* a backend's reply to VIP:snat_port */
	verdict = reply_translate(ctx, &p, cfg);
	if (verdict != KHA_CONTINUE)
		return verdict;

	/*
	 * An established flow keeps its backend (one lookup: the fast path).
	 * A clean SYN skips the lookup: it is nearly always new, and its
	 * conntrack insert (BPF_NOEXIST) finds the rare one that is not.
	 */
	if (!p.bad && (void *)(p.tcp + 1) <= p.data_end && p.tcp->syn &&
	    !p.tcp->ack && !p.tcp->rst)
		unlooked = 1;
	flow_key_of(&p, &key);
	ct = unlooked ? NULL : bpf_map_lookup_elem(&conntrack, &key);
	if (ct) {
		if (p.bad)
			return drop_bad(&p);
		verdict = established(ctx, &p, ct);
		if (verdict != KHA_CONTINUE)
			return verdict;
	}

	/* not for a VIP: SSH, :6443, VRRP... untouched */
	vkey.addr.v4 = p.iph->daddr;
	vkey.port = p.tcp->dest;
	vkey.proto = IPPROTO_TCP;
	vkey.family = KHA_AF_INET;
	vip = bpf_map_lookup_elem(&vips, &vkey);
	if (!vip || !(vip->flags & KHA_VIP_F_ACTIVE))
		return XDP_PASS;
	if (p.bad)
		return drop_bad(&p);

	/* a new flow, or one whose backend is gone */
	return new_flow(ctx, &p, cfg, vip, ct, unlooked);
}
