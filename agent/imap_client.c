/*
 * imap_client.c - the IMAP backend of the mailbox watcher (see
 * imap_client.h for the session it runs, mailbox.h for the contract),
 * the mailbox.h entry points that dispatch to a backend, and the
 * connection helpers both backends use.
 *
 * Interface: agent_mailbox_*(), agent_imap_*(), agent_mailconn_*().
 * Errors: reported through the watcher's on_error callback (status code
 * plus a printable detail) and logged; a failed connection is torn down
 * and retried after the backoff delay.  Nothing here aborts.
 *
 * One command is in flight at a time: the watcher is a strict sequence
 * (search, fetch, decide, delete, idle), so pipelining would buy little
 * and make every failure harder to attribute.  The state says which
 * tagged answer is awaited; untagged data is collected on the way.
 *
 * Callbacks into the agent run from inside libevent callbacks, and the
 * agent may free the watcher from them.  So the watcher counts how deep
 * it is in callbacks; agent_mailbox_free() there only marks it dying,
 * every caller of a callback checks the answer of notify()/deliver()
 * and unwinds without touching the watcher, and the outermost one frees.
 * Bufferevents are made with BEV_OPT_DEFER_CALLBACKS, so no libevent
 * callback runs inside our own calls (a failed name lookup, say) either.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/mail.h"

#include "base64.h"
#include "imap_parse.h"
#include "pop3_parse.h"

#include "imap_client.h"
#include "mailbox.h"
#include "pop3_client.h"
#include "tls.h"

/* ================================================================ mailbox.h */

int
agent_mailbox_start(struct event_base *base, const agent_mailbox_account *acct,
                    agent_mail_cb on_mail, agent_mailbox_error_cb on_error,
                    void *arg, agent_mailbox **out)
{
	if (out)
		*out = NULL;
	if (!acct)
		return MP_ERR_INVAL;
	switch (acct->kind) {
	case AGENT_MAILBOX_IMAP:
		return agent_imap_start(base, acct, on_mail, on_error, arg, out);
	case AGENT_MAILBOX_POP3:
		return agent_pop3_start(base, acct, on_mail, on_error, arg, out);
	}
	return MP_ERR_INVAL;
}

void
agent_mailbox_check_now(agent_mailbox *mb)
{
	if (!mb)
		return;
	if (mb->kind == AGENT_MAILBOX_IMAP)
		agent_imap_check_now(mb);
	else
		agent_pop3_check_now(mb);
}

void
agent_mailbox_free(agent_mailbox *mb)
{
	if (!mb)
		return;
	if (mb->kind == AGENT_MAILBOX_IMAP)
		agent_imap_free(mb);
	else
		agent_pop3_free(mb);
}

const char *
agent_mailbox_status_name(int status)
{
	switch (status) {
	case AGENT_MAILBOX_WATCHING: return "watching";
	case AGENT_MAILBOX_ERR_CONNECT: return "connect";
	case AGENT_MAILBOX_ERR_TLS: return "tls";
	case AGENT_MAILBOX_ERR_AUTH: return "auth";
	case AGENT_MAILBOX_ERR_PROTOCOL: return "protocol";
	case AGENT_MAILBOX_ERR_TIMEOUT: return "timeout";
	case AGENT_MAILBOX_ERR_CLOSED: return "closed";
	}
	return "unknown";
}

/* ================================================================ connections */

struct bufferevent *
agent_mailconn_open(struct event_base *base, struct evdns_base *dns, const char *host,
                    unsigned port, bufferevent_data_cb readcb, bufferevent_event_cb eventcb,
                    void *arg, char *err, size_t errlen)
{
	struct bufferevent *bev;

	bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		snprintf(err, errlen, "cannot create a socket buffer");
		return NULL;
	}
	bufferevent_setcb(bev, readcb, NULL, eventcb, arg);
	if (bufferevent_socket_connect_hostname(bev, dns, AF_UNSPEC, host, (int)port) != 0) {
		int dns_err = bufferevent_socket_get_dns_error(bev);

		snprintf(err, errlen, "cannot connect to %.255s port %u: %s", host, port,
		         dns_err ? evutil_gai_strerror(dns_err) : "connect failed");
		bufferevent_free(bev);
		return NULL;
	}
	return bev;
}

struct bufferevent *
agent_mailconn_tls(struct bufferevent *plain, SSL_CTX *ctx, const char *tls_name,
                   bufferevent_data_cb readcb, bufferevent_event_cb eventcb, void *arg,
                   char *err, size_t errlen)
{
	struct bufferevent *bev;
	SSL *ssl;

	if (!(ssl = agent_tls_ssl_new(ctx, tls_name))) {
		snprintf(err, errlen, "cannot set up TLS for %.255s", tls_name);
		return NULL;
	}
	bev = bufferevent_openssl_filter_new(bufferevent_get_base(plain), plain, ssl,
	                                     BUFFEREVENT_SSL_CONNECTING,
	                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		SSL_free(ssl);
		snprintf(err, errlen, "cannot create a TLS buffer");
		return NULL;
	}
	/* A peer that just closes the TCP connection has ended the session:
	 * report it as EOF, not as a TLS error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, readcb, NULL, eventcb, arg);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return bev;
}

void
agent_mailconn_keepalive(struct bufferevent *bev)
{
	evutil_socket_t fd = bufferevent_getfd(bev);
	int on = 1, idle = 60, intvl = 20, cnt = 3;

	if (fd < 0)
		return;
	/* An IDLE connection is silent for minutes: without keepalive a
	 * vanished NAT mapping would go unnoticed until the next refresh. */
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
#ifdef TCP_KEEPIDLE
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
#else
	(void)idle;
	(void)intvl;
	(void)cnt;
#endif
}

