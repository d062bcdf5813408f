/*
 * stun.c - the STUN message codec (see include/mailpunch/stun.h).
 *
 * Parsing is one pass over the attributes with every length checked
 * before use; a known attribute must have exactly its size and values,
 * an unknown comprehension-required one is reported, not fatal (the
 * caller decides: RFC 5389 discards such a success response but a
 * server answers a request with 420).  FINGERPRINT is checked during the
 * parse because it needs no key; it must be the last attribute.  Padding
 * bytes are skipped whatever they hold, as the RFC asks.
 *
 * Crypto: HMAC-SHA1 and MD5 through OpenSSL's EVP interfaces, the
 * transaction ID from RAND_bytes.  CRC-32 (FINGERPRINT) is computed
 * bitwise here: it is not crypto, messages are small, and a table would
 * be shared state for no gain.
 */
#include "mailpunch/stun.h"
#include "mailpunch/error.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define FINGERPRINT_XOR 0x5354554Eu
#define ATTR_HDR 4

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t
pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* IEEE 802.3 CRC-32, reflected, as zlib's crc32(). */
static uint32_t
crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;

	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

/*
 * HMAC-SHA1 over buf[0..len) as if the header's length field said
 * hdr_len: MESSAGE-INTEGRITY covers the message up to itself, with the
 * length adjusted to end just after it (RFC 5389 §15.4).
 */
static int
stun_hmac(const uint8_t *buf, size_t len, uint16_t hdr_len,
          const uint8_t *key, size_t keylen, uint8_t out[MP_STUN_HMAC_LEN])
{
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	uint8_t hdr[MP_STUN_HEADER_LEN];
	size_t outlen = 0;
	int rc = MP_ERR_CRYPTO;

	if (len < MP_STUN_HEADER_LEN || !key || keylen == 0)
		return MP_ERR_INVAL;
	memcpy(hdr, buf, sizeof hdr);
	put16(hdr + 2, hdr_len);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0);
	params[1] = OSSL_PARAM_construct_end();
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac)
		ctx = EVP_MAC_CTX_new(mac);
	if (ctx && EVP_MAC_init(ctx, key, keylen, params) == 1 &&
	    EVP_MAC_update(ctx, hdr, sizeof hdr) == 1 &&
	    EVP_MAC_update(ctx, buf + sizeof hdr, len - sizeof hdr) == 1 &&
	    EVP_MAC_final(ctx, out, &outlen, MP_STUN_HMAC_LEN) == 1 &&
	    outlen == MP_STUN_HMAC_LEN)
		rc = MP_OK;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

/* ---------------------------------------------------------------- parsing */

/*
 * MAPPED-ADDRESS and its relatives: a reserved byte (ignored), family,
 * port, address; the XOR variant masks them with the cookie and, for
 * IPv6, the transaction ID.
 */
static int
parse_addr(const uint8_t *v, size_t n, int xor, const uint8_t *hdr,
           uint8_t kind, mp_candidate *c)
{
	uint8_t family;
	size_t alen;

	if (n < 4)
		return MP_ERR_MALFORMED;
	family = v[1];
	if (family == 0x01)
		alen = 4;
	else if (family == 0x02)
		alen = 16;
	else
		return MP_ERR_MALFORMED;
	if (n != 4 + alen)
		return MP_ERR_MALFORMED;
	memset(c, 0, sizeof *c);
	c->kind = kind;
	c->family = family == 0x01 ? 4 : 6;
	c->port = get16(v + 2);
	memcpy(c->addr, v + 4, alen);
	if (xor) {
		/* hdr + 4: the cookie, then the transaction ID */
		c->port ^= (uint16_t)(MP_STUN_MAGIC_COOKIE >> 16);
		for (size_t i = 0; i < alen; i++)
			c->addr[i] ^= hdr[4 + i];
	}
	return MP_OK;
}

static int
parse_text(const uint8_t *v, size_t n, size_t max, char *dst, uint16_t *dlen)
{
	if (n > max)
		return MP_ERR_MALFORMED;
	memcpy(dst, v, n);
	dst[n] = '\0';
	*dlen = (uint16_t)n;
	return MP_OK;
}

