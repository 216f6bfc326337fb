/* Sharing one service fairly (issue 11) against the real binary: the
 * per-caller rate limit (RateLimit-* headers counting down, 429 with
 * Retry-After, none with auth off), the cap on inferences in flight (with the
 * fake Gemini made slow; aborted requests and streams give their slot back),
 * and Idempotency-Key (one agent for two identical POSTs, byte-identical
 * answers, 422 for another body, replayed after a restart, 409 while the
 * first runs, an event stream not replayable). */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/e2e/harness.h"
#include "tests/fake/gemini.h"

Suite *e2e_fair_suite(void);

#define AGENTS "/api/v1/agents"
#define ADMIN_KEY "fair-admin-key-0123456789"
#define AUTH "Authorization: Bearer " ADMIN_KEY
#define PROMPT_BODY "{\"prompt\":\"How to handle imbalanced datasets?\"}"
#define STREAM_BODY "{\"prompt\":\"How to handle imbalanced datasets?\",\"stream\":true}"

/* ---- helpers ---------------------------------------------------------------- */

/* The integer value of header `name`, or -1 when it is absent. */
static long header_int(const e2e_response *r, const char *name)
{
    char *v = e2e_header(r, name);
    if (!v) return -1;
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

static int has_header(const e2e_response *r, const char *name)
{
    char *v = e2e_header(r, name);
    free(v);
    return v != NULL;
}

/* A request with the admin key and up to two more headers (NULL: none). */
static e2e_response admin_req(const e2e_server *s, const char *method, const char *path, const char *body,
                              const char *h1, const char *h2)
{
    const char *h[4] = {AUTH, h1, h1 ? h2 : NULL, NULL};
    return e2e_request(s, method, path, body, h);
}

static void admin_wait_ready(const e2e_server *s, const char *id)
{
    const char *h[] = {AUTH, NULL};
    const char *st = e2e_wait_agent_as(s, id, 60000, h);
    ck_assert_msg(!strcmp(st, "ready"), "agent %s ended %s", id, st);
}

/* One request on its own thread. */
typedef struct call {
    const e2e_server *s;
    const char *path, *body, *extra;
    long timeout_ms;          /* > 0: hang up after this long (own libcurl handle) */
    const char *auth;         /* the Authorization header; NULL: the admin key */
    e2e_response r;
    pthread_t t;
} call;

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

static void *call_main(void *p)
{
    call *c = p;
    if (c->timeout_ms <= 0) {
        const char *h[] = {c->auth ? c->auth : AUTH, c->extra, NULL};
        c->r = e2e_request(c->s, "POST", c->path, c->body, h);
        return NULL;
    }
    /* A client that leaves: libcurl gives up after timeout_ms and closes. */
    CURL *cu = curl_easy_init();
    char *url = e2e_fmt("http://127.0.0.1:%d%s", c->s->port, c->path);
    struct curl_slist *hl = curl_slist_append(NULL, AUTH);
    hl = curl_slist_append(hl, "Content-Type: application/json");
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_perform(cu);
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &c->r.status);
    curl_easy_cleanup(cu);
    curl_slist_free_all(hl);
    free(url);
    return NULL;
}

static void call_start(call *c, const e2e_server *s, const char *path, const char *body, const char *extra,
                       long timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->s = s, c->path = path, c->body = body, c->extra = extra, c->timeout_ms = timeout_ms;
    ck_assert_int_eq(pthread_create(&c->t, NULL, call_main, c), 0);
}

static void call_join(call *c)
{
    pthread_join(c->t, NULL);
}

/* ---- the rate limit ----------------------------------------------------------- */

