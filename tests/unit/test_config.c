/*
 * test_config.c - unit tests for the configuration loader (lib/config.c).
 *
 * Every value type, good and bad, with the exact "file:line: reason"
 * text; comments, case, defaults, required keys, repeats, list append,
 * line and file limits, and the single-value parsers on their own.
 */
#include "testutil.h"

#include "mailpunch/config.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct settings {
	int flag;
	long long port;
	long long maxsize;
	long long ttl;
	char *name;
	char *keyfile;
	char *socket;
	mp_strlist allow;
	int level;
} settings;

static const mp_cfg_option opts[] = {
	{ "Flag", MP_CFG_BOOL, offsetof(settings, flag), 0, 0, "no", 0 },
	{ "Port", MP_CFG_INT, offsetof(settings, port), 1, 65535, NULL, 0 },
	{ "MaxSize", MP_CFG_SIZE, offsetof(settings, maxsize), 0, LLONG_MAX,
	  "64k", 0 },
	{ "TTL", MP_CFG_DURATION, offsetof(settings, ttl), 0, LLONG_MAX,
	  "1h", 0 },
	{ "Name", MP_CFG_STRING, offsetof(settings, name), 0, 0,
	  "default-name", 0 },
	{ "KeyFile", MP_CFG_PATH, offsetof(settings, keyfile), 0, 0, NULL, 1 },
	{ "Socket", MP_CFG_SOCKET, offsetof(settings, socket), 0, 0,
	  "inet:8893@127.0.0.1", 0 },
	{ "Allow", MP_CFG_ADDRLIST, offsetof(settings, allow), 0, 0, NULL, 0 },
	{ "LogLevel", MP_CFG_LEVEL, offsetof(settings, level), 0, 0, "info", 0 },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static settings st;
static char err[8192];

static void
setup(void)
{
	memset(&st, 0, sizeof(st));
	memset(err, 0, sizeof(err));
}

static void
teardown(void)
{
	mp_config_free(opts, NOPTS, &st);
}

/* Between two parses in one test: drop what the first one stored. */
static void
reset(void)
{
	teardown();
	setup();
}

static int
run(const char *text)
{
	return mp_config_parse("test.conf", text, strlen(text), opts, NOPTS,
	                       &st, err, sizeof(err));
}

/* Parse "KeyFile /k\n" + line (so line is line 2) and expect err. */
static void
expect_bad(const char *line, const char *want)
{
	char text[8192];
	snprintf(text, sizeof(text), "KeyFile /k\n%s\n", line);
	mp_config_free(opts, NOPTS, &st);
	memset(&st, 0, sizeof(st));
	int rc = run(text);
	ck_assert_msg(rc == MP_ERR_CONFIG, "'%s' accepted (rc %d)", line, rc);
	ck_assert_str_eq(err, want);
}

START_TEST(test_all_types_good)
{
	int rc = run("Flag yes\n"
	             "Port 8893\n"
	             "MaxSize 10M\n"
	             "TTL 15m\n"
	             "Name  mail punch  \n"
	             "KeyFile /etc/mailpunch/key\n"
	             "Socket unix:/run/mailpunch/milter.sock\n"
	             "Allow alice@example.org, bob@example.net\n"
	             "LogLevel debug\n");
	ck_assert_msg(rc == MP_OK, "rc %d: %s", rc, err);
	ck_assert_int_eq(st.flag, 1);
	ck_assert_int_eq(st.port, 8893);
	ck_assert_int_eq(st.maxsize, 10LL * 1024 * 1024);
	ck_assert_int_eq(st.ttl, 900);
	ck_assert_str_eq(st.name, "mail punch");
	ck_assert_str_eq(st.keyfile, "/etc/mailpunch/key");
	ck_assert_str_eq(st.socket, "unix:/run/mailpunch/milter.sock");
	ck_assert_uint_eq(st.allow.count, 2);
	ck_assert_str_eq(st.allow.items[0], "alice@example.org");
	ck_assert_str_eq(st.allow.items[1], "bob@example.net");
	ck_assert_int_eq(st.level, MP_LOG_DEBUG);
}
END_TEST

START_TEST(test_defaults)
{
	int rc = run("KeyFile /k\n");
	ck_assert_msg(rc == MP_OK, "rc %d: %s", rc, err);
	ck_assert_int_eq(st.flag, 0);
	ck_assert_int_eq(st.port, 0);        /* no default: untouched */
	ck_assert_int_eq(st.maxsize, 65536);
	ck_assert_int_eq(st.ttl, 3600);
	ck_assert_str_eq(st.name, "default-name");
	ck_assert_str_eq(st.socket, "inet:8893@127.0.0.1");
	ck_assert_uint_eq(st.allow.count, 0);
	ck_assert_ptr_null(st.allow.items);
	ck_assert_int_eq(st.level, MP_LOG_INFO);
}
END_TEST

START_TEST(test_file_overrides_default_string)
{
	/* The default string must be freed when replaced (ASan would see). */
	int rc = run("Name other\nKeyFile /k\nSocket /run/x.sock\n");
	ck_assert_msg(rc == MP_OK, "rc %d: %s", rc, err);
	ck_assert_str_eq(st.name, "other");
	ck_assert_str_eq(st.socket, "/run/x.sock");
}
END_TEST

START_TEST(test_case_insensitive_keys)
{
	int rc = run("keyfile /k\nPORT 25\nloglevel WARNING\nfLaG ON\n");
	ck_assert_msg(rc == MP_OK, "rc %d: %s", rc, err);
	ck_assert_str_eq(st.keyfile, "/k");
	ck_assert_int_eq(st.port, 25);
	ck_assert_int_eq(st.level, MP_LOG_WARNING);
	ck_assert_int_eq(st.flag, 1);
}
END_TEST

START_TEST(test_comments_and_blanks)
{
	int rc = run("# a comment line\n"
	             "\n"
	             "   \t  \n"
	             "    # indented comment\n"
	             "KeyFile /k # trailing comment\n"
	             "Name a#b\n"
	             "\tPort\t\t  25\t# tabs everywhere\n");
	ck_assert_msg(rc == MP_OK, "rc %d: %s", rc, err);
	ck_assert_str_eq(st.keyfile, "/k");
	ck_assert_str_eq(st.name, "a#b");
	ck_assert_int_eq(st.port, 25);
}
END_TEST

START_TEST(test_comment_hash_after_value_char)
{
	int rc = run("KeyFile /k#x\nName #not-a-value\n");
	/* "Name #..." leaves Name without a value. */
	ck_assert_int_eq(rc, MP_ERR_CONFIG);
	ck_assert_str_eq(err, "test.conf:2: Name: missing value");
}
END_TEST

START_TEST(test_crlf_bom_and_no_final_newline)
{
	int rc = run("\xEF\xBB\xBFKeyFile /k\r\nPort 99\r\nName last");
	ck_assert_msg(rc == MP_OK, "rc %d: %s", rc, err);
	ck_assert_str_eq(st.keyfile, "/k");
	ck_assert_int_eq(st.port, 99);
	ck_assert_str_eq(st.name, "last");
}
END_TEST

START_TEST(test_unknown_key)
{
	int rc = run("KeyFile /k\n\nFoo bar\n");
	ck_assert_int_eq(rc, MP_ERR_CONFIG);
	ck_assert_str_eq(err, "test.conf:3: unknown key 'Foo'");
	expect_bad("Port=25", "test.conf:2: unknown key 'Port=25'");
}
END_TEST

START_TEST(test_repeated_key)
{
	int rc = run("KeyFile /k\nPort 1\n# x\nport 2\n");
	ck_assert_int_eq(rc, MP_ERR_CONFIG);
	ck_assert_str_eq(err, "test.conf:4: 'Port' given twice (first at line 2)");
	/* A default does not count as a first use. */
	reset();
	rc = run("KeyFile /k\nName x\n");
	ck_assert_msg(rc == MP_OK, "rc %d: %s", rc, err);
}
END_TEST

START_TEST(test_required_missing)
{
	int rc = run("Port 1\n");
	ck_assert_int_eq(rc, MP_ERR_CONFIG);
	ck_assert_str_eq(err, "test.conf: required key 'KeyFile' missing");
	reset();
	rc = run("");
	ck_assert_int_eq(rc, MP_ERR_CONFIG);
	ck_assert_str_eq(err, "test.conf: required key 'KeyFile' missing");
}
END_TEST

START_TEST(test_missing_value)
{
	expect_bad("Port", "test.conf:2: Port: missing value");
	expect_bad("Name   \t", "test.conf:2: Name: missing value");
	expect_bad("Allow", "test.conf:2: Allow: missing value");
}
END_TEST

START_TEST(test_bool_values)
{
	static const struct { const char *s; int v; } good[] = {
		{ "yes", 1 }, { "YES", 1 }, { "true", 1 }, { "True", 1 },
		{ "on", 1 }, { "1", 1 }, { "no", 0 }, { "No", 0 },
		{ "false", 0 }, { "FALSE", 0 }, { "off", 0 }, { "0", 0 },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char text[64];
		reset();
		st.flag = !good[i].v;
		snprintf(text, sizeof(text), "KeyFile /k\nFlag %s\n", good[i].s);
		ck_assert_int_eq(run(text), MP_OK);
		ck_assert_int_eq(st.flag, good[i].v);
	}
	expect_bad("Flag maybe", "test.conf:2: Flag: expected yes or no");
	expect_bad("Flag 2", "test.conf:2: Flag: expected yes or no");
	expect_bad("Flag yes please", "test.conf:2: Flag: expected yes or no");
	expect_bad("Flag y", "test.conf:2: Flag: expected yes or no");
}
END_TEST

START_TEST(test_int_values)
{
	ck_assert_int_eq(run("KeyFile /k\nPort +65535\n"), MP_OK);
	ck_assert_int_eq(st.port, 65535);
	expect_bad("Port 0", "test.conf:2: Port: integer out of range 1..65535");
	expect_bad("Port 65536", "test.conf:2: Port: integer out of range 1..65535");
	expect_bad("Port -1", "test.conf:2: Port: integer out of range 1..65535");
	expect_bad("Port 99999999999999999999",
	           "test.conf:2: Port: integer out of range 1..65535");
	expect_bad("Port -99999999999999999999",
	           "test.conf:2: Port: integer out of range 1..65535");
	expect_bad("Port 12abc", "test.conf:2: Port: not an integer");
	expect_bad("Port 0x10", "test.conf:2: Port: not an integer");
	expect_bad("Port 1 2", "test.conf:2: Port: not an integer");
	expect_bad("Port 1k", "test.conf:2: Port: not an integer");
	expect_bad("Port -", "test.conf:2: Port: not an integer");
	expect_bad("Port 99999999999999999999x",
	           "test.conf:2: Port: not an integer");
}
END_TEST

START_TEST(test_size_values)
{
	static const struct { const char *s; long long v; } good[] = {
		{ "0", 0 }, { "512", 512 }, { "2k", 2048 }, { "2K", 2048 },
		{ "10m", 10485760 }, { "10M", 10485760 },
		{ "1g", 1073741824 }, { "3G", 3221225472LL },
		{ "8589934591G", 8589934591LL * 1073741824LL },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char text[64];
		reset();
		snprintf(text, sizeof(text), "KeyFile /k\nMaxSize %s\n", good[i].s);
		ck_assert_msg(run(text) == MP_OK, "%s: %s", good[i].s, err);
		ck_assert_int_eq(st.maxsize, good[i].v);
	}
	expect_bad("MaxSize 10MB",
	           "test.conf:2: MaxSize: bad size (use 512, 64k, 10M, 1G)");
	expect_bad("MaxSize 1.5M",
	           "test.conf:2: MaxSize: bad size (use 512, 64k, 10M, 1G)");
	expect_bad("MaxSize k",
	           "test.conf:2: MaxSize: bad size (use 512, 64k, 10M, 1G)");
	expect_bad("MaxSize 10 M",
	           "test.conf:2: MaxSize: bad size (use 512, 64k, 10M, 1G)");
	expect_bad("MaxSize 8589934592G",   /* 2^63: one past the top */
	           "test.conf:2: MaxSize: size out of range 0..9223372036854775807");
	expect_bad("MaxSize 99999999999999999999k",
	           "test.conf:2: MaxSize: size out of range 0..9223372036854775807");
	expect_bad("MaxSize -1k",
	           "test.conf:2: MaxSize: size out of range 0..9223372036854775807");
}
END_TEST

START_TEST(test_duration_values)
{
	static const struct { const char *s; long long v; } good[] = {
		{ "45", 45 }, { "30s", 30 }, { "15m", 900 }, { "12h", 43200 },
		{ "7d", 604800 }, { "0", 0 },
		{ "106751991167300d", 106751991167300LL * 86400 },
		{ "9223372036854775807", LLONG_MAX },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char text[64];
		reset();
		snprintf(text, sizeof(text), "KeyFile /k\nTTL %s\n", good[i].s);
		ck_assert_msg(run(text) == MP_OK, "%s: %s", good[i].s, err);
		ck_assert_int_eq(st.ttl, good[i].v);
	}
	static const char *bad[] = { "1w", "10S", "h", "1.5h", "1h30m", "5 s",
	                             "ms" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "TTL %s", bad[i]);
		expect_bad(line, "test.conf:2: TTL: bad duration "
		           "(use 30s, 15m, 12h, 7d)");
	}
	expect_bad("TTL 106751991167301d", "test.conf:2: TTL: duration out of "
	           "range 0..9223372036854775807 seconds");
	expect_bad("TTL 9223372036854775808", "test.conf:2: TTL: duration out of "
	           "range 0..9223372036854775807 seconds");
	expect_bad("TTL -1s", "test.conf:2: TTL: duration out of "
	           "range 0..9223372036854775807 seconds");
}
END_TEST

