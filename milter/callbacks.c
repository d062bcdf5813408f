/*
 * callbacks.c - the libmilter callbacks: thin, as in OpenDKIM's filter.
 *
 * They collect the envelope, the headers and the body of mail addressed
 * to a rendezvous address, then hand it to mp_host_process() (lib/host.c)
 * and act on the outcome: the request becomes its reply (rewrite.c), or
 * a new mail goes out (inject.c), or it is passed on to a peer host
 * (representative.c), or it is simply consumed.  Ordinary mail
 * costs one string comparison per recipient: at DATA, a message with no
 * rendezvous recipient is accepted, so the MTA sends us neither its
 * headers nor its body.  (Accepting at RCPT would miss a rendezvous
 * address among later recipients.)
 *
 * Every log line about a message starts with its queue ID.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libmilter/mfapi.h>

#include "callbacks.h"
#include "inject.h"
#include "mailpunch/authres.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/mail.h"
#include "message.h"
#include "representative.h"
#include "rewrite.h"
#include "state.h"
#include "sync.h"

#define MAX_RCPTS 1000
#define MAX_HEADERS 1000        /* more: the reply is injected, not rewritten */

/* Per SMTP connection. */
typedef struct connection {
	char client_addr[64];
	unsigned long protocol;             /* negotiated SMFIP_* steps */
	unsigned long actions;              /* SMFIF_* modifications granted */
	milter_message *msg;
	int lost;       /* MAIL or RCPT could not be recorded: tempfail at DATA */
} connection;

static void
message_free(milter_message *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->nrdv; i++)
		free(m->rdv_rcpts[i]);
	free(m->rdv_rcpts);
	for (i = 0; i < m->nheaders; i++) {
		free(m->header_names[i]);
		free(m->header_values[i]);
	}
	free(m->header_names);
	free(m->header_values);
	free(m->content_type);
	free(m->cte);
	free(m->message_id);
	free(m->body);
	milter_snapshot_put(m->snap);
	free(m);
}

