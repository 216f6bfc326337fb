/*
 * The HTTP server: libmicrohttpd with an internal thread pool on epoll and
 * suspend/resume. It owns the request lifecycle (body limits, content type,
 * JSON parsing, CORS, auth, request ids, the access log) and calls handlers
 * through the routing table; no libmicrohttpd type leaves server/.
 */
#ifndef AD_SERVER_HTTP_H
#define AD_SERVER_HTTP_H

#include <stdint.h>

#include "api/app.h"
#include "base/err.h"
#include "server/limits.h"

typedef struct ad_http ad_http;

/* Binds and starts serving, counting callers' requests and inferences in
 * `lim` (server/limits.h). `app` and `lim` must outlive the server; the
 * caller closes `lim` after http_stop. */
int http_start(ad_http **out, const ad_app *app, limits *lim, ad_err *e);

/* The requests refused by the per-caller limits so far (for /metrics). */
void http_limits_stats(const ad_http *h, limits_stats *out);

/* The bound port (useful with port 0). */
uint16_t http_port(const ad_http *h);

/* Requests between their first byte and their completion. */
int http_active_requests(const ad_http *h);

/* Stops taking new work: every request that arrives from now on is answered
 * 503 (service_stopping); in-flight requests go on. */
void http_quiesce(ad_http *h);

/* Waits until no request is in flight or `deadline_ms` (monotonic) passes;
 * returns the number still active. */
int http_drain(ad_http *h, int64_t deadline_mono_ms);

/* Closes every connection and frees the server. */
void http_stop(ad_http *h);

#endif
