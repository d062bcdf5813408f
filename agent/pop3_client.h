/*
 * pop3_client.h - the POP3 backend of the mailbox watcher (mailbox.h).
 *
 * POP3 has no push, so the watcher polls: one short session every
 * poll_interval_s, and at once after agent_mailbox_check_now() (a poll
 * under way is followed by another one).  A session:
 *   TLS (implicit, port 995; or STLS on a plain connection first),
 *   USER, PASS, UIDL,
 *   for each message whose UID was not looked at before:
 *     TOP n 0   the header only (RETR would mark the message read on
 *               some servers, and costs the whole mail); the first
 *               Subject field, unfolded, must contain the marker
 *     LIST n    the size: over max_mail, skipped and logged
 *     RETR n    then on_mail(); CONSUME: DELE n
 *   QUIT       which commits the deletions (RFC 1939: nothing is
 *              deleted if the session ends otherwise).
 * UIDs are remembered across sessions (a 64-bit digest each, at most
 * MP_POP3_UIDL_MAX, the ones no longer listed forgotten at each UIDL):
 * a non-marker mail is looked at once, a kept one handed over once, and
 * a consumed one whose deletion did not get committed (the connection
 * broke before QUIT) is deleted in the next session without being
 * handed over again.
 * Errors end the session (uncommitted) and are reported; the next try
 * follows after the backoff delay (1 s doubling to 60 s, but never
 * later than poll_interval_s).
 *
 * Bounds: every response through mp_pop3_reader (lib/pop3_parse.h):
 * status lines MP_POP3_LINE_MAX, TOP headers AGENT_POP3_HEADER_MAX (the
 * rest read away; a Subject is never that far down), RETR max_mail,
 * UIDL AGENT_POP3_UIDL_BODY_MAX.
 */
#ifndef MAILPUNCH_AGENT_POP3_CLIENT_H
#define MAILPUNCH_AGENT_POP3_CLIENT_H

#include "mailbox.h"

#define AGENT_POP3_HEADER_MAX (256 * 1024)
#define AGENT_POP3_UIDL_BODY_MAX ((size_t)8 * 1024 * 1024)

int agent_pop3_start(struct event_base *base, const agent_mailbox_account *acct,
                     agent_mail_cb on_mail, agent_mailbox_error_cb on_error,
                     void *arg, agent_mailbox **out);
void agent_pop3_check_now(agent_mailbox *mb);
void agent_pop3_free(agent_mailbox *mb);

#endif
