/* test_block.c - every message type through seal and open, the rules on
 * who may send what, and the strictness of the body decoder. */
#include <stdlib.h>
#include <string.h>

#include "blockutil.h"
#include "mailpunch/block.h"
#include "mailpunch/error.h"
#include "seal.h"
#include "testutil.h"

static mp_hostkey *host;
static mp_identity *alice, *bob;
static uint8_t host_pub[MP_KEY_LEN];

static void
setup(void)
{
	ck_assert_int_eq(mp_hostkey_generate(&host), MP_OK);
	ck_assert_int_eq(mp_identity_generate(&alice), MP_OK);
	ck_assert_int_eq(mp_identity_generate(&bob), MP_OK);
	mp_hostkey_public(host, host_pub);
}

static void
teardown(void)
{
	mp_hostkey_free(host);
	mp_identity_free(alice);
	mp_identity_free(bob);
}

/* Seal m from its natural sender to its natural recipient, open, compare. */
static void
round_trip(int type)
{
	mp_msg *m = mp_msg_new(type), *got = NULL;
	mp_block_key from = { 0 }, to = { 0 };
	const uint8_t *to_pub;
	uint8_t *blk;
	size_t len;
	int host_sends = type == MP_MSG_REPLY || type == MP_MSG_TABLE_SYNC;
	int user_to_user = type == MP_MSG_SIGNAL;

	ck_assert_ptr_nonnull(m);
	fill_message(m, mp_identity_public(bob));
	if (host_sends)
		from.host = host;
	else
		from.user = alice;
	if (user_to_user || type == MP_MSG_REPLY) {
		to.user = bob;
		to_pub = mp_identity_public(bob)->seal_pub;
	} else {
		to.host = host;   /* TABLE_SYNC: host to (here: the same) host */
		to_pub = host_pub;
	}
	ck_assert_int_eq(mp_block_seal(m, &from, to_pub, &blk, &len), MP_OK);
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_OK);
	ck_assert_uint_eq(got->type, type);
	ck_assert_mem_eq(got->session_id, m->session_id, MP_SESSION_ID_LEN);
	ck_assert(got->timestamp == m->timestamp);
	if (host_sends) {
		ck_assert_uint_eq(got->sender_kind, MP_SENDER_HOST);
		ck_assert_mem_eq(got->sender_host, host_pub, MP_KEY_LEN);
	} else {
		ck_assert_uint_eq(got->sender_kind, MP_SENDER_USER);
		ck_assert_mem_eq(&got->sender, mp_identity_public(alice), sizeof(mp_pubid));
	}
	/* fill_message zeroes nothing it does not set, and calloc did the rest */
	ck_assert_mem_eq(&got->u, &m->u, sizeof m->u);
	mp_msg_free(got);
	mp_msg_free(m);
	free(blk);
}

START_TEST(every_type_round_trips)
{
	round_trip(MP_MSG_REQUEST);
	round_trip(MP_MSG_REPLY);
	round_trip(MP_MSG_FAILURE_NOTICE);
	round_trip(MP_MSG_SIGNAL);
	round_trip(MP_MSG_RELAY);
	round_trip(MP_MSG_TABLE_SYNC);
}
END_TEST

START_TEST(empty_reply_is_formal)
{
	mp_msg *m = mp_msg_new(MP_MSG_REPLY), *got;
	mp_block_key from = { .host = host }, to = { .user = alice };
	uint8_t *blk;
	size_t len;

	ck_assert_int_eq(mp_block_seal(m, &from, mp_identity_public(alice)->seal_pub, &blk, &len), MP_OK);
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_OK);
	ck_assert_uint_eq(got->u.reply.npeers, 0);
	mp_msg_free(got);
	mp_msg_free(m);
	free(blk);
}
END_TEST

START_TEST(sender_must_fit_type)
{
	mp_msg *m = mp_msg_new(MP_MSG_REPLY);
	mp_block_key user = { .user = alice }, hostk = { .host = host }, both = { .host = host, .user = alice };
	uint8_t *blk;
	size_t len;

	/* a user cannot seal a REPLY, a host cannot seal a REQUEST */
	ck_assert_int_eq(mp_block_seal(m, &user, host_pub, &blk, &len), MP_ERR_INVAL);
	m->type = MP_MSG_REQUEST;
	fill_message(m, NULL);
	ck_assert_int_eq(mp_block_seal(m, &hostk, host_pub, &blk, &len), MP_ERR_INVAL);
	ck_assert_int_eq(mp_block_seal(m, &both, host_pub, &blk, &len), MP_ERR_INVAL);
	m->type = 99;
	ck_assert_int_eq(mp_block_seal(m, &user, host_pub, &blk, &len), MP_ERR_TYPE);
	mp_msg_free(m);
}
END_TEST

