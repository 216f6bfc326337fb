#include "handlers/inference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/async.h"
#include "api/stream.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/series.h"
#include "handlers/agents.h"
#include "llm/client.h"
#include "model/answerer.h"
#include "model/text.h"
#include "storage/db.h"
#include "storage/inferences.h"
#include "storage/versions.h"

#define SNIPPET_MAX 240
#define LOCAL_MODEL "local-bm25"
#define NOTHING_FOUND "I do not know: nothing in this agent's material matches the question."

/* Everything a call needs after the handler has returned (Gemini path). */
typedef struct inference_call {
    struct ad_async *async;
    const ad_app *app;
    int64_t agent_id;
    char user_id[AGENT_USER_ID_MAX + 1];
    char version[65];           /* the model version that answers */
    char *prompt;
    cJSON *sources;
    int64_t start_ns;          /* monotonic, when the request reached the handler */
    int stream;
    int stream_started;
    ad_stream *events;
    llm_call *call;
    char request_id[72];        /* for error bodies built after the handler returned */
} inference_call;

static int inference_count_tokens(const char *s)
{
    text_tokens t;
    text_tokens_init(&t);
    size_t n = text_tokenize(s, strlen(s), &t);
    text_tokens_cleanup(&t);
    return (int)n;
}

static double round4(double v)
{
    return floor(v * 10000.0 + 0.5) / 10000.0;
}

static cJSON *inference_sources(const answerer_result *a)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < a->nhits; i++) {
        const passage_hit *h = &a->hits[i];
        cJSON *s = cJSON_CreateObject();
        /* Passage ids count from 1 within the version. */
        cJSON_AddNumberToObject(s, "passage_id", (double)h->ord + 1);
        cJSON_AddNumberToObject(s, "score", round4(h->score));
        const char *text = h->answer ? h->answer : h->body;
        size_t n = strlen(text);
        if (n > SNIPPET_MAX) {
            n = SNIPPET_MAX;
            while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80) n--; /* whole characters */
        }
        char *snip = ad_strndup(text, n);
        cJSON_AddStringToObject(s, "snippet", snip);
        free(snip);
        cJSON_AddItemToArray(arr, s);
    }
    return arr;
}

/* Gemini's usage: null when it sent none; thinking_tokens counted apart
 * from the answer's; total_tokens what Gemini billed (its totalTokenCount),
 * or the sum when it gave no total. */
static cJSON *inference_gemini_usage(const llm_result *r)
{
    if (!r->has_usage) return cJSON_CreateNull();
    long pt = r->prompt_tokens > 0 ? r->prompt_tokens : 0;
    long ot = r->output_tokens > 0 ? r->output_tokens : 0;
    long tt = r->thinking_tokens > 0 ? r->thinking_tokens : 0;
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)pt);
    cJSON_AddNumberToObject(u, "output_tokens", (double)ot);
    cJSON_AddNumberToObject(u, "thinking_tokens", (double)tt);
    cJSON_AddNumberToObject(u, "total_tokens",
                            (double)(r->total_tokens >= 0 ? r->total_tokens : pt + ot + tt));
    return u;
}

static cJSON *inference_usage(long prompt_tokens, long output_tokens, long total)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)(prompt_tokens < 0 ? 0 : prompt_tokens));
    cJSON_AddNumberToObject(u, "output_tokens", (double)(output_tokens < 0 ? 0 : output_tokens));
    cJSON_AddNumberToObject(u, "total_tokens",
                            (double)(total >= 0 ? total : (prompt_tokens > 0 ? prompt_tokens : 0) +
                                                              (output_tokens > 0 ? output_tokens : 0)));
    return u;
}

/* The one place both backends report an inference: its log row and its
 * latency histogram. */
