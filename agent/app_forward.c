/*
 * app_forward.c - TCP port forwarding over the transport, like ssh -L
 * (`connect PEER --forward LOCALPORT:HOST:PORT`, `listen
 * --allow-forward HOST:PORT`), and the allow-list and address helpers
 * UDP forwarding (app_forward_udp.c) shares.
 *
 * TCP: the connect side listens on 127.0.0.1:LOCALPORT; each accepted
 * connection opens one stream, sends FORWARD_TCP and OPEN {host, port},
 * and starts sending at once (the listen side keeps the bytes until its
 * own connection is up).  The listen side forwards only to destinations
 * of its allow list (exact text and port, numeric or "localhost": no
 * DNS), answers OPENED {status}, then both sides splice: TCP bytes become
 * DATA frames, a TCP end of input becomes FIN (half-close, shutdown on
 * the far side), a reset or a stream lost closes both.  Backpressure:
 * a side stops reading when the other's output is over
 * AGENT_APP_STREAM_HIGH and starts again below AGENT_APP_STREAM_LOW.
 *
 * Interface: agent/app.h.  Errors: constructors return NULL with a
 * message; refused and failed connections are logged and counted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "app.h"
#include "app_forward.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"

#define SMALL_FRAME 512

int
agent_fwd_allowed(const agent_allow *allow, size_t n, const char *host, uint16_t port)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (allow[i].port == port && !strcmp(allow[i].host, host))
			return 1;
	return 0;
}

/* Numeric text (or "localhost") to an address: no DNS, ever. */
int
agent_fwd_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof *in4;
		return MP_OK;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof *in6;
		return MP_OK;
	}
	return MP_ERR_SYNTAX;
}

/* ================================================================ splice */

typedef struct splice splice;
struct splice {
	agent_fwd_tcp *client;          /* NULL on the listen side */
	agent_fwd_tcp_server *server;   /* NULL on the connect side */
	splice *next, **prevp;
	struct bufferevent *tcp, *stream;
	int opened;                     /* OPENED OK sent / received */
	int tcp_eof;                    /* our TCP side ended: FIN sent */
	int fin_recv;                   /* the peer's FIN came */
	int shut_wr;                    /* TCP write side shut down */
	int stream_ended;               /* EOF or error on the stream: input is all there is */
	char host[MP_APP_HOST_MAX + 1];
	uint16_t port;
};

struct agent_fwd_tcp {
	agent_app_io io;
	struct evconnlistener *lis;
	char host[MP_APP_HOST_MAX + 1];
	uint16_t port, localport;
	unsigned refused[4];
	splice *conns;
};

struct agent_fwd_tcp_server {
	struct event_base *base;
	agent_allow *allow;
	size_t nallow;
	splice *conns;
};

static int stream_process(splice *sp);

static void
splice_free(splice *sp)
{
	if (sp->next)
		sp->next->prevp = sp->prevp;
	*sp->prevp = sp->next;
	agent_app_stream_close(sp->stream);
	if (sp->tcp)
		bufferevent_free(sp->tcp);
	free(sp);
}

static splice *
splice_new(splice **head)
{
	splice *sp = calloc(1, sizeof *sp);

	if (!sp)
		return NULL;
	sp->next = *head;
	if (sp->next)
		sp->next->prevp = &sp->next;
	sp->prevp = head;
	*head = sp;
	return sp;
}

/* Both directions ended cleanly: nothing more to carry. */
static int
maybe_done(splice *sp)
{
	if (sp->tcp_eof && sp->shut_wr) {
		splice_free(sp);
		return 1;
	}
	return 0;
}

static void
tcp_to_stream(splice *sp)
{
	struct evbuffer *in = bufferevent_get_input(sp->tcp), *out;
	uint8_t head[MP_APP_FRAME_HDR];
	size_t n;

	if (!sp->stream) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	out = bufferevent_get_output(sp->stream);
	while ((n = evbuffer_get_length(in)) > 0) {
		if (n > MP_APP_FRAME_MAX)
			n = MP_APP_FRAME_MAX;
		mp_app_frame_put_head(head, MP_FR_DATA, (uint32_t)n);
		evbuffer_add(out, head, sizeof head);
		evbuffer_remove_buffer(in, out, n);
	}
	if (evbuffer_get_length(out) >= AGENT_APP_STREAM_HIGH)
		bufferevent_disable(sp->tcp, EV_READ);
}

