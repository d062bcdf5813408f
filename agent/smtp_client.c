/*
 * smtp_client.c - send one mail through the user's submission server
 * (see smtp_client.h).
 *
 * One job is one state machine on the caller's event loop.  The work
 * starts from a zero-delay event, never inside agent_smtp_send(), so
 * the callback cannot run before the caller has its handle.  Every
 * address of the host gets a plain socket bufferevent in turn; once one
 * connects, TLS is an OpenSSL filter bufferevent wrapped around it,
 * right away for implicit TLS or after the STARTTLS reply, so both
 * modes share one code path and one kind of error report.
 *
 * Replies go through the incremental parser (lib/smtp_reply.c), which
 * stops at the end of each reply: after "220" to STARTTLS any byte left
 * in the plaintext buffer is refused, because a man in the middle could
 * have put it there to be read as if it came over TLS (CVE-2011-0411).
 * A 4xx or 5xx reply ends the job politely (QUIT, then the callback);
 * transport failures and garbage end it at once.  The connection is
 * TLS by construction before AUTH, and the check is repeated there so
 * a future plaintext mode cannot leak credentials by accident.
 *
 * Credentials are sent through evbuffer references whose cleanup wipes
 * them, and wiped in the job's copy on free; log lines name the AUTH
 * step but never carry its data.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "base64.h"
#include "smtp_client.h"
#include "smtp_reply.h"
#include "tls.h"

#define DETAIL_MAX 512
#define ADDR_MAX 254            /* RFC 5321 path limit without the brackets */
#define CRED_MAX 255            /* RFC 4616 field limit */
#define HOST_MAX 253
#define HELO_MAX 255
#define TIMEOUT_MAX 86400
#define QUIT_TIMEOUT_MAX 10     /* the outcome is known: do not linger */
#define CMD_MAX 600             /* longest command we build, CRLF excluded */

typedef enum job_step {
	ST_START,
	ST_RESOLVING,
	ST_CONNECTING,
	ST_HANDSHAKE,
	ST_GREETING,
	ST_EHLO,
	ST_STARTTLS,
	ST_AUTH_PLAIN,
	ST_AUTH_LOGIN,
	ST_AUTH_USER,
	ST_AUTH_PASS,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_BODY,
	ST_QUIT,
} job_step;

static const char *const step_names[] = {
	"start", "resolve", "connect", "TLS handshake", "greeting", "EHLO",
	"STARTTLS", "AUTH PLAIN", "AUTH LOGIN", "AUTH LOGIN", "AUTH LOGIN",
	"MAIL FROM", "RCPT TO", "DATA", "end of data", "QUIT",
};

struct agent_smtp_job {
	struct event_base *base;
	struct evdns_base *dns;
	char id[24];
	/* the request, copied */
	char *host, *user, *password, *ca_file, *helo, *from, *data;
	char **rcpts;
	size_t nrcpts, datalen;
	unsigned port;
	agent_smtp_security security;
	int insecure, eightbit;
	struct timeval step_tv, quit_tv, total_tv;
	agent_smtp_done_cb cb;
	void *arg;
	/* the session */
	job_step st;
	struct event *kick, *deadline;
	struct evdns_getaddrinfo_request *dns_req;
	int resolved, dns_err, dying;
	struct evutil_addrinfo *ai, *ai_next;
	char peer[INET6_ADDRSTRLEN + 10];
	char conn_err[DETAIL_MAX];
	int conn_timeout;
	char helo_buf[HELO_MAX + 1];
	SSL_CTX *tls_ctx;
	struct bufferevent *bev;
	int tls;
	mp_smtp_parser *parser;
	mp_smtp_caps caps;
	size_t rcpt_i;
	agent_smtp_status result;       /* decided, waiting for QUIT */
	char detail[DETAIL_MAX];
};

static unsigned job_counter;

