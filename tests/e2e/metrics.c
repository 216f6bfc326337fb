/* GET /metrics against the real binary (issue 12): every scrape is parsed
 * by the Prometheus client's own parser (tests/metrics/parse.py, Debian's
 * python3-prometheus-client), and the counters move exactly with the
 * requests made: HTTP by route pattern (unmatched for no route), the
 * pipeline's stages, local and Gemini inferences (upstream statuses,
 * retries, tokens, through the fake Gemini), training iterations, a 429;
 * the agents and jobs gauges match; auth guards the route like /api/;
 * `metrics: false` is 404; every series docs/metrics.md names is scraped. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/e2e/harness.h"
#include "tests/fake/gemini.h"

Suite *e2e_metrics_suite(void);

#define AGENTS "/api/v1/agents"
#define ADMIN_KEY "metrics-admin-key-0123456789"
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define HEALTH_200 "agentd_http_requests_total{code=200,method=GET,route=/health}"

/* ---- helpers ---------------------------------------------------------------- */

/* Debian's interpreter, where python3-prometheus-client installs its module;
 * a python3 earlier on PATH (pyenv, a venv) may not see it. */
static const char *python(void)
{
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

/* Feeds `body` to tests/metrics/parse.py: its JSON ({samples, types}), or
 * the test fails with the parser's complaint. */
static cJSON *parse_exposition(const char *body)
{
    char path[] = "/tmp/agentd-scrape-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(body);
    ck_assert_int_eq(write(fd, body, n), (ssize_t)n);
    close(fd);
    char *cmd = e2e_fmt("%s tests/metrics/parse.py < %s 2>&1", python(), path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    size_t got;
    while ((got = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (len + 1 == cap) out = realloc(out, cap *= 2);
    }
    out[len] = '\0';
    int st = pclose(p);
    unlink(path);
    free(cmd);
    ck_assert_msg(st == 0, "parse.py refused the scrape: %.500s", out);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "parse.py printed no JSON: %.300s", out);
    free(out);
    return j;
}

/* GET /metrics as `cred` (NULL: no credential); asserts 200 and the
 * exposition's content type; returns the parsed scrape. */
static cJSON *scrape_as(const e2e_server *s, const char *cred)
{
    char auth[256];
    const char *h[2] = {NULL, NULL};
    if (cred) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cred);
        h[0] = auth;
    }
    e2e_response r = e2e_request(s, "GET", "/metrics", NULL, h);
    ck_assert_msg(r.status == 200, "GET /metrics: %ld %s", r.status, r.body);
    char *ct = e2e_header(&r, "Content-Type");
    ck_assert_msg(ct && !strcmp(ct, CONTENT_TYPE), "content type %s", ct ? ct : "(none)");
    free(ct);
    cJSON *j = parse_exposition(r.body);
    e2e_response_free(&r);
    return j;
}

