/*
 * table_redis.c - the control table in Redis, shared by an MX cluster
 * (see table.h, mp_table_redis_open()).
 *
 * The same contract as the shared-memory backend (table_shm.c), so that
 * several milters on several machines give the answers one milter
 * would.  Keys, all under one prefix P:
 *
 *   P:meta   hash: version, capacity, seq (a counter that orders ties)
 *   P:ord    sorted set, every score 0, ordered by member bytes:
 *            time (16 hex digits) || seq (16 hex digits) || uid (16 bytes)
 *            so that lexicographic order is time order, and among equal
 *            times the later upsert is the newer, exactly as in shm
 *   P:ent    hash: uid -> ord member (48) || flags (1) || identity (64)
 *            || the rest of the entry (entry_encode() below)
 *   P:stat   hash: counter name -> count
 *
 * Every operation that reads and writes is one Lua script, so it is
 * atomic on the server: a cluster of milters never sees half an upsert.
 * If the meta hash has gone (a Redis restarted without persistence),
 * the next upsert recreates it with this handle's capacity.
 *
 * Connections: a small pool, one connection per concurrent caller (the
 * milter is threaded), each with connect and command timeouts.  Any
 * transport or server error closes the connection and returns
 * MP_ERR_UNAVAILABLE, which the milter turns into a tempfail; after a
 * failed connect, calls fail at once for a short back-off instead of
 * each waiting for the timeout.
 * Errors: as in table.h; MP_ERR_SYNTAX for a malformed URL,
 * MP_ERR_INCOMPATIBLE for a table of another version or capacity.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>

#include "mailpunch/error.h"
#include "mailpunch/table.h"
#include "table_priv.h"
#include "wire.h"

#define LAYOUT_VERSION "1"
#define POOL_MAX 16
#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 2000
#define BACKOFF_MS 500
#define EXPIRE_BATCH 1000
#define MEMBER_LEN 48               /* time hex, seq hex, uid */
#define ID_OFF 49                   /* after member and flags */
#define ID_LEN 64
#define PREFIX_MAX 128

enum { K_META, K_ORD, K_ENT, K_STAT, NKEYS };

enum script {
	S_OPEN, S_UPSERT, S_SELECT, S_SET_FLAGS, S_DELETE, S_EXPIRE, NSCRIPTS
};

