// SPDX-License-Identifier: GPL-2.0
/*
 * The flow tables' rules as user space applies them (user/flows.c), which
 * are the data plane's (bpf/flows.h): an entry is found where it was put,
 * past the slots its probe sequence had to skip and across the end of the
 * table; a search stops at the first unchained slot; a remote and a local
 * snat entry never stand for each other; the home slots are the values the
 * BPF side computes; counts see live flows only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>

#include "kha_test.h"
#include "flows.h"

#define MASK (KHA_FLOW_SLOTS - 1)

static struct kha_ct_slot *ct;
static struct kha_snat_slot *sn;

static int tabs_init(void)
{
	ct = calloc(KHA_FLOW_SLOTS, sizeof(*ct));
	sn = calloc(KHA_FLOW_SLOTS, sizeof(*sn));
	return ct && sn ? 0 : -1;
}

static int tabs_cleanup(void)
{
	free(ct);
	free(sn);
	return 0;
}

static void tabs_clear(void)
{
	kha_flows_clear(ct, (size_t)KHA_FLOW_SLOTS * sizeof(*ct));
	kha_flows_clear(sn, (size_t)KHA_FLOW_SLOTS * sizeof(*sn));
}

static struct kha_addr a4(const char *s)
{
	struct kha_addr a = {};

	inet_pton(AF_INET, s, &a.v4);
	return a;
}

static struct kha_flow_key flow(const char *src, uint16_t sport)
{
	struct kha_flow_key k = {};

	k.src = a4(src);
	k.dst = a4("10.0.0.100");
	k.sport = htons(sport);
	k.dport = htons(8443);
	k.proto = IPPROTO_TCP;
	k.family = KHA_AF_INET;
	return k;
}

static struct kha_ct_slot ct_entry(const struct kha_flow_key *k,
				   uint32_t stamp, uint16_t be)
{
	struct kha_ct_slot v = {};

	v.stamp = stamp;
	v.key = *k;
	v.backend_id = be;
	v.backend_port = htons(6443);
	v.snat_port = htons(10240 + be);
	return v;
}

static struct kha_snat_slot snat_entry(const char *be, uint16_t port,
				       const char *client, uint32_t stamp)
{
	struct kha_snat_slot v = {};

	v.stamp = stamp;
	v.backend = a4(be);
	v.backend_port = htons(6443);
	v.port = htons(port);
	v.vip = a4("10.0.0.100");
	v.vip_port = htons(8443);
	if (client) {
		v.flags = KHA_SNAT_F_LOCAL;
		v.client = a4(client);
		v.client_port = htons(port);
	} else {
		v.client = a4("10.0.9.9");
		v.client_port = htons(40000);
	}
	return v;
}

/* Some other flow holding slot @idx (key never looked up by a test). */
static void occupy(uint32_t idx)
{
	struct kha_flow_key k = flow("192.0.2.1", (uint16_t)idx);

	ct[idx] = ct_entry(&k, 1000, 0);
	sn[idx] = snat_entry("192.0.2.1", (uint16_t)idx, NULL, 1000);
}

/* A flow from 10.1.x.y whose conntrack home slot is @slot. */
static struct kha_flow_key ct_key_homed_at(uint32_t slot)
{
	uint32_t n;

	for (n = 0; n < 64u << 20; n++) {
		char src[32];
		struct kha_flow_key k;

		snprintf(src, sizeof(src), "10.%u.%u.%u", 1 + (n >> 24),
			 (n >> 16) & 0xff, (n >> 8) & 0xff);
		k = flow(src, 1024 + (n & 0xff));
		if ((kha_ct_home(&k) & MASK) == slot)
			return k;
	}
	CU_FAIL_FATAL("no flow key found for the slot");
	return flow("0.0.0.0", 0);
}

/* ---- home slots ----------------------------------------------------- */

/*
 * The expected values come from an independent Python rewrite of
 * headers/kha_hash.h (a sum of each 32-bit word as stored, i.e. the
 * network-order bytes read little-endian on this host, times its own odd
 * constant, then murmur3's
 * fmix32): if a compiler, a struct layout or an edit of the header changes
 * a home slot, BPF and user space may already disagree, and this says so.
 */