START_TEST(test_rate_limit_counts_down_then_429)
{
    e2e_server s;
    const char *env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};
    const char *args[] = {"--rate-limit-per-min", "3", NULL};
    e2e_start(&s, args, env);

    /* Not an authenticated caller: no limit, no headers. */
    e2e_response r = e2e_get(&s, "/health");
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(!has_header(&r, "RateLimit-Limit"), "/health: %s", r.headers);
    e2e_response_free(&r);
    const char *wrong[] = {"Authorization: Bearer not-the-key", NULL};
    r = e2e_request(&s, "GET", AGENTS, NULL, wrong);
    ck_assert_int_eq(r.status, 401);
    ck_assert_msg(!has_header(&r, "RateLimit-Limit"), "401: %s", r.headers);
    e2e_response_free(&r);

    long last_reset = 61;
    for (int i = 0; i < 3; i++) {
        r = admin_req(&s, "GET", AGENTS, NULL, NULL, NULL);
        ck_assert_msg(r.status == 200, "request %d: %ld %s", i + 1, r.status, r.body);
        ck_assert_int_eq(header_int(&r, "RateLimit-Limit"), 3);
        ck_assert_int_eq(header_int(&r, "RateLimit-Remaining"), 2 - i);
        long reset = header_int(&r, "RateLimit-Reset");
        ck_assert_msg(reset >= 1 && reset <= 60 && reset <= last_reset, "reset %ld after %ld", reset, last_reset);
        last_reset = reset;
        e2e_response_free(&r);
    }
    r = admin_req(&s, "GET", AGENTS, NULL, NULL, NULL);
    e2e_assert_error(&r, 429, "rate_limited", "3 requests per minute", "4th request");
    long after = header_int(&r, "Retry-After");
    ck_assert_msg(after >= 1 && after <= 60, "Retry-After %ld", after);
    ck_assert_int_eq(header_int(&r, "RateLimit-Limit"), 3);
    ck_assert_int_eq(header_int(&r, "RateLimit-Remaining"), 0);
    ck_assert_int_le(header_int(&r, "RateLimit-Reset"), last_reset);
    e2e_response_free(&r);
    /* Every route of the caller is refused, a POST before its body is read. */
    r = admin_req(&s, "POST", AGENTS, "{\"user_id\":\"late\",\"training_data\":\"some text\"}", NULL, NULL);
    e2e_assert_error(&r, 429, "rate_limited", NULL, "POST over the limit");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);

    /* Auth off: nobody is limited and no response carries the headers. */
    const char *open_env[] = {"AGENTD_API_KEY=", NULL};
    e2e_start(&s, args, open_env);
    for (int i = 0; i < 6; i++) {
        r = e2e_get(&s, AGENTS);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(!has_header(&r, "RateLimit-Limit") && !has_header(&r, "RateLimit-Remaining"), "%s",
                      r.headers);
        e2e_response_free(&r);
    }
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- Idempotency-Key -------------------------------------------------------- */

static double total_users(const e2e_server *s)
{
    e2e_response r = e2e_get(s, AGENTS);
    ck_assert_int_eq(r.status, 200);
    double n = e2e_json_num(r.json, "total_users");
    e2e_response_free(&r);
    return n;
}

static e2e_response post_key(const e2e_server *s, const char *path, const char *body, const char *key_header)
{
    const char *h[] = {key_header, NULL};
    return e2e_request(s, "POST", path, body, h);
}

#define BODY_A "{\"user_id\":\"idem\",\"training_data\":\"Gradient boosting builds trees one after another.\"}"
#define BODY_B "{\"user_id\":\"idem2\",\"training_data\":\"Gradient boosting builds trees one after another.\"}"

