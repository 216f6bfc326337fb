#include "handlers/auth.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "handlers/agents.h"
#include "handlers/secret.h"
#include "storage/audit.h"
#include "storage/db.h"
#include "storage/tokens.h"

/* last_used_at is written at most once a minute per token: only when the
 * row just read is a minute old (which holds across replicas and however
 * many tokens are in use), and then once per burst of concurrent requests
 * that all read the old value: a small table of when each token was last
 * recorded. Two tokens sharing a slot only cost an extra write; nothing here
 * decides whether a token is valid. */
#define AUTH_TOUCH_SLOTS 256
#define AUTH_TOUCH_EVERY_MS 60000
static struct {
    int64_t token_id, at;
} auth_touched[AUTH_TOUCH_SLOTS];
static pthread_mutex_t auth_touch_lock = PTHREAD_MUTEX_INITIALIZER;

/* Failed authentications: at most one audit row a second. */
#define AUTH_FAILURE_EVERY_MS 1000
static int64_t auth_failure_written;
static long auth_failure_pending;
static pthread_mutex_t auth_failure_lock = PTHREAD_MUTEX_INITIALIZER;

static int auth_touch_due(int64_t token_id, int64_t now)
{
    size_t slot = (size_t)token_id % AUTH_TOUCH_SLOTS;
    pthread_mutex_lock(&auth_touch_lock);
    int due = auth_touched[slot].token_id != token_id || now - auth_touched[slot].at >= AUTH_TOUCH_EVERY_MS;
    if (due) {
        auth_touched[slot].token_id = token_id;
        auth_touched[slot].at = now;
    }
    pthread_mutex_unlock(&auth_touch_lock);
    return due;
}

/* Fills the principal's agents from the stored JSON array. */
static int auth_read_agents(const char *json, ad_principal *out, ad_err *e)
{
    if (!json) {
        out->all_agents = 1;
        return 0;
    }
    cJSON *arr = cJSON_Parse(json);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return ad_err_set(e, AD_EINTERNAL, "a token's agents are not a JSON array");
    }
    size_t n = (size_t)cJSON_GetArraySize(arr);
    out->agents = ad_calloc(n ? n : 1, sizeof(*out->agents));
    const cJSON *item;
    cJSON_ArrayForEach(item, arr) {
        if (cJSON_IsString(item)) out->agents[out->nagents++] = ad_strdup(item->valuestring);
    }
    cJSON_Delete(arr);
    return 0;
}

int auth_token_principal(const char *token, ad_principal *out, ad_err *e)
{
    char prefix[TOKEN_PREFIX_LEN + 1];
    if (secret_parse(token, prefix) < 0) return ad_err_set(e, AD_EINVAL, "not a token");
    storage_conn *db = storage_conn_get();
    if (!db) return ad_err_set(e, AD_EUNAVAILABLE, "no database connection");
    /* A read snapshot left open on this thread's connection would show the
     * token as it was then, revoked or not: read it as it is now. */
    storage_snapshot_end(db);
    token_secret s;
    int rc = storage_tokens_find_secret(db, prefix, &s, e);
    if (rc == AD_ENOTFOUND) return ad_err_set(e, AD_EINVAL, "unknown token");
    if (rc < 0) return rc;
    unsigned char hash[TOKEN_HASH_LEN];
    secret_hash(token, hash);
    int64_t now = ad_clock_now_ms();
    /* Only a holder of the whole secret learns more than "unknown". */
    if (!secret_hash_equal(hash, s.hash)) rc = ad_err_set(e, AD_EINVAL, "unknown token");
    else if (s.token.revoked_at) rc = ad_err_set(e, AD_EINVAL, "revoked token");
    else if (s.token.expires_at && now >= s.token.expires_at) rc = ad_err_set(e, AD_EINVAL, "expired token");
    else if (s.valid_until && now >= s.valid_until) rc = ad_err_set(e, AD_EINVAL, "rotated-out secret");
    if (rc == 0) {
        memset(out, 0, sizeof(*out));
        out->kind = AD_CALLER_TOKEN;
        out->token_id = s.token.id;
        out->scopes = s.token.scopes;
        out->rate_limit_per_min = s.token.rate_limit_per_min;
        out->max_concurrent_inferences = s.token.max_concurrent_inferences;
        rc = auth_read_agents(s.token.agents, out, e);
        if (rc < 0) ad_principal_cleanup(out);
    }
    if (rc == 0 && now - s.token.last_used_at >= AUTH_TOUCH_EVERY_MS && auth_touch_due(s.token.id, now)) {
        ad_err te = {0};
        /* A busy database must not refuse the request: the next minute retries. */
        if (storage_tokens_touch(db, s.token.id, now, &te) < 0)
            ad_log(AD_LOG_WARN, "cannot record the use of token %lld: %s", (long long)s.token.id, te.msg);
    }
    token_row_cleanup(&s.token);
    return rc;
}

