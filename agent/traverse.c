/*
 * traverse.c - the NAT traversal plan of one link (link_priv.h,
 * lib/natplan.c for the rules and the arithmetic).
 *
 * A state machine driven by three inputs: the peer's endpoints (start),
 * the peer's RANGE signals (by mail, seconds later), and STUN answers on
 * the link's measuring sockets; a pacing timer sends at most PunchRate
 * packets per second.  Every mapping a later step needs is refreshed
 * every KEEPALIVE_MS, because a signal round by mail can take longer
 * than a NAT keeps an idle mapping.  The overall deadline is the
 * caller's (PunchTimeout in main.c); traverse_stop() ends everything.
 *
 *   REPORT        measure-before, port-assigning probe(s), measure-after;
 *                 RANGE SPAN (or RANDOM with BirthdaySockets mappings)
 *   SPRAY         on RANGE SPAN/RANDOM: probes over the range, at the
 *                 delta then its divisors (a few rounds), or birthday
 *   ALIGN_REPLY   measure; RANGE POSITION; on RANGE CHUNKS: step the
 *                 NAT's allocation onto a bubbled port and send from it
 *   ALIGN_BUBBLE  on RANGE POSITION: bubble a window of the peer's future
 *                 ports in chunks bracketed by measurements; RANGE CHUNKS
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "link_priv.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/natclass.h"
#include "mailpunch/netif.h"

#define PACE_MS 10
#define KEEPALIVE_MS 10000
#define STUN_RETRY_TICKS 3            /* 600 ms between retransmissions */
#define STUN_MAX_SENDS 7
#define SPRAY_MAX_PORTS 4096          /* one round over a detected range */
#define SPRAY_ROUNDS 3
#define BIRTHDAY_MAX_PROBES 8192
#define ALIGN_GAP 4                   /* first bubbled port: position + gap deltas */
#define ALIGN_WINDOW 512              /* bubbled ports */
#define ALIGN_CHUNK 16
#define ALIGN_MAX_ATTEMPTS 40
#define SIGNAL_RANGE 3                /* SIGNAL kind (PROTOCOL.md §9.1) */

static int
my_delta(const agent_link *l)
{
	int d = l->a->ep.nat.delta;

	return d ? d : 1;
}

static void
send_range(agent_link *l, const mp_range *r)
{
	uint8_t payload[MP_PUNCH_CONN_ID_LEN + MP_RANGE_MAX_LEN];
	size_t n;

	memcpy(payload, l->conn_id, MP_PUNCH_CONN_ID_LEN);
	if (mp_range_encode(r, payload + MP_PUNCH_CONN_ID_LEN, sizeof payload - MP_PUNCH_CONN_ID_LEN, &n) != MP_OK)
		return;
	mp_log(MP_LOG_INFO, "traversal: reporting range mode %u base %u end %u delta %d chunks %u",
	       r->mode, r->base, r->end, r->delta, r->nchunks);
	if (l->a->hooks.send_signal)
		l->a->hooks.send_signal(l->a, &l->peer, l->via_host[0] ? l->via_host : NULL,
		                        l->direct_addr[0] ? l->direct_addr : NULL, SIGNAL_RANGE, payload,
		                        MP_PUNCH_CONN_ID_LEN + n);
}

static void pace(evutil_socket_t fd, short what, void *arg);

static void
pace_on(agent_link *l)
{
	struct timeval tv = { 0, PACE_MS * 1000 };

	if (!l->pace && !(l->pace = event_new(l->a->base, -1, EV_PERSIST, pace, l)))
		return;
	if (!event_pending(l->pace, EV_TIMEOUT, NULL))
		event_add(l->pace, &tv);
}

/* Packets one pacing tick may send. */
static unsigned
quota(const agent_link *l)
{
	unsigned q = (unsigned)(l->a->cfg->punch_rate * PACE_MS / 1000);

	return q ? q : 1;
}

static int
measure(agent_link *l)
{
	int s = link_sock_open(l, SOCK_MEASURE);

	if (s >= 0 && link_stun_send(l, s) == MP_OK)
		l->measuring++;
	return s;
}

static mp_candidate
peer_port(const agent_link *l, uint16_t port)
{
	mp_candidate c = l->peer_ip;

	c.port = port;
	return c;
}

/* ---------------------------------------------------------------- start */

