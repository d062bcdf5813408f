/*
 * test_stun.c - unit tests for the STUN codec (lib/stun.c).
 *
 * The RFC 5769 samples (request 2.1, IPv4 response 2.2, IPv6 response
 * 2.3, long-term request 2.4) are parsed, their FINGERPRINT and
 * MESSAGE-INTEGRITY verified with the given passwords, and rebuilt byte
 * for byte with the builder; two real coturn 4.6.1 answers (success with
 * RFC 5780 attributes, 420 error) are decoded.  Then round trips of our
 * own requests and responses, and every malformed case the parser must
 * refuse: short header, bad cookie or leading bits, bad lengths,
 * attributes or padding past the end, bad FINGERPRINT and
 * MESSAGE-INTEGRITY, address family 3, oversized messages, over-long text
 * attributes.
 */
#include "testutil.h"

#include "mailpunch/error.h"
#include "mailpunch/netif.h"
#include "mailpunch/stun.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- RFC 5769 */

static const char req21_hex[] =
	"000100582112a442b7e7a701bc34d686fa87dfae"
	"802200105354554e207465737420636c69656e74"
	"002400046e0001ff80290008932ff9b151263b36"
	"000600096576746a3a68367659202020"
	"000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
	"80280004e57a3bcf";

static const char resp22_hex[] =
	"0101003c2112a442b7e7a701bc34d686fa87dfae"
	"8022000b7465737420766563746f7220"
	"002000080001a147e112a643"
	"000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
	"80280004c07d4c96";

static const char resp23_hex[] =
	"010100482112a442b7e7a701bc34d686fa87dfae"
	"8022000b7465737420766563746f7220"
	"002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9"
	"00080014a382954e4be67bf11784c97c8292c275bfe3ed41"
	"80280004c8fb0b4c";

static const char req24_hex[] =
	"000100602112a44278ad3433c6ad72c029da412e"
	"00060012e3839ee38388e383aae38383e382afe382b90000"
	"0015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410"
	"014000b6578616d706c652e6f726700"
	"00080014f67024656dd64a3e02b8e0712e85c9a28ca89666";

/* Real answers of coturn 4.6.1 (tests/fuzz/corpus/stun/coturn-*.bin). */
static const char coturn_ok_hex[] =
	"010100502112a442888b7375a2d7d81709b7f035002000080001ffc45e12a443"
	"000100080001ded67f000001802b000800018a967f000001802c000800018a97"
	"7f00000280220014436f7475726e2d342e362e312027476f72737427802800043d95e1f4";
static const char coturn_420_hex[] =
	"011100442112a442c033f891840980353d567fe40009001800000414556e6b6e"
	"6f776e20417474726962757465000000000a00020042000080220014436f7475"
	"726e2d342e362e312027476f7273742780280004c307a1d8";

static const char password[] = "VOkJxbRl1RmTxUk/WvJxBt";
static const uint8_t tid_rfc[MP_STUN_TID_LEN] = {
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae
};
static const uint8_t tid_ltc[MP_STUN_TID_LEN] = {
	0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e
};
/* U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9, as RFC 5769 §2.4 gives it */
static const char user_ltc[] =
	"\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";

static size_t
unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; hex[0] && hex[1]; hex += 2) {
		unsigned v;

		ck_assert_int_eq(sscanf(hex, "%2x", &v), 1);
		ck_assert_uint_lt(n, cap);
		out[n++] = (uint8_t)v;
	}
	ck_assert_int_eq(*hex, '\0');
	return n;
}

static const uint8_t *pw = (const uint8_t *)password;
#define PWLEN (sizeof password - 1)

static mp_candidate
cand(int family, const char *addr, uint16_t port, uint8_t kind)
{
	mp_candidate c;

	memset(&c, 0, sizeof c);
	c.kind = kind;
	c.family = (uint8_t)family;
	c.port = port;
	ck_assert_int_eq(inet_pton(family == 4 ? AF_INET : AF_INET6, addr, c.addr), 1);
	return c;
}

static void
assert_cand(const mp_candidate *c, const char *text)
{
	char buf[64];

	ck_assert_int_eq(mp_candidate_format(c, buf, sizeof buf), MP_OK);
	ck_assert_str_eq(buf, text);
}

