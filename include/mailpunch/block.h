/*
 * block.h - the coded block: mailpunch's messages, sealed.
 *
 * A block is the binary unit that mails carry (see docs/PROTOCOL.md for
 * the byte layout).  It is sealed to one recipient's X25519 key
 * (ephemeral-static X25519, HKDF-SHA256, ChaCha20-Poly1305) and
 * authenticated to its sender: a user signs with the Ed25519 identity
 * key, a host mixes its static X25519 key into the key derivation.
 *
 * Interface: mp_msg_new() allocates a message of a type with a fresh
 * random session ID and the current time; fill its union member, then
 * mp_block_seal().  mp_block_open() decrypts, authenticates and decodes
 * into a new mp_msg; mp_block_peek() reads the clear header only.  Who
 * may send which type is fixed (users: REQUEST, FAILURE_NOTICE, RELAY,
 * SIGNAL; hosts: REPLY, TABLE_SYNC, RELAYED); mp_block_open() enforces it.
 * Whether a sender is *trusted* (a configured host key, an expected user
 * ID) and whether the message is fresh are the caller's decisions: see
 * replay.h for time and replay checks.
 * Errors: MP_ERR_MAGIC, MP_ERR_VERSION, MP_ERR_TYPE, MP_ERR_TRUNCATED,
 * MP_ERR_TOOBIG, MP_ERR_WRONGKEY, MP_ERR_DECRYPT, MP_ERR_SIGNATURE,
 * MP_ERR_MALFORMED, MP_ERR_CRYPTO, MP_ERR_NOMEM, MP_ERR_INVAL.
 */
#ifndef MAILPUNCH_BLOCK_H
#define MAILPUNCH_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/keys.h"

#define MP_PROTO_VERSION 1
#define MP_SESSION_ID_LEN 16
#define MP_BLOCK_MAX 65536          /* a whole sealed block */
#define MP_NAME_MAX 64              /* display name, bytes */
#define MP_ADDR_MAX 254             /* mail address, bytes (RFC 5321) */
#define MP_MAX_CANDIDATES 16
#define MP_REPLY_MAX_PEERS 32
#define MP_SIGNAL_PAYLOAD_MAX 4096
#define MP_RELAY_INNER_MAX 16384
#define MP_SYNC_MAX_ENTRIES 128

typedef enum mp_msg_type {
	MP_MSG_REQUEST = 1,
	MP_MSG_REPLY = 2,
	MP_MSG_FAILURE_NOTICE = 3,
	MP_MSG_SIGNAL = 4,
	MP_MSG_RELAY = 5,
	MP_MSG_TABLE_SYNC = 6,
	MP_MSG_RELAYED = 7,     /* host to member: a SIGNAL passed on */
} mp_msg_type;

typedef enum mp_sender_kind {
	MP_SENDER_USER = 1,
	MP_SENDER_HOST = 2,
} mp_sender_kind;

/* ---------------------------------------------------------------- endpoints */

typedef enum mp_cand_kind {
	MP_CAND_LOCAL = 1,      /* address of a local interface */
	MP_CAND_SRFLX = 2,      /* server-reflexive, as a STUN server saw us */
	MP_CAND_PREDICTED = 3,  /* predicted from the NAT's port allocation */
} mp_cand_kind;

typedef struct mp_candidate {
	uint8_t kind;           /* mp_cand_kind */
	uint8_t family;         /* 4 or 6 */
	uint8_t addr[16];       /* network order; IPv4 uses the first 4 */
	uint16_t port;
} mp_candidate;

/* RFC 4787 / 5780 behaviour: mapping and filtering. */
typedef enum mp_nat_dep {
	MP_NAT_UNKNOWN = 0,
	MP_NAT_INDEPENDENT = 1,    /* endpoint-independent */
	MP_NAT_ADDR_DEP = 2,       /* address-dependent */
	MP_NAT_ADDR_PORT_DEP = 3,  /* address-and-port-dependent */
	MP_NAT_NONE = 4,           /* no NAT: public address */
} mp_nat_dep;

typedef enum mp_nat_alloc {
	MP_ALLOC_UNKNOWN = 0,
	MP_ALLOC_PRESERVING = 1,   /* external port = local port */
	MP_ALLOC_SEQUENTIAL = 2,   /* next mapping at +delta */
	MP_ALLOC_RANDOM = 3,
} mp_nat_alloc;

typedef struct mp_nat {
	uint8_t mapping;        /* mp_nat_dep */
	uint8_t filtering;      /* mp_nat_dep */
	uint8_t allocation;     /* mp_nat_alloc */
	int16_t delta;          /* port delta for SEQUENTIAL, else 0 */
} mp_nat;

