/*
 * stun_client.h - ask STUN servers how the NAT maps one UDP socket.
 *
 * The agent punches holes from one UDP socket, so the server-reflexive
 * address it announces must be that socket's mapping: the client sends
 * its Binding requests from a socket the caller gives it and never opens
 * one of its own.  Because the socket also carries the agent's other
 * traffic, reading it is the caller's business by default: the agent's
 * read callback offers every datagram to agent_stun_input(), which
 * returns 1 when the datagram was a STUN response to one of this
 * client's transactions (consumed) and 0 otherwise (not ours: the caller
 * goes on with it).  With opts.own_read the client installs its own
 * read event on the socket instead and drops what is not its own.
 *
 * Interface: agent_stun_client_new() on the caller's event base and
 * socket; agent_stun_add_server() ("host", "host:port", "[v6]:port";
 * port 3478 by default) or agent_stun_add_address() (a known address,
 * optionally with RFC 5780 CHANGE-REQUEST flags) once per query;
 * agent_stun_start() sends all queries in parallel and calls back once,
 * from the event loop, when every one has an answer or has given up.
 * Results (agent_stun_results(), one per query in the order added) stay
 * valid until the next start or the free; agent_stun_srflx() collects
 * the distinct server-reflexive candidates.  start() may be called again
 * for a fresh round (new transaction IDs, names already resolved kept).
 * It is safe to free the client from the done callback.
 *
 * Transactions follow RFC 5389 §7.2.1: a request at 0, RTO, 3*RTO, ...
 * (RTO doubling, 500 ms first), at most 7 sends, but the whole query is
 * bounded by opts.timeout_ms (3 s by default).  A response counts only
 * with the query's transaction ID and from the address the request went
 * to; a query with CHANGE-REQUEST flags expects its answer from another
 * address, so it accepts any source and reports it in result.from.
 *
 * Names are resolved once, when added (and retried at start if that
 * failed), for the socket's address family only: without opts.dns that
 * is a blocking getaddrinfo(3) (numeric addresses never block), with an
 * evdns base it is asynchronous.  A lookup still pending when the client
 * is freed is cancelled, and evdns releases it from the event loop: let
 * the loop run once more (EVLOOP_NONBLOCK will do) before freeing the
 * evdns base, and free that with fail_requests set.
 *
 * Errors: new() returns NULL (errno: EINVAL for a bad socket, ENOMEM);
 * the other calls return MP_ERR_INVAL (bad argument, too many queries,
 * already running), MP_ERR_SYNTAX (server text), MP_ERR_NOMEM.  Each
 * result's status: MP_OK; MP_ERR_UNAVAILABLE (no answer in time, or an
 * error response: error_code); MP_ERR_NOTFOUND (the name has no address
 * of the socket's family); MP_ERR_MALFORMED (a success response without
 * a mapped address, or with comprehension-required attributes we do not
 * know, which RFC 5389 §7.3.3 says to treat as failure); MP_ERR_IO (the
 * socket refused to send: os_errno).
 */
#ifndef AGENT_STUN_CLIENT_H
#define AGENT_STUN_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "mailpunch/block.h"

#define AGENT_STUN_MAX_QUERIES 16
#define AGENT_STUN_SERVER_MAX 272       /* "host:port" text, NUL included */
#define AGENT_STUN_DEFAULT_PORT 3478
#define AGENT_STUN_TIMEOUT_MS 3000
#define AGENT_STUN_RTO_MS 500
#define AGENT_STUN_MAX_SENDS 7          /* RFC 5389 Rc */
#define AGENT_STUN_LAST_WAIT 16         /* RFC 5389 Rm: last wait, in RTOs */

struct evdns_base;

typedef struct agent_stun_client agent_stun_client;

typedef struct agent_stun_opts {
	unsigned timeout_ms;            /* whole transaction; 0: 3000 */
	unsigned rto_ms;                /* first retransmission timeout; 0: 500 */
	const char *software;           /* SOFTWARE attribute, copied; NULL: none */
	int own_read;                   /* read the socket ourselves */
	struct evdns_base *dns;         /* non-blocking resolution; NULL: getaddrinfo */
} agent_stun_opts;

typedef struct agent_stun_result {
	char server[AGENT_STUN_SERVER_MAX];     /* as added */
	int status;                     /* MP_OK or an mp_err, see above */
	uint16_t error_code;            /* of a STUN error response */
	int os_errno;                   /* of a failed send */
	uint32_t change_flags;          /* CHANGE-REQUEST sent, if not 0 */
	mp_candidate server_addr;       /* family 0 while unresolved */
	mp_candidate srflx;             /* kind MP_CAND_SRFLX */
	mp_candidate from;              /* source of the answer */
	int have_other;                 /* OTHER-ADDRESS (or CHANGED-ADDRESS) */
	mp_candidate other;
	int have_origin;                /* RESPONSE-ORIGIN (or SOURCE-ADDRESS) */
	mp_candidate origin;
	unsigned sent;                  /* requests sent */
	unsigned elapsed_ms;            /* first send to the end; 0: none sent */
} agent_stun_result;

typedef void (*agent_stun_done_cb)(agent_stun_client *c, void *arg);

agent_stun_client *agent_stun_client_new(struct event_base *base, evutil_socket_t fd,
                                         const agent_stun_opts *opts);
void agent_stun_client_free(agent_stun_client *c);

/* Both return the query's index (>= 0) or an mp_err. */
int agent_stun_add_server(agent_stun_client *c, const char *hostport);
int agent_stun_add_address(agent_stun_client *c, const mp_candidate *server,
                           uint32_t change_flags);

int agent_stun_start(agent_stun_client *c, agent_stun_done_cb cb, void *arg);
/* Stops a round without calling back; results keep what came in. */
void agent_stun_cancel(agent_stun_client *c);
int agent_stun_running(const agent_stun_client *c);

/* from: a sockaddr_in or sockaddr_in6, as recvfrom(2) filled it. */
int agent_stun_input(agent_stun_client *c, const uint8_t *buf, size_t len,
                     const struct sockaddr *from);

size_t agent_stun_results(const agent_stun_client *c, const agent_stun_result **out);
/* Distinct server-reflexive candidates of the successful queries. */
size_t agent_stun_srflx(const agent_stun_client *c, mp_candidate *out, size_t max);

/* Splits "host", "host:port", "[v6]" or "[v6]:port" (default port 3478). */
int agent_stun_parse_server(const char *text, char *host, size_t hostcap,
                            uint16_t *port);

#endif
