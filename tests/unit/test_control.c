/*
 * test_control.c - unit tests for the control protocol (lib/control.c).
 *
 * Every command in the human and the JSON format against a real shared
 * memory table holding entries with random identities (one of them with
 * quotes, backslashes, control characters, a bidi override and invalid
 * UTF-8 in its name and address), every kind of error answer, the
 * answer framing (status line, final ".", one JSON line), expire with
 * now/max_age, and a few thousand random request lines.  JSON is checked
 * by a small strict RFC 8259 well-formedness checker below (itself
 * tested), not by pattern matching alone.
 */
#include "testutil.h"

#include "mailpunch/block.h"
#include "mailpunch/control.h"
#include "mailpunch/error.h"
#include "mailpunch/keys.h"
#include "mailpunch/table.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#define NOW 1800000000ULL   /* 2027-01-15T08:00:00Z */
#define LIFETIME 3600

#include "jsoncheck.h"

START_TEST(test_json_checker)
{
	static const char *const good[] = {
		"{}", "{\"a\":1}", "{\"a\":[1,-2.5e+3,true,false,null,\"x\"]}",
		"{\"\\u00e9\\\"\\\\\\/\\b\\f\\n\\r\\t\":{}}", "{\"caf\xc3\xa9\":\"\xf0\x9f\x98\x80\"}",
	};
	static const char *const bad[] = {
		"", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1}x", "{'a':1}",
		"{\"a\":01}", "{\"a\":\"\x01\"}", "{\"a\":\"\\x41\"}", "{\"a\":\"\\u12\"}",
		"{\"a\":\"\xff\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xc0\xaf\"}", "{\"a\":tru}", "{\"a\":\"x}", "{\"a\":1 \"b\":2}",
	};
	size_t i;

	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		ck_assert_msg(json_object_ok(good[i], strlen(good[i])), "rejected %s", good[i]);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(!json_object_ok(bad[i], strlen(bad[i])), "accepted %s", bad[i]);
	ck_assert(!json_object_ok("{\"a\":\"\0\"}", 8));
}
END_TEST

/* ---------------------------------------------------------------- fixture */

static mp_table *table;
static char shm_name[64];
static mp_control_ctx ctx;

typedef struct who {
	mp_uid uid;
	char text[MP_UID_TEXT_LEN + 1];
} who;

static who alice, bob, carol, nasty;

/* quote, backslash, SOH, ESC, DEL, invalid UTF-8 (lone 0xff, truncated
 * 0xc3), valid U+00E9, a right-to-left override U+202E */
static const char nasty_name[] = "Q\"B\\C\x01" "E\x1b[31m" "D\x7f" "X\xff" "Y\xc3" "\xc3\xa9" "\xe2\x80\xae" "end";
static const char nasty_addr[] = "\"odd\\\"\"@example.org";

static void
add_entry(who *w, const char *name, const char *addr, uint64_t time, uint8_t flags, int ncand)
{
	mp_table_entry e;
	int was_new = 0;

	memset(&e, 0, sizeof e);
	ck_assert_int_eq(getrandom(&e.id, sizeof e.id, 0), (ssize_t)sizeof e.id);
	mp_pubid_uid(&e.id, &e.uid);
	snprintf(e.name, sizeof e.name, "%s", name);
	snprintf(e.reply_addr, sizeof e.reply_addr, "%s", addr);
	e.time = time;
	e.flags = flags;
	e.ep.nat.mapping = MP_NAT_INDEPENDENT;
	e.ep.nat.filtering = MP_NAT_ADDR_PORT_DEP;
	e.ep.nat.allocation = MP_ALLOC_SEQUENTIAL;
	e.ep.nat.delta = 2;
	if (ncand > 0)
		ck_assert_int_eq(mp_candidate_parse("203.0.113.7:4500", MP_CAND_SRFLX,
		                                    &e.ep.cand[e.ep.ncand++]), MP_OK);
	if (ncand > 1)
		ck_assert_int_eq(mp_candidate_parse("[2001:db8::1]:4501", MP_CAND_LOCAL,
		                                    &e.ep.cand[e.ep.ncand++]), MP_OK);
	ck_assert_int_eq(mp_table_upsert(table, &e, &was_new), MP_OK);
	ck_assert_int_eq(was_new, 1);
	w->uid = e.uid;
	mp_uid_format(&e.uid, w->text);
}

/* Recency order is insertion order: the list shows alice, nasty, bob,
 * carol.  carol is older than LIFETIME, bob is flagged. */
static void
setup(void)
{
	snprintf(shm_name, sizeof shm_name, "/mp-test-control-%ld", (long)getpid());
	mp_table_shm_unlink(shm_name);
	ck_assert_int_eq(mp_table_shm_open(shm_name, 64, MP_TABLE_CREATE, 0600, &table), MP_OK);
	add_entry(&carol, "Carol", "carol@example.net", NOW - 7200, 0, 1);
	add_entry(&bob, "Bob", "bob@example.com", NOW - 600, MP_PEER_FAILED, 0);
	add_entry(&nasty, nasty_name, nasty_addr, NOW - 60, 0, 2);
	add_entry(&alice, "Alice", "alice@example.org", NOW - 30, 0, 2);
	mp_table_count(table, MP_STAT_REQUESTS, 7);
	mp_table_count(table, MP_STAT_EVICTIONS, 3);
	ctx.table = table;
	ctx.max_age = LIFETIME;
	ctx.now = NOW;
}

