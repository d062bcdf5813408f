/*
 * host.c - the host role for one mail (see host.h).
 *
 * Order of checks for a mail to a rendezvous address, cheapest and most
 * telling first: auto-mail (never answered: no loops, no backscatter),
 * client rate, block found and opened, freshness and replay, then the
 * type's own rules.  Every refusal is an outcome with a counter, never
 * an error return: only local trouble (memory, table backend) is.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailpunch/block.h"
#include "mailpunch/error.h"
#include "mailpunch/host.h"
#include "mailpunch/mail.h"
#include "mailpunch/ratelimit.h"
#include "mailpunch/replay.h"
#include "seal.h"

#define RATE_SLOTS 4096

struct mp_host {
	mp_table *table;
	pthread_mutex_t replay_lock;
	mp_replay *replay;
	mp_ratelimit *per_address;
	mp_ratelimit *per_client;
};

int
mp_host_new(mp_table *table, const mp_host_limits *lim, mp_host **out)
{
	mp_host *h = calloc(1, sizeof *h);

	if (!h)
		return MP_ERR_NOMEM;
	h->table = table;
	h->replay = mp_replay_new(lim->replay_capacity ? lim->replay_capacity : 100000);
	h->per_address = mp_ratelimit_new(RATE_SLOTS, lim->per_address_burst, lim->per_address_period);
	h->per_client = mp_ratelimit_new(RATE_SLOTS, lim->per_client_burst, lim->per_client_period);
	if (!h->replay || !h->per_address || !h->per_client ||
	    pthread_mutex_init(&h->replay_lock, NULL) != 0) {
		mp_replay_free(h->replay);
		mp_ratelimit_free(h->per_address);
		mp_ratelimit_free(h->per_client);
		free(h);
		return MP_ERR_NOMEM;
	}
	*out = h;
	return MP_OK;
}

void
mp_host_free(mp_host *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->replay_lock);
	mp_replay_free(h->replay);
	mp_ratelimit_free(h->per_address);
	mp_ratelimit_free(h->per_client);
	free(h);
}

int
mp_host_is_rendezvous(const mp_host_config *cfg, const char *addr)
{
	return mp_strlist_contains(cfg->rendezvous, addr);
}

void
mp_host_outcome_free(mp_host_outcome *out)
{
	free(out->mail);
	out->mail = NULL;
	mp_mail_free(out->parts);
	out->parts = NULL;
}

static int drop(mp_host_outcome *out, mp_stat stat, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records why a mail gets no answer; always MP_OK (it is not an error). */
static int
drop(mp_host_outcome *out, mp_stat stat, const char *fmt, ...)
{
	va_list ap;

	out->action = MP_HOST_DROP;
	out->stat = stat;
	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof out->detail, fmt, ap);
	va_end(ap);
	return MP_OK;
}

static void
uid_text(const mp_uid *uid, char *buf)
{
	mp_uid_format(uid, buf);
}

/* Builds the outgoing mail carrying blk, from the rendezvous address. */
static int
compose(const mp_host_config *cfg, const mp_host_input *in, const char *to,
        const char *what, const uint8_t *blk, size_t blk_len, mp_host_outcome *out)
{
	char subject[128];
	mp_mail_draft d;
	mp_mail *mail;
	int rc;

	memset(&d, 0, sizeof d);
	snprintf(subject, sizeof subject, "%s %s", cfg->subject_marker, what);
	d.from = in->rcpt;
	d.to = to;
	d.subject = subject;
	d.in_reply_to = in->message_id && in->message_id[0] == '<' ? in->message_id : NULL;
	d.auto_kind = MP_AUTO_REPLIED;
	d.block = blk;
	d.block_len = blk_len;
	if ((rc = mp_mail_compose(&d, &mail)) != MP_OK)
		return rc;
	rc = mp_mail_serialize(mail, &out->mail, &out->mail_len);
	if (rc != MP_OK) {
		mp_mail_free(mail);
		return rc;
	}
	out->parts = mail;
	out->action = MP_HOST_SEND;
	snprintf(out->from, sizeof out->from, "%s", in->rcpt);
	snprintf(out->to, sizeof out->to, "%s", to);
	return MP_OK;
}

static int
sender_matches(const mp_host_config *cfg, const mp_host_input *in, const char *addr)
{
	if (cfg->require_auth_pass && !in->auth_pass)
		return 0;
	return !cfg->require_sender_match || strcasecmp(in->env_from, addr) == 0;
}

