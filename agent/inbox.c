/*
 * inbox.c - the mails an agent receives (see agent.h).
 *
 * The mailbox watcher (IMAP IDLE or POP3) hands over every mail with the
 * subject marker.  A REPLY counts only if it opens with our identity,
 * comes from a configured host key, and echoes the session ID of a
 * request we still wait for (seed 001: a forged reply is rejected).  A
 * SIGNAL counts only if it opens and its signer is not denied; one that
 * arrives inside a RELAYED block sealed by a configured host comes from
 * a member, any other is a direct invitation (Friends only, main.c).  Counted
 * mails are consumed (deleted or moved); anything else is left alone.
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

const agent_host *
agent_host_by_key(const agent *a, const uint8_t key[MP_KEY_LEN])
{
	size_t i;

	for (i = 0; i < a->cfg->nhosts; i++)
		if (memcmp(a->cfg->hosts[i].key, key, MP_KEY_LEN) == 0)
			return &a->cfg->hosts[i];
	return NULL;
}

int
agent_exit_for_mailbox(int status)
{
	switch (status) {
	case AGENT_MAILBOX_ERR_AUTH: return AGENT_EXIT_AUTH;
	case AGENT_MAILBOX_ERR_TLS: return AGENT_EXIT_TLS;
	default: return AGENT_EXIT_MAILSERVER;
	}
}

static int
denied(const agent *a, const mp_pubid *who)
{
	mp_uid uid;
	size_t i;

	mp_pubid_uid(who, &uid);
	for (i = 0; i < a->cfg->ndeny; i++)
		if (mp_uid_equal(&uid, &a->cfg->deny[i]))
			return 1;
	return 0;
}

static agent_mail_verdict
handle_reply(agent *a, const mp_msg *m)
{
	const agent_host *h = agent_host_by_key(a, m->sender_host);

	if (!h) {
		mp_log(MP_LOG_WARNING, "reply sealed by an unknown host key: ignored");
		return AGENT_MAIL_KEEP;
	}
	if (!agent_state_take_request(&a->state, m->session_id)) {
		mp_log(MP_LOG_WARNING, "reply from %s matches no outstanding request "
		       "(forged, or answered already): ignored", h->address);
		return AGENT_MAIL_CONSUME;
	}
	agent_state_save(a->cfg->state_dir, &a->state);
	if (a->hooks.on_reply)
		a->hooks.on_reply(a, m, h->address);
	return AGENT_MAIL_CONSUME;
}

static agent_mail_verdict
on_mail(const char *raw, size_t len, void *arg)
{
	agent *a = arg;
	mp_mail_limits lim = { 0 };
	mp_block_key k = { .user = a->id };
	mp_parsed_mail pm;
	mp_msg *m = NULL;
	agent_mail_verdict v = AGENT_MAIL_KEEP;
	const char *from;
	int rc, direct;

	rc = mp_mail_parse(raw, len, &lim, &pm);
	if (rc != MP_OK || !pm.subject || !mp_mail_subject_has_marker(pm.subject, a->cfg->subject_marker)) {
		mp_parsed_mail_free(&pm);
		return AGENT_MAIL_KEEP;
	}
	from = pm.from ? pm.from : "";
	rc = mp_block_open(pm.block, pm.block_len, &k, &m);
	if (rc != MP_OK) {
		mp_log(MP_LOG_NOTICE, "mail %s: block not for us or damaged (%s): left alone",
		       pm.message_id ? pm.message_id : "(no id)", mp_strerror(rc));
		mp_parsed_mail_free(&pm);
		return AGENT_MAIL_KEEP;
	}
	direct = 1;
	if (m->type == MP_MSG_RELAYED) {
		/* A signal passed on by a host, sealed by that host: the host
		 * vouches that its sender is a member.  (A From header could be
		 * forged; the host's seal cannot.) */
		const agent_host *h = agent_host_by_key(a, m->sender_host);
		mp_msg *inner = NULL;

		if (!h || mp_block_open(m->u.relay.inner, m->u.relay.inner_len, &k, &inner) != MP_OK ||
		    inner->type != MP_MSG_SIGNAL) {
			mp_log(MP_LOG_NOTICE, "relayed signal from an unknown host or not for us: left alone");
			mp_msg_free(inner);
			mp_msg_free(m);
			mp_parsed_mail_free(&pm);
			return AGENT_MAIL_KEEP;
		}
		mp_msg_free(m);
		m = inner;
		direct = 0;
		from = h->address;
	}
	if (m->type == MP_MSG_REPLY) {
		v = handle_reply(a, m);
	} else if (m->type == MP_MSG_SIGNAL && !denied(a, &m->sender)) {
		if (a->hooks.on_signal)
			a->hooks.on_signal(a, m, from, direct);
		v = AGENT_MAIL_CONSUME;
	} else if (m->type == MP_MSG_SIGNAL) {
		mp_log(MP_LOG_NOTICE, "signal from a denied user: dropped");
		v = AGENT_MAIL_CONSUME;
	}
	mp_msg_free(m);
	mp_parsed_mail_free(&pm);
	return v;
}

static void
on_mailbox_error(int status, const char *detail, void *arg)
{
	agent *a = arg;

	if (status == AGENT_MAILBOX_WATCHING) {
		mp_log(MP_LOG_INFO, "mailbox: watching");
		return;
	}
	mp_log(MP_LOG_ERR, "mailbox: %s: %s", agent_mailbox_status_name(status), detail);
	/* Credentials and certificates do not fix themselves: give up.
	 * Network trouble is retried by the watcher. */
	if (status == AGENT_MAILBOX_ERR_AUTH || status == AGENT_MAILBOX_ERR_TLS) {
		agent_say(a, "mailbox: %s", detail);
		agent_finish(a, agent_exit_for_mailbox(status));
	}
}

int
agent_inbox_start(agent *a, char *err, size_t errlen)
{
	const agent_settings *s = a->cfg;
	agent_mailbox_account acct;
	int imap = strcasecmp(s->receive, "imap") == 0;
	int rc;

	memset(&acct, 0, sizeof acct);
	acct.kind = imap ? AGENT_MAILBOX_IMAP : AGENT_MAILBOX_POP3;
	acct.host = imap ? s->imap_host : s->pop3_host;
	acct.port = (unsigned)(imap ? s->imap_port : s->pop3_port);
	acct.starttls = imap && strcasecmp(s->imap_security, "starttls") == 0;
	acct.user = s->mail_user;
	acct.password = s->password;
	acct.ca_file = s->ca_file;
	acct.tls_insecure_skip_verify = s->tls_insecure;
	acct.folder = s->folder;
	acct.move_to = s->move_to;
	acct.subject_marker = s->subject_marker;
	acct.poll_interval_s = (unsigned)s->poll_interval;
	rc = agent_mailbox_start(a->base, &acct, on_mail, on_mailbox_error, a, &a->mailbox);
	if (rc != MP_OK)
		snprintf(err, errlen, "cannot watch the mailbox: %s", mp_strerror(rc));
	return rc;
}

void
agent_inbox_stop(agent *a)
{
	agent_mailbox_free(a->mailbox);
	a->mailbox = NULL;
}
