/*
 * natplan.c - roles, spray schedules and the RANGE payload (natplan.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "mailpunch/natplan.h"
#include "wire.h"

/* ---------------------------------------------------------------- roles */

/* No NAT behaves like the friendliest NAT; an unknown one is taken to
 * be a cone, so that a side we know nothing about is only probed. */
static int
mapping_of(const mp_nat *n)
{
	return n->mapping == MP_NAT_ADDR_DEP || n->mapping == MP_NAT_ADDR_PORT_DEP ? n->mapping
	                                                                           : MP_NAT_INDEPENDENT;
}

static int
filtering_loose(const mp_nat *n)
{
	return n->filtering == MP_NAT_NONE || n->filtering == MP_NAT_INDEPENDENT ||
	       n->filtering == MP_NAT_ADDR_DEP;
}

/*
 * Can side r report its mapping and side s spray over it?  r's fresh
 * socket sent to s's known endpoint; s's sprayed packets must pass r's
 * filter: they come from s's known endpoint only when s's NAT maps
 * independently of the destination; otherwise from some other port of
 * s's address, which only an address-dependent (or open) filter lets in.
 * r's answer then goes back through the mapping the spray made in s's
 * NAT, so s's filter never stands in the way.
 */
static int
can_report_to(const mp_nat *r, const mp_nat *s)
{
	return mapping_of(r) != MP_NAT_INDEPENDENT &&
	       (mapping_of(s) == MP_NAT_INDEPENDENT || filtering_loose(r));
}

void
mp_natplan_make(const mp_nat *me, const mp_nat *peer, int initiator, mp_natplan *out)
{
	int i_report = can_report_to(me, peer), peer_reports = can_report_to(peer, me);

	memset(out, 0, sizeof *out);
	if (mapping_of(me) == MP_NAT_INDEPENDENT && mapping_of(peer) == MP_NAT_INDEPENDENT) {
		out->why = "both NATs map independently of the destination: direct probes";
		return;
	}
	if (mapping_of(me) == MP_NAT_INDEPENDENT && filtering_loose(me)) {
		/* the peer's probes from any port get in, and we answer them */
		out->why = "our NAT lets the peer's probes in: direct probes";
		return;
	}
	if (mapping_of(peer) == MP_NAT_INDEPENDENT && filtering_loose(peer)) {
		out->why = "the peer's NAT lets our probes in: direct probes";
		return;
	}
	if (i_report || peer_reports) {
		if (i_report) {
			out->roles |= MP_ROLE_REPORT;
			out->report_random = me->allocation == MP_ALLOC_RANDOM;
		}
		if (peer_reports)
			out->roles |= MP_ROLE_SPRAY;
		out->why = i_report && peer_reports ? "both report their mapping and spray the other's"
		           : i_report ? "we report our new mapping, the peer sprays it"
		                      : "the peer reports its new mapping, we spray it";
		return;
	}
	/* Both port-sensitive symmetric: seed 003 gives up here. */
	if (me->allocation == MP_ALLOC_SEQUENTIAL && peer->allocation == MP_ALLOC_SEQUENTIAL &&
	    me->delta != 0 && peer->delta != 0) {
		out->roles = initiator ? MP_ROLE_ALIGN_BUBBLE : MP_ROLE_ALIGN_REPLY;
		out->why = "both NATs port-sensitive symmetric, sequential: predicting both sides";
		return;
	}
	out->why = "both NATs port-sensitive symmetric and one allocates at random: "
	           "only direct probes, unlikely to work";
}

/* ---------------------------------------------------------------- spraying */

void
mp_spray_range(mp_spray *s, uint16_t base, uint16_t end, int delta, uint32_t max)
{
	int32_t d = delta < 0 ? -delta : delta, x;

	memset(s, 0, sizeof *s);
	s->base = base;
	s->end = end;
	s->max = max;
	if (d == 0)
		d = 1;
	/* direction from base toward end, whatever sign was measured */
	s->delta = end >= base ? 1 : -1;
	/* |delta|, then its divisors downwards: a delta measured over
	 * non-consecutive ports may be a multiple of the real one */
	for (x = d; x >= 1 && s->nsteps < sizeof s->steps / sizeof s->steps[0]; x--)
		if (d % x == 0)
			s->steps[s->nsteps++] = x;
	s->k = 1;
}

void
mp_spray_random(mp_spray *s, uint16_t lo, uint16_t hi, uint64_t seed, uint32_t max)
{
	memset(s, 0, sizeof *s);
	s->random = 1;
	if (hi < lo) {
		uint16_t t = lo;

		lo = hi;
		hi = t;
	}
	if (lo < MP_SPRAY_MIN_PORT)
		lo = MP_SPRAY_MIN_PORT;
	if (hi < lo)
		hi = lo;
	s->lo = lo;
	s->size = (uint32_t)hi - lo + 1;
	s->start = (uint32_t)(seed % s->size);
	/* a stride coprime with size walks every port exactly once */
	s->stride = (uint32_t)((seed >> 20) % s->size) | 1;
	while (s->size > 1) {
		uint32_t a = s->stride, b = s->size, t;

		while (b) {
			t = a % b;
			a = b;
			b = t;
		}
		if (a == 1)
			break;
		s->stride += 2;
	}
	s->max = max && max < s->size ? max : s->size;
}

/* Was base + k*step covered by an earlier, larger step? */
static int
covered(const mp_spray *s, int32_t off)
{
	unsigned p;

	for (p = 0; p < s->pass; p++)
		if (off % s->steps[p] == 0)
			return 1;
	return 0;
}

