/*
 * jsoncheck.h - a strict JSON well-formedness checker for the tests of
 * the control protocol (unit test and fuzz target): RFC 8259 grammar,
 * RFC 3629 UTF-8, bounded nesting.  Written independently of
 * lib/control.c on purpose: it checks that code, so it must not share it.
 */
#ifndef MAILPUNCH_TEST_JSONCHECK_H
#define MAILPUNCH_TEST_JSONCHECK_H

#include <ctype.h>
#include <stddef.h>
#include <string.h>


typedef struct jp {
	const unsigned char *s;
	size_t n, i;
	int depth;
} jp;

static int jvalue(jp *p);

static void
jws(jp *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
	                       p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
}

static int
jlit(jp *p, const char *w)
{
	size_t l = strlen(w);

	if (p->n - p->i < l || memcmp(p->s + p->i, w, l) != 0)
		return 0;
	p->i += l;
	return 1;
}

static int
jhex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Well-formed UTF-8 sequence length at s (1..4) or 0 (RFC 3629). */
static size_t
jutf8(const unsigned char *s, size_t n)
{
	unsigned long c;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
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
	return len;
}

static int
jstring(jp *p)
{
	size_t k;

	if (p->i >= p->n || p->s[p->i] != '"')
		return 0;
	p->i++;
	while (p->i < p->n) {
		unsigned char c = p->s[p->i];

		if (c == '"') {
			p->i++;
			return 1;
		}
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			if (++p->i >= p->n)
				return 0;
			c = p->s[p->i];
			if (c == 'u') {
				if (p->n - p->i < 5 || !jhex(p->s[p->i + 1]) || !jhex(p->s[p->i + 2]) ||
				    !jhex(p->s[p->i + 3]) || !jhex(p->s[p->i + 4]))
					return 0;
				p->i += 5;
			} else if (strchr("\"\\/bfnrt", c) && c) {
				p->i++;
			} else {
				return 0;
			}
			continue;
		}
		if ((k = jutf8(p->s + p->i, p->n - p->i)) == 0)
			return 0;
		p->i += k;
	}
	return 0;
}

static int
jdigits(jp *p)
{
	size_t start = p->i;

	while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
		p->i++;
	return p->i > start;
}

static int
jnumber(jp *p)
{
	if (p->i < p->n && p->s[p->i] == '-')
		p->i++;
	if (p->i < p->n && p->s[p->i] == '0')
		p->i++;
	else if (!jdigits(p))
		return 0;
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		if (!jdigits(p))
			return 0;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (!jdigits(p))
			return 0;
	}
	return 1;
}

static int
jcontainer(jp *p, char open, char close)
{
	int first = 1;

	if (++p->depth > 64)
		return 0;
	p->i++;   /* open */
	(void)open;
	jws(p);
	if (p->i < p->n && p->s[p->i] == (unsigned char)close) {
		p->i++;
		p->depth--;
		return 1;
	}
	for (;;) {
		if (!first) {
			jws(p);
			if (p->i < p->n && p->s[p->i] == (unsigned char)close) {
				p->i++;
				p->depth--;
				return 1;
			}
			if (p->i >= p->n || p->s[p->i] != ',')
				return 0;
			p->i++;
		}
		first = 0;
		jws(p);
		if (close == '}') {
			if (!jstring(p))
				return 0;
			jws(p);
			if (p->i >= p->n || p->s[p->i] != ':')
				return 0;
			p->i++;
		}
		if (!jvalue(p))
			return 0;
	}
}

static int
jvalue(jp *p)
{
	jws(p);
	if (p->i >= p->n)
		return 0;
	switch (p->s[p->i]) {
	case '{': return jcontainer(p, '{', '}');
	case '[': return jcontainer(p, '[', ']');
	case '"': return jstring(p);
	case 't': return jlit(p, "true");
	case 'f': return jlit(p, "false");
	case 'n': return jlit(p, "null");
	default: return jnumber(p);
	}
}

/* One complete JSON object and nothing else (n bytes, may hold NULs). */
static int
json_object_ok(const char *s, size_t n)
{
	jp p = { (const unsigned char *)s, n, 0, 0 };

	jws(&p);
	if (p.i >= n || s[p.i] != '{' || !jvalue(&p))
		return 0;
	jws(&p);
	return p.i == n;
}

#endif
