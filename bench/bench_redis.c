/*
 * bench_redis.c - requests per second of the host logic (what the milter
 * does per request: open the block, check, upsert, select, seal the
 * reply, compose the mail) on the Redis table against the shared-memory
 * table, on the same machine, in the same run.
 *
 * Usage: bench_redis [requests [threads]]      (default 4000, 4)
 *
 * Starts its own redis-server on a free loopback port (no persistence),
 * prepares sealed request mails from 200 members (a fresh session ID
 * each), then runs them through mp_host_process() from several threads,
 * as the milter's threads would: once on a shared-memory table, once on
 * a Redis table.  Each side runs 3 times, alternating, the best counts.
 * Prints requests/s for both and the ratio redis/shm; never asserts a
 * speed.  Exit 0 when measured, 1 on failure, 77 without redis-server.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "mailpunch/block.h"
#include "mailpunch/error.h"
#include "mailpunch/host.h"
#include "mailpunch/mail.h"
#include "mailpunch/table.h"

#define MEMBERS 200
#define ROUNDS 3
#define RDV "rdv@bench.example"

struct req {
	char from[64];
	char *body;
	size_t len;
};

static mp_hostkey *hostkey;
static uint8_t host_pub[MP_KEY_LEN];
static struct req *reqs;
static size_t nreq;
static mp_strlist rdv;
static mp_host_config cfg;

struct worker {
	mp_host *host;
	mp_table *table;
	size_t from, to;
	int failed;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static pid_t
start_redis(int port)
{
	char ps[16];
	pid_t pid;
	int i;

	snprintf(ps, sizeof ps, "%d", port);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1", "--save", "",
		       "--appendonly", "no", "--dir", "/tmp", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		struct timeval tv = { 0, 200000 };
		redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
		redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
		int ok = r && r->type == REDIS_REPLY_STATUS;

		if (r)
			freeReplyObject(r);
		if (c)
			redisFree(c);
		if (ok)
			return pid;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static int
prepare(void)
{
	mp_identity *id[MEMBERS];
	size_t i;

	if (mp_hostkey_generate(&hostkey) != MP_OK)
		return -1;
	mp_hostkey_public(hostkey, host_pub);
	for (i = 0; i < MEMBERS; i++)
		if (mp_identity_generate(&id[i]) != MP_OK)
			return -1;
	reqs = calloc(nreq, sizeof *reqs);
	for (i = 0; reqs && i < nreq; i++) {
		mp_msg *m = mp_msg_new(MP_MSG_REQUEST);
		mp_block_key k = { .user = id[i % MEMBERS] };
		mp_mail_draft d = { 0 };
		mp_mail *mail;
		uint8_t *blk;
		size_t blen;

		if (!m)
			return -1;
		snprintf(reqs[i].from, sizeof reqs[i].from, "m%zu@bench.example", i % MEMBERS);
		strcpy(m->u.request.reply_addr, reqs[i].from);
		snprintf(m->u.request.name, sizeof m->u.request.name, "member %zu", i % MEMBERS);
		m->u.request.ep.ncand = 1;
		m->u.request.ep.cand[0].kind = MP_CAND_SRFLX;
		m->u.request.ep.cand[0].family = 4;
		m->u.request.ep.cand[0].addr[0] = 198;
		m->u.request.ep.cand[0].addr[1] = 18;
		m->u.request.ep.cand[0].port = 4500;
		if (mp_block_seal(m, &k, host_pub, &blk, &blen) != MP_OK)
			return -1;
		mp_msg_free(m);
		d.from = reqs[i].from;
		d.to = RDV;
		d.subject = "[mailpunch] request";
		d.block = blk;
		d.block_len = blen;
		if (mp_mail_compose(&d, &mail) != MP_OK)
			return -1;
		reqs[i].body = strdup(mail->body);
		reqs[i].len = mail->body_len;
		mp_mail_free(mail);
		free(blk);
	}
	for (i = 0; i < MEMBERS; i++)
		mp_identity_free(id[i]);
	return reqs ? 0 : -1;
}

static void *
work(void *arg)
{
	struct worker *w = arg;
	size_t i;

	for (i = w->from; i < w->to; i++) {
		mp_host_input in = { 0 };
		mp_host_outcome out;

		in.id = "BENCH";
		in.env_from = reqs[i].from;
		in.rcpt = RDV;
		in.body = reqs[i].body;
		in.body_len = reqs[i].len;
		in.now = (uint64_t)time(NULL);
		if (mp_host_process(w->host, &cfg, &in, &out) != MP_OK || out.action != MP_HOST_SEND) {
			w->failed = 1;
			if (out.action != MP_HOST_SEND)
				fprintf(stderr, "bench_redis: request %zu not answered: %s\n", i, out.detail);
			break;
		}
		mp_table_count(w->table, MP_STAT_REPLIES, 1);   /* as the milter does */
		mp_host_outcome_free(&out);
	}
	return NULL;
}