static int
parse_error_code(const uint8_t *v, size_t n, mp_stun_msg *m)
{
	unsigned cls, num;

	if (n < 4)
		return MP_ERR_MALFORMED;
	cls = v[2] & 0x07;
	num = v[3];
	if (cls < 3 || cls > 6 || num > 99)
		return MP_ERR_MALFORMED;
	m->error_code = (uint16_t)(cls * 100 + num);
	return parse_text(v + 4, n - 4, MP_STUN_TEXT_MAX, m->reason, &m->reason_len);
}

static void
note_unknown(mp_stun_msg *m, uint16_t type)
{
	if (m->nunknown < MP_STUN_UNKNOWN_MAX)
		m->unknown[m->nunknown] = type;
	m->nunknown++;
}

/* Legacy RFC 3489 addresses, kept aside until the RFC 5780 ones are
 * known to be missing. */
typedef struct legacy_addrs {
	int have_source, have_changed;
	mp_candidate source, changed;
} legacy_addrs;

/* Decodes one attribute that is not MESSAGE-INTEGRITY or FINGERPRINT. */
static int
parse_attr(uint16_t type, const uint8_t *v, size_t n, const uint8_t *hdr,
           mp_stun_msg *m, legacy_addrs *lg)
{
	switch (type) {
	case MP_STUN_ATTR_XOR_MAPPED_ADDRESS:
		if (m->have & MP_STUN_HAVE_XOR_MAPPED)
			return MP_OK;
		m->have |= MP_STUN_HAVE_XOR_MAPPED;
		return parse_addr(v, n, 1, hdr, MP_CAND_SRFLX, &m->xor_mapped);
	case MP_STUN_ATTR_MAPPED_ADDRESS:
		if (m->have & MP_STUN_HAVE_MAPPED)
			return MP_OK;
		m->have |= MP_STUN_HAVE_MAPPED;
		return parse_addr(v, n, 0, hdr, MP_CAND_SRFLX, &m->mapped);
	case MP_STUN_ATTR_RESPONSE_ORIGIN:
		if (m->have & MP_STUN_HAVE_RESPONSE_ORIGIN)
			return MP_OK;
		m->have |= MP_STUN_HAVE_RESPONSE_ORIGIN;
		return parse_addr(v, n, 0, hdr, 0, &m->response_origin);
	case MP_STUN_ATTR_OTHER_ADDRESS:
		if (m->have & MP_STUN_HAVE_OTHER_ADDRESS)
			return MP_OK;
		m->have |= MP_STUN_HAVE_OTHER_ADDRESS;
		return parse_addr(v, n, 0, hdr, 0, &m->other_address);
	case MP_STUN_ATTR_SOURCE_ADDRESS:
		if (lg->have_source)
			return MP_OK;
		lg->have_source = 1;
		return parse_addr(v, n, 0, hdr, 0, &lg->source);
	case MP_STUN_ATTR_CHANGED_ADDRESS:
		if (lg->have_changed)
			return MP_OK;
		lg->have_changed = 1;
		return parse_addr(v, n, 0, hdr, 0, &lg->changed);
	case MP_STUN_ATTR_CHANGE_REQUEST:
		if (m->have & MP_STUN_HAVE_CHANGE_REQUEST)
			return MP_OK;
		if (n != 4)
			return MP_ERR_MALFORMED;
		m->have |= MP_STUN_HAVE_CHANGE_REQUEST;
		m->change_flags = get32(v);
		return MP_OK;
	case MP_STUN_ATTR_ERROR_CODE:
		if (m->have & MP_STUN_HAVE_ERROR_CODE)
			return MP_OK;
		m->have |= MP_STUN_HAVE_ERROR_CODE;
		return parse_error_code(v, n, m);
	case MP_STUN_ATTR_USERNAME:
		if (m->have & MP_STUN_HAVE_USERNAME)
			return MP_OK;
		m->have |= MP_STUN_HAVE_USERNAME;
		return parse_text(v, n, MP_STUN_USERNAME_MAX, m->username, &m->username_len);
	case MP_STUN_ATTR_REALM:
		if (m->have & MP_STUN_HAVE_REALM)
			return MP_OK;
		m->have |= MP_STUN_HAVE_REALM;
		return parse_text(v, n, MP_STUN_TEXT_MAX, m->realm, &m->realm_len);
	case MP_STUN_ATTR_NONCE:
		if (m->have & MP_STUN_HAVE_NONCE)
			return MP_OK;
		m->have |= MP_STUN_HAVE_NONCE;
		return parse_text(v, n, MP_STUN_TEXT_MAX, m->nonce, &m->nonce_len);
	case MP_STUN_ATTR_SOFTWARE:
		if (m->have & MP_STUN_HAVE_SOFTWARE)
			return MP_OK;
		m->have |= MP_STUN_HAVE_SOFTWARE;
		return parse_text(v, n, MP_STUN_TEXT_MAX, m->software, &m->software_len);
	case MP_STUN_ATTR_UNKNOWN_ATTRIBUTES:
		/* understood, but of no use to a Binding client */
		return n % 2 == 0 ? MP_OK : MP_ERR_MALFORMED;
	}
	if (type < 0x8000)
		note_unknown(m, type);
	return MP_OK;
}

