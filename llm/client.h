/*
 * The asynchronous Gemini client.
 *
 * One client owns one thread that runs a libcurl multi loop; every call is a
 * transfer on that loop, so no caller thread ever waits on the network.
 * Submitting queues the call and returns at once; the call's callbacks run on
 * the client's thread:
 *   - on_delta (streaming calls only): each text delta, in order, as it arrives;
 *   - on_done: exactly once per successfully submitted call, whatever happens
 *     (success, failure, cancel, client stop), always last.
 * Callbacks must not block: they run on the loop that drives every other call.
 * They may call llm_call_cancel and llm_call_release, and may submit new calls.
 *
 * The API key travels only in the x-goog-api-key header: never in a URL, a
 * log line, or a result message.
 */
#ifndef LLM_CLIENT_H
#define LLM_CLIENT_H

#include <stddef.h>

#include "base/err.h"
#include "llm/gemini.h"

/* A stable (GA) model on Google's models page; see README "Gemini model". */
#define LLM_DEFAULT_MODEL "gemini-3.8-flash"
#define LLM_DEFAULT_BASE_URL "https://generativelanguage.googleapis.com"

/* Client settings. Borrowed by llm_client_start, which copies the strings.
 * A zero numeric field (or NULL string) takes the default shown. */
typedef struct llm_config {
    const char *api_key;      /* required: GEMINI_API_KEY */
    const char *model;        /* GEMINI_MODEL, default LLM_DEFAULT_MODEL */
    const char *base_url;     /* GEMINI_BASE_URL, default LLM_DEFAULT_BASE_URL */
    int deadline_ms;          /* whole call, all attempts and waits: 30000 */
    int max_attempts;         /* first attempt included: 4 */
    int backoff_base_ms;      /* 250 */
    int backoff_cap_ms;       /* 8000 */
    int connect_timeout_ms;   /* per connection: 5000 */
    int max_transfers;        /* transfers in flight at once; more wait in line: 1000 */
    int max_host_connections; /* sockets to the Gemini host (HTTP/2 multiplexes
                               * many transfers on one): max_transfers */
} llm_config;

typedef enum llm_outcome {
    LLM_OK,           /* text is the answer */
    LLM_BLOCKED,      /* Gemini refused: block_reason says why */
    LLM_REJECTED,     /* Gemini answered 4xx: message is its error.message */
    LLM_UNAVAILABLE,  /* retries exhausted, or the next wait would pass the
                       * deadline; retry_after_s is a hint */
    LLM_TIMEOUT,      /* the deadline passed while a request was in flight */
    LLM_BAD_RESPONSE, /* the body is not Gemini JSON (or SSE of it) */
    LLM_CANCELLED,    /* llm_call_cancel or llm_client_stop */
    LLM_TRANSPORT,    /* the connection failed after a stream had started
                       * relaying deltas, so it could not be retried */
    LLM_NO_ANSWER,    /* Gemini finished without answer text: finish_reason
                       * (OTHER, STOP with nothing, an unknown reason) and
                       * finish_message say why */
    LLM_THINKING_EXHAUSTED /* MAX_TOKENS before any answer text: thinking
                            * used the whole maxOutputTokens */
} llm_outcome;

/* A short snake_case name, e.g. "bad_response". */
const char *llm_outcome_name(llm_outcome o);

/* What on_done receives. Every pointer is valid only during on_done; strings
 * are never NULL ("" when absent). Token counts are -1 when not reported;
 * has_usage says whether Gemini sent usageMetadata at all. */
typedef struct llm_result {
    llm_outcome outcome;
    long http_status;          /* of the last attempt; 0 if none got an answer */
    const char *model;         /* the model the call went to */
    const char *text;          /* the whole answer (also for streams) */
    size_t text_len;
    const char *finish_reason; /* e.g. "STOP", "MAX_TOKENS"; "" if none came */
    const char *finish_message;/* Gemini's finishMessage, or "" */
    const char *block_reason;  /* e.g. "SAFETY", "RECITATION" when LLM_BLOCKED */
    const char *upstream_status; /* Google's error status ("CANCELLED", ...) when
                                  * an error envelope ended the call, or "" */
    int has_usage;
    long prompt_tokens;
    long output_tokens;        /* the answer (candidatesTokenCount) */
    long thinking_tokens;      /* thoughtsTokenCount */
    long total_tokens;         /* Gemini's totalTokenCount */
    int retries;               /* attempts made minus one */
    int retry_after_s;         /* LLM_UNAVAILABLE: when to try again, >= 1 */
    const char *message;       /* for humans; never contains the API key */
} llm_result;

