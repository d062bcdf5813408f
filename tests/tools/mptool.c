/*
 * mptool - a test client for the integration tests: builds the mails an
 * agent sends and opens the mails it receives, through libmailpunch.
 *
 *   mptool request IDENTITY HOSTPUB FROM TO [NAME [CAND...]]   > mail
 *   mptool notice  IDENTITY HOSTPUB FROM TO TARGET_UID         > mail
 *   mptool relay   IDENTITY HOSTPUB FROM TO TARGET_PUBID TEXT  > mail
 *   mptool open    IDENTITY HOSTPUB MAILFILE     (prints what it holds)
 *   mptool pubid   IDENTITY                      (prints mpu1... and uid)
 *   mptool reply   HOSTKEY TO_PUBID FROM TO      > mail (a REPLY with a
 *                  random session ID: what a forger with the host key,
 *                  or a stale reply, looks like)
 *
 * `open` prints one line per fact, e.g. "type REPLY", "peers 1",
 * "peer <uid> <name> flags=<n>", "signal-from <uid> payload=<text>",
 * so shell tests can grep.  Exit status 0 on success, 1 on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/block.h"
#include "mailpunch/error.h"
#include "mailpunch/keys.h"
#include "mailpunch/mail.h"

static int
die(const char *what, int rc)
{
	fprintf(stderr, "mptool: %s: %s\n", what, mp_strerror(rc));
	return 1;
}

static int
load(const char *idpath, const char *hostpub, mp_identity **id, uint8_t pub[MP_KEY_LEN])
{
	int rc = mp_identity_load(idpath, id);

	if (rc != MP_OK)
		return die(idpath, rc);
	if (hostpub && (rc = mp_hostpub_parse(hostpub, pub)) != MP_OK)
		return die("host key", rc);
	return 0;
}

static int
emit(const mp_msg *m, const mp_identity *id, const uint8_t *to_pub, const char *from,
     const char *to, const char *what)
{
	mp_block_key k = { .user = id };
	mp_mail_draft d = { 0 };
	char subject[64], *text;
	uint8_t *blk;
	size_t blen, tlen;
	mp_mail *mail;
	int rc;

	if ((rc = mp_block_seal(m, &k, to_pub, &blk, &blen)) != MP_OK)
		return die("seal", rc);
	snprintf(subject, sizeof subject, "[mailpunch] %s", what);
	d.from = from;
	d.to = to;
	d.subject = subject;
	d.block = blk;
	d.block_len = blen;
	rc = mp_mail_compose(&d, &mail);
	free(blk);
	if (rc != MP_OK)
		return die("compose", rc);
	rc = mp_mail_serialize(mail, &text, &tlen);
	mp_mail_free(mail);
	if (rc != MP_OK)
		return die("serialize", rc);
	fwrite(text, 1, tlen, stdout);
	free(text);
	return 0;
}

static int
cmd_request(int argc, char **argv)
{
	mp_identity *id;
	uint8_t pub[MP_KEY_LEN];
	mp_msg *m;
	int i, rc;

	if (argc < 4 || load(argv[0], argv[1], &id, pub))
		return 1;
	m = mp_msg_new(MP_MSG_REQUEST);
	snprintf(m->u.request.reply_addr, sizeof m->u.request.reply_addr, "%s", argv[2]);
	if (argc > 4)
		snprintf(m->u.request.name, sizeof m->u.request.name, "%s", argv[4]);
	for (i = 5; i < argc && m->u.request.ep.ncand < MP_MAX_CANDIDATES; i++) {
		if ((rc = mp_candidate_parse(argv[i], MP_CAND_SRFLX,
		                             &m->u.request.ep.cand[m->u.request.ep.ncand])) != MP_OK)
			return die(argv[i], rc);
		m->u.request.ep.ncand++;
	}
	rc = emit(m, id, pub, argv[2], argv[3], "request");
	mp_msg_free(m);
	mp_identity_free(id);
	return rc;
}

static int
cmd_notice(int argc, char **argv)
{
	mp_identity *id;
	uint8_t pub[MP_KEY_LEN];
	mp_msg *m;
	int rc;

	if (argc < 5 || load(argv[0], argv[1], &id, pub))
		return 1;
	m = mp_msg_new(MP_MSG_FAILURE_NOTICE);
	if ((rc = mp_uid_parse(argv[4], &m->u.failure.target)) != MP_OK)
		return die(argv[4], rc);
	m->u.failure.reason = MP_FAIL_TIMEOUT;
	rc = emit(m, id, pub, argv[2], argv[3], "notice");
	mp_msg_free(m);
	mp_identity_free(id);
	return rc;
}

static int
cmd_relay(int argc, char **argv)
{
	mp_identity *id;
	uint8_t pub[MP_KEY_LEN];
	mp_pubid target;
	mp_block_key k;
	mp_msg *sig, *relay;
	uint8_t *inner;
	size_t inner_len;
	int rc;

	if (argc < 6 || load(argv[0], argv[1], &id, pub))
		return 1;
	if ((rc = mp_pubid_parse(argv[4], &target)) != MP_OK)
		return die(argv[4], rc);
	k.host = NULL;
	k.user = id;
	sig = mp_msg_new(MP_MSG_SIGNAL);
	sig->u.signal.kind = 1;
	sig->u.signal.payload_len = (uint16_t)strnlen(argv[5], MP_SIGNAL_PAYLOAD_MAX);
	memcpy(sig->u.signal.payload, argv[5], sig->u.signal.payload_len);
	if ((rc = mp_block_seal(sig, &k, target.seal_pub, &inner, &inner_len)) != MP_OK)
		return die("seal signal", rc);
	relay = mp_msg_new(MP_MSG_RELAY);
	mp_pubid_uid(&target, &relay->u.relay.target);
	memcpy(relay->u.relay.inner, inner, inner_len);
	relay->u.relay.inner_len = (uint16_t)inner_len;
	rc = emit(relay, id, pub, argv[2], argv[3], "signal");
	free(inner);
	mp_msg_free(sig);
	mp_msg_free(relay);
	mp_identity_free(id);
	return rc;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static void
print_uid(const char *label, const mp_pubid *p)
{
	char uid[MP_UID_TEXT_LEN + 1];
	mp_uid u;

	mp_pubid_uid(p, &u);
	mp_uid_format(&u, uid);
	printf("%s %s", label, uid);
}

static int
cmd_open(int argc, char **argv)
{
	mp_identity *id;
	uint8_t pub[MP_KEY_LEN];
	mp_block_key k = { 0 };
	mp_parsed_mail pm;
	mp_msg *m;
	char *raw;
	size_t len, i;
	int rc;

	if (argc < 3 || load(argv[0], argv[1], &id, pub))
		return 1;
	if (!(raw = slurp(argv[2], &len))) {
		perror(argv[2]);
		return 1;
	}
	rc = mp_mail_parse(raw, len, NULL, &pm);
	free(raw);
	if (rc != MP_OK)
		return die("parse", rc);
	k.user = id;
	rc = mp_block_open(pm.block, pm.block_len, &k, &m);
	mp_parsed_mail_free(&pm);
	if (rc != MP_OK)
		return die("open", rc);
	if (m->type == MP_MSG_RELAYED) {
		/* a signal passed on by the host: check the host, open the inner */
		mp_msg *outer = m;

		if (memcmp(outer->sender_host, pub, MP_KEY_LEN) != 0) {
			fprintf(stderr, "mptool: relayed signal not from the configured host\n");
			return 1;
		}
		printf("relayed-by-host\n");
		rc = mp_block_open(outer->u.relay.inner, outer->u.relay.inner_len, &k, &m);
		mp_msg_free(outer);
		if (rc != MP_OK)
			return die("open inner", rc);
	}
	printf("type %s\n", mp_msg_type_name(m->type));
	if (m->type == MP_MSG_REPLY) {
		if (memcmp(m->sender_host, pub, MP_KEY_LEN) != 0) {
			fprintf(stderr, "mptool: reply not from the configured host\n");
			return 1;
		}
		printf("session ");
		for (i = 0; i < MP_SESSION_ID_LEN; i++)
			printf("%02x", m->session_id[i]);
		printf("\npeers %u\n", m->u.reply.npeers);
		for (i = 0; i < m->u.reply.npeers; i++) {
			print_uid("peer", &m->u.reply.peers[i].id);
			printf(" %s flags=%u\n", m->u.reply.peers[i].name[0] ? m->u.reply.peers[i].name : "-",
			       m->u.reply.peers[i].flags);
		}
	} else if (m->type == MP_MSG_SIGNAL) {
		print_uid("signal-from", &m->sender);
		printf(" payload=%.*s\n", m->u.signal.payload_len, (const char *)m->u.signal.payload);
	}
	mp_msg_free(m);
	mp_identity_free(id);
	return 0;
}

