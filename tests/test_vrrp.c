// SPDX-License-Identifier: GPL-2.0
/*
 * VRRP: what a mixed keepalived/kha-xdp group relies on.
 *  - we read keepalived's adverts (captured from keepalived 2.2.7, see
 *    tests/fixtures/vrrp/README.md) and write byte-identical ones;
 *  - checksums, v3 with the pseudo-header and keepalived's old unicast one;
 *  - a corpus of malformed adverts: each ignored, counted under its reason,
 *    and never moves the state machine;
 *  - the state machine on a fake clock through every RFC 3768/5798
 *    transition, and two machines on a simulated segment (real encode and
 *    decode between them) for elections, failover times, faults, split
 *    brain and shutdown.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kha_test.h"
#include "vrrp.h"

#define A(s) inet_addr(s)
#define GROUP htonl(KHA_VRRP_MCAST_GROUP)

/* ---- fixtures ---- */

#define MAX_PKTS 64
struct capture {
	int n;
	size_t len[MAX_PKTS];
	uint8_t pkt[MAX_PKTS][256];
};

/* Read a tcpdump -w file (Ethernet link type) into IP packets. */
static int read_pcap(const char *name, struct capture *c)
{
	char dir[512], path[600];
	uint8_t gh[24], rh[16], frame[512];
	FILE *f;

	/* from the repository root (tests/run-all.sh), else next to the
	 * binary's build/tests/ */
	snprintf(dir, sizeof(dir), "%s", __FILE__);
	snprintf(path, sizeof(path), "%s/fixtures/vrrp/%s.pcap", dirname(dir),
		 name);
	f = fopen(path, "rb");
	if (!f) {
		ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);

		dir[n > 0 ? n : 0] = 0;
		snprintf(path, sizeof(path),
			 "%s/../../tests/fixtures/vrrp/%s.pcap", dirname(dir),
			 name);
		f = fopen(path, "rb");
	}
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -errno;
	}
	memset(c, 0, sizeof(*c));
	if (fread(gh, 1, sizeof(gh), f) != sizeof(gh) ||
	    !(gh[0] == 0xd4 && gh[1] == 0xc3) || gh[20] != 1) {
		fclose(f);
		return -EINVAL; /* little-endian pcap, LINKTYPE_ETHERNET */
	}
	while (c->n < MAX_PKTS && fread(rh, 1, sizeof(rh), f) == sizeof(rh)) {
		uint32_t caplen = rh[8] | rh[9] << 8 | rh[10] << 16 |
				  (uint32_t)rh[11] << 24;

		if (caplen > sizeof(frame) || fread(frame, 1, caplen, f) != caplen)
			break;
		if (caplen < 14 + 20 || frame[12] != 0x08 || frame[13] != 0)
			continue;
		c->len[c->n] = caplen - 14;
		memcpy(c->pkt[c->n], frame + 14, caplen - 14);
		c->n++;
	}
	fclose(f);
	return c->n;
}

/* The group keepalived was configured with in the captures. */
static struct kha_vrrp_params mkp(int version, uint8_t prio, uint16_t cs,
				  bool unicast, const char *pass,
				  const char *primary)
{
	struct kha_vrrp_params p = {
		.version = version,
		.vrid = 68,
		.priority = prio,
		.advert_int_cs = cs,
		.initial_state = KHA_VRRP_BACKUP,
		.preempt = true,
		.unicast = unicast,
		.track_weight = 30,
		.primary = A(primary),
		.nr_addrs = 2,
		.addrs = { A("10.99.0.100"), A("10.99.0.101") },
	};

	if (pass && version == 2) {
		p.auth_type = KHA_VRRP_AUTH_PASS;
		memcpy(p.auth_pass, pass, strnlen(pass, sizeof(p.auth_pass)));
	}
	return p;
}

struct fixture_case {
	const char *name;
	int version;
	uint16_t cs;
	bool unicast;
	const char *pass;
	bool old_csum;
};

static const struct fixture_case fixtures[] = {
	{ "v2", 2, 100, false, NULL, false },
	{ "v2auth", 2, 100, false, "s3cret", false },
	{ "v3", 3, 10, false, NULL, false },
	{ "v2uni", 2, 100, true, NULL, false },
	{ "v3uni", 3, 100, true, NULL, false },
	{ "v3uniold", 3, 100, true, NULL, true },
};

static void test_decode_keepalived(void)
{
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		const struct fixture_case *fc = &fixtures[i];
		struct kha_vrrp_params p = mkp(fc->version, 110, fc->cs,
					       fc->unicast, fc->pass,
					       "10.99.0.2");
		struct capture c;
		bool saw_prio0 = false;

		CU_ASSERT_FATAL(read_pcap(fc->name, &c) >= 2);
		for (int k = 0; k < c.n; k++) {
			struct kha_vrrp_advert a;
			enum kha_vrrp_drop d = kha_vrrp_parse(&p, c.pkt[k],
							      c.len[k], &a);

			if (d != KHA_VRRP_OK)
				fprintf(stderr, "%s #%d: %s\n", fc->name, k,
					kha_vrrp_drop_name(d));
			CU_ASSERT_EQUAL(d, KHA_VRRP_OK);
			CU_ASSERT_EQUAL(a.version, fc->version);
			CU_ASSERT_EQUAL(a.vrid, 68);
			CU_ASSERT(a.priority == 120 || a.priority == 0);
			saw_prio0 |= a.priority == 0;
			CU_ASSERT_EQUAL(a.adver_int_cs, fc->cs);
			CU_ASSERT_EQUAL(a.naddr, 2);
			CU_ASSERT_EQUAL(a.addrs[0], A("10.99.0.100"));
			CU_ASSERT_EQUAL(a.addrs[1], A("10.99.0.101"));
			CU_ASSERT_EQUAL(a.saddr, A("10.99.0.1"));
			CU_ASSERT_EQUAL(a.daddr, fc->unicast ? A("10.99.0.2") :
							       GROUP);
			CU_ASSERT_EQUAL(a.ttl, 255);
			CU_ASSERT_EQUAL(a.old_checksum, fc->old_csum);
			if (fc->pass)
				CU_ASSERT_EQUAL(
					memcmp(a.auth, "s3cret\0\0", 8), 0);
		}
		/* keepalived resigned with priority 0 when stopped */
		CU_ASSERT(saw_prio0);
	}
}

/* What we send is what keepalived sends, byte for byte (IP header too). */
static void test_encode_like_keepalived(void)
{
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		const struct fixture_case *fc = &fixtures[i];
		struct kha_vrrp_params p = mkp(fc->version, 120, fc->cs,
					       fc->unicast, fc->pass,
					       "10.99.0.1");
		uint32_t daddr = fc->unicast ? A("10.99.0.2") : GROUP;
		uint8_t buf[KHA_VRRP_PKT_MAX];
		struct capture c;
		int len, k;

		if (fc->old_csum)
			continue; /* we only read that variant */
		CU_ASSERT_FATAL(read_pcap(fc->name, &c) >= 2);
		/* first packet: priority 120, IP id 1 */
		len = kha_vrrp_build(&p, 120, daddr, 1, buf, sizeof(buf));
		CU_ASSERT_EQUAL_FATAL(len, (int)c.len[0]);
		CU_ASSERT_EQUAL(memcmp(buf, c.pkt[0], (size_t)len), 0);
		/* the priority-0 resignation, last in the capture */
		k = c.n - 1;
		len = kha_vrrp_build(&p, 0, daddr,
				     (uint16_t)(c.pkt[k][4] << 8 | c.pkt[k][5]),
				     buf, sizeof(buf));
		CU_ASSERT_EQUAL_FATAL(len, (int)c.len[k]);
		CU_ASSERT_EQUAL(memcmp(buf, c.pkt[k], (size_t)len), 0);
	}
}

