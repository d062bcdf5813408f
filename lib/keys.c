/*
 * keys.c - host keys, user identities, user IDs (see keys.h).
 *
 * All key material lives in OpenSSL EVP_PKEY objects; raw private bytes
 * are only handled when a test vector builds a key from fixed bytes, and
 * are wiped afterwards.  An identity file holds two PKCS#8 PEM blocks:
 * the Ed25519 signing key first, then the X25519 sealing key.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base64.h"
#include "keys_priv.h"
#include "mailpunch/error.h"

struct mp_hostkey {
	EVP_PKEY *pkey;
	uint8_t pub[MP_KEY_LEN];
};

struct mp_identity {
	EVP_PKEY *sign;
	EVP_PKEY *seal;
	mp_pubid pub;
};

static const char UID_LABEL[] = "mailpunch-v1-uid";
static const char B32[] = "abcdefghijklmnopqrstuvwxyz234567";

int
mp_pkey_raw_public(EVP_PKEY *pkey, uint8_t pub[MP_KEY_LEN])
{
	size_t len = MP_KEY_LEN;

	if (EVP_PKEY_get_raw_public_key(pkey, pub, &len) != 1 || len != MP_KEY_LEN)
		return MP_ERR_CRYPTO;
	return MP_OK;
}

static int
pkey_generate(const char *alg, EVP_PKEY **out)
{
	*out = EVP_PKEY_Q_keygen(NULL, NULL, alg);
	return *out ? MP_OK : MP_ERR_CRYPTO;
}

/* ---------------------------------------------------------------- files */

/*
 * Writes one or two keys as PEM.  Without overwrite, O_EXCL makes the
 * "never clobber a key" promise race-free; with overwrite, a temporary
 * file renamed over the old one means a crash never leaves half a key.
 */
static int
pem_save(const char *path, EVP_PKEY *a, EVP_PKEY *b, int overwrite)
{
	char tmp[4096];
	const char *target = path;
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
	int fd, rc = MP_OK;
	FILE *fp;

	if (overwrite) {
		if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= sizeof tmp)
			return MP_ERR_INVAL;
		target = tmp;
	}
	fd = open(target, flags, 0600);
	if (fd < 0)
		return errno == EEXIST ? MP_ERR_EXISTS : MP_ERR_IO;
	fp = fdopen(fd, "w");
	if (!fp) {
		close(fd);
		unlink(target);
		return MP_ERR_IO;
	}
	if (PEM_write_PrivateKey(fp, a, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (b && PEM_write_PrivateKey(fp, b, NULL, NULL, 0, NULL, NULL) != 1))
		rc = MP_ERR_CRYPTO;
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
		rc = rc ? rc : MP_ERR_IO;
	if (fclose(fp) != 0)
		rc = rc ? rc : MP_ERR_IO;
	if (rc == MP_OK && overwrite && rename(tmp, path) != 0)
		rc = MP_ERR_IO;
	if (rc != MP_OK)
		unlink(target);
	return rc;
}

/* Reads up to two private keys; refuses files others may read or write. */
static int
pem_load(const char *path, EVP_PKEY **a, EVP_PKEY **b)
{
	struct stat st;
	FILE *fp;
	int fd;

	*a = NULL;
	if (b)
		*b = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return MP_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 007)) {
		close(fd);
		return MP_ERR_KEYFILE;
	}
	fp = fdopen(fd, "r");
	if (!fp) {
		close(fd);
		return MP_ERR_IO;
	}
	*a = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	if (*a && b)
		*b = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (!*a || (b && !*b)) {
		EVP_PKEY_free(*a);
		*a = NULL;
		return MP_ERR_KEYFILE;
	}
	return MP_OK;
}

/* ---------------------------------------------------------------- host keys */

static int
hostkey_wrap(EVP_PKEY *pkey, mp_hostkey **out)
{
	mp_hostkey *k = calloc(1, sizeof *k);

	if (!k) {
		EVP_PKEY_free(pkey);
		return MP_ERR_NOMEM;
	}
	k->pkey = pkey;
	if (mp_pkey_raw_public(pkey, k->pub) != MP_OK) {
		mp_hostkey_free(k);
		return MP_ERR_CRYPTO;
	}
	*out = k;
	return MP_OK;
}

int
mp_hostkey_generate(mp_hostkey **out)
{
	EVP_PKEY *pkey;
	int rc = pkey_generate("X25519", &pkey);

	return rc ? rc : hostkey_wrap(pkey, out);
}

int
mp_hostkey_from_raw(const uint8_t priv[MP_KEY_LEN], mp_hostkey **out)
{
	EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, MP_KEY_LEN);

	return pkey ? hostkey_wrap(pkey, out) : MP_ERR_CRYPTO;
}