START_TEST(test_idempotent_create)
{
    e2e_server s;
    const char *env[] = {"AGENTD_API_KEY=", NULL};
    e2e_start(&s, NULL, env);

    e2e_response first = post_key(&s, AGENTS, BODY_A, "Idempotency-Key: create-1");
    ck_assert_msg(first.status == 201, "%ld %s", first.status, first.body);
    ck_assert(!has_header(&first, "Idempotent-Replayed"));
    char *loc1 = e2e_header(&first, "Location");
    e2e_response again = post_key(&s, AGENTS, BODY_A, "Idempotency-Key: create-1");
    ck_assert_int_eq(again.status, 201);
    ck_assert_uint_eq(again.body_len, first.body_len);
    ck_assert_int_eq(memcmp(again.body, first.body, first.body_len), 0);
    char *replayed = e2e_header(&again, "Idempotent-Replayed");
    ck_assert_str_eq(replayed, "true");
    free(replayed);
    char *loc2 = e2e_header(&again, "Location");
    ck_assert_str_eq(loc1, loc2);
    free(loc2);
    e2e_response_free(&again);
    ck_assert(total_users(&s) == 1);

    /* The same key with another body, or on another path: 422, nothing done. */
    e2e_response r = post_key(&s, AGENTS, BODY_B, "Idempotency-Key: create-1");
    e2e_assert_error(&r, 422, "idempotency_key_reused", "Idempotency-Key", "another body");
    e2e_response_free(&r);
    r = post_key(&s, AGENTS "/advanced", BODY_A, "Idempotency-Key: create-1");
    e2e_assert_error(&r, 422, "idempotency_key_reused", NULL, "another path");
    e2e_response_free(&r);
    ck_assert(total_users(&s) == 1);
    /* Without a key the same POST runs again (and conflicts). */
    r = e2e_post(&s, AGENTS, BODY_A);
    ck_assert_int_eq(r.status, 409);
    e2e_response_free(&r);

    /* A 4xx is an answer too: kept and replayed. */
    e2e_response bad = post_key(&s, AGENTS, "{\"user_id\":42,\"training_data\":\"x\"}", "Idempotency-Key: bad-1");
    ck_assert_int_eq(bad.status, 400);
    r = post_key(&s, AGENTS, "{\"user_id\":42,\"training_data\":\"x\"}", "Idempotency-Key: bad-1");
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.body, bad.body);
    ck_assert(has_header(&r, "Idempotent-Replayed"));
    e2e_response_free(&r);
    e2e_response_free(&bad);

    /* Keys that are not 1-255 printable ASCII characters: 400 naming the header. */
    char long_key[300];
    memset(long_key, 0, sizeof(long_key));
    strcpy(long_key, "Idempotency-Key: ");
    memset(long_key + strlen(long_key), 'k', 256);
    r = post_key(&s, AGENTS, BODY_B, long_key);
    e2e_assert_error(&r, 400, "invalid_idempotency_key", "Idempotency-Key", "256 characters");
    e2e_response_free(&r);
    r = post_key(&s, AGENTS, BODY_B, "Idempotency-Key: caf\xc3\xa9");
    e2e_assert_error(&r, 400, "invalid_idempotency_key", "Idempotency-Key", "not ASCII");
    e2e_response_free(&r);
    const char *two[] = {"Idempotency-Key: a", "Idempotency-Key: b", NULL};
    r = e2e_request(&s, "POST", AGENTS, BODY_B, two);
    e2e_assert_error(&r, 400, "invalid_idempotency_key", "Idempotency-Key", "two headers");
    e2e_response_free(&r);
    /* 255 characters are fine. */
    long_key[strlen("Idempotency-Key: ") + 255] = '\0';
    r = post_key(&s, AGENTS, BODY_B, long_key);
    ck_assert_msg(r.status == 201, "255-character key: %ld %s", r.status, r.body);
    e2e_response_free(&r);
    ck_assert(total_users(&s) == 2);

    /* The answers are in the database: a restart replays them. */
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_restart(&s, NULL, env);
    r = post_key(&s, AGENTS, BODY_A, "Idempotency-Key: create-1");
    ck_assert_int_eq(r.status, 201);
    ck_assert_uint_eq(r.body_len, first.body_len);
    ck_assert_int_eq(memcmp(r.body, first.body, first.body_len), 0);
    ck_assert(has_header(&r, "Idempotent-Replayed"));
    e2e_response_free(&r);
    ck_assert(total_users(&s) == 2);

    free(loc1);
    e2e_response_free(&first);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* A 409 is a refusal for a state that passes (the agent exists, is not
 * ready, a job runs): nothing was done, so it is not kept, and the same key
 * runs the request again once the conflict is gone. */
