/*
 * pop3_parse.h - POP3 (RFC 1939) server response reader, plus parsers
 * for the answers a mailbox watcher needs (UIDL, LIST, TOP headers).
 *
 * Interface:
 *   mp_pop3_reader_new()/_free()  stream reader.  POP3 does not mark
 *                                 which responses span lines, so before
 *                                 each command the client announces the
 *                                 shape of the answer with
 *                                 mp_pop3_reader_expect(); then
 *                                 mp_pop3_reader_feed() takes bytes as
 *                                 they come and returns the response.
 *   mp_pop3_response_free()
 *   mp_pop3_resp_code()           RFC 2449/3206 "[CODE]" of a status text.
 *   mp_pop3_parse_uidl()          "n uid" lines of a UIDL listing.
 *   mp_pop3_parse_scan()          "n size" of a LIST n answer.
 *   mp_pop3_subject_match()       does a header block's Subject hold the
 *                                 marker (the rule of mp_mail_subject_has_marker)?
 *   mp_pop3_arg_ok()              may a string be sent as a command argument?
 *
 * A multi-line body is returned dot-unstuffed, its lines ending as they
 * came (CRLF, or LF from a lax server), without the terminating "."
 * line.
 *
 * Bounds (all network input): a status line, line end included, at most
 * MP_POP3_LINE_MAX bytes (RFC 2449 allows 512; real servers send more
 * in greetings); a multi-line body keeps at most the max_body given to
 * mp_pop3_reader_expect() bytes and reads the rest away, flagging the
 * response as truncated, so a huge mail costs time but not memory.  A
 * UIDL listing holds at most MP_POP3_UIDL_MAX entries.
 *
 * Errors: MP_ERR_TOOBIG, MP_ERR_SYNTAX (not a POP3 response),
 * MP_ERR_NOMEM, MP_ERR_INVAL.  After an error from mp_pop3_reader_feed()
 * the stream is out of step: drop the connection and the reader.
 */
#ifndef MAILPUNCH_LIB_POP3_PARSE_H
#define MAILPUNCH_LIB_POP3_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define MP_POP3_LINE_MAX 4096
#define MP_POP3_UID_MAX 70          /* RFC 1939: 1 to 70 characters */
#define MP_POP3_UIDL_MAX 200000

typedef struct mp_pop3_response {
	int ok;              /* 1 for +OK, 0 for -ERR */
	char *text;          /* the status line after "+OK"/"-ERR" and one
	                        blank, without line end, NUL-terminated; no
	                        CR or NUL (such a line is MP_ERR_SYNTAX), but
	                        other control bytes: sanitise before logging */
	size_t text_len;
	char *body;          /* multi-line +OK: the lines; else NULL.  NUL-
	                        terminated, but a mail may hold NULs itself */
	size_t body_len;
	int truncated;       /* the body was longer than max_body */
	uint64_t body_total; /* body bytes after unstuffing, kept or not */
} mp_pop3_response;

typedef struct mp_pop3_reader mp_pop3_reader;

int mp_pop3_reader_new(mp_pop3_reader **out);
void mp_pop3_reader_free(mp_pop3_reader *rd);

/* The next response is single-line (multi = 0: greeting, USER, PASS,
 * DELE, LIST n, QUIT, STLS) or, when it is +OK, multi-line (multi = 1:
 * UIDL, LIST, TOP, RETR, CAPA).  Holds until changed. */
void mp_pop3_reader_expect(mp_pop3_reader *rd, int multi, size_t max_body);

/* Like mp_imap_reader_feed(): *used bytes taken; MP_OK with *out set for
 * a complete response (bytes after it are left), MP_OK with *out NULL
 * when more input is needed, or an error. */
int mp_pop3_reader_feed(mp_pop3_reader *rd, const char *data, size_t len,
                        size_t *used, mp_pop3_response **out);

void mp_pop3_response_free(mp_pop3_response *r);

/* 1 if r's text starts with the response code "[code]" or "[code/...]"
 * (e.g. "AUTH", "IN-USE", "SYS"), ASCII case-insensitive; else 0. */
int mp_pop3_resp_code(const mp_pop3_response *r, const char *code);

typedef struct mp_pop3_uidl {
	uint32_t msg;                      /* message number, >= 1 */
	char uid[MP_POP3_UID_MAX + 1];     /* 0x21..0x7e, NUL-terminated */
} mp_pop3_uidl;

/* Every "n uid" line of a UIDL body into a new array (caller frees;
 * NULL when n == 0).  MP_ERR_SYNTAX for a malformed line,
 * MP_ERR_TOOBIG over MP_POP3_UIDL_MAX lines. */
int mp_pop3_parse_uidl(const char *body, size_t len, mp_pop3_uidl **out,
                       size_t *n);

/* "n size [...]" (a LIST n answer's text): MP_OK or MP_ERR_SYNTAX. */
int mp_pop3_parse_scan(const char *text, uint32_t *msg, uint64_t *size);

/* 1 if the first Subject field of the header block hdr[0..len) (a TOP n 0
 * answer, or a whole mail), unfolded, contains marker (NULL: the
 * default) as mp_mail_subject_has_marker() decides; 0 if not or when
 * there is no Subject; MP_ERR_NOMEM. */
int mp_pop3_subject_match(const char *hdr, size_t len, const char *marker);

/* 1 if s can be a command argument (USER name, PASS password): 1 to 255
 * bytes with no NUL, CR or LF; else 0.  RFC 1939 forbids blanks only in
 * USER names, but a PASS argument may hold them. */
int mp_pop3_arg_ok(const char *s);

#endif
