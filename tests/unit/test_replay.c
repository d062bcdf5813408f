/* test_replay.c - timestamp window and the bounded replay cache. */
#include <string.h>

#include "mailpunch/error.h"
#include "mailpunch/replay.h"
#include "testutil.h"

static void
sid_of(unsigned n, uint8_t sid[MP_SESSION_ID_LEN])
{
	memset(sid, 0, MP_SESSION_ID_LEN);
	/* IDs that share their first bytes stress the probing, too */
	memcpy(sid + 8, &n, sizeof n);
	sid[0] = (uint8_t)(n & 3);
}

START_TEST(time_window)
{
	uint64_t now = 1800000000;

	ck_assert_int_eq(mp_check_time(now, now, 3600, 300), MP_OK);
	ck_assert_int_eq(mp_check_time(now - 3600, now, 3600, 300), MP_OK);
	ck_assert_int_eq(mp_check_time(now - 3601, now, 3600, 300), MP_ERR_EXPIRED);
	ck_assert_int_eq(mp_check_time(now + 300, now, 3600, 300), MP_OK);
	ck_assert_int_eq(mp_check_time(now + 301, now, 3600, 300), MP_ERR_FUTURE);
	ck_assert_int_eq(mp_check_time(0, now, 3600, 300), MP_ERR_EXPIRED);
	ck_assert_int_eq(mp_check_time(UINT64_MAX, now, 3600, 300), MP_ERR_FUTURE);
}
END_TEST

START_TEST(replayed_session_id_refused)
{
	mp_replay *r = mp_replay_new(100);
	uint8_t a[MP_SESSION_ID_LEN], b[MP_SESSION_ID_LEN];

	ck_assert_ptr_nonnull(r);
	sid_of(1, a);
	sid_of(2, b);
	ck_assert_int_eq(mp_replay_check(r, a, 1000), MP_OK);
	ck_assert_int_eq(mp_replay_check(r, b, 1000), MP_OK);
	ck_assert_int_eq(mp_replay_check(r, a, 1000), MP_ERR_REPLAY);
	ck_assert_int_eq(mp_replay_check(r, a, 2000), MP_ERR_REPLAY);
	ck_assert_uint_eq(mp_replay_count(r), 2);
	mp_replay_free(r);
}
END_TEST

START_TEST(full_cache_raises_floor)
{
	mp_replay *r = mp_replay_new(10);
	uint8_t sid[MP_SESSION_ID_LEN];
	unsigned i;

	for (i = 0; i < 10; i++) {
		sid_of(i, sid);
		ck_assert_int_eq(mp_replay_check(r, sid, 100 + i), MP_OK);
	}
	/* the 11th evicts the oldest (t=100): floor becomes 100 */
	sid_of(10, sid);
	ck_assert_int_eq(mp_replay_check(r, sid, 200), MP_OK);
	ck_assert_uint_eq(mp_replay_count(r), 10);
	/* the evicted ID is not remembered, but its age makes it refused */
	sid_of(0, sid);
	ck_assert_int_eq(mp_replay_check(r, sid, 100), MP_ERR_REPLAY);
	/* remembered ones still refused after eviction shuffled the table */
	for (i = 1; i <= 10; i++) {
		sid_of(i, sid);
		ck_assert_int_eq(mp_replay_check(r, sid, 300), MP_ERR_REPLAY);
	}
	/* a new one newer than the floor passes */
	sid_of(99, sid);
	ck_assert_int_eq(mp_replay_check(r, sid, 101), MP_OK);
	mp_replay_free(r);
}
END_TEST

START_TEST(many_insertions_stay_consistent)
{
	mp_replay *r = mp_replay_new(64);
	uint8_t sid[MP_SESSION_ID_LEN];
	unsigned i, j;

	for (i = 0; i < 5000; i++) {
		sid_of(i, sid);
		ck_assert_int_eq(mp_replay_check(r, sid, 1000 + i), MP_OK);
		/* the last 64 are always all findable */
		for (j = i >= 63 ? i - 63 : 0; j <= i; j += 7) {
			sid_of(j, sid);
			ck_assert_int_eq(mp_replay_check(r, sid, 1000000), MP_ERR_REPLAY);
		}
	}
	ck_assert_uint_eq(mp_replay_count(r), 64);
	mp_replay_free(r);
}
END_TEST

START_TEST(bad_capacity)
{
	ck_assert_ptr_null(mp_replay_new(0));
}
END_TEST

static Suite *
replay_suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, time_window);
	tcase_add_test(tc, replayed_session_id_refused);
	tcase_add_test(tc, full_cache_raises_floor);
	tcase_add_test(tc, many_insertions_stay_consistent);
	tcase_add_test(tc, bad_capacity);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(replay_suite)