/* Lua, run by the server; KEYS are meta, ord, ent, stat in that order. */
static const char *const script_text[NSCRIPTS] = {
	[S_OPEN] =
	"local v = redis.call('HGET', KEYS[1], 'version')\n"
	"if not v then\n"
	"  if ARGV[3] == '1' and ARGV[2] ~= '0' then\n"
	"    redis.call('HSET', KEYS[1], 'version', ARGV[1], 'capacity', ARGV[2], 'seq', '0')\n"
	"    return tonumber(ARGV[2])\n"
	"  end\n"
	"  return -1\n"
	"end\n"
	"if v ~= ARGV[1] then return -2 end\n"
	"local c = redis.call('HGET', KEYS[1], 'capacity')\n"
	"if ARGV[2] ~= '0' and c ~= ARGV[2] then return -2 end\n"
	"return tonumber(c)\n",

	/* ARGV: uid, time hex, identity, flags byte, rest, verified, capacity,
	 * if newer -> -1 conflict, 2 need verify, 3 not newer, 0 updated,
	 * 1 new (maybe dropped) */
	[S_UPSERT] =
	"if redis.call('HEXISTS', KEYS[1], 'capacity') == 0 then\n"
	"  redis.call('HSET', KEYS[1], 'version', '" LAYOUT_VERSION "', 'capacity', ARGV[7], 'seq', '0')\n"
	"end\n"
	"local uid = ARGV[1]\n"
	"local cur = redis.call('HGET', KEYS[3], uid)\n"
	"local fresh = 0\n"
	"if cur then\n"
	"  if string.sub(cur, 50, 113) ~= ARGV[3] then return -1 end\n"
	"  if ARGV[8] == '1' and string.sub(cur, 1, 16) >= ARGV[2] then return 3 end\n"
	"  redis.call('ZREM', KEYS[2], string.sub(cur, 1, 48))\n"
	"else\n"
	"  if ARGV[6] ~= '1' then return 2 end\n"
	"  fresh = 1\n"
	"  local cap = tonumber(redis.call('HGET', KEYS[1], 'capacity'))\n"
	"  if redis.call('ZCARD', KEYS[2]) >= cap then\n"
	"    redis.call('HINCRBY', KEYS[4], 'evictions', 1)\n"
	"    local old = redis.call('ZRANGE', KEYS[2], 0, 0)[1]\n"
	"    if ARGV[2] < string.sub(old, 1, 16) then return 1 end\n"
	"    redis.call('ZREM', KEYS[2], old)\n"
	"    redis.call('HDEL', KEYS[3], string.sub(old, 33, 48))\n"
	"  end\n"
	"end\n"
	"local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)\n"
	"local m = ARGV[2] .. string.format('%016x', seq) .. uid\n"
	"redis.call('ZADD', KEYS[2], 0, m)\n"
	"redis.call('HSET', KEYS[3], uid, m .. ARGV[4] .. ARGV[3] .. ARGV[5])\n"
	"return fresh\n",

	/* ARGV: lowest member allowed ('-' or '[hex'), max, uid to skip */
	[S_SELECT] =
	"local out = {}\n"
	"local want = tonumber(ARGV[2])\n"
	"local ms = redis.call('ZREVRANGEBYLEX', KEYS[2], '+', ARGV[1], 'LIMIT', 0, want + 1)\n"
	"for _, m in ipairs(ms) do\n"
	"  local u = string.sub(m, 33, 48)\n"
	"  if u ~= ARGV[3] then\n"
	"    local v = redis.call('HGET', KEYS[3], u)\n"
	"    if v then out[#out + 1] = v end\n"
	"    if #out >= want then break end\n"
	"  end\n"
	"end\n"
	"return out\n",

	/* ARGV: uid, set, clear -> -1 not found, else the new flags */
	[S_SET_FLAGS] =
	"local cur = redis.call('HGET', KEYS[3], ARGV[1])\n"
	"if not cur then return -1 end\n"
	"local f = bit.band(bit.bor(string.byte(cur, 49), tonumber(ARGV[2])),"
	" bit.bnot(tonumber(ARGV[3])))\n"
	"f = bit.band(f, 255)\n"
	"redis.call('HSET', KEYS[3], ARGV[1], string.sub(cur, 1, 48) .. string.char(f) .."
	" string.sub(cur, 50))\n"
	"return f\n",

	/* ARGV: uid -> 1 deleted, 0 not found */
	[S_DELETE] =
	"local cur = redis.call('HGET', KEYS[3], ARGV[1])\n"
	"if not cur then return 0 end\n"
	"redis.call('ZREM', KEYS[2], string.sub(cur, 1, 48))\n"
	"redis.call('HDEL', KEYS[3], ARGV[1])\n"
	"return 1\n",

	/* ARGV: '(' .. first time hex kept, batch -> entries removed */
	[S_EXPIRE] =
	"local ms = redis.call('ZRANGEBYLEX', KEYS[2], '-', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))\n"
	"for _, m in ipairs(ms) do\n"
	"  redis.call('ZREM', KEYS[2], m)\n"
	"  redis.call('HDEL', KEYS[3], string.sub(m, 33, 48))\n"
	"end\n"
	"if #ms > 0 then redis.call('HINCRBY', KEYS[4], 'expirations', #ms) end\n"
	"return #ms\n",
};

struct redis_table {
	struct mp_table base;
	char host[256];
	char user[128], password[256];   /* AUTH; never logged */
	int port, db;
	char key[NKEYS][PREFIX_MAX + 8];
	size_t cap;
	char sha[NSCRIPTS][41];

	pthread_mutex_t lock;       /* protects what follows */
	pthread_cond_t freed;
	redisContext *idle[POOL_MAX];
	size_t nidle, nopen;
	uint64_t down_until_ms;     /* connect back-off */
};

