/*
 * fuzz_range.c - libFuzzer target for the RANGE payload a peer mails
 * (lib/natplan.c): decoding, re-encoding to the same bytes, and every
 * schedule the decoded numbers can make (spraying must end, stay in
 * port range and never go below the well-known ports; chunk lookups
 * must stay in their chunks).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "mailpunch/natplan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t again[MP_RANGE_MAX_LEN];
	mp_range r;
	mp_spray s;
	size_t len;
	uint16_t port, p;
	unsigned n = 0;

	if (mp_range_decode(data, size, &r) != MP_OK)
		return 0;
	if (mp_range_encode(&r, again, sizeof again, &len) != MP_OK || len != size ||
	    memcmp(again, data, size) != 0)
		abort();
	if (r.mode == MP_RANGE_RANDOM)
		mp_spray_random(&s, r.base, r.end, (uint64_t)r.nsock * 2654435761u, 5000);
	else
		mp_spray_range(&s, r.base, r.end, r.delta, 5000);
	while (mp_spray_next(&s, &port)) {
		if (port < MP_SPRAY_MIN_PORT || ++n > 5000)
			abort();
	}
	if (r.mode == MP_RANGE_CHUNKS && mp_align_lookup(&r, r.base, &p) && r.peer_delta == 0)
		abort();
	return 0;
}
