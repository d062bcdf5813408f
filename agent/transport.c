/*
 * transport.c - QUIC (ngtcp2 + GnuTLS) over a punched path (transport.h).
 *
 * Packets: udp.c hands every datagram that is neither STUN nor a punch
 * packet to agent_transport_dispatch(), which finds the connection by
 * the Destination Connection ID (all our IDs start with the transport's
 * 4-byte tag), or, for a server still waiting for the client's first
 * Initial, by the link's proven path.  Outgoing packets go out on the
 * agent's socket to the address ngtcp2 names, which follows a migration.
 *
 * Why our connection IDs never begin with 'P' (0x50): a punch packet
 * starts with "MPK\x01", and 'M' (0x4D) has the QUIC fixed bit (0x40)
 * and the short-header form, so a short-header QUIC packet to us would
 * be its first byte followed by our DCID; with a DCID that cannot start
 * with "PK\x01" the two kinds of packet can never be mistaken.
 *
 * Streams: each QUIC stream is a bufferevent pair; we keep one end
 * ("ours"), the application the other.  Bytes the application writes
 * are copied from our end into a list of fixed chunks that never move
 * (ngtcp2 keeps pointers to unacknowledged stream data for
 * retransmission) and freed as acknowledgements arrive; at most
 * SEND_BUFFER bytes per stream are taken, the rest waits in the pair
 * (backpressure).  Bytes from the peer are written to our end; its
 * output buffer's drain callback credits QUIC flow control only as the
 * application's end takes them in.
 *
 * Everything that calls back into the application (on_ready, on_stream,
 * on_closed) runs after ngtcp2 has returned, never from inside it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keys_priv.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/netif.h"
#include "transport.h"

#define CID_LEN 12
#define TAG_LEN 4
#define CHUNK_SIZE 16384
#define SEND_BUFFER (1024 * 1024)
#define MAX_PKT 1500
#define PKTS_PER_RUN 64
#define SOCKET_BUFFER (2 * 1024 * 1024)
#define GSO_MAX 40              /* segments per send: 40 * 1500 < 64 KB */
#define CLOSE_WAIT_MS 3000
#define MAX_QUEUED_DGRAMS 64
#define ALPN "mailpunch/1"
/* CONNECTION_CLOSE application error codes: 0 done, 1 going away */
#define APP_GOING_AWAY 1
#define PRIORITY "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:" \
	"-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:" \
	"-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+SIGN-EDDSA-ED25519"

typedef struct chunk {
	struct chunk *next;
	size_t len;
	uint8_t data[CHUNK_SIZE];
} chunk;

typedef struct tstream {
	agent_transport *t;
	struct tstream *next;
	int64_t id;
	struct bufferevent *ours;
	struct evbuffer_cb_entry *drain_cb;
	/* Stream offsets: base <= acked <= sent <= total.  The chunks hold
	 * [base, total); each but the last is full. */
	chunk *head, *tail;
	uint64_t base, acked, sent, total;
	chunk *cur;             /* the chunk holding offset sent (a hint) ... */
	uint64_t cur_base;      /* ... starting at this offset */
	struct evbuffer *early; /* from the peer before on_stream: held back */
	int early_fin;
	int app_fin;            /* the application finished writing */
	int fin_sent, peer_fin, closed, app_gone, announced, blocked;
	int orphaned;           /* app end freed before its EOF reached us */
	int read_paused;        /* our end reads nothing: send buffer full */
	uint64_t stop_wait_ns;  /* since when our STOP_SENDING waits for acks */
} tstream;

typedef struct dgram {
	size_t len;
	uint8_t data[AGENT_DATAGRAM_MAX];
} dgram;

struct agent_transport {
	agent *a;
	agent_link *link;
	int fd;                 /* the socket the link's path was found on */
	agent_transport_hooks hooks;
	agent_transport_opts opts;
	int server;
	uint8_t tag[TAG_LEN];
	ngtcp2_conn *conn;
	ngtcp2_crypto_conn_ref conn_ref;
	gnutls_session_t tls;
	gnutls_certificate_credentials_t cred;
	struct sockaddr_storage local, remote;
	socklen_t local_len, remote_len;
	/* client: where the server's packets come from now, when its NAT
	 * rebound (QUIC servers do not migrate; see moved_server) */
	struct sockaddr_storage server_now;
	socklen_t server_now_len;
	struct event *timer, *pump_ev, *notify_ev, *close_timer, *reap_ev;
	tstream *streams, *rr;
	/* packets of one pump run, sent together (UDP GSO) */
	uint8_t *batch;
	size_t batch_len, batch_seg, batch_n;
	struct sockaddr_storage batch_to, batch_path;   /* where to; ngtcp2's remote */
	socklen_t batch_tolen, batch_pathlen;
	dgram dgrams[MAX_QUEUED_DGRAMS];
	size_t dg_head, dg_count;
	struct timespec started;
	long handshake_ms;
	int ready, ready_told, wrong_key, close_wanted, finished, told_closed;
	agent_transport_end end;
	char reason[256];
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pump(agent_transport *t);
static void finish(agent_transport *t, agent_transport_end end, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------- registry */

static int
add_to_agent(agent_transport *t)
{
	agent *a = t->a;

	if (a->ntransports == AGENT_MAX_LINKS)
		return -1;
	a->transports[a->ntransports++] = t;
	return 0;
}

static void
remove_from_agent(agent_transport *t)
{
	agent *a = t->a;
	size_t i;

	for (i = 0; i < a->ntransports; i++) {
		if (a->transports[i] == t) {
			a->transports[i] = a->transports[--a->ntransports];
			return;
		}
	}
}

/* ---------------------------------------------------------------- TLS */

/* Self-signed X.509 certificate for our Ed25519 identity key, made in
 * memory: TLS needs a certificate, the peer needs only its key. */
static int
make_credentials(agent_transport *t)
{
	EVP_PKEY *pk = mp_identity_sign_pkey(t->a->id);
	uint8_t priv[32], pub[32];
	size_t plen = sizeof priv, ulen = sizeof pub;
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t x, k;
	uint8_t serial[8];
	time_t now = time(NULL);
	int rc = -1;

	if (EVP_PKEY_get_raw_private_key(pk, priv, &plen) != 1 || EVP_PKEY_get_raw_public_key(pk, pub, &ulen) != 1)
		goto out;
	x.data = pub;
	x.size = sizeof pub;
	k.data = priv;
	k.size = sizeof priv;
	RAND_bytes(serial, sizeof serial);
	serial[0] &= 0x7f;
	if (gnutls_x509_privkey_init(&key) < 0 ||
	    gnutls_x509_privkey_import_ecc_raw(key, GNUTLS_ECC_CURVE_ED25519, &x, NULL, &k) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof serial) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + 86400 * 365) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, t->a->uid_text,
	                                  (unsigned)strlen(t->a->uid_text)) < 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 || gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA512, 0) < 0 ||
	    gnutls_certificate_allocate_credentials(&t->cred) < 0 ||
	    gnutls_certificate_set_x509_key(t->cred, &crt, 1, key) < 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(priv, sizeof priv);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	return rc;
}

/* Test hook: MAILPUNCH_TEST_WRONG_KEY=1 makes us present a freshly made
 * key instead of our identity, so the tests see the peer refuse it.
 * Compiled in only with -DMAILPUNCH_TEST_HOOKS (never in a release). */
#ifdef MAILPUNCH_TEST_HOOKS
static int
make_wrong_credentials(agent_transport *t)
{
	mp_identity *other = NULL, *mine = t->a->id;
	int rc;

	if (mp_identity_generate(&other) != MP_OK)
		return -1;
	t->a->id = other;
	rc = make_credentials(t);
	t->a->id = mine;
	mp_identity_free(other);
	return rc;
}
#endif