/* One pass over every request on a fresh table; requests/s or -1. */
static double
run(const char *spec, unsigned threads)
{
	mp_host_limits lim = { .replay_capacity = nreq * 2 };
	struct worker w[64];
	pthread_t th[64];
	mp_table *t;
	mp_host *h;
	double t0, t1;
	unsigned k;
	int failed = 0;

	if (mp_table_is_redis(spec))
		mp_table_redis_unlink(spec);
	else
		mp_table_shm_unlink(spec);
	if (mp_table_open(spec, 100000, MP_TABLE_CREATE, 0600, &t) != MP_OK)
		return -1;
	if (mp_host_new(t, &lim, &h) != MP_OK) {
		mp_table_close(t);
		return -1;
	}
	t0 = now_s();
	for (k = 0; k < threads; k++) {
		w[k] = (struct worker){ .host = h, .table = t, .from = nreq * k / threads,
		                        .to = nreq * (k + 1) / threads };
		pthread_create(&th[k], NULL, work, &w[k]);
	}
	for (k = 0; k < threads; k++) {
		pthread_join(th[k], NULL);
		failed |= w[k].failed;
	}
	t1 = now_s();
	mp_host_free(h);
	mp_table_close(t);
	if (mp_table_is_redis(spec))
		mp_table_redis_unlink(spec);
	else
		mp_table_shm_unlink(spec);
	return failed ? -1 : (double)nreq / (t1 - t0);
}

int
main(int argc, char **argv)
{
	char shm[64], url[128];
	double best_shm = 0, best_redis = 0;
	unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 4, r;
	int port, rc = 0;
	pid_t pid;
	size_t i;

	nreq = argc > 1 ? (size_t)atol(argv[1]) : 4000;
	if (nreq < 10 || threads < 1 || threads > 64) {
		fprintf(stderr, "usage: bench_redis [requests >= 10 [threads 1..64]]\n");
		return 1;
	}
	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		printf("bench_redis: redis-server not installed: skipped\n");
		return 77;
	}
	if ((port = free_port()) <= 0 || (pid = start_redis(port)) < 0) {
		fprintf(stderr, "bench_redis: cannot start redis-server\n");
		return 1;
	}
	snprintf(shm, sizeof shm, "/mp-bench-redis-%ld", (long)getpid());
	snprintf(url, sizeof url, "redis://127.0.0.1:%d/0?prefix=bench", port);
	mp_strlist_add(&rdv, RDV);
	if (prepare() != 0) {
		fprintf(stderr, "bench_redis: cannot prepare the requests\n");
		rc = 1;
		goto out;
	}
	cfg.key = hostkey;
	cfg.rendezvous = &rdv;
	cfg.peers_per_reply = 10;
	cfg.max_age = 12 * 3600;
	cfg.max_future = 300;
	cfg.require_sender_match = 1;
	cfg.subject_marker = "[mailpunch]";
	cfg.max_message_size = 256 * 1024;
	printf("%zu requests from %d members, %u threads, best of %d\n", nreq, MEMBERS, threads, ROUNDS);
	for (r = 0; r < ROUNDS; r++) {
		double s = run(shm, threads), x = run(url, threads);

		if (s < 0 || x < 0) {
			fprintf(stderr, "bench_redis: a run failed\n");
			rc = 1;
			goto out;
		}
		printf("  round %u: shm %.0f req/s, redis %.0f req/s\n", r + 1, s, x);
		if (s > best_shm)
			best_shm = s;
		if (x > best_redis)
			best_redis = x;
	}
	printf("shm table:   %8.0f requests/s\n", best_shm);
	printf("redis table: %8.0f requests/s\n", best_redis);
	printf("ratio redis/shm: %.2f\n", best_redis / best_shm);
out:
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	for (i = 0; reqs && i < nreq; i++)
		free(reqs[i].body);
	free(reqs);
	mp_hostkey_free(hostkey);
	mp_strlist_free(&rdv);
	return rc;
}
