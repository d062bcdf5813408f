/*
 * mailpunch-keygen - create and show mailpunch keys.
 *
 *   mailpunch-keygen host [-f] [-a ADDRESS] KEYFILE
 *   mailpunch-keygen user [-f] [-n NAME] KEYFILE
 *   mailpunch-keygen show [-a ADDRESS] [-n NAME] KEYFILE
 *
 * Writes the private key (mode 0600, never over an existing file unless
 * -f) and prints only public material: for a host the line a community
 * hands to its members, for a user the user ID and public identity.
 * Exit status: 0 success, 1 failure (message on stderr), 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailpunch/config.h"
#include "mailpunch/error.h"
#include "mailpunch/keys.h"

#define EXIT_USAGE 2

static void
usage(FILE *fp)
{
	fputs("usage: mailpunch-keygen host [-f] [-a ADDRESS] KEYFILE\n"
	      "       mailpunch-keygen user [-f] [-n NAME] KEYFILE\n"
	      "       mailpunch-keygen show [-a ADDRESS] [-n NAME] KEYFILE\n", fp);
}

static int
fail(const char *what, const char *path, int rc)
{
	if (rc == MP_ERR_IO)
		fprintf(stderr, "mailpunch-keygen: %s %s: %s\n", what, path, strerror(errno));
	else
		fprintf(stderr, "mailpunch-keygen: %s %s: %s\n", what, path, mp_strerror(rc));
	return EXIT_FAILURE;
}

static int
print_host(const mp_hostkey *k, const char *addr)
{
	uint8_t pub[MP_KEY_LEN];
	char text[MP_HOSTPUB_TEXT_MAX];

	mp_hostkey_public(k, pub);
	if (mp_hostpub_format(pub, text, sizeof text) != MP_OK)
		return EXIT_FAILURE;
	printf("host-key %s\n", text);
	if (addr)
		printf("# give this line to the community's members:\nhost %s %s\n", addr, text);
	return EXIT_SUCCESS;
}

static int
print_user(const mp_identity *id, const char *name)
{
	char uid[MP_UID_TEXT_LEN + 1], text[MP_PUBID_TEXT_MAX];
	mp_uid u;

	mp_identity_uid(id, &u);
	mp_uid_format(&u, uid);
	if (mp_pubid_format(mp_identity_public(id), text, sizeof text) != MP_OK)
		return EXIT_FAILURE;
	printf("user-id %s\n", uid);
	printf("identity %s\n", text);
	if (name)
		printf("name %s\n", name);
	return EXIT_SUCCESS;
}

static int
cmd_host(const char *path, int force, const char *addr)
{
	mp_hostkey *k;
	int rc;

	if ((rc = mp_hostkey_generate(&k)) != MP_OK)
		return fail("cannot generate", "host key", rc);
	if ((rc = mp_hostkey_save(k, path, force)) != MP_OK) {
		mp_hostkey_free(k);
		if (rc == MP_ERR_EXISTS)
			fprintf(stderr, "mailpunch-keygen: %s exists; use -f to replace it\n", path);
		else
			fail("cannot write", path, rc);
		return EXIT_FAILURE;
	}
	rc = print_host(k, addr);
	mp_hostkey_free(k);
	return rc;
}

static int
cmd_user(const char *path, int force, const char *name)
{
	mp_identity *id;
	int rc;

	if ((rc = mp_identity_generate(&id)) != MP_OK)
		return fail("cannot generate", "identity", rc);
	if ((rc = mp_identity_save(id, path, force)) != MP_OK) {
		mp_identity_free(id);
		if (rc == MP_ERR_EXISTS)
			fprintf(stderr, "mailpunch-keygen: %s exists; use -f to replace it\n", path);
		else
			fail("cannot write", path, rc);
		return EXIT_FAILURE;
	}
	rc = print_user(id, name);
	mp_identity_free(id);
	return rc;
}

static int
cmd_show(const char *path, const char *addr, const char *name)
{
	mp_identity *id;
	mp_hostkey *k;
	int rc;

	/* A user file holds two keys and a host file one: try user first. */
	rc = mp_identity_load(path, &id);
	if (rc == MP_OK) {
		rc = print_user(id, name);
		mp_identity_free(id);
		return rc;
	}
	if (rc != MP_ERR_KEYFILE)
		return fail("cannot read", path, rc);
	if ((rc = mp_hostkey_load(path, &k)) != MP_OK)
		return fail("cannot read", path, rc);
	rc = print_host(k, addr);
	mp_hostkey_free(k);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *addr = NULL, *name = NULL, *cmd;
	int force = 0, c;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	optind = 2;
	while ((c = getopt(argc, argv, "fa:n:h")) != -1) {
		switch (c) {
		case 'f': force = 1; break;
		case 'a': addr = optarg; break;
		case 'n': name = optarg; break;
		case 'h': usage(stdout); return EXIT_SUCCESS;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (addr && mp_parse_mail_address(addr) != MP_OK) {
		fprintf(stderr, "mailpunch-keygen: '%s' is not a mail address\n", addr);
		return EXIT_USAGE;
	}
	if (name && (strlen(name) > 64 || name[strcspn(name, "\r\n\t")])) {
		fprintf(stderr, "mailpunch-keygen: a name is at most 64 bytes on one line\n");
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "host"))
		return cmd_host(argv[optind], force, addr);
	if (!strcmp(cmd, "user"))
		return cmd_user(argv[optind], force, name);
	if (!strcmp(cmd, "show"))
		return cmd_show(argv[optind], addr, name);
	usage(stderr);
	return EXIT_USAGE;
}
