/*
 * stun.h - STUN messages (RFC 5389, with the RFC 5780 attributes).
 *
 * A pure codec: it neither owns sockets nor keeps state.  The agent's
 * STUN client (agent/stun_client.c) uses it to ask a server how its NAT
 * maps a UDP socket; the NAT behaviour discovery uses CHANGE-REQUEST and
 * OTHER-ADDRESS; the hole punching may use it for connectivity checks.
 *
 * Interface:
 *   mp_stun_parse() decodes one datagram into an mp_stun_msg: header
 *     checks, every attribute walked with its padding, addresses decoded
 *     into mp_candidate, FINGERPRINT verified when present.
 *     MESSAGE-INTEGRITY needs a key, so it is checked separately by
 *     mp_stun_check_integrity() on the same bytes.
 *   mp_stun_binding_request() writes a Binding request with a fresh
 *     random transaction ID and the optional attributes of
 *     mp_stun_request.
 *   mp_stun_builder_* write any message attribute by attribute (tests,
 *     the fuzz target and the punching's responses use them).
 *   mp_stun_longterm_key() derives the RFC 5389 long-term credential key
 *     MD5(username ":" realm ":" password); a short-term key is the
 *     password itself.  Neither applies SASLprep: callers pass prepared
 *     strings.
 *
 * Bounds: a message is at most MP_STUN_MSG_MAX bytes, in and out; the
 * text attributes are held to the RFC's limits (MP_STUN_USERNAME_MAX,
 * MP_STUN_TEXT_MAX) and copied into the fixed arrays of mp_stun_msg, so
 * parsing allocates nothing and the struct never points into the input.
 *
 * Errors (mp_stun_parse): MP_ERR_TRUNCATED (shorter than the header, or
 * an attribute or its padding running past the end), MP_ERR_TOOBIG (over
 * MP_STUN_MSG_MAX), MP_ERR_MAGIC (not STUN: the first two bits are set,
 * the magic cookie is wrong or the FINGERPRINT does not match - RFC 5389
 * uses all three to tell STUN from other traffic on a shared socket),
 * MP_ERR_MALFORMED (length not a multiple of 4, bytes after the stated
 * length, a known attribute of the wrong size or content, an address
 * family other than 1 or 2, an attribute after FINGERPRINT).
 * mp_stun_check_integrity(): MP_ERR_NOTFOUND (no MESSAGE-INTEGRITY),
 * MP_ERR_SIGNATURE (wrong HMAC), MP_ERR_CRYPTO, MP_ERR_INVAL.  Builders:
 * MP_ERR_TOOBIG (output buffer or an attribute over its limit),
 * MP_ERR_INVAL, MP_ERR_CRYPTO.
 */
#ifndef MAILPUNCH_STUN_H
#define MAILPUNCH_STUN_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/block.h"

#define MP_STUN_HEADER_LEN 20
#define MP_STUN_MAGIC_COOKIE 0x2112A442u
#define MP_STUN_TID_LEN 12
/* Largest message accepted or built: one Ethernet MTU of UDP payload is
 * more than any Binding exchange needs (RFC 5389 §7.1 keeps requests
 * under the path MTU). */
#define MP_STUN_MSG_MAX 1500
#define MP_STUN_USERNAME_MAX 512    /* RFC 5389 §15.3: less than 513 bytes */
#define MP_STUN_TEXT_MAX 763        /* SOFTWARE, REALM, NONCE, reason phrase */
#define MP_STUN_UNKNOWN_MAX 8       /* unknown attribute types remembered */
#define MP_STUN_HMAC_LEN 20
#define MP_STUN_LONGTERM_KEY_LEN 16

/* Message classes (the C1/C0 bits of the type). */
#define MP_STUN_CLASS_REQUEST 0
#define MP_STUN_CLASS_INDICATION 1
#define MP_STUN_CLASS_SUCCESS 2
#define MP_STUN_CLASS_ERROR 3

#define MP_STUN_METHOD_BINDING 0x001

