/* test_wire.c - the bounded writer and reader under the block codec. */
#include <string.h>

#include "mailpunch/error.h"
#include "testutil.h"
#include "wire.h"

START_TEST(round_trip_integers)
{
	mp_wbuf w;
	mp_rbuf r;
	uint8_t *p;
	size_t len;

	mp_wbuf_init(&w, 64);
	mp_put_u8(&w, 0xab);
	mp_put_u16(&w, 0x1234);
	mp_put_u32(&w, 0xdeadbeef);
	mp_put_u64(&w, 0x0102030405060708ULL);
	mp_put_str8(&w, "hello", 10);
	ck_assert_int_eq(w.err, 0);
	p = mp_wbuf_take(&w, &len);
	ck_assert_uint_eq(len, 1 + 2 + 4 + 8 + 6);
	/* big-endian on the wire */
	ck_assert_uint_eq(p[1], 0x12);
	ck_assert_uint_eq(p[2], 0x34);
	mp_rbuf_init(&r, p, len);
	ck_assert_uint_eq(mp_get_u8(&r), 0xab);
	ck_assert_uint_eq(mp_get_u16(&r), 0x1234);
	ck_assert_uint_eq(mp_get_u32(&r), 0xdeadbeef);
	ck_assert(mp_get_u64(&r) == 0x0102030405060708ULL);
	char s[11];
	mp_get_str8(&r, s, 10);
	ck_assert_str_eq(s, "hello");
	ck_assert_int_eq(r.err, 0);
	ck_assert_uint_eq(mp_rbuf_left(&r), 0);
	free(p);
}
END_TEST

START_TEST(writer_cap_is_hard)
{
	mp_wbuf w;
	uint8_t big[100] = { 0 };

	mp_wbuf_init(&w, 50);
	mp_put_bytes(&w, big, 40);
	ck_assert_int_eq(w.err, 0);
	mp_put_bytes(&w, big, 11);
	ck_assert_int_eq(w.err, MP_ERR_TOOBIG);
	ck_assert_uint_eq(w.len, 40);
	/* sticky: later small writes do nothing */
	mp_put_u8(&w, 1);
	ck_assert_uint_eq(w.len, 40);
	mp_wbuf_free(&w);

	mp_wbuf_init(&w, 1000);
	mp_put_str8(&w, "toolong", 3);
	ck_assert_int_eq(w.err, MP_ERR_TOOBIG);
	mp_wbuf_free(&w);
}
END_TEST

START_TEST(reader_never_overruns)
{
	const uint8_t data[3] = { 1, 2, 3 };
	mp_rbuf r;

	mp_rbuf_init(&r, data, sizeof data);
	ck_assert_uint_eq(mp_get_u16(&r), 0x0102);
	ck_assert_uint_eq(mp_get_u32(&r), 0);
	ck_assert_int_eq(r.err, MP_ERR_TRUNCATED);
	ck_assert_ptr_null(mp_get_view(&r, 1));
}
END_TEST

START_TEST(reader_rejects_bad_strings)
{
	const uint8_t ctrl[] = { 3, 'a', '\n', 'b' };
	const uint8_t nul[] = { 2, 'a', 0 };
	const uint8_t longer[] = { 5, 'a', 'b', 'c', 'd', 'e' };
	char buf[8];
	mp_rbuf r;

	mp_rbuf_init(&r, ctrl, sizeof ctrl);
	mp_get_str8(&r, buf, 7);
	ck_assert_int_eq(r.err, MP_ERR_MALFORMED);
	mp_rbuf_init(&r, nul, sizeof nul);
	mp_get_str8(&r, buf, 7);
	ck_assert_int_eq(r.err, MP_ERR_MALFORMED);
	mp_rbuf_init(&r, longer, sizeof longer);
	mp_get_str8(&r, buf, 4);
	ck_assert_int_eq(r.err, MP_ERR_MALFORMED);
}
END_TEST

START_TEST(blob16_bounds)
{
	const uint8_t data[] = { 0, 4, 9, 8, 7, 6 };
	uint8_t buf[4];
	uint16_t len;
	mp_rbuf r;

	mp_rbuf_init(&r, data, sizeof data);
	mp_get_blob16(&r, buf, sizeof buf, &len);
	ck_assert_int_eq(r.err, 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_uint_eq(buf[3], 6);
	mp_rbuf_init(&r, data, sizeof data);
	mp_get_blob16(&r, buf, 3, &len);
	ck_assert_int_eq(r.err, MP_ERR_MALFORMED);
	ck_assert_uint_eq(len, 0);
}
END_TEST

static Suite *
wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, round_trip_integers);
	tcase_add_test(tc, writer_cap_is_hard);
	tcase_add_test(tc, reader_never_overruns);
	tcase_add_test(tc, reader_rejects_bad_strings);
	tcase_add_test(tc, blob16_bounds);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(wire_suite)