static inline struct redis_table *
RT(mp_table *t)
{
	return (struct redis_table *)t;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- URL */

/* Where the host starts: after "USER:PASSWORD@" if there is one (the
 * last '@' before the query, since a password may hold one). */
static const char *
after_userinfo(const char *p)
{
	const char *at = NULL, *q;

	for (q = p; *q && *q != '?'; q++)
		if (*q == '@')
			at = q;
	return at ? at + 1 : p;
}

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME]; HOST may be [v6]. */
static int
parse_url(const char *url, char *host, size_t hostlen, int *port, int *db, char *prefix,
          char *user, char *password, size_t pwlen)
{
	const char *p, *end, *h;
	char *e;
	long v;
	size_t n;

	if (strncasecmp(url, "redis://", 8) != 0)
		return MP_ERR_SYNTAX;
	p = url + 8;
	user[0] = password[0] = '\0';
	h = after_userinfo(p);
	if (h != p) {
		const char *colon = memchr(p, ':', (size_t)(h - 1 - p));

		if (!colon || (size_t)(colon - p) >= pwlen || (size_t)(h - 1 - colon - 1) >= pwlen ||
		    h - 1 == colon + 1)
			return MP_ERR_SYNTAX;
		memcpy(user, p, (size_t)(colon - p));
		user[colon - p] = '\0';
		memcpy(password, colon + 1, (size_t)(h - 1 - colon - 1));
		password[h - 1 - colon - 1] = '\0';
		p = h;
	}
	if (*p == '[') {
		end = strchr(++p, ']');
		if (!end)
			return MP_ERR_SYNTAX;
		n = (size_t)(end - p);
		end++;
	} else {
		n = strcspn(p, ":/?");
		end = p + n;
	}
	if (n == 0 || n >= hostlen)
		return MP_ERR_SYNTAX;
	memcpy(host, p, n);
	host[n] = '\0';
	p = end;
	*port = 6379;
	*db = 0;
	strcpy(prefix, "mailpunch");
	if (*p == ':') {
		v = strtol(p + 1, &e, 10);
		if (e == p + 1 || v < 1 || v > 65535)
			return MP_ERR_SYNTAX;
		*port = (int)v;
		p = e;
	}
	if (*p == '/' && p[1] && p[1] != '?') {
		v = strtol(p + 1, &e, 10);
		if (e == p + 1 || v < 0 || v > 1000000)
			return MP_ERR_SYNTAX;
		*db = (int)v;
		p = e;
	} else if (*p == '/') {
		p++;
	}
	if (*p == '?') {
		if (strncmp(p, "?prefix=", 8) != 0)
			return MP_ERR_SYNTAX;
		p += 8;
		n = strlen(p);
		if (n == 0 || n > PREFIX_MAX || strpbrk(p, " \t\r\n"))
			return MP_ERR_SYNTAX;
		memcpy(prefix, p, n + 1);
		p += n;
	}
	return *p == '\0' ? MP_OK : MP_ERR_SYNTAX;
}

/* ---------------------------------------------------------------- connections */

static void
conn_drop(struct redis_table *t, redisContext *c)
{
	redisFree(c);
	pthread_mutex_lock(&t->lock);
	t->nopen--;
	pthread_cond_signal(&t->freed);
	pthread_mutex_unlock(&t->lock);
}

static redisContext *
conn_dial(struct redis_table *t)
{
	struct timeval ct = { CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000 };
	struct timeval rt = { COMMAND_TIMEOUT_MS / 1000, (COMMAND_TIMEOUT_MS % 1000) * 1000 };
	redisContext *c = redisConnectWithTimeout(t->host, t->port, ct);
	redisReply *r;

	if (!c || c->err || redisSetTimeout(c, rt) != REDIS_OK)
		goto fail;
	if (t->password[0]) {
		if (t->user[0])
			r = redisCommand(c, "AUTH %s %s", t->user, t->password);
		else
			r = redisCommand(c, "AUTH %s", t->password);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			if (r)
				freeReplyObject(r);
			goto fail;
		}
		freeReplyObject(r);
	}
	if (t->db) {
		r = redisCommand(c, "SELECT %d", t->db);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			if (r)
				freeReplyObject(r);
			goto fail;
		}
		freeReplyObject(r);
	}
	return c;
fail:
	if (c)
		redisFree(c);
	return NULL;
}

/* A connection for this caller, or NULL (Redis unreachable). */
static redisContext *
conn_get(struct redis_table *t)
{
	redisContext *c;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		if (t->nidle) {
			c = t->idle[--t->nidle];
			pthread_mutex_unlock(&t->lock);
			return c;
		}
		if (t->nopen < POOL_MAX)
			break;
		pthread_cond_wait(&t->freed, &t->lock);
	}
	if (now_ms() < t->down_until_ms) {
		pthread_mutex_unlock(&t->lock);
		return NULL;
	}
	t->nopen++;
	pthread_mutex_unlock(&t->lock);
	c = conn_dial(t);
	pthread_mutex_lock(&t->lock);
	if (!c) {
		t->nopen--;
		t->down_until_ms = now_ms() + BACKOFF_MS;
		pthread_cond_signal(&t->freed);
	}
	pthread_mutex_unlock(&t->lock);
	return c;
}

