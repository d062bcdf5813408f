/*
 * imap_parse.c - IMAP server response reader and parser (see imap_parse.h).
 *
 * Interface: mp_imap_reader_*(), mp_imap_parse(), mp_imap_response_free()
 * and the item/word/quote helpers.
 * Errors: MP_ERR_TOOBIG, MP_ERR_SYNTAX, MP_ERR_NOMEM, MP_ERR_INVAL, as
 * values; nothing is logged here.
 *
 * Two stages.  The reader only frames: it collects line segments until
 * one ends without a literal announcement "{n}", copying each literal's
 * n bytes (or counting them away when over the limit) and noting where
 * each literal sits, so the parser never has to trust a "{n}" again.
 * The parser then walks the framed response once, in place: quoted
 * strings are unescaped into the bytes they came from (never longer), so
 * a response is one allocation for the bytes plus one for the item tree.
 * Framing is lenient about a bare LF line end, because a lenient reader
 * costs nothing here and some servers' literals end in LF; the token
 * grammar is lenient where real servers differ (bracketed sections with
 * blanks, "\" flags, 8-bit mailbox names) and strict where confusion
 * could hide data (control bytes, unbalanced lists, a stray literal).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailpunch/error.h"

#include "imap_parse.h"

typedef struct lit {
	size_t brace;       /* offset of '{' in buf */
	size_t data;        /* offset of the literal's first byte in buf */
	uint64_t size;      /* announced size */
	int dropped;        /* bytes thrown away: OVERSIZE */
} lit;

struct mp_imap_reader {
	size_t max_literal;
	char *buf;
	size_t len, cap;
	size_t text;        /* bytes outside literals, line ends included */
	size_t seg;         /* start of the current line segment */
	size_t kept;        /* literal bytes kept in this response */
	lit lits[MP_IMAP_LITERALS_MAX];
	size_t nlits;
	uint64_t lit_left;  /* > 0: inside a literal */
	int in_literal;
	int dropping;
	int broken;         /* sticky: the stream is out of step */
};

/* ---------------------------------------------------------------- reader */

int
mp_imap_reader_new(size_t max_literal, mp_imap_reader **out)
{
	mp_imap_reader *rd;

	if (!out)
		return MP_ERR_INVAL;
	*out = NULL;
	if (max_literal > MP_IMAP_LITERAL_LIMIT)
		return MP_ERR_INVAL;
	if (!(rd = calloc(1, sizeof *rd)))
		return MP_ERR_NOMEM;
	rd->max_literal = max_literal ? max_literal : MP_IMAP_LITERAL_DEFAULT;
	*out = rd;
	return MP_OK;
}

void
mp_imap_reader_free(mp_imap_reader *rd)
{
	if (!rd)
		return;
	free(rd->buf);
	free(rd);
}

static void
reader_reset(mp_imap_reader *rd)
{
	rd->buf = NULL;
	rd->len = rd->cap = 0;
	rd->text = rd->seg = rd->kept = 0;
	rd->nlits = 0;
	rd->lit_left = 0;
	rd->in_literal = rd->dropping = 0;
}

/* The caller has checked the bounds, so need stays below
 * MP_IMAP_LINE_MAX + MP_IMAP_LITERAL_LIMIT + 1 and cannot overflow. */
static int
reader_reserve(mp_imap_reader *rd, size_t more)
{
	size_t need = rd->len + more + 1, cap;
	char *p;

	if (need <= rd->cap)
		return MP_OK;
	cap = rd->cap ? rd->cap : 256;
	while (cap < need)
		cap *= 2;
	if (!(p = realloc(rd->buf, cap)))
		return MP_ERR_NOMEM;
	rd->buf = p;
	rd->cap = cap;
	return MP_OK;
}

static int
reader_append(mp_imap_reader *rd, const char *p, size_t n)
{
	int err;

	if ((err = reader_reserve(rd, n)) != MP_OK)
		return err;
	if (n)
		memcpy(rd->buf + rd->len, p, n);
	rd->len += n;
	rd->buf[rd->len] = '\0';
	return MP_OK;
}

