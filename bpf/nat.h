/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Backend selection, NAT state and header rewriting for the XDP load
 * balancer. Helpers return an XDP verdict, or KHA_CONTINUE when the caller
 * should go on with the packet's story.
 */
#ifndef KHA_BPF_NAT_H
#define KHA_BPF_NAT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "kha_abi.h"
#include "kha_hash.h"
#include "maps.h"
#include "csum.h"
#include "parse.h"
#include "flows.h"

#define KHA_BE_USABLE (KHA_BE_F_PRESENT | KHA_BE_F_HEALTHY)

/* ---- time ------------------------------------------------------------ */

/*
 * CLOCK_MONOTONIC, coarse. bpf_ktime_get_coarse_ns() is a helper call on
 * the fast path, but its value only moves when jiffies does (both advance
 * at the tick), and bpf_jiffies64() is inlined into a single load: so the
 * coarse time is kept per CPU and re-read once per jiffy.
 */
struct kha_clock {
	__u64 jiffies;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kha_clock);
} clock_cache SEC(".maps");

static __always_inline __u64 coarse_now(void)
{
	__u64 j = bpf_jiffies64();
	struct kha_clock *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&clock_cache, &zero);
	if (!c)
		return bpf_ktime_get_coarse_ns();
	if (c->jiffies != j) {
		c->jiffies = j;
		c->ns = bpf_ktime_get_coarse_ns();
	}
	return c->ns;
}

/* ---- counters ----------------------------------------------------- */

static __always_inline void count_packet(const struct pkt *p, __u32 vip_id,
					 __u32 backend_id, int new_flow)
{
	struct kha_counters *c;

	c = bpf_map_lookup_elem(&vip_stats, &vip_id);
	if (c) {
		c->packets++;
		c->bytes += p->frame_len;
		c->new_flows += new_flow;
	}
	c = bpf_map_lookup_elem(&backend_stats, &backend_id);
	if (c) {
		c->packets++;
		c->bytes += p->frame_len;
		c->new_flows += new_flow;
	}
}

static __always_inline int drop(enum kha_reason why)
{
	kha_count(why);
	return XDP_DROP;
}

/* A packet that belongs to a VIP flow but cannot be translated whole. */
static __always_inline int drop_bad(const struct pkt *p)
{
	return drop(p->bad == KHA_BAD_FRAGMENT ? KHA_R_drop_fragment :
						 KHA_R_drop_bad_tcp);
}

/* ---- selection ---------------------------------------------------- */

static __always_inline int backend_usable(const struct kha_backend *be)
{
	return (be->flags & KHA_BE_USABLE) == KHA_BE_USABLE;
}

/* The backend a flow names, if it may still carry the flow. */
static __always_inline struct kha_backend *
ct_backend(const struct kha_ct_slot *ct)
{
	__u32 id = ct->backend_id;
	struct kha_backend *be;

	be = bpf_map_lookup_elem(&backends, &id);
	if (!be || !backend_usable(be) || be->port != ct->backend_port ||
	    kha_addr_tag(&be->addr) != ct->be_tag || be->family != KHA_AF_INET)
		return NULL;
	return be;
}

/*
 * Maglev: the slot is a hash of the client address only, in the VIP's
 * currently published generation. Returns the backend or NULL when the
 * table is empty (or names a backend that is no longer usable: the daemon
 * is between clearing its flags and publishing the rebuilt table).
 */
static __always_inline struct kha_backend *
select_backend(const struct kha_lb_config *cfg, __u32 vip_id, __be32 client,
	       __u32 *backend_id)
{
	struct kha_addr addr = {};
	struct kha_vip_state *st;
	struct kha_backend *be;
	__u32 ring_size = cfg->ring_size;
	__u32 idx, id;

	if (!ring_size || ring_size > KHA_RING_SIZE_MAX)
		return NULL;
	st = bpf_map_lookup_elem(&vip_state, &vip_id);
	if (!st)
		return NULL;
	addr.v4 = client;
	idx = kha_ring_index(vip_id, st->active_gen & 1,
			     kha_slot_of(&addr, ring_size), ring_size);
	id = kha_ring_get(idx);
	if (id == KHA_RING_NONE)
		return NULL;
	*backend_id = id;
	be = bpf_map_lookup_elem(&backends, &id);
	if (!be || !backend_usable(be) || be->family != KHA_AF_INET)
		return NULL;
	return be;
}

/* ---- rewriting ---------------------------------------------------- */

/*
 * Rewrite the 4-tuple of an IPv4/TCP packet whose TCP header was checked
 * whole (pkt.bad == KHA_BAD_NONE); both checksums are patched from the
 * accumulated delta, so options and payload length never matter.
 */
static __always_inline void rewrite_tcp4(struct pkt *p, __be32 saddr,
					 __be32 daddr, __be16 sport,
					 __be16 dport)
{
	struct iphdr *iph = p->iph;
	struct tcphdr *tcp = p->tcp;
	__u32 d_ip = 0, d_tcp;

	if ((void *)(tcp + 1) > p->data_end)
		return; /* checked by the parser; this reassures the verifier */
	d_ip = csum_delta32(d_ip, iph->saddr, saddr);
	d_ip = csum_delta32(d_ip, iph->daddr, daddr);
	d_tcp = csum_delta16(d_ip, tcp->source, sport);
	d_tcp = csum_delta16(d_tcp, tcp->dest, dport);
	iph->saddr = saddr;
	iph->daddr = daddr;
	tcp->source = sport;
	tcp->dest = dport;
	csum_apply(&iph->check, d_ip);
	csum_apply(&tcp->check, d_tcp);
}

