/*
 * test_sockspec.c - unit tests for socket specifications (lib/sockspec.c).
 *
 * Every accepted form and many rejected ones with their reasons, the
 * canonical format and its round trip, and real listen + connect on a
 * UNIX socket in a temporary directory and on loopback TCP (IPv4, and
 * IPv6 when the host has ::1).
 */
#include "testutil.h"

#include "mailpunch/error.h"
#include "mailpunch/sockspec.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef struct good_case {
	const char *spec;
	mp_sock_family family;
	const char *host_or_path;
	unsigned port;
	const char *canonical;
} good_case;

static const good_case good[] = {
	{ "inet:8893@127.0.0.1", MP_SOCK_INET, "127.0.0.1", 8893,
	  "inet:8893@127.0.0.1" },
	{ "inet:8893@localhost", MP_SOCK_INET, "localhost", 8893,
	  "inet:8893@localhost" },
	{ "INET:25@mx-1.example.org", MP_SOCK_INET, "mx-1.example.org", 25,
	  "inet:25@mx-1.example.org" },
	{ "inet:8893", MP_SOCK_INET, "", 8893, "inet:8893" },
	{ "inet:1", MP_SOCK_INET, "", 1, "inet:1" },
	{ "inet:65535@10.0.0.1", MP_SOCK_INET, "10.0.0.1", 65535,
	  "inet:65535@10.0.0.1" },
	{ "inet:00080@h", MP_SOCK_INET, "h", 80, "inet:80@h" },
	{ "inet6:8893@[::1]", MP_SOCK_INET6, "::1", 8893, "inet6:8893@::1" },
	{ "inet6:8893@::1", MP_SOCK_INET6, "::1", 8893, "inet6:8893@::1" },
	{ "inet6:8893@[2001:db8::42]", MP_SOCK_INET6, "2001:db8::42", 8893,
	  "inet6:8893@2001:db8::42" },
	{ "inet6:8893@fe80::1%eth0", MP_SOCK_INET6, "fe80::1%eth0", 8893,
	  "inet6:8893@fe80::1%eth0" },
	{ "inet6:8893@[::ffff:127.0.0.1]", MP_SOCK_INET6, "::ffff:127.0.0.1",
	  8893, "inet6:8893@::ffff:127.0.0.1" },
	{ "inet6:8893@localhost", MP_SOCK_INET6, "localhost", 8893,
	  "inet6:8893@localhost" },
	{ "inet6:8893", MP_SOCK_INET6, "", 8893, "inet6:8893" },
	{ "unix:/run/mailpunch/milter.sock", MP_SOCK_UNIX,
	  "/run/mailpunch/milter.sock", 0, "unix:/run/mailpunch/milter.sock" },
	{ "local:/run/m.sock", MP_SOCK_UNIX, "/run/m.sock", 0, "unix:/run/m.sock" },
	{ "LOCAL:/x", MP_SOCK_UNIX, "/x", 0, "unix:/x" },
	{ "/var/spool/postfix/mailpunch", MP_SOCK_UNIX,
	  "/var/spool/postfix/mailpunch", 0, "unix:/var/spool/postfix/mailpunch" },
	{ "/path:with@odd chars", MP_SOCK_UNIX, "/path:with@odd chars", 0,
	  "unix:/path:with@odd chars" },
};

typedef struct bad_case {
	const char *spec;
	const char *reason;
} bad_case;

