/*
 * pipe.h - joins a transport stream (transport.h) to file descriptors:
 * the netcat-like `connect` and `listen` (stdin to the peer, the peer
 * to stdout), and `listen --exec CMD` (the stream on a child's
 * stdin/stdout through a socketpair).
 *
 *   agent_pipe_new(base, stream, in_fd, out_fd, done, arg)
 *     stream  the application's end of a stream; the pipe owns it now
 *     in_fd   read until EOF and sent, then the stream is half-closed
 *             (FIN); -1: nothing to send, FIN at once
 *     out_fd  what the peer sends is written here; -1: discarded
 *     When in_fd == out_fd it is a socket (the child's): both ways go
 *     through a non-blocking bufferevent, EOF from the peer becomes
 *     shutdown(SHUT_WR), and the pipe closes the socket at the end.
 *     Otherwise out_fd is written with plain blocking writes (stdout:
 *     a slow reader slows the peer through QUIC flow control).
 *   done(p, ok, arg) once both directions are finished (ok = 1) or the
 *   stream failed (ok = 0); then agent_pipe_free(p).
 *
 * Neither fd is closed except the socket case.  Errors: NULL when out of
 * memory (the stream is freed).
 */
#ifndef MAILPUNCH_AGENT_PIPE_H
#define MAILPUNCH_AGENT_PIPE_H

#include <event2/bufferevent.h>
#include <event2/event.h>

typedef struct agent_pipe agent_pipe;
typedef void (*agent_pipe_done)(agent_pipe *p, int ok, void *arg);

agent_pipe *agent_pipe_new(struct event_base *base, struct bufferevent *stream, int in_fd, int out_fd,
                           agent_pipe_done done, void *arg);
/* Bytes moved so far each way (for the summary line). */
void agent_pipe_counts(const agent_pipe *p, unsigned long long *sent, unsigned long long *received);
void agent_pipe_free(agent_pipe *p);

#endif
