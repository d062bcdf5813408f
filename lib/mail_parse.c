/*
 * mail_parse.c - find the mailpunch block in a received mail.
 *
 * Interface: mp_mail_parse(), mp_parsed_mail_free(), mp_mail_find_block(),
 * mp_mail_header_is_auto(), mp_mail_extract_addr(),
 * mp_mail_subject_has_marker() (see mailpunch/mail.h).
 *
 * The body is walked as a MIME tree, depth first, in order.  Only "text/..."
 * parts and parts without a Content-Type are searched, after undoing
 * their quoted-printable or base64 transfer encoding; "message/..." parts
 * (forwarded mails, bounces quoting our own mail) and other media types
 * are never searched, so a bounce is not mistaken for a rendezvous.  In
 * a searched part, a line that is MP_ARMOR_BEGIN once blanks are trimmed
 * opens an armour, the next such MP_ARMOR_END line closes it, and the
 * text between is base64 with blanks and line ends ignored.  A second
 * BEGIN before END restarts the armour.  The first armour that decodes
 * to 1..MP_MAIL_BLOCK_MAX bytes wins.
 *
 * Limits: limits.max_depth counts nested multipart levels (the top-level
 * body is level 0, so 8 allows 8 nested multiparts), limits.max_parts
 * counts every entity visited including the top-level body and the
 * multipart containers.  Hitting either stops the walk.
 *
 * Headers: mp_mail_parse() keeps the first From, To, Subject, Message-ID,
 * In-Reply-To, Content-Type and Content-Transfer-Encoding; an address or
 * message-id it cannot read leaves that field NULL without failing.
 * *out is always safe to pass to mp_parsed_mail_free(), and its header
 * fields are filled whatever the block search returned (not after
 * MP_ERR_NOMEM, MP_ERR_INVAL or an over-size input).
 *
 * Recursion is bounded by the depth limit (clamped to MAIL_DEPTH_HARD),
 * parts by the part limit, and no part is copied except to undo its
 * transfer encoding, so memory stays within a small multiple of the input.
 *
 * Errors: when no armour wins, the most telling failure seen is returned:
 * MP_ERR_TOOBIG (an armour over MP_MAIL_BLOCK_MAX), else MP_ERR_BASE64 (an
 * armour that does not decode, is empty, or has BEGIN without END), else
 * MP_ERR_MIME (a limit was reached or a part was unreadable), else
 * MP_ERR_NOBLOCK.  MP_ERR_NOMEM aborts at once; MP_ERR_INVAL for NULL
 * arguments; MP_ERR_TOOBIG for input over limits.max_size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailpunch/error.h"
#include "mailpunch/mail.h"
#include "base64.h"
#include "mime.h"

#define MAIL_SIZE_DEFAULT ((size_t)1 << 20)
#define MAIL_DEPTH_DEFAULT 8
#define MAIL_PARTS_DEFAULT 64
/* Whatever the caller asks, recursion stays shallow enough for any stack. */
#define MAIL_DEPTH_HARD 64

typedef struct walk {
	size_t max_size;
	unsigned max_depth;
	unsigned max_parts;
	unsigned parts;      /* entities visited so far */
	int stop;            /* part limit reached: visit nothing more */
	int err;             /* most telling failure so far */
	uint8_t *block;
	size_t block_len;
} walk;

static void
walk_init(walk *w, const mp_mail_limits *lim)
{
	memset(w, 0, sizeof(*w));
	w->max_size = lim && lim->max_size ? lim->max_size : MAIL_SIZE_DEFAULT;
	w->max_depth = lim && lim->max_depth ? lim->max_depth
	                                     : MAIL_DEPTH_DEFAULT;
	if (w->max_depth > MAIL_DEPTH_HARD)
		w->max_depth = MAIL_DEPTH_HARD;
	w->max_parts = lim && lim->max_parts ? lim->max_parts
	                                     : MAIL_PARTS_DEFAULT;
	w->err = MP_ERR_NOBLOCK;
}

static int
err_rank(int err)
{
	switch (err) {
	case MP_ERR_TOOBIG: return 3;
	case MP_ERR_BASE64: return 2;
	case MP_ERR_MIME: return 1;
	default: return 0;
	}
}

static void
walk_note(walk *w, int err)
{
	if (err_rank(err) > err_rank(w->err))
		w->err = err;
}

/* ---------------------------------------------------------------- armour */

static int
line_is(const char *line, size_t ll, const char *marker)
{
	size_t n = strlen(marker);

	while (ll > 0 && (line[0] == ' ' || line[0] == '\t')) {
		line++;
		ll--;
	}
	while (ll > 0 && (line[ll - 1] == ' ' || line[ll - 1] == '\t'))
		ll--;
	return ll == n && memcmp(line, marker, n) == 0;
}

