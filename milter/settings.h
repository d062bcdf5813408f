/*
 * settings.h - mailpunch-milter's configuration (milter.conf).
 *
 * Interface: milter_settings_load() reads a `key value` file into a
 * milter_settings (see mailpunch-milter.conf(5) for every key) and
 * checks the values that need more than a type (modes, user, rates);
 * milter_settings_free() releases it.  A reload loads a fresh copy and
 * swaps it in whole (see main.c), so no field is ever half updated.
 * Errors: MP_ERR_CONFIG / MP_ERR_IO / MP_ERR_NOMEM with a message
 * "file:line: reason" in err.
 */
#ifndef MAILPUNCH_MILTER_SETTINGS_H
#define MAILPUNCH_MILTER_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/config.h"
#include "mailpunch/log.h"

#define MILTER_MAX_PEERS 32

typedef struct milter_settings {
	char *socket;                  /* Socket */
	char *socket_mode;             /* SocketMode, octal text */
	mp_strlist rendezvous;         /* RendezvousAddress */
	char *host_key;                /* HostKey */
	char *table;                   /* Table: "/name" (shm), a file path, redis://... */
	long long table_capacity;      /* TableCapacity */
	char *table_mode;              /* TableMode */
	long long entry_lifetime;      /* EntryLifetime, seconds */
	long long max_clock_skew;      /* MaxClockSkew, seconds */
	long long peers_per_reply;     /* PeersPerReply */
	char *control_socket;          /* ControlSocket */
	char *control_mode;            /* ControlSocketMode */
	char *control_group;           /* ControlSocketGroup */
	char *user;                    /* UserID: user[:group] */
	char *pid_file;                /* PidFile */
	char *log_dest;                /* LogDestination */
	int log_level;                 /* LogLevel */
	long long max_message_size;    /* MaxMessageSize */
	int require_sender_match;      /* RequireSenderMatch */
	int require_auth_pass;         /* RequireAuthPass */
	char *authserv_id;             /* AuthservID */
	char *reply_rate;              /* ReplyRateLimit "N/period" */
	char *client_rate;             /* ClientRateLimit */
	long long replay_cache;        /* ReplayCacheSize */
	char *subject_marker;          /* SubjectMarker */
	char *reply_method;            /* ReplyMethod: rewrite | inject */
	char *sendmail;                /* SendmailCommand */
	char *inject_socket;           /* InjectSocket: SMTP instead of sendmail */
	long long inject_timeout;      /* InjectTimeout, seconds */
	mp_strlist peer_lines;         /* Peer "ADDRESS KEY", repeatable */
	long long sync_interval;       /* SyncInterval, seconds; 0 = no pushes */
	int representative;            /* Representative */
	mp_strlist peers_down;         /* PeerDown */
	long long peer_retry;          /* PeerRetry: a bounced peer rests this long */

	/* derived by milter_settings_load() */
	unsigned socket_mode_bits, table_mode_bits, control_mode_bits;
	unsigned reply_burst, client_burst;
	int rewrite_replies;           /* ReplyMethod rewrite */
	uint64_t reply_period, client_period;
} milter_settings;

int milter_settings_load(const char *path, milter_settings **out, char *err, size_t errlen);
void milter_settings_free(milter_settings *s);

#endif
