#include "llm/client.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/series.h"
#include "llm/retry.h"

/* A non-streamed answer larger than this is not an answer. */
#define LLM_BODY_MAX (8u << 20)
/* curl's own timeout and our clock disagree by a millisecond or two. */
#define LLM_DEADLINE_SLACK_MS 10
/* The loop looks at its queues at least this often even when nothing happens. */
#define LLM_IDLE_POLL_MS 1000

typedef enum call_state {
    CALL_NEW,     /* submitted, not yet seen by the loop */
    CALL_PENDING, /* waiting for a free transfer slot */
    CALL_ACTIVE,  /* a transfer is in flight */
    CALL_WAITING, /* backing off before the next attempt */
    CALL_DONE
} call_state;

/*
 * Lifetime: one reference belongs to the loop from submit until on_done has
 * returned, one to the caller's handle (if asked for) until llm_call_release,
 * and one to each pending cancel request until the loop has read it. The last
 * one frees. `mu` orders "finished" against cancel requests: a cancel that
 * finds the call unfinished under `mu` knows the client is still alive,
 * because the client is freed only after every call has finished.
 */
struct llm_call {
    atomic_int refs;
    atomic_int cancel_requested;
    pthread_mutex_t mu;
    int finished; /* under mu */
    llm_client *client;
    llm_call *next_submit; /* client->mu: submission queue; then the loop's pending line */
    llm_call *next_cancel; /* client->mu: cancel queue */

    /* Everything below belongs to the loop thread. */
    call_state state;
    llm_call *all_prev, *all_next;
    size_t heap_idx;
    int64_t wake_at;
    char *body;
    size_t body_len;
    int stream;
    llm_delta_fn on_delta;
    llm_done_fn on_done;
    void *ud;
    char *url;   /* generateContent or streamGenerateContent of the call's model */
    char *model;
    int64_t started_ms;
    int64_t deadline_ms;
    int attempts;
    int64_t prev_wait_ms;
    CURL *easy;
    long status;
    int64_t retry_after_ms;
    ad_buf in;             /* a non-streamed body, or an error body */
    gemini_sse sse;
    gemini_reply reply;
    int events;            /* SSE chunks parsed this attempt */
    int deltas;            /* deltas handed to on_delta, all attempts */
    int failed;            /* the write path gave up: outcome and why */
    int fail_retry;        /* ... but the failure is worth another attempt */
    int64_t fail_hint_ms;  /* ... after at least this long (-1: no hint) */
    long fail_code;        /* ... the HTTP-like code of the error envelope, or 0 */
    llm_outcome fail_outcome;
    char upstream_status[GEMINI_REASON_MAX]; /* of an error envelope that ended it */
    char fail_msg[AD_ERR_MSG_MAX];
    char last_error[AD_ERR_MSG_MAX]; /* why the last retryable attempt failed */
    char errbuf[CURL_ERROR_SIZE];
};

struct llm_client {
    pthread_t thread;
    pthread_mutex_t mu;
    llm_call *submit_head, *submit_tail; /* mu */
    llm_call *cancel_head;               /* mu */
    int stopping;                        /* mu */

    CURLM *multi;
    CURLSH *share;
    char *key;
    char *model;
    char *base;  /* base URL without trailing '/' */
    struct curl_slist *headers_json;
    struct curl_slist *headers_sse;
    llm_retry_policy policy;
    int deadline_ms;
    int connect_timeout_ms;
    int max_transfers;
    int tls; /* base_url is https */

    /* The model lookup thread (llm_client_check_model). */
    pthread_t check_thread;
    int check_started;
    int check_timeout_ms;
    atomic_int check_abort; /* llm_client_stop: give the lookup up now */
    pthread_mutex_t check_mu;
    llm_model_check check; /* check_mu */

    /* Loop thread only. */
    llm_call *all_head;                 /* every call the loop has seen, not done */
    llm_call *pending_head, *pending_tail;
    int active;
    llm_call **heap;                    /* backoff timers, soonest first */
    size_t heap_len, heap_cap;
    uint64_t rng;
};

const char *llm_outcome_name(llm_outcome o)
{
    static const char *const names[] = {"ok",        "blocked",         "rejected",  "unavailable",
                                        "timeout",   "bad_response",    "cancelled", "transport",
                                        "no_answer", "thinking_exhausted"};
    return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "unknown";
}

