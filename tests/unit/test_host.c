/*
 * test_host.c - the host role on real mails and a real shared-memory
 * table: requests answered with the right peers, and every refusal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "blockutil.h"
#include "mailpunch/block.h"
#include "mailpunch/error.h"
#include "mailpunch/host.h"
#include "mailpunch/mail.h"
#include "mailpunch/table.h"
#include "testutil.h"

#define NOW 1800000000ULL
#define RDV "rendezvous@host.example"

static mp_hostkey *hostkey;
static uint8_t host_pub[MP_KEY_LEN];
static mp_identity *alice, *bob;
static mp_table *table;
static mp_host *host;
static mp_strlist rdv;
static mp_host_config cfg;
static char shm_name[64];

static void
setup(void)
{
	mp_host_limits lim = { .replay_capacity = 1000 };

	ck_assert_int_eq(mp_hostkey_generate(&hostkey), MP_OK);
	mp_hostkey_public(hostkey, host_pub);
	ck_assert_int_eq(mp_identity_generate(&alice), MP_OK);
	ck_assert_int_eq(mp_identity_generate(&bob), MP_OK);
	snprintf(shm_name, sizeof shm_name, "/mp-test-host-%ld", (long)getpid());
	mp_table_shm_unlink(shm_name);
	ck_assert_int_eq(mp_table_shm_open(shm_name, 64, MP_TABLE_CREATE, 0600, &table), MP_OK);
	ck_assert_int_eq(mp_host_new(table, &lim, &host), MP_OK);
	memset(&rdv, 0, sizeof rdv);
	mp_strlist_add(&rdv, RDV);
	memset(&cfg, 0, sizeof cfg);
	cfg.key = hostkey;
	cfg.rendezvous = &rdv;
	cfg.peers_per_reply = 10;
	cfg.max_age = 12 * 3600;
	cfg.max_future = 300;
	cfg.require_sender_match = 1;
	cfg.subject_marker = "[mailpunch]";
	cfg.max_message_size = 256 * 1024;
}

static void
teardown(void)
{
	mp_host_free(host);
	mp_table_close(table);
	mp_table_shm_unlink(shm_name);
	mp_strlist_free(&rdv);
	mp_identity_free(alice);
	mp_identity_free(bob);
	mp_hostkey_free(hostkey);
}

/* A user's block wrapped in a mail body, as the agent will send it. */
static char *
mail_body(const mp_msg *m, const mp_identity *who, const char *from, size_t *len)
{
	mp_block_key k = { .user = who };
	mp_mail_draft d = { 0 };
	uint8_t *blk;
	size_t blen;
	mp_mail *mail;
	char *body;

	ck_assert_int_eq(mp_block_seal(m, &k, host_pub, &blk, &blen), MP_OK);
	d.from = from;
	d.to = RDV;
	d.subject = "[mailpunch] request";
	d.block = blk;
	d.block_len = blen;
	ck_assert_int_eq(mp_mail_compose(&d, &mail), MP_OK);
	body = strdup(mail->body);
	*len = mail->body_len;
	mp_mail_free(mail);
	free(blk);
	return body;
}

static mp_msg *
request_from(const char *addr, const char *name, uint64_t when)
{
	mp_msg *m = mp_msg_new(MP_MSG_REQUEST);

	fill_message(m, NULL);
	strcpy(m->u.request.reply_addr, addr);
	strcpy(m->u.request.name, name);
	m->timestamp = when;
	return m;
}

static void
input_for(mp_host_input *in, const char *env_from, const char *body, size_t len)
{
	memset(in, 0, sizeof *in);
	in->id = "TESTQID";
	in->client_addr = "127.0.0.1";
	in->env_from = env_from;
	in->rcpt = RDV;
	in->message_id = "<req@alice.example>";
	in->body = body;
	in->body_len = len;
	in->now = NOW;
}

