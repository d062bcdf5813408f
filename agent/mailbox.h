/*
 * mailbox.h - the agent's mail reception: a watcher on the user's own
 * mailbox that hands over the mails meant for the agent and leaves every
 * other mail exactly as it was.
 *
 * Which mails: those whose Subject contains the marker (default
 * "[mailpunch]", ASCII case-insensitive, as mp_mail_subject_has_marker()
 * decides; the raw header is matched, encoded-words are not decoded).
 * Each such mail is handed to on_mail() once, as the raw message (RFC
 * 5322, CRLF or LF line ends as the server stores it); the callback
 * answers AGENT_MAIL_CONSUME (the watcher deletes the mail, or moves it
 * to move_to) or AGENT_MAIL_KEEP (left in place, not handed over again
 * for the life of this watcher).  Every other mail is never changed: the
 * IMAP backend reads with UID SEARCH and BODY.PEEK (no \Seen flag, no
 * move, no delete, no EXPUNGE of anything but handled mails), the POP3
 * backend looks at headers with TOP before it RETRieves a marker mail,
 * and DELEtes only consumed ones.
 *
 * Backends (see imap_client.h and pop3_client.h for the details):
 *   IMAP  one long-lived connection, IDLE (RFC 2177): a mail is handed
 *         over about a second after it is delivered; polling every
 *         poll_interval_s when the server has no IDLE.
 *   POP3  one short session every poll_interval_s, and at once on
 *         agent_mailbox_check_now() (e.g. right after sending a request).
 *
 * Interface:
 *   agent_mailbox_start()      validate the account, copy it, and start
 *                              watching on the caller's event base.  The
 *                              first connection is made from the event
 *                              loop: no callback runs inside start().
 *   agent_mailbox_check_now()  look for new mail now (cheap, idempotent).
 *   agent_mailbox_free()       stop and release; safe from inside either
 *                              callback (the release is then deferred
 *                              until the callback returns), safe on NULL.
 *                              The connection is dropped at once: a
 *                              delete or move still under way is lost
 *                              (IMAP: the mail stays; POP3: deletions
 *                              are only committed by a finished poll),
 *                              so a later watcher hands it over again.
 *
 * Errors: agent_mailbox_start() returns MP_ERR_INVAL (missing host, user
 * or password; a marker or folder name that cannot be sent; a value out
 * of range), MP_ERR_CONFIG (the TLS context cannot be made, e.g. an
 * unreadable CA file; the reason is logged) or MP_ERR_NOMEM.  After a
 * successful start, problems never stop the watcher: each is reported
 * through on_error() with one of the agent_mailbox_status codes and a
 * one-line detail (never a password), then the watcher retries with
 * backoff (1 s doubling to 60 s).  The caller decides whether an error
 * is fatal to it (say, AGENT_MAILBOX_ERR_AUTH) and frees the watcher.
 *
 * Logging: through mp_log_id() with the account's log_id ("imap"/"pop3"
 * by default); protocol traffic at debug level, never the password.
 */
#ifndef MAILPUNCH_AGENT_MAILBOX_H
#define MAILPUNCH_AGENT_MAILBOX_H

#include <stddef.h>

struct event_base;
struct evdns_base;

typedef enum agent_mailbox_kind {
	AGENT_MAILBOX_IMAP = 1,
	AGENT_MAILBOX_POP3,
} agent_mailbox_kind;

/* The largest mail handed over by default; larger marker mails are
 * skipped (logged, left in place, not retried). */
#define AGENT_MAILBOX_MAX_MAIL_DEFAULT ((size_t)1024 * 1024)
#define AGENT_MAILBOX_MAX_MAIL_LIMIT ((size_t)64 * 1024 * 1024)