/* Formats into a message field; truncating a long upstream message is intended. */
static void msg_set(char dst[AD_ERR_MSG_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void msg_set(char dst[AD_ERR_MSG_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, AD_ERR_MSG_MAX, fmt, ap);
    va_end(ap);
}

/* ---- timers: a binary min-heap on wake_at, each call knowing its slot ---- */

static void heap_swap(llm_client *c, size_t a, size_t b)
{
    llm_call *t = c->heap[a];
    c->heap[a] = c->heap[b];
    c->heap[b] = t;
    c->heap[a]->heap_idx = a;
    c->heap[b]->heap_idx = b;
}

static void heap_sift_up(llm_client *c, size_t i)
{
    while (i > 0 && c->heap[(i - 1) / 2]->wake_at > c->heap[i]->wake_at) {
        heap_swap(c, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_sift_down(llm_client *c, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->heap_len && c->heap[l]->wake_at < c->heap[m]->wake_at) m = l;
        if (r < c->heap_len && c->heap[r]->wake_at < c->heap[m]->wake_at) m = r;
        if (m == i) return;
        heap_swap(c, i, m);
        i = m;
    }
}

static void heap_push(llm_client *c, llm_call *call)
{
    if (c->heap_len == c->heap_cap) {
        c->heap_cap = c->heap_cap ? c->heap_cap * 2 : 64;
        c->heap = ad_realloc(c->heap, ad_size_mul(c->heap_cap, sizeof(*c->heap)));
    }
    call->heap_idx = c->heap_len;
    c->heap[c->heap_len++] = call;
    heap_sift_up(c, call->heap_idx);
}

static void heap_remove(llm_client *c, llm_call *call)
{
    size_t i = call->heap_idx;
    ad_assert(i < c->heap_len && c->heap[i] == call);
    c->heap_len--;
    if (i == c->heap_len) return;
    c->heap[i] = c->heap[c->heap_len];
    c->heap[i]->heap_idx = i;
    heap_sift_down(c, i);
    heap_sift_up(c, i);
}

/* xorshift64*: jitter needs spread, not secrecy. */
static uint64_t client_rand(void *ud)
{
    llm_client *c = ud;
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ULL;
}

/* ---- call lifetime ---- */

static void call_unref(llm_call *call)
{
    if (atomic_fetch_sub(&call->refs, 1) != 1) return;
    pthread_mutex_destroy(&call->mu);
    free(call);
}

void llm_call_release(llm_call *call)
{
    if (call) call_unref(call);
}

void llm_call_cancel(llm_call *call)
{
    pthread_mutex_lock(&call->mu);
    if (!call->finished && !atomic_load(&call->cancel_requested)) {
        llm_client *c = call->client;
        atomic_store(&call->cancel_requested, 1);
        atomic_fetch_add(&call->refs, 1);
        pthread_mutex_lock(&c->mu);
        call->next_cancel = c->cancel_head;
        c->cancel_head = call;
        pthread_mutex_unlock(&c->mu);
        /* Still under call->mu, so the client cannot be freed under us. */
        curl_multi_wakeup(c->multi);
    }
    pthread_mutex_unlock(&call->mu);
}

static void call_drop_transfer(llm_client *c, llm_call *call)
{
    if (!call->easy) return;
    curl_multi_remove_handle(c->multi, call->easy);
    curl_easy_cleanup(call->easy);
    call->easy = NULL;
    c->active--;
}

/* Appends `s` to `b`, every occurrence of the key replaced: a proxy or a
 * server error may echo what it was sent, and messages leave this module. */
static void put_redacted(ad_buf *b, const char *s, const char *key)
{
    size_t klen = strlen(key);
    const char *hit;
    while (klen > 0 && (hit = strstr(s, key)) != NULL) {
        ad_buf_append(b, s, (size_t)(hit - s));
        ad_buf_puts(b, "[redacted]");
        s = hit + klen;
    }
    ad_buf_puts(b, s);
}

/* Formats a message into `msg` (initialised by the caller), with the key
 * redacted as put_redacted does. */
static void format_redacted(ad_buf *msg, const char *key, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void format_redacted(ad_buf *msg, const char *key, const char *fmt, va_list ap)
{
    ad_buf raw;
    ad_buf_init(&raw);
    ad_buf_vprintf(&raw, fmt, ap);
    put_redacted(msg, raw.data ? raw.data : "", key ? key : "");
    ad_buf_cleanup(&raw);
}

/* Ends the call: fires on_done once and drops the loop's reference. */
static void call_finish(llm_client *c, llm_call *call, llm_outcome outcome, int retry_after_s,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void call_finish(llm_client *c, llm_call *call, llm_outcome outcome, int retry_after_s,
                        const char *fmt, ...)
{
    ad_assert(call->state != CALL_DONE);
    call_drop_transfer(c, call);
    if (call->state == CALL_WAITING) heap_remove(c, call);
    /* A pending call is only finished from the line's head (see start_pending)
     * or when the loop stops, which empties the line itself. */
    if (call->all_prev) call->all_prev->all_next = call->all_next;
    else if (c->all_head == call) c->all_head = call->all_next;
    if (call->all_next) call->all_next->all_prev = call->all_prev;
    call->state = CALL_DONE;

    pthread_mutex_lock(&call->mu);
    call->finished = 1;
    pthread_mutex_unlock(&call->mu);

    ad_buf msg;
    ad_buf_init(&msg);
    va_list ap;
    va_start(ap, fmt);
    format_redacted(&msg, c->key, fmt, ap);
    va_end(ap);

    const char *block = "";
    if (outcome == LLM_BLOCKED) gemini_reply_blocked(&call->reply, &block);
    if (call->reply.has_usage)
        series_llm_tokens(call->reply.prompt_tokens, call->reply.output_tokens, call->reply.thinking_tokens);
    llm_result r = {
        .outcome = outcome,
        .http_status = call->status,
        .model = call->model,
        .text = call->reply.text.data ? call->reply.text.data : "",
        .text_len = call->reply.text.len,
        .finish_reason = call->reply.finish_reason,
        .finish_message = call->reply.finish_message,
        .block_reason = block,
        .upstream_status = call->upstream_status,
        .has_usage = call->reply.has_usage,
        .prompt_tokens = call->reply.prompt_tokens,
        .output_tokens = call->reply.output_tokens,
        .thinking_tokens = call->reply.thinking_tokens,
        .total_tokens = call->reply.total_tokens,
        .retries = call->attempts > 0 ? call->attempts - 1 : 0,
        .retry_after_s = retry_after_s,
        .message = msg.data ? msg.data : "",
    };
    if (ad_log_enabled(AD_LOG_DEBUG))
        ad_log(AD_LOG_DEBUG, "gemini call done: outcome=%s status=%ld attempts=%d ms=%lld",
               llm_outcome_name(outcome), call->status, call->attempts,
               (long long)(ad_clock_mono_ms() - call->started_ms));
    call->on_done(call->ud, &r);

    ad_buf_cleanup(&msg);
    free(call->body);
    call->body = NULL;
    free(call->url);
    call->url = NULL;
    free(call->model);
    call->model = NULL;
    ad_buf_cleanup(&call->in);
    gemini_sse_cleanup(&call->sse);
    gemini_reply_cleanup(&call->reply);
    call_unref(call);
}

/* ---- one attempt ---- */

/* The stream carried Google's error envelope instead of (more) answer. One
 * that comes before anything was relayed is retried like a 5xx would be. */
static void call_fail_with_envelope(llm_call *call, const gemini_error *ge)
{
    int retryable = gemini_error_retryable(ge);
    call->failed = 1;
    call->fail_outcome = !retryable ? LLM_REJECTED : ge->code == 504 ? LLM_TIMEOUT : LLM_UNAVAILABLE;
    call->fail_retry = retryable && call->deltas == 0;
    call->fail_code = ge->code;
    /* The same waits as for the HTTP status the envelope names. */
    call->fail_hint_ms = ge->retry_delay_ms >= 0 ? ge->retry_delay_ms
                                                 : llm_retry_floor_ms(ge->code, call->attempts);
    snprintf(call->upstream_status, sizeof(call->upstream_status), "%s", ge->status);
    msg_set(call->fail_msg, "Gemini stream error %ld%s%s: %s", ge->code, ge->status[0] ? " " : "",
            ge->status, ge->message[0] ? ge->message : "no message");
}

static int on_sse_event(void *ud, const char *data, size_t len)
{
    llm_call *call = ud;
    size_t off;
    ad_err err;
    if (gemini_parse_response(data, len, &call->reply, &off, &err) != 0) {
        gemini_error ge;
        call->failed = 1;
        if (gemini_parse_error(data, len, &ge) == 0) {
            /* Gemini reports a failure after the 200 as an error chunk. */
            call_fail_with_envelope(call, &ge);
        } else {
            call->fail_outcome = LLM_BAD_RESPONSE;
            msg_set(call->fail_msg, "bad stream chunk: %s", err.msg);
        }
        return 1;
    }
    call->events++;
    size_t n = call->reply.text.len - off;
    if (n > 0 && call->on_delta && !atomic_load(&call->cancel_requested)) {
        call->deltas++;
        call->on_delta(call->ud, call->reply.text.data + off, n);
    }
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    llm_call *call = ud;
    size_t n = size * nmemb;
    if (call->status == 0) curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &call->status);
    if (call->stream && call->status == 200) {
        /* The streamed answer accumulates in reply.text: bound it like a body. */
        if (call->reply.text.len > LLM_BODY_MAX) {
            call->failed = 1;
            call->fail_outcome = LLM_BAD_RESPONSE;
            msg_set(call->fail_msg, "streamed answer over %u bytes", LLM_BODY_MAX);
            return 0;
        }
        int rc = gemini_sse_feed(&call->sse, ptr, n, on_sse_event, call);
        if (rc == AD_ETOOBIG) {
            call->failed = 1;
            call->fail_outcome = LLM_BAD_RESPONSE;
            msg_set(call->fail_msg, "stream line over %u bytes",
                     GEMINI_SSE_LINE_MAX);
        }
        return rc == 0 ? n : 0;
    }
    if (call->in.len + n > LLM_BODY_MAX) {
        call->failed = 1;
        call->fail_outcome = LLM_BAD_RESPONSE;
        msg_set(call->fail_msg, "response body over %u bytes",
                 LLM_BODY_MAX);
        return 0;
    }
    ad_buf_append(&call->in, ptr, n);
    return n;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *ud)
{
    llm_call *call = ud;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n >= 5 && strncasecmp(line, "HTTP/", 5) == 0) {
        call->retry_after_ms = -1; /* a new response begins */
    } else if (n > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0) {
        char value[64];
        size_t vlen = n - (sizeof(name) - 1);
        if (vlen < sizeof(value)) {
            memcpy(value, line + sizeof(name) - 1, vlen);
            value[vlen] = '\0';
            call->retry_after_ms = llm_retry_parse_retry_after(value);
        }
    }
    return n;
}

static void attempt_start(llm_client *c, llm_call *call);

/* Puts the call at the back of the line for a transfer slot. */
static void pending_push(llm_client *c, llm_call *call)
{
    call->state = CALL_PENDING;
    call->next_submit = NULL;
    if (c->pending_tail) c->pending_tail->next_submit = call;
    else c->pending_head = call;
    c->pending_tail = call;
}

static void start_pending(llm_client *c)
{
    while (c->pending_head && c->active < c->max_transfers) {
        llm_call *call = c->pending_head;
        c->pending_head = call->next_submit;
        if (!c->pending_head) c->pending_tail = NULL;
        call->state = CALL_NEW;
        attempt_start(c, call);
    }
}

static void attempt_reset(llm_call *call)
{
    ad_buf_reset(&call->in);
    gemini_sse_cleanup(&call->sse);
    gemini_sse_init(&call->sse);
    /* Once deltas went out the call is never retried, so this only throws
     * away what a failed attempt left before saying anything. */
    if (call->deltas == 0) {
        gemini_reply_cleanup(&call->reply);
        gemini_reply_init(&call->reply);
    }
    call->status = 0;
    call->retry_after_ms = -1;
    call->events = 0;
    call->failed = 0;
    call->fail_retry = 0;
    call->fail_hint_ms = -1;
    call->fail_code = 0;
    call->upstream_status[0] = '\0';
    call->errbuf[0] = '\0';
}

static void attempt_start(llm_client *c, llm_call *call)
{
    int64_t now = ad_clock_mono_ms();
    if (now >= call->deadline_ms) {
        call_finish(c, call, LLM_TIMEOUT, 0, "no answer within %d ms (%s)", c->deadline_ms,
                    call->attempts ? call->last_error : "waiting for a transfer slot");
        return;
    }
    if (c->active >= c->max_transfers) {
        pending_push(c, call);
        return;
    }
    attempt_reset(call);
    CURL *h = curl_easy_init();
    ad_assert(h != NULL);
    curl_easy_setopt(h, CURLOPT_URL, call->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, call->stream ? c->headers_sse : c->headers_json);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(h, CURLOPT_PRIVATE, call);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Over TLS, ALPN brings HTTP/2: wait for a connection being set up to
     * multiplex on it rather than open one per call. Plain http cannot
     * multiplex, and waiting would serialise a cold start behind one reply. */
    curl_easy_setopt(h, CURLOPT_PIPEWAIT, c->tls ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "agentd");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(call->deadline_ms - now));
    call->easy = h;
    call->attempts++;
    call->state = CALL_ACTIVE;
    c->active++;
    CURLMcode mc = curl_multi_add_handle(c->multi, h);
    if (mc != CURLM_OK) {
        msg_set(call->last_error, "curl: %s",
                 curl_multi_strerror(mc));
        call_finish(c, call, LLM_UNAVAILABLE, 1, "cannot start transfer: %s",
                    curl_multi_strerror(mc));
        return;
    }
    if (ad_log_enabled(AD_LOG_DEBUG))
        ad_log(AD_LOG_DEBUG, "gemini attempt %d/%d: model=%s stream=%d remaining_ms=%lld",
               call->attempts, c->policy.max_attempts, call->model, call->stream,
               (long long)(call->deadline_ms - now));
}

static int hint_seconds(int64_t ms)
{
    int64_t s = (ms + 999) / 1000;
    return s < 1 ? 1 : (int)s;
}

/* After a failure worth another try: wait, or give up as unavailable. */
static void attempt_retry_or_give_up(llm_client *c, llm_call *call, int64_t hint_ms)
{
    int64_t now = ad_clock_mono_ms();
    llm_retry_plan plan = llm_retry_plan_next(&c->policy, call->attempts, call->prev_wait_ms,
                                              hint_ms, now, call->deadline_ms, client_rand, c);
    if (!plan.retry && (call->status == 504 || call->fail_code == 504)) {
        /* Gemini itself ran out of time (DEADLINE_EXCEEDED) every time. */
        call_finish(c, call, LLM_TIMEOUT, 0, "Gemini timed out after %d attempt%s: %s",
                    call->attempts, call->attempts == 1 ? "" : "s", call->last_error);
        return;
    }
    if (!plan.retry) {
        call_finish(c, call, LLM_UNAVAILABLE, hint_seconds(plan.wait_ms),
                    "Gemini unavailable after %d attempt%s: %s", call->attempts,
                    call->attempts == 1 ? "" : "s", call->last_error);
        return;
    }
    if (ad_log_enabled(AD_LOG_DEBUG))
        ad_log(AD_LOG_DEBUG, "gemini retry in %lld ms after: %s", (long long)plan.wait_ms,
               call->last_error);
    call->prev_wait_ms = plan.wait_ms;
    call->wake_at = now + plan.wait_ms;
    call->state = CALL_WAITING;
    series_upstream_retry();
    heap_push(c, call);
}

/* Ends a call that failed in the write path: retried when the failure says
 * so (an error envelope before anything was relayed), else finished. */
static void attempt_end_failed(llm_client *c, llm_call *call)
{
    if (call->fail_retry) {
        msg_set(call->last_error, "%s", call->fail_msg);
        attempt_retry_or_give_up(c, call, call->fail_hint_ms);
        return;
    }
    call_finish(c, call, call->fail_outcome, call->fail_outcome == LLM_UNAVAILABLE, "%s",
                call->fail_msg);
}

/* What " (finishMessage)" or " (blockReasonMessage)" adds to a message. */
static const char *paren_open(const char *s)
{
    return s[0] ? " (" : "";
}

static const char *paren_close(const char *s)
{
    return s[0] ? ")" : "";
}

/* A complete 200 response: an answer, or which kind of non-answer it is. */
static void attempt_classify_reply(llm_client *c, llm_call *call)
{
    const gemini_reply *r = &call->reply;
    const char *reason;
    if (gemini_reply_blocked(r, &reason)) {
        const char *why = r->block_reason[0] ? r->block_message : r->finish_message;
        call_finish(c, call, LLM_BLOCKED, 0, "Gemini blocked the %s: %s%s%s%s",
                    r->block_reason[0] ? "prompt" : "answer", reason, paren_open(why), why,
                    paren_close(why));
        return;
    }
    gemini_finish_kind kind = gemini_finish_classify(r->finish_reason);
    if (kind == GEMINI_FINISH_NO_ANSWER) {
        call_finish(c, call, LLM_NO_ANSWER, 0, "Gemini gave no answer: finishReason %s%s%s%s",
                    r->finish_reason, paren_open(r->finish_message), r->finish_message,
                    paren_close(r->finish_message));
        return;
    }
    if (r->text.len > 0) {
        call_finish(c, call, LLM_OK, 0, "ok");
        return;
    }
    if (r->candidates_seen == 0) {
        /* No candidate: an empty list, or none at all. */
        call_finish(c, call, LLM_BAD_RESPONSE, 0, "Gemini returned no candidates%s%s%s",
                    paren_open(r->block_message), r->block_message, paren_close(r->block_message));
        return;
    }
    if (r->malformed_content) {
        call_finish(c, call, LLM_BAD_RESPONSE, 0, "Gemini's candidate content is not a Content");
        return;
    }
    if (kind == GEMINI_FINISH_TRUNCATED && (r->thinking_tokens > 0 || r->thought_parts > 0)) {
        call_finish(c, call, LLM_THINKING_EXHAUSTED, 0,
                    "thinking used the whole output allowance (%ld thinking tokens) before any "
                    "answer text: raise max_output_tokens or lower the thinking level",
                    r->thinking_tokens);
        return;
    }
    call_finish(c, call, LLM_NO_ANSWER, 0, "Gemini gave no answer text%s%s%s",
                r->finish_reason[0] ? ": finishReason " : "", r->finish_reason,
                r->other_parts ? " (only parts without text)" : "");
}

/* A stream whose bytes were not all events: the bare JSON error Google
 * sends when a stream fails midway. Returns nonzero when it ended the call. */
static int attempt_stray_error(llm_client *c, llm_call *call)
{
    gemini_error ge;
    const ad_buf *stray = &call->sse.stray;
    if (stray->len == 0 || gemini_parse_error(stray->data, stray->len, &ge) != 0) return 0;
    call_fail_with_envelope(call, &ge);
    attempt_end_failed(c, call);
    return 1;
}

static void attempt_finish_ok(llm_client *c, llm_call *call)
{
    if (call->stream) {
        gemini_sse_finish(&call->sse, on_sse_event, call);
        if (call->failed) {
            attempt_end_failed(c, call);
            return;
        }
        if (attempt_stray_error(c, call)) return;
        if (call->events == 0) {
            call_finish(c, call, LLM_BAD_RESPONSE, 0, "stream carried no Gemini chunk");
            return;
        }
        if (!call->reply.finish_reason[0] && !call->reply.block_reason[0] &&
            call->reply.text.len > 0) {
            call_finish(c, call, LLM_TRANSPORT, 0, "stream ended before a finishReason");
            return;
        }
    } else {
        ad_err err;
        if (gemini_parse_response(call->in.data ? call->in.data : "", call->in.len, &call->reply,
                                  NULL, &err) != 0) {
            call_finish(c, call, LLM_BAD_RESPONSE, 0, "%s", err.msg);
            return;
        }
    }
    attempt_classify_reply(c, call);
}

static void attempt_done(llm_client *c, llm_call *call, CURLcode res)
{
    int64_t now = ad_clock_mono_ms();
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &call->status);
    if (res != CURLE_OK && call->status == 0) series_upstream_transport_error();
    else series_upstream_response(call->status);
    call_drop_transfer(c, call);
    if (ad_log_enabled(AD_LOG_DEBUG))
        ad_log(AD_LOG_DEBUG, "gemini attempt %d ended: status=%ld curl=%d %s", call->attempts,
               call->status, (int)res, res == CURLE_OK ? "" : curl_easy_strerror(res));
    if (call->failed) {
        attempt_end_failed(c, call);
        return;
    }
    if (res != CURLE_OK) {
        const char *why = call->errbuf[0] ? call->errbuf : curl_easy_strerror(res);
        if (res == CURLE_OPERATION_TIMEDOUT && call->deadline_ms - now <= LLM_DEADLINE_SLACK_MS) {
            call_finish(c, call, LLM_TIMEOUT, 0, "no answer within %d ms", c->deadline_ms);
            return;
        }
        if (call->deltas > 0) {
            call_finish(c, call, LLM_TRANSPORT, 0, "stream broke: %s", why);
            return;
        }
        msg_set(call->last_error, "transport: %s", why);
        call->status = 0;
        attempt_retry_or_give_up(c, call, -1);
        return;
    }
    if (call->status == 200) {
        attempt_finish_ok(c, call);
        return;
    }
    gemini_error ge;
    int enveloped = gemini_parse_error(call->in.data ? call->in.data : "", call->in.len, &ge) == 0;
    if (llm_retry_status_retryable(call->status)) {
        int64_t hint = call->retry_after_ms;
        if (enveloped && ge.retry_delay_ms > hint) hint = ge.retry_delay_ms;
        if (hint < 0) hint = llm_retry_floor_ms(call->status, call->attempts);
        msg_set(call->last_error, "HTTP %ld%s%s", call->status,
                 enveloped && ge.message[0] ? ": " : "", enveloped ? ge.message : "");
        attempt_retry_or_give_up(c, call, hint);
        return;
    }
    if (enveloped) snprintf(call->upstream_status, sizeof(call->upstream_status), "%s", ge.status);
    if (call->status >= 400 && call->status < 500) {
        if (enveloped && ge.message[0])
            call_finish(c, call, LLM_REJECTED, 0, "%s", ge.message);
        else
            call_finish(c, call, LLM_REJECTED, 0, "Gemini answered HTTP %ld", call->status);
        return;
    }
    if (call->status >= 500) {
        call_finish(c, call, LLM_UNAVAILABLE, hint_seconds(call->retry_after_ms),
                    "Gemini answered HTTP %ld%s%s", call->status,
                    enveloped && ge.message[0] ? ": " : "", enveloped ? ge.message : "");
        return;
    }
    call_finish(c, call, LLM_BAD_RESPONSE, 0, "unexpected HTTP status %ld", call->status);
}

/* ---- the loop ---- */

static void loop_take_queues(llm_client *c, llm_call **submits, llm_call **cancels,
                             int *stopping)
{
    pthread_mutex_lock(&c->mu);
    *submits = c->submit_head;
    *cancels = c->cancel_head;
    *stopping = c->stopping;
    c->submit_head = c->submit_tail = NULL;
    c->cancel_head = NULL;
    pthread_mutex_unlock(&c->mu);
}

static void loop_admit(llm_client *c, llm_call *submits)
{
    while (submits) {
        llm_call *call = submits;
        submits = call->next_submit;
        call->all_prev = NULL;
        call->all_next = c->all_head;
        if (c->all_head) c->all_head->all_prev = call;
        c->all_head = call;
        attempt_start(c, call);
    }
}

static void pending_unlink(llm_client *c, llm_call *call)
{
    llm_call **pp = &c->pending_head;
    llm_call *prev = NULL;
    while (*pp && *pp != call) {
        prev = *pp;
        pp = &(*pp)->next_submit;
    }
    if (!*pp) return;
    *pp = call->next_submit;
    if (c->pending_tail == call) c->pending_tail = prev;
}

static void loop_cancel(llm_client *c, llm_call *call, const char *why)
{
    if (call->state == CALL_DONE) return;
    if (call->state == CALL_PENDING) pending_unlink(c, call);
    call_finish(c, call, LLM_CANCELLED, 0, "%s", why);
}

static void loop_apply_cancels(llm_client *c, llm_call *cancels)
{
    while (cancels) {
        llm_call *call = cancels;
        cancels = call->next_cancel;
        loop_cancel(c, call, "cancelled");
        call_unref(call);
    }
}

static void loop_fire_timers(llm_client *c)
{
    int64_t now = ad_clock_mono_ms();
    while (c->heap_len > 0 && c->heap[0]->wake_at <= now) {
        llm_call *call = c->heap[0];
        heap_remove(c, call);
        call->state = CALL_NEW;
        attempt_start(c, call);
    }
}

static void loop_read_done(llm_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) continue;
        llm_call *call = NULL;
        CURLcode res = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        attempt_done(c, call, res);
    }
}

