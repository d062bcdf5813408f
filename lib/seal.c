/*
 * seal.c - the block envelope: X25519 + HKDF-SHA256 + ChaCha20-Poly1305,
 * with Ed25519 signatures for users and static-key authentication for
 * hosts (see seal.h, and docs/PROTOCOL.md for the byte layout).
 *
 * Only OpenSSL's EVP interfaces are used.  Every intermediate secret
 * (DH outputs, derived key, plaintext copies) is cleansed before free.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keys_priv.h"
#include "primitives.h"
#include "mailpunch/error.h"
#include "seal.h"

static const char KDF_SALT[] = "mailpunch-v1-seal";
static const char SIG_LABEL[] = "mailpunch-v1-sign";

#define AEAD_KEY_LEN 32
#define AEAD_NONCE_LEN 12

void
mp_key_id(const uint8_t pub[MP_KEY_LEN], uint8_t id[8])
{
	uint8_t md[32];
	unsigned int mdlen = 0;

	memset(md, 0, sizeof md);
	EVP_Digest(pub, MP_KEY_LEN, md, &mdlen, EVP_sha256(), NULL);
	memcpy(id, md, 8);
}

/*
 * Derives the AEAD key and nonce.  The ephemeral key is fresh for every
 * block, so a nonce derived alongside the key is never reused with it.
 * info binds the whole clear header and the recipient's full key.
 */
static int
derive_keys(const uint8_t *dh1, const uint8_t *dh2, const uint8_t *hdr, size_t hdr_len,
            const uint8_t recipient_pub[MP_KEY_LEN], uint8_t okm[AEAD_KEY_LEN + AEAD_NONCE_LEN])
{
	uint8_t ikm[2 * MP_KEY_LEN], info[MP_SEAL_HDR_HOST + MP_KEY_LEN];
	size_t ikm_len = MP_KEY_LEN;
	int rc;

	memcpy(ikm, dh1, MP_KEY_LEN);
	if (dh2) {
		memcpy(ikm + MP_KEY_LEN, dh2, MP_KEY_LEN);
		ikm_len += MP_KEY_LEN;
	}
	memcpy(info, hdr, hdr_len);
	memcpy(info + hdr_len, recipient_pub, MP_KEY_LEN);
	rc = mp_hkdf_sha256(KDF_SALT, sizeof KDF_SALT - 1, ikm, ikm_len, info, hdr_len + MP_KEY_LEN,
	                    okm, AEAD_KEY_LEN + AEAD_NONCE_LEN);
	OPENSSL_cleanse(ikm, sizeof ikm);
	return rc;
}

/* label || header || recipient key || plaintext: what a user signs. */
static uint8_t *
sig_message(const uint8_t *hdr, size_t hdr_len, const uint8_t recipient_pub[MP_KEY_LEN],
            const uint8_t *plain, size_t plain_len, size_t *len)
{
	size_t lablen = sizeof SIG_LABEL - 1;
	uint8_t *m;

	*len = lablen + hdr_len + MP_KEY_LEN + plain_len;
	m = malloc(*len);
	if (!m)
		return NULL;
	memcpy(m, SIG_LABEL, lablen);
	memcpy(m + lablen, hdr, hdr_len);
	memcpy(m + lablen + hdr_len, recipient_pub, MP_KEY_LEN);
	memcpy(m + lablen + hdr_len + MP_KEY_LEN, plain, plain_len);
	return m;
}

static int
sender_kind_of(const mp_block_key *k)
{
	if (k->host && !k->user)
		return MP_SENDER_HOST;
	if (k->user && !k->host)
		return MP_SENDER_USER;
	return 0;
}