static void test_checksums(void)
{
	/* RFC 1071 section 3 example: sum ddf2, checksum 220d */
	static const uint8_t rfc[] = { 0x00, 0x01, 0xf2, 0x03,
				       0xf4, 0xf5, 0xf6, 0xf7 };
	struct kha_vrrp_params p = mkp(3, 120, 100, true, NULL, "10.99.0.1");
	uint8_t buf[KHA_VRRP_PKT_MAX];
	struct capture c;
	uint16_t got;
	int len;

	CU_ASSERT_EQUAL(ntohs(kha_vrrp_csum(rfc, sizeof(rfc), 0)), 0x220d);
	/* odd length pads with a zero byte */
	CU_ASSERT_EQUAL(ntohs(kha_vrrp_csum(rfc, 7, 0)),
			(uint16_t)~(0x0001 + 0xf203 + 0xf4f5 + 0xf600 -
				    0x10000 * 2 + 2));

	/* keepalived's v3 checksums, recomputed from the message alone */
	CU_ASSERT_FATAL(read_pcap("v3", &c) >= 1);
	memcpy(buf, c.pkt[0] + 20, c.len[0] - 20);
	got = ntohs(*(uint16_t *)(buf + 6));
	buf[6] = buf[7] = 0;
	CU_ASSERT_EQUAL(ntohs(kha_vrrp_msg_csum(3, buf, c.len[0] - 20,
						A("10.99.0.1"), GROUP)),
			got);
	CU_ASSERT_EQUAL(got, 0x5629);
	/* the same message without the pseudo-header would differ */
	CU_ASSERT_NOT_EQUAL(ntohs(kha_vrrp_msg_csum(2, buf, c.len[0] - 20,
						    0, 0)),
			    got);

	/* v3 unicast: current keepalived puts the peer in the pseudo-header,
	 * keepalived < 2.2 (and old_unicast_checksum) the group */
	CU_ASSERT_FATAL(read_pcap("v3uni", &c) >= 1);
	CU_ASSERT_EQUAL(c.pkt[0][26] << 8 | c.pkt[0][27], 0x2b7d);
	CU_ASSERT_FATAL(read_pcap("v3uniold", &c) >= 1);
	CU_ASSERT_EQUAL(c.pkt[0][26] << 8 | c.pkt[0][27], 0x55cf);
	len = kha_vrrp_build(&p, 120, A("10.99.0.2"), 1, buf, sizeof(buf));
	CU_ASSERT_EQUAL(buf[26] << 8 | buf[27], 0x2b7d);
	memset(buf + 26, 0, 2);
	CU_ASSERT_EQUAL(ntohs(kha_vrrp_msg_csum(3, buf + 20, (size_t)len - 20,
						A("10.99.0.1"), GROUP)),
			0x55cf);
	/* v2: keepalived's checksum covers the auth data */
	CU_ASSERT_FATAL(read_pcap("v2auth", &c) >= 1);
	CU_ASSERT_EQUAL(c.pkt[0][26] << 8 | c.pkt[0][27], 0x140f);
	p = mkp(2, 120, 100, false, "s3cret", "10.99.0.1");
	kha_vrrp_build(&p, 120, GROUP, 1, buf, sizeof(buf));
	CU_ASSERT_EQUAL(buf[26] << 8 | buf[27], 0x140f);
	/* IP header checksum as the kernel would verify it */
	CU_ASSERT_EQUAL(kha_vrrp_csum(buf, 20, 0), 0);
}

/* ---- malformed corpus ---- */

/* Recompute the IPv4 and VRRP checksums after a mutation. */
static void refix(uint8_t *pkt, size_t len, bool v3_pseudo)
{
	size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
	uint32_t s, d;
	uint16_t c;

	memset(pkt + 10, 0, 2);
	c = kha_vrrp_csum(pkt, ihl, 0);
	memcpy(pkt + 10, &c, 2);
	memcpy(&s, pkt + 12, 4);
	memcpy(&d, pkt + 16, 4);
	memset(pkt + ihl + 6, 0, 2);
	c = kha_vrrp_msg_csum(v3_pseudo ? 3 : 2, pkt + ihl, len - ihl, s, d);
	memcpy(pkt + ihl + 6, &c, 2);
}

struct bad {
	const char *what;
	int version;       /* which base packet */
	bool unicast_node; /* the receiving node uses unicast peers */
	enum kha_vrrp_drop why;
	size_t len_delta;  /* applied after mutate: len + delta */
	void (*mutate)(uint8_t *pkt, size_t *len);
};

