/*
 * test_smtp_reply.c - unit tests for lib/smtp_reply.c.
 *
 * Covers single and multi-line replies, RFC 3463 enhanced codes (and
 * what is not one), EHLO capabilities, a stream of replies split at
 * every byte position and fed byte by byte, the line and line-count
 * limits, garbage of every kind, error stickiness and reset, the
 * one-line formatter at every buffer size, and dot-stuffing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "smtp_reply.h"
#include "testutil.h"

/* Feeds all of s; expects exactly one reply ending at its last byte. */
static const mp_smtp_reply *
parse_one(mp_smtp_parser *p, const char *s)
{
	const mp_smtp_reply *r = NULL;
	size_t used = 0;
	int rc = mp_smtp_parser_feed(p, s, strlen(s), &used, &r);

	ck_assert_msg(rc == MP_OK, "feed \"%s\": %d", s, rc);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(used, strlen(s));
	return r;
}

static int
parse_fails(const char *s)
{
	mp_smtp_parser *p = mp_smtp_parser_new();
	const mp_smtp_reply *r = (const mp_smtp_reply *)1;
	size_t used;
	int rc;

	ck_assert_ptr_nonnull(p);
	rc = mp_smtp_parser_feed(p, s, strlen(s), &used, &r);
	ck_assert_ptr_null(r);
	ck_assert_uint_le(used, strlen(s));
	mp_smtp_parser_free(p);
	return rc;
}

START_TEST(test_single_line)
{
	mp_smtp_parser *p = mp_smtp_parser_new();
	const mp_smtp_reply *r = parse_one(p, "220 mx.lab.example ESMTP Postfix\r\n");

	ck_assert_int_eq(r->code, 220);
	ck_assert_str_eq(r->enhanced, "");
	ck_assert_uint_eq(r->nlines, 1);
	ck_assert_str_eq(r->lines[0], "mx.lab.example ESMTP Postfix");

	r = parse_one(p, "250\r\n");           /* code alone is a valid last line */
	ck_assert_int_eq(r->code, 250);
	ck_assert_uint_eq(r->nlines, 1);
	ck_assert_str_eq(r->lines[0], "");

	r = parse_one(p, "354 \r\n");
	ck_assert_int_eq(r->code, 354);
	ck_assert_str_eq(r->lines[0], "");

	r = parse_one(p, "221 bye\n");         /* bare LF accepted */
	ck_assert_int_eq(r->code, 221);
	ck_assert_str_eq(r->lines[0], "bye");

	r = parse_one(p, "250 tab\there and 8-bit \xc3\xa9\r\n");
	ck_assert_str_eq(r->lines[0], "tab\there and 8-bit \xc3\xa9");
	mp_smtp_parser_free(p);
}
END_TEST

START_TEST(test_multi_line)
{
	mp_smtp_parser *p = mp_smtp_parser_new();
	const mp_smtp_reply *r = parse_one(p,
		"250-mx.lab.example\r\n250-PIPELINING\r\n250-\r\n250 8BITMIME\r\n");

	ck_assert_int_eq(r->code, 250);
	ck_assert_uint_eq(r->nlines, 4);
	ck_assert_str_eq(r->lines[0], "mx.lab.example");
	ck_assert_str_eq(r->lines[1], "PIPELINING");
	ck_assert_str_eq(r->lines[2], "");
	ck_assert_str_eq(r->lines[3], "8BITMIME");
	mp_smtp_parser_free(p);
}
END_TEST

