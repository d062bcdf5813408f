/*
 * app.h - wire formats of the applications carried over the agent's
 * transport (docs/PROTOCOL.md, "Applications over the transport"):
 * the stream header, the frames that follow it, the UDP forwarding
 * datagram, and the checks a receiver applies to what a peer asks for
 * (file names, forward destinations).
 *
 * Interface: every stream starts with a 5-byte header naming its
 * application; then both directions carry frames of a 1-byte type and a
 * 4-byte big-endian payload length (at most MP_APP_FRAME_MAX).  Encoders
 * write a whole frame (head included) into a caller buffer; decoders
 * take one frame's payload and accept it only when every byte is
 * accounted for.  Pure functions: no I/O, no allocation.
 * Errors: MP_ERR_TRUNCATED (need more bytes), MP_ERR_MAGIC /
 * MP_ERR_VERSION / MP_ERR_TYPE (not ours / unknown), MP_ERR_TOOBIG
 * (length over a limit), MP_ERR_MALFORMED (payload violates the format),
 * MP_ERR_SYNTAX (a name or HOST:PORT text refused), MP_ERR_INVAL.
 */
#ifndef MAILPUNCH_APP_H
#define MAILPUNCH_APP_H

#include <stddef.h>
#include <stdint.h>

#define MP_APP_VERSION 1
#define MP_APP_HDR_LEN 5          /* 'm' 'p' 'a' version type */
#define MP_APP_FRAME_HDR 5        /* type u8, length u32 */
#define MP_APP_FRAME_MAX 65536    /* largest payload of one frame */
#define MP_APP_NAME_MAX 200       /* file name, so ".NAME.mailpunch-part" fits NAME_MAX */
#define MP_APP_HOST_MAX 63        /* forward destination: numeric or "localhost" */
#define MP_APP_TEXT_MAX 200       /* REFUSE reason text */
#define MP_APP_SHA256_LEN 32
#define MP_APP_SIDECAR_MAX 128    /* text of a partial file's sidecar */

/* What a stream carries, named by its header. */
enum mp_app_type {
	MP_APP_FILE = 1,
	MP_APP_FORWARD_TCP = 2,
	MP_APP_PIPE = 3,            /* raw bytes after the header (netcat-like pipe, --exec) */
};

enum mp_app_frame_type {
	MP_FR_OFFER = 1,            /* file: sender -> receiver */
	MP_FR_ACCEPT = 2,           /* file: receiver -> sender */
	MP_FR_REFUSE = 3,           /* file: receiver -> sender */
	MP_FR_DATA = 4,             /* file and forward: bytes */
	MP_FR_RESULT = 5,           /* file: receiver -> sender, after the hash check */
	MP_FR_OPEN = 16,            /* forward: connect side -> listen side */
	MP_FR_OPENED = 17,          /* forward: listen side -> connect side */
	MP_FR_FIN = 18,             /* forward: this direction is done (half-close) */
};

enum mp_app_refuse {
	MP_REFUSE_EXISTS = 1,       /* file there and no --overwrite */
	MP_REFUSE_BADNAME = 2,
	MP_REFUSE_NOSPACE = 3,
	MP_REFUSE_IO = 4,           /* cannot create or write the file */
	MP_REFUSE_BUSY = 5,         /* same name being received on another stream */
	MP_REFUSE_NOTOFFERED = 6,   /* the receiver takes no files (no --receive) */
};

enum mp_app_result { MP_RESULT_OK = 0, MP_RESULT_BAD = 1 };

enum mp_app_opened {
	MP_OPENED_OK = 0,
	MP_OPENED_NOTALLOWED = 1,   /* destination not in the allow list */
	MP_OPENED_UNREACHABLE = 2,  /* allowed, but connect() failed */
	MP_OPENED_BADREQ = 3,       /* OPEN malformed or missing */
};

/* UDP forwarding datagram kinds (the first byte). */
enum mp_app_dgram_kind {
	MP_DG_UDP_TO = 1,           /* connect side -> listen side: flow, host, port, payload */
	MP_DG_UDP_BACK = 2,         /* listen side -> connect side: flow, payload */
	MP_DG_UDP_REFUSED = 3,      /* listen side -> connect side: flow (destination not allowed) */
};
#define MP_APP_DGRAM_MAX 1100     /* whole datagram, header included (the transport's limit) */

