/*
 * app_file.c - file transfer over transport streams (`connect PEER
 * --send FILE...`, `listen --receive DIR`).
 *
 * One stream a file, one file after the other.  The sender hashes the
 * file (SHA-256), opens a stream, sends OFFER {name, size, sha256}; the
 * receiver answers ACCEPT {offset} or REFUSE {reason}; DATA frames carry
 * the file from offset to its end; the receiver checks the hash over the
 * whole file and answers RESULT OK or BAD; the sender closes the stream.
 *
 * The receiver writes into DIR/.NAME.mailpunch-part next to a sidecar
 * DIR/.NAME.mailpunch-meta saying what the part file should become (size
 * and hash).  A broken stream leaves both: the next OFFER of the same
 * name, size and hash resumes at the part file's length.  The finished
 * file is fsync'd and renamed into place (atomically; with
 * RENAME_NOREPLACE unless --overwrite), then the directory is fsync'd.
 * Every file is opened relative to the directory's descriptor with
 * O_NOFOLLOW, and names are checked (mp_app_name_check), so a peer can
 * neither leave DIR nor write through a symbolic link.
 *
 * Interface: agent/app.h.  Errors: the constructors return NULL with a
 * message; a file's fate is its agent_file_status (sender) or the
 * on_file callback (receiver); details go to mp_log.
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
#include "mailpunch/error.h"
#include "mailpunch/log.h"

#define CHUNK 65536                    /* DATA payload the sender writes */
#define HASH_STEP (16 * 1024 * 1024)   /* hashed per turn of the loop */
#define SMALL_FRAME 512                /* every frame but DATA fits */
#define PART_SUFFIX ".mailpunch-part"
#define META_SUFFIX ".mailpunch-meta"

const char *
agent_file_status_name(int status)
{
	switch (status) {
	case AGENT_FILE_PENDING: return "pending";
	case AGENT_FILE_OK: return "ok";
	case AGENT_FILE_REFUSED: return "refused";
	case AGENT_FILE_BAD: return "BAD";
	case AGENT_FILE_BROKEN: return "broken";
	case AGENT_FILE_LOCAL: return "local error";
	}
	return "?";
}

/* Feeds bytes [from, to) of fd to the hash.  Large files are hashed a
 * step (HASH_STEP) per turn of the event loop, so that a transport on
 * the same loop keeps answering while gigabytes go through SHA-256. */
static int
sha256_range(int fd, uint64_t from, uint64_t to, EVP_MD_CTX *ctx)
{
	static uint8_t buf[CHUNK];

	while (from < to) {
		size_t want = to - from < sizeof buf ? (size_t)(to - from) : sizeof buf;
		ssize_t got = pread(fd, buf, want, (off_t)from);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return MP_ERR_IO;
		if (!EVP_DigestUpdate(ctx, buf, (size_t)got))
			return MP_ERR_CRYPTO;
		from += (uint64_t)got;
	}
	return MP_OK;
}

