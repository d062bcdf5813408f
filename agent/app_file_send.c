/*
 * app_file_send.c - the sending side of file transfer (`connect PEER
 * --send FILE...`; protocol: docs/PROTOCOL.md, "FILE").
 *
 * Files go one after the other: open, hash (a step per turn of the
 * loop, unless app_file_prehash.c hashed the unchanged file while the
 * connection was set up), open a stream, OFFER, wait for ACCEPT {offset} or REFUSE, DATA
 * from offset to the end with backpressure (fill the stream up to
 * AGENT_APP_STREAM_HIGH, go on below AGENT_APP_STREAM_LOW), wait for
 * RESULT, close the stream.  A stream that breaks ends the run: the
 * receiver keeps the part, and the next run resumes.
 *
 * Interface: agent/app.h (agent_file_sender_*).  Errors: the constructor
 * returns NULL with a message; each file ends with an agent_file_status
 * (and its REFUSE reason), details go to mp_log.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/evp.h>

#include "app.h"
#include "app_file.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"

/* ================================================================ sender */

enum { S_IDLE, S_HASHING, S_WAIT_REPLY, S_SENDING, S_WAIT_RESULT };

struct agent_file_sender {
	agent_app_io io;
	char **paths;
	size_t n, cur;
	int *status, *reason;
	int progress_mode;
	agent_file_done_fn *done;
	void *arg;
	void (*on_file)(void *arg, const char *name, int status, int reason);
	void *file_arg;
	int finished;

	/* the file now on its way */
	int phase, fd;
	struct bufferevent *bev;
	mp_app_offer offer;
	uint64_t pos, hashed;
	EVP_MD_CTX *md;
	const agent_file_prehash *prehash;   /* borrowed; NULL: hash here */
	struct stat st;                      /* of the file now on its way */
	int hashing_here;                    /* else waiting for the prehash */
	agent_progress progress;
	struct event *next_ev, *hash_ev;
};

static void sender_next(agent_file_sender *s);

static void
sender_finish_file(agent_file_sender *s, int status, int reason)
{
	s->status[s->cur] = status;
	s->reason[s->cur] = reason;
	event_del(s->hash_ev);
	if (s->phase != S_IDLE)
		agent_progress_end(&s->progress, agent_file_status_name(status));
	if (s->on_file)
		s->on_file(s->file_arg, s->offer.name[0] ? s->offer.name : s->paths[s->cur], status, reason);
	if (s->bev) {
		agent_app_stream_close(s->bev);
		s->bev = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	s->phase = S_IDLE;
	s->cur++;
	/* a broken stream means a broken connection: the rest waits for the
	 * next run, which resumes */
	if (status == AGENT_FILE_BROKEN)
		s->cur = s->n;
	/* not from inside the stream's callbacks: the next file starts on a
	 * fresh turn of the loop */
	event_active(s->next_ev, 0, 0);
}

/* Queues DATA up to the high-water mark; 0 when the file is finished
 * with (the stream is gone). */
static int
sender_fill(agent_file_sender *s)
{
	static uint8_t buf[CHUNK];
	struct evbuffer *out = bufferevent_get_output(s->bev);

	while (s->pos < s->offer.size && evbuffer_get_length(out) < AGENT_APP_STREAM_HIGH) {
		uint64_t left = s->offer.size - s->pos;
		size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
		ssize_t got = pread(s->fd, buf, want, (off_t)s->pos);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			mp_log(MP_LOG_ERR, "send %s: file changed or unreadable while sending", s->offer.name);
			sender_finish_file(s, AGENT_FILE_LOCAL, 0);
			return 0;
		}
		if (agent_app_write_frame(s->bev, MP_FR_DATA, buf, (size_t)got) != MP_OK) {
			sender_finish_file(s, AGENT_FILE_LOCAL, 0);
			return 0;
		}
		s->pos += (uint64_t)got;
		agent_progress_update(&s->progress, s->pos);
	}
	if (s->pos == s->offer.size)
		s->phase = S_WAIT_RESULT;
	return 1;
}

