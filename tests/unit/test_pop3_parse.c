/*
 * test_pop3_parse.c - unit tests for the POP3 response reader and answer
 * parsers (lib/pop3_parse.c).
 *
 * Status lines (+OK/-ERR, with and without text, response codes), multi-
 * line bodies (dot-unstuffing, the terminator in every position of a
 * split read, bare LF, an empty body, -ERR ending a multi-line command at
 * once), the bounds (status line length, body truncation that keeps the
 * stream in step), UIDL and LIST parsing, the Subject test on header
 * blocks (folded, case, absent, later fields), argument checks, and
 * random input.
 */
#include "testutil.h"

#include "mailpunch/error.h"

#include "pop3_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feed s in chunks of chunk bytes; expects exactly one response that
 * ends exactly at the end of s. */
static mp_pop3_response *
read_one(const char *s, size_t len, int multi, size_t max, size_t chunk)
{
	mp_pop3_reader *rd;
	mp_pop3_response *r = NULL;
	size_t pos = 0;

	ck_assert_int_eq(mp_pop3_reader_new(&rd), MP_OK);
	mp_pop3_reader_expect(rd, multi, max);
	while (pos < len) {
		size_t k = len - pos < chunk ? len - pos : chunk, used;

		ck_assert_ptr_null(r);
		ck_assert_int_eq(mp_pop3_reader_feed(rd, s + pos, k, &used, &r), MP_OK);
		pos += used;
		if (!r)
			ck_assert_uint_eq(used, k);
	}
	ck_assert_ptr_nonnull(r);
	mp_pop3_reader_free(rd);
	return r;
}

static mp_pop3_response *
read_str(const char *s, int multi, size_t max)
{
	return read_one(s, strlen(s), multi, max, 4096);
}

START_TEST(status_lines)
{
	mp_pop3_response *r = read_str("+OK Dovecot ready.\r\n", 0, 0);

	ck_assert_int_eq(r->ok, 1);
	ck_assert_str_eq(r->text, "Dovecot ready.");
	ck_assert_uint_eq(r->text_len, 14);
	ck_assert_ptr_null(r->body);
	mp_pop3_response_free(r);

	r = read_str("-ERR [AUTH] Authentication failed.\r\n", 0, 0);
	ck_assert_int_eq(r->ok, 0);
	ck_assert(mp_pop3_resp_code(r, "AUTH"));
	ck_assert(mp_pop3_resp_code(r, "auth"));
	ck_assert(!mp_pop3_resp_code(r, "AUT"));
	ck_assert(!mp_pop3_resp_code(r, "IN-USE"));
	mp_pop3_response_free(r);

	r = read_str("-ERR [SYS/TEMP] try later\n", 0, 0);
	ck_assert(mp_pop3_resp_code(r, "SYS"));
	mp_pop3_response_free(r);

	r = read_str("+OK\r\n", 0, 0);
	ck_assert_str_eq(r->text, "");
	ck_assert(!mp_pop3_resp_code(r, "AUTH"));
	mp_pop3_response_free(r);

	r = read_str("+ok lower case\r\n", 0, 0);
	ck_assert_int_eq(r->ok, 1);
	mp_pop3_response_free(r);
	ck_assert(!mp_pop3_resp_code(NULL, "AUTH"));
}
END_TEST

static int
bad_status_n(const char *s, size_t len)
{
	mp_pop3_reader *rd;
	mp_pop3_response *r;
	size_t used;
	int err;

	ck_assert_int_eq(mp_pop3_reader_new(&rd), MP_OK);
	err = mp_pop3_reader_feed(rd, s, len, &used, &r);
	ck_assert_ptr_null(r);
	/* the error sticks */
	ck_assert_int_ne(mp_pop3_reader_feed(rd, "+OK\r\n", 5, &used, &r), MP_OK);
	mp_pop3_reader_free(rd);
	return err;
}

static int
bad_status(const char *s)
{
	return bad_status_n(s, strlen(s));
}

