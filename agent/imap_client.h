/*
 * imap_client.h - the IMAP backend of the mailbox watcher (mailbox.h),
 * and the connection helpers it shares with the POP3 backend.
 *
 * Session: TLS (implicit, or STARTTLS before anything else), CAPABILITY,
 * AUTHENTICATE PLAIN (with SASL-IR when offered) or else LOGIN, CREATE
 * move_to (an "already exists" answer is fine), SELECT folder, then the
 * watch loop:
 *   UID SEARCH UNDELETED SUBJECT "<marker>"   (a substring match)
 *   for each UID not handled yet:
 *     UID FETCH uid (RFC822.SIZE BODY.PEEK[]<0.max_mail>)   (no \Seen)
 *     over max_mail: skipped and logged; a Subject without the marker
 *     (a server that matches loosely): skipped; else on_mail(), then
 *     for CONSUME: UID MOVE (RFC 6851) when moving and MOVE is offered,
 *     else [UID COPY], UID STORE +FLAGS.SILENT (\Deleted), UID EXPUNGE
 *     (UIDPLUS).  Without UIDPLUS the mail stays flagged \Deleted (and
 *     out of our searches): a plain EXPUNGE would also remove mails the
 *     user's own client flagged, which is not ours to do.
 *   IDLE until "* n EXISTS" (or check_now, or 25 minutes), DONE, search
 *   again.  Without IDLE: search every poll_interval_s.
 * Handled UIDs (kept, consumed, skipped) are remembered with the
 * folder's UIDVALIDITY across reconnections, at most
 * AGENT_IMAP_HANDLED_MAX (then the oldest half is forgotten).
 * Errors and BYE end the connection; the watcher reports them and
 * reconnects after 1 s, doubling to 60 s, back to 1 s once a SELECT
 * succeeds.  TCP keepalive notices a dead connection during IDLE.
 *
 * Bounds: every server response through mp_imap_reader (lib/imap_parse.h)
 * with max_literal = max_mail; a SEARCH answer (64 KiB line) holds some
 * 10000 UIDs, far more than a watcher meets.
 *
 * Connection helpers (for imap_client.c and pop3_client.c only):
 *   agent_mailconn_open()      TCP connect to host:port (a plain
 *                              bufferevent; BEV_EVENT_CONNECTED follows).
 *   agent_mailconn_tls()       put TLS over a connected bufferevent
 *                              (implicit TLS right after connect, or
 *                              after STARTTLS): returns the new
 *                              bufferevent, which owns the old one.
 *   agent_mailconn_keepalive() TCP keepalive on the socket.
 *   agent_mailconn_failure()   classify a BEV_EVENT_ERROR/EOF.
 *   agent_mailconn_check_account()  the checks agent_mailbox_start()
 *                              documents (MP_ERR_INVAL), for both.
 */
#ifndef MAILPUNCH_AGENT_IMAP_CLIENT_H
#define MAILPUNCH_AGENT_IMAP_CLIENT_H

#include <stddef.h>

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include "mailbox.h"

#define AGENT_IMAP_HANDLED_MAX 100000
/* RFC 2177: clients should re-issue IDLE at least every 29 minutes. */
#define AGENT_IMAP_IDLE_REFRESH_S (25 * 60)
#define AGENT_MAILBOX_BACKOFF_MAX_S 60

int agent_imap_start(struct event_base *base, const agent_mailbox_account *acct,
                     agent_mail_cb on_mail, agent_mailbox_error_cb on_error,
                     void *arg, agent_mailbox **out);
void agent_imap_check_now(agent_mailbox *mb);
void agent_imap_free(agent_mailbox *mb);

/* NULL on failure (reason in err).  The callbacks get arg. */
struct bufferevent *agent_mailconn_open(struct event_base *base, struct evdns_base *dns,
                                        const char *host, unsigned port,
                                        bufferevent_data_cb readcb,
                                        bufferevent_event_cb eventcb, void *arg,
                                        char *err, size_t errlen);
/* On failure returns NULL and leaves plain alone (the caller frees it). */
struct bufferevent *agent_mailconn_tls(struct bufferevent *plain, SSL_CTX *ctx,
                                       const char *tls_name,
                                       bufferevent_data_cb readcb,
                                       bufferevent_event_cb eventcb, void *arg,
                                       char *err, size_t errlen);
void agent_mailconn_keepalive(struct bufferevent *bev);
/* For an error or EOF event on bev: the agent_mailbox_status it means
 * (handshaking: the TLS handshake was under way) and a detail line. */
int agent_mailconn_failure(struct bufferevent *bev, short events, int handshaking,
                           char *detail, size_t len);
int agent_mailconn_check_account(const agent_mailbox_account *acct);

#endif
