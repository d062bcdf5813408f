/*
 * replay.h - freshness of a block: its timestamp and its session ID.
 *
 * mp_check_time() accepts a timestamp no older than max_age and no more
 * than max_future ahead of now (clock skew between two mail users).
 * An mp_replay remembers session IDs in a fixed amount of memory; size it
 * for the blocks expected within max_age.  When it is full it forgets the oldest insertion and
 * raises a floor: from then on any block not newer than the forgotten one
 * is refused too, because we can no longer prove it is not a replay.
 * Forgetting therefore costs availability for old mail, never safety.
 * Not thread-safe: a multi-threaded caller locks around it.
 * Errors: MP_ERR_EXPIRED, MP_ERR_FUTURE, MP_ERR_REPLAY, MP_ERR_NOMEM.
 */
#ifndef MAILPUNCH_REPLAY_H
#define MAILPUNCH_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/block.h"

int mp_check_time(uint64_t timestamp, uint64_t now, uint64_t max_age, uint64_t max_future);

typedef struct mp_replay mp_replay;

/* capacity: how many session IDs are remembered at most. */
mp_replay *mp_replay_new(size_t capacity);
/* MP_OK and remembers sid, or MP_ERR_REPLAY if seen (or below the floor). */
int mp_replay_check(mp_replay *r, const uint8_t sid[MP_SESSION_ID_LEN],
                    uint64_t timestamp);
/* Forget sid again: its mail could not be handled and will be retried.
 * (A retried block carries the same time, so the floor stays safe.) */
void mp_replay_forget(mp_replay *r, const uint8_t sid[MP_SESSION_ID_LEN]);
size_t mp_replay_count(const mp_replay *r);
void mp_replay_free(mp_replay *r);

#endif
