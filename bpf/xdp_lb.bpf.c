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
 * Is the packet for a VIP? `vips` is a hash map: a helper call, and on
 * this kernel every call and return pays the speculation mitigations
 * (~20 ns, and an outstanding cache miss cannot overlap it). Its answers,
 * found or not, are cached per CPU in a direct-mapped array whose lookups
 * are inlined, tagged with lb_config.vip_gen: user space bumps that after
 * every change of `vips` (user/maps.c), so a stale answer is never used.
 */
#define KHA_VIP_CACHE_SLOTS 64 /* power of two */

struct kha_vip_hit {
	struct kha_vip_key key;
	struct kha_vip vip;
	__u32 gen;
	__u32 found;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KHA_VIP_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct kha_vip_hit);
} vip_cache SEC(".maps");

static __always_inline const struct kha_vip *
vip_lookup(const struct kha_lb_config *cfg, const struct kha_vip_key *k)
{
	__u32 gen = *(volatile const __u32 *)&cfg->vip_gen;
	__u32 idx = kha_fmix32(k->addr.v4 ^ ((__u32)k->port << 16)) &
		    (KHA_VIP_CACHE_SLOTS - 1);
	struct kha_vip_hit *c = bpf_map_lookup_elem(&vip_cache, &idx);
	struct kha_vip *v;

	if (c && c->gen == gen && c->key.addr.v4 == k->addr.v4 &&
	    c->key.port == k->port && c->key.proto == k->proto &&
	    c->key.family == k->family && !c->key.addr.v6[1] &&
	    !c->key.addr.v6[2] && !c->key.addr.v6[3])
		return c->found ? &c->vip : NULL;
	v = bpf_map_lookup_elem(&vips, k);
	if (c) { /* per CPU: no other writer */
		c->key = *k;
		c->gen = gen;
		c->found = v != NULL;
		if (v)
			c->vip = *v;
	}
	return v;
}

/*
 * Path 3: a backend answers VIP:snat_port. Only ports of the SNAT range
 * can be ours, so other traffic pays one range compare, not a lookup.
 */
static __always_inline int reply_translate(struct xdp_md *ctx, struct pkt *p,
					   const struct kha_lb_config *cfg)
{
	__u16 dport = bpf_ntohs(p->tcp->dest);
	struct kha_addr src = {};
	struct kha_snat_slot *s;
	struct kha_backend *be;
	__u32 tcpf, close, nclose, now, idx, id;
	__u64 now_ns;
	int verdict;

	if (dport < cfg->snat_port_lo || dport > cfg->snat_port_hi)
		return KHA_CONTINUE;
	src.v4 = p->iph->saddr;
	s = snat_find(&src, p->tcp->source, p->tcp->dest, NULL, &idx);
	if (!s || s->vip.v4 != p->iph->daddr)
		return KHA_CONTINUE;
	if (p->bad)
		return drop_bad(p);

	if ((void *)(p->tcp + 1) > p->data_end)
		return XDP_DROP; /* checked by the parser; for the verifier */
	now_ns = coarse_now();
	now = flow_ticks(now_ns);
	/* the backend's FIN or RST: recorded once, sets the port's hold */
	close = s->flags & KHA_SNAT_F_CLOSE_MASK;
	tcpf = tcp_flag_word(p->tcp) & KHA_TCP_CLOSING;
	if (tcpf) {
		nclose = snat_closing(s, KHA_SNAT_F_BACKEND_FIN, tcpf);
		if (nclose != close)
			ct_sync_close(s, nclose, now);
		close = nclose;
	}
	stamp_touch(&s->stamp, now, close);
	if (p->tcp->syn && p->tcp->ack) /* the SYN-ACK: see ct_promote_synack() */
		ct_promote_synack(s, idx, now);
	rewrite_tcp4(p, s->vip.v4, s->client.v4, s->vip_port, s->client_port);
	id = s->backend_id;
	verdict = forward_client(ctx, p, now_ns);
	if (verdict != XDP_DROP) {
		be = bpf_map_lookup_elem(&backends, &id);
		if (be)
			count_packet(p, be->vip_id, id, 0);
	}
	return verdict;
}

/*
 * Path 2, once the flow's NAT is known: rewrite client:port -> VIP:vport
 * to VIP:@sport -> @daddr:@dport and send toward backend @backend_id.
 */