START_TEST(status_errors)
{
	char *long_line;

	ck_assert_int_eq(bad_status("OK fine\r\n"), MP_ERR_SYNTAX);
	ck_assert_int_eq(bad_status("+OKAY\r\n"), MP_ERR_SYNTAX);
	ck_assert_int_eq(bad_status("-ERROR\r\n"), MP_ERR_SYNTAX);
	ck_assert_int_eq(bad_status("\r\n"), MP_ERR_SYNTAX);
	ck_assert_int_eq(bad_status("* OK IMAP\r\n"), MP_ERR_SYNTAX);
	ck_assert_int_eq(bad_status("+OK fake\rline\r\n"), MP_ERR_SYNTAX);
	ck_assert_int_eq(bad_status_n("+OK a\0b\r\n", 9), MP_ERR_SYNTAX);

	long_line = malloc(MP_POP3_LINE_MAX + 2);
	ck_assert_ptr_nonnull(long_line);
	memset(long_line, 'x', MP_POP3_LINE_MAX + 1);
	memcpy(long_line, "+OK ", 4);
	long_line[MP_POP3_LINE_MAX + 1] = '\0';
	ck_assert_int_eq(bad_status(long_line), MP_ERR_TOOBIG);
	/* exactly at the bound, LF included */
	memcpy(long_line + MP_POP3_LINE_MAX - 1, "\n", 2);
	{
		mp_pop3_response *r = read_str(long_line, 0, 0);

		ck_assert_uint_eq(r->text_len, MP_POP3_LINE_MAX - 5);
		mp_pop3_response_free(r);
	}
	free(long_line);
}
END_TEST

START_TEST(multiline_unstuff)
{
	static const char in[] =
		"+OK message follows\r\n"
		"Subject: x\r\n"
		"\r\n"
		"..hidden terminator\r\n"
		"...\r\n"
		".x\r\n"
		"a.\r\n"
		".\r\x00\r\n"
		".\r\n";
	static const char want[] =
		"Subject: x\r\n"
		"\r\n"
		".hidden terminator\r\n"
		"..\r\n"
		"x\r\n"
		"a.\r\n"
		"\r\x00\r\n";
	size_t chunk;

	for (chunk = 1; chunk <= sizeof in; chunk++) {
		mp_pop3_response *r = read_one(in, sizeof in - 1, 1, 4096, chunk);

		ck_assert_int_eq(r->ok, 1);
		ck_assert_str_eq(r->text, "message follows");
		ck_assert_uint_eq(r->body_len, sizeof want - 1);
		ck_assert(memcmp(r->body, want, sizeof want - 1) == 0);
		ck_assert_int_eq(r->body[r->body_len], '\0');
		ck_assert_int_eq(r->truncated, 0);
		ck_assert_uint_eq(r->body_total, sizeof want - 1);
		mp_pop3_response_free(r);
	}
}
END_TEST

START_TEST(multiline_forms)
{
	mp_pop3_response *r;

	/* empty body */
	r = read_str("+OK\r\n.\r\n", 1, 100);
	ck_assert_ptr_nonnull(r->body);
	ck_assert_uint_eq(r->body_len, 0);
	mp_pop3_response_free(r);

	/* bare LF everywhere */
	r = read_str("+OK\n1 abc\n2 def\n.\n", 1, 100);
	ck_assert_str_eq(r->body, "1 abc\n2 def\n");
	mp_pop3_response_free(r);

	/* -ERR to a multi-line command is one line */
	r = read_str("-ERR no such message\r\n", 1, 100);
	ck_assert_int_eq(r->ok, 0);
	ck_assert_ptr_null(r->body);
	mp_pop3_response_free(r);
}
END_TEST

/* Responses back to back in one read: each ends where it should. */
START_TEST(pipelined)
{
	static const char in[] = "+OK a\r\n1 x\r\n.\r\n+OK b\r\n-ERR c\r\n";
	mp_pop3_reader *rd;
	mp_pop3_response *r;
	size_t used, pos = 0;

	ck_assert_int_eq(mp_pop3_reader_new(&rd), MP_OK);
	mp_pop3_reader_expect(rd, 1, 100);
	ck_assert_int_eq(mp_pop3_reader_feed(rd, in, sizeof in - 1, &used, &r), MP_OK);
	ck_assert_str_eq(r->body, "1 x\r\n");
	ck_assert_uint_eq(used, 15);
	pos += used;
	mp_pop3_response_free(r);
	mp_pop3_reader_expect(rd, 0, 0);
	ck_assert_int_eq(mp_pop3_reader_feed(rd, in + pos, sizeof in - 1 - pos, &used, &r), MP_OK);
	ck_assert_str_eq(r->text, "b");
	pos += used;
	mp_pop3_response_free(r);
	ck_assert_int_eq(mp_pop3_reader_feed(rd, in + pos, sizeof in - 1 - pos, &used, &r), MP_OK);
	ck_assert_str_eq(r->text, "c");
	ck_assert_uint_eq(pos + used, sizeof in - 1);
	mp_pop3_response_free(r);
	mp_pop3_reader_free(rd);
}
END_TEST

/* Over max_body: the prefix is kept, the rest read away, the stream stays
 * in step for the next response. */
