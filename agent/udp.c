/*
 * udp.c - the agent's one UDP socket and its endpoints.
 *
 * One IPv4 socket carries STUN and every IPv4 punch packet, so the
 * server-reflexive address STUN reports is the very mapping peers are
 * told to use; a second, IPv6-only socket (on the same port number when
 * free) carries IPv6 candidates, which need no NAT mapping.  The read
 * callback offers each datagram to the STUN client first, then to the
 * links (punch packets: magic "MPK\x01" and connection ID), then to the
 * QUIC transports (transport.c); anything else is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "transport.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/netif.h"

#define RX_BATCH 8
#define RX_BUF 65536

/* One datagram (or, with UDP_GRO, one of the equal-sized datagrams the
 * kernel glued together) to whoever it is for. */
static void
deliver(agent *a, const uint8_t *buf, size_t len, struct sockaddr *sa, socklen_t flen)
{
	mp_candidate src;

	if (a->stun && agent_stun_input(a->stun, buf, len, sa))
		return;
	if (mp_candidate_from_sockaddr(sa, flen, MP_CAND_SRFLX, &src) != MP_OK)
		return;
	if (agent_link_input(a, buf, len, &src))
		return;
	agent_transport_dispatch(a, buf, len, sa, flen);
}

static void
udp_readable(evutil_socket_t fd, short what, void *arg)
{
	agent *a = arg;
	/* one recvmmsg for up to RX_BATCH messages, each up to 64 KiB: with
	 * UDP_GRO the kernel hands a fast QUIC peer's packets over in
	 * batches of equal-sized datagrams (cmsg UDP_GRO: their size) */
	static uint8_t bufs[RX_BATCH][RX_BUF];
	char ctrl[RX_BATCH][CMSG_SPACE(sizeof(int))];
	struct sockaddr_storage from[RX_BATCH];
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iov[RX_BATCH];
	int round, i, n;

	(void)what;
	/* drain a bounded batch, then let other events run */
	for (round = 0; round < 8; round++) {
		memset(msgs, 0, sizeof msgs);
		for (i = 0; i < RX_BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = sizeof bufs[i];
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof from[i];
			msgs[i].msg_hdr.msg_control = ctrl[i];
			msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i];
		}
		n = recvmmsg(fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (i = 0; i < n; i++) {
			struct sockaddr *sa = (struct sockaddr *)&from[i];
			socklen_t flen = msgs[i].msg_hdr.msg_namelen;
			size_t len = msgs[i].msg_len, seg = len, off;
			struct cmsghdr *cm;

			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
				continue;
			for (cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm; cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
				if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
					int gso;

					memcpy(&gso, CMSG_DATA(cm), sizeof gso);
					if (gso > 0)
						seg = (size_t)gso;
				}
			}
			for (off = 0; off < len; off += seg)
				deliver(a, bufs[i] + off, len - off < seg ? len - off : seg, sa, flen);
		}
		if (n < RX_BATCH)
			return;
	}
}

/* Asks the kernel to glue a burst of equal datagrams from one sender
 * into one message (fewer system calls); older kernels just say no. */
static void
enable_gro(int fd)
{
	int one = 1;

	(void)setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one);
}

/* IPv6 is a bonus: a host without it just announces no IPv6 candidate. */
static void
open_ipv6(agent *a)
{
	struct sockaddr_in6 sin6;
	socklen_t len = sizeof sin6;
	int one = 1, tries;

	a->udp6_fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->udp6_fd < 0)
		return;
	setsockopt(a->udp6_fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	for (tries = 0; tries < 2; tries++) {
		memset(&sin6, 0, sizeof sin6);
		sin6.sin6_family = AF_INET6;
		sin6.sin6_addr = in6addr_any;
		/* same port number as IPv4 if we can: easier to read in logs */
		sin6.sin6_port = tries == 0 ? htons(a->udp_port) : 0;
		if (bind(a->udp6_fd, (struct sockaddr *)&sin6, sizeof sin6) == 0)
			break;
	}
	if (tries == 2 || getsockname(a->udp6_fd, (struct sockaddr *)&sin6, &len) != 0) {
		mp_log(MP_LOG_INFO, "no IPv6 socket: %s", strerror(errno));
		close(a->udp6_fd);
		a->udp6_fd = -1;
		return;
	}
	a->udp6_port = ntohs(sin6.sin6_port);
	enable_gro(a->udp6_fd);
	a->udp6_ev = event_new(a->base, a->udp6_fd, EV_READ | EV_PERSIST, udp_readable, a);
	if (a->udp6_ev)
		event_add(a->udp6_ev, NULL);
}