START_TEST(test_enhanced)
{
	mp_smtp_parser *p = mp_smtp_parser_new();
	const mp_smtp_reply *r;

	r = parse_one(p, "535 5.7.8 Error: authentication failed: bad\r\n");
	ck_assert_int_eq(r->code, 535);
	ck_assert_str_eq(r->enhanced, "5.7.8");
	ck_assert_str_eq(r->lines[0], "Error: authentication failed: bad");

	r = parse_one(p, "550-5.1.1 The email account does not exist.\r\n"
	                 "550-5.1.1\r\n"
	                 "550-5.1.2 other code stays\r\n"
	                 "550 5.1.1  https://support.example/x\r\n");
	ck_assert_str_eq(r->enhanced, "5.1.1");
	ck_assert_uint_eq(r->nlines, 4);
	ck_assert_str_eq(r->lines[0], "The email account does not exist.");
	ck_assert_str_eq(r->lines[1], "");
	ck_assert_str_eq(r->lines[2], "5.1.2 other code stays");
	ck_assert_str_eq(r->lines[3], "https://support.example/x");

	r = parse_one(p, "250 2.0.0\r\n");
	ck_assert_str_eq(r->enhanced, "2.0.0");
	ck_assert_str_eq(r->lines[0], "");

	r = parse_one(p, "451 4.123.456 busy\r\n");
	ck_assert_str_eq(r->enhanced, "4.123.456");
	ck_assert_str_eq(r->lines[0], "busy");

	/* not enhanced codes: class mismatch, too many digits, no digits,
	 * glued to a word, or a version number */
	r = parse_one(p, "250 5.0.0 odd\r\n");
	ck_assert_str_eq(r->enhanced, "");
	ck_assert_str_eq(r->lines[0], "5.0.0 odd");
	r = parse_one(p, "250 2.1234.0 x\r\n");
	ck_assert_str_eq(r->enhanced, "");
	r = parse_one(p, "250 2..0 x\r\n");
	ck_assert_str_eq(r->enhanced, "");
	r = parse_one(p, "250 2.0.0x\r\n");
	ck_assert_str_eq(r->enhanced, "");
	ck_assert_str_eq(r->lines[0], "2.0.0x");
	r = parse_one(p, "220 2.0 ready\r\n");
	ck_assert_str_eq(r->enhanced, "");
	r = parse_one(p, "220 2.0.\r\n");
	ck_assert_str_eq(r->enhanced, "");
	mp_smtp_parser_free(p);
}
END_TEST

START_TEST(test_caps)
{
	mp_smtp_parser *p = mp_smtp_parser_new();
	mp_smtp_caps c;
	const mp_smtp_reply *r = parse_one(p,
		"250-mx.lab.example\r\n"
		"250-PIPELINING\r\n"
		"250-SIZE 10240000\r\n"
		"250-VRFY\r\n"
		"250-ETRN\r\n"
		"250-starttls\r\n"
		"250-AUTH PLAIN LOGIN\r\n"
		"250-AUTH=login XOAUTH2 SCRAM-SHA-1\r\n"
		"250-ENHANCEDSTATUSCODES\r\n"
		"250-8BITMIME\r\n"
		"250-DSN\r\n"
		"250-SMTPUTF8\r\n"
		"250 CHUNKING\r\n");

	ck_assert_int_eq(mp_smtp_caps_parse(r, &c), MP_OK);
	ck_assert_uint_eq(c.ext, MP_SMTP_EXT_STARTTLS | MP_SMTP_EXT_AUTH | MP_SMTP_EXT_SIZE |
	                         MP_SMTP_EXT_PIPELINING | MP_SMTP_EXT_8BITMIME |
	                         MP_SMTP_EXT_ENHANCEDSTATUSCODES | MP_SMTP_EXT_SMTPUTF8 |
	                         MP_SMTP_EXT_CHUNKING | MP_SMTP_EXT_DSN);
	ck_assert_uint_eq(c.auth, MP_SMTP_AUTH_PLAIN | MP_SMTP_AUTH_LOGIN |
	                          MP_SMTP_AUTH_XOAUTH2 | MP_SMTP_AUTH_OTHER);
	ck_assert(c.size_max == 10240000);

	/* the greeting line is not a keyword, even if it looks like one */
	r = parse_one(p, "250-STARTTLS\r\n250-SIZE\r\n250 AUTH cram-md5\r\n");
	ck_assert_int_eq(mp_smtp_caps_parse(r, &c), MP_OK);
	ck_assert_uint_eq(c.ext, MP_SMTP_EXT_SIZE | MP_SMTP_EXT_AUTH);
	ck_assert(c.size_max == 0);
	ck_assert_uint_eq(c.auth, MP_SMTP_AUTH_CRAM_MD5);

	r = parse_one(p, "250-x\r\n250-SIZE 99999999999999999999999\r\n250-SIZE12\r\n"
	                 "250-AUTH\r\n250 STARTTLSX\r\n");
	ck_assert_int_eq(mp_smtp_caps_parse(r, &c), MP_OK);
	ck_assert_uint_eq(c.ext, MP_SMTP_EXT_SIZE | MP_SMTP_EXT_AUTH);
	ck_assert(c.size_max == 0);
	ck_assert_uint_eq(c.auth, 0);

	r = parse_one(p, "250-x\r\n250 SIZE 12x\r\n");
	ck_assert_int_eq(mp_smtp_caps_parse(r, &c), MP_OK);
	ck_assert(c.size_max == 0);

	r = parse_one(p, "250 only a greeting\r\n");
	ck_assert_int_eq(mp_smtp_caps_parse(r, &c), MP_OK);
	ck_assert_uint_eq(c.ext, 0);

	r = parse_one(p, "502 5.5.1 no EHLO\r\n");
	ck_assert_int_eq(mp_smtp_caps_parse(r, &c), MP_ERR_INVAL);
	ck_assert_int_eq(mp_smtp_caps_parse(NULL, &c), MP_ERR_INVAL);
	ck_assert_int_eq(mp_smtp_caps_parse(r, NULL), MP_ERR_INVAL);
	mp_smtp_parser_free(p);
}
END_TEST

