// SPDX-License-Identifier: GPL-2.0
/*
 * Rise/fall logic (user/health.c) driven by a fake clock: the verdicts, the
 * time they take, the interval between checks and haproxy's words.
 */
#include <string.h>

#include "kha_test.h"
#include "health.h"

static struct kha_check_conf conf(uint32_t inter, uint32_t fall, uint32_t rise)
{
	struct kha_check_conf c = {
		.type = KHA_CHECK_TCP,
		.inter = inter,
		.fall = fall,
		.rise = rise,
	};
	return c;
}

/* one check result at fake time t; returns the transition flag */
static bool rep(struct kha_health *h, const struct kha_check_conf *c,
		enum kha_check_result r, uint64_t t)
{
	return kha_health_report(h, c, r, 0, NULL, 1, t);
}

static void test_start_provisional(void)
{
	struct kha_check_conf c = conf(2000, 3, 2);
	struct kha_health h;

	/* haproxy: servers start UP but one failed check takes them DOWN */
	kha_health_init(&h, &c, KHA_START_PROVISIONAL, 100);
	CU_ASSERT_TRUE(h.up);
	CU_ASSERT_EQUAL(h.last, KHA_CHK_INI);
	CU_ASSERT_EQUAL(h.last_change_ms, 100);
	CU_ASSERT_EQUAL(h.checks, 0);
	CU_ASSERT_TRUE(rep(&h, &c, KHA_CHK_L4CON, 200));
	CU_ASSERT_FALSE(h.up);
	CU_ASSERT_EQUAL(h.last_change_ms, 200);
	CU_ASSERT_EQUAL(h.change_result, KHA_CHK_L4CON);

	/* a first success settles it: from then on `fall` failures */
	kha_health_init(&h, &c, KHA_START_PROVISIONAL, 100);
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L4OK, 200));
	CU_ASSERT_TRUE(h.up);
	CU_ASSERT_EQUAL(h.count, 0);
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L4CON, 2200));
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L4CON, 4200));
	CU_ASSERT_TRUE(h.up);
	CU_ASSERT_TRUE(rep(&h, &c, KHA_CHK_L4CON, 6200));
	CU_ASSERT_FALSE(h.up);
}

static void test_fall(void)
{
	struct kha_check_conf c = conf(2000, 2, 2);
	struct kha_health h;

	kha_health_init(&h, &c, KHA_START_UP, 0);
	CU_ASSERT_TRUE(h.up);
	CU_ASSERT_EQUAL(h.count, 0);
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L4TOUT, 2000));
	CU_ASSERT_TRUE(h.up);
	CU_ASSERT_EQUAL(h.count, 1);
	CU_ASSERT_TRUE(rep(&h, &c, KHA_CHK_L4TOUT, 4000));
	CU_ASSERT_FALSE(h.up);
	CU_ASSERT_EQUAL(h.count, 0);
	CU_ASSERT_EQUAL(h.transitions, 1);
	CU_ASSERT_EQUAL(h.checks, 2);
	CU_ASSERT_EQUAL(h.failures, 2);
	/* further failures keep it DOWN and report no new transition */
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L4CON, 6000));
	CU_ASSERT_FALSE(h.up);
	CU_ASSERT_EQUAL(h.count, 0);
	CU_ASSERT_EQUAL(h.transitions, 1);
	CU_ASSERT_EQUAL(h.last_change_ms, 4000);
	CU_ASSERT_EQUAL(h.last_check_ms, 6000);
}

static void test_rise(void)
{
	struct kha_check_conf c = conf(2000, 2, 3);
	struct kha_health h;

	kha_health_init(&h, &c, KHA_START_DOWN, 0);
	CU_ASSERT_FALSE(h.up);
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L7OK, 1000));
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L7OK, 2000));
	CU_ASSERT_FALSE(h.up);
	CU_ASSERT_EQUAL(h.count, 2);
	CU_ASSERT_TRUE(rep(&h, &c, KHA_CHK_L7OK, 3000));
	CU_ASSERT_TRUE(h.up);
	CU_ASSERT_EQUAL(h.last_change_ms, 3000);
	CU_ASSERT_EQUAL(h.change_result, KHA_CHK_L7OK);
	CU_ASSERT_EQUAL(h.failures, 0);
}

static void test_reset_in_the_middle(void)
{
	struct kha_check_conf c = conf(2000, 3, 3);
	struct kha_health h;

	/* UP: two failures, a success, two failures: still UP */
	kha_health_init(&h, &c, KHA_START_UP, 0);
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L4CON, 1));
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L4CON, 2));
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L4OK, 3));
	CU_ASSERT_EQUAL(h.count, 0);
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L4CON, 4));
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L4CON, 5));
	CU_ASSERT_TRUE(h.up);
	CU_ASSERT_TRUE(rep(&h, &c, KHA_CHK_L4CON, 6));
	CU_ASSERT_FALSE(h.up);

	/* DOWN: two successes, a failure, two successes: still DOWN */
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L7OK, 7));
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L7OK, 8));
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L7STS, 9));
	CU_ASSERT_EQUAL(h.count, 0);
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L7OK, 10));
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_L7OK, 11));
	CU_ASSERT_FALSE(h.up);
	CU_ASSERT_TRUE(rep(&h, &c, KHA_CHK_L7OK, 12));
	CU_ASSERT_TRUE(h.up);
	CU_ASSERT_EQUAL(h.transitions, 2);
}