static void test_home_fixed(void)
{
	struct kha_flow_key k = flow("10.1.0.1", 40000);
	struct kha_addr peer = a4("10.0.0.2"), node = a4("10.0.0.1"),
			client = a4("10.0.9.9");

	CU_ASSERT_EQUAL(sizeof(k), 40);
	CU_ASSERT_EQUAL(kha_ct_home(&k), 0x608be91du);
	CU_ASSERT_EQUAL(kha_ct_home(&k) & MASK, 256285);
	CU_ASSERT_EQUAL(kha_snat_home(&peer, htons(6443), htons(10240), NULL),
			0x27fb2d70u);
	CU_ASSERT_EQUAL(kha_snat_home(&node, htons(6443), htons(40000),
				      &client),
			0x22abadc1u);
	/* the same tuple without the client: the remote-entry hash */
	CU_ASSERT_EQUAL(kha_snat_home(&node, htons(6443), htons(40000), NULL),
			0x47d51d54u);
	/* a remote entry's home is the backend's base plus the port: one
	 * backend's ports are consecutive slots (kha_hash.h) */
	for (int p = 10240; p < 10240 + 64; p++)
		CU_ASSERT_EQUAL(kha_snat_home(&peer, htons(6443), htons(p + 1),
					      NULL),
				kha_snat_home(&peer, htons(6443), htons(p), NULL) +
					1);
}

/* Local and remote entries of one tuple hash apart; every input counts. */
static void test_home_inputs(void)
{
	struct kha_addr b = a4("10.0.0.1"), c = a4("10.0.9.9"),
			c2 = a4("10.0.9.10");
	struct kha_flow_key k = flow("10.1.0.1", 40000), k2 = k;
	__u32 remote = kha_snat_home(&b, htons(6443), htons(40000), NULL);
	__u32 local = kha_snat_home(&b, htons(6443), htons(40000), &c);

	CU_ASSERT_NOT_EQUAL(remote, local);
	CU_ASSERT_NOT_EQUAL(local,
			    kha_snat_home(&b, htons(6443), htons(40000), &c2));
	CU_ASSERT_NOT_EQUAL(remote,
			    kha_snat_home(&b, htons(6444), htons(40000), NULL));
	CU_ASSERT_NOT_EQUAL(remote,
			    kha_snat_home(&b, htons(6443), htons(40001), NULL));
	/* same input, same value: nothing but the key feeds it */
	CU_ASSERT_EQUAL(local, kha_snat_home(&b, htons(6443), htons(40000), &c));
	/*
	 * A field stored just before the hash must reach it: the key is read
	 * as 32-bit words, so a compiler that assumes those loads cannot
	 * alias a __be16 store (strict aliasing, gcc -O2) fails here.
	 */
	k2.sport = htons(40001);
	CU_ASSERT_NOT_EQUAL(kha_ct_home(&k), kha_ct_home(&k2));
	k2 = k;
	k2.dport = htons(8444);
	CU_ASSERT_NOT_EQUAL(kha_ct_home(&k), kha_ct_home(&k2));
	/* probes walk forward from home and wrap at the table's end */
	CU_ASSERT_EQUAL(kha_flow_probe(MASK, 1), 0);
	CU_ASSERT_EQUAL(kha_flow_probe(0xffffffffu, 2), 1);
	CU_ASSERT_EQUAL(kha_flow_probe(5, 3), 8);
}

/*
 * The data plane hashes an established packet's fields with
 * kha_ct_home4() instead of building a key (bpf/flows.h ct_find_pkt()):
 * for every IPv4 key it must give kha_ct_home()'s value, bit for bit,
 * with the ports and proto|family words read as the key stores them.
 */
