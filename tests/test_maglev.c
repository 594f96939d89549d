// SPDX-License-Identifier: GPL-2.0
/*
 * Maglev table: what the data plane and the operator rely on. Same healthy
 * set -> same table on every node; equal backends share the slots evenly;
 * weights are honoured; a backend leaving moves (almost) only its own
 * clients; the user-space lookup is the one the XDP program makes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kha_test.h"
#include "maglev.h"
#include "kha_hash.h"

#define M_DEFAULT KHA_RING_SIZE_DEFAULT

static uint32_t ring_a[KHA_RING_SIZE_MAX], ring_b[KHA_RING_SIZE_MAX];

/* backend i: 10.<i/250>.<i%250>.<10+...>:6443, id 100 + i, weight 1 */
static void mk_backends(struct maglev_backend *b, int n)
{
	int i;

	memset(b, 0, sizeof(*b) * n);
	for (i = 0; i < n; i++) {
		char s[32];

		snprintf(s, sizeof(s), "10.%d.%d.%d", i / 250, i % 250,
			 10 + i % 7);
		inet_pton(AF_INET, s, &b[i].addr.v4);
		b[i].port = 6443;
		b[i].weight = 1;
		b[i].id = 100 + i;
	}
}

static void count_slots(const uint32_t *ring, uint32_t size, uint32_t base,
			uint32_t *cnt, int n)
{
	uint32_t i;

	memset(cnt, 0, sizeof(*cnt) * n);
	for (i = 0; i < size; i++) {
		CU_ASSERT_FATAL(ring[i] >= base && ring[i] < base + (uint32_t)n);
		cnt[ring[i] - base]++;
	}
}

/* xorshift: reproducible pseudo-random numbers without libc state */
static uint32_t rnd_state = 2463534242u;
static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

static void shuffle(struct maglev_backend *b, int n)
{
	int i;

	for (i = n - 1; i > 0; i--) {
		int j = rnd() % (i + 1);
		struct maglev_backend t = b[i];

		b[i] = b[j];
		b[j] = t;
	}
}

static void test_size_ok(void)
{
	CU_ASSERT_TRUE(maglev_size_ok(3));
	CU_ASSERT_TRUE(maglev_size_ok(251));
	CU_ASSERT_TRUE(maglev_size_ok(65537));
	CU_ASSERT_TRUE(maglev_size_ok(131071));
	CU_ASSERT_FALSE(maglev_size_ok(0));
	CU_ASSERT_FALSE(maglev_size_ok(1));
	CU_ASSERT_FALSE(maglev_size_ok(2));
	CU_ASSERT_FALSE(maglev_size_ok(9));
	CU_ASSERT_FALSE(maglev_size_ok(65536));
	CU_ASSERT_FALSE(maglev_size_ok(65535));
	CU_ASSERT_FALSE(maglev_size_ok(131073)); /* prime-free check: > max */
	CU_ASSERT_FALSE(maglev_size_ok(262147)); /* prime, but above the max */
}

static void test_bad_args(void)
{
	struct maglev_backend b[2];

	mk_backends(b, 2);
	CU_ASSERT_EQUAL(maglev_build(b, 2, ring_a, 65536), -EINVAL);
	CU_ASSERT_EQUAL(maglev_build(b, -1, ring_a, M_DEFAULT), -EINVAL);
	CU_ASSERT_EQUAL(maglev_build(NULL, 2, ring_a, M_DEFAULT), -EINVAL);
	/* the same address:port twice would make the table order-dependent */
	b[1].addr = b[0].addr;
	CU_ASSERT_EQUAL(maglev_build(b, 2, ring_a, M_DEFAULT), -EINVAL);
	CU_ASSERT_EQUAL(ring_a[0], KHA_NO_BACKEND);
	/* same address, other port: two distinct backends */
	b[1].port = 6444;
	CU_ASSERT_EQUAL(maglev_build(b, 2, ring_a, M_DEFAULT), 0);
	/* the id is also the free-slot sentinel */
	b[1].id = KHA_NO_BACKEND;
	CU_ASSERT_EQUAL(maglev_build(b, 2, ring_a, M_DEFAULT), -EINVAL);
}

