/*
 * test_mail.c - unit tests for the mail codec (mail_compose.c,
 * mail_parse.c, mime.c).
 *
 * The transformation tests compose a real mail, change it the way a mail
 * system would (line ends, re-wrapping, trailing blanks, quoted-printable
 * or base64 re-encoding, multipart wrappers with footers, header case and
 * folding), parse it and compare the block bytes.  Every parse runs on an
 * exact-size copy without a terminating NUL, so AddressSanitizer catches
 * any read past the length.  The error tests cover garbage, truncated or
 * bad armour, size/depth/part limits and header injection.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailpunch/error.h"
#include "mailpunch/mail.h"
#include "base64.h"
#include "mime.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

typedef struct sbuf {
	char *s;
	size_t len, cap;
} sbuf;

static void
sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		ck_assert_ptr_nonnull(b->s);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
sb_str(sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_fmt(sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
sb_fmt(sbuf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	ck_assert(n >= 0 && (size_t)n < sizeof(tmp));
	sb_add(b, tmp, (size_t)n);
}

static char *
sb_take(sbuf *b)
{
	char *s = b->s;

	if (s == NULL)
		s = strdup("");
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

static uint8_t *
make_block(size_t n, unsigned seed)
{
	uint8_t *b = malloc(n ? n : 1);
	size_t i;

	ck_assert_ptr_nonnull(b);
	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
	return b;
}

static mp_mail_draft
draft_for(const uint8_t *blk, size_t n)
{
	mp_mail_draft d;

	memset(&d, 0, sizeof(d));
	d.from = "alice@example.org";
	d.from_name = "Alice Example";
	d.to = "bob@example.net";
	d.subject = "[mailpunch] rendezvous";
	d.date = 1700000000;
	d.block = blk;
	d.block_len = n;
	return d;
}

static char *
compose_text(const mp_mail_draft *d)
{
	mp_mail *m;
	char *s;
	size_t len;

	ck_assert_int_eq(mp_mail_compose(d, &m), MP_OK);
	ck_assert_int_eq(mp_mail_serialize(m, &s, &len), MP_OK);
	ck_assert_uint_eq(strlen(s), len);
	mp_mail_free(m);
	return s;
}

/* Parse an exact-size copy (no NUL after it). */
static int
parse_exact(const char *text, size_t len, const mp_mail_limits *lim,
            mp_parsed_mail *out)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, text, len);
	rc = mp_mail_parse(copy, len, lim, out);
	free(copy);
	return rc;
}

static void
expect_block(const char *text, const uint8_t *blk, size_t n)
{
	mp_parsed_mail pm;
	int rc = parse_exact(text, strlen(text), NULL, &pm);

	ck_assert_msg(rc == MP_OK, "parse: %s\n%s", mp_strerror(rc), text);
	ck_assert_uint_eq(pm.block_len, n);
	ck_assert(memcmp(pm.block, blk, n) == 0);
	mp_parsed_mail_free(&pm);
}

static int
parse_rc(const char *text, const mp_mail_limits *lim)
{
	mp_parsed_mail pm;
	int rc = parse_exact(text, strlen(text), lim, &pm);

	if (rc == MP_OK)
		ck_assert_ptr_nonnull(pm.block);
	else
		ck_assert_ptr_null(pm.block);
	mp_parsed_mail_free(&pm);
	return rc;
}

/* Split at the blank line: headers keep their last CRLF. */
static void
split_mail(const char *m, char **headers, char **body)
{
	const char *sep = strstr(m, "\r\n\r\n");

	ck_assert_ptr_nonnull(sep);
	*headers = strndup(m, (size_t)(sep - m) + 2);
	*body = strdup(sep + 4);
	ck_assert(*headers && *body);
}

/* Headers without the named ones; continuation lines go with their field. */
static char *
drop_headers(const char *headers, const char *const *names)
{
	sbuf b = { 0 };
	const char *p = headers;
	int keep = 1;

	while (*p) {
		const char *e = strstr(p, "\r\n");
		size_t k;

		ck_assert_ptr_nonnull(e);
		if (*p != ' ' && *p != '\t') {
			keep = 1;
			for (k = 0; names[k]; k++)
				if (strncasecmp(p, names[k], strlen(names[k])) == 0
				    && p[strlen(names[k])] == ':')
					keep = 0;
		}
		if (keep)
			sb_add(&b, p, (size_t)(e - p) + 2);
		p = e + 2;
	}
	return sb_take(&b);
}

static char *
replace_all(const char *s, const char *from, const char *to)
{
	sbuf b = { 0 };
	const char *p;

	while ((p = strstr(s, from)) != NULL) {
		sb_add(&b, s, (size_t)(p - s));
		sb_str(&b, to);
		s = p + strlen(from);
	}
	sb_str(&b, s);
	return sb_take(&b);
}

/* ---------------------------------------------------------------- transforms */

static char *
xf_eol(const char *m, const char *eol)
{
	return replace_all(m, "\r\n", eol);
}

/* Re-wrap the armoured base64 to width columns (0: one line). */
static char *
xf_rewrap(const char *m, size_t width)
{
	const char *b = strstr(m, MP_ARMOR_BEGIN "\r\n");
	const char *e = strstr(m, MP_ARMOR_END);
	const char *p;
	sbuf out = { 0 };
	size_t col = 0;

	ck_assert(b && e && b < e);
	b += strlen(MP_ARMOR_BEGIN) + 2;
	sb_add(&out, m, (size_t)(b - m));
	for (p = b; p < e; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if (width && col == width) {
			sb_str(&out, "\r\n");
			col = 0;
		}
		sb_add(&out, p, 1);
		col++;
	}
	sb_str(&out, "\r\n");
	sb_str(&out, e);
	return sb_take(&out);
}

static char *
xf_trailing_ws(const char *m)
{
	char *h, *body, *wsb, *r;
	sbuf out = { 0 };

	split_mail(m, &h, &body);
	wsb = replace_all(body, "\r\n", " \t \r\n");
	sb_str(&out, h);
	sb_str(&out, "\r\n");
	sb_str(&out, wsb);
	free(h);
	free(body);
	free(wsb);
	r = sb_take(&out);
	return r;
}

/* RFC 2045 quoted-printable with 76-column lines and soft breaks. */
static char *
qp_encode(const char *body)
{
	sbuf out = { 0 };
	const char *p = body;
	size_t col = 0;

	for (; *p; p++) {
		char tok[4];
		size_t t;
		unsigned char c = (unsigned char)*p;

		if (c == '\r' && p[1] == '\n') {
			sb_str(&out, "\r\n");
			col = 0;
			p++;
			continue;
		}
		if (c == '=' || c > 126 || (c < 32 && c != '\t') ||
		    ((c == ' ' || c == '\t') && p[1] == '\r'))
			t = (size_t)snprintf(tok, sizeof(tok), "=%02X", c);
		else
			t = (size_t)snprintf(tok, sizeof(tok), "%c", c);
		if (col + t > 75) {
			sb_str(&out, "=\r\n");
			col = 0;
		}
		sb_add(&out, tok, t);
		col += t;
	}
	return sb_take(&out);
}

