/*
 * hostsync.h - hosts of one community exchanging their tables by mail
 * (seed 001's second embodiment: several host terminals).
 *
 * Each host knows its peers (rendezvous address and host public key,
 * from the configuration).  A TABLE_SYNC block, sealed host to host,
 * carries table entries including the members' reply addresses, which
 * only ever travel sealed between hosts.  A block with want_full set
 * asks the receiver for its whole table (a host starting empty).
 *
 * Interface: mp_host_peer_parse() reads a `Peer` configuration value;
 * mp_hostsync_compose() builds the mail carrying one TABLE_SYNC block
 * (at most MP_SYNC_MAX_ENTRIES entries) for a peer; mp_hostsync_merge()
 * applies a received block to the table with the merge rules (newer
 * entry wins, identity conflicts refused, entries past their lifetime
 * or from the future skipped, capacity as for any upsert) - idempotent,
 * so loops and duplicates are harmless.  mp_host_process() (host.h)
 * calls it for TABLE_SYNC mail from a configured peer.
 * Errors: MP_ERR_SYNTAX / MP_ERR_KEYFILE (peer value), MP_ERR_NOMEM,
 * MP_ERR_CRYPTO, MP_ERR_INVAL; merge passes on the table backend's
 * MP_ERR_UNAVAILABLE (tempfail).
 */
#ifndef MAILPUNCH_HOSTSYNC_H
#define MAILPUNCH_HOSTSYNC_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/block.h"
#include "mailpunch/keys.h"
#include "mailpunch/table.h"

typedef struct mp_host_peer {
	char addr[MP_ADDR_MAX + 1];       /* the peer's rendezvous address */
	uint8_t pub[MP_KEY_LEN];          /* its host public key */
} mp_host_peer;

typedef struct mp_sync_result {
	size_t merged;                    /* newer than ours: stored */
	size_t older;                     /* ours as new or newer: skipped */
	size_t conflicts;                 /* user ID bound to another key here */
	size_t stale;                     /* past the lifetime, or from the future */
	size_t invalid;                   /* refused by the table (bad entry) */
} mp_sync_result;

/* "ADDRESS KEY": KEY is "mph1...." text, or the path of a file holding
 * that text on its first line, or of the peer's host key file. */
int mp_host_peer_parse(const char *text, mp_host_peer *out);
/* Index of the peer with this host key, or -1. */
int mp_host_peer_find(const mp_host_peer *peers, size_t n, const uint8_t pub[MP_KEY_LEN]);

/* The mail (CRLF, owned by the caller) from our rendezvous address
 * `from` to peer->addr carrying entries e[0..n) and want_full. */
int mp_hostsync_compose(const mp_hostkey *key, const char *from, const char *subject_marker,
                        const mp_host_peer *peer, const mp_table_entry *e, size_t n,
                        int want_full, uint64_t now, char **mail, size_t *len);

int mp_hostsync_merge(mp_table *t, const mp_table_sync *s, uint64_t now, uint64_t max_age,
                      uint64_t max_future, mp_sync_result *r);

#endif