int
mp_hostkey_load(const char *path, mp_hostkey **out)
{
	EVP_PKEY *pkey;
	int rc = pem_load(path, &pkey, NULL);

	if (rc)
		return rc;
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_X25519) {
		EVP_PKEY_free(pkey);
		return MP_ERR_KEYFILE;
	}
	return hostkey_wrap(pkey, out);
}

int
mp_hostkey_save(const mp_hostkey *key, const char *path, int overwrite)
{
	return pem_save(path, key->pkey, NULL, overwrite);
}

void
mp_hostkey_public(const mp_hostkey *key, uint8_t pub[MP_KEY_LEN])
{
	memcpy(pub, key->pub, MP_KEY_LEN);
}

int
mp_hostkey_dup(const mp_hostkey *key, mp_hostkey **out)
{
	if (EVP_PKEY_up_ref(key->pkey) != 1)
		return MP_ERR_CRYPTO;
	return hostkey_wrap(key->pkey, out);
}

EVP_PKEY *
mp_hostkey_pkey(const mp_hostkey *key)
{
	return key->pkey;
}

void
mp_hostkey_free(mp_hostkey *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

/* ---------------------------------------------------------------- identities */

static int
identity_wrap(EVP_PKEY *sign, EVP_PKEY *seal, mp_identity **out)
{
	mp_identity *id = calloc(1, sizeof *id);

	if (!id) {
		EVP_PKEY_free(sign);
		EVP_PKEY_free(seal);
		return MP_ERR_NOMEM;
	}
	id->sign = sign;
	id->seal = seal;
	if (mp_pkey_raw_public(sign, id->pub.sign_pub) != MP_OK ||
	    mp_pkey_raw_public(seal, id->pub.seal_pub) != MP_OK) {
		mp_identity_free(id);
		return MP_ERR_CRYPTO;
	}
	*out = id;
	return MP_OK;
}

int
mp_identity_generate(mp_identity **out)
{
	EVP_PKEY *sign, *seal;

	if (pkey_generate("ED25519", &sign) != MP_OK)
		return MP_ERR_CRYPTO;
	if (pkey_generate("X25519", &seal) != MP_OK) {
		EVP_PKEY_free(sign);
		return MP_ERR_CRYPTO;
	}
	return identity_wrap(sign, seal, out);
}

int
mp_identity_from_raw(const uint8_t sign_priv[MP_KEY_LEN],
                     const uint8_t seal_priv[MP_KEY_LEN], mp_identity **out)
{
	EVP_PKEY *sign = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sign_priv, MP_KEY_LEN);
	EVP_PKEY *seal = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, seal_priv, MP_KEY_LEN);

	if (!sign || !seal) {
		EVP_PKEY_free(sign);
		EVP_PKEY_free(seal);
		return MP_ERR_CRYPTO;
	}
	return identity_wrap(sign, seal, out);
}

int
mp_identity_load(const char *path, mp_identity **out)
{
	EVP_PKEY *sign, *seal;
	int rc = pem_load(path, &sign, &seal);

	if (rc)
		return rc;
	if (EVP_PKEY_get_id(sign) != EVP_PKEY_ED25519 || EVP_PKEY_get_id(seal) != EVP_PKEY_X25519) {
		EVP_PKEY_free(sign);
		EVP_PKEY_free(seal);
		return MP_ERR_KEYFILE;
	}
	return identity_wrap(sign, seal, out);
}

int
mp_identity_save(const mp_identity *id, const char *path, int overwrite)
{
	return pem_save(path, id->sign, id->seal, overwrite);
}

const mp_pubid *
mp_identity_public(const mp_identity *id)
{
	return &id->pub;
}

void
mp_identity_uid(const mp_identity *id, mp_uid *out)
{
	mp_pubid_uid(&id->pub, out);
}

EVP_PKEY *
mp_identity_sign_pkey(const mp_identity *id)
{
	return id->sign;
}

EVP_PKEY *
mp_identity_seal_pkey(const mp_identity *id)
{
	return id->seal;
}

void
mp_identity_free(mp_identity *id)
{
	if (!id)
		return;
	EVP_PKEY_free(id->sign);
	EVP_PKEY_free(id->seal);
	free(id);
}

/* ---------------------------------------------------------------- user IDs */

void
mp_pubid_uid(const mp_pubid *pub, mp_uid *out)
{
	uint8_t md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	/* SHA-256 cannot fail on valid input short of memory exhaustion; a
	 * zero ID then matches nothing a real key hashes to. */
	memset(md, 0, sizeof md);
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, UID_LABEL, sizeof UID_LABEL - 1) == 1 &&
	    EVP_DigestUpdate(ctx, pub->sign_pub, MP_KEY_LEN) == 1 &&
	    EVP_DigestUpdate(ctx, pub->seal_pub, MP_KEY_LEN) == 1)
		EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	memcpy(out->b, md, MP_UID_LEN);
}

