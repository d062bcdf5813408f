/*
 * test_netif.c - unit tests for local interface addresses (lib/netif.c).
 *
 * The filter runs on a hand-made getifaddrs list (loopback, LAN,
 * link-local, down and carrier-less interfaces, duplicates, IPv4-mapped
 * and non-IP entries) so the expectations do not depend on the host;
 * one test asks the real host, where at least loopback exists.  Then the
 * sockaddr conversions both ways.
 */
#include "testutil.h"

#include "mailpunch/error.h"
#include "mailpunch/netif.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#define UPRUN (IFF_UP | IFF_RUNNING)

typedef struct fake_if {
	struct ifaddrs ifa;
	struct sockaddr_storage ss;
} fake_if;

static fake_if fakes[16];
static size_t nfakes;

static void
add_fake(const char *name, unsigned flags, int af, const char *addr)
{
	fake_if *f = &fakes[nfakes];

	ck_assert_uint_lt(nfakes, sizeof fakes / sizeof fakes[0]);
	memset(f, 0, sizeof *f);
	f->ifa.ifa_name = (char *)name;
	f->ifa.ifa_flags = flags;
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&f->ss;

		sin->sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
		f->ifa.ifa_addr = (struct sockaddr *)&f->ss;
	} else if (af == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&f->ss;

		sin6->sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
		f->ifa.ifa_addr = (struct sockaddr *)&f->ss;
	} else if (af >= 0) {
		f->ss.ss_family = (sa_family_t)af;      /* AF_PACKET and friends */
		f->ifa.ifa_addr = (struct sockaddr *)&f->ss;
	}                                               /* af < 0: no address */
	if (nfakes > 0)
		fakes[nfakes - 1].ifa.ifa_next = &f->ifa;
	nfakes++;
}

static void
build_fakes(void)
{
	nfakes = 0;
	add_fake("lo", UPRUN | IFF_LOOPBACK, AF_INET, "127.0.0.1");
	add_fake("lo", UPRUN | IFF_LOOPBACK, AF_INET6, "::1");
	add_fake("eth0", UPRUN, 17, NULL);
	add_fake("eth0", UPRUN, AF_INET6, "fe80::1");
	add_fake("eth0", UPRUN, AF_INET6, "2001:db8::10");
	add_fake("eth0", UPRUN, AF_INET, "192.168.1.10");
	add_fake("eth0", UPRUN, AF_INET, "169.254.3.4");
	add_fake("eth1", IFF_UP, AF_INET, "10.0.0.1");          /* no carrier */
	add_fake("eth2", IFF_RUNNING, AF_INET, "10.0.0.2");     /* down */
	add_fake("tun0", UPRUN, -1, NULL);
	add_fake("wlan0", UPRUN, AF_INET, "10.1.1.1");
	add_fake("wlan0", UPRUN, AF_INET, "10.1.1.1");          /* twice */
	add_fake("wlan0", UPRUN, AF_INET6, "::ffff:10.9.9.9");
	add_fake("wlan0", UPRUN, AF_INET6, "ff02::1");
	add_fake("odd", UPRUN, AF_INET, "127.0.0.2");           /* loopback net, not lo */
}

static void
assert_cand(const mp_candidate *c, const char *text)
{
	char buf[64];

	ck_assert_int_eq(mp_candidate_format(c, buf, sizeof buf), MP_OK);
	ck_assert_str_eq(buf, text);
	ck_assert_uint_eq(c->kind, MP_CAND_LOCAL);
}