/* A segment [seg, end) (line end stripped) that ends in "{digits}":
 * 1 and the size (UINT64_MAX when it does not fit), else 0. */
static int
segment_literal(const char *buf, size_t seg, size_t end, size_t *brace,
                uint64_t *size)
{
	size_t i, digits = 0;
	uint64_t v = 0;

	if (end - seg < 3 || buf[end - 1] != '}')
		return 0;
	for (i = end - 1; i > seg && buf[i - 1] >= '0' && buf[i - 1] <= '9'; i--)
		digits++;
	if (digits == 0 || i == seg || buf[i - 1] != '{')
		return 0;
	*brace = i - 1;
	for (; i < end - 1; i++) {
		unsigned d = (unsigned)(buf[i] - '0');

		if (v > (UINT64_MAX - d) / 10) {
			v = UINT64_MAX;
			break;
		}
		v = v * 10 + d;
	}
	*size = v;
	return 1;
}

/* A line segment has just been completed (its LF is at rd->len - 1). */
static int
reader_line_done(mp_imap_reader *rd, int *complete)
{
	size_t end = rd->len - 1, brace;
	uint64_t size;
	lit *l;

	if (end > rd->seg && rd->buf[end - 1] == '\r')
		end--;
	if (!segment_literal(rd->buf, rd->seg, end, &brace, &size)) {
		*complete = 1;
		return MP_OK;
	}
	if (rd->nlits == MP_IMAP_LITERALS_MAX)
		return MP_ERR_TOOBIG;
	l = &rd->lits[rd->nlits++];
	l->brace = brace;
	l->data = rd->len;
	l->size = size;
	l->dropped = size > rd->max_literal - rd->kept;
	if (!l->dropped)
		rd->kept += (size_t)size;
	rd->dropping = l->dropped;
	rd->lit_left = size;
	rd->in_literal = 1;
	*complete = 0;
	return MP_OK;
}

static int parse_response(char *buf, size_t len, const lit *lits, size_t nlits,
                          mp_imap_response **out);

