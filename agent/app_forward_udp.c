/*
 * app_forward_udp.c - UDP forwarding over the transport's datagrams
 * (`connect PEER --forward-udp LOCALPORT:HOST:PORT`, `listen
 * --allow-forward-udp HOST:PORT`), for games and voice.
 *
 * Each local source address is a flow (a number); datagrams go as
 * UDP_TO {flow, host, port, payload}; the listen side checks the
 * destination against its allow list (UDP_REFUSED if absent), keeps one
 * connected UDP socket a flow, sends the answers back as UDP_BACK, and
 * forgets a flow after idle_ms without traffic.  At most UDP_FLOWS_MAX
 * flows each side (the connect side reuses the least recently used).
 *
 * Interface: agent/app.h (agent_fwd_udp_*).  Errors: constructors return
 * NULL with a message; datagrams that cannot go are dropped, as UDP does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "app.h"
#include "app_forward.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"

#define UDP_FLOWS_MAX 256

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef struct cflow {
	int used;
	uint32_t id;
	struct sockaddr_storage src;
	socklen_t srclen;
	uint64_t last;
} cflow;

struct agent_fwd_udp {
	agent_app_io io;
	int fd;
	struct event *ev;
	char host[MP_APP_HOST_MAX + 1];
	uint16_t port, localport;
	uint32_t next_id;
	unsigned refused;
	cflow flows[UDP_FLOWS_MAX];
};

/* The flow of a local source; a new one (the least recently used slot
 * when all are taken) for a source not seen yet. */
static cflow *
client_flow(agent_fwd_udp *f, const struct sockaddr_storage *src, socklen_t len)
{
	cflow *oldest = &f->flows[0];
	size_t i;

	for (i = 0; i < UDP_FLOWS_MAX; i++) {
		cflow *c = &f->flows[i];
		if (c->used && c->srclen == len && !memcmp(&c->src, src, len))
			return c;
		if (!c->used || (oldest->used && c->last < oldest->last))
			oldest = c;
	}
	memset(oldest, 0, sizeof *oldest);
	oldest->used = 1;
	oldest->id = ++f->next_id;
	memcpy(&oldest->src, src, len);
	oldest->srclen = len;
	return oldest;
}

static void
client_udp_read(evutil_socket_t fd, short what, void *arg)
{
	agent_fwd_udp *f = arg;
	uint8_t buf[65536], dg[MP_APP_DGRAM_MAX];
	struct sockaddr_storage src;
	socklen_t slen;
	mp_app_dgram d;
	size_t len;
	ssize_t n;
	cflow *c;

	(void)what;
	for (;;) {
		slen = sizeof src;
		n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&src, &slen);
		if (n < 0)
			return;
		c = client_flow(f, &src, slen);
		c->last = now_ms();
		memset(&d, 0, sizeof d);
		d.kind = MP_DG_UDP_TO;
		d.flow = c->id;
		snprintf(d.host, sizeof d.host, "%s", f->host);
		d.port = f->port;
		d.payload = buf;
		d.payload_len = (size_t)n;
		if (mp_app_dgram_encode(&d, dg, sizeof dg, &len) != MP_OK) {
			mp_log(MP_LOG_NOTICE, "forward-udp: %zd-byte datagram too large, dropped", n);
			continue;
		}
		f->io.send_datagram(f->io.ctx, dg, len);
	}
}