static int
seal_with(uint8_t type, const uint8_t *plain, size_t plain_len, const mp_block_key *sender,
          const uint8_t recipient_pub[MP_KEY_LEN], EVP_PKEY *eph, uint8_t **out, size_t *outlen)
{
	int kind = sender_kind_of(sender);
	size_t hdr_len = kind == MP_SENDER_HOST ? MP_SEAL_HDR_HOST : MP_SEAL_HDR_USER;
	size_t body_len = plain_len + (kind == MP_SENDER_USER ? MP_SIG_LEN : 0);
	uint8_t okm[AEAD_KEY_LEN + AEAD_NONCE_LEN], dh1[MP_KEY_LEN], dh2[MP_KEY_LEN];
	uint8_t *blk = NULL, *body = NULL, *sigmsg = NULL;
	size_t total, sigmsg_len = 0;
	int rc;

	if (!kind)
		return MP_ERR_INVAL;
	total = hdr_len + body_len + MP_SEAL_TAG_LEN;
	if (plain_len > MP_BLOCK_MAX || total > MP_BLOCK_MAX)
		return MP_ERR_TOOBIG;
	blk = malloc(total);
	body = malloc(body_len);
	if (!blk || !body) {
		rc = MP_ERR_NOMEM;
		goto out;
	}
	blk[0] = MP_SEAL_MAGIC0;
	blk[1] = MP_SEAL_MAGIC1;
	blk[2] = MP_PROTO_VERSION;
	blk[3] = type;
	blk[4] = (uint8_t)kind;
	blk[5] = 0;
	mp_key_id(recipient_pub, blk + 6);
	if ((rc = mp_pkey_raw_public(eph, blk + 14)) != MP_OK)
		goto out;
	if (kind == MP_SENDER_HOST)
		mp_hostkey_public(sender->host, blk + 46);

	if ((rc = mp_x25519(eph, recipient_pub, dh1)) != MP_OK ||
	    (kind == MP_SENDER_HOST && (rc = mp_x25519(mp_hostkey_pkey(sender->host), recipient_pub, dh2)) != MP_OK)) {
		rc = MP_ERR_INVAL;      /* the recipient key is a low-order point */
		goto out;
	}
	if ((rc = derive_keys(dh1, kind == MP_SENDER_HOST ? dh2 : NULL, blk, hdr_len, recipient_pub, okm)))
		goto out;

	memcpy(body, plain, plain_len);
	if (kind == MP_SENDER_USER) {
		sigmsg = sig_message(blk, hdr_len, recipient_pub, plain, plain_len, &sigmsg_len);
		if (!sigmsg) {
			rc = MP_ERR_NOMEM;
			goto out;
		}
		if ((rc = mp_ed25519_sign(mp_identity_sign_pkey(sender->user), sigmsg, sigmsg_len, body + plain_len)))
			goto out;
	}
	rc = mp_chacha20_poly1305(1, okm, okm + AEAD_KEY_LEN, blk, hdr_len, body, body_len, blk + hdr_len,
	                          blk + hdr_len + body_len);
out:
	OPENSSL_cleanse(okm, sizeof okm);
	OPENSSL_cleanse(dh1, sizeof dh1);
	OPENSSL_cleanse(dh2, sizeof dh2);
	if (body)
		OPENSSL_clear_free(body, body_len);
	if (sigmsg)
		OPENSSL_clear_free(sigmsg, sigmsg_len);
	if (rc != MP_OK) {
		free(blk);
		return rc;
	}
	*out = blk;
	*outlen = total;
	return MP_OK;
}

int
mp_seal(uint8_t type, const uint8_t *plain, size_t plain_len, const mp_block_key *sender,
        const uint8_t recipient_pub[MP_KEY_LEN], const uint8_t *eph_priv,
        uint8_t **out, size_t *outlen)
{
	uint8_t fresh[MP_KEY_LEN];
	EVP_PKEY *eph;
	int rc;

	/* An X25519 private key is any 32 bytes (RFC 7748: the library
	 * clamps them).  Importing random bytes costs about half of
	 * OpenSSL 3.0's generic keygen path, and a host seals a reply for
	 * every request. */
	if (!eph_priv) {
		if (RAND_priv_bytes(fresh, sizeof fresh) != 1)
			return MP_ERR_CRYPTO;
		eph_priv = fresh;
	}
	eph = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, eph_priv, MP_KEY_LEN);
	OPENSSL_cleanse(fresh, sizeof fresh);
	if (!eph)
		return MP_ERR_CRYPTO;
	rc = seal_with(type, plain, plain_len, sender, recipient_pub, eph, out, outlen);
	EVP_PKEY_free(eph);
	return rc;
}

int
mp_block_peek(const uint8_t *blk, size_t len, mp_block_header *h)
{
	size_t hdr_len;

	if (len < 2 || blk[0] != MP_SEAL_MAGIC0 || blk[1] != MP_SEAL_MAGIC1)
		return MP_ERR_MAGIC;
	if (len < 6)
		return MP_ERR_TRUNCATED;
	/* A different version may lay out everything after byte 2 anew. */
	if (blk[2] != MP_PROTO_VERSION)
		return MP_ERR_VERSION;
	if (blk[3] < MP_MSG_REQUEST || blk[3] > MP_MSG_RELAYED)
		return MP_ERR_TYPE;
	if (blk[4] == MP_SENDER_USER)
		hdr_len = MP_SEAL_HDR_USER;
	else if (blk[4] == MP_SENDER_HOST)
		hdr_len = MP_SEAL_HDR_HOST;
	else
		return MP_ERR_MALFORMED;
	if (blk[5] != 0)
		return MP_ERR_MALFORMED;
	if (len > MP_BLOCK_MAX)
		return MP_ERR_TOOBIG;
	if (len < hdr_len + MP_SEAL_TAG_LEN + (blk[4] == MP_SENDER_USER ? MP_SIG_LEN : 0))
		return MP_ERR_TRUNCATED;
	h->version = blk[2];
	h->type = blk[3];
	h->sender_kind = blk[4];
	memcpy(h->recipient_id, blk + 6, 8);
	return MP_OK;
}

