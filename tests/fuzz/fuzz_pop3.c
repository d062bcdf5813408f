/*
 * fuzz_pop3.c - libFuzzer target for the POP3 response reader and the
 * answer parsers (lib/pop3_parse.c).
 *
 * The first input byte chooses the read size (1..32 bytes per call),
 * whether responses are announced as multi-line, and max_body (0..63 or
 * 4096, so truncation is reached); the rest is the server's byte
 * stream.  The stream is read twice, whole and in chunks, and both must
 * give the same responses and end the same way.  Every response must
 * keep the promises of pop3_parse.h: a NUL-terminated text without line
 * ends, a body only for a multi-line +OK, at most max_body bytes kept,
 * NUL-terminated, truncated exactly when more was sent, no "." line
 * left in the body.  The UIDL, LIST and Subject parsers and
 * mp_pop3_arg_ok() run on whatever came out.  A broken promise aborts.
 */
#include "mailpunch/error.h"

#include "pop3_parse.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RESPONSES 64

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ULL;
	return h;
}

/* Dot-stuffing the body again and reading it back gives the body. */
static void
check_roundtrip(const char *body, size_t len)
{
	char wire[3 * 8192 + 16];
	size_t i, n = 0, used = 0;
	mp_pop3_reader *rd;
	mp_pop3_response *r = NULL;

	memcpy(wire, "+OK\r\n", 5);
	n = 5;
	for (i = 0; i < len; i++) {
		if ((i == 0 || body[i - 1] == '\n') && body[i] == '.')
			wire[n++] = '.';
		wire[n++] = body[i];
	}
	memcpy(wire + n, ".\r\n", 3);
	n += 3;
	if (mp_pop3_reader_new(&rd) != MP_OK)
		abort();
	mp_pop3_reader_expect(rd, 1, len);
	if (mp_pop3_reader_feed(rd, wire, n, &used, &r) != MP_OK || !r || used != n ||
	    r->body_len != len || memcmp(r->body, body, len) != 0 || r->truncated)
		abort();
	mp_pop3_response_free(r);
	mp_pop3_reader_free(rd);
}

static uint64_t
check_response(const mp_pop3_response *r, int multi, size_t max_body)
{
	uint64_t h = 14695981039346656037ULL;

	if (!r->text || strlen(r->text) != r->text_len || strpbrk(r->text, "\r\n"))
		abort();
	if ((r->body != NULL) != (multi && r->ok))
		abort();
	if (r->body) {
		if (r->body_len > max_body || r->body[r->body_len] != '\0')
			abort();
		if (r->truncated != (r->body_total > max_body) || r->body_total < r->body_len)
			abort();
		if (!r->truncated && r->body_total != r->body_len)
			abort();
		if (r->body_len && r->body[r->body_len - 1] != '\n' && !r->truncated)
			abort();   /* the terminator starts a line */
		if (!r->truncated && r->body_len < 8192)
			check_roundtrip(r->body, r->body_len);
		{
			mp_pop3_uidl *v = NULL;
			size_t n = 0, k;

			if (mp_pop3_parse_uidl(r->body, r->body_len, &v, &n) == MP_OK) {
				for (k = 0; k < n; k++)
					if (v[k].msg == 0 || strlen(v[k].uid) == 0 ||
					    strlen(v[k].uid) > MP_POP3_UID_MAX)
						abort();
			} else if (v || n) {
				abort();
			}
			free(v);
		}
		if (mp_pop3_subject_match(r->body, r->body_len, NULL) < 0)
			abort();
		h = mix(h, r->body, r->body_len);
	}
	{
		uint32_t msg;
		uint64_t sz;

		(void)mp_pop3_parse_scan(r->text, &msg, &sz);
		(void)mp_pop3_resp_code(r, "AUTH");
		(void)mp_pop3_arg_ok(r->text);
	}
	h = mix(h, &r->ok, sizeof r->ok);
	h = mix(h, &r->truncated, sizeof r->truncated);
	h = mix(h, &r->body_total, sizeof r->body_total);
	return mix(h, r->text, r->text_len);
}

static int
run(const uint8_t *data, size_t size, size_t chunk, int multi, size_t max_body,
    uint64_t *sums, size_t *nsums)
{
	mp_pop3_reader *rd;
	size_t pos = 0;
	int err = MP_OK;

	*nsums = 0;
	if (mp_pop3_reader_new(&rd) != MP_OK)
		abort();
	mp_pop3_reader_expect(rd, multi, max_body);
	while (pos < size && *nsums < MAX_RESPONSES) {
		size_t k = size - pos < chunk ? size - pos : chunk, used = 0;
		mp_pop3_response *r = NULL;

		err = mp_pop3_reader_feed(rd, (const char *)data + pos, k, &used, &r);
		if (used > k)
			abort();
		pos += used;
		if (err != MP_OK) {
			if (r)
				abort();
			break;
		}
		if (!r) {
			if (used != k)
				abort();
			continue;
		}
		sums[(*nsums)++] = check_response(r, multi, max_body);
		mp_pop3_response_free(r);
	}
	mp_pop3_reader_free(rd);
	return err;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t a[MAX_RESPONSES], b[MAX_RESPONSES];
	size_t na, nb, chunk, max_body, i;
	int multi, ea, eb;

	if (size < 2)
		return 0;
	chunk = (size_t)(data[0] & 0x1f) + 1;
	multi = (data[0] >> 5) & 1;
	max_body = (data[0] & 0xc0) == 0xc0 ? 4096 : (size_t)(data[1] & 0x3f);
	data += 2;
	size -= 2;

	ea = run(data, size, size ? size : 1, multi, max_body, a, &na);
	eb = run(data, size, chunk, multi, max_body, b, &nb);
	if (ea != eb || na != nb)
		abort();
	for (i = 0; i < na; i++)
		if (a[i] != b[i])
			abort();

	/* the parsers on the raw input too */
	{
		mp_pop3_uidl *v = NULL;
		size_t n = 0;

		(void)mp_pop3_parse_uidl((const char *)data, size, &v, &n);
		free(v);
		if (mp_pop3_subject_match((const char *)data, size, "[x]") < 0)
			abort();
	}
	return 0;
}
