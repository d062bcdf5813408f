/*
 * test_imap_parse.c - unit tests for the IMAP response reader and parser
 * (lib/imap_parse.c).
 *
 * Every response shape a watcher meets (tagged and untagged status with
 * and without codes, continuation, EXISTS, CAPABILITY, SEARCH, FETCH with
 * literals, quoted strings, NIL, nested lists, bracketed sections), the
 * bounds (line length, literal count, literal size, nesting depth), the
 * syntax errors, streaming (byte by byte, several responses per read,
 * an oversize literal skipped without losing the stream), the helpers
 * (quote, printable, words, numbers, list lookup), and random input.
 */
#include "testutil.h"

#include "mailpunch/error.h"

#include "imap_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static mp_imap_response *
parse_ok(const char *s)
{
	mp_imap_response *r = NULL;
	int err = mp_imap_parse(s, strlen(s), 0, &r);

	ck_assert_msg(err == MP_OK, "parse of [%s] failed: %d", s, err);
	ck_assert_ptr_nonnull(r);
	return r;
}

static int
parse_err(const char *s, size_t max_literal)
{
	mp_imap_response *r = NULL;
	int err = mp_imap_parse(s, strlen(s), max_literal, &r);

	ck_assert_ptr_null(r);
	return err;
}

static int
slice_is(const char *s, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(s, want, n) == 0;
}

START_TEST(tagged_status)
{
	mp_imap_response *r = parse_ok("A1 OK [READ-WRITE] SELECT completed\r\n");

	ck_assert_int_eq(r->kind, MP_IMAP_TAGGED);
	ck_assert_int_eq(r->status, MP_IMAP_OK);
	ck_assert(slice_is(r->tag, r->tag_len, "A1"));
	ck_assert(slice_is(r->code, r->code_len, "READ-WRITE"));
	ck_assert(slice_is(r->text, r->text_len, "SELECT completed"));
	mp_imap_response_free(r);

	r = parse_ok("a.2 no Mailbox doesn't exist: X\r\n");
	ck_assert_int_eq(r->status, MP_IMAP_NO);
	ck_assert_uint_eq(r->code_len, 0);
	ck_assert(slice_is(r->text, r->text_len, "Mailbox doesn't exist: X"));
	mp_imap_response_free(r);

	r = parse_ok("t BAD\r\n");
	ck_assert_int_eq(r->status, MP_IMAP_BAD);
	ck_assert_uint_eq(r->text_len, 0);
	mp_imap_response_free(r);

	/* a code without its closing bracket is just text */
	r = parse_ok("A3 NO [ALERT oops\r\n");
	ck_assert_uint_eq(r->code_len, 0);
	ck_assert(slice_is(r->text, r->text_len, "[ALERT oops"));
	mp_imap_response_free(r);
}
END_TEST

START_TEST(untagged_status)
{
	mp_imap_response *r = parse_ok("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n");
	const char *w;
	size_t pos = 0, wl;

	ck_assert_int_eq(r->kind, MP_IMAP_UNTAGGED);
	ck_assert_int_eq(r->status, MP_IMAP_OK);
	ck_assert(!r->has_number);
	ck_assert(slice_is(r->code, r->code_len, "UIDVALIDITY 3857529045"));
	ck_assert(mp_imap_word_next(r->code, r->code_len, &pos, &w, &wl));
	ck_assert(slice_is(w, wl, "UIDVALIDITY"));
	ck_assert(mp_imap_word_next(r->code, r->code_len, &pos, &w, &wl));
	ck_assert(slice_is(w, wl, "3857529045"));
	ck_assert(!mp_imap_word_next(r->code, r->code_len, &pos, &w, &wl));
	ck_assert_uint_ge(r->nitems, 1);
	mp_imap_response_free(r);

	r = parse_ok("* BYE Server shutting down\r\n");
	ck_assert_int_eq(r->status, MP_IMAP_BYE);
	mp_imap_response_free(r);

	r = parse_ok("* PREAUTH [CAPABILITY IMAP4rev1 IDLE] hi\r\n");
	ck_assert_int_eq(r->status, MP_IMAP_PREAUTH);
	ck_assert(slice_is(r->code, r->code_len, "CAPABILITY IMAP4rev1 IDLE"));
	mp_imap_response_free(r);

	/* BYE and PREAUTH are not tagged statuses */
	ck_assert_int_eq(parse_err("A1 BYE x\r\n", 0), MP_ERR_SYNTAX);
	ck_assert_int_eq(parse_err("A1 FETCH x\r\n", 0), MP_ERR_SYNTAX);
}
END_TEST

