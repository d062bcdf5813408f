/*
 * nat_discovery.c - RFC 5780 behaviour discovery and the port allocation
 * test (see nat_discovery.h for the rounds and why each test has a
 * socket of its own).
 *
 * Each test socket gets its own agent_stun_client reading it (own_read),
 * so no datagram meant for one test can be taken by another.  The
 * sockets and clients live until the discovery is freed: closing a
 * socket early would let the NAT reuse its port for the next binding and
 * fake a preserving or sequential allocation.
 *
 * Errors are reported through the report's status and the per-test
 * answers; nothing here logs above debug level except a server without
 * RFC 5780 (info): the admin may want to pick another.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/netif.h"
#include "mailpunch/stun.h"
#include "nat_discovery.h"

typedef struct probe {
	int fd;
	agent_stun_client *c;
	uint16_t port;                  /* local */
} probe;

struct agent_nat_discovery {
	struct event_base *base;
	agent_nat_opts o;
	agent_nat_done_cb cb;
	void *arg;
	int started, finished;
	struct timespec t0;
	probe map;                      /* tests I, II, III */
	probe filt[2];                  /* CHANGE-REQUEST IP+port; port */
	probe bind[AGENT_NAT_MAX_BINDINGS];
	size_t nbind;
	int idx_ii, idx_iii;
	unsigned pending;               /* round-2 clients still running */
	agent_nat_report r;
};

