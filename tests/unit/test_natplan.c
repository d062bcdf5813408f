/* test_natplan.c - roles from two NATs (seed 003/004), spray schedules,
 * birthday odds, the RANGE payload and the align arithmetic. */
#include <math.h>
#include <string.h>

#include "mailpunch/error.h"
#include "mailpunch/natplan.h"
#include "testutil.h"

static const mp_nat OPEN = { MP_NAT_NONE, MP_NAT_NONE, MP_ALLOC_UNKNOWN, 0 };
static const mp_nat FULL = { MP_NAT_INDEPENDENT, MP_NAT_INDEPENDENT, MP_ALLOC_PRESERVING, 0 };
static const mp_nat RESTR = { MP_NAT_INDEPENDENT, MP_NAT_ADDR_DEP, MP_ALLOC_PRESERVING, 0 };
static const mp_nat PORTR = { MP_NAT_INDEPENDENT, MP_NAT_ADDR_PORT_DEP, MP_ALLOC_PRESERVING, 0 };
static const mp_nat ADDRSYM = { MP_NAT_ADDR_DEP, MP_NAT_ADDR_DEP, MP_ALLOC_SEQUENTIAL, 1 };
static const mp_nat SEQ1 = { MP_NAT_ADDR_PORT_DEP, MP_NAT_ADDR_PORT_DEP, MP_ALLOC_SEQUENTIAL, 1 };
static const mp_nat SEQ2 = { MP_NAT_ADDR_PORT_DEP, MP_NAT_ADDR_PORT_DEP, MP_ALLOC_SEQUENTIAL, 2 };
static const mp_nat RAND = { MP_NAT_ADDR_PORT_DEP, MP_NAT_ADDR_PORT_DEP, MP_ALLOC_RANDOM, 0 };

static unsigned
roles(const mp_nat *me, const mp_nat *peer, int initiator)
{
	mp_natplan p;

	mp_natplan_make(me, peer, initiator, &p);
	ck_assert_ptr_nonnull(p.why);
	return p.roles;
}

START_TEST(cones_probe_only)
{
	const mp_nat *cones[] = { &OPEN, &FULL, &RESTR, &PORTR };
	size_t i, j;

	for (i = 0; i < 4; i++)
		for (j = 0; j < 4; j++)
			ck_assert_uint_eq(roles(cones[i], cones[j], 1), 0);
	/* a symmetric NAT facing an open filter: the probes get in */
	ck_assert_uint_eq(roles(&SEQ1, &FULL, 1), 0);
	ck_assert_uint_eq(roles(&RAND, &RESTR, 0), 0);
	ck_assert_uint_eq(roles(&FULL, &RAND, 0), 0);
}
END_TEST

START_TEST(symmetric_reports_to_port_restricted)
{
	/* embodiment 4: the symmetric side assigns a port and reports */
	ck_assert_uint_eq(roles(&SEQ2, &PORTR, 1), MP_ROLE_REPORT);
	ck_assert_uint_eq(roles(&PORTR, &SEQ2, 0), MP_ROLE_SPRAY);
	ck_assert_uint_eq(roles(&ADDRSYM, &PORTR, 0), MP_ROLE_REPORT);
	ck_assert_uint_eq(roles(&PORTR, &ADDRSYM, 1), MP_ROLE_SPRAY);
	{
		mp_natplan p;

		mp_natplan_make(&RAND, &PORTR, 0, &p);
		ck_assert_uint_eq(p.roles, MP_ROLE_REPORT);
		ck_assert_int_eq(p.report_random, 1);
	}
}
END_TEST

