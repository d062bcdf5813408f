/*
 * apptestutil.h - an in-process stand-in for the transport, for the
 * application tests (test_app_file.c, test_app_forward.c).
 *
 * Each stream the "connect side" opens is two bufferevent pairs joined
 * by a relay: the application's end, relay, the listen side's end
 * (handed to agent_app_server_on_stream).  The relay counts the bytes
 * it carries towards the listen side and can cut every stream after a
 * given count, as a broken connection would: pending bytes are dropped
 * and both ends see end of stream.  Datagrams are delivered on the next
 * turn of the loop, each way, through the functions set here.
 * Pairs use deferred callbacks, as a transport running its own loop does.
 */
#ifndef MAILPUNCH_APPTESTUTIL_H
#define MAILPUNCH_APPTESTUTIL_H

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "app.h"
#include "mailpunch/error.h"

#define TL_MAX_RELAYS 64

typedef struct tl_relay {
	struct test_link *tl;
	struct bufferevent *a, *b;        /* relay ends: a faces the opener, b the listen side */
} tl_relay;

typedef struct tl_dgram {
	struct tl_dgram *next;
	int to_server;
	size_t len;
	uint8_t data[];
} tl_dgram;

typedef struct test_link {
	struct event_base *base;
	agent_app_io io;                  /* what the connect side uses */
	agent_app_io server_io;           /* what the listen side uses (datagrams back) */
	agent_app_server *server;
	tl_relay relays[TL_MAX_RELAYS];
	size_t nopened;
	uint64_t relayed, cut_after;      /* cut_after 0: never */
	int cut;
	void (*to_client)(void *arg, const uint8_t *p, size_t len);
	void *client_arg;
	tl_dgram *dgrams;
	struct event *dgram_ev;
	unsigned dgrams_sent;
} test_link;

static void tl_relay_close(tl_relay *r, int drop);

static void
tl_move(tl_relay *r, struct bufferevent *from, struct bufferevent *to)
{
	struct evbuffer *in = bufferevent_get_input(from), *out = bufferevent_get_output(to);
	size_t n = evbuffer_get_length(in);

	if (from == r->a)
		r->tl->relayed += n;
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= AGENT_APP_STREAM_HIGH)
		bufferevent_disable(from, EV_READ);
	if (from == r->a && r->tl->cut_after && r->tl->relayed >= r->tl->cut_after && !r->tl->cut) {
		size_t i;
		r->tl->cut = 1;
		for (i = 0; i < TL_MAX_RELAYS; i++)
			tl_relay_close(&r->tl->relays[i], 1);
	}
}

static void
tl_read(struct bufferevent *bev, void *arg)
{
	tl_relay *r = arg;

	if (bev == r->a)
		tl_move(r, r->a, r->b);
	else
		tl_move(r, r->b, r->a);
}

static void
tl_write(struct bufferevent *bev, void *arg)
{
	tl_relay *r = arg;
	struct bufferevent *src = bev == r->a ? r->b : r->a;

	if (src && !(bufferevent_get_enabled(src) & EV_READ)) {
		bufferevent_enable(src, EV_READ);
		tl_read(src, r);
	}
}

static void
tl_relay_close(tl_relay *r, int drop)
{
	struct bufferevent *ends[2] = { r->a, r->b };
	int i;

	if (!r->a && !r->b)
		return;
	r->a = r->b = NULL;
	for (i = 0; i < 2; i++) {
		if (!ends[i])
			continue;
		if (drop)
			evbuffer_drain(bufferevent_get_output(ends[i]),
			               evbuffer_get_length(bufferevent_get_output(ends[i])));
		agent_app_stream_close(ends[i]);
	}
}

static void
tl_event(struct bufferevent *bev, short what, void *arg)
{
	tl_relay *r = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* one end closed: carry what it sent, then end the other */
	if (bev == r->a && r->b)
		tl_move(r, r->a, r->b);
	else if (bev == r->b && r->a)
		tl_move(r, r->b, r->a);
	tl_relay_close(r, 0);
}