static void
shut_if_drained(splice *sp)
{
	if (sp->fin_recv && !sp->shut_wr && sp->opened &&
	    evbuffer_get_length(bufferevent_get_output(sp->tcp)) == 0) {
		shutdown(bufferevent_getfd(sp->tcp), SHUT_WR);
		sp->shut_wr = 1;
	}
}

static void
tcp_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	tcp_to_stream(arg);
}

static void
tcp_write(struct bufferevent *bev, void *arg)
{
	splice *sp = arg;

	(void)bev;
	if (!sp->stream) {
		/* the stream is gone; we stayed only to deliver its last bytes */
		if (evbuffer_get_length(bufferevent_get_output(sp->tcp)) == 0)
			splice_free(sp);
		return;
	}
	if (!(bufferevent_get_enabled(sp->stream) & EV_READ) || sp->stream_ended) {
		if (!sp->stream_ended)
			bufferevent_enable(sp->stream, EV_READ);
		stream_process(sp);
		return;
	}
	shut_if_drained(sp);
	maybe_done(sp);
}

static void
send_opened(splice *sp, uint8_t status)
{
	uint8_t frame[SMALL_FRAME];
	size_t len;

	if (mp_app_u8_encode(MP_FR_OPENED, status, frame, sizeof frame, &len) == MP_OK)
		bufferevent_write(sp->stream, frame, len);
}

static void
tcp_event(struct bufferevent *bev, short what, void *arg)
{
	splice *sp = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* listen side: the destination answered */
		sp->opened = 1;
		send_opened(sp, MP_OPENED_OK);
		bufferevent_enable(sp->tcp, EV_READ | EV_WRITE);
		stream_process(sp);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		if (sp->server && !sp->opened) {
			mp_log(MP_LOG_NOTICE, "forward to %s:%u: %s", sp->host, sp->port,
			       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
			send_opened(sp, MP_OPENED_UNREACHABLE);
		}
		/* a reset: the stream ends without FIN, the peer resets too */
		splice_free(sp);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		tcp_to_stream(sp);
		if (sp->stream)
			agent_app_write_frame(sp->stream, MP_FR_FIN, NULL, 0);
		sp->tcp_eof = 1;
		bufferevent_disable(sp->tcp, EV_READ);
		if (!sp->stream && evbuffer_get_length(bufferevent_get_output(sp->tcp)) == 0) {
			splice_free(sp);
			return;
		}
		maybe_done(sp);
	}
}

/* Listen side: the OPEN frame. 1 when the splice lives on. */
static int
on_open(splice *sp, const uint8_t *p, size_t len)
{
	agent_fwd_tcp_server *s = sp->server;
	struct sockaddr_storage ss;
	socklen_t sslen;

	if (mp_app_open_decode(p, len, sp->host, &sp->port) != MP_OK) {
		send_opened(sp, MP_OPENED_BADREQ);
		splice_free(sp);
		return 0;
	}
	if (!agent_fwd_allowed(s->allow, s->nallow, sp->host, sp->port) ||
	    agent_fwd_sockaddr(sp->host, sp->port, &ss, &sslen) != MP_OK) {
		mp_log(MP_LOG_NOTICE, "forward to %s:%u refused: not allowed", sp->host, sp->port);
		send_opened(sp, MP_OPENED_NOTALLOWED);
		splice_free(sp);
		return 0;
	}
	sp->tcp = bufferevent_socket_new(s->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!sp->tcp) {
		send_opened(sp, MP_OPENED_UNREACHABLE);
		splice_free(sp);
		return 0;
	}
	bufferevent_setcb(sp->tcp, tcp_read, tcp_write, tcp_event, sp);
	bufferevent_setwatermark(sp->tcp, EV_WRITE, AGENT_APP_STREAM_LOW, 0);
	/* a refused connection is reported later, through tcp_event; -1 is
	 * a failure before connect() even ran */
	if (bufferevent_socket_connect(sp->tcp, (struct sockaddr *)&ss, (int)sslen) != 0) {
		send_opened(sp, MP_OPENED_UNREACHABLE);
		splice_free(sp);
		return 0;
	}
	mp_log(MP_LOG_INFO, "forward to %s:%u", sp->host, sp->port);
	return 1;
}