static EVP_PKEY *
recipient_pkey(const mp_block_key *k)
{
	if (k->host && !k->user)
		return mp_hostkey_pkey(k->host);
	if (k->user && !k->host)
		return mp_identity_seal_pkey(k->user);
	return NULL;
}

int
mp_unseal(const uint8_t *blk, size_t len, const mp_block_key *recipient,
          size_t sign_key_offset, mp_unsealed *out)
{
	EVP_PKEY *me = recipient_pkey(recipient);
	uint8_t my_pub[MP_KEY_LEN], my_id[8], dh1[MP_KEY_LEN], dh2[MP_KEY_LEN];
	uint8_t okm[AEAD_KEY_LEN + AEAD_NONCE_LEN], tag[MP_SEAL_TAG_LEN];
	uint8_t *body = NULL, *sigmsg = NULL;
	size_t hdr_len, body_len, plain_len, sigmsg_len;
	int host, rc;

	memset(out, 0, sizeof *out);
	if (!me)
		return MP_ERR_INVAL;
	if ((rc = mp_block_peek(blk, len, &out->hdr)) != MP_OK)
		return rc;
	host = out->hdr.sender_kind == MP_SENDER_HOST;
	hdr_len = host ? MP_SEAL_HDR_HOST : MP_SEAL_HDR_USER;
	if ((rc = mp_pkey_raw_public(me, my_pub)) != MP_OK)
		return rc;
	mp_key_id(my_pub, my_id);
	if (CRYPTO_memcmp(my_id, out->hdr.recipient_id, 8) != 0)
		return MP_ERR_WRONGKEY;

	if ((rc = mp_x25519(me, blk + 14, dh1)) != MP_OK || (host && (rc = mp_x25519(me, blk + 46, dh2)) != MP_OK))
		goto out;
	if ((rc = derive_keys(dh1, host ? dh2 : NULL, blk, hdr_len, my_pub, okm)) != MP_OK)
		goto out;
	body_len = len - hdr_len - MP_SEAL_TAG_LEN;
	body = malloc(body_len ? body_len : 1);
	if (!body) {
		rc = MP_ERR_NOMEM;
		goto out;
	}
	memcpy(tag, blk + len - MP_SEAL_TAG_LEN, MP_SEAL_TAG_LEN);
	if ((rc = mp_chacha20_poly1305(0, okm, okm + AEAD_KEY_LEN, blk, hdr_len, blk + hdr_len, body_len,
	                               body, tag)) != MP_OK)
		goto out;

	plain_len = body_len;
	if (!host) {
		plain_len -= MP_SIG_LEN;
		/* The signer's key sits inside the authenticated plaintext. */
		if (sign_key_offset + MP_KEY_LEN > plain_len) {
			rc = MP_ERR_MALFORMED;
			goto out;
		}
		sigmsg = sig_message(blk, hdr_len, my_pub, body, plain_len, &sigmsg_len);
		if (!sigmsg) {
			rc = MP_ERR_NOMEM;
			goto out;
		}
		if ((rc = mp_ed25519_verify(body + sign_key_offset, sigmsg, sigmsg_len, body + plain_len)) != MP_OK)
			goto out;
	} else {
		memcpy(out->sender_host, blk + 46, MP_KEY_LEN);
	}
	out->plain = body;
	out->plain_len = plain_len;
	body = NULL;
out:
	OPENSSL_cleanse(okm, sizeof okm);
	OPENSSL_cleanse(dh1, sizeof dh1);
	OPENSSL_cleanse(dh2, sizeof dh2);
	if (body)
		OPENSSL_clear_free(body, body_len);
	if (sigmsg)
		OPENSSL_clear_free(sigmsg, sigmsg_len);
	return rc;
}

void
mp_unsealed_free(mp_unsealed *u)
{
	/* plain_len may be shorter than the allocation (signature cut off);
	 * cleanse what we know of, the rest is a public signature. */
	if (u->plain)
		OPENSSL_clear_free(u->plain, u->plain_len);
	u->plain = NULL;
}