int
agent_mailconn_failure(struct bufferevent *bev, short events, int handshaking,
                       char *detail, size_t len)
{
	int err = EVUTIL_SOCKET_ERROR(), dns_err;
	unsigned long ossl;

	if (events & BEV_EVENT_EOF) {
		if (handshaking) {
			snprintf(detail, len, "server closed the connection during the TLS handshake");
			return AGENT_MAILBOX_ERR_TLS;
		}
		snprintf(detail, len, "server closed the connection");
		return AGENT_MAILBOX_ERR_CLOSED;
	}
	if ((dns_err = bufferevent_socket_get_dns_error(bev)) != 0) {
		snprintf(detail, len, "cannot resolve the server name: %s", evutil_gai_strerror(dns_err));
		return AGENT_MAILBOX_ERR_CONNECT;
	}
	ossl = bufferevent_get_openssl_error(bev);
	if (handshaking || ossl) {
		agent_tls_error(bufferevent_openssl_get_ssl(bev), ossl, detail, len);
		while (bufferevent_get_openssl_error(bev) != 0)
			;
		return AGENT_MAILBOX_ERR_TLS;
	}
	snprintf(detail, len, "connection failed: %s",
	         err ? evutil_socket_error_to_string(err) : "unknown error");
	return AGENT_MAILBOX_ERR_CONNECT;
}

static int
printable_ascii(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || n >= max)
			return 0;
	return n > 0;
}

int
agent_mailconn_check_account(const agent_mailbox_account *a)
{
	if (!a->host || !printable_ascii(a->host, 255) || !a->user || !a->password ||
	    !*a->user || strlen(a->user) > 255 || strlen(a->password) > 255 ||
	    strpbrk(a->user, "\r\n") || strpbrk(a->password, "\r\n"))
		return MP_ERR_INVAL;
	if (a->tls_name && !printable_ascii(a->tls_name, 255))
		return MP_ERR_INVAL;
	if (a->subject_marker && !printable_ascii(a->subject_marker, 200))
		return MP_ERR_INVAL;
	if (a->folder && !printable_ascii(a->folder, 500))
		return MP_ERR_INVAL;
	if (a->move_to && !printable_ascii(a->move_to, 500))
		return MP_ERR_INVAL;
	if (a->port > 65535 || a->poll_interval_s > 86400 || a->timeout_s > 3600 ||
	    a->max_mail > AGENT_MAILBOX_MAX_MAIL_LIMIT)
		return MP_ERR_INVAL;
	return MP_OK;
}

/* ================================================================ IMAP */

typedef enum ist {
	I_DOWN,          /* no connection; the retry timer runs */
	I_CONNECTING,    /* TCP connect */
	I_HANDSHAKE,     /* TLS handshake */
	I_GREETING,
	I_CAPA,          /* CAPABILITY before login */
	I_STARTTLS,
	I_AUTH,          /* AUTHENTICATE PLAIN or LOGIN */
	I_CAPA2,         /* CAPABILITY after login */
	I_CREATE,
	I_SELECT,
	I_SEARCH,
	I_FETCH,
	I_MOVE,
	I_COPY,
	I_STORE,
	I_EXPUNGE,
	I_IDLE_START,    /* IDLE sent, "+" awaited */
	I_IDLING,
	I_DONE,          /* DONE sent, IDLE's tagged answer awaited */
	I_WAIT,          /* no IDLE: connection open until the poll timer */
} ist;

static const char *const state_names[] = {
	"down", "connect", "TLS handshake", "greeting", "CAPABILITY", "STARTTLS",
	"login", "CAPABILITY", "CREATE", "SELECT", "SEARCH", "FETCH", "MOVE",
	"COPY", "STORE", "EXPUNGE", "IDLE", "IDLE", "DONE", "poll wait",
};

enum {
	CAP_IMAP4REV1 = 1 << 0,
	CAP_STARTTLS = 1 << 1,
	CAP_LOGINDISABLED = 1 << 2,
	CAP_AUTH_PLAIN = 1 << 3,
	CAP_SASL_IR = 1 << 4,
	CAP_IDLE = 1 << 5,
	CAP_MOVE = 1 << 6,
	CAP_UIDPLUS = 1 << 7,
};

/* A stop signal from the response handlers: the connection is gone (or
 * swapped for a TLS one), or the watcher itself is. */
#define GO 0
#define STOP 1

typedef struct agent_imap {
	agent_mailbox base;           /* first: mailbox.h dispatches on it */
	struct event_base *evb;
	struct evdns_base *dns;
	SSL_CTX *tls_ctx;
	char *host, *tls_name, *user, *password, *log_id;
	char *folder, *q_folder, *move_to, *q_move_to, *marker, *q_marker;
	unsigned port, poll_s, timeout_s;
	int starttls;
	size_t max_mail;
	agent_mail_cb on_mail;
	agent_mailbox_error_cb on_error;
	void *arg;

	/* the connection */
	struct bufferevent *bev;
	mp_imap_reader *rd;
	ist state;
	unsigned tagseq;
	char tag[16];
	int tls_up;
	unsigned caps;
	int caps_known;
	uint32_t uidvalidity;         /* from this SELECT */
	int exists_pending;           /* new mail announced since the last SEARCH */
	int check_requested;
	int idle_refused;
	uint32_t *queue;              /* UIDs of the last SEARCH */
	size_t nqueue, qcap, qpos;
	uint32_t cur_uid;
	mp_imap_response *fetched;    /* the FETCH holding cur_uid's mail */

	/* across connections */
	uint32_t handled_validity;
	uint32_t *handled;            /* sorted */
	size_t nhandled, hcap;
	int warned_no_uidplus;
	unsigned backoff_s;
	struct event *retry_ev, *tmo_ev, *idle_ev, *poll_ev;
	int depth, dying;
} agent_imap;