static void
entry_from_request(const mp_msg *m, uint64_t now, mp_table_entry *e)
{
	memset(e, 0, sizeof *e);
	e->id = m->sender;
	mp_pubid_uid(&m->sender, &e->uid);
	memcpy(e->name, m->u.request.name, sizeof e->name);
	memcpy(e->reply_addr, m->u.request.reply_addr, sizeof e->reply_addr);
	e->ep = m->u.request.ep;
	if (e->ep.ncand > MP_TABLE_CAND)
		e->ep.ncand = MP_TABLE_CAND;
	/* the host's clock, not the sender's, orders and expires entries */
	e->time = now;
}

static int
handle_request(mp_host *h, const mp_host_config *cfg, const mp_host_input *in,
               const mp_msg *m, mp_host_outcome *out)
{
	mp_table_entry me, *peers = NULL;
	mp_msg *reply = NULL;
	mp_block_key from = { .host = cfg->key };
	char uid[MP_UID_TEXT_LEN + 1];
	uint8_t *blk = NULL;
	size_t n = 0, i, blk_len;
	int rc, was_new;

	entry_from_request(m, in->now, &me);
	uid_text(&me.uid, uid);
	/* The reply goes where the authenticated block says, which must be
	 * the envelope sender, and never to ourselves (no loops). */
	if (!sender_matches(cfg, in, me.reply_addr))
		return drop(out, MP_STAT_DROP_SENDER, "reply address of %s %s", uid,
		            cfg->require_auth_pass && !in->auth_pass ? "not vouched for by SPF/DKIM"
		                                                     : "differs from envelope sender");
	if (mp_host_is_rendezvous(cfg, me.reply_addr))
		return drop(out, MP_STAT_DROP_SENDER, "reply address of %s is a rendezvous address", uid);
	if (mp_ratelimit_take(h->per_address, me.reply_addr, in->now) != MP_OK)
		return drop(out, MP_STAT_RATELIMITED, "replies to %s rate-limited", uid);

	rc = mp_table_upsert(h->table, &me, &was_new);
	if (rc == MP_ERR_CONFLICT)
		return drop(out, MP_STAT_DROP_CONFLICT, "user %s bound to another key", uid);
	if (rc != MP_OK)
		return rc;
	mp_table_count(h->table, MP_STAT_REQUESTS, 1);

	n = cfg->peers_per_reply > MP_REPLY_MAX_PEERS ? MP_REPLY_MAX_PEERS : cfg->peers_per_reply;
	peers = calloc(n ? n : 1, sizeof *peers);
	reply = mp_msg_new(MP_MSG_REPLY);
	if (!peers || !reply) {
		rc = MP_ERR_NOMEM;
		goto out;
	}
	if ((rc = mp_table_select(h->table, &me.uid, in->now, cfg->max_age, peers, n, &n)) != MP_OK)
		goto out;
	/* A reply echoes the request's session ID: the requester's proof
	 * that this answers its own request (seed 001). */
	memcpy(reply->session_id, m->session_id, MP_SESSION_ID_LEN);
	reply->timestamp = in->now;
	reply->u.reply.npeers = (uint8_t)n;
	for (i = 0; i < n; i++) {
		mp_peer *p = &reply->u.reply.peers[i];

		p->id = peers[i].id;
		memcpy(p->name, peers[i].name, sizeof p->name);
		p->ep = peers[i].ep;
		p->age = (uint32_t)(in->now > peers[i].time ? in->now - peers[i].time : 0);
		p->flags = peers[i].flags;
	}
	if ((rc = mp_block_seal(reply, &from, m->sender.seal_pub, &blk, &blk_len)) != MP_OK)
		goto out;
	if ((rc = compose(cfg, in, me.reply_addr, "reply", blk, blk_len, out)) != MP_OK)
		goto out;
	out->stat = MP_STAT_REPLIES;
	snprintf(out->detail, sizeof out->detail, "request from %s (%s), reply with %zu peer%s",
	         uid, was_new ? "new" : "known", n, n == 1 ? "" : "s");
out:
	free(peers);
	mp_msg_free(reply);
	free(blk);
	return rc;
}

/* Notices and relays come from members only: the sender must be in the
 * table, reachable at the envelope sender. */
static int
check_member(mp_host *h, const mp_host_config *cfg, const mp_host_input *in, const mp_msg *m,
             mp_host_outcome *out, int *ok)
{
	mp_table_entry e;
	mp_uid uid;
	char text[MP_UID_TEXT_LEN + 1];
	int rc;

	*ok = 0;
	mp_pubid_uid(&m->sender, &uid);
	uid_text(&uid, text);
	rc = mp_table_get(h->table, &uid, &e);
	if (rc == MP_ERR_NOTFOUND)
		return drop(out, MP_STAT_DROP_UNKNOWN, "sender %s is not a member", text);
	if (rc != MP_OK)
		return rc;
	if (memcmp(&e.id, &m->sender, sizeof e.id) != 0)
		return drop(out, MP_STAT_DROP_CONFLICT, "sender %s bound to another key", text);
	if (!sender_matches(cfg, in, e.reply_addr))
		return drop(out, MP_STAT_DROP_SENDER, "envelope sender is not member %s's address", text);
	*ok = 1;
	return MP_OK;
}

