#include "server/stream.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/mem.h"
#include "server/stream_internal.h"

/* Bytes a stream may hold for a client that does not read; past this the
 * stream is cut (the producer is told through on_abort). */
#define STREAM_PENDING_MAX (8u << 20)

struct ad_stream {
    pthread_mutex_t lock;
    int refs;
    ad_buf pending;            /* bytes not yet handed to libmicrohttpd */
    size_t sent;               /* offset of `pending` already handed over */
    int ended, aborted, suspended, overflowed;
    struct MHD_Connection *conn;
    ad_stream_abort_fn on_abort;
    void *abort_ud;
    int64_t last_write_ms;
    ad_stream *prev, *next;    /* the ticker's list */
};

static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;
static ad_stream *streams_head;
static pthread_t ticker_thread;
static int ticker_running, ticker_stop, ticker_interval_ms;
static pthread_cond_t ticker_cond = PTHREAD_COND_INITIALIZER;

ad_stream *ad_stream_new(ad_stream_abort_fn on_abort, void *ud)
{
    ad_stream *s = ad_calloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    ad_buf_init(&s->pending);
    s->refs = 1;
    s->on_abort = on_abort;
    s->abort_ud = ud;
    s->last_write_ms = ad_clock_mono_ms();
    pthread_mutex_lock(&streams_lock);
    s->next = streams_head;
    if (streams_head) streams_head->prev = s;
    streams_head = s;
    pthread_mutex_unlock(&streams_lock);
    return s;
}

static void stream_unref(ad_stream *s)
{
    pthread_mutex_lock(&s->lock);
    int left = --s->refs;
    pthread_mutex_unlock(&s->lock);
    if (left) return;
    pthread_mutex_lock(&streams_lock);
    if (s->prev) s->prev->next = s->next;
    else streams_head = s->next;
    if (s->next) s->next->prev = s->prev;
    pthread_mutex_unlock(&streams_lock);
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
        MHD_resume_connection(s->conn);
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

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    ad_stream *s = cls;
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
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing to send: park the connection until the producer writes. */
        s->suspended = 1;
        MHD_suspend_connection(s->conn);
        n = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void stream_free_cb(void *cls)
{
    stream_unref(cls);
}

void ad_stream_hold(ad_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->refs++;
    pthread_mutex_unlock(&s->lock);
}

ad_stream *ad_stream_ref(ad_stream *s)
{
    ad_stream_hold(s);
    return s;
}

void ad_stream_release(ad_stream *s)
{
    stream_unref(s);
}

struct MHD_Response *ad_stream_response(ad_stream *s, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&s->lock);
    s->conn = conn;
    pthread_mutex_unlock(&s->lock);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free_cb);
    if (!r) stream_unref(s);
    return r;
}

void ad_stream_finished(ad_stream *s, int ok)
{
    pthread_mutex_lock(&s->lock);
    if (!ok && !s->ended && !s->aborted) {
        s->aborted = 1;
        if (s->on_abort) s->on_abort(s->abort_ud);
    }
    s->aborted = 1; /* the connection is gone either way: no more resumes */
    s->suspended = 0;
    pthread_mutex_unlock(&s->lock);
    stream_unref(s);
}

static void *ticker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&streams_lock);
    while (!ticker_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ticker_interval_ms / 1000;
        ts.tv_nsec += (long)(ticker_interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&ticker_cond, &streams_lock, &ts);
        int64_t now = ad_clock_mono_ms();
        for (ad_stream *s = streams_head; s && !ticker_stop; s = s->next) {
            pthread_mutex_lock(&s->lock);
            if (s->conn && !s->ended && !s->aborted && now - s->last_write_ms >= ticker_interval_ms) {
                ad_buf_puts(&s->pending, ": keep-alive\n\n");
                stream_wake(s);
            }
            pthread_mutex_unlock(&s->lock);
        }
    }
    pthread_mutex_unlock(&streams_lock);
    return NULL;
}

void ad_stream_ticker_start(int interval_ms)
{
    pthread_mutex_lock(&streams_lock);
    ticker_interval_ms = interval_ms > 0 ? interval_ms : 15000;
    ticker_stop = 0;
    pthread_mutex_unlock(&streams_lock);
    if (pthread_create(&ticker_thread, NULL, ticker_main, NULL) == 0) ticker_running = 1;
}

void ad_stream_ticker_stop(void)
{
    if (!ticker_running) return;
    pthread_mutex_lock(&streams_lock);
    ticker_stop = 1;
    pthread_cond_broadcast(&ticker_cond);
    pthread_mutex_unlock(&streams_lock);
    pthread_join(ticker_thread, NULL);
    ticker_running = 0;
}