START_TEST(rfc5769_request)
{
	uint8_t msg[256], out[256];
	size_t n = unhex(req21_hex, msg, sizeof msg), outlen;
	mp_stun_msg m;
	mp_stun_builder b;

	ck_assert_uint_eq(n, 108);
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_OK);
	ck_assert_uint_eq(m.type, MP_STUN_BINDING_REQUEST);
	ck_assert_uint_eq(m.method, MP_STUN_METHOD_BINDING);
	ck_assert_uint_eq(m.cls, MP_STUN_CLASS_REQUEST);
	ck_assert_mem_eq(m.tid, tid_rfc, MP_STUN_TID_LEN);
	ck_assert(m.have & MP_STUN_HAVE_FINGERPRINT);
	ck_assert(m.have & MP_STUN_HAVE_INTEGRITY);
	ck_assert_str_eq(m.software, "STUN test client");
	ck_assert_uint_eq(m.software_len, 16);
	ck_assert_str_eq(m.username, "evtj:h6vY");
	ck_assert_uint_eq(m.username_len, 9);
	/* PRIORITY is comprehension-required and ICE's, not ours;
	 * ICE-CONTROLLED (0x8029) is optional and silently skipped */
	ck_assert_uint_eq(m.nunknown, 1);
	ck_assert_uint_eq(m.unknown[0], 0x0024);
	ck_assert_int_eq(mp_stun_check_integrity(msg, n, &m, pw, PWLEN), MP_OK);
	ck_assert_int_eq(mp_stun_check_integrity(msg, n, &m, (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBu", PWLEN),
	                 MP_ERR_SIGNATURE);

	/* the same bytes from the builder, with the RFC's space padding */
	mp_stun_builder_init(&b, out, sizeof out, MP_STUN_BINDING_REQUEST, tid_rfc);
	b.pad_byte = 0x20;
	mp_stun_add_attr(&b, MP_STUN_ATTR_SOFTWARE, "STUN test client", 16);
	mp_stun_add_u32(&b, 0x0024, 0x6e0001ff);
	mp_stun_add_attr(&b, 0x8029, "\x93\x2f\xf9\xb1\x51\x26\x3b\x36", 8);
	mp_stun_add_attr(&b, MP_STUN_ATTR_USERNAME, "evtj:h6vY", 9);
	mp_stun_add_integrity(&b, pw, PWLEN);
	mp_stun_add_fingerprint(&b);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &outlen), MP_OK);
	ck_assert_uint_eq(outlen, n);
	ck_assert_mem_eq(out, msg, n);
}
END_TEST

static void
check_response(const char *hex, size_t want_len, const char *mapped, int family,
               const char *mapped_addr)
{
	uint8_t msg[256], out[256];
	size_t n = unhex(hex, msg, sizeof msg), outlen;
	mp_stun_msg m;
	mp_stun_builder b;
	mp_candidate c;

	ck_assert_uint_eq(n, want_len);
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_OK);
	ck_assert_uint_eq(m.type, MP_STUN_BINDING_SUCCESS);
	ck_assert_uint_eq(m.cls, MP_STUN_CLASS_SUCCESS);
	ck_assert(mp_stun_is_response_to(&m, MP_STUN_METHOD_BINDING, tid_rfc));
	ck_assert(!mp_stun_is_response_to(&m, MP_STUN_METHOD_BINDING, tid_ltc));
	ck_assert(!mp_stun_is_response_to(&m, 0x003, tid_rfc));
	ck_assert_str_eq(m.software, "test vector");
	ck_assert_uint_eq(m.nunknown, 0);
	ck_assert(m.have & MP_STUN_HAVE_XOR_MAPPED);
	ck_assert(!(m.have & MP_STUN_HAVE_MAPPED));
	ck_assert_uint_eq(m.xor_mapped.kind, MP_CAND_SRFLX);
	assert_cand(&m.xor_mapped, mapped);
	ck_assert(m.have & MP_STUN_HAVE_FINGERPRINT);
	ck_assert_int_eq(mp_stun_check_integrity(msg, n, &m, pw, PWLEN), MP_OK);
	ck_assert_int_eq(mp_stun_check_integrity(msg, n, &m, pw, PWLEN - 1), MP_ERR_SIGNATURE);

	c = cand(family, mapped_addr, 32853, MP_CAND_SRFLX);
	mp_stun_builder_init(&b, out, sizeof out, MP_STUN_BINDING_SUCCESS, tid_rfc);
	b.pad_byte = 0x20;
	mp_stun_add_attr(&b, MP_STUN_ATTR_SOFTWARE, "test vector", 11);
	mp_stun_add_addr(&b, MP_STUN_ATTR_XOR_MAPPED_ADDRESS, &c);
	mp_stun_add_integrity(&b, pw, PWLEN);
	mp_stun_add_fingerprint(&b);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &outlen), MP_OK);
	ck_assert_uint_eq(outlen, n);
	ck_assert_mem_eq(out, msg, n);
}

START_TEST(rfc5769_ipv4_response)
{
	check_response(resp22_hex, 80, "192.0.2.1:32853", 4, "192.0.2.1");
}
END_TEST

START_TEST(rfc5769_ipv6_response)
{
	check_response(resp23_hex, 92, "[2001:db8:1234:5678:11:2233:4455:6677]:32853", 6,
	               "2001:db8:1234:5678:11:2233:4455:6677");
}
END_TEST

