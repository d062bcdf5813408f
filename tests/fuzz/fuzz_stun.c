/*
 * fuzz_stun.c - libFuzzer target for the STUN message parser.
 *
 * Every input is parsed; when it parses, the promises of mp_stun_parse()
 * are checked (length, NUL-terminated texts within their limits, address
 * families 4 or 6, error codes in range), MESSAGE-INTEGRITY is verified
 * with the RFC 5769 password when present (must answer OK or SIGNATURE),
 * and the message is rebuilt from its decoded fields with the builder
 * and parsed again: both decodings must agree.  A broken promise aborts.
 * Seeds: tests/fuzz/corpus/stun (the RFC 5769 samples, a coturn answer).
 */
#include "mailpunch/error.h"
#include "mailpunch/netif.h"
#include "mailpunch/stun.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key[] = "VOkJxbRl1RmTxUk/WvJxBt";

static void
check_text(const char *s, uint16_t len, size_t max)
{
	if (len > max || s[len] != '\0' || strlen(s) > len)
		abort();
}

static void
check_addr(const mp_candidate *c)
{
	if (c->family != 4 && c->family != 6)
		abort();
}

static void
check_promises(const uint8_t *data, size_t size, const mp_stun_msg *m)
{
	int rc;

	if (m->len != size || size > MP_STUN_MSG_MAX || size < MP_STUN_HEADER_LEN)
		abort();
	if (memcmp(m->tid, data + 8, MP_STUN_TID_LEN) != 0)
		abort();
	check_text(m->username, m->username_len, MP_STUN_USERNAME_MAX);
	check_text(m->realm, m->realm_len, MP_STUN_TEXT_MAX);
	check_text(m->nonce, m->nonce_len, MP_STUN_TEXT_MAX);
	check_text(m->software, m->software_len, MP_STUN_TEXT_MAX);
	check_text(m->reason, m->reason_len, MP_STUN_TEXT_MAX);
	if (m->have & MP_STUN_HAVE_XOR_MAPPED)
		check_addr(&m->xor_mapped);
	if (m->have & MP_STUN_HAVE_MAPPED)
		check_addr(&m->mapped);
	if (m->have & MP_STUN_HAVE_RESPONSE_ORIGIN)
		check_addr(&m->response_origin);
	if (m->have & MP_STUN_HAVE_OTHER_ADDRESS)
		check_addr(&m->other_address);
	if ((m->have & MP_STUN_HAVE_ERROR_CODE) && (m->error_code < 300 || m->error_code > 699))
		abort();
	rc = mp_stun_check_integrity(data, size, m, (const uint8_t *)key, sizeof key - 1);
	if ((m->have & MP_STUN_HAVE_INTEGRITY) ? (rc != MP_OK && rc != MP_ERR_SIGNATURE)
	                                       : rc != MP_ERR_NOTFOUND)
		abort();
}

static void
add_text(mp_stun_builder *b, uint32_t have, uint32_t bit, uint16_t type,
         const char *s, uint16_t len)
{
	if (have & bit)
		mp_stun_add_attr(b, type, s, len);
}

static void
add_addr(mp_stun_builder *b, uint32_t have, uint32_t bit, uint16_t type,
         const mp_candidate *c)
{
	if (have & bit)
		mp_stun_add_addr(b, type, c);
}

/* The decoded fields, written again; FINGERPRINT and MESSAGE-INTEGRITY
 * are not carried over, unknown attributes are dropped. */
