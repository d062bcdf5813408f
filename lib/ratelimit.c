/*
 * ratelimit.c - fixed-memory token buckets (see ratelimit.h).
 *
 * Tokens are kept in units of 1/period so that refilling is integer
 * arithmetic without drift: a bucket holds at most burst*period units,
 * gains burst units per second, and one take costs period units.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "mailpunch/config.h"
#include "mailpunch/error.h"
#include "mailpunch/ratelimit.h"

typedef struct bucket {
	uint64_t key_hash;   /* 0 = free */
	uint64_t units;
	uint64_t last;
} bucket;

struct mp_ratelimit {
	pthread_mutex_t lock;
	bucket *b;
	size_t nslots;
	unsigned burst;
	uint64_t period;
	uint64_t seed;
};

/* FNV-1a with a random seed: keys come from mail, so keep them apart. */
static uint64_t
key_hash(const mp_ratelimit *r, const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ r->seed;

	for (; *key; key++) {
		unsigned char c = (unsigned char)*key;

		/* mail addresses and hosts compare case-insensitively */
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		h = (h ^ c) * 0x100000001b3ULL;
	}
	return h ? h : 1;
}

mp_ratelimit *
mp_ratelimit_new(size_t slots, unsigned burst, uint64_t period)
{
	mp_ratelimit *r;

	if (slots == 0 || (burst && period == 0) || period > 365 * 86400ULL || burst > 1000000)
		return NULL;
	r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->b = calloc(slots, sizeof *r->b);
	if (!r->b || RAND_bytes((unsigned char *)&r->seed, sizeof r->seed) != 1 ||
	    pthread_mutex_init(&r->lock, NULL) != 0) {
		free(r->b);
		free(r);
		return NULL;
	}
	r->nslots = slots;
	r->burst = burst;
	r->period = period;
	return r;
}

void
mp_ratelimit_free(mp_ratelimit *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->b);
	free(r);
}

int
mp_ratelimit_take(mp_ratelimit *r, const char *key, uint64_t now)
{
	uint64_t h, full;
	bucket *b;
	int rc = MP_OK;

	if (r->burst == 0)
		return MP_OK;
	h = key_hash(r, key);
	full = (uint64_t)r->burst * r->period;
	pthread_mutex_lock(&r->lock);
	b = &r->b[h % r->nslots];
	if (b->key_hash != h) {
		uint64_t elapsed = now > b->last ? now - b->last : 0;
		int refilled = b->key_hash == 0 || b->units + elapsed * r->burst >= full;

		if (refilled) {
			b->key_hash = h;
			b->units = full;
			b->last = now;
		}
		/* else: share the busy bucket (stricter, never looser) */
	}
	if (now > b->last) {
		uint64_t gain = (now - b->last) * r->burst;

		b->units = gain >= full - b->units ? full : b->units + gain;
		b->last = now;
	}
	if (b->units >= r->period)
		b->units -= r->period;
	else
		rc = MP_ERR_RATELIMIT;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int
mp_ratelimit_parse(const char *text, unsigned *burst, uint64_t *period)
{
	const char *slash = strchr(text, '/');
	char num[32];
	long long n, p;
	size_t len;

	if (!slash) {
		if (mp_parse_int(text, 0, 0, &n) != MP_OK)
			return MP_ERR_SYNTAX;
		*burst = 0;
		*period = 0;
		return MP_OK;
	}
	len = (size_t)(slash - text);
	if (len == 0 || len >= sizeof num)
		return MP_ERR_SYNTAX;
	memcpy(num, text, len);
	num[len] = '\0';
	if (mp_parse_int(num, 0, 1000000, &n) != MP_OK ||
	    mp_parse_duration(slash + 1, 1, 365 * 86400LL, &p) != MP_OK)
		return MP_ERR_SYNTAX;
	*burst = (unsigned)n;
	*period = (uint64_t)p;
	return MP_OK;
}
