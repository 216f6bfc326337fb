/*
 * A fake Gemini API server for tests and benchmarks, on libmicrohttpd, bound
 * to 127.0.0.1. It speaks
 *   POST /v1beta/models/{model}:generateContent
 *   POST /v1beta/models/{model}:streamGenerateContent?alt=sse
 *   GET  /v1beta/models/{model}   (a Model resource; 404 for "gemini-2.5-flash"
 *        and names starting "missing-", no generateContent for "embed-...")
 * with Gemini's JSON shapes and error envelope, checks x-goog-api-key like
 * Google does (missing: 403 PERMISSION_DENIED; wrong: 400 INVALID_ARGUMENT /
 * API_KEY_INVALID; a `key` query parameter is accepted too, as Google does, so
 * tests can see a client that leaks it into the URL), records every request,
 * and answers "ANSWER: " followed by the first 40 characters of the last text
 * part of the last user turn, in two parts (and in several chunks when
 * streamed, the last one with finishReason STOP and usageMetadata).
 *
 * Faults are queued with fake_gemini_push_fault and consumed one per request,
 * first in first out, by requests that reach a model (a wrong path or key is
 * answered without taking one); with no fault queued the answer is normal.
 * Waits (the response delay, stream chunk gaps, hangs) suspend the connection
 * and a timer thread resumes it, so 500 slow requests hold no thread each.
 */
#ifndef FAKE_GEMINI_H
#define FAKE_GEMINI_H

#include <stddef.h>
#include <stdint.h>

/* The only key the fake accepts. */
#define FAKE_GEMINI_KEY "fk-test-0123456789-SECRET-abcdef"

typedef enum fake_fault_kind {
    FAKE_KIND_NONE,
    FAKE_KIND_429,         /* RESOURCE_EXHAUSTED, with Retry-After and/or RetryInfo */
    FAKE_KIND_500,         /* INTERNAL */
    FAKE_KIND_503,         /* UNAVAILABLE */
    FAKE_KIND_504,         /* DEADLINE_EXCEEDED */
    FAKE_KIND_400,         /* INVALID_ARGUMENT, message FAKE_400_MESSAGE */
    FAKE_KIND_NON_JSON,    /* 200 with an HTML page */
    FAKE_KIND_HANG,        /* never answers (until the fake stops) */
    FAKE_KIND_SLOW_STREAM, /* streams with 200 ms between chunks */
    FAKE_KIND_STREAM_CUT,  /* streams two chunks, then drops the connection */
    FAKE_KIND_BLOCKED,     /* promptFeedback.blockReason = SAFETY, no candidates */
    FAKE_KIND_SAFETY,      /* a candidate with finishReason SAFETY and no text */
    FAKE_KIND_NO_CANDIDATES, /* 200 with "candidates": [] and usage (one chunk when streamed) */
    FAKE_KIND_REPLAY       /* a recorded answer: see fake_gemini_push_replay */
} fake_fault_kind;

typedef struct fake_fault {
    fake_fault_kind kind;
    int retry_after_s;      /* FAKE_KIND_429: Retry-After header, or -1 */
    int64_t retry_delay_ms; /* FAKE_KIND_429: RetryInfo.retryDelay, or -1 */
    int status;             /* FAKE_KIND_REPLAY: the HTTP status */
    char *body;             /* FAKE_KIND_REPLAY: the fake's own copy */
} fake_fault;

#define FAKE_400_MESSAGE "Request contains an invalid argument."
#define FAKE_SLOW_STREAM_GAP_MS 200

#define FAKE_429_RETRY_AFTER(s) ((fake_fault){FAKE_KIND_429, (s), -1, 0, NULL})
#define FAKE_RETRYINFO(ms) ((fake_fault){FAKE_KIND_429, -1, (ms), 0, NULL})
#define FAKE_500 ((fake_fault){FAKE_KIND_500, -1, -1, 0, NULL})
#define FAKE_503 ((fake_fault){FAKE_KIND_503, -1, -1, 0, NULL})
#define FAKE_504 ((fake_fault){FAKE_KIND_504, -1, -1, 0, NULL})
#define FAKE_400 ((fake_fault){FAKE_KIND_400, -1, -1, 0, NULL})
#define FAKE_NON_JSON ((fake_fault){FAKE_KIND_NON_JSON, -1, -1, 0, NULL})
#define FAKE_HANG ((fake_fault){FAKE_KIND_HANG, -1, -1, 0, NULL})
#define FAKE_SLOW_STREAM ((fake_fault){FAKE_KIND_SLOW_STREAM, -1, -1, 0, NULL})
#define FAKE_STREAM_CUT ((fake_fault){FAKE_KIND_STREAM_CUT, -1, -1, 0, NULL})
#define FAKE_BLOCKED ((fake_fault){FAKE_KIND_BLOCKED, -1, -1, 0, NULL})
#define FAKE_SAFETY ((fake_fault){FAKE_KIND_SAFETY, -1, -1, 0, NULL})
#define FAKE_NO_CANDIDATES ((fake_fault){FAKE_KIND_NO_CANDIDATES, -1, -1, 0, NULL})

typedef struct fake_gemini fake_gemini;

/* One request as received. Strings are the caller's after
 * fake_gemini_request_get; free them with fake_gemini_request_cleanup. */
typedef struct fake_gemini_request {
    char *method;
    char *url;     /* path, then "?" and the query arguments if there were any */
    char *headers; /* "Name: value\n" for every request header, in order */
    char *body;
} fake_gemini_request;

/* Starts the fake on 127.0.0.1:*port (0: an ephemeral port) and writes the
 * port it listens on to *port. Returns 0, or -1 when it cannot listen. */
int fake_gemini_start(fake_gemini **out, unsigned *port);

/* Releases every waiting connection (hangs included), stops, frees. */
void fake_gemini_stop(fake_gemini *f);

/* Every answer (not faults) waits this long first; 0 by default. */
void fake_gemini_set_delay_ms(fake_gemini *f, int ms);
/* Gap between stream chunks for normal streams; 20 ms by default. */
void fake_gemini_set_chunk_gap_ms(fake_gemini *f, int ms);

/* Queues a fault for a coming request. Thread-safe. */
void fake_gemini_push_fault(fake_gemini *f, fake_fault fault);

/* Queues a recorded answer for a coming model request (a copy of `body` is
 * kept). A generateContent request gets `body` as it is, with `status`. A
 * streamGenerateContent request with status 200 gets it as an event stream
 * cut after every blank line, one piece per chunk gap, so a fixture is
 * written exactly as Google's wire carries it (`data:` lines, or a bare JSON
 * error at the end); with another status it gets the whole body at once.
 * Thread-safe. */
void fake_gemini_push_replay(fake_gemini *f, int status, const char *body);

/* How many requests arrived so far (recorded or not: the first 10000 are). */
size_t fake_gemini_request_count(fake_gemini *f);
/* Copies request `i` (0-based, arrival order). Returns 0, or -1 if none. */
int fake_gemini_request_get(fake_gemini *f, size_t i, fake_gemini_request *out);
void fake_gemini_request_cleanup(fake_gemini_request *r);

/* Connections that ended without completing their response (the client went
 * away, or a fault cut them). */
size_t fake_gemini_dropped_count(fake_gemini *f);

#endif
