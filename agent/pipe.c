/*
 * pipe.c - a transport stream joined to file descriptors (pipe.h).
 *
 * Backpressure both ways: we read in_fd only while the stream's output
 * holds less than HIGH bytes (its write callback, at HIGH/2, asks for
 * more), and we read the stream only as fast as out_fd takes it.
 * in_fd may be something epoll cannot watch (a regular file,
 * /dev/null): then it is read whenever the stream has room.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "pipe.h"

#define HIGH (256 * 1024)
#define READ_SIZE 65536

struct agent_pipe {
	struct event_base *base;
	struct bufferevent *stream;
	struct bufferevent *sock;       /* socket mode */
	int in_fd, out_fd;
	struct event *in_ev;
	int in_pollable, in_done, out_done, sock_wr_shut, failed, reported;
	unsigned long long sent, received;
	agent_pipe_done done;
	void *arg;
	struct event *done_ev;
};

static void
check_done(agent_pipe *p)
{
	if (!p->reported && (p->failed || (p->in_done && p->out_done)))
		event_active(p->done_ev, 0, 0);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	agent_pipe *p = arg;

	if (p->reported)
		return;
	p->reported = 1;
	p->done(p, !p->failed, p->arg);     /* may free p */
}

static void
finish_sending(agent_pipe *p)
{
	if (p->in_done)
		return;
	p->in_done = 1;
	if (p->in_ev)
		event_del(p->in_ev);
	bufferevent_flush(p->stream, EV_WRITE, BEV_FINISHED);
	check_done(p);
}

/* ---------------------------------------------------------------- fd mode */

static void
want_input(agent_pipe *p)
{
	if (p->in_done || !p->in_ev)
		return;
	if (p->in_pollable)
		event_add(p->in_ev, NULL);
	else
		event_active(p->in_ev, 0, 0);
}

static void
in_readable(evutil_socket_t fd, short what, void *arg)
{
	agent_pipe *p = arg;
	char buf[READ_SIZE];
	ssize_t n;

	if (p->in_done)
		return;
	if (evbuffer_get_length(bufferevent_get_output(p->stream)) >= HIGH) {
		/* the stream's write callback calls us again */
		if (p->in_pollable)
			event_del(p->in_ev);
		return;
	}
	n = read(p->in_fd, buf, sizeof buf);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		finish_sending(p);
		return;
	}
	p->sent += (unsigned long long)n;
	bufferevent_write(p->stream, buf, (size_t)n);
	if (!p->in_pollable)
		event_active(p->in_ev, 0, 0);
}

static int
write_all(int fd, const unsigned char *b, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { fd, POLLOUT, 0 };

			poll(&pfd, 1, 1000);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
stream_to_fd(agent_pipe *p)
{
	struct evbuffer *in = bufferevent_get_input(p->stream);
	size_t len;

	while ((len = evbuffer_get_length(in)) > 0) {
		size_t n = len < READ_SIZE ? len : READ_SIZE;
		unsigned char *b = evbuffer_pullup(in, (ev_ssize_t)n);

		p->received += n;
		if (p->out_fd >= 0 && write_all(p->out_fd, b, n) != 0) {
			/* the reader went away: stop taking the peer's data */
			p->out_fd = -1;
		}
		evbuffer_drain(in, n);
	}
}

/* ---------------------------------------------------------------- socket mode */

static void
relay(agent_pipe *p, struct bufferevent *from, struct bufferevent *to)
{
	struct evbuffer *src = bufferevent_get_input(from), *dst = bufferevent_get_output(to);
	size_t n = evbuffer_get_length(src);

	if (from == p->stream)
		p->received += n;
	else
		p->sent += n;
	evbuffer_add_buffer(dst, src);
	if (evbuffer_get_length(dst) >= HIGH)
		bufferevent_disable(from, EV_READ);     /* to's write callback resumes */
}

static void
sock_read(struct bufferevent *bev, void *arg)
{
	relay(arg, bev, ((agent_pipe *)arg)->stream);
}

static void
sock_write(struct bufferevent *bev, void *arg)
{
	agent_pipe *p = arg;

	if (!p->out_done)
		bufferevent_enable(p->stream, EV_READ);
	if (p->out_done && !p->sock_wr_shut && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		/* the peer finished: the child sees EOF on its stdin */
		p->sock_wr_shut = 1;
		shutdown(bufferevent_getfd(bev), SHUT_WR);
		check_done(p);
	}
}

static void
sock_event(struct bufferevent *bev, short what, void *arg)
{
	agent_pipe *p = arg;

	if (what & BEV_EVENT_EOF) {
		relay(p, bev, p->stream);
		finish_sending(p);
	} else if (what & BEV_EVENT_ERROR) {
		p->failed = 1;
		check_done(p);
	}
}

/* ---------------------------------------------------------------- the stream */

static void
stream_read(struct bufferevent *bev, void *arg)
{
	agent_pipe *p = arg;

	if (p->sock)
		relay(p, bev, p->sock);
	else
		stream_to_fd(p);
}

static void
stream_write(struct bufferevent *bev, void *arg)
{
	agent_pipe *p = arg;

	if (p->sock)
		bufferevent_enable(p->sock, EV_READ);
	else
		want_input(p);
}

static void
stream_event(struct bufferevent *bev, short what, void *arg)
{
	agent_pipe *p = arg;

	if (what & BEV_EVENT_EOF) {
		stream_read(bev, p);
		p->out_done = 1;
		if (p->sock)
			sock_write(p->sock, p);
		check_done(p);
	} else if ((what & BEV_EVENT_ERROR) && !(what & BEV_EVENT_READING)) {
		/* the peer reads no more: stop sending, keep receiving */
		p->in_done = 1;
		if (p->in_ev)
			event_del(p->in_ev);
		if (p->sock)
			bufferevent_disable(p->sock, EV_READ);
		check_done(p);
	} else if (what & BEV_EVENT_ERROR) {
		p->failed = 1;
		check_done(p);
	}
}

static int
pollable(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC), ok;

	if (ep < 0)
		return 0;
	ok = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
	close(ep);
	return ok;
}