static int
stun_server_of(agent_link *l)
{
	const agent_stun_result *res;
	size_t n, i;

	if (!l->a->stun)
		return 0;
	n = agent_stun_results(l->a->stun, &res);
	for (i = 0; i < n; i++)
		if (res[i].status == MP_OK && res[i].server_addr.family == 4) {
			l->stun_server = res[i].server_addr;
			return 1;
		}
	return 0;
}

void
traverse_start(agent_link *l)
{
	int s;
	unsigned i;

	l->plan_started = 1;
	mp_natplan_make(&l->a->ep.nat, &l->peer_nat, l->initiator, &l->plan);
	mp_log(MP_LOG_INFO, "traversal: we are %s, the peer %s: %s", mp_natclass_classic_name(&l->a->ep.nat),
	       mp_natclass_classic_name(&l->peer_nat), l->plan.why);
	if (!l->a->cfg->port_prediction && l->plan.roles) {
		l->plan.roles = 0;
		l->plan.why = "port prediction off (PortPrediction no): direct probes";
	}
	if (!l->plan.roles)
		return;
	if (!l->have_peer_ip || !(l->have_stun = stun_server_of(l))) {
		mp_log(MP_LOG_NOTICE, "traversal: no %s: plain probes only",
		       l->have_peer_ip ? "STUN server answered" : "public address of the peer");
		l->plan.roles = 0;
		return;
	}
	if (l->plan.roles & MP_ROLE_REPORT) {
		if (l->plan.report_random) {
			/* birthday: many mappings toward the peer's endpoint */
			for (i = 0; i < (unsigned)l->a->cfg->birthday_sockets; i++)
				if ((s = link_sock_open(l, SOCK_ASSIGN)) >= 0)
					link_send_from(l, s, &l->peer_srflx, mp_punch_probe);
			{
				mp_range r = { .mode = MP_RANGE_RANDOM, .base = MP_SPRAY_MIN_PORT, .end = 65535,
				               .nsock = (uint16_t)l->a->cfg->birthday_sockets };

				send_range(l, &r);
			}
		} else if (l->a->ep.nat.allocation == MP_ALLOC_PRESERVING) {
			/* the new mapping keeps the socket's own port number */
			if ((s = link_sock_open(l, SOCK_ASSIGN)) >= 0) {
				uint16_t p = l->socks[s]->local_port;
				mp_range r = { .mode = MP_RANGE_SPAN, .delta = 1, .base = (uint16_t)(p - 1),
				               .end = (uint16_t)(p + 1) };

				link_send_from(l, s, &l->peer_srflx, mp_punch_probe);
				send_range(l, &r);
			}
		} else {
			/* range detection before and after the port-assigning probe;
			 * the NAT allocates in the order the packets leave */
			measure(l);
			if ((s = link_sock_open(l, SOCK_ASSIGN)) >= 0)
				link_send_from(l, s, &l->peer_srflx, mp_punch_probe);
			measure(l);
		}
	}
	if (l->plan.roles & MP_ROLE_ALIGN_REPLY)
		measure(l);
	if (l->have_pending) {
		l->have_pending = 0;
		traverse_on_range(l, &l->pending);
	}
}

/* ---------------------------------------------------------------- STUN answers */

static void chunks_maybe_done(agent_link *l);
static void measured(agent_link *l, const link_sock *s);

void
traverse_stun_answered(agent_link *l, int sock)
{
	link_sock *s = l->socks[sock];

	if (l->measuring)
		l->measuring--;
	if (s->use == SOCK_ALIGN) {
		/* stepping: the next mapping of our NAT will be mapped + delta */
		uint16_t next = (uint16_t)(s->mapped + my_delta(l)), p;

		if (mp_align_lookup(&l->chunks, next, &p)) {
			mp_candidate to = peer_port(l, p);

			mp_log(MP_LOG_DEBUG, "traversal: aligned on %u, sending to %u", next, p);
			link_send_from(l, sock, &to, mp_punch_probe);
		} else {
			long lo = 65536, k;
			unsigned c;

			for (c = 0; c < l->chunks.nchunks; c++)
				if (l->chunks.chunk[c].q0 < lo)
					lo = l->chunks.chunk[c].q0;
			/* behind the window: spend ports until the next is in it */
			k = (lo - (long)next) / my_delta(l);
			for (; k > 0 && k < ALIGN_WINDOW * 2; k--) {
				mp_candidate to = peer_port(l, (uint16_t)(40000 + (k % 20000)));

				link_send_from(l, sock, &to, mp_punch_probe);
			}
		}
		return;
	}
	if (s->use == SOCK_MEASURE)
		measured(l, s);
}

