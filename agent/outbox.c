/*
 * outbox.c - the mails an agent sends, through the user's own
 * submission server (see agent.h).
 *
 * Each mail is one sealed block in an RFC 5322 message from the user's
 * address; a send completes through the caller's callback with the SMTP
 * client's status.  The session IDs of requests are remembered in the
 * agent state (and saved) before the mail leaves, so a reply that
 * arrives after a crash is still recognised.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/mail.h"
#include "smtp_client.h"

typedef struct pending_send {
	agent *a;
	agent_sent_cb cb;
	void *arg;
	char what[32];
} pending_send;

static void
smtp_done(agent_smtp_status st, const char *detail, void *arg)
{
	pending_send *p = arg;
	agent *a = p->a;

	if (st == AGENT_SMTP_OK)
		mp_log(MP_LOG_INFO, "%s handed to the submission server", p->what);
	else
		mp_log(MP_LOG_ERR, "%s not sent: %s: %s", p->what, agent_smtp_status_name(st), detail);
	a->pending_sends--;
	if (p->cb)
		p->cb(a, (int)st, detail, p->arg);
	free(p);
	agent_maybe_exit(a);
}

int
agent_exit_for_smtp(int status)
{
	switch (status) {
	case AGENT_SMTP_OK: return AGENT_EXIT_OK;
	case AGENT_SMTP_ERR_AUTH: return AGENT_EXIT_AUTH;
	case AGENT_SMTP_ERR_TLS: return AGENT_EXIT_TLS;
	default: return AGENT_EXIT_MAILSERVER;
	}
}

/* Seals m to to_pub, wraps it in a mail to rcpt, and submits it. */
static int
send_block(agent *a, const mp_msg *m, const uint8_t to_pub[MP_KEY_LEN], const char *rcpt,
           const char *what, agent_sent_cb cb, void *arg)
{
	const agent_settings *s = a->cfg;
	mp_block_key k = { .user = a->id };
	agent_smtp_account acct;
	mp_mail_draft d;
	mp_mail *mail = NULL;
	pending_send *p;
	char subject[128], *text = NULL;
	const char *rcpts[1] = { rcpt };
	uint8_t *blk = NULL;
	size_t blen, tlen;
	int rc;

	if ((rc = mp_block_seal(m, &k, to_pub, &blk, &blen)) != MP_OK)
		return rc;
	memset(&d, 0, sizeof d);
	snprintf(subject, sizeof subject, "%s %s", s->subject_marker, what);
	d.from = s->address;
	d.from_name = s->name;
	d.to = rcpt;
	d.subject = subject;
	/* no Auto-Submitted: the host answers requests, and RFC 3834 forbids
	 * automatic responders to answer mail marked auto-submitted */
	d.auto_kind = MP_AUTO_NONE;
	d.block = blk;
	d.block_len = blen;
	rc = mp_mail_compose(&d, &mail);
	free(blk);
	if (rc == MP_OK)
		rc = mp_mail_serialize(mail, &text, &tlen);
	mp_mail_free(mail);
	if (rc != MP_OK)
		return rc;
	if (!(p = calloc(1, sizeof *p))) {
		free(text);
		return MP_ERR_NOMEM;
	}
	p->a = a;
	p->cb = cb;
	p->arg = arg;
	snprintf(p->what, sizeof p->what, "%s", what);
	memset(&acct, 0, sizeof acct);
	acct.host = s->smtp_host;
	acct.port = (unsigned)s->smtp_port;
	acct.security = strcasecmp(s->smtp_security, "tls") == 0 ? AGENT_SMTP_TLS : AGENT_SMTP_STARTTLS;
	acct.user = s->mail_user;
	acct.password = s->password;
	acct.ca_file = s->ca_file;
	acct.tls_insecure_skip_verify = s->tls_insecure;
	rc = agent_smtp_send(a->base, NULL, &acct, s->address, rcpts, 1, text, tlen, smtp_done, p, NULL);
	free(text);
	if (rc != MP_OK)
		free(p);
	else
		a->pending_sends++;
	return rc;
}

