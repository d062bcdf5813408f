/*
 * state.h - what the milter's threads share: the table, the host logic,
 * and the current configuration snapshot.
 *
 * A snapshot (settings, host key, derived mp_host_config) is immutable
 * once published.  Callbacks take a reference for the duration of one
 * message (milter_snapshot_get/put); a reload builds a new snapshot and
 * publishes it, and the old one is freed when its last user lets go.
 * So a reload never changes settings under a message being processed.
 * Errors: milter_state_reload() returns mp_err with a reason in err and
 * keeps the old snapshot.
 */
#ifndef MAILPUNCH_MILTER_STATE_H
#define MAILPUNCH_MILTER_STATE_H

#include <stddef.h>

#include "mailpunch/host.h"
#include "mailpunch/keys.h"
#include "mailpunch/table.h"
#include "settings.h"

typedef struct milter_snapshot {
	milter_settings *settings;
	mp_hostkey *key;
	mp_host_config hc;
	mp_host_peer peers[MILTER_MAX_PEERS];   /* hc.peers points here */
	int peer_down[MILTER_MAX_PEERS];        /* listed in PeerDown */
	int refs;                    /* users + 1 while published */
} milter_snapshot;

typedef struct milter_state {
	mp_table *table;
	mp_host *host;
	const char *config_path;
} milter_state;

extern milter_state milter;

/* Builds a snapshot from loaded settings (takes ownership of s).  When
 * the host key cannot be read but prev (may be NULL) already holds the
 * key of the same file, that key is kept: after the privilege drop the
 * key file is usually no longer readable, and a reload must still work. */
int milter_snapshot_new(milter_settings *s, const milter_snapshot *prev, milter_snapshot **out,
                        char *err, size_t errlen);
void milter_snapshot_publish(milter_snapshot *snap);
milter_snapshot *milter_snapshot_get(void);
void milter_snapshot_put(milter_snapshot *snap);
/* Re-reads config_path; settings that need a restart are reported. */
int milter_state_reload(char *err, size_t errlen);
/* Drops the published snapshot at shutdown. */
void milter_state_clear(void);

#endif
