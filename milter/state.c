/*
 * state.c - configuration snapshots and reload (see state.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "state.h"

milter_state milter;

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static milter_snapshot *current;

static void
snapshot_free(milter_snapshot *snap)
{
	mp_hostkey_free(snap->key);
	milter_settings_free(snap->settings);
	free(snap);
}

int
milter_snapshot_new(milter_settings *s, const milter_snapshot *prev, milter_snapshot **out,
                    char *err, size_t errlen)
{
	milter_snapshot *snap = calloc(1, sizeof *snap);
	size_t i;
	int rc;

	if (!snap) {
		milter_settings_free(s);
		return MP_ERR_NOMEM;
	}
	snap->settings = s;
	snap->refs = 1;         /* the caller's, until it publishes or puts it */
	rc = mp_hostkey_load(s->host_key, &snap->key);
	if (rc != MP_OK && prev && strcmp(prev->settings->host_key, s->host_key) == 0) {
		mp_log(MP_LOG_NOTICE, "host key %s not readable now (%s); keeping the loaded one",
		       s->host_key, mp_strerror(rc));
		rc = mp_hostkey_dup(prev->key, &snap->key);
	}
	if (rc != MP_OK) {
		snprintf(err, errlen, "host key %s: %s%s%s", s->host_key, mp_strerror(rc),
		         rc == MP_ERR_IO ? ": " : "", rc == MP_ERR_IO ? strerror(errno) : "");
		snapshot_free(snap);
		return rc;
	}
	snap->hc.key = snap->key;
	snap->hc.rendezvous = &s->rendezvous;
	snap->hc.peers_per_reply = (unsigned)s->peers_per_reply;
	snap->hc.max_age = (uint64_t)s->entry_lifetime;
	snap->hc.max_future = (uint64_t)s->max_clock_skew;
	snap->hc.require_sender_match = s->require_sender_match;
	snap->hc.require_auth_pass = s->require_auth_pass;
	snap->hc.subject_marker = s->subject_marker;
	snap->hc.max_message_size = (size_t)s->max_message_size;
	for (i = 0; i < s->peer_lines.count && i < MILTER_MAX_PEERS; i++) {
		rc = mp_host_peer_parse(s->peer_lines.items[i], &snap->peers[i]);
		if (rc != MP_OK) {
			snprintf(err, errlen, "Peer %s: %s (want ADDRESS and an mph1. key or a key file)",
			         s->peer_lines.items[i], mp_strerror(rc));
			snapshot_free(snap);
			return MP_ERR_CONFIG;
		}
		snap->peer_down[i] = mp_strlist_contains(&s->peers_down, snap->peers[i].addr);
	}
	snap->hc.peers = snap->peers;
	snap->hc.npeers = i;
	*out = snap;
	return MP_OK;
}

void
milter_snapshot_publish(milter_snapshot *snap)
{
	milter_snapshot *old;

	snap->refs = 1;
	pthread_mutex_lock(&snap_lock);
	old = current;
	current = snap;
	pthread_mutex_unlock(&snap_lock);
	if (old)
		milter_snapshot_put(old);
}

milter_snapshot *
milter_snapshot_get(void)
{
	milter_snapshot *snap;

	pthread_mutex_lock(&snap_lock);
	snap = current;
	if (snap)
		snap->refs++;
	pthread_mutex_unlock(&snap_lock);
	return snap;
}

void
milter_snapshot_put(milter_snapshot *snap)
{
	int last;

	if (!snap)
		return;
	pthread_mutex_lock(&snap_lock);
	last = --snap->refs == 0;
	pthread_mutex_unlock(&snap_lock);
	if (last)
		snapshot_free(snap);
}

void
milter_state_clear(void)
{
	milter_snapshot *old;

	pthread_mutex_lock(&snap_lock);
	old = current;
	current = NULL;
	pthread_mutex_unlock(&snap_lock);
	milter_snapshot_put(old);
}

static int
str_differs(const char *a, const char *b)
{
	if (!a || !b)
		return a != b;
	return strcmp(a, b) != 0;
}

/* Settings bound to sockets, memory or privileges opened at start. */
static void
warn_restart_needed(const milter_settings *old, const milter_settings *new)
{
	static const char *what = "changed; restart the milter to apply it";

	if (str_differs(old->socket, new->socket))
		mp_log(MP_LOG_WARNING, "reload: Socket %s", what);
	if (str_differs(old->table, new->table) || old->table_capacity != new->table_capacity)
		mp_log(MP_LOG_WARNING, "reload: Table or TableCapacity %s", what);
	if (str_differs(old->control_socket, new->control_socket))
		mp_log(MP_LOG_WARNING, "reload: ControlSocket %s", what);
	/* the sync thread runs only if there were peers at start */
	if (old->peer_lines.count == 0 && new->peer_lines.count > 0)
		mp_log(MP_LOG_WARNING, "reload: first Peer entries %s", what);
	if (str_differs(old->user, new->user))
		mp_log(MP_LOG_WARNING, "reload: UserID %s", what);
	if (str_differs(old->reply_rate, new->reply_rate) ||
	    str_differs(old->client_rate, new->client_rate) ||
	    old->replay_cache != new->replay_cache)
		mp_log(MP_LOG_WARNING, "reload: rate limits or ReplayCacheSize %s", what);
}

int
milter_state_reload(char *err, size_t errlen)
{
	milter_settings *s;
	milter_snapshot *snap, *old;
	int rc = milter_settings_load(milter.config_path, &s, err, errlen);

	if (rc != MP_OK)
		return rc;
	old = milter_snapshot_get();
	if ((rc = milter_snapshot_new(s, old, &snap, err, errlen)) != MP_OK) {
		milter_snapshot_put(old);
		return rc;
	}
	if (old)
		warn_restart_needed(old->settings, s);
	/* reopening also serves logrotate: a reload reopens a log file */
	mp_log_open(s->log_dest, "mailpunch-milter", (mp_log_level)s->log_level);
	milter_snapshot_put(old);
	milter_snapshot_publish(snap);
	return MP_OK;
}
