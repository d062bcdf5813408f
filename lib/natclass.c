/*
 * natclass.c - NAT behaviour from observations (see
 * include/mailpunch/natclass.h for the rules and why).
 *
 * Pure functions over the caller's arrays: no I/O, no allocation, no
 * state.  Differences between external ports are computed in int (each
 * port fits 16 bits, so a difference fits 17), never in uint16_t, so a
 * backwards step stays negative instead of wrapping silently.
 */
#include "mailpunch/natclass.h"
#include "mailpunch/error.h"
#include "mailpunch/stun.h"

#include <stdlib.h>
#include <string.h>

unsigned
mp_natclass_gcd(int a, int b)
{
	unsigned x = (unsigned)abs(a), y = (unsigned)abs(b);

	while (y) {
		unsigned t = x % y;

		x = y;
		y = t;
	}
	return x;
}

static int
same_addr(const mp_candidate *a, const mp_candidate *b)
{
	size_t len = a->family == 6 ? 16 : 4;

	return a->family == b->family && memcmp(a->addr, b->addr, len) == 0;
}

static int
same_endpoint(const mp_candidate *a, const mp_candidate *b)
{
	return same_addr(a, b) && a->port == b->port;
}

/*
 * Tries one direction (+1 or -1) over the differences: those of the other
 * sign must be at most one wide jump (the pool wrapping).  Returns 1 and
 * fills out when the differences then form a sequence, 0 when this
 * direction does not fit.
 */
static int
try_direction(const int *d, size_t nd, int dir, mp_nat_alloc_result *out)
{
	unsigned g = 0, wraps = 0, used = 0;
	int smallest = 0;
	size_t i;

	for (i = 0; i < nd; i++) {
		int mag = abs(d[i]);

		if (d[i] == 0)
			continue;
		if ((d[i] > 0) != (dir > 0)) {
			if (mag < MP_NATCLASS_WRAP_MIN || ++wraps > 1)
				return 0;
			continue;
		}
		g = mp_natclass_gcd((int)g, d[i]);
		if (!smallest || mag < smallest)
			smallest = mag;
		used++;
	}
	if (used < 2 || g > MP_NATCLASS_MAX_DELTA)
		return 0;
	for (i = 0; i < nd; i++)
		if (d[i] != 0 && (d[i] > 0) == (dir > 0) && (unsigned)abs(d[i]) / g > MP_NATCLASS_MAX_STEPS)
			return 0;
	out->allocation = MP_ALLOC_SEQUENTIAL;
	out->delta = (int16_t)(dir * (int)g);
	out->ndiffs = used;
	out->wraps = wraps;
	out->smallest = smallest;
	return 1;
}

int
mp_natclass_allocation(const mp_nat_binding *b, size_t n, mp_nat_alloc_result *out)
{
	int d[MP_NATCLASS_MAX_BINDINGS];
	size_t i, nd = 0, zeros = 0;
	unsigned answered = 0, preserved = 0;
	int prev = -1;

	if (!b || !out || n > MP_NATCLASS_MAX_BINDINGS)
		return MP_ERR_INVAL;
	memset(out, 0, sizeof *out);
	for (i = 0; i < n; i++) {
		if (!b[i].answered)
			continue;
		answered++;
		if (b[i].external_port == b[i].local_port)
			preserved++;
		if (prev >= 0) {
			d[nd] = (int)b[i].external_port - prev;
			zeros += d[nd] == 0;
			nd++;
		}
		prev = b[i].external_port;
	}
	out->answered = answered;
	out->allocation = MP_ALLOC_UNKNOWN;
	if (answered >= 2 && preserved == answered) {
		out->allocation = MP_ALLOC_PRESERVING;
		return MP_OK;
	}
	if (answered < 3)
		return MP_OK;
	if (zeros == nd) {
		/* one external port for every new mapping: overloading */
		out->allocation = MP_ALLOC_SEQUENTIAL;
		return MP_OK;
	}
	if (try_direction(d, nd, 1, out) || try_direction(d, nd, -1, out))
		return MP_OK;
	out->allocation = MP_ALLOC_RANDOM;
	return MP_OK;
}

int
mp_natclass_mapping(const mp_candidate *x1, const mp_candidate *x2, const mp_candidate *x3,
                    const mp_candidate *locals, size_t nlocals)
{
	size_t i;

	if (!x1)
		return MP_NAT_UNKNOWN;
	for (i = 0; locals && i < nlocals; i++)
		if (same_endpoint(x1, &locals[i]))
			return MP_NAT_NONE;
	if (!x2)
		return MP_NAT_UNKNOWN;
	if (same_endpoint(x1, x2))
		return MP_NAT_INDEPENDENT;
	if (!x3)
		return MP_NAT_UNKNOWN;
	return same_endpoint(x2, x3) ? MP_NAT_ADDR_DEP : MP_NAT_ADDR_PORT_DEP;
}

int
mp_natclass_mapping_two_servers(const mp_candidate *server1, const mp_candidate *x1, const mp_candidate *server2,
                                const mp_candidate *x2, const mp_candidate *locals, size_t nlocals)
{
	int m;

	if (!x1 || !server1)
		return MP_NAT_UNKNOWN;
	if ((m = mp_natclass_mapping(x1, NULL, NULL, locals, nlocals)) == MP_NAT_NONE)
		return m;
	if (!x2 || !server2 || server1->family != server2->family || same_addr(server1, server2))
		return MP_NAT_UNKNOWN;
	return same_endpoint(x1, x2) ? MP_NAT_INDEPENDENT : MP_NAT_ADDR_PORT_DEP;
}

int
mp_natclass_filtering(int rfc5780, int change_both, int change_port, int mapping)
{
	if (!rfc5780 || change_both == MP_NATCLASS_BROKEN)
		return MP_NAT_UNKNOWN;
	if (change_both == MP_NATCLASS_ANSWERED)
		return mapping == MP_NAT_NONE ? MP_NAT_NONE : MP_NAT_INDEPENDENT;
	if (change_port == MP_NATCLASS_BROKEN)
		return MP_NAT_UNKNOWN;
	return change_port == MP_NATCLASS_ANSWERED ? MP_NAT_ADDR_DEP : MP_NAT_ADDR_PORT_DEP;
}

int
mp_natclass_change_honoured(const mp_candidate *server, const mp_candidate *from, uint32_t change_flags)
{
	int ip_changed, port_changed;

	if (!server || !from || server->family == 0 || from->family != server->family)
		return 0;
	ip_changed = !same_addr(server, from);
	port_changed = server->port != from->port;
	return ip_changed == !!(change_flags & MP_STUN_CHANGE_IP) && port_changed == !!(change_flags & MP_STUN_CHANGE_PORT);
}

const char *
mp_natclass_classic_name(const mp_nat *nat)
{
	if (!nat)
		return "unknown";
	switch (nat->mapping) {
	case MP_NAT_NONE:
		if (nat->filtering == MP_NAT_ADDR_DEP || nat->filtering == MP_NAT_ADDR_PORT_DEP)
			return "firewall (no NAT)";
		return "open internet";
	case MP_NAT_ADDR_DEP:
	case MP_NAT_ADDR_PORT_DEP:
		return "symmetric";
	case MP_NAT_INDEPENDENT:
		switch (nat->filtering) {
		case MP_NAT_INDEPENDENT: return "full cone";
		case MP_NAT_ADDR_DEP: return "restricted cone";
		case MP_NAT_ADDR_PORT_DEP: return "port-restricted cone";
		}
		return "cone (filtering unknown)";
	}
	return "unknown";
}
