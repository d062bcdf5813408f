/*
 * mime.c - internal MIME helpers for the mail codec.
 *
 * Interface: see mime.h.  Every scan moves forward through its input and
 * looks at each byte a bounded number of times, so the cost is linear in
 * the input whatever its content (long lines, no line ends at all, runs
 * of blanks).  The helpers are deliberately lenient where mail systems
 * are known to be sloppy and never guess beyond that: a value they cannot
 * read is reported (MP_ERR_MIME) or falls back to the RFC 2045 default.
 * Errors: MP_ERR_MIME, MP_ERR_NOMEM, MP_ERR_TOOBIG.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailpunch/error.h"
#include "mime.h"

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int
is_eol(char c)
{
	return c == '\r' || c == '\n';
}

static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ---------------------------------------------------------------- lines */

int
mp_mime_next_line(const char *buf, size_t len, size_t *pos,
                  const char **line, size_t *line_len)
{
	size_t i = *pos;

	if (i >= len)
		return 0;
	*line = buf + i;
	while (i < len && !is_eol(buf[i]))
		i++;
	*line_len = i - *pos;
	if (i < len) {
		if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
			i += 2;
		else
			i++;
	}
	*pos = i;
	return 1;
}

/* ---------------------------------------------------------------- headers */

/* RFC 5322 ftext: printable ASCII except the colon. */
static int
is_ftext(char c)
{
	unsigned char u = (unsigned char)c;

	return u >= 33 && u <= 126 && u != ':';
}

/* Length of a valid field name at the start of line, 0 if there is none;
 * *colon gets the offset of the colon. */
static size_t
field_name(const char *line, size_t ll, size_t *colon)
{
	size_t n = 0, i;

	while (n < ll && is_ftext(line[n]))
		n++;
	i = n;
	while (i < ll && is_blank(line[i]))   /* obs-optional "Name :" */
		i++;
	if (n == 0 || i >= ll || line[i] != ':')
		return 0;
	*colon = i;
	return n;
}

int
mp_mime_header_next(const char *buf, size_t len, size_t *pos,
                    mp_mime_field *f)
{
	const char *line;
	size_t ll, next, colon = 0, n;

	for (;;) {
		next = *pos;
		if (!mp_mime_next_line(buf, len, &next, &line, &ll))
			return 0;
		if (ll == 0) {
			*pos = next;
			return 0;
		}
		if (is_blank(line[0])) {
			/* Continuation with no field before it: drop it. */
			*pos = next;
			continue;
		}
		n = field_name(line, ll, &colon);
		if (n == 0) {
			if (*pos == 0 && ll >= 5 && memcmp(line, "From ", 5) == 0) {
				*pos = next;
				continue;
			}
			return 0;
		}
		break;
	}
	/* Swallow continuation lines: they start with a blank. */
	while (next < len && is_blank(buf[next])) {
		const char *cl;
		size_t cll;

		mp_mime_next_line(buf, len, &next, &cl, &cll);
		ll = (size_t)(cl + cll - line);
	}
	f->name = line;
	f->name_len = n;
	f->value = line + colon + 1;
	f->value_len = ll - colon - 1;
	*pos = next;
	return 1;
}