static void test_every_failure_kind(void)
{
	static const enum kha_check_result bad[] = {
		KHA_CHK_SOCKERR, KHA_CHK_L4TOUT, KHA_CHK_L4CON, KHA_CHK_L6TOUT,
		KHA_CHK_L6RSP,   KHA_CHK_L7TOUT, KHA_CHK_L7RSP, KHA_CHK_L7STS,
	};
	static const enum kha_check_result good[] = {
		KHA_CHK_L4OK, KHA_CHK_L6OK, KHA_CHK_L7OK,
	};
	struct kha_check_conf c = conf(100, 1, 1);
	struct kha_health h;
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kha_health_init(&h, &c, KHA_START_UP, 0);
		CU_ASSERT_FALSE(kha_check_result_ok(bad[i]));
		CU_ASSERT_TRUE(rep(&h, &c, bad[i], 1));
		CU_ASSERT_FALSE(h.up);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		kha_health_init(&h, &c, KHA_START_DOWN, 0);
		CU_ASSERT_TRUE(kha_check_result_ok(good[i]));
		CU_ASSERT_TRUE(rep(&h, &c, good[i], 1));
		CU_ASSERT_TRUE(h.up);
	}
	/* INI is "no result": it changes nothing */
	kha_health_init(&h, &c, KHA_START_UP, 0);
	CU_ASSERT_FALSE(rep(&h, &c, KHA_CHK_INI, 1));
	CU_ASSERT_TRUE(h.up);
	CU_ASSERT_EQUAL(h.checks, 0);
}

static void test_conf_change_lowers_fall(void)
{
	struct kha_check_conf c = conf(2000, 5, 2);
	struct kha_health h;

	kha_health_init(&h, &c, KHA_START_UP, 0);
	rep(&h, &c, KHA_CHK_L4CON, 1);
	rep(&h, &c, KHA_CHK_L4CON, 2);
	rep(&h, &c, KHA_CHK_L4CON, 3);
	CU_ASSERT_EQUAL(h.count, 3);
	/* reload with fall 2: the next failure is past it, DOWN at once */
	c.fall = 2;
	CU_ASSERT_TRUE(rep(&h, &c, KHA_CHK_L4CON, 4));
	CU_ASSERT_FALSE(h.up);
}

static void test_intervals(void)
{
	struct kha_check_conf c = conf(2000, 2, 2);
	struct kha_health h;

	c.fastinter = 500;
	c.downinter = 5000;
	kha_health_init(&h, &c, KHA_START_UP, 0);
	CU_ASSERT_EQUAL(kha_health_next_interval(&h, &c), 2000);
	rep(&h, &c, KHA_CHK_L4CON, 1); /* UP, going down */
	CU_ASSERT_EQUAL(kha_health_next_interval(&h, &c), 500);
	rep(&h, &c, KHA_CHK_L4CON, 2); /* settled DOWN */
	CU_ASSERT_FALSE(h.up);
	CU_ASSERT_EQUAL(kha_health_next_interval(&h, &c), 5000);
	rep(&h, &c, KHA_CHK_L4OK, 3); /* DOWN, going up */
	CU_ASSERT_EQUAL(kha_health_next_interval(&h, &c), 500);
	rep(&h, &c, KHA_CHK_L4OK, 4); /* settled UP */
	CU_ASSERT_TRUE(h.up);
	CU_ASSERT_EQUAL(kha_health_next_interval(&h, &c), 2000);

	/* provisional start is a pending transition: fastinter */
	kha_health_init(&h, &c, KHA_START_PROVISIONAL, 0);
	CU_ASSERT_EQUAL(kha_health_next_interval(&h, &c), 500);

	/* haproxy's fallbacks: no downinter -> fastinter, none -> inter */
	kha_health_init(&h, &c, KHA_START_DOWN, 0);
	c.downinter = 0;
	CU_ASSERT_EQUAL(kha_health_next_interval(&h, &c), 500);
	c.fastinter = 0;
	CU_ASSERT_EQUAL(kha_health_next_interval(&h, &c), 2000);
	rep(&h, &c, KHA_CHK_L4OK, 5);
	CU_ASSERT_EQUAL(kha_health_next_interval(&h, &c), 2000);
}

static void test_timeout(void)
{
	struct kha_check_conf c = conf(2000, 2, 2);

	CU_ASSERT_EQUAL(kha_check_timeout(&c), 2000); /* 0 -> inter */
	c.timeout = 700;
	CU_ASSERT_EQUAL(kha_check_timeout(&c), 700);
	c.timeout = 5000; /* never longer than the interval */
	CU_ASSERT_EQUAL(kha_check_timeout(&c), 2000);
}

