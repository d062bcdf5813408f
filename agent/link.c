/*
 * link.c - one connection attempt to one peer (agent.h, link_priv.h).
 *
 * Until a packet gets through, a link probes every candidate of the peer
 * five times a second from the agent's main socket (both sides do, at
 * once: simultaneous punching), while traverse.c runs the NAT traversal
 * plan on extra sockets of the link's own.  The first authenticated
 * probe or ack names the path, on whichever socket it arrived; the
 * initiator then runs the handshake there (lib/punch.c).  Once
 * established, the other extra sockets are closed and a keepalive every
 * 15 s holds the path's NAT mappings open (unanswered UDP mappings live
 * about 30 s on common routers).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "link_priv.h"
#include "transport.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/netif.h"

#define TICK_MS 200
#define KEEPALIVE_TICKS (15000 / TICK_MS)

uint64_t
link_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
sock_fd(const agent_link *l, int sock, int family)
{
	if (sock == LINK_MAIN_SOCK)
		return family == 4 ? l->a->udp_fd : l->a->udp6_fd;
	return sock >= 0 && (size_t)sock < l->nsocks && l->socks[sock] ? l->socks[sock]->fd : -1;
}

static int
send_raw(agent_link *l, int sock, const mp_candidate *to, const uint8_t *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = sock_fd(l, sock, to->family);

	if (fd < 0 || mp_candidate_to_sockaddr(to, &ss, &sl) != MP_OK)
		return MP_ERR_INVAL;
	l->packets++;
	return sendto(fd, buf, len, 0, (struct sockaddr *)&ss, sl) == (ssize_t)len ? MP_OK : MP_ERR_IO;
}

int
link_send_from(agent_link *l, int sock, const mp_candidate *to,
               int (*make)(mp_punch *, uint8_t *, size_t, size_t *))
{
	uint8_t buf[MP_PUNCH_MAX_PACKET];
	size_t len;
	int rc = make(l->punch, buf, sizeof buf, &len);

	return rc == MP_OK ? send_raw(l, sock, to, buf, len) : rc;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	agent_link *l = arg;
	size_t i;

	l->ticks++;
	if (l->established) {
		if (l->ticks % KEEPALIVE_TICKS == 0)
			link_send_from(l, l->path_sock, &l->path, mp_punch_keepalive);
		return;
	}
	if (l->initiator && l->have_path)
		link_send_from(l, l->path_sock, &l->path, mp_punch_hello);
	for (i = 0; i < l->ncand; i++)
		link_send_from(l, LINK_MAIN_SOCK, &l->cand[i], mp_punch_probe);
	traverse_tick(l);
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
	l->path_sock = LINK_MAIN_SOCK;
	l->bubble_sock = -1;
	l->started_ms = link_now_ms();
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
agent_link_set_route(agent_link *l, const char *via_host, const char *direct_addr)
{
	snprintf(l->via_host, sizeof l->via_host, "%s", via_host ? via_host : "");
	snprintf(l->direct_addr, sizeof l->direct_addr, "%s", direct_addr ? direct_addr : "");
}

void
agent_link_add_candidates(agent_link *l, const mp_endpoints *ep)
{
	size_t i, j;

	for (i = 0; i < ep->ncand && l->ncand < LINK_MAX_CANDIDATES; i++) {
		int known = 0;

		for (j = 0; j < l->ncand; j++)
			known |= mp_candidate_same_endpoint(&l->cand[j], &ep->cand[i]);
		if (!known)
			l->cand[l->ncand++] = ep->cand[i];
	}
	for (i = 0; i < l->ncand; i++)
		link_send_from(l, LINK_MAIN_SOCK, &l->cand[i], mp_punch_probe);   /* at once */
}

void
agent_link_start_plan(agent_link *l, const mp_endpoints *peer)
{
	size_t i;

	agent_link_add_candidates(l, peer);
	if (l->plan_started || l->established)
		return;
	l->peer_nat = peer->nat;
	for (i = 0; i < peer->ncand; i++) {
		if (peer->cand[i].kind == MP_CAND_SRFLX && peer->cand[i].family == 4) {
			l->peer_srflx = peer->cand[i];
			l->peer_ip = peer->cand[i];
			l->have_peer_ip = 1;
			break;
		}
	}
	traverse_start(l);
}

