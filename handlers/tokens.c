#include "handlers/tokens.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/mem.h"
#include "handlers/agents.h"
#include "handlers/auth.h"
#include "handlers/secret.h"
#include "storage/tokens.h"

#define TOKEN_NAME_MAX 64
#define TOKEN_AGENTS_MAX 1000
#define TOKEN_EXPIRES_MAX_S 315360000LL /* ten years */
#define TOKEN_RATE_MAX 1000000
#define TOKEN_CONCURRENCY_MAX 10000
#define TOKEN_GRACE_MAX_S 2592000LL     /* thirty days */
/* Draws of a fresh prefix before giving up: 12 characters of 36 collide
 * with odds near 1 in 4.7e18 per existing token. */
#define TOKEN_MINT_TRIES 3

int tokens_auth_disabled(ad_request *req, ad_response *res)
{
    if (req->app->cfg->api_key) return 0;
    ad_response_error(res, req, 409, "auth_disabled",
                      "authentication is off (no AGENTD_API_KEY): there are no tokens or audit log");
    return 1;
}

int tokens_read_page(ad_request *req, ad_response *res, int *limit, int64_t *before)
{
    const char *limit_s = ad_request_query(req, "limit");
    const char *cursor = ad_request_query(req, "cursor");
    *limit = TOKENS_LIST_DEFAULT;
    *before = 0;
    if (limit_s) {
        char *end;
        long n = strtol(limit_s, &end, 10);
        if (!*limit_s || *end || n < 1 || n > TOKENS_LIST_MAX) {
            ad_response_error(res, req, 400, "invalid_limit", "limit must be an integer from 1 to %d",
                              TOKENS_LIST_MAX);
            return -1;
        }
        *limit = (int)n;
    }
    if (cursor && *cursor) {
        char *end;
        long long n = strtoll(cursor, &end, 10);
        if (*end || n < 1 || cursor[0] == '+' || cursor[0] == ' ') {
            ad_response_error(res, req, 400, "invalid_cursor", "cursor is not one this server returned");
            return -1;
        }
        *before = n;
    }
    return 0;
}

void tokens_answer_page(ad_response *res, const char *key, cJSON *list, int count, int more, int64_t last)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, key, list);
    ad_json_add_int(o, "count", count);
    if (more) {
        char cursor[24];
        snprintf(cursor, sizeof(cursor), "%lld", (long long)last);
        cJSON_AddStringToObject(o, "next_cursor", cursor);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    ad_response_json(res, 200, o);
}

/* The token object every route answers with; never a secret. */
static cJSON *tokens_json(const token_row *t)
{
    cJSON *o = cJSON_CreateObject();
    ad_json_add_int(o, "id", t->id);
    cJSON_AddStringToObject(o, "name", t->name ? t->name : "");
    char prefix[TOKEN_PREFIX_LEN + 8];
    snprintf(prefix, sizeof(prefix), "agd_%s", t->prefix);
    cJSON_AddStringToObject(o, "prefix", prefix);
    cJSON *scopes = cJSON_AddArrayToObject(o, "scopes");
    for (unsigned bit = 1; bit <= AD_SCOPE_LAST; bit <<= 1)
        if (t->scopes & bit) cJSON_AddItemToArray(scopes, cJSON_CreateString(ad_scope_name(bit)));
    cJSON *agents = t->agents ? cJSON_Parse(t->agents) : NULL;
    if (cJSON_IsArray(agents)) {
        cJSON_AddItemToObject(o, "agents", agents);
    } else {
        cJSON_Delete(agents);
        cJSON_AddStringToObject(o, "agents", "*");
    }
    ad_json_add_time(o, "created_at", t->created_at);
    ad_json_add_time(o, "expires_at", t->expires_at);
    if (t->rate_limit_per_min) ad_json_add_int(o, "rate_limit_per_min", t->rate_limit_per_min);
    else cJSON_AddNullToObject(o, "rate_limit_per_min");
    if (t->max_concurrent_inferences) ad_json_add_int(o, "max_concurrent_inferences", t->max_concurrent_inferences);
    else cJSON_AddNullToObject(o, "max_concurrent_inferences");
    ad_json_add_time(o, "last_used_at", t->last_used_at);
    cJSON_AddBoolToObject(o, "revoked", t->revoked_at > 0);
    ad_json_add_time(o, "revoked_at", t->revoked_at);
    cJSON_AddStringToObject(o, "created_by", t->created_by ? t->created_by : "");
    return o;
}

