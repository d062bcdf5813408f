/*
 * main.c - mailpunch-milter: start-up, privileges, signals, shutdown.
 *
 *   mailpunch-milter [-c FILE] [-f] [-t] [-V]
 *
 * Start-up order matters: everything that needs root (the host key, the
 * milter and control sockets, the pid file, the shared table) is opened
 * first, bind errors go to stderr while a terminal still listens, then
 * the process detaches (unless -f) and drops to UserID.
 * Signals: SIGUSR1 reloads the configuration (libmilter keeps SIGHUP,
 * SIGTERM and SIGINT for itself: TERM and INT stop the milter).
 * Exit status: 0 after a clean stop, 64 usage, 78 configuration error,
 * 71 start-up failure (socket, table, privileges).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "callbacks.h"
#include "config.h"
#include "control_server.h"
#include "sync.h"
#include "inject.h"
#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "mailpunch/sockspec.h"
#include "state.h"

#define EX_USAGE_ 64
#define EX_OSERR_ 71
#define EX_CONFIG_ 78
#define MAINTENANCE_SECONDS 60

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

static const char *progname = "mailpunch-milter";
static volatile int stopping;
static pthread_t maint_thread;

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: %s [-c FILE] [-f] [-t] [-V]\n"
	            "  -c FILE  configuration file (default %s/mailpunch/milter.conf)\n"
	            "  -f       stay in the foreground\n"
	            "  -t       check the configuration and the host key, then exit\n"
	            "  -V       print the version\n", progname, SYSCONFDIR);
}

static int
resolve_user(const char *spec, uid_t *uid, gid_t *gid, char *name, size_t namelen, char *err,
             size_t errlen)
{
	char user[256];
	const char *colon = strchr(spec, ':');
	size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
	struct passwd *pw;

	if (ulen == 0 || ulen >= sizeof user) {
		snprintf(err, errlen, "UserID '%s' is not user[:group]", spec);
		return MP_ERR_CONFIG;
	}
	memcpy(user, spec, ulen);
	user[ulen] = '\0';
	if (!(pw = getpwnam(user))) {
		snprintf(err, errlen, "UserID: no user '%s'", user);
		return MP_ERR_CONFIG;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	snprintf(name, namelen, "%s", user);
	if (colon) {
		struct group *gr = getgrnam(colon + 1);

		if (!gr) {
			snprintf(err, errlen, "UserID: no group '%s'", colon + 1);
			return MP_ERR_CONFIG;
		}
		*gid = gr->gr_gid;
	}
	return MP_OK;
}

static int
drop_privileges(const char *name, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if (getuid() != 0 && geteuid() != 0)
		return MP_OK;
	if (initgroups(name, gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		snprintf(err, errlen, "cannot become %s: %s", name, strerror(errno));
		return MP_ERR_IO;
	}
	/* A setuid that could be undone would be no drop at all. */
	if (uid != 0 && setuid(0) == 0) {
		snprintf(err, errlen, "privileges could be regained after dropping them");
		return MP_ERR_IO;
	}
	return MP_OK;
}

/* libmilter takes Sendmail's syntax; ours is a superset (inet6 hosts in
 * brackets, bare paths), so hand it the plain form. */
static int
open_milter_socket(const milter_settings *s, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	mp_sockspec spec;
	char conn[512];

	if (mp_sockspec_parse(s->socket, &spec, err, errlen) != MP_OK)
		return MP_ERR_CONFIG;
	switch (spec.family) {
	case MP_SOCK_UNIX:
		snprintf(conn, sizeof conn, "unix:%s", spec.path);
		break;
	case MP_SOCK_INET:
		snprintf(conn, sizeof conn, "inet:%u%s%s", spec.port, spec.host[0] ? "@" : "", spec.host);
		break;
	case MP_SOCK_INET6:
		snprintf(conn, sizeof conn, "inet6:%u%s%s", spec.port, spec.host[0] ? "@" : "", spec.host);
		break;
	}
	if (smfi_setconn(conn) != MI_SUCCESS || smfi_register(milter_desc) != MI_SUCCESS) {
		snprintf(err, errlen, "cannot register the milter on %s", conn);
		return MP_ERR_IO;
	}
	/* Open now, as root and before detaching, so that a bind error is
	 * seen on the terminal and the socket can be given to UserID. */
	if (spec.family == MP_SOCK_UNIX) {
		int fd = mp_sockspec_connect(&spec);

		/* A live socket belongs to a running instance: never steal it.
		 * A stale one is removed, since libmilter would refuse it. */
		if (fd >= 0) {
			close(fd);
			snprintf(err, errlen, "%s is in use by a running milter", s->socket);
			return MP_ERR_IO;
		}
		unlink(spec.path);
	}
	if (smfi_opensocket(1) != MI_SUCCESS) {
		snprintf(err, errlen, "cannot listen on %s (in use, or no permission?)", s->socket);
		return MP_ERR_IO;
	}
	if (spec.family == MP_SOCK_UNIX &&
	    (chmod(spec.path, s->socket_mode_bits) != 0 || chown(spec.path, uid, gid) != 0)) {
		snprintf(err, errlen, "%s: %s", spec.path, strerror(errno));
		return MP_ERR_IO;
	}
	return MP_OK;
}

