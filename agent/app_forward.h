/*
 * app_forward.h - what TCP (app_forward.c) and UDP (app_forward_udp.c)
 * forwarding share: the allow list check and numeric addresses.
 *
 * Interface: agent_fwd_allowed() is 1 when host:port is in the list
 * (exact text, exact port); agent_fwd_sockaddr() turns numeric text or
 * "localhost" into an address (MP_ERR_SYNTAX otherwise: no DNS, ever).
 */
#ifndef MAILPUNCH_AGENT_APP_FORWARD_H
#define MAILPUNCH_AGENT_APP_FORWARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "app.h"

int agent_fwd_allowed(const agent_allow *allow, size_t n, const char *host, uint16_t port);
int agent_fwd_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

#endif
