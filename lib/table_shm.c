/*
 * table_shm.c - the control table in one shared mapping (see table.h).
 *
 * Layout of the mapping (all links are 1-based 32-bit entry indexes, 0
 * meaning "none", so that zero-filled memory is an empty table):
 *
 *   struct shm_header   identity (magic, layout version, sizes, capacity,
 *                       hash seed), the robust process-shared mutex, the
 *                       state the mutex protects (recency list ends, free
 *                       list, high-water mark, entry count, one undo
 *                       record) and the lock-free counters
 *   uint32_t bucket[capacity]           hash index: chain heads by uid
 *   struct shm_entry entry[capacity]    the entries, 504 bytes each
 *
 * Every used entry is on one hash chain (via hnext) and on the recency
 * list (newer/older), which is kept sorted by time, newest first; free
 * entries below the high-water mark are chained through hnext.
 *
 * Crash safety: the entry array, with each entry's `used` byte, is the
 * record; everything else can be rebuilt from it.  Each mutation reaches
 * the array through one commit point: a new entry is written completely
 * before `used` is set; a removal clears `used` first; an overwrite of a
 * used entry (update, eviction) first copies it into the header's undo
 * record.  A lock holder that dies leaves the robust mutex in the
 * EOWNERDEAD state: the next locker repairs (undo, finish a flush,
 * validate every entry, rebuild index, list, free list and count) and
 * marks the mutex consistent.  Creation and attachment are serialised
 * with flock() on the backing object, which the kernel releases if the
 * creator dies, and the magic number is written last.
 *
 * Errors: as in table.h; MP_ERR_INCOMPATIBLE for a foreign or mismatched
 * mapping, MP_ERR_UNAVAILABLE if the mutex cannot be recovered.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mailpunch/error.h"
#include "mailpunch/table.h"
#include "table_priv.h"

#define SHM_MAGIC UINT64_C(0x314542415450414d)   /* "MAPTABE1" little-endian */
#define SHM_LAYOUT_VERSION 1
#define SHM_NSTATS 32               /* room for new mp_stat values, same layout */
#define BOOT_ID_LEN 40
#define ATTACH_TRIES 100            /* x 10 ms: wait for a creator to initialise */
#define SORT_ARRAY_MIN 64           /* repair sorts this many or more in an array */

_Static_assert(MP_STAT_COUNT <= SHM_NSTATS, "counter array too small");
/* Counters are updated from several processes without the lock: that is
 * only sound if 64-bit atomics are lock-free (hence address-free). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2,
               "64-bit atomics must be lock-free");
_Static_assert(MP_TABLE_SHM_MAX_CAPACITY < UINT32_MAX, "indexes are 32-bit");

/* A candidate in 19 bytes: kind and family share one byte. */
struct shm_cand {
	uint8_t addr[16];
	uint8_t port[2];            /* host order, memcpy'd */
	uint8_t kind_family;        /* kind in bits 0-6; bit 7 set: IPv6 */
};

#define CAND_V6 0x80
#define CAND_KIND_MAX 0x7f

/* Links, time, used and uid come first: a lookup touches one cache line. */
struct shm_entry {
	uint64_t time;
	uint32_t hnext;             /* hash chain, or free list when unused */
	uint32_t newer, older;      /* recency list */
	uint8_t used;               /* the commit marker: 1 = a valid entry */
	uint8_t flags;
	uint8_t ncand;              /* <= MP_TABLE_CAND */
	uint8_t nat_mapping, nat_filtering, nat_allocation;
	int16_t nat_delta;
	mp_uid uid;
	mp_pubid id;
	struct shm_cand cand[MP_TABLE_CAND];
	char name[MP_NAME_MAX + 1];
	char reply_addr[MP_ADDR_MAX + 1];
};

_Static_assert(sizeof(struct shm_entry) == 504, "entry layout changed: bump the version");
_Static_assert(offsetof(struct shm_entry, time) == MP_TABLE_SHM_ENTRY_TIME_OFFSET, "");
_Static_assert(offsetof(struct shm_entry, uid) == MP_TABLE_SHM_ENTRY_UID_OFFSET, "");
_Static_assert(offsetof(struct shm_entry, id) == MP_TABLE_SHM_ENTRY_ID_OFFSET, "");
_Static_assert(offsetof(struct shm_entry, name) == MP_TABLE_SHM_ENTRY_NAME_OFFSET, "");

/* Written once at creation (magic last), except boot_id: see attach. */
struct shm_ident {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;
	uint32_t entry_size;
	uint32_t capacity;
	uint32_t nbuckets;
	uint32_t reserved;
	uint64_t total_size;
	uint64_t seed[2];
	char boot_id[BOOT_ID_LEN];  /* kernel boot that last initialised the mutex */
};

_Static_assert(offsetof(struct shm_ident, magic) == MP_TABLE_SHM_MAGIC_OFFSET, "");
_Static_assert(offsetof(struct shm_ident, version) == MP_TABLE_SHM_VERSION_OFFSET, "");
_Static_assert(offsetof(struct shm_ident, boot_id) == MP_TABLE_SHM_BOOT_ID_OFFSET, "");