static const bad_case bad[] = {
	{ "", "no socket type (use inet:PORT@HOST, inet6:PORT@HOST, unix:/path "
	      "or /path)" },
	{ "milter.sock", "no socket type (use inet:PORT@HOST, inet6:PORT@HOST, "
	                 "unix:/path or /path)" },
	{ "tcp:25", "unknown socket type 'tcp' (use inet:, inet6:, unix: or "
	            "local:)" },
	{ ":25", "unknown socket type '' (use inet:, inet6:, unix: or local:)" },
	{ "inet4:25", "unknown socket type 'inet4' (use inet:, inet6:, unix: or "
	              "local:)" },
	{ "inet:", "missing port (use inet:PORT@HOST)" },
	{ "inet:@127.0.0.1", "missing port (use inet:PORT@HOST)" },
	{ "inet6:@::1", "missing port (use inet6:PORT@HOST)" },
	{ "inet:0@127.0.0.1", "bad port '0' (use 1..65535)" },
	{ "inet:65536", "bad port '65536' (use 1..65535)" },
	{ "inet:99999999999999999999", "bad port '99999999999999999999' (use "
	                              "1..65535)" },
	{ "inet:-1", "bad port '-1' (use 1..65535)" },
	{ "inet:+25", "bad port '+25' (use 1..65535)" },
	{ "inet: 25", "bad port ' 25' (use 1..65535)" },
	{ "inet:0x19", "bad port '0x19' (use 1..65535)" },
	{ "inet:smtp", "bad port 'smtp' (use 1..65535)" },
	{ "inet:127.0.0.1:8893", "bad port '127.0.0.1:8893' (use 1..65535)" },
	{ "inet:8893@", "missing host after '@'" },
	{ "inet:8893@::1", "IPv6 address '::1' needs inet6:" },
	{ "inet:8893@[::1]", "IPv6 address '[::1]' needs inet6:" },
	{ "inet:8893@bad host", "bad host name 'bad host'" },
	{ "inet:8893@a@b", "bad host name 'a@b'" },
	{ "inet:8893@h/x", "bad host name 'h/x'" },
	{ "inet6:8893@[::1", "missing ']' after IPv6 address" },
	{ "inet6:8893@[]", "bad IPv6 address ''" },
	{ "inet6:8893@[localhost]", "bad IPv6 address 'localhost'" },
	{ "inet6:8893@:::1", "bad IPv6 address ':::1'" },
	{ "inet6:8893@fe80::1%", "bad IPv6 address 'fe80::1%'" },
	{ "inet6:8893@fe80::1%a/b", "bad IPv6 address 'fe80::1%a/b'" },
	{ "unix:", "missing socket path" },
	{ "local:", "missing socket path" },
	{ "unix:relative.sock", "socket path 'relative.sock' is not absolute" },
	{ "unix:~/x.sock", "socket path '~/x.sock' is not absolute" },
};

START_TEST(test_parse_good)
{
	const good_case *g = &good[_i];
	mp_sockspec s;
	char err[256] = "untouched";
	char buf[512];

	ck_assert_msg(mp_sockspec_parse(g->spec, &s, err, sizeof(err)) == MP_OK,
	              "%s: %s", g->spec, err);
	ck_assert_int_eq(s.family, g->family);
	if (g->family == MP_SOCK_UNIX) {
		ck_assert_str_eq(s.path, g->host_or_path);
		ck_assert_str_eq(s.host, "");
		ck_assert_uint_eq(s.port, 0);
	} else {
		ck_assert_str_eq(s.host, g->host_or_path);
		ck_assert_str_eq(s.path, "");
		ck_assert_uint_eq(s.port, g->port);
	}
	mp_sockspec_format(&s, buf, sizeof(buf));
	ck_assert_str_eq(buf, g->canonical);

	/* Round trip: the canonical form parses to the same spec. */
	mp_sockspec again;
	ck_assert_int_eq(mp_sockspec_parse(buf, &again, err, sizeof(err)), MP_OK);
	ck_assert_int_eq(memcmp(&s, &again, sizeof(s)), 0);
}
END_TEST

START_TEST(test_parse_bad)
{
	const bad_case *b = &bad[_i];
	mp_sockspec s;
	char err[256] = "";

	ck_assert_msg(mp_sockspec_parse(b->spec, &s, err, sizeof(err)) ==
	              MP_ERR_SYNTAX, "'%s' accepted", b->spec);
	ck_assert_str_eq(err, b->reason);
}
END_TEST

START_TEST(test_path_length)
{
	char spec[300], err[256];
	mp_sockspec s;
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

	/* Exactly sun_path - 1 bytes fits, with or without "unix:". */
	spec[0] = '/';
	memset(spec + 1, 'p', max - 1);
	spec[max] = '\0';
	ck_assert_int_eq(mp_sockspec_parse(spec, &s, err, sizeof(err)), MP_OK);
	ck_assert_uint_eq(strlen(s.path), max);
	char prefixed[320];
	snprintf(prefixed, sizeof(prefixed), "unix:%s", spec);
	ck_assert_int_eq(mp_sockspec_parse(prefixed, &s, err, sizeof(err)), MP_OK);

	/* One more is refused, not truncated. */
	strcat(spec, "q");
	ck_assert_int_eq(mp_sockspec_parse(spec, &s, err, sizeof(err)),
	                 MP_ERR_SYNTAX);
	ck_assert_str_eq(err, "socket path too long (108 bytes, max 107)");
	memset(spec + 1, 'p', 250);
	spec[251] = '\0';
	ck_assert_int_eq(mp_sockspec_parse(spec, &s, err, sizeof(err)),
	                 MP_ERR_SYNTAX);
}
END_TEST

