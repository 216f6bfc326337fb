#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/prom.h"
#include "base/series.h"
#include "pipeline/plan.h"

Suite *base_series_suite(void);

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

/* After `call` in `s`, skips `commas` top-level arguments and returns the
 * literal status that starts the next one, or 0 when it is not a literal. */
static int status_after(const char *s, int commas)
{
    int depth = 0;
    for (; *s && commas > 0; s++) {
        if (*s == '(' || *s == '[' || *s == '{') depth++;
        else if (*s == ')' || *s == ']' || *s == '}') {
            if (depth-- == 0) return 0;
        } else if (*s == ',' && depth == 0) commas--;
    }
    while (isspace((unsigned char)*s)) s++;
    if (isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) &&
        !isalnum((unsigned char)s[3]))
        return atoi(s);
    return 0;
}

/* Every literal status in `text`'s answers: ad_response_error(res, req, NNN,
 * ad_response_json(res, NNN, http_fail(ctx, NNN, http_refuse_framing(ctx,
 * NNN, and `status = NNN`. Each new one goes into `seen`. */
static void collect_statuses(const char *text, int *seen, const char *file)
{
    static const struct {
        const char *call;
        int commas;
    } calls[] = {{"ad_response_error(", 2}, {"ad_response_json(", 1}, {"http_fail(", 1},
                 {"http_refuse_framing(", 1}, {"status = ", 0}};
    for (size_t c = 0; c < sizeof(calls) / sizeof(calls[0]); c++) {
        for (const char *p = strstr(text, calls[c].call); p; p = strstr(p + 1, calls[c].call)) {
            int st = status_after(p + strlen(calls[c].call), calls[c].commas);
            if (st < 100 || st > 599) continue;
            ck_assert_msg(series_http_code_known(st), "%s answers %d, which has no code label of its own",
                          file, st);
            seen[st] = 1;
        }
    }
}

/* Every status agentd answers with has a `code` slot: "other" is never
 * needed for agentd's own answers. */
START_TEST(test_series_every_sent_status_has_a_slot)
{
    static int seen[600];
    static const char *const dirs[] = {"handlers", "server"};
    for (size_t d = 0; d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        ck_assert_msg(dir != NULL, "run from the repository root (%s)", dirs[d]);
        struct dirent *ent;
        while ((ent = readdir(dir))) {
            size_t n = strlen(ent->d_name);
            if (n < 3 || strcmp(ent->d_name + n - 2, ".c") != 0) continue;
            char path[512];
            snprintf(path, sizeof(path), "%s/%s", dirs[d], ent->d_name);
            char *text = slurp(path);
            ck_assert_ptr_nonnull(text);
            collect_statuses(text, seen, path);
            free(text);
        }
        closedir(dir);
    }
    /* The scan itself works: it finds the statuses agentd is known to send. */
    static const int known[] = {200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 414, 415, 429, 431, 501, 503};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        ck_assert_msg(seen[known[i]], "the scan did not find status %d", known[i]);
    ck_assert(!series_http_code_known(418));
}
END_TEST

/* Requests that matched no route count under route="unmatched" with their
 * method (unknown ones as "other"); a matched GET route has a HEAD child;
 * an unknown status counts as code="other". */
START_TEST(test_series_http_slots)
{
    static const char *const patterns[] = {"/health", "/api/v1/agents/{id}"};
    static const char *const methods[] = {"GET", "DELETE"};
    series_start(1);
    series_http_init(patterns, methods, 2);
    series_http_done(series_http_unmatched(), "GET", 404, ad_clock_mono_ns() - 1000);
    series_http_done(series_http_unmatched(), "BREW", 501, ad_clock_mono_ns() - 1000);
    series_http_done(0, "HEAD", 200, ad_clock_mono_ns() - 1000);
    series_http_done(1, "DELETE", 418, ad_clock_mono_ns() - 1000);
    series_http_aborted(1, "DELETE");
    ad_buf b;
    ad_buf_init(&b);
    series_write_all(&b);
    ck_assert_msg(strstr(b.data, "agentd_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"} 1\n"),
                  "%s", b.data);
    ck_assert(strstr(b.data, "agentd_http_requests_total{route=\"unmatched\",method=\"other\",code=\"501\"} 1\n"));
    ck_assert(strstr(b.data, "agentd_http_requests_total{route=\"/health\",method=\"HEAD\",code=\"200\"} 1\n"));
    ck_assert(strstr(b.data,
                     "agentd_http_requests_total{route=\"/api/v1/agents/{id}\",method=\"DELETE\",code=\"other\"} 1\n"));
    ck_assert(strstr(b.data, "agentd_http_request_duration_seconds_count{route=\"/health\",method=\"HEAD\"} 1\n"));
    ck_assert(strstr(b.data, "agentd_http_requests_aborted_total{route=\"/api/v1/agents/{id}\",method=\"DELETE\"} 1\n"));
    /* Children never counted are left out: no GET /health line. */
    ck_assert(!strstr(b.data, "route=\"/health\",method=\"GET\""));
    ad_buf_cleanup(&b);
    series_stop();
}
END_TEST

