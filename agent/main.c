/*
 * main.c - mailpunch-agent: the command line and the commands' flows.
 *
 *   mailpunch-agent [-c FILE] [--json] COMMAND [ARG] [APP OPTIONS]
 *     id                 print this user's ID (creates the identity once)
 *     register           send a REQUEST to the hosts, print the REPLY's peers
 *     connect [PEER]     register, pick a peer, signal it, punch, handshake,
 *                        then QUIC: stdin to the peer, the peer to stdout;
 *                        or the applications: --send FILE..., --forward
 *                        LOCALPORT:HOST:PORT, --forward-udp ...
 *     listen [--exec CMD] stay registered and accept connections (standby);
 *                        each pipe stream to stdout (the first gets stdin),
 *                        or to CMD's stdin/stdout; files with --receive DIR,
 *                        forwards to what --allow-forward[-udp] names
 *     invite ADDRESS     direct mode: signal a friend by mail, no host
 *     status             identity, hosts, known peers, pending requests
 *     nat                how the NAT in front behaves (STUN, RFC 5780)
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent.h"
#include "app_cli.h"
#include "pipe.h"
#include "transport.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/natplan.h"
#include "mailpunch/peers.h"

#define OFFER 1
#define ANSWER 2
#define RANGE 3       /* NAT measurements (agent/traverse.c) */
#define MAX_PIPES 32
#define MAX_SESSIONS 32

/* The applications of one QUIC connection (app_cli.h). */
typedef struct session {
	agent *a;
	agent_transport *t;
	agent_apps *apps;
} session;

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
	int registered;
	size_t requests_failed;
	struct event *attempt_timer, *keepalive_timer, *rereg_timer, *sigchld;
	const char *exec_cmd;             /* listen --exec CMD */
	unsigned idle_ms;                 /* --idle-timeout */
	agent_pipe *pipe;                 /* connect: stdin/stdout <-> the stream */
	int pipe_ok, stdin_taken;
	agent_pipe *pipes[MAX_PIPES];     /* listen: one per incoming stream */
	uint64_t registered_at;
	mp_endpoints announced;
	agent_app_opts apps;              /* --send, --forward, --receive, ... */
	session *sessions[MAX_SESSIONS];
	int apps_done, apps_code;         /* connect: the applications' verdict */
} flow;

static const char *progname = "mailpunch-agent";
/* Messages and --json events: stdout, unless stdout carries stream data
 * (connect, invite, listen without --exec), then stderr. */