START_TEST(continuation)
{
	mp_imap_response *r = parse_ok("+ idling\r\n");

	ck_assert_int_eq(r->kind, MP_IMAP_CONTINUE);
	ck_assert(slice_is(r->text, r->text_len, "idling"));
	mp_imap_response_free(r);
	r = parse_ok("+\r\n");
	ck_assert_int_eq(r->kind, MP_IMAP_CONTINUE);
	ck_assert_uint_eq(r->text_len, 0);
	mp_imap_response_free(r);
	r = parse_ok("+ \r\n");
	ck_assert_uint_eq(r->text_len, 0);
	mp_imap_response_free(r);
}
END_TEST

START_TEST(untagged_data)
{
	mp_imap_response *r = parse_ok("* 23 EXISTS\r\n");
	uint32_t v;

	ck_assert(r->has_number);
	ck_assert_uint_eq(r->number, 23);
	ck_assert(slice_is(r->name, r->name_len, "EXISTS"));
	ck_assert_int_eq(r->status, MP_IMAP_DATA);
	ck_assert_uint_eq(r->nitems, 1);
	mp_imap_response_free(r);

	r = parse_ok("* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR IDLE AUTH=PLAIN MOVE\r\n");
	ck_assert(slice_is(r->name, r->name_len, "CAPABILITY"));
	ck_assert_uint_eq(r->nitems, 7);
	ck_assert_uint_eq(r->items[0].end, 7);
	ck_assert(mp_imap_item_is(&r->items[1], "imap4REV1"));
	ck_assert(mp_imap_item_is(&r->items[5], "AUTH=PLAIN"));
	mp_imap_response_free(r);

	r = parse_ok("* SEARCH 4 17 4294967295\r\n");
	ck_assert_uint_eq(r->nitems, 4);
	ck_assert_int_eq(mp_imap_item_u32(&r->items[1], &v), MP_OK);
	ck_assert_uint_eq(v, 4);
	ck_assert_int_eq(mp_imap_item_u32(&r->items[3], &v), MP_OK);
	ck_assert_uint_eq(v, 4294967295u);
	mp_imap_response_free(r);

	r = parse_ok("* SEARCH\r\n");
	ck_assert_uint_eq(r->nitems, 1);
	mp_imap_response_free(r);

	/* a number that does not fit, and a lone number */
	ck_assert_int_eq(parse_err("* 4294967296 EXISTS\r\n", 0), MP_ERR_SYNTAX);
	ck_assert_int_eq(parse_err("* 12\r\n", 0), MP_ERR_SYNTAX);
	ck_assert_int_eq(parse_err("*\r\n", 0), MP_ERR_SYNTAX);
}
END_TEST

