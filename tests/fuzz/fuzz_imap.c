/*
 * fuzz_imap.c - libFuzzer target for the IMAP response reader and parser
 * (lib/imap_parse.c).
 *
 * The first input byte chooses the read size (1..64 bytes per call, as
 * a network would split the stream) and a small max_literal (so that
 * oversize literals are reached), the rest is the server's byte stream.
 * The stream is read twice, in one call per response and in small
 * chunks; both must give the same responses and end the same way, and
 * every response must keep the promises of imap_parse.h: a well-formed
 * item tree (items[0] a LIST spanning all, every subtree inside its
 * parent), slices inside the response, the documented bounds.  The
 * helpers run on whatever came out (list lookup, numbers, words,
 * printable) and mp_imap_quote() on the raw input.  A broken promise
 * aborts.
 */
#include "mailpunch/error.h"

#include "imap_parse.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RESPONSES 64

typedef struct summary {
	int kind, status, has_number;
	uint32_t number;
	size_t nitems, tag_len, name_len, code_len, text_len;
	uint64_t digest;     /* over the item types, lengths and bytes */
} summary;

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ULL;
	return h;
}

static void
check_slice(const mp_imap_response *r, const char *s, size_t n, size_t max)
{
	if (n > max)
		abort();
	if (n && !s)
		abort();
	(void)r;
}

static void
check_response(const mp_imap_response *r, size_t max_literal, summary *sm)
{
	size_t i, depth = 0, stack[MP_IMAP_DEPTH_MAX + 2];
	uint64_t h = 14695981039346656037ULL;

	if (r->kind != MP_IMAP_TAGGED && r->kind != MP_IMAP_UNTAGGED && r->kind != MP_IMAP_CONTINUE)
		abort();
	if (r->nitems < 1 || r->items[0].type != MP_IMAP_LIST || r->items[0].end != r->nitems)
		abort();
	if (r->kind == MP_IMAP_TAGGED && (r->tag_len == 0 || r->status == MP_IMAP_DATA ||
	                                  r->status == MP_IMAP_BYE || r->status == MP_IMAP_PREAUTH))
		abort();
	if (r->kind == MP_IMAP_UNTAGGED && r->status == MP_IMAP_DATA && r->name_len == 0)
		abort();
	if (r->kind != MP_IMAP_UNTAGGED || r->status != MP_IMAP_DATA)
		if (r->nitems != 1)
			abort();
	check_slice(r, r->tag, r->tag_len, MP_IMAP_LINE_MAX);
	check_slice(r, r->name, r->name_len, MP_IMAP_LINE_MAX);
	check_slice(r, r->code, r->code_len, MP_IMAP_LINE_MAX);
	check_slice(r, r->text, r->text_len, MP_IMAP_LINE_MAX);
	stack[0] = r->nitems;
	for (i = 0; i < r->nitems; i++) {
		const mp_imap_item *it = &r->items[i];

		while (depth > 0 && i >= stack[depth])
			depth--;
		if (it->end <= i || it->end > stack[depth])
			abort();
		if (it->type != MP_IMAP_LIST && it->end != i + 1)
			abort();
		switch (it->type) {
		case MP_IMAP_LIST:
			if (it->len != 0)
				abort();
			if (i > 0) {
				if (++depth > MP_IMAP_DEPTH_MAX)
					abort();
				stack[depth] = it->end;
			}
			break;
		case MP_IMAP_ATOM:
			if (it->len == 0 || it->len > MP_IMAP_LINE_MAX)
				abort();
			for (size_t k = 0; k < it->len; k++)
				if ((unsigned char)it->s[k] < 0x20 || it->s[k] == 0x7f)
					abort();
			break;
		case MP_IMAP_STRING:
			if (it->len > MP_IMAP_LINE_MAX + max_literal)
				abort();
			break;
		case MP_IMAP_NIL:
			if (it->len != 0)
				abort();
			break;
		case MP_IMAP_OVERSIZE:   /* len: the announced size, unbounded */
			break;
		default:
			abort();
		}
		h = mix(h, &it->type, sizeof it->type);
		h = mix(h, &it->len, sizeof it->len);
		h = mix(h, &it->end, sizeof it->end);
		if (it->type == MP_IMAP_ATOM || it->type == MP_IMAP_STRING)
			h = mix(h, it->s, it->len);
	}
	/* helpers on whatever came out */
	{
		const mp_imap_item *v = mp_imap_list_get(r, r->nitems > 1 ? 1 : 0, "UID");
		uint32_t u32;
		uint64_t u64;
		const char *w;
		size_t pos = 0, wl, words = 0;
		char buf[64];

		if (v)
			(void)mp_imap_item_u32(v, &u32);
		for (i = 0; i < r->nitems; i++)
			if (mp_imap_item_u64(&r->items[i], &u64) == MP_OK && r->items[i].type != MP_IMAP_ATOM)
				abort();
		while (mp_imap_word_next(r->code, r->code_len, &pos, &w, &wl)) {
			if (wl == 0 || w < r->code || w + wl > r->code + r->code_len || ++words > r->code_len)
				abort();
		}
		mp_imap_printable(r->text, r->text_len, buf, sizeof buf);
		if (strlen(buf) > r->text_len)
			abort();
	}
	memset(sm, 0, sizeof *sm);
	sm->kind = r->kind;
	sm->status = r->status;
	sm->has_number = r->has_number;
	sm->number = r->number;
	sm->nitems = r->nitems;
	sm->tag_len = r->tag_len;
	sm->name_len = r->name_len;
	sm->code_len = r->code_len;
	sm->text_len = r->text_len;
	sm->digest = mix(mix(mix(h, r->text, r->text_len), r->code, r->code_len), r->tag, r->tag_len);
}