static struct bufferevent *
tl_open_stream(void *ctx)
{
	test_link *tl = ctx;
	struct bufferevent *p1[2], *p2[2];
	tl_relay *r;

	if (tl->cut || tl->nopened >= TL_MAX_RELAYS)
		return NULL;
	r = &tl->relays[tl->nopened++];
	r->tl = tl;
	if (bufferevent_pair_new(tl->base, BEV_OPT_DEFER_CALLBACKS, p1) ||
	    bufferevent_pair_new(tl->base, BEV_OPT_DEFER_CALLBACKS, p2))
		abort();
	r->a = p1[1];
	r->b = p2[0];
	bufferevent_setcb(r->a, tl_read, tl_write, tl_event, r);
	bufferevent_setcb(r->b, tl_read, tl_write, tl_event, r);
	bufferevent_setwatermark(r->a, EV_WRITE, AGENT_APP_STREAM_LOW, 0);
	bufferevent_setwatermark(r->b, EV_WRITE, AGENT_APP_STREAM_LOW, 0);
	bufferevent_setwatermark(r->a, EV_READ, 0, AGENT_APP_STREAM_HIGH);
	bufferevent_setwatermark(r->b, EV_READ, 0, AGENT_APP_STREAM_HIGH);
	bufferevent_enable(r->a, EV_READ | EV_WRITE);
	bufferevent_enable(r->b, EV_READ | EV_WRITE);
	agent_app_server_on_stream(tl->server, p2[1]);
	return p1[0];
}

static void
tl_dgram_deliver(evutil_socket_t fd, short what, void *arg)
{
	test_link *tl = arg;
	tl_dgram *d;

	(void)fd;
	(void)what;
	while ((d = tl->dgrams)) {
		tl->dgrams = d->next;
		if (d->to_server)
			agent_app_server_on_datagram(tl->server, d->data, d->len);
		else if (tl->to_client)
			tl->to_client(tl->client_arg, d->data, d->len);
		free(d);
	}
}

static int
tl_queue(test_link *tl, int to_server, const uint8_t *p, size_t len)
{
	tl_dgram *d = malloc(sizeof *d + len), **end = &tl->dgrams;

	if (!d)
		return MP_ERR_NOMEM;
	d->next = NULL;
	d->to_server = to_server;
	d->len = len;
	memcpy(d->data, p, len);
	while (*end)
		end = &(*end)->next;
	*end = d;
	tl->dgrams_sent++;
	event_active(tl->dgram_ev, 0, 0);
	return MP_OK;
}

static int
tl_send_to_server(void *ctx, const uint8_t *p, size_t len)
{
	return tl_queue(ctx, 1, p, len);
}

static int
tl_send_to_client(void *ctx, const uint8_t *p, size_t len)
{
	return tl_queue(ctx, 0, p, len);
}

/* cfg: the listen side's configuration. */
static void
tl_init(test_link *tl, struct event_base *base, const agent_app_server_cfg *cfg)
{
	char err[256];

	memset(tl, 0, sizeof *tl);
	tl->base = base;
	tl->io.base = base;
	tl->io.open_stream = tl_open_stream;
	tl->io.send_datagram = tl_send_to_server;
	tl->io.ctx = tl;
	tl->server_io = tl->io;
	tl->server_io.open_stream = NULL;
	tl->server_io.send_datagram = tl_send_to_client;
	tl->dgram_ev = event_new(base, -1, 0, tl_dgram_deliver, tl);
	tl->server = agent_app_server_new(&tl->server_io, cfg, err, sizeof err);
	if (!tl->server || !tl->dgram_ev)
		abort();
}

static void
tl_free(test_link *tl)
{
	size_t i;
	tl_dgram *d;

	for (i = 0; i < TL_MAX_RELAYS; i++)
		tl_relay_close(&tl->relays[i], 1);
	agent_app_server_free(tl->server);
	while ((d = tl->dgrams)) {
		tl->dgrams = d->next;
		free(d);
	}
	event_free(tl->dgram_ev);
}

#endif