agent_pipe *
agent_pipe_new(struct event_base *base, struct bufferevent *stream, int in_fd, int out_fd, agent_pipe_done done,
               void *arg)
{
	agent_pipe *p = calloc(1, sizeof *p);

	if (!p || !(p->done_ev = event_new(base, -1, 0, done_cb, p))) {
		free(p);
		bufferevent_free(stream);
		return NULL;
	}
	p->base = base;
	p->stream = stream;
	p->in_fd = in_fd;
	p->out_fd = out_fd;
	p->done = done;
	p->arg = arg;
	bufferevent_setcb(stream, stream_read, stream_write, stream_event, p);
	bufferevent_setwatermark(stream, EV_WRITE, HIGH / 2, 0);
	bufferevent_enable(stream, EV_READ | EV_WRITE);
	if (in_fd >= 0 && in_fd == out_fd) {
		evutil_make_socket_nonblocking(in_fd);
		p->sock = bufferevent_socket_new(base, in_fd, BEV_OPT_CLOSE_ON_FREE);
		if (!p->sock) {
			close(in_fd);
			agent_pipe_free(p);
			return NULL;
		}
		bufferevent_setcb(p->sock, sock_read, sock_write, sock_event, p);
		bufferevent_setwatermark(p->sock, EV_WRITE, HIGH / 2, 0);
		bufferevent_enable(p->sock, EV_READ | EV_WRITE);
		return p;
	}
	if (in_fd < 0) {
		finish_sending(p);
		return p;
	}
	/* epoll refuses regular files and /dev/null: read those when there is room */
	if (pollable(in_fd)) {
		p->in_pollable = 1;
		p->in_ev = event_new(base, in_fd, EV_READ | EV_PERSIST, in_readable, p);
		if (!p->in_ev || event_add(p->in_ev, NULL) != 0) {
			agent_pipe_free(p);
			return NULL;
		}
	} else {
		p->in_ev = event_new(base, -1, 0, in_readable, p);
		if (!p->in_ev) {
			agent_pipe_free(p);
			return NULL;
		}
		event_active(p->in_ev, 0, 0);
	}
	return p;
}

void
agent_pipe_counts(const agent_pipe *p, unsigned long long *sent, unsigned long long *received)
{
	*sent = p->sent;
	*received = p->received;
}

void
agent_pipe_free(agent_pipe *p)
{
	if (!p)
		return;
	if (p->in_ev)
		event_free(p->in_ev);
	if (p->done_ev)
		event_free(p->done_ev);
	if (p->sock)
		bufferevent_free(p->sock);
	if (p->stream)
		bufferevent_free(p->stream);
	free(p);
}