START_TEST(test_host_length)
{
	char spec[600], err[256];
	mp_sockspec s;

	strcpy(spec, "inet:25@");
	memset(spec + 8, 'h', 255);
	spec[8 + 255] = '\0';
	ck_assert_int_eq(mp_sockspec_parse(spec, &s, err, sizeof(err)), MP_OK);
	ck_assert_uint_eq(strlen(s.host), 255);
	strcat(spec, "h");
	ck_assert_int_eq(mp_sockspec_parse(spec, &s, err, sizeof(err)),
	                 MP_ERR_SYNTAX);
	ck_assert_str_eq(err, "host name too long (max 255 bytes)");
	/* Bracketed form, too. */
	strcpy(spec, "inet6:25@[");
	memset(spec + 10, ':', 300);
	strcpy(spec + 310, "]");
	ck_assert_int_eq(mp_sockspec_parse(spec, &s, err, sizeof(err)),
	                 MP_ERR_SYNTAX);
}
END_TEST

START_TEST(test_parse_args)
{
	mp_sockspec s;
	char err[4];

	ck_assert_int_eq(mp_sockspec_parse(NULL, &s, err, sizeof(err)), MP_ERR_INVAL);
	ck_assert_int_eq(mp_sockspec_parse("/x", NULL, err, sizeof(err)),
	                 MP_ERR_INVAL);
	/* A small or absent error buffer is fine. */
	ck_assert_int_eq(mp_sockspec_parse("tcp:1", &s, err, sizeof(err)),
	                 MP_ERR_SYNTAX);
	ck_assert_str_eq(err, "unk");
	ck_assert_int_eq(mp_sockspec_parse("tcp:1", &s, NULL, 0), MP_ERR_SYNTAX);
}
END_TEST

START_TEST(test_format_small_buffer)
{
	mp_sockspec s;
	char buf[8];

	ck_assert_int_eq(mp_sockspec_parse("inet:8893@127.0.0.1", &s, NULL, 0),
	                 MP_OK);
	memset(buf, 'z', sizeof(buf));
	mp_sockspec_format(&s, buf, sizeof(buf));
	ck_assert_str_eq(buf, "inet:88");
	mp_sockspec_format(&s, buf, 0);     /* must not write */
	ck_assert_str_eq(buf, "inet:88");
	mp_sockspec_format(NULL, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
}
END_TEST

/* ------------------------------------------------------------ sockets */

static char tmpdir[64];

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mp_socktest.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/s.sock", tmpdir);
	unlink(p);
	rmdir(tmpdir);
}

