/*
 * test_transport.c - the QUIC transport between two agents in one
 * process, on loopback, without mail: each side has its own UDP socket,
 * the two links punch and prove the identity keys (lib/punch.c), then
 * transport.c runs over the path.  Bulk data echoed through a stream
 * (flow control, FIN both ways, clean close on both sides), datagrams,
 * a NAT rebinding of the client mid-transfer (the server follows the
 * new address), and a dead peer detected within the idle timeout.
 */
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/rand.h>

#include "agent.h"
#include "mailpunch/error.h"
#include "mailpunch/netif.h"
#include "testutil.h"
#include "transport.h"

#define BULK (3 * 1024 * 1024)

typedef struct side {
	agent a;                    /* first: an agent * is a side * */
	agent_settings cfg;
	agent_link *link;
	agent_transport *t;
	agent_transport_opts opts;
	struct bufferevent *bev;
	struct evbuffer *got;
	size_t echoed;
	int ready, closed, eof, dgrams, dgram_ok;
	agent_transport_end end;
} side;

/* outbox.c (which traverse.c pulls in) ends a command through this,
 * defined by main.c; no command runs here. */
void
agent_maybe_exit(agent *a)
{
	(void)a;
}

static struct event_base *base;
static side A, B;               /* A: initiator, QUIC client; B: server */
static uint8_t *bulk;
static int rebind_at;           /* rebind a socket once B echoed this much ... */
static side *rebind_side;       /* ... this side's */
static int rebound;
static int answer_and_free;     /* B answers, finishes and frees at once */
static int free_after_finish;   /* B's echo frees its end right after FIN */

static void
on_ready(agent_transport *t, void *arg)
{
	side *s = arg;

	s->ready = 1;
}

static void
echo_read(struct bufferevent *bev, void *arg)
{
	side *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (answer_and_free) {
		/* like a server refusing a request: a reply, FIN, gone */
		bufferevent_write(bev, "refused", 7);
		bufferevent_flush(bev, EV_WRITE, BEV_FLUSH);
		bufferevent_flush(bev, EV_WRITE, BEV_FINISHED);
		bufferevent_free(bev);
		s->bev = NULL;
		return;
	}
	s->echoed += evbuffer_get_length(in);
	bufferevent_write_buffer(bev, in);
	if (rebind_at && !rebound && s->echoed >= (size_t)rebind_at) {
		/* its NAT gives it a new mapping: same fd, new source port */
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		ck_assert_int_ge(fd, 0);
		event_del(rebind_side->a.udp_ev);
		ck_assert_int_ge(dup2(fd, rebind_side->a.udp_fd), 0);
		close(fd);
		event_add(rebind_side->a.udp_ev, NULL);
		rebound = 1;
	}
}

static void
echo_event(struct bufferevent *bev, short what, void *arg)
{
	side *s = arg;

	if (what & BEV_EVENT_EOF) {
		bufferevent_flush(bev, EV_WRITE, BEV_FINISHED);
		if (free_after_finish) {
			/* like agent_pipe at its source's end: FIN, gone */
			bufferevent_free(bev);
			s->bev = NULL;
		}
	}
}

