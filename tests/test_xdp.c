// SPDX-License-Identifier: GPL-2.0
/*
 * Packet tests of the XDP data plane (bpf/xdp_lb.bpf.c) through
 * BPF_PROG_TEST_RUN: tables of input packet -> expected verdict, expected
 * output bytes and the one drop/pass reason counter that must move. Every
 * expected frame is built from scratch by tests/pkt.h, checksums included,
 * so the program's incremental checksum arithmetic is checked against the
 * RFC 1071 definition byte for byte.
 *
 * bpf_fib_lookup needs a real interface with routes and neighbours, so the
 * suite first moves the process into a private network namespace ("A", the
 * load balancer) holding veth dp0 (its peer dp1 lives in a second private
 * namespace "B", a host on the segment) and veth dp2/dp3. Nothing of the
 * machine's own network is touched and nothing is pinned: both namespaces
 * disappear with the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_packet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kha_test.h"
#include "pkt.h"
#include "maglev.h"
#include "kha_abi.h"
#include "flows.h"
#include "xdp_lb.skel.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "IP4() below assumes a little-endian host"
#endif
/* an IPv4 address in network order, usable in static initialisers */
#define IP4(a, b, c, d)                                                       \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 |           \
	 (uint32_t)(d) << 24)

#define RING_SIZE KHA_RING_SIZE_DEFAULT
#define VIP_PORT 8443
#define BE_PORT 6443

/* ---- the lab: addresses and MACs ------------------------------------ */

#define LB_ADDR IP4(10, 99, 0, 1)
#define GW_ADDR IP4(10, 99, 0, 254)
#define CLIENT IP4(10, 99, 0, 50)
#define VIP(n) IP4(10, 99, 0, 100 + (n))
#define ROUTER IP4(10, 99, 0, 254)

static const uint8_t MAC_LB[6] = { 0x02, 0xdd, 0, 0, 0, 0x01 };
static const uint8_t MAC_PEER[6] = { 0x02, 0xdd, 0, 0, 0, 0x02 };
static const uint8_t MAC_DP2[6] = { 0x02, 0xdd, 0, 0, 2, 0x01 };
static const uint8_t MAC_GW[6] = { 0x02, 0xdd, 0, 0, 0, 0xfe };
static const uint8_t MAC_CLIENT[6] = { 0x02, 0xdd, 0, 0, 0, 0x32 };

/* backends; ids are indexes. vip = -1: not configured */
struct lab_backend {
	uint32_t addr;
	uint32_t flags;
	uint32_t weight;
	int vip;
	uint8_t mac[6]; /* permanent neighbour; all-zero: none */
};

#define F_UP (KHA_BE_F_PRESENT | KHA_BE_F_HEALTHY)
static struct lab_backend lab_be[] = {
	/* 0-2: VIP 0, on-link neighbours: XDP_TX */
	{ IP4(10, 99, 0, 11), F_UP, 1, 0, { 0x02, 0xdd, 0, 0, 1, 11 } },
	{ IP4(10, 99, 0, 12), F_UP, 1, 0, { 0x02, 0xdd, 0, 0, 1, 12 } },
	{ IP4(10, 99, 0, 13), F_UP, 1, 0, { 0x02, 0xdd, 0, 0, 1, 13 } },
	/* 3: VIP 3, behind dp2: XDP_REDIRECT */
	{ IP4(10, 99, 2, 14), F_UP, 1, 3, { 0x02, 0xdd, 0, 0, 2, 14 } },
	/* 4: VIP 4, no neighbour entry: to the kernel */
	{ IP4(10, 99, 0, 15), F_UP, 1, 4, { 0 } },
	/* 5: VIP 2, the LB itself: DNAT only */
	{ LB_ADDR, F_UP | KHA_BE_F_LOCAL, 1, 2, { 0 } },
	/* 6: VIP 5, blackholed */
	{ IP4(10, 99, 9, 9), F_UP, 1, 5, { 0 } },
	/* 7: VIP 6, a real host in namespace B (live no-neighbour test) */
	{ IP4(10, 99, 0, 16), F_UP, 1, 6, { 0 } },
	/* 8: VIP 7, the port-exhaustion VIP */
	{ IP4(10, 99, 0, 17), F_UP, 1, 7, { 0x02, 0xdd, 0, 0, 1, 17 } },
};
#define NR_BE (int)(sizeof(lab_be) / sizeof(lab_be[0]))
#define NR_VIPS 8 /* VIP 1 has no backend at all */
#define NR_VIPS_MAX 8

static struct xdp_lb *skel;
static int prog_fd;
/*
 * `rings` is mmap'ed like the loader does it: 64-byte lines of 32 __u16
 * ids, contiguous, so one flat __u16 array (headers/kha_abi.h). The tables
 * as maglev_build() made them are kept here too, for maglev_lookup().
 */
static uint16_t *rings;
static size_t rings_len;
static uint32_t tables[NR_VIPS_MAX][2][RING_SIZE];
static int ifi_dp0, ifi_dp2, ns_a = -1, ns_b = -1;
static int ncpus;

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		int ok_ = !!(cond);                                           \
		if (!ok_) {                                                   \
			fprintf(stderr, "  FAIL %s:%d: ", __FILE__,          \
				__LINE__);                                    \
			fprintf(stderr, __VA_ARGS__);                         \
			fputc('\n', stderr);                                  \
		}                                                             \
		CU_ASSERT(ok_);                                               \
	} while (0)

static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "test_xdp: `%s` failed (%d)\n", cmd, rc);
	return rc;
}

static int sysctl_set(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "test_xdp: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

static const uint8_t *mac_of(uint32_t addr)
{
	for (int i = 0; i < NR_BE; i++)
		if (lab_be[i].addr == addr && lab_be[i].mac[0])
			return lab_be[i].mac;
	if (addr == CLIENT)
		return MAC_CLIENT;
	if (addr == IP4(10, 99, 0, 16))
		return MAC_PEER;
	return MAC_GW; /* off-link: via the default gateway */
}

static const char *ip_str(uint32_t a)
{
	static char buf[4][16];
	static int i;
	struct in_addr in = { .s_addr = a };

	i = (i + 1) % 4;
	return inet_ntop(AF_INET, &in, buf[i], sizeof(buf[i]));
}

/* ---- maps --------------------------------------------------------- */

static void push_backend(int id)
{
	struct kha_backend b = {};
	__u32 key = id;

	b.addr.v4 = lab_be[id].addr;
	b.port = htons(BE_PORT);
	b.family = KHA_AF_INET;
	b.flags = lab_be[id].flags;
	b.vip_id = lab_be[id].vip < 0 ? 0 : lab_be[id].vip;
	b.weight = lab_be[id].weight;
	bpf_map_update_elem(bpf_map__fd(skel->maps.backends), &key, &b, 0);
}

static uint32_t *ring_of(int vip, uint32_t gen)
{
	return tables[vip][gen & 1];
}

static uint32_t active_gen(int vip)
{
	struct kha_vip_state st = {};
	__u32 key = vip;

	bpf_map_lookup_elem(bpf_map__fd(skel->maps.vip_state), &key, &st);
	return st.active_gen;
}

/* Build the VIP's table with maglev_build into the idle generation, flip. */
static int publish(int vip)
{
	struct maglev_backend mb[NR_BE];
	struct kha_vip_state st = {};
	uint32_t gen = active_gen(vip) ^ 1;
	__u32 key = vip;
	int n = 0, rc;

	for (int i = 0; i < NR_BE; i++) {
		if (lab_be[i].vip != vip ||
		    (lab_be[i].flags & F_UP) != F_UP)
			continue;
		memset(&mb[n], 0, sizeof(mb[n]));
		mb[n].addr.v4 = lab_be[i].addr;
		mb[n].port = BE_PORT;
		mb[n].weight = lab_be[i].weight;
		mb[n].id = i;
		n++;
	}
	rc = maglev_build(mb, n, ring_of(vip, gen), RING_SIZE);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < RING_SIZE; i++)
		rings[kha_ring_index(vip, gen, i, RING_SIZE)] =
			ring_of(vip, gen)[i] < KHA_MAX_BACKENDS ?
				ring_of(vip, gen)[i] : KHA_RING_NONE;
	st.active_gen = gen;
	st.nr_healthy = n;
	return bpf_map_update_elem(bpf_map__fd(skel->maps.vip_state), &key,
				   &st, 0);
}

static uint32_t predicted(int vip, uint32_t client)
{
	struct kha_addr a = {};

	a.v4 = client;
	return maglev_lookup(ring_of(vip, active_gen(vip)), RING_SIZE, &a);
}

static void set_snat_range(uint16_t lo, uint16_t hi)
{
	struct kha_lb_config c = {};
	__u32 zero = 0;

	c.snat_port_lo = lo;
	c.snat_port_hi = hi;
	c.ring_size = RING_SIZE;
	c.local_addr.v4 = LB_ADDR;
	bpf_map_update_elem(bpf_map__fd(skel->maps.lb_config), &zero, &c, 0);
}

static struct kha_flow_key flow_key(uint32_t src, uint16_t sport,
				    uint32_t dst, uint16_t dport)
{
	struct kha_flow_key k;

	memset(&k, 0, sizeof(k));
	k.src.v4 = src;
	k.dst.v4 = dst;
	k.sport = htons(sport);
	k.dport = htons(dport);
	k.proto = IPPROTO_TCP;
	k.family = KHA_AF_INET;
	return k;
}

/*
 * The flow tables are slot arrays (headers/kha_abi.h, "flow tables"),
 * mmapped here and read through user/flows.c. The tests read a flow's
 * state as a view with the backend's address resolved and the stamp as
 * the tick the data plane last saw the flow (kha_snat.last_seen before).
 */
static struct kha_ct_slot *ct_tab;
static uint64_t *ct_syn_tab;
static struct kha_snat_slot *snat_tab;
static size_t ct_tab_len, ct_syn_tab_len, snat_tab_len;

struct ct_view {
	struct kha_addr backend;
	__be16 backend_port;
	__be16 snat_port;
	__u32 backend_id;
	__u32 vip_id;
	__u32 flags;
};

struct snat_view {
	struct kha_addr client;
	struct kha_addr vip;
	__be16 client_port;
	__be16 vip_port;
	__u32 vip_id;
	__u32 backend_id;
	__u32 last_seen; /* stamp - KHA_TICK_BASE: CLOCK_MONOTONIC ticks */
	__u32 flags;     /* KHA_SNAT_F_* close flags */
};

static struct kha_backend backend_get(__u32 id)
{
	struct kha_backend be = {};

	bpf_map_lookup_elem(bpf_map__fd(skel->maps.backends), &id, &be);
	return be;
}

/* @k's flow in its handshake: its `snat` slot, if its entry is live and
 * the flow has not moved to conntrack */
static struct kha_snat_slot *syn_flow(const struct kha_flow_key *k)
{
	uint32_t idx;
	struct kha_snat_slot *s = kha_ct_syn_find(ct_syn_tab, snat_tab, k,
						  &idx);

	if (!s || kha_ct_syn_moved(ct_syn_tab[idx]) ||
	    !kha_ct_syn_live(kha_ct_syn_stamp(ct_syn_tab[idx]),
			     kha_flow_now()))
		return NULL;
	return s;
}

static int ct_get(uint32_t client, uint16_t cport, uint32_t vip,
		  struct ct_view *ct)
{
	struct kha_flow_key k = flow_key(client, cport, vip, VIP_PORT);
	struct kha_snat_slot *sn = syn_flow(&k);
	struct kha_ct_slot *s;

	/*
	 * A flow in its handshake is its `snat` slot and a ct_syn entry; a
	 * SYN that reopens a flow of conntrack leaves that there until the
	 * flow moves (bpf/nat.h ct_move()): ct_syn first.
	 */
	if (sn) {
		ct->backend = sn->backend;
		ct->backend_port = sn->backend_port;
		ct->snat_port = sn->flags & KHA_SNAT_F_LOCAL ? 0 : sn->port;
		ct->backend_id = sn->backend_id;
		ct->vip_id = backend_get(sn->backend_id).vip_id;
		ct->flags = 0;
		return 0;
	}
	s = kha_ct_find(ct_tab, &k);
	if (!s)
		return -1;
	ct->backend = backend_get(s->backend_id).addr;
	ct->backend_port = s->backend_port;
	ct->snat_port = s->snat_port;
	ct->backend_id = s->backend_id;
	ct->vip_id = s->vip_id;
	ct->flags = s->flags;
	return 0;
}

/* by the key of the backend's packet: dst = VIP (remote) or client (local) */
static struct kha_snat_slot *snat_slot(struct kha_flow_key k)
{
	struct kha_snat_slot *s;

	s = kha_snat_find(snat_tab, &k.src, k.sport, k.dport, NULL);
	if (s && s->vip.v4 == k.dst.v4)
		return s;
	return kha_snat_find(snat_tab, &k.src, k.sport, k.dport, &k.dst);
}

static int snat_get(struct kha_flow_key k, struct snat_view *v)
{
	struct kha_snat_slot *s = snat_slot(k);

	if (!s)
		return -1;
	v->client = s->client;
	v->vip = s->vip;
	v->client_port = s->client_port;
	v->vip_port = s->vip_port;
	v->backend_id = s->backend_id;
	v->vip_id = backend_get(s->backend_id).vip_id;
	v->last_seen = s->stamp - KHA_TICK_BASE;
	v->flags = s->flags & KHA_SNAT_F_CLOSE_MASK;
	return 0;
}