/* Reads `scopes`: a non-empty array of known scope names. */
static int tokens_read_scopes(const cJSON *body, unsigned *out, ad_err *e)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "scopes");
    static const char known[] = "agents:read, agents:write, inference, training, deploy, admin, metrics";
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return ad_err_set(e, AD_EINVAL, "scopes must be a non-empty array of scopes (%s)", known);
    *out = 0;
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, arr) {
        if (!cJSON_IsString(item)) return ad_err_set(e, AD_EINVAL, "scopes[%d] must be a string", i);
        unsigned bit = ad_scope_from_name(item->valuestring);
        if (!bit)
            return ad_err_set(e, AD_EINVAL, "scopes[%d]: '%.64s' is not a scope (known: %s)", i,
                              item->valuestring, known);
        *out |= bit;
        i++;
    }
    return 0;
}

/* Reads `agents`: "*" (*out = NULL) or 1-1000 valid user_ids (*out: their
 * JSON array, malloc'ed). */
static int tokens_read_agents(const cJSON *body, char **out, ad_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "agents");
    *out = NULL;
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "*")) return 0;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0 || cJSON_GetArraySize(v) > TOKEN_AGENTS_MAX)
        return ad_err_set(e, AD_EINVAL, "agents must be \"*\" or an array of 1 to %d user_ids",
                          TOKEN_AGENTS_MAX);
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, v) {
        ad_err why = {0};
        if (!cJSON_IsString(item)) return ad_err_set(e, AD_EINVAL, "agents[%d] must be a user_id string", i);
        if (agents_check_user_id(item->valuestring, &why) < 0)
            return ad_err_set(e, AD_EINVAL, "agents[%d]: %s", i, why.msg);
        i++;
    }
    *out = cJSON_PrintUnformatted(v);
    return 0;
}

/* A token that mints tokens, or rotates one (and so learns its new secret),
 * reaches no more than it holds: its scopes, its agents. `verb` says which
 * ("grant", "rotate"). Answers 403 and returns -1 otherwise. */
static int tokens_within_creator(ad_request *req, ad_response *res, unsigned scopes, const char *agents,
                                 const char *verb)
{
    const ad_principal *who = req->who;
    const char *what = strcmp(verb, "grant") ? "a token holding it" : "it";
    for (unsigned bit = 1; bit <= AD_SCOPE_LAST; bit <<= 1)
        if ((scopes & bit) && !ad_principal_has(who, bit)) {
            ad_response_error(res, req, 403, "insufficient_scope",
                              "this token lacks the '%s' scope, so it cannot %s %s", ad_scope_name(bit),
                              verb, what);
            return -1;
        }
    if (who->all_agents) return 0;
    cJSON *list = agents ? cJSON_Parse(agents) : NULL;
    const cJSON *item;
    const char *outside = agents ? NULL : "*";
    cJSON_ArrayForEach(item, list) {
        if (!outside && !ad_principal_sees(who, item->valuestring)) outside = item->valuestring;
    }
    if (outside)
        ad_response_error(res, req, 403, "agent_not_permitted",
                          "agent '%s' is outside this token's agents, so it cannot %s %s", outside, verb, what);
    cJSON_Delete(list);
    return outside ? -1 : 0;
}