START_TEST(test_path_values)
{
	static const char *bad[] = { "etc/key", "./key", "~/key" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[64];
		reset();
		snprintf(text, sizeof(text), "Port 1\nKeyFile %s\n", bad[i]);
		ck_assert_int_eq(run(text), MP_ERR_CONFIG);
		ck_assert_str_eq(err, "test.conf:2: KeyFile: not an absolute path");
	}
	reset();
	int rc = run("KeyFile /a b/c\n");
	ck_assert_msg(rc == MP_OK, "rc %d: %s", rc, err);
	ck_assert_str_eq(st.keyfile, "/a b/c");
}
END_TEST

START_TEST(test_socket_values)
{
	expect_bad("Socket inet:0@127.0.0.1",
	           "test.conf:2: Socket: bad socket spec: bad port '0' (use 1..65535)");
	expect_bad("Socket tcp:25",
	           "test.conf:2: Socket: bad socket spec: unknown socket type "
	           "'tcp' (use inet:, inet6:, unix: or local:)");
	expect_bad("Socket relative.sock",
	           "test.conf:2: Socket: bad socket spec: no socket type (use "
	           "inet:PORT@HOST, inet6:PORT@HOST, unix:/path or /path)");
	reset();
	int rc = run("KeyFile /k\nSocket inet6:8893@[::1]\n");
	ck_assert_msg(rc == MP_OK, "rc %d: %s", rc, err);
	ck_assert_str_eq(st.socket, "inet6:8893@[::1]");
}
END_TEST

