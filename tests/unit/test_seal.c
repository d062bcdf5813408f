/* test_seal.c - the envelope: tampering, wrong keys, truncation, forged
 * host keys, malicious ephemeral keys. */
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

static uint8_t *
sealed_request(size_t *len)
{
	mp_msg *m = mp_msg_new(MP_MSG_REQUEST);
	mp_block_key from = { .user = alice };
	uint8_t *blk;

	fill_message(m, NULL);
	ck_assert_int_eq(mp_block_seal(m, &from, host_pub, &blk, len), MP_OK);
	mp_msg_free(m);
	return blk;
}

static uint8_t *
sealed_reply(size_t *len)
{
	mp_msg *m = mp_msg_new(MP_MSG_REPLY);
	mp_block_key from = { .host = host };
	uint8_t *blk;

	fill_message(m, mp_identity_public(bob));
	ck_assert_int_eq(mp_block_seal(m, &from, mp_identity_public(alice)->seal_pub, &blk, len), MP_OK);
	mp_msg_free(m);
	return blk;
}

static void
every_bit_flip_rejected(uint8_t *blk, size_t len, const mp_block_key *to)
{
	size_t i;
	int bit;
	mp_msg *got;

	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			blk[i] ^= (uint8_t)(1u << bit);
			got = NULL;
			int rc = mp_block_open(blk, len, to, &got);
			ck_assert_msg(rc != MP_OK, "flip of byte %zu bit %d accepted", i, bit);
			ck_assert_ptr_null(got);
			blk[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* and untouched it still opens: the loop restored every bit */
	ck_assert_int_eq(mp_block_open(blk, len, to, &got), MP_OK);
	mp_msg_free(got);
}

START_TEST(tampered_user_block_rejected)
{
	mp_block_key to = { .host = host };
	size_t len;
	uint8_t *blk = sealed_request(&len);

	every_bit_flip_rejected(blk, len, &to);
	free(blk);
}
END_TEST

START_TEST(tampered_host_block_rejected)
{
	mp_block_key to = { .user = alice };
	size_t len;
	uint8_t *blk = sealed_reply(&len);

	every_bit_flip_rejected(blk, len, &to);
	free(blk);
}
END_TEST

START_TEST(wrong_recipient_key)
{
	mp_hostkey *other;
	mp_block_key to = { 0 };
	mp_msg *got;
	size_t len;
	uint8_t *blk = sealed_request(&len);

	ck_assert_int_eq(mp_hostkey_generate(&other), MP_OK);
	to.host = other;
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_ERR_WRONGKEY);
	/* even if the key hint is made to match, decryption fails */
	uint8_t opub[MP_KEY_LEN];
	mp_hostkey_public(other, opub);
	mp_key_id(opub, blk + 6);
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_ERR_DECRYPT);
	/* a user key cannot open a block for the host either */
	to.host = NULL;
	to.user = bob;
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_ERR_WRONGKEY);
	mp_hostkey_free(other);
	free(blk);
}
END_TEST

START_TEST(every_truncation_rejected)
{
	mp_block_key to = { .host = host };
	mp_msg *got;
	size_t len, n;
	uint8_t *blk = sealed_request(&len);

	for (n = 0; n < len; n++)
		ck_assert_int_ne(mp_block_open(blk, n, &to, &got), MP_OK);
	ck_assert_int_eq(mp_block_open(blk, 1, &to, &got), MP_ERR_MAGIC);
	ck_assert_int_eq(mp_block_open(blk, 5, &to, &got), MP_ERR_TRUNCATED);
	ck_assert_int_eq(mp_block_open(blk, 60, &to, &got), MP_ERR_TRUNCATED);
	free(blk);
}
END_TEST