static void m_trunc_ip(uint8_t *p, size_t *len) { *len = 10; }
static void m_ipv6(uint8_t *p, size_t *len) { p[0] = 0x65; }
static void m_udp(uint8_t *p, size_t *len) { p[9] = 17; }
static void m_ihl4(uint8_t *p, size_t *len) { p[0] = 0x44; }
static void m_trunc_vrrp(uint8_t *p, size_t *len) { *len = 24; }
static void m_trailing(uint8_t *p, size_t *len)
{
	p[*len] = 0;
	*len += 1;
	p[3] += 1; /* even with a consistent IP total length */
	refix(p, *len, p[20] >> 4 == 3);
}
static void m_naddr3(uint8_t *p, size_t *len)
{
	p[23] = 3;
	refix(p, *len, p[20] >> 4 == 3);
}
static void m_totlen(uint8_t *p, size_t *len)
{
	p[3] += 4;
	refix(p, *len, p[20] >> 4 == 3);
}
static void m_ttl254(uint8_t *p, size_t *len) { p[8] = 254; }
static void m_ttl1(uint8_t *p, size_t *len) { p[8] = 1; }
static void m_v3_on_v2(uint8_t *p, size_t *len)
{
	/* a v3 advert of the same group, arriving at a v2 node */
	struct kha_vrrp_params q = mkp(3, 120, 100, false, NULL, "10.99.0.1");

	*len = (size_t)kha_vrrp_build(&q, 120, GROUP, 7, p, 256);
}
static void m_version4(uint8_t *p, size_t *len)
{
	p[20] = 0x41;
	refix(p, *len, true);
}
static void m_type2(uint8_t *p, size_t *len)
{
	p[20] = (uint8_t)((p[20] & 0xf0) | 2);
	refix(p, *len, p[20] >> 4 == 3);
}
static void m_type0(uint8_t *p, size_t *len)
{
	p[20] &= 0xf0;
	refix(p, *len, p[20] >> 4 == 3);
}
static void m_csum(uint8_t *p, size_t *len) { p[27] ^= 0x01; }
static void m_addr_no_fix(uint8_t *p, size_t *len) { p[28 + 3] ^= 0x40; }
static void m_v3_no_pseudo(uint8_t *p, size_t *len) { refix(p, *len, false); }
static void m_v3_group_csum_mcast(uint8_t *p, size_t *len)
{
	/* old-style checksum (pseudo dst = peer) on a multicast advert */
	uint32_t d = A("10.99.0.2");
	uint16_t c;

	memset(p + 26, 0, 2);
	c = kha_vrrp_msg_csum(3, p + 20, *len - 20, A("10.99.0.1"), d);
	memcpy(p + 26, &c, 2);
}
static void m_vrid(uint8_t *p, size_t *len)
{
	p[21] = 69;
	refix(p, *len, p[20] >> 4 == 3);
}
static void m_auth_ah(uint8_t *p, size_t *len)
{
	p[24] = 2;
	refix(p, *len, false);
}
static void m_auth_none(uint8_t *p, size_t *len)
{
	p[24] = 0;
	memset(p + 36, 0, 8);
	refix(p, *len, false);
}
static void m_pass(uint8_t *p, size_t *len)
{
	memcpy(p + 36, "s3cr3t\0\0", 8);
	refix(p, *len, false);
}
static void m_pass_prefix(uint8_t *p, size_t *len)
{
	memcpy(p + 36, "s3cre\0\0\0", 8);
	refix(p, *len, false);
}
static void m_interval(uint8_t *p, size_t *len)
{
	p[25] = 2;
	refix(p, *len, false);
}
static void m_naddr1(uint8_t *p, size_t *len)
{
	/* one VIP only, lengths consistent */
	bool v3 = p[20] >> 4 == 3;

	p[23] = 1;
	memmove(p + 32, p + 36, *len - 36);
	*len -= 4;
	p[3] -= 4;
	refix(p, *len, v3);
}
static void m_wrong_vip(uint8_t *p, size_t *len)
{
	p[28 + 4 + 3] = 0x66; /* 10.99.0.102 instead of .101 */
	refix(p, *len, p[20] >> 4 == 3);
}
static void m_unicast_to_mcast_node(uint8_t *p, size_t *len)
{
	uint32_t d = A("10.99.0.2");

	memcpy(p + 16, &d, 4);
	refix(p, *len, p[20] >> 4 == 3);
}
static void m_mcast_to_unicast_node(uint8_t *p, size_t *len) {}
static void m_zero_interval(uint8_t *p, size_t *len)
{
	p[24] = p[25] = 0;
	refix(p, *len, true);
}
static void m_own(uint8_t *p, size_t *len)
{
	uint32_t s = A("10.99.0.2");

	memcpy(p + 12, &s, 4);
	refix(p, *len, p[20] >> 4 == 3);
}
static void m_v2_zero_interval(uint8_t *p, size_t *len)
{
	p[25] = 0;
	refix(p, *len, false);
}

static const struct bad corpus[] = {
	{ "truncated IPv4 header", 3, false, KHA_VRRP_DROP_IP, 0, m_trunc_ip },
	{ "IP version 6", 3, false, KHA_VRRP_DROP_IP, 0, m_ipv6 },
	{ "protocol UDP", 3, false, KHA_VRRP_DROP_IP, 0, m_udp },
	{ "IHL 4", 3, false, KHA_VRRP_DROP_IP, 0, m_ihl4 },
	{ "truncated VRRP header", 3, false, KHA_VRRP_DROP_LENGTH, 0, m_trunc_vrrp },
	{ "trailing byte", 3, false, KHA_VRRP_DROP_LENGTH, 0, m_trailing },
	{ "count 3, two addresses", 3, false, KHA_VRRP_DROP_LENGTH, 0, m_naddr3 },
	{ "IP total length wrong", 2, false, KHA_VRRP_DROP_LENGTH, 0, m_totlen },
	{ "TTL 254 multicast", 3, false, KHA_VRRP_DROP_TTL, 0, m_ttl254 },
	{ "TTL 1 multicast", 2, false, KHA_VRRP_DROP_TTL, 0, m_ttl1 },
	{ "v3 advert at a v2 node", 2, false, KHA_VRRP_DROP_VERSION, 0, m_v3_on_v2 },
	{ "version 4", 3, false, KHA_VRRP_DROP_VERSION, 0, m_version4 },
	{ "type 2", 3, false, KHA_VRRP_DROP_TYPE, 0, m_type2 },
	{ "type 0", 2, false, KHA_VRRP_DROP_TYPE, 0, m_type0 },
	{ "v2 checksum bit flip", 2, false, KHA_VRRP_DROP_CHECKSUM, 0, m_csum },
	{ "v3 address changed, checksum not", 3, false, KHA_VRRP_DROP_CHECKSUM, 0, m_addr_no_fix },
	{ "v3 checksum without pseudo-header", 3, false, KHA_VRRP_DROP_CHECKSUM, 0, m_v3_no_pseudo },
	{ "v3 multicast, pseudo dst not the group", 3, false, KHA_VRRP_DROP_CHECKSUM, 0, m_v3_group_csum_mcast },
	{ "other VRID", 2, false, KHA_VRRP_DROP_VRID, 0, m_vrid },
	{ "auth type AH", 2, false, KHA_VRRP_DROP_AUTH_TYPE, 0, m_auth_ah },
	{ "no auth, we want a password", 2, false, KHA_VRRP_DROP_AUTH_TYPE, 0, m_auth_none },
	{ "wrong password", 2, false, KHA_VRRP_DROP_AUTH, 0, m_pass },
	{ "password prefix", 2, false, KHA_VRRP_DROP_AUTH, 0, m_pass_prefix },
	{ "v2 interval 2 s, ours 1 s", 2, false, KHA_VRRP_DROP_INTERVAL, 0, m_interval },
	{ "v2 interval 0", 2, false, KHA_VRRP_DROP_INTERVAL, 0, m_v2_zero_interval },
	{ "one VIP of two", 3, false, KHA_VRRP_DROP_ADDR_LIST, 0, m_naddr1 },
	{ "one VIP of two (v2)", 2, false, KHA_VRRP_DROP_ADDR_LIST, 0, m_naddr1 },
	{ "a VIP not ours", 3, false, KHA_VRRP_DROP_ADDR_LIST, 0, m_wrong_vip },
	{ "unicast at a multicast node", 3, false, KHA_VRRP_DROP_DEST, 0, m_unicast_to_mcast_node },
	{ "multicast at a unicast node", 2, true, KHA_VRRP_DROP_DEST, 0, m_mcast_to_unicast_node },
	{ "v3 interval 0", 3, false, KHA_VRRP_DROP_ZERO_INTERVAL, 0, m_zero_interval },
	{ "our own address", 3, false, KHA_VRRP_DROP_OWN, 0, m_own },
};