START_TEST(test_level_values)
{
	expect_bad("LogLevel loud", "test.conf:2: LogLevel: unknown log level "
	           "'loud' (use err, warning, notice, info or debug)");
	reset();
	int rc = run("KeyFile /k\nLogLevel Notice\n");
	ck_assert_msg(rc == MP_OK, "rc %d: %s", rc, err);
	ck_assert_int_eq(st.level, MP_LOG_NOTICE);
}
END_TEST

START_TEST(test_addrlist_append)
{
	int rc = run("Allow a@x.example,b@x.example c@x.example\t, ,d@x.example\n"
	             "KeyFile /k\n"
	             "allow E@Y.example\n");
	ck_assert_msg(rc == MP_OK, "rc %d: %s", rc, err);
	ck_assert_uint_eq(st.allow.count, 5);
	ck_assert_str_eq(st.allow.items[0], "a@x.example");
	ck_assert_str_eq(st.allow.items[1], "b@x.example");
	ck_assert_str_eq(st.allow.items[2], "c@x.example");
	ck_assert_str_eq(st.allow.items[3], "d@x.example");
	ck_assert_str_eq(st.allow.items[4], "E@Y.example");
	ck_assert(mp_strlist_contains(&st.allow, "e@y.EXAMPLE"));
	ck_assert(mp_strlist_contains(&st.allow, "B@X.example"));
	ck_assert(!mp_strlist_contains(&st.allow, "f@x.example"));
}
END_TEST

