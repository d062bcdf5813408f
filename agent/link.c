/*
 * link.c - one connection attempt over the agent's UDP socket (agent.h).
 *
 * Until a packet gets through, a link probes every candidate of the peer
 * five times a second (both sides do, at once: simultaneous punching).
 * The first authenticated probe or ack names the path; the initiator
 * then runs the handshake there (lib/punch.c).  Once established, a
 * keepalive every 15 s holds the NAT mappings open (unanswered UDP
 * mappings live about 30 s on common routers).
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/netif.h"

#define TICK_MS 200
#define KEEPALIVE_TICKS (15000 / TICK_MS)
#define MAX_LINK_CANDIDATES 32

struct agent_link {
	agent *a;
	mp_punch *punch;
	mp_pubid peer;
	int initiator;
	uint8_t conn_id[MP_PUNCH_CONN_ID_LEN];
	mp_candidate cand[MAX_LINK_CANDIDATES];
	size_t ncand;
	mp_candidate path;
	int have_path, established;
	unsigned ticks;
	struct event *timer;
};

static void
send_packet(agent_link *l, const mp_candidate *to, int (*make)(mp_punch *, uint8_t *, size_t, size_t *))
{
	uint8_t buf[MP_PUNCH_MAX_PACKET];
	size_t len;

	if (make(l->punch, buf, sizeof buf, &len) == MP_OK)
		agent_udp_send(l->a, to, buf, len);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	agent_link *l = arg;
	size_t i;

	l->ticks++;
	if (l->established) {
		if (l->ticks % KEEPALIVE_TICKS == 0)
			send_packet(l, &l->path, mp_punch_keepalive);
		return;
	}
	if (l->initiator && l->have_path)
		send_packet(l, &l->path, mp_punch_hello);
	for (i = 0; i < l->ncand; i++)
		send_packet(l, &l->cand[i], mp_punch_probe);
}

agent_link *
agent_link_new(agent *a, const mp_pubid *peer, int initiator,
               const uint8_t conn_id[MP_PUNCH_CONN_ID_LEN], const uint8_t secret[MP_PUNCH_SECRET_LEN])
{
	struct timeval tv = { 0, TICK_MS * 1000 };
	agent_link *l;

	if (a->nlinks == AGENT_MAX_LINKS || !(l = calloc(1, sizeof *l)))
		return NULL;
	l->a = a;
	l->peer = *peer;
	l->initiator = initiator;
	memcpy(l->conn_id, conn_id, sizeof l->conn_id);
	if (mp_punch_new(a->id, peer, initiator, conn_id, secret, &l->punch) != MP_OK ||
	    !(l->timer = event_new(a->base, -1, EV_PERSIST, tick, l)) || event_add(l->timer, &tv) != 0) {
		agent_link_free(l);
		return NULL;
	}
	a->links[a->nlinks++] = l;
	return l;
}

void
agent_link_add_candidates(agent_link *l, const mp_endpoints *ep)
{
	size_t i, j;

	for (i = 0; i < ep->ncand && l->ncand < MAX_LINK_CANDIDATES; i++) {
		int known = 0;

		for (j = 0; j < l->ncand; j++)
			known |= mp_candidate_same_endpoint(&l->cand[j], &ep->cand[i]);
		if (!known)
			l->cand[l->ncand++] = ep->cand[i];
	}
	tick(-1, 0, l);      /* probe the new ones at once */
}

void
agent_link_free(agent_link *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->a->nlinks; i++) {
		if (l->a->links[i] == l) {
			l->a->links[i] = l->a->links[--l->a->nlinks];
			break;
		}
	}
	if (l->timer)
		event_free(l->timer);
	mp_punch_free(l->punch);
	free(l);
}

int
agent_link_send_data(agent_link *l, const uint8_t *data, size_t len)
{
	uint8_t buf[MP_PUNCH_MAX_PACKET];
	size_t n;
	int rc = mp_punch_seal_data(l->punch, data, len, buf, sizeof buf, &n);

	return rc == MP_OK ? agent_udp_send(l->a, &l->path, buf, n) : rc;
}

const mp_pubid *
agent_link_peer(const agent_link *l)
{
	return &l->peer;
}

const mp_candidate *
agent_link_path(const agent_link *l)
{
	return l->have_path ? &l->path : NULL;
}

/* transport.c: the initiator is the QUIC client */
int
agent_link_initiator(const agent_link *l)
{
	return l->initiator;
}

int
agent_link_established(const agent_link *l)
{
	return l->established;
}

int
agent_link_input(agent *a, const uint8_t *pkt, size_t len, const mp_candidate *from)
{
	uint8_t id[MP_PUNCH_CONN_ID_LEN];
	mp_punch_result *res;
	agent_link *l = NULL;
	size_t i;
	int rc;

	if (mp_punch_conn_id(pkt, len, id) != MP_OK)
		return 0;
	for (i = 0; i < a->nlinks && !l; i++)
		if (memcmp(a->links[i]->conn_id, id, sizeof id) == 0)
			l = a->links[i];
	if (!l || !(res = malloc(sizeof *res)))
		return 0;
	rc = mp_punch_input(l->punch, pkt, len, res);
	if (rc != MP_OK) {
		/* forged or stale: say nothing to the sender */
		mp_log(MP_LOG_DEBUG, "punch packet refused: %s", mp_strerror(rc));
		free(res);
		return 1;
	}
	if (res->reply_len)
		agent_udp_send(a, from, res->reply, res->reply_len);
	if (res->event == MP_PUNCH_REACHED && !l->have_path) {
		l->path = *from;
		l->have_path = 1;
		if (l->initiator)
			send_packet(l, &l->path, mp_punch_hello);
	} else if (res->event == MP_PUNCH_ESTABLISHED) {
		l->path = *from;
		l->have_path = 1;
		l->established = 1;
		if (a->hooks.on_link)
			a->hooks.on_link(a, l, 1);
	} else if (res->event == MP_PUNCH_DATA && a->hooks.on_data) {
		a->hooks.on_data(a, l, res->data, res->data_len);
	}
	free(res);
	return 1;
}
