/*
 * table.c - the backend-neutral control-table functions (see table.h).
 *
 * Checks arguments, then dispatches through the backend's mp_table_ops
 * (table_priv.h).  The one piece of policy kept here is the identity
 * binding on upsert: the uid must be the hash of the pubid.  Hashing is
 * SHA-256 through OpenSSL (close to a microsecond), so it is done only
 * when the backend reports the uid as new, and outside the backend's
 * lock; an entry already present was checked when it was inserted.
 * Errors: MP_ERR_INVAL for impossible arguments, else whatever the
 * backend returns.
 */
#include <string.h>

#include "mailpunch/error.h"
#include "mailpunch/table.h"
#include "table_priv.h"

static int
terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* What every backend may rely on: strings terminated within their
 * arrays, a candidate count the type can hold, and stored candidates
 * (the first MP_TABLE_CAND) of family 4 or 6 as block.h defines them. */
static int
entry_ok(const mp_table_entry *e)
{
	size_t i, n;

	if (!terminated(e->name, sizeof e->name) ||
	    !terminated(e->reply_addr, sizeof e->reply_addr) ||
	    e->ep.ncand > MP_MAX_CANDIDATES)
		return 0;
	n = e->ep.ncand < MP_TABLE_CAND ? e->ep.ncand : MP_TABLE_CAND;
	for (i = 0; i < n; i++)
		if (e->ep.cand[i].family != 4 && e->ep.cand[i].family != 6)
			return 0;
	return 1;
}

static int
upsert(mp_table *t, const mp_table_entry *e, int if_newer, int *was_new)
{
	int rc;

	if (!t || !e || !entry_ok(e))
		return MP_ERR_INVAL;
	rc = t->ops->upsert(t, e, 0, if_newer, was_new);
	if (rc != MP_TABLE_NEED_VERIFY)
		return rc;
	if (!mp_pubid_matches_uid(&e->id, &e->uid))
		return MP_ERR_INVAL;
	rc = t->ops->upsert(t, e, 1, if_newer, was_new);
	/* A verified upsert never asks again; keep the contract visible. */
	return rc == MP_TABLE_NEED_VERIFY ? MP_ERR_INVAL : rc;
}

int
mp_table_upsert(mp_table *t, const mp_table_entry *e, int *was_new)
{
	int rc = upsert(t, e, 0, was_new);

	return rc == MP_TABLE_NOT_NEWER ? MP_ERR_INVAL : rc;
}

int
mp_table_merge(mp_table *t, const mp_table_entry *e, int *applied)
{
	int rc, was_new;

	if (applied)
		*applied = 0;
	rc = upsert(t, e, 1, &was_new);
	if (rc == MP_TABLE_NOT_NEWER)
		return MP_OK;
	if (rc == MP_OK && applied)
		*applied = 1;
	return rc;
}

int
mp_table_select(mp_table *t, const mp_uid *exclude, uint64_t now, uint64_t max_age,
                mp_table_entry *out, size_t max, size_t *n)
{
	if (n)
		*n = 0;
	if (!t || !n || (max > 0 && !out))
		return MP_ERR_INVAL;
	if (max == 0)
		return MP_OK;
	return t->ops->select(t, exclude, now, max_age, out, max, n);
}

int
mp_table_get(mp_table *t, const mp_uid *uid, mp_table_entry *out)
{
	if (!t || !uid || !out)
		return MP_ERR_INVAL;
	return t->ops->get(t, uid, out);
}

int
mp_table_set_flags(mp_table *t, const mp_uid *uid, uint8_t set, uint8_t clear)
{
	if (!t || !uid)
		return MP_ERR_INVAL;
	return t->ops->set_flags(t, uid, set, clear);
}

int
mp_table_delete(mp_table *t, const mp_uid *uid)
{
	if (!t || !uid)
		return MP_ERR_INVAL;
	return t->ops->delete(t, uid);
}

int
mp_table_expire(mp_table *t, uint64_t now, uint64_t max_age, size_t *removed)
{
	size_t dummy;

	if (!removed)
		removed = &dummy;
	*removed = 0;
	if (!t)
		return MP_ERR_INVAL;
	if (max_age == 0)           /* no age limit: nothing is too old */
		return MP_OK;
	return t->ops->expire(t, now, max_age, removed);
}

int
mp_table_flush(mp_table *t)
{
	if (!t)
		return MP_ERR_INVAL;
	return t->ops->flush(t);
}

void
mp_table_count(mp_table *t, mp_stat which, uint64_t n)
{
	/* Counting must never fail a mail: bad arguments are ignored. */
	if (!t || (unsigned)which >= MP_STAT_COUNT || n == 0)
		return;
	t->ops->count(t, which, n);
}

void
mp_table_stats_get(mp_table *t, mp_table_stats *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof *out);
	if (t)
		t->ops->stats(t, out);
}

void
mp_table_close(mp_table *t)
{
	if (t)
		t->ops->close(t);
}

const char *
mp_stat_name(mp_stat which)
{
	/* Stable names: they appear in the control protocol and in logs. */
	static const char *const names[MP_STAT_COUNT] = {
		[MP_STAT_REQUESTS] = "requests",
		[MP_STAT_REPLIES] = "replies",
		[MP_STAT_NOTICES] = "notices",
		[MP_STAT_SIGNALS] = "signals",
		[MP_STAT_DROP_NOBLOCK] = "drop_noblock",
		[MP_STAT_DROP_BADBLOCK] = "drop_badblock",
		[MP_STAT_DROP_STALE] = "drop_stale",
		[MP_STAT_DROP_REPLAY] = "drop_replay",
		[MP_STAT_DROP_AUTO] = "drop_auto",
		[MP_STAT_DROP_SENDER] = "drop_sender",
		[MP_STAT_DROP_CONFLICT] = "drop_conflict",
		[MP_STAT_DROP_UNKNOWN] = "drop_unknown",
		[MP_STAT_DROP_TOOBIG] = "drop_toobig",
		[MP_STAT_RATELIMITED] = "ratelimited",
		[MP_STAT_EVICTIONS] = "evictions",
		[MP_STAT_EXPIRATIONS] = "expirations",
		[MP_STAT_SYNCS] = "syncs",
		[MP_STAT_SYNC_MERGED] = "sync_merged",
		[MP_STAT_FORWARDED] = "forwarded",
	};

	if ((unsigned)which >= MP_STAT_COUNT || !names[which])
		return "unknown";
	return names[which];
}
