/*
 * punch.c - probe and handshake packets of connection set-up (punch.h).
 *
 * Packet: "MPK" 1 | type u8 | 0 | conn_id[16] | counter u64 | body |
 * MAC[16].  Non-DATA packets end in HMAC-SHA256(k_mac, all before)[:16];
 * DATA packets end in the ChaCha20-Poly1305 tag of their body under the
 * sender's direction key, the 30-byte header being associated data.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "keys_priv.h"
#include "mailpunch/error.h"
#include "mailpunch/punch.h"
#include "primitives.h"

#define HDR_LEN 30
#define MAC_LEN 16
#define WINDOW 64

static const uint8_t MAGIC[4] = { 'M', 'P', 'K', 1 };
static const char MAC_LABEL[] = "mailpunch-v1-punch";
static const char HS_LABEL[] = "mailpunch-v1-handshake";
static const char SESSION_LABEL[] = "mailpunch-v1-session";

enum state { ST_PROBING, ST_HELLO_SENT, ST_REPLIED, ST_ESTABLISHED };

struct mp_punch {
	const mp_identity *me;
	mp_pubid peer;
	int initiator;
	enum state state;
	uint8_t conn_id[MP_PUNCH_CONN_ID_LEN];
	uint8_t secret[MP_PUNCH_SECRET_LEN];
	uint8_t k_mac[32];
	uint64_t send_counter;
	EVP_PKEY *eph;                   /* our ephemeral key, once made */
	uint8_t eph_pub[32], peer_eph[32];
	uint8_t transcript[32];
	uint8_t reply_cache[MP_PUNCH_MAX_PACKET];   /* responder: resend as is */
	size_t reply_cache_len;
	uint8_t k_send[32], k_recv[32];
	uint64_t recv_max;               /* anti-replay window for DATA */
	uint64_t recv_bitmap;
};

int
mp_punch_fresh(uint8_t conn_id[MP_PUNCH_CONN_ID_LEN], uint8_t secret[MP_PUNCH_SECRET_LEN])
{
	return RAND_bytes(conn_id, MP_PUNCH_CONN_ID_LEN) == 1 &&
	       RAND_bytes(secret, MP_PUNCH_SECRET_LEN) == 1 ? MP_OK : MP_ERR_CRYPTO;
}

int
mp_punch_new(const mp_identity *me, const mp_pubid *peer, int initiator,
             const uint8_t conn_id[MP_PUNCH_CONN_ID_LEN], const uint8_t secret[MP_PUNCH_SECRET_LEN],
             mp_punch **out)
{
	mp_punch *p = calloc(1, sizeof *p);

	if (!p)
		return MP_ERR_NOMEM;
	p->me = me;
	p->peer = *peer;
	p->initiator = initiator;
	memcpy(p->conn_id, conn_id, MP_PUNCH_CONN_ID_LEN);
	memcpy(p->secret, secret, MP_PUNCH_SECRET_LEN);
	if (mp_hkdf_sha256(MAC_LABEL, sizeof MAC_LABEL - 1, secret, MP_PUNCH_SECRET_LEN, conn_id,
	                   MP_PUNCH_CONN_ID_LEN, p->k_mac, sizeof p->k_mac) != MP_OK) {
		mp_punch_free(p);
		return MP_ERR_CRYPTO;
	}
	*out = p;
	return MP_OK;
}

void
mp_punch_free(mp_punch *p)
{
	if (!p)
		return;
	EVP_PKEY_free(p->eph);
	OPENSSL_clear_free(p, sizeof *p);
}

int
mp_punch_established(const mp_punch *p)
{
	return p->state == ST_ESTABLISHED;
}

int
mp_punch_conn_id(const uint8_t *pkt, size_t len, uint8_t conn_id[MP_PUNCH_CONN_ID_LEN])
{
	if (len < 4 || memcmp(pkt, MAGIC, 4) != 0)
		return MP_ERR_MAGIC;
	if (len < HDR_LEN + MAC_LEN)
		return MP_ERR_TRUNCATED;
	memcpy(conn_id, pkt + 6, MP_PUNCH_CONN_ID_LEN);
	return MP_OK;
}