static int
write_pid_file(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	FILE *fp;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0 || !(fp = fdopen(fd, "w"))) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return MP_ERR_IO;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	if (fchown(fd, uid, gid) != 0) {
		/* not fatal: only removal at exit needs it */
	}
	fclose(fp);
	return MP_OK;
}

static int
detach(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	if (chdir("/") != 0)
		return -1;
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}

/* Waits for SIGUSR1 (reload) and expires old entries once a minute. */
static void *
maintenance(void *arg)
{
	sigset_t set;
	struct timespec tick = { MAINTENANCE_SECONDS, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	while (!stopping) {
		int sig = sigtimedwait(&set, NULL, &tick);

		if (stopping)
			break;
		if (sig == SIGUSR1) {
			char err[512];

			if (milter_state_reload(err, sizeof err) == MP_OK)
				mp_log(MP_LOG_NOTICE, "configuration reloaded from %s", milter.config_path);
			else
				mp_log(MP_LOG_ERR, "reload failed, keeping the running configuration: %s", err);
		} else if (sig < 0 && errno == EAGAIN) {
			milter_snapshot *snap = milter_snapshot_get();
			size_t removed = 0;

			if (snap) {
				mp_table_expire(milter.table, (uint64_t)time(NULL),
				                (uint64_t)snap->settings->entry_lifetime, &removed);
				milter_snapshot_put(snap);
			}
			if (removed)
				mp_log(MP_LOG_INFO, "expired %zu table entr%s", removed, removed == 1 ? "y" : "ies");
		}
	}
	return NULL;
}

static int
start(const char *config_path, int foreground, int check_only)
{
	milter_settings *s;
	milter_snapshot *snap;
	char err[1024], username[256] = "", pid_file[512] = "", table_text[600];
	uid_t uid = getuid();
	gid_t gid = getgid(), ctl_gid;
	mp_host_limits lim;
	sigset_t set;
	int rc;

	milter.config_path = config_path;
	if (milter_settings_load(config_path, &s, err, sizeof err) != MP_OK) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return EX_CONFIG_;
	}
	if (s->user && resolve_user(s->user, &uid, &gid, username, sizeof username, err, sizeof err) != MP_OK) {
		fprintf(stderr, "%s: %s\n", progname, err);
		milter_settings_free(s);
		return EX_CONFIG_;
	}
	ctl_gid = gid;
	if (s->control_group) {
		struct group *gr = getgrnam(s->control_group);

		if (!gr) {
			fprintf(stderr, "%s: ControlSocketGroup: no group '%s'\n", progname, s->control_group);
			milter_settings_free(s);
			return EX_CONFIG_;
		}
		ctl_gid = gr->gr_gid;
	}
	if (milter_snapshot_new(s, NULL, &snap, err, sizeof err) != MP_OK) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return EX_CONFIG_;
	}
	if (check_only) {
		printf("%s: configuration %s OK\n", progname, config_path);
		milter_snapshot_put(snap);
		return 0;
	}
	if (mp_log_open(s->log_dest, progname, (mp_log_level)s->log_level) != MP_OK) {
		fprintf(stderr, "%s: cannot open log %s: %s\n", progname, s->log_dest, strerror(errno));
		milter_snapshot_put(snap);
		return EX_OSERR_;
	}
	milter_snapshot_publish(snap);

	mp_table_spec_redacted(s->table, table_text, sizeof table_text);
	rc = mp_table_open(s->table, (size_t)s->table_capacity, MP_TABLE_CREATE,
	                   s->table_mode_bits, &milter.table);
	if (rc == MP_OK && uid != getuid() && s->table[0] == '/' && strchr(s->table + 1, '/')) {
		/* a file-backed table must stay writable after the drop */
		if (chown(s->table, uid, gid) != 0)
			rc = MP_ERR_IO;
	}
	if (rc != MP_OK) {
		fprintf(stderr, "%s: table %s: %s%s%s\n", progname, table_text, mp_strerror(rc),
		        rc == MP_ERR_IO ? ": " : "", rc == MP_ERR_IO ? strerror(errno) : "");
		if (rc == MP_ERR_INCOMPATIBLE)
			fprintf(stderr, "%s: the table was made with another capacity or version; "
			                "set TableCapacity to match or remove it (mailpunchctl cannot)\n", progname);
		goto fail;
	}
	memset(&lim, 0, sizeof lim);
	lim.replay_capacity = (size_t)s->replay_cache;
	lim.per_address_burst = s->reply_burst;
	lim.per_address_period = s->reply_period;
	lim.per_client_burst = s->client_burst;
	lim.per_client_period = s->client_period;
	if (mp_host_new(milter.table, &lim, &milter.host) != MP_OK) {
		fprintf(stderr, "%s: out of memory\n", progname);
		goto fail;
	}
	if (open_milter_socket(s, uid, gid, err, sizeof err) != MP_OK ||
	    control_server_open(s->control_socket, s->control_mode_bits, uid, ctl_gid, err, sizeof err) != MP_OK) {
		fprintf(stderr, "%s: %s\n", progname, err);
		goto fail;
	}
	if (!foreground && detach() != 0) {
		fprintf(stderr, "%s: cannot detach: %s\n", progname, strerror(errno));
		goto fail;
	}
	/* s belongs to the published snapshot, which a reload may free */
	if (s->pid_file && strlen(s->pid_file) >= sizeof pid_file) {
		mp_log(MP_LOG_ERR, "PidFile path too long");
		goto fail;
	}
	if (s->pid_file)
		snprintf(pid_file, sizeof pid_file, "%s", s->pid_file);
	if (pid_file[0] && write_pid_file(pid_file, uid, gid, err, sizeof err) != MP_OK) {
		mp_log(MP_LOG_ERR, "%s", err);
		goto fail;
	}
	if (s->user && drop_privileges(username, uid, gid, err, sizeof err) != MP_OK) {
		mp_log(MP_LOG_ERR, "%s", err);
		goto fail;
	}
	/* Every thread inherits this mask: USR1 reaches only our sigtimedwait,
	 * and HUP/TERM/INT only libmilter's own signal thread (were they
	 * deliverable to our threads, TERM would kill the process outright). */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (pthread_create(&maint_thread, NULL, maintenance, NULL) != 0 ||
	    control_server_start(err, sizeof err) != MP_OK ||
	    (s->peer_lines.count && milter_sync_start() != MP_OK)) {
		mp_log(MP_LOG_ERR, "cannot start threads: %s", strerror(errno));
		goto fail;
	}
	mp_log(MP_LOG_NOTICE, "started on %s, control on %s, table %s (%lld entries)", s->socket,
	       s->control_socket, table_text, s->table_capacity);

	rc = smfi_main();

	mp_log(MP_LOG_NOTICE, "stopping");
	stopping = 1;
	pthread_kill(maint_thread, SIGUSR1);
	pthread_join(maint_thread, NULL);
	milter_sync_stop();
	control_server_stop();
	milter_inject_smtp_close();
	if (pid_file[0])
		unlink(pid_file);
	mp_host_free(milter.host);
	mp_table_close(milter.table);
	milter_state_clear();
	mp_log_close();
	return rc == MI_SUCCESS ? 0 : EX_OSERR_;
fail:
	milter_sync_stop();
	control_server_stop();
	mp_host_free(milter.host);
	mp_table_close(milter.table);
	milter_state_clear();
	return EX_OSERR_;
}

int
main(int argc, char **argv)
{
	const char *config = SYSCONFDIR "/mailpunch/milter.conf";
	int foreground = 0, check = 0, c;

	while ((c = getopt(argc, argv, "c:ftVh")) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'f': foreground = 1; break;
		case 't': check = 1; break;
		case 'V': printf("%s %s\n", progname, PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EX_USAGE_;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE_;
	}
	return start(config, foreground, check);
}