/* Decode one armour body; MP_OK only for a usable block. */
static int
armour_decode(walk *w, const char *data, size_t len)
{
	uint8_t *blk;
	size_t blen;
	int rc;

	rc = mp_base64_decode(data, len, 0, MP_MAIL_BLOCK_MAX, &blk, &blen);
	if (rc != MP_OK)
		return rc;
	if (blen == 0) {
		free(blk);
		return MP_ERR_BASE64;
	}
	w->block = blk;
	w->block_len = blen;
	return MP_OK;
}

static int
armour_search(walk *w, const char *text, size_t len)
{
	const char *line;
	size_t pos = 0, lstart = 0, data = 0, ll;
	int open = 0, rc;

	while (mp_mime_next_line(text, len, &pos, &line, &ll)) {
		if (line_is(line, ll, MP_ARMOR_BEGIN)) {
			open = 1;
			data = pos;
		} else if (open && line_is(line, ll, MP_ARMOR_END)) {
			open = 0;
			rc = armour_decode(w, text + data, lstart - data);
			if (rc == MP_OK || rc == MP_ERR_NOMEM)
				return rc;
			walk_note(w, rc);
		}
		lstart = pos;
	}
	if (open)
		walk_note(w, MP_ERR_BASE64);
	return MP_ERR_NOBLOCK;
}

/* Undo the transfer encoding of a text part, then search it. */
static int
search_text(walk *w, mp_mime_cte cte, const char *body, size_t len)
{
	char *dec = NULL;
	uint8_t *raw = NULL;
	size_t dlen = 0;
	int rc;

	switch (cte) {
	case MP_MIME_CTE_QP:
		if ((rc = mp_mime_qp_decode(body, len, &dec, &dlen)) != MP_OK)
			return rc;
		rc = armour_search(w, dec, dlen);
		free(dec);
		return rc;
	case MP_MIME_CTE_BASE64:
		rc = mp_base64_decode(body, len, 0, w->max_size, &raw, &dlen);
		if (rc == MP_ERR_NOMEM)
			return rc;
		if (rc != MP_OK) {
			walk_note(w, MP_ERR_MIME);
			return MP_ERR_NOBLOCK;
		}
		rc = armour_search(w, (const char *)raw, dlen);
		free(raw);
		return rc;
	case MP_MIME_CTE_IDENTITY:
		break;
	}
	return armour_search(w, body, len);
}

/* ---------------------------------------------------------------- MIME walk */

static int walk_entity(walk *w, const char *ct, size_t ctlen,
                       const char *cte, size_t ctelen, int default_message,
                       const char *body, size_t len, unsigned depth);

/* One body part: its own header section, then recurse. */
static int
walk_part(walk *w, const char *part, size_t len, int default_message,
          unsigned depth)
{
	const char *ct = NULL, *cte = NULL;
	size_t ctlen = 0, ctelen = 0, pos = 0;
	mp_mime_field f;

	while (mp_mime_header_next(part, len, &pos, &f)) {
		if (ct == NULL && mp_mime_field_is(&f, "Content-Type")) {
			ct = f.value;
			ctlen = f.value_len;
		} else if (cte == NULL &&
		           mp_mime_field_is(&f, "Content-Transfer-Encoding")) {
			cte = f.value;
			ctelen = f.value_len;
		}
	}
	return walk_entity(w, ct, ctlen, cte, ctelen, default_message,
	                   part + pos, len - pos, depth);
}

static int
walk_multipart(walk *w, const mp_mime_ctype *ct, const char *body,
               size_t len, unsigned depth)
{
	mp_mime_multipart it;
	const char *part;
	size_t plen;
	/* RFC 2046 5.1.5: in a digest, parts default to message/rfc822. */
	int digest = strcmp(ct->subtype, "digest") == 0;
	int rc;

	if (depth >= w->max_depth || ct->boundary_len == 0) {
		walk_note(w, MP_ERR_MIME);
		return MP_ERR_NOBLOCK;
	}
	mp_mime_multipart_init(&it, body, len, ct->boundary, ct->boundary_len);
	while (!w->stop && mp_mime_multipart_next(&it, &part, &plen)) {
		rc = walk_part(w, part, plen, digest, depth + 1);
		if (rc == MP_OK || rc == MP_ERR_NOMEM)
			return rc;
	}
	return MP_ERR_NOBLOCK;
}