static void
teardown(void)
{
	mp_table_close(table);
	mp_table_shm_unlink(shm_name);
	table = NULL;
}

/* ---------------------------------------------------------------- helpers */

typedef struct reply {
	char *raw;
	size_t len;
	char status[256];
	char *body;         /* body lines, dot-stuffing undone, NUL-terminated */
	size_t body_len;
	int nlines;
} reply;

/* Runs one request and checks the framing every answer must have. */
static void
exec_len(const char *req, size_t len, reply *r)
{
	size_t i, start, end;

	memset(r, 0, sizeof *r);
	ck_assert_int_eq(mp_control_exec(&ctx, req, len, &r->raw, &r->len), MP_OK);
	ck_assert_ptr_nonnull(r->raw);
	ck_assert_uint_eq(strlen(r->raw), r->len);
	ck_assert_msg(r->len >= 5 && memcmp(r->raw + r->len - 3, "\n.\n", 3) == 0,
	              "answer does not end with a dot line: %s", r->raw);
	ck_assert_msg(strncmp(r->raw, "OK\n", 3) == 0 || strncmp(r->raw, "ERR ", 4) == 0,
	              "bad status line: %s", r->raw);
	end = (size_t)(strchr(r->raw, '\n') - r->raw);
	ck_assert_uint_lt(end, sizeof r->status);
	memcpy(r->status, r->raw, end);
	r->status[end] = '\0';
	r->body = malloc(r->len + 1);
	ck_assert_ptr_nonnull(r->body);
	/* body: from after the status line to before the final ".\n" */
	for (start = end + 1; start < r->len - 2; start = i + 1) {
		const char *line = r->raw + start;

		i = (size_t)(strchr(line, '\n') - r->raw);
		ck_assert_msg(!(i - start == 1 && line[0] == '.'), "early dot line");
		if (line[0] == '.')
			line++;   /* undo dot-stuffing */
		memcpy(r->body + r->body_len, line, (size_t)(r->raw + i - line) + 1);
		r->body_len += (size_t)(r->raw + i - line) + 1;
		r->nlines++;
	}
	r->body[r->body_len] = '\0';
}

static void
exec_req(const char *req, reply *r)
{
	exec_len(req, strlen(req), r);
}

static void
reply_free(reply *r)
{
	free(r->raw);
	free(r->body);
}

/* A JSON answer: exactly one body line, a valid JSON object. */
static void
check_json(const reply *r)
{
	ck_assert_int_eq(r->nlines, 1);
	ck_assert_msg(json_object_ok(r->body, r->body_len - 1), "invalid JSON: %s", r->body);
}

static void
check_ok(const char *req, reply *r)
{
	exec_req(req, r);
	ck_assert_msg(strcmp(r->status, "OK") == 0, "%s -> %s", req, r->status);
	if (strncasecmp(req, "json", 4) == 0)
		check_json(r);
}

