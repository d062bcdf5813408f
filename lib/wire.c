/*
 * wire.c - bounded big-endian writer and reader (see wire.h).
 */
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "wire.h"

void
mp_wbuf_init(mp_wbuf *w, size_t max)
{
	memset(w, 0, sizeof *w);
	w->max = max;
}

void
mp_wbuf_free(mp_wbuf *w)
{
	free(w->data);
	memset(w, 0, sizeof *w);
}

uint8_t *
mp_wbuf_take(mp_wbuf *w, size_t *len)
{
	uint8_t *p = w->data;

	*len = w->len;
	memset(w, 0, sizeof *w);
	return p;
}

static int
wbuf_reserve(mp_wbuf *w, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (w->err)
		return 0;
	if (n > w->max - w->len) {
		w->err = MP_ERR_TOOBIG;
		return 0;
	}
	if (w->len + n <= w->cap)
		return 1;
	cap = w->cap ? w->cap : 256;
	while (cap < w->len + n)
		cap *= 2;
	if (cap > w->max)
		cap = w->max;
	p = realloc(w->data, cap);
	if (!p) {
		w->err = MP_ERR_NOMEM;
		return 0;
	}
	w->data = p;
	w->cap = cap;
	return 1;
}

void
mp_put_bytes(mp_wbuf *w, const void *p, size_t n)
{
	if (n == 0 || !wbuf_reserve(w, n))
		return;
	memcpy(w->data + w->len, p, n);
	w->len += n;
}

void
mp_put_u8(mp_wbuf *w, uint8_t v)
{
	mp_put_bytes(w, &v, 1);
}

void
mp_put_u16(mp_wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	mp_put_bytes(w, b, sizeof b);
}

void
mp_put_u32(mp_wbuf *w, uint32_t v)
{
	mp_put_u16(w, (uint16_t)(v >> 16));
	mp_put_u16(w, (uint16_t)v);
}

void
mp_put_u64(mp_wbuf *w, uint64_t v)
{
	mp_put_u32(w, (uint32_t)(v >> 32));
	mp_put_u32(w, (uint32_t)v);
}

void
mp_put_str8(mp_wbuf *w, const char *s, size_t maxlen)
{
	size_t n = strlen(s);

	if (n > maxlen || n > 255) {
		if (!w->err)
			w->err = MP_ERR_TOOBIG;
		return;
	}
	mp_put_u8(w, (uint8_t)n);
	mp_put_bytes(w, s, n);
}

void
mp_put_blob16(mp_wbuf *w, const uint8_t *p, size_t n, size_t maxlen)
{
	if (n > maxlen || n > 65535) {
		if (!w->err)
			w->err = MP_ERR_TOOBIG;
		return;
	}
	mp_put_u16(w, (uint16_t)n);
	mp_put_bytes(w, p, n);
}

void
mp_rbuf_init(mp_rbuf *r, const uint8_t *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
	r->err = 0;
}

size_t
mp_rbuf_left(const mp_rbuf *r)
{
	return r->len - r->pos;
}

const uint8_t *
mp_get_view(mp_rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (n > r->len - r->pos) {
		r->err = MP_ERR_TRUNCATED;
		return NULL;
	}
	p = r->data + r->pos;
	r->pos += n;
	return p;
}

void
mp_get_bytes(mp_rbuf *r, void *p, size_t n)
{
	const uint8_t *src = mp_get_view(r, n);

	if (src)
		memcpy(p, src, n);
	else if (n)
		memset(p, 0, n);
}

uint8_t
mp_get_u8(mp_rbuf *r)
{
	uint8_t v;

	mp_get_bytes(r, &v, 1);
	return v;
}

uint16_t
mp_get_u16(mp_rbuf *r)
{
	uint8_t b[2];

	mp_get_bytes(r, b, 2);
	return (uint16_t)((b[0] << 8) | b[1]);
}

uint32_t
mp_get_u32(mp_rbuf *r)
{
	uint32_t hi = mp_get_u16(r);

	return (hi << 16) | mp_get_u16(r);
}

uint64_t
mp_get_u64(mp_rbuf *r)
{
	uint64_t hi = mp_get_u32(r);

	return (hi << 32) | mp_get_u32(r);
}

void
mp_get_str8(mp_rbuf *r, char *buf, size_t maxlen)
{
	size_t n = mp_get_u8(r), i;
	const uint8_t *p;

	buf[0] = '\0';
	if (r->err)
		return;
	if (n > maxlen) {
		r->err = MP_ERR_MALFORMED;
		return;
	}
	p = mp_get_view(r, n);
	if (!p)
		return;
	for (i = 0; i < n; i++) {
		/* Text from the wire ends up in logs and mail headers. */
		if (p[i] < 0x20 || p[i] == 0x7f) {
			r->err = MP_ERR_MALFORMED;
			return;
		}
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
}

void
mp_get_blob16(mp_rbuf *r, uint8_t *buf, size_t cap, uint16_t *len)
{
	uint16_t n = mp_get_u16(r);

	*len = 0;
	if (r->err)
		return;
	if (n > cap) {
		r->err = MP_ERR_MALFORMED;
		return;
	}
	mp_get_bytes(r, buf, n);
	if (!r->err)
		*len = n;
}
