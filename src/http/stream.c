/*
 * Streamed responses (Server-Sent Events). A stream whose producer has
 * nothing yet is parked: its connection is suspended and it sits in
 * srv->parked until its producer wakes it or the ticker finds it due. A wake
 * that comes while the stream is not parked is kept (wake_pending), so it is
 * never lost between asking the producer and parking.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "server_int.h"

/* ---- streams ---------------------------------------------------------------- */

/* Whether the stream's next call is its final one. */
static int stream_final(const struct http_stream *st)
{
	return atomic_load(&st->srv->ending) || (atomic_load(&st->watch) && atomic_load(&st->srv->quiesced));
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *st = cls;
	(void)pos;
	for (;;) {
		if (atomic_load(&st->srv->stopping))
			return MHD_CONTENT_READER_END_OF_STREAM;
		int final = stream_final(st);
		long n = st->fn(st->ctx, buf, max, final);
		if (n > 0)
			return n;
		if (n < 0 || final)
			return MHD_CONTENT_READER_END_OF_STREAM;
		/* Nothing yet: sleep until woken (returning 0 without suspending
		 * would spin). A wake that came while we were asking fn is not
		 * lost: it left wake_pending, and we ask again. */
		pthread_mutex_lock(&st->srv->park_lock);
		if (st->wake_pending) {
			st->wake_pending = 0;
			pthread_mutex_unlock(&st->srv->park_lock);
			continue;
		}
		if (stream_final(st) || atomic_load(&st->srv->stopping)) {
			/* The flags are set before the parked are woken under this
			 * lock: parking now would sleep through the shutdown. */
			pthread_mutex_unlock(&st->srv->park_lock);
			continue;
		}
		MHD_suspend_connection(st->conn);
		st->parked = 1;
		st->due_us = time_mono_us() + st->poll_us;
		st->next = st->srv->parked;
		st->pprev = &st->srv->parked;
		if (st->next)
			st->next->pprev = &st->next;
		st->srv->parked = st;
		pthread_mutex_unlock(&st->srv->park_lock);
		return 0;
	}
}

static void unpark(struct http_stream *st)
{
	*st->pprev = st->next;
	if (st->next)
		st->next->pprev = st->pprev;
	st->parked = 0;
}

void http_stream_wake(struct http_stream *st)
{
	pthread_mutex_lock(&st->srv->park_lock);
	if (st->parked) {
		unpark(st);
		MHD_resume_connection(st->conn);
	} else {
		st->wake_pending = 1;
	}
	pthread_mutex_unlock(&st->srv->park_lock);
}

static void stream_free(void *cls)
{
	struct http_stream *st = cls;
	/* It may still be parked if the connection died: unlink it. */
	pthread_mutex_lock(&st->srv->park_lock);
	if (st->parked)
		unpark(st);
	pthread_mutex_unlock(&st->srv->park_lock);
	struct http_server *srv = st->srv;
	if (st->free_fn)
		st->free_fn(st->ctx);
	xfree(st);
	pthread_mutex_lock(&srv->lock);
	atomic_fetch_sub(&srv->streams, 1);
	pthread_cond_broadcast(&srv->changed);
	pthread_mutex_unlock(&srv->lock);
}

/* Resumes the parked streams that are due (all of them when `all`): a stream
 * woken by its producer never waits for this, so a busy stream costs the
 * ticker nothing, and an idle one is asked once per poll interval. */
void srv_wake_parked(struct http_server *s, int all)
{
	int64_t now = time_mono_us();
	pthread_mutex_lock(&s->park_lock);
	for (struct http_stream *st = s->parked, *next; st; st = next) {
		next = st->next;
		if (all || st->due_us <= now) {
			unpark(st);
			MHD_resume_connection(st->conn);
		}
	}
	pthread_mutex_unlock(&s->park_lock);
}

struct http_stream *http_respond_stream(http_req *r, const char *ctype, int poll_ms, http_stream_fn fn,
					void (*free_fn)(void *), void *ctx)
{
	if (r->resp) {
		log_error("request %s: a stream after an answer; the stream is dropped", r->request_id);
		if (free_fn)
			free_fn(ctx);
		return NULL;
	}
	struct http_stream *st = xcalloc(1, sizeof(*st));
	if (!st) {
		if (free_fn)
			free_fn(ctx);
		http_respond_error(r, 500, "internal", "out of memory", NULL);
		return NULL;
	}
	*st = (struct http_stream){ .srv = r->srv,
				    .conn = r->conn,
				    .req = r,
				    .fn = fn,
				    .free_fn = free_fn,
				    .ctx = ctx,
				    .poll_us = (int64_t)(poll_ms > STREAM_TICK_MS ? poll_ms : STREAM_TICK_MS) * 1000 };
	atomic_fetch_add(&r->srv->streams, 1); /* stream_free gives it back, on every path */
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st,
								       stream_free);
	if (!resp) {
		stream_free(st);
		http_respond_error(r, 500, "internal", "out of memory", NULL);
		return NULL;
	}
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	srv_set_response(r, 200, ctype, resp, 0);
	return st;
}

void http_stream_watch(struct http_stream *st)
{
	if (!st || atomic_exchange(&st->watch, 1))
		return;
	http_req *r = st->req;
	struct http_server *s = st->srv;
	if (r && r->counted) {
		r->counted = 0;
		if (atomic_fetch_sub(&s->inflight, 1) == 1) {
			pthread_mutex_lock(&s->lock);
			pthread_cond_broadcast(&s->changed);
			pthread_mutex_unlock(&s->lock);
		}
	}
}
