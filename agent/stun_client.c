/*
 * stun_client.c - STUN Binding queries on a shared UDP socket
 * (see agent/stun_client.h).
 *
 * Each query is a small state machine: IDLE (added), RESOLVING (waiting
 * for evdns), ACTIVE (requests sent, one timer for the next
 * retransmission or the deadline, whichever comes first) and DONE.  The
 * retransmission times are planned, not measured, so a timer that fires
 * a millisecond early cannot add a send.  When the last query is done,
 * the completion is handed to a deferred event rather than called
 * directly: agent_stun_input() and the timers then never run user code,
 * and the user may free the client from the callback.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "stun_client.h"

#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/netif.h"
#include "mailpunch/stun.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/util.h>

#define READ_BURST 32           /* datagrams per read wake-up, for fairness */
#define HOST_MAX 256

typedef enum qstate {
	Q_IDLE = 0,
	Q_RESOLVING,
	Q_ACTIVE,
	Q_DONE,
} qstate;

typedef struct query {
	agent_stun_client *c;
	agent_stun_result *res;         /* in c->results, same index */
	char host[HOST_MAX];            /* empty for agent_stun_add_address */
	uint16_t port;
	int resolved;
	int resolve_err;                /* MP_ERR_NOTFOUND after a failure */
	struct evdns_getaddrinfo_request *dns_req;
	struct sockaddr_storage ss;
	socklen_t sslen;
	qstate state;
	int round;                      /* this query took part in the current round */
	uint8_t tid[MP_STUN_TID_LEN];
	uint8_t req[MP_STUN_MSG_MAX];
	size_t reqlen;
	struct event *timer;
	uint64_t t_first;               /* ms, monotonic */
	uint64_t next_at;               /* planned next send, or the deadline */
	uint64_t deadline;
} query;

