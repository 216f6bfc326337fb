/* llm/client.c against the fake Gemini server, over real libcurl on loopback. */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "llm/client.h"
#include "tests/fake/gemini.h"

Suite *llm_client_suite(void);

/* What a test saw of one call: on_done's result, copied, and every delta. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done;
    int done_count;
    int64_t done_at;
    llm_outcome outcome;
    long http_status;
    char *text;
    char finish[GEMINI_REASON_MAX];
    char finish_message[AD_ERR_MSG_MAX];
    char block[GEMINI_REASON_MAX];
    char upstream_status[GEMINI_REASON_MAX];
    char model[128];
    int has_usage;
    long prompt_tokens, output_tokens, thinking_tokens, total_tokens;
    int retries;
    int retry_after_s;
    char *message;
    ad_buf deltas; /* every delta, each followed by '|' */
    int ndeltas;
} waiter;

static void waiter_init(waiter *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    ad_buf_init(&w->deltas);
}

static void waiter_cleanup(waiter *w)
{
    free(w->text);
    free(w->message);
    ad_buf_cleanup(&w->deltas);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
}

static void on_delta(void *ud, const char *text, size_t len)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    ad_buf_append(&w->deltas, text, len);
    ad_buf_putc(&w->deltas, '|');
    w->ndeltas++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static void on_done(void *ud, const llm_result *r)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->done_count++;
    w->done_at = ad_clock_mono_ms();
    w->outcome = r->outcome;
    w->http_status = r->http_status;
    free(w->text);
    free(w->message);
    w->text = ad_strndup(r->text, r->text_len);
    snprintf(w->finish, sizeof(w->finish), "%s", r->finish_reason);
    snprintf(w->finish_message, sizeof(w->finish_message), "%s", r->finish_message);
    snprintf(w->block, sizeof(w->block), "%s", r->block_reason);
    snprintf(w->upstream_status, sizeof(w->upstream_status), "%s", r->upstream_status);
    snprintf(w->model, sizeof(w->model), "%s", r->model);
    w->has_usage = r->has_usage;
    w->prompt_tokens = r->prompt_tokens;
    w->output_tokens = r->output_tokens;
    w->thinking_tokens = r->thinking_tokens;
    w->total_tokens = r->total_tokens;
    w->retries = r->retries;
    w->retry_after_s = r->retry_after_s;
    w->message = ad_strdup(r->message);
    w->done = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