int
mp_mime_field_is(const mp_mime_field *f, const char *name)
{
	size_t n = strlen(name);

	return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

int
mp_mime_unfold(const char *value, size_t len, char **out)
{
	size_t i, o = 0;
	char *s;

	if ((s = malloc(len + 1)) == NULL)
		return MP_ERR_NOMEM;
	for (i = 0; i < len; i++) {
		if (is_eol(value[i]))
			continue;
		if (o == 0 && is_blank(value[i]))
			continue;
		s[o++] = value[i];
	}
	while (o > 0 && is_blank(s[o - 1]))
		o--;
	s[o] = '\0';
	*out = s;
	return MP_OK;
}

/* ---------------------------------------------------------------- Content-Type */

/* A cursor over a structured header value (RFC 2045 5.1). */
typedef struct cursor {
	const char *s;
	size_t len;
	size_t i;
} cursor;

/* Skip blanks, folding line ends and (nested) comments. */
static void
skip_cfws(cursor *c)
{
	while (c->i < c->len) {
		char ch = c->s[c->i];

		if (is_blank(ch) || is_eol(ch)) {
			c->i++;
		} else if (ch == '(') {
			size_t depth = 0;

			for (; c->i < c->len; c->i++) {
				ch = c->s[c->i];
				if (ch == '\\' && c->i + 1 < c->len) {
					c->i++;
				} else if (ch == '(') {
					depth++;
				} else if (ch == ')' && --depth == 0) {
					c->i++;
					break;
				}
			}
		} else {
			break;
		}
	}
}

/* RFC 2045 token character. */
static int
is_token(char ch)
{
	unsigned char u = (unsigned char)ch;

	return u > 32 && u < 127 && strchr("()<>@,;:\\\"/[]?=", ch) == NULL;
}

/* Read a token into dst (lower-cased when lower); 0 if none or too long. */
static size_t
read_token(cursor *c, char *dst, size_t cap, int lower)
{
	size_t n = 0;

	while (c->i < c->len && is_token(c->s[c->i])) {
		if (n + 1 >= cap)
			return 0;
		dst[n++] = lower ? ascii_lower(c->s[c->i]) : c->s[c->i];
		c->i++;
	}
	dst[n] = '\0';
	return n;
}

/* Read a token or quoted-string value into dst.  Returns its length, or
 * (size_t)-1 on syntax error; a value longer than cap-1 is read to its
 * end but reported as cap (too long to use). */
static size_t
read_value(cursor *c, char *dst, size_t cap)
{
	size_t n = 0;
	int over = 0;

	if (c->i < c->len && c->s[c->i] == '"') {
		c->i++;
		for (;;) {
			char ch;

			if (c->i >= c->len)
				return (size_t)-1;  /* unterminated quote */
			ch = c->s[c->i++];
			if (ch == '"')
				break;
			if (is_eol(ch))
				continue;           /* folding inside quotes */
			if (ch == '\\' && c->i < c->len)
				ch = c->s[c->i++];
			if (n + 1 < cap)
				dst[n++] = ch;
			else
				over = 1;
		}
	} else {
		while (c->i < c->len && is_token(c->s[c->i])) {
			if (n + 1 < cap)
				dst[n++] = c->s[c->i];
			else
				over = 1;
			c->i++;
		}
		if (n == 0 && !over)
			return (size_t)-1;
	}
	dst[n] = '\0';
	return over ? cap : n;
}

static void
ctype_default(mp_mime_ctype *ct)
{
	memset(ct, 0, sizeof(*ct));
	strcpy(ct->type, "text");
	strcpy(ct->subtype, "plain");
}

int
mp_mime_ctype_parse(const char *value, size_t len, mp_mime_ctype *ct)
{
	cursor c = { value, len, 0 };
	char attr[64], val[MP_MIME_BOUNDARY_MAX + 1];

	ctype_default(ct);
	if (value == NULL)
		return MP_ERR_MIME;
	skip_cfws(&c);
	if (read_token(&c, ct->type, sizeof(ct->type), 1) == 0)
		goto bad;
	skip_cfws(&c);
	if (c.i >= c.len || c.s[c.i] != '/')
		goto bad;
	c.i++;
	skip_cfws(&c);
	if (read_token(&c, ct->subtype, sizeof(ct->subtype), 1) == 0)
		goto bad;
	/* Parameters: a syntax error only stops the parameter list, since the
	 * type is already known and a broken trailing parameter is common. */
	for (;;) {
		size_t n;

		skip_cfws(&c);
		if (c.i >= c.len || c.s[c.i] != ';')
			break;
		c.i++;
		skip_cfws(&c);
		if (c.i >= c.len)
			break;
		if (read_token(&c, attr, sizeof(attr), 1) == 0)
			break;
		skip_cfws(&c);
		if (c.i >= c.len || c.s[c.i] != '=')
			break;
		c.i++;
		skip_cfws(&c);
		n = read_value(&c, val, sizeof(val));
		if (n == (size_t)-1)
			break;
		if (strcmp(attr, "boundary") == 0 && ct->boundary_len == 0 &&
		    n > 0 && n < sizeof(val)) {
			memcpy(ct->boundary, val, n + 1);
			ct->boundary_len = n;
		}
	}
	return MP_OK;
bad:
	ctype_default(ct);
	return MP_ERR_MIME;
}

int
mp_mime_ctype_is(const mp_mime_ctype *ct, const char *type,
                 const char *subtype)
{
	if (strcmp(ct->type, type) != 0)
		return 0;
	return subtype == NULL || strcmp(ct->subtype, subtype) == 0;
}

mp_mime_cte
mp_mime_cte_parse(const char *value, size_t len)
{
	cursor c = { value, len, 0 };
	char tok[32];

	if (value == NULL)
		return MP_MIME_CTE_IDENTITY;
	skip_cfws(&c);
	if (read_token(&c, tok, sizeof(tok), 1) == 0)
		return MP_MIME_CTE_IDENTITY;
	if (strcmp(tok, "quoted-printable") == 0)
		return MP_MIME_CTE_QP;
	if (strcmp(tok, "base64") == 0)
		return MP_MIME_CTE_BASE64;
	return MP_MIME_CTE_IDENTITY;
}

/* ---------------------------------------------------------------- bodies */

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = ascii_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
mp_mime_qp_decode(const char *in, size_t len, char **out, size_t *outlen)
{
	size_t i = 0, j, o = 0;
	char *s;

	if ((s = malloc(len + 1)) == NULL)
		return MP_ERR_NOMEM;
	while (i < len) {
		char c = in[i];

		if (c == '=') {
			if (i + 2 < len && hex_value(in[i + 1]) >= 0 &&
			    hex_value(in[i + 2]) >= 0) {
				s[o++] = (char)(hex_value(in[i + 1]) << 4 |
				                hex_value(in[i + 2]));
				i += 3;
				continue;
			}
			/* Soft line break, maybe with transport-added blanks. */
			for (j = i + 1; j < len && is_blank(in[j]); j++)
				;
			if (j == len) {
				i = j;
			} else if (in[j] == '\r') {
				i = j + 1 < len && in[j + 1] == '\n' ? j + 2 : j + 1;
			} else if (in[j] == '\n') {
				i = j + 1;
			} else {
				s[o++] = '=';
				i++;
			}
			continue;
		}
		if (is_blank(c)) {
			/* Blanks before a line end were added in transit. */
			for (j = i; j < len && is_blank(in[j]); j++)
				;
			if (j < len && !is_eol(in[j])) {
				memcpy(s + o, in + i, j - i);
				o += j - i;
			}
			i = j;
			continue;
		}
		s[o++] = c;
		i++;
	}
	s[o] = '\0';
	*out = s;
	if (outlen)
		*outlen = o;
	return MP_OK;
}

int
mp_mime_eol_crlf(const char *in, size_t len, char **out, size_t *outlen)
{
	size_t i, n = 0, o = 0;
	char *s;

	for (i = 0; i < len; i++)
		if (in[i] == '\n' || (in[i] == '\r' &&
		                      (i + 1 >= len || in[i + 1] != '\n')))
			n++;
	if (len > (size_t)-1 / 2 - 1)
		return MP_ERR_TOOBIG;
	if ((s = malloc(len + n + 1)) == NULL)
		return MP_ERR_NOMEM;
	for (i = 0; i < len; i++) {
		if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n') {
			s[o++] = '\r';
			s[o++] = '\n';
			i++;
		} else if (is_eol(in[i])) {
			s[o++] = '\r';
			s[o++] = '\n';
		} else {
			s[o++] = in[i];
		}
	}
	s[o] = '\0';
	*out = s;
	if (outlen)
		*outlen = o;
	return MP_OK;
}

