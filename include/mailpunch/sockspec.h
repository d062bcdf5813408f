/*
 * sockspec.h - socket specifications as milter admins write them.
 *
 * Interface: mp_sockspec_parse() accepts the forms of Sendmail/libmilter
 * and OpenDKIM:
 *     inet:PORT@HOST     inet:8893@127.0.0.1, inet:8893@localhost
 *     inet:PORT          all IPv4 addresses
 *     inet6:PORT@HOST    inet6:8893@[::1] or inet6:8893@::1
 *     unix:/path         local:/path is a synonym
 *     /path              an absolute path alone means unix:
 * mp_sockspec_listen() creates, binds and listens on the socket (for the
 * control socket; libmilter opens the milter socket from the same text).
 * Errors: MP_ERR_SYNTAX for a malformed spec (with a reason in err),
 * MP_ERR_IO from listen with errno preserved.
 */
#ifndef MAILPUNCH_SOCKSPEC_H
#define MAILPUNCH_SOCKSPEC_H

#include <stddef.h>

typedef enum mp_sock_family {
	MP_SOCK_UNIX,
	MP_SOCK_INET,
	MP_SOCK_INET6,
} mp_sock_family;

typedef struct mp_sockspec {
	mp_sock_family family;
	char path[108];        /* UNIX: the socket path */
	char host[256];        /* INET/INET6: host or address; "" = any */
	unsigned port;         /* INET/INET6: 1..65535 */
} mp_sockspec;

int mp_sockspec_parse(const char *spec, mp_sockspec *out, char *err, size_t errlen);
/* Canonical text form ("inet:8893@127.0.0.1"), for logs and libmilter. */
void mp_sockspec_format(const mp_sockspec *s, char *buf, size_t len);
/* Bind + listen; for UNIX removes a stale socket file first and applies
 * mode (e.g. 0660) when mode != 0.  Returns fd >= 0 or MP_ERR_IO. */
int mp_sockspec_listen(const mp_sockspec *s, unsigned mode, int backlog);
/* Connect (blocking); returns fd >= 0 or MP_ERR_IO. */
int mp_sockspec_connect(const mp_sockspec *s);

#endif
