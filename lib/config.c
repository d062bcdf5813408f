/*
 * config.c - "key value" configuration files, typed and checked.
 *
 * Interface: see include/mailpunch/config.h.  Exact syntax:
 *  - Lines end in LF; a CR before the LF is dropped; a UTF-8 byte order
 *    mark at the start of the file is skipped.  A line holds at most
 *    4096 bytes (without its line end), a file at most 1 MiB.
 *  - '#' starts a comment at the start of a line or after a blank (space
 *    or tab); elsewhere ("a#b") it is part of the value.
 *  - Other control characters (outside comments) are errors.
 *  - KEY is the first run of non-blanks, compared case-insensitively with
 *    the table; the value is the rest of the line, blanks trimmed.  An
 *    empty value is an error for every type.
 *  - Numbers are decimal with an optional sign; SIZE takes one suffix of
 *    k K m M g G (powers of 1024), DURATION one of s m h d (lowercase) or
 *    none (seconds).  Overflow is reported as out of range.
 *  - ADDRLIST values are split on blanks and commas; each line appends,
 *    except that the first line in the file replaces the default.
 *  - Defaults are applied first, with the same parsers.
 * The target must start zeroed: string fields found non-NULL are freed
 * when replaced.  SOCKET values are stored as written (libmilter parses
 * the text again), after mp_sockspec_parse() accepted them.
 *
 * Errors: MP_ERR_CONFIG with "file:line: reason" or "file: reason" in
 * err; MP_ERR_IO (errno kept) when the file cannot be read; MP_ERR_NOMEM;
 * MP_ERR_INVAL for a broken option table or a default its own parser
 * rejects (programming errors).  The single-value parsers return
 * MP_ERR_SYNTAX for malformed text and MP_ERR_TOOBIG for a value out of
 * [min, max] (including one too big for long long).
 */
/* strerror_r must be the GNU one (returns char *), whatever the flags. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "mailpunch/config.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/sockspec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CFG_LINE_MAX 4096
#define CFG_FILE_MAX (1024 * 1024)
#define MAIL_ADDR_MAX 254

/* ------------------------------------------------------------ numbers */

typedef struct unit {
	char suffix;
	long long mul;
} unit;

static const unit no_units[] = { { 0, 0 } };
static const unit size_units[] = {
	{ 'k', 1024LL }, { 'K', 1024LL },
	{ 'm', 1024LL * 1024 }, { 'M', 1024LL * 1024 },
	{ 'g', 1024LL * 1024 * 1024 }, { 'G', 1024LL * 1024 * 1024 },
	{ 0, 0 },
};
static const unit duration_units[] = {
	{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 0, 0 },
};

/*
 * Decimal integer with an optional one-letter unit.  MP_ERR_SYNTAX when
 * malformed, MP_ERR_TOOBIG when it does not fit in a long long.
 */
static int
parse_scaled(const char *s, const unit *units, long long *out)
{
	const char *d = s + (*s == '-' || *s == '+');
	char *end;
	long long mul = 1;

	/* strtoll would also skip blanks and take "0x": be strict. */
	if (*d < '0' || *d > '9')
		return MP_ERR_SYNTAX;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	int overflow = errno == ERANGE;
	if (*end != '\0') {
		const unit *u = units;
		while (u->suffix != 0 && u->suffix != *end)
			u++;
		if (u->suffix == 0 || end[1] != '\0')
			return MP_ERR_SYNTAX;
		mul = u->mul;
	}
	if (overflow || v > LLONG_MAX / mul || v < LLONG_MIN / mul)
		return MP_ERR_TOOBIG;
	*out = v * mul;
	return MP_OK;
}

static int
parse_ranged(const char *s, const unit *units, long long min, long long max,
             long long *out)
{
	long long v;

	if (s == NULL || out == NULL || min > max)
		return MP_ERR_INVAL;
	int rc = parse_scaled(s, units, &v);
	if (rc != MP_OK)
		return rc;
	if (v < min || v > max)
		return MP_ERR_TOOBIG;
	*out = v;
	return MP_OK;
}