static void inference_log_call(const ad_app *app, int64_t agent_id, const char *backend, int status,
                             const char *outcome, int64_t elapsed_ns, long pt, long ot, int retries,
                             const char *prompt)
{
    series_inference_done(strcmp(backend, "gemini") == 0 ? SERIES_BACKEND_GEMINI : SERIES_BACKEND_LOCAL,
                          elapsed_ns);
    inference_record r = {agent_id, backend, status, outcome, elapsed_ns / 1000000,
                          pt < 0 ? 0 : (int)pt, ot < 0 ? 0 : (int)ot, retries,
                          app->cfg->log_prompts ? prompt : NULL};
    storage_inferences_submit(&r);
}

/* The full response body of a successful call. */
static cJSON *inference_body(const char *user_id, const char *version, const char *prompt, const char *text,
                             const char *backend, const char *model, cJSON *sources, cJSON *usage,
                             int64_t latency, int retries)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", user_id);
    cJSON_AddStringToObject(o, "prompt", prompt);
    cJSON_AddStringToObject(o, "response", text);
    ad_json_add_time(o, "timestamp", ad_clock_now_ms());
    cJSON_AddStringToObject(o, "backend", backend);
    cJSON_AddStringToObject(o, "model", model);
    /* The model version that answered: one whole version, read in one snapshot. */
    cJSON_AddStringToObject(o, "version", version);
    cJSON_AddItemToObject(o, "sources", sources);
    cJSON_AddItemToObject(o, "usage", usage);
    cJSON_AddNumberToObject(o, "latency_ms", (double)latency);
    cJSON_AddNumberToObject(o, "retries", retries);
    return o;
}

static void inference_emit(ad_stream *s, const char *event, cJSON *data)
{
    char *txt = cJSON_PrintUnformatted(data);
    ad_stream_event(s, event, txt, strlen(txt));
    cJSON_free(txt);
    cJSON_Delete(data);
}

static void inference_emit_text(ad_stream *s, const char *text, size_t len)
{
    cJSON *d = cJSON_CreateObject();
    char *t = ad_strndup(text, len);
    cJSON_AddStringToObject(d, "text", t);
    free(t);
    inference_emit(s, "token", d);
}

/* The closing event of a stream: usage, sources and where the answer came from. */
static cJSON *inference_done_event(const char *version, const char *backend, const char *model,
                                   cJSON *sources, cJSON *usage, int64_t latency, int retries,
                                   const char *finish_reason)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "backend", backend);
    cJSON_AddStringToObject(d, "model", model);
    cJSON_AddStringToObject(d, "version", version);
    cJSON_AddItemToObject(d, "usage", usage);
    cJSON_AddItemToObject(d, "sources", sources);
    cJSON_AddNumberToObject(d, "latency_ms", (double)latency);
    cJSON_AddNumberToObject(d, "retries", retries);
    if (finish_reason && finish_reason[0]) cJSON_AddStringToObject(d, "finish_reason", finish_reason);
    else cJSON_AddNullToObject(d, "finish_reason");
    return d;
}

/* ---- the local backend ---- */

static void inference_local(ad_request *req, ad_response *res, const agent_row *a,
                            const char *version, const char *prompt, answerer_result *ans, int stream, int64_t start_ns)
{
    const char *text = ans->text ? ans->text : NOTHING_FOUND;
    int pt = inference_count_tokens(prompt), ot = inference_count_tokens(text);
    int64_t elapsed_ns = ad_clock_mono_ns() - start_ns;
    int64_t latency = elapsed_ns / 1000000;
    inference_log_call(req->app, a->id, "local", 200, "ok", elapsed_ns, pt, ot, 0, prompt);
    cJSON *sources = inference_sources(ans);
    if (!stream) {
        cJSON *o = inference_body(a->user_id, version, prompt, text, "local", LOCAL_MODEL, sources,
                                  inference_usage(pt, ot, -1), latency, 0);
        cJSON_AddNumberToObject(o, "confidence", round4(ans->confidence));
        ad_response_json(res, 200, o);
        return;
    }
    /* The local answer streams word by word, like a generated one. */
    ad_stream *s = ad_stream_new(NULL, NULL);
    size_t n = strlen(text), i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && text[j] == ' ') j++;
        while (j < n && text[j] != ' ') j++;
        inference_emit_text(s, text + i, j - i);
        i = j;
    }
    cJSON *done = inference_done_event(version, "local", LOCAL_MODEL, sources, inference_usage(pt, ot, -1),
                                       latency, 0, "STOP");
    cJSON_AddNumberToObject(done, "confidence", round4(ans->confidence));
    inference_emit(s, "done", done);
    res->status = 200;
    res->stream = ad_stream_ref(s);
    ad_stream_end(s);
}