START_TEST(fetch_literal)
{
	static const char in[] =
		"* 12 FETCH (UID 7 RFC822.SIZE 11 FLAGS (\\Seen $Junk) BODY[]<0> {11}\r\n"
		"a)\r\n{3}\r\n\"x)\r\n";
	mp_imap_response *r = parse_ok(in);
	const mp_imap_item *it;
	uint32_t uid;
	uint64_t size;

	ck_assert_uint_eq(r->number, 12);
	ck_assert(slice_is(r->name, r->name_len, "FETCH"));
	ck_assert_int_eq(r->items[1].type, MP_IMAP_LIST);
	ck_assert_uint_eq(r->items[0].end, r->nitems);
	ck_assert_uint_eq(r->items[1].end, r->nitems);
	it = mp_imap_list_get(r, 1, "uid");
	ck_assert_ptr_nonnull(it);
	ck_assert_int_eq(mp_imap_item_u32(it, &uid), MP_OK);
	ck_assert_uint_eq(uid, 7);
	ck_assert_int_eq(mp_imap_item_u64(mp_imap_list_get(r, 1, "RFC822.SIZE"), &size), MP_OK);
	ck_assert_uint_eq(size, 11);
	it = mp_imap_list_get(r, 1, "FLAGS");
	ck_assert_ptr_nonnull(it);
	ck_assert_int_eq(it->type, MP_IMAP_LIST);
	ck_assert_uint_eq(it->end - (size_t)(it - r->items), 3);
	ck_assert(mp_imap_item_is(it + 1, "\\SEEN"));
	it = mp_imap_list_get(r, 1, "BODY[]<0>");
	ck_assert_ptr_nonnull(it);
	ck_assert_int_eq(it->type, MP_IMAP_STRING);
	ck_assert(slice_is(it->s, it->len, "a)\r\n{3}\r\n\"x"));
	ck_assert_ptr_null(mp_imap_list_get(r, 1, "BODY[]"));
	ck_assert_ptr_null(mp_imap_list_get(r, 0, "UID"));  /* items[0] holds one list */
	ck_assert_ptr_null(mp_imap_list_get(r, 2, "UID"));  /* not a list */
	mp_imap_response_free(r);
}
END_TEST

START_TEST(literal_with_nul_and_lf)
{
	static const char in[] = "* 1 FETCH (BODY[] {4}\n\0\n\r\0 UID 3)\n";
	mp_imap_response *r = NULL;
	const mp_imap_item *it;

	ck_assert_int_eq(mp_imap_parse(in, sizeof in - 1, 0, &r), MP_OK);
	it = mp_imap_list_get(r, 1, "BODY[]");
	ck_assert_ptr_nonnull(it);
	ck_assert_uint_eq(it->len, 4);
	ck_assert(memcmp(it->s, "\0\n\r\0", 4) == 0);
	ck_assert_ptr_nonnull(mp_imap_list_get(r, 1, "UID"));
	mp_imap_response_free(r);

	/* zero-length literal, and two literals in one response */
	r = parse_ok("* 2 FETCH (BODY[1] {0}\r\n BODY[2] {2}\r\nab)\r\n");
	it = mp_imap_list_get(r, 1, "BODY[1]");
	ck_assert_int_eq(it->type, MP_IMAP_STRING);
	ck_assert_uint_eq(it->len, 0);
	it = mp_imap_list_get(r, 1, "BODY[2]");
	ck_assert(slice_is(it->s, it->len, "ab"));
	mp_imap_response_free(r);
}
END_TEST

START_TEST(quoted_nil_lists)
{
	mp_imap_response *r = parse_ok(
		"* LIST (\\HasNoChildren \\Trash) \"/\" \"Tr\\\"a\\\\sh\" NIL \"\" (((a)) ())\r\n");

	ck_assert(slice_is(r->name, r->name_len, "LIST"));
	ck_assert_int_eq(r->items[1].type, MP_IMAP_LIST);
	ck_assert(mp_imap_item_is(&r->items[2], "\\HasNoChildren"));
	ck_assert_int_eq(r->items[4].type, MP_IMAP_STRING);
	ck_assert(slice_is(r->items[4].s, r->items[4].len, "/"));
	ck_assert(slice_is(r->items[5].s, r->items[5].len, "Tr\"a\\sh"));
	ck_assert_int_eq(r->items[6].type, MP_IMAP_NIL);
	ck_assert_uint_eq(r->items[6].len, 0);
	ck_assert_int_eq(r->items[7].type, MP_IMAP_STRING);
	ck_assert_uint_eq(r->items[7].len, 0);
	ck_assert_int_eq(r->items[8].type, MP_IMAP_LIST);
	ck_assert_uint_eq(r->items[8].end, r->nitems);
	ck_assert_int_eq(r->items[9].type, MP_IMAP_LIST);
	ck_assert_uint_eq(r->items[9].end, 12);
	ck_assert_int_eq(r->items[10].type, MP_IMAP_LIST);
	ck_assert_uint_eq(r->items[10].end, 12);
	ck_assert(mp_imap_item_is(&r->items[11], "a"));
	ck_assert_int_eq(r->items[12].type, MP_IMAP_LIST);  /* the "()" */
	ck_assert_uint_eq(r->items[12].end, 13);
	ck_assert_uint_eq(r->nitems, 13);
	mp_imap_response_free(r);
}
END_TEST

