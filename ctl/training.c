/* agentctl train and replay (see training.h). */
#include "ctl/training.h"

#include "base/buf.h"
#include "ctl/args.h"
#include "ctl/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))
#define POLL_MS 200
/* The server's bounds (POST .../train), checked here first so that a typo
 * costs no request. */
#define ITERATIONS_MAX 1000
#define NAME_MAX_LEN 64

int ctl_training_check_iterations(const char *text, long long *out, ad_err *e)
{
    if (!text)
        return ad_err_set(e, AD_EINVAL,
                          "-n is required: the number of training iterations (1 to 1000)");
    long long v = 0;
    if (ctl_args_integer(text, 1, 1LL << 62, &v) < 0)
        return ad_err_set(e, AD_EINVAL, "-n must be a positive integer, got '%s'", text);
    if (v > ITERATIONS_MAX)
        return ad_err_set(e, AD_EINVAL, "-n must be at most %d, got '%s'", ITERATIONS_MAX, text);
    *out = v;
    return 0;
}

int ctl_training_check_name(const char *name, ad_err *e)
{
    if (!name)
        return ad_err_set(e, AD_EINVAL,
                          "--name is required: the new model version's name (e.g. v2)");
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN)
        return ad_err_set(e, AD_EINVAL, "--name must be 1 to %d characters, got '%s' (%zu)",
                          NAME_MAX_LEN, name, n);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok)
            return ad_err_set(
                e, AD_EINVAL,
                "--name may contain only letters, digits, '_', '.' and '-', got '%s' ('%c' at %zu)",
                name, c, i + 1);
    }
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return ad_err_set(e, AD_EINVAL, "--name must not be '.' or '..', got '%s'", name);
    if (!strncmp(name, "group-", 6))
        return ad_err_set(
            e, AD_EINVAL,
            "--name must not begin with 'group-' (reserved for group training), got '%s'", name);
    return 0;
}

/* Follows GET .../training?training_id= until the run ends, showing its
 * iterations; returns the exit code (5 when it failed or was cancelled). */
static int follow_run(ctl_session *s, const char *esc_id, const char *id, long long tid)
{
    ctl_progress p;
    ctl_progress_init(&p, s->tty, s->json);
    ad_buf path, label;
    ad_buf_init(&path);
    ad_buf_init(&label);
    ad_buf_printf(&path, "/api/v1/agents/%s/training?training_id=%lld", esc_id, tid);
    ad_buf_printf(&label, "%s training", id);
    int rc;
    for (;;) {
        ctl_reply r;
        rc = ctl_session_call(s, "GET", path.data, NULL, &r);
        if (rc) break;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(r.json, "training");
        const char *st = ctl_json_str(t, "status", "?");
        int done = (int)ctl_json_num(t, "done_iterations", 0);
        int total = (int)ctl_json_num(t, "iterations", 1);
        char note[64];
        snprintf(note, sizeof(note), "%d/%d iterations (%s)", done, total, st);
        ctl_progress_update(&p, label.data, total > 0 ? done * 100 / total : 0, note);
        int finished = !strcmp(st, "done") || !strcmp(st, "failed") || !strcmp(st, "cancelled");
        if (finished) {
            ctl_progress_finish(&p);
            const cJSON *td = cJSON_GetObjectItemCaseSensitive(r.json, "trained_data");
            if (s->json) {
                ctl_session_print_json(&r);
            } else if (!strcmp(st, "done")) {
                printf("training %lld of %s done: %s\n", tid, id,
                       ctl_json_str(td, "final_summary", ""));
            }
            if (strcmp(st, "done")) {
                fprintf(stderr, "agentctl %s: training %lld of %s ended %s%s%s\n", s->verb, tid, id,
                        st, ctl_json_str(t, "error", NULL) ? ": " : "",
                        ctl_json_str(t, "error", ""));
                rc = CTL_EXIT_FAILED;
            }
            ctl_reply_cleanup(&r);
            break;
        }
        ctl_reply_cleanup(&r);
        ctl_session_sleep_ms(POLL_MS);
    }
    ctl_progress_finish(&p);
    ad_buf_cleanup(&path);
    ad_buf_cleanup(&label);
    return rc;
}

