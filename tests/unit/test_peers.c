/* test_peers.c - peer order (seed 001) and lookup by ID or name. */
#include <string.h>

#include "mailpunch/error.h"
#include "mailpunch/peers.h"
#include "testutil.h"

static mp_peer peers[6];
static mp_uid uids[6];

static void
setup(void)
{
	size_t i;

	memset(peers, 0, sizeof peers);
	for (i = 0; i < 6; i++) {
		memset(&peers[i].id, (int)(i + 1), sizeof peers[i].id);
		mp_pubid_uid(&peers[i].id, &uids[i]);
		peers[i].age = (uint32_t)(100 * (6 - i));   /* later ones newer */
	}
	strcpy(peers[0].name, "Alice");
	strcpy(peers[1].name, "bob");
	strcpy(peers[2].name, "Bob");
}

START_TEST(newest_first)
{
	mp_peer_policy pol = { 0 };
	size_t order[6], n = mp_peers_order(peers, 6, &pol, order), i;

	ck_assert_uint_eq(n, 6);
	for (i = 0; i < 6; i++)
		ck_assert_uint_eq(order[i], 5 - i);
}
END_TEST

START_TEST(flagged_last_allowed_first_denied_never)
{
	mp_uid allow[1], deny[1];
	mp_peer_policy pol = { .allow = allow, .nallow = 1, .deny = deny, .ndeny = 1, .self = &uids[4] };
	size_t order[6], n;

	allow[0] = uids[1];
	deny[0] = uids[3];
	peers[5].flags = MP_PEER_FAILED;      /* newest, but failed */
	n = mp_peers_order(peers, 6, &pol, order);
	/* 3 denied and 4 is us: 4 left */
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(order[0], 1);       /* allowed */
	ck_assert_uint_eq(order[1], 2);       /* then newest unflagged */
	ck_assert_uint_eq(order[2], 0);
	ck_assert_uint_eq(order[3], 5);       /* flagged last */
}
END_TEST

START_TEST(equal_age_keeps_host_order)
{
	mp_peer_policy pol = { 0 };
	size_t order[6], i;

	for (i = 0; i < 6; i++)
		peers[i].age = 7;
	mp_peers_order(peers, 6, &pol, order);
	for (i = 0; i < 6; i++)
		ck_assert_uint_eq(order[i], i);
}
END_TEST

START_TEST(find_by_id_or_name)
{
	char text[MP_UID_TEXT_LEN + 1];
	size_t idx;

	mp_uid_format(&uids[2], text);
	ck_assert_int_eq(mp_peers_find(peers, 6, text, &idx), MP_OK);
	ck_assert_uint_eq(idx, 2);
	ck_assert_int_eq(mp_peers_find(peers, 6, "alice", &idx), MP_OK);
	ck_assert_uint_eq(idx, 0);
	ck_assert_int_eq(mp_peers_find(peers, 6, "BOB", &idx), MP_ERR_CONFLICT);
	ck_assert_int_eq(mp_peers_find(peers, 6, "carol", &idx), MP_ERR_NOTFOUND);
	ck_assert_int_eq(mp_peers_find(peers, 6, "aaaaaaaaaaaaaaaaaaaaaaaaaa", &idx), MP_ERR_NOTFOUND);
}
END_TEST

static Suite *
peers_suite(void)
{
	Suite *s = suite_create("peers");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, newest_first);
	tcase_add_test(tc, flagged_last_allowed_first_denied_never);
	tcase_add_test(tc, equal_age_keeps_host_order);
	tcase_add_test(tc, find_by_id_or_name);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(peers_suite)
