/*
 * main.c - mailpunch-agent: the command line and the commands' flows.
 *
 *   mailpunch-agent [-c FILE] [--json] COMMAND [ARG]
 *     id                 print this user's ID (creates the identity once)
 *     register           send a REQUEST to the hosts, print the REPLY's peers
 *     connect [PEER]     register, pick a peer, signal it, punch, handshake
 *     listen             stay registered and accept connections (standby)
 *     invite ADDRESS     direct mode: signal a friend by mail, no host
 *     status             identity, hosts, known peers, pending requests
 *
 * Output is for people by default; with --json every event is one JSON
 * object on its own line.  Exit codes: see enum agent_exit (agent.h)
 * and mailpunch-agent(1).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent.h"
#include "app_cli.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/peers.h"

#define OFFER 1
#define ANSWER 2
#define HELLO_EVERY_MS 1000

/* What connect, listen and invite keep between events. */
typedef struct flow {
	const char *command;
	const char *want;                 /* connect: PEER, or NULL */
	const char *invite_to;            /* invite: friend's address */
	mp_peer peers[MP_REPLY_MAX_PEERS];
	size_t order[MP_REPLY_MAX_PEERS], norder, next;
	char via_host[MP_ADDR_MAX + 1];
	agent_link *link;                 /* connect/invite: the attempt */
	mp_uid link_uid;
	int got_data, registered;
	size_t requests_failed;
	struct event *hello_timer, *attempt_timer, *keepalive_timer, *rereg_timer;
	uint64_t registered_at;
	mp_endpoints announced;
	agent_app_opts apps;              /* --send, --forward, --receive, ... */
	agent_apps *running_apps;
} flow;

static const char *progname = "mailpunch-agent";
static struct timespec started;

/* Milliseconds since the command started: --json events carry it, so
 * scripts (and bench/agent_connect.sh) can tell how long each phase took. */
static long
ms_since_start(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - started.tv_sec) * 1000 + (now.tv_nsec - started.tv_nsec) / 1000000;
}

/* Wall clock in ms, to line up two agents' events. */
static long long
epoch_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void
agent_say(agent *a, const char *fmt, ...)
{
	va_list ap;

	if (a->json)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void
agent_finish(agent *a, int code)
{
	if (!a->finishing)
		a->exit_code = code;
	a->finishing = 1;
	agent_maybe_exit(a);
}

void
agent_maybe_exit(agent *a)
{
	if (a->finishing && a->pending_sends == 0)
		event_base_loopexit(a->base, NULL);
}

/* Prints s as a JSON string (names come from mail: escape everything). */
static void
json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void
uid_of(const mp_pubid *p, char out[MP_UID_TEXT_LEN + 1])
{
	mp_uid u;

	mp_pubid_uid(p, &u);
	mp_uid_format(&u, out);
}

static void
print_candidates(const mp_endpoints *ep, char *buf, size_t len)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < ep->ncand && o + 50 < len; i++) {
		char c[64];

		if (mp_candidate_format(&ep->cand[i], c, sizeof c) == MP_OK)
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? " " : "", c);
	}
}

static void
print_peers(agent *a, const mp_msg *reply, const char *host)
{
	size_t i;

	if (a->json) {
		printf("{\"event\":\"reply\",\"ms\":%ld,\"epoch_ms\":%lld,\"host\":", ms_since_start(), epoch_ms());
		json_str(host);
		printf(",\"peers\":[");
	} else {
		printf("reply from %s: %u peer%s\n", host, reply->u.reply.npeers,
		       reply->u.reply.npeers == 1 ? "" : "s");
	}
	for (i = 0; i < reply->u.reply.npeers; i++) {
		const mp_peer *p = &reply->u.reply.peers[i];
		char uid[MP_UID_TEXT_LEN + 1], cands[512];

		uid_of(&p->id, uid);
		print_candidates(&p->ep, cands, sizeof cands);
		if (a->json) {
			printf("%s{\"user_id\":\"%s\",\"name\":", i ? "," : "", uid);
			json_str(p->name);
			printf(",\"age\":%u,\"failed\":%s,\"candidates\":", p->age,
			       p->flags & MP_PEER_FAILED ? "true" : "false");
			json_str(cands);
			printf("}");
		} else {
			printf("  %s  %-16s  %5us ago  %s  %s\n", uid, p->name[0] ? p->name : "-", p->age,
			       p->flags & MP_PEER_FAILED ? "F" : "-", cands);
		}
	}
	if (a->json)
		printf("]}\n");
	fflush(stdout);
}