/* ---- sending ------------------------------------------------------ */

/*
 * Route the (already translated) packet: MACs from the kernel's FIB and
 * neighbour tables, out the same interface (XDP_TX) or another one
 * (XDP_REDIRECT). An unresolved neighbour is the kernel's job: the packet
 * is passed up translated and forwarded by the IP stack, which resolves the
 * neighbour (needs net.ipv4.conf.<if>.forwarding=1 and accept_local=1, see
 * docs/datapath.md). The FIB also requires forwarding on the ingress
 * interface; without it every lookup fails (counted in drop_fib).
 *
 * bpf_fib_lookup() costs as much as the rest of the fast path together, so
 * its answers are cached for KHA_NH_CACHE_NS, per CPU, in two arrays whose
 * lookups the verifier inlines: by backend id toward backends, and toward
 * clients direct-mapped by a hash of the address (a collision only costs a
 * FIB lookup). A route or neighbour change therefore takes effect within
 * that time. Failures are never cached.
 */
#ifndef KHA_NH_CACHE_NS
#define KHA_NH_CACHE_NS 1000000000ull
#endif
#ifndef KHA_NH_CLIENT_SLOTS
#define KHA_NH_CLIENT_SLOTS 4096 /* power of two */
#endif

struct kha_nh {
	__u64 expires;    /* bpf_ktime_get_coarse_ns() */
	__be32 daddr;     /* what it was resolved for */
	__u32 ifindex_in; /* ... arriving on */
	__u32 ifindex_out;
	__u16 max_len;    /* largest tot_len the route's MTU took */
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u8 pad[2];
};

/* XDP-private, not pinned: a cache is rebuilt in a second */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KHA_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct kha_nh);
} nh_backend SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KHA_NH_CLIENT_SLOTS);
	__type(key, __u32);
	__type(value, struct kha_nh);
} nh_client SEC(".maps");

/* Ask the FIB. KHA_CONTINUE with @nh filled, or the verdict. */
static __always_inline int nh_resolve(struct xdp_md *ctx, struct pkt *p,
				      struct kha_nh *nh, __u64 now)
{
	struct bpf_fib_lookup fib = {};
	struct iphdr *iph = p->iph;
	long rc;

	fib.family = KHA_AF_INET;
	fib.l4_protocol = iph->protocol; /* ports: no port-based rules */
	fib.tot_len = bpf_ntohs(iph->tot_len);
	fib.tos = iph->tos;
	fib.ipv4_src = iph->saddr;
	fib.ipv4_dst = iph->daddr;
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		nh->expires = now + KHA_NH_CACHE_NS;
		nh->daddr = iph->daddr;
		nh->ifindex_in = ctx->ingress_ifindex;
		nh->ifindex_out = fib.ifindex;
		nh->max_len = bpf_ntohs(iph->tot_len);
		__builtin_memcpy(nh->dmac, fib.dmac, ETH_ALEN);
		__builtin_memcpy(nh->smac, fib.smac, ETH_ALEN);
		return KHA_CONTINUE;
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		kha_count(KHA_R_pass_no_neigh);
		return XDP_PASS;
	}
	/* blackhole, unreachable, prohibit, forwarding off, MTU too small */
	return drop(KHA_R_drop_fib);
}

static __always_inline int nh_fresh(const struct kha_nh *nh,
				    const struct pkt *p, __u32 ifindex_in,
				    __u64 now)
{
	return nh->daddr == p->iph->daddr && nh->ifindex_in == ifindex_in &&
	       bpf_ntohs(p->iph->tot_len) <= nh->max_len && now < nh->expires;
}

static __always_inline int nh_send(struct pkt *p, const struct kha_nh *nh)
{
	__builtin_memcpy(p->eth->h_dest, nh->dmac, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, nh->smac, ETH_ALEN);
	if (nh->ifindex_out == nh->ifindex_in)
		return XDP_TX;
	return bpf_redirect(nh->ifindex_out, 0);
}

/* Uncached, for the rare packets (ICMP errors). */
static __always_inline int fib_forward(struct xdp_md *ctx, struct pkt *p)
{
	struct kha_nh nh = {};
	int verdict = nh_resolve(ctx, p, &nh, 0);

	if (verdict != KHA_CONTINUE)
		return verdict;
	return nh_send(p, &nh);
}

/* Send by this CPU's cached next hop in @slot, refreshing it if stale. */
static __always_inline int forward_cached(struct xdp_md *ctx, struct pkt *p,
					  struct kha_nh *slot, __u64 now)
{
	struct kha_nh nh = {};
	int verdict;

	if (slot && nh_fresh(slot, p, ctx->ingress_ifindex, now))
		return nh_send(p, slot);
	verdict = nh_resolve(ctx, p, &nh, now);
	if (verdict != KHA_CONTINUE)
		return verdict;
	if (slot)
		*slot = nh; /* per CPU: no other writer */
	return nh_send(p, &nh);
}