struct shm_header {
	struct shm_ident ident;
	/* Cache-line separation: lockers, counters and state do not share. */
	alignas(64) pthread_mutex_t lock;
	alignas(64) uint32_t newest, oldest;
	uint32_t free_head;
	uint32_t hw;                /* entries hw+1..capacity never used yet */
	_Atomic uint32_t count;     /* atomic so stats can read it unlocked */
	uint32_t undo_slot;         /* entry the undo record belongs to, or 0 */
	uint32_t flush_pending;
	uint64_t repairs;
	struct shm_entry undo;
	alignas(64) _Atomic uint64_t counter[SHM_NSTATS];
};

_Static_assert(offsetof(struct shm_header, lock) == MP_TABLE_SHM_LOCK_OFFSET, "");

/* The process-local handle. */
struct shm_table {
	struct mp_table base;
	struct shm_header *h;
	uint32_t *bucket;
	struct shm_entry *ent;
	size_t map_size;
	uint32_t cap, nb;
	uint64_t seed0, seed1;
	int crash_at;               /* test hook, see table_priv.h */
};

static inline struct shm_table *
ST(mp_table *t)
{
	return (struct shm_table *)t;
}

static inline struct shm_entry *
E(const struct shm_table *t, uint32_t i)
{
	return &t->ent[i - 1];
}

/*
 * Orders the stores before it before the stores after it, as another
 * process sees them once this one has died (the commit points above).
 * On x86 this only stops the compiler; elsewhere it is a store barrier.
 */
static inline void
store_barrier(void)
{
	atomic_thread_fence(memory_order_release);
}

static inline void
crash_point(const struct shm_table *t, enum mp_table_shm_crash where)
{
	if (where != MP_TABLE_CRASH_NONE && t->crash_at == (int)where)
		raise(SIGKILL);
}

/* ---------------------------------------------------------------- layout */

struct layout {
	uint64_t bucket_off, entry_off, total;
};

static int
layout_of(uint64_t cap, struct layout *l)
{
	if (cap == 0 || cap > MP_TABLE_SHM_MAX_CAPACITY)
		return -1;
	l->bucket_off = sizeof(struct shm_header);
	l->entry_off = (l->bucket_off + cap * sizeof(uint32_t) + 63) & ~(uint64_t)63;
	l->total = l->entry_off + cap * sizeof(struct shm_entry);
	if (l->total > SIZE_MAX || l->total > (uint64_t)INT64_MAX)
		return -1;
	return 0;
}

size_t
mp_table_shm_entry_size(void)
{
	return sizeof(struct shm_entry);
}

size_t
mp_table_shm_mapping_size(size_t capacity)
{
	struct layout l;

	return layout_of(capacity, &l) ? 0 : (size_t)l.total;
}

/* ---------------------------------------------------------------- index and list */

static uint32_t
bucket_of(const struct shm_table *t, const mp_uid *u)
{
	uint64_t a, b, h;

	/* uids are SHA-256 output already; the secret seed keeps a member who
	 * grinds keys from aiming many uids at one chain. */
	memcpy(&a, u->b, sizeof a);
	memcpy(&b, u->b + 8, sizeof b);
	h = (a ^ t->seed0) * UINT64_C(0x9e3779b97f4a7c15);
	h ^= b ^ t->seed1;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 31;
	/* multiply-shift maps onto any bucket count, so nbuckets = capacity */
	return (uint32_t)(((h >> 32) * (uint64_t)t->nb) >> 32);
}

static uint32_t
lookup(const struct shm_table *t, const mp_uid *u)
{
	uint32_t i = t->bucket[bucket_of(t, u)];

	while (i && memcmp(&E(t, i)->uid, u, sizeof *u) != 0)
		i = E(t, i)->hnext;
	return i;
}

static void
hash_link(struct shm_table *t, uint32_t i)
{
	uint32_t *head = &t->bucket[bucket_of(t, &E(t, i)->uid)];

	E(t, i)->hnext = *head;
	*head = i;
}

static void
hash_unlink(struct shm_table *t, uint32_t i)
{
	uint32_t *link = &t->bucket[bucket_of(t, &E(t, i)->uid)];

	while (*link && *link != i)
		link = &E(t, *link)->hnext;
	if (*link)
		*link = E(t, i)->hnext;
	E(t, i)->hnext = 0;
}

static void
list_unlink(struct shm_table *t, uint32_t i)
{
	struct shm_entry *x = E(t, i);

	if (x->newer)
		E(t, x->newer)->older = x->older;
	else
		t->h->newest = x->older;
	if (x->older)
		E(t, x->older)->newer = x->newer;
	else
		t->h->oldest = x->newer;
	x->newer = x->older = 0;
}

/* Between a (newer) and b (older); either may be 0 for a list end. */
static void
list_link_between(struct shm_table *t, uint32_t i, uint32_t a, uint32_t b)
{
	E(t, i)->newer = a;
	E(t, i)->older = b;
	if (a)
		E(t, a)->older = i;
	else
		t->h->newest = i;
	if (b)
		E(t, b)->newer = i;
	else
		t->h->oldest = i;
}

/*
 * Keeps the list sorted by time, newest first; among equal times the
 * latest upsert is the newest.  Upserts normally carry the current time
 * and land at the head in O(1); an older time (a merge from another
 * host) walks from whichever end is nearer in time.
 */
