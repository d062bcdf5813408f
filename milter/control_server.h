/*
 * control_server.h - the milter's control socket (see docs/CONTROL.md).
 *
 * Interface: control_server_open() binds the UNIX socket as root (so it
 * can be given to the run user and group), control_server_start() runs
 * a thread that answers one request per connection with
 * mp_control_exec(), control_server_stop() ends it and removes the
 * socket.  One connection is served at a time: the commands are quick,
 * and a client that stalls is cut off after a few seconds.
 * Errors: mp_err with a reason in err.
 */
#ifndef MAILPUNCH_MILTER_CONTROL_SERVER_H
#define MAILPUNCH_MILTER_CONTROL_SERVER_H

#include <stddef.h>
#include <sys/types.h>

int control_server_open(const char *path, unsigned mode, uid_t uid, gid_t gid,
                        char *err, size_t errlen);
int control_server_start(char *err, size_t errlen);
void control_server_stop(void);

#endif