/* Toward a client (replies); @now from coarse_now(). */
static __always_inline int forward_client(struct xdp_md *ctx, struct pkt *p,
					  __u64 now)
{
	__u32 idx = kha_fmix32(p->iph->daddr) & (KHA_NH_CLIENT_SLOTS - 1);

	return forward_cached(ctx, p, bpf_map_lookup_elem(&nh_client, &idx),
			      now);
}

/*
 * Empty table: refuse a SYN at once, like a host with no listener would
 * (RFC 9293 3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>), so the
 * client fails fast instead of retrying into a black hole. The reply is
 * built in place with a 20-byte IP header (the SYN's IP options are not
 * echoed) and no TCP options, then the frame is trimmed.
 */
static __always_inline int send_rst(struct xdp_md *ctx, struct pkt *p)
{
	struct iphdr *iph = p->iph;
	struct tcphdr *tcp = p->tcp;
	struct ethhdr *eth = p->eth;
	__u8 mac[ETH_ALEN];
	__be32 saddr, daddr;
	__be16 sport, dport;
	__u32 ack, sum;
	int delta;

	if ((void *)(tcp + 1) > p->data_end)
		return XDP_DROP;
	saddr = iph->saddr;
	daddr = iph->daddr;
	sport = tcp->source;
	dport = tcp->dest;
	/* SYN and FIN each take one sequence number */
	ack = bpf_ntohl(tcp->seq) + (p->l4_len - tcp->doff * 4) + 1 + tcp->fin;

	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);

	iph->ihl = 5;
	iph->tos = 0;
	iph->tot_len = bpf_htons(sizeof(*iph) + sizeof(*tcp));
	iph->id = 0;
	iph->frag_off = bpf_htons(0x4000); /* DF */
	iph->ttl = 64;
	iph->protocol = IPPROTO_TCP;
	iph->check = 0;
	iph->saddr = daddr;
	iph->daddr = saddr;
	iph->check = csum_fold(csum_words((__u16 *)iph, sizeof(*iph) / 2, 0));

	tcp = (void *)(iph + 1);
	if ((void *)(tcp + 1) > p->data_end)
		return XDP_DROP; /* cannot happen: the SYN was this long */
	__builtin_memset(tcp, 0, sizeof(*tcp));
	tcp->source = dport;
	tcp->dest = sport;
	tcp->ack_seq = bpf_htonl(ack);
	tcp->doff = 5;
	tcp->rst = 1;
	tcp->ack = 1;
	sum = csum_add(csum_add(0, daddr), saddr);
	sum = csum_add(sum, bpf_htons(IPPROTO_TCP));
	sum = csum_add(sum, bpf_htons(sizeof(*tcp)));
	tcp->check = csum_fold(csum_words((__u16 *)tcp, sizeof(*tcp) / 2, sum));

	delta = (int)(sizeof(*eth) + sizeof(*iph) + sizeof(*tcp)) -
		(int)p->frame_len;
	if (delta && bpf_xdp_adjust_tail(ctx, delta))
		return XDP_DROP;
	kha_count(KHA_R_rst_no_backend);
	return XDP_TX;
}

/* ---- NAT state ---------------------------------------------------- */

/*
 * Closing. A FIN or RST is recorded once per side and kind in the flow's
 * `snat` slot (flags, mirrored into its conntrack slot's `close`), which
 * then sets how long the flow's slots and SNAT port are held after its
 * last packet: the stamp is written KHA_SNAT_IDLE_TICKS - hold ticks in
 * the past, so one compare in bpf/flows.h decides.
 *   open, or closed one way only   KHA_SNAT_IDLE_TICKS (a packet refreshes)
 *   reset by either side           KHA_SNAT_RST_TICKS  (nobody waits)
 *   FIN both ways, client's first  KHA_SNAT_CLOSE_TICKS (TIME_WAIT on the
 *                                  client; the backend wants its last ACK)
 *   FIN both ways, backend's first KHA_SNAT_TW_TICKS   (TIME_WAIT on the
 *                                  backend, for exactly VIP:port)
 * Both sides' FINs may be recorded on two CPUs at once: the flags are
 * ORed in atomically (snat_flags_or()), so neither is lost. snat_hold()
 * is in bpf/flows.h, whose TIME_WAIT reuse needs it too.
 */
#define KHA_TCP_CLOSING (TCP_FLAG_FIN | TCP_FLAG_RST) /* tcp_flag_word() */

/* The stamp of a flow last seen @now in close state @close. */
static __always_inline __u32 hold_stamp(__u32 now, __u32 close)
{
	close &= KHA_SNAT_F_CLOSE_MASK;
	if (!close)
		return now;
	return now - (KHA_SNAT_IDLE_TICKS - snat_hold(close));
}

/*
 * OR @add into s->flags atomically, returning the flags before. The two
 * sides' FINs of one flow arrive microseconds apart and may be handled on
 * two CPUs: a plain read-modify-write could lose one of them, and the flow
 * would keep the idle hold (~2 min) instead of its close hold. BPF atomics
 * are 32- or 64-bit: the OR goes to the word that holds `flags` (with
 * `chain` and `backend_id`, which an OR of zero bits leaves alone).
 */