static int
handle_notice(mp_host *h, const mp_host_config *cfg, const mp_host_input *in,
              const mp_msg *m, mp_host_outcome *out)
{
	char target[MP_UID_TEXT_LEN + 1];
	int ok, rc = check_member(h, cfg, in, m, out, &ok);

	if (rc != MP_OK || !ok)
		return rc;
	uid_text(&m->u.failure.target, target);
	rc = mp_table_set_flags(h->table, &m->u.failure.target, MP_PEER_FAILED, 0);
	if (rc == MP_ERR_NOTFOUND)
		return drop(out, MP_STAT_DROP_UNKNOWN, "failure notice for unknown user %s", target);
	if (rc != MP_OK)
		return rc;
	return drop(out, MP_STAT_NOTICES, "failure notice: %s flagged", target);
}

static int
handle_relay(mp_host *h, const mp_host_config *cfg, const mp_host_input *in,
             const mp_msg *m, mp_host_outcome *out)
{
	const mp_relay *r = &m->u.relay;
	char target[MP_UID_TEXT_LEN + 1];
	mp_block_header hdr;
	mp_table_entry e;
	uint8_t kid[8];
	int ok, rc = check_member(h, cfg, in, m, out, &ok);

	if (rc != MP_OK || !ok)
		return rc;
	uid_text(&r->target, target);
	rc = mp_table_get(h->table, &r->target, &e);
	if (rc == MP_ERR_NOTFOUND)
		return drop(out, MP_STAT_DROP_UNKNOWN, "signal for unknown user %s", target);
	if (rc != MP_OK)
		return rc;
	/* Only pass on what the target can open: a SIGNAL sealed to its key.
	 * (We cannot read it; that is the point.) */
	mp_key_id(e.id.seal_pub, kid);
	if (mp_block_peek(r->inner, r->inner_len, &hdr) != MP_OK || hdr.type != MP_MSG_SIGNAL ||
	    memcmp(hdr.recipient_id, kid, sizeof kid) != 0)
		return drop(out, MP_STAT_DROP_BADBLOCK, "relay to %s does not carry a signal for it", target);
	if (mp_ratelimit_take(h->per_address, e.reply_addr, in->now) != MP_OK)
		return drop(out, MP_STAT_RATELIMITED, "signals to %s rate-limited", target);
	/* Wrapped in a RELAYED block sealed by us to the target: the target
	 * then knows the signal came through its host, from a member. */
	{
		mp_block_key me = { .host = cfg->key };
		mp_msg *fwd = mp_msg_new(MP_MSG_RELAYED);
		uint8_t *blk = NULL;
		size_t blk_len;

		if (!fwd)
			return MP_ERR_NOMEM;
		fwd->timestamp = in->now;
		memcpy(fwd->u.relay.inner, r->inner, r->inner_len);
		fwd->u.relay.inner_len = r->inner_len;
		rc = mp_block_seal(fwd, &me, e.id.seal_pub, &blk, &blk_len);
		mp_msg_free(fwd);
		if (rc == MP_OK)
			rc = compose(cfg, in, e.reply_addr, "signal", blk, blk_len, out);
		free(blk);
		if (rc != MP_OK)
			return rc;
	}
	out->stat = MP_STAT_SIGNALS;
	snprintf(out->detail, sizeof out->detail, "signal relayed to %s", target);
	return MP_OK;
}

/* Only from a configured peer host; the seal proves the sender's key. */
static int
handle_sync(mp_host *h, const mp_host_config *cfg, const mp_host_input *in,
            const mp_msg *m, mp_host_outcome *out)
{
	mp_sync_result r;
	int p, rc;

	if (m->sender_kind != MP_SENDER_HOST ||
	    (p = mp_host_peer_find(cfg->peers, cfg->npeers, m->sender_host)) < 0)
		return drop(out, MP_STAT_DROP_BADBLOCK, "table sync from a host that is not a peer");
	rc = mp_hostsync_merge(h->table, &m->u.sync, in->now, cfg->max_age, cfg->max_future, &r);
	if (rc != MP_OK)
		return rc;
	mp_table_count(h->table, MP_STAT_SYNC_MERGED, r.merged);
	out->sync_peer = p;
	out->sync_want_full = m->u.sync.want_full;
	return drop(out, MP_STAT_SYNCS,
	            "table sync from peer %s: %u entr%s, %zu merged, %zu not newer, %zu stale, "
	            "%zu identity conflicts, %zu invalid%s",
	            cfg->peers[p].addr, (unsigned)m->u.sync.nentries,
	            m->u.sync.nentries == 1 ? "y" : "ies", r.merged, r.older, r.stale,
	            r.conflicts, r.invalid, m->u.sync.want_full ? ", asks for our table" : "");
}