static int
check_header(const uint8_t *buf, size_t len, size_t *body)
{
	size_t hlen;

	if (len > MP_STUN_MSG_MAX)
		return MP_ERR_TOOBIG;
	if (len < MP_STUN_HEADER_LEN)
		return MP_ERR_TRUNCATED;
	if ((buf[0] & 0xC0) != 0 || get32(buf + 4) != MP_STUN_MAGIC_COOKIE)
		return MP_ERR_MAGIC;
	hlen = get16(buf + 2);
	if (hlen % 4 != 0)
		return MP_ERR_MALFORMED;
	if (MP_STUN_HEADER_LEN + hlen > len)
		return MP_ERR_TRUNCATED;
	if (MP_STUN_HEADER_LEN + hlen < len)
		return MP_ERR_MALFORMED;
	*body = hlen;
	return MP_OK;
}

static void
decode_type(const uint8_t *buf, mp_stun_msg *m)
{
	uint16_t t = get16(buf);

	m->type = t;
	/* method bits M11..M0 are interleaved with the class bits C1, C0 */
	m->method = (uint16_t)((t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2));
	m->cls = (uint8_t)(((t & 0x0100) >> 7) | ((t & 0x0010) >> 4));
	memcpy(m->tid, buf + 8, MP_STUN_TID_LEN);
}

static int
check_fingerprint(const uint8_t *buf, size_t off, const uint8_t *v, size_t n)
{
	if (n != 4)
		return MP_ERR_MALFORMED;
	return (crc32_ieee(buf, off) ^ FINGERPRINT_XOR) == get32(v) ? MP_OK : MP_ERR_MAGIC;
}

int
mp_stun_parse(const uint8_t *buf, size_t len, mp_stun_msg *m)
{
	legacy_addrs lg;
	size_t body, off;
	int rc, after_integrity = 0;

	if (!buf || !m)
		return MP_ERR_INVAL;
	memset(m, 0, sizeof *m);
	memset(&lg, 0, sizeof lg);
	if ((rc = check_header(buf, len, &body)) != MP_OK)
		return rc;
	decode_type(buf, m);
	m->len = len;
	for (off = MP_STUN_HEADER_LEN; off < len;) {
		uint16_t type, n;
		const uint8_t *v;

		if (m->have & MP_STUN_HAVE_FINGERPRINT)
			return MP_ERR_MALFORMED;        /* FINGERPRINT must be last */
		if (len - off < ATTR_HDR)
			return MP_ERR_TRUNCATED;
		type = get16(buf + off);
		n = get16(buf + off + 2);
		if (pad4(n) > len - off - ATTR_HDR)
			return MP_ERR_TRUNCATED;
		v = buf + off + ATTR_HDR;
		if (type == MP_STUN_ATTR_FINGERPRINT) {
			if ((rc = check_fingerprint(buf, off, v, n)) != MP_OK)
				return rc;
			m->have |= MP_STUN_HAVE_FINGERPRINT;
		} else if (after_integrity) {
			;       /* RFC 5389 §15.4: ignored */
		} else if (type == MP_STUN_ATTR_MESSAGE_INTEGRITY) {
			if (n != MP_STUN_HMAC_LEN)
				return MP_ERR_MALFORMED;
			m->have |= MP_STUN_HAVE_INTEGRITY;
			m->integrity_off = off;
			after_integrity = 1;
		} else if ((rc = parse_attr(type, v, n, buf, m, &lg)) != MP_OK) {
			return rc;
		}
		off += ATTR_HDR + pad4(n);
	}
	if (!(m->have & MP_STUN_HAVE_RESPONSE_ORIGIN) && lg.have_source) {
		m->response_origin = lg.source;
		m->have |= MP_STUN_HAVE_RESPONSE_ORIGIN;
	}
	if (!(m->have & MP_STUN_HAVE_OTHER_ADDRESS) && lg.have_changed) {
		m->other_address = lg.changed;
		m->have |= MP_STUN_HAVE_OTHER_ADDRESS;
	}
	return MP_OK;
}

