/*
 * test_app_proto.c - unit tests of the application wire formats and
 * policies (lib/app_proto.c, lib/app_policy.c): round trips, strict
 * refusal of truncated, trailing and out-of-range input, file-name and
 * destination checks, HOST:PORT parsing, the partial-file sidecar.
 */
#include <string.h>

#include "mailpunch/app.h"
#include "mailpunch/error.h"
#include "testutil.h"

START_TEST(header_roundtrip)
{
	uint8_t h[MP_APP_HDR_LEN];
	int type = 0;

	mp_app_header_encode(h, MP_APP_FORWARD_TCP);
	ck_assert_int_eq(mp_app_header_decode(h, sizeof h, &type), MP_OK);
	ck_assert_int_eq(type, MP_APP_FORWARD_TCP);
	ck_assert_int_eq(mp_app_header_decode(h, 4, &type), MP_ERR_TRUNCATED);
	h[3] = 2;
	ck_assert_int_eq(mp_app_header_decode(h, sizeof h, &type), MP_ERR_VERSION);
	h[3] = MP_APP_VERSION;
	h[4] = 9;
	ck_assert_int_eq(mp_app_header_decode(h, sizeof h, &type), MP_ERR_TYPE);
	h[0] = 'x';
	ck_assert_int_eq(mp_app_header_decode(h, sizeof h, &type), MP_ERR_MAGIC);
}
END_TEST

START_TEST(frame_head_limits)
{
	uint8_t h[MP_APP_FRAME_HDR], type;
	uint32_t len;

	mp_app_frame_put_head(h, MP_FR_DATA, MP_APP_FRAME_MAX);
	ck_assert_int_eq(mp_app_frame_head(h, sizeof h, &type, &len), MP_OK);
	ck_assert_uint_eq(len, MP_APP_FRAME_MAX);
	ck_assert_uint_eq(type, MP_FR_DATA);
	mp_app_frame_put_head(h, MP_FR_DATA, MP_APP_FRAME_MAX + 1);
	ck_assert_int_eq(mp_app_frame_head(h, sizeof h, &type, &len), MP_ERR_TOOBIG);
	mp_app_frame_put_head(h, 6, 0);
	ck_assert_int_eq(mp_app_frame_head(h, sizeof h, &type, &len), MP_ERR_TYPE);
	mp_app_frame_put_head(h, MP_FR_FIN, 0);
	ck_assert_int_eq(mp_app_frame_head(h, 4, &type, &len), MP_ERR_TRUNCATED);
}
END_TEST

START_TEST(offer_roundtrip_and_strictness)
{
	mp_app_offer o = { .size = 123456789012ULL }, back;
	uint8_t buf[512];
	size_t len, i;
	uint8_t type;
	uint32_t plen;

	strcpy(o.name, "report 2026.pdf");
	for (i = 0; i < sizeof o.sha256; i++)
		o.sha256[i] = (uint8_t)(i * 7);
	ck_assert_int_eq(mp_app_offer_encode(&o, buf, sizeof buf, &len), MP_OK);
	ck_assert_int_eq(mp_app_frame_head(buf, len, &type, &plen), MP_OK);
	ck_assert_uint_eq(type, MP_FR_OFFER);
	ck_assert_uint_eq(plen + MP_APP_FRAME_HDR, len);
	ck_assert_int_eq(mp_app_offer_decode(buf + 5, plen, &back), MP_OK);
	ck_assert_str_eq(back.name, o.name);
	ck_assert(back.size == o.size);
	ck_assert_mem_eq(back.sha256, o.sha256, 32);
	/* every shorter payload fails, a longer one too */
	for (i = 0; i < plen; i++)
		ck_assert_int_ne(mp_app_offer_decode(buf + 5, i, &back), MP_OK);
	buf[len] = 0;
	ck_assert_int_eq(mp_app_offer_decode(buf + 5, plen + 1, &back), MP_ERR_MALFORMED);
	/* a too small output buffer */
	ck_assert_int_eq(mp_app_offer_encode(&o, buf, 10, &len), MP_ERR_TOOBIG);
	/* a traversal name can be neither sent nor received */
	strcpy(o.name, "../etc/passwd");
	ck_assert_int_eq(mp_app_offer_encode(&o, buf, sizeof buf, &len), MP_ERR_SYNTAX);
	strcpy(o.name, "xx/etc/passwd");
	ck_assert_int_eq(mp_app_offer_encode(&o, buf, sizeof buf, &len), MP_ERR_SYNTAX);
	strcpy(o.name, "ab");
	ck_assert_int_eq(mp_app_offer_encode(&o, buf, sizeof buf, &len), MP_OK);
	buf[6] = '.';   /* patch the name on the wire into ".b" */
	ck_assert_int_eq(mp_app_offer_decode(buf + 5, len - 5, &back), MP_ERR_SYNTAX);
	buf[6] = 0x1b;  /* control character */
	ck_assert_int_eq(mp_app_offer_decode(buf + 5, len - 5, &back), MP_ERR_MALFORMED);
}
END_TEST

