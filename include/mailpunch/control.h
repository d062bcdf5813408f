/*
 * control.h - the operator's control protocol for the host's table.
 *
 * The milter listens on a UNIX control socket (ControlSocket), reads one
 * request line per connection, hands it to mp_control_exec() and writes
 * the answer back; mailpunchctl(8) is the client.  Full description with
 * examples: docs/CONTROL.md.
 *
 * Request: one line, at most MP_CONTROL_LINE_MAX bytes including its
 * line end (LF or CRLF, optional), printable ASCII only:
 *     [json] COMMAND [ARG]
 * Words are separated by blanks; command words are case-insensitive.
 *     list [N]          N newest entries, newest first (default 20, 1..10000)
 *     show USERID       everything about one entry
 *     stats             every counter, entries, capacity
 *     delete USERID     remove one entry
 *     flag USERID       mark as failed (MP_PEER_FAILED)
 *     unflag USERID     clear the failed mark
 *     expire            remove entries older than the lifetime (max_age)
 *     flush             remove every entry
 *     help              the command list
 *
 * Answer:
 *     OK                      or   ERR <code> <message>
 *     <body lines>
 *     .
 * <code> is one word: usage (malformed request, unknown command, bad or
 * missing argument), badid (argument is not a user ID), notfound (no
 * such user), unavailable (table backend unreachable: try again),
 * internal (anything else).  The final line "." alone ends every answer;
 * a body line that starts with "." is sent with one more "." in front
 * (as in SMTP), so the client removes one leading dot from such lines.
 * Human bodies are aligned text; text from mail (names, addresses) has
 * control characters, backslashes, invalid UTF-8 and bidi controls
 * escaped as \xHH, \\ or \uXXXX, so it cannot steer a terminal.  With
 * the "json" prefix the body is exactly one line holding one JSON
 * object (an error answer: {"error":{"code":...,"message":...}}); every
 * string is escaped, valid UTF-8 passes through and each byte of
 * invalid UTF-8 becomes \u00XX (its Latin-1 reading), so the line is
 * valid JSON whatever the table holds.
 *
 * Mail addresses are shown: the operator owns the table.
 *
 * Errors: mp_control_exec() returns MP_OK whenever it produced an
 * answer, error answers included; MP_ERR_NOMEM if it could not;
 * MP_ERR_INVAL for a NULL ctx/out/outlen (or NULL line with len > 0).
 */
#ifndef MAILPUNCH_CONTROL_H
#define MAILPUNCH_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/table.h"

#define MP_CONTROL_LINE_MAX 1024     /* request bytes, line end included */
#define MP_CONTROL_LIST_DEFAULT 20
#define MP_CONTROL_LIST_MAX 10000

typedef struct mp_control_ctx {
	mp_table *table;
	uint64_t max_age;   /* entry lifetime for expire and the 'live' column; 0: none */
	uint64_t now;       /* Unix seconds */
} mp_control_ctx;

/* Parses one request line (len bytes, need not be NUL-terminated) and
 * produces the complete answer in *out (NUL-terminated, *outlen bytes
 * without the NUL; the caller frees it).  Never reads past len. */
int mp_control_exec(const mp_control_ctx *ctx, const char *line, size_t len,
                    char **out, size_t *outlen);

#endif