static void
list_insert(struct shm_table *t, uint32_t i)
{
	struct shm_header *h = t->h;
	uint64_t tm = E(t, i)->time;
	uint32_t p;

	if (!h->newest || tm >= E(t, h->newest)->time) {
		list_link_between(t, i, 0, h->newest);
	} else if (tm < E(t, h->oldest)->time) {
		list_link_between(t, i, h->oldest, 0);
	} else if (E(t, h->newest)->time - tm <= tm - E(t, h->oldest)->time) {
		/* first entry with time <= tm exists: the oldest has it */
		for (p = h->newest; E(t, p)->time > tm; p = E(t, p)->older)
			;
		list_link_between(t, i, E(t, p)->newer, p);
	} else {
		/* last entry with time > tm exists: the newest has it */
		for (p = h->oldest; E(t, p)->time <= tm; p = E(t, p)->newer)
			;
		list_link_between(t, i, p, E(t, p)->older);
	}
}

static void
set_count(struct shm_header *h, uint32_t n)
{
	atomic_store_explicit(&h->count, n, memory_order_relaxed);
}

static uint32_t
get_count(struct shm_header *h)
{
	return atomic_load_explicit(&h->count, memory_order_relaxed);
}

static void
bump(struct shm_table *t, mp_stat which, uint64_t n)
{
	atomic_fetch_add_explicit(&t->h->counter[which], n, memory_order_relaxed);
}

/* ---------------------------------------------------------------- entries */

static void
copy_string(char *dst, const char *src, size_t size)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	memset(dst + n, 0, size - n);   /* no stale bytes after the string */
}

/* Everything but links and `used`; the identity only for a new entry. */
static void
store_entry(const struct shm_table *t, struct shm_entry *x, const mp_table_entry *e,
            int identity, enum mp_table_shm_crash half_way)
{
	size_t k, n = e->ep.ncand < MP_TABLE_CAND ? e->ep.ncand : MP_TABLE_CAND;

	if (identity) {
		x->uid = e->uid;
		x->id = e->id;
	}
	x->time = e->time;
	x->flags = e->flags;
	x->ncand = (uint8_t)n;
	x->nat_mapping = e->ep.nat.mapping;
	x->nat_filtering = e->ep.nat.filtering;
	x->nat_allocation = e->ep.nat.allocation;
	x->nat_delta = e->ep.nat.delta;
	memset(x->cand, 0, sizeof x->cand);
	for (k = 0; k < n; k++) {
		const mp_candidate *c = &e->ep.cand[k];

		memcpy(x->cand[k].addr, c->addr, sizeof c->addr);
		memcpy(x->cand[k].port, &c->port, sizeof c->port);
		x->cand[k].kind_family = (uint8_t)(c->kind | (c->family == 6 ? CAND_V6 : 0));
	}
	crash_point(t, half_way);
	copy_string(x->name, e->name, sizeof x->name);
	copy_string(x->reply_addr, e->reply_addr, sizeof x->reply_addr);
}

static void
load_entry(const struct shm_entry *x, mp_table_entry *out)
{
	size_t k;

	memset(out, 0, sizeof *out);
	out->uid = x->uid;
	out->id = x->id;
	memcpy(out->name, x->name, sizeof out->name);
	memcpy(out->reply_addr, x->reply_addr, sizeof out->reply_addr);
	out->time = x->time;
	out->flags = x->flags;
	out->ep.ncand = x->ncand;
	out->ep.nat.mapping = x->nat_mapping;
	out->ep.nat.filtering = x->nat_filtering;
	out->ep.nat.allocation = x->nat_allocation;
	out->ep.nat.delta = x->nat_delta;
	for (k = 0; k < x->ncand && k < MP_TABLE_CAND; k++) {
		mp_candidate *c = &out->ep.cand[k];

		c->kind = x->cand[k].kind_family & CAND_KIND_MAX;
		c->family = (x->cand[k].kind_family & CAND_V6) ? 6 : 4;
		memcpy(c->addr, x->cand[k].addr, sizeof c->addr);
		memcpy(&c->port, x->cand[k].port, sizeof c->port);
	}
}

/* What repair trusts: anything else in a used entry is dropped. */
static int
entry_valid(const struct shm_entry *x)
{
	static const mp_uid zero;
	mp_uid u;

	if (x->used != 1 || x->ncand > MP_TABLE_CAND ||
	    !memchr(x->name, '\0', sizeof x->name) ||
	    !memchr(x->reply_addr, '\0', sizeof x->reply_addr))
		return 0;
	mp_pubid_uid(&x->id, &u);
	/* mp_pubid_uid() yields zeros only if OpenSSL ran out of memory: an
	 * entry that cannot be checked is kept rather than lost. */
	return memcmp(&u, &x->uid, sizeof u) == 0 || memcmp(&u, &zero, sizeof u) == 0;
}

/* Before a used entry is overwritten in place: see the file comment. */
static void
undo_begin(struct shm_table *t, uint32_t i)
{
	memcpy(&t->h->undo, E(t, i), sizeof t->h->undo);
	store_barrier();
	t->h->undo_slot = i;
	store_barrier();
}

static void
undo_end(struct shm_table *t)
{
	store_barrier();
	t->h->undo_slot = 0;
}

static uint32_t
alloc_entry(struct shm_table *t)
{
	struct shm_header *h = t->h;
	uint32_t i = h->free_head;

	if (i) {
		h->free_head = E(t, i)->hnext;
		return i;
	}
	if (h->hw < t->cap)
		return ++h->hw;     /* published before `used` is set: see repair */
	return 0;
}