typedef void (*llm_delta_fn)(void *ud, const char *text, size_t len);
typedef void (*llm_done_fn)(void *ud, const llm_result *r);

typedef struct llm_client llm_client;
typedef struct llm_call llm_call;

/* Validates `cfg`, initializes libcurl once per process, and starts the
 * client's thread. Returns 0 and sets *out, or AD_EINVAL (a missing key, a
 * model name with characters outside [A-Za-z0-9._-], a key with control
 * characters) or AD_EINTERNAL with `e` set. */
int llm_client_start(llm_client **out, const llm_config *cfg, ad_err *e);

/* Queues a call. `req` and its strings are copied before this returns.
 * `on_delta` may be NULL (and is ignored unless req->stream); `on_done` is
 * required. On success returns 0, and on_done will fire exactly once; if
 * `out` is not NULL it receives a handle the caller owns and must give back
 * with llm_call_release. On failure (AD_EINVAL: no prompt, bad few-shot pair)
 * no callback ever fires. After llm_client_stop it fails with AD_ESTATE;
 * it must not race with llm_client_free. */
int llm_client_submit(llm_client *c, const llm_request *req, llm_delta_fn on_delta,
                      llm_done_fn on_done, void *ud, llm_call **out, ad_err *e);

/* Asks for the call to end: its transfer (if any) is aborted, which closes the
 * upstream connection, and on_done fires on the client's thread with
 * LLM_CANCELLED, unless the call had already finished, in which case nothing
 * happens. Thread-safe, callable from any thread (callbacks included), any
 * number of times, until the handle is released; it never blocks on the
 * network and never fires a callback itself. */
void llm_call_cancel(llm_call *call);

/* Gives back the handle from llm_client_submit; the handle is invalid after.
 * Releasing does not cancel: the call runs on and on_done still fires. */
void llm_call_release(llm_call *call);

/* Cancels every call still queued, waiting or in flight (their on_done fires
 * with LLM_CANCELLED, on the client's thread, before this returns) and joins
 * the thread. The client stays allocated: a submit from now on fails with
 * AD_ESTATE and fires nothing, so threads that still hold the pointer are
 * safe. Handles not yet released stay valid for llm_call_cancel (a no-op now)
 * and llm_call_release. Idempotent. Not from a callback. */
void llm_client_stop(llm_client *c);

/* Stops the client if needed and frees it; nothing may use it after. */
void llm_client_free(llm_client *c);

/* Nonzero when `name` may be sent as a model: [A-Za-z0-9._-]+, optionally
 * after "models/". */
int llm_model_name_valid(const char *name);

/* Nonzero when `name` looks like a Gemini model name ("gemini-..."), the test
 * for an agent's base_model to be used for its calls. */
int llm_model_is_gemini(const char *name);

/* What looking the model up (GET /v1beta/models/{model}) found. */
typedef enum llm_model_state {
    LLM_MODEL_UNCHECKED, /* not looked up (yet), or the lookup could not tell */
    LLM_MODEL_OK,        /* Gemini serves it and it can generateContent */
    LLM_MODEL_MISSING,   /* 404: no such model, or a retired one */
    LLM_MODEL_UNUSABLE   /* it exists but does not offer generateContent */
} llm_model_state;

/* A short snake_case name: "unchecked", "ok", "missing", "unusable". */
const char *llm_model_state_name(llm_model_state s);

typedef struct llm_model_check {
    llm_model_state state;
    char model[128];
    char message[AD_ERR_MSG_MAX]; /* for humans; never contains the key */
} llm_model_check;

/* Looks `cfg`'s model up with one GET, blocking at most `timeout_ms`, and
 * says what it found. A model Google lists as shut down (a small built-in
 * table) that is not found is reported as retired. Never fails: a lookup
 * that cannot complete is LLM_MODEL_UNCHECKED with the reason. */
void llm_model_lookup(const llm_config *cfg, int timeout_ms, llm_model_check *out);

/* Starts llm_model_lookup for the client's model on a thread of its own, so
 * start-up does not wait for it; llm_client_stop abandons it (within about a
 * second, not the whole timeout) and joins it. Call once. */
void llm_client_check_model(llm_client *c, int timeout_ms);

/* The latest lookup result (LLM_MODEL_UNCHECKED until one finished).
 * Thread-safe. */
void llm_client_model_status(llm_client *c, llm_model_check *out);

#endif
