/*
 * pop3_parse.c - POP3 server response reader and answer parsers (see
 * pop3_parse.h).
 *
 * Interface: mp_pop3_reader_*(), mp_pop3_response_free(),
 * mp_pop3_resp_code(), mp_pop3_parse_uidl(), mp_pop3_parse_scan(),
 * mp_pop3_subject_match(), mp_pop3_arg_ok().
 * Errors: MP_ERR_TOOBIG, MP_ERR_SYNTAX, MP_ERR_NOMEM, MP_ERR_INVAL, as
 * values; nothing is logged here.
 *
 * The multi-line body is unstuffed by a small byte-at-a-time state
 * machine (start of line, a dot at the start, that dot followed by CR,
 * inside a line) rather than line by line, so a body line of any length
 * costs no buffer beyond the kept prefix and a line split across reads
 * needs no special case.  A bare LF ends a line as well as CRLF: a lax
 * server is no risk here, since a "." line cannot hide in a line that
 * has not ended.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailpunch/error.h"
#include "mailpunch/mail.h"

#include "mime.h"
#include "pop3_parse.h"

enum body_state {
	B_BOL,      /* at the start of a line */
	B_DOT,      /* a '.' at the start of a line */
	B_DOTCR,    /* ".\r" at the start of a line */
	B_MID,      /* inside a line */
};

struct mp_pop3_reader {
	int multi;
	size_t max_body;
	char line[MP_POP3_LINE_MAX + 1];
	size_t line_len;
	mp_pop3_response *r;     /* +OK seen, body being read */
	size_t body_cap;
	enum body_state bs;
	int broken;
};

int
mp_pop3_reader_new(mp_pop3_reader **out)
{
	if (!out)
		return MP_ERR_INVAL;
	if (!(*out = calloc(1, sizeof **out)))
		return MP_ERR_NOMEM;
	return MP_OK;
}

void
mp_pop3_reader_free(mp_pop3_reader *rd)
{
	if (!rd)
		return;
	mp_pop3_response_free(rd->r);
	free(rd);
}

void
mp_pop3_reader_expect(mp_pop3_reader *rd, int multi, size_t max_body)
{
	if (!rd)
		return;
	rd->multi = multi != 0;
	rd->max_body = max_body;
}

void
mp_pop3_response_free(mp_pop3_response *r)
{
	if (!r)
		return;
	free(r->text);
	free(r->body);
	free(r);
}

/* The status line in rd->line (line end stripped) into a new response. */
static int
status_line(mp_pop3_reader *rd, mp_pop3_response **out)
{
	const char *s = rd->line, *text;
	mp_pop3_response *r;
	int ok;

	if (strncasecmp(s, "+OK", 3) == 0) {
		ok = 1;
		text = s + 3;
	} else if (strncasecmp(s, "-ERR", 4) == 0) {
		ok = 0;
		text = s + 4;
	} else {
		return MP_ERR_SYNTAX;
	}
	if (*text != '\0' && *text != ' ')
		return MP_ERR_SYNTAX;
	if (*text == ' ')
		text++;
	/* a NUL would cut the text short, a lone CR could fake a line */
	if (memchr(rd->line, '\0', rd->line_len) || memchr(rd->line, '\r', rd->line_len))
		return MP_ERR_SYNTAX;
	if (!(r = calloc(1, sizeof *r)))
		return MP_ERR_NOMEM;
	r->ok = ok;
	r->text_len = strlen(text);
	if (!(r->text = strdup(text))) {
		free(r);
		return MP_ERR_NOMEM;
	}
	*out = r;
	return MP_OK;
}