/* time passes for an entry: its stamp moves back to @v->last_seen */
static void snat_set_seen(struct kha_flow_key k, const struct snat_view *v)
{
	struct kha_snat_slot *s = snat_slot(k);

	if (s)
		s->stamp = v->last_seen + KHA_TICK_BASE;
}

static void reasons_get(__u64 out[KHA_R_MAX])
{
	struct kha_reasons v[ncpus];
	__u32 zero = 0;

	memset(out, 0, sizeof(__u64) * KHA_R_MAX);
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.reasons), &zero, v))
		return;
	for (int c = 0; c < ncpus; c++)
		for (int r = 0; r < KHA_R_MAX; r++)
			out[r] += ((__u64 *)&v[c])[r];
}

static void counters_get(struct bpf_map *map, __u32 key,
			 struct kha_counters *sum)
{
	struct kha_counters v[ncpus];

	memset(sum, 0, sizeof(*sum));
	if (bpf_map_lookup_elem(bpf_map__fd(map), &key, v))
		return;
	for (int c = 0; c < ncpus; c++) {
		sum->packets += v[c].packets;
		sum->bytes += v[c].bytes;
		sum->new_flows += v[c].new_flows;
	}
}

static const char *reason_names[] = {
#define X_NAME(n) #n,
	KHA_REASONS(X_NAME)
#undef X_NAME
};

/* ---- running the program ---------------------------------------------- */

static int xdp_run(const uint8_t *in, size_t len, uint8_t *out,
		   size_t *out_len)
{
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifi_dp0 };
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in,
			    .data_size_in = len, .data_out = out,
			    .data_size_out = PKT_MAX, .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int rc = bpf_prog_test_run_opts(prog_fd, &opts);

	if (rc) {
		fprintf(stderr, "test_xdp: test run: %s\n", strerror(-rc));
		return -1;
	}
	*out_len = opts.data_size_out;
	return opts.retval;
}

/* ---- the table ---------------------------------------------------------- */

enum expect {
	EXP_SAME,       /* output == input */
	EXP_BACKEND,    /* forwarded to the flow's backend (conntrack) */
	EXP_CLIENT,     /* a reply translated back to the client */
	EXP_RST,        /* TCP RST+ACK to the client */
	EXP_NONE,       /* dropped: output not looked at */
	EXP_CUSTOM,     /* row->expect builds it */
};

/* the flows the rows talk about */
struct flow {
	uint32_t client;
	uint16_t cport;
	int vip;
};

enum input { IN_CLIENT, IN_REPLY, IN_RAW };

struct row {
	const char *name;
	void (*setup)(void);
	enum input input;
	struct flow f;          /* IN_CLIENT / IN_REPLY: the flow */
	struct pkt_tcp4 spec;   /* flags, options, payload; IN_RAW: all */
	size_t (*mutate)(uint8_t *buf, size_t len); /* malformed inputs */
	int verdict;
	enum expect expect;
	int backend;            /* EXP_BACKEND: -1 = Maglev's prediction */
	size_t (*custom)(const struct row *r, uint8_t *exp);
	int reason;             /* the one KHA_R_* that must rise, -1: none */
	int new_flow;           /* vip/backend new_flows must rise by this */
	void (*check)(const struct row *r);
};

static const uint8_t MSS_OPT[4] = { 2, 4, 0x05, 0xb4 };
/* router alert + NOP NOP + EOL padding: 12 bytes of IPv4 options */
static const uint8_t IP_OPTS[12] = { 0x94, 4, 0, 0, 1, 1, 1, 1,
				     0x94, 4, 0, 0 };
static const uint8_t IP_OPTS8[8] = { 1, 1, 1, 1, 0x94, 4, 0, 0 };

/* client -> VIP packet of a flow, on the wire as the client sends it */
static size_t build_client(const struct flow *f, const struct pkt_tcp4 *t,
			   uint8_t *buf)
{
	struct pkt_tcp4 s = *t;

	memcpy(s.dmac, MAC_LB, 6);
	memcpy(s.smac, mac_of(f->client), 6);
	s.saddr = f->client;
	s.daddr = VIP(f->vip);
	s.sport = f->cport;
	s.dport = VIP_PORT;
	return pkt_build_tcp4(buf, &s);
}

/* backend -> VIP:snat_port, the flow's reply as the backend sends it */
static size_t build_reply(const struct flow *f, const struct pkt_tcp4 *t,
			  uint8_t *buf)
{
	struct pkt_tcp4 s = *t;
	struct ct_view ct = {};

	ct_get(f->client, f->cport, VIP(f->vip), &ct);
	memcpy(s.dmac, MAC_LB, 6);
	memcpy(s.smac, mac_of(ct.backend.v4), 6);
	s.saddr = ct.backend.v4;
	s.daddr = VIP(f->vip);
	s.sport = ntohs(ct.backend_port);
	s.dport = ntohs(ct.snat_port);
	return pkt_build_tcp4(buf, &s);
}

/*
 * What leaves toward the backend: the client's packet with the flow's
 * NAT applied, MACs from the neighbour table (unless the kernel takes it).
 * Also checks that the NAT state is consistent with the packet.
 */
static size_t expect_backend(const struct row *r, uint8_t *exp)
{
	const struct flow *f = &r->f;
	struct pkt_tcp4 s = r->spec;
	struct ct_view ct = {};
	struct snat_view sn = {};
	struct kha_flow_key rk;
	uint32_t want;
	int local;

	if (ct_get(f->client, f->cport, VIP(f->vip), &ct)) {
		CHECK(0, "%s: no conntrack entry", r->name);
		return 0;
	}
	want = r->backend >= 0 ? (uint32_t)r->backend :
				 predicted(f->vip, f->client);
	CHECK(ct.backend_id == want, "%s: backend %u, expected %u", r->name,
	      ct.backend_id, want);
	CHECK(ct.backend_id < (uint32_t)NR_BE &&
		      ct.backend.v4 == lab_be[ct.backend_id].addr &&
		      ct.backend_port == htons(BE_PORT) &&
		      ct.vip_id == (uint32_t)f->vip,
	      "%s: conntrack entry inconsistent", r->name);
	local = ct.backend_id < (uint32_t)NR_BE &&
		(lab_be[ct.backend_id].flags & KHA_BE_F_LOCAL);

	if (local) {
		CHECK(ct.snat_port == 0, "%s: local flow has snat port",
		      r->name);
		rk = flow_key(ct.backend.v4, BE_PORT, f->client, f->cport);
	} else {
		uint16_t p = ntohs(ct.snat_port);
		struct kha_lb_config c = {};
		__u32 zero = 0;

		bpf_map_lookup_elem(bpf_map__fd(skel->maps.lb_config), &zero,
				    &c);
		CHECK(p >= c.snat_port_lo && p <= c.snat_port_hi,
		      "%s: snat port %u outside %u-%u", r->name, p,
		      c.snat_port_lo, c.snat_port_hi);
		rk = flow_key(ct.backend.v4, BE_PORT, VIP(f->vip), p);
	}
	CHECK(!snat_get(rk, &sn) && sn.client.v4 == f->client &&
		      sn.vip.v4 == VIP(f->vip) &&
		      sn.client_port == htons(f->cport) &&
		      sn.vip_port == htons(VIP_PORT) &&
		      sn.vip_id == (uint32_t)f->vip &&
		      sn.backend_id == ct.backend_id,
	      "%s: snat entry missing or wrong", r->name);

	if (r->verdict == XDP_PASS) {
		/* to the kernel: L2 as it arrived */
		memcpy(s.dmac, MAC_LB, 6);
		memcpy(s.smac, mac_of(f->client), 6);
	} else {
		int via_dp2 = (ct.backend.v4 & 0xffffff) == IP4(10, 99, 2, 0);

		memcpy(s.dmac, mac_of(ct.backend.v4), 6);
		memcpy(s.smac, via_dp2 ? MAC_DP2 : MAC_LB, 6);
	}
	s.saddr = local ? f->client : VIP(f->vip);
	s.sport = local ? f->cport : ntohs(ct.snat_port);
	s.daddr = ct.backend.v4;
	s.dport = BE_PORT;
	return pkt_build_tcp4(exp, &s);
}

static size_t expect_client(const struct row *r, uint8_t *exp)
{
	struct pkt_tcp4 s = r->spec;

	memcpy(s.dmac, mac_of(r->f.client), 6);
	memcpy(s.smac, MAC_LB, 6);
	s.saddr = VIP(r->f.vip);
	s.sport = VIP_PORT;
	s.daddr = r->f.client;
	s.dport = r->f.cport;
	return pkt_build_tcp4(exp, &s);
}

/* RFC 9293 reset for a SYN: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> */
static size_t expect_rst(const struct row *r, uint8_t *exp)
{
	struct pkt_tcp4 s = {};
	size_t len;

	memcpy(s.dmac, mac_of(r->f.client), 6);
	memcpy(s.smac, MAC_LB, 6);
	s.saddr = VIP(r->f.vip);
	s.daddr = r->f.client;
	s.sport = VIP_PORT;
	s.dport = r->f.cport;
	s.flags = PKT_TCP_RST | PKT_TCP_ACK;
	s.seq = 0;
	s.ack = r->spec.seq + r->spec.payload_len + 1;
	s.frag_off = 0x4000;
	len = pkt_build_tcp4(exp, &s);
	pkt_tcp(exp)->window = 0;
	pkt_fix_csums(exp, len);
	return len;
}

/* @f's flow is in ct_syn, live: its client's next packet moves it */
static bool in_ct_syn(const struct flow *f)
{
	struct kha_flow_key k = flow_key(f->client, f->cport, VIP(f->vip),
					 VIP_PORT);

	return syn_flow(&k) != NULL;
}

static void run_row(const struct row *r)
{
	uint8_t in[PKT_MAX], out[PKT_MAX], exp[PKT_MAX];
	__u64 before[KHA_R_MAX], after[KHA_R_MAX];
	struct kha_counters vb = {}, va = {};
	size_t in_len = 0, out_len = 0, exp_len = 0;
	int verdict, bad;
	bool promote;

	memset(in, 0, sizeof(in));
	if (r->setup)
		r->setup();
	switch (r->input) {
	case IN_CLIENT:
		in_len = build_client(&r->f, &r->spec, in);
		break;
	case IN_REPLY:
		in_len = build_reply(&r->f, &r->spec, in);
		break;
	case IN_RAW:
		in_len = pkt_build_tcp4(in, &r->spec);
		break;
	}
	if (r->mutate)
		in_len = r->mutate(in, in_len);

	/* a flow in its handshake moves to conntrack on its client's next
	 * packet after the SYN, or on its backend's SYN-ACK */
	promote = ((r->input == IN_CLIENT && r->spec.flags != PKT_TCP_SYN) ||
		   (r->input == IN_REPLY &&
		    (r->spec.flags & (PKT_TCP_SYN | PKT_TCP_ACK)) ==
			    (PKT_TCP_SYN | PKT_TCP_ACK))) &&
		  in_ct_syn(&r->f);
	reasons_get(before);
	counters_get(skel->maps.vip_stats, r->f.vip, &vb);
	verdict = xdp_run(in, in_len, out, &out_len);
	reasons_get(after);
	counters_get(skel->maps.vip_stats, r->f.vip, &va);

	CHECK(verdict == r->verdict, "%s: verdict %d, expected %d", r->name,
	      verdict, r->verdict);
	if (promote && verdict != XDP_DROP)
		CHECK(!in_ct_syn(&r->f), "%s: the flow stayed in ct_syn",
		      r->name);
	for (int i = 0; i < KHA_R_MAX; i++) {
		__u64 want = before[i] + (i == r->reason) +
			     (i == KHA_R_ct_promoted && promote &&
			      verdict != XDP_DROP);

		CHECK(after[i] == want, "%s: counter %s %llu -> %llu",
		      r->name, reason_names[i],
		      (unsigned long long)before[i],
		      (unsigned long long)after[i]);
	}

	switch (r->expect) {
	case EXP_SAME:
		memcpy(exp, in, in_len);
		exp_len = in_len;
		break;
	case EXP_BACKEND:
		exp_len = expect_backend(r, exp);
		break;
	case EXP_CLIENT:
		exp_len = expect_client(r, exp);
		break;
	case EXP_RST:
		exp_len = expect_rst(r, exp);
		break;
	case EXP_CUSTOM:
		exp_len = r->custom(r, exp);
		break;
	case EXP_NONE:
		break;
	}
	if (r->expect != EXP_NONE) {
		CHECK(out_len == exp_len && !memcmp(out, exp, exp_len),
		      "%s: output differs from the expected frame (%zu vs %zu)",
		      r->name, out_len, exp_len);
		if (out_len != exp_len || memcmp(out, exp, exp_len))
			for (size_t i = 0; i < out_len && i < exp_len; i++)
				if (out[i] != exp[i])
					fprintf(stderr,
						"    byte %zu: got %02x want %02x\n",
						i, out[i], exp[i]);
	}
	if (r->expect != EXP_NONE && r->expect != EXP_SAME) {
		bad = pkt_verify_csums(out, out_len);
		CHECK(bad == 0, "%s: checksum %d wrong in the output", r->name,
		      bad);
	}
	if (r->input != IN_RAW && r->expect != EXP_RST &&
	    (r->verdict == XDP_TX ||
				   r->verdict == XDP_REDIRECT ||
				   r->expect == EXP_BACKEND)) {
		CHECK(va.packets == vb.packets + 1 &&
			      va.bytes == vb.bytes + in_len &&
			      va.new_flows == vb.new_flows + r->new_flow,
		      "%s: vip_stats %llu/%llu/%llu -> %llu/%llu/%llu",
		      r->name, (unsigned long long)vb.packets,
		      (unsigned long long)vb.bytes,
		      (unsigned long long)vb.new_flows,
		      (unsigned long long)va.packets,
		      (unsigned long long)va.bytes,
		      (unsigned long long)va.new_flows);
	}
	if (r->check)
		r->check(r);
}