int
agent_send_request(agent *a, agent_sent_cb cb, void *arg)
{
	size_t i;
	int rc = MP_OK;

	/* one REQUEST per host, each with its own session ID: the first
	 * valid reply wins (seed 001, second embodiment) */
	for (i = 0; i < a->cfg->nhosts && rc == MP_OK; i++) {
		const agent_host *h = &a->cfg->hosts[i];
		mp_msg *m = mp_msg_new(MP_MSG_REQUEST);

		if (!m)
			return MP_ERR_NOMEM;
		snprintf(m->u.request.reply_addr, sizeof m->u.request.reply_addr, "%s", a->cfg->address);
		snprintf(m->u.request.name, sizeof m->u.request.name, "%s", a->cfg->name ? a->cfg->name : "");
		m->u.request.ep = a->ep;
		agent_state_add_request(&a->state, m->session_id, m->timestamp, h->address);
		if (agent_state_save(a->cfg->state_dir, &a->state) != MP_OK)
			mp_log(MP_LOG_WARNING, "cannot save state in %s", a->cfg->state_dir);
		rc = send_block(a, m, h->key, h->address, "request", cb, arg);
		mp_msg_free(m);
	}
	return rc;
}

int
agent_send_signal(agent *a, const mp_pubid *to, const char *via_host, const char *direct_addr,
                  uint8_t kind, const uint8_t *payload, size_t payload_len, agent_sent_cb cb,
                  void *arg)
{
	mp_block_key k = { .user = a->id };
	mp_msg *sig = mp_msg_new(MP_MSG_SIGNAL), *relay = NULL;
	const agent_host *h = NULL;
	uint8_t *inner = NULL;
	size_t inner_len, i;
	int rc;

	if (!sig || payload_len > MP_SIGNAL_PAYLOAD_MAX) {
		mp_msg_free(sig);
		return sig ? MP_ERR_TOOBIG : MP_ERR_NOMEM;
	}
	sig->u.signal.kind = kind;
	sig->u.signal.ep = a->ep;
	memcpy(sig->u.signal.payload, payload, payload_len);
	sig->u.signal.payload_len = (uint16_t)payload_len;
	if (direct_addr) {
		/* direct mode (seed 002): the SIGNAL itself, to the friend */
		rc = send_block(a, sig, to->seal_pub, direct_addr, "signal", cb, arg);
		mp_msg_free(sig);
		return rc;
	}
	for (i = 0; i < a->cfg->nhosts && !h; i++)
		if (!strcasecmp(a->cfg->hosts[i].address, via_host))
			h = &a->cfg->hosts[i];
	if (!h) {
		mp_msg_free(sig);
		return MP_ERR_NOTFOUND;
	}
	/* through the host: sealed end to end, wrapped in a RELAY */
	rc = mp_block_seal(sig, &k, to->seal_pub, &inner, &inner_len);
	mp_msg_free(sig);
	if (rc != MP_OK)
		return rc;
	if (!(relay = mp_msg_new(MP_MSG_RELAY)) || inner_len > MP_RELAY_INNER_MAX) {
		free(inner);
		mp_msg_free(relay);
		return relay ? MP_ERR_TOOBIG : MP_ERR_NOMEM;
	}
	mp_pubid_uid(to, &relay->u.relay.target);
	memcpy(relay->u.relay.inner, inner, inner_len);
	relay->u.relay.inner_len = (uint16_t)inner_len;
	free(inner);
	rc = send_block(a, relay, h->key, h->address, "signal", cb, arg);
	mp_msg_free(relay);
	return rc;
}

int
agent_send_notice(agent *a, const char *host, const mp_uid *target, agent_sent_cb cb, void *arg)
{
	mp_msg *m = mp_msg_new(MP_MSG_FAILURE_NOTICE);
	size_t i;
	int rc = MP_ERR_NOTFOUND;

	if (!m)
		return MP_ERR_NOMEM;
	m->u.failure.target = *target;
	m->u.failure.reason = MP_FAIL_TIMEOUT;
	for (i = 0; i < a->cfg->nhosts; i++)
		if (!strcasecmp(a->cfg->hosts[i].address, host))
			rc = send_block(a, m, a->cfg->hosts[i].key, host, "failure notice", cb, arg);
	mp_msg_free(m);
	return rc;
}
