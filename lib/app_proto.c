/*
 * app_proto.c - encoders and strict decoders of the application stream
 * header, frames and UDP forwarding datagrams (include/mailpunch/app.h).
 *
 * Interface: see app.h.  Decoders read through mp_rbuf, so no field can
 * be read past the span, and they refuse trailing bytes: a payload means
 * exactly one thing.  Errors are mp_err values; nothing is logged.
 */
#include <string.h>

#include "mailpunch/app.h"
#include "mailpunch/error.h"
#include "wire.h"

static const uint8_t magic[3] = { 'm', 'p', 'a' };

void
mp_app_header_encode(uint8_t out[MP_APP_HDR_LEN], int type)
{
	memcpy(out, magic, sizeof magic);
	out[3] = MP_APP_VERSION;
	out[4] = (uint8_t)type;
}

int
mp_app_header_decode(const uint8_t *p, size_t len, int *type)
{
	if (len < MP_APP_HDR_LEN)
		return MP_ERR_TRUNCATED;
	if (memcmp(p, magic, sizeof magic))
		return MP_ERR_MAGIC;
	if (p[3] != MP_APP_VERSION)
		return MP_ERR_VERSION;
	if (p[4] < MP_APP_FILE || p[4] > MP_APP_PIPE)
		return MP_ERR_TYPE;
	*type = p[4];
	return MP_OK;
}

static int
known_frame(uint8_t t)
{
	return (t >= MP_FR_OFFER && t <= MP_FR_RESULT) || (t >= MP_FR_OPEN && t <= MP_FR_FIN);
}

int
mp_app_frame_head(const uint8_t *p, size_t len, uint8_t *type, uint32_t *plen)
{
	uint32_t n;

	if (len < MP_APP_FRAME_HDR)
		return MP_ERR_TRUNCATED;
	if (!known_frame(p[0]))
		return MP_ERR_TYPE;
	n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	if (n > MP_APP_FRAME_MAX)
		return MP_ERR_TOOBIG;
	*type = p[0];
	*plen = n;
	return MP_OK;
}

void
mp_app_frame_put_head(uint8_t out[MP_APP_FRAME_HDR], uint8_t type, uint32_t plen)
{
	out[0] = type;
	out[1] = (uint8_t)(plen >> 24);
	out[2] = (uint8_t)(plen >> 16);
	out[3] = (uint8_t)(plen >> 8);
	out[4] = (uint8_t)plen;
}

/* Builds a frame in a bounded writer, then copies it out: one place
 * checks the cap and patches the length into the head. */
static int
finish(mp_wbuf *w, uint8_t type, uint8_t *out, size_t cap, size_t *len)
{
	int err = w->err;

	if (!err && w->len - MP_APP_FRAME_HDR > MP_APP_FRAME_MAX)
		err = MP_ERR_TOOBIG;
	if (!err && w->len > cap)
		err = MP_ERR_TOOBIG;
	if (!err) {
		mp_app_frame_put_head(w->data, type, (uint32_t)(w->len - MP_APP_FRAME_HDR));
		memcpy(out, w->data, w->len);
		*len = w->len;
	}
	mp_wbuf_free(w);
	return err;
}

static void
start(mp_wbuf *w)
{
	static const uint8_t zero[MP_APP_FRAME_HDR];

	mp_wbuf_init(w, MP_APP_FRAME_HDR + 1024);
	mp_put_bytes(w, zero, sizeof zero);
}

int
mp_app_offer_encode(const mp_app_offer *o, uint8_t *out, size_t cap, size_t *len)
{
	mp_wbuf w;

	if (mp_app_name_check(o->name) != MP_OK)
		return MP_ERR_SYNTAX;
	start(&w);
	mp_put_str8(&w, o->name, MP_APP_NAME_MAX);
	mp_put_u64(&w, o->size);
	mp_put_bytes(&w, o->sha256, MP_APP_SHA256_LEN);
	return finish(&w, MP_FR_OFFER, out, cap, len);
}

int
mp_app_u64_encode(uint8_t type, uint64_t v, uint8_t *out, size_t cap, size_t *len)
{
	mp_wbuf w;

	start(&w);
	mp_put_u64(&w, v);
	return finish(&w, type, out, cap, len);
}

int
mp_app_u8_encode(uint8_t type, uint8_t v, uint8_t *out, size_t cap, size_t *len)
{
	mp_wbuf w;

	start(&w);
	mp_put_u8(&w, v);
	return finish(&w, type, out, cap, len);
}

int
mp_app_refuse_encode(uint8_t reason, const char *text, uint8_t *out, size_t cap, size_t *len)
{
	mp_wbuf w;

	start(&w);
	mp_put_u8(&w, reason);
	mp_put_str8(&w, text ? text : "", MP_APP_TEXT_MAX);
	return finish(&w, MP_FR_REFUSE, out, cap, len);
}

