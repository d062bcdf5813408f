/*
 * app_file_prehash.c - hash the files of `connect --send` while the
 * connection is being set up.
 *
 * Why: the OFFER carries the file's SHA-256 (the receiver needs it to
 * resume), so a sender that starts hashing when the transport is ready
 * keeps the peer waiting for as long as SHA-256 takes over the whole file
 * (about a third of a second per 256 MB here).  Meanwhile the mail round
 * trips of the rendezvous take a second or more with the event loop
 * mostly idle: hashing then costs the user nothing.
 *
 * Interface: agent_file_prehash_new() starts hashing the files one after
 * the other, a step (HASH_STEP) per turn of the loop; the sender asks
 * agent_file_prehash_lookup() for a file it is about to offer, with the
 * fstat of its own descriptor: a hash counts only if the file is still
 * the very one (device, inode, size, modification time) and it was
 * hashed completely (DONE); BUSY means it is being hashed right now (ask
 * again on a later turn of the loop); otherwise (NONE) the sender hashes
 * it itself, as before.
 * Errors: a file that cannot be opened or read is simply not prehashed
 * (the sender will say what is wrong with it); agent_file_prehash_new()
 * returns NULL only without memory.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "app.h"
#include "app_file.h"
#include "mailpunch/error.h"

typedef struct prehashed {
	const char *path;          /* borrowed from argv */
	struct stat st;
	int done;                  /* sha256 is the hash of all of it */
	uint8_t sha256[MP_APP_SHA256_LEN];
} prehashed;

struct agent_file_prehash {
	prehashed *files;
	size_t n, cur;
	int fd;
	uint64_t hashed;
	EVP_MD_CTX *md;
	struct event *step_ev;
};

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Opens the next hashable file; 0 when there is none left. */
static int
open_next(agent_file_prehash *p)
{
	for (; p->cur < p->n; p->cur++) {
		prehashed *f = &p->files[p->cur];

		p->fd = open(f->path, O_RDONLY | O_CLOEXEC);
		if (p->fd < 0)
			continue;
		if (fstat(p->fd, &f->st) == 0 && S_ISREG(f->st.st_mode) &&
		    EVP_DigestInit_ex(p->md, EVP_sha256(), NULL)) {
			p->hashed = 0;
			return 1;
		}
		close(p->fd);
		p->fd = -1;
	}
	return 0;
}

static void
step(evutil_socket_t fd, short what, void *arg)
{
	agent_file_prehash *p = arg;
	prehashed *f = &p->files[p->cur];
	uint64_t size = (uint64_t)f->st.st_size;
	uint64_t to = agent_file_step_end(p->hashed, size);
	unsigned int len;

	(void)fd;
	(void)what;
	if (agent_file_sha256_range(p->fd, p->hashed, to, p->md) != MP_OK) {
		p->hashed = size + 1;          /* unreadable: leave it to the sender */
	} else if ((p->hashed = to) < size) {
		event_active(p->step_ev, 0, 0);
		return;
	} else {
		f->done = EVP_DigestFinal_ex(p->md, f->sha256, &len) == 1;
	}
	close(p->fd);
	p->fd = -1;
	p->cur++;
	if (open_next(p))
		event_active(p->step_ev, 0, 0);
}

agent_file_prehash *
agent_file_prehash_new(struct event_base *base, char *const *paths, size_t n)
{
	agent_file_prehash *p = calloc(1, sizeof *p);
	size_t i;

	if (!p)
		return NULL;
	p->fd = -1;
	p->n = n;
	if (!(p->files = calloc(n ? n : 1, sizeof *p->files)) || !(p->md = EVP_MD_CTX_new()) ||
	    !(p->step_ev = event_new(base, -1, 0, step, p))) {
		agent_file_prehash_free(p);
		return NULL;
	}
	for (i = 0; i < n; i++)
		p->files[i].path = paths[i];
	if (open_next(p))
		event_active(p->step_ev, 0, 0);
	return p;
}

int
agent_file_prehash_lookup(const agent_file_prehash *p, const char *path, const struct stat *st,
                          uint8_t sha256[MP_APP_SHA256_LEN])
{
	size_t i;

	for (i = 0; p && i < p->n; i++) {
		const prehashed *f = &p->files[i];

		if (strcmp(f->path, path) != 0 || !same_file(&f->st, st))
			continue;
		if (f->done) {
			memcpy(sha256, f->sha256, MP_APP_SHA256_LEN);
			return AGENT_PREHASH_DONE;
		}
		if (i == p->cur && p->fd >= 0)
			return AGENT_PREHASH_BUSY;
	}
	return AGENT_PREHASH_NONE;
}

void
agent_file_prehash_free(agent_file_prehash *p)
{
	if (!p)
		return;
	if (p->step_ev)
		event_free(p->step_ev);
	if (p->fd >= 0)
		close(p->fd);
	EVP_MD_CTX_free(p->md);
	free(p->files);
	free(p);
}
