/* test_agent_state.c - the agent's memory survives a restart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mailpunch/error.h"
#include "state.h"
#include "testutil.h"

static char dir[64];

static void
setup(void)
{
	strcpy(dir, "/tmp/mp-astate-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
peer_named(mp_peer *p, int seed, const char *name)
{
	memset(p, 0, sizeof *p);
	memset(&p->id, seed, sizeof p->id);
	snprintf(p->name, sizeof p->name, "%s", name);
	p->age = 30;
}

START_TEST(round_trip)
{
	agent_state st, back;
	uint8_t sid[MP_SESSION_ID_LEN];
	mp_peer p;
	char err[256], path[128];
	struct stat sb;

	memset(&st, 0, sizeof st);
	memset(sid, 0xab, sizeof sid);
	agent_state_add_request(&st, sid, 1000, "rdv@lab.example");
	peer_named(&p, 1, "Bob Smith");
	agent_state_learn_peer(&st, &p, 1000);
	peer_named(&p, 2, "");
	p.flags = MP_PEER_FAILED;
	agent_state_learn_peer(&st, &p, 1000);
	ck_assert_int_eq(agent_state_save(dir, &st), MP_OK);
	snprintf(path, sizeof path, "%s/state", dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);

	ck_assert_int_eq(agent_state_load(dir, &back, 2000, err, sizeof err), MP_OK);
	ck_assert_uint_eq(back.nrequests, 1);
	ck_assert_str_eq(back.requests[0].host, "rdv@lab.example");
	ck_assert_uint_eq(back.npeers, 2);
	ck_assert_str_eq(back.peers[0].name, "Bob Smith");
	ck_assert_uint_eq(back.peers[0].seen, 970);
	ck_assert_uint_eq(back.peers[1].flags, MP_PEER_FAILED);
	ck_assert_ptr_nonnull(agent_state_find_peer(&back, "bob smith"));
	/* a reply is accepted once */
	ck_assert_int_eq(agent_state_take_request(&back, sid), 1);
	ck_assert_int_eq(agent_state_take_request(&back, sid), 0);
}
END_TEST

START_TEST(stale_requests_dropped_and_garbage_refused)
{
	agent_state st, back;
	uint8_t sid[MP_SESSION_ID_LEN] = { 1 };
	char err[256], path[128];
	FILE *fp;

	memset(&st, 0, sizeof st);
	agent_state_add_request(&st, sid, 1000, "rdv@lab.example");
	ck_assert_int_eq(agent_state_save(dir, &st), MP_OK);
	ck_assert_int_eq(agent_state_load(dir, &back, 1000 + AGENT_REQUEST_LIFETIME + 1, err, sizeof err), MP_OK);
	ck_assert_uint_eq(back.nrequests, 0);

	snprintf(path, sizeof path, "%s/state", dir);
	fp = fopen(path, "a");
	fputs("peer not-a-key 1 0 x\n", fp);
	fclose(fp);
	ck_assert_int_eq(agent_state_load(dir, &back, 1000, err, sizeof err), MP_ERR_MALFORMED);
	ck_assert_ptr_nonnull(strstr(err, ":3:"));
	/* a missing file is an empty state */
	snprintf(path, sizeof path, "%s/none", dir);
	ck_assert_int_eq(agent_state_load(path, &back, 1000, err, sizeof err), MP_OK);
	ck_assert_uint_eq(back.npeers, 0);
}
END_TEST

START_TEST(bounded)
{
	agent_state *st = calloc(1, sizeof *st);
	uint8_t sid[MP_SESSION_ID_LEN] = { 0 };
	mp_peer p;
	int i;

	for (i = 0; i < AGENT_STATE_REQUESTS + 5; i++) {
		sid[0] = (uint8_t)i;
		agent_state_add_request(st, sid, (uint64_t)i, "rdv@lab.example");
	}
	ck_assert_uint_eq(st->nrequests, AGENT_STATE_REQUESTS);
	sid[0] = 0;
	ck_assert_int_eq(agent_state_take_request(st, sid), 0);   /* oldest forgotten */
	for (i = 0; i < AGENT_STATE_PEERS + 3; i++) {
		peer_named(&p, 0, "x");
		memcpy(&p.id, &i, sizeof i);
		agent_state_learn_peer(st, &p, 1000 + (uint64_t)i);
	}
	ck_assert_uint_eq(st->npeers, AGENT_STATE_PEERS);
	free(st);
}
END_TEST

static Suite *
agent_state_suite(void)
{
	Suite *s = suite_create("agent_state");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, stale_requests_dropped_and_garbage_refused);
	tcase_add_test(tc, bounded);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(agent_state_suite)