typedef struct mp_app_offer {
	char name[MP_APP_NAME_MAX + 1];
	uint64_t size;
	uint8_t sha256[MP_APP_SHA256_LEN];
} mp_app_offer;

typedef struct mp_app_dgram {
	uint8_t kind;
	uint32_t flow;
	char host[MP_APP_HOST_MAX + 1];   /* MP_DG_UDP_TO only */
	uint16_t port;                    /* MP_DG_UDP_TO only */
	const uint8_t *payload;           /* points into the decoded datagram */
	size_t payload_len;
} mp_app_dgram;

/* Stream header. */
void mp_app_header_encode(uint8_t out[MP_APP_HDR_LEN], int type);
/* Sets *type; MP_ERR_TRUNCATED when len < MP_APP_HDR_LEN. */
int mp_app_header_decode(const uint8_t *p, size_t len, int *type);

/* Frame head: MP_ERR_TRUNCATED when len < MP_APP_FRAME_HDR, MP_ERR_TYPE
 * for an unknown type, MP_ERR_TOOBIG for a length over MP_APP_FRAME_MAX. */
int mp_app_frame_head(const uint8_t *p, size_t len, uint8_t *type, uint32_t *plen);
void mp_app_frame_put_head(uint8_t out[MP_APP_FRAME_HDR], uint8_t type, uint32_t plen);

/* Whole-frame encoders: write into out (cap bytes), set *len. */
int mp_app_offer_encode(const mp_app_offer *o, uint8_t *out, size_t cap, size_t *len);
int mp_app_u64_encode(uint8_t type, uint64_t v, uint8_t *out, size_t cap, size_t *len);   /* ACCEPT */
int mp_app_u8_encode(uint8_t type, uint8_t v, uint8_t *out, size_t cap, size_t *len);     /* RESULT, OPENED */
int mp_app_refuse_encode(uint8_t reason, const char *text, uint8_t *out, size_t cap, size_t *len);
int mp_app_open_encode(const char *host, uint16_t port, uint8_t *out, size_t cap, size_t *len);

/* Payload decoders (the frame head already taken off). */
int mp_app_offer_decode(const uint8_t *p, size_t len, mp_app_offer *o);
int mp_app_u64_decode(const uint8_t *p, size_t len, uint64_t *v);
int mp_app_u8_decode(const uint8_t *p, size_t len, uint8_t *v);
int mp_app_refuse_decode(const uint8_t *p, size_t len, uint8_t *reason, char text[MP_APP_TEXT_MAX + 1]);
int mp_app_open_decode(const uint8_t *p, size_t len, char host[MP_APP_HOST_MAX + 1], uint16_t *port);

/* UDP forwarding datagrams. */
int mp_app_dgram_encode(const mp_app_dgram *d, uint8_t *out, size_t cap, size_t *len);
int mp_app_dgram_decode(const uint8_t *p, size_t len, mp_app_dgram *d);

/* Policy on peer-chosen texts. */
/* A file name a receiver may create: a plain basename, no '/', no "..",
 * not starting with '.', no control characters, 1..MP_APP_NAME_MAX bytes. */
int mp_app_name_check(const char *name);
/* A forward destination host: "localhost", dotted IPv4 or IPv6 text. */
int mp_app_host_check(const char *host);
/* "HOST:PORT" ("[v6]:PORT" for IPv6) -> host, port (1..65535). */
int mp_app_parse_hostport(const char *s, char host[MP_APP_HOST_MAX + 1], uint16_t *port);
/* "LOCALPORT:HOST:PORT" as given to --forward / --forward-udp. */
int mp_app_parse_forward(const char *s, uint16_t *localport, char host[MP_APP_HOST_MAX + 1],
                         uint16_t *port);

/* The sidecar of a partial file: what it should become. */
int mp_app_sidecar_format(uint64_t size, const uint8_t sha256[MP_APP_SHA256_LEN], char *out,
                          size_t cap);
int mp_app_sidecar_parse(const char *text, size_t len, uint64_t *size,
                         uint8_t sha256[MP_APP_SHA256_LEN]);

#endif