static void
free_entry(struct shm_table *t, uint32_t i)
{
	E(t, i)->hnext = t->h->free_head;
	t->h->free_head = i;
}

/* Removal: clear the commit marker first, then unlink. */
static void
remove_entry(struct shm_table *t, uint32_t i, enum mp_table_shm_crash half_way)
{
	E(t, i)->used = 0;
	store_barrier();
	hash_unlink(t, i);
	crash_point(t, half_way);
	list_unlink(t, i);
	free_entry(t, i);
	set_count(t->h, get_count(t->h) - 1);
}

static void
reset_state(struct shm_table *t)
{
	struct shm_header *h = t->h;

	memset(t->bucket, 0, (size_t)t->nb * sizeof *t->bucket);
	h->newest = h->oldest = h->free_head = 0;
	set_count(h, 0);
}

/* ---------------------------------------------------------------- repair */

/* Merge sort of a chain linked through `older`, by time, newest first;
 * in place (no allocation in a recovery path), stable. */
static uint32_t
sort_chain(struct shm_table *t, uint32_t list)
{
	size_t insize = 1;

	if (!list)
		return 0;
	for (;;) {
		uint32_t p = list, tail = 0;
		size_t merges = 0;

		list = 0;
		while (p) {
			uint32_t q = p, e;
			size_t psize = 0, qsize = insize;

			merges++;
			while (psize < insize && q) {
				psize++;
				q = E(t, q)->older;
			}
			while (psize > 0 || (qsize > 0 && q)) {
				if (psize == 0) {
					e = q;
					q = E(t, q)->older;
					qsize--;
				} else if (qsize == 0 || !q || E(t, p)->time >= E(t, q)->time) {
					e = p;
					p = E(t, p)->older;
					psize--;
				} else {
					e = q;
					q = E(t, q)->older;
					qsize--;
				}
				if (tail)
					E(t, tail)->older = e;
				else
					list = e;
				tail = e;
			}
			p = q;
		}
		E(t, tail)->older = 0;
		if (merges <= 1)
			return list;
		insize *= 2;
	}
}

struct sortkey {
	uint64_t time;
	uint32_t idx;
};

