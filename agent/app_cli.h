/*
 * app_cli.h - the applications the command line asks for, and a running
 * set of them for one connection (agent/app_cli.c).
 *
 * Interface: main.c hands each application option to agent_app_opts_add
 * as it parses, checks the lot with agent_app_opts_check, and when a
 * connection to the peer is up calls agent_apps_start with the
 * transport's agent_app_io; the transport's stream and datagram hooks go
 * to agent_apps_on_stream / agent_apps_on_datagram.
 * Errors: MP_ERR_SYNTAX / NULL with a message in err.
 */
#ifndef MAILPUNCH_AGENT_APP_CLI_H
#define MAILPUNCH_AGENT_APP_CLI_H

#include "app.h"

/* getopt_long values of the application options (above any short option). */
enum {
	AGENT_OPT_SEND = 0x100,
	AGENT_OPT_RECEIVE,
	AGENT_OPT_OVERWRITE,
	AGENT_OPT_FORWARD,
	AGENT_OPT_FORWARD_UDP,
	AGENT_OPT_ALLOW_FORWARD,
	AGENT_OPT_ALLOW_FORWARD_UDP,
};

typedef struct agent_app_fwd {
	uint16_t localport, port;
	char host[MP_APP_HOST_MAX + 1];
} agent_app_fwd;

typedef struct agent_app_opts {
	char **send;                 /* borrowed from argv */
	size_t nsend;
	const char *receive_dir;
	int overwrite;
	agent_app_fwd *fwd_tcp, *fwd_udp;
	size_t nfwd_tcp, nfwd_udp;
	agent_allow *allow_tcp, *allow_udp;
	size_t nallow_tcp, nallow_udp;
	const agent_file_prehash *prehash;   /* borrowed: --send files hashed early */
} agent_app_opts;

int agent_app_opts_add(agent_app_opts *o, int opt, const char *arg, char *err, size_t errlen);
/* Options of the other side's command are refused. */
int agent_app_opts_check(const agent_app_opts *o, int connect_side, char *err, size_t errlen);
int agent_app_opts_any(const agent_app_opts *o);
void agent_app_opts_clear(agent_app_opts *o);

typedef struct agent_apps agent_apps;
/* Called once the connect side's files are all dealt with (and no
 * forward keeps the connection in use): exit_code for the command. */
typedef void agent_apps_finished_fn(void *arg, int exit_code);

/* What a session tells its owner (main.c). */
typedef struct agent_apps_hooks {
	int json;                          /* events as JSON lines */
	agent_apps_finished_fn *on_finished;
	/* listen: PIPE streams, header read off; the callee owns bev.
	 * NULL: refused. */
	void (*on_pipe)(void *arg, struct bufferevent *bev);
	void *arg;
} agent_apps_hooks;

agent_apps *agent_apps_start(const agent_app_opts *o, int connect_side, const agent_app_io *io,
                             const agent_apps_hooks *hooks, char *err, size_t errlen);
void agent_apps_on_stream(agent_apps *s, struct bufferevent *bev);
void agent_apps_on_datagram(agent_apps *s, const uint8_t *p, size_t len);
void agent_apps_free(agent_apps *s);

#endif