#define KHA_SNAT_FLAGS_WORD 4 /* offsetof(struct kha_snat_slot, chain) */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define KHA_SNAT_FLAGS_SHIFT 8  /* flags is the word's second byte */
#else
#define KHA_SNAT_FLAGS_SHIFT 16
#endif
_Static_assert(__builtin_offsetof(struct kha_snat_slot, flags) ==
		       KHA_SNAT_FLAGS_WORD + 1,
	       "snat flags: second byte of the word after the stamp");

static __always_inline __u32 snat_flags_or(struct kha_snat_slot *s, __u32 add)
{
	__u32 *w = (__u32 *)((__u8 *)s + KHA_SNAT_FLAGS_WORD);

	return (__sync_fetch_and_or(w, add << KHA_SNAT_FLAGS_SHIFT) >>
		KHA_SNAT_FLAGS_SHIFT) & 0xff;
}

/* @fin: KHA_SNAT_F_CLIENT_FIN or _BACKEND_FIN; @tcpf: FIN/RST bits */
static __always_inline __u32 snat_closing(struct kha_snat_slot *s, __u32 fin,
					  __u32 tcpf)
{
	__u32 f = s->flags, add = 0;

	if (tcpf & TCP_FLAG_RST)
		add |= KHA_SNAT_F_RST;
	if (tcpf & TCP_FLAG_FIN)
		add |= fin;
	if ((f & add) == add) /* once, not on every retransmission */
		return f & KHA_SNAT_F_CLOSE_MASK;
	f = snat_flags_or(s, add) | add;
	/* the backend's FIN first: no client FIN before ours went in */
	if ((add & KHA_SNAT_F_BACKEND_FIN) && !(f & KHA_SNAT_F_CLIENT_FIN) &&
	    !(f & KHA_SNAT_F_BACKEND_FIRST))
		f |= snat_flags_or(s, KHA_SNAT_F_BACKEND_FIRST) |
		     KHA_SNAT_F_BACKEND_FIRST;
	return f & KHA_SNAT_F_CLOSE_MASK;
}

/* One write a tick, not one a packet. */
static __always_inline void stamp_touch(__u32 *stamp, __u32 now, __u32 close)
{
	__u32 st = hold_stamp(now, close);

	if (*stamp != st)
		*stamp = st;
}

/* The flow's `snat` slot, if it still is the flow's. */
static __always_inline struct kha_snat_slot *
snat_owned_by(const struct kha_ct_slot *ct, __be32 client, __be16 cport)
{
	struct kha_snat_slot *s;
	__u32 idx = ct->snat_slot;

	s = bpf_map_lookup_elem(&snat, &idx);
	if (!s || !s->stamp || s->backend_id != ct->backend_id ||
	    s->client.v4 != client || s->client_port != cport)
		return NULL;
	if (ct->snat_port ? s->port != ct->snat_port :
			    !(s->flags & KHA_SNAT_F_LOCAL))
		return NULL;
	return s;
}

/* The flow's `snat` slot, if it still is the flow's: @p is the client's. */
static __always_inline struct kha_snat_slot *
snat_owned(const struct pkt *p, const struct kha_ct_slot *ct)
{
	return snat_owned_by(ct, p->iph->saddr, p->tcp->source);
}

/* The 5-tuple of the client flow a `snat` slot names (@key zeroed). */
static __always_inline void flow_key_of_snat(const struct kha_snat_slot *s,
					     struct kha_flow_key *key)
{
	key->src = s->client;
	key->dst = s->vip;
	key->sport = s->client_port;
	key->dport = s->vip_port;
	key->proto = IPPROTO_TCP;
	key->family = KHA_AF_INET;
}

/* The conntrack slot of the client flow a `snat` slot names, or NULL. */
static __always_inline struct kha_ct_slot *
ct_of_snat(const struct kha_snat_slot *s, __u32 *idx)
{
	struct kha_flow_key key = {};

	flow_key_of_snat(s, &key);
	return ct_find(&key, idx);
}

/*
 * The backend closed or reset (@close, newly recorded in @s): the flow's
 * conntrack slot takes the same hold, so a closed flow frees both tables.
 */
static __always_inline void ct_sync_close(const struct kha_snat_slot *s,
					  __u32 close, __u32 now)
{
	struct kha_ct_slot *ct;
	__u32 idx;

	ct = ct_of_snat(s, &idx);
	if (ct && ct->snat_port == s->port && ct->backend_id == s->backend_id) {
		ct->close = close;
		stamp_touch(&ct->stamp, now, close);
	}
}

/*
 * The client sent FIN or RST (@tcpf), not yet recorded: mark the flow
 * (a later SYN on this 4-tuple is a new connection) and its entry.
 */
static __always_inline void ct_client_closing(const struct pkt *p,
					      struct kha_ct_slot *ct,
					      __u32 tcpf, __u32 now)
{
	struct kha_snat_slot *s;
	__u32 add = 0, close;

	if (tcpf & TCP_FLAG_FIN)
		add |= KHA_CT_F_CLIENT_FIN;
	if (tcpf & TCP_FLAG_RST)
		add |= KHA_CT_F_CLIENT_RST;
	if ((ct->flags & add) == add)
		return;
	ct->flags |= add;
	s = snat_owned(p, ct);
	if (s) {
		close = snat_closing(s, KHA_SNAT_F_CLIENT_FIN, tcpf);
		stamp_touch(&s->stamp, now, close);
	} else {
		close = tcpf & TCP_FLAG_RST ? KHA_SNAT_F_RST : 0;
	}
	ct->close = close;
}