agent_fwd_udp *
agent_fwd_udp_new(const agent_app_io *io, uint16_t localport, const char *host, uint16_t port,
                  char *err, size_t errlen)
{
	agent_fwd_udp *f = calloc(1, sizeof *f);
	struct sockaddr_in sin;
	socklen_t slen = sizeof sin;

	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->fd = -1;
	if (mp_app_host_check(host) != MP_OK || port == 0) {
		snprintf(err, errlen, "forward-udp destination %s:%u: numeric address or localhost only",
		         host, port);
		goto fail;
	}
	f->io = *io;
	snprintf(f->host, sizeof f->host, "%s", host);
	f->port = port;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(localport);
	f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    getsockname(f->fd, (struct sockaddr *)&sin, &slen) != 0) {
		snprintf(err, errlen, "cannot bind UDP 127.0.0.1:%u: %s", localport, strerror(errno));
		goto fail;
	}
	f->localport = ntohs(sin.sin_port);
	if (!(f->ev = event_new(io->base, f->fd, EV_READ | EV_PERSIST, client_udp_read, f)) ||
	    event_add(f->ev, NULL) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return f;
fail:
	agent_fwd_udp_free(f);
	return NULL;
}

uint16_t
agent_fwd_udp_port(const agent_fwd_udp *f)
{
	return f->localport;
}

unsigned
agent_fwd_udp_refused(const agent_fwd_udp *f)
{
	return f->refused;
}

void
agent_fwd_udp_on_datagram(agent_fwd_udp *f, const uint8_t *p, size_t len)
{
	mp_app_dgram d;
	size_t i;

	if (mp_app_dgram_decode(p, len, &d) != MP_OK || d.kind == MP_DG_UDP_TO)
		return;
	for (i = 0; i < UDP_FLOWS_MAX; i++) {
		cflow *c = &f->flows[i];
		if (!c->used || c->id != d.flow)
			continue;
		if (d.kind == MP_DG_UDP_REFUSED) {
			if (!f->refused++)
				mp_log(MP_LOG_ERR, "forward-udp to %s:%u refused by peer: not allowed",
				       f->host, f->port);
			return;
		}
		c->last = now_ms();
		sendto(f->fd, d.payload ? (const void *)d.payload : "", d.payload_len, MSG_DONTWAIT,
		       (struct sockaddr *)&c->src, c->srclen);
		return;
	}
}

void
agent_fwd_udp_free(agent_fwd_udp *f)
{
	if (!f)
		return;
	if (f->ev)
		event_free(f->ev);
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

/* ---------------------------------------------------------- listen side */

typedef struct sflow {
	agent_fwd_udp_server *s;
	int used, fd;
	uint32_t id;
	char host[MP_APP_HOST_MAX + 1];
	uint16_t port;
	struct event *ev, *idle;
} sflow;

struct agent_fwd_udp_server {
	agent_app_io io;
	agent_allow *allow;
	size_t nallow;
	struct timeval idle;
	sflow flows[UDP_FLOWS_MAX];
};

static void
sflow_close(sflow *fl)
{
	if (fl->ev)
		event_free(fl->ev);
	if (fl->idle)
		event_free(fl->idle);
	if (fl->fd >= 0)
		close(fl->fd);
	memset(fl, 0, sizeof *fl);
	fl->fd = -1;
}

static void
sflow_idle(evutil_socket_t fd, short what, void *arg)
{
	sflow *fl = arg;

	(void)fd;
	(void)what;
	mp_log(MP_LOG_DEBUG, "forward-udp flow %u to %s:%u idle, closed", fl->id, fl->host, fl->port);
	sflow_close(fl);
}

static void
sflow_read(evutil_socket_t fd, short what, void *arg)
{
	sflow *fl = arg;
	uint8_t buf[MP_APP_DGRAM_MAX], dg[MP_APP_DGRAM_MAX];
	mp_app_dgram d;
	size_t len;
	ssize_t n;

	(void)what;
	for (;;) {
		/* an answer larger than a datagram can carry is cut to fit:
		 * recv() with a smaller buffer drops the rest */
		n = recv(fd, buf, MP_APP_DGRAM_MAX - 5, MSG_DONTWAIT);
		if (n < 0)
			return;
		memset(&d, 0, sizeof d);
		d.kind = MP_DG_UDP_BACK;
		d.flow = fl->id;
		d.payload = buf;
		d.payload_len = (size_t)n;
		if (mp_app_dgram_encode(&d, dg, sizeof dg, &len) == MP_OK)
			fl->s->io.send_datagram(fl->s->io.ctx, dg, len);
		event_add(fl->idle, &fl->s->idle);
	}
}

static sflow *
sflow_open(agent_fwd_udp_server *s, const mp_app_dgram *d)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	sflow *fl = NULL;
	size_t i;

	for (i = 0; i < UDP_FLOWS_MAX && !fl; i++)
		if (!s->flows[i].used)
			fl = &s->flows[i];
	if (!fl || agent_fwd_sockaddr(d->host, d->port, &ss, &sslen) != MP_OK)
		return NULL;
	fl->s = s;
	fl->used = 1;
	fl->id = d->flow;
	snprintf(fl->host, sizeof fl->host, "%s", d->host);
	fl->port = d->port;
	fl->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fl->fd < 0 || connect(fl->fd, (struct sockaddr *)&ss, sslen) != 0 ||
	    !(fl->ev = event_new(s->io.base, fl->fd, EV_READ | EV_PERSIST, sflow_read, fl)) ||
	    !(fl->idle = evtimer_new(s->io.base, sflow_idle, fl)) || event_add(fl->ev, NULL) != 0) {
		sflow_close(fl);
		return NULL;
	}
	mp_log(MP_LOG_INFO, "forward-udp flow %u to %s:%u", fl->id, fl->host, fl->port);
	return fl;
}

