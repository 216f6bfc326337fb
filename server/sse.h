/* Sending an event stream (api/stream.h) over libmicrohttpd, and the
 * keep-alive ticker for every stream being sent (server/http.c and main()). */
#ifndef AD_SERVER_SSE_H
#define AD_SERVER_SSE_H

#include <microhttpd.h>

#include "api/stream.h"

/* The server's hold on a stream it sends, from the response to completion. */
typedef struct sse_hold sse_hold;

/* Builds the libmicrohttpd response that drains `s` on `conn`, consuming the
 * reference the handler's response handed over (released when libmicrohttpd
 * frees the response), and registers the stream with the ticker. `*hold` is
 * the connection's own reference, given back with sse_finished(). NULL when
 * libmicrohttpd cannot build a response (then `*hold` is untouched). */
struct MHD_Response *sse_response(ad_stream *s, struct MHD_Connection *conn, sse_hold **hold);

/* The request ended (`ok` false: the client went away): unregisters the
 * stream, tells the producer if it had not ended, and drops the hold. */
void sse_finished(sse_hold *hold, int ok);

/* Starts and stops the keep-alive ticker (one thread for all streams). */
void sse_ticker_start(int interval_ms);
void sse_ticker_stop(void);

#endif
