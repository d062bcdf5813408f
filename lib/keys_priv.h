/*
 * keys_priv.h - what the sealing code needs from keys.c and no one else.
 *
 * The OpenSSL key objects stay owned by their mp_hostkey / mp_identity;
 * callers borrow them for one operation.  Constructors from raw bytes
 * exist for test vectors (fixed keys give reproducible blocks).
 */
#ifndef MAILPUNCH_LIB_KEYS_PRIV_H
#define MAILPUNCH_LIB_KEYS_PRIV_H

#include <openssl/evp.h>

#include "mailpunch/keys.h"

EVP_PKEY *mp_hostkey_pkey(const mp_hostkey *key);
EVP_PKEY *mp_identity_sign_pkey(const mp_identity *id);
EVP_PKEY *mp_identity_seal_pkey(const mp_identity *id);

int mp_hostkey_from_raw(const uint8_t priv[MP_KEY_LEN], mp_hostkey **out);
int mp_identity_from_raw(const uint8_t sign_priv[MP_KEY_LEN],
                         const uint8_t seal_priv[MP_KEY_LEN], mp_identity **out);

/* Raw public key of an X25519/Ed25519 EVP_PKEY. */
int mp_pkey_raw_public(EVP_PKEY *pkey, uint8_t pub[MP_KEY_LEN]);

#endif