static void test_home4(void)
{
	uint32_t x = 0x12345678u, bad = 0;

	for (int n = 0; n < 100000; n++) {
		struct kha_flow_key k = {};
		const uint32_t *w = (const uint32_t *)&k;

		x = x * 1664525u + 1013904223u;
		k.src.v4 = x;
		x = x * 1664525u + 1013904223u;
		k.dst.v4 = x;
		x = x * 1664525u + 1013904223u;
		k.sport = (uint16_t)x;
		k.dport = (uint16_t)(x >> 16);
		k.proto = IPPROTO_TCP;
		k.family = KHA_AF_INET;
		if (kha_ct_home4(k.src.v4, k.dst.v4, w[8], w[9]) !=
		    kha_ct_home(&k))
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* the fixed key of test_home_fixed(), its words spelled out */
	{
		struct kha_flow_key k = flow("10.1.0.1", 40000);
		uint16_t ports[2] = { k.sport, k.dport };
		uint8_t pf[4] = { IPPROTO_TCP, KHA_AF_INET, 0, 0 };
		uint32_t pw, fw;

		memcpy(&pw, ports, 4);
		memcpy(&fw, pf, 4);
		CU_ASSERT_EQUAL(kha_ct_home4(k.src.v4, k.dst.v4, pw, fw),
				0x608be91du);
	}
}

/* ---- conntrack ------------------------------------------------------ */

static void test_ct_put_find(void)
{
	struct kha_flow_key k = flow("10.1.0.1", 40000), other = k;
	struct kha_ct_slot v = ct_entry(&k, 5000, 2), *s;
	uint32_t home = kha_ct_home(&k) & MASK;

	tabs_clear();
	CU_ASSERT_PTR_NULL(kha_ct_find(ct, &k));
	CU_ASSERT_EQUAL(kha_ct_put(ct, &v), (int)home);
	s = kha_ct_find(ct, &k);
	CU_ASSERT_PTR_EQUAL(s, &ct[home]);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT(!memcmp(s, &v, sizeof(v)));
	CU_ASSERT_EQUAL(s->chain, 0);
	other.sport = htons(40001);
	CU_ASSERT_PTR_NULL(kha_ct_find(ct, &other));
	/* a zero stamp would be a free slot: refused */
	v.stamp = 0;
	CU_ASSERT_EQUAL(kha_ct_put(ct, &v), -EINVAL);
}

/* Occupied slots are passed and chained; the entry is found past them. */
static void test_ct_chain(void)
{
	struct kha_flow_key k = flow("10.1.0.7", 41000);
	struct kha_ct_slot v = ct_entry(&k, 5000, 1);
	uint32_t home = kha_ct_home(&k);
	int idx;

	tabs_clear();
	occupy(kha_flow_probe(home, 0));
	occupy(kha_flow_probe(home, 1));
	idx = kha_ct_put(ct, &v);
	CU_ASSERT_EQUAL(idx, (int)kha_flow_probe(home, 2));
	CU_ASSERT_EQUAL(ct[kha_flow_probe(home, 0)].chain, 1);
	CU_ASSERT_EQUAL(ct[kha_flow_probe(home, 1)].chain, 1);
	CU_ASSERT_EQUAL(ct[kha_flow_probe(home, 2)].chain, 0);
	CU_ASSERT_PTR_EQUAL(kha_ct_find(ct, &k), &ct[kha_flow_probe(home, 2)]);

	/* a chained slot freed since (stamp 0) is walked past, not a stop */
	ct[kha_flow_probe(home, 0)].stamp = 0;
	CU_ASSERT_PTR_EQUAL(kha_ct_find(ct, &k), &ct[kha_flow_probe(home, 2)]);
	/* and the next put takes it, keeping its chain */
	{
		struct kha_flow_key k2 = ct_key_homed_at(home & MASK);
		struct kha_ct_slot v2 = ct_entry(&k2, 5001, 3);

		CU_ASSERT_EQUAL(kha_ct_put(ct, &v2),
				(int)kha_flow_probe(home, 0));
		CU_ASSERT_EQUAL(ct[kha_flow_probe(home, 0)].chain, 1);
		CU_ASSERT_PTR_EQUAL(kha_ct_find(ct, &k2),
				    &ct[kha_flow_probe(home, 0)]);
		CU_ASSERT_PTR_EQUAL(kha_ct_find(ct, &k),
				    &ct[kha_flow_probe(home, 2)]);
	}

	/* without the chain on the slot before it, a search stops there */
	ct[kha_flow_probe(home, 1)].chain = 0;
	CU_ASSERT_PTR_NULL(kha_ct_find(ct, &k));
	/* an expired entry (stamp old, not 0) is still found: it is whole
	 * until a new flow takes the slot */
	ct[kha_flow_probe(home, 1)].chain = 1;
	ct[kha_flow_probe(home, 2)].stamp = 1;
	CU_ASSERT_PTR_EQUAL(kha_ct_find(ct, &k), &ct[kha_flow_probe(home, 2)]);
}

/* Every probe held: -ENOSPC, and nothing changed. */
static void test_ct_full(void)
{
	struct kha_flow_key k = flow("10.1.0.9", 42000);
	struct kha_ct_slot v = ct_entry(&k, 5000, 1);
	uint32_t home = kha_ct_home(&k), i;

	tabs_clear();
	for (i = 0; i < KHA_FLOW_PROBES; i++)
		occupy(kha_flow_probe(home, i));
	CU_ASSERT_EQUAL(kha_ct_put(ct, &v), -ENOSPC);
	for (i = 0; i < KHA_FLOW_PROBES; i++)
		CU_ASSERT_EQUAL(ct[kha_flow_probe(home, i)].chain, 0);
	CU_ASSERT_PTR_NULL(kha_ct_find(ct, &k));
	/* a slot just past the probe sequence is never used */
	CU_ASSERT_EQUAL(ct[kha_flow_probe(home, KHA_FLOW_PROBES)].stamp, 0);
	/* with every probe chained the search still ends after 8 */
	for (i = 0; i < KHA_FLOW_PROBES; i++)
		ct[kha_flow_probe(home, i)].chain = 1;
	ct[kha_flow_probe(home, KHA_FLOW_PROBES)] = v;
	CU_ASSERT_PTR_NULL(kha_ct_find(ct, &k));
}

/* A home at the last slots: the probe sequence goes on at slot 0. */
static void test_ct_wrap(void)
{
	struct kha_flow_key k = ct_key_homed_at(MASK - 1);
	struct kha_ct_slot v = ct_entry(&k, 5000, 4);

	tabs_clear();
	occupy(MASK - 1);
	occupy(MASK);
	CU_ASSERT_EQUAL(kha_ct_put(ct, &v), 0);
	CU_ASSERT_EQUAL(ct[MASK - 1].chain, 1);
	CU_ASSERT_EQUAL(ct[MASK].chain, 1);
	CU_ASSERT_PTR_EQUAL(kha_ct_find(ct, &k), &ct[0]);
	CU_ASSERT_EQUAL(ct[0].backend_id, 4);
}

/* ---- snat ----------------------------------------------------------- */

static void test_snat_local_remote(void)
{
	struct kha_snat_slot r = snat_entry("10.0.0.2", 10240, NULL, 5000);
	struct kha_snat_slot l = snat_entry("10.0.0.2", 10240, "10.0.9.9", 5000);
	struct kha_addr be = a4("10.0.0.2"), c = a4("10.0.9.9"),
			c2 = a4("10.0.9.10");
	int ri, li;

	tabs_clear();
	r.backend_id = 1;
	l.backend_id = 2;
	ri = kha_snat_put(sn, &r);
	li = kha_snat_put(sn, &l);
	CU_ASSERT_EQUAL(ri, (int)(kha_snat_home(&be, htons(6443), htons(10240),
						NULL) & MASK));
	CU_ASSERT_EQUAL(li, (int)(kha_snat_home(&be, htons(6443), htons(10240),
						&c) & MASK));
	CU_ASSERT_NOT_EQUAL(ri, li);
	CU_ASSERT_PTR_EQUAL(kha_snat_find(sn, &be, htons(6443), htons(10240),
					  NULL), &sn[ri]);
	CU_ASSERT_PTR_EQUAL(kha_snat_find(sn, &be, htons(6443), htons(10240),
					  &c), &sn[li]);
	CU_ASSERT_PTR_NULL(kha_snat_find(sn, &be, htons(6443), htons(10240),
					 &c2));
	CU_ASSERT_PTR_NULL(kha_snat_find(sn, &be, htons(6444), htons(10240),
					 NULL));
	CU_ASSERT_PTR_NULL(kha_snat_find(sn, &be, htons(6443), htons(10241),
					 NULL));

	/*
	 * The same key fields in the other kind's home slot: the LOCAL flag
	 * is part of the key, so neither stands for the other.
	 */
	tabs_clear();
	sn[li] = r;
	CU_ASSERT_PTR_NULL(kha_snat_find(sn, &be, htons(6443), htons(10240),
					 &c));
	sn[li] = (struct kha_snat_slot){};
	sn[ri] = l;
	CU_ASSERT_PTR_NULL(kha_snat_find(sn, &be, htons(6443), htons(10240),
					 NULL));
}

static void test_snat_chain_wrap(void)
{
	struct kha_addr be = a4("10.0.0.3");
	struct kha_snat_slot v;
	uint32_t port, home = 0;

	/* a SNAT port whose remote entry is homed at the very last slot */
	for (port = 1; port < 65536; port++) {
		home = kha_snat_home(&be, htons(6443), htons(port), NULL);
		if ((home & MASK) >= MASK - 2)
			break;
	}
	if ((home & MASK) < MASK - 2) {
		/* 2^16 ports may miss 3 slots of 2^19: vary the backend too */
		for (port = 1; port < (1u << 24); port++) {
			char s[32];

			snprintf(s, sizeof(s), "10.%u.%u.%u", port >> 16,
				 (port >> 8) & 0xff, port & 0xff);
			be = a4(s);
			home = kha_snat_home(&be, htons(6443), htons(10240),
					     NULL);
			if ((home & MASK) >= MASK - 2)
				break;
		}
		port = 10240;
	}
	CU_ASSERT_FATAL((home & MASK) >= MASK - 2);

	tabs_clear();
	v = snat_entry("0.0.0.0", port, NULL, 5000);
	v.backend = be;
	for (uint32_t i = home & MASK; i <= MASK; i++)
		occupy(i);
	/*
	 * A remote entry lives in its home slot only (bpf/flows.h): with the
	 * home taken the port is not free, whatever follows it; nothing is
	 * chained and nothing is found past the home.
	 */
	CU_ASSERT_EQUAL(kha_snat_put(sn, &v), -ENOSPC);
	CU_ASSERT_EQUAL(sn[0].stamp, 0);
	CU_ASSERT_EQUAL(sn[home & MASK].chain, 0);
	sn[0] = v; /* planted off its home by hand: never found there */
	sn[home & MASK].chain = 1;
	CU_ASSERT_PTR_NULL(kha_snat_find(sn, &be, htons(6443), htons(port),
					 NULL));
	memset(&sn[0], 0, sizeof(sn[0]));
	memset(&sn[home & MASK], 0, sizeof(sn[0]));
	CU_ASSERT_EQUAL(kha_snat_put(sn, &v), (int)(home & MASK));
	CU_ASSERT_PTR_EQUAL(kha_snat_find(sn, &be, htons(6443), htons(port),
					  NULL), &sn[home & MASK]);
}

/* ---- time ------------------------------------------------------------ */

static void test_ticks(void)
{
	struct timespec ts;
	uint32_t now, mine;

	CU_ASSERT_EQUAL(kha_flow_tick(0), KHA_TICK_BASE);
	CU_ASSERT_EQUAL(kha_flow_tick((1ull << 30) - 1), KHA_TICK_BASE);
	CU_ASSERT_EQUAL(kha_flow_tick(1ull << 30), KHA_TICK_BASE + 1);
	CU_ASSERT_EQUAL(kha_flow_tick(120ull * 1000000000), KHA_TICK_BASE + 111);
	/* the data plane's clock (bpf_ktime_get_coarse_ns) */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	mine = kha_flow_tick((uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec);
	now = kha_flow_now();
	CU_ASSERT(now == mine || now + 1 == mine || now == mine + 1);
	/* a fresh stamp, even aged by the longest hold, is never "free" */
	CU_ASSERT(kha_flow_tick(0) - KHA_SNAT_IDLE_TICKS != 0);
	CU_ASSERT(kha_flow_live(100, 100 + KHA_SNAT_IDLE_TICKS));
	CU_ASSERT(!kha_flow_live(100, 101 + KHA_SNAT_IDLE_TICKS));
	CU_ASSERT(!kha_flow_live(0, 0));
}

static void test_count_live(void)
{
	const uint32_t now = 100000;
	static uint32_t per[KHA_MAX_BACKENDS];
	struct {
		uint32_t stamp;
		uint16_t be;
		bool live;
	} c[] = {
		{ now, 0, true },
		{ now - KHA_SNAT_IDLE_TICKS, 0, true },   /* oldest live */
		{ now - KHA_SNAT_IDLE_TICKS - 1, 0, false }, /* expired */
		{ now - KHA_SNAT_TW_TICKS, 1, true },
		{ now + 1, 1, true },  /* stamped during the walk */
		{ now + 2, 7, true },
		{ now - 5000, 7, false },
		{ 1, 7, false },
		{ now, 300, true },    /* not a backend id: total only */
	};
	size_t i;
	long want = 0;

	tabs_clear();
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct kha_flow_key k = flow("10.1.2.3", 1000 + i);
		struct kha_ct_slot v = ct_entry(&k, c[i].stamp, c[i].be);
		struct kha_snat_slot s = snat_entry("10.0.0.2", 10240 + i,
						    NULL, c[i].stamp);

		CU_ASSERT_FATAL(kha_ct_put(ct, &v) >= 0);
		CU_ASSERT_FATAL(kha_snat_put(sn, &s) >= 0);
		want += c[i].live;
	}
	memset(per, 0xff, sizeof(per));
	CU_ASSERT_EQUAL(kha_ct_count(ct, now, per), want);
	CU_ASSERT_EQUAL(want, 6);
	CU_ASSERT_EQUAL(per[0], 2);
	CU_ASSERT_EQUAL(per[1], 2);
	CU_ASSERT_EQUAL(per[7], 1);
	CU_ASSERT_EQUAL(per[2], 0);
	CU_ASSERT_EQUAL(kha_ct_count(ct, now, NULL), want);
	CU_ASSERT_EQUAL(kha_snat_count(sn, now), want);
	/* everything in use, live or not */
	CU_ASSERT_EQUAL(kha_flows_used(ct, sizeof(*ct), KHA_FLOW_SLOTS), 9);
	CU_ASSERT_EQUAL(kha_flows_used(sn, sizeof(*sn), KHA_FLOW_SLOTS), 9);
	/* 200 ticks later every one of them has expired */
	CU_ASSERT_EQUAL(kha_ct_count(ct, now + 200, per), 0);
	CU_ASSERT_EQUAL(per[0] + per[1] + per[7], 0);
	/* the clock wraps: a stamp from before the wrap is still live */
	tabs_clear();
	{
		struct kha_flow_key k = flow("10.1.2.3", 999);
		struct kha_ct_slot v = ct_entry(&k, 0xfffffff0u, 5);

		CU_ASSERT_FATAL(kha_ct_put(ct, &v) >= 0);
		CU_ASSERT_EQUAL(kha_ct_count(ct, 0x20, NULL), 1);
	}
	tabs_clear();
	CU_ASSERT_EQUAL(kha_ct_count(ct, now, NULL), 0);
	CU_ASSERT_EQUAL(kha_flows_used(ct, sizeof(*ct), KHA_FLOW_SLOTS), 0);
}

/* ---- a real map --------------------------------------------------------- */

/* An array map the way bpf/maps.h declares the flow tables. */
static int flow_map(uint32_t entries, uint32_t flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = flags);

	return bpf_map_create(BPF_MAP_TYPE_ARRAY, "flw_test", 4,
			      sizeof(struct kha_ct_slot), entries, &o);
}

