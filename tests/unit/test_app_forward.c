/*
 * test_app_forward.c - TCP and UDP forwarding (agent/app_forward.c) end
 * to end over in-process streams and datagrams (apptestutil.h): a small
 * HTTP-like server reached through --forward by 10 connections at once,
 * some with large answers (backpressure); half-close carried both ways;
 * a destination not in the allow list refused, an allowed one that does
 * not answer reported; UDP datagrams of two flows forwarded and
 * answered, refused when not allowed, flows forgotten when idle.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>

#include "apptestutil.h"
#include "testutil.h"

#define NCONN 10

/* ------------------------------------------------------ the services */

/* HTTP-like: "GET /N ..." answered with N bytes (byte i = i % 251) and a
 * close.  ECHO mode: everything up to the client's half-close comes back
 * reversed, then the server closes. */
enum { HTTP, ECHO };

typedef struct service {
	struct evconnlistener *lis;
	uint16_t port;
	int mode;
	unsigned accepted;
} service;

static void
close_when_written(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
svc_read(struct bufferevent *bev, void *arg)
{
	service *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end;
	char req[128];
	unsigned long n, i;
	uint8_t *body;

	if (s->mode != HTTP)
		return;
	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0)
		return;
	memset(req, 0, sizeof req);
	evbuffer_remove(in, req, end.pos < 120 ? (size_t)end.pos : 120);
	n = strtoul(req + 5, NULL, 10);
	body = malloc(n + 1);
	for (i = 0; i < n; i++)
		body[i] = (uint8_t)(i % 251);
	evbuffer_add_printf(bufferevent_get_output(bev), "HTTP/1.0 200 OK\r\nContent-Length: %lu\r\n\r\n", n);
	evbuffer_add(bufferevent_get_output(bev), body, n);
	free(body);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, close_when_written, NULL, NULL);
}

static void
svc_event(struct bufferevent *bev, short what, void *arg)
{
	service *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in), i;
	uint8_t *p;

	if (s->mode == ECHO && (what & BEV_EVENT_EOF)) {
		p = evbuffer_pullup(in, -1);
		for (i = 0; i < n / 2; i++) {
			uint8_t t = p[i];
			p[i] = p[n - 1 - i];
			p[n - 1 - i] = t;
		}
		evbuffer_add_buffer(bufferevent_get_output(bev), in);
		bufferevent_setcb(bev, NULL, close_when_written, NULL, NULL);
		if (!n)
			bufferevent_free(bev);
		return;
	}
	bufferevent_free(bev);
}

static void
svc_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	service *s = arg;
	struct bufferevent *bev = bufferevent_socket_new(evconnlistener_get_base(lis), fd,
	                                                 BEV_OPT_CLOSE_ON_FREE);

	(void)sa;
	(void)len;
	s->accepted++;
	bufferevent_setcb(bev, svc_read, NULL, svc_event, s);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void
svc_start(service *s, struct event_base *base, int mode)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof sin;

	memset(s, 0, sizeof *s);
	s->mode = mode;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lis = evconnlistener_new_bind(base, svc_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	                                 -1, (struct sockaddr *)&sin, sizeof sin);
	ck_assert_ptr_nonnull(s->lis);
	getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&sin, &slen);
	s->port = ntohs(sin.sin_port);
}

/* ------------------------------------------------------- the clients */

typedef struct client {
	struct bufferevent *bev;
	struct evbuffer *got;
	int done, *ndone;
} client;

static void
cl_read(struct bufferevent *bev, void *arg)
{
	client *c = arg;

	evbuffer_add_buffer(c->got, bufferevent_get_input(bev));
}

static void
cl_event(struct bufferevent *bev, short what, void *arg)
{
	client *c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		evbuffer_add_buffer(c->got, bufferevent_get_input(bev));
		bufferevent_free(c->bev);
		c->bev = NULL;
		c->done = 1;
		(*c->ndone)++;
	}
}