/* ---- the Gemini backend ---- */

typedef struct upstream_error {
    int status;
    const char *code;
} upstream_error;

static upstream_error inference_map_outcome(const llm_result *r)
{
    switch (r->outcome) {
    case LLM_BLOCKED:
        if (strcmp(r->block_reason, "RECITATION") == 0) return (upstream_error){422, "blocked_recitation"};
        return (upstream_error){422, "blocked_by_safety"};
    case LLM_NO_ANSWER: return (upstream_error){502, "upstream_no_answer"};
    case LLM_THINKING_EXHAUSTED: return (upstream_error){502, "upstream_thinking_exhausted"};
    case LLM_REJECTED: return (upstream_error){502, "upstream_rejected"};
    case LLM_UNAVAILABLE: return (upstream_error){503, "upstream_unavailable"};
    case LLM_TIMEOUT: return (upstream_error){504, "upstream_timeout"};
    case LLM_BAD_RESPONSE: return (upstream_error){502, "upstream_bad_response"};
    case LLM_CANCELLED: return (upstream_error){503, "service_stopping"};
    case LLM_TRANSPORT: return (upstream_error){502, "upstream_error"};
    case LLM_OK: break;
    }
    return (upstream_error){200, "ok"};
}

static void inference_abort(void *ud)
{
    inference_call *c = ud;
    if (c->call) llm_call_cancel(c->call);
}

static void inference_start_stream(inference_call *c)
{
    ad_response r;
    ad_response_init(&r);
    r.status = 200;
    r.stream = ad_stream_ref(c->events);
    c->stream_started = 1;
    ad_async_complete(c->async, &r);
    ad_response_cleanup(&r);
}

static void inference_on_delta(void *ud, const char *text, size_t len)
{
    inference_call *c = ud;
    if (!c->stream_started) inference_start_stream(c);
    inference_emit_text(c->events, text, len);
}

static void inference_on_done(void *ud, const llm_result *r)
{
    inference_call *c = ud;
    int64_t elapsed_ns = ad_clock_mono_ns() - c->start_ns;
    int64_t latency = elapsed_ns / 1000000;
    upstream_error ue = inference_map_outcome(r);
    const char *model = r->model && r->model[0] ? r->model : c->app->cfg->gemini_model;
    /* Thinking is billed as output: the agent's counters add up to Gemini's total. */
    long billed_out = (r->output_tokens > 0 ? r->output_tokens : 0) +
                      (r->thinking_tokens > 0 ? r->thinking_tokens : 0);
    inference_log_call(c->app, c->agent_id, "gemini", ue.status, llm_outcome_name(r->outcome), elapsed_ns,
                       r->prompt_tokens, r->has_usage ? billed_out : -1, r->retries, c->prompt);

    char message[AD_ERR_MSG_MAX + 64];
    snprintf(message, sizeof(message), "%s", r->message && *r->message ? r->message : llm_outcome_name(r->outcome));

    if (c->stream && (c->stream_started || r->outcome == LLM_OK)) {
        if (!c->stream_started) inference_start_stream(c);
        if (r->outcome == LLM_OK) {
            inference_emit(c->events, "done",
                           inference_done_event(c->version, "gemini", model, c->sources, inference_gemini_usage(r),
                                                latency, r->retries, r->finish_reason));
            c->sources = NULL;
        } else {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "code", ue.code);
            cJSON_AddStringToObject(d, "error", message);
            /* Only a reason that ended the answer: the STOP of the chunks
             * before an error object did not. */
            if (r->finish_reason[0] && (r->outcome == LLM_BLOCKED || r->outcome == LLM_NO_ANSWER ||
                                        r->outcome == LLM_THINKING_EXHAUSTED))
                cJSON_AddStringToObject(d, "finish_reason", r->finish_reason);
            if (r->upstream_status[0]) cJSON_AddStringToObject(d, "upstream_status", r->upstream_status);
            inference_emit(c->events, "error", d);
        }
    } else {
        ad_response res;
        ad_response_init(&res);
        ad_request rq = {.request_id = c->request_id};
        if (r->outcome == LLM_OK) {
            cJSON *o = inference_body(c->user_id, c->version, c->prompt, r->text ? r->text : "", "gemini", model,
                                      c->sources, inference_gemini_usage(r), latency, r->retries);
            c->sources = NULL;
            if (r->finish_reason[0]) cJSON_AddStringToObject(o, "finish_reason", r->finish_reason);
            else cJSON_AddNullToObject(o, "finish_reason");
            ad_response_json(&res, 200, o);
        } else {
            ad_response_error(&res, &rq, ue.status, ue.code, "%s", message);
            if (r->outcome == LLM_UNAVAILABLE) {
                char ra[16];
                snprintf(ra, sizeof(ra), "%d", r->retry_after_s > 0 ? r->retry_after_s : 1);
                ad_response_header(&res, "Retry-After", ra);
            }
        }
        ad_async_complete(c->async, &res);
        ad_response_cleanup(&res);
    }
    if (c->events) ad_stream_end(c->events); /* after this no abort can fire */
    if (c->call) llm_call_release(c->call);
    cJSON_Delete(c->sources);
    free(c->prompt);
    free(c);
}