/* Same mail with another body and transfer encoding. */
static char *
with_body(const char *m, const char *cte, const char *newbody)
{
	static const char *const names[] = { "Content-Transfer-Encoding", NULL };
	char *h, *body, *h2;
	sbuf out = { 0 };

	split_mail(m, &h, &body);
	h2 = drop_headers(h, names);
	sb_str(&out, h2);
	sb_fmt(&out, "Content-Transfer-Encoding: %s\r\n\r\n", cte);
	sb_str(&out, newbody);
	free(h);
	free(h2);
	free(body);
	return sb_take(&out);
}

static char *
xf_qp(const char *m)
{
	char *h, *body, *qp, *r;

	split_mail(m, &h, &body);
	qp = qp_encode(body);
	r = with_body(m, "quoted-printable", qp);
	free(h);
	free(body);
	free(qp);
	return r;
}

static char *
xf_b64(const char *m)
{
	char *h, *body, *enc, *r;
	sbuf nb = { 0 };

	split_mail(m, &h, &body);
	ck_assert_int_eq(mp_base64_encode((const uint8_t *)body, strlen(body),
	                 0, 76, &enc, NULL), MP_OK);
	sb_str(&nb, enc);
	sb_str(&nb, "\r\n");
	free(enc);
	enc = sb_take(&nb);
	r = with_body(m, "Base64", enc);
	free(h);
	free(body);
	free(enc);
	return r;
}

/* The single-part mail m as the first part of a multipart/mixed with a
 * text/plain footer; when alt, inside a multipart/alternative first. */
static char *
xf_multipart(const char *m, int alt)
{
	static const char *const mime[] = {
		"Content-Type", "Content-Transfer-Encoding", "MIME-Version", NULL
	};
	static const char *const other[] = {
		"From", "To", "Date", "Message-ID", "Subject", "In-Reply-To",
		"References", "Auto-Submitted", "MIME-Version", NULL
	};
	char *h, *body, *top, *parth;
	sbuf out = { 0 };

	split_mail(m, &h, &body);
	top = drop_headers(h, mime);
	parth = drop_headers(h, other);
	sb_str(&out, top);
	sb_str(&out, "MIME-Version: 1.0\r\n"
	       "Content-Type: multipart/mixed; boundary=\"=_outer=_\"\r\n\r\n"
	       "This is a multi-part message in MIME format.\r\n"
	       "--=_outer=_\r\n");
	if (alt) {
		sb_str(&out, "Content-Type: multipart/alternative;\r\n"
		       "\tboundary=inner\r\n\r\n--inner\r\n");
	}
	sb_str(&out, parth);
	sb_str(&out, "\r\n");
	sb_str(&out, body);
	if (alt) {
		sb_str(&out, "\r\n--inner\r\n"
		       "Content-Type: text/html; charset=us-ascii\r\n\r\n"
		       "<p>mailpunch</p>\r\n--inner--\r\n");
	}
	sb_str(&out, "\r\n--=_outer=_\r\n"
	       "Content-Type: text/plain; charset=us-ascii\r\n"
	       "Content-Transfer-Encoding: 7bit\r\n\r\n"
	       "-- \r\nSent via the list\r\n--=_outer=_--\r\n");
	free(h);
	free(body);
	free(top);
	free(parth);
	return sb_take(&out);
}

static char *
xf_header_case(const char *m, int upper)
{
	char *r = strdup(m), *p;
	size_t i;

	ck_assert_ptr_nonnull(r);
	for (p = r; *p && !(p[0] == '\r' && p[1] == '\n'); ) {
		for (i = 0; p[i] != ':'; i++)
			p[i] = upper ? (char)toupper((unsigned char)p[i])
			             : (char)tolower((unsigned char)p[i]);
		p = strstr(p, "\r\n") + 2;
	}
	return r;
}

static char *
xf_fold(const char *m)
{
	char *a = replace_all(m, "; charset=", ";\r\n charset=");
	char *b = replace_all(a, "Subject: [mailpunch] rendezvous",
	                      "Subject: [mailpunch]\r\n\trendezvous");
	char *c = replace_all(b, "From: Alice Example <",
	                      "From: Alice Example\r\n    <");

	free(a);
	free(b);
	return c;
}

static char *
xf_footer(const char *m)
{
	sbuf out = { 0 };

	sb_str(&out, m);
	sb_str(&out, "\r\n-- \r\nSent via the list\r\nhttp://list.example/\r\n");
	return sb_take(&out);
}

/* ---------------------------------------------------------------- compose */

