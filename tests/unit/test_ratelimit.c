/* test_ratelimit.c - token buckets: burst, refill, keys, parsing. */
#include <stdio.h>

#include "mailpunch/error.h"
#include "mailpunch/ratelimit.h"
#include "testutil.h"

START_TEST(burst_then_refill)
{
	mp_ratelimit *r = mp_ratelimit_new(64, 3, 60);   /* 3 per minute */
	int i;

	for (i = 0; i < 3; i++)
		ck_assert_int_eq(mp_ratelimit_take(r, "a@x", 1000), MP_OK);
	ck_assert_int_eq(mp_ratelimit_take(r, "a@x", 1000), MP_ERR_RATELIMIT);
	/* another key is not affected */
	ck_assert_int_eq(mp_ratelimit_take(r, "b@x", 1000), MP_OK);
	/* one token comes back every 20 s */
	ck_assert_int_eq(mp_ratelimit_take(r, "a@x", 1019), MP_ERR_RATELIMIT);
	ck_assert_int_eq(mp_ratelimit_take(r, "a@x", 1020), MP_OK);
	ck_assert_int_eq(mp_ratelimit_take(r, "a@x", 1021), MP_ERR_RATELIMIT);
	/* case-insensitive keys */
	ck_assert_int_eq(mp_ratelimit_take(r, "A@X", 1021), MP_ERR_RATELIMIT);
	/* never more than the burst after a long pause */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(mp_ratelimit_take(r, "a@x", 100000), MP_OK);
	ck_assert_int_eq(mp_ratelimit_take(r, "a@x", 100000), MP_ERR_RATELIMIT);
	mp_ratelimit_free(r);
}
END_TEST

START_TEST(colliding_keys_never_loosen)
{
	/* one slot: every key shares it */
	mp_ratelimit *r = mp_ratelimit_new(1, 2, 3600);
	char key[32];
	int i, ok = 0;

	ck_assert_int_eq(mp_ratelimit_take(r, "victim", 0), MP_OK);
	ck_assert_int_eq(mp_ratelimit_take(r, "victim", 0), MP_OK);
	/* a flood of fresh keys cannot reset the victim's empty bucket */
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "k%d", i);
		ok += mp_ratelimit_take(r, key, 1) == MP_OK;
	}
	ck_assert_int_eq(ok, 0);
	ck_assert_int_eq(mp_ratelimit_take(r, "victim", 1), MP_ERR_RATELIMIT);
	mp_ratelimit_free(r);
}
END_TEST

START_TEST(disabled_and_parse)
{
	mp_ratelimit *r = mp_ratelimit_new(8, 0, 0);
	unsigned burst;
	uint64_t period;
	int i;

	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(mp_ratelimit_take(r, "x", 5), MP_OK);
	mp_ratelimit_free(r);
	ck_assert_int_eq(mp_ratelimit_parse("30/1h", &burst, &period), MP_OK);
	ck_assert_uint_eq(burst, 30);
	ck_assert_uint_eq(period, 3600);
	ck_assert_int_eq(mp_ratelimit_parse("5/10m", &burst, &period), MP_OK);
	ck_assert_uint_eq(period, 600);
	ck_assert_int_eq(mp_ratelimit_parse("0", &burst, &period), MP_OK);
	ck_assert_uint_eq(burst, 0);
	ck_assert_int_eq(mp_ratelimit_parse("x/1h", &burst, &period), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_ratelimit_parse("5/", &burst, &period), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_ratelimit_parse("5/0s", &burst, &period), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_ratelimit_parse("/1h", &burst, &period), MP_ERR_SYNTAX);
	ck_assert_ptr_null(mp_ratelimit_new(0, 1, 1));
	ck_assert_ptr_null(mp_ratelimit_new(8, 1, 0));
}
END_TEST

static Suite *
ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, burst_then_refill);
	tcase_add_test(tc, colliding_keys_never_loosen);
	tcase_add_test(tc, disabled_and_parse);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(ratelimit_suite)