/* Pins the peer: its certificate must carry the identity key of the
 * peer the link proved.  Nothing else in the certificate matters. */
static int
verify_peer(gnutls_session_t session)
{
	ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(session);
	agent_transport *t = ref->user_data;
	const mp_pubid *want = agent_link_peer(t->link);
	const gnutls_datum_t *certs;
	unsigned n = 0;
	gnutls_pubkey_t pk = NULL;
	gnutls_datum_t x = { NULL, 0 };
	gnutls_ecc_curve_t curve;
	int ok = 0;

	certs = gnutls_certificate_get_peers(session, &n);
	if (certs && n >= 1 && gnutls_pubkey_init(&pk) >= 0 &&
	    gnutls_pubkey_import_x509_raw(pk, &certs[0], GNUTLS_X509_FMT_DER, 0) >= 0 &&
	    gnutls_pubkey_get_pk_algorithm(pk, NULL) == GNUTLS_PK_EDDSA_ED25519 &&
	    gnutls_pubkey_export_ecc_raw(pk, &curve, &x, NULL) >= 0 && x.size == MP_KEY_LEN)
		ok = CRYPTO_memcmp(x.data, want->sign_pub, MP_KEY_LEN) == 0;
	gnutls_free(x.data);
	if (pk)
		gnutls_pubkey_deinit(pk);
	if (!ok) {
		t->wrong_key = 1;
		return GNUTLS_E_CERTIFICATE_ERROR;
	}
	return 0;
}

static ngtcp2_conn *
get_conn(ngtcp2_crypto_conn_ref *ref)
{
	return ((agent_transport *)ref->user_data)->conn;
}

static int
setup_tls(agent_transport *t)
{
	gnutls_datum_t alpn = { (unsigned char *)ALPN, sizeof ALPN - 1 };
	int rc;

#ifdef MAILPUNCH_TEST_HOOKS
	const char *wrong = getenv("MAILPUNCH_TEST_WRONG_KEY");

	rc = wrong && *wrong == '1' ? make_wrong_credentials(t) : make_credentials(t);
#else
	rc = make_credentials(t);
#endif
	if (rc != 0)
		return -1;
	if (gnutls_init(&t->tls, (t->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_END_OF_EARLY_DATA) < 0)
		return -1;
	if ((t->server ? ngtcp2_crypto_gnutls_configure_server_session(t->tls)
	               : ngtcp2_crypto_gnutls_configure_client_session(t->tls)) != 0 ||
	    gnutls_priority_set_direct(t->tls, PRIORITY, NULL) < 0 ||
	    gnutls_credentials_set(t->tls, GNUTLS_CRD_CERTIFICATE, t->cred) < 0 ||
	    gnutls_alpn_set_protocols(t->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY) < 0)
		return -1;
	if (t->server)
		gnutls_certificate_server_set_request(t->tls, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_function(t->tls, verify_peer);
	t->conn_ref.get_conn = get_conn;
	t->conn_ref.user_data = t;
	gnutls_session_set_ptr(t->tls, &t->conn_ref);
	return 0;
}

/* ---------------------------------------------------------------- streams */

static struct bufferevent *
app_end(tstream *s)
{
	return s->ours ? bufferevent_pair_get_partner(s->ours) : NULL;
}

static void
free_chunks(tstream *s)
{
	while (s->head) {
		chunk *c = s->head;

		s->head = c->next;
		free(c);
	}
	s->tail = s->cur = NULL;
	s->base = s->acked = s->sent = s->total;
}

static size_t
buffered(const tstream *s)
{
	return (size_t)(s->total - s->acked);
}

static size_t
unsent(const tstream *s)
{
	return (size_t)(s->total - s->sent);
}

static void
stream_free(tstream *s)
{
	agent_transport *t = s->t;
	tstream **pp;

	for (pp = &t->streams; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	if (t->rr == s)
		t->rr = NULL;
	free_chunks(s);
	if (s->early)
		evbuffer_free(s->early);
	if (!s->announced && app_end(s))
		bufferevent_free(app_end(s));
	if (s->ours) {
		evbuffer_remove_cb_entry(bufferevent_get_output(s->ours), s->drain_cb);
		bufferevent_free(s->ours);
	}
	free(s);
}

/* Takes what the application wrote, up to SEND_BUFFER unacknowledged;
 * says how many bytes it took. */
static size_t
pull_from_app(tstream *s)
{
	struct evbuffer *in;
	size_t took = 0;

	if (!s->ours || s->fin_sent || s->closed)
		return 0;
	in = bufferevent_get_input(s->ours);
	while (buffered(s) < SEND_BUFFER && evbuffer_get_length(in) > 0) {
		size_t room;
		int n;

		if (!s->tail || s->tail->len == CHUNK_SIZE) {
			chunk *c = malloc(sizeof *c);

			if (!c)
				break;
			c->next = NULL;
			c->len = 0;
			if (s->tail)
				s->tail->next = c;
			else
				s->head = c;
			s->tail = c;
		}
		room = CHUNK_SIZE - s->tail->len;
		n = evbuffer_remove(in, s->tail->data + s->tail->len, room);
		if (n <= 0)
			break;
		s->tail->len += (size_t)n;
		s->total += (size_t)n;
		took += (size_t)n;
	}
	/* With the send buffer full, the pair would run our read callback
	 * again and again for the bytes it cannot hand over (millions of
	 * empty calls per 256 MB, measured): it rests until acknowledgements
	 * make room.  Its EOF still comes (a flush ignores this). */
	if (buffered(s) >= SEND_BUFFER && evbuffer_get_length(in) > 0) {
		if (!s->read_paused) {
			s->read_paused = 1;
			bufferevent_disable(s->ours, EV_READ);
		}
	} else if (s->read_paused) {
		s->read_paused = 0;
		bufferevent_enable(s->ours, EV_READ);
	}
	return took;
}

/* The peer's FIN, after every byte it ended: a pair's flush moves only
 * up to the application's read high-water mark and raises EOF at once,
 * so an application that stops at EOF would lose the rest.  The first
 * flush fills the application's input to its mark; past it, the second
 * moves everything left (bounded by the stream's flow-control window). */
static void
pass_fin(tstream *s)
{
	bufferevent_flush(s->ours, EV_WRITE, BEV_FLUSH);
	bufferevent_flush(s->ours, EV_WRITE, BEV_FINISHED);
}

static void
schedule_pump(agent_transport *t)
{
	if (t->pump_ev && !t->finished)
		event_active(t->pump_ev, 0, 0);
}

static void
ours_read(struct bufferevent *bev, void *arg)
{
	tstream *s = arg;
	agent_transport *t = s->t;

	/* A pump is due only for new bytes that could go out now.  With the
	 * congestion window full, packets are in flight and their ACKs (or
	 * the loss timer) pump anyway; pumping on every refill of the pair
	 * was most of a bulk sender's work (a quarter of a million empty
	 * pump runs for 256 MB, measured). */
	if (pull_from_app(s) && (!t->conn || ngtcp2_conn_get_cwnd_left(t->conn) > 0))
		schedule_pump(t);
}

static void
ours_event(struct bufferevent *bev, short what, void *arg)
{
	tstream *s = arg;

	/* the application's bufferevent_flush(BEV_FINISHED): FIN after its data */
	if (what & BEV_EVENT_EOF) {
		s->app_fin = 1;
		pull_from_app(s);
		schedule_pump(s->t);
	}
}

/* The application took n bytes in: let the peer send that much more. */
static void
ours_output_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	tstream *s = arg;
	agent_transport *t = s->t;

	if (!info->n_deleted || !t->conn || t->finished)
		return;
	if (!s->closed)
		ngtcp2_conn_extend_max_stream_offset(t->conn, s->id, info->n_deleted);
	ngtcp2_conn_extend_max_offset(t->conn, info->n_deleted);
	schedule_pump(t);
}

static tstream *
stream_new(agent_transport *t, int64_t id, struct bufferevent **app)
{
	struct bufferevent *pair[2];
	tstream *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	if (bufferevent_pair_new(t->a->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair) != 0) {
		free(s);
		return NULL;
	}
	s->t = t;
	s->id = id;
	s->ours = pair[0];
	*app = pair[1];
	bufferevent_setcb(s->ours, ours_read, NULL, ours_event, s);
	/* No read high-water mark on our end: the application is held back
	 * by our end not reading while the send buffer is full
	 * (pull_from_app).  With a mark, the application's final flush
	 * (BEV_FINISHED) moves only up to it, and an application that frees
	 * its end right after the flush loses the rest: a truncated stream
	 * that still ends with FIN. */
	bufferevent_setwatermark(*app, EV_READ, 0, AGENT_STREAM_WINDOW);
	bufferevent_enable(s->ours, EV_READ | EV_WRITE);
	bufferevent_enable(*app, EV_READ | EV_WRITE);
	s->drain_cb = evbuffer_add_cb(bufferevent_get_output(s->ours), ours_output_drained, s);
	if (!s->drain_cb) {
		bufferevent_free(*app);
		bufferevent_free(s->ours);
		free(s);
		return NULL;
	}
	s->next = t->streams;
	t->streams = s;
	return s;
}

/* Tells the application its stream failed, if it still listens. */
static void
stream_error(tstream *s)
{
	struct bufferevent *app = app_end(s);

	if (app && !s->peer_fin)
		bufferevent_trigger_event(app, BEV_EVENT_ERROR | BEV_EVENT_READING, BEV_TRIG_DEFER_CALLBACKS);
	s->peer_fin = 1;
}

/* An application that freed its end without FINISHED gave up: reset.
 * Our end's callbacks are deferred, so the EOF of a FINISHED just before
 * the free may not have reached ours_event yet: a freed end is judged
 * only after reap_ev, when every deferred callback has run. */
static void
reap_abandoned(agent_transport *t)
{
	tstream *s, *next;
	struct timeval soon = { 0, 10000 };

	for (s = t->streams; s; s = next) {
		next = s->next;
		if (s->app_gone || app_end(s))
			continue;
		if (!s->app_fin && s->orphaned < 2) {
			if (!s->orphaned) {
				s->orphaned = 1;
				if (t->reap_ev && !evtimer_pending(t->reap_ev, NULL))
					evtimer_add(t->reap_ev, &soon);
			}
			continue;
		}
		/* finished, but the peer still sends: its STOP_SENDING waits
		 * until our data and FIN are acknowledged (ngtcp2 resets the
		 * write side along with a read shutdown, and a reset cancels the
		 * retransmission of what was lost) */
		if (s->app_fin && !s->peer_fin && !s->closed && t->conn &&
		    (!s->fin_sent || s->acked < s->total)) {
			/* ... but not for ever: a peer blocked by flow control may
			 * send nothing that would wake us, so look again soon, and
			 * after a second stop it anyway */
			struct timeval again = { 0, 100000 };
			ngtcp2_tstamp now = now_ns();

			if (!s->stop_wait_ns)
				s->stop_wait_ns = now;
			if (now - s->stop_wait_ns < 1000000000ull) {
				if (t->reap_ev && !evtimer_pending(t->reap_ev, NULL))
					evtimer_add(t->reap_ev, &again);
				continue;
			}
		}
		s->app_gone = 1;
		/* what nobody will read: its flow-control credit goes back to
		 * the connection (the drain callback) */
		if (s->ours)
			evbuffer_drain(bufferevent_get_output(s->ours),
			               evbuffer_get_length(bufferevent_get_output(s->ours)));
		if (!s->closed && t->conn) {
			if (!s->app_fin)
				ngtcp2_conn_shutdown_stream(t->conn, s->id, 1);
			else if (!s->peer_fin)
				ngtcp2_conn_shutdown_stream_read(t->conn, s->id, 1);
		}
		if (s->closed)
			stream_free(s);
	}
}

/* ---------------------------------------------------------------- ngtcp2 callbacks */

static void
rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
	RAND_bytes(dest, (int)len);
}

static void
make_cid(agent_transport *t, uint8_t *out, size_t len)
{
	memcpy(out, t->tag, TAG_LEN);
	RAND_bytes(out + TAG_LEN, (int)(len - TAG_LEN));
}

static int
new_cid_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *ud)
{
	agent_transport *t = ud;
	uint8_t b[NGTCP2_MAX_CIDLEN];

	if (cidlen < TAG_LEN || cidlen > sizeof b)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	make_cid(t, b, cidlen);
	ngtcp2_cid_init(cid, b, cidlen);
	RAND_bytes(token, NGTCP2_STATELESS_RESET_TOKENLEN);
	return 0;
}

