/*
 * test_vectors.c - the C implementation reproduces, byte for byte, the
 * blocks that tests/vectors/gen_vectors.py (an independent Python
 * implementation of docs/PROTOCOL.md) produced, and opens them.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys_priv.h"
#include "mailpunch/block.h"
#include "mailpunch/error.h"
#include "seal.h"
#include "testutil.h"

static mp_identity *user, *peer;
static mp_hostkey *host;

static void
fixed(uint8_t b, uint8_t out[MP_KEY_LEN])
{
	memset(out, b, MP_KEY_LEN);
}

static void
setup(void)
{
	uint8_t a[MP_KEY_LEN], b[MP_KEY_LEN];

	fixed(0x11, a);
	fixed(0x22, b);
	ck_assert_int_eq(mp_identity_from_raw(a, b, &user), MP_OK);
	fixed(0x66, a);
	fixed(0x77, b);
	ck_assert_int_eq(mp_identity_from_raw(a, b, &peer), MP_OK);
	fixed(0x33, a);
	ck_assert_int_eq(mp_hostkey_from_raw(a, &host), MP_OK);
}

static void
teardown(void)
{
	mp_identity_free(user);
	mp_identity_free(peer);
	mp_hostkey_free(host);
}

/* Returns the vector called name from the file, decoded from hex. */
static uint8_t *
vector(const char *name, size_t *len)
{
	char path[1024], *line = NULL;
	size_t cap = 0, nlen = strlen(name), i;
	uint8_t *out = NULL;
	FILE *fp;

	snprintf(path, sizeof path, "%s/tests/vectors/blocks-v1.txt", mp_test_srcdir());
	fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "cannot open %s", path);
	while (getline(&line, &cap, fp) > 0) {
		if (strncmp(line, name, nlen) != 0 || line[nlen] != ' ')
			continue;
		const char *hex = line + nlen + 1;
		size_t hlen = strcspn(hex, "\r\n");

		out = malloc(hlen / 2);
		for (i = 0; i < hlen / 2; i++) {
			unsigned v;
			ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
			out[i] = (uint8_t)v;
		}
		*len = hlen / 2;
		break;
	}
	free(line);
	fclose(fp);
	ck_assert_msg(out != NULL, "vector %s missing", name);
	return out;
}

static void
common(mp_msg *m)
{
	size_t i;

	for (i = 0; i < MP_SESSION_ID_LEN; i++)
		m->session_id[i] = (uint8_t)i;
	m->timestamp = 1800000000;
}

static void
candidates(mp_endpoints *ep, int n)
{
	ep->ncand = (uint8_t)n;
	ep->cand[0].kind = MP_CAND_SRFLX;
	ep->cand[0].family = 4;
	inet_pton(AF_INET, "198.51.100.7", ep->cand[0].addr);
	ep->cand[0].port = 50001;
	if (n < 2)
		return;
	ep->cand[1].kind = MP_CAND_LOCAL;
	ep->cand[1].family = 6;
	inet_pton(AF_INET6, "2001:db8::42", ep->cand[1].addr);
	ep->cand[1].port = 4242;
}

static void
check_vector(const char *name, const mp_msg *m, const mp_block_key *from,
             const uint8_t *to_pub, uint8_t eph_byte, const mp_block_key *to)
{
	uint8_t eph[MP_KEY_LEN], *mine, *theirs;
	size_t mlen, tlen;
	mp_msg *got;

	fixed(eph_byte, eph);
	theirs = vector(name, &tlen);
	ck_assert_int_eq(mp_block_seal_ephemeral(m, from, to_pub, eph, &mine, &mlen), MP_OK);
	ck_assert_uint_eq(mlen, tlen);
	ck_assert_mem_eq(mine, theirs, tlen);
	ck_assert_int_eq(mp_block_open(theirs, tlen, to, &got), MP_OK);
	ck_assert_mem_eq(&got->u, &m->u, sizeof m->u);
	ck_assert(got->timestamp == 1800000000);
	mp_msg_free(got);
	free(mine);
	free(theirs);
}

START_TEST(uid_vector)
{
	size_t len;
	uint8_t *want = vector("uid", &len);
	mp_uid uid;

	ck_assert_uint_eq(len, MP_UID_LEN);
	mp_identity_uid(user, &uid);
	ck_assert_mem_eq(uid.b, want, MP_UID_LEN);
	free(want);
}
END_TEST

START_TEST(request_vector)
{
	mp_msg *m = calloc(1, sizeof *m);
	mp_block_key from = { .user = user }, to = { .host = host };
	uint8_t host_pub[MP_KEY_LEN];

	m->type = MP_MSG_REQUEST;
	common(m);
	strcpy(m->u.request.reply_addr, "alice@example.org");
	strcpy(m->u.request.name, "Alice");
	candidates(&m->u.request.ep, 2);
	m->u.request.ep.nat = (mp_nat){ MP_NAT_ADDR_PORT_DEP, MP_NAT_ADDR_PORT_DEP, MP_ALLOC_SEQUENTIAL, -2 };
	mp_hostkey_public(host, host_pub);
	check_vector("request", m, &from, host_pub, 0x44, &to);
	mp_msg_free(m);
}
END_TEST

START_TEST(reply_vector)
{
	mp_msg *m = calloc(1, sizeof *m);
	mp_block_key from = { .host = host }, to = { .user = user };
	mp_peer *p = &m->u.reply.peers[0];

	m->type = MP_MSG_REPLY;
	common(m);
	m->u.reply.npeers = 1;
	p->id = *mp_identity_public(peer);
	strcpy(p->name, "Bob");
	candidates(&p->ep, 1);
	p->ep.nat = (mp_nat){ MP_NAT_INDEPENDENT, MP_NAT_ADDR_PORT_DEP, MP_ALLOC_PRESERVING, 0 };
	p->age = 120;
	p->flags = MP_PEER_FAILED;
	check_vector("reply", m, &from, mp_identity_public(user)->seal_pub, 0x55, &to);
	mp_msg_free(m);
}
END_TEST

START_TEST(failure_vector)
{
	mp_msg *m = calloc(1, sizeof *m);
	mp_block_key from = { .user = user }, to = { .host = host };
	uint8_t host_pub[MP_KEY_LEN];

	m->type = MP_MSG_FAILURE_NOTICE;
	common(m);
	memset(m->u.failure.target.b, 0xab, MP_UID_LEN);
	m->u.failure.reason = MP_FAIL_TIMEOUT;
	mp_hostkey_public(host, host_pub);
	check_vector("failure", m, &from, host_pub, 0x45, &to);
	mp_msg_free(m);
}
END_TEST

static Suite *
vectors_suite(void)
{
	Suite *s = suite_create("vectors");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, uid_vector);
	tcase_add_test(tc, request_vector);
	tcase_add_test(tc, reply_vector);
	tcase_add_test(tc, failure_vector);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(vectors_suite)
