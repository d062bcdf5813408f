/*
 * smtp_reply.c - SMTP reply parser, EHLO capabilities, DATA dot-stuffing.
 * (see smtp_reply.h)
 *
 * The parser is a byte-at-a-time state machine: it collects one line in
 * a fixed buffer, and when the line ends it checks the code and the
 * separator and appends the text to the reply being built.  Texts of
 * one reply live NUL-separated in one growing buffer; their pointers
 * are set only when the reply completes, because the buffer may move
 * while it grows.  The completed reply stays in the parser until the
 * next feed starts a new one, which is what makes "valid until the next
 * feed" cheap.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailpunch/error.h"
#include "smtp_reply.h"

/* Text bytes of one line: the limit counts the CRLF. */
#define LINE_TEXT_MAX (MP_SMTP_LINE_MAX - 2)

struct mp_smtp_parser {
	char line[LINE_TEXT_MAX];
	size_t linelen;
	int cr;                         /* previous byte was a CR */
	int failed;                     /* stream out of sync: refuse input */
	int complete;                   /* reply below was handed out */
	int code;                       /* of the reply being built */
	char *text;                     /* NUL-separated line texts */
	size_t textlen, textcap;
	size_t nlines;
	size_t off[MP_SMTP_LINES_MAX];
	const char *ptr[MP_SMTP_LINES_MAX];
	mp_smtp_reply reply;
};

mp_smtp_parser *
mp_smtp_parser_new(void)
{
	return calloc(1, sizeof(mp_smtp_parser));
}

void
mp_smtp_parser_free(mp_smtp_parser *p)
{
	if (!p)
		return;
	free(p->text);
	free(p);
}

static void
start_reply(mp_smtp_parser *p)
{
	p->complete = 0;
	p->nlines = 0;
	p->textlen = 0;
	p->code = 0;
}

void
mp_smtp_parser_reset(mp_smtp_parser *p)
{
	start_reply(p);
	p->linelen = 0;
	p->cr = 0;
	p->failed = 0;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5321 textstring, widened to 8-bit bytes (SMTPUTF8 servers). */
static int
text_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 0;
	}
	return 1;
}

static int
append_text(mp_smtp_parser *p, const char *s, size_t n)
{
	if (p->textcap - p->textlen < n + 1) {
		size_t cap = p->textcap ? p->textcap : 512;
		char *t;

		while (cap - p->textlen < n + 1)
			cap *= 2;
		if (!(t = realloc(p->text, cap)))
			return MP_ERR_NOMEM;
		p->text = t;
		p->textcap = cap;
	}
	p->off[p->nlines++] = p->textlen;
	memcpy(p->text + p->textlen, s, n);
	p->textlen += n;
	p->text[p->textlen++] = '\0';
	return MP_OK;
}

/*
 * Length of an RFC 3463 code "c.sss.ddd" at the start of s whose class
 * matches the reply's first digit and which ends the text or is
 * followed by a blank; 0 when there is none.
 */
static size_t
enhanced_len(const char *s, int code)
{
	size_t i = 1, part, n;

	if (s[0] != (char)('0' + code / 100))
		return 0;
	for (part = 0; part < 2; part++) {
		if (s[i++] != '.')
			return 0;
		for (n = 0; n < 3 && is_digit(s[i]); n++)
			i++;
		if (n == 0)
			return 0;
	}
	return (s[i] == '\0' || s[i] == ' ' || s[i] == '\t') ? i : 0;
}

/* Sets the pointers, the enhanced code, and strips that code from the
 * lines that repeat it (RFC 2034 puts it on every line). */
static void
finish_reply(mp_smtp_parser *p)
{
	size_t i, elen;

	for (i = 0; i < p->nlines; i++)
		p->ptr[i] = p->text + p->off[i];
	p->reply.code = p->code;
	p->reply.enhanced[0] = '\0';
	elen = enhanced_len(p->ptr[0], p->code);
	if (elen > 0) {
		memcpy(p->reply.enhanced, p->ptr[0], elen);
		p->reply.enhanced[elen] = '\0';
		for (i = 0; i < p->nlines; i++) {
			const char *t = p->ptr[i];

			if (strncmp(t, p->reply.enhanced, elen) != 0 ||
			    (t[elen] != '\0' && t[elen] != ' ' && t[elen] != '\t'))
				continue;
			t += elen;
			while (*t == ' ' || *t == '\t')
				t++;
			p->ptr[i] = t;
		}
	}
	p->reply.nlines = p->nlines;
	p->reply.lines = p->ptr;
	p->complete = 1;
}