static uint64_t
step_end(uint64_t done, uint64_t total)
{
	return total - done > HASH_STEP ? done + HASH_STEP : total;
}

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
	s->offer.size = (uint64_t)st.st_size;
	if (!EVP_DigestInit_ex(s->md, EVP_sha256(), NULL))
		return MP_ERR_CRYPTO;
	s->hashed = 0;
	s->pos = 0;
	s->phase = S_HASHING;
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
	uint64_t to = step_end(s->hashed, s->offer.size);
	unsigned int n;

	(void)fd;
	(void)what;
	if (sha256_range(s->fd, s->hashed, to, s->md) != MP_OK) {
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

/* ============================================================== receiver */

enum { R_WAIT_OFFER, R_REHASH, R_RECEIVING, R_DONE };

typedef struct recv_stream recv_stream;

struct agent_file_receiver {
	struct event_base *base;
	int dirfd, overwrite, progress_mode;
	agent_file_event_fn *on_file;
	void *arg;
	recv_stream *streams;
};

struct recv_stream {
	agent_file_receiver *r;
	recv_stream *next, **prevp;
	struct bufferevent *bev;
	int phase, part_fd;
	mp_app_offer offer;
	char part[MP_APP_NAME_MAX + 32], meta[MP_APP_NAME_MAX + 32];
	uint64_t got, rehashed;
	EVP_MD_CTX *md;
	struct event *rehash_ev;      /* resuming: hashing what is already here */
	agent_progress progress;
};

static void
stream_free(recv_stream *rs)
{
	if (rs->next)
		rs->next->prevp = rs->prevp;
	*rs->prevp = rs->next;
	if (rs->bev)
		agent_app_stream_close(rs->bev);
	if (rs->part_fd >= 0)
		close(rs->part_fd);
	if (rs->rehash_ev)
		event_free(rs->rehash_ev);
	EVP_MD_CTX_free(rs->md);
	free(rs);
}

/* The stream's file is done with: tell the owner, then go. */
static void
stream_end(recv_stream *rs, int status)
{
	agent_file_receiver *r = rs->r;
	char name[MP_APP_NAME_MAX + 1];

	if (rs->phase == R_RECEIVING)
		agent_progress_end(&rs->progress, agent_file_status_name(status));
	snprintf(name, sizeof name, "%s", rs->offer.name);
	stream_free(rs);
	if (r->on_file)
		r->on_file(r->arg, name, status);
}

/* Queues a small frame: a RESULT or ACCEPT of one byte or word, or a REFUSE. */
static int
send_u(recv_stream *rs, uint8_t type, uint64_t v)
{
	uint8_t frame[SMALL_FRAME];
	size_t len;
	int rc = type == MP_FR_ACCEPT ? mp_app_u64_encode(type, v, frame, sizeof frame, &len) :
	                                mp_app_u8_encode(type, (uint8_t)v, frame, sizeof frame, &len);

	if (rc != MP_OK)
		return rc;
	return bufferevent_write(rs->bev, frame, len) ? MP_ERR_NOMEM : MP_OK;
}

static void
refuse(recv_stream *rs, uint8_t reason, const char *text)
{
	uint8_t frame[SMALL_FRAME];
	size_t len;

	mp_log(MP_LOG_NOTICE, "receive %s: refused: %s", rs->offer.name[0] ? rs->offer.name : "?", text);
	if (mp_app_refuse_encode(reason, text, frame, sizeof frame, &len) == MP_OK)
		bufferevent_write(rs->bev, frame, len);
	/* the REFUSE goes out with the end of the stream */
	stream_end(rs, AGENT_FILE_REFUSED);
}

static int
name_busy(const recv_stream *rs)
{
	const recv_stream *o;

	for (o = rs->r->streams; o; o = o->next)
		if (o != rs && (o->phase == R_RECEIVING || o->phase == R_REHASH) &&
		    !strcmp(o->offer.name, rs->offer.name))
			return 1;
	return 0;
}

/* Reads the sidecar: 1 when it promises the file now offered. */
static int
sidecar_matches(recv_stream *rs)
{
	char text[MP_APP_SIDECAR_MAX + 1];
	uint8_t sha[MP_APP_SHA256_LEN];
	uint64_t size;
	ssize_t n;
	int fd = openat(rs->r->dirfd, rs->meta, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, text, sizeof text);
	close(fd);
	if (n <= 0 || n > MP_APP_SIDECAR_MAX)
		return 0;
	if (mp_app_sidecar_parse(text, (size_t)n, &size, sha) != MP_OK)
		return 0;
	return size == rs->offer.size && !memcmp(sha, rs->offer.sha256, sizeof sha);
}

static int
write_sidecar(recv_stream *rs)
{
	char text[MP_APP_SIDECAR_MAX + 1];
	size_t len;
	int fd, rc;

	if (mp_app_sidecar_format(rs->offer.size, rs->offer.sha256, text, sizeof text) != MP_OK)
		return MP_ERR_INVAL;
	len = strlen(text);
	fd = openat(rs->r->dirfd, rs->meta, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return MP_ERR_IO;
	rc = write(fd, text, len) == (ssize_t)len ? MP_OK : MP_ERR_IO;
	close(fd);
	return rc;
}

/* Opens the part file, resuming when the sidecar says it is this file;
 * sets rs->got to the offset to ask for. */
static int
open_part(recv_stream *rs)
{
	agent_file_receiver *r = rs->r;
	struct stat st;

	snprintf(rs->part, sizeof rs->part, ".%s" PART_SUFFIX, rs->offer.name);
	snprintf(rs->meta, sizeof rs->meta, ".%s" META_SUFFIX, rs->offer.name);
	if (!(rs->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(rs->md, EVP_sha256(), NULL))
		return MP_ERR_CRYPTO;
	rs->got = 0;
	if (sidecar_matches(rs)) {
		rs->part_fd = openat(r->dirfd, rs->part, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (rs->part_fd >= 0 && fstat(rs->part_fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    (uint64_t)st.st_size <= rs->offer.size) {
			/* the hash covers the whole file: what is here gets read
			 * back before the ACCEPT (rehash_step) */
			rs->got = (uint64_t)st.st_size;
			return MP_OK;
		}
		if (rs->part_fd >= 0)
			close(rs->part_fd);
		rs->part_fd = -1;
	}
	/* a fresh start: the sidecar first, so a crash never leaves a part
	 * file that claims to be something it is not */
	unlinkat(r->dirfd, rs->part, 0);
	if (write_sidecar(rs) != MP_OK)
		return MP_ERR_IO;
	rs->part_fd = openat(r->dirfd, rs->part,
	                     O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	return rs->part_fd >= 0 ? MP_OK : MP_ERR_IO;
}

static void
drop_part(recv_stream *rs)
{
	unlinkat(rs->r->dirfd, rs->part, 0);
	unlinkat(rs->r->dirfd, rs->meta, 0);
}

static void
finish_file(recv_stream *rs)
{
	uint8_t sha[MP_APP_SHA256_LEN];
	unsigned int n;
	int ok, rc;

	ok = EVP_DigestFinal_ex(rs->md, sha, &n) && !memcmp(sha, rs->offer.sha256, sizeof sha);
	if (ok && fsync(rs->part_fd) != 0)
		ok = 0;
	if (ok) {
		rc = renameat2(rs->r->dirfd, rs->part, rs->r->dirfd, rs->offer.name,
		               rs->r->overwrite ? 0 : RENAME_NOREPLACE);
		if (rc != 0) {
			mp_log(MP_LOG_ERR, "receive %s: cannot put the file in place: %s", rs->offer.name,
			       strerror(errno));
			ok = 0;
		} else {
			fsync(rs->r->dirfd);
			unlinkat(rs->r->dirfd, rs->meta, 0);
		}
	} else {
		mp_log(MP_LOG_ERR, "receive %s: SHA-256 mismatch, file dropped", rs->offer.name);
	}
	if (!ok)
		drop_part(rs);
	close(rs->part_fd);
	rs->part_fd = -1;
	send_u(rs, MP_FR_RESULT, ok ? MP_RESULT_OK : MP_RESULT_BAD);
	agent_progress_end(&rs->progress, ok ? "ok" : "BAD");
	rs->phase = R_DONE;
	/* the sender closes once it has read the RESULT; tell the owner now */
	if (rs->r->on_file)
		rs->r->on_file(rs->r->arg, rs->offer.name, ok ? AGENT_FILE_OK : AGENT_FILE_BAD);
}

/* ACCEPT from rs->got on; 1 when the stream waits for DATA. */
static int
accept_now(recv_stream *rs)
{
	if (send_u(rs, MP_FR_ACCEPT, rs->got) != MP_OK) {
		stream_end(rs, AGENT_FILE_BROKEN);
		return 0;
	}
	if (rs->got)
		mp_log(MP_LOG_INFO, "receive %s: resuming at %" PRIu64, rs->offer.name, rs->got);
	rs->phase = R_RECEIVING;
	agent_progress_begin(&rs->progress, rs->r->progress_mode, "receive", rs->offer.name,
	                     rs->offer.size, rs->got);
	if (rs->got == rs->offer.size) {
		finish_file(rs);
		return 0;
	}
	return 1;
}

static void
rehash_step(evutil_socket_t fd, short what, void *arg)
{
	recv_stream *rs = arg;
	uint64_t to = step_end(rs->rehashed, rs->got);

	(void)fd;
	(void)what;
	if (sha256_range(rs->part_fd, rs->rehashed, to, rs->md) != MP_OK) {
		refuse(rs, MP_REFUSE_IO, "cannot read the partial file");
		return;
	}
	rs->rehashed = to;
	if (rs->rehashed < rs->got)
		event_active(rs->rehash_ev, 0, 0);
	else
		accept_now(rs);
}

/* 1 when the stream lives on (waiting for DATA, or rehashing). */
static int
on_offer(recv_stream *rs, const uint8_t *p, size_t len)
{
	agent_file_receiver *r = rs->r;
	struct statvfs vfs;
	struct stat st;
	int rc;

	rc = mp_app_offer_decode(p, len, &rs->offer);
	if (rc == MP_ERR_SYNTAX) {
		rs->offer.name[0] = '\0';
		refuse(rs, MP_REFUSE_BADNAME, "bad file name");
		return 0;
	}
	if (rc != MP_OK) {
		mp_log(MP_LOG_ERR, "receive: malformed OFFER");
		stream_end(rs, AGENT_FILE_BROKEN);
		return 0;
	}
	if (name_busy(rs)) {
		refuse(rs, MP_REFUSE_BUSY, "being received on another stream");
		return 0;
	}
	if (!r->overwrite && fstatat(r->dirfd, rs->offer.name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		refuse(rs, MP_REFUSE_EXISTS, "file exists");
		return 0;
	}
	if (open_part(rs) != MP_OK) {
		refuse(rs, MP_REFUSE_IO, "cannot create the file");
		return 0;
	}
	if (fstatvfs(rs->part_fd, &vfs) == 0 &&
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < rs->offer.size - rs->got) {
		drop_part(rs);
		refuse(rs, MP_REFUSE_NOSPACE, "not enough space");
		return 0;
	}
	if (rs->got) {
		rs->phase = R_REHASH;
		rs->rehashed = 0;
		if (!(rs->rehash_ev = event_new(r->base, -1, 0, rehash_step, rs))) {
			stream_end(rs, AGENT_FILE_BROKEN);
			return 0;
		}
		event_active(rs->rehash_ev, 0, 0);
		return 1;
	}
	return accept_now(rs);
}

/* One DATA frame: into the part file and the hash. */
static int
on_data(recv_stream *rs, struct evbuffer *in, uint32_t len)
{
	const uint8_t *p;
	size_t off = 0;

	if ((uint64_t)len > rs->offer.size - rs->got)
		return MP_ERR_TOOBIG;
	evbuffer_drain(in, MP_APP_FRAME_HDR);
	p = evbuffer_pullup(in, len);
	if (!p && len)
		return MP_ERR_NOMEM;
	while (off < len) {
		ssize_t n = pwrite(rs->part_fd, p + off, len - off, (off_t)(rs->got + off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return MP_ERR_IO;
		off += (size_t)n;
	}
	if (!EVP_DigestUpdate(rs->md, p, len))
		return MP_ERR_CRYPTO;
	evbuffer_drain(in, len);
	rs->got += len;
	agent_progress_update(&rs->progress, rs->got);
	return MP_OK;
}

/* Handles every whole frame in the input; 0 when rs is gone. */
static int
recv_process(recv_stream *rs)
{
	struct evbuffer *in = bufferevent_get_input(rs->bev);
	uint8_t buf[SMALL_FRAME], type;
	uint32_t len;
	int rc;

	while ((rc = agent_app_peek_frame(in, &type, &len)) == 1) {
		if (rs->phase == R_WAIT_OFFER && type == MP_FR_OFFER) {
			if (agent_app_take_frame(in, len, buf, sizeof buf) != MP_OK)
				break;
			if (!on_offer(rs, buf, len))
				return 0;   /* rs may be gone */
		} else if (rs->phase == R_RECEIVING && type == MP_FR_DATA) {
			if ((rc = on_data(rs, in, len)) != MP_OK) {
				mp_log(MP_LOG_ERR, "receive %s: %s", rs->offer.name, mp_strerror(rc));
				if (rc == MP_ERR_TOOBIG)
					drop_part(rs);
				stream_end(rs, AGENT_FILE_BROKEN);
				return 0;
			}
			if (rs->got == rs->offer.size) {
				finish_file(rs);
				return 1;
			}
		} else {
			break;
		}
	}
	if (rc == 0)
		return 1;
	if (rs->phase == R_DONE) {
		stream_free(rs);   /* already reported */
		return 0;
	}
	mp_log(MP_LOG_ERR, "receive %s: peer broke the file protocol", rs->offer.name);
	stream_end(rs, AGENT_FILE_BROKEN);
	return 0;
}

static void
recv_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	recv_process(arg);
}


static void
recv_event(struct bufferevent *bev, short what, void *arg)
{
	recv_stream *rs = arg;

	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* what came before the end counts */
	if (!recv_process(rs))
		return;
	if (rs->phase == R_DONE) {
		/* the normal end: the sender read our RESULT and closed */
		stream_free(rs);
		return;
	}
	if (rs->phase == R_RECEIVING) {
		mp_log(MP_LOG_NOTICE, "receive %s: stream ended at %" PRIu64 " of %" PRIu64
		       " bytes; kept for resuming", rs->offer.name, rs->got, rs->offer.size);
		fsync(rs->part_fd);
	}
	stream_end(rs, AGENT_FILE_BROKEN);
}

agent_file_receiver *
agent_file_receiver_new(struct event_base *base, const char *dir, int overwrite, int progress_mode,
                        agent_file_event_fn *on_file, void *arg, char *err, size_t errlen)
{
	agent_file_receiver *r = calloc(1, sizeof *r);

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		free(r);
		return NULL;
	}
	r->base = base;
	r->overwrite = overwrite;
	r->progress_mode = progress_mode;
	r->on_file = on_file;
	r->arg = arg;
	return r;
}

void
agent_file_receiver_take(agent_file_receiver *r, struct bufferevent *bev)
{
	recv_stream *rs = calloc(1, sizeof *rs);

	if (!rs) {
		agent_app_stream_close(bev);
		return;
	}
	rs->r = r;
	rs->bev = bev;
	rs->part_fd = -1;
	rs->next = r->streams;
	if (rs->next)
		rs->next->prevp = &rs->next;
	rs->prevp = &r->streams;
	r->streams = rs;
	bufferevent_setcb(bev, recv_read, NULL, recv_event, rs);
	/* bounded input: a fast sender waits instead of filling our memory */
	bufferevent_setwatermark(bev, EV_READ, 0, AGENT_APP_STREAM_HIGH);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_input(bev)))
		recv_read(bev, rs);
}

void
agent_file_receiver_free(agent_file_receiver *r)
{
	if (!r)
		return;
	while (r->streams)
		stream_free(r->streams);
	close(r->dirfd);
	free(r);
}
