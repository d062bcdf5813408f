/*
 * mime.h - internal MIME helpers for the mail codec (RFC 5322, 2045, 2046).
 *
 * Interface: everything works on (pointer, length) slices that need not
 * be NUL-terminated, and on any mix of CRLF, LF and lone CR line ends.
 *   mp_mime_next_line()       line iterator.
 *   mp_mime_header_next()     header field iterator; values stay folded
 *                             slices of the input, mp_mime_unfold() copies.
 *   mp_mime_ctype_parse()     Content-Type: type, subtype, boundary.
 *   mp_mime_cte_parse()       Content-Transfer-Encoding.
 *   mp_mime_qp_decode()       quoted-printable body decoding.
 *   mp_mime_eol_crlf()        line-end normalisation to CRLF.
 *   mp_mime_multipart_*()     splits a multipart body into its parts.
 * Nothing here recurses or allocates except the functions returning a new
 * buffer through an out parameter.
 * Errors: MP_ERR_MIME for unusable syntax, MP_ERR_NOMEM, MP_ERR_TOOBIG.
 */
#ifndef MAILPUNCH_LIB_MIME_H
#define MAILPUNCH_LIB_MIME_H

#include <stddef.h>

/* RFC 2046 allows 70; some generators exceed it a little. */
#define MP_MIME_BOUNDARY_MAX 200

/* Next line of buf from *pos: 1 and the line (without its end), or 0 at
 * the end of buf.  A line end is CRLF, LF or a lone CR. */
int mp_mime_next_line(const char *buf, size_t len, size_t *pos,
                      const char **line, size_t *line_len);

typedef struct mp_mime_field {
	const char *name;    /* no trailing blanks, not NUL-terminated */
	size_t name_len;
	const char *value;   /* after the colon, still folded */
	size_t value_len;
} mp_mime_field;

/* Next header field from *pos: 1 and *f, or 0 when the header section
 * ends; *pos is then the start of the body.  The header section ends at
 * a blank line (consumed) or at the first line that is not a field
 * (kept for the body).  A leading mbox "From " line is skipped. */
int mp_mime_header_next(const char *buf, size_t len, size_t *pos,
                        mp_mime_field *f);
/* 1 if the field's name is name (ASCII case-insensitive). */
int mp_mime_field_is(const mp_mime_field *f, const char *name);
/* New NUL-terminated copy of a folded value: line ends removed, blanks
 * at both ends trimmed.  MP_ERR_NOMEM. */
int mp_mime_unfold(const char *value, size_t len, char **out);

typedef struct mp_mime_ctype {
	char type[32];       /* lower case, e.g. "text" */
	char subtype[64];    /* lower case, e.g. "plain" */
	char boundary[MP_MIME_BOUNDARY_MAX + 1];
	size_t boundary_len; /* 0 = no usable boundary parameter */
} mp_mime_ctype;

/* Parse a (possibly folded) Content-Type value.  On MP_ERR_MIME *ct is
 * text/plain, the RFC 2045 default for a missing or broken header. */
int mp_mime_ctype_parse(const char *value, size_t len, mp_mime_ctype *ct);
int mp_mime_ctype_is(const mp_mime_ctype *ct, const char *type,
                     const char *subtype);

typedef enum mp_mime_cte {
	MP_MIME_CTE_IDENTITY = 0, /* 7bit, 8bit, binary, missing, unknown */
	MP_MIME_CTE_QP,
	MP_MIME_CTE_BASE64,
} mp_mime_cte;

mp_mime_cte mp_mime_cte_parse(const char *value, size_t len);

/* Quoted-printable decoding (RFC 2045 6.7), lenient: "=" not followed by
 * two hex digits or a line end is kept, blanks before a line end are
 * dropped.  Output (NUL-terminated) is never longer than the input. */
int mp_mime_qp_decode(const char *in, size_t len, char **out,
                      size_t *outlen);

/* Copy with every CRLF, LF and lone CR turned into CRLF. */
int mp_mime_eol_crlf(const char *in, size_t len, char **out, size_t *outlen);

typedef struct mp_mime_multipart {
	const char *buf;
	size_t len;
	size_t pos;
	const char *boundary;
	size_t boundary_len;
	int started;
	int done;
} mp_mime_multipart;

/* The iterator keeps pointers to buf and boundary: both must outlive it. */
void mp_mime_multipart_init(mp_mime_multipart *it, const char *buf,
                            size_t len, const char *boundary,
                            size_t boundary_len);
/* Next body part (headers included): 1, or 0 when there are no more.
 * The preamble and epilogue are skipped; a missing close delimiter
 * ends the last part at the end of buf. */
int mp_mime_multipart_next(mp_mime_multipart *it, const char **part,
                           size_t *part_len);

#endif