START_TEST(rfc5769_longterm_request)
{
	uint8_t msg[256], out[256], key[MP_STUN_LONGTERM_KEY_LEN], bad[MP_STUN_LONGTERM_KEY_LEN];
	size_t n = unhex(req24_hex, msg, sizeof msg), outlen;
	mp_stun_msg m;
	mp_stun_builder b;

	ck_assert_uint_eq(n, 116);
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_OK);
	ck_assert_mem_eq(m.tid, tid_ltc, MP_STUN_TID_LEN);
	ck_assert_str_eq(m.username, user_ltc);
	ck_assert_str_eq(m.realm, "example.org");
	ck_assert_str_eq(m.nonce, "f//499k954d6OL34oL9FSTvy64sA");
	ck_assert(!(m.have & MP_STUN_HAVE_FINGERPRINT));
	ck_assert_int_eq(mp_stun_longterm_key(user_ltc, "example.org", "TheMatrIX", key), MP_OK);
	ck_assert_int_eq(mp_stun_check_integrity(msg, n, &m, key, sizeof key), MP_OK);
	ck_assert_int_eq(mp_stun_longterm_key(user_ltc, "example.org", "TheMatrix", bad), MP_OK);
	ck_assert_int_eq(mp_stun_check_integrity(msg, n, &m, bad, sizeof bad), MP_ERR_SIGNATURE);

	/* zero padding, as our builder writes by default */
	mp_stun_builder_init(&b, out, sizeof out, MP_STUN_BINDING_REQUEST, tid_ltc);
	mp_stun_add_attr(&b, MP_STUN_ATTR_USERNAME, user_ltc, strlen(user_ltc));
	mp_stun_add_attr(&b, MP_STUN_ATTR_NONCE, "f//499k954d6OL34oL9FSTvy64sA", 28);
	mp_stun_add_attr(&b, MP_STUN_ATTR_REALM, "example.org", 11);
	mp_stun_add_integrity(&b, key, sizeof key);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &outlen), MP_OK);
	ck_assert_uint_eq(outlen, n);
	ck_assert_mem_eq(out, msg, n);
}
END_TEST

START_TEST(coturn_answers)
{
	uint8_t msg[256];
	size_t n = unhex(coturn_ok_hex, msg, sizeof msg);
	mp_stun_msg m;

	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_OK);
	ck_assert_uint_eq(m.type, MP_STUN_BINDING_SUCCESS);
	ck_assert_uint_eq(m.have, MP_STUN_HAVE_XOR_MAPPED | MP_STUN_HAVE_MAPPED |
	                  MP_STUN_HAVE_RESPONSE_ORIGIN | MP_STUN_HAVE_OTHER_ADDRESS |
	                  MP_STUN_HAVE_SOFTWARE | MP_STUN_HAVE_FINGERPRINT);
	assert_cand(&m.xor_mapped, "127.0.0.1:57046");
	assert_cand(&m.mapped, "127.0.0.1:57046");
	assert_cand(&m.response_origin, "127.0.0.1:35478");
	assert_cand(&m.other_address, "127.0.0.2:35479");
	ck_assert_str_eq(m.software, "Coturn-4.6.1 'Gorst'");

	n = unhex(coturn_420_hex, msg, sizeof msg);
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_OK);
	ck_assert_uint_eq(m.cls, MP_STUN_CLASS_ERROR);
	ck_assert_uint_eq(m.error_code, 420);
	ck_assert_str_eq(m.reason, "Unknown Attribute");
	ck_assert(m.have & MP_STUN_HAVE_FINGERPRINT);
}
END_TEST

/* Every prefix of every sample is refused, none crashes. */
START_TEST(rfc5769_prefixes)
{
	const char *hex[] = { req21_hex, resp22_hex, resp23_hex, req24_hex,
	                      coturn_ok_hex, coturn_420_hex };
	uint8_t msg[256];
	mp_stun_msg m;

	for (size_t i = 0; i < sizeof hex / sizeof hex[0]; i++) {
		size_t n = unhex(hex[i], msg, sizeof msg);

		for (size_t k = 0; k < n; k++)
			ck_assert_int_ne(mp_stun_parse(msg, k, &m), MP_OK);
	}
}
END_TEST

/* Any flipped bit of a fingerprinted sample is caught, by the header
 * checks, an attribute check or the CRC - except in FINGERPRINT's own
 * attribute header, which can turn it into another attribute. */
