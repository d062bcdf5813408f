/*
 * sockspec.c - socket specifications as milter admins write them.
 *
 * Interface: see include/mailpunch/sockspec.h.  Accepted syntax (type
 * prefixes are case-insensitive, as in libmilter):
 *     inet:PORT[@HOST]     HOST: IPv4 address or host name
 *     inet6:PORT[@HOST]    HOST: IPv6 address, bare or in [brackets]
 *                          (optionally with %scope), or a host name
 *     unix:/PATH, local:/PATH, /PATH
 * PORT is decimal 1..65535.  A missing HOST means every address.  Paths
 * must be absolute and fit in sun_path (107 bytes + NUL): too long is an
 * error, never a silent truncation.  mp_sockspec_format() writes
 * "unix:/PATH", "inet:PORT[@HOST]" or "inet6:PORT[@HOST]" with the IPv6
 * address bare, as libmilter expects it.
 *
 * Errors: mp_sockspec_parse() returns MP_ERR_SYNTAX with a reason in err
 * (MP_ERR_INVAL for NULL arguments).  listen/connect return MP_ERR_IO
 * with errno describing the cause: EEXIST when a non-socket file is in
 * the way of a UNIX socket, EADDRINUSE when a live server owns it (found
 * by connecting to it: that server sees one empty connection),
 * EADDRNOTAVAIL / EHOSTUNREACH when the host name does not resolve.
 */
/* Needs SOCK_CLOEXEC and strnlen even under -std=c11 alone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "mailpunch/sockspec.h"
#include "mailpunch/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

_Static_assert(SUN_PATH_SIZE <= sizeof(((mp_sockspec *)0)->path),
               "mp_sockspec.path must hold any sun_path");

static int
fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return MP_ERR_SYNTAX;
}

static int
parse_unix(const char *path, mp_sockspec *out, char *err, size_t errlen)
{
	size_t len = strlen(path);

	if (len == 0)
		return fail(err, errlen, "missing socket path");
	if (path[0] != '/')
		return fail(err, errlen, "socket path '%s' is not absolute",
		            path);
	if (len >= SUN_PATH_SIZE)
		return fail(err, errlen,
		            "socket path too long (%zu bytes, max %zu)",
		            len, SUN_PATH_SIZE - 1);
	out->family = MP_SOCK_UNIX;
	memcpy(out->path, path, len + 1);
	return MP_OK;
}

/* Digits only: strtoul would take blanks, signs and "0x". */
static int
parse_port(const char *s, size_t len, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = v;
	return 0;
}

static int
is_hostname(const char *h)
{
	for (; *h != '\0'; h++) {
		unsigned char c = (unsigned char)*h;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_'))
			return 0;
	}
	return 1;
}

/* An IPv6 literal, optionally with a "%scope" (interface) suffix. */
static int
is_ipv6(const char *h)
{
	char addr[INET6_ADDRSTRLEN];
	struct in6_addr a;
	const char *pct = strchr(h, '%');
	size_t alen = pct != NULL ? (size_t)(pct - h) : strlen(h);

	if (alen == 0 || alen >= sizeof(addr))
		return 0;
	if (pct != NULL && (pct[1] == '\0' || !is_hostname(pct + 1)))
		return 0;
	memcpy(addr, h, alen);
	addr[alen] = '\0';
	return inet_pton(AF_INET6, addr, &a) == 1;
}

static int
parse_host(const char *host, mp_sock_family fam, mp_sockspec *out,
           char *err, size_t errlen)
{
	size_t len = strlen(host);

	if (len == 0)
		return fail(err, errlen, "missing host after '@'");
	if (fam == MP_SOCK_INET6 && host[0] == '[') {
		if (len < 2 || host[len - 1] != ']')
			return fail(err, errlen, "missing ']' after IPv6 address");
		host++;
		len -= 2;
		if (len >= sizeof(out->host))
			return fail(err, errlen, "host name too long");
		memcpy(out->host, host, len);
		out->host[len] = '\0';
		if (!is_ipv6(out->host))
			return fail(err, errlen, "bad IPv6 address '%s'",
			            out->host);
		return MP_OK;
	}
	if (len >= sizeof(out->host))
		return fail(err, errlen, "host name too long (max %zu bytes)",
		            sizeof(out->host) - 1);
	if (strchr(host, ':') != NULL) {
		if (fam == MP_SOCK_INET)
			return fail(err, errlen,
			            "IPv6 address '%s' needs inet6:", host);
		if (!is_ipv6(host))
			return fail(err, errlen, "bad IPv6 address '%s'", host);
	} else if (!is_hostname(host)) {
		return fail(err, errlen, "bad host name '%s'", host);
	}
	memcpy(out->host, host, len + 1);
	return MP_OK;
}

