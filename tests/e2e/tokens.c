/* Scoped API tokens over HTTP against the real binary (issue 11): the
 * lifecycle (create, list, rotate, revoke, expire), secrets that never leak
 * (responses, log, database files), the 401/403/404 answers, the audit log,
 * auth off, and the isolation matrix: every route of openapi.yaml for every
 * kind of caller. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/e2e/harness.h"

Suite *e2e_tokens_suite(void);

#define ADMIN_KEY "admin-bootstrap-key"
#define TOKENS "/api/v1/tokens"

static const char *const auth_env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};

/* One request as the caller whose bearer credential is `cred` (NULL: none). */
static e2e_response as(const e2e_server *s, const char *cred, const char *method, const char *path,
                       const char *body)
{
    char auth[256];
    const char *h[3] = {NULL, NULL, NULL};
    if (cred) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cred);
        h[0] = auth;
    }
    return e2e_request(s, method, path, body, h);
}

static e2e_response admin(const e2e_server *s, const char *method, const char *path, const char *body)
{
    return as(s, ADMIN_KEY, method, path, body);
}

/* Creates a token with `body` as the admin; returns its secret (malloc'ed)
 * and its id in `*id`. */
static char *mint(const e2e_server *s, const char *body, long *id)
{
    e2e_response r = admin(s, "POST", TOKENS, body);
    ck_assert_msg(r.status == 201, "create token: %ld %s", r.status, r.body);
    const char *tok = e2e_json_str(r.json, "token");
    ck_assert_ptr_nonnull(tok);
    char *out = strdup(tok);
    if (id) *id = (long)e2e_json_num(r.json, "id");
    e2e_response_free(&r);
    return out;
}

static long status_as(const e2e_server *s, const char *cred, const char *method, const char *path)
{
    e2e_response r = as(s, cred, method, path, NULL);
    long st = r.status;
    e2e_response_free(&r);
    return st;
}

static void create_agent(const e2e_server *s, const char *id)
{
    char *body = e2e_fmt("{\"user_id\":\"%s\",\"training_data\":\"%s knows about tomatoes. Tomatoes need "
                         "sun and water every day. Basil grows well beside tomatoes in the garden.\"}",
                         id, id);
    e2e_response r = admin(s, "POST", "/api/v1/agents", body);
    ck_assert_msg(r.status == 201, "create %s: %ld %s", id, r.status, r.body);
    e2e_response_free(&r);
    free(body);
}

static void wait_ready(const e2e_server *s, const char *id)
{
    const char *h[] = {"Authorization: Bearer " ADMIN_KEY, NULL};
    const char *st = e2e_wait_agent_as(s, id, 15000, h);
    ck_assert_msg(!strcmp(st, "ready"), "agent %s ended %s", id, st);
}

static void assert_no_secret_in_db(const e2e_server *s, const char *secret, const char *when)
{
    if (e2e_skip_on_pg("the secret check reads the SQLite files")) return;
    static const char *const files[] = {"agentd.db", "agentd.db-wal", "agentd.db-shm"};
    /* The random tail alone, too: a secret stored in any shape is a leak. */
    const char *tail = secret + 17;
    for (size_t i = 0; i < 3; i++) {
        char *path = e2e_fmt("%s/%s", s->data_dir, files[i]);
        ck_assert_msg(!e2e_file_holds(path, secret) && !e2e_file_holds(path, tail), "%s: the secret is in %s",
                      when, files[i]);
        free(path);
    }
}