static int loop_poll_timeout(llm_client *c)
{
    long ms = -1;
    curl_multi_timeout(c->multi, &ms);
    if (ms < 0 || ms > LLM_IDLE_POLL_MS) ms = LLM_IDLE_POLL_MS;
    if (c->heap_len > 0) {
        int64_t until = c->heap[0]->wake_at - ad_clock_mono_ms();
        if (until < ms) ms = until < 0 ? 0 : (long)until;
    }
    if (c->pending_head && c->active < c->max_transfers) ms = 0;
    return (int)ms;
}

/* Stopping: every call the loop knows of ends as cancelled, and so does any
 * call a callback submits meanwhile, until no queue holds anything. */
static int loop_drain_for_stop(llm_client *c)
{
    while (c->all_head) loop_cancel(c, c->all_head, "client stopped");
    pthread_mutex_lock(&c->mu);
    int idle = !c->submit_head && !c->cancel_head;
    pthread_mutex_unlock(&c->mu);
    return idle;
}

static void *client_loop(void *arg)
{
    llm_client *c = arg;
    for (;;) {
        llm_call *submits, *cancels;
        int stopping;
        loop_take_queues(c, &submits, &cancels, &stopping);
        loop_admit(c, submits);
        loop_apply_cancels(c, cancels);
        if (stopping) {
            if (loop_drain_for_stop(c)) break;
            continue;
        }
        loop_fire_timers(c);
        start_pending(c);
        int running;
        curl_multi_perform(c->multi, &running);
        loop_read_done(c);
        start_pending(c);
        curl_multi_poll(c->multi, NULL, 0, loop_poll_timeout(c), NULL);
    }
    return NULL;
}

