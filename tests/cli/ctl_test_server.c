/*
 * ctl_test_server.c - a stand-in for the milter's control socket, for
 * tests/cli/test_mailpunchctl.sh.
 *
 *   ctl_test_server [-b garbage|truncated|silent] [-f N] SOCKET TABLE [MAX_AGE]
 *
 * Opens (creates, empties) the table TABLE (a shm name "/x" or an
 * absolute file path) with capacity 64 + N, seeds N filler entries
 * (older than the others; -f, default 0) and four entries, printing one
 * line "NAME USERID" for each of the four, then "ready" once SOCKET
 * listens.
 * Then, until SIGTERM/SIGINT, answers one request line per connection
 * with mp_control_exec() (now = the clock, lifetime MAX_AGE, default
 * 3600).  Entries: alice (30 s old, two candidates), bob (10 min old,
 * flagged), carol (2 h old: expired), odd (name with a quote, a
 * backslash, ESC and invalid UTF-8).
 * -b makes it misbehave instead, to test the client's protocol errors:
 * garbage answers "HELLO", truncated stops before the final ".",
 * silent never answers.
 * On SIGTERM it removes SOCKET and the table.  Exit status 0, or 1 with
 * a message on stderr.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mailpunch/block.h"
#include "mailpunch/control.h"
#include "mailpunch/error.h"
#include "mailpunch/keys.h"
#include "mailpunch/table.h"

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
seed(mp_table *t, const char *label, const char *name, const char *addr, uint64_t age,
     uint8_t flags, int ncand)
{
	mp_table_entry e;
	char uid[MP_UID_TEXT_LEN + 1];
	int rc;

	memset(&e, 0, sizeof e);
	if (getrandom(&e.id, sizeof e.id, 0) != (ssize_t)sizeof e.id)
		return MP_ERR_IO;
	mp_pubid_uid(&e.id, &e.uid);
	snprintf(e.name, sizeof e.name, "%s", name);
	snprintf(e.reply_addr, sizeof e.reply_addr, "%s", addr);
	e.time = (uint64_t)time(NULL) - age;
	e.flags = flags;
	e.ep.nat.mapping = MP_NAT_INDEPENDENT;
	e.ep.nat.filtering = MP_NAT_ADDR_DEP;
	e.ep.nat.allocation = MP_ALLOC_PRESERVING;
	if (ncand > 0 && mp_candidate_parse("198.51.100.20:40000", MP_CAND_SRFLX,
	                                    &e.ep.cand[e.ep.ncand++]) != MP_OK)
		return MP_ERR_INVAL;
	if (ncand > 1 && mp_candidate_parse("[2001:db8::20]:40001", MP_CAND_LOCAL,
	                                    &e.ep.cand[e.ep.ncand++]) != MP_OK)
		return MP_ERR_INVAL;
	if ((rc = mp_table_upsert(t, &e, NULL)) != MP_OK)
		return rc;
	mp_uid_format(&e.uid, uid);
	if (label)
		printf("%s %s\n", label, uid);
	return MP_OK;
}

static int
listen_on(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "ctl_test_server: socket path too long\n");
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0) {
		fprintf(stderr, "ctl_test_server: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* One line (up to and including LF), at most MP_CONTROL_LINE_MAX + 1
 * bytes so that an overlong request reaches mp_control_exec() as such. */
static size_t
read_line(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(buf + len - (size_t)n, '\n', (size_t)n)) {
			len = (size_t)((char *)memchr(buf, '\n', len) - buf) + 1;
			break;
		}
	}
	return len;
}

static void
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void
serve(int lfd, mp_table *t, uint64_t max_age, const char *bad)
{
	char line[MP_CONTROL_LINE_MAX + 1];
	struct timeval tv = { .tv_sec = 5 };

	while (!stop) {
		mp_control_ctx ctx = { t, max_age, (uint64_t)time(NULL) };
		char *out;
		size_t len, outlen;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;      /* EINTR from the signal: the loop checks stop */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		len = read_line(fd, line, sizeof line);
		if (bad && !strcmp(bad, "garbage")) {
			write_all(fd, "HELLO\n", 6);
		} else if (bad && !strcmp(bad, "truncated")) {
			write_all(fd, "OK\nsome body\n", 13);
		} else if (bad && !strcmp(bad, "silent")) {
			while (!stop)
				sleep(1);
		} else if (mp_control_exec(&ctx, line, len, &out, &outlen) == MP_OK) {
			write_all(fd, out, outlen);
			free(out);
		}
		close(fd);
	}
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	const char *bad = NULL, *sock, *name;
	uint64_t max_age = 3600;
	unsigned long fillers = 0, i;
	mp_table *t;
	int c, rc, lfd;

	while ((c = getopt(argc, argv, "b:f:")) != -1) {
		if (c == 'b')
			bad = optarg;
		else if (c == 'f' && (fillers = strtoul(optarg, NULL, 10)) <= 100000)
			continue;
		else
			return 2;
	}
	if (argc - optind < 2 || argc - optind > 3) {
		fprintf(stderr, "usage: ctl_test_server [-b garbage|truncated|silent] [-f N] "
		        "SOCKET TABLE [MAX_AGE]\n");
		return 2;
	}
	sock = argv[optind];
	name = argv[optind + 1];
	if (argc - optind == 3)
		max_age = strtoull(argv[optind + 2], NULL, 10);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;   /* no SA_RESTART: accept() must return */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if ((rc = mp_table_shm_open(name, 64 + fillers, MP_TABLE_CREATE, 0600, &t)) != MP_OK) {
		fprintf(stderr, "ctl_test_server: table %s: %s\n", name, mp_strerror(rc));
		return 1;
	}
	rc = mp_table_flush(t);
	for (i = 0; i < fillers && rc == MP_OK; i++)
		rc = seed(t, NULL, "filler", "filler@example.org", 7300 + i, 0, 2);
	if (rc != MP_OK ||
	    (rc = seed(t, "carol", "Carol", "carol@example.net", 7200, 0, 1)) != MP_OK ||
	    (rc = seed(t, "bob", "Bob", "bob@example.com", 600, MP_PEER_FAILED, 0)) != MP_OK ||
	    (rc = seed(t, "odd", "O\"d\\d\x1b[1m\xff", "odd@example.org", 60, 0, 1)) != MP_OK ||
	    (rc = seed(t, "alice", "Alice Liddell", "alice@example.org", 30, 0, 2)) != MP_OK) {
		fprintf(stderr, "ctl_test_server: seeding: %s\n", mp_strerror(rc));
		mp_table_close(t);
		mp_table_shm_unlink(name);
		return 1;
	}
	mp_table_count(t, MP_STAT_REQUESTS, 4);
	if ((lfd = listen_on(sock)) < 0) {
		mp_table_close(t);
		mp_table_shm_unlink(name);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	serve(lfd, t, max_age, bad);
	close(lfd);
	unlink(sock);
	mp_table_close(t);
	mp_table_shm_unlink(name);
	return 0;
}
