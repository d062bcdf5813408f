/*
 * fuzz_block.c - libFuzzer target for the block decoder.
 *
 * The first input byte picks the path:
 *   even: the rest is a sealed block, opened with fixed host and user
 *         keys (exercises the header checks and the envelope);
 *   odd:  the rest is a plaintext body, which we seal ourselves with the
 *         type named by the second byte and open again.  AEAD keeps
 *         random bytes from ever reaching the body decoder through the
 *         first path, so this one is what fuzzes the decoder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys_priv.h"
#include "mailpunch/block.h"
#include "mailpunch/error.h"
#include "seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mp_hostkey *host;
static mp_identity *user;
static uint8_t host_pub[MP_KEY_LEN];

static void
init_keys(void)
{
	uint8_t a[MP_KEY_LEN], b[MP_KEY_LEN];

	if (host)
		return;
	/* the same fixed keys as tests/vectors, so the seeds open */
	memset(a, 0x33, sizeof a);
	if (mp_hostkey_from_raw(a, &host) != MP_OK)
		abort();
	memset(a, 0x11, sizeof a);
	memset(b, 0x22, sizeof b);
	if (mp_identity_from_raw(a, b, &user) != MP_OK)
		abort();
	mp_hostkey_public(host, host_pub);
}

static void
open_both(const uint8_t *blk, size_t len)
{
	mp_block_key as_host = { .host = host }, as_user = { .user = user };
	mp_msg *m = NULL;

	if (mp_block_open(blk, len, &as_host, &m) == MP_OK)
		mp_msg_free(m);
	m = NULL;
	if (mp_block_open(blk, len, &as_user, &m) == MP_OK)
		mp_msg_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mp_block_key from = { 0 }, to = { 0 };
	uint8_t *blk;
	size_t len;
	uint8_t type;

	init_keys();
	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		open_both(data + 1, size - 1);
		return 0;
	}
	if (size < 2)
		return 0;
	type = data[1] % 8;
	if (type == MP_MSG_REPLY || type == MP_MSG_TABLE_SYNC || type == MP_MSG_RELAYED)
		from.host = host;
	else
		from.user = user;
	to.host = host;
	if (mp_seal(type, data + 2, size - 2, &from, host_pub, NULL, &blk, &len) == MP_OK) {
		mp_msg *m = NULL;

		if (mp_block_open(blk, len, &to, &m) == MP_OK)
			mp_msg_free(m);
		free(blk);
	}
	return 0;
}
