/*
 * peers.c - peer selection (see peers.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailpunch/error.h"
#include "mailpunch/peers.h"

typedef struct ranked {
	size_t index;
	int flagged, allowed;
	uint32_t age;
} ranked;

static int
in_list(const mp_uid *uid, const mp_uid *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (mp_uid_equal(uid, &list[i]))
			return 1;
	return 0;
}

static int
rank_cmp(const void *a, const void *b)
{
	const ranked *x = a, *y = b;

	if (x->flagged != y->flagged)
		return x->flagged - y->flagged;
	if (x->allowed != y->allowed)
		return y->allowed - x->allowed;
	if (x->age != y->age)
		return x->age < y->age ? -1 : 1;
	return x->index < y->index ? -1 : (x->index > y->index);
}

size_t
mp_peers_order(const mp_peer *peers, size_t n, const mp_peer_policy *pol, size_t *order)
{
	ranked r[MP_REPLY_MAX_PEERS];
	size_t i, k = 0;

	if (n > MP_REPLY_MAX_PEERS)
		n = MP_REPLY_MAX_PEERS;
	for (i = 0; i < n; i++) {
		mp_uid uid;

		mp_pubid_uid(&peers[i].id, &uid);
		if (in_list(&uid, pol->deny, pol->ndeny) || (pol->self && mp_uid_equal(&uid, pol->self)))
			continue;
		r[k].index = i;
		r[k].flagged = (peers[i].flags & MP_PEER_FAILED) != 0;
		r[k].allowed = in_list(&uid, pol->allow, pol->nallow);
		r[k].age = peers[i].age;
		k++;
	}
	qsort(r, k, sizeof r[0], rank_cmp);
	for (i = 0; i < k; i++)
		order[i] = r[i].index;
	return k;
}

int
mp_peers_find(const mp_peer *peers, size_t n, const char *who, size_t *index)
{
	mp_uid want;
	size_t i, hits = 0;
	int by_uid = mp_uid_parse(who, &want) == MP_OK;

	for (i = 0; i < n; i++) {
		mp_uid uid;

		mp_pubid_uid(&peers[i].id, &uid);
		if (by_uid ? mp_uid_equal(&uid, &want) : strcasecmp(peers[i].name, who) == 0) {
			if (hits++ == 0)
				*index = i;
		}
	}
	if (hits == 0)
		return MP_ERR_NOTFOUND;
	return hits == 1 || by_uid ? MP_OK : MP_ERR_CONFLICT;
}
