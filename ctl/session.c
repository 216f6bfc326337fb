/* agentctl's per-run state, error reporting and exit codes (see session.h). */
#include "ctl/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ctl_session_exit_for_status(long status)
{
    if (status >= 200 && status < 300) return CTL_EXIT_OK;
    if (status == 401 || status == 403) return CTL_EXIT_AUTH;
    if (status >= 400 && status < 500) return CTL_EXIT_REFUSED;
    return CTL_EXIT_SERVER;
}

int ctl_session_call(ctl_session *s, const char *method, const char *path, const cJSON *body,
                     ctl_reply *out)
{
    ad_err e = {0};
    if (ctl_client_call(&s->client, method, path, body, out, &e) < 0) {
        fprintf(stderr, "agentctl %s: %s\n", s->verb, e.msg);
        return CTL_EXIT_SERVER;
    }
    return ctl_session_check(s, out);
}

int ctl_session_check(ctl_session *s, ctl_reply *out)
{
    int rc = ctl_session_exit_for_status(out->status);
    if (rc == CTL_EXIT_OK) return 0;
    const char *msg = ctl_json_str(out->json, "error", NULL);
    const char *code = ctl_json_str(out->json, "code", NULL);
    const char *rid = ctl_json_str(out->json, "request_id", NULL);
    if (msg)
        fprintf(stderr, "agentctl %s: %s (%s, HTTP %ld%s%s)\n", s->verb, msg,
                code ? code : "no code", out->status, rid ? ", request " : "", rid ? rid : "");
    else
        fprintf(stderr, "agentctl %s: the server answered HTTP %ld\n", s->verb, out->status);
    if (rc == CTL_EXIT_AUTH && out->status == 401)
        fprintf(stderr, "agentctl: check the token (agentctl login, AGENTD_TOKEN or --token)\n");
    if (s->json && out->json) ctl_session_print_json(out);
    ctl_reply_cleanup(out);
    return rc;
}

int ctl_session_parse(const ctl_session *s, int argc, char **argv, ctl_opt *opts, size_t nopts,
                      int want, const char *what, ctl_args *a)
{
    ad_err e = {0};
    int rc = 0;
    if (ctl_args_parse(argc, argv, opts, nopts, a, &e) < 0)
        rc = ctl_session_usage(s, "%s", e.msg);
    else if (want == 0 && a->npos)
        rc = ctl_session_usage(s, "takes no argument, got '%s'", a->pos[0]);
    else if (want > 0 && a->npos != want)
        rc = ctl_session_usage(s, "expected %s, got %d argument(s)", what, a->npos);
    if (rc) ctl_args_cleanup(opts, nopts);
    return rc;
}

int ctl_session_usage(const ctl_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "agentctl %s: ", s->verb);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nRun 'agentctl %s --help' for usage.\n", s->verb);
    va_end(ap);
    return CTL_EXIT_USAGE;
}

void ctl_session_add_query(ad_buf *path, const ctl_opt *opts, size_t nopts)
{
    char sep = strchr(path->data ? path->data : "", '?') ? '&' : '?';
    for (size_t i = 0; i < nopts; i++) {
        if (!opts[i].count) continue;
        char *esc = ctl_client_escape(opts[i].values[opts[i].count - 1]);
        ad_buf_printf(path, "%c%s=%s", sep, opts[i].name + 2, esc);
        free(esc);
        sep = '&';
    }
}

void ctl_session_print_json(const ctl_reply *r)
{
    fwrite(r->body, 1, r->len, stdout);
    if (!r->len || r->body[r->len - 1] != '\n') fputc('\n', stdout);
    fflush(stdout);
}

const char *ctl_json_str(const cJSON *o, const char *k, const char *fallback)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : fallback;
}

double ctl_json_num(const cJSON *o, const char *k, double fallback)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

void ctl_session_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0) {
    }
}