static __always_inline int send_remote(struct xdp_md *ctx, struct pkt *p,
				       __be32 daddr, __be16 sport,
				       __be16 dport, __u32 backend_id,
				       __u32 vip_id, int new_flow,
				       __u64 now_ns)
{
	int verdict;

	rewrite_tcp4(p, p->iph->daddr, daddr, sport, dport);
	verdict = forward_cached(ctx, p, bpf_map_lookup_elem(&nh_backend,
							     &backend_id),
				 now_ns);
	if (verdict != XDP_DROP)
		count_packet(p, vip_id, backend_id, new_flow);
	return verdict;
}

/* Paths 1+2/4, once the backend is known: rewrite and send. */
static __always_inline int to_backend(struct xdp_md *ctx, struct pkt *p,
				      struct kha_ct_slot *ct,
				      const struct kha_backend *be,
				      int new_flow, __u64 now_ns)
{
	__u32 tcpf, now = flow_ticks(now_ns);
	struct kha_snat_slot *s;

	if ((void *)(p->tcp + 1) > p->data_end)
		return XDP_DROP; /* checked by the parser; for the verifier */
	/* the client's FIN or RST, once: see ct_client_closing() */
	tcpf = tcp_flag_word(p->tcp) & KHA_TCP_CLOSING;
	if (tcpf)
		ct_client_closing(p, ct, tcpf, now);
	/* for TIME_WAIT reuse (flows.h): the client's FIN always (the
	 * backend's may be on its way on another CPU), and what follows the
	 * backend's */
	if (((tcpf & TCP_FLAG_FIN) || (ct->close & KHA_SNAT_F_BACKEND_FIN)) &&
	    ct->snat_port)
		snat_tw_note(ctx, p, ct);
	stamp_touch(&ct->stamp, now, ct->close);
	if (!ct->snat_port) {
		/* the local entry lives as long as the flow: tc reads it */
		s = snat_owned(p, ct);
		if (s)
			stamp_touch(&s->stamp, now, ct->close);
		/* DNAT only: the local stack answers, tc egress un-NATs */
		rewrite_tcp4(p, p->iph->saddr, be->addr.v4, p->tcp->source,
			     ct->backend_port);
		count_packet(p, ct->vip_id, ct->backend_id, new_flow);
		kha_count(KHA_R_pass_local_backend);
		return XDP_PASS;
	}
	return send_remote(ctx, p, be->addr.v4, ct->snat_port,
			   ct->backend_port, ct->backend_id, ct->vip_id,
			   new_flow, now_ns);
}

/*
 * A new flow (or one whose backend left): pick a backend from the Maglev
 * table, claim the NAT state, record the flow, send. @old: the flow's
 * conntrack slot when its backend left (re-selected in place), else NULL.
 * @syn: a clean SYN, whose flow is recorded in ct_syn (its `snat` slot
 * and an entry that finds it) rather than conntrack, until the handshake
 * is through (headers/kha_abi.h, "ct_syn"); syn_scratch then holds the
 * state the packet is sent by.
 */
static __always_inline int new_flow(struct xdp_md *ctx, struct pkt *p,
				    const struct kha_lb_config *cfg,
				    const struct kha_vip *vip,
				    struct kha_ct_slot *old, int syn)
{
	struct syn_scratch *sc = NULL;
	struct kha_ct_slot *tmp = NULL;
	struct kha_flow_key key = {};
	struct kha_snat_slot *s, *os = NULL;
	struct kha_backend *be;
	struct kha_ct_slot *ct = old;
	__u32 backend_id = 0, now, idx, sidx, home = 0, shome = 0;
	__u32 osidx = 0, soff = 0, nidx = KHA_CT_SYN_SLOTS;
	__u64 now_ns, ne = 0, nold = 0;
	int existing = 0, reopen = 0, moved = 0;

	if (old) {
		kha_count(KHA_R_reselect);
		snat_release(p, old);
	}
	/* the misses at once: see flow_touch() */
	if (!ct) {
		flow_key_of(p, &key);
		home = kha_ct_home(&key);
		if (syn)
			ct_syn_touch(home);
		else
			flow_touch(&conntrack, home);
	}
	be = select_backend(cfg, vip->vip_id, p->iph->saddr, &backend_id);
	if (!be) {
		if (old)
			old->stamp = 0;
		if (p->tcp->syn && !p->tcp->ack && !p->tcp->rst)
			return send_rst(ctx, p);
		return drop(KHA_R_drop_no_backend);
	}
	if (!(be->flags & KHA_BE_F_LOCAL)) {
		/* the first SNAT candidate: the next port of this CPU's walk */
		soff = snat_walk_at(snat_range_of(cfg), backend_id);
		shome = snat_base_of(be, backend_id) +
			kha_port_num(snat_port_at(snat_range_of(cfg), soff));
		flow_touch(&snat, shome);
	}
	now_ns = coarse_now();
	now = flow_ticks(now_ns);