/* A measurement came in (s) or was given up (NULL). */
static void
measured(agent_link *l, const link_sock *s)
{
	size_t i;

	if (l->plan.roles & MP_ROLE_ALIGN_BUBBLE) {
		chunks_maybe_done(l);
		return;
	}
	if (l->measuring)
		return;
	if (l->plan.roles & MP_ROLE_REPORT) {
		mp_range r = { .mode = MP_RANGE_SPAN, .delta = (int16_t)my_delta(l) };
		int first = 1;

		for (i = 0; i < l->nsocks; i++) {
			if (!l->socks[i] || l->socks[i]->use != SOCK_MEASURE || !l->socks[i]->stun_done)
				continue;
			if (first)
				r.base = l->socks[i]->mapped;
			r.end = l->socks[i]->mapped;
			first = 0;
		}
		if (!first)
			send_range(l, &r);
	} else if ((l->plan.roles & MP_ROLE_ALIGN_REPLY) && s) {
		mp_range r = { .mode = MP_RANGE_POSITION, .delta = (int16_t)my_delta(l), .base = s->mapped };

		send_range(l, &r);
	}
}

/* ---------------------------------------------------------------- RANGE from the peer */

static void
spray_reset(agent_link *l)
{
	const mp_range *r = &l->peer_range;
	uint64_t seed;

	if (r->mode == MP_RANGE_RANDOM) {
		if (RAND_bytes((unsigned char *)&seed, sizeof seed) != 1)
			seed = link_now_ms();
		mp_spray_random(&l->spray, r->base, r->end, seed, BIRTHDAY_MAX_PROBES);
	} else {
		mp_spray_range(&l->spray, r->base, r->end, r->delta, SPRAY_MAX_PORTS);
	}
}

void
traverse_on_range(agent_link *l, const mp_range *r)
{
	if (!l->plan_started) {
		/* mail keeps no order: the peer's RANGE may overtake its ANSWER */
		l->pending = *r;
		l->have_pending = 1;
		return;
	}
	if (!l->have_peer_ip)
		return;
	switch (r->mode) {
	case MP_RANGE_SPAN:
	case MP_RANGE_RANDOM:
		if (!(l->plan.roles & MP_ROLE_SPRAY) || l->spraying)
			return;
		l->peer_range = *r;
		l->have_peer_range = 1;
		spray_reset(l);
		l->spraying = 1;
		pace_on(l);
		break;
	case MP_RANGE_POSITION:
		if (!(l->plan.roles & MP_ROLE_ALIGN_BUBBLE) || l->have_position || !l->have_stun)
			return;
		l->peer_position = r->base;
		l->peer_range = *r;
		l->have_position = 1;
		l->bubble_sock = link_sock_open(l, SOCK_BUBBLE);
		l->bubble_next = 0;
		l->bubble_total = ALIGN_WINDOW;
		l->chunks.mode = MP_RANGE_CHUNKS;
		l->chunks.delta = (int16_t)my_delta(l);
		l->chunks.peer_delta = r->delta ? r->delta : 1;
		l->chunks.nchunks = 0;
		pace_on(l);
		break;
	case MP_RANGE_CHUNKS:
		if (!(l->plan.roles & MP_ROLE_ALIGN_REPLY) || l->chunks.mode)
			return;
		l->chunks = *r;
		l->align_attempts = 0;
		pace_on(l);
		break;
	}
}

/* ---------------------------------------------------------------- align: bubbling */

/* The measurement sockets of the bubbling, in order, are the chunk
 * boundaries: boundary c is before chunk c and after chunk c-1. */
static void
chunks_maybe_done(agent_link *l)
{
	link_sock *b[MP_RANGE_MAX_CHUNKS + 1];
	size_t i, nb = 0;
	unsigned c, count;
	mp_range out = l->chunks;

	if (l->bubble_next < l->bubble_total || l->measuring)
		return;
	for (i = 0; i < l->nsocks && nb <= MP_RANGE_MAX_CHUNKS; i++)
		if (l->socks[i] && l->socks[i]->use == SOCK_MEASURE && (int)i > l->bubble_sock)
			b[nb++] = l->socks[i];
	out.nchunks = 0;
	for (c = 0; c + 1 < nb; c++) {
		uint16_t q0;

		count = ALIGN_CHUNK;
		if (!b[c]->stun_done || !b[c + 1]->stun_done ||
		    !mp_align_chunk_exact(b[c]->mapped, b[c + 1]->mapped, my_delta(l), count) ||
		    !mp_align_window(l->peer_position, l->chunks.peer_delta, ALIGN_GAP, c * ALIGN_CHUNK, &q0))
			continue;     /* someone else's flow took a port in between */
		out.chunk[out.nchunks].q0 = q0;
		out.chunk[out.nchunks].p0 = (uint16_t)(b[c]->mapped + my_delta(l));
		out.chunk[out.nchunks].count = (uint8_t)count;
		out.nchunks++;
	}
	l->chunks = out;
	mp_log(MP_LOG_INFO, "traversal: %u of %zu bubble chunks exactly known", out.nchunks,
	       nb ? nb - 1 : 0);
	if (out.nchunks)
		send_range(l, &out);
}