static int send_cmd(agent_imap *mb, ist state, const char *shown, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(agent_imap *mb, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int process_queue(agent_imap *mb);
static int search(agent_imap *mb);
static void imap_destroy(agent_imap *mb);
static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short events, void *arg);

/* ---------------------------------------------------------------- UIDs */

static int
handled_find(const agent_imap *mb, uint32_t uid, size_t *at)
{
	size_t lo = 0, hi = mb->nhandled;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mb->handled[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	return lo < mb->nhandled && mb->handled[lo] == uid;
}

static void
handled_add(agent_imap *mb, uint32_t uid)
{
	size_t at;

	if (handled_find(mb, uid, &at))
		return;
	if (mb->nhandled == AGENT_IMAP_HANDLED_MAX) {
		/* UIDs only grow: the oldest half is the least likely to matter */
		size_t drop = mb->nhandled / 2;

		memmove(mb->handled, mb->handled + drop, (mb->nhandled - drop) * sizeof *mb->handled);
		mb->nhandled -= drop;
		at = at > drop ? at - drop : 0;
		mp_log_id(MP_LOG_NOTICE, mb->log_id, "forgot %zu old handled UIDs", drop);
	}
	if (mb->nhandled == mb->hcap) {
		size_t cap = mb->hcap ? mb->hcap * 2 : 64;
		uint32_t *n;

		if (cap > AGENT_IMAP_HANDLED_MAX)
			cap = AGENT_IMAP_HANDLED_MAX;
		if (!(n = realloc(mb->handled, cap * sizeof *n))) {
			/* no memory: the mail may be handed over again, nothing worse */
			mp_log_id(MP_LOG_ERR, mb->log_id, "out of memory remembering UID %u", uid);
			return;
		}
		mb->handled = n;
		mb->hcap = cap;
	}
	memmove(mb->handled + at + 1, mb->handled + at, (mb->nhandled - at) * sizeof *mb->handled);
	mb->handled[at] = uid;
	mb->nhandled++;
}

static int
is_handled(const agent_imap *mb, uint32_t uid)
{
	size_t at;

	return handled_find(mb, uid, &at);
}

static int
queue_add(agent_imap *mb, uint32_t uid)
{
	if (mb->nqueue == mb->qcap) {
		size_t cap = mb->qcap ? mb->qcap * 2 : 16;
		uint32_t *n = realloc(mb->queue, cap * sizeof *n);

		if (!n)
			return MP_ERR_NOMEM;
		mb->queue = n;
		mb->qcap = cap;
	}
	mb->queue[mb->nqueue++] = uid;
	return MP_OK;
}

/* ---------------------------------------------------------------- callbacks */

/* Calls on_error; -1 when the watcher was freed meanwhile (or is dying):
 * the caller must then return STOP without touching it. */
static int
notify(agent_imap *mb, int status, const char *detail)
{
	if (mb->on_error) {
		mb->depth++;
		mb->on_error(status, detail, mb->arg);
		mb->depth--;
	}
	if (mb->dying) {
		if (mb->depth == 0)
			imap_destroy(mb);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- connection */

static void
disarm(struct event *ev)
{
	if (ev)
		event_del(ev);
}

static void
arm(struct event *ev, unsigned seconds)
{
	struct timeval tv = { (time_t)seconds, 0 };

	event_add(ev, &tv);
}

static void
arm_timeout(agent_imap *mb)
{
	arm(mb->tmo_ev, mb->timeout_s);
}

static void
teardown(agent_imap *mb)
{
	if (mb->bev) {
		bufferevent_free(mb->bev);
		mb->bev = NULL;
	}
	mp_imap_reader_free(mb->rd);
	mb->rd = NULL;
	mp_imap_response_free(mb->fetched);
	mb->fetched = NULL;
	mb->nqueue = mb->qpos = 0;
	mb->state = I_DOWN;
	mb->tls_up = 0;
	mb->caps = 0;
	mb->caps_known = 0;
	mb->idle_refused = 0;
	mb->exists_pending = 0;
	disarm(mb->tmo_ev);
	disarm(mb->idle_ev);
	disarm(mb->poll_ev);
}

/* Ends the connection, schedules the next one, reports.  Always STOP. */
static int
fail(agent_imap *mb, int status, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	mp_log_id(MP_LOG_WARNING, mb->log_id, "%s error (%s), retrying in %u s: %s",
	          agent_mailbox_status_name(status), state_names[mb->state], mb->backoff_s, detail);
	teardown(mb);
	arm(mb->retry_ev, mb->backoff_s);
	mb->backoff_s = mb->backoff_s >= AGENT_MAILBOX_BACKOFF_MAX_S / 2
	                ? AGENT_MAILBOX_BACKOFF_MAX_S : mb->backoff_s * 2;
	(void)notify(mb, status, detail);
	return STOP;
}

static int
send_raw(agent_imap *mb, const char *line, size_t len)
{
	if (bufferevent_write(mb->bev, line, len) != 0)
		return fail(mb, AGENT_MAILBOX_ERR_CONNECT, "cannot send to the server");
	return GO;
}

/* shown: what the debug log says instead of a line holding credentials. */
static int
send_cmd(agent_imap *mb, ist state, const char *shown, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n, k;

	snprintf(mb->tag, sizeof mb->tag, "M%u", ++mb->tagseq);
	n = snprintf(line, sizeof line, "%s ", mb->tag);
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof line - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= sizeof line - (size_t)n - 2)
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "command too long");
	n += k;
	if (shown)
		mp_log_id(MP_LOG_DEBUG, mb->log_id, "C: %s %s", mb->tag, shown);
	else
		mp_log_id(MP_LOG_DEBUG, mb->log_id, "C: %s", line);
	memcpy(line + n, "\r\n", 2);
	mb->state = state;
	arm_timeout(mb);
	k = send_raw(mb, line, (size_t)n + 2);
	OPENSSL_cleanse(line, sizeof line);
	return k;
}

static int
start_tls(agent_imap *mb)
{
	char err[512];
	struct bufferevent *bev;

	bev = agent_mailconn_tls(mb->bev, mb->tls_ctx, mb->tls_name, on_read, on_event, mb,
	                         err, sizeof err);
	if (!bev)
		return fail(mb, AGENT_MAILBOX_ERR_TLS, "%s", err);
	mb->bev = bev;
	mb->state = I_HANDSHAKE;
	arm_timeout(mb);
	return STOP;   /* the old bufferevent's input is the TLS stream now */
}

/* ---------------------------------------------------------------- capabilities */

static unsigned
cap_bit(const char *w, size_t n)
{
	static const struct { const char *name; unsigned bit; } caps[] = {
		{ "IMAP4rev1", CAP_IMAP4REV1 },
		{ "STARTTLS", CAP_STARTTLS },
		{ "LOGINDISABLED", CAP_LOGINDISABLED },
		{ "AUTH=PLAIN", CAP_AUTH_PLAIN },
		{ "SASL-IR", CAP_SASL_IR },
		{ "IDLE", CAP_IDLE },
		{ "MOVE", CAP_MOVE },
		{ "UIDPLUS", CAP_UIDPLUS },
	};
	size_t i;

	for (i = 0; i < sizeof caps / sizeof caps[0]; i++)
		if (strlen(caps[i].name) == n && strncasecmp(caps[i].name, w, n) == 0)
			return caps[i].bit;
	return 0;
}

/* "CAPABILITY a b c" as a response code. */
static int
caps_from_code(agent_imap *mb, const char *code, size_t len)
{
	const char *w;
	size_t pos = 0, n;

	if (!mp_imap_word_next(code, len, &pos, &w, &n) ||
	    !(n == 10 && strncasecmp(w, "CAPABILITY", 10) == 0))
		return 0;
	mb->caps = 0;
	while (mp_imap_word_next(code, len, &pos, &w, &n))
		mb->caps |= cap_bit(w, n);
	mb->caps_known = 1;
	return 1;
}

static void
caps_from_items(agent_imap *mb, const mp_imap_response *r)
{
	size_t i;

	mb->caps = 0;
	for (i = 1; i < r->nitems; i = r->items[i].end)
		if (r->items[i].type == MP_IMAP_ATOM)
			mb->caps |= cap_bit(r->items[i].s, r->items[i].len);
	mb->caps_known = 1;
}

/* ---------------------------------------------------------------- session */

static int
login(agent_imap *mb)
{
	char quser[600], qpass[600];
	uint8_t plain[1100];
	size_t ul = strlen(mb->user), pl = strlen(mb->password);
	char *b64 = NULL;
	size_t b64len;
	int rc;

	if (!mb->tls_up)   /* never reached: the session logic requires TLS first */
		return fail(mb, AGENT_MAILBOX_ERR_TLS, "refusing to log in without TLS");
	if (mb->caps & CAP_AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL passwd */
		plain[0] = '\0';
		memcpy(plain + 1, mb->user, ul);
		plain[1 + ul] = '\0';
		memcpy(plain + 2 + ul, mb->password, pl);
		rc = mp_base64_encode(plain, ul + pl + 2, 0, 0, &b64, &b64len);
		OPENSSL_cleanse(plain, sizeof plain);
		if (rc != MP_OK)
			return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "out of memory");
		if (mb->caps & CAP_SASL_IR)
			rc = send_cmd(mb, I_AUTH, "AUTHENTICATE PLAIN <credentials>",
			              "AUTHENTICATE PLAIN %s", b64);
		else
			rc = send_cmd(mb, I_AUTH, NULL, "AUTHENTICATE PLAIN");
		OPENSSL_cleanse(b64, b64len);
		free(b64);
		return rc;
	}
	if (mb->caps & CAP_LOGINDISABLED)
		return fail(mb, AGENT_MAILBOX_ERR_AUTH,
		            "server disables LOGIN and offers no AUTH=PLAIN");
	if (mp_imap_quote(mb->user, quser, sizeof quser) != MP_OK ||
	    mp_imap_quote(mb->password, qpass, sizeof qpass) != MP_OK)
		return fail(mb, AGENT_MAILBOX_ERR_AUTH,
		            "user name or password cannot be sent with LOGIN (no AUTH=PLAIN)");
	rc = send_cmd(mb, I_AUTH, "LOGIN <credentials>", "LOGIN %s %s", quser, qpass);
	OPENSSL_cleanse(qpass, sizeof qpass);
	return rc;
}

/* The second half of AUTHENTICATE PLAIN without SASL-IR. */
static int
auth_continue(agent_imap *mb)
{
	uint8_t plain[1100];
	size_t ul = strlen(mb->user), pl = strlen(mb->password), b64len;
	char *b64 = NULL;
	int rc;

	plain[0] = '\0';
	memcpy(plain + 1, mb->user, ul);
	plain[1 + ul] = '\0';
	memcpy(plain + 2 + ul, mb->password, pl);
	rc = mp_base64_encode(plain, ul + pl + 2, 0, 0, &b64, &b64len);
	OPENSSL_cleanse(plain, sizeof plain);
	if (rc != MP_OK)
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "out of memory");
	mp_log_id(MP_LOG_DEBUG, mb->log_id, "C: <credentials>");
	rc = send_raw(mb, b64, b64len);
	if (rc == GO)
		rc = send_raw(mb, "\r\n", 2);
	OPENSSL_cleanse(b64, b64len);
	free(b64);
	return rc;
}

