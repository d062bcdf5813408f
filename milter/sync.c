/*
 * sync.c - pushes table entries to peer hosts (see sync.h).
 *
 * One thread; its state (per peer: time of the last successful push,
 * whether a whole table was asked for) is indexed like the snapshot's
 * peers and reset for an index whose address changed on a reload.
 * Loops between hosts end by themselves: an entry merged from a peer
 * keeps its own (older) time, so it is not pushed on unless it arrived
 * after our last push, and pushing it back changes nothing there
 * (mp_table_merge needs a strictly newer time).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "inject.h"
#include "mailpunch/error.h"
#include "mailpunch/hostsync.h"
#include "mailpunch/log.h"
#include "state.h"
#include "sync.h"

#define PUSH_MAX 1024      /* entries per peer and round */
#define FULL_MAX 4096      /* entries in answer to a whole-table request */

struct peer_state {
	char addr[MP_ADDR_MAX + 1];
	uint64_t last_push;
	int full_wanted;
};

/* Apart from peers[] so that a reload's reset does not revive a peer. */
static _Atomic uint64_t resting_until[MILTER_MAX_PEERS];

static pthread_t thread;
static int running, stopping, kicked;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct peer_state peers[MILTER_MAX_PEERS];

void
milter_sync_request_full(int p)
{
	if (p < 0 || p >= MILTER_MAX_PEERS)
		return;
	pthread_mutex_lock(&lock);
	peers[p].full_wanted = 1;
	kicked = 1;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
}

int
milter_sync_peer_usable(const milter_snapshot *snap, int p, uint64_t now)
{
	if (p < 0 || (size_t)p >= snap->hc.npeers || snap->peer_down[p])
		return 0;
	return now >= atomic_load(&resting_until[p]);
}

static int
contains(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; n && i + n <= len; i++)
		if (strncasecmp(hay + i, needle, n) == 0)
			return 1;
	return 0;
}

int
milter_sync_bounce(const milter_snapshot *snap, const char *body, size_t len, uint64_t now)
{
	size_t p;
	int found = 0;

	for (p = 0; p < snap->hc.npeers; p++) {
		if (!contains(body, len, snap->peers[p].addr))
			continue;
		atomic_store(&resting_until[p], now + (uint64_t)snap->settings->peer_retry);
		mp_log(MP_LOG_WARNING, "peer %s marked down for %llds: a bounce names it",
		       snap->peers[p].addr, snap->settings->peer_retry);
		found++;
	}
	return found;
}

/* Sends e[0..n) to peer p in mails of MP_SYNC_MAX_ENTRIES; want_full
 * (with n == 0) is the bootstrap question. */
static int
send_entries(const milter_snapshot *snap, int p, const mp_table_entry *e, size_t n,
             int want_full, uint64_t now)
{
	const milter_settings *s = snap->settings;
	const mp_host_peer *peer = &snap->peers[p];
	size_t off = 0;
	char err[256];

	do {
		size_t k = n - off < MP_SYNC_MAX_ENTRIES ? n - off : MP_SYNC_MAX_ENTRIES;
		char *mail;
		size_t len;
		int rc;

		rc = mp_hostsync_compose(snap->key, s->rendezvous.items[0], s->subject_marker, peer,
		                         e + off, k, want_full, now, &mail, &len);
		if (rc != MP_OK) {
			mp_log(MP_LOG_ERR, "table sync to %s: %s", peer->addr, mp_strerror(rc));
			return rc;
		}
		rc = milter_send(s, s->rendezvous.items[0], peer->addr, mail, len, err, sizeof err);
		free(mail);
		if (rc != MP_OK) {
			mp_log(MP_LOG_WARNING, "table sync to %s not sent: %s", peer->addr, err);
			return rc;
		}
		off += k;
	} while (off < n);
	return MP_OK;
}

/* Entries dated at or after `since` (0: all within the lifetime). */
static int
changed_since(const milter_snapshot *snap, uint64_t since, uint64_t now, size_t max,
              mp_table_entry **out, size_t *n)
{
	uint64_t life = (uint64_t)snap->settings->entry_lifetime;
	uint64_t age = since && now > since && now - since < life ? now - since : life;
	int rc;

	*n = 0;
	if (!(*out = calloc(max, sizeof **out)))
		return MP_ERR_NOMEM;
	if (since >= now && since)
		return MP_OK;
	rc = mp_table_select(milter.table, NULL, now, age, *out, max, n);
	return rc;
}