static int
walk_entity(walk *w, const char *ctv, size_t ctlen, const char *ctev,
            size_t ctelen, int default_message, const char *body,
            size_t len, unsigned depth)
{
	mp_mime_ctype ct;

	if (w->stop)
		return MP_ERR_NOBLOCK;
	if (++w->parts > w->max_parts) {
		w->stop = 1;
		walk_note(w, MP_ERR_MIME);
		return MP_ERR_NOBLOCK;
	}
	if (ctv == NULL) {
		if (default_message)
			return MP_ERR_NOBLOCK;
		return search_text(w, mp_mime_cte_parse(ctev, ctelen), body, len);
	}
	/* A broken Content-Type reads as text/plain (RFC 2045 5.2). */
	(void)mp_mime_ctype_parse(ctv, ctlen, &ct);
	if (mp_mime_ctype_is(&ct, "multipart", NULL))
		return walk_multipart(w, &ct, body, len, depth);
	if (mp_mime_ctype_is(&ct, "text", NULL))
		return search_text(w, mp_mime_cte_parse(ctev, ctelen), body, len);
	return MP_ERR_NOBLOCK;
}

/* Shared by mp_mail_find_block() and mp_mail_parse(). */
static int
find_block(walk *w, const char *ct, size_t ctlen, const char *cte,
           size_t ctelen, const char *body, size_t len, uint8_t **block,
           size_t *block_len)
{
	int rc;

	rc = walk_entity(w, ct, ctlen, cte, ctelen, 0, body, len, 0);
	if (rc == MP_ERR_NOMEM)
		return rc;
	if (rc != MP_OK)
		return w->err;
	*block = w->block;
	*block_len = w->block_len;
	return MP_OK;
}

int
mp_mail_find_block(const char *content_type, const char *cte,
                   const char *body, size_t len, const mp_mail_limits *lim,
                   uint8_t **block, size_t *block_len)
{
	walk w;

	if (block == NULL || block_len == NULL || (body == NULL && len > 0))
		return MP_ERR_INVAL;
	*block = NULL;
	*block_len = 0;
	walk_init(&w, lim);
	if (len > w.max_size)
		return MP_ERR_TOOBIG;
	if (body == NULL)
		body = "";   /* no arithmetic on a null pointer, even + 0 */
	return find_block(&w, content_type,
	                  content_type ? strlen(content_type) : 0, cte,
	                  cte ? strlen(cte) : 0, body, len, block, block_len);
}

/* ---------------------------------------------------------------- headers */

/* Compare a value's first token (up to ';', '(' or a blank) with word. */
static int
first_word_is(const char *value, const char *word)
{
	size_t n = strlen(word), i = 0;

	while (value[i] == ' ' || value[i] == '\t')
		i++;
	if (strncasecmp(value + i, word, n) != 0)
		return 0;
	i += n;
	return value[i] == '\0' || strchr(" \t;(", value[i]) != NULL;
}

int
mp_mail_header_is_auto(const char *name, const char *value)
{
	if (name == NULL)
		return 0;
	if (strcasecmp(name, "List-Id") == 0)
		return 1;
	if (value == NULL)
		return 0;
	if (strcasecmp(name, "Auto-Submitted") == 0)
		return !first_word_is(value, "no");
	if (strcasecmp(name, "Precedence") == 0)
		return first_word_is(value, "bulk") ||
		       first_word_is(value, "junk") ||
		       first_word_is(value, "list");
	if (strcasecmp(name, "Content-Type") == 0) {
		mp_mime_ctype ct;

		return mp_mime_ctype_parse(value, strlen(value), &ct) == MP_OK &&
		       mp_mime_ctype_is(&ct, "multipart", "report");
	}
	return 0;
}

int
mp_mail_subject_has_marker(const char *subject, const char *marker)
{
	size_t n, i;

	if (subject == NULL)
		return 0;
	if (marker == NULL)
		marker = MP_SUBJECT_MARKER_DEFAULT;
	if ((n = strlen(marker)) == 0)
		return 0;
	for (i = 0; subject[i] != '\0'; i++)
		if (strncasecmp(subject + i, marker, n) == 0)
			return 1;
	return 0;
}

/* ---------------------------------------------------------------- addresses */

/* Skip a quoted-string starting at s[i] == '"'; returns the index after
 * it (or the end of s when unterminated). */