/* ---------------------------------------------------------------- framing */

static void
put_header(mp_punch *p, uint8_t *buf, uint8_t type, uint64_t counter)
{
	int i;

	memcpy(buf, MAGIC, 4);
	buf[4] = type;
	buf[5] = 0;
	memcpy(buf + 6, p->conn_id, MP_PUNCH_CONN_ID_LEN);
	for (i = 0; i < 8; i++)
		buf[22 + i] = (uint8_t)(counter >> (56 - 8 * i));
}

static uint64_t
get_counter(const uint8_t *pkt)
{
	uint64_t c = 0;
	int i;

	for (i = 0; i < 8; i++)
		c = (c << 8) | pkt[22 + i];
	return c;
}

/* Header + body + MAC into buf. */
static int
frame(mp_punch *p, uint8_t type, const uint8_t *body, size_t body_len, uint8_t *buf, size_t cap,
      size_t *len)
{
	uint8_t mac[32];

	if (HDR_LEN + body_len + MAC_LEN > cap)
		return MP_ERR_TOOBIG;
	put_header(p, buf, type, ++p->send_counter);
	if (body_len)
		memcpy(buf + HDR_LEN, body, body_len);
	if (mp_hmac_sha256(p->k_mac, sizeof p->k_mac, buf, HDR_LEN + body_len, mac) != MP_OK)
		return MP_ERR_CRYPTO;
	memcpy(buf + HDR_LEN + body_len, mac, MAC_LEN);
	*len = HDR_LEN + body_len + MAC_LEN;
	return MP_OK;
}

static int
check_mac(const mp_punch *p, const uint8_t *pkt, size_t len)
{
	uint8_t mac[32];

	if (mp_hmac_sha256(p->k_mac, sizeof p->k_mac, pkt, len - MAC_LEN, mac) != MP_OK)
		return MP_ERR_CRYPTO;
	return CRYPTO_memcmp(mac, pkt + len - MAC_LEN, MAC_LEN) == 0 ? MP_OK : MP_ERR_DECRYPT;
}

int
mp_punch_probe(mp_punch *p, uint8_t *buf, size_t cap, size_t *len)
{
	return frame(p, MP_PKT_PROBE, NULL, 0, buf, cap, len);
}

int
mp_punch_keepalive(mp_punch *p, uint8_t *buf, size_t cap, size_t *len)
{
	return frame(p, MP_PKT_KEEPALIVE, NULL, 0, buf, cap, len);
}

/* ---------------------------------------------------------------- handshake */

static int
make_ephemeral(mp_punch *p)
{
	if (p->eph)
		return MP_OK;
	p->eph = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	if (!p->eph)
		return MP_ERR_CRYPTO;
	return mp_pkey_raw_public(p->eph, p->eph_pub);
}

/* Transcript hash over everything both sides must agree on; the
 * initiator's identity and ephemeral key come first. */
static int
transcript(mp_punch *p)
{
	const mp_pubid *ini = p->initiator ? mp_identity_public(p->me) : &p->peer;
	const mp_pubid *res = p->initiator ? &p->peer : mp_identity_public(p->me);
	const uint8_t *e_ini = p->initiator ? p->eph_pub : p->peer_eph;
	const uint8_t *e_res = p->initiator ? p->peer_eph : p->eph_pub;
	uint8_t buf[sizeof HS_LABEL - 1 + MP_PUNCH_CONN_ID_LEN + 2 * sizeof(mp_pubid) + 64];
	size_t n = 0;
	unsigned int mdlen = 0;

	memcpy(buf + n, HS_LABEL, sizeof HS_LABEL - 1);
	n += sizeof HS_LABEL - 1;
	memcpy(buf + n, p->conn_id, MP_PUNCH_CONN_ID_LEN);
	n += MP_PUNCH_CONN_ID_LEN;
	memcpy(buf + n, ini, sizeof *ini);
	n += sizeof *ini;
	memcpy(buf + n, res, sizeof *res);
	n += sizeof *res;
	memcpy(buf + n, e_ini, 32);
	memcpy(buf + n + 32, e_res, 32);
	n += 64;
	return EVP_Digest(buf, n, p->transcript, &mdlen, EVP_sha256(), NULL) == 1 ? MP_OK : MP_ERR_CRYPTO;
}