static void finish(agent_smtp_job *s, agent_smtp_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int polite_end(agent_smtp_job *s, agent_smtp_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int send_cmd(agent_smtp_job *s, job_step next, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

const char *
agent_smtp_status_name(agent_smtp_status st)
{
	switch (st) {
	case AGENT_SMTP_OK: return "OK";
	case AGENT_SMTP_ERR_CONNECT: return "ERR_CONNECT";
	case AGENT_SMTP_ERR_TLS: return "ERR_TLS";
	case AGENT_SMTP_ERR_AUTH: return "ERR_AUTH";
	case AGENT_SMTP_ERR_RECIPIENT: return "ERR_RECIPIENT";
	case AGENT_SMTP_ERR_REJECTED: return "ERR_REJECTED";
	case AGENT_SMTP_ERR_TEMPORARY: return "ERR_TEMPORARY";
	case AGENT_SMTP_ERR_TIMEOUT: return "ERR_TIMEOUT";
	case AGENT_SMTP_ERR_PROTOCOL: return "ERR_PROTOCOL";
	case AGENT_SMTP_ERR_INTERNAL: return "ERR_INTERNAL";
	}
	return "ERR_UNKNOWN";
}

/* ---------------------------------------------------------------- life cycle */

static void
wipe_free(char *p)
{
	if (p) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}

/* Frees everything; with a DNS query in flight the job itself lives on
 * until that query's (deferred) cancel callback frees it. */
static void
teardown(agent_smtp_job *s)
{
	size_t i;

	if (s->kick)
		event_free(s->kick);
	if (s->deadline)
		event_free(s->deadline);
	s->kick = s->deadline = NULL;
	if (s->bev)
		bufferevent_free(s->bev);
	s->bev = NULL;
	SSL_CTX_free(s->tls_ctx);
	mp_smtp_parser_free(s->parser);
	if (s->ai)
		evutil_freeaddrinfo(s->ai);
	wipe_free(s->user);
	wipe_free(s->password);
	free(s->host);
	free(s->ca_file);
	free(s->helo);
	free(s->from);
	free(s->data);
	for (i = 0; s->rcpts && i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	if (s->dns_req) {
		struct evdns_getaddrinfo_request *req = s->dns_req;

		s->dns_req = NULL;
		s->dying = 1;
		evdns_getaddrinfo_cancel(req);   /* on_resolved() frees s */
		return;
	}
	free(s);
}

static void
finish(agent_smtp_job *s, agent_smtp_status st, const char *fmt, ...)
{
	agent_smtp_done_cb cb = s->cb;
	void *arg = s->arg;
	char detail[DETAIL_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	if (st == AGENT_SMTP_OK)
		mp_log_id(MP_LOG_INFO, s->id, "mail sent: %s", detail);
	else
		mp_log_id(MP_LOG_NOTICE, s->id, "mail not sent: %s: %s",
		          agent_smtp_status_name(st), detail);
	teardown(s);
	cb(st, detail, arg);
}

void
agent_smtp_cancel(agent_smtp_job *job)
{
	if (!job)
		return;
	mp_log_id(MP_LOG_INFO, job->id, "cancelled");
	teardown(job);
}

/* ---------------------------------------------------------------- sending */

static void
arm_timeouts(agent_smtp_job *s, const struct timeval *tv)
{
	bufferevent_set_timeouts(s->bev, tv, tv);
}

static int
send_cmd(agent_smtp_job *s, job_step next, const char *fmt, ...)
{
	char line[CMD_MAX + 3];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, CMD_MAX + 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n > CMD_MAX) {
		finish(s, AGENT_SMTP_ERR_INTERNAL, "command too long");
		return 1;
	}
	mp_log_id(MP_LOG_DEBUG, s->id, "C: %s", line);
	memcpy(line + n, "\r\n", 3);
	if (bufferevent_write(s->bev, line, (size_t)n + 2) != 0) {
		finish(s, AGENT_SMTP_ERR_INTERNAL, "cannot queue %s", step_names[next]);
		return 1;
	}
	s->st = next;
	arm_timeouts(s, next == ST_QUIT ? &s->quit_tv : &s->step_tv);
	return 0;
}

static void
wipe_cleanup(const void *data, size_t len, void *extra)
{
	(void)extra;
	OPENSSL_cleanse((void *)data, len);
	free((void *)data);
}

/* prefix + base64(secret) + CRLF, through a buffer wiped once sent;
 * shown is what the debug log says instead. */
static int
send_secret(agent_smtp_job *s, job_step next, const char *prefix, const void *secret,
            size_t slen, const char *shown)
{
	size_t plen = strlen(prefix), blen = 0, len;
	char *b64 = NULL, *line;

	if (mp_base64_encode(secret, slen, 0, 0, &b64, &blen) != MP_OK) {
		finish(s, AGENT_SMTP_ERR_INTERNAL, "out of memory");
		return 1;
	}
	len = plen + blen + 2;
	if (!(line = malloc(len))) {
		wipe_free(b64);
		finish(s, AGENT_SMTP_ERR_INTERNAL, "out of memory");
		return 1;
	}
	memcpy(line, prefix, plen);
	memcpy(line + plen, b64, blen);
	memcpy(line + plen + blen, "\r\n", 2);
	wipe_free(b64);
	if (evbuffer_add_reference(bufferevent_get_output(s->bev), line, len,
	                           wipe_cleanup, NULL) != 0) {
		wipe_cleanup(line, len, NULL);
		finish(s, AGENT_SMTP_ERR_INTERNAL, "cannot queue AUTH");
		return 1;
	}
	mp_log_id(MP_LOG_DEBUG, s->id, "C: %s", shown);
	s->st = next;
	arm_timeouts(s, &s->step_tv);
	return 0;
}

/*
 * Records a refusal and says goodbye; the callback runs when QUIT is
 * answered, or the server hangs up, or QUIT_TIMEOUT_MAX passes.
 */
static int
polite_end(agent_smtp_job *s, agent_smtp_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->detail, sizeof s->detail, fmt, ap);
	va_end(ap);
	s->result = st;
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	return send_cmd(s, ST_QUIT, "QUIT");
}

/* A reply other than the one hoped for: 4xx is temporary, 5xx is the
 * step's own failure class, anything else a protocol error. */
static int
refused(agent_smtp_job *s, const char *text, agent_smtp_status st5, const char *what)
{
	int cls = text[0] - '0';

	if (cls == 4)
		return polite_end(s, AGENT_SMTP_ERR_TEMPORARY, "%s: %s", what, text);
	if (cls == 5)
		return polite_end(s, st5, "%s: %s", what, text);
	finish(s, AGENT_SMTP_ERR_PROTOCOL, "%s: unexpected reply %s", what, text);
	return 1;
}

/* ---------------------------------------------------------------- steps */

static int
send_ehlo(agent_smtp_job *s)
{
	return send_cmd(s, ST_EHLO, "EHLO %s", s->helo_buf);
}

static int
send_mail(agent_smtp_job *s)
{
	char size[40] = "";
	size_t msgsize = s->datalen - 3;    /* without the final ".\r\n" */

	if (s->caps.ext & MP_SMTP_EXT_SIZE) {
		if (s->caps.size_max > 0 && msgsize > s->caps.size_max)
			return polite_end(s, AGENT_SMTP_ERR_REJECTED,
			                  "message of %zu bytes is over the server's limit of %llu",
			                  msgsize, (unsigned long long)s->caps.size_max);
		snprintf(size, sizeof size, " SIZE=%zu", msgsize);
	}
	return send_cmd(s, ST_MAIL, "MAIL FROM:<%s>%s%s", s->from, size,
	                s->eightbit && (s->caps.ext & MP_SMTP_EXT_8BITMIME) ? " BODY=8BITMIME" : "");
}

static int
send_auth(agent_smtp_job *s)
{
	if (!s->tls) {
		finish(s, AGENT_SMTP_ERR_TLS, "refusing to send credentials over a connection without TLS");
		return 1;
	}
	if (!(s->caps.ext & MP_SMTP_EXT_AUTH))
		return polite_end(s, AGENT_SMTP_ERR_AUTH, "server offers no AUTH (EHLO after TLS)");
	if (s->caps.auth & MP_SMTP_AUTH_PLAIN) {
		size_t ul = strlen(s->user), pl = strlen(s->password), n = ul + pl + 2;
		char msg[2 * CRED_MAX + 2];
		int rc;

		/* RFC 4616: authzid (empty) NUL authcid NUL passwd */
		msg[0] = '\0';
		memcpy(msg + 1, s->user, ul);
		msg[1 + ul] = '\0';
		memcpy(msg + 2 + ul, s->password, pl);
		rc = send_secret(s, ST_AUTH_PLAIN, "AUTH PLAIN ", msg, n,
		                 "AUTH PLAIN <credentials not logged>");
		OPENSSL_cleanse(msg, sizeof msg);
		return rc;
	}
	if (s->caps.auth & MP_SMTP_AUTH_LOGIN)
		return send_cmd(s, ST_AUTH_LOGIN, "AUTH LOGIN");
	return polite_end(s, AGENT_SMTP_ERR_AUTH,
	                  "server offers no AUTH mechanism we support (PLAIN, LOGIN)");
}

static int
after_ehlo(agent_smtp_job *s)
{
	if (!s->tls) {
		if (!(s->caps.ext & MP_SMTP_EXT_STARTTLS))
			return polite_end(s, AGENT_SMTP_ERR_TLS, "server does not offer STARTTLS");
		return send_cmd(s, ST_STARTTLS, "STARTTLS");
	}
	if (s->user)
		return send_auth(s);
	return send_mail(s);
}

static int
send_body(agent_smtp_job *s)
{
	if (bufferevent_write(s->bev, s->data, s->datalen) != 0) {
		finish(s, AGENT_SMTP_ERR_INTERNAL, "cannot queue the message");
		return 1;
	}
	/* the output buffer has its own copy now */
	free(s->data);
	s->data = NULL;
	mp_log_id(MP_LOG_DEBUG, s->id, "C: <message, %zu bytes>", s->datalen);
	s->st = ST_BODY;
	/* no reply is due before the upload ends: only writes are timed */
	bufferevent_set_timeouts(s->bev, NULL, &s->step_tv);
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	return 0;
}

static void
start_tls(agent_smtp_job *s)
{
	struct bufferevent *f;
	SSL *ssl;

	if (!(ssl = agent_tls_ssl_new(s->tls_ctx, s->host))) {
		finish(s, AGENT_SMTP_ERR_INTERNAL, "cannot create a TLS session for %s", s->host);
		return;
	}
	/* the filter's own timeouts govern from now on */
	bufferevent_set_timeouts(s->bev, NULL, NULL);
	f = bufferevent_openssl_filter_new(s->base, s->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                   BEV_OPT_CLOSE_ON_FREE);
	if (!f) {
		/* libevent has freed ssl (BEV_OPT_CLOSE_ON_FREE); s->bev is still ours */
		finish(s, AGENT_SMTP_ERR_INTERNAL, "cannot start TLS");
		return;
	}
	s->bev = f;
	s->st = ST_HANDSHAKE;
	bufferevent_setcb(f, on_read, NULL, on_event, s);
	arm_timeouts(s, &s->step_tv);
	bufferevent_enable(f, EV_READ | EV_WRITE);
}

/* 1: stop reading this buffer (job gone or connection replaced). */
static int
on_reply(agent_smtp_job *s, const mp_smtp_reply *r)
{
	char text[DETAIL_MAX];
	char what[ADDR_MAX + 20];

	mp_smtp_reply_format(r, text, sizeof text);
	mp_log_id(MP_LOG_DEBUG, s->id, "S: %s", text);
	switch (s->st) {
	case ST_GREETING:
		if (r->code == 220)
			return send_ehlo(s);
		return refused(s, text, AGENT_SMTP_ERR_CONNECT, "greeting");
	case ST_EHLO:
		if (r->code != 250)
			return refused(s, text, AGENT_SMTP_ERR_PROTOCOL, "EHLO");
		mp_smtp_caps_parse(r, &s->caps);
		return after_ehlo(s);
	case ST_STARTTLS:
		if (r->code != 220)
			return refused(s, text, AGENT_SMTP_ERR_TLS, "STARTTLS");
		if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
			finish(s, AGENT_SMTP_ERR_PROTOCOL,
			       "plaintext after the STARTTLS reply (injection attempt?)");
			return 1;
		}
		start_tls(s);
		return 1;
	case ST_AUTH_PLAIN:
	case ST_AUTH_PASS:
		if (r->code == 235)
			return send_mail(s);
		if (r->code == 334) {
			/* a challenge we cannot answer; QUIT would be read as one */
			finish(s, AGENT_SMTP_ERR_PROTOCOL, "AUTH: unexpected challenge %s", text);
			return 1;
		}
		return refused(s, text, AGENT_SMTP_ERR_AUTH, "AUTH");
	case ST_AUTH_LOGIN:
		if (r->code == 334)
			return send_secret(s, ST_AUTH_USER, "", s->user, strlen(s->user),
			                   "<user name not logged>");
		return refused(s, text, AGENT_SMTP_ERR_AUTH, "AUTH");
	case ST_AUTH_USER:
		if (r->code == 334)
			return send_secret(s, ST_AUTH_PASS, "", s->password, strlen(s->password),
			                   "<password not logged>");
		return refused(s, text, AGENT_SMTP_ERR_AUTH, "AUTH");
	case ST_MAIL:
		if (r->code == 250)
			return send_cmd(s, ST_RCPT, "RCPT TO:<%s>", s->rcpts[s->rcpt_i]);
		snprintf(what, sizeof what, "sender <%s>", s->from);
		return refused(s, text, AGENT_SMTP_ERR_REJECTED, what);
	case ST_RCPT:
		snprintf(what, sizeof what, "recipient <%s>", s->rcpts[s->rcpt_i]);
		if (r->code != 250 && r->code != 251)
			return refused(s, text, AGENT_SMTP_ERR_RECIPIENT, what);
		if (++s->rcpt_i < s->nrcpts)
			return send_cmd(s, ST_RCPT, "RCPT TO:<%s>", s->rcpts[s->rcpt_i]);
		return send_cmd(s, ST_DATA, "DATA");
	case ST_DATA:
		if (r->code == 354)
			return send_body(s);
		return refused(s, text, AGENT_SMTP_ERR_REJECTED, "DATA");
	case ST_BODY:
		if (r->code != 250)
			return refused(s, text, AGENT_SMTP_ERR_REJECTED, "message");
		s->result = AGENT_SMTP_OK;
		snprintf(s->detail, sizeof s->detail, "%s", text);
		bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
		return send_cmd(s, ST_QUIT, "QUIT");
	case ST_QUIT:
		finish(s, s->result, "%s", s->detail);
		return 1;
	default:
		finish(s, AGENT_SMTP_ERR_PROTOCOL, "unexpected data from the server during %s",
		       step_names[s->st]);
		return 1;
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	agent_smtp_job *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		struct evbuffer_iovec v;
		const mp_smtp_reply *r;
		size_t used;
		int rc;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		rc = mp_smtp_parser_feed(s->parser, v.iov_base, v.iov_len, &used, &r);
		evbuffer_drain(in, used);
		if (rc != MP_OK) {
			if (s->st == ST_QUIT)
				finish(s, s->result, "%s", s->detail);
			else
				finish(s, AGENT_SMTP_ERR_PROTOCOL, "%s: %s from the server",
				       step_names[s->st], rc == MP_ERR_TOOBIG ?
				       "reply over the size limit" : "malformed reply");
			return;
		}
		if (r && on_reply(s, r))
			return;
	}
}

/* The message has left our buffer: now the reply is due. */
static void
on_write(struct bufferevent *bev, void *arg)
{
	agent_smtp_job *s = arg;

	if (s->st != ST_BODY)
		return;
	bufferevent_setcb(bev, on_read, NULL, on_event, s);
	arm_timeouts(s, &s->step_tv);
}

/* ---------------------------------------------------------------- connecting */

static void connect_next(agent_smtp_job *s);

static void
note_conn_err(agent_smtp_job *s, const char *why)
{
	size_t o = strlen(s->conn_err);

	snprintf(s->conn_err + o, sizeof s->conn_err - o, "%s%s: %s",
	         o ? "; " : "connect to ", s->peer, why);
	mp_log_id(MP_LOG_DEBUG, s->id, "connect to %s: %s", s->peer, why);
}

/* Our end's address as an RFC 5321 address literal. */
static void
local_literal(agent_smtp_job *s, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char a[INET6_ADDRSTRLEN];
	evutil_socket_t fd = bufferevent_getfd(s->bev);

	snprintf(buf, len, "[127.0.0.1]");
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_INET &&
	    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof a))
		snprintf(buf, len, "[%s]", a);
	else if (ss.ss_family == AF_INET6 &&
	         inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof a))
		snprintf(buf, len, "[IPv6:%s]", a);
}