START_TEST(rfc5769_bit_flips)
{
	uint8_t msg[256];
	size_t n = unhex(resp22_hex, msg, sizeof msg);
	mp_stun_msg m;

	for (size_t i = 0; i < n * 8; i++) {
		if (i / 8 >= n - 8 && i / 8 < n - 4)
			continue;
		msg[i / 8] ^= (uint8_t)(1u << (i % 8));
		ck_assert_msg(mp_stun_parse(msg, n, &m) != MP_OK, "bit %zu", i);
		msg[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_OK);
}
END_TEST

/* ---------------------------------------------------------------- round trips */

START_TEST(request_round_trip)
{
	uint8_t buf[MP_STUN_MSG_MAX], tid[MP_STUN_TID_LEN], tid2[MP_STUN_TID_LEN];
	size_t n, n2;
	mp_stun_request r;
	mp_stun_msg m;

	memset(&r, 0, sizeof r);
	ck_assert_int_eq(mp_stun_binding_request(&r, tid, buf, sizeof buf, &n), MP_OK);
	ck_assert_uint_eq(n, MP_STUN_HEADER_LEN);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_uint_eq(m.type, MP_STUN_BINDING_REQUEST);
	ck_assert_mem_eq(m.tid, tid, MP_STUN_TID_LEN);
	ck_assert_uint_eq(m.have, 0);
	ck_assert_int_eq(mp_stun_binding_request(&r, tid2, buf, sizeof buf, &n2), MP_OK);
	ck_assert(memcmp(tid, tid2, sizeof tid) != 0);

	r.change_request = 1;
	r.change_flags = MP_STUN_CHANGE_IP | MP_STUN_CHANGE_PORT | 0x100; /* stray bit dropped */
	r.software = "mailpunch test";
	r.username = "alice:bob";
	r.key = pw;
	r.keylen = PWLEN;
	r.fingerprint = 1;
	ck_assert_int_eq(mp_stun_binding_request(&r, tid, buf, sizeof buf, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_uint_eq(m.have, MP_STUN_HAVE_CHANGE_REQUEST | MP_STUN_HAVE_SOFTWARE |
	                  MP_STUN_HAVE_USERNAME | MP_STUN_HAVE_INTEGRITY | MP_STUN_HAVE_FINGERPRINT);
	ck_assert_uint_eq(m.change_flags, MP_STUN_CHANGE_IP | MP_STUN_CHANGE_PORT);
	ck_assert_str_eq(m.software, "mailpunch test");
	ck_assert_str_eq(m.username, "alice:bob");
	ck_assert_int_eq(mp_stun_check_integrity(buf, n, &m, pw, PWLEN), MP_OK);

	/* CHANGE-REQUEST with no flag is still sent (RFC 5780 test I vs. II) */
	memset(&r, 0, sizeof r);
	r.change_request = 1;
	ck_assert_int_eq(mp_stun_binding_request(&r, tid, buf, sizeof buf, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert(m.have & MP_STUN_HAVE_CHANGE_REQUEST);
	ck_assert_uint_eq(m.change_flags, 0);

	/* long-term: REALM and NONCE go with the key */
	r.username = "u";
	r.realm = "example.org";
	r.nonce = "nonce";
	r.key = pw;
	r.keylen = 16;
	ck_assert_int_eq(mp_stun_binding_request(&r, tid, buf, sizeof buf, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_str_eq(m.realm, "example.org");
	ck_assert_str_eq(m.nonce, "nonce");
	ck_assert_int_eq(mp_stun_check_integrity(buf, n, &m, pw, 16), MP_OK);
	ck_assert_int_eq(mp_stun_check_integrity(buf, n, &m, pw, 15), MP_ERR_SIGNATURE);
}
END_TEST

START_TEST(response_round_trip)
{
	uint8_t buf[MP_STUN_MSG_MAX], tid[MP_STUN_TID_LEN];
	size_t n;
	mp_stun_builder b;
	mp_stun_msg m;
	mp_candidate x = cand(6, "2001:db8::7", 40000, MP_CAND_SRFLX);
	mp_candidate p = cand(4, "203.0.113.9", 5000, MP_CAND_SRFLX);
	mp_candidate o = cand(4, "198.51.100.1", 3478, 0);
	mp_candidate a = cand(4, "198.51.100.2", 3479, 0);
	mp_candidate legacy = cand(4, "192.0.2.99", 99, 0);

	memset(tid, 0x5a, sizeof tid);
	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_SUCCESS, tid);
	mp_stun_add_addr(&b, MP_STUN_ATTR_CHANGED_ADDRESS, &legacy);
	mp_stun_add_addr(&b, MP_STUN_ATTR_XOR_MAPPED_ADDRESS, &x);
	mp_stun_add_addr(&b, MP_STUN_ATTR_MAPPED_ADDRESS, &p);
	mp_stun_add_addr(&b, MP_STUN_ATTR_RESPONSE_ORIGIN, &o);
	mp_stun_add_addr(&b, MP_STUN_ATTR_OTHER_ADDRESS, &a);
	mp_stun_add_addr(&b, MP_STUN_ATTR_SOURCE_ADDRESS, &legacy);
	mp_stun_add_attr(&b, 0x8123, "opt", 3);  /* unknown, optional */
	mp_stun_add_fingerprint(&b);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_uint_eq(m.nunknown, 0);
	ck_assert(mp_candidate_same_endpoint(&m.xor_mapped, &x));
	ck_assert(mp_candidate_same_endpoint(&m.mapped, &p));
	/* RFC 5780's attributes win over RFC 3489's, whatever the order */
	ck_assert(mp_candidate_same_endpoint(&m.response_origin, &o));
	ck_assert(mp_candidate_same_endpoint(&m.other_address, &a));
	ck_assert_uint_eq(m.response_origin.kind, 0);
	ck_assert_uint_eq(m.mapped.kind, MP_CAND_SRFLX);
	ck_assert_int_eq(mp_stun_check_integrity(buf, n, &m, pw, PWLEN), MP_ERR_NOTFOUND);

	/* an RFC 3489 server: the legacy attributes stand in */
	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_SUCCESS, tid);
	mp_stun_add_addr(&b, MP_STUN_ATTR_MAPPED_ADDRESS, &p);
	mp_stun_add_addr(&b, MP_STUN_ATTR_SOURCE_ADDRESS, &o);
	mp_stun_add_addr(&b, MP_STUN_ATTR_CHANGED_ADDRESS, &a);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_uint_eq(m.have, MP_STUN_HAVE_MAPPED | MP_STUN_HAVE_RESPONSE_ORIGIN |
	                  MP_STUN_HAVE_OTHER_ADDRESS);
	ck_assert(mp_candidate_same_endpoint(&m.response_origin, &o));
	ck_assert(mp_candidate_same_endpoint(&m.other_address, &a));
}
END_TEST

START_TEST(error_response)
{
	uint8_t buf[MP_STUN_MSG_MAX], tid[MP_STUN_TID_LEN] = { 1 };
	size_t n;
	mp_stun_builder b;
	mp_stun_msg m;

	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_ERROR, tid);
	mp_stun_add_error(&b, 420, "Unknown Attribute");
	mp_stun_add_attr(&b, MP_STUN_ATTR_UNKNOWN_ATTRIBUTES, "\x00\x24", 2);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_uint_eq(m.cls, MP_STUN_CLASS_ERROR);
	ck_assert(mp_stun_is_response_to(&m, MP_STUN_METHOD_BINDING, tid));
	ck_assert_uint_eq(m.error_code, 420);
	ck_assert_str_eq(m.reason, "Unknown Attribute");
	ck_assert_uint_eq(m.nunknown, 0);

	/* class 2 and number 100 are not error codes */
	buf[20 + 4 + 2] = 2;
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	buf[20 + 4 + 2] = 4;
	buf[20 + 4 + 3] = 100;
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);

	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_ERROR, tid);
	ck_assert_int_eq(mp_stun_add_error(&b, 299, NULL), MP_ERR_INVAL);
	ck_assert_int_eq(mp_stun_add_error(&b, 400, NULL), MP_ERR_INVAL); /* sticky */
}
END_TEST

START_TEST(message_type_bits)
{
	uint8_t buf[64], tid[MP_STUN_TID_LEN] = { 0 };
	size_t n;
	mp_stun_builder b;
	mp_stun_msg m;

	/* method 0xFFF, class indication: every method bit and C0 set */
	mp_stun_builder_init(&b, buf, sizeof buf, 0x3EFF, tid);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_uint_eq(m.method, 0xFFF);
	ck_assert_uint_eq(m.cls, MP_STUN_CLASS_INDICATION);
	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_ERROR, tid);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_uint_eq(m.method, MP_STUN_METHOD_BINDING);
	ck_assert_uint_eq(m.cls, MP_STUN_CLASS_ERROR);
	ck_assert(!mp_stun_is_response_to(&m, MP_STUN_METHOD_BINDING, (uint8_t[12]){ 1 }));
	ck_assert_int_eq(mp_stun_builder_init(&b, buf, sizeof buf, 0x4001, tid), MP_ERR_INVAL);
}
END_TEST

/* ---------------------------------------------------------------- malformed */

/* A fresh message with the given attribute bytes appended raw. */
static size_t
raw_msg(uint8_t *buf, const uint8_t *attrs, size_t alen, size_t hdr_len)
{
	static const uint8_t hdr[20] = {
		0x01, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
	};

	memcpy(buf, hdr, sizeof hdr);
	buf[2] = (uint8_t)(hdr_len >> 8);
	buf[3] = (uint8_t)hdr_len;
	memcpy(buf + 20, attrs, alen);
	return 20 + alen;
}

START_TEST(malformed_header)
{
	uint8_t msg[256], buf[MP_STUN_MSG_MAX + 8];
	size_t n = unhex(resp22_hex, msg, sizeof msg);
	mp_stun_msg m;

	ck_assert_int_eq(mp_stun_parse(msg, 0, &m), MP_ERR_TRUNCATED);
	ck_assert_int_eq(mp_stun_parse(msg, 19, &m), MP_ERR_TRUNCATED);
	ck_assert_int_eq(mp_stun_parse(NULL, 20, &m), MP_ERR_INVAL);
	ck_assert_int_eq(mp_stun_parse(msg, n, NULL), MP_ERR_INVAL);

	msg[4] ^= 1;    /* magic cookie */
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_ERR_MAGIC);
	msg[4] ^= 1;
	msg[0] |= 0x80; /* leading bits of RTP and friends */
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_ERR_MAGIC);
	msg[0] = 0x41;
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_ERR_MAGIC);
	msg[0] = 0x01;

	msg[3] += 2;    /* length not a multiple of 4 */
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_ERR_MALFORMED);
	msg[3] += 2;    /* length past the datagram */
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_ERR_TRUNCATED);
	msg[3] -= 8;    /* datagram longer than the message */
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_ERR_MALFORMED);
	msg[3] += 4;
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_OK);

	/* oversized: refused before anything else is read */
	memset(buf, 0, sizeof buf);
	n = raw_msg(buf, (const uint8_t *)"", 0, MP_STUN_MSG_MAX + 4 - 20);
	ck_assert_int_eq(mp_stun_parse(buf, MP_STUN_MSG_MAX + 4, &m), MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_stun_parse(buf, MP_STUN_MSG_MAX + 1, &m), MP_ERR_TOOBIG);
	/* the largest accepted: one big optional attribute */
	buf[2] = (MP_STUN_MSG_MAX - 20) >> 8;
	buf[3] = (MP_STUN_MSG_MAX - 20) & 0xff;
	buf[20] = 0x80;
	buf[21] = 0x99;
	buf[22] = (MP_STUN_MSG_MAX - 24) >> 8;
	buf[23] = (MP_STUN_MSG_MAX - 24) & 0xff;
	ck_assert_int_eq(mp_stun_parse(buf, MP_STUN_MSG_MAX, &m), MP_OK);
	(void)n;
}
END_TEST