static void
say_event(agent *a, const char *event, agent_link *l, const char *text)
{
	char uid[MP_UID_TEXT_LEN + 1], path[64] = "-";
	const mp_candidate *c = agent_link_path(l);

	uid_of(agent_link_peer(l), uid);
	if (c)
		mp_candidate_format(c, path, sizeof path);
	if (a->json) {
		printf("{\"event\":\"%s\",\"ms\":%ld,\"epoch_ms\":%lld,\"peer\":\"%s\",\"path\":\"%s\"",
		       event, ms_since_start(), epoch_ms(), uid, path);
		if (text) {
			printf(",\"message\":");
			json_str(text);
		}
		printf("}\n");
	} else if (text) {
		printf("%s from %s via %s: %s\n", event, uid, path, text);
	} else {
		printf("%s with %s via %s (identity verified)\n", event, uid, path);
	}
	fflush(stdout);
}

/* ---------------------------------------------------------------- status */

/*
 * `listen` keeps STATEDIR/listen.status current (replaced atomically), so
 * that `status` can tell what the standing agent is doing without any
 * channel to it: pid, when it registered where, its endpoints, its links.
 */
static void
write_status(agent *a)
{
	flow *f = a->cmd;
	char path[4096], tmp[4200], cands[512];
	size_t i;
	FILE *fp;

	if (strcmp(f->command, "listen") != 0)
		return;
	snprintf(path, sizeof path, "%s/listen.status", a->cfg->state_dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (!(fp = fopen(tmp, "w")))
		return;
	print_candidates(&a->ep, cands, sizeof cands);
	fprintf(fp, "pid %ld\nregistered %llu %s\nendpoints %s\n", (long)getpid(),
	        (unsigned long long)f->registered_at, f->via_host[0] ? f->via_host : "-", cands);
	for (i = 0; i < a->nlinks; i++) {
		char uid[MP_UID_TEXT_LEN + 1], p[64] = "-";
		const mp_candidate *c = agent_link_path(a->links[i]);

		uid_of(agent_link_peer(a->links[i]), uid);
		if (c)
			mp_candidate_format(c, p, sizeof p);
		fprintf(fp, "link %s %s %s\n", uid, p,
		        agent_link_established(a->links[i]) ? "established" : "punching");
	}
	if (fclose(fp) == 0)
		rename(tmp, path);
}

static void
print_listen_status(agent *a)
{
	char path[4096], line[1024];
	long pid = 0;
	FILE *fp;

	snprintf(path, sizeof path, "%s/listen.status", a->cfg->state_dir);
	if (!(fp = fopen(path, "r"))) {
		printf("listen: not running\n");
		return;
	}
	if (fgets(line, sizeof line, fp))
		sscanf(line, "pid %ld", &pid);
	if (pid <= 0 || kill((pid_t)pid, 0) != 0) {
		printf("listen: not running (last ran as pid %ld)\n", pid);
		fclose(fp);
		return;
	}
	printf("listen: running as pid %ld\n", pid);
	while (fgets(line, sizeof line, fp))
		printf("  %s", line);
	fclose(fp);
}

/* ---------------------------------------------------------------- timers */

static struct event *
timer(agent *a, struct event **slot, unsigned ms, int persist, event_callback_fn fn)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (*slot)
		event_free(*slot);
	*slot = event_new(a->base, -1, persist ? EV_PERSIST : 0, fn, a);
	if (*slot)
		event_add(*slot, &tv);
	return *slot;
}

static void
deadline_hit(evutil_socket_t fd, short what, void *arg)
{
	agent *a = arg;

	agent_say(a, "no reply from any host within %llds", a->cfg->reply_timeout);
	agent_finish(a, AGENT_EXIT_NOREPLY);
}

/* ---------------------------------------------------------------- sending */

static void
sent(agent *a, int status, const char *detail, void *arg)
{
	if (status != 0) {
		agent_say(a, "mail not sent: %s", detail);
		agent_finish(a, agent_exit_for_smtp(status));
	}
}

/* Requests go to every host; one host refusing (or being down) must
 * not stop the others' replies.  Credentials and TLS are the user's
 * own server's business, so those end the command at once. */
static void
request_sent(agent *a, int status, const char *detail, void *arg)
{
	flow *f = a->cmd;

	if (status == 0)
		return;
	f->requests_failed++;
	agent_say(a, "request not sent: %s", detail);
	if (agent_exit_for_smtp(status) != AGENT_EXIT_MAILSERVER || f->requests_failed >= a->cfg->nhosts)
		agent_finish(a, agent_exit_for_smtp(status));
}