/* Waits until `*flag >= target` under w->mu, at most `ms`; returns nonzero if reached. */
static int wait_for(waiter *w, const int *flag, int target, int ms)
{
    int64_t until = ad_clock_mono_ms() + ms;
    pthread_mutex_lock(&w->mu);
    while (*flag < target && ad_clock_mono_ms() < until) {
        pthread_mutex_unlock(&w->mu);
        usleep(2000);
        pthread_mutex_lock(&w->mu);
    }
    int ok = *flag >= target;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

typedef struct fixture {
    fake_gemini *fake;
    llm_client *client;
    char base_url[64];
} fixture;

static llm_config test_config(const fixture *fx)
{
    llm_config cfg = {
        .api_key = FAKE_GEMINI_KEY,
        .model = "gemini-test",
        .base_url = fx->base_url,
        .deadline_ms = 3000,
        .max_attempts = 4,
        .backoff_base_ms = 10,
        .backoff_cap_ms = 40,
        .connect_timeout_ms = 1000,
    };
    return cfg;
}

static void fixture_start_with(fixture *fx, const llm_config *override)
{
    unsigned port = 0;
    ck_assert_int_eq(fake_gemini_start(&fx->fake, &port), 0);
    snprintf(fx->base_url, sizeof(fx->base_url), "http://127.0.0.1:%u/", port);
    llm_config cfg = override ? *override : test_config(fx);
    cfg.base_url = fx->base_url;
    ad_err e;
    ck_assert_msg(llm_client_start(&fx->client, &cfg, &e) == 0, "%s", e.msg);
}

static void fixture_start(fixture *fx)
{
    fixture_start_with(fx, NULL);
}

static void fixture_stop(fixture *fx)
{
    llm_client_free(fx->client);
    fake_gemini_stop(fx->fake);
}

static const char *const fs_prompts[] = {"Who are you?"};
static const char *const fs_answers[] = {"The bakery's assistant."};

static llm_request make_request(const char *prompt, int stream)
{
    llm_request r = {
        .system_instruction = "You answer for Ana's bakery, only from the context.",
        .fewshot_prompts = fs_prompts,
        .fewshot_answers = fs_answers,
        .fewshot_count = 1,
        .context = "[1] Sourdough is baked every morning.",
        .prompt = prompt,
        .max_output_tokens = 128,
        .temperature = 0.1,
        .stream = stream,
    };
    return r;
}

/* Submits and waits for on_done; returns the wall time in ms. */
static int64_t run_call(fixture *fx, waiter *w, const char *prompt, int stream)
{
    llm_request req = make_request(prompt, stream);
    int64_t t0 = ad_clock_mono_ms();
    ck_assert_int_eq(llm_client_submit(fx->client, &req, on_delta, on_done, w, NULL, NULL), 0);
    ck_assert_msg(wait_for(w, &w->done, 1, 5000), "on_done never fired");
    return w->done_at - t0;
}

START_TEST(test_success)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    run_call(&fx, &w, "When is the sourdough baked?", 0);
    ck_assert_msg(w.outcome == LLM_OK, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_str_eq(w.text, "ANSWER: When is the sourdough baked?");
    ck_assert_str_eq(w.finish, "STOP");
    ck_assert_int_eq(w.http_status, 200);
    ck_assert_int_eq(w.retries, 0);
    ck_assert_int_gt(w.prompt_tokens, 0);
    ck_assert_int_eq(w.total_tokens, w.prompt_tokens + w.output_tokens);
    ck_assert_int_eq(w.ndeltas, 0);

    fake_gemini_request r;
    ck_assert_int_eq(fake_gemini_request_get(fx.fake, 0, &r), 0);
    ck_assert_str_eq(r.method, "POST");
    ck_assert_str_eq(r.url, "/v1beta/models/gemini-test:generateContent");
    ck_assert_ptr_nonnull(strcasestr(r.headers, "x-goog-api-key: " FAKE_GEMINI_KEY "\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "\"systemInstruction\""));
    ck_assert_ptr_nonnull(strstr(r.body, "The bakery's assistant."));
    ck_assert_ptr_nonnull(strstr(r.body, "Sourdough is baked every morning."));
    ck_assert_ptr_nonnull(strstr(r.body, "\"maxOutputTokens\":128"));
    fake_gemini_request_cleanup(&r);
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_429_retry_after_then_success)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, FAKE_429_RETRY_AFTER(1));
    int64_t ms = run_call(&fx, &w, "quota please", 0);
    ck_assert_msg(w.outcome == LLM_OK, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(w.retries, 1);
    ck_assert_int_ge(ms, 1000);
    ck_assert_int_eq(fake_gemini_request_count(fx.fake), 2);
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_429_retry_info_honoured)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, FAKE_RETRYINFO(300));
    int64_t ms = run_call(&fx, &w, "retry info", 0);
    ck_assert_msg(w.outcome == LLM_OK, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(w.retries, 1);
    ck_assert_int_ge(ms, 300);
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_503_then_success)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, FAKE_503);
    fake_gemini_push_fault(fx.fake, FAKE_504);
    run_call(&fx, &w, "overloaded?", 0);
    ck_assert_msg(w.outcome == LLM_OK, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(w.retries, 2);
    ck_assert_str_eq(w.text, "ANSWER: overloaded?");
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_500_exhausts_retries)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    for (int i = 0; i < 5; i++) fake_gemini_push_fault(fx.fake, FAKE_500);
    run_call(&fx, &w, "broken", 0);
    ck_assert_msg(w.outcome == LLM_UNAVAILABLE, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(w.retries, 3);
    ck_assert_int_eq(w.http_status, 500);
    ck_assert_int_ge(w.retry_after_s, 1);
    ck_assert_int_eq(fake_gemini_request_count(fx.fake), 4);
    ck_assert_ptr_nonnull(strstr(w.message, "An internal error has occurred."));
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_retry_wait_past_deadline_is_unavailable)
{
    fixture fx;
    waiter w;
    fx.base_url[0] = '\0';
    llm_config cfg = test_config(&fx);
    cfg.deadline_ms = 800;
    fixture_start_with(&fx, &cfg);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, FAKE_429_RETRY_AFTER(5));
    int64_t ms = run_call(&fx, &w, "later", 0);
    ck_assert_msg(w.outcome == LLM_UNAVAILABLE, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(w.retry_after_s, 5);
    ck_assert_int_lt(ms, 500); /* it did not sleep towards the deadline */
    ck_assert_int_eq(fake_gemini_request_count(fx.fake), 1);
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_400_rejected_not_retried)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, FAKE_400);
    run_call(&fx, &w, "bad", 0);
    ck_assert_msg(w.outcome == LLM_REJECTED, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_str_eq(w.message, FAKE_400_MESSAGE);
    ck_assert_int_eq(w.http_status, 400);
    ck_assert_int_eq(w.retries, 0);
    ck_assert_int_eq(fake_gemini_request_count(fx.fake), 1);
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_wrong_key_rejected)
{
    fixture fx;
    waiter w;
    fx.base_url[0] = '\0';
    llm_config cfg = test_config(&fx);
    cfg.api_key = "wrong-key-XYZ";
    fixture_start_with(&fx, &cfg);
    waiter_init(&w);
    run_call(&fx, &w, "who am i", 0);
    ck_assert_msg(w.outcome == LLM_REJECTED, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_str_eq(w.message, "API key not valid. Please pass a valid API key.");
    ck_assert_int_eq(fake_gemini_request_count(fx.fake), 1);
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_non_json_bad_response)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, FAKE_NON_JSON);
    run_call(&fx, &w, "html?", 0);
    ck_assert_msg(w.outcome == LLM_BAD_RESPONSE, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(fake_gemini_request_count(fx.fake), 1);
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_blocked_and_safety)
{
    fixture fx;
    waiter w1, w2;
    fixture_start(&fx);
    waiter_init(&w1);
    waiter_init(&w2);
    fake_gemini_push_fault(fx.fake, FAKE_BLOCKED);
    run_call(&fx, &w1, "something nasty", 0);
    ck_assert_msg(w1.outcome == LLM_BLOCKED, "%s: %s", llm_outcome_name(w1.outcome), w1.message);
    ck_assert_str_eq(w1.block, "SAFETY");
    fake_gemini_push_fault(fx.fake, FAKE_SAFETY);
    run_call(&fx, &w2, "something nasty", 1);
    ck_assert_msg(w2.outcome == LLM_BLOCKED, "%s: %s", llm_outcome_name(w2.outcome), w2.message);
    ck_assert_str_eq(w2.block, "SAFETY");
    ck_assert_str_eq(w2.finish, "SAFETY");
    waiter_cleanup(&w1);
    waiter_cleanup(&w2);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_hang_times_out_within_deadline)
{
    fixture fx;
    waiter w;
    fx.base_url[0] = '\0';
    llm_config cfg = test_config(&fx);
    cfg.deadline_ms = 500;
    fixture_start_with(&fx, &cfg);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, FAKE_HANG);
    int64_t ms = run_call(&fx, &w, "hello?", 0);
    ck_assert_msg(w.outcome == LLM_TIMEOUT, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_ge(ms, 490);
    ck_assert_int_lt(ms, 900);
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_stream_deltas_in_order)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, FAKE_503); /* a retry before the stream starts is fine */
    run_call(&fx, &w, "Tell me about the sourdough and the rye", 1);
    ck_assert_msg(w.outcome == LLM_OK, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(w.retries, 1);
    ck_assert_int_eq(w.ndeltas, 4);
    ck_assert_str_eq(w.deltas.data, "ANSWER: |Tell me about| the sourdoug|h and the rye|");
    ck_assert_str_eq(w.text, "ANSWER: Tell me about the sourdough and the rye");
    ck_assert_str_eq(w.finish, "STOP");
    ck_assert_int_gt(w.total_tokens, 0);
    fake_gemini_request r;
    ck_assert_int_eq(fake_gemini_request_get(fx.fake, 1, &r), 0);
    ck_assert_str_eq(r.url, "/v1beta/models/gemini-test:streamGenerateContent?alt=sse");
    fake_gemini_request_cleanup(&r);
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_stream_cut_is_transport_error)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, FAKE_STREAM_CUT);
    run_call(&fx, &w, "Tell me about the sourdough and the rye", 1);
    ck_assert_msg(w.outcome == LLM_TRANSPORT, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(w.ndeltas, 2);
    ck_assert_int_eq(fake_gemini_request_count(fx.fake), 1); /* not retried after deltas */
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_cancel_mid_stream)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, FAKE_SLOW_STREAM);
    llm_request req = make_request("a slow story about bread", 1);
    llm_call *call;
    ck_assert_int_eq(llm_client_submit(fx.client, &req, on_delta, on_done, &w, &call, NULL), 0);
    ck_assert(wait_for(&w, &w.ndeltas, 1, 2000));
    llm_call_cancel(call);
    llm_call_cancel(call); /* idempotent */
    ck_assert(wait_for(&w, &w.done, 1, 1000));
    ck_assert_msg(w.outcome == LLM_CANCELLED, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_lt(w.ndeltas, 4);
    llm_call_cancel(call); /* after on_done: a no-op */
    llm_call_release(call);
    int64_t until = ad_clock_mono_ms() + 1500;
    while (fake_gemini_dropped_count(fx.fake) < 1 && ad_clock_mono_ms() < until) usleep(5000);
    ck_assert_uint_eq(fake_gemini_dropped_count(fx.fake), 1);
    usleep(50000);
    ck_assert_int_eq(w.done_count, 1);
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_cancel_while_backing_off)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, FAKE_429_RETRY_AFTER(2));
    llm_request req = make_request("wait for it", 0);
    llm_call *call;
    ck_assert_int_eq(llm_client_submit(fx.client, &req, on_delta, on_done, &w, &call, NULL), 0);
    int64_t until = ad_clock_mono_ms() + 1000;
    while (fake_gemini_request_count(fx.fake) < 1 && ad_clock_mono_ms() < until) usleep(2000);
    usleep(50000);
    llm_call_cancel(call);
    ck_assert(wait_for(&w, &w.done, 1, 500));
    ck_assert_int_eq(w.outcome, LLM_CANCELLED);
    llm_call_release(call);
    ck_assert_int_eq(fake_gemini_request_count(fx.fake), 1);
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