/* The retrieved passages as the context turn. */
static char *inference_context(const answerer_result *a)
{
    ad_buf b;
    ad_buf_init(&b);
    if (a->nhits == 0) ad_buf_puts(&b, "No passage of the user's material matches this question.");
    else ad_buf_puts(&b, "Context passages from the user's material:\n");
    for (int i = 0; i < a->nhits; i++) {
        const passage_hit *h = &a->hits[i];
        ad_buf_printf(&b, "\n[%d] ", i + 1);
        if (h->question && *h->question) ad_buf_printf(&b, "Q: %s\nA: ", h->question);
        ad_buf_puts(&b, h->answer ? h->answer : h->body);
        ad_buf_putc(&b, '\n');
    }
    return ad_buf_steal(&b, NULL);
}

/* How much thinking a call may do: the request's own setting, else the
 * server's. A level wins over a budget (see llm_request). */
typedef struct inference_thinking {
    const char *level; /* NULL: no level sent */
    int budget;        /* llm_request.thinking_budget */
} inference_thinking;

static void inference_gemini(ad_request *req, ad_response *res, const agent_row *a,
                             const version_row *v, const char *prompt, answerer_result *ans,
                             int stream, long max_tokens, double temperature,
                             inference_thinking thinking, int64_t start_ns)
{
    cJSON *fs = cJSON_Parse(v->fewshot);
    int nshots = cJSON_GetArraySize(fs);
    const char **prompts = ad_calloc((size_t)nshots + 1, sizeof(char *));
    const char **answers = ad_calloc((size_t)nshots + 1, sizeof(char *));
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, fs) {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "prompt"));
        const char *an = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "answer"));
        if (p && an) prompts[k] = p, answers[k] = an, k++;
    }
    char *context = inference_context(ans);
    llm_request lr = {
        .system_instruction = v->persona,
        .fewshot_prompts = prompts,
        .fewshot_answers = answers,
        .fewshot_count = (size_t)k,
        .context = context,
        .prompt = prompt,
        /* An agent created for a Gemini model is answered by it; any other
         * base_model (the Flask original's "distilbert-base-uncased") is a
         * label only. */
        .model = llm_model_is_gemini(a->base_model) ? a->base_model : NULL,
        .max_output_tokens = (int)max_tokens,
        .temperature = temperature,
        .thinking_level = thinking.level,
        .thinking_budget = thinking.budget,
        .stream = stream,
    };
    inference_call *c = ad_calloc(1, sizeof(*c));
    c->async = req->async;
    c->app = req->app;
    c->agent_id = a->id;
    snprintf(c->user_id, sizeof(c->user_id), "%s", a->user_id);
    snprintf(c->version, sizeof(c->version), "%s", v->name);
    snprintf(c->request_id, sizeof(c->request_id), "%s", req->request_id ? req->request_id : "");
    c->prompt = ad_strdup(prompt);
    c->sources = inference_sources(ans);
    c->start_ns = start_ns;
    c->stream = stream;
    if (stream) c->events = ad_stream_new(inference_abort, c);
    ad_err e = {0};
    /* Deferred before submitting: on_done may complete the request on the
     * client's thread before llm_client_submit even returns. A client that
     * hangs up meanwhile cancels the upstream call. */
    res->deferred = 1;
    ad_async_on_hangup(req->async, inference_abort, c);
    int rc = llm_client_submit(req->app->llm, &lr, stream ? inference_on_delta : NULL,
                               inference_on_done, c, &c->call, &e);
    free(context);
    free(prompts);
    free(answers);
    cJSON_Delete(fs);
    if (rc < 0) {
        /* A failed submit fires no callback: the call is ours to undo. */
        if (c->events) ad_stream_end(c->events);
        cJSON_Delete(c->sources);
        free(c->prompt);
        free(c);
        res->deferred = 0;
        ad_async_on_hangup(req->async, NULL, NULL);
        ad_response_error(res, req, 503, "upstream_unavailable", "%s", e.msg);
    }
}