/* Sends m as who from addr; returns the outcome (caller frees). */
static void
process(const mp_msg *m, const mp_identity *who, const char *addr, mp_host_outcome *out)
{
	mp_host_input in;
	size_t len;
	char *body = mail_body(m, who, addr, &len);

	input_for(&in, addr, body, len);
	ck_assert_int_eq(mp_host_process(host, &cfg, &in, out), MP_OK);
	free(body);
}

/* Opens the reply mail as its recipient. */
static mp_msg *
open_reply(const mp_host_outcome *out, const mp_identity *me)
{
	mp_parsed_mail pm;
	mp_block_key k = { .user = me };
	mp_msg *r = NULL;

	ck_assert_int_eq(mp_mail_parse(out->mail, out->mail_len, NULL, &pm), MP_OK);
	ck_assert_int_eq(pm.is_auto, 1);
	ck_assert_int_eq(mp_block_open(pm.block, pm.block_len, &k, &r), MP_OK);
	mp_parsed_mail_free(&pm);
	ck_assert_uint_eq(r->type, MP_MSG_REPLY);
	ck_assert_mem_eq(r->sender_host, host_pub, MP_KEY_LEN);
	return r;
}

START_TEST(first_request_gets_formal_empty_reply)
{
	mp_msg *m = request_from("alice@a.example", "Alice", NOW);
	mp_host_outcome out;
	mp_msg *r;

	process(m, alice, "alice@a.example", &out);
	ck_assert_int_eq(out.action, MP_HOST_SEND);
	ck_assert_str_eq(out.to, "alice@a.example");
	ck_assert_str_eq(out.from, RDV);
	ck_assert_ptr_nonnull(strstr(out.mail, "In-Reply-To: <req@alice.example>"));
	r = open_reply(&out, alice);
	ck_assert_mem_eq(r->session_id, m->session_id, MP_SESSION_ID_LEN);
	ck_assert_uint_eq(r->u.reply.npeers, 0);
	mp_msg_free(r);
	mp_msg_free(m);
	mp_host_outcome_free(&out);
}
END_TEST

START_TEST(second_request_lists_first_without_address)
{
	mp_msg *ma = request_from("alice@a.example", "Alice", NOW);
	mp_msg *mb = request_from("bob@b.example", "Bob", NOW);
	mp_host_outcome out;
	mp_table_stats st;
	mp_msg *r;

	process(ma, alice, "alice@a.example", &out);
	mp_host_outcome_free(&out);
	process(mb, bob, "bob@b.example", &out);
	ck_assert_int_eq(out.action, MP_HOST_SEND);
	ck_assert_str_eq(out.to, "bob@b.example");
	/* seed 001: mail addresses never leave the host */
	ck_assert_ptr_null(strstr(out.mail, "alice@a.example"));
	r = open_reply(&out, bob);
	ck_assert_uint_eq(r->u.reply.npeers, 1);
	ck_assert_mem_eq(&r->u.reply.peers[0].id, mp_identity_public(alice), sizeof(mp_pubid));
	ck_assert_str_eq(r->u.reply.peers[0].name, "Alice");
	ck_assert_uint_eq(r->u.reply.peers[0].ep.ncand, 3);
	mp_table_stats_get(table, &st);
	ck_assert_uint_eq(st.counter[MP_STAT_REQUESTS], 2);
	ck_assert_uint_eq(st.entries, 2);
	mp_msg_free(r);
	mp_msg_free(ma);
	mp_msg_free(mb);
	mp_host_outcome_free(&out);
}
END_TEST