START_TEST(test_stop_cancels_pending_calls)
{
    fixture fx;
    waiter w[3];
    fixture_start(&fx);
    llm_call *kept;
    for (int i = 0; i < 3; i++) {
        waiter_init(&w[i]);
        fake_gemini_push_fault(fx.fake, FAKE_HANG);
        llm_request req = make_request("never answered", 0);
        ck_assert_int_eq(llm_client_submit(fx.client, &req, NULL, on_done, &w[i], i == 0 ? &kept : NULL, NULL), 0);
    }
    int64_t until = ad_clock_mono_ms() + 1000;
    while (fake_gemini_request_count(fx.fake) < 3 && ad_clock_mono_ms() < until) usleep(2000);
    llm_client_free(fx.client);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(w[i].done_count, 1);
        ck_assert_int_eq(w[i].outcome, LLM_CANCELLED);
        waiter_cleanup(&w[i]);
    }
    llm_call_cancel(kept); /* still valid until released; a no-op now */
    llm_call_release(kept);
    fake_gemini_stop(fx.fake);
}
END_TEST

START_TEST(test_submit_rejects_bad_request)
{
    fixture fx;
    fixture_start(&fx);
    llm_request req = make_request("", 0);
    ad_err e;
    llm_call *call = (llm_call *)&e;
    ck_assert_int_eq(llm_client_submit(fx.client, &req, NULL, on_done, NULL, &call, &e), AD_EINVAL);
    ck_assert_ptr_null(call);
    fixture_stop(&fx);

    llm_config bad = {.api_key = "k", .model = "../etc"};
    llm_client *c;
    ck_assert_int_eq(llm_client_start(&c, &bad, &e), AD_EINVAL);
    llm_config nokey = {.model = "m"};
    ck_assert_int_eq(llm_client_start(&c, &nokey, &e), AD_EINVAL);
    llm_config crlf = {.api_key = "k\r\nX-Evil: 1"};
    ck_assert_int_eq(llm_client_start(&c, &crlf, &e), AD_EINVAL);
}
END_TEST

/* Runs a few calls with debug logging into a file and checks the key is in
 * no line and in no URL the fake saw. */
START_TEST(test_key_never_logged_nor_in_url)
{
    char path[] = "/tmp/llm_client_log_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    ad_log_set_level(AD_LOG_DEBUG);

    fixture fx;
    fixture_start(&fx);
    fake_gemini_push_fault(fx.fake, FAKE_503);
    fake_gemini_push_fault(fx.fake, FAKE_400);
    waiter w[3];
    for (int i = 0; i < 3; i++) {
        waiter_init(&w[i]);
        run_call(&fx, &w[i], "log me", i == 2);
    }
    size_t n = fake_gemini_request_count(fx.fake);
    ck_assert_uint_eq(n, 4); /* 503 + retry, 400, stream */
    for (size_t i = 0; i < n; i++) {
        fake_gemini_request r;
        ck_assert_int_eq(fake_gemini_request_get(fx.fake, i, &r), 0);
        ck_assert_ptr_null(strstr(r.url, FAKE_GEMINI_KEY));
        ck_assert_ptr_null(strstr(r.url, "key="));
        fake_gemini_request_cleanup(&r);
    }
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_null(strstr(w[i].message, FAKE_GEMINI_KEY));
        waiter_cleanup(&w[i]);
    }
    fixture_stop(&fx);

    dup2(saved, STDERR_FILENO);
    close(saved);
    ad_log_set_level(AD_LOG_INFO);
    ad_buf log;
    ad_buf_init(&log);
    char chunk[4096];
    ssize_t got;
    lseek(fd, 0, SEEK_SET);
    while ((got = read(fd, chunk, sizeof(chunk))) > 0) ad_buf_append(&log, chunk, (size_t)got);
    close(fd);
    unlink(path);
    ck_assert_msg(log.data && strstr(log.data, "gemini attempt"), "no debug lines captured");
    ck_assert_ptr_null(strstr(log.data, FAKE_GEMINI_KEY));
    ck_assert_ptr_null(strstr(log.data, "SECRET"));
    ad_buf_cleanup(&log);
}
END_TEST