typedef struct mp_endpoints {
	uint8_t ncand;
	mp_candidate cand[MP_MAX_CANDIDATES];
	mp_nat nat;
} mp_endpoints;

/* ---------------------------------------------------------------- bodies */

#define MP_PEER_FAILED 0x01     /* someone reported a failed connection */

typedef struct mp_request {
	char reply_addr[MP_ADDR_MAX + 1];
	char name[MP_NAME_MAX + 1];
	mp_endpoints ep;
} mp_request;

typedef struct mp_peer {
	mp_pubid id;
	char name[MP_NAME_MAX + 1];
	mp_endpoints ep;
	uint32_t age;           /* seconds since the peer's request */
	uint8_t flags;          /* MP_PEER_* */
} mp_peer;

typedef struct mp_reply {
	uint8_t npeers;
	mp_peer peers[MP_REPLY_MAX_PEERS];
} mp_reply;

typedef enum mp_failure_reason {
	MP_FAIL_UNSPECIFIED = 0,
	MP_FAIL_TIMEOUT = 1,       /* no packet came back */
	MP_FAIL_AUTH = 2,          /* peer failed authentication */
	MP_FAIL_REFUSED = 3,       /* peer declined */
} mp_failure_reason;

typedef struct mp_failure {
	mp_uid target;
	uint8_t reason;         /* mp_failure_reason */
} mp_failure;

typedef struct mp_signal {
	uint8_t kind;           /* meaning defined by the agent (PROTOCOL.md) */
	mp_endpoints ep;
	uint16_t payload_len;
	uint8_t payload[MP_SIGNAL_PAYLOAD_MAX];
} mp_signal;

typedef struct mp_relay {
	mp_uid target;
	uint16_t inner_len;
	uint8_t inner[MP_RELAY_INNER_MAX];  /* a sealed SIGNAL block */
} mp_relay;

typedef struct mp_sync_entry {
	mp_pubid id;
	char name[MP_NAME_MAX + 1];
	char reply_addr[MP_ADDR_MAX + 1];
	mp_endpoints ep;
	uint64_t time;          /* of the member's last request, Unix seconds */
	uint8_t flags;          /* MP_PEER_* */
} mp_sync_entry;

typedef struct mp_table_sync {
	uint8_t want_full;      /* ask the receiver for its whole table */
	uint16_t nentries;
	mp_sync_entry entries[MP_SYNC_MAX_ENTRIES];
} mp_table_sync;

typedef struct mp_msg {
	uint8_t type;                           /* mp_msg_type */
	uint8_t session_id[MP_SESSION_ID_LEN];
	uint64_t timestamp;                     /* Unix seconds */
	/* Filled by mp_block_open(); ignored by mp_block_seal(). */
	uint8_t sender_kind;                    /* mp_sender_kind */
	mp_pubid sender;                        /* user sender */
	uint8_t sender_host[MP_KEY_LEN];        /* host sender */
	union {
		mp_request request;
		mp_reply reply;
		mp_failure failure;
		mp_signal signal;
		mp_relay relay;         /* RELAY; RELAYED uses inner/inner_len only */
		mp_table_sync sync;
	} u;
} mp_msg;

/* The key a block is sealed with or opened by: a host or a user. */
typedef struct mp_block_key {
	const mp_hostkey *host;
	const mp_identity *user;
} mp_block_key;

/* What can be read without a key. */
typedef struct mp_block_header {
	uint8_t version;
	uint8_t type;
	uint8_t sender_kind;
	uint8_t recipient_id[8];   /* first 8 bytes of SHA-256(recipient key) */
} mp_block_header;

mp_msg *mp_msg_new(mp_msg_type type);
void mp_msg_free(mp_msg *m);
const char *mp_msg_type_name(int type);

int mp_block_seal(const mp_msg *m, const mp_block_key *sender,
                  const uint8_t recipient_pub[MP_KEY_LEN],
                  uint8_t **out, size_t *outlen);
int mp_block_open(const uint8_t *blk, size_t len, const mp_block_key *recipient,
                  mp_msg **out);
int mp_block_peek(const uint8_t *blk, size_t len, mp_block_header *h);

/* Candidate helpers (text like "203.0.113.7:4500" or "[2001:db8::1]:4500"). */
int mp_candidate_format(const mp_candidate *c, char *buf, size_t len);
int mp_candidate_parse(const char *text, mp_cand_kind kind, mp_candidate *c);
const char *mp_nat_dep_name(int dep);
const char *mp_nat_alloc_name(int alloc);

#endif
