/*
 * test_hostsync.c - TABLE_SYNC between two hosts, through the real mail
 * they exchange: peer configuration, merge rules (newer wins, stale
 * skipped, idempotent), bootstrap request, refusal of a
 * sync from a host that is not a configured peer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailpunch/error.h"
#include "mailpunch/host.h"
#include "mailpunch/hostsync.h"
#include "mailpunch/table.h"
#include "testutil.h"

#define NOW 1800000000ULL

struct host {
	mp_hostkey *key;
	mp_table *table;
	mp_host *host;
	mp_strlist rdv;
	mp_host_peer peer;            /* the other one */
	mp_host_config cfg;
	char shm[64];
	const char *addr;
};

static struct host A, B;
static mp_hostkey *stranger;

static void
host_init(struct host *h, const char *addr, const char *tag)
{
	mp_host_limits lim = { .replay_capacity = 1000 };

	memset(h, 0, sizeof *h);
	h->addr = addr;
	ck_assert_int_eq(mp_hostkey_generate(&h->key), MP_OK);
	snprintf(h->shm, sizeof h->shm, "/mp-test-hostsync-%ld-%s", (long)getpid(), tag);
	mp_table_shm_unlink(h->shm);
	ck_assert_int_eq(mp_table_shm_open(h->shm, 8, MP_TABLE_CREATE, 0600, &h->table), MP_OK);
	ck_assert_int_eq(mp_host_new(h->table, &lim, &h->host), MP_OK);
	mp_strlist_add(&h->rdv, addr);
	h->cfg.key = h->key;
	h->cfg.rendezvous = &h->rdv;
	h->cfg.peers_per_reply = 10;
	h->cfg.max_age = 3600;
	h->cfg.max_future = 300;
	h->cfg.require_sender_match = 1;
	h->cfg.subject_marker = "[mailpunch]";
	h->cfg.max_message_size = 256 * 1024;
	h->cfg.peers = &h->peer;
	h->cfg.npeers = 1;
}

static void
setup(void)
{
	host_init(&A, "rdv@a.example", "a");
	host_init(&B, "rdv@b.example", "b");
	strcpy(A.peer.addr, B.addr);
	mp_hostkey_public(B.key, A.peer.pub);
	strcpy(B.peer.addr, A.addr);
	mp_hostkey_public(A.key, B.peer.pub);
	ck_assert_int_eq(mp_hostkey_generate(&stranger), MP_OK);
}

static void
host_free(struct host *h)
{
	mp_host_free(h->host);
	mp_table_close(h->table);
	mp_table_shm_unlink(h->shm);
	mp_strlist_free(&h->rdv);
	mp_hostkey_free(h->key);
}

static void
teardown(void)
{
	host_free(&A);
	host_free(&B);
	mp_hostkey_free(stranger);
}

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	return x ^ (x >> 29);
}

static void
member(unsigned n, uint64_t time, mp_table_entry *e)
{
	size_t k;

	memset(e, 0, sizeof *e);
	for (k = 0; k < MP_KEY_LEN; k++) {
		e->id.sign_pub[k] = (uint8_t)mix(n * 131 + k);
		e->id.seal_pub[k] = (uint8_t)mix(n * 131 + k + 64);
	}
	mp_pubid_uid(&e->id, &e->uid);
	snprintf(e->name, sizeof e->name, "member %u", n);
	snprintf(e->reply_addr, sizeof e->reply_addr, "m%u@example.org", n);
	e->ep.ncand = 1;
	e->ep.cand[0].kind = 2;
	e->ep.cand[0].family = 4;
	e->ep.cand[0].addr[0] = 198;
	e->ep.cand[0].addr[1] = 18;
	e->ep.cand[0].addr[3] = (uint8_t)n;
	e->ep.cand[0].port = (uint16_t)(4500 + n);
	e->time = time;
}

static const char *
header(const char *mail, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);
	const char *p = mail;

	while (p && *p && strncmp(p, "\r\n", 2) != 0) {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1 + strspn(p + n + 1, " ");
			size_t l = strcspn(v, "\r");

			snprintf(buf, len, "%.*s", (int)(l < len ? l : len - 1), v);
			return buf;
		}
		p = strstr(p, "\r\n");
		p = p ? p + 2 : NULL;
	}
	return NULL;
}