/* The stream ended and everything it brought is handled: close, after
 * writing out what the peer sent before its FIN. 0: sp is gone. */
static int
stream_gone(splice *sp)
{
	if (sp->tcp && sp->opened && sp->fin_recv &&
	    evbuffer_get_length(bufferevent_get_output(sp->tcp))) {
		bufferevent_free(sp->stream);
		sp->stream = NULL;
		bufferevent_disable(sp->tcp, EV_READ);
		return 1;
	}
	splice_free(sp);
	return 0;
}

/* Handles the whole frames in the stream's input, as far as the TCP side
 * takes them; 0 when sp is gone. */
static int
stream_process(splice *sp)
{
	struct bufferevent *bev = sp->stream;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t buf[SMALL_FRAME], type, status;
	uint32_t len;
	int rc;

	while ((rc = agent_app_peek_frame(in, &type, &len)) == 1) {
		if (sp->server && !sp->tcp) {
			if (type != MP_FR_OPEN || agent_app_take_frame(in, len, buf, sizeof buf) != MP_OK)
				break;
			return on_open(sp, buf, len);   /* the rest once connected */
		}
		if (sp->server && !sp->opened)
			return 1;   /* still connecting: keep it buffered */
		if (sp->client && !sp->opened) {
			if (type != MP_FR_OPENED || agent_app_take_frame(in, len, buf, sizeof buf) != MP_OK ||
			    mp_app_u8_decode(buf, len, &status) != MP_OK)
				break;
			if (status != MP_OPENED_OK) {
				mp_log(MP_LOG_ERR, "forward to %s:%u refused by peer (%s)", sp->client->host,
				       sp->client->port,
				       status == MP_OPENED_NOTALLOWED ? "not allowed" :
				       status == MP_OPENED_UNREACHABLE ? "unreachable" : "bad request");
				sp->client->refused[status < 4 ? status : 3]++;
				splice_free(sp);
				return 0;
			}
			sp->opened = 1;
			continue;
		}
		if (type == MP_FR_DATA && !sp->fin_recv) {
			struct evbuffer *out = bufferevent_get_output(sp->tcp);
			evbuffer_drain(in, MP_APP_FRAME_HDR);
			evbuffer_remove_buffer(in, out, len);
			if (evbuffer_get_length(out) >= AGENT_APP_STREAM_HIGH) {
				/* the rest when the TCP side has taken this */
				bufferevent_disable(bev, EV_READ);
				return 1;
			}
		} else if (type == MP_FR_FIN && !sp->fin_recv) {
			evbuffer_drain(in, MP_APP_FRAME_HDR + len);
			sp->fin_recv = 1;
			shut_if_drained(sp);
			if (maybe_done(sp))
				return 0;
		} else {
			break;
		}
	}
	if (rc == 0)
		return sp->stream_ended ? stream_gone(sp) : 1;
	mp_log(MP_LOG_ERR, "forward: peer broke the stream protocol");
	splice_free(sp);
	return 0;
}

static void
stream_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	stream_process(arg);
}

static void
stream_write(struct bufferevent *bev, void *arg)
{
	splice *sp = arg;

	(void)bev;
	if (!sp->tcp_eof && sp->tcp && !(bufferevent_get_enabled(sp->tcp) & EV_READ) &&
	    (sp->client || sp->opened))
		bufferevent_enable(sp->tcp, EV_READ);
}

static void
stream_event(struct bufferevent *bev, short what, void *arg)
{
	splice *sp = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* frames may wait in the input (backpressure): they still count */
	sp->stream_ended = 1;
	bufferevent_disable(bev, EV_READ);
	if (sp->server && !sp->opened) {
		splice_free(sp);   /* nobody to deliver to yet */
		return;
	}
	stream_process(sp);
}

static void
stream_setup(splice *sp)
{
	bufferevent_setcb(sp->stream, stream_read, stream_write, stream_event, sp);
	bufferevent_setwatermark(sp->stream, EV_READ, 0, AGENT_APP_STREAM_HIGH);
	bufferevent_setwatermark(sp->stream, EV_WRITE, AGENT_APP_STREAM_LOW, 0);
	bufferevent_enable(sp->stream, EV_READ | EV_WRITE);
}

