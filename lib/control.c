/*
 * control.c - the operator's control protocol (see control.h and
 * docs/CONTROL.md): parse one request line, run it against the table,
 * render the answer as aligned text or as one JSON line.
 *
 * Interface: mp_control_exec() only.
 * Errors: every problem with the request or the table becomes an ERR
 * answer; only a failed allocation makes mp_control_exec() fail.
 *
 * The request comes from whoever can open the control socket and the
 * table text (names, addresses) comes from mail, so nothing here trusts
 * either: the request is length- and charset-checked before it is
 * tokenized, and every string from the table goes through an escaper
 * (json_str for JSON, human_str for text) that cannot emit a line end,
 * a terminal control sequence or, in JSON, invalid UTF-8.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mailpunch/block.h"
#include "mailpunch/control.h"
#include "mailpunch/error.h"
#include "mailpunch/keys.h"
#include "mailpunch/table.h"

/* An answer never approaches this (10000 entries of at most a few KiB
 * each); it only stops a runaway buffer, which then reads as NOMEM. */
#define OB_MAX ((size_t)256 << 20)

/* ---------------------------------------------------------------- buffer */

typedef struct obuf {
	char *p;
	size_t len, cap;
	int oom;            /* sticky: checked once at the end */
} obuf;

static int
ob_reserve(obuf *b, size_t more)
{
	size_t need, cap;
	char *np;

	if (b->oom)
		return -1;
	if (more > OB_MAX - b->len - 1) {
		b->oom = 1;
		return -1;
	}
	need = b->len + more + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > OB_MAX / 2 ? OB_MAX : cap * 2;
	if (!(np = realloc(b->p, cap))) {
		b->oom = 1;
		return -1;
	}
	b->p = np;
	b->cap = cap;
	return 0;
}

