/* agentctl agents create|list|status|delete (see agents.h). */
#include "ctl/agents.h"

#include "base/buf.h"
#include "base/mem.h"
#include "ctl/args.h"
#include "ctl/progress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))
#define POLL_MS 200

/* A file's whole content ("-" is stdin), NUL-terminated; NULL with errno. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    ad_buf b;
    ad_buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ad_buf_append(&b, chunk, n);
    int failed = ferror(f);
    if (f != stdin) fclose(f);
    if (failed) {
        ad_buf_cleanup(&b);
        errno = EIO;
        return NULL;
    }
    if (!b.data) ad_buf_puts(&b, "");
    return ad_buf_steal(&b, len);
}

/* The dataset file as the API's `dataset` array: a file may hold the array
 * itself or a dataset object {description?, training_data: [...]} (the shape
 * of tests/data/), whose description is used unless --description is given. */
static int load_dataset(ctl_session *s, const char *path, cJSON **array, char **description)
{
    size_t len = 0;
    char *text = slurp(path, &len);
    if (!text) return ctl_session_usage(s, "cannot read --dataset %s: %s", path, strerror(errno));
    cJSON *doc = cJSON_ParseWithLength(text, len);
    free(text);
    if (!doc) return ctl_session_usage(s, "--dataset %s is not valid JSON", path);
    cJSON *arr = doc;
    if (cJSON_IsObject(doc)) {
        const char *d = ctl_json_str(doc, "description", NULL);
        if (d) *description = ad_strdup(d);
        arr = cJSON_DetachItemFromObjectCaseSensitive(doc, "training_data");
        cJSON_Delete(doc);
    }
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return ctl_session_usage(
            s,
            "--dataset %s must hold an array of {prompt, answer} pairs or an object "
            "with one in training_data",
            path);
    }
    *array = arr;
    return 0;
}

/* Polls GET .../status until ready or error, showing stage and percentage;
 * returns the exit code, and with --json prints the last status document. */
static int wait_ready(ctl_session *s, const char *esc_id, const char *id)
{
    ctl_progress p;
    ctl_progress_init(&p, s->tty, s->json);
    ad_buf path;
    ad_buf_init(&path);
    ad_buf_printf(&path, "/api/v1/agents/%s/status", esc_id);
    int rc;
    for (;;) {
        ctl_reply r;
        rc = ctl_session_call(s, "GET", path.data, NULL, &r);
        if (rc) break;
        const char *st = ctl_json_str(r.json, "status", "");
        const char *stage = ctl_json_str(r.json, "stage", NULL);
        int pct = (int)ctl_json_num(r.json, "progress", 0);
        if (!strcmp(st, "ready") || !strcmp(st, "error")) {
            if (!strcmp(st, "ready")) ctl_progress_update(&p, id, 100, "ready");
            ctl_progress_finish(&p);
            if (s->json) {
                ctl_session_print_json(&r);
            } else if (!strcmp(st, "ready")) {
                printf("agent %s is ready\n", id);
            }
            if (!strcmp(st, "error")) {
                fprintf(stderr, "agentctl %s: agent %s ended in error: %s\n", s->verb, id,
                        ctl_json_str(r.json, "error", "no reason given"));
                rc = CTL_EXIT_FAILED;
            }
            ctl_reply_cleanup(&r);
            break;
        }
        ctl_progress_update(&p, id, pct, stage ? stage : st);
        ctl_reply_cleanup(&r);
        ctl_session_sleep_ms(POLL_MS);
    }
    ctl_progress_finish(&p);
    ad_buf_cleanup(&path);
    return rc;
}

int ctl_agents_create(ctl_session *s, int argc, char **argv)
{
    ctl_opt o[] = {{.name = "--text", .takes_value = 1},
                   {.name = "--dataset", .takes_value = 1},
                   {.name = "--description", .takes_value = 1},
                   {.name = "--language", .takes_value = 1},
                   {.name = "--wait"}};
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, o, NOPTS(o), 1, "one agent id", &a);
    if (rc) return rc;
    const char *text_path = ctl_args_value(o, NOPTS(o), "--text");
    const char *ds_path = ctl_args_value(o, NOPTS(o), "--dataset");
    if (!!text_path == !!ds_path)
        rc = ctl_session_usage(
            s, "give exactly one of --text FILE (or - for stdin) and --dataset FILE.json");
    if (rc) {
        ctl_args_cleanup(o, NOPTS(o));
        return rc;
    }
    const char *id = a.pos[0];
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "user_id", id);
    char *description = NULL;
    if (text_path) {
        size_t len = 0;
        char *text = slurp(text_path, &len);
        if (!text) {
            rc = ctl_session_usage(s, "cannot read --text %s: %s", text_path, strerror(errno));
        } else {
            cJSON_AddStringToObject(body, "training_data", text);
            free(text);
        }
    } else {
        cJSON *arr = NULL;
        rc = load_dataset(s, ds_path, &arr, &description);
        if (!rc) cJSON_AddItemToObject(body, "dataset", arr);
    }
    const char *d = ctl_args_value(o, NOPTS(o), "--description");
    if (d || description) cJSON_AddStringToObject(body, "description", d ? d : description);
    const char *lang = ctl_args_value(o, NOPTS(o), "--language");
    if (lang) cJSON_AddStringToObject(body, "language", lang);
    int wait = ctl_args_opt(o, NOPTS(o), "--wait")->count > 0;
    ctl_reply r = {0};
    if (!rc) rc = ctl_session_call(s, "POST", "/api/v1/agents", body, &r);
    if (!rc) {
        if (!wait && s->json) ctl_session_print_json(&r);
        if (!s->json)
            printf("created agent %s (language %s); its pipeline runs in the background\n", id,
                   ctl_json_str(r.json, "language", "?"));
        fflush(stdout);
        ctl_reply_cleanup(&r);
        if (wait) {
            char *esc = ctl_client_escape(id);
            rc = wait_ready(s, esc, id);
            free(esc);
        }
    }
    cJSON_Delete(body);
    free(description);
    ctl_args_cleanup(o, NOPTS(o));
    return rc;
}