void
agent_link_on_range(agent_link *l, const mp_range *r)
{
	if (!l->established)
		traverse_on_range(l, r);
}

/* ---------------------------------------------------------------- sockets */

static int route_input(agent_link *l, int sock, const uint8_t *pkt, size_t len, const mp_candidate *from);

static void
sock_readable(evutil_socket_t fd, short what, void *arg)
{
	link_sock *s = arg;
	agent_link *l = s->l;
	uint8_t buf[2048], id[MP_PUNCH_CONN_ID_LEN];
	int i, idx = s->tag;

	for (i = 0; i < 32; i++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof from;
		ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
		mp_candidate src;
		mp_stun_msg *m;

		if (n < 0)
			return;
		if (mp_candidate_from_sockaddr((struct sockaddr *)&from, flen, MP_CAND_SRFLX, &src) != MP_OK)
			continue;
		if (s->stun_pending && n >= MP_STUN_HEADER_LEN && (m = malloc(sizeof *m))) {
			int ours = mp_stun_parse(buf, (size_t)n, m) == MP_OK &&
			           mp_stun_is_response_to(m, MP_STUN_METHOD_BINDING, s->tid) && m->cls == MP_STUN_CLASS_SUCCESS &&
			           (m->have & (MP_STUN_HAVE_XOR_MAPPED | MP_STUN_HAVE_MAPPED));

			if (ours) {
				s->mapped = (m->have & MP_STUN_HAVE_XOR_MAPPED) ? m->xor_mapped.port : m->mapped.port;
				s->stun_pending = 0;
				s->stun_done = 1;
			}
			free(m);
			if (ours) {
				traverse_stun_answered(l, idx);
				return;      /* the link may have moved on */
			}
		}
		if (mp_punch_conn_id(buf, (size_t)n, id) != MP_OK) {
			/* QUIC on a path the traversal found on this socket */
			agent_transport_dispatch(l->a, buf, (size_t)n, (struct sockaddr *)&from, flen);
			continue;
		}
		if (route_input(l, idx, buf, (size_t)n, &src) < 0)
			return;      /* the link was freed */
	}
}

int
link_sock_open(agent_link *l, int use)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	link_sock *s;

	if (l->nsocks == LINK_MAX_SOCKS || !(s = calloc(1, sizeof *s)))
		return -1;
	s->l = l;
	s->use = use;
	s->tag = (int)l->nsocks;
	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    getsockname(s->fd, (struct sockaddr *)&sin, &len) != 0 ||
	    !(s->ev = event_new(l->a->base, s->fd, EV_READ | EV_PERSIST, sock_readable, s)) ||
	    event_add(s->ev, NULL) != 0) {
		mp_log(MP_LOG_WARNING, "link socket: %s", strerror(errno));
		if (s->ev)
			event_free(s->ev);
		if (s->fd >= 0)
			close(s->fd);
		free(s);
		return -1;
	}
	s->local_port = ntohs(sin.sin_port);
	l->socks[l->nsocks++] = s;
	return s->tag;
}

static void
sock_free(link_sock *s)
{
	if (!s)
		return;
	event_free(s->ev);
	close(s->fd);
	free(s);
}

void
link_sock_close_all(agent_link *l, int keep)
{
	size_t i;

	for (i = 0; i < l->nsocks; i++) {
		if ((int)i == keep)
			continue;
		sock_free(l->socks[i]);
		l->socks[i] = NULL;
	}
}

