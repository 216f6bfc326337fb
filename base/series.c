#include "base/series.h"

#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/prom.h"

/* Prometheus' default buckets widened at both ends: /health takes tens of
 * microseconds, a streamed answer tens of seconds. */
static const double http_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,   0.5,   1,      2.5,   5,    10,    30,    60};
/* A stage on a small text takes milliseconds, on 10 MiB minutes. */
static const double stage_bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
static const double inference_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                          1,     2.5,  5,     10,    30,   60,   120};

/* The statuses agentd sends (tests/unit/base/series.c checks every one
 * handlers/ and server/ answer is here); any other counts as "other". */
static const int http_codes[] = {200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 409, 413,
                                 414, 415, 422, 429, 431, 500, 501, 502, 503, 504};
static const char *const http_code_names[] = {"200", "201", "202", "204", "304", "400", "401", "403",
                                              "404", "405", "409", "413", "414", "415", "422", "429",
                                              "431", "500", "501", "502", "503", "504", "other"};
#define HTTP_NCODES (sizeof(http_code_names) / sizeof(http_code_names[0]))

/* The methods an unmatched request is counted under; the last is "other". */
static const char *const http_methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"};
#define HTTP_NMETHODS (sizeof(http_methods) / sizeof(http_methods[0]))

static const long upstream_codes[] = {200, 400, 401, 403, 404, 429, 500, 502, 503, 504};
static const char *const upstream_code_names[] = {"200", "400", "401", "403", "404", "429",
                                                  "500", "502", "503", "504", "other", "transport"};
#define UPSTREAM_NCODES (sizeof(upstream_code_names) / sizeof(upstream_code_names[0]))
#define UPSTREAM_OTHER (UPSTREAM_NCODES - 2)
#define UPSTREAM_TRANSPORT (UPSTREAM_NCODES - 1)

const char *const series_stage_names[4] = {"DataProcessor", "ModelTrainer", "ModelEvaluator", "ModelDeployer"};
static const char *const backend_names[] = {"local", "gemini"};
static const char *const token_kinds[] = {"prompt", "output", "thinking"};

static const char *const l_route_method_code[] = {"route", "method", "code"};
static const char *const l_route_method[] = {"route", "method"};
static const char *const l_stage[] = {"stage"};
static const char *const l_backend[] = {"backend"};
static const char *const l_code[] = {"code"};
static const char *const l_kind[] = {"kind"};

static prom_family http_requests, http_duration, http_aborted;
static prom_family stage_duration, inference_duration;
static prom_family upstream_requests, upstream_retries, llm_tokens;
static prom_family training_iterations, rate_limited, inference_capped;
static int series_started;
/* HTTP children: route slot r has 2r (its method) and 2r+1 (HEAD); the
 * unmatched requests follow at 2 * http_nroutes, one per http_methods. */
static size_t http_nroutes;
/* http_code_ix[status - 100]: the code slot of each status 100..599. */
static unsigned char http_code_ix[500];

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void series_family(prom_family *f, prom_type type, const char *name, const char *help,
                          const char *const *labels, size_t nlabels, const char *const *values,
                          size_t nvalues, const double *bounds, size_t nbounds)
{
    prom_family_init(f, type, name, help, labels, nlabels, nlabels ? nvalues : 1, bounds, nbounds);
    for (size_t i = 0; nlabels && i < nvalues; i++) prom_family_label(f, i, 0, values[i]);
}

