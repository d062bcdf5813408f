/*
 * representative.h - Representative mode (seed 001): request mail is
 * passed on, unchanged and with its sender, to the configured peer hosts
 * in turn, so that each gets an equal share.
 *
 * Interface: milter_forward_to_peer() at end of message, for mail to a
 * rendezvous address: 1 if the mail was passed on (the MTA delivers it
 * to the peer: the caller accepts it), 0 if this host is to answer it
 * (a peer's TABLE_SYNC, mail nobody should answer, every peer down).
 * Errors: none to report; a refused recipient change is logged and the
 * host answers the mail itself.
 */
#ifndef MAILPUNCH_MILTER_REPRESENTATIVE_H
#define MAILPUNCH_MILTER_REPRESENTATIVE_H

#include <libmilter/mfapi.h>

#include "message.h"

int milter_forward_to_peer(SMFICTX *ctx, milter_message *m);

#endif