int
mp_parse_int(const char *s, long long min, long long max, long long *out)
{
	return parse_ranged(s, no_units, min, max, out);
}

int
mp_parse_size(const char *s, long long min, long long max, long long *out)
{
	return parse_ranged(s, size_units, min, max, out);
}

int
mp_parse_duration(const char *s, long long min, long long max, long long *out)
{
	return parse_ranged(s, duration_units, min, max, out);
}

int
mp_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	if (s == NULL || out == NULL)
		return MP_ERR_INVAL;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return MP_OK;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return MP_OK;
		}
	}
	return MP_ERR_SYNTAX;
}

/* ------------------------------------------------------------ addresses */

int
mp_parse_mail_address(const char *s)
{
	if (s == NULL)
		return MP_ERR_INVAL;
	size_t len = strlen(s);
	const char *at = strchr(s, '@');
	if (len == 0 || len > MAIL_ADDR_MAX || at == NULL || at == s ||
	    at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return MP_ERR_SYNTAX;
	/* Quotes, angle brackets and commas would let one "address" smuggle
	 * a display name or a second recipient into a header. */
	for (const char *p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c >= 0x7f || strchr("<>,\"", c) != NULL)
			return MP_ERR_SYNTAX;
	}
	return MP_OK;
}

/* ------------------------------------------------------------ strlist */

/* items always comes from here, sized to the next power of two >= 4. */
int
mp_strlist_add(mp_strlist *l, const char *s)
{
	if (l == NULL || s == NULL)
		return MP_ERR_INVAL;
	size_t n = l->count;
	if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
		size_t cap = n == 0 ? 4 : n * 2;
		if (cap > SIZE_MAX / sizeof(char *))
			return MP_ERR_NOMEM;
		char **items = realloc(l->items, cap * sizeof(char *));
		if (items == NULL)
			return MP_ERR_NOMEM;
		l->items = items;
	}
	char *dup = strdup(s);
	if (dup == NULL)
		return MP_ERR_NOMEM;
	l->items[n] = dup;
	l->count = n + 1;
	return MP_OK;
}

