/*
 * pop3_client.c - the POP3 backend of the mailbox watcher (see
 * pop3_client.h for the session, mailbox.h for the contract).
 *
 * Interface: agent_pop3_start(), agent_pop3_check_now(), agent_pop3_free()
 * (reached through agent_mailbox_*()).
 * Errors: reported through on_error (status plus a printable detail)
 * and logged; a failed session is dropped uncommitted and retried.
 *
 * Like the IMAP backend: one command at a time, the state naming the
 * answer awaited; callbacks into the agent guarded so that the agent may
 * free the watcher from inside them (depth counter, dying flag, the
 * outermost frame frees).  Connections come from agent_mailconn_*() in
 * imap_client.c.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/mail.h"

#include "imap_parse.h"    /* mp_imap_printable() */
#include "pop3_parse.h"

#include "imap_client.h"
#include "mailbox.h"
#include "pop3_client.h"
#include "tls.h"

typedef enum pst {
	P_DOWN,          /* between sessions */
	P_CONNECTING,
	P_HANDSHAKE,
	P_GREETING,
	P_STLS,
	P_USER,
	P_PASS,
	P_UIDL,
	P_TOP,
	P_LIST,
	P_RETR,
	P_DELE,
	P_QUIT,
} pst;

static const char *const state_names[] = {
	"idle", "connect", "TLS handshake", "greeting", "STLS", "USER", "PASS",
	"UIDL", "TOP", "LIST", "RETR", "DELE", "QUIT",
};

/* What we know of a message, by UID. */
enum {
	S_NEW,           /* never looked at */
	S_OTHER,         /* no marker: never touched */
	S_KEPT,          /* handed over, kept */
	S_CONSUMED,      /* handed over, to be deleted */
	S_SKIPPED,       /* a marker mail too big or unreadable */
};

typedef struct seen {
	uint64_t h;      /* digest of the UID */
	uint8_t state;
} seen;

#define GO 0
#define STOP 1

typedef struct agent_pop3 {
	agent_mailbox base;           /* first: mailbox.h dispatches on it */
	struct event_base *evb;
	struct evdns_base *dns;
	SSL_CTX *tls_ctx;
	char *host, *tls_name, *user, *password, *marker, *log_id;
	unsigned port, poll_s, timeout_s;
	int starttls;
	size_t max_mail;
	agent_mail_cb on_mail;
	agent_mailbox_error_cb on_error;
	void *arg;

	/* the session */
	struct bufferevent *bev;
	mp_pop3_reader *rd;
	pst state;
	int tls_up;
	mp_pop3_uidl *list;           /* this session's UIDL */
	uint64_t *lh;                 /* digest of each list[i].uid */
	size_t nlist, cur;
	int deleted;                  /* DELEs this session */
	char text[200];               /* the current answer's text, log-safe */

	/* across sessions */
	seen *seen;                   /* sorted by h */
	size_t nseen;
	int again;                    /* check_now during a session */
	int last_failed, ever_ok;
	unsigned backoff_s;
	struct event *poll_ev, *tmo_ev;
	int depth, dying;
} agent_pop3;

static int fail(agent_pop3 *mb, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int send_cmd(agent_pop3 *mb, pst state, int multi, size_t max, int secret,
                    const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void pop3_destroy(agent_pop3 *mb);
static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short events, void *arg);
static int next_message(agent_pop3 *mb);

/* ---------------------------------------------------------------- UIDs */

static uint64_t
uid_digest(const char *uid)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	uint64_t h = 0;
	int i;

	SHA256((const unsigned char *)uid, strlen(uid), md);
	for (i = 0; i < 8; i++)
		h = (h << 8) | md[i];
	return h;
}

static int
seen_cmp(const void *a, const void *b)
{
	uint64_t x = ((const seen *)a)->h, y = ((const seen *)b)->h;

	return x < y ? -1 : x > y;
}

static seen *
seen_find(const agent_pop3 *mb, uint64_t h)
{
	seen key = { h, 0 };

	if (!mb->nseen)
		return NULL;
	return bsearch(&key, mb->seen, mb->nseen, sizeof *mb->seen, seen_cmp);
}