static int
body_put(mp_pop3_reader *rd, char c)
{
	mp_pop3_response *r = rd->r;

	r->body_total++;
	if (r->body_len >= rd->max_body) {
		r->truncated = 1;
		return MP_OK;
	}
	if (!r->body || r->body_len + 1 >= rd->body_cap) {
		size_t cap = rd->body_cap ? rd->body_cap * 2 : 1024;
		char *p;

		if (cap > rd->max_body + 1)
			cap = rd->max_body + 1;
		if (cap < r->body_len + 2)
			cap = r->body_len + 2;
		if (!(p = realloc(r->body, cap)))
			return MP_ERR_NOMEM;
		r->body = p;
		rd->body_cap = cap;
	}
	r->body[r->body_len++] = c;
	r->body[r->body_len] = '\0';
	return MP_OK;
}

/* One body byte; *done when the terminating "." line has ended. */
static int
body_byte(mp_pop3_reader *rd, char c, int *done)
{
	int err = MP_OK;

	switch (rd->bs) {
	case B_BOL:
		if (c == '.') {
			rd->bs = B_DOT;
			return MP_OK;
		}
		break;
	case B_DOT:
		if (c == '\r') {
			rd->bs = B_DOTCR;
			return MP_OK;
		}
		if (c == '\n') {
			*done = 1;
			return MP_OK;
		}
		break;   /* the stuffed dot is dropped, c kept */
	case B_DOTCR:
		if (c == '\n') {
			*done = 1;
			return MP_OK;
		}
		/* ".\r" and more: a lone CR inside a line, kept */
		if ((err = body_put(rd, '\r')) != MP_OK)
			return err;
		break;
	case B_MID:
		break;
	}
	rd->bs = c == '\n' ? B_BOL : B_MID;
	return body_put(rd, c);
}

static int
finish_body(mp_pop3_reader *rd, mp_pop3_response **out)
{
	mp_pop3_response *r = rd->r;

	if (!r->body) {
		if (!(r->body = malloc(1)))
			return MP_ERR_NOMEM;
		r->body[0] = '\0';
	}
	rd->r = NULL;
	rd->body_cap = 0;
	*out = r;
	return MP_OK;
}

static int
feed(mp_pop3_reader *rd, const char *data, size_t len, size_t *pos,
     mp_pop3_response **out)
{
	int err, done = 0;

	while (*pos < len) {
		char c = data[(*pos)++];

		if (rd->r) {
			if ((err = body_byte(rd, c, &done)) != MP_OK)
				return err;
			if (done)
				return finish_body(rd, out);
			continue;
		}
		if (c != '\n') {
			if (rd->line_len >= MP_POP3_LINE_MAX - 1)
				return MP_ERR_TOOBIG;   /* no room left for the LF */
			rd->line[rd->line_len++] = c;
			continue;
		}
		if (rd->line_len > 0 && rd->line[rd->line_len - 1] == '\r')
			rd->line_len--;
		rd->line[rd->line_len] = '\0';
		err = status_line(rd, out);
		rd->line_len = 0;
		if (err != MP_OK)
			return err;
		if (!(*out)->ok || !rd->multi)
			return MP_OK;
		rd->r = *out;
		*out = NULL;
		rd->bs = B_BOL;
	}
	return MP_OK;
}

int
mp_pop3_reader_feed(mp_pop3_reader *rd, const char *data, size_t len,
                    size_t *used, mp_pop3_response **out)
{
	size_t pos = 0;
	int err;

	if (used)
		*used = 0;
	if (out)
		*out = NULL;
	if (!rd || !used || !out || (!data && len))
		return MP_ERR_INVAL;
	if (rd->broken)
		return MP_ERR_SYNTAX;
	err = feed(rd, data, len, &pos, out);
	*used = pos;
	if (err != MP_OK) {
		rd->broken = 1;
		mp_pop3_response_free(*out);
		*out = NULL;
	}
	return err;
}

/* ---------------------------------------------------------------- answers */

int
mp_pop3_resp_code(const mp_pop3_response *r, const char *code)
{
	size_t n;

	if (!r || !r->text || !code || r->text[0] != '[')
		return 0;
	n = strlen(code);
	if (strncasecmp(r->text + 1, code, n) != 0)
		return 0;
	return r->text[1 + n] == ']' || r->text[1 + n] == '/';
}