static void
round_for_peer(const milter_snapshot *snap, int p, int push_due, uint64_t now)
{
	struct peer_state *ps = &peers[p];
	mp_table_entry *e = NULL;
	size_t n = 0;
	int full, rc;

	pthread_mutex_lock(&lock);
	full = ps->full_wanted;
	ps->full_wanted = 0;
	pthread_mutex_unlock(&lock);
	if (!full && !push_due)
		return;
	if (snap->settings->representative) {
		/* a representative keeps no table of its own to push: it probes
		 * (an empty sync), so that an unreachable peer bounces */
		if (push_due && send_entries(snap, p, NULL, 0, 0, now) == MP_OK)
			ps->last_push = now;
		return;
	}
	rc = changed_since(snap, full ? 0 : ps->last_push, now, full ? FULL_MAX : PUSH_MAX, &e, &n);
	if (rc == MP_OK && (n > 0 || full))
		rc = send_entries(snap, p, e, n, 0, now);
	free(e);
	if (rc == MP_OK) {
		if (n)
			mp_log(MP_LOG_INFO, "table sync: %zu entr%s sent to %s%s", n, n == 1 ? "y" : "ies",
			       snap->peers[p].addr, full ? " (whole table, as asked)" : "");
		if (!full)
			ps->last_push = now;
	} else if (full) {
		pthread_mutex_lock(&lock);
		ps->full_wanted = 1;        /* try again next round */
		pthread_mutex_unlock(&lock);
	}
}

/* Only peers that are not marked down, and state matching the config. */
static void
align_state(const milter_snapshot *snap)
{
	size_t p;

	pthread_mutex_lock(&lock);
	for (p = 0; p < snap->hc.npeers; p++)
		if (strcmp(peers[p].addr, snap->peers[p].addr) != 0) {
			memset(&peers[p], 0, sizeof peers[p]);
			strcpy(peers[p].addr, snap->peers[p].addr);
		}
	pthread_mutex_unlock(&lock);
}

static void
bootstrap(const milter_snapshot *snap, uint64_t now)
{
	mp_table_stats st;
	size_t p;

	mp_table_stats_get(milter.table, &st);
	if (st.entries != 0 || snap->settings->representative)
		return;
	for (p = 0; p < snap->hc.npeers; p++)
		if (!snap->peer_down[p] && send_entries(snap, (int)p, NULL, 0, 1, now) == MP_OK)
			mp_log(MP_LOG_NOTICE, "table empty: asked peer %s for its table",
			       snap->peers[p].addr);
}

static void *
sync_main(void *arg)
{
	uint64_t next_push = 0;
	int first = 1;

	(void)arg;
	for (;;) {
		milter_snapshot *snap;
		uint64_t now = (uint64_t)time(NULL), interval;
		struct timespec until;
		size_t p;

		snap = milter_snapshot_get();
		if (!snap)
			break;
		interval = (uint64_t)snap->settings->sync_interval;
		align_state(snap);
		if (first && snap->hc.npeers) {
			bootstrap(snap, now);
			next_push = now + (interval ? interval : 1);
		}
		first = 0;
		for (p = 0; p < snap->hc.npeers; p++)
			if (milter_sync_peer_usable(snap, (int)p, now))
				round_for_peer(snap, (int)p, interval && now >= next_push, now);
		if (interval && now >= next_push)
			next_push = now + interval;
		milter_snapshot_put(snap);

		pthread_mutex_lock(&lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		while (!stopping && !kicked)
			if (pthread_cond_timedwait(&wake, &lock, &until) != 0)
				break;
		kicked = 0;
		if (stopping) {
			pthread_mutex_unlock(&lock);
			break;
		}
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

int
milter_sync_start(void)
{
	stopping = 0;
	if (pthread_create(&thread, NULL, sync_main, NULL) != 0)
		return MP_ERR_NOMEM;
	running = 1;
	return MP_OK;
}

void
milter_sync_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&lock);
	stopping = 1;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	running = 0;
}
