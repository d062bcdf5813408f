/*
 * table.h - the host's control table: each member's latest request.
 *
 * Seed 001's control table (address, user ID, mail address, flag, date),
 * bounded: newest first, the oldest entry overwritten when full, entries
 * older than the configured age never handed out, failure flags.
 *
 * Interface: an mp_table is opened on a storage backend (POSIX shared
 * memory or a file-backed mapping, see mp_table_shm_open(); or Redis,
 * shared by the MX machines of a cluster, see mp_table_redis_open();
 * mp_table_open() picks one by the spec's form) and then used through
 * the backend-neutral functions below, which are safe to call from many
 * threads and from several processes attached to the same table.
 * Counters (mp_stat) live with the table so that they survive a restart
 * and are visible to every attached process.
 * Errors: MP_ERR_NOTFOUND, MP_ERR_CONFLICT (user ID already bound to
 * another identity key), MP_ERR_INCOMPATIBLE (storage made by another
 * layout version or capacity), MP_ERR_IO (errno kept), MP_ERR_NOMEM,
 * MP_ERR_INVAL, MP_ERR_UNAVAILABLE (backend unreachable: tempfail).
 */
#ifndef MAILPUNCH_TABLE_H
#define MAILPUNCH_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/block.h"
#include "mailpunch/keys.h"

/* Candidates kept per entry: agents list their best candidates first. */
#define MP_TABLE_CAND 4

typedef struct mp_table_entry {
	mp_uid uid;                          /* derived from id */
	mp_pubid id;
	char name[MP_NAME_MAX + 1];
	char reply_addr[MP_ADDR_MAX + 1];
	mp_endpoints ep;                     /* ep.ncand <= MP_TABLE_CAND when read */
	uint64_t time;                       /* of the member's last request */
	uint8_t flags;                       /* MP_PEER_FAILED */
} mp_table_entry;

typedef enum mp_stat {
	MP_STAT_REQUESTS,          /* valid requests recorded */
	MP_STAT_REPLIES,           /* replies sent */
	MP_STAT_NOTICES,           /* failure notices applied */
	MP_STAT_SIGNALS,           /* signals relayed */
	MP_STAT_DROP_NOBLOCK,      /* rendezvous mail without a block */
	MP_STAT_DROP_BADBLOCK,     /* block failed to open (forged, garbled) */
	MP_STAT_DROP_STALE,        /* too old or in the future */
	MP_STAT_DROP_REPLAY,       /* session ID seen before */
	MP_STAT_DROP_AUTO,         /* auto-reply, bounce, list mail */
	MP_STAT_DROP_SENDER,       /* reply address != envelope sender */
	MP_STAT_DROP_CONFLICT,     /* user ID bound to another key */
	MP_STAT_DROP_UNKNOWN,      /* notice/signal for an unknown user */
	MP_STAT_DROP_TOOBIG,       /* over the size limit */
	MP_STAT_RATELIMITED,       /* refused by a rate limit */
	MP_STAT_EVICTIONS,         /* oldest overwritten because full */
	MP_STAT_EXPIRATIONS,       /* removed for age */
	MP_STAT_SYNCS,             /* TABLE_SYNC blocks accepted from peer hosts */
	MP_STAT_SYNC_MERGED,       /* entries they brought that were newer */
	MP_STAT_FORWARDED,         /* requests a representative passed on */
	MP_STAT_COUNT
} mp_stat;

typedef struct mp_table_stats {
	uint64_t counter[MP_STAT_COUNT];
	uint64_t entries;
	uint64_t capacity;
} mp_table_stats;

typedef struct mp_table mp_table;

/* Flags for mp_table_shm_open(). */
#define MP_TABLE_CREATE 0x1   /* create the storage if it does not exist */

/*
 * name "/mailpunch" (one leading slash, no other): POSIX shared memory
 * (lives in /dev/shm until reboot).  Any other absolute path: a file
 * mapped shared, so the table also survives a reboot.  An existing
 * table whose header does not match this build's layout or the given
 * capacity is refused with MP_ERR_INCOMPATIBLE (never reinterpreted).
 * capacity 0 attaches to an existing table with whatever capacity it has
 * (a missing table is then MP_ERR_NOTFOUND even with MP_TABLE_CREATE).
 * mode applies at creation, exactly (not narrowed by the umask).  The
 * whole table is allocated at creation (about 508 bytes per entry).
 * Concurrent creators and attachers are serialised: nobody sees a half-
 * made table; an attacher without MP_TABLE_CREATE waits up to a second
 * for a creator that is initialising it, then gets MP_ERR_NOTFOUND.
 */