static int
newest_first(const void *a, const void *b)
{
	const struct sortkey *x = a, *y = b;

	if (x->time != y->time)
		return x->time > y->time ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Same result as sort_chain() (ties: lower index first), many times
 * faster on a large table: the keys are sorted in one compact array
 * instead of across the mapping.  Returns 0 if there is no memory. */
static uint32_t
sort_chain_array(struct shm_table *t, uint32_t list, uint32_t n)
{
	struct sortkey *k = malloc((size_t)n * sizeof *k);
	uint32_t i, j;

	if (!k)
		return 0;
	for (i = 0, j = list; j && i < n; i++, j = E(t, j)->older) {
		k[i].time = E(t, j)->time;
		k[i].idx = j;
	}
	qsort(k, i, sizeof *k, newest_first);
	for (j = 0; j + 1 < i; j++)
		E(t, k[j].idx)->older = k[j + 1].idx;
	if (i)
		E(t, k[i - 1].idx)->older = 0;
	list = i ? k[0].idx : 0;
	free(k);
	return list;
}

/*
 * Rebuilds everything from the entry array; called with the lock held
 * after the previous holder died (or the kernel rebooted under a file-
 * backed table).  Idempotent, so a repairer that dies is repaired too.
 */
static void
repair(struct shm_table *t)
{
	struct shm_header *h = t->h;
	uint32_t hw = h->hw <= t->cap ? h->hw : t->cap;
	uint32_t i, j, chain = 0, prev, n = 0;

	/* 1. roll back a half-done overwrite */
	if (h->undo_slot >= 1 && h->undo_slot <= t->cap) {
		memcpy(E(t, h->undo_slot), &h->undo, sizeof h->undo);
		if (h->undo_slot > hw)
			hw = h->undo_slot;
	}
	store_barrier();
	h->undo_slot = 0;
	/* 2. roll forward a half-done flush */
	if (h->flush_pending) {
		for (i = 1; i <= hw; i++)
			E(t, i)->used = 0;
		hw = 0;
	}
	store_barrier();
	h->hw = hw;
	h->flush_pending = 0;
	reset_state(t);

	/* 3. validate and index; of two entries with one uid, keep the newer */
	for (i = 1; i <= hw; i++) {
		struct shm_entry *x = E(t, i);

		if (x->used && !entry_valid(x))
			x->used = 0;
		if (!x->used)
			continue;
		j = lookup(t, &x->uid);
		if (j && E(t, j)->time >= x->time) {
			x->used = 0;
			continue;
		}
		if (j) {
			hash_unlink(t, j);
			E(t, j)->used = 0;
		}
		hash_link(t, i);
	}
	/* 4. free list (lowest slots first) and the chain of used entries */
	for (i = hw; i >= 1; i--) {
		if (E(t, i)->used) {
			E(t, i)->older = chain;
			chain = i;
			n++;
		} else {
			free_entry(t, i);
		}
	}
	/* 5. the recency list, sorted by time */
	if (n >= SORT_ARRAY_MIN) {
		uint32_t sorted = sort_chain_array(t, chain, n);

		chain = sorted ? sorted : sort_chain(t, chain);
	} else {
		chain = sort_chain(t, chain);
	}
	h->newest = chain;
	for (prev = 0, i = chain; i; prev = i, i = E(t, i)->older)
		E(t, i)->newer = prev;
	h->oldest = prev;
	set_count(h, n);
	h->repairs++;
}

static int
lock(struct shm_table *t)
{
	int rc = pthread_mutex_lock(&t->h->lock);

	if (rc == 0)
		return MP_OK;
	if (rc == EOWNERDEAD) {
		repair(t);
		pthread_mutex_consistent(&t->h->lock);
		return MP_OK;
	}
	/* ENOTRECOVERABLE: someone unlocked without repairing; only
	 * removing and recreating the table helps. */
	return MP_ERR_UNAVAILABLE;
}

static void
unlock(struct shm_table *t)
{
	pthread_mutex_unlock(&t->h->lock);
}

/* ---------------------------------------------------------------- operations */

/*
 * An update touches all of a random entry (undo copy, rewrite) and its
 * two list neighbours: on a large table each is a cache miss.  Asking
 * for them together overlaps the misses instead of taking them in turn.
 */
static inline void
prefetch_update(const struct shm_table *t, const struct shm_entry *x)
{
	const char *p = (const char *)x;
	size_t off;

	for (off = 64; off < sizeof *x + 63; off += 64)
		__builtin_prefetch(p + off, 1);
	if (x->newer)
		__builtin_prefetch(E(t, x->newer), 1);
	if (x->older)
		__builtin_prefetch(E(t, x->older), 1);
}

static int
shm_upsert(mp_table *tt, const mp_table_entry *e, int verified, int if_newer, int *was_new)
{
	struct shm_table *t = ST(tt);
	struct shm_header *h = t->h;
	struct shm_entry *x;
	size_t k, n = e->ep.ncand < MP_TABLE_CAND ? e->ep.ncand : MP_TABLE_CAND;
	uint32_t i;
	int rc, fresh = 0;

	for (k = 0; k < n; k++)
		if (e->ep.cand[k].kind > CAND_KIND_MAX)
			return MP_ERR_INVAL;    /* does not fit the packed form */
	if ((rc = lock(t)) != MP_OK)
		return rc;
	i = lookup(t, &e->uid);
	if (i) {
		x = E(t, i);
		prefetch_update(t, x);
		if (memcmp(&x->id, &e->id, sizeof e->id) != 0) {
			rc = MP_ERR_CONFLICT;
			goto out;
		}
		if (if_newer && x->time >= e->time) {
			rc = MP_TABLE_NOT_NEWER;
			goto out;
		}
		undo_begin(t, i);
		store_entry(t, x, e, 0, MP_TABLE_CRASH_UPDATE_DATA);
		undo_end(t);
		list_unlink(t, i);
		list_insert(t, i);
	} else if (!verified) {
		rc = MP_TABLE_NEED_VERIFY;
		goto out;
	} else if (get_count(h) >= t->cap) {
		fresh = 1;
		i = h->oldest;
		x = E(t, i);
		/* Keep the newest `capacity` entries: a merged entry older
		 * than all of them is itself the one that goes. */
		if (e->time >= x->time) {
			hash_unlink(t, i);
			list_unlink(t, i);
			undo_begin(t, i);
			store_entry(t, x, e, 1, MP_TABLE_CRASH_EVICT_DATA);
			undo_end(t);
			hash_link(t, i);
			list_insert(t, i);
		}
		bump(t, MP_STAT_EVICTIONS, 1);
	} else {
		fresh = 1;
		i = alloc_entry(t);
		if (!i) {               /* count and free space disagree */
			repair(t);
			rc = MP_ERR_UNAVAILABLE;
			goto out;
		}
		x = E(t, i);
		store_entry(t, x, e, 1, MP_TABLE_CRASH_INSERT_DATA);
		store_barrier();
		x->used = 1;            /* commit */
		store_barrier();
		hash_link(t, i);
		crash_point(t, MP_TABLE_CRASH_INSERT_LINK);
		list_insert(t, i);
		set_count(h, get_count(h) + 1);
	}
out:
	unlock(t);
	if (rc == MP_OK && was_new)
		*was_new = fresh;
	return rc;
}

static int
shm_select(mp_table *tt, const mp_uid *exclude, uint64_t now, uint64_t max_age,
           mp_table_entry *out, size_t max, size_t *n)
{
	struct shm_table *t = ST(tt);
	uint32_t i;
	size_t k = 0;
	int rc;

	if ((rc = lock(t)) != MP_OK)
		return rc;
	for (i = t->h->newest; i && k < max; i = E(t, i)->older) {
		const struct shm_entry *x = E(t, i);

		/* sorted by time: everything after the first too old is too */
		if (max_age && x->time < now && now - x->time > max_age)
			break;
		if (exclude && memcmp(&x->uid, exclude, sizeof *exclude) == 0)
			continue;
		load_entry(x, &out[k++]);
	}
	unlock(t);
	*n = k;
	return MP_OK;
}

static int
shm_get(mp_table *tt, const mp_uid *uid, mp_table_entry *out)
{
	struct shm_table *t = ST(tt);
	uint32_t i;
	int rc;

	if ((rc = lock(t)) != MP_OK)
		return rc;
	i = lookup(t, uid);
	if (i)
		load_entry(E(t, i), out);
	unlock(t);
	return i ? MP_OK : MP_ERR_NOTFOUND;
}

static int
shm_set_flags(mp_table *tt, const mp_uid *uid, uint8_t set, uint8_t clear)
{
	struct shm_table *t = ST(tt);
	uint32_t i;
	int rc;

	if ((rc = lock(t)) != MP_OK)
		return rc;
	i = lookup(t, uid);
	if (i)      /* one byte: a store that cannot be torn */
		E(t, i)->flags = (uint8_t)((E(t, i)->flags | set) & ~clear);
	unlock(t);
	return i ? MP_OK : MP_ERR_NOTFOUND;
}

static int
shm_delete(mp_table *tt, const mp_uid *uid)
{
	struct shm_table *t = ST(tt);
	uint32_t i;
	int rc;

	if ((rc = lock(t)) != MP_OK)
		return rc;
	i = lookup(t, uid);
	if (i)
		remove_entry(t, i, MP_TABLE_CRASH_DELETE_LINK);
	unlock(t);
	return i ? MP_OK : MP_ERR_NOTFOUND;
}

static int
shm_expire(mp_table *tt, uint64_t now, uint64_t max_age, size_t *removed)
{
	struct shm_table *t = ST(tt);
	uint32_t i;
	size_t k = 0;
	int rc;

	if ((rc = lock(t)) != MP_OK)
		return rc;
	while ((i = t->h->oldest) != 0 && E(t, i)->time < now &&
	       now - E(t, i)->time > max_age) {
		remove_entry(t, i, MP_TABLE_CRASH_NONE);
		k++;
	}
	unlock(t);
	if (k)
		bump(t, MP_STAT_EXPIRATIONS, k);
	*removed = k;
	return MP_OK;
}

static int
shm_flush(mp_table *tt)
{
	struct shm_table *t = ST(tt);
	struct shm_header *h = t->h;
	uint32_t i, k = 0, half;
	int rc;

	if ((rc = lock(t)) != MP_OK)
		return rc;
	/* Announce first, so that a repair finishes a half-done flush. */
	h->flush_pending = 1;
	store_barrier();
	half = get_count(h) / 2;
	for (i = h->newest; i; i = E(t, i)->older) {
		E(t, i)->used = 0;
		if (++k == half)
			crash_point(t, MP_TABLE_CRASH_FLUSH);
	}
	store_barrier();
	h->hw = 0;
	reset_state(t);
	store_barrier();
	h->flush_pending = 0;
	unlock(t);
	return MP_OK;
}

static void
shm_count(mp_table *tt, mp_stat which, uint64_t n)
{
	bump(ST(tt), which, n);
}

static void
shm_stats(mp_table *tt, mp_table_stats *out)
{
	struct shm_table *t = ST(tt);
	size_t k;

	for (k = 0; k < MP_STAT_COUNT; k++)
		out->counter[k] = atomic_load_explicit(&t->h->counter[k], memory_order_relaxed);
	out->entries = get_count(t->h);
	out->capacity = t->cap;
}

static void
shm_close(mp_table *tt)
{
	struct shm_table *t = ST(tt);

	munmap(t->h, t->map_size);
	free(t);
}

static const struct mp_table_ops shm_ops = {
	.upsert = shm_upsert,
	.select = shm_select,
	.get = shm_get,
	.set_flags = shm_set_flags,
	.delete = shm_delete,
	.expire = shm_expire,
	.flush = shm_flush,
	.count = shm_count,
	.stats = shm_stats,
	.close = shm_close,
};

/* ---------------------------------------------------------------- open */

static int
is_shm_name(const char *name)
{
	return strchr(name + 1, '/') == NULL;
}

static int
open_backing(const char *name, int oflag, unsigned mode)
{
	if (is_shm_name(name))
		return shm_open(name, oflag, (mode_t)mode);
	return open(name, oflag | O_CLOEXEC, (mode_t)mode);
}

/* The boot ID tells a mutex left locked by a previous boot (file-backed
 * table after a crash) from one held by a live process. */
static void
read_boot_id(char out[BOOT_ID_LEN])
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = 0;

	memset(out, 0, BOOT_ID_LEN);
	if (fd < 0)
		return;
	n = read(fd, out, BOOT_ID_LEN - 1);
	close(fd);
	if (n <= 0) {
		memset(out, 0, BOOT_ID_LEN);
		return;
	}
	out[strcspn(out, "\n")] = '\0';
}

