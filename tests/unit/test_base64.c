/*
 * test_base64.c - unit tests for lib/base64.c.
 *
 * Covers the RFC 4648 section 10 vectors in both alphabets, round trips
 * of every length 0..200 with and without line wrapping, the lenient
 * decoding rules mail needs (blanks, line ends, missing padding, stop at
 * '=') and the errors (foreign characters, impossible lengths,
 * non-canonical trailing bits, max_out).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "base64.h"
#include "testutil.h"

static const struct {
	const char *raw, *std, *url;
} vectors[] = {
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};

static void
check_decode(const char *text, int url, const void *want, size_t wantlen)
{
	uint8_t *out = NULL;
	size_t outlen = 99;
	int rc = mp_base64_decode(text, strlen(text), url, 1000, &out, &outlen);

	ck_assert_msg(rc == MP_OK, "decode \"%s\": %d", text, rc);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(outlen, wantlen);
	ck_assert(wantlen == 0 || memcmp(out, want, wantlen) == 0);
	free(out);
}

static void
check_decode_fails(const char *text, int url, int want_rc)
{
	uint8_t *out = (uint8_t *)1;
	size_t outlen;
	int rc = mp_base64_decode(text, strlen(text), url, 1000, &out, &outlen);

	ck_assert_msg(rc == want_rc, "decode \"%s\": got %d want %d", text, rc,
	              want_rc);
	ck_assert_ptr_null(out);
}

START_TEST(test_rfc4648_vectors)
{
	size_t i;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const char *raw = vectors[i].raw;
		char *enc;
		size_t enclen;

		ck_assert_int_eq(mp_base64_encode((const uint8_t *)raw,
		                 strlen(raw), 0, 0, &enc, &enclen), MP_OK);
		ck_assert_str_eq(enc, vectors[i].std);
		ck_assert_uint_eq(enclen, strlen(vectors[i].std));
		free(enc);
		ck_assert_int_eq(mp_base64_encode((const uint8_t *)raw,
		                 strlen(raw), 1, 0, &enc, &enclen), MP_OK);
		ck_assert_str_eq(enc, vectors[i].url);
		free(enc);
		check_decode(vectors[i].std, 0, raw, strlen(raw));
		check_decode(vectors[i].url, 1, raw, strlen(raw));
		/* Missing padding is accepted in the standard alphabet too. */
		check_decode(vectors[i].url, 0, raw, strlen(raw));
	}
}
END_TEST

START_TEST(test_alphabets)
{
	static const uint8_t raw[] = { 0xfb, 0xff, 0xbf };
	char *enc;

	ck_assert_int_eq(mp_base64_encode(raw, 3, 0, 0, &enc, NULL), MP_OK);
	ck_assert_str_eq(enc, "+/+/");
	free(enc);
	ck_assert_int_eq(mp_base64_encode(raw, 3, 1, 0, &enc, NULL), MP_OK);
	ck_assert_str_eq(enc, "-_-_");
	free(enc);
	check_decode("+/+/", 0, raw, 3);
	check_decode("-_-_", 1, raw, 3);
	check_decode_fails("-_-_", 0, MP_ERR_BASE64);
	check_decode_fails("+/+/", 1, MP_ERR_BASE64);
}
END_TEST

static void
fill(uint8_t *buf, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
}

/* Lines of exactly wrap characters joined by CRLF, none after the last. */
static void
check_wrapped(const char *enc, size_t enclen, size_t wrap)
{
	size_t i, col = 0;

	for (i = 0; i < enclen; i++) {
		if (enc[i] == '\r') {
			ck_assert_uint_eq(col, wrap);
			ck_assert_int_eq(enc[i + 1], '\n');
			ck_assert(i + 2 < enclen);
			i++;
			col = 0;
			continue;
		}
		ck_assert(enc[i] != '\n');
		col++;
	}
	ck_assert(col <= wrap);
}

START_TEST(test_round_trip_lengths)
{
	static const size_t wraps[] = { 0, 1, 4, 63, 64, 76 };
	uint8_t raw[200], *dec;
	size_t len, w, enclen, declen;
	int url;
	char *enc;

	for (len = 0; len <= 200; len++) {
		fill(raw, len, (unsigned)len);
		for (url = 0; url <= 1; url++) {
			for (w = 0; w < sizeof(wraps) / sizeof(wraps[0]); w++) {
				ck_assert_int_eq(mp_base64_encode(raw, len, url,
				                 wraps[w], &enc, &enclen), MP_OK);
				ck_assert_uint_eq(strlen(enc), enclen);
				if (wraps[w])
					check_wrapped(enc, enclen, wraps[w]);
				ck_assert_int_eq(mp_base64_decode(enc, enclen, url,
				                 len, &dec, &declen), MP_OK);
				ck_assert_uint_eq(declen, len);
				ck_assert(len == 0 || memcmp(dec, raw, len) == 0);
				free(dec);
				if (len > 0)
					ck_assert_int_eq(mp_base64_decode(enc,
					    enclen, url, len - 1, &dec, &declen),
					    MP_ERR_TOOBIG);
				free(enc);
			}
		}
	}
}
END_TEST

