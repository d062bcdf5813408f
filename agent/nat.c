/*
 * nat.c - the agent's use of NAT behaviour discovery.
 *
 *   agent_gather_with_nat()  at the start of register/connect/listen/
 *       invite: the discovery (nat_discovery.c, its own sockets) runs
 *       beside the endpoint gathering of the main socket, and the
 *       command goes on once both are over, so the first REQUEST or
 *       SIGNAL already carries the NAT in its endpoints (a->ep.nat; udp.c
 *       copies a->nat into every later gathering).  A failed discovery
 *       only leaves the NAT unknown: the command never fails for it.
 *   agent_cmd_nat()  the `nat` command: one discovery, printed for
 *       people or as one JSON object.
 *
 * Errors: agent_gather_with_nat() returns what agent_endpoints_gather()
 * does; agent_cmd_nat() returns an exit code (AGENT_EXIT_CONFIG without
 * STUNServer, AGENT_EXIT_FAILURE when no server answers) after saying
 * why on stderr.
 */
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/natclass.h"
#include "nat_discovery.h"

static void
nat_say(agent *a, const mp_nat *n)
{
	agent_say(a, "nat: mapping %s, filtering %s, allocation %s (delta %d): %s", mp_nat_dep_name(n->mapping),
	          mp_nat_dep_name(n->filtering), mp_nat_alloc_name(n->allocation), n->delta,
	          mp_natclass_classic_name(n));
}

static void
maybe_ready(agent *a)
{
	if (!a->nat_waiting && !a->ep_waiting && a->on_ready) {
		void (*cb)(agent *) = a->on_ready;

		a->on_ready = NULL;
		cb(a);
	}
}

static void
flow_nat_done(agent_nat_discovery *d, const agent_nat_report *r, void *arg)
{
	agent *a = arg;

	if (r->status == MP_OK) {
		a->nat = r->nat;
		a->ep.nat = r->nat;
		nat_say(a, &r->nat);
	} else {
		mp_log(MP_LOG_WARNING, "NAT discovery: %s", mp_strerror(r->status));
	}
	agent_nat_discovery_free(d);
	a->natd = NULL;
	a->nat_waiting = 0;
	maybe_ready(a);
}

static void
flow_ep_done(agent *a)
{
	a->ep_waiting = 0;
	maybe_ready(a);
}

int
agent_gather_with_nat(agent *a, void (*done)(agent *a))
{
	int rc;

	a->on_ready = done;
	a->ep_waiting = 1;
	a->nat_waiting = 0;
	if (a->cfg->stun_servers.count && !a->natd) {
		a->natd = agent_nat_discovery_new(a->base, NULL);
		if (a->natd && agent_nat_discovery_start(a->natd, (const char *const *)a->cfg->stun_servers.items,
		                                         a->cfg->stun_servers.count, flow_nat_done, a) == MP_OK) {
			a->nat_waiting = 1;
		} else {
			mp_log(MP_LOG_WARNING, "NAT discovery could not start: NAT behaviour unknown");
			agent_nat_discovery_free(a->natd);
			a->natd = NULL;
		}
	}
	if ((rc = agent_endpoints_gather(a, flow_ep_done)) != MP_OK) {
		agent_nat_stop(a);
		a->on_ready = NULL;
	}
	return rc;
}

void
agent_nat_stop(agent *a)
{
	agent_nat_discovery_free(a->natd);
	a->natd = NULL;
	a->nat_waiting = 0;
}

/* ---------------------------------------------------------------- nat command */