static int
seen_state(const agent_pop3 *mb, size_t i)
{
	const seen *s = seen_find(mb, mb->lh[i]);

	return s ? s->state : S_NEW;
}

static void
seen_set(agent_pop3 *mb, size_t i, int state)
{
	seen *s = seen_find(mb, mb->lh[i]);

	if (s)
		s->state = (uint8_t)state;
}

/* The table after a UIDL: exactly the listed UIDs, with what we knew of
 * them, so it never outgrows the mailbox. */
static int
seen_rebuild(agent_pop3 *mb)
{
	seen *n;
	size_t i;

	if (!mb->nlist) {
		free(mb->seen);
		mb->seen = NULL;
		mb->nseen = 0;
		return MP_OK;
	}
	if (!(n = calloc(mb->nlist, sizeof *n)) ||
	    !(mb->lh = calloc(mb->nlist, sizeof *mb->lh))) {
		free(n);
		return MP_ERR_NOMEM;
	}
	for (i = 0; i < mb->nlist; i++) {
		const seen *old;

		mb->lh[i] = uid_digest(mb->list[i].uid);
		old = seen_find(mb, mb->lh[i]);
		n[i].h = mb->lh[i];
		n[i].state = old ? old->state : S_NEW;
	}
	qsort(n, mb->nlist, sizeof *n, seen_cmp);
	free(mb->seen);
	mb->seen = n;
	mb->nseen = mb->nlist;
	return MP_OK;
}

/* ---------------------------------------------------------------- plumbing */

static int
notify(agent_pop3 *mb, int status, const char *detail)
{
	if (mb->on_error) {
		mb->depth++;
		mb->on_error(status, detail, mb->arg);
		mb->depth--;
	}
	if (mb->dying) {
		if (mb->depth == 0)
			pop3_destroy(mb);
		return -1;
	}
	return 0;
}

static void
arm(struct event *ev, unsigned seconds)
{
	struct timeval tv = { (time_t)seconds, 0 };

	event_add(ev, &tv);
}

static void
teardown(agent_pop3 *mb)
{
	if (mb->bev) {
		bufferevent_free(mb->bev);
		mb->bev = NULL;
	}
	mp_pop3_reader_free(mb->rd);
	mb->rd = NULL;
	free(mb->list);
	mb->list = NULL;
	free(mb->lh);
	mb->lh = NULL;
	mb->nlist = mb->cur = 0;
	mb->deleted = 0;
	mb->tls_up = 0;
	mb->state = P_DOWN;
	if (mb->tmo_ev)
		event_del(mb->tmo_ev);
}

static void
schedule(agent_pop3 *mb, unsigned seconds)
{
	event_del(mb->poll_ev);
	arm(mb->poll_ev, seconds);
}

static int
fail(agent_pop3 *mb, int status, const char *fmt, ...)
{
	char detail[512];
	unsigned delay = mb->backoff_s < mb->poll_s ? mb->backoff_s : mb->poll_s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	mp_log_id(MP_LOG_WARNING, mb->log_id, "%s error (%s), retrying in %u s: %s",
	          agent_mailbox_status_name(status), state_names[mb->state], delay, detail);
	teardown(mb);
	schedule(mb, delay);
	mb->backoff_s = mb->backoff_s >= AGENT_MAILBOX_BACKOFF_MAX_S / 2
	                ? AGENT_MAILBOX_BACKOFF_MAX_S : mb->backoff_s * 2;
	mb->last_failed = 1;
	(void)notify(mb, status, detail);
	return STOP;
}

static int
send_cmd(agent_pop3 *mb, pst state, int multi, size_t max, int secret, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line - 2)
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "command too long");
	mp_log_id(MP_LOG_DEBUG, mb->log_id, "C: %s", secret ? "PASS <password>" : line);
	memcpy(line + n, "\r\n", 2);
	mb->state = state;
	mp_pop3_reader_expect(mb->rd, multi, max);
	arm(mb->tmo_ev, mb->timeout_s);
	if (bufferevent_write(mb->bev, line, (size_t)n + 2) != 0)
		rc = fail(mb, AGENT_MAILBOX_ERR_CONNECT, "cannot send to the server");
	else
		rc = GO;
	OPENSSL_cleanse(line, sizeof line);
	return rc;
}