int
agent_udp_open(agent *a, char *err, size_t errlen)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;

	a->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->udp_fd < 0) {
		snprintf(err, errlen, "UDP socket: %s", strerror(errno));
		return MP_ERR_IO;
	}
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)a->cfg->local_port);
	if (bind(a->udp_fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    getsockname(a->udp_fd, (struct sockaddr *)&sin, &len) != 0) {
		snprintf(err, errlen, "UDP port %lld: %s", a->cfg->local_port, strerror(errno));
		close(a->udp_fd);
		a->udp_fd = -1;
		return MP_ERR_IO;
	}
	a->udp_port = ntohs(sin.sin_port);
	enable_gro(a->udp_fd);
	a->udp_ev = event_new(a->base, a->udp_fd, EV_READ | EV_PERSIST, udp_readable, a);
	if (!a->udp_ev || event_add(a->udp_ev, NULL) != 0) {
		snprintf(err, errlen, "cannot watch the UDP socket");
		return MP_ERR_IO;
	}
	open_ipv6(a);
	return MP_OK;
}

void
agent_udp_close(agent *a)
{
	agent_stun_client_free(a->stun);
	a->stun = NULL;
	if (a->udp_ev)
		event_free(a->udp_ev);
	a->udp_ev = NULL;
	if (a->udp_fd >= 0)
		close(a->udp_fd);
	a->udp_fd = -1;
	if (a->udp6_ev)
		event_free(a->udp6_ev);
	a->udp6_ev = NULL;
	if (a->udp6_fd >= 0)
		close(a->udp6_fd);
	a->udp6_fd = -1;
}

int
agent_udp_send(agent *a, const mp_candidate *to, const uint8_t *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	int fd = to->family == 4 ? a->udp_fd : a->udp6_fd;

	if (fd < 0 || mp_candidate_to_sockaddr(to, &ss, &sl) != MP_OK)
		return MP_ERR_INVAL;
	return sendto(fd, buf, len, 0, (struct sockaddr *)&ss, sl) == (ssize_t)len ? MP_OK : MP_ERR_IO;
}

static void
add_candidate(agent *a, const mp_candidate *c)
{
	size_t i;

	for (i = 0; i < a->ep.ncand; i++)
		if (mp_candidate_same_endpoint(&a->ep.cand[i], c))
			return;
	if (a->ep.ncand < MP_MAX_CANDIDATES)
		a->ep.cand[a->ep.ncand++] = *c;
}

static void
stun_done(agent_stun_client *c, void *arg)
{
	agent *a = arg;
	mp_candidate srflx[MP_MAX_CANDIDATES];
	size_t n = agent_stun_srflx(c, srflx, MP_MAX_CANDIDATES), i;
	mp_endpoints local = a->ep;

	/* the server-reflexive candidates go first: they work from anywhere */
	memset(&a->ep.cand, 0, sizeof a->ep.cand);
	a->ep.ncand = 0;
	for (i = 0; i < n; i++)
		add_candidate(a, &srflx[i]);
	for (i = 0; i < local.ncand; i++)
		add_candidate(a, &local.cand[i]);
	if (n == 0)
		mp_log(MP_LOG_WARNING, "no STUN server answered: announcing local addresses only");
	a->on_endpoints(a);
}

int
agent_endpoints_gather(agent *a, void (*done)(agent *a))
{
	mp_candidate local[MP_MAX_CANDIDATES];
	size_t n = 0, total = 0, i;

	memset(&a->ep, 0, sizeof a->ep);
	a->ep.nat = a->nat;
	if (a->cfg->announce.count) {
		/* the admin knows better than the interface list */
		for (i = 0; i < a->cfg->announce.count; i++) {
			char text[80];
			mp_candidate c;

			const char *ip = a->cfg->announce.items[i];

			if (strchr(ip, ':'))
				snprintf(text, sizeof text, "[%s]:%u", ip, a->udp6_port);
			else
				snprintf(text, sizeof text, "%s:%u", ip, a->udp_port);
			if (mp_candidate_parse(text, MP_CAND_LOCAL, &c) == MP_OK)
				add_candidate(a, &c);
			else
				mp_log(MP_LOG_WARNING, "AnnounceAddress %s: not an IP address", ip);
		}
	} else {
		if (mp_netif_list(a->udp_port, MP_NETIF_NO_IPV6, local, MP_MAX_CANDIDATES, &n, &total) == MP_OK)
			for (i = 0; i < n; i++)
				add_candidate(a, &local[i]);
		if (a->udp6_fd >= 0 &&
		    mp_netif_list(a->udp6_port, MP_NETIF_NO_IPV4, local, MP_MAX_CANDIDATES, &n, &total) == MP_OK)
			for (i = 0; i < n; i++)
				add_candidate(a, &local[i]);
	}
	a->on_endpoints = done;
	if (a->cfg->stun_servers.count == 0) {
		done(a);
		return MP_OK;
	}
	if (!a->stun) {
		agent_stun_opts o = { .software = "mailpunch-agent" };

		a->stun = agent_stun_client_new(a->base, a->udp_fd, &o);
		if (!a->stun)
			return MP_ERR_NOMEM;
		for (i = 0; i < a->cfg->stun_servers.count; i++)
			if (agent_stun_add_server(a->stun, a->cfg->stun_servers.items[i]) < 0)
				mp_log(MP_LOG_WARNING, "STUNServer %s: not usable", a->cfg->stun_servers.items[i]);
	}
	return agent_stun_start(a->stun, stun_done, a);
}
