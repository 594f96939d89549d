/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared CUnit main for every tests/test_*.c. A test file defines
 *   static const struct kha_suite suites[] = { { "name", tests }, { 0 } };
 * with tests a CU_TestInfo array ending in CU_TEST_INFO_NULL, then
 *   KHA_TEST_MAIN(suites)
 * The binary prints `RESULT: <passed> passed, <failed> failed` (counted in
 * tests, not asserts), which tests/run-all.sh adds up, and exits non-zero
 * on any failure.
 */
#ifndef KHA_TEST_H
#define KHA_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <CUnit/Basic.h>

struct kha_suite {
	const char *name;
	CU_TestInfo *tests;
	CU_InitializeFunc init;
	CU_CleanupFunc cleanup;
};

static inline int kha_test_main(const struct kha_suite *s, int argc,
				char **argv)
{
	unsigned int run, failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	for (; s->name; s++) {
		CU_pSuite suite = CU_add_suite(s->name, s->init, s->cleanup);
		CU_TestInfo *t;

		if (!suite)
			return 2;
		for (t = s->tests; t->pName; t++)
			if (!CU_add_test(suite, t->pName, t->pTestFunc))
				return 2;
	}
	CU_basic_set_mode(argc > 1 ? CU_BRM_VERBOSE : CU_BRM_NORMAL);
	CU_basic_run_tests();
	run = CU_get_number_of_tests_run();
	failed = CU_get_number_of_tests_failed() +
		 CU_get_number_of_suites_failed();
	printf("RESULT: %u passed, %u failed\n", run - (failed > run ? run : failed),
	       failed);
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

#define KHA_TEST_MAIN(suites)                                                  \
	int main(int argc, char **argv)                                        \
	{                                                                      \
		return kha_test_main(suites, argc, argv);                      \
	}

#endif /* KHA_TEST_H */
