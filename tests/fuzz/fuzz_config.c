/*
 * fuzz_config.c - libFuzzer target for the configuration parser.
 *
 * Feeds the input as a config text to mp_config_parse() with a table
 * holding every value type (with defaults, a required key and ranges),
 * then checks what a successful parse promises: stored strings are
 * non-empty, paths absolute, socket specs parse again and survive a
 * format/parse round trip, list entries are valid addresses, numbers are
 * within range.  A broken promise aborts; mp_config_free() runs either
 * way so leaks show up under ASan.
 */
#include "mailpunch/config.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/sockspec.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_settings {
	int enabled;
	long long port;
	long long maxsize;
	long long ttl;
	long long delta;
	char *name;
	char *keyfile;
	char *socket;
	char *ctlsocket;
	mp_strlist allow;
	mp_strlist deny;
	int level;
} fz_settings;

static const mp_cfg_option opts[] = {
	{ "Enabled", MP_CFG_BOOL, offsetof(fz_settings, enabled), 0, 0, "yes", 0 },
	{ "Port", MP_CFG_INT, offsetof(fz_settings, port), 1, 65535, NULL, 0 },
	{ "Delta", MP_CFG_INT, offsetof(fz_settings, delta), LLONG_MIN, LLONG_MAX,
	  "-5", 0 },
	{ "MaxSize", MP_CFG_SIZE, offsetof(fz_settings, maxsize), 1024,
	  1024LL * 1024 * 1024, "10M", 0 },
	{ "TTL", MP_CFG_DURATION, offsetof(fz_settings, ttl), 0, LLONG_MAX,
	  "7d", 0 },
	{ "Name", MP_CFG_STRING, offsetof(fz_settings, name), 0, 0, "mailpunch", 0 },
	{ "KeyFile", MP_CFG_PATH, offsetof(fz_settings, keyfile), 0, 0, NULL, 1 },
	{ "Socket", MP_CFG_SOCKET, offsetof(fz_settings, socket), 0, 0,
	  "inet:8893@127.0.0.1", 0 },
	{ "ControlSocket", MP_CFG_SOCKET, offsetof(fz_settings, ctlsocket), 0, 0,
	  NULL, 0 },
	{ "Allow", MP_CFG_ADDRLIST, offsetof(fz_settings, allow), 0, 0,
	  "postmaster@localhost", 0 },
	{ "Deny", MP_CFG_ADDRLIST, offsetof(fz_settings, deny), 0, 0, NULL, 0 },
	{ "LogLevel", MP_CFG_LEVEL, offsetof(fz_settings, level), 0, 0, "info", 0 },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void
check_string(const char *s, int must_be_path)
{
	if (s == NULL)
		return;
	if (*s == '\0' || (must_be_path && *s != '/'))
		abort();
}

static void
check_socket(const char *text)
{
	mp_sockspec a, b;
	char canon[512], err[256];

	if (text == NULL)
		return;
	if (mp_sockspec_parse(text, &a, err, sizeof(err)) != MP_OK)
		abort();
	mp_sockspec_format(&a, canon, sizeof(canon));
	if (mp_sockspec_parse(canon, &b, err, sizeof(err)) != MP_OK ||
	    memcmp(&a, &b, sizeof(a)) != 0)
		abort();
}

static void
check_list(const mp_strlist *l)
{
	for (size_t i = 0; i < l->count; i++)
		if (mp_parse_mail_address(l->items[i]) != MP_OK ||
		    !mp_strlist_contains(l, l->items[i]))
			abort();
}

static void
check_result(const fz_settings *s)
{
	if ((s->enabled != 0 && s->enabled != 1) ||
	    (s->port != 0 && (s->port < 1 || s->port > 65535)) ||
	    s->maxsize < 1024 || s->maxsize > 1024LL * 1024 * 1024 ||
	    s->ttl < 0 || s->level < MP_LOG_ERR || s->level > MP_LOG_DEBUG)
		abort();
	check_string(s->name, 0);
	check_string(s->keyfile, 1);
	if (s->keyfile == NULL || s->allow.count == 0)
		abort();
	check_socket(s->socket);
	check_socket(s->ctlsocket);
	check_list(&s->allow);
	check_list(&s->deny);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_settings s;
	char err[512];

	memset(&s, 0, sizeof(s));
	int rc = mp_config_parse("fuzz.conf", (const char *)data, size, opts,
	                         NOPTS, &s, err, sizeof(err));
	if (rc == MP_OK)
		check_result(&s);
	else if (rc != MP_ERR_CONFIG || memchr(err, '\0', sizeof(err)) == NULL ||
	         strncmp(err, "fuzz.conf:", 10) != 0)
		abort();
	mp_config_free(opts, NOPTS, &s);
	return 0;
}
