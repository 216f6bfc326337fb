/*
 * When and how long to wait before trying a Gemini call again.
 *
 * Retried: HTTP 429, 500, 503, 504 and transport failures. Never retried:
 * every other status (400, 403, 404 above all: asking again gets the same no).
 * The wait before retry n (1-based) is exponential backoff with jitter,
 * base * 2^(n-1) capped at cap, and never shorter than what the server asked
 * for (Retry-After or RetryInfo.retryDelay). Everything happens inside one
 * overall deadline: a wait that would end at or past the deadline is not
 * started, and the call ends as "unavailable" (the server is the reason we
 * stopped, and the wait is the caller's retry-after hint) rather than
 * "timeout", which is kept for a deadline that expires while a request is in
 * flight. Pure functions; randomness comes from the caller, so tests are exact.
 */
#ifndef LLM_RETRY_H
#define LLM_RETRY_H

#include <stdint.h>

typedef enum llm_jitter {
    LLM_JITTER_FULL,        /* uniform in [0, min(cap, base * 2^(n-1))] */
    LLM_JITTER_DECORRELATED /* uniform in [base, min(cap, 3 * previous wait)] */
} llm_jitter;

typedef struct llm_retry_policy {
    int max_attempts;   /* attempts in all, the first one included; >= 1 */
    int64_t base_ms;    /* > 0 */
    int64_t cap_ms;     /* >= base_ms */
    llm_jitter jitter;
} llm_retry_policy;

/* A uniform 64-bit random number; `ud` is the caller's state. */
typedef uint64_t (*llm_retry_rand_fn)(void *ud);

/* Nonzero for the HTTP statuses worth asking again: 429, 500, 503, 504. */
int llm_retry_status_retryable(long http_status);

/* The jittered backoff before retry number `retry` (1-based). `prev_wait_ms`
 * is the previous wait (decorrelated jitter grows from it; ignored by full). */
int64_t llm_retry_backoff_ms(const llm_retry_policy *p, int retry, int64_t prev_wait_ms,
                             llm_retry_rand_fn rnd, void *rnd_ud);

/* The decision after a retryable failure. */
typedef struct llm_retry_plan {
    int retry;       /* nonzero: wait wait_ms, then try again */
    int64_t wait_ms; /* the wait; when !retry, still what the server asked or
                      * the backoff, for the caller's retry-after hint */
} llm_retry_plan;

/* Decides after `attempts_made` attempts failed retryably. `hint_ms` is what
 * the server asked for (-1: nothing). No retry when attempts are used up or
 * when now + wait would reach `deadline_ms` (monotonic milliseconds). */
llm_retry_plan llm_retry_plan_next(const llm_retry_policy *p, int attempts_made,
                                   int64_t prev_wait_ms, int64_t hint_ms, int64_t now_ms,
                                   int64_t deadline_ms, llm_retry_rand_fn rnd, void *rnd_ud);

/* The least wait before retry number `retry` (1-based) after `http_status`
 * when the server named none: a 429 means "too fast", so waiting less than
 * a second to ask again only spends quota; it doubles from 1 s (capped at a
 * minute). 0 for every other status. */
int64_t llm_retry_floor_ms(long http_status, int retry);

/* Parses a Retry-After header value in delta-seconds ("3", surrounding
 * blanks allowed) into milliseconds; -1 for anything else, including the
 * HTTP-date form, which Google does not send. Capped at one day. */
int64_t llm_retry_parse_retry_after(const char *value);

/* Parses a protobuf Duration in its JSON form ("3s", "1.5s", "0.250s") into
 * milliseconds, rounding up; -1 when malformed. Capped at one day. */
int64_t llm_retry_parse_duration(const char *value);

#endif