#define MP_STUN_BINDING_REQUEST 0x0001
#define MP_STUN_BINDING_INDICATION 0x0011
#define MP_STUN_BINDING_SUCCESS 0x0101
#define MP_STUN_BINDING_ERROR 0x0111

/* Attribute types (RFC 5389 §18.2, RFC 5780 §7, RFC 3489 legacy). */
#define MP_STUN_ATTR_MAPPED_ADDRESS 0x0001
#define MP_STUN_ATTR_CHANGE_REQUEST 0x0003
#define MP_STUN_ATTR_SOURCE_ADDRESS 0x0004      /* RFC 3489 */
#define MP_STUN_ATTR_CHANGED_ADDRESS 0x0005     /* RFC 3489 */
#define MP_STUN_ATTR_USERNAME 0x0006
#define MP_STUN_ATTR_MESSAGE_INTEGRITY 0x0008
#define MP_STUN_ATTR_ERROR_CODE 0x0009
#define MP_STUN_ATTR_UNKNOWN_ATTRIBUTES 0x000A
#define MP_STUN_ATTR_REALM 0x0014
#define MP_STUN_ATTR_NONCE 0x0015
#define MP_STUN_ATTR_XOR_MAPPED_ADDRESS 0x0020
#define MP_STUN_ATTR_SOFTWARE 0x8022
#define MP_STUN_ATTR_FINGERPRINT 0x8028
#define MP_STUN_ATTR_RESPONSE_ORIGIN 0x802B
#define MP_STUN_ATTR_OTHER_ADDRESS 0x802C

/* CHANGE-REQUEST flags (RFC 5780 §7.2). */
#define MP_STUN_CHANGE_IP 0x04u
#define MP_STUN_CHANGE_PORT 0x02u

/* mp_stun_msg.have bits: which attributes the message carried. */
#define MP_STUN_HAVE_XOR_MAPPED 0x0001u
#define MP_STUN_HAVE_MAPPED 0x0002u
#define MP_STUN_HAVE_RESPONSE_ORIGIN 0x0004u  /* or RFC 3489 SOURCE-ADDRESS */
#define MP_STUN_HAVE_OTHER_ADDRESS 0x0008u    /* or RFC 3489 CHANGED-ADDRESS */
#define MP_STUN_HAVE_ERROR_CODE 0x0010u
#define MP_STUN_HAVE_CHANGE_REQUEST 0x0020u
#define MP_STUN_HAVE_USERNAME 0x0040u
#define MP_STUN_HAVE_REALM 0x0080u
#define MP_STUN_HAVE_NONCE 0x0100u
#define MP_STUN_HAVE_SOFTWARE 0x0200u
#define MP_STUN_HAVE_INTEGRITY 0x0400u
#define MP_STUN_HAVE_FINGERPRINT 0x0800u      /* present and verified */

/*
 * A decoded message.  Addresses are mp_candidate: xor_mapped and mapped
 * have kind MP_CAND_SRFLX (they are what the server saw of us); the
 * server's own addresses (response_origin, other_address) have kind 0.
 * The text fields are NUL-terminated copies of the attribute bytes, which
 * the peer chose: sanitise before logging.  Only the first occurrence of
 * an attribute counts (RFC 5389 §15), and attributes after
 * MESSAGE-INTEGRITY other than FINGERPRINT are ignored (§15.4).
 */
