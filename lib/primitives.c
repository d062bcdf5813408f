/*
 * primitives.c - EVP wrappers (see primitives.h).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include "mailpunch/error.h"
#include "primitives.h"

int
mp_hkdf_sha256(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len,
               const void *info, size_t info_len, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5];
	int rc = MP_ERR_CRYPTO;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	params[4] = OSSL_PARAM_construct_end();
	if (ctx && EVP_KDF_derive(ctx, out, out_len, params) == 1)
		rc = MP_OK;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

int
mp_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len, uint8_t out[32])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[2];
	size_t outlen = 0;
	int rc = MP_ERR_CRYPTO;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx && EVP_MAC_init(ctx, key, key_len, params) == 1 && EVP_MAC_update(ctx, msg, len) == 1 &&
	    EVP_MAC_final(ctx, out, &outlen, 32) == 1 && outlen == 32)
		rc = MP_OK;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

int
mp_x25519(EVP_PKEY *priv, const uint8_t peer_raw[32], uint8_t out[32])
{
	EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_raw, 32);
	EVP_PKEY_CTX *ctx = peer ? EVP_PKEY_CTX_new(priv, NULL) : NULL;
	size_t len = 32;
	int rc = MP_ERR_DECRYPT;

	/* OpenSSL refuses an all-zero result: the peer sent a low-order point. */
	if (ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
	    EVP_PKEY_derive(ctx, out, &len) == 1 && len == 32)
		rc = MP_OK;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return rc;
}

int
mp_ed25519_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[MP_ED25519_SIG_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = MP_ED25519_SIG_LEN;
	int rc = MP_ERR_CRYPTO;

	if (ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, msg, len) == 1 && siglen == MP_ED25519_SIG_LEN)
		rc = MP_OK;
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
mp_ed25519_verify(const uint8_t pub_raw[32], const uint8_t *msg, size_t len,
                  const uint8_t sig[MP_ED25519_SIG_LEN])
{
	EVP_PKEY *pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub_raw, 32);
	EVP_MD_CTX *ctx = pub ? EVP_MD_CTX_new() : NULL;
	int rc = MP_ERR_SIGNATURE;

	if (ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
	    EVP_DigestVerify(ctx, sig, MP_ED25519_SIG_LEN, msg, len) == 1)
		rc = MP_OK;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pub);
	return rc;
}

int
mp_chacha20_poly1305(int enc, const uint8_t key[MP_AEAD_KEY_LEN],
                     const uint8_t nonce[MP_AEAD_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                     const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[MP_AEAD_TAG_LEN])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl = 0, rc = enc ? MP_ERR_CRYPTO : MP_ERR_DECRYPT;

	if (!ctx || len > INT32_MAX || aad_len > INT32_MAX)
		goto out;
	if (EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, nonce, enc) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, MP_AEAD_TAG_LEN, tag) != 1)
		goto out;
	if (aad_len && EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1)
		goto out;
	if (len && EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, out + outl, &outl) != 1)
		goto out;
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, MP_AEAD_TAG_LEN, tag) != 1)
		goto out;
	rc = MP_OK;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}