void auth_answer_storage(const ad_request *req, ad_response *res, int rc, const ad_err *e)
{
    if (rc == AD_EUNAVAILABLE) {
        agents_answer_storage((ad_request *)(uintptr_t)req, res, rc, NULL, e);
        return;
    }
    ad_log(AD_LOG_WARN, "request %s: cannot authenticate a token: %s", req->request_id ? req->request_id : "",
           e && e->msg[0] ? e->msg : ad_err_name(rc));
    ad_response_error(res, req, 503, "storage_unavailable",
                      "the database cannot authenticate the token right now; retry shortly");
    ad_response_header(res, "Retry-After", "1");
}

void auth_note_failure(const char *token, const char *reason, const char *request_id)
{
    int64_t now = ad_clock_now_ms();
    pthread_mutex_lock(&auth_failure_lock);
    long count = ++auth_failure_pending;
    int write = now - auth_failure_written >= AUTH_FAILURE_EVERY_MS;
    if (write) {
        auth_failure_written = now;
        auth_failure_pending = 0;
    }
    pthread_mutex_unlock(&auth_failure_lock);
    if (!write) return;
    char prefix[TOKEN_PREFIX_LEN + 1], target[TOKEN_PREFIX_LEN + 8];
    int has_prefix = token && secret_parse(token, prefix) == 0;
    if (has_prefix) snprintf(target, sizeof(target), "agd_%s", prefix);
    ad_buf d;
    ad_buf_init(&d);
    ad_buf_printf(&d, "{\"count\":%ld,\"reason\":", count);
    ad_buf_json_string(&d, reason, strlen(reason));
    ad_buf_putc(&d, '}');
    audit_entry a = {.actor = "anonymous", .action = "auth.failed", .target = has_prefix ? target : NULL,
                     .detail_json = d.data, .request_id = request_id};
    storage_conn *db = storage_conn_get();
    ad_err e = {0};
    if (!db || storage_audit_add(db, &a, &e) < 0)
        ad_log(AD_LOG_WARN, "request %s: cannot audit a failed authentication: %s", request_id,
               db ? e.msg : "no database");
    ad_buf_cleanup(&d);
}

int auth_check_scope(const ad_request *req, unsigned scope, ad_response *res)
{
    if (ad_principal_has(req->who, scope)) return 0;
    const char *name = ad_scope_name(scope);
    ad_response_error(res, req, 403, "insufficient_scope", "this token lacks the '%s' scope", name);
    char header[96];
    snprintf(header, sizeof(header), "Bearer error=\"insufficient_scope\", scope=\"%s\"", name);
    ad_response_header(res, "WWW-Authenticate", header);
    return -1;
}

int auth_check_agent(const ad_request *req, const char *pattern, ad_response *res)
{
    static const char agent_routes[] = "/api/v1/agents/{id}";
    if (strncmp(pattern, agent_routes, sizeof(agent_routes) - 1) != 0 || req->nparams == 0) return 0;
    const char *id = req->params[0];
    /* An id that is no valid user_id gets the handler's own 400, as for any caller. */
    if (ad_principal_sees(req->who, id) || agents_check_user_id(id, NULL) < 0) return 0;
    ad_err e = {0};
    ad_err_set(&e, AD_ENOTFOUND, "no agent with user_id '%s'", id);
    agents_answer_storage((ad_request *)(uintptr_t)req, res, AD_ENOTFOUND, id, &e);
    return -1;
}

char *auth_agents_json(const ad_principal *p)
{
    if (p->all_agents) return NULL;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < p->nagents; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(p->agents[i]));
    char *s = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return s;
}

void auth_audit_entry(const ad_request *req, const char *action, const char *target, const char *detail_json,
                      char *who, size_t who_cap, audit_entry *out)
{
    *out = (audit_entry){.actor = ad_principal_label(req->who, who, who_cap), .action = action,
                         .target = target, .detail_json = detail_json, .request_id = req->request_id};
}