START_TEST(test_token_lifecycle)
{
    e2e_server s;
    e2e_start(&s, NULL, auth_env);
    e2e_response r = admin(&s, "POST", TOKENS,
                           "{\"name\":\"ci\",\"scopes\":[\"agents:read\",\"inference\"],\"agents\":[\"alice\"],"
                           "\"rate_limit_per_min\":60}");
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    const char *tok = e2e_json_str(r.json, "token");
    ck_assert_ptr_nonnull(tok);
    ck_assert_int_eq(strlen(tok), 60);
    ck_assert(!strncmp(tok, "agd_", 4) && tok[16] == '_');
    const char *prefix = e2e_json_str(r.json, "prefix");
    ck_assert(!strncmp(tok, prefix, 16));
    long id = (long)e2e_json_num(r.json, "id");
    char *loc = e2e_header(&r, "Location");
    char *want_loc = e2e_fmt("/api/v1/tokens/%ld", id);
    ck_assert_str_eq(loc, want_loc);
    free(loc);
    free(want_loc);
    ck_assert_str_eq(e2e_json_str(r.json, "name"), "ci");
    ck_assert_int_eq((int)e2e_json_num(r.json, "rate_limit_per_min"), 60);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r.json, "max_concurrent_inferences")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r.json, "expires_at")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "scopes")), 2);
    char *first = strdup(tok);
    e2e_response_free(&r);

    /* It works, and the list shows it without any secret. */
    ck_assert_int_eq(status_as(&s, first, "GET", "/api/v1/agents"), 200);
    r = admin(&s, "GET", TOKENS, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 1);
    cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "tokens"), 0);
    ck_assert_ptr_null(cJSON_GetObjectItem(t0, "token"));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(t0, "revoked")));
    ck_assert(e2e_is_iso_utc(e2e_json_str(t0, "last_used_at")));
    ck_assert_ptr_null(strstr(r.body, first + 17));
    e2e_response_free(&r);

    /* Rotation with no grace: the old secret is refused at once. */
    char *path = e2e_fmt(TOKENS "/%ld/rotate", id);
    r = admin(&s, "POST", path, "{\"grace_s\":0}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r.json, "previous_valid_until")));
    char *second = strdup(e2e_json_str(r.json, "token"));
    ck_assert_str_ne(second, first);
    e2e_response_free(&r);
    ck_assert_int_eq(status_as(&s, first, "GET", "/api/v1/agents"), 401);
    ck_assert_int_eq(status_as(&s, second, "GET", "/api/v1/agents"), 200);

    /* With a grace of 2 s: both work, then only the new one. */
    r = admin(&s, "POST", path, "{\"grace_s\":2}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert(e2e_is_iso_utc(e2e_json_str(r.json, "previous_valid_until")));
    char *third = strdup(e2e_json_str(r.json, "token"));
    e2e_response_free(&r);
    ck_assert_int_eq(status_as(&s, second, "GET", "/api/v1/agents"), 200);
    ck_assert_int_eq(status_as(&s, third, "GET", "/api/v1/agents"), 200);
    e2e_sleep_ms(2100);
    ck_assert_int_eq(status_as(&s, second, "GET", "/api/v1/agents"), 401);
    ck_assert_int_eq(status_as(&s, third, "GET", "/api/v1/agents"), 200);
    free(path);

    /* Revocation: refused from the next request on, and after a restart. */
    path = e2e_fmt(TOKENS "/%ld", id);
    r = admin(&s, "DELETE", path, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "revoked")));
    ck_assert(e2e_is_iso_utc(e2e_json_str(r.json, "revoked_at")));
    ck_assert_ptr_null(cJSON_GetObjectItem(r.json, "token"));
    e2e_response_free(&r);
    ck_assert_int_eq(status_as(&s, third, "GET", "/api/v1/agents"), 401);
    char *rotate = e2e_fmt(TOKENS "/%ld/rotate", id);
    r = admin(&s, "POST", rotate, "{}");
    free(rotate);
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(e2e_json_str(r.json, "code"), "token_revoked");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_restart(&s, NULL, auth_env);
    ck_assert_int_eq(status_as(&s, third, "GET", "/api/v1/agents"), 401);
    r = admin(&s, "GET", path, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "revoked")));
    e2e_response_free(&r);
    free(path);

    /* Unknown ids. */
    r = admin(&s, "GET", TOKENS "/999", NULL);
    e2e_assert_error(&r, 404, "token_not_found", NULL, "unknown token");
    e2e_response_free(&r);
    r = admin(&s, "DELETE", TOKENS "/abc", NULL);
    e2e_assert_error(&r, 404, "token_not_found", NULL, "non-numeric id");
    e2e_response_free(&r);

    /* The audit log has the three actions, newest first, with request ids. */
    r = admin(&s, "GET", "/api/v1/audit?action=token.rotated", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 2);
    cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "entries"), 0);
    ck_assert_str_eq(e2e_json_str(e0, "actor"), "admin");
    char *target = e2e_fmt("token:%ld", id);
    ck_assert_str_eq(e2e_json_str(e0, "target"), target);
    ck_assert_int_eq((int)e2e_json_num(cJSON_GetObjectItem(e0, "detail"), "grace_s"), 2);
    ck_assert(e2e_is_iso_utc(e2e_json_str(e0, "at")));
    ck_assert_ptr_nonnull(e2e_json_str(e0, "request_id"));
    e2e_response_free(&r);
    /* Paged one entry at a time, the log reads the same as in one page. */
    r = admin(&s, "GET", "/api/v1/audit?limit=500", NULL);
    ck_assert_int_eq(r.status, 200);
    int total = (int)e2e_json_num(r.json, "count");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r.json, "next_cursor")));
    e2e_response_free(&r);
    int seen = 0, created = 0;
    char *next = strdup("/api/v1/audit?limit=1");
    while (next) {
        r = admin(&s, "GET", next, NULL);
        ck_assert_int_eq(r.status, 200);
        free(next);
        next = NULL;
        cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(r.json, "entries")) {
            seen++;
            created += !strcmp(e2e_json_str(it, "action"), "token.created");
        }
        const char *cursor = e2e_json_str(r.json, "next_cursor");
        if (cursor) next = e2e_fmt("/api/v1/audit?limit=1&cursor=%s", cursor);
        e2e_response_free(&r);
    }
    ck_assert_int_eq(seen, total);
    ck_assert_int_eq(created, 1);
    free(target);
    ck_assert_int_eq(e2e_stop(&s), 0);
    free(first);
    free(second);
    free(third);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_token_expiry)
{
    e2e_server s;
    e2e_start(&s, NULL, auth_env);
    char *tok = mint(&s, "{\"name\":\"short\",\"scopes\":[\"agents:read\"],\"agents\":\"*\",\"expires_in_s\":1}", NULL);
    ck_assert_int_eq(status_as(&s, tok, "GET", "/api/v1/agents"), 200);
    e2e_sleep_ms(1100);
    e2e_response r = as(&s, tok, "GET", "/api/v1/agents", NULL);
    e2e_assert_error(&r, 401, "invalid_token", "expired", "expired token");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    free(tok);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_token_secret_never_leaks)
{
    e2e_server s;
    e2e_start(&s, NULL, auth_env);
    long id;
    char *tok = mint(&s, "{\"name\":\"leak\",\"scopes\":[\"agents:read\"],\"agents\":\"*\"}", &id);
    ck_assert_int_eq(status_as(&s, tok, "GET", "/api/v1/agents"), 200);
    ck_assert_int_eq(status_as(&s, tok, "GET", "/api/v1/agents/nobody"), 404);
    char *path = e2e_fmt(TOKENS "/%ld/rotate", id);
    e2e_response r = admin(&s, "POST", path, "{\"grace_s\":60}");
    ck_assert_int_eq(r.status, 200);
    char *tok2 = strdup(e2e_json_str(r.json, "token"));
    e2e_response_free(&r);
    free(path);
    ck_assert_int_eq(status_as(&s, tok2, "GET", "/api/v1/agents"), 200);
    /* A wrong secret with a real prefix: audited, the secret still absent. */
    char *forged = strdup(tok2);
    forged[20] = forged[20] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(status_as(&s, forged, "GET", "/api/v1/agents"), 401);

    const char *reads[] = {TOKENS, "/api/v1/audit", NULL};
    for (int i = 0; reads[i]; i++) {
        r = admin(&s, "GET", reads[i], NULL);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(!strstr(r.body, tok + 17) && !strstr(r.body, tok2 + 17), "a secret in %s", reads[i]);
        e2e_response_free(&r);
    }
    path = e2e_fmt(TOKENS "/%ld", id);
    r = admin(&s, "GET", path, NULL);
    ck_assert(!strstr(r.body, tok + 17) && !strstr(r.body, tok2 + 17));
    e2e_response_free(&r);
    r = admin(&s, "DELETE", path, NULL);
    ck_assert(!strstr(r.body, tok + 17) && !strstr(r.body, tok2 + 17));
    e2e_response_free(&r);
    free(path);
    assert_no_secret_in_db(&s, tok, "running");
    assert_no_secret_in_db(&s, tok2, "running");
    ck_assert_int_eq(e2e_stop(&s), 0);
    assert_no_secret_in_db(&s, tok, "stopped");
    assert_no_secret_in_db(&s, tok2, "stopped");
    ck_assert_int_eq(e2e_log_count(&s, tok + 17), 0);
    ck_assert_int_eq(e2e_log_count(&s, tok2 + 17), 0);
    ck_assert_int_eq(e2e_log_count(&s, forged + 17), 0);
    /* The access log names the caller by token id. */
    char *caller = e2e_fmt("\"caller\":\"token:%ld\"", id);
    ck_assert_int_ge(e2e_log_count(&s, caller), 3);
    free(caller);
    free(tok);
    free(tok2);
    free(forged);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_token_validation)
{
    e2e_server s;
    e2e_start(&s, NULL, auth_env);
    static const struct {
        const char *body, *code, *needle;
    } bad[] = {
        {"{\"scopes\":[\"admin\"],\"agents\":\"*\"}", "invalid_name", "name"},
        {"{\"name\":\"\",\"scopes\":[\"admin\"],\"agents\":\"*\"}", "invalid_name", "name"},
        {"{\"name\":\"a\\u0001b\",\"scopes\":[\"admin\"],\"agents\":\"*\"}", "invalid_name", "control"},
        {"{\"name\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"scopes\":[\"admin\"],"
         "\"agents\":\"*\"}", "invalid_name", "name"},
        {"{\"name\":\"n\",\"agents\":\"*\"}", "invalid_scopes", "scopes"},
        {"{\"name\":\"n\",\"scopes\":[],\"agents\":\"*\"}", "invalid_scopes", "scopes"},
        {"{\"name\":\"n\",\"scopes\":[\"agents:read\",\"root\"],\"agents\":\"*\"}", "invalid_scopes", "'root'"},
        {"{\"name\":\"n\",\"scopes\":[\"admin\"]}", "invalid_agents", "agents"},
        {"{\"name\":\"n\",\"scopes\":[\"admin\"],\"agents\":[]}", "invalid_agents", "agents"},
        {"{\"name\":\"n\",\"scopes\":[\"admin\"],\"agents\":\"alice\"}", "invalid_agents", "agents"},
        {"{\"name\":\"n\",\"scopes\":[\"admin\"],\"agents\":[\"ok\",\"b/d\"]}", "invalid_agents", "agents[1]"},
        {"{\"name\":\"n\",\"scopes\":[\"admin\"],\"agents\":\"*\",\"expires_in_s\":0}", "invalid_expires_in_s",
         "expires_in_s"},
        {"{\"name\":\"n\",\"scopes\":[\"admin\"],\"agents\":\"*\",\"expires_in_s\":315360001}",
         "invalid_expires_in_s", "expires_in_s"},
        {"{\"name\":\"n\",\"scopes\":[\"admin\"],\"agents\":\"*\",\"rate_limit_per_min\":-1}",
         "invalid_rate_limit_per_min", "rate_limit_per_min"},
        {"{\"name\":\"n\",\"scopes\":[\"admin\"],\"agents\":\"*\",\"max_concurrent_inferences\":1.5}",
         "invalid_max_concurrent_inferences", "max_concurrent_inferences"},
        {"{\"name\":\"n\",\"scopes\":[\"admin\"],\"agents\":[\"alice\"]}", "invalid_scopes", "admin"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e2e_response r = admin(&s, "POST", TOKENS, bad[i].body);
        e2e_assert_error(&r, 400, bad[i].code, bad[i].needle, bad[i].body);
        e2e_response_free(&r);
    }
    /* A token that mints tokens grants no more than it holds. */
    char *ops = mint(&s, "{\"name\":\"ops\",\"scopes\":[\"admin\",\"agents:read\"],\"agents\":\"*\"}", NULL);
    e2e_response r = as(&s, ops, "POST", TOKENS, "{\"name\":\"x\",\"scopes\":[\"deploy\"],\"agents\":\"*\"}");
    e2e_assert_error(&r, 403, "insufficient_scope", "'deploy'", "granting a scope it lacks");
    e2e_response_free(&r);
    r = as(&s, ops, "POST", TOKENS, "{\"name\":\"x\",\"scopes\":[\"agents:read\"],\"agents\":[\"bob\"]}");
    ck_assert_int_eq(r.status, 201);
    char *want = e2e_fmt("\"created_by\":\"token:");
    ck_assert_ptr_nonnull(strstr(r.body, want));
    free(want);
    e2e_response_free(&r);
    free(ops);
    r = admin(&s, "POST", TOKENS, NULL);
    e2e_assert_error(&r, 400, "invalid_body", NULL, "no body");
    e2e_response_free(&r);
    r = admin(&s, "POST", TOKENS "/1/rotate", "{\"grace_s\":-1}");
    e2e_assert_error(&r, 400, "invalid_grace_s", "grace_s", "negative grace");
    e2e_response_free(&r);
    r = admin(&s, "GET", TOKENS "?limit=0", NULL);
    e2e_assert_error(&r, 400, "invalid_limit", "limit", "limit 0");
    e2e_response_free(&r);
    r = admin(&s, "GET", "/api/v1/audit?cursor=x", NULL);
    e2e_assert_error(&r, 400, "invalid_cursor", "cursor", "bad cursor");
    e2e_response_free(&r);
    r = admin(&s, "GET", "/api/v1/audit?action=DROP%20TABLE", NULL);
    e2e_assert_error(&r, 400, "invalid_action", "action", "bad action");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* Rotating a token hands its new secret to the caller: a token with the
 * admin scope rotates only tokens holding no scope it lacks, or it would
 * take the other token's powers. */
START_TEST(test_rotate_grants_no_more)
{
    e2e_server s;
    e2e_start(&s, NULL, auth_env);
    long ops_id, deployer_id, reader_id;
    char *ops = mint(&s, "{\"name\":\"ops\",\"scopes\":[\"admin\",\"agents:read\"],\"agents\":\"*\"}", &ops_id);
    char *deployer = mint(&s, "{\"name\":\"d\",\"scopes\":[\"deploy\",\"agents:read\"],\"agents\":\"*\"}",
                          &deployer_id);
    char *reader = mint(&s, "{\"name\":\"r\",\"scopes\":[\"agents:read\"],\"agents\":[\"alice\"]}", &reader_id);
    char *path = e2e_fmt(TOKENS "/%ld/rotate", deployer_id);
    e2e_response r = as(&s, ops, "POST", path, "{}");
    e2e_assert_error(&r, 403, "insufficient_scope", "'deploy'", "rotating a token with a scope it lacks");
    ck_assert_ptr_null(cJSON_GetObjectItem(r.json, "token"));
    e2e_response_free(&r);
    free(path);
    /* Nothing was rotated: the deployer's secret still works. */
    ck_assert_int_eq(status_as(&s, deployer, "GET", "/api/v1/agents"), 200);
    /* Within its own powers it rotates, itself included; the admin key rotates any. */
    path = e2e_fmt(TOKENS "/%ld/rotate", reader_id);
    r = as(&s, ops, "POST", path, "{}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    e2e_response_free(&r);
    free(path);
    path = e2e_fmt(TOKENS "/%ld/rotate", ops_id);
    r = as(&s, ops, "POST", path, "{\"grace_s\":60}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    e2e_response_free(&r);
    free(path);
    path = e2e_fmt(TOKENS "/%ld/rotate", deployer_id);
    r = admin(&s, "POST", path, "{}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    e2e_response_free(&r);
    free(path);
    r = as(&s, ops, "POST", TOKENS "/999/rotate", "{}");
    e2e_assert_error(&r, 404, "token_not_found", NULL, "rotating an unknown token");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    free(ops);
    free(deployer);
    free(reader);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_auth_answers)
{
    e2e_server s;
    e2e_start(&s, NULL, auth_env);
    create_agent(&s, "alice");
    create_agent(&s, "bob");
    char *alice = mint(&s, "{\"name\":\"alice\",\"scopes\":[\"agents:read\",\"agents:write\",\"inference\","
                           "\"training\"],\"agents\":[\"alice\"]}", NULL);

    /* 401: the exact header, for no token, a wrong one and an unknown agd_ one. */
    const char *creds[] = {NULL, "wrong", "agd_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (int i = 0; i < 3; i++) {
        e2e_response r = as(&s, creds[i], "GET", "/api/v1/agents", NULL);
        e2e_assert_error(&r, 401, "invalid_token", NULL, "401");
        char *h = e2e_header(&r, "WWW-Authenticate");
        ck_assert_str_eq(h, "Bearer error=\"invalid_token\"");
        free(h);
        e2e_response_free(&r);
    }
    /* 403 names the scope, in the body and the header. */
    e2e_response r = as(&s, alice, "GET", TOKENS, NULL);
    e2e_assert_error(&r, 403, "insufficient_scope", "this token lacks the 'admin' scope", "403");
    char *h = e2e_header(&r, "WWW-Authenticate");
    ck_assert_str_eq(h, "Bearer error=\"insufficient_scope\", scope=\"admin\"");
    free(h);
    e2e_response_free(&r);

    /* Creating outside the list: 403 agent_not_permitted. */
    r = as(&s, alice, "POST", "/api/v1/agents", "{\"user_id\":\"mallory\",\"training_data\":\"Some text.\"}");
    e2e_assert_error(&r, 403, "agent_not_permitted", "mallory", "create outside the list");
    e2e_response_free(&r);

    /* Another's agent answers exactly as a missing one: same status, headers
     * and body (one request id for both). Compared with the admin's answers
     * once bob is gone. */
    static const struct {
        const char *method, *path, *body;
    } probes[] = {
        {"GET", "/api/v1/agents/bob", NULL},
        {"GET", "/api/v1/agents/bob/status", NULL},
        {"POST", "/api/v1/agents/bob/inference", "{\"prompt\":\"tomatoes?\"}"},
        {"POST", "/api/v1/agents/bob/inference", "{\"prompt\":"},
        {"DELETE", "/api/v1/agents/bob", NULL},
    };
    size_t np = sizeof(probes) / sizeof(probes[0]);
    char *hidden[8];
    long hidden_status[8];
    for (size_t i = 0; i < np; i++) {
        char auth[128];
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", alice);
        const char *hh[] = {auth, "X-Request-Id: probe", NULL};
        r = e2e_request(&s, probes[i].method, probes[i].path, probes[i].body, hh);
        hidden[i] = strdup(r.body);
        hidden_status[i] = r.status;
        ck_assert_ptr_null(e2e_header(&r, "WWW-Authenticate"));
        e2e_response_free(&r);
    }
    r = admin(&s, "DELETE", "/api/v1/agents/bob", NULL);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    /* Deletes are audited: who, what, which agent. */
    r = admin(&s, "DELETE", "/api/v1/agents/all", NULL);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    r = admin(&s, "GET", "/api/v1/audit?action=agent.deleted", NULL);
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 1);
    cJSON *del = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "entries"), 0);
    ck_assert_str_eq(e2e_json_str(del, "actor"), "admin");
    ck_assert_str_eq(e2e_json_str(del, "target"), "bob");
    e2e_response_free(&r);
    r = admin(&s, "GET", "/api/v1/audit?action=agents.deleted_all", NULL);
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 1);
    del = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "entries"), 0);
    ck_assert_int_eq((int)e2e_json_num(cJSON_GetObjectItem(del, "detail"), "deleted"), 1);
    e2e_response_free(&r);
    for (size_t i = 0; i < np; i++) {
        const char *hh[] = {"Authorization: Bearer " ADMIN_KEY, "X-Request-Id: probe", NULL};
        r = e2e_request(&s, probes[i].method, probes[i].path, probes[i].body, hh);
        ck_assert_int_eq(r.status, hidden_status[i]);
        ck_assert_msg(!strcmp(r.body, hidden[i]), "%s %s: hidden '%s' vs missing '%s'", probes[i].method,
                      probes[i].path, hidden[i], r.body);
        e2e_response_free(&r);
        free(hidden[i]);
    }
    ck_assert_int_eq(e2e_stop(&s), 0);
    free(alice);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_auth_failures_coalesced)
{
    e2e_server s;
    e2e_start(&s, NULL, auth_env);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(status_as(&s, "agd_bbbbbbbbbbbb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "GET",
                                   "/api/v1/agents"), 401);
    e2e_response r = admin(&s, "GET", "/api/v1/audit?action=auth.failed", NULL);
    ck_assert_int_eq(r.status, 200);
    /* A flood is not a write per request: one row a second at most. */
    int rows = (int)e2e_json_num(r.json, "count");
    ck_assert_msg(rows >= 1 && rows <= 2, "%d auth.failed rows for 20 failures in about a second", rows);
    cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "entries"), rows - 1);
    ck_assert_str_eq(e2e_json_str(e0, "actor"), "anonymous");
    ck_assert_str_eq(e2e_json_str(e0, "target"), "agd_bbbbbbbbbbbb");
    ck_assert_int_eq((int)e2e_json_num(cJSON_GetObjectItem(e0, "detail"), "count"), 1);
    e2e_response_free(&r);
    e2e_sleep_ms(1050);
    ck_assert_int_eq(status_as(&s, "nope", "GET", "/api/v1/agents"), 401);
    r = admin(&s, "GET", "/api/v1/audit?action=auth.failed&limit=1", NULL);
    cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "entries"), 0);
    /* The newest row counts every failure since the row before it. */
    int counted = (int)e2e_json_num(cJSON_GetObjectItem(last, "detail"), "count");
    ck_assert_msg(counted >= 2 && counted <= 20, "count %d", counted);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(last, "target")));
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_auth_off)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    static const struct {
        const char *method, *path, *body;
    } routes[] = {
        {"POST", TOKENS, "{\"name\":\"n\",\"scopes\":[\"admin\"],\"agents\":\"*\"}"},
        {"GET", TOKENS, NULL},
        {"GET", TOKENS "/1", NULL},
        {"DELETE", TOKENS "/1", NULL},
        {"POST", TOKENS "/1/rotate", NULL},
        {"GET", "/api/v1/audit", NULL},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        e2e_response r = e2e_request(&s, routes[i].method, routes[i].path, routes[i].body, NULL);
        e2e_assert_error(&r, 409, "auth_disabled", "AGENTD_API_KEY", routes[i].path);
        e2e_response_free(&r);
    }
    /* Everything else as before: no credentials needed, an agd_ token ignored. */
    create_agent(&s, "carol");
    e2e_response r = e2e_get(&s, "/api/v1/agents/carol");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    ck_assert_int_eq(status_as(&s, "agd_cccccccccccc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "DELETE",
                               "/api/v1/agents/carol"), 200);
    ck_assert_int_eq(e2e_stop(&s), 0);
    ck_assert_int_eq(e2e_log_count(&s, "\"caller\":\"anonymous\""), 9);
    e2e_cleanup(&s);
}
END_TEST

