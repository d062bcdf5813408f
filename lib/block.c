/*
 * block.c - encode and decode the messages inside a sealed block
 * (see block.h; byte layout in docs/PROTOCOL.md).
 *
 * Encoding writes the common prefix (session ID, time, user identity),
 * the type's body and an empty extension area, then hands the plaintext
 * to seal.c.  Decoding is strict: every count and length is checked
 * against its limit before use, enumerations must hold known values, and
 * the plaintext must be consumed exactly, so one message has one
 * encoding and a parser bug cannot hide trailing data.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "mailpunch/block.h"
#include "mailpunch/config.h"
#include "mailpunch/error.h"
#include "seal.h"
#include "wire.h"

/* Offset of the user's Ed25519 key in the plaintext: after SID and time. */
#define SIGN_KEY_OFFSET (MP_SESSION_ID_LEN + 8)
/* Extension area: reserved for compatible additions within version 1. */
#define EXT_MAX 1024

mp_msg *
mp_msg_new(mp_msg_type type)
{
	mp_msg *m = calloc(1, sizeof *m);

	if (!m)
		return NULL;
	m->type = (uint8_t)type;
	m->timestamp = (uint64_t)time(NULL);
	if (RAND_bytes(m->session_id, MP_SESSION_ID_LEN) != 1) {
		free(m);
		return NULL;
	}
	return m;
}

void
mp_msg_free(mp_msg *m)
{
	if (!m)
		return;
	OPENSSL_cleanse(m, sizeof *m);
	free(m);
}

const char *
mp_msg_type_name(int type)
{
	switch (type) {
	case MP_MSG_REQUEST: return "REQUEST";
	case MP_MSG_REPLY: return "REPLY";
	case MP_MSG_FAILURE_NOTICE: return "FAILURE_NOTICE";
	case MP_MSG_SIGNAL: return "SIGNAL";
	case MP_MSG_RELAY: return "RELAY";
	case MP_MSG_TABLE_SYNC: return "TABLE_SYNC";
	case MP_MSG_RELAYED: return "RELAYED";
	}
	return "UNKNOWN";
}

static int
sender_kind_for_type(int type)
{
	switch (type) {
	case MP_MSG_REQUEST:
	case MP_MSG_FAILURE_NOTICE:
	case MP_MSG_SIGNAL:
	case MP_MSG_RELAY:
		return MP_SENDER_USER;
	case MP_MSG_REPLY:
	case MP_MSG_TABLE_SYNC:
	case MP_MSG_RELAYED:
		return MP_SENDER_HOST;
	}
	return 0;
}

/* ---------------------------------------------------------------- encoding */

static void
put_endpoints(mp_wbuf *w, const mp_endpoints *ep)
{
	size_t i;

	if (ep->ncand > MP_MAX_CANDIDATES) {
		w->err = w->err ? w->err : MP_ERR_INVAL;
		return;
	}
	mp_put_u8(w, ep->ncand);
	for (i = 0; i < ep->ncand; i++) {
		const mp_candidate *c = &ep->cand[i];

		if (c->family != 4 && c->family != 6) {
			w->err = w->err ? w->err : MP_ERR_INVAL;
			return;
		}
		mp_put_u8(w, c->kind);
		mp_put_u8(w, c->family);
		mp_put_bytes(w, c->addr, c->family == 4 ? 4 : 16);
		mp_put_u16(w, c->port);
	}
	mp_put_u8(w, ep->nat.mapping);
	mp_put_u8(w, ep->nat.filtering);
	mp_put_u8(w, ep->nat.allocation);
	mp_put_u16(w, (uint16_t)ep->nat.delta);
}

static void
put_pubid(mp_wbuf *w, const mp_pubid *id)
{
	mp_put_bytes(w, id->sign_pub, MP_KEY_LEN);
	mp_put_bytes(w, id->seal_pub, MP_KEY_LEN);
}

