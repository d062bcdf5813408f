/*
 * message.h - what the milter keeps of one SMTP transaction addressed
 * to a rendezvous address: the envelope as the MTA gave it, the headers
 * that matter, the body.  callbacks.c fills it and owns it (its
 * message_free); representative.c reads it to pass a request on.
 */
#ifndef MAILPUNCH_MILTER_MESSAGE_H
#define MAILPUNCH_MILTER_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/block.h"
#include "state.h"

/* Per message; lives from MAIL (or, when the MTA skips that step, the
 * first RCPT) to the DATA decision, the end of message or an abort. */
typedef struct milter_message {
	char qid[32];
	char env_from[MP_ADDR_MAX + 1];
	char rendezvous[MP_ADDR_MAX + 1];   /* first rendezvous recipient */
	char **rdv_rcpts;                   /* as received, to delete */
	size_t nrdv, nrcpts;
	char **header_names;                /* as received: a rewrite replaces them */
	char **header_values;
	size_t nheaders, header_bytes;
	int headers_incomplete;             /* so no rewrite */
	int is_auto, auth_pass;
	char *content_type, *cte, *message_id;
	char *body;
	size_t body_len, body_cap;
	int too_big;
	uint64_t peer_rcpts;                /* bit p: Peer p's address is a recipient too */
	milter_snapshot *snap;
} milter_message;


#endif
