/*
 * Server-Sent Event streams. A handler creates a stream, hands it to the
 * server in a response (`res->stream`), and a producer on any thread appends
 * events until it ends the stream. The server sends what is buffered,
 * suspends the connection while the buffer is empty (no thread waits), and
 * resumes it when an event arrives. Idle streams get a keep-alive comment.
 *
 * Ownership: ad_stream_new() returns the producer's reference. A response's
 * `stream` field owns one more, taken with ad_stream_ref() and handed to the
 * server with the response. The producer's reference ends with
 * ad_stream_end(); the producer must not use the stream after.
 */
#ifndef AD_SERVER_STREAM_H
#define AD_SERVER_STREAM_H

#include <stddef.h>

typedef struct ad_stream ad_stream;

/* Called at most once, with the stream's lock held, if the client goes away
 * before the producer ended the stream: it must not block or call back into
 * the stream (cancelling an upstream call is the intended use). */
typedef void (*ad_stream_abort_fn)(void *ud);

ad_stream *ad_stream_new(ad_stream_abort_fn on_abort, void *ud);

/* Takes another reference (for `res->stream`); returns `s`. */
ad_stream *ad_stream_ref(ad_stream *s);

/* Drops a reference taken with ad_stream_ref() that was never handed over. */
void ad_stream_release(ad_stream *s);

/* Appends `event: <event>\ndata: <data>\n\n`; `data` is one line of JSON. */
void ad_stream_event(ad_stream *s, const char *event, const char *data, size_t len);

/* Marks the end of the stream and drops the producer's reference. */
void ad_stream_end(ad_stream *s);

/* Starts and stops the keep-alive ticker (one thread for all streams). */
void ad_stream_ticker_start(int interval_ms);
void ad_stream_ticker_stop(void);

#endif
