/*
 * base64.h - base64 (RFC 4648) for block armour and key text forms.
 *
 * Interface: mp_base64_encode() writes the standard alphabet with '='
 * padding, or the URL-safe alphabet without padding when url != 0, and
 * breaks lines with CRLF every wrap characters when wrap > 0.
 * mp_base64_decode() is lenient in what mail does to text: it skips
 * blanks, CR and LF anywhere, accepts missing padding, and stops at the
 * first '='; any other foreign character is an error.  Both allocate the
 * output (NUL-terminated for encode) and the caller frees it.
 * Errors: MP_ERR_BASE64 for bad input, MP_ERR_TOOBIG when the decoded
 * size would exceed max_out, MP_ERR_NOMEM.
 */
#ifndef MAILPUNCH_LIB_BASE64_H
#define MAILPUNCH_LIB_BASE64_H

#include <stddef.h>
#include <stdint.h>

int mp_base64_encode(const uint8_t *in, size_t len, int url, size_t wrap,
                     char **out, size_t *outlen);
int mp_base64_decode(const char *in, size_t len, int url, size_t max_out,
                     uint8_t **out, size_t *outlen);

#endif