/* role byte 'R' or 'I' so a responder's signature is never an initiator's */
static int
sign_transcript(mp_punch *p, uint8_t role, uint8_t sig[MP_ED25519_SIG_LEN])
{
	uint8_t msg[33];

	memcpy(msg, p->transcript, 32);
	msg[32] = role;
	return mp_ed25519_sign(mp_identity_sign_pkey(p->me), msg, sizeof msg, sig);
}

static int
verify_transcript(mp_punch *p, uint8_t role, const uint8_t sig[MP_ED25519_SIG_LEN])
{
	uint8_t msg[33];

	memcpy(msg, p->transcript, 32);
	msg[32] = role;
	return mp_ed25519_verify(p->peer.sign_pub, msg, sizeof msg, sig);
}

static int
derive_session(mp_punch *p)
{
	uint8_t shared[32], okm[64], info[sizeof SESSION_LABEL - 1 + 32];
	int rc = mp_x25519(p->eph, p->peer_eph, shared);

	memcpy(info, SESSION_LABEL, sizeof SESSION_LABEL - 1);
	memcpy(info + sizeof SESSION_LABEL - 1, p->transcript, 32);
	if (rc == MP_OK)
		rc = mp_hkdf_sha256(p->secret, sizeof p->secret, shared, sizeof shared, info, sizeof info,
		                    okm, sizeof okm);
	if (rc == MP_OK) {
		/* first half: initiator to responder */
		memcpy(p->k_send, okm + (p->initiator ? 0 : 32), 32);
		memcpy(p->k_recv, okm + (p->initiator ? 32 : 0), 32);
	}
	OPENSSL_cleanse(shared, sizeof shared);
	OPENSSL_cleanse(okm, sizeof okm);
	return rc;
}

int
mp_punch_hello(mp_punch *p, uint8_t *buf, size_t cap, size_t *len)
{
	int rc;

	if (!p->initiator || p->state == ST_ESTABLISHED)
		return MP_ERR_INVAL;
	if ((rc = make_ephemeral(p)) != MP_OK)
		return rc;
	p->state = ST_HELLO_SENT;
	return frame(p, MP_PKT_HELLO, p->eph_pub, 32, buf, cap, len);
}

static int
on_hello(mp_punch *p, const uint8_t *body, size_t body_len, mp_punch_result *res)
{
	uint8_t out[32 + MP_ED25519_SIG_LEN];
	int rc;

	if (p->initiator || body_len != 32)
		return MP_ERR_MALFORMED;
	if (p->state != ST_PROBING) {
		/* our reply was lost: the same HELLO gets the same answer */
		if (memcmp(body, p->peer_eph, 32) != 0)
			return MP_ERR_INVAL;
		memcpy(res->reply, p->reply_cache, p->reply_cache_len);
		res->reply_len = p->reply_cache_len;
		return MP_OK;
	}
	memcpy(p->peer_eph, body, 32);
	if ((rc = make_ephemeral(p)) != MP_OK || (rc = transcript(p)) != MP_OK ||
	    (rc = derive_session(p)) != MP_OK)
		return rc;
	memcpy(out, p->eph_pub, 32);
	if ((rc = sign_transcript(p, 'R', out + 32)) != MP_OK)
		return rc;
	if ((rc = frame(p, MP_PKT_HELLO_REPLY, out, sizeof out, res->reply, sizeof res->reply,
	                &res->reply_len)) != MP_OK)
		return rc;
	memcpy(p->reply_cache, res->reply, res->reply_len);
	p->reply_cache_len = res->reply_len;
	p->state = ST_REPLIED;
	return MP_OK;
}