static int
init_mutex(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc;

	if (pthread_mutexattr_init(&a) != 0)
		return -1;
	rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
	     pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
	     pthread_mutex_init(m, &a) != 0;
	pthread_mutexattr_destroy(&a);
	return rc ? -1 : 0;
}

static int
map_handle(int fd, uint32_t cap, struct shm_table **out)
{
	struct shm_table *t;
	struct layout l;
	void *p;

	if (layout_of(cap, &l))
		return MP_ERR_INCOMPATIBLE;
	t = calloc(1, sizeof *t);
	if (!t)
		return MP_ERR_NOMEM;
	p = mmap(NULL, (size_t)l.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		free(t);
		return errno == ENOMEM ? MP_ERR_NOMEM : MP_ERR_IO;
	}
	t->base.ops = &shm_ops;
	t->h = p;
	t->bucket = (uint32_t *)((char *)p + l.bucket_off);
	t->ent = (struct shm_entry *)((char *)p + l.entry_off);
	t->map_size = (size_t)l.total;
	t->cap = cap;
	t->nb = cap;
	*out = t;
	return MP_OK;
}

/* With the flock held and the object empty (or never initialised). */
static int
create_locked(int fd, uint32_t cap, struct shm_table **out)
{
	struct shm_table *t;
	struct shm_header *h;
	struct layout l;
	uint64_t seed[2];
	int rc;

	if (layout_of(cap, &l))
		return MP_ERR_INVAL;
	if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed)
		return MP_ERR_IO;
	/* Truncating to 0 first guarantees zeros: an empty table. */
	if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)l.total) != 0)
		return MP_ERR_IO;
	/* Reserve the memory now: on a full tmpfs a sparse mapping would
	 * SIGBUS later, in the middle of an operation. */
	rc = posix_fallocate(fd, 0, (off_t)l.total);
	if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
		/* leave it empty: the next opener initialises it again */
		if (ftruncate(fd, 0) != 0)
			return MP_ERR_IO;
		return rc == ENOSPC ? MP_ERR_NOMEM : MP_ERR_IO;
	}
	if ((rc = map_handle(fd, cap, &t)) != MP_OK)
		return rc;
	h = t->h;
	if (init_mutex(&h->lock) != 0) {
		shm_close(&t->base);
		return MP_ERR_IO;
	}
	h->ident.version = SHM_LAYOUT_VERSION;
	h->ident.header_size = sizeof *h;
	h->ident.entry_size = sizeof(struct shm_entry);
	h->ident.capacity = cap;
	h->ident.nbuckets = cap;
	h->ident.total_size = l.total;
	h->ident.seed[0] = t->seed0 = seed[0];
	h->ident.seed[1] = t->seed1 = seed[1];
	read_boot_id(h->ident.boot_id);
	store_barrier();
	h->ident.magic = SHM_MAGIC;     /* last: the table is now valid */
	*out = t;
	return MP_OK;
}