static int
domain_ok(const char *d)
{
	size_t n = strlen(d), i;

	if (n == 0 || n > HOST_MAX || d[0] == '.' || d[0] == '-' || d[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		char c = d[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

/* RFC 5321 wants a FQDN or an address literal; a bare host name is
 * neither, so without a dot we name ourselves by address. */
static void
choose_helo(agent_smtp_job *s)
{
	char hn[HOST_MAX + 2];

	if (s->helo) {
		snprintf(s->helo_buf, sizeof s->helo_buf, "%s", s->helo);
		return;
	}
	if (gethostname(hn, sizeof hn) == 0) {
		hn[sizeof hn - 1] = '\0';
		if (strchr(hn, '.') && domain_ok(hn)) {
			snprintf(s->helo_buf, sizeof s->helo_buf, "%s", hn);
			return;
		}
	}
	local_literal(s, s->helo_buf, sizeof s->helo_buf);
}

static void
connected(agent_smtp_job *s)
{
	mp_log_id(MP_LOG_INFO, s->id, "connected to %s (%s)", s->peer,
	          s->security == AGENT_SMTP_TLS ? "TLS" : "STARTTLS");
	choose_helo(s);
	if (s->security == AGENT_SMTP_TLS) {
		start_tls(s);
		return;
	}
	s->st = ST_GREETING;
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	arm_timeouts(s, &s->step_tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void
tls_up(agent_smtp_job *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	s->tls = 1;
	/* the server may hang up after QUIT without a TLS close_notify */
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	mp_smtp_parser_reset(s->parser);
	memset(&s->caps, 0, sizeof s->caps);   /* RFC 3207: forget pre-TLS EHLO */
	mp_log_id(MP_LOG_INFO, s->id, "TLS established (%s, %s)%s",
	          ssl ? SSL_get_version(ssl) : "?", ssl ? SSL_get_cipher_name(ssl) : "?",
	          s->insecure ? ", certificate NOT verified (tls_insecure_skip_verify)" : "");
	if (s->security == AGENT_SMTP_TLS) {
		s->st = ST_GREETING;
		arm_timeouts(s, &s->step_tv);
		return;
	}
	send_ehlo(s);
}

static void
on_connect_event(agent_smtp_job *s, short what)
{
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		connected(s);
		return;
	}
	s->conn_timeout = (what & BEV_EVENT_TIMEOUT) != 0;
	if (s->conn_timeout)
		note_conn_err(s, "timed out");
	else
		note_conn_err(s, err ? evutil_socket_error_to_string(err) : "connection failed");
	bufferevent_free(s->bev);
	s->bev = NULL;
	connect_next(s);
}

static void
on_handshake_event(agent_smtp_job *s, short what)
{
	char why[DETAIL_MAX];

	if (what & BEV_EVENT_CONNECTED) {
		tls_up(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		finish(s, AGENT_SMTP_ERR_TIMEOUT, "timeout during the TLS handshake with %s", s->peer);
		return;
	}
	agent_tls_error(bufferevent_openssl_get_ssl(s->bev), bufferevent_get_openssl_error(s->bev),
	                why, sizeof why);
	if ((what & BEV_EVENT_EOF) && strcmp(why, "TLS handshake failed") == 0)
		snprintf(why, sizeof why, "server closed the connection during the TLS handshake");
	finish(s, AGENT_SMTP_ERR_TLS, "%s", why);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	agent_smtp_job *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	const char *step = step_names[s->st];

	switch (s->st) {
	case ST_CONNECTING:
		on_connect_event(s, what);
		return;
	case ST_HANDSHAKE:
		on_handshake_event(s, what);
		return;
	case ST_QUIT:
		finish(s, s->result, "%s", s->detail);
		return;
	default:
		break;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		finish(s, AGENT_SMTP_ERR_TIMEOUT, "timeout waiting for the server (%s)", step);
	} else if (what & BEV_EVENT_EOF) {
		finish(s, AGENT_SMTP_ERR_CONNECT, "connection closed by the server (%s)", step);
	} else if (s->tls) {
		char why[DETAIL_MAX];

		agent_tls_error(NULL, bufferevent_get_openssl_error(bev), why, sizeof why);
		finish(s, AGENT_SMTP_ERR_CONNECT, "connection failed (%s): %s", step,
		       err ? evutil_socket_error_to_string(err) : why);
	} else {
		finish(s, AGENT_SMTP_ERR_CONNECT, "connection failed (%s): %s", step,
		       evutil_socket_error_to_string(err));
	}
}

static void
format_peer(agent_smtp_job *s, const struct sockaddr *sa)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, a, sizeof a);
		snprintf(s->peer, sizeof s->peer, "[%s]:%u", a, s->port);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a, sizeof a);
		snprintf(s->peer, sizeof s->peer, "%s:%u", a, s->port);
	}
}

/* Tries the next resolved address; reports when none is left. */
static void
connect_next(agent_smtp_job *s)
{
	struct evutil_addrinfo *ai;

	while ((ai = s->ai_next) != NULL) {
		struct bufferevent *bev;

		s->ai_next = ai->ai_next;
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		format_peer(s, ai->ai_addr);
		if (!(bev = bufferevent_socket_new(s->base, -1, BEV_OPT_CLOSE_ON_FREE))) {
			finish(s, AGENT_SMTP_ERR_INTERNAL, "cannot create a socket buffer");
			return;
		}
		bufferevent_setcb(bev, NULL, NULL, on_event, s);
		/* libevent times a connect as a write */
		bufferevent_set_timeouts(bev, NULL, &s->step_tv);
		s->bev = bev;
		s->st = ST_CONNECTING;
		if (bufferevent_socket_connect(bev, ai->ai_addr, (int)ai->ai_addrlen) == 0)
			return;
		s->conn_timeout = 0;
		note_conn_err(s, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		bufferevent_free(bev);
		s->bev = NULL;
	}
	if (!s->conn_err[0])
		snprintf(s->conn_err, sizeof s->conn_err, "%s has no IPv4 or IPv6 address", s->host);
	finish(s, s->conn_timeout ? AGENT_SMTP_ERR_TIMEOUT : AGENT_SMTP_ERR_CONNECT, "%s",
	       s->conn_err);
}

static void
after_resolve(agent_smtp_job *s)
{
	if (s->dns_err != 0) {
		finish(s, AGENT_SMTP_ERR_CONNECT, "cannot resolve %s: %s", s->host,
		       evutil_gai_strerror(s->dns_err));
		return;
	}
	s->ai_next = s->ai;
	connect_next(s);
}

static void
on_resolved(int err, struct evutil_addrinfo *ai, void *arg)
{
	agent_smtp_job *s = arg;

	s->dns_req = NULL;
	if (s->dying) {
		if (ai)
			evutil_freeaddrinfo(ai);
		free(s);
		return;
	}
	s->dns_err = err;
	s->ai = ai;
	s->resolved = 1;
	/* may run inside evdns_getaddrinfo(): continue from the loop */
	event_active(s->kick, EV_TIMEOUT, 1);
}

static int
is_ip_literal(const char *host)
{
	unsigned char a[16];

	return evutil_inet_pton(AF_INET, host, a) == 1 || evutil_inet_pton(AF_INET6, host, a) == 1;
}

static void
resolve(agent_smtp_job *s)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	char port[12];

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_NUMERICSERV;
	snprintf(port, sizeof port, "%u", s->port);
	s->st = ST_RESOLVING;
	if (is_ip_literal(s->host) || !s->dns) {
		if (is_ip_literal(s->host))
			hints.ai_flags |= EVUTIL_AI_NUMERICHOST;
		s->dns_err = evutil_getaddrinfo(s->host, port, &hints, &s->ai);
		if (s->dns_err != 0)
			s->ai = NULL;
		after_resolve(s);
		return;
	}
	s->resolved = 0;
	req = evdns_getaddrinfo(s->dns, s->host, port, &hints, on_resolved, s);
	if (!s->resolved)
		s->dns_req = req;
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	agent_smtp_job *s = arg;

	finish(s, AGENT_SMTP_ERR_TIMEOUT, "session took longer than %ld s (%s)",
	       (long)s->total_tv.tv_sec, step_names[s->st]);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	agent_smtp_job *s = arg;
	char err[DETAIL_MAX];

	if (s->st == ST_RESOLVING) {
		if (s->resolved)
			after_resolve(s);
		return;
	}
	if (!(s->tls_ctx = agent_tls_ctx_new(s->ca_file, s->insecure, err, sizeof err))) {
		finish(s, AGENT_SMTP_ERR_TLS, "%s", err);
		return;
	}
	if (evtimer_add(s->deadline, &s->total_tv) != 0) {
		finish(s, AGENT_SMTP_ERR_INTERNAL, "cannot arm the session timer");
		return;
	}
	mp_log_id(MP_LOG_INFO, s->id, "sending %zu bytes to %zu recipient%s via %s port %u",
	          s->datalen - 3, s->nrcpts, s->nrcpts == 1 ? "" : "s", s->host, s->port);
	resolve(s);
}

/* ---------------------------------------------------------------- entry */

/* No CTL, space or angle bracket: nothing that could end the path early. */
static int
path_ok(const char *a, size_t max, int allow_empty)
{
	size_t n = strlen(a), i;

	if (n == 0)
		return allow_empty;
	if (n > max)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>')
			return 0;
	}
	return 1;
}

static int
check_args(struct event_base *base, const agent_smtp_account *a, const char *from,
           const char *const *rcpts, size_t nrcpts, const char *mail, size_t len,
           agent_smtp_done_cb cb)
{
	size_t i;

	if (!base || !a || !from || !rcpts || nrcpts == 0 || (!mail && len > 0) || !cb ||
	    !a->host || a->port == 0 || a->port > 65535 || a->timeout_s > TIMEOUT_MAX ||
	    (a->security != AGENT_SMTP_STARTTLS && a->security != AGENT_SMTP_TLS) ||
	    (a->user && !a->password))
		return MP_ERR_INVAL;
	if (nrcpts > AGENT_SMTP_RCPT_MAX || len > AGENT_SMTP_MAIL_MAX)
		return MP_ERR_TOOBIG;
	if (a->user && (strlen(a->user) > CRED_MAX || strlen(a->password) > CRED_MAX || !*a->user))
		return MP_ERR_INVAL;
	if (!path_ok(a->host, HOST_MAX, 0) || !path_ok(from, ADDR_MAX, 1) ||
	    (a->helo_name && !path_ok(a->helo_name, HELO_MAX, 0)))
		return MP_ERR_SYNTAX;
	for (i = 0; i < nrcpts; i++)
		if (!rcpts[i] || !path_ok(rcpts[i], ADDR_MAX, 0))
			return rcpts[i] ? MP_ERR_SYNTAX : MP_ERR_INVAL;
	return MP_OK;
}

static char *
dup_opt(const char *s, int *nomem)
{
	char *d;

	if (!s)
		return NULL;
	if (!(d = strdup(s)))
		*nomem = 1;
	return d;
}

/* Copies the request; MP_OK or MP_ERR_NOMEM (s then half-filled). */
static int
copy_request(agent_smtp_job *s, const agent_smtp_account *a, const char *from,
             const char *const *rcpts, size_t nrcpts, const char *mail, size_t len)
{
	int nomem = 0, rc;
	size_t i;

	s->host = dup_opt(a->host, &nomem);
	s->user = dup_opt(a->user, &nomem);
	s->password = a->user ? dup_opt(a->password, &nomem) : NULL;
	s->ca_file = dup_opt(a->ca_file && *a->ca_file ? a->ca_file : NULL, &nomem);
	s->helo = dup_opt(a->helo_name, &nomem);
	s->from = dup_opt(from, &nomem);
	if (!(s->rcpts = calloc(nrcpts, sizeof *s->rcpts)))
		return MP_ERR_NOMEM;
	s->nrcpts = nrcpts;
	for (i = 0; i < nrcpts; i++)
		s->rcpts[i] = dup_opt(rcpts[i], &nomem);
	if (nomem)
		return MP_ERR_NOMEM;
	for (i = 0; i < len; i++)
		if ((unsigned char)mail[i] >= 0x80)
			break;
	s->eightbit = i < len;
	rc = mp_smtp_dot_stuff(mail, len, 2 * (size_t)AGENT_SMTP_MAIL_MAX + 8, &s->data, &s->datalen);
	return rc;
}

int
agent_smtp_send(struct event_base *base, struct evdns_base *dns,
                const agent_smtp_account *acct, const char *from,
                const char *const *rcpts, size_t nrcpts, const char *mail, size_t len,
                agent_smtp_done_cb cb, void *arg, agent_smtp_job **job)
{
	agent_smtp_job *s;
	unsigned t;
	int rc;

	if (job)
		*job = NULL;
	if ((rc = check_args(base, acct, from, rcpts, nrcpts, mail, len, cb)) != MP_OK)
		return rc;
	if (!(s = calloc(1, sizeof *s)))
		return MP_ERR_NOMEM;
	s->base = base;
	s->dns = dns;
	s->cb = cb;
	s->arg = arg;
	s->port = acct->port;
	s->security = acct->security;
	s->insecure = acct->tls_insecure_skip_verify != 0;
	t = acct->timeout_s ? acct->timeout_s : AGENT_SMTP_DEFAULT_TIMEOUT;
	s->step_tv.tv_sec = (time_t)t;
	s->quit_tv.tv_sec = (time_t)(t < QUIT_TIMEOUT_MAX ? t : QUIT_TIMEOUT_MAX);
	s->total_tv.tv_sec = (time_t)t * (time_t)(8 + nrcpts);
	snprintf(s->id, sizeof s->id, "smtp-%u", ++job_counter);
	if ((rc = copy_request(s, acct, from, rcpts, nrcpts, mail, len)) != MP_OK)
		goto fail;
	rc = MP_ERR_NOMEM;
	if (!(s->parser = mp_smtp_parser_new()) ||
	    !(s->kick = event_new(base, -1, 0, on_kick, s)) ||
	    !(s->deadline = evtimer_new(base, on_deadline, s)))
		goto fail;
	event_active(s->kick, EV_TIMEOUT, 1);
	if (job)
		*job = s;
	return MP_OK;
fail:
	teardown(s);
	return rc;
}