/* All strings are copied by agent_mailbox_start(). */
typedef struct agent_mailbox_account {
	agent_mailbox_kind kind;
	const char *host;            /* server name or address */
	unsigned port;               /* 0: 993 (IMAP), 143 (IMAP starttls),
	                                995 (POP3), 110 (POP3 starttls) */
	int starttls;                /* 0: TLS from the first byte; 1: plain
	                                connect, then STARTTLS (IMAP) / STLS
	                                (POP3).  Credentials never go out
	                                before TLS is up, whatever the server
	                                offers. */
	const char *tls_name;        /* name the certificate must carry; NULL:
	                                host (an IP address is matched against
	                                the certificate's IP entries) */
	const char *user;
	const char *password;
	const char *ca_file;         /* trust this CA only; NULL: system store */
	int tls_insecure_skip_verify;/* TEST SETUPS ONLY: accept any certificate */
	const char *folder;          /* IMAP folder to watch; NULL: "INBOX" */
	const char *move_to;         /* IMAP: NULL deletes consumed mails, else
	                                they are moved there (created if
	                                missing).  POP3 can only delete. */
	const char *subject_marker;  /* NULL: MP_SUBJECT_MARKER_DEFAULT.
	                                Printable ASCII only. */
	unsigned poll_interval_s;    /* 0: 30.  POP3 polling; IMAP without IDLE */
	unsigned timeout_s;          /* 0: 30.  Connect, TLS, and each answer */
	size_t max_mail;             /* 0: AGENT_MAILBOX_MAX_MAIL_DEFAULT */
	struct evdns_base *dns;      /* optional: resolve host asynchronously;
	                                NULL: getaddrinfo(3), which blocks the
	                                loop for a name (never for an address) */
	const char *log_id;          /* log line prefix; NULL: "imap"/"pop3" */
} agent_mailbox_account;

typedef enum agent_mail_verdict {
	AGENT_MAIL_KEEP = 0,         /* leave the mail, do not hand it over again */
	AGENT_MAIL_CONSUME = 1,      /* delete it (or move it to move_to) */
} agent_mail_verdict;

/* raw[0..len) is the whole mail, NUL-terminated at raw[len] for
 * convenience (the mail itself may hold NULs).  Valid during the call
 * only. */
typedef agent_mail_verdict (*agent_mail_cb)(const char *raw, size_t len, void *arg);

typedef enum agent_mailbox_status {
	/* Not an error: logged in and watching (after the first connection,
	 * and again after each recovery).  POP3: a poll went through. */
	AGENT_MAILBOX_WATCHING = 0,
	AGENT_MAILBOX_ERR_CONNECT = 1,   /* name lookup, TCP connect, lost connection */
	AGENT_MAILBOX_ERR_TLS = 2,       /* handshake, certificate, STARTTLS refused */
	AGENT_MAILBOX_ERR_AUTH = 3,      /* the server refused user or password */
	AGENT_MAILBOX_ERR_PROTOCOL = 4,  /* unexpected or malformed answer, a needed
	                                    command refused (SELECT, UIDL, a delete) */
	AGENT_MAILBOX_ERR_TIMEOUT = 5,   /* no answer within timeout_s */
	AGENT_MAILBOX_ERR_CLOSED = 6,    /* the server said BYE or hung up */
} agent_mailbox_status;

/* status: an agent_mailbox_status; detail: one printable line. */
typedef void (*agent_mailbox_error_cb)(int status, const char *detail, void *arg);

typedef struct agent_mailbox agent_mailbox;

/* on_mail is required, on_error optional.  *out is set only on MP_OK. */
int agent_mailbox_start(struct event_base *base, const agent_mailbox_account *acct,
                        agent_mail_cb on_mail, agent_mailbox_error_cb on_error,
                        void *arg, agent_mailbox **out);
void agent_mailbox_check_now(agent_mailbox *mb);
void agent_mailbox_free(agent_mailbox *mb);

/* "watching", "connect", "tls", "auth", "protocol", "timeout", "closed". */
const char *agent_mailbox_status_name(int status);

/* ---------------------------------------------------------------- backends
 * Not for the agent core: what imap_client.c and pop3_client.c share.
 * Each backend's state begins with this header; agent_mailbox_*() above
 * (defined in imap_client.c) dispatch on it. */
struct agent_mailbox {
	agent_mailbox_kind kind;
};

#endif