typedef struct crowd {
    pthread_mutex_t mu;
    int done;
    int ok;
} crowd;

static void on_crowd_done(void *ud, const llm_result *r)
{
    crowd *c = ud;
    pthread_mutex_lock(&c->mu);
    c->done++;
    if (r->outcome == LLM_OK) c->ok++;
    pthread_mutex_unlock(&c->mu);
}

/* 500 calls against a fake that answers each after 200 ms: a client that
 * serialised them would need 100 s; this one must finish in well under 5 s. */
START_TEST(test_500_concurrent_calls)
{
    enum { CALLS = 500 };
    fixture fx;
    fx.base_url[0] = '\0';
    llm_config cfg = test_config(&fx);
    cfg.deadline_ms = 10000;
    fixture_start_with(&fx, &cfg);
    fake_gemini_set_delay_ms(fx.fake, 200);
    crowd c = {.done = 0, .ok = 0};
    pthread_mutex_init(&c.mu, NULL);
    int64_t t0 = ad_clock_mono_ms();
    for (int i = 0; i < CALLS; i++) {
        char prompt[32];
        snprintf(prompt, sizeof(prompt), "question %d", i);
        llm_request req = make_request(prompt, i % 5 == 0);
        ck_assert_int_eq(llm_client_submit(fx.client, &req, NULL, on_crowd_done, &c, NULL, NULL), 0);
    }
    int done = 0;
    while (ad_clock_mono_ms() - t0 < 8000) {
        pthread_mutex_lock(&c.mu);
        done = c.done;
        pthread_mutex_unlock(&c.mu);
        if (done == CALLS) break;
        usleep(5000);
    }
    int64_t ms = ad_clock_mono_ms() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "llm_client: %d concurrent calls (200 ms upstream delay) in %lld ms, peak RSS %ld KiB\n",
            CALLS, (long long)ms, ru.ru_maxrss);
    ck_assert_int_eq(done, CALLS);
    ck_assert_int_eq(c.ok, CALLS);
    ck_assert_int_lt(ms, 5000);
    ck_assert_uint_eq(fake_gemini_request_count(fx.fake), CALLS);
    fixture_stop(&fx);
    pthread_mutex_destroy(&c.mu);
}
END_TEST

/* A 429 that names no delay: the waits double from 1 s, so four attempts
 * are not spent within a second. */