/* ---- start / submit / stop ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int config_int(int v, int def)
{
    return v > 0 ? v : def;
}

int llm_model_name_valid(const char *m)
{
    if (!m) return 0;
    if (strncmp(m, "models/", 7) == 0) m += 7;
    if (!*m || strlen(m) >= sizeof(((llm_model_check *)0)->model)) return 0;
    for (; *m; m++) {
        char ch = *m;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        if (!ok) return 0;
    }
    return 1;
}

int llm_model_is_gemini(const char *name)
{
    if (!name) return 0;
    if (strncmp(name, "models/", 7) == 0) name += 7;
    return strncmp(name, "gemini-", 7) == 0 && llm_model_name_valid(name);
}

static int text_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

static void client_free(llm_client *c)
{
    if (c->multi) curl_multi_cleanup(c->multi);
    if (c->share) curl_share_cleanup(c->share);
    curl_slist_free_all(c->headers_json);
    curl_slist_free_all(c->headers_sse);
    /* The key sat in memory for the process's life; do not leave it in the heap. */
    if (c->key) explicit_bzero(c->key, strlen(c->key));
    free(c->key);
    free(c->model);
    free(c->base);
    free(c->heap);
    pthread_mutex_destroy(&c->check_mu);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int client_configure(llm_client *c, const llm_config *cfg, ad_err *e)
{
    if (!cfg->api_key || !cfg->api_key[0]) return ad_err_set(e, AD_EINVAL, "api_key is required");
    if (!text_printable(cfg->api_key))
        return ad_err_set(e, AD_EINVAL, "api_key contains control characters");
    const char *model = cfg->model && cfg->model[0] ? cfg->model : LLM_DEFAULT_MODEL;
    if (strncmp(model, "models/", 7) == 0) model += 7;
    if (!llm_model_name_valid(model))
        return ad_err_set(e, AD_EINVAL, "model must be letters, digits, '.', '_' or '-'");
    const char *base = cfg->base_url && cfg->base_url[0] ? cfg->base_url : LLM_DEFAULT_BASE_URL;
    if ((strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) ||
        !text_printable(base) || strchr(base, ' ') || strchr(base, '?') || strchr(base, '#'))
        return ad_err_set(e, AD_EINVAL, "base_url must be an http(s) URL without query");
    c->tls = strncmp(base, "https://", 8) == 0;
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') blen--;

    c->key = ad_strdup(cfg->api_key);
    c->model = ad_strdup(model);
    c->base = ad_strndup(base, blen);
    ad_buf b;
    ad_buf_init(&b);

    ad_buf_printf(&b, "x-goog-api-key: %s", c->key);
    struct curl_slist *common[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        common[i] = curl_slist_append(common[i], "Content-Type: application/json");
        common[i] = curl_slist_append(common[i], "Expect:");
        common[i] = curl_slist_append(common[i], b.data);
        common[i] = curl_slist_append(common[i], i ? "Accept: text/event-stream"
                                                   : "Accept: application/json");
        ad_assert(common[i] != NULL);
    }
    explicit_bzero(b.data, b.len);
    ad_buf_cleanup(&b);
    c->headers_json = common[0];
    c->headers_sse = common[1];

    c->deadline_ms = config_int(cfg->deadline_ms, 30000);
    c->connect_timeout_ms = config_int(cfg->connect_timeout_ms, 5000);
    c->max_transfers = config_int(cfg->max_transfers, 1000);
    c->policy.max_attempts = config_int(cfg->max_attempts, 4);
    c->policy.base_ms = config_int(cfg->backoff_base_ms, 250);
    c->policy.cap_ms = config_int(cfg->backoff_cap_ms, 8000);
    if (c->policy.cap_ms < c->policy.base_ms) c->policy.cap_ms = c->policy.base_ms;
    c->policy.jitter = LLM_JITTER_FULL;

    long host_conns = config_int(cfg->max_host_connections, c->max_transfers);
    c->multi = curl_multi_init();
    c->share = curl_share_init();
    if (!c->multi || !c->share) return ad_err_set(e, AD_EINTERNAL, "cannot create curl handles");
    /* One thread uses these, so the share needs no lock callbacks. TLS
     * sessions are shared so reconnects skip the full handshake. */
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host_conns);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, host_conns);
    /* Keep-alive: idle connections stay cached for the next burst. */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, host_conns);
    return 0;
}