	/*
	 * The forward state first. A SYN nobody looked up learns here whether
	 * its flow exists: a flow that does keeps its backend and port when
	 * it still may, exactly as established() would have kept it (a
	 * retransmitted SYN). A flow that is closing, closed or expired is
	 * reopened: the SYN is a new connection on a reused client port and
	 * gets a fresh port, the old one is let go (ct_reopen()). A flow
	 * whose backend left is re-selected. A SYN looks in ct_syn only: a
	 * flow already in conntrack is let go when the new one moves there
	 * (ct_move()).
	 */
	sc = syn_scratch_get();
	if (!sc) {
		if (old)
			old->stamp = 0;
		return drop(KHA_R_ct_insert_fail);
	}
	/* a late SYN of a flow moved to conntrack takes the conntrack path */
	if (!ct && syn) {
		syn_search_of(&sc->q, p->iph->saddr, p->tcp->source,
			      p->iph->daddr, p->tcp->dest, home, now);
		if (kha_ct_syn_search(&sc->q))
			os = syn_found_snat(&sc->q);
		moved = os && kha_ct_syn_moved(sc->q.e);
	}
	if (!ct && syn && !moved) {
		nidx = sc->q.cand;
		nold = sc->q.cand_old;
		if (os) {
			struct kha_backend *obe;

			ne = sc->q.e;
			idx = sc->q.idx;
			osidx = kha_ct_syn_sidx(ne);
			obe = ct_backend(syn_state_of(sc, os));
			reopen = (os->flags & KHA_SNAT_F_CLOSE_MASK) ||
				 !kha_ct_syn_live(kha_ct_syn_stamp(ne), now);
			if (!reopen && obe) {
				/* its entry lives on from this SYN */
				ct_syn_set(idx, ne, kha_ct_syn_entry(
					now, kha_ct_syn_tag(home), osidx));
				return to_backend(ctx, p, &sc->ct, obe, 0,
						  now_ns);
			}
			if (!reopen)
				kha_count(KHA_R_reselect);
			nidx = idx; /* the flow starts over in its entry */
			nold = ne;
		}
		if (nidx < KHA_CT_SYN_SLOTS)
			ct = tmp = &sc->ct;
		else
			kha_count(KHA_R_ct_syn_full);
	}
	if (moved)
		os = NULL;
	if (!ct) {
		ct = ct_claim(&key, home, now, &idx, &existing);
		if (!ct)
			return drop(KHA_R_ct_insert_fail);
		if (existing) {
			struct kha_backend *obe = ct_backend(ct);

			os = snat_owned(p, ct);
			osidx = ct->snat_slot;
			reopen = (ct->flags & KHA_CT_F_CLOSING) ||
				 (os && (os->flags & KHA_SNAT_F_CLOSE_MASK)) ||
				 !stamp_live(ct->stamp, now);
			if (!reopen && obe)
				return to_backend(ctx, p, ct, obe, 0, now_ns);
			if (!reopen)
				kha_count(KHA_R_reselect);
			ct->stamp = now;
		}
	}