static int
all_zero(const unsigned char *p, size_t n)
{
	while (n--)
		if (*p++)
			return 0;
	return 1;
}

#define ATTACH_RETRY 1

/* With the flock held: validate and map, or initialise. */
static int
attach_locked(int fd, size_t capacity, int flags, struct shm_table **out)
{
	unsigned char raw[sizeof(struct shm_header)];
	struct shm_ident id;
	struct shm_table *t;
	struct layout l;
	struct stat st;
	char boot[BOOT_ID_LEN];
	int rc;

	if (fstat(fd, &st) != 0)
		return MP_ERR_IO;
	if (st.st_size != 0) {
		if ((uint64_t)st.st_size < sizeof raw)
			return MP_ERR_INCOMPATIBLE;     /* never one of ours */
		if (pread(fd, raw, sizeof raw, 0) != (ssize_t)sizeof raw)
			return MP_ERR_IO;
	}
	/* Empty, or a creator died before writing the magic (its header
	 * is still all zeros): whoever may create initialises it. */
	if (st.st_size == 0 || all_zero(raw, sizeof raw)) {
		if (!(flags & MP_TABLE_CREATE) || capacity == 0)
			return ATTACH_RETRY;
		return create_locked(fd, (uint32_t)capacity, out);
	}
	memcpy(&id, raw, sizeof id);
	if (id.magic != SHM_MAGIC || id.version != SHM_LAYOUT_VERSION ||
	    id.header_size != sizeof(struct shm_header) ||
	    id.entry_size != sizeof(struct shm_entry) ||
	    id.nbuckets != id.capacity || layout_of(id.capacity, &l) ||
	    id.total_size != l.total || (uint64_t)st.st_size != l.total ||
	    (capacity != 0 && capacity != id.capacity))
		return MP_ERR_INCOMPATIBLE;
	if ((rc = map_handle(fd, id.capacity, &t)) != MP_OK)
		return rc;
	t->seed0 = id.seed[0];
	t->seed1 = id.seed[1];
	read_boot_id(boot);
	if (boot[0] && strncmp(boot, id.boot_id, BOOT_ID_LEN) != 0) {
		/* First attach since a reboot (file-backed table): the mutex
		 * may record an owner that no longer exists, and the kernel
		 * may have written back a half-done operation.  No process of
		 * this boot uses the table yet (it would have updated boot_id
		 * under this flock), so re-initialising is safe. */
		if (id.boot_id[0]) {
			if (init_mutex(&t->h->lock) != 0 || lock(t) != MP_OK) {
				shm_close(&t->base);
				return MP_ERR_IO;
			}
			repair(t);
			unlock(t);
		}
		memcpy(t->h->ident.boot_id, boot, BOOT_ID_LEN);
	}
	*out = t;
	return MP_OK;
}