int llm_client_start(llm_client **out, const llm_config *cfg, ad_err *e)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK)
        return ad_err_set(e, AD_EINTERNAL, "curl_global_init: %s",
                          curl_easy_strerror(curl_init_result));
    llm_client *c = ad_calloc(1, sizeof(*c));
    atomic_init(&c->check_abort, 0);
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->check_mu, NULL);
    int rc = client_configure(c, cfg, e);
    if (rc != 0) {
        client_free(c);
        return rc;
    }
    c->rng = (uint64_t)ad_clock_now_ms() ^ ((uint64_t)(uintptr_t)c << 16) ^ 0x9e3779b97f4a7c15ULL;
    if (pthread_create(&c->thread, NULL, client_loop, c) != 0) {
        client_free(c);
        return ad_err_set(e, AD_EINTERNAL, "cannot start the Gemini client thread");
    }
    *out = c;
    return 0;
}

int llm_client_submit(llm_client *c, const llm_request *req, llm_delta_fn on_delta,
                      llm_done_fn on_done, void *ud, llm_call **out, ad_err *e)
{
    if (out) *out = NULL;
    if (!on_done) return ad_err_set(e, AD_EINVAL, "on_done is required");
    const char *model = req->model && req->model[0] ? req->model : c->model;
    if (strncmp(model, "models/", 7) == 0) model += 7;
    if (!llm_model_name_valid(model))
        return ad_err_set(e, AD_EINVAL, "model must be letters, digits, '.', '_' or '-'");
    ad_err local;
    char *body = gemini_request_json(req, &local);
    if (!body) return ad_err_set(e, local.code, "%s", local.msg);
    /* The JSON body is the copy: nothing else of req is kept. */

    llm_call *call = ad_calloc(1, sizeof(*call));
    atomic_init(&call->refs, out ? 2 : 1);
    atomic_init(&call->cancel_requested, 0);
    pthread_mutex_init(&call->mu, NULL);
    call->client = c;
    call->state = CALL_NEW;
    call->body = body;
    call->body_len = strlen(body);
    call->stream = req->stream != 0;
    call->model = ad_strdup(model);
    ad_buf url;
    ad_buf_init(&url);
    ad_buf_printf(&url, "%s/v1beta/models/%s:%s", c->base, model,
                  call->stream ? "streamGenerateContent?alt=sse" : "generateContent");
    call->url = ad_buf_steal(&url, NULL);
    call->on_delta = on_delta;
    call->on_done = on_done;
    call->ud = ud;
    call->started_ms = ad_clock_mono_ms();
    call->deadline_ms = call->started_ms + c->deadline_ms;
    call->retry_after_ms = -1;
    ad_buf_init(&call->in);
    gemini_sse_init(&call->sse);
    gemini_reply_init(&call->reply);

    /* Publish the caller's handle before the loop can see the call: on_done
     * may run (and free the caller's state) as soon as it is queued. */
    if (out) *out = call;
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        /* The loop is gone or going: nothing would ever finish this call. */
        pthread_mutex_unlock(&c->mu);
        if (out) *out = NULL;
        ad_buf_cleanup(&call->in);
        gemini_sse_cleanup(&call->sse);
        gemini_reply_cleanup(&call->reply);
        free(call->body);
        free(call->url);
        free(call->model);
        pthread_mutex_destroy(&call->mu);
        free(call);
        return ad_err_set(e, AD_ESTATE, "the Gemini client is shutting down");
    }
    if (c->submit_tail) c->submit_tail->next_submit = call;
    else c->submit_head = call;
    c->submit_tail = call;
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);
    return 0;
}

