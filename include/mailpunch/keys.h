/*
 * keys.h - host keys, user identities and user IDs.
 *
 * A host (a rendezvous milter) has one X25519 key pair: members seal
 * their requests to its public key, and the host authenticates its
 * replies with it.  A user has an identity: an Ed25519 key pair that
 * signs everything the user sends, plus an X25519 "sealing" key pair so
 * that hosts and other members can seal blocks to that user.  The user
 * ID is a self-certifying fingerprint of both public keys, so whoever
 * holds a public identity can check it against an ID learnt elsewhere.
 *
 * Interface: x_generate/x_load/x_save/x_free per key kind; text forms for
 * the public parts ("mph1.<base64url>" host key, "mpu1.<base64url>" user
 * identity, 26 lower-case base32 characters for a user ID).  Key files
 * are PKCS#8 PEM written through OpenSSL, created with mode 0600, never
 * overwritten unless the caller asks (then replaced atomically).
 * Errors: MP_ERR_IO (errno kept), MP_ERR_EXISTS, MP_ERR_KEYFILE (wrong
 * kind of key, unreadable PEM, loose permissions), MP_ERR_SYNTAX (text
 * form), MP_ERR_CRYPTO, MP_ERR_NOMEM.
 */
#ifndef MAILPUNCH_KEYS_H
#define MAILPUNCH_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define MP_KEY_LEN 32           /* X25519 and Ed25519 public keys */
#define MP_UID_LEN 16           /* binary user ID */
#define MP_UID_TEXT_LEN 26      /* base32 of 16 bytes, no padding */
#define MP_HOSTPUB_TEXT_MAX 64  /* "mph1." + 43 chars + NUL, rounded up */
#define MP_PUBID_TEXT_MAX 96    /* "mpu1." + 86 chars + NUL, rounded up */

typedef struct mp_hostkey mp_hostkey;
typedef struct mp_identity mp_identity;

/* The public half of a user identity, as it travels in blocks. */
typedef struct mp_pubid {
	uint8_t sign_pub[MP_KEY_LEN];  /* Ed25519 */
	uint8_t seal_pub[MP_KEY_LEN];  /* X25519 */
} mp_pubid;

typedef struct mp_uid {
	uint8_t b[MP_UID_LEN];
} mp_uid;

int mp_hostkey_generate(mp_hostkey **out);
int mp_hostkey_load(const char *path, mp_hostkey **out);
int mp_hostkey_save(const mp_hostkey *key, const char *path, int overwrite);
void mp_hostkey_public(const mp_hostkey *key, uint8_t pub[MP_KEY_LEN]);
/* A second handle on the same key (shared, reference-counted). */
int mp_hostkey_dup(const mp_hostkey *key, mp_hostkey **out);
void mp_hostkey_free(mp_hostkey *key);

int mp_identity_generate(mp_identity **out);
int mp_identity_load(const char *path, mp_identity **out);
int mp_identity_save(const mp_identity *id, const char *path, int overwrite);
const mp_pubid *mp_identity_public(const mp_identity *id);
void mp_identity_uid(const mp_identity *id, mp_uid *out);
void mp_identity_free(mp_identity *id);

/* uid = first 16 bytes of SHA-256("mailpunch-v1-uid" || sign_pub || seal_pub) */
void mp_pubid_uid(const mp_pubid *pub, mp_uid *out);
int mp_pubid_matches_uid(const mp_pubid *pub, const mp_uid *uid);

int mp_hostpub_format(const uint8_t pub[MP_KEY_LEN], char *buf, size_t len);
int mp_hostpub_parse(const char *text, uint8_t pub[MP_KEY_LEN]);
int mp_pubid_format(const mp_pubid *pub, char *buf, size_t len);
int mp_pubid_parse(const char *text, mp_pubid *pub);
/* buf must hold MP_UID_TEXT_LEN + 1 bytes. */
void mp_uid_format(const mp_uid *uid, char *buf);
int mp_uid_parse(const char *text, mp_uid *uid);
int mp_uid_equal(const mp_uid *a, const mp_uid *b);

#endif