static void test_malformed_corpus(void)
{
	int n = (int)(sizeof(corpus) / sizeof(corpus[0]));

	CU_ASSERT(n >= 20);
	for (int i = 0; i < n; i++) {
		const struct bad *b = &corpus[i];
		/* sender 10.99.0.1 prio 120; receiver 10.99.0.2 prio 110 */
		struct kha_vrrp_params tx = mkp(b->version, 120,
						b->version == 2 ? 100 : 10,
						false, "s3cret", "10.99.0.1");
		struct kha_vrrp_params rx = mkp(b->version, 110,
						tx.advert_int_cs,
						b->unicast_node, "s3cret",
						"10.99.0.2");
		struct kha_vrrp_sm sm;
		uint8_t pkt[512] = {};
		size_t len;
		uint64_t down;
		unsigned act;

		len = (size_t)kha_vrrp_build(&tx, 120, GROUP, 1, pkt, 256);
		b->mutate(pkt, &len);

		kha_vrrp_sm_init(&sm, &rx);
		kha_vrrp_sm_start(&sm, 1000);
		down = sm.master_down_at;
		act = kha_vrrp_sm_rx(&sm, 1500, pkt, len);
		if (sm.drops[b->why] != 1) {
			struct kha_vrrp_advert a;

			fprintf(stderr, "corpus '%s': got %s\n", b->what,
				kha_vrrp_drop_name(
					kha_vrrp_parse(&rx, pkt, len, &a)));
		}
		CU_ASSERT_EQUAL(sm.drops[b->why], 1);
		CU_ASSERT_EQUAL(sm.rx_adverts, 0);
		/* ignored: no action, no timer reset, no master learned */
		CU_ASSERT_EQUAL(act, 0);
		CU_ASSERT_EQUAL(sm.state, KHA_VRRP_BACKUP);
		CU_ASSERT_EQUAL(sm.master_down_at, down);
		CU_ASSERT_EQUAL(sm.master_addr, 0);
	}
}

/* Valid edge cases keepalived accepts: IP options, VIPs in another order,
 * unicast with any TTL. */
static void test_valid_variants(void)
{
	struct kha_vrrp_params tx = mkp(3, 120, 10, false, NULL, "10.99.0.1");
	struct kha_vrrp_params rx = mkp(3, 110, 10, false, NULL, "10.99.0.2");
	struct kha_vrrp_advert a;
	uint8_t pkt[256], opt[256];
	size_t len = (size_t)kha_vrrp_build(&tx, 120, GROUP, 1, pkt, 256);

	/* IP header with a 4-byte option (NOP x4) */
	memcpy(opt, pkt, 20);
	memset(opt + 20, 1, 4);
	memcpy(opt + 24, pkt + 20, len - 20);
	opt[0] = 0x46;
	opt[3] += 4;
	refix(opt, len + 4, true);
	CU_ASSERT_EQUAL(kha_vrrp_parse(&rx, opt, len + 4, &a), KHA_VRRP_OK);
	CU_ASSERT_EQUAL(a.priority, 120);

	/* VIPs listed in the other order */
	tx.addrs[0] = A("10.99.0.101");
	tx.addrs[1] = A("10.99.0.100");
	len = (size_t)kha_vrrp_build(&tx, 120, GROUP, 1, pkt, 256);
	CU_ASSERT_EQUAL(kha_vrrp_parse(&rx, pkt, len, &a), KHA_VRRP_OK);

	/* unicast: TTL not checked (routed peers) */
	tx.unicast = rx.unicast = true;
	len = (size_t)kha_vrrp_build(&tx, 120, A("10.99.0.2"), 1, pkt, 256);
	pkt[8] = 61;
	refix(pkt, len, true);
	CU_ASSERT_EQUAL(kha_vrrp_parse(&rx, pkt, len, &a), KHA_VRRP_OK);
}

/* ---- the state machine on a fake clock ---- */

static struct kha_vrrp_advert adv(int version, uint8_t prio, const char *from,
				  uint16_t cs)
{
	struct kha_vrrp_advert a = {
		.saddr = A(from), .daddr = GROUP, .ttl = 255,
		.version = (uint8_t)version, .type = 1, .vrid = 68,
		.priority = prio, .naddr = 2, .adver_int_cs = cs,
	};

	return a;
}

static void sm_new(struct kha_vrrp_sm *sm, int version, uint8_t prio,
		   uint16_t cs, const char *primary)
{
	struct kha_vrrp_params p = mkp(version, prio, cs, false, NULL,
				       primary);

	kha_vrrp_sm_init(sm, &p);
}

static void test_timing_formulas(void)
{
	/* v2: skew (256-prio)/256 s */
	CU_ASSERT_EQUAL(kha_vrrp_skew_ms(2, 110, 100), 570);
	CU_ASSERT_EQUAL(kha_vrrp_master_down_ms(2, 110, 300), 9570);
	CU_ASSERT_EQUAL(kha_vrrp_master_down_ms(2, 255, 100), 3003);
	/* v3: ((256-prio) x Master_Adver_Interval)/256 cs */
	CU_ASSERT_EQUAL(kha_vrrp_skew_ms(3, 100, 10), 60);
	CU_ASSERT_EQUAL(kha_vrrp_master_down_ms(3, 100, 10), 360);
	CU_ASSERT_EQUAL(kha_vrrp_master_down_ms(3, 1, 100), 3000 + 996);
	/* effective priority: keepalived's track weight semantics */
	CU_ASSERT_EQUAL(kha_vrrp_eff_prio(120, 30, true), 90);
	CU_ASSERT_EQUAL(kha_vrrp_eff_prio(120, 30, false), 120);
	CU_ASSERT_EQUAL(kha_vrrp_eff_prio(20, 30, true), 1);
	CU_ASSERT_EQUAL(kha_vrrp_eff_prio(255, 30, true), 255);
	CU_ASSERT_EQUAL(kha_vrrp_eff_prio(254, 0, true), 254);
}

static void test_init_to_backup_and_master(void)
{
	struct kha_vrrp_sm sm;
	unsigned act;

	sm_new(&sm, 2, 110, 100, "10.99.0.2");
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_INIT);
	act = kha_vrrp_sm_start(&sm, 1000);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_BACKUP);
	CU_ASSERT_EQUAL(act, KHA_VRRP_ACT_STATE);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 1000 + 3570);
	/* no master: just before the timer nothing, at it MASTER */
	CU_ASSERT_EQUAL(kha_vrrp_sm_timer(&sm, 4569), 0);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_BACKUP);
	act = kha_vrrp_sm_timer(&sm, 4570);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_MASTER);
	CU_ASSERT_EQUAL(act, KHA_VRRP_ACT_STATE | KHA_VRRP_ACT_SEND_ADVERT |
				     KHA_VRRP_ACT_ADD_VIPS | KHA_VRRP_ACT_GARP);
	CU_ASSERT_EQUAL(sm.master_addr, A("10.99.0.2"));
	/* adverts every interval */
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 5570);
	CU_ASSERT_EQUAL(kha_vrrp_sm_timer(&sm, 5570), KHA_VRRP_ACT_SEND_ADVERT);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 6570);

	/* the address owner (255) goes MASTER at once */
	sm_new(&sm, 3, 255, 100, "10.99.0.2");
	act = kha_vrrp_sm_start(&sm, 0);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_MASTER);
	CU_ASSERT(act & KHA_VRRP_ACT_SEND_ADVERT);
	CU_ASSERT(act & KHA_VRRP_ACT_ADD_VIPS);
	CU_ASSERT_EQUAL(sm.last_reason, KHA_VRRP_R_STARTUP);

	/* `state MASTER`: backup that only waits out its skew */
	sm_new(&sm, 2, 120, 100, "10.99.0.2");
	sm.p.initial_state = KHA_VRRP_MASTER;
	kha_vrrp_sm_start(&sm, 0);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_BACKUP);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), kha_vrrp_skew_ms(2, 120, 100));
	/* ... and still defers to a better master's advert */
	struct kha_vrrp_advert a = adv(2, 130, "10.99.0.1", 100);
	kha_vrrp_sm_advert(&sm, 100, &a);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 100 + 3000 + 531);
}

