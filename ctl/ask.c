/* agentctl ask (see ask.h). */
#include "ctl/ask.h"

#include "base/buf.h"
#include "ctl/args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))

typedef struct stream_state {
    int printed;  /* bytes of answer written */
    cJSON *done;  /* the done event's data */
    cJSON *error; /* the error event's data */
} stream_state;

static void on_event(const char *event, const char *data, void *arg)
{
    stream_state *st = arg;
    cJSON *d = cJSON_Parse(data);
    if (!strcmp(event, "token")) {
        const char *text = ctl_json_str(d, "text", "");
        size_t n = strlen(text);
        fwrite(text, 1, n, stdout);
        /* The point of streaming: each piece shows the moment it arrives. */
        fflush(stdout);
        st->printed += (int)n;
        cJSON_Delete(d);
    } else if (!strcmp(event, "done")) {
        cJSON_Delete(st->done);
        st->done = d;
    } else if (!strcmp(event, "error")) {
        cJSON_Delete(st->error);
        st->error = d;
    } else {
        cJSON_Delete(d);
    }
}

static void print_sources(const cJSON *doc)
{
    const cJSON *sources = cJSON_GetObjectItemCaseSensitive(doc, "sources");
    if (!cJSON_IsArray(sources) || !cJSON_GetArraySize(sources)) return;
    printf("sources:\n");
    const cJSON *src;
    cJSON_ArrayForEach(src, sources)
    {
        printf("  [%d] score %.3f  %s\n", (int)ctl_json_num(src, "passage_id", 0),
               ctl_json_num(src, "score", 0), ctl_json_str(src, "snippet", ""));
    }
}

int ctl_ask(ctl_session *s, int argc, char **argv)
{
    ctl_opt o[] = {{.name = "--top-passages", .takes_value = 1},
                   {.name = "--max-output-tokens", .takes_value = 1}};
    ctl_args a;
    int rc = ctl_session_parse(s, argc, argv, o, NOPTS(o), 2, "AGENT and PROMPT", &a);
    if (rc) return rc;
    long long top = 0, max_tokens = 0;
    const char *top_s = ctl_args_value(o, NOPTS(o), "--top-passages");
    const char *max_s = ctl_args_value(o, NOPTS(o), "--max-output-tokens");
    if (top_s && ctl_args_integer(top_s, 1, 10, &top) < 0)
        rc =
            ctl_session_usage(s, "--top-passages must be an integer from 1 to 10, got '%s'", top_s);
    else if (max_s && ctl_args_integer(max_s, 1, 65536, &max_tokens) < 0)
        rc = ctl_session_usage(
            s, "--max-output-tokens must be an integer from 1 to 65536, got '%s'", max_s);
    else if (!*a.pos[1])
        rc = ctl_session_usage(s, "PROMPT is empty");
    if (rc) {
        ctl_args_cleanup(o, NOPTS(o));
        return rc;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "prompt", a.pos[1]);
    if (top) cJSON_AddNumberToObject(body, "top_passages", (double)top);
    if (max_tokens) cJSON_AddNumberToObject(body, "max_output_tokens", (double)max_tokens);
    char *esc = ctl_client_escape(a.pos[0]);
    ad_buf path;
    ad_buf_init(&path);
    ad_buf_printf(&path, "/api/v1/agents/%s/inference", esc);
    ctl_reply r;
    if (s->json) {
        rc = ctl_session_call(s, "POST", path.data, body, &r);
        if (!rc) {
            ctl_session_print_json(&r);
            ctl_reply_cleanup(&r);
        }
    } else {
        cJSON_AddBoolToObject(body, "stream", 1);
        stream_state st = {0};
        ad_err e = {0};
        if (ctl_client_stream(&s->client, path.data, body, on_event, &st, &r, &e) < 0) {
            /* What came of the answer stays, on a line of its own. */
            if (st.printed) printf("\n");
            fflush(stdout);
            fprintf(stderr, "agentctl %s: %s\n", s->verb, e.msg);
            rc = CTL_EXIT_SERVER;
        } else if (r.status < 200 || r.status >= 300) {
            /* Refused before the stream began: an ordinary JSON error. */
            rc = ctl_session_check(s, &r);
        } else {
            if (st.printed) printf("\n");
            if (st.error) {
                fprintf(stderr, "agentctl %s: the answer broke off: %s (%s)\n", s->verb,
                        ctl_json_str(st.error, "error", "no message"),
                        ctl_json_str(st.error, "code", "no code"));
                rc = CTL_EXIT_FAILED;
            } else if (!st.done) {
                fprintf(stderr, "agentctl %s: the stream ended without its done event\n", s->verb);
                rc = CTL_EXIT_SERVER;
            } else {
                print_sources(st.done);
            }
            fflush(stdout);
            ctl_reply_cleanup(&r);
        }
        cJSON_Delete(st.done);
        cJSON_Delete(st.error);
    }
    cJSON_Delete(body);
    ad_buf_cleanup(&path);
    free(esc);
    ctl_args_cleanup(o, NOPTS(o));
    return rc;
}
