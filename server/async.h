/*
 * Deferred responses: a handler that must wait (inference) sets
 * `res->deferred = 1` and keeps `req->async`; the server suspends the
 * connection without holding a thread. Later, from any thread, exactly one
 * call to ad_async_complete() delivers the response and resumes it.
 */
#ifndef AD_SERVER_ASYNC_H
#define AD_SERVER_ASYNC_H

#include "server/request.h"

/* Moves `res` into the connection (the caller's struct is left empty) and
 * resumes it. Call exactly once per deferred request. */
void ad_async_complete(struct ad_async *a, ad_response *res);

#endif
