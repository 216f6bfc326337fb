/* Tests api/stream.c: a stream drained through a sink standing in for the
 * server's connection (park = suspend, wake = resume). */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/stream.h"
#include "base/buf.h"
#include "base/clock.h"

Suite *api_stream_suite(void);

/* The connection the sink parks and wakes; the lock and condition let a
 * reader thread wait while parked, as a suspended connection does. */
typedef struct conn {
    pthread_mutex_t lock;
    pthread_cond_t woken;
    int parks, wakes, parked;
} conn;

static void conn_init(conn *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->woken, NULL);
}

static void conn_cleanup(conn *c)
{
    pthread_cond_destroy(&c->woken);
    pthread_mutex_destroy(&c->lock);
}

static void conn_park(void *ud)
{
    conn *c = ud;
    pthread_mutex_lock(&c->lock);
    c->parks++;
    c->parked = 1;
    pthread_mutex_unlock(&c->lock);
}

static void conn_wake(void *ud)
{
    conn *c = ud;
    pthread_mutex_lock(&c->lock);
    c->wakes++;
    c->parked = 0;
    pthread_cond_signal(&c->woken);
    pthread_mutex_unlock(&c->lock);
}

static const ad_stream_sink test_sink = {conn_park, conn_wake};

static void count_abort(void *ud)
{
    (*(int *)ud)++;
}

/* Reads everything pending into `out` (chunks of `chunk` bytes); returns the
 * last answer of ad_stream_read (0: parked, AD_STREAM_END: over). */
static ssize_t drain(ad_stream *s, ad_buf *out, size_t chunk)
{
    char buf[4096];
    ck_assert_uint_le(chunk, sizeof(buf));
    ssize_t n;
    while ((n = ad_stream_read(s, buf, chunk)) > 0) ad_buf_append(out, buf, (size_t)n);
    return n;
}

START_TEST(test_events_read_in_order_in_small_chunks)
{
    conn c;
    conn_init(&c);
    ad_stream *s = ad_stream_new(NULL, NULL);
    ad_stream *held = ad_stream_ref(s);
    ad_stream_attach(held, &test_sink, &c);
    ad_stream_event(s, "delta", "{\"text\":\"a\"}", 12);
    ad_stream_event(s, "done", "{}", 2);
    ad_buf out;
    ad_buf_init(&out);
    ck_assert_int_eq(drain(held, &out, 5), 0);
    ck_assert_str_eq(out.data, "event: delta\ndata: {\"text\":\"a\"}\n\nevent: done\ndata: {}\n\n");
    ck_assert_int_eq(c.parks, 1);
    ad_stream_end(s);
    ck_assert_int_eq(c.wakes, 1);
    ck_assert_int_eq(drain(held, &out, 5), AD_STREAM_END);
    ad_stream_detach(held, 1);
    ad_buf_cleanup(&out);
    conn_cleanup(&c);
}
END_TEST

START_TEST(test_parked_connection_woken_once_per_park)
{
    conn c;
    conn_init(&c);
    ad_stream *s = ad_stream_new(NULL, NULL);
    ad_stream *held = ad_stream_ref(s);
    ad_stream_attach(held, &test_sink, &c);
    char buf[64];
    ck_assert_int_eq(ad_stream_read(held, buf, sizeof(buf)), 0);
    ck_assert_int_eq(c.parks, 1);
    ck_assert_int_eq(c.parked, 1);
    /* Two events while parked: one resume, not two (libmicrohttpd must not
     * be resumed twice for one suspend). */
    ad_stream_event(s, "delta", "1", 1);
    ad_stream_event(s, "delta", "2", 1);
    ck_assert_int_eq(c.wakes, 1);
    ck_assert_int_eq(c.parked, 0);
    ad_buf out;
    ad_buf_init(&out);
    ck_assert_int_eq(drain(held, &out, sizeof(buf)), 0);
    ck_assert_str_eq(out.data, "event: delta\ndata: 1\n\nevent: delta\ndata: 2\n\n");
    ck_assert_int_eq(c.parks, 2);
    ad_stream_end(s);
    ck_assert_int_eq(c.wakes, 2);
    ck_assert_int_eq(ad_stream_read(held, buf, sizeof(buf)), AD_STREAM_END);
    ad_stream_detach(held, 1);
    ad_buf_cleanup(&out);
    conn_cleanup(&c);
}
END_TEST

START_TEST(test_client_gone_aborts_producer_once)
{
    conn c;
    conn_init(&c);
    int aborts = 0;
    ad_stream *s = ad_stream_new(count_abort, &aborts);
    ad_stream *held = ad_stream_ref(s);
    ad_stream_attach(held, &test_sink, &c);
    char buf[64];
    ck_assert_int_eq(ad_stream_read(held, buf, sizeof(buf)), 0);
    ad_stream_detach(held, 0);
    ck_assert_int_eq(aborts, 1);
    /* The producer keeps writing until it learns of the abort: nothing is
     * queued and the gone connection is not woken. */
    ad_stream_event(s, "delta", "late", 4);
    ad_stream_end(s);
    ck_assert_int_eq(aborts, 1);
    ck_assert_int_eq(c.wakes, 0);
    conn_cleanup(&c);
}
END_TEST

START_TEST(test_end_before_detach_is_no_abort)
{
    conn c;
    conn_init(&c);
    int aborts = 0;
    ad_stream *s = ad_stream_new(count_abort, &aborts);
    ad_stream *held = ad_stream_ref(s);
    ad_stream_attach(held, &test_sink, &c);
    ad_stream_event(s, "done", "{}", 2);
    ad_stream_end(s);
    /* The client left with the last event unread: the producer had finished. */
    ad_stream_detach(held, 0);
    ck_assert_int_eq(aborts, 0);
    conn_cleanup(&c);
}
END_TEST