START_TEST(bracketed_sections)
{
	mp_imap_response *r = parse_ok(
		"* 5 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {4}\r\nS: x UID 9)\r\n");
	const mp_imap_item *it = mp_imap_list_get(r, 1, "BODY[HEADER.FIELDS (SUBJECT FROM)]");

	ck_assert_ptr_nonnull(it);
	ck_assert(slice_is(it->s, it->len, "S: x"));
	mp_imap_response_free(r);

	r = parse_ok("* FLAGS (\\Answered \\*)\r\n");
	ck_assert(mp_imap_item_is(&r->items[3], "\\*"));
	mp_imap_response_free(r);

	ck_assert_int_eq(parse_err("* 5 FETCH (BODY[HEADER UID 9)\r\n", 0), MP_ERR_SYNTAX);
}
END_TEST

START_TEST(depth_bound)
{
	char in[128], *p = in;
	mp_imap_response *r;
	int i;

	p += sprintf(p, "* X ");
	for (i = 0; i < MP_IMAP_DEPTH_MAX; i++)
		*p++ = '(';
	for (i = 0; i < MP_IMAP_DEPTH_MAX; i++)
		*p++ = ')';
	strcpy(p, "\r\n");
	r = parse_ok(in);
	ck_assert_uint_eq(r->nitems, MP_IMAP_DEPTH_MAX + 1);
	mp_imap_response_free(r);

	p = in + sprintf(in, "* X ");
	for (i = 0; i <= MP_IMAP_DEPTH_MAX; i++)
		*p++ = '(';
	for (i = 0; i <= MP_IMAP_DEPTH_MAX; i++)
		*p++ = ')';
	strcpy(p, "\r\n");
	ck_assert_int_eq(parse_err(in, 0), MP_ERR_TOOBIG);

	p = in + sprintf(in, "* X a");
	for (i = 0; i <= MP_IMAP_DEPTH_MAX; i++)
		*p++ = '[';
	for (i = 0; i <= MP_IMAP_DEPTH_MAX; i++)
		*p++ = ']';
	strcpy(p, "\r\n");
	ck_assert_int_eq(parse_err(in, 0), MP_ERR_TOOBIG);
}
END_TEST

START_TEST(syntax_errors)
{
	static const char *const bad[] = {
		"\r\n",
		"A1\r\n",
		"A1 \r\n",
		"A1 MAYBE done\r\n",
		"A(1 OK x\r\n",
		"* X (a b\r\n",
		"* X a)\r\n",
		"* X \"abc\r\n",
		"* X \"ab\\\r\n",
		"* X a\x01b\r\n",
		"* X a\rb\r\n",
		"* X a{2}\r\nxy\r\n",        /* literal marker glued to an atom */
		"* OK text {2}\r\nxy\r\n",    /* literal in free text */
		"A1 OK text {2}\r\nxy\r\n",
		"+ go {2}\r\nxy\r\n",
		"* 1 EXISTS extra \"x\r\n",
		" * OK x\r\n",
	};
	mp_imap_response *r = NULL;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(mp_imap_parse(bad[i], strlen(bad[i]), 0, &r) == MP_ERR_SYNTAX && !r,
		              "accepted: %s", bad[i]);
	ck_assert_int_eq(parse_err("* OK truncated", 0), MP_ERR_TRUNCATED);
	ck_assert_int_eq(parse_err("* X {5}\r\nab", 0), MP_ERR_TRUNCATED);
	ck_assert_int_eq(parse_err("* OK a\r\n* OK b\r\n", 0), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_imap_parse("x", 1, MP_IMAP_LITERAL_LIMIT + 1, &(mp_imap_response *){ NULL }),
	                 MP_ERR_INVAL);
}
END_TEST