START_TEST(test_compose_format)
{
	static const char *const order[] = {
		"From", "To", "Date", "Message-ID", "In-Reply-To", "References",
		"Subject", "MIME-Version", "Content-Type",
		"Content-Transfer-Encoding", "Auto-Submitted",
	};
	uint8_t *blk = make_block(100, 1);
	mp_mail_draft d = draft_for(blk, 100);
	const char *mid, *p;
	mp_mail *m;
	size_t i;

	d.in_reply_to = "<abc@host.example>";
	d.auto_kind = MP_AUTO_REPLIED;
	ck_assert_int_eq(mp_mail_compose(&d, &m), MP_OK);
	ck_assert_uint_eq(m->nheaders, sizeof(order) / sizeof(order[0]));
	for (i = 0; i < m->nheaders; i++)
		ck_assert_str_eq(m->headers[i].name, order[i]);
	ck_assert_str_eq(mp_mail_header(m, "from"),
	                 "Alice Example <alice@example.org>");
	ck_assert_str_eq(mp_mail_header(m, "TO"), "bob@example.net");
	ck_assert_str_eq(mp_mail_header(m, "Date"),
	                 "Tue, 14 Nov 2023 22:13:20 +0000");
	ck_assert_str_eq(mp_mail_header(m, "In-Reply-To"), "<abc@host.example>");
	ck_assert_str_eq(mp_mail_header(m, "References"), "<abc@host.example>");
	ck_assert_str_eq(mp_mail_header(m, "Subject"), "[mailpunch] rendezvous");
	ck_assert_str_eq(mp_mail_header(m, "MIME-Version"), "1.0");
	ck_assert_str_eq(mp_mail_header(m, "Content-Type"),
	                 "text/plain; charset=us-ascii");
	ck_assert_str_eq(mp_mail_header(m, "Content-Transfer-Encoding"), "7bit");
	ck_assert_str_eq(mp_mail_header(m, "Auto-Submitted"), "auto-replied");
	ck_assert_ptr_null(mp_mail_header(m, "X-Nope"));
	mid = mp_mail_header(m, "Message-ID");
	ck_assert_uint_eq(strlen(mid), 1 + 32 + 1 + strlen("example.org") + 1);
	ck_assert_int_eq(mid[0], '<');
	for (i = 1; i <= 32; i++)
		ck_assert_ptr_nonnull(strchr("0123456789abcdef", mid[i]));
	ck_assert_str_eq(mid + 33, "@example.org>");

	/* Body: explanation, blank line, armour of 64-column lines, CRLF. */
	ck_assert_uint_eq(strlen(m->body), m->body_len);
	ck_assert(strncmp(m->body, "This message was generated by mailpunch",
	                  39) == 0);
	ck_assert_ptr_nonnull(strstr(m->body, "\r\n\r\n" MP_ARMOR_BEGIN "\r\n"));
	for (p = m->body; *p; p++)
		if (*p == '\n')
			ck_assert_int_eq(p[-1], '\r');
		else if (*p == '\r')
			ck_assert_int_eq(p[1], '\n');
	p = strstr(m->body, MP_ARMOR_BEGIN "\r\n") + strlen(MP_ARMOR_BEGIN) + 2;
	ck_assert_int_eq(strncmp(p + 64, "\r\n", 2), 0);
	ck_assert_int_eq(strncmp(p + 66 + 64, "\r\n", 2), 0);
	ck_assert_str_eq(p + 66 + 66 + 8,
	                 "\r\n" MP_ARMOR_END "\r\n");  /* 100 bytes: 136 chars */
	mp_mail_free(m);
	free(blk);
}
END_TEST

START_TEST(test_compose_options)
{
	uint8_t *blk = make_block(10, 2);
	mp_mail_draft d = draft_for(blk, 10);
	mp_mail *m;
	char *s, addr[128];

	d.from_name = NULL;
	d.msgid_domain = "mx.example.com";
	d.auto_kind = MP_AUTO_GENERATED;
	d.explanation = "Hello.\nSecond line";
	d.date = 0;
	ck_assert_int_eq(mp_mail_compose(&d, &m), MP_OK);
	ck_assert_str_eq(mp_mail_header(m, "From"), "alice@example.org");
	ck_assert_str_eq(mp_mail_header(m, "Auto-Submitted"), "auto-generated");
	ck_assert_ptr_null(mp_mail_header(m, "In-Reply-To"));
	ck_assert_ptr_null(mp_mail_header(m, "References"));
	ck_assert(strstr(mp_mail_header(m, "Message-ID"), "@mx.example.com>"));
	ck_assert(strstr(mp_mail_header(m, "Date"), " +0000"));
	ck_assert(strncmp(m->body, "Hello.\r\nSecond line\r\n\r\n" MP_ARMOR_BEGIN,
	                  23 + strlen(MP_ARMOR_BEGIN)) == 0);
	mp_mail_free(m);

	/* Display names with specials are quoted, and read back. */
	d.from_name = "Smith, \"J\" <x>";
	ck_assert_int_eq(mp_mail_compose(&d, &m), MP_OK);
	ck_assert_str_eq(mp_mail_header(m, "From"),
	                 "\"Smith, \\\"J\\\" <x>\" <alice@example.org>");
	ck_assert_int_eq(mp_mail_extract_addr(mp_mail_header(m, "From"), addr,
	                 sizeof(addr)), MP_OK);
	ck_assert_str_eq(addr, "alice@example.org");
	mp_mail_free(m);

	/* Two mails never share a Message-ID. */
	d.from_name = NULL;
	s = compose_text(&d);
	{
		char *t = compose_text(&d);

		ck_assert_str_ne(strstr(s, "Message-ID:"), strstr(t, "Message-ID:"));
		free(t);
	}
	free(s);
	free(blk);
}
END_TEST

START_TEST(test_compose_rejects)
{
	uint8_t *blk = make_block(MP_MAIL_BLOCK_MAX + 1, 3);
	mp_mail_draft d = draft_for(blk, 16), e;
	mp_mail *m = (mp_mail *)1;
	char longsub[1100];

#define REJECT(field, val, want) do {                                   \
		e = d;                                                   \
		e.field = val;                                           \
		ck_assert_int_eq(mp_mail_compose(&e, &m), want);         \
		ck_assert_ptr_null(m);                                   \
	} while (0)
	REJECT(subject, "hi\r\nBcc: victim@example.com", MP_ERR_INVAL);
	REJECT(subject, "hi\nBcc: x@y", MP_ERR_INVAL);
	REJECT(subject, "hi\rthere", MP_ERR_INVAL);
	REJECT(subject, "caf\xc3\xa9", MP_ERR_INVAL);
	REJECT(subject, NULL, MP_ERR_INVAL);
	REJECT(from, "a@b\r\nBcc: x@y", MP_ERR_INVAL);
	REJECT(from, "alice", MP_ERR_INVAL);
	REJECT(from, "a@b@c", MP_ERR_INVAL);
	REJECT(from, "@b.c", MP_ERR_INVAL);
	REJECT(from, "a@", MP_ERR_INVAL);
	REJECT(from, "a b@c.d", MP_ERR_INVAL);
	REJECT(from, "<a@b.c>", MP_ERR_INVAL);
	REJECT(from, NULL, MP_ERR_INVAL);
	REJECT(to, "b@c.d>, evil@x", MP_ERR_INVAL);
	REJECT(to, "b@c.d\n", MP_ERR_INVAL);
	REJECT(to, "", MP_ERR_INVAL);
	REJECT(from_name, "Alice\r\nBcc: x@y", MP_ERR_INVAL);
	REJECT(from_name, "J\xc3\xa9r\xc3\xb4me", MP_ERR_INVAL);
	REJECT(in_reply_to, "<a@b>\r\nBcc: x@y", MP_ERR_INVAL);
	REJECT(in_reply_to, "a@b", MP_ERR_INVAL);
	REJECT(in_reply_to, "<a b@c>", MP_ERR_INVAL);
	REJECT(msgid_domain, "ex\nample", MP_ERR_INVAL);
	REJECT(msgid_domain, "", MP_ERR_INVAL);
	REJECT(msgid_domain, "a>b", MP_ERR_INVAL);
	REJECT(explanation, "nul\x01", MP_ERR_INVAL);
	REJECT(explanation, "see " MP_ARMOR_BEGIN, MP_ERR_INVAL);
	REJECT(block, NULL, MP_ERR_INVAL);
	REJECT(block_len, 0, MP_ERR_INVAL);
	REJECT(block_len, MP_MAIL_BLOCK_MAX + 1, MP_ERR_TOOBIG);
	REJECT(auto_kind, (mp_auto_kind)7, MP_ERR_INVAL);
	memset(longsub, 'x', sizeof(longsub) - 1);
	longsub[sizeof(longsub) - 1] = '\0';
	REJECT(subject, longsub, MP_ERR_TOOBIG);