/* The server's thinking setting (gemini_thinking_level / _budget). */
static inference_thinking inference_thinking_default(const ad_config *cfg)
{
    inference_thinking t = {NULL, 0};
    if (gemini_thinking_level_valid(cfg->gemini_thinking_level)) t.level = cfg->gemini_thinking_level;
    else if (cfg->gemini_thinking_budget == 0) t.budget = GEMINI_THINKING_BUDGET_OFF;
    else if (cfg->gemini_thinking_budget > 0) t.budget = cfg->gemini_thinking_budget;
    return t;
}

/* Reads thinking_level / thinking_budget from the body, within the server's
 * bounds, and checks that max_output_tokens leaves room for an answer. */
static int inference_read_thinking(const cJSON *body, const ad_config *cfg, long long max_tokens,
                                   inference_thinking *t, ad_err *e)
{
    const char *level = NULL;
    long long budget = 0;
    int rc = ad_json_string(body, "thinking_level", 0, 16, &level, e);
    if (rc < 0 && rc != AD_ENOTFOUND) return rc;
    if (rc == AD_ENOTFOUND) level = NULL;
    rc = ad_json_int(body, "thinking_budget", 0, 0, cfg->gemini_max_thinking_budget, &budget, e);
    if (rc < 0 && rc != AD_ENOTFOUND) return rc;
    int has_budget = rc == 0;
    if (level && has_budget)
        return ad_err_set(e, AD_EINVAL, "thinking_level and thinking_budget exclude each other: give one");
    if (level) {
        int rank = gemini_thinking_level_rank(level);
        if (rank < 0)
            return ad_err_set(e, AD_EINVAL, "thinking_level must be minimal, low, medium or high");
        if (rank > gemini_thinking_level_rank(cfg->gemini_max_thinking_level))
            return ad_err_set(e, AD_EINVAL, "thinking_level must be at most %s (gemini_max_thinking_level)",
                              cfg->gemini_max_thinking_level);
        t->level = level;
        t->budget = 0;
    } else if (has_budget) {
        t->level = NULL;
        t->budget = budget == 0 ? GEMINI_THINKING_BUDGET_OFF : (int)budget;
    }
    int min = gemini_min_output_tokens(t->level, t->budget);
    if (max_tokens > 0 && max_tokens < min)
        return ad_err_set(e, AD_EINVAL,
                          "max_output_tokens must be at least %d: thinking (%s) is paid from the same "
                          "allowance and the answer needs %d more",
                          min, t->level ? t->level : t->budget > 0 ? "budget" : "off",
                          GEMINI_ANSWER_MIN_TOKENS);
    return 0;
}