/* Free the reverse entry a flow owns (a re-selected or failed flow). */
static __always_inline void snat_release(const struct pkt *p,
					 const struct kha_ct_slot *ct)
{
	struct kha_snat_slot *s = snat_owned(p, ct);

	if (s)
		s->stamp = 0;
}

/* A new flow's 4-tuple, as its `snat` slot will name it. */
struct flow4 {
	__be32 client, vip;
	__be16 cport, vport;
};

/*
 * snat_take() gave a new flow (@f) a slot that held a dead flow, or one in
 * the backend's TIME_WAIT (@s still has its fields, @idx is the slot, @ost
 * its stamp): that flow's conntrack slot goes, so a late packet of it is a
 * new flow (the backend answers it with a reset) rather than one sent with
 * a port another flow now owns.
 */
static __always_inline void snat_reclaimed(const struct flow4 *f,
					   const struct kha_snat_slot *s,
					   __u32 idx, __u32 ost, __u32 now)
{
	struct kha_ct_slot *ct;
	__u32 cidx;

	kha_count(stamp_live(ost, now) ? KHA_R_snat_tw_reuse :
					 KHA_R_snat_reclaimed);
	if (s->flags & KHA_SNAT_F_LOCAL)
		return;
	/* the old flow is this SYN's own 4-tuple, reopened (ct_reopen()):
	 * its conntrack slot is the one being rewritten now */
	if (kha_snat_of_flow(s, f->client, f->cport, f->vip, f->vport))
		return;
	ct = ct_of_snat(s, &cidx);
	if (ct && ct->snat_slot == idx && ct->snat_port)
		ct->stamp = 0;
}

/*
 * A client packet of a flow whose backend has sent its FIN: note the
 * newest TCP timestamp the client sent (struct kha_snat_tw), which the
 * backend's TIME_WAIT will hold. Only closing flows pay for the option
 * scan.
 */
static __always_inline void snat_tw_note(struct xdp_md *ctx,
					 const struct pkt *p,
					 const struct kha_ct_slot *ct)
{
	__u32 idx = ct->snat_slot, ts = 0;
	struct kha_snat_tw *r = bpf_map_lookup_elem(&snat_tw, &idx);
	int has = tcp_tsval(ctx, p, &ts);

	if (!r || !p->tcp || (void *)(p->tcp + 1) > p->data_end)
		return;
	if (r->client == p->iph->saddr && r->client_port == p->tcp->source &&
	    r->port == ct->snat_port) {
		/* this flow's record: keep the newest timestamp */
		if (has && (!r->valid || (__s32)(ts - r->tsval) > 0)) {
			r->tsval = ts;
			r->valid = 1;
		}
		return;
	}
	r->client = p->iph->saddr;
	r->client_port = p->tcp->source;
	r->port = ct->snat_port;
	r->tsval = ts;
	r->valid = has;
}

/*
 * Claim a source port for VIP -> backend. A port is the key of a `snat`
 * slot, claimed by compare-and-swap, so two flows never share one
 * (backend, port) even when claimed on two CPUs at once.
 *
 * Ports are handed out in order, per CPU and backend (`snat_cursor`): a
 * backend's ports have consecutive slots (kha_snat_home()), so each claim
 * takes the line after the previous claim's, which the CPU has prefetched,
 * where a random port's slot is a miss to DRAM that cost a new flow
 * ~180 ns (docs/benchmarks.md). In order is also what keeps a port longest
 * from its reuse: a port comes round again only after the rest of the
 * CPU's walk, so a backend's TIME_WAIT for it has had the longest time to
 * pass. The first KHA_SNAT_SEQ_TRIES candidates are the next ports of the
 * walk (one held by a live flow is passed); the rest are random, so a
 * range whose next stretch is all taken still finds a free port if there
 * is one about.
 *
 * A port whose flow has expired is taken over; *old then says the slot
 * held a dead flow (the caller calls snat_reclaimed() once it has written
 * nothing yet: outside the retry loop, which keeps the verifier's work
 * linear). NULL: exhausted.
 */
struct snat_range {
	__u32 lo, span;
};

static __always_inline struct snat_range snat_range_of(
	const struct kha_lb_config *cfg)
{
	__u32 lo = cfg->snat_port_lo, hi = cfg->snat_port_hi;

	if (!lo || hi < lo) {
		lo = KHA_SNAT_PORT_LO_DEFAULT;
		hi = KHA_SNAT_PORT_HI_DEFAULT;
	}
	return (struct snat_range){ lo, hi - lo + 1 };
}

/* a random port of the range: r * span / 2^32, no division */
static __always_inline __u32 snat_random_off(struct snat_range r, __u32 rnd)
{
	return (__u32)(((__u64)rnd * r.span) >> 32);
}

/*
 * Where this CPU's walk for @backend_id stands (*cur: its cursor, NULL if
 * the map has none): an offset into the range. A walk not started begins
 * at a point the CPU and backend name, so the CPUs' walks start apart.
 */
static __always_inline __u32 snat_walk_at(struct snat_range r,
					  __u32 backend_id)
{
	__u32 *c = bpf_map_lookup_elem(&snat_cursor, &backend_id);

	if (c && *c && *c <= r.span)
		return *c - 1;
	return snat_random_off(r, kha_fmix32(bpf_get_smp_processor_id() *
					     0x9e3779b1u + backend_id + 1));
}