/* ---- row helpers: state changes and extra checks -------------------- */

#define SYN(seq_) { .flags = PKT_TCP_SYN, .seq = (seq_), \
		    .tcp_opts = MSS_OPT, .tcp_opts_len = 4 }
#define DATA(len_) { .flags = PKT_TCP_ACK | PKT_TCP_PSH, .seq = 1001, \
		     .ack = 77, .payload_len = (len_), .payload_seed = 3 }

static const struct flow F1 = { CLIENT, 40001, 0 };
static const struct flow F2 = { CLIENT, 40002, 0 };
static const struct flow F_OPT = { CLIENT, 40003, 0 };
static const struct flow F_OFF = { IP4(172, 16, 5, 5), 40004, 0 };
static const struct flow F_EMPTY = { CLIENT, 42000, 1 };
static const struct flow F_LOCAL = { CLIENT, 43000, 2 };
static const struct flow F_REDIR = { CLIENT, 44000, 3 };
static const struct flow F_NONEIGH = { CLIENT, 45000, 4 };
static const struct flow F_BLACK = { CLIENT, 45500, 5 };
static const struct flow F_EX1 = { CLIENT, 41000, 7 };
static const struct flow F_EX2 = { CLIENT, 41001, 7 };

static uint32_t f1_old_backend, f2_backend;
static uint16_t f1_old_snat;

static void tiny_range(void)
{
	set_snat_range(20000, 20000);
}

static void default_range(void)
{
	set_snat_range(KHA_SNAT_PORT_LO_DEFAULT, KHA_SNAT_PORT_HI_DEFAULT);
}

static void check_ex1_port(const struct row *r)
{
	struct ct_view ct = {};

	ct_get(r->f.client, r->f.cport, VIP(r->f.vip), &ct);
	CHECK(ntohs(ct.snat_port) == 20000, "%s: port %u, expected 20000",
	      r->name, ntohs(ct.snat_port));
}

static void check_no_ct(const struct row *r)
{
	struct ct_view ct;

	CHECK(ct_get(r->f.client, r->f.cport, VIP(r->f.vip), &ct) != 0,
	      "%s: a conntrack entry was left behind", r->name);
}

/* now, in the units of snat_view.last_seen (a slot's stamp - KHA_TICK_BASE) */
static uint32_t snat_now(void)
{
	return kha_flow_now() - KHA_TICK_BASE;
}

static struct kha_flow_key ex_rkey(void)
{
	return flow_key(lab_be[8].addr, BE_PORT, VIP(7), 20000);
}

/* EX1 has been silent for longer than KHA_SNAT_IDLE_TICKS */
static void age_ex1(void)
{
	struct kha_flow_key rk = ex_rkey();
	struct snat_view sn = {};

	snat_get(rk, &sn);
	sn.last_seen = snat_now() - KHA_SNAT_IDLE_TICKS - 5;
	snat_set_seen(rk, &sn);
}

static void check_reclaimed(const struct row *r)
{
	struct snat_view sn = {};
	struct ct_view ct;

	check_ex1_port(r);
	CHECK(ct_get(F_EX1.client, F_EX1.cport, VIP(F_EX1.vip), &ct) != 0,
	      "%s: the idle flow kept its conntrack entry", r->name);
	CHECK(!snat_get(ex_rkey(), &sn) && sn.client_port == htons(r->f.cport),
	      "%s: port 20000 not owned by the new flow", r->name);
	default_range();
}

static void check_rst_marks(const struct row *r)
{
	struct snat_view sn = {};
	uint32_t want = snat_now() - (KHA_SNAT_IDLE_TICKS - KHA_SNAT_RST_TICKS);

	snat_get(ex_rkey(), &sn);
	CHECK(sn.last_seen + 1 >= want && sn.last_seen <= want + 1,
	      "%s: last_seen %u, expected about %u", r->name, sn.last_seen,
	      want);
}

/* F1's backend leaves: not present, and the table is rebuilt without it */
static void remove_f1_backend(void)
{
	struct ct_view ct = {};

	ct_get(F1.client, F1.cport, VIP(F1.vip), &ct);
	f1_old_backend = ct.backend_id;
	f1_old_snat = ntohs(ct.snat_port);
	lab_be[f1_old_backend].flags = 0;
	push_backend(f1_old_backend);
	publish(0);
}

static void check_reselected(const struct row *r)
{
	struct kha_flow_key rk = flow_key(lab_be[f1_old_backend].addr, BE_PORT,
					  VIP(0), f1_old_snat);
	struct snat_view sn;
	struct ct_view ct = {};

	ct_get(F1.client, F1.cport, VIP(F1.vip), &ct);
	CHECK(ct.backend_id != f1_old_backend, "%s: still on backend %u",
	      r->name, f1_old_backend);
	CHECK(snat_get(rk, &sn) != 0, "%s: the old snat entry was kept",
	      r->name);
	/* the backend comes back; F1 stays where it is now */
	lab_be[f1_old_backend].flags = F_UP;
	push_backend(f1_old_backend);
	publish(0);
}

/* F2's backend is drained: weight 0, out of the table, still healthy */
static void drain_f2_backend(void)
{
	struct ct_view ct = {};

	ct_get(F2.client, F2.cport, VIP(F2.vip), &ct);
	f2_backend = ct.backend_id;
	lab_be[f2_backend].weight = 0;
	push_backend(f2_backend);
	publish(0);
}

static void check_drained(const struct row *r)
{
	uint32_t n = 0;

	/* the drained backend really is out of the table */
	for (uint32_t i = 0; i < RING_SIZE; i++)
		n += ring_of(0, active_gen(0))[i] == f2_backend;
	CHECK(n == 0, "%s: drained backend still owns %u slots", r->name, n);
	lab_be[f2_backend].weight = 1;
	push_backend(f2_backend);
	publish(0);
}

/* the id of F2's backend now names another address: the flow moves */
static void reuse_f2_id(void)
{
	struct ct_view ct = {};

	ct_get(F2.client, F2.cport, VIP(F2.vip), &ct);
	f2_backend = ct.backend_id;
	lab_be[f2_backend].addr = IP4(10, 99, 0, 18);
	push_backend(f2_backend);
	sh("ip neigh replace 10.99.0.18 lladdr 02:dd:00:00:01:%02x dev dp0 "
	   "nud permanent", lab_be[f2_backend].mac[5]);
	/* table unchanged: it still names the id, now of .18 (no route
	 * trouble: .18 is on-link and reselection lands on the same id) */
}

static void check_reused(const struct row *r)
{
	struct ct_view ct = {};

	ct_get(F2.client, F2.cport, VIP(F2.vip), &ct);
	CHECK(ct.backend.v4 == IP4(10, 99, 0, 18),
	      "%s: conntrack still says %s", r->name, ip_str(ct.backend.v4));
	lab_be[f2_backend].addr = IP4(10, 99, 0, 11 + f2_backend);
	push_backend(f2_backend);
}

/*
 * A SYN is not looked up before its conntrack insert (BPF_NOEXIST finds the
 * flow instead): a retransmitted SYN of a live flow must still keep its
 * backend and SNAT port, and must not leave a second port claimed.
 */
static struct ct_view syn_again_ct;
static long syn_again_snat;

static long snat_entries(void)
{
	return kha_flows_used(snat_tab, sizeof(*snat_tab), KHA_FLOW_SLOTS);
}

static void syn_again_setup(void)
{
	drain_f2_backend();
	ct_get(F2.client, F2.cport, VIP(F2.vip), &syn_again_ct);
	syn_again_snat = snat_entries();
}

static void check_syn_again(const struct row *r)
{
	struct ct_view ct = {};
	long n = snat_entries();

	ct_get(F2.client, F2.cport, VIP(F2.vip), &ct);
	CHECK(ct.backend_id == syn_again_ct.backend_id &&
		      ct.snat_port == syn_again_ct.snat_port,
	      "%s: flow moved from backend %u port %u to %u port %u", r->name,
	      syn_again_ct.backend_id, ntohs(syn_again_ct.snat_port),
	      ct.backend_id, ntohs(ct.snat_port));
	CHECK(n == syn_again_snat, "%s: %ld snat entries, before %ld",
	      r->name, n, syn_again_snat);
	check_drained(r); /* and undrain */
}

static size_t expect_backend_f2(const struct row *r, uint8_t *exp)
{
	struct row c = *r;

	c.backend = f2_backend;
	return expect_backend(&c, exp);
}

/*
 * Closing (docs/datapath.md "Closing"): flows of VIP 7 (backend 8 only) in
 * a range of one or two ports from CL_LO, so every claim is predictable.
 * Time passes by moving an entry's last_seen back, as the data plane would
 * see it that many ticks later.
 */
#define CL_LO 21000
static const struct flow F_CA = { CLIENT, 41100, 7 };
static const struct flow F_CB = { CLIENT, 41101, 7 };
static const struct flow F_CC = { CLIENT, 41102, 7 };
static uint16_t cl_port, cl_old_port; /* F_CA's (then F_CC's) port */
static long cl_snat_entries;

#define FIN_ACK { .flags = PKT_TCP_FIN | PKT_TCP_ACK, .seq = 1001, .ack = 77 }
#define RST_ACK { .flags = PKT_TCP_RST | PKT_TCP_ACK, .seq = 1001, .ack = 77 }
#define SYN_ACK { .flags = PKT_TCP_SYN | PKT_TCP_ACK, .seq = 76, .ack = 1001, \
		  .tcp_opts = MSS_OPT, .tcp_opts_len = 4 }

static struct kha_flow_key cl_rkey(uint16_t port)
{
	return flow_key(lab_be[8].addr, BE_PORT, VIP(7), port);
}

static uint16_t port_of(const struct flow *f)
{
	struct ct_view ct = {};

	ct_get(f->client, f->cport, VIP(f->vip), &ct);
	return ntohs(ct.snat_port);
}

static void cl_range2(void)
{
	set_snat_range(CL_LO, CL_LO + 1);
}

static void cl_count(void)
{
	cl_snat_entries = snat_entries();
}

/* only the port F_CA (or F_CC) holds now */
static void cl_range_held(void)
{
	set_snat_range(cl_port, cl_port);
}

static void cl_age(uint16_t port, uint32_t ticks)
{
	struct kha_flow_key rk = cl_rkey(port);
	struct snat_view sn = {};

	snat_get(rk, &sn);
	sn.last_seen -= ticks;
	snat_set_seen(rk, &sn);
}

/* the short hold is over (but not the TIME_WAIT one) */
static void cl_age_short(void)
{
	cl_range_held();
	cl_age(cl_port, KHA_SNAT_CLOSE_TICKS + 1);
}

static void cl_age_tw(void)
{
	cl_age(cl_port, KHA_SNAT_TW_TICKS - KHA_SNAT_CLOSE_TICKS);
}

/* the entry of @port: owned by @f, with @flags, held for @hold ticks */
static void cl_check_entry(const struct row *r, const struct flow *f,
			   uint16_t port, uint32_t flags, uint32_t hold)
{
	uint32_t want = snat_now() - (KHA_SNAT_IDLE_TICKS - hold);
	struct snat_view sn = {};

	CHECK(!snat_get(cl_rkey(port), &sn) &&
		      sn.client_port == htons(f->cport),
	      "%s: port %u not owned by client port %u", r->name, port,
	      f->cport);
	CHECK(sn.flags == flags, "%s: snat flags %#x, expected %#x", r->name,
	      sn.flags, flags);
	CHECK(sn.last_seen + 1 >= want && sn.last_seen <= want + 1,
	      "%s: last_seen %u, expected about %u (hold %u ticks)", r->name,
	      sn.last_seen, want, hold);
}

static void cl_check_ct_flags(const struct row *r, const struct flow *f,
			      uint32_t flags)
{
	struct ct_view ct = {};

	ct_get(f->client, f->cport, VIP(f->vip), &ct);
	CHECK(ct.flags == flags, "%s: conntrack flags %#x, expected %#x",
	      r->name, ct.flags, flags);
}

static void cl_opened(const struct row *r)
{
	cl_port = port_of(&F_CA);
	cl_check_entry(r, &F_CA, cl_port, 0, KHA_SNAT_IDLE_TICKS);
}

static void cl_same_port(const struct row *r)
{
	CHECK(port_of(&F_CA) == cl_port, "%s: port %u, before %u", r->name,
	      port_of(&F_CA), cl_port);
	CHECK(snat_entries() == cl_snat_entries, "%s: %ld snat entries, "
	      "before %ld", r->name, snat_entries(), cl_snat_entries);
}

static void cl_client_fin(const struct row *r)
{
	cl_check_ct_flags(r, &F_CA, KHA_CT_F_CLIENT_FIN);
	/* half closed: the backend may still send, the idle hold stays */
	cl_check_entry(r, &F_CA, cl_port, KHA_SNAT_F_CLIENT_FIN,
		       KHA_SNAT_IDLE_TICKS);
}

/* a SYN on the closed 4-tuple: new port, old one free, flags clean */
static void cl_reopened(const struct row *r, const struct flow *f)
{
	struct snat_view sn;
	uint16_t p = port_of(f);

	CHECK(p != cl_port && p >= CL_LO && p <= CL_LO + 1,
	      "%s: port %u, the old one was %u", r->name, p, cl_port);
	CHECK(snat_get(cl_rkey(cl_port), &sn) != 0,
	      "%s: the old port %u is still claimed", r->name, cl_port);
	cl_check_ct_flags(r, f, 0);
	cl_check_entry(r, f, p, 0, KHA_SNAT_IDLE_TICKS);
	cl_old_port = cl_port;
	cl_port = p;
}

