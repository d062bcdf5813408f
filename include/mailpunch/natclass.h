/*
 * natclass.h - NAT behaviour from observations: pure decisions, no I/O.
 *
 * The agent's discovery (agent/nat_discovery.c) sends STUN Binding
 * requests and hands what came back to these functions, so every rule
 * that turns answers into an mp_nat is here, testable without sockets.
 *
 * Port allocation (seed 003, "port number differential"): bindings from
 * several fresh local ports, made one after the other, each reveal the
 * external port the NAT picked.  mp_natclass_allocation() says:
 *   - PRESERVING when every answered binding kept its local port;
 *   - SEQUENTIAL with delta k when the consecutive differences (in the
 *     order the bindings were made) all have the same sign and are small
 *     multiples of k.  k is the greatest common divisor of the
 *     differences, signed by their direction.  Seed 003 allows either the
 *     smallest difference or the gcd; the gcd is the one that is right
 *     when other hosts' flows took ports between ours (differences 12, 6,
 *     9 -> 3, where the smallest, 6, would skip every other port), and a
 *     binding that got no answer still used a port, which the gcd also
 *     absorbs.  Its multiples may then be tried downwards to 1 as the
 *     seed suggests, by whoever predicts ports;
 *   - RANDOM otherwise: mixed directions, a gcd above
 *     MP_NATCLASS_MAX_DELTA, or a difference more than
 *     MP_NATCLASS_MAX_STEPS deltas wide (a gcd of 1 over differences in
 *     the thousands is chance, not structure);
 *   - UNKNOWN with fewer than 3 answered bindings (2 differences), or 2
 *     for preservation.
 * One difference against the common direction and wider than
 *   MP_NATCLASS_WRAP_MIN is taken as the NAT's pool wrapping around
 *   (e.g. 60999 -> 32768) and left out.  Differences of 0 (the NAT reused
 *   an external port for a new destination, port overloading) say nothing
 *   about the step and are left out too; when every difference is 0 the
 *   allocation is SEQUENTIAL with delta 0: the next port is predictable.
 *
 * RFC 5780 §4.3 mapping: mp_natclass_mapping() compares the mapped
 * addresses of test I (primary address), II (alternate address, primary
 * port) and III (alternate address and port), all from one socket; a
 * test I mapping equal to one of the socket's local endpoints means no
 * NAT; without RFC 5780 two servers at different addresses stand in for
 * tests I and II (mp_natclass_mapping_two_servers()).  §4.4 filtering: mp_natclass_filtering() from whether answers to
 * CHANGE-REQUEST (IP and port; port only) arrived on fresh sockets;
 * mp_natclass_change_honoured() checks that such an answer really came
 * from where the request asked (a server that ignores CHANGE-REQUEST
 * would otherwise look like endpoint-independent filtering).
 *
 * mp_natclass_classic_name() gives the RFC 3489 name people know.
 *
 * Errors: mp_natclass_allocation() returns MP_ERR_INVAL for NULL
 * arguments or more than MP_NATCLASS_MAX_BINDINGS bindings; everything
 * else cannot fail and returns an mp_nat_dep / a constant string.
 */
#ifndef MAILPUNCH_NATCLASS_H
#define MAILPUNCH_NATCLASS_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/block.h"

#define MP_NATCLASS_MAX_BINDINGS 32
#define MP_NATCLASS_MAX_DELTA 64        /* larger steps: no sequence */
#define MP_NATCLASS_MAX_STEPS 8         /* widest gap, in deltas */
#define MP_NATCLASS_WRAP_MIN 1024       /* a backwards jump this wide: wrap */

/* One binding of the allocation test, in the order they were sent. */
typedef struct mp_nat_binding {
	int answered;                   /* 0: no answer, ports meaningless */
	uint16_t local_port;
	uint16_t external_port;
	mp_candidate dest;              /* server endpoint asked (reported only) */
} mp_nat_binding;

typedef struct mp_nat_alloc_result {
	int allocation;                 /* mp_nat_alloc */
	int16_t delta;                  /* SEQUENTIAL only, else 0 */
	unsigned answered;              /* bindings that counted */
	unsigned ndiffs;                /* differences used (wraps, zeros out) */
	unsigned wraps;                 /* differences taken as pool wrap */
	int smallest;                   /* smallest |difference| used, 0: none */
} mp_nat_alloc_result;

int mp_natclass_allocation(const mp_nat_binding *b, size_t n, mp_nat_alloc_result *out);

/* Greatest common divisor of |a| and |b| (0 when both are 0). */
unsigned mp_natclass_gcd(int a, int b);

/*
 * x1, x2, x3: mapped addresses of tests I, II, III (NULL: no answer, or
 * not run); locals: the socket's own endpoints (interface addresses with
 * its port).  UNKNOWN without x1, or without x2, or when x1 != x2 and x3
 * is missing.
 */
int mp_natclass_mapping(const mp_candidate *x1, const mp_candidate *x2, const mp_candidate *x3,
                        const mp_candidate *locals, size_t nlocals);

/*
 * Without RFC 5780: test I's socket asked two servers at different IP
 * addresses (x1, x2: the mappings they saw).  The same mapping means
 * endpoint-independent; different ones show a dependent mapping but not
 * which kind, so the stricter, address-and-port-dependent, is reported
 * (a peer then predicts rather than trusts the mapping).  NONE as above;
 * UNKNOWN without both, or when the servers share an IP address (a
 * port change alone cannot tell endpoint-independent from
 * address-dependent).
 */
int mp_natclass_mapping_two_servers(const mp_candidate *server1, const mp_candidate *x1,
                                    const mp_candidate *server2, const mp_candidate *x2,
                                    const mp_candidate *locals, size_t nlocals);

/* Answers to the filtering tests: */
#define MP_NATCLASS_NO_ANSWER 0         /* timed out: filtered */
#define MP_NATCLASS_ANSWERED 1          /* from the changed address, as asked */
#define MP_NATCLASS_BROKEN (-1)         /* error, or from the wrong address */

/* rfc5780: the server named an OTHER-ADDRESS.  change_both: the answer
 * to CHANGE-REQUEST IP+port; change_port: to port only.  mapping: what
 * mp_natclass_mapping() said (no NAT and unfiltered is NONE). */
int mp_natclass_filtering(int rfc5780, int change_both, int change_port, int mapping);

/* server: where the request went; from: where its answer came from. */
int mp_natclass_change_honoured(const mp_candidate *server, const mp_candidate *from,
                                uint32_t change_flags);

/* "full cone", "restricted cone", "port-restricted cone", "symmetric",
 * "open internet", "firewall (no NAT)", "cone (filtering unknown)",
 * "unknown". */
const char *mp_natclass_classic_name(const mp_nat *nat);

#endif