static void
bubble_some(agent_link *l, unsigned budget)
{
	while (budget-- && l->bubble_next < l->bubble_total) {
		uint16_t q;

		if (l->bubble_next % ALIGN_CHUNK == 0)
			measure(l);      /* the boundary before this chunk */
		if (mp_align_window(l->peer_position, l->chunks.peer_delta, ALIGN_GAP, l->bubble_next, &q)) {
			mp_candidate to = peer_port(l, q);

			link_send_from(l, l->bubble_sock, &to, mp_punch_probe);
		}
		l->bubble_next++;
		if (l->bubble_next == l->bubble_total)
			measure(l);      /* the boundary after the last chunk */
	}
}

/* ---------------------------------------------------------------- pacing */

static void
pace(evutil_socket_t fd, short what, void *arg)
{
	agent_link *l = arg;
	unsigned budget = quota(l);
	int busy = 0;

	if (l->have_path) {
		event_del(l->pace);
		return;
	}
	if (l->spraying) {
		uint16_t port;

		busy = 1;
		while (budget && mp_spray_next(&l->spray, &port)) {
			mp_candidate to = peer_port(l, port);

			link_send_from(l, LINK_MAIN_SOCK, &to, mp_punch_probe);
			budget--;
		}
		if (budget) {
			/* a round is over: again, in case our probes came first */
			if (++l->spray_rounds < SPRAY_ROUNDS)
				spray_reset(l);
			else
				l->spraying = 0;
		}
	}
	if (l->have_position && l->bubble_next < l->bubble_total) {
		busy = 1;
		bubble_some(l, budget);
	}
	if (l->chunks.mode && (l->plan.roles & MP_ROLE_ALIGN_REPLY) && l->align_attempts < ALIGN_MAX_ATTEMPTS) {
		/* one stepping attempt every 5 ticks: a fresh socket, a binding */
		busy = 1;
		if (l->align_wait == 0) {
			int s = link_sock_open(l, SOCK_ALIGN);

			if (s >= 0)
				link_stun_send(l, s);
			l->align_attempts++;
			l->align_wait = 5;
		}
		l->align_wait--;
	}
	if (!busy)
		event_del(l->pace);
}

/* ---------------------------------------------------------------- ticks */

void
traverse_tick(agent_link *l)
{
	size_t i;
	int keepalive = l->ticks % (KEEPALIVE_MS / 200) == 0;

	if (!l->plan_started || !l->plan.roles)
		return;
	for (i = 0; i < l->nsocks; i++) {
		link_sock *s = l->socks[i];

		if (!s)
			continue;
		if (s->stun_pending && l->ticks % STUN_RETRY_TICKS == 0) {
			if (s->stun_sends < STUN_MAX_SENDS) {
				link_stun_send(l, (int)i);
			} else {
				s->stun_pending = 0;     /* lost: that measurement is void */
				if (l->measuring)
					l->measuring--;
				if (s->use == SOCK_MEASURE)
					measured(l, NULL);
			}
		}
		if (keepalive && s->use == SOCK_ASSIGN)
			link_send_from(l, (int)i, &l->peer_srflx, mp_punch_probe);
	}
	if (keepalive && l->bubble_sock >= 0 && l->bubble_next >= l->bubble_total) {
		unsigned k;

		for (k = 0; k < l->bubble_total; k++) {
			uint16_t q;

			if (mp_align_window(l->peer_position, l->chunks.peer_delta, ALIGN_GAP, k, &q)) {
				mp_candidate to = peer_port(l, q);

				link_send_from(l, l->bubble_sock, &to, mp_punch_probe);
			}
		}
	}
}

void
traverse_stop(agent_link *l)
{
	l->spraying = 0;
	if (l->pace) {
		event_free(l->pace);
		l->pace = NULL;
	}
}