/* the backend's SYN-ACK moved the reopened flow: the old port is free */
static void cl_moved(const struct row *r)
{
	struct snat_view sn;

	CHECK(snat_get(cl_rkey(cl_old_port), &sn) != 0,
	      "%s: the old port %u is still claimed", r->name, cl_old_port);
}

/* ... or, closed by the backend first, still held for its TIME_WAIT */
static void cl_moved_kept(const struct row *r)
{
	cl_check_entry(r, &F_CC, cl_old_port,
		       KHA_SNAT_F_FIN_BOTH | KHA_SNAT_F_BACKEND_FIRST,
		       KHA_SNAT_TW_TICKS);
}

static void cl_reopened_a(const struct row *r)
{
	cl_reopened(r, &F_CA);
}

static void cl_reopened_c(const struct row *r)
{
	cl_reopened(r, &F_CC);
}

static void cl_c_backend_fin(const struct row *r)
{
	cl_check_entry(r, &F_CC, cl_port,
		       KHA_SNAT_F_BACKEND_FIN | KHA_SNAT_F_BACKEND_FIRST,
		       KHA_SNAT_IDLE_TICKS);
}

/* reopened after the backend's FIN: the old port waits out TIME_WAIT */
static void cl_reopened_kept(const struct row *r)
{
	uint16_t p = port_of(&F_CC);

	CHECK(p != cl_port && p >= CL_LO && p <= CL_LO + 1,
	      "%s: port %u, the old one was %u", r->name, p, cl_port);
	cl_check_ct_flags(r, &F_CC, 0);
	cl_check_entry(r, &F_CC, cl_port,
		       KHA_SNAT_F_FIN_BOTH | KHA_SNAT_F_BACKEND_FIRST,
		       KHA_SNAT_TW_TICKS);
	cl_old_port = cl_port;
	cl_port = p;
}

static void cl_age_old_tw(void)
{
	set_snat_range(cl_old_port, cl_old_port);
	cl_age(cl_old_port, KHA_SNAT_TW_TICKS + 1);
}

/* F_CA took the old port; F_CC's reopened flow is untouched */
static void cl_old_taken(const struct row *r)
{
	CHECK(port_of(&F_CA) == cl_old_port, "%s: port %u, expected %u",
	      r->name, port_of(&F_CA), cl_old_port);
	CHECK(port_of(&F_CC) == cl_port,
	      "%s: the reopened flow lost its conntrack entry (port %u)",
	      r->name, port_of(&F_CC));
	default_range();
}

static void cl_fin_both_client_first(const struct row *r)
{
	cl_check_entry(r, &F_CA, cl_port, KHA_SNAT_F_FIN_BOTH,
		       KHA_SNAT_CLOSE_TICKS);
}

/* F_CB took F_CA's port; F_CA's flow is gone with it */
static void cl_taken_by_b(const struct row *r)
{
	struct ct_view ct;

	CHECK(port_of(&F_CB) == cl_port, "%s: port %u, expected %u", r->name,
	      port_of(&F_CB), cl_port);
	CHECK(ct_get(F_CA.client, F_CA.cport, VIP(7), &ct) != 0,
	      "%s: the closed flow kept its conntrack entry", r->name);
	cl_check_entry(r, &F_CB, cl_port, 0, KHA_SNAT_IDLE_TICKS);
}

static void cl_backend_fin_first(const struct row *r)
{
	cl_check_entry(r, &F_CB, cl_port,
		       KHA_SNAT_F_BACKEND_FIN | KHA_SNAT_F_BACKEND_FIRST,
		       KHA_SNAT_IDLE_TICKS);
}

static void cl_fin_both_backend_first(const struct row *r)
{
	cl_check_ct_flags(r, &F_CB, KHA_CT_F_CLIENT_FIN);
	cl_check_entry(r, &F_CB, cl_port,
		       KHA_SNAT_F_FIN_BOTH | KHA_SNAT_F_BACKEND_FIRST,
		       KHA_SNAT_TW_TICKS);
}

static void cl_taken_by_c(const struct row *r)
{
	struct ct_view ct;

	CHECK(port_of(&F_CC) == cl_port, "%s: port %u, expected %u", r->name,
	      port_of(&F_CC), cl_port);
	CHECK(ct_get(F_CB.client, F_CB.cport, VIP(7), &ct) != 0,
	      "%s: the closed flow kept its conntrack entry", r->name);
}

static void local_fin(const struct row *r)
{
	cl_check_ct_flags(r, &F_LOCAL, KHA_CT_F_CLIENT_FIN);
}

static void local_reopened(const struct row *r)
{
	cl_check_ct_flags(r, &F_LOCAL, 0);
}

static void cl_client_rst(const struct row *r)
{
	cl_check_ct_flags(r, &F_CC, KHA_CT_F_CLIENT_RST);
	cl_check_entry(r, &F_CC, cl_port, KHA_SNAT_F_RST, KHA_SNAT_RST_TICKS);
}

/* ---- TIME_WAIT reuse (bpf/flows.h snat_tw_reusable()) ------------------ */

/*
 * One SNAT port (TW_PORT), backend 8. F_TA closes backend-first with TCP
 * timestamps; the backend's TIME_WAIT then accepts a SYN on the same
 * 4-tuple only with a newer timestamp, so F_TB may take the port before
 * the 60 s hold is over exactly when its SYN carries one, once the old
 * flow is 2 ticks quiet.
 */
#define TW_PORT 23000
static const struct flow F_TA = { CLIENT, 41200, 7 };
static const struct flow F_TB = { CLIENT, 41201, 7 };

/* MSS, NOP, NOP, TS (TSval @v, TSecr 0): a Linux client's SYN options */
#define TS_SYN_OPT(v) { 2, 4, 0x05, 0xb4, 1, 1, 8, 10, (v) >> 24, \
			((v) >> 16) & 0xff, ((v) >> 8) & 0xff, (v) & 0xff, \
			0, 0, 0, 0 }
/* NOP, NOP, TS (TSval @v, TSecr 77): any later segment's */
#define TS_OPT(v) { 1, 1, 8, 10, (v) >> 24, ((v) >> 16) & 0xff, \
		    ((v) >> 8) & 0xff, (v) & 0xff, 0, 0, 0, 77 }
static const uint8_t TS_SYN_1000[16] = TS_SYN_OPT(1000);
static const uint8_t TS_SYN_2005[16] = TS_SYN_OPT(2005);
static const uint8_t TS_SYN_2006[16] = TS_SYN_OPT(2006);
static const uint8_t TS_SYN_9000[16] = TS_SYN_OPT(9000);
static const uint8_t TS_2000[12] = TS_OPT(2000);
static const uint8_t TS_2005[12] = TS_OPT(2005);
static const uint8_t TS_1500[12] = TS_OPT(1500);

#define TS_SYN(seq_, o_) { .flags = PKT_TCP_SYN, .seq = (seq_), \
			   .tcp_opts = (o_), .tcp_opts_len = 16 }
#define TS_SEG(fl_, o_) { .flags = (fl_), .seq = 1001, .ack = 77, \
			  .tcp_opts = (o_), .tcp_opts_len = 12 }

static void tw_range(void)
{
	set_snat_range(TW_PORT, TW_PORT);
}

/* the `snat_tw` record of TW_PORT's slot */
static int tw_record(struct kha_snat_tw *out)
{
	struct kha_snat_slot *s = snat_slot(cl_rkey(TW_PORT));
	__u32 idx;

	if (!s)
		return -1;
	idx = (__u32)(s - snat_tab);
	return bpf_map_lookup_elem(bpf_map__fd(skel->maps.snat_tw), &idx, out);
}

static void tw_check_record(const struct row *r, __u32 tsval)
{
	struct kha_snat_tw t = {};

	CHECK(!tw_record(&t), "%s: no record", r->name);
	CHECK(t.valid && t.tsval == tsval && t.client == F_TA.client &&
		      t.client_port == htons(F_TA.cport) &&
		      t.port == htons(TW_PORT),
	      "%s: record valid %u tsval %u port %u, expected tsval %u",
	      r->name, t.valid, t.tsval, ntohs(t.port), tsval);
}

static void tw_opened(const struct row *r)
{
	CHECK(port_of(&F_TA) == TW_PORT, "%s: port %u", r->name,
	      port_of(&F_TA));
}

static void tw_fin_2000(const struct row *r)
{
	tw_check_record(r, 2000);
	cl_check_entry(r, &F_TA, TW_PORT,
		       KHA_SNAT_F_FIN_BOTH | KHA_SNAT_F_BACKEND_FIRST,
		       KHA_SNAT_TW_TICKS);
}

static void tw_ack_2005(const struct row *r)
{
	tw_check_record(r, 2005);
}

/* a retransmission with an older timestamp does not lower the record */
static void tw_still_2005(const struct row *r)
{
	tw_check_record(r, 2005);
}

/* the old flow is 2 ticks quiet: the TIME_WAIT reuse rule applies now */
static void tw_age(void)
{
	cl_age(TW_PORT, KHA_SNAT_TW_REUSE_TICKS);
}

static void tw_taken_by_b(const struct row *r)
{
	struct ct_view ct;

	CHECK(port_of(&F_TB) == TW_PORT, "%s: port %u, expected %u", r->name,
	      port_of(&F_TB), TW_PORT);
	CHECK(ct_get(F_TA.client, F_TA.cport, VIP(7), &ct) != 0,
	      "%s: the old flow kept its conntrack entry", r->name);
	cl_check_entry(r, &F_TB, TW_PORT, 0, KHA_SNAT_IDLE_TICKS);
}

static const struct flow F_TC = { CLIENT, 41202, 7 };
static const uint8_t TS_3000[12] = TS_OPT(3000);
static const uint8_t TS_SYN_2999[16] = TS_SYN_OPT(2999);
static const uint8_t TS_SYN_3001[16] = TS_SYN_OPT(3001);

/* F_TB closed client first: FIN both ways, the short hold */
static void tw_b_closed(const struct row *r)
{
	cl_check_entry(r, &F_TB, TW_PORT, KHA_SNAT_F_FIN_BOTH,
		       KHA_SNAT_CLOSE_TICKS);
}

static void tw_taken_by_c(const struct row *r)
{
	struct ct_view ct;

	CHECK(port_of(&F_TC) == TW_PORT, "%s: port %u, expected %u", r->name,
	      port_of(&F_TC), TW_PORT);
	CHECK(ct_get(F_TB.client, F_TB.cport, VIP(7), &ct) != 0,
	      "%s: the old flow kept its conntrack entry", r->name);
	default_range();
}

/* ---- malformed inputs ------------------------------------------------ */

static size_t cut_to_eth(uint8_t *b, size_t len)
{
	return ETH_HLEN;
}

static size_t cut_ip_hdr(uint8_t *b, size_t len)
{
	return ETH_HLEN + 12;
}

static size_t ihl_4(uint8_t *b, size_t len)
{
	pkt_ip(b)->ihl = 4;
	pkt_fix_csums(b, len);
	return len;
}

static size_t version_6(uint8_t *b, size_t len)
{
	pkt_ip(b)->version = 6;
	return len;
}

static size_t tot_len_past_frame(uint8_t *b, size_t len)
{
	pkt_ip(b)->tot_len = htons(len - ETH_HLEN + 1);
	pkt_fix_csums(b, len);
	return len;
}

static size_t ihl_past_tot_len(uint8_t *b, size_t len)
{
	pkt_ip(b)->ihl = 15; /* 60 bytes, tot_len is 40 */
	return len + 40;     /* frame long enough to hold the header */
}

static size_t ports_cut(uint8_t *b, size_t len)
{
	pkt_ip(b)->tot_len = htons(20 + 2);
	pkt_fix_csums(b, len);
	return ETH_HLEN + 22;
}

static size_t tcp_cut(uint8_t *b, size_t len)
{
	pkt_ip(b)->tot_len = htons(20 + 12);
	pkt_fix_csums(b, len);
	return ETH_HLEN + 32;
}

static size_t doff_4(uint8_t *b, size_t len)
{
	pkt_tcp(b)->doff = 4;
	pkt_fix_csums(b, len);
	return len;
}

static size_t doff_past_tot_len(uint8_t *b, size_t len)
{
	pkt_tcp(b)->doff = 15;
	pkt_fix_csums(b, len);
	return len;
}

static size_t eth_padding(uint8_t *b, size_t len)
{
	/* a 54-byte frame padded to Ethernet's 60: tot_len says 40 */
	memset(b + len, 0, 60 - len);
	return 60;
}

static size_t to_arp(uint8_t *b, size_t len)
{
	((struct ethhdr *)b)->h_proto = htons(ETH_P_ARP);
	return 42;
}

static size_t to_udp(uint8_t *b, size_t len)
{
	pkt_ip(b)->protocol = IPPROTO_UDP;
	pkt_fix_csums(b, len);
	return len;
}

static size_t expect_padded_backend(const struct row *r, uint8_t *exp)
{
	size_t len = expect_backend(r, exp);

	memset(exp + len, 0, 60 - len);
	return 60;
}

/* ---- ICMP fragmentation needed ---------------------------------------- */

/*
 * The packet the LB sent to F3's backend (VIP:snat -> backend), quoted by a
 * router in an ICMP frag-needed addressed to the VIP.
 */
static const struct flow F3 = { CLIENT, 47000, 0 };
static const struct flow F3_OFF = { IP4(172, 16, 7, 7), 47001, 0 };
static int icmp_quote_len = 0; /* bytes of the inner IP packet quoted */