void llm_client_stop(llm_client *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    int already = c->stopping;
    c->stopping = 1;
    pthread_mutex_unlock(&c->mu);
    if (already) return;
    atomic_store(&c->check_abort, 1);
    curl_multi_wakeup(c->multi);
    pthread_join(c->thread, NULL);
    if (c->check_started) pthread_join(c->check_thread, NULL);
}

void llm_client_free(llm_client *c)
{
    if (!c) return;
    llm_client_stop(c);
    client_free(c);
}

/* ---- the model lookup ---- */

const char *llm_model_state_name(llm_model_state st)
{
    static const char *const names[] = {"unchecked", "ok", "missing", "unusable"};
    return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
}

/* Models Google's deprecations page lists as shut down. A lookup that finds
 * no such model says "retired" for these rather than "not found", which
 * tells the operator what to do. */
static int model_known_retired(const char *m)
{
    static const char *const exact[] = {"gemini-pro", "gemini-2.5-flash", "gemini-2.5-pro",
                                        "gemini-2.0-flash", "gemini-2.0-flash-lite",
                                        "gemini-3-pro-preview"};
    static const char *const prefixes[] = {"gemini-1.0-", "gemini-1.5-", "gemini-2.0-flash-"};
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strcmp(m, exact[i]) == 0) return 1;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(m, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

static size_t lookup_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ad_buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > 1u << 20) return 0;
    ad_buf_append(b, ptr, n);
    return n;
}