static FILE *msg_fp;
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
	vfprintf(msg_fp, fmt, ap);
	va_end(ap);
	fputc('\n', msg_fp);
	fflush(msg_fp);
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
	fputc('"', msg_fp);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(msg_fp, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(msg_fp, "\\u%04x", c);
		else
			fputc(c, msg_fp);
	}
	fputc('"', msg_fp);
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
		fprintf(msg_fp, "{\"event\":\"reply\",\"ms\":%ld,\"epoch_ms\":%lld,\"host\":", ms_since_start(), epoch_ms());
		json_str(host);
		fprintf(msg_fp, ",\"peers\":[");
	} else {
		fprintf(msg_fp, "reply from %s: %u peer%s\n", host, reply->u.reply.npeers,
		       reply->u.reply.npeers == 1 ? "" : "s");
	}
	for (i = 0; i < reply->u.reply.npeers; i++) {
		const mp_peer *p = &reply->u.reply.peers[i];
		char uid[MP_UID_TEXT_LEN + 1], cands[512];

		uid_of(&p->id, uid);
		print_candidates(&p->ep, cands, sizeof cands);
		if (a->json) {
			fprintf(msg_fp, "%s{\"user_id\":\"%s\",\"name\":", i ? "," : "", uid);
			json_str(p->name);
			fprintf(msg_fp, ",\"age\":%u,\"failed\":%s,\"candidates\":", p->age,
			       p->flags & MP_PEER_FAILED ? "true" : "false");
			json_str(cands);
			fprintf(msg_fp, ",\"nat\":{\"mapping\":\"%s\",\"filtering\":\"%s\",\"allocation\":\"%s\",\"delta\":%d}",
			        mp_nat_dep_name(p->ep.nat.mapping), mp_nat_dep_name(p->ep.nat.filtering),
			        mp_nat_alloc_name(p->ep.nat.allocation), p->ep.nat.delta);
			fprintf(msg_fp, "}");
		} else {
			fprintf(msg_fp, "  %s  %-16s  %5us ago  %s  %s\n", uid, p->name[0] ? p->name : "-", p->age,
			       p->flags & MP_PEER_FAILED ? "F" : "-", cands);
		}
	}
	if (a->json)
		fprintf(msg_fp, "]}\n");
	fflush(msg_fp);
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
		fprintf(msg_fp, "{\"event\":\"%s\",\"ms\":%ld,\"epoch_ms\":%lld,\"peer\":\"%s\",\"path\":\"%s\"",
		       event, ms_since_start(), epoch_ms(), uid, path);
		if (!text) {
			unsigned long packets;
			long punch_ms;
			const char *plan;

			agent_link_stats(l, &packets, &punch_ms, &plan);
			fprintf(msg_fp, ",\"packets\":%lu,\"punch_ms\":%ld,\"plan\":", packets, punch_ms);
			json_str(plan);
		}
		if (text) {
			fprintf(msg_fp, ",\"message\":");
			json_str(text);
		}
		fprintf(msg_fp, "}\n");
	} else if (text) {
		fprintf(msg_fp, "%s from %s via %s: %s\n", event, uid, path, text);
	} else {
		fprintf(msg_fp, "%s with %s via %s (identity verified)\n", event, uid, path);
	}
	fflush(msg_fp);
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
		fprintf(msg_fp, "listen: not running\n");
		return;
	}
	if (fgets(line, sizeof line, fp))
		sscanf(line, "pid %ld", &pid);
	if (pid <= 0 || kill((pid_t)pid, 0) != 0) {
		fprintf(msg_fp, "listen: not running (last ran as pid %ld)\n", pid);
		fclose(fp);
		return;
	}
	fprintf(msg_fp, "listen: running as pid %ld\n", pid);
	while (fgets(line, sizeof line, fp))
		fprintf(msg_fp, "  %s", line);
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
send_link_signal(agent *a, const mp_pubid *to, const char *via_host, const char *direct_addr,
                 uint8_t kind, const uint8_t *payload, size_t len)
{
	agent_send_signal(a, to, via_host, direct_addr, kind, payload, len, NULL, NULL);
}

/* ---------------------------------------------------------------- transport */

static agent_transport *
transport_of(agent *a, agent_link *l)
{
	size_t i;

	for (i = 0; i < a->ntransports; i++)
		if (agent_transport_link(a->transports[i]) == l)
			return a->transports[i];
	return NULL;
}

static void
say_transport(agent *a, agent_transport *t, const char *event, const char *reason)
{
	char uid[MP_UID_TEXT_LEN + 1], path[64] = "-";

	uid_of(agent_link_peer(agent_transport_link(t)), uid);
	agent_transport_peer_addr(t, path, sizeof path);
	if (a->json) {
		fprintf(msg_fp, "{\"event\":\"%s\",\"ms\":%ld,\"epoch_ms\":%lld,\"peer\":\"%s\",\"path\":\"%s\"", event,
		        ms_since_start(), epoch_ms(), uid, path);
		if (reason) {
			fprintf(msg_fp, ",\"reason\":");
			json_str(reason);
		} else {
			fprintf(msg_fp, ",\"handshake_ms\":%ld", agent_transport_handshake_ms(t));
		}
		fprintf(msg_fp, "}\n");
	} else if (reason) {
		fprintf(msg_fp, "connection with %s closed: %s\n", uid, reason);
	} else {
		fprintf(msg_fp, "secure connection with %s via %s (QUIC, TLS 1.3, identity key pinned; handshake %ld ms)\n",
		        uid, path, agent_transport_handshake_ms(t));
	}
	fflush(msg_fp);
}