static int
start_tls(agent_pop3 *mb)
{
	char err[512];
	struct bufferevent *bev;

	bev = agent_mailconn_tls(mb->bev, mb->tls_ctx, mb->tls_name, on_read, on_event, mb,
	                         err, sizeof err);
	if (!bev)
		return fail(mb, AGENT_MAILBOX_ERR_TLS, "%s", err);
	mb->bev = bev;
	mb->state = P_HANDSHAKE;
	arm(mb->tmo_ev, mb->timeout_s);
	return STOP;
}

/* ---------------------------------------------------------------- session */

static int
login(agent_pop3 *mb)
{
	if (!mb->tls_up)   /* never reached: the session logic requires TLS first */
		return fail(mb, AGENT_MAILBOX_ERR_TLS, "refusing to log in without TLS");
	return send_cmd(mb, P_USER, 0, 0, 0, "USER %s", mb->user);
}

static int
session_done(agent_pop3 *mb)
{
	char detail[300];
	int report = mb->last_failed || !mb->ever_ok;

	mp_log_id(MP_LOG_DEBUG, mb->log_id, "poll done, %d deleted", mb->deleted);
	teardown(mb);
	mb->backoff_s = 1;
	mb->last_failed = 0;
	mb->ever_ok = 1;
	schedule(mb, mb->again ? 0 : mb->poll_s);
	mb->again = 0;
	if (!report)
		return STOP;
	snprintf(detail, sizeof detail, "polling %.64s every %u s", mb->host, mb->poll_s);
	mp_log_id(MP_LOG_INFO, mb->log_id, "%s", detail);
	(void)notify(mb, AGENT_MAILBOX_WATCHING, detail);
	return STOP;
}

static int
next_message(agent_pop3 *mb)
{
	while (mb->cur < mb->nlist) {
		size_t i = mb->cur;

		switch (seen_state(mb, i)) {
		case S_NEW:
			return send_cmd(mb, P_TOP, 1, AGENT_POP3_HEADER_MAX, 0, "TOP %u 0",
			                mb->list[i].msg);
		case S_CONSUMED:
			/* handed over in a session whose QUIT never came */
			return send_cmd(mb, P_DELE, 0, 0, 0, "DELE %u", mb->list[i].msg);
		default:
			mb->cur++;
		}
	}
	return send_cmd(mb, P_QUIT, 0, 0, 0, "QUIT");
}

/* Skip the current message for this session and go on. */
static int
skip(agent_pop3 *mb, int state)
{
	if (state >= 0)
		seen_set(mb, mb->cur, state);
	mb->cur++;
	return next_message(mb);
}

static int
got_uidl(agent_pop3 *mb, const mp_pop3_response *r)
{
	int rc;

	if (!r->ok)
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "server has no UIDL: %s", mb->text);
	if (r->truncated)
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "UIDL listing over %zu bytes",
		            AGENT_POP3_UIDL_BODY_MAX);
	if ((rc = mp_pop3_parse_uidl(r->body, r->body_len, &mb->list, &mb->nlist)) != MP_OK)
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "bad UIDL listing: %s", mp_strerror(rc));
	if ((rc = seen_rebuild(mb)) != MP_OK)
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "%s", mp_strerror(rc));
	mb->cur = 0;
	return next_message(mb);
}

static int
got_top(agent_pop3 *mb, const mp_pop3_response *r)
{
	int hit;

	if (!r->ok)   /* gone meanwhile, or TOP unsupported: try next time */
		return skip(mb, -1);
	if ((hit = mp_pop3_subject_match(r->body, r->body_len, mb->marker)) < 0)
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "out of memory");
	if (!hit)
		return skip(mb, S_OTHER);
	return send_cmd(mb, P_LIST, 0, 0, 0, "LIST %u", mb->list[mb->cur].msg);
}

static int
got_list(agent_pop3 *mb, const mp_pop3_response *r)
{
	uint32_t msg;
	uint64_t size;

	if (!r->ok)
		return skip(mb, -1);
	if (mp_pop3_parse_scan(r->text, &msg, &size) != MP_OK)
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "bad LIST answer");
	if (size > mb->max_mail) {
		mp_log_id(MP_LOG_NOTICE, mb->log_id,
		          "skipping message %s: %llu bytes, over the limit of %zu",
		          mb->list[mb->cur].uid, (unsigned long long)size, mb->max_mail);
		return skip(mb, S_SKIPPED);
	}
	return send_cmd(mb, P_RETR, 1, mb->max_mail, 0, "RETR %u", mb->list[mb->cur].msg);
}