/*
 * The promise of docs/health.md: a backend that dies is out within
 * fall x inter + timeout. Simulate the prober's fixed-rate schedule with a
 * fake clock: checks are due every next_interval() after the previous due
 * time, a failing check reports after `timeout` (the worst case, L4TOUT).
 */
static uint64_t time_to_down(uint32_t inter, uint32_t fastinter,
			     uint32_t timeout, uint32_t fall, uint64_t death)
{
	struct kha_check_conf c = conf(inter, fall, 2);
	struct kha_health h;
	uint64_t due = 0;

	c.fastinter = fastinter;
	c.timeout = timeout;
	kha_health_init(&h, &c, KHA_START_UP, 0);
	for (;;) {
		bool dead = due >= death;
		uint64_t done = due + (dead ? kha_check_timeout(&c) : 1);

		if (kha_health_report(&h, &c,
				      dead ? KHA_CHK_L4TOUT : KHA_CHK_L4OK, 0,
				      NULL, done - due, done))
			return done - death;
		due += kha_health_next_interval(&h, &c);
		if (due > 1000000)
			return UINT64_MAX;
	}
}

static void test_removal_time(void)
{
	uint64_t t, worst = 0, death;

	/* the reference deployment: inter 2000 fall 2, timeout 1000 */
	for (death = 1; death <= 2000; death += 37) {
		t = time_to_down(2000, 0, 1000, 2, 10000 + death);
		CU_ASSERT(t <= 2 * 2000 + 1000);
		if (t > worst)
			worst = t;
	}
	/* and it is not much faster either: the worst case is close */
	CU_ASSERT(worst >= 2 * 2000 + 1000 - 40);
	/* fastinter shortens everything after the first failure */
	for (death = 1; death <= 2000; death += 37) {
		t = time_to_down(2000, 200, 100, 3, 10000 + death);
		CU_ASSERT(t <= 2000 + 2 * 200 + 100);
	}
}

static void test_words(void)
{
	struct kha_check_conf c = conf(2000, 1, 1);
	struct kha_health h;
	char buf[128];

	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_INI), "INI");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_SOCKERR),
			       "SOCKERR");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_L4OK), "L4OK");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_L4TOUT), "L4TOUT");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_L4CON), "L4CON");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_L6OK), "L6OK");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_L6TOUT), "L6TOUT");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_L6RSP), "L6RSP");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_L7OK), "L7OK");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_L7TOUT), "L7TOUT");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_L7RSP), "L7RSP");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK_L7STS), "L7STS");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str(KHA_CHK__MAX), "UNKNOWN");
	CU_ASSERT_STRING_EQUAL(kha_check_result_str((enum kha_check_result)-1),
			       "UNKNOWN");

	kha_health_init(&h, &c, KHA_START_UP, 0);
	kha_health_report(&h, &c, KHA_CHK_L4CON, 0, "Connection refused", 0, 1);
	CU_ASSERT_STRING_EQUAL(kha_health_reason(&h, buf, sizeof(buf)),
			       "L4CON Connection refused");
	kha_health_report(&h, &c, KHA_CHK_L7STS, 500, "Internal Server Error",
			  3, 2);
	CU_ASSERT_STRING_EQUAL(kha_health_reason(&h, buf, sizeof(buf)),
			       "L7STS 500 Internal Server Error");
	CU_ASSERT_EQUAL(h.last_status, 500);
	CU_ASSERT_EQUAL(h.last_duration_ms, 3);
	kha_health_report(&h, &c, KHA_CHK_L7OK, 200, NULL, 0, 3);
	CU_ASSERT_STRING_EQUAL(kha_health_reason(&h, buf, sizeof(buf)),
			       "L7OK 200");
	kha_health_report(&h, &c, KHA_CHK_L4TOUT, 0, NULL, 0, 4);
	CU_ASSERT_STRING_EQUAL(kha_health_reason(&h, buf, sizeof(buf)),
			       "L4TOUT");
	/* a long detail is cut, never overflows */
	kha_health_report(&h, &c, KHA_CHK_L6RSP, 0,
			  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			  0, 5);
	CU_ASSERT_EQUAL(strlen(h.last_detail), sizeof(h.last_detail) - 1);
	kha_health_reason(&h, buf, 10);
	CU_ASSERT_EQUAL(strlen(buf), 9);
}

static CU_TestInfo health_tests[] = {
	{ "provisional start (haproxy)", test_start_provisional },
	{ "fall consecutive failures go DOWN", test_fall },
	{ "rise consecutive successes go UP", test_rise },
	{ "a result in the middle resets the count", test_reset_in_the_middle },
	{ "every failure kind counts", test_every_failure_kind },
	{ "lowering fall on reload", test_conf_change_lowers_fall },
	{ "inter / fastinter / downinter", test_intervals },
	{ "timeout defaults and cap", test_timeout },
	{ "removal within fall x inter + timeout", test_removal_time },
	{ "haproxy words and reasons", test_words },
	CU_TEST_INFO_NULL,
};

static const struct kha_suite suites[] = {
	{ "health", health_tests, NULL, NULL },
	{ NULL, NULL, NULL, NULL },
};

KHA_TEST_MAIN(suites)