START_TEST(test_idempotent_conflict_not_kept)
{
    e2e_server s;
    const char *env[] = {"AGENTD_API_KEY=", NULL};
    e2e_start(&s, NULL, env);
    e2e_response r = e2e_post(&s, AGENTS, BODY_A);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    e2e_response_free(&r);
    r = post_key(&s, AGENTS, BODY_A, "Idempotency-Key: conflict-1");
    e2e_assert_error(&r, 409, "agent_exists", NULL, "the agent is there");
    e2e_response_free(&r);
    r = e2e_request(&s, "DELETE", AGENTS "/idem", NULL, NULL);
    ck_assert_msg(r.status == 200, "delete: %ld %s", r.status, r.body);
    e2e_response_free(&r);
    r = post_key(&s, AGENTS, BODY_A, "Idempotency-Key: conflict-1");
    ck_assert_msg(r.status == 201, "the same key once the conflict is gone: %ld %s", r.status, r.body);
    ck_assert(!has_header(&r, "Idempotent-Replayed"));
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* A token made by the admin key with `extra` fields; returns its secret. */
static char *make_token(const e2e_server *s, const char *name, const char *extra)
{
    char *body = e2e_fmt("{\"name\":\"%s\",\"scopes\":[\"agents:read\",\"agents:write\",\"inference\"],"
                         "\"agents\":\"*\"%s}", name, extra ? extra : "");
    e2e_response r = admin_req(s, "POST", "/api/v1/tokens", body, NULL, NULL);
    free(body);
    ck_assert_msg(r.status == 201, "token %s: %ld %s", name, r.status, r.body);
    char *secret = strdup(e2e_json_str(r.json, "token"));
    e2e_response_free(&r);
    return secret;
}

static e2e_response token_req(const e2e_server *s, const char *secret, const char *method, const char *path,
                              const char *body, const char *h1)
{
    char *auth = e2e_fmt("Authorization: Bearer %s", secret);
    const char *h[] = {auth, h1, NULL};
    e2e_response r = e2e_request(s, method, path, body, h);
    free(auth);
    return r;
}

/* Each token has a bucket of its own, the admin key another; a token's own
 * rate_limit_per_min overrides the configured one; an Idempotency-Key is the
 * caller's own. */
START_TEST(test_rate_limit_per_caller_and_token_override)
{
    e2e_server s;
    const char *env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};
    const char *args[] = {"--rate-limit-per-min", "4", NULL};
    e2e_start(&s, args, env);
    char *plain = make_token(&s, "plain", NULL);
    char *roomy = make_token(&s, "roomy", ",\"rate_limit_per_min\":10");
    /* The admin key spent 2 of its 4 making them. */
    e2e_response r = admin_req(&s, "GET", AGENTS, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(header_int(&r, "RateLimit-Remaining"), 1);
    e2e_response_free(&r);
    for (int i = 0; i < 4; i++) {
        r = token_req(&s, plain, "GET", AGENTS, NULL, NULL);
        ck_assert_msg(r.status == 200, "plain %d: %ld %s", i, r.status, r.body);
        ck_assert_int_eq(header_int(&r, "RateLimit-Limit"), 4);
        ck_assert_int_eq(header_int(&r, "RateLimit-Remaining"), 3 - i);
        e2e_response_free(&r);
    }
    r = token_req(&s, plain, "GET", AGENTS, NULL, NULL);
    e2e_assert_error(&r, 429, "rate_limited", NULL, "plain token over 4");
    ck_assert(has_header(&r, "Retry-After"));
    e2e_response_free(&r);
    /* The admin key's bucket is untouched by the token's. */
    r = admin_req(&s, "GET", AGENTS, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(header_int(&r, "RateLimit-Remaining"), 0);
    e2e_response_free(&r);
    r = admin_req(&s, "GET", AGENTS, NULL, NULL, NULL);
    e2e_assert_error(&r, 429, "rate_limited", NULL, "admin over 4");
    e2e_response_free(&r);
    /* The roomy token has its own 10. */
    for (int i = 0; i < 10; i++) {
        r = token_req(&s, roomy, "GET", AGENTS, NULL, NULL);
        ck_assert_msg(r.status == 200, "roomy %d: %ld %s", i, r.status, r.body);
        ck_assert_int_eq(header_int(&r, "RateLimit-Limit"), 10);
        ck_assert_int_eq(header_int(&r, "RateLimit-Remaining"), 9 - i);
        e2e_response_free(&r);
    }
    ck_assert_int_eq(e2e_stop(&s), 0);

    /* Idempotency keys are per caller: the same key by two tokens is two
     * requests. Two fresh tokens: on PostgreSQL the windows are in the
     * database and outlive the restart, so roomy's 10 are still spent. */
    const char *roomy_args[] = {"--rate-limit-per-min", "100", NULL};
    e2e_restart(&s, roomy_args, env);
    free(plain);
    free(roomy);
    plain = make_token(&s, "plain2", NULL);
    roomy = make_token(&s, "roomy2", ",\"rate_limit_per_min\":10");
    r = token_req(&s, plain, "POST", AGENTS, BODY_A, "Idempotency-Key: shared-key");
    ck_assert_msg(r.status == 201, "plain create: %ld %s", r.status, r.body);
    e2e_response_free(&r);
    r = token_req(&s, roomy, "POST", AGENTS, BODY_B, "Idempotency-Key: shared-key");
    ck_assert_msg(r.status == 201, "roomy create with the same key: %ld %s", r.status, r.body);
    ck_assert(!has_header(&r, "Idempotent-Replayed"));
    e2e_response_free(&r);
    r = token_req(&s, roomy, "POST", AGENTS, BODY_B, "Idempotency-Key: shared-key");
    ck_assert_int_eq(r.status, 201);
    ck_assert(has_header(&r, "Idempotent-Replayed"));
    e2e_response_free(&r);
    free(plain);
    free(roomy);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* A token's secret is shown once and never stored: the answer of a create or
 * rotate with an Idempotency-Key is not kept (its key is spent, so no second
 * token is made), a retry is told it cannot be replayed, and no database file
 * holds the secret. */
START_TEST(test_idempotent_token_secret_not_kept)
{
    e2e_server s;
    const char *env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};
    e2e_start(&s, NULL, env);
    const char *body = "{\"name\":\"once\",\"scopes\":[\"agents:read\"],\"agents\":\"*\"}";
    e2e_response r = admin_req(&s, "POST", "/api/v1/tokens", body, "Idempotency-Key: tok-1", NULL);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    char *secret = strdup(e2e_json_str(r.json, "token"));
    long id = (long)e2e_json_num(r.json, "id");
    e2e_response_free(&r);
    r = admin_req(&s, "POST", "/api/v1/tokens", body, "Idempotency-Key: tok-1", NULL);
    e2e_assert_error(&r, 409, "idempotency_not_replayable", "secret", "token create retried");
    e2e_response_free(&r);
    r = admin_req(&s, "GET", "/api/v1/tokens", NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 1);
    e2e_response_free(&r);
    char *rotate = e2e_fmt("/api/v1/tokens/%ld/rotate", id);
    r = admin_req(&s, "POST", rotate, "{}", "Idempotency-Key: rot-1", NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    char *rotated = strdup(e2e_json_str(r.json, "token"));
    e2e_response_free(&r);
    r = admin_req(&s, "POST", rotate, "{}", "Idempotency-Key: rot-1", NULL);
    e2e_assert_error(&r, 409, "idempotency_not_replayable", "secret", "rotate retried");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    static const char *const files[] = {"agentd.db", "agentd.db-wal", "agentd.db-shm"};
    for (size_t i = 0; i < 3 && !e2e_skip_on_pg("the secret check reads the SQLite files"); i++) {
        char *path = e2e_fmt("%s/%s", s.data_dir, files[i]);
        ck_assert_msg(!e2e_file_holds(path, secret + 17) && !e2e_file_holds(path, rotated + 17),
                      "a token secret is in %s", files[i]);
        free(path);
    }
    free(rotate);
    free(rotated);
    free(secret);
    e2e_cleanup(&s);
}
END_TEST

/* ---- the inference cap, and idempotent inference ------------------------------- */

typedef struct gem_env {
    fake_gemini *fake;
    unsigned port;
    char base_url[64];
} gem_env;

static void gem_start(e2e_server *s, gem_env *g, const char *const *args)
{
    g->port = 0;
    ck_assert_int_eq(fake_gemini_start(&g->fake, &g->port), 0);
    snprintf(g->base_url, sizeof(g->base_url), "GEMINI_BASE_URL=http://127.0.0.1:%u", g->port);
    const char *env[] = {"GEMINI_API_KEY=" FAKE_GEMINI_KEY, g->base_url, "GEMINI_DEADLINE_MS=10000",
                         "GEMINI_MODEL=gemini-test", "GEMINI_CHECK_TIMEOUT_MS=0",
                         "AGENTD_API_KEY=" ADMIN_KEY, NULL};
    e2e_start(s, args, env);
    char *body = e2e_dataset_body("ml", "data/ml_expert_dataset.json");
    e2e_response r = admin_req(s, "POST", AGENTS, body, NULL, NULL);
    free(body);
    ck_assert_msg(r.status == 201, "create: %ld %s", r.status, r.body);
    e2e_response_free(&r);
    admin_wait_ready(s, "ml");
}

static void gem_stop(e2e_server *s, gem_env *g)
{
    ck_assert_int_eq(e2e_stop(s), 0);
    e2e_cleanup(s);
    fake_gemini_stop(g->fake);
}

#define INFER AGENTS "/ml/inference"

/* Runs `n` slow inferences at once as `auth` (NULL: the admin key); returns
 * how many got 200 and 429. */
static void infer_at_once_as(const e2e_server *s, const char *auth, int n, int *ok, int *capped)
{
    call c[8];
    ck_assert_int_le(n, 8);
    for (int i = 0; i < n; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        c[i].s = s, c[i].path = INFER, c[i].body = PROMPT_BODY, c[i].auth = auth;
        ck_assert_int_eq(pthread_create(&c[i].t, NULL, call_main, &c[i]), 0);
    }
    *ok = *capped = 0;
    for (int i = 0; i < n; i++) {
        call_join(&c[i]);
        if (c[i].r.status == 200) (*ok)++;
        if (c[i].r.status == 429) {
            (*capped)++;
            e2e_assert_error(&c[i].r, 429, "too_many_inferences", NULL, "over the cap");
            ck_assert_int_eq(header_int(&c[i].r, "Retry-After"), 1);
            ck_assert_int_eq(header_int(&c[i].r, "RateLimit-Limit"), 600);
        }
        e2e_response_free(&c[i].r);
    }
}

static void infer_at_once(const e2e_server *s, int n, int *ok, int *capped)
{
    infer_at_once_as(s, NULL, n, ok, capped);
}

START_TEST(test_inference_cap_survives_aborted_requests)
{
    e2e_server s;
    gem_env g;
    const char *args[] = {"--max-concurrent-inferences", "2", NULL};
    gem_start(&s, &g, args);
    fake_gemini_set_delay_ms(g.fake, 1500);
    int ok, capped;
    infer_at_once(&s, 3, &ok, &capped);
    ck_assert_msg(ok == 2 && capped == 1, "3 at once under a cap of 2: %d ok, %d capped", ok, capped);

    /* Clients that leave while the upstream call waits, and streams cut in
     * the middle: each gives its slot back when its request ends. */
    for (int i = 0; i < 6; i++) {
        call c;
        call_start(&c, &s, INFER, i % 2 ? STREAM_BODY : PROMPT_BODY, NULL, 250);
        call_join(&c);
    }
    fake_gemini_set_delay_ms(g.fake, 0);
    fake_gemini_set_chunk_gap_ms(g.fake, 400);
    for (int i = 0; i < 6; i++) {
        call c;
        call_start(&c, &s, INFER, STREAM_BODY, NULL, 300);
        call_join(&c);
    }
    fake_gemini_set_chunk_gap_ms(g.fake, 20);
    fake_gemini_set_delay_ms(g.fake, 800);
    /* Once the cancelled calls have wound down (well within 5 s), the cap
     * admits its full number again: no slot leaked. */
    int admitted = 0;
    for (int tries = 0; tries < 20 && !admitted; tries++) {
        infer_at_once(&s, 2, &ok, &capped);
        admitted = ok == 2;
        if (!admitted) e2e_sleep_ms(250);
    }
    ck_assert_msg(admitted, "after aborted requests the cap of 2 no longer admits 2");
    /* A call of the admission check above may still be winding down (on
     * a loaded machine): retry until all slots are free, as above. */
    for (int tries = 0; tries < 20; tries++) {
        infer_at_once(&s, 3, &ok, &capped);
        if (ok == 2 && capped == 1) break;
        e2e_sleep_ms(250);
    }
    ck_assert_msg(ok == 2 && capped == 1, "cap still holds: %d ok, %d capped", ok, capped);
    /* A token's own cap overrides the configured one, in a count of its own. */
    char *solo = make_token(&s, "solo", ",\"max_concurrent_inferences\":1");
    char *auth = e2e_fmt("Authorization: Bearer %s", solo);
    infer_at_once_as(&s, auth, 2, &ok, &capped);
    ck_assert_msg(ok == 1 && capped == 1, "token capped at 1: %d ok, %d capped", ok, capped);
    free(auth);
    free(solo);
    gem_stop(&s, &g);
}
END_TEST

START_TEST(test_idempotent_inference)
{
    e2e_server s;
    gem_env g;
    gem_start(&s, &g, NULL);
    fake_gemini_set_delay_ms(g.fake, 1200);
    call first;
    call_start(&first, &s, INFER, PROMPT_BODY, "Idempotency-Key: ask-1", 0);
    e2e_sleep_ms(400);
    /* The first is still waiting on the model. */
    e2e_response r = admin_req(&s, "POST", INFER, PROMPT_BODY, "Idempotency-Key: ask-1", NULL);
    e2e_assert_error(&r, 409, "idempotency_in_progress", NULL, "while running");
    e2e_response_free(&r);
    call_join(&first);
    ck_assert_msg(first.r.status == 200, "%ld %s", first.r.status, first.r.body);
    size_t calls = fake_gemini_request_count(g.fake);
    fake_gemini_set_delay_ms(g.fake, 0);
    r = admin_req(&s, "POST", INFER, PROMPT_BODY, "Idempotency-Key: ask-1", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, first.r.body);
    ck_assert(has_header(&r, "Idempotent-Replayed"));
    e2e_response_free(&r);
    ck_assert_uint_eq(fake_gemini_request_count(g.fake), calls); /* not asked again */
    r = admin_req(&s, "POST", INFER, "{\"prompt\":\"Something else?\"}", "Idempotency-Key: ask-1", NULL);
    e2e_assert_error(&r, 422, "idempotency_key_reused", NULL, "another prompt");
    e2e_response_free(&r);
    e2e_response_free(&first.r);

    /* An event stream has no body to replay. */
    r = admin_req(&s, "POST", INFER, STREAM_BODY, "Idempotency-Key: ask-stream", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "event: done"));
    e2e_response_free(&r);
    r = admin_req(&s, "POST", INFER, STREAM_BODY, "Idempotency-Key: ask-stream", NULL);
    e2e_assert_error(&r, 409, "idempotency_not_replayable", "new key", "streamed key");
    e2e_response_free(&r);

    /* A 5xx is not kept: the retry runs (and succeeds). */
    fake_gemini_push_fault(g.fake, FAKE_400);
    r = admin_req(&s, "POST", INFER, PROMPT_BODY, "Idempotency-Key: ask-5xx", NULL);
    ck_assert_msg(r.status >= 500, "upstream 400: %ld %s", r.status, r.body);
    e2e_response_free(&r);
    r = admin_req(&s, "POST", INFER, PROMPT_BODY, "Idempotency-Key: ask-5xx", NULL);
    ck_assert_msg(r.status == 200, "retry after a 5xx: %ld %s", r.status, r.body);
    ck_assert(!has_header(&r, "Idempotent-Replayed"));
    e2e_response_free(&r);
    gem_stop(&s, &g);
}
END_TEST

Suite *e2e_fair_suite(void)
{
    Suite *s = suite_create("e2e_fair");
    TCase *tc = tcase_create("fair");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rate_limit_counts_down_then_429);
    tcase_add_test(tc, test_idempotent_create);
    tcase_add_test(tc, test_idempotent_conflict_not_kept);
    tcase_add_test(tc, test_idempotent_token_secret_not_kept);
    tcase_add_test(tc, test_rate_limit_per_caller_and_token_override);
    tcase_add_test(tc, test_inference_cap_survives_aborted_requests);
    tcase_add_test(tc, test_idempotent_inference);
    suite_add_tcase(s, tc);
    return s;
}