/* Aborts a lookup whose client is stopping, so shutdown does not wait out
 * the lookup's timeout on a server that does not answer. */
static int lookup_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    const atomic_int *abort_flag = ud;
    return abort_flag && atomic_load(abort_flag) ? 1 : 0;
}

/* Nonzero when the Model resource lists generateContent (or lists nothing,
 * which older resources do). */
static int model_generates(const char *body, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *methods = cJSON_GetObjectItemCaseSensitive(root, "supportedGenerationMethods");
    int ok = !cJSON_IsArray(methods);
    const cJSON *m;
    cJSON_ArrayForEach(m, methods)
    {
        if (cJSON_IsString(m) && strcmp(m->valuestring, "generateContent") == 0) ok = 1;
    }
    cJSON_Delete(root);
    return ok;
}

static void lookup_set(llm_model_check *out, llm_model_state st, const char *key, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

static void lookup_set(llm_model_check *out, llm_model_state st, const char *key, const char *fmt,
                       ...)
{
    ad_buf msg;
    ad_buf_init(&msg);
    va_list ap;
    va_start(ap, fmt);
    format_redacted(&msg, key, fmt, ap);
    va_end(ap);
    out->state = st;
    snprintf(out->message, sizeof(out->message), "%s", msg.data ? msg.data : "");
    ad_buf_cleanup(&msg);
}

/* llm_model_lookup, given up as soon as *abort_flag (may be NULL) is set. */
static void model_lookup(const llm_config *cfg, int timeout_ms, atomic_int *abort_flag,
                         llm_model_check *out)
{
    memset(out, 0, sizeof(*out));
    const char *model = cfg->model && cfg->model[0] ? cfg->model : LLM_DEFAULT_MODEL;
    if (strncmp(model, "models/", 7) == 0) model += 7;
    snprintf(out->model, sizeof(out->model), "%s", model);
    const char *base = cfg->base_url && cfg->base_url[0] ? cfg->base_url : LLM_DEFAULT_BASE_URL;
    if (!cfg->api_key || !cfg->api_key[0] || !text_printable(cfg->api_key) ||
        !llm_model_name_valid(model) || !text_printable(base)) {
        lookup_set(out, LLM_MODEL_UNCHECKED, NULL, "no key, or an invalid model or base URL");
        return;
    }
    pthread_once(&curl_once, curl_init_once);
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') blen--;
    ad_buf url, hdr, body;
    ad_buf_init(&url);
    ad_buf_init(&hdr);
    ad_buf_init(&body);
    ad_buf_printf(&url, "%.*s/v1beta/models/%s", (int)blen, base, model);
    ad_buf_printf(&hdr, "x-goog-api-key: %s", cfg->api_key);
    struct curl_slist *headers = curl_slist_append(NULL, hdr.data);
    explicit_bzero(hdr.data, hdr.len);
    CURL *h = curl_easy_init();
    long status = 0;
    CURLcode res = CURLE_FAILED_INIT;
    char errbuf[CURL_ERROR_SIZE] = "";
    if (h && headers) {
        curl_easy_setopt(h, CURLOPT_URL, url.data);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, lookup_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "agentd");
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, lookup_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, abort_flag);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        res = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    }
    gemini_error ge;
    int enveloped = gemini_parse_error(body.data ? body.data : "", body.len, &ge) == 0;
    if (res == CURLE_ABORTED_BY_CALLBACK) {
        lookup_set(out, LLM_MODEL_UNCHECKED, NULL, "lookup of model %s abandoned: shutting down",
                   model);
    } else if (res != CURLE_OK) {
        lookup_set(out, LLM_MODEL_UNCHECKED, cfg->api_key, "could not look model %s up: %s", model,
                   errbuf[0] ? errbuf : curl_easy_strerror(res));
    } else if (status == 200 && model_generates(body.data ? body.data : "", body.len)) {
        lookup_set(out, LLM_MODEL_OK, cfg->api_key, "model %s is available", model);
    } else if (status == 200) {
        lookup_set(out, LLM_MODEL_UNUSABLE, cfg->api_key,
                   "model %s exists but does not offer generateContent", model);
    } else if (status == 404 && model_known_retired(model)) {
        lookup_set(out, LLM_MODEL_MISSING, cfg->api_key,
                   "model %s is retired (shut down on Google's deprecations page): set "
                   "gemini_model to a current model, e.g. %s",
                   model, LLM_DEFAULT_MODEL);
    } else if (status == 404) {
        lookup_set(out, LLM_MODEL_MISSING, cfg->api_key, "model %s does not exist (404%s%s)", model,
                   enveloped && ge.message[0] ? ": " : "", enveloped ? ge.message : "");
    } else {
        lookup_set(out, LLM_MODEL_UNCHECKED, cfg->api_key, "could not look model %s up: HTTP %ld%s%s",
                   model, status, enveloped && ge.message[0] ? ": " : "",
                   enveloped ? ge.message : "");
    }
    if (h) curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    ad_buf_cleanup(&url);
    ad_buf_cleanup(&hdr);
    ad_buf_cleanup(&body);
}