struct agent_stun_client {
	struct event_base *base;
	evutil_socket_t fd;
	int family;                     /* AF_INET or AF_INET6 */
	unsigned timeout_ms, rto_ms;
	char *software;
	struct evdns_base *dns;
	struct event *read_ev;
	struct event *done_ev;
	int running;
	agent_stun_done_cb cb;
	void *arg;
	size_t nq;
	query q[AGENT_STUN_MAX_QUERIES];
	agent_stun_result results[AGENT_STUN_MAX_QUERIES];
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
set_timer(query *q, uint64_t at)
{
	uint64_t now = now_ms();
	uint64_t d = at > now ? at - now : 0;
	struct timeval tv;

	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	evtimer_add(q->timer, &tv);
}

/* ---------------------------------------------------------------- completion */

static int
all_done(const agent_stun_client *c)
{
	for (size_t i = 0; i < c->nq; i++)
		if (c->q[i].round && c->q[i].state != Q_DONE)
			return 0;
	return 1;
}

static void
finish(query *q, int status)
{
	agent_stun_client *c = q->c;

	if (q->state == Q_DONE)
		return;
	q->state = Q_DONE;
	q->res->status = status;
	if (q->t_first)
		q->res->elapsed_ms = (unsigned)(now_ms() - q->t_first);
	evtimer_del(q->timer);
	mp_log(MP_LOG_DEBUG, "stun: %s: %s after %u request(s)", q->res->server,
	       status == MP_OK ? "answered" : mp_strerror(status), q->res->sent);
	if (c->running && all_done(c))
		event_active(c->done_ev, EV_TIMEOUT, 1);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	agent_stun_client *c = arg;

	(void)fd;
	(void)what;
	if (!c->running)
		return;
	c->running = 0;
	if (c->cb)
		c->cb(c, c->arg);       /* may free c: touch nothing after */
}

/* ---------------------------------------------------------------- sending */

static int
transient_send_error(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == EINTR ||
	       e == ENOMEM || e == ECONNREFUSED;
}

/* Sends the request once; 0 or MP_ERR_IO for a permanent failure. */
static int
send_request(query *q)
{
	ssize_t n = sendto(q->c->fd, q->req, q->reqlen, MSG_DONTWAIT,
	                   (const struct sockaddr *)&q->ss, q->sslen);

	if (n == (ssize_t)q->reqlen) {
		q->res->sent++;
		return MP_OK;
	}
	if (n < 0 && !transient_send_error(errno)) {
		q->res->os_errno = errno;
		mp_log(MP_LOG_WARNING, "stun: %s: cannot send: %s", q->res->server, strerror(errno));
		return MP_ERR_IO;
	}
	/* lost like a dropped datagram: the next retransmission tries again */
	q->res->sent++;
	return MP_OK;
}

/* After the k-th send: RTO * 2^(k-1), the last one waits Rm * RTO. */
static uint64_t
wait_after(const agent_stun_client *c, unsigned k)
{
	if (k >= AGENT_STUN_MAX_SENDS)
		return (uint64_t)c->rto_ms * AGENT_STUN_LAST_WAIT;
	return (uint64_t)c->rto_ms << (k - 1);
}

static void
schedule_next(query *q, uint64_t sent_at)
{
	uint64_t at = sent_at + wait_after(q->c, q->res->sent);

	q->next_at = at < q->deadline ? at : q->deadline;
	set_timer(q, q->next_at);
}

static int
build_request(query *q)
{
	agent_stun_client *c = q->c;
	mp_stun_request r;

	memset(&r, 0, sizeof r);
	r.software = c->software;
	r.change_request = q->res->change_flags != 0;
	r.change_flags = q->res->change_flags;
	r.fingerprint = 1;
	return mp_stun_binding_request(&r, q->tid, q->req, sizeof q->req, &q->reqlen);
}

static void
begin_sending(query *q)
{
	int rc;

	q->state = Q_ACTIVE;
	if ((rc = build_request(q)) != MP_OK) {
		finish(q, rc);
		return;
	}
	q->t_first = now_ms();
	if ((rc = send_request(q)) != MP_OK) {
		finish(q, rc);
		return;
	}
	schedule_next(q, q->t_first);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	query *q = arg;
	int rc;

	(void)fd;
	(void)what;
	if (q->state == Q_RESOLVING) {
		finish(q, MP_ERR_UNAVAILABLE);  /* the name did not resolve in time */
		return;
	}
	if (q->state != Q_ACTIVE)
		return;
	if (q->next_at >= q->deadline || q->res->sent >= AGENT_STUN_MAX_SENDS) {
		finish(q, MP_ERR_UNAVAILABLE);
		return;
	}
	if ((rc = send_request(q)) != MP_OK) {
		finish(q, rc);
		return;
	}
	schedule_next(q, q->next_at);
}

/* ---------------------------------------------------------------- resolving */

static void
set_address(query *q, const struct sockaddr *sa, socklen_t len)
{
	if (len > (socklen_t)sizeof q->ss)
		return;
	memcpy(&q->ss, sa, len);
	q->sslen = len;
	q->resolved = mp_candidate_from_sockaddr(sa, len, (mp_cand_kind)0,
	                                         &q->res->server_addr) == MP_OK;
}

/* The first address of the socket's family in a getaddrinfo list. */
static int
take_first(query *q, const struct evutil_addrinfo *ai)
{
	for (; ai; ai = ai->ai_next) {
		if (ai->ai_family == q->c->family && ai->ai_addr) {
			set_address(q, ai->ai_addr, (socklen_t)ai->ai_addrlen);
			if (q->resolved)
				return MP_OK;
		}
	}
	return MP_ERR_NOTFOUND;
}

static void
resolved_now(query *q, int rc)
{
	q->resolve_err = rc;
	if (rc != MP_OK)
		mp_log(MP_LOG_WARNING, "stun: %s: no %s address", q->res->server,
		       q->c->family == AF_INET ? "IPv4" : "IPv6");
	if (q->state != Q_RESOLVING)
		return;
	if (rc == MP_OK)
		begin_sending(q);
	else
		finish(q, rc);
}

static void
dns_cb(int err, struct evutil_addrinfo *res, void *arg)
{
	query *q = arg;
	int rc;

	if (err == EVUTIL_EAI_CANCEL) {
		if (res)
			evutil_freeaddrinfo(res);
		return;         /* the client is going away */
	}
	q->dns_req = NULL;
	rc = err == 0 ? take_first(q, res) : MP_ERR_NOTFOUND;
	if (res)
		evutil_freeaddrinfo(res);
	resolved_now(q, rc);
}

static void
fill_hints(struct evutil_addrinfo *h, int family, int flags)
{
	memset(h, 0, sizeof *h);
	h->ai_family = family;
	h->ai_socktype = SOCK_DGRAM;
	h->ai_protocol = IPPROTO_UDP;
	h->ai_flags = flags | EVUTIL_AI_NUMERICSERV;
}

/*
 * Numeric addresses are taken at once; names go to evdns when there is a
 * base (the answer may come before evdns_getaddrinfo() returns), else to
 * a blocking lookup.
 */
static void
resolve(query *q)
{
	struct evutil_addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	snprintf(port, sizeof port, "%u", (unsigned)q->port);
	fill_hints(&hints, q->c->family, EVUTIL_AI_NUMERICHOST);
	if (evutil_getaddrinfo(q->host, port, &hints, &res) == 0) {
		rc = take_first(q, res);
		evutil_freeaddrinfo(res);
		resolved_now(q, rc);
		return;
	}
	fill_hints(&hints, q->c->family, 0);
	if (q->c->dns) {
		struct evdns_getaddrinfo_request *req;

		q->dns_req = NULL;
		q->resolve_err = MP_ERR_UNAVAILABLE;    /* pending */
		req = evdns_getaddrinfo(q->c->dns, q->host, port, &hints, dns_cb, q);
		if (q->resolve_err == MP_ERR_UNAVAILABLE)
			q->dns_req = req;       /* still pending: dns_cb not yet called */
		return;
	}
	res = NULL;
	rc = evutil_getaddrinfo(q->host, port, &hints, &res) == 0 ? take_first(q, res)
	                                                          : MP_ERR_NOTFOUND;
	if (res)
		evutil_freeaddrinfo(res);
	resolved_now(q, rc);
}

/* ---------------------------------------------------------------- receiving */

static void
take_response(query *q, const mp_stun_msg *m, const mp_candidate *from)
{
	agent_stun_result *r = q->res;

	r->from = *from;
	if (m->cls == MP_STUN_CLASS_ERROR) {
		if (!(m->have & MP_STUN_HAVE_ERROR_CODE)) {
			finish(q, MP_ERR_MALFORMED);
			return;
		}
		r->error_code = m->error_code;
		mp_log(MP_LOG_NOTICE, "stun: %s: error response %u", r->server,
		       (unsigned)m->error_code);
		finish(q, MP_ERR_UNAVAILABLE);
		return;
	}
	if (m->nunknown > 0) {
		mp_log(MP_LOG_NOTICE, "stun: %s: response with unknown attribute 0x%04x",
		       r->server, (unsigned)m->unknown[0]);
		finish(q, MP_ERR_MALFORMED);
		return;
	}
	if (m->have & MP_STUN_HAVE_XOR_MAPPED)
		r->srflx = m->xor_mapped;
	else if (m->have & MP_STUN_HAVE_MAPPED)
		r->srflx = m->mapped;   /* an RFC 3489 server */
	else {
		finish(q, MP_ERR_MALFORMED);
		return;
	}
	r->srflx.kind = MP_CAND_SRFLX;
	if (m->have & MP_STUN_HAVE_OTHER_ADDRESS) {
		r->have_other = 1;
		r->other = m->other_address;
	}
	if (m->have & MP_STUN_HAVE_RESPONSE_ORIGIN) {
		r->have_origin = 1;
		r->origin = m->response_origin;
	}
	finish(q, MP_OK);
}

static socklen_t
sockaddr_len(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return sizeof(struct sockaddr_in);
	if (sa->sa_family == AF_INET6)
		return sizeof(struct sockaddr_in6);
	return 0;
}

static query *
find_query(agent_stun_client *c, const uint8_t tid[MP_STUN_TID_LEN])
{
	for (size_t i = 0; i < c->nq; i++) {
		query *q = &c->q[i];

		if (q->round && q->res->sent > 0 &&
		    memcmp(q->tid, tid, MP_STUN_TID_LEN) == 0)
			return q;
	}
	return NULL;
}

int
agent_stun_input(agent_stun_client *c, const uint8_t *buf, size_t len,
                 const struct sockaddr *from)
{
	mp_stun_msg *m;
	mp_candidate src;
	query *q;

	if (!c || !buf || !from || len < MP_STUN_HEADER_LEN)
		return 0;
	if (mp_candidate_from_sockaddr(from, sockaddr_len(from), (mp_cand_kind)0, &src) != MP_OK)
		return 0;
	/* Most traffic on a shared socket is not STUN: look at the header and
	 * the transaction ID before parsing anything.  0x01 in the first
	 * byte is the C1 class bit, set in both kinds of response. */
	if ((buf[0] & 0xC0) != 0 || (buf[0] & 0x01) == 0 ||
	    memcmp(buf + 4, "\x21\x12\xA4\x42", 4) != 0)
		return 0;
	q = find_query(c, buf + 8);
	if (!q)
		return 0;
	if (q->state != Q_ACTIVE)
		return 1;       /* a late or duplicate answer: ours, and no news */
	if (q->res->change_flags == 0 && !mp_candidate_same_endpoint(&src, &q->res->server_addr)) {
		char a[64];

		if (mp_candidate_format(&src, a, sizeof a) != MP_OK)
			snprintf(a, sizeof a, "?");
		mp_log(MP_LOG_NOTICE, "stun: %s: ignoring an answer from %s", q->res->server, a);
		return 1;
	}
	m = malloc(sizeof *m);
	if (!m)
		return 1;
	if (mp_stun_parse(buf, len, m) == MP_OK &&
	    mp_stun_is_response_to(m, MP_STUN_METHOD_BINDING, q->tid))
		take_response(q, m, &src);
	free(m);
	return 1;
}

static void
read_cb(evutil_socket_t fd, short what, void *arg)
{
	agent_stun_client *c = arg;
	uint8_t buf[MP_STUN_MSG_MAX + 1];

	(void)what;
	for (int i = 0; i < READ_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT,
		                     (struct sockaddr *)&ss, &sl);

		if (n < 0)
			return;         /* EAGAIN, or an error the next send will see */
		if (!agent_stun_input(c, buf, (size_t)n, (struct sockaddr *)&ss))
			mp_log(MP_LOG_DEBUG, "stun: dropped a %zd-byte datagram that is not ours", n);
	}
}

