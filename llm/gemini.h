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
    const char *model;      /* NULL or "": the client's configured model */
    int max_output_tokens;  /* <= 0: let the model decide */
    double temperature;     /* < 0: let the model decide */
    /* Thinking: at most one of the two is sent. A level ("minimal", "low",
     * "medium", "high"; Gemini 3 models) wins over a budget (tokens; Gemini
     * 2.5 models). Both unset: the model's own default. */
    const char *thinking_level;  /* NULL or "": not sent */
    int thinking_budget;         /* 0: not sent; > 0 tokens; or one of below */
    int stream;             /* nonzero: streamGenerateContent?alt=sse */
} llm_request;

/* thinking_budget values with a meaning of their own. */
#define GEMINI_THINKING_BUDGET_DYNAMIC (-1) /* sent as -1: the model decides */
#define GEMINI_THINKING_BUDGET_OFF (-2)     /* sent as 0: no thinking */

/* Nonzero when `level` is one of Gemini's thinking levels (lower case). */
int gemini_thinking_level_valid(const char *level);

/* Orders thinking levels: minimal 0, low 1, medium 2, high 3; -1 otherwise. */
int gemini_thinking_level_rank(const char *level);

/* Tokens of an answer too short to be of use: the floor of what
 * maxOutputTokens must leave once thinking is paid for. */
#define GEMINI_ANSWER_MIN_TOKENS 32

/* The smallest maxOutputTokens that can still hold an answer when thinking
 * is set as given (the request's fields): Gemini counts thinking against
 * maxOutputTokens, so it is GEMINI_ANSWER_MIN_TOKENS plus what thinking may
 * use: the budget itself, or for a level (which has no token figure) a
 * reserve of 0 (minimal), 512 (low), 2048 (medium) or 8192 (high), and 1024
 * when the model decides alone. */
int gemini_min_output_tokens(const char *thinking_level, int thinking_budget);

/* Builds the JSON body of a generateContent request: systemInstruction,
 * contents (few-shot user/model turns, then one user turn whose parts are the
 * context and, last, the prompt) and generationConfig (with thinkingConfig).
 * Returns a malloc'd NUL-terminated string (free() it), or NULL with `e` set
 * when the request is invalid (no prompt, a few-shot pair with a NULL side, an
 * unknown thinking level). */
char *gemini_request_json(const llm_request *req, ad_err *e);

/* Longest finishReason / blockReason kept; Gemini's enum names are shorter. */
#define GEMINI_REASON_MAX 48

/* What a response (or the chunks of a stream so far) said. Caller-owned
 * storage: gemini_reply_init/gemini_reply_cleanup. Token counts are -1 until
 * usageMetadata reports them. Only the candidate with index 0 is read (the
 * one Gemini returns by default); parts marked `thought` never reach `text`. */
typedef struct gemini_reply {
    ad_buf text;                              /* the answer's text, concatenated */
    char finish_reason[GEMINI_REASON_MAX];    /* "" until a chunk carries one */
    char finish_message[AD_ERR_MSG_MAX];      /* candidate finishMessage, or "" */
    char block_reason[GEMINI_REASON_MAX];     /* promptFeedback.blockReason or "" */
    char block_message[AD_ERR_MSG_MAX];       /* promptFeedback.blockReasonMessage */
    int has_usage;                            /* a usageMetadata object was seen */
    long prompt_tokens;
    long output_tokens;                       /* candidatesTokenCount: the answer */
    long thinking_tokens;                     /* thoughtsTokenCount */
    long total_tokens;                        /* totalTokenCount, as Gemini bills it */
    int empty_candidates;   /* a chunk had "candidates": [] */
    int candidates_seen;    /* chunks that carried candidate 0 */
    int malformed_content;  /* candidate 0 had content that is not Content */
    int thought_parts;      /* parts dropped because they were thoughts */
    int other_parts;        /* parts with no text (function calls, inline data) */
} gemini_reply;

void gemini_reply_init(gemini_reply *r);
void gemini_reply_cleanup(gemini_reply *r);

