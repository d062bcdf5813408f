/*
 * state.h - what the agent remembers across restarts.
 *
 * Outstanding requests (session IDs a REPLY may echo: a reply to a
 * request sent before a restart is still accepted, and one matching no
 * request is rejected as forged, seed 001) and known peers (identity,
 * name, when last seen, failure flag), so `connect bob` works from what
 * an earlier reply told.  Stored in STATEDIR/state as text lines,
 * replaced atomically (written to a temporary file, then renamed), mode
 * 0600.  Requests older than a day are dropped on load.
 *
 * Errors: agent_state_load() treats a missing file as empty state and
 * returns MP_ERR_IO / MP_ERR_MALFORMED for an unreadable or garbled one
 * (with the line in err); agent_state_save() returns MP_ERR_IO.
 */
#ifndef MAILPUNCH_AGENT_STATE_H
#define MAILPUNCH_AGENT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/block.h"
#include "mailpunch/keys.h"

#define AGENT_STATE_REQUESTS 64
#define AGENT_STATE_PEERS 256
#define AGENT_REQUEST_LIFETIME 86400

typedef struct agent_request {
	uint8_t sid[MP_SESSION_ID_LEN];
	uint64_t time;
	char host[MP_ADDR_MAX + 1];        /* rendezvous address it went to */
} agent_request;

typedef struct agent_known_peer {
	mp_uid uid;
	mp_pubid id;
	char name[MP_NAME_MAX + 1];
	uint64_t seen;                     /* when a reply last listed it */
	uint8_t flags;                     /* MP_PEER_FAILED as last seen */
} agent_known_peer;

typedef struct agent_state {
	agent_request requests[AGENT_STATE_REQUESTS];
	size_t nrequests;
	agent_known_peer peers[AGENT_STATE_PEERS];
	size_t npeers;
} agent_state;

int agent_state_load(const char *dir, agent_state *st, uint64_t now, char *err, size_t errlen);
int agent_state_save(const char *dir, const agent_state *st);
/* Remembers a request; the oldest is forgotten when full. */
void agent_state_add_request(agent_state *st, const uint8_t sid[MP_SESSION_ID_LEN], uint64_t time,
                             const char *host);
/* 1 and removes it if sid is outstanding (a reply is accepted once). */
int agent_state_take_request(agent_state *st, const uint8_t sid[MP_SESSION_ID_LEN]);
void agent_state_learn_peer(agent_state *st, const mp_peer *p, uint64_t now);
/* By user ID text or name (case-insensitive); NULL if none or ambiguous. */
const agent_known_peer *agent_state_find_peer(const agent_state *st, const char *who);

#endif