int
mp_spray_next(mp_spray *s, uint16_t *port)
{
	if (s->max && s->sent >= s->max)
		return 0;
	if (s->random) {
		while (s->i < s->size) {
			uint32_t v = s->lo + (uint32_t)(((uint64_t)s->start + (uint64_t)s->i * s->stride) % s->size);

			s->i++;
			*port = (uint16_t)v;
			s->sent++;
			return 1;
		}
		return 0;
	}
	while (s->pass < s->nsteps) {
		int32_t off = s->k * s->steps[s->pass], p = s->base + s->delta * off;

		if ((s->delta > 0 && p >= s->end) || (s->delta < 0 && p <= s->end) || p < 1 || p > 65535) {
			s->pass++;
			s->k = 1;
			continue;
		}
		s->k++;
		if (p < (int32_t)MP_SPRAY_MIN_PORT || covered(s, off))
			continue;
		*port = (uint16_t)p;
		s->sent++;
		return 1;
	}
	return 0;
}

double
mp_birthday_success(unsigned n, unsigned k, unsigned size)
{
	double miss = 1.0;
	unsigned i;

	if (n == 0 || k == 0 || size == 0)
		return 0.0;
	if (n + k > size)
		return 1.0;
	/* C(size-n, k)/C(size, k) = prod_{i<k} (size-n-i)/(size-i) */
	for (i = 0; i < k; i++)
		miss *= (double)(size - n - i) / (double)(size - i);
	return 1.0 - miss;
}

/* ---------------------------------------------------------------- RANGE */

int
mp_range_encode(const mp_range *r, uint8_t *buf, size_t cap, size_t *len)
{
	mp_wbuf w;
	uint8_t *out;
	size_t n;
	unsigned i;

	if (r->mode < MP_RANGE_SPAN || r->mode > MP_RANGE_CHUNKS || r->nchunks > MP_RANGE_MAX_CHUNKS)
		return MP_ERR_INVAL;
	mp_wbuf_init(&w, MP_RANGE_MAX_LEN);
	mp_put_u8(&w, r->mode);
	mp_put_u16(&w, (uint16_t)r->delta);
	mp_put_u16(&w, r->base);
	mp_put_u16(&w, r->end);
	mp_put_u16(&w, r->nsock);
	mp_put_u16(&w, (uint16_t)r->peer_delta);
	mp_put_u8(&w, r->nchunks);
	for (i = 0; i < r->nchunks; i++) {
		mp_put_u16(&w, r->chunk[i].q0);
		mp_put_u16(&w, r->chunk[i].p0);
		mp_put_u8(&w, r->chunk[i].count);
	}
	if (w.err) {
		int err = w.err;

		mp_wbuf_free(&w);
		return err;
	}
	out = mp_wbuf_take(&w, &n);
	if (n > cap) {
		free(out);
		return MP_ERR_TOOBIG;
	}
	memcpy(buf, out, n);
	free(out);
	*len = n;
	return MP_OK;
}

int
mp_range_decode(const uint8_t *buf, size_t len, mp_range *r)
{
	mp_rbuf rd;
	unsigned i;

	memset(r, 0, sizeof *r);
	mp_rbuf_init(&rd, buf, len);
	r->mode = mp_get_u8(&rd);
	r->delta = (int16_t)mp_get_u16(&rd);
	r->base = mp_get_u16(&rd);
	r->end = mp_get_u16(&rd);
	r->nsock = mp_get_u16(&rd);
	r->peer_delta = (int16_t)mp_get_u16(&rd);
	r->nchunks = mp_get_u8(&rd);
	if (rd.err)
		return rd.err;
	if (r->mode < MP_RANGE_SPAN || r->mode > MP_RANGE_CHUNKS || r->nchunks > MP_RANGE_MAX_CHUNKS)
		return MP_ERR_MALFORMED;
	for (i = 0; i < r->nchunks; i++) {
		r->chunk[i].q0 = mp_get_u16(&rd);
		r->chunk[i].p0 = mp_get_u16(&rd);
		r->chunk[i].count = mp_get_u8(&rd);
	}
	if (rd.err)
		return rd.err;
	if (mp_rbuf_left(&rd) != 0)
		return MP_ERR_MALFORMED;
	return MP_OK;
}

/* ---------------------------------------------------------------- align */

int
mp_align_window(uint16_t position, int delta, unsigned gap, unsigned i, uint16_t *port)
{
	long p = (long)position + (long)delta * (long)(gap + i);

	if (delta == 0 || p < (long)MP_SPRAY_MIN_PORT || p > 65535)
		return 0;
	*port = (uint16_t)p;
	return 1;
}

int
mp_align_chunk_exact(uint16_t before, uint16_t after, int delta, unsigned count)
{
	return (long)after - (long)before == (long)delta * (long)(count + 1);
}

int
mp_align_lookup(const mp_range *r, uint16_t q, uint16_t *p)
{
	unsigned c;

	if (r->mode != MP_RANGE_CHUNKS || r->peer_delta == 0)
		return 0;
	for (c = 0; c < r->nchunks; c++) {
		long off = (long)q - (long)r->chunk[c].q0;

		if (off % r->peer_delta != 0)
			continue;
		off /= r->peer_delta;
		if (off < 0 || off >= r->chunk[c].count)
			continue;
		*p = (uint16_t)((long)r->chunk[c].p0 + off * r->delta);
		return 1;
	}
	return 0;
}