/* ---- the isolation matrix ---- */

enum { C_ADMIN, C_ALICE, C_BOB, C_REVOKED, C_EXPIRED, C_ROTATED, C_COUNT };
static const char *const caller_names[C_COUNT] = {"admin", "alice", "bob", "revoked", "expired", "rotated"};
/* Each row runs its callers in this order, so a destructive row's answers
 * are stable: the refused callers first, the admin last. */
static const int caller_order[C_COUNT] = {C_REVOKED, C_EXPIRED, C_ROTATED, C_BOB, C_ALICE, C_ADMIN};

typedef struct matrix_row {
    const char *route;     /* "METHOD /template" as openapi.yaml names it */
    const char *path;      /* the concrete request */
    const char *body;
    long want[C_COUNT];    /* admin, alice, bob, revoked, expired, rotated */
} matrix_row;

#define DENIED 401, 401, 401
/* alice: every scope but admin, agents ["alice"]; bob: agents:read, ["bob"]. */
static const matrix_row matrix[] = {
    {"GET /health", "/health", NULL, {200, 200, 200, 200, 200, 200}},
    {"GET /metrics", "/metrics", NULL, {200, 403, 403, DENIED}},
    {"GET /", "/", NULL, {200, 200, 200, 200, 200, 200}},
    {"GET /assets/{name}", "/assets/nope.css", NULL, {404, 404, 404, 404, 404, 404}},
    {"GET /api/v1/config", "/api/v1/config", NULL, {200, 200, 200, DENIED}},
    {"GET /api/v1/agents", "/api/v1/agents", NULL, {200, 200, 200, DENIED}},
    {"POST /api/v1/agents", "/api/v1/agents", "{\"user_id\":\"alice\",\"training_data\":\"Some text.\"}",
     {409, 409, 403, DENIED}},
    {"POST /api/v1/agents", "/api/v1/agents", "{\"user_id\":\"bob\",\"training_data\":\"Some text.\"}",
     {409, 403, 403, DENIED}},
    {"POST /api/v1/agents/advanced", "/api/v1/agents/advanced",
     "{\"user_id\":\"bob\",\"training_data\":\"Some text.\"}", {409, 403, 403, DENIED}},
    {"GET /api/v1/training/status", "/api/v1/training/status", NULL, {200, 200, 200, DENIED}},
    {"GET /api/v1/training/metrics", "/api/v1/training/metrics", NULL, {200, 200, 200, DENIED}},
    {"GET /api/v1/agents/{user_id}", "/api/v1/agents/alice", NULL, {200, 200, 404, DENIED}},
    {"GET /api/v1/agents/{user_id}", "/api/v1/agents/bob", NULL, {200, 404, 200, DENIED}},
    {"GET /api/v1/agents/{user_id}/status", "/api/v1/agents/alice/status", NULL, {200, 200, 404, DENIED}},
    {"GET /api/v1/agents/{user_id}/status", "/api/v1/agents/bob/status", NULL, {200, 404, 200, DENIED}},
    {"GET /api/v1/agents/{user_id}/pipeline", "/api/v1/agents/alice/pipeline", NULL, {200, 200, 404, DENIED}},
    {"GET /api/v1/agents/{user_id}/pipeline", "/api/v1/agents/bob/pipeline", NULL, {200, 404, 200, DENIED}},
    {"GET /api/v1/agents/{user_id}/executions", "/api/v1/agents/alice/executions", NULL, {200, 200, 404, DENIED}},
    {"GET /api/v1/agents/{user_id}/executions", "/api/v1/agents/bob/executions", NULL, {200, 404, 200, DENIED}},
    /* No run yet: the owner's 404 is training_not_found, the other's agent_not_found. */
    {"GET /api/v1/agents/{user_id}/training", "/api/v1/agents/alice/training", NULL, {404, 404, 404, DENIED}},
    {"GET /api/v1/agents/{user_id}/training", "/api/v1/agents/bob/training", NULL, {404, 404, 404, DENIED}},
    {"GET /api/v1/agents/{user_id}/feedback", "/api/v1/agents/alice/feedback", NULL, {200, 200, 404, DENIED}},
    {"GET /api/v1/agents/{user_id}/feedback", "/api/v1/agents/bob/feedback", NULL, {200, 404, 200, DENIED}},
    {"GET /api/v1/agents/{user_id}/models", "/api/v1/agents/alice/models", NULL, {200, 200, 404, DENIED}},
    {"GET /api/v1/agents/{user_id}/models", "/api/v1/agents/bob/models", NULL, {200, 404, 200, DENIED}},
    {"GET /api/v1/agents/{user_id}/models/{name}/export", "/api/v1/agents/alice/models/v1/export", NULL,
     {200, 200, 404, DENIED}},
    {"GET /api/v1/agents/{user_id}/models/{name}/export", "/api/v1/agents/bob/models/v1/export", NULL,
     {200, 404, 200, DENIED}},
    {"POST /api/v1/agents/{user_id}/evaluate", "/api/v1/agents/alice/evaluate", "{}", {400, 400, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/evaluate", "/api/v1/agents/bob/evaluate", "{}", {400, 404, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/inference", "/api/v1/agents/alice/inference", "{\"prompt\":\"tomatoes?\"}",
     {200, 200, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/inference", "/api/v1/agents/bob/inference", "{\"prompt\":\"tomatoes?\"}",
     {200, 404, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/replay", "/api/v1/agents/alice/replay", "{}", {400, 400, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/replay", "/api/v1/agents/bob/replay", "{}", {400, 404, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/train", "/api/v1/agents/alice/train", "{}", {400, 400, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/train", "/api/v1/agents/bob/train", "{}", {400, 404, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/feedback", "/api/v1/agents/alice/feedback", "{}", {400, 400, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/feedback", "/api/v1/agents/bob/feedback", "{}", {400, 404, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/models/{name}/deploy", "/api/v1/agents/alice/models/nope/deploy", "{}",
     {404, 404, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/models/{name}/deploy", "/api/v1/agents/bob/models/nope/deploy", "{}",
     {404, 404, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/deployments", "/api/v1/agents/alice/deployments", "{\"model\":\"nope\"}",
     {404, 404, 403, DENIED}},
    {"POST /api/v1/agents/{user_id}/deployments", "/api/v1/agents/bob/deployments", "{\"model\":\"nope\"}",
     {404, 404, 403, DENIED}},
    {"GET /api/v1/agents/{user_id}/deployments", "/api/v1/agents/alice/deployments", NULL, {200, 200, 404, DENIED}},
    {"GET /api/v1/agents/{user_id}/deployments", "/api/v1/agents/bob/deployments", NULL, {200, 404, 200, DENIED}},
    {"GET /api/v1/agents/{user_id}/deployments/{deployment_id}", "/api/v1/agents/alice/deployments/0b7e5f3c-1d2a-4c3b-8a9d-0123456789ab", NULL,
     {404, 404, 404, DENIED}},
    {"GET /api/v1/agents/{user_id}/deployments/{deployment_id}/logs",
     "/api/v1/agents/bob/deployments/0b7e5f3c-1d2a-4c3b-8a9d-0123456789ab/logs", NULL, {404, 404, 404, DENIED}},
    {"POST /api/v1/agents/{user_id}/deployments/{deployment_id}/push",
     "/api/v1/agents/alice/deployments/0b7e5f3c-1d2a-4c3b-8a9d-0123456789ab/push", "{}", {404, 404, 403, DENIED}},
    {"DELETE /api/v1/agents/{user_id}/deployments/{deployment_id}", "/api/v1/agents/bob/deployments/0b7e5f3c-1d2a-4c3b-8a9d-0123456789ab",
     NULL, {404, 404, 403, DENIED}},
    {"DELETE /api/v1/agents/{user_id}/executions", "/api/v1/agents/alice/executions", NULL,
     {200, 200, 403, DENIED}},
    {"DELETE /api/v1/agents/{user_id}/executions", "/api/v1/agents/bob/executions", NULL,
     {200, 404, 403, DENIED}},
    {"POST /api/v1/tokens", TOKENS, "{}", {400, 403, 403, DENIED}},
    {"GET /api/v1/tokens", TOKENS, NULL, {200, 403, 403, DENIED}},
    {"GET /api/v1/tokens/{id}", TOKENS "/1", NULL, {200, 403, 403, DENIED}},
    {"POST /api/v1/tokens/{id}/rotate", TOKENS "/999/rotate", NULL, {404, 403, 403, DENIED}},
    {"DELETE /api/v1/tokens/{id}", TOKENS "/999", NULL, {404, 403, 403, DENIED}},
    {"GET /api/v1/audit", "/api/v1/audit", NULL, {200, 403, 403, DENIED}},
    {"POST /api/v1/agents/start-training", "/api/v1/agents/start-training", "{\"user_ids\":[\"bob\"]}",
     {202, 404, 403, DENIED}},
    {"POST /api/v1/training/stop", "/api/v1/training/stop", NULL, {200, 200, 403, DENIED}},
    {"DELETE /api/v1/agents/{user_id}", "/api/v1/agents/bob", NULL, {200, 404, 403, DENIED}},
    {"DELETE /api/v1/agents/{user_id}", "/api/v1/agents/alice", NULL, {404, 200, 403, DENIED}},
    {"DELETE /api/v1/agents/all", "/api/v1/agents/all", NULL, {200, 403, 403, DENIED}},
};

/* Every "METHOD /path" openapi.yaml documents (its path keys sit two spaces
 * in, its operations four). Returns the count; fills `out` (malloc'ed). */
static size_t openapi_routes(char **out, size_t cap)
{
    char *spec = e2e_read_file("openapi.yaml", NULL);
    ck_assert_msg(spec != NULL, "cannot read openapi.yaml (run from the repository root)");
    size_t n = 0;
    char path[256] = "";
    int in_paths = 0;
    for (char *line = strtok(spec, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "paths:", 6)) {
            in_paths = 1;
            continue;
        }
        if (in_paths && line[0] != ' ' && line[0] != '#') in_paths = 0;
        if (!in_paths) continue;
        if (line[0] == ' ' && line[1] == ' ' && line[2] == '/') {
            snprintf(path, sizeof(path), "%.*s", (int)strcspn(line + 2, ":"), line + 2);
            continue;
        }
        static const char *const methods[] = {"get", "post", "put", "delete", "patch"};
        for (size_t m = 0; m < 5; m++) {
            size_t ml = strlen(methods[m]);
            if (!strncmp(line, "    ", 4) && line[4] != ' ' && !strncmp(line + 4, methods[m], ml) &&
                line[4 + ml] == ':' && n < cap) {
                char up[8];
                for (size_t k = 0; k <= ml; k++) up[k] = (char)(k < ml ? methods[m][k] - 32 : 0);
                out[n++] = e2e_fmt("%s %s", up, path);
            }
        }
    }
    free(spec);
    return n;
}

START_TEST(test_isolation_matrix)
{
    size_t nrows = sizeof(matrix) / sizeof(matrix[0]);
    /* Complete by construction: a documented route without a row fails. */
    char *routes[128];
    size_t nroutes = openapi_routes(routes, 128);
    ck_assert_int_gt(nroutes, 20);
    for (size_t i = 0; i < nroutes; i++) {
        int found = 0;
        for (size_t j = 0; j < nrows && !found; j++) found = !strcmp(matrix[j].route, routes[i]);
        ck_assert_msg(found, "the isolation matrix has no row for %s (openapi.yaml)", routes[i]);
    }

    e2e_server s;
    e2e_start(&s, NULL, auth_env);
    create_agent(&s, "alice");
    create_agent(&s, "bob");
    wait_ready(&s, "alice");
    wait_ready(&s, "bob");
    char *cred[C_COUNT];
    cred[C_ADMIN] = strdup(ADMIN_KEY);
    cred[C_ALICE] = mint(&s, "{\"name\":\"alice\",\"scopes\":[\"agents:read\",\"agents:write\",\"inference\","
                             "\"training\",\"deploy\"],\"agents\":[\"alice\"]}", NULL);
    cred[C_BOB] = mint(&s, "{\"name\":\"bob\",\"scopes\":[\"agents:read\"],\"agents\":[\"bob\"]}", NULL);
    long rid, eid, oid;
    cred[C_REVOKED] = mint(&s, "{\"name\":\"r\",\"scopes\":[\"admin\"],\"agents\":\"*\"}", &rid);
    cred[C_EXPIRED] = mint(&s, "{\"name\":\"e\",\"scopes\":[\"admin\"],\"agents\":\"*\",\"expires_in_s\":1}", &eid);
    cred[C_ROTATED] = mint(&s, "{\"name\":\"o\",\"scopes\":[\"admin\"],\"agents\":\"*\"}", &oid);
    char *p = e2e_fmt(TOKENS "/%ld", rid);
    e2e_response r = admin(&s, "DELETE", p, NULL);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    free(p);
    p = e2e_fmt(TOKENS "/%ld/rotate", oid);
    r = admin(&s, "POST", p, "{}");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    free(p);
    e2e_sleep_ms(1000);

    int failures = 0;
    char report[4096] = "";
    for (size_t i = 0; i < nrows; i++) {
        for (int k = 0; k < C_COUNT; k++) {
            int c = caller_order[k];
            const char *method = matrix[i].route;
            char m[8];
            snprintf(m, sizeof(m), "%.*s", (int)strcspn(method, " "), method);
            r = as(&s, cred[c], m, matrix[i].path, matrix[i].body);
            /* A 404 for another's agent is the unknown agent's own. */
            int hidden = (c == C_ALICE && strstr(matrix[i].path, "/agents/bob")) ||
                         (c == C_BOB && strstr(matrix[i].path, "/agents/alice"));
            const char *code = r.json ? e2e_json_str(r.json, "code") : NULL;
            int wrong_code = r.status == 404 && hidden && (!code || strcmp(code, "agent_not_found") != 0);
            int own = strstr(matrix[i].path, "/agents/alice") || strstr(matrix[i].path, "/agents/bob");
            int leaked = r.status == 404 && own && !hidden && code && !strcmp(code, "agent_not_found") &&
                         strcmp(m, "DELETE") != 0;
            if (r.status != matrix[i].want[c] || wrong_code || leaked) {
                failures++;
                size_t len = strlen(report);
                snprintf(report + len, sizeof(report) - len, "\n  %s %s as %s: %ld, want %ld: %.120s", m,
                         matrix[i].path, caller_names[c], r.status, matrix[i].want[c], r.body);
            }
            e2e_response_free(&r);
        }
    }
    ck_assert_msg(failures == 0, "%d cells of the isolation matrix differ:%s", failures, report);
    ck_assert_int_eq(e2e_stop(&s), 0);
    for (int c = 0; c < C_COUNT; c++) free(cred[c]);
    for (size_t i = 0; i < nroutes; i++) free(routes[i]);
    e2e_cleanup(&s);
}
END_TEST

/* The Flask group routes span agents: a bound token sees and acts on its own. */
START_TEST(test_bound_token_group_routes)
{
    e2e_server s;
    e2e_start(&s, NULL, auth_env);
    create_agent(&s, "alice");
    create_agent(&s, "bob");
    wait_ready(&s, "alice");
    wait_ready(&s, "bob");
    char *alice = mint(&s, "{\"name\":\"a\",\"scopes\":[\"agents:read\",\"training\"],\"agents\":[\"alice\"]}", NULL);
    e2e_response r = as(&s, alice, "GET", "/api/v1/agents", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(r.json, "total_users"), 1);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "users"), "alice"));
    ck_assert_ptr_null(strstr(r.body, "bob"));
    e2e_response_free(&r);
    r = as(&s, alice, "GET", "/api/v1/training/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(cJSON_GetObjectItem(r.json, "metrics"), "total_users"), 1);
    ck_assert_ptr_null(strstr(r.body, "bob"));
    e2e_response_free(&r);
    /* The admin starts a group of both; alice sees her run only. */
    r = admin(&s, "POST", "/api/v1/agents/start-training", "{\"user_ids\":[\"alice\",\"bob\"],\"training_cycles\":50}");
    ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
    e2e_response_free(&r);
    r = as(&s, alice, "GET", "/api/v1/training/status", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(strstr(r.body, "bob"));
    ck_assert_int_eq((int)e2e_json_num(r.json, "total_agents"), 1);
    e2e_response_free(&r);
    /* Her stop stops her run; bob's goes on until the admin stops it. */
    r = as(&s, alice, "POST", "/api/v1/training/stop", NULL);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    /* Bob's run is not cancelled by her stop: it still runs or has
     * finished by itself (50 cycles of a small agent can be that quick); the
     * admin's stop then cancels it if it still runs. */
    r = admin(&s, "GET", "/api/v1/agents/bob/training", NULL);
    ck_assert_int_eq(r.status, 200);
    const char *bob_state = e2e_json_str(cJSON_GetObjectItem(r.json, "training"), "status");
    ck_assert_msg(bob_state && strcmp(bob_state, "cancelled") != 0, "bob's run after alice's stop: %s", r.body);
    e2e_response_free(&r);
    r = admin(&s, "POST", "/api/v1/training/stop", NULL);
    ck_assert_int_eq(r.status, 200);
    const char *msg = e2e_json_str(r.json, "message");
    int cancelled = msg && strstr(msg, "1 run cancelled") != NULL;
    ck_assert_msg(cancelled || (msg && strstr(msg, "No active training")), "admin stop: %s", r.body);
    e2e_response_free(&r);
    r = admin(&s, "GET", "/api/v1/agents/bob/training", NULL);
    bob_state = e2e_json_str(cJSON_GetObjectItem(r.json, "training"), "status");
    ck_assert_msg(bob_state && strcmp(bob_state, cancelled ? "cancelled" : "done") == 0, "bob's run after the admin's stop: %s",
                  r.body);
    e2e_response_free(&r);
    r = as(&s, alice, "POST", "/api/v1/agents/start-training", "{\"user_ids\":[\"alice\",\"bob\"]}");
    e2e_assert_error(&r, 404, "agent_not_found", "'bob'", "a group with another's agent");
    ck_assert_ptr_null(strstr(r.body, "'alice'"));
    e2e_response_free(&r);
    /* A later group of bob's does not hide hers: her status is her group's. */
    r = admin(&s, "POST", "/api/v1/agents/start-training", "{\"user_ids\":[\"alice\"],\"training_cycles\":50}");
    ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
    long hers = (long)e2e_json_num(r.json, "group_id");
    e2e_response_free(&r);
    r = admin(&s, "POST", "/api/v1/agents/start-training", "{\"user_ids\":[\"bob\"],\"training_cycles\":50}");
    ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
    long his = (long)e2e_json_num(r.json, "group_id");
    e2e_response_free(&r);
    r = as(&s, alice, "GET", "/api/v1/training/status", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(cJSON_GetObjectItem(r.json, "group_id") && (long)e2e_json_num(r.json, "group_id") == hers,
                  "alice's status (her group %ld, bob's %ld): %s", hers, his, r.body);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "current_accuracies"), "alice"));
    ck_assert_ptr_null(strstr(r.body, "bob"));
    e2e_response_free(&r);
    r = admin(&s, "GET", "/api/v1/training/status", NULL);
    ck_assert_int_eq((long)e2e_json_num(r.json, "group_id"), his);
    e2e_response_free(&r);
    r = admin(&s, "POST", "/api/v1/training/stop", NULL);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    free(alice);
    e2e_cleanup(&s);
}
END_TEST

/* In a group shared with bob, bob stopping his own run is no stop of
 * alice's: her run completes and her status says so. */
START_TEST(test_bound_token_group_reason)
{
    e2e_server s;
    /* One worker: alice's run (first in the group, 200 cycles: long enough
     * not to end before the stop) runs, bob's waits. */
    const char *args[] = {"--workers", "1", NULL};
    e2e_start(&s, args, auth_env);
    create_agent(&s, "alice");
    create_agent(&s, "bob");
    wait_ready(&s, "alice");
    wait_ready(&s, "bob");
    char *alice = mint(&s, "{\"name\":\"a\",\"scopes\":[\"agents:read\"],\"agents\":[\"alice\"]}", NULL);
    char *bob = mint(&s, "{\"name\":\"b\",\"scopes\":[\"training\"],\"agents\":[\"bob\"]}", NULL);
    e2e_response r = admin(&s, "POST", "/api/v1/agents/start-training",
                           "{\"user_ids\":[\"alice\",\"bob\"],\"training_cycles\":200}");
    ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
    e2e_response_free(&r);
    r = as(&s, bob, "POST", "/api/v1/training/stop", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(e2e_json_str(r.json, "message"), "1 run cancelled"), "bob's stop: %s", r.body);
    e2e_response_free(&r);
    int active = 1;
    for (int i = 0; i < 300 && active; i++) {
        r = as(&s, alice, "GET", "/api/v1/training/status", NULL);
        ck_assert_int_eq(r.status, 200);
        active = cJSON_IsTrue(cJSON_GetObjectItem(r.json, "training_active"));
        if (!active) {
            ck_assert_msg(!strcmp(e2e_json_str(r.json, "completion_reason"), "completed"),
                          "alice's run was not stopped: %s", r.body);
            ck_assert(e2e_is_iso_utc(e2e_json_str(r.json, "end_time")));
        }
        e2e_response_free(&r);
        if (active) e2e_sleep_ms(50);
    }
    ck_assert_msg(!active, "alice's run did not end");
    /* The whole group, as the admin sees it, was stopped. */
    r = admin(&s, "GET", "/api/v1/training/status", NULL);
    ck_assert_str_eq(e2e_json_str(r.json, "completion_reason"), "stopped");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    free(alice);
    free(bob);
    e2e_cleanup(&s);
}
END_TEST

Suite *e2e_tokens_suite(void)
{
    Suite *s = suite_create("e2e_tokens");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_token_lifecycle);
    tcase_add_test(tc, test_token_expiry);
    tcase_add_test(tc, test_token_secret_never_leaks);
    tcase_add_test(tc, test_token_validation);
    tcase_add_test(tc, test_rotate_grants_no_more);
    tcase_add_test(tc, test_auth_answers);
    tcase_add_test(tc, test_auth_failures_coalesced);
    tcase_add_test(tc, test_auth_off);
    tcase_add_test(tc, test_isolation_matrix);
    tcase_add_test(tc, test_bound_token_group_routes);
    tcase_add_test(tc, test_bound_token_group_reason);
    suite_add_tcase(s, tc);
    return s;
}