static int
cmd_pubid(int argc, char **argv)
{
	mp_identity *id;
	char text[MP_PUBID_TEXT_MAX];

	if (argc < 1 || load(argv[0], NULL, &id, NULL))
		return 1;
	mp_pubid_format(mp_identity_public(id), text, sizeof text);
	printf("%s\n", text);
	print_uid("uid", mp_identity_public(id));
	printf("\n");
	mp_identity_free(id);
	return 0;
}

static int
cmd_reply(int argc, char **argv)
{
	mp_hostkey *hk;
	mp_pubid to;
	mp_block_key k = { 0 };
	mp_mail_draft d = { 0 };
	mp_mail *mail;
	mp_msg *m;
	uint8_t *blk;
	size_t blen, tlen;
	char *text;
	int rc;

	if (argc < 4)
		return 1;
	if ((rc = mp_hostkey_load(argv[0], &hk)) != MP_OK)
		return die(argv[0], rc);
	if ((rc = mp_pubid_parse(argv[1], &to)) != MP_OK)
		return die(argv[1], rc);
	k.host = hk;
	m = mp_msg_new(MP_MSG_REPLY);
	if ((rc = mp_block_seal(m, &k, to.seal_pub, &blk, &blen)) != MP_OK)
		return die("seal", rc);
	d.from = argv[2];
	d.to = argv[3];
	d.subject = "[mailpunch] reply";
	d.auto_kind = MP_AUTO_REPLIED;
	d.block = blk;
	d.block_len = blen;
	if ((rc = mp_mail_compose(&d, &mail)) != MP_OK || (rc = mp_mail_serialize(mail, &text, &tlen)) != MP_OK)
		return die("compose", rc);
	fwrite(text, 1, tlen, stdout);
	free(text);
	mp_mail_free(mail);
	free(blk);
	mp_msg_free(m);
	mp_hostkey_free(hk);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "request"))
		return cmd_request(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "notice"))
		return cmd_notice(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "relay"))
		return cmd_relay(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "open"))
		return cmd_open(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "reply"))
		return cmd_reply(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "pubid"))
		return cmd_pubid(argc - 2, argv + 2);
	fprintf(stderr, "usage: mptool request|notice|relay|open|pubid ...\n");
	return 2;
}