static int
parse_inet(const char *rest, mp_sock_family fam, mp_sockspec *out,
           char *err, size_t errlen)
{
	const char *at = strchr(rest, '@');
	size_t plen = at != NULL ? (size_t)(at - rest) : strlen(rest);

	out->family = fam;
	if (plen == 0)
		return fail(err, errlen, "missing port (use %s:PORT@HOST)",
		            fam == MP_SOCK_INET ? "inet" : "inet6");
	if (parse_port(rest, plen, &out->port) != 0)
		return fail(err, errlen, "bad port '%.*s' (use 1..65535)",
		            (int)(plen > 64 ? 64 : plen), rest);
	if (at == NULL)
		return MP_OK;
	return parse_host(at + 1, fam, out, err, errlen);
}

int
mp_sockspec_parse(const char *spec, mp_sockspec *out, char *err, size_t errlen)
{
	if (spec == NULL || out == NULL)
		return MP_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	if (spec[0] == '/')
		return parse_unix(spec, out, err, errlen);
	const char *colon = strchr(spec, ':');
	if (colon == NULL)
		return fail(err, errlen, "no socket type (use inet:PORT@HOST, "
		            "inet6:PORT@HOST, unix:/path or /path)");
	size_t tlen = (size_t)(colon - spec);
	const char *rest = colon + 1;
	if (tlen == 4 && strncasecmp(spec, "unix", 4) == 0)
		return parse_unix(rest, out, err, errlen);
	if (tlen == 5 && strncasecmp(spec, "local", 5) == 0)
		return parse_unix(rest, out, err, errlen);
	if (tlen == 4 && strncasecmp(spec, "inet", 4) == 0)
		return parse_inet(rest, MP_SOCK_INET, out, err, errlen);
	if (tlen == 5 && strncasecmp(spec, "inet6", 5) == 0)
		return parse_inet(rest, MP_SOCK_INET6, out, err, errlen);
	return fail(err, errlen, "unknown socket type '%.*s' "
	            "(use inet:, inet6:, unix: or local:)",
	            (int)(tlen > 32 ? 32 : tlen), spec);
}

void
mp_sockspec_format(const mp_sockspec *s, char *buf, size_t len)
{
	if (buf == NULL || len == 0)
		return;
	if (s == NULL) {
		buf[0] = '\0';
		return;
	}
	switch (s->family) {
	case MP_SOCK_UNIX:
		snprintf(buf, len, "unix:%.*s", (int)sizeof(s->path), s->path);
		return;
	case MP_SOCK_INET:
	case MP_SOCK_INET6:
		snprintf(buf, len, "%s:%u%s%.*s",
		         s->family == MP_SOCK_INET ? "inet" : "inet6", s->port,
		         s->host[0] != '\0' ? "@" : "",
		         (int)sizeof(s->host), s->host);
		return;
	}
	buf[0] = '\0';
}

static void
close_keep_errno(int fd)
{
	int e = errno;
	close(fd);
	errno = e;
}

/* Checks a hand-built spec too: listen/connect do not require parse. */
static int
fill_sun(const mp_sockspec *s, struct sockaddr_un *sun)
{
	size_t len = strnlen(s->path, sizeof(s->path));

	if (len == 0 || len >= SUN_PATH_SIZE) {
		errno = len == 0 ? EINVAL : ENAMETOOLONG;
		return -1;
	}
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, s->path, len);
	return 0;
}

/*
 * Make room for a UNIX socket at path: a socket file left behind by a
 * dead server is removed, but a live server's socket and any other kind
 * of file are left alone (a typo in a config must not delete data).
 */