START_TEST(forged_sender_kind_refused)
{
	/* A user-sealed envelope claiming to be a REPLY must not even be
	 * decrypted: only hosts send replies. */
	uint8_t plain[64] = { 0 }, *blk;
	size_t len;
	mp_block_key user = { .user = alice }, to = { .user = bob };
	mp_msg *got;

	ck_assert_int_eq(mp_seal(MP_MSG_REPLY, plain, sizeof plain, &user,
	                         mp_identity_public(bob)->seal_pub, NULL, &blk, &len), MP_OK);
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_ERR_TYPE);
	ck_assert_ptr_null(got);
	free(blk);
}
END_TEST

/* Seal an arbitrary plaintext as a REQUEST from alice to the host. */
static int
open_raw_request(const uint8_t *plain, size_t len)
{
	mp_block_key from = { .user = alice }, to = { .host = host };
	uint8_t *blk;
	size_t blen;
	mp_msg *got = NULL;
	int rc;

	ck_assert_int_eq(mp_seal(MP_MSG_REQUEST, plain, len, &from, host_pub, NULL, &blk, &blen), MP_OK);
	rc = mp_block_open(blk, blen, &to, &got);
	mp_msg_free(got);
	free(blk);
	return rc;
}

/* A valid REQUEST plaintext, built by hand as PROTOCOL.md describes. */
static size_t
request_plain(uint8_t *p, const char *addr, uint8_t ncand, uint8_t family, uint16_t ext)
{
	size_t n = 0, alen = strlen(addr);

	memset(p, 7, 16);                 /* session ID */
	n = 16;
	memset(p + n, 0, 8);              /* time */
	n += 8;
	memcpy(p + n, mp_identity_public(alice), 64);
	n += 64;
	p[n++] = (uint8_t)alen;
	memcpy(p + n, addr, alen);
	n += alen;
	p[n++] = 0;                       /* empty name */
	p[n++] = ncand;
	if (ncand) {
		p[n++] = MP_CAND_SRFLX;
		p[n++] = family;
		memset(p + n, 1, 4);
		n += 4;
		p[n++] = 0x13;
		p[n++] = 0x88;
	}
	memset(p + n, 0, 5);              /* NAT unknown, delta 0 */
	n += 5;
	p[n++] = (uint8_t)(ext >> 8);
	p[n++] = (uint8_t)ext;
	return n;
}

START_TEST(decoder_is_strict)
{
	uint8_t p[512];
	size_t n;

	n = request_plain(p, "a@b.example", 1, 4, 0);
	ck_assert_int_eq(open_raw_request(p, n), MP_OK);
	/* trailing byte */
	p[n] = 0;
	ck_assert_int_eq(open_raw_request(p, n + 1), MP_ERR_MALFORMED);
	/* truncated */
	ck_assert_int_eq(open_raw_request(p, n - 1), MP_ERR_MALFORMED);
	/* bad family */
	n = request_plain(p, "a@b.example", 1, 5, 0);
	ck_assert_int_eq(open_raw_request(p, n), MP_ERR_MALFORMED);
	/* too many candidates */
	n = request_plain(p, "a@b.example", MP_MAX_CANDIDATES + 1, 4, 0);
	ck_assert_int_eq(open_raw_request(p, n), MP_ERR_MALFORMED);
	/* not a mail address */
	n = request_plain(p, "no-at-sign", 0, 4, 0);
	ck_assert_int_eq(open_raw_request(p, n), MP_ERR_MALFORMED);
	/* extension area announced but missing */
	n = request_plain(p, "a@b.example", 0, 4, 3);
	ck_assert_int_eq(open_raw_request(p, n), MP_ERR_MALFORMED);
	/* extension area present: skipped by a version 1 reader */
	memset(p + n, 0xee, 3);
	ck_assert_int_eq(open_raw_request(p, n + 3), MP_OK);
}
END_TEST

START_TEST(signer_key_must_match_plaintext)
{
	/* bob signs a plaintext that names alice as sender: refused */
	uint8_t p[512], *blk;
	size_t n = request_plain(p, "a@b.example", 0, 4, 0), blen;
	mp_block_key from = { .user = bob }, to = { .host = host };
	mp_msg *got;

	ck_assert_int_eq(mp_seal(MP_MSG_REQUEST, p, n, &from, host_pub, NULL, &blk, &blen), MP_OK);
	ck_assert_int_eq(mp_block_open(blk, blen, &to, &got), MP_ERR_SIGNATURE);
	free(blk);
}
END_TEST