int ctl_train(ctl_session *s, int argc, char **argv)
{
    ctl_opt o[] = {{.name = "--iterations", .alias = "-n", .takes_value = 1},
                   {.name = "--name", .takes_value = 1},
                   {.name = "--no-wait"}};
    ctl_args a;
    ad_err e = {0};
    long long n = 0;
    int rc = ctl_session_parse(s, argc, argv, o, NOPTS(o), 1, "one agent id", &a);
    if (rc) return rc;
    if (ctl_training_check_iterations(ctl_args_value(o, NOPTS(o), "-n"), &n, &e) < 0 ||
             ctl_training_check_name(ctl_args_value(o, NOPTS(o), "--name"), &e) < 0)
        rc = ctl_session_usage(s, "%s", e.msg);
    if (rc) {
        ctl_args_cleanup(o, NOPTS(o));
        return rc;
    }
    const char *id = a.pos[0];
    cJSON *body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "iterations", (double)n);
    cJSON_AddStringToObject(body, "name", ctl_args_value(o, NOPTS(o), "--name"));
    char *esc = ctl_client_escape(id);
    ad_buf path;
    ad_buf_init(&path);
    ad_buf_printf(&path, "/api/v1/agents/%s/train", esc);
    ctl_reply r;
    rc = ctl_session_call(s, "POST", path.data, body, &r);
    if (!rc) {
        long long tid = (long long)ctl_json_num(r.json, "training_id", 0);
        if (ctl_args_opt(o, NOPTS(o), "--no-wait")->count) {
            if (s->json)
                ctl_session_print_json(&r);
            else
                printf("training %lld of %s queued: %lld iteration(s), version %s\n", tid, id, n,
                       ctl_json_str(r.json, "name", "?"));
        } else {
            if (!s->json) printf("training %lld of %s started: %lld iteration(s)\n", tid, id, n);
            fflush(stdout);
            rc = follow_run(s, esc, id, tid);
        }
        ctl_reply_cleanup(&r);
    }
    cJSON_Delete(body);
    ad_buf_cleanup(&path);
    free(esc);
    ctl_args_cleanup(o, NOPTS(o));
    return rc;
}

int ctl_replay(ctl_session *s, int argc, char **argv)
{
    ctl_opt o[] = {{.name = "--task-id", .takes_value = 1},
                   {.name = "--task-index", .takes_value = 1}};
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, o, NOPTS(o), 1, "one agent id", &a);
    if (rc) return rc;
    const char *task_id = ctl_args_value(o, NOPTS(o), "--task-id");
    const char *index_s = ctl_args_value(o, NOPTS(o), "--task-index");
    long long index = -1;
    if (!!task_id == !!index_s)
        rc = ctl_session_usage(s, "give exactly one of --task-id ID and --task-index 0..3");
    else if (task_id && !*task_id)
        rc = ctl_session_usage(s, "--task-id is empty");
    else if (index_s && ctl_args_integer(index_s, 0, 3, &index) < 0)
        rc = ctl_session_usage(s, "--task-index must be an integer from 0 to 3, got '%s'", index_s);
    if (rc) {
        ctl_args_cleanup(o, NOPTS(o));
        return rc;
    }
    cJSON *body = cJSON_CreateObject();
    if (task_id)
        cJSON_AddStringToObject(body, "task_id", task_id);
    else
        cJSON_AddNumberToObject(body, "task_index", (double)index);
    char *esc = ctl_client_escape(a.pos[0]);
    ad_buf path;
    ad_buf_init(&path);
    ad_buf_printf(&path, "/api/v1/agents/%s/replay", esc);
    ctl_reply r;
    rc = ctl_session_call(s, "POST", path.data, body, &r);
    if (!rc) {
        if (s->json)
            ctl_session_print_json(&r);
        else
            printf("replay of %s from stage %d (%s) queued as job %lld\n", a.pos[0],
                   (int)ctl_json_num(r.json, "replay_from", -1), ctl_json_str(r.json, "name", "?"),
                   (long long)ctl_json_num(r.json, "job_id", 0));
        ctl_reply_cleanup(&r);
    }
    cJSON_Delete(body);
    ad_buf_cleanup(&path);
    free(esc);
    ctl_args_cleanup(o, NOPTS(o));
    return rc;
}
