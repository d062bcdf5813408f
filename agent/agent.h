/*
 * agent.h - the mailpunch-agent process: one context shared by its parts.
 *
 *   main.c      command line, the commands' flows, output, exit codes
 *   udp.c       the one UDP socket: endpoints (interfaces + STUN),
 *               datagram dispatch to STUN or to a link
 *   nat.c       NAT behaviour discovery (nat_discovery.c) for the
 *               `nat` command and beside the endpoint gathering
 *   outbox.c    mails the agent sends: REQUEST, RELAY(SIGNAL), notice,
 *               direct SIGNAL; sealed, composed, submitted over SMTP
 *   inbox.c     mails the agent receives: REPLY and SIGNAL, checked
 *               (trusted host, outstanding session ID, signer) and
 *               handed to the running command
 *   link.c      one connection attempt to one peer over UDP: probes to
 *               every candidate, the handshake (lib/punch.c), test data
 *   traverse.c  the attempt's NAT traversal plan (lib/natplan.c): range
 *               detection, bubbles, spraying, birthday probing, alignment
 *   transport.c the QUIC connection over an established link: TLS with
 *               pinned identity keys, streams as bufferevents, datagrams
 *   settings.c, state.c   configuration; what survives a restart
 *
 * Everything runs on one libevent loop; callbacks never block.
 */
#ifndef MAILPUNCH_AGENT_H
#define MAILPUNCH_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "mailbox.h"
#include "mailpunch/block.h"
#include "mailpunch/keys.h"
#include "mailpunch/punch.h"
#include "settings.h"
#include "state.h"
#include "stun_client.h"

/* Exit codes of mailpunch-agent (documented in mailpunch-agent(1)). */
enum agent_exit {
	AGENT_EXIT_OK = 0,
	AGENT_EXIT_FAILURE = 1,      /* anything not below */
	AGENT_EXIT_USAGE = 2,
	AGENT_EXIT_CONFIG = 3,       /* configuration or key file */
	AGENT_EXIT_AUTH = 4,         /* mail server refused user or password */
	AGENT_EXIT_TLS = 5,          /* TLS failed (certificate not trusted, ...) */
	AGENT_EXIT_MAILSERVER = 6,   /* mail server unreachable or refused the mail */
	AGENT_EXIT_NOREPLY = 7,      /* no reply from any host in time */
	AGENT_EXIT_UNREACHABLE = 8,  /* no peer could be reached */
	AGENT_EXIT_NOPEER = 9,       /* no such peer / nobody to connect to */
	AGENT_EXIT_PEERKEY = 10,     /* QUIC handshake failed: wrong identity key (either side) */
	AGENT_EXIT_LOST = 11,        /* connection lost: peer dead (idle timeout) or closed early */
};

#define AGENT_MAX_LINKS 8

typedef struct agent agent;
typedef struct agent_link agent_link;
typedef struct agent_transport agent_transport;

/* What the running command wants to hear about. */
typedef struct agent_hooks {
	void (*on_reply)(agent *a, const mp_msg *reply, const char *host);
	void (*on_signal)(agent *a, const mp_msg *sig, const char *from_addr, int direct);
	void (*on_link)(agent *a, agent_link *l, int established);
	void (*on_data)(agent *a, agent_link *l, const uint8_t *data, size_t len);
	/* a link's own signal (RANGE) to its peer; main.c mails it */
	void (*send_signal)(agent *a, const mp_pubid *to, const char *via_host, const char *direct_addr,
	                    uint8_t kind, const uint8_t *payload, size_t len);
} agent_hooks;

struct agent {
	struct event_base *base;
	agent_settings *cfg;
	mp_identity *id;
	mp_uid uid;
	char uid_text[MP_UID_TEXT_LEN + 1];
	agent_state state;
	int json;
	agent_hooks hooks;
	int exit_code;
	int finishing;               /* agent_finish called: exit when sends are done */
	unsigned pending_sends;      /* mails still with the SMTP client */

	/* udp.c: one IPv4 and (when the host has IPv6) one IPv6 socket */
	int udp_fd, udp6_fd;
	struct event *udp_ev, *udp6_ev;
	uint16_t udp_port, udp6_port;
	agent_stun_client *stun;
	mp_endpoints ep;
	void (*on_endpoints)(agent *a);