static int
reader_finish(mp_imap_reader *rd, mp_imap_response **out)
{
	size_t len = rd->len;
	char *buf = rd->buf;
	lit lits[MP_IMAP_LITERALS_MAX];
	size_t nlits = rd->nlits;
	int err;

	/* strip the final line end: the parser sees only the response */
	len--;
	if (len > rd->seg && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	memcpy(lits, rd->lits, nlits * sizeof *lits);
	reader_reset(rd);
	err = parse_response(buf, len, lits, nlits, out);   /* takes buf */
	return err;
}

int
mp_imap_reader_feed(mp_imap_reader *rd, const char *data, size_t len,
                    size_t *used, mp_imap_response **out)
{
	size_t pos = 0;
	int err = MP_OK;

	if (used)
		*used = 0;
	if (out)
		*out = NULL;
	if (!rd || !used || !out || (!data && len))
		return MP_ERR_INVAL;
	if (rd->broken)
		return MP_ERR_SYNTAX;
	while (pos < len) {
		if (rd->in_literal) {
			size_t k = len - pos;

			if ((uint64_t)k > rd->lit_left)
				k = (size_t)rd->lit_left;
			if (!rd->dropping && (err = reader_append(rd, data + pos, k)) != MP_OK)
				break;
			pos += k;
			rd->lit_left -= k;
			if (rd->lit_left == 0) {
				rd->in_literal = 0;
				rd->seg = rd->len;
			}
			continue;
		}
		{
			const char *nl = memchr(data + pos, '\n', len - pos);
			size_t k = nl ? (size_t)(nl - (data + pos)) + 1 : len - pos;
			int complete = 0;

			if (k > MP_IMAP_LINE_MAX - rd->text) {
				err = MP_ERR_TOOBIG;
				break;
			}
			if ((err = reader_append(rd, data + pos, k)) != MP_OK)
				break;
			rd->text += k;
			pos += k;
			if (!nl)
				continue;
			if ((err = reader_line_done(rd, &complete)) != MP_OK)
				break;
			if (rd->in_literal && rd->lit_left == 0) {
				rd->in_literal = 0;
				rd->seg = rd->len;
			}
			if (complete) {
				*used = pos;
				if ((err = reader_finish(rd, out)) != MP_OK)
					rd->broken = 1;
				return err;
			}
		}
	}
	*used = pos;
	if (err != MP_OK)
		rd->broken = 1;
	return err;
}

/* ---------------------------------------------------------------- parser */

typedef struct parser {
	char *buf;
	size_t len, pos;
	const lit *lits;
	size_t nlits, nextlit;
	mp_imap_item *items;
	size_t nitems, cap;
} parser;

static int
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int
word_eq(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

static int
push_item(parser *p, mp_imap_type type, const char *s, size_t len, size_t *idx)
{
	if (p->nitems == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		mp_imap_item *n;

		/* items never outnumber the bytes plus the root: cannot overflow */
		if (!(n = realloc(p->items, cap * sizeof *n)))
			return MP_ERR_NOMEM;
		p->items = n;
		p->cap = cap;
	}
	p->items[p->nitems].type = type;
	p->items[p->nitems].s = s;
	p->items[p->nitems].len = len;
	p->items[p->nitems].end = p->nitems + 1;
	if (idx)
		*idx = p->nitems;
	p->nitems++;
	return MP_OK;
}

/* Atom, flag or section: up to a blank, paren or quote outside brackets;
 * "[...]" may hold blanks and parens (BODY[HEADER.FIELDS (SUBJECT)]). */
static int
scan_atom(parser *p, size_t *start, size_t *n)
{
	size_t i = p->pos;
	int depth = 0;

	*start = i;
	for (; i < p->len; i++) {
		unsigned char c = (unsigned char)p->buf[i];

		if (is_ctl(c))
			return MP_ERR_SYNTAX;
		if (depth == 0 && (c == ' ' || c == '(' || c == ')' || c == '"'))
			break;
		if (c == '[') {
			if (++depth > MP_IMAP_DEPTH_MAX)
				return MP_ERR_TOOBIG;
		} else if (c == ']' && depth > 0) {
			depth--;
		}
	}
	if (depth != 0 || i == *start)
		return MP_ERR_SYNTAX;
	*n = i - *start;
	p->pos = i;
	return MP_OK;
}

/* Quoted string unescaped in place; the slice starts after the quote. */
static int
scan_quoted(parser *p, size_t *start, size_t *n)
{
	size_t i = p->pos + 1, o = i;

	*start = i;
	for (; i < p->len; i++) {
		char c = p->buf[i];

		if (c == '\0' || c == '\r' || c == '\n')
			return MP_ERR_SYNTAX;
		if (c == '"') {
			*n = o - *start;
			p->pos = i + 1;
			return MP_OK;
		}
		if (c == '\\') {
			if (++i == p->len)
				break;
			c = p->buf[i];
			if (c == '\0' || c == '\r' || c == '\n')
				return MP_ERR_SYNTAX;
		}
		p->buf[o++] = c;
	}
	return MP_ERR_SYNTAX;
}

static int
scan_literal(parser *p, mp_imap_type *type, size_t *start, size_t *n)
{
	const lit *l;

	if (p->nextlit == p->nlits || p->lits[p->nextlit].brace != p->pos)
		return MP_ERR_SYNTAX;   /* a '{' the reader did not frame */
	l = &p->lits[p->nextlit++];
	if (l->dropped) {
		*type = MP_IMAP_OVERSIZE;
		*start = l->data;
		*n = l->size > SIZE_MAX ? SIZE_MAX : (size_t)l->size;
		p->pos = l->data;
	} else {
		*type = MP_IMAP_STRING;
		*start = l->data;
		*n = (size_t)l->size;
		p->pos = l->data + (size_t)l->size;
	}
	return MP_OK;
}

/* Items up to the end of the response into a root LIST at items[0]. */
static int
parse_items(parser *p)
{
	size_t stack[MP_IMAP_DEPTH_MAX + 1];
	size_t depth = 0, idx;
	int err;

	if ((err = push_item(p, MP_IMAP_LIST, "", 0, &stack[0])) != MP_OK)
		return err;
	while (p->pos < p->len) {
		char c = p->buf[p->pos];
		mp_imap_type type;
		size_t start, n;

		if (c == ' ') {
			p->pos++;
			continue;
		}
		if (c == '(') {
			if (depth == MP_IMAP_DEPTH_MAX)
				return MP_ERR_TOOBIG;
			if ((err = push_item(p, MP_IMAP_LIST, "", 0, &idx)) != MP_OK)
				return err;
			stack[++depth] = idx;
			p->pos++;
			continue;
		}
		if (c == ')') {
			if (depth == 0)
				return MP_ERR_SYNTAX;
			p->items[stack[depth--]].end = p->nitems;
			p->pos++;
			continue;
		}
		if (c == '"') {
			type = MP_IMAP_STRING;
			err = scan_quoted(p, &start, &n);
		} else if (c == '{') {
			err = scan_literal(p, &type, &start, &n);
		} else {
			type = MP_IMAP_ATOM;
			err = scan_atom(p, &start, &n);
		}
		if (err != MP_OK)
			return err;
		if (type == MP_IMAP_ATOM && word_eq(p->buf + start, n, "NIL"))
			err = push_item(p, MP_IMAP_NIL, "", 0, NULL);
		else if (type == MP_IMAP_OVERSIZE)
			err = push_item(p, type, "", n, NULL);
		else
			err = push_item(p, type, p->buf + start, n, NULL);
		if (err != MP_OK)
			return err;
	}
	if (depth != 0 || p->nextlit != p->nlits)
		return MP_ERR_SYNTAX;
	p->items[0].end = p->nitems;
	return MP_OK;
}

/* A word of non-blank, non-control bytes at p->pos (keyword, tag). */
static int
scan_word(parser *p, size_t *start, size_t *n)
{
	size_t i = p->pos;

	*start = i;
	while (i < p->len && p->buf[i] != ' ') {
		if (is_ctl((unsigned char)p->buf[i]))
			return MP_ERR_SYNTAX;
		i++;
	}
	if (i == *start)
		return MP_ERR_SYNTAX;
	*n = i - *start;
	p->pos = i;
	return MP_OK;
}

static mp_imap_status
status_of(const char *s, size_t n, int tagged)
{
	if (word_eq(s, n, "OK"))
		return MP_IMAP_OK;
	if (word_eq(s, n, "NO"))
		return MP_IMAP_NO;
	if (word_eq(s, n, "BAD"))
		return MP_IMAP_BAD;
	if (!tagged && word_eq(s, n, "BYE"))
		return MP_IMAP_BYE;
	if (!tagged && word_eq(s, n, "PREAUTH"))
		return MP_IMAP_PREAUTH;
	return MP_IMAP_DATA;
}

/* End of the first line segment: free text never runs into a literal. */
static size_t
first_line_end(const parser *p)
{
	return p->nlits ? p->lits[0].data : p->len;
}

/* Free text up to the end of its line, line end and control bytes
 * included as they are: the caller sanitises before logging. */
static void
take_text(parser *p, mp_imap_response *r)
{
	size_t end = first_line_end(p);

	if (p->pos > end)
		p->pos = end;
	r->text = p->buf + p->pos;
	r->text_len = end - p->pos;
	p->pos = end;
}

/* resp-text: ["[" code "]" [SP]] text */
static void
parse_resp_text(parser *p, mp_imap_response *r)
{
	size_t end = first_line_end(p), i;

	while (p->pos < end && p->buf[p->pos] == ' ')
		p->pos++;
	r->code = "";
	r->code_len = 0;
	if (p->pos < end && p->buf[p->pos] == '[') {
		for (i = p->pos + 1; i < end && p->buf[i] != ']'; i++)
			;
		if (i < end) {
			r->code = p->buf + p->pos + 1;
			r->code_len = i - p->pos - 1;
			p->pos = i + 1;
			if (p->pos < end && p->buf[p->pos] == ' ')
				p->pos++;
		}
	}
	take_text(p, r);
}

static int
parse_u32(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 10)
		return MP_ERR_SYNTAX;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return MP_ERR_SYNTAX;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return MP_ERR_SYNTAX;
	*out = (uint32_t)v;
	return MP_OK;
}

static int
parse_untagged(parser *p, mp_imap_response *r)
{
	size_t start, n;
	int err;

	r->kind = MP_IMAP_UNTAGGED;
	p->pos = 2;
	if ((err = scan_word(p, &start, &n)) != MP_OK)
		return err;
	if (p->buf[start] >= '0' && p->buf[start] <= '9') {
		if ((err = parse_u32(p->buf + start, n, &r->number)) != MP_OK)
			return err;
		r->has_number = 1;
		if (p->pos >= p->len || p->buf[p->pos] != ' ')
			return MP_ERR_SYNTAX;
		p->pos++;
		if ((err = scan_word(p, &start, &n)) != MP_OK)
			return err;
	}
	r->name = p->buf + start;
	r->name_len = n;
	r->status = r->has_number ? MP_IMAP_DATA : status_of(r->name, n, 0);
	if (r->status != MP_IMAP_DATA) {
		parse_resp_text(p, r);
		if (p->nlits)
			return MP_ERR_SYNTAX;   /* literals in free text: not IMAP */
		return push_item(p, MP_IMAP_LIST, "", 0, NULL);
	}
	return parse_items(p);
}

static int
parse_tagged(parser *p, mp_imap_response *r)
{
	size_t start, n, i;
	int err;

	r->kind = MP_IMAP_TAGGED;
	p->pos = 0;
	if ((err = scan_word(p, &start, &n)) != MP_OK)
		return err;
	for (i = start; i < start + n; i++)
		if (strchr("(){%*\"\\]+", p->buf[i]))
			return MP_ERR_SYNTAX;
	r->tag = p->buf + start;
	r->tag_len = n;
	if (p->pos >= p->len || p->buf[p->pos] != ' ')
		return MP_ERR_SYNTAX;
	p->pos++;
	if ((err = scan_word(p, &start, &n)) != MP_OK)
		return err;
	if ((r->status = status_of(p->buf + start, n, 1)) == MP_IMAP_DATA)
		return MP_ERR_SYNTAX;
	r->name = p->buf + start;
	r->name_len = n;
	parse_resp_text(p, r);
	if (p->nlits)
		return MP_ERR_SYNTAX;
	return push_item(p, MP_IMAP_LIST, "", 0, NULL);
}

static int
parse_continue(parser *p, mp_imap_response *r)
{
	r->kind = MP_IMAP_CONTINUE;
	p->pos = 1;
	if (p->pos < p->len && p->buf[p->pos] == ' ')
		p->pos++;
	take_text(p, r);
	if (p->nlits)
		return MP_ERR_SYNTAX;
	return push_item(p, MP_IMAP_LIST, "", 0, NULL);
}

/* Takes buf (freed on failure too). */
static int
parse_response(char *buf, size_t len, const lit *lits, size_t nlits,
               mp_imap_response **out)
{
	parser p;
	mp_imap_response *r;
	int err;

	*out = NULL;
	memset(&p, 0, sizeof p);
	p.buf = buf;
	p.len = len;
	p.lits = lits;
	p.nlits = nlits;
	if (!(r = calloc(1, sizeof *r))) {
		free(buf);
		return MP_ERR_NOMEM;
	}
	r->buf_ = buf;
	r->tag = r->name = r->code = r->text = "";
	if (len >= 1 && buf[0] == '+')
		err = parse_continue(&p, r);
	else if (len >= 2 && buf[0] == '*' && buf[1] == ' ')
		err = parse_untagged(&p, r);
	else
		err = parse_tagged(&p, r);
	r->items = p.items;
	r->nitems = p.nitems;
	if (err != MP_OK) {
		mp_imap_response_free(r);
		return err;
	}
	*out = r;
	return MP_OK;
}

int
mp_imap_parse(const char *data, size_t len, size_t max_literal,
              mp_imap_response **out)
{
	mp_imap_reader *rd;
	size_t used = 0;
	int err;

	if (!out)
		return MP_ERR_INVAL;
	*out = NULL;
	if ((err = mp_imap_reader_new(max_literal, &rd)) != MP_OK)
		return err;
	err = mp_imap_reader_feed(rd, data, len, &used, out);
	mp_imap_reader_free(rd);
	if (err != MP_OK)
		return err;
	if (!*out)
		return MP_ERR_TRUNCATED;
	if (used != len) {
		mp_imap_response_free(*out);
		*out = NULL;
		return MP_ERR_SYNTAX;
	}
	return MP_OK;
}

void
mp_imap_response_free(mp_imap_response *r)
{
	if (!r)
		return;
	free(r->items);
	free(r->buf_);
	free(r);
}

/* ---------------------------------------------------------------- access */

int
mp_imap_item_is(const mp_imap_item *it, const char *word)
{
	return it && word && it->type == MP_IMAP_ATOM && word_eq(it->s, it->len, word);
}

int
mp_imap_item_u64(const mp_imap_item *it, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!it || !out || it->type != MP_IMAP_ATOM || it->len == 0 || it->len > 20)
		return MP_ERR_SYNTAX;
	for (i = 0; i < it->len; i++) {
		unsigned d = (unsigned)(it->s[i] - '0');

		if (it->s[i] < '0' || it->s[i] > '9' || v > (UINT64_MAX - d) / 10)
			return MP_ERR_SYNTAX;
		v = v * 10 + d;
	}
	*out = v;
	return MP_OK;
}