START_TEST(line_bound)
{
	size_t n = MP_IMAP_LINE_MAX;
	char *in = malloc(n + 3);
	mp_imap_response *r = NULL;

	ck_assert_ptr_nonnull(in);
	/* exactly at the bound: "* X aaaa...\r\n" of MP_IMAP_LINE_MAX bytes */
	memset(in, 'a', n);
	memcpy(in, "* X ", 4);
	memcpy(in + n - 2, "\r\n", 2);
	ck_assert_int_eq(mp_imap_parse(in, n, 0, &r), MP_OK);
	ck_assert_uint_eq(r->items[1].len, n - 6);
	mp_imap_response_free(r);
	/* one more byte */
	memset(in, 'a', n + 1);
	memcpy(in, "* X ", 4);
	memcpy(in + n - 1, "\r\n", 2);
	ck_assert_int_eq(mp_imap_parse(in, n + 1, 0, &r), MP_ERR_TOOBIG);
	ck_assert_ptr_null(r);
	free(in);
}
END_TEST

START_TEST(literal_count_bound)
{
	char in[1024], *p = in;
	int i;

	p += sprintf(p, "* X (");
	for (i = 0; i < MP_IMAP_LITERALS_MAX; i++)
		p += sprintf(p, "{1}\r\nx ");
	strcpy(p, ")\r\n");
	mp_imap_response_free(parse_ok(in));

	p = in + sprintf(in, "* X (");
	for (i = 0; i <= MP_IMAP_LITERALS_MAX; i++)
		p += sprintf(p, "{1}\r\nx ");
	strcpy(p, ")\r\n");
	ck_assert_int_eq(parse_err(in, 0), MP_ERR_TOOBIG);
}
END_TEST

/* An oversize literal is read away: the response shows its size, and the
 * next response on the stream is intact. */
START_TEST(oversize_literal)
{
	static const char in[] =
		"* 3 FETCH (UID 8 BODY[] {10}\r\n0123456789 X {4}\r\nabcd Y {5}\r\nefghi)\r\n"
		"A7 OK done\r\n";
	mp_imap_reader *rd;
	mp_imap_response *r;
	const mp_imap_item *it;
	size_t used;

	ck_assert_int_eq(mp_imap_reader_new(8, &rd), MP_OK);
	ck_assert_int_eq(mp_imap_reader_feed(rd, in, sizeof in - 1, &used, &r), MP_OK);
	ck_assert_ptr_nonnull(r);
	it = mp_imap_list_get(r, 1, "BODY[]");
	ck_assert_int_eq(it->type, MP_IMAP_OVERSIZE);
	ck_assert_uint_eq(it->len, 10);
	ck_assert_uint_eq(it->s[0], '\0');
	it = mp_imap_list_get(r, 1, "X");
	ck_assert_int_eq(it->type, MP_IMAP_STRING);    /* 4 <= 8 */
	ck_assert(slice_is(it->s, it->len, "abcd"));
	it = mp_imap_list_get(r, 1, "Y");
	ck_assert_int_eq(it->type, MP_IMAP_OVERSIZE);  /* 4 + 5 > 8 together */
	ck_assert_uint_eq(it->len, 5);
	mp_imap_response_free(r);
	ck_assert_int_eq(mp_imap_reader_feed(rd, in + used, sizeof in - 1 - used, &used, &r), MP_OK);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->kind, MP_IMAP_TAGGED);
	mp_imap_response_free(r);
	mp_imap_reader_free(rd);
}
END_TEST

START_TEST(huge_literal_size)
{
	static const char in[] = "* 1 FETCH (BODY[] {99999999999999999999999999}\r\nabc";
	mp_imap_reader *rd;
	mp_imap_response *r;
	size_t used;

	ck_assert_int_eq(mp_imap_reader_new(0, &rd), MP_OK);
	ck_assert_int_eq(mp_imap_reader_feed(rd, in, sizeof in - 1, &used, &r), MP_OK);
	ck_assert_ptr_null(r);
	ck_assert_uint_eq(used, sizeof in - 1);
	mp_imap_reader_free(rd);
}
END_TEST

static const char stream[] =
	"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"
	"* 2 FETCH (UID 10 BODY[]<0> {11}\r\nline\r\n{1}\r\n)\r\n"
	"+ idling\n"
	"* 3 EXISTS\r\n"
	"A9 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n";