START_TEST(malformed_attributes)
{
	uint8_t buf[256];
	mp_stun_msg m;
	size_t n;

	/* attribute header cut short */
	n = raw_msg(buf, (const uint8_t *)"\x80\x22\x00\x00", 4, 4);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	n = raw_msg(buf, (const uint8_t *)"\x80\x22\x00\x08\x61\x62\x63\x64", 8, 8);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_TRUNCATED);
	/* value length 5 with no room for its 3 bytes of padding */
	n = raw_msg(buf, (const uint8_t *)"\x80\x22\x00\x05\x61\x62\x63\x64\x65\x00\x00\x00", 12, 12);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_str_eq(m.software, "abcde");
	n = raw_msg(buf, (const uint8_t *)"\x80\x22\x00\x09\x61\x62\x63\x64\x65\x66\x67\x68", 12, 12);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_TRUNCATED);
	/* padding bytes may hold anything */
	n = raw_msg(buf, (const uint8_t *)"\x80\x22\x00\x05\x61\x62\x63\x64\x65\xff\xee\xdd", 12, 12);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_uint_eq(m.software_len, 5);

	/* family 0x03, and wrong address lengths */
	n = raw_msg(buf, (const uint8_t *)"\x00\x20\x00\x08\x00\x03\x12\x34\x01\x02\x03\x04", 12, 12);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	n = raw_msg(buf, (const uint8_t *)"\x00\x01\x00\x08\x00\x00\x12\x34\x01\x02\x03\x04", 12, 12);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	n = raw_msg(buf, (const uint8_t *)"\x00\x20\x00\x08\x00\x02\x12\x34\x01\x02\x03\x04", 12, 12);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	n = raw_msg(buf, (const uint8_t *)"\x80\x2c\x00\x04\x00\x01\x12\x34", 8, 8);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	n = raw_msg(buf, (const uint8_t *)"\x00\x20\x00\x02\x00\x01\x00\x00", 8, 8);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	/* the reserved first byte is ignored */
	n = raw_msg(buf, (const uint8_t *)"\x00\x01\x00\x08\xff\x01\x12\x34\x01\x02\x03\x04", 12, 12);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	assert_cand(&m.mapped, "1.2.3.4:4660");

	/* CHANGE-REQUEST, MESSAGE-INTEGRITY, FINGERPRINT, ERROR-CODE sizes */
	n = raw_msg(buf, (const uint8_t *)"\x00\x03\x00\x02\x00\x06\x00\x00", 8, 8);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	n = raw_msg(buf, (const uint8_t *)"\x00\x08\x00\x04\x00\x00\x00\x00", 8, 8);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	n = raw_msg(buf, (const uint8_t *)"\x80\x28\x00\x02\x00\x00\x00\x00", 8, 8);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	n = raw_msg(buf, (const uint8_t *)"\x00\x09\x00\x02\x04\x00\x00\x00", 8, 8);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	n = raw_msg(buf, (const uint8_t *)"\x00\x0a\x00\x03\x00\x24\x00\x00", 8, 8);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
}
END_TEST

