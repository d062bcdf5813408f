/*
 * mailpunchctl - the operator's view of a running mailpunch-milter.
 *
 *   mailpunchctl [-s SOCKET] [-j|--json] COMMAND [ARG]
 *
 * Sends one request line ("[json] COMMAND [ARG]") to the milter's UNIX
 * control socket (-s, else $MAILPUNCH_CONTROL, else
 * /run/mailpunch/control.sock), reads the answer (status line, body,
 * "." line: see docs/CONTROL.md) and prints the body to stdout.
 * Connect, each write and each read wait at most 10 seconds.
 * Exit status (see mailpunchctl(8)): 0 OK, 1 other error, 2 usage
 * (here or refused by the milter), 3 socket missing / nobody listening,
 * 4 permission denied, 5 unknown user, 6 protocol error or timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mailpunch/control.h"

#define PROG "mailpunchctl"
#define DEFAULT_SOCKET "/run/mailpunch/control.sock"
#define TIMEOUT_MS 10000
/* Far above the largest answer (10000 entries in JSON are a few MiB);
 * only a runaway peer gets near it. */
#define ANSWER_MAX ((size_t)64 << 20)

enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_NOSOCKET = 3,
	EXIT_DENIED = 4,
	EXIT_NOTFOUND = 5,
	EXIT_PROTOCOL = 6,
};

static void
usage(FILE *fp)
{
	fputs("usage: mailpunchctl [-s SOCKET] [-j|--json] COMMAND [ARG]\n"
	      "\n"
	      "commands:\n"
	      "  list [N]        the N newest entries (default 20, at most 10000)\n"
	      "  show USERID     everything about one entry\n"
	      "  stats           counters, entries and capacity\n"
	      "  delete USERID   remove one entry\n"
	      "  flag USERID     mark an entry as failed\n"
	      "  unflag USERID   clear an entry's failed mark\n"
	      "  expire          remove the entries older than the lifetime\n"
	      "  flush           remove every entry\n"
	      "  help            the milter's own command list\n"
	      "\n"
	      "options:\n"
	      "  -s, --socket SOCKET  control socket (default $MAILPUNCH_CONTROL, else\n"
	      "                       " DEFAULT_SOCKET ")\n"
	      "  -j, --json           answer as one JSON object\n"
	      "  -h, --help           this text\n"
	      "\n"
	      "exit status: 0 ok, 1 error, 2 usage, 3 no socket, 4 permission denied,\n"
	      "5 unknown user, 6 protocol error or timeout\n", fp);
}

static void die_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
die_msg(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd for at most TIMEOUT_MS; 1 ready, 0 timeout, -1 error. */
static int
wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	long long deadline = now_ms() + TIMEOUT_MS, left;
	int rc;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		rc = poll(&p, 1, (int)left);
		if (rc > 0)
			return 1;
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Connects without ever blocking longer than TIMEOUT_MS: a milter whose
 * accept queue is full makes a non-blocking UNIX connect fail with
 * EAGAIN, so that is retried until the deadline.  Returns the fd, or -1
 * with errno set (ETIMEDOUT for the deadline). */
static int
connect_unix(const char *path)
{
	struct sockaddr_un sa;
	long long deadline = now_ms() + TIMEOUT_MS;
	int fd, err;
	socklen_t len = sizeof err;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);   /* length checked by caller */
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			return fd;
		if (errno == EINPROGRESS) {
			int w = wait_fd(fd, POLLOUT);

			if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0) {
				if (err == 0)
					return fd;
				errno = err;
			} else if (w == 0) {
				errno = ETIMEDOUT;
			}
			err = errno;
			close(fd);
			errno = err;
			return -1;
		}
		err = errno;
		close(fd);
		if (err != EAGAIN) {
			errno = err;
			return -1;
		}
		if (now_ms() >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		poll(NULL, 0, 50);
	}
}

static int
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_fd(fd, POLLOUT);

			if (w == 1)
				continue;
			if (w == 0)
				errno = ETIMEDOUT;
			return -1;
		}
		return -1;
	}
	return 0;
}

typedef struct answer {
	char *buf;
	size_t len, cap;
	size_t scan;        /* start of the first line not yet looked at */
	int complete;       /* the "." line arrived */
	size_t body;        /* offset of the body (after the status line) */
	size_t end;         /* offset of the "." line */
} answer;