static void
json_text(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* A candidate as text, "-" when absent. */
static const char *
cand_text(const mp_candidate *c, int have, char *buf, size_t len)
{
	if (!have || mp_candidate_format(c, buf, len) != MP_OK)
		snprintf(buf, len, "-");
	return buf;
}

static void
json_cand(const char *key, const mp_candidate *c, int have)
{
	char t[64];

	printf("\"%s\":", key);
	if (have && mp_candidate_format(c, t, sizeof t) == MP_OK)
		printf("\"%s\"", t);
	else
		printf("null");
}

static void
print_json(const agent_nat_report *r)
{
	size_t i;
	int first = 1;

	printf("{\"server\":");
	json_text(r->server);
	printf(",");
	json_cand("server_address", &r->primary, 1);
	printf(",\"rfc5780\":%s,", r->rfc5780 ? "true" : "false");
	json_cand("other_address", &r->other, r->rfc5780);
	printf(",");
	json_cand("second_server", &r->second, r->two_servers);
	printf(",");
	json_cand("public", &r->map[0], r->have_map[0]);
	printf(",\"local_port\":%u,\"mapping\":\"%s\",\"filtering\":\"%s\",\"allocation\":\"%s\",\"delta\":%d,"
	       "\"nat_type\":\"%s\",\"tests\":{", r->local_port, mp_nat_dep_name(r->nat.mapping),
	       mp_nat_dep_name(r->nat.filtering), mp_nat_alloc_name(r->nat.allocation), r->nat.delta,
	       mp_natclass_classic_name(&r->nat));
	json_cand("I", &r->map[0], r->have_map[0]);
	printf(",");
	json_cand("II", &r->map[1], r->have_map[1]);
	printf(",");
	json_cand("III", &r->map[2], r->have_map[2]);
	if (r->rfc5780)
		printf(",\"change_ip_port\":\"%s\",\"change_port\":\"%s\"", agent_nat_filter_answer_name(r->filter_both),
		       agent_nat_filter_answer_name(r->filter_port));
	printf("},\"external_ports\":[");
	for (i = 0; i < r->nbindings; i++)
		if (r->binding[i].answered) {
			printf("%s%u", first ? "" : ",", r->binding[i].external_port);
			first = 0;
		}
	printf("],\"bindings\":[");
	for (i = 0; i < r->nbindings; i++) {
		const mp_nat_binding *b = &r->binding[i];

		printf("%s{\"local\":%u,", i ? "," : "", b->local_port);
		if (b->answered)
			printf("\"external\":%u,", b->external_port);
		else
			printf("\"external\":null,");
		json_cand("server", &b->dest, 1);
		printf("}");
	}
	printf("],\"ms\":%u}\n", r->elapsed_ms);
}

static void
print_people(const agent_nat_report *r)
{
	char t1[64], t2[64], t3[64];
	size_t i;

	printf("STUN server     %s (%s)", r->server, cand_text(&r->primary, 1, t1, sizeof t1));
	if (r->rfc5780)
		printf(", other address %s: RFC 5780\n", cand_text(&r->other, 1, t2, sizeof t2));
	else if (r->two_servers)
		printf(", no other address: filtering cannot be tested; mapping compared with %s\n",
		       cand_text(&r->second, 1, t2, sizeof t2));
	else
		printf(", no other address: mapping and filtering cannot be tested\n");
	printf("public address  %s (local port %u)\n", cand_text(&r->map[0], r->have_map[0], t1, sizeof t1),
	       r->local_port);
	printf("NAT type        %s\n", mp_natclass_classic_name(&r->nat));
	printf("mapping         %s\n", mp_nat_dep_name(r->nat.mapping));
	printf("filtering       %s\n", mp_nat_dep_name(r->nat.filtering));
	printf("allocation      %s", mp_nat_alloc_name(r->nat.allocation));
	if (r->nat.allocation == MP_ALLOC_SEQUENTIAL)
		printf(", delta %d", r->nat.delta);
	printf("\ndelta           %d\n", r->nat.delta);
	printf("external ports ");
	for (i = 0; i < r->nbindings; i++) {
		if (r->binding[i].answered)
			printf(" %u", r->binding[i].external_port);
		else
			printf(" -");
	}
	printf("  (from local ports");
	for (i = 0; i < r->nbindings; i++)
		printf(" %u", r->binding[i].local_port);
	printf(")\n");
	printf("mapping tests   I %s  II %s  III %s\n", cand_text(&r->map[0], r->have_map[0], t1, sizeof t1),
	       cand_text(&r->map[1], r->have_map[1], t2, sizeof t2), cand_text(&r->map[2], r->have_map[2], t3, sizeof t3));
	if (r->rfc5780)
		printf("filtering tests change IP and port: %s; change port: %s\n",
		       agent_nat_filter_answer_name(r->filter_both), agent_nat_filter_answer_name(r->filter_port));
	printf("took            %u ms\n", r->elapsed_ms);
}

static void
cmd_nat_done(agent_nat_discovery *d, const agent_nat_report *r, void *arg)
{
	agent *a = arg;

	(void)d;
	if (r->status != MP_OK) {
		fprintf(stderr, "mailpunch-agent: nat: %s\n",
		        r->status == MP_ERR_NOTFOUND ? "no STUNServer has an IPv4 address"
		                                     : "no STUN server answered (is STUNServer right and reachable?)");
		if (a->json) {
			printf("{\"error\":");
			json_text(r->status == MP_ERR_NOTFOUND ? "no STUN server address" : "no STUN server answered");
			printf("}\n");
		}
		a->exit_code = AGENT_EXIT_FAILURE;
	} else {
		if (a->json)
			print_json(r);
		else
			print_people(r);
		a->exit_code = AGENT_EXIT_OK;
	}
	fflush(stdout);
	event_base_loopexit(a->base, NULL);
}

int
agent_cmd_nat(agent *a)
{
	agent_nat_discovery *d;
	int rc;

	if (a->cfg->stun_servers.count == 0) {
		fprintf(stderr, "mailpunch-agent: nat: no STUNServer in the configuration\n");
		return AGENT_EXIT_CONFIG;
	}
	if (!(a->base = event_base_new()))
		return AGENT_EXIT_FAILURE;
	if (!(d = agent_nat_discovery_new(a->base, NULL))) {
		event_base_free(a->base);
		a->base = NULL;
		return AGENT_EXIT_FAILURE;
	}
	a->exit_code = AGENT_EXIT_FAILURE;
	rc = agent_nat_discovery_start(d, (const char *const *)a->cfg->stun_servers.items,
	                               a->cfg->stun_servers.count, cmd_nat_done, a);
	if (rc == MP_OK)
		event_base_dispatch(a->base);
	else
		fprintf(stderr, "mailpunch-agent: nat: cannot start: %s\n",
		        rc == MP_ERR_INVAL ? "no usable STUNServer" : mp_strerror(rc));
	agent_nat_discovery_free(d);
	event_base_free(a->base);
	a->base = NULL;
	return a->exit_code;
}