int
mp_stun_check_integrity(const uint8_t *buf, size_t len, const mp_stun_msg *m,
                        const uint8_t *key, size_t keylen)
{
	uint8_t mac[MP_STUN_HMAC_LEN];
	size_t off;
	int rc;

	if (!buf || !m || !key || keylen == 0)
		return MP_ERR_INVAL;
	if (!(m->have & MP_STUN_HAVE_INTEGRITY))
		return MP_ERR_NOTFOUND;
	off = m->integrity_off;
	/* m must describe these very bytes */
	if (len != m->len || off < MP_STUN_HEADER_LEN ||
	    off + ATTR_HDR + MP_STUN_HMAC_LEN > len)
		return MP_ERR_INVAL;
	rc = stun_hmac(buf, off, (uint16_t)(off + ATTR_HDR + MP_STUN_HMAC_LEN - MP_STUN_HEADER_LEN),
	               key, keylen, mac);
	if (rc != MP_OK)
		return rc;
	rc = CRYPTO_memcmp(mac, buf + off + ATTR_HDR, sizeof mac) == 0 ? MP_OK : MP_ERR_SIGNATURE;
	OPENSSL_cleanse(mac, sizeof mac);
	return rc;
}

int
mp_stun_is_response_to(const mp_stun_msg *m, uint16_t method,
                       const uint8_t tid[MP_STUN_TID_LEN])
{
	return m->method == method &&
	       (m->cls == MP_STUN_CLASS_SUCCESS || m->cls == MP_STUN_CLASS_ERROR) &&
	       memcmp(m->tid, tid, MP_STUN_TID_LEN) == 0;
}

int
mp_stun_longterm_key(const char *username, const char *realm,
                     const char *password, uint8_t key[MP_STUN_LONGTERM_KEY_LEN])
{
	EVP_MD_CTX *ctx;
	const EVP_MD *md;
	unsigned int outlen = 0;
	int ok;

	if (!username || !realm || !password || !key)
		return MP_ERR_INVAL;
	md = EVP_md5();
	ctx = EVP_MD_CTX_new();
	ok = md && ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
	     EVP_DigestUpdate(ctx, username, strlen(username)) == 1 &&
	     EVP_DigestUpdate(ctx, ":", 1) == 1 &&
	     EVP_DigestUpdate(ctx, realm, strlen(realm)) == 1 &&
	     EVP_DigestUpdate(ctx, ":", 1) == 1 &&
	     EVP_DigestUpdate(ctx, password, strlen(password)) == 1 &&
	     EVP_DigestFinal_ex(ctx, key, &outlen) == 1 &&
	     outlen == MP_STUN_LONGTERM_KEY_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? MP_OK : MP_ERR_CRYPTO;
}

/* ---------------------------------------------------------------- building */

static int
fail(mp_stun_builder *b, int err)
{
	if (b->err == MP_OK)
		b->err = err;
	return b->err;
}

int
mp_stun_builder_init(mp_stun_builder *b, uint8_t *buf, size_t cap,
                     uint16_t type, const uint8_t tid[MP_STUN_TID_LEN])
{
	if (!b)
		return MP_ERR_INVAL;
	memset(b, 0, sizeof *b);
	b->buf = buf;
	b->cap = cap > MP_STUN_MSG_MAX ? MP_STUN_MSG_MAX : cap;
	if (!buf || !tid || (type & 0xC000) != 0)
		return fail(b, MP_ERR_INVAL);
	if (b->cap < MP_STUN_HEADER_LEN)
		return fail(b, MP_ERR_TOOBIG);
	put16(buf, type);
	put16(buf + 2, 0);
	put32(buf + 4, MP_STUN_MAGIC_COOKIE);
	memcpy(buf + 8, tid, MP_STUN_TID_LEN);
	b->len = MP_STUN_HEADER_LEN;
	return MP_OK;
}