static void test_map_mmap(void)
{
	int fd = flow_map(KHA_FLOW_SLOTS, BPF_F_MMAPABLE), bad;
	struct kha_flow_key k = flow("10.1.0.1", 40000);
	struct kha_ct_slot v = ct_entry(&k, kha_flow_now(), 9), got;
	struct kha_ct_slot *tab;
	void *mem = NULL;
	size_t len = 0;
	__u32 idx;
	int i;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(
		kha_flows_map(fd, sizeof(*tab), KHA_FLOW_SLOTS, &mem, &len), 0);
	CU_ASSERT_EQUAL(len, (size_t)KHA_FLOW_SLOTS * 64);
	tab = mem;
	i = kha_ct_put(tab, &v);
	CU_ASSERT_EQUAL_FATAL(i, (int)(kha_ct_home(&k) & MASK));
	/* what the kernel (and so the data plane) reads at that index */
	idx = i;
	CU_ASSERT_FATAL(!bpf_map_lookup_elem(fd, &idx, &got));
	CU_ASSERT(!memcmp(&got, &v, sizeof(v)));
	/* and what it writes shows through the mapping */
	got.backend_id = 11;
	CU_ASSERT_FATAL(!bpf_map_update_elem(fd, &idx, &got, BPF_ANY));
	CU_ASSERT_FATAL(kha_ct_find(tab, &k) == &tab[i]);
	CU_ASSERT_EQUAL(tab[i].backend_id, 11);
	CU_ASSERT_EQUAL(kha_ct_count(tab, kha_flow_now(), NULL), 1);
	kha_flows_clear(tab, len);
	CU_ASSERT_FATAL(!bpf_map_lookup_elem(fd, &idx, &got));
	CU_ASSERT_EQUAL(got.stamp, 0);
	kha_flows_unmap(mem, len);
	/* the wrong value size for this table */
	CU_ASSERT_EQUAL(kha_flows_map(fd, 32, KHA_FLOW_SLOTS, &mem, &len), -EPROTO);
	close(fd);

	/* not the flow table's shape: refused, nothing mapped */
	bad = flow_map(1024, BPF_F_MMAPABLE);
	CU_ASSERT_FATAL(bad >= 0);
	CU_ASSERT_EQUAL(kha_flows_map(bad, 64, KHA_FLOW_SLOTS, &mem, &len), -EPROTO);
	close(bad);
	bad = flow_map(KHA_FLOW_SLOTS, 0);
	CU_ASSERT_FATAL(bad >= 0);
	CU_ASSERT_EQUAL(kha_flows_map(bad, 64, KHA_FLOW_SLOTS, &mem, &len), -EPROTO);
	close(bad);
}