static int
handshake_done_cb(ngtcp2_conn *conn, void *ud)
{
	agent_transport *t = ud;

	/* the client is sure the server took its key only when the server
	 * confirms the handshake; the server knows at completion */
	if (t->server)
		t->ready = 1;
	return 0;
}

static int
handshake_confirmed_cb(ngtcp2_conn *conn, void *ud)
{
	((agent_transport *)ud)->ready = 1;
	return 0;
}

static int
stream_open_cb(ngtcp2_conn *conn, int64_t id, void *ud)
{
	agent_transport *t = ud;
	struct bufferevent *app;
	tstream *s;

	if (!ngtcp2_conn_is_local_stream(conn, id) && (id & 2)) {
		/* unidirectional streams are not part of our protocol */
		ngtcp2_conn_shutdown_stream_read(conn, id, 1);
		return 0;
	}
	if (!(s = stream_new(t, id, &app)))
		return NGTCP2_ERR_CALLBACK_FAILURE;
	/* handed to on_stream once ngtcp2 has returned */
	s->announced = 0;
	ngtcp2_conn_set_stream_user_data(conn, id, s);
	/* keep the pointer in the pair: app_end() finds it again */
	(void)app;
	return 0;
}

static int
recv_stream_cb(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t offset, const uint8_t *data,
               size_t len, void *ud, void *sud)
{
	tstream *s = sud;
	struct bufferevent *app;

	if (!s)
		return 0;
	app = app_end(s);
	if (!app) {
		/* nobody reads: take it off the books at once */
		ngtcp2_conn_extend_max_stream_offset(conn, id, len);
		ngtcp2_conn_extend_max_offset(conn, len);
		return 0;
	}
	if (!s->announced) {
		/* the application has set no callbacks yet: keep it for on_stream */
		if (!s->early && !(s->early = evbuffer_new()))
			return NGTCP2_ERR_CALLBACK_FAILURE;
		if (len && evbuffer_add(s->early, data, len) != 0)
			return NGTCP2_ERR_CALLBACK_FAILURE;
		if (flags & NGTCP2_STREAM_DATA_FLAG_FIN) {
			s->peer_fin = 1;
			s->early_fin = 1;
		}
		return 0;
	}
	if (len && bufferevent_write(s->ours, data, len) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	if (flags & NGTCP2_STREAM_DATA_FLAG_FIN) {
		s->peer_fin = 1;
		pass_fin(s);
	}
	return 0;
}

static int
acked_cb(ngtcp2_conn *conn, int64_t id, uint64_t offset, uint64_t len, void *ud, void *sud)
{
	tstream *s = sud;

	if (!s || !s->head)
		return 0;
	/* ngtcp2 reports the acknowledged prefix of the stream, in order:
	 * full chunks wholly below it are needed no more */
	if (offset + len > s->acked)
		s->acked = offset + len > s->sent ? s->sent : offset + len;
	while (s->head && s->head->len == CHUNK_SIZE && s->acked >= s->base + CHUNK_SIZE) {
		chunk *c = s->head;

		s->head = c->next;
		if (s->tail == c)
			s->tail = NULL;
		if (s->cur == c)
			s->cur = NULL;
		s->base += CHUNK_SIZE;
		free(c);
	}
	return 0;
}

static int
stream_close_cb(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t code, void *ud, void *sud)
{
	agent_transport *t = ud;
	tstream *s = sud;

	if (!ngtcp2_conn_is_local_stream(conn, id))
		ngtcp2_conn_extend_max_streams_bidi(conn, 1);
	if (!s)
		return 0;
	s->closed = 1;
	free_chunks(s);
	if (!s->peer_fin) {
		stream_error(s);
	} else if (!s->app_fin) {
		/* everything came in, but the peer stopped our sending
		 * (STOP_SENDING: ngtcp2 answers it and closes the stream with no
		 * callback of its own): the application's writes go nowhere */
		struct bufferevent *app = app_end(s);

		if (app)
			bufferevent_trigger_event(app, BEV_EVENT_ERROR | BEV_EVENT_WRITING, BEV_TRIG_DEFER_CALLBACKS);
	}
	if (!app_end(s) && s->announced)
		s->app_gone = 1;
	(void)t;
	return 0;
}

static int
stream_reset_cb(ngtcp2_conn *conn, int64_t id, uint64_t final, uint64_t code, void *ud, void *sud)
{
	tstream *s = sud;

	if (s)
		stream_error(s);
	return 0;
}

static int
stop_sending_cb(ngtcp2_conn *conn, int64_t id, uint64_t code, void *ud, void *sud)
{
	tstream *s = sud;

	/* the peer reads no more: stop writing, drop what is buffered, and
	 * tell the application its writes go nowhere */
	ngtcp2_conn_shutdown_stream_write(conn, id, code);
	if (s) {
		struct bufferevent *app = app_end(s);

		free_chunks(s);
		s->fin_sent = 1;
		if (app)
			bufferevent_trigger_event(app, BEV_EVENT_ERROR | BEV_EVENT_WRITING, BEV_TRIG_DEFER_CALLBACKS);
	}
	return 0;
}

static int
extend_stream_cb(ngtcp2_conn *conn, int64_t id, uint64_t max, void *ud, void *sud)
{
	tstream *s = sud;

	if (s)
		s->blocked = 0;
	return 0;
}

static int
recv_datagram_cb(ngtcp2_conn *conn, uint32_t flags, const uint8_t *data, size_t len, void *ud)
{
	agent_transport *t = ud;

	if (t->hooks.on_datagram)
		t->hooks.on_datagram(t, data, len, t->hooks.arg);
	return 0;
}

/* Packets that decrypted (and so came from the peer: only it has the
 * keys), for moved_server.  One event loop, one thread: a counter does. */
static unsigned long decrypted;

static int
counting_decrypt(uint8_t *dest, const ngtcp2_crypto_aead *aead, const ngtcp2_crypto_aead_ctx *aead_ctx,
                 const uint8_t *ciphertext, size_t ciphertextlen, const uint8_t *nonce, size_t noncelen,
                 const uint8_t *aad, size_t aadlen)
{
	int rv = ngtcp2_crypto_decrypt_cb(dest, aead, aead_ctx, ciphertext, ciphertextlen, nonce, noncelen, aad,
	                                  aadlen);

	if (rv == 0)
		decrypted++;
	return rv;
}

static void
fill_callbacks(ngtcp2_callbacks *cb, int server)
{
	memset(cb, 0, sizeof *cb);
	if (server) {
		cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
	} else {
		cb->client_initial = ngtcp2_crypto_client_initial_cb;
		cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
	}
	cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
	cb->encrypt = ngtcp2_crypto_encrypt_cb;
	cb->decrypt = counting_decrypt;
	cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
	cb->update_key = ngtcp2_crypto_update_key_cb;
	cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
	cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
	cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
	cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
	cb->rand = rand_cb;
	cb->get_new_connection_id = new_cid_cb;
	cb->handshake_completed = handshake_done_cb;
	cb->handshake_confirmed = handshake_confirmed_cb;
	cb->stream_open = stream_open_cb;
	cb->recv_stream_data = recv_stream_cb;
	cb->acked_stream_data_offset = acked_cb;
	cb->stream_close = stream_close_cb;
	cb->stream_reset = stream_reset_cb;
	cb->stream_stop_sending = stop_sending_cb;
	cb->extend_max_stream_data = extend_stream_cb;
	cb->recv_datagram = recv_datagram_cb;
}

/* ---------------------------------------------------------------- connection */

static void debug_printf(void *ud, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
debug_printf(void *ud, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
fill_params(agent_transport *t, ngtcp2_settings *set, ngtcp2_transport_params *par)
{
	ngtcp2_settings_default(set);
	set->initial_ts = now_ns();
	set->handshake_timeout = (uint64_t)t->opts.idle_timeout_ms * NGTCP2_MILLISECONDS;
	set->max_stream_window = 16 * 1024 * 1024;
	set->max_window = 24 * 1024 * 1024;
	set->max_tx_udp_payload_size = 1452;   /* PMTUD probes up to here from 1200 */
	/* The default 333 ms (RFC 9002, for paths never seen) holds back the
	 * client's second flight by about RTT/15 through pacing (24 ms on
	 * loopback, measured).  This path was just crossed by the punch
	 * handshake; 100 ms covers most of them, and a longer one costs at
	 * most a spurious probe. */
	set->initial_rtt = 100 * NGTCP2_MILLISECONDS;
	if (getenv("MAILPUNCH_QUIC_DEBUG"))
		set->log_printf = debug_printf;
	ngtcp2_transport_params_default(par);
	par->initial_max_stream_data_bidi_local = AGENT_STREAM_WINDOW;
	par->initial_max_stream_data_bidi_remote = AGENT_STREAM_WINDOW;
	par->initial_max_data = 4 * AGENT_STREAM_WINDOW;
	par->initial_max_streams_bidi = 64;
	par->initial_max_streams_uni = 0;
	par->max_idle_timeout = (uint64_t)t->opts.idle_timeout_ms * NGTCP2_MILLISECONDS;
	par->max_datagram_frame_size = 65535;
	par->active_connection_id_limit = 4;
}

static int
conn_path(agent_transport *t, const struct sockaddr *remote, socklen_t rlen, ngtcp2_path *p)
{
	memset(p, 0, sizeof *p);
	p->local.addr = (ngtcp2_sockaddr *)&t->local;
	p->local.addrlen = t->local_len;
	p->remote.addr = (ngtcp2_sockaddr *)remote;
	p->remote.addrlen = rlen;
	return 0;
}

static int
start_conn(agent_transport *t, const ngtcp2_pkt_hd *client_hd)
{
	ngtcp2_callbacks cb;
	ngtcp2_settings set;
	ngtcp2_transport_params par;
	ngtcp2_cid dcid, scid;
	ngtcp2_path path;
	uint8_t b[CID_LEN], d[CID_LEN];
	int rv;

	if (setup_tls(t) != 0) {
		mp_log(MP_LOG_ERR, "transport: TLS setup failed");
		return -1;
	}
	fill_callbacks(&cb, t->server);
	fill_params(t, &set, &par);
	make_cid(t, b, sizeof b);
	ngtcp2_cid_init(&scid, b, sizeof b);
	conn_path(t, (struct sockaddr *)&t->remote, t->remote_len, &path);
	if (t->server) {
		par.original_dcid = client_hd->dcid;
		rv = ngtcp2_conn_server_new(&t->conn, &client_hd->scid, &scid, &path, client_hd->version, &cb, &set,
		                            &par, NULL, t);
	} else {
		RAND_bytes(d, sizeof d);
		ngtcp2_cid_init(&dcid, d, sizeof d);
		rv = ngtcp2_conn_client_new(&t->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &set, &par, NULL,
		                            t);
	}
	if (rv != 0) {
		mp_log(MP_LOG_ERR, "transport: %s", ngtcp2_strerror(rv));
		return -1;
	}
	ngtcp2_conn_set_tls_native_handle(t->conn, t->tls);
	ngtcp2_conn_set_keep_alive_timeout(t->conn, (uint64_t)t->opts.keepalive_ms * NGTCP2_MILLISECONDS);
	return 0;
}

static int
same_addr(const struct sockaddr *a, socklen_t alen, const struct sockaddr_storage *b, socklen_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* Where a packet for ngtcp2's remote address r really goes: the
 * server's new address after its NAT rebound (moved_server), or r. */
static void
dest_for(const agent_transport *t, const ngtcp2_addr *r, struct sockaddr_storage *to, socklen_t *tolen)
{
	if (t->server_now_len && same_addr((const struct sockaddr *)r->addr, r->addrlen, &t->remote, t->remote_len)) {
		memcpy(to, &t->server_now, t->server_now_len);
		*tolen = t->server_now_len;
	} else {
		memcpy(to, r->addr, r->addrlen);
		*tolen = r->addrlen;
	}
}

static void
send_packet(agent_transport *t, const ngtcp2_path *p, const uint8_t *buf, size_t len)
{
	int fd = t->fd;
	struct sockaddr_storage to;
	socklen_t tolen;

	dest_for(t, &p->remote, &to, &tolen);
	/* a full socket buffer is a lost packet: QUIC recovers and slows */
	if (fd >= 0)
		(void)sendto(fd, buf, len, 0, (struct sockaddr *)&to, tolen);
}

/* The kernel cuts one buffer into equal datagrams (UDP_SEGMENT): one
 * system call for up to GSO_MAX packets.  Kernels without it: one by one. */
static int gso_unsupported;

static void
batch_flush(agent_transport *t)
{
	int fd = t->fd;
	size_t off;

	if (!t->batch_n)
		return;
	if (fd >= 0 && t->batch_n > 1 && !gso_unsupported) {
		char ctrl[CMSG_SPACE(sizeof(uint16_t))];
		struct iovec iov = { t->batch, t->batch_len };
		struct msghdr mh;
		struct cmsghdr *cm;
		uint16_t seg = (uint16_t)t->batch_seg;

		memset(&mh, 0, sizeof mh);
		memset(ctrl, 0, sizeof ctrl);
		mh.msg_name = &t->batch_to;
		mh.msg_namelen = t->batch_tolen;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctrl;
		mh.msg_controllen = sizeof ctrl;
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_UDP;
		cm->cmsg_type = UDP_SEGMENT;
		cm->cmsg_len = CMSG_LEN(sizeof seg);
		memcpy(CMSG_DATA(cm), &seg, sizeof seg);
		if (sendmsg(fd, &mh, 0) >= 0 || (errno != EIO && errno != EINVAL && errno != ENOPROTOOPT)) {
			t->batch_len = t->batch_n = 0;
			return;
		}
		gso_unsupported = 1;
	}
	/* a full socket buffer is a lost packet: QUIC recovers and slows */
	for (off = 0; fd >= 0 && off < t->batch_len; off += t->batch_seg) {
		size_t len = t->batch_len - off < t->batch_seg ? t->batch_len - off : t->batch_seg;

		(void)sendto(fd, t->batch + off, len, 0, (struct sockaddr *)&t->batch_to, t->batch_tolen);
	}
	t->batch_len = t->batch_n = 0;
}

/* The packet of n bytes just written at batch + batch_len joins the batch. */
static void
batch_add(agent_transport *t, const ngtcp2_path *p, size_t n)
{
	const ngtcp2_addr *r = &p->remote;

	if (t->batch_n && (r->addrlen != t->batch_pathlen || memcmp(r->addr, &t->batch_path, r->addrlen) != 0 ||
	                   n > t->batch_seg)) {
		size_t prev = t->batch_len;

		batch_flush(t);
		memmove(t->batch, t->batch + prev, n);
	}
	if (!t->batch_n) {
		memcpy(&t->batch_path, r->addr, r->addrlen);
		t->batch_pathlen = r->addrlen;
		dest_for(t, r, &t->batch_to, &t->batch_tolen);
		t->batch_seg = n;
	}
	t->batch_len += n;
	t->batch_n++;
	/* a shorter packet can only be the last of a batch */
	if (n < t->batch_seg || t->batch_n == GSO_MAX)
		batch_flush(t);
}

static void
arm_timer(agent_transport *t)
{
	ngtcp2_tstamp exp, now;
	struct timeval tv = { 0, 0 };

	if (!t->conn || t->finished)
		return;
	exp = ngtcp2_conn_get_expiry(t->conn);
	if (exp == UINT64_MAX) {
		event_del(t->timer);
		return;
	}
	now = now_ns();
	if (exp > now) {
		uint64_t us = (exp - now + 999) / 1000;

		tv.tv_sec = (time_t)(us / 1000000);
		tv.tv_usec = (suseconds_t)(us % 1000000);
	}
	event_add(t->timer, &tv);
}

/* Sends CONNECTION_CLOSE carrying ccerr (best effort: one packet). */
static void
send_close(agent_transport *t, const ngtcp2_connection_close_error *ccerr)
{
	uint8_t buf[MAX_PKT];
	ngtcp2_path_storage ps;
	ngtcp2_pkt_info pi;
	ngtcp2_ssize n;

	if (!t->conn || ngtcp2_conn_is_in_closing_period(t->conn) || ngtcp2_conn_is_in_draining_period(t->conn))
		return;
	ngtcp2_path_storage_zero(&ps);
	n = ngtcp2_conn_write_connection_close(t->conn, &ps.path, &pi, buf, sizeof buf, ccerr, now_ns());
	if (n > 0)
		send_packet(t, &ps.path, buf, (size_t)n);
}

static void
fail_liberr(agent_transport *t, int rv)
{
	ngtcp2_connection_close_error ccerr;

	ngtcp2_connection_close_error_default(&ccerr);
	if (rv == NGTCP2_ERR_CRYPTO)
		ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, ngtcp2_conn_get_tls_alert(t->conn),
		                                                           NULL, 0);
	else
		ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rv, NULL, 0);
	send_close(t, &ccerr);
	if (t->wrong_key)
		finish(t, AGENT_TRANSPORT_WRONG_KEY, "peer presented the wrong identity key");
	else if (!t->ready)
		finish(t, AGENT_TRANSPORT_HANDSHAKE, "QUIC handshake failed: %s", ngtcp2_strerror(rv));
	else
		finish(t, AGENT_TRANSPORT_ERROR, "QUIC connection failed: %s", ngtcp2_strerror(rv));
}

static tstream *
next_sendable(agent_transport *t)
{
	tstream *s, *start = t->rr && t->rr->next ? t->rr->next : t->streams;

	s = start;
	if (!s)
		return NULL;
	do {
		if (!s->blocked && !s->closed && !s->fin_sent && (unsent(s) || s->app_fin)) {
			t->rr = s;
			return s;
		}
		s = s->next ? s->next : t->streams;
	} while (s != start);
	return NULL;
}

/* The unsent bytes as a vector of pieces of chunks. */
static size_t
stream_vec(tstream *s, ngtcp2_vec *v, size_t max)
{
	uint64_t at = s->cur ? s->cur_base : s->base;
	chunk *c = s->cur ? s->cur : s->head;
	size_t n = 0;

	/* start at the first chunk with unsent bytes, not at the oldest */
	while (c && c->next && at + c->len <= s->sent) {
		at += c->len;
		c = c->next;
	}
	s->cur = c;
	s->cur_base = at;
	for (; c && n < max; at += c->len, c = c->next) {
		if (at + c->len <= s->sent)
			continue;
		v[n].base = c->data + (s->sent > at ? s->sent - at : 0);
		v[n].len = (size_t)(at + c->len - (s->sent > at ? s->sent : at));
		n++;
	}
	return n;
}

static int
all_streams_done(agent_transport *t)
{
	tstream *s;

	for (s = t->streams; s; s = s->next)
		if (!s->closed && !s->app_gone)
			return 0;
	return 1;
}

static void
close_now(agent_transport *t)
{
	ngtcp2_connection_close_error ccerr;

	ngtcp2_connection_close_error_default(&ccerr);
	ngtcp2_connection_close_error_set_application_error(&ccerr, 0, NULL, 0);
	send_close(t, &ccerr);
	finish(t, AGENT_TRANSPORT_CLOSED, "connection closed");
}

/* Writes every packet ngtcp2 has for us, within congestion control. */
static void
pump(agent_transport *t)
{
	uint8_t *buf;
	ngtcp2_path_storage ps;
	ngtcp2_pkt_info pi;
	ngtcp2_tstamp ts = now_ns();
	size_t npkts = 0;
	tstream *s;

	if (!t->conn || t->finished || ngtcp2_conn_is_in_closing_period(t->conn) ||
	    ngtcp2_conn_is_in_draining_period(t->conn))
		return;
	reap_abandoned(t);
	for (s = t->streams; s; s = s->next) {
		s->blocked = 0;
		pull_from_app(s);
	}
	ngtcp2_path_storage_zero(&ps);
	while (npkts < PKTS_PER_RUN) {
		ngtcp2_ssize n, datalen = -1;
		ngtcp2_vec v[16];
		size_t nv = 0;
		uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
		int64_t id = -1;

		buf = t->batch + t->batch_len;
		if (t->ready && t->dg_count) {
			dgram *d = &t->dgrams[t->dg_head];
			ngtcp2_vec dv = { d->data, d->len };
			int accepted = 0;

			n = ngtcp2_conn_writev_datagram(t->conn, &ps.path, &pi, buf, MAX_PKT, &accepted,
			                                NGTCP2_WRITE_DATAGRAM_FLAG_MORE, 0, &dv, 1, ts);
			if (accepted || n == NGTCP2_ERR_INVALID_ARGUMENT || n == NGTCP2_ERR_INVALID_STATE) {
				t->dg_head = (t->dg_head + 1) % MAX_QUEUED_DGRAMS;
				t->dg_count--;
			}
			if (n == NGTCP2_ERR_WRITE_MORE || n == NGTCP2_ERR_INVALID_ARGUMENT ||
			    n == NGTCP2_ERR_INVALID_STATE)
				continue;
			if (n < 0) {
				fail_liberr(t, (int)n);
				return;
			}
			if (n == 0)
				break;
			batch_add(t, &ps.path, (size_t)n);
			npkts++;
			continue;
		}
		if (t->ready && (s = next_sendable(t))) {

			size_t covered = 0, i;

			id = s->id;
			nv = stream_vec(s, v, 16);
			for (i = 0; i < nv; i++)
				covered += v[i].len;
			if (s->app_fin && covered == unsent(s) && evbuffer_get_length(bufferevent_get_input(s->ours)) == 0)
				flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
		} else {
			s = NULL;
		}
		n = ngtcp2_conn_writev_stream(t->conn, &ps.path, &pi, buf, MAX_PKT, &datalen, flags, id, v, nv, ts);
		if (s && datalen >= 0) {
			s->sent += (uint64_t)datalen;
			if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && unsent(s) == 0)
				s->fin_sent = 1;
		}
		if (n < 0) {
			if (n == NGTCP2_ERR_WRITE_MORE)
				continue;
			if (s && (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR ||
			          n == NGTCP2_ERR_STREAM_NOT_FOUND)) {
				s->blocked = 1;
				if (n != NGTCP2_ERR_STREAM_DATA_BLOCKED)
					s->fin_sent = 1;
				continue;
			}
			t->batch_len = t->batch_n = 0;
			fail_liberr(t, (int)n);
			return;
		}
		if (n == 0)
			break;
		batch_add(t, &ps.path, (size_t)n);
		npkts++;
	}
	batch_flush(t);
	ngtcp2_conn_update_pkt_tx_time(t->conn, ts);
	if (npkts == PKTS_PER_RUN)
		schedule_pump(t);       /* more to send: after pending reads */
	for (s = t->streams; s; s = s->next)
		pull_from_app(s);
	if (t->close_wanted && all_streams_done(t)) {
		close_now(t);
		return;
	}
	arm_timer(t);
}

/* ---------------------------------------------------------------- events */

static void
notify(agent_transport *t)
{
	if (!t->finished && t->notify_ev)
		event_active(t->notify_ev, 0, 0);
}

static int
find_stream(agent_transport *t, tstream *want)
{
	tstream *s;

	for (s = t->streams; s; s = s->next)
		if (s == want)
			return 1;
	return 0;
}

/* What the peer sent before the application took the stream. */
static void
deliver_early(agent_transport *t, tstream *s)
{
	size_t n = s->early ? evbuffer_get_length(s->early) : 0;

	if (app_end(s)) {
		if (n)
			bufferevent_write_buffer(s->ours, s->early);
		if (s->early_fin)
			pass_fin(s);
	} else if (n && t->conn) {
		/* refused: nobody will read it */
		ngtcp2_conn_extend_max_stream_offset(t->conn, s->id, n);
		ngtcp2_conn_extend_max_offset(t->conn, n);
		evbuffer_drain(s->early, n);
		schedule_pump(t);
	}
}

static void
notify_cb(evutil_socket_t fd, short what, void *arg)
{
	agent_transport *t = arg;
	tstream *s;

	if (t->finished) {
		if (!t->told_closed) {
			t->told_closed = 1;
			/* may free t: nothing after this */
			if (t->hooks.on_closed)
				t->hooks.on_closed(t, t->end, t->reason, t->hooks.arg);
		}
		return;
	}
	if (t->ready && !t->ready_told) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		t->handshake_ms = (now.tv_sec - t->started.tv_sec) * 1000 + (now.tv_nsec - t->started.tv_nsec) / 1000000;
		t->ready_told = 1;
		if (t->hooks.on_ready)
			t->hooks.on_ready(t, t->hooks.arg);
	}
	/* the hook may open or free streams: look again after each */
	for (;;) {
		struct bufferevent *app;

		for (s = t->streams; s && s->announced; s = s->next)
			;
		if (!s || t->finished)
			break;
		s->announced = 1;
		app = app_end(s);
		if (app && t->hooks.on_stream)
			t->hooks.on_stream(t, app, t->hooks.arg);
		else if (app)
			bufferevent_free(app);
		if (t->finished || !find_stream(t, s))
			break;
		deliver_early(t, s);
	}
}

