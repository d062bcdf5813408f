/*
 * settings.c - the option table of agent.conf and the checks that need
 * more than a value's type (see settings.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "mailpunch/error.h"
#include "settings.h"

#define OPT(key, type, field, min, max, deflt, req) \
	{ key, type, offsetof(agent_settings, field), min, max, deflt, req }

static const mp_cfg_option options[] = {
	OPT("Identity", MP_CFG_PATH, identity, 0, 0, NULL, 0),
	OPT("Name", MP_CFG_STRING, name, 0, 0, NULL, 0),
	OPT("Address", MP_CFG_STRING, address, 0, 0, NULL, 1),
	OPT("Host", MP_CFG_LINES, host_lines, 0, 0, NULL, 0),
	OPT("Friend", MP_CFG_LINES, friend_lines, 0, 0, NULL, 0),
	OPT("Allow", MP_CFG_LINES, allow_lines, 0, 0, NULL, 0),
	OPT("Deny", MP_CFG_LINES, deny_lines, 0, 0, NULL, 0),
	OPT("SubmissionHost", MP_CFG_STRING, smtp_host, 0, 0, NULL, 1),
	OPT("SubmissionPort", MP_CFG_INT, smtp_port, 1, 65535, "587", 0),
	OPT("SubmissionSecurity", MP_CFG_STRING, smtp_security, 0, 0, "starttls", 0),
	OPT("MailUser", MP_CFG_STRING, mail_user, 0, 0, NULL, 0),
	OPT("MailPasswordFile", MP_CFG_PATH, password_file, 0, 0, NULL, 1),
	OPT("ReceiveProtocol", MP_CFG_STRING, receive, 0, 0, "imap", 0),
	OPT("IMAPHost", MP_CFG_STRING, imap_host, 0, 0, NULL, 0),
	OPT("IMAPPort", MP_CFG_INT, imap_port, 1, 65535, "993", 0),
	OPT("IMAPSecurity", MP_CFG_STRING, imap_security, 0, 0, "tls", 0),
	OPT("Folder", MP_CFG_STRING, folder, 0, 0, "INBOX", 0),
	OPT("MoveTo", MP_CFG_STRING, move_to, 0, 0, NULL, 0),
	OPT("POP3Host", MP_CFG_STRING, pop3_host, 0, 0, NULL, 0),
	OPT("POP3Port", MP_CFG_INT, pop3_port, 1, 65535, "995", 0),
	OPT("PollInterval", MP_CFG_DURATION, poll_interval, 1, 3600, "30s", 0),
	OPT("CAFile", MP_CFG_PATH, ca_file, 0, 0, NULL, 0),
	OPT("TLSInsecureSkipVerify", MP_CFG_BOOL, tls_insecure, 0, 0, "no", 0),
	OPT("STUNServer", MP_CFG_LINES, stun_servers, 0, 0, NULL, 0),
	OPT("LocalPort", MP_CFG_INT, local_port, 0, 65535, "0", 0),
	OPT("AnnounceAddress", MP_CFG_LINES, announce, 0, 0, NULL, 0),
	OPT("StateDir", MP_CFG_PATH, state_dir, 0, 0, NULL, 0),
	OPT("SubjectMarker", MP_CFG_STRING, subject_marker, 0, 0, "[mailpunch]", 0),
	OPT("ReplyTimeout", MP_CFG_DURATION, reply_timeout, 1, 3600, "120s", 0),
	OPT("PunchTimeout", MP_CFG_DURATION, punch_timeout, 1, 600, "20s", 0),
	OPT("PortPrediction", MP_CFG_BOOL, port_prediction, 0, 0, "yes", 0),
	OPT("PunchRate", MP_CFG_INT, punch_rate, 10, 10000, "400", 0),
	OPT("BirthdaySockets", MP_CFG_INT, birthday_sockets, 8, 300, "256", 0),
	OPT("ReregisterInterval", MP_CFG_DURATION, reregister, 60, 86400, "1h", 0),
	OPT("LogDestination", MP_CFG_STRING, log_dest, 0, 0, "stderr", 0),
	OPT("LogLevel", MP_CFG_LEVEL, log_level, 0, 0, "notice", 0),
};

#define NOPTS (sizeof options / sizeof options[0])

const char *
agent_settings_default_path(char *buf, size_t len)
{
	const char *env = getenv("MAILPUNCH_AGENT_CONFIG"), *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	if (env && *env)
		snprintf(buf, len, "%s", env);
	else if (xdg && *xdg)
		snprintf(buf, len, "%s/mailpunch/agent.conf", xdg);
	else
		snprintf(buf, len, "%s/.config/mailpunch/agent.conf", home ? home : "");
	return buf;
}

/* Splits "A B" into two words; 0 on success. */
static int
two_words(const char *line, char *a, size_t alen, char *b, size_t blen)
{
	const char *sp = line + strcspn(line, " \t");
	size_t n = (size_t)(sp - line);

	if (n == 0 || n >= alen || *sp == '\0')
		return -1;
	memcpy(a, line, n);
	a[n] = '\0';
	sp += strspn(sp, " \t");
	if (strlen(sp) >= blen || sp[strcspn(sp, " \t")] != '\0' || !*sp)
		return -1;
	strcpy(b, sp);
	return 0;
}