static void
cl_start(client *c, struct event_base *base, uint16_t port, int *ndone)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	memset(c, 0, sizeof *c);
	c->got = evbuffer_new();
	c->ndone = ndone;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, cl_read, NULL, cl_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	ck_assert_int_eq(bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin, sizeof sin), 0);
}

static void
cl_free(client *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	evbuffer_free(c->got);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* Runs the loop until *count reaches want or 15 s pass. */
static void
run_until(struct event_base *base, int *count, int want)
{
	struct timeval tv = { 15, 0 };
	struct event *to = evtimer_new(base, timeout_cb, base);

	evtimer_add(to, &tv);
	while (*count < want && !event_base_got_break(base))
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_msg(*count >= want, "timed out: %d of %d", *count, want);
	event_free(to);
}

static void
allow_one(agent_allow *a, const char *host, uint16_t port)
{
	snprintf(a->host, sizeof a->host, "%s", host);
	a->port = port;
}

/* ------------------------------------------------------------- TCP */

START_TEST(http_ten_parallel)
{
	struct event_base *base = event_base_new();
	agent_app_server_cfg cfg = { 0 };
	agent_allow allow[2];
	client c[NCONN];
	service svc;
	test_link tl;
	agent_fwd_tcp *fwd;
	char err[256];
	int ndone = 0, i;

	svc_start(&svc, base, HTTP);
	allow_one(&allow[0], "127.0.0.1", 1);
	allow_one(&allow[1], "127.0.0.1", svc.port);
	cfg.allow_tcp = allow;
	cfg.nallow_tcp = 2;
	tl_init(&tl, base, &cfg);
	fwd = agent_fwd_tcp_new(&tl.io, 0, "127.0.0.1", svc.port, err, sizeof err);
	ck_assert_msg(fwd != NULL, "%s", err);
	ck_assert_uint_ne(agent_fwd_tcp_port(fwd), 0);
	for (i = 0; i < NCONN; i++) {
		cl_start(&c[i], base, agent_fwd_tcp_port(fwd), &ndone);
		/* answers from 0 bytes to 2.7 MB: several over the high-water mark */
		evbuffer_add_printf(bufferevent_get_output(c[i].bev), "GET /%d HTTP/1.0\r\n\r\n", i * 300000);
	}
	run_until(base, &ndone, NCONN);
	for (i = 0; i < NCONN; i++) {
		char head[128];
		size_t n = (size_t)i * 300000, hl, k;
		const uint8_t *body;
		int ok = 1;

		hl = (size_t)snprintf(head, sizeof head, "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
		ck_assert_uint_eq(evbuffer_get_length(c[i].got), hl + n);
		body = evbuffer_pullup(c[i].got, -1);
		ck_assert_mem_eq(body, head, hl);
		for (k = 0; k < n && ok; k++)
			ok = body[hl + k] == (uint8_t)(k % 251);
		ck_assert_msg(ok, "connection %d: body differs at %zu", i, k - 1);
		cl_free(&c[i]);
	}
	ck_assert_uint_eq(svc.accepted, NCONN);
	ck_assert_uint_eq(tl.nopened, NCONN);
	/* every stream was closed again */
	event_base_loop(base, EVLOOP_NONBLOCK);
	for (i = 0; i < NCONN; i++)
		ck_assert(tl.relays[i].a == NULL && tl.relays[i].b == NULL);
	agent_fwd_tcp_free(fwd);
	tl_free(&tl);
	evconnlistener_free(svc.lis);
	event_base_free(base);
}
END_TEST

/* The echo service answers only after the client's half-close, with
 * 8 MB, and the client does not read for a while: the answer, the
 * service's end and the stream's end all arrive while the connect side
 * still holds data for its client (backpressure at the end of a stream). */
START_TEST(half_close_both_ways)
{
	struct event_base *base = event_base_new();
	agent_app_server_cfg cfg = { 0 };
	agent_allow allow;
	client c;
	service svc;
	test_link tl;
	agent_fwd_tcp *fwd;
	char err[256];
	int ndone = 0, ok = 1;
	size_t n = 8 * 1024 * 1024, k;
	uint8_t *msg = malloc(n);
	const uint8_t *got;

	for (k = 0; k < n; k++)
		msg[k] = (uint8_t)(k * 7 + k / 4096);
	svc_start(&svc, base, ECHO);
	allow_one(&allow, "localhost", svc.port);
	cfg.allow_tcp = &allow;
	cfg.nallow_tcp = 1;
	tl_init(&tl, base, &cfg);
	fwd = agent_fwd_tcp_new(&tl.io, 0, "localhost", svc.port, err, sizeof err);
	ck_assert_ptr_nonnull(fwd);
	cl_start(&c, base, agent_fwd_tcp_port(fwd), &ndone);
	bufferevent_write(c.bev, msg, n);
	/* the answer only comes after our end of input has crossed */
	{
		struct timeval tv = { 0, 300000 };
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	ck_assert_uint_eq(evbuffer_get_length(c.got), 0);
	ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_output(c.bev)), 0);
	ck_assert_int_eq(shutdown(bufferevent_getfd(c.bev), SHUT_WR), 0);
	bufferevent_disable(c.bev, EV_READ);
	{
		struct timeval tv = { 0, 500000 };
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	ck_assert_uint_eq(evbuffer_get_length(c.got), 0);
	bufferevent_enable(c.bev, EV_READ);
	run_until(base, &ndone, 1);
	ck_assert_uint_eq(evbuffer_get_length(c.got), n);
	got = evbuffer_pullup(c.got, -1);
	for (k = 0; k < n && ok; k++)
		ok = got[k] == msg[n - 1 - k];
	ck_assert_msg(ok, "echo differs at %zu", k - 1);
	free(msg);
	cl_free(&c);
	event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert(tl.relays[0].a == NULL && tl.relays[0].b == NULL);
	agent_fwd_tcp_free(fwd);
	tl_free(&tl);
	evconnlistener_free(svc.lis);
	event_base_free(base);
}
END_TEST

START_TEST(not_allowed_and_unreachable)
{
	struct event_base *base = event_base_new();
	agent_app_server_cfg cfg = { 0 };
	agent_allow allow[2];
	client c1, c2;
	service svc;
	test_link tl;
	agent_fwd_tcp *denied, *dead;
	char err[256];
	int ndone = 0, fd;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof sin;
	uint16_t closed_port;

	svc_start(&svc, base, HTTP);
	/* a port with nobody listening: bound, then closed */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof sin);
	getsockname(fd, (struct sockaddr *)&sin, &slen);
	closed_port = ntohs(sin.sin_port);
	close(fd);
	/* same port, other spelling: exact match only */
	allow_one(&allow[0], "localhost", svc.port);
	allow_one(&allow[1], "127.0.0.1", closed_port);
	cfg.allow_tcp = allow;
	cfg.nallow_tcp = 2;
	tl_init(&tl, base, &cfg);
	denied = agent_fwd_tcp_new(&tl.io, 0, "127.0.0.1", svc.port, err, sizeof err);
	dead = agent_fwd_tcp_new(&tl.io, 0, "127.0.0.1", closed_port, err, sizeof err);
	ck_assert_ptr_nonnull(denied);
	ck_assert_ptr_nonnull(dead);
	cl_start(&c1, base, agent_fwd_tcp_port(denied), &ndone);
	evbuffer_add_printf(bufferevent_get_output(c1.bev), "GET /10 HTTP/1.0\r\n\r\n");
	cl_start(&c2, base, agent_fwd_tcp_port(dead), &ndone);
	run_until(base, &ndone, 2);
	ck_assert_uint_eq(evbuffer_get_length(c1.got), 0);
	ck_assert_uint_eq(evbuffer_get_length(c2.got), 0);
	ck_assert_uint_eq(svc.accepted, 0);
	ck_assert_uint_eq(agent_fwd_tcp_refused(denied, MP_OPENED_NOTALLOWED), 1);
	ck_assert_uint_eq(agent_fwd_tcp_refused(dead, MP_OPENED_UNREACHABLE), 1);
	ck_assert_uint_eq(agent_fwd_tcp_refused(dead, MP_OPENED_NOTALLOWED), 0);
	cl_free(&c1);
	cl_free(&c2);
	agent_fwd_tcp_free(denied);
	agent_fwd_tcp_free(dead);
	tl_free(&tl);
	evconnlistener_free(svc.lis);
	event_base_free(base);
}
END_TEST

START_TEST(bad_destination_text_rejected_locally)
{
	struct event_base *base = event_base_new();
	agent_app_io io = { .base = base };
	char err[256];

	ck_assert_ptr_null(agent_fwd_tcp_new(&io, 0, "example.com", 80, err, sizeof err));
	ck_assert_ptr_null(agent_fwd_udp_new(&io, 0, "example.com", 80, err, sizeof err));
	event_base_free(base);
}
END_TEST

/* ------------------------------------------------------------- UDP */

typedef struct udp_echo {
	int fd;
	struct event *ev;
	uint16_t port;
	unsigned count;
} udp_echo;

static void
echo_read(evutil_socket_t fd, short what, void *arg)
{
	udp_echo *e = arg;
	uint8_t buf[2048];
	struct sockaddr_storage ss;
	socklen_t slen = sizeof ss;
	ssize_t n;

	(void)what;
	while ((n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&ss, &slen)) >= 0) {
		e->count++;
		buf[0] ^= 0x20;   /* "ping" -> "Ping" */
		sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&ss, slen);
		slen = sizeof ss;
	}
}