/*
 * kha_snat_base() of a backend, cached per CPU by backend id: the hash
 * sits between the Maglev read and the SNAT candidate's read, on the
 * chain of dependent reads a SYN waits for (~3 ns). XDP-private, not
 * pinned, checked against the backend's address and port at every use,
 * so a backend id given to another backend is never hashed stale.
 */
struct kha_snat_base {
	struct kha_addr addr;
	__be16 port;
	__u16 valid;
	__u32 base;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KHA_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct kha_snat_base);
} snat_base SEC(".maps");

static __always_inline __u32 snat_base_of(const struct kha_backend *be,
					  __u32 backend_id)
{
	struct kha_snat_base *c = bpf_map_lookup_elem(&snat_base, &backend_id);
	__u32 base;

	if (c && c->valid && c->port == be->port &&
	    addr_eq(&c->addr, &be->addr))
		return c->base;
	base = kha_snat_base(&be->addr, be->port);
	if (c) { /* per CPU: no other writer */
		c->addr = be->addr;
		c->port = be->port;
		c->base = base;
		c->valid = 1;
	}
	return base;
}

static __always_inline __be16 snat_port_at(struct snat_range r, __u32 off)
{
	return bpf_htons(r.lo + off);
}

static __always_inline struct kha_snat_slot *
snat_claim(const struct kha_lb_config *cfg, const struct kha_backend *be,
	   __u32 off0, __u32 *cur, __u32 home0, __u32 now, __u32 *idx,
	   __be16 *port, __u32 *old, struct xdp_md *ctx, __u32 opt_off,
	   __u32 opt_len)
{
	struct snat_range r = snat_range_of(cfg);
	struct kha_snat_slot *s;
	__u32 home = home0, off = off0;

	for (int i = 0; i < KHA_SNAT_RETRIES; i++) {
		if (i) {
			if (i < KHA_SNAT_SEQ_TRIES)
				off = off0 + i < r.span ? off0 + i :
							  (off0 + i) % r.span;
			else
				off = snat_random_off(r, bpf_get_prandom_u32());
			home = kha_snat_home(&be->addr, be->port,
					     snat_port_at(r, off), NULL);
		}
		s = snat_take_remote(home, now, idx, old, ctx, opt_off, opt_len);
		if (s) {
			*port = snat_port_at(r, off);
			if (cur) /* the walk goes on after this port */
				*cur = off + 1 < r.span ? off + 2 : 1;
			return s;
		}
	}
	return NULL;
}

/*
 * What kha_snat_open() needs: the new flow (its 4-tuple, backend, the
 * time, its SYN's TCP options in the packet, the first SNAT candidate)
 * and what it gives back.
 */
struct snat_open {
	struct flow4 f;
	__u32 backend_id, now, soff, shome, opt_off, opt_len;
	__u32 sidx;  /* out: the flow's `snat` slot */
	__be16 port; /* out: its SNAT port (a local flow: the client's) */
	__u16 why;   /* out, on failure: the drop reason */
};

/*
 * The reverse slot of a new flow, claimed and filled: a SNAT port (remote
 * backend) or the local stack's reply key (local backend). 0, or -1 with
 * @r->why. A global function: the verifier checks the port claim's
 * retries once, not on each path that opens a flow (a SYN's and the
 * others, whose forward state differs).
 */
__attribute__((noinline)) int kha_snat_open(struct xdp_md *ctx,
					     struct snat_open *r)
{
	struct kha_addr client = {};
	struct kha_lb_config *cfg;
	struct kha_backend *be;
	struct kha_snat_slot *s;
	__u32 zero = 0, id, ost = 0, *cur;

	if (!r)
		return -1;
	id = r->backend_id;
	cfg = bpf_map_lookup_elem(&lb_config, &zero);
	be = bpf_map_lookup_elem(&backends, &id);
	r->why = KHA_R_ct_insert_fail;
	if (!cfg || !be)
		return -1;
	client.v4 = r->f.client;
	if (be->flags & KHA_BE_F_LOCAL) {
		s = snat_take_local(&be->addr, be->port, r->f.cport, &client,
				    r->now, &r->sidx);
		if (!s)
			return -1;
		s->flags = KHA_SNAT_F_LOCAL;
		r->port = r->f.cport;
	} else {
		cur = bpf_map_lookup_elem(&snat_cursor, &id);
		s = snat_claim(cfg, be, r->soff, cur, r->shome, r->now,
			       &r->sidx, &r->port, &ost, ctx, r->opt_off,
			       r->opt_len);
		if (!s) {
			r->why = KHA_R_drop_snat_exhausted;
			return -1;
		}
		if (ost)
			snat_reclaimed(&r->f, s, r->sidx, ost, r->now);
		s->flags = 0;
	}
	s->backend_id = id;
	s->backend = be->addr;
	s->client = client;
	__builtin_memset(&s->vip, 0, sizeof(s->vip));
	s->vip.v4 = r->f.vip;
	s->backend_port = be->port;
	s->port = r->port;
	s->client_port = r->f.cport;
	s->vip_port = r->f.vport;
	return 0;
}