/* Hands a whole mail, as sent by `from`, to host `to`. */
static void
deliver(struct host *to, const char *from, const char *mail, uint64_t now,
        mp_host_outcome *out)
{
	char ct[256], cte[64];
	const char *body = strstr(mail, "\r\n\r\n");
	mp_host_input in;

	ck_assert_ptr_nonnull(body);
	body += 4;
	memset(&in, 0, sizeof in);
	in.id = "TESTQID";
	in.env_from = from;
	in.rcpt = to->addr;
	in.content_type = header(mail, "Content-Type", ct, sizeof ct);
	in.cte = header(mail, "Content-Transfer-Encoding", cte, sizeof cte);
	in.body = body;
	in.body_len = strlen(body);
	in.now = now;
	ck_assert_int_eq(mp_host_process(to->host, &to->cfg, &in, out), MP_OK);
}

/* A sends B the entries of its table (newest first), or asks. */
static void
sync_a_to_b(const mp_hostkey *signer, int want_full, uint64_t now, mp_host_outcome *out)
{
	mp_table_entry e[MP_SYNC_MAX_ENTRIES];
	size_t n = 0, len;
	char *mail;

	if (!want_full)
		ck_assert_int_eq(mp_table_select(A.table, NULL, now, 0, e, MP_SYNC_MAX_ENTRIES, &n), MP_OK);
	ck_assert_int_eq(mp_hostsync_compose(signer, A.addr, "[mailpunch]", &A.peer, e, n,
	                                     want_full, now, &mail, &len), MP_OK);
	ck_assert_uint_eq(strlen(mail), len);
	ck_assert_ptr_null(strstr(mail, "m1@example.org"));  /* addresses only sealed */
	deliver(&B, A.addr, mail, now, out);
	free(mail);
}

START_TEST(peer_values)
{
	mp_host_peer p;
	char text[MP_HOSTPUB_TEXT_MAX], line[300], path[64];
	uint8_t pub[MP_KEY_LEN];
	FILE *f;

	mp_hostkey_public(B.key, pub);
	ck_assert_int_eq(mp_hostpub_format(pub, text, sizeof text), MP_OK);
	snprintf(line, sizeof line, "  rdv@b.example\t%s ", text);
	line[strlen(line) - 1] = '\0';
	ck_assert_int_eq(mp_host_peer_parse(line, &p), MP_OK);
	ck_assert_str_eq(p.addr, "rdv@b.example");
	ck_assert(memcmp(p.pub, pub, MP_KEY_LEN) == 0);

	snprintf(path, sizeof path, "/tmp/mp-test-peer-%ld.pub", (long)getpid());
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", text);
	fclose(f);
	snprintf(line, sizeof line, "rdv@b.example %s", path);
	memset(&p, 0, sizeof p);
	ck_assert_int_eq(mp_host_peer_parse(line, &p), MP_OK);
	ck_assert(memcmp(p.pub, pub, MP_KEY_LEN) == 0);
	ck_assert_int_eq(mp_hostkey_save(B.key, path, 1), MP_OK);   /* a host key file */
	memset(&p, 0, sizeof p);
	ck_assert_int_eq(mp_host_peer_parse(line, &p), MP_OK);
	ck_assert(memcmp(p.pub, pub, MP_KEY_LEN) == 0);
	unlink(path);
	ck_assert_int_eq(mp_host_peer_parse(line, &p), MP_ERR_KEYFILE);

	ck_assert_int_eq(mp_host_peer_parse("rdv@b.example", &p), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_host_peer_parse("nobody mph1.AAAA", &p), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_host_peer_parse("a@b mph1.AAAA", &p), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_host_peer_parse("a@b relative/path", &p), MP_ERR_SYNTAX);
	snprintf(line, sizeof line, "a@b %s extra", text);
	ck_assert_int_eq(mp_host_peer_parse(line, &p), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_host_peer_find(&A.peer, 1, pub), 0);
	ck_assert_int_eq(mp_host_peer_find(&B.peer, 1, pub), -1);
}
END_TEST