static int
udp_socket(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof sin;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	getsockname(fd, (struct sockaddr *)&sin, &slen);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
send_to_port(int fd, uint16_t port, const char *msg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	ck_assert_int_eq(sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sin, sizeof sin),
	                 (ssize_t)strlen(msg));
}

typedef struct udp_reader {
	int fd;
	struct event *ev;
	char last[64];
	int got;
} udp_reader;

static void
reader_read(evutil_socket_t fd, short what, void *arg)
{
	udp_reader *r = arg;
	ssize_t n;

	(void)what;
	while ((n = recv(fd, r->last, sizeof r->last - 1, MSG_DONTWAIT)) >= 0) {
		r->last[n] = '\0';
		r->got++;
	}
}

static void
to_udp_client(void *arg, const uint8_t *p, size_t len)
{
	agent_fwd_udp_on_datagram(arg, p, len);
}

START_TEST(udp_two_flows_and_idle)
{
	struct event_base *base = event_base_new();
	agent_app_server_cfg cfg = { .udp_idle_ms = 300 };
	agent_allow allow;
	udp_echo echo = { 0 };
	udp_reader r1 = { 0 }, r2 = { 0 };
	test_link tl;
	agent_fwd_udp *fwd;
	char err[256];
	uint16_t p1, p2;
	int i;

	echo.fd = udp_socket(&echo.port);
	echo.ev = event_new(base, echo.fd, EV_READ | EV_PERSIST, echo_read, &echo);
	event_add(echo.ev, NULL);
	allow_one(&allow, "127.0.0.1", echo.port);
	cfg.allow_udp = &allow;
	cfg.nallow_udp = 1;
	tl_init(&tl, base, &cfg);
	fwd = agent_fwd_udp_new(&tl.io, 0, "127.0.0.1", echo.port, err, sizeof err);
	ck_assert_msg(fwd != NULL, "%s", err);
	tl.to_client = to_udp_client;
	tl.client_arg = fwd;
	r1.fd = udp_socket(&p1);
	r2.fd = udp_socket(&p2);
	r1.ev = event_new(base, r1.fd, EV_READ | EV_PERSIST, reader_read, &r1);
	r2.ev = event_new(base, r2.fd, EV_READ | EV_PERSIST, reader_read, &r2);
	event_add(r1.ev, NULL);
	event_add(r2.ev, NULL);
	for (i = 0; i < 5; i++) {
		send_to_port(r1.fd, agent_fwd_udp_port(fwd), "ping one");
		send_to_port(r2.fd, agent_fwd_udp_port(fwd), "ping two");
		run_until(base, &r1.got, i + 1);
		run_until(base, &r2.got, i + 1);
	}
	ck_assert_str_eq(r1.last, "Ping one");
	ck_assert_str_eq(r2.last, "Ping two");
	ck_assert_uint_eq(echo.count, 10);
	ck_assert_uint_eq(agent_app_server_udp_flows(tl.server), 2);
	/* idle flows are forgotten */
	{
		struct timeval tv = { 0, 600000 };
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	ck_assert_uint_eq(agent_app_server_udp_flows(tl.server), 0);
	/* and a new datagram opens the flow again */
	send_to_port(r1.fd, agent_fwd_udp_port(fwd), "ping again");
	run_until(base, &r1.got, 6);
	ck_assert_str_eq(r1.last, "Ping again");
	agent_fwd_udp_free(fwd);
	tl_free(&tl);
	event_free(r1.ev);
	event_free(r2.ev);
	event_free(echo.ev);
	close(r1.fd);
	close(r2.fd);
	close(echo.fd);
	event_base_free(base);
}
END_TEST

static void
count_refused(void *arg, const uint8_t *p, size_t len)
{
	agent_fwd_udp_on_datagram(arg, p, len);
}

START_TEST(udp_not_allowed)
{
	struct event_base *base = event_base_new();
	agent_app_server_cfg cfg = { 0 };
	agent_allow allow;
	udp_echo echo = { 0 };
	test_link tl;
	agent_fwd_udp *fwd;
	char err[256];
	uint16_t p1;
	int fd, i;
	unsigned refused = 0;

	echo.fd = udp_socket(&echo.port);
	echo.ev = event_new(base, echo.fd, EV_READ | EV_PERSIST, echo_read, &echo);
	event_add(echo.ev, NULL);
	allow_one(&allow, "127.0.0.1", (uint16_t)(echo.port + 1));
	cfg.allow_udp = &allow;
	cfg.nallow_udp = 1;
	tl_init(&tl, base, &cfg);
	fwd = agent_fwd_udp_new(&tl.io, 0, "127.0.0.1", echo.port, err, sizeof err);
	ck_assert_ptr_nonnull(fwd);
	tl.to_client = count_refused;
	tl.client_arg = fwd;
	fd = udp_socket(&p1);
	send_to_port(fd, agent_fwd_udp_port(fwd), "ping");
	for (i = 0; i < 100 && !refused; i++) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		refused = agent_fwd_udp_refused(fwd);
		usleep(1000);
	}
	ck_assert_uint_eq(refused, 1);
	ck_assert_uint_eq(echo.count, 0);
	ck_assert_uint_eq(agent_app_server_udp_flows(tl.server), 0);
	agent_fwd_udp_free(fwd);
	tl_free(&tl);
	event_free(echo.ev);
	close(echo.fd);
	close(fd);
	event_base_free(base);
}
END_TEST