/* Reads an optional positive integer field; 0 when absent. */
static int tokens_read_limit(ad_request *req, ad_response *res, const char *key, long long max, long long *out)
{
    ad_err e = {0};
    *out = 0;
    int rc = ad_json_int(req->json, key, 0, 1, max, out, &e);
    if (rc == AD_ENOTFOUND) {
        *out = 0;
        return 0;
    }
    if (rc == 0) return 0;
    char code[64];
    snprintf(code, sizeof(code), "invalid_%s", key);
    /* The code is one of a few fixed field names: safe to hand over. */
    ad_response_error(res, req, 400, code, "%s must be an integer from 1 to %lld", key, max);
    return -1;
}

/* Answers a token that could not be read or written. */
static void tokens_answer_storage(ad_request *req, ad_response *res, int rc, int64_t id, const ad_err *e)
{
    if (rc == AD_ENOTFOUND)
        ad_response_error(res, req, 404, "token_not_found", "no token with id %lld", (long long)id);
    else if (rc == AD_ESTATE)
        ad_response_error(res, req, 409, "token_revoked", "token %lld is revoked; create a new one",
                          (long long)id);
    else
        agents_answer_storage(req, res, rc, NULL, e);
}

/* Reads the token and answers `status` with it, plus `secret` when given. */
static void tokens_answer(ad_request *req, ad_response *res, storage_conn *db, int64_t id, int status,
                          const char *secret, int64_t previous_valid_until, int rotated)
{
    ad_err e = {0};
    token_row t;
    int rc = storage_tokens_get(db, id, &t, &e);
    if (rc < 0) {
        tokens_answer_storage(req, res, rc, id, &e);
        return;
    }
    cJSON *o = tokens_json(&t);
    token_row_cleanup(&t);
    if (secret) cJSON_AddStringToObject(o, "token", secret);
    if (rotated) ad_json_add_time(o, "previous_valid_until", previous_valid_until);
    if (status == 201) {
        char location[64];
        snprintf(location, sizeof(location), "/api/v1/tokens/%lld", (long long)id);
        ad_response_header(res, "Location", location);
    }
    ad_response_json(res, status, o);
}