static int
clear_stale_socket(const struct sockaddr_un *sun)
{
	struct stat st;

	if (lstat(sun->sun_path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	if (live) {
		errno = EADDRINUSE;
		return -1;
	}
	if (unlink(sun->sun_path) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

static int
listen_unix(const mp_sockspec *s, unsigned mode, int backlog)
{
	struct sockaddr_un sun;

	if (fill_sun(s, &sun) != 0 || clear_stale_socket(&sun) != 0)
		return MP_ERR_IO;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return MP_ERR_IO;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		goto fail;
	/* chmod before listen(): until then connects are refused, so the
	 * umask-wide window after bind() cannot be used by anyone. */
	if (mode != 0 && chmod(sun.sun_path, (mode_t)mode) != 0)
		goto fail_unlink;
	if (listen(fd, backlog) != 0)
		goto fail_unlink;
	return fd;
fail_unlink:
	{
		int e = errno;
		unlink(sun.sun_path);
		errno = e;
	}
fail:
	close_keep_errno(fd);
	return MP_ERR_IO;
}

/* getaddrinfo for an INET/INET6 spec; errno set on failure. */
static struct addrinfo *
resolve(const mp_sockspec *s, int passive, int fail_errno)
{
	struct addrinfo hints, *res = NULL;
	char port[8];

	if (s->port < 1 || s->port > 65535 ||
	    memchr(s->host, '\0', sizeof(s->host)) == NULL) {
		errno = EINVAL;
		return NULL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = s->family == MP_SOCK_INET6 ? AF_INET6 : AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (passive && s->host[0] == '\0')
		hints.ai_flags |= AI_PASSIVE;
	snprintf(port, sizeof(port), "%u", s->port);
	int rc = getaddrinfo(s->host[0] != '\0' ? s->host : NULL, port,
	                     &hints, &res);
	if (rc != 0) {
		if (rc != EAI_SYSTEM)
			errno = fail_errno;
		return NULL;
	}
	return res;
}

static int
listen_one(const struct addrinfo *ai, int backlog)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	                ai->ai_protocol);
	if (fd < 0)
		return -1;
	/* inet6 means IPv6 only, so inet: and inet6: on one port coexist. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (ai->ai_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, backlog) != 0) {
		close_keep_errno(fd);
		return -1;
	}
	return fd;
}

static int
listen_inet(const mp_sockspec *s, int backlog)
{
	struct addrinfo *res = resolve(s, 1, EADDRNOTAVAIL);
	int fd = -1;

	if (res == NULL)
		return MP_ERR_IO;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
		fd = listen_one(ai, backlog);
	int e = errno;
	freeaddrinfo(res);
	errno = e;
	return fd >= 0 ? fd : MP_ERR_IO;
}

int
mp_sockspec_listen(const mp_sockspec *s, unsigned mode, int backlog)
{
	if (s == NULL) {
		errno = EINVAL;
		return MP_ERR_IO;
	}
	if (backlog <= 0)
		backlog = SOMAXCONN;
	switch (s->family) {
	case MP_SOCK_UNIX:
		return listen_unix(s, mode, backlog);
	case MP_SOCK_INET:
	case MP_SOCK_INET6:
		return listen_inet(s, backlog);
	}
	errno = EINVAL;
	return MP_ERR_IO;
}

/*
 * connect() interrupted by a signal keeps going in the background and may
 * not simply be restarted: wait for it and fetch its outcome instead.
 */
static int
connect_fd(int fd, const struct sockaddr *sa, socklen_t salen)
{
	if (connect(fd, sa, salen) == 0)
		return 0;
	if (errno != EINTR)
		return -1;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int n = poll(&p, 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		break;
	}
	int soerr = 0;
	socklen_t l = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l) != 0)
		return -1;
	if (soerr != 0) {
		errno = soerr;
		return -1;
	}
	return 0;
}

static int
connect_unix(const mp_sockspec *s)
{
	struct sockaddr_un sun;

	if (fill_sun(s, &sun) != 0)
		return MP_ERR_IO;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return MP_ERR_IO;
	if (connect_fd(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close_keep_errno(fd);
		return MP_ERR_IO;
	}
	return fd;
}

static int
connect_inet(const mp_sockspec *s)
{
	struct addrinfo *res = resolve(s, 0, EHOSTUNREACH);
	int fd = -1;

	if (res == NULL)
		return MP_ERR_IO;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect_fd(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close_keep_errno(fd);
			fd = -1;
		}
	}
	int e = errno;
	freeaddrinfo(res);
	errno = e;
	return fd >= 0 ? fd : MP_ERR_IO;
}

int
mp_sockspec_connect(const mp_sockspec *s)
{
	if (s == NULL) {
		errno = EINVAL;
		return MP_ERR_IO;
	}
	switch (s->family) {
	case MP_SOCK_UNIX:
		return connect_unix(s);
	case MP_SOCK_INET:
	case MP_SOCK_INET6:
		return connect_inet(s);
	}
	errno = EINVAL;
	return MP_ERR_IO;
}