static void
put_body(mp_wbuf *w, const mp_msg *m)
{
	size_t i;

	switch (m->type) {
	case MP_MSG_REQUEST:
		mp_put_str8(w, m->u.request.reply_addr, MP_ADDR_MAX);
		mp_put_str8(w, m->u.request.name, MP_NAME_MAX);
		put_endpoints(w, &m->u.request.ep);
		break;
	case MP_MSG_REPLY:
		if (m->u.reply.npeers > MP_REPLY_MAX_PEERS) {
			w->err = MP_ERR_INVAL;
			return;
		}
		mp_put_u8(w, m->u.reply.npeers);
		for (i = 0; i < m->u.reply.npeers; i++) {
			const mp_peer *p = &m->u.reply.peers[i];

			put_pubid(w, &p->id);
			mp_put_str8(w, p->name, MP_NAME_MAX);
			put_endpoints(w, &p->ep);
			mp_put_u32(w, p->age);
			mp_put_u8(w, p->flags);
		}
		break;
	case MP_MSG_FAILURE_NOTICE:
		mp_put_bytes(w, m->u.failure.target.b, MP_UID_LEN);
		mp_put_u8(w, m->u.failure.reason);
		break;
	case MP_MSG_SIGNAL:
		mp_put_u8(w, m->u.signal.kind);
		put_endpoints(w, &m->u.signal.ep);
		mp_put_blob16(w, m->u.signal.payload, m->u.signal.payload_len, MP_SIGNAL_PAYLOAD_MAX);
		break;
	case MP_MSG_RELAY:
		mp_put_bytes(w, m->u.relay.target.b, MP_UID_LEN);
		mp_put_blob16(w, m->u.relay.inner, m->u.relay.inner_len, MP_RELAY_INNER_MAX);
		break;
	case MP_MSG_RELAYED:
		mp_put_blob16(w, m->u.relay.inner, m->u.relay.inner_len, MP_RELAY_INNER_MAX);
		break;
	case MP_MSG_TABLE_SYNC:
		if (m->u.sync.nentries > MP_SYNC_MAX_ENTRIES) {
			w->err = MP_ERR_INVAL;
			return;
		}
		mp_put_u8(w, m->u.sync.want_full);
		mp_put_u16(w, m->u.sync.nentries);
		for (i = 0; i < m->u.sync.nentries; i++) {
			const mp_sync_entry *e = &m->u.sync.entries[i];

			put_pubid(w, &e->id);
			mp_put_str8(w, e->name, MP_NAME_MAX);
			mp_put_str8(w, e->reply_addr, MP_ADDR_MAX);
			put_endpoints(w, &e->ep);
			mp_put_u64(w, e->time);
			mp_put_u8(w, e->flags);
		}
		break;
	default:
		w->err = MP_ERR_TYPE;
	}
}

int
mp_block_seal(const mp_msg *m, const mp_block_key *sender,
              const uint8_t recipient_pub[MP_KEY_LEN], uint8_t **out, size_t *outlen)
{
	return mp_block_seal_ephemeral(m, sender, recipient_pub, NULL, out, outlen);
}

int
mp_block_seal_ephemeral(const mp_msg *m, const mp_block_key *sender,
                        const uint8_t recipient_pub[MP_KEY_LEN], const uint8_t *eph_priv,
                        uint8_t **out, size_t *outlen)
{
	int kind = sender_kind_for_type(m->type);
	mp_wbuf w;
	uint8_t *plain;
	size_t plain_len;
	int rc;

	if (!kind)
		return MP_ERR_TYPE;
	if ((kind == MP_SENDER_USER) != (sender->user != NULL) ||
	    (kind == MP_SENDER_HOST) != (sender->host != NULL))
		return MP_ERR_INVAL;
	mp_wbuf_init(&w, MP_BLOCK_MAX);
	mp_put_bytes(&w, m->session_id, MP_SESSION_ID_LEN);
	mp_put_u64(&w, m->timestamp);
	if (kind == MP_SENDER_USER)
		put_pubid(&w, mp_identity_public(sender->user));
	put_body(&w, m);
	mp_put_u16(&w, 0);      /* no extensions */
	if (w.err) {
		rc = w.err;
		mp_wbuf_free(&w);
		return rc;
	}
	plain = mp_wbuf_take(&w, &plain_len);
	rc = mp_seal(m->type, plain, plain_len, sender, recipient_pub, eph_priv, out, outlen);
	OPENSSL_clear_free(plain, plain_len);
	return rc;
}

/* ---------------------------------------------------------------- decoding */

static void
bad(mp_rbuf *r)
{
	if (!r->err)
		r->err = MP_ERR_MALFORMED;
}

