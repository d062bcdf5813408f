/*
 * inject_smtp.c - hand a mail to the MTA over SMTP, on kept-open
 * connections (see inject.h).
 *
 * Spawning sendmail costs about 10 ms of CPU per reply (process start,
 * dynamic linking, postdrop); an SMTP transaction on a connection that
 * stays open costs a few round trips.  The "250" after the final dot is
 * the MTA's promise that the mail is queued, just like sendmail's exit 0.
 * Idle connections wait in a small pool shared by the milter threads; a
 * pooled connection the MTA has meanwhile closed is noticed on first use
 * and the mail is retried once on a fresh one.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "mailpunch/error.h"
#include "mailpunch/sockspec.h"
#include "smtp_reply.h"

#define POOL_MAX 8
#define MAIL_MAX (16u * 1024 * 1024)

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static int pool[POOL_MAX];
static size_t pool_n;

typedef struct conn {
	int fd;
	mp_smtp_parser *parser;
	char buf[4096];
	size_t have, off;
	int deadline_ms;
} conn;

static int
send_all(conn *c, const char *p, size_t len)
{
	while (len > 0) {
		struct pollfd pf = { .fd = c->fd, .events = POLLOUT };
		ssize_t n;

		if (poll(&pf, 1, c->deadline_ms) <= 0)
			return -1;
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The next reply's code, its text in text; -1 on a transport error. */
static int
read_reply(conn *c, char *text, size_t textlen)
{
	for (;;) {
		const mp_smtp_reply *r = NULL;
		size_t used = 0;

		if (c->off < c->have) {
			if (mp_smtp_parser_feed(c->parser, c->buf + c->off, c->have - c->off, &used, &r) != MP_OK)
				return -1;
			c->off += used;
			if (r) {
				mp_smtp_reply_format(r, text, textlen);
				return r->code;
			}
			continue;
		}
		{
			struct pollfd pf = { .fd = c->fd, .events = POLLIN };
			ssize_t n;

			if (poll(&pf, 1, c->deadline_ms) <= 0)
				return -1;
			n = recv(c->fd, c->buf, sizeof c->buf, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return -1;
			c->have = (size_t)n;
			c->off = 0;
		}
	}
}

/* Sends one command line and expects a reply of class want (2 or 3). */
static int
command(conn *c, const char *line, int want, char *err, size_t errlen, int *transport)
{
	char text[512];
	int code;

	if (line && send_all(c, line, strlen(line)) != 0) {
		*transport = 1;
		snprintf(err, errlen, "connection to the MTA lost");
		return -1;
	}
	code = read_reply(c, text, sizeof text);
	if (code < 0) {
		*transport = 1;
		snprintf(err, errlen, "no answer from the MTA");
		return -1;
	}
	if (code / 100 != want) {
		snprintf(err, errlen, "MTA said: %s", text);
		return -1;
	}
	return 0;
}

static int
fresh_connection(const char *spec_text, conn *c, char *err, size_t errlen)
{
	char reason[256], helo[300], host[256];
	mp_sockspec spec;
	int transport = 0;

	if (mp_sockspec_parse(spec_text, &spec, reason, sizeof reason) != MP_OK) {
		snprintf(err, errlen, "InjectSocket: %s", reason);
		return -1;
	}
	c->fd = mp_sockspec_connect(&spec);
	if (c->fd < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", spec_text, strerror(errno));
		return -1;
	}
	if (gethostname(host, sizeof host) != 0)
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(helo, sizeof helo, "EHLO %s\r\n", host);
	if (command(c, NULL, 2, err, errlen, &transport) != 0 ||
	    command(c, helo, 2, err, errlen, &transport) != 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void
release(conn *c, int reusable)
{
	if (c->fd < 0)
		return;
	pthread_mutex_lock(&pool_lock);
	if (reusable && pool_n < POOL_MAX) {
		pool[pool_n++] = c->fd;
		c->fd = -1;
	}
	pthread_mutex_unlock(&pool_lock);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* One transaction; *transport says whether a retry on a new connection
 * could help (the connection broke, rather than the MTA refusing). */
static int
transaction(conn *c, const char *from, const char *to, const char *data, size_t dlen,
            char *err, size_t errlen, int *transport)
{
	char line[600];

	*transport = 0;
	snprintf(line, sizeof line, "MAIL FROM:<%s>\r\n", from);
	if (command(c, line, 2, err, errlen, transport) != 0)
		return -1;
	snprintf(line, sizeof line, "RCPT TO:<%s>\r\n", to);
	if (command(c, line, 2, err, errlen, transport) != 0 ||
	    command(c, "DATA\r\n", 3, err, errlen, transport) != 0)
		return -1;
	if (send_all(c, data, dlen) != 0) {
		*transport = 1;
		snprintf(err, errlen, "connection to the MTA lost during DATA");
		return -1;
	}
	return command(c, NULL, 2, err, errlen, transport);
}

int
milter_inject_smtp(const char *spec, const char *from, const char *to, const char *mail,
                   size_t len, unsigned timeout, char *err, size_t errlen)
{
	conn c = { .fd = -1 };
	char *data = NULL;
	size_t dlen;
	int attempt, rc = MP_ERR_IO, transport = 0;

	/* the addresses come from our own checks, but never let a CR or LF
	 * through into an SMTP command */
	if (strpbrk(from, "\r\n<>") || strpbrk(to, "\r\n<>") || strlen(from) > 254 || strlen(to) > 254)
		return MP_ERR_INVAL;
	if (mp_smtp_dot_stuff(mail, len, MAIL_MAX, &data, &dlen) != MP_OK)
		return MP_ERR_NOMEM;
	if (!(c.parser = mp_smtp_parser_new())) {
		free(data);
		return MP_ERR_NOMEM;
	}
	c.deadline_ms = (int)(timeout ? timeout : 60) * 1000;
	for (attempt = 0; attempt < 2 && rc != MP_OK; attempt++) {
		int pooled = 0;

		pthread_mutex_lock(&pool_lock);
		if (attempt == 0 && pool_n > 0) {
			c.fd = pool[--pool_n];
			pooled = 1;
		}
		pthread_mutex_unlock(&pool_lock);
		mp_smtp_parser_reset(c.parser);
		c.have = c.off = 0;
		if (!pooled && fresh_connection(spec, &c, err, errlen) != 0)
			break;
		if (transaction(&c, from, to, data, dlen, err, errlen, &transport) == 0) {
			rc = MP_OK;
			release(&c, 1);
			break;
		}
		/* a refusal ends the connection's transaction: RSET would do,
		 * but a new connection is simpler and refusals are rare */
		release(&c, 0);
		if (!(pooled && transport))
			break;      /* only a stale pooled connection is worth a retry */
	}
	mp_smtp_parser_free(c.parser);
	free(data);
	return rc;
}

void
milter_inject_smtp_close(void)
{
	pthread_mutex_lock(&pool_lock);
	while (pool_n > 0)
		close(pool[--pool_n]);
	pthread_mutex_unlock(&pool_lock);
}