/* Greeting seen, or TLS freshly up after STARTTLS: next step to login. */
static int
after_greeting(agent_imap *mb)
{
	if (mb->starttls && !mb->tls_up) {
		if (!mb->caps_known)
			return send_cmd(mb, I_CAPA, NULL, "CAPABILITY");
		if (!(mb->caps & CAP_STARTTLS))
			return fail(mb, AGENT_MAILBOX_ERR_TLS, "server does not offer STARTTLS");
		return send_cmd(mb, I_STARTTLS, NULL, "STARTTLS");
	}
	if (!mb->caps_known)
		return send_cmd(mb, I_CAPA, NULL, "CAPABILITY");
	return login(mb);
}

static int
after_login(agent_imap *mb)
{
	if (mb->move_to)
		return send_cmd(mb, I_CREATE, NULL, "CREATE %s", mb->q_move_to);
	mb->uidvalidity = 0;
	return send_cmd(mb, I_SELECT, NULL, "SELECT %s", mb->q_folder);
}

static int
selected(agent_imap *mb)
{
	char detail[300];

	if (mb->handled_validity != mb->uidvalidity) {
		if (mb->nhandled)
			mp_log_id(MP_LOG_NOTICE, mb->log_id,
			          "UIDVALIDITY of %s changed (%u -> %u): forgetting handled mails",
			          mb->folder, mb->handled_validity, mb->uidvalidity);
		mb->nhandled = 0;
		mb->handled_validity = mb->uidvalidity;
	}
	mb->backoff_s = 1;
	snprintf(detail, sizeof detail, "watching %.200s on %.64s (%s)", mb->folder, mb->host,
	         (mb->caps & CAP_IDLE) ? "IDLE" : "polling");
	mp_log_id(MP_LOG_INFO, mb->log_id, "%s", detail);
	if (notify(mb, AGENT_MAILBOX_WATCHING, detail) != 0)
		return STOP;
	return search(mb);
}