static void
conn_put(struct redis_table *t, redisContext *c)
{
	pthread_mutex_lock(&t->lock);
	t->idle[t->nidle++] = c;
	pthread_cond_signal(&t->freed);
	pthread_mutex_unlock(&t->lock);
}

/* One command; a transport failure drops the connection.  The reply
 * (never an error reply: those are MP_ERR_UNAVAILABLE) is the caller's. */
static int
command(struct redis_table *t, int argc, const char **argv, const size_t *len, redisReply **out)
{
	redisContext *c = conn_get(t);
	redisReply *r;

	*out = NULL;
	if (!c)
		return MP_ERR_UNAVAILABLE;
	r = redisCommandArgv(c, argc, argv, len);
	if (!r || c->err) {
		if (r)
			freeReplyObject(r);
		conn_drop(t, c);
		return MP_ERR_UNAVAILABLE;
	}
	conn_put(t, c);
	if (r->type == REDIS_REPLY_ERROR) {
		int noscript = r->len >= 8 && strncmp(r->str, "NOSCRIPT", 8) == 0;

		freeReplyObject(r);
		return noscript ? MP_ERR_NOTFOUND : MP_ERR_UNAVAILABLE;
	}
	*out = r;
	return MP_OK;
}

static int
load_script(struct redis_table *t, enum script s)
{
	const char *argv[3] = { "SCRIPT", "LOAD", script_text[s] };
	size_t len[3] = { 6, 4, strlen(script_text[s]) };
	redisReply *r;
	int rc = command(t, 3, argv, len, &r);

	if (rc != MP_OK)
		return MP_ERR_UNAVAILABLE;
	if (r->type != REDIS_REPLY_STRING || r->len != 40) {
		freeReplyObject(r);
		return MP_ERR_UNAVAILABLE;
	}
	memcpy(t->sha[s], r->str, 41);
	freeReplyObject(r);
	return MP_OK;
}

/* EVALSHA with all four keys; a server that lost its scripts (restart,
 * SCRIPT FLUSH) gets them again, once. */
static int
run(struct redis_table *t, enum script s, int nargs, const char **args, const size_t *arglen,
    redisReply **out)
{
	const char *argv[3 + NKEYS + 10];
	size_t len[3 + NKEYS + 10];
	int i, n = 0, rc, tries;

	argv[n] = "EVALSHA";
	len[n++] = 7;
	argv[n] = t->sha[s];
	len[n++] = 40;
	argv[n] = "4";
	len[n++] = 1;
	for (i = 0; i < NKEYS; i++) {
		argv[n] = t->key[i];
		len[n++] = strlen(t->key[i]);
	}
	for (i = 0; i < nargs; i++) {
		argv[n] = args[i];
		len[n++] = arglen ? arglen[i] : strlen(args[i]);
	}
	for (tries = 0; tries < 2; tries++) {
		rc = command(t, n, argv, len, out);
		if (rc != MP_ERR_NOTFOUND)
			return rc;
		if ((rc = load_script(t, s)) != MP_OK)
			return rc;
	}
	return MP_ERR_UNAVAILABLE;
}

static int
int_reply(redisReply *r, long long *v)
{
	if (r->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(r);
		return MP_ERR_UNAVAILABLE;
	}
	*v = r->integer;
	freeReplyObject(r);
	return MP_OK;
}

/* ---------------------------------------------------------------- entries */

static void
time_hex(uint64_t t, char out[17])
{
	snprintf(out, 17, "%016" PRIx64, t);
}