static size_t icmp_from_backend_side(const struct flow *f, int quote_l4,
				     uint8_t *buf)
{
	uint8_t inner[PKT_MAX];
	struct pkt_tcp4 s = DATA(100);
	struct ct_view ct = {};

	ct_get(f->client, f->cport, VIP(f->vip), &ct);
	s.saddr = VIP(f->vip);
	s.sport = ntohs(ct.snat_port);
	s.daddr = ct.backend.v4;
	s.dport = BE_PORT;
	s.ip_opts = IP_OPTS8;
	s.ip_opts_len = 8;
	pkt_build_tcp4(inner, &s);
	return pkt_build_frag_needed(buf, MAC_LB, MAC_GW, ROUTER, VIP(f->vip),
				     1400, inner, 28 + quote_l4);
}

/* what the client must get: its own packet quoted, client -> VIP */
static size_t expect_icmp_to_client(const struct row *r, uint8_t *exp)
{
	uint8_t inner[PKT_MAX];
	struct pkt_tcp4 s = DATA(100);
	size_t len;

	s.saddr = r->f.client;
	s.sport = r->f.cport;
	s.daddr = VIP(r->f.vip);
	s.dport = VIP_PORT;
	s.ip_opts = IP_OPTS8;
	s.ip_opts_len = 8;
	pkt_build_tcp4(inner, &s);
	len = pkt_build_frag_needed(exp, mac_of(r->f.client), MAC_LB, ROUTER,
				    r->f.client, 1400, inner,
				    28 + icmp_quote_len);
	return len;
}

static size_t icmp_in_full(uint8_t *b, size_t len)
{
	icmp_quote_len = 20 + 100;
	return icmp_from_backend_side(&F3, icmp_quote_len, b);
}

static size_t icmp_in_8(uint8_t *b, size_t len)
{
	icmp_quote_len = 8;
	return icmp_from_backend_side(&F3_OFF, icmp_quote_len, b);
}

static size_t icmp_in_4(uint8_t *b, size_t len)
{
	icmp_quote_len = 4;
	return icmp_from_backend_side(&F3, icmp_quote_len, b);
}

static size_t icmp_unknown_flow(uint8_t *b, size_t len)
{
	uint8_t inner[PKT_MAX];
	struct pkt_tcp4 s = DATA(10);

	s.saddr = VIP(0);
	s.sport = 31999;
	s.daddr = IP4(10, 99, 0, 11);
	s.dport = BE_PORT;
	pkt_build_tcp4(inner, &s);
	return pkt_build_frag_needed(b, MAC_LB, MAC_GW, ROUTER, VIP(0), 1400,
				     inner, 48);
}

/* the LB -> client leg: a router near the client quotes VIP -> client */
static size_t icmp_from_client_side(const struct flow *f, uint8_t *buf)
{
	uint8_t inner[PKT_MAX];
	struct pkt_tcp4 s = DATA(200);

	s.saddr = VIP(f->vip);
	s.sport = VIP_PORT;
	s.daddr = f->client;
	s.dport = f->cport;
	pkt_build_tcp4(inner, &s);
	return pkt_build_frag_needed(buf, MAC_LB, MAC_GW, ROUTER, VIP(f->vip),
				     1280, inner, 20 + 20 + 64);
}

static size_t icmp_client_side_f3(uint8_t *b, size_t len)
{
	return icmp_from_client_side(&F3, b);
}

static size_t icmp_client_side_local(uint8_t *b, size_t len)
{
	return icmp_from_client_side(&F_LOCAL, b);
}

/* the backend gets its own packet back: backend -> VIP:snat (or client) */
static size_t expect_icmp_to_backend(const struct row *r, uint8_t *exp)
{
	uint8_t inner[PKT_MAX];
	struct pkt_tcp4 s = DATA(200);
	struct ct_view ct = {};
	const uint8_t *dmac = MAC_LB, *smac = MAC_GW;

	ct_get(r->f.client, r->f.cport, VIP(r->f.vip), &ct);
	s.saddr = ct.backend.v4;
	s.sport = BE_PORT;
	if (ct.snat_port) {
		s.daddr = VIP(r->f.vip);
		s.dport = ntohs(ct.snat_port);
		dmac = mac_of(ct.backend.v4);
		smac = MAC_LB;
	} else {
		s.daddr = r->f.client;
		s.dport = r->f.cport;
	}
	pkt_build_tcp4(inner, &s);
	return pkt_build_frag_needed(exp, dmac, smac, ROUTER, ct.backend.v4,
				     1280, inner, 20 + 20 + 64);
}

static size_t icmp_echo(uint8_t *b, size_t len)
{
	uint8_t inner[PKT_MAX];
	size_t n;

	pkt_build_tcp4(inner, &(struct pkt_tcp4){ .saddr = VIP(0) });
	n = pkt_build_frag_needed(b, MAC_LB, MAC_CLIENT, CLIENT, VIP(0), 0,
				  inner, 28);
	b[ETH_HLEN + 20] = 8; /* echo request */
	b[ETH_HLEN + 21] = 0;
	pkt_fix_csums(b, n);
	return n;
}

/* ---- the table itself ------------------------------------------------- */

#define RAW(src, sp, dst, dp, fl)                                              \
	{ .dmac = { 0x02, 0xdd, 0, 0, 0, 0x01 },                              \
	  .smac = { 0x02, 0xdd, 0, 0, 0, 0x32 }, .saddr = (src),              \
	  .daddr = (dst), .sport = (sp), .dport = (dp), .flags = (fl),        \
	  .seq = 9, .payload_len = 0 }

static const struct row rows_paths[] = {
	/* path 1+2: new flow, full NAT, out the same interface */
	{ "SYN to VIP: new flow, full NAT, XDP_TX", NULL, IN_CLIENT, F1,
	  SYN(1000), NULL, XDP_TX, EXP_BACKEND, -1, NULL, -1, 1, NULL },
	{ "established packet, odd payload", NULL, IN_CLIENT, F1, DATA(333),
	  NULL, XDP_TX, EXP_BACKEND, -1, NULL, -1, 0, NULL },
	{ "established packet, IPv4 options", NULL, IN_CLIENT, F1,
	  { .flags = PKT_TCP_ACK, .seq = 1334, .ack = 77, .payload_len = 1,
	    .ip_opts = IP_OPTS, .ip_opts_len = 12 },
	  NULL, XDP_TX, EXP_BACKEND, -1, NULL, -1, 0, NULL },
	{ "established packet, Ethernet padding", NULL, IN_CLIENT, F1,
	  { .flags = PKT_TCP_ACK, .seq = 1335, .ack = 77 }, eth_padding,
	  XDP_TX, EXP_CUSTOM, -1, expect_padded_backend, -1, 0, NULL },
	{ "SYN with IPv4 options: new flow", NULL, IN_CLIENT, F_OPT,
	  { .flags = PKT_TCP_SYN, .seq = 7, .ip_opts = IP_OPTS,
	    .ip_opts_len = 12, .tcp_opts = MSS_OPT, .tcp_opts_len = 4 },
	  NULL, XDP_TX, EXP_BACKEND, -1, NULL, -1, 1, NULL },
	/* path 3 */
	{ "backend reply, odd payload", NULL, IN_REPLY, F1, DATA(777), NULL,
	  XDP_TX, EXP_CLIENT, 0, NULL, -1, 0, NULL },
	{ "backend reply, IPv4 options", NULL, IN_REPLY, F_OPT,
	  { .flags = PKT_TCP_SYN | PKT_TCP_ACK, .seq = 5, .ack = 8,
	    .ip_opts = IP_OPTS8, .ip_opts_len = 8 },
	  NULL, XDP_TX, EXP_CLIENT, 0, NULL, -1, 0, NULL },
	{ "SYN from an off-link client", NULL, IN_CLIENT, F_OFF, SYN(1),
	  NULL, XDP_TX, EXP_BACKEND, -1, NULL, -1, 1, NULL },
	{ "reply to an off-link client goes to the gateway", NULL, IN_REPLY,
	  F_OFF, DATA(64), NULL, XDP_TX, EXP_CLIENT, 0, NULL, -1, 0, NULL },
};

static const struct row rows_not_ours[] = {
	/* not ours: untouched */
	{ "SSH to the node", NULL, IN_RAW, {},
	  RAW(CLIENT, 50000, LB_ADDR, 22, PKT_TCP_SYN), NULL, XDP_PASS,
	  EXP_SAME, 0, NULL, -1, 0, NULL },
	{ "direct :6443 to the VIP address", NULL, IN_RAW, {},
	  RAW(CLIENT, 50001, VIP(0), 6443, PKT_TCP_SYN), NULL, XDP_PASS,
	  EXP_SAME, 0, NULL, -1, 0, NULL },
	{ "SNAT-range port on the VIP without an entry", NULL, IN_RAW, {},
	  RAW(IP4(10, 99, 0, 11), 6443, VIP(0), 20001, PKT_TCP_ACK), NULL,
	  XDP_PASS, EXP_SAME, 0, NULL, -1, 0, NULL },
	{ "ARP", NULL, IN_RAW, {}, RAW(CLIENT, 1, VIP(0), 8443, 0), to_arp,
	  XDP_PASS, EXP_SAME, 0, NULL, -1, 0, NULL },
	{ "UDP to VIP:8443", NULL, IN_RAW, {},
	  RAW(CLIENT, 1, VIP(0), 8443, 0), to_udp, XDP_PASS, EXP_SAME, 0,
	  NULL, -1, 0, NULL },
};

static const struct row rows_malformed[] = {
	/* malformed */
	{ "Ethernet header only", NULL, IN_RAW, {},
	  RAW(CLIENT, 1, VIP(0), 8443, PKT_TCP_SYN), cut_to_eth, XDP_PASS,
	  EXP_SAME, 0, NULL, KHA_R_pass_malformed, 0, NULL },
	{ "truncated IPv4 header", NULL, IN_RAW, {},
	  RAW(CLIENT, 1, VIP(0), 8443, PKT_TCP_SYN), cut_ip_hdr, XDP_PASS,
	  EXP_SAME, 0, NULL, KHA_R_pass_malformed, 0, NULL },
	{ "IHL 4", NULL, IN_RAW, {}, RAW(CLIENT, 1, VIP(0), 8443, PKT_TCP_SYN),
	  ihl_4, XDP_PASS, EXP_SAME, 0, NULL, KHA_R_pass_malformed, 0, NULL },
	{ "IP version 6 in an IPv4 frame", NULL, IN_RAW, {},
	  RAW(CLIENT, 1, VIP(0), 8443, PKT_TCP_SYN), version_6, XDP_PASS,
	  EXP_SAME, 0, NULL, KHA_R_pass_malformed, 0, NULL },
	{ "tot_len past the frame", NULL, IN_RAW, {},
	  RAW(CLIENT, 1, VIP(0), 8443, PKT_TCP_SYN), tot_len_past_frame,
	  XDP_PASS, EXP_SAME, 0, NULL, KHA_R_pass_malformed, 0, NULL },
	{ "IHL past tot_len", NULL, IN_RAW, {},
	  RAW(CLIENT, 1, VIP(0), 8443, PKT_TCP_SYN), ihl_past_tot_len,
	  XDP_PASS, EXP_SAME, 0, NULL, KHA_R_pass_malformed, 0, NULL },
	{ "TCP ports truncated", NULL, IN_RAW, {},
	  RAW(CLIENT, 1, VIP(0), 8443, PKT_TCP_SYN), ports_cut, XDP_PASS,
	  EXP_SAME, 0, NULL, KHA_R_pass_malformed, 0, NULL },
	{ "first fragment to VIP", NULL, IN_CLIENT, F1,
	  { .flags = PKT_TCP_ACK, .seq = 1336, .frag_off = 0x2000,
	    .payload_len = 64 },
	  NULL, XDP_DROP, EXP_NONE, 0, NULL, KHA_R_drop_fragment, 0, NULL },
	{ "later fragment to VIP: kernel reassembly discards it", NULL,
	  IN_CLIENT, F1, { .flags = PKT_TCP_ACK, .frag_off = 100,
			   .payload_len = 64 },
	  NULL, XDP_PASS, EXP_SAME, 0, NULL, -1, 0, NULL },
	{ "fragment not to a VIP", NULL, IN_RAW, {},
	  { .saddr = CLIENT, .daddr = LB_ADDR, .sport = 1, .dport = 22,
	    .frag_off = 0x2000, .payload_len = 8 },
	  NULL, XDP_PASS, EXP_SAME, 0, NULL, -1, 0, NULL },
	{ "TCP header truncated, to VIP", NULL, IN_CLIENT, F1,
	  { .flags = PKT_TCP_ACK }, tcp_cut, XDP_DROP, EXP_NONE, 0, NULL,
	  KHA_R_drop_bad_tcp, 0, NULL },
	{ "TCP doff 4, to VIP", NULL, IN_CLIENT, F1,
	  { .flags = PKT_TCP_ACK }, doff_4, XDP_DROP, EXP_NONE, 0, NULL,
	  KHA_R_drop_bad_tcp, 0, NULL },
	{ "TCP doff past tot_len, to VIP", NULL, IN_CLIENT, F1,
	  { .flags = PKT_TCP_ACK }, doff_past_tot_len, XDP_DROP, EXP_NONE, 0,
	  NULL, KHA_R_drop_bad_tcp, 0, NULL },
	{ "TCP doff 4, not to a VIP", NULL, IN_RAW, {},
	  RAW(CLIENT, 1, LB_ADDR, 22, PKT_TCP_ACK), doff_4, XDP_PASS,
	  EXP_SAME, 0, NULL, -1, 0, NULL },
};

