/*
 * link_priv.h - what link.c (the attempt: sockets, probes, handshake)
 * and traverse.c (the NAT traversal plan: range detection, spraying,
 * alignment) share about one agent_link.  Nothing else includes it.
 *
 * Sockets: the agent's main socket carries the plain probes; the plan
 * opens extra sockets that belong to the link (fresh local ports for
 * range detection, the port-assigning socket, the birthday sockets).
 * Each extra socket reads its own datagrams: STUN answers to its own
 * binding, or punch packets for this link.  The path remembers which
 * socket it was found on, because only that socket's NAT mapping leads
 * to the peer.
 */
#ifndef AGENT_LINK_PRIV_H
#define AGENT_LINK_PRIV_H

#include "agent.h"
#include "mailpunch/natplan.h"
#include "mailpunch/stun.h"

#define LINK_MAX_CANDIDATES 32
#define LINK_MAX_SOCKS 320
#define LINK_MAIN_SOCK (-1)

/* What an extra socket is for. */
enum link_sock_use {
	SOCK_MEASURE = 1,    /* one STUN binding: where the allocation stands */
	SOCK_ASSIGN,         /* port-assigning socket(s) toward the peer */
	SOCK_BUBBLE,         /* align: the bubbling socket */
	SOCK_ALIGN,          /* align: one stepping attempt */
};

typedef struct link_sock {
	agent_link *l;
	int fd;
	struct event *ev;
	int use;              /* enum link_sock_use */
	uint16_t local_port;
	/* one STUN binding from this socket (range detection) */
	uint8_t tid[MP_STUN_TID_LEN];
	int stun_pending, stun_done;
	unsigned stun_sends;
	uint16_t mapped;      /* external port the STUN server saw */
	int tag;              /* traverse.c's own bookkeeping */
} link_sock;

struct agent_link {
	agent *a;
	mp_punch *punch;
	mp_pubid peer;
	int initiator;
	uint8_t conn_id[MP_PUNCH_CONN_ID_LEN];
	mp_candidate cand[LINK_MAX_CANDIDATES];
	size_t ncand;
	mp_candidate path;
	int path_sock;                 /* LINK_MAIN_SOCK or an index in socks */
	int have_path, established;
	unsigned ticks;
	struct event *timer;
	unsigned long packets;         /* punch packets sent, all sockets */
	uint64_t started_ms, reached_ms;
	/* where signals for this link go (main.c sets it) */
	char via_host[MP_ADDR_MAX + 1];
	char direct_addr[MP_ADDR_MAX + 1];
	/* extra sockets (traverse.c) */
	link_sock *socks[LINK_MAX_SOCKS];
	size_t nsocks;
	/* the plan (traverse.c) */
	int plan_started;
	mp_natplan plan;
	mp_nat peer_nat;
	mp_candidate peer_ip;          /* the peer's public address (port unused) */
	mp_candidate peer_srflx;       /* its main socket as a STUN server saw it */
	mp_candidate stun_server;
	int have_peer_ip, have_stun;
	struct event *pace;            /* spraying / bubbling / stepping */
	int measuring;                 /* STUN bindings still out */
	mp_spray spray;
	int spraying;
	unsigned spray_rounds;
	mp_range pending;              /* a RANGE that came before the ANSWER */
	int have_pending;
	mp_range peer_range;           /* what the peer reported */
	int have_peer_range;
	/* align */
	uint16_t peer_position;
	int have_position;
	unsigned bubble_next, bubble_total, chunk_open;
	int bubble_sock;
	unsigned align_attempts, align_wait;
	mp_range chunks;               /* the bubbler's exact chunks */
	uint16_t chunk_before[MP_RANGE_MAX_CHUNKS];
};

/* link.c */
uint64_t link_now_ms(void);
int link_sock_open(agent_link *l, int use);     /* index, or -1 */
void link_sock_close_all(agent_link *l, int keep);
int link_send_from(agent_link *l, int sock, const mp_candidate *to,
                   int (*make)(mp_punch *, uint8_t *, size_t, size_t *));
int link_stun_send(agent_link *l, int sock);    /* (re)sends the binding */

/* traverse.c */
void traverse_start(agent_link *l);
void traverse_tick(agent_link *l);              /* every link tick */
void traverse_stun_answered(agent_link *l, int sock);
void traverse_on_range(agent_link *l, const mp_range *r);
void traverse_stop(agent_link *l);

#endif
