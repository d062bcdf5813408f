/*
 * app_file_recv.c - the receiving side of file transfer (`listen
 * --receive DIR [--overwrite]`; protocol: docs/PROTOCOL.md, "FILE").
 *
 * The receiver writes into DIR/.NAME.mailpunch-part next to a sidecar
 * DIR/.NAME.mailpunch-meta saying what the part file should become (size
 * and hash).  A broken stream leaves both: the next OFFER of the same
 * name, size and hash resumes at the part file's length (after hashing
 * what is there).  The finished file is fsync'd and renamed into place
 * (atomically; with RENAME_NOREPLACE unless --overwrite), then the
 * directory is fsync'd.  Every file is opened relative to the
 * directory's descriptor with O_NOFOLLOW, and names are checked
 * (mp_app_name_check), so a peer can neither leave DIR nor write through
 * a symbolic link.
 *
 * Interface: agent/app.h (agent_file_receiver_*).  Errors: the
 * constructor returns NULL with a message; each stream's file ends with
 * the on_file callback and an agent_file_status; details go to mp_log.
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
	uint64_t to = agent_file_step_end(rs->rehashed, rs->got);

	(void)fd;
	(void)what;
	if (agent_file_sha256_range(rs->part_fd, rs->rehashed, to, rs->md) != MP_OK) {
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
