/*
 * hostsync.c - TABLE_SYNC between the hosts of a community (see
 * hostsync.h): peer configuration, the outgoing mail, the merge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "mailpunch/hostsync.h"
#include "mailpunch/mail.h"

static int
key_from_file(const char *path, uint8_t pub[MP_KEY_LEN])
{
	char line[256];
	mp_hostkey *k;
	FILE *f = fopen(path, "r");
	int rc;

	if (!f)
		return MP_ERR_KEYFILE;
	if (fgets(line, sizeof line, f) && strncmp(line, "mph1.", 5) == 0) {
		fclose(f);
		line[strcspn(line, "\r\n \t")] = '\0';
		return mp_hostpub_parse(line, pub) == MP_OK ? MP_OK : MP_ERR_KEYFILE;
	}
	fclose(f);
	if ((rc = mp_hostkey_load(path, &k)) != MP_OK)
		return MP_ERR_KEYFILE;
	mp_hostkey_public(k, pub);
	mp_hostkey_free(k);
	return MP_OK;
}

int
mp_host_peer_parse(const char *text, mp_host_peer *out)
{
	size_t n;
	const char *key;

	if (!text || !out)
		return MP_ERR_INVAL;
	memset(out, 0, sizeof *out);
	text += strspn(text, " \t");
	n = strcspn(text, " \t");
	if (n == 0 || n > MP_ADDR_MAX || !memchr(text, '@', n))
		return MP_ERR_SYNTAX;
	memcpy(out->addr, text, n);
	key = text + n + strspn(text + n, " \t");
	if (*key == '\0' || key[strcspn(key, " \t")] != '\0')
		return MP_ERR_SYNTAX;
	if (strncmp(key, "mph1.", 5) == 0)
		return mp_hostpub_parse(key, out->pub) == MP_OK ? MP_OK : MP_ERR_SYNTAX;
	if (key[0] != '/')
		return MP_ERR_SYNTAX;
	return key_from_file(key, out->pub);
}

int
mp_host_peer_find(const mp_host_peer *peers, size_t n, const uint8_t pub[MP_KEY_LEN])
{
	size_t i;

	for (i = 0; i < n; i++)
		if (memcmp(peers[i].pub, pub, MP_KEY_LEN) == 0)
			return (int)i;
	return -1;
}

int
mp_hostsync_compose(const mp_hostkey *key, const char *from, const char *subject_marker,
                    const mp_host_peer *peer, const mp_table_entry *e, size_t n,
                    int want_full, uint64_t now, char **mail, size_t *len)
{
	mp_block_key me = { .host = key };
	char subject[128];
	mp_mail_draft d;
	mp_mail *m = NULL;
	mp_msg *msg;
	uint8_t *blk = NULL;
	size_t i, blk_len;
	int rc;

	if (!key || !from || !peer || (n && !e) || n > MP_SYNC_MAX_ENTRIES || !mail || !len)
		return MP_ERR_INVAL;
	if (!(msg = mp_msg_new(MP_MSG_TABLE_SYNC)))
		return MP_ERR_NOMEM;
	msg->timestamp = now;
	msg->u.sync.want_full = want_full ? 1 : 0;
	msg->u.sync.nentries = (uint16_t)n;
	for (i = 0; i < n; i++) {
		mp_sync_entry *s = &msg->u.sync.entries[i];

		s->id = e[i].id;
		memcpy(s->name, e[i].name, sizeof s->name);
		memcpy(s->reply_addr, e[i].reply_addr, sizeof s->reply_addr);
		s->ep = e[i].ep;
		s->time = e[i].time;
		s->flags = e[i].flags;
	}
	rc = mp_block_seal(msg, &me, peer->pub, &blk, &blk_len);
	mp_msg_free(msg);
	if (rc != MP_OK)
		return rc;
	memset(&d, 0, sizeof d);
	snprintf(subject, sizeof subject, "%s table sync", subject_marker ? subject_marker : "");
	d.from = from;
	d.to = peer->addr;
	d.subject = subject;
	/* not marked auto-submitted: hosts drop such mail unread, and this
	 * one must be read (loops are stopped by the merge rules instead) */
	d.auto_kind = MP_AUTO_NONE;
	d.explanation = "Table synchronisation between mailpunch hosts of one community.\r\n";
	d.block = blk;
	d.block_len = blk_len;
	rc = mp_mail_compose(&d, &m);
	free(blk);
	if (rc != MP_OK)
		return rc;
	rc = mp_mail_serialize(m, mail, len);
	mp_mail_free(m);
	return rc;
}

int
mp_hostsync_merge(mp_table *t, const mp_table_sync *s, uint64_t now, uint64_t max_age,
                  uint64_t max_future, mp_sync_result *r)
{
	size_t i;

	if (!t || !s || !r || s->nentries > MP_SYNC_MAX_ENTRIES)
		return MP_ERR_INVAL;
	memset(r, 0, sizeof *r);
	for (i = 0; i < s->nentries; i++) {
		const mp_sync_entry *x = &s->entries[i];
		mp_table_entry e;
		int rc, applied;

		/* what would expire here at once, or comes from a clock
		 * ahead of ours, is not taken (it would sort wrongly) */
		if ((max_age && x->time < now && now - x->time > max_age) ||
		    (x->time > now && x->time - now > max_future)) {
			r->stale++;
			continue;
		}
		memset(&e, 0, sizeof e);
		e.id = x->id;
		mp_pubid_uid(&x->id, &e.uid);
		memcpy(e.name, x->name, sizeof e.name);
		memcpy(e.reply_addr, x->reply_addr, sizeof e.reply_addr);
		e.ep = x->ep;
		if (e.ep.ncand > MP_TABLE_CAND)
			e.ep.ncand = MP_TABLE_CAND;
		e.time = x->time;
		e.flags = x->flags;
		rc = mp_table_merge(t, &e, &applied);
		if (rc == MP_ERR_CONFLICT)
			r->conflicts++;
		else if (rc == MP_ERR_INVAL)
			r->invalid++;
		else if (rc != MP_OK)
			return rc;          /* backend trouble: tempfail, retried whole */
		else if (applied)
			r->merged++;
		else
			r->older++;
	}
	return MP_OK;
}
