/*
 * test_table.c - the control table on its shared-memory backend.
 *
 * Covers the contract of table.h (capacity and eviction, age limits,
 * order, exclusion, flags, identity binding, delete/flush, counters),
 * threads and a second process on one table, recovery after a lock
 * holder is killed in the middle of each kind of mutation, refusal of
 * foreign or mismatched storage, and a file-backed table across
 * close/reopen.  Every test checks the whole structure afterwards with
 * mp_table_shm_debug_check().
 *
 * Built a second time with MP_TEST_REDIS defined (test_table_redis): the
 * contract tests and the threads then run against the Redis backend, on
 * a redis-server this program starts on a loopback port, so both
 * backends are held to the same semantics; Redis-only tests (URL forms,
 * the server going away and coming back) follow.  Skipped (77) when
 * redis-server is not installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mailpunch/error.h"
#include "mailpunch/keys.h"
#include "mailpunch/table.h"
#include "table_priv.h"
#include "testutil.h"

#define T0 1800000000ULL       /* a "now" for the tests */

/* ---------------------------------------------------------------- helpers */

#ifdef MP_TEST_REDIS
static int redis_port;          /* of the server main() started */

static void
table_name(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "redis://127.0.0.1:%d?prefix=t%ld-%s", redis_port, (long)getpid(), what);
	mp_table_redis_unlink(buf);
}

static int
table_unlink(const char *name)
{
	return mp_table_redis_unlink(name);
}
#else
static void
table_name(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "/mp-test-table-%ld-%s", (long)getpid(), what);
	mp_table_shm_unlink(buf);       /* a leftover from a crashed run */
}

static int
table_unlink(const char *name)
{
	return mp_table_shm_unlink(name);
}
#endif

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

/* Member n: a pubid of pseudo-random bytes and the uid derived from it. */
static void
member(unsigned n, uint64_t time, mp_table_entry *e)
{
	size_t k;

	memset(e, 0, sizeof *e);
	for (k = 0; k < sizeof e->id.sign_pub; k++) {
		e->id.sign_pub[k] = (uint8_t)mix(n * 131 + k);
		e->id.seal_pub[k] = (uint8_t)mix(n * 131 + k + 64);
	}
	mp_pubid_uid(&e->id, &e->uid);
	snprintf(e->name, sizeof e->name, "member %u", n);
	snprintf(e->reply_addr, sizeof e->reply_addr, "m%u@example.org", n);
	e->ep.ncand = 2;
	e->ep.cand[0].kind = 2;
	e->ep.cand[0].family = 4;
	e->ep.cand[0].addr[0] = 203;
	e->ep.cand[0].addr[3] = (uint8_t)n;
	e->ep.cand[0].port = (uint16_t)(4500 + n);
	e->ep.cand[1].kind = 1;
	e->ep.cand[1].family = 6;
	e->ep.cand[1].addr[0] = 0x20;
	e->ep.cand[1].addr[15] = (uint8_t)n;
	e->ep.cand[1].port = 4500;
	e->ep.nat.mapping = 1;
	e->ep.nat.filtering = 3;
	e->ep.nat.allocation = 2;
	e->ep.nat.delta = -2;
	e->time = time;
}

static void
put(mp_table *t, unsigned n, uint64_t time)
{
	mp_table_entry e;

	member(n, time, &e);
	ck_assert_int_eq(mp_table_upsert(t, &e, NULL), MP_OK);
}

static int
present(mp_table *t, unsigned n)
{
	mp_table_entry e, got;
	int rc;

	member(n, 0, &e);
	rc = mp_table_get(t, &e.uid, &got);
	ck_assert(rc == MP_OK || rc == MP_ERR_NOTFOUND);
	return rc == MP_OK;
}

static void
consistent(mp_table *t)
{
#ifdef MP_TEST_REDIS
	/* What can be seen from outside: as many entries as counted, newest
	 * first, every uid derived from its key. */
	static mp_table_entry all[1024];
	mp_table_stats st;
	size_t n, i;

	mp_table_stats_get(t, &st);
	ck_assert_uint_le(st.entries, 1024);
	ck_assert_int_eq(mp_table_select(t, NULL, 0, 0, all, 1024, &n), MP_OK);
	ck_assert_uint_eq(n, st.entries);
	for (i = 0; i < n; i++) {
		ck_assert(mp_pubid_matches_uid(&all[i].id, &all[i].uid));
		ck_assert(i == 0 || all[i].time <= all[i - 1].time);
	}
#else
	char why[256];
	int rc = mp_table_shm_debug_check(t, 1, why, sizeof why);

	ck_assert_msg(rc == MP_OK, "table inconsistent: %s", why);
#endif
}

static uint64_t
counter(mp_table *t, mp_stat which)
{
	mp_table_stats st;

	mp_table_stats_get(t, &st);
	return st.counter[which];
}

static uint64_t
entries(mp_table *t)
{
	mp_table_stats st;

	mp_table_stats_get(t, &st);
	return st.entries;
}

static mp_table *
fresh(const char *name, size_t cap)
{
	mp_table *t = NULL;

	ck_assert_int_eq(mp_table_open(name, cap, MP_TABLE_CREATE, 0600, &t), MP_OK);
	ck_assert_ptr_nonnull(t);
	return t;
}

static void
done(mp_table *t, const char *name)
{
	consistent(t);
	mp_table_close(t);
	ck_assert_int_eq(table_unlink(name), MP_OK);
}

/* ---------------------------------------------------------------- contract */

START_TEST(roundtrip_fields)
{
	char name[64];
	mp_table *t;
	mp_table_entry e, got;
	int was_new = -1;

	table_name(name, sizeof name, "roundtrip");
	t = fresh(name, 16);
	member(7, T0, &e);
	e.ep.ncand = 6;             /* only the first MP_TABLE_CAND are kept */
	e.ep.cand[2].kind = 3;
	e.ep.cand[2].family = 4;
	e.ep.cand[2].port = 1;
	e.ep.cand[3].kind = 127;
	e.ep.cand[3].family = 6;
	e.ep.cand[3].port = 65535;
	memset(e.ep.cand[3].addr, 0xfe, 16);
	e.ep.cand[4].family = 9;    /* not stored: not checked */
	memset(e.name, 'n', MP_NAME_MAX);
	memset(e.reply_addr, 'a', MP_ADDR_MAX);
	e.flags = MP_PEER_FAILED;
	ck_assert_int_eq(mp_table_upsert(t, &e, &was_new), MP_OK);
	ck_assert_int_eq(was_new, 1);
	ck_assert_int_eq(mp_table_get(t, &e.uid, &got), MP_OK);
	ck_assert_int_eq(got.ep.ncand, MP_TABLE_CAND);
	e.ep.ncand = MP_TABLE_CAND;
	memset(&e.ep.cand[MP_TABLE_CAND], 0,
	       sizeof e.ep.cand - MP_TABLE_CAND * sizeof e.ep.cand[0]);
	ck_assert(memcmp(&got, &e, sizeof e) == 0);

	/* same member again: an update, not a new entry */
	e.time = T0 + 5;
	strcpy(e.name, "renamed");
	ck_assert_int_eq(mp_table_upsert(t, &e, &was_new), MP_OK);
	ck_assert_int_eq(was_new, 0);
	ck_assert_int_eq(mp_table_get(t, &e.uid, &got), MP_OK);
	ck_assert_str_eq(got.name, "renamed");
	ck_assert_uint_eq(got.time, T0 + 5);
	ck_assert_uint_eq(entries(t), 1);
	done(t, name);
}
END_TEST

