#include "server/sse.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "base/clock.h"
#include "base/mem.h"

struct sse_hold {
    ad_stream *stream;
    sse_hold *prev, *next;     /* the ticker's list */
};

static pthread_mutex_t sse_lock = PTHREAD_MUTEX_INITIALIZER;
static sse_hold *sse_head;
static pthread_t ticker_thread;
static int ticker_running, ticker_stop, ticker_interval_ms;
static pthread_cond_t ticker_cond = PTHREAD_COND_INITIALIZER;

static void sse_park(void *conn)
{
    MHD_suspend_connection(conn);
}

static void sse_wake(void *conn)
{
    MHD_resume_connection(conn);
}

static const ad_stream_sink sse_sink = {sse_park, sse_wake};

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    ssize_t n = ad_stream_read(cls, buf, max);
    return n == AD_STREAM_END ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

static void sse_free_cb(void *cls)
{
    ad_stream_release(cls);
}

struct MHD_Response *sse_response(ad_stream *s, struct MHD_Connection *conn, sse_hold **hold)
{
    ad_stream_attach(s, &sse_sink, conn);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free_cb);
    if (!r) {
        ad_stream_release(s);
        return NULL;
    }
    sse_hold *h = ad_calloc(1, sizeof(*h));
    h->stream = ad_stream_ref(s);
    pthread_mutex_lock(&sse_lock);
    h->next = sse_head;
    if (sse_head) sse_head->prev = h;
    sse_head = h;
    pthread_mutex_unlock(&sse_lock);
    *hold = h;
    return r;
}

void sse_finished(sse_hold *h, int ok)
{
    pthread_mutex_lock(&sse_lock);
    if (h->prev) h->prev->next = h->next;
    else sse_head = h->next;
    if (h->next) h->next->prev = h->prev;
    pthread_mutex_unlock(&sse_lock);
    ad_stream_detach(h->stream, ok);
    free(h);
}

static void *ticker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&sse_lock);
    while (!ticker_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ticker_interval_ms / 1000;
        ts.tv_nsec += (long)(ticker_interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&ticker_cond, &sse_lock, &ts);
        int64_t now = ad_clock_mono_ms();
        for (sse_hold *h = sse_head; h && !ticker_stop; h = h->next)
            ad_stream_keepalive(h->stream, now, ticker_interval_ms);
    }
    pthread_mutex_unlock(&sse_lock);
    return NULL;
}

void sse_ticker_start(int interval_ms)
{
    pthread_mutex_lock(&sse_lock);
    ticker_interval_ms = interval_ms > 0 ? interval_ms : 15000;
    ticker_stop = 0;
    pthread_mutex_unlock(&sse_lock);
    if (pthread_create(&ticker_thread, NULL, ticker_main, NULL) == 0) ticker_running = 1;
}

void sse_ticker_stop(void)
{
    if (!ticker_running) return;
    pthread_mutex_lock(&sse_lock);
    ticker_stop = 1;
    pthread_cond_broadcast(&ticker_cond);
    pthread_mutex_unlock(&sse_lock);
    pthread_join(ticker_thread, NULL);
    ticker_running = 0;
}