void
mp_strlist_free(mp_strlist *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

int
mp_strlist_contains(const mp_strlist *l, const char *s)
{
	if (l == NULL || s == NULL)
		return 0;
	for (size_t i = 0; i < l->count; i++)
		if (strcasecmp(l->items[i], s) == 0)
			return 1;
	return 0;
}

/* ------------------------------------------------------------ values */

/* Where a reason for a rejected value goes. */
typedef struct why {
	char *buf;
	size_t len;
} why;

static int
reject(why *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
reject(why *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->buf, w->len, fmt, ap);
	va_end(ap);
	return MP_ERR_CONFIG;
}

static void *
field(void *target, const mp_cfg_option *o)
{
	return (char *)target + o->offset;
}

static int
set_string(char **slot, const char *v)
{
	char *dup = strdup(v);
	if (dup == NULL)
		return MP_ERR_NOMEM;
	free(*slot);
	*slot = dup;
	return MP_OK;
}

static int
set_number(const mp_cfg_option *o, long long *slot, const char *v, why *w)
{
	static const char *const noun[] = { "integer", "size", "duration" };
	static const char *const bad[] = {
		"not an integer",
		"bad size (use 512, 64k, 10M, 1G)",
		"bad duration (use 30s, 15m, 12h, 7d)",
	};
	const unit *units = no_units;
	int k = 0;
	long long n;

	if (o->type == MP_CFG_SIZE) {
		units = size_units;
		k = 1;
	} else if (o->type == MP_CFG_DURATION) {
		units = duration_units;
		k = 2;
	}
	int rc = parse_ranged(v, units, o->min, o->max, &n);
	if (rc == MP_ERR_SYNTAX)
		return reject(w, "%s", bad[k]);
	if (rc != MP_OK)
		return reject(w, "%s out of range %lld..%lld%s", noun[k],
		              o->min, o->max, k == 2 ? " seconds" : "");
	*slot = n;
	return MP_OK;
}

/* Validate every address first so a bad line changes nothing. */
static int
set_addrlist(mp_strlist *l, const char *v, int replace, why *w)
{
	size_t len = strlen(v), count = 0;
	char *copy = strdup(v);
	int rc = MP_OK;

	if (copy == NULL)
		return MP_ERR_NOMEM;
	for (size_t i = 0; i < len; i++)
		if (copy[i] == ' ' || copy[i] == '\t' || copy[i] == ',')
			copy[i] = '\0';
	for (size_t i = 0; i < len && rc == MP_OK; i++) {
		if (copy[i] == '\0' || (i > 0 && copy[i - 1] != '\0'))
			continue;
		if (mp_parse_mail_address(copy + i) != MP_OK)
			rc = reject(w, "bad mail address '%s'", copy + i);
		count++;
	}
	if (rc == MP_OK && count == 0)
		rc = reject(w, "no mail address given");
	if (rc == MP_OK && replace)
		mp_strlist_free(l);
	for (size_t i = 0; i < len && rc == MP_OK; i++)
		if (copy[i] != '\0' && (i == 0 || copy[i - 1] == '\0'))
			rc = mp_strlist_add(l, copy + i);
	free(copy);
	return rc;
}

/*
 * Parse v as o's type and store it.  replace: an ADDRLIST drops what it
 * held (the default) instead of appending.
 */
static int
set_value(const mp_cfg_option *o, void *target, const char *v, int replace,
          why *w)
{
	char reason[256];
	mp_sockspec ss;
	mp_log_level lv;
	int b;

	if (*v == '\0')
		return reject(w, "missing value");
	switch (o->type) {
	case MP_CFG_BOOL:
		if (mp_parse_bool(v, &b) != MP_OK)
			return reject(w, "expected yes or no");
		*(int *)field(target, o) = b;
		return MP_OK;
	case MP_CFG_INT:
	case MP_CFG_SIZE:
	case MP_CFG_DURATION:
		return set_number(o, field(target, o), v, w);
	case MP_CFG_STRING:
		return set_string(field(target, o), v);
	case MP_CFG_PATH:
		if (v[0] != '/')
			return reject(w, "not an absolute path");
		return set_string(field(target, o), v);
	case MP_CFG_SOCKET:
		if (mp_sockspec_parse(v, &ss, reason, sizeof(reason)) != MP_OK)
			return reject(w, "bad socket spec: %s", reason);
		return set_string(field(target, o), v);
	case MP_CFG_ADDRLIST:
		return set_addrlist(field(target, o), v, replace, w);
	case MP_CFG_LINES:
		if (replace)
			mp_strlist_free(field(target, o));
		return mp_strlist_add(field(target, o), v);
	case MP_CFG_LEVEL:
		if (mp_log_level_parse(v, &lv) != MP_OK)
			return reject(w, "unknown log level '%s' (use err, "
			              "warning, notice, info or debug)", v);
		*(int *)field(target, o) = (int)lv;
		return MP_OK;
	}
	return reject(w, "option of unknown type");
}

/* ------------------------------------------------------------ loader */

typedef struct cfg_ctx {
	const char *name;
	const mp_cfg_option *opts;
	size_t nopts;
	void *target;
	char *err;
	size_t errlen;
	size_t *seen;   /* per option: line of first use in the file, or 0 */
} cfg_ctx;

static int
report(cfg_ctx *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
report(cfg_ctx *c, int rc, const char *fmt, ...)
{
	if (c->err != NULL && c->errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* A bad table is the programmer's mistake, caught on the first load. */
static int
check_table(cfg_ctx *c)
{
	for (size_t i = 0; i < c->nopts; i++) {
		const mp_cfg_option *o = &c->opts[i];
		if (o->key == NULL || o->key[0] == '\0' ||
		    o->key[strcspn(o->key, " \t#")] != '\0' ||
		    (unsigned)o->type > MP_CFG_LINES || o->min > o->max)
			return report(c, MP_ERR_INVAL, "%s: option table entry "
			              "%zu is invalid", c->name, i);
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(c->opts[j].key, o->key) == 0)
				return report(c, MP_ERR_INVAL, "%s: option '%s' "
				              "listed twice", c->name, o->key);
	}
	return MP_OK;
}

static int
apply_defaults(cfg_ctx *c)
{
	char reason[512];
	why w = { reason, sizeof(reason) };

	for (size_t i = 0; i < c->nopts; i++) {
		const mp_cfg_option *o = &c->opts[i];
		if (o->deflt == NULL)
			continue;
		int rc = set_value(o, c->target, o->deflt, 1, &w);
		if (rc == MP_ERR_CONFIG)
			return report(c, MP_ERR_INVAL, "%s: default for '%s' "
			              "invalid: %s", c->name, o->key, reason);
		if (rc != MP_OK)
			return report(c, rc, "%s: %s", c->name, mp_strerror(rc));
	}
	return MP_OK;
}

static const mp_cfg_option *
find_option(cfg_ctx *c, const char *key, size_t *idx)
{
	for (size_t i = 0; i < c->nopts; i++) {
		if (strcasecmp(c->opts[i].key, key) == 0) {
			*idx = i;
			return &c->opts[i];
		}
	}
	return NULL;
}

static void
strip_comment(char *s)
{
	for (char *p = s; *p != '\0'; p++) {
		if (*p == '#' && (p == s || is_blank(p[-1]))) {
			*p = '\0';
			return;
		}
	}
}

/* Handle one line (NUL-terminated, line end removed, may be modified). */
static int
do_line(cfg_ctx *c, char *s, size_t lineno)
{
	char reason[CFG_LINE_MAX + 128];
	why w = { reason, sizeof(reason) };
	size_t idx;

	strip_comment(s);
	for (const char *p = s; *p != '\0'; p++)
		if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
			return report(c, MP_ERR_CONFIG, "%s:%zu: control "
			              "character in line", c->name, lineno);
	while (is_blank(*s))
		s++;
	size_t len = strlen(s);
	while (len > 0 && is_blank(s[len - 1]))
		s[--len] = '\0';
	if (len == 0)
		return MP_OK;

	char *v = s + strcspn(s, " \t");
	if (*v != '\0') {
		*v++ = '\0';
		while (is_blank(*v))
			v++;
	}
	const mp_cfg_option *o = find_option(c, s, &idx);
	if (o == NULL)
		return report(c, MP_ERR_CONFIG, "%s:%zu: unknown key '%s'",
		              c->name, lineno, s);
	if (c->seen[idx] != 0 && o->type != MP_CFG_ADDRLIST && o->type != MP_CFG_LINES)
		return report(c, MP_ERR_CONFIG, "%s:%zu: '%s' given twice "
		              "(first at line %zu)", c->name, lineno, o->key,
		              c->seen[idx]);
	int rc = set_value(o, c->target, v, c->seen[idx] == 0, &w);
	if (rc == MP_ERR_CONFIG)
		return report(c, rc, "%s:%zu: %s: %s", c->name, lineno, o->key,
		              reason);
	if (rc != MP_OK)
		return report(c, rc, "%s:%zu: %s", c->name, lineno,
		              mp_strerror(rc));
	if (c->seen[idx] == 0)
		c->seen[idx] = lineno;
	return MP_OK;
}

static int
do_text(cfg_ctx *c, const char *text, size_t len)
{
	size_t pos = 0, lineno = 0;

	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	while (pos < len) {
		char buf[CFG_LINE_MAX + 1];
		const char *start = text + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t llen = nl != NULL ? (size_t)(nl - start) : len - pos;

		pos += llen + (nl != NULL);
		lineno++;
		if (llen > 0 && start[llen - 1] == '\r')
			llen--;
		if (llen > CFG_LINE_MAX)
			return report(c, MP_ERR_CONFIG, "%s:%zu: line too long "
			              "(over %d bytes)", c->name, lineno,
			              CFG_LINE_MAX);
		if (memchr(start, '\0', llen) != NULL)
			return report(c, MP_ERR_CONFIG, "%s:%zu: NUL byte in "
			              "line", c->name, lineno);
		memcpy(buf, start, llen);
		buf[llen] = '\0';
		int rc = do_line(c, buf, lineno);
		if (rc != MP_OK)
			return rc;
	}
	return MP_OK;
}

static int
check_required(cfg_ctx *c)
{
	for (size_t i = 0; i < c->nopts; i++) {
		const mp_cfg_option *o = &c->opts[i];
		if (o->required && o->deflt == NULL && c->seen[i] == 0)
			return report(c, MP_ERR_CONFIG, "%s: required key '%s' "
			              "missing", c->name, o->key);
	}
	return MP_OK;
}

int
mp_config_parse(const char *name, const char *text, size_t len,
                const mp_cfg_option *opts, size_t nopts, void *target,
                char *err, size_t errlen)
{
	cfg_ctx c = {
		.name = name != NULL ? name : "config",
		.opts = opts, .nopts = nopts, .target = target,
		.err = err, .errlen = errlen,
	};
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((text == NULL && len > 0) || (opts == NULL && nopts > 0) ||
	    target == NULL)
		return report(&c, MP_ERR_INVAL, "%s: invalid arguments", c.name);
	if ((rc = check_table(&c)) != MP_OK)
		return rc;
	if (len > CFG_FILE_MAX)
		return report(&c, MP_ERR_CONFIG, "%s: file too large (over %d "
		              "bytes)", c.name, CFG_FILE_MAX);
	if ((rc = apply_defaults(&c)) != MP_OK)
		return rc;
	c.seen = calloc(nopts > 0 ? nopts : 1, sizeof(*c.seen));
	if (c.seen == NULL)
		return report(&c, MP_ERR_NOMEM, "%s: %s", c.name,
		              mp_strerror(MP_ERR_NOMEM));
	rc = do_text(&c, text, len);
	if (rc == MP_OK)
		rc = check_required(&c);
	free(c.seen);
	return rc;
}

/* Read at most CFG_FILE_MAX + 1 bytes: one more tells "too large". */
static int
read_file(int fd, char **out, size_t *outlen)
{
	size_t cap = 0, len = 0;
	char *buf = NULL;

	for (;;) {
		if (len == cap) {
			if (cap > CFG_FILE_MAX)
				break;
			size_t ncap = cap == 0 ? 8192 : cap * 2;
			if (ncap > CFG_FILE_MAX + 1)
				ncap = CFG_FILE_MAX + 1;
			char *nbuf = realloc(buf, ncap);
			if (nbuf == NULL) {
				free(buf);
				return MP_ERR_NOMEM;
			}
			buf = nbuf;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			errno = e;
			return MP_ERR_IO;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	return MP_OK;
}

int
mp_config_load(const char *path, const mp_cfg_option *opts, size_t nopts,
               void *target, char *err, size_t errlen)
{
	cfg_ctx c = { .name = path, .err = err, .errlen = errlen };
	char *text = NULL;
	size_t len = 0;

	if (path == NULL)
		return report(&c, MP_ERR_INVAL, "config: no file name");
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int rc = fd < 0 ? MP_ERR_IO : read_file(fd, &text, &len);
	if (rc != MP_OK) {
		char ebuf[128];
		int e = errno;
		if (fd >= 0)
			close(fd);
		report(&c, rc, "%s: cannot read: %s", path, rc == MP_ERR_IO ?
		       strerror_r(e, ebuf, sizeof(ebuf)) : mp_strerror(rc));
		errno = e;
		return rc;
	}
	close(fd);
	rc = mp_config_parse(path, text, len, opts, nopts, target, err, errlen);
	free(text);
	return rc;
}

void
mp_config_free(const mp_cfg_option *opts, size_t nopts, void *target)
{
	if (opts == NULL || target == NULL)
		return;
	for (size_t i = 0; i < nopts; i++) {
		const mp_cfg_option *o = &opts[i];
		switch (o->type) {
		case MP_CFG_STRING:
		case MP_CFG_PATH:
		case MP_CFG_SOCKET: {
			char **slot = field(target, o);
			free(*slot);
			*slot = NULL;
			break;
		}
		case MP_CFG_ADDRLIST:
		case MP_CFG_LINES:
			mp_strlist_free(field(target, o));
			break;
		default:
			break;
		}
	}
}