static void
finish(agent_transport *t, agent_transport_end end, const char *fmt, ...)
{
	va_list ap;
	tstream *s;

	if (t->finished)
		return;
	t->end = end;
	va_start(ap, fmt);
	vsnprintf(t->reason, sizeof t->reason, fmt, ap);
	va_end(ap);
	for (s = t->streams; s; s = s->next)
		if (!s->peer_fin)
			stream_error(s);
	if (t->timer)
		event_del(t->timer);
	if (t->close_timer)
		event_del(t->close_timer);
	t->finished = 1;
	event_active(t->notify_ev, 0, 0);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	agent_transport *t = arg;
	int rv;

	if (!t->conn) {
		finish(t, AGENT_TRANSPORT_TIMEOUT, "no QUIC handshake from the peer within %us: peer dead or path lost",
		       t->opts.idle_timeout_ms / 1000);
		return;
	}
	rv = ngtcp2_conn_handle_expiry(t->conn, now_ns());
	if (rv == NGTCP2_ERR_IDLE_CLOSE) {
		finish(t, AGENT_TRANSPORT_TIMEOUT, "nothing heard from the peer for %us: peer dead or path lost",
		       t->opts.idle_timeout_ms / 1000);
		return;
	}
	if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
		finish(t, AGENT_TRANSPORT_TIMEOUT, "QUIC handshake did not finish within %us: peer dead or path lost",
		       t->opts.idle_timeout_ms / 1000);
		return;
	}
	if (rv != 0) {
		fail_liberr(t, rv);
		return;
	}
	pump(t);
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	agent_transport *t = arg;
	tstream *s;

	for (s = t->streams; s; s = s->next)
		if (s->orphaned == 1)
			s->orphaned = 2;
	schedule_pump(t);
}