void handle_tokens_create(ad_request *req, ad_response *res)
{
    if (tokens_auth_disabled(req, res)) return;
    const cJSON *body = req->json;
    ad_err e = {0};
    if (!body) {
        ad_response_error(res, req, 400, "invalid_body",
                          "request body must be a JSON object with name, scopes and agents");
        return;
    }
    const char *name;
    if (ad_json_string(body, "name", 1, TOKEN_NAME_MAX, &name, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_name", "%s (1 to %d printable characters)", e.msg,
                          TOKEN_NAME_MAX);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            ad_response_error(res, req, 400, "invalid_name", "name must not contain control characters");
            return;
        }
    unsigned scopes = 0;
    if (tokens_read_scopes(body, &scopes, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_scopes", "%s", e.msg);
        return;
    }
    char *agents = NULL;
    if (tokens_read_agents(body, &agents, &e) < 0) {
        ad_response_error(res, req, 400, "invalid_agents", "%s", e.msg);
        return;
    }
    /* admin reaches every agent (delete-all, the audit log, other tokens)
     * and the metrics series count every agent: a token bound to a list
     * holds neither. */
    unsigned global = scopes & (AD_SCOPE_ADMIN | AD_SCOPE_METRICS);
    if (global && agents) {
        free(agents);
        ad_response_error(res, req, 400, "invalid_scopes", "the %s scope needs agents \"*\"",
                          ad_scope_name(global & AD_SCOPE_ADMIN ? AD_SCOPE_ADMIN : AD_SCOPE_METRICS));
        return;
    }
    if (tokens_within_creator(req, res, scopes, agents, "grant") < 0) {
        free(agents);
        return;
    }
    long long expires_in, rate, concurrency;
    if (tokens_read_limit(req, res, "expires_in_s", TOKEN_EXPIRES_MAX_S, &expires_in) < 0 ||
        tokens_read_limit(req, res, "rate_limit_per_min", TOKEN_RATE_MAX, &rate) < 0 ||
        tokens_read_limit(req, res, "max_concurrent_inferences", TOKEN_CONCURRENCY_MAX, &concurrency) < 0) {
        free(agents);
        return;
    }
    storage_conn *db = agents_db(req, res);
    if (!db) {
        free(agents);
        return;
    }
    char who[48];
    token_new t = {
        .name = name,
        .scopes = scopes,
        .agents = agents,
        .expires_at = expires_in ? ad_clock_now_ms() + expires_in * 1000 : 0,
        .rate_limit_per_min = (int)rate,
        .max_concurrent_inferences = (int)concurrency,
        .created_by = ad_principal_label(req->who, who, sizeof(who)),
    };
    /* What the token may do, for the audit row: the token object's fields. */
    token_row shown = {.name = (char *)(uintptr_t)name, .scopes = scopes, .agents = agents,
                       .rate_limit_per_min = (int)rate, .max_concurrent_inferences = (int)concurrency};
    cJSON *d = tokens_json(&shown);
    cJSON *keep = cJSON_CreateObject();
    const char *fields[] = {"name", "scopes", "agents", "rate_limit_per_min", "max_concurrent_inferences"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        cJSON_AddItemToObject(keep, fields[i], cJSON_DetachItemFromObjectCaseSensitive(d, fields[i]));
    cJSON_Delete(d);
    char *detail = cJSON_PrintUnformatted(keep);
    cJSON_Delete(keep);
    audit_entry a = {.actor = who, .action = "token.created", .detail_json = detail,
                     .request_id = req->request_id};
    char secret[SECRET_TEXT_LEN + 1], prefix[TOKEN_PREFIX_LEN + 1];
    unsigned char hash[TOKEN_HASH_LEN];
    int64_t id = 0;
    int rc = AD_EEXIST;
    for (int i = 0; i < TOKEN_MINT_TRIES && rc == AD_EEXIST; i++) {
        rc = secret_mint(secret, prefix, &e);
        if (rc == 0) {
            secret_hash(secret, hash);
            rc = storage_tokens_create(db, &t, prefix, hash, &a, &id, &e);
        }
    }
    free(detail);
    free(agents);
    if (rc < 0) agents_answer_storage(req, res, rc, NULL, &e);
    else tokens_answer(req, res, db, id, 201, secret, 0, 0);
    OPENSSL_cleanse(secret, sizeof(secret));
}

typedef struct tokens_page {
    cJSON *list;
    int64_t last;
    int count;
} tokens_page;

static void tokens_list_visit(void *ud, const token_row *t)
{
    tokens_page *p = ud;
    cJSON_AddItemToArray(p->list, tokens_json(t));
    p->last = t->id;
    p->count++;
}

void handle_tokens_list(ad_request *req, ad_response *res)
{
    if (tokens_auth_disabled(req, res)) return;
    int limit;
    int64_t before;
    if (tokens_read_page(req, res, &limit, &before) < 0) return;
    storage_conn *db = agents_db(req, res);
    if (!db) return;
    tokens_page p = {.list = cJSON_CreateArray()};
    int more = 0;
    ad_err e = {0};
    int rc = storage_tokens_list(db, before, limit, tokens_list_visit, &p, &more, &e);
    if (rc < 0) {
        cJSON_Delete(p.list);
        agents_answer_storage(req, res, rc, NULL, &e);
        return;
    }
    tokens_answer_page(res, "tokens", p.list, p.count, more, p.last);
}

/* The token id of the path: a positive integer, else 404 like an unknown one. */
static int tokens_path_id(ad_request *req, ad_response *res, int64_t *id)
{
    const char *s = req->params[0];
    char *end;
    long long n = strtoll(s, &end, 10);
    if (*s < '1' || *s > '9' || *end || n < 1) {
        ad_response_error(res, req, 404, "token_not_found", "no token with id '%.32s'", s);
        return -1;
    }
    *id = n;
    return 0;
}

void handle_token_get(ad_request *req, ad_response *res)
{
    if (tokens_auth_disabled(req, res)) return;
    int64_t id;
    if (tokens_path_id(req, res, &id) < 0) return;
    storage_conn *db = agents_db(req, res);
    if (db) tokens_answer(req, res, db, id, 200, NULL, 0, 0);
}

void handle_token_revoke(ad_request *req, ad_response *res)
{
    if (tokens_auth_disabled(req, res)) return;
    int64_t id;
    if (tokens_path_id(req, res, &id) < 0) return;
    storage_conn *db = agents_db(req, res);
    if (!db) return;
    char who[48];
    audit_entry a = {.actor = ad_principal_label(req->who, who, sizeof(who)), .action = "token.revoked",
                     .request_id = req->request_id};
    ad_err e = {0};
    int was_revoked = 0;
    int rc = storage_tokens_revoke(db, id, &a, &was_revoked, &e);
    if (rc < 0) tokens_answer_storage(req, res, rc, id, &e);
    else tokens_answer(req, res, db, id, 200, NULL, 0, 0);
}

void handle_token_rotate(ad_request *req, ad_response *res)
{
    if (tokens_auth_disabled(req, res)) return;
    int64_t id;
    if (tokens_path_id(req, res, &id) < 0) return;
    ad_err e = {0};
    long long grace = 0;
    int rc = req->json ? ad_json_int(req->json, "grace_s", 0, 0, TOKEN_GRACE_MAX_S, &grace, &e) : AD_ENOTFOUND;
    if (rc == AD_ENOTFOUND) {
        grace = 0;
    } else if (rc < 0) {
        ad_response_error(res, req, 400, "invalid_grace_s", "grace_s must be an integer from 0 to %lld",
                          TOKEN_GRACE_MAX_S);
        return;
    }
    storage_conn *db = agents_db(req, res);
    if (!db) return;
    /* The new secret goes to the caller: a token holding the admin scope
     * but not, say, deploy must not rotate a deploy token into its hands.
     * Scopes and agents never change after creation, so reading them first
     * is enough. */
    if (req->who->kind == AD_CALLER_TOKEN) {
        token_row t;
        rc = storage_tokens_get(db, id, &t, &e);
        if (rc < 0) {
            tokens_answer_storage(req, res, rc, id, &e);
            return;
        }
        rc = tokens_within_creator(req, res, t.scopes, t.agents, "rotate");
        token_row_cleanup(&t);
        if (rc < 0) return;
    }
    char who[48], detail[48];
    snprintf(detail, sizeof(detail), "{\"grace_s\":%lld}", grace);
    audit_entry a = {.actor = ad_principal_label(req->who, who, sizeof(who)), .action = "token.rotated",
                     .detail_json = detail, .request_id = req->request_id};
    char secret[SECRET_TEXT_LEN + 1], prefix[TOKEN_PREFIX_LEN + 1];
    unsigned char hash[TOKEN_HASH_LEN];
    int64_t until = ad_clock_now_ms() + grace * 1000;
    rc = AD_EEXIST;
    for (int i = 0; i < TOKEN_MINT_TRIES && rc == AD_EEXIST; i++) {
        rc = secret_mint(secret, prefix, &e);
        if (rc == 0) {
            secret_hash(secret, hash);
            rc = storage_tokens_rotate(db, id, prefix, hash, until, &a, &e);
        }
    }
    if (rc < 0) tokens_answer_storage(req, res, rc, id, &e);
    else tokens_answer(req, res, db, id, 200, secret, grace ? until : 0, 1);
    OPENSSL_cleanse(secret, sizeof(secret));
}
