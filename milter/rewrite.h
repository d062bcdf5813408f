/*
 * rewrite.h - turn a request mail, in place, into its reply
 * (ReplyMethod rewrite, the default).
 *
 * Why rewrite rather than inject: the reply replaces the request, so the
 * MTA queues and delivers one message instead of two (the discarded
 * request and an injected reply), and no process or SMTP session is
 * spent per reply.  The constraints of injection still hold:
 *  - durable before acknowledged: request and reply are one queue file;
 *    the MTA says 250 to the sender only once it holds the rewritten
 *    mail, and a failure on the way tempfails the request;
 *  - the normal outbound path: the reply is queued and delivered like
 *    any mail from us (a milter listed after ours sees the rewritten
 *    mail); envelope and From: are the rendezvous address, so SPF of
 *    our outbound IP aligns with From: for DMARC;
 *  - no loop: the rewritten mail does not come back through the milter.
 * Requests that have other recipients, and signals (whose trace headers
 * belong to their sender), still leave by injection (inject.h).
 *
 * Interface: milter_rewrite_granted() says whether the actions the MTA
 * granted at negotiation allow a rewrite; milter_rewrite() (end of
 * message only) sets the envelope sender, replaces the rendezvous
 * recipients by the member, puts the reply's headers in place of every
 * header the milter was shown, and the reply's body in place of the
 * request's.
 * Errors: MP_ERR_IO with the step that the MTA refused in *failed_step,
 * MP_ERR_NOMEM;
 * the caller tempfails the mail, which also drops the changes made so
 * far.
 */
#ifndef MAILPUNCH_MILTER_REWRITE_H
#define MAILPUNCH_MILTER_REWRITE_H

#include <stddef.h>

#include <libmilter/mfapi.h>

#include "mailpunch/mail.h"

/* The SMFIF_* actions a rewrite needs (request them at negotiation). */
#define MILTER_REWRITE_ACTIONS \
	(SMFIF_CHGFROM | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_ADDHDRS | SMFIF_CHGHDRS | \
	 SMFIF_CHGBODY)

int milter_rewrite_granted(unsigned long actions);

/* header_names/values: the incoming headers in order, as the MTA gave
 * them; rdv_rcpts: the rendezvous recipients as the MTA gave them. */
int milter_rewrite(SMFICTX *ctx, const char *from, const char *to, const mp_mail *reply,
                   char *const *header_names, char *const *header_values, size_t nheaders,
                   char *const *rdv_rcpts, size_t nrdv, const char **failed_step);

#endif