int
mp_stun_add_attr(mp_stun_builder *b, uint16_t type, const void *val, size_t len)
{
	size_t total;

	if (b->err != MP_OK)
		return b->err;
	if (len > 0xFFFF || (len > 0 && !val))
		return fail(b, MP_ERR_INVAL);
	total = ATTR_HDR + pad4(len);
	if (total > b->cap - b->len)
		return fail(b, MP_ERR_TOOBIG);
	put16(b->buf + b->len, type);
	put16(b->buf + b->len + 2, (uint16_t)len);
	if (len > 0)
		memcpy(b->buf + b->len + ATTR_HDR, val, len);
	memset(b->buf + b->len + ATTR_HDR + len, b->pad_byte, pad4(len) - len);
	b->len += total;
	put16(b->buf + 2, (uint16_t)(b->len - MP_STUN_HEADER_LEN));
	return MP_OK;
}

int
mp_stun_add_u32(mp_stun_builder *b, uint16_t type, uint32_t val)
{
	uint8_t v[4];

	put32(v, val);
	return mp_stun_add_attr(b, type, v, sizeof v);
}

int
mp_stun_add_addr(mp_stun_builder *b, uint16_t type, const mp_candidate *c)
{
	uint8_t v[20];
	size_t alen;

	if (b->err != MP_OK)
		return b->err;
	if (!c || (c->family != 4 && c->family != 6))
		return fail(b, MP_ERR_INVAL);
	alen = c->family == 4 ? 4 : 16;
	v[0] = 0;
	v[1] = c->family == 4 ? 0x01 : 0x02;
	put16(v + 2, c->port);
	memcpy(v + 4, c->addr, alen);
	if (type == MP_STUN_ATTR_XOR_MAPPED_ADDRESS) {
		v[2] ^= b->buf[4];
		v[3] ^= b->buf[5];
		for (size_t i = 0; i < alen; i++)
			v[4 + i] ^= b->buf[4 + i];
	}
	return mp_stun_add_attr(b, type, v, 4 + alen);
}

int
mp_stun_add_error(mp_stun_builder *b, uint16_t code, const char *reason)
{
	uint8_t v[4 + MP_STUN_TEXT_MAX];
	size_t rlen = reason ? strlen(reason) : 0;

	if (b->err != MP_OK)
		return b->err;
	if (code < 300 || code > 699)
		return fail(b, MP_ERR_INVAL);
	if (rlen > MP_STUN_TEXT_MAX)
		return fail(b, MP_ERR_TOOBIG);
	v[0] = v[1] = 0;
	v[2] = (uint8_t)(code / 100);
	v[3] = (uint8_t)(code % 100);
	if (rlen > 0)
		memcpy(v + 4, reason, rlen);
	return mp_stun_add_attr(b, MP_STUN_ATTR_ERROR_CODE, v, 4 + rlen);
}

int
mp_stun_add_integrity(mp_stun_builder *b, const uint8_t *key, size_t keylen)
{
	uint8_t mac[MP_STUN_HMAC_LEN];
	int rc;

	if (b->err != MP_OK)
		return b->err;
	if (!key || keylen == 0)
		return fail(b, MP_ERR_INVAL);
	if (ATTR_HDR + MP_STUN_HMAC_LEN > b->cap - b->len)
		return fail(b, MP_ERR_TOOBIG);
	rc = stun_hmac(b->buf, b->len,
	               (uint16_t)(b->len + ATTR_HDR + MP_STUN_HMAC_LEN - MP_STUN_HEADER_LEN),
	               key, keylen, mac);
	if (rc != MP_OK)
		return fail(b, rc);
	rc = mp_stun_add_attr(b, MP_STUN_ATTR_MESSAGE_INTEGRITY, mac, sizeof mac);
	OPENSSL_cleanse(mac, sizeof mac);
	return rc;
}