static void
pump_cb(evutil_socket_t fd, short what, void *arg)
{
	pump(arg);
}

static void
close_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	agent_transport *t = arg;

	if (!t->finished)
		close_now(t);
}

/* ---------------------------------------------------------------- public */

agent_transport *
agent_transport_new(agent *a, agent_link *l, const agent_transport_opts *opts,
                    const agent_transport_hooks *hooks)
{
	const mp_candidate *path = agent_link_path(l);
	agent_transport *t;
	int fd;

	if (!path || !(t = calloc(1, sizeof *t)))
		return NULL;
	if (!(t->batch = malloc(PKTS_PER_RUN * MAX_PKT))) {
		free(t);
		return NULL;
	}
	t->a = a;
	t->link = l;
	t->hooks = *hooks;
	if (opts)
		t->opts = *opts;
	if (!t->opts.idle_timeout_ms)
		t->opts.idle_timeout_ms = AGENT_TRANSPORT_IDLE_MS;
	if (!t->opts.keepalive_ms)
		t->opts.keepalive_ms = AGENT_TRANSPORT_KEEPALIVE_MS;
	/* a quiet but living peer must never look dead */
	if (t->opts.keepalive_ms > t->opts.idle_timeout_ms / 3)
		t->opts.keepalive_ms = t->opts.idle_timeout_ms / 3;
	t->server = !agent_link_initiator(l);
	clock_gettime(CLOCK_MONOTONIC, &t->started);
	RAND_bytes(t->tag, TAG_LEN);
	if (t->tag[0] == 'P')
		t->tag[0] ^= 0x80;
	/* the NAT traversal may have found the path on a socket of the
	 * link's own (agent/traverse.c): only its mapping leads there */
	fd = t->fd = agent_link_path_fd(l);
	{
		/* a burst of a fast sender must not overflow the default
		 * 208 KiB: every drop is a loss to congestion control */
		int rcv = SOCKET_BUFFER, snd = SOCKET_BUFFER;

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
	}
	t->local_len = sizeof t->local;
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&t->local, &t->local_len) != 0 ||
	    mp_candidate_to_sockaddr(path, &t->remote, &t->remote_len) != MP_OK)
		goto fail;
	if (!(t->timer = evtimer_new(a->base, timer_cb, t)) || !(t->pump_ev = event_new(a->base, -1, 0, pump_cb, t)) ||
	    !(t->notify_ev = event_new(a->base, -1, 0, notify_cb, t)) ||
	    !(t->close_timer = evtimer_new(a->base, close_timer_cb, t)) ||
	    !(t->reap_ev = evtimer_new(a->base, reap_cb, t)) || add_to_agent(t) != 0)
		goto fail;
	if (t->server) {
		struct timeval tv = { t->opts.idle_timeout_ms / 1000, (t->opts.idle_timeout_ms % 1000) * 1000 };

		/* until the client's first Initial arrives */
		event_add(t->timer, &tv);
	} else {
		if (start_conn(t, NULL) != 0) {
			remove_from_agent(t);
			goto fail;
		}
		pump(t);
	}
	return t;
