/*
 * agentd's Prometheus series: the one catalogue of their names, HELP texts,
 * labels and buckets (docs/metrics.md describes each, and tests/e2e/metrics.c
 * checks that every name it lists is scraped), and one-line recorders for the
 * places that count. They live in base/ because pipeline/ and llm/ count too
 * and may include nothing above them.
 *
 * Every recorder returns at once while metrics are off (config `metrics:
 * false`, or before series_start): one relaxed load of a flag. Label values
 * come from fixed sets only (route patterns, never a raw path; a fixed set of
 * status codes), so the number of series is bounded when the process starts.
 */
#ifndef AD_SERIES_H
#define AD_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Route slots series_http_init accepts; the last slot is "unmatched". */
#define SERIES_MAX_ROUTES 64

/* Allocates the series (all at 0) and turns recording on when `enabled`.
 * Called by main before any thread that records starts. */
void series_start(int enabled);

/* Frees the series; called last, when no thread records any more. */
void series_stop(void);

/* The HTTP series' route labels: route slot i is `patterns[i]` served with
 * `methods[i]` ("GET"; a GET route also gets a "HEAD" child), for i < n <
 * SERIES_MAX_ROUTES; slot n and above mean "unmatched". The strings are not
 * copied. Called once by the server before its threads start. */
void series_http_init(const char *const *patterns, const char *const *methods, size_t n);

/* The slot of requests that matched no route (404, 405, OPTIONS, 501). */
size_t series_http_unmatched(void);

/* One answered request: route slot, method name ("GET", any string: unknown
 * ones count as "other"), the status sent, and when it started
 * (ad_clock_mono_ns); the clock is read only while metrics are on. */
void series_http_done(size_t route_slot, const char *method, int status, int64_t start_ns);

/* One request whose client left before any response was queued. */
void series_http_aborted(size_t route_slot, const char *method);

/* 1 when `status` has a `code` label value of its own (else it counts as
 * "other"). */
int series_http_code_known(int status);

/* Pipeline stage `stage_ix` (0..3, pipeline_stage_names' order) completed in
 * `ns`. */
void series_stage_done(int stage_ix, int64_t ns);

/* The stage names the stage histogram's children carry, in order. */
extern const char *const series_stage_names[4];

typedef enum series_backend { SERIES_BACKEND_LOCAL, SERIES_BACKEND_GEMINI } series_backend;

/* One inference answered (or failed) by `backend` after `ns`. */
void series_inference_done(series_backend backend, int64_t ns);

/* One attempt of an upstream (Gemini) call ended with HTTP `status`. */
void series_upstream_response(long status);

/* One upstream attempt ended without an HTTP status (connect, reset, timeout). */
void series_upstream_transport_error(void);

/* One upstream attempt is retried. */
void series_upstream_retry(void);

/* The token counts of one Gemini answer's usage (negatives count as 0). */
void series_llm_tokens(long prompt, long output, long thinking);

/* One training iteration stored. */
void series_training_iteration(void);

/* One request refused by the rate limit (429 rate_limited). */
void series_rate_limited(void);

/* One inference refused by the cap on inferences in flight (429). */
void series_inference_capped(void);

/* Appends every series above in the text exposition format. */
void series_write_all(ad_buf *b);

#endif