static const char stream[] =
	"220 mx.lab.example ESMTP\r\n"
	"250-mx.lab.example\r\n250-SIZE 100\r\n250 AUTH PLAIN\n"
	"334 \r\n"
	"535 5.7.8 Error: authentication failed\r\n"
	"550-5.1.1 first\r\n550 5.1.1 second\r\n"
	"221 2.0.0 Bye\r\n";
static const char *const stream_want[] = {
	"220 mx.lab.example ESMTP",
	"250 mx.lab.example SIZE 100 AUTH PLAIN",
	"334",
	"535 5.7.8 Error: authentication failed",
	"550 5.1.1 first second",
	"221 2.0.0 Bye",
};
#define STREAM_N (sizeof stream_want / sizeof stream_want[0])

/* Feeds s[0..len) as given, collecting formatted replies; returns count. */
static size_t
feed_collect(mp_smtp_parser *p, const char *s, size_t len, char out[][200], size_t n0)
{
	size_t n = n0;

	while (len > 0) {
		const mp_smtp_reply *r;
		size_t used;

		ck_assert_int_eq(mp_smtp_parser_feed(p, s, len, &used, &r), MP_OK);
		ck_assert_uint_le(used, len);
		if (r) {
			ck_assert_uint_lt(n, STREAM_N);
			mp_smtp_reply_format(r, out[n++], 200);
		} else {
			ck_assert_uint_eq(used, len);
		}
		s += used;
		len -= used;
	}
	return n;
}

START_TEST(test_split_everywhere)
{
	size_t len = strlen(stream), k, i;
	char got[STREAM_N][200];

	for (k = 0; k <= len; k++) {
		mp_smtp_parser *p = mp_smtp_parser_new();
		size_t n = feed_collect(p, stream, k, got, 0);

		n = feed_collect(p, stream + k, len - k, got, n);
		ck_assert_uint_eq(n, STREAM_N);
		for (i = 0; i < STREAM_N; i++)
			ck_assert_str_eq(got[i], stream_want[i]);
		mp_smtp_parser_free(p);
	}
}
END_TEST

START_TEST(test_byte_by_byte)
{
	size_t len = strlen(stream), k, n = 0, i;
	char got[STREAM_N][200];
	mp_smtp_parser *p = mp_smtp_parser_new();

	for (k = 0; k < len; k++)
		n = feed_collect(p, stream + k, 1, got, n);
	ck_assert_uint_eq(n, STREAM_N);
	for (i = 0; i < STREAM_N; i++)
		ck_assert_str_eq(got[i], stream_want[i]);
	mp_smtp_parser_free(p);
}
END_TEST

START_TEST(test_stops_after_reply)
{
	mp_smtp_parser *p = mp_smtp_parser_new();
	const char *s = "220 ready to start TLS\r\n\x16\x03\x01 not SMTP";
	const mp_smtp_reply *r;
	size_t used;

	ck_assert_int_eq(mp_smtp_parser_feed(p, s, strlen(s), &used, &r), MP_OK);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(used, strlen("220 ready to start TLS\r\n"));
	/* an empty feed keeps nothing and completes nothing */
	ck_assert_int_eq(mp_smtp_parser_feed(p, "", 0, &used, &r), MP_OK);
	ck_assert_ptr_null(r);
	ck_assert_uint_eq(used, 0);
	mp_smtp_parser_free(p);
}
END_TEST