static void test_deterministic(void)
{
	struct maglev_backend b[50], c[50];
	uint32_t map[200];
	uint32_t i;
	int k;

	mk_backends(b, 50);
	b[7].weight = 3;
	b[8].weight = 0;
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 50, ring_a, M_DEFAULT), 0);
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 50, ring_b, M_DEFAULT), 0);
	CU_ASSERT_EQUAL(memcmp(ring_a, ring_b, M_DEFAULT * 4), 0);

	/* any input order: same bytes */
	for (k = 0; k < 5; k++) {
		memcpy(c, b, sizeof(b));
		shuffle(c, 50);
		CU_ASSERT_EQUAL_FATAL(maglev_build(c, 50, ring_b, M_DEFAULT), 0);
		CU_ASSERT_EQUAL(memcmp(ring_a, ring_b, M_DEFAULT * 4), 0);
	}

	/*
	 * Another node numbering the same backends differently: the same
	 * backend (address) owns every slot.
	 */
	memcpy(c, b, sizeof(b));
	for (k = 0; k < 50; k++) {
		c[k].id = 199 - k;
		map[199 - k] = 100 + k;
	}
	shuffle(c, 50);
	CU_ASSERT_EQUAL_FATAL(maglev_build(c, 50, ring_b, M_DEFAULT), 0);
	for (i = 0; i < M_DEFAULT; i++)
		if (map[ring_b[i]] != ring_a[i]) {
			CU_FAIL("slot owner depends on backend id");
			break;
		}
}

/* each of N equal backends within 1% of M/N, for several N and M > 100 N */
static void test_balanced(void)
{
	static const struct { int n; uint32_t m; } cases[] = {
		{ 1, 251 }, { 2, 1009 }, { 3, 1009 }, { 5, 65537 },
		{ 7, 65537 }, { 16, 65537 }, { 100, 65537 }, { 256, 65537 },
		{ 300, 131071 }, { 9, 1201 },
	};
	static struct maglev_backend b[300];
	uint32_t cnt[300];
	unsigned int c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		int n = cases[c].n, i;
		uint32_t m = cases[c].m;
		double ideal = (double)m / n;

		CU_ASSERT_TRUE_FATAL(m > 100u * n);
		mk_backends(b, n);
		CU_ASSERT_EQUAL_FATAL(maglev_build(b, n, ring_a, m), 0);
		count_slots(ring_a, m, 100, cnt, n);
		for (i = 0; i < n; i++)
			CU_ASSERT(fabs(cnt[i] - ideal) <= 0.01 * ideal);
	}
}

static void test_weights(void)
{
	struct maglev_backend b[4];
	uint32_t cnt[4];
	uint32_t m = M_DEFAULT;

	/* 2:1 -> 2/3 and 1/3 */
	mk_backends(b, 2);
	b[0].weight = 2;
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 2, ring_a, m), 0);
	count_slots(ring_a, m, 100, cnt, 2);
	CU_ASSERT(fabs(cnt[0] - 2.0 * m / 3) <= 0.01 * 2.0 * m / 3);
	CU_ASSERT(fabs(cnt[1] - 1.0 * m / 3) <= 0.01 * 1.0 * m / 3);

	/* 1:2:3:4 */
	mk_backends(b, 4);
	b[0].weight = 1;
	b[1].weight = 2;
	b[2].weight = 3;
	b[3].weight = 4;
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 4, ring_a, m), 0);
	count_slots(ring_a, m, 100, cnt, 4);
	for (int i = 0; i < 4; i++) {
		double want = m * (i + 1) / 10.0;

		CU_ASSERT(fabs(cnt[i] - want) <= 0.01 * want);
	}

	/* extremes of the config range: 256 vs 1 */
	mk_backends(b, 2);
	b[0].weight = 256;
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 2, ring_a, m), 0);
	count_slots(ring_a, m, 100, cnt, 2);
	CU_ASSERT(fabs(cnt[1] - m / 257.0) <= 0.01 * m / 257.0);

	/* only relative weight matters: 10:10 == 1:1 */
	mk_backends(b, 2);
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 2, ring_a, m), 0);
	b[0].weight = b[1].weight = 10;
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 2, ring_b, m), 0);
	CU_ASSERT_EQUAL(memcmp(ring_a, ring_b, m * 4), 0);
}