/* A sample's value ("name{a=x,b=y}", labels sorted), 0 when absent. */
static double sample(const cJSON *scrape, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(scrape, "samples"), key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* A request is counted when it completes, which may be a moment after its
 * client has the answer: scrapes until `key` reaches `want` (2 s at most),
 * then asserts it is exactly `want`. */
static void expect_sample(const e2e_server *s, const char *cred, const char *key, double want)
{
    double v = 0;
    for (int i = 0; i < 40; i++) {
        cJSON *j = scrape_as(s, cred);
        v = sample(j, key);
        cJSON_Delete(j);
        if (v >= want) break;
        e2e_sleep_ms(50);
    }
    ck_assert_msg(v == want, "%s is %g, expected %g", key, v, want);
}

static void get_n(const e2e_server *s, const char *path, int n, long want)
{
    for (int i = 0; i < n; i++) {
        e2e_response r = e2e_get(s, path);
        ck_assert_msg(r.status == want, "GET %s: %ld %s", path, r.status, r.body);
        e2e_response_free(&r);
    }
}

static void create_ml(const e2e_server *s, const char *id, const char *const *h)
{
    char *body = e2e_dataset_body(id, "data/ml_expert_dataset.json");
    e2e_response r = e2e_request(s, "POST", AGENTS, body, h);
    free(body);
    ck_assert_msg(r.status == 201, "create %s: %ld %s", id, r.status, r.body);
    e2e_response_free(&r);
    const char *st = e2e_wait_agent_as(s, id, 60000, h);
    ck_assert_msg(!strcmp(st, "ready"), "agent %s ended %s", id, st);
}

/* Trains `iterations` iterations into version `name` and waits for the end. */
static void train(const e2e_server *s, const char *id, int iterations, const char *name)
{
    char *path = e2e_fmt(AGENTS "/%s/train", id);
    char *body = e2e_fmt("{\"iterations\":%d,\"name\":\"%s\"}", iterations, name);
    e2e_response r = e2e_post(s, path, body);
    ck_assert_msg(r.status == 202, "train: %ld %s", r.status, r.body);
    long long tid = (long long)e2e_json_num(r.json, "training_id");
    e2e_response_free(&r);
    free(body);
    free(path);
    path = e2e_fmt(AGENTS "/%s/training?training_id=%lld", id, tid);
    const char *st = NULL;
    for (int i = 0; i < 3000; i++) {
        r = e2e_get(s, path);
        st = e2e_json_str(cJSON_GetObjectItem(r.json, "training"), "status");
        int over = st && (!strcmp(st, "done") || !strcmp(st, "failed"));
        if (over) ck_assert_msg(!strcmp(st, "done"), "training ended %s: %s", st, r.body);
        e2e_response_free(&r);
        if (over) break;
        e2e_sleep_ms(20);
    }
    free(path);
}

/* ---- tests ---------------------------------------------------------------- */

/* Requests count by route pattern (never the path), method and code; a path
 * with no route counts as unmatched; the duration histogram counts each. */
START_TEST(test_metrics_http_series_move_with_requests)
{
    e2e_server s;
    const char *env[] = {"GEMINI_API_KEY=", NULL};
    e2e_start(&s, NULL, env);
    cJSON *j = scrape_as(&s, NULL);
    double health = sample(j, HEALTH_200);
    double hist = sample(j, "agentd_http_request_duration_seconds_count{method=GET,route=/health}");
    double nope = sample(j, "agentd_http_requests_total{code=404,method=GET,route=unmatched}");
    cJSON_Delete(j);
    get_n(&s, "/health", 7, 200);
    get_n(&s, "/nope/at/all", 1, 404);
    expect_sample(&s, NULL, HEALTH_200, health + 7);
    expect_sample(&s, NULL, "agentd_http_request_duration_seconds_count{method=GET,route=/health}", hist + 7);
    expect_sample(&s, NULL, "agentd_http_requests_total{code=404,method=GET,route=unmatched}", nope + 1);
    e2e_response r = e2e_request(&s, "HEAD", "/health", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    expect_sample(&s, NULL, "agentd_http_requests_total{code=200,method=HEAD,route=/health}", 1);
    /* An agent path counts under its route's pattern. */
    get_n(&s, AGENTS "/ghost/status", 2, 404);
    expect_sample(&s, NULL, "agentd_http_requests_total{code=404,method=GET,route=/api/v1/agents/{id}/status}", 2);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* An agent's pipeline moves each stage's histogram once, the gauges show it
 * ready with its job done, a local inference moves its histogram, a
 * training run of 3 iterations counts 3; the process metrics and the build
 * are there; and every series docs/metrics.md names is in the scrape. */
START_TEST(test_metrics_pipeline_inference_training_and_gauges)
{
    static const char *const stages[] = {"DataProcessor", "ModelTrainer", "ModelEvaluator", "ModelDeployer"};
    e2e_server s;
    const char *env[] = {"GEMINI_API_KEY=", NULL};
    e2e_start(&s, NULL, env);
    cJSON *j = scrape_as(&s, NULL);
    for (int i = 0; i < 4; i++) {
        char *k = e2e_fmt("agentd_pipeline_stage_duration_seconds_count{stage=%s}", stages[i]);
        ck_assert_msg(sample(j, k) == 0, "%s before any agent", k);
        free(k);
    }
    ck_assert(sample(j, "agentd_agents{status=ready}") == 0);
    cJSON_Delete(j);

    create_ml(&s, "ml", NULL);
    for (int i = 0; i < 4; i++) {
        char *k = e2e_fmt("agentd_pipeline_stage_duration_seconds_count{stage=%s}", stages[i]);
        expect_sample(&s, NULL, k, 1);
        free(k);
    }
    j = scrape_as(&s, NULL);
    ck_assert(sample(j, "agentd_agents{status=ready}") == 1);
    ck_assert(sample(j, "agentd_agents{status=initializing}") == 0);
    ck_assert(sample(j, "agentd_agents{status=processing}") == 0);
    ck_assert(sample(j, "agentd_agents{status=error}") == 0);
    ck_assert(sample(j, "agentd_jobs{state=done}") == 1);
    ck_assert(sample(j, "agentd_jobs{state=queued}") == 0);
    ck_assert(sample(j, "agentd_jobs{state=running}") == 0);
    const char *status_key = "agentd_http_requests_total{code=200,method=GET,route=/api/v1/agents/{id}/status}";
    double status = sample(j, status_key);
    double local = sample(j, "agentd_inference_duration_seconds_count{backend=local}");
    ck_assert(sample(j, "agentd_training_iterations_total") == 0);
    cJSON_Delete(j);

    get_n(&s, AGENTS "/ml/status", 3, 200);
    expect_sample(&s, NULL, status_key, status + 3);
    e2e_response r = e2e_post(&s, AGENTS "/ml/inference", "{\"prompt\":\"How to handle imbalanced datasets?\"}");
    ck_assert_msg(r.status == 200, "inference: %ld %s", r.status, r.body);
    e2e_response_free(&r);
    expect_sample(&s, NULL, "agentd_inference_duration_seconds_count{backend=local}", local + 1);
    train(&s, "ml", 3, "v-metrics");
    expect_sample(&s, NULL, "agentd_training_iterations_total", 3);

    j = scrape_as(&s, NULL);
    ck_assert(sample(j, "process_resident_memory_bytes") > 1e6);
    ck_assert(sample(j, "process_virtual_memory_bytes") >= sample(j, "process_resident_memory_bytes"));
    ck_assert(sample(j, "process_open_fds") >= 3);
    ck_assert(sample(j, "process_max_fds") >= sample(j, "process_open_fds"));
    ck_assert(sample(j, "process_threads") >= 2);
    ck_assert(sample(j, "process_start_time_seconds") > 1.7e9);
    ck_assert(sample(j, "process_cpu_seconds_total") > 0);
    ck_assert(sample(j, "agentd_build_info{version=0.1.0}") == 1);

    /* Every series the document names, zero-valued ones included. */
    size_t len;
    char *doc = e2e_read_file("docs/metrics.md", &len);
    ck_assert_ptr_nonnull(doc);
    const cJSON *types = cJSON_GetObjectItem(j, "types");
    int names = 0;
    for (char *p = strchr(doc, '`'); p; p = strchr(p + 1, '`')) {
        if (strncmp(p + 1, "agentd_", 7) != 0 && strncmp(p + 1, "process_", 8) != 0) continue;
        size_t n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz_");
        if (p[1 + n] != '`' && p[1 + n] != '{') continue;
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)n, p + 1);
        names++;
        ck_assert_msg(cJSON_GetObjectItem(types, name) != NULL, "docs/metrics.md names %s; the scrape lacks it",
                      name);
    }
    ck_assert_msg(names >= 21, "docs/metrics.md names only %d series", names);
    /* And the other way: every family of the scrape is documented. */
    const cJSON *t;
    cJSON_ArrayForEach(t, types) {
        char *quoted = e2e_fmt("`%s`", t->string);
        ck_assert_msg(strstr(doc, quoted) != NULL, "%s is not in docs/metrics.md", t->string);
        free(quoted);
    }
    free(doc);
    cJSON_Delete(j);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

#define GEMINI_USAGE_REPLY                                                                          \
    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Resample the data.\"}]}," \
    "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":11,"                      \
    "\"candidatesTokenCount\":3,\"thoughtsTokenCount\":7,\"totalTokenCount\":21}}"

/* A Gemini call through the fake: a 503 then an answer is two upstream
 * attempts (503, 200), one retry, the answer's tokens by kind, and one
 * Gemini inference. */
START_TEST(test_metrics_gemini_upstream_retries_and_tokens)
{
    fake_gemini *fake;
    unsigned port = 0;
    ck_assert_int_eq(fake_gemini_start(&fake, &port), 0);
    char base_url[64];
    snprintf(base_url, sizeof(base_url), "GEMINI_BASE_URL=http://127.0.0.1:%u", port);
    const char *env[] = {"GEMINI_API_KEY=" FAKE_GEMINI_KEY, base_url, "GEMINI_BACKOFF_BASE_MS=10",
                         "GEMINI_MAX_ATTEMPTS=3", "GEMINI_MODEL=gemini-test", "GEMINI_CHECK_TIMEOUT_MS=0",
                         NULL};
    e2e_server s;
    e2e_start(&s, NULL, env);
    create_ml(&s, "ml", NULL);
    cJSON *j = scrape_as(&s, NULL);
    double ok = sample(j, "agentd_upstream_requests_total{code=200}");
    double unavailable = sample(j, "agentd_upstream_requests_total{code=503}");
    double retries = sample(j, "agentd_upstream_retries_total");
    double prompt = sample(j, "agentd_llm_tokens_total{kind=prompt}");
    double output = sample(j, "agentd_llm_tokens_total{kind=output}");
    double thinking = sample(j, "agentd_llm_tokens_total{kind=thinking}");
    double gem = sample(j, "agentd_inference_duration_seconds_count{backend=gemini}");
    cJSON_Delete(j);

    fake_gemini_push_fault(fake, FAKE_503);
    fake_gemini_push_replay(fake, 200, GEMINI_USAGE_REPLY);
    e2e_response r = e2e_post(&s, AGENTS "/ml/inference", "{\"prompt\":\"How to handle imbalanced datasets?\"}");
    ck_assert_msg(r.status == 200, "inference: %ld %s", r.status, r.body);
    ck_assert_int_eq((int)e2e_json_num(r.json, "retries"), 1);
    e2e_response_free(&r);
    expect_sample(&s, NULL, "agentd_inference_duration_seconds_count{backend=gemini}", gem + 1);
    j = scrape_as(&s, NULL);
    ck_assert(sample(j, "agentd_upstream_requests_total{code=503}") == unavailable + 1);
    ck_assert(sample(j, "agentd_upstream_requests_total{code=200}") == ok + 1);
    ck_assert(sample(j, "agentd_upstream_retries_total") == retries + 1);
    ck_assert(sample(j, "agentd_llm_tokens_total{kind=prompt}") == prompt + 11);
    ck_assert(sample(j, "agentd_llm_tokens_total{kind=output}") == output + 3);
    ck_assert(sample(j, "agentd_llm_tokens_total{kind=thinking}") == thinking + 7);
    ck_assert(sample(j, "agentd_upstream_requests_total{code=transport}") == 0);
    cJSON_Delete(j);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
    fake_gemini_stop(fake);
}
END_TEST

static e2e_response as(const e2e_server *s, const char *cred, const char *method, const char *path,
                       const char *body)
{
    char auth[256];
    const char *h[2] = {NULL, NULL};
    if (cred) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cred);
        h[0] = auth;
    }
    return e2e_request(s, method, path, body, h);
}

