/*
 * fuzz_control.c - libFuzzer target for the control protocol.
 *
 * The input up to and including its first LF is one request line for
 * mp_control_exec(); what follows the LF, if anything, becomes the name
 * (first 64 bytes) and reply address (next 254 bytes) of one of the
 * table's entries, so the fuzzer also explores the escapers.  The table
 * is a small shared-memory table (unlinked at once, so nothing is left
 * behind), re-seeded before every run with four entries of fixed
 * identities (see tests/fuzz/corpus/control for their user IDs).
 * Checks what every answer promises: MP_OK, a NUL-terminated answer of
 * the stated length, a status line "OK" or "ERR <code> <message>", a
 * final "." line and no earlier one, no control byte but LF anywhere,
 * and a body of exactly one valid JSON object line whenever the request
 * asked for JSON (or the body looks like JSON).  A broken promise aborts.
 */
#include "mailpunch/block.h"
#include "mailpunch/control.h"
#include "mailpunch/error.h"
#include "mailpunch/keys.h"
#include "mailpunch/table.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "../unit/jsoncheck.h"

/* ---------------------------------------------------------------- table */

#define NOW 1800000000ULL

static mp_table *table;

static void
open_table(void)
{
	char name[64];

	snprintf(name, sizeof name, "/mp-fuzz-control-%ld", (long)getpid());
	mp_table_shm_unlink(name);
	if (mp_table_shm_open(name, 16, MP_TABLE_CREATE, 0600, &table) != MP_OK)
		abort();
	/* The mapping stays usable; nothing is left in /dev/shm on a crash. */
	mp_table_shm_unlink(name);
}

/* Entry i has sign_pub all i+1 and seal_pub all i+0x41: fixed user IDs,
 * so the seed corpus can name them. */
static void
seed(int i, const uint8_t *name, size_t nlen, const uint8_t *addr, size_t alen)
{
	static const char *const names[] = { "Alice", "B\"o\\b\x1b[1m", "\xff\xc3\x28", "" };
	static const char *const addrs[] = { "alice@example.org", "b\"@x", "c@x", "" };
	mp_table_entry e;

	memset(&e, 0, sizeof e);
	memset(e.id.sign_pub, i + 1, sizeof e.id.sign_pub);
	memset(e.id.seal_pub, i + 0x41, sizeof e.id.seal_pub);
	mp_pubid_uid(&e.id, &e.uid);
	if (name) {
		memcpy(e.name, name, nlen);
		memcpy(e.reply_addr, addr, alen);
	} else {
		snprintf(e.name, sizeof e.name, "%s", names[i]);
		snprintf(e.reply_addr, sizeof e.reply_addr, "%s", addrs[i]);
	}
	e.time = NOW - (uint64_t)i * 3000;     /* entry 2 and 3 are expired */
	e.flags = (uint8_t)(i == 1 ? MP_PEER_FAILED : 0);
	e.ep.nat.mapping = (uint8_t)i;
	e.ep.nat.filtering = (uint8_t)(4 - i);
	e.ep.nat.allocation = (uint8_t)i;
	e.ep.nat.delta = (int16_t)(i - 2);
	if (i != 3 && mp_candidate_parse("192.0.2.1:1000", MP_CAND_SRFLX,
	                                 &e.ep.cand[e.ep.ncand++]) != MP_OK)
		abort();
	if (i == 0 && mp_candidate_parse("[2001:db8::ffff:1]:65535", MP_CAND_PREDICTED,
	                                 &e.ep.cand[e.ep.ncand++]) != MP_OK)
		abort();
	if (mp_table_upsert(table, &e, NULL) != MP_OK)
		abort();
}

/* ---------------------------------------------------------------- target */

static int
asks_json(const uint8_t *line, size_t n)
{
	size_t i = 0;

	if (n > 0 && line[n - 1] == '\n') {
		n--;
		if (n > 0 && line[n - 1] == '\r')
			n--;
	}
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return n - i >= 4 && strncasecmp((const char *)line + i, "json", 4) == 0 &&
	       (n - i == 4 || line[i + 4] == ' ' || line[i + 4] == '\t');
}

static void
check_answer(const uint8_t *line, size_t n, const char *out, size_t len)
{
	const char *body, *p;
	size_t i, lines = 0;

	if (strlen(out) != len || len < 5 || memcmp(out + len - 3, "\n.\n", 3) != 0)
		abort();
	if (strncmp(out, "OK\n", 3) != 0 &&
	    (strncmp(out, "ERR ", 4) != 0 || out[4] == ' ' || out[4] == '\n'))
		abort();
	for (i = 0; i < len; i++)
		if (((unsigned char)out[i] < 0x20 && out[i] != '\n') || out[i] == 0x7f)
			abort();
	body = strchr(out, '\n') + 1;
	for (p = body; p < out + len - 2; p = strchr(p, '\n') + 1) {
		if (p[0] == '.' && p[1] == '\n')
			abort();      /* an unstuffed dot line would end the answer early */
		lines++;
	}
	if (asks_json(line, n) || body[0] == '{') {
		size_t blen = (size_t)(out + len - 2 - body);

		if (lines != 1 || !json_object_ok(body, blen - 1))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t n = nl ? (size_t)(nl - data) + 1 : size, rest = size - n, nlen, alen;
	mp_control_ctx ctx;
	char *out = NULL;
	size_t outlen = 0;
	int i;

	if (!table)
		open_table();
	for (i = 0; i < 4; i++)
		seed(i, NULL, 0, NULL, 0);
	if (rest > 0) {
		/* memcpy'd into zeroed arrays: an embedded NUL just ends the text */
		nlen = rest < MP_NAME_MAX ? rest : MP_NAME_MAX;
		alen = rest - nlen < MP_ADDR_MAX ? rest - nlen : MP_ADDR_MAX;
		seed(3, data + n, nlen, data + n + nlen, alen);
	}
	ctx.table = table;
	ctx.now = NOW;
	ctx.max_age = (size & 1) ? 3600 : 0;
	if (mp_control_exec(&ctx, (const char *)data, n, &out, &outlen) != MP_OK)
		abort();
	check_answer(data, n, out, outlen);
	free(out);
	return 0;
}
