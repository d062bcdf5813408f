/*
 * natemu.c - a userspace NAT for the NAT lab (tests/natlab/lab.sh).
 *
 * Linux's own NAT (conntrack) can only do endpoint-independent mapping
 * with port-restricted filtering, or random ports: it cannot be a full
 * cone, a restricted cone, or a NAT that allocates ports sequentially.
 * natemu is a NAT whose RFC 4787 behaviours are each a switch:
 *
 *   natemu --lan IF --wan IF --wan-addr A [options]
 *     --mapping ei|ad|apd      endpoint-independent / address-dependent /
 *                              address-and-port-dependent mapping (ei)
 *     --filtering ei|ad|apd    who may send in through a mapping (ei)
 *     --alloc preserve|seq:K|random
 *                              external port = the LAN port if free (else
 *                              the next free one); the previous allocated
 *                              port + K; uniformly random (preserve)
 *     --port-range LO-HI       external ports (1024-65535)
 *     --timeout SEC            idle mapping lifetime (30); refreshed by
 *                              outbound and by accepted inbound packets
 *     --consume PER_SEC        phantom mappings per second taken from the
 *                              same allocator, as if other LAN hosts
 *                              opened flows (0); fractions allowed
 *     --no-hairpin             drop LAN packets to the WAN address
 *     --seed N                 random seed (default: time and pid)
 *     --stats-file F           counters and the mapping table, rewritten
 *                              (atomically) when a mapping comes or goes
 *                              or none is left, else twice a second, and
 *                              at exit
 *     --pid-file F             our pid, once listening
 *     -v                       log each new and expired mapping to stderr
 *
 * How: it runs in the router's network namespace, where the kernel must
 * not forward UDP itself.  AF_PACKET sockets (SOCK_DGRAM, ETH_P_IP) on
 * the LAN and WAN interfaces see every IPv4 packet addressed to the
 * router's MAC (only PACKET_HOST: our own output and other hosts' frames
 * are skipped), before netfilter; the kernel then drops the UDP ones
 * itself (lab.sh's nftables rules: no UDP forwarding, UDP to the WAN
 * address dropped silently, so no ICMP port unreachable leaks).
 * Translated packets leave through one raw socket (IPPROTO_RAW, so
 * IP_HDRINCL): the kernel routes them and resolves ARP.  This is simpler
 * than NFQUEUE (no libnetfilter_queue) and than TUN (no routing tricks),
 * and keeps the LAN and WAN real Ethernet segments.
 *
 * What is translated: UDP over IPv4 only.  Fragments and every other
 * protocol are not touched (counted as "untranslated" when they were
 * going through the router): lab.sh lets the kernel masquerade TCP and ICMP,
 * so LAN hosts still reach the mail system; packets addressed to the
 * router itself are the kernel's business.  IP and UDP checksums are
 * recomputed (a zero UDP checksum stays zero), TTL is decremented.
 *
 * Mappings: one external port per mapping, whatever the mapping type
 * (an APD NAT that reused one port for several destinations would look
 * the same from outside but for port consumption).  A mapping remembers
 * every remote endpoint it sent to; filtering AD lets in packets from
 * those addresses, APD from exactly those endpoints, EI from anyone.
 * Permissions live as long as their mapping.  Hairpinning: a LAN packet
 * to the WAN address is translated outbound (a mapping toward
 * WAN:port), then handed to inbound processing as if it came from
 * outside, so the target sees the sender's external endpoint and
 * filtering applies as to any remote; this works for every type.
 *
 * Errors: bad options exit 2, setup failures exit 1 with a message on
 * stderr; per-packet problems are counted, never fatal.  SIGTERM and
 * SIGINT end it cleanly (exit 0, stats file written).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum dep { DEP_EI, DEP_AD, DEP_APD };
enum alloc { ALLOC_PRESERVE, ALLOC_SEQ, ALLOC_RANDOM };

struct endpoint {
	uint32_t addr;		/* host byte order */
	uint16_t port;
};

