/*
 * test_punch.c - probes and the identity handshake, with packets passed
 * by hand between two sides (and an attacker in between).
 */
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "mailpunch/punch.h"
#include "testutil.h"

static mp_identity *alice, *bob, *mallory;
static uint8_t conn_id[MP_PUNCH_CONN_ID_LEN], secret[MP_PUNCH_SECRET_LEN];
static mp_punch *a, *b;
static mp_punch_result res;

static void
setup(void)
{
	ck_assert_int_eq(mp_identity_generate(&alice), MP_OK);
	ck_assert_int_eq(mp_identity_generate(&bob), MP_OK);
	ck_assert_int_eq(mp_identity_generate(&mallory), MP_OK);
	ck_assert_int_eq(mp_punch_fresh(conn_id, secret), MP_OK);
	ck_assert_int_eq(mp_punch_new(alice, mp_identity_public(bob), 1, conn_id, secret, &a), MP_OK);
	ck_assert_int_eq(mp_punch_new(bob, mp_identity_public(alice), 0, conn_id, secret, &b), MP_OK);
}

static void
teardown(void)
{
	mp_punch_free(a);
	mp_punch_free(b);
	mp_identity_free(alice);
	mp_identity_free(bob);
	mp_identity_free(mallory);
}

/* Delivers pkt to to; returns the result code, leaves reply in res. */
static int
deliver(mp_punch *to, const uint8_t *pkt, size_t len)
{
	return mp_punch_input(to, pkt, len, &res);
}

/* The full exchange; returns bob's HELLO_REPLY in reply_out. */
static void
handshake(void)
{
	uint8_t pkt[MP_PUNCH_MAX_PACKET], reply[MP_PUNCH_MAX_PACKET];
	size_t len, rlen;

	ck_assert_int_eq(mp_punch_probe(b, pkt, sizeof pkt, &len), MP_OK);
	ck_assert_int_eq(deliver(a, pkt, len), MP_OK);
	ck_assert_int_eq(res.event, MP_PUNCH_REACHED);
	ck_assert_uint_gt(res.reply_len, 0);            /* PROBE_ACK */
	ck_assert_int_eq(deliver(b, res.reply, res.reply_len), MP_OK);
	ck_assert_int_eq(res.event, MP_PUNCH_REACHED);

	ck_assert_int_eq(mp_punch_hello(a, pkt, sizeof pkt, &len), MP_OK);
	ck_assert_int_eq(deliver(b, pkt, len), MP_OK);   /* -> HELLO_REPLY */
	ck_assert_int_eq(res.event, MP_PUNCH_NOTHING);
	ck_assert(!mp_punch_established(b));
	memcpy(reply, res.reply, res.reply_len);
	rlen = res.reply_len;
	ck_assert_int_eq(deliver(a, reply, rlen), MP_OK); /* -> FINISH */
	ck_assert_int_eq(res.event, MP_PUNCH_ESTABLISHED);
	ck_assert(mp_punch_established(a));
	ck_assert_int_eq(deliver(b, res.reply, res.reply_len), MP_OK);
	ck_assert_int_eq(res.event, MP_PUNCH_ESTABLISHED);
	ck_assert(mp_punch_established(b));
}

START_TEST(full_handshake_and_data_both_ways)
{
	uint8_t pkt[MP_PUNCH_MAX_PACKET];
	size_t len;

	handshake();
	ck_assert_int_eq(mp_punch_seal_data(a, (const uint8_t *)"hello bob", 9, pkt, sizeof pkt, &len), MP_OK);
	ck_assert_int_eq(deliver(b, pkt, len), MP_OK);
	ck_assert_int_eq(res.event, MP_PUNCH_DATA);
	ck_assert_mem_eq(res.data, "hello bob", 9);
	/* the same packet again is a replay */
	ck_assert_int_eq(deliver(b, pkt, len), MP_ERR_REPLAY);
	ck_assert_int_eq(mp_punch_seal_data(b, (const uint8_t *)"hi alice", 8, pkt, sizeof pkt, &len), MP_OK);
	ck_assert_int_eq(deliver(a, pkt, len), MP_OK);
	ck_assert_mem_eq(res.data, "hi alice", 8);
	/* alice's direction key does not open bob's packets and vice versa:
	 * a packet reflected back to its sender fails */
	ck_assert_int_eq(deliver(b, pkt, len), MP_ERR_DECRYPT);
}
END_TEST

