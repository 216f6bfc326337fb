/* agentctl deploy create|push|status|logs|list|remove (see deploy.h). */
#include "ctl/deploy.h"

#include "base/buf.h"
#include "ctl/args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))

/* ".../agents/<agent>/deployments[/<uuid>[/<tail>]]", segments escaped. */
static void deployments_path(ad_buf *b, const char *agent, const char *uuid, const char *tail)
{
    char *ea = ctl_client_escape(agent);
    ad_buf_printf(b, "/api/v1/agents/%s/deployments", ea);
    free(ea);
    if (uuid) {
        char *eu = ctl_client_escape(uuid);
        ad_buf_printf(b, "/%s", eu);
        free(eu);
    }
    if (tail) ad_buf_printf(b, "/%s", tail);
}

/* One line for a deployment object; returns 5 when it was rejected or failed. */
static int print_deployment(const ctl_session *s, const cJSON *d)
{
    const char *st = ctl_json_str(d, "status", "?");
    int bad = !strcmp(st, "rejected") || !strcmp(st, "failed");
    if (!s->json) {
        printf("deployment %s of %s: model %s, %s", ctl_json_str(d, "id", "?"),
               ctl_json_str(d, "agent", "?"), ctl_json_str(d, "model", "?"), st);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(d, "quality");
        if (cJSON_IsNumber(q)) printf(", quality %.3f", q->valuedouble);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "forced"))) printf(", forced");
        printf("\n");
        const char *reason = ctl_json_str(d, "reason", NULL);
        if (reason) printf("reason: %s\n", reason);
    }
    if (bad) fprintf(stderr, "agentctl %s: the deployment was %s\n", s->verb, st);
    return bad ? CTL_EXIT_FAILED : 0;
}

/* Sends one request and prints the deployment object it answers. */
static int one_deployment(ctl_session *s, const char *method, const char *path, const cJSON *body)
{
    ctl_reply r;
    int rc = ctl_session_call(s, method, path, body, &r);
    if (rc) return rc;
    if (s->json) ctl_session_print_json(&r);
    rc = print_deployment(s, r.json);
    ctl_reply_cleanup(&r);
    return rc;
}

int ctl_deploy_create(ctl_session *s, int argc, char **argv)
{
    ctl_opt o[] = {
        {.name = "--model", .takes_value = 1}, {.name = "--no-push"}, {.name = "--force"}};
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, o, NOPTS(o), 1, "AGENT", &a);
    const char *model = ctl_args_value(o, NOPTS(o), "--model");
    if (!rc && (!model || !*model))
        rc = ctl_session_usage(s, "--model is required: the model version to deploy (e.g. v2)");
    if (!rc) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "model", model);
        cJSON_AddBoolToObject(body, "push", ctl_args_opt(o, NOPTS(o), "--no-push")->count == 0);
        cJSON_AddBoolToObject(body, "force", ctl_args_opt(o, NOPTS(o), "--force")->count > 0);
        ad_buf path;
        ad_buf_init(&path);
        deployments_path(&path, a.pos[0], NULL, NULL);
        rc = one_deployment(s, "POST", path.data, body);
        ad_buf_cleanup(&path);
        cJSON_Delete(body);
    }
    ctl_args_cleanup(o, NOPTS(o));
    return rc;
}

int ctl_deploy_push(ctl_session *s, int argc, char **argv)
{
    ctl_opt o[] = {{.name = "--force"}};
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, o, NOPTS(o), 2, "AGENT and UUID", &a);
    if (!rc) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddBoolToObject(body, "force", o[0].count > 0);
        ad_buf path;
        ad_buf_init(&path);
        deployments_path(&path, a.pos[0], a.pos[1], "push");
        rc = one_deployment(s, "POST", path.data, body);
        ad_buf_cleanup(&path);
        cJSON_Delete(body);
    }
    ctl_args_cleanup(o, NOPTS(o));
    return rc;
}

