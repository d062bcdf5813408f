/*
 * testutil.h - shared glue for the Check unit tests.
 *
 * Each tests/unit/test_X.c defines one Suite *X_suite(void) and ends with
 * MP_TEST_MAIN(X_suite).  The runner prints Check's usual summary line
 * ("100%: Checks: N, Failures: 0, Errors: 0"), which tests/run-all sums.
 */
#ifndef MAILPUNCH_TESTUTIL_H
#define MAILPUNCH_TESTUTIL_H

#include <check.h>
#include <stdlib.h>

#define MP_TEST_MAIN(suite_fn)                                          \
	int main(void)                                                  \
	{                                                               \
		SRunner *sr = srunner_create(suite_fn());               \
		srunner_run_all(sr, CK_NORMAL);                         \
		int failed = srunner_ntests_failed(sr);                 \
		srunner_free(sr);                                       \
		return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;       \
	}

/* Directory holding the sources (for test vectors), set by `make check`. */
static inline const char *
mp_test_srcdir(void)
{
	const char *d = getenv("top_srcdir");
	return d && *d ? d : ".";
}

#endif