START_TEST(test_addrlist_bad)
{
	expect_bad("Allow a@b.example, <x@y.example>",
	           "test.conf:2: Allow: bad mail address '<x@y.example>'");
	expect_bad("Allow nobody", "test.conf:2: Allow: bad mail address 'nobody'");
	expect_bad("Allow , ,", "test.conf:2: Allow: no mail address given");
	/* A bad address leaves the list as it was. */
	reset();
	int rc = run("KeyFile /k\nAllow a@b.example\nAllow c@d.example @e\n");
	ck_assert_int_eq(rc, MP_ERR_CONFIG);
	ck_assert_str_eq(err, "test.conf:3: Allow: bad mail address '@e'");
	ck_assert_uint_eq(st.allow.count, 1);
}
END_TEST

typedef struct small {
	mp_strlist list;
	char *s;
} small;

START_TEST(test_addrlist_default_replaced)
{
	static const mp_cfg_option o[] = {
		{ "List", MP_CFG_ADDRLIST, offsetof(small, list), 0, 0,
		  "def1@x.example def2@x.example", 0 },
	};
	small sm;
	memset(&sm, 0, sizeof(sm));
	const char *t1 = "";
	ck_assert_int_eq(mp_config_parse("s", t1, 0, o, 1, &sm, err, sizeof(err)),
	                 MP_OK);
	ck_assert_uint_eq(sm.list.count, 2);
	mp_config_free(o, 1, &sm);
	const char *t2 = "List a@x.example\nList b@x.example\n";
	ck_assert_int_eq(mp_config_parse("s", t2, strlen(t2), o, 1, &sm, err,
	                                 sizeof(err)), MP_OK);
	ck_assert_uint_eq(sm.list.count, 2);
	ck_assert_str_eq(sm.list.items[0], "a@x.example");
	ck_assert_str_eq(sm.list.items[1], "b@x.example");
	mp_config_free(o, 1, &sm);
}
END_TEST