/* OFFER: conn_id || secret || str8 reply address; ANSWER: conn_id || str8. */
static size_t
signal_payload(uint8_t *buf, const uint8_t *conn_id, const uint8_t *secret, const char *reply_addr)
{
	size_t n = 0, alen = reply_addr ? strlen(reply_addr) : 0;

	memcpy(buf, conn_id, MP_PUNCH_CONN_ID_LEN);
	n += MP_PUNCH_CONN_ID_LEN;
	if (secret) {
		memcpy(buf + n, secret, MP_PUNCH_SECRET_LEN);
		n += MP_PUNCH_SECRET_LEN;
	}
	buf[n++] = (uint8_t)alen;
	memcpy(buf + n, reply_addr ? reply_addr : "", alen);
	return n + alen;
}

static int
parse_payload(const mp_msg *sig, const uint8_t **conn_id, const uint8_t **secret, char *reply_addr)
{
	const uint8_t *p = sig->u.signal.payload;
	size_t len = sig->u.signal.payload_len, need = MP_PUNCH_CONN_ID_LEN + 1;

	if (sig->u.signal.kind == OFFER)
		need += MP_PUNCH_SECRET_LEN;
	if (len < need || len != need + p[need - 1] || p[need - 1] > MP_ADDR_MAX)
		return MP_ERR_MALFORMED;
	*conn_id = p;
	*secret = sig->u.signal.kind == OFFER ? p + MP_PUNCH_CONN_ID_LEN : NULL;
	memcpy(reply_addr, p + need, p[need - 1]);
	reply_addr[p[need - 1]] = '\0';
	if (reply_addr[0] && mp_parse_mail_address(reply_addr) != MP_OK)
		return MP_ERR_MALFORMED;
	return MP_OK;
}

/* ---------------------------------------------------------------- links */

static void
hello_tick(evutil_socket_t fd, short what, void *arg)
{
	agent *a = arg;
	flow *f = a->cmd;
	char msg[128];

	if (!f->link || !agent_link_established(f->link) || f->got_data)
		return;
	snprintf(msg, sizeof msg, "hello from %s (%s)", a->uid_text, a->cfg->name ? a->cfg->name : "");
	agent_link_send_data(f->link, (const uint8_t *)msg, strlen(msg));
}

/* ============================================================================
 * INTEGRATION POINT: the applications over the transport (agent/app_cli.h).
 *
 * Called when a link to the peer is established.  Once the stream
 * transport runs over the link, this is where it starts the applications:
 *
 *     agent_app_io io = { a->base, open_stream, send_datagram, ctx };
 *     f->running_apps = agent_apps_start(&f->apps, f->link == l, &io, a->json,
 *                                        apps_finished, a, err, sizeof err);
 *
 * and routes the transport's hooks: on_stream(bev) ->
 * agent_apps_on_stream(f->running_apps, bev), on_datagram(p, len) ->
 * agent_apps_on_datagram(f->running_apps, p, len); run_flow() frees
 * f->running_apps at the end.  Until then a command that asks for an
 * application says that this build cannot carry it.  Returns 1 when the
 * applications took over the link (no hello exchange).
 * ========================================================================== */
static void
apps_finished(void *arg, int exit_code)
{
	agent_finish(arg, exit_code);
}

static int
apps_on_established(agent *a, flow *f, agent_link *l)
{
	if (!agent_app_opts_any(&f->apps) || f->running_apps)
		return 0;
	(void)apps_finished;
	if (a->json)
		printf("{\"event\":\"apps_unavailable\",\"ms\":%ld}\n", ms_since_start());
	else
		agent_say(a, "connected, but this build has no stream transport for --send/--forward/--receive");
	fflush(stdout);
	if (f->link == l) {
		agent_finish(a, AGENT_EXIT_FAILURE);
		return 1;
	}
	return 0;
}

static void
on_link(agent *a, agent_link *l, int established)
{
	flow *f = a->cmd;

	say_event(a, "established", l, NULL);
	write_status(a);
	if (apps_on_established(a, f, l))
		return;
	if (f->link == l) {
		/* the initiator speaks first and repeats until answered */
		hello_tick(-1, 0, a);
		timer(a, &f->hello_timer, HELLO_EVERY_MS, 1, hello_tick);
	}
}

