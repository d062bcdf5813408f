/*
 * app.h - the applications the agent runs over its transport to a peer:
 * file transfer (app_file*.c), TCP and UDP forwarding (app_forward*.c),
 * the listen side's dispatcher of incoming streams (app_server.c), the
 * progress display (app_progress.c), stream helpers (app_stream.c) and
 * the command line's view of them (app_cli.h).
 * Wire formats: include/mailpunch/app.h and docs/PROTOCOL.md.
 *
 * Interface: a stream is one end of a libevent bufferevent, owned by
 * the application once handed over (from agent_app_io.open_stream on the
 * opening side, from agent_app_server_on_stream on the other).  Closing
 * a stream is agent_app_stream_close(): it hands pending bytes over and
 * signals end of stream (bufferevent_flush(BEV_FINISHED)), then frees.
 * Datagrams go out through agent_app_io.send_datagram and come in
 * through the objects' on_datagram functions.  The transport (or a test)
 * fills agent_app_io; nothing here knows which it is.
 * Errors: constructors return NULL and write a message into err;
 * problems of a running transfer are logged (mp_log) and reported through
 * the objects' callbacks and status fields.
 */
#ifndef MAILPUNCH_AGENT_APP_H
#define MAILPUNCH_AGENT_APP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "mailpunch/app.h"

typedef struct agent_app_io {
	struct event_base *base;
	/* A new stream to the peer, or NULL when none can be opened now. */
	struct bufferevent *(*open_stream)(void *ctx);
	/* One unreliable datagram to the peer: MP_OK or an mp_err. */
	int (*send_datagram)(void *ctx, const uint8_t *p, size_t len);
	void *ctx;
} agent_app_io;

/* ---------------------------------------------------------- app_stream.c */
#define AGENT_APP_STREAM_HIGH (1024 * 1024)   /* stop producing above this */
#define AGENT_APP_STREAM_LOW (256 * 1024)     /* resume below this */

void agent_app_stream_close(struct bufferevent *bev);
/* Queues the stream header. */
int agent_app_write_header(struct bufferevent *bev, int type);
/* Queues a frame head and payload. */
int agent_app_write_frame(struct bufferevent *bev, uint8_t type, const void *p, size_t len);
/* Looks at the input: 1 when a whole frame is there (type and payload
 * length set, nothing removed), 0 when more bytes are needed, an mp_err
 * when the peer broke the framing. */
int agent_app_peek_frame(struct evbuffer *in, uint8_t *type, uint32_t *len);
/* Copies a small frame's payload (at most cap bytes) out and drains the
 * frame; MP_ERR_TOOBIG when it is larger than cap. */
int agent_app_take_frame(struct evbuffer *in, uint32_t len, uint8_t *buf, size_t cap);

/* -------------------------------------------------------- app_progress.c */
/* Where file events and JSON progress go (default stdout). */
void agent_app_set_output(FILE *fp);
FILE *agent_app_output(void);

enum agent_progress_mode {
	AGENT_PROGRESS_NONE = 0,
	AGENT_PROGRESS_AUTO,      /* a bar on stderr if it is a terminal, else nothing */
	AGENT_PROGRESS_JSON,      /* one JSON event a second on stdout */
};

typedef struct agent_progress {
	int mode;                 /* resolved: NONE, a bar, or JSON */
	FILE *out;
	char name[MP_APP_NAME_MAX + 1];
	const char *verb;         /* "send" / "receive" */
	uint64_t total, start, done;
	double t0, last;
} agent_progress;

void agent_progress_begin(agent_progress *p, int mode, const char *verb, const char *name,
                          uint64_t total, uint64_t start);
void agent_progress_update(agent_progress *p, uint64_t done);
/* Final line ("ok", "BAD", "broken", ...). */
void agent_progress_end(agent_progress *p, const char *status);

/* ------------------------------------------------------------ app_file.c */
/* What happened to one file. */
enum agent_file_status {
	AGENT_FILE_PENDING = 0,
	AGENT_FILE_OK,
	AGENT_FILE_REFUSED,       /* the receiver said no (see refuse_reason) */
	AGENT_FILE_BAD,           /* arrived, but the SHA-256 did not match */
	AGENT_FILE_BROKEN,        /* the stream ended before the end: resumable */
	AGENT_FILE_LOCAL,         /* could not read the local file / open a stream */
};
const char *agent_file_status_name(int status);

typedef struct agent_file_sender agent_file_sender;
/* Called once, when every file has been dealt with (or the transfer
 * cannot go on); failed = how many files did not arrive OK. */
typedef void agent_file_done_fn(void *arg, size_t failed);

agent_file_sender *agent_file_sender_new(const agent_app_io *io, char *const *paths, size_t n,
                                         int progress_mode, agent_file_done_fn *done, void *arg,
                                         char *err, size_t errlen);
/* Also tell fn about each file as it is done with (name, status). */
void agent_file_sender_on_file(agent_file_sender *s, void (*fn)(void *arg, const char *name,
                                                                 int status, int reason),
                               void *arg);
/* Files go one after the other, one stream each. */
int agent_file_sender_start(agent_file_sender *s);
/* Hashes the files to send while the connection is being set up
 * (app_file_prehash.c); a sender given one offers such a file at once. */