fail:
	agent_transport_free(t);
	return NULL;
}

/*
 * The server's NAT rebound: its packets come from a new address.  QUIC
 * lets only clients migrate, and a client drops packets from an address
 * other than the server's, so we hand ngtcp2 the packet as if from the
 * known address; once one decrypts and authenticates (only the peer has
 * the keys) our packets go to the new address.  (An on-path attacker
 * replaying a packet from a forged address could divert our packets:
 * no worse than dropping them, which it can anyway; nothing is exposed.)
 */
static void
moved_server(agent_transport *t, const uint8_t *pkt, size_t len, const struct sockaddr *from, socklen_t fromlen)
{
	ngtcp2_path path;
	ngtcp2_pkt_info pi = { 0 };
	unsigned long before = decrypted;
	int rv;

	if (pkt[0] & 0x80)
		return;         /* only 1-RTT packets: the handshake is over */
	conn_path(t, (struct sockaddr *)&t->remote, t->remote_len, &path);
	rv = ngtcp2_conn_read_pkt(t->conn, &path, &pi, pkt, len, now_ns());
	/* read_pkt says 0 for a packet it dropped, too: only one that
	 * decrypted moves us */
	if (rv == 0 && decrypted != before && !same_addr(from, fromlen, &t->server_now, t->server_now_len)) {
		char text[64] = "?";
		mp_candidate c;

		memcpy(&t->server_now, from, fromlen);
		t->server_now_len = fromlen;
		if (mp_candidate_from_sockaddr(from, fromlen, MP_CAND_SRFLX, &c) == MP_OK)
			mp_candidate_format(&c, text, sizeof text);
		mp_log(MP_LOG_INFO, "transport: the peer's address changed to %s (NAT rebinding): following it", text);
	}
	if (rv == 0)
		schedule_pump(t);
	else if (rv == NGTCP2_ERR_DRAINING)
		finish(t, AGENT_TRANSPORT_PEER_CLOSED, "peer closed the connection");
}