START_TEST(unknown_attributes)
{
	uint8_t buf[256], attrs[128];
	mp_stun_msg m;
	size_t n;

	/* ten unknown comprehension-required attributes: all counted, the
	 * first MP_STUN_UNKNOWN_MAX kept; optional ones never reported */
	for (int i = 0; i < 10; i++) {
		attrs[i * 4] = 0x00;
		attrs[i * 4 + 1] = (uint8_t)(0x40 + i);
		attrs[i * 4 + 2] = attrs[i * 4 + 3] = 0;
	}
	memcpy(attrs + 40, "\xc0\x01\x00\x00", 4);
	n = raw_msg(buf, attrs, 44, 44);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_uint_eq(m.nunknown, 10);
	for (int i = 0; i < MP_STUN_UNKNOWN_MAX; i++)
		ck_assert_uint_eq(m.unknown[i], 0x40 + i);
}
END_TEST

/* A second CRC-32, the textbook one, to forge fingerprints with. */
static uint32_t
crc32_ref(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
	}
	return crc ^ 0xffffffffu;
}

START_TEST(duplicates_and_order)
{
	uint8_t buf[256], tid[MP_STUN_TID_LEN] = { 9 };
	uint32_t crc;
	size_t n;
	mp_stun_builder b;
	mp_stun_msg m;
	mp_candidate a = cand(4, "192.0.2.1", 1, MP_CAND_SRFLX);
	mp_candidate z = cand(4, "192.0.2.2", 2, MP_CAND_SRFLX);

	/* only the first of two XOR-MAPPED-ADDRESS counts */
	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_SUCCESS, tid);
	mp_stun_add_addr(&b, MP_STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
	mp_stun_add_addr(&b, MP_STUN_ATTR_XOR_MAPPED_ADDRESS, &z);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert(mp_candidate_same_endpoint(&m.xor_mapped, &a));

	/* after MESSAGE-INTEGRITY everything but FINGERPRINT is ignored */
	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_SUCCESS, tid);
	mp_stun_add_integrity(&b, pw, PWLEN);
	mp_stun_add_addr(&b, MP_STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
	mp_stun_add_attr(&b, 0x0077, "x", 1);
	mp_stun_add_fingerprint(&b);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert(!(m.have & MP_STUN_HAVE_XOR_MAPPED));
	ck_assert_uint_eq(m.nunknown, 0);
	ck_assert(m.have & MP_STUN_HAVE_FINGERPRINT);
	ck_assert_int_eq(mp_stun_check_integrity(buf, n, &m, pw, PWLEN), MP_OK);

	/* nothing may follow FINGERPRINT, even with a CRC that matches the
	 * final length */
	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_SUCCESS, tid);
	mp_stun_add_fingerprint(&b);
	mp_stun_add_addr(&b, MP_STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MAGIC);
	crc = crc32_ref(buf, 20) ^ 0x5354554eu;
	buf[24] = (uint8_t)(crc >> 24);
	buf[25] = (uint8_t)(crc >> 16);
	buf[26] = (uint8_t)(crc >> 8);
	buf[27] = (uint8_t)crc;
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	ck_assert_int_eq(mp_stun_parse(buf, 28, &m), MP_ERR_TRUNCATED);
}
END_TEST