typedef struct agent_file_prehash agent_file_prehash;
enum { AGENT_PREHASH_NONE, AGENT_PREHASH_BUSY, AGENT_PREHASH_DONE };
agent_file_prehash *agent_file_prehash_new(struct event_base *base, char *const *paths, size_t n);
int agent_file_prehash_lookup(const agent_file_prehash *p, const char *path, const struct stat *st,
                              uint8_t sha256[MP_APP_SHA256_LEN]);
void agent_file_prehash_free(agent_file_prehash *p);
void agent_file_sender_use_prehash(agent_file_sender *s, const agent_file_prehash *p);
int agent_file_sender_status(const agent_file_sender *s, size_t i, int *refuse_reason);
void agent_file_sender_free(agent_file_sender *s);

typedef struct agent_file_receiver agent_file_receiver;
/* Called when a stream's file is done with, for whatever reason. */
typedef void agent_file_event_fn(void *arg, const char *name, int status);

agent_file_receiver *agent_file_receiver_new(struct event_base *base, const char *dir, int overwrite,
                                             int progress_mode, agent_file_event_fn *on_file,
                                             void *arg, char *err, size_t errlen);
/* Takes a FILE stream whose header has been read off. */
void agent_file_receiver_take(agent_file_receiver *r, struct bufferevent *bev);
void agent_file_receiver_free(agent_file_receiver *r);

/* --------------------------------------------------------- app_forward.c */
typedef struct agent_allow {
	char host[MP_APP_HOST_MAX + 1];
	uint16_t port;
} agent_allow;

/* Connect side of TCP forwarding: listens on 127.0.0.1:localport (0:
 * any free port, see agent_fwd_tcp_port) and opens one stream a TCP
 * connection. */
typedef struct agent_fwd_tcp agent_fwd_tcp;
agent_fwd_tcp *agent_fwd_tcp_new(const agent_app_io *io, uint16_t localport, const char *host,
                                 uint16_t port, char *err, size_t errlen);
uint16_t agent_fwd_tcp_port(const agent_fwd_tcp *f);
/* Connections refused by the peer so far, by enum mp_app_opened code. */
unsigned agent_fwd_tcp_refused(const agent_fwd_tcp *f, int code);
void agent_fwd_tcp_free(agent_fwd_tcp *f);

/* Listen side of TCP forwarding: serves FORWARD_TCP streams. */
typedef struct agent_fwd_tcp_server agent_fwd_tcp_server;
agent_fwd_tcp_server *agent_fwd_tcp_server_new(struct event_base *base, const agent_allow *allow,
                                               size_t nallow);
void agent_fwd_tcp_server_take(agent_fwd_tcp_server *s, struct bufferevent *bev);
void agent_fwd_tcp_server_free(agent_fwd_tcp_server *s);

/* UDP forwarding, connect side: a UDP socket on 127.0.0.1:localport; each
 * local source address is one flow. */
typedef struct agent_fwd_udp agent_fwd_udp;
agent_fwd_udp *agent_fwd_udp_new(const agent_app_io *io, uint16_t localport, const char *host,
                                 uint16_t port, char *err, size_t errlen);
uint16_t agent_fwd_udp_port(const agent_fwd_udp *f);
void agent_fwd_udp_on_datagram(agent_fwd_udp *f, const uint8_t *p, size_t len);
unsigned agent_fwd_udp_refused(const agent_fwd_udp *f);
void agent_fwd_udp_free(agent_fwd_udp *f);

/* UDP forwarding, listen side: one connected UDP socket a flow, dropped
 * after idle_ms without traffic. */
typedef struct agent_fwd_udp_server agent_fwd_udp_server;
agent_fwd_udp_server *agent_fwd_udp_server_new(const agent_app_io *io, const agent_allow *allow,
                                               size_t nallow, unsigned idle_ms);
void agent_fwd_udp_server_on_datagram(agent_fwd_udp_server *s, const uint8_t *p, size_t len);
size_t agent_fwd_udp_server_flows(const agent_fwd_udp_server *s);
void agent_fwd_udp_server_free(agent_fwd_udp_server *s);

/* ---------------------------------------------------------- app_server.c */
/* The listen side: what it accepts. */
typedef struct agent_app_server_cfg {
	const char *receive_dir;          /* NULL: FILE streams refused */
	int overwrite;
	int progress_mode;
	const agent_allow *allow_tcp;
	size_t nallow_tcp;
	const agent_allow *allow_udp;
	size_t nallow_udp;
	unsigned udp_idle_ms;             /* 0: the default (60 s) */
	agent_file_event_fn *on_file;
	void *arg;
	/* PIPE streams (header read off, raw bytes follow) go here; NULL:
	 * refused.  The callee owns bev. */
	void (*on_pipe)(void *arg, struct bufferevent *bev);
	void *pipe_arg;
} agent_app_server_cfg;

typedef struct agent_app_server agent_app_server;
agent_app_server *agent_app_server_new(const agent_app_io *io, const agent_app_server_cfg *cfg,
                                       char *err, size_t errlen);
/* The transport's hook for a stream the peer opened: takes ownership. */
void agent_app_server_on_stream(agent_app_server *s, struct bufferevent *bev);
/* The transport's hook for a datagram from the peer. */
void agent_app_server_on_datagram(agent_app_server *s, const uint8_t *p, size_t len);
/* UDP flows open now (for tests and status). */
size_t agent_app_server_udp_flows(const agent_app_server *s);
void agent_app_server_free(agent_app_server *s);

#endif