static agent_transport *
find_transport(agent *a, const uint8_t *pkt, size_t len, const struct sockaddr *from, socklen_t fromlen)
{
	ngtcp2_version_cid vc;
	size_t i;

	if (ngtcp2_pkt_decode_version_cid(&vc, pkt, len, CID_LEN) != 0)
		return NULL;
	for (i = 0; i < a->ntransports; i++) {
		agent_transport *t = a->transports[i];

		if (t->conn && vc.dcidlen == CID_LEN && memcmp(vc.dcid, t->tag, TAG_LEN) == 0)
			return t;
	}
	/* the client's first packets carry a DCID it chose at random */
	for (i = 0; i < a->ntransports; i++) {
		agent_transport *t = a->transports[i];

		if (t->server && (pkt[0] & 0x80) && fromlen == t->remote_len &&
		    memcmp(from, &t->remote, fromlen) == 0)
			return t;
	}
	return NULL;
}

int
agent_transport_dispatch(agent *a, const uint8_t *pkt, size_t len, const struct sockaddr *from, socklen_t fromlen)
{
	agent_transport *t = find_transport(a, pkt, len, from, fromlen);
	ngtcp2_path path;
	ngtcp2_pkt_info pi = { 0 };
	int rv;

	if (!t)
		return 0;
	if (t->finished)
		return 1;
	if (!t->conn) {
		ngtcp2_pkt_hd hd;

		if (ngtcp2_accept(&hd, pkt, len) != 0)
			return 1;
		event_del(t->timer);
		if (start_conn(t, &hd) != 0) {
			finish(t, AGENT_TRANSPORT_ERROR, "cannot start the QUIC server side");
			return 1;
		}
	}
	if (!t->server && !same_addr(from, fromlen, &t->remote, t->remote_len)) {
		moved_server(t, pkt, len, from, fromlen);
		return 1;
	}
	conn_path(t, from, fromlen, &path);
	rv = ngtcp2_conn_read_pkt(t->conn, &path, &pi, pkt, len, now_ns());
	if (rv == NGTCP2_ERR_DRAINING) {
		const ngtcp2_connection_close_error *e = NULL;
		ngtcp2_connection_close_error ccerr;

		ngtcp2_conn_get_connection_close_error(t->conn, &ccerr);
		e = &ccerr;
		if (e->type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION && e->error_code == 0)
			finish(t, AGENT_TRANSPORT_PEER_CLOSED, "peer closed the connection");
		else if (e->type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION &&
		         e->error_code == APP_GOING_AWAY)
			finish(t, AGENT_TRANSPORT_PEER_CLOSED, "peer went away (its agent stopped)");
		else if (e->type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT &&
		         (e->error_code & ~(uint64_t)0xff) == NGTCP2_CRYPTO_ERROR)
			finish(t, t->ready ? AGENT_TRANSPORT_ERROR : AGENT_TRANSPORT_HANDSHAKE,
			       "peer refused the TLS handshake (alert %u): it did not accept our identity key",
			       (unsigned)(e->error_code & 0xff));
		else
			finish(t, AGENT_TRANSPORT_ERROR, "peer closed the connection with error 0x%llx",
			       (unsigned long long)e->error_code);
		return 1;
	}
	if (rv != 0) {
		if (ngtcp2_err_is_fatal(rv) || rv == NGTCP2_ERR_CRYPTO || rv == NGTCP2_ERR_PROTO ||
		    rv == NGTCP2_ERR_TRANSPORT_PARAM || t->wrong_key)
			fail_liberr(t, rv);
		return 1;
	}
	if (t->ready && !t->ready_told)
		notify(t);
	else
		for (tstream *s = t->streams; s; s = s->next)
			if (!s->announced && !ngtcp2_conn_is_local_stream(t->conn, s->id))
				notify(t);
	/* after the whole batch udp.c reads: one ACK for many packets */
	schedule_pump(t);
	return 1;
}