static void
on_stream(agent_transport *t, struct bufferevent *bev, void *arg)
{
	side *s = arg;

	s->bev = bev;
	bufferevent_setcb(bev, echo_read, NULL, echo_event, s);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void
on_datagram(agent_transport *t, const uint8_t *data, size_t len, void *arg)
{
	side *s = arg;

	s->dgrams++;
	s->dgram_ok += len == 5 && memcmp(data, "ping", 5) == 0;
}

static void
on_closed(agent_transport *t, agent_transport_end end, const char *reason, void *arg)
{
	side *s = arg;

	s->closed = 1;
	s->end = end;
}

static void
on_link(agent *a, agent_link *l, int established)
{
	side *s = (side *)a;
	agent_transport_hooks h = { on_ready, on_stream, on_datagram, on_closed, s };

	s->t = agent_transport_new(a, l, &s->opts, &h);
	ck_assert_ptr_nonnull(s->t);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until *flag is set or ms pass; returns *flag. */
static int
run_until(int *flag, int ms)
{
	struct timeval tv = { 0, 10000 };
	struct event *ev = event_new(base, -1, EV_PERSIST, tick, NULL);
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	event_add(ev, &tv);
	for (;;) {
		long el;

		if (*flag)
			break;
		event_base_loop(base, EVLOOP_ONCE);
		clock_gettime(CLOCK_MONOTONIC, &now);
		el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (el > ms)
			break;
	}
	event_free(ev);
	return *flag;
}

static void
side_init(side *s)
{
	char err[256];

	memset(s, 0, sizeof *s);
	s->a.base = base;
	s->a.cfg = &s->cfg;
	s->a.udp_fd = s->a.udp6_fd = -1;
	s->a.hooks.on_link = on_link;
	ck_assert_int_eq(mp_identity_generate(&s->a.id), MP_OK);
	mp_identity_uid(s->a.id, &s->a.uid);
	mp_uid_format(&s->a.uid, s->a.uid_text);
	ck_assert_int_eq(agent_udp_open(&s->a, err, sizeof err), MP_OK);
	s->got = evbuffer_new();
}

static void
point_at(agent_link *l, const side *peer)
{
	mp_endpoints ep;
	char text[64];

	memset(&ep, 0, sizeof ep);
	snprintf(text, sizeof text, "127.0.0.1:%u", peer->a.udp_port);
	ck_assert_int_eq(mp_candidate_parse(text, MP_CAND_LOCAL, &ep.cand[0]), MP_OK);
	ep.ncand = 1;
	agent_link_add_candidates(l, &ep);
}

/* Both links punched and proven, both transports ready. */
static void
connect_sides(void)
{
	uint8_t conn_id[MP_PUNCH_CONN_ID_LEN], secret[MP_PUNCH_SECRET_LEN];
	int both = 0;

	ck_assert_int_eq(mp_punch_fresh(conn_id, secret), MP_OK);
	A.link = agent_link_new(&A.a, mp_identity_public(B.a.id), 1, conn_id, secret);
	B.link = agent_link_new(&B.a, mp_identity_public(A.a.id), 0, conn_id, secret);
	ck_assert_ptr_nonnull(A.link);
	ck_assert_ptr_nonnull(B.link);
	point_at(A.link, &B);
	point_at(B.link, &A);
	for (int i = 0; i < 300 && !both; i++) {
		run_until(&A.ready, 10);
		both = A.ready && B.ready;
	}
	ck_assert_msg(A.ready && B.ready, "transports not ready");
	ck_assert(agent_transport_ready(A.t));
	ck_assert_int_lt(agent_transport_handshake_ms(A.t), 5000);
}

static void
setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	side_init(&A);
	side_init(&B);
	rebind_at = rebound = 0;
	bulk = malloc(BULK);
	RAND_bytes(bulk, BULK);
}

static void
side_free(side *s)
{
	if (s->bev)
		bufferevent_free(s->bev);
	while (s->a.ntransports)
		agent_transport_free(s->a.transports[0]);
	while (s->a.nlinks)
		agent_link_free(s->a.links[0]);
	agent_udp_close(&s->a);
	mp_identity_free(s->a.id);
	evbuffer_free(s->got);
}

static void
teardown(void)
{
	side_free(&A);
	side_free(&B);
	free(bulk);
	event_base_free(base);
}

static void
client_read(struct bufferevent *bev, void *arg)
{
	evbuffer_add_buffer(A.got, bufferevent_get_input(bev));
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_ERROR)
		A.dgrams = -1;          /* not used by the stream tests: "reset seen" */
	if (what & BEV_EVENT_EOF) {
		A.eof = 1;
		agent_transport_close(A.t);
	}
}

/* Sends BULK bytes through an echo on B and checks them coming back. */
static void
bulk_echo(void)
{
	A.bev = agent_transport_open_stream(A.t);
	ck_assert_ptr_nonnull(A.bev);
	bufferevent_setcb(A.bev, client_read, NULL, client_event, NULL);
	bufferevent_enable(A.bev, EV_READ | EV_WRITE);
	bufferevent_write(A.bev, bulk, BULK);
	bufferevent_flush(A.bev, EV_WRITE, BEV_FINISHED);
	ck_assert_msg(run_until(&A.closed, 20000), "client not closed (echoed %zu, got %zu)", B.echoed,
	              evbuffer_get_length(A.got));
	ck_assert(A.eof);
	ck_assert_uint_eq(evbuffer_get_length(A.got), BULK);
	ck_assert(memcmp(evbuffer_pullup(A.got, -1), bulk, BULK) == 0);
	ck_assert_int_eq(A.end, AGENT_TRANSPORT_CLOSED);
	ck_assert(run_until(&B.closed, 3000));
	ck_assert_int_eq(B.end, AGENT_TRANSPORT_PEER_CLOSED);
}

