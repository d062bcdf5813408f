/*
 * netif.h - local interface addresses as endpoint candidates.
 *
 * The agent announces the addresses of its own interfaces (kind
 * MP_CAND_LOCAL) next to the server-reflexive ones, so that two peers
 * behind the same NAT, or on the same LAN, can talk directly.
 *
 * Interface: mp_netif_list() asks getifaddrs(3) and keeps the usable
 * unicast addresses of interfaces that are up and running: IPv4 first,
 * then IPv6, each in the kernel's order, without duplicates.  It skips
 * loopback (127/8, ::1) unless MP_NETIF_LOOPBACK is given (tests),
 * link-local (169.254/16, fe80::/10: useless beyond one link and
 * ambiguous without a scope), unspecified, multicast and IPv4-mapped
 * addresses.  mp_netif_filter() does the same on a list the caller
 * built, so tests need not depend on the host's interfaces.
 * mp_candidate_from_sockaddr() and mp_candidate_to_sockaddr() convert
 * between candidates and socket addresses; an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, what a dual-stack socket reports) becomes IPv4.
 *
 * Errors: MP_ERR_IO (getifaddrs failed: errno tells), MP_ERR_INVAL
 * (NULL argument, unsupported address family, short sockaddr).  More
 * addresses than max is not an error: the list is cut at max and
 * *total (if not NULL) tells how many usable ones there were.
 */
#ifndef MAILPUNCH_NETIF_H
#define MAILPUNCH_NETIF_H

#include <stddef.h>
#include <stdint.h>
#include <ifaddrs.h>
#include <sys/socket.h>

#include "mailpunch/block.h"

#define MP_NETIF_LOOPBACK 0x01u   /* also 127/8 and ::1 (tests) */
#define MP_NETIF_NO_IPV4 0x02u
#define MP_NETIF_NO_IPV6 0x04u

int mp_netif_list(uint16_t port, unsigned flags, mp_candidate *out,
                  size_t max, size_t *n, size_t *total);
int mp_netif_filter(const struct ifaddrs *list, uint16_t port, unsigned flags,
                    mp_candidate *out, size_t max, size_t *n, size_t *total);

/* Whether a candidate's address is one mp_netif_list() would keep. */
int mp_netif_usable(const mp_candidate *c, unsigned flags);

int mp_candidate_from_sockaddr(const struct sockaddr *sa, socklen_t len,
                               mp_cand_kind kind, mp_candidate *c);
int mp_candidate_to_sockaddr(const mp_candidate *c,
                             struct sockaddr_storage *ss, socklen_t *len);
/* Same family, address and port (the kind is not compared). */
int mp_candidate_same_endpoint(const mp_candidate *a, const mp_candidate *b);

#endif