static int
rebuild(const mp_stun_msg *m, uint8_t *out, size_t cap, size_t *len)
{
	mp_stun_builder b;
	uint32_t h = m->have;

	mp_stun_builder_init(&b, out, cap, m->type, m->tid);
	add_addr(&b, h, MP_STUN_HAVE_XOR_MAPPED, MP_STUN_ATTR_XOR_MAPPED_ADDRESS, &m->xor_mapped);
	add_addr(&b, h, MP_STUN_HAVE_MAPPED, MP_STUN_ATTR_MAPPED_ADDRESS, &m->mapped);
	add_addr(&b, h, MP_STUN_HAVE_RESPONSE_ORIGIN, MP_STUN_ATTR_RESPONSE_ORIGIN, &m->response_origin);
	add_addr(&b, h, MP_STUN_HAVE_OTHER_ADDRESS, MP_STUN_ATTR_OTHER_ADDRESS, &m->other_address);
	if (h & MP_STUN_HAVE_CHANGE_REQUEST)
		mp_stun_add_u32(&b, MP_STUN_ATTR_CHANGE_REQUEST, m->change_flags);
	if (h & MP_STUN_HAVE_ERROR_CODE) {
		uint8_t v[4 + MP_STUN_TEXT_MAX] = { 0, 0, (uint8_t)(m->error_code / 100),
		                                    (uint8_t)(m->error_code % 100) };

		memcpy(v + 4, m->reason, m->reason_len);
		mp_stun_add_attr(&b, MP_STUN_ATTR_ERROR_CODE, v, 4u + m->reason_len);
	}
	add_text(&b, h, MP_STUN_HAVE_USERNAME, MP_STUN_ATTR_USERNAME, m->username, m->username_len);
	add_text(&b, h, MP_STUN_HAVE_REALM, MP_STUN_ATTR_REALM, m->realm, m->realm_len);
	add_text(&b, h, MP_STUN_HAVE_NONCE, MP_STUN_ATTR_NONCE, m->nonce, m->nonce_len);
	add_text(&b, h, MP_STUN_HAVE_SOFTWARE, MP_STUN_ATTR_SOFTWARE, m->software, m->software_len);
	return mp_stun_builder_finish(&b, len);
}

static void
same_addr(uint32_t have, uint32_t bit, const mp_candidate *a, const mp_candidate *b)
{
	if ((have & bit) && (!mp_candidate_same_endpoint(a, b) || a->kind != b->kind))
		abort();
}

static void
same_text(const char *a, uint16_t alen, const char *b, uint16_t blen)
{
	if (alen != blen || memcmp(a, b, alen) != 0)
		abort();
}

static void
check_round_trip(const mp_stun_msg *m)
{
	static uint8_t out[MP_STUN_MSG_MAX];
	static mp_stun_msg m2;
	const uint32_t mask = ~(MP_STUN_HAVE_INTEGRITY | MP_STUN_HAVE_FINGERPRINT);
	size_t len;
	int rc = rebuild(m, out, sizeof out, &len);

	/* each attribute written stands for one of the same size in the
	 * input, so the rebuilt message always fits */
	if (rc != MP_OK || mp_stun_parse(out, len, &m2) != MP_OK)
		abort();
	if (m2.type != m->type || m2.method != m->method || m2.cls != m->cls ||
	    memcmp(m2.tid, m->tid, MP_STUN_TID_LEN) != 0 ||
	    m2.have != (m->have & mask) || m2.nunknown != 0)
		abort();
	same_addr(m->have, MP_STUN_HAVE_XOR_MAPPED, &m->xor_mapped, &m2.xor_mapped);
	same_addr(m->have, MP_STUN_HAVE_MAPPED, &m->mapped, &m2.mapped);
	same_addr(m->have, MP_STUN_HAVE_RESPONSE_ORIGIN, &m->response_origin, &m2.response_origin);
	same_addr(m->have, MP_STUN_HAVE_OTHER_ADDRESS, &m->other_address, &m2.other_address);
	if (m2.change_flags != m->change_flags || m2.error_code != m->error_code)
		abort();
	same_text(m->username, m->username_len, m2.username, m2.username_len);
	same_text(m->realm, m->realm_len, m2.realm, m2.realm_len);
	same_text(m->nonce, m->nonce_len, m2.nonce, m2.nonce_len);
	same_text(m->software, m->software_len, m2.software, m2.software_len);
	same_text(m->reason, m->reason_len, m2.reason, m2.reason_len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mp_stun_msg m;

	if (mp_stun_parse(data, size, &m) != MP_OK)
		return 0;
	check_promises(data, size, &m);
	check_round_trip(&m);
	return 0;
}