START_TEST(small_frames)
{
	uint8_t buf[512], reason, v8;
	char text[MP_APP_TEXT_MAX + 1], host[MP_APP_HOST_MAX + 1];
	uint64_t v;
	uint16_t port;
	size_t len;

	ck_assert_int_eq(mp_app_u64_encode(MP_FR_ACCEPT, 1ULL << 40, buf, sizeof buf, &len), MP_OK);
	ck_assert_uint_eq(len, 13);
	ck_assert_int_eq(mp_app_u64_decode(buf + 5, 8, &v), MP_OK);
	ck_assert(v == 1ULL << 40);
	ck_assert_int_eq(mp_app_u64_decode(buf + 5, 7, &v), MP_ERR_TRUNCATED);
	ck_assert_int_eq(mp_app_u8_encode(MP_FR_RESULT, MP_RESULT_BAD, buf, sizeof buf, &len), MP_OK);
	ck_assert_int_eq(mp_app_u8_decode(buf + 5, 1, &v8), MP_OK);
	ck_assert_uint_eq(v8, MP_RESULT_BAD);
	ck_assert_int_eq(mp_app_u8_decode(buf + 5, 2, &v8), MP_ERR_MALFORMED);
	ck_assert_int_eq(mp_app_refuse_encode(MP_REFUSE_EXISTS, "file exists", buf, sizeof buf, &len),
	                 MP_OK);
	ck_assert_int_eq(mp_app_refuse_decode(buf + 5, len - 5, &reason, text), MP_OK);
	ck_assert_uint_eq(reason, MP_REFUSE_EXISTS);
	ck_assert_str_eq(text, "file exists");
	ck_assert_int_eq(mp_app_open_encode("127.0.0.1", 8080, buf, sizeof buf, &len), MP_OK);
	ck_assert_int_eq(mp_app_open_decode(buf + 5, len - 5, host, &port), MP_OK);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_uint_eq(port, 8080);
	ck_assert_int_eq(mp_app_open_encode("example.com", 80, buf, sizeof buf, &len), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_app_open_encode("::1", 0, buf, sizeof buf, &len), MP_ERR_SYNTAX);
	/* port 0 on the wire */
	ck_assert_int_eq(mp_app_open_encode("::1", 1, buf, sizeof buf, &len), MP_OK);
	buf[len - 1] = 0;
	ck_assert_int_ne(mp_app_open_decode(buf + 5, len - 5, host, &port), MP_OK);
}
END_TEST

START_TEST(dgram_roundtrip)
{
	uint8_t out[MP_APP_DGRAM_MAX], big[MP_APP_DGRAM_MAX + 10];
	mp_app_dgram d = { .kind = MP_DG_UDP_TO, .flow = 77, .port = 27015 }, back;
	size_t len;

	strcpy(d.host, "10.1.2.3");
	d.payload = (const uint8_t *)"ping";
	d.payload_len = 4;
	ck_assert_int_eq(mp_app_dgram_encode(&d, out, sizeof out, &len), MP_OK);
	ck_assert_int_eq(mp_app_dgram_decode(out, len, &back), MP_OK);
	ck_assert_uint_eq(back.flow, 77);
	ck_assert_str_eq(back.host, "10.1.2.3");
	ck_assert_uint_eq(back.port, 27015);
	ck_assert_uint_eq(back.payload_len, 4);
	ck_assert_mem_eq(back.payload, "ping", 4);
	ck_assert_int_ne(mp_app_dgram_decode(out, 6, &back), MP_OK);
	d.kind = MP_DG_UDP_BACK;
	ck_assert_int_eq(mp_app_dgram_encode(&d, out, sizeof out, &len), MP_OK);
	ck_assert_uint_eq(len, 5 + 4);
	ck_assert_int_eq(mp_app_dgram_decode(out, len, &back), MP_OK);
	ck_assert_uint_eq(back.kind, MP_DG_UDP_BACK);
	d.kind = MP_DG_UDP_REFUSED;
	ck_assert_int_eq(mp_app_dgram_encode(&d, out, sizeof out, &len), MP_OK);
	ck_assert_uint_eq(len, 5);
	out[len] = 1;
	ck_assert_int_eq(mp_app_dgram_decode(out, len + 1, &back), MP_ERR_MALFORMED);
	out[0] = 9;
	ck_assert_int_eq(mp_app_dgram_decode(out, 5, &back), MP_ERR_TYPE);
	memset(big, 0, sizeof big);
	big[0] = MP_DG_UDP_BACK;
	ck_assert_int_eq(mp_app_dgram_decode(big, sizeof big, &back), MP_ERR_TOOBIG);
	d.kind = MP_DG_UDP_BACK;
	d.payload = big;
	d.payload_len = MP_APP_DGRAM_MAX;
	ck_assert_int_ne(mp_app_dgram_encode(&d, out, sizeof out, &len), MP_OK);
}
END_TEST