START_TEST(bad_fingerprint_and_integrity)
{
	uint8_t msg[256], buf[256], tid[MP_STUN_TID_LEN] = { 7 };
	size_t n = unhex(resp22_hex, msg, sizeof msg);
	mp_stun_builder b;
	mp_stun_msg m;

	msg[n - 1] ^= 0x01;     /* the CRC itself */
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_ERR_MAGIC);
	msg[n - 1] ^= 0x01;
	msg[25] ^= 0x20;        /* a SOFTWARE byte: CRC no longer matches */
	ck_assert_int_eq(mp_stun_parse(msg, n, &m), MP_ERR_MAGIC);
	msg[25] ^= 0x20;

	/* without FINGERPRINT, a changed byte is the HMAC's to catch */
	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_SUCCESS, tid);
	mp_stun_add_attr(&b, MP_STUN_ATTR_SOFTWARE, "server", 6);
	mp_stun_add_integrity(&b, pw, PWLEN);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_int_eq(mp_stun_check_integrity(buf, n, &m, pw, PWLEN), MP_OK);
	buf[24] ^= 0x01;
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_int_eq(mp_stun_check_integrity(buf, n, &m, pw, PWLEN), MP_ERR_SIGNATURE);
	buf[24] ^= 0x01;
	buf[n - 1] ^= 0x80;     /* the HMAC itself */
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_int_eq(mp_stun_check_integrity(buf, n, &m, pw, PWLEN), MP_ERR_SIGNATURE);
	buf[n - 1] ^= 0x80;
	/* a message other than the one parsed, and bad arguments */
	ck_assert_int_eq(mp_stun_check_integrity(buf, n - 4, &m, pw, PWLEN), MP_ERR_INVAL);
	ck_assert_int_eq(mp_stun_check_integrity(buf, n, &m, pw, 0), MP_ERR_INVAL);
	ck_assert_int_eq(mp_stun_check_integrity(buf, n, &m, NULL, 4), MP_ERR_INVAL);
	ck_assert_int_eq(mp_stun_check_integrity(buf, n, &m, pw, PWLEN), MP_OK);
}
END_TEST

START_TEST(text_limits)
{
	static uint8_t buf[MP_STUN_MSG_MAX], val[MP_STUN_MSG_MAX];
	uint8_t tid[MP_STUN_TID_LEN] = { 3 };
	size_t n;
	mp_stun_builder b;
	mp_stun_msg m;
	mp_stun_request r;

	memset(val, 'a', sizeof val);
	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_REQUEST, tid);
	mp_stun_add_attr(&b, MP_STUN_ATTR_USERNAME, val, MP_STUN_USERNAME_MAX);
	mp_stun_add_attr(&b, MP_STUN_ATTR_SOFTWARE, val, MP_STUN_TEXT_MAX);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_OK);
	ck_assert_uint_eq(strlen(m.username), MP_STUN_USERNAME_MAX);
	ck_assert_uint_eq(strlen(m.software), MP_STUN_TEXT_MAX);

	const uint16_t types[] = { MP_STUN_ATTR_USERNAME, MP_STUN_ATTR_REALM,
	                           MP_STUN_ATTR_NONCE, MP_STUN_ATTR_SOFTWARE };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		size_t over = (types[i] == MP_STUN_ATTR_USERNAME ? MP_STUN_USERNAME_MAX
		                                                 : MP_STUN_TEXT_MAX) + 1;

		mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_REQUEST, tid);
		mp_stun_add_attr(&b, types[i], val, over);
		ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
		ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);
	}
	/* reason phrase */
	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_ERROR, tid);
	val[0] = 0;
	val[1] = 0;
	val[2] = 4;
	val[3] = 0;
	mp_stun_add_attr(&b, MP_STUN_ATTR_ERROR_CODE, val, 4 + MP_STUN_TEXT_MAX + 1);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_OK);
	ck_assert_int_eq(mp_stun_parse(buf, n, &m), MP_ERR_MALFORMED);

	/* the request builder refuses what the parser would */
	memset(val, 'a', sizeof val);
	val[MP_STUN_TEXT_MAX + 1] = 0;
	memset(&r, 0, sizeof r);
	r.software = (const char *)val;
	ck_assert_int_eq(mp_stun_binding_request(&r, tid, buf, sizeof buf, &n), MP_ERR_TOOBIG);
}
END_TEST