#undef REJECT
	ck_assert_int_eq(mp_mail_compose(NULL, &m), MP_ERR_INVAL);
	ck_assert_int_eq(mp_mail_compose(&d, NULL), MP_ERR_INVAL);
	free(blk);
}
END_TEST

START_TEST(test_serialize)
{
	mp_header h[2] = { { "Subject", "x\r\nBcc: y" }, { "To", "a@b" } };
	mp_mail m = { h, 2, "body\r\n", 6 };
	char *s;
	size_t len;

	ck_assert_int_eq(mp_mail_serialize(&m, &s, &len), MP_ERR_INVAL);
	ck_assert_ptr_null(s);
	m.headers = h + 1;
	m.nheaders = 1;
	ck_assert_int_eq(mp_mail_serialize(&m, &s, &len), MP_OK);
	ck_assert_str_eq(s, "To: a@b\r\n\r\nbody\r\n");
	ck_assert_uint_eq(len, strlen(s));
	free(s);
	mp_mail_free(NULL);
}
END_TEST

/* ---------------------------------------------------------------- round trips */

START_TEST(test_parse_plain)
{
	size_t sizes[] = { 1, 2, 3, 47, 48, 49, 100, 1000, MP_MAIL_BLOCK_MAX };
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *blk = make_block(sizes[i], (unsigned)i + 10);
		mp_mail_draft d = draft_for(blk, sizes[i]);
		mp_parsed_mail pm;
		char *s;

		d.in_reply_to = "<parent.1@example.net>";
		s = compose_text(&d);
		ck_assert_int_eq(parse_exact(s, strlen(s), NULL, &pm), MP_OK);
		ck_assert_uint_eq(pm.block_len, sizes[i]);
		ck_assert(memcmp(pm.block, blk, sizes[i]) == 0);
		ck_assert_str_eq(pm.from, "alice@example.org");
		ck_assert_str_eq(pm.to, "bob@example.net");
		ck_assert_str_eq(pm.subject, "[mailpunch] rendezvous");
		ck_assert_str_eq(pm.in_reply_to, "<parent.1@example.net>");
		ck_assert_ptr_nonnull(pm.message_id);
		ck_assert(strstr(s, pm.message_id) != NULL);
		ck_assert_int_eq(pm.is_auto, 0);
		mp_parsed_mail_free(&pm);
		free(s);
		free(blk);
	}
}
END_TEST

/* The milter path: headers and body given separately. */
START_TEST(test_find_block_parts)
{
	uint8_t *blk = make_block(300, 4), *out;
	mp_mail_draft d = draft_for(blk, 300);
	mp_mail *m;
	char *s, *h, *body, *qp;
	size_t outlen;

	ck_assert_int_eq(mp_mail_compose(&d, &m), MP_OK);
	ck_assert_int_eq(mp_mail_find_block(mp_mail_header(m, "Content-Type"),
	                 mp_mail_header(m, "Content-Transfer-Encoding"),
	                 m->body, m->body_len, NULL, &out, &outlen), MP_OK);
	ck_assert_uint_eq(outlen, 300);
	ck_assert(memcmp(out, blk, 300) == 0);
	free(out);
	ck_assert_int_eq(mp_mail_find_block(NULL, NULL, m->body, m->body_len,
	                 NULL, &out, &outlen), MP_OK);
	free(out);
	ck_assert_int_eq(mp_mail_find_block("application/octet-stream", NULL,
	                 m->body, m->body_len, NULL, &out, &outlen),
	                 MP_ERR_NOBLOCK);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(mp_mail_find_block(NULL, NULL, NULL, 0, NULL, &out,
	                 &outlen), MP_ERR_NOBLOCK);
	ck_assert_int_eq(mp_mail_find_block(NULL, NULL, NULL, 3, NULL, &out,
	                 &outlen), MP_ERR_INVAL);
	ck_assert_int_eq(mp_mail_find_block(NULL, NULL, "x", 1, NULL, NULL,
	                 &outlen), MP_ERR_INVAL);

	s = compose_text(&d);
	split_mail(s, &h, &body);
	qp = qp_encode(body);
	ck_assert_int_eq(mp_mail_find_block("text/plain", " Quoted-Printable ",
	                 qp, strlen(qp), NULL, &out, &outlen), MP_OK);
	ck_assert(outlen == 300 && memcmp(out, blk, 300) == 0);
	free(out);
	free(qp);
	free(h);
	free(body);
	free(s);
	mp_mail_free(m);
	free(blk);
}
END_TEST

typedef char *(*xform)(const char *);

static char *xf_lf(const char *m) { return xf_eol(m, "\n"); }
static char *xf_cr(const char *m) { return xf_eol(m, "\r"); }
static char *xf_wrap76(const char *m) { return xf_rewrap(m, 76); }
static char *xf_wrap40(const char *m) { return xf_rewrap(m, 40); }
static char *xf_wrap1(const char *m) { return xf_rewrap(m, 1); }
static char *xf_oneline(const char *m) { return xf_rewrap(m, 0); }
static char *xf_mixed(const char *m) { return xf_multipart(m, 0); }
static char *xf_nested(const char *m) { return xf_multipart(m, 1); }
static char *xf_lower(const char *m) { return xf_header_case(m, 0); }
static char *xf_upper(const char *m) { return xf_header_case(m, 1); }

/* CRLF for some lines, LF or CR for others. */
static char *
xf_mixed_eol(const char *m)
{
	sbuf out = { 0 };
	const char *p = m, *e;
	unsigned n = 0;

	while ((e = strstr(p, "\r\n")) != NULL) {
		sb_add(&out, p, (size_t)(e - p));
		sb_str(&out, n % 3 == 0 ? "\r\n" : n % 3 == 1 ? "\n" : "\r");
		n++;
		p = e + 2;
	}
	sb_str(&out, p);
	return sb_take(&out);
}