/* Parses one GenerateContentResponse (a whole body, or one SSE chunk) and
 * merges it into `r`: the text of candidate 0's non-thought parts is
 * appended to r->text, finishReason, finishMessage, promptFeedback and
 * usageMetadata replace what was there. Token counts may be JSON numbers or
 * decimal strings (proto3 JSON writes int64 either way). When `delta_off` is
 * not NULL it receives r->text.len before the append, so the new text is
 * r->text.data + *delta_off. Returns 0, or AD_EUPSTREAM when the bytes are
 * not a Gemini response (not JSON, not an object, no candidates /
 * promptFeedback / usageMetadata, wrong types). */
int gemini_parse_response(const char *body, size_t len, gemini_reply *r, size_t *delta_off,
                          ad_err *e);

/* What a finishReason means for the caller. */
typedef enum gemini_finish_kind {
    GEMINI_FINISH_NONE,      /* none yet */
    GEMINI_FINISH_ANSWER,    /* STOP: the answer is complete */
    GEMINI_FINISH_TRUNCATED, /* MAX_TOKENS: the answer stopped at the allowance */
    GEMINI_FINISH_BLOCKED,   /* a content filter: SAFETY, PROHIBITED_CONTENT,
                              * BLOCKLIST, SPII, IMAGE_SAFETY, ... */
    GEMINI_FINISH_RECITATION,/* RECITATION: the answer would recite a source */
    GEMINI_FINISH_NO_ANSWER  /* OTHER, LANGUAGE, tool-call reasons, and every
                              * reason this client does not know */
} gemini_finish_kind;

/* Classifies a finishReason ("" is GEMINI_FINISH_NONE). */
gemini_finish_kind gemini_finish_classify(const char *finish_reason);

/* Nonzero when text arriving with this finishReason may reach the caller:
 * none yet, STOP or MAX_TOKENS. Text in a chunk with any other reason is
 * withheld, because the reason may be a filter that judged that very text. */
int gemini_finish_relays_text(const char *finish_reason);

/* Nonzero when the reply is a refusal rather than an answer: a prompt
 * blockReason (any value, known or not), or a finishReason classified as
 * GEMINI_FINISH_BLOCKED or GEMINI_FINISH_RECITATION. `reason` (may be NULL)
 * receives which. */
int gemini_reply_blocked(const gemini_reply *r, const char **reason);

/* Gemini's error envelope. */
typedef struct gemini_error {
    long code;                       /* error.code, 0 if absent */
    char status[GEMINI_REASON_MAX];  /* error.status, e.g. "RESOURCE_EXHAUSTED" */
    char message[AD_ERR_MSG_MAX];    /* error.message, truncated */
    int64_t retry_delay_ms;          /* RetryInfo.retryDelay in error.details[], or -1 */
} gemini_error;

/* Parses {"error":{...}}. Returns 0 when the bytes are such an envelope,
 * AD_EUPSTREAM otherwise (out is then zeroed with retry_delay_ms = -1). The
 * message keeps Google's words but not project numbers, which identify the
 * operator's Google Cloud project: "projects/123456789" becomes
 * "projects/[redacted]". */
int gemini_parse_error(const char *body, size_t len, gemini_error *out);

/* Nonzero when a failure reported in place of an answer (an error envelope,
 * inside a stream or as an HTTP status) is worth asking again: HTTP-like
 * codes 429, 499, 500, 502, 503, 504, or no code at all, as for a 5xx. */
int gemini_error_retryable(const gemini_error *ge);

/* Incremental Server-Sent Events reader: feed it bytes as they arrive, cut
 * anywhere, and it calls back once per complete event with the event's data
 * (the `data:` lines joined by '\n'). Lines end in LF, CRLF or CR; comments
 * and other fields are ignored. Caller-owned: gemini_sse_init/cleanup. */
typedef struct gemini_sse {
    ad_buf line;
    ad_buf data;
    int has_data;
    int after_cr; /* the last byte seen was CR: a following LF is not a new line */
    /* Lines that are no SSE field (no data/event/id/retry, no comment), kept
     * in order, '\n'-joined, up to GEMINI_SSE_STRAY_MAX bytes: Google ends a
     * stream that fails midway with a bare JSON error object, not an event. */
    ad_buf stray;
} gemini_sse;

/* Most bytes of stray lines kept; an error envelope is far smaller. */
#define GEMINI_SSE_STRAY_MAX (64u << 10)

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
