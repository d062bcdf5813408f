/*
 * smtp_reply.h - SMTP reply parser, EHLO capabilities, DATA dot-stuffing.
 *
 * Interface: an mp_smtp_parser takes the bytes a server sends, in pieces
 * of any size, and yields one complete reply (RFC 5321 section 4.2) at a
 * time: the 3-digit code, the RFC 3463 enhanced status code when the
 * first line carries one (RFC 2034), and the text of each line without
 * the code, the separator and the enhanced code.  mp_smtp_parser_feed()
 * stops right after the end of a reply and says how many bytes it used,
 * so the caller sees exactly what followed (after a STARTTLS 220, any
 * following plaintext is an injection attempt, not the next reply).
 * The reply it returns belongs to the parser and stays valid until the
 * next feed or free.  mp_smtp_caps_parse() reads an EHLO reply's
 * extension keywords; mp_smtp_reply_format() renders a reply as one line
 * for messages ("535 5.7.8 Error: authentication failed").
 * mp_smtp_dot_stuff() turns a message into the bytes that follow DATA.
 *
 * Bounds on network input: a line is at most MP_SMTP_LINE_MAX bytes
 * including its line end (RFC 5321 says 512; real servers exceed it), a
 * reply at most MP_SMTP_LINES_MAX lines, so a reply never holds more
 * than about 100 KB.  Line ends are CRLF or a bare LF (lenient).
 *
 * Errors: MP_ERR_MALFORMED for anything that is not a reply line (bad
 * code, a code that changes between the lines of one reply, a bad
 * separator, a control character or bare CR in the text), MP_ERR_TOOBIG
 * over the bounds, MP_ERR_NOMEM.  After an error the parser refuses
 * further input (MP_ERR_INVAL): the stream is out of sync for good.
 */
#ifndef MAILPUNCH_LIB_SMTP_REPLY_H
#define MAILPUNCH_LIB_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define MP_SMTP_LINE_MAX 1000   /* bytes per reply line, CRLF included */
#define MP_SMTP_LINES_MAX 100   /* lines per reply */
#define MP_SMTP_ENH_MAX 12      /* "5.123.123" plus NUL, rounded up */

typedef struct mp_smtp_reply {
	int code;                     /* 200..599 (first digit 2..5) */
	char enhanced[MP_SMTP_ENH_MAX]; /* "5.7.8", or "" when absent */
	size_t nlines;                /* 1..MP_SMTP_LINES_MAX */
	const char *const *lines;     /* NUL-terminated text of each line */
} mp_smtp_reply;

typedef struct mp_smtp_parser mp_smtp_parser;

mp_smtp_parser *mp_smtp_parser_new(void);
void mp_smtp_parser_free(mp_smtp_parser *p);
/* Forgets any partial reply and a previous error (e.g. after STARTTLS). */
void mp_smtp_parser_reset(mp_smtp_parser *p);

/*
 * Consumes data up to the end of the first reply completed by it.
 * *used: bytes consumed (all of len unless a reply completed earlier).
 * *reply: the completed reply, or NULL when more input is needed.
 * Returns MP_OK, or an error (see above) with *reply NULL.
 */
int mp_smtp_parser_feed(mp_smtp_parser *p, const void *data, size_t len,
                        size_t *used, const mp_smtp_reply **reply);

/* "CODE[ ENH] text[ text...]" cut to fit size (always NUL-terminated). */
void mp_smtp_reply_format(const mp_smtp_reply *r, char *buf, size_t size);

/* ---------------------------------------------------------------- EHLO */

enum {
	MP_SMTP_EXT_STARTTLS = 1u << 0,
	MP_SMTP_EXT_AUTH = 1u << 1,
	MP_SMTP_EXT_SIZE = 1u << 2,
	MP_SMTP_EXT_PIPELINING = 1u << 3,
	MP_SMTP_EXT_8BITMIME = 1u << 4,
	MP_SMTP_EXT_ENHANCEDSTATUSCODES = 1u << 5,
	MP_SMTP_EXT_SMTPUTF8 = 1u << 6,
	MP_SMTP_EXT_CHUNKING = 1u << 7,
	MP_SMTP_EXT_DSN = 1u << 8,
};

enum {
	MP_SMTP_AUTH_PLAIN = 1u << 0,
	MP_SMTP_AUTH_LOGIN = 1u << 1,
	MP_SMTP_AUTH_CRAM_MD5 = 1u << 2,
	MP_SMTP_AUTH_XOAUTH2 = 1u << 3,
	MP_SMTP_AUTH_OTHER = 1u << 4, /* some mechanism we do not know */
};

typedef struct mp_smtp_caps {
	unsigned ext;                 /* MP_SMTP_EXT_* */
	unsigned auth;                /* MP_SMTP_AUTH_* (AUTH and old AUTH=) */
	uint64_t size_max;            /* SIZE parameter; 0 = none announced */
} mp_smtp_caps;

/*
 * Reads the keywords of a 250 EHLO reply (the first line is the server's
 * greeting and is skipped).  Unknown keywords are ignored; a SIZE value
 * that is not a number counts as "no limit announced".
 * Returns MP_OK, or MP_ERR_INVAL when r is not a 250 reply.
 */
int mp_smtp_caps_parse(const mp_smtp_reply *r, mp_smtp_caps *caps);

/* ---------------------------------------------------------------- DATA */

/*
 * Encodes a message for the DATA phase: every line end (CRLF, bare LF or
 * bare CR) becomes CRLF, a line starting with '.' gets a second '.', a
 * last line without a line end gets one, and ".\r\n" closes the data, so
 * the output always ends with CRLF.CRLF (just ".\r\n" for an empty
 * message).  *out (NUL-terminated, not counted in *outlen) is allocated
 * at its exact size after checking it against max_out; free() it.
 * Errors: MP_ERR_INVAL, MP_ERR_TOOBIG (output over max_out), MP_ERR_NOMEM;
 * *out is NULL then.
 */
int mp_smtp_dot_stuff(const void *in, size_t len, size_t max_out,
                      char **out, size_t *outlen);

#endif