int
mp_pubid_matches_uid(const mp_pubid *pub, const mp_uid *uid)
{
	mp_uid computed;

	mp_pubid_uid(pub, &computed);
	return mp_uid_equal(&computed, uid);
}

int
mp_uid_equal(const mp_uid *a, const mp_uid *b)
{
	return CRYPTO_memcmp(a->b, b->b, MP_UID_LEN) == 0;
}

void
mp_uid_format(const mp_uid *uid, char *buf)
{
	unsigned acc = 0, bits = 0;
	size_t i, o = 0;

	for (i = 0; i < MP_UID_LEN; i++) {
		acc = (acc << 8) | uid->b[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			buf[o++] = B32[(acc >> bits) & 31];
		}
	}
	if (bits > 0)
		buf[o++] = B32[(acc << (5 - bits)) & 31];
	buf[o] = '\0';
}

int
mp_uid_parse(const char *text, mp_uid *uid)
{
	unsigned acc = 0, bits = 0;
	size_t i, o = 0;

	if (strlen(text) != MP_UID_TEXT_LEN)
		return MP_ERR_SYNTAX;
	for (i = 0; i < MP_UID_TEXT_LEN; i++) {
		int c = text[i] >= 'A' && text[i] <= 'Z' ? text[i] - 'A' + 'a' : text[i];
		const char *p = c ? strchr(B32, c) : NULL;

		if (!p)
			return MP_ERR_SYNTAX;
		acc = (acc << 5) | (unsigned)(p - B32);
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			uid->b[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* 26 chars carry 130 bits: the last 2 must be zero for a canonical ID. */
	return (acc & ((1u << bits) - 1)) == 0 ? MP_OK : MP_ERR_SYNTAX;
}

/* ---------------------------------------------------------------- text forms */

static int
pub_format(const char *prefix, const uint8_t *raw, size_t rawlen, char *buf, size_t len)
{
	char *b64;
	size_t b64len;
	int rc = mp_base64_encode(raw, rawlen, 1, 0, &b64, &b64len);

	if (rc)
		return rc;
	if (strlen(prefix) + b64len + 1 > len)
		rc = MP_ERR_TOOBIG;
	else
		snprintf(buf, len, "%s%s", prefix, b64);
	free(b64);
	return rc;
}

static int
pub_parse(const char *prefix, const char *text, uint8_t *raw, size_t rawlen)
{
	size_t plen = strlen(prefix), outlen;
	uint8_t *dec;
	int rc;

	if (strncmp(text, prefix, plen) != 0)
		return MP_ERR_SYNTAX;
	text += plen;
	/* The lenient mail decoder skips blanks; a key text must have none. */
	if (text[strcspn(text, " \t\r\n")] != '\0')
		return MP_ERR_SYNTAX;
	rc = mp_base64_decode(text, strlen(text), 1, rawlen, &dec, &outlen);
	if (rc)
		return rc == MP_ERR_NOMEM ? rc : MP_ERR_SYNTAX;
	if (outlen != rawlen)
		rc = MP_ERR_SYNTAX;
	else
		memcpy(raw, dec, rawlen);
	free(dec);
	return rc;
}

int
mp_hostpub_format(const uint8_t pub[MP_KEY_LEN], char *buf, size_t len)
{
	return pub_format("mph1.", pub, MP_KEY_LEN, buf, len);
}

int
mp_hostpub_parse(const char *text, uint8_t pub[MP_KEY_LEN])
{
	return pub_parse("mph1.", text, pub, MP_KEY_LEN);
}

int
mp_pubid_format(const mp_pubid *pub, char *buf, size_t len)
{
	uint8_t raw[2 * MP_KEY_LEN];

	memcpy(raw, pub->sign_pub, MP_KEY_LEN);
	memcpy(raw + MP_KEY_LEN, pub->seal_pub, MP_KEY_LEN);
	return pub_format("mpu1.", raw, sizeof raw, buf, len);
}

int
mp_pubid_parse(const char *text, mp_pubid *pub)
{
	uint8_t raw[2 * MP_KEY_LEN];
	int rc = pub_parse("mpu1.", text, raw, sizeof raw);

	if (rc)
		return rc;
	memcpy(pub->sign_pub, raw, MP_KEY_LEN);
	memcpy(pub->seal_pub, raw + MP_KEY_LEN, MP_KEY_LEN);
	return MP_OK;
}
