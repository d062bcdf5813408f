/*
 * test_app_file.c - file transfer (agent/app_file.c) end to end over
 * in-process streams (apptestutil.h): a large file arrives with the same
 * SHA-256, also when the connection is cut halfway and the transfer is
 * resumed; several files in one run; an existing file is refused unless
 * overwriting; names that could leave the directory are refused; a
 * symbolic link in the directory is never written through; a file whose
 * data does not match its announced hash is dropped; files hashed while
 * the connection is set up are offered with that hash only while they
 * are unchanged.
 *
 * The big file is MP_APP_TEST_MB megabytes (default 100), generated from
 * a seeded PRNG in a fresh temporary directory.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agent.h"
#include "app_cli.h"
#include "apptestutil.h"
#include "jsoncheck.h"
#include "testutil.h"

static char tmp[256], src_dir[300], dst_dir[300];
static const agent_file_prehash *use_prehash;   /* for transfer(), if set */

static void
remove_tree(const char *dir)
{
	char cmd[1024];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
setup(void)
{
	strcpy(tmp, "/tmp/mp-app-file-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	snprintf(src_dir, sizeof src_dir, "%s/src", tmp);
	snprintf(dst_dir, sizeof dst_dir, "%s/dst", tmp);
	ck_assert_int_eq(mkdir(src_dir, 0755), 0);
	ck_assert_int_eq(mkdir(dst_dir, 0755), 0);
}

static void
teardown(void)
{
	remove_tree(tmp);
}

/* A file of size bytes from a xorshift64 seeded with seed. */
static void
make_file(const char *path, uint64_t size, uint64_t seed)
{
	static uint64_t buf[8192];
	uint64_t x = seed | 1, done = 0;
	FILE *fp = fopen(path, "wb");
	size_t i;

	ck_assert_ptr_nonnull(fp);
	while (done < size) {
		size_t n = size - done < sizeof buf ? (size_t)(size - done) : sizeof buf;
		for (i = 0; i < sizeof buf / sizeof *buf; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		ck_assert_uint_eq(fwrite(buf, 1, n, fp), n);
		done += n;
	}
	ck_assert_int_eq(fclose(fp), 0);
}

static int
sha256_file(const char *path, uint8_t out[32])
{
	static uint8_t buf[65536];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n;
	ssize_t got;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		EVP_MD_CTX_free(ctx);
		return -1;
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((got = read(fd, buf, sizeof buf)) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)got);
	EVP_DigestFinal_ex(ctx, out, &n);
	EVP_MD_CTX_free(ctx);
	close(fd);
	return 0;
}

static void
assert_same(const char *a, const char *b)
{
	uint8_t ha[32], hb[32];

	ck_assert_int_eq(sha256_file(a, ha), 0);
	ck_assert_int_eq(sha256_file(b, hb), 0);
	ck_assert_mem_eq(ha, hb, 32);
}

static int
exists(const char *dir, const char *name)
{
	char path[600];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static off_t
file_size(const char *dir, const char *name)
{
	char path[600];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return lstat(path, &st) == 0 ? st.st_size : -1;
}

/* ------------------------------------------------------------ one run */

typedef struct run {
	struct event_base *base;
	int sender_done, files_ended;
	size_t failed;
	int last_status;
	char last_name[MP_APP_NAME_MAX + 1];
} run;

static void
on_done(void *arg, size_t failed)
{
	run *r = arg;

	r->sender_done = 1;
	r->failed = failed;
}

static void
on_file(void *arg, const char *name, int status)
{
	run *r = arg;

	r->files_ended++;
	r->last_status = status;
	snprintf(r->last_name, sizeof r->last_name, "%s", name);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* Sends paths from src to dst through a fresh link; returns the sender
 * (to be freed by the caller) after both sides are done with every file. */
static agent_file_sender *
transfer(run *r, test_link *tl, char **paths, size_t n, int overwrite, uint64_t cut_after)
{
	agent_app_server_cfg cfg = { .receive_dir = dst_dir, .overwrite = overwrite,
	                             .on_file = on_file };
	struct timeval tv = { 15, 0 };
	struct event *to;
	agent_file_sender *s;
	char err[256];

	memset(r, 0, sizeof *r);
	r->base = event_base_new();
	cfg.arg = r;
	tl_init(tl, r->base, &cfg);
	tl->cut_after = cut_after;
	s = agent_file_sender_new(&tl->io, paths, n, AGENT_PROGRESS_NONE, on_done, r, err, sizeof err);
	ck_assert_ptr_nonnull(s);
	agent_file_sender_use_prehash(s, use_prehash);
	agent_file_sender_start(s);
	to = evtimer_new(r->base, timeout_cb, r->base);
	evtimer_add(to, &tv);
	while (!(r->sender_done && r->files_ended >= (int)n) && !event_base_got_break(r->base))
		event_base_loop(r->base, EVLOOP_ONCE);
	ck_assert_msg(!event_base_got_break(r->base), "transfer timed out");
	/* let the last closes run */
	event_base_loop(r->base, EVLOOP_NONBLOCK);
	event_free(to);
	return s;
}

static void
finish(run *r, test_link *tl, agent_file_sender *s)
{
	int i;

	agent_file_sender_free(s);
	tl_free(tl);
	/* freed bufferevents go on the next turns of the loop */
	for (i = 0; i < 3; i++)
		event_base_loop(r->base, EVLOOP_NONBLOCK);
	event_base_free(r->base);
}

static uint64_t
big_size(void)
{
	const char *mb = getenv("MP_APP_TEST_MB");

	return (uint64_t)(mb && *mb ? atoi(mb) : 100) * 1024 * 1024;
}

START_TEST(big_file_arrives)
{
	char path[400], out[400];
	char *paths[1] = { path };
	uint64_t size = big_size();
	test_link tl;
	run r;
	agent_file_sender *s;

	snprintf(path, sizeof path, "%s/big.bin", src_dir);
	snprintf(out, sizeof out, "%s/big.bin", dst_dir);
	make_file(path, size, 42);
	s = transfer(&r, &tl, paths, 1, 0, 0);
	ck_assert_uint_eq(r.failed, 0);
	ck_assert_int_eq(agent_file_sender_status(s, 0, NULL), AGENT_FILE_OK);
	ck_assert_int_eq(r.last_status, AGENT_FILE_OK);
	ck_assert_int_eq(file_size(dst_dir, "big.bin"), (off_t)size);
	assert_same(path, out);
	ck_assert(!exists(dst_dir, ".big.bin.mailpunch-part"));
	ck_assert(!exists(dst_dir, ".big.bin.mailpunch-meta"));
	/* everything crossed once: data plus framing, no more */
	ck_assert(tl.relayed >= size && tl.relayed < size + size / 100 + 1024);
	finish(&r, &tl, s);
}
END_TEST

START_TEST(cut_and_resume)
{
	char path[400], out[400];
	char *paths[1] = { path };
	uint64_t size = big_size(), first;
	off_t part;
	test_link tl;
	run r;
	agent_file_sender *s;

	snprintf(path, sizeof path, "%s/resume.bin", src_dir);
	snprintf(out, sizeof out, "%s/resume.bin", dst_dir);
	make_file(path, size, 7);
	s = transfer(&r, &tl, paths, 1, 0, size / 2);
	ck_assert_int_eq(agent_file_sender_status(s, 0, NULL), AGENT_FILE_BROKEN);
	ck_assert_int_eq(r.last_status, AGENT_FILE_BROKEN);
	ck_assert_uint_eq(r.failed, 1);
	first = tl.relayed;
	finish(&r, &tl, s);
	ck_assert(!exists(dst_dir, "resume.bin"));
	part = file_size(dst_dir, ".resume.bin.mailpunch-part");
	ck_assert_msg(part > 0 && (uint64_t)part < size, "part file size %lld", (long long)part);
	ck_assert(exists(dst_dir, ".resume.bin.mailpunch-meta"));

	/* the second run asks only for the rest */
	s = transfer(&r, &tl, paths, 1, 0, 0);
	ck_assert_int_eq(agent_file_sender_status(s, 0, NULL), AGENT_FILE_OK);
	ck_assert_uint_eq(r.failed, 0);
	ck_assert_msg(tl.relayed < size - (uint64_t)part + size / 100 + 1024,
	              "resumed run carried %llu bytes", (unsigned long long)tl.relayed);
	ck_assert(first + tl.relayed >= size);
	assert_same(path, out);
	ck_assert(!exists(dst_dir, ".resume.bin.mailpunch-part"));
	ck_assert(!exists(dst_dir, ".resume.bin.mailpunch-meta"));
	finish(&r, &tl, s);
}
END_TEST

START_TEST(changed_file_restarts)
{
	/* a part file of another version of the file is not resumed */
	char path[400], out[400];
	char *paths[1] = { path };
	test_link tl;
	run r;
	agent_file_sender *s;

	snprintf(path, sizeof path, "%s/doc.bin", src_dir);
	snprintf(out, sizeof out, "%s/doc.bin", dst_dir);
	make_file(path, 4 << 20, 1);
	s = transfer(&r, &tl, paths, 1, 0, 2 << 20);
	ck_assert_int_eq(agent_file_sender_status(s, 0, NULL), AGENT_FILE_BROKEN);
	finish(&r, &tl, s);
	make_file(path, 4 << 20, 2);
	s = transfer(&r, &tl, paths, 1, 0, 0);
	ck_assert_int_eq(agent_file_sender_status(s, 0, NULL), AGENT_FILE_OK);
	ck_assert(tl.relayed >= 4 << 20);
	assert_same(path, out);
	finish(&r, &tl, s);
}
END_TEST

START_TEST(several_files_and_empty)
{
	char p[3][400], o[400];
	char *paths[3] = { p[0], p[1], p[2] };
	test_link tl;
	run r;
	agent_file_sender *s;
	int i;

	snprintf(p[0], sizeof p[0], "%s/one", src_dir);
	snprintf(p[1], sizeof p[1], "%s/empty", src_dir);
	snprintf(p[2], sizeof p[2], "%s/three.dat", src_dir);
	make_file(p[0], 1000, 11);
	make_file(p[1], 0, 12);
	make_file(p[2], 300000, 13);
	s = transfer(&r, &tl, paths, 3, 0, 0);
	ck_assert_uint_eq(r.failed, 0);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(agent_file_sender_status(s, (size_t)i, NULL), AGENT_FILE_OK);
		snprintf(o, sizeof o, "%s/%s", dst_dir, strrchr(p[i], '/') + 1);
		assert_same(p[i], o);
	}
	ck_assert_uint_eq(tl.nopened, 3);
	finish(&r, &tl, s);
}
END_TEST

START_TEST(existing_refused_unless_overwrite)
{
	char path[400], out[400], content[64];
	char *paths[1] = { path };
	int reason = 0;
	test_link tl;
	run r;
	agent_file_sender *s;
	FILE *fp;

	snprintf(path, sizeof path, "%s/same.txt", src_dir);
	snprintf(out, sizeof out, "%s/same.txt", dst_dir);
	make_file(path, 5000, 3);
	fp = fopen(out, "w");
	fputs("keep me\n", fp);
	fclose(fp);
	s = transfer(&r, &tl, paths, 1, 0, 0);
	ck_assert_int_eq(agent_file_sender_status(s, 0, &reason), AGENT_FILE_REFUSED);
	ck_assert_int_eq(reason, MP_REFUSE_EXISTS);
	ck_assert_int_eq(r.last_status, AGENT_FILE_REFUSED);
	finish(&r, &tl, s);
	fp = fopen(out, "r");
	ck_assert_ptr_nonnull(fgets(content, sizeof content, fp));
	fclose(fp);
	ck_assert_str_eq(content, "keep me\n");
	ck_assert(!exists(dst_dir, ".same.txt.mailpunch-part"));

	s = transfer(&r, &tl, paths, 1, 1, 0);
	ck_assert_int_eq(agent_file_sender_status(s, 0, NULL), AGENT_FILE_OK);
	assert_same(path, out);
	finish(&r, &tl, s);
}
END_TEST

START_TEST(symlink_not_followed)
{
	char path[400], link[400], victim[400], content[64];
	char *paths[1] = { path };
	test_link tl;
	run r;
	agent_file_sender *s;
	FILE *fp;

	snprintf(path, sizeof path, "%s/target", src_dir);
	snprintf(victim, sizeof victim, "%s/victim", tmp);
	make_file(path, 1234, 5);
	fp = fopen(victim, "w");
	fputs("untouched\n", fp);
	fclose(fp);
	/* the name itself and the part file both point outside */
	snprintf(link, sizeof link, "%s/target", dst_dir);
	ck_assert_int_eq(symlink(victim, link), 0);
	snprintf(link, sizeof link, "%s/.target.mailpunch-part", dst_dir);
	ck_assert_int_eq(symlink(victim, link), 0);
	s = transfer(&r, &tl, paths, 1, 0, 0);
	ck_assert_int_eq(agent_file_sender_status(s, 0, NULL), AGENT_FILE_REFUSED);
	finish(&r, &tl, s);
	s = transfer(&r, &tl, paths, 1, 1, 0);
	ck_assert_int_eq(agent_file_sender_status(s, 0, NULL), AGENT_FILE_OK);
	finish(&r, &tl, s);
	fp = fopen(victim, "r");
	ck_assert_ptr_nonnull(fgets(content, sizeof content, fp));
	fclose(fp);
	ck_assert_str_eq(content, "untouched\n");
	snprintf(link, sizeof link, "%s/target", dst_dir);
	assert_same(path, link);
}
END_TEST

/* ------------------------------------------ a raw peer, bypassing checks */

typedef struct raw {
	struct event_base *base;
	struct bufferevent *end;
	uint8_t reply_type, reply[600];
	uint32_t reply_len;
	int got, ended;
} raw;

static void
raw_read(struct bufferevent *bev, void *arg)
{
	raw *w = arg;
	uint8_t type;
	uint32_t len;

	while (agent_app_peek_frame(bufferevent_get_input(bev), &type, &len) == 1) {
		ck_assert_int_eq(agent_app_take_frame(bufferevent_get_input(bev), len, w->reply,
		                                      sizeof w->reply), MP_OK);
		w->reply_type = type;
		w->reply_len = len;
		w->got++;
	}
}

static void
raw_event(struct bufferevent *bev, short what, void *arg)
{
	raw *w = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		w->ended = 1;
}

/* Offers a file under a name written on the wire as is. */
static void
raw_offer(const char *name, uint64_t size, const uint8_t sha[32], const void *data, size_t dlen,
          uint8_t *reply_type, uint8_t *first_byte, int *got)
{
	agent_app_server_cfg cfg = { .receive_dir = dst_dir };
	uint8_t frame[600], z[32] = { 0 };
	size_t n = strlen(name), len = 0;
	test_link tl;
	raw w;
	int i;

	memset(&w, 0, sizeof w);
	w.base = event_base_new();
	tl_init(&tl, w.base, &cfg);
	w.end = tl.io.open_stream(tl.io.ctx);
	bufferevent_setcb(w.end, raw_read, NULL, raw_event, &w);
	bufferevent_enable(w.end, EV_READ | EV_WRITE);
	agent_app_write_header(w.end, MP_APP_FILE);
	frame[len++] = (uint8_t)n;
	memcpy(frame + len, name, n);
	len += n;
	for (i = 7; i >= 0; i--)
		frame[len++] = (uint8_t)(size >> (8 * i));
	memcpy(frame + len, sha ? sha : z, 32);
	len += 32;
	agent_app_write_frame(w.end, MP_FR_OFFER, frame, len);
	if (dlen)
		agent_app_write_frame(w.end, MP_FR_DATA, data, dlen);
	for (i = 0; i < 200 && !w.ended && w.got < (dlen ? 2 : 1); i++)
		event_base_loop(w.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	*reply_type = w.reply_type;
	*first_byte = w.reply[0];
	*got = w.got;
	bufferevent_free(w.end);
	/* freed bufferevents go on the next turns of the loop */
	for (i = 0; i < 3; i++)
		event_base_loop(w.base, EVLOOP_NONBLOCK);
	tl_free(&tl);
	for (i = 0; i < 3; i++)
		event_base_loop(w.base, EVLOOP_NONBLOCK);
	event_base_free(w.base);
}

/* Runs base until every listed file's prehash is DONE or NONE. */
static void
prehash_settle(struct event_base *base, const agent_file_prehash *p, char **paths, size_t n)
{
	uint8_t sha[32];
	struct stat st;
	size_t i, busy;
	int turns = 0;

	do {
		event_base_loop(base, EVLOOP_NONBLOCK);
		for (i = busy = 0; i < n; i++)
			busy += stat(paths[i], &st) == 0 &&
			        agent_file_prehash_lookup(p, paths[i], &st, sha) == AGENT_PREHASH_BUSY;
	} while (busy && ++turns < 10000);
	ck_assert_uint_eq(busy, 0);
}

START_TEST(prehash_only_for_the_same_file)
{
	char a[400], b[400], gone[400];
	char *paths[3] = { a, b, gone };
	uint8_t want[32], got[32];
	struct event_base *base = event_base_new();
	agent_file_prehash *p;
	struct stat st;
	FILE *fp;

	snprintf(a, sizeof a, "%s/a.bin", src_dir);
	snprintf(b, sizeof b, "%s/b.bin", src_dir);
	snprintf(gone, sizeof gone, "%s/missing.bin", src_dir);
	make_file(a, 40 * 1024 * 1024 + 5, 7);     /* several hashing steps */
	make_file(b, 1000, 8);
	p = agent_file_prehash_new(base, paths, 3);
	ck_assert_ptr_nonnull(p);
	prehash_settle(base, p, paths, 2);
	/* the same file: its whole-file hash */
	ck_assert_int_eq(stat(a, &st), 0);
	ck_assert_int_eq(agent_file_prehash_lookup(p, a, &st, got), AGENT_PREHASH_DONE);
	ck_assert_int_eq(sha256_file(a, want), 0);
	ck_assert_mem_eq(got, want, 32);
	/* changed since (size, time): not to be trusted */
	fp = fopen(b, "ab");
	ck_assert_ptr_nonnull(fp);
	fputc('x', fp);
	fclose(fp);
	ck_assert_int_eq(stat(b, &st), 0);
	ck_assert_int_eq(agent_file_prehash_lookup(p, b, &st, got), AGENT_PREHASH_NONE);
	/* a path that could not be hashed, and one never listed */
	ck_assert_int_eq(agent_file_prehash_lookup(p, gone, &st, got), AGENT_PREHASH_NONE);
	ck_assert_int_eq(agent_file_prehash_lookup(p, "/elsewhere", &st, got), AGENT_PREHASH_NONE);
	agent_file_prehash_free(p);
	event_base_free(base);
}
END_TEST

/* The sender offers the early hash without hashing again: content
 * changed behind an unchanged stat (same size, time put back) goes out
 * with the early hash, and the receiver's check drops it, as rsync's
 * quick check would need its own; a normal run arrives intact. */
START_TEST(sender_takes_the_prehash)
{
	char path[400], out[400];
	char *paths[1] = { path };
	struct timespec times[2];
	struct event_base *base = event_base_new();
	agent_file_prehash *p;
	agent_file_sender *s;
	struct stat st;
	test_link tl;
	run r;
	int fd;

	snprintf(path, sizeof path, "%s/early.bin", src_dir);
	snprintf(out, sizeof out, "%s/early.bin", dst_dir);
	make_file(path, 3 * 1024 * 1024, 9);
	p = agent_file_prehash_new(base, paths, 1);
	ck_assert_ptr_nonnull(p);
	prehash_settle(base, p, paths, 1);
	use_prehash = p;
	s = transfer(&r, &tl, paths, 1, 0, 0);
	ck_assert_int_eq(agent_file_sender_status(s, 0, NULL), AGENT_FILE_OK);
	assert_same(path, out);
	finish(&r, &tl, s);
	ck_assert_int_eq(unlink(out), 0);

	ck_assert_int_eq(stat(path, &st), 0);
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "changed", 7, 1000), 7);
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	ck_assert_int_eq(futimens(fd, times), 0);
	close(fd);
	s = transfer(&r, &tl, paths, 1, 0, 0);
	ck_assert_int_ne(agent_file_sender_status(s, 0, NULL), AGENT_FILE_OK);
	ck_assert(!exists(dst_dir, "early.bin"));
	finish(&r, &tl, s);
	use_prehash = NULL;
	agent_file_prehash_free(p);
	event_base_free(base);
}
END_TEST

START_TEST(bad_names_refused)
{
	static const char *bad[] = { "../escape", "..", ".", "a/b", "/etc/passwd", ".hidden",
	                             ".x.mailpunch-part", "" };
	uint8_t type, first;
	size_t i;
	int got;

	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		raw_offer(bad[i], 10, NULL, NULL, 0, &type, &first, &got);
		ck_assert_msg(got == 1 && type == MP_FR_REFUSE && first == MP_REFUSE_BADNAME,
		              "name \"%s\": got %d type %u", bad[i], got, type);
	}
	/* nothing was created anywhere */
	{
		DIR *d = opendir(dst_dir);
		struct dirent *e;
		int n = 0;
		while ((e = readdir(d)))
			n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
		closedir(d);
		ck_assert_int_eq(n, 0);
	}
	ck_assert(!exists(tmp, "escape"));
	/* a fine name passes */
	raw_offer("fine", 10, NULL, NULL, 0, &type, &first, &got);
	ck_assert_int_eq(type, MP_FR_ACCEPT);
}
END_TEST

START_TEST(wrong_hash_dropped)
{
	uint8_t type, first, sha[32];
	int got;

	memset(sha, 0xab, sizeof sha);
	raw_offer("liar", 5, sha, "hello", 5, &type, &first, &got);
	ck_assert_int_eq(got, 2);
	ck_assert_int_eq(type, MP_FR_RESULT);
	ck_assert_int_eq(first, MP_RESULT_BAD);
	ck_assert(!exists(dst_dir, "liar"));
	ck_assert(!exists(dst_dir, ".liar.mailpunch-part"));
	ck_assert(!exists(dst_dir, ".liar.mailpunch-meta"));
}
END_TEST

START_TEST(too_much_data_refused)
{
	uint8_t type, first;
	int got;

	/* 5 bytes announced, 6 sent: the stream is dropped, no file */
	raw_offer("over", 5, NULL, "hello!", 6, &type, &first, &got);
	ck_assert_int_eq(type, MP_FR_ACCEPT);
	ck_assert(!exists(dst_dir, "over"));
	ck_assert(!exists(dst_dir, ".over.mailpunch-part"));
}
END_TEST

/* ------------------------------------- the command line's session */

static void
apps_finished(void *arg, int code)
{
	int *out = arg;

	*out = code;
}

START_TEST(cli_options_and_session)
{
	agent_app_opts o = { 0 };
	agent_app_server_cfg cfg = { .receive_dir = dst_dir };
	char err[256], p1[400], p2[400], out[400];
	struct event_base *base;
	agent_apps *apps;
	test_link tl;
	int code = -1, i;

	ck_assert_int_eq(agent_app_opts_add(&o, AGENT_OPT_FORWARD, "8080:127.0.0.1:80", err, sizeof err), MP_OK);
	ck_assert_int_eq(agent_app_opts_add(&o, AGENT_OPT_FORWARD_UDP, "27015:[::1]:27015", err, sizeof err),
	                 MP_OK);
	ck_assert_int_eq(agent_app_opts_add(&o, AGENT_OPT_FORWARD, "8080:example.com:80", err, sizeof err),
	                 MP_ERR_SYNTAX);
	ck_assert_int_eq(agent_app_opts_add(&o, AGENT_OPT_ALLOW_FORWARD, "127.0.0.1", err, sizeof err),
	                 MP_ERR_SYNTAX);
	ck_assert_uint_eq(o.nfwd_tcp, 1);
	ck_assert_uint_eq(o.fwd_tcp[0].localport, 8080);
	ck_assert_str_eq(o.fwd_udp[0].host, "::1");
	ck_assert_int_eq(agent_app_opts_check(&o, 1, err, sizeof err), MP_OK);
	ck_assert_int_eq(agent_app_opts_check(&o, 0, err, sizeof err), MP_ERR_SYNTAX);
	ck_assert_int_eq(agent_app_opts_add(&o, AGENT_OPT_ALLOW_FORWARD, "localhost:22", err, sizeof err), MP_OK);
	ck_assert_int_eq(agent_app_opts_check(&o, 1, err, sizeof err), MP_ERR_SYNTAX);
	agent_app_opts_clear(&o);
	ck_assert(!agent_app_opts_any(&o));
	ck_assert_int_eq(agent_app_opts_add(&o, AGENT_OPT_OVERWRITE, NULL, err, sizeof err), MP_OK);
	ck_assert_int_eq(agent_app_opts_check(&o, 0, err, sizeof err), MP_ERR_SYNTAX);
	agent_app_opts_clear(&o);

	/* connect side: two files through agent_apps */
	snprintf(p1, sizeof p1, "%s/first", src_dir);
	snprintf(p2, sizeof p2, "%s/second", src_dir);
	make_file(p1, 70000, 21);
	make_file(p2, 1, 22);
	ck_assert_int_eq(agent_app_opts_add(&o, AGENT_OPT_SEND, p1, err, sizeof err), MP_OK);
	ck_assert_int_eq(agent_app_opts_add(&o, AGENT_OPT_SEND, p2, err, sizeof err), MP_OK);
	base = event_base_new();
	tl_init(&tl, base, &cfg);
	apps = agent_apps_start(&o, 1, &tl.io, &(agent_apps_hooks){ 0, apps_finished, NULL, &code }, err, sizeof err);
	ck_assert_msg(apps != NULL, "%s", err);
	for (i = 0; i < 1000 && code < 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_int_eq(code, AGENT_EXIT_OK);
	snprintf(out, sizeof out, "%s/first", dst_dir);
	assert_same(p1, out);
	snprintf(out, sizeof out, "%s/second", dst_dir);
	assert_same(p2, out);
	agent_apps_free(apps);
	/* again: both exist now, so the run fails */
	code = -1;
	apps = agent_apps_start(&o, 1, &tl.io, &(agent_apps_hooks){ 0, apps_finished, NULL, &code }, err, sizeof err);
	for (i = 0; i < 1000 && code < 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_int_eq(code, AGENT_EXIT_FAILURE);
	agent_apps_free(apps);
	agent_app_opts_clear(&o);
	tl_free(&tl);
	event_base_free(base);
}
END_TEST

/* With --json every line on stdout is one JSON object: progress events
 * and one event per file, names escaped (this one has a quote and a
 * non-ASCII letter). */
START_TEST(json_output)
{
	agent_app_opts o = { 0 };
	agent_app_server_cfg cfg = { .receive_dir = dst_dir };
	char err[256], p1[400], outpath[400], line[1024];
	struct event_base *base;
	agent_apps *apps;
	test_link tl;
	int code = -1, i, saved, fd, lines = 0, starts = 0, ends = 0, sent = 0;
	FILE *fp;

	snprintf(p1, sizeof p1, "%s/say \"hi\" \xc3\xbc.txt", src_dir);
	snprintf(outpath, sizeof outpath, "%s/stdout", tmp);
	make_file(p1, 3 << 20, 31);
	ck_assert_int_eq(agent_app_opts_add(&o, AGENT_OPT_SEND, p1, err, sizeof err), MP_OK);
	base = event_base_new();
	tl_init(&tl, base, &cfg);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	apps = agent_apps_start(&o, 1, &tl.io, &(agent_apps_hooks){ 1, apps_finished, NULL, &code }, err, sizeof err);
	for (i = 0; i < 5000 && code < 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	ck_assert_int_eq(code, AGENT_EXIT_OK);
	fp = fopen(outpath, "r");
	while (fgets(line, sizeof line, fp)) {
		size_t n = strlen(line);
		ck_assert_msg(n && line[n - 1] == '\n', "line not ended: %s", line);
		ck_assert_msg(json_object_ok(line, n - 1), "not JSON: %s", line);
		lines++;
		starts += strstr(line, "\"send_start\"") != NULL;
		ends += strstr(line, "\"send_end\"") != NULL && strstr(line, "\"ok\"") != NULL;
		sent += strstr(line, "\"file_sent\"") != NULL &&
		        strstr(line, "say \\\"hi\\\" \\u00c3\\u00bc.txt") != NULL;
	}
	fclose(fp);
	ck_assert_int_ge(lines, 3);
	ck_assert_int_eq(starts, 1);
	ck_assert_int_eq(ends, 1);
	ck_assert_int_eq(sent, 1);
	agent_apps_free(apps);
	agent_app_opts_clear(&o);
	tl_free(&tl);
	for (i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
}
END_TEST

static Suite *
app_file_suite(void)
{
	Suite *s = suite_create("app_file");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, big_file_arrives);
	tcase_add_test(tc, cut_and_resume);
	tcase_add_test(tc, changed_file_restarts);
	tcase_add_test(tc, several_files_and_empty);
	tcase_add_test(tc, existing_refused_unless_overwrite);
	tcase_add_test(tc, symlink_not_followed);
	tcase_add_test(tc, prehash_only_for_the_same_file);
	tcase_add_test(tc, sender_takes_the_prehash);
	tcase_add_test(tc, bad_names_refused);
	tcase_add_test(tc, wrong_hash_dropped);
	tcase_add_test(tc, too_much_data_refused);
	tcase_add_test(tc, cli_options_and_session);
	tcase_add_test(tc, json_output);
	suite_add_tcase(s, tc);
	return s;
}

MP_TEST_MAIN(app_file_suite)
