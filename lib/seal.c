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

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "keys_priv.h"
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

/* X25519 between our private key and a raw public key.  OpenSSL refuses
 * low-order points (all-zero output), which we report as a bad block. */
static int
dh(EVP_PKEY *priv, const uint8_t peer_raw[MP_KEY_LEN], uint8_t out[MP_KEY_LEN])
{
	EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_raw, MP_KEY_LEN);
	EVP_PKEY_CTX *ctx = peer ? EVP_PKEY_CTX_new(priv, NULL) : NULL;
	size_t len = MP_KEY_LEN;
	int rc = MP_ERR_DECRYPT;

	if (ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
	    EVP_PKEY_derive(ctx, out, &len) == 1 && len == MP_KEY_LEN)
		rc = MP_OK;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return rc;
}

static int
hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len,
     uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5];
	int rc = MP_ERR_CRYPTO;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)KDF_SALT,
	                                              sizeof KDF_SALT - 1);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	params[4] = OSSL_PARAM_construct_end();
	if (ctx && EVP_KDF_derive(ctx, out, out_len, params) == 1)
		rc = MP_OK;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
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
	rc = hkdf(ikm, ikm_len, info, hdr_len + MP_KEY_LEN, okm, AEAD_KEY_LEN + AEAD_NONCE_LEN);
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
sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[MP_SIG_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = MP_SIG_LEN;
	int rc = MP_ERR_CRYPTO;

	if (ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, msg, len) == 1 && siglen == MP_SIG_LEN)
		rc = MP_OK;
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int
verify(const uint8_t pub_raw[MP_KEY_LEN], const uint8_t *msg, size_t len,
       const uint8_t sig[MP_SIG_LEN])
{
	EVP_PKEY *pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub_raw, MP_KEY_LEN);
	EVP_MD_CTX *ctx = pub ? EVP_MD_CTX_new() : NULL;
	int rc = MP_ERR_SIGNATURE;

	if (ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
	    EVP_DigestVerify(ctx, sig, MP_SIG_LEN, msg, len) == 1)
		rc = MP_OK;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pub);
	return rc;
}

/* encrypt (enc=1) or decrypt in place-free fashion: out gets len bytes. */
static int
aead(int enc, const uint8_t okm[AEAD_KEY_LEN + AEAD_NONCE_LEN], const uint8_t *aad,
     size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[MP_SEAL_TAG_LEN])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl = 0, rc = enc ? MP_ERR_CRYPTO : MP_ERR_DECRYPT;

	if (!ctx || len > INT32_MAX)
		goto out;
	if (EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, okm, okm + AEAD_KEY_LEN, enc) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, MP_SEAL_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1)
		goto out;
	if (len && EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, out + outl, &outl) != 1)
		goto out;
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, MP_SEAL_TAG_LEN, tag) != 1)
		goto out;
	rc = MP_OK;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
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

	if ((rc = dh(eph, recipient_pub, dh1)) != MP_OK ||
	    (kind == MP_SENDER_HOST && (rc = dh(mp_hostkey_pkey(sender->host), recipient_pub, dh2)) != MP_OK)) {
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
		if ((rc = sign(mp_identity_sign_pkey(sender->user), sigmsg, sigmsg_len, body + plain_len)))
			goto out;
	}
	rc = aead(1, okm, blk, hdr_len, body, body_len, blk + hdr_len, blk + hdr_len + body_len);
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
	EVP_PKEY *eph = eph_priv
		? EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, eph_priv, MP_KEY_LEN)
		: EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	int rc;

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
	if (blk[3] < MP_MSG_REQUEST || blk[3] > MP_MSG_TABLE_SYNC)
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

	if ((rc = dh(me, blk + 14, dh1)) != MP_OK || (host && (rc = dh(me, blk + 46, dh2)) != MP_OK))
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
	if ((rc = aead(0, okm, blk, hdr_len, blk + hdr_len, body_len, body, tag)) != MP_OK)
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
		if ((rc = verify(body + sign_key_offset, sigmsg, sigmsg_len, body + plain_len)) != MP_OK)
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