/* Connect through the spec, accept on lfd, and pass a byte each way. */
static void
exchange(const mp_sockspec *s, int lfd)
{
	char c = 0;

	int cfd = mp_sockspec_connect(s);
	ck_assert_msg(cfd >= 0, "connect: %s", strerror(errno));
	int afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	ck_assert_int_eq(write(cfd, "p", 1), 1);
	ck_assert_int_eq(read(afd, &c, 1), 1);
	ck_assert_int_eq(c, 'p');
	ck_assert_int_eq(write(afd, "q", 1), 1);
	ck_assert_int_eq(read(cfd, &c, 1), 1);
	ck_assert_int_eq(c, 'q');
	ck_assert_int_eq(fcntl(cfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(afd);
	close(cfd);
}

static void
unix_spec(mp_sockspec *s)
{
	char spec[128], err[256];

	snprintf(spec, sizeof(spec), "unix:%s/s.sock", tmpdir);
	ck_assert_int_eq(mp_sockspec_parse(spec, s, err, sizeof(err)), MP_OK);
}

START_TEST(test_unix_listen_connect)
{
	mp_sockspec s;
	struct stat sb;

	unix_spec(&s);
	int lfd = mp_sockspec_listen(&s, 0600, 5);
	ck_assert_msg(lfd >= 0, "listen: %s", strerror(errno));
	ck_assert_int_eq(fcntl(lfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(stat(s.path, &sb), 0);
	ck_assert(S_ISSOCK(sb.st_mode));
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	exchange(&s, lfd);

	/* A live server's socket is not stolen. */
	errno = 0;
	ck_assert_int_eq(mp_sockspec_listen(&s, 0, 5), MP_ERR_IO);
	ck_assert_int_eq(errno, EADDRINUSE);
	/* The liveness probe reached the server as an empty connection. */
	int probe = accept(lfd, NULL, NULL);
	char c;
	ck_assert_int_ge(probe, 0);
	ck_assert_int_eq(read(probe, &c, 1), 0);
	close(probe);
	exchange(&s, lfd);
	close(lfd);

	/* Once the server is gone, its socket file is stale: replaced. */
	ck_assert_int_eq(stat(s.path, &sb), 0);
	lfd = mp_sockspec_listen(&s, 0660, 0);
	ck_assert_msg(lfd >= 0, "relisten: %s", strerror(errno));
	ck_assert_int_eq(stat(s.path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0660);
	exchange(&s, lfd);
	close(lfd);
}
END_TEST

START_TEST(test_unix_refuses_regular_file)
{
	mp_sockspec s;
	char buf[16] = "";

	unix_spec(&s);
	int fd = open(s.path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "precious", 8), 8);
	close(fd);

	errno = 0;
	ck_assert_int_eq(mp_sockspec_listen(&s, 0600, 5), MP_ERR_IO);
	ck_assert_int_eq(errno, EEXIST);
	fd = open(s.path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 8);
	ck_assert_str_eq(buf, "precious");
	close(fd);

	/* Nor a directory. */
	unlink(s.path);
	ck_assert_int_eq(mkdir(s.path, 0700), 0);
	ck_assert_int_eq(mp_sockspec_listen(&s, 0600, 5), MP_ERR_IO);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(rmdir(s.path), 0);
}
END_TEST

START_TEST(test_unix_connect_errors)
{
	mp_sockspec s;

	unix_spec(&s);
	errno = 0;
	ck_assert_int_eq(mp_sockspec_connect(&s), MP_ERR_IO);
	ck_assert_int_eq(errno, ENOENT);

	/* A socket file nobody listens on. */
	int lfd = mp_sockspec_listen(&s, 0, 1);
	ck_assert_int_ge(lfd, 0);
	close(lfd);
	errno = 0;
	ck_assert_int_eq(mp_sockspec_connect(&s), MP_ERR_IO);
	ck_assert_int_eq(errno, ECONNREFUSED);

	/* Directory missing: bind fails, errno kept. */
	char spec[160];
	snprintf(spec, sizeof(spec), "%s/no/such/dir.sock", tmpdir);
	ck_assert_int_eq(mp_sockspec_parse(spec, &s, NULL, 0), MP_OK);
	errno = 0;
	ck_assert_int_eq(mp_sockspec_listen(&s, 0, 1), MP_ERR_IO);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(mp_sockspec_listen(NULL, 0, 1), MP_ERR_IO);
	ck_assert_int_eq(mp_sockspec_connect(NULL), MP_ERR_IO);
}
END_TEST

/*
 * Listen on a random high loopback port; retry while it is taken.
 * Returns the fd, or -1 with errno when the family is unavailable.
 */
static int
listen_random(const char *type, const char *at_host, mp_sockspec *s)
{
	static unsigned seed;
	if (seed == 0)
		seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	for (int tries = 0; tries < 50; tries++) {
		char spec[64], err[256];
		unsigned port = 20000 + (unsigned)(rand_r(&seed) % 40000);
		snprintf(spec, sizeof(spec), "%s:%u%s", type, port, at_host);
		ck_assert_msg(mp_sockspec_parse(spec, s, err, sizeof(err)) == MP_OK,
		              "%s: %s", spec, err);
		int fd = mp_sockspec_listen(s, 0, 8);
		if (fd >= 0)
			return fd;
		ck_assert_int_eq(fd, MP_ERR_IO);
		if (errno != EADDRINUSE)
			return -1;
	}
	ck_abort_msg("no free port after 50 tries");
	return -1;
}

START_TEST(test_inet_listen_connect)
{
	mp_sockspec s;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	int lfd = listen_random("inet", "@127.0.0.1", &s);
	ck_assert_msg(lfd >= 0, "listen: %s", strerror(errno));
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	ck_assert_int_eq(sa.sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sa.sin_port), s.port);
	ck_assert_uint_eq(ntohl(sa.sin_addr.s_addr), INADDR_LOOPBACK);
	int one = 0;
	socklen_t ol = sizeof(one);
	ck_assert_int_eq(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, &ol), 0);
	ck_assert_int_ne(one, 0);
	exchange(&s, lfd);

	/* "localhost" resolves; a second listener on the port fails. */
	mp_sockspec byname = s;
	snprintf(byname.host, sizeof(byname.host), "localhost");
	exchange(&byname, lfd);
	errno = 0;
	ck_assert_int_eq(mp_sockspec_listen(&s, 0, 1), MP_ERR_IO);
	ck_assert_int_eq(errno, EADDRINUSE);
	close(lfd);

	errno = 0;
	ck_assert_int_eq(mp_sockspec_connect(&s), MP_ERR_IO);
	ck_assert_int_eq(errno, ECONNREFUSED);
}
END_TEST

START_TEST(test_inet_hand_built)
{
	mp_sockspec s;

	/* listen/connect check specs that did not come from the parser. */
	ck_assert_int_eq(mp_sockspec_parse("inet:2525@127.0.0.1", &s, NULL, 0),
	                 MP_OK);
	s.port = 0;
	errno = 0;
	ck_assert_int_eq(mp_sockspec_listen(&s, 0, 1), MP_ERR_IO);
	ck_assert_int_eq(errno, EINVAL);
	s.port = 70000;
	errno = 0;
	ck_assert_int_eq(mp_sockspec_connect(&s), MP_ERR_IO);
	ck_assert_int_eq(errno, EINVAL);
	s.port = 2525;
	memset(s.host, 'h', sizeof(s.host));     /* no terminator */
	errno = 0;
	ck_assert_int_eq(mp_sockspec_connect(&s), MP_ERR_IO);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(mp_sockspec_parse("/x", &s, NULL, 0), MP_OK);
	memset(s.path, 'p', sizeof(s.path));
	errno = 0;
	ck_assert_int_eq(mp_sockspec_connect(&s), MP_ERR_IO);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

START_TEST(test_inet6_listen_connect)
{
	mp_sockspec s;

	int lfd = listen_random("inet6", "@[::1]", &s);
	if (lfd < 0 && (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT)) {
		fprintf(stderr, "test_inet6_listen_connect: no ::1 here, skipped\n");
		return;
	}
	ck_assert_msg(lfd >= 0, "listen: %s", strerror(errno));
	int v6only = 0;
	socklen_t ol = sizeof(v6only);
	ck_assert_int_eq(getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol), 0);
	ck_assert_int_eq(v6only, 1);
	exchange(&s, lfd);
	close(lfd);
}
END_TEST

Suite *sockspec_suite(void);

Suite *
sockspec_suite(void)
{
	Suite *s = suite_create("sockspec");
	TCase *tp = tcase_create("parse");
	tcase_add_loop_test(tp, test_parse_good, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_loop_test(tp, test_parse_bad, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tp, test_path_length);
	tcase_add_test(tp, test_host_length);
	tcase_add_test(tp, test_parse_args);
	tcase_add_test(tp, test_format_small_buffer);
	suite_add_tcase(s, tp);

	TCase *tn = tcase_create("net");
	tcase_add_checked_fixture(tn, setup, teardown);
	tcase_add_test(tn, test_unix_listen_connect);
	tcase_add_test(tn, test_unix_refuses_regular_file);
	tcase_add_test(tn, test_unix_connect_errors);
	tcase_add_test(tn, test_inet_listen_connect);
	tcase_add_test(tn, test_inet_hand_built);
	tcase_add_test(tn, test_inet6_listen_connect);
	suite_add_tcase(s, tn);
	return s;
}

MP_TEST_MAIN(sockspec_suite)