START_TEST(truncation)
{
	static const char in[] = "+OK\r\n0123456789\r\n..abc\r\n.\r\n+OK next\r\n";
	mp_pop3_reader *rd;
	mp_pop3_response *r;
	size_t used;

	ck_assert_int_eq(mp_pop3_reader_new(&rd), MP_OK);
	mp_pop3_reader_expect(rd, 1, 8);
	ck_assert_int_eq(mp_pop3_reader_feed(rd, in, sizeof in - 1, &used, &r), MP_OK);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->truncated, 1);
	ck_assert_uint_eq(r->body_len, 8);
	ck_assert_str_eq(r->body, "01234567");
	ck_assert_uint_eq(r->body_total, 18);
	mp_pop3_response_free(r);
	mp_pop3_reader_expect(rd, 0, 0);
	ck_assert_int_eq(mp_pop3_reader_feed(rd, in + used, sizeof in - 1 - used, &used, &r), MP_OK);
	ck_assert_str_eq(r->text, "next");
	mp_pop3_response_free(r);

	/* max_body 0 keeps nothing */
	mp_pop3_reader_expect(rd, 1, 0);
	ck_assert_int_eq(mp_pop3_reader_feed(rd, "+OK\r\nab\r\n.\r\n", 12, &used, &r), MP_OK);
	ck_assert_int_eq(r->truncated, 1);
	ck_assert_uint_eq(r->body_len, 0);
	ck_assert_str_eq(r->body, "");
	mp_pop3_response_free(r);
	mp_pop3_reader_free(rd);
}
END_TEST

