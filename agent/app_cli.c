/*
 * app_cli.c - the applications as the command line asks for them:
 * collects --send, --receive, --overwrite, --forward, --forward-udp,
 * --allow-forward and --allow-forward-udp into an agent_app_opts, and
 * runs them for one connection (agent_apps): on the connect side the
 * file sender and the forwarders, on the listen side the app server.
 *
 * Interface: agent/app_cli.h.  Errors: agent_app_opts_add() and
 * agent_apps_start() write a message into err and return MP_ERR_SYNTAX /
 * NULL; a running session reports its end through on_finished with an
 * exit code (AGENT_EXIT_OK when every file arrived).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "app_cli.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"

static int
grow(void **arr, size_t n, size_t size)
{
	void *p = realloc(*arr, (n + 1) * size);

	if (!p)
		return MP_ERR_NOMEM;
	*arr = p;
	return MP_OK;
}

static int
add_forward(agent_app_fwd **arr, size_t *n, const char *arg, const char *opt, char *err,
            size_t errlen)
{
	agent_app_fwd fw;

	if (mp_app_parse_forward(arg, &fw.localport, fw.host, &fw.port) != MP_OK) {
		snprintf(err, errlen, "%s %s: expected LOCALPORT:HOST:PORT, HOST numeric or localhost",
		         opt, arg);
		return MP_ERR_SYNTAX;
	}
	if (grow((void **)arr, *n, sizeof **arr) != MP_OK) {
		snprintf(err, errlen, "out of memory");
		return MP_ERR_NOMEM;
	}
	(*arr)[(*n)++] = fw;
	return MP_OK;
}

static int
add_allow(agent_allow **arr, size_t *n, const char *arg, const char *opt, char *err, size_t errlen)
{
	agent_allow al;

	if (mp_app_parse_hostport(arg, al.host, &al.port) != MP_OK) {
		snprintf(err, errlen, "%s %s: expected HOST:PORT, HOST numeric or localhost", opt, arg);
		return MP_ERR_SYNTAX;
	}
	if (grow((void **)arr, *n, sizeof **arr) != MP_OK) {
		snprintf(err, errlen, "out of memory");
		return MP_ERR_NOMEM;
	}
	(*arr)[(*n)++] = al;
	return MP_OK;
}

int
agent_app_opts_add(agent_app_opts *o, int opt, const char *arg, char *err, size_t errlen)
{
	switch (opt) {
	case AGENT_OPT_SEND:
		if (grow((void **)&o->send, o->nsend, sizeof *o->send) != MP_OK) {
			snprintf(err, errlen, "out of memory");
			return MP_ERR_NOMEM;
		}
		o->send[o->nsend++] = (char *)arg;
		return MP_OK;
	case AGENT_OPT_RECEIVE:
		o->receive_dir = arg;
		return MP_OK;
	case AGENT_OPT_OVERWRITE:
		o->overwrite = 1;
		return MP_OK;
	case AGENT_OPT_FORWARD:
		return add_forward(&o->fwd_tcp, &o->nfwd_tcp, arg, "--forward", err, errlen);
	case AGENT_OPT_FORWARD_UDP:
		return add_forward(&o->fwd_udp, &o->nfwd_udp, arg, "--forward-udp", err, errlen);
	case AGENT_OPT_ALLOW_FORWARD:
		return add_allow(&o->allow_tcp, &o->nallow_tcp, arg, "--allow-forward", err, errlen);
	case AGENT_OPT_ALLOW_FORWARD_UDP:
		return add_allow(&o->allow_udp, &o->nallow_udp, arg, "--allow-forward-udp", err, errlen);
	}
	snprintf(err, errlen, "unknown application option");
	return MP_ERR_INVAL;
}

int
agent_app_opts_check(const agent_app_opts *o, int connect_side, char *err, size_t errlen)
{
	if (connect_side && (o->receive_dir || o->overwrite || o->nallow_tcp || o->nallow_udp)) {
		snprintf(err, errlen, "--receive, --overwrite and --allow-forward* belong to listen");
		return MP_ERR_SYNTAX;
	}
	if (!connect_side && (o->nsend || o->nfwd_tcp || o->nfwd_udp)) {
		snprintf(err, errlen, "--send and --forward* belong to connect");
		return MP_ERR_SYNTAX;
	}
	if (o->overwrite && !o->receive_dir) {
		snprintf(err, errlen, "--overwrite needs --receive DIR");
		return MP_ERR_SYNTAX;
	}
	return MP_OK;
}

int
agent_app_opts_any(const agent_app_opts *o)
{
	return o->nsend || o->receive_dir || o->nfwd_tcp || o->nfwd_udp || o->nallow_tcp ||
	       o->nallow_udp;
}

void
agent_app_opts_clear(agent_app_opts *o)
{
	free(o->send);
	free(o->fwd_tcp);
	free(o->fwd_udp);
	free(o->allow_tcp);
	free(o->allow_udp);
	memset(o, 0, sizeof *o);
}

/* ------------------------------------------------------------ a session */

struct agent_apps {
	agent_app_io io;
	agent_file_sender *sender;
	size_t nfiles;
	agent_fwd_tcp **tcp;
	agent_fwd_udp **udp;
	size_t ntcp, nudp;
	agent_app_server *server;
	int json;
	agent_apps_finished_fn *on_finished;
	void *arg;
};

static void
files_done(void *arg, size_t failed)
{
	agent_apps *s = arg;

	mp_log(failed ? MP_LOG_ERR : MP_LOG_INFO, "files: %zu sent, %zu not", s->nfiles - failed,
	       failed);
	/* with forwards running, the connection stays up for them */
	if (!s->ntcp && !s->nudp && s->on_finished)
		s->on_finished(s->arg, failed ? AGENT_EXIT_FAILURE : AGENT_EXIT_OK);
}

