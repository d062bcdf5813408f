/*
 * table_priv.h - what a control-table backend provides, and test hooks.
 *
 * An mp_table is a backend object whose first member is struct mp_table:
 * table.c checks arguments and dispatches through mp_table_ops, so a
 * Redis backend can be added without touching callers.  Backend
 * functions get arguments already checked (non-NULL pointers, strings
 * terminated, ncand <= MP_MAX_CANDIDATES, candidate families 4 or 6) and
 * return the mp_err codes documented in mailpunch/table.h.
 *
 * Upsert verification contract: table.c calls ops->upsert with
 * verified = 0 first.  A backend that finds e->uid already present with
 * the same id updates it (that uid was checked against its id when it
 * was inserted); present with another id -> MP_ERR_CONFLICT; absent ->
 * it returns MP_TABLE_NEED_VERIFY without changing anything.  table.c
 * then derives the uid from the id (SHA-256, slow: outside any lock) and
 * calls again with verified = 1, or refuses with MP_ERR_INVAL.
 *
 * The mp_table_shm_debug_* functions exist for the unit tests and the
 * benchmark; the daemons must not call them.
 */
#ifndef MAILPUNCH_LIB_TABLE_PRIV_H
#define MAILPUNCH_LIB_TABLE_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/table.h"

/* Positive on purpose: never confused with an mp_err. */
#define MP_TABLE_NEED_VERIFY 1
/* A merge found the stored entry as new or newer: nothing changed. */
#define MP_TABLE_NOT_NEWER 2

struct mp_table_ops {
	/* if_newer: leave a present entry alone unless e->time is later
	 * (MP_TABLE_NOT_NEWER); the identity conflict is reported first. */
	int (*upsert)(mp_table *t, const mp_table_entry *e, int verified, int if_newer,
	              int *was_new);
	int (*select)(mp_table *t, const mp_uid *exclude, uint64_t now, uint64_t max_age,
	              mp_table_entry *out, size_t max, size_t *n);
	int (*get)(mp_table *t, const mp_uid *uid, mp_table_entry *out);
	int (*set_flags)(mp_table *t, const mp_uid *uid, uint8_t set, uint8_t clear);
	int (*delete)(mp_table *t, const mp_uid *uid);
	int (*expire)(mp_table *t, uint64_t now, uint64_t max_age, size_t *removed);
	int (*flush)(mp_table *t);
	void (*count)(mp_table *t, mp_stat which, uint64_t n);
	void (*stats)(mp_table *t, mp_table_stats *out);
	void (*close)(mp_table *t);
};

/* Backends embed this as their first member. */
struct mp_table {
	const struct mp_table_ops *ops;
};

/* ---------------------------------------------------------------- shm backend */

/* Largest capacity mp_table_shm_open() accepts (indexes are 32-bit). */
#define MP_TABLE_SHM_MAX_CAPACITY ((size_t)1 << 26)

/* Where things live in the mapping (the tests corrupt them). */
#define MP_TABLE_SHM_MAGIC_OFFSET 0      /* uint64_t */
#define MP_TABLE_SHM_VERSION_OFFSET 8    /* uint32_t */
#define MP_TABLE_SHM_BOOT_ID_OFFSET 56   /* char[40], kernel boot ID text */
#define MP_TABLE_SHM_LOCK_OFFSET 128     /* pthread_mutex_t */
/* ... and in an entry; entries fill the last capacity * entry_size bytes */
#define MP_TABLE_SHM_ENTRY_TIME_OFFSET 0     /* uint64_t */
#define MP_TABLE_SHM_ENTRY_UID_OFFSET 28     /* mp_uid */
#define MP_TABLE_SHM_ENTRY_ID_OFFSET 44      /* mp_pubid */
#define MP_TABLE_SHM_ENTRY_NAME_OFFSET 184   /* char[MP_NAME_MAX + 1] */

/* Bytes of one stored entry, and of the whole mapping for a capacity
 * (header + hash index + entries); 0 if the capacity is out of range. */
size_t mp_table_shm_entry_size(void);
size_t mp_table_shm_mapping_size(size_t capacity);

/* Places where a mutation can be made to die (SIGKILL, lock held). */
enum mp_table_shm_crash {
	MP_TABLE_CRASH_NONE = 0,
	MP_TABLE_CRASH_INSERT_DATA,  /* new entry half written, not yet marked used */
	MP_TABLE_CRASH_INSERT_LINK,  /* new entry committed, half linked */
	MP_TABLE_CRASH_UPDATE_DATA,  /* existing entry half overwritten */
	MP_TABLE_CRASH_EVICT_DATA,   /* oldest entry half overwritten by a new one */
	MP_TABLE_CRASH_DELETE_LINK,  /* deleted entry unmarked, half unlinked */
	MP_TABLE_CRASH_FLUSH,        /* flush half done */
};

/* Test hooks: only valid on a table from mp_table_shm_open(). */
void mp_table_shm_debug_crash_at(mp_table *t, enum mp_table_shm_crash where);
int mp_table_shm_debug_lock(mp_table *t);     /* takes the table lock */
void mp_table_shm_debug_unlock(mp_table *t);
/* Full consistency check under the lock: recency list both ways, hash
 * chains, free list, counts, no pending undo/flush, every entry valid
 * (deep: also uid == hash of id).  MP_OK, or MP_ERR_MALFORMED with a
 * reason in why. */
int mp_table_shm_debug_check(mp_table *t, int deep, char *why, size_t whylen);
/* How many times a dead lock holder's mess was repaired. */
uint64_t mp_table_shm_debug_repairs(mp_table *t);

#endif