START_TEST(address_sensitive_against_port_sensitive)
{
	/* seed S207: the address-sensitive side sends, the other replies */
	ck_assert_uint_eq(roles(&ADDRSYM, &SEQ1, 1), MP_ROLE_REPORT);
	ck_assert_uint_eq(roles(&SEQ1, &ADDRSYM, 0), MP_ROLE_SPRAY);
	ck_assert_uint_eq(roles(&ADDRSYM, &RAND, 0), MP_ROLE_REPORT);
	/* two address-sensitive sides do both */
	ck_assert_uint_eq(roles(&ADDRSYM, &ADDRSYM, 1), MP_ROLE_REPORT | MP_ROLE_SPRAY);
}
END_TEST

START_TEST(both_port_sensitive)
{
	ck_assert_uint_eq(roles(&SEQ1, &SEQ2, 1), MP_ROLE_ALIGN_BUBBLE);
	ck_assert_uint_eq(roles(&SEQ2, &SEQ1, 0), MP_ROLE_ALIGN_REPLY);
	ck_assert_uint_eq(roles(&SEQ1, &RAND, 1), 0);
	ck_assert_uint_eq(roles(&RAND, &RAND, 0), 0);
}
END_TEST

static size_t
collect(mp_spray *s, uint16_t *out, size_t max)
{
	size_t n = 0;
	uint16_t p;

	while (n < max && mp_spray_next(s, &p))
		out[n++] = p;
	return n;
}

START_TEST(spray_delta_then_divisors)
{
	mp_spray s;
	uint16_t got[64];
	size_t n;

	/* range detection saw 20000 before and 20013 after, delta 4 */
	mp_spray_range(&s, 20000, 20013, 4, 0);
	n = collect(&s, got, 64);
	/* at 4: 20004 20008 20012; at 2: 20002 20006 20010; at 1: the rest */
	ck_assert_uint_eq(n, 12);
	ck_assert_uint_eq(got[0], 20004);
	ck_assert_uint_eq(got[1], 20008);
	ck_assert_uint_eq(got[2], 20012);
	ck_assert_uint_eq(got[3], 20002);
	ck_assert_uint_eq(got[5], 20010);
	ck_assert_uint_eq(got[6], 20001);
	ck_assert_uint_eq(got[11], 20011);
}
END_TEST

START_TEST(spray_downwards_skips_well_known_and_caps)
{
	mp_spray s;
	uint16_t got[64];
	size_t n, i;

	mp_spray_range(&s, 1030, 1000, -2, 0);
	n = collect(&s, got, 64);
	for (i = 0; i < n; i++) {
		ck_assert_uint_ge(got[i], MP_SPRAY_MIN_PORT);
		ck_assert_uint_lt(got[i], 1030);
	}
	ck_assert_uint_eq(got[0], 1028);
	ck_assert_uint_eq(n, 6);   /* 1028 1026 1024 at 2, then 1029 1027 1025 */
	mp_spray_range(&s, 30000, 40000, 1, 5);
	ck_assert_uint_eq(collect(&s, got, 64), 5);
}
END_TEST

START_TEST(spray_random_is_a_permutation)
{
	static uint8_t seen[65536];
	mp_spray s;
	uint16_t p;
	unsigned n = 0;

	memset(seen, 0, sizeof seen);
	mp_spray_random(&s, 1024, 65535, 0x1234567890abcdefull, 0);
	while (mp_spray_next(&s, &p)) {
		ck_assert_uint_ge(p, 1024);
		ck_assert_uint_eq(seen[p], 0);
		seen[p] = 1;
		n++;
	}
	ck_assert_uint_eq(n, 65535 - 1024 + 1);
	mp_spray_random(&s, 5000, 5009, 7, 3);
	n = 0;
	while (mp_spray_next(&s, &p))
		n++;
	ck_assert_uint_eq(n, 3);
}
END_TEST

START_TEST(birthday_odds)
{
	/* 256 mappings, 2048 probes over 64512 ports: about 99.97 % */
	double p = mp_birthday_success(256, 2048, 64512);

	ck_assert(p > 0.999 && p < 1.0);
	ck_assert(fabs(mp_birthday_success(1, 1, 100) - 0.01) < 1e-9);
	ck_assert(mp_birthday_success(0, 100, 100) == 0.0);
	ck_assert(mp_birthday_success(60, 50, 100) == 1.0);
	ck_assert(mp_birthday_success(64, 512, 64512) < mp_birthday_success(64, 1024, 64512));
}
END_TEST

