/*
 * transport.h - the secure transport between two agents: one QUIC
 * connection (RFC 9000, ngtcp2 with GnuTLS) per established link, run
 * over the agent's own UDP socket and the path the link punched.
 *
 * The link's initiator is the QUIC client, the other side the server.
 * TLS 1.3 with mutual authentication: each side presents a self-signed
 * certificate made at start from its Ed25519 identity key, and accepts
 * the peer only if the certificate's key is the identity key of the
 * peer the link already proved (fingerprint pinning, as in WebRTC);
 * anything else aborts the handshake with AGENT_TRANSPORT_WRONG_KEY.
 * ALPN "mailpunch/1".  QUIC does the rest: reliable ordered streams with
 * flow and congestion control, unreliable DATAGRAM frames (RFC 9221),
 * keepalive PINGs, an idle timeout that detects a dead peer, and
 * connection migration when a NAT rebinds the client's mapping.
 *
 * Streams reach applications as libevent bufferevents: the application
 * owns one end of a bufferevent pair and uses it like a socket's.
 *   - read:  bytes the peer sent, in order; BEV_EVENT_EOF once the peer
 *            finished its direction (QUIC FIN); BEV_EVENT_ERROR when the
 *            peer reset the stream or the connection died.
 *            BEV_EVENT_ERROR | BEV_EVENT_WRITING alone: the peer stopped
 *            reading (STOP_SENDING); what is written is dropped, reading
 *            goes on.
 *   - write: bufferevent_write(); the transport takes bytes from it only
 *            as fast as QUIC flow and congestion control allow, so a
 *            writer that watches its output length (or a write
 *            watermark) gets backpressure.
 *   - half-close: bufferevent_flush(bev, EV_WRITE, BEV_FINISHED) sends
 *            FIN after what was written; the read side stays open.
 *   - close: bufferevent_free().  Freed without FINISHED first, the
 *            stream is reset (the peer sees BEV_EVENT_ERROR).
 *   The application's end comes with a read high watermark of
 *   AGENT_STREAM_WINDOW: the transport credits the peer's flow-control
 *   window only as the application consumes, so a slow reader slows the
 *   sender instead of filling memory.  The application may change the
 *   watermarks.  Its end has BEV_OPT_DEFER_CALLBACKS: callbacks run from
 *   the event loop, never from inside a transport call.
 *
 * Errors: constructors return NULL (out of memory, TLS setup failed:
 * logged); agent_transport_* calls return MP_OK or an mp_err; the end of
 * a connection is reported once through on_closed with an
 * agent_transport_end and a sentence for people.
 */
#ifndef MAILPUNCH_AGENT_TRANSPORT_H
#define MAILPUNCH_AGENT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>

#include "agent.h"

/* Flow-control window of one stream, and the read watermark of the
 * application's end. */
#define AGENT_STREAM_WINDOW (1024 * 1024)
/* Largest payload of one datagram (fits a 1200-byte QUIC packet). */
#define AGENT_DATAGRAM_MAX 1100

typedef struct agent_transport agent_transport;

/* How a connection ended (on_closed). */
typedef enum agent_transport_end {
	AGENT_TRANSPORT_CLOSED = 0,     /* we closed it, cleanly */
	AGENT_TRANSPORT_PEER_CLOSED,    /* the peer closed it, cleanly */
	AGENT_TRANSPORT_WRONG_KEY,      /* peer presented the wrong identity key */
	AGENT_TRANSPORT_TIMEOUT,        /* nothing heard for the idle timeout (or no
	                                   handshake within it): dead peer, lost path */
	AGENT_TRANSPORT_HANDSHAKE,      /* TLS failed otherwise: the peer refused our key */
	AGENT_TRANSPORT_ERROR,          /* protocol or local error */
} agent_transport_end;

typedef struct agent_transport_hooks {
	/* Handshake done, peer verified: streams and datagrams may flow. */
	void (*on_ready)(agent_transport *t, void *arg);
	/* The peer opened a stream: bev is the application's end and now
	 * the application's to free. */
	void (*on_stream)(agent_transport *t, struct bufferevent *bev, void *arg);
	/* One DATAGRAM from the peer (unreliable, unordered). May be NULL. */
	void (*on_datagram)(agent_transport *t, const uint8_t *data, size_t len, void *arg);
	/* The connection is over (reported once; every stream has had its
	 * EOF or ERROR).  The transport may be freed from inside. */
	void (*on_closed)(agent_transport *t, agent_transport_end end, const char *reason, void *arg);
	void *arg;
} agent_transport_hooks;

typedef struct agent_transport_opts {
	unsigned idle_timeout_ms;       /* dead-peer bound; 0 = AGENT_TRANSPORT_IDLE_MS */
	unsigned keepalive_ms;          /* PING when quiet; 0 = AGENT_TRANSPORT_KEEPALIVE_MS */
} agent_transport_opts;

#define AGENT_TRANSPORT_IDLE_MS 30000
#define AGENT_TRANSPORT_KEEPALIVE_MS 10000

/* A QUIC connection over link l (established).  The client (the link's
 * initiator) starts the handshake at once; the server waits for it. */
agent_transport *agent_transport_new(agent *a, agent_link *l, const agent_transport_opts *opts,
                                     const agent_transport_hooks *hooks);
/* Offers a datagram that is neither STUN nor a punch packet to the
 * agent's transports (udp.c); 1 if one took it. */
int agent_transport_dispatch(agent *a, const uint8_t *pkt, size_t len, const struct sockaddr *from,
                             socklen_t fromlen);
/* Opens a bidirectional stream (only once ready); the caller owns the
 * returned end.  NULL when the peer's stream limit is reached or not ready. */
struct bufferevent *agent_transport_open_stream(agent_transport *t);
/* Sends one unreliable datagram (at most AGENT_DATAGRAM_MAX bytes);
 * MP_ERR_UNAVAILABLE when congestion control holds it back now (drop it
 * or retry later), MP_ERR_TOOBIG over the peer's limit. */
int agent_transport_send_datagram(agent_transport *t, const uint8_t *data, size_t len);
/* Closes gracefully: waits (at most a few seconds) until every stream's
 * sent data is acknowledged, then sends CONNECTION_CLOSE; on_closed
 * follows with AGENT_TRANSPORT_CLOSED. */
void agent_transport_close(agent_transport *t);
/* Immediately; no callback.  An open connection is ended with
 * CONNECTION_CLOSE (application error 1, "going away"), so the peer
 * knows at once; streams still open get BEV_EVENT_ERROR. */
void agent_transport_free(agent_transport *t);

agent_link *agent_transport_link(const agent_transport *t);
int agent_transport_ready(const agent_transport *t);
/* Milliseconds from agent_transport_new to the verified handshake. */
long agent_transport_handshake_ms(const agent_transport *t);
/* The peer's current address (changes when its NAT rebinds). */
int agent_transport_peer_addr(const agent_transport *t, char *buf, size_t len);

#endif
