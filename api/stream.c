#include "api/stream.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/mem.h"

/* Bytes a stream may hold for a client that does not read; past this the
 * stream is cut (the producer is told through on_abort). */
#define STREAM_PENDING_MAX (8u << 20)

struct ad_stream {
    pthread_mutex_t lock;
    int refs;
    ad_buf pending;            /* bytes not yet read by the connection */
    size_t sent;               /* offset of `pending` already read */
    int ended, aborted, suspended, overflowed;
    const ad_stream_sink *sink;
    void *conn;
    ad_stream_abort_fn on_abort;
    void *abort_ud;
    int64_t last_write_ms;
};

ad_stream *ad_stream_new(ad_stream_abort_fn on_abort, void *ud)
{
    ad_stream *s = ad_calloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    ad_buf_init(&s->pending);
    s->refs = 1;
    s->on_abort = on_abort;
    s->abort_ud = ud;
    s->last_write_ms = ad_clock_mono_ms();
    return s;
}

static void stream_unref(ad_stream *s)
{
    pthread_mutex_lock(&s->lock);
    int left = --s->refs;
    pthread_mutex_unlock(&s->lock);
    if (left) return;
    ad_buf_cleanup(&s->pending);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Caller holds s->lock. */
static void stream_wake(ad_stream *s)
{
    s->last_write_ms = ad_clock_mono_ms();
    if (s->suspended) {
        s->suspended = 0;
        s->sink->wake(s->conn);
    }
}

static void stream_append(ad_stream *s, const char *bytes, size_t n)
{
    pthread_mutex_lock(&s->lock);
    if (!s->aborted && s->pending.len - s->sent + n > STREAM_PENDING_MAX) {
        s->aborted = s->overflowed = 1;
        if (s->on_abort && !s->ended) s->on_abort(s->abort_ud);
        stream_wake(s); /* the reader ends the response */
    } else if (!s->aborted) {
        ad_buf_append(&s->pending, bytes, n);
        stream_wake(s);
    }
    pthread_mutex_unlock(&s->lock);
}

void ad_stream_event(ad_stream *s, const char *event, const char *data, size_t len)
{
    ad_buf b;
    ad_buf_init(&b);
    ad_buf_printf(&b, "event: %s\ndata: ", event);
    ad_buf_append(&b, data, len);
    ad_buf_puts(&b, "\n\n");
    stream_append(s, b.data, b.len);
    ad_buf_cleanup(&b);
}

void ad_stream_end(ad_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->ended = 1;
    if (!s->aborted) stream_wake(s);
    pthread_mutex_unlock(&s->lock);
    stream_unref(s);
}

ad_stream *ad_stream_ref(ad_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->refs++;
    pthread_mutex_unlock(&s->lock);
    return s;
}

void ad_stream_release(ad_stream *s)
{
    stream_unref(s);
}

void ad_stream_attach(ad_stream *s, const ad_stream_sink *sink, void *conn)
{
    pthread_mutex_lock(&s->lock);
    s->sink = sink;
    s->conn = conn;
    pthread_mutex_unlock(&s->lock);
}

ssize_t ad_stream_read(ad_stream *s, char *buf, size_t max)
{
    ssize_t n;
    pthread_mutex_lock(&s->lock);
    size_t avail = s->pending.len - s->sent;
    if (avail) {
        n = (ssize_t)(avail < max ? avail : max);
        memcpy(buf, s->pending.data + s->sent, (size_t)n);
        s->sent += (size_t)n;
        if (s->sent == s->pending.len) {
            ad_buf_reset(&s->pending);
            s->sent = 0;
        }
    } else if (s->ended || s->overflowed) {
        n = AD_STREAM_END;
    } else {
        /* Nothing to send: park the connection until the producer writes. */
        s->suspended = 1;
        s->sink->park(s->conn);
        n = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

void ad_stream_keepalive(ad_stream *s, int64_t now_ms, int64_t idle_ms)
{
    pthread_mutex_lock(&s->lock);
    if (s->sink && !s->ended && !s->aborted && now_ms - s->last_write_ms >= idle_ms) {
        ad_buf_puts(&s->pending, ": keep-alive\n\n");
        stream_wake(s);
    }
    pthread_mutex_unlock(&s->lock);
}

void ad_stream_detach(ad_stream *s, int completed)
{
    pthread_mutex_lock(&s->lock);
    if (!completed && !s->ended && !s->aborted) {
        s->aborted = 1;
        if (s->on_abort) s->on_abort(s->abort_ud);
    }
    s->aborted = 1; /* the connection is gone either way: no more wakes */
    s->suspended = 0;
    pthread_mutex_unlock(&s->lock);
    stream_unref(s);
}