START_TEST(bulk_echo_and_clean_close)
{
	connect_sides();
	bulk_echo();
}
END_TEST

/* A stream freed right after its FINISHED ends with its data and a FIN,
 * not a reset: the transport's end of the pair learns of the FINISHED
 * only through a deferred callback, after the free. */
START_TEST(finished_then_freed_is_not_reset)
{
	connect_sides();
	answer_and_free = 1;
	A.bev = agent_transport_open_stream(A.t);
	ck_assert_ptr_nonnull(A.bev);
	bufferevent_setcb(A.bev, client_read, NULL, client_event, NULL);
	bufferevent_enable(A.bev, EV_READ | EV_WRITE);
	bufferevent_write(A.bev, "open", 4);
	ck_assert_msg(run_until(&A.eof, 5000), "no end of stream (reset: %d)", A.dgrams == -1);
	ck_assert_int_eq(A.dgrams, 0);
	ck_assert_uint_eq(evbuffer_get_length(A.got), 7);
	ck_assert(memcmp(evbuffer_pullup(A.got, -1), "refused", 7) == 0);
	answer_and_free = 0;
}
END_TEST

/* An application that writes a lot, finishes and frees its end at once
 * (a pipe whose source ended) loses nothing: the echo freed right after
 * its FINISHED still delivers every byte before the FIN. */
START_TEST(finished_and_freed_keeps_every_byte)
{
	connect_sides();
	free_after_finish = 1;
	bulk_echo();
	free_after_finish = 0;
}
END_TEST

START_TEST(datagrams)
{
	int i;

	connect_sides();
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(agent_transport_send_datagram(A.t, (const uint8_t *)"ping", 5), MP_OK);
	ck_assert_int_eq(agent_transport_send_datagram(A.t, bulk, AGENT_DATAGRAM_MAX + 1), MP_ERR_TOOBIG);
	for (i = 0; i < 100 && B.dgrams < 3; i++)
		run_until(&B.closed, 10);
	ck_assert_int_eq(B.dgram_ok, 3);
}
END_TEST

/* mover's NAT gives it a new mapping a quarter into the echo: the
 * other side must follow it to the new port (its transport may be closed
 * by then, but its connection still knows the last path). */
static void
rebinding(side *mover, side *other)
{
	char before[64], after[64];

	connect_sides();
	ck_assert_int_eq(agent_transport_peer_addr(other->t, before, sizeof before), MP_OK);
	rebind_at = BULK / 4;
	rebind_side = mover;
	bulk_echo();
	ck_assert(rebound);
	ck_assert_int_eq(agent_transport_peer_addr(other->t, after, sizeof after), MP_OK);
	ck_assert_str_ne(before, after);
}

START_TEST(client_nat_rebinding)
{
	rebinding(&A, &B);
}
END_TEST

START_TEST(server_nat_rebinding)
{
	rebinding(&B, &A);
}
END_TEST

START_TEST(dead_peer_detected)
{
	struct timespec t0, t1;
	long ms;

	A.opts.idle_timeout_ms = 1500;
	connect_sides();
	/* B dies without a word: no socket, no transport */
	event_del(B.a.udp_ev);
	close(B.a.udp_fd);
	B.a.udp_fd = -1;
	agent_transport_free(B.t);
	B.t = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert(run_until(&A.closed, 5000));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_int_eq(A.end, AGENT_TRANSPORT_TIMEOUT);
	ck_assert_int_le(ms, 2500);
}
END_TEST

static Suite *
transport_suite(void)
{
	Suite *s = suite_create("transport");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, bulk_echo_and_clean_close);
	tcase_add_test(tc, finished_then_freed_is_not_reset);
	tcase_add_test(tc, finished_and_freed_keeps_every_byte);
	tcase_add_test(tc, datagrams);
	tcase_add_test(tc, client_nat_rebinding);
	tcase_add_test(tc, server_nat_rebinding);
	tcase_add_test(tc, dead_peer_detected);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(transport_suite)
