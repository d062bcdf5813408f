/*
 * log.c - the one logging module of mailpunch.
 *
 * Interface: see include/mailpunch/log.h.  Until mp_log_open() succeeds,
 * and again after mp_log_close(), lines go to stderr with ident
 * "mailpunch" at level info, so early start-up errors are not lost.
 *
 * Line format for "stderr" and file destinations (syslog adds its own
 * time stamp, ident and pid, so it gets only "LEVEL: ID: message"):
 *     2026-11-22T01:23:45Z ident[pid]: INFO: ID: message
 * A line is at most MP_LOG_LINE_MAX bytes including the newline; longer
 * messages are cut and end in "...".  Control characters in the ID and the
 * message (values taken from mails) become '?' (tab becomes a space), so
 * nobody can forge a log line with an embedded CR/LF or terminal escape.
 *
 * Thread safety: one mutex guards the destination; each line is written
 * with a single write(2) while holding it, so threads never interleave
 * and a concurrent mp_log_open() (reload, logrotate) never closes the fd
 * under a writer.  The level is an atomic so dropped lines cost one load.
 *
 * Errors: mp_log_open() returns MP_ERR_INVAL for a bad argument and
 * MP_ERR_IO (errno kept) when the file cannot be opened; the previous
 * destination then stays in use.  Logging itself never reports failure.
 */
/* Needs POSIX 2008 (O_CLOEXEC, gmtime_r) even under -std=c11 alone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "mailpunch/log.h"
#include "mailpunch/error.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* Lets -Wformat=2 check the forwarding of fmt to vsnprintf(). */
void mp_vlog_id(mp_log_level level, const char *id, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define MP_LOG_LINE_MAX 2048
#define MP_LOG_IDENT_MAX 64

typedef enum log_dest {
	DEST_STDERR,
	DEST_SYSLOG,
	DEST_FILE,
} log_dest;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static log_dest log_kind = DEST_STDERR;
static int log_fd = -1;                 /* DEST_FILE only */
/* openlog() keeps the pointer, so the ident must live in static storage. */
static char log_ident[MP_LOG_IDENT_MAX] = "mailpunch";
static atomic_int log_level = MP_LOG_INFO;

static const char *const level_names[] = {
	"err", "warning", "notice", "info", "debug",
};
static const char *const level_tags[] = {
	"ERR", "WARNING", "NOTICE", "INFO", "DEBUG",
};
static const int level_prio[] = {
	LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG,
};

static int
level_valid(int level)
{
	return level >= MP_LOG_ERR && level <= MP_LOG_DEBUG;
}

int
mp_log_level_parse(const char *name, mp_log_level *out)
{
	if (name == NULL || out == NULL)
		return MP_ERR_INVAL;
	for (int i = MP_LOG_ERR; i <= MP_LOG_DEBUG; i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (mp_log_level)i;
			return MP_OK;
		}
	}
	return MP_ERR_SYNTAX;
}

void
mp_log_set_level(mp_log_level level)
{
	if (level_valid((int)level))
		atomic_store(&log_level, (int)level);
}

mp_log_level
mp_log_get_level(void)
{
	return (mp_log_level)atomic_load(&log_level);
}

/* Caller holds log_lock.  Leaves the module in its initial state. */
static void
close_locked(void)
{
	if (log_kind == DEST_FILE && log_fd >= 0)
		close(log_fd);
	else if (log_kind == DEST_SYSLOG)
		closelog();
	log_fd = -1;
	log_kind = DEST_STDERR;
}

int
mp_log_open(const char *dest, const char *ident, mp_log_level level)
{
	log_dest kind;
	int fd = -1;

	if (dest == NULL || !level_valid((int)level))
		return MP_ERR_INVAL;
	if (ident == NULL || *ident == '\0')
		ident = "mailpunch";
	if (strcmp(dest, "syslog") == 0) {
		kind = DEST_SYSLOG;
	} else if (strcmp(dest, "stderr") == 0) {
		kind = DEST_STDERR;
	} else if (dest[0] == '/') {
		kind = DEST_FILE;
		/* Opened before the old one is closed: a failed reopen on
		 * reload keeps logging where it did. */
		fd = open(dest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
		          O_NOCTTY, 0640);
		if (fd < 0)
			return MP_ERR_IO;
	} else {
		return MP_ERR_INVAL;
	}

	pthread_mutex_lock(&log_lock);
	close_locked();
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_kind = kind;
	log_fd = fd;
	if (kind == DEST_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	atomic_store(&log_level, (int)level);
	pthread_mutex_unlock(&log_lock);
	return MP_OK;
}

void
mp_log_close(void)
{
	pthread_mutex_lock(&log_lock);
	close_locked();
	snprintf(log_ident, sizeof(log_ident), "%s", "mailpunch");
	atomic_store(&log_level, MP_LOG_INFO);
	pthread_mutex_unlock(&log_lock);
}

/* Neutralise bytes that could end or rewrite a line on a terminal. */
static void
sanitize(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\t')
			s[i] = ' ';
		else if (c < 0x20 || c == 0x7f)
			s[i] = '?';
	}
}