static void test_backup_accepts_and_resets(void)
{
	struct kha_vrrp_sm sm;
	struct kha_vrrp_advert a = adv(2, 120, "10.99.0.1", 100);

	sm_new(&sm, 2, 110, 100, "10.99.0.2");
	kha_vrrp_sm_start(&sm, 0);
	/* a master's adverts every second keep us BACKUP for a minute */
	for (uint64_t t = 500; t < 60000; t += 1000) {
		CU_ASSERT_EQUAL(kha_vrrp_sm_timer(&sm, t), 0);
		CU_ASSERT_EQUAL(kha_vrrp_sm_advert(&sm, t, &a), 0);
		CU_ASSERT_EQUAL(sm.master_down_at, t + 3570);
	}
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_BACKUP);
	CU_ASSERT_EQUAL(sm.master_addr, A("10.99.0.1"));
	CU_ASSERT_EQUAL(sm.master_prio, 120);
	/* master gone: MASTER exactly 3 x 1 s + 0.57 s after the last one */
	CU_ASSERT_EQUAL(kha_vrrp_sm_timer(&sm, 59500 + 3569), 0);
	CU_ASSERT(kha_vrrp_sm_timer(&sm, 59500 + 3570) & KHA_VRRP_ACT_ADD_VIPS);
	CU_ASSERT_EQUAL(sm.last_reason, KHA_VRRP_R_MASTER_DOWN);
}

static void test_master_steps_down(void)
{
	struct kha_vrrp_sm sm;
	struct kha_vrrp_advert a;
	unsigned act;

	/* higher priority */
	sm_new(&sm, 2, 110, 100, "10.99.0.2");
	kha_vrrp_sm_start(&sm, 0);
	kha_vrrp_sm_timer(&sm, 3570);
	CU_ASSERT_EQUAL_FATAL(sm.state, KHA_VRRP_MASTER);
	a = adv(2, 120, "10.99.0.1", 100);
	act = kha_vrrp_sm_advert(&sm, 4000, &a);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_BACKUP);
	/* VIPs off, and one parting advert so the winner hears us */
	CU_ASSERT_EQUAL(act, KHA_VRRP_ACT_STATE | KHA_VRRP_ACT_DEL_VIPS |
				     KHA_VRRP_ACT_SEND_ADVERT);
	CU_ASSERT_EQUAL(sm.last_reason, KHA_VRRP_R_HIGHER_PRIO);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 4000 + 3570);

	/* equal priority, higher primary address wins */
	sm_new(&sm, 3, 100, 100, "10.99.0.2");
	kha_vrrp_sm_adopt(&sm, 0);
	a = adv(3, 100, "10.99.0.3", 100);
	act = kha_vrrp_sm_advert(&sm, 10, &a);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_BACKUP);
	CU_ASSERT(act & KHA_VRRP_ACT_DEL_VIPS);
	CU_ASSERT_EQUAL(sm.last_reason, KHA_VRRP_R_HIGHER_ADDR);

	/* equal priority, lower address: we stay and answer at once + GARP */
	sm_new(&sm, 3, 100, 100, "10.99.0.2");
	kha_vrrp_sm_adopt(&sm, 0);
	a = adv(3, 100, "10.99.0.1", 100);
	act = kha_vrrp_sm_advert(&sm, 10, &a);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_MASTER);
	CU_ASSERT_EQUAL(act, KHA_VRRP_ACT_SEND_ADVERT | KHA_VRRP_ACT_GARP);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 1010);

	/* address comparison is numeric, not byte-wise little-endian */
	sm_new(&sm, 3, 100, 100, "10.99.0.200");
	kha_vrrp_sm_adopt(&sm, 0);
	a = adv(3, 100, "10.99.1.1", 100);
	kha_vrrp_sm_advert(&sm, 10, &a);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_BACKUP);
}

static void test_preempt_modes(void)
{
	struct kha_vrrp_sm sm;
	struct kha_vrrp_advert low = adv(2, 110, "10.99.0.1", 100);
	uint64_t t;

	/* preempt (default): lower master's adverts are ignored, we take
	 * over when Master_Down_Timer runs out */
	sm_new(&sm, 2, 120, 100, "10.99.0.2");
	kha_vrrp_sm_start(&sm, 0);
	for (t = 100; sm.state == KHA_VRRP_BACKUP && t < 20000; t += 100) {
		if (t % 1000 == 100)
			kha_vrrp_sm_advert(&sm, t, &low);
		kha_vrrp_sm_timer(&sm, t);
	}
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_MASTER);
	CU_ASSERT(t <= 3000 + 531 + 100 + 100);
	CU_ASSERT_EQUAL(sm.last_reason, KHA_VRRP_R_MASTER_DOWN);

	/* nopreempt: the lower master keeps the VIP */
	sm_new(&sm, 2, 120, 100, "10.99.0.2");
	sm.p.preempt = false;
	kha_vrrp_sm_start(&sm, 0);
	for (t = 100; t < 60000; t += 100) {
		if (t % 1000 == 100)
			kha_vrrp_sm_advert(&sm, t, &low);
		kha_vrrp_sm_timer(&sm, t);
	}
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_BACKUP);
	CU_ASSERT_EQUAL(sm.master_addr, A("10.99.0.1"));

	/* preempt_delay 10 s: the lower master is accepted for 10 s after
	 * start, then preempted one Master_Down_Interval later */
	sm_new(&sm, 2, 120, 100, "10.99.0.2");
	sm.p.preempt_delay_ms = 10000;
	kha_vrrp_sm_start(&sm, 0);
	for (t = 100; sm.state == KHA_VRRP_BACKUP && t < 60000; t += 100) {
		if (t % 1000 == 100)
			kha_vrrp_sm_advert(&sm, t, &low);
		kha_vrrp_sm_timer(&sm, t);
	}
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_MASTER);
	CU_ASSERT(t > 10000);
	CU_ASSERT(t <= 10000 + 1000 + 3531 + 200);
	CU_ASSERT_EQUAL(sm.last_reason, KHA_VRRP_R_PREEMPT);
}

static void test_priority_zero(void)
{
	struct kha_vrrp_sm sm;
	struct kha_vrrp_advert a = adv(2, 120, "10.99.0.1", 100);
	struct kha_vrrp_advert z = adv(2, 0, "10.99.0.1", 100);
	unsigned act;

	/* backup: master resigns -> MASTER after Skew_Time only */
	sm_new(&sm, 2, 110, 100, "10.99.0.2");
	kha_vrrp_sm_start(&sm, 0);
	kha_vrrp_sm_advert(&sm, 500, &a);
	CU_ASSERT_EQUAL(kha_vrrp_sm_advert(&sm, 1000, &z), 0);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 1000 + 570);
	act = kha_vrrp_sm_timer(&sm, 1570);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_MASTER);
	CU_ASSERT(act & KHA_VRRP_ACT_ADD_VIPS);
	CU_ASSERT_EQUAL(sm.last_reason, KHA_VRRP_R_PRIO0);

	/* master: a priority-0 advert is answered at once */
	act = kha_vrrp_sm_advert(&sm, 1700, &z);
	CU_ASSERT_EQUAL(act, KHA_VRRP_ACT_SEND_ADVERT);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_MASTER);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 2700);

	/* v3: skew from the master's interval */
	sm_new(&sm, 3, 100, 100, "10.99.0.2");
	kha_vrrp_sm_start(&sm, 0);
	a = adv(3, 120, "10.99.0.1", 10);
	z = adv(3, 0, "10.99.0.1", 10);
	kha_vrrp_sm_advert(&sm, 100, &a);
	kha_vrrp_sm_advert(&sm, 200, &z);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 200 + 60);
}

