/*
 * imap_parse.h - IMAP4rev1 (RFC 3501) server response reader and parser,
 * plus the few pure helpers an IMAP client needs to build commands.
 *
 * Interface:
 *   mp_imap_reader_new()/_free()  a stream reader: mp_imap_reader_feed()
 *                                 takes bytes as they come from the server
 *                                 and returns each complete response
 *                                 (its line or lines plus the literals
 *                                 between them), parsed.
 *   mp_imap_parse()               the same for one response in one buffer
 *                                 (tests, fuzzing).
 *   mp_imap_response_free()
 *   mp_imap_item_is(), _u32(), _u64(), mp_imap_list_get()  item access.
 *   mp_imap_word_next()           splits a response code or text.
 *   mp_imap_quote()               an IMAP quoted string for a command.
 *   mp_imap_printable()           a log-safe copy of server text.
 *
 * A parsed response is one of: a tagged status ("A1 OK [code] text"), an
 * untagged status ("* OK/NO/BAD/BYE/PREAUTH [code] text"), untagged data
 * ("* [number] KEYWORD items...", e.g. "* 3 EXISTS", "* SEARCH 4 7",
 * "* 1 FETCH (UID 7 BODY[] {n}...)"), or a continuation request ("+ text").
 * Data items are tokenised into a tree of atoms, strings (quoted or
 * literal, unescaped), NIL and parenthesised lists.  Response codes and
 * human-readable texts are kept as raw slices: they are free text.
 *
 * Strings are (pointer, length) slices into the response, valid until
 * mp_imap_response_free(); they are not NUL-terminated and a literal may
 * hold NUL bytes.
 *
 * Bounds (all network input): the text of one response outside its
 * literals, line ends included, at most MP_IMAP_LINE_MAX bytes; at most
 * MP_IMAP_LITERALS_MAX literals per response; lists nested at most
 * MP_IMAP_DEPTH_MAX deep (brackets in "BODY[...]" count too).  A literal
 * larger than the reader's max_literal (or making the response's
 * literals together larger) is read and thrown away: it appears as an
 * MP_IMAP_OVERSIZE item that records the announced size, so a client can
 * skip one huge mail without dropping the connection.  One response thus
 * never holds more than MP_IMAP_LINE_MAX + max_literal bytes.
 *
 * Errors: MP_ERR_TOOBIG (over a bound above), MP_ERR_SYNTAX (not an IMAP
 * response), MP_ERR_NOMEM, MP_ERR_INVAL (bad arguments).  After any error
 * from mp_imap_reader_feed() the stream is out of step: drop the
 * connection and the reader.
 */
#ifndef MAILPUNCH_LIB_IMAP_PARSE_H
#define MAILPUNCH_LIB_IMAP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define MP_IMAP_LINE_MAX (64 * 1024)
#define MP_IMAP_LITERALS_MAX 16
#define MP_IMAP_DEPTH_MAX 16
/* A sensible max_literal for whole mails, and the most a reader accepts
 * as its setting (a configuration error must not become a 4 GiB buffer). */
#define MP_IMAP_LITERAL_DEFAULT (1024 * 1024)
#define MP_IMAP_LITERAL_LIMIT ((size_t)64 * 1024 * 1024)

typedef enum mp_imap_kind {
	MP_IMAP_TAGGED = 1,
	MP_IMAP_UNTAGGED,
	MP_IMAP_CONTINUE,
} mp_imap_kind;

typedef enum mp_imap_status {
	MP_IMAP_DATA = 0,    /* untagged data, or a continuation request */
	MP_IMAP_OK,
	MP_IMAP_NO,
	MP_IMAP_BAD,
	MP_IMAP_BYE,
	MP_IMAP_PREAUTH,
} mp_imap_status;

typedef enum mp_imap_type {
	MP_IMAP_ATOM = 1,    /* also numbers, flags (\Seen), BODY[...]<0> */
	MP_IMAP_STRING,      /* quoted (unescaped) or literal */
	MP_IMAP_NIL,
	MP_IMAP_LIST,
	MP_IMAP_OVERSIZE,    /* a literal over max_literal, thrown away */
} mp_imap_type;

