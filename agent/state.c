/*
 * state.c - the agent's remembered requests and peers (see state.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailpunch/error.h"
#include "state.h"

#define HEADER "# mailpunch-agent state v1"

static void
hex(const uint8_t *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static int
unhex(const char *s, uint8_t *b, size_t n)
{
	size_t i;

	if (strlen(s) != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		b[i] = (uint8_t)v;
	}
	return 0;
}

static int
parse_request(char *rest, agent_state *st, uint64_t now)
{
	char sid[64], host[MP_ADDR_MAX + 1];
	unsigned long long t;
	agent_request *r;

	if (sscanf(rest, "%63s %llu %254s", sid, &t, host) != 3)
		return -1;
	if (now > t && now - t > AGENT_REQUEST_LIFETIME)
		return 0;       /* stale: forget it */
	if (st->nrequests == AGENT_STATE_REQUESTS)
		return 0;
	r = &st->requests[st->nrequests];
	if (unhex(sid, r->sid, sizeof r->sid) != 0)
		return -1;
	r->time = t;
	snprintf(r->host, sizeof r->host, "%s", host);
	st->nrequests++;
	return 0;
}

static int
parse_peer(char *rest, agent_state *st)
{
	char id[MP_PUBID_TEXT_MAX];
	unsigned long long seen;
	unsigned flags;
	int off = 0;
	agent_known_peer *p;

	if (st->npeers == AGENT_STATE_PEERS)
		return 0;
	p = &st->peers[st->npeers];
	if (sscanf(rest, "%95s %llu %u %n", id, &seen, &flags, &off) != 3 || off == 0)
		return -1;
	if (mp_pubid_parse(id, &p->id) != MP_OK)
		return -1;
	mp_pubid_uid(&p->id, &p->uid);
	p->seen = seen;
	p->flags = (uint8_t)flags;
	snprintf(p->name, sizeof p->name, "%s", strcmp(rest + off, "-") ? rest + off : "");
	st->npeers++;
	return 0;
}

int
agent_state_load(const char *dir, agent_state *st, uint64_t now, char *err, size_t errlen)
{
	char path[4096], line[1024];
	unsigned lineno = 0;
	FILE *fp;

	memset(st, 0, sizeof *st);
	snprintf(path, sizeof path, "%s/state", dir);
	if (!(fp = fopen(path, "r"))) {
		if (errno == ENOENT)
			return MP_OK;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return MP_ERR_IO;
	}
	while (fgets(line, sizeof line, fp)) {
		int bad = 0;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		if (!strncmp(line, "request ", 8))
			bad = parse_request(line + 8, st, now);
		else if (!strncmp(line, "peer ", 5))
			bad = parse_peer(line + 5, st);
		else
			bad = -1;
		if (bad) {
			fclose(fp);
			snprintf(err, errlen, "%s:%u: not a state line", path, lineno);
			return MP_ERR_MALFORMED;
		}
	}
	fclose(fp);
	return MP_OK;
}

int
agent_state_save(const char *dir, const agent_state *st)
{
	char path[4096], tmp[4200], sid[2 * MP_SESSION_ID_LEN + 1], id[MP_PUBID_TEXT_MAX];
	size_t i;
	FILE *fp;
	int fd, rc = MP_OK;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return MP_ERR_IO;
	snprintf(path, sizeof path, "%s/state", dir);
	snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(fp = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return MP_ERR_IO;
	}
	fprintf(fp, "%s\n", HEADER);
	for (i = 0; i < st->nrequests; i++) {
		hex(st->requests[i].sid, MP_SESSION_ID_LEN, sid);
		fprintf(fp, "request %s %llu %s\n", sid, (unsigned long long)st->requests[i].time,
		        st->requests[i].host);
	}
	for (i = 0; i < st->npeers; i++) {
		const agent_known_peer *p = &st->peers[i];

		mp_pubid_format(&p->id, id, sizeof id);
		fprintf(fp, "peer %s %llu %u %s\n", id, (unsigned long long)p->seen, p->flags,
		        p->name[0] ? p->name : "-");
	}
	if (fflush(fp) != 0 || fsync(fd) != 0)
		rc = MP_ERR_IO;
	if (fclose(fp) != 0)
		rc = MP_ERR_IO;
	if (rc == MP_OK && rename(tmp, path) != 0)
		rc = MP_ERR_IO;
	if (rc != MP_OK)
		unlink(tmp);
	return rc;
}

void
agent_state_add_request(agent_state *st, const uint8_t sid[MP_SESSION_ID_LEN], uint64_t time,
                        const char *host)
{
	agent_request *r;

	if (st->nrequests == AGENT_STATE_REQUESTS) {
		memmove(&st->requests[0], &st->requests[1], (AGENT_STATE_REQUESTS - 1) * sizeof st->requests[0]);
		st->nrequests--;
	}
	r = &st->requests[st->nrequests++];
	memcpy(r->sid, sid, MP_SESSION_ID_LEN);
	r->time = time;
	snprintf(r->host, sizeof r->host, "%s", host);
}

int
agent_state_take_request(agent_state *st, const uint8_t sid[MP_SESSION_ID_LEN])
{
	size_t i;

	for (i = 0; i < st->nrequests; i++) {
		if (memcmp(st->requests[i].sid, sid, MP_SESSION_ID_LEN) == 0) {
			memmove(&st->requests[i], &st->requests[i + 1],
			        (st->nrequests - i - 1) * sizeof st->requests[0]);
			st->nrequests--;
			return 1;
		}
	}
	return 0;
}

void
agent_state_learn_peer(agent_state *st, const mp_peer *p, uint64_t now)
{
	agent_known_peer *k = NULL;
	mp_uid uid;
	size_t i, oldest = 0;

	mp_pubid_uid(&p->id, &uid);
	for (i = 0; i < st->npeers && !k; i++)
		if (mp_uid_equal(&st->peers[i].uid, &uid))
			k = &st->peers[i];
	if (!k && st->npeers < AGENT_STATE_PEERS)
		k = &st->peers[st->npeers++];
	if (!k) {
		for (i = 1; i < st->npeers; i++)
			if (st->peers[i].seen < st->peers[oldest].seen)
				oldest = i;
		k = &st->peers[oldest];
	}
	k->uid = uid;
	k->id = p->id;
	snprintf(k->name, sizeof k->name, "%s", p->name);
	k->seen = now > p->age ? now - p->age : 0;
	k->flags = p->flags;
}

const agent_known_peer *
agent_state_find_peer(const agent_state *st, const char *who)
{
	const agent_known_peer *hit = NULL;
	mp_uid want;
	int by_uid = mp_uid_parse(who, &want) == MP_OK;
	size_t i;

	for (i = 0; i < st->npeers; i++) {
		const agent_known_peer *p = &st->peers[i];

		if (by_uid ? mp_uid_equal(&p->uid, &want) : !strcasecmp(p->name, who)) {
			if (hit && !by_uid)
				return NULL;     /* ambiguous name */
			hit = p;
		}
	}
	return hit;
}