static char *
repeat_line(const char *prefix, size_t textlen, size_t times, const char *last)
{
	size_t plen = strlen(prefix), llen = plen + textlen + 2, i;
	char *s = malloc(llen * times + strlen(last) + 1), *o = s;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < times; i++) {
		memcpy(o, prefix, plen);
		memset(o + plen, 'x', textlen);
		memcpy(o + plen + textlen, "\r\n", 2);
		o += llen;
	}
	strcpy(o, last);
	return s;
}

START_TEST(test_limits)
{
	mp_smtp_parser *p = mp_smtp_parser_new();
	const mp_smtp_reply *r;
	size_t used;
	char *s;

	/* 1000 bytes with CRLF: accepted; 1001: refused */
	s = repeat_line("250 ", MP_SMTP_LINE_MAX - 6, 1, "");
	ck_assert_uint_eq(strlen(s), MP_SMTP_LINE_MAX);
	r = parse_one(p, s);
	ck_assert_uint_eq(strlen(r->lines[0]), MP_SMTP_LINE_MAX - 6);
	free(s);
	s = repeat_line("250 ", MP_SMTP_LINE_MAX - 5, 1, "");
	ck_assert_int_eq(parse_fails(s), MP_ERR_TOOBIG);
	free(s);
	/* also without any line end at all */
	s = repeat_line("250 ", MP_SMTP_LINE_MAX * 3, 1, "");
	s[strlen(s) - 2] = '\0';
	ck_assert_int_eq(parse_fails(s), MP_ERR_TOOBIG);
	free(s);

	/* 100 lines of the maximum length: accepted; 101 lines: refused */
	s = repeat_line("250-", MP_SMTP_LINE_MAX - 6, MP_SMTP_LINES_MAX - 1, "250 end\r\n");
	r = parse_one(p, s);
	ck_assert_uint_eq(r->nlines, MP_SMTP_LINES_MAX);
	ck_assert_str_eq(r->lines[MP_SMTP_LINES_MAX - 1], "end");
	ck_assert_uint_eq(strlen(r->lines[MP_SMTP_LINES_MAX - 2]), MP_SMTP_LINE_MAX - 6);
	free(s);
	s = repeat_line("250-", 3, MP_SMTP_LINES_MAX, "250 end\r\n");
	ck_assert_int_eq(parse_fails(s), MP_ERR_TOOBIG);
	free(s);

	/* the parser still works after the big reply */
	ck_assert_int_eq(mp_smtp_parser_feed(p, "2", 1, &used, &r), MP_OK);
	ck_assert_ptr_null(r);
	r = parse_one(p, "21 ok\r\n");
	ck_assert_int_eq(r->code, 221);
	mp_smtp_parser_free(p);
}
END_TEST