void series_start(int enabled)
{
    ad_assert(!series_started);
    for (size_t s = 0; s < N(http_code_ix); s++) http_code_ix[s] = (unsigned char)(HTTP_NCODES - 1);
    for (size_t i = 0; i < N(http_codes); i++) http_code_ix[http_codes[i] - 100] = (unsigned char)i;
    series_family(&stage_duration, PROM_HISTOGRAM, "agentd_pipeline_stage_duration_seconds",
                  "Time a pipeline stage took to complete, by stage (failed stages are not counted).",
                  l_stage, 1, series_stage_names, 4, stage_bounds, N(stage_bounds));
    series_family(&inference_duration, PROM_HISTOGRAM, "agentd_inference_duration_seconds",
                  "Time from an inference request to its answer (the whole stream when streamed), by "
                  "backend.",
                  l_backend, 1, backend_names, N(backend_names), inference_bounds, N(inference_bounds));
    series_family(&upstream_requests, PROM_COUNTER, "agentd_upstream_requests_total",
                  "Attempts of calls to Gemini, by the HTTP status they ended with (transport: none).",
                  l_code, 1, upstream_code_names, UPSTREAM_NCODES, NULL, 0);
    series_family(&upstream_retries, PROM_COUNTER, "agentd_upstream_retries_total",
                  "Attempts of calls to Gemini made again after a retryable failure.", NULL, 0, NULL, 0,
                  NULL, 0);
    series_family(&llm_tokens, PROM_COUNTER, "agentd_llm_tokens_total",
                  "Tokens Gemini reported in its answers' usage, by kind.", l_kind, 1, token_kinds,
                  N(token_kinds), NULL, 0);
    series_family(&training_iterations, PROM_COUNTER, "agentd_training_iterations_total",
                  "Training iterations completed and stored.", NULL, 0, NULL, 0, NULL, 0);
    series_family(&rate_limited, PROM_COUNTER, "agentd_rate_limited_total",
                  "Requests refused with 429 rate_limited (a caller's requests per minute).", NULL, 0,
                  NULL, 0, NULL, 0);
    series_family(&inference_capped, PROM_COUNTER, "agentd_inference_capped_total",
                  "Inferences refused with 429 too_many_inferences (a caller's inferences in flight).",
                  NULL, 0, NULL, 0, NULL, 0);
    series_started = 1;
    prom_set_enabled(enabled);
}

void series_stop(void)
{
    if (!series_started) return;
    prom_set_enabled(0);
    prom_family *all[] = {&http_requests,     &http_duration,       &http_aborted,    &stage_duration,
                          &inference_duration, &upstream_requests,  &upstream_retries, &llm_tokens,
                          &training_iterations, &rate_limited,      &inference_capped};
    for (size_t i = 0; i < N(all); i++)
        if (all[i]->cells) prom_family_cleanup(all[i]);
    http_nroutes = 0;
    series_started = 0;
}

void series_http_init(const char *const *patterns, const char *const *methods, size_t n)
{
    ad_assert(series_started && !http_requests.cells && n < SERIES_MAX_ROUTES);
    http_nroutes = n;
    size_t children = 2 * n + HTTP_NMETHODS;
    prom_family_init(&http_requests, PROM_COUNTER, "agentd_http_requests_total",
                     "HTTP requests answered, by route pattern (unmatched: no route), method and status "
                     "code.",
                     l_route_method_code, 3, children * HTTP_NCODES, NULL, 0);
    prom_family_init(&http_duration, PROM_HISTOGRAM, "agentd_http_request_duration_seconds",
                     "Time from a request's headers to its completion (an event stream counts until it "
                     "ends), by route pattern and method.",
                     l_route_method, 2, children, http_bounds, N(http_bounds));
    prom_family_init(&http_aborted, PROM_COUNTER, "agentd_http_requests_aborted_total",
                     "HTTP requests whose client left before an answer was sent, by route pattern and "
                     "method.",
                     l_route_method, 2, children, NULL, 0);
    http_requests.sparse = http_duration.sparse = http_aborted.sparse = 1;
    for (size_t c = 0; c < children; c++) {
        const char *route = c < 2 * n ? patterns[c / 2] : "unmatched";
        const char *method = c < 2 * n ? (c % 2 ? "HEAD" : methods[c / 2]) : http_methods[c - 2 * n];
        prom_family_label(&http_duration, c, 0, route);
        prom_family_label(&http_duration, c, 1, method);
        prom_family_label(&http_aborted, c, 0, route);
        prom_family_label(&http_aborted, c, 1, method);
        for (size_t k = 0; k < HTTP_NCODES; k++) {
            prom_family_label(&http_requests, c * HTTP_NCODES + k, 0, route);
            prom_family_label(&http_requests, c * HTTP_NCODES + k, 1, method);
            prom_family_label(&http_requests, c * HTTP_NCODES + k, 2, http_code_names[k]);
        }
    }
}

