/* agentctl tokens create|list|revoke|rotate (see tokens.h). */
#include "ctl/tokens.h"

#include "base/buf.h"
#include "ctl/args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))

static const char *const SCOPES[] = {"agents:read", "agents:write", "inference", "training",
                                     "deploy",      "admin",        "metrics"};

static int known_scope(const char *s)
{
    for (size_t i = 0; i < sizeof(SCOPES) / sizeof(SCOPES[0]); i++)
        if (!strcmp(s, SCOPES[i])) return 1;
    return 0;
}

/* "a, b" from a JSON array of strings, or "*" for the string "*". */
static void print_list(const char *label, const cJSON *v)
{
    printf("%s: ", label);
    if (cJSON_IsString(v)) {
        printf("%s\n", v->valuestring);
        return;
    }
    const cJSON *it;
    int first = 1;
    cJSON_ArrayForEach(it, v)
    {
        printf("%s%s", first ? "" : ", ", cJSON_IsString(it) ? it->valuestring : "?");
        first = 0;
    }
    printf("\n");
}

/* The human view of a token object; the secret, when there is one, last
 * and alone on its line so that `| tail -n 1` picks it. */
static void print_token(const cJSON *t)
{
    printf("token %d %s (%s)\n", (int)ctl_json_num(t, "id", 0), ctl_json_str(t, "name", "?"),
           ctl_json_str(t, "prefix", "?"));
    print_list("scopes", cJSON_GetObjectItemCaseSensitive(t, "scopes"));
    print_list("agents", cJSON_GetObjectItemCaseSensitive(t, "agents"));
    printf("expires: %s\n", ctl_json_str(t, "expires_at", "never"));
    const char *prev = ctl_json_str(t, "previous_valid_until", NULL);
    if (prev) printf("the previous secret works until %s\n", prev);
    const char *secret = ctl_json_str(t, "token", NULL);
    if (secret) printf("secret (shown only this once):\n%s\n", secret);
}

static int token_id_arg(ctl_session *s, const ctl_args *a, long long *id)
{
    if (a->npos != 1)
        return ctl_session_usage(s, "expected one token ID, got %d argument(s)", a->npos);
    if (ctl_args_integer(a->pos[0], 1, 1LL << 53, id) < 0)
        return ctl_session_usage(
            s, "ID must be a positive integer (a token id from 'agentctl tokens list'), got '%s'",
            a->pos[0]);
    return 0;
}

int ctl_tokens_create(ctl_session *s, int argc, char **argv)
{
    ctl_opt o[] = {{.name = "--name", .takes_value = 1},
                   {.name = "--scope", .takes_value = 1},
                   {.name = "--agent", .takes_value = 1},
                   {.name = "--all-agents"},
                   {.name = "--expires-in", .takes_value = 1}};
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, o, NOPTS(o), 0, NULL, &a);
    if (rc) return rc;
    const char *name = ctl_args_value(o, NOPTS(o), "--name");
    ctl_opt *scope = ctl_args_opt(o, NOPTS(o), "--scope");
    ctl_opt *agent = ctl_args_opt(o, NOPTS(o), "--agent");
    int all = ctl_args_opt(o, NOPTS(o), "--all-agents")->count > 0;
    const char *exp_s = ctl_args_value(o, NOPTS(o), "--expires-in");
    long long expires = 0;
    if (!name || !*name)
        rc = ctl_session_usage(s, "--name is required: what the token is for");
    else if (!scope->count)
        rc = ctl_session_usage(
            s, "--scope is required (repeat it for several): agents:read, agents:write, "
               "inference, training, deploy, admin or metrics");
    else if (!!agent->count == all)
        rc = ctl_session_usage(
            s, "give --agent ID (repeatable) or --all-agents, not both and not neither");
    else if (exp_s && ctl_args_integer(exp_s, 1, 1LL << 40, &expires) < 0)
        rc = ctl_session_usage(s, "--expires-in must be a positive number of seconds, got '%s'",
                               exp_s);
    for (int i = 0; !rc && i < scope->count; i++)
        if (!known_scope(scope->values[i]))
            rc = ctl_session_usage(
                s,
                "--scope must be agents:read, agents:write, inference, training, deploy, "
                "admin or metrics, got '%s'",
                scope->values[i]);
    if (rc) {
        ctl_args_cleanup(o, NOPTS(o));
        return rc;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "name", name);
    cJSON_AddItemToObject(body, "scopes", cJSON_CreateStringArray(scope->values, scope->count));
    if (all)
        cJSON_AddStringToObject(body, "agents", "*");
    else
        cJSON_AddItemToObject(body, "agents", cJSON_CreateStringArray(agent->values, agent->count));
    if (expires) cJSON_AddNumberToObject(body, "expires_in_s", (double)expires);
    ctl_reply r;
    rc = ctl_session_call(s, "POST", "/api/v1/tokens", body, &r);
    if (!rc) {
        if (s->json)
            ctl_session_print_json(&r);
        else
            print_token(r.json);
        ctl_reply_cleanup(&r);
    }
    cJSON_Delete(body);
    ctl_args_cleanup(o, NOPTS(o));
    return rc;
}

