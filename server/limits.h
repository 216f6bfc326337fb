/*
 * Per-caller limits (issue 11): requests per minute and inferences in flight,
 * keyed by the caller's label ("token:12", "admin"; ad_principal_label).
 *
 * Requests are counted in a fixed window of LIMITS_WINDOW_MS that opens at a
 * caller's first request after the previous window ended; the window's end
 * is what RateLimit-Reset and Retry-After tell the client.
 *
 * Callers hold an opaque `limits` and never learn which backend counts. The
 * one here is in memory, for one process: cells in a table striped over
 * LIMITS_STRIPES mutexes (a request locks one stripe, briefly; no global
 * lock), holding only callers seen within the last window or with an
 * inference in flight (others are swept away as the table grows), so memory
 * follows the number of active callers, and those are bounded by the tokens
 * an administrator made (callers are counted after authentication).
 *
 * Several replicas (issue 13) share one budget by giving limits_open a
 * backend on the shared database, with the same three operations:
 * - take: one statement per request on a table (caller PRIMARY KEY,
 *   window_start, count), an upsert that starts a new window when
 *   window_start + LIMITS_WINDOW_MS <= now and else adds one, RETURNING
 *   window_start and count (PostgreSQL and SQLite both have both);
 * - enter/leave: a row per inference in flight (caller, replica, request id,
 *   expires_at): enter inserts it when the caller's unexpired rows are fewer
 *   than the cap (one transaction), leave deletes it; the expiry, renewed
 *   while the request runs, frees the slots of a replica that died.
 * A backend whose store fails should admit the request (fail open) and log:
 * limits protect fairness, not correctness.
 */
#ifndef AD_SERVER_LIMITS_H
#define AD_SERVER_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#define LIMITS_WINDOW_MS 60000
#define LIMITS_STRIPES 64

/* What one request's count says, for the RateLimit-* headers. */
typedef struct limits_decision {
    int allowed;
    int limit;           /* RateLimit-Limit */
    int remaining;       /* RateLimit-Remaining, after this request */
    int reset_s;         /* RateLimit-Reset: whole seconds until the window ends, >= 1 */
} limits_decision;

/* A backend: `self` is its state. take counts one request of `caller`
 * against `limit` (> 0) at wall-clock `now_ms`; enter takes one of `cap`
 * (> 0) inference slots (1) or refuses (0); leave gives one back. All three
 * are called concurrently from every HTTP thread. */
typedef struct limits_backend {
    void (*take)(void *self, const char *caller, int limit, int64_t now_ms, limits_decision *out);
    int (*enter)(void *self, const char *caller, int cap);
    void (*leave)(void *self, const char *caller);
    void (*destroy)(void *self);
} limits_backend;

typedef struct limits limits;

/* A limiter on `backend` (which `self` belongs to; limits_close destroys it). */
limits *limits_open(const limits_backend *backend, void *self);

/* A limiter on the in-memory backend. */
limits *limits_open_memory(void);

/* Destroys the limiter and its backend. */
void limits_close(limits *l);

/* Counts one request of `caller` (at most 39 bytes) against `limit` per
 * window; `out->allowed` is 0 when it is over (counted in the rate-limited
 * total). */
void limits_take(limits *l, const char *caller, int limit, int64_t now_ms, limits_decision *out);

/* Takes an inference slot of `caller` under `cap`: 1, or 0 when `cap` are in
 * flight (counted in the inference-capped total). Every 1 must be matched by
 * exactly one limits_inference_leave. */
int limits_inference_enter(limits *l, const char *caller, int cap);
void limits_inference_leave(limits *l, const char *caller);

/* Requests refused so far (429 rate_limited, 429 too_many_inferences); read
 * by the metrics endpoint. */
typedef struct limits_stats {
    uint64_t rate_limited;
    uint64_t inference_capped;
} limits_stats;
void limits_get_stats(const limits *l, limits_stats *out);

/* The number of callers the in-memory backend `self` holds cells for (tests). */
size_t limits_memory_cells(const limits *l);

#endif