static int
derive_hosts(const char *path, agent_settings *s, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < s->host_lines.count; i++) {
		char addr[MP_ADDR_MAX + 1], key[MP_HOSTPUB_TEXT_MAX];
		agent_host *h = &s->hosts[s->nhosts];

		if (s->nhosts == AGENT_MAX_HOSTS) {
			snprintf(err, errlen, "%s: at most %d Host lines", path, AGENT_MAX_HOSTS);
			return MP_ERR_CONFIG;
		}
		if (two_words(s->host_lines.items[i], addr, sizeof addr, key, sizeof key) != 0 ||
		    mp_parse_mail_address(addr) != MP_OK || mp_hostpub_parse(key, h->key) != MP_OK) {
			snprintf(err, errlen, "%s: Host '%.200s': expected ADDRESS mph1.KEY "
			         "(the line your host's operator hands out)", path, s->host_lines.items[i]);
			return MP_ERR_CONFIG;
		}
		snprintf(h->address, sizeof h->address, "%s", addr);
		s->nhosts++;
	}
	return MP_OK;
}

static int
derive_friends(const char *path, agent_settings *s, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < s->friend_lines.count; i++) {
		char addr[MP_ADDR_MAX + 1], key[MP_PUBID_TEXT_MAX];
		agent_friend *f = &s->friends[s->nfriends];

		if (s->nfriends == AGENT_MAX_FRIENDS) {
			snprintf(err, errlen, "%s: at most %d Friend lines", path, AGENT_MAX_FRIENDS);
			return MP_ERR_CONFIG;
		}
		if (two_words(s->friend_lines.items[i], addr, sizeof addr, key, sizeof key) != 0 ||
		    mp_parse_mail_address(addr) != MP_OK || mp_pubid_parse(key, &f->id) != MP_OK) {
			snprintf(err, errlen, "%s: Friend '%.200s': expected ADDRESS mpu1.KEY "
			         "(what `mailpunch-agent id` prints on your friend's machine)", path,
			         s->friend_lines.items[i]);
			return MP_ERR_CONFIG;
		}
		snprintf(f->address, sizeof f->address, "%s", addr);
		s->nfriends++;
	}
	return MP_OK;
}

static int
derive_uids(const char *path, const char *key, const mp_strlist *lines, mp_uid *out,
            size_t *n, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < lines->count; i++) {
		if (*n == AGENT_MAX_LIST || mp_uid_parse(lines->items[i], &out[*n]) != MP_OK) {
			snprintf(err, errlen, "%s: %s '%.60s' is not a user ID (or too many)", path, key,
			         lines->items[i]);
			return MP_ERR_CONFIG;
		}
		(*n)++;
	}
	return MP_OK;
}