/* One complete line in p->line: 1 = reply complete, 0 = more lines, <0 error. */
static int
end_line(mp_smtp_parser *p)
{
	const char *l = p->line;
	size_t n = p->linelen;
	int code, last, rc;

	p->linelen = 0;
	if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '5' || !is_digit(l[2]))
		return MP_ERR_MALFORMED;
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (p->nlines > 0 && code != p->code)
		return MP_ERR_MALFORMED;
	if (n > 3 && l[3] != ' ' && l[3] != '-')
		return MP_ERR_MALFORMED;
	last = n == 3 || l[3] == ' ';
	if (n > 4 && !text_ok(l + 4, n - 4))
		return MP_ERR_MALFORMED;
	if (p->nlines == MP_SMTP_LINES_MAX)
		return MP_ERR_TOOBIG;
	p->code = code;
	if ((rc = append_text(p, l + (n > 3 ? 4 : 3), n > 3 ? n - 4 : 0)) != MP_OK)
		return rc;
	if (!last)
		return 0;
	finish_reply(p);
	return 1;
}

int
mp_smtp_parser_feed(mp_smtp_parser *p, const void *data, size_t len,
                    size_t *used, const mp_smtp_reply **reply)
{
	const char *s = data;
	size_t i;
	int rc;

	if (used)
		*used = 0;
	if (reply)
		*reply = NULL;
	if (!p || (!data && len > 0) || !used || !reply || p->failed)
		return MP_ERR_INVAL;
	if (p->complete)
		start_reply(p);
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (p->cr && c != '\n') {
			rc = MP_ERR_MALFORMED;      /* a bare CR inside a line */
			goto fail;
		}
		if (c == '\r') {
			p->cr = 1;
			continue;
		}
		if (c == '\n') {
			p->cr = 0;
			if ((rc = end_line(p)) < 0)
				goto fail;
			if (rc == 1) {
				*used = i + 1;
				*reply = &p->reply;
				return MP_OK;
			}
			continue;
		}
		if (p->linelen == LINE_TEXT_MAX) {
			rc = MP_ERR_TOOBIG;
			goto fail;
		}
		p->line[p->linelen++] = c;
	}
	*used = len;
	return MP_OK;
fail:
	*used = i;
	p->failed = 1;
	return rc;
}

void
mp_smtp_reply_format(const mp_smtp_reply *r, char *buf, size_t size)
{
	size_t o, i, n;

	if (!buf || size == 0)
		return;
	buf[0] = '\0';
	if (!r)
		return;
	/* Three digits, and the enhanced code is at most 9 characters. */
	o = (size_t)snprintf(buf, size, "%03d%s%s", r->code,
	                     r->enhanced[0] ? " " : "", r->enhanced);
	if (o >= size)
		return;
	for (i = 0; i < r->nlines; i++) {
		const char *t = r->lines[i];

		if (*t == '\0')
			continue;
		n = strlen(t);
		if (size - o < 2)
			break;
		buf[o++] = ' ';
		if (n > size - o - 1)
			n = size - o - 1;
		memcpy(buf + o, t, n);
		o += n;
		buf[o] = '\0';
	}
}

/* ---------------------------------------------------------------- EHLO */