/* The part of an entry the scripts never look into. */
static int
entry_encode(const mp_table_entry *e, mp_wbuf *w)
{
	size_t k, n = e->ep.ncand < MP_TABLE_CAND ? e->ep.ncand : MP_TABLE_CAND;
	size_t ln = strlen(e->name), la = strlen(e->reply_addr);

	mp_wbuf_init(w, 1024);
	mp_put_u8(w, (uint8_t)ln);
	mp_put_bytes(w, e->name, ln);
	mp_put_u8(w, (uint8_t)la);
	mp_put_bytes(w, e->reply_addr, la);
	mp_put_u8(w, (uint8_t)n);
	for (k = 0; k < n; k++) {
		const mp_candidate *c = &e->ep.cand[k];

		mp_put_u8(w, c->kind);
		mp_put_u8(w, c->family);
		mp_put_bytes(w, c->addr, sizeof c->addr);
		mp_put_u16(w, c->port);
	}
	mp_put_u8(w, e->ep.nat.mapping);
	mp_put_u8(w, e->ep.nat.filtering);
	mp_put_u8(w, e->ep.nat.allocation);
	mp_put_u16(w, (uint16_t)e->ep.nat.delta);
	return w->err;
}

static int
hexval(const char *s, size_t n, uint64_t *v)
{
	size_t i;

	*v = 0;
	for (i = 0; i < n; i++) {
		int d;

		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else
			return -1;
		*v = *v << 4 | (uint64_t)d;
	}
	return 0;
}

/* A stored value back into an entry; anything odd is refused (the
 * server is shared, its contents are checked like input). */
static int
entry_decode(const redisReply *r, mp_table_entry *e)
{
	const uint8_t *p = (const uint8_t *)r->str;
	mp_rbuf rb;
	size_t k, n;

	memset(e, 0, sizeof *e);
	if (r->type != REDIS_REPLY_STRING || r->len < ID_OFF + ID_LEN ||
	    hexval(r->str, 16, &e->time) != 0)
		return MP_ERR_MALFORMED;
	memcpy(e->uid.b, p + 32, sizeof e->uid.b);
	e->flags = p[MEMBER_LEN];
	memcpy(e->id.sign_pub, p + ID_OFF, MP_KEY_LEN);
	memcpy(e->id.seal_pub, p + ID_OFF + MP_KEY_LEN, MP_KEY_LEN);
	mp_rbuf_init(&rb, p + ID_OFF + ID_LEN, r->len - ID_OFF - ID_LEN);
	n = mp_get_u8(&rb);
	if (n > MP_NAME_MAX)
		return MP_ERR_MALFORMED;
	mp_get_bytes(&rb, e->name, n);
	n = mp_get_u8(&rb);
	if (n > MP_ADDR_MAX)
		return MP_ERR_MALFORMED;
	mp_get_bytes(&rb, e->reply_addr, n);
	n = mp_get_u8(&rb);
	if (n > MP_TABLE_CAND)
		return MP_ERR_MALFORMED;
	e->ep.ncand = (uint8_t)n;
	for (k = 0; k < n; k++) {
		mp_candidate *c = &e->ep.cand[k];

		c->kind = mp_get_u8(&rb);
		c->family = mp_get_u8(&rb);
		mp_get_bytes(&rb, c->addr, sizeof c->addr);
		c->port = mp_get_u16(&rb);
	}
	e->ep.nat.mapping = mp_get_u8(&rb);
	e->ep.nat.filtering = mp_get_u8(&rb);
	e->ep.nat.allocation = mp_get_u8(&rb);
	e->ep.nat.delta = (int16_t)mp_get_u16(&rb);
	if (rb.err || mp_rbuf_left(&rb) != 0)
		return MP_ERR_MALFORMED;
	return MP_OK;
}

/* ---------------------------------------------------------------- operations */