/* A file name as a JSON string: it came from a peer (checked, but it may
 * still hold quotes or non-ASCII bytes). */
static void
json_name(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static const char *
refuse_text(int reason)
{
	switch (reason) {
	case MP_REFUSE_EXISTS: return "exists (the peer did not allow overwriting)";
	case MP_REFUSE_BADNAME: return "name refused";
	case MP_REFUSE_NOSPACE: return "no space";
	case MP_REFUSE_IO: return "peer cannot write it";
	case MP_REFUSE_BUSY: return "being received already";
	case MP_REFUSE_NOTOFFERED: return "the peer takes no files (its listen has no --receive)";
	}
	return "refused";
}

static void
file_event(agent_apps *s, const char *verb, const char *name, int status, int reason)
{
	FILE *out = agent_app_output();

	if (s->json) {
		fprintf(out, "{\"event\":\"file_%s\",\"name\":", verb);
		json_name(out, name);
		fprintf(out, ",\"status\":\"%s\"", agent_file_status_name(status));
		if (status == AGENT_FILE_REFUSED)
			fprintf(out, ",\"reason\":%d", reason);
		fprintf(out, "}\n");
	} else if (status == AGENT_FILE_OK) {
		fprintf(out, "%s %s\n", verb, name);
	} else {
		fprintf(out, "%s not %s: %s\n", name, verb,
		        status == AGENT_FILE_REFUSED ? refuse_text(reason) :
		        status == AGENT_FILE_BAD ? "SHA-256 mismatch, dropped" :
		        status == AGENT_FILE_BROKEN ? "connection broken (run again to resume)" :
		        agent_file_status_name(status));
	}
	fflush(out);
}

static void
sent(void *arg, const char *name, int status, int reason)
{
	file_event(arg, "sent", name, status, reason);
}

static void
received(void *arg, const char *name, int status)
{
	file_event(arg, "received", name, status, 0);
}

agent_apps *
agent_apps_start(const agent_app_opts *o, int connect_side, const agent_app_io *io,
                 const agent_apps_hooks *hooks, char *err, size_t errlen)
{
	int json = hooks->json;
	agent_apps *s = calloc(1, sizeof *s);
	size_t i;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->io = *io;
	s->json = json;
	s->on_finished = hooks->on_finished;
	s->arg = hooks->arg;
	if (!connect_side) {
		agent_app_server_cfg cfg = {
			.receive_dir = o->receive_dir, .overwrite = o->overwrite,
			.progress_mode = json ? AGENT_PROGRESS_JSON : AGENT_PROGRESS_AUTO,
			.allow_tcp = o->allow_tcp, .nallow_tcp = o->nallow_tcp,
			.allow_udp = o->allow_udp, .nallow_udp = o->nallow_udp,
			.on_file = received, .arg = s,
			.on_pipe = hooks->on_pipe, .pipe_arg = hooks->arg,
		};
		if (!(s->server = agent_app_server_new(&s->io, &cfg, err, errlen)))
			goto fail;
		return s;
	}
	if ((o->nfwd_tcp && !(s->tcp = calloc(o->nfwd_tcp, sizeof *s->tcp))) ||
	    (o->nfwd_udp && !(s->udp = calloc(o->nfwd_udp, sizeof *s->udp)))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < o->nfwd_tcp; i++, s->ntcp++)
		if (!(s->tcp[i] = agent_fwd_tcp_new(&s->io, o->fwd_tcp[i].localport, o->fwd_tcp[i].host,
		                                    o->fwd_tcp[i].port, err, errlen)))
			goto fail;
	for (i = 0; i < o->nfwd_udp; i++, s->nudp++)
		if (!(s->udp[i] = agent_fwd_udp_new(&s->io, o->fwd_udp[i].localport, o->fwd_udp[i].host,
		                                    o->fwd_udp[i].port, err, errlen)))
			goto fail;
	if (o->nsend) {
		s->nfiles = o->nsend;
		s->sender = agent_file_sender_new(&s->io, o->send, o->nsend,
		                                  json ? AGENT_PROGRESS_JSON : AGENT_PROGRESS_AUTO,
		                                  files_done, s, err, errlen);
		if (!s->sender)
			goto fail;
		agent_file_sender_on_file(s->sender, sent, s);
		agent_file_sender_use_prehash(s->sender, o->prehash);
		agent_file_sender_start(s->sender);
	}
	return s;
fail:
	agent_apps_free(s);
	return NULL;
}

void
agent_apps_on_stream(agent_apps *s, struct bufferevent *bev)
{
	if (s->server)
		agent_app_server_on_stream(s->server, bev);
	else
		agent_app_stream_close(bev);   /* the connect side serves nothing */
}

void
agent_apps_on_datagram(agent_apps *s, const uint8_t *p, size_t len)
{
	size_t i;

	if (s->server) {
		agent_app_server_on_datagram(s->server, p, len);
		return;
	}
	for (i = 0; i < s->nudp; i++)
		agent_fwd_udp_on_datagram(s->udp[i], p, len);
}

void
agent_apps_free(agent_apps *s)
{
	size_t i;

	if (!s)
		return;
	agent_file_sender_free(s->sender);
	for (i = 0; i < s->ntcp; i++)
		agent_fwd_tcp_free(s->tcp[i]);
	for (i = 0; i < s->nudp; i++)
		agent_fwd_udp_free(s->udp[i]);
	free(s->tcp);
	free(s->udp);
	agent_app_server_free(s->server);
	free(s);
}