static int
search(agent_imap *mb)
{
	mb->exists_pending = 0;
	mb->check_requested = 0;
	mb->nqueue = mb->qpos = 0;
	disarm(mb->poll_ev);
	disarm(mb->idle_ev);
	return send_cmd(mb, I_SEARCH, NULL, "UID SEARCH UNDELETED SUBJECT %s", mb->q_marker);
}

static int
wait_for_mail(agent_imap *mb)
{
	if ((mb->caps & CAP_IDLE) && !mb->idle_refused)
		return send_cmd(mb, I_IDLE_START, NULL, "IDLE");
	mb->state = I_WAIT;
	disarm(mb->tmo_ev);
	arm(mb->poll_ev, mb->poll_s);
	return GO;
}

static int
send_done(agent_imap *mb)
{
	mp_log_id(MP_LOG_DEBUG, mb->log_id, "C: DONE");
	mb->state = I_DONE;
	disarm(mb->idle_ev);
	arm_timeout(mb);
	return send_raw(mb, "DONE\r\n", 6);
}

static int
process_queue(agent_imap *mb)
{
	while (mb->qpos < mb->nqueue) {
		uint32_t uid = mb->queue[mb->qpos++];

		if (is_handled(mb, uid))
			continue;
		mb->cur_uid = uid;
		mp_imap_response_free(mb->fetched);
		mb->fetched = NULL;
		return send_cmd(mb, I_FETCH, NULL, "UID FETCH %u (RFC822.SIZE BODY.PEEK[]<0.%zu>)",
		                uid, mb->max_mail);
	}
	if (mb->exists_pending || mb->check_requested)
		return search(mb);
	return wait_for_mail(mb);
}

/* A consume step failed with NO: the mail stays; we go on. */
static int
consume_failed(agent_imap *mb, const char *what, const mp_imap_response *r)
{
	char text[200], detail[300];

	mp_imap_printable(r->text, r->text_len, text, sizeof text);
	snprintf(detail, sizeof detail, "cannot %s mail UID %u: %s", what, mb->cur_uid, text);
	mp_log_id(MP_LOG_WARNING, mb->log_id, "%s", detail);
	if (notify(mb, AGENT_MAILBOX_ERR_PROTOCOL, detail) != 0)
		return STOP;
	return process_queue(mb);
}

static int
store_deleted(agent_imap *mb)
{
	return send_cmd(mb, I_STORE, NULL, "UID STORE %u +FLAGS.SILENT (\\Deleted)", mb->cur_uid);
}

static int
consume(agent_imap *mb)
{
	if (mb->move_to && (mb->caps & CAP_MOVE))
		return send_cmd(mb, I_MOVE, NULL, "UID MOVE %u %s", mb->cur_uid, mb->q_move_to);
	if (mb->move_to)
		return send_cmd(mb, I_COPY, NULL, "UID COPY %u %s", mb->cur_uid, mb->q_move_to);
	return store_deleted(mb);
}

/* Hands the mail to the agent; -1 if the watcher died meanwhile. */
static int
deliver(agent_imap *mb, mp_imap_response *f, const mp_imap_item *body, agent_mail_verdict *v)
{
	/* The byte after a literal is ours (the response buffer always has
	 * one, NUL at its end): lend the agent a NUL-terminated mail without
	 * copying a megabyte. */
	char *p = f->buf_ + (body->s - f->buf_), saved = p[body->len];

	p[body->len] = '\0';
	mb->depth++;
	*v = mb->on_mail(p, body->len, mb->arg);
	mb->depth--;
	p[body->len] = saved;
	if (mb->dying) {
		if (mb->depth == 0)
			imap_destroy(mb);
		return -1;
	}
	return 0;
}

static int
fetch_done(agent_imap *mb, const mp_imap_response *tagged)
{
	mp_imap_response *f = mb->fetched;
	const mp_imap_item *body = NULL, *size_it;
	uint64_t size = 0;
	uint32_t uid = mb->cur_uid;
	agent_mail_verdict v;
	int hit;

	mb->fetched = NULL;
	if (tagged->status != MP_IMAP_OK) {
		char text[200];

		/* not remembered: the next search tries again */
		mp_log_id(MP_LOG_NOTICE, mb->log_id, "cannot fetch mail UID %u: %s", uid,
		          mp_imap_printable(tagged->text, tagged->text_len, text, sizeof text));
		mp_imap_response_free(f);
		return process_queue(mb);
	}
	handled_add(mb, uid);
	if (f) {
		body = mp_imap_list_get(f, 1, "BODY[]<0>");
		if (!body)
			body = mp_imap_list_get(f, 1, "BODY[]");
		size_it = mp_imap_list_get(f, 1, "RFC822.SIZE");
		if (size_it)
			(void)mp_imap_item_u64(size_it, &size);
	}
	if (!body || (body->type != MP_IMAP_STRING && body->type != MP_IMAP_OVERSIZE)) {
		mp_log_id(MP_LOG_INFO, mb->log_id, "mail UID %u vanished before it was read", uid);
		mp_imap_response_free(f);
		return process_queue(mb);
	}
	if (body->type == MP_IMAP_OVERSIZE || size > mb->max_mail) {
		mp_log_id(MP_LOG_NOTICE, mb->log_id,
		          "skipping mail UID %u: %llu bytes, over the limit of %zu", uid,
		          (unsigned long long)(size ? size : body->len), mb->max_mail);
		mp_imap_response_free(f);
		return process_queue(mb);
	}
	hit = mp_pop3_subject_match(body->s, body->len, mb->marker);
	if (hit != 1) {
		if (hit < 0)
			mp_log_id(MP_LOG_ERR, mb->log_id, "mail UID %u: out of memory; left alone", uid);
		else
			mp_log_id(MP_LOG_INFO, mb->log_id,
			          "mail UID %u: the server matched it, but its Subject lacks the "
			          "marker; left alone", uid);
		mp_imap_response_free(f);
		return process_queue(mb);
	}
	mp_log_id(MP_LOG_INFO, mb->log_id, "handing over mail UID %u (%zu bytes)", uid, body->len);
	if (deliver(mb, f, body, &v) != 0) {
		mp_imap_response_free(f);
		return STOP;
	}
	mp_imap_response_free(f);
	if (!mb->bev)
		return STOP;    /* defensive: the agent cannot tear down, but be sure */
	if (v != AGENT_MAIL_CONSUME)
		return process_queue(mb);
	return consume(mb);
}

