/*
 * app_server.c - the listen side's entry point for applications: reads
 * the header of each stream the peer opens and hands the stream to the
 * file receiver, the TCP forwarder or (PIPE) the on_pipe hook; hands
 * datagrams to the UDP forwarder.  A FILE stream without --receive gets
 * REFUSE 6 (not offered); a stream naming another application this side
 * does not offer (PIPE without the hook, unknown) is closed.
 *
 * Interface: agent/app.h (agent_app_server_*).  Errors: the constructor
 * returns NULL with a message; refused streams are logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "app.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"

typedef struct pending pending;
struct pending {
	agent_app_server *s;
	struct bufferevent *bev;
	pending *next, **prevp;
};

struct agent_app_server {
	agent_app_io io;
	agent_file_receiver *files;
	agent_fwd_tcp_server *tcp;
	agent_fwd_udp_server *udp;
	void (*on_pipe)(void *arg, struct bufferevent *bev);
	void *pipe_arg;
	pending *pending;
};

static void
pending_free(pending *p, int close_stream)
{
	if (p->next)
		p->next->prevp = p->prevp;
	*p->prevp = p->next;
	if (close_stream)
		agent_app_stream_close(p->bev);
	free(p);
}

static void
header_read(struct bufferevent *bev, void *arg)
{
	pending *p = arg;
	agent_app_server *s = p->s;
	uint8_t hdr[MP_APP_HDR_LEN];
	int type, rc;

	if (evbuffer_copyout(bufferevent_get_input(bev), hdr, sizeof hdr) < (ev_ssize_t)sizeof hdr)
		return;
	rc = mp_app_header_decode(hdr, sizeof hdr, &type);
	if (rc == MP_OK && type == MP_APP_FILE && s->files) {
		evbuffer_drain(bufferevent_get_input(bev), sizeof hdr);
		pending_free(p, 0);
		agent_file_receiver_take(s->files, bev);
	} else if (rc == MP_OK && type == MP_APP_FORWARD_TCP) {
		evbuffer_drain(bufferevent_get_input(bev), sizeof hdr);
		pending_free(p, 0);
		agent_fwd_tcp_server_take(s->tcp, bev);
	} else if (rc == MP_OK && type == MP_APP_PIPE && s->on_pipe) {
		evbuffer_drain(bufferevent_get_input(bev), sizeof hdr);
		pending_free(p, 0);
		/* back to the transport's defaults: the pipe sets its own */
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		bufferevent_setwatermark(bev, EV_READ, 0, AGENT_APP_STREAM_HIGH);
		s->on_pipe(s->pipe_arg, bev);
	} else if (rc == MP_OK && type == MP_APP_FILE) {
		/* say so: the sender would take a bare close for a broken link */
		uint8_t frame[64];
		size_t n;

		mp_log(MP_LOG_NOTICE, "file stream refused: no --receive");
		if (mp_app_refuse_encode(MP_REFUSE_NOTOFFERED, "no files taken here", frame, sizeof frame,
		                         &n) == MP_OK)
			bufferevent_write(bev, frame, n);
		pending_free(p, 1);
	} else {
		mp_log(MP_LOG_NOTICE, "stream refused: %s",
		       rc != MP_OK ? mp_strerror(rc) : "application not offered here");
		pending_free(p, 1);
	}
}

static void
header_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		pending_free(arg, 1);
}

void
agent_app_server_on_stream(agent_app_server *s, struct bufferevent *bev)
{
	pending *p = calloc(1, sizeof *p);

	if (!p) {
		agent_app_stream_close(bev);
		return;
	}
	p->s = s;
	p->bev = bev;
	p->next = s->pending;
	if (p->next)
		p->next->prevp = &p->next;
	p->prevp = &s->pending;
	s->pending = p;
	bufferevent_setcb(bev, header_read, NULL, header_event, p);
	bufferevent_setwatermark(bev, EV_READ, MP_APP_HDR_LEN, AGENT_APP_STREAM_HIGH);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_input(bev)) >= MP_APP_HDR_LEN)
		header_read(bev, p);
}

void
agent_app_server_on_datagram(agent_app_server *s, const uint8_t *p, size_t len)
{
	agent_fwd_udp_server_on_datagram(s->udp, p, len);
}

size_t
agent_app_server_udp_flows(const agent_app_server *s)
{
	return agent_fwd_udp_server_flows(s->udp);
}

agent_app_server *
agent_app_server_new(const agent_app_io *io, const agent_app_server_cfg *cfg, char *err,
                     size_t errlen)
{
	agent_app_server *s = calloc(1, sizeof *s);

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->io = *io;
	s->on_pipe = cfg->on_pipe;
	s->pipe_arg = cfg->pipe_arg;
	if (cfg->receive_dir &&
	    !(s->files = agent_file_receiver_new(io->base, cfg->receive_dir, cfg->overwrite,
	                                         cfg->progress_mode, cfg->on_file, cfg->arg, err,
	                                         errlen))) {
		free(s);
		return NULL;
	}
	s->tcp = agent_fwd_tcp_server_new(io->base, cfg->allow_tcp, cfg->nallow_tcp);
	s->udp = agent_fwd_udp_server_new(&s->io, cfg->allow_udp, cfg->nallow_udp,
	                                  cfg->udp_idle_ms ? cfg->udp_idle_ms : 60000);
	if (!s->tcp || !s->udp) {
		snprintf(err, errlen, "out of memory");
		agent_app_server_free(s);
		return NULL;
	}
	return s;
}

void
agent_app_server_free(agent_app_server *s)
{
	if (!s)
		return;
	while (s->pending)
		pending_free(s->pending, 1);
	agent_file_receiver_free(s->files);
	agent_fwd_tcp_server_free(s->tcp);
	agent_fwd_udp_server_free(s->udp);
	free(s);
}
