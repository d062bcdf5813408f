/*
 * primitives.h - the few OpenSSL EVP operations mailpunch's protocols
 * are built from, wrapped once so that seal.c and punch.c do not each
 * carry their own copy.
 *
 * Interface: HKDF-SHA256, HMAC-SHA256, X25519 with a raw peer key,
 * Ed25519 sign/verify over a contiguous message, ChaCha20-Poly1305
 * seal/open with a detached tag.  All lengths are explicit.
 * Errors: MP_ERR_CRYPTO for an OpenSSL failure; mp_x25519 returns
 * MP_ERR_DECRYPT for a peer key that gives an all-zero secret (a
 * low-order point); verify/open return MP_ERR_SIGNATURE/MP_ERR_DECRYPT.
 */
#ifndef MAILPUNCH_LIB_PRIMITIVES_H
#define MAILPUNCH_LIB_PRIMITIVES_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define MP_AEAD_KEY_LEN 32
#define MP_AEAD_NONCE_LEN 12
#define MP_AEAD_TAG_LEN 16
#define MP_ED25519_SIG_LEN 64

int mp_hkdf_sha256(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len,
                   const void *info, size_t info_len, uint8_t *out, size_t out_len);
int mp_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                   uint8_t out[32]);
int mp_x25519(EVP_PKEY *priv, const uint8_t peer_raw[32], uint8_t out[32]);
int mp_ed25519_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[MP_ED25519_SIG_LEN]);
int mp_ed25519_verify(const uint8_t pub_raw[32], const uint8_t *msg, size_t len,
                      const uint8_t sig[MP_ED25519_SIG_LEN]);
/* enc=1 seals in -> out and writes tag; enc=0 opens, checking tag. */
int mp_chacha20_poly1305(int enc, const uint8_t key[MP_AEAD_KEY_LEN],
                         const uint8_t nonce[MP_AEAD_NONCE_LEN], const uint8_t *aad,
                         size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
                         uint8_t tag[MP_AEAD_TAG_LEN]);

#endif