START_TEST(test_garbage)
{
	static const char *const bad[] = {
		"hello\r\n", "\r\n", "\n", "25\r\n", "2\r\n", "600 x\r\n", "199 x\r\n",
		"099 x\r\n", "260 x\r\n", "2a0 x\r\n", "25a x\r\n", "250x\r\n",
		"250_x\r\n", "250\tx\r\n", "-250 x\r\n", " 250 x\r\n",
		"250-a\r\n251 b\r\n", "250-a\r\n550 b\r\n", "250-a\r\nxyz\r\n",
		"250 a\rb\r\n", "250 a\r\r\n", "250 \x01\r\n", "250 a\x7f\r\n",
		"250 esc\x1b[2J\r\n", "HTTP/1.1 400 Bad Request\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(parse_fails(bad[i]) == MP_ERR_MALFORMED, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(test_nul_and_sticky_error)
{
	mp_smtp_parser *p = mp_smtp_parser_new();
	const mp_smtp_reply *r;
	size_t used;

	ck_assert_int_eq(mp_smtp_parser_feed(p, "250 a\0b\r\n", 9, &used, &r), MP_ERR_MALFORMED);
	ck_assert_ptr_null(r);
	/* out of sync for good: even a valid reply is refused */
	ck_assert_int_eq(mp_smtp_parser_feed(p, "250 ok\r\n", 8, &used, &r), MP_ERR_INVAL);
	ck_assert_uint_eq(used, 0);
	ck_assert_ptr_null(r);
	mp_smtp_parser_reset(p);
	r = parse_one(p, "250 ok\r\n");
	ck_assert_int_eq(r->code, 250);

	/* reset also drops a partial line */
	ck_assert_int_eq(mp_smtp_parser_feed(p, "550-partial\r\n550 ha", 19, &used, &r), MP_OK);
	ck_assert_ptr_null(r);
	mp_smtp_parser_reset(p);
	r = parse_one(p, "220 fresh\r\n");
	ck_assert_uint_eq(r->nlines, 1);
	ck_assert_str_eq(r->lines[0], "fresh");

	ck_assert_int_eq(mp_smtp_parser_feed(NULL, "x", 1, &used, &r), MP_ERR_INVAL);
	ck_assert_int_eq(mp_smtp_parser_feed(p, NULL, 1, &used, &r), MP_ERR_INVAL);
	ck_assert_int_eq(mp_smtp_parser_feed(p, "x", 1, NULL, &r), MP_ERR_INVAL);
	ck_assert_int_eq(mp_smtp_parser_feed(p, "x", 1, &used, NULL), MP_ERR_INVAL);
	mp_smtp_parser_free(p);
	mp_smtp_parser_free(NULL);
}
END_TEST

START_TEST(test_format)
{
	mp_smtp_parser *p = mp_smtp_parser_new();
	const mp_smtp_reply *r = parse_one(p, "550-5.1.1 <x@y>: Recipient\r\n550-\r\n"
	                                      "550 5.1.1 address rejected\r\n");
	const char *want = "550 5.1.1 <x@y>: Recipient address rejected";
	char buf[100];
	size_t size;

	mp_smtp_reply_format(r, buf, sizeof buf);
	ck_assert_str_eq(buf, want);
	for (size = 1; size <= strlen(want) + 1; size++) {
		memset(buf, 'Z', sizeof buf);
		mp_smtp_reply_format(r, buf, size);
		ck_assert_uint_lt(strlen(buf), size);
		ck_assert(strncmp(buf, want, strlen(buf)) == 0);
		ck_assert(buf[size] == 'Z');
	}
	mp_smtp_reply_format(NULL, buf, sizeof buf);
	ck_assert_str_eq(buf, "");
	mp_smtp_reply_format(r, NULL, 10);
	r = parse_one(p, "250\r\n");
	mp_smtp_reply_format(r, buf, sizeof buf);
	ck_assert_str_eq(buf, "250");
	mp_smtp_parser_free(p);
}
END_TEST

static void
check_stuff(const char *in, size_t len, const char *want, size_t wantlen)
{
	char *out = NULL;
	size_t outlen = 0;

	ck_assert_int_eq(mp_smtp_dot_stuff(in, len, 1000, &out, &outlen), MP_OK);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(outlen, wantlen);
	ck_assert_msg(memcmp(out, want, outlen) == 0, "stuffed \"%s\"", out);
	ck_assert(out[outlen] == '\0');
	free(out);
}

#define STUFF(in, want) check_stuff(in, sizeof(in) - 1, want, sizeof(want) - 1)

START_TEST(test_dot_stuff)
{
	STUFF("", ".\r\n");
	STUFF("a", "a\r\n.\r\n");
	STUFF("a\r\n", "a\r\n.\r\n");
	STUFF("a\n", "a\r\n.\r\n");
	STUFF("a\r", "a\r\n.\r\n");
	STUFF("\n", "\r\n.\r\n");
	STUFF(".", "..\r\n.\r\n");
	STUFF(".\n", "..\r\n.\r\n");
	STUFF("a\n.\nb", "a\r\n..\r\nb\r\n.\r\n");
	STUFF("..x\r\n.y\n z.\n", "...x\r\n..y\r\n z.\r\n.\r\n");
	STUFF("a\n\nb\r\rc\r\n\r\nd", "a\r\n\r\nb\r\n\r\nc\r\n\r\nd\r\n.\r\n");
	STUFF("a\r.b\r\n.\r\n", "a\r\n..b\r\n..\r\n.\r\n");
	STUFF("\n\r", "\r\n\r\n.\r\n");
	STUFF("x\0.y", "x\0.y\r\n.\r\n");
	STUFF("\0\n.", "\0\r\n..\r\n.\r\n");
}
END_TEST

START_TEST(test_dot_stuff_limits)
{
	char *out = (char *)1;
	size_t outlen;

	/* "..\r\n.\r\n" is 7 bytes: max_out 7 fits, 6 does not */
	ck_assert_int_eq(mp_smtp_dot_stuff(".", 1, 7, &out, &outlen), MP_OK);
	ck_assert_uint_eq(outlen, 7);
	free(out);
	out = (char *)1;
	ck_assert_int_eq(mp_smtp_dot_stuff(".", 1, 6, &out, &outlen), MP_ERR_TOOBIG);
	ck_assert_ptr_null(out);
	out = (char *)1;
	ck_assert_int_eq(mp_smtp_dot_stuff("x", SIZE_MAX, SIZE_MAX, &out, &outlen), MP_ERR_TOOBIG);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(mp_smtp_dot_stuff(NULL, 1, 100, &out, &outlen), MP_ERR_INVAL);
	ck_assert_int_eq(mp_smtp_dot_stuff("x", 1, 100, NULL, &outlen), MP_ERR_INVAL);
	ck_assert_int_eq(mp_smtp_dot_stuff("x", 1, 100, &out, NULL), MP_ERR_INVAL);
	ck_assert_int_eq(mp_smtp_dot_stuff(NULL, 0, 100, &out, &outlen), MP_OK);
	ck_assert_str_eq(out, ".\r\n");
	free(out);
}
END_TEST

/* Undoes the stuffing of every possible short input over {a . \r \n}. */
START_TEST(test_dot_stuff_exhaustive)
{
	static const char alpha[] = "a.\r\n";
	char in[8], *out, norm[32];
	size_t len, k, outlen, n;
	unsigned long idx, total;

	for (len = 0; len <= 6; len++) {
		for (total = 1, k = 0; k < len; k++)
			total *= 4;
		for (idx = 0; idx < total; idx++) {
			unsigned long v = idx;
			size_t i, o = 0;
			int bol = 1;

			for (k = 0; k < len; k++, v /= 4)
				in[k] = alpha[v % 4];
			ck_assert_int_eq(mp_smtp_dot_stuff(in, len, 100, &out, &outlen), MP_OK);
			/* expected: line ends normalised, final CRLF added */
			for (n = 0, k = 0; k < len; k++) {
				if (in[k] == '\r' || in[k] == '\n') {
					if (in[k] == '\r' && k + 1 < len && in[k + 1] == '\n')
						k++;
					norm[n++] = '\r';
					norm[n++] = '\n';
				} else {
					norm[n++] = in[k];
				}
			}
			if (n > 0 && norm[n - 1] != '\n') {
				norm[n++] = '\r';
				norm[n++] = '\n';
			}
			ck_assert_uint_ge(outlen, 3);
			ck_assert(memcmp(out + outlen - 3, ".\r\n", 3) == 0);
			ck_assert(outlen == 3 || (outlen >= 5 && memcmp(out + outlen - 5, "\r\n", 2) == 0));
			/* unstuff the body and compare */
			for (i = 0; i < outlen - 3; i++) {
				if (bol && out[i] == '.') {
					ck_assert(out[i + 1] == '.');   /* no lone dot line */
					i++;
				}
				ck_assert_uint_lt(o, n);
				ck_assert(out[i] == norm[o]);
				o++;
				bol = out[i] == '\n';
				if (out[i] == '\r')
					ck_assert(out[i + 1] == '\n');
				if (out[i] == '\n')
					ck_assert(i > 0 && out[i - 1] == '\r');
			}
			ck_assert_uint_eq(o, n);
			free(out);
		}
	}
}
END_TEST

static Suite *
smtp_reply_suite(void)
{
	Suite *s = suite_create("smtp_reply");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_single_line);
	tcase_add_test(tc, test_multi_line);
	tcase_add_test(tc, test_enhanced);
	tcase_add_test(tc, test_caps);
	tcase_add_test(tc, test_split_everywhere);
	tcase_add_test(tc, test_byte_by_byte);
	tcase_add_test(tc, test_stops_after_reply);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_nul_and_sticky_error);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_dot_stuff);
	tcase_add_test(tc, test_dot_stuff_limits);
	tcase_add_test(tc, test_dot_stuff_exhaustive);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(smtp_reply_suite)