START_TEST(test_lines_repeat_and_keep_blanks)
{
	static const mp_cfg_option o[] = {
		{ "Host", MP_CFG_LINES, offsetof(small, list), 0, 0, "dflt line", 0 },
	};
	small sm;
	memset(&sm, 0, sizeof(sm));
	const char *t = "Host  rdv@a.example  mph1.AAAA\n# note\nhost rdv@b.example mph1.BBBB\n";
	ck_assert_int_eq(mp_config_parse("s", t, strlen(t), o, 1, &sm, err, sizeof(err)), MP_OK);
	/* the default is replaced by the first line, later lines append */
	ck_assert_uint_eq(sm.list.count, 2);
	ck_assert_str_eq(sm.list.items[0], "rdv@a.example  mph1.AAAA");
	ck_assert_str_eq(sm.list.items[1], "rdv@b.example mph1.BBBB");
	mp_config_free(o, 1, &sm);
	ck_assert_int_eq(mp_config_parse("s", "", 0, o, 1, &sm, err, sizeof(err)), MP_OK);
	ck_assert_uint_eq(sm.list.count, 1);
	ck_assert_str_eq(sm.list.items[0], "dflt line");
	mp_config_free(o, 1, &sm);
	ck_assert_int_eq(mp_config_parse("s", "Host\n", 5, o, 1, &sm, err, sizeof(err)), MP_ERR_CONFIG);
	ck_assert_str_eq(err, "s:1: Host: missing value");
	mp_config_free(o, 1, &sm);
}
END_TEST