int
mp_stun_add_fingerprint(mp_stun_builder *b)
{
	uint32_t crc;

	if (b->err != MP_OK)
		return b->err;
	if (ATTR_HDR + 4 > b->cap - b->len)
		return fail(b, MP_ERR_TOOBIG);
	/* the CRC covers a header whose length already counts FINGERPRINT */
	put16(b->buf + 2, (uint16_t)(b->len + ATTR_HDR + 4 - MP_STUN_HEADER_LEN));
	crc = crc32_ieee(b->buf, b->len) ^ FINGERPRINT_XOR;
	return mp_stun_add_u32(b, MP_STUN_ATTR_FINGERPRINT, crc);
}

int
mp_stun_builder_finish(const mp_stun_builder *b, size_t *outlen)
{
	if (!b)
		return MP_ERR_INVAL;
	if (b->err != MP_OK)
		return b->err;
	if (outlen)
		*outlen = b->len;
	return MP_OK;
}

static int
add_text(mp_stun_builder *b, uint16_t type, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		return fail(b, MP_ERR_TOOBIG);
	return mp_stun_add_attr(b, type, s, n);
}

int
mp_stun_binding_request(const mp_stun_request *r, uint8_t tid[MP_STUN_TID_LEN],
                        uint8_t *buf, size_t cap, size_t *outlen)
{
	mp_stun_builder b;

	if (!r || !tid || !buf || !outlen)
		return MP_ERR_INVAL;
	if (RAND_bytes(tid, MP_STUN_TID_LEN) != 1)
		return MP_ERR_CRYPTO;
	mp_stun_builder_init(&b, buf, cap, MP_STUN_BINDING_REQUEST, tid);
	if (r->software)
		add_text(&b, MP_STUN_ATTR_SOFTWARE, r->software, MP_STUN_TEXT_MAX);
	if (r->change_request)
		mp_stun_add_u32(&b, MP_STUN_ATTR_CHANGE_REQUEST,
		                r->change_flags & (MP_STUN_CHANGE_IP | MP_STUN_CHANGE_PORT));
	if (r->key) {
		if (r->username)
			add_text(&b, MP_STUN_ATTR_USERNAME, r->username, MP_STUN_USERNAME_MAX);
		if (r->realm)
			add_text(&b, MP_STUN_ATTR_REALM, r->realm, MP_STUN_TEXT_MAX);
		if (r->nonce)
			add_text(&b, MP_STUN_ATTR_NONCE, r->nonce, MP_STUN_TEXT_MAX);
		mp_stun_add_integrity(&b, r->key, r->keylen);
	}
	if (r->fingerprint)
		mp_stun_add_fingerprint(&b);
	return mp_stun_builder_finish(&b, outlen);
}

const char *
mp_stun_attr_name(uint16_t type)
{
	switch (type) {
	case MP_STUN_ATTR_MAPPED_ADDRESS: return "MAPPED-ADDRESS";
	case MP_STUN_ATTR_CHANGE_REQUEST: return "CHANGE-REQUEST";
	case MP_STUN_ATTR_SOURCE_ADDRESS: return "SOURCE-ADDRESS";
	case MP_STUN_ATTR_CHANGED_ADDRESS: return "CHANGED-ADDRESS";
	case MP_STUN_ATTR_USERNAME: return "USERNAME";
	case MP_STUN_ATTR_MESSAGE_INTEGRITY: return "MESSAGE-INTEGRITY";
	case MP_STUN_ATTR_ERROR_CODE: return "ERROR-CODE";
	case MP_STUN_ATTR_UNKNOWN_ATTRIBUTES: return "UNKNOWN-ATTRIBUTES";
	case MP_STUN_ATTR_REALM: return "REALM";
	case MP_STUN_ATTR_NONCE: return "NONCE";
	case MP_STUN_ATTR_XOR_MAPPED_ADDRESS: return "XOR-MAPPED-ADDRESS";
	case MP_STUN_ATTR_SOFTWARE: return "SOFTWARE";
	case MP_STUN_ATTR_FINGERPRINT: return "FINGERPRINT";
	case MP_STUN_ATTR_RESPONSE_ORIGIN: return "RESPONSE-ORIGIN";
	case MP_STUN_ATTR_OTHER_ADDRESS: return "OTHER-ADDRESS";
	}
	return "UNKNOWN";
}