/* ---------------------------------------------------------------- applications */

static session *
session_of(agent *a, agent_transport *t)
{
	flow *f = a->cmd;
	size_t i;

	for (i = 0; i < MAX_SESSIONS; i++)
		if (f->sessions[i] && f->sessions[i]->t == t)
			return f->sessions[i];
	return NULL;
}

static void
session_end(agent *a, agent_transport *t)
{
	flow *f = a->cmd;
	size_t i;

	for (i = 0; i < MAX_SESSIONS; i++) {
		if (f->sessions[i] && f->sessions[i]->t == t) {
			agent_apps_free(f->sessions[i]->apps);
			free(f->sessions[i]);
			f->sessions[i] = NULL;
		}
	}
}

/* agent_app_io over a transport: the applications never see QUIC. */
static struct bufferevent *
io_open_stream(void *ctx)
{
	return agent_transport_open_stream(ctx);
}

static int
io_send_datagram(void *ctx, const uint8_t *p, size_t len)
{
	return agent_transport_send_datagram(ctx, p, len);
}

/* connect: the files are dealt with (no forward keeps the connection in
 * use).  The transport closes gracefully first, so that the last
 * acknowledgements and the close reach the peer; on_closed ends the
 * command with this code. */
static void
apps_finished(void *arg, int exit_code)
{
	session *s = arg;
	agent *a = s->a;
	flow *f = a->cmd;

	f->apps_done = 1;
	f->apps_code = exit_code;
	agent_transport_close(s->t);
}

static void
connect_pipe_done(agent_pipe *p, int ok, void *arg)
{
	agent *a = arg;
	flow *f = a->cmd;
	agent_transport *t = f->link ? transport_of(a, f->link) : NULL;

	f->pipe_ok = ok;
	agent_pipe_free(p);
	f->pipe = NULL;
	if (t)
		agent_transport_close(t);     /* on_closed ends the command */
	else
		agent_finish(a, ok ? AGENT_EXIT_OK : AGENT_EXIT_LOST);
}

static void
listen_pipe_done(agent_pipe *p, int ok, void *arg)
{
	agent *a = arg;
	flow *f = a->cmd;
	size_t i;

	for (i = 0; i < MAX_PIPES; i++)
		if (f->pipes[i] == p)
			f->pipes[i] = NULL;
	agent_pipe_free(p);
}

/* Runs CMD with the stream on its stdin and stdout (a socketpair).  A
 * plain "prog arg ..." is exec'd directly; anything a shell would
 * interpret goes through /bin/sh -c.  MAILPUNCH_PEER holds the peer's
 * user ID. */
static int
spawn(const char *cmd, const char *peer_uid)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		char *argv[64], copy[4096], *tok, *save = NULL;
		size_t n = 0;

		dup2(sv[1], STDIN_FILENO);
		dup2(sv[1], STDOUT_FILENO);
		signal(SIGPIPE, SIG_DFL);
		setenv("MAILPUNCH_PEER", peer_uid, 1);
		if (strpbrk(cmd, "|&;<>()$`\\\"'*?[]#~=%{}\n") || strlen(cmd) >= sizeof copy) {
			execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
			_exit(127);
		}
		snprintf(copy, sizeof copy, "%s", cmd);
		for (tok = strtok_r(copy, " \t", &save); tok && n < 63; tok = strtok_r(NULL, " \t", &save))
			argv[n++] = tok;
		argv[n] = NULL;
		if (n)
			execvp(argv[0], argv);
		_exit(127);
	}
	close(sv[1]);
	return sv[0];
}

/* listen: a PIPE stream (its header read off by the app server) goes to
 * stdout, the first one also gets stdin, or to a fresh --exec CMD. */