/* ---- ct_syn ------------------------------------------------------------ */

static uint64_t syn[KHA_CT_SYN_SLOTS];

/* @k's flow in its handshake: its snat slot at @sidx, an entry in ct_syn */
static uint32_t syn_plant(const struct kha_flow_key *k, uint32_t sidx,
			  uint32_t stamp, uint16_t be, uint32_t way, bool moved)
{
	uint32_t home = kha_ct_home(k), idx = kha_ct_syn_probe(home, way);
	struct kha_snat_slot *s = &sn[sidx];

	memset(s, 0, sizeof(*s));
	s->stamp = stamp;
	s->backend_id = be;
	s->client = k->src;
	s->client_port = k->sport;
	s->vip = k->dst;
	s->vip_port = k->dport;
	syn[idx] = kha_ct_syn_entry(stamp, kha_ct_syn_tag(home), sidx) |
		   (moved ? KHA_CT_SYN_MOVED : 0);
	return idx;
}

static void test_syn_entry(void)
{
	uint64_t e = kha_ct_syn_entry(0xdeadbeefu, 0x7ff, KHA_FLOW_SLOTS - 1);

	CU_ASSERT_EQUAL(kha_ct_syn_stamp(e), 0xdeadbeefu);
	CU_ASSERT_EQUAL(kha_ct_syn_etag(e), 0x7ff);
	CU_ASSERT_EQUAL(kha_ct_syn_sidx(e), KHA_FLOW_SLOTS - 1);
	CU_ASSERT_FALSE(kha_ct_syn_moved(e));
	e |= KHA_CT_SYN_MOVED;
	CU_ASSERT_TRUE(kha_ct_syn_moved(e));
	/* the moved bit is not part of the tag */
	CU_ASSERT_EQUAL(kha_ct_syn_etag(e), 0x7ff);
	CU_ASSERT_EQUAL(kha_ct_syn_sidx(e), KHA_FLOW_SLOTS - 1);
	CU_ASSERT(kha_ct_syn_tag(0xffffffffu) <= 0x7ff);
	/* a line: KHA_CT_SYN_WAYS entries from a multiple of them */
	for (uint32_t h = 0; h < 100000; h += 37) {
		uint32_t first = kha_ct_syn_probe(h, 0);

		CU_ASSERT_EQUAL_FATAL(first % KHA_CT_SYN_WAYS, 0);
		CU_ASSERT_EQUAL_FATAL(kha_ct_syn_probe(h, KHA_CT_SYN_WAYS - 1),
				      first + KHA_CT_SYN_WAYS - 1);
		CU_ASSERT_FATAL(first < KHA_CT_SYN_SLOTS);
	}
}