static mp_stat
stat_for_open_error(int rc)
{
	switch (rc) {
	case MP_ERR_TOOBIG: return MP_STAT_DROP_TOOBIG;
	case MP_ERR_NOBLOCK: return MP_STAT_DROP_NOBLOCK;
	default: return MP_STAT_DROP_BADBLOCK;
	}
}

static int
check_fresh(mp_host *h, const mp_host_config *cfg, const mp_host_input *in, const mp_msg *m,
            mp_host_outcome *out, int *ok)
{
	int rc;

	*ok = 0;
	rc = mp_check_time(m->timestamp, in->now, cfg->max_age, cfg->max_future);
	if (rc != MP_OK)
		return drop(out, MP_STAT_DROP_STALE, "%s", mp_strerror(rc));
	pthread_mutex_lock(&h->replay_lock);
	rc = mp_replay_check(h->replay, m->session_id, m->timestamp);
	pthread_mutex_unlock(&h->replay_lock);
	if (rc != MP_OK)
		return drop(out, MP_STAT_DROP_REPLAY, "%s", mp_strerror(rc));
	memcpy(out->session_id, m->session_id, MP_SESSION_ID_LEN);
	out->replay_recorded = 1;
	*ok = 1;
	return MP_OK;
}

void
mp_host_cancel(mp_host *h, mp_host_outcome *out)
{
	if (!out->replay_recorded)
		return;
	pthread_mutex_lock(&h->replay_lock);
	mp_replay_forget(h->replay, out->session_id);
	pthread_mutex_unlock(&h->replay_lock);
	out->replay_recorded = 0;
}

static int
process(mp_host *h, const mp_host_config *cfg, const mp_host_input *in, mp_host_outcome *out)
{
	mp_mail_limits lim = { .max_size = cfg->max_message_size };
	mp_block_key me = { .host = cfg->key };
	uint8_t *blk = NULL;
	size_t blk_len;
	mp_msg *m = NULL;
	int rc, ok;

	memset(out, 0, sizeof *out);
	out->sync_peer = -1;
	if (in->is_auto || in->env_from[0] == '\0')
		return drop(out, MP_STAT_DROP_AUTO, "auto-submitted, list or bounce mail");
	if (in->client_addr && mp_ratelimit_take(h->per_client, in->client_addr, in->now) != MP_OK)
		return drop(out, MP_STAT_RATELIMITED, "client %s rate-limited", in->client_addr);
	rc = mp_mail_find_block(in->content_type, in->cte, in->body, in->body_len, &lim, &blk, &blk_len);
	if (rc == MP_ERR_NOMEM)
		return rc;
	if (rc != MP_OK)
		return drop(out, stat_for_open_error(rc), "no usable block: %s", mp_strerror(rc));
	rc = mp_block_open(blk, blk_len, &me, &m);
	free(blk);
	if (rc == MP_ERR_NOMEM || rc == MP_ERR_CRYPTO)
		return rc;
	if (rc != MP_OK)
		return drop(out, MP_STAT_DROP_BADBLOCK, "block rejected: %s", mp_strerror(rc));
	out->msg_type = m->type;
	if ((rc = check_fresh(h, cfg, in, m, out, &ok)) != MP_OK || !ok)
		goto out;
	switch (m->type) {
	case MP_MSG_REQUEST:
		rc = handle_request(h, cfg, in, m, out);
		break;
	case MP_MSG_FAILURE_NOTICE:
		rc = handle_notice(h, cfg, in, m, out);
		break;
	case MP_MSG_RELAY:
		rc = handle_relay(h, cfg, in, m, out);
		break;
	case MP_MSG_TABLE_SYNC:
		rc = handle_sync(h, cfg, in, m, out);
		break;
	default:
		/* a SIGNAL or host block sealed to us makes no sense here */
		rc = drop(out, MP_STAT_DROP_BADBLOCK, "unexpected %s block", mp_msg_type_name(m->type));
	}
out:
	mp_msg_free(m);
	return rc;
}

int
mp_host_process(mp_host *h, const mp_host_config *cfg, const mp_host_input *in,
                mp_host_outcome *out)
{
	int rc = process(h, cfg, in, out);

	/* A local failure (table backend away, memory) tempfails the mail:
	 * its retry must not be refused as a replay. */
	if (rc != MP_OK)
		mp_host_cancel(h, out);
	/* Mail that gets no answer is counted here, by reason; what is sent
	 * is counted by the caller once it is really on its way. */
	if (rc == MP_OK && out->action == MP_HOST_DROP)
		mp_table_count(h->table, out->stat, 1);
	return rc;
}