static void
listen_on_pipe(void *arg, struct bufferevent *bev)
{
	session *s = arg;
	agent *a = s->a;
	flow *f = a->cmd;
	char uid[MP_UID_TEXT_LEN + 1];
	size_t i;
	int in = -1, out = STDOUT_FILENO;

	for (i = 0; i < MAX_PIPES && f->pipes[i]; i++)
		;
	if (i == MAX_PIPES) {
		bufferevent_free(bev);          /* not taken: the peer sees a reset */
		return;
	}
	uid_of(agent_link_peer(agent_transport_link(s->t)), uid);
	if (f->exec_cmd) {
		if ((in = out = spawn(f->exec_cmd, uid)) < 0) {
			agent_say(a, "cannot run %s: %s", f->exec_cmd, strerror(errno));
			bufferevent_free(bev);
			return;
		}
	} else if (!f->stdin_taken) {
		/* like nc -l: our stdin goes to the first stream */
		f->stdin_taken = 1;
		in = STDIN_FILENO;
	}
	f->pipes[i] = agent_pipe_new(a->base, bev, in, out, listen_pipe_done, a);
}

/* The applications for a connection that just became ready: listen
 * serves (files, forwards, pipes), connect runs what it was asked for. */
static int
session_start(agent *a, agent_transport *t, int connect_side)
{
	flow *f = a->cmd;
	char err[512];
	size_t i;
	session *s;

	for (i = 0; i < MAX_SESSIONS && f->sessions[i]; i++)
		;
	if (i == MAX_SESSIONS || !(s = calloc(1, sizeof *s))) {
		agent_say(a, "too many connections: this one serves nothing");
		return MP_ERR_NOMEM;
	}
	s->a = a;
	s->t = t;
	{
		agent_app_io io = { a->base, io_open_stream, io_send_datagram, t };
		agent_apps_hooks h = { a->json, connect_side ? apps_finished : NULL,
		                       connect_side ? NULL : listen_on_pipe, s };

		s->apps = agent_apps_start(&f->apps, connect_side, &io, &h, err, sizeof err);
	}
	if (!s->apps) {
		agent_say(a, "%s", err);
		if (a->json) {
			fprintf(msg_fp, "{\"event\":\"apps_failed\",\"ms\":%ld,\"message\":", ms_since_start());
			json_str(err);
			fprintf(msg_fp, "}\n");
			fflush(msg_fp);
		}
		free(s);
		return MP_ERR_INVAL;
	}
	f->sessions[i] = s;
	return MP_OK;
}

static void
tr_ready(agent_transport *t, void *arg)
{
	agent *a = arg;
	flow *f = a->cmd;
	struct bufferevent *bev;

	say_transport(a, t, "transport_ready", NULL);
	if (agent_transport_link(t) != f->link) {
		/* listen: whatever streams and datagrams the peer sends */
		if (session_start(a, t, 0) != MP_OK)
			agent_transport_close(t);
		return;
	}
	if (agent_app_opts_any(&f->apps)) {
		/* connect --send / --forward: the applications, no pipe */
		if (session_start(a, t, 1) != MP_OK) {
			f->apps_done = 1;
			f->apps_code = AGENT_EXIT_FAILURE;
			agent_transport_close(t);
		}
		return;
	}
	/* connect, invite: stdin to the peer, the peer to stdout */
	if (!(bev = agent_transport_open_stream(t)) || agent_app_write_header(bev, MP_APP_PIPE) != MP_OK ||
	    !(f->pipe = agent_pipe_new(a->base, bev, STDIN_FILENO, STDOUT_FILENO, connect_pipe_done, a))) {
		if (bev && !f->pipe)
			bufferevent_free(bev);
		agent_say(a, "cannot open a stream");
		agent_transport_close(t);
	}
}

static void
tr_stream(agent_transport *t, struct bufferevent *bev, void *arg)
{
	agent *a = arg;
	session *s = session_of(a, t);

	if (s)
		agent_apps_on_stream(s->apps, bev);
	else
		bufferevent_free(bev);          /* not taken: the peer sees a reset */
}

static void
tr_datagram(agent_transport *t, const uint8_t *p, size_t len, void *arg)
{
	agent *a = arg;
	session *s = session_of(a, t);

	if (s)
		agent_apps_on_datagram(s->apps, p, len);
}