void
agent_fwd_udp_server_on_datagram(agent_fwd_udp_server *s, const uint8_t *p, size_t len)
{
	uint8_t dg[MP_APP_DGRAM_MAX];
	mp_app_dgram d;
	sflow *fl = NULL;
	size_t i, n;

	if (mp_app_dgram_decode(p, len, &d) != MP_OK || d.kind != MP_DG_UDP_TO)
		return;
	if (!agent_fwd_allowed(s->allow, s->nallow, d.host, d.port)) {
		mp_app_dgram r = { .kind = MP_DG_UDP_REFUSED, .flow = d.flow };
		if (mp_app_dgram_encode(&r, dg, sizeof dg, &n) == MP_OK)
			s->io.send_datagram(s->io.ctx, dg, n);
		return;
	}
	for (i = 0; i < UDP_FLOWS_MAX && !fl; i++)
		if (s->flows[i].used && s->flows[i].id == d.flow)
			fl = &s->flows[i];
	if (fl && (fl->port != d.port || strcmp(fl->host, d.host))) {
		sflow_close(fl);
		fl = NULL;
	}
	if (!fl && !(fl = sflow_open(s, &d)))
		return;
	send(fl->fd, d.payload ? (const void *)d.payload : "", d.payload_len, MSG_DONTWAIT);
	event_add(fl->idle, &s->idle);
}

size_t
agent_fwd_udp_server_flows(const agent_fwd_udp_server *s)
{
	size_t i, n = 0;

	for (i = 0; i < UDP_FLOWS_MAX; i++)
		n += s->flows[i].used != 0;
	return n;
}

agent_fwd_udp_server *
agent_fwd_udp_server_new(const agent_app_io *io, const agent_allow *allow, size_t nallow,
                         unsigned idle_ms)
{
	agent_fwd_udp_server *s = calloc(1, sizeof *s);
	size_t i;

	if (!s)
		return NULL;
	if (nallow && !(s->allow = calloc(nallow, sizeof *allow))) {
		free(s);
		return NULL;
	}
	if (nallow)
		memcpy(s->allow, allow, nallow * sizeof *allow);
	s->nallow = nallow;
	s->io = *io;
	s->idle.tv_sec = idle_ms / 1000;
	s->idle.tv_usec = (idle_ms % 1000) * 1000;
	for (i = 0; i < UDP_FLOWS_MAX; i++)
		s->flows[i].fd = -1;
	return s;
}

void
agent_fwd_udp_server_free(agent_fwd_udp_server *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < UDP_FLOWS_MAX; i++)
		if (s->flows[i].used)
			sflow_close(&s->flows[i]);
	free(s->allow);
	free(s);
}
