/* test_keys.c - key files, public text forms and user IDs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys_priv.h"
#include "mailpunch/error.h"
#include "mailpunch/keys.h"
#include "testutil.h"

static char dir[64];

static void
setup(void)
{
	strcpy(dir, "/tmp/mp-keys-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

START_TEST(hostkey_save_load)
{
	mp_hostkey *k, *k2;
	uint8_t p1[MP_KEY_LEN], p2[MP_KEY_LEN];
	char path[128];
	struct stat st;

	path_in(path, sizeof path, "host.key");
	ck_assert_int_eq(mp_hostkey_generate(&k), MP_OK);
	ck_assert_int_eq(mp_hostkey_save(k, path, 0), MP_OK);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(mp_hostkey_load(path, &k2), MP_OK);
	mp_hostkey_public(k, p1);
	mp_hostkey_public(k2, p2);
	ck_assert_mem_eq(p1, p2, MP_KEY_LEN);
	/* never overwritten unless asked */
	ck_assert_int_eq(mp_hostkey_save(k2, path, 0), MP_ERR_EXISTS);
	mp_hostkey_free(k2);
	ck_assert_int_eq(mp_hostkey_generate(&k2), MP_OK);
	ck_assert_int_eq(mp_hostkey_save(k2, path, 1), MP_OK);
	mp_hostkey_free(k);
	ck_assert_int_eq(mp_hostkey_load(path, &k), MP_OK);
	mp_hostkey_public(k, p1);
	mp_hostkey_public(k2, p2);
	ck_assert_mem_eq(p1, p2, MP_KEY_LEN);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	mp_hostkey_free(k);
	mp_hostkey_free(k2);
}
END_TEST

START_TEST(identity_save_load)
{
	mp_identity *id, *id2;
	mp_uid u1, u2;
	char path[128];

	path_in(path, sizeof path, "user.key");
	ck_assert_int_eq(mp_identity_generate(&id), MP_OK);
	ck_assert_int_eq(mp_identity_save(id, path, 0), MP_OK);
	ck_assert_int_eq(mp_identity_load(path, &id2), MP_OK);
	ck_assert_mem_eq(mp_identity_public(id), mp_identity_public(id2), sizeof(mp_pubid));
	mp_identity_uid(id, &u1);
	mp_identity_uid(id2, &u2);
	ck_assert(mp_uid_equal(&u1, &u2));
	ck_assert_int_eq(mp_identity_save(id, path, 0), MP_ERR_EXISTS);
	mp_identity_free(id);
	mp_identity_free(id2);
}
END_TEST

START_TEST(wrong_kind_and_bad_files)
{
	mp_hostkey *k;
	mp_identity *id;
	char hpath[128], upath[128], junk[128];
	FILE *fp;

	path_in(hpath, sizeof hpath, "h.key");
	path_in(upath, sizeof upath, "u.key");
	path_in(junk, sizeof junk, "junk.key");
	ck_assert_int_eq(mp_hostkey_generate(&k), MP_OK);
	ck_assert_int_eq(mp_hostkey_save(k, hpath, 0), MP_OK);
	mp_hostkey_free(k);
	ck_assert_int_eq(mp_identity_generate(&id), MP_OK);
	ck_assert_int_eq(mp_identity_save(id, upath, 0), MP_OK);
	mp_identity_free(id);

	/* a host key is not an identity (only one key, and X25519 first) */
	ck_assert_int_eq(mp_identity_load(hpath, &id), MP_ERR_KEYFILE);
	/* an identity's first key is Ed25519, not a host key */
	ck_assert_int_eq(mp_hostkey_load(upath, &k), MP_ERR_KEYFILE);

	fp = fopen(junk, "w");
	fputs("-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n", fp);
	fclose(fp);
	chmod(junk, 0600);
	ck_assert_int_eq(mp_hostkey_load(junk, &k), MP_ERR_KEYFILE);
	/* readable by others: refused */
	chmod(hpath, 0644);
	ck_assert_int_eq(mp_hostkey_load(hpath, &k), MP_ERR_KEYFILE);
	ck_assert_int_eq(mp_hostkey_load("/nonexistent/x.key", &k), MP_ERR_IO);
}
END_TEST