static int
on_hello_reply(mp_punch *p, const uint8_t *body, size_t body_len, mp_punch_result *res)
{
	uint8_t sig[MP_ED25519_SIG_LEN];
	int rc;

	if (!p->initiator || body_len != 32 + MP_ED25519_SIG_LEN)
		return MP_ERR_MALFORMED;
	if (p->state == ST_ESTABLISHED) {
		/* our FINISH was lost: send it again */
		if (memcmp(body, p->peer_eph, 32) != 0)
			return MP_ERR_INVAL;
		if ((rc = sign_transcript(p, 'I', sig)) != MP_OK)
			return rc;
		return frame(p, MP_PKT_HELLO_FINISH, sig, sizeof sig, res->reply, sizeof res->reply,
		             &res->reply_len);
	}
	if (p->state != ST_HELLO_SENT)
		return MP_ERR_INVAL;
	memcpy(p->peer_eph, body, 32);
	if ((rc = transcript(p)) != MP_OK)
		return rc;
	if ((rc = verify_transcript(p, 'R', body + 32)) != MP_OK)
		return rc;
	if ((rc = derive_session(p)) != MP_OK || (rc = sign_transcript(p, 'I', sig)) != MP_OK)
		return rc;
	if ((rc = frame(p, MP_PKT_HELLO_FINISH, sig, sizeof sig, res->reply, sizeof res->reply,
	                &res->reply_len)) != MP_OK)
		return rc;
	p->state = ST_ESTABLISHED;
	res->event = MP_PUNCH_ESTABLISHED;
	return MP_OK;
}

static int
on_hello_finish(mp_punch *p, const uint8_t *body, size_t body_len, mp_punch_result *res)
{
	int rc;

	if (p->initiator || body_len != MP_ED25519_SIG_LEN)
		return MP_ERR_MALFORMED;
	if (p->state == ST_ESTABLISHED)
		return MP_OK;
	if (p->state != ST_REPLIED)
		return MP_ERR_INVAL;
	if ((rc = verify_transcript(p, 'I', body)) != MP_OK)
		return rc;
	p->state = ST_ESTABLISHED;
	res->event = MP_PUNCH_ESTABLISHED;
	return MP_OK;
}

/* ---------------------------------------------------------------- data */

static void
nonce_of(uint64_t counter, uint8_t nonce[MP_AEAD_NONCE_LEN])
{
	int i;

	memset(nonce, 0, 4);
	for (i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (56 - 8 * i));
}

int
mp_punch_seal_data(mp_punch *p, const uint8_t *msg, size_t msg_len, uint8_t *buf, size_t cap,
                   size_t *len)
{
	uint8_t nonce[MP_AEAD_NONCE_LEN];
	int rc;

	if (p->state != ST_ESTABLISHED)
		return MP_ERR_INVAL;
	if (msg_len > MP_PUNCH_MAX_DATA || HDR_LEN + msg_len + MP_AEAD_TAG_LEN > cap)
		return MP_ERR_TOOBIG;
	put_header(p, buf, MP_PKT_DATA, ++p->send_counter);
	nonce_of(p->send_counter, nonce);
	rc = mp_chacha20_poly1305(1, p->k_send, nonce, buf, HDR_LEN, msg, msg_len, buf + HDR_LEN,
	                          buf + HDR_LEN + msg_len);
	*len = HDR_LEN + msg_len + MP_AEAD_TAG_LEN;
	return rc;
}

/* Sliding window: accept each counter once, and none older than 64
 * behind the newest (as IPsec and WireGuard do). */
static int
replay_check(mp_punch *p, uint64_t c)
{
	if (c > p->recv_max) {
		uint64_t shift = c - p->recv_max;

		p->recv_bitmap = shift >= WINDOW ? 1 : (p->recv_bitmap << shift) | 1;
		p->recv_max = c;
		return MP_OK;
	}
	if (p->recv_max - c >= WINDOW)
		return MP_ERR_REPLAY;
	if (p->recv_bitmap & (1ULL << (p->recv_max - c)))
		return MP_ERR_REPLAY;
	p->recv_bitmap |= 1ULL << (p->recv_max - c);
	return MP_OK;
}