START_TEST(header_checks)
{
	mp_block_key to = { .host = host };
	mp_block_header h;
	mp_msg *got;
	size_t len;
	uint8_t *blk = sealed_request(&len), *big;

	ck_assert_int_eq(mp_block_peek(blk, len, &h), MP_OK);
	ck_assert_uint_eq(h.type, MP_MSG_REQUEST);
	ck_assert_uint_eq(h.sender_kind, MP_SENDER_USER);
	blk[2] = 2;
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_ERR_VERSION);
	blk[2] = 1;
	blk[3] = 0;
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_ERR_TYPE);
	blk[3] = 8;
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_ERR_TYPE);
	blk[3] = MP_MSG_REQUEST;
	blk[4] = 3;
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_ERR_MALFORMED);
	blk[4] = MP_SENDER_USER;
	blk[0] = 'X';
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_ERR_MAGIC);
	blk[0] = 'M';
	/* oversize input refused before any work */
	big = calloc(1, MP_BLOCK_MAX + 1);
	memcpy(big, blk, len);
	ck_assert_int_eq(mp_block_open(big, MP_BLOCK_MAX + 1, &to, &got), MP_ERR_TOOBIG);
	free(big);
	free(blk);
}
END_TEST

START_TEST(impostor_host_is_visible)
{
	/* Anyone can make a host key; what open reports is the key that
	 * really sealed, so a caller comparing with its configured host
	 * key rejects the impostor. */
	mp_hostkey *evil;
	mp_msg *m = mp_msg_new(MP_MSG_REPLY), *got;
	mp_block_key from = { 0 }, to = { .user = alice };
	uint8_t evil_pub[MP_KEY_LEN], *blk;
	size_t len;

	ck_assert_int_eq(mp_hostkey_generate(&evil), MP_OK);
	mp_hostkey_public(evil, evil_pub);
	from.host = evil;
	ck_assert_int_eq(mp_block_seal(m, &from, mp_identity_public(alice)->seal_pub, &blk, &len), MP_OK);
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_OK);
	ck_assert_mem_eq(got->sender_host, evil_pub, MP_KEY_LEN);
	ck_assert_mem_ne(got->sender_host, host_pub, MP_KEY_LEN);
	mp_msg_free(got);
	/* swapping the real host's key into the header breaks the block */
	memcpy(blk + 46, host_pub, MP_KEY_LEN);
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_ERR_DECRYPT);
	mp_msg_free(m);
	free(blk);
	mp_hostkey_free(evil);
}
END_TEST

START_TEST(low_order_ephemeral_rejected)
{
	mp_block_key to = { .host = host };
	mp_msg *got;
	size_t len;
	uint8_t *blk = sealed_request(&len);

	/* the all-zero point gives an all-zero shared secret */
	memset(blk + 14, 0, MP_KEY_LEN);
	ck_assert_int_eq(mp_block_open(blk, len, &to, &got), MP_ERR_DECRYPT);
	free(blk);
}
END_TEST

START_TEST(same_message_seals_differently)
{
	mp_msg *m = mp_msg_new(MP_MSG_REQUEST);
	mp_block_key from = { .user = alice };
	uint8_t *a, *b;
	size_t la, lb;

	fill_message(m, NULL);
	ck_assert_int_eq(mp_block_seal(m, &from, host_pub, &a, &la), MP_OK);
	ck_assert_int_eq(mp_block_seal(m, &from, host_pub, &b, &lb), MP_OK);
	ck_assert_uint_eq(la, lb);
	ck_assert_mem_ne(a + 14, b + 14, 32);    /* fresh ephemeral key */
	ck_assert(memcmp(a, b, la) != 0);
	mp_msg_free(m);
	free(a);
	free(b);
}
END_TEST

static Suite *
seal_suite(void)
{
	Suite *s = suite_create("seal");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, tampered_user_block_rejected);
	tcase_add_test(tc, tampered_host_block_rejected);
	tcase_add_test(tc, wrong_recipient_key);
	tcase_add_test(tc, every_truncation_rejected);
	tcase_add_test(tc, header_checks);
	tcase_add_test(tc, impostor_host_is_visible);
	tcase_add_test(tc, low_order_ephemeral_rejected);
	tcase_add_test(tc, same_message_seals_differently);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(seal_suite)