static int
redis_upsert(mp_table *tt, const mp_table_entry *e, int verified, int if_newer, int *was_new)
{
	struct redis_table *t = RT(tt);
	char th[17], cap[24];
	uint8_t id[ID_LEN], flags = e->flags;
	size_t k, n = e->ep.ncand < MP_TABLE_CAND ? e->ep.ncand : MP_TABLE_CAND;
	const char *args[8];
	size_t len[8];
	redisReply *r;
	long long v;
	mp_wbuf w;
	int rc;

	for (k = 0; k < n; k++)
		if (e->ep.cand[k].kind > 127)
			return MP_ERR_INVAL;    /* what shm cannot store either */
	if ((rc = entry_encode(e, &w)) != MP_OK) {
		mp_wbuf_free(&w);
		return rc == MP_ERR_NOMEM ? rc : MP_ERR_INVAL;
	}
	time_hex(e->time, th);
	memcpy(id, e->id.sign_pub, MP_KEY_LEN);
	memcpy(id + MP_KEY_LEN, e->id.seal_pub, MP_KEY_LEN);
	snprintf(cap, sizeof cap, "%zu", t->cap);
	args[0] = (const char *)e->uid.b;  len[0] = sizeof e->uid.b;
	args[1] = th;                      len[1] = 16;
	args[2] = (const char *)id;        len[2] = ID_LEN;
	args[3] = (const char *)&flags;    len[3] = 1;
	args[4] = (const char *)w.data;    len[4] = w.len;
	args[5] = verified ? "1" : "0";    len[5] = 1;
	args[6] = cap;                     len[6] = strlen(cap);
	args[7] = if_newer ? "1" : "0";    len[7] = 1;
	rc = run(t, S_UPSERT, 8, args, len, &r);
	mp_wbuf_free(&w);
	if (rc != MP_OK || (rc = int_reply(r, &v)) != MP_OK)
		return rc;
	switch (v) {
	case -1: return MP_ERR_CONFLICT;
	case 2: return MP_TABLE_NEED_VERIFY;
	case 3: return MP_TABLE_NOT_NEWER;
	case 0:
	case 1:
		if (was_new)
			*was_new = (int)v;
		return MP_OK;
	default: return MP_ERR_UNAVAILABLE;
	}
}

static int
redis_select(mp_table *tt, const mp_uid *exclude, uint64_t now, uint64_t max_age,
             mp_table_entry *out, size_t max, size_t *n)
{
	struct redis_table *t = RT(tt);
	char lo[18] = "-", cnt[24];
	const char *args[3];
	size_t len[3], i, k = 0;
	redisReply *r;
	int rc;

	/* kept: time >= now - max_age (an entry exactly max_age old is in) */
	if (max_age && now > max_age) {
		lo[0] = '[';
		time_hex(now - max_age, lo + 1);
	}
	snprintf(cnt, sizeof cnt, "%zu", max);
	args[0] = lo;   len[0] = strlen(lo);
	args[1] = cnt;  len[1] = strlen(cnt);
	args[2] = exclude ? (const char *)exclude->b : "";
	len[2] = exclude ? sizeof exclude->b : 0;
	if ((rc = run(t, S_SELECT, 3, args, len, &r)) != MP_OK)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements > max) {
		freeReplyObject(r);
		return MP_ERR_UNAVAILABLE;
	}
	for (i = 0; i < r->elements; i++)
		if (entry_decode(r->element[i], &out[k]) == MP_OK)
			k++;
	freeReplyObject(r);
	*n = k;
	return MP_OK;
}

static int
redis_get(mp_table *tt, const mp_uid *uid, mp_table_entry *out)
{
	struct redis_table *t = RT(tt);
	const char *argv[3] = { "HGET", t->key[K_ENT], (const char *)uid->b };
	size_t len[3] = { 4, strlen(t->key[K_ENT]), sizeof uid->b };
	redisReply *r;
	int rc = command(t, 3, argv, len, &r);

	if (rc != MP_OK)
		return MP_ERR_UNAVAILABLE;
	if (r->type == REDIS_REPLY_NIL)
		rc = MP_ERR_NOTFOUND;
	else if (entry_decode(r, out) != MP_OK)
		rc = MP_ERR_UNAVAILABLE;
	freeReplyObject(r);
	return rc;
}

static int
redis_set_flags(mp_table *tt, const mp_uid *uid, uint8_t set, uint8_t clear)
{
	char s[4], c[4];
	const char *args[3] = { (const char *)uid->b, s, c };
	size_t len[3] = { sizeof uid->b, 0, 0 };
	redisReply *r;
	long long v;
	int rc;

	snprintf(s, sizeof s, "%u", set);
	snprintf(c, sizeof c, "%u", clear);
	len[1] = strlen(s);
	len[2] = strlen(c);
	if ((rc = run(RT(tt), S_SET_FLAGS, 3, args, len, &r)) != MP_OK ||
	    (rc = int_reply(r, &v)) != MP_OK)
		return rc;
	return v < 0 ? MP_ERR_NOTFOUND : MP_OK;
}