START_TEST(test_unread_overflow_cuts_stream)
{
    conn c;
    conn_init(&c);
    int aborts = 0;
    ad_stream *s = ad_stream_new(count_abort, &aborts);
    ad_stream *held = ad_stream_ref(s);
    ad_stream_attach(held, &test_sink, &c);
    size_t chunk = 1u << 20;
    char *data = malloc(chunk);
    ck_assert_ptr_nonnull(data);
    memset(data, 'x', chunk);
    for (int i = 0; i < 12; i++) ad_stream_event(s, "delta", data, chunk);
    free(data);
    ck_assert_int_eq(aborts, 1);
    /* What was buffered before the cut is still sent, then the response ends. */
    ad_buf out;
    ad_buf_init(&out);
    ck_assert_int_eq(drain(held, &out, 4096), AD_STREAM_END);
    ck_assert_uint_gt(out.len, 7u << 20);
    ck_assert_uint_le(out.len, 8u << 20);
    ad_stream_end(s);
    ad_stream_detach(held, 1);
    ck_assert_int_eq(aborts, 1);
    ad_buf_cleanup(&out);
    conn_cleanup(&c);
}
END_TEST

START_TEST(test_keepalive_only_for_idle_open_attached_streams)
{
    conn c;
    conn_init(&c);
    ad_stream *s = ad_stream_new(NULL, NULL);
    ad_stream *held = ad_stream_ref(s);
    int64_t now = ad_clock_mono_ms();
    /* Not attached yet: no connection to keep alive. */
    ad_stream_keepalive(held, now + 60000, 1000);
    ad_stream_attach(held, &test_sink, &c);
    char buf[64];
    ck_assert_int_eq(ad_stream_read(held, buf, sizeof(buf)), 0);
    /* Written to just now: not idle. */
    ad_stream_keepalive(held, now, 60000);
    ck_assert_int_eq(c.wakes, 0);
    ad_stream_keepalive(held, now + 60000, 1000);
    ck_assert_int_eq(c.wakes, 1);
    ad_buf out;
    ad_buf_init(&out);
    ck_assert_int_eq(drain(held, &out, sizeof(buf)), 0);
    ck_assert_str_eq(out.data, ": keep-alive\n\n");
    /* The comment counts as a write: idle again only after another period. */
    ad_stream_keepalive(held, ad_clock_mono_ms(), 60000);
    ck_assert_int_eq(c.wakes, 1);
    ad_stream_end(s);
    ad_stream_keepalive(held, ad_clock_mono_ms() + 120000, 1000);
    ck_assert_int_eq(drain(held, &out, sizeof(buf)), AD_STREAM_END);
    ck_assert_str_eq(out.data, ": keep-alive\n\n");
    ad_stream_detach(held, 1);
    ad_buf_cleanup(&out);
    conn_cleanup(&c);
}
END_TEST

#define PRODUCER_EVENTS 2000

static void *producer_main(void *arg)
{
    ad_stream *s = arg;
    char data[32];
    for (int i = 0; i < PRODUCER_EVENTS; i++) {
        int n = snprintf(data, sizeof(data), "%d", i);
        ad_stream_event(s, "delta", data, (size_t)n);
    }
    ad_stream_end(s);
    return NULL;
}

/* A reader that waits while parked, as libmicrohttpd does for a suspended
 * connection, gets every event a producer on another thread writes: a wake
 * is never lost between its park and the producer's next event. */
START_TEST(test_producer_thread_reader_parks_and_wakes)
{
    conn c;
    conn_init(&c);
    ad_stream *s = ad_stream_new(NULL, NULL);
    ad_stream *held = ad_stream_ref(s);
    ad_stream_attach(held, &test_sink, &c);
    pthread_t producer;
    ck_assert_int_eq(pthread_create(&producer, NULL, producer_main, s), 0);
    ad_buf out;
    ad_buf_init(&out);
    ssize_t n;
    while ((n = drain(held, &out, 1000)) == 0) {
        pthread_mutex_lock(&c.lock);
        while (c.parked) pthread_cond_wait(&c.woken, &c.lock);
        pthread_mutex_unlock(&c.lock);
    }
    ck_assert_int_eq(n, AD_STREAM_END);
    ck_assert_int_eq(pthread_join(producer, NULL), 0);
    ad_buf expect;
    ad_buf_init(&expect);
    for (int i = 0; i < PRODUCER_EVENTS; i++) ad_buf_printf(&expect, "event: delta\ndata: %d\n\n", i);
    ck_assert_uint_eq(out.len, expect.len);
    ck_assert_int_eq(memcmp(out.data, expect.data, out.len), 0);
    ad_stream_detach(held, 1);
    ad_buf_cleanup(&expect);
    ad_buf_cleanup(&out);
    conn_cleanup(&c);
}
END_TEST

Suite *api_stream_suite(void)
{
    Suite *s = suite_create("api_stream");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_events_read_in_order_in_small_chunks);
    tcase_add_test(tc, test_parked_connection_woken_once_per_park);
    tcase_add_test(tc, test_client_gone_aborts_producer_once);
    tcase_add_test(tc, test_end_before_detach_is_no_abort);
    tcase_add_test(tc, test_unread_overflow_cuts_stream);
    tcase_add_test(tc, test_keepalive_only_for_idle_open_attached_streams);
    tcase_add_test(tc, test_producer_thread_reader_parks_and_wakes);
    suite_add_tcase(s, tc);
    return s;
}