START_TEST(test_lenient_decoding)
{
	check_decode(" Zm9v\r\nYmFy\t", 0, "foobar", 6);
	check_decode("Z m 9 v Y g = =", 0, "foob", 4);
	check_decode("Zm9vYg\r\n==\r\n", 0, "foob", 4);
	check_decode("Zm\r9v\nYmE", 0, "fooba", 5);
	/* Decoding stops at the first '=': what follows is not looked at. */
	check_decode("Zg==Zm9v", 0, "f", 1);
	check_decode("Zg=!!", 0, "f", 1);
	check_decode("=Zm9v", 0, "", 0);
	check_decode("", 0, "", 0);
	check_decode(" \r\n", 1, "", 0);
}
END_TEST

START_TEST(test_decode_errors)
{
	uint8_t *out;
	size_t outlen;

	check_decode_fails("Zm9v!", 0, MP_ERR_BASE64);
	check_decode_fails("Zm9v\x80", 0, MP_ERR_BASE64);
	check_decode_fails("Zm9vY", 0, MP_ERR_BASE64);  /* 1 char left over */
	check_decode_fails("Z", 1, MP_ERR_BASE64);
	check_decode_fails("Zh==", 0, MP_ERR_BASE64);   /* low bits set */
	check_decode_fails("Zm9=", 0, MP_ERR_BASE64);
	check_decode_fails("Zm\v9v", 0, MP_ERR_BASE64); /* VT is not a blank */
	/* An embedded NUL is a foreign character when it is within len. */
	ck_assert_int_eq(mp_base64_decode("Zm\0v", 4, 0, 10, &out, &outlen),
	                 MP_ERR_BASE64);
	ck_assert_int_eq(mp_base64_decode("Zm9vYmFy", 8, 0, 5, &out, &outlen),
	                 MP_ERR_TOOBIG);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(mp_base64_decode("", 0, 0, 0, &out, &outlen), MP_OK);
	ck_assert_uint_eq(outlen, 0);
	free(out);
	ck_assert_int_eq(mp_base64_decode("Zg", 2, 0, 0, &out, &outlen),
	                 MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_base64_decode(NULL, 1, 0, 10, &out, &outlen),
	                 MP_ERR_INVAL);
	ck_assert_int_eq(mp_base64_decode("Zg", 2, 0, 10, NULL, &outlen),
	                 MP_ERR_INVAL);
}
END_TEST

START_TEST(test_not_nul_terminated)
{
	/* The decoder must honour len: the bytes after it are garbage. */
	static const char text[] = { 'Z', 'm', '9', 'v', '!', '!' };
	uint8_t *out;
	size_t outlen;

	ck_assert_int_eq(mp_base64_decode(text, 4, 0, 10, &out, &outlen),
	                 MP_OK);
	ck_assert_uint_eq(outlen, 3);
	ck_assert(memcmp(out, "foo", 3) == 0);
	free(out);
}
END_TEST

START_TEST(test_encode_errors)
{
	char *out;

	ck_assert_int_eq(mp_base64_encode(NULL, 1, 0, 0, &out, NULL),
	                 MP_ERR_INVAL);
	ck_assert_int_eq(mp_base64_encode((const uint8_t *)"x", 1, 0, 0, NULL,
	                 NULL), MP_ERR_INVAL);
	ck_assert_int_eq(mp_base64_encode(NULL, 0, 0, 64, &out, NULL), MP_OK);
	ck_assert_str_eq(out, "");
	free(out);
	ck_assert_int_eq(mp_base64_encode((const uint8_t *)"x", SIZE_MAX, 0, 0,
	                 &out, NULL), MP_ERR_TOOBIG);
}
END_TEST

static Suite *
base64_suite(void)
{
	Suite *s = suite_create("base64");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_rfc4648_vectors);
	tcase_add_test(tc, test_alphabets);
	tcase_add_test(tc, test_round_trip_lengths);
	tcase_add_test(tc, test_lenient_decoding);
	tcase_add_test(tc, test_decode_errors);
	tcase_add_test(tc, test_not_nul_terminated);
	tcase_add_test(tc, test_encode_errors);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(base64_suite)