static int
got_retr(agent_pop3 *mb, const mp_pop3_response *r)
{
	agent_mail_verdict v;
	size_t i = mb->cur;

	if (!r->ok)
		return skip(mb, -1);
	if (r->truncated) {
		mp_log_id(MP_LOG_NOTICE, mb->log_id,
		          "skipping message %s: %llu bytes, over the limit of %zu",
		          mb->list[i].uid, (unsigned long long)r->body_total, mb->max_mail);
		return skip(mb, S_SKIPPED);
	}
	mp_log_id(MP_LOG_INFO, mb->log_id, "handing over message %s (%zu bytes)",
	          mb->list[i].uid, r->body_len);
	mb->depth++;
	v = mb->on_mail(r->body, r->body_len, mb->arg);
	mb->depth--;
	if (mb->dying) {
		if (mb->depth == 0)
			pop3_destroy(mb);
		return STOP;
	}
	if (v != AGENT_MAIL_CONSUME)
		return skip(mb, S_KEPT);
	seen_set(mb, i, S_CONSUMED);
	return send_cmd(mb, P_DELE, 0, 0, 0, "DELE %u", mb->list[i].msg);
}

static int
got_dele(agent_pop3 *mb, const mp_pop3_response *r)
{
	char detail[300];

	if (r->ok) {
		mb->deleted++;
		mb->cur++;
		return next_message(mb);
	}
	snprintf(detail, sizeof detail, "cannot delete message %s: %.200s",
	         mb->list[mb->cur].uid, mb->text);
	mp_log_id(MP_LOG_WARNING, mb->log_id, "%s", detail);
	/* S_CONSUMED stays: the next session tries again */
	mb->cur++;
	if (notify(mb, AGENT_MAILBOX_ERR_PROTOCOL, detail) != 0)
		return STOP;
	return next_message(mb);
}

static int
handle(agent_pop3 *mb, const mp_pop3_response *r)
{
	mp_imap_printable(r->text, r->text_len, mb->text, sizeof mb->text);
	switch (mb->state) {
	case P_GREETING:
		if (!r->ok)
			return fail(mb, AGENT_MAILBOX_ERR_CLOSED, "server refused the session: %s",
			            mb->text);
		if (mb->starttls && !mb->tls_up)
			return send_cmd(mb, P_STLS, 0, 0, 0, "STLS");
		return login(mb);
	case P_STLS:
		if (!r->ok)
			return fail(mb, AGENT_MAILBOX_ERR_TLS, "server refused STLS: %s", mb->text);
		/* bytes after the +OK came in the clear: an injection attempt */
		if (evbuffer_get_length(bufferevent_get_input(mb->bev)) != 0)
			return fail(mb, AGENT_MAILBOX_ERR_TLS, "data after STLS answer: refused");
		return start_tls(mb);
	case P_USER:
		if (!r->ok)
			return fail(mb, AGENT_MAILBOX_ERR_AUTH, "user %s refused: %s", mb->user, mb->text);
		return send_cmd(mb, P_PASS, 0, 0, 1, "PASS %s", mb->password);
	case P_PASS:
		if (!r->ok) {
			/* RFC 3206: IN-USE and SYS/... are not about the password */
			int status = mp_pop3_resp_code(r, "IN-USE") || mp_pop3_resp_code(r, "SYS")
			             ? AGENT_MAILBOX_ERR_PROTOCOL : AGENT_MAILBOX_ERR_AUTH;

			return fail(mb, status, "login as %s refused: %s", mb->user, mb->text);
		}
		return send_cmd(mb, P_UIDL, 1, AGENT_POP3_UIDL_BODY_MAX, 0, "UIDL");
	case P_UIDL:
		return got_uidl(mb, r);
	case P_TOP:
		return got_top(mb, r);
	case P_LIST:
		return got_list(mb, r);
	case P_RETR:
		return got_retr(mb, r);
	case P_DELE:
		return got_dele(mb, r);
	case P_QUIT:
		if (!r->ok)
			return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "QUIT failed, deletions not done: %s",
			            mb->text);
		return session_done(mb);
	default:
		return fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "unexpected data from server");
	}
}