int
link_stun_send(agent_link *l, int sock)
{
	mp_stun_request req = { 0 };
	uint8_t buf[128];
	size_t n;
	link_sock *s = l->socks[sock];

	if (!l->have_stun || !s)
		return MP_ERR_INVAL;
	if (!s->stun_pending) {
		if (mp_stun_binding_request(&req, s->tid, buf, sizeof buf, &n) != MP_OK)
			return MP_ERR_CRYPTO;
		s->stun_pending = 1;
	} else {
		/* a retransmission keeps the transaction ID (RFC 5389 §7.2.1) */
		mp_stun_builder b;

		if (mp_stun_builder_init(&b, buf, sizeof buf, MP_STUN_BINDING_REQUEST, s->tid) != MP_OK ||
		    mp_stun_builder_finish(&b, &n) != MP_OK)
			return MP_ERR_CRYPTO;
	}
	s->stun_sends++;
	return send_raw(l, sock, &l->stun_server, buf, n);
}

/* ---------------------------------------------------------------- the rest */

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
	traverse_stop(l);
	link_sock_close_all(l, -1);
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

	return rc == MP_OK ? send_raw(l, l->path_sock, &l->path, buf, n) : rc;
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
agent_link_path_fd(const agent_link *l)
{
	return l->have_path ? sock_fd(l, l->path_sock, l->path.family) : -1;
}

int
agent_link_established(const agent_link *l)
{
	return l->established;
}

void
agent_link_stats(const agent_link *l, unsigned long *packets, long *ms_to_path, const char **plan)
{
	*packets = l->packets;
	*ms_to_path = l->reached_ms ? (long)(l->reached_ms - l->started_ms) : -1;
	*plan = l->plan_started && l->plan.why ? l->plan.why : "direct probes";
}

/* < 0: the link is gone (a hook freed it); else 1 if consumed. */
static int
route_input(agent_link *l, int sock, const uint8_t *pkt, size_t len, const mp_candidate *from)
{
	agent *a = l->a;
	mp_punch_result *res;
	int rc;

	if (!(res = malloc(sizeof *res)))
		return 0;
	rc = mp_punch_input(l->punch, pkt, len, res);
	if (rc != MP_OK) {
		/* forged or stale: say nothing to the sender */
		mp_log(MP_LOG_DEBUG, "punch packet refused: %s", mp_strerror(rc));
		free(res);
		return 1;
	}
	if (res->reply_len)
		send_raw(l, sock, from, res->reply, res->reply_len);
	if (res->event == MP_PUNCH_REACHED && !l->have_path) {
		l->path = *from;
		l->path_sock = sock;
		l->have_path = 1;
		l->reached_ms = link_now_ms();
		traverse_stop(l);
		if (l->initiator)
			link_send_from(l, sock, &l->path, mp_punch_hello);
	} else if (res->event == MP_PUNCH_ESTABLISHED) {
		l->path = *from;
		l->path_sock = sock;
		l->have_path = 1;
		l->established = 1;
		if (!l->reached_ms)
			l->reached_ms = link_now_ms();
		traverse_stop(l);
		link_sock_close_all(l, sock);
		if (a->hooks.on_link)
			a->hooks.on_link(a, l, 1);
	} else if (res->event == MP_PUNCH_DATA && a->hooks.on_data) {
		uint8_t data[MP_PUNCH_MAX_DATA];
		size_t n = res->data_len;

		memcpy(data, res->data, n);
		free(res);
		a->hooks.on_data(a, l, data, n);
		return -1;    /* the hook may have freed the link: stop reading */
	}
	free(res);
	return 1;
}

agent_link *
agent_link_by_conn_id(agent *a, const uint8_t conn_id[MP_PUNCH_CONN_ID_LEN])
{
	size_t i;

	for (i = 0; i < a->nlinks; i++)
		if (memcmp(a->links[i]->conn_id, conn_id, MP_PUNCH_CONN_ID_LEN) == 0)
			return a->links[i];
	return NULL;
}

int
agent_link_input(agent *a, const uint8_t *pkt, size_t len, const mp_candidate *from)
{
	uint8_t id[MP_PUNCH_CONN_ID_LEN];
	agent_link *l;

	if (mp_punch_conn_id(pkt, len, id) != MP_OK || !(l = agent_link_by_conn_id(a, id)))
		return 0;
	route_input(l, LINK_MAIN_SOCK, pkt, len, from);
	return 1;
}
