/*
 * replay.c - time window check and a bounded replay cache (see replay.h).
 *
 * The cache is an open-addressing hash set (linear probing, backward-shift
 * deletion, load <= 1/2) plus a ring of slots in insertion order, so both
 * lookup and eviction are O(1) and memory never grows after creation.
 * Session IDs are random, so their first bytes are already a good hash;
 * a per-cache random key is mixed in so that a sender who chooses IDs
 * cannot aim collisions at one bucket.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "mailpunch/error.h"
#include "mailpunch/replay.h"

typedef struct entry {
	uint8_t sid[MP_SESSION_ID_LEN];
	uint64_t timestamp;
	int used;
} entry;

struct mp_replay {
	entry *slots;           /* nslots = 2 * capacity rounded to power of 2 */
	size_t nslots;
	uint8_t (*ring)[MP_SESSION_ID_LEN];   /* insertion order */
	uint64_t *ring_ts;
	size_t capacity, head, count;
	uint64_t floor;
	uint64_t hash_key;
};

int
mp_check_time(uint64_t timestamp, uint64_t now, uint64_t max_age, uint64_t max_future)
{
	if (timestamp > now && timestamp - now > max_future)
		return MP_ERR_FUTURE;
	if (timestamp < now && now - timestamp > max_age)
		return MP_ERR_EXPIRED;
	return MP_OK;
}

static size_t
slot_of(const mp_replay *r, const uint8_t sid[MP_SESSION_ID_LEN])
{
	uint64_t h;

	memcpy(&h, sid, sizeof h);
	h ^= r->hash_key;
	h *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 17) & (r->nslots - 1);
}

mp_replay *
mp_replay_new(size_t capacity)
{
	mp_replay *r;
	size_t n = 16;

	if (capacity == 0 || capacity > ((size_t)1 << 28))
		return NULL;
	while (n < 2 * capacity)
		n *= 2;
	r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->slots = calloc(n, sizeof *r->slots);
	r->ring = calloc(capacity, sizeof *r->ring);
	r->ring_ts = calloc(capacity, sizeof *r->ring_ts);
	if (!r->slots || !r->ring || !r->ring_ts ||
	    RAND_bytes((unsigned char *)&r->hash_key, sizeof r->hash_key) != 1) {
		mp_replay_free(r);
		return NULL;
	}
	r->nslots = n;
	r->capacity = capacity;
	return r;
}

void
mp_replay_free(mp_replay *r)
{
	if (!r)
		return;
	free(r->slots);
	free(r->ring);
	free(r->ring_ts);
	free(r);
}

size_t
mp_replay_count(const mp_replay *r)
{
	return r->count;
}

static entry *
find(mp_replay *r, const uint8_t sid[MP_SESSION_ID_LEN], size_t *pos)
{
	size_t i = slot_of(r, sid);

	while (r->slots[i].used) {
		if (memcmp(r->slots[i].sid, sid, MP_SESSION_ID_LEN) == 0) {
			*pos = i;
			return &r->slots[i];
		}
		i = (i + 1) & (r->nslots - 1);
	}
	*pos = i;
	return NULL;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void
remove_at(mp_replay *r, size_t i)
{
	size_t j = i;

	r->slots[i].used = 0;
	for (;;) {
		size_t home;

		j = (j + 1) & (r->nslots - 1);
		if (!r->slots[j].used)
			return;
		home = slot_of(r, r->slots[j].sid);
		/* Move j back to i if i lies cyclically within [home, j). */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			r->slots[i] = r->slots[j];
			r->slots[j].used = 0;
			i = j;
		}
	}
}

static void
evict_oldest(mp_replay *r)
{
	size_t oldest = (r->head + r->capacity - r->count) % r->capacity, pos;

	if (find(r, r->ring[oldest], &pos))
		remove_at(r, pos);
	if (r->ring_ts[oldest] > r->floor)
		r->floor = r->ring_ts[oldest];
	r->count--;
}

int
mp_replay_check(mp_replay *r, const uint8_t sid[MP_SESSION_ID_LEN], uint64_t timestamp)
{
	size_t pos;

	if (r->floor && timestamp <= r->floor)
		return MP_ERR_REPLAY;
	if (find(r, sid, &pos))
		return MP_ERR_REPLAY;
	if (r->count == r->capacity) {
		evict_oldest(r);
		find(r, sid, &pos);
	}
	memcpy(r->slots[pos].sid, sid, MP_SESSION_ID_LEN);
	r->slots[pos].timestamp = timestamp;
	r->slots[pos].used = 1;
	memcpy(r->ring[r->head], sid, MP_SESSION_ID_LEN);
	r->ring_ts[r->head] = timestamp;
	r->head = (r->head + 1) % r->capacity;
	r->count++;
	return MP_OK;
}

void
mp_replay_forget(mp_replay *r, const uint8_t sid[MP_SESSION_ID_LEN])
{
	size_t pos;

	/* Its ring slot stays until evicted; evicting it then finds nothing
	 * or the retried copy, whose timestamp is the same. */
	if (find(r, sid, &pos))
		remove_at(r, pos);
}