static const struct {
	const char *name;
	xform f[4];      /* applied in order; NULL ends */
} chains[] = {
	{ "identity", { NULL } },
	{ "lf", { xf_lf } },
	{ "cr", { xf_cr } },
	{ "mixed eol", { xf_mixed_eol } },
	{ "wrap76", { xf_wrap76 } },
	{ "wrap40", { xf_wrap40 } },
	{ "wrap1", { xf_wrap1 } },
	{ "one line", { xf_oneline } },
	{ "trailing ws", { xf_trailing_ws } },
	{ "qp", { xf_qp } },
	{ "qp one line", { xf_oneline, xf_qp } },
	{ "qp lf", { xf_oneline, xf_qp, xf_lf } },
	{ "qp trailing ws", { xf_qp, xf_trailing_ws } },
	{ "b64", { xf_b64 } },
	{ "b64 lf", { xf_b64, xf_lf } },
	{ "footer", { xf_footer } },
	{ "footer lf", { xf_footer, xf_lf } },
	{ "mixed", { xf_mixed } },
	{ "mixed cr", { xf_mixed, xf_cr } },
	{ "mixed qp", { xf_oneline, xf_qp, xf_mixed } },
	{ "mixed b64 lf", { xf_b64, xf_mixed, xf_lf } },
	{ "nested", { xf_nested } },
	{ "nested qp lf", { xf_qp, xf_nested, xf_lf } },
	{ "nested b64 mixed eol", { xf_wrap40, xf_b64, xf_nested,
	                            xf_mixed_eol } },
	{ "lower", { xf_lower } },
	{ "upper qp", { xf_qp, xf_upper } },
	{ "fold", { xf_fold } },
	{ "fold qp lf", { xf_qp, xf_fold, xf_lf } },
	{ "fold mixed", { xf_fold, xf_mixed } },
};

START_TEST(test_transformations)
{
	size_t len = 200 + (size_t)_i * 37;
	uint8_t *blk = make_block(len, (unsigned)_i + 100);
	mp_mail_draft d = draft_for(blk, len);
	char *s = compose_text(&d), *t;
	size_t k;
	mp_parsed_mail pm;

	for (k = 0; k < 4 && chains[_i].f[k]; k++) {
		t = chains[_i].f[k](s);
		ck_assert_str_ne(t, s);
		free(s);
		s = t;
	}
	ck_assert_msg(parse_exact(s, strlen(s), NULL, &pm) == MP_OK,
	              "chain %s", chains[_i].name);
	ck_assert_uint_eq(pm.block_len, len);
	ck_assert(memcmp(pm.block, blk, len) == 0);
	ck_assert_str_eq(pm.from, "alice@example.org");
	ck_assert_str_eq(pm.to, "bob@example.net");
	ck_assert(mp_mail_subject_has_marker(pm.subject, NULL));
	mp_parsed_mail_free(&pm);
	free(s);
	free(blk);
}
END_TEST

START_TEST(test_armour_variants)
{
	uint8_t *blk = make_block(90, 5);
	mp_mail_draft d = draft_for(blk, 90);
	char *s = compose_text(&d), *t;

	/* A BEGIN without END before the real armour is ignored. */
	t = replace_all(s, MP_ARMOR_BEGIN, MP_ARMOR_BEGIN "\r\n" MP_ARMOR_BEGIN);
	expect_block(t, blk, 90);
	free(t);
	/* An armour that does not decode is passed over for a later one. */
	t = replace_all(s, MP_ARMOR_BEGIN, MP_ARMOR_BEGIN "\r\n!!!!\r\n"
	                MP_ARMOR_END "\r\n" MP_ARMOR_BEGIN);
	expect_block(t, blk, 90);
	free(t);
	/* Marker lines indented by blanks still count. */
	t = replace_all(s, MP_ARMOR_BEGIN, "  " MP_ARMOR_BEGIN "\t");
	expect_block(t, blk, 90);
	free(t);
	/* Marker lines must match exactly: no prefix, suffix or quoting. */
	t = replace_all(s, MP_ARMOR_BEGIN, MP_ARMOR_BEGIN "x");
	ck_assert_int_eq(parse_rc(t, NULL), MP_ERR_NOBLOCK);
	free(t);
	t = replace_all(s, MP_ARMOR_BEGIN, "> " MP_ARMOR_BEGIN);
	ck_assert_int_eq(parse_rc(t, NULL), MP_ERR_NOBLOCK);
	free(t);
	t = replace_all(s, MP_ARMOR_END, MP_ARMOR_END "-");
	ck_assert_int_eq(parse_rc(t, NULL), MP_ERR_BASE64);
	free(t);
	free(s);
	free(blk);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_garbage)
{
	unsigned seed;
	mp_parsed_mail pm;

	for (seed = 1; seed <= 200; seed++) {
		size_t len = (seed * 7919) % 5000;
		uint8_t *g = make_block(len, seed);
		int rc = parse_exact((const char *)g, len, NULL, &pm);

		ck_assert(rc == MP_ERR_NOBLOCK || rc == MP_ERR_MIME ||
		          rc == MP_ERR_BASE64);
		ck_assert_ptr_null(pm.block);
		mp_parsed_mail_free(&pm);
		free(g);
	}
	ck_assert_int_eq(parse_exact("", 0, NULL, &pm), MP_ERR_NOBLOCK);
	ck_assert_int_eq(mp_mail_parse(NULL, 0, NULL, &pm), MP_ERR_NOBLOCK);
	ck_assert_int_eq(mp_mail_parse(NULL, 5, NULL, &pm), MP_ERR_INVAL);
	ck_assert_int_eq(mp_mail_parse("x", 1, NULL, NULL), MP_ERR_INVAL);
	ck_assert_int_eq(parse_rc("Subject: hello\r\n\r\nJust a mail.\r\n",
	                          NULL), MP_ERR_NOBLOCK);
	ck_assert_int_eq(parse_rc("no headers at all", NULL), MP_ERR_NOBLOCK);
	ck_assert_int_eq(parse_rc(MP_ARMOR_BEGIN "\n@@@@\n" MP_ARMOR_END "\n",
	                          NULL), MP_ERR_BASE64);
	ck_assert_int_eq(parse_rc("Content-Type: multipart/mixed\r\n\r\nx\r\n",
	                          NULL), MP_ERR_MIME);
	ck_assert_int_eq(parse_rc("Content-Type: multipart/mixed; boundary=\"x"
	                          "\r\n\r\nx\r\n", NULL), MP_ERR_MIME);
}
END_TEST