int ctl_agents_list(ctl_session *s, int argc, char **argv)
{
    ctl_opt o[] = {{.name = "--limit", .takes_value = 1},
                   {.name = "--cursor", .takes_value = 1},
                   {.name = "--status", .takes_value = 1}};
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, o, NOPTS(o), 0, NULL, &a);
    if (rc) return rc;
    ad_buf path;
    ad_buf_init(&path);
    ad_buf_puts(&path, "/api/v1/agents");
    ctl_session_add_query(&path, o, NOPTS(o));
    ctl_reply r;
    rc = ctl_session_call(s, "GET", path.data, NULL, &r);
    if (!rc) {
        if (s->json) {
            ctl_session_print_json(&r);
        } else {
            const cJSON *users = cJSON_GetObjectItemCaseSensitive(r.json, "users");
            const cJSON *u;
            printf("%-24s %-12s %8s %-8s %s\n", "ID", "STATUS", "PROGRESS", "LANGUAGE", "STAGE");
            cJSON_ArrayForEach(u, users)
            {
                printf("%-24s %-12s %7d%% %-8s %s\n", u->string, ctl_json_str(u, "status", "?"),
                       (int)ctl_json_num(u, "progress", 0), ctl_json_str(u, "language", "-"),
                       ctl_json_str(u, "stage", "-"));
            }
            const char *next = ctl_json_str(r.json, "next_cursor", NULL);
            if (next) printf("more: agentctl agents list --cursor %s\n", next);
        }
        ctl_reply_cleanup(&r);
    }
    ad_buf_cleanup(&path);
    ctl_args_cleanup(o, NOPTS(o));
    return rc;
}

/* Parses the one agent id the status and delete verbs take. */
static int one_id(ctl_session *s, int argc, char **argv, const char **id)
{
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, NULL, 0, 1, "one agent id", &a);
    if (rc) return rc;
    *id = a.pos[0];
    return 0;
}

int ctl_agents_status(ctl_session *s, int argc, char **argv)
{
    const char *id = NULL;
    int rc = one_id(s, argc, argv, &id);
    if (rc) return rc;
    char *esc = ctl_client_escape(id);
    ad_buf path;
    ad_buf_init(&path);
    ad_buf_printf(&path, "/api/v1/agents/%s/status", esc);
    ctl_reply r;
    rc = ctl_session_call(s, "GET", path.data, NULL, &r);
    if (!rc) {
        if (s->json) {
            ctl_session_print_json(&r);
        } else {
            printf("%s: %s, %d%%", id, ctl_json_str(r.json, "status", "?"),
                   (int)ctl_json_num(r.json, "progress", 0));
            const char *stage = ctl_json_str(r.json, "stage", NULL);
            if (stage) printf(", stage %s", stage);
            long long eta = (long long)ctl_json_num(r.json, "eta_s", 0);
            if (eta > 0) printf(", about %lld s left", eta);
            printf("\n");
            const char *err = ctl_json_str(r.json, "error", NULL);
            if (err) printf("error: %s\n", err);
            /* A failed run stays on status, with its reason, until the next. */
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(r.json, "training");
            if (cJSON_IsObject(t)) {
                printf("training: %s, %d/%d iterations", ctl_json_str(t, "status", "?"),
                       (int)ctl_json_num(t, "iteration", 0), (int)ctl_json_num(t, "iterations", 0));
                eta = (long long)ctl_json_num(t, "eta_s", 0);
                if (eta > 0) printf(", about %lld s left", eta);
                const char *terr = ctl_json_str(t, "error", NULL);
                if (terr) printf(": %s", terr);
                printf("\n");
            }
        }
        ctl_reply_cleanup(&r);
    }
    ad_buf_cleanup(&path);
    free(esc);
    return rc;
}

int ctl_agents_delete(ctl_session *s, int argc, char **argv)
{
    const char *id = NULL;
    int rc = one_id(s, argc, argv, &id);
    if (rc) return rc;
    char *esc = ctl_client_escape(id);
    ad_buf path;
    ad_buf_init(&path);
    ad_buf_printf(&path, "/api/v1/agents/%s", esc);
    ctl_reply r;
    rc = ctl_session_call(s, "DELETE", path.data, NULL, &r);
    if (!rc) {
        if (s->json)
            ctl_session_print_json(&r);
        else
            printf("deleted agent %s\n", id);
        ctl_reply_cleanup(&r);
    }
    ad_buf_cleanup(&path);
    free(esc);
    return rc;
}
