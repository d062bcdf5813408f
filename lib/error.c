/*
 * error.c - text for mp_err codes.
 */
#include "mailpunch/error.h"

const char *
mp_strerror(int err)
{
	switch ((mp_err)err) {
	case MP_OK: return "success";
	case MP_ERR_NOMEM: return "out of memory";
	case MP_ERR_INVAL: return "invalid argument";
	case MP_ERR_TRUNCATED: return "input truncated";
	case MP_ERR_TOOBIG: return "input or output too large";
	case MP_ERR_MAGIC: return "not a mailpunch block";
	case MP_ERR_VERSION: return "unsupported protocol version";
	case MP_ERR_TYPE: return "unexpected message type";
	case MP_ERR_WRONGKEY: return "block is sealed to another key";
	case MP_ERR_DECRYPT: return "block failed authentication (tampered or forged)";
	case MP_ERR_SIGNATURE: return "sender signature invalid";
	case MP_ERR_MALFORMED: return "malformed message body";
	case MP_ERR_CRYPTO: return "cryptographic library failure";
	case MP_ERR_EXPIRED: return "message too old";
	case MP_ERR_FUTURE: return "message timestamp in the future";
	case MP_ERR_REPLAY: return "replayed session ID";
	case MP_ERR_IO: return "I/O error";
	case MP_ERR_EXISTS: return "file exists (refusing to overwrite)";
	case MP_ERR_NOBLOCK: return "no mailpunch block in mail";
	case MP_ERR_BASE64: return "invalid base64 in block armour";
	case MP_ERR_MIME: return "unparseable MIME structure";
	case MP_ERR_CONFIG: return "configuration error";
	case MP_ERR_KEYFILE: return "bad key file";
	case MP_ERR_SYNTAX: return "syntax error";
	case MP_ERR_NOTFOUND: return "not found";
	case MP_ERR_CONFLICT: return "user ID bound to another identity key";
	case MP_ERR_RATELIMIT: return "rate limit exceeded";
	case MP_ERR_UNAVAILABLE: return "backend unavailable, try again later";
	case MP_ERR_INCOMPATIBLE: return "made by an incompatible version";
	}
	return "unknown error";
}