START_TEST(range_round_trip_and_bad_input)
{
	mp_range r, back;
	uint8_t buf[MP_RANGE_MAX_LEN];
	size_t len, cut;

	memset(&r, 0, sizeof r);
	r.mode = MP_RANGE_CHUNKS;
	r.delta = -2;
	r.base = 40000;
	r.end = 40100;
	r.peer_delta = 1;
	r.nchunks = 2;
	r.chunk[0] = (mp_align_chunk){ 30016, 40002, 16 };
	r.chunk[1] = (mp_align_chunk){ 30032, 39966, 16 };
	ck_assert_int_eq(mp_range_encode(&r, buf, sizeof buf, &len), MP_OK);
	ck_assert_uint_eq(len, 12 + 10);
	ck_assert_int_eq(mp_range_decode(buf, len, &back), MP_OK);
	ck_assert_int_eq(memcmp(&r, &back, sizeof r), 0);
	for (cut = 0; cut < len; cut++)
		ck_assert_int_ne(mp_range_decode(buf, cut, &back), MP_OK);
	buf[len] = 0;
	ck_assert_int_eq(mp_range_decode(buf, len + 1, &back), MP_ERR_MALFORMED);
	buf[0] = 9;
	ck_assert_int_eq(mp_range_decode(buf, len, &back), MP_ERR_MALFORMED);
	ck_assert_int_eq(mp_range_encode(&r, buf, 5, &len), MP_ERR_TOOBIG);
	r.mode = 0;
	ck_assert_int_eq(mp_range_encode(&r, buf, sizeof buf, &len), MP_ERR_INVAL);
}
END_TEST

START_TEST(align_arithmetic)
{
	mp_range r;
	uint16_t p;

	ck_assert(mp_align_window(30000, 2, 8, 0, &p) && p == 30016);
	ck_assert(mp_align_window(30000, -1, 8, 3, &p) && p == 29989);
	ck_assert(!mp_align_window(65530, 1, 8, 0, &p));
	ck_assert(mp_align_chunk_exact(40000, 40034, 2, 16));
	ck_assert(!mp_align_chunk_exact(40000, 40036, 2, 16));   /* someone else took a port */
	memset(&r, 0, sizeof r);
	r.mode = MP_RANGE_CHUNKS;
	r.delta = 2;
	r.peer_delta = 1;
	r.nchunks = 1;
	r.chunk[0] = (mp_align_chunk){ 30016, 40002, 16 };
	ck_assert(mp_align_lookup(&r, 30016, &p) && p == 40002);
	ck_assert(mp_align_lookup(&r, 30031, &p) && p == 40032);
	ck_assert(!mp_align_lookup(&r, 30032, &p));
	ck_assert(!mp_align_lookup(&r, 30015, &p));
	r.peer_delta = 2;
	ck_assert(!mp_align_lookup(&r, 30017, &p));
	ck_assert(mp_align_lookup(&r, 30018, &p) && p == 40004);
}
END_TEST

static Suite *
natplan_suite(void)
{
	Suite *s = suite_create("natplan");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, cones_probe_only);
	tcase_add_test(tc, symmetric_reports_to_port_restricted);
	tcase_add_test(tc, address_sensitive_against_port_sensitive);
	tcase_add_test(tc, both_port_sensitive);
	tcase_add_test(tc, spray_delta_then_divisors);
	tcase_add_test(tc, spray_downwards_skips_well_known_and_caps);
	tcase_add_test(tc, spray_random_is_a_permutation);
	tcase_add_test(tc, birthday_odds);
	tcase_add_test(tc, range_round_trip_and_bad_input);
	tcase_add_test(tc, align_arithmetic);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(natplan_suite)