struct mapping {
	int phantom;		/* --consume: holds a port, carries nothing */
	struct endpoint lan;	/* inside endpoint */
	struct endpoint remote;	/* the destination it was made for */
	uint16_t ext_port;
	uint64_t last_ms;	/* last refresh */
	struct endpoint *perm;	/* remote endpoints sent to */
	size_t nperm, capperm;
};

#define MAX_PORT 65536
#define MAX_LOCAL 32

struct nat {
	/* configuration */
	const char *lan_if, *wan_if, *stats_file, *pid_file;
	uint32_t wan_addr;
	enum dep mapping, filtering;
	enum alloc alloc;
	unsigned seq_k;
	unsigned port_lo, port_hi;
	unsigned timeout_s;
	double consume_per_s;
	int hairpin, verbose;
	uint64_t seed;

	/* state */
	int lan_fd, wan_fd, raw_fd;
	int lan_ifindex, wan_ifindex;
	uint32_t local[MAX_LOCAL];	/* the router's own addresses */
	size_t nlocal;
	struct mapping *by_port[MAX_PORT];
	struct mapping **list;		/* the same mappings, dense */
	size_t nlist, caplist;
	unsigned last_port;
	uint64_t rng;
	uint64_t next_phantom_ms;
	int stats_dirty;		/* the stats file must be rewritten now */

	/* counters */
	unsigned long created, phantoms, expired, out, in, hairpinned,
	    filtered, no_mapping, exhausted, dropped, untranslated;
};

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
rng_next(struct nat *n)
{
	/* xorshift64*: plenty for picking ports, reproducible with --seed */
	n->rng ^= n->rng >> 12;
	n->rng ^= n->rng << 25;
	n->rng ^= n->rng >> 27;
	return n->rng * 0x2545F4914F6CDD1DULL;
}

static const char *
fmt_ep(uint32_t addr, uint16_t port, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = htonl(addr) };
	char tmp[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, tmp, sizeof(tmp));
	snprintf(buf, len, "%s:%u", tmp, (unsigned)port);
	return buf;
}

/* ---------------------------------------------------------------- checksums */