/* ---------------------------------------------------------------- events */

static int
tcp_connected(agent_pop3 *mb)
{
	agent_mailconn_keepalive(mb->bev);
	if (!mb->starttls)
		return start_tls(mb);
	mb->state = P_GREETING;
	mp_pop3_reader_expect(mb->rd, 0, 0);
	arm(mb->tmo_ev, mb->timeout_s);
	return GO;
}

static int
tls_connected(agent_pop3 *mb)
{
	mb->tls_up = 1;
	mp_log_id(MP_LOG_DEBUG, mb->log_id, "TLS up with %s", mb->tls_name);
	if (mb->starttls)
		return login(mb);
	mb->state = P_GREETING;
	mp_pop3_reader_expect(mb->rd, 0, 0);
	arm(mb->tmo_ev, mb->timeout_s);
	return GO;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	agent_pop3 *mb = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (mb->state == P_CONNECTING && tcp_connected(mb) != GO)
		return;
	if (mb->state == P_HANDSHAKE && tls_connected(mb) != GO)
		return;
	arm(mb->tmo_ev, mb->timeout_s);
	for (;;) {
		struct evbuffer_iovec v;
		mp_pop3_response *r = NULL;
		size_t used = 0;
		int err, rc;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return;
		err = mp_pop3_reader_feed(mb->rd, v.iov_base, v.iov_len, &used, &r);
		evbuffer_drain(in, used);
		if (err != MP_OK) {
			fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "unreadable answer from server: %s",
			     mp_strerror(err));
			return;
		}
		if (!r)
			continue;
		rc = handle(mb, r);
		mp_pop3_response_free(r);
		if (rc != GO)
			return;
	}
}

static void
on_event(struct bufferevent *bev, short events, void *arg)
{
	agent_pop3 *mb = arg;
	char detail[300];
	int status;

	if (events & BEV_EVENT_CONNECTED) {
		if (mb->state == P_CONNECTING)
			(void)tcp_connected(mb);
		else if (mb->state == P_HANDSHAKE)
			(void)tls_connected(mb);
		return;
	}
	if (!(events & (BEV_EVENT_ERROR | BEV_EVENT_EOF)))
		return;
	status = agent_mailconn_failure(bev, events, mb->state == P_HANDSHAKE, detail, sizeof detail);
	if (mb->state == P_CONNECTING && status == AGENT_MAILBOX_ERR_CLOSED)
		status = AGENT_MAILBOX_ERR_CONNECT;
	fail(mb, status, "%s", detail);
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	agent_pop3 *mb = arg;
	char err[512];
	int rc;

	teardown(mb);
	if ((rc = mp_pop3_reader_new(&mb->rd)) != MP_OK) {
		fail(mb, AGENT_MAILBOX_ERR_PROTOCOL, "%s", mp_strerror(rc));
		return;
	}
	mp_log_id(MP_LOG_DEBUG, mb->log_id, "polling %s port %u", mb->host, mb->port);
	mb->bev = agent_mailconn_open(mb->evb, mb->dns, mb->host, mb->port, on_read, on_event, mb,
	                              err, sizeof err);
	if (!mb->bev) {
		fail(mb, AGENT_MAILBOX_ERR_CONNECT, "%s", err);
		return;
	}
	bufferevent_enable(mb->bev, EV_READ | EV_WRITE);
	mb->state = P_CONNECTING;
	arm(mb->tmo_ev, mb->timeout_s);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	agent_pop3 *mb = arg;

	if (mb->state != P_DOWN)
		fail(mb, AGENT_MAILBOX_ERR_TIMEOUT, "no answer within %u s", mb->timeout_s);
}

/* ---------------------------------------------------------------- setup */