START_TEST(no_data_before_established)
{
	uint8_t pkt[MP_PUNCH_MAX_PACKET];
	size_t len;

	ck_assert_int_eq(mp_punch_seal_data(a, (const uint8_t *)"x", 1, pkt, sizeof pkt, &len), MP_ERR_INVAL);
	ck_assert_int_eq(mp_punch_hello(b, pkt, sizeof pkt, &len), MP_ERR_INVAL);  /* responder */
}
END_TEST

START_TEST(probe_without_secret_is_ignored)
{
	uint8_t pkt[MP_PUNCH_MAX_PACKET], other_secret[MP_PUNCH_SECRET_LEN];
	mp_punch *m;
	size_t len, i;

	/* mallory knows the connection ID (it is in clear) but not the secret */
	memcpy(other_secret, secret, sizeof other_secret);
	other_secret[0] ^= 1;
	ck_assert_int_eq(mp_punch_new(mallory, mp_identity_public(bob), 1, conn_id, other_secret, &m), MP_OK);
	ck_assert_int_eq(mp_punch_probe(m, pkt, sizeof pkt, &len), MP_OK);
	ck_assert_int_eq(deliver(b, pkt, len), MP_ERR_DECRYPT);
	ck_assert_uint_eq(res.reply_len, 0);
	ck_assert_int_eq(mp_punch_hello(m, pkt, sizeof pkt, &len), MP_OK);
	ck_assert_int_eq(deliver(b, pkt, len), MP_ERR_DECRYPT);
	mp_punch_free(m);
	/* every bit flip of a genuine probe is refused */
	ck_assert_int_eq(mp_punch_probe(a, pkt, sizeof pkt, &len), MP_OK);
	for (i = 0; i < len * 8; i++) {
		pkt[i / 8] ^= (uint8_t)(1u << (i % 8));
		ck_assert_int_ne(deliver(b, pkt, len), MP_OK);
		pkt[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	ck_assert_int_eq(deliver(b, pkt, len), MP_OK);
	/* garbage and other protocols on the same socket */
	ck_assert_int_eq(deliver(b, (const uint8_t *)"\x00\x01\x00\x00", 4), MP_ERR_MAGIC);
	ck_assert_int_eq(deliver(b, pkt, 20), MP_ERR_TRUNCATED);
}
END_TEST

START_TEST(impostor_with_secret_cannot_establish)
{
	/* mallory learnt the secret (say, by compromising bob's mailbox) but
	 * holds neither identity key: she plays alice to bob... */
	uint8_t pkt[MP_PUNCH_MAX_PACKET];
	mp_punch *m;
	size_t len;

	ck_assert_int_eq(mp_punch_new(mallory, mp_identity_public(bob), 1, conn_id, secret, &m), MP_OK);
	ck_assert_int_eq(mp_punch_hello(m, pkt, sizeof pkt, &len), MP_OK);
	ck_assert_int_eq(deliver(b, pkt, len), MP_OK);          /* bob answers HELLO */
	ck_assert(!mp_punch_established(b));
	/* bob signed a transcript naming alice as initiator; mallory's names
	 * herself, so even she cannot complete, and a FINISH she signs
	 * could never match alice's key at bob */
	ck_assert_int_eq(deliver(m, res.reply, res.reply_len), MP_ERR_SIGNATURE);
	ck_assert(!mp_punch_established(m));
	ck_assert(!mp_punch_established(b));
	mp_punch_free(m);
}
END_TEST

START_TEST(impostor_responder_detected)
{
	/* mallory plays bob to alice: her HELLO_REPLY signature fails */
	uint8_t pkt[MP_PUNCH_MAX_PACKET];
	mp_punch *m;
	size_t len;

	ck_assert_int_eq(mp_punch_new(mallory, mp_identity_public(alice), 0, conn_id, secret, &m), MP_OK);
	ck_assert_int_eq(mp_punch_hello(a, pkt, sizeof pkt, &len), MP_OK);
	ck_assert_int_eq(deliver(m, pkt, len), MP_OK);
	ck_assert_int_eq(deliver(a, res.reply, res.reply_len), MP_ERR_SIGNATURE);
	ck_assert(!mp_punch_established(a));
	mp_punch_free(m);
}
END_TEST

START_TEST(replayed_handshake_does_not_establish)
{
	/* a recorded HELLO replayed to a fresh responder gets a reply, but
	 * without alice's ephemeral private key nothing more can happen */
	uint8_t hello[MP_PUNCH_MAX_PACKET], finish[MP_PUNCH_MAX_PACKET];
	size_t hlen, flen;
	mp_punch *b2;

	ck_assert_int_eq(mp_punch_hello(a, hello, sizeof hello, &hlen), MP_OK);
	ck_assert_int_eq(deliver(b, hello, hlen), MP_OK);
	ck_assert_int_eq(deliver(a, res.reply, res.reply_len), MP_OK);
	memcpy(finish, res.reply, res.reply_len);
	flen = res.reply_len;
	ck_assert_int_eq(deliver(b, finish, flen), MP_OK);
	ck_assert(mp_punch_established(b));
	/* replay the whole recording to a new bob for the same connection */
	ck_assert_int_eq(mp_punch_new(bob, mp_identity_public(alice), 0, conn_id, secret, &b2), MP_OK);
	ck_assert_int_eq(deliver(b2, hello, hlen), MP_OK);      /* new ephemeral */
	ck_assert_int_eq(deliver(b2, finish, flen), MP_ERR_SIGNATURE);
	ck_assert(!mp_punch_established(b2));
	mp_punch_free(b2);
}
END_TEST

START_TEST(lost_packets_are_recovered)
{
	uint8_t pkt[MP_PUNCH_MAX_PACKET], reply1[MP_PUNCH_MAX_PACKET];
	size_t len, r1;

	ck_assert_int_eq(mp_punch_hello(a, pkt, sizeof pkt, &len), MP_OK);
	ck_assert_int_eq(deliver(b, pkt, len), MP_OK);
	memcpy(reply1, res.reply, res.reply_len);
	r1 = res.reply_len;
	/* HELLO_REPLY lost: the repeated HELLO gets the very same reply */
	ck_assert_int_eq(deliver(b, pkt, len), MP_OK);
	ck_assert_uint_eq(res.reply_len, r1);
	ck_assert_mem_eq(res.reply, reply1, r1);
	/* alice establishes; her FINISH is lost; she sends data: bob asks for
	 * FINISH again by repeating his reply, and drops the data */
	ck_assert_int_eq(deliver(a, reply1, r1), MP_OK);
	ck_assert(mp_punch_established(a));
	ck_assert_int_eq(mp_punch_seal_data(a, (const uint8_t *)"early", 5, pkt, sizeof pkt, &len), MP_OK);
	ck_assert_int_eq(deliver(b, pkt, len), MP_OK);
	ck_assert_int_eq(res.event, MP_PUNCH_NOTHING);
	ck_assert_mem_eq(res.reply, reply1, r1);
	ck_assert_int_eq(deliver(a, res.reply, res.reply_len), MP_OK);   /* FINISH again */
	ck_assert_int_eq(deliver(b, res.reply, res.reply_len), MP_OK);
	ck_assert(mp_punch_established(b));
	/* alice resends her data, now accepted */
	ck_assert_int_eq(mp_punch_seal_data(a, (const uint8_t *)"again", 5, pkt, sizeof pkt, &len), MP_OK);
	ck_assert_int_eq(deliver(b, pkt, len), MP_OK);
	ck_assert_int_eq(res.event, MP_PUNCH_DATA);
}
END_TEST

START_TEST(replay_window)
{
	uint8_t pkts[80][MP_PUNCH_MAX_PACKET];
	size_t lens[80];
	int i;

	handshake();
	for (i = 0; i < 80; i++)
		ck_assert_int_eq(mp_punch_seal_data(a, (const uint8_t *)"d", 1, pkts[i], sizeof pkts[i], &lens[i]), MP_OK);
	/* out of order within the window is fine, once each */
	ck_assert_int_eq(deliver(b, pkts[70], lens[70]), MP_OK);
	ck_assert_int_eq(deliver(b, pkts[10], lens[10]), MP_OK);
	ck_assert_int_eq(deliver(b, pkts[10], lens[10]), MP_ERR_REPLAY);
	ck_assert_int_eq(deliver(b, pkts[69], lens[69]), MP_OK);
	/* older than 64 behind the newest: refused */
	ck_assert_int_eq(deliver(b, pkts[79], lens[79]), MP_OK);
	ck_assert_int_eq(deliver(b, pkts[5], lens[5]), MP_ERR_REPLAY);
}
END_TEST

static Suite *
punch_suite(void)
{
	Suite *s = suite_create("punch");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, full_handshake_and_data_both_ways);
	tcase_add_test(tc, no_data_before_established);
	tcase_add_test(tc, probe_without_secret_is_ignored);
	tcase_add_test(tc, impostor_with_secret_cannot_establish);
	tcase_add_test(tc, impostor_responder_detected);
	tcase_add_test(tc, replayed_handshake_does_not_establish);
	tcase_add_test(tc, lost_packets_are_recovered);
	tcase_add_test(tc, replay_window);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(punch_suite)