static void
check_stream(mp_imap_response **rs, size_t n)
{
	const mp_imap_item *it;

	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(rs[0]->status, MP_IMAP_OK);
	ck_assert(slice_is(rs[0]->code, rs[0]->code_len, "CAPABILITY IMAP4rev1 STARTTLS"));
	it = mp_imap_list_get(rs[1], 1, "BODY[]<0>");
	ck_assert(slice_is(it->s, it->len, "line\r\n{1}\r\n"));
	ck_assert_int_eq(rs[2]->kind, MP_IMAP_CONTINUE);
	ck_assert(slice_is(rs[2]->text, rs[2]->text_len, "idling"));
	ck_assert_uint_eq(rs[3]->number, 3);
	ck_assert(slice_is(rs[4]->tag, rs[4]->tag_len, "A9"));
	ck_assert(slice_is(rs[4]->code, rs[4]->code_len, "COPYUID 38505 304,319:320 3956:3958"));
}

static size_t
run_stream(size_t chunk, mp_imap_response **rs, size_t max)
{
	mp_imap_reader *rd;
	size_t pos = 0, n = 0, len = sizeof stream - 1;

	ck_assert_int_eq(mp_imap_reader_new(0, &rd), MP_OK);
	while (pos < len) {
		size_t k = len - pos < chunk ? len - pos : chunk, used;
		mp_imap_response *r;

		ck_assert_int_eq(mp_imap_reader_feed(rd, stream + pos, k, &used, &r), MP_OK);
		ck_assert_uint_le(used, k);
		pos += used;
		if (r) {
			ck_assert_uint_lt(n, max);
			rs[n++] = r;
		} else {
			ck_assert_uint_eq(used, k);
		}
	}
	mp_imap_reader_free(rd);
	return n;
}

START_TEST(streaming)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 13, 64, 4096 };
	size_t c, i, n;

	for (c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
		mp_imap_response *rs[8];

		n = run_stream(chunks[c], rs, 8);
		check_stream(rs, n);
		for (i = 0; i < n; i++)
			mp_imap_response_free(rs[i]);
	}
}
END_TEST

START_TEST(sticky_error)
{
	mp_imap_reader *rd;
	mp_imap_response *r;
	size_t used;

	ck_assert_int_eq(mp_imap_reader_new(0, &rd), MP_OK);
	ck_assert_int_eq(mp_imap_reader_feed(rd, "* X )\r\n", 7, &used, &r), MP_ERR_SYNTAX);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(mp_imap_reader_feed(rd, "* OK\r\n", 6, &used, &r), MP_ERR_SYNTAX);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(mp_imap_reader_feed(NULL, "x", 1, &used, &r), MP_ERR_INVAL);
	mp_imap_reader_free(rd);
	mp_imap_reader_free(NULL);
	mp_imap_response_free(NULL);
}
END_TEST

START_TEST(numbers)
{
	mp_imap_response *r = parse_ok("* X 0 18446744073709551615 18446744073709551616 4294967296 1a \"5\"\r\n");
	uint64_t v;
	uint32_t u;

	ck_assert_int_eq(mp_imap_item_u64(&r->items[1], &v), MP_OK);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(mp_imap_item_u64(&r->items[2], &v), MP_OK);
	ck_assert(v == UINT64_MAX);
	ck_assert_int_eq(mp_imap_item_u64(&r->items[3], &v), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_imap_item_u32(&r->items[4], &u), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_imap_item_u64(&r->items[4], &v), MP_OK);
	ck_assert_int_eq(mp_imap_item_u32(&r->items[5], &u), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_imap_item_u32(&r->items[6], &u), MP_ERR_SYNTAX);  /* a string */
	ck_assert_int_eq(mp_imap_item_u32(NULL, &u), MP_ERR_SYNTAX);
	ck_assert(!mp_imap_item_is(&r->items[6], "5"));
	mp_imap_response_free(r);
}
END_TEST