static void test_v3_interval_adoption(void)
{
	struct kha_vrrp_sm sm;
	struct kha_vrrp_advert a = adv(3, 120, "10.99.0.1", 10);
	unsigned act;

	/* we are configured for 1 s, the master sends every 100 ms */
	sm_new(&sm, 3, 100, 100, "10.99.0.2");
	kha_vrrp_sm_start(&sm, 0);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 3000 + 609);
	kha_vrrp_sm_advert(&sm, 1000, &a);
	CU_ASSERT_EQUAL(sm.master_adver_int_cs, 10);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 1000 + 360);
	act = kha_vrrp_sm_timer(&sm, 1360);
	CU_ASSERT(act & KHA_VRRP_ACT_ADD_VIPS);
	/* as master we advertise our own interval again */
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 1360 + 1000);

	/* a master stepping down adopts the winner's interval too */
	a = adv(3, 200, "10.99.0.1", 20);
	kha_vrrp_sm_advert(&sm, 2000, &a);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_BACKUP);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm),
			2000 + kha_vrrp_master_down_ms(3, 100, 20));
}

static void test_effective_priority(void)
{
	struct kha_vrrp_sm sm;
	struct kha_vrrp_advert a;
	unsigned act;

	sm_new(&sm, 2, 120, 100, "10.99.0.2");
	kha_vrrp_sm_adopt(&sm, 0);
	/* fault: a master's drop is advertised at once */
	act = kha_vrrp_sm_set_faults(&sm, 100, true, false, false);
	CU_ASSERT_EQUAL(sm.eff_prio, 90);
	CU_ASSERT_EQUAL(act, KHA_VRRP_ACT_SEND_ADVERT);
	/* the same fault again: nothing to say */
	CU_ASSERT_EQUAL(kha_vrrp_sm_set_faults(&sm, 200, true, false, false), 0);
	/* several faults lower once, not per fault */
	kha_vrrp_sm_set_faults(&sm, 300, true, true, true);
	CU_ASSERT_EQUAL(sm.eff_prio, 90);
	/* now a 110 peer's advert wins over our 90 */
	a = adv(2, 110, "10.99.0.1", 100);
	act = kha_vrrp_sm_advert(&sm, 400, &a);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_BACKUP);
	CU_ASSERT(act & KHA_VRRP_ACT_DEL_VIPS);
	/* healed: 120 again; preempts when the timer armed on the 110
	 * master's last accepted advert (at priority 90: skew 648) runs out */
	kha_vrrp_sm_set_faults(&sm, 500, false, false, false);
	CU_ASSERT_EQUAL(sm.eff_prio, 120);
	kha_vrrp_sm_advert(&sm, 1400, &a); /* ignored: lower */
	CU_ASSERT(kha_vrrp_sm_timer(&sm, 400 + 3648) & KHA_VRRP_ACT_ADD_VIPS);
	CU_ASSERT_EQUAL(sm.last_reason, KHA_VRRP_R_PREEMPT);

	/* the owner (255) is never lowered */
	sm_new(&sm, 2, 255, 100, "10.99.0.2");
	kha_vrrp_sm_start(&sm, 0);
	CU_ASSERT_EQUAL(kha_vrrp_sm_set_faults(&sm, 1, true, true, true), 0);
	CU_ASSERT_EQUAL(sm.eff_prio, 255);

	/* a fault present at start is in the first advert */
	sm_new(&sm, 2, 120, 100, "10.99.0.2");
	kha_vrrp_sm_set_faults(&sm, 0, false, true, false);
	kha_vrrp_sm_start(&sm, 0);
	CU_ASSERT_EQUAL(sm.eff_prio, 90);
	/* backup skew uses the effective priority */
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm),
			kha_vrrp_master_down_ms(2, 90, 100));
}

static void test_shutdown_and_update(void)
{
	struct kha_vrrp_sm sm;
	struct kha_vrrp_params p;
	unsigned act;

	sm_new(&sm, 2, 120, 100, "10.99.0.2");
	kha_vrrp_sm_adopt(&sm, 0);
	act = kha_vrrp_sm_shutdown(&sm, 50);
	CU_ASSERT_EQUAL(act, KHA_VRRP_ACT_STATE | KHA_VRRP_ACT_SEND_PRIO0 |
				     KHA_VRRP_ACT_DEL_VIPS);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_INIT);
	CU_ASSERT_EQUAL(sm.tx_prio0, 1);
	CU_ASSERT_EQUAL(kha_vrrp_sm_next(&sm), 0);
	CU_ASSERT_EQUAL(sm.last_reason, KHA_VRRP_R_SHUTDOWN);

	/* a backup leaves silently */
	sm_new(&sm, 2, 110, 100, "10.99.0.2");
	kha_vrrp_sm_start(&sm, 0);
	act = kha_vrrp_sm_shutdown(&sm, 50);
	CU_ASSERT_EQUAL(act, KHA_VRRP_ACT_STATE);
	CU_ASSERT_EQUAL(sm.tx_prio0, 0);

	/* reload: new priority advertised, one VIP more added */
	sm_new(&sm, 2, 120, 100, "10.99.0.2");
	kha_vrrp_sm_adopt(&sm, 0);
	p = sm.p;
	p.priority = 130;
	act = kha_vrrp_sm_update(&sm, 10, &p);
	CU_ASSERT_EQUAL(act, KHA_VRRP_ACT_SEND_ADVERT);
	CU_ASSERT_EQUAL(sm.eff_prio, 130);
	p.addrs[p.nr_addrs++] = A("10.99.0.102");
	act = kha_vrrp_sm_update(&sm, 20, &p);
	CU_ASSERT(act & KHA_VRRP_ACT_ADD_VIPS);
	CU_ASSERT(act & KHA_VRRP_ACT_GARP);
	CU_ASSERT_EQUAL(sm.state, KHA_VRRP_MASTER);
}