/* ---------------------------------------------------------------- setup */

static int
socket_family(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	return ss.ss_family == AF_INET || ss.ss_family == AF_INET6 ? ss.ss_family : -1;
}

agent_stun_client *
agent_stun_client_new(struct event_base *base, evutil_socket_t fd,
                      const agent_stun_opts *opts)
{
	agent_stun_client *c;
	int family;

	if (!base || fd < 0 || (family = socket_family(fd)) < 0) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->base = base;
	c->fd = fd;
	c->family = family;
	c->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : AGENT_STUN_TIMEOUT_MS;
	c->rto_ms = opts && opts->rto_ms ? opts->rto_ms : AGENT_STUN_RTO_MS;
	c->dns = opts ? opts->dns : NULL;
	if (opts && opts->software && !(c->software = strdup(opts->software)))
		goto fail;
	if (!(c->done_ev = event_new(base, -1, 0, done_cb, c)))
		goto fail;
	if (opts && opts->own_read) {
		if (evutil_make_socket_nonblocking(fd) != 0)
			goto fail;
		c->read_ev = event_new(base, fd, EV_READ | EV_PERSIST, read_cb, c);
		if (!c->read_ev || event_add(c->read_ev, NULL) != 0)
			goto fail;
	}
	return c;
fail:
	agent_stun_client_free(c);
	errno = ENOMEM;
	return NULL;
}