static void
tr_closed(agent_transport *t, agent_transport_end end, const char *reason, void *arg)
{
	agent *a = arg;
	flow *f = a->cmd;
	agent_link *l = agent_transport_link(t);
	int code;

	say_transport(a, t, "transport_closed", reason);
	/* the applications let go of their streams before the transport */
	session_end(a, t);
	agent_transport_free(t);
	if (l != f->link) {
		agent_link_free(l);
		write_status(a);
		return;
	}
	switch (end) {
	case AGENT_TRANSPORT_CLOSED:
	case AGENT_TRANSPORT_PEER_CLOSED:
		if (f->apps_done)
			code = f->apps_code;
		else if (agent_app_opts_any(&f->apps))
			code = AGENT_EXIT_LOST;
		else
			code = !f->pipe && f->pipe_ok ? AGENT_EXIT_OK : AGENT_EXIT_LOST;
		break;
	case AGENT_TRANSPORT_WRONG_KEY:
	case AGENT_TRANSPORT_HANDSHAKE:
		code = AGENT_EXIT_PEERKEY;
		break;
	case AGENT_TRANSPORT_TIMEOUT:
		code = AGENT_EXIT_LOST;
		break;
	default:
		code = AGENT_EXIT_FAILURE;
	}
	agent_pipe_free(f->pipe);
	f->pipe = NULL;
	agent_link_free(l);
	f->link = NULL;
	agent_finish(a, code);
}

static void
on_link(agent *a, agent_link *l, int established)
{
	flow *f = a->cmd;
	agent_transport_hooks h = { tr_ready, tr_stream, tr_datagram, tr_closed, a };
	agent_transport_opts o = { f->idle_ms, 0 };

	say_event(a, "established", l, NULL);
	write_status(a);
	if (f->link == l && f->attempt_timer)
		event_del(f->attempt_timer);
	/* the link proved both identity keys; QUIC now runs over its path */
	if (!transport_of(a, l) && !agent_transport_new(a, l, &o, &h)) {
		agent_say(a, "cannot start the QUIC transport");
		if (f->link == l)
			agent_finish(a, AGENT_EXIT_FAILURE);
	}
}

