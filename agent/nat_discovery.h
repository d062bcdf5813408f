/*
 * nat_discovery.h - how the NAT in front of us behaves (RFC 5780) and
 * how it allocates ports (seed 003), measured with STUN.
 *
 * Everything here runs on fresh UDP sockets of its own: the agent's main
 * socket keeps its one mapping for announcing and punching, and a test
 * socket that has already sent somewhere would open the very filter the
 * filtering tests look at.  The rules that turn answers into mp_nat
 * values are lib/natclass.c's; this module only asks the questions.
 *
 * Rounds (IPv4 only: IPv6 has no NAT to discover):
 *   1. test I: one socket asks every configured server (first 4).  The
 *      first server, in the order given, whose answer names an
 *      OTHER-ADDRESS with another IP and port is used for RFC 5780; else
 *      the first that answered, without RFC 5780.
 *   2. all at once, sent in this order within one callback so that the
 *      NAT sees the allocation bindings back to back:
 *      mapping tests II (alternate IP, primary port) and III (alternate
 *      IP and port) on test I's socket; filtering tests on two fresh
 *      sockets (CHANGE-REQUEST IP+port, and port only, to the primary
 *      address); then opts.bindings fresh sockets, each to the next
 *      server endpoint (primary and alternate IP x both ports, or the
 *      servers that answered), for the allocation.
 * Without RFC 5780 the filtering stays unknown; the mapping too, unless
 * test I shows our own address ("no NAT") or a second server at another
 * IP answered test I as well: its mapping stands in for test II (lib/
 * natclass.c: equal is endpoint-independent, else reported as
 * address-and-port-dependent).  The allocation is measured either way.  The whole run takes test I's round trip plus at most
 * opts.timeout_ms: a filtered test is only known by its silence.
 *
 * Interface: agent_nat_discovery_new() on an event base;
 * agent_nat_discovery_start() with the server texts ("host[:port]");
 * the callback runs once, from the event loop, with the report (valid
 * during the callback; copy what you keep).  Freeing the discovery from
 * its callback is safe; freeing it while running cancels everything
 * without a callback.
 *
 * Errors: new() returns NULL (ENOMEM); start() returns MP_ERR_INVAL (no
 * servers, already started), MP_ERR_IO (no socket), MP_ERR_NOMEM.  The
 * report's status: MP_OK (at least test I answered), MP_ERR_UNAVAILABLE
 * (no server answered in time), MP_ERR_NOTFOUND (no server usable:
 * names without IPv4 address or malformed).
 */
#ifndef AGENT_NAT_DISCOVERY_H
#define AGENT_NAT_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "mailpunch/block.h"
#include "mailpunch/natclass.h"
#include "stun_client.h"

#define AGENT_NAT_MAX_SERVERS 4
#define AGENT_NAT_MAX_BINDINGS 12
#define AGENT_NAT_BINDINGS 6
#define AGENT_NAT_TIMEOUT_MS 1000
#define AGENT_NAT_RTO_MS 200

typedef struct agent_nat_discovery agent_nat_discovery;

typedef struct agent_nat_opts {
	unsigned timeout_ms;            /* each round; 0: AGENT_NAT_TIMEOUT_MS */
	unsigned rto_ms;                /* 0: AGENT_NAT_RTO_MS */
	unsigned bindings;              /* allocation test; 0: AGENT_NAT_BINDINGS */
} agent_nat_opts;

typedef struct agent_nat_report {
	int status;                     /* see above */
	mp_nat nat;
	char server[AGENT_STUN_SERVER_MAX];     /* the one used, as given */
	mp_candidate primary;           /* its address */
	int rfc5780;                    /* OTHER-ADDRESS usable */
	mp_candidate other;
	int have_map[3];                /* mapping tests I, II, III answered */
	mp_candidate map[3];            /* ... and what they mapped to */
	int two_servers;                /* no RFC 5780: test II was to second */
	mp_candidate second;            /* ... this server, at another IP */
	uint16_t local_port;            /* test I socket's port */
	int filter_both, filter_port;   /* MP_NATCLASS_ANSWERED / NO_ANSWER / BROKEN */
	size_t nbindings;
	mp_nat_binding binding[AGENT_NAT_MAX_BINDINGS];
	mp_nat_alloc_result alloc;
	unsigned elapsed_ms;
} agent_nat_report;

typedef void (*agent_nat_done_cb)(agent_nat_discovery *d, const agent_nat_report *r, void *arg);

agent_nat_discovery *agent_nat_discovery_new(struct event_base *base, const agent_nat_opts *opts);
int agent_nat_discovery_start(agent_nat_discovery *d, const char *const *servers, size_t nservers,
                              agent_nat_done_cb cb, void *arg);
void agent_nat_discovery_free(agent_nat_discovery *d);

/* "endpoint-independent" ..., for reports of a test that did not run. */
const char *agent_nat_filter_answer_name(int answer);

#endif