/* ---------------------------------------------------------------- responses */

static int
on_untagged(agent_imap *mb, mp_imap_response **rp)
{
	mp_imap_response *r = *rp;
	char text[200];

	if (r->status == MP_IMAP_BYE) {
		mp_imap_printable(r->text, r->text_len, text, sizeof text);
		return fail(mb, AGENT_MAILBOX_ERR_CLOSED, "server said BYE: %s", text);
	}
	if (mb->state == I_GREETING) {
		if (r->status == MP_IMAP_OK) {
			(void)caps_from_code(mb, r->code, r->code_len);
			return after_greeting(mb);
		}
		if (r->status == MP_IMAP_PREAUTH) {
			/* Already logged in on this connection: only safe once TLS
			 * is up, since STARTTLS is impossible after PREAUTH. */
			if (mb->starttls && !mb->tls_up)
				return fail(mb, AGENT_MAILBOX_ERR_TLS,
				            "server sent PREAUTH on a plain connection, STARTTLS impossible");
			if (!caps_from_code(mb, r->code, r->code_len))
				return send_cmd(mb, I_CAPA2, NULL, "CAPABILITY");
			return after_login(mb);
		}
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "unexpected greeting");
	}
	if (r->status != MP_IMAP_DATA) {
		if (r->code_len > 12 && strncasecmp(r->code, "UIDVALIDITY ", 12) == 0) {
			const char *w;
			size_t pos = 11, n;
			uint32_t v = 0;
			mp_imap_item it = { MP_IMAP_ATOM, NULL, 0, 0 };

			if (mp_imap_word_next(r->code, r->code_len, &pos, &w, &n)) {
				it.s = w;
				it.len = n;
				if (mp_imap_item_u32(&it, &v) == MP_OK)
					mb->uidvalidity = v;
			}
		} else if (!caps_from_code(mb, r->code, r->code_len) && r->status != MP_IMAP_OK) {
			mp_log_id(MP_LOG_NOTICE, mb->log_id, "server: %s",
			          mp_imap_printable(r->text, r->text_len, text, sizeof text));
		}
		return GO;
	}
#define NAME_IS(w) (r->name_len == strlen(w) && strncasecmp(r->name, w, r->name_len) == 0)
	if (NAME_IS("CAPABILITY")) {
		caps_from_items(mb, r);
	} else if (r->has_number && NAME_IS("EXISTS")) {
		mb->exists_pending = 1;
		if (mb->state == I_IDLING)
			return send_done(mb);
	} else if (NAME_IS("SEARCH") && mb->state == I_SEARCH) {
		size_t i;
		uint32_t uid;

		for (i = 1; i < r->nitems; i = r->items[i].end) {
			if (mp_imap_item_u32(&r->items[i], &uid) != MP_OK)
				return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "malformed SEARCH answer");
			if (!is_handled(mb, uid) && queue_add(mb, uid) != MP_OK)
				return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "out of memory");
		}
	} else if (r->has_number && NAME_IS("FETCH") && mb->state == I_FETCH) {
		uint32_t uid;

		/* Other FETCHes (flag changes by other clients) pass by. */
		if (mp_imap_item_u32(mp_imap_list_get(r, 1, "UID"), &uid) == MP_OK &&
		    uid == mb->cur_uid &&
		    (mp_imap_list_get(r, 1, "BODY[]<0>") || mp_imap_list_get(r, 1, "BODY[]"))) {
			mp_imap_response_free(mb->fetched);
			mb->fetched = r;
			*rp = NULL;
		}
	}
#undef NAME_IS
	return GO;
}

static int
on_continue(agent_imap *mb)
{
	if (mb->state == I_AUTH && (mb->caps & CAP_AUTH_PLAIN) && !(mb->caps & CAP_SASL_IR))
		return auth_continue(mb);
	if (mb->state == I_IDLE_START) {
		mb->state = I_IDLING;
		disarm(mb->tmo_ev);
		arm(mb->idle_ev, AGENT_IMAP_IDLE_REFRESH_S);
		if (mb->exists_pending || mb->check_requested)
			return send_done(mb);
		return GO;
	}
	return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "unexpected continuation request");
}

