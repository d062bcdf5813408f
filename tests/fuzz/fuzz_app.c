/*
 * fuzz_app.c - libFuzzer target for the application wire formats and
 * policies (lib/app_proto.c, lib/app_policy.c).
 *
 * The first input byte chooses what the rest is: 0 a stream (a header,
 * then frames walked one after the other, each payload given to the
 * decoder of its type), 1 a UDP forwarding datagram, 2 a partial-file
 * sidecar, 3 a command-line HOST:PORT / LOCALPORT:HOST:PORT text and a
 * file name.  Whatever decodes must keep the promises of app.h: texts
 * within their limits and accepted by the policy checks, and encoding
 * the decoded fields again gives back exactly the bytes decoded (the
 * sidecar: the same values).  A broken promise aborts.
 * Seeds: tests/fuzz/corpus/app.
 */
#include "mailpunch/app.h"
#include "mailpunch/error.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
same(int rc, const uint8_t *frame, size_t flen, const uint8_t *p, size_t len)
{
	if (rc != MP_OK || flen != len + MP_APP_FRAME_HDR || memcmp(frame + MP_APP_FRAME_HDR, p, len))
		abort();
}

static void
one_frame(uint8_t type, const uint8_t *p, size_t len)
{
	uint8_t out[MP_APP_FRAME_HDR + 1024], v8, reason;
	char text[MP_APP_TEXT_MAX + 1], host[MP_APP_HOST_MAX + 1];
	mp_app_offer o;
	uint64_t v;
	uint16_t port;
	size_t n;

	switch (type) {
	case MP_FR_OFFER:
		if (mp_app_offer_decode(p, len, &o) == MP_OK) {
			if (mp_app_name_check(o.name) != MP_OK || strlen(o.name) > MP_APP_NAME_MAX)
				abort();
			same(mp_app_offer_encode(&o, out, sizeof out, &n), out, n, p, len);
		}
		break;
	case MP_FR_ACCEPT:
		if (mp_app_u64_decode(p, len, &v) == MP_OK)
			same(mp_app_u64_encode(type, v, out, sizeof out, &n), out, n, p, len);
		break;
	case MP_FR_RESULT:
	case MP_FR_OPENED:
		if (mp_app_u8_decode(p, len, &v8) == MP_OK)
			same(mp_app_u8_encode(type, v8, out, sizeof out, &n), out, n, p, len);
		break;
	case MP_FR_REFUSE:
		if (mp_app_refuse_decode(p, len, &reason, text) == MP_OK) {
			if (strlen(text) > MP_APP_TEXT_MAX)
				abort();
			same(mp_app_refuse_encode(reason, text, out, sizeof out, &n), out, n, p, len);
		}
		break;
	case MP_FR_OPEN:
		if (mp_app_open_decode(p, len, host, &port) == MP_OK) {
			if (mp_app_host_check(host) != MP_OK || port == 0)
				abort();
			same(mp_app_open_encode(host, port, out, sizeof out, &n), out, n, p, len);
		}
		break;
	default:
		break;
	}
}

static void
stream(const uint8_t *p, size_t len)
{
	uint8_t type;
	uint32_t plen;
	int app;

	if (mp_app_header_decode(p, len, &app) != MP_OK)
		return;
	if (app < MP_APP_FILE || app > MP_APP_PIPE)
		abort();
	p += MP_APP_HDR_LEN;
	len -= MP_APP_HDR_LEN;
	while (mp_app_frame_head(p, len, &type, &plen) == MP_OK) {
		if (plen > MP_APP_FRAME_MAX)
			abort();
		if (len - MP_APP_FRAME_HDR < plen)
			break;
		one_frame(type, p + MP_APP_FRAME_HDR, plen);
		p += MP_APP_FRAME_HDR + plen;
		len -= MP_APP_FRAME_HDR + plen;
	}
}

static void
dgram(const uint8_t *p, size_t len)
{
	uint8_t out[MP_APP_DGRAM_MAX];
	mp_app_dgram d;
	size_t n;

	if (mp_app_dgram_decode(p, len, &d) != MP_OK)
		return;
	if (d.payload_len > len || (d.payload && (d.payload < p || d.payload + d.payload_len > p + len)))
		abort();
	if (d.kind == MP_DG_UDP_TO && (mp_app_host_check(d.host) != MP_OK || d.port == 0))
		abort();
	if (mp_app_dgram_encode(&d, out, sizeof out, &n) != MP_OK || n != len || memcmp(out, p, len))
		abort();
}

static void
sidecar(const uint8_t *p, size_t len)
{
	uint8_t sha[MP_APP_SHA256_LEN], sha2[MP_APP_SHA256_LEN];
	char text[MP_APP_SIDECAR_MAX + 1];
	uint64_t size, size2;

	if (mp_app_sidecar_parse((const char *)p, len, &size, sha) != MP_OK)
		return;
	if (mp_app_sidecar_format(size, sha, text, sizeof text) != MP_OK ||
	    mp_app_sidecar_parse(text, strlen(text), &size2, sha2) != MP_OK || size != size2 ||
	    memcmp(sha, sha2, sizeof sha))
		abort();
}

static void
texts(const uint8_t *p, size_t len)
{
	char s[256], host[MP_APP_HOST_MAX + 1];
	uint16_t port, lport;

	if (len >= sizeof s)
		len = sizeof s - 1;
	memcpy(s, p, len);
	s[len] = '\0';
	if (mp_app_parse_hostport(s, host, &port) == MP_OK &&
	    (mp_app_host_check(host) != MP_OK || port == 0))
		abort();
	if (mp_app_parse_forward(s, &lport, host, &port) == MP_OK &&
	    (mp_app_host_check(host) != MP_OK || port == 0 || lport == 0))
		abort();
	if (mp_app_name_check(s) == MP_OK && (s[0] == '.' || strchr(s, '/') || strstr(s, "..")))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0: stream(data + 1, size - 1); break;
	case 1: dgram(data + 1, size - 1); break;
	case 2: sidecar(data + 1, size - 1); break;
	case 3: texts(data + 1, size - 1); break;
	}
	return 0;
}