/* Every family's name follows Prometheus' rules: agentd_ and snake case,
 * counters end in _total, histograms (durations) in _seconds. */
START_TEST(test_series_names_follow_prometheus_rules)
{
    static const char *const patterns[] = {"/health"};
    static const char *const methods[] = {"GET"};
    series_start(1);
    series_http_init(patterns, methods, 1);
    ad_buf b;
    ad_buf_init(&b);
    series_write_all(&b);
    regex_t re;
    ck_assert_int_eq(regcomp(&re, "^agentd_[a-z_]+$", REG_EXTENDED | REG_NOSUB), 0);
    int families = 0;
    for (const char *p = strstr(b.data, "# TYPE "); p; p = strstr(p + 1, "# TYPE ")) {
        char name[128], type[32];
        ck_assert_int_eq(sscanf(p, "# TYPE %127s %31s", name, type), 2);
        families++;
        ck_assert_msg(regexec(&re, name, 0, NULL, 0) == 0, "%s: not agentd_ in snake case", name);
        size_t n = strlen(name);
        if (!strcmp(type, "counter"))
            ck_assert_msg(n > 6 && !strcmp(name + n - 6, "_total"), "counter %s does not end in _total", name);
        else if (!strcmp(type, "histogram"))
            ck_assert_msg(n > 8 && !strcmp(name + n - 8, "_seconds"), "histogram %s does not end in _seconds",
                          name);
        else
            ck_abort_msg("%s: unexpected type %s", name, type);
    }
    ck_assert_int_eq(families, 11);
    regfree(&re);
    ad_buf_cleanup(&b);
    series_stop();
}
END_TEST

/* The stage histogram's labels are the pipeline's own stage names, in order. */
START_TEST(test_series_stage_names_match_pipeline)
{
    for (int i = 0; i < PIPELINE_STAGES; i++) ck_assert_str_eq(series_stage_names[i], pipeline_stage_names[i]);
}
END_TEST

/* With metrics off, no recorder moves anything. */
START_TEST(test_series_disabled_records_nothing)
{
    static const char *const patterns[] = {"/health"};
    static const char *const methods[] = {"GET"};
    series_start(0);
    series_http_init(patterns, methods, 1);
    series_http_done(0, "GET", 200, ad_clock_mono_ns());
    series_stage_done(0, 5);
    series_inference_done(SERIES_BACKEND_LOCAL, 5);
    series_upstream_response(200);
    series_upstream_retry();
    series_llm_tokens(1, 2, 3);
    series_training_iteration();
    series_rate_limited();
    ad_buf b;
    ad_buf_init(&b);
    series_write_all(&b);
    for (const char *line = b.data; *line;) {
        const char *end = strchr(line, '\n');
        ck_assert_ptr_nonnull(end);
        if (*line != '#') ck_assert_msg(end - line > 2 && !strncmp(end - 2, " 0", 2), "moved: %.*s",
                                        (int)(end - line), line);
        line = end + 1;
    }
    ad_buf_cleanup(&b);
    series_stop();
}
END_TEST

Suite *base_series_suite(void)
{
    Suite *s = suite_create("base_series");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_series_every_sent_status_has_a_slot);
    tcase_add_test(tc, test_series_http_slots);
    tcase_add_test(tc, test_series_names_follow_prometheus_rules);
    tcase_add_test(tc, test_series_stage_names_match_pipeline);
    tcase_add_test(tc, test_series_disabled_records_nothing);
    suite_add_tcase(s, tc);
    return s;
}