START_TEST(limits_enforced_on_encode)
{
	mp_msg *m = mp_msg_new(MP_MSG_REQUEST);
	mp_block_key from = { .user = alice };
	uint8_t *blk;
	size_t len;

	fill_message(m, NULL);
	m->u.request.ep.ncand = MP_MAX_CANDIDATES + 1;
	ck_assert_int_eq(mp_block_seal(m, &from, host_pub, &blk, &len), MP_ERR_INVAL);
	fill_message(m, NULL);
	memset(m->u.request.name, 'x', MP_NAME_MAX);   /* exactly the limit: fine */
	m->u.request.name[MP_NAME_MAX] = '\0';
	ck_assert_int_eq(mp_block_seal(m, &from, host_pub, &blk, &len), MP_OK);
	free(blk);
	m->type = MP_MSG_SIGNAL;
	fill_message(m, NULL);
	m->u.signal.payload_len = MP_SIGNAL_PAYLOAD_MAX + 1;
	ck_assert_int_eq(mp_block_seal(m, &from, host_pub, &blk, &len), MP_ERR_TOOBIG);
	mp_msg_free(m);
}
END_TEST

START_TEST(full_sync_fits_block)
{
	mp_msg *m = mp_msg_new(MP_MSG_TABLE_SYNC), *got;
	mp_block_key from = { .host = host }, to = { .host = host };
	uint8_t *blk;
	size_t len;
	unsigned i;

	m->u.sync.nentries = MP_SYNC_MAX_ENTRIES;
	for (i = 0; i < MP_SYNC_MAX_ENTRIES; i++) {
		mp_sync_entry *e = &m->u.sync.entries[i];

		e->id = *mp_identity_public(bob);
		memset(e->name, 'n', MP_NAME_MAX);
		memset(e->reply_addr, 'a', 200);
		strcpy(e->reply_addr + 200, "@example.org");
		fill_endpoints(&e->ep, i);
		e->ep.ncand = 3;
	}
	ck_assert_int_eq(mp_block_seal(m, &from, host_pub, &blk, &len), MP_OK);
	ck_assert_uint_le(len, MP_BLOCK_MAX);
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_OK);
	ck_assert_uint_eq(got->u.sync.nentries, MP_SYNC_MAX_ENTRIES);
	mp_msg_free(got);
	mp_msg_free(m);
	free(blk);
}
END_TEST

START_TEST(candidate_text)
{
	mp_candidate c;
	char buf[64];

	ck_assert_int_eq(mp_candidate_parse("198.51.100.7:4500", MP_CAND_SRFLX, &c), MP_OK);
	ck_assert_uint_eq(c.family, 4);
	ck_assert_uint_eq(c.port, 4500);
	ck_assert_int_eq(mp_candidate_format(&c, buf, sizeof buf), MP_OK);
	ck_assert_str_eq(buf, "198.51.100.7:4500");
	ck_assert_int_eq(mp_candidate_parse("[2001:db8::1]:65535", MP_CAND_LOCAL, &c), MP_OK);
	ck_assert_int_eq(mp_candidate_format(&c, buf, sizeof buf), MP_OK);
	ck_assert_str_eq(buf, "[2001:db8::1]:65535");
	ck_assert_int_eq(mp_candidate_parse("1.2.3.4:0", MP_CAND_LOCAL, &c), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_candidate_parse("1.2.3.4:65536", MP_CAND_LOCAL, &c), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_candidate_parse("1.2.3:80", MP_CAND_LOCAL, &c), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_candidate_parse("2001:db8::1:80", MP_CAND_LOCAL, &c), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_candidate_parse("1.2.3.4:-1", MP_CAND_LOCAL, &c), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_candidate_parse(":80", MP_CAND_LOCAL, &c), MP_ERR_SYNTAX);
}
END_TEST

static Suite *
block_suite(void)
{
	Suite *s = suite_create("block");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, every_type_round_trips);
	tcase_add_test(tc, empty_reply_is_formal);
	tcase_add_test(tc, sender_must_fit_type);
	tcase_add_test(tc, forged_sender_kind_refused);
	tcase_add_test(tc, decoder_is_strict);
	tcase_add_test(tc, signer_key_must_match_plaintext);
	tcase_add_test(tc, limits_enforced_on_encode);
	tcase_add_test(tc, full_sync_fits_block);
	tcase_add_test(tc, candidate_text);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(block_suite)