/* ---------------------------------------------------------------- multipart */

void
mp_mime_multipart_init(mp_mime_multipart *it, const char *buf, size_t len,
                       const char *boundary, size_t boundary_len)
{
	memset(it, 0, sizeof(*it));
	it->buf = buf;
	it->len = len;
	it->boundary = boundary;
	it->boundary_len = boundary_len;
}

/* 0: not a delimiter, 1: delimiter, 2: close delimiter.  Only blanks may
 * follow a delimiter (RFC 2046 transport padding); anything may follow a
 * close delimiter, as some generators append text there. */
static int
delimiter_kind(const mp_mime_multipart *it, const char *line, size_t ll)
{
	size_t b = it->boundary_len, i;

	if (ll < 2 + b || line[0] != '-' || line[1] != '-' ||
	    memcmp(line + 2, it->boundary, b) != 0)
		return 0;
	i = 2 + b;
	if (i + 1 < ll && line[i] == '-' && line[i + 1] == '-')
		return 2;
	for (; i < ll; i++)
		if (!is_blank(line[i]))
			return 0;
	return 1;
}

int
mp_mime_multipart_next(mp_mime_multipart *it, const char **part,
                       size_t *part_len)
{
	const char *line;
	size_t ll, start, lstart, prev_end;
	int kind;

	if (it->done || it->boundary_len == 0)
		return 0;
	if (!it->started) {
		for (;;) {
			if (!mp_mime_next_line(it->buf, it->len, &it->pos,
			                       &line, &ll)) {
				it->done = 1;
				return 0;
			}
			kind = delimiter_kind(it, line, ll);
			if (kind == 2) {
				it->done = 1;
				return 0;
			}
			if (kind == 1)
				break;
		}
		it->started = 1;
	}
	start = prev_end = it->pos;
	for (;;) {
		lstart = it->pos;
		if (!mp_mime_next_line(it->buf, it->len, &it->pos, &line, &ll))
			break;
		kind = delimiter_kind(it, line, ll);
		if (kind != 0) {
			/* The line end before a delimiter belongs to it. */
			*part = it->buf + start;
			*part_len = lstart == start ? 0 : prev_end - start;
			if (kind == 2)
				it->done = 1;
			return 1;
		}
		prev_end = lstart + ll;
	}
	it->done = 1;
	if (start >= it->len)
		return 0;
	*part = it->buf + start;
	*part_len = it->len - start;
	return 1;
}