typedef struct mp_imap_item {
	mp_imap_type type;
	const char *s;       /* ATOM, STRING: the bytes; else an empty slice */
	size_t len;          /* OVERSIZE: the size the server announced */
	size_t end;          /* index after this item's subtree: the children
	                        of a LIST at index i are i+1 .. end-1 */
} mp_imap_item;

typedef struct mp_imap_response {
	mp_imap_kind kind;
	mp_imap_status status;
	const char *tag;     /* TAGGED: the tag */
	size_t tag_len;
	int has_number;      /* untagged "* 12 EXISTS": 1, number = 12 */
	uint32_t number;
	const char *name;    /* untagged data: the keyword ("FETCH", ...) */
	size_t name_len;
	const char *code;    /* status: the text inside [...], "" if none */
	size_t code_len;
	const char *text;    /* status and continuation: the free text */
	size_t text_len;
	/* Untagged data: items[0] is a LIST of everything after the keyword,
	 * so a FETCH's attribute list is items[1].  Always nitems >= 1. */
	mp_imap_item *items;
	size_t nitems;
	char *buf_;          /* private: owns every slice above */
} mp_imap_response;

typedef struct mp_imap_reader mp_imap_reader;

/* max_literal: literal bytes kept per response, 0 = MP_IMAP_LITERAL_DEFAULT;
 * MP_ERR_INVAL over MP_IMAP_LITERAL_LIMIT. */
int mp_imap_reader_new(size_t max_literal, mp_imap_reader **out);
void mp_imap_reader_free(mp_imap_reader *rd);

/* Consume input from data[0..len): *used is set to the bytes taken.  It
 * stops right after the end of a complete response and returns MP_OK
 * with *out set (the caller frees it); bytes after it are left for the
 * next call.  MP_OK with *out == NULL: everything was taken, more input
 * is needed.  Errors as above (*out stays NULL). */
int mp_imap_reader_feed(mp_imap_reader *rd, const char *data, size_t len,
                        size_t *used, mp_imap_response **out);

/* Exactly one complete response in data[0..len), line end included;
 * MP_ERR_TRUNCATED when it ends early, MP_ERR_SYNTAX when bytes follow. */
int mp_imap_parse(const char *data, size_t len, size_t max_literal,
                  mp_imap_response **out);

void mp_imap_response_free(mp_imap_response *r);

/* 1 if the item is an ATOM equal to word, ASCII case-insensitive. */
int mp_imap_item_is(const mp_imap_item *it, const char *word);
/* An ATOM of decimal digits that fits: MP_OK, else MP_ERR_SYNTAX. */
int mp_imap_item_u32(const mp_imap_item *it, uint32_t *out);
int mp_imap_item_u64(const mp_imap_item *it, uint64_t *out);
/* In the LIST at index list, read as name/value pairs (a FETCH's
 * attributes), the value after the atom name; NULL if absent or if
 * items[list] is no LIST. */
const mp_imap_item *mp_imap_list_get(const mp_imap_response *r, size_t list,
                                     const char *name);

/* Next blank-separated word of s[0..len) from *pos: 1 and the word, or 0
 * at the end.  For response codes ("UIDVALIDITY 17") and capabilities. */
int mp_imap_word_next(const char *s, size_t len, size_t *pos,
                      const char **word, size_t *word_len);

/* s as an IMAP quoted string, quotes included, NUL-terminated in
 * out[0..outlen).  MP_ERR_SYNTAX if s holds a byte a quoted string
 * cannot carry (NUL, CR, LF, 8-bit), MP_ERR_TOOBIG if out is too small. */
int mp_imap_quote(const char *s, char *out, size_t outlen);

/* s[0..len) with every byte outside printable ASCII shown as '?', cut
 * to fit out[0..outlen) (NUL-terminated, outlen > 0): server text made
 * safe for a log line.  Returns out. */
char *mp_imap_printable(const char *s, size_t len, char *out, size_t outlen);

#endif