void handle_agent_inference(ad_request *req, ad_response *res)
{
    int64_t start_ns = ad_clock_mono_ns();
    ad_err e = {0};
    agent_row a;
    if (agents_lookup_snapshot(req, res, &a) < 0) return;
    storage_conn *db = storage_conn_get();
    const cJSON *body = req->json;
    const char *prompt = NULL;
    int stream = strstr(req->accept, "text/event-stream") != NULL;
    long long max_tokens = 0, top = 0;
    double temperature = -1;
    size_t bad;
    int rc = 0;
    if (!body) rc = ad_err_set(&e, AD_EINVAL, "request body must be a JSON object with a prompt");
    if (!rc) rc = ad_json_string(body, "prompt", 1, (size_t)req->app->cfg->max_prompt_bytes, &prompt, &e);
    if (!rc && ad_utf8_validate(prompt, strlen(prompt), &bad) < 0)
        rc = ad_err_set(&e, AD_EINVAL, "prompt is not valid UTF-8 (at byte %zu)", bad);
    if (!rc && (rc = ad_json_bool(body, "stream", 0, &stream, &e)) == AD_ENOTFOUND) rc = 0;
    if (!rc && (rc = ad_json_int(body, "max_output_tokens", 0, 1, 65536, &max_tokens, &e)) == AD_ENOTFOUND) rc = 0;
    if (!rc && (rc = ad_json_number(body, "temperature", 0, 0.0, 2.0, &temperature, &e)) == AD_ENOTFOUND) rc = 0;
    if (!rc && (rc = ad_json_int(body, "top_passages", 0, 1, ANSWERER_MAX_HITS, &top, &e)) == AD_ENOTFOUND) rc = 0;
    /* Thinking shares Gemini's output allowance; the local answerer has neither. */
    inference_thinking thinking = inference_thinking_default(req->app->cfg);
    if (!rc && req->app->llm)
        rc = inference_read_thinking(body, req->app->cfg, max_tokens, &thinking, &e);
    if (rc < 0) {
        storage_snapshot_end(db);
        ad_response_error(res, req, 400, "invalid_body", "%s", e.msg);
        agent_row_cleanup(&a);
        return;
    }
    if (agents_answer_not_deployed(req, res, &a)) {
        storage_snapshot_end(db);
        agent_row_cleanup(&a);
        return;
    }
    if (!a.deployed_version_id) {
        storage_snapshot_end(db);
        ad_response_error(res, req, 409, "agent_not_ready", "agent '%s' is not ready (status: %s)",
                          a.user_id, agent_state_to_string(a.status));
        ad_response_header(res, "Retry-After", "1");
        agent_row_cleanup(&a);
        return;
    }
    version_row v;
    rc = storage_versions_get(db, a.deployed_version_id, &v, &e);
    if (rc < 0) {
        storage_snapshot_end(db);
        agents_answer_storage(req, res, rc, a.user_id, &e);
        agent_row_cleanup(&a);
        return;
    }
    model_params p;
    model_params_default(&p);
    cJSON *pj = cJSON_Parse(v.params);
    model_params_from_json(&p, pj);
    cJSON_Delete(pj);
    answerer_result ans;
    rc = answerer_answer(db, v.id, answerer_language(v.language), &p, prompt, top ? (int)top : p.top_k,
                         ANSWERER_ALL, &ans, &e);
    /* Every read is done: what follows writes (the inference log) or waits
     * on the network, neither inside the snapshot. */
    storage_snapshot_end(db);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, a.user_id, &e);
    } else {
        if (req->app->llm)
            inference_gemini(req, res, &a, &v, prompt, &ans, stream, (long)max_tokens, temperature,
                             thinking, start_ns);
        else
            inference_local(req, res, &a, v.name, prompt, &ans, stream, start_ns);
        answerer_result_cleanup(&ans);
    }
    version_row_cleanup(&v);
    agent_row_cleanup(&a);
}