START_TEST(builder_limits)
{
	uint8_t buf[64], tid[MP_STUN_TID_LEN] = { 0 };
	static uint8_t big[MP_STUN_MSG_MAX + 64], val[MP_STUN_MSG_MAX];
	mp_stun_builder b;
	mp_candidate bad;
	size_t n;

	ck_assert_int_eq(mp_stun_builder_init(&b, buf, 19, MP_STUN_BINDING_REQUEST, tid), MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_stun_builder_init(&b, NULL, 64, MP_STUN_BINDING_REQUEST, tid), MP_ERR_INVAL);
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_ERR_INVAL);

	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_REQUEST, tid);
	ck_assert_int_eq(mp_stun_add_attr(&b, MP_STUN_ATTR_SOFTWARE, "0123456789abcdefg", 17), MP_OK);
	ck_assert_int_eq(mp_stun_add_integrity(&b, pw, PWLEN), MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_stun_add_fingerprint(&b), MP_ERR_TOOBIG);       /* sticky */
	ck_assert_int_eq(mp_stun_builder_finish(&b, &n), MP_ERR_TOOBIG);

	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_REQUEST, tid);
	memset(&bad, 0, sizeof bad);
	bad.family = 5;
	ck_assert_int_eq(mp_stun_add_addr(&b, MP_STUN_ATTR_MAPPED_ADDRESS, &bad), MP_ERR_INVAL);
	mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_REQUEST, tid);
	ck_assert_int_eq(mp_stun_add_integrity(&b, pw, 0), MP_ERR_INVAL);

	/* a buffer larger than MP_STUN_MSG_MAX is only used up to it */
	mp_stun_builder_init(&b, big, sizeof big, MP_STUN_BINDING_REQUEST, tid);
	ck_assert_int_eq(mp_stun_add_attr(&b, 0x8099, val, MP_STUN_MSG_MAX - 24), MP_OK);
	ck_assert_int_eq(mp_stun_add_attr(&b, 0x8099, NULL, 0), MP_ERR_TOOBIG);
}
END_TEST

START_TEST(names_and_keys)
{
	uint8_t key[MP_STUN_LONGTERM_KEY_LEN];

	ck_assert_str_eq(mp_stun_attr_name(MP_STUN_ATTR_XOR_MAPPED_ADDRESS), "XOR-MAPPED-ADDRESS");
	ck_assert_str_eq(mp_stun_attr_name(MP_STUN_ATTR_OTHER_ADDRESS), "OTHER-ADDRESS");
	ck_assert_str_eq(mp_stun_attr_name(0x7777), "UNKNOWN");
	ck_assert_int_eq(mp_stun_longterm_key(NULL, "r", "p", key), MP_ERR_INVAL);
	/* MD5("a:b:c") */
	ck_assert_int_eq(mp_stun_longterm_key("a", "b", "c", key), MP_OK);
	ck_assert_mem_eq(key, "\x02\xcc\x8f\x08\x39\x8a\x4f\x31\x13\xb5\x54\xe8\x10\x5e\xbe\x4c", 16);
}
END_TEST

Suite *stun_suite(void);

Suite *
stun_suite(void)
{
	Suite *s = suite_create("stun");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, rfc5769_request);
	tcase_add_test(tc, rfc5769_ipv4_response);
	tcase_add_test(tc, rfc5769_ipv6_response);
	tcase_add_test(tc, rfc5769_longterm_request);
	tcase_add_test(tc, coturn_answers);
	tcase_add_test(tc, rfc5769_prefixes);
	tcase_add_test(tc, rfc5769_bit_flips);
	tcase_add_test(tc, request_round_trip);
	tcase_add_test(tc, response_round_trip);
	tcase_add_test(tc, error_response);
	tcase_add_test(tc, message_type_bits);
	tcase_add_test(tc, malformed_header);
	tcase_add_test(tc, malformed_attributes);
	tcase_add_test(tc, unknown_attributes);
	tcase_add_test(tc, duplicates_and_order);
	tcase_add_test(tc, bad_fingerprint_and_integrity);
	tcase_add_test(tc, text_limits);
	tcase_add_test(tc, builder_limits);
	tcase_add_test(tc, names_and_keys);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(stun_suite)