static void test_syn_find(void)
{
	struct kha_flow_key k = flow("10.1.2.3", 4000), other = k;
	uint32_t now = 1000, idx = ~0u, at;

	tabs_clear();
	memset(syn, 0, sizeof(syn));
	CU_ASSERT_PTR_NULL(kha_ct_syn_find(syn, sn, &k, &idx));
	at = syn_plant(&k, 77, now, 2, 5, false);
	CU_ASSERT_PTR_EQUAL(kha_ct_syn_find(syn, sn, &k, &idx), &sn[77]);
	CU_ASSERT_EQUAL(idx, at);
	/* the snat slot proves it: another client port is not this flow */
	other.sport = htons(4001);
	sn[77].client_port = other.sport;
	CU_ASSERT_PTR_NULL(kha_ct_syn_find(syn, sn, &k, &idx));
	sn[77].client_port = k.sport;
	/* nor a freed snat slot */
	sn[77].stamp = 0;
	CU_ASSERT_PTR_NULL(kha_ct_syn_find(syn, sn, &k, &idx));
	sn[77].stamp = now;
	/* nor an entry of another tag in the same line */
	syn[at] ^= (uint64_t)1 << (32 + KHA_CT_SYN_SIDX_BITS);
	CU_ASSERT_PTR_NULL(kha_ct_syn_find(syn, sn, &k, &idx));
	syn[at] ^= (uint64_t)1 << (32 + KHA_CT_SYN_SIDX_BITS);
	CU_ASSERT_PTR_EQUAL(kha_ct_syn_find(syn, sn, &k, &idx), &sn[77]);
}

