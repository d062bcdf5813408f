/*
 * app_policy.c - what a receiver accepts from a peer for the transport
 * applications: file names, forward destinations, the HOST:PORT texts
 * of the command line, and the sidecar of a partially received file.
 *
 * Interface: see include/mailpunch/app.h.  Pure functions; errors are
 * MP_ERR_SYNTAX for a refused text, MP_ERR_MALFORMED for a sidecar that
 * does not parse, MP_ERR_TOOBIG when an output buffer is too small.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/app.h"
#include "mailpunch/error.h"

int
mp_app_name_check(const char *name)
{
	size_t i, n = strnlen(name, MP_APP_NAME_MAX + 1);

	if (n == 0 || n > MP_APP_NAME_MAX)
		return MP_ERR_SYNTAX;
	/* a leading dot would hide the file, and covers "." and ".." and our
	 * own ".NAME.mailpunch-part" files, which a peer must never name */
	if (name[0] == '.' || strstr(name, ".."))
		return MP_ERR_SYNTAX;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
			return MP_ERR_SYNTAX;
	}
	return MP_OK;
}

int
mp_app_host_check(const char *host)
{
	unsigned char addr[16];
	size_t n = strnlen(host, MP_APP_HOST_MAX + 1);

	if (n == 0 || n > MP_APP_HOST_MAX)
		return MP_ERR_SYNTAX;
	/* no names but this one: the agent never asks DNS */
	if (!strcmp(host, "localhost"))
		return MP_OK;
	if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
		return MP_OK;
	return MP_ERR_SYNTAX;
}

static int
parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return MP_ERR_SYNTAX;
	v = strtoul(s, &end, 10);
	if (*end || v == 0 || v > 65535)
		return MP_ERR_SYNTAX;
	*port = (uint16_t)v;
	return MP_OK;
}

int
mp_app_parse_hostport(const char *s, char host[MP_APP_HOST_MAX + 1], uint16_t *port)
{
	const char *colon, *h = s;
	size_t hlen;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return MP_ERR_SYNTAX;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return MP_ERR_SYNTAX;
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen))
			return MP_ERR_SYNTAX;     /* bare IPv6 needs brackets */
	}
	if (hlen == 0 || hlen > MP_APP_HOST_MAX)
		return MP_ERR_SYNTAX;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (mp_app_host_check(host) != MP_OK)
		return MP_ERR_SYNTAX;
	return parse_port(colon + 1, port);
}

int
mp_app_parse_forward(const char *s, uint16_t *localport, char host[MP_APP_HOST_MAX + 1],
                     uint16_t *port)
{
	char lp[8];
	const char *colon = strchr(s, ':');
	size_t n;

	if (!colon)
		return MP_ERR_SYNTAX;
	n = (size_t)(colon - s);
	if (n == 0 || n >= sizeof lp)
		return MP_ERR_SYNTAX;
	memcpy(lp, s, n);
	lp[n] = '\0';
	if (parse_port(lp, localport) != MP_OK)
		return MP_ERR_SYNTAX;
	return mp_app_parse_hostport(colon + 1, host, port);
}

/* "mailpunch-part 1 SIZE SHA256HEX\n" */
int
mp_app_sidecar_format(uint64_t size, const uint8_t sha256[MP_APP_SHA256_LEN], char *out, size_t cap)
{
	char hex[2 * MP_APP_SHA256_LEN + 1];
	int i, n;

	for (i = 0; i < MP_APP_SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", sha256[i]);
	n = snprintf(out, cap, "mailpunch-part 1 %" PRIu64 " %s\n", size, hex);
	if (n < 0 || (size_t)n >= cap)
		return MP_ERR_TOOBIG;
	return MP_OK;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
mp_app_sidecar_parse(const char *text, size_t len, uint64_t *size, uint8_t sha256[MP_APP_SHA256_LEN])
{
	static const char prefix[] = "mailpunch-part 1 ";
	char buf[MP_APP_SIDECAR_MAX + 1], *p, *end;
	unsigned long long v;
	int i;

	if (len > MP_APP_SIDECAR_MAX || len < sizeof prefix - 1)
		return MP_ERR_MALFORMED;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (strlen(buf) != len || strncmp(buf, prefix, sizeof prefix - 1))
		return MP_ERR_MALFORMED;
	p = buf + sizeof prefix - 1;
	if (*p < '0' || *p > '9')
		return MP_ERR_MALFORMED;
	v = strtoull(p, &end, 10);
	if (*end != ' ' || (v == ~0ULL))
		return MP_ERR_MALFORMED;
	p = end + 1;
	for (i = 0; i < MP_APP_SHA256_LEN; i++) {
		int hi = hexval(p[2 * i]), lo = hi < 0 ? -1 : hexval(p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return MP_ERR_MALFORMED;
		sha256[i] = (uint8_t)(hi << 4 | lo);
	}
	if (strcmp(p + 2 * MP_APP_SHA256_LEN, "\n"))
		return MP_ERR_MALFORMED;
	*size = v;
	return MP_OK;
}
