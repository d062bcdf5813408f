/*
 * punch.h - the UDP packets that open a path between two agents:
 * authenticated probes, and the handshake that proves both identities.
 *
 * The connecting agent sends the peer a SIGNAL (by mail, sealed and
 * signed) holding a fresh connection ID and a 32-byte secret.  From then
 * on both sides send PROBEs to every candidate of the other, at once
 * (simultaneous punching).  Every packet carries a MAC keyed from the
 * secret, so nobody without it can make a side answer.  A probe that
 * gets through is answered with PROBE_ACK to the address it came from;
 * the initiator then runs a three-packet handshake on that address:
 *
 *   HELLO         initiator's ephemeral X25519 key
 *   HELLO_REPLY   responder's ephemeral key + Ed25519 signature over the
 *                 transcript (connection ID, both identities, both
 *                 ephemeral keys)
 *   HELLO_FINISH  initiator's signature over the same transcript
 *
 * Each side checks the other's signature against the identity it learnt
 * through the host (or the signed SIGNAL), so a path is "established"
 * only between the two key holders; fresh ephemeral keys mean a replayed
 * packet can never complete a handshake.  DATA packets are then sealed
 * with ChaCha20-Poly1305 under keys derived from the ephemeral DH and the
 * secret, with a sliding anti-replay window.  Byte layout: PROTOCOL.md.
 *
 * Interface: one mp_punch per connection attempt, fed with every
 * datagram for its connection ID (mp_punch_conn_id() reads it from a
 * packet).  mp_punch_input() says what happened and may produce a packet
 * to send back to the sender's address.  No I/O, no timers here: the
 * agent decides where and when to send.
 * Errors: MP_ERR_MAGIC/TRUNCATED/MALFORMED (not ours or garbled),
 * MP_ERR_DECRYPT (MAC or AEAD failed: forged), MP_ERR_SIGNATURE (wrong
 * identity), MP_ERR_REPLAY, MP_ERR_INVAL (wrong state), MP_ERR_CRYPTO.
 */
#ifndef MAILPUNCH_PUNCH_H
#define MAILPUNCH_PUNCH_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/keys.h"

#define MP_PUNCH_SECRET_LEN 32
#define MP_PUNCH_CONN_ID_LEN 16
#define MP_PUNCH_MAX_PACKET 1200      /* fits any path MTU we meet */
#define MP_PUNCH_MAX_DATA 1024        /* plaintext per DATA packet */

typedef enum mp_pkt_type {
	MP_PKT_PROBE = 1,
	MP_PKT_PROBE_ACK = 2,
	MP_PKT_HELLO = 3,
	MP_PKT_HELLO_REPLY = 4,
	MP_PKT_HELLO_FINISH = 5,
	MP_PKT_DATA = 6,
	MP_PKT_KEEPALIVE = 7,
} mp_pkt_type;

typedef enum mp_punch_event {
	MP_PUNCH_NOTHING = 0,      /* valid, nothing new (e.g. a keepalive) */
	MP_PUNCH_REACHED,          /* a probe or ack got through from there */
	MP_PUNCH_ESTABLISHED,      /* handshake complete: the path is proven */
	MP_PUNCH_DATA,             /* application data was delivered */
} mp_punch_event;

typedef struct mp_punch_result {
	mp_punch_event event;
	uint8_t reply[MP_PUNCH_MAX_PACKET];   /* send back to the sender if reply_len */
	size_t reply_len;
	uint8_t data[MP_PUNCH_MAX_DATA];      /* for MP_PUNCH_DATA */
	size_t data_len;
} mp_punch_result;

typedef struct mp_punch mp_punch;

/* initiator: the side that sent the SIGNAL with conn_id and secret. */
int mp_punch_new(const mp_identity *me, const mp_pubid *peer, int initiator,
                 const uint8_t conn_id[MP_PUNCH_CONN_ID_LEN],
                 const uint8_t secret[MP_PUNCH_SECRET_LEN], mp_punch **out);
void mp_punch_free(mp_punch *p);

/* Connection ID of a packet, to find its mp_punch; MP_ERR_MAGIC if the
 * datagram is not a mailpunch packet (e.g. STUN on the same socket). */
int mp_punch_conn_id(const uint8_t *pkt, size_t len, uint8_t conn_id[MP_PUNCH_CONN_ID_LEN]);

/* Packets to send on the agent's schedule. */
int mp_punch_probe(mp_punch *p, uint8_t *buf, size_t cap, size_t *len);
int mp_punch_hello(mp_punch *p, uint8_t *buf, size_t cap, size_t *len);   /* initiator */
int mp_punch_keepalive(mp_punch *p, uint8_t *buf, size_t cap, size_t *len);
int mp_punch_seal_data(mp_punch *p, const uint8_t *msg, size_t msg_len, uint8_t *buf,
                       size_t cap, size_t *len);   /* established only */

int mp_punch_input(mp_punch *p, const uint8_t *pkt, size_t len, mp_punch_result *res);
int mp_punch_established(const mp_punch *p);
/* Random connection ID and secret for a new attempt. */
int mp_punch_fresh(uint8_t conn_id[MP_PUNCH_CONN_ID_LEN], uint8_t secret[MP_PUNCH_SECRET_LEN]);

#endif