static size_t
skip_quoted(const char *s, size_t i)
{
	for (i++; s[i] != '\0'; i++) {
		if (s[i] == '\\' && s[i + 1] != '\0')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return i;
}

/* Skip a (nested) comment starting at s[i] == '('. */
static size_t
skip_comment(const char *s, size_t i)
{
	size_t depth = 0;

	for (; s[i] != '\0'; i++) {
		if (s[i] == '\\' && s[i + 1] != '\0')
			i++;
		else if (s[i] == '(')
			depth++;
		else if (s[i] == ')' && --depth == 0)
			return i + 1;
	}
	return i;
}

/* Is a..b (exclusive) a plausible addr-spec?  Quoted local parts are
 * allowed; the domain is dot-atoms or a [literal]. */
static int
addr_plausible(const char *s, size_t a, size_t b)
{
	size_t i, at = 0;
	int seen_at = 0;

	for (i = a; i < b; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' && !seen_at) {
			size_t e = skip_quoted(s, i);

			if (e > b || s[e - 1] != '"' || e == i + 1)
				return 0;
			i = e - 1;
			continue;
		}
		if (c == '@') {
			if (seen_at)
				return 0;
			seen_at = 1;
			at = i;
			continue;
		}
		if (c <= 32 || c >= 127 || strchr("<>(),;:\\\"", c) != NULL) {
			/* A domain literal may hold ':' (IPv6). */
			if (!(seen_at && c == ':' && s[at + 1] == '['))
				return 0;
		}
	}
	return seen_at && at > a && at + 1 < b;
}

/* Copy s[a..b) without comments and blanks (outside quotes) into dst.
 * Those may only surround the address: (size_t)-1 when they split it. */
static size_t
copy_addr(const char *s, size_t a, size_t b, char *dst)
{
	size_t i, n = 0;
	int gap = 0;

	for (i = a; i < b; i++) {
		if (s[i] == '(') {
			i = skip_comment(s, i) - 1;
			gap = n > 0;
			continue;
		}
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
			gap = n > 0;
			continue;
		}
		if (gap)
			return (size_t)-1;
		if (s[i] == '"') {
			size_t e = skip_quoted(s, i);

			if (e > b)
				e = b;
			memcpy(dst + n, s + i, e - i);
			n += e - i;
			i = e - 1;
			continue;
		}
		dst[n++] = s[i];
	}
	dst[n] = '\0';
	return n;
}

int
mp_mail_extract_addr(const char *value, char *buf, size_t len)
{
	size_t i = 0, seg = 0, a = 0, b = 0, n;
	int angle = 0, rc;
	char *tmp;

	if (value == NULL || buf == NULL)
		return MP_ERR_INVAL;
	/* Find the first mailbox: up to a top-level ',' or ';'.  A ':' before
	 * any '<' ends a group's display name. */
	for (; value[i] != '\0'; i++) {
		char c = value[i];

		if (c == '"') {
			i = skip_quoted(value, i) - 1;
		} else if (c == '(') {
			i = skip_comment(value, i) - 1;
		} else if (c == '<' && !angle) {
			angle = 1;
			a = i + 1;
			for (i = a; value[i] != '\0' && value[i] != '>'; i++)
				if (value[i] == '"')
					i = skip_quoted(value, i) - 1;
			if (value[i] != '>')
				return MP_ERR_SYNTAX;
			b = i;
		} else if (c == ':' && !angle) {
			seg = i + 1;
		} else if (c == ',' || c == ';') {
			if (angle || i > seg)
				break;
			seg = i + 1;     /* empty list element */
		}
	}
	if (!angle) {
		a = seg;
		b = i;
	} else {
		/* Obsolete source route "<@relay:a@b>": keep what follows it. */
		for (n = a; n < b; n++)
			if (value[n] == ':' && value[a] == '@')
				a = n + 1;
	}
	if ((tmp = malloc(b - a + 1)) == NULL)
		return MP_ERR_NOMEM;
	n = copy_addr(value, a, b, tmp);
	if (n == (size_t)-1 || !addr_plausible(tmp, 0, n))
		rc = MP_ERR_SYNTAX;
	else if (n + 1 > len)
		rc = MP_ERR_TOOBIG;
	else {
		memcpy(buf, tmp, n + 1);
		rc = MP_OK;
	}
	free(tmp);
	return rc;
}

/* ---------------------------------------------------------------- whole mail */

/* The header fields mp_mail_parse() keeps, first occurrence only. */
enum { H_FROM, H_TO, H_SUBJECT, H_MSGID, H_IRT, H_CT, H_CTE, H_COUNT };
static const char *const kept_names[H_COUNT] = {
	"From", "To", "Subject", "Message-ID", "In-Reply-To",
	"Content-Type", "Content-Transfer-Encoding",
};
static const char *const auto_names[] = {
	"Auto-Submitted", "Precedence", "List-Id", "Content-Type",
};

