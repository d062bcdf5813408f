/*
 * peers.h - choosing whom to connect to from a REPLY's peer list.
 *
 * Seed 001: newest first, peers reported as failed last, acquaintances
 * (an allow list of user IDs) preferred, and a deny list never tried.
 * The order, most preferred first: not flagged before flagged, allowed
 * before others, newer (smaller age) before older, then as the host
 * listed them.  A REPLY's identities are checked here too: a peer whose
 * user ID is our own is skipped.
 *
 * Interface: mp_peers_order() fills order[] with indexes into peers and
 * returns how many are eligible; mp_peers_find() looks a peer up by
 * user ID text or by name (case-insensitive).
 * Errors: mp_peers_find() returns MP_ERR_NOTFOUND, or MP_ERR_CONFLICT
 * when a name matches several peers (ask for the user ID then).
 */
#ifndef MAILPUNCH_PEERS_H
#define MAILPUNCH_PEERS_H

#include <stddef.h>

#include "mailpunch/block.h"
#include "mailpunch/keys.h"

typedef struct mp_peer_policy {
	const mp_uid *allow;    /* preferred user IDs */
	size_t nallow;
	const mp_uid *deny;     /* never these */
	size_t ndeny;
	const mp_uid *self;     /* our own ID (never ourselves), may be NULL */
} mp_peer_policy;

size_t mp_peers_order(const mp_peer *peers, size_t n, const mp_peer_policy *pol, size_t *order);
int mp_peers_find(const mp_peer *peers, size_t n, const char *who, size_t *index);

#endif