	/* nat.c: the NAT's behaviour, measured once per command on sockets
	 * of its own and carried in every ep gathered after */
	struct agent_nat_discovery *natd;
	mp_nat nat;
	int nat_waiting, ep_waiting;
	void (*on_ready)(agent *a);

	/* inbox.c */
	agent_mailbox *mailbox;

	/* link.c */
	agent_link *links[AGENT_MAX_LINKS];
	size_t nlinks;

	/* transport.c: the QUIC connections over established links */
	agent_transport *transports[AGENT_MAX_LINKS];
	size_t ntransports;

	/* main.c: the command's own timers and data */
	struct event *deadline;
	void *cmd;
};

/* udp.c */
int agent_udp_open(agent *a, char *err, size_t errlen);
/* Gathers local and STUN candidates into a->ep, then calls done. */
int agent_endpoints_gather(agent *a, void (*done)(agent *a));
void agent_udp_close(agent *a);
int agent_udp_send(agent *a, const mp_candidate *to, const uint8_t *buf, size_t len);

/* nat.c: agent_endpoints_gather() and, with STUN servers, the NAT
 * discovery beside it; done runs once both are over.  agent_nat_stop()
 * cancels a discovery still running.  agent_cmd_nat() is the `nat`
 * command: it returns the exit code. */
int agent_gather_with_nat(agent *a, void (*done)(agent *a));
void agent_nat_stop(agent *a);
int agent_cmd_nat(agent *a);

/* outbox.c: every send reports back once through cb (status: an
 * agent_smtp_status, 0 = queued by the submission server). */
typedef void (*agent_sent_cb)(agent *a, int status, const char *detail, void *arg);
int agent_send_request(agent *a, agent_sent_cb cb, void *arg);
int agent_send_signal(agent *a, const mp_pubid *to, const char *via_host, const char *direct_addr,
                      uint8_t kind, const uint8_t *payload, size_t payload_len, agent_sent_cb cb,
                      void *arg);
int agent_send_notice(agent *a, const char *host, const mp_uid *target, agent_sent_cb cb, void *arg);
/* Maps a send status to an exit code. */
int agent_exit_for_smtp(int status);

/* inbox.c */
int agent_inbox_start(agent *a, char *err, size_t errlen);
void agent_inbox_stop(agent *a);
const agent_host *agent_host_by_key(const agent *a, const uint8_t key[MP_KEY_LEN]);
int agent_exit_for_mailbox(int status);

/* link.c */
agent_link *agent_link_new(agent *a, const mp_pubid *peer, int initiator,
                           const uint8_t conn_id[MP_PUNCH_CONN_ID_LEN],
                           const uint8_t secret[MP_PUNCH_SECRET_LEN]);
/* Where the link's own signals (RANGE) go: through a host, or direct. */
void agent_link_set_route(agent_link *l, const char *via_host, const char *direct_addr);
void agent_link_add_candidates(agent_link *l, const mp_endpoints *ep);
/* The peer's fresh endpoints and NAT (OFFER or ANSWER): starts the plan. */
void agent_link_start_plan(agent_link *l, const mp_endpoints *peer);
struct mp_range;
void agent_link_on_range(agent_link *l, const struct mp_range *r);
int agent_link_send_data(agent_link *l, const uint8_t *data, size_t len);
const mp_pubid *agent_link_peer(const agent_link *l);
const mp_candidate *agent_link_path(const agent_link *l);
int agent_link_initiator(const agent_link *l);
int agent_link_established(const agent_link *l);
/* The socket the path was found on (the transport sends there). */
int agent_link_path_fd(const agent_link *l);
void agent_link_stats(const agent_link *l, unsigned long *packets, long *ms_to_path, const char **plan);
void agent_link_free(agent_link *l);
agent_link *agent_link_by_conn_id(agent *a, const uint8_t conn_id[MP_PUNCH_CONN_ID_LEN]);
/* Routes a datagram to its link; 1 if consumed. */
int agent_link_input(agent *a, const uint8_t *pkt, size_t len, const mp_candidate *from);

/* Output helpers (main.c). */
void agent_say(agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the event loop with code, once no mail is still being sent (a
 * failure notice must leave before the process does). */
void agent_finish(agent *a, int code);
void agent_maybe_exit(agent *a);

#endif