START_TEST(test_429_without_delay_backs_off_from_a_second)
{
    fixture fx;
    waiter w;
    fx.base_url[0] = '\0';
    llm_config cfg = test_config(&fx);
    cfg.deadline_ms = 6000;
    fixture_start_with(&fx, &cfg);
    waiter_init(&w);
    fake_gemini_push_fault(fx.fake, (fake_fault){FAKE_KIND_429, -1, -1, 0, NULL});
    fake_gemini_push_fault(fx.fake, (fake_fault){FAKE_KIND_429, -1, -1, 0, NULL});
    int64_t ms = run_call(&fx, &w, "quota", 0);
    ck_assert_msg(w.outcome == LLM_OK, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(w.retries, 2);
    ck_assert_int_ge(ms, 3000); /* 1 s, then 2 s */
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

/* Gemini's own DEADLINE_EXCEEDED on every attempt is a timeout, not
 * "unavailable". */
START_TEST(test_504_exhausted_is_timeout)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    for (int i = 0; i < 4; i++) fake_gemini_push_fault(fx.fake, FAKE_504);
    run_call(&fx, &w, "slow", 0);
    ck_assert_msg(w.outcome == LLM_TIMEOUT, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(w.http_status, 504);
    ck_assert_int_eq(w.retries, 3);
    ck_assert_ptr_nonnull(strstr(w.message, "Deadline expired"));
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

/* llm_request.model picks the model of one call; a bad name is refused. */
START_TEST(test_call_model_override)
{
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    llm_request req = make_request("which model?", 1);
    req.model = "models/gemini-agent-model";
    ck_assert_int_eq(llm_client_submit(fx.client, &req, on_delta, on_done, &w, NULL, NULL), 0);
    ck_assert(wait_for(&w, &w.done, 1, 5000));
    ck_assert_msg(w.outcome == LLM_OK, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_str_eq(w.model, "gemini-agent-model");
    fake_gemini_request r;
    ck_assert_int_eq(fake_gemini_request_get(fx.fake, 0, &r), 0);
    ck_assert_str_eq(r.url, "/v1beta/models/gemini-agent-model:streamGenerateContent?alt=sse");
    fake_gemini_request_cleanup(&r);
    ad_err e;
    req.model = "gemini/../../etc";
    ck_assert_int_eq(llm_client_submit(fx.client, &req, on_delta, on_done, &w, NULL, &e), AD_EINVAL);
    ck_assert(llm_model_is_gemini("gemini-3.8-flash") && llm_model_is_gemini("models/gemini-x"));
    ck_assert(!llm_model_is_gemini("distilbert-base-uncased") && !llm_model_is_gemini(NULL) &&
              !llm_model_is_gemini("gemini-a b"));
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

/* GET models/{m}: found, missing, retired, unusable, unreachable. */
START_TEST(test_model_lookup)
{
    fixture fx;
    fixture_start(&fx);
    llm_config cfg = test_config(&fx);
    llm_model_check mc;
    llm_model_lookup(&cfg, 2000, &mc);
    ck_assert_msg(mc.state == LLM_MODEL_OK, "%s", mc.message);
    ck_assert_str_eq(mc.model, "gemini-test");
    cfg.model = "missing-model";
    llm_model_lookup(&cfg, 2000, &mc);
    ck_assert_int_eq(mc.state, LLM_MODEL_MISSING);
    ck_assert_ptr_nonnull(strstr(mc.message, "does not exist"));
    cfg.model = "gemini-2.5-flash";
    llm_model_lookup(&cfg, 2000, &mc);
    ck_assert_int_eq(mc.state, LLM_MODEL_MISSING);
    ck_assert_ptr_nonnull(strstr(mc.message, "retired"));
    ck_assert_ptr_nonnull(strstr(mc.message, LLM_DEFAULT_MODEL));
    cfg.model = "embed-model";
    llm_model_lookup(&cfg, 2000, &mc);
    ck_assert_int_eq(mc.state, LLM_MODEL_UNUSABLE);
    ck_assert_str_eq(llm_model_state_name(mc.state), "unusable");
    fake_gemini_request r;
    ck_assert_int_eq(fake_gemini_request_get(fx.fake, 0, &r), 0);
    ck_assert_str_eq(r.method, "GET");
    ck_assert_str_eq(r.url, "/v1beta/models/gemini-test");
    ck_assert_ptr_nonnull(strcasestr(r.headers, "x-goog-api-key: " FAKE_GEMINI_KEY "\n"));
    fake_gemini_request_cleanup(&r);

    /* The client's own lookup runs beside it and reports through the client. */
    llm_client_model_status(fx.client, &mc);
    ck_assert_int_eq(mc.state, LLM_MODEL_UNCHECKED);
    llm_client_check_model(fx.client, 2000);
    for (int i = 0; i < 200 && mc.state == LLM_MODEL_UNCHECKED; i++) {
        usleep(10000);
        llm_client_model_status(fx.client, &mc);
    }
    ck_assert_msg(mc.state == LLM_MODEL_OK, "%s", mc.message);
    fixture_stop(&fx);

    /* Nothing listens: bounded, and "unchecked", not "missing". */
    cfg.model = "gemini-test";
    cfg.base_url = "http://127.0.0.1:9";
    int64_t t0 = ad_clock_mono_ms();
    llm_model_lookup(&cfg, 500, &mc);
    ck_assert_int_lt(ad_clock_mono_ms() - t0, 1500);
    ck_assert_int_eq(mc.state, LLM_MODEL_UNCHECKED);
    ck_assert_ptr_null(strstr(mc.message, FAKE_GEMINI_KEY));
}
END_TEST

/* A start-up lookup still waiting on a server that never answers does not
 * hold shutdown for its whole timeout: stopping the client abandons it. */
START_TEST(test_stop_abandons_model_lookup)
{
    /* Listening but never answering: the kernel completes the handshake,
     * the GET goes out, and no reply ever comes. */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(ls, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sa);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(ls, 4), 0);
    ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&sa, &slen), 0);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    llm_config cfg = {.api_key = FAKE_GEMINI_KEY, .model = "gemini-test", .base_url = base};
    llm_client *c;
    ad_err e;
    ck_assert_msg(llm_client_start(&c, &cfg, &e) == 0, "%s", e.msg);
    llm_client_check_model(c, 20000);
    usleep(200000); /* the GET is out and waiting */
    int64_t t0 = ad_clock_mono_ms();
    llm_client_stop(c);
    int64_t took = ad_clock_mono_ms() - t0;
    ck_assert_msg(took < 2500, "stop waited %lld ms for the lookup", (long long)took);
    llm_model_check mc;
    llm_client_model_status(c, &mc);
    ck_assert_int_eq(mc.state, LLM_MODEL_UNCHECKED);
    llm_client_free(c);
    close(ls);
}
END_TEST

/* An error event that opens a stream is retried like the HTTP status it
 * names: a 429 without RetryInfo waits from 1 s, and DEADLINE_EXCEEDED on
 * every attempt is a timeout. */
START_TEST(test_stream_error_event_retried_like_its_status)
{
    static const char quota[] =
        "data: {\"error\":{\"code\":429,\"message\":\"Quota\",\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n";
    static const char deadline[] =
        "data: {\"error\":{\"code\":504,\"message\":\"Deadline\",\"status\":\"DEADLINE_EXCEEDED\"}}\n\n";
    fixture fx;
    waiter w;
    fx.base_url[0] = '\0';
    llm_config cfg = test_config(&fx);
    cfg.deadline_ms = 6000;
    fixture_start_with(&fx, &cfg);
    waiter_init(&w);
    fake_gemini_push_replay(fx.fake, 200, quota);
    fake_gemini_push_replay(fx.fake, 200, quota);
    int64_t ms = run_call(&fx, &w, "quota", 1);
    ck_assert_msg(w.outcome == LLM_OK, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(w.retries, 2);
    ck_assert_msg(ms >= 3000, "two 429 events retried after %lld ms", (long long)ms); /* 1 s, then 2 s */
    waiter_cleanup(&w);

    waiter_init(&w);
    for (int i = 0; i < 4; i++) fake_gemini_push_replay(fx.fake, 200, deadline);
    run_call(&fx, &w, "slow", 1);
    ck_assert_msg(w.outcome == LLM_TIMEOUT, "%s: %s", llm_outcome_name(w.outcome), w.message);
    ck_assert_int_eq(w.retries, 3);
    ck_assert_str_eq(w.upstream_status, "DEADLINE_EXCEEDED");
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

/* ---- recorded shapes: tests/data/gemini/, replayed by the fake ---- */

/* One fixture and exactly what the client hands its caller for it. */
typedef struct replay_case {
    const char *file;   /* under tests/data/gemini/; .sse is streamed */
    int status;         /* the HTTP status the fake answers with */
    const char *then;   /* a fixture for the retry that follows, or NULL */
    llm_outcome outcome;
    const char *text;   /* the whole text in the result */
    const char *deltas; /* on_delta calls, each followed by '|' */
    const char *finish;
    const char *block;
    int has_usage;
    long prompt, output, thinking, total;
    int retries;
    const char *message;         /* a substring of the message, or NULL */
    const char *upstream_status; /* Google's error status, or "" */
    const char *finish_message;  /* Gemini's finishMessage; NULL: "" */
} replay_case;

#define U(p, o, t, tot) 1, p, o, t, tot
#define NO_USAGE 0, -1, -1, -1, -1

static const replay_case replay_cases[] = {
    /* Answers. */
    {"basic.json", 200, NULL, LLM_OK, "Sourdough is baked at dawn.", "", "STOP", "", U(12, 7, -1, 19), 0, NULL, "", NULL},
    {"basic.sse", 200, NULL, LLM_OK, "Sourdough is baked at dawn.", "Sourdough is |baked at dawn.|", "STOP", "", U(12, 7, -1, 19), 0, NULL, "", NULL},
    {"multipart.json", 200, NULL, LLM_OK, "Rye on Mondays", "", "STOP", "", U(9, 3, -1, 12), 0, NULL, "", NULL},
    {"multipart.sse", 200, NULL, LLM_OK, "Rye on Mondays", "Rye on |Mondays|", "STOP", "", U(9, 3, -1, 12), 0, NULL, "", NULL},
    {"multicandidate.json", 200, NULL, LLM_OK, "A answer", "", "STOP", "", U(5, 4, -1, 9), 0, NULL, "", NULL},
    {"multicandidate.sse", 200, NULL, LLM_OK, "A answer", "A |answer|", "STOP", "", U(5, 4, -1, 9), 0, NULL, "", NULL},
    {"thought.json", 200, NULL, LLM_OK, "Bake at 6.", "", "STOP", "", U(10, 4, 70, 84), 0, NULL, "", NULL},
    {"thought.sse", 200, NULL, LLM_OK, "Bake at 6.", "Bake at 6.|", "STOP", "", U(10, 4, 70, 84), 0, NULL, "", NULL},
    {"max-tokens.json", 200, NULL, LLM_OK, "The oven is", "", "MAX_TOKENS", "", U(10, 3, 20, 33), 0, NULL, "", NULL},
    {"max-tokens.sse", 200, NULL, LLM_OK, "The oven is", "The oven |is|", "MAX_TOKENS", "", U(10, 3, 20, 33), 0, NULL, "", NULL},
    {"unknown-fields.json", 200, NULL, LLM_OK, "Hello", "", "STOP", "", U(6, 1, -1, 9), 0, NULL, "", NULL},
    {"unknown-fields.sse", 200, NULL, LLM_OK, "Hello", "Hello|", "STOP", "", U(6, 1, -1, 9), 0, NULL, "", NULL},
    {"string-counts.json", 200, NULL, LLM_OK, "Twelve loaves.", "", "STOP", "", U(12, 3, 5, 20), 0, NULL, "", NULL},
    {"string-counts.sse", 200, NULL, LLM_OK, "Twelve loaves.", "Twelve loaves.|", "STOP", "", U(12, 3, 5, 20), 0, NULL, "", NULL},
    {"no-usage.json", 200, NULL, LLM_OK, "Yes.", "", "STOP", "", NO_USAGE, 0, NULL, "", NULL},
    {"no-usage.sse", 200, NULL, LLM_OK, "Yes.", "Yes.|", "STOP", "", NO_USAGE, 0, NULL, "", NULL},
    {"finish-message.json", 200, NULL, LLM_OK, "Hello world!", "", "STOP", "", NO_USAGE, 0, NULL, "", "Finished successfully"},
    {"finish-message.sse", 200, NULL, LLM_OK, "Hello world!", "Hello| world!|", "STOP", "", NO_USAGE, 0, NULL, "", "Finished successfully"},
    /* A whole response without finishReason is its answer; a stream that
     * ends without one was cut. */
    {"no-finish.json", 200, NULL, LLM_OK, "Partial", "", "", "", U(3, 1, -1, 4), 0, NULL, "", NULL},
    {"no-finish.sse", 200, NULL, LLM_TRANSPORT, "Partial", "Partial|", "", "", U(3, 1, -1, 4), 0, "before a finishReason", "", NULL},
    /* Refusals: the flagged chunk's text never reaches the caller. */
    {"safety-text.json", 200, NULL, LLM_BLOCKED, "", "", "SAFETY", "SAFETY", U(8, 1, -1, 9), 0, "SAFETY", "", NULL},
    {"safety-text.sse", 200, NULL, LLM_BLOCKED, "Sure, ", "Sure, |", "SAFETY", "SAFETY", U(8, 4, -1, 12), 0, "SAFETY", "", NULL},
    {"safety-empty.json", 200, NULL, LLM_BLOCKED, "", "", "SAFETY", "SAFETY", U(8, -1, -1, 8), 0, "SAFETY", "", NULL},
    {"safety-empty.sse", 200, NULL, LLM_BLOCKED, "", "", "SAFETY", "SAFETY", U(8, -1, -1, 8), 0, "SAFETY", "", NULL},
    {"prompt-blocked.json", 200, NULL, LLM_BLOCKED, "", "", "", "SAFETY", U(5, -1, -1, 5), 0, "The prompt asks for harm", "", NULL},
    {"prompt-blocked.sse", 200, NULL, LLM_BLOCKED, "", "", "", "SAFETY", U(5, -1, -1, 5), 0, "The prompt asks for harm", "", NULL},
    {"prompt-blocked-unknown.json", 200, NULL, LLM_BLOCKED, "", "", "", "FAKE_NEW_BLOCK_REASON", NO_USAGE, 0, "prompt", "", NULL},
    {"prompt-blocked-unknown.sse", 200, NULL, LLM_BLOCKED, "", "", "", "FAKE_NEW_BLOCK_REASON", NO_USAGE, 0, "prompt", "", NULL},
    {"recitation.json", 200, NULL, LLM_BLOCKED, "", "", "RECITATION", "RECITATION", U(18, -1, -1, 18), 0, "RECITATION", "", NULL},
    {"recitation.sse", 200, NULL, LLM_BLOCKED, "Copyrighted text more of it", "Copyrighted text |more of it|", "RECITATION", "RECITATION", NO_USAGE, 0, "RECITATION", "", NULL},
    {"prohibited-content.json", 200, NULL, LLM_BLOCKED, "", "", "PROHIBITED_CONTENT", "PROHIBITED_CONTENT", U(7, 2, -1, 9), 0, NULL, "", NULL},
    {"prohibited-content.sse", 200, NULL, LLM_BLOCKED, "", "", "PROHIBITED_CONTENT", "PROHIBITED_CONTENT", U(7, 2, -1, 9), 0, NULL, "", NULL},
    {"spii.json", 200, NULL, LLM_BLOCKED, "", "", "SPII", "SPII", U(7, 2, -1, 9), 0, NULL, "", NULL},
    {"spii.sse", 200, NULL, LLM_BLOCKED, "", "", "SPII", "SPII", U(7, 2, -1, 9), 0, NULL, "", NULL},
    {"blocklist.json", 200, NULL, LLM_BLOCKED, "", "", "BLOCKLIST", "BLOCKLIST", U(7, 2, -1, 9), 0, NULL, "", NULL},
    {"blocklist.sse", 200, NULL, LLM_BLOCKED, "", "", "BLOCKLIST", "BLOCKLIST", U(7, 2, -1, 9), 0, NULL, "", NULL},
    /* Non-answers, each named. */
    {"other-message.json", 200, NULL, LLM_NO_ANSWER, "", "", "OTHER", "", NO_USAGE, 0, "OTHER (Model failed to generate content due to internal error.)", "", "Model failed to generate content due to internal error."},
    {"other-message.sse", 200, NULL, LLM_NO_ANSWER, "", "", "OTHER", "", NO_USAGE, 0, "OTHER (Model failed to generate content due to internal error.)", "", "Model failed to generate content due to internal error."},
    {"unknown-finish.json", 200, NULL, LLM_NO_ANSWER, "", "", "FAKE_NEW_FINISH_REASON", "", NO_USAGE, 0, "FAKE_NEW_FINISH_REASON", "", NULL},
    {"unknown-finish.sse", 200, NULL, LLM_NO_ANSWER, "Cats ", "Cats |", "FAKE_ENUM", "", NO_USAGE, 0, "FAKE_ENUM", "", NULL},
    {"language.json", 200, NULL, LLM_NO_ANSWER, "", "", "LANGUAGE", "", U(4, -1, -1, 4), 0, "LANGUAGE", "", NULL},
    {"language.sse", 200, NULL, LLM_NO_ANSWER, "", "", "LANGUAGE", "", U(4, -1, -1, 4), 0, "LANGUAGE", "", NULL},
    {"empty-content.json", 200, NULL, LLM_NO_ANSWER, "", "", "", "", NO_USAGE, 0, "no answer text", "", NULL},
    {"empty-content.sse", 200, NULL, LLM_NO_ANSWER, "", "", "", "", NO_USAGE, 0, "no answer text", "", NULL},
    {"function-call.json", 200, NULL, LLM_NO_ANSWER, "", "", "STOP", "", U(9, 5, -1, 14), 0, "only parts without text", "", NULL},
    {"function-call.sse", 200, NULL, LLM_NO_ANSWER, "", "", "STOP", "", U(9, 5, -1, 14), 0, "only parts without text", "", NULL},
    {"thinking-exhausted.json", 200, NULL, LLM_THINKING_EXHAUSTED, "", "", "MAX_TOKENS", "", U(10, -1, 128, 138), 0, "128 thinking tokens", "", NULL},
    {"thinking-exhausted.sse", 200, NULL, LLM_THINKING_EXHAUSTED, "", "", "MAX_TOKENS", "", U(10, -1, 128, 138), 0, "128 thinking tokens", "", NULL},
    {"empty-candidates.json", 200, NULL, LLM_BAD_RESPONSE, "", "", "", "", NO_USAGE, 0, "no candidates (Message)", "", NULL},
    {"empty-candidates.sse", 200, NULL, LLM_BAD_RESPONSE, "", "", "", "", NO_USAGE, 0, "no candidates (Message)", "", NULL},
    {"malformed-content.json", 200, NULL, LLM_BAD_RESPONSE, "", "", "", "", NO_USAGE, 0, "not a Content", "", NULL},
    {"malformed-content.sse", 200, NULL, LLM_BAD_RESPONSE, "", "", "", "", NO_USAGE, 0, "not a Content", "", NULL},
    {"not-gemini.json", 200, NULL, LLM_BAD_RESPONSE, "", "", "", "", NO_USAGE, 0, "not a Gemini reply", "", NULL},
    {"not-gemini.sse", 200, NULL, LLM_BAD_RESPONSE, "", "", "", "", NO_USAGE, 0, "not a Gemini reply", "", NULL},
    /* Errors: in the stream after text, as the status, and as the first event. */
    {"error-midstream.sse", 200, NULL, LLM_UNAVAILABLE, "First Second ", "First |Second |", "STOP", "", NO_USAGE, 0, "499 CANCELLED: The operation was cancelled for projects/[redacted].", "CANCELLED", NULL},
    {"http-error.json", 400, NULL, LLM_REJECTED, "", "", "", "", NO_USAGE, 0, "User location is not supported for the API use.", "FAILED_PRECONDITION", NULL},
    {"http-error.sse", 400, NULL, LLM_REJECTED, "", "", "", "", NO_USAGE, 0, "User location is not supported for the API use.", "FAILED_PRECONDITION", NULL},
    {"error-first.json", 503, "basic.json", LLM_OK, "Sourdough is baked at dawn.", "", "STOP", "", U(12, 7, -1, 19), 1, NULL, "", NULL},
    {"error-first.sse", 200, "basic.sse", LLM_OK, "Sourdough is baked at dawn.", "Sourdough is |baked at dawn.|", "STOP", "", U(12, 7, -1, 19), 1, NULL, "", NULL},
};

static char *replay_read(const char *file)
{
    char path[256];
    snprintf(path, sizeof(path), "tests/data/gemini/%s", file);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (run from the repository root)", path);
    ad_buf b;
    ad_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) ad_buf_append(&b, chunk, n);
    fclose(f);
    return ad_buf_steal(&b, NULL);
}

static void replay_push(fixture *fx, const char *file, int status)
{
    char *body = replay_read(file);
    fake_gemini_push_replay(fx->fake, status, body);
    free(body);
}

START_TEST(test_replay_fixture)
{
    const replay_case *c = &replay_cases[_i];
    fixture fx;
    waiter w;
    fixture_start(&fx);
    waiter_init(&w);
    replay_push(&fx, c->file, c->status);
    if (c->then) replay_push(&fx, c->then, 200);
    run_call(&fx, &w, "When is the bread baked?", strstr(c->file, ".sse") != NULL);
    const char *f = c->file;
    ck_assert_msg(w.outcome == c->outcome, "%s: outcome %s (%s), want %s", f, llm_outcome_name(w.outcome),
                  w.message, llm_outcome_name(c->outcome));
    ck_assert_msg(!strcmp(w.text, c->text), "%s: text '%s', want '%s'", f, w.text, c->text);
    const char *deltas = w.deltas.data ? w.deltas.data : "";
    ck_assert_msg(!strcmp(deltas, c->deltas), "%s: deltas '%s', want '%s'", f, deltas, c->deltas);
    ck_assert_msg(!strcmp(w.finish, c->finish), "%s: finish '%s', want '%s'", f, w.finish, c->finish);
    ck_assert_msg(!strcmp(w.block, c->block), "%s: block '%s', want '%s'", f, w.block, c->block);
    ck_assert_msg(w.has_usage == c->has_usage && w.prompt_tokens == c->prompt &&
                      w.output_tokens == c->output && w.thinking_tokens == c->thinking &&
                      w.total_tokens == c->total,
                  "%s: usage %d %ld/%ld/%ld/%ld, want %d %ld/%ld/%ld/%ld", f, w.has_usage,
                  w.prompt_tokens, w.output_tokens, w.thinking_tokens, w.total_tokens, c->has_usage,
                  c->prompt, c->output, c->thinking, c->total);
    ck_assert_msg(w.retries == c->retries, "%s: %d retries, want %d", f, w.retries, c->retries);
    ck_assert_msg(!c->message || strstr(w.message, c->message), "%s: message '%s' lacks '%s'", f,
                  w.message, c->message);
    ck_assert_msg(!strcmp(w.upstream_status, c->upstream_status), "%s: upstream status '%s', want '%s'",
                  f, w.upstream_status, c->upstream_status);
    const char *fm = c->finish_message ? c->finish_message : "";
    ck_assert_msg(!strcmp(w.finish_message, fm), "%s: finish message '%s', want '%s'", f,
                  w.finish_message, fm);
    long want_status = c->then ? 200 : c->status;
    ck_assert_msg(w.http_status == want_status, "%s: HTTP status %ld, want %ld", f, w.http_status,
                  want_status);
    ck_assert_msg(w.retry_after_s == (w.outcome == LLM_UNAVAILABLE ? 1 : 0),
                  "%s: retry_after_s %d", f, w.retry_after_s);
    ck_assert_str_eq(w.model, "gemini-test");
    ck_assert_int_eq(fake_gemini_request_count(fx.fake), (size_t)(1 + c->retries));
    waiter_cleanup(&w);
    fixture_stop(&fx);
}
END_TEST

Suite *llm_client_suite(void)
{
    Suite *s = suite_create("llm_client");
    TCase *tc = tcase_create("fake_gemini");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_success);
    tcase_add_test(tc, test_429_retry_after_then_success);
    tcase_add_test(tc, test_429_retry_info_honoured);
    tcase_add_test(tc, test_503_then_success);
    tcase_add_test(tc, test_500_exhausts_retries);
    tcase_add_test(tc, test_retry_wait_past_deadline_is_unavailable);
    tcase_add_test(tc, test_400_rejected_not_retried);
    tcase_add_test(tc, test_wrong_key_rejected);
    tcase_add_test(tc, test_non_json_bad_response);
    tcase_add_test(tc, test_blocked_and_safety);
    tcase_add_test(tc, test_hang_times_out_within_deadline);
    tcase_add_test(tc, test_stream_deltas_in_order);
    tcase_add_test(tc, test_stream_cut_is_transport_error);
    tcase_add_test(tc, test_cancel_mid_stream);
    tcase_add_test(tc, test_cancel_while_backing_off);
    tcase_add_test(tc, test_stop_cancels_pending_calls);
    tcase_add_test(tc, test_submit_rejects_bad_request);
    tcase_add_test(tc, test_key_never_logged_nor_in_url);
    tcase_add_test(tc, test_500_concurrent_calls);
    tcase_add_test(tc, test_429_without_delay_backs_off_from_a_second);
    tcase_add_test(tc, test_504_exhausted_is_timeout);
    tcase_add_test(tc, test_call_model_override);
    tcase_add_test(tc, test_model_lookup);
    tcase_add_test(tc, test_stop_abandons_model_lookup);
    tcase_add_test(tc, test_stream_error_event_retried_like_its_status);
    suite_add_tcase(s, tc);
    TCase *replay = tcase_create("replay");
    tcase_set_timeout(replay, 30);
    tcase_add_loop_test(replay, test_replay_fixture, 0,
                        (int)(sizeof(replay_cases) / sizeof(replay_cases[0])));
    suite_add_tcase(s, replay);
    return s;
}