static void
sender_read(struct bufferevent *bev, void *arg)
{
	agent_file_sender *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t buf[SMALL_FRAME], type, reason, res;
	char text[MP_APP_TEXT_MAX + 1];
	uint32_t len;
	uint64_t offset;
	int rc;

	while ((rc = agent_app_peek_frame(in, &type, &len)) == 1) {
		if (agent_app_take_frame(in, len, buf, sizeof buf) != MP_OK)
			goto protocol;
		if (s->phase == S_WAIT_REPLY && type == MP_FR_ACCEPT) {
			if (mp_app_u64_decode(buf, len, &offset) != MP_OK || offset > s->offer.size)
				goto protocol;
			s->pos = offset;
			s->phase = S_SENDING;
			agent_progress_begin(&s->progress, s->progress_mode, "send", s->offer.name,
			                     s->offer.size, offset);
			if (offset)
				mp_log(MP_LOG_INFO, "send %s: resuming at %" PRIu64, s->offer.name, offset);
			if (!sender_fill(s))
				return;
			/* an empty file's RESULT may already be here */
		} else if (s->phase == S_WAIT_REPLY && type == MP_FR_REFUSE) {
			if (mp_app_refuse_decode(buf, len, &reason, text) != MP_OK)
				goto protocol;
			mp_log(MP_LOG_ERR, "send %s: refused by peer (%u: %s)", s->offer.name, reason, text);
			sender_finish_file(s, AGENT_FILE_REFUSED, reason);
			return;
		} else if (s->phase == S_WAIT_RESULT && type == MP_FR_RESULT) {
			if (mp_app_u8_decode(buf, len, &res) != MP_OK)
				goto protocol;
			if (res != MP_RESULT_OK)
				mp_log(MP_LOG_ERR, "send %s: peer reports a SHA-256 mismatch", s->offer.name);
			sender_finish_file(s, res == MP_RESULT_OK ? AGENT_FILE_OK : AGENT_FILE_BAD, 0);
			return;
		} else {
			goto protocol;
		}
	}
	if (rc == 0)
		return;
protocol:
	mp_log(MP_LOG_ERR, "send %s: peer broke the file protocol", s->offer.name);
	sender_finish_file(s, AGENT_FILE_BROKEN, 0);
}

static void
sender_write(struct bufferevent *bev, void *arg)
{
	agent_file_sender *s = arg;

	(void)bev;
	if (s->phase == S_SENDING)
		sender_fill(s);
}

static void
sender_event(struct bufferevent *bev, short what, void *arg)
{
	agent_file_sender *s = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* a RESULT or REFUSE may have come with the end */
		if (evbuffer_get_length(bufferevent_get_input(bev))) {
			sender_read(bev, s);
			if (s->bev != bev)
				return;
		}
		mp_log(MP_LOG_ERR, "send %s: stream ended at %" PRIu64 " of %" PRIu64 " bytes",
		       s->offer.name, s->pos, s->offer.size);
		sender_finish_file(s, AGENT_FILE_BROKEN, 0);
	}
}

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Opens the current file and starts hashing it (hash_step). */
static int
sender_begin_file(agent_file_sender *s)
{
	const char *path = s->paths[s->cur];
	struct stat st;

	memset(&s->offer, 0, sizeof s->offer);
	snprintf(s->offer.name, sizeof s->offer.name, "%s", base_name(path));
	if (mp_app_name_check(s->offer.name) != MP_OK) {
		mp_log(MP_LOG_ERR, "send %s: the name cannot be sent (plain names only)", path);
		return MP_ERR_SYNTAX;
	}
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		mp_log(MP_LOG_ERR, "send %s: not a readable regular file", path);
		return MP_ERR_IO;
	}
	s->st = st;
	s->offer.size = (uint64_t)st.st_size;
	s->hashed = 0;
	s->pos = 0;
	s->phase = S_HASHING;
	s->hashing_here = 0;
	/* hash_step takes the prehash's result, waits for it, or hashes */
	event_active(s->hash_ev, 0, 0);
	return MP_OK;
}

/* The hash is known: open the file's stream and send the OFFER. */
static int
sender_offer(agent_file_sender *s)
{
	uint8_t frame[SMALL_FRAME];
	size_t len;
	int rc;

	if (!(s->bev = s->io.open_stream(s->io.ctx))) {
		mp_log(MP_LOG_ERR, "send %s: cannot open a stream", s->paths[s->cur]);
		return MP_ERR_UNAVAILABLE;
	}
	bufferevent_setcb(s->bev, sender_read, sender_write, sender_event, s);
	bufferevent_setwatermark(s->bev, EV_WRITE, AGENT_APP_STREAM_LOW, 0);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	if ((rc = mp_app_offer_encode(&s->offer, frame, sizeof frame, &len)) != MP_OK)
		return rc;
	if (agent_app_write_header(s->bev, MP_APP_FILE) != MP_OK ||
	    bufferevent_write(s->bev, frame, len) != 0)
		return MP_ERR_NOMEM;
	s->phase = S_WAIT_REPLY;
	return MP_OK;
}