void
agent_stun_client_free(agent_stun_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nq; i++) {
		query *q = &c->q[i];

		if (q->dns_req)
			evdns_getaddrinfo_cancel(q->dns_req);
		q->dns_req = NULL;
		if (q->timer)
			event_free(q->timer);
	}
	if (c->read_ev)
		event_free(c->read_ev);
	if (c->done_ev)
		event_free(c->done_ev);
	free(c->software);
	free(c);
}

static query *
new_query(agent_stun_client *c, const char *label)
{
	query *q;

	if (c->running || c->nq >= AGENT_STUN_MAX_QUERIES)
		return NULL;
	q = &c->q[c->nq];
	memset(q, 0, sizeof *q);
	q->c = c;
	q->res = &c->results[c->nq];
	memset(q->res, 0, sizeof *q->res);
	if (!(q->timer = evtimer_new(c->base, timer_cb, q)))
		return NULL;
	snprintf(q->res->server, sizeof q->res->server, "%s", label);
	q->res->status = MP_ERR_UNAVAILABLE;
	c->nq++;
	return q;
}

int
agent_stun_parse_server(const char *text, char *host, size_t hostcap, uint16_t *port)
{
	const char *h = text, *colon = NULL, *end;
	size_t hlen;

	if (!text || !host || !port || hostcap == 0)
		return MP_ERR_INVAL;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || (close[1] != '\0' && close[1] != ':'))
			return MP_ERR_SYNTAX;
		h = text + 1;
		end = close;
		colon = close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = strchr(text, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL;   /* a bare IPv6 address: no port */
		end = colon ? colon : text + strlen(text);
	}
	hlen = (size_t)(end - h);
	if (hlen == 0 || hlen >= hostcap)
		return MP_ERR_SYNTAX;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = AGENT_STUN_DEFAULT_PORT;
	if (colon) {
		char *stop;
		unsigned long p;

		if (colon[1] < '0' || colon[1] > '9')
			return MP_ERR_SYNTAX;
		errno = 0;
		p = strtoul(colon + 1, &stop, 10);
		if (*stop != '\0' || errno != 0 || p == 0 || p > 65535)
			return MP_ERR_SYNTAX;
		*port = (uint16_t)p;
	}
	return MP_OK;
}