START_TEST(quote)
{
	char out[32];

	ck_assert_int_eq(mp_imap_quote("[mailpunch]", out, sizeof out), MP_OK);
	ck_assert_str_eq(out, "\"[mailpunch]\"");
	ck_assert_int_eq(mp_imap_quote("a\"b\\c", out, sizeof out), MP_OK);
	ck_assert_str_eq(out, "\"a\\\"b\\\\c\"");
	ck_assert_int_eq(mp_imap_quote("", out, sizeof out), MP_OK);
	ck_assert_str_eq(out, "\"\"");
	ck_assert_int_eq(mp_imap_quote("a\r\nb", out, sizeof out), MP_ERR_SYNTAX);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(mp_imap_quote("caf\xc3\xa9", out, sizeof out), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_imap_quote("abc", out, 6), MP_OK);
	ck_assert_str_eq(out, "\"abc\"");
	ck_assert_int_eq(mp_imap_quote("abcd", out, 6), MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_imap_quote("ab\"", out, 6), MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_imap_quote("ab\"", out, 7), MP_OK);
	ck_assert_int_eq(mp_imap_quote(NULL, out, 7), MP_ERR_INVAL);

	/* a quoted string survives a round trip through the parser */
	{
		char line[64];
		mp_imap_response *r;

		ck_assert_int_eq(mp_imap_quote("x \"(y)\\ {3}", out, sizeof out), MP_OK);
		snprintf(line, sizeof line, "* X %s\r\n", out);
		r = parse_ok(line);
		ck_assert(slice_is(r->items[1].s, r->items[1].len, "x \"(y)\\ {3}"));
		mp_imap_response_free(r);
	}
}
END_TEST

START_TEST(printable)
{
	char out[8];

	ck_assert_str_eq(mp_imap_printable("ab\r\n\x1b[c\xff", 8, out, sizeof out), "ab???[c");
	ck_assert_str_eq(mp_imap_printable("abc", 3, out, 3), "ab");
	ck_assert_str_eq(mp_imap_printable(NULL, 3, out, 3), "");
}
END_TEST

/* Random and mutated input must never crash, leak or break a bound. */
START_TEST(random_input)
{
	static const char alphabet[] = "* ()[]{}\"\\\r\n0123456789AOKNIL+";
	unsigned seed = 12345;
	int round;

	for (round = 0; round < 20000; round++) {
		char in[96];
		size_t n, i, pos = 0;
		mp_imap_reader *rd;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % sizeof in;
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (seed >> 20) % 8 == 0 ? (char)(seed >> 8)
			                              : alphabet[(seed >> 16) % (sizeof alphabet - 1)];
		}
		ck_assert_int_eq(mp_imap_reader_new(4, &rd), MP_OK);
		while (pos < n) {
			mp_imap_response *r;
			size_t used, k;

			if (mp_imap_reader_feed(rd, in + pos, n - pos, &used, &r) != MP_OK)
				break;
			ck_assert_uint_le(used, n - pos);
			pos += used;
			if (!r)
				break;
			ck_assert_uint_ge(r->nitems, 1);
			for (k = 0; k < r->nitems; k++) {
				ck_assert_uint_gt(r->items[k].end, k);
				ck_assert_uint_le(r->items[k].end, r->nitems);
			}
			mp_imap_response_free(r);
		}
		mp_imap_reader_free(rd);
	}
}
END_TEST

static Suite *
imap_parse_suite(void)
{
	Suite *s = suite_create("imap_parse");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, tagged_status);
	tcase_add_test(tc, untagged_status);
	tcase_add_test(tc, continuation);
	tcase_add_test(tc, untagged_data);
	tcase_add_test(tc, fetch_literal);
	tcase_add_test(tc, literal_with_nul_and_lf);
	tcase_add_test(tc, quoted_nil_lists);
	tcase_add_test(tc, bracketed_sections);
	tcase_add_test(tc, depth_bound);
	tcase_add_test(tc, syntax_errors);
	tcase_add_test(tc, line_bound);
	tcase_add_test(tc, literal_count_bound);
	tcase_add_test(tc, oversize_literal);
	tcase_add_test(tc, huge_literal_size);
	tcase_add_test(tc, streaming);
	tcase_add_test(tc, sticky_error);
	tcase_add_test(tc, numbers);
	tcase_add_test(tc, quote);
	tcase_add_test(tc, printable);
	tcase_add_test(tc, random_input);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(imap_parse_suite)