START_TEST(uidl)
{
	static const char body[] = "1 whqtswO00WBw418f9t5JxYwZ\r\n2  QhdPYR:00WBw1Ph7x7 \r\n70000 x\n";
	mp_pop3_uidl *v;
	size_t n;

	ck_assert_int_eq(mp_pop3_parse_uidl(body, sizeof body - 1, &v, &n), MP_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(v[0].msg, 1);
	ck_assert_str_eq(v[0].uid, "whqtswO00WBw418f9t5JxYwZ");
	ck_assert_uint_eq(v[1].msg, 2);
	ck_assert_str_eq(v[1].uid, "QhdPYR:00WBw1Ph7x7");
	ck_assert_uint_eq(v[2].msg, 70000);
	ck_assert_str_eq(v[2].uid, "x");
	free(v);

	ck_assert_int_eq(mp_pop3_parse_uidl("", 0, &v, &n), MP_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(v);

	ck_assert_int_eq(mp_pop3_parse_uidl("0 abc\r\n", 7, &v, &n), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pop3_parse_uidl("1\r\n", 3, &v, &n), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pop3_parse_uidl("1 a b\r\n", 7, &v, &n), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pop3_parse_uidl("1 a\x01\r\n", 6, &v, &n), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pop3_parse_uidl("x a\r\n", 5, &v, &n), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pop3_parse_uidl("4294967296 a\r\n", 14, &v, &n), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pop3_parse_uidl("1 a\r\n\r\n", 7, &v, &n), MP_ERR_SYNTAX);
	{
		char line[128];
		int k;

		k = snprintf(line, sizeof line, "1 %070d\r\n", 7);
		ck_assert_int_eq(mp_pop3_parse_uidl(line, (size_t)k, &v, &n), MP_OK);
		ck_assert_uint_eq(strlen(v[0].uid), 70);
		free(v);
		k = snprintf(line, sizeof line, "1 %071d\r\n", 7);
		ck_assert_int_eq(mp_pop3_parse_uidl(line, (size_t)k, &v, &n), MP_ERR_SYNTAX);
	}
}
END_TEST

START_TEST(uidl_bound)
{
	size_t cnt = MP_POP3_UIDL_MAX + 1, len = cnt * 4, i, n;
	char *body = malloc(len);
	mp_pop3_uidl *v;

	ck_assert_ptr_nonnull(body);
	for (i = 0; i < cnt; i++)
		memcpy(body + i * 4, "1 a\n", 4);
	ck_assert_int_eq(mp_pop3_parse_uidl(body, len, &v, &n), MP_ERR_TOOBIG);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(mp_pop3_parse_uidl(body, len - 4, &v, &n), MP_OK);
	ck_assert_uint_eq(n, MP_POP3_UIDL_MAX);
	free(v);
	free(body);
}
END_TEST

START_TEST(scan)
{
	uint32_t msg;
	uint64_t size;

	ck_assert_int_eq(mp_pop3_parse_scan("3 1205", &msg, &size), MP_OK);
	ck_assert_uint_eq(msg, 3);
	ck_assert_uint_eq(size, 1205);
	ck_assert_int_eq(mp_pop3_parse_scan("3 1205 extra", &msg, &size), MP_OK);
	ck_assert_int_eq(mp_pop3_parse_scan("3", &msg, &size), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pop3_parse_scan("3 ", &msg, &size), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pop3_parse_scan("3 x", &msg, &size), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pop3_parse_scan("3 12x", &msg, &size), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pop3_parse_scan("3 99999999999999999999", &msg, &size), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pop3_parse_scan(" 3 1", &msg, &size), MP_ERR_SYNTAX);
}
END_TEST

START_TEST(subject)
{
	static const char folded[] =
		"Received: from x\r\n\tby y\r\n"
		"SUBJECT: Re: hello\r\n [MailPunch]\r\n\treply\r\n"
		"From: a@b\r\n\r\n";
	static const char later[] = "From: a\nX-Subject: [mailpunch]\n\nSubject: [mailpunch]\n";
	static const char two[] = "Subject: first\nSubject: [mailpunch] second\n\n";
	static const char custom[] = "Subject: {tag} hi\r\n\r\n";

	ck_assert_int_eq(mp_pop3_subject_match(folded, sizeof folded - 1, NULL), 1);
	ck_assert_int_eq(mp_pop3_subject_match(folded, sizeof folded - 1, "[mailpunch]"), 1);
	ck_assert_int_eq(mp_pop3_subject_match(folded, sizeof folded - 1, "[other]"), 0);
	/* a Subject in the body, or a field merely ending in "Subject", is none */
	ck_assert_int_eq(mp_pop3_subject_match(later, sizeof later - 1, NULL), 0);
	/* the first Subject field decides, as in mp_mail_parse() */
	ck_assert_int_eq(mp_pop3_subject_match(two, sizeof two - 1, NULL), 0);
	ck_assert_int_eq(mp_pop3_subject_match(custom, sizeof custom - 1, "{tag}"), 1);
	ck_assert_int_eq(mp_pop3_subject_match(custom, sizeof custom - 1, NULL), 0);
	ck_assert_int_eq(mp_pop3_subject_match("", 0, NULL), 0);
	ck_assert_int_eq(mp_pop3_subject_match(NULL, 0, NULL), 0);
}
END_TEST

START_TEST(args)
{
	char big[300];

	ck_assert(mp_pop3_arg_ok("bob"));
	ck_assert(mp_pop3_arg_ok("pass word"));
	ck_assert(!mp_pop3_arg_ok(""));
	ck_assert(!mp_pop3_arg_ok(NULL));
	ck_assert(!mp_pop3_arg_ok("a\r\nDELE 1"));
	ck_assert(!mp_pop3_arg_ok("a\n"));
	memset(big, 'a', sizeof big);
	big[255] = '\0';
	ck_assert(mp_pop3_arg_ok(big));
	big[255] = 'a';
	big[256] = '\0';
	ck_assert(!mp_pop3_arg_ok(big));
}
END_TEST

START_TEST(random_input)
{
	static const char alphabet[] = "+OK-ERR .\r\n";
	unsigned seed = 4242;
	int round;

	for (round = 0; round < 20000; round++) {
		char in[64];
		size_t n, i, pos = 0;
		mp_pop3_reader *rd;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % sizeof in;
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (seed >> 20) % 8 == 0 ? (char)(seed >> 8)
			                              : alphabet[(seed >> 16) % (sizeof alphabet - 1)];
		}
		ck_assert_int_eq(mp_pop3_reader_new(&rd), MP_OK);
		mp_pop3_reader_expect(rd, (int)(seed & 1), (seed >> 3) % 16);
		while (pos < n) {
			mp_pop3_response *r;
			size_t used;

			if (mp_pop3_reader_feed(rd, in + pos, n - pos, &used, &r) != MP_OK)
				break;
			pos += used;
			if (!r)
				break;
			ck_assert(!r->body || r->body_len <= (seed >> 3) % 16);
			ck_assert(!r->body || r->body[r->body_len] == '\0');
			mp_pop3_response_free(r);
		}
		mp_pop3_reader_free(rd);
	}
}
END_TEST

static Suite *
pop3_parse_suite(void)
{
	Suite *s = suite_create("pop3_parse");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, status_lines);
	tcase_add_test(tc, status_errors);
	tcase_add_test(tc, multiline_unstuff);
	tcase_add_test(tc, multiline_forms);
	tcase_add_test(tc, pipelined);
	tcase_add_test(tc, truncation);
	tcase_add_test(tc, uidl);
	tcase_add_test(tc, uidl_bound);
	tcase_add_test(tc, scan);
	tcase_add_test(tc, subject);
	tcase_add_test(tc, args);
	tcase_add_test(tc, random_input);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(pop3_parse_suite)