/* An error answer with the code, in both formats. */
static void
check_err_len(const char *req, size_t len, const char *code)
{
	char prefix[64], *jreq;
	reply r;

	snprintf(prefix, sizeof prefix, "ERR %s ", code);
	exec_len(req, len, &r);
	ck_assert_msg(strncmp(r.status, prefix, strlen(prefix)) == 0, "'%.*s' -> %s",
	              (int)(len > 60 ? 60 : len), req, r.status);
	ck_assert_uint_gt(strlen(r.status), strlen(prefix));
	ck_assert_int_eq(r.nlines, 0);
	reply_free(&r);

	ck_assert_ptr_nonnull(jreq = malloc(len + 5));
	memcpy(jreq, "json ", 5);
	if (len > 0)
		memcpy(jreq + 5, req, len);
	exec_len(jreq, len + 5, &r);
	ck_assert_msg(strncmp(r.status, prefix, strlen(prefix)) == 0, "json '%.*s' -> %s",
	              (int)(len > 60 ? 60 : len), req, r.status);
	check_json(&r);
	snprintf(prefix, sizeof prefix, "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
	ck_assert_msg(strncmp(r.body, prefix, strlen(prefix)) == 0, "%s", r.body);
	reply_free(&r);
	free(jreq);
}

static void
check_err(const char *req, const char *code)
{
	check_err_len(req, strlen(req), code);
}

/* Line of the body that contains needle, or NULL. */
static const char *
body_line(const reply *r, const char *needle, char *buf, size_t len)
{
	const char *p = strstr(r->body, needle), *s, *e;

	if (!p)
		return NULL;
	for (s = p; s > r->body && s[-1] != '\n'; s--)
		;
	e = strchr(p, '\n');
	snprintf(buf, len, "%.*s", (int)(e - s), s);
	return buf;
}

/* ---------------------------------------------------------------- commands */

START_TEST(test_help)
{
	reply r;

	check_ok("help", &r);
	ck_assert_ptr_nonnull(strstr(r.body, "list [N]"));
	ck_assert_ptr_nonnull(strstr(r.body, "show USERID"));
	ck_assert_ptr_nonnull(strstr(r.body, "flush"));
	reply_free(&r);
	check_ok("json help", &r);
	ck_assert_ptr_nonnull(strstr(r.body, "{\"commands\":[{\"usage\":\"list [N]\""));
	ck_assert_ptr_nonnull(strstr(r.body, "\"usage\":\"unflag USERID\""));
	reply_free(&r);
}
END_TEST

START_TEST(test_list_human)
{
	reply r;
	char line[1024];
	const char *a, *n, *b, *c, *hdr;
	size_t col;

	check_ok("list", &r);
	ck_assert_int_eq(r.nlines, 6);   /* header, 4 rows, summary */
	hdr = r.body;
	ck_assert_msg(strncmp(hdr, "USER ID", 7) == 0, "%s", r.body);
	a = strstr(r.body, alice.text);
	n = strstr(r.body, nasty.text);
	b = strstr(r.body, bob.text);
	c = strstr(r.body, carol.text);
	ck_assert(a && n && b && c);
	ck_assert(a < n && n < b && b < c);   /* newest first */
	ck_assert_ptr_nonnull(body_line(&r, alice.text, line, sizeof line));
	ck_assert_ptr_nonnull(strstr(line, "Alice"));
	ck_assert_ptr_nonnull(strstr(line, " 30s "));
	ck_assert_ptr_nonnull(strstr(line, " - "));
	ck_assert_ptr_nonnull(strstr(line, " live "));
	ck_assert_ptr_nonnull(strstr(line, "alice@example.org"));
	ck_assert_ptr_nonnull(strstr(line, "203.0.113.7:4500 [2001:db8::1]:4501"));
	body_line(&r, bob.text, line, sizeof line);
	ck_assert_ptr_nonnull(strstr(line, " F "));
	ck_assert_ptr_nonnull(strstr(line, " 10m00s "));
	ck_assert_ptr_nonnull(strstr(line, "bob@example.com"));
	body_line(&r, carol.text, line, sizeof line);
	ck_assert_ptr_nonnull(strstr(line, " expired "));
	ck_assert_ptr_nonnull(strstr(line, " 2h00m "));
	/* columns aligned: "AGE" starts where every row's age starts */
	col = (size_t)(strstr(hdr, "AGE") - hdr);
	body_line(&r, alice.text, line, sizeof line);
	ck_assert_msg(strncmp(line + col, "30s", 3) == 0, "%s", line);
	body_line(&r, carol.text, line, sizeof line);
	ck_assert_msg(strncmp(line + col, "2h00m", 5) == 0, "%s", line);
	/* the nasty name is shown escaped: no control byte reaches the terminal */
	body_line(&r, nasty.text, line, sizeof line);
	ck_assert_msg(strstr(line, "Q\"B\\\\C\\x01E\\x1b[31mD\\x7fX\\xffY\\xc3\xc3\xa9\\u202eend") != NULL,
	              "%s", line);
	for (const char *p = r.body; *p; p++)
		ck_assert_msg((unsigned char)*p >= 0x20 || *p == '\n', "control byte in %s", r.body);
	ck_assert_ptr_nonnull(strstr(r.body, "4 of 4 entries, newest first\n"));
	reply_free(&r);

	check_ok("list 2", &r);
	ck_assert_int_eq(r.nlines, 4);
	ck_assert_ptr_nonnull(strstr(r.body, alice.text));
	ck_assert_ptr_nonnull(strstr(r.body, nasty.text));
	ck_assert_ptr_null(strstr(r.body, bob.text));
	ck_assert_ptr_nonnull(strstr(r.body, "2 of 4 entries"));
	reply_free(&r);

	check_ok("list 10000", &r);
	ck_assert_int_eq(r.nlines, 6);
	reply_free(&r);
	check_ok("LIST\t0003\r\n", &r);
	ck_assert_int_eq(r.nlines, 5);
	reply_free(&r);

	ck_assert_int_eq(mp_table_flush(table), MP_OK);
	check_ok("list", &r);
	ck_assert_str_eq(r.body, "no entries\n");
	reply_free(&r);
}
END_TEST

START_TEST(test_list_json)
{
	reply r;
	char want[256];
	const char *a, *n, *b, *c;

	check_ok("json list", &r);
	ck_assert_msg(strncmp(r.body, "{\"total\":4,\"entries\":[{", 23) == 0, "%s", r.body);
	a = strstr(r.body, alice.text);
	n = strstr(r.body, nasty.text);
	b = strstr(r.body, bob.text);
	c = strstr(r.body, carol.text);
	ck_assert(a && n && b && c && a < n && n < b && b < c);
	snprintf(want, sizeof want, "{\"uid\":\"%s\",\"name\":\"Alice\",\"time\":%llu,\"age\":30,"
	         "\"failed\":false,\"live\":true,\"reply_addr\":\"alice@example.org\","
	         "\"candidates\":[{\"kind\":\"srflx\",\"addr\":\"203.0.113.7:4500\"},"
	         "{\"kind\":\"local\",\"addr\":\"[2001:db8::1]:4501\"}]}", alice.text,
	         (unsigned long long)(NOW - 30));
	ck_assert_msg(strstr(r.body, want) != NULL, "%s", r.body);
	snprintf(want, sizeof want, "\"uid\":\"%s\",\"name\":\"Bob\",\"time\":%llu,\"age\":600,"
	         "\"failed\":true,\"live\":true,", bob.text, (unsigned long long)(NOW - 600));
	ck_assert_msg(strstr(r.body, want) != NULL, "%s", r.body);
	snprintf(want, sizeof want, "\"uid\":\"%s\",\"name\":\"Carol\",\"time\":%llu,\"age\":7200,"
	         "\"failed\":false,\"live\":false,", carol.text, (unsigned long long)(NOW - 7200));
	ck_assert_msg(strstr(r.body, want) != NULL, "%s", r.body);
	/* escaping of the nasty name and address */
	ck_assert_msg(strstr(r.body, "\"name\":\"Q\\\"B\\\\C\\u0001E\\u001b[31mD\\u007fX\\u00ffY\\u00c3"
	                     "\xc3\xa9\xe2\x80\xae" "end\"") != NULL, "%s", r.body);
	ck_assert_ptr_nonnull(strstr(r.body, "\"reply_addr\":\"\\\"odd\\\\\\\"\\\"@example.org\""));
	reply_free(&r);

	check_ok("JSON list 1", &r);
	ck_assert_ptr_nonnull(strstr(r.body, alice.text));
	ck_assert_ptr_null(strstr(r.body, nasty.text));
	reply_free(&r);

	ck_assert_int_eq(mp_table_flush(table), MP_OK);
	check_ok("json list", &r);
	ck_assert_str_eq(r.body, "{\"total\":0,\"entries\":[]}\n");
	reply_free(&r);
}
END_TEST

START_TEST(test_show)
{
	reply r;
	char req[128], pub[MP_PUBID_TEXT_MAX], want[512], upper[MP_UID_TEXT_LEN + 1];
	mp_table_entry e;
	size_t i;

	ck_assert_int_eq(mp_table_get(table, &alice.uid, &e), MP_OK);
	ck_assert_int_eq(mp_pubid_format(&e.id, pub, sizeof pub), MP_OK);

	snprintf(req, sizeof req, "show %s", alice.text);
	check_ok(req, &r);
	snprintf(want, sizeof want, "user ID:          %s\n", alice.text);
	ck_assert_msg(strstr(r.body, want) != NULL, "%s", r.body);
	snprintf(want, sizeof want, "identity:         %s\n", pub);
	ck_assert_ptr_nonnull(strstr(r.body, want));
	ck_assert_ptr_nonnull(strstr(r.body, "name:             Alice\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "reply address:    alice@example.org\n"));
	ck_assert_msg(strstr(r.body, "last request:     2027-01-15T07:59:30Z (30s ago)\n") != NULL,
	              "%s", r.body);
	ck_assert_ptr_nonnull(strstr(r.body, "state:            live (lifetime 1h00m)\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "flags:            -\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "NAT mapping:      endpoint-independent\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "NAT filtering:    address-and-port-dependent\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "port allocation:  sequential (delta +2)\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "candidate 1:      203.0.113.7:4500 (srflx)\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "candidate 2:      [2001:db8::1]:4501 (local)\n"));
	reply_free(&r);

	/* user IDs are accepted in upper case too */
	for (i = 0; i <= MP_UID_TEXT_LEN; i++)
		upper[i] = (char)toupper((unsigned char)alice.text[i]);
	snprintf(req, sizeof req, "json show %s", upper);
	check_ok(req, &r);
	snprintf(want, sizeof want, "{\"entry\":{\"uid\":\"%s\",\"name\":\"Alice\",\"identity\":\"%s\","
	         "\"time\":%llu,\"age\":30,\"time_iso\":\"2027-01-15T07:59:30Z\",\"future\":false,"
	         "\"flags\":0,\"failed\":false,\"live\":true,\"reply_addr\":\"alice@example.org\",",
	         alice.text, pub, (unsigned long long)(NOW - 30));
	ck_assert_msg(strncmp(r.body, want, strlen(want)) == 0, "%s\n%s", r.body, want);
	ck_assert_ptr_nonnull(strstr(r.body, "\"nat\":{\"mapping\":\"endpoint-independent\","
	                             "\"filtering\":\"address-and-port-dependent\","
	                             "\"allocation\":\"sequential\",\"delta\":2}}}\n"));
	reply_free(&r);

	snprintf(req, sizeof req, "show %s", bob.text);
	check_ok(req, &r);
	ck_assert_ptr_nonnull(strstr(r.body, "flags:            F "));
	ck_assert_ptr_nonnull(strstr(r.body, "candidates:       none\n"));
	reply_free(&r);

	snprintf(req, sizeof req, "show %s", carol.text);
	check_ok(req, &r);
	ck_assert_ptr_nonnull(strstr(r.body, "state:            expired (lifetime 1h00m)\n"));
	reply_free(&r);

	snprintf(req, sizeof req, "json show %s", nasty.text);
	check_ok(req, &r);
	ck_assert_ptr_nonnull(strstr(r.body, "\"name\":\"Q\\\"B\\\\C\\u0001E\\u001b[31m"));
	reply_free(&r);
	snprintf(req, sizeof req, "show %s", nasty.text);
	check_ok(req, &r);
	for (const char *p = r.body; *p; p++)
		ck_assert((unsigned char)*p >= 0x20 || *p == '\n');
	ck_assert_ptr_nonnull(strstr(r.body, "reply address:    \"odd\\\\\"\"@example.org\n"));
	reply_free(&r);

	/* a clock that went back: the entry is from the future */
	ctx.now = NOW - 100;
	snprintf(req, sizeof req, "show %s", alice.text);
	check_ok(req, &r);
	ck_assert_ptr_nonnull(strstr(r.body, "(in the future)"));
	reply_free(&r);
	snprintf(req, sizeof req, "json show %s", alice.text);
	check_ok(req, &r);
	ck_assert_ptr_nonnull(strstr(r.body, "\"age\":0,"));
	ck_assert_ptr_nonnull(strstr(r.body, "\"future\":true,"));
	reply_free(&r);

	/* no lifetime: everything is live */
	ctx.now = NOW;
	ctx.max_age = 0;
	snprintf(req, sizeof req, "show %s", carol.text);
	check_ok(req, &r);
	ck_assert_ptr_nonnull(strstr(r.body, "state:            live (no lifetime configured)\n"));
	reply_free(&r);
}
END_TEST

START_TEST(test_stats)
{
	reply r;
	char want[128];
	size_t i;

	check_ok("stats", &r);
	ck_assert_msg(strncmp(r.body, "entries ", 8) == 0, "%s", r.body);
	ck_assert_int_eq(r.nlines, 2 + MP_STAT_COUNT);
	ck_assert_ptr_nonnull(strstr(r.body, "capacity"));
	for (i = 0; i < MP_STAT_COUNT; i++) {
		snprintf(want, sizeof want, "\n%s ", mp_stat_name((mp_stat)i));
		ck_assert_msg(strstr(r.body, want) != NULL, "no %s in %s", want, r.body);
	}
	ck_assert_msg(strstr(r.body, "\nrequests ") && strstr(r.body, " 7\nreplies "), "%s", r.body);
	/* values aligned in one column: each starts after the same gap */
	{
		const char *l = r.body;
		long col = -1;

		while (*l) {
			const char *nl = strchr(l, '\n'), *v = nl;

			while (v > l && v[-1] >= '0' && v[-1] <= '9')
				v--;
			ck_assert(v < nl && v[-1] == ' ' && v[-2] == ' ');
			if (col < 0)
				col = v - l;
			ck_assert_int_eq(v - l, col);
			l = nl + 1;
		}
	}
	reply_free(&r);

	check_ok("json stats", &r);
	ck_assert_ptr_nonnull(strstr(r.body, "{\"stats\":{\"requests\":7,"));
	ck_assert_ptr_nonnull(strstr(r.body, "\"evictions\":3,"));
	for (i = 0; i < MP_STAT_COUNT; i++) {
		snprintf(want, sizeof want, "\"%s\":", mp_stat_name((mp_stat)i));
		ck_assert_msg(strstr(r.body, want) != NULL, "no %s in %s", want, r.body);
	}
	ck_assert_msg(strstr(r.body, "},\"entries\":4,\"capacity\":") != NULL, "%s", r.body);
	reply_free(&r);
}
END_TEST

START_TEST(test_delete_flag_unflag)
{
	reply r;
	char req[128], want[128];
	mp_table_entry e;

	snprintf(req, sizeof req, "flag %s", alice.text);
	check_ok(req, &r);
	snprintf(want, sizeof want, "flagged %s as failed\n", alice.text);
	ck_assert_str_eq(r.body, want);
	reply_free(&r);
	ck_assert_int_eq(mp_table_get(table, &alice.uid, &e), MP_OK);
	ck_assert_uint_eq(e.flags & MP_PEER_FAILED, MP_PEER_FAILED);
	snprintf(req, sizeof req, "json unflag %s", alice.text);
	check_ok(req, &r);
	ck_assert_str_eq(r.body, "{\"unflagged\":1}\n");
	reply_free(&r);
	ck_assert_int_eq(mp_table_get(table, &alice.uid, &e), MP_OK);
	ck_assert_uint_eq(e.flags & MP_PEER_FAILED, 0);
	snprintf(req, sizeof req, "json flag %s", alice.text);
	check_ok(req, &r);
	ck_assert_str_eq(r.body, "{\"flagged\":1}\n");
	reply_free(&r);
	snprintf(req, sizeof req, "unflag %s", bob.text);
	check_ok(req, &r);
	snprintf(want, sizeof want, "unflagged %s\n", bob.text);
	ck_assert_str_eq(r.body, want);
	reply_free(&r);
	ck_assert_int_eq(mp_table_get(table, &bob.uid, &e), MP_OK);
	ck_assert_uint_eq(e.flags, 0);

	snprintf(req, sizeof req, "delete %s", carol.text);
	check_ok(req, &r);
	snprintf(want, sizeof want, "deleted %s\n", carol.text);
	ck_assert_str_eq(r.body, want);
	reply_free(&r);
	ck_assert_int_eq(mp_table_get(table, &carol.uid, &e), MP_ERR_NOTFOUND);
	snprintf(req, sizeof req, "json delete %s", bob.text);
	check_ok(req, &r);
	ck_assert_str_eq(r.body, "{\"deleted\":1}\n");
	reply_free(&r);

	/* gone now: notfound, naming the ID */
	snprintf(req, sizeof req, "delete %s", bob.text);
	exec_req(req, &r);
	snprintf(want, sizeof want, "ERR notfound no entry for user ID %s", bob.text);
	ck_assert_str_eq(r.status, want);
	reply_free(&r);
}
END_TEST

START_TEST(test_expire)
{
	reply r;

	check_ok("expire", &r);
	ck_assert_str_eq(r.body, "expired 1 entry (older than 1h00m)\n");
	reply_free(&r);
	check_ok("json expire", &r);
	ck_assert_str_eq(r.body, "{\"expired\":0}\n");
	reply_free(&r);
	/* exactly max_age old is still live (bob: 600 s) */
	ctx.max_age = 600;
	check_ok("json expire", &r);
	ck_assert_str_eq(r.body, "{\"expired\":0}\n");
	reply_free(&r);
	ctx.max_age = 599;
	check_ok("expire", &r);
	ck_assert_str_eq(r.body, "expired 1 entry (older than 9m59s)\n");
	reply_free(&r);
	/* time passes: nasty (60 s) and alice (30 s) become old */
	ctx.max_age = 40;
	check_ok("expire", &r);
	ck_assert_str_eq(r.body, "expired 1 entry (older than 40s)\n");
	reply_free(&r);
	ctx.now = NOW + 1000;
	check_ok("json expire", &r);
	ck_assert_str_eq(r.body, "{\"expired\":1}\n");
	reply_free(&r);
	check_ok("json list", &r);
	ck_assert_str_eq(r.body, "{\"total\":0,\"entries\":[]}\n");
	reply_free(&r);
	/* no lifetime configured: nothing expires */
	add_entry(&carol, "Carol", "carol@example.net", 1, 0, 0);
	ctx.max_age = 0;
	check_ok("expire", &r);
	ck_assert_str_eq(r.body, "expired 0 entries (no lifetime configured)\n");
	reply_free(&r);
	check_ok("json expire", &r);
	ck_assert_str_eq(r.body, "{\"expired\":0}\n");
	reply_free(&r);
}
END_TEST

START_TEST(test_expire_many)
{
	reply r;
	who w;
	int i;

	ck_assert_int_eq(mp_table_flush(table), MP_OK);
	for (i = 0; i < 50; i++)
		add_entry(&w, "x", "x@example.org", NOW - (uint64_t)i * 100, 0, 0);
	ctx.max_age = 1000;   /* ages 0..4900: 1100..4900 are too old */
	check_ok("expire", &r);
	ck_assert_str_eq(r.body, "expired 39 entries (older than 16m40s)\n");
	reply_free(&r);
	check_ok("json stats", &r);
	ck_assert_ptr_nonnull(strstr(r.body, "\"entries\":11,"));
	reply_free(&r);
}
END_TEST

START_TEST(test_flush)
{
	reply r;

	check_ok("flush", &r);
	ck_assert_str_eq(r.body, "flushed 4 entries\n");
	reply_free(&r);
	check_ok("json flush", &r);
	ck_assert_str_eq(r.body, "{\"flushed\":0}\n");
	reply_free(&r);
	add_entry(&alice, "Alice", "alice@example.org", NOW, 0, 0);
	check_ok("flush", &r);
	ck_assert_str_eq(r.body, "flushed 1 entry\n");
	reply_free(&r);
	check_ok("json list", &r);
	ck_assert_str_eq(r.body, "{\"total\":0,\"entries\":[]}\n");
	reply_free(&r);
}
END_TEST

START_TEST(test_full_table)
{
	reply r;
	who w;
	int i;

	/* a list never holds more than the table does, however big N is */
	for (i = 0; i < 80; i++)
		add_entry(&w, "filler", "f@example.org", NOW, 0, 1);
	check_ok("json list 10000", &r);
	ck_assert_ptr_nonnull(strstr(r.body, "{\"total\":64,"));
	reply_free(&r);
	check_ok("list 10000", &r);
	ck_assert_int_eq(r.nlines, 66);
	ck_assert_ptr_nonnull(strstr(r.body, "64 of 64 entries"));
	reply_free(&r);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_errors)
{
	char req[2048], bad[64];

	/* unknown command, empty lines */
	check_err("frobnicate", "usage");
	check_err("lists", "usage");
	check_err("", "usage");
	check_err("\n", "usage");
	check_err("\r\n", "usage");
	check_err("   \t ", "usage");
	check_err_len(NULL, 0, "usage");

	/* missing or malformed user ID */
	check_err("show", "usage");
	check_err("delete  ", "usage");
	check_err("flag\n", "usage");
	check_err("unflag", "usage");
	check_err("show abc", "badid");
	check_err("show aaaaaaaaaaaaaaaaaaaaaaaaaa1", "badid");    /* 27 chars */
	check_err("show aaaaaaaaaaaaaaaaaaaaaaaa1", "badid");      /* 25 chars */
	check_err("show aaaaaaaaaaaaaaaaaaaaaaaa18", "badid");     /* '1','8' not base32 */
	check_err("delete aaaaaaaaaaaaaaaaaaaaaaaaab", "badid");   /* non-canonical last char */
	check_err("show mpu1.AAAA", "badid");

	/* unknown user */
	check_err("show aaaaaaaaaaaaaaaaaaaaaaaaaa", "notfound");
	check_err("delete aaaaaaaaaaaaaaaaaaaaaaaaaa", "notfound");
	check_err("flag aaaaaaaaaaaaaaaaaaaaaaaaaa", "notfound");
	check_err("unflag aaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", "notfound");

	/* trailing garbage */
	check_err("stats now", "usage");
	check_err("help me", "usage");
	check_err("flush all", "usage");
	check_err("expire 10", "usage");
	check_err("list 5 6", "usage");
	snprintf(req, sizeof req, "show %s extra", alice.text);
	check_err(req, "usage");
	snprintf(req, sizeof req, "delete %s %s", alice.text, bob.text);
	check_err(req, "usage");
	check_err("list 1 2 3 4 5 6 7 8", "usage");

	/* bad counts */
	check_err("list 0", "usage");
	check_err("list 10001", "usage");
	check_err("list -1", "usage");
	check_err("list +5", "usage");
	check_err("list 5x", "usage");
	check_err("list 99999999999999999999999999999", "usage");

	/* bytes that have no place in a request */
	check_err("list\x01", "usage");
	check_err_len("list\0 5", 7, "usage");
	check_err("list \xc3\xa9", "usage");
	check_err("stats\x7f", "usage");
	check_err("stats\n\n", "usage");
	check_err("stats\nlist", "usage");
	check_err("stats\r", "usage");   /* CR alone is not a line end... */
	/* ...but CR LF is, and so is LF */
	{
		reply r;
		check_ok("stats\r\n", &r);
		reply_free(&r);
		check_ok("stats\n", &r);
		reply_free(&r);
	}

	/* too long: MP_CONTROL_LINE_MAX bytes pass, one more does not */
	memset(req, ' ', sizeof req);
	memcpy(req, "stats", 5);
	req[MP_CONTROL_LINE_MAX - 1] = '\n';
	{
		reply r;
		exec_len(req, MP_CONTROL_LINE_MAX, &r);
		ck_assert_str_eq(r.status, "OK");
		reply_free(&r);
	}
	req[MP_CONTROL_LINE_MAX - 1] = ' ';
	req[MP_CONTROL_LINE_MAX] = '\n';
	check_err_len(req, MP_CONTROL_LINE_MAX + 1, "usage");
	check_err_len(req, sizeof req, "usage");

	/* the echoed word is cut short and stays on the status line */
	memset(bad, 'z', sizeof bad);
	snprintf(req, sizeof req, "%.*s", (int)sizeof bad, bad);
	check_err(req, "usage");
}
END_TEST

START_TEST(test_error_messages)
{
	reply r;

	exec_req("frobnicate now", &r);
	ck_assert_str_eq(r.status, "ERR usage unknown command 'frobnicate' (try 'help')");
	reply_free(&r);
	exec_req("json frob\"ni\\cate", &r);
	ck_assert_str_eq(r.status, "ERR usage unknown command 'frob\"ni\\cate' (try 'help')");
	ck_assert_str_eq(r.body, "{\"error\":{\"code\":\"usage\",\"message\":\"unknown command "
	                 "'frob\\\"ni\\\\cate' (try 'help')\"}}\n");
	reply_free(&r);
	exec_req("json", &r);
	ck_assert_str_eq(r.status, "ERR usage empty request (try 'help')");
	check_json(&r);
	reply_free(&r);
	exec_req("show x", &r);
	ck_assert_str_eq(r.status, "ERR badid 'x' is not a user ID (26 base32 characters)");
	reply_free(&r);
	exec_req("show", &r);
	ck_assert_str_eq(r.status, "ERR usage missing user ID (usage: show USERID)");
	reply_free(&r);
	exec_req("stats x", &r);
	ck_assert_str_eq(r.status, "ERR usage 'stats' takes no argument (got 'x')");
	reply_free(&r);
	exec_req("list 0", &r);
	ck_assert_str_eq(r.status, "ERR usage list: N must be a number from 1 to 10000, not '0'");
	reply_free(&r);
	exec_req("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", &r);
	ck_assert_str_eq(r.status, "ERR usage unknown command "
	                 "'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz' (try 'help')");
	reply_free(&r);
}
END_TEST

START_TEST(test_bad_arguments)
{
	char *out = NULL;
	size_t len = 0;
	mp_control_ctx none = { NULL, 0, NOW };

	ck_assert_int_eq(mp_control_exec(NULL, "stats", 5, &out, &len), MP_ERR_INVAL);
	ck_assert_int_eq(mp_control_exec(&ctx, "stats", 5, NULL, &len), MP_ERR_INVAL);
	ck_assert_int_eq(mp_control_exec(&ctx, "stats", 5, &out, NULL), MP_ERR_INVAL);
	ck_assert_int_eq(mp_control_exec(&ctx, NULL, 5, &out, &len), MP_ERR_INVAL);
	/* no table: an internal error answer, but help still works */
	ck_assert_int_eq(mp_control_exec(&none, "stats", 5, &out, &len), MP_OK);
	ck_assert_str_eq(out, "ERR internal no table attached\n.\n");
	free(out);
	ck_assert_int_eq(mp_control_exec(&none, "help", 4, &out, &len), MP_OK);
	ck_assert(strncmp(out, "OK\n", 3) == 0);
	free(out);
}
END_TEST

/* Names of every byte value, at full length, in both formats. */
START_TEST(test_all_bytes_in_names)
{
	mp_table_entry e;
	char name[MP_NAME_MAX + 1], req[128];
	reply r;
	int b, i;

	ck_assert_int_eq(mp_table_flush(table), MP_OK);
	for (b = 1; b < 256; b += MP_NAME_MAX) {
		who w;

		for (i = 0; i < MP_NAME_MAX; i++)
			name[i] = (char)(b + i > 255 ? 0xc3 : b + i);
		name[MP_NAME_MAX] = '\0';
		add_entry(&w, name, name, NOW, 0, 0);
		snprintf(req, sizeof req, "json show %s", w.text);
		check_ok(req, &r);
		reply_free(&r);
		snprintf(req, sizeof req, "show %s", w.text);
		check_ok(req, &r);
		for (const char *p = r.body; *p; p++)
			ck_assert((unsigned char)*p >= 0x20 || *p == '\n');
		reply_free(&r);
		ck_assert_int_eq(mp_table_get(table, &w.uid, &e), MP_OK);
	}
	check_ok("json list 100", &r);
	reply_free(&r);
	check_ok("list 100", &r);
	reply_free(&r);
}
END_TEST

/* Random request lines: any answer is well framed, JSON ones valid. */
START_TEST(test_random_lines)
{
	static const char *const words[] = {
		"json", "list", "show", "stats", "delete", "flag", "unflag", "expire",
		"help", " ", "\t", "\n", "\r", "5", "10000", "aaaaaaaaaaaaaaaaaaaaaaaaaa",
		"\"", "\\", "\xff", "\x00", ".", "JSON", "0",
	};
	char line[1100];
	uint8_t rnd[64];
	reply r;
	int iter;

	for (iter = 0; iter < 3000; iter++) {
		size_t len = 0, k;

		ck_assert_int_eq(getrandom(rnd, sizeof rnd, 0), (ssize_t)sizeof rnd);
		for (k = 0; k < (size_t)(1 + rnd[0] % 6) && len < sizeof line - 40; k++) {
			const char *w = words[rnd[k + 1] % (sizeof words / sizeof words[0])];
			size_t wl = *w ? strlen(w) : 1;

			memcpy(line + len, w, wl);
			len += wl;
			if (rnd[k + 10] & 1)
				line[len++] = ' ';
		}
		if (iter % 7 == 0)
			for (k = 0; k < 8 && len < sizeof line; k++)
				line[len++] = (char)rnd[k + 20];
		if (iter % 101 == 0)
			while (len < sizeof line)
				line[len++] = 'x';
		if (iter % 3 == 0) {
			memmove(line + 5, line, len > sizeof line - 5 ? sizeof line - 5 : len);
			memcpy(line, "json ", 5);
			len = len + 5 > sizeof line ? sizeof line : len + 5;
		}
		exec_len(line, len, &r);
		/* "json" then a blank or the line end asks for JSON */
		if ((len >= 4 && strncasecmp(line, "json", 4) == 0 &&
		     (len == 4 || line[4] == ' ' || line[4] == '\t' ||
		      (len == 5 && line[4] == '\n') ||
		      (len == 6 && line[4] == '\r' && line[5] == '\n'))) ||
		    r.body[0] == '{')
			check_json(&r);
		reply_free(&r);
	}
}
END_TEST

Suite *control_suite(void);

Suite *
control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_json_checker);
	tcase_add_test(tc, test_help);
	tcase_add_test(tc, test_list_human);
	tcase_add_test(tc, test_list_json);
	tcase_add_test(tc, test_show);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_delete_flag_unflag);
	tcase_add_test(tc, test_expire);
	tcase_add_test(tc, test_expire_many);
	tcase_add_test(tc, test_flush);
	tcase_add_test(tc, test_full_table);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_error_messages);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_test(tc, test_all_bytes_in_names);
	tcase_add_test(tc, test_random_lines);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(control_suite)
