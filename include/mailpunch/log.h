/*
 * log.h - the one logging module of mailpunch.
 *
 * Interface: mp_log_open() chooses the destination once at start (and
 * again on reload); mp_log() and mp_log_id() write one line each.  Lines
 * about a message or session start with its ID ("4Xb2k1: ..."), as
 * OpenDKIM does with queue IDs, so an admin can grep one transaction.
 * Destinations: "syslog" (facility LOG_MAIL), "stderr", or a file path
 * (appended, one write(2) per line so concurrent milter threads never
 * interleave).  Callers must never pass secrets: the module cannot know.
 * Errors: mp_log_open() returns MP_ERR_IO / MP_ERR_INVAL; logging itself
 * never fails loudly (a lost log line must not stop mail).
 */
#ifndef MAILPUNCH_LOG_H
#define MAILPUNCH_LOG_H

#include <stdarg.h>

typedef enum mp_log_level {
	MP_LOG_ERR = 0,
	MP_LOG_WARNING = 1,
	MP_LOG_NOTICE = 2,
	MP_LOG_INFO = 3,
	MP_LOG_DEBUG = 4,
} mp_log_level;

/* dest: "syslog", "stderr" or an absolute file path; ident: program name. */
int mp_log_open(const char *dest, const char *ident, mp_log_level level);
void mp_log_close(void);
void mp_log_set_level(mp_log_level level);
mp_log_level mp_log_get_level(void);

/* Parse "err", "warning", "notice", "info", "debug"; MP_ERR_SYNTAX else. */
int mp_log_level_parse(const char *name, mp_log_level *out);

void mp_log(mp_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Same, prefixed with "ID: " when id is non-NULL and non-empty. */
void mp_log_id(mp_log_level level, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void mp_vlog_id(mp_log_level level, const char *id, const char *fmt, va_list ap);

#endif
