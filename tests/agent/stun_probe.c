/*
 * stun_probe.c - a command-line driver for agent/stun_client.c, and a
 * misbehaving STUN server to test it against (tests/agent/test_stun.sh).
 *
 * Client:  stun_probe [options] SERVER...
 *   --bind ADDR:PORT   local address of the UDP socket (127.0.0.1:0)
 *   --timeout MS       per-query bound (client default: 3000)
 *   --rto MS           first retransmission timeout (default: 500)
 *   --change ip|port|both   send CHANGE-REQUEST (SERVER must be numeric)
 *   --shared           the probe reads the socket and hands datagrams to
 *                      agent_stun_input(); counts the ones not consumed
 *   --evdns            resolve names with an evdns base (/etc/hosts)
 *   --rounds N         run N rounds one after the other on one client
 *   --free-in-callback free the client from its done callback
 *   -v                 debug log on stderr
 * Prints "bound A:P", then per query "query I server S status ST sent N
 * elapsed_ms T", "srflx A:P server S", "other A:P server S", "origin A:P
 * server S", "from A:P server S", "error CODE server S", and after
 * each round "distinct_srflx N round R"; finally
 * "unconsumed N" (--shared) and "total_ms T".  Exits 0 when every query
 * answered, 1 when one failed, 2 on usage errors, 3 on setup errors.
 *
 * Server:  stun_probe --serve ADDR:PORT --mode MODE
 *   Prints "listening A:P" when ready and "request K at T ms" for each
 *   Binding request (T from the first one); runs until killed.  Modes:
 *   answer, silent, drop:N (ignore the first N requests), wrong-tid,
 *   other-port (answer from another socket), error (400), garbage
 *   (non-STUN datagrams, then the answer), unknown-attr, no-mapped,
 *   legacy (MAPPED-ADDRESS only), bad-fp (broken FINGERPRINT), dup
 *   (answer twice).
 */
#include "stun_client.h"

#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/netif.h"
#include "mailpunch/stun.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#define MAX_SERVERS AGENT_STUN_MAX_QUERIES

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *
fmt(const mp_candidate *c, char *buf, size_t len)
{
	if (mp_candidate_format(c, buf, len) != MP_OK)
		snprintf(buf, len, "?");
	return buf;
}

static int
bind_udp(const char *spec, mp_candidate *bound)
{
	struct sockaddr_storage ss;
	socklen_t len;
	mp_candidate c;
	int fd;

	/* mp_candidate_parse refuses port 0, which asks for any port */
	if (mp_candidate_parse(spec, MP_CAND_LOCAL, &c) != MP_OK) {
		char tmp[80];
		size_t n = strlen(spec);

		if (n < 2 || n + 1 >= sizeof tmp || strcmp(spec + n - 2, ":0") != 0)
			return -1;
		snprintf(tmp, sizeof tmp, "%.*s:1", (int)(n - 2), spec);
		if (mp_candidate_parse(tmp, MP_CAND_LOCAL, &c) != MP_OK)
			return -1;
		c.port = 0;
	}
	if (mp_candidate_to_sockaddr(&c, &ss, &len) != MP_OK)
		return -1;
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    mp_candidate_from_sockaddr((struct sockaddr *)&ss, len, MP_CAND_LOCAL, bound) != MP_OK) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---------------------------------------------------------------- server */

typedef enum mode {
	M_ANSWER, M_SILENT, M_DROP, M_WRONG_TID, M_OTHER_PORT, M_ERROR,
	M_GARBAGE, M_UNKNOWN_ATTR, M_NO_MAPPED, M_LEGACY, M_BAD_FP, M_DUP,
} mode;

static int
parse_mode(const char *s, mode *m, unsigned *drop)
{
	static const struct { const char *name; mode m; } modes[] = {
		{ "answer", M_ANSWER }, { "silent", M_SILENT }, { "wrong-tid", M_WRONG_TID },
		{ "other-port", M_OTHER_PORT }, { "error", M_ERROR }, { "garbage", M_GARBAGE },
		{ "unknown-attr", M_UNKNOWN_ATTR }, { "no-mapped", M_NO_MAPPED },
		{ "legacy", M_LEGACY }, { "bad-fp", M_BAD_FP }, { "dup", M_DUP },
	};

	if (strncmp(s, "drop:", 5) == 0) {
		*m = M_DROP;
		*drop = (unsigned)atoi(s + 5);
		return 0;
	}
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
		if (strcmp(s, modes[i].name) == 0) {
			*m = modes[i].m;
			return 0;
		}
	return -1;
}

