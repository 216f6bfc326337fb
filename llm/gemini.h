/*
 * The Gemini v1beta wire format: building a generateContent request body,
 * reading a GenerateContentResponse (whole, or one streamed chunk), reading the
 * error envelope {"error":{"code","message","status","details"}}, and splitting
 * a Server-Sent Events byte stream into events. Pure functions: no network, no
 * globals, so every one of them is unit-tested and fuzzable without a socket.
 */
#ifndef LLM_GEMINI_H
#define LLM_GEMINI_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

/* What the caller asks the model. Every pointer is borrowed: llm_client_submit
 * copies what it needs, so the caller may free all of it once submit returns. */
typedef struct llm_request {
    const char *system_instruction; /* persona + grounding rules; NULL or "" to omit */
    const char *const *fewshot_prompts; /* fewshot_count user turns ...          */
    const char *const *fewshot_answers; /* ... each answered by one model turn   */
    size_t fewshot_count;
    const char *context;    /* retrieved passages; NULL or "" to omit */
    const char *prompt;     /* the user's question; required */
    int max_output_tokens;  /* <= 0: let the model decide */
    double temperature;     /* < 0: let the model decide */
    int stream;             /* nonzero: streamGenerateContent?alt=sse */
} llm_request;

/* Builds the JSON body of a generateContent request: systemInstruction,
 * contents (few-shot user/model turns, then one user turn whose parts are the
 * context and, last, the prompt) and generationConfig. Returns a malloc'd
 * NUL-terminated string (free() it), or NULL with `e` set when the request is
 * invalid (no prompt, a few-shot pair with a NULL side). */
char *gemini_request_json(const llm_request *req, ad_err *e);

/* Longest finishReason / blockReason kept; Gemini's enum names are shorter. */
#define GEMINI_REASON_MAX 48

/* What a response (or the chunks of a stream so far) said. Caller-owned
 * storage: gemini_reply_init/gemini_reply_cleanup. Token counts are -1 until
 * usageMetadata reports them. */
typedef struct gemini_reply {
    ad_buf text;                              /* candidates[0] text, concatenated */
    char finish_reason[GEMINI_REASON_MAX];    /* "" until a chunk carries one */
    char block_reason[GEMINI_REASON_MAX];     /* promptFeedback.blockReason or "" */
    long prompt_tokens;
    long output_tokens;
    long total_tokens;
    int candidates;                           /* responses or chunks that carried a candidate */
} gemini_reply;

void gemini_reply_init(gemini_reply *r);
void gemini_reply_cleanup(gemini_reply *r);

/* Parses one GenerateContentResponse (a whole body, or one SSE chunk) and
 * merges it into `r`: candidates[0].content.parts[].text is appended to
 * r->text, finishReason, promptFeedback.blockReason and usageMetadata replace
 * what was there. When `delta_off` is not NULL it receives r->text.len before
 * the append, so the new text is r->text.data + *delta_off. Returns 0, or
 * AD_EUPSTREAM when the bytes are not a Gemini response (not JSON, not an
 * object, no candidates/promptFeedback/usageMetadata, wrong types). */
int gemini_parse_response(const char *body, size_t len, gemini_reply *r, size_t *delta_off,
                          ad_err *e);

/* Nonzero when the reply is a refusal rather than an answer: a prompt
 * blockReason, or a finishReason of SAFETY, PROHIBITED_CONTENT, BLOCKLIST,
 * SPII or IMAGE_SAFETY. `reason` (may be NULL) receives which. */
int gemini_reply_blocked(const gemini_reply *r, const char **reason);

/* Nonzero when a finished reply is not an answer at all: no response or
 * chunk carried a candidate and nothing was blocked (a 200 with
 * `"candidates": []`), which is a bad upstream response, not an empty answer. */
int gemini_reply_empty(const gemini_reply *r);

/* Gemini's error envelope. */
typedef struct gemini_error {
    long code;                       /* error.code, 0 if absent */
    char status[GEMINI_REASON_MAX];  /* error.status, e.g. "RESOURCE_EXHAUSTED" */
    char message[AD_ERR_MSG_MAX];    /* error.message, truncated */
    int64_t retry_delay_ms;          /* RetryInfo.retryDelay in error.details[], or -1 */
} gemini_error;

/* Parses {"error":{...}}. Returns 0 when the bytes are such an envelope,
 * AD_EUPSTREAM otherwise (out is then zeroed with retry_delay_ms = -1). */
int gemini_parse_error(const char *body, size_t len, gemini_error *out);

/* Incremental Server-Sent Events reader: feed it bytes as they arrive, cut
 * anywhere, and it calls back once per complete event with the event's data
 * (the `data:` lines joined by '\n'). Lines end in LF, CRLF or CR; comments
 * and other fields are ignored. Caller-owned: gemini_sse_init/cleanup. */
typedef struct gemini_sse {
    ad_buf line;
    ad_buf data;
    int has_data;
    int after_cr; /* the last byte seen was CR: a following LF is not a new line */
} gemini_sse;

/* Receives one event's data (NUL-terminated at data[len]). A nonzero return
 * stops the feed and is returned by gemini_sse_feed. */
typedef int (*gemini_sse_event_fn)(void *ud, const char *data, size_t len);

/* Longest SSE line accepted; a longer one is an error, not an allocation. */
#define GEMINI_SSE_LINE_MAX (8u << 20)

void gemini_sse_init(gemini_sse *p);
void gemini_sse_cleanup(gemini_sse *p);
/* Returns 0, the callback's nonzero value, or AD_ETOOBIG for an overlong line. */
int gemini_sse_feed(gemini_sse *p, const char *bytes, size_t n, gemini_sse_event_fn fn, void *ud);
/* At end of stream: dispatches an event left unterminated by a final blank
 * line (lenient, as browsers are not, because a proxy may drop the last CRLF). */
int gemini_sse_finish(gemini_sse *p, gemini_sse_event_fn fn, void *ud);

#endif