/* Headers are filled even without a block. */
START_TEST(test_noblock_headers)
{
	static const char mail[] =
		"From \"Doe, J\" <j@x.org> Mon Jan  1 00:00:00 2024\n"
		"From: \"Doe, J\" <j@x.org>\n"
		"To: undisclosed-recipients:;\n"
		"Subject: =?utf-8?q?hi?= [MailPunch]\n"
		"Message-ID: <m1@x.org>\n"
		"In-Reply-To: <p1@y.org> (comment) <p2@y.org>\n"
		"Precedence: Bulk\n"
		"\n"
		"Hello\n";
	mp_parsed_mail pm;

	ck_assert_int_eq(parse_exact(mail, sizeof(mail) - 1, NULL, &pm),
	                 MP_ERR_NOBLOCK);
	ck_assert_str_eq(pm.from, "j@x.org");
	ck_assert_ptr_null(pm.to);
	ck_assert_str_eq(pm.subject, "=?utf-8?q?hi?= [MailPunch]");
	ck_assert_str_eq(pm.message_id, "<m1@x.org>");
	ck_assert_str_eq(pm.in_reply_to, "<p1@y.org>");
	ck_assert_int_eq(pm.is_auto, 1);
	ck_assert(mp_mail_subject_has_marker(pm.subject, "[mailpunch]"));
	mp_parsed_mail_free(&pm);
	mp_parsed_mail_free(&pm);   /* idempotent */
}
END_TEST

START_TEST(test_truncated_armour)
{
	uint8_t *blk = make_block(500, 6);
	mp_mail_draft d = draft_for(blk, 500);
	char *s = compose_text(&d), *end;

	end = strstr(s, MP_ARMOR_END);
	ck_assert_ptr_nonnull(end);
	end[-200] = '\0';       /* cut inside the base64 */
	ck_assert_int_eq(parse_rc(s, NULL), MP_ERR_BASE64);
	free(s);
	free(blk);
}
END_TEST

START_TEST(test_bad_base64)
{
	uint8_t *blk = make_block(200, 7);
	mp_mail_draft d = draft_for(blk, 200);
	char *s = compose_text(&d), *p;

	p = strstr(s, MP_ARMOR_BEGIN) + strlen(MP_ARMOR_BEGIN) + 10;
	*p = '*';
	ck_assert_int_eq(parse_rc(s, NULL), MP_ERR_BASE64);
	*p = '.';
	ck_assert_int_eq(parse_rc(s, NULL), MP_ERR_BASE64);
	free(s);
	/* Empty armour. */
	ck_assert_int_eq(parse_rc("\r\n" MP_ARMOR_BEGIN "\r\n" MP_ARMOR_END
	                          "\r\n", NULL), MP_ERR_BASE64);
	/* A base64 body that is not base64: the part is unreadable. */
	ck_assert_int_eq(parse_rc("Content-Transfer-Encoding: base64\r\n\r\n"
	                          "%%%%\r\n", NULL), MP_ERR_MIME);
	free(blk);
}
END_TEST

START_TEST(test_oversize)
{
	uint8_t *blk = make_block(MP_MAIL_BLOCK_MAX + 1, 8);
	mp_mail_limits lim = { 0, 0, 0 };
	sbuf b = { 0 };
	char *enc, *s, *big;
	uint8_t *out;
	size_t outlen, len;

	/* An armour decoding to one byte more than the maximum. */
	ck_assert_int_eq(mp_base64_encode(blk, MP_MAIL_BLOCK_MAX + 1, 0, 64,
	                 &enc, NULL), MP_OK);
	sb_str(&b, "Subject: x\r\n\r\n" MP_ARMOR_BEGIN "\r\n");
	sb_str(&b, enc);
	sb_str(&b, "\r\n" MP_ARMOR_END "\r\n");
	s = sb_take(&b);
	ck_assert_int_eq(parse_rc(s, NULL), MP_ERR_TOOBIG);
	free(enc);

	/* Input over max_size is refused. */
	len = strlen(s);
	lim.max_size = len - 1;
	ck_assert_int_eq(parse_rc(s, &lim), MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_mail_find_block(NULL, NULL, s, len, &lim, &out,
	                 &outlen), MP_ERR_TOOBIG);
	free(s);

	/* Default limit: 1 MiB. */
	len = ((size_t)1 << 20) + 1;
	big = malloc(len);
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', len);
	{
		mp_parsed_mail pm;

		ck_assert_int_eq(mp_mail_parse(big, len, NULL, &pm),
		                 MP_ERR_TOOBIG);
		ck_assert_int_eq(mp_mail_parse(big, len - 1, NULL, &pm),
		                 MP_ERR_NOBLOCK);
		mp_parsed_mail_free(&pm);
	}
	free(big);
	free(blk);
}
END_TEST

/* levels nested multiparts around a text part holding the armour. */
static char *
nested_mail(unsigned levels, const uint8_t *blk, size_t n)
{
	sbuf b = { 0 };
	char *enc;
	unsigned i;

	ck_assert_int_eq(mp_base64_encode(blk, n, 0, 64, &enc, NULL), MP_OK);
	sb_str(&b, "From: a@b.c\r\nMIME-Version: 1.0\r\n");
	for (i = 0; i < levels; i++)
		sb_fmt(&b, "Content-Type: multipart/mixed; boundary=b%u\r\n\r\n"
		       "--b%u\r\n", i, i);
	sb_fmt(&b, "Content-Type: text/plain\r\n\r\n%s\r\n%s\r\n%s\r\n",
	       MP_ARMOR_BEGIN, enc, MP_ARMOR_END);
	for (i = levels; i-- > 0; )
		sb_fmt(&b, "--b%u--\r\n", i);
	free(enc);
	return sb_take(&b);
}

START_TEST(test_depth_limit)
{
	uint8_t *blk = make_block(50, 9);
	mp_mail_limits lim = { 0, 2, 0 };
	char *s;

	s = nested_mail(8, blk, 50);
	expect_block(s, blk, 50);
	free(s);
	s = nested_mail(9, blk, 50);
	ck_assert_int_eq(parse_rc(s, NULL), MP_ERR_MIME);
	free(s);
	s = nested_mail(2, blk, 50);
	ck_assert_int_eq(parse_rc(s, &lim), MP_OK);
	free(s);
	s = nested_mail(3, blk, 50);
	ck_assert_int_eq(parse_rc(s, &lim), MP_ERR_MIME);
	free(s);
	/* A huge depth request is clamped, deep input still refused. */
	lim.max_depth = 1000000;
	lim.max_parts = 100000;
	s = nested_mail(200, blk, 50);
	ck_assert_int_eq(parse_rc(s, &lim), MP_ERR_MIME);
	free(s);
	free(blk);
}
END_TEST