static size_t
build_answer(mode md, const mp_stun_msg *req, const mp_candidate *src,
             const mp_candidate *self, uint8_t *out, size_t cap)
{
	mp_stun_builder b;
	mp_candidate other = *self;
	uint8_t tid[MP_STUN_TID_LEN];
	size_t n = 0;

	memcpy(tid, req->tid, sizeof tid);
	if (md == M_WRONG_TID)
		tid[0] ^= 0xff;
	other.port = (uint16_t)(self->port + 1);
	if (md == M_ERROR) {
		mp_stun_builder_init(&b, out, cap, MP_STUN_BINDING_ERROR, tid);
		mp_stun_add_error(&b, 400, "Bad Request");
	} else {
		mp_stun_builder_init(&b, out, cap, MP_STUN_BINDING_SUCCESS, tid);
		mp_stun_add_attr(&b, MP_STUN_ATTR_SOFTWARE, "stun_probe", 10);
		if (md == M_LEGACY) {
			mp_stun_add_addr(&b, MP_STUN_ATTR_MAPPED_ADDRESS, src);
			mp_stun_add_addr(&b, MP_STUN_ATTR_SOURCE_ADDRESS, self);
			mp_stun_add_addr(&b, MP_STUN_ATTR_CHANGED_ADDRESS, &other);
		} else if (md != M_NO_MAPPED) {
			mp_stun_add_addr(&b, MP_STUN_ATTR_XOR_MAPPED_ADDRESS, src);
			mp_stun_add_addr(&b, MP_STUN_ATTR_RESPONSE_ORIGIN, self);
			mp_stun_add_addr(&b, MP_STUN_ATTR_OTHER_ADDRESS, &other);
		}
		if (md == M_UNKNOWN_ATTR)
			mp_stun_add_u32(&b, 0x0042, 0);
	}
	mp_stun_add_fingerprint(&b);
	if (mp_stun_builder_finish(&b, &n) != MP_OK)
		return 0;
	if (md == M_BAD_FP)
		out[n - 1] ^= 0x01;
	return n;
}

static void
send_garbage(int fd, const struct sockaddr *to, socklen_t tolen)
{
	static const uint8_t rtp[] = { 0x80, 0x60, 0x00, 0x01, 0, 0, 0, 1, 0, 0, 0, 2, 'x' };
	uint8_t fake[20] = { 0x01, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x43 };   /* bad cookie */

	sendto(fd, rtp, sizeof rtp, 0, to, tolen);
	sendto(fd, "hello", 5, 0, to, tolen);
	sendto(fd, fake, sizeof fake, 0, to, tolen);
}

static int
serve(const char *spec, const char *mode_text)
{
	mp_candidate self, alt;
	char altspec[80], a[64];
	int fd, fd2 = -1;
	unsigned drop = 0, k = 0;
	uint64_t t0 = 0;
	mode md;

	if (parse_mode(mode_text, &md, &drop) != 0) {
		fprintf(stderr, "stun_probe: unknown mode %s\n", mode_text);
		return 2;
	}
	if ((fd = bind_udp(spec, &self)) < 0) {
		fprintf(stderr, "stun_probe: cannot bind %s: %s\n", spec, strerror(errno));
		return 3;
	}
	if (md == M_OTHER_PORT) {
		alt = self;
		alt.port = 0;
		snprintf(altspec, sizeof altspec, "%s", fmt(&alt, a, sizeof a));
		/* fmt gives "A:0" for port 0 */
		if ((fd2 = bind_udp(altspec, &alt)) < 0) {
			fprintf(stderr, "stun_probe: cannot bind a second socket\n");
			return 3;
		}
	}
	printf("listening %s\n", fmt(&self, a, sizeof a));
	fflush(stdout);
	for (;;) {
		uint8_t buf[MP_STUN_MSG_MAX + 1], out[MP_STUN_MSG_MAX];
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		mp_stun_msg req;
		mp_candidate src;
		ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&ss, &sl);
		size_t olen;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 3;
		}
		if (mp_stun_parse(buf, (size_t)n, &req) != MP_OK ||
		    req.type != MP_STUN_BINDING_REQUEST ||
		    mp_candidate_from_sockaddr((struct sockaddr *)&ss, sl, MP_CAND_SRFLX, &src) != MP_OK)
			continue;
		if (k++ == 0)
			t0 = now_ms();
		printf("request %u at %llu ms%s\n", k, (unsigned long long)(now_ms() - t0),
		       req.have & MP_STUN_HAVE_FINGERPRINT ? " fingerprint" : "");
		fflush(stdout);
		if (md == M_SILENT || (md == M_DROP && k <= drop))
			continue;
		if (md == M_GARBAGE)
			send_garbage(fd, (struct sockaddr *)&ss, sl);
		olen = build_answer(md, &req, &src, &self, out, sizeof out);
		if (olen == 0)
			continue;
		sendto(md == M_OTHER_PORT ? fd2 : fd, out, olen, 0, (struct sockaddr *)&ss, sl);
		if (md == M_DUP)
			sendto(fd, out, olen, 0, (struct sockaddr *)&ss, sl);
	}
}