static int
redis_delete(mp_table *tt, const mp_uid *uid)
{
	const char *args[1] = { (const char *)uid->b };
	size_t len[1] = { sizeof uid->b };
	redisReply *r;
	long long v;
	int rc;

	if ((rc = run(RT(tt), S_DELETE, 1, args, len, &r)) != MP_OK ||
	    (rc = int_reply(r, &v)) != MP_OK)
		return rc;
	return v ? MP_OK : MP_ERR_NOTFOUND;
}

static int
redis_expire(mp_table *tt, uint64_t now, uint64_t max_age, size_t *removed)
{
	struct redis_table *t = RT(tt);
	char hi[18] = "(", batch[16];
	const char *args[2] = { hi, batch };
	redisReply *r;
	long long v;
	int rc;

	if (now <= max_age)
		return MP_OK;
	time_hex(now - max_age, hi + 1);
	snprintf(batch, sizeof batch, "%d", EXPIRE_BATCH);
	/* in batches, so that one call never blocks the server for long */
	do {
		if ((rc = run(t, S_EXPIRE, 2, args, NULL, &r)) != MP_OK ||
		    (rc = int_reply(r, &v)) != MP_OK)
			return rc;
		*removed += (size_t)v;
	} while (v == EXPIRE_BATCH);
	return MP_OK;
}

static int
redis_flush(mp_table *tt)
{
	struct redis_table *t = RT(tt);
	const char *argv[3] = { "DEL", t->key[K_ORD], t->key[K_ENT] };
	size_t len[3] = { 3, strlen(t->key[K_ORD]), strlen(t->key[K_ENT]) };
	redisReply *r;
	int rc = command(t, 3, argv, len, &r);

	if (rc != MP_OK)
		return MP_ERR_UNAVAILABLE;
	freeReplyObject(r);
	return MP_OK;
}

static void
redis_count(mp_table *tt, mp_stat which, uint64_t n)
{
	struct redis_table *t = RT(tt);
	char num[24];
	const char *argv[4] = { "HINCRBY", t->key[K_STAT], mp_stat_name(which), num };
	size_t len[4];
	redisReply *r;
	int i;

	snprintf(num, sizeof num, "%" PRIu64, n);
	for (i = 0; i < 4; i++)
		len[i] = strlen(argv[i]);
	/* a counter lost while Redis is away is not worth failing a mail */
	if (command(t, 4, argv, len, &r) == MP_OK)
		freeReplyObject(r);
}

static void
redis_stats(mp_table *tt, mp_table_stats *out)
{
	struct redis_table *t = RT(tt);
	const char *ga[2] = { "HGETALL", t->key[K_STAT] };
	size_t gl[2] = { 7, strlen(t->key[K_STAT]) };
	const char *za[2] = { "ZCARD", t->key[K_ORD] };
	size_t zl[2] = { 5, strlen(t->key[K_ORD]) };
	redisReply *r;
	size_t i;
	int k;

	out->capacity = t->cap;
	if (command(t, 2, ga, gl, &r) == MP_OK) {
		for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
			if (r->element[i]->type != REDIS_REPLY_STRING ||
			    r->element[i + 1]->type != REDIS_REPLY_STRING)
				continue;
			for (k = 0; k < MP_STAT_COUNT; k++)
				if (strcmp(r->element[i]->str, mp_stat_name((mp_stat)k)) == 0)
					out->counter[k] = strtoull(r->element[i + 1]->str, NULL, 10);
		}
		freeReplyObject(r);
	}
	if (command(t, 2, za, zl, &r) == MP_OK) {
		if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
			out->entries = (uint64_t)r->integer;
		freeReplyObject(r);
	}
}

static void
redis_close(mp_table *tt)
{
	struct redis_table *t = RT(tt);

	while (t->nidle)
		redisFree(t->idle[--t->nidle]);
	OPENSSL_cleanse(t->password, sizeof t->password);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->freed);
	free(t);
}

static const struct mp_table_ops redis_ops = {
	.upsert = redis_upsert,
	.select = redis_select,
	.get = redis_get,
	.set_flags = redis_set_flags,
	.delete = redis_delete,
	.expire = redis_expire,
	.flush = redis_flush,
	.count = redis_count,
	.stats = redis_stats,
	.close = redis_close,
};

/* ---------------------------------------------------------------- open */

