/*
 * app_file.c - file transfer over transport streams (`connect PEER
 * --send FILE...`, `listen --receive DIR`): what the sender
 * (app_file_send.c) and the receiver (app_file_recv.c) share.
 *
 * One stream a file, one file after the other.  The sender hashes the
 * file (SHA-256), opens a stream, sends OFFER {name, size, sha256}; the
 * receiver answers ACCEPT {offset} or REFUSE {reason}; DATA frames carry
 * the file from offset to its end; the receiver checks the hash over the
 * whole file and answers RESULT OK or BAD; the sender closes the stream.
 * Files are hashed a step (HASH_STEP) per turn of the event loop, so
 * that a transport on the same loop keeps answering during big files.
 *
 * Interface: agent/app.h, agent/app_file.h.  Errors: mp_err values.
 */
#include <errno.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "app.h"
#include "app_file.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"

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
int
agent_file_sha256_range(int fd, uint64_t from, uint64_t to, EVP_MD_CTX *ctx)
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

uint64_t
agent_file_step_end(uint64_t done, uint64_t total)
{
	return total - done > HASH_STEP ? done + HASH_STEP : total;
}
