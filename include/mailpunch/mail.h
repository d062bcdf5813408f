/*
 * mail.h - the mails that carry mailpunch blocks: build and parse.
 *
 * Interface:
 *   mp_mail_compose()   turns an mp_mail_draft (addresses, subject, the
 *                       binary block) into an mp_mail: a header list plus
 *                       a CRLF body holding a short human explanation and
 *                       the block armoured in base64 between the lines
 *                       MP_ARMOR_BEGIN and MP_ARMOR_END.  The milter uses
 *                       the parts (smfi_chgheader/smfi_replacebody), the
 *                       agent mp_mail_serialize() for SMTP.
 *   mp_mail_parse()     reads a whole RFC 5322 message (headers + body),
 *                       returns the headers mailpunch cares about and the
 *                       decoded block.
 *   mp_mail_find_block() does the body part alone, given the top-level
 *                       Content-Type and Content-Transfer-Encoding (the
 *                       milter receives headers and body separately).
 * The parser survives what mail systems do to a message: LF/CRLF/CR
 * line ends, re-wrapped base64 lines, quoted-printable or base64
 * re-encoding, a multipart/mixed wrapper with a footer, nested multiparts
 * up to limits.max_depth.  Memory is bounded by limits.max_size: larger
 * input is refused before any work.
 * Errors: MP_ERR_NOBLOCK (no armour found), MP_ERR_BASE64, MP_ERR_MIME,
 * MP_ERR_TOOBIG, MP_ERR_NOMEM, MP_ERR_INVAL.
 */
#ifndef MAILPUNCH_MAIL_H
#define MAILPUNCH_MAIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MP_ARMOR_BEGIN "-----BEGIN MAILPUNCH BLOCK-----"
#define MP_ARMOR_END "-----END MAILPUNCH BLOCK-----"
#define MP_SUBJECT_MARKER_DEFAULT "[mailpunch]"

/* Largest block the armour may carry once decoded (see PROTOCOL.md). */
#define MP_MAIL_BLOCK_MAX 65536

typedef struct mp_mail_limits {
	size_t max_size;    /* whole message (or body) in bytes; 0 = 1 MiB */
	unsigned max_depth; /* MIME nesting; 0 = 8 */
	unsigned max_parts; /* MIME parts visited in total; 0 = 64 */
} mp_mail_limits;

typedef enum mp_auto_kind {
	MP_AUTO_NONE = 0,         /* written by a person (as far as we know) */
	MP_AUTO_GENERATED,        /* Auto-Submitted: auto-generated */
	MP_AUTO_REPLIED,          /* Auto-Submitted: auto-replied */
} mp_auto_kind;

typedef struct mp_mail_draft {
	const char *from;          /* addr-spec, required */
	const char *from_name;     /* display name or NULL */
	const char *to;            /* addr-spec, required */
	const char *subject;       /* full subject including marker, required */
	const char *in_reply_to;   /* "<id@host>" or NULL */
	const char *msgid_domain;  /* right side of Message-ID; NULL = from's domain */
	mp_auto_kind auto_kind;    /* MP_AUTO_NONE omits Auto-Submitted */
	const char *explanation;   /* text for people, NULL = a built-in one */
	time_t date;               /* 0 = now */
	const uint8_t *block;      /* the sealed block, required */
	size_t block_len;
} mp_mail_draft;

typedef struct mp_header {
	char *name;
	char *value;               /* unfolded, no trailing CRLF */
} mp_header;

typedef struct mp_mail {
	mp_header *headers;
	size_t nheaders;
	char *body;                /* CRLF line ends, NUL-terminated */
	size_t body_len;
} mp_mail;

int mp_mail_compose(const mp_mail_draft *draft, mp_mail **out);
/* Headers CRLF, blank line, body: ready for SMTP DATA (before dot-stuffing). */
int mp_mail_serialize(const mp_mail *mail, char **out, size_t *outlen);
/* Value of the first header with that name (case-insensitive) or NULL. */
const char *mp_mail_header(const mp_mail *mail, const char *name);
void mp_mail_free(mp_mail *mail);

typedef struct mp_parsed_mail {
	char *from;          /* addr-spec from From:, or NULL */
	char *to;            /* first addr-spec from To:, or NULL */
	char *subject;       /* unfolded raw Subject, or NULL */
	char *message_id;    /* "<...>" or NULL */
	char *in_reply_to;   /* "<...>" or NULL */
	int is_auto;         /* auto-submitted, bulk/list/junk, or a report */
	uint8_t *block;      /* decoded block (NULL if none) */
	size_t block_len;
} mp_parsed_mail;

/* Parse a whole message; block missing => MP_ERR_NOBLOCK but headers are
 * still filled, so a caller can tell an ordinary mail from garbage. */
int mp_mail_parse(const char *raw, size_t len, const mp_mail_limits *lim,
                  mp_parsed_mail *out);
void mp_parsed_mail_free(mp_parsed_mail *m);

/* Body only; content_type / cte are raw header values or NULL. */
int mp_mail_find_block(const char *content_type, const char *cte,
                       const char *body, size_t len, const mp_mail_limits *lim,
                       uint8_t **block, size_t *block_len);

/* 1 if this header marks the mail as machine-generated, bounce or list
 * traffic (RFC 3834 Auto-Submitted other than "no", Precedence bulk/junk/
 * list, List-Id, Content-Type multipart/report), else 0.  Used to never
 * answer auto-mail (no loops, no backscatter). */
int mp_mail_header_is_auto(const char *name, const char *value);

/* Extract the addr-spec from "Name <a@b>", "<a@b>" or "a@b (c)" into buf. */
int mp_mail_extract_addr(const char *value, char *buf, size_t len);

/* 1 if subject contains marker (case-insensitive), else 0. */
int mp_mail_subject_has_marker(const char *subject, const char *marker);

#endif