static unsigned
auth_mech(const char *m, size_t n)
{
	static const struct {
		const char *name;
		unsigned bit;
	} mechs[] = {
		{ "PLAIN", MP_SMTP_AUTH_PLAIN },
		{ "LOGIN", MP_SMTP_AUTH_LOGIN },
		{ "CRAM-MD5", MP_SMTP_AUTH_CRAM_MD5 },
		{ "XOAUTH2", MP_SMTP_AUTH_XOAUTH2 },
	};
	size_t i;

	for (i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
		if (strlen(mechs[i].name) == n && strncasecmp(m, mechs[i].name, n) == 0)
			return mechs[i].bit;
	return MP_SMTP_AUTH_OTHER;
}

/* Space-separated mechanism names in s. */
static unsigned
auth_mechs(const char *s)
{
	unsigned bits = 0;

	for (;;) {
		size_t n;

		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			return bits;
		n = strcspn(s, " \t");
		bits |= auth_mech(s, n);
		s += n;
	}
}

/* Decimal SIZE value; 0 when absent, malformed or beyond uint64_t. */
static uint64_t
size_param(const char *s)
{
	uint64_t v = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!is_digit(*s))
		return 0;
	for (; is_digit(*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return (*s == '\0' || *s == ' ' || *s == '\t') ? v : 0;
}

static void
caps_line(const char *l, mp_smtp_caps *caps)
{
	static const struct {
		const char *kw;
		unsigned bit;
	} flags[] = {
		{ "STARTTLS", MP_SMTP_EXT_STARTTLS },
		{ "PIPELINING", MP_SMTP_EXT_PIPELINING },
		{ "8BITMIME", MP_SMTP_EXT_8BITMIME },
		{ "ENHANCEDSTATUSCODES", MP_SMTP_EXT_ENHANCEDSTATUSCODES },
		{ "SMTPUTF8", MP_SMTP_EXT_SMTPUTF8 },
		{ "CHUNKING", MP_SMTP_EXT_CHUNKING },
		{ "DSN", MP_SMTP_EXT_DSN },
	};
	size_t n = strcspn(l, " \t"), i;

	for (i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		if (strlen(flags[i].kw) == n && strncasecmp(l, flags[i].kw, n) == 0) {
			caps->ext |= flags[i].bit;
			return;
		}
	}
	if (n == 4 && strncasecmp(l, "SIZE", 4) == 0) {
		caps->ext |= MP_SMTP_EXT_SIZE;
		caps->size_max = size_param(l + 4);
	} else if (n == 4 && strncasecmp(l, "AUTH", 4) == 0) {
		caps->ext |= MP_SMTP_EXT_AUTH;
		caps->auth |= auth_mechs(l + 4);
	} else if (n > 5 && strncasecmp(l, "AUTH=", 5) == 0) {
		/* pre-RFC 4954 form some servers still add for old clients */
		caps->ext |= MP_SMTP_EXT_AUTH;
		caps->auth |= auth_mechs(l + 5);
	}
}

int
mp_smtp_caps_parse(const mp_smtp_reply *r, mp_smtp_caps *caps)
{
	size_t i;

	if (!caps)
		return MP_ERR_INVAL;
	memset(caps, 0, sizeof *caps);
	if (!r || r->code != 250)
		return MP_ERR_INVAL;
	for (i = 1; i < r->nlines; i++)
		caps_line(r->lines[i], caps);
	return MP_OK;
}

/* ---------------------------------------------------------------- DATA */

/* Walks the message once; with out NULL it only counts. */
static size_t
stuff(const unsigned char *in, size_t len, char *out)
{
	size_t i, n = 0;
	int bol = 1;

	for (i = 0; i < len; i++) {
		unsigned char c = in[i];

		if (c == '\r' || c == '\n') {
			if (c == '\r' && i + 1 < len && in[i + 1] == '\n')
				i++;
			if (out) {
				out[n] = '\r';
				out[n + 1] = '\n';
			}
			n += 2;
			bol = 1;
			continue;
		}
		if (bol && c == '.') {
			if (out)
				out[n] = '.';
			n++;
		}
		if (out)
			out[n] = (char)c;
		n++;
		bol = 0;
	}
	if (!bol) {
		if (out) {
			out[n] = '\r';
			out[n + 1] = '\n';
		}
		n += 2;
	}
	if (out)
		memcpy(out + n, ".\r\n", 4);
	return n + 3;
}

int
mp_smtp_dot_stuff(const void *in, size_t len, size_t max_out,
                  char **out, size_t *outlen)
{
	size_t n;

	if (out)
		*out = NULL;
	if (!out || !outlen || (!in && len > 0))
		return MP_ERR_INVAL;
	/* every input byte yields at most two output bytes */
	if (len > (SIZE_MAX - 8) / 2)
		return MP_ERR_TOOBIG;
	n = stuff(in, len, NULL);
	if (n > max_out)
		return MP_ERR_TOOBIG;
	if (!(*out = malloc(n + 1)))
		return MP_ERR_NOMEM;
	stuff(in, len, *out);
	*outlen = n;
	return MP_OK;
}