typedef struct mp_stun_msg {
	uint16_t type;                  /* the whole 14-bit message type */
	uint16_t method;                /* MP_STUN_METHOD_* */
	uint8_t cls;                    /* MP_STUN_CLASS_* */
	uint8_t tid[MP_STUN_TID_LEN];
	size_t len;                     /* whole message, header included */
	uint32_t have;                  /* MP_STUN_HAVE_* */
	mp_candidate xor_mapped;
	mp_candidate mapped;
	mp_candidate response_origin;
	mp_candidate other_address;
	uint32_t change_flags;          /* MP_STUN_CHANGE_* */
	uint16_t error_code;            /* 300..699 */
	/* Comprehension-required attribute types (< 0x8000) the codec does
	 * not know: a response carrying any must be discarded (§7.3.3). */
	unsigned nunknown;              /* all of them, even past the array */
	uint16_t unknown[MP_STUN_UNKNOWN_MAX];
	size_t integrity_off;           /* MESSAGE-INTEGRITY attribute header */
	uint16_t username_len, realm_len, nonce_len, software_len, reason_len;
	char username[MP_STUN_USERNAME_MAX + 1];
	char realm[MP_STUN_TEXT_MAX + 1];
	char nonce[MP_STUN_TEXT_MAX + 1];
	char software[MP_STUN_TEXT_MAX + 1];
	char reason[MP_STUN_TEXT_MAX + 1];
} mp_stun_msg;

int mp_stun_parse(const uint8_t *buf, size_t len, mp_stun_msg *m);

/* Verifies MESSAGE-INTEGRITY of the bytes m was parsed from. */
int mp_stun_check_integrity(const uint8_t *buf, size_t len, const mp_stun_msg *m,
                            const uint8_t *key, size_t keylen);

/* Whether m is a response (success or error) to the transaction tid. */
int mp_stun_is_response_to(const mp_stun_msg *m, uint16_t method,
                           const uint8_t tid[MP_STUN_TID_LEN]);

/* key = MD5(username ":" realm ":" password), RFC 5389 §15.4. */
int mp_stun_longterm_key(const char *username, const char *realm,
                         const char *password,
                         uint8_t key[MP_STUN_LONGTERM_KEY_LEN]);

/* ---------------------------------------------------------------- building */

/* What a Binding request carries besides its header. */
typedef struct mp_stun_request {
	int change_request;             /* add CHANGE-REQUEST ... */
	uint32_t change_flags;          /* ... with these MP_STUN_CHANGE_* */
	const char *software;           /* SOFTWARE, or NULL */
	/* With key: USERNAME (if set), REALM and NONCE (if set, long-term
	 * credentials) and MESSAGE-INTEGRITY.  Short-term: the key is the
	 * password; long-term: see mp_stun_longterm_key(). */
	const char *username;
	const char *realm;
	const char *nonce;
	const uint8_t *key;
	size_t keylen;
	int fingerprint;                /* add FINGERPRINT last */
} mp_stun_request;

/* Writes a request into buf (cap bytes; MP_STUN_MSG_MAX always fits) and
 * its new random transaction ID into tid; *outlen gets its length. */
int mp_stun_binding_request(const mp_stun_request *r, uint8_t tid[MP_STUN_TID_LEN],
                            uint8_t *buf, size_t cap, size_t *outlen);

/*
 * Attribute by attribute.  The builder keeps the header's length field
 * current and remembers the first error, which every later call returns,
 * so a sequence of calls can be checked once at the end.  Padding bytes
 * are pad_byte (0 after init; RFC 5769's samples use 0x20).
 */
typedef struct mp_stun_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err;
	uint8_t pad_byte;
} mp_stun_builder;

int mp_stun_builder_init(mp_stun_builder *b, uint8_t *buf, size_t cap,
                         uint16_t type, const uint8_t tid[MP_STUN_TID_LEN]);
int mp_stun_add_attr(mp_stun_builder *b, uint16_t type, const void *val, size_t len);
int mp_stun_add_u32(mp_stun_builder *b, uint16_t type, uint32_t val);
/* An address attribute; XOR-MAPPED-ADDRESS is XORed as the RFC says. */
int mp_stun_add_addr(mp_stun_builder *b, uint16_t type, const mp_candidate *c);
int mp_stun_add_error(mp_stun_builder *b, uint16_t code, const char *reason);
int mp_stun_add_integrity(mp_stun_builder *b, const uint8_t *key, size_t keylen);
int mp_stun_add_fingerprint(mp_stun_builder *b);
/* The message's length, or the first error. */
int mp_stun_builder_finish(const mp_stun_builder *b, size_t *outlen);

const char *mp_stun_attr_name(uint16_t type);

#endif
