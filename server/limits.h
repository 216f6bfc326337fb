/*
 * Per-caller limits (issue 11): requests per minute and inferences in flight,
 * keyed by the caller's label ("token:12", "admin"; ad_principal_label).
 *
 * Requests are counted in a fixed window of LIMITS_WINDOW_MS that opens at a
 * caller's first request after the previous window ended; the window's end
 * is what RateLimit-Reset and Retry-After tell the client.
 *
 * Callers hold an opaque `limits` and never learn which backend counts. The
 * in-memory one serves one process: cells in a table striped over
 * LIMITS_STRIPES mutexes (a request locks one stripe, briefly; no global
 * lock), holding only callers seen within the last window or with an
 * inference in flight (others are swept away as the table grows), so memory
 * follows the number of active callers, and those are bounded by the tokens
 * an administrator made (callers are counted after authentication).
 *
 * Several replicas (issue 13) share one request budget per caller through
 * the database: limits_open_storage counts each request with one statement
 * on the table rate_windows (storage/rates.h: an upsert that starts a new
 * window when window_start + LIMITS_WINDOW_MS <= now and else adds one,
 * RETURNING window_start and count), on the calling thread's connection.
 * A caller with a limit of N gets N requests per window across all the
 * replicas together. Inferences in flight stay counted in memory, per
 * replica (the in-memory backend's cells): a caller may run its cap on each
 * replica at once, and a replica that dies takes its slots with it, so no
 * slot outlives a crash. main picks the storage backend when the database is
 * shared (storage_is_shared), the in-memory one on SQLite, where one process
 * owns the file.
 * A backend whose store fails admits the request (fail open) and logs, at
 * most once a minute: limits protect fairness, not correctness, and a
 * database that is down refuses the request's own work with a 503 anyway.
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

/* A limiter whose request windows live in the database (storage/rates.h),
 * shared by every process on it; inferences in flight are counted in memory
 * (per process). A take that cannot reach the database admits the request
 * with a fresh window's headers and logs at most once a minute. */
limits *limits_open_storage(void);

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