static char *
many_parts_mail(unsigned nparts, const uint8_t *blk, size_t n)
{
	sbuf b = { 0 };
	char *enc;
	unsigned i;

	ck_assert_int_eq(mp_base64_encode(blk, n, 0, 64, &enc, NULL), MP_OK);
	sb_str(&b, "Content-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n");
	for (i = 0; i < nparts; i++)
		sb_fmt(&b, "--sep\r\nContent-Type: text/plain\r\n\r\npart %u\r\n",
		       i);
	sb_fmt(&b, "--sep\r\n\r\n%s\r\n%s\r\n%s\r\n--sep--\r\n",
	       MP_ARMOR_BEGIN, enc, MP_ARMOR_END);
	free(enc);
	return sb_take(&b);
}

START_TEST(test_parts_limit)
{
	uint8_t *blk = make_block(50, 10);
	mp_mail_limits lim = { 0, 0, 200 };
	char *s;

	s = many_parts_mail(62, blk, 50);    /* 1 + 62 + 1 = 64 entities */
	expect_block(s, blk, 50);
	free(s);
	s = many_parts_mail(63, blk, 50);
	ck_assert_int_eq(parse_rc(s, NULL), MP_ERR_MIME);
	ck_assert_int_eq(parse_rc(s, &lim), MP_OK);
	free(s);
	free(blk);
}
END_TEST

START_TEST(test_not_searched)
{
	uint8_t *blk = make_block(64, 11);
	mp_mail_draft d = draft_for(blk, 64);
	char *s = compose_text(&d);
	sbuf b = { 0 };
	mp_parsed_mail pm;
	char *t;

	/* A bounce quoting our mail as message/rfc822 carries no block. */
	sb_str(&b, "From: MAILER-DAEMON@x.org\r\n"
	       "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	       "  boundary=\"rep\"\r\n\r\n--rep\r\n"
	       "Content-Type: text/plain\r\n\r\nDelivery failed.\r\n--rep\r\n"
	       "Content-Type: message/rfc822\r\n\r\n");
	sb_str(&b, s);
	sb_str(&b, "\r\n--rep--\r\n");
	t = sb_take(&b);
	ck_assert_int_eq(parse_exact(t, strlen(t), NULL, &pm), MP_ERR_NOBLOCK);
	ck_assert_int_eq(pm.is_auto, 1);
	mp_parsed_mail_free(&pm);
	free(t);

	/* Nor does an attachment. */
	sb_str(&b, "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
	       "Content-Type: application/octet-stream\r\n\r\n");
	sb_str(&b, strstr(s, MP_ARMOR_BEGIN));
	sb_str(&b, "\r\n--a--\r\n");
	t = sb_take(&b);
	ck_assert_int_eq(parse_rc(t, NULL), MP_ERR_NOBLOCK);
	free(t);
	free(s);
	free(blk);
}
END_TEST

START_TEST(test_auto_flag)
{
	uint8_t *blk = make_block(20, 12);
	mp_mail_draft d = draft_for(blk, 20);
	mp_parsed_mail pm;
	char *s, *t;

	d.auto_kind = MP_AUTO_GENERATED;
	s = compose_text(&d);
	ck_assert_int_eq(parse_exact(s, strlen(s), NULL, &pm), MP_OK);
	ck_assert_int_eq(pm.is_auto, 1);
	mp_parsed_mail_free(&pm);
	free(s);

	d.auto_kind = MP_AUTO_NONE;
	s = compose_text(&d);
	t = replace_all(s, "MIME-Version:", "List-Id: <l.example.org>\r\n"
	                "MIME-Version:");
	ck_assert_int_eq(parse_exact(t, strlen(t), NULL, &pm), MP_OK);
	ck_assert_int_eq(pm.is_auto, 1);
	mp_parsed_mail_free(&pm);
	free(t);
	t = replace_all(s, "MIME-Version:", "Auto-Submitted: No (manual)\r\n"
	                "MIME-Version:");
	ck_assert_int_eq(parse_exact(t, strlen(t), NULL, &pm), MP_OK);
	ck_assert_int_eq(pm.is_auto, 0);
	mp_parsed_mail_free(&pm);
	free(t);
	free(s);
	free(blk);
}
END_TEST

START_TEST(test_header_is_auto)
{
	ck_assert_int_eq(mp_mail_header_is_auto("Auto-Submitted", "auto-replied"), 1);
	ck_assert_int_eq(mp_mail_header_is_auto("auto-submitted",
	                 "auto-generated; owner-email=\"x@y\""), 1);
	ck_assert_int_eq(mp_mail_header_is_auto("Auto-Submitted", "no"), 0);
	ck_assert_int_eq(mp_mail_header_is_auto("Auto-Submitted", " NO ; x=y"), 0);
	ck_assert_int_eq(mp_mail_header_is_auto("Auto-Submitted", "nope"), 1);
	ck_assert_int_eq(mp_mail_header_is_auto("Precedence", "bulk"), 1);
	ck_assert_int_eq(mp_mail_header_is_auto("PRECEDENCE", "Junk"), 1);
	ck_assert_int_eq(mp_mail_header_is_auto("Precedence", "list"), 1);
	ck_assert_int_eq(mp_mail_header_is_auto("Precedence", "first-class"), 0);
	ck_assert_int_eq(mp_mail_header_is_auto("Precedence", "bulky"), 0);
	ck_assert_int_eq(mp_mail_header_is_auto("List-Id", "<a.b>"), 1);
	ck_assert_int_eq(mp_mail_header_is_auto("list-id", ""), 1);
	ck_assert_int_eq(mp_mail_header_is_auto("Content-Type",
	                 "Multipart/Report; report-type=delivery-status"), 1);
	ck_assert_int_eq(mp_mail_header_is_auto("Content-Type",
	                 "multipart/mixed"), 0);
	ck_assert_int_eq(mp_mail_header_is_auto("Subject", "auto"), 0);
	ck_assert_int_eq(mp_mail_header_is_auto(NULL, "x"), 0);
	ck_assert_int_eq(mp_mail_header_is_auto("Precedence", NULL), 0);
}
END_TEST