/* Decimal number of 1..10 digits at *s that fits in 32 bits, advancing *s. */
static int
scan_u32(const char **s, const char *end, uint32_t *out)
{
	uint64_t v = 0;
	const char *p = *s;

	while (p < end && *p >= '0' && *p <= '9' && p - *s < 11) {
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p == *s || p - *s > 10 || v > UINT32_MAX)
		return MP_ERR_SYNTAX;
	*out = (uint32_t)v;
	*s = p;
	return MP_OK;
}

static int
uidl_line(const char *s, size_t n, mp_pop3_uidl *e)
{
	const char *end = s + n, *u;

	if (scan_u32(&s, end, &e->msg) != MP_OK || e->msg == 0)
		return MP_ERR_SYNTAX;
	if (s == end || *s != ' ')
		return MP_ERR_SYNTAX;
	while (s < end && *s == ' ')
		s++;
	for (u = s; s < end && *s != ' '; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return MP_ERR_SYNTAX;
	if (s == u || s - u > MP_POP3_UID_MAX)
		return MP_ERR_SYNTAX;
	memcpy(e->uid, u, (size_t)(s - u));
	e->uid[s - u] = '\0';
	while (s < end && *s == ' ')
		s++;
	return s == end ? MP_OK : MP_ERR_SYNTAX;
}

int
mp_pop3_parse_uidl(const char *body, size_t len, mp_pop3_uidl **out, size_t *n)
{
	mp_pop3_uidl *v = NULL;
	size_t cnt = 0, cap = 0, pos = 0, ll;
	const char *line;
	int err;

	if (!out || !n || (!body && len))
		return MP_ERR_INVAL;
	*out = NULL;
	*n = 0;
	while (mp_mime_next_line(body, len, &pos, &line, &ll)) {
		if (cnt == MP_POP3_UIDL_MAX) {
			free(v);
			return MP_ERR_TOOBIG;
		}
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			mp_pop3_uidl *nv = realloc(v, ncap * sizeof *nv);

			if (!nv) {
				free(v);
				return MP_ERR_NOMEM;
			}
			v = nv;
			cap = ncap;
		}
		memset(&v[cnt], 0, sizeof v[cnt]);
		if ((err = uidl_line(line, ll, &v[cnt])) != MP_OK) {
			free(v);
			return err;
		}
		cnt++;
	}
	if (cnt == 0) {
		free(v);
		v = NULL;
	}
	*out = v;
	*n = cnt;
	return MP_OK;
}

int
mp_pop3_parse_scan(const char *text, uint32_t *msg, uint64_t *size)
{
	const char *s = text, *end;
	uint64_t v = 0;

	if (!text || !msg || !size)
		return MP_ERR_INVAL;
	end = text + strlen(text);
	if (scan_u32(&s, end, msg) != MP_OK || s == end || *s != ' ')
		return MP_ERR_SYNTAX;
	s++;
	if (s == end || *s < '0' || *s > '9')
		return MP_ERR_SYNTAX;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return MP_ERR_SYNTAX;
		v = v * 10 + d;
	}
	if (s != end && *s != ' ')
		return MP_ERR_SYNTAX;
	*size = v;
	return MP_OK;
}

int
mp_pop3_subject_match(const char *hdr, size_t len, const char *marker)
{
	mp_mime_field f;
	size_t pos = 0;
	char *subject;
	int hit;

	if (!hdr)
		return 0;
	while (mp_mime_header_next(hdr, len, &pos, &f)) {
		if (!mp_mime_field_is(&f, "Subject"))
			continue;
		if (mp_mime_unfold(f.value, f.value_len, &subject) != MP_OK)
			return MP_ERR_NOMEM;
		hit = mp_mail_subject_has_marker(subject, marker);
		free(subject);
		return hit;
	}
	return 0;
}

int
mp_pop3_arg_ok(const char *s)
{
	size_t n;

	if (!s || (n = strlen(s)) == 0 || n > 255)
		return 0;
	return strpbrk(s, "\r\n") == NULL;
}