static void
hash_step(evutil_socket_t fd, short what, void *arg)
{
	agent_file_sender *s = arg;
	uint64_t to = agent_file_step_end(s->hashed, s->offer.size);
	unsigned int n;

	(void)fd;
	(void)what;
	if (!s->hashing_here) {
		switch (agent_file_prehash_lookup(s->prehash, s->paths[s->cur], &s->st,
		                                  s->offer.sha256)) {
		case AGENT_PREHASH_DONE:
			if (sender_offer(s) != MP_OK)
				sender_finish_file(s, AGENT_FILE_LOCAL, 0);
			return;
		case AGENT_PREHASH_BUSY:
			event_active(s->hash_ev, 0, 0);
			return;
		default:
			if (!EVP_DigestInit_ex(s->md, EVP_sha256(), NULL)) {
				sender_finish_file(s, AGENT_FILE_LOCAL, 0);
				return;
			}
			s->hashing_here = 1;
		}
	}
	if (agent_file_sha256_range(s->fd, s->hashed, to, s->md) != MP_OK) {
		mp_log(MP_LOG_ERR, "send %s: cannot read to hash it", s->paths[s->cur]);
		sender_finish_file(s, AGENT_FILE_LOCAL, 0);
		return;
	}
	s->hashed = to;
	if (s->hashed < s->offer.size) {
		event_active(s->hash_ev, 0, 0);
		return;
	}
	if (!EVP_DigestFinal_ex(s->md, s->offer.sha256, &n) || sender_offer(s) != MP_OK)
		sender_finish_file(s, AGENT_FILE_LOCAL, 0);
}

static void
sender_next(agent_file_sender *s)
{
	size_t failed = 0, i;

	while (s->cur < s->n) {
		if (sender_begin_file(s) == MP_OK)
			return;
		s->phase = S_IDLE;
		sender_finish_file(s, AGENT_FILE_LOCAL, 0);
		return;
	}
	if (s->finished)
		return;
	s->finished = 1;
	for (i = 0; i < s->n; i++)
		failed += s->status[i] != AGENT_FILE_OK;
	if (s->done)
		s->done(s->arg, failed);
}

static void
sender_next_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sender_next(arg);
}

agent_file_sender *
agent_file_sender_new(const agent_app_io *io, char *const *paths, size_t n, int progress_mode,
                      agent_file_done_fn *done, void *arg, char *err, size_t errlen)
{
	agent_file_sender *s = calloc(1, sizeof *s);
	size_t i;

	if (!s || !(s->paths = calloc(n ? n : 1, sizeof *s->paths)) ||
	    !(s->status = calloc(n ? n : 1, sizeof *s->status)) ||
	    !(s->reason = calloc(n ? n : 1, sizeof *s->reason)) || !(s->md = EVP_MD_CTX_new()) ||
	    !(s->next_ev = event_new(io->base, -1, 0, sender_next_cb, s)) ||
	    !(s->hash_ev = event_new(io->base, -1, 0, hash_step, s))) {
		snprintf(err, errlen, "out of memory");
		agent_file_sender_free(s);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (!(s->paths[i] = strdup(paths[i]))) {
			s->n = i;
			snprintf(err, errlen, "out of memory");
			agent_file_sender_free(s);
			return NULL;
		}
	}
	s->n = n;
	s->io = *io;
	s->fd = -1;
	s->progress_mode = progress_mode;
	s->done = done;
	s->arg = arg;
	return s;
}

void
agent_file_sender_on_file(agent_file_sender *s, void (*fn)(void *arg, const char *name, int status,
                                                            int reason),
                          void *arg)
{
	s->on_file = fn;
	s->file_arg = arg;
}

void
agent_file_sender_use_prehash(agent_file_sender *s, const agent_file_prehash *p)
{
	s->prehash = p;
}

int
agent_file_sender_start(agent_file_sender *s)
{
	event_active(s->next_ev, 0, 0);
	return MP_OK;
}

int
agent_file_sender_status(const agent_file_sender *s, size_t i, int *refuse_reason)
{
	if (i >= s->n)
		return AGENT_FILE_PENDING;
	if (refuse_reason)
		*refuse_reason = s->reason[i];
	return s->status[i];
}

void
agent_file_sender_free(agent_file_sender *s)
{
	size_t i;

	if (!s)
		return;
	if (s->bev)
		agent_app_stream_close(s->bev);
	if (s->fd >= 0)
		close(s->fd);
	if (s->next_ev)
		event_free(s->next_ev);
	if (s->hash_ev)
		event_free(s->hash_ev);
	EVP_MD_CTX_free(s->md);
	if (s->paths)
		for (i = 0; i < s->n; i++)
			free(s->paths[i]);
	free(s->paths);
	free(s->status);
	free(s->reason);
	free(s);
}