START_TEST(garbage_gets_no_reply)
{
	const char *bodies[] = {
		"just a normal mail\r\n",
		"-----BEGIN MAILPUNCH BLOCK-----\r\nnot base64 !!\r\n-----END MAILPUNCH BLOCK-----\r\n",
		"-----BEGIN MAILPUNCH BLOCK-----\r\nTVAB\r\n-----END MAILPUNCH BLOCK-----\r\n",
	};
	mp_host_outcome out;
	mp_host_input in;
	mp_table_stats st;
	size_t i;

	for (i = 0; i < 3; i++) {
		input_for(&in, "x@y.example", bodies[i], strlen(bodies[i]));
		ck_assert_int_eq(mp_host_process(host, &cfg, &in, &out), MP_OK);
		ck_assert_int_eq(out.action, MP_HOST_DROP);
		ck_assert_ptr_null(out.mail);
	}
	mp_table_stats_get(table, &st);
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.counter[MP_STAT_DROP_NOBLOCK] + st.counter[MP_STAT_DROP_BADBLOCK], 3);
}
END_TEST

START_TEST(refusals)
{
	mp_msg *m = request_from("alice@a.example", "Alice", NOW);
	mp_host_outcome out;
	mp_host_input in;
	size_t len;
	char *body = mail_body(m, alice, "alice@a.example", &len);

	/* envelope sender differs from the authenticated reply address */
	input_for(&in, "mallory@evil.example", body, len);
	ck_assert_int_eq(mp_host_process(host, &cfg, &in, &out), MP_OK);
	ck_assert_int_eq(out.action, MP_HOST_DROP);
	ck_assert_int_eq(out.stat, MP_STAT_DROP_SENDER);
	free(body);
	mp_msg_free(m);

	/* auto-submitted and bounces are never answered */
	m = request_from("alice@a.example", "Alice", NOW);
	body = mail_body(m, alice, "alice@a.example", &len);
	input_for(&in, "alice@a.example", body, len);
	in.is_auto = 1;
	ck_assert_int_eq(mp_host_process(host, &cfg, &in, &out), MP_OK);
	ck_assert_int_eq(out.stat, MP_STAT_DROP_AUTO);
	input_for(&in, "", body, len);
	ck_assert_int_eq(mp_host_process(host, &cfg, &in, &out), MP_OK);
	ck_assert_int_eq(out.stat, MP_STAT_DROP_AUTO);
	/* accepted once, then a replay */
	input_for(&in, "alice@a.example", body, len);
	ck_assert_int_eq(mp_host_process(host, &cfg, &in, &out), MP_OK);
	ck_assert_int_eq(out.action, MP_HOST_SEND);
	mp_host_outcome_free(&out);
	ck_assert_int_eq(mp_host_process(host, &cfg, &in, &out), MP_OK);
	ck_assert_int_eq(out.stat, MP_STAT_DROP_REPLAY);
	free(body);
	mp_msg_free(m);

	/* too old and from the future */
	m = request_from("alice@a.example", "Alice", NOW - 13 * 3600);
	process(m, alice, "alice@a.example", &out);
	ck_assert_int_eq(out.stat, MP_STAT_DROP_STALE);
	mp_msg_free(m);
	m = request_from("alice@a.example", "Alice", NOW + 3600);
	process(m, alice, "alice@a.example", &out);
	ck_assert_int_eq(out.stat, MP_STAT_DROP_STALE);
	mp_msg_free(m);

	/* a reply address that is our own rendezvous address: no loop */
	cfg.require_sender_match = 0;
	m = request_from(RDV, "Loop", NOW);
	process(m, alice, "alice@a.example", &out);
	ck_assert_int_eq(out.stat, MP_STAT_DROP_SENDER);
	mp_msg_free(m);
}
END_TEST

START_TEST(cancel_allows_retry)
{
	mp_msg *m = request_from("alice@a.example", "Alice", NOW);
	mp_host_outcome out;
	mp_host_input in;
	size_t len;
	char *body = mail_body(m, alice, "alice@a.example", &len);

	input_for(&in, "alice@a.example", body, len);
	ck_assert_int_eq(mp_host_process(host, &cfg, &in, &out), MP_OK);
	ck_assert_int_eq(out.action, MP_HOST_SEND);
	/* the caller could not queue the reply: tempfail, sender retries */
	mp_host_cancel(host, &out);
	mp_host_outcome_free(&out);
	ck_assert_int_eq(mp_host_process(host, &cfg, &in, &out), MP_OK);
	ck_assert_int_eq(out.action, MP_HOST_SEND);
	mp_host_outcome_free(&out);
	free(body);
	mp_msg_free(m);
}
END_TEST