int mp_table_shm_open(const char *name, size_t capacity, int flags, unsigned mode,
                      mp_table **out);
/* Removes the storage (not the attached mappings). */
int mp_table_shm_unlink(const char *name);

/* Largest capacity mp_table_redis_open() accepts. */
#define MP_TABLE_REDIS_MAX_CAPACITY ((size_t)1 << 26)

/*
 * url "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME]" (port
 * 6379, db 0, prefix "mailpunch" by default; a password is sent with
 * AUTH on each connection): the table lives in Redis under keys starting
 * with NAME, so several milters on several machines share it with the
 * semantics above (every mutation is one atomic server-side script).
 * capacity and MP_TABLE_CREATE as for mp_table_shm_open().  When Redis
 * cannot be reached, at open or later, calls return MP_ERR_UNAVAILABLE
 * (the milter tempfails: never an answer from a table it cannot read).
 */
int mp_table_redis_open(const char *url, size_t capacity, int flags, mp_table **out);
/* 1 if url is a well-formed redis:// URL (nothing is contacted). */
int mp_table_redis_url_ok(const char *url);
/* Deletes the table's keys. */
int mp_table_redis_unlink(const char *url);
/* spec fit for a log: a Redis URL's user and password replaced by ***. */
void mp_table_spec_redacted(const char *spec, char *buf, size_t len);
/* 1 if spec is a redis:// URL. */
int mp_table_is_redis(const char *spec);
/* mp_table_redis_open() for a redis:// URL, else mp_table_shm_open(). */
int mp_table_open(const char *spec, size_t capacity, int flags, unsigned mode, mp_table **out);
void mp_table_close(mp_table *t);

/* Insert or replace the entry for e->uid, placed by e->time: normally
 * the current time, so it becomes the newest; an older time (a merge
 * from another host) puts it where it belongs in time order.  A full
 * table overwrites its oldest entry (MP_STAT_EVICTIONS); if the new
 * entry is older than all of them it is itself the one dropped.
 * *was_new (may be NULL) tells whether the user was not in the table.
 * MP_ERR_CONFLICT: e->uid is present with another e->id (unchanged).
 * MP_ERR_INVAL: e->uid is not derived from e->id (checked when the uid
 * is new to the table), a string not terminated within its array,
 * ncand > MP_MAX_CANDIDATES, or a stored candidate (the first
 * MP_TABLE_CAND) with a family other than 4 or 6 or a kind over 127. */
int mp_table_upsert(mp_table *t, const mp_table_entry *e, int *was_new);
/* A merge from another host (TABLE_SYNC): as mp_table_upsert(), except
 * that an entry already present is only replaced by a strictly newer
 * one (e->time later), so merging the same entries again, or in any
 * order, changes nothing.  *applied (may be NULL) says whether it was
 * stored.  MP_ERR_CONFLICT as for upsert, whatever the times. */
int mp_table_merge(mp_table *t, const mp_table_entry *e, int *applied);
/* Up to max entries, newest first, skipping exclude (may be NULL; not
 * counted against max) and entries older than max_age seconds before
 * now (max_age 0: no limit; entries dated after now are included).
 * Flagged entries are included, with their flag.  Stops at the first
 * entry too old, so its cost does not grow with the table. */
int mp_table_select(mp_table *t, const mp_uid *exclude, uint64_t now, uint64_t max_age,
                    mp_table_entry *out, size_t max, size_t *n);
int mp_table_get(mp_table *t, const mp_uid *uid, mp_table_entry *out);
/* flags = (flags | set) & ~clear: a bit in both is cleared. */
int mp_table_set_flags(mp_table *t, const mp_uid *uid, uint8_t set, uint8_t clear);
int mp_table_delete(mp_table *t, const mp_uid *uid);
/* Remove entries older than max_age seconds before now (max_age 0:
 * none), counted as MP_STAT_EXPIRATIONS; *removed may be NULL. */
int mp_table_expire(mp_table *t, uint64_t now, uint64_t max_age, size_t *removed);
int mp_table_flush(mp_table *t);

/* Counters are lock-free; an invalid `which` is ignored. */
void mp_table_count(mp_table *t, mp_stat which, uint64_t n);
void mp_table_stats_get(mp_table *t, mp_table_stats *out);
const char *mp_stat_name(mp_stat which);   /* "requests", "drop_noblock", ... */

#endif