/* ====================================================== TCP connect side */

static void
accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	agent_fwd_tcp *f = arg;
	uint8_t frame[SMALL_FRAME];
	size_t len;
	splice *sp;

	(void)lis;
	(void)sa;
	(void)salen;
	if (!(sp = splice_new(&f->conns))) {
		evutil_closesocket(fd);
		return;
	}
	sp->client = f;
	sp->tcp = bufferevent_socket_new(f->io.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!sp->tcp) {
		evutil_closesocket(fd);
		splice_free(sp);
		return;
	}
	if (!(sp->stream = f->io.open_stream(f->io.ctx))) {
		mp_log(MP_LOG_ERR, "forward: cannot open a stream to the peer");
		splice_free(sp);
		return;
	}
	if (agent_app_write_header(sp->stream, MP_APP_FORWARD_TCP) != MP_OK ||
	    mp_app_open_encode(f->host, f->port, frame, sizeof frame, &len) != MP_OK ||
	    bufferevent_write(sp->stream, frame, len) != 0) {
		splice_free(sp);
		return;
	}
	stream_setup(sp);
	bufferevent_setcb(sp->tcp, tcp_read, tcp_write, tcp_event, sp);
	bufferevent_setwatermark(sp->tcp, EV_WRITE, AGENT_APP_STREAM_LOW, 0);
	bufferevent_enable(sp->tcp, EV_READ | EV_WRITE);
}

agent_fwd_tcp *
agent_fwd_tcp_new(const agent_app_io *io, uint16_t localport, const char *host, uint16_t port,
                  char *err, size_t errlen)
{
	agent_fwd_tcp *f = calloc(1, sizeof *f);
	struct sockaddr_in sin;
	socklen_t slen = sizeof sin;

	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (mp_app_host_check(host) != MP_OK || port == 0) {
		snprintf(err, errlen, "forward destination %s:%u: numeric address or localhost only",
		         host, port);
		free(f);
		return NULL;
	}
	f->io = *io;
	snprintf(f->host, sizeof f->host, "%s", host);
	f->port = port;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(localport);
	f->lis = evconnlistener_new_bind(io->base, accept_cb, f,
	                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
	                                 (struct sockaddr *)&sin, sizeof sin);
	if (!f->lis) {
		snprintf(err, errlen, "cannot listen on 127.0.0.1:%u: %s", localport, strerror(errno));
		free(f);
		return NULL;
	}
	if (getsockname(evconnlistener_get_fd(f->lis), (struct sockaddr *)&sin, &slen) == 0)
		f->localport = ntohs(sin.sin_port);
	return f;
}

uint16_t
agent_fwd_tcp_port(const agent_fwd_tcp *f)
{
	return f->localport;
}

unsigned
agent_fwd_tcp_refused(const agent_fwd_tcp *f, int code)
{
	return code >= 0 && code < 4 ? f->refused[code] : 0;
}

void
agent_fwd_tcp_free(agent_fwd_tcp *f)
{
	if (!f)
		return;
	while (f->conns)
		splice_free(f->conns);
	evconnlistener_free(f->lis);
	free(f);
}

/* ======================================================= TCP listen side */

agent_fwd_tcp_server *
agent_fwd_tcp_server_new(struct event_base *base, const agent_allow *allow, size_t nallow)
{
	agent_fwd_tcp_server *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->base = base;
	if (nallow && !(s->allow = calloc(nallow, sizeof *allow))) {
		free(s);
		return NULL;
	}
	if (nallow)
		memcpy(s->allow, allow, nallow * sizeof *allow);
	s->nallow = nallow;
	return s;
}

void
agent_fwd_tcp_server_take(agent_fwd_tcp_server *s, struct bufferevent *bev)
{
	splice *sp = splice_new(&s->conns);

	if (!sp) {
		agent_app_stream_close(bev);
		return;
	}
	sp->server = s;
	sp->stream = bev;
	stream_setup(sp);
	if (evbuffer_get_length(bufferevent_get_input(bev)))
		stream_read(bev, sp);
}

void
agent_fwd_tcp_server_free(agent_fwd_tcp_server *s)
{
	if (!s)
		return;
	while (s->conns)
		splice_free(s->conns);
	free(s->allow);
	free(s);
}