static void
child_exited(evutil_socket_t sig, short what, void *arg)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
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
	agent_link_set_route(f->link, f->via_host, direct_to);
	mp_pubid_uid(peer, &f->link_uid);
	uid_of(peer, uid);
	agent_say(a, "connecting to %s", uid);
	if (a->json)
		fprintf(msg_fp, "{\"event\":\"signal\",\"ms\":%ld,\"epoch_ms\":%lld,\"peer\":\"%s\"}\n",
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
	if (sig->u.signal.kind == RANGE) {
		/* the peer's NAT measurements for an attempt under way */
		mp_range r;

		if (sig->u.signal.payload_len < MP_PUNCH_CONN_ID_LEN ||
		    mp_range_decode(sig->u.signal.payload + MP_PUNCH_CONN_ID_LEN,
		                    sig->u.signal.payload_len - MP_PUNCH_CONN_ID_LEN, &r) != MP_OK) {
			mp_log(MP_LOG_NOTICE, "range signal from %s: malformed payload", uid);
			return;
		}
		if ((l = agent_link_by_conn_id(a, sig->u.signal.payload)) &&
		    memcmp(agent_link_peer(l), &sig->sender, sizeof sig->sender) == 0)
			agent_link_on_range(l, &r);
		return;
	}
	if (parse_payload(sig, &conn_id, &secret, reply_addr) != MP_OK) {
		mp_log(MP_LOG_NOTICE, "signal from %s: malformed payload", uid);
		return;
	}
	if (sig->u.signal.kind == ANSWER) {
		/* the peer's fresh endpoints for our attempt */
		if (f->link && memcmp(agent_link_peer(f->link), &sig->sender, sizeof sig->sender) == 0)
			agent_link_start_plan(f->link, &sig->u.signal.ep);
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
		fprintf(msg_fp, "{\"event\":\"offer\",\"ms\":%ld,\"epoch_ms\":%lld,\"peer\":\"%s\",\"direct\":%s}\n",
		       ms_since_start(), epoch_ms(), uid, direct ? "true" : "false");
	fflush(msg_fp);
	if (!(l = agent_link_new(a, &sig->sender, 0, conn_id, secret)))
		return;
	agent_link_set_route(l, direct ? NULL : from_addr, direct ? (reply_addr[0] ? reply_addr : from_addr) : NULL);
	agent_link_start_plan(l, &sig->u.signal.ep);
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
	fprintf(fp, "usage: %s [-c FILE] [--json] [--idle-timeout SEC] COMMAND [ARG] [APP OPTIONS]\n"
	            "commands: id, register, connect [PEER], listen [--exec CMD], invite ADDRESS, status, nat\n"
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
	a->hooks.send_signal = send_link_signal;
	if (agent_udp_open(a, err, sizeof err) != MP_OK) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return AGENT_EXIT_FAILURE;
	}
	sint = evsignal_new(a->base, SIGINT, stop_signal, a);
	sterm = evsignal_new(a->base, SIGTERM, stop_signal, a);
	event_add(sint, NULL);
	event_add(sterm, NULL);
	if (f->exec_cmd && (f->sigchld = evsignal_new(a->base, SIGCHLD, child_exited, a)))
		event_add(f->sigchld, NULL);
	if (agent_gather_with_nat(a, gathered) != MP_OK) {
		fprintf(stderr, "%s: cannot gather endpoints\n", progname);
		a->exit_code = AGENT_EXIT_FAILURE;
	} else {
		event_base_dispatch(a->base);
	}
	/* the applications let go of their streams first; then the peers
	 * hear CONNECTION_CLOSE: they need not wait for a timeout */
	{
		size_t i;

		for (i = 0; i < MAX_SESSIONS; i++) {
			if (f->sessions[i]) {
				agent_apps_free(f->sessions[i]->apps);
				free(f->sessions[i]);
				f->sessions[i] = NULL;
			}
		}
	}
	while (a->ntransports)
		agent_transport_free(a->transports[0]);
	while (a->nlinks)
		agent_link_free(a->links[0]);
	agent_nat_stop(a);
	agent_inbox_stop(a);
	agent_udp_close(a);
	if (f->sigchld)
		event_free(f->sigchld);
	{
		size_t i;

		for (i = 0; i < MAX_PIPES; i++)
			agent_pipe_free(f->pipes[i]);
		agent_pipe_free(f->pipe);
	}
	if (f->attempt_timer)
		event_free(f->attempt_timer);
	if (f->keepalive_timer)
		event_free(f->keepalive_timer);
	if (f->rereg_timer)
		event_free(f->rereg_timer);
	if (a->deadline)
		event_free(a->deadline);
	event_free(sint);
	event_free(sterm);
	return a->exit_code;
}

/* One option of the agent's own (not an application's); -1 to go on,
 * else an exit code. */
static int
take_option(int c, agent *a, flow *f, const char **config)
{
	switch (c) {
	case 'c': *config = optarg; return -1;
	case 'e': f->exec_cmd = optarg; return -1;
	case 'i': {
		char *end;
		unsigned long sec = strtoul(optarg, &end, 10);

		if (*end || sec < 1 || sec > 600) {
			fprintf(stderr, "%s: --idle-timeout wants 1..600 seconds\n", progname);
			return AGENT_EXIT_USAGE;
		}
		f->idle_ms = (unsigned)sec * 1000;
		return -1;
	}
	case 'j': a->json = 1; return -1;
	case 'h': usage(stdout); return AGENT_EXIT_OK;
	}
	usage(stderr);
	return AGENT_EXIT_USAGE;
}

/* Options before the command; -1 to go on, else an exit code. */
static int
parse_options(int argc, char **argv, agent *a, flow *f, const char **config)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "exec", required_argument, NULL, 'e' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, "+c:jhe:i:", longopts, NULL)) != -1)
		if ((rc = take_option(c, a, f, config)) >= 0)
			return rc;
	return -1;
}