static void test_syn_count(void)
{
	uint32_t now = 5000, per[KHA_MAX_BACKENDS] = { 0 };

	tabs_clear();
	{
		struct kha_flow_key a = flow("10.1.0.1", 1), b = flow("10.1.0.2", 2),
				    c = flow("10.1.0.3", 3), d = flow("10.1.0.4", 4);

		memset(syn, 0, sizeof(syn));
		syn_plant(&a, 10, now, 3, 0, false);     /* live */
		syn_plant(&b, 11, now - KHA_CT_SYN_TICKS, 3, 1, false); /* live */
		syn_plant(&c, 12, now - KHA_CT_SYN_TICKS - 1, 4, 2, false);
		syn_plant(&d, 13, now, 5, 3, true);      /* moved: conntrack's */
	}
	CU_ASSERT_EQUAL(kha_ct_syn_count(syn, sn, now, per), 2);
	CU_ASSERT_EQUAL(per[3], 2);
	CU_ASSERT_EQUAL(per[4], 0);
	CU_ASSERT_EQUAL(per[5], 0);
	CU_ASSERT_EQUAL(kha_ct_syn_count(syn, sn, now + 100, NULL), 0);
}

static CU_TestInfo home_tests[] = {
	{ "home slots: fixed values", test_home_fixed },
	{ "home slots: local vs remote, inputs", test_home_inputs },
	{ "home slots: the IPv4 shortcut equals the full hash", test_home4 },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo ct_tests[] = {
	{ "put, find", test_ct_put_find },
	{ "chain: passed slots, stop rule", test_ct_chain },
	{ "all probes taken", test_ct_full },
	{ "wrap at the table's end", test_ct_wrap },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo snat_tests[] = {
	{ "local vs remote entries", test_snat_local_remote },
	{ "chain and wrap", test_snat_chain_wrap },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo time_tests[] = {
	{ "ticks", test_ticks },
	{ "count live slots", test_count_live },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo syn_tests[] = {
	{ "entry: stamp, tag, snat slot, moved; a line", test_syn_entry },
	{ "find: through the snat slot, tag, line", test_syn_find },
	{ "count: live, not moved, by backend", test_syn_count },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo map_tests[] = {
	{ "mmap of an array map", test_map_mmap },
	CU_TEST_INFO_NULL,
};

static const struct kha_suite suites[] = {
	{ "home", home_tests, NULL, NULL },
	{ "conntrack", ct_tests, tabs_init, tabs_cleanup },
	{ "snat", snat_tests, tabs_init, tabs_cleanup },
	{ "time", time_tests, tabs_init, tabs_cleanup },
	{ "ct_syn", syn_tests, tabs_init, tabs_cleanup },
	{ "map", map_tests, NULL, NULL },
	{ 0 },
};

KHA_TEST_MAIN(suites)
