/*
 * smtp_client.h - send one mail through the user's submission server.
 *
 * Interface: agent_smtp_send() copies the account, envelope and message,
 * and runs one SMTP session on the caller's event loop: greeting, EHLO,
 * STARTTLS and EHLO again (or TLS from the first byte), AUTH PLAIN (or
 * LOGIN when PLAIN is not offered), MAIL FROM, RCPT TO for each
 * recipient, DATA with the dot-stuffed message, QUIT.  TLS is mandatory
 * (there is no plaintext mode), verified against the system store or
 * acct->ca_file and acct->host, so credentials never travel in clear.
 * The callback runs exactly once, never from inside agent_smtp_send(),
 * unless the caller cancels the job first with agent_smtp_cancel().
 * Host names are resolved with dns (evdns, non-blocking) when given,
 * else with the system's blocking getaddrinfo(); every address is tried
 * in turn.  The caller keeps base and dns alive until the callback, and
 * must ignore SIGPIPE (a server may close while we write).  Cancelling
 * a job whose DNS query is in flight releases its memory only when evdns
 * delivers the cancellation on a later loop pass: at shutdown, cancel,
 * run the loop once (EVLOOP_NONBLOCK), then free dns.  An evdns base
 * without name servers keeps queries waiting (libevent's behaviour), so
 * such a job ends at the session deadline with AGENT_SMTP_ERR_TIMEOUT.
 *
 * Bounds: the message at most AGENT_SMTP_MAIL_MAX bytes, at most
 * AGENT_SMTP_RCPT_MAX recipients, addresses at most 254 bytes, user and
 * password at most 255 bytes each; server replies as in smtp_reply.h.
 * Each step waits at most acct->timeout_s for the server (idle time),
 * the whole session at most (8 + nrcpts) * timeout_s.
 *
 * Errors: agent_smtp_send() returns MP_OK, or without starting anything
 * MP_ERR_INVAL (NULL or impossible argument), MP_ERR_SYNTAX (an address,
 * host or HELO name that would break the protocol), MP_ERR_TOOBIG,
 * MP_ERR_NOMEM.  Every later failure reaches the callback as one of the
 * statuses below with a one-line human detail, e.g. "AUTH: 535 5.7.8
 * Error: authentication failed" or "certificate verify failed:
 * self-signed certificate in certificate chain".  The password and the
 * AUTH exchange are never logged (transcripts go to mp_log at debug
 * level with those lines replaced).
 */
#ifndef MAILPUNCH_AGENT_SMTP_CLIENT_H
#define MAILPUNCH_AGENT_SMTP_CLIENT_H

#include <stddef.h>

struct event_base;
struct evdns_base;

#define AGENT_SMTP_MAIL_MAX (16u * 1024 * 1024)
#define AGENT_SMTP_RCPT_MAX 100
#define AGENT_SMTP_DEFAULT_TIMEOUT 60

typedef enum agent_smtp_security {
	AGENT_SMTP_STARTTLS,  /* port 587 style: plaintext, then STARTTLS */
	AGENT_SMTP_TLS,       /* port 465 style: TLS from the first byte */
} agent_smtp_security;

typedef struct agent_smtp_account {
	const char *host;               /* name or IP literal; also the TLS name */
	unsigned port;
	agent_smtp_security security;
	const char *user, *password;    /* NULL user: no AUTH */
	const char *ca_file;            /* NULL: system store */
	int tls_insecure_skip_verify;   /* test setups only */
	const char *helo_name;          /* NULL: FQDN from gethostname, else [address] */
	unsigned timeout_s;             /* per step; 0 = AGENT_SMTP_DEFAULT_TIMEOUT */
} agent_smtp_account;

typedef enum agent_smtp_status {
	AGENT_SMTP_OK = 0,
	AGENT_SMTP_ERR_CONNECT,     /* resolve/connect failed, server refused or dropped us */
	AGENT_SMTP_ERR_TLS,         /* handshake, verification, STARTTLS missing */
	AGENT_SMTP_ERR_AUTH,        /* credentials refused, no usable mechanism */
	AGENT_SMTP_ERR_RECIPIENT,   /* a RCPT TO got 5xx (detail names it) */
	AGENT_SMTP_ERR_REJECTED,    /* MAIL FROM, DATA or the message got 5xx */
	AGENT_SMTP_ERR_TEMPORARY,   /* any 4xx reply: try later */
	AGENT_SMTP_ERR_TIMEOUT,     /* a step (or the whole session) took too long */
	AGENT_SMTP_ERR_PROTOCOL,    /* malformed or unexpected reply */
	AGENT_SMTP_ERR_INTERNAL,    /* out of memory, libevent/OpenSSL failure */
} agent_smtp_status;

typedef void (*agent_smtp_done_cb)(agent_smtp_status st, const char *detail, void *arg);

typedef struct agent_smtp_job agent_smtp_job;

/*
 * from: envelope sender ("" for the null sender <>); rcpts: nrcpts
 * envelope recipients, bare addresses (no angle brackets); mail: the
 * message, any line ends.  *job (when job is non-NULL) is a handle for
 * agent_smtp_cancel(), valid until the callback starts.
 */
int agent_smtp_send(struct event_base *base, struct evdns_base *dns,
                    const agent_smtp_account *acct, const char *from,
                    const char *const *rcpts, size_t nrcpts,
                    const char *mail, size_t len,
                    agent_smtp_done_cb cb, void *arg, agent_smtp_job **job);

/* Abandons the session at once (closes the connection); cb is not called. */
void agent_smtp_cancel(agent_smtp_job *job);

/* "OK", "ERR_CONNECT", ...; never NULL. */
const char *agent_smtp_status_name(agent_smtp_status st);

#endif
