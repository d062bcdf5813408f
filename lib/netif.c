/*
 * netif.c - local interface addresses (see include/mailpunch/netif.h).
 *
 * Two passes over the getifaddrs(3) list, IPv4 then IPv6, because a peer
 * tries candidates in order and IPv4 LAN addresses are the ones most
 * likely to work between two hosts of one home network.  Interfaces
 * must be up and running: an address on an interface without carrier
 * would only waste the peer's punching attempts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* getifaddrs, IFF_RUNNING */
#endif
#include "mailpunch/netif.h"
#include "mailpunch/error.h"

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static int
usable_v4(const uint8_t *a, unsigned flags)
{
	if (a[0] == 0 || a[0] >= 224)           /* unspecified "this network", multicast, reserved */
		return 0;
	if (a[0] == 127)
		return (flags & MP_NETIF_LOOPBACK) != 0;
	if (a[0] == 169 && a[1] == 254)
		return 0;
	return 1;
}

static int
usable_v6(const uint8_t *a, unsigned flags)
{
	static const uint8_t zero[16];
	static const uint8_t loop[16] = { [15] = 1 };

	if (memcmp(a, zero, 16) == 0 || a[0] == 0xff)
		return 0;
	if (memcmp(a, loop, 16) == 0)
		return (flags & MP_NETIF_LOOPBACK) != 0;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return 0;
	if (memcmp(a, v4mapped_prefix, sizeof v4mapped_prefix) == 0)
		return 0;
	return 1;
}

int
mp_netif_usable(const mp_candidate *c, unsigned flags)
{
	if (!c)
		return 0;
	if (c->family == 4)
		return !(flags & MP_NETIF_NO_IPV4) && usable_v4(c->addr, flags);
	if (c->family == 6)
		return !(flags & MP_NETIF_NO_IPV6) && usable_v6(c->addr, flags);
	return 0;
}

int
mp_candidate_from_sockaddr(const struct sockaddr *sa, socklen_t len,
                           mp_cand_kind kind, mp_candidate *c)
{
	if (!sa || !c)
		return MP_ERR_INVAL;
	memset(c, 0, sizeof *c);
	c->kind = (uint8_t)kind;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		if (len < (socklen_t)sizeof *sin)
			return MP_ERR_INVAL;
		c->family = 4;
		memcpy(c->addr, &sin->sin_addr, 4);
		c->port = ntohs(sin->sin_port);
		return MP_OK;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *a = sin6->sin6_addr.s6_addr;

		if (len < (socklen_t)sizeof *sin6)
			return MP_ERR_INVAL;
		c->port = ntohs(sin6->sin6_port);
		if (memcmp(a, v4mapped_prefix, sizeof v4mapped_prefix) == 0) {
			c->family = 4;
			memcpy(c->addr, a + 12, 4);
		} else {
			c->family = 6;
			memcpy(c->addr, a, 16);
		}
		return MP_OK;
	}
	return MP_ERR_INVAL;
}

int
mp_candidate_to_sockaddr(const mp_candidate *c, struct sockaddr_storage *ss,
                         socklen_t *len)
{
	if (!c || !ss || !len)
		return MP_ERR_INVAL;
	memset(ss, 0, sizeof *ss);
	if (c->family == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(c->port);
		memcpy(&sin->sin_addr, c->addr, 4);
		*len = sizeof *sin;
		return MP_OK;
	}
	if (c->family == 6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(c->port);
		memcpy(&sin6->sin6_addr, c->addr, 16);
		*len = sizeof *sin6;
		return MP_OK;
	}
	return MP_ERR_INVAL;
}

int
mp_candidate_same_endpoint(const mp_candidate *a, const mp_candidate *b)
{
	size_t alen;

	if (!a || !b || a->family != b->family || a->port != b->port)
		return 0;
	alen = a->family == 4 ? 4 : a->family == 6 ? 16 : 0;
	return alen > 0 && memcmp(a->addr, b->addr, alen) == 0;
}

/* Whether an entry holds a usable address of family af; fills c. */
static int
keep(const struct ifaddrs *ifa, int af, uint16_t port, unsigned flags, mp_candidate *c)
{
	socklen_t salen = af == AF_INET ? sizeof(struct sockaddr_in)
	                                : sizeof(struct sockaddr_in6);

	if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != af)
		return 0;
	if ((ifa->ifa_flags & (IFF_UP | IFF_RUNNING)) != (IFF_UP | IFF_RUNNING))
		return 0;
	if ((ifa->ifa_flags & IFF_LOOPBACK) && !(flags & MP_NETIF_LOOPBACK))
		return 0;
	if (mp_candidate_from_sockaddr(ifa->ifa_addr, salen, MP_CAND_LOCAL, c) != MP_OK)
		return 0;
	c->port = port;
	/* an IPv4-mapped address turned into IPv4 is not an IPv6 interface address */
	return (af == AF_INET ? 4 : 6) == c->family && mp_netif_usable(c, flags);
}

/* Whether an entry before stop already gave the same address. */
static int
seen_before(const struct ifaddrs *list, const struct ifaddrs *stop, int af,
            unsigned flags, const mp_candidate *c)
{
	for (const struct ifaddrs *e = list; e && e != stop; e = e->ifa_next) {
		mp_candidate o;

		if (keep(e, af, c->port, flags, &o) && mp_candidate_same_endpoint(&o, c))
			return 1;
	}
	return 0;
}

/* One pass for one family; *n counts stored, *total all usable. */
static void
collect(const struct ifaddrs *list, int af, uint16_t port, unsigned flags,
        mp_candidate *out, size_t max, size_t *n, size_t *total)
{
	for (const struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
		mp_candidate c;

		if (!keep(ifa, af, port, flags, &c) || seen_before(list, ifa, af, flags, &c))
			continue;
		(*total)++;
		if (*n < max)
			out[(*n)++] = c;
	}
}

int
mp_netif_filter(const struct ifaddrs *list, uint16_t port, unsigned flags,
                mp_candidate *out, size_t max, size_t *n, size_t *total)
{
	size_t count = 0, all = 0;

	if (!n || (max > 0 && !out))
		return MP_ERR_INVAL;
	if (!(flags & MP_NETIF_NO_IPV4))
		collect(list, AF_INET, port, flags, out, max, &count, &all);
	if (!(flags & MP_NETIF_NO_IPV6))
		collect(list, AF_INET6, port, flags, out, max, &count, &all);
	*n = count;
	if (total)
		*total = all;
	return MP_OK;
}

int
mp_netif_list(uint16_t port, unsigned flags, mp_candidate *out, size_t max,
              size_t *n, size_t *total)
{
	struct ifaddrs *list;
	int rc;

	if (!n || (max > 0 && !out))
		return MP_ERR_INVAL;
	if (getifaddrs(&list) != 0)
		return MP_ERR_IO;
	rc = mp_netif_filter(list, port, flags, out, max, n, total);
	freeifaddrs(list);
	return rc;
}