static void
ob_put(obuf *b, const char *s, size_t n)
{
	if (ob_reserve(b, n) != 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
ob_puts(obuf *b, const char *s)
{
	ob_put(b, s, strlen(s));
}

static void
ob_putc(obuf *b, char c)
{
	ob_put(b, &c, 1);
}

static void ob_printf(obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
ob_printf(obuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	if ((size_t)n < sizeof small) {
		ob_put(b, small, (size_t)n);
		return;
	}
	if (ob_reserve(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void
ob_pad(obuf *b, size_t n)
{
	while (n-- > 0)
		ob_putc(b, ' ');
}

/* ---------------------------------------------------------------- escaping */

/* Length (2..4) of the well-formed UTF-8 sequence at s, storing its code
 * point, or 0: overlong forms, surrogates and values past U+10FFFF are
 * refused, as RFC 3629 requires, so what passes is valid in JSON. */
static size_t
utf8_seq(const unsigned char *s, size_t n, unsigned long *cp)
{
	unsigned long c;
	size_t len, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) || c > 0x10ffff ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* The string in a fixed-size field: the table NUL-terminates, but a
 * corrupted or foreign entry must not make us read past the field. */
#define FIELD_LEN(f) strnlen((f), sizeof(f))

static void
json_str(obuf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k;
	unsigned long cp;

	ob_putc(b, '"');
	while (i < n) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			ob_putc(b, '\\');
			ob_putc(b, (char)c);
			i++;
		} else if (c >= 0x20 && c < 0x7f) {
			ob_putc(b, (char)c);
			i++;
		} else if (c >= 0x80 && (k = utf8_seq(s + i, n - i, &cp)) > 0) {
			ob_put(b, (const char *)s + i, k);
			i += k;
		} else {
			/* Control character, DEL, or a byte of invalid UTF-8,
			 * which then reads as its Latin-1 character. */
			ob_printf(b, "\\u%04x", (unsigned)c);
			i++;
		}
	}
	ob_putc(b, '"');
}

static void
json_cstr(obuf *b, const char *s)
{
	json_str(b, s, strlen(s));
}

/* Unicode characters that reorder or hide text on a terminal. */
static int
is_bidi_control(unsigned long cp)
{
	return cp == 0x061c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Writes text for a terminal; returns the columns it takes (one per
 * character: good enough to align names, which are mostly Latin).
 * Escapes are ASCII, so their width is their length. */
static size_t
human_str(obuf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k, width = 0;
	unsigned long cp;

	while (i < n) {
		unsigned char c = s[i];

		if (c == '\\') {
			ob_puts(b, "\\\\");
			width += 2;
			i++;
		} else if (c >= 0x20 && c < 0x7f) {
			ob_putc(b, (char)c);
			width++;
			i++;
		} else if (c >= 0x80 && (k = utf8_seq(s + i, n - i, &cp)) > 0) {
			/* C1 controls and bidi overrides are as dangerous on a
			 * terminal as ASCII controls. */
			if (cp < 0xa0 || is_bidi_control(cp)) {
				ob_printf(b, "\\u%04lx", cp);
				width += 6;
			} else {
				ob_put(b, (const char *)s + i, k);
				width++;
			}
			i += k;
		} else {
			ob_printf(b, "\\x%02x", (unsigned)c);
			width += 4;
			i++;
		}
	}
	return width;
}

/* ---------------------------------------------------------------- formats */

static const char *
cand_kind_name(int kind)
{
	switch (kind) {
	case MP_CAND_LOCAL: return "local";
	case MP_CAND_SRFLX: return "srflx";
	case MP_CAND_PREDICTED: return "predicted";
	}
	return "unknown";
}

static size_t
entry_ncand(const mp_table_entry *e)
{
	size_t n = e->ep.ncand;

	if (n > MP_TABLE_CAND)
		n = MP_TABLE_CAND;
	return n > MP_MAX_CANDIDATES ? MP_MAX_CANDIDATES : n;
}

static void
cand_text(const mp_candidate *c, char *buf, size_t len)
{
	if ((c->family != 4 && c->family != 6) || mp_candidate_format(c, buf, len) != MP_OK)
		snprintf(buf, len, "invalid");
}

/* "42s", "5m07s", "3h05m", "12d04h": readable and short for a column. */
static void
age_text(uint64_t s, char *buf, size_t len)
{
	unsigned long long v = s;

	if (v < 60)
		snprintf(buf, len, "%llus", v);
	else if (v < 3600)
		snprintf(buf, len, "%llum%02llus", v / 60, v % 60);
	else if (v < 86400)
		snprintf(buf, len, "%lluh%02llum", v / 3600, v % 3600 / 60);
	else
		snprintf(buf, len, "%llud%02lluh", v / 86400, v % 86400 / 3600);
}

/* ISO-8601 UTC; 0 for a time that is not representable (corrupt entry). */
static int
iso_time(uint64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt;

	if (t > 253402300799ULL)   /* 9999-12-31T23:59:59Z */
		return 0;
	tt = (time_t)t;
	if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return 0;
	return 1;
}

typedef struct entry_view {
	char uid[MP_UID_TEXT_LEN + 1];
	uint64_t age;
	int future;
	int live;
	int failed;
} entry_view;

static void
view_of(const mp_control_ctx *ctx, const mp_table_entry *e, entry_view *v)
{
	mp_uid_format(&e->uid, v->uid);
	v->future = e->time > ctx->now;
	v->age = v->future ? 0 : ctx->now - e->time;
	/* Same rule as mp_check_time(): older than max_age is expired. */
	v->live = ctx->max_age == 0 || v->age <= ctx->max_age;
	v->failed = (e->flags & MP_PEER_FAILED) != 0;
}

static void
json_candidates(obuf *b, const mp_table_entry *e)
{
	char text[64];
	size_t i, n = entry_ncand(e);

	ob_puts(b, "\"candidates\":[");
	for (i = 0; i < n; i++) {
		cand_text(&e->ep.cand[i], text, sizeof text);
		ob_printf(b, "%s{\"kind\":\"%s\",\"addr\":", i ? "," : "",
		          cand_kind_name(e->ep.cand[i].kind));
		json_cstr(b, text);
		ob_putc(b, '}');
	}
	ob_putc(b, ']');
}

static void
json_entry(obuf *b, const mp_control_ctx *ctx, const mp_table_entry *e, int full)
{
	entry_view v;
	char iso[32], pub[MP_PUBID_TEXT_MAX];

	view_of(ctx, e, &v);
	ob_printf(b, "{\"uid\":\"%s\",\"name\":", v.uid);
	json_str(b, e->name, FIELD_LEN(e->name));
	if (full) {
		if (mp_pubid_format(&e->id, pub, sizeof pub) == MP_OK) {
			ob_puts(b, ",\"identity\":");
			json_cstr(b, pub);
		} else {
			ob_puts(b, ",\"identity\":null");
		}
	}
	ob_printf(b, ",\"time\":%llu,\"age\":%llu", (unsigned long long)e->time,
	          (unsigned long long)v.age);
	if (full) {
		if (iso_time(e->time, iso, sizeof iso))
			ob_printf(b, ",\"time_iso\":\"%s\"", iso);
		else
			ob_puts(b, ",\"time_iso\":null");
		ob_printf(b, ",\"future\":%s,\"flags\":%u", v.future ? "true" : "false",
		          (unsigned)e->flags);
	}
	ob_printf(b, ",\"failed\":%s,\"live\":%s,\"reply_addr\":", v.failed ? "true" : "false",
	          v.live ? "true" : "false");
	json_str(b, e->reply_addr, FIELD_LEN(e->reply_addr));
	ob_putc(b, ',');
	json_candidates(b, e);
	if (full)
		ob_printf(b, ",\"nat\":{\"mapping\":\"%s\",\"filtering\":\"%s\","
		          "\"allocation\":\"%s\",\"delta\":%d}",
		          mp_nat_dep_name(e->ep.nat.mapping), mp_nat_dep_name(e->ep.nat.filtering),
		          mp_nat_alloc_name(e->ep.nat.allocation), (int)e->ep.nat.delta);
	ob_putc(b, '}');
}

/* ---------------------------------------------------------------- requests */

typedef enum arg_kind { ARG_NONE, ARG_COUNT, ARG_UID } arg_kind;

typedef enum cmd_id {
	CMD_LIST, CMD_SHOW, CMD_STATS, CMD_DELETE, CMD_FLAG, CMD_UNFLAG,
	CMD_EXPIRE, CMD_FLUSH, CMD_HELP,
} cmd_id;

typedef struct cmd_def {
	const char *name;
	cmd_id id;
	arg_kind arg;
	const char *usage;
	const char *what;
} cmd_def;

static const cmd_def commands[] = {
	{ "list", CMD_LIST, ARG_COUNT, "list [N]",
	  "the N newest entries, newest first (default 20, at most 10000)" },
	{ "show", CMD_SHOW, ARG_UID, "show USERID", "everything about one entry" },
	{ "stats", CMD_STATS, ARG_NONE, "stats", "counters, entries and capacity" },
	{ "delete", CMD_DELETE, ARG_UID, "delete USERID", "remove one entry" },
	{ "flag", CMD_FLAG, ARG_UID, "flag USERID", "mark an entry as failed" },
	{ "unflag", CMD_UNFLAG, ARG_UID, "unflag USERID", "clear an entry's failed mark" },
	{ "expire", CMD_EXPIRE, ARG_NONE, "expire",
	  "remove the entries older than the configured lifetime" },
	{ "flush", CMD_FLUSH, ARG_NONE, "flush", "remove every entry" },
	{ "help", CMD_HELP, ARG_NONE, "help", "this list" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* Tokens are at most the request's length; ECHO_MAX bounds what an
 * error message repeats of them. */
#define MAX_TOKENS 4
#define ECHO_MAX 40

typedef struct token {
	const char *s;
	size_t n;
} token;

typedef struct request {
	int json;
	const cmd_def *cmd;
	token arg;          /* n == 0: none */
	token extra;        /* first unexpected word, n == 0: none */
} request;

typedef struct answer {
	const mp_control_ctx *ctx;
	int json;
	char status[160];   /* "OK" or "ERR code message" */
	obuf body;
} answer;

static void ans_err(answer *a, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
ans_err(answer *a, const char *code, const char *fmt, ...)
{
	char msg[128];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* The status line must stay one line whatever went into msg. */
	for (i = 0; msg[i]; i++)
		if ((unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] >= 0x7f)
			msg[i] = '?';
	snprintf(a->status, sizeof a->status, "ERR %s %s", code, msg);
	a->body.len = 0;
	if (a->body.p)
		a->body.p[0] = '\0';
	if (a->json) {
		ob_printf(&a->body, "{\"error\":{\"code\":\"%s\",\"message\":", code);
		json_cstr(&a->body, msg);
		ob_puts(&a->body, "}}\n");
	}
}

static void
ans_table_err(answer *a, int rc, const char *uid)
{
	if (rc == MP_ERR_NOTFOUND && uid)
		ans_err(a, "notfound", "no entry for user ID %s", uid);
	else if (rc == MP_ERR_NOTFOUND)
		ans_err(a, "notfound", "no such entry");
	else if (rc == MP_ERR_UNAVAILABLE)
		ans_err(a, "unavailable", "table %s", mp_strerror(rc));
	else
		ans_err(a, "internal", "table: %s", mp_strerror(rc));
}

/* A word echoed in an error message: printable ASCII by the time we get
 * here (parse_request checked), cut to ECHO_MAX. */
static int
echo_len(const token *t)
{
	return (int)(t->n > ECHO_MAX ? ECHO_MAX : t->n);
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int
word_is(const token *t, const char *w)
{
	return t->n == strlen(w) && strncasecmp(t->s, w, t->n) == 0;
}

/* Splits into words; returns the count (at most MAX_TOKENS kept: a
 * fifth word is trailing garbage whichever command it follows). */
static size_t
split(const char *s, size_t n, token *tok)
{
	size_t i = 0, start, count = 0;

	while (i < n && count < MAX_TOKENS) {
		while (i < n && is_blank(s[i]))
			i++;
		if (i == n)
			break;
		start = i;
		while (i < n && !is_blank(s[i]))
			i++;
		tok[count].s = s + start;
		tok[count].n = i - start;
		count++;
	}
	return count;
}

/* Fills r or answers an error.  Returns 0 when the request is runnable. */
static int
parse_request(answer *a, const char *line, size_t len, request *r)
{
	token tok[MAX_TOKENS];
	size_t i, n, first, whole = len;

	memset(r, 0, sizeof *r);
	/* LF or CR LF ends the line; a CR alone is just a control byte. */
	if (len > 0 && line[len - 1] == '\n') {
		len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
	}
	/* Decide the answer format first so that even a rejected line gets
	 * its error in the format the client asked for. */
	n = split(line, len, tok);
	if (n > 0 && word_is(&tok[0], "json"))
		a->json = r->json = 1;
	if (whole > MP_CONTROL_LINE_MAX) {
		ans_err(a, "usage", "request line too long (at most %d bytes)", MP_CONTROL_LINE_MAX);
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c >= 0x7f) {
			ans_err(a, "usage", "request contains a control or non-ASCII byte at "
			        "offset %zu", i);
			return -1;
		}
	}
	n = split(line, len, tok);
	first = r->json ? 1 : 0;
	if (n <= first) {
		ans_err(a, "usage", "empty request (try 'help')");
		return -1;
	}
	for (i = 0; i < NCOMMANDS; i++)
		if (word_is(&tok[first], commands[i].name))
			r->cmd = &commands[i];
	if (!r->cmd) {
		ans_err(a, "usage", "unknown command '%.*s' (try 'help')", echo_len(&tok[first]),
		        tok[first].s);
		return -1;
	}
	if (n > first + 1 && r->cmd->arg != ARG_NONE)
		r->arg = tok[first + 1];
	if (n > first + 1 + (r->cmd->arg != ARG_NONE))
		r->extra = tok[first + 1 + (r->cmd->arg != ARG_NONE)];
	if (r->extra.n > 0) {
		if (r->cmd->arg == ARG_NONE)
			ans_err(a, "usage", "'%s' takes no argument (got '%.*s')", r->cmd->name,
			        echo_len(&r->extra), r->extra.s);
		else
			ans_err(a, "usage", "unexpected '%.*s' (usage: %s)", echo_len(&r->extra),
			        r->extra.s, r->cmd->usage);
		return -1;
	}
	if (r->cmd->arg == ARG_UID && r->arg.n == 0) {
		ans_err(a, "usage", "missing user ID (usage: %s)", r->cmd->usage);
		return -1;
	}
	return 0;
}

static int
parse_uid(answer *a, const token *t, mp_uid *uid, char text[MP_UID_TEXT_LEN + 1])
{
	char buf[MP_UID_TEXT_LEN + 1];

	if (t->n != MP_UID_TEXT_LEN)
		goto bad;
	memcpy(buf, t->s, t->n);
	buf[t->n] = '\0';
	if (mp_uid_parse(buf, uid) != MP_OK)
		goto bad;
	mp_uid_format(uid, text);   /* canonical (lower case) for messages */
	return 0;
bad:
	ans_err(a, "badid", "'%.*s' is not a user ID (26 base32 characters)", echo_len(t), t->s);
	return -1;
}

static int
parse_count(answer *a, const token *t, size_t *out)
{
	size_t i, v = 0;

	if (t->n == 0) {
		*out = MP_CONTROL_LIST_DEFAULT;
		return 0;
	}
	for (i = 0; i < t->n; i++) {
		if (t->s[i] < '0' || t->s[i] > '9' || v > MP_CONTROL_LIST_MAX)
			goto bad;
		v = v * 10 + (size_t)(t->s[i] - '0');
	}
	if (v >= 1 && v <= MP_CONTROL_LIST_MAX) {
		*out = v;
		return 0;
	}
bad:
	ans_err(a, "usage", "list: N must be a number from 1 to %d, not '%.*s'",
	        MP_CONTROL_LIST_MAX, echo_len(t), t->s);
	return -1;
}

/* ---------------------------------------------------------------- commands */

enum { COL_UID, COL_NAME, COL_AGE, COL_FLAGS, COL_STATE, COL_ADDR, COL_CAND, NCOLS };

static const char *const col_title[NCOLS] = {
	"USER ID", "NAME", "AGE", "FLAGS", "STATE", "REPLY ADDRESS", "CANDIDATES",
};

typedef struct cell {
	size_t off, len, width;
} cell;

static void
list_human(answer *a, const mp_table_entry *e, size_t n, uint64_t total)
{
	obuf text = { 0 };
	cell *cells;
	size_t width[NCOLS], i, c, j;
	char buf[64];

	if (n == 0) {
		ob_puts(&a->body, "no entries\n");
		return;
	}
	if (!(cells = calloc(n * NCOLS, sizeof *cells))) {
		a->body.oom = 1;
		return;
	}
	for (c = 0; c < NCOLS; c++)
		width[c] = strlen(col_title[c]);
	/* First render every cell, so the columns can be as wide as their
	 * widest value and no wider. */
	for (i = 0; i < n; i++) {
		entry_view v;

		view_of(a->ctx, &e[i], &v);
		for (c = 0; c < NCOLS; c++) {
			cell *x = &cells[i * NCOLS + c];

			x->off = text.len;
			switch (c) {
			case COL_UID:
				ob_puts(&text, v.uid);
				break;
			case COL_NAME:
				x->width = human_str(&text, e[i].name, FIELD_LEN(e[i].name));
				break;
			case COL_AGE:
				age_text(v.age, buf, sizeof buf);
				ob_puts(&text, v.future ? "future" : buf);
				break;
			case COL_FLAGS:
				ob_puts(&text, v.failed ? "F" : "-");
				break;
			case COL_STATE:
				ob_puts(&text, v.live ? "live" : "expired");
				break;
			case COL_ADDR:
				x->width = human_str(&text, e[i].reply_addr, FIELD_LEN(e[i].reply_addr));
				break;
			case COL_CAND:
				for (j = 0; j < entry_ncand(&e[i]); j++) {
					cand_text(&e[i].ep.cand[j], buf, sizeof buf);
					ob_printf(&text, "%s%s", j ? " " : "", buf);
				}
				if (j == 0)
					ob_putc(&text, '-');
				break;
			}
			if (text.oom)
				goto out;
			x->len = text.len - x->off;
			if (c != COL_NAME && c != COL_ADDR)
				x->width = x->len;     /* ASCII */
			if (x->len == 0) {          /* empty name or address */
				ob_putc(&text, '-');
				x->len = x->width = 1;
			}
			if (x->width > width[c])
				width[c] = x->width;
		}
	}
	for (c = 0; c < NCOLS; c++) {
		ob_puts(&a->body, col_title[c]);
		if (c + 1 < NCOLS)
			ob_pad(&a->body, width[c] - strlen(col_title[c]) + 2);
	}
	ob_putc(&a->body, '\n');
	for (i = 0; i < n; i++) {
		for (c = 0; c < NCOLS; c++) {
			const cell *x = &cells[i * NCOLS + c];

			ob_put(&a->body, text.p + x->off, x->len);
			if (c + 1 < NCOLS)
				ob_pad(&a->body, width[c] - x->width + 2);
		}
		ob_putc(&a->body, '\n');
	}
	ob_printf(&a->body, "%zu of %llu entries, newest first\n", n, (unsigned long long)total);
out:
	if (text.oom)
		a->body.oom = 1;
	free(text.p);
	free(cells);
}

static void
cmd_list(answer *a, mp_table *t, size_t want)
{
	mp_table_stats st;
	mp_table_entry *e;
	size_t n = 0, i;
	int rc;

	mp_table_stats_get(t, &st);
	/* Never allocate for more entries than the table can hold. */
	if (st.capacity > 0 && want > st.capacity)
		want = (size_t)st.capacity;
	if (!(e = calloc(want, sizeof *e))) {
		a->body.oom = 1;
		return;
	}
	/* max_age 0: expired entries are listed too, marked as such. */
	rc = mp_table_select(t, NULL, a->ctx->now, 0, e, want, &n);
	if (rc != MP_OK) {
		ans_table_err(a, rc, NULL);
	} else {
		if (n > want)
			n = want;
		if (st.entries < n)
			st.entries = n;   /* counted a moment apart */
		if (a->json) {
			ob_printf(&a->body, "{\"total\":%llu,\"entries\":[",
			          (unsigned long long)st.entries);
			for (i = 0; i < n; i++) {
				if (i)
					ob_putc(&a->body, ',');
				json_entry(&a->body, a->ctx, &e[i], 0);
			}
			ob_puts(&a->body, "]}\n");
		} else {
			list_human(a, e, n, st.entries);
		}
	}
	free(e);
}

static void
show_human(answer *a, const mp_table_entry *e)
{
	obuf *b = &a->body;
	entry_view v;
	char iso[32], age[32], pub[MP_PUBID_TEXT_MAX], cand[64];
	size_t i, n;

	view_of(a->ctx, e, &v);
	ob_printf(b, "user ID:          %s\n", v.uid);
	ob_printf(b, "identity:         %s\n",
	          mp_pubid_format(&e->id, pub, sizeof pub) == MP_OK ? pub : "(invalid)");
	ob_puts(b, "name:             ");
	if (!human_str(b, e->name, FIELD_LEN(e->name)))
		ob_puts(b, "-");
	ob_puts(b, "\nreply address:    ");
	if (!human_str(b, e->reply_addr, FIELD_LEN(e->reply_addr)))
		ob_puts(b, "-");
	age_text(v.age, age, sizeof age);
	if (!iso_time(e->time, iso, sizeof iso))
		snprintf(iso, sizeof iso, "%llu (invalid)", (unsigned long long)e->time);
	ob_printf(b, "\nlast request:     %s (%s%s)\n", iso, v.future ? "in the future" : age,
	          v.future ? "" : " ago");
	if (a->ctx->max_age) {
		age_text(a->ctx->max_age, age, sizeof age);
		ob_printf(b, "state:            %s (lifetime %s)\n", v.live ? "live" : "expired", age);
	} else {
		ob_puts(b, "state:            live (no lifetime configured)\n");
	}
	ob_printf(b, "flags:            %s\n", v.failed ? "F (a peer reported a failed connection)" : "-");
	ob_printf(b, "NAT mapping:      %s\n", mp_nat_dep_name(e->ep.nat.mapping));
	ob_printf(b, "NAT filtering:    %s\n", mp_nat_dep_name(e->ep.nat.filtering));
	ob_printf(b, "port allocation:  %s", mp_nat_alloc_name(e->ep.nat.allocation));
	if (e->ep.nat.allocation == MP_ALLOC_SEQUENTIAL || e->ep.nat.delta != 0)
		ob_printf(b, " (delta %+d)", (int)e->ep.nat.delta);
	ob_putc(b, '\n');
	n = entry_ncand(e);
	if (n == 0)
		ob_puts(b, "candidates:       none\n");
	for (i = 0; i < n; i++) {
		cand_text(&e->ep.cand[i], cand, sizeof cand);
		ob_printf(b, "candidate %zu:      %s (%s)\n", i + 1, cand,
		          cand_kind_name(e->ep.cand[i].kind));
	}
}

static void
cmd_show(answer *a, mp_table *t, const mp_uid *uid, const char *uidtext)
{
	mp_table_entry e;
	int rc;

	if ((rc = mp_table_get(t, uid, &e)) != MP_OK) {
		ans_table_err(a, rc, uidtext);
		return;
	}
	if (a->json) {
		ob_puts(&a->body, "{\"entry\":");
		json_entry(&a->body, a->ctx, &e, 1);
		ob_puts(&a->body, "}\n");
	} else {
		show_human(a, &e);
	}
}

static void
cmd_stats(answer *a, mp_table *t)
{
	mp_table_stats st;
	size_t i, w = strlen("capacity");
	obuf *b = &a->body;

	mp_table_stats_get(t, &st);
	for (i = 0; i < MP_STAT_COUNT; i++)
		if (strlen(mp_stat_name((mp_stat)i)) > w)
			w = strlen(mp_stat_name((mp_stat)i));
	if (a->json) {
		ob_puts(b, "{\"stats\":{");
		for (i = 0; i < MP_STAT_COUNT; i++) {
			ob_printf(b, "%s", i ? "," : "");
			json_cstr(b, mp_stat_name((mp_stat)i));
			ob_printf(b, ":%llu", (unsigned long long)st.counter[i]);
		}
		ob_printf(b, "},\"entries\":%llu,\"capacity\":%llu}\n",
		          (unsigned long long)st.entries, (unsigned long long)st.capacity);
		return;
	}
	ob_printf(b, "%-*s  %llu\n", (int)w, "entries", (unsigned long long)st.entries);
	ob_printf(b, "%-*s  %llu\n", (int)w, "capacity", (unsigned long long)st.capacity);
	for (i = 0; i < MP_STAT_COUNT; i++)
		ob_printf(b, "%-*s  %llu\n", (int)w, mp_stat_name((mp_stat)i),
		          (unsigned long long)st.counter[i]);
}

static void
cmd_change(answer *a, mp_table *t, cmd_id id, const mp_uid *uid, const char *uidtext)
{
	int rc;

	if (id == CMD_DELETE)
		rc = mp_table_delete(t, uid);
	else if (id == CMD_FLAG)
		rc = mp_table_set_flags(t, uid, MP_PEER_FAILED, 0);
	else
		rc = mp_table_set_flags(t, uid, 0, MP_PEER_FAILED);
	if (rc != MP_OK) {
		ans_table_err(a, rc, uidtext);
		return;
	}
	if (a->json)
		ob_printf(&a->body, "{\"%s\":1}\n",
		          id == CMD_DELETE ? "deleted" : id == CMD_FLAG ? "flagged" : "unflagged");
	else
		ob_printf(&a->body, "%s %s%s\n",
		          id == CMD_DELETE ? "deleted" : id == CMD_FLAG ? "flagged" : "unflagged",
		          uidtext, id == CMD_FLAG ? " as failed" : "");
}

static const char *
plural(size_t n)
{
	return n == 1 ? "entry" : "entries";
}

static void
cmd_expire(answer *a, mp_table *t)
{
	size_t removed = 0;
	char life[32];
	int rc;

	if (a->ctx->max_age == 0) {
		/* No lifetime: nothing is ever too old. */
		ob_puts(&a->body, a->json ? "{\"expired\":0}\n"
		                          : "expired 0 entries (no lifetime configured)\n");
		return;
	}
	if ((rc = mp_table_expire(t, a->ctx->now, a->ctx->max_age, &removed)) != MP_OK) {
		ans_table_err(a, rc, NULL);
		return;
	}
	age_text(a->ctx->max_age, life, sizeof life);
	if (a->json)
		ob_printf(&a->body, "{\"expired\":%zu}\n", removed);
	else
		ob_printf(&a->body, "expired %zu %s (older than %s)\n", removed, plural(removed), life);
}

static void
cmd_flush(answer *a, mp_table *t)
{
	mp_table_stats st;
	int rc;

	/* The table does not count what it flushes: report the entries
	 * present just before (a request recorded in between is the only
	 * way the two can differ). */
	mp_table_stats_get(t, &st);
	if ((rc = mp_table_flush(t)) != MP_OK) {
		ans_table_err(a, rc, NULL);
		return;
	}
	if (a->json)
		ob_printf(&a->body, "{\"flushed\":%llu}\n", (unsigned long long)st.entries);
	else
		ob_printf(&a->body, "flushed %llu %s\n", (unsigned long long)st.entries,
		          plural((size_t)st.entries));
}

static void
cmd_help(answer *a)
{
	size_t i;

	if (a->json) {
		ob_puts(&a->body, "{\"commands\":[");
		for (i = 0; i < NCOMMANDS; i++) {
			ob_puts(&a->body, i ? ",{\"usage\":" : "{\"usage\":");
			json_cstr(&a->body, commands[i].usage);
			ob_puts(&a->body, ",\"description\":");
			json_cstr(&a->body, commands[i].what);
			ob_putc(&a->body, '}');
		}
		ob_puts(&a->body, "]}\n");
		return;
	}
	ob_puts(&a->body, "commands (prefix with 'json' for a JSON answer):\n");
	for (i = 0; i < NCOMMANDS; i++)
		ob_printf(&a->body, "  %-15s %s\n", commands[i].usage, commands[i].what);
}

static void
run(answer *a, const request *r)
{
	mp_table *t = a->ctx->table;
	mp_uid uid;
	char uidtext[MP_UID_TEXT_LEN + 1];
	size_t count = MP_CONTROL_LIST_DEFAULT;

	if (r->cmd->id == CMD_HELP) {
		cmd_help(a);
		return;
	}
	if (r->cmd->arg == ARG_UID && parse_uid(a, &r->arg, &uid, uidtext) != 0)
		return;
	if (r->cmd->arg == ARG_COUNT && parse_count(a, &r->arg, &count) != 0)
		return;
	if (!t) {
		ans_err(a, "internal", "no table attached");
		return;
	}
	switch (r->cmd->id) {
	case CMD_LIST: cmd_list(a, t, count); break;
	case CMD_SHOW: cmd_show(a, t, &uid, uidtext); break;
	case CMD_STATS: cmd_stats(a, t); break;
	case CMD_DELETE:
	case CMD_FLAG:
	case CMD_UNFLAG: cmd_change(a, t, r->cmd->id, &uid, uidtext); break;
	case CMD_EXPIRE: cmd_expire(a, t); break;
	case CMD_FLUSH: cmd_flush(a, t); break;
	case CMD_HELP: break;
	}
}

/* ---------------------------------------------------------------- answer */

/* Status line, body with SMTP-style dot-stuffing, final ".". */
static int
assemble(answer *a, char **out, size_t *outlen)
{
	obuf o = { 0 };
	size_t i = 0, e;

	ob_puts(&o, a->status);
	ob_putc(&o, '\n');
	while (i < a->body.len) {
		const char *nl = memchr(a->body.p + i, '\n', a->body.len - i);

		e = nl ? (size_t)(nl - a->body.p) : a->body.len;
		if (a->body.p[i] == '.')
			ob_putc(&o, '.');
		ob_put(&o, a->body.p + i, e - i);
		ob_putc(&o, '\n');
		i = e + 1;
	}
	ob_puts(&o, ".\n");
	if (o.oom) {
		free(o.p);
		return MP_ERR_NOMEM;
	}
	*out = o.p;
	*outlen = o.len;
	return MP_OK;
}

int
mp_control_exec(const mp_control_ctx *ctx, const char *line, size_t len, char **out,
                size_t *outlen)
{
	answer a;
	request r;
	int rc;

	if (!ctx || !out || !outlen || (!line && len > 0))
		return MP_ERR_INVAL;
	*out = NULL;
	*outlen = 0;
	if (!line)
		line = "";
	memset(&a, 0, sizeof a);
	a.ctx = ctx;
	snprintf(a.status, sizeof a.status, "OK");
	if (parse_request(&a, line, len, &r) == 0)
		run(&a, &r);
	if (a.body.oom) {
		/* Try to say so in a small answer before giving up. */
		free(a.body.p);
		memset(&a.body, 0, sizeof a.body);
		ans_err(&a, "internal", "out of memory");
		if (a.body.oom) {
			free(a.body.p);
			return MP_ERR_NOMEM;
		}
	}
	rc = assemble(&a, out, outlen);
	free(a.body.p);
	return rc;
}