/* ---------------------------------------------------------------- client */

typedef struct probe {
	struct event_base *base;
	agent_stun_client *client;
	int fd;
	unsigned rounds, round;
	int free_in_cb;
	unsigned unconsumed;
	int failed;
	uint64_t t0;
} probe;

static const char *
status_name(const agent_stun_result *r)
{
	switch (r->status) {
	case MP_OK: return "ok";
	case MP_ERR_UNAVAILABLE: return r->error_code ? "error" : "timeout";
	case MP_ERR_NOTFOUND: return "notfound";
	case MP_ERR_MALFORMED: return "malformed";
	case MP_ERR_IO: return "io";
	}
	return "other";
}

static void
print_results(probe *p)
{
	const agent_stun_result *r;
	size_t n = agent_stun_results(p->client, &r);
	char a[64];

	for (size_t i = 0; i < n; i++) {
		printf("query %zu server %s status %s sent %u elapsed_ms %u\n", i, r[i].server,
		       status_name(&r[i]), r[i].sent, r[i].elapsed_ms);
		if (r[i].status != MP_OK)
			p->failed = 1;
		if (r[i].error_code)
			printf("error %u server %s\n", (unsigned)r[i].error_code, r[i].server);
		if (r[i].status != MP_OK)
			continue;
		printf("srflx %s server %s\n", fmt(&r[i].srflx, a, sizeof a), r[i].server);
		if (r[i].have_other)
			printf("other %s server %s\n", fmt(&r[i].other, a, sizeof a), r[i].server);
		if (r[i].have_origin)
			printf("origin %s server %s\n", fmt(&r[i].origin, a, sizeof a), r[i].server);
		printf("from %s server %s\n", fmt(&r[i].from, a, sizeof a), r[i].server);
	}
}

static void
done(agent_stun_client *c, void *arg)
{
	probe *p = arg;
	mp_candidate srflx[MAX_SERVERS];
	size_t ns;

	print_results(p);
	ns = agent_stun_srflx(c, srflx, MAX_SERVERS);
	printf("distinct_srflx %zu round %u\n", ns, p->round + 1);
	if (++p->round < p->rounds && agent_stun_start(c, done, p) == MP_OK)
		return;
	if (p->free_in_cb) {
		agent_stun_client_free(c);
		p->client = NULL;
	}
	event_base_loopexit(p->base, NULL);
}

static void
shared_read(evutil_socket_t fd, short what, void *arg)
{
	probe *p = arg;
	uint8_t buf[2048];

	(void)what;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);

		if (n < 0)
			return;
		if (!p->client || !agent_stun_input(p->client, buf, (size_t)n, (struct sockaddr *)&ss))
			p->unconsumed++;
	}
}

static int
change_flags(const char *s, uint32_t *f)
{
	if (strcmp(s, "ip") == 0)
		*f = MP_STUN_CHANGE_IP;
	else if (strcmp(s, "port") == 0)
		*f = MP_STUN_CHANGE_PORT;
	else if (strcmp(s, "both") == 0)
		*f = MP_STUN_CHANGE_IP | MP_STUN_CHANGE_PORT;
	else
		return -1;
	return 0;
}