START_TEST(entries_travel_and_merge)
{
	mp_table_entry e, got;
	mp_host_outcome out;
	mp_table_stats st;
	unsigned i;

	for (i = 1; i <= 3; i++) {
		member(i, NOW - 10 + i, &e);
		ck_assert_int_eq(mp_table_upsert(A.table, &e, NULL), MP_OK);
	}
	sync_a_to_b(A.key, 0, NOW, &out);
	ck_assert_int_eq(out.action, MP_HOST_DROP);
	ck_assert_int_eq(out.stat, MP_STAT_SYNCS);
	ck_assert_int_eq(out.sync_peer, 0);
	ck_assert_int_eq(out.sync_want_full, 0);
	ck_assert_msg(strstr(out.detail, "3 merged") != NULL, "%s", out.detail);
	member(2, 0, &e);
	ck_assert_int_eq(mp_table_get(B.table, &e.uid, &got), MP_OK);
	ck_assert_str_eq(got.reply_addr, "m2@example.org");
	ck_assert_uint_eq(got.time, NOW - 8);
	ck_assert_uint_eq(got.ep.cand[0].port, 4502);

	/* the same again (a loop, a duplicate): nothing changes */
	sync_a_to_b(A.key, 0, NOW + 1, &out);
	ck_assert_msg(strstr(out.detail, "0 merged, 3 not newer") != NULL, "%s", out.detail);
	mp_table_stats_get(B.table, &st);
	ck_assert_uint_eq(st.entries, 3);
	ck_assert_uint_eq(st.counter[MP_STAT_SYNC_MERGED], 3);
	ck_assert_uint_eq(st.counter[MP_STAT_SYNCS], 2);

	/* B heard from member 3 more recently than A: B keeps its own */
	member(3, NOW + 5, &e);
	strcpy(e.name, "fresh at B");
	ck_assert_int_eq(mp_table_upsert(B.table, &e, NULL), MP_OK);
	member(1, NOW + 6, &e);
	strcpy(e.name, "fresh at A");
	ck_assert_int_eq(mp_table_upsert(A.table, &e, NULL), MP_OK);
	sync_a_to_b(A.key, 0, NOW + 10, &out);
	ck_assert_msg(strstr(out.detail, "1 merged, 2 not newer") != NULL, "%s", out.detail);
	ck_assert_int_eq(mp_table_get(B.table, &e.uid, &got), MP_OK);
	ck_assert_str_eq(got.name, "fresh at A");
	member(3, 0, &e);
	ck_assert_int_eq(mp_table_get(B.table, &e.uid, &got), MP_OK);
	ck_assert_str_eq(got.name, "fresh at B");
	mp_host_outcome_free(&out);
}
END_TEST

START_TEST(stale_refused)
{
	mp_table_entry e, got;
	mp_host_outcome out;

	member(1, NOW - 5, &e);
	ck_assert_int_eq(mp_table_upsert(A.table, &e, NULL), MP_OK);
	member(2, NOW - 7200, &e);             /* older than B's lifetime */
	ck_assert_int_eq(mp_table_upsert(A.table, &e, NULL), MP_OK);
	member(3, NOW + 3600, &e);             /* from a clock far ahead */
	ck_assert_int_eq(mp_table_upsert(A.table, &e, NULL), MP_OK);
	/* An identity conflict cannot be brought by a sync: the receiver
	 * derives each user ID from the key that travels, so a sender can
	 * only ever describe a key's own ID, and a stored binding is never
	 * replaced (mp_table_merge, tested in test_table). */
	sync_a_to_b(A.key, 0, NOW, &out);
	ck_assert_msg(strstr(out.detail, "1 merged") != NULL && strstr(out.detail, "2 stale") != NULL,
	              "%s", out.detail);
	member(2, 0, &e);
	ck_assert_int_eq(mp_table_get(B.table, &e.uid, &got), MP_ERR_NOTFOUND);
	member(3, 0, &e);
	ck_assert_int_eq(mp_table_get(B.table, &e.uid, &got), MP_ERR_NOTFOUND);
}
END_TEST

START_TEST(bootstrap_request)
{
	mp_host_outcome out;

	sync_a_to_b(A.key, 1, NOW, &out);
	ck_assert_int_eq(out.stat, MP_STAT_SYNCS);
	ck_assert_int_eq(out.sync_want_full, 1);
	ck_assert_int_eq(out.sync_peer, 0);
}
END_TEST

START_TEST(not_a_peer_refused)
{
	mp_table_entry e;
	mp_host_outcome out;
	mp_table_stats st;

	member(1, NOW, &e);
	ck_assert_int_eq(mp_table_upsert(A.table, &e, NULL), MP_OK);
	sync_a_to_b(stranger, 0, NOW, &out);
	ck_assert_int_eq(out.stat, MP_STAT_DROP_BADBLOCK);
	ck_assert_int_eq(out.sync_peer, -1);
	mp_table_stats_get(B.table, &st);
	ck_assert_uint_eq(st.entries, 0);
	/* with no peers configured at all, even A is refused */
	B.cfg.npeers = 0;
	sync_a_to_b(A.key, 0, NOW, &out);
	ck_assert_int_eq(out.stat, MP_STAT_DROP_BADBLOCK);
	mp_table_stats_get(B.table, &st);
	ck_assert_uint_eq(st.entries, 0);
}
END_TEST

Suite *hostsync_suite(void);

Suite *
hostsync_suite(void)
{
	Suite *s = suite_create("hostsync");
	TCase *tc = tcase_create("sync");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, peer_values);
	tcase_add_test(tc, entries_travel_and_merge);
	tcase_add_test(tc, stale_refused);
	tcase_add_test(tc, bootstrap_request);
	tcase_add_test(tc, not_a_peer_refused);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(hostsync_suite)