/*
 * A SYN on the 4-tuple of a flow that is closing or closed (a FIN or RST
 * seen either way, or expired): the client has let the old connection go
 * and opens a new one, which gets a port of its own (Linux conntrack
 * likewise treats a SYN in TIME_WAIT/CLOSE as new). The old port is freed
 * at once, unless the backend closed first: then the backend holds the old
 * VIP:port in TIME_WAIT, and the entry stays for KHA_SNAT_TW_TICKS. @os:
 * the old flow's entry from snat_owned(), or NULL; @osidx: its slot.
 */
static __always_inline void ct_reopen(struct kha_snat_slot *os, __u32 osidx,
				      __u32 now)
{
	struct kha_snat_tw *r;
	__u32 close;

	if (!os)
		return;
	if (!(os->flags & KHA_SNAT_F_LOCAL) &&
	    (os->flags & (KHA_SNAT_F_RST | KHA_SNAT_F_BACKEND_FIRST)) ==
		    KHA_SNAT_F_BACKEND_FIRST) {
		/* the client's FIN was not seen: its last timestamp is not
		 * known, so the port is not reused early (flows.h) */
		r = bpf_map_lookup_elem(&snat_tw, &osidx);
		if (r)
			r->valid = 0;
		close = snat_closing(os, KHA_SNAT_F_CLIENT_FIN, TCP_FLAG_FIN);
		stamp_touch(&os->stamp, now, close);
	} else {
		os->stamp = 0;
	}
}

/* What kha_ct_move() moves: a flow's key, `snat` slot and ct_syn entry. */
struct syn_move {
	struct kha_flow_key key;
	__u32 sidx, nidx, now;
	__u32 idx; /* out: its conntrack slot */
	__u64 e;   /* its ct_syn entry's value */
};

/*
 * Per CPU, what a new or handshake flow's packet works with: the state it
 * is sent by when that is in no table (a conntrack slot filled from the
 * flow's `snat` slot), and the arguments of the global functions. A map,
 * not the stack, which the rest of the program needs.
 */
struct syn_scratch {
	struct kha_ct_slot ct;
	struct syn_search q;
	struct syn_move mv;
	struct snat_open op;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syn_scratch);
} syn_scratch SEC(".maps");

static __always_inline struct syn_scratch *syn_scratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&syn_scratch, &zero);
}

/* The VIP id of the flow whose `snat` slot is @s: its backend's. */
static __always_inline __u32 snat_vip_id(const struct kha_snat_slot *s)
{
	__u32 id = s->backend_id;
	struct kha_backend *be = bpf_map_lookup_elem(&backends, &id);

	return be ? be->vip_id : 0;
}

/*
 * A conntrack slot's state (all but stamp, chain and key) for the flow
 * whose `snat` slot is @s (@sidx): a flow in its handshake has no other
 * (headers/kha_abi.h, "ct_syn").
 */
static __always_inline void ct_fill_from_snat(struct kha_ct_slot *ct,
					      const struct kha_snat_slot *s,
					      __u32 sidx, __u32 vip_id)
{
	ct->flags = 0;
	ct->backend_id = s->backend_id;
	ct->backend_port = s->backend_port;
	ct->snat_port = s->flags & KHA_SNAT_F_LOCAL ? 0 : s->port;
	ct->vip_id = vip_id;
	ct->close = s->flags & KHA_SNAT_F_CLOSE_MASK;
	ct->snat_slot = sidx;
	ct->be_tag = kha_addr_tag(&s->backend);
}

/*
 * Move the flow @m->key, in its handshake (its `snat` slot @m->sidx; its
 * ct_syn entry @m->nidx, value @m->e), to conntrack, where it lives from
 * now on: this packet pays for the conntrack slot, a cold line, which the
 * SYN did not (docs/datapath.md, "Handshake table"). A conntrack slot
 * that already holds this 5-tuple is an older connection the SYN
 * reopened: its port is let go as ct_reopen() lets a closed flow's go.
 * 0 and the slot in @m->idx; -1 when conntrack has no slot for it
 * (counted): the flow stays in ct_syn and the next packet tries again. A
 * global function: the verifier checks the claim once, not at each of
 * the three places a flow moves from.
 */
__attribute__((noinline)) int kha_ct_move(struct syn_move *m)
{
	struct kha_snat_slot *s, *os;
	struct kha_ct_slot *ct;
	int existing = 0;
	__u32 sidx;

	if (!m)
		return -1;
	sidx = m->sidx;
	s = bpf_map_lookup_elem(&snat, &sidx);
	if (!s)
		return -1;
	ct = ct_claim(&m->key, kha_ct_home(&m->key), m->now, &m->idx,
		      &existing);
	if (!ct) {
		kha_count(KHA_R_ct_insert_fail);
		return -1;
	}
	if (existing) {
		os = snat_owned_by(ct, m->key.src.v4, m->key.sport);
		if (os && ct->snat_slot != sidx)
			ct_reopen(os, ct->snat_slot, m->now);
		ct->stamp = m->now;
	}
	ct_fill_from_snat(ct, s, sidx, snat_vip_id(s));
	ct_syn_set(m->nidx, m->e, m->e | KHA_CT_SYN_MOVED);
	kha_count(KHA_R_ct_promoted);
	return 0;
}