static int
usage(void)
{
	fprintf(stderr,
	        "usage: stun_probe [--bind A:P] [--timeout MS] [--rto MS] [--change ip|port|both]\n"
	        "                  [--shared] [--evdns] [--rounds N] [--free-in-callback] [-v] SERVER...\n"
	        "       stun_probe --serve A:P --mode MODE\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *bind_spec = "127.0.0.1:0", *serve_spec = NULL, *mode_text = "answer";
	agent_stun_opts opts;
	struct evdns_base *dns = NULL;
	struct event *rev = NULL;
	uint32_t change = 0;
	int shared = 0, use_evdns = 0, verbose = 0, i, rc = 0;
	mp_candidate bound;
	probe p;
	char a[64];

	memset(&opts, 0, sizeof opts);
	memset(&p, 0, sizeof p);
	p.rounds = 1;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--shared") == 0)
			shared = 1;
		else if (strcmp(o, "--evdns") == 0)
			use_evdns = 1;
		else if (strcmp(o, "--free-in-callback") == 0)
			p.free_in_cb = 1;
		else if (strcmp(o, "-v") == 0)
			verbose = 1;
		else if (!v)
			return usage();
		else if (strcmp(o, "--bind") == 0 && ++i)
			bind_spec = v;
		else if (strcmp(o, "--timeout") == 0 && ++i)
			opts.timeout_ms = (unsigned)atoi(v);
		else if (strcmp(o, "--rto") == 0 && ++i)
			opts.rto_ms = (unsigned)atoi(v);
		else if (strcmp(o, "--rounds") == 0 && ++i)
			p.rounds = (unsigned)atoi(v);
		else if (strcmp(o, "--change") == 0 && ++i) {
			if (change_flags(v, &change) != 0)
				return usage();
		} else if (strcmp(o, "--serve") == 0 && ++i)
			serve_spec = v;
		else if (strcmp(o, "--mode") == 0 && ++i)
			mode_text = v;
		else
			return usage();
	}
	mp_log_open("stderr", "stun_probe", verbose ? MP_LOG_DEBUG : MP_LOG_WARNING);
	if (serve_spec)
		return serve(serve_spec, mode_text);
	if (i >= argc || p.rounds == 0)
		return usage();
	signal(SIGPIPE, SIG_IGN);

	if ((p.fd = bind_udp(bind_spec, &bound)) < 0) {
		fprintf(stderr, "stun_probe: cannot bind %s: %s\n", bind_spec, strerror(errno));
		return 3;
	}
	printf("bound %s\n", fmt(&bound, a, sizeof a));
	p.base = event_base_new();
	if (!p.base)
		return 3;
	if (use_evdns) {
		dns = evdns_base_new(p.base, 0);
		if (!dns || evdns_base_load_hosts(dns, NULL) != 0)
			return 3;
		opts.dns = dns;
	}
	opts.own_read = !shared;
	opts.software = "mailpunch stun_probe";
	p.client = agent_stun_client_new(p.base, p.fd, &opts);
	if (!p.client) {
		fprintf(stderr, "stun_probe: agent_stun_client_new: %s\n", strerror(errno));
		return 3;
	}
	for (; i < argc; i++) {
		int q;

		if (change) {
			mp_candidate s;

			q = mp_candidate_parse(argv[i], MP_CAND_SRFLX, &s);
			if (q == MP_OK)
				q = agent_stun_add_address(p.client, &s, change);
		} else {
			q = agent_stun_add_server(p.client, argv[i]);
		}
		if (q < 0) {
			fprintf(stderr, "stun_probe: %s: %s\n", argv[i], mp_strerror(q));
			return 2;
		}
	}
	if (shared) {
		evutil_make_socket_nonblocking(p.fd);
		rev = event_new(p.base, p.fd, EV_READ | EV_PERSIST, shared_read, &p);
		if (!rev || event_add(rev, NULL) != 0)
			return 3;
	}
	p.t0 = now_ms();
	if (agent_stun_start(p.client, done, &p) != MP_OK)
		return 3;
	event_base_dispatch(p.base);
	if (shared)
		printf("unconsumed %u\n", p.unconsumed);
	printf("total_ms %llu\n", (unsigned long long)(now_ms() - p.t0));
	rc = p.failed ? 1 : 0;

	agent_stun_client_free(p.client);
	/* a lookup cancelled by the free is released from the loop */
	event_base_loop(p.base, EVLOOP_NONBLOCK);
	if (rev)
		event_free(rev);
	if (dns)
		evdns_base_free(dns, 1);      /* releases the cancelled lookups */
	event_base_free(p.base);
	close(p.fd);
	mp_log_close();
	return rc;
}