static void test_params_from_conf(void)
{
	static struct kha_config cfg;
	struct kha_vrrp_params p;

	memset(&cfg, 0, sizeof(cfg));
	cfg.vrrp.enabled = true;
	cfg.vrrp.version = 2;
	cfg.vrrp.vrid = 68;
	cfg.vrrp.priority = 120;
	cfg.vrrp.advert_int_cs = 300;
	cfg.vrrp.preempt = true;
	cfg.vrrp.track_weight = -30;
	strcpy(cfg.vrrp.auth_pass, "12345678");
	cfg.nr_vips = 3;
	cfg.vips[0].addr.sin_addr.s_addr = A("172.27.129.253");
	cfg.vips[1].addr.sin_addr.s_addr = A("172.27.129.253"); /* :6443 */
	cfg.vips[2].addr.sin_addr.s_addr = A("172.27.129.254");
	CU_ASSERT_EQUAL(kha_vrrp_params_from_conf(&p, &cfg, A("172.27.129.105")),
			0);
	CU_ASSERT_EQUAL(p.nr_addrs, 2); /* deduped */
	CU_ASSERT_EQUAL(p.addrs[1], A("172.27.129.254"));
	CU_ASSERT_EQUAL(p.primary, A("172.27.129.105"));
	CU_ASSERT_EQUAL(p.auth_type, KHA_VRRP_AUTH_PASS);
	CU_ASSERT_EQUAL(memcmp(p.auth_pass, "12345678", 8), 0);
	CU_ASSERT_EQUAL(p.track_weight, 30);
	CU_ASSERT_EQUAL(p.advert_int_cs, 300);
	CU_ASSERT(!p.unicast);
	/* v3 never authenticates; unicast_src_ip wins over the primary */
	cfg.vrrp.version = 3;
	cfg.vrrp.nr_peers = 1;
	cfg.vrrp.src_addr.s_addr = A("172.27.129.99");
	cfg.vrrp.advert_int_cs = 10;
	CU_ASSERT_EQUAL(kha_vrrp_params_from_conf(&p, &cfg, A("172.27.129.105")),
			0);
	CU_ASSERT_EQUAL(p.auth_type, KHA_VRRP_AUTH_NONE);
	CU_ASSERT_EQUAL(p.primary, A("172.27.129.99"));
	CU_ASSERT(p.unicast);
	CU_ASSERT_EQUAL(p.advert_int_cs, 10);
	cfg.vrrp.vrid = 0;
	CU_ASSERT_EQUAL(kha_vrrp_params_from_conf(&p, &cfg, 0), -EINVAL);
}

