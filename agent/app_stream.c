/*
 * app_stream.c - small helpers every application uses on its streams:
 * writing the stream header and frames, finding whole frames in the
 * input, closing a stream so that the peer sees its end.
 *
 * Interface: agent/app.h.  Errors: mp_err values (MP_ERR_NOMEM when
 * libevent cannot queue, the decoder's code for a broken frame head).
 */
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "app.h"
#include "mailpunch/error.h"

void
agent_app_stream_close(struct bufferevent *bev)
{
	if (!bev)
		return;
	/* A pair hands over what is queued and raises EOF on its partner; a
	 * transport stream turns this into its FIN.  libevent 2.1 moves only
	 * up to the partner's read high-water mark on the first flush (the
	 * rest would be freed with bev): a BEV_FLUSH first fills the partner
	 * to its mark, so the BEV_FINISHED after it moves everything left. */
	bufferevent_flush(bev, EV_WRITE, BEV_FLUSH);
	bufferevent_flush(bev, EV_WRITE, BEV_FINISHED);
	bufferevent_free(bev);
}

int
agent_app_write_header(struct bufferevent *bev, int type)
{
	uint8_t hdr[MP_APP_HDR_LEN];

	mp_app_header_encode(hdr, type);
	return bufferevent_write(bev, hdr, sizeof hdr) ? MP_ERR_NOMEM : MP_OK;
}

int
agent_app_write_frame(struct bufferevent *bev, uint8_t type, const void *p, size_t len)
{
	uint8_t head[MP_APP_FRAME_HDR];
	struct evbuffer *out = bufferevent_get_output(bev);

	if (len > MP_APP_FRAME_MAX)
		return MP_ERR_TOOBIG;
	mp_app_frame_put_head(head, type, (uint32_t)len);
	if (evbuffer_add(out, head, sizeof head) || (len && evbuffer_add(out, p, len)))
		return MP_ERR_NOMEM;
	return MP_OK;
}

int
agent_app_peek_frame(struct evbuffer *in, uint8_t *type, uint32_t *len)
{
	uint8_t head[MP_APP_FRAME_HDR];
	int err;

	if (evbuffer_copyout(in, head, sizeof head) < (ev_ssize_t)sizeof head)
		return 0;
	if ((err = mp_app_frame_head(head, sizeof head, type, len)) != MP_OK)
		return err;
	return evbuffer_get_length(in) >= MP_APP_FRAME_HDR + (size_t)*len ? 1 : 0;
}

int
agent_app_take_frame(struct evbuffer *in, uint32_t len, uint8_t *buf, size_t cap)
{
	if (len > cap)
		return MP_ERR_TOOBIG;
	evbuffer_drain(in, MP_APP_FRAME_HDR);
	if (evbuffer_remove(in, buf, len) != (int)len)
		return MP_ERR_TRUNCATED;
	return MP_OK;
}