static char *mint(const e2e_server *s, const char *body)
{
    e2e_response r = as(s, ADMIN_KEY, "POST", "/api/v1/tokens", body);
    ck_assert_msg(r.status == 201, "create token: %ld %s", r.status, r.body);
    char *tok = strdup(e2e_json_str(r.json, "token"));
    e2e_response_free(&r);
    return tok;
}

/* With auth on, /metrics is guarded like /api/: no credential 401, a token
 * without `metrics` 403 (an admin token too), a `metrics` token and the admin
 * key 200; `metrics` bound to a list of agents is refused. A 429 moves the
 * rate-limited total. */
START_TEST(test_metrics_auth_and_rate_limited)
{
    e2e_server s;
    const char *env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};
    e2e_start(&s, NULL, env);
    char *reader = mint(&s, "{\"name\":\"reader\",\"scopes\":[\"agents:read\"],\"agents\":\"*\","
                            "\"rate_limit_per_min\":2}");
    char *scraper = mint(&s, "{\"name\":\"scraper\",\"scopes\":[\"metrics\"],\"agents\":\"*\"}");

    e2e_response r = as(&s, NULL, "GET", "/metrics", NULL);
    e2e_assert_error(&r, 401, "invalid_token", NULL, "no credential");
    e2e_response_free(&r);
    r = as(&s, reader, "GET", "/metrics", NULL);
    e2e_assert_error(&r, 403, "insufficient_scope", "metrics", "a token without the metrics scope");
    e2e_response_free(&r);
    /* An admin token is not the admin key: it needs the scope too. */
    char *admin_token = mint(&s, "{\"name\":\"adm\",\"scopes\":[\"admin\"],\"agents\":\"*\"}");
    r = as(&s, admin_token, "GET", "/metrics", NULL);
    e2e_assert_error(&r, 403, "insufficient_scope", "metrics", "an admin token without the metrics scope");
    e2e_response_free(&r);
    free(admin_token);
    r = as(&s, ADMIN_KEY, "POST", "/api/v1/tokens",
           "{\"name\":\"narrow\",\"scopes\":[\"metrics\"],\"agents\":[\"alice\"]}");
    e2e_assert_error(&r, 400, "invalid_scopes", "metrics", "metrics bound to an agent list");
    e2e_response_free(&r);

    cJSON *j = scrape_as(&s, scraper);
    double limited = sample(j, "agentd_rate_limited_total");
    cJSON_Delete(j);
    j = scrape_as(&s, ADMIN_KEY);
    ck_assert(sample(j, "agentd_rate_limited_total") == limited);
    cJSON_Delete(j);
    for (int i = 0; i < 3; i++) {
        r = as(&s, reader, "GET", AGENTS, NULL);
        ck_assert_msg(r.status == (i < 2 ? 200 : 429), "request %d: %ld %s", i, r.status, r.body);
        e2e_response_free(&r);
    }
    expect_sample(&s, scraper, "agentd_rate_limited_total", limited + 1);
    /* A scraper is never rate limited: /metrics is outside /api/. */
    for (int i = 0; i < 3; i++) cJSON_Delete(scrape_as(&s, scraper));
    free(reader);
    free(scraper);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* `metrics: false` (flag or environment): 404 metrics_disabled. */
START_TEST(test_metrics_disabled_is_404)
{
    e2e_server s;
    const char *args[] = {"--metrics", "false", NULL};
    e2e_start(&s, args, NULL);
    get_n(&s, "/health", 2, 200);
    e2e_response r = e2e_get(&s, "/metrics");
    e2e_assert_error(&r, 404, "metrics_disabled", "metrics: false", "metrics off");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    const char *env[] = {"AGENTD_METRICS=false", NULL};
    e2e_restart(&s, NULL, env);
    r = e2e_get(&s, "/metrics");
    e2e_assert_error(&r, 404, "metrics_disabled", NULL, "AGENTD_METRICS=false");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

Suite *e2e_metrics_suite(void)
{
    Suite *s = suite_create("e2e_metrics");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_metrics_http_series_move_with_requests);
    tcase_add_test(tc, test_metrics_pipeline_inference_training_and_gauges);
    tcase_add_test(tc, test_metrics_gemini_upstream_retries_and_tokens);
    tcase_add_test(tc, test_metrics_auth_and_rate_limited);
    tcase_add_test(tc, test_metrics_disabled_is_404);
    suite_add_tcase(s, tc);
    return s;
}