/*
 * Slots that change owner although neither the old nor the new owner is
 * the backend that left/came back. Maglev is not perfectly minimal-
 * disruptive: measured with this implementation for M = 65537, one backend
 * removed (mean / worst over up to 10 choices of the removed backend):
 *   N = 3: 0.25% / 0.46%   N = 10: 0.29% / 0.40%
 *   N = 50: 0.47% / 0.53%  N = 256: 0.71% / 0.75%
 * of the table, on top of the removed backend's own 1/N (run with
 * KHA_TEST_VERBOSE=1 to print them). The bound asserted: 1% of M.
 */
static double collateral(const uint32_t *before, const uint32_t *after,
			 uint32_t size, uint32_t gone)
{
	uint32_t i, moved = 0;

	for (i = 0; i < size; i++)
		if (before[i] != after[i] && before[i] != gone &&
		    after[i] != gone)
			moved++;
	return (double)moved / size;
}

static void test_remove_add(void)
{
	static const int ns[] = { 3, 10, 50, 256 };
	static struct maglev_backend b[256], c[256];
	unsigned int t;

	for (t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
		int n = ns[t], gone, i, trials = n < 10 ? n : 10;
		double worst = 0, sum = 0;

		mk_backends(b, n);
		CU_ASSERT_EQUAL_FATAL(maglev_build(b, n, ring_a, M_DEFAULT), 0);
		for (i = 0; i < trials; i++) {
			double f;
			uint32_t s, gained = 0;

			gone = (i * 7919) % n;
			memcpy(c, b, sizeof(*b) * n);
			c[gone] = c[n - 1]; /* remove it; order changes too */
			CU_ASSERT_EQUAL_FATAL(
				maglev_build(c, n - 1, ring_b, M_DEFAULT), 0);
			/* every slot of the removed one is reassigned */
			for (s = 0; s < M_DEFAULT; s++) {
				CU_ASSERT_FATAL(ring_b[s] != b[gone].id);
				if (ring_a[s] == b[gone].id)
					gained++;
			}
			CU_ASSERT(gained > 0);
			f = collateral(ring_a, ring_b, M_DEFAULT, b[gone].id);
			sum += f;
			if (f > worst)
				worst = f;
			CU_ASSERT(f <= 0.01);

			/* adding it back restores the original table exactly */
			c[n - 1] = b[gone];
			CU_ASSERT_EQUAL_FATAL(
				maglev_build(c, n, ring_b, M_DEFAULT), 0);
			CU_ASSERT_EQUAL(memcmp(ring_a, ring_b, M_DEFAULT * 4),
					0);
		}
		if (getenv("KHA_TEST_VERBOSE"))
			printf("\n  remove 1 of %d: collateral mean %.3f%% worst %.3f%%",
			       n, 100 * sum / trials, 100 * worst);
	}

	/* adding a new backend to N: collateral bound too */
	mk_backends(b, 11);
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 10, ring_a, M_DEFAULT), 0);
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 11, ring_b, M_DEFAULT), 0);
	CU_ASSERT(collateral(ring_a, ring_b, M_DEFAULT, b[10].id) <= 0.01);
}