static unsigned
elapsed_ms(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (unsigned)((now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000);
}

const char *
agent_nat_filter_answer_name(int answer)
{
	switch (answer) {
	case MP_NATCLASS_ANSWERED: return "answered";
	case MP_NATCLASS_NO_ANSWER: return "no answer";
	}
	return "not usable";
}

agent_nat_discovery *
agent_nat_discovery_new(struct event_base *base, const agent_nat_opts *opts)
{
	agent_nat_discovery *d;
	size_t i;

	if (!base) {
		errno = EINVAL;
		return NULL;
	}
	if (!(d = calloc(1, sizeof *d)))
		return NULL;
	d->base = base;
	if (opts)
		d->o = *opts;
	if (!d->o.timeout_ms)
		d->o.timeout_ms = AGENT_NAT_TIMEOUT_MS;
	if (!d->o.rto_ms)
		d->o.rto_ms = AGENT_NAT_RTO_MS;
	if (!d->o.bindings)
		d->o.bindings = AGENT_NAT_BINDINGS;
	if (d->o.bindings > AGENT_NAT_MAX_BINDINGS)
		d->o.bindings = AGENT_NAT_MAX_BINDINGS;
	d->map.fd = -1;
	d->filt[0].fd = d->filt[1].fd = -1;
	for (i = 0; i < AGENT_NAT_MAX_BINDINGS; i++)
		d->bind[i].fd = -1;
	return d;
}

static void
probe_close(probe *p)
{
	agent_stun_client_free(p->c);
	p->c = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

void
agent_nat_discovery_free(agent_nat_discovery *d)
{
	size_t i;

	if (!d)
		return;
	probe_close(&d->map);
	probe_close(&d->filt[0]);
	probe_close(&d->filt[1]);
	for (i = 0; i < AGENT_NAT_MAX_BINDINGS; i++)
		probe_close(&d->bind[i]);
	free(d);
}

/* A fresh IPv4 socket on an ephemeral port, with its own STUN client. */
static int
probe_open(agent_nat_discovery *d, probe *p)
{
	agent_stun_opts so = { .timeout_ms = d->o.timeout_ms, .rto_ms = d->o.rto_ms,
		               .software = "mailpunch-agent", .own_read = 1 };
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;

	p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		return MP_ERR_IO;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	if (bind(p->fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    getsockname(p->fd, (struct sockaddr *)&sin, &len) != 0) {
		probe_close(p);
		return MP_ERR_IO;
	}
	p->port = ntohs(sin.sin_port);
	if (!(p->c = agent_stun_client_new(d->base, p->fd, &so))) {
		probe_close(p);
		return MP_ERR_NOMEM;
	}
	return MP_OK;
}

static const agent_stun_result *
first_result(const probe *p)
{
	const agent_stun_result *res;

	return p->c && agent_stun_results(p->c, &res) > 0 ? &res[0] : NULL;
}

static int
filter_answer(const probe *p, const mp_candidate *server, uint32_t flags)
{
	const agent_stun_result *res = first_result(p);

	if (!res)
		return MP_NATCLASS_BROKEN;
	if (res->status == MP_OK)
		return mp_natclass_change_honoured(server, &res->from, flags) ? MP_NATCLASS_ANSWERED
		                                                                : MP_NATCLASS_BROKEN;
	/* silence is the answer; an error response (420: no RFC 5780 after
	 * all) or a failed send is not */
	return res->status == MP_ERR_UNAVAILABLE && res->error_code == 0 ? MP_NATCLASS_NO_ANSWER
	                                                                 : MP_NATCLASS_BROKEN;
}

static void
finish(agent_nat_discovery *d)
{
	agent_nat_report *r = &d->r;
	mp_candidate locals[MP_MAX_CANDIDATES];
	const agent_stun_result *res;
	size_t nlocals = 0, n, i;

	if (r->status == MP_OK) {
		if (mp_netif_list(r->local_port, MP_NETIF_LOOPBACK | MP_NETIF_NO_IPV6, locals, MP_MAX_CANDIDATES,
		                  &nlocals, NULL) != MP_OK)
			nlocals = 0;
		if (r->rfc5780 && (n = agent_stun_results(d->map.c, &res)) > 0) {
			if (d->idx_ii >= 0 && (size_t)d->idx_ii < n && res[d->idx_ii].status == MP_OK) {
				r->have_map[1] = 1;
				r->map[1] = res[d->idx_ii].srflx;
			}
			if (d->idx_iii >= 0 && (size_t)d->idx_iii < n && res[d->idx_iii].status == MP_OK) {
				r->have_map[2] = 1;
				r->map[2] = res[d->idx_iii].srflx;
			}
		}
		if (r->rfc5780 || !r->two_servers)
			r->nat.mapping = (uint8_t)mp_natclass_mapping(&r->map[0], r->have_map[1] ? &r->map[1] : NULL,
			                                              r->have_map[2] ? &r->map[2] : NULL, locals, nlocals);
		else
			r->nat.mapping = (uint8_t)mp_natclass_mapping_two_servers(&r->primary, &r->map[0], &r->second,
			                                                          &r->map[1], locals, nlocals);
		if (r->rfc5780) {
			r->filter_both = filter_answer(&d->filt[0], &r->primary, MP_STUN_CHANGE_IP | MP_STUN_CHANGE_PORT);
			r->filter_port = filter_answer(&d->filt[1], &r->primary, MP_STUN_CHANGE_PORT);
		}
		r->nat.filtering = (uint8_t)mp_natclass_filtering(r->rfc5780, r->filter_both, r->filter_port,
		                                                  r->nat.mapping);
		for (i = 0; i < r->nbindings; i++) {
			const agent_stun_result *b = first_result(&d->bind[i]);

			r->binding[i].local_port = d->bind[i].port;
			if (b && b->status == MP_OK) {
				r->binding[i].answered = 1;
				r->binding[i].external_port = b->srflx.port;
			}
		}
		mp_natclass_allocation(r->binding, r->nbindings, &r->alloc);
		r->nat.allocation = (uint8_t)r->alloc.allocation;
		r->nat.delta = r->alloc.delta;
	}
	r->elapsed_ms = elapsed_ms(&d->t0);
	d->finished = 1;
	mp_log(MP_LOG_DEBUG, "nat: mapping %s, filtering %s, allocation %s delta %d in %u ms",
	       mp_nat_dep_name(r->nat.mapping), mp_nat_dep_name(r->nat.filtering),
	       mp_nat_alloc_name(r->nat.allocation), r->nat.delta, r->elapsed_ms);
	d->cb(d, r, d->arg);    /* may free d: touch nothing after */
}

static void
round2_done(agent_stun_client *c, void *arg)
{
	agent_nat_discovery *d = arg;

	(void)c;
	if (d->pending && --d->pending == 0)
		finish(d);
}

static int
probe_start(agent_nat_discovery *d, probe *p)
{
	if (agent_stun_start(p->c, round2_done, d) != MP_OK)
		return MP_ERR_INVAL;
	d->pending++;
	return MP_OK;
}

static mp_candidate
endpoint(const mp_candidate *addr_of, const mp_candidate *port_of)
{
	mp_candidate c = *addr_of;

	c.kind = 0;
	c.port = port_of->port;
	return c;
}

/* Opens the filtering probe p with one CHANGE-REQUEST to the primary. */
static void
start_filter(agent_nat_discovery *d, probe *p, uint32_t flags)
{
	if (probe_open(d, p) != MP_OK || agent_stun_add_address(p->c, &d->r.primary, flags) < 0 ||
	    probe_start(d, p) != MP_OK)
		probe_close(p);         /* reported as not usable */
}

/* OTHER-ADDRESS with another IP and another port: RFC 5780 usable. */
static int
has_alternate(const agent_stun_result *x)
{
	return x->have_other && x->other.family == 4 && x->server_addr.family == 4 &&
	       memcmp(x->other.addr, x->server_addr.addr, 4) != 0 && x->other.port != x->server_addr.port;
}

static void
round1_done(agent_stun_client *c, void *arg)
{
	agent_nat_discovery *d = arg;
	agent_nat_report *r = &d->r;
	const agent_stun_result *res;
	mp_candidate ends[AGENT_NAT_MAX_SERVERS * 4];
	size_t n = agent_stun_results(c, &res), i, j, nends = 0;
	int chosen = -1, notfound = 0;

	for (i = 0; i < n; i++) {
		const agent_stun_result *x = &res[i];

		notfound += x->status == MP_ERR_NOTFOUND;
		if (x->status != MP_OK)
			continue;
		/* the first server in the given order, preferring RFC 5780 */
		if (chosen < 0 || (!r->rfc5780 && has_alternate(x))) {
			chosen = (int)i;
			r->rfc5780 = has_alternate(x);
		}
		/* every answering server is an endpoint for the allocation */
		for (j = 0; j < nends && !mp_candidate_same_endpoint(&ends[j], &x->server_addr); j++)
			;
		if (j == nends)
			ends[nends++] = x->server_addr;
	}
	if (chosen < 0) {
		r->status = notfound == (int)n ? MP_ERR_NOTFOUND : MP_ERR_UNAVAILABLE;
		finish(d);
		return;
	}
	r->status = MP_OK;
	snprintf(r->server, sizeof r->server, "%s", res[chosen].server);
	r->primary = res[chosen].server_addr;
	r->primary.kind = 0;
	r->have_map[0] = 1;
	r->map[0] = res[chosen].srflx;
	if (r->rfc5780) {
		r->other = res[chosen].other;
		r->other.kind = 0;
		nends = 0;
		ends[nends++] = r->primary;
		ends[nends++] = endpoint(&r->primary, &r->other);
		ends[nends++] = endpoint(&r->other, &r->primary);
		ends[nends++] = r->other;
	} else {
		mp_log(MP_LOG_INFO, "nat: STUN server %s names no other address (no RFC 5780): "
		       "filtering not tested", r->server);
		/* a second server at another IP stands in for test II */
		for (i = 0; i < n && !r->two_servers; i++)
			if (res[i].status == MP_OK && res[i].server_addr.family == 4 &&
			    memcmp(res[i].server_addr.addr, r->primary.addr, 4) != 0) {
				r->two_servers = 1;
				r->second = res[i].server_addr;
				r->second.kind = 0;
				r->have_map[1] = 1;
				r->map[1] = res[i].srflx;
			}
	}

	/* From here on, sends happen in this order, back to back. */
	d->pending = 1;         /* held until every probe has started */
	if (r->rfc5780) {
		mp_candidate alt_ip = ends[2];

		d->idx_ii = agent_stun_add_address(c, &alt_ip, 0);
		d->idx_iii = agent_stun_add_address(c, &r->other, 0);
		if (probe_start(d, &d->map) != MP_OK)
			d->idx_ii = d->idx_iii = -1;
		start_filter(d, &d->filt[0], MP_STUN_CHANGE_IP | MP_STUN_CHANGE_PORT);
		start_filter(d, &d->filt[1], MP_STUN_CHANGE_PORT);
	}
	d->nbind = r->nbindings = d->o.bindings;
	for (i = 0; i < d->nbind; i++) {
		probe *p = &d->bind[i];

		r->binding[i].dest = ends[i % nends];
		if (probe_open(d, p) != MP_OK || agent_stun_add_address(p->c, &ends[i % nends], 0) < 0 ||
		    probe_start(d, p) != MP_OK) {
			/* keeps its place, unanswered: the gap stays visible */
			agent_stun_client_free(p->c);
			p->c = NULL;
		}
	}
	if (--d->pending == 0)
		finish(d);
}

int
agent_nat_discovery_start(agent_nat_discovery *d, const char *const *servers, size_t nservers,
                          agent_nat_done_cb cb, void *arg)
{
	size_t i, added = 0;
	int rc;

	if (!d || !servers || nservers == 0 || !cb || d->started)
		return MP_ERR_INVAL;
	d->started = 1;
	d->cb = cb;
	d->arg = arg;
	d->idx_ii = d->idx_iii = -1;
	clock_gettime(CLOCK_MONOTONIC, &d->t0);
	if ((rc = probe_open(d, &d->map)) != MP_OK)
		return rc;
	d->r.local_port = d->map.port;
	for (i = 0; i < nservers && added < AGENT_NAT_MAX_SERVERS; i++) {
		if (agent_stun_add_server(d->map.c, servers[i]) >= 0)
			added++;
		else
			mp_log(MP_LOG_WARNING, "nat: STUN server %s: not usable", servers[i]);
	}
	if (added == 0)
		return MP_ERR_INVAL;
	return agent_stun_start(d->map.c, round1_done, d);
}
