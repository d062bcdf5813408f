/*
 * blockutil.h - fixtures shared by the block tests: a host, two users,
 * and fully populated messages of every type.
 */
#ifndef MAILPUNCH_BLOCKUTIL_H
#define MAILPUNCH_BLOCKUTIL_H

#include <arpa/inet.h>
#include <string.h>

#include "mailpunch/block.h"
#include "mailpunch/error.h"

static inline void
fill_endpoints(mp_endpoints *ep, unsigned seed)
{
	ep->ncand = 3;
	ep->cand[0].kind = MP_CAND_LOCAL;
	ep->cand[0].family = 4;
	inet_pton(AF_INET, "192.168.1.20", ep->cand[0].addr);
	ep->cand[0].port = (uint16_t)(40000 + seed);
	ep->cand[1].kind = MP_CAND_SRFLX;
	ep->cand[1].family = 4;
	inet_pton(AF_INET, "198.51.100.7", ep->cand[1].addr);
	ep->cand[1].port = (uint16_t)(50000 + seed);
	ep->cand[2].kind = MP_CAND_LOCAL;
	ep->cand[2].family = 6;
	inet_pton(AF_INET6, "2001:db8::42", ep->cand[2].addr);
	ep->cand[2].port = 4242;
	ep->nat.mapping = MP_NAT_ADDR_PORT_DEP;
	ep->nat.filtering = MP_NAT_ADDR_PORT_DEP;
	ep->nat.allocation = MP_ALLOC_SEQUENTIAL;
	ep->nat.delta = (int16_t)-2;
}

static inline void
fill_message(mp_msg *m, const mp_pubid *some_peer)
{
	unsigned i;

	switch (m->type) {
	case MP_MSG_REQUEST:
		strcpy(m->u.request.reply_addr, "alice@example.org");
		strcpy(m->u.request.name, "Alice");
		fill_endpoints(&m->u.request.ep, 1);
		break;
	case MP_MSG_REPLY:
		m->u.reply.npeers = 2;
		for (i = 0; i < 2; i++) {
			m->u.reply.peers[i].id = *some_peer;
			m->u.reply.peers[i].id.seal_pub[0] ^= (uint8_t)i;
			strcpy(m->u.reply.peers[i].name, i ? "" : "Bob");
			fill_endpoints(&m->u.reply.peers[i].ep, i);
			m->u.reply.peers[i].age = 60 * i;
			m->u.reply.peers[i].flags = i ? MP_PEER_FAILED : 0;
		}
		break;
	case MP_MSG_FAILURE_NOTICE:
		memset(m->u.failure.target.b, 0xab, MP_UID_LEN);
		m->u.failure.reason = MP_FAIL_TIMEOUT;
		break;
	case MP_MSG_SIGNAL:
		m->u.signal.kind = 1;
		fill_endpoints(&m->u.signal.ep, 7);
		m->u.signal.payload_len = 5;
		memcpy(m->u.signal.payload, "hello", 5);
		break;
	case MP_MSG_RELAY:
		memset(m->u.relay.target.b, 0xcd, MP_UID_LEN);
		m->u.relay.inner_len = 100;
		memset(m->u.relay.inner, 0x5a, 100);
		break;
	case MP_MSG_TABLE_SYNC:
		m->u.sync.want_full = 1;
		m->u.sync.nentries = 2;
		for (i = 0; i < 2; i++) {
			m->u.sync.entries[i].id = *some_peer;
			strcpy(m->u.sync.entries[i].name, "Carol");
			strcpy(m->u.sync.entries[i].reply_addr, "carol@example.net");
			fill_endpoints(&m->u.sync.entries[i].ep, i);
			m->u.sync.entries[i].time = 1800000000 + i;
			m->u.sync.entries[i].flags = (uint8_t)i;
		}
		break;
	}
}

#endif