START_TEST(uid_text_round_trip)
{
	mp_identity *id;
	mp_uid uid, back;
	char text[MP_UID_TEXT_LEN + 1], upper[MP_UID_TEXT_LEN + 1];
	size_t i;

	ck_assert_int_eq(mp_identity_generate(&id), MP_OK);
	mp_identity_uid(id, &uid);
	mp_uid_format(&uid, text);
	ck_assert_uint_eq(strlen(text), MP_UID_TEXT_LEN);
	ck_assert_int_eq(mp_uid_parse(text, &back), MP_OK);
	ck_assert(mp_uid_equal(&uid, &back));
	for (i = 0; i <= MP_UID_TEXT_LEN; i++)
		upper[i] = (char)(text[i] >= 'a' && text[i] <= 'z' ? text[i] - 32 : text[i]);
	ck_assert_int_eq(mp_uid_parse(upper, &back), MP_OK);
	ck_assert(mp_uid_equal(&uid, &back));
	ck_assert(mp_pubid_matches_uid(mp_identity_public(id), &uid));
	back.b[5] ^= 1;
	ck_assert(!mp_pubid_matches_uid(mp_identity_public(id), &back));

	ck_assert_int_eq(mp_uid_parse("short", &back), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_uid_parse("aaaaaaaaaaaaaaaaaaaaaaaaa1", &back), MP_ERR_SYNTAX);
	/* non-canonical: the 2 spare bits of the last character set */
	ck_assert_int_eq(mp_uid_parse("aaaaaaaaaaaaaaaaaaaaaaaaab", &back), MP_ERR_SYNTAX);
	mp_identity_free(id);
}
END_TEST

START_TEST(uid_is_fixed_function_of_keys)
{
	/* fixed keys give a fixed ID: guards the derivation against change */
	uint8_t sign[MP_KEY_LEN], seal[MP_KEY_LEN];
	mp_identity *id;
	mp_uid uid;
	char text[MP_UID_TEXT_LEN + 1];

	memset(sign, 0x11, sizeof sign);
	memset(seal, 0x22, sizeof seal);
	ck_assert_int_eq(mp_identity_from_raw(sign, seal, &id), MP_OK);
	mp_identity_uid(id, &uid);
	mp_uid_format(&uid, text);
	/* computed independently with Python's hashlib and cryptography */
	ck_assert_str_eq(text, "kho4kgw22vguqltp3ggc55mtoe");
	mp_identity_free(id);
}
END_TEST

START_TEST(public_text_forms)
{
	mp_identity *id;
	mp_hostkey *k;
	mp_pubid pub;
	uint8_t hp[MP_KEY_LEN], hp2[MP_KEY_LEN];
	char text[MP_PUBID_TEXT_MAX], htext[MP_HOSTPUB_TEXT_MAX];

	ck_assert_int_eq(mp_identity_generate(&id), MP_OK);
	ck_assert_int_eq(mp_pubid_format(mp_identity_public(id), text, sizeof text), MP_OK);
	ck_assert(strncmp(text, "mpu1.", 5) == 0);
	ck_assert_int_eq(mp_pubid_parse(text, &pub), MP_OK);
	ck_assert_mem_eq(&pub, mp_identity_public(id), sizeof pub);
	text[10] = ' ';
	ck_assert_int_eq(mp_pubid_parse(text, &pub), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pubid_parse("mph1.AAAA", &pub), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_pubid_format(mp_identity_public(id), text, 20), MP_ERR_TOOBIG);

	ck_assert_int_eq(mp_hostkey_generate(&k), MP_OK);
	mp_hostkey_public(k, hp);
	ck_assert_int_eq(mp_hostpub_format(hp, htext, sizeof htext), MP_OK);
	ck_assert(strncmp(htext, "mph1.", 5) == 0);
	ck_assert_int_eq(mp_hostpub_parse(htext, hp2), MP_OK);
	ck_assert_mem_eq(hp, hp2, MP_KEY_LEN);
	htext[strlen(htext) - 1] = '\0';
	ck_assert_int_eq(mp_hostpub_parse(htext, hp2), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_hostpub_parse(text, hp2), MP_ERR_SYNTAX);
	mp_hostkey_free(k);
	mp_identity_free(id);
}
END_TEST

static Suite *
keys_suite(void)
{
	Suite *s = suite_create("keys");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, hostkey_save_load);
	tcase_add_test(tc, identity_save_load);
	tcase_add_test(tc, wrong_kind_and_bad_files);
	tcase_add_test(tc, uid_text_round_trip);
	tcase_add_test(tc, uid_is_fixed_function_of_keys);
	tcase_add_test(tc, public_text_forms);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(keys_suite)