static void
on_data(agent *a, agent_link *l, const uint8_t *data, size_t len)
{
	flow *f = a->cmd;
	char text[MP_PUNCH_MAX_DATA + 1];
	size_t i;

	for (i = 0; i < len; i++)
		text[i] = data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : '?';
	text[len] = '\0';
	say_event(a, "message", l, text);
	if (f->link == l) {
		f->got_data = 1;
		agent_finish(a, AGENT_EXIT_OK);
		return;
	}
	/* responder: answer each message once with our own */
	{
		char msg[128];

		snprintf(msg, sizeof msg, "hello from %s (%s)", a->uid_text, a->cfg->name ? a->cfg->name : "");
		agent_link_send_data(l, (const uint8_t *)msg, strlen(msg));
	}
}

/* ---------------------------------------------------------------- connect */

static void try_next_peer(agent *a);

static void
attempt_failed(evutil_socket_t fd, short what, void *arg)
{
	agent *a = arg;
	flow *f = a->cmd;
	char uid[MP_UID_TEXT_LEN + 1];

	if (f->link && agent_link_established(f->link))
		return;
	mp_uid_format(&f->link_uid, uid);
	agent_say(a, "no path to %s within %llds: reporting it to %s", uid, a->cfg->punch_timeout,
	          f->via_host[0] ? f->via_host : "nobody (direct mode)");
	if (f->via_host[0])
		agent_send_notice(a, f->via_host, &f->link_uid, NULL, NULL);
	agent_link_free(f->link);
	f->link = NULL;
	try_next_peer(a);
}

static void
start_attempt(agent *a, const mp_pubid *peer, const mp_endpoints *ep, const char *direct_to)
{
	flow *f = a->cmd;
	uint8_t conn_id[MP_PUNCH_CONN_ID_LEN], secret[MP_PUNCH_SECRET_LEN], payload[128];
	char uid[MP_UID_TEXT_LEN + 1];
	size_t n;

	if (mp_punch_fresh(conn_id, secret) != MP_OK || !(f->link = agent_link_new(a, peer, 1, conn_id, secret))) {
		agent_finish(a, AGENT_EXIT_FAILURE);
		return;
	}
	mp_pubid_uid(peer, &f->link_uid);
	uid_of(peer, uid);
	agent_say(a, "connecting to %s", uid);
	if (a->json)
		printf("{\"event\":\"signal\",\"ms\":%ld,\"epoch_ms\":%lld,\"peer\":\"%s\"}\n",
		       ms_since_start(), epoch_ms(), uid);
	n = signal_payload(payload, conn_id, secret, direct_to ? a->cfg->address : NULL);
	OPENSSL_cleanse(secret, sizeof secret);
	if (agent_send_signal(a, peer, f->via_host, direct_to, OFFER, payload, n, sent, NULL) != MP_OK) {
		agent_say(a, "cannot send the signal");
		agent_finish(a, AGENT_EXIT_FAILURE);
		return;
	}
	OPENSSL_cleanse(payload, sizeof payload);
	if (ep)
		agent_link_add_candidates(f->link, ep);
	timer(a, &f->attempt_timer, (unsigned)a->cfg->punch_timeout * 1000, 0, attempt_failed);
}

static void
try_next_peer(agent *a)
{
	flow *f = a->cmd;
	const mp_peer *p;

	if (f->next >= f->norder) {
		agent_say(a, "no peer could be reached; standing by is `mailpunch-agent listen`");
		agent_finish(a, f->norder || f->invite_to ? AGENT_EXIT_UNREACHABLE : AGENT_EXIT_NOPEER);
		return;
	}
	p = &f->peers[f->order[f->next++]];
	start_attempt(a, &p->id, &p->ep, NULL);
}

