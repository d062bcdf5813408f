/*
 * bench_table.c - micro-benchmark of the shared-memory control table.
 *
 * Usage: bench_table [capacity]        (default 1000000)
 *
 * Fills a fresh table to capacity, then measures single-thread ops/s
 * for upserts of present members, select(10), a 50/50 mix, inserts that
 * evict the oldest, and the mix from two threads.  Machines here are
 * noisy, so each figure is also printed as a ratio against a baseline
 * measured in the same process: a loop copying an entry into a random
 * slot of a plain array of the same size (and, for two threads, the
 * single-thread mix).  Last, a lock holder is killed and the repair
 * that the next operation does is timed.  Every phase is time-bounded; the whole run stops
 * by itself in well under 30 s.  Exit status 0 unless something fails.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mailpunch/error.h"
#include "mailpunch/keys.h"
#include "mailpunch/table.h"
#include "table_priv.h"

#define PHASE_SECONDS 1.5
#define FILL_SECONDS 8.0
#define SELECT_N 10
#define MAX_AGE 3600

struct member {
	mp_pubid id;
	mp_uid uid;
};

static char table_path[64];
static mp_table *table;
static struct member *pool;
static size_t capacity, npool;
static size_t lo, span;          /* members [lo, lo + span) are in the table */
static uint64_t now_s;

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
next(uint64_t *s)
{
	/* xorshift64*: cheap enough not to show in the figures */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

static void
on_alarm(int sig)
{
	(void)sig;
	/* a safety net only: do not leave half a gigabyte in /dev/shm */
	shm_unlink(table_path);
	_exit(2);
}

static void
fill_template(mp_table_entry *e, size_t who)
{
	e->id = pool[who].id;
	e->uid = pool[who].uid;
	e->time = now_s;
	e->ep.cand[0].addr[3] = (uint8_t)who;
}

static void
template_init(mp_table_entry *e)
{
	memset(e, 0, sizeof *e);
	strcpy(e->name, "A Member");
	strcpy(e->reply_addr, "member@example.org");
	e->ep.ncand = 3;
	e->ep.cand[0] = (mp_candidate){ .kind = 2, .family = 4, .addr = { 203, 0, 113, 7 }, .port = 4500 };
	e->ep.cand[1] = (mp_candidate){ .kind = 1, .family = 4, .addr = { 192, 168, 1, 7 }, .port = 4500 };
	e->ep.cand[2] = (mp_candidate){ .kind = 3, .family = 6,
	                                .addr = { 0x20, 0x01, 0x0d, 0xb8 }, .port = 4501 };
	e->ep.nat = (mp_nat){ .mapping = 1, .filtering = 3, .allocation = 2, .delta = 1 };
}

enum kind { K_UPSERT, K_SELECT, K_MIX };

struct run {
	enum kind kind;
	double seconds;
	uint64_t seed;
	uint64_t ops;
	int failed;
	mp_table_entry out[SELECT_N];
};

static void *
run_phase(void *arg)
{
	struct run *r = arg;
	mp_table_entry e;
	uint64_t s = r->seed, ops = 0;
	double end = seconds() + r->seconds;
	size_t n;

	template_init(&e);
	for (;;) {
		int k;

		/* look at the clock every 256 operations only */
		for (k = 0; k < 256; k++) {
			uint64_t x = next(&s);
			size_t who = lo + (size_t)((x >> 8) % span);
			int sel = r->kind == K_SELECT || (r->kind == K_MIX && (x & 1));

			if (sel) {
				if (mp_table_select(table, &pool[who].uid, now_s, MAX_AGE, r->out,
				                    SELECT_N, &n) != MP_OK || n != SELECT_N)
					r->failed = 1;
			} else {
				fill_template(&e, who);
				if (mp_table_upsert(table, &e, NULL) != MP_OK)
					r->failed = 1;
			}
		}
		ops += 256;
		if (seconds() >= end)
			break;
	}
	r->ops = ops;
	return NULL;
}

static double
measure(enum kind kind, uint64_t seed)
{
	struct run r = { .kind = kind, .seconds = PHASE_SECONDS, .seed = seed };
	double t0 = seconds();

	run_phase(&r);
	if (r.failed) {
		fprintf(stderr, "bench_table: an operation failed\n");
		exit(1);
	}
	return (double)r.ops / (seconds() - t0);
}

/* The baseline: copy an entry's worth of bytes to a random slot of a
 * plain array as large as the table's entry array. */
static double
baseline(void)
{
	size_t esz = mp_table_shm_entry_size();
	unsigned char *plain = malloc(capacity * esz);
	mp_table_entry e;
	uint64_t s = 99, ops = 0;
	double t0, end;

	if (!plain) {
		fprintf(stderr, "bench_table: no memory for the baseline\n");
		exit(1);
	}
	memset(plain, 0, capacity * esz);       /* fault the pages in first */
	template_init(&e);
	t0 = seconds();
	end = t0 + PHASE_SECONDS;
	do {
		int k;

		for (k = 0; k < 256; k++) {
			size_t who = (size_t)((next(&s) >> 8) % capacity);

			e.uid = pool[who].uid;
			memcpy(plain + who * esz, &e, esz);
		}
		ops += 256;
	} while (seconds() < end);
	t0 = (double)ops / (seconds() - t0);
	/* keep the copies observable so they are not optimised away */
	if (plain[(size_t)(s % capacity) * esz] == 0x5a)
		putchar(' ');
	free(plain);
	return t0;
}

/* Kill a process holding the lock and time the repair the next
 * operation does: how long a crash stalls the milter's threads. */
static void
repair_time(void)
{
	int fds[2], status;
	char c;
	pid_t pid;
	double t0;
	mp_table_entry e;

	if (pipe(fds) != 0)
		return;
	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		if (mp_table_shm_debug_lock(table) != MP_OK || write(fds[1], "L", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (read(fds[0], &c, 1) != 1) {
		fprintf(stderr, "bench_table: lock holder did not start\n");
		exit(1);
	}
	close(fds[0]);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	t0 = seconds();
	if (mp_table_get(table, &pool[lo].uid, &e) == MP_ERR_UNAVAILABLE) {
		fprintf(stderr, "bench_table: table not recovered\n");
		exit(1);
	}
	printf("  %-34s %12.3f s (%llu repairs)\n", "repair after a killed lock holder",
	       seconds() - t0, (unsigned long long)mp_table_shm_debug_repairs(table));
}

static void
line(const char *what, double ops, double base)
{
	printf("  %-34s %12.0f ops/s   %6.3f x baseline\n", what, ops, ops / base);
}

int
main(int argc, char **argv)
{
	mp_table_entry e;
	double t0, base, fill, ups, sel, mix, evict, two;
	size_t i, filled;
	uint64_t evict_ops = 0;
	struct run r2[2];
	pthread_t th[2];
	int rc;

	capacity = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	if (capacity < 2 * SELECT_N || capacity > MP_TABLE_SHM_MAX_CAPACITY) {
		fprintf(stderr, "usage: bench_table [capacity >= %d]\n", 2 * SELECT_N);
		return 2;
	}
	snprintf(table_path, sizeof table_path, "/mp-bench-table-%ld", (long)getpid());
	signal(SIGALRM, on_alarm);
	alarm(60);
	now_s = (uint64_t)time(NULL);

	/* members: the table's worth, plus a quarter more to evict with */
	npool = capacity + capacity / 4;
	pool = malloc(npool * sizeof *pool);
	if (!pool)
		return 1;
	{
		uint64_t s = 12345;

		for (i = 0; i < npool; i++) {
			uint64_t w[8];
			size_t k;

			for (k = 0; k < 8; k++)
				w[k] = next(&s);
			memcpy(&pool[i].id, w, sizeof pool[i].id);
			mp_pubid_uid(&pool[i].id, &pool[i].uid);
		}
	}

	mp_table_shm_unlink(table_path);
	rc = mp_table_shm_open(table_path, capacity, MP_TABLE_CREATE, 0600, &table);
	if (rc != MP_OK) {
		fprintf(stderr, "bench_table: %s: %s\n", table_path, mp_strerror(rc));
		return 1;
	}
	printf("control table, capacity %zu: %.1f bytes per entry "
	       "(entry %zu + hash index %zu + header)\n",
	       capacity, (double)mp_table_shm_mapping_size(capacity) / (double)capacity,
	       mp_table_shm_entry_size(), sizeof(uint32_t));

	base = baseline();

	/* fill: new members, each checked (SHA-256 of the key) */
	template_init(&e);
	t0 = seconds();
	for (filled = 0; filled < capacity; filled++) {
		fill_template(&e, filled);
		if (mp_table_upsert(table, &e, NULL) != MP_OK) {
			fprintf(stderr, "bench_table: fill failed\n");
			return 1;
		}
		if ((filled & 1023) == 0 && seconds() - t0 > FILL_SECONDS)
			break;
	}
	fill = (double)filled / (seconds() - t0);
	span = filled;
	if (filled < capacity)      /* slow machine: measure on what is there */
		printf("  (filled only %zu entries in %.0f s)\n", filled, FILL_SECONDS);

	ups = measure(K_UPSERT, 1);
	sel = measure(K_SELECT, 2);
	mix = measure(K_MIX, 3);

	/* newcomers evicting the oldest: each is hashed once */
	t0 = seconds();
	for (i = filled; i < npool && seconds() - t0 < PHASE_SECONDS; i++) {
		fill_template(&e, i);   /* as new as everything: evicts if full */
		if (mp_table_upsert(table, &e, NULL) != MP_OK)
			return 1;
		evict_ops++;
	}
	evict = (double)evict_ops / (seconds() - t0);

	/* two threads, each the 50/50 mix, on the members now present */
	if (filled == capacity)
		lo = evict_ops;
	else
		span = filled + evict_ops;
	for (i = 0; i < 2; i++) {
		r2[i] = (struct run){ .kind = K_MIX, .seconds = PHASE_SECONDS, .seed = 10 + i };
		pthread_create(&th[i], NULL, run_phase, &r2[i]);
	}
	t0 = seconds();
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	two = (double)(r2[0].ops + r2[1].ops) / (seconds() - t0);
	if (r2[0].failed || r2[1].failed) {
		fprintf(stderr, "bench_table: an operation failed (2 threads)\n");
		return 1;
	}

	printf("  %-34s %12.0f ops/s\n", "baseline: memcpy entry to array", base);
	line("insert new member (uid checked)", fill, base);
	line("upsert present member", ups, base);
	line("select(10), requester excluded", sel, base);
	line("mix 50% upsert / 50% select(10)", mix, base);
	line("insert evicting the oldest", evict, base);
	printf("  %-34s %12.0f ops/s   %6.3f x single-thread mix\n",
	       "mix, 2 threads (total)", two, two / mix);
	repair_time();
	{
		mp_table_stats st;

		mp_table_stats_get(table, &st);
		printf("  entries %llu, evictions %llu\n", (unsigned long long)st.entries,
		       (unsigned long long)st.counter[MP_STAT_EVICTIONS]);
	}
	mp_table_close(table);
	mp_table_shm_unlink(table_path);
	free(pool);
	return 0;
}