int ctl_deploy_status(ctl_session *s, int argc, char **argv)
{
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, NULL, 0, 2, "AGENT and UUID", &a);
    if (rc) return rc;
    ad_buf path;
    ad_buf_init(&path);
    deployments_path(&path, a.pos[0], a.pos[1], NULL);
    ctl_reply r;
    rc = ctl_session_call(s, "GET", path.data, NULL, &r);
    if (!rc) {
        /* A status query that succeeds is exit 0 whatever the status is. */
        if (s->json) {
            ctl_session_print_json(&r);
        } else {
            const cJSON *d = r.json;
            printf("deployment %s of %s: model %s, %s\n", ctl_json_str(d, "id", "?"),
                   ctl_json_str(d, "agent", "?"), ctl_json_str(d, "model", "?"),
                   ctl_json_str(d, "status", "?"));
            const char *reason = ctl_json_str(d, "reason", NULL);
            if (reason) printf("reason: %s\n", reason);
            printf("created %s by %s; live since %s\n", ctl_json_str(d, "created_at", "?"),
                   ctl_json_str(d, "created_by", "?"), ctl_json_str(d, "live_at", "never"));
        }
        ctl_reply_cleanup(&r);
    }
    ad_buf_cleanup(&path);
    return rc;
}

int ctl_deploy_logs(ctl_session *s, int argc, char **argv)
{
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, NULL, 0, 2, "AGENT and UUID", &a);
    if (rc) return rc;
    ad_buf path;
    ad_buf_init(&path);
    deployments_path(&path, a.pos[0], a.pos[1], "logs");
    ctl_reply r;
    rc = ctl_session_call(s, "GET", path.data, NULL, &r);
    if (!rc) {
        if (s->json) {
            ctl_session_print_json(&r);
        } else {
            const cJSON *ev;
            cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(r.json, "events"))
            {
                printf("%s  %-13s %s\n", ctl_json_str(ev, "at", "?"),
                       ctl_json_str(ev, "event", "?"), ctl_json_str(ev, "message", ""));
            }
        }
        ctl_reply_cleanup(&r);
    }
    ad_buf_cleanup(&path);
    return rc;
}

int ctl_deploy_list(ctl_session *s, int argc, char **argv)
{
    ctl_opt o[] = {{.name = "--limit", .takes_value = 1}, {.name = "--cursor", .takes_value = 1}};
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, o, NOPTS(o), 1, "AGENT", &a);
    if (rc) {
        ctl_args_cleanup(o, NOPTS(o));
        return rc;
    }
    ad_buf path;
    ad_buf_init(&path);
    deployments_path(&path, a.pos[0], NULL, NULL);
    ctl_session_add_query(&path, o, NOPTS(o));
    ctl_reply r;
    rc = ctl_session_call(s, "GET", path.data, NULL, &r);
    if (!rc) {
        if (s->json) {
            ctl_session_print_json(&r);
        } else {
            printf("%-36s %-8s %-11s %-24s %s\n", "ID", "MODEL", "STATUS", "CREATED", "BY");
            const cJSON *d;
            cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(r.json, "deployments"))
            {
                printf("%-36s %-8s %-11s %-24s %s\n", ctl_json_str(d, "id", "?"),
                       ctl_json_str(d, "model", "?"), ctl_json_str(d, "status", "?"),
                       ctl_json_str(d, "created_at", "?"), ctl_json_str(d, "created_by", "?"));
            }
            const char *next = ctl_json_str(r.json, "next_cursor", NULL);
            if (next) printf("more: agentctl deploy list %s --cursor %s\n", a.pos[0], next);
        }
        ctl_reply_cleanup(&r);
    }
    ad_buf_cleanup(&path);
    ctl_args_cleanup(o, NOPTS(o));
    return rc;
}

int ctl_deploy_remove(ctl_session *s, int argc, char **argv)
{
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, NULL, 0, 2, "AGENT and UUID", &a);
    if (rc) return rc;
    ad_buf path;
    ad_buf_init(&path);
    deployments_path(&path, a.pos[0], a.pos[1], NULL);
    rc = one_deployment(s, "DELETE", path.data, NULL);
    ad_buf_cleanup(&path);
    return rc;
}