int
agent_stun_add_server(agent_stun_client *c, const char *hostport)
{
	char host[HOST_MAX];
	uint16_t port;
	query *q;
	int rc;

	if (!c || !hostport || strlen(hostport) >= AGENT_STUN_SERVER_MAX)
		return MP_ERR_INVAL;
	if ((rc = agent_stun_parse_server(hostport, host, sizeof host, &port)) != MP_OK)
		return rc;
	if (!(q = new_query(c, hostport)))
		return c->running || c->nq >= AGENT_STUN_MAX_QUERIES ? MP_ERR_INVAL : MP_ERR_NOMEM;
	memcpy(q->host, host, sizeof host);
	q->port = port;
	resolve(q);
	return (int)(q - c->q);
}

int
agent_stun_add_address(agent_stun_client *c, const mp_candidate *server,
                       uint32_t change_flags)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char label[64];
	query *q;

	if (!c || !server || (change_flags & ~(MP_STUN_CHANGE_IP | MP_STUN_CHANGE_PORT)) ||
	    (server->family == 4 ? AF_INET : AF_INET6) != c->family ||
	    mp_candidate_to_sockaddr(server, &ss, &len) != MP_OK ||
	    mp_candidate_format(server, label, sizeof label) != MP_OK)
		return MP_ERR_INVAL;
	if (!(q = new_query(c, label)))
		return c->running || c->nq >= AGENT_STUN_MAX_QUERIES ? MP_ERR_INVAL : MP_ERR_NOMEM;
	q->res->change_flags = change_flags;
	set_address(q, (struct sockaddr *)&ss, len);
	return (int)(q - c->q);
}

/* Clears what the last round found, keeping what identifies the query. */
static void
reset_result(query *q)
{
	agent_stun_result *r = q->res;
	agent_stun_result keep = *r;

	memset(r, 0, sizeof *r);
	memcpy(r->server, keep.server, sizeof r->server);
	r->change_flags = keep.change_flags;
	r->server_addr = keep.server_addr;
	r->status = MP_ERR_UNAVAILABLE;
	q->t_first = 0;
	memset(q->tid, 0, sizeof q->tid);
}

int
agent_stun_start(agent_stun_client *c, agent_stun_done_cb cb, void *arg)
{
	uint64_t deadline;

	if (!c || c->running || c->nq == 0)
		return MP_ERR_INVAL;
	c->cb = cb;
	c->arg = arg;
	c->running = 1;
	deadline = now_ms() + c->timeout_ms;
	for (size_t i = 0; i < c->nq; i++) {
		query *q = &c->q[i];

		reset_result(q);
		q->round = 1;
		q->deadline = deadline;
		q->state = Q_RESOLVING;
	}
	/* Every query is RESOLVING before any can finish, so that a query
	 * failing at once cannot complete the round for all. */
	for (size_t i = 0; i < c->nq && c->running; i++) {
		query *q = &c->q[i];

		if (q->state != Q_RESOLVING)
			continue;
		if (q->resolved) {
			begin_sending(q);
		} else {
			set_timer(q, q->deadline);
			if (!q->dns_req)
				resolve(q);
		}
	}
	return MP_OK;
}

void
agent_stun_cancel(agent_stun_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nq; i++) {
		query *q = &c->q[i];

		evtimer_del(q->timer);
		if (q->state != Q_DONE && q->round)
			q->state = Q_DONE;
	}
	event_del(c->done_ev);
	c->running = 0;
}

int
agent_stun_running(const agent_stun_client *c)
{
	return c && c->running;
}

size_t
agent_stun_results(const agent_stun_client *c, const agent_stun_result **out)
{
	if (out)
		*out = c ? c->results : NULL;
	return c ? c->nq : 0;
}

size_t
agent_stun_srflx(const agent_stun_client *c, mp_candidate *out, size_t max)
{
	size_t n = 0;

	if (!c || !out)
		return 0;
	for (size_t i = 0; i < c->nq && n < max; i++) {
		const agent_stun_result *r = &c->results[i];
		int dup = 0;

		if (r->status != MP_OK)
			continue;
		for (size_t j = 0; j < n && !dup; j++)
			dup = mp_candidate_same_endpoint(&out[j], &r->srflx);
		if (!dup)
			out[n++] = r->srflx;
	}
	return n;
}