/* What follows COMMAND: its argument (PEER, ADDRESS), the agent's and
 * the applications' options, and for connect more files after --send
 * FILE.  Options may come in any order.  -1 to go on, else an exit code. */
static int
parse_after_command(int argc, char **argv, char *argv0, agent *a, flow *f, const char **config)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "exec", required_argument, NULL, 'e' },
		{ "idle-timeout", required_argument, NULL, 'i' },
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
	int c, i, n, rc, connect = !strcmp(f->command, "connect");

	if (!(sub = calloc((size_t)argc + 2, sizeof *sub)))
		return AGENT_EXIT_FAILURE;
	sub[0] = argv0;
	for (i = 0; i < argc; i++)
		sub[i + 1] = argv[i];
	n = argc + 1;
	optind = 0;   /* glibc: start over, on this vector */
	while ((c = getopt_long(n, sub, "c:jhe:i:", longopts, NULL)) != -1) {
		if (c >= AGENT_OPT_SEND && c <= AGENT_OPT_ALLOW_FORWARD_UDP) {
			if (agent_app_opts_add(&f->apps, c, optarg, err, sizeof err) != MP_OK) {
				fprintf(stderr, "%s: %s\n", progname, err);
				free(sub);
				return AGENT_EXIT_USAGE;
			}
		} else if ((rc = take_option(c, a, f, config)) >= 0) {
			free(sub);
			return rc;
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
	if (c != n || (!strcmp(f->command, "invite") && !f->invite_to) ||
	    (f->exec_cmd && strcmp(f->command, "listen"))) {
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
	return -1;
}

int
main(int argc, char **argv)
{
	char pathbuf[4096], err[1024];
	const char *config = NULL, *cmd;
	agent a;
	flow f;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &started);
	/* a server may close while we write: that is an error, not a death */
	signal(SIGPIPE, SIG_IGN);
	memset(&a, 0, sizeof a);
	memset(&f, 0, sizeof f);
	a.udp_fd = -1;
	a.udp6_fd = -1;
	msg_fp = stdout;
	if ((rc = parse_options(argc, argv, &a, &f, &config)) >= 0)
		return rc;
	if (optind >= argc) {
		usage(stderr);
		return AGENT_EXIT_USAGE;
	}
	cmd = argv[optind++];
	f.command = cmd;
	/* options may follow the command too: listen --exec CMD, --send ... */
	rc = parse_after_command(argc - optind, argv + optind, argv[0], &a, &f, &config);
	if (rc >= 0) {
		agent_app_opts_clear(&f.apps);
		return rc;
	}
	/* stdout carries the stream: messages and events go to stderr.
	 * connect with applications has no pipe, so its stdout is free. */
	if ((!strcmp(cmd, "connect") && !agent_app_opts_any(&f.apps)) || !strcmp(cmd, "invite") ||
	    (!strcmp(cmd, "listen") && !f.exec_cmd))
		msg_fp = stderr;
	agent_app_set_output(msg_fp);
	if (!config)
		config = agent_settings_default_path(pathbuf, sizeof pathbuf);
	if (agent_settings_load(config, &a.cfg, err, sizeof err) != MP_OK) {
		fprintf(stderr, "%s: %s\n", progname, err);
		agent_app_opts_clear(&f.apps);
		return AGENT_EXIT_CONFIG;
	}
	mp_log_open(a.cfg->log_dest, progname, (mp_log_level)a.cfg->log_level);
	/* nat needs no identity: it only asks STUN servers */
	if (!strcmp(cmd, "nat")) {
		rc = agent_cmd_nat(&a);
		agent_settings_free(a.cfg);
		mp_log_close();
		return rc;
	}
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
				/* connect --send: the files are hashed while the
				 * rendezvous runs, not after it */
				agent_file_prehash *ph = f.apps.nsend && !strcmp(cmd, "connect")
					? agent_file_prehash_new(a.base, f.apps.send, f.apps.nsend)
					: NULL;

				f.apps.prehash = ph;
				rc = run_flow(&a, &f);
				agent_file_prehash_free(ph);
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
