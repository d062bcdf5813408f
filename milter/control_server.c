/*
 * control_server.c - answers mailpunchctl on the control socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control_server.h"
#include "mailpunch/control.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/sockspec.h"
#include "state.h"

#define CLIENT_TIMEOUT_MS 5000

static int listen_fd = -1;
static int stop_pipe[2] = { -1, -1 };
static pthread_t thread;
static int running;
static char socket_path[108];

int
control_server_open(const char *path, unsigned mode, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	mp_sockspec spec;
	char text[128];

	snprintf(text, sizeof text, "unix:%s", path);
	if (mp_sockspec_parse(text, &spec, err, errlen) != MP_OK)
		return MP_ERR_CONFIG;
	listen_fd = mp_sockspec_listen(&spec, mode, 16);
	if (listen_fd < 0) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		return MP_ERR_IO;
	}
	if (chown(path, uid, gid) != 0) {
		snprintf(err, errlen, "control socket %s: chown: %s", path, strerror(errno));
		return MP_ERR_IO;
	}
	snprintf(socket_path, sizeof socket_path, "%s", path);
	return MP_OK;
}

/* Reads one line (bounded) with a deadline; returns its length or -1. */
static ssize_t
read_request(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	while (len < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, CLIENT_TIMEOUT_MS) <= 0)
			return -1;
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		{
			const char *nl = memchr(buf, '\n', len);

			if (nl)
				return nl - buf + 1;
		}
	}
	return (ssize_t)len;
}

static void
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		ssize_t n;

		if (poll(&pf, 1, CLIENT_TIMEOUT_MS) <= 0)
			return;
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void
serve(int fd)
{
	/* one byte more than the protocol allows, to see an overlong line */
	char line[MP_CONTROL_LINE_MAX + 1], *answer = NULL;
	milter_snapshot *snap = milter_snapshot_get();
	mp_control_ctx ctx = { 0 };
	ssize_t n = read_request(fd, line, sizeof line);
	size_t alen;

	if (n >= 0 && snap) {
		ctx.table = milter.table;
		ctx.max_age = (uint64_t)snap->settings->entry_lifetime;
		ctx.now = (uint64_t)time(NULL);
		if (mp_control_exec(&ctx, line, (size_t)n, &answer, &alen) == MP_OK) {
			write_all(fd, answer, alen);
			free(answer);
		}
	}
	milter_snapshot_put(snap);
}

static void *
control_thread(void *arg)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = listen_fd, .events = POLLIN },
		                       { .fd = stop_pipe[0], .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			mp_log(MP_LOG_ERR, "control socket: poll: %s", strerror(errno));
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(fd);
		close(fd);
	}
}

int
control_server_start(char *err, size_t errlen)
{
	if (listen_fd < 0)
		return MP_OK;
	if (pipe2(stop_pipe, O_CLOEXEC) != 0 || pthread_create(&thread, NULL, control_thread, NULL) != 0) {
		snprintf(err, errlen, "control socket thread: %s", strerror(errno));
		return MP_ERR_IO;
	}
	running = 1;
	return MP_OK;
}

void
control_server_stop(void)
{
	if (running) {
		(void)!write(stop_pipe[1], "x", 1);
		pthread_join(thread, NULL);
		close(stop_pipe[0]);
		close(stop_pipe[1]);
		running = 0;
	}
	if (listen_fd >= 0) {
		close(listen_fd);
		listen_fd = -1;
		unlink(socket_path);
	}
}
