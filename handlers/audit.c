#include "handlers/audit.h"

#include <string.h>

#include "base/json.h"
#include "handlers/agents.h"
#include "handlers/tokens.h"
#include "storage/audit.h"

#define AUDIT_ACTION_MAX 64

typedef struct audit_page {
    cJSON *list;
    int64_t last;
    int count;
} audit_page;

static void audit_visit(void *ud, const audit_row *r)
{
    audit_page *p = ud;
    cJSON *o = cJSON_CreateObject();
    ad_json_add_int(o, "id", r->id);
    ad_json_add_time(o, "at", r->at);
    cJSON_AddStringToObject(o, "actor", r->actor ? r->actor : "");
    cJSON_AddStringToObject(o, "action", r->action ? r->action : "");
    ad_json_add_str(o, "target", r->target);
    ad_json_add_raw(o, "detail", r->detail);
    ad_json_add_str(o, "request_id", r->request_id);
    cJSON_AddItemToArray(p->list, o);
    p->last = r->id;
    p->count++;
}

/* An action filter is a dotted lower-case name ("token.created"). */
static int audit_action_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > AUDIT_ACTION_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '.' || s[i] == '_')) return 0;
    return 1;
}

void handle_audit_list(ad_request *req, ad_response *res)
{
    if (tokens_auth_disabled(req, res)) return;
    int limit;
    int64_t before;
    if (tokens_read_page(req, res, &limit, &before) < 0) return;
    const char *action = ad_request_query(req, "action");
    if (action && !*action) action = NULL;
    if (action && !audit_action_valid(action)) {
        ad_response_error(res, req, 400, "invalid_action",
                          "action must be an audit action such as token.created (lower-case letters, '.', '_')");
        return;
    }
    storage_conn *db = agents_db(req, res);
    if (!db) return;
    audit_page p = {.list = cJSON_CreateArray()};
    int more = 0;
    ad_err e = {0};
    int rc = storage_audit_list(db, action, before, limit, audit_visit, &p, &more, &e);
    if (rc < 0) {
        cJSON_Delete(p.list);
        agents_answer_storage(req, res, rc, NULL, &e);
        return;
    }
    tokens_answer_page(res, "entries", p.list, p.count, more, p.last);
}