static const struct row rows_snat_ports[] = {
	/* SNAT port range exhausted: one port, two flows to one backend */
	{ "tiny SNAT range: first flow gets its only port", tiny_range,
	  IN_CLIENT, F_EX1, SYN(1), NULL, XDP_TX, EXP_BACKEND, 8, NULL, -1, 1,
	  check_ex1_port },
	{ "tiny SNAT range: second flow finds it exhausted", NULL, IN_CLIENT,
	  F_EX2, SYN(1), NULL, XDP_DROP, EXP_NONE, 0, NULL,
	  KHA_R_drop_snat_exhausted, 0, check_no_ct },
	{ "tiny SNAT range: an idle flow's port is reclaimed", age_ex1,
	  IN_CLIENT, F_EX2, SYN(2), NULL, XDP_TX, EXP_BACKEND, 8, NULL,
	  KHA_R_snat_reclaimed, 1, check_reclaimed },
	{ "backend reset: its port is free soon", NULL, IN_REPLY, F_EX2,
	  { .flags = PKT_TCP_RST | PKT_TCP_ACK, .seq = 1 }, NULL, XDP_TX,
	  EXP_CLIENT, 0, NULL, -1, 0, check_rst_marks },
};

/* the flow moved: in conntrack, not in ct_syn (run_row() checks the count) */
static void check_moved(const struct row *r)
{
	struct kha_flow_key k = flow_key(r->f.client, r->f.cport,
					 VIP(r->f.vip), VIP_PORT);

	CHECK(kha_ct_find(ct_tab, &k) != NULL, "%s: not in conntrack",
	      r->name);
	CHECK(!in_ct_syn(&r->f), "%s: still in ct_syn", r->name);
}

/*
 * F_FULL's ct_syn line held by eight live entries of other flows: its SYN
 * goes to conntrack, as every SYN did before ct_syn (ct_syn_full).
 */
static const struct flow F_FULL = { CLIENT, 46000, 0 };
static uint64_t full_saved[KHA_CT_SYN_WAYS];

static uint32_t full_line(void)
{
	struct kha_flow_key k = flow_key(F_FULL.client, F_FULL.cport,
					 VIP(F_FULL.vip), VIP_PORT);

	return kha_ct_syn_probe(kha_ct_home(&k), 0);
}

static void full_setup(void)
{
	struct kha_flow_key k = flow_key(F_FULL.client, F_FULL.cport,
					 VIP(F_FULL.vip), VIP_PORT);
	uint32_t base = full_line(), tag = kha_ct_syn_tag(kha_ct_home(&k));

	for (uint32_t i = 0; i < KHA_CT_SYN_WAYS; i++) {
		full_saved[i] = ct_syn_tab[base + i];
		ct_syn_tab[base + i] = kha_ct_syn_entry(
			kha_flow_now(), (tag + 1) & 0x7ff, i);
	}
}

static void check_full(const struct row *r)
{
	struct kha_flow_key k = flow_key(F_FULL.client, F_FULL.cport,
					 VIP(F_FULL.vip), VIP_PORT);
	uint32_t base = full_line();

	CHECK(kha_ct_find(ct_tab, &k) != NULL,
	      "%s: the flow is not in conntrack", r->name);
	CHECK(!in_ct_syn(&F_FULL), "%s: the flow is in ct_syn", r->name);
	for (uint32_t i = 0; i < KHA_CT_SYN_WAYS; i++)
		ct_syn_tab[base + i] = full_saved[i];
}

static const struct row rows_close[] = {
	{ "close: a SYN opens a flow", cl_range2, IN_CLIENT, F_CA, SYN(1),
	  NULL, XDP_TX, EXP_BACKEND, 8, NULL, -1, 1, cl_opened },
	{ "close: a retransmitted SYN of a live flow keeps its port", cl_count,
	  IN_CLIENT, F_CA, SYN(1), NULL, XDP_TX, EXP_BACKEND, 8, NULL, -1, 0,
	  cl_same_port },
	{ "close: the backend's SYN-ACK moves the flow to conntrack", NULL,
	  IN_REPLY, F_CA, SYN_ACK, NULL, XDP_TX, EXP_CLIENT, 0, NULL, -1, 0,
	  check_moved },
	{ "close: the client's FIN is recorded", NULL, IN_CLIENT, F_CA,
	  FIN_ACK, NULL, XDP_TX, EXP_BACKEND, 8, NULL, -1, 0, cl_client_fin },
	{ "close: a SYN after the client's FIN is a new flow, new port", NULL,
	  IN_CLIENT, F_CA, SYN(5000), NULL, XDP_TX, EXP_BACKEND, 8, NULL, -1,
	  1, cl_reopened_a },
	{ "close: the backend's SYN-ACK moves the reopened flow", NULL,
	  IN_REPLY, F_CA, SYN_ACK, NULL, XDP_TX, EXP_CLIENT, 0, NULL, -1, 0,
	  cl_moved },
	{ "close: client FIN, then backend FIN: short hold", NULL, IN_CLIENT,
	  F_CA, FIN_ACK, NULL, XDP_TX, EXP_BACKEND, 8, NULL, -1, 0, NULL },
	{ "close: client FIN, then backend FIN: short hold (reply)", NULL,
	  IN_REPLY, F_CA, FIN_ACK, NULL, XDP_TX, EXP_CLIENT, 0, NULL, -1, 0,
	  cl_fin_both_client_first },
	{ "close: after the short hold the port goes to another flow",
	  cl_age_short, IN_CLIENT, F_CB, SYN(1), NULL, XDP_TX, EXP_BACKEND, 8,
	  NULL, KHA_R_snat_reclaimed, 1, cl_taken_by_b },
	{ "close: the backend's FIN first", NULL, IN_REPLY, F_CB, FIN_ACK,
	  NULL, XDP_TX, EXP_CLIENT, 0, NULL, -1, 0, cl_backend_fin_first },
	{ "close: then the client's FIN: TIME_WAIT hold", NULL, IN_CLIENT,
	  F_CB, FIN_ACK, NULL, XDP_TX, EXP_BACKEND, 8, NULL, -1, 0,
	  cl_fin_both_backend_first },
	{ "close: backend closed first: still held after the short hold",
	  cl_age_short, IN_CLIENT, F_CC, SYN(1), NULL, XDP_DROP, EXP_NONE, 0,
	  NULL, KHA_R_drop_snat_exhausted, 0, check_no_ct },
	{ "close: backend closed first: free after the TIME_WAIT hold",
	  cl_age_tw, IN_CLIENT, F_CC, SYN(2), NULL, XDP_TX, EXP_BACKEND, 8,
	  NULL, KHA_R_snat_reclaimed, 1, cl_taken_by_c },
	{ "close: the client's RST is recorded", NULL, IN_CLIENT, F_CC,
	  RST_ACK, NULL, XDP_TX, EXP_BACKEND, 8, NULL, -1, 0, cl_client_rst },
	{ "close: a SYN after the client's RST is a new flow, new port",
	  cl_range2, IN_CLIENT, F_CC, SYN(9000), NULL, XDP_TX, EXP_BACKEND, 8,
	  NULL, -1, 1, cl_reopened_c },
	{ "close: the backend's SYN-ACK moves it (after the RST)", NULL,
	  IN_REPLY, F_CC, SYN_ACK, NULL, XDP_TX, EXP_CLIENT, 0, NULL, -1, 0,
	  cl_moved },
	{ "close: the backend's FIN first (again)", NULL, IN_REPLY, F_CC,
	  FIN_ACK, NULL, XDP_TX, EXP_CLIENT, 0, NULL, -1, 0,
	  cl_c_backend_fin },
	{ "close: a SYN after the backend's FIN: new port, old one held",
	  NULL, IN_CLIENT, F_CC, SYN(12000), NULL, XDP_TX, EXP_BACKEND, 8,
	  NULL, -1, 1, cl_reopened_kept },
	{ "close: the backend's SYN-ACK moves it, the old port stays held",
	  NULL, IN_REPLY, F_CC, SYN_ACK, NULL, XDP_TX, EXP_CLIENT, 0, NULL, -1,
	  0, cl_moved_kept },
	{ "close: the held port, once free, leaves the reopened flow alone",
	  cl_age_old_tw, IN_CLIENT, F_CA, SYN(1), NULL, XDP_TX, EXP_BACKEND,
	  8, NULL, KHA_R_snat_reclaimed, 1, cl_old_taken },
};

static const struct row rows_tw_reuse[] = {
	{ "TIME_WAIT reuse: a SYN with a timestamp opens a flow", tw_range,
	  IN_CLIENT, F_TA, TS_SYN(1, TS_SYN_1000), NULL, XDP_TX, EXP_BACKEND,
	  8, NULL, -1, 1, tw_opened },
	{ "TIME_WAIT reuse: the backend's FIN first", NULL, IN_REPLY, F_TA,
	  TS_SEG(PKT_TCP_FIN | PKT_TCP_ACK, TS_2000), NULL, XDP_TX,
	  EXP_CLIENT, 0, NULL, -1, 0, NULL },
	{ "TIME_WAIT reuse: the client's FIN records its timestamp", NULL,
	  IN_CLIENT, F_TA, TS_SEG(PKT_TCP_FIN | PKT_TCP_ACK, TS_2000), NULL,
	  XDP_TX, EXP_BACKEND, 8, NULL, -1, 0, tw_fin_2000 },
	{ "TIME_WAIT reuse: a later ACK raises it", NULL, IN_CLIENT, F_TA,
	  TS_SEG(PKT_TCP_ACK, TS_2005), NULL, XDP_TX, EXP_BACKEND, 8, NULL,
	  -1, 0, tw_ack_2005 },
	{ "TIME_WAIT reuse: an older retransmission does not lower it", NULL,
	  IN_CLIENT, F_TA, TS_SEG(PKT_TCP_FIN | PKT_TCP_ACK, TS_1500), NULL,
	  XDP_TX, EXP_BACKEND, 8, NULL, -1, 0, tw_still_2005 },
	{ "TIME_WAIT reuse: not while the old flow's last packets may fly",
	  NULL, IN_CLIENT, F_TB, TS_SYN(1, TS_SYN_9000), NULL, XDP_DROP,
	  EXP_NONE, 0, NULL, KHA_R_drop_snat_exhausted, 0, check_no_ct },
	{ "TIME_WAIT reuse: not for a timestamp the backend would refuse",
	  tw_age, IN_CLIENT, F_TB, TS_SYN(1, TS_SYN_2005), NULL, XDP_DROP,
	  EXP_NONE, 0, NULL, KHA_R_drop_snat_exhausted, 0, check_no_ct },
	{ "TIME_WAIT reuse: not for a SYN without a timestamp", NULL,
	  IN_CLIENT, F_TB, SYN(1), NULL, XDP_DROP, EXP_NONE, 0, NULL,
	  KHA_R_drop_snat_exhausted, 0, check_no_ct },
	{ "TIME_WAIT reuse: a newer timestamp takes the port", NULL,
	  IN_CLIENT, F_TB, TS_SYN(1, TS_SYN_2006), NULL, XDP_TX, EXP_BACKEND,
	  8, NULL, KHA_R_snat_tw_reuse, 1, tw_taken_by_b },
	/* a client-first close: the backend may be in TIME_WAIT too (a
	 * simultaneous close), the same rule lets its port go early */
	{ "TIME_WAIT reuse: client-first close, the client's FIN", NULL,
	  IN_CLIENT, F_TB, TS_SEG(PKT_TCP_FIN | PKT_TCP_ACK, TS_3000), NULL,
	  XDP_TX, EXP_BACKEND, 8, NULL, -1, 0, NULL },
	{ "TIME_WAIT reuse: client-first close, the backend's FIN", NULL,
	  IN_REPLY, F_TB, TS_SEG(PKT_TCP_FIN | PKT_TCP_ACK, TS_3000), NULL,
	  XDP_TX, EXP_CLIENT, 0, NULL, -1, 0, tw_b_closed },
	{ "TIME_WAIT reuse: client-first close, not at once", NULL,
	  IN_CLIENT, F_TC, TS_SYN(1, TS_SYN_9000), NULL, XDP_DROP, EXP_NONE,
	  0, NULL, KHA_R_drop_snat_exhausted, 0, check_no_ct },
	{ "TIME_WAIT reuse: client-first close, not for an older timestamp",
	  tw_age, IN_CLIENT, F_TC, TS_SYN(1, TS_SYN_2999), NULL, XDP_DROP,
	  EXP_NONE, 0, NULL, KHA_R_drop_snat_exhausted, 0, check_no_ct },
	{ "TIME_WAIT reuse: client-first close, a newer timestamp takes it",
	  NULL, IN_CLIENT, F_TC, TS_SYN(1, TS_SYN_3001), NULL, XDP_TX,
	  EXP_BACKEND, 8, NULL, KHA_R_snat_tw_reuse, 1, tw_taken_by_c },
};

static const struct row rows_empty[] = {
	/* empty table */
	{ "SYN to a VIP with no backend: RST", NULL, IN_CLIENT, F_EMPTY,
	  { .flags = PKT_TCP_SYN, .seq = 5000, .ip_opts = IP_OPTS8,
	    .ip_opts_len = 8, .tcp_opts = MSS_OPT, .tcp_opts_len = 4 },
	  NULL, XDP_TX, EXP_RST, 0, NULL, KHA_R_rst_no_backend, 0, NULL },
	{ "ACK to a VIP with no backend: dropped", NULL, IN_CLIENT, F_EMPTY,
	  DATA(10), NULL, XDP_DROP, EXP_NONE, 0, NULL, KHA_R_drop_no_backend,
	  0, NULL },
};