static uint32_t
sum16(const uint8_t *p, size_t len, uint32_t acc)
{
	while (len > 1) {
		acc += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		acc += (uint32_t)p[0] << 8;
	return acc;
}

static uint16_t
fold(uint32_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)~acc;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A parsed UDP/IPv4 packet: pointers into the caller's buffer. */
struct pkt {
	uint8_t *ip, *udp;
	size_t len, ihl, udp_len;
	struct endpoint src, dst;
};

/*
 * Accepts a whole, unfragmented UDP/IPv4 packet whose lengths agree;
 * anything else returns 0 and is dropped by the caller.
 */
static int
parse_udp(uint8_t *buf, size_t len, struct pkt *p)
{
	size_t tot, ihl, ulen;

	if (len < 20 || (buf[0] >> 4) != 4)
		return 0;
	ihl = (size_t)(buf[0] & 15) * 4;
	tot = get16(buf + 2);
	if (ihl < 20 || tot < ihl + 8 || tot > len)
		return 0;
	if ((get16(buf + 6) & 0x3fff) != 0)	/* MF or an offset */
		return 0;
	if (buf[9] != IPPROTO_UDP)
		return 0;
	ulen = get16(buf + ihl + 4);
	if (ulen < 8 || ulen > tot - ihl)
		return 0;
	p->ip = buf;
	p->len = tot;
	p->ihl = ihl;
	p->udp = buf + ihl;
	p->udp_len = ulen;
	p->src.addr = get32(buf + 12);
	p->dst.addr = get32(buf + 16);
	p->src.port = get16(p->udp);
	p->dst.port = get16(p->udp + 2);
	return 1;
}

/* Writes src/dst back into the headers and recomputes both checksums. */
static void
rewrite(struct pkt *p, int decrement_ttl)
{
	uint8_t pseudo[12];
	uint32_t acc;
	uint16_t c;
	int had_udp_sum = get16(p->udp + 6) != 0;

	put32(p->ip + 12, p->src.addr);
	put32(p->ip + 16, p->dst.addr);
	put16(p->udp, p->src.port);
	put16(p->udp + 2, p->dst.port);
	if (decrement_ttl)
		p->ip[8]--;
	put16(p->ip + 10, 0);
	put16(p->ip + 10, fold(sum16(p->ip, p->ihl, 0)));
	if (!had_udp_sum)
		return;
	put16(p->udp + 6, 0);
	memcpy(pseudo, p->ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_UDP;
	put16(pseudo + 10, (uint16_t)p->udp_len);
	acc = sum16(pseudo, sizeof(pseudo), 0);
	c = fold(sum16(p->udp, p->udp_len, acc));
	put16(p->udp + 6, c ? c : 0xffff);
}

/* ---------------------------------------------------------------- mappings */

static int
port_free(const struct nat *n, unsigned port)
{
	return n->by_port[port] == NULL;
}

static unsigned
in_range(const struct nat *n, uint64_t v)
{
	unsigned size = n->port_hi - n->port_lo + 1;

	return n->port_lo + (unsigned)(v % size);
}

/* First free port at or after start, wrapping; 0 when all are taken. */
static unsigned
probe_up(const struct nat *n, unsigned start)
{
	unsigned size = n->port_hi - n->port_lo + 1, i, p;

	for (i = 0; i < size; i++) {
		p = n->port_lo + (start - n->port_lo + i) % size;
		if (port_free(n, p))
			return p;
	}
	return 0;
}

static unsigned
alloc_port(struct nat *n, unsigned hint)
{
	unsigned size = n->port_hi - n->port_lo + 1, i, p = 0;
	uint64_t cand;

	if (n->nlist >= size)
		return 0;
	switch (n->alloc) {
	case ALLOC_PRESERVE:
		p = probe_up(n, hint >= n->port_lo && hint <= n->port_hi ?
		    hint : in_range(n, rng_next(n)));
		break;
	case ALLOC_SEQ:
		/* previous + K, + 2K, ... skipping used ports, inside the range */
		cand = n->last_port - n->port_lo;
		for (i = 0; i < size && p == 0; i++) {
			cand += n->seq_k;
			if (port_free(n, in_range(n, cand)))
				p = in_range(n, cand);
		}
		if (p == 0)	/* K shares a factor with the range size */
			p = probe_up(n, in_range(n, cand));
		break;
	case ALLOC_RANDOM:
		for (i = 0; i < 64 && p == 0; i++) {
			cand = in_range(n, rng_next(n));
			if (port_free(n, (unsigned)cand))
				p = (unsigned)cand;
		}
		if (p == 0)
			p = probe_up(n, in_range(n, rng_next(n)));
		break;
	}
	if (p)
		n->last_port = p;
	return p;
}

static struct mapping *
mapping_new(struct nat *n, int phantom, struct endpoint lan, struct endpoint remote)
{
	struct mapping *m;
	unsigned port;

	if (n->nlist == n->caplist) {
		size_t cap = n->caplist ? n->caplist * 2 : 64;
		struct mapping **l = realloc(n->list, cap * sizeof(*l));

		if (l == NULL)
			return NULL;
		n->list = l;
		n->caplist = cap;
	}
	port = alloc_port(n, lan.port);
	if (port == 0) {
		n->exhausted++;
		n->stats_dirty = 1;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->phantom = phantom;
	m->lan = lan;
	m->remote = remote;
	m->ext_port = (uint16_t)port;
	m->last_ms = now_ms();
	n->stats_dirty = 1;
	n->by_port[port] = m;
	n->list[n->nlist++] = m;
	if (phantom) {
		n->phantoms++;
	} else {
		char a[32], b[32], c[32];

		n->created++;
		if (n->verbose)
			fprintf(stderr, "natemu: new mapping %s -> %s (toward %s)\n",
			    fmt_ep(lan.addr, lan.port, a, sizeof(a)),
			    fmt_ep(n->wan_addr, m->ext_port, b, sizeof(b)),
			    fmt_ep(remote.addr, remote.port, c, sizeof(c)));
	}
	return m;
}

static void
mapping_free(struct nat *n, size_t idx)
{
	struct mapping *m = n->list[idx];

	n->by_port[m->ext_port] = NULL;
	n->stats_dirty = 1;
	n->list[idx] = n->list[--n->nlist];
	free(m->perm);
	free(m);
}

static int
mapping_matches(const struct nat *n, const struct mapping *m,
    struct endpoint lan, struct endpoint remote)
{
	if (m->phantom || m->lan.addr != lan.addr || m->lan.port != lan.port)
		return 0;
	switch (n->mapping) {
	case DEP_EI:
		return 1;
	case DEP_AD:
		return m->remote.addr == remote.addr;
	case DEP_APD:
		return m->remote.addr == remote.addr && m->remote.port == remote.port;
	}
	return 0;
}

static void
permit(struct mapping *m, struct endpoint remote)
{
	size_t i;

	for (i = 0; i < m->nperm; i++)
		if (m->perm[i].addr == remote.addr && m->perm[i].port == remote.port)
			return;
	if (m->nperm == m->capperm) {
		size_t cap = m->capperm ? m->capperm * 2 : 4;
		struct endpoint *p = realloc(m->perm, cap * sizeof(*p));

		if (p == NULL)
			return;	/* the remote stays filtered: a lost packet */
		m->perm = p;
		m->capperm = cap;
	}
	m->perm[m->nperm++] = remote;
}

static int
permitted(const struct nat *n, const struct mapping *m, struct endpoint from)
{
	size_t i;

	if (n->filtering == DEP_EI)
		return 1;
	for (i = 0; i < m->nperm; i++) {
		if (m->perm[i].addr != from.addr)
			continue;
		if (n->filtering == DEP_AD || m->perm[i].port == from.port)
			return 1;
	}
	return 0;
}

static void
expire(struct nat *n, uint64_t now)
{
	size_t i = 0;
	char a[32], b[32];

	while (i < n->nlist) {
		struct mapping *m = n->list[i];

		if (m->last_ms >= now || now - m->last_ms < (uint64_t)n->timeout_s * 1000u) {
			i++;
			continue;
		}
		if (!m->phantom) {
			n->expired++;
			if (n->verbose)
				fprintf(stderr, "natemu: expired mapping %s -> %s\n",
				    fmt_ep(m->lan.addr, m->lan.port, a, sizeof(a)),
				    fmt_ep(n->wan_addr, m->ext_port, b, sizeof(b)));
		}
		mapping_free(n, i);	/* moves the last entry to i */
	}
}

static void
make_phantoms(struct nat *n, uint64_t now)
{
	uint64_t step;

	if (n->consume_per_s <= 0)
		return;
	step = (uint64_t)(1000.0 / n->consume_per_s);
	if (step == 0)
		step = 1;
	if (n->next_phantom_ms == 0)
		n->next_phantom_ms = now + step;
	while (n->next_phantom_ms <= now) {
		/* 10.255.x.y: an inside endpoint no real host has */
		struct endpoint lan = { 0x0aff0000u | (uint32_t)(rng_next(n) & 0xffff),
			(uint16_t)(1024 + rng_next(n) % 64512) };
		struct endpoint none = { 0, 0 };

		mapping_new(n, 1, lan, none);
		n->next_phantom_ms += step;
	}
}

/* ---------------------------------------------------------------- packets */

static void
send_raw(struct nat *n, struct pkt *p)
{
	struct sockaddr_in to = { .sin_family = AF_INET };

	to.sin_addr.s_addr = htonl(p->dst.addr);
	if (sendto(n->raw_fd, p->ip, p->len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		n->dropped++;
}

static int
is_local(const struct nat *n, uint32_t addr)
{
	size_t i;

	for (i = 0; i < n->nlocal; i++)
		if (n->local[i] == addr)
			return 1;
	return 0;
}

static void
inbound(struct nat *n, struct pkt *p, int from_hairpin)
{
	struct mapping *m;

	if (p->dst.addr != n->wan_addr)
		return;		/* not for us: the kernel's business */
	m = n->by_port[p->dst.port];
	if (m == NULL || m->phantom) {
		n->no_mapping++;
		return;
	}
	if (!permitted(n, m, p->src)) {
		n->filtered++;
		return;
	}
	if (!from_hairpin && p->ip[8] <= 1) {
		n->dropped++;
		return;
	}
	m->last_ms = now_ms();
	p->dst = m->lan;
	rewrite(p, !from_hairpin);
	n->in++;
	send_raw(n, p);
}

static void
outbound(struct nat *n, struct pkt *p)
{
	struct mapping *m = NULL;
	size_t i;
	int hairpin = p->dst.addr == n->wan_addr;

	if (hairpin && !n->hairpin) {
		n->dropped++;
		return;
	}
	if (!hairpin && (is_local(n, p->dst.addr) || p->dst.addr >> 28 >= 14))
		return;		/* to the router itself, multicast, broadcast */
	if (p->ip[8] <= 1) {
		n->dropped++;
		return;
	}
	for (i = 0; i < n->nlist && m == NULL; i++)
		if (mapping_matches(n, n->list[i], p->src, p->dst))
			m = n->list[i];
	if (m == NULL && (m = mapping_new(n, 0, p->src, p->dst)) == NULL) {
		n->dropped++;
		return;
	}
	m->last_ms = now_ms();
	permit(m, p->dst);
	p->src.addr = n->wan_addr;
	p->src.port = m->ext_port;
	rewrite(p, 1);
	n->out++;
	if (hairpin) {
		n->hairpinned++;
		inbound(n, p, 1);
	} else {
		send_raw(n, p);
	}
}

static void
read_packets(struct nat *n, int fd, int from_lan)
{
	uint8_t buf[65536];
	struct sockaddr_ll from;
	socklen_t fromlen;
	ssize_t len;
	struct pkt p;
	int i;

	/* a bounded batch, so that one busy side cannot starve the other */
	for (i = 0; i < 64; i++) {
		fromlen = sizeof(from);
		len = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
		    (struct sockaddr *)&from, &fromlen);
		if (len < 0)
			return;
		if (from.sll_pkttype != PACKET_HOST)
			continue;
		if (!parse_udp(buf, (size_t)len, &p)) {
			/* not ours to translate (the kernel may forward it) */
			if (len >= 20 && !is_local(n, get32(buf + 16)))
				n->untranslated++;
			continue;
		}
		if (from_lan)
			outbound(n, &p);
		else
			inbound(n, &p, 0);
	}
}

/* ---------------------------------------------------------------- setup */

static int
open_packet(const char *ifname, int *ifindex)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	int fd;

	*ifindex = (int)if_nametoindex(ifname);
	if (*ifindex == 0) {
		fprintf(stderr, "natemu: no interface %s\n", ifname);
		return -1;
	}
	fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
	if (fd < 0) {
		perror("natemu: socket(AF_PACKET)");
		return -1;
	}
	sll.sll_protocol = htons(ETH_P_IP);
	sll.sll_ifindex = *ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		perror("natemu: bind(AF_PACKET)");
		close(fd);
		return -1;
	}
	return fd;
}

static int
load_local_addresses(struct nat *n)
{
	struct ifaddrs *ifa, *i;

	if (getifaddrs(&ifa) < 0) {
		perror("natemu: getifaddrs");
		return -1;
	}
	for (i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && n->nlocal < MAX_LOCAL)
			n->local[n->nlocal++] =
			    ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
	freeifaddrs(ifa);
	return 0;
}

static void
write_stats(const struct nat *n)
{
	char tmp[4096], a[32];
	FILE *f;
	size_t i;
	uint64_t now = now_ms();

	if (n->stats_file == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", n->stats_file);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fprintf(f, "mappings %zu\ncreated %lu\nphantoms %lu\nexpired %lu\n"
	    "out %lu\nin %lu\nhairpinned %lu\nfiltered %lu\nno_mapping %lu\n"
	    "exhausted %lu\ndropped %lu\nuntranslated %lu\n", n->nlist, n->created,
	    n->phantoms, n->expired, n->out, n->in, n->hairpinned, n->filtered,
	    n->no_mapping, n->exhausted, n->dropped, n->untranslated);
	for (i = 0; i < n->nlist; i++) {
		const struct mapping *m = n->list[i];

		if (m->phantom)
			continue;
		fprintf(f, "map %u %s", (unsigned)m->ext_port,
		    fmt_ep(m->lan.addr, m->lan.port, a, sizeof(a)));
		fprintf(f, " toward %s idle_ms %llu permits %zu\n",
		    fmt_ep(m->remote.addr, m->remote.port, a, sizeof(a)),
		    (unsigned long long)(now - m->last_ms), m->nperm);
	}
	if (fclose(f) == 0)
		rename(tmp, n->stats_file);
}

static int
parse_dep(const char *s, enum dep *d)
{
	if (strcmp(s, "ei") == 0)
		*d = DEP_EI;
	else if (strcmp(s, "ad") == 0)
		*d = DEP_AD;
	else if (strcmp(s, "apd") == 0)
		*d = DEP_APD;
	else
		return -1;
	return 0;
}

static int
parse_uint(const char *s, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int
parse_alloc(struct nat *n, const char *s)
{
	if (strcmp(s, "preserve") == 0) {
		n->alloc = ALLOC_PRESERVE;
	} else if (strcmp(s, "random") == 0) {
		n->alloc = ALLOC_RANDOM;
	} else if (strncmp(s, "seq:", 4) == 0) {
		n->alloc = ALLOC_SEQ;
		if (parse_uint(s + 4, 1000, &n->seq_k) < 0 || n->seq_k == 0)
			return -1;
	} else if (strcmp(s, "seq") == 0) {
		n->alloc = ALLOC_SEQ;
		n->seq_k = 1;
	} else {
		return -1;
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: natemu --lan IF --wan IF --wan-addr A [--mapping ei|ad|apd]\n"
	    "  [--filtering ei|ad|apd] [--alloc preserve|seq:K|random] [--port-range LO-HI]\n"
	    "  [--timeout SEC] [--consume PER_SEC] [--no-hairpin] [--seed N]\n"
	    "  [--stats-file F] [--pid-file F] [-v]\n");
	exit(2);
}

static void
parse_args(struct nat *n, int argc, char **argv)
{
	int i;
	struct in_addr a;

	for (i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;

		if (strcmp(o, "-v") == 0) {
			n->verbose = 1;
			takes = 0;
		} else if (strcmp(o, "--no-hairpin") == 0) {
			n->hairpin = 0;
			takes = 0;
		} else if (v == NULL) {
			usage();
		} else if (strcmp(o, "--lan") == 0) {
			n->lan_if = v;
		} else if (strcmp(o, "--wan") == 0) {
			n->wan_if = v;
		} else if (strcmp(o, "--wan-addr") == 0) {
			if (inet_pton(AF_INET, v, &a) != 1)
				usage();
			n->wan_addr = ntohl(a.s_addr);
		} else if (strcmp(o, "--mapping") == 0) {
			if (parse_dep(v, &n->mapping) < 0)
				usage();
		} else if (strcmp(o, "--filtering") == 0) {
			if (parse_dep(v, &n->filtering) < 0)
				usage();
		} else if (strcmp(o, "--alloc") == 0) {
			if (parse_alloc(n, v) < 0)
				usage();
		} else if (strcmp(o, "--port-range") == 0) {
			char lo[8], hi[8];
			const char *dash = strchr(v, '-');

			if (dash == NULL || dash - v >= (long)sizeof(lo) || strlen(dash + 1) >= sizeof(hi))
				usage();
			memcpy(lo, v, (size_t)(dash - v));
			lo[dash - v] = 0;
			strcpy(hi, dash + 1);
			if (parse_uint(lo, 65535, &n->port_lo) < 0 || parse_uint(hi, 65535, &n->port_hi) < 0
			    || n->port_lo == 0 || n->port_lo > n->port_hi)
				usage();
		} else if (strcmp(o, "--timeout") == 0) {
			if (parse_uint(v, 86400, &n->timeout_s) < 0 || n->timeout_s == 0)
				usage();
		} else if (strcmp(o, "--consume") == 0) {
			char *end;

			n->consume_per_s = strtod(v, &end);
			if (end == v || *end || n->consume_per_s < 0 || n->consume_per_s > 1000)
				usage();
		} else if (strcmp(o, "--seed") == 0) {
			unsigned s;

			if (parse_uint(v, 0xffffffffUL, &s) < 0)
				usage();
			n->seed = s;
		} else if (strcmp(o, "--stats-file") == 0) {
			n->stats_file = v;
		} else if (strcmp(o, "--pid-file") == 0) {
			n->pid_file = v;
		} else {
			usage();
		}
		i += takes;
	}
	if (n->lan_if == NULL || n->wan_if == NULL || n->wan_addr == 0)
		usage();
}

static int
setup(struct nat *n)
{
	struct sigaction sa;
	int one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: poll must return */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (load_local_addresses(n) < 0)
		return -1;
	if ((n->lan_fd = open_packet(n->lan_if, &n->lan_ifindex)) < 0)
		return -1;
	if ((n->wan_fd = open_packet(n->wan_if, &n->wan_ifindex)) < 0)
		return -1;
	n->raw_fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (n->raw_fd < 0) {
		perror("natemu: socket(SOCK_RAW)");
		return -1;
	}
	/* implied by IPPROTO_RAW; said again for the reader */
	setsockopt(n->raw_fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one));
	n->rng = n->seed ? n->seed * 0x9E3779B97F4A7C15ULL : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
	if (n->rng == 0)
		n->rng = 1;
	n->last_port = in_range(n, rng_next(n));
	if (n->pid_file) {
		FILE *f = fopen(n->pid_file, "w");

		if (f == NULL) {
			perror(n->pid_file);
			return -1;
		}
		fprintf(f, "%ld\n", (long)getpid());
		fclose(f);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct nat nat;	/* by_port is 512 KiB: not on the stack */
	struct nat *n = &nat;
	uint64_t last_stats = 0, now;

	n->mapping = DEP_EI;
	n->filtering = DEP_EI;
	n->alloc = ALLOC_PRESERVE;
	n->port_lo = 1024;
	n->port_hi = 65535;
	n->timeout_s = 30;
	n->hairpin = 1;
	n->lan_fd = n->wan_fd = n->raw_fd = -1;
	parse_args(n, argc, argv);
	if (setup(n) < 0)
		return 1;
	if (n->verbose)
		fprintf(stderr, "natemu: running on %s/%s\n", n->lan_if, n->wan_if);
	while (!stop_requested) {
		struct pollfd pf[2] = {
			{ .fd = n->lan_fd, .events = POLLIN },
			{ .fd = n->wan_fd, .events = POLLIN },
		};
		int wait = 100;

		if (poll(pf, 2, wait) < 0 && errno != EINTR) {
			perror("natemu: poll");
			break;
		}
		now = now_ms();
		expire(n, now);
		make_phantoms(n, now);
		if (pf[0].revents & POLLIN)
			read_packets(n, n->lan_fd, 1);
		if (pf[1].revents & POLLIN)
			read_packets(n, n->wan_fd, 0);
		if (n->stats_dirty || now - last_stats >= 500) {
			write_stats(n);
			n->stats_dirty = 0;
			last_stats = now;
		}
	}
	write_stats(n);
	while (n->nlist)
		mapping_free(n, n->nlist - 1);
	free(n->list);
	close(n->lan_fd);
	close(n->wan_fd);
	close(n->raw_fd);
	if (n->pid_file)
		unlink(n->pid_file);
	return 0;
}