static void
connect_on_reply(agent *a, const mp_msg *reply, const char *host)
{
	flow *f = a->cmd;
	mp_peer_policy pol = { a->cfg->allow, a->cfg->nallow, a->cfg->deny, a->cfg->ndeny, &a->uid };
	size_t i, idx, n = reply->u.reply.npeers;
	uint64_t now = (uint64_t)time(NULL);

	if (f->registered)
		return;         /* first valid reply wins; later ones are ignored */
	f->registered = 1;
	event_del(a->deadline);
	print_peers(a, reply, host);
	for (i = 0; i < n; i++)
		agent_state_learn_peer(&a->state, &reply->u.reply.peers[i], now);
	agent_state_save(a->cfg->state_dir, &a->state);
	if (strcmp(f->command, "register") == 0) {
		agent_finish(a, AGENT_EXIT_OK);
		return;
	}
	if (strcmp(f->command, "listen") == 0) {
		f->registered_at = now;
		f->announced = a->ep;
		snprintf(f->via_host, sizeof f->via_host, "%s", host);
		agent_say(a, "registered with %s; listening as %s", host, a->uid_text);
		write_status(a);
		return;
	}
	memcpy(f->peers, reply->u.reply.peers, n * sizeof f->peers[0]);
	snprintf(f->via_host, sizeof f->via_host, "%s", host);
	if (f->want) {
		if (mp_peers_find(f->peers, n, f->want, &idx) != MP_OK) {
			agent_say(a, "%s is not among the peers the host knows now", f->want);
			agent_finish(a, AGENT_EXIT_NOPEER);
			return;
		}
		f->order[0] = idx;
		f->norder = 1;
	} else {
		f->norder = mp_peers_order(f->peers, n, &pol, f->order);
	}
	try_next_peer(a);
}

/* ---------------------------------------------------------------- signals */

static int
friend_of(const agent *a, const mp_pubid *who)
{
	size_t i;

	for (i = 0; i < a->cfg->nfriends; i++)
		if (memcmp(&a->cfg->friends[i].id, who, sizeof *who) == 0)
			return 1;
	return 0;
}

static void
on_signal(agent *a, const mp_msg *sig, const char *from_addr, int direct)
{
	flow *f = a->cmd;
	const uint8_t *conn_id, *secret;
	char reply_addr[MP_ADDR_MAX + 1], uid[MP_UID_TEXT_LEN + 1];
	uint8_t payload[128];
	agent_link *l;
	size_t n;

	uid_of(&sig->sender, uid);
	if (parse_payload(sig, &conn_id, &secret, reply_addr) != MP_OK) {
		mp_log(MP_LOG_NOTICE, "signal from %s: malformed payload", uid);
		return;
	}
	if (sig->u.signal.kind == ANSWER) {
		/* the peer's fresh endpoints for our attempt */
		if (f->link && memcmp(agent_link_peer(f->link), &sig->sender, sizeof sig->sender) == 0)
			agent_link_add_candidates(f->link, &sig->u.signal.ep);
		return;
	}
	if (sig->u.signal.kind != OFFER || strcmp(f->command, "listen") != 0)
		return;
	/* Direct invitations only from friends; relayed ones come from
	 * members the host vouches for. */
	if (direct && !friend_of(a, &sig->sender)) {
		mp_log(MP_LOG_NOTICE, "invitation from %s (%s), not a Friend: ignored", uid, from_addr);
		return;
	}
	agent_say(a, "%s from %s: punching", direct ? "invitation" : "connection request", uid);
	if (a->json)
		printf("{\"event\":\"offer\",\"ms\":%ld,\"epoch_ms\":%lld,\"peer\":\"%s\",\"direct\":%s}\n",
		       ms_since_start(), epoch_ms(), uid, direct ? "true" : "false");
	fflush(stdout);
	if (!(l = agent_link_new(a, &sig->sender, 0, conn_id, secret)))
		return;
	agent_link_add_candidates(l, &sig->u.signal.ep);
	/* answer with our endpoints by the same way it came */
	n = signal_payload(payload, conn_id, NULL, NULL);
	agent_send_signal(a, &sig->sender, from_addr, direct ? (reply_addr[0] ? reply_addr : from_addr) : NULL,
	                  ANSWER, payload, n, NULL, NULL);
}

/* ---------------------------------------------------------------- listen */

static int
endpoints_changed(const mp_endpoints *x, const mp_endpoints *y)
{
	return x->ncand != y->ncand || memcmp(x->cand, y->cand, x->ncand * sizeof x->cand[0]) != 0;
}

static void
keepalive_gathered(agent *a)
{
	flow *f = a->cmd;

	/* a new mapping (or address) must reach the host at once */
	if (f->registered && endpoints_changed(&a->ep, &f->announced)) {
		agent_say(a, "endpoints changed: registering again");
		f->announced = a->ep;
		f->registered = 0;
		f->requests_failed = 0;
		agent_send_request(a, request_sent, NULL);
	}
}

static void
keepalive_tick(evutil_socket_t fd, short what, void *arg)
{
	agent *a = arg;

	/* STUN every 15 s keeps the NAT mapping of our socket alive, and
	 * tells whether it changed */
	if (a->cfg->stun_servers.count && !(a->stun && agent_stun_running(a->stun)))
		agent_endpoints_gather(a, keepalive_gathered);
}