static int
on_tagged(agent_imap *mb, const mp_imap_response *r)
{
	char text[200];
	int ok = r->status == MP_IMAP_OK;

	mp_imap_printable(r->text, r->text_len, text, sizeof text);
	if (r->tag_len != strlen(mb->tag) || memcmp(r->tag, mb->tag, r->tag_len) != 0)
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "answer to a command never sent");
	if (r->status == MP_IMAP_BAD)
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "server rejected %s: %s",
		            state_names[mb->state], text);
	switch (mb->state) {
	case I_CAPA:
		if (!ok)
			return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "CAPABILITY failed: %s", text);
		mb->caps_known = 1;
		return after_greeting(mb);
	case I_STARTTLS:
		if (!ok)
			return fail(mb, AGENT_MAILBOX_ERR_TLS, "server refused STARTTLS: %s", text);
		/* Anything already sent after the OK came in the clear and
		 * would pass for TLS data (CVE-2011-0411 style injection). */
		if (evbuffer_get_length(bufferevent_get_input(mb->bev)) != 0)
			return fail(mb, AGENT_MAILBOX_ERR_TLS, "data after STARTTLS answer: refused");
		return start_tls(mb);
	case I_AUTH:
		if (!ok)
			return fail(mb, AGENT_MAILBOX_ERR_AUTH, "login as %s refused: %s",
			            mb->user, text);
		if (caps_from_code(mb, r->code, r->code_len))
			return after_login(mb);
		return send_cmd(mb, I_CAPA2, NULL, "CAPABILITY");
	case I_CAPA2:
		return after_login(mb);
	case I_CREATE:
		/* NO [ALREADYEXISTS] is the usual answer; a real failure shows
		 * up as a failed move later. */
		mb->uidvalidity = 0;
		return send_cmd(mb, I_SELECT, NULL, "SELECT %s", mb->q_folder);
	case I_SELECT:
		if (!ok)
			return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "cannot select %s: %s",
			            mb->folder, text);
		return selected(mb);
	case I_SEARCH:
		if (!ok)
			return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "SEARCH failed: %s", text);
		if (mb->nqueue)
			mp_log_id(MP_LOG_DEBUG, mb->log_id, "%zu marked mails to read", mb->nqueue);
		return process_queue(mb);
	case I_FETCH:
		return fetch_done(mb, r);
	case I_MOVE:
		return ok ? process_queue(mb) : consume_failed(mb, "move", r);
	case I_COPY:
		return ok ? store_deleted(mb) : consume_failed(mb, "copy", r);
	case I_STORE:
		if (!ok)
			return consume_failed(mb, "flag as deleted", r);
		if (mb->caps & CAP_UIDPLUS)
			return send_cmd(mb, I_EXPUNGE, NULL, "UID EXPUNGE %u", mb->cur_uid);
		if (!mb->warned_no_uidplus) {
			mb->warned_no_uidplus = 1;
			mp_log_id(MP_LOG_WARNING, mb->log_id,
			          "server lacks UIDPLUS: consumed mails stay flagged \\Deleted "
			          "until the user's own client expunges");
		}
		return process_queue(mb);
	case I_EXPUNGE:
		return ok ? process_queue(mb) : consume_failed(mb, "expunge", r);
	case I_IDLE_START:
	case I_IDLING:      /* a server may end IDLE on its own */
	case I_DONE:
		if (!ok) {
			mp_log_id(MP_LOG_NOTICE, mb->log_id, "IDLE refused (%s): polling instead", text);
			mb->idle_refused = 1;
		}
		return search(mb);
	default:
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "unexpected answer during %s",
		            state_names[mb->state]);
	}
}

static int
handle(agent_imap *mb, mp_imap_response *r)
{
	int rc;

	switch (r->kind) {
	case MP_IMAP_UNTAGGED:
		rc = on_untagged(mb, &r);
		break;
	case MP_IMAP_CONTINUE:
		rc = on_continue(mb);
		break;
	default:
		rc = on_tagged(mb, r);
		break;
	}
	mp_imap_response_free(r);
	return rc;
}

/* TCP is up (the event, or data that overtook it). */
static int
tcp_connected(agent_imap *mb)
{
	agent_mailconn_keepalive(mb->bev);
	if (!mb->starttls)
		return start_tls(mb);
	mb->state = I_GREETING;
	arm_timeout(mb);
	return GO;
}

/* The TLS handshake is done (the event, or data that overtook it). */
static int
tls_connected(agent_imap *mb)
{
	mb->tls_up = 1;
	mp_log_id(MP_LOG_DEBUG, mb->log_id, "TLS up with %s", mb->tls_name);
	if (mb->starttls) {
		/* RFC 3501 6.2.1: forget what was learnt in the clear */
		mb->caps_known = 0;
		mb->caps = 0;
		return after_greeting(mb);
	}
	mb->state = I_GREETING;
	arm_timeout(mb);
	return GO;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	agent_imap *mb = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	/* Deferred callbacks may deliver data before the event announcing
	 * the connection: the data proves it. */
	if (mb->state == I_CONNECTING && tcp_connected(mb) != GO)
		return;
	if (mb->state == I_HANDSHAKE && tls_connected(mb) != GO)
		return;
	if (mb->state != I_IDLING && mb->state != I_WAIT)
		arm_timeout(mb);
	for (;;) {
		struct evbuffer_iovec v;
		mp_imap_response *r = NULL;
		size_t used = 0;
		int err;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return;
		err = mp_imap_reader_feed(mb->rd, v.iov_base, v.iov_len, &used, &r);
		evbuffer_drain(in, used);
		if (err != MP_OK) {
			fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "unreadable answer from server: %s",
			     mp_strerror(err));
			return;
		}
		if (!r)
			continue;
		if (handle(mb, r) != GO)
			return;
	}
}

static void
on_event(struct bufferevent *bev, short events, void *arg)
{
	agent_imap *mb = arg;
	char detail[300];
	int status;

	if (events & BEV_EVENT_CONNECTED) {
		if (mb->state == I_CONNECTING)
			(void)tcp_connected(mb);
		else if (mb->state == I_HANDSHAKE)
			(void)tls_connected(mb);
		return;
	}
	if (!(events & (BEV_EVENT_ERROR | BEV_EVENT_EOF)))
		return;
	status = agent_mailconn_failure(bev, events, mb->state == I_HANDSHAKE, detail, sizeof detail);
	if (mb->state == I_CONNECTING && status == AGENT_MAILBOX_ERR_CLOSED)
		status = AGENT_MAILBOX_ERR_CONNECT;
	fail(mb, status, "%s", detail);
}

static void
do_connect(agent_imap *mb)
{
	char err[512];
	int rc;

	teardown(mb);
	if ((rc = mp_imap_reader_new(mb->max_mail, &mb->rd)) != MP_OK) {
		fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "%s", mp_strerror(rc));
		return;
	}
	mp_log_id(MP_LOG_DEBUG, mb->log_id, "connecting to %s port %u", mb->host, mb->port);
	mb->bev = agent_mailconn_open(mb->evb, mb->dns, mb->host, mb->port, on_read, on_event, mb,
	                              err, sizeof err);
	if (!mb->bev) {
		fail(mb, AGENT_MAILBOX_ERR_CONNECT, "%s", err);
		return;
	}
	bufferevent_enable(mb->bev, EV_READ | EV_WRITE);
	mb->state = I_CONNECTING;
	arm_timeout(mb);
}

/* ---------------------------------------------------------------- timers */

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	do_connect(arg);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	agent_imap *mb = arg;

	if (mb->state == I_DOWN || mb->state == I_IDLING || mb->state == I_WAIT)
		return;
	fail(mb, AGENT_MAILBOX_ERR_TIMEOUT, "no answer within %u s", mb->timeout_s);
}