START_TEST(bad_arguments_refused)
{
	char name[64];
	mp_table *t;
	mp_table_entry e, got;
	size_t n;

	table_name(name, sizeof name, "args");
	t = fresh(name, 16);
	put(t, 1, T0);

	member(2, T0, &e);
	e.uid.b[0] ^= 1;            /* uid not derived from the key */
	ck_assert_int_eq(mp_table_upsert(t, &e, NULL), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_get(t, &e.uid, &got), MP_ERR_NOTFOUND);
	member(2, T0, &e);
	memset(e.name, 'x', sizeof e.name);
	ck_assert_int_eq(mp_table_upsert(t, &e, NULL), MP_ERR_INVAL);
	member(2, T0, &e);
	memset(e.reply_addr, 'x', sizeof e.reply_addr);
	ck_assert_int_eq(mp_table_upsert(t, &e, NULL), MP_ERR_INVAL);
	member(2, T0, &e);
	e.ep.ncand = MP_MAX_CANDIDATES + 1;
	ck_assert_int_eq(mp_table_upsert(t, &e, NULL), MP_ERR_INVAL);
	member(2, T0, &e);
	e.ep.cand[1].family = 5;
	ck_assert_int_eq(mp_table_upsert(t, &e, NULL), MP_ERR_INVAL);
	member(2, T0, &e);
	e.ep.cand[0].kind = 200;
	ck_assert_int_eq(mp_table_upsert(t, &e, NULL), MP_ERR_INVAL);
	ck_assert_uint_eq(entries(t), 1);

	ck_assert_int_eq(mp_table_upsert(NULL, &e, NULL), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_upsert(t, NULL, NULL), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_select(t, NULL, T0, 0, NULL, 1, &n), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_select(t, NULL, T0, 0, &got, 1, NULL), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_select(t, NULL, T0, 0, NULL, 0, &n), MP_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(mp_table_get(t, NULL, &got), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_delete(NULL, &e.uid), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_set_flags(t, NULL, 1, 0), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_flush(NULL), MP_ERR_INVAL);
	mp_table_count(t, MP_STAT_COUNT, 1);       /* ignored */
	mp_table_count(NULL, MP_STAT_REQUESTS, 1);
	mp_table_close(NULL);
	done(t, name);
}
END_TEST

START_TEST(capacity_and_eviction_order)
{
	char name[64];
	mp_table *t;
	mp_table_entry out[16];
	unsigned i, cap = 10, extra = 4;
	size_t n;
	int was_new;

	table_name(name, sizeof name, "evict");
	t = fresh(name, cap);
	for (i = 0; i < cap + extra; i++) {
		mp_table_entry e;

		member(i, T0 + i, &e);
		ck_assert_int_eq(mp_table_upsert(t, &e, &was_new), MP_OK);
		ck_assert_int_eq(was_new, 1);
		ck_assert_uint_eq(entries(t), i < cap ? i + 1 : cap);
	}
	for (i = 0; i < cap + extra; i++)
		ck_assert_int_eq(present(t, i), i >= extra);
	ck_assert_uint_eq(counter(t, MP_STAT_EVICTIONS), extra);
	ck_assert_int_eq(mp_table_select(t, NULL, T0 + 100, 0, out, 16, &n), MP_OK);
	ck_assert_uint_eq(n, cap);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(out[i].time, T0 + cap + extra - 1 - i);

	/* refreshing the oldest saves it: the next eviction takes another */
	put(t, extra, T0 + 50);
	put(t, 99, T0 + 51);
	ck_assert(present(t, extra));
	ck_assert(!present(t, extra + 1));
	ck_assert_uint_eq(counter(t, MP_STAT_EVICTIONS), extra + 1);

	/* a merged entry older than everything in a full table is the one
	 * that goes; the table is unchanged */
	put(t, 500, T0 - 1000);
	ck_assert(!present(t, 500));
	ck_assert(present(t, extra + 2));
	ck_assert_uint_eq(entries(t), cap);
	ck_assert_uint_eq(counter(t, MP_STAT_EVICTIONS), extra + 2);
	done(t, name);
}
END_TEST

START_TEST(newest_first_and_sorted_inserts)
{
	char name[64];
	mp_table *t;
	mp_table_entry out[16];
	size_t n, i;
	/* times in upsert order: merges bring older ones, ties go newest */
	static const struct { unsigned m; uint64_t dt; } seq[] = {
		{ 1, 10 }, { 2, 20 }, { 3, 30 }, { 4, 15 }, { 5, 5 },
		{ 6, 30 }, { 7, 25 }, { 1, 40 }, { 8, 12 }, { 9, 29 },
	};
	static const unsigned want[] = { 1, 6, 3, 9, 7, 2, 4, 8, 5 };

	table_name(name, sizeof name, "order");
	t = fresh(name, 32);
	for (i = 0; i < sizeof seq / sizeof seq[0]; i++) {
		put(t, seq[i].m, T0 + seq[i].dt);
		consistent(t);
	}
	ck_assert_int_eq(mp_table_select(t, NULL, T0 + 40, 0, out, 16, &n), MP_OK);
	ck_assert_uint_eq(n, sizeof want / sizeof want[0]);
	for (i = 0; i < n; i++) {
		mp_table_entry e;

		member(want[i], 0, &e);
		ck_assert_msg(memcmp(&out[i].uid, &e.uid, sizeof e.uid) == 0,
		              "position %zu: want member %u, got %s", i, want[i], out[i].name);
	}
	/* at most max, still newest first */
	ck_assert_int_eq(mp_table_select(t, NULL, T0 + 40, 0, out, 3, &n), MP_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(out[2].name, "member 3");
	done(t, name);
}
END_TEST

START_TEST(exclusion_of_requester)
{
	char name[64];
	mp_table *t;
	mp_table_entry me, out[8];
	size_t n, i;

	table_name(name, sizeof name, "exclude");
	t = fresh(name, 8);
	for (i = 0; i < 5; i++)
		put(t, (unsigned)i, T0 + i);
	member(4, T0 + 4, &me);    /* the newest asks */
	ck_assert_int_eq(mp_table_select(t, &me.uid, T0 + 5, 0, out, 8, &n), MP_OK);
	ck_assert_uint_eq(n, 4);
	for (i = 0; i < n; i++)
		ck_assert(memcmp(&out[i].uid, &me.uid, sizeof me.uid) != 0);
	ck_assert_str_eq(out[0].name, "member 3");
	/* the exclusion does not count against max */
	ck_assert_int_eq(mp_table_select(t, &me.uid, T0 + 5, 0, out, 2, &n), MP_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(out[1].name, "member 2");
	/* an unknown requester excludes nothing */
	member(77, 0, &me);
	ck_assert_int_eq(mp_table_select(t, &me.uid, T0 + 5, 0, out, 8, &n), MP_OK);
	ck_assert_uint_eq(n, 5);
	done(t, name);
}
END_TEST

START_TEST(expiry)
{
	char name[64];
	mp_table *t;
	mp_table_entry out[8];
	size_t n, removed = 99;
	unsigned i;

	table_name(name, sizeof name, "expire");
	t = fresh(name, 8);
	for (i = 0; i < 6; i++)
		put(t, i, T0 + 100 * i);       /* ages at T0+500: 500..0 */
	put(t, 9, T0 + 1000);                   /* in the future */
	ck_assert_int_eq(mp_table_select(t, NULL, T0 + 500, 250, out, 8, &n), MP_OK);
	ck_assert_uint_eq(n, 4);                /* ages -500, 0, 100, 200 */
	ck_assert_str_eq(out[0].name, "member 9");
	ck_assert_str_eq(out[3].name, "member 3");
	ck_assert_int_eq(mp_table_select(t, NULL, T0 + 500, 300, out, 8, &n), MP_OK);
	ck_assert_uint_eq(n, 5);                /* exactly max_age is not older */
	ck_assert_int_eq(mp_table_select(t, NULL, T0 + 500, 0, out, 8, &n), MP_OK);
	ck_assert_uint_eq(n, 7);                /* 0: no limit */

	ck_assert_int_eq(mp_table_expire(t, T0 + 500, 0, &removed), MP_OK);
	ck_assert_uint_eq(removed, 0);
	ck_assert_int_eq(mp_table_expire(t, T0 + 500, 250, &removed), MP_OK);
	ck_assert_uint_eq(removed, 3);
	ck_assert_uint_eq(entries(t), 4);
	ck_assert_uint_eq(counter(t, MP_STAT_EXPIRATIONS), 3);
	for (i = 0; i < 3; i++)
		ck_assert(!present(t, i));
	ck_assert(present(t, 3));
	ck_assert_int_eq(mp_table_expire(t, T0 + 500, 250, NULL), MP_OK);
	ck_assert_uint_eq(counter(t, MP_STAT_EXPIRATIONS), 3);
	ck_assert_int_eq(mp_table_expire(t, UINT64_MAX, 1, &removed), MP_OK);
	ck_assert_uint_eq(removed, 4);
	ck_assert_uint_eq(entries(t), 0);
	consistent(t);
	/* freed slots are reused */
	for (i = 20; i < 28; i++)
		put(t, i, T0 + i);
	ck_assert_uint_eq(entries(t), 8);
	ck_assert_uint_eq(counter(t, MP_STAT_EVICTIONS), 0);
	done(t, name);
}
END_TEST

#ifndef MP_TEST_REDIS
/* The list is sorted by time, so select stops at the first entry that
 * is too old instead of scanning on.  Made visible by giving the oldest
 * entry, behind the lock's back, a fresh time: it is not reached. */
START_TEST(select_stops_at_first_too_old)
{
	char name[64];
	mp_table *t;
	mp_table_entry out[8];
	size_t n, size = mp_table_shm_mapping_size(8), esz = mp_table_shm_entry_size();
	uint64_t fresh_time = T0 + 100;
	int fd;
	unsigned char *map;
	unsigned i;

	table_name(name, sizeof name, "stop");
	t = fresh(name, 8);
	for (i = 0; i < 5; i++)
		put(t, i, T0 + 10 * i);         /* member 0 in slot 0, the oldest */
	fd = shm_open(name, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(map != MAP_FAILED);
	close(fd);
	memcpy(map + size - 8 * esz + MP_TABLE_SHM_ENTRY_TIME_OFFSET, &fresh_time,
	       sizeof fresh_time);
	ck_assert_int_eq(mp_table_select(t, NULL, T0 + 40, 15, out, 8, &n), MP_OK);
	ck_assert_uint_eq(n, 2);                /* members 4 and 3, then 2 is too old */
	ck_assert_int_eq(mp_table_select(t, NULL, T0 + 40, 0, out, 8, &n), MP_OK);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(out[4].time, fresh_time);
	memcpy(map + size - 8 * esz + MP_TABLE_SHM_ENTRY_TIME_OFFSET, &(uint64_t){ T0 },
	       sizeof fresh_time);
	munmap(map, size);
	done(t, name);
}
END_TEST

#endif

START_TEST(flags)
{
	char name[64];
	mp_table *t;
	mp_table_entry e, out[4];
	size_t n;

	table_name(name, sizeof name, "flags");
	t = fresh(name, 4);
	put(t, 1, T0);
	put(t, 2, T0 + 1);
	member(1, 0, &e);
	ck_assert_int_eq(mp_table_set_flags(t, &e.uid, MP_PEER_FAILED | 0x40, 0), MP_OK);
	ck_assert_int_eq(mp_table_select(t, NULL, T0 + 1, 0, out, 4, &n), MP_OK);
	ck_assert_uint_eq(n, 2);                /* flagged ones included */
	ck_assert_uint_eq(out[0].flags, 0);
	ck_assert_uint_eq(out[1].flags, MP_PEER_FAILED | 0x40);
	ck_assert_int_eq(mp_table_set_flags(t, &e.uid, 0, 0x40), MP_OK);
	ck_assert_int_eq(mp_table_get(t, &e.uid, out), MP_OK);
	ck_assert_uint_eq(out[0].flags, MP_PEER_FAILED);
	/* set and clear of one bit: clear wins */
	ck_assert_int_eq(mp_table_set_flags(t, &e.uid, MP_PEER_FAILED, MP_PEER_FAILED), MP_OK);
	ck_assert_int_eq(mp_table_get(t, &e.uid, out), MP_OK);
	ck_assert_uint_eq(out[0].flags, 0);
	member(3, 0, &e);
	ck_assert_int_eq(mp_table_set_flags(t, &e.uid, 1, 0), MP_ERR_NOTFOUND);
	/* flags do not move an entry */
	ck_assert_int_eq(mp_table_select(t, NULL, T0 + 1, 0, out, 4, &n), MP_OK);
	ck_assert_str_eq(out[0].name, "member 2");
	done(t, name);
}
END_TEST

START_TEST(conflict_leaves_table_unchanged)
{
	char name[64];
	mp_table *t;
	mp_table_entry a, b, out[4], before[4];
	size_t n, nb;

	table_name(name, sizeof name, "conflict");
	t = fresh(name, 4);
	put(t, 1, T0);
	put(t, 2, T0 + 1);
	ck_assert_int_eq(mp_table_select(t, NULL, T0, 0, before, 4, &nb), MP_OK);
	member(1, T0 + 2, &a);
	member(3, T0 + 2, &b);
	b.uid = a.uid;              /* member 3's key claiming member 1's uid */
	ck_assert_int_eq(mp_table_upsert(t, &b, NULL), MP_ERR_CONFLICT);
	ck_assert_int_eq(mp_table_select(t, NULL, T0, 0, out, 4, &n), MP_OK);
	ck_assert_uint_eq(n, nb);
	ck_assert(memcmp(out, before, n * sizeof out[0]) == 0);
	ck_assert_uint_eq(entries(t), 2);
	done(t, name);
}
END_TEST

START_TEST(merge_newer_wins)
{
	char name[64];
	mp_table *t;
	mp_table_entry e, b, got;
	int applied = -1;

	table_name(name, sizeof name, "merge");
	t = fresh(name, 4);
	put(t, 1, T0 + 10);
	member(1, T0 + 5, &e);              /* older news about member 1 */
	strcpy(e.name, "old");
	ck_assert_int_eq(mp_table_merge(t, &e, &applied), MP_OK);
	ck_assert_int_eq(applied, 0);
	e.time = T0 + 10;                   /* the same time: not newer */
	ck_assert_int_eq(mp_table_merge(t, &e, &applied), MP_OK);
	ck_assert_int_eq(applied, 0);
	ck_assert_int_eq(mp_table_get(t, &e.uid, &got), MP_OK);
	ck_assert_str_eq(got.name, "member 1");
	e.time = T0 + 11;
	e.flags = MP_PEER_FAILED;
	ck_assert_int_eq(mp_table_merge(t, &e, &applied), MP_OK);
	ck_assert_int_eq(applied, 1);
	ck_assert_int_eq(mp_table_merge(t, &e, &applied), MP_OK);   /* idempotent */
	ck_assert_int_eq(applied, 0);
	ck_assert_int_eq(mp_table_get(t, &e.uid, &got), MP_OK);
	ck_assert_str_eq(got.name, "old");
	ck_assert_uint_eq(got.flags, MP_PEER_FAILED);
	/* unknown members come in with their own time; conflicts refused */
	member(2, T0 + 3, &e);
	ck_assert_int_eq(mp_table_merge(t, &e, &applied), MP_OK);
	ck_assert_int_eq(applied, 1);
	member(3, T0 + 100, &b);
	b.uid = e.uid;
	ck_assert_int_eq(mp_table_merge(t, &b, &applied), MP_ERR_CONFLICT);
	ck_assert_int_eq(applied, 0);
	b.uid.b[0] ^= 1;
	ck_assert_int_eq(mp_table_merge(t, &b, &applied), MP_ERR_INVAL);
	ck_assert_uint_eq(entries(t), 2);
	done(t, name);
}
END_TEST

START_TEST(delete_and_flush)
{
	char name[64];
	mp_table *t;
	mp_table_entry e, out[8];
	size_t n;
	unsigned i;

	table_name(name, sizeof name, "delete");
	t = fresh(name, 8);
	for (i = 0; i < 8; i++)
		put(t, i, T0 + i);
	member(3, 0, &e);
	ck_assert_int_eq(mp_table_delete(t, &e.uid), MP_OK);
	ck_assert_int_eq(mp_table_delete(t, &e.uid), MP_ERR_NOTFOUND);
	ck_assert_int_eq(mp_table_get(t, &e.uid, out), MP_ERR_NOTFOUND);
	ck_assert_uint_eq(entries(t), 7);
	consistent(t);
	put(t, 100, T0 + 100);              /* reuses the freed slot */
	ck_assert_uint_eq(entries(t), 8);
	ck_assert_uint_eq(counter(t, MP_STAT_EVICTIONS), 0);
	ck_assert_int_eq(mp_table_flush(t), MP_OK);
	ck_assert_uint_eq(entries(t), 0);
	ck_assert_int_eq(mp_table_select(t, NULL, T0, 0, out, 8, &n), MP_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert(!present(t, 100));
	consistent(t);
	put(t, 5, T0);
	ck_assert(present(t, 5));
	ck_assert_int_eq(mp_table_flush(t), MP_OK);
	ck_assert_int_eq(mp_table_flush(t), MP_OK);
	done(t, name);
}
END_TEST

START_TEST(counters_and_names)
{
	char name[64];
	mp_table *t;
	mp_table_stats st;
	int k;

	table_name(name, sizeof name, "counters");
	t = fresh(name, 4);
	mp_table_count(t, MP_STAT_REQUESTS, 3);
	mp_table_count(t, MP_STAT_REQUESTS, 2);
	mp_table_count(t, MP_STAT_DROP_REPLAY, 1);
	mp_table_stats_get(t, &st);
	ck_assert_uint_eq(st.counter[MP_STAT_REQUESTS], 5);
	ck_assert_uint_eq(st.counter[MP_STAT_DROP_REPLAY], 1);
	ck_assert_uint_eq(st.counter[MP_STAT_REPLIES], 0);
	ck_assert_uint_eq(st.capacity, 4);
	ck_assert_str_eq(mp_stat_name(MP_STAT_REQUESTS), "requests");
	ck_assert_str_eq(mp_stat_name(MP_STAT_DROP_NOBLOCK), "drop_noblock");
	ck_assert_str_eq(mp_stat_name(MP_STAT_EXPIRATIONS), "expirations");
	ck_assert_str_eq(mp_stat_name(MP_STAT_COUNT), "unknown");
	for (k = 0; k < MP_STAT_COUNT; k++) {
		int j;

		ck_assert_str_ne(mp_stat_name((mp_stat)k), "unknown");
		for (j = 0; j < k; j++)
			ck_assert_str_ne(mp_stat_name((mp_stat)k), mp_stat_name((mp_stat)j));
	}
	mp_table_stats_get(NULL, &st);
	ck_assert_uint_eq(st.capacity, 0);
	done(t, name);
}
END_TEST

/* ---------------------------------------------------------------- concurrency */

#define POOL 300
#ifdef MP_TEST_REDIS
#define HAMMER_OPS 4000         /* a round trip each: keep it short */
#else
#define HAMMER_OPS 20000
#endif

struct hammer {
	mp_table *t;
	const mp_table_entry *pool;
	unsigned seed;
	int failed;
};

static _Atomic uint64_t clock_ticks;

static void *
hammer_run(void *arg)
{
	struct hammer *hm = arg;
	mp_table_entry out[10], e;
	uint64_t r = hm->seed;
	size_t n, k;
	int i, rc;

	for (i = 0; i < HAMMER_OPS && !hm->failed; i++) {
		uint64_t now = T0 + atomic_fetch_add(&clock_ticks, 1) / 16;
		unsigned who, op;

		r = mix(r + 1);
		who = (unsigned)(r % POOL);
		op = (unsigned)(r >> 32) % 100;
		if (op < 50) {
			e = hm->pool[who];
			e.time = now;
			rc = mp_table_upsert(hm->t, &e, NULL);
		} else if (op < 80) {
			rc = mp_table_select(hm->t, &hm->pool[who].uid, now, 400, out, 10, &n);
			for (k = 0; rc == MP_OK && k < n; k++)
				if (memcmp(&out[k].uid, &hm->pool[who].uid, sizeof out[k].uid) == 0 ||
				    (k > 0 && out[k].time > out[k - 1].time) ||
				    !mp_pubid_matches_uid(&out[k].id, &out[k].uid))
					hm->failed = 1;
		} else if (op < 90) {
			rc = mp_table_delete(hm->t, &hm->pool[who].uid);
			if (rc == MP_ERR_NOTFOUND)
				rc = MP_OK;
		} else if (op < 97) {
			rc = mp_table_set_flags(hm->t, &hm->pool[who].uid, MP_PEER_FAILED, 0);
			if (rc == MP_ERR_NOTFOUND)
				rc = MP_OK;
		} else {
			rc = mp_table_expire(hm->t, now, 300, NULL);
		}
		mp_table_count(hm->t, MP_STAT_REQUESTS, 1);
		if (rc != MP_OK)
			hm->failed = 1;
	}
	return NULL;
}

START_TEST(threads_hammering)
{
	char name[64];
	mp_table *t;
	static mp_table_entry pool[POOL];
	struct hammer hm[4];
	pthread_t th[4];
	unsigned i;

	table_name(name, sizeof name, "threads");
	t = fresh(name, 128);
	for (i = 0; i < POOL; i++)
		member(i, 0, &pool[i]);
	for (i = 0; i < 4; i++) {
		hm[i] = (struct hammer){ .t = t, .pool = pool, .seed = i * 7919 + 1 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer_run, &hm[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(!hm[i].failed, "thread %u saw a failure", i);
	}
	ck_assert_uint_eq(counter(t, MP_STAT_REQUESTS), 4 * HAMMER_OPS);
	ck_assert_uint_gt(counter(t, MP_STAT_EVICTIONS), 0);
	ck_assert_uint_le(entries(t), 128);
	done(t, name);
}
END_TEST

/* A second process attaches by name and sees entries and counters. */
START_TEST(second_process)
{
	char name[64];
	mp_table *t;
	unsigned i;
	pid_t pid;
	int status;

	table_name(name, sizeof name, "process");
	t = fresh(name, 16);
	for (i = 0; i < 5; i++)
		put(t, i, T0 + i);
	mp_table_count(t, MP_STAT_REPLIES, 42);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		mp_table *c = NULL;
		mp_table_entry out[16], e;
		mp_table_stats st;
		size_t n;
		int bad = 0;

		mp_table_close(t);      /* the parent's; this process opens its own */
		if (mp_table_open(name, 0, 0, 0, &c) != MP_OK)
			_exit(10);
		mp_table_stats_get(c, &st);
		bad |= st.capacity != 16 || st.entries != 5 || st.counter[MP_STAT_REPLIES] != 42;
		bad |= mp_table_select(c, NULL, T0 + 5, 0, out, 16, &n) != MP_OK || n != 5 ||
		       strcmp(out[0].name, "member 4") != 0 || out[4].time != T0;
		member(100, T0 + 10, &e);
		bad |= mp_table_upsert(c, &e, NULL) != MP_OK;
		mp_table_count(c, MP_STAT_REPLIES, 1);
		mp_table_close(c);
		_exit(bad ? 11 : 0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert(present(t, 100));
	ck_assert_uint_eq(entries(t), 6);
	ck_assert_uint_eq(counter(t, MP_STAT_REPLIES), 43);
	done(t, name);
}
END_TEST

#ifndef MP_TEST_REDIS
/* Several processes create the same table at once: exactly one
 * initialises it, nobody sees it half made, nothing is lost. */
START_TEST(concurrent_creation)
{
	char name[64], c;
	mp_table *t = NULL;
	pid_t pid[6];
	int go[2], status, k, round;

	for (round = 0; round < 5; round++) {
		char what[32];

		snprintf(what, sizeof what, "create%d", round);
		table_name(name, sizeof name, what);
		ck_assert_int_eq(pipe(go), 0);
		for (k = 0; k < 6; k++) {
			pid[k] = fork();
			ck_assert_int_ge(pid[k], 0);
			if (pid[k] == 0) {
				mp_table *ct = NULL;
				mp_table_entry e;
				/* two attach only, the others create */
				int how = k < 2 ? 0 : MP_TABLE_CREATE;
				int rc, tries = 0;

				close(go[1]);
				if (read(go[0], &c, 1) != 0)    /* wait for the start */
					_exit(1);
				/* an attacher may come before any creator: NOTFOUND,
				 * try again; anything else (a half-made table) fails */
				while ((rc = mp_table_shm_open(name, k < 2 ? 0 : 16, how, 0600, &ct))
				       == MP_ERR_NOTFOUND && k < 2 && ++tries < 2000)
					usleep(1000);
				if (rc != MP_OK)
					_exit(2);
				member((unsigned)k, T0 + (unsigned)k, &e);
				if (mp_table_upsert(ct, &e, NULL) != MP_OK)
					_exit(3);
				mp_table_count(ct, MP_STAT_REQUESTS, 1);
				mp_table_close(ct);
				_exit(0);
			}
		}
		close(go[0]);
		close(go[1]);                   /* go */
		for (k = 0; k < 6; k++) {
			ck_assert_int_eq(waitpid(pid[k], &status, 0), pid[k]);
			ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			              "process %d failed (status %#x)", k, status);
		}
		ck_assert_int_eq(mp_table_shm_open(name, 16, 0, 0, &t), MP_OK);
		for (k = 0; k < 6; k++)
			ck_assert(present(t, (unsigned)k));
		ck_assert_uint_eq(entries(t), 6);
		ck_assert_uint_eq(counter(t, MP_STAT_REQUESTS), 6);
		done(t, name);
	}
}
END_TEST

/* ---------------------------------------------------------------- recovery */

/* A lock holder that is simply killed. */
START_TEST(recovery_after_lock_holder_killed)
{
	char name[64], c;
	mp_table *t;
	static mp_table_entry before[200], after[200];
	size_t nbefore, nafter;
	int fds[2], status;
	uint64_t repairs;
	pid_t pid;
	unsigned i;

	table_name(name, sizeof name, "killed");
	t = fresh(name, 200);
	/* enough entries for repair's array sort, with ties, updates and
	 * deletions, so that slot order is not time order */
	for (i = 0; i < 150; i++)
		put(t, i, T0 + i / 3);
	for (i = 0; i < 150; i += 7)
		put(t, i, T0 + 60 + i % 5);
	for (i = 3; i < 150; i += 11) {
		mp_table_entry e;

		member(i, 0, &e);
		ck_assert_int_eq(mp_table_delete(t, &e.uid), MP_OK);
	}
	ck_assert_int_eq(mp_table_select(t, NULL, T0, 0, before, 200, &nbefore), MP_OK);
	ck_assert_uint_eq(nbefore, 150 - 14);
	repairs = mp_table_shm_debug_repairs(t);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		mp_table *ct = NULL;

		close(fds[0]);
		if (mp_table_shm_open(name, 0, 0, 0, &ct) != MP_OK ||
		    mp_table_shm_debug_lock(ct) != MP_OK)
			_exit(1);
		if (write(fds[1], "L", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);   /* the child holds the lock */
	close(fds[0]);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	/* the next op repairs; the same entries come back in time order */
	ck_assert_int_eq(mp_table_select(t, NULL, T0, 0, after, 200, &nafter), MP_OK);
	ck_assert_uint_eq(mp_table_shm_debug_repairs(t), repairs + 1);
	ck_assert_uint_eq(nafter, nbefore);
	for (i = 0; i < nafter; i++) {
		size_t j;

		if (i > 0)
			ck_assert_uint_le(after[i].time, after[i - 1].time);
		for (j = 0; j < nbefore; j++)
			if (memcmp(&after[i], &before[j], sizeof after[i]) == 0)
				break;
		ck_assert_msg(j < nbefore, "entry %u changed in repair", i);
	}
	put(t, 500, T0 + 100);
	ck_assert_uint_eq(entries(t), nbefore + 1);
	done(t, name);
}
END_TEST

enum op { OP_UPSERT, OP_DELETE, OP_FLUSH };

/* Run one operation in a child that dies half-way through it. */
static void
die_during(const char *name, enum mp_table_shm_crash where, enum op op, const mp_table_entry *e)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		mp_table *ct = NULL;

		if (mp_table_shm_open(name, 0, 0, 0, &ct) != MP_OK)
			_exit(1);
		mp_table_shm_debug_crash_at(ct, where);
		if (op == OP_UPSERT)
			mp_table_upsert(ct, e, NULL);
		else if (op == OP_DELETE)
			mp_table_delete(ct, &e->uid);
		else
			mp_table_flush(ct);
		_exit(2);               /* did not reach the crash point */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	              "child did not die at crash point %d", (int)where);
}

/* In each case the table must come back consistent, with the operation
 * either done completely or not at all. */
START_TEST(recovery_from_half_operations)
{
	char name[64];
	mp_table *t;
	mp_table_entry e, got;
	uint64_t repairs;
	unsigned i, cap = 8;

	table_name(name, sizeof name, "half");
	t = fresh(name, cap);
	for (i = 0; i < 6; i++)
		put(t, i, T0 + i);
	repairs = mp_table_shm_debug_repairs(t);

	/* a new entry half written: not there */
	member(20, T0 + 20, &e);
	die_during(name, MP_TABLE_CRASH_INSERT_DATA, OP_UPSERT, &e);
	ck_assert(!present(t, 20));
	ck_assert_uint_eq(mp_table_shm_debug_repairs(t), ++repairs);
	ck_assert_uint_eq(entries(t), 6);
	consistent(t);

	/* a new entry committed but half linked: there, and newest */
	die_during(name, MP_TABLE_CRASH_INSERT_LINK, OP_UPSERT, &e);
	ck_assert(present(t, 20));
	ck_assert_uint_eq(mp_table_shm_debug_repairs(t), ++repairs);
	ck_assert_uint_eq(entries(t), 7);
	consistent(t);
	{
		mp_table_entry out[1];
		size_t n;

		ck_assert_int_eq(mp_table_select(t, NULL, T0, 0, out, 1, &n), MP_OK);
		ck_assert_str_eq(out[0].name, "member 20");
	}

	/* an update half written: the old version back, whole */
	member(2, T0 + 30, &e);
	strcpy(e.name, "changed");
	strcpy(e.reply_addr, "changed@example.org");
	e.ep.ncand = 1;
	die_during(name, MP_TABLE_CRASH_UPDATE_DATA, OP_UPSERT, &e);
	ck_assert_int_eq(mp_table_get(t, &e.uid, &got), MP_OK);
	ck_assert_uint_eq(mp_table_shm_debug_repairs(t), ++repairs);
	member(2, T0 + 2, &e);
	ck_assert(memcmp(&got, &e, sizeof e) == 0);
	consistent(t);

	/* fill up, then an eviction half written: the old one back */
	put(t, 21, T0 + 21);
	ck_assert_uint_eq(entries(t), cap);
	member(22, T0 + 22, &e);
	die_during(name, MP_TABLE_CRASH_EVICT_DATA, OP_UPSERT, &e);
	ck_assert(!present(t, 22));
	ck_assert(present(t, 0));               /* the oldest survived */
	ck_assert_uint_eq(mp_table_shm_debug_repairs(t), ++repairs);
	ck_assert_uint_eq(entries(t), cap);
	ck_assert_uint_eq(counter(t, MP_STAT_EVICTIONS), 0);
	consistent(t);

	/* a delete half done: gone */
	member(4, 0, &e);
	die_during(name, MP_TABLE_CRASH_DELETE_LINK, OP_DELETE, &e);
	ck_assert(!present(t, 4));
	ck_assert_uint_eq(mp_table_shm_debug_repairs(t), ++repairs);
	ck_assert_uint_eq(entries(t), cap - 1);
	consistent(t);

	/* a flush half done: finished */
	die_during(name, MP_TABLE_CRASH_FLUSH, OP_FLUSH, &e);
	ck_assert_uint_eq(mp_table_shm_debug_repairs(t), ++repairs);
	for (i = 0; i < 6; i++)
		ck_assert(!present(t, i));
	ck_assert_uint_eq(entries(t), 0);
	consistent(t);
	put(t, 1, T0);
	ck_assert_uint_eq(entries(t), 1);
	done(t, name);
}
END_TEST

/* Repair drops entries that fail validation, and keeps the rest. */
START_TEST(repair_drops_invalid_entries)
{
	char name[64], c;
	mp_table *t;
	mp_table_entry e;
	unsigned char *map;
	size_t size, esz = mp_table_shm_entry_size(), off;
	int fd, fds[2], status;
	unsigned i;
	pid_t pid;

	table_name(name, sizeof name, "invalid");
	t = fresh(name, 8);
	for (i = 0; i < 4; i++)
		put(t, i, T0 + i);
	size = mp_table_shm_mapping_size(8);
	fd = shm_open(name, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(map != MAP_FAILED);
	close(fd);
	/* entries are the last 8 * esz bytes; slots fill in order */
	off = size - 8 * esz;
	member(1, 0, &e);
	ck_assert(memcmp(map + off + esz + MP_TABLE_SHM_ENTRY_UID_OFFSET, &e.uid,
	                 sizeof e.uid) == 0);
	/* member 1's id no longer hashes to its uid; member 2's name is
	 * not terminated */
	map[off + esz + MP_TABLE_SHM_ENTRY_ID_OFFSET] ^= 1;
	memset(map + off + 2 * esz + MP_TABLE_SHM_ENTRY_NAME_OFFSET, 'x', MP_NAME_MAX + 1);

	/* kill a lock holder so that the next locker repairs */
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		if (mp_table_shm_debug_lock(t) != MP_OK || write(fds[1], "L", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(present(t, 0));
	ck_assert(!present(t, 1));
	ck_assert(!present(t, 2));
	ck_assert(present(t, 3));
	ck_assert_uint_eq(entries(t), 2);
	munmap(map, size);
	done(t, name);
}
END_TEST

/* ---------------------------------------------------------------- storage */

static void
poke(const char *name, size_t size, size_t off, const void *bytes, size_t n, void *saved)
{
	int fd = name[0] == '/' && !strchr(name + 1, '/') ? shm_open(name, O_RDWR, 0)
	                                                  : open(name, O_RDWR);
	unsigned char *map;

	ck_assert_int_ge(fd, 0);
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(map != MAP_FAILED);
	close(fd);
	if (saved)
		memcpy(saved, map + off, n);
	memcpy(map + off, bytes, n);
	munmap(map, size);
}

START_TEST(mismatched_header_refused)
{
	char name[64];
	mp_table *t, *t2 = NULL;
	size_t size = mp_table_shm_mapping_size(16);
	unsigned char junk = 0x5a, saved[8];
	mp_table_stats st;

	table_name(name, sizeof name, "mismatch");
	t = fresh(name, 16);
	put(t, 1, T0);
	ck_assert_int_eq(mp_table_shm_open(name, 32, 0, 0, &t2), MP_ERR_INCOMPATIBLE);
	ck_assert_ptr_null(t2);
	ck_assert_int_eq(mp_table_shm_open(name, 32, MP_TABLE_CREATE, 0600, &t2),
	                 MP_ERR_INCOMPATIBLE);
	ck_assert_int_eq(mp_table_shm_open(name, 16, 0, 0, &t2), MP_OK);
	mp_table_close(t2);
	ck_assert_int_eq(mp_table_shm_open(name, 0, 0, 0, &t2), MP_OK);
	mp_table_stats_get(t2, &st);
	ck_assert_uint_eq(st.capacity, 16);
	mp_table_close(t2);

	poke(name, size, MP_TABLE_SHM_MAGIC_OFFSET, &junk, 1, saved);
	ck_assert_int_eq(mp_table_shm_open(name, 0, MP_TABLE_CREATE, 0600, &t2),
	                 MP_ERR_INCOMPATIBLE);
	poke(name, size, MP_TABLE_SHM_MAGIC_OFFSET, saved, 1, NULL);
	poke(name, size, MP_TABLE_SHM_VERSION_OFFSET, &junk, 1, saved);
	ck_assert_int_eq(mp_table_shm_open(name, 16, 0, 0, &t2), MP_ERR_INCOMPATIBLE);
	poke(name, size, MP_TABLE_SHM_VERSION_OFFSET, saved, 1, NULL);
	ck_assert_int_eq(mp_table_shm_open(name, 16, 0, 0, &t2), MP_OK);
	ck_assert(present(t2, 1));
	mp_table_close(t2);
	done(t, name);
}
END_TEST

START_TEST(missing_and_bad_names)
{
	char name[64];
	mp_table *t = NULL;

	table_name(name, sizeof name, "missing");
	ck_assert_int_eq(mp_table_shm_open(name, 16, 0, 0, &t), MP_ERR_NOTFOUND);
	ck_assert_int_eq(mp_table_shm_open(name, 0, MP_TABLE_CREATE, 0600, &t), MP_ERR_NOTFOUND);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(mp_table_shm_open("relative", 16, MP_TABLE_CREATE, 0600, &t),
	                 MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_shm_open("/", 16, MP_TABLE_CREATE, 0600, &t), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_shm_open(NULL, 16, MP_TABLE_CREATE, 0600, &t), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_shm_open(name, MP_TABLE_SHM_MAX_CAPACITY + 1,
	                                   MP_TABLE_CREATE, 0600, &t), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_shm_open(name, 16, 0x100, 0600, &t), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_shm_open(name, 16, MP_TABLE_CREATE, 0600, NULL), MP_ERR_INVAL);
	ck_assert_int_eq(mp_table_shm_open("/nonexistent-dir/x/table", 16, MP_TABLE_CREATE,
	                                   0600, &t), MP_ERR_NOTFOUND);
	ck_assert_int_eq(mp_table_shm_unlink(name), MP_ERR_NOTFOUND);
	ck_assert_int_eq(mp_table_shm_unlink("x"), MP_ERR_INVAL);
}
END_TEST

static void
temp_path(char *dir, size_t dlen, char *path, size_t plen)
{
	snprintf(dir, dlen, "/tmp/mp-test-table-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, plen, "%s/table", dir);
}

START_TEST(file_backed_survives_reopen)
{
	char dir[64], path[96];
	mp_table *t = NULL;
	mp_table_entry out[8];
	struct stat st;
	size_t n;
	unsigned i;
	mode_t old = umask(077);

	temp_path(dir, sizeof dir, path, sizeof path);
	ck_assert_int_eq(mp_table_shm_open(path, 8, MP_TABLE_CREATE, 0660, &t), MP_OK);
	umask(old);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0660);    /* not narrowed by the umask */
	ck_assert_uint_eq((size_t)st.st_size, mp_table_shm_mapping_size(8));
	for (i = 0; i < 5; i++)
		put(t, i, T0 + i);
	mp_table_count(t, MP_STAT_SIGNALS, 9);
	mp_table_close(t);

	ck_assert_int_eq(mp_table_shm_open(path, 0, 0, 0, &t), MP_OK);
	ck_assert_int_eq(mp_table_select(t, NULL, T0, 0, out, 8, &n), MP_OK);
	ck_assert_uint_eq(n, 5);
	for (i = 0; i < 5; i++)
		ck_assert_uint_eq(out[i].time, T0 + 4 - i);
	ck_assert_uint_eq(counter(t, MP_STAT_SIGNALS), 9);
	consistent(t);
	mp_table_close(t);
	ck_assert_int_eq(mp_table_shm_unlink(path), MP_OK);
	ck_assert_int_eq(mp_table_shm_open(path, 0, 0, 0, &t), MP_ERR_NOTFOUND);
	ck_assert_int_eq(mp_table_shm_unlink(path), MP_ERR_NOTFOUND);
	rmdir(dir);
}
END_TEST

/* A file-backed table from a previous boot: its mutex may name an owner
 * that no longer exists (no robust-list cleanup happened).  Simulated by
 * a foreign boot ID and a lock word naming a thread that is not there. */
START_TEST(file_backed_after_reboot)
{
	char dir[64], path[96];
	mp_table *t = NULL;
	size_t size = mp_table_shm_mapping_size(8);
	static const char other_boot[40] = "00000000-1111-2222-3333-444444444444";
	int ghost = 0x3ffffff0;     /* beyond pid_max: certainly not alive */
	unsigned i;

	temp_path(dir, sizeof dir, path, sizeof path);
	ck_assert_int_eq(mp_table_shm_open(path, 8, MP_TABLE_CREATE, 0600, &t), MP_OK);
	for (i = 0; i < 3; i++)
		put(t, i, T0 + i);
	mp_table_close(t);
	poke(path, size, MP_TABLE_SHM_BOOT_ID_OFFSET, other_boot, sizeof other_boot, NULL);
#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))
	/* glibc keeps the owner's TID in the mutex's first word */
	poke(path, size, MP_TABLE_SHM_LOCK_OFFSET, &ghost, sizeof ghost, NULL);
#else
	(void)ghost;
#endif
	ck_assert_int_eq(mp_table_shm_open(path, 8, 0, 0, &t), MP_OK);
	ck_assert_uint_eq(mp_table_shm_debug_repairs(t), 1);
	for (i = 0; i < 3; i++)
		ck_assert(present(t, i));
	put(t, 3, T0 + 3);
	consistent(t);
	mp_table_close(t);
	/* the same boot again: no repair */
	ck_assert_int_eq(mp_table_shm_open(path, 8, 0, 0, &t), MP_OK);
	ck_assert_uint_eq(mp_table_shm_debug_repairs(t), 1);
	mp_table_close(t);
	ck_assert_int_eq(mp_table_shm_unlink(path), MP_OK);
	rmdir(dir);
}
END_TEST

/* Never reinterpret what is not ours; re-initialise what a dead creator
 * left all zero. */
START_TEST(foreign_and_abandoned_files)
{
	char dir[64], path[96], buf[8192], back[8192];
	mp_table *t = NULL;
	int fd;

	temp_path(dir, sizeof dir, path, sizeof path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello\n", 6), 6);
	ck_assert_int_eq(mp_table_shm_open(path, 8, MP_TABLE_CREATE, 0600, &t),
	                 MP_ERR_INCOMPATIBLE);
	memset(buf, 0xaa, sizeof buf);
	ck_assert_int_eq(pwrite(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	ck_assert_int_eq(mp_table_shm_open(path, 8, MP_TABLE_CREATE, 0600, &t),
	                 MP_ERR_INCOMPATIBLE);
	ck_assert_int_eq(pread(fd, back, sizeof back, 0), (ssize_t)sizeof back);
	ck_assert(memcmp(buf, back, sizeof buf) == 0);  /* untouched */

	/* as if a creator died after sizing the file */
	memset(buf, 0, sizeof buf);
	ck_assert_int_eq(pwrite(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	close(fd);
	ck_assert_int_eq(mp_table_shm_open(path, 8, 0, 0, &t), MP_ERR_NOTFOUND);
	ck_assert_int_eq(mp_table_shm_open(path, 8, MP_TABLE_CREATE, 0600, &t), MP_OK);
	put(t, 1, T0);
	consistent(t);
	mp_table_close(t);
	ck_assert_int_eq(mp_table_shm_unlink(path), MP_OK);
	rmdir(dir);
}
END_TEST

#endif


#ifdef MP_TEST_REDIS
/* ---------------------------------------------------------------- Redis only */

#include <netinet/in.h>
#include <sys/socket.h>
#include <hiredis/hiredis.h>

/* A free loopback port (the kernel's choice; a small race is harmless
 * here: start_redis() fails visibly if someone took it meanwhile). */
static int
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* redis-server on 127.0.0.1:port, no persistence; its pid once it
 * answers PING, or -1. */
static pid_t
start_redis(int port)
{
	char ps[16];
	pid_t pid;
	int i;

	snprintf(ps, sizeof ps, "%d", port);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1",
		       "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", "/tmp",
		       (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		struct timeval tv = { 0, 200000 };
		redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
		redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
		int ok = r && r->type == REDIS_REPLY_STATUS;

		if (r)
			freeReplyObject(r);
		if (c)
			redisFree(c);
		if (ok)
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void
stop_redis(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

START_TEST(redis_urls_and_attach)
{
	char name[96], other[96];
	mp_table *t, *a = NULL;
	mp_table_stats st;

	ck_assert_int_eq(mp_table_redis_open("http://127.0.0.1", 16, MP_TABLE_CREATE, &a), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_table_redis_open("redis://", 16, MP_TABLE_CREATE, &a), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_table_redis_open("redis://h:0", 16, MP_TABLE_CREATE, &a), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_table_redis_open("redis://h:1/x", 16, MP_TABLE_CREATE, &a), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_table_redis_open("redis://h:1?pre=x", 16, MP_TABLE_CREATE, &a), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_table_redis_open("redis://h:1?prefix=", 16, MP_TABLE_CREATE, &a), MP_ERR_SYNTAX);
	ck_assert_ptr_null(a);
	ck_assert(mp_table_is_redis("REDIS://x"));
	ck_assert(mp_table_redis_url_ok("redis://h"));
	ck_assert(mp_table_redis_url_ok("redis://[::1]:7000/3?prefix={mp}"));
	ck_assert(!mp_table_redis_url_ok("redis://h:99999"));
	ck_assert(!mp_table_redis_url_ok("redis://h/1?prefix=a b"));
	ck_assert(!mp_table_is_redis("/mailpunch"));

	table_name(name, sizeof name, "attach");
	ck_assert_int_eq(mp_table_redis_open(name, 0, MP_TABLE_CREATE, &a), MP_ERR_NOTFOUND);
	t = fresh(name, 16);
	put(t, 1, T0);
	ck_assert_int_eq(mp_table_redis_open(name, 17, MP_TABLE_CREATE, &a), MP_ERR_INCOMPATIBLE);
	ck_assert_int_eq(mp_table_redis_open(name, 0, 0, &a), MP_OK);
	mp_table_stats_get(a, &st);
	ck_assert_uint_eq(st.capacity, 16);
	ck_assert_uint_eq(st.entries, 1);
	ck_assert(present(a, 1));
	mp_table_close(a);
	/* db and prefix separate tables */
	snprintf(other, sizeof other, "redis://127.0.0.1:%d/3?prefix=t%ld-attach", redis_port,
	         (long)getpid());
	ck_assert_int_eq(mp_table_redis_open(other, 0, 0, &a), MP_ERR_NOTFOUND);
	done(t, name);
}
END_TEST

/* Two handles on one table, as two MX machines: each sees the other's
 * writes at once, and counters add up. */
START_TEST(redis_two_handles_share)
{
	char name[96];
	mp_table *a, *b;
	mp_table_entry e, oa[8], ob[8];
	size_t na, nb;

	table_name(name, sizeof name, "share");
	a = fresh(name, 8);
	ck_assert_int_eq(mp_table_redis_open(name, 8, MP_TABLE_CREATE, &b), MP_OK);
	put(a, 1, T0);
	put(b, 2, T0 + 1);
	put(a, 3, T0 + 1);
	member(1, 0, &e);
	ck_assert_int_eq(mp_table_set_flags(b, &e.uid, MP_PEER_FAILED, 0), MP_OK);
	mp_table_count(a, MP_STAT_REPLIES, 2);
	mp_table_count(b, MP_STAT_REPLIES, 3);
	ck_assert_int_eq(mp_table_select(a, NULL, T0 + 2, 0, oa, 8, &na), MP_OK);
	ck_assert_int_eq(mp_table_select(b, NULL, T0 + 2, 0, ob, 8, &nb), MP_OK);
	ck_assert_uint_eq(na, 3);
	ck_assert_uint_eq(nb, 3);
	ck_assert(memcmp(oa, ob, na * sizeof oa[0]) == 0);
	ck_assert_str_eq(oa[0].name, "member 3");
	ck_assert_uint_eq(oa[2].flags, MP_PEER_FAILED);
	ck_assert_uint_eq(counter(b, MP_STAT_REPLIES), 5);
	mp_table_close(b);
	done(a, name);
}
END_TEST

/* The same random sequence of operations on a shared-memory table and
 * a Redis table: every result and every selection must be identical. */
START_TEST(redis_same_answers_as_shm)
{
	char name[96], shm[64];
	mp_table *r, *m = NULL;
	mp_table_entry e, outr[16], outm[16];
	uint64_t x = 12345, now = T0;
	size_t nr, nm, dr, dm;
	int i, rcr, rcm, wr, wm;

	table_name(name, sizeof name, "same");
	snprintf(shm, sizeof shm, "/mp-test-table-%ld-same", (long)getpid());
	mp_table_shm_unlink(shm);
	r = fresh(name, 24);
	ck_assert_int_eq(mp_table_shm_open(shm, 24, MP_TABLE_CREATE, 0600, &m), MP_OK);
	for (i = 0; i < 3000; i++) {
		unsigned who, op;

		x = mix(x + 1);
		who = (unsigned)(x % 40);
		op = (unsigned)(x >> 32) % 100;
		if (x % 3 == 0)
			now++;
		if (op < 55) {
			/* mostly now; some merges from the past; ties happen */
			member(who, op < 45 ? now : now - (x >> 20) % 200, &e);
			if (op == 7) {          /* another key claims who's uid */
				mp_uid u = e.uid;

				member(who + 1000, now, &e);
				e.uid = u;
			}
			rcr = mp_table_upsert(r, &e, &wr);
			rcm = mp_table_upsert(m, &e, &wm);
			ck_assert_int_eq(rcr, rcm);
			if (rcr == MP_OK)
				ck_assert_int_eq(wr, wm);
		} else if (op < 80) {
			member(who, 0, &e);
			rcr = mp_table_select(r, op & 1 ? &e.uid : NULL, now, op & 2 ? 60 : 0, outr,
			                      1 + op % 16, &nr);
			rcm = mp_table_select(m, op & 1 ? &e.uid : NULL, now, op & 2 ? 60 : 0, outm,
			                      1 + op % 16, &nm);
			ck_assert_int_eq(rcr, MP_OK);
			ck_assert_int_eq(rcm, MP_OK);
			ck_assert_uint_eq(nr, nm);
			ck_assert_msg(memcmp(outr, outm, nr * sizeof outr[0]) == 0, "step %d differs", i);
		} else if (op < 88) {
			member(who, 0, &e);
			ck_assert_int_eq(mp_table_delete(r, &e.uid), mp_table_delete(m, &e.uid));
		} else if (op < 96) {
			member(who, 0, &e);
			ck_assert_int_eq(mp_table_set_flags(r, &e.uid, op & 1, op & 2 ? 1 : 0),
			                 mp_table_set_flags(m, &e.uid, op & 1, op & 2 ? 1 : 0));
		} else {
			ck_assert_int_eq(mp_table_expire(r, now, 100, &dr), MP_OK);
			ck_assert_int_eq(mp_table_expire(m, now, 100, &dm), MP_OK);
			ck_assert_uint_eq(dr, dm);
		}
		ck_assert_uint_eq(entries(r), entries(m));
	}
	ck_assert_uint_eq(counter(r, MP_STAT_EVICTIONS), counter(m, MP_STAT_EVICTIONS));
	ck_assert_uint_eq(counter(r, MP_STAT_EXPIRATIONS), counter(m, MP_STAT_EXPIRATIONS));
	mp_table_close(m);
	mp_table_shm_unlink(shm);
	done(r, name);
}
END_TEST

/* A server that wants a password: the URL carries it (and only a
 * redacted form of the URL is ever shown). */
START_TEST(redis_password)
{
	char name[160], shown[160];
	mp_table *t = NULL;
	int port = free_port();
	pid_t pid = -1;

	ck_assert_int_gt(port, 0);
	{
		char ps[16];

		snprintf(ps, sizeof ps, "%d", port);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			int fd = open("/dev/null", O_WRONLY);

			dup2(fd, 1);
			dup2(fd, 2);
			execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1",
			       "--save", "", "--appendonly", "no", "--requirepass", "s3cr@t",
			       "--dir", "/tmp", (char *)NULL);
			_exit(127);
		}
	}
	for (int i = 0; i < 500; i++) {         /* until it listens */
		struct timeval tv = { 0, 200000 };
		redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
		int up = c && !c->err;

		if (c)
			redisFree(c);
		if (up)
			break;
		usleep(10000);
	}
	snprintf(name, sizeof name, "redis://127.0.0.1:%d?prefix=pw", port);
	ck_assert_int_eq(mp_table_redis_open(name, 8, MP_TABLE_CREATE, &t), MP_ERR_UNAVAILABLE);
	snprintf(name, sizeof name, "redis://:wrong@127.0.0.1:%d?prefix=pw", port);
	usleep(600 * 1000);
	ck_assert_int_eq(mp_table_redis_open(name, 8, MP_TABLE_CREATE, &t), MP_ERR_UNAVAILABLE);
	snprintf(name, sizeof name, "redis://default:s3cr@t@127.0.0.1:%d?prefix=pw", port);
	ck_assert_int_eq(mp_table_redis_open(name, 8, MP_TABLE_CREATE, &t), MP_OK);
	put(t, 1, T0);
	ck_assert(present(t, 1));
	mp_table_close(t);
	snprintf(name, sizeof name, "redis://:s3cr@t@127.0.0.1:%d/2?prefix=pw", port);
	ck_assert_int_eq(mp_table_redis_open(name, 8, MP_TABLE_CREATE, &t), MP_OK);
	ck_assert(!present(t, 1));              /* another database */
	mp_table_close(t);
	mp_table_spec_redacted(name, shown, sizeof shown);
	ck_assert_ptr_null(strstr(shown, "s3cr"));
	ck_assert_ptr_nonnull(strstr(shown, "redis://***@127.0.0.1:"));
	mp_table_spec_redacted("/mailpunch", shown, sizeof shown);
	ck_assert_str_eq(shown, "/mailpunch");
	ck_assert_int_eq(mp_table_redis_open("redis://nocolon@h", 8, 0, &t), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_table_redis_open("redis://u:@h", 8, 0, &t), MP_ERR_SYNTAX);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

/* The server goes away: every call says UNAVAILABLE (never a wrong
 * answer), quickly; when it is back (empty: no persistence), the table
 * works again without reopening. */
START_TEST(redis_server_away_and_back)
{
	char name[96];
	mp_table *t;
	mp_table_entry e, out[4];
	size_t n;
	int port = free_port();
	pid_t pid;
	time_t t0;

	ck_assert_int_gt(port, 0);
	pid = start_redis(port);
	ck_assert_int_gt(pid, 0);
	snprintf(name, sizeof name, "redis://127.0.0.1:%d?prefix=away", port);
	t = fresh(name, 8);
	put(t, 1, T0);
	stop_redis(pid);
	member(2, T0 + 1, &e);
	t0 = time(NULL);
	ck_assert_int_eq(mp_table_upsert(t, &e, NULL), MP_ERR_UNAVAILABLE);
	ck_assert_int_eq(mp_table_select(t, NULL, T0, 0, out, 4, &n), MP_ERR_UNAVAILABLE);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(mp_table_get(t, &e.uid, out), MP_ERR_UNAVAILABLE);
	ck_assert_int_eq(mp_table_set_flags(t, &e.uid, 1, 0), MP_ERR_UNAVAILABLE);
	ck_assert_int_eq(mp_table_delete(t, &e.uid), MP_ERR_UNAVAILABLE);
	ck_assert_int_eq(mp_table_expire(t, T0, 10, NULL), MP_ERR_UNAVAILABLE);
	ck_assert_int_eq(mp_table_flush(t), MP_ERR_UNAVAILABLE);
	mp_table_count(t, MP_STAT_REQUESTS, 1);         /* silently lost */
	ck_assert_int_le(time(NULL) - t0, 3);
	ck_assert_int_eq(mp_table_redis_open(name, 8, MP_TABLE_CREATE, &(mp_table *){ NULL }),
	                 MP_ERR_UNAVAILABLE);

	pid = start_redis(port);
	ck_assert_int_gt(pid, 0);
	usleep(600 * 1000);                              /* past the back-off */
	ck_assert_int_eq(mp_table_upsert(t, &e, NULL), MP_OK);
	ck_assert_int_eq(mp_table_select(t, NULL, T0 + 1, 0, out, 4, &n), MP_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(out[0].name, "member 2");
	mp_table_close(t);
	stop_redis(pid);
}
END_TEST
#endif

Suite *table_suite(void);

Suite *
table_suite(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase_create("contract");
	TCase *tp = tcase_create("processes");
	TCase *ts = tcase_create("storage");

	tcase_add_test(tc, roundtrip_fields);
	tcase_add_test(tc, bad_arguments_refused);
	tcase_add_test(tc, capacity_and_eviction_order);
	tcase_add_test(tc, newest_first_and_sorted_inserts);
	tcase_add_test(tc, exclusion_of_requester);
	tcase_add_test(tc, expiry);
#ifndef MP_TEST_REDIS
	tcase_add_test(tc, select_stops_at_first_too_old);
#endif
	tcase_add_test(tc, flags);
	tcase_add_test(tc, conflict_leaves_table_unchanged);
	tcase_add_test(tc, merge_newer_wins);
	tcase_add_test(tc, delete_and_flush);
	tcase_add_test(tc, counters_and_names);
	suite_add_tcase(s, tc);

	tcase_set_timeout(tp, 120);
	tcase_add_test(tp, threads_hammering);
	tcase_add_test(tp, second_process);
#ifdef MP_TEST_REDIS
	suite_add_tcase(s, tp);
	tcase_set_timeout(ts, 60);
	tcase_add_test(ts, redis_urls_and_attach);
	tcase_add_test(ts, redis_two_handles_share);
	tcase_add_test(ts, redis_same_answers_as_shm);
	tcase_add_test(ts, redis_server_away_and_back);
	tcase_add_test(ts, redis_password);
	suite_add_tcase(s, ts);
	return s;
#else
	tcase_add_test(tp, concurrent_creation);
	tcase_add_test(tp, recovery_after_lock_holder_killed);
	tcase_add_test(tp, recovery_from_half_operations);
	tcase_add_test(tp, repair_drops_invalid_entries);
	suite_add_tcase(s, tp);

	tcase_set_timeout(ts, 60);
	tcase_add_test(ts, mismatched_header_refused);
	tcase_add_test(ts, missing_and_bad_names);
	tcase_add_test(ts, file_backed_survives_reopen);
	tcase_add_test(ts, file_backed_after_reboot);
	tcase_add_test(ts, foreign_and_abandoned_files);
	suite_add_tcase(s, ts);
	return s;
#endif
}

#ifdef MP_TEST_REDIS
int
main(void)
{
	SRunner *sr;
	pid_t pid;
	int failed;

	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		printf("redis-server not installed: skipped\n");
		return 77;
	}
	redis_port = free_port();
	if (redis_port <= 0 || (pid = start_redis(redis_port)) < 0) {
		printf("cannot start redis-server\n");
		return EXIT_FAILURE;
	}
	sr = srunner_create(table_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	stop_redis(pid);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
#else
MP_TEST_MAIN(table_suite)
#endif