/* The keepalived-like syntax through the real parser to the wire. */
static void test_params_from_parsed_config(void)
{
	static const char text[] =
		"interface eth0\n"
		"vip 10.99.0.100:8443 {\n"
		"\tbackend 10.99.0.1:6443\n"
		"}\n"
		"vip 10.99.0.100:6443 {\n"
		"\tbackend 10.99.0.1:6443\n"
		"}\n"
		"vip 10.99.0.101:8443 {\n"
		"\tbackend 10.99.0.1:6443\n"
		"}\n"
		"vrrp {\n"
		"\tversion 3\n"
		"\tvirtual_router_id 68\n"
		"\tpriority 120\n"
		"\tadvert_int 0.1\n"
		"\tnopreempt\n"
		"\tunicast_src_ip 10.99.0.1\n"
		"\tunicast_peer 10.99.0.2\n"
		"\ttrack_weight -30\n"
		"}\n";
	static struct kha_config cfg;
	struct kha_vrrp_params p;
	struct capture c;
	uint8_t buf[KHA_VRRP_PKT_MAX];
	char err[256] = "";
	int len;

	if (kha_config_parse("test.conf", text, &cfg, err, sizeof(err)))
		fprintf(stderr, "parse: %s\n", err);
	CU_ASSERT_EQUAL_FATAL(kha_config_parse("test.conf", text, &cfg, err,
					       sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(kha_vrrp_params_from_conf(&p, &cfg, 0), 0);
	CU_ASSERT_EQUAL(p.advert_int_cs, 10);
	CU_ASSERT_EQUAL(p.nr_addrs, 2);
	CU_ASSERT(!p.preempt);
	CU_ASSERT(p.unicast);
	CU_ASSERT_EQUAL(p.track_weight, 30);
	CU_ASSERT_EQUAL(p.primary, A("10.99.0.1"));
	/* same group as keepalived's v3 unicast capture, at 10 cs: the
	 * advert differs from it only in the interval and checksum bytes */
	CU_ASSERT_FATAL(read_pcap("v3uni", &c) >= 1);
	len = kha_vrrp_build(&p, 120, A("10.99.0.2"), 1, buf, sizeof(buf));
	CU_ASSERT_EQUAL_FATAL(len, (int)c.len[0]);
	CU_ASSERT_EQUAL(memcmp(buf, c.pkt[0], 24), 0);
	CU_ASSERT_EQUAL(buf[24] << 8 | buf[25], 10);
	CU_ASSERT_EQUAL(memcmp(buf + 28, c.pkt[0] + 28, 8), 0);
}

/* ---- two nodes on a simulated segment ---- */

struct sim_node {
	struct kha_vrrp_sm sm;
	bool alive;
	bool has_vips;
	int garps;
};

struct sim {
	struct sim_node n[2];
	bool partitioned;
	uint64_t now;
};

static void sim_apply(struct sim *s, int i, unsigned act);

static void sim_send(struct sim *s, int from, uint8_t prio)
{
	struct sim_node *src = &s->n[from], *dst = &s->n[!from];
	uint8_t pkt[KHA_VRRP_PKT_MAX];
	int len;

	len = kha_vrrp_build(&src->sm.p, prio, GROUP, 1, pkt, sizeof(pkt));
	CU_ASSERT_FATAL(len > 0);
	if (s->partitioned || !dst->alive)
		return;
	sim_apply(s, !from, kha_vrrp_sm_rx(&dst->sm, s->now, pkt, (size_t)len));
}

static void sim_apply(struct sim *s, int i, unsigned act)
{
	struct sim_node *n = &s->n[i];

	if (act & KHA_VRRP_ACT_ADD_VIPS)
		n->has_vips = true;
	if (act & KHA_VRRP_ACT_DEL_VIPS)
		n->has_vips = false;
	if (act & KHA_VRRP_ACT_GARP)
		n->garps++;
	if (act & KHA_VRRP_ACT_SEND_ADVERT)
		sim_send(s, i, n->sm.eff_prio);
	if (act & KHA_VRRP_ACT_SEND_PRIO0)
		sim_send(s, i, 0);
}

static void sim_init(struct sim *s, int version, uint16_t cs, uint8_t pa,
		     uint8_t pb)
{
	struct kha_vrrp_params a = mkp(version, pa, cs, false, NULL,
				       "10.99.0.1");
	struct kha_vrrp_params b = mkp(version, pb, cs, false, NULL,
				       "10.99.0.2");

	memset(s, 0, sizeof(*s));
	kha_vrrp_sm_init(&s->n[0].sm, &a);
	kha_vrrp_sm_init(&s->n[1].sm, &b);
}

static void sim_start(struct sim *s, int i)
{
	s->n[i].alive = true;
	sim_apply(s, i, kha_vrrp_sm_start(&s->n[i].sm, s->now));
}

/* Step the clock 1 ms at a time until `until`; returns the number of
 * sampled moments where the VIP was not held by exactly one node. */
static int sim_run(struct sim *s, uint64_t until)
{
	int bad = 0;

	for (; s->now < until; s->now++) {
		for (int i = 0; i < 2; i++) {
			uint64_t next = kha_vrrp_sm_next(&s->n[i].sm);

			if (s->n[i].alive && next && next <= s->now)
				sim_apply(s, i,
					  kha_vrrp_sm_timer(&s->n[i].sm, s->now));
		}
		bad += (s->n[0].alive && s->n[0].has_vips) +
			       (s->n[1].alive && s->n[1].has_vips) != 1;
	}
	return bad;
}

static int sim_holder(const struct sim *s)
{
	if (s->n[0].has_vips && s->n[0].alive && !(s->n[1].has_vips && s->n[1].alive))
		return 0;
	if (s->n[1].has_vips && s->n[1].alive && !(s->n[0].has_vips && s->n[0].alive))
		return 1;
	return -1;
}

static uint64_t sim_until_holder(struct sim *s, int who, uint64_t limit)
{
	uint64_t start = s->now;

	while (s->now - start < limit && sim_holder(s) != who)
		sim_run(s, s->now + 1);
	return s->now - start;
}

static void test_sim_election_and_failover(void)
{
	struct sim s;
	uint64_t took;

	/* keepalived reference: 120 vs 110, v2 advert_int 1 */
	sim_init(&s, 2, 100, 120, 110);
	sim_start(&s, 1);
	sim_run(&s, 500);
	sim_start(&s, 0);
	sim_run(&s, 10000);
	CU_ASSERT_EQUAL(sim_holder(&s), 0);
	CU_ASSERT_EQUAL(sim_run(&s, 70000), 0); /* exactly one, all along */

	/* SIGKILL of the master: B within 3 x 1 s + skew(110) */
	s.n[0].alive = false;
	s.n[0].has_vips = false;
	took = sim_until_holder(&s, 1, 10000);
	CU_ASSERT(took <= 3000 + 570);
	CU_ASSERT(took >= 2000);

	/* A returns (fresh start, preempt): it takes the VIP back */
	sim_init(&s, 2, 100, 120, 110); /* clean A, B master */
	sim_start(&s, 1);
	sim_run(&s, 5000);
	CU_ASSERT_EQUAL(sim_holder(&s), 1);
	sim_start(&s, 0);
	took = sim_until_holder(&s, 0, 10000);
	CU_ASSERT(took <= 3000 + 531 + 1);
	CU_ASSERT_EQUAL(sim_run(&s, s.now + 30000), 0);

	/* ... but not under nopreempt */
	sim_init(&s, 2, 100, 120, 110);
	s.n[0].sm.p.preempt = false;
	sim_start(&s, 1);
	sim_run(&s, 5000);
	sim_start(&s, 0);
	CU_ASSERT_EQUAL(sim_run(&s, 60000), 0);
	CU_ASSERT_EQUAL(sim_holder(&s), 1);
	CU_ASSERT_EQUAL(s.n[0].sm.state, KHA_VRRP_BACKUP);
}

static void test_sim_stop_split_brain_fault(void)
{
	struct sim s;
	uint64_t took;
	int garps;

	/* normal stop: priority 0 -> B within its skew (< one interval) */
	sim_init(&s, 2, 100, 120, 110);
	sim_start(&s, 0);
	sim_start(&s, 1);
	sim_run(&s, 10000);
	CU_ASSERT_EQUAL_FATAL(sim_holder(&s), 0);
	sim_apply(&s, 0, kha_vrrp_sm_shutdown(&s.n[0].sm, s.now));
	s.n[0].alive = false;
	took = sim_until_holder(&s, 1, 5000);
	CU_ASSERT(took <= 570 + 1); /* 1 ms steps */

	/* split brain: both masters during a partition; on healing one
	 * master within one advert interval, and the winner sent GARP */
	sim_init(&s, 2, 100, 120, 110);
	sim_start(&s, 0);
	sim_start(&s, 1);
	sim_run(&s, 10000);
	s.partitioned = true;
	sim_run(&s, 20000);
	CU_ASSERT_EQUAL(s.n[0].sm.state, KHA_VRRP_MASTER);
	CU_ASSERT_EQUAL(s.n[1].sm.state, KHA_VRRP_MASTER);
	garps = s.n[0].garps;
	s.partitioned = false;
	took = sim_until_holder(&s, 0, 5000);
	CU_ASSERT(took <= 1000);
	CU_ASSERT(s.n[0].garps > garps);
	CU_ASSERT_EQUAL(sim_run(&s, s.now + 20000), 0);

	/* no healthy backend on the master (120 - 30 = 90 < 110): B takes
	 * over; healed: A preempts back */
	sim_init(&s, 2, 100, 120, 110);
	sim_start(&s, 0);
	sim_start(&s, 1);
	sim_run(&s, 10000);
	sim_apply(&s, 0, kha_vrrp_sm_set_faults(&s.n[0].sm, s.now, true,
						false, false));
	took = sim_until_holder(&s, 1, 10000);
	CU_ASSERT(took <= 3000 + 570 + 1000);
	CU_ASSERT_EQUAL(sim_run(&s, s.now + 20000), 0);
	sim_apply(&s, 0, kha_vrrp_sm_set_faults(&s.n[0].sm, s.now, false,
						false, false));
	took = sim_until_holder(&s, 0, 10000);
	CU_ASSERT(took <= 3000 + 531 + 1000);
}

static void test_sim_v3_fast_failover(void)
{
	struct sim s;
	uint64_t worst = 0;

	/* two kha-xdp nodes, v3, 100 ms adverts: failover < 500 ms */
	for (int trial = 0; trial < 10; trial++) {
		uint64_t took;

		sim_init(&s, 3, 10, 120, 110);
		sim_start(&s, 0);
		sim_start(&s, 1);
		sim_run(&s, 2000 + (uint64_t)trial * 37);
		CU_ASSERT_EQUAL_FATAL(sim_holder(&s), 0);
		s.n[0].alive = false;
		s.n[0].has_vips = false;
		took = sim_until_holder(&s, 1, 2000);
		if (took > worst)
			worst = took;
	}
	CU_ASSERT(worst <= 300 + 57);
}

static CU_TestInfo packet_tests[] = {
	{ "decode keepalived 2.2 adverts", test_decode_keepalived },
	{ "encode byte-identical to keepalived", test_encode_like_keepalived },
	{ "checksums v2, v3, v3 unicast old", test_checksums },
	{ "malformed corpus ignored and counted", test_malformed_corpus },
	{ "valid variants accepted", test_valid_variants },
	{ "params from config", test_params_from_conf },
	{ "params from the parsed config syntax", test_params_from_parsed_config },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo sm_tests[] = {
	{ "timing formulas and effective priority", test_timing_formulas },
	{ "init -> backup / master", test_init_to_backup_and_master },
	{ "backup accepts and times out", test_backup_accepts_and_resets },
	{ "master steps down", test_master_steps_down },
	{ "preempt, nopreempt, preempt_delay", test_preempt_modes },
	{ "priority 0 both ways", test_priority_zero },
	{ "v3 adopts the master interval", test_v3_interval_adoption },
	{ "effective priority", test_effective_priority },
	{ "shutdown and reload", test_shutdown_and_update },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo sim_tests[] = {
	{ "election, kill, return, nopreempt", test_sim_election_and_failover },
	{ "stop, split brain, fault", test_sim_stop_split_brain_fault },
	{ "v3 100 ms failover", test_sim_v3_fast_failover },
	CU_TEST_INFO_NULL,
};

static const struct kha_suite suites[] = {
	{ "vrrp packets", packet_tests, NULL, NULL },
	{ "vrrp state machine", sm_tests, NULL, NULL },
	{ "vrrp two nodes", sim_tests, NULL, NULL },
	{ 0 },
};

KHA_TEST_MAIN(suites)