static void
get_endpoints(mp_rbuf *r, mp_endpoints *ep)
{
	size_t i;

	ep->ncand = mp_get_u8(r);
	if (ep->ncand > MP_MAX_CANDIDATES) {
		bad(r);
		return;
	}
	for (i = 0; i < ep->ncand && !r->err; i++) {
		mp_candidate *c = &ep->cand[i];

		c->kind = mp_get_u8(r);
		c->family = mp_get_u8(r);
		if (c->kind < MP_CAND_LOCAL || c->kind > MP_CAND_PREDICTED ||
		    (c->family != 4 && c->family != 6)) {
			bad(r);
			return;
		}
		mp_get_bytes(r, c->addr, c->family == 4 ? 4 : 16);
		c->port = mp_get_u16(r);
		if (c->port == 0)
			bad(r);
	}
	ep->nat.mapping = mp_get_u8(r);
	ep->nat.filtering = mp_get_u8(r);
	ep->nat.allocation = mp_get_u8(r);
	ep->nat.delta = (int16_t)mp_get_u16(r);
	if (ep->nat.mapping > MP_NAT_NONE || ep->nat.filtering > MP_NAT_NONE ||
	    ep->nat.allocation > MP_ALLOC_RANDOM)
		bad(r);
}

static void
get_pubid(mp_rbuf *r, mp_pubid *id)
{
	mp_get_bytes(r, id->sign_pub, MP_KEY_LEN);
	mp_get_bytes(r, id->seal_pub, MP_KEY_LEN);
}

static void
get_address(mp_rbuf *r, char *buf)
{
	mp_get_str8(r, buf, MP_ADDR_MAX);
	if (!r->err && mp_parse_mail_address(buf) != MP_OK)
		bad(r);
}

static void
get_body(mp_rbuf *r, mp_msg *m)
{
	size_t i;

	switch (m->type) {
	case MP_MSG_REQUEST:
		get_address(r, m->u.request.reply_addr);
		mp_get_str8(r, m->u.request.name, MP_NAME_MAX);
		get_endpoints(r, &m->u.request.ep);
		break;
	case MP_MSG_REPLY:
		m->u.reply.npeers = mp_get_u8(r);
		if (m->u.reply.npeers > MP_REPLY_MAX_PEERS) {
			bad(r);
			return;
		}
		for (i = 0; i < m->u.reply.npeers && !r->err; i++) {
			mp_peer *p = &m->u.reply.peers[i];

			get_pubid(r, &p->id);
			mp_get_str8(r, p->name, MP_NAME_MAX);
			get_endpoints(r, &p->ep);
			p->age = mp_get_u32(r);
			p->flags = mp_get_u8(r);
		}
		break;
	case MP_MSG_FAILURE_NOTICE:
		mp_get_bytes(r, m->u.failure.target.b, MP_UID_LEN);
		m->u.failure.reason = mp_get_u8(r);
		break;
	case MP_MSG_SIGNAL:
		m->u.signal.kind = mp_get_u8(r);
		get_endpoints(r, &m->u.signal.ep);
		mp_get_blob16(r, m->u.signal.payload, MP_SIGNAL_PAYLOAD_MAX, &m->u.signal.payload_len);
		break;
	case MP_MSG_RELAY:
		mp_get_bytes(r, m->u.relay.target.b, MP_UID_LEN);
		mp_get_blob16(r, m->u.relay.inner, MP_RELAY_INNER_MAX, &m->u.relay.inner_len);
		break;
	case MP_MSG_RELAYED:
		mp_get_blob16(r, m->u.relay.inner, MP_RELAY_INNER_MAX, &m->u.relay.inner_len);
		break;
	case MP_MSG_TABLE_SYNC:
		m->u.sync.want_full = mp_get_u8(r);
		m->u.sync.nentries = mp_get_u16(r);
		if (m->u.sync.want_full > 1 || m->u.sync.nentries > MP_SYNC_MAX_ENTRIES) {
			bad(r);
			return;
		}
		for (i = 0; i < m->u.sync.nentries && !r->err; i++) {
			mp_sync_entry *e = &m->u.sync.entries[i];

			get_pubid(r, &e->id);
			mp_get_str8(r, e->name, MP_NAME_MAX);
			get_address(r, e->reply_addr);
			get_endpoints(r, &e->ep);
			e->time = mp_get_u64(r);
			e->flags = mp_get_u8(r);
		}
		break;
	default:
		bad(r);
	}
}