int ctl_tokens_list(ctl_session *s, int argc, char **argv)
{
    ctl_opt o[] = {{.name = "--limit", .takes_value = 1}, {.name = "--cursor", .takes_value = 1}};
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, o, NOPTS(o), 0, NULL, &a);
    if (rc) return rc;
    ad_buf path;
    ad_buf_init(&path);
    ad_buf_puts(&path, "/api/v1/tokens");
    ctl_session_add_query(&path, o, NOPTS(o));
    ctl_reply r;
    rc = ctl_session_call(s, "GET", path.data, NULL, &r);
    if (!rc) {
        if (s->json) {
            ctl_session_print_json(&r);
        } else {
            printf("%-5s %-20s %-17s %-8s %-24s %s\n", "ID", "NAME", "PREFIX", "REVOKED", "EXPIRES",
                   "LAST USED");
            const cJSON *t;
            cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(r.json, "tokens"))
            {
                printf("%-5d %-20s %-17s %-8s %-24s %s\n", (int)ctl_json_num(t, "id", 0),
                       ctl_json_str(t, "name", "?"), ctl_json_str(t, "prefix", "?"),
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "revoked")) ? "yes" : "no",
                       ctl_json_str(t, "expires_at", "never"),
                       ctl_json_str(t, "last_used_at", "never"));
            }
            const char *next = ctl_json_str(r.json, "next_cursor", NULL);
            if (next) printf("more: agentctl tokens list --cursor %s\n", next);
        }
        ctl_reply_cleanup(&r);
    }
    ad_buf_cleanup(&path);
    ctl_args_cleanup(o, NOPTS(o));
    return rc;
}

int ctl_tokens_revoke(ctl_session *s, int argc, char **argv)
{
    ctl_args a;
    long long id = 0;
    int rc = ctl_session_parse(s, argc, argv, NULL, 0, -1, NULL, &a);
    if (!rc) rc = token_id_arg(s, &a, &id);
    if (rc) return rc;
    ad_buf path;
    ad_buf_init(&path);
    ad_buf_printf(&path, "/api/v1/tokens/%lld", id);
    ctl_reply r;
    rc = ctl_session_call(s, "DELETE", path.data, NULL, &r);
    if (!rc) {
        if (s->json)
            ctl_session_print_json(&r);
        else
            printf("revoked token %lld (%s)\n", id, ctl_json_str(r.json, "name", "?"));
        ctl_reply_cleanup(&r);
    }
    ad_buf_cleanup(&path);
    return rc;
}

int ctl_tokens_rotate(ctl_session *s, int argc, char **argv)
{
    ctl_opt o[] = {{.name = "--grace", .takes_value = 1}};
    ctl_args a;
    long long id = 0, grace = 0;
    int rc = ctl_session_parse(s, argc, argv, o, NOPTS(o), -1, NULL, &a);
    if (!rc) rc = token_id_arg(s, &a, &id);
    const char *grace_s = ctl_args_value(o, NOPTS(o), "--grace");
    if (!rc && grace_s && ctl_args_integer(grace_s, 0, 1LL << 40, &grace) < 0)
        rc = ctl_session_usage(s, "--grace must be a number of seconds (0 or more), got '%s'",
                               grace_s);
    if (rc) {
        ctl_args_cleanup(o, NOPTS(o));
        return rc;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "grace_s", (double)grace);
    ad_buf path;
    ad_buf_init(&path);
    ad_buf_printf(&path, "/api/v1/tokens/%lld/rotate", id);
    ctl_reply r;
    rc = ctl_session_call(s, "POST", path.data, body, &r);
    if (!rc) {
        if (s->json)
            ctl_session_print_json(&r);
        else
            print_token(r.json);
        ctl_reply_cleanup(&r);
    }
    cJSON_Delete(body);
    ad_buf_cleanup(&path);
    ctl_args_cleanup(o, NOPTS(o));
    return rc;
}
