/*
 * Deferred responses: a handler that must wait (inference) sets
 * `res->deferred = 1` BEFORE it starts the work that will complete it, keeps
 * `req->async`, and touches `res` no more; the server suspends the connection
 * without holding a thread. Later, from any thread (possibly before the
 * handler has even returned), exactly one call to ad_async_complete()
 * delivers the response and resumes the connection.
 *
 * The server implements the two operations (an ops table in each request's
 * ad_async), so handlers call into this module and never into server/.
 */
#ifndef AD_API_ASYNC_H
#define AD_API_ASYNC_H

#include "api/request.h"

typedef struct ad_async ad_async;

/* What the server does for a deferred request; see the functions below. */
typedef struct ad_async_ops {
    void (*on_hangup)(ad_async *a, void (*fn)(void *ud), void *ud);
    void (*complete)(ad_async *a, ad_response *res);
} ad_async_ops;

/* A deferred request's handle, embedded in the server's per-request state,
 * which the server's ops find again from it. */
struct ad_async {
    const ad_async_ops *ops;
};

/* Asks to be told if the client hangs up while the request is deferred:
 * `fn(ud)` then runs once, on another thread, and must not block (cancelling
 * the upstream call is the intended use). It never runs after the request's
 * ad_async_complete() has returned. Call before deferring. */
void ad_async_on_hangup(ad_async *a, void (*fn)(void *ud), void *ud);

/* Moves `res` into the connection (the caller's struct is left empty) and
 * resumes it. Call exactly once per deferred request. */
void ad_async_complete(ad_async *a, ad_response *res);

#endif
