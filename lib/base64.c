/*
 * base64.c - RFC 4648 base64, standard and URL-safe alphabets.
 *
 * Interface: see base64.h.  mp_base64_encode() writes "=" padding only
 * with the standard alphabet; when wrap > 0 it puts CRLF between lines
 * of wrap characters, never after the last one.  mp_base64_decode() makes
 * two passes over the text: the first validates it and counts the
 * significant characters, so the output is allocated once, at its exact
 * size, and only after the max_out check.  Blanks (SP, HT), CR and LF are
 * skipped anywhere; the first '=' ends the data (what follows is ignored);
 * a final group of 1 character, or a final group whose unused low bits
 * are not zero, is rejected so that every byte string has exactly one
 * accepted encoding apart from whitespace and padding.
 * Errors: MP_ERR_BASE64, MP_ERR_TOOBIG, MP_ERR_NOMEM, MP_ERR_INVAL (NULL
 * pointers).  On error *out is NULL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "base64.h"

static const char std_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Sextet value of c, -1 for a foreign character. */
static int
b64_value(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

static int
b64_is_skipped(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
mp_base64_encode(const uint8_t *in, size_t len, int url, size_t wrap,
                 char **out, size_t *outlen)
{
	const char *alpha = url ? url_alpha : std_alpha;
	size_t chars, total, i, o = 0, col = 0;
	char *buf, quad[4];

	if (out == NULL || (in == NULL && len > 0))
		return MP_ERR_INVAL;
	*out = NULL;
	/* Even wrap == 1 needs fewer than 4 * len + 13 bytes. */
	if (len > SIZE_MAX / 4 - 4)
		return MP_ERR_TOOBIG;
	chars = url ? (len / 3) * 4 + (len % 3 ? len % 3 + 1 : 0)
	            : (len + 2) / 3 * 4;
	total = chars;
	if (wrap > 0 && chars > 0)
		total += 2 * ((chars - 1) / wrap);
	if ((buf = malloc(total + 1)) == NULL)
		return MP_ERR_NOMEM;

	for (i = 0; i < len; i += 3) {
		size_t n = len - i < 3 ? len - i : 3, q, k;
		uint32_t v = (uint32_t)in[i] << 16;

		if (n > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (n > 2)
			v |= in[i + 2];
		quad[0] = alpha[(v >> 18) & 63];
		quad[1] = alpha[(v >> 12) & 63];
		quad[2] = n > 1 ? alpha[(v >> 6) & 63] : '=';
		quad[3] = n > 2 ? alpha[v & 63] : '=';
		q = url ? n + 1 : 4;
		for (k = 0; k < q; k++) {
			if (wrap > 0 && col == wrap) {
				buf[o++] = '\r';
				buf[o++] = '\n';
				col = 0;
			}
			buf[o++] = quad[k];
			col++;
		}
	}
	buf[o] = '\0';
	*out = buf;
	if (outlen)
		*outlen = o;
	return MP_OK;
}

/* First pass: count significant characters, reject foreign ones. */
static int
b64_scan(const char *in, size_t len, int url, size_t *nsig)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '=')
			break;
		if (b64_is_skipped(c))
			continue;
		if (b64_value(c, url) < 0)
			return MP_ERR_BASE64;
		n++;
	}
	if (n % 4 == 1)
		return MP_ERR_BASE64;
	*nsig = n;
	return MP_OK;
}

int
mp_base64_decode(const char *in, size_t len, int url, size_t max_out,
                 uint8_t **out, size_t *outlen)
{
	size_t nsig, need, i, o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	uint8_t *buf;
	int rc;

	if (out == NULL || (in == NULL && len > 0))
		return MP_ERR_INVAL;
	*out = NULL;
	if ((rc = b64_scan(in, len, url, &nsig)) != MP_OK)
		return rc;
	need = nsig / 4 * 3 + (nsig % 4 ? nsig % 4 - 1 : 0);
	if (need > max_out)
		return MP_ERR_TOOBIG;
	/* +1 so an empty result is still a pointer the caller can free. */
	if ((buf = malloc(need + 1)) == NULL)
		return MP_ERR_NOMEM;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;

		if (c == '=')
			break;
		if (b64_is_skipped(c))
			continue;
		v = b64_value(c, url);
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) {
		/* Non-zero leftover bits: not the canonical encoding. */
		free(buf);
		return MP_ERR_BASE64;
	}
	*out = buf;
	if (outlen)
		*outlen = o;
	return MP_OK;
}