START_TEST(test_bad_default_is_inval)
{
	static const mp_cfg_option o[] = {
		{ "N", MP_CFG_INT, offsetof(settings, port), 1, 10, "11", 0 },
	};
	settings s2;
	memset(&s2, 0, sizeof(s2));
	ck_assert_int_eq(mp_config_parse("t", "", 0, o, 1, &s2, err, sizeof(err)),
	                 MP_ERR_INVAL);
	ck_assert_str_eq(err, "t: default for 'N' invalid: integer out of range 1..10");
}
END_TEST

START_TEST(test_bad_table_is_inval)
{
	static const mp_cfg_option dup[] = {
		{ "N", MP_CFG_INT, offsetof(settings, port), 1, 10, NULL, 0 },
		{ "n", MP_CFG_INT, offsetof(settings, ttl), 1, 10, NULL, 0 },
	};
	static const mp_cfg_option range[] = {
		{ "N", MP_CFG_INT, offsetof(settings, port), 10, 1, NULL, 0 },
	};
	settings s2;
	memset(&s2, 0, sizeof(s2));
	ck_assert_int_eq(mp_config_parse("t", "", 0, dup, 2, &s2, err, sizeof(err)),
	                 MP_ERR_INVAL);
	ck_assert_int_eq(mp_config_parse("t", "", 0, range, 1, &s2, err,
	                                 sizeof(err)), MP_ERR_INVAL);
	ck_assert_int_eq(mp_config_parse("t", "", 0, opts, NOPTS, NULL, err,
	                                 sizeof(err)), MP_ERR_INVAL);
}
END_TEST

START_TEST(test_line_length_limit)
{
	static char text[16384];
	char name[4096 - 5 + 1];

	/* "Name " + 4091 bytes = exactly 4096: accepted. */
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(text, sizeof(text), "KeyFile /k\nName %s\n", name);
	ck_assert_msg(run(text) == MP_OK, "%s", err);
	ck_assert_uint_eq(strlen(st.name), 4091);

	/* One byte more on line 3 is refused, CR/LF not counted. */
	reset();
	snprintf(text, sizeof(text), "KeyFile /k\n#\nName %sx\r\n", name);
	ck_assert_int_eq(run(text), MP_ERR_CONFIG);
	ck_assert_str_eq(err, "test.conf:3: line too long (over 4096 bytes)");

	/* A long comment line is still a long line. */
	reset();
	memset(text, '#', 9000);
	text[9000] = '\0';
	ck_assert_int_eq(run(text), MP_ERR_CONFIG);
	ck_assert_str_eq(err, "test.conf:1: line too long (over 4096 bytes)");
}
END_TEST

START_TEST(test_control_and_nul)
{
	expect_bad("Name a\x01" "b", "test.conf:2: control character in line");
	expect_bad("Name a\rb", "test.conf:2: control character in line");
	reset();
	static const char t[] = "KeyFile /k\nName a\0b\n";
	ck_assert_int_eq(mp_config_parse("test.conf", t, sizeof(t) - 1, opts,
	                                 NOPTS, &st, err, sizeof(err)),
	                 MP_ERR_CONFIG);
	ck_assert_str_eq(err, "test.conf:2: NUL byte in line");
	/* Control characters inside a comment are harmless. */
	reset();
	ck_assert_int_eq(run("KeyFile /k # \x1b[31m\n"), MP_OK);
}
END_TEST

START_TEST(test_free_idempotent)
{
	ck_assert_int_eq(run("KeyFile /k\nAllow a@b.example\n"), MP_OK);
	mp_config_free(opts, NOPTS, &st);
	ck_assert_ptr_null(st.name);
	ck_assert_ptr_null(st.keyfile);
	ck_assert_ptr_null(st.socket);
	ck_assert_ptr_null(st.allow.items);
	ck_assert_uint_eq(st.allow.count, 0);
	mp_config_free(opts, NOPTS, &st);
	mp_config_free(NULL, 0, NULL);
}
END_TEST

static char tmpdir[64];