/* Reads data in chunks of at most chunk bytes; returns the final error
 * (MP_OK: the input ran out) and fills sums. */
static int
run(const uint8_t *data, size_t size, size_t chunk, size_t max_literal, summary *sums,
    size_t *nsums)
{
	mp_imap_reader *rd;
	size_t pos = 0;
	int err = MP_OK;

	*nsums = 0;
	if (mp_imap_reader_new(max_literal, &rd) != MP_OK)
		abort();
	while (pos < size && *nsums < MAX_RESPONSES) {
		size_t k = size - pos < chunk ? size - pos : chunk, used = 0;
		mp_imap_response *r = NULL;

		err = mp_imap_reader_feed(rd, (const char *)data + pos, k, &used, &r);
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
		check_response(r, max_literal, &sums[(*nsums)++]);
		mp_imap_response_free(r);
	}
	mp_imap_reader_free(rd);
	return err;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static summary a[MAX_RESPONSES], b[MAX_RESPONSES];
	size_t na, nb, chunk, max_literal, i;
	int ea, eb;

	if (size < 1)
		return 0;
	chunk = (size_t)(data[0] & 0x3f) + 1;
	max_literal = (size_t)(data[0] >> 6) * 16 + 1;
	data++;
	size--;

	ea = run(data, size, size ? size : 1, max_literal, a, &na);
	eb = run(data, size, chunk, max_literal, b, &nb);
	if (ea != eb || na != nb)
		abort();
	for (i = 0; i < na; i++)
		if (memcmp(&a[i], &b[i], sizeof a[i]) != 0)
			abort();

	/* the one-shot parser agrees with the stream for a lone response */
	{
		mp_imap_response *r = NULL;
		int e = mp_imap_parse((const char *)data, size, max_literal, &r);

		if ((e == MP_OK) != (r != NULL))
			abort();
		if (e == MP_OK && (na != 1 || ea != MP_OK))
			abort();
		mp_imap_response_free(r);
	}

	/* quoting: what comes out parses back to what went in */
	if (size < 512) {
		char s[512], q[1100], line[1200];
		mp_imap_response *r = NULL;
		size_t n;

		memcpy(s, data, size);
		s[size] = '\0';
		if (mp_imap_quote(s, q, sizeof q) == MP_OK) {
			n = (size_t)snprintf(line, sizeof line, "* X %s\r\n", q);
			if (mp_imap_parse(line, n, 0, &r) != MP_OK || r->nitems != 2 ||
			    r->items[1].type != MP_IMAP_STRING || r->items[1].len != strlen(s) ||
			    memcmp(r->items[1].s, s, strlen(s)) != 0)
				abort();
			mp_imap_response_free(r);
		}
	}
	return 0;
}