static void
on_idle_refresh(evutil_socket_t fd, short what, void *arg)
{
	agent_imap *mb = arg;

	if (mb->state == I_IDLING)
		send_done(mb);
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	agent_imap *mb = arg;

	if (mb->state == I_WAIT)
		search(mb);
}

/* ---------------------------------------------------------------- setup */

static void
imap_destroy(agent_imap *mb)
{
	teardown(mb);
	if (mb->retry_ev)
		event_free(mb->retry_ev);
	if (mb->tmo_ev)
		event_free(mb->tmo_ev);
	if (mb->idle_ev)
		event_free(mb->idle_ev);
	if (mb->poll_ev)
		event_free(mb->poll_ev);
	SSL_CTX_free(mb->tls_ctx);
	if (mb->password) {
		OPENSSL_cleanse(mb->password, strlen(mb->password));
		free(mb->password);
	}
	free(mb->host);
	free(mb->tls_name);
	free(mb->user);
	free(mb->log_id);
	free(mb->folder);
	free(mb->q_folder);
	free(mb->move_to);
	free(mb->q_move_to);
	free(mb->marker);
	free(mb->q_marker);
	free(mb->queue);
	free(mb->handled);
	free(mb);
}

static int
dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (s && !(*out = strdup(s)))
		return MP_ERR_NOMEM;
	return MP_OK;
}

/* A quoted copy for commands; MP_ERR_INVAL if it cannot be quoted. */
static int
quoted(const char *s, char **out)
{
	size_t cap = 2 * strlen(s) + 3;
	int rc;

	if (!(*out = malloc(cap)))
		return MP_ERR_NOMEM;
	if ((rc = mp_imap_quote(s, *out, cap)) != MP_OK) {
		free(*out);
		*out = NULL;
		return rc == MP_ERR_NOMEM ? rc : MP_ERR_INVAL;
	}
	return MP_OK;
}

int
agent_imap_start(struct event_base *base, const agent_mailbox_account *a,
                 agent_mail_cb on_mail, agent_mailbox_error_cb on_error, void *arg,
                 agent_mailbox **out)
{
	agent_imap *mb;
	char err[512];
	int rc;

	if (out)
		*out = NULL;
	if (!base || !a || !on_mail || !out || a->kind != AGENT_MAILBOX_IMAP)
		return MP_ERR_INVAL;
	if ((rc = agent_mailconn_check_account(a)) != MP_OK)
		return rc;
	if (!(mb = calloc(1, sizeof *mb)))
		return MP_ERR_NOMEM;
	mb->base.kind = AGENT_MAILBOX_IMAP;
	mb->evb = base;
	mb->dns = a->dns;
	mb->on_mail = on_mail;
	mb->on_error = on_error;
	mb->arg = arg;
	mb->starttls = a->starttls != 0;
	mb->port = a->port ? a->port : (mb->starttls ? 143 : 993);
	mb->poll_s = a->poll_interval_s ? a->poll_interval_s : 30;
	mb->timeout_s = a->timeout_s ? a->timeout_s : 30;
	mb->max_mail = a->max_mail ? a->max_mail : AGENT_MAILBOX_MAX_MAIL_DEFAULT;
	mb->backoff_s = 1;
	mb->state = I_DOWN;
	if ((rc = dup_opt(a->host, &mb->host)) != MP_OK ||
	    (rc = dup_opt(a->tls_name ? a->tls_name : a->host, &mb->tls_name)) != MP_OK ||
	    (rc = dup_opt(a->user, &mb->user)) != MP_OK ||
	    (rc = dup_opt(a->password, &mb->password)) != MP_OK ||
	    (rc = dup_opt(a->log_id ? a->log_id : "imap", &mb->log_id)) != MP_OK ||
	    (rc = dup_opt(a->folder ? a->folder : "INBOX", &mb->folder)) != MP_OK ||
	    (rc = dup_opt(a->move_to, &mb->move_to)) != MP_OK ||
	    (rc = dup_opt(a->subject_marker ? a->subject_marker : MP_SUBJECT_MARKER_DEFAULT,
	                  &mb->marker)) != MP_OK ||
	    (rc = quoted(mb->folder, &mb->q_folder)) != MP_OK ||
	    (mb->move_to && (rc = quoted(mb->move_to, &mb->q_move_to)) != MP_OK) ||
	    (rc = quoted(mb->marker, &mb->q_marker)) != MP_OK)
		goto fail;
	rc = MP_ERR_NOMEM;
	if (!(mb->retry_ev = evtimer_new(base, on_retry, mb)) ||
	    !(mb->tmo_ev = evtimer_new(base, on_timeout, mb)) ||
	    !(mb->idle_ev = evtimer_new(base, on_idle_refresh, mb)) ||
	    !(mb->poll_ev = evtimer_new(base, on_poll, mb)))
		goto fail;
	if (!(mb->tls_ctx = agent_tls_ctx_new(a->ca_file, a->tls_insecure_skip_verify,
	                                      err, sizeof err))) {
		mp_log_id(MP_LOG_ERR, mb->log_id, "%s", err);
		rc = MP_ERR_CONFIG;
		goto fail;
	}
	/* First connection from the loop: no callback inside start(). */
	arm(mb->retry_ev, 0);
	*out = &mb->base;
	return MP_OK;
fail:
	imap_destroy(mb);
	return rc;
}

void
agent_imap_check_now(agent_mailbox *base)
{
	agent_imap *mb = (agent_imap *)base;

	if (!mb || mb->dying)
		return;
	mb->check_requested = 1;
	switch (mb->state) {
	case I_IDLING:
		send_done(mb);
		break;
	case I_WAIT:
		search(mb);
		break;
	case I_DOWN:
		/* skip the rest of the backoff: the caller expects mail now */
		arm(mb->retry_ev, 0);
		break;
	default:
		break;   /* process_queue() and IDLE's "+" look at the flag */
	}
}

void
agent_imap_free(agent_mailbox *base)
{
	agent_imap *mb = (agent_imap *)base;

	if (!mb)
		return;
	if (mb->depth > 0) {
		mb->dying = 1;
		return;
	}
	imap_destroy(mb);
}
