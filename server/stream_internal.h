/* The server's side of a stream (server/http.c only). */
#ifndef AD_SERVER_STREAM_INTERNAL_H
#define AD_SERVER_STREAM_INTERNAL_H

#include <microhttpd.h>

#include "server/stream.h"

/* Builds the libmicrohttpd response that drains `s` on `conn`; consumes the
 * reference the response handed over, released when libmicrohttpd frees it. */
struct MHD_Response *ad_stream_response(ad_stream *s, struct MHD_Connection *conn);

/* Takes a reference for the connection's own bookkeeping. */
void ad_stream_hold(ad_stream *s);

/* The request ended (`ok` false: the client went away): fires on_abort if
 * the producer has not ended the stream, and drops the ad_stream_hold ref. */
void ad_stream_finished(ad_stream *s, int ok);

#endif