static int
on_data(mp_punch *p, const uint8_t *pkt, size_t len, mp_punch_result *res)
{
	uint8_t nonce[MP_AEAD_NONCE_LEN], tag[MP_AEAD_TAG_LEN];
	size_t body_len = len - HDR_LEN - MP_AEAD_TAG_LEN;
	uint64_t c = get_counter(pkt);
	int rc;

	if (p->state != ST_ESTABLISHED && p->state != ST_REPLIED)
		return MP_ERR_INVAL;
	if (body_len > MP_PUNCH_MAX_DATA)
		return MP_ERR_TOOBIG;
	nonce_of(c, nonce);
	memcpy(tag, pkt + len - MP_AEAD_TAG_LEN, MP_AEAD_TAG_LEN);
	/* authenticate before touching the window, so forgeries cannot move it */
	rc = mp_chacha20_poly1305(0, p->k_recv, nonce, pkt, HDR_LEN, pkt + HDR_LEN, body_len,
	                          res->data, tag);
	if (rc != MP_OK)
		return rc;
	if (p->state == ST_REPLIED) {
		/* The initiator is sending data, so it has our reply, but its
		 * FINISH is lost: we may not trust the data before the
		 * initiator's signature, so drop it and ask for FINISH again. */
		memcpy(res->reply, p->reply_cache, p->reply_cache_len);
		res->reply_len = p->reply_cache_len;
		return MP_OK;
	}
	if ((rc = replay_check(p, c)) != MP_OK)
		return rc;
	res->data_len = body_len;
	res->event = MP_PUNCH_DATA;
	return MP_OK;
}

/* ---------------------------------------------------------------- input */

int
mp_punch_input(mp_punch *p, const uint8_t *pkt, size_t len, mp_punch_result *res)
{
	uint8_t id[MP_PUNCH_CONN_ID_LEN];
	const uint8_t *body = pkt + HDR_LEN;
	size_t body_len;
	int rc;

	res->event = MP_PUNCH_NOTHING;
	res->reply_len = 0;
	res->data_len = 0;
	if ((rc = mp_punch_conn_id(pkt, len, id)) != MP_OK)
		return rc;
	if (len > MP_PUNCH_MAX_PACKET)
		return MP_ERR_TOOBIG;
	if (CRYPTO_memcmp(id, p->conn_id, sizeof id) != 0 || pkt[5] != 0)
		return MP_ERR_MALFORMED;
	if (pkt[4] == MP_PKT_DATA)
		return on_data(p, pkt, len, res);
	if ((rc = check_mac(p, pkt, len)) != MP_OK)
		return rc;
	body_len = len - HDR_LEN - MAC_LEN;
	switch (pkt[4]) {
	case MP_PKT_PROBE:
		res->event = MP_PUNCH_REACHED;
		if (!p->initiator && p->state == ST_REPLIED) {
			/* still probing: our HELLO_REPLY may be lost, repeat it */
			memcpy(res->reply, p->reply_cache, p->reply_cache_len);
			res->reply_len = p->reply_cache_len;
			return MP_OK;
		}
		return frame(p, MP_PKT_PROBE_ACK, NULL, 0, res->reply, sizeof res->reply, &res->reply_len);
	case MP_PKT_PROBE_ACK:
		res->event = MP_PUNCH_REACHED;
		return MP_OK;
	case MP_PKT_HELLO:
		return on_hello(p, body, body_len, res);
	case MP_PKT_HELLO_REPLY:
		return on_hello_reply(p, body, body_len, res);
	case MP_PKT_HELLO_FINISH:
		return on_hello_finish(p, body, body_len, res);
	case MP_PKT_KEEPALIVE:
		return MP_OK;
	}
	return MP_ERR_MALFORMED;
}
