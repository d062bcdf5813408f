/*
 * wire.h - bounded big-endian byte writer and reader for the block codec.
 *
 * Interface: an mp_wbuf grows on the heap up to a hard cap; every put
 * after a failure is a no-op, so encoders check wbuf.err once at the end
 * instead of after each field.  An mp_rbuf reads from a fixed span; a
 * read past the end sets err and returns zeros, so decoders likewise
 * check once, and can never read out of bounds.
 * Errors: err holds MP_ERR_NOMEM / MP_ERR_TOOBIG (writer) or
 * MP_ERR_TRUNCATED / MP_ERR_MALFORMED (reader).
 */
#ifndef MAILPUNCH_LIB_WIRE_H
#define MAILPUNCH_LIB_WIRE_H

#include <stddef.h>
#include <stdint.h>

typedef struct mp_wbuf {
	uint8_t *data;
	size_t len, cap, max;
	int err;
} mp_wbuf;

typedef struct mp_rbuf {
	const uint8_t *data;
	size_t len, pos;
	int err;
} mp_rbuf;

void mp_wbuf_init(mp_wbuf *w, size_t max);
void mp_wbuf_free(mp_wbuf *w);
/* Hands the bytes to the caller (who frees them) and resets w. */
uint8_t *mp_wbuf_take(mp_wbuf *w, size_t *len);
void mp_put_bytes(mp_wbuf *w, const void *p, size_t n);
void mp_put_u8(mp_wbuf *w, uint8_t v);
void mp_put_u16(mp_wbuf *w, uint16_t v);
void mp_put_u32(mp_wbuf *w, uint32_t v);
void mp_put_u64(mp_wbuf *w, uint64_t v);
/* u8 length then bytes; strings longer than maxlen set MP_ERR_TOOBIG. */
void mp_put_str8(mp_wbuf *w, const char *s, size_t maxlen);
/* u16 length then bytes. */
void mp_put_blob16(mp_wbuf *w, const uint8_t *p, size_t n, size_t maxlen);

void mp_rbuf_init(mp_rbuf *r, const uint8_t *data, size_t len);
size_t mp_rbuf_left(const mp_rbuf *r);
void mp_get_bytes(mp_rbuf *r, void *p, size_t n);
uint8_t mp_get_u8(mp_rbuf *r);
uint16_t mp_get_u16(mp_rbuf *r);
uint32_t mp_get_u32(mp_rbuf *r);
uint64_t mp_get_u64(mp_rbuf *r);
/* Reads a str8 into buf (size maxlen + 1, NUL-terminated); a length over
 * maxlen, an embedded NUL or a control character is MP_ERR_MALFORMED. */
void mp_get_str8(mp_rbuf *r, char *buf, size_t maxlen);
/* Reads a blob16 into buf of cap bytes; longer is MP_ERR_MALFORMED. */
void mp_get_blob16(mp_rbuf *r, uint8_t *buf, size_t cap, uint16_t *len);
/* Points into the span instead of copying (valid while the span lives). */
const uint8_t *mp_get_view(mp_rbuf *r, size_t n);

#endif