static int
check_auto(const mp_mime_field *f, int *is_auto)
{
	size_t k;
	char *v;

	for (k = 0; k < sizeof(auto_names) / sizeof(auto_names[0]); k++) {
		if (!mp_mime_field_is(f, auto_names[k]))
			continue;
		if (mp_mime_unfold(f->value, f->value_len, &v) != MP_OK)
			return MP_ERR_NOMEM;
		if (mp_mail_header_is_auto(auto_names[k], v))
			*is_auto = 1;
		free(v);
		break;
	}
	return MP_OK;
}

/* First "<...>" of a value, or NULL (no error) when there is none. */
static int
dup_msgid(const char *v, char **out)
{
	const char *lt = strchr(v, '<'), *gt;
	size_t i, n;

	*out = NULL;
	if (lt == NULL || (gt = strchr(lt, '>')) == NULL || gt == lt + 1)
		return MP_OK;
	n = (size_t)(gt - lt) + 1;
	for (i = 1; i + 1 < n; i++)
		if ((unsigned char)lt[i] <= 32 || lt[i] == '<')
			return MP_OK;
	if ((*out = strndup(lt, n)) == NULL)
		return MP_ERR_NOMEM;
	return MP_OK;
}

static int
dup_addr(const char *v, char **out)
{
	size_t cap = strlen(v) + 1;
	char *buf;

	*out = NULL;
	if ((buf = malloc(cap)) == NULL)
		return MP_ERR_NOMEM;
	if (mp_mail_extract_addr(v, buf, cap) != MP_OK) {
		free(buf);
		return MP_OK;   /* unreadable address: field left NULL */
	}
	*out = buf;
	return MP_OK;
}

/* Fill the parsed fields from the kept raw values. */
static int
fill_fields(const mp_mime_field kept[H_COUNT], mp_parsed_mail *out)
{
	char *v[H_IRT + 1] = { NULL };
	int k, rc = MP_OK;

	for (k = 0; k <= H_IRT; k++)
		if (kept[k].value != NULL &&
		    mp_mime_unfold(kept[k].value, kept[k].value_len, &v[k]))
			rc = MP_ERR_NOMEM;
	if (rc == MP_OK && v[H_FROM])
		rc = dup_addr(v[H_FROM], &out->from);
	if (rc == MP_OK && v[H_TO])
		rc = dup_addr(v[H_TO], &out->to);
	if (rc == MP_OK && v[H_MSGID])
		rc = dup_msgid(v[H_MSGID], &out->message_id);
	if (rc == MP_OK && v[H_IRT])
		rc = dup_msgid(v[H_IRT], &out->in_reply_to);
	if (rc == MP_OK) {
		out->subject = v[H_SUBJECT];
		v[H_SUBJECT] = NULL;
	}
	for (k = 0; k <= H_IRT; k++)
		free(v[k]);
	return rc;
}

int
mp_mail_parse(const char *raw, size_t len, const mp_mail_limits *lim,
              mp_parsed_mail *out)
{
	mp_mime_field f, kept[H_COUNT];
	size_t pos = 0, k;
	walk w;
	int rc;

	if (out == NULL)
		return MP_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	if (raw == NULL && len > 0)
		return MP_ERR_INVAL;
	walk_init(&w, lim);
	if (len > w.max_size)
		return MP_ERR_TOOBIG;
	if (raw == NULL)
		raw = "";
	memset(kept, 0, sizeof(kept));
	while (mp_mime_header_next(raw, len, &pos, &f)) {
		for (k = 0; k < H_COUNT; k++)
			if (kept[k].value == NULL &&
			    mp_mime_field_is(&f, kept_names[k]))
				kept[k] = f;
		if (!out->is_auto && check_auto(&f, &out->is_auto) != MP_OK)
			goto nomem;
	}
	if (fill_fields(kept, out) != MP_OK)
		goto nomem;
	rc = find_block(&w, kept[H_CT].value, kept[H_CT].value_len,
	                kept[H_CTE].value, kept[H_CTE].value_len, raw + pos,
	                len - pos, &out->block, &out->block_len);
	if (rc == MP_ERR_NOMEM)
		goto nomem;
	return rc;
nomem:
	mp_parsed_mail_free(out);
	return MP_ERR_NOMEM;
}

void
mp_parsed_mail_free(mp_parsed_mail *m)
{
	if (m == NULL)
		return;
	free(m->from);
	free(m->to);
	free(m->subject);
	free(m->message_id);
	free(m->in_reply_to);
	free(m->block);
	memset(m, 0, sizeof(*m));
}
