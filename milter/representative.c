/*
 * representative.c - a representative host passes requests on to its
 * peer hosts in turn (see representative.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mailpunch/block.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/mail.h"
#include "representative.h"
#include "sync.h"

/* The MTA does the passing on: the peer's address is added as a
 * recipient and ours removed.  Peers in PeerDown (or named by a bounce
 * lately) are skipped, and so is a peer the mail is addressed to already. */
int
milter_forward_to_peer(SMFICTX *ctx, milter_message *m)
{
	static atomic_uint turn;
	static _Atomic uint64_t sent[MILTER_MAX_PEERS];
	const milter_snapshot *snap = m->snap;
	mp_mail_limits lim = { .max_size = (size_t)snap->settings->max_message_size };
	mp_block_header hdr;
	uint8_t *blk = NULL;
	size_t blk_len, i, n = snap->hc.npeers;
	char rcpt[MP_ADDR_MAX + 3];
	uint64_t now = (uint64_t)time(NULL);
	int p = -1;

	if (m->is_auto || m->env_from[0] == '\0' || n == 0)
		return 0;
	if (mp_mail_find_block(m->content_type, m->cte, m->body ? m->body : "", m->body_len, &lim,
	                       &blk, &blk_len) == MP_OK) {
		int peeked = mp_block_peek(blk, blk_len, &hdr);

		free(blk);
		if (peeked == MP_OK && hdr.sender_kind == MP_SENDER_HOST)
			return 0;       /* a peer's sync: ours to read */
	}
	for (i = 0; i < n && p < 0; i++) {
		unsigned k = atomic_fetch_add(&turn, 1) % (unsigned)n;

		/* a peer that is a recipient already answers it: once per host */
		if (milter_sync_peer_usable(snap, (int)k, now) && !(m->peer_rcpts & (UINT64_C(1) << k)))
			p = (int)k;
	}
	if (p < 0 && m->peer_rcpts) {
		/* every peer up already has it: nothing left for us to do */
		mp_log_id(MP_LOG_INFO, m->qid, "request from <%s> already addressed to the peers",
		          m->env_from);
		for (i = 0; i < m->nrdv; i++)
			smfi_delrcpt(ctx, m->rdv_rcpts[i]);
		return 1;
	}
	if (p < 0)
		return 0;           /* every peer down: answer ourselves */
	snprintf(rcpt, sizeof rcpt, "<%s>", snap->peers[p].addr);
	if (smfi_addrcpt(ctx, rcpt) != MI_SUCCESS)
		return 0;
	for (i = 0; i < m->nrdv; i++)
		if (smfi_delrcpt(ctx, m->rdv_rcpts[i]) != MI_SUCCESS)
			mp_log_id(MP_LOG_WARNING, m->qid, "cannot remove rendezvous recipient %s",
			          m->rdv_rcpts[i]);
	mp_table_count(milter.table, MP_STAT_FORWARDED, 1);
	mp_log_id(MP_LOG_INFO, m->qid, "request from <%s> forwarded to peer %s (%llu so far)",
	          m->env_from, snap->peers[p].addr,
	          (unsigned long long)atomic_fetch_add(&sent[p], 1) + 1);
	return 1;
}