/* ------------------------------------------ stream headers, PIPE hook */

typedef struct piped {
	struct bufferevent *bev;
	int calls;
} piped;

static void
on_pipe(void *arg, struct bufferevent *bev)
{
	piped *p = arg;

	p->calls++;
	p->bev = bev;
}

typedef struct opener {
	int ended;
} opener;

static void
opener_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		((opener *)arg)->ended++;
}

static struct bufferevent *
open_with(test_link *tl, opener *o, const void *first, size_t len)
{
	struct bufferevent *bev = tl->io.open_stream(tl->io.ctx);

	bufferevent_setcb(bev, NULL, NULL, opener_event, o);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	bufferevent_write(bev, first, len);
	return bev;
}

START_TEST(stream_headers)
{
	struct event_base *base = event_base_new();
	piped pp = { 0 };
	agent_app_server_cfg cfg = { .on_pipe = on_pipe, .pipe_arg = &pp };
	agent_app_server_cfg nopipe = { 0 };
	uint8_t hdr[MP_APP_HDR_LEN + 5];
	opener o1 = { 0 }, o2 = { 0 }, o3 = { 0 }, o4 = { 0 };
	struct bufferevent *b1, *b2, *b3, *b4;
	test_link tl, tl2;
	int i;

	tl_init(&tl, base, &cfg);
	tl_init(&tl2, base, &nopipe);
	mp_app_header_encode(hdr, MP_APP_PIPE);
	memcpy(hdr + MP_APP_HDR_LEN, "hello", 5);
	b1 = open_with(&tl, &o1, hdr, sizeof hdr);            /* PIPE, hook set */
	b2 = open_with(&tl2, &o2, hdr, sizeof hdr);           /* PIPE, no hook */
	b3 = open_with(&tl, &o3, "GET / HTTP/1.0\r\n", 16);  /* not ours */
	mp_app_header_encode(hdr, MP_APP_FILE);               /* FILE without --receive */
	b4 = open_with(&tl, &o4, hdr, MP_APP_HDR_LEN);
	for (i = 0; i < 50; i++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	ck_assert_int_eq(pp.calls, 1);
	ck_assert_ptr_nonnull(pp.bev);
	ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_input(pp.bev)), 5);
	ck_assert_mem_eq(evbuffer_pullup(bufferevent_get_input(pp.bev), 5), "hello", 5);
	ck_assert_int_eq(o1.ended, 0);
	ck_assert_int_eq(o2.ended, 1);
	ck_assert_int_eq(o3.ended, 1);
	ck_assert_int_eq(o4.ended, 1);
	{
		/* ... gets REFUSE 6 (not offered) before the end, not a bare close */
		struct evbuffer *in = bufferevent_get_input(b4);
		uint8_t type, reason, buf[MP_APP_TEXT_MAX + 2];
		uint32_t len;
		char text[MP_APP_TEXT_MAX + 1];

		ck_assert_int_eq(agent_app_peek_frame(in, &type, &len), 1);
		ck_assert_int_eq(type, MP_FR_REFUSE);
		ck_assert_int_eq(agent_app_take_frame(in, len, buf, sizeof buf), MP_OK);
		ck_assert_int_eq(mp_app_refuse_decode(buf, len, &reason, text), MP_OK);
		ck_assert_int_eq(reason, MP_REFUSE_NOTOFFERED);
	}
	agent_app_stream_close(pp.bev);
	for (i = 0; i < 10; i++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	ck_assert_int_eq(o1.ended, 1);
	bufferevent_free(b1);
	bufferevent_free(b2);
	bufferevent_free(b3);
	bufferevent_free(b4);
	tl_free(&tl);
	tl_free(&tl2);
	for (i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
}
END_TEST

static Suite *
app_forward_suite(void)
{
	Suite *s = suite_create("app_forward");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, http_ten_parallel);
	tcase_add_test(tc, half_close_both_ways);
	tcase_add_test(tc, not_allowed_and_unreachable);
	tcase_add_test(tc, bad_destination_text_rejected_locally);
	tcase_add_test(tc, udp_two_flows_and_idle);
	tcase_add_test(tc, udp_not_allowed);
	tcase_add_test(tc, stream_headers);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(app_forward_suite)
