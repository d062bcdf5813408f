/*
 * sync.h - the milter's side of TABLE_SYNC: a thread that sends this
 * host's table entries to its peer hosts by mail.
 *
 * At start, if the table is empty, it asks every peer for its whole
 * table (seed 001: a host added later is supplemented by the others).
 * Every SyncInterval it pushes to each peer the entries dated since its
 * last successful push to that peer (at most PUSH_MAX, newest first).
 * When a peer asks for our whole table (milter_sync_request_full(),
 * called by the callbacks on such a TABLE_SYNC), it sends it, in
 * several mails if needed.  Mail goes out through the normal injection
 * path from our first rendezvous address; a failed send is retried at
 * the next round.  Receiving is mp_host_process()'s job.
 * Errors: milter_sync_start() returns MP_ERR_NOMEM if the thread cannot
 * start; sending failures are logged, never fatal.
 */
#ifndef MAILPUNCH_MILTER_SYNC_H
#define MAILPUNCH_MILTER_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"

int milter_sync_start(void);
void milter_sync_stop(void);
void milter_sync_request_full(int peer);

/*
 * Peer health.  A representative sends each peer an empty TABLE_SYNC
 * every SyncInterval, from its rendezvous address: if the peer cannot
 * be reached, the MTA returns it, and the bounce names the peer's
 * address.  milter_sync_bounce() looks for configured peer addresses in
 * a bounce (body of a mail with the null sender to a rendezvous address)
 * and marks each found down for PeerRetry seconds; it returns how many.
 * milter_sync_peer_usable(): not in PeerDown and not resting.
 */
int milter_sync_bounce(const milter_snapshot *snap, const char *body, size_t len, uint64_t now);
int milter_sync_peer_usable(const milter_snapshot *snap, int peer, uint64_t now);

#endif