START_TEST(filter_default)
{
	mp_candidate c[8];
	size_t n, total;

	build_fakes();
	ck_assert_int_eq(mp_netif_filter(&fakes[0].ifa, 4500, 0, c, 8, &n, &total), MP_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(total, 3);
	/* IPv4 first, each family in list order */
	assert_cand(&c[0], "192.168.1.10:4500");
	assert_cand(&c[1], "10.1.1.1:4500");
	assert_cand(&c[2], "[2001:db8::10]:4500");
}
END_TEST

START_TEST(filter_flags)
{
	mp_candidate c[8];
	size_t n, total;

	build_fakes();
	ck_assert_int_eq(mp_netif_filter(&fakes[0].ifa, 1, MP_NETIF_LOOPBACK, c, 8, &n, NULL), MP_OK);
	ck_assert_uint_eq(n, 6);
	assert_cand(&c[0], "127.0.0.1:1");
	assert_cand(&c[1], "192.168.1.10:1");
	assert_cand(&c[2], "10.1.1.1:1");
	assert_cand(&c[3], "127.0.0.2:1");
	assert_cand(&c[4], "[::1]:1");
	assert_cand(&c[5], "[2001:db8::10]:1");

	ck_assert_int_eq(mp_netif_filter(&fakes[0].ifa, 2, MP_NETIF_NO_IPV6, c, 8, &n, NULL), MP_OK);
	ck_assert_uint_eq(n, 2);
	assert_cand(&c[1], "10.1.1.1:2");
	ck_assert_int_eq(mp_netif_filter(&fakes[0].ifa, 3, MP_NETIF_NO_IPV4, c, 8, &n, NULL), MP_OK);
	ck_assert_uint_eq(n, 1);
	assert_cand(&c[0], "[2001:db8::10]:3");
	ck_assert_int_eq(mp_netif_filter(&fakes[0].ifa, 3, MP_NETIF_NO_IPV4 | MP_NETIF_NO_IPV6,
	                                 c, 8, &n, NULL), MP_OK);
	ck_assert_uint_eq(n, 0);

	/* cut at max, the total still counted */
	ck_assert_int_eq(mp_netif_filter(&fakes[0].ifa, 4, MP_NETIF_LOOPBACK, c, 2, &n, &total), MP_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(total, 6);
	ck_assert_int_eq(mp_netif_filter(&fakes[0].ifa, 4, 0, NULL, 0, &n, &total), MP_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(total, 3);
	ck_assert_int_eq(mp_netif_filter(NULL, 4, 0, c, 8, &n, &total), MP_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(mp_netif_filter(&fakes[0].ifa, 4, 0, NULL, 8, &n, NULL), MP_ERR_INVAL);
	ck_assert_int_eq(mp_netif_filter(&fakes[0].ifa, 4, 0, c, 8, NULL, NULL), MP_ERR_INVAL);
}
END_TEST

START_TEST(list_host)
{
	mp_candidate c[MP_MAX_CANDIDATES];
	size_t n, total, i;
	int have_lo = 0;

	ck_assert_int_eq(mp_netif_list(7000, MP_NETIF_LOOPBACK, c, MP_MAX_CANDIDATES, &n, &total), MP_OK);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(c[i].kind, MP_CAND_LOCAL);
		ck_assert_uint_eq(c[i].port, 7000);
		if (c[i].family == 4 && c[i].addr[0] == 127 && c[i].addr[3] == 1)
			have_lo = 1;
	}
	ck_assert_msg(have_lo, "127.0.0.1 not listed with MP_NETIF_LOOPBACK");
	ck_assert_int_eq(mp_netif_list(7000, 0, c, MP_MAX_CANDIDATES, &n, NULL), MP_OK);
	for (i = 0; i < n; i++) {
		ck_assert(mp_netif_usable(&c[i], 0));
		ck_assert(!(c[i].family == 4 && c[i].addr[0] == 127));
	}
}
END_TEST

static mp_candidate
mk(int family, const char *addr, uint16_t port)
{
	mp_candidate c;

	memset(&c, 0, sizeof c);
	c.kind = MP_CAND_LOCAL;
	c.family = (uint8_t)family;
	c.port = port;
	ck_assert_int_eq(inet_pton(family == 4 ? AF_INET : AF_INET6, addr, c.addr), 1);
	return c;
}

START_TEST(usable)
{
	const struct { int fam; const char *a; int ok; int ok_lo; } cases[] = {
		{ 4, "192.168.0.1", 1, 1 }, { 4, "8.8.8.8", 1, 1 },
		{ 4, "127.0.0.1", 0, 1 }, { 4, "127.255.0.9", 0, 1 },
		{ 4, "169.254.1.1", 0, 0 }, { 4, "0.0.0.0", 0, 0 },
		{ 4, "224.0.0.1", 0, 0 }, { 4, "255.255.255.255", 0, 0 },
		{ 6, "2001:db8::1", 1, 1 }, { 6, "fd00::1", 1, 1 },
		{ 6, "::1", 0, 1 }, { 6, "::", 0, 0 }, { 6, "fe80::1", 0, 0 },
		{ 6, "febf::1", 0, 0 }, { 6, "fec0::1", 1, 1 }, { 6, "ff02::1", 0, 0 },
		{ 6, "::ffff:1.2.3.4", 0, 0 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		mp_candidate c = mk(cases[i].fam, cases[i].a, 1);

		ck_assert_msg(mp_netif_usable(&c, 0) == cases[i].ok, "%s", cases[i].a);
		ck_assert_msg(mp_netif_usable(&c, MP_NETIF_LOOPBACK) == cases[i].ok_lo, "%s", cases[i].a);
	}
	mp_candidate bad = mk(4, "1.2.3.4", 1);
	bad.family = 5;
	ck_assert(!mp_netif_usable(&bad, 0));
	ck_assert(!mp_netif_usable(NULL, 0));
}
END_TEST

START_TEST(sockaddr_conversions)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	socklen_t len;
	mp_candidate c, back;
	char buf[64];

	c = mk(4, "192.0.2.7", 3478);
	ck_assert_int_eq(mp_candidate_to_sockaddr(&c, &ss, &len), MP_OK);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 3478);
	ck_assert_int_eq(mp_candidate_from_sockaddr((struct sockaddr *)&ss, len, MP_CAND_SRFLX, &back), MP_OK);
	ck_assert(mp_candidate_same_endpoint(&c, &back));
	ck_assert_uint_eq(back.kind, MP_CAND_SRFLX);
	ck_assert_int_eq(mp_candidate_from_sockaddr((struct sockaddr *)&ss, len - 1, MP_CAND_SRFLX, &back),
	                 MP_ERR_INVAL);

	c = mk(6, "2001:db8::42", 65535);
	ck_assert_int_eq(mp_candidate_to_sockaddr(&c, &ss, &len), MP_OK);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));
	ck_assert_int_eq(mp_candidate_from_sockaddr((struct sockaddr *)&ss, len, MP_CAND_LOCAL, &back), MP_OK);
	ck_assert(mp_candidate_same_endpoint(&c, &back));
	ck_assert_int_eq(mp_candidate_format(&back, buf, sizeof buf), MP_OK);
	ck_assert_str_eq(buf, "[2001:db8::42]:65535");

	/* a dual-stack socket's view of an IPv4 peer */
	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(5);
	ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:198.51.100.3", &sin6.sin6_addr), 1);
	ck_assert_int_eq(mp_candidate_from_sockaddr((struct sockaddr *)&sin6, sizeof sin6,
	                                            MP_CAND_SRFLX, &back), MP_OK);
	ck_assert_uint_eq(back.family, 4);
	ck_assert_int_eq(mp_candidate_format(&back, buf, sizeof buf), MP_OK);
	ck_assert_str_eq(buf, "198.51.100.3:5");

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	ck_assert_int_eq(mp_candidate_from_sockaddr((struct sockaddr *)&sun, sizeof sun,
	                                            MP_CAND_LOCAL, &back), MP_ERR_INVAL);
	ck_assert_int_eq(mp_candidate_from_sockaddr(NULL, 16, MP_CAND_LOCAL, &back), MP_ERR_INVAL);
	c.family = 0;
	ck_assert_int_eq(mp_candidate_to_sockaddr(&c, &ss, &len), MP_ERR_INVAL);
}
END_TEST

START_TEST(same_endpoint)
{
	mp_candidate a = mk(4, "10.0.0.1", 1), b = mk(4, "10.0.0.1", 1);

	b.kind = MP_CAND_SRFLX;
	b.addr[10] = 0xee;      /* beyond an IPv4 address: not compared */
	ck_assert(mp_candidate_same_endpoint(&a, &b));
	b.port = 2;
	ck_assert(!mp_candidate_same_endpoint(&a, &b));
	b = mk(6, "::a00:1", 1);
	ck_assert(!mp_candidate_same_endpoint(&a, &b));
	a.family = b.family = 0;
	ck_assert(!mp_candidate_same_endpoint(&a, &b));
	ck_assert(!mp_candidate_same_endpoint(NULL, &b));
}
END_TEST

Suite *netif_suite(void);

Suite *
netif_suite(void)
{
	Suite *s = suite_create("netif");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, filter_default);
	tcase_add_test(tc, filter_flags);
	tcase_add_test(tc, list_host);
	tcase_add_test(tc, usable);
	tcase_add_test(tc, sockaddr_conversions);
	tcase_add_test(tc, same_endpoint);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(netif_suite)