static const struct row rows_changes[] = {
	/* a SYN whose ct_syn line is full */
	{ "SYN, its ct_syn line full: to conntrack", full_setup, IN_CLIENT,
	  F_FULL, SYN(1), NULL, XDP_TX, EXP_BACKEND, -1, NULL,
	  KHA_R_ct_syn_full, 1, check_full },
	/* backend set changes */
	{ "drained backend keeps its flow", NULL, IN_CLIENT, F2, SYN(1), NULL,
	  XDP_TX, EXP_BACKEND, -1, NULL, -1, 1, NULL },
	{ "drained backend keeps its flow (after drain)", drain_f2_backend,
	  IN_CLIENT, F2, DATA(20), NULL, XDP_TX, EXP_CUSTOM, 0,
	  expect_backend_f2, -1, 0, check_drained },
	{ "drained backend: a retransmitted SYN keeps backend and port",
	  syn_again_setup, IN_CLIENT, F2, SYN(1), NULL, XDP_TX, EXP_CUSTOM, 0,
	  expect_backend_f2, -1, 0, check_syn_again },
	{ "removed backend: flow re-selected", remove_f1_backend, IN_CLIENT,
	  F1, DATA(5), NULL, XDP_TX, EXP_BACKEND, -1, NULL, KHA_R_reselect, 1,
	  check_reselected },
	{ "removed backend: a retransmitted SYN re-selects", remove_f1_backend,
	  IN_CLIENT, F1, SYN(1), NULL, XDP_TX, EXP_BACKEND, -1, NULL,
	  KHA_R_reselect, 1, check_reselected },
	{ "backend id reused for another address: re-selected", reuse_f2_id,
	  IN_CLIENT, F2, DATA(6), NULL, XDP_TX, EXP_CUSTOM, 0,
	  expect_backend_f2, KHA_R_reselect, 1, check_reused },
};

static const struct row rows_local[] = {
	/* path 4: local backend */
	{ "local backend: DNAT only, to the kernel", NULL, IN_CLIENT, F_LOCAL,
	  SYN(3), NULL, XDP_PASS, EXP_BACKEND, 5, NULL,
	  KHA_R_pass_local_backend, 1, NULL },
	{ "local backend: established", NULL, IN_CLIENT, F_LOCAL, DATA(99),
	  NULL, XDP_PASS, EXP_BACKEND, 5, NULL, KHA_R_pass_local_backend, 0,
	  NULL },
	{ "local backend: a retransmitted SYN keeps its flow", NULL, IN_CLIENT,
	  F_LOCAL, SYN(3), NULL, XDP_PASS, EXP_BACKEND, 5, NULL,
	  KHA_R_pass_local_backend, 0, NULL },
	{ "local backend: the client's FIN is recorded", NULL, IN_CLIENT,
	  F_LOCAL, FIN_ACK, NULL, XDP_PASS, EXP_BACKEND, 5, NULL,
	  KHA_R_pass_local_backend, 0, local_fin },
	{ "local backend: a SYN after the client's FIN is a new flow", NULL,
	  IN_CLIENT, F_LOCAL, SYN(7000), NULL, XDP_PASS, EXP_BACKEND, 5, NULL,
	  KHA_R_pass_local_backend, 1, local_reopened },
};

static const struct row rows_forwarding[] = {
	/* forwarding outcomes */
	{ "backend behind another interface: XDP_REDIRECT", NULL, IN_CLIENT,
	  F_REDIR, SYN(4), NULL, XDP_REDIRECT, EXP_BACKEND, 3, NULL, -1, 1,
	  NULL },
	{ "backend neighbour unresolved: translated, to the kernel", NULL,
	  IN_CLIENT, F_NONEIGH, SYN(4), NULL, XDP_PASS, EXP_BACKEND, 4, NULL,
	  KHA_R_pass_no_neigh, 1, NULL },
	{ "backend blackholed: dropped", NULL, IN_CLIENT, F_BLACK, SYN(4),
	  NULL, XDP_DROP, EXP_NONE, 0, NULL, KHA_R_drop_fib, 0, NULL },
};

static const struct row rows_icmp[] = {
	/* ICMP fragmentation needed */
	{ "flow for the ICMP cases", NULL, IN_CLIENT, F3, SYN(1), NULL,
	  XDP_TX, EXP_BACKEND, -1, NULL, -1, 1, NULL },
	{ "flow for the ICMP cases (off-link)", NULL, IN_CLIENT, F3_OFF,
	  SYN(1), NULL, XDP_TX, EXP_BACKEND, -1, NULL, -1, 1, NULL },
	{ "ICMP frag-needed from the backend side, whole quote", NULL, IN_RAW,
	  F3, {}, icmp_in_full, XDP_TX, EXP_CUSTOM, 0, expect_icmp_to_client,
	  KHA_R_icmp_translated, 0, NULL },
	{ "ICMP frag-needed from the backend side, 8-byte quote", NULL, IN_RAW,
	  F3_OFF, {}, icmp_in_8, XDP_TX, EXP_CUSTOM, 0, expect_icmp_to_client,
	  KHA_R_icmp_translated, 0, NULL },
	{ "ICMP frag-needed quoting 4 bytes of TCP: dropped", NULL, IN_RAW, F3,
	  {}, icmp_in_4, XDP_DROP, EXP_NONE, 0, NULL, KHA_R_drop_icmp_bad, 0,
	  NULL },
	{ "ICMP frag-needed about an unknown flow: untouched", NULL, IN_RAW,
	  F3, {}, icmp_unknown_flow, XDP_PASS, EXP_SAME, 0, NULL, -1, 0,
	  NULL },
	{ "ICMP frag-needed from the client side: to the backend", NULL,
	  IN_RAW, F3, {}, icmp_client_side_f3, XDP_TX, EXP_CUSTOM, 0,
	  expect_icmp_to_backend, KHA_R_icmp_translated, 0, NULL },
	{ "ICMP frag-needed about a local-backend flow: to the kernel", NULL,
	  IN_RAW, F_LOCAL, {}, icmp_client_side_local, XDP_PASS, EXP_CUSTOM, 0,
	  expect_icmp_to_backend, KHA_R_icmp_translated, 0, NULL },
	{ "ICMP echo to the VIP: untouched", NULL, IN_RAW, F3, {}, icmp_echo,
	  XDP_PASS, EXP_SAME, 0, NULL, -1, 0, NULL },
};

static void run_rows(const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int failed = CU_get_number_of_failures();

		run_row(&rows[i]);
		if (CU_get_number_of_failures() != (unsigned)failed)
			fprintf(stderr, "  case failed: %s\n", rows[i].name);
	}
}

/* one CUnit test per group of rows; the groups run in this order */
#define ROWS_TEST(group)                                                      \
	static void test_##group(void)                                        \
	{                                                                     \
		run_rows(group, sizeof(group) / sizeof(group[0]));            \
	}
ROWS_TEST(rows_paths)
ROWS_TEST(rows_not_ours)
ROWS_TEST(rows_malformed)
ROWS_TEST(rows_snat_ports)
ROWS_TEST(rows_close)
ROWS_TEST(rows_tw_reuse)
ROWS_TEST(rows_empty)
ROWS_TEST(rows_changes)
ROWS_TEST(rows_local)
ROWS_TEST(rows_forwarding)
ROWS_TEST(rows_icmp)

/* ---- Maglev: the data plane picks what user space predicts ---------- */

static void test_maglev_agrees(void)
{
	struct kha_counters before[3], after[3];
	uint8_t in[PKT_MAX], out[PKT_MAX];
	uint32_t want_count[3] = { 0 };
	int mismatch = 0, bad_verdict = 0;

	srandom(2026);
	for (int b = 0; b < 3; b++)
		counters_get(skel->maps.backend_stats, b, &before[b]);
	for (int i = 0; i < 10000; i++) {
		struct flow f = { (uint32_t)random(), 1024 + i % 60000, 0 };
		struct pkt_tcp4 syn = SYN(i);
		struct kha_addr a = {};
		uint32_t want, got = ~0u;
		size_t len, out_len;

		a.v4 = f.client;
		want = maglev_lookup(ring_of(0, active_gen(0)), RING_SIZE, &a);
		len = build_client(&f, &syn, in);
		if (xdp_run(in, len, out, &out_len) != XDP_TX) {
			bad_verdict++;
			continue;
		}
		for (int b = 0; b < 3; b++)
			if (pkt_ip(out)->daddr == lab_be[b].addr)
				got = b;
		if (got != want && mismatch++ < 5)
			fprintf(stderr, "  client %s: data plane %u, maglev %u\n",
				ip_str(f.client), got, want);
		if (want < 3)
			want_count[want]++;
	}
	CHECK(bad_verdict == 0, "%d SYNs not sent with XDP_TX", bad_verdict);
	CHECK(mismatch == 0, "%d of 10000 clients on another backend",
	      mismatch);
	for (int b = 0; b < 3; b++) {
		counters_get(skel->maps.backend_stats, b, &after[b]);
		CHECK(after[b].new_flows - before[b].new_flows == want_count[b],
		      "backend %d: %llu new flows counted, %u sent", b,
		      (unsigned long long)(after[b].new_flows -
					   before[b].new_flows),
		      want_count[b]);
		/* three equal backends: about a third each */
		CHECK(want_count[b] > 3000 && want_count[b] < 3700,
		      "backend %d got %u of 10000 clients", b, want_count[b]);
	}
	/* their handshakes never finish: age their ct_syn entries out, as
	 * KHA_CT_SYN_TICKS would, so later SYNs find room */
	srandom(2026);
	for (int i = 0; i < 10000; i++) {
		struct flow f = { (uint32_t)random(), 1024 + i % 60000, 0 };
		struct kha_flow_key k = flow_key(f.client, f.cport, VIP(0),
						 VIP_PORT);
		uint32_t idx;

		if (kha_ct_syn_find(ct_syn_tab, snat_tab, &k, &idx))
			ct_syn_tab[idx] = 0;
	}
}

/*
 * SNAT ports come in order, per CPU and backend (bpf/nat.h snat_claim()):
 * SYNs of new clients run on one CPU get each backend's next free port,
 * so their `snat` slots are consecutive lines (kha_snat_home()). A random
 * choice would almost never give port + 1; some steps may skip a port
 * another CPU's walk or an earlier test holds.
 */
static void test_snat_in_order(void)
{
	uint8_t in[PKT_MAX], out[PKT_MAX];
	uint16_t last[3] = { 0 };
	int steps = 0, next = 0, bad = 0, out_of_range = 0;
	cpu_set_t was, one;

	sched_getaffinity(0, sizeof(was), &was);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	sched_setaffinity(0, sizeof(one), &one);
	for (int i = 0; i < 300; i++) {
		struct flow f = { htonl(0xac140000 | i), 40000, 0 };
		struct pkt_tcp4 syn = SYN(i);
		size_t len = build_client(&f, &syn, in), out_len;
		uint16_t port;
		int b = -1;

		if (xdp_run(in, len, out, &out_len) != XDP_TX) {
			bad++;
			continue;
		}
		for (int k = 0; k < 3; k++)
			if (pkt_ip(out)->daddr == lab_be[k].addr)
				b = k;
		port = ntohs(pkt_tcp(out)->source);
		if (port < KHA_SNAT_PORT_LO_DEFAULT ||
		    port > KHA_SNAT_PORT_HI_DEFAULT)
			out_of_range++;
		if (b < 0)
			continue;
		if (last[b]) {
			steps++;
			next += port == last[b] + 1;
		}
		last[b] = port;
	}
	sched_setaffinity(0, sizeof(was), &was);
	CHECK(bad == 0, "%d SYNs not sent with XDP_TX", bad);
	CHECK(out_of_range == 0, "%d ports outside the SNAT range",
	      out_of_range);
	CHECK(steps > 250 && next * 10 >= steps * 9,
	      "%d of %d steps were to the next port", next, steps);
}

/* ---- checksums: random sizes, options, addresses ------------------------- */

static const uint8_t NOPS[40] = { [0 ... 39] = 1 };

static void test_random_packets(void)
{
	srandom(1624);
	for (int i = 0; i < 500; i++) {
		struct flow f = { htonl(0xac100000 | (random() & 0xfffff)),
				  (uint16_t)(1024 + random() % 60000), 0 };
		struct row syn = { "random SYN", NULL, IN_CLIENT, f,
				   { .flags = PKT_TCP_SYN, .ip_opts = NOPS,
				     .tcp_opts = NOPS },
				   NULL, XDP_TX, EXP_BACKEND, -1, NULL, -1,
				   1, NULL };
		struct row data = syn, reply = syn;
		int failed = CU_get_number_of_failures();

		syn.spec.seq = random();
		syn.spec.ip_opts_len = 4 * (random() % 11);
		syn.spec.tcp_opts_len = 4 * (random() % 11);
		run_row(&syn);

		data.name = "random data";
		data.new_flow = 0;
		data.spec.flags = PKT_TCP_ACK | PKT_TCP_PSH;
		data.spec.payload_len = random() % 1401;
		data.spec.payload_seed = random();
		data.spec.ip_opts_len = 4 * (random() % 11);
		run_row(&data);

		reply.name = "random reply";
		reply.input = IN_REPLY;
		reply.expect = EXP_CLIENT;
		reply.new_flow = 0;
		reply.spec.flags = PKT_TCP_ACK;
		reply.spec.payload_len = random() % 1401;
		reply.spec.payload_seed = random();
		reply.spec.ip_opts_len = 4 * (random() % 11);
		reply.spec.tcp_opts_len = 4 * (random() % 11);
		run_row(&reply);
		if (CU_get_number_of_failures() != (unsigned)failed) {
			fprintf(stderr, "  random flow %d failed\n", i);
			break;
		}
	}
}

