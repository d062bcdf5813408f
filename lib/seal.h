/*
 * seal.h - the cryptographic envelope of a block, without its meaning.
 *
 * Interface: mp_seal() turns a plaintext body into a sealed block and
 * mp_unseal() reverses it; block.c encodes and decodes what is inside.
 * The envelope header is authenticated as AEAD associated data; a user
 * sender's Ed25519 signature is appended to the plaintext before
 * encryption and covers header, recipient key and plaintext, so a block
 * opened by its recipient cannot be re-sealed to someone else unnoticed.
 * Errors: as block.h.
 */
#ifndef MAILPUNCH_LIB_SEAL_H
#define MAILPUNCH_LIB_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/block.h"

#define MP_SEAL_MAGIC0 'M'
#define MP_SEAL_MAGIC1 'P'
#define MP_SEAL_HDR_USER 46        /* magic..ephemeral key */
#define MP_SEAL_HDR_HOST 78        /* plus the sender host key */
#define MP_SEAL_TAG_LEN 16
#define MP_SIG_LEN 64

/* Result of mp_unseal(); plaintext excludes any signature. */
typedef struct mp_unsealed {
	mp_block_header hdr;
	uint8_t *plain;
	size_t plain_len;
	uint8_t sender_host[MP_KEY_LEN];   /* HOST sender: key from header */
} mp_unsealed;

/* eph_priv: NULL for a fresh random ephemeral key (always, outside
 * test vectors), or 32 fixed bytes to make the output reproducible. */
int mp_seal(uint8_t type, const uint8_t *plain, size_t plain_len,
            const mp_block_key *sender, const uint8_t recipient_pub[MP_KEY_LEN],
            const uint8_t *eph_priv, uint8_t **out, size_t *outlen);
/* Encode m and seal it (block.c); mp_block_seal() is this with NULL. */
int mp_block_seal_ephemeral(const mp_msg *m, const mp_block_key *sender,
                            const uint8_t recipient_pub[MP_KEY_LEN],
                            const uint8_t *eph_priv, uint8_t **out, size_t *outlen);
/* For a USER sender, the signature is checked against the Ed25519 key
 * that the plaintext carries at sign_key_offset (block.c knows where). */
int mp_unseal(const uint8_t *blk, size_t len, const mp_block_key *recipient,
              size_t sign_key_offset, mp_unsealed *out);
void mp_unsealed_free(mp_unsealed *u);

/* SHA-256(pub)[0..8], the recipient hint in the clear header. */
void mp_key_id(const uint8_t pub[MP_KEY_LEN], uint8_t id[8]);

#endif
