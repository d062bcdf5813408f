/*
 * ratelimit.h - token buckets keyed by a string (a mail address, an IP).
 *
 * Each key may spend `burst` tokens at once and regains them at
 * burst per `period` seconds.  Memory is fixed at creation: keys hash
 * into `slots` buckets, and a new key whose bucket is taken by another
 * key replaces it only once that key has refilled completely (so a flood
 * of fresh keys cannot wipe out the limit of a key that is being
 * limited right now; it then shares that key's bucket, which only makes
 * the limit stricter).  Thread-safe.
 * Errors: mp_ratelimit_take() returns MP_OK or MP_ERR_RATELIMIT.
 */
#ifndef MAILPUNCH_RATELIMIT_H
#define MAILPUNCH_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mp_ratelimit mp_ratelimit;

/* burst 0 disables limiting (every take succeeds). */
mp_ratelimit *mp_ratelimit_new(size_t slots, unsigned burst, uint64_t period);
int mp_ratelimit_take(mp_ratelimit *r, const char *key, uint64_t now);
void mp_ratelimit_free(mp_ratelimit *r);

/* Parses "N/PERIOD" such as "20/1h", "5/10m", "0" (off). */
int mp_ratelimit_parse(const char *text, unsigned *burst, uint64_t *period);

#endif
