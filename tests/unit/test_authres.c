/* test_authres.c - which Authentication-Results headers vouch for a sender. */
#include "mailpunch/authres.h"
#include "testutil.h"

#define ID "mx.lab.example"

START_TEST(passes)
{
	ck_assert_int_eq(mp_authres_passes(ID "; spf=pass smtp.mailfrom=alice@a.example", ID, "a.example"), 1);
	ck_assert_int_eq(mp_authres_passes(ID "; spf=pass", ID, "a.example"), 1);
	ck_assert_int_eq(mp_authres_passes(ID " 1; dkim=pass header.d=a.example header.s=sel", ID, "a.example"), 1);
	ck_assert_int_eq(mp_authres_passes("MX.LAB.EXAMPLE; SPF=Pass smtp.mailfrom=A.EXAMPLE", ID, "a.example"), 1);
	/* several results: any qualifying pass is enough */
	ck_assert_int_eq(mp_authres_passes(ID "; dkim=fail header.d=a.example; spf=pass smtp.mailfrom=a@a.example",
	                                   ID, "a.example"), 1);
	/* comments are ignored, even when they contain ';' */
	ck_assert_int_eq(mp_authres_passes(ID " (a; b); spf=pass (sender IP is 1.2.3.4; ok) smtp.mailfrom=a@a.example",
	                                   ID, "a.example"), 1);
}
END_TEST

START_TEST(does_not_pass)
{
	/* a header stamped by someone else proves nothing */
	ck_assert_int_eq(mp_authres_passes("evil.example; spf=pass smtp.mailfrom=a@a.example", ID, "a.example"), 0);
	ck_assert_int_eq(mp_authres_passes(ID "; spf=fail smtp.mailfrom=a@a.example", ID, "a.example"), 0);
	ck_assert_int_eq(mp_authres_passes(ID "; spf=softfail", ID, "a.example"), 0);
	ck_assert_int_eq(mp_authres_passes(ID "; spf=pass smtp.mailfrom=a@other.example", ID, "a.example"), 0);
	/* DKIM for another domain, or with no domain, does not count */
	ck_assert_int_eq(mp_authres_passes(ID "; dkim=pass header.d=other.example", ID, "a.example"), 0);
	ck_assert_int_eq(mp_authres_passes(ID "; dkim=pass", ID, "a.example"), 0);
	/* a pass only inside a comment */
	ck_assert_int_eq(mp_authres_passes(ID "; none (spf=pass)", ID, "a.example"), 0);
	ck_assert_int_eq(mp_authres_passes(ID "; none", ID, "a.example"), 0);
	ck_assert_int_eq(mp_authres_passes("", ID, "a.example"), 0);
	ck_assert_int_eq(mp_authres_passes(ID, ID, "a.example"), 0);
	ck_assert_int_eq(mp_authres_passes(ID "; spf=pass", "", "a.example"), 0);
	ck_assert_int_eq(mp_authres_passes(ID "; spf=pass", ID, ""), 0);
	ck_assert_int_eq(mp_authres_passes(NULL, ID, "a.example"), 0);
	/* unbalanced parentheses swallow the rest */
	ck_assert_int_eq(mp_authres_passes(ID "; (spf=pass", ID, "a.example"), 0);
}
END_TEST

static Suite *
authres_suite(void)
{
	Suite *s = suite_create("authres");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, passes);
	tcase_add_test(tc, does_not_pass);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(authres_suite)