/* The password file: first line, private to its owner. */
static int
read_password(const char *path, agent_settings *s, char *err, size_t errlen)
{
	char buf[1024];
	struct stat st;
	FILE *fp = fopen(s->password_file, "r");

	if (!fp) {
		snprintf(err, errlen, "%s: MailPasswordFile %s: %s", path, s->password_file, strerror(errno));
		return MP_ERR_CONFIG;
	}
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 077)) {
		fclose(fp);
		snprintf(err, errlen, "%s: MailPasswordFile %s is readable by others (chmod 600 it)",
		         path, s->password_file);
		return MP_ERR_CONFIG;
	}
	if (!fgets(buf, sizeof buf, fp))
		buf[0] = '\0';
	fclose(fp);
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!buf[0]) {
		snprintf(err, errlen, "%s: MailPasswordFile %s is empty", path, s->password_file);
		return MP_ERR_CONFIG;
	}
	s->password = strdup(buf);
	OPENSSL_cleanse(buf, sizeof buf);
	return s->password ? MP_OK : MP_ERR_NOMEM;
}

static int
one_of(const char *v, const char *a, const char *b)
{
	return !strcasecmp(v, a) || !strcasecmp(v, b);
}

static int
derive(const char *path, agent_settings *s, char *err, size_t errlen)
{
	int rc;

	if (mp_parse_mail_address(s->address) != MP_OK) {
		snprintf(err, errlen, "%s: Address '%s' is not a mail address", path, s->address);
		return MP_ERR_CONFIG;
	}
	if (!one_of(s->smtp_security, "starttls", "tls") || !one_of(s->imap_security, "starttls", "tls") ||
	    !one_of(s->receive, "imap", "pop3")) {
		snprintf(err, errlen, "%s: SubmissionSecurity and IMAPSecurity are starttls or tls; "
		         "ReceiveProtocol is imap or pop3", path);
		return MP_ERR_CONFIG;
	}
	if ((rc = derive_hosts(path, s, err, errlen)) != MP_OK ||
	    (rc = derive_friends(path, s, err, errlen)) != MP_OK ||
	    (rc = derive_uids(path, "Allow", &s->allow_lines, s->allow, &s->nallow, err, errlen)) != MP_OK ||
	    (rc = derive_uids(path, "Deny", &s->deny_lines, s->deny, &s->ndeny, err, errlen)) != MP_OK)
		return rc;
	return read_password(path, s, err, errlen);
}

/* Paths that default relative to the user's home directory. */
static int
home_defaults(agent_settings *s)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char base[512], buf[600];

	if (xdg && *xdg)
		snprintf(base, sizeof base, "%s/mailpunch", xdg);
	else
		snprintf(base, sizeof base, "%s/.config/mailpunch", home ? home : "");
	if (!s->identity) {
		snprintf(buf, sizeof buf, "%s/identity.key", base);
		if (!(s->identity = strdup(buf)))
			return MP_ERR_NOMEM;
	}
	if (!s->state_dir && !(s->state_dir = strdup(base)))
		return MP_ERR_NOMEM;
	if (!s->mail_user && !(s->mail_user = strdup(s->address)))
		return MP_ERR_NOMEM;
	if (!s->imap_host && !(s->imap_host = strdup(s->smtp_host)))
		return MP_ERR_NOMEM;
	if (!s->pop3_host && !(s->pop3_host = strdup(s->smtp_host)))
		return MP_ERR_NOMEM;
	return MP_OK;
}

int
agent_settings_load(const char *path, agent_settings **out, char *err, size_t errlen)
{
	agent_settings *s = calloc(1, sizeof *s);
	int rc;

	if (!s)
		return MP_ERR_NOMEM;
	rc = mp_config_load(path, options, NOPTS, s, err, errlen);
	if (rc == MP_ERR_IO)
		snprintf(err, errlen, "%s: %s (create it: see mailpunch-agent.conf(5))", path, strerror(errno));
	if (rc == MP_OK)
		rc = home_defaults(s);
	if (rc == MP_OK)
		rc = derive(path, s, err, errlen);
	if (rc != MP_OK) {
		agent_settings_free(s);
		return rc;
	}
	*out = s;
	return MP_OK;
}

void
agent_settings_free(agent_settings *s)
{
	if (!s)
		return;
	mp_config_free(options, NOPTS, s);
	if (s->password)
		OPENSSL_clear_free(s->password, strlen(s->password));
	free(s);
}