static void
reregister_tick(evutil_socket_t fd, short what, void *arg)
{
	agent *a = arg;
	flow *f = a->cmd;

	f->registered = 0;
	f->requests_failed = 0;
	agent_send_request(a, request_sent, NULL);
}

/* ---------------------------------------------------------------- start */

static void
gathered(agent *a)
{
	flow *f = a->cmd;
	struct timeval tv = { a->cfg->reply_timeout, 0 };
	size_t i;
	char err[512];

	agent_say(a, "endpoints:");
	for (i = 0; i < a->ep.ncand; i++) {
		char c[64];

		mp_candidate_format(&a->ep.cand[i], c, sizeof c);
		agent_say(a, "  %s %s", a->ep.cand[i].kind == MP_CAND_SRFLX ? "srflx" : "local", c);
	}
	if (agent_inbox_start(a, err, sizeof err) != MP_OK) {
		agent_say(a, "%s", err);
		agent_finish(a, AGENT_EXIT_MAILSERVER);
		return;
	}
	if (f->invite_to) {
		const agent_friend *fr = NULL;

		for (i = 0; i < a->cfg->nfriends; i++)
			if (!strcasecmp(a->cfg->friends[i].address, f->invite_to))
				fr = &a->cfg->friends[i];
		if (!fr) {
			agent_say(a, "%s is not a Friend in the configuration (Friend ADDRESS mpu1.KEY)", f->invite_to);
			agent_finish(a, AGENT_EXIT_NOPEER);
			return;
		}
		f->via_host[0] = '\0';
		start_attempt(a, &fr->id, NULL, fr->address);
		return;
	}
	if (a->cfg->nhosts == 0) {
		agent_say(a, "no Host in the configuration: nothing to register with");
		agent_finish(a, AGENT_EXIT_CONFIG);
		return;
	}
	a->deadline = event_new(a->base, -1, 0, deadline_hit, a);
	event_add(a->deadline, &tv);
	if (agent_send_request(a, request_sent, NULL) != MP_OK) {
		agent_finish(a, AGENT_EXIT_FAILURE);
		return;
	}
	if (strcmp(f->command, "listen") == 0) {
		timer(a, &f->keepalive_timer, 15000, 1, keepalive_tick);
		timer(a, &f->rereg_timer, (unsigned)a->cfg->reregister * 1000, 1, reregister_tick);
	}
}

static void
stop_signal(evutil_socket_t sig, short what, void *arg)
{
	agent *a = arg;

	agent_say(a, "stopping");
	agent_finish(a, AGENT_EXIT_OK);
}

static int
load_identity(agent *a, int create)
{
	int rc = mp_identity_load(a->cfg->identity, &a->id);

	if (rc == MP_ERR_IO && errno == ENOENT && create) {
		char dir[4096], *slash;

		snprintf(dir, sizeof dir, "%s", a->cfg->identity);
		if ((slash = strrchr(dir, '/')) && slash != dir) {
			*slash = '\0';
			mkdir(dir, 0700);
		}
		if ((rc = mp_identity_generate(&a->id)) == MP_OK)
			rc = mp_identity_save(a->id, a->cfg->identity, 0);
		if (rc == MP_OK)
			fprintf(stderr, "%s: created a new identity in %s\n", progname, a->cfg->identity);
	}
	if (rc != MP_OK) {
		fprintf(stderr, "%s: identity %s: %s%s\n", progname, a->cfg->identity, mp_strerror(rc),
		        rc == MP_ERR_IO ? " (run `mailpunch-agent id` once to create it)" : "");
		return AGENT_EXIT_CONFIG;
	}
	mp_identity_uid(a->id, &a->uid);
	mp_uid_format(&a->uid, a->uid_text);
	return AGENT_EXIT_OK;
}

static int
cmd_id(agent *a)
{
	char pub[MP_PUBID_TEXT_MAX];

	mp_pubid_format(mp_identity_public(a->id), pub, sizeof pub);
	if (a->json) {
		printf("{\"user_id\":\"%s\",\"identity\":\"%s\",\"name\":", a->uid_text, pub);
		json_str(a->cfg->name ? a->cfg->name : "");
		printf(",\"address\":");
		json_str(a->cfg->address);
		printf("}\n");
	} else {
		printf("user-id %s\nidentity %s\n", a->uid_text, pub);
		printf("# a friend adds this line to their agent.conf for `invite`:\nFriend %s %s\n",
		       a->cfg->address, pub);
	}
	return AGENT_EXIT_OK;
}