START_TEST(failure_notice_flags_entry)
{
	mp_msg *ma = request_from("alice@a.example", "Alice", NOW);
	mp_msg *mb = request_from("bob@b.example", "Bob", NOW);
	mp_msg *n = mp_msg_new(MP_MSG_FAILURE_NOTICE), *r;
	mp_host_outcome out;
	mp_table_entry e;
	mp_uid alice_uid;

	process(ma, alice, "alice@a.example", &out);
	mp_host_outcome_free(&out);
	process(mb, bob, "bob@b.example", &out);
	mp_host_outcome_free(&out);
	mp_identity_uid(alice, &alice_uid);
	n->timestamp = NOW;
	n->u.failure.target = alice_uid;
	n->u.failure.reason = MP_FAIL_TIMEOUT;
	process(n, bob, "bob@b.example", &out);
	ck_assert_int_eq(out.action, MP_HOST_DROP);
	ck_assert_int_eq(out.stat, MP_STAT_NOTICES);
	ck_assert_int_eq(mp_table_get(table, &alice_uid, &e), MP_OK);
	ck_assert(e.flags & MP_PEER_FAILED);
	/* the flag shows in the next reply */
	mp_msg_free(mb);
	mb = request_from("bob@b.example", "Bob", NOW);
	process(mb, bob, "bob@b.example", &out);
	r = open_reply(&out, bob);
	ck_assert_uint_eq(r->u.reply.npeers, 1);
	ck_assert(r->u.reply.peers[0].flags & MP_PEER_FAILED);
	mp_msg_free(r);
	mp_host_outcome_free(&out);
	/* a notice from a non-member is not applied */
	mp_msg_free(n);
	n = mp_msg_new(MP_MSG_FAILURE_NOTICE);
	n->timestamp = NOW;
	mp_identity_uid(bob, &n->u.failure.target);
	{
		mp_identity *stranger;

		ck_assert_int_eq(mp_identity_generate(&stranger), MP_OK);
		process(n, stranger, "s@x.example", &out);
		ck_assert_int_eq(out.stat, MP_STAT_DROP_UNKNOWN);
		mp_identity_free(stranger);
	}
	mp_msg_free(n);
	mp_msg_free(ma);
	mp_msg_free(mb);
}
END_TEST

