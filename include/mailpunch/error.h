/*
 * error.h - error codes shared by every libmailpunch module.
 *
 * Interface: functions return MP_OK (0) or one of the negative mp_err
 * values below; mp_strerror() turns a code into a short English phrase
 * suitable for a log line or a command's error message.  No module keeps
 * a hidden errno-style state, so the code returned is the whole story.
 */
#ifndef MAILPUNCH_ERROR_H
#define MAILPUNCH_ERROR_H

typedef enum mp_err {
	MP_OK = 0,
	MP_ERR_NOMEM = -1,       /* allocation failed */
	MP_ERR_INVAL = -2,       /* caller passed an impossible argument */
	MP_ERR_TRUNCATED = -3,   /* input ends before a field it announces */
	MP_ERR_TOOBIG = -4,      /* input or output over its documented limit */
	MP_ERR_MAGIC = -5,       /* not a mailpunch block at all */
	MP_ERR_VERSION = -6,     /* block of a protocol version we do not speak */
	MP_ERR_TYPE = -7,        /* unknown or unexpected message type */
	MP_ERR_WRONGKEY = -8,    /* block sealed to another recipient key */
	MP_ERR_DECRYPT = -9,     /* AEAD tag did not verify: tampered or forged */
	MP_ERR_SIGNATURE = -10,  /* sender signature did not verify */
	MP_ERR_MALFORMED = -11,  /* decrypted body violates the format */
	MP_ERR_CRYPTO = -12,     /* OpenSSL failed internally */
	MP_ERR_EXPIRED = -13,    /* timestamp older than the accepted age */
	MP_ERR_FUTURE = -14,     /* timestamp too far ahead of our clock */
	MP_ERR_REPLAY = -15,     /* session ID seen before */
	MP_ERR_IO = -16,         /* file or socket I/O failed (see errno) */
	MP_ERR_EXISTS = -17,     /* refusing to overwrite an existing file */
	MP_ERR_NOBLOCK = -18,    /* mail carries no mailpunch block */
	MP_ERR_BASE64 = -19,     /* block armour is not valid base64 */
	MP_ERR_MIME = -20,       /* mail structure cannot be parsed */
	MP_ERR_CONFIG = -21,     /* configuration file rejected */
	MP_ERR_KEYFILE = -22,    /* key file unreadable or of the wrong kind */
	MP_ERR_SYNTAX = -23,     /* text value (address, ID, key) malformed */
	MP_ERR_NOTFOUND = -24,   /* no such entry (user ID, file, ...) */
	MP_ERR_CONFLICT = -25,   /* user ID already bound to another key */
	MP_ERR_RATELIMIT = -26,  /* over a configured rate */
	MP_ERR_UNAVAILABLE = -27,/* a backend cannot be reached: try later */
	MP_ERR_INCOMPATIBLE = -28,/* shared state made by another version */
} mp_err;

/* Short static description of an mp_err; never NULL. */
const char *mp_strerror(int err);

#endif