static int
cmd_status(agent *a)
{
	size_t i;

	printf("user-id %s (%s)\naddress %s\n", a->uid_text, a->cfg->name ? a->cfg->name : "-",
	       a->cfg->address);
	for (i = 0; i < a->cfg->nhosts; i++)
		printf("host %s\n", a->cfg->hosts[i].address);
	print_listen_status(a);
	printf("pending requests %zu\nknown peers %zu\n", a->state.nrequests, a->state.npeers);
	for (i = 0; i < a->state.npeers; i++) {
		char uid[MP_UID_TEXT_LEN + 1];

		mp_uid_format(&a->state.peers[i].uid, uid);
		printf("  %s  %-16s  %s\n", uid, a->state.peers[i].name[0] ? a->state.peers[i].name : "-",
		       a->state.peers[i].flags & MP_PEER_FAILED ? "F" : "-");
	}
	return AGENT_EXIT_OK;
}

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: %s [-c FILE] [--json] COMMAND [ARG] [APP OPTIONS]\n"
	            "commands: id, register, connect [PEER], listen, invite ADDRESS, status\n"
	            "connect:  --send FILE..., --forward LOCALPORT:HOST:PORT, --forward-udp LOCALPORT:HOST:PORT\n"
	            "listen:   --receive DIR [--overwrite], --allow-forward HOST:PORT, --allow-forward-udp HOST:PORT\n",
	        progname);
}

static int
run_flow(agent *a, flow *f)
{
	char err[512];
	struct event *sint, *sterm;

	a->cmd = f;
	a->hooks.on_reply = connect_on_reply;
	a->hooks.on_signal = on_signal;
	a->hooks.on_link = on_link;
	a->hooks.on_data = on_data;
	if (agent_udp_open(a, err, sizeof err) != MP_OK) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return AGENT_EXIT_FAILURE;
	}
	sint = evsignal_new(a->base, SIGINT, stop_signal, a);
	sterm = evsignal_new(a->base, SIGTERM, stop_signal, a);
	event_add(sint, NULL);
	event_add(sterm, NULL);
	if (agent_endpoints_gather(a, gathered) != MP_OK) {
		fprintf(stderr, "%s: cannot gather endpoints\n", progname);
		a->exit_code = AGENT_EXIT_FAILURE;
	} else {
		event_base_dispatch(a->base);
	}
	while (a->nlinks)
		agent_link_free(a->links[0]);
	agent_inbox_stop(a);
	agent_udp_close(a);
	if (f->hello_timer)
		event_free(f->hello_timer);
	if (f->attempt_timer)
		event_free(f->attempt_timer);
	if (f->keepalive_timer)
		event_free(f->keepalive_timer);
	if (f->rereg_timer)
		event_free(f->rereg_timer);
	agent_apps_free(f->running_apps);
	f->running_apps = NULL;
	if (a->deadline)
		event_free(a->deadline);
	event_free(sint);
	event_free(sterm);
	return a->exit_code;
}

/* What follows COMMAND: its argument (PEER, ADDRESS), the application
 * options, and for connect more files after --send FILE.  Options may
 * come in any order; -c and --json are taken here too. */