static connection *
conn_of(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

/* A callback negotiated as "no reply" must say SMFIS_NOREPLY. */
static sfsistat
next(SMFICTX *ctx, unsigned long noreply_flag)
{
	connection *c = conn_of(ctx);

	return c && (c->protocol & noreply_flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static void
strip_brackets(const char *in, char *out, size_t len)
{
	size_t n;

	while (*in == ' ')
		in++;
	if (*in == '<')
		in++;
	n = strcspn(in, ">");
	if (n >= len)
		n = len - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

static void
set_qid(SMFICTX *ctx, milter_message *m)
{
	const char *q = smfi_getsymval(ctx, "i");

	if (q && *q)
		snprintf(m->qid, sizeof m->qid, "%s", q);
}

static int
set_macro_lists(SMFICTX *ctx)
{
	if (smfi_setsymlist(ctx, SMFIM_CONNECT, "") != MI_SUCCESS ||
	    smfi_setsymlist(ctx, SMFIM_ENVFROM, "i") != MI_SUCCESS ||
	    smfi_setsymlist(ctx, SMFIM_ENVRCPT, "") != MI_SUCCESS ||
	    smfi_setsymlist(ctx, SMFIM_DATA, "i {client_addr} {mail_addr}") != MI_SUCCESS ||
	    smfi_setsymlist(ctx, SMFIM_EOH, "") != MI_SUCCESS ||
	    smfi_setsymlist(ctx, SMFIM_EOM, "i") != MI_SUCCESS)
		return MI_FAILURE;
	return MI_SUCCESS;
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
             unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
             unsigned long *pf3)
{
	/* Steps we never need, and callbacks whose reply we never vary. */
	unsigned long want = SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NOEOH | SMFIP_NR_HDR |
	                     SMFIP_NR_BODY | SMFIP_NR_CONN | SMFIP_NR_MAIL | SMFIP_NR_RCPT;
	connection *c = calloc(1, sizeof *c);

	if (!c)
		return SMFIS_TEMPFAIL;
	*pf0 = f0 & (SMFIF_DELRCPT | SMFIF_ADDRCPT | MILTER_REWRITE_ACTIONS | SMFIF_SETSYMLIST);
	/* The queue ID, the client's address and the sender are the only
	 * macros we read.  Asking for just those spares the MTA formatting,
	 * and libmilter parsing, the default lists for every message; and
	 * with the address and the sender arriving as macros, the connect
	 * and MAIL steps can go (each is a packet, and libmilter hands every
	 * packet from its poller to a worker thread). */
	if ((*pf0 & SMFIF_SETSYMLIST) && set_macro_lists(ctx) == MI_SUCCESS)
		want |= SMFIP_NOCONNECT | SMFIP_NOMAIL;
	else
		*pf0 &= ~(unsigned long)SMFIF_SETSYMLIST;
	*pf1 = f1 & want;
	*pf2 = 0;
	*pf3 = 0;
	c->protocol = *pf1;
	c->actions = *pf0;
	smfi_setpriv(ctx, c);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	connection *c = conn_of(ctx);

	if (!c) {
		/* MTA without negotiation (old Sendmail): allocate here */
		c = calloc(1, sizeof *c);
		if (!c)
			return SMFIS_TEMPFAIL;
		smfi_setpriv(ctx, c);
	}
	c->client_addr[0] = '\0';
	/* from the socket address: {client_addr} is not a default macro */
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, c->client_addr,
		          sizeof c->client_addr);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, c->client_addr,
		          sizeof c->client_addr);
	return next(ctx, SMFIP_NR_CONN);
}

/* Sendmail writes IPv6 addresses in macros as "IPv6:addr". */
static void
client_addr_from_macro(SMFICTX *ctx, connection *c)
{
	const char *a = smfi_getsymval(ctx, "{client_addr}");

	if (a && strncasecmp(a, "IPv6:", 5) == 0)
		a += 5;
	snprintf(c->client_addr, sizeof c->client_addr, "%s", a ? a : "");
}

/*
 * A new transaction: at MAIL, or at its first RCPT when the MTA skips
 * the MAIL step for us (then the sender comes as a macro at DATA).
 * MAIL and RCPT are negotiated "no reply" (one round trip less per
 * command for every mail): a failure here is remembered and answered at
 * DATA, before anything is accepted.
 */
static milter_message *
message_begin(SMFICTX *ctx, connection *c)
{
	milter_message *m;

	message_free(c->msg);
	c->lost = 0;
	c->msg = m = calloc(1, sizeof *m);
	if (!m) {
		c->lost = 1;
		return NULL;
	}
	m->snap = milter_snapshot_get();
	strcpy(m->qid, "NOQUEUE");
	set_qid(ctx, m);
	return m;
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	connection *c = conn_of(ctx);
	milter_message *m;

	if (!c)
		return SMFIS_TEMPFAIL;
	if ((m = message_begin(ctx, c)))
		strip_brackets(argv[0] ? argv[0] : "", m->env_from, sizeof m->env_from);
	return next(ctx, SMFIP_NR_MAIL);
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	connection *c = conn_of(ctx);
	milter_message *m = c ? c->msg : NULL;
	char addr[MP_ADDR_MAX + 1];
	char **grown;

	if (c && !m && (c->protocol & SMFIP_NOMAIL))
		m = message_begin(ctx, c);
	if (!m || !m->snap)
		return next(ctx, SMFIP_NR_RCPT);
	m->nrcpts++;
	strip_brackets(argv[0] ? argv[0] : "", addr, sizeof addr);
	if (!mp_host_is_rendezvous(&m->snap->hc, addr)) {
		size_t p;

		/* Another host of ours gets this mail too (seed 001: one request
		 * carrying several hosts' addresses): only configured peers are
		 * recognised as such; any other address is just a recipient. */
		for (p = 0; p < m->snap->hc.npeers; p++)
			if (strcasecmp(addr, m->snap->peers[p].addr) == 0)
				m->peer_rcpts |= UINT64_C(1) << p;
		return next(ctx, SMFIP_NR_RCPT);
	}
	if (m->nrdv >= MAX_RCPTS)
		return next(ctx, SMFIP_NR_RCPT);
	grown = realloc(m->rdv_rcpts, (m->nrdv + 1) * sizeof *grown);
	if (!grown) {
		c->lost = 1;
		return next(ctx, SMFIP_NR_RCPT);
	}
	m->rdv_rcpts = grown;
	/* smfi_delrcpt wants the recipient exactly as the MTA gave it */
	if (!(m->rdv_rcpts[m->nrdv] = strdup(argv[0]))) {
		c->lost = 1;
		return next(ctx, SMFIP_NR_RCPT);
	}
	if (m->nrdv++ == 0)
		snprintf(m->rendezvous, sizeof m->rendezvous, "%s", addr);
	return next(ctx, SMFIP_NR_RCPT);
}

static sfsistat
cb_data(SMFICTX *ctx)
{
	connection *c = conn_of(ctx);
	milter_message *m = c ? c->msg : NULL;

	if (!c)
		return SMFIS_TEMPFAIL;
	if (c->lost || !m || m->nrdv == 0) {
		/* this transaction is decided: the next starts afresh */
		sfsistat r = c->lost ? SMFIS_TEMPFAIL    /* a request may be among what we lost */
		                     : SMFIS_ACCEPT;     /* ordinary mail: no headers, no body */

		message_free(m);
		c->msg = NULL;
		c->lost = 0;
		return r;
	}
	/* Rendezvous mail: now the macros for what the skipped steps gave. */
	set_qid(ctx, m);
	if (c->protocol & SMFIP_NOCONNECT)
		client_addr_from_macro(ctx, c);
	if (c->protocol & SMFIP_NOMAIL) {
		const char *from = smfi_getsymval(ctx, "{mail_addr}");

		strip_brackets(from ? from : "", m->env_from, sizeof m->env_from);
	}
	return SMFIS_CONTINUE;
}

static void
keep_header(char **slot, const char *value)
{
	if (!*slot)
		*slot = strdup(value);
}

/* Every header, in order: a rewrite replaces them all.  If one cannot
 * be kept (too many, more bytes than MaxMessageSize allows the body, no
 * memory), the reply is injected instead. */
static void
remember_header(milter_message *m, const char *name, const char *value)
{
	size_t want = m->nheaders + 1;
	char **grown;

	if (m->headers_incomplete)
		return;
	m->header_bytes += strlen(name) + strlen(value);
	if (m->nheaders == MAX_HEADERS ||
	    m->header_bytes > (size_t)m->snap->settings->max_message_size)
		goto incomplete;
	if (!(grown = realloc(m->header_names, want * sizeof *grown)))
		goto incomplete;
	m->header_names = grown;
	if (!(grown = realloc(m->header_values, want * sizeof *grown)))
		goto incomplete;
	m->header_values = grown;
	if (!(m->header_names[m->nheaders] = strdup(name)))
		goto incomplete;
	if (!(m->header_values[m->nheaders] = strdup(value))) {
		free(m->header_names[m->nheaders]);
		goto incomplete;
	}
	m->nheaders++;
	return;
incomplete:
	m->headers_incomplete = 1;
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	connection *c = conn_of(ctx);
	milter_message *m = c ? c->msg : NULL;

	if (!m || m->nrdv == 0)
		return next(ctx, SMFIP_NR_HDR);
	remember_header(m, name, value);
	if (!strcasecmp(name, "Content-Type"))
		keep_header(&m->content_type, value);
	else if (!strcasecmp(name, "Content-Transfer-Encoding"))
		keep_header(&m->cte, value);
	else if (!strcasecmp(name, "Message-ID"))
		keep_header(&m->message_id, value);
	else if (!strcasecmp(name, "Authentication-Results") && m->snap->settings->authserv_id &&
	         mp_authres_passes(value, m->snap->settings->authserv_id,
	                           strchr(m->env_from, '@') ? strchr(m->env_from, '@') + 1 : ""))
		m->auth_pass = 1;
	if (mp_mail_header_is_auto(name, value))
		m->is_auto = 1;
	return next(ctx, SMFIP_NR_HDR);
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	connection *c = conn_of(ctx);
	milter_message *m = c ? c->msg : NULL;
	size_t limit;

	if (!m || m->nrdv == 0 || m->too_big)
		return next(ctx, SMFIP_NR_BODY);
	limit = (size_t)m->snap->settings->max_message_size;
	if (len > limit - m->body_len) {
		/* Rejected at end of message; stop collecting now. */
		m->too_big = 1;
		return next(ctx, SMFIP_NR_BODY);
	}
	if (m->body_len + len > m->body_cap) {
		size_t cap = m->body_cap ? m->body_cap : 16384;
		char *grown;

		while (cap < m->body_len + len)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		if (!(grown = realloc(m->body, cap)))
			return SMFIS_TEMPFAIL;
		m->body = grown;
		m->body_cap = cap;
	}
	memcpy(m->body + m->body_len, chunk, len);
	m->body_len += len;
	return next(ctx, SMFIP_NR_BODY);
}

static sfsistat
tempfail(SMFICTX *ctx, const milter_message *m, const char *why)
{
	mp_log_id(MP_LOG_ERR, m->qid, "temporary failure: %s", why);
	smfi_setreply(ctx, "451", "4.3.0", "mailpunch: temporary failure, try again later");
	return SMFIS_TEMPFAIL;
}

/* The request is answered: take the rendezvous recipients off it, or
 * drop it if nobody else was addressed. */
static sfsistat
finish_request(SMFICTX *ctx, milter_message *m)
{
	size_t i;

	if (m->nrdv >= m->nrcpts)
		return SMFIS_DISCARD;
	for (i = 0; i < m->nrdv; i++)
		if (smfi_delrcpt(ctx, m->rdv_rcpts[i]) != MI_SUCCESS)
			return tempfail(ctx, m, "cannot remove the rendezvous recipient");
	return SMFIS_ACCEPT;
}

/*
 * A reply to a request addressed to us alone becomes the request itself
 * (rewrite.h says why).  Signals are injected: the trace headers the MTA
 * keeps would tell the target about the sender's mail path.  So are
 * replies to requests with other recipients, who must still get the
 * request, and everything when the MTA did not grant the changes.
 */
static int
rewrite_allowed(const connection *c, const milter_message *m, const mp_host_outcome *out)
{
	return m->snap->settings->rewrite_replies && out->msg_type == MP_MSG_REQUEST &&
	       out->parts && m->nrdv >= m->nrcpts && !m->headers_incomplete &&
	       milter_rewrite_granted(c->actions);
}

static sfsistat
process(SMFICTX *ctx, connection *c, milter_message *m)
{
	const milter_settings *s;
	mp_host_outcome out;
	mp_host_input in;
	char err[256];
	int rc;

	set_qid(ctx, m);
	s = m->snap->settings;
	if (s->representative && !m->too_big && milter_forward_to_peer(ctx, m))
		return SMFIS_ACCEPT;
	if (m->too_big) {
		mp_table_count(milter.table, MP_STAT_DROP_TOOBIG, 1);
		mp_log_id(MP_LOG_NOTICE, m->qid, "rendezvous mail from <%s> over MaxMessageSize, rejected",
		          m->env_from);
		smfi_setreply(ctx, "552", "5.3.4", "mailpunch: request too large");
		return SMFIS_REJECT;
	}
	memset(&in, 0, sizeof in);
	in.id = m->qid;
	in.client_addr = c->client_addr[0] ? c->client_addr : NULL;
	in.env_from = m->env_from;
	in.rcpt = m->rendezvous;
	in.is_auto = m->is_auto;
	in.auth_pass = m->auth_pass;
	in.content_type = m->content_type;
	in.cte = m->cte;
	in.message_id = m->message_id;
	in.body = m->body ? m->body : "";
	in.body_len = m->body_len;
	in.now = (uint64_t)time(NULL);

	if (m->env_from[0] == '\0' && m->snap->hc.npeers && m->body &&
	    milter_sync_bounce(m->snap, m->body, m->body_len, (uint64_t)time(NULL)) > 0)
		mp_log_id(MP_LOG_INFO, m->qid, "bounce of mail to a peer host");
	if (m->peer_rcpts)
		mp_log_id(MP_LOG_DEBUG, m->qid, "also addressed to peer host(s): mask %#llx",
		          (unsigned long long)m->peer_rcpts);
	rc = mp_host_process(milter.host, &m->snap->hc, &in, &out);
	if (rc != MP_OK)
		return tempfail(ctx, m, mp_strerror(rc));
	if (out.action == MP_HOST_DROP) {
		if (out.sync_peer >= 0 && out.sync_want_full)
			milter_sync_request_full(out.sync_peer);
		mp_log_id(out.stat == MP_STAT_NOTICES || out.stat == MP_STAT_SYNCS ? MP_LOG_INFO
		                                                                   : MP_LOG_NOTICE,
		          m->qid, "%s (from <%s>)%s", out.detail, m->env_from,
		          out.stat == MP_STAT_SYNCS ? "" : ": no answer");
		return finish_request(ctx, m);
	}
	if (rewrite_allowed(c, m, &out)) {
		const char *step;

		rc = milter_rewrite(ctx, out.from, out.to, out.parts, m->header_names,
		                    m->header_values, m->nheaders, m->rdv_rcpts, m->nrdv, &step);
		if (rc != MP_OK) {
			if (rc == MP_ERR_IO)
				snprintf(err, sizeof err, "the MTA refused to %s", step);
			else
				snprintf(err, sizeof err, "rewriting the request: %s", mp_strerror(rc));
			mp_host_cancel(milter.host, &out);
			mp_host_outcome_free(&out);
			return tempfail(ctx, m, err);
		}
		mp_table_count(milter.table, out.stat, 1);
		mp_log_id(MP_LOG_INFO, m->qid, "%s (the request became the reply)", out.detail);
		mp_host_outcome_free(&out);
		return SMFIS_ACCEPT;
	}
	rc = milter_send(s, out.from, out.to, out.mail, out.mail_len, err, sizeof err);
	if (rc != MP_OK) {
		mp_host_cancel(milter.host, &out);
		mp_host_outcome_free(&out);
		return tempfail(ctx, m, err);
	}
	mp_table_count(milter.table, out.stat, 1);
	/* the member's address stays out of the log: the ID says who */
	mp_log_id(MP_LOG_INFO, m->qid, "%s", out.detail);
	mp_host_outcome_free(&out);
	return finish_request(ctx, m);
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	connection *c = conn_of(ctx);
	sfsistat r;

	if (!c || !c->msg || c->msg->nrdv == 0)
		return SMFIS_CONTINUE;
	r = process(ctx, c, c->msg);
	/* the body can be large: do not keep it until the next milter_message */
	message_free(c->msg);
	c->msg = NULL;
	return r;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	connection *c = conn_of(ctx);

	if (c) {
		message_free(c->msg);
		c->msg = NULL;
		c->lost = 0;
	}
	return SMFIS_CONTINUE;
}

static sfsistat
cb_close(SMFICTX *ctx)
{
	connection *c = conn_of(ctx);

	if (c) {
		message_free(c->msg);
		free(c);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

struct smfiDesc milter_desc = {
	.xxfi_name = (char *)"mailpunch-milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_DELRCPT | SMFIF_ADDRCPT | MILTER_REWRITE_ACTIONS,
	.xxfi_connect = cb_connect,
	.xxfi_envfrom = cb_envfrom,
	.xxfi_envrcpt = cb_envrcpt,
	.xxfi_header = cb_header,
	.xxfi_body = cb_body,
	.xxfi_eom = cb_eom,
	.xxfi_abort = cb_abort,
	.xxfi_close = cb_close,
	.xxfi_data = cb_data,
	.xxfi_negotiate = cb_negotiate,
};
