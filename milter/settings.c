/*
 * settings.c - the option table of milter.conf and the checks that go
 * beyond a value's type (see settings.h).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "mailpunch/ratelimit.h"
#include "mailpunch/table.h"
#include "settings.h"

#define OPT(key, type, field, min, max, deflt, req) \
	{ key, type, offsetof(milter_settings, field), min, max, deflt, req }

static const mp_cfg_option options[] = {
	OPT("Socket", MP_CFG_SOCKET, socket, 0, 0, "unix:/run/mailpunch/milter.sock", 0),
	OPT("SocketMode", MP_CFG_STRING, socket_mode, 0, 0, "0660", 0),
	OPT("RendezvousAddress", MP_CFG_ADDRLIST, rendezvous, 0, 0, NULL, 1),
	OPT("HostKey", MP_CFG_PATH, host_key, 0, 0, "/etc/mailpunch/host.key", 0),
	OPT("Table", MP_CFG_STRING, table, 0, 0, "/mailpunch", 0),
	OPT("TableCapacity", MP_CFG_INT, table_capacity, 16, 10000000, "100000", 0),
	OPT("TableMode", MP_CFG_STRING, table_mode, 0, 0, "0600", 0),
	OPT("EntryLifetime", MP_CFG_DURATION, entry_lifetime, 60, 30 * 86400LL, "12h", 0),
	OPT("MaxClockSkew", MP_CFG_DURATION, max_clock_skew, 0, 86400, "5m", 0),
	OPT("PeersPerReply", MP_CFG_INT, peers_per_reply, 0, 32, "10", 0),
	OPT("ControlSocket", MP_CFG_PATH, control_socket, 0, 0, "/run/mailpunch/control.sock", 0),
	OPT("ControlSocketMode", MP_CFG_STRING, control_mode, 0, 0, "0660", 0),
	OPT("ControlSocketGroup", MP_CFG_STRING, control_group, 0, 0, NULL, 0),
	OPT("UserID", MP_CFG_STRING, user, 0, 0, NULL, 0),
	OPT("PidFile", MP_CFG_PATH, pid_file, 0, 0, NULL, 0),
	OPT("LogDestination", MP_CFG_STRING, log_dest, 0, 0, "syslog", 0),
	OPT("LogLevel", MP_CFG_LEVEL, log_level, 0, 0, "info", 0),
	OPT("MaxMessageSize", MP_CFG_SIZE, max_message_size, 1024, 64LL << 20, "256k", 0),
	OPT("RequireSenderMatch", MP_CFG_BOOL, require_sender_match, 0, 0, "yes", 0),
	OPT("RequireAuthPass", MP_CFG_BOOL, require_auth_pass, 0, 0, "no", 0),
	OPT("AuthservID", MP_CFG_STRING, authserv_id, 0, 0, NULL, 0),
	OPT("ReplyRateLimit", MP_CFG_STRING, reply_rate, 0, 0, "30/1h", 0),
	OPT("ClientRateLimit", MP_CFG_STRING, client_rate, 0, 0, "600/1h", 0),
	OPT("ReplayCacheSize", MP_CFG_INT, replay_cache, 16, 100000000, "200000", 0),
	OPT("SubjectMarker", MP_CFG_STRING, subject_marker, 0, 0, "[mailpunch]", 0),
	OPT("ReplyMethod", MP_CFG_STRING, reply_method, 0, 0, "rewrite", 0),
	OPT("SendmailCommand", MP_CFG_STRING, sendmail, 0, 0, "/usr/sbin/sendmail -i", 0),
	OPT("InjectSocket", MP_CFG_SOCKET, inject_socket, 0, 0, NULL, 0),
	OPT("InjectTimeout", MP_CFG_DURATION, inject_timeout, 1, 600, "60s", 0),
	OPT("Peer", MP_CFG_LINES, peer_lines, 0, 0, NULL, 0),
	OPT("SyncInterval", MP_CFG_DURATION, sync_interval, 0, 86400, "5m", 0),
	OPT("Representative", MP_CFG_BOOL, representative, 0, 0, "no", 0),
	OPT("PeerDown", MP_CFG_ADDRLIST, peers_down, 0, 0, NULL, 0),
	OPT("PeerRetry", MP_CFG_DURATION, peer_retry, 1, 7 * 86400LL, "10m", 0),
};

static int
parse_mode(const char *text, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(text, &end, 8);

	if (*text < '0' || *text > '7' || *end != '\0' || v > 0777)
		return MP_ERR_SYNTAX;
	*out = (unsigned)v;
	return MP_OK;
}

static int
derive(const char *path, milter_settings *s, char *err, size_t errlen)
{
	if (parse_mode(s->socket_mode, &s->socket_mode_bits) != MP_OK ||
	    parse_mode(s->table_mode, &s->table_mode_bits) != MP_OK ||
	    parse_mode(s->control_mode, &s->control_mode_bits) != MP_OK) {
		snprintf(err, errlen, "%s: modes are octal, like 0660", path);
		return MP_ERR_CONFIG;
	}
	if (mp_ratelimit_parse(s->reply_rate, &s->reply_burst, &s->reply_period) != MP_OK ||
	    mp_ratelimit_parse(s->client_rate, &s->client_burst, &s->client_period) != MP_OK) {
		snprintf(err, errlen, "%s: rate limits look like 30/1h (or 0 for none)", path);
		return MP_ERR_CONFIG;
	}
	if (s->require_auth_pass && !s->authserv_id) {
		snprintf(err, errlen, "%s: RequireAuthPass needs AuthservID (the authserv-id your MTA "
		         "writes in Authentication-Results)", path);
		return MP_ERR_CONFIG;
	}
	if (s->table[0] != '/' && !(mp_table_is_redis(s->table) && mp_table_redis_url_ok(s->table))) {
		snprintf(err, errlen, "%s: Table is /name (shared memory), an absolute file path "
		         "or redis://[[user]:password@]host[:port][/db][?prefix=name]", path);
		return MP_ERR_CONFIG;
	}
	if (strlen(s->subject_marker) > 64 || strpbrk(s->subject_marker, "\r\n")) {
		snprintf(err, errlen, "%s: SubjectMarker is at most 64 characters", path);
		return MP_ERR_CONFIG;
	}
	if (s->peer_lines.count > MILTER_MAX_PEERS) {
		snprintf(err, errlen, "%s: at most %d Peer entries", path, MILTER_MAX_PEERS);
		return MP_ERR_CONFIG;
	}
	if (s->representative && s->peer_lines.count == 0) {
		snprintf(err, errlen, "%s: Representative needs Peer entries (the hosts to pass "
		         "requests on to)", path);
		return MP_ERR_CONFIG;
	}
	if (strcmp(s->reply_method, "rewrite") == 0) {
		s->rewrite_replies = 1;
	} else if (strcmp(s->reply_method, "inject") != 0) {
		snprintf(err, errlen, "%s: ReplyMethod is rewrite (the request becomes the reply) "
		         "or inject (the reply is a new mail)", path);
		return MP_ERR_CONFIG;
	}
	if (s->sendmail[0] != '/') {
		snprintf(err, errlen, "%s: SendmailCommand must start with an absolute path", path);
		return MP_ERR_CONFIG;
	}
	return MP_OK;
}

int
milter_settings_load(const char *path, milter_settings **out, char *err, size_t errlen)
{
	milter_settings *s = calloc(1, sizeof *s);
	size_t n = sizeof options / sizeof options[0];
	int rc;

	if (!s)
		return MP_ERR_NOMEM;
	rc = mp_config_load(path, options, n, s, err, errlen);
	if (rc == MP_ERR_IO)
		snprintf(err, errlen, "%s: cannot read configuration", path);
	if (rc == MP_OK)
		rc = derive(path, s, err, errlen);
	if (rc != MP_OK) {
		milter_settings_free(s);
		return rc;
	}
	*out = s;
	return MP_OK;
}

void
milter_settings_free(milter_settings *s)
{
	if (!s)
		return;
	mp_config_free(options, sizeof options / sizeof options[0], s);
	free(s);
}