/* Looks at the complete lines received so far for the status line and
 * the final "." line. */
static void
scan_lines(answer *a)
{
	const char *nl;

	while (!a->complete && (nl = memchr(a->buf + a->scan, '\n', a->len - a->scan))) {
		size_t start = a->scan, n = (size_t)(nl - (a->buf + start));

		a->scan = start + n + 1;
		if (start == 0) {
			a->body = a->scan;
		} else if (n == 1 && a->buf[start] == '.') {
			a->end = start;
			a->complete = 1;
		}
	}
}

/* "OK" or "ERR <code>...": anything else is not a mailpunch milter. */
static int
status_valid(const answer *a)
{
	size_t n = a->body - 1;

	return (n == 2 && !memcmp(a->buf, "OK", 2)) ||
	       (n > 4 && !memcmp(a->buf, "ERR ", 4) && a->buf[4] != ' ');
}

/* Returns 0 with the complete answer, or an exit status after saying why. */
static int
read_answer(int fd, const char *path, answer *a)
{
	for (;;) {
		ssize_t n;
		int w;

		if (a->cap - a->len < 4096) {
			size_t cap = a->cap ? a->cap * 2 : 65536;
			char *nb;

			if (cap > ANSWER_MAX + 1) {
				die_msg("answer from %s is larger than %zu MiB", path, ANSWER_MAX >> 20);
				return EXIT_PROTOCOL;
			}
			if (!(nb = realloc(a->buf, cap))) {
				die_msg("out of memory");
				return EXIT_ERROR;
			}
			a->buf = nb;
			a->cap = cap;
		}
		n = recv(fd, a->buf + a->len, a->cap - a->len - 1, 0);
		if (n > 0) {
			a->len += (size_t)n;
			a->buf[a->len] = '\0';
			scan_lines(a);
			/* Judge the status line as soon as it is there: a
			 * stranger's answer may never contain a "." line. */
			if ((a->body > 0 && !status_valid(a)) || (a->body == 0 && a->len > 4096)) {
				die_msg("unexpected answer from %s (is it a mailpunch control "
				        "socket?)", path);
				return EXIT_PROTOCOL;
			}
			if (a->complete)
				return 0;
			continue;
		}
		if (n == 0) {
			die_msg("%s closed the connection before the answer was complete", path);
			return EXIT_PROTOCOL;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			die_msg("cannot read from %s: %s", path, strerror(errno));
			return EXIT_PROTOCOL;
		}
		if ((w = wait_fd(fd, POLLIN)) == 0) {
			die_msg("no answer from %s within %d s", path, TIMEOUT_MS / 1000);
			return EXIT_PROTOCOL;
		}
		if (w < 0) {
			die_msg("cannot read from %s: %s", path, strerror(errno));
			return EXIT_PROTOCOL;
		}
	}
}