START_TEST(names)
{
	static const char *good[] = { "a", "report.pdf", "a b c", "x.tar.gz", "ü-ñ", "a.b" };
	static const char *bad[] = { "", ".", "..", ".hidden", "a/b", "/etc/passwd", "../x", "a..b",
	                             "tab\there", "nl\n", "del\x7f", "back\\slash" };
	char longname[MP_APP_NAME_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof good / sizeof *good; i++)
		ck_assert_msg(mp_app_name_check(good[i]) == MP_OK, "%s", good[i]);
	for (i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(mp_app_name_check(bad[i]) == MP_ERR_SYNTAX, "%s", bad[i]);
	memset(longname, 'x', sizeof longname);
	longname[MP_APP_NAME_MAX] = '\0';
	ck_assert_int_eq(mp_app_name_check(longname), MP_OK);
	longname[MP_APP_NAME_MAX] = 'x';
	longname[MP_APP_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(mp_app_name_check(longname), MP_ERR_SYNTAX);
}
END_TEST

START_TEST(hostport)
{
	char host[MP_APP_HOST_MAX + 1];
	uint16_t port, lport;

	ck_assert_int_eq(mp_app_parse_hostport("127.0.0.1:80", host, &port), MP_OK);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_uint_eq(port, 80);
	ck_assert_int_eq(mp_app_parse_hostport("localhost:65535", host, &port), MP_OK);
	ck_assert_int_eq(mp_app_parse_hostport("[::1]:22", host, &port), MP_OK);
	ck_assert_str_eq(host, "::1");
	ck_assert_int_eq(mp_app_parse_hostport("::1:22", host, &port), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_app_parse_hostport("example.com:80", host, &port), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_app_parse_hostport("127.0.0.1:0", host, &port), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_app_parse_hostport("127.0.0.1:65536", host, &port), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_app_parse_hostport("127.0.0.1:8x", host, &port), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_app_parse_hostport("127.0.0.1:-1", host, &port), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_app_parse_hostport(":80", host, &port), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_app_parse_forward("8080:127.0.0.1:80", &lport, host, &port), MP_OK);
	ck_assert_uint_eq(lport, 8080);
	ck_assert_uint_eq(port, 80);
	ck_assert_int_eq(mp_app_parse_forward("8080:[fe80::1]:80", &lport, host, &port), MP_OK);
	ck_assert_str_eq(host, "fe80::1");
	ck_assert_int_eq(mp_app_parse_forward("127.0.0.1:80", &lport, host, &port), MP_ERR_SYNTAX);
	ck_assert_int_eq(mp_app_parse_forward("x:127.0.0.1:80", &lport, host, &port), MP_ERR_SYNTAX);
}
END_TEST

START_TEST(sidecar)
{
	uint8_t sha[32], back[32];
	char text[MP_APP_SIDECAR_MAX + 1];
	uint64_t size;
	size_t i;

	for (i = 0; i < 32; i++)
		sha[i] = (uint8_t)(255 - i);
	ck_assert_int_eq(mp_app_sidecar_format(104857600, sha, text, sizeof text), MP_OK);
	ck_assert_int_eq(mp_app_sidecar_parse(text, strlen(text), &size, back), MP_OK);
	ck_assert(size == 104857600);
	ck_assert_mem_eq(back, sha, 32);
	ck_assert_int_eq(mp_app_sidecar_format(1, sha, text, 20), MP_ERR_TOOBIG);
	ck_assert_int_eq(mp_app_sidecar_format(1, sha, text, sizeof text), MP_OK);
	ck_assert_int_eq(mp_app_sidecar_parse(text, strlen(text) - 1, &size, back), MP_ERR_MALFORMED);
	text[20] = 'G';
	ck_assert_int_eq(mp_app_sidecar_parse(text, strlen(text), &size, back), MP_ERR_MALFORMED);
	ck_assert_int_eq(mp_app_sidecar_parse("mailpunch-part 1 -5 00\n", 23, &size, back),
	                 MP_ERR_MALFORMED);
}
END_TEST

static Suite *
app_proto_suite(void)
{
	Suite *s = suite_create("app_proto");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, header_roundtrip);
	tcase_add_test(tc, frame_head_limits);
	tcase_add_test(tc, offer_roundtrip_and_strictness);
	tcase_add_test(tc, small_frames);
	tcase_add_test(tc, dgram_roundtrip);
	tcase_add_test(tc, names);
	tcase_add_test(tc, hostport);
	tcase_add_test(tc, sidecar);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(app_proto_suite)