int
mp_table_shm_open(const char *name, size_t capacity, int flags, unsigned mode,
                  mp_table **out)
{
	struct shm_table *t = NULL;
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	int fd, rc, tries;

	if (out)
		*out = NULL;
	if (!out || !name || name[0] != '/' || !name[1] ||
	    capacity > MP_TABLE_SHM_MAX_CAPACITY || (flags & ~MP_TABLE_CREATE))
		return MP_ERR_INVAL;
	for (tries = 0;; tries++) {
		fd = open_backing(name, O_RDWR, 0);
		if (fd < 0 && errno == ENOENT && (flags & MP_TABLE_CREATE) && capacity) {
			fd = open_backing(name, O_RDWR | O_CREAT | O_EXCL, mode);
			if (fd < 0 && errno == EEXIST && tries < ATTACH_TRIES)
				continue;       /* lost a creation race: attach */
			/* exactly the mode asked for, whatever the umask */
			if (fd >= 0 && fchmod(fd, (mode_t)mode) != 0) {
				close(fd);
				return MP_ERR_IO;
			}
		}
		if (fd < 0)
			return errno == ENOENT ? MP_ERR_NOTFOUND : MP_ERR_IO;
		while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
			;
		if (rc != 0) {
			close(fd);
			return MP_ERR_IO;
		}
		rc = attach_locked(fd, capacity, flags, &t);
		flock(fd, LOCK_UN);
		close(fd);
		if (rc != ATTACH_RETRY)
			break;
		/* A creator opened it but has not initialised it yet. */
		if (tries >= ATTACH_TRIES)
			return MP_ERR_NOTFOUND;
		nanosleep(&pause, NULL);
	}
	if (rc == MP_OK)
		*out = &t->base;
	return rc;
}

int
mp_table_shm_unlink(const char *name)
{
	int rc;

	if (!name || name[0] != '/' || !name[1])
		return MP_ERR_INVAL;
	rc = is_shm_name(name) ? shm_unlink(name) : unlink(name);
	if (rc == 0)
		return MP_OK;
	return errno == ENOENT ? MP_ERR_NOTFOUND : MP_ERR_IO;
}

/* ---------------------------------------------------------------- test hooks */

void
mp_table_shm_debug_crash_at(mp_table *t, enum mp_table_shm_crash where)
{
	ST(t)->crash_at = (int)where;
}

int
mp_table_shm_debug_lock(mp_table *t)
{
	return lock(ST(t));
}

void
mp_table_shm_debug_unlock(mp_table *t)
{
	unlock(ST(t));
}

uint64_t
mp_table_shm_debug_repairs(mp_table *tt)
{
	struct shm_table *t = ST(tt);
	uint64_t n;

	if (lock(t) != MP_OK)
		return 0;
	n = t->h->repairs;
	unlock(t);
	return n;
}

#define BAD(...) \
	do { snprintf(why, whylen, __VA_ARGS__); rc = MP_ERR_MALFORMED; goto out; } while (0)

int
mp_table_shm_debug_check(mp_table *tt, int deep, char *why, size_t whylen)
{
	struct shm_table *t = ST(tt);
	struct shm_header *h = t->h;
	uint32_t i, prev, b, count, n1 = 0, n2 = 0, n3 = 0, nf = 0, nused = 0;
	uint64_t last = UINT64_MAX;
	int rc;

	if ((rc = lock(t)) != MP_OK) {
		snprintf(why, whylen, "cannot lock");
		return rc;
	}
	snprintf(why, whylen, "ok");
	count = get_count(h);
	if (h->undo_slot || h->flush_pending)
		BAD("undo %u / flush %u pending", h->undo_slot, h->flush_pending);
	if (h->hw > t->cap || count > h->hw)
		BAD("hw %u, count %u, capacity %u", h->hw, count, t->cap);
	for (prev = 0, i = h->newest; i; prev = i, i = E(t, i)->older) {
		struct shm_entry *x = E(t, i);

		if (i > h->hw || ++n1 > count)
			BAD("list: index %u beyond hw or list longer than count %u", i, count);
		if (x->used != 1 || x->newer != prev || x->time > last)
			BAD("list: entry %u used %u newer %u (want %u) time %llu after %llu",
			    i, x->used, x->newer, prev, (unsigned long long)x->time,
			    (unsigned long long)last);
		if (deep ? !entry_valid(x) : x->ncand > MP_TABLE_CAND)
			BAD("list: entry %u invalid", i);
		if (lookup(t, &x->uid) != i)
			BAD("list: entry %u not found by its uid", i);
		last = x->time;
	}
	if (h->oldest != prev)
		BAD("oldest %u, list ends at %u", h->oldest, prev);
	for (prev = 0, i = h->oldest; i; prev = i, i = E(t, i)->newer)
		if (i > h->hw || ++n2 > count || E(t, i)->older != prev)
			BAD("backward list broken at %u", i);
	if (h->newest != prev)
		BAD("newest %u, backward list ends at %u", h->newest, prev);
	for (b = 0; b < t->nb; b++)
		for (i = t->bucket[b]; i; i = E(t, i)->hnext)
			if (i > h->hw || ++n3 > count || !E(t, i)->used ||
			    bucket_of(t, &E(t, i)->uid) != b)
				BAD("hash chain %u broken at %u", b, i);
	for (i = h->free_head; i; i = E(t, i)->hnext)
		if (i > h->hw || ++nf > h->hw || E(t, i)->used)
			BAD("free list broken at %u", i);
	for (i = 1; i <= t->cap; i++)
		if (E(t, i)->used && (i > h->hw || ++nused > count))
			BAD("used entry %u not accounted for", i);
	if (n1 != count || n2 != count || n3 != count || nused != count ||
	    nf != h->hw - count)
		BAD("counts: list %u/%u hash %u used %u free %u, count %u hw %u",
		    n1, n2, n3, nused, nf, count, h->hw);
out:
	unlock(t);
	return rc;
}