/* Prints the body lines, undoing the dot-stuffing. */
static int
print_body(const answer *a)
{
	size_t i = a->body;

	while (i < a->end) {
		const char *nl = memchr(a->buf + i, '\n', a->end - i);
		size_t e = (size_t)(nl - a->buf) + 1;   /* the "." line follows: nl exists */

		if (a->buf[i] == '.')
			i++;
		fwrite(a->buf + i, 1, e - i, stdout);
		i = e;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		die_msg("cannot write the answer: %s", strerror(errno));
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

/* A word the request line can carry: printable ASCII without blanks. */
static int
word_ok(const char *w)
{
	if (!*w)
		return 0;
	for (; *w; w++)
		if ((unsigned char)*w <= 0x20 || (unsigned char)*w >= 0x7f)
			return 0;
	return 1;
}

/* Accepts what milter configuration files say too: unix:/path, local:/path. */
static const char *
socket_path(const char *spec)
{
	if (!strncmp(spec, "unix:", 5))
		return spec + 5;
	if (!strncmp(spec, "local:", 6))
		return spec + 6;
	return spec;
}

static int
connect_error(const char *path, int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		die_msg("control socket %s does not exist: is mailpunch-milter running, and "
		        "is its ControlSocket set to this path? (-s or MAILPUNCH_CONTROL "
		        "choose another)", path);
		return EXIT_NOSOCKET;
	case ECONNREFUSED:
		die_msg("nothing listens on control socket %s: is mailpunch-milter running, "
		        "and is its ControlSocket set to this path?", path);
		return EXIT_NOSOCKET;
	case EACCES:
	case EPERM:
		die_msg("permission denied on control socket %s: run mailpunchctl as root or "
		        "as a member of the milter's group", path);
		return EXIT_DENIED;
	case ETIMEDOUT:
		die_msg("cannot connect to %s: mailpunch-milter did not accept within %d s",
		        path, TIMEOUT_MS / 1000);
		return EXIT_PROTOCOL;
	}
	die_msg("cannot connect to %s: %s", path, strerror(err));
	return EXIT_ERROR;
}

/* Exit status for an ERR answer, from its code word. */
static int
err_status(const char *code, size_t n)
{
	if (n == 8 && !memcmp(code, "notfound", 8))
		return EXIT_NOTFOUND;
	if ((n == 5 && !memcmp(code, "usage", 5)) || (n == 5 && !memcmp(code, "badid", 5)))
		return EXIT_USAGE;
	return EXIT_ERROR;
}

static int
handle_answer(const answer *a, const char *path)
{
	const char *st = a->buf, *sp, *msg;
	size_t stlen = a->body - 1, i;
	int rc;

	/* read_answer() made sure the status line is OK or ERR */
	if (stlen == 2 && !memcmp(st, "OK", 2))
		return print_body(a);
	sp = memchr(st + 4, ' ', stlen - 4);
	msg = sp ? sp + 1 : st + stlen;
	rc = err_status(st + 4, (size_t)((sp ? sp : st + stlen) - (st + 4)));
	/* In JSON mode the body is the error object: scripts want it. */
	if (print_body(a) != EXIT_OK)
		return EXIT_ERROR;
	fputs(PROG ": ", stderr);
	for (i = 0; msg + i < st + stlen; i++) {
		unsigned char c = (unsigned char)msg[i];

		/* The message goes to a terminal: nothing but printable text. */
		fputc(c >= 0x20 && c < 0x7f ? c : '?', stderr);
	}
	if (msg == st + stlen)
		fputs("error without a message", stderr);
	fputc('\n', stderr);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *spec = NULL, *path, *cmd, *arg = NULL;
	char req[MP_CONTROL_LINE_MAX + 1];
	answer a = { 0 };
	int json = 0, c, fd, rc, n;

	/* "+": options only before COMMAND, so an argument is never an option. */
	while ((c = getopt_long(argc, argv, "+s:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': spec = optarg; break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	if (argc - optind == 2)
		arg = argv[optind + 1];
	if (!word_ok(cmd) || (arg && !word_ok(arg))) {
		die_msg("COMMAND and ARG must be single words of printable ASCII");
		return EXIT_USAGE;
	}
	if (!spec) {
		spec = getenv("MAILPUNCH_CONTROL");
		if (!spec || !*spec)
			spec = DEFAULT_SOCKET;
	}
	path = socket_path(spec);
	if (!strncmp(spec, "inet:", 5) || !strncmp(spec, "inet6:", 6)) {
		die_msg("%s: the control socket is a UNIX socket (unix:/path or /path)", spec);
		return EXIT_USAGE;
	}
	if (!*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		die_msg("%s: not a usable UNIX socket path", spec);
		return EXIT_USAGE;
	}
	n = snprintf(req, sizeof req, "%s%s%s%s\n", json ? "json " : "", cmd, arg ? " " : "",
	             arg ? arg : "");
	if (n < 0 || (size_t)n > MP_CONTROL_LINE_MAX) {
		die_msg("request longer than %d bytes", MP_CONTROL_LINE_MAX);
		return EXIT_USAGE;
	}
	if ((fd = connect_unix(path)) < 0)
		return connect_error(path, errno);
	if (send_all(fd, req, (size_t)n) != 0) {
		if (errno == ETIMEDOUT)
			die_msg("cannot send to %s within %d s", path, TIMEOUT_MS / 1000);
		else
			die_msg("cannot send to %s: %s", path, strerror(errno));
		close(fd);
		return EXIT_PROTOCOL;
	}
	/* One request per connection: tell the milter nothing else follows. */
	shutdown(fd, SHUT_WR);
	rc = read_answer(fd, path, &a);
	close(fd);
	if (rc == 0)
		rc = handle_answer(&a, path);
	free(a.buf);
	return rc;
}
