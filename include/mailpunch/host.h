/*
 * host.h - what a rendezvous host does with one mail: the host role of
 * seeds 000/001, independent of how the mail reached it (libmilter today).
 *
 * Interface: mp_host_new() ties a table and a host key together with the
 * state that outlives one mail (replay cache, rate limits).  For each
 * mail addressed to a rendezvous address, the caller fills an
 * mp_host_input (envelope, the few headers that matter, the body) and
 * calls mp_host_process().  The outcome says what to do:
 *   MP_HOST_DROP    nothing to send (garbage, stale, replay, auto-mail,
 *                   a failure notice that was applied, ...); `stat` tells
 *                   which counter to blame and `detail` what to log;
 *                   A TABLE_SYNC from a configured peer host is merged
 *                   (hostsync.h) and also ends as DROP with stat
 *                   MP_STAT_SYNCS, sync_peer set, and sync_want_full if
 *                   the peer asked for our whole table (the caller
 *                   sends it: it can take several mails);
 *   MP_HOST_SEND    send outcome.mail (a complete RFC 5322 message, CRLF)
 *                   from outcome.from to outcome.to: a REPLY to a REQUEST,
 *                   or a SIGNAL relayed to its target member;
 *                   outcome.parts is the same mail as a header list and
 *                   a body, for a caller that rewrites the incoming
 *                   mail into it instead of sending a new one.
 * The caller must deliver MP_HOST_SEND mail durably, or call
 * mp_host_cancel() and tempfail the incoming mail so that its sender
 * retries: cancelling forgets the session ID (else the retry would be
 * refused as a replay); the recorded table entry is harmless to repeat.
 * Counters: mp_host_process() counts requests recorded and every DROP by
 * its stat; the caller counts a SEND's stat after delivering it.
 * Thread-safe: many mails may be processed at once.
 * Errors: mp_host_process() returns MP_OK with an outcome for every
 * mail-borne problem; a non-OK return (MP_ERR_NOMEM, MP_ERR_UNAVAILABLE,
 * MP_ERR_CRYPTO, MP_ERR_IO) means a local failure: tempfail.
 */
#ifndef MAILPUNCH_HOST_H
#define MAILPUNCH_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/config.h"
#include "mailpunch/hostsync.h"
#include "mailpunch/keys.h"
#include "mailpunch/mail.h"
#include "mailpunch/table.h"

typedef struct mp_host_config {
	const mp_hostkey *key;
	const mp_strlist *rendezvous;     /* our rendezvous addresses */
	unsigned peers_per_reply;         /* N newest peers in a REPLY */
	uint64_t max_age;                 /* entry lifetime and request age */
	uint64_t max_future;              /* tolerated clock skew */
	int require_sender_match;         /* reply address == envelope sender */
	int require_auth_pass;            /* and upstream SPF/DKIM vouched for it */
	const char *subject_marker;       /* e.g. "[mailpunch]" */
	size_t max_message_size;          /* body bytes considered */
	const mp_host_peer *peers;        /* other hosts of the community */
	size_t npeers;
} mp_host_config;

typedef struct mp_host_limits {
	size_t replay_capacity;           /* session IDs remembered */
	unsigned per_address_burst;       /* replies to one address ... */
	uint64_t per_address_period;      /* ... per this many seconds */
	unsigned per_client_burst;        /* mails from one client IP ... */
	uint64_t per_client_period;
} mp_host_limits;

typedef struct mp_host mp_host;

typedef struct mp_host_input {
	const char *id;                   /* queue ID, for log details */
	const char *client_addr;          /* connecting client IP or NULL */
	const char *env_from;             /* envelope sender, "" for <> */
	const char *rcpt;                 /* the rendezvous recipient */
	int is_auto;                      /* auto-submitted, list, bounce */
	int auth_pass;                    /* an Authentication-Results of ours
	                                     passed the envelope sender (authres.h) */
	const char *content_type;         /* raw header values or NULL */
	const char *cte;
	const char *message_id;
	const char *body;                 /* body as received (CRLF) */
	size_t body_len;
	uint64_t now;
} mp_host_input;

typedef enum mp_host_action {
	MP_HOST_DROP = 0,
	MP_HOST_SEND = 1,
} mp_host_action;

typedef struct mp_host_outcome {
	mp_host_action action;
	int msg_type;                     /* mp_msg_type handled, 0 if none */
	mp_stat stat;                     /* counter this mail went to */
	char from[MP_ADDR_MAX + 1];       /* envelope sender of the mail to send */
	char to[MP_ADDR_MAX + 1];         /* its recipient */
	char *mail;                       /* owned; NULL unless SEND */
	size_t mail_len;
	mp_mail *parts;                   /* owned; the same mail in parts */
	char detail[256];                 /* for the log: never a secret */
	uint8_t session_id[MP_SESSION_ID_LEN];
	int replay_recorded;              /* session ID entered the cache */
	int sync_peer;                    /* TABLE_SYNC: index in cfg->peers, else -1 */
	int sync_want_full;               /* ... and it asked for our whole table */
} mp_host_outcome;

int mp_host_new(mp_table *table, const mp_host_limits *limits, mp_host **out);
void mp_host_free(mp_host *h);

/* 1 if addr is one of cfg's rendezvous addresses (case-insensitive). */
int mp_host_is_rendezvous(const mp_host_config *cfg, const char *addr);

int mp_host_process(mp_host *h, const mp_host_config *cfg, const mp_host_input *in,
                    mp_host_outcome *out);
/* The mail to send could not be delivered: allow its retry. */
void mp_host_cancel(mp_host *h, mp_host_outcome *out);
void mp_host_outcome_free(mp_host_outcome *out);

#endif