/* ---- unresolved neighbour: the kernel finishes the job ---------------- */

static int xdp_run_live(const uint8_t *in, size_t len)
{
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifi_dp0 };
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in,
			    .data_size_in = len, .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);

	return bpf_prog_test_run_opts(prog_fd, &opts);
}

/* a packet socket on dp1, in namespace B (the backend's side) */
static int open_capture(void)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_IP) };
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
	int fd;

	if (setns(ns_b, CLONE_NEWNET))
		return -1;
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
	sll.sll_ifindex = if_nametoindex("dp1");
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		close(fd);
		fd = -1;
	}
	if (setns(ns_a, CLONE_NEWNET)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* wait up to @ms for a frame to the live backend; returns its length */
static ssize_t capture_backend_frame(int fd, uint8_t *buf, int ms)
{
	for (int waited = 0; waited < ms; waited += 100) {
		ssize_t n;

		while ((n = recv(fd, buf, PKT_MAX, 0)) > 0)
			if ((size_t)n >= ETH_HLEN + 40 &&
			    pkt_ip(buf)->daddr == lab_be[7].addr &&
			    pkt_ip(buf)->protocol == IPPROTO_TCP &&
			    pkt_tcp(buf)->dest == htons(BE_PORT))
				return n;
	}
	return 0;
}

static void test_live_no_neigh(void)
{
	static const struct flow f = { CLIENT, 46000, 6 };
	uint8_t in[PKT_MAX], got[PKT_MAX], exp[PKT_MAX], out[PKT_MAX];
	struct pkt_tcp4 syn = SYN(1), data = DATA(301);
	__u64 before[KHA_R_MAX], after[KHA_R_MAX];
	struct ct_view ct = {};
	struct pkt_tcp4 e;
	size_t len, out_len;
	ssize_t n;
	int fd = open_capture();

	CHECK(fd >= 0, "capture socket in namespace B: %s", strerror(errno));
	if (fd < 0)
		return;

	/* without accept_local the kernel drops it: source VIP is local */
	sysctl_set("/proc/sys/net/ipv4/conf/dp0/accept_local", "0");
	sysctl_set("/proc/sys/net/ipv4/conf/all/accept_local", "0");
	reasons_get(before);
	len = build_client(&f, &syn, in);
	CHECK(xdp_run_live(in, len) == 0, "live test run failed");
	reasons_get(after);
	CHECK(after[KHA_R_pass_no_neigh] == before[KHA_R_pass_no_neigh] + 1,
	      "SYN did not take the no-neighbour path");
	n = capture_backend_frame(fd, got, 500);
	CHECK(n == 0, "forwarded although accept_local=0");

	/*
	 * With it, the kernel forwards the translated packet, even with
	 * strict reverse-path filtering (the VIP is on the ingress interface)
	 */
	sysctl_set("/proc/sys/net/ipv4/conf/dp0/accept_local", "1");
	sysctl_set("/proc/sys/net/ipv4/conf/all/rp_filter", "1");
	sysctl_set("/proc/sys/net/ipv4/conf/dp0/rp_filter", "1");
	len = build_client(&f, &data, in);
	CHECK(xdp_run_live(in, len) == 0, "live test run failed");
	n = capture_backend_frame(fd, got, 3000);
	CHECK(n > 0, "the kernel did not forward the translated packet");
	ct_get(f.client, f.cport, VIP(f.vip), &ct);
	e = data;
	memcpy(e.dmac, MAC_PEER, 6);
	memcpy(e.smac, MAC_LB, 6);
	e.saddr = VIP(f.vip);
	e.sport = ntohs(ct.snat_port);
	e.daddr = lab_be[7].addr;
	e.dport = BE_PORT;
	e.ttl = 63; /* the kernel routed it */
	len = pkt_build_tcp4(exp, &e);
	if (n > 0) {
		CHECK((size_t)n == len && !memcmp(got, exp, len),
		      "forwarded frame differs from the expected one");
		CHECK(pkt_verify_csums(got, n) == 0, "bad checksum");
	}

	/* the neighbour is resolved now: the next packet is XDP_TX */
	len = build_client(&f, &data, in);
	CHECK(xdp_run(in, len, out, &out_len) == XDP_TX,
	      "neighbour resolved, still not XDP_TX");
	CHECK(!memcmp(out, MAC_PEER, 6), "XDP_TX to the wrong MAC");
	close(fd);
}

/* ---- next-hop cache: a neighbour change is seen within a second ---- */

static void test_neigh_change(void)
{
	uint8_t in[PKT_MAX], out[PKT_MAX];
	struct pkt_tcp4 data = DATA(10);
	struct ct_view ct = {};
	size_t len, out_len;
	uint32_t be;

	CHECK(ct_get(F1.client, F1.cport, VIP(F1.vip), &ct) == 0,
	      "F1 has no conntrack entry");
	be = ct.backend_id;
	CHECK(be < 3, "F1 on backend %u, not one of VIP 0's", be);
	if (be >= 3)
		return;
	len = build_client(&F1, &data, in);
	CHECK(xdp_run(in, len, out, &out_len) == XDP_TX, "F1 not XDP_TX");
	CHECK(!memcmp(out, lab_be[be].mac, 6), "F1 not sent to its MAC");

	/* the backend's MAC changes (a replaced NIC, a migrated VM) */
	sh("ip neigh replace %s lladdr 02:dd:00:00:09:09 dev dp0 nud permanent",
	   ip_str(lab_be[be].addr));
	usleep(1100 * 1000); /* KHA_NH_CACHE_NS (bpf/nat.h) + a tick */
	CHECK(xdp_run(in, len, out, &out_len) == XDP_TX, "F1 not XDP_TX");
	CHECK(out[4] == 9 && out[5] == 9,
	      "new MAC not used after the cache time: %02x:%02x", out[4],
	      out[5]);
	sh("ip neigh replace %s lladdr 02:dd:00:00:01:%02x dev dp0 nud permanent",
	   ip_str(lab_be[be].addr), lab_be[be].mac[5]);
}

/* ---- setup ------------------------------------------------------------- */

static int lab_up(void)
{
	static const char *const cmds[] = {
		"ip link set lo up",
		"ip link add dp2 address 02:dd:00:00:02:01 type veth peer name "
		"dp3 address 02:dd:00:00:02:02",
		"ip addr add 10.99.0.1/24 dev dp0",
		/* the VIPs are the node's addresses, as VRRP makes them */
		"for i in 0 1 2 3 4 5 6 7; do ip addr add 10.99.0.10$i/32 dev dp0; done",
		"ip addr add 10.99.2.1/24 dev dp2",
		"ip link set dp0 up",
		"ip link set dp2 up",
		"ip link set dp3 up",
		"ip route add default via 10.99.0.254",
		"ip route add blackhole 10.99.9.0/24",
		"ip neigh replace 10.99.0.254 lladdr 02:dd:00:00:00:fe dev dp0 nud permanent",
		"ip neigh replace 10.99.0.50 lladdr 02:dd:00:00:00:32 dev dp0 nud permanent",
		"ip neigh replace 10.99.0.11 lladdr 02:dd:00:00:01:0b dev dp0 nud permanent",
		"ip neigh replace 10.99.0.12 lladdr 02:dd:00:00:01:0c dev dp0 nud permanent",
		"ip neigh replace 10.99.0.13 lladdr 02:dd:00:00:01:0d dev dp0 nud permanent",
		"ip neigh replace 10.99.0.17 lladdr 02:dd:00:00:01:11 dev dp0 nud permanent",
		"ip neigh replace 10.99.2.14 lladdr 02:dd:00:00:02:0e dev dp2 nud permanent",
	};
	int pid = getpid();

	if (sh("ip link add dp0 address 02:dd:00:00:00:01 type veth peer name "
	       "dp1 address 02:dd:00:00:00:02 netns /proc/%d/fd/%d",
	       pid, ns_b))
		return -1;
	if (sh("nsenter --net=/proc/%d/fd/%d sh -c 'ip link set lo up && "
	       "ip addr add 10.99.0.16/24 dev dp1 && ip link set dp1 up'",
	       pid, ns_b))
		return -1;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (sh("%s", cmds[i]))
			return -1;
	/* the FIB helper needs forwarding; see docs/datapath.md */
	if (sysctl_set("/proc/sys/net/ipv4/ip_forward", "1") ||
	    sysctl_set("/proc/sys/net/ipv4/conf/all/send_redirects", "0") ||
	    sysctl_set("/proc/sys/net/ipv4/conf/dp0/send_redirects", "0") ||
	    sysctl_set("/proc/sys/net/ipv4/conf/dp0/accept_local", "1"))
		return -1;
	ifi_dp0 = if_nametoindex("dp0");
	ifi_dp2 = if_nametoindex("dp2");
	return ifi_dp0 && ifi_dp2 ? 0 : -1;
}

static int maps_up(void)
{
	for (int v = 0; v < NR_VIPS; v++) {
		struct kha_vip_key k = {};
		struct kha_vip val = { .vip_id = v, .flags = KHA_VIP_F_ACTIVE };

		k.addr.v4 = VIP(v);
		k.port = htons(VIP_PORT);
		k.proto = IPPROTO_TCP;
		k.family = KHA_AF_INET;
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.vips), &k, &val,
					0))
			return -errno;
	}
	for (int b = 0; b < NR_BE; b++)
		push_backend(b);
	for (int v = 0; v < NR_VIPS; v++)
		if (publish(v))
			return -1;
	default_range();
	return 0;
}

static int suite_init(void)
{
	ncpus = libbpf_num_possible_cpus();
	/* B: the segment's other host; A: the load balancer, where we stay */
	if (unshare(CLONE_NEWNET)) {
		perror("test_xdp: unshare");
		return -1;
	}
	ns_b = open("/proc/self/ns/net", O_RDONLY);
	if (ns_b < 0 || unshare(CLONE_NEWNET))
		return -1;
	ns_a = open("/proc/self/ns/net", O_RDONLY);
	if (ns_a < 0 || lab_up())
		return -1;

	skel = xdp_lb__open();
	if (!skel)
		return -1;
	bpf_map__set_max_entries(skel->maps.rings,
				 KHA_RING_LINES_PER_SLOT * RING_SIZE);
	if (xdp_lb__load(skel)) {
		fprintf(stderr, "test_xdp: loading xdp_lb failed\n");
		return -1;
	}
	prog_fd = bpf_program__fd(skel->progs.xdp_lb);
	rings_len = (size_t)KHA_RING_LINES_PER_SLOT * RING_SIZE *
		    sizeof(struct kha_ring_line);
	rings = mmap(NULL, rings_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		     bpf_map__fd(skel->maps.rings), 0);
	if (rings == MAP_FAILED) {
		perror("test_xdp: mmap rings");
		return -1;
	}
	if (kha_flows_map(bpf_map__fd(skel->maps.conntrack), sizeof(*ct_tab),
			  KHA_FLOW_SLOTS, (void **)&ct_tab, &ct_tab_len) ||
	    kha_flows_map(bpf_map__fd(skel->maps.ct_syn),
			  sizeof(struct kha_ct_syn_line), KHA_CT_SYN_LINES,
			  (void **)&ct_syn_tab,
			  &ct_syn_tab_len) ||
	    kha_flows_map(bpf_map__fd(skel->maps.snat), sizeof(*snat_tab),
			  KHA_FLOW_SLOTS, (void **)&snat_tab, &snat_tab_len)) {
		fprintf(stderr, "test_xdp: mmap flow tables failed\n");
		return -1;
	}
	return maps_up();
}

static int suite_cleanup(void)
{
	if (rings && rings != MAP_FAILED)
		munmap(rings, rings_len);
	xdp_lb__destroy(skel);
	if (ns_b >= 0)
		close(ns_b);
	if (ns_a >= 0)
		close(ns_a);
	return 0;
}

static CU_TestInfo xdp_tests[] = {
	{ "table: paths 1-3, new flow, established, replies", test_rows_paths },
	{ "table: not for a VIP, untouched", test_rows_not_ours },
	{ "table: malformed input", test_rows_malformed },
	{ "table: SNAT port exhaustion, reclaim, reset", test_rows_snat_ports },
	{ "table: closing: FIN/RST holds, SYN on a closed flow",
	  test_rows_close },
	{ "table: TIME_WAIT reuse by TCP timestamp (RFC 6191)",
	  test_rows_tw_reuse },
	{ "table: empty Maglev table (RST / drop)", test_rows_empty },
	{ "table: drain, removal, id reuse", test_rows_changes },
	{ "table: local backend (path 4)", test_rows_local },
	{ "table: TX / REDIRECT / no neighbour / blackhole",
	  test_rows_forwarding },
	{ "table: ICMP fragmentation needed", test_rows_icmp },
	{ "10000 clients: backend == maglev_lookup()", test_maglev_agrees },
	{ "SNAT ports in order per CPU and backend", test_snat_in_order },
	{ "500 random flows: sizes, options, checksums", test_random_packets },
	{ "unresolved neighbour: kernel forwards (live frames)",
	  test_live_no_neigh },
	{ "neighbour change seen within the next-hop cache time",
	  test_neigh_change },
	CU_TEST_INFO_NULL,
};

static const struct kha_suite suites[] = {
	{ "xdp_lb", xdp_tests, suite_init, suite_cleanup },
	{ 0 },
};

KHA_TEST_MAIN(suites)
