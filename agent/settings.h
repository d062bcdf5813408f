/*
 * settings.h - mailpunch-agent's configuration (agent.conf).
 *
 * Interface: agent_settings_load() reads a `key value` file (see
 * mailpunch-agent.conf(5) and contrib/agent.conf.example) into an
 * agent_settings, resolves the derived parts (the hosts' keys, allow and
 * deny lists, friends, the mail password from its file) and checks them
 * together; agent_settings_free() releases everything.
 * Errors: MP_ERR_CONFIG (message "file:line: reason" or "file: reason"
 * in err), MP_ERR_IO, MP_ERR_NOMEM.
 */
#ifndef MAILPUNCH_AGENT_SETTINGS_H
#define MAILPUNCH_AGENT_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "mailpunch/block.h"
#include "mailpunch/config.h"
#include "mailpunch/keys.h"

#define AGENT_MAX_HOSTS 8
#define AGENT_MAX_FRIENDS 64
#define AGENT_MAX_LIST 256

typedef struct agent_host {
	char address[MP_ADDR_MAX + 1];     /* rendezvous address */
	uint8_t key[MP_KEY_LEN];           /* host public key */
} agent_host;

typedef struct agent_friend {
	char address[MP_ADDR_MAX + 1];
	mp_pubid id;
} agent_friend;

typedef struct agent_settings {
	/* as read */
	char *identity;            /* Identity: key file */
	char *name;                /* Name */
	char *address;             /* Address: our mail address */
	mp_strlist host_lines;     /* Host ADDRESS mph1.KEY */
	mp_strlist friend_lines;   /* Friend ADDRESS mpu1.KEY */
	mp_strlist allow_lines;    /* Allow USERID */
	mp_strlist deny_lines;     /* Deny USERID */
	char *smtp_host;           /* SubmissionHost */
	long long smtp_port;       /* SubmissionPort */
	char *smtp_security;       /* SubmissionSecurity: starttls | tls */
	char *mail_user;           /* MailUser (default: Address) */
	char *password_file;       /* MailPasswordFile */
	char *receive;             /* ReceiveProtocol: imap | pop3 */
	char *imap_host;           /* IMAPHost (default: SubmissionHost) */
	long long imap_port;       /* IMAPPort */
	char *imap_security;       /* IMAPSecurity: tls | starttls */
	char *folder;              /* Folder */
	char *move_to;             /* MoveTo */
	char *pop3_host;           /* POP3Host */
	long long pop3_port;       /* POP3Port */
	long long poll_interval;   /* PollInterval */
	char *ca_file;             /* CAFile */
	int tls_insecure;          /* TLSInsecureSkipVerify */
	mp_strlist stun_servers;   /* STUNServer host[:port] */
	long long local_port;      /* LocalPort (0: any) */
	mp_strlist announce;       /* AnnounceAddress: local addresses to announce
	                              instead of every interface's */
	char *state_dir;           /* StateDir */
	char *subject_marker;      /* SubjectMarker */
	long long reply_timeout;   /* ReplyTimeout */
	long long punch_timeout;   /* PunchTimeout */
	int port_prediction;       /* PortPrediction: no = plain simultaneous punching */
	long long punch_rate;      /* PunchRate: NAT traversal packets per second */
	long long birthday_sockets;/* BirthdaySockets: mappings opened against a random NAT */
	long long reregister;      /* ReregisterInterval */
	char *log_dest;            /* LogDestination */
	int log_level;             /* LogLevel */

	/* derived */
	char *password;
	agent_host hosts[AGENT_MAX_HOSTS];
	size_t nhosts;
	agent_friend friends[AGENT_MAX_FRIENDS];
	size_t nfriends;
	mp_uid allow[AGENT_MAX_LIST], deny[AGENT_MAX_LIST];
	size_t nallow, ndeny;
} agent_settings;

int agent_settings_load(const char *path, agent_settings **out, char *err, size_t errlen);
void agent_settings_free(agent_settings *s);
/* The configuration file to use: -c, else $MAILPUNCH_AGENT_CONFIG, else
 * $XDG_CONFIG_HOME/mailpunch/agent.conf (~/.config/...). */
const char *agent_settings_default_path(char *buf, size_t len);

#endif