/* Decodes a plaintext that seal.c has already authenticated. */
static int
decode_plain(const mp_unsealed *u, mp_msg *m)
{
	mp_rbuf r;
	uint16_t ext_len;

	mp_rbuf_init(&r, u->plain, u->plain_len);
	m->type = u->hdr.type;
	m->sender_kind = u->hdr.sender_kind;
	mp_get_bytes(&r, m->session_id, MP_SESSION_ID_LEN);
	m->timestamp = mp_get_u64(&r);
	if (m->sender_kind == MP_SENDER_USER)
		get_pubid(&r, &m->sender);
	else
		memcpy(m->sender_host, u->sender_host, MP_KEY_LEN);
	get_body(&r, m);
	ext_len = mp_get_u16(&r);
	if (ext_len > EXT_MAX)
		bad(&r);
	mp_get_view(&r, ext_len);
	if (!r.err && mp_rbuf_left(&r) != 0)
		bad(&r);
	/* Inside an authenticated block, a short field is a format error. */
	return r.err == MP_ERR_TRUNCATED ? MP_ERR_MALFORMED : r.err;
}

int
mp_block_open(const uint8_t *blk, size_t len, const mp_block_key *recipient, mp_msg **out)
{
	mp_block_header h;
	mp_unsealed u;
	mp_msg *m;
	int rc;

	*out = NULL;
	if ((rc = mp_block_peek(blk, len, &h)) != MP_OK)
		return rc;
	/* Checked before any crypto: a user cannot pose as a host. */
	if (sender_kind_for_type(h.type) != h.sender_kind)
		return MP_ERR_TYPE;
	if ((rc = mp_unseal(blk, len, recipient, SIGN_KEY_OFFSET, &u)) != MP_OK)
		return rc;
	m = calloc(1, sizeof *m);
	if (!m) {
		mp_unsealed_free(&u);
		return MP_ERR_NOMEM;
	}
	rc = decode_plain(&u, m);
	mp_unsealed_free(&u);
	if (rc != MP_OK) {
		mp_msg_free(m);
		return rc;
	}
	*out = m;
	return MP_OK;
}

/* ---------------------------------------------------------------- helpers */

int
mp_candidate_format(const mp_candidate *c, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	int n;

	if (!inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, addr, sizeof addr))
		return MP_ERR_INVAL;
	n = snprintf(buf, len, c->family == 4 ? "%s:%u" : "[%s]:%u", addr, (unsigned)c->port);
	return n < 0 || (size_t)n >= len ? MP_ERR_TOOBIG : MP_OK;
}

int
mp_candidate_parse(const char *text, mp_cand_kind kind, mp_candidate *c)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	char *end;
	unsigned long port;
	size_t hlen;

	memset(c, 0, sizeof *c);
	c->kind = (uint8_t)kind;
	colon = strrchr(text, ':');
	if (!colon || colon == text)
		return MP_ERR_SYNTAX;
	hlen = (size_t)(colon - text);
	if (text[0] == '[') {
		if (hlen < 3 || text[hlen - 1] != ']' || hlen - 2 >= sizeof host)
			return MP_ERR_SYNTAX;
		memcpy(host, text + 1, hlen - 2);
		host[hlen - 2] = '\0';
		c->family = 6;
	} else {
		if (hlen >= sizeof host)
			return MP_ERR_SYNTAX;
		memcpy(host, text, hlen);
		host[hlen] = '\0';
		c->family = 4;
	}
	if (inet_pton(c->family == 4 ? AF_INET : AF_INET6, host, c->addr) != 1)
		return MP_ERR_SYNTAX;
	if (colon[1] < '0' || colon[1] > '9')
		return MP_ERR_SYNTAX;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535)
		return MP_ERR_SYNTAX;
	c->port = (uint16_t)port;
	return MP_OK;
}

const char *
mp_nat_dep_name(int dep)
{
	switch (dep) {
	case MP_NAT_INDEPENDENT: return "endpoint-independent";
	case MP_NAT_ADDR_DEP: return "address-dependent";
	case MP_NAT_ADDR_PORT_DEP: return "address-and-port-dependent";
	case MP_NAT_NONE: return "no-nat";
	}
	return "unknown";
}

const char *
mp_nat_alloc_name(int alloc)
{
	switch (alloc) {
	case MP_ALLOC_PRESERVING: return "port-preserving";
	case MP_ALLOC_SEQUENTIAL: return "sequential";
	case MP_ALLOC_RANDOM: return "random";
	}
	return "unknown";
}
