/*
 * Server-Sent Event streams. A handler creates a stream, hands it to the
 * server in a response (`res->stream`), and a producer on any thread appends
 * events until it ends the stream. The server sends what is buffered,
 * suspends the connection while the buffer is empty (no thread waits), and
 * resumes it when an event arrives. Idle streams get a keep-alive comment.
 *
 * The stream knows no connection type: the server attaches a sink, whose
 * hooks park and wake the connection that drains the stream.
 *
 * Ownership: ad_stream_new() returns the producer's reference. A response's
 * `stream` field owns one more, taken with ad_stream_ref() and handed to the
 * server with the response. The producer's reference ends with
 * ad_stream_end(); the producer must not use the stream after.
 */
#ifndef AD_API_STREAM_H
#define AD_API_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ad_stream ad_stream;

/* Called at most once, with the stream's lock held, if the client goes away
 * before the producer ended the stream: it must not block or call back into
 * the stream (cancelling an upstream call is the intended use). */
typedef void (*ad_stream_abort_fn)(void *ud);

/* Creates a stream; `on_abort` may be NULL. Returns the producer's reference. */
ad_stream *ad_stream_new(ad_stream_abort_fn on_abort, void *ud);

/* Takes another reference (for `res->stream`); returns `s`. */
ad_stream *ad_stream_ref(ad_stream *s);

/* Drops a reference taken with ad_stream_ref() that was never handed over. */
void ad_stream_release(ad_stream *s);

/* Appends `event: <event>\ndata: <data>\n\n`; `data` is one line of JSON. */
void ad_stream_event(ad_stream *s, const char *event, const char *data, size_t len);

/* Marks the end of the stream and drops the producer's reference. */
void ad_stream_end(ad_stream *s);

/* --- The server's side: draining a stream into a connection. --- */

/* How a stream reaches the connection that drains it. Both hooks run with
 * the stream's lock held, so a wake can never be lost between a park and
 * the next event; they must not call back into the stream. */
typedef struct ad_stream_sink {
    void (*park)(void *conn);  /* nothing to send: suspend the connection */
    void (*wake)(void *conn);  /* bytes or the end arrived: resume it */
} ad_stream_sink;

/* ad_stream_read()'s answer once everything was read and the stream ended
 * (or was cut for a reader too slow). */
#define AD_STREAM_END ((ssize_t)-1)

/* Connects `s` to `conn`: from now on the sink's hooks are called with it.
 * `sink` must outlive the stream. */
void ad_stream_attach(ad_stream *s, const ad_stream_sink *sink, void *conn);

/* Copies up to `max` pending bytes into `buf` and returns how many. With
 * nothing pending, returns AD_STREAM_END if the stream is over, else parks
 * the connection and returns 0 (the sink's wake follows the next write). */
ssize_t ad_stream_read(ad_stream *s, char *buf, size_t max);

/* Queues a keep-alive comment, and wakes the connection, if the attached
 * stream is still open and nothing was written for `idle_ms` before `now_ms`
 * (monotonic). */
void ad_stream_keepalive(ad_stream *s, int64_t now_ms, int64_t idle_ms);

/* The connection is done with the stream (`completed` 0: the client went
 * away): fires on_abort if the producer has not ended the stream, stops all
 * further hook calls, and drops the reference the caller held. */
void ad_stream_detach(ad_stream *s, int completed);

#endif