int
mp_app_open_encode(const char *host, uint16_t port, uint8_t *out, size_t cap, size_t *len)
{
	mp_wbuf w;

	if (mp_app_host_check(host) != MP_OK || port == 0)
		return MP_ERR_SYNTAX;
	start(&w);
	mp_put_str8(&w, host, MP_APP_HOST_MAX);
	mp_put_u16(&w, port);
	return finish(&w, MP_FR_OPEN, out, cap, len);
}

/* A decode succeeds only when the reader met no error and used it all. */
static int
done(const mp_rbuf *r)
{
	if (r->err)
		return r->err;
	return mp_rbuf_left(r) ? MP_ERR_MALFORMED : MP_OK;
}

int
mp_app_offer_decode(const uint8_t *p, size_t len, mp_app_offer *o)
{
	mp_rbuf r;
	int err;

	mp_rbuf_init(&r, p, len);
	mp_get_str8(&r, o->name, MP_APP_NAME_MAX);
	o->size = mp_get_u64(&r);
	mp_get_bytes(&r, o->sha256, MP_APP_SHA256_LEN);
	if ((err = done(&r)) != MP_OK)
		return err;
	return mp_app_name_check(o->name);
}

int
mp_app_u64_decode(const uint8_t *p, size_t len, uint64_t *v)
{
	mp_rbuf r;

	mp_rbuf_init(&r, p, len);
	*v = mp_get_u64(&r);
	return done(&r);
}

int
mp_app_u8_decode(const uint8_t *p, size_t len, uint8_t *v)
{
	mp_rbuf r;

	mp_rbuf_init(&r, p, len);
	*v = mp_get_u8(&r);
	return done(&r);
}

int
mp_app_refuse_decode(const uint8_t *p, size_t len, uint8_t *reason, char text[MP_APP_TEXT_MAX + 1])
{
	mp_rbuf r;

	mp_rbuf_init(&r, p, len);
	*reason = mp_get_u8(&r);
	mp_get_str8(&r, text, MP_APP_TEXT_MAX);
	return done(&r);
}

int
mp_app_open_decode(const uint8_t *p, size_t len, char host[MP_APP_HOST_MAX + 1], uint16_t *port)
{
	mp_rbuf r;
	int err;

	mp_rbuf_init(&r, p, len);
	mp_get_str8(&r, host, MP_APP_HOST_MAX);
	*port = mp_get_u16(&r);
	if ((err = done(&r)) != MP_OK)
		return err;
	if (*port == 0)
		return MP_ERR_MALFORMED;
	return mp_app_host_check(host);
}

int
mp_app_dgram_encode(const mp_app_dgram *d, uint8_t *out, size_t cap, size_t *len)
{
	mp_wbuf w;
	int err;

	if (d->kind < MP_DG_UDP_TO || d->kind > MP_DG_UDP_REFUSED)
		return MP_ERR_TYPE;
	if (d->kind == MP_DG_UDP_TO && (mp_app_host_check(d->host) != MP_OK || d->port == 0))
		return MP_ERR_SYNTAX;
	mp_wbuf_init(&w, MP_APP_DGRAM_MAX);
	mp_put_u8(&w, d->kind);
	mp_put_u32(&w, d->flow);
	if (d->kind == MP_DG_UDP_TO) {
		mp_put_str8(&w, d->host, MP_APP_HOST_MAX);
		mp_put_u16(&w, d->port);
	}
	if (d->kind != MP_DG_UDP_REFUSED && d->payload_len)
		mp_put_bytes(&w, d->payload, d->payload_len);
	err = w.err;
	if (!err && w.len > cap)
		err = MP_ERR_TOOBIG;
	if (!err) {
		memcpy(out, w.data, w.len);
		*len = w.len;
	}
	mp_wbuf_free(&w);
	return err;
}

int
mp_app_dgram_decode(const uint8_t *p, size_t len, mp_app_dgram *d)
{
	mp_rbuf r;

	if (len > MP_APP_DGRAM_MAX)
		return MP_ERR_TOOBIG;
	memset(d, 0, sizeof *d);
	mp_rbuf_init(&r, p, len);
	d->kind = mp_get_u8(&r);
	d->flow = mp_get_u32(&r);
	if (!r.err && (d->kind < MP_DG_UDP_TO || d->kind > MP_DG_UDP_REFUSED))
		return MP_ERR_TYPE;
	if (d->kind == MP_DG_UDP_TO) {
		mp_get_str8(&r, d->host, MP_APP_HOST_MAX);
		d->port = mp_get_u16(&r);
	}
	if (r.err)
		return r.err;
	if (d->kind == MP_DG_UDP_REFUSED)
		return mp_rbuf_left(&r) ? MP_ERR_MALFORMED : MP_OK;
	if (d->kind == MP_DG_UDP_TO && (d->port == 0 || mp_app_host_check(d->host) != MP_OK))
		return MP_ERR_MALFORMED;
	d->payload_len = mp_rbuf_left(&r);
	d->payload = d->payload_len ? p + r.pos : NULL;
	return MP_OK;
}