static int
handle_new(const char *url, struct redis_table **out)
{
	static const char *const suffix[NKEYS] = { ":meta", ":ord", ":ent", ":stat" };
	struct redis_table *t;
	char prefix[PREFIX_MAX + 1];
	int i, rc;

	if (!url)
		return MP_ERR_INVAL;
	if (!(t = calloc(1, sizeof *t)))
		return MP_ERR_NOMEM;
	rc = parse_url(url, t->host, sizeof t->host, &t->port, &t->db, prefix, t->user, t->password,
	               sizeof t->user);
	if (rc != MP_OK) {
		free(t);
		return rc;
	}
	for (i = 0; i < NKEYS; i++)
		snprintf(t->key[i], sizeof t->key[i], "%s%s", prefix, suffix[i]);
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		return MP_ERR_NOMEM;
	}
	if (pthread_cond_init(&t->freed, NULL) != 0) {
		pthread_mutex_destroy(&t->lock);
		free(t);
		return MP_ERR_NOMEM;
	}
	t->base.ops = &redis_ops;
	*out = t;
	return MP_OK;
}

int
mp_table_redis_open(const char *url, size_t capacity, int flags, mp_table **out)
{
	struct redis_table *t;
	char cap[24];
	const char *args[3] = { LAYOUT_VERSION, cap, (flags & MP_TABLE_CREATE) ? "1" : "0" };
	redisReply *r;
	long long v;
	int s, rc;

	if (!out || capacity > MP_TABLE_REDIS_MAX_CAPACITY)
		return MP_ERR_INVAL;
	*out = NULL;
	if ((rc = handle_new(url, &t)) != MP_OK)
		return rc;
	snprintf(cap, sizeof cap, "%zu", capacity);
	for (s = 0; s < NSCRIPTS; s++)
		if ((rc = load_script(t, (enum script)s)) != MP_OK)
			goto fail;
	if ((rc = run(t, S_OPEN, 3, args, NULL, &r)) != MP_OK || (rc = int_reply(r, &v)) != MP_OK)
		goto fail;
	if (v == -1 || v == -2 || v <= 0) {
		rc = v == -1 ? MP_ERR_NOTFOUND : MP_ERR_INCOMPATIBLE;
		goto fail;
	}
	t->cap = (size_t)v;
	*out = &t->base;
	return MP_OK;
fail:
	redis_close(&t->base);
	return rc;
}

int
mp_table_redis_unlink(const char *url)
{
	struct redis_table *t;
	const char *argv[1 + NKEYS];
	size_t len[1 + NKEYS];
	redisReply *r;
	int i, rc;

	if ((rc = handle_new(url, &t)) != MP_OK)
		return rc;
	argv[0] = "DEL";
	len[0] = 3;
	for (i = 0; i < NKEYS; i++) {
		argv[1 + i] = t->key[i];
		len[1 + i] = strlen(t->key[i]);
	}
	rc = command(t, 1 + NKEYS, argv, len, &r);
	if (rc == MP_OK)
		freeReplyObject(r);
	redis_close(&t->base);
	return rc == MP_OK ? MP_OK : MP_ERR_UNAVAILABLE;
}

int
mp_table_redis_url_ok(const char *url)
{
	char host[256], prefix[PREFIX_MAX + 1], user[128], pw[128];
	int port, db, rc;

	if (!url)
		return 0;
	rc = parse_url(url, host, sizeof host, &port, &db, prefix, user, pw, sizeof pw);
	OPENSSL_cleanse(pw, sizeof pw);
	return rc == MP_OK;
}

void
mp_table_spec_redacted(const char *spec, char *buf, size_t len)
{
	const char *h;

	if (!buf || len == 0)
		return;
	if (!spec) {
		buf[0] = '\0';
		return;
	}
	if (!mp_table_is_redis(spec) || (h = after_userinfo(spec + 8)) == spec + 8) {
		snprintf(buf, len, "%s", spec);
		return;
	}
	snprintf(buf, len, "redis://***@%s", h);
}

int
mp_table_is_redis(const char *spec)
{
	return spec && strncasecmp(spec, "redis://", 8) == 0;
}

int
mp_table_open(const char *spec, size_t capacity, int flags, unsigned mode, mp_table **out)
{
	if (mp_table_is_redis(spec))
		return mp_table_redis_open(spec, capacity, flags, out);
	return mp_table_shm_open(spec, capacity, flags, mode, out);
}
