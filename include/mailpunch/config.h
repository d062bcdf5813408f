/*
 * config.h - "key value" configuration files, typed and checked.
 *
 * Interface: a daemon describes its options in a table of mp_cfg_option
 * (key, type, where in its own settings struct the value goes, range,
 * default) and calls mp_config_load().  The loader applies the defaults,
 * reads the file line by line ('#' starts a comment, blank lines are
 * ignored, keys are case-insensitive, the value is the rest of the line
 * with surrounding blanks removed) and stores each typed value.
 * Errors: MP_ERR_CONFIG with a message "file:line: reason" in the caller's
 * buffer for an unknown key, a malformed or out-of-range value, a repeated
 * single-valued key, or a missing required key; MP_ERR_IO if the file
 * cannot be read; MP_ERR_NOMEM.  On error the target may hold partial
 * values: call mp_config_free() on it either way.
 *
 * Value types:
 *   BOOL      yes/no, true/false, on/off, 1/0
 *   INT       decimal integer within [min, max]        -> long long
 *   SIZE      integer with optional k/M/G suffix (1024) -> long long
 *   DURATION  integer with optional s/m/h/d suffix      -> long long seconds
 *   STRING    any non-empty text                        -> char * (owned)
 *   PATH      an absolute path                          -> char * (owned)
 *   SOCKET    a socket spec, see sockspec.h             -> char * (owned)
 *   ADDRLIST  mail addresses separated by blanks or ',' -> mp_strlist
 *             (repeatable: each line appends)
 *   LEVEL     log level name, see log.h                 -> int
 *   LINES     any non-empty text, one item per line     -> mp_strlist
 *             (repeatable, like ADDRLIST; e.g. "Host ADDRESS KEY")
 */
#ifndef MAILPUNCH_CONFIG_H
#define MAILPUNCH_CONFIG_H

#include <stddef.h>

typedef enum mp_cfg_type {
	MP_CFG_BOOL,
	MP_CFG_INT,
	MP_CFG_SIZE,
	MP_CFG_DURATION,
	MP_CFG_STRING,
	MP_CFG_PATH,
	MP_CFG_SOCKET,
	MP_CFG_ADDRLIST,
	MP_CFG_LEVEL,
	MP_CFG_LINES,
} mp_cfg_type;

/* A growable list of owned strings (for ADDRLIST). */
typedef struct mp_strlist {
	char **items;
	size_t count;
} mp_strlist;

typedef struct mp_cfg_option {
	const char *key;       /* as written in the file, e.g. "Socket" */
	mp_cfg_type type;
	size_t offset;         /* offsetof(settings struct, field) */
	long long min, max;    /* INT/SIZE/DURATION range, inclusive */
	const char *deflt;     /* default in file syntax, or NULL for none */
	int required;          /* key must appear (or have a default) */
} mp_cfg_option;

/* Load path into target; err gets "file:line: reason" on failure. */
int mp_config_load(const char *path, const mp_cfg_option *opts, size_t nopts,
                   void *target, char *err, size_t errlen);
/* Same on an in-memory text; name is used in messages instead of a path. */
int mp_config_parse(const char *name, const char *text, size_t len,
                    const mp_cfg_option *opts, size_t nopts, void *target,
                    char *err, size_t errlen);
/* Free every owned string and list that opts describes in target. */
void mp_config_free(const mp_cfg_option *opts, size_t nopts, void *target);

/* Single-value parsers, also used by command-line flags. */
int mp_parse_bool(const char *s, int *out);
int mp_parse_int(const char *s, long long min, long long max, long long *out);
int mp_parse_size(const char *s, long long min, long long max, long long *out);
int mp_parse_duration(const char *s, long long min, long long max, long long *out);
/* A plain addr-spec (local@domain), no display name, no comments. */
int mp_parse_mail_address(const char *s);

void mp_strlist_free(mp_strlist *l);
int mp_strlist_add(mp_strlist *l, const char *s);
/* Case-insensitive membership (mail addresses compare that way in practice). */
int mp_strlist_contains(const mp_strlist *l, const char *s);

#endif