static void test_weight_zero(void)
{
	struct maglev_backend b[5];
	uint32_t cnt[5];
	uint32_t i;

	mk_backends(b, 5);
	b[2].weight = 0;
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 5, ring_a, M_DEFAULT), 0);
	count_slots(ring_a, M_DEFAULT, 100, cnt, 5);
	CU_ASSERT_EQUAL(cnt[2], 0);
	/* a drained backend is exactly as if it were not configured */
	b[2] = b[4];
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 4, ring_b, M_DEFAULT), 0);
	CU_ASSERT_EQUAL(memcmp(ring_a, ring_b, M_DEFAULT * 4), 0);

	/* all weights 0: every slot empty */
	for (i = 0; i < 5; i++)
		b[i].weight = 0;
	memset(ring_a, 0, sizeof(ring_a));
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 5, ring_a, M_DEFAULT), 0);
	for (i = 0; i < M_DEFAULT; i++)
		if (ring_a[i] != KHA_NO_BACKEND) {
			CU_FAIL("slot owned with every weight 0");
			break;
		}
}

static void test_empty(void)
{
	uint32_t i;
	struct kha_addr cl = { .v4 = htonl(0x0a000001) };

	memset(ring_a, 0, sizeof(ring_a));
	CU_ASSERT_EQUAL_FATAL(maglev_build(NULL, 0, ring_a, 1009), 0);
	for (i = 0; i < 1009; i++)
		CU_ASSERT_EQUAL_FATAL(ring_a[i], KHA_NO_BACKEND);
	CU_ASSERT_EQUAL(maglev_lookup(ring_a, 1009, &cl), KHA_NO_BACKEND);
}

static void test_lookup(void)
{
	struct maglev_backend b[3];
	uint32_t hits[3] = { 0 };
	int i;

	mk_backends(b, 3);
	CU_ASSERT_EQUAL_FATAL(maglev_build(b, 3, ring_a, M_DEFAULT), 0);
	for (i = 0; i < 10000; i++) {
		struct kha_addr cl = { .v4 = rnd() };
		uint32_t id = maglev_lookup(ring_a, M_DEFAULT, &cl);

		CU_ASSERT_EQUAL_FATAL(id, ring_a[kha_slot_of(&cl, M_DEFAULT)]);
		CU_ASSERT_FATAL(id >= 100 && id < 103);
		hits[id - 100]++;
		/* balance source: the same client always gets the same one */
		CU_ASSERT_EQUAL(maglev_lookup(ring_a, M_DEFAULT, &cl), id);
	}
	/* clients, not just slots, are spread: ~3333 each */
	for (i = 0; i < 3; i++)
		CU_ASSERT(hits[i] > 3000 && hits[i] < 3666);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * The daemon publishes within 10 ms of a verdict: building is most of it.
 * Asserted on the median of 21 runs so a busy test machine does not flake.
 */
static void test_build_time(void)
{
	static struct maglev_backend b[KHA_MAX_BACKENDS];
	double t[21];
	int i;

	mk_backends(b, KHA_MAX_BACKENDS);
	for (i = 0; i < KHA_MAX_BACKENDS; i++)
		b[i].weight = 1 + i % 4;
	for (i = 0; i < 21; i++) {
		double t0 = now_ms();

		CU_ASSERT_EQUAL_FATAL(maglev_build(b, KHA_MAX_BACKENDS, ring_a,
						   M_DEFAULT), 0);
		t[i] = now_ms() - t0;
	}
	qsort(t, 21, sizeof(t[0]), cmp_double);
	printf("\n  maglev_build %d backends x %u slots: best %.2f ms, median %.2f ms, worst %.2f ms ",
	       KHA_MAX_BACKENDS, M_DEFAULT, t[0], t[10], t[20]);
	CU_ASSERT(t[0] < 5.0);
	CU_ASSERT(t[10] < 10.0);
}

static CU_TestInfo maglev_tests[] = {
	{ "size_ok", test_size_ok },
	{ "bad_args", test_bad_args },
	{ "deterministic", test_deterministic },
	{ "balanced", test_balanced },
	{ "weights", test_weights },
	{ "remove_add", test_remove_add },
	{ "weight_zero", test_weight_zero },
	{ "empty", test_empty },
	{ "lookup", test_lookup },
	{ "build_time", test_build_time },
	CU_TEST_INFO_NULL,
};

static const struct kha_suite suites[] = {
	{ "maglev", maglev_tests, NULL, NULL },
	{ 0 },
};

KHA_TEST_MAIN(suites)
