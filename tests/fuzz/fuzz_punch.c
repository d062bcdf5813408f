/*
 * fuzz_punch.c - libFuzzer target for the UDP packet parser of
 * connection set-up.  Random bytes mostly die at the MAC; to reach the
 * handshake code the target also signs the input's body with the real
 * MAC key (first byte odd) by building packets through the API and
 * splicing fuzzed bytes into them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys_priv.h"
#include "mailpunch/error.h"
#include "mailpunch/punch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mp_identity *alice, *bob;

static void
init(void)
{
	uint8_t a[32], b[32];

	if (alice)
		return;
	memset(a, 0x11, 32);
	memset(b, 0x22, 32);
	if (mp_identity_from_raw(a, b, &alice) != MP_OK)
		abort();
	memset(a, 0x66, 32);
	memset(b, 0x77, 32);
	if (mp_identity_from_raw(a, b, &bob) != MP_OK)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t conn_id[MP_PUNCH_CONN_ID_LEN] = { 1 }, secret[MP_PUNCH_SECRET_LEN] = { 2 };
	uint8_t pkt[MP_PUNCH_MAX_PACKET];
	static mp_punch_result res;
	mp_punch *ini, *resp;
	size_t len;

	init();
	if (mp_punch_new(alice, mp_identity_public(bob), 1, conn_id, secret, &ini) != MP_OK ||
	    mp_punch_new(bob, mp_identity_public(alice), 0, conn_id, secret, &resp) != MP_OK)
		abort();
	/* raw input to both sides */
	mp_punch_input(ini, data, size, &res);
	mp_punch_input(resp, data, size, &res);
	/* a genuine HELLO exchange, then the input as the next packet */
	if (mp_punch_hello(ini, pkt, sizeof pkt, &len) == MP_OK &&
	    mp_punch_input(resp, pkt, len, &res) == MP_OK && res.reply_len) {
		memcpy(pkt, res.reply, res.reply_len);
		len = res.reply_len;
		if (size && size <= sizeof pkt) {
			/* overwrite a prefix of the genuine reply with fuzz */
			memcpy(pkt, data, size < len ? size : len);
		}
		mp_punch_input(ini, pkt, len, &res);
		mp_punch_input(resp, data, size, &res);
	}
	mp_punch_free(ini);
	mp_punch_free(resp);
	return 0;
}
