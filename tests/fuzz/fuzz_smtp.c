/*
 * fuzz_smtp.c - libFuzzer target for the SMTP reply parser and the DATA
 * dot-stuffer (lib/smtp_reply.c).
 *
 * The first input byte picks a chunk size (1..256); the rest is fed to
 * one parser whole and to another in chunks of that size.  Both must
 * agree on every reply and on the final error, since where TCP splits
 * the stream must not matter.  Every reply must keep the promises of
 * smtp_reply.h: a code 200..599, 1..MP_SMTP_LINES_MAX lines within the
 * line limit and free of control characters, an enhanced code of the
 * reply's class or none, a formatter that never overruns, and caps
 * parsing that accepts any 250 reply.  The same bytes are also
 * dot-stuffed and must decode back to themselves with normalised line
 * ends.  A broken promise aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ s[i]) * FNV_PRIME;
	return h;
}

static void
check_enhanced(const mp_smtp_reply *r)
{
	const char *e = r->enhanced;
	size_t i = 1, part, n;

	if (e[0] == '\0')
		return;
	if (e[0] != '0' + r->code / 100)
		abort();
	for (part = 0; part < 2; part++) {
		if (e[i++] != '.')
			abort();
		for (n = 0; e[i] >= '0' && e[i] <= '9'; n++)
			i++;
		if (n < 1 || n > 3)
			abort();
	}
	if (e[i] != '\0')
		abort();
}

static uint64_t
check_reply(const mp_smtp_reply *r, uint64_t h)
{
	char small[7], big[2048];
	mp_smtp_caps caps;
	size_t i, j;

	if (r->code < 200 || r->code > 599 || (r->code / 10) % 10 > 5)
		abort();
	if (r->nlines < 1 || r->nlines > MP_SMTP_LINES_MAX)
		abort();
	check_enhanced(r);
	for (i = 0; i < r->nlines; i++) {
		const char *t = r->lines[i];
		size_t n = strlen(t);

		if (n > MP_SMTP_LINE_MAX - 6)
			abort();
		for (j = 0; j < n; j++)
			if (((unsigned char)t[j] < 0x20 && t[j] != '\t') || t[j] == 0x7f)
				abort();
		h = fnv(h, t, n + 1);
	}
	memset(small, 'Z', sizeof small);
	mp_smtp_reply_format(r, small, sizeof small - 1);
	if (small[sizeof small - 1] != 'Z' || strlen(small) >= sizeof small - 1)
		abort();
	mp_smtp_reply_format(r, big, sizeof big);
	if (strlen(big) >= sizeof big || strncmp(big, small, strlen(small)) != 0)
		abort();
	if (mp_smtp_caps_parse(r, &caps) != (r->code == 250 ? MP_OK : MP_ERR_INVAL))
		abort();
	h = fnv(h, &r->code, sizeof r->code);
	return fnv(h, r->enhanced, strlen(r->enhanced));
}

/* Feeds data in pieces of at most chunk bytes; hash of all replies and
 * the final status mixed in. */
static uint64_t
run_parser(const uint8_t *data, size_t size, size_t chunk)
{
	mp_smtp_parser *p = mp_smtp_parser_new();
	uint64_t h = FNV_OFFSET;
	size_t off = 0;
	int rc = MP_OK;

	if (!p)
		abort();
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk, used;
		const mp_smtp_reply *r;

		rc = mp_smtp_parser_feed(p, data + off, n, &used, &r);
		if (used > n)
			abort();
		if (rc != MP_OK) {
			if (r || (rc != MP_ERR_MALFORMED && rc != MP_ERR_TOOBIG))
				abort();
			break;
		}
		if (!r && used != n)
			abort();
		if (r)
			h = check_reply(r, h);
		off += used;
	}
	mp_smtp_parser_free(p);
	return fnv(h, &rc, sizeof rc);
}

static void
check_stuffing(const uint8_t *in, size_t len)
{
	char *out;
	size_t outlen, i, k = 0;
	int bol = 1;

	if (mp_smtp_dot_stuff(in, len, (size_t)-1, &out, &outlen) != MP_OK)
		abort();
	if (outlen < 3 || memcmp(out + outlen - 3, ".\r\n", 3) != 0 ||
	    (outlen > 3 && (outlen < 5 || memcmp(out + outlen - 5, "\r\n", 2) != 0)))
		abort();
	for (i = 0; i < outlen - 3; i++) {
		char c = out[i];

		if (bol && c == '.' && out[++i] != '.')
			abort();               /* a lone dot would end DATA early */
		c = out[i];
		if (c == '\r') {
			if (out[++i] != '\n')
				abort();
			/* one line end of the input: CRLF, LF or CR */
			if (k >= len || (in[k] != '\r' && in[k] != '\n')) {
				if (k != len)
					abort();   /* only the added final CRLF */
			} else if (in[k] == '\r' && k + 1 < len && in[k + 1] == '\n') {
				k += 2;
			} else {
				k++;
			}
			bol = 1;
			continue;
		}
		if (c == '\n' || k >= len || in[k] != (uint8_t)c)
			abort();
		k++;
		bol = 0;
	}
	if (k != len)
		abort();
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;
	if (run_parser(data, size, size ? size : 1) != run_parser(data, size, chunk))
		abort();
	check_stuffing(data, size);
	return 0;
}