START_TEST(signal_relayed_without_sender_address)
{
	mp_msg *ma = request_from("alice@a.example", "Alice", NOW);
	mp_msg *mb = request_from("bob@b.example", "Bob", NOW);
	mp_msg *sig = mp_msg_new(MP_MSG_SIGNAL), *relay = mp_msg_new(MP_MSG_RELAY), *got;
	mp_block_key ka = { .user = alice }, kb = { .user = bob };
	mp_host_outcome out;
	mp_parsed_mail pm;
	uint8_t *inner;
	size_t inner_len;

	process(ma, alice, "alice@a.example", &out);
	mp_host_outcome_free(&out);
	process(mb, bob, "bob@b.example", &out);
	mp_host_outcome_free(&out);
	/* alice seals a signal to bob and asks the host to pass it on */
	fill_message(sig, NULL);
	ck_assert_int_eq(mp_block_seal(sig, &ka, mp_identity_public(bob)->seal_pub, &inner, &inner_len), MP_OK);
	relay->timestamp = NOW;
	mp_identity_uid(bob, &relay->u.relay.target);
	memcpy(relay->u.relay.inner, inner, inner_len);
	relay->u.relay.inner_len = (uint16_t)inner_len;
	process(relay, alice, "alice@a.example", &out);
	ck_assert_int_eq(out.action, MP_HOST_SEND);
	ck_assert_int_eq(out.stat, MP_STAT_SIGNALS);
	ck_assert_str_eq(out.to, "bob@b.example");
	ck_assert_ptr_null(strstr(out.mail, "alice@a.example"));
	ck_assert_int_eq(mp_mail_parse(out.mail, out.mail_len, NULL, &pm), MP_OK);
	/* the host vouches for it: a RELAYED block sealed by the host ... */
	ck_assert_int_eq(mp_block_open(pm.block, pm.block_len, &kb, &got), MP_OK);
	ck_assert_uint_eq(got->type, MP_MSG_RELAYED);
	ck_assert_mem_eq(got->sender_host, host_pub, MP_KEY_LEN);
	{
		/* ... holding alice's SIGNAL unchanged */
		mp_msg *outer = got;

		ck_assert_uint_eq(outer->u.relay.inner_len, inner_len);
		ck_assert_int_eq(mp_block_open(outer->u.relay.inner, outer->u.relay.inner_len, &kb, &got), MP_OK);
		mp_msg_free(outer);
	}
	ck_assert_uint_eq(got->type, MP_MSG_SIGNAL);
	ck_assert_mem_eq(&got->sender, mp_identity_public(alice), sizeof(mp_pubid));
	ck_assert_mem_eq(got->u.signal.payload, "hello", 5);
	mp_msg_free(got);
	mp_parsed_mail_free(&pm);
	mp_host_outcome_free(&out);

	/* unknown target: dropped */
	memset(relay->u.relay.target.b, 0x77, MP_UID_LEN);
	mp_msg_free(ma);
	ma = mp_msg_new(MP_MSG_RELAY);
	*ma = *relay;
	ck_assert_int_eq(RAND_bytes(ma->session_id, MP_SESSION_ID_LEN), 1);
	process(ma, alice, "alice@a.example", &out);
	ck_assert_int_eq(out.action, MP_HOST_DROP);
	ck_assert_int_eq(out.stat, MP_STAT_DROP_UNKNOWN);
	free(inner);
	mp_msg_free(ma);
	mp_msg_free(mb);
	mp_msg_free(sig);
	mp_msg_free(relay);
}
END_TEST

START_TEST(reply_rate_limited)
{
	mp_host *limited;
	mp_host_limits lim = { .replay_capacity = 100, .per_address_burst = 2, .per_address_period = 3600 };
	mp_host_outcome out;
	int i;

	ck_assert_int_eq(mp_host_new(table, &lim, &limited), MP_OK);
	for (i = 0; i < 3; i++) {
		mp_msg *m = request_from("alice@a.example", "Alice", NOW);
		mp_host_input in;
		size_t len;
		char *body = mail_body(m, alice, "alice@a.example", &len);

		input_for(&in, "alice@a.example", body, len);
		ck_assert_int_eq(mp_host_process(limited, &cfg, &in, &out), MP_OK);
		ck_assert_int_eq(out.action, i < 2 ? MP_HOST_SEND : MP_HOST_DROP);
		if (i == 2)
			ck_assert_int_eq(out.stat, MP_STAT_RATELIMITED);
		mp_host_outcome_free(&out);
		free(body);
		mp_msg_free(m);
	}
	mp_host_free(limited);
}
END_TEST

static Suite *
host_suite(void)
{
	Suite *s = suite_create("host");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, first_request_gets_formal_empty_reply);
	tcase_add_test(tc, second_request_lists_first_without_address);
	tcase_add_test(tc, garbage_gets_no_reply);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, cancel_allows_retry);
	tcase_add_test(tc, failure_notice_flags_entry);
	tcase_add_test(tc, signal_relayed_without_sender_address);
	tcase_add_test(tc, reply_rate_limited);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(host_suite)