static void
make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mp_cfgtest.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_load_file)
{
	char path[128], want[256];

	make_tmpdir();
	snprintf(path, sizeof(path), "%s/good.conf", tmpdir);
	write_file(path, "KeyFile /k\nPort 2525\n", 21);
	ck_assert_int_eq(mp_config_load(path, opts, NOPTS, &st, err, sizeof(err)),
	                 MP_OK);
	ck_assert_int_eq(st.port, 2525);
	mp_config_free(opts, NOPTS, &st);

	/* Messages carry the path given. */
	write_file(path, "KeyFile /k\nPort x\n", 18);
	ck_assert_int_eq(mp_config_load(path, opts, NOPTS, &st, err, sizeof(err)),
	                 MP_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s:2: Port: not an integer", path);
	ck_assert_str_eq(err, want);
	mp_config_free(opts, NOPTS, &st);
	unlink(path);

	errno = 0;
	ck_assert_int_eq(mp_config_load(path, opts, NOPTS, &st, err, sizeof(err)),
	                 MP_ERR_IO);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_ptr_nonnull(strstr(err, "No such file"));

	ck_assert_int_eq(mp_config_load(tmpdir, opts, NOPTS, &st, err, sizeof(err)),
	                 MP_ERR_IO);
	rmdir(tmpdir);
}
END_TEST

START_TEST(test_load_too_large)
{
	char path[128], want[256];
	size_t big = 1024 * 1024 + 1;
	char *data = malloc(big);

	ck_assert_ptr_nonnull(data);
	make_tmpdir();
	snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
	memset(data, '\n', big);
	memcpy(data, "KeyFile /k\n", 11);
	write_file(path, data, big);
	ck_assert_int_eq(mp_config_load(path, opts, NOPTS, &st, err, sizeof(err)),
	                 MP_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s: file too large (over 1048576 bytes)",
	         path);
	ck_assert_str_eq(err, want);

	/* Exactly 1 MiB is fine. */
	write_file(path, data, big - 1);
	ck_assert_int_eq(mp_config_load(path, opts, NOPTS, &st, err, sizeof(err)),
	                 MP_OK);
	free(data);
	unlink(path);
	rmdir(tmpdir);
}
END_TEST

START_TEST(test_parse_numbers_direct)
{
	long long v = -7;
	int b = -1;

	ck_assert_int_eq(mp_parse_int("42", 0, 100, &v), MP_OK);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(mp_parse_int("-9223372036854775808", LLONG_MIN, 0, &v),
	                 MP_OK);
	ck_assert(v == LLONG_MIN);
	v = 5;
	ck_assert_int_eq(mp_parse_int("101", 0, 100, &v), MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_parse_int("9223372036854775808", 0, LLONG_MAX, &v),
	                 MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_parse_int(" 1", 0, 100, &v), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_parse_int("", 0, 100, &v), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_parse_int("1", 5, 1, &v), MP_ERR_INVAL);
	ck_assert_int_eq(v, 5);   /* untouched on failure */
	ck_assert_int_eq(mp_parse_size("1k", 0, 1023, &v), MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_parse_size("4G", 0, LLONG_MAX, &v), MP_OK);
	ck_assert_int_eq(v, 4LL << 30);
	ck_assert_int_eq(mp_parse_size("-8589934592G", LLONG_MIN, 0, &v), MP_OK);
	ck_assert(v == LLONG_MIN);
	ck_assert_int_eq(mp_parse_size("-8589934593G", LLONG_MIN, 0, &v),
	                 MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_parse_duration("2d", 0, LLONG_MAX, &v), MP_OK);
	ck_assert_int_eq(v, 172800);
	ck_assert_int_eq(mp_parse_duration("2D", 0, LLONG_MAX, &v), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_parse_bool("On", &b), MP_OK);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(mp_parse_bool("", &b), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_parse_bool(NULL, &b), MP_ERR_INVAL);
}
END_TEST

START_TEST(test_mail_address)
{
	static const char *good[] = {
		"a@b", "alice@example.org", "first.last+tag@sub.example.co.uk",
		"o'brien@example.org", "x@[192.0.2.1]", "UPPER@EXAMPLE.ORG",
	};
	static const char *bad[] = {
		"", "@", "a@", "@b", "a", "a b@c", "a@b c", "<a@b>", "a@b,c@d",
		"\"a\"@b", "a@b@c", "a\x01@b", "a@b\x7f", "\xc3\xa9@b", "a@b\t",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(mp_parse_mail_address(good[i]) == MP_OK, "%s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(mp_parse_mail_address(bad[i]) == MP_ERR_SYNTAX,
		              "'%s' accepted", bad[i]);
	ck_assert_int_eq(mp_parse_mail_address(NULL), MP_ERR_INVAL);

	char addr[300];
	memset(addr, 'a', sizeof(addr));
	memcpy(addr + 250, "@b.c", 5);     /* 254 bytes */
	ck_assert_int_eq(mp_parse_mail_address(addr), MP_OK);
	memcpy(addr + 251, "@b.c", 5);     /* 255 bytes */
	ck_assert_int_eq(mp_parse_mail_address(addr), MP_ERR_SYNTAX);
}
END_TEST

START_TEST(test_strlist)
{
	mp_strlist l = { NULL, 0 };
	char buf[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(buf, sizeof(buf), "u%d@example.org", i);
		ck_assert_int_eq(mp_strlist_add(&l, buf), MP_OK);
	}
	ck_assert_uint_eq(l.count, 1000);
	for (int i = 0; i < 1000; i++) {
		snprintf(buf, sizeof(buf), "U%d@EXAMPLE.org", i);
		ck_assert(mp_strlist_contains(&l, buf));
		snprintf(buf, sizeof(buf), "u%d@example.org", i);
		ck_assert_str_eq(l.items[i], buf);
	}
	ck_assert(!mp_strlist_contains(&l, "u1000@example.org"));
	ck_assert(!mp_strlist_contains(NULL, "x"));
	ck_assert_int_eq(mp_strlist_add(&l, NULL), MP_ERR_INVAL);
	mp_strlist_free(&l);
	ck_assert_ptr_null(l.items);
	ck_assert_uint_eq(l.count, 0);
	mp_strlist_free(&l);
}
END_TEST

START_TEST(test_small_err_buffer)
{
	char tiny[8];
	int rc = mp_config_parse("test.conf", "Foo\n", 4, opts, NOPTS, &st,
	                         tiny, sizeof(tiny));
	ck_assert_int_eq(rc, MP_ERR_CONFIG);
	ck_assert_str_eq(tiny, "test.co");
	ck_assert_int_eq(mp_config_parse("test.conf", "Foo\n", 4, opts, NOPTS,
	                                 &st, NULL, 0), MP_ERR_CONFIG);
}
END_TEST

Suite *config_suite(void);

Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("parse");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_all_types_good);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_file_overrides_default_string);
	tcase_add_test(tc, test_case_insensitive_keys);
	tcase_add_test(tc, test_comments_and_blanks);
	tcase_add_test(tc, test_comment_hash_after_value_char);
	tcase_add_test(tc, test_crlf_bom_and_no_final_newline);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_repeated_key);
	tcase_add_test(tc, test_required_missing);
	tcase_add_test(tc, test_missing_value);
	tcase_add_test(tc, test_bool_values);
	tcase_add_test(tc, test_int_values);
	tcase_add_test(tc, test_size_values);
	tcase_add_test(tc, test_duration_values);
	tcase_add_test(tc, test_path_values);
	tcase_add_test(tc, test_socket_values);
	tcase_add_test(tc, test_level_values);
	tcase_add_test(tc, test_addrlist_append);
	tcase_add_test(tc, test_addrlist_bad);
	tcase_add_test(tc, test_addrlist_default_replaced);
	tcase_add_test(tc, test_bad_default_is_inval);
	tcase_add_test(tc, test_bad_table_is_inval);
	tcase_add_test(tc, test_line_length_limit);
	tcase_add_test(tc, test_control_and_nul);
	tcase_add_test(tc, test_free_idempotent);
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_load_too_large);
	tcase_add_test(tc, test_small_err_buffer);
	suite_add_tcase(s, tc);

	TCase *tv = tcase_create("values");
	tcase_add_test(tv, test_parse_numbers_direct);
	tcase_add_test(tv, test_mail_address);
	tcase_add_test(tv, test_strlist);
	tcase_add_test(tv, test_lines_repeat_and_keep_blanks);
	suite_add_tcase(s, tv);
	return s;
}

MP_TEST_MAIN(config_suite)
