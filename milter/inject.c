/*
 * inject.c - run the MTA's sendmail command for one mail (see inject.h).
 *
 * posix_spawn rather than fork: the milter is multi-threaded, and a
 * forked child of a threaded process may only call async-signal-safe
 * functions before exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "settings.h"
#include "mailpunch/error.h"

#define MAX_ARGS 32

extern char **environ;

static int
split_command(char *buf, const char *from, const char *to, char **argv)
{
	int argc = 0;
	char *save = NULL, *tok;

	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (argc >= MAX_ARGS - 5)
			return -1;
		argv[argc++] = tok;
	}
	if (argc == 0 || argv[0][0] != '/')
		return -1;
	argv[argc++] = (char *)"-f";
	argv[argc++] = (char *)from;
	argv[argc++] = (char *)"--";
	argv[argc++] = (char *)to;
	argv[argc] = NULL;
	return argc;
}

static long
ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Writes mail to fd turning CRLF into LF (local submission uses the
 * system's line ends), bounded by the deadline. */
static int
write_mail(int fd, const char *mail, size_t len, const struct timespec *deadline)
{
	char chunk[8192];
	size_t i = 0;

	while (i < len) {
		size_t n = 0, off = 0;

		while (i < len && n < sizeof chunk) {
			if (mail[i] == '\r' && i + 1 < len && mail[i + 1] == '\n') {
				i++;
				continue;
			}
			chunk[n++] = mail[i++];
		}
		while (off < n) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			long left = ms_left(deadline);
			ssize_t w;

			if (left <= 0 || poll(&p, 1, (int)left) <= 0)
				return -1;
			w = write(fd, chunk + off, n - off);
			if (w < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (w <= 0)
				return -1;
			off += (size_t)w;
		}
	}
	return 0;
}

/* Waits for the child without busy polling: a pidfd becomes readable
 * when the process exits (Linux 5.3+); without one, sleep in steps. */
static int
wait_child(pid_t pid, const struct timespec *deadline, int *status)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		long left;

		if (r == pid) {
			if (pfd >= 0)
				close(pfd);
			return 0;
		}
		left = ms_left(deadline);
		if ((r < 0 && errno != EINTR) || left <= 0) {
			if (pfd >= 0)
				close(pfd);
			return -1;
		}
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };

			poll(&p, 1, (int)left);
		} else {
			usleep(2000);
		}
	}
}

int
milter_inject(const char *command, const char *from, const char *to, const char *mail,
              size_t len, unsigned timeout, char *err, size_t errlen)
{
	char *buf = strdup(command), *argv[MAX_ARGS];
	posix_spawn_file_actions_t fa;
	struct timespec deadline;
	int fds[2] = { -1, -1 }, status = 0, rc = MP_ERR_IO, devnull;
	pid_t pid;

	if (!buf)
		return MP_ERR_NOMEM;
	if (split_command(buf, from, to, argv) < 0) {
		snprintf(err, errlen, "unusable SendmailCommand");
		free(buf);
		return MP_ERR_INVAL;
	}
	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		free(buf);
		return MP_ERR_IO;
	}
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[0], STDIN_FILENO);
	if (devnull >= 0)
		posix_spawn_file_actions_adddup2(&fa, devnull, STDOUT_FILENO);
	/* the MTA's connections to us are not the child's business */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	errno = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (devnull >= 0)
		close(devnull);
	close(fds[0]);
	if (errno != 0) {
		snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(errno));
		close(fds[1]);
		free(buf);
		return MP_ERR_IO;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout;
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	if (write_mail(fds[1], mail, len, &deadline) != 0)
		snprintf(err, errlen, "writing to %s failed or timed out", argv[0]);
	else
		rc = MP_OK;
	close(fds[1]);
	if (wait_child(pid, &deadline, &status) != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		snprintf(err, errlen, "%s timed out after %us", argv[0], timeout);
		rc = MP_ERR_IO;
	} else if (rc == MP_OK && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		if (WIFEXITED(status))
			snprintf(err, errlen, "%s exited with status %d", argv[0], WEXITSTATUS(status));
		else
			snprintf(err, errlen, "%s killed by signal %d", argv[0], WTERMSIG(status));
		rc = MP_ERR_IO;
	}
	free(buf);
	return rc;
}

int
milter_send(const struct milter_settings *s, const char *from, const char *to,
            const char *mail, size_t len, char *err, size_t errlen)
{
	if (s->inject_socket)
		return milter_inject_smtp(s->inject_socket, from, to, mail, len,
		                          (unsigned)s->inject_timeout, err, errlen);
	return milter_inject(s->sendmail, from, to, mail, len, (unsigned)s->inject_timeout,
	                     err, errlen);
}