void llm_model_lookup(const llm_config *cfg, int timeout_ms, llm_model_check *out)
{
    model_lookup(cfg, timeout_ms, NULL, out);
}

static void *check_main(void *arg)
{
    llm_client *c = arg;
    llm_config cfg = {.api_key = c->key, .model = c->model, .base_url = c->base};
    llm_model_check found;
    model_lookup(&cfg, c->check_timeout_ms, &c->check_abort, &found);
    ad_log(found.state == LLM_MODEL_OK ? AD_LOG_INFO : AD_LOG_WARN, "gemini model check: %s: %s",
           llm_model_state_name(found.state), found.message);
    pthread_mutex_lock(&c->check_mu);
    c->check = found;
    pthread_mutex_unlock(&c->check_mu);
    return NULL;
}

void llm_client_check_model(llm_client *c, int timeout_ms)
{
    if (c->check_started) return;
    c->check_timeout_ms = timeout_ms;
    pthread_mutex_lock(&c->check_mu);
    snprintf(c->check.model, sizeof(c->check.model), "%s", c->model);
    snprintf(c->check.message, sizeof(c->check.message), "lookup in progress");
    pthread_mutex_unlock(&c->check_mu);
    if (pthread_create(&c->check_thread, NULL, check_main, c) == 0) c->check_started = 1;
}

void llm_client_model_status(llm_client *c, llm_model_check *out)
{
    pthread_mutex_lock(&c->check_mu);
    *out = c->check;
    pthread_mutex_unlock(&c->check_mu);
    if (!out->model[0]) {
        snprintf(out->model, sizeof(out->model), "%s", c->model);
        snprintf(out->message, sizeof(out->message), "not looked up");
    }
}