START_TEST(test_extract_addr)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "Alice <a@b.c>", "a@b.c" },
		{ "<a@b.c>", "a@b.c" },
		{ "a@b.c", "a@b.c" },
		{ "  a@b.c  ", "a@b.c" },
		{ "a@b.c (comment)", "a@b.c" },
		{ "(c) a@b.c (d (nested))", "a@b.c" },
		{ "\"Smith, John\" <js@ex.com>", "js@ex.com" },
		{ "\"a <b@c> d\" <real@ex.com>", "real@ex.com" },
		{ "\"x\\\"<y\" <q@ex.com>", "q@ex.com" },
		{ "Bob <b@x.org>, Carol <c@y.org>", "b@x.org" },
		{ "b@x.org, c@y.org", "b@x.org" },
		{ "Team: t1@x.org, t2@x.org;", "t1@x.org" },
		{ "< a@b.c >", "a@b.c" },
		{ "<@relay.example:a@b.c>", "a@b.c" },
		{ "\"odd local\"@b.c", "\"odd local\"@b.c" },
		{ ", a@b.c", "a@b.c" },
	};
	static const char *const bad[] = {
		"", "Alice", "<>", "undisclosed-recipients:;", "a@", "@b",
		"<a@b", "a@b@c", "Alice Smith a@b.c", "\"unterminated <a@b.c>",
		"a\x01@b.c",
	};
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(mp_mail_extract_addr(ok[i].in, buf, sizeof(buf))
		              == MP_OK, "%s", ok[i].in);
		ck_assert_str_eq(buf, ok[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(mp_mail_extract_addr(bad[i], buf, sizeof(buf))
		              == MP_ERR_SYNTAX, "%s", bad[i]);
	ck_assert_int_eq(mp_mail_extract_addr("A <a@b.c>", buf, 6), MP_OK);
	ck_assert_int_eq(mp_mail_extract_addr("A <a@b.c>", buf, 5),
	                 MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_mail_extract_addr(NULL, buf, 5), MP_ERR_INVAL);
	ck_assert_int_eq(mp_mail_extract_addr("a@b", NULL, 5), MP_ERR_INVAL);
}
END_TEST

START_TEST(test_subject_marker)
{
	ck_assert_int_eq(mp_mail_subject_has_marker("[mailpunch] x", NULL), 1);
	ck_assert_int_eq(mp_mail_subject_has_marker("Re: [MAILPUNCH]", NULL), 1);
	ck_assert_int_eq(mp_mail_subject_has_marker("Re: [mailpunc", NULL), 0);
	ck_assert_int_eq(mp_mail_subject_has_marker("a {mp} b", "{MP}"), 1);
	ck_assert_int_eq(mp_mail_subject_has_marker("abc", ""), 0);
	ck_assert_int_eq(mp_mail_subject_has_marker(NULL, "x"), 0);
}
END_TEST

/* ---------------------------------------------------------------- mime.c */

START_TEST(test_mime_helpers)
{
	mp_mime_ctype ct;
	char *out;
	size_t n;
	static const char qp[] = "a=3Db=\r\nc =\t\nd  \r\ne=4\n=zz=";
	static const char ct1[] =
		"Text/Plain (c); Charset=x; BOUNDARY=\"a\\\"b c\"";
	static const char ct2[] = "multipart/mixed;\r\n boundary=q; x";

	ck_assert_int_eq(mp_mime_ctype_parse(ct1, strlen(ct1), &ct), MP_OK);
	ck_assert_str_eq(ct.type, "text");
	ck_assert_str_eq(ct.subtype, "plain");
	ck_assert_str_eq(ct.boundary, "a\"b c");
	ck_assert_int_eq(mp_mime_ctype_parse(ct2, strlen(ct2), &ct), MP_OK);
	ck_assert_str_eq(ct.boundary, "q");
	ck_assert_int_eq(mp_mime_ctype_parse("garbage", 7, &ct), MP_ERR_MIME);
	ck_assert_str_eq(ct.type, "text");
	ck_assert_int_eq(mp_mime_cte_parse(" BASE64 (x)", 11), MP_MIME_CTE_BASE64);
	ck_assert_int_eq(mp_mime_cte_parse("x-uuencode", 10),
	                 MP_MIME_CTE_IDENTITY);

	ck_assert_int_eq(mp_mime_qp_decode(qp, sizeof(qp) - 1, &out, &n), MP_OK);
	ck_assert_str_eq(out, "a=bc d\r\ne=4\n=zz");
	ck_assert_uint_eq(n, strlen(out));
	free(out);

	ck_assert_int_eq(mp_mime_eol_crlf("a\nb\rc\r\nd\r", 9, &out, &n), MP_OK);
	ck_assert_str_eq(out, "a\r\nb\r\nc\r\nd\r\n");
	free(out);
}
END_TEST

START_TEST(test_multipart_split)
{
	static const char body[] =
		"preamble\r\n--b\r\n\r\none\r\n--b  \r\nX: y\r\n\r\ntwo\n--bb\n"
		"--b\r\n--b--\r\nepilogue";
	mp_mime_multipart it;
	const char *p;
	size_t n;

	mp_mime_multipart_init(&it, body, sizeof(body) - 1, "b", 1);
	ck_assert_int_eq(mp_mime_multipart_next(&it, &p, &n), 1);
	ck_assert_uint_eq(n, 5);
	ck_assert(memcmp(p, "\r\none", 5) == 0);
	ck_assert_int_eq(mp_mime_multipart_next(&it, &p, &n), 1);
	ck_assert_uint_eq(n, 16);
	ck_assert(memcmp(p, "X: y\r\n\r\ntwo\n--bb", 16) == 0);
	ck_assert_int_eq(mp_mime_multipart_next(&it, &p, &n), 1);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(mp_mime_multipart_next(&it, &p, &n), 0);
	ck_assert_int_eq(mp_mime_multipart_next(&it, &p, &n), 0);
}
END_TEST

static Suite *
mail_suite(void)
{
	Suite *s = suite_create("mail");
	TCase *tc = tcase_create("compose");
	TCase *tp = tcase_create("parse");
	TCase *te = tcase_create("errors");
	TCase *th = tcase_create("headers");

	tcase_add_test(tc, test_compose_format);
	tcase_add_test(tc, test_compose_options);
	tcase_add_test(tc, test_compose_rejects);
	tcase_add_test(tc, test_serialize);
	suite_add_tcase(s, tc);

	tcase_add_test(tp, test_parse_plain);
	tcase_add_test(tp, test_find_block_parts);
	tcase_add_loop_test(tp, test_transformations, 0,
	                    (int)(sizeof(chains) / sizeof(chains[0])));
	tcase_add_test(tp, test_armour_variants);
	tcase_add_test(tp, test_mime_helpers);
	tcase_add_test(tp, test_multipart_split);
	suite_add_tcase(s, tp);

	tcase_add_test(te, test_garbage);
	tcase_add_test(te, test_noblock_headers);
	tcase_add_test(te, test_truncated_armour);
	tcase_add_test(te, test_bad_base64);
	tcase_add_test(te, test_oversize);
	tcase_add_test(te, test_depth_limit);
	tcase_add_test(te, test_parts_limit);
	tcase_add_test(te, test_not_searched);
	suite_add_tcase(s, te);

	tcase_add_test(th, test_auto_flag);
	tcase_add_test(th, test_header_is_auto);
	tcase_add_test(th, test_extract_addr);
	tcase_add_test(th, test_subject_marker);
	suite_add_tcase(s, th);
	return s;
}

MP_TEST_MAIN(mail_suite)