/*
 * The `snat` slot of @q's flow if it is in its handshake: a live entry
 * of it in ct_syn, not moved yet. Else NULL.
 */
static __always_inline struct kha_snat_slot *
ct_syn_handshake(struct syn_search *q)
{
	if (!kha_ct_syn_search(q) || kha_ct_syn_moved(q->e) ||
	    !kha_ct_syn_live(kha_ct_syn_stamp(q->e), q->now))
		return NULL;
	return syn_found_snat(q);
}

/*
 * The state a packet of @sc->q's flow, in its handshake (`snat` slot @s),
 * is sent by: a conntrack slot in no table, @sc->ct.
 */
static __always_inline struct kha_ct_slot *
syn_state_of(struct syn_scratch *sc, const struct kha_snat_slot *s)
{
	ct_fill_from_snat(&sc->ct, s, kha_ct_syn_sidx(sc->q.e),
			  snat_vip_id(s));
	sc->ct.stamp = sc->q.now;
	return &sc->ct;
}

/* The flow @sc->q found, with its key @sc->mv.key: moved, its slot. */
static __always_inline struct kha_ct_slot *ct_move(struct syn_scratch *sc)
{
	sc->mv.sidx = kha_ct_syn_sidx(sc->q.e);
	sc->mv.nidx = sc->q.idx;
	sc->mv.e = sc->q.e;
	sc->mv.now = sc->q.now;
	if (kha_ct_move(&sc->mv))
		return NULL;
	return bpf_map_lookup_elem(&conntrack, &sc->mv.idx);
}

/*
 * The client's packet @p (not a SYN, at tick @now) of a flow that may be
 * in its handshake: the flow's conntrack slot once moved (ct_move()), or a
 * copy (syn_scratch) filled from its `snat` slot when conntrack has no
 * room, or NULL when ct_syn has no live entry of the flow.
 */
static __always_inline struct kha_ct_slot *ct_promote(const struct pkt *p,
						      __u32 now)
{
	struct syn_scratch *sc = syn_scratch_get();
	struct kha_snat_slot *s;
	struct kha_ct_slot *ct;
	struct ct_key4 k;

	if (!sc || ct_key4_of(p, &k))
		return NULL;
	syn_search_of(&sc->q, k.src, p->tcp->source, k.dst, p->tcp->dest,
		      kha_ct_home4(k.src, k.dst, k.ports, k.pf), now);
	s = ct_syn_handshake(&sc->q);
	if (!s)
		return NULL;
	__builtin_memset(&sc->mv.key, 0, sizeof(sc->mv.key));
	flow_key_of(p, &sc->mv.key);
	ct = ct_move(sc);
	return ct ? ct : syn_state_of(sc, s);
}

/*
 * A flow just recorded in conntrack (@key, its `snat` slot @sidx): note it
 * in ct_syn as moved, when its line has room, so that a late SYN of it
 * finds it there and looks in conntrack instead of opening a new flow.
 */
static __always_inline void ct_syn_note_moved(const struct kha_flow_key *key,
					      __u32 home, __u32 sidx,
					      __u32 now)
{
	struct syn_scratch *sc = syn_scratch_get();
	__u64 v = kha_ct_syn_entry(now, kha_ct_syn_tag(home), sidx) |
		  KHA_CT_SYN_MOVED;

	if (!sc)
		return;
	syn_search_of(&sc->q, key->src.v4, key->sport, key->dst.v4,
		      key->dport, home, now);
	if (kha_ct_syn_search(&sc->q))
		ct_syn_set(sc->q.idx, sc->q.e, v);
	else if (sc->q.cand < KHA_CT_SYN_SLOTS)
		ct_syn_set(sc->q.cand, sc->q.cand_old, v);
}

/*
 * The state of the flow @key if it is in its handshake (a copy in
 * syn_scratch, filled from its `snat` slot), else NULL.
 */
static __always_inline struct kha_ct_slot *
ct_syn_state(const struct kha_flow_key *key)
{
	struct syn_scratch *sc = syn_scratch_get();
	struct kha_snat_slot *s;

	if (!sc)
		return NULL;
	syn_search_of(&sc->q, key->src.v4, key->sport, key->dst.v4,
		      key->dport, kha_ct_home(key), flow_ticks(coarse_now()));
	s = ct_syn_handshake(&sc->q);
	return s ? syn_state_of(sc, s) : NULL;
}

/*
 * The backend's SYN-ACK through @s (slot @sidx): its flow moves now, so
 * that conntrack holds it before the client's ACK comes, which would
 * otherwise find an older flow of the same 4-tuple there first (a SYN on
 * a live flow opens a new one: the client has let the old one go).
 */
static __always_inline void ct_promote_synack(const struct kha_snat_slot *s,
					      __u32 sidx, __u32 now)
{
	struct syn_scratch *sc = syn_scratch_get();
	struct kha_flow_key *key;

	if (!sc)
		return;
	key = &sc->mv.key;
	__builtin_memset(key, 0, sizeof(*key));
	flow_key_of_snat(s, key);
	syn_search_of(&sc->q, s->client.v4, s->client_port, s->vip.v4,
		      s->vip_port, kha_ct_home(key), now);
	if (ct_syn_handshake(&sc->q) && kha_ct_syn_sidx(sc->q.e) == sidx)
		ct_move(sc);
}

#endif /* KHA_BPF_NAT_H */