struct bufferevent *
agent_transport_open_stream(agent_transport *t)
{
	struct bufferevent *app;
	int64_t id;
	tstream *s;

	if (!t->ready || t->finished || t->close_wanted)
		return NULL;
	if (ngtcp2_conn_open_bidi_stream(t->conn, &id, NULL) != 0)
		return NULL;
	if (!(s = stream_new(t, id, &app))) {
		ngtcp2_conn_shutdown_stream(t->conn, id, 1);
		return NULL;
	}
	s->announced = 1;
	ngtcp2_conn_set_stream_user_data(t->conn, id, s);
	return app;
}

int
agent_transport_send_datagram(agent_transport *t, const uint8_t *data, size_t len)
{
	dgram *d;

	if (len > AGENT_DATAGRAM_MAX)
		return MP_ERR_TOOBIG;
	if (!t->ready || t->finished)
		return MP_ERR_INVAL;
	if (t->dg_count == MAX_QUEUED_DGRAMS)
		return MP_ERR_UNAVAILABLE;
	d = &t->dgrams[(t->dg_head + t->dg_count++) % MAX_QUEUED_DGRAMS];
	memcpy(d->data, data, len);
	d->len = len;
	schedule_pump(t);
	return MP_OK;
}

void
agent_transport_close(agent_transport *t)
{
	struct timeval tv = { CLOSE_WAIT_MS / 1000, (CLOSE_WAIT_MS % 1000) * 1000 };

	if (t->finished || t->close_wanted)
		return;
	if (!t->conn || !t->ready) {
		close_now(t);
		return;
	}
	t->close_wanted = 1;
	event_add(t->close_timer, &tv);
	schedule_pump(t);
}

/* With MAILPUNCH_QUIC_DEBUG: the congestion controller's view at the
 * end, to tell a window- or RTT-bound transfer from a CPU-bound one. */
static void
log_conn_stat(agent_transport *t)
{
	ngtcp2_conn_stat cs;

	if (!t->conn || !getenv("MAILPUNCH_QUIC_DEBUG"))
		return;
	ngtcp2_conn_get_conn_stat(t->conn, &cs);
	fprintf(stderr, "transport stats: cwnd %llu ssthresh %llu in flight %llu srtt %llu us min rtt %llu us "
	        "udp payload %zu\n", (unsigned long long)cs.cwnd, (unsigned long long)cs.ssthresh,
	        (unsigned long long)cs.bytes_in_flight, (unsigned long long)(cs.smoothed_rtt / 1000),
	        (unsigned long long)(cs.min_rtt / 1000), ngtcp2_conn_get_path_max_tx_udp_payload_size(t->conn));
}

void
agent_transport_free(agent_transport *t)
{
	if (!t)
		return;
	log_conn_stat(t);
	if (t->conn && !t->finished) {
		/* the peer learns at once instead of after its idle timeout */
		ngtcp2_connection_close_error ccerr;

		ngtcp2_connection_close_error_default(&ccerr);
		ngtcp2_connection_close_error_set_application_error(&ccerr, APP_GOING_AWAY, NULL, 0);
		send_close(t, &ccerr);
	}
	remove_from_agent(t);
	while (t->streams) {
		if (!t->streams->peer_fin)
			stream_error(t->streams);
		stream_free(t->streams);
	}
	if (t->timer)
		event_free(t->timer);
	if (t->pump_ev)
		event_free(t->pump_ev);
	if (t->notify_ev)
		event_free(t->notify_ev);
	if (t->close_timer)
		event_free(t->close_timer);
	if (t->reap_ev)
		event_free(t->reap_ev);
	if (t->conn)
		ngtcp2_conn_del(t->conn);
	if (t->tls)
		gnutls_deinit(t->tls);
	if (t->cred)
		gnutls_certificate_free_credentials(t->cred);
	free(t->batch);
	free(t);
}

agent_link *
agent_transport_link(const agent_transport *t)
{
	return t->link;
}

int
agent_transport_ready(const agent_transport *t)
{
	return t->ready_told && !t->finished;
}

long
agent_transport_handshake_ms(const agent_transport *t)
{
	return t->handshake_ms;
}

int
agent_transport_peer_addr(const agent_transport *t, char *buf, size_t len)
{
	const ngtcp2_path *p;
	mp_candidate c;

	if (t->server_now_len)
		return mp_candidate_from_sockaddr((const struct sockaddr *)&t->server_now, t->server_now_len,
		                                  MP_CAND_SRFLX, &c) == MP_OK ? mp_candidate_format(&c, buf, len)
		                                                              : MP_ERR_INVAL;
	if (!t->conn || !(p = ngtcp2_conn_get_path(t->conn)) ||
	    mp_candidate_from_sockaddr((const struct sockaddr *)p->remote.addr, p->remote.addrlen, MP_CAND_SRFLX,
	                               &c) != MP_OK)
		return MP_ERR_INVAL;
	return mp_candidate_format(&c, buf, len);
}