/*
 * Append printf output to buf[*used..cap), never past cap - 1 bytes (the
 * last byte is kept for the newline).  Returns 1 when the text was cut.
 */
static int
append_v(char *buf, size_t cap, size_t *used, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static int
append_v(char *buf, size_t cap, size_t *used, const char *fmt, va_list ap)
{
	size_t room = cap - 1 - *used;   /* keep one byte for '\n' */
	if (room == 0)
		return 1;
	/* vsnprintf writes a NUL in the room + 1st byte, which is the
	 * newline byte we reserved: still inside buf. */
	int n = vsnprintf(buf + *used, room + 1, fmt, ap);
	if (n < 0)
		return 0;
	if ((size_t)n > room) {
		*used += room;
		return 1;
	}
	*used += (size_t)n;
	return 0;
}

static int
append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int cut = append_v(buf, cap, used, fmt, ap);
	va_end(ap);
	return cut;
}

/* Build "ID: message" (both sanitised) into buf; returns its length. */
static size_t
format_body(char *buf, size_t cap, const char *id, const char *fmt,
            va_list ap)
	__attribute__((format(printf, 4, 0)));

static size_t
format_body(char *buf, size_t cap, const char *id, const char *fmt,
            va_list ap)
{
	size_t used = 0;
	int cut = 0;

	if (id != NULL && *id != '\0')
		cut = append(buf, cap, &used, "%s: ", id);
	if (!cut)
		cut = append_v(buf, cap, &used, fmt, ap);
	sanitize(buf, used);
	if (cut && used >= 3)
		memcpy(buf + used - 3, "...", 3);
	return used;
}

static void
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;    /* a lost log line must not stop mail */
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Caller holds log_lock: log_ident is stable. */
static size_t
format_prefix(char *buf, size_t cap, mp_log_level level)
{
	struct timespec ts;
	struct tm tm;
	size_t used;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	used = strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
	append(buf, cap, &used, " %s[%ld]: ", log_ident, (long)getpid());
	return used;
}

/* Caller holds log_lock.  line has room for MP_LOG_LINE_MAX bytes. */
static void
emit_locked(mp_log_level level, char *line, const char *body, size_t blen)
{
	size_t used = 0;

	if (log_kind == DEST_SYSLOG) {
		syslog(level_prio[level], "%s: %s", level_tags[level], body);
		return;
	}
	used = format_prefix(line, MP_LOG_LINE_MAX, level);
	append(line, MP_LOG_LINE_MAX, &used, "%s: ", level_tags[level]);
	size_t room = MP_LOG_LINE_MAX - 1 - used;
	if (blen > room) {
		memcpy(line + used, body, room);
		used += room;
		if (room >= 3)
			memcpy(line + used - 3, "...", 3);
	} else {
		memcpy(line + used, body, blen);
		used += blen;
	}
	line[used++] = '\n';
	write_all(log_kind == DEST_FILE ? log_fd : STDERR_FILENO, line, used);
}

void
mp_vlog_id(mp_log_level level, const char *id, const char *fmt, va_list ap)
{
	char body[MP_LOG_LINE_MAX];
	char line[MP_LOG_LINE_MAX];
	int saved_errno = errno;   /* callers may log, then look at errno */

	if (!level_valid((int)level) || fmt == NULL ||
	    (int)level > atomic_load(&log_level))
		return;

	/* Format the caller's arguments outside the lock: only the shared
	 * destination needs it. */
	size_t blen = format_body(body, sizeof(body), id, fmt, ap);
	body[blen] = '\0';

	pthread_mutex_lock(&log_lock);
	emit_locked(level, line, body, blen);
	pthread_mutex_unlock(&log_lock);
	errno = saved_errno;
}

void
mp_log_id(mp_log_level level, const char *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	mp_vlog_id(level, id, fmt, ap);
	va_end(ap);
}

void
mp_log(mp_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	mp_vlog_id(level, NULL, fmt, ap);
	va_end(ap);
}