size_t series_http_unmatched(void)
{
    return SERIES_MAX_ROUTES;
}

/* The HTTP child of a request: its route's own method or HEAD, or the
 * unmatched child of its method. */
static size_t series_http_child(size_t route_slot, const char *method)
{
    if (route_slot < http_nroutes) return 2 * route_slot + (strcmp(method, "HEAD") == 0);
    size_t m = 0;
    while (m < HTTP_NMETHODS - 1 && strcmp(method, http_methods[m]) != 0) m++;
    return 2 * http_nroutes + m;
}

void series_http_done(size_t route_slot, const char *method, int status, int64_t start_ns)
{
    if (!prom_enabled() || !http_requests.cells) return;
    int64_t ns = ad_clock_mono_ns() - start_ns;
    size_t child = series_http_child(route_slot, method);
    size_t code = status >= 100 && status < 600 ? http_code_ix[status - 100] : HTTP_NCODES - 1;
    prom_counter_add(&http_requests, child * HTTP_NCODES + code, 1);
    prom_histogram_observe_ns(&http_duration, child, ns);
}

void series_http_aborted(size_t route_slot, const char *method)
{
    if (!prom_enabled() || !http_requests.cells) return;
    prom_counter_add(&http_aborted, series_http_child(route_slot, method), 1);
}

int series_http_code_known(int status)
{
    for (size_t i = 0; i < N(http_codes); i++)
        if (http_codes[i] == status) return 1;
    return 0;
}

void series_stage_done(int stage_ix, int64_t ns)
{
    if (!prom_enabled() || stage_ix < 0 || stage_ix >= 4) return;
    prom_histogram_observe_ns(&stage_duration, (size_t)stage_ix, ns);
}

void series_inference_done(series_backend backend, int64_t ns)
{
    if (!prom_enabled()) return;
    prom_histogram_observe_ns(&inference_duration, backend == SERIES_BACKEND_GEMINI, ns);
}

void series_upstream_response(long status)
{
    if (!prom_enabled()) return;
    size_t k = 0;
    while (k < N(upstream_codes) && upstream_codes[k] != status) k++;
    prom_counter_add(&upstream_requests, k < N(upstream_codes) ? k : UPSTREAM_OTHER, 1);
}

void series_upstream_transport_error(void)
{
    if (!prom_enabled()) return;
    prom_counter_add(&upstream_requests, UPSTREAM_TRANSPORT, 1);
}

void series_upstream_retry(void)
{
    if (!prom_enabled()) return;
    prom_counter_add(&upstream_retries, 0, 1);
}

void series_llm_tokens(long prompt, long output, long thinking)
{
    if (!prom_enabled()) return;
    long n[] = {prompt, output, thinking};
    for (size_t k = 0; k < N(n); k++)
        if (n[k] > 0) prom_counter_add(&llm_tokens, k, (uint64_t)n[k]);
}

void series_training_iteration(void)
{
    if (!prom_enabled()) return;
    prom_counter_add(&training_iterations, 0, 1);
}

void series_rate_limited(void)
{
    if (!prom_enabled()) return;
    prom_counter_add(&rate_limited, 0, 1);
}

void series_inference_capped(void)
{
    if (!prom_enabled()) return;
    prom_counter_add(&inference_capped, 0, 1);
}

void series_write_all(ad_buf *b)
{
    const prom_family *all[] = {&http_requests,     &http_duration,      &http_aborted,
                                &stage_duration,    &inference_duration, &upstream_requests,
                                &upstream_retries,  &llm_tokens,         &training_iterations,
                                &rate_limited,      &inference_capped};
    for (size_t i = 0; i < N(all); i++)
        if (all[i]->cells) prom_write_family(b, all[i]);
}