	/* the reverse slot: a SNAT port, or the local stack's reply key */
	sc->op.f.client = p->iph->saddr;
	sc->op.f.vip = p->iph->daddr;
	sc->op.f.cport = p->tcp->source;
	sc->op.f.vport = p->tcp->dest;
	sc->op.backend_id = backend_id;
	sc->op.now = now;
	sc->op.soff = soff;
	sc->op.shome = shome;
	/* the SYN's TCP options, read only for a port a live flow holds */
	tcp_opts_at(p, &sc->op.opt_off, &sc->op.opt_len);
	if (kha_snat_open(ctx, &sc->op)) {
		ct->stamp = 0;
		return drop(sc->op.why);
	}
	sidx = sc->op.sidx;
	s = bpf_map_lookup_elem(&snat, &sidx);
	if (!s) {
		ct->stamp = 0;
		return drop(KHA_R_ct_insert_fail);
	}
	/*
	 * The old flow's port is let go only now, so a reopened flow never
	 * draws the port its previous connection just used.
	 */
	if (os && os != s) {
		if (reopen)
			ct_reopen(os, osidx, now);
		else
			os->stamp = 0;
	}
	if (ct == tmp &&
	    ct_syn_set(nidx, nold,
		       kha_ct_syn_entry(now, kha_ct_syn_tag(home), sidx))) {
		/* another CPU took the entry this instant (two SYNs of one
		 * line at once): let go, the client sends the SYN again */
		s->stamp = 0;
		return drop(KHA_R_ct_insert_fail);
	}
	/* a SYN to a remote backend is sent by its fresh `snat` slot: no
	 * conntrack slot to fill for to_backend() to read (a clean SYN has no
	 * RST; one with FIN takes to_backend()) */
	if (ct == tmp && !(s->flags & KHA_SNAT_F_LOCAL) && !p->tcp->fin)
		return send_remote(ctx, p, be->addr.v4, s->port, be->port,
				   backend_id, vip->vip_id, 1, now_ns);
	ct_fill_from_snat(ct, s, sidx, vip->vip_id);
	if (ct != tmp)
		ct_syn_note_moved(&ct->key, kha_ct_home(&ct->key), sidx, now);
	return to_backend(ctx, p, ct, be, 1, now_ns);
}

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	struct kha_vip_key vkey = {};
	struct kha_lb_config *cfg;
	struct kha_ct_slot *ct = NULL;
	struct kha_backend *be;
	const struct kha_vip *vip;
	struct pkt p;
	__u32 zero = 0, idx;
	int verdict, syn;
	__u64 now_ns;

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

	/*
	 * Everything but a clean SYN (SYN, no ACK, no RST) may be a backend's
	 * reply to VIP:snat_port, then a packet of an established flow. A
	 * clean SYN is neither: it opens a connection, nearly always a new
	 * one (its claim, ct_claim(), finds the rare one that is not), and
	 * when a VIP's port lies inside the SNAT range (say --snat-ports
	 * 1024-65535) a reply lookup would cost every new flow a `snat` cache
	 * miss. An established flow keeps its backend (one slot read: the
	 * fast path) while the backend is configured and healthy, even when
	 * drained (weight 0: no longer in the ring); if it is gone the flow
	 * is re-selected.
	 */
	syn = !p.bad && (void *)(p.tcp + 1) <= p.data_end && p.tcp->syn &&
	      !p.tcp->ack && !p.tcp->rst;
	if (!syn) {
		verdict = reply_translate(ctx, &p, cfg);
		if (verdict != KHA_CONTINUE)
			return verdict;
		ct = ct_find_pkt(&p, &idx);
	}
	if (ct) {
		if (p.bad)
			return drop_bad(&p);
		now_ns = coarse_now();
		/*
		 * A closing, closed or expired flow: a SYN may have reopened
		 * its 4-tuple since, whose flow is in ct_syn until this, the
		 * client's next packet, moves it here (ct_promote()).
		 */
		be = NULL;
		if (!ct->close && !(ct->flags & KHA_CT_F_CLOSING) &&
		    stamp_live(ct->stamp, flow_ticks(now_ns)))
			be = ct_backend(ct);
		if (!be) { /* also a flow whose backend left */
			struct kha_ct_slot *n = ct_promote(&p,
							   flow_ticks(now_ns));

			if (n)
				ct = n;
			be = ct_backend(ct);
		}
		if (be)
			return to_backend(ctx, &p, ct, be, 0, now_ns);
	}

	/* not for a VIP: SSH, :6443, VRRP... untouched */
	vkey.addr.v4 = p.iph->daddr;
	vkey.port = p.tcp->dest;
	vkey.proto = IPPROTO_TCP;
	vkey.family = KHA_AF_INET;
	vip = vip_lookup(cfg, &vkey);
	if (!vip || !(vip->flags & KHA_VIP_F_ACTIVE))
		return XDP_PASS;
	if (p.bad)
		return drop_bad(&p);

	/* the client's first packet after its SYN: the flow is in ct_syn */
	if (!ct && !syn) {
		now_ns = coarse_now();
		ct = ct_promote(&p, flow_ticks(now_ns));
		if (ct) {
			be = ct_backend(ct);
			if (be)
				return to_backend(ctx, &p, ct, be, 0, now_ns);
		}
	}

	/* a new flow, or one whose backend is gone */
	return new_flow(ctx, &p, cfg, vip, ct, syn);
}