int
mp_imap_item_u32(const mp_imap_item *it, uint32_t *out)
{
	uint64_t v;

	if (!out || mp_imap_item_u64(it, &v) != MP_OK || v > UINT32_MAX)
		return MP_ERR_SYNTAX;
	*out = (uint32_t)v;
	return MP_OK;
}

const mp_imap_item *
mp_imap_list_get(const mp_imap_response *r, size_t list, const char *name)
{
	size_t i, end;

	if (!r || !name || list >= r->nitems || r->items[list].type != MP_IMAP_LIST)
		return NULL;
	end = r->items[list].end;
	for (i = list + 1; i < end; i = r->items[i].end) {
		size_t v = r->items[i].end;

		if (v >= end)
			return NULL;
		if (mp_imap_item_is(&r->items[i], name))
			return &r->items[v];
		i = v;   /* skip the value */
	}
	return NULL;
}

int
mp_imap_word_next(const char *s, size_t len, size_t *pos, const char **word,
                  size_t *word_len)
{
	size_t i = *pos, start;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= len) {
		*pos = len;
		return 0;
	}
	start = i;
	while (i < len && s[i] != ' ' && s[i] != '\t')
		i++;
	*word = s + start;
	*word_len = i - start;
	*pos = i;
	return 1;
}

int
mp_imap_quote(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	if (!s || !out || outlen == 0)
		return MP_ERR_INVAL;
	out[0] = '\0';
	if (outlen < 3)
		return MP_ERR_TOOBIG;
	out[o++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\r' || c == '\n' || c >= 0x80) {
			out[0] = '\0';
			return MP_ERR_SYNTAX;
		}
		if (o + (c == '"' || c == '\\') + 3 > outlen) {
			out[0] = '\0';
			return MP_ERR_TOOBIG;
		}
		if (c == '"' || c == '\\')
			out[o++] = '\\';
		out[o++] = (char)c;
	}
	out[o++] = '"';
	out[o] = '\0';
	return MP_OK;
}

char *
mp_imap_printable(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i;

	if (!out || outlen == 0)
		return out;
	if (!s)
		len = 0;
	for (i = 0; i < len && i < outlen - 1; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[i] = '\0';
	return out;
}