static int
parse_after_command(int argc, char **argv, char *argv0, agent *a, flow *f, const char **config)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "config", required_argument, NULL, 'c' },
		{ "send", required_argument, NULL, AGENT_OPT_SEND },
		{ "receive", required_argument, NULL, AGENT_OPT_RECEIVE },
		{ "overwrite", no_argument, NULL, AGENT_OPT_OVERWRITE },
		{ "forward", required_argument, NULL, AGENT_OPT_FORWARD },
		{ "forward-udp", required_argument, NULL, AGENT_OPT_FORWARD_UDP },
		{ "allow-forward", required_argument, NULL, AGENT_OPT_ALLOW_FORWARD },
		{ "allow-forward-udp", required_argument, NULL, AGENT_OPT_ALLOW_FORWARD_UDP },
		{ NULL, 0, NULL, 0 },
	};
	char **sub, err[512];
	int c, i, n, connect = !strcmp(f->command, "connect");

	if (!(sub = calloc((size_t)argc + 2, sizeof *sub)))
		return AGENT_EXIT_FAILURE;
	sub[0] = argv0;
	for (i = 0; i < argc; i++)
		sub[i + 1] = argv[i];
	n = argc + 1;
	optind = 0;   /* glibc: start over, on this vector */
	while ((c = getopt_long(n, sub, "c:j", longopts, NULL)) != -1) {
		if (c == 'c') {
			*config = optarg;
		} else if (c == 'j') {
			a->json = 1;
		} else if (c >= AGENT_OPT_SEND && c <= AGENT_OPT_ALLOW_FORWARD_UDP) {
			if (agent_app_opts_add(&f->apps, c, optarg, err, sizeof err) != MP_OK) {
				fprintf(stderr, "%s: %s\n", progname, err);
				free(sub);
				return AGENT_EXIT_USAGE;
			}
		} else {
			free(sub);
			usage(stderr);
			return AGENT_EXIT_USAGE;
		}
	}
	/* getopt moved the other words to the end, in their order */
	if (connect && optind < n)
		f->want = sub[optind++];
	else if (!strcmp(f->command, "invite") && optind < n)
		f->invite_to = sub[optind++];
	while (connect && f->apps.nsend && optind < n)
		agent_app_opts_add(&f->apps, AGENT_OPT_SEND, sub[optind++], err, sizeof err);
	c = optind;
	free(sub);
	if (c != n || (!strcmp(f->command, "invite") && !f->invite_to)) {
		usage(stderr);
		return AGENT_EXIT_USAGE;
	}
	if (agent_app_opts_any(&f->apps) &&
	    (strcmp(f->command, "connect") && strcmp(f->command, "listen"))) {
		fprintf(stderr, "%s: application options go with connect or listen\n", progname);
		return AGENT_EXIT_USAGE;
	}
	if (agent_app_opts_check(&f->apps, connect, err, sizeof err) != MP_OK) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return AGENT_EXIT_USAGE;
	}
	return AGENT_EXIT_OK;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char pathbuf[4096], err[1024];
	const char *config = NULL, *cmd;
	agent a;
	flow f;
	int c, rc;

	clock_gettime(CLOCK_MONOTONIC, &started);
	/* a server may close while we write: that is an error, not a death */
	signal(SIGPIPE, SIG_IGN);
	memset(&a, 0, sizeof a);
	memset(&f, 0, sizeof f);
	a.udp_fd = -1;
	a.udp6_fd = -1;
	while ((c = getopt_long(argc, argv, "+c:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'j': a.json = 1; break;
		case 'h': usage(stdout); return AGENT_EXIT_OK;
		default: usage(stderr); return AGENT_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return AGENT_EXIT_USAGE;
	}
	cmd = argv[optind++];
	f.command = cmd;
	rc = parse_after_command(argc - optind, argv + optind, argv[0], &a, &f, &config);
	if (rc != AGENT_EXIT_OK) {
		agent_app_opts_clear(&f.apps);
		return rc;
	}
	if (!config)
		config = agent_settings_default_path(pathbuf, sizeof pathbuf);
	if (agent_settings_load(config, &a.cfg, err, sizeof err) != MP_OK) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return AGENT_EXIT_CONFIG;
	}
	mp_log_open(a.cfg->log_dest, progname, (mp_log_level)a.cfg->log_level);
	rc = load_identity(&a, !strcmp(cmd, "id"));
	if (rc == AGENT_EXIT_OK && agent_state_load(a.cfg->state_dir, &a.state, (uint64_t)time(NULL), err,
	                                            sizeof err) != MP_OK) {
		fprintf(stderr, "%s: %s\n", progname, err);
		rc = AGENT_EXIT_CONFIG;
	}
	if (rc == AGENT_EXIT_OK) {
		if (!strcmp(cmd, "id")) {
			rc = cmd_id(&a);
		} else if (!strcmp(cmd, "status")) {
			rc = cmd_status(&a);
		} else if (!strcmp(cmd, "register") || !strcmp(cmd, "connect") || !strcmp(cmd, "listen") ||
		           !strcmp(cmd, "invite")) {
			if (!(a.base = event_base_new())) {
				rc = AGENT_EXIT_FAILURE;
			} else {
				rc = run_flow(&a, &f);
				event_base_free(a.base);
			}
		} else {
			usage(stderr);
			rc = AGENT_EXIT_USAGE;
		}
	}
	mp_identity_free(a.id);
	agent_settings_free(a.cfg);
	agent_app_opts_clear(&f.apps);
	mp_log_close();
	return rc;
}