static void
pop3_destroy(agent_pop3 *mb)
{
	teardown(mb);
	if (mb->poll_ev)
		event_free(mb->poll_ev);
	if (mb->tmo_ev)
		event_free(mb->tmo_ev);
	SSL_CTX_free(mb->tls_ctx);
	if (mb->password) {
		OPENSSL_cleanse(mb->password, strlen(mb->password));
		free(mb->password);
	}
	free(mb->host);
	free(mb->tls_name);
	free(mb->user);
	free(mb->marker);
	free(mb->log_id);
	free(mb->seen);
	free(mb);
}

static int
dup_str(const char *s, char **out)
{
	return (*out = strdup(s)) ? MP_OK : MP_ERR_NOMEM;
}

int
agent_pop3_start(struct event_base *base, const agent_mailbox_account *a,
                 agent_mail_cb on_mail, agent_mailbox_error_cb on_error, void *arg,
                 agent_mailbox **out)
{
	agent_pop3 *mb;
	char err[512];
	int rc;

	if (out)
		*out = NULL;
	if (!base || !a || !on_mail || !out || a->kind != AGENT_MAILBOX_POP3)
		return MP_ERR_INVAL;
	if ((rc = agent_mailconn_check_account(a)) != MP_OK)
		return rc;
	/* USER and PASS take their argument raw: no quoting to hide behind */
	if (!mp_pop3_arg_ok(a->user) || strchr(a->user, ' ') ||
	    (*a->password && !mp_pop3_arg_ok(a->password)))
		return MP_ERR_INVAL;
	if (!(mb = calloc(1, sizeof *mb)))
		return MP_ERR_NOMEM;
	mb->base.kind = AGENT_MAILBOX_POP3;
	mb->evb = base;
	mb->dns = a->dns;
	mb->on_mail = on_mail;
	mb->on_error = on_error;
	mb->arg = arg;
	mb->starttls = a->starttls != 0;
	mb->port = a->port ? a->port : (mb->starttls ? 110 : 995);
	mb->poll_s = a->poll_interval_s ? a->poll_interval_s : 30;
	mb->timeout_s = a->timeout_s ? a->timeout_s : 30;
	mb->max_mail = a->max_mail ? a->max_mail : AGENT_MAILBOX_MAX_MAIL_DEFAULT;
	mb->backoff_s = 1;
	mb->state = P_DOWN;
	if ((rc = dup_str(a->host, &mb->host)) != MP_OK ||
	    (rc = dup_str(a->tls_name ? a->tls_name : a->host, &mb->tls_name)) != MP_OK ||
	    (rc = dup_str(a->user, &mb->user)) != MP_OK ||
	    (rc = dup_str(a->password, &mb->password)) != MP_OK ||
	    (rc = dup_str(a->subject_marker ? a->subject_marker : MP_SUBJECT_MARKER_DEFAULT,
	                  &mb->marker)) != MP_OK ||
	    (rc = dup_str(a->log_id ? a->log_id : "pop3", &mb->log_id)) != MP_OK)
		goto fail;
	rc = MP_ERR_NOMEM;
	if (!(mb->poll_ev = evtimer_new(base, on_poll, mb)) ||
	    !(mb->tmo_ev = evtimer_new(base, on_timeout, mb)))
		goto fail;
	if (!(mb->tls_ctx = agent_tls_ctx_new(a->ca_file, a->tls_insecure_skip_verify,
	                                      err, sizeof err))) {
		mp_log_id(MP_LOG_ERR, mb->log_id, "%s", err);
		rc = MP_ERR_CONFIG;
		goto fail;
	}
	if (a->move_to)
		mp_log_id(MP_LOG_NOTICE, mb->log_id, "POP3 has no folders: consumed mails are deleted");
	schedule(mb, 0);
	*out = &mb->base;
	return MP_OK;
fail:
	pop3_destroy(mb);
	return rc;
}

void
agent_pop3_check_now(agent_mailbox *base)
{
	agent_pop3 *mb = (agent_pop3 *)base;

	if (!mb || mb->dying)
		return;
	if (mb->state == P_DOWN)
		schedule(mb, 0);
	else
		mb->again = 1;
}

void
agent_pop3_free(agent_mailbox *base)
{
	agent_pop3 *mb = (agent_pop3 *)base;

	if (!mb)
		return;
	if (mb->depth > 0) {
		mb->dying = 1;
		return;
	}
	pop3_destroy(mb);
}
