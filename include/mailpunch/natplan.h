/*
 * natplan.h - how two agents punch through their two NATs: who does
 * what (roles), which ports to spray, and the RANGE signal that carries
 * the measurements between them.  Pure logic: no sockets, no timers.
 *
 * The terms are seed 003's.  A side whose NAT maps every destination to
 * the same external port (endpoint-independent mapping, "cone") is
 * reachable at the address a STUN server saw; the other sides are
 * "symmetric" and their mapping toward the peer must be found:
 *
 *   REPORT   (the seed's port-assigning side, embodiment 4) opens a
 *            fresh socket, sends one packet to the peer's known endpoint
 *            and brackets it with two STUN bindings from fresh sockets
 *            (range detection before and after): the new mapping lies
 *            between the two, at the NAT's port delta.  With random
 *            allocation it opens many sockets instead (birthday mode).
 *            The numbers go to the peer in a RANGE signal.
 *   SPRAY    (the seed's reply packets) sends probes from its main
 *            socket over the reported range at the reported delta, then
 *            at every smaller divisor of it, skipping well-known ports,
 *            until an authenticated packet comes back; over a random
 *            NAT it probes distinct random ports (birthday).
 *   ALIGN_*  beyond the seed: both NATs port-sensitive symmetric with
 *            sequential allocation.  The responder reports where its
 *            allocation stands (POSITION); the initiator bubbles a window
 *            of the responder's future ports from one socket, in chunks
 *            bracketed by STUN so that each bubble's own external port is
 *            known exactly (CHUNKS); the responder then steps its own
 *            allocation onto one of the bubbled ports and sends from it
 *            to the matching port of the initiator.
 *
 * Every side also probes the peer's plain candidates at once, so an easy
 * pair connects in one round trip whatever the plan says.
 *
 * Interface: mp_natplan_make() from the two NAT descriptions;
 * mp_spray_* iterate target ports; mp_range_encode/decode the RANGE
 * payload (after the 16-byte connection ID); mp_align_* the chunk
 * arithmetic; mp_birthday_success() the odds of birthday probing.
 * Errors: MP_ERR_INVAL (impossible argument), MP_ERR_TOOBIG (buffer),
 * MP_ERR_TRUNCATED / MP_ERR_MALFORMED (RANGE payload from the network).
 */
#ifndef MAILPUNCH_NATPLAN_H
#define MAILPUNCH_NATPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/block.h"

#define MP_ROLE_REPORT 0x01u
#define MP_ROLE_SPRAY 0x02u
#define MP_ROLE_ALIGN_BUBBLE 0x04u
#define MP_ROLE_ALIGN_REPLY 0x08u

/* Ports below this are never sprayed (seed 003: well-known ports). */
#define MP_SPRAY_MIN_PORT 1024u

typedef struct mp_natplan {
	unsigned roles;           /* MP_ROLE_*; 0: plain probing only */
	int report_random;        /* REPORT with random allocation: birthday */
	const char *why;          /* one line for people and logs */
} mp_natplan;

/* Both sides compute the same plan from (initiator's NAT, responder's
 * NAT); me/peer say which one this side is. */
void mp_natplan_make(const mp_nat *me, const mp_nat *peer, int initiator, mp_natplan *out);

/* ---------------------------------------------------------------- spraying */

typedef struct mp_spray {
	int random;
	/* range mode: base + k*step for k = 1.. while before end */
	int32_t base, end;
	int32_t delta;            /* signed, as measured */
	int32_t steps[16];        /* |delta| and its divisors, descending */
	unsigned nsteps, pass;
	int32_t k;
	/* random mode: a permutation of [lo, hi] */
	uint32_t lo, size, start, stride, i;
	uint32_t sent, max;
} mp_spray;

/* Ports strictly between base and end (either order), at delta then at
 * each divisor of it; at most max ports (0: no limit). */
void mp_spray_range(mp_spray *s, uint16_t base, uint16_t end, int delta, uint32_t max);
/* Distinct pseudo-random ports of [lo, hi] from seed, at most max. */
void mp_spray_random(mp_spray *s, uint16_t lo, uint16_t hi, uint64_t seed, uint32_t max);
/* 1 and a port, or 0 when the schedule is done. */
int mp_spray_next(mp_spray *s, uint16_t *port);

/* Chance that k distinct random probes over a range of size ports hit
 * one of n open mappings: 1 - C(size-n, k) / C(size, k). */
double mp_birthday_success(unsigned n, unsigned k, unsigned size);

/* ---------------------------------------------------------------- RANGE */

typedef enum mp_range_mode {
	MP_RANGE_SPAN = 1,        /* mapping between base and end, at delta */
	MP_RANGE_RANDOM = 2,      /* nsock mappings at random ports in [base, end] */
	MP_RANGE_POSITION = 3,    /* allocation last stood at base (align) */
	MP_RANGE_CHUNKS = 4,      /* bubbled ports, exactly known (align) */
} mp_range_mode;

#define MP_RANGE_MAX_CHUNKS 64

typedef struct mp_align_chunk {
	uint16_t q0;              /* first bubbled port of the peer */
	uint16_t p0;              /* its own external port */
	uint8_t count;            /* q0 + i*dq gets p0 + i*dp, i < count */
} mp_align_chunk;

typedef struct mp_range {
	uint8_t mode;             /* mp_range_mode */
	int16_t delta;            /* the sender's port delta */
	uint16_t base, end;
	uint16_t nsock;           /* RANDOM */
	int16_t peer_delta;       /* CHUNKS: the delta used for the q ports */
	uint8_t nchunks;
	mp_align_chunk chunk[MP_RANGE_MAX_CHUNKS];
} mp_range;

#define MP_RANGE_MAX_LEN (12 + 5 * MP_RANGE_MAX_CHUNKS)

int mp_range_encode(const mp_range *r, uint8_t *buf, size_t cap, size_t *len);
int mp_range_decode(const uint8_t *buf, size_t len, mp_range *r);

/* ---------------------------------------------------------------- align */

/* The i-th port of a window of the peer's future allocations. */
int mp_align_window(uint16_t position, int delta, unsigned gap, unsigned i, uint16_t *port);
/* Whether a chunk's bubbles all got consecutive ports: the STUN binding
 * after them (after) stands exactly count+1 deltas past the one before. */
int mp_align_chunk_exact(uint16_t before, uint16_t after, int delta, unsigned count);
/* The initiator's port bubbled toward our port q, if a chunk has it. */
int mp_align_lookup(const mp_range *r, uint16_t q, uint16_t *p);

#endif
