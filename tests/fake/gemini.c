#include "tests/fake/gemini.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/mem.h"

#define FAKE_MAX_RECORDED 10000
#define FAKE_MAX_FAULTS 256
#define FAKE_ECHO_CHARS 40
#define FAKE_BODY_MAX (4u << 20)
#define FAKE_FOREVER INT64_MAX

typedef enum conn_phase { PHASE_RECEIVING, PHASE_DELAYED, PHASE_ANSWERED } conn_phase;

/* Per-connection state: allocated on the first call of the access handler,
 * freed in the completion callback. A streamed response reads from it too;
 * MHD calls the completion callback after the last read. */
typedef struct fake_conn {
    fake_gemini *f;
    struct MHD_Connection *conn;
    conn_phase phase;
    ad_buf body;
    fake_fault fault;
    int stream;
    int status;
    char *answer;
    /* Streaming: the chunks, which one is next, how much of it went out. */
    char **chunks;
    size_t nchunks, next, off;
    size_t cut_after; /* drop the connection before chunk N (0: never) */
    int64_t next_at;
    int gap_ms;
    /* Timer entry while suspended. */
    int64_t resume_at;
    struct fake_conn *tnext;
} fake_conn;

struct fake_gemini {
    struct MHD_Daemon *daemon;
    pthread_t timer;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stopping;             /* mu */
    fake_conn *timers;        /* mu: suspended connections */
    fake_fault faults[FAKE_MAX_FAULTS]; /* mu: ring */
    size_t fault_head, fault_len;
    fake_gemini_request *recorded; /* mu */
    size_t recorded_len;
    size_t request_count;
    size_t dropped;
    int delay_ms;
    int gap_ms;
};

/* ---- suspension: MHD calls stay outside our lock, so no order to get wrong ---- */

/* Suspends the connection until `at` (monotonic ms). Called from MHD callbacks. */
static void conn_suspend_until(fake_conn *fc, int64_t at)
{
    fake_gemini *f = fc->f;
    MHD_suspend_connection(fc->conn);
    pthread_mutex_lock(&f->mu);
    if (f->stopping) {
        pthread_mutex_unlock(&f->mu);
        MHD_resume_connection(fc->conn);
        return;
    }
    fc->resume_at = at;
    fc->tnext = f->timers;
    f->timers = fc;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

/* Takes every suspended connection due by `now` off the list (all when
 * stopping) and returns them; the caller resumes them without the lock. */
static fake_conn *timers_take_due(fake_gemini *f, int64_t now, int64_t *next)
{
    fake_conn *due = NULL, **pp = &f->timers;
    *next = FAKE_FOREVER;
    while (*pp) {
        fake_conn *fc = *pp;
        if (f->stopping || fc->resume_at <= now) {
            *pp = fc->tnext;
            fc->tnext = due;
            due = fc;
        } else {
            if (fc->resume_at < *next) *next = fc->resume_at;
            pp = &fc->tnext;
        }
    }
    return due;
}

static void resume_all(fake_conn *due)
{
    while (due) {
        fake_conn *fc = due;
        due = fc->tnext;
        MHD_resume_connection(fc->conn);
    }
}

static void *timer_main(void *arg)
{
    fake_gemini *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stopping) {
        int64_t next;
        fake_conn *due = timers_take_due(f, ad_clock_mono_ms(), &next);
        if (due) {
            pthread_mutex_unlock(&f->mu);
            resume_all(due);
            pthread_mutex_lock(&f->mu);
            continue;
        }
        if (next == FAKE_FOREVER) {
            pthread_cond_wait(&f->cond, &f->mu);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = next - ad_clock_mono_ms();
            if (wait < 0) wait = 0;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&f->cond, &f->mu, &ts);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* ---- building answers ---- */

/* A 200 that answers nothing: an empty candidates list, with usage. */
#define FAKE_NO_CANDIDATES_REPLY                                                                  \
    "{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":9,\"totalTokenCount\":9},"         \
    "\"modelVersion\":\"fake-gemini\"}"

static enum MHD_Result queue_body(fake_conn *fc, unsigned status, const char *type,
                                  const char *body, const char *retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (retry_after) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    enum MHD_Result ret = MHD_queue_response(fc->conn, status, r);
    MHD_destroy_response(r);
    fc->phase = PHASE_ANSWERED;
    fc->status = (int)status;
    return ret;
}

static enum MHD_Result queue_error(fake_conn *fc, unsigned code, const char *status,
                                   const char *message, const char *details_json,
                                   const char *retry_after)
{
    ad_buf b;
    ad_buf_init(&b);
    ad_buf_printf(&b, "{\n  \"error\": {\n    \"code\": %u,\n    \"message\": ", code);
    ad_buf_json_string(&b, message, strlen(message));
    ad_buf_printf(&b, ",\n    \"status\": \"%s\"", status);
    if (details_json) ad_buf_printf(&b, ",\n    \"details\": %s", details_json);
    ad_buf_puts(&b, "\n  }\n}\n");
    enum MHD_Result ret = queue_body(fc, code, "application/json; charset=UTF-8", b.data, retry_after);
    ad_buf_cleanup(&b);
    return ret;
}

/* The last text part of the last user turn, or "" when there is none. */
static const char *last_user_text(const cJSON *root)
{
    const cJSON *contents = cJSON_GetObjectItemCaseSensitive(root, "contents");
    const char *found = "";
    const cJSON *turn;
    cJSON_ArrayForEach(turn, contents)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(turn, "role");
        if (cJSON_IsString(role) && strcmp(role->valuestring, "user") != 0) continue;
        const cJSON *part;
        cJSON_ArrayForEach(part, cJSON_GetObjectItemCaseSensitive(turn, "parts"))
        {
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(text)) found = text->valuestring;
        }
    }
    return found;
}

/* The first FAKE_ECHO_CHARS bytes of `s`, not cutting a UTF-8 sequence. */
static char *echo_of(const char *s)
{
    size_t n = strlen(s);
    if (n > FAKE_ECHO_CHARS) {
        n = FAKE_ECHO_CHARS;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    return ad_strndup(s, n);
}

static void put_usage(ad_buf *b, const fake_conn *fc, size_t out_chars)
{
    size_t in = fc->body.len / 4 + 1, out = out_chars / 4 + 1;
    ad_buf_printf(b,
                  "\"usageMetadata\":{\"promptTokenCount\":%zu,\"candidatesTokenCount\":%zu,"
                  "\"totalTokenCount\":%zu}",
                  in, out, in + out);
}

static void put_text_candidate(ad_buf *b, const char *const *texts, size_t n, const char *finish)
{
    ad_buf_puts(b, "\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[");
    for (size_t i = 0; i < n; i++) {
        ad_buf_puts(b, i ? ",{\"text\":" : "{\"text\":");
        ad_buf_json_string(b, texts[i], strlen(texts[i]));
        ad_buf_putc(b, '}');
    }
    ad_buf_puts(b, "]}");
    if (finish) ad_buf_printf(b, ",\"finishReason\":\"%s\"", finish);
    ad_buf_puts(b, ",\"index\":0}]");
}

/* The JSON of a whole answer (or the only chunk of a refusal). */
static void build_reply(ad_buf *b, const fake_conn *fc)
{
    ad_buf_putc(b, '{');
    if (fc->fault.kind == FAKE_KIND_BLOCKED) {
        ad_buf_puts(b, "\"promptFeedback\":{\"blockReason\":\"SAFETY\",\"safetyRatings\":[{"
                       "\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":\"HIGH\"}]},");
        put_usage(b, fc, 0);
    } else if (fc->fault.kind == FAKE_KIND_SAFETY) {
        ad_buf_puts(b, "\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0,\"safetyRatings\":[{"
                       "\"category\":\"HARM_CATEGORY_HARASSMENT\",\"probability\":\"HIGH\"}]}],");
        put_usage(b, fc, 0);
    } else {
        const char *texts[] = {"ANSWER: ", fc->answer};
        put_text_candidate(b, texts, 2, "STOP");
        ad_buf_putc(b, ',');
        put_usage(b, fc, strlen(fc->answer) + 8);
    }
    ad_buf_puts(b, ",\"modelVersion\":\"fake-gemini\",\"responseId\":\"fake\"}");
}

/* A replayed stream: the fixture cut after each blank line ("\n\n" or
 * "\r\n\r\n"), the rest (a bare JSON error, say) as the last piece. */
static void build_replay_stream(fake_conn *fc)
{
    const char *s = fc->fault.body;
    size_t n = strlen(s), cap = 8;
    fc->chunks = ad_calloc(cap, sizeof(char *));
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t end = 0;
        if (i + 1 < n && s[i] == '\n' && s[i + 1] == '\n') end = i + 2;
        else if (i + 3 < n && !memcmp(s + i, "\r\n\r\n", 4)) end = i + 4;
        else if (i == n && start < n) end = n;
        if (!end) continue;
        if (fc->nchunks == cap) {
            cap *= 2;
            fc->chunks = ad_realloc(fc->chunks, ad_size_mul(cap, sizeof(char *)));
        }
        fc->chunks[fc->nchunks++] = ad_strndup(s + start, end - start);
        start = end;
        i = end - 1;
    }
}

static char *sse_event(const ad_buf *json)
{
    ad_buf b;
    ad_buf_init(&b);
    ad_buf_printf(&b, "data: %s\r\n\r\n", json->data);
    return ad_buf_steal(&b, NULL);
}

/* Splits the answer into chunks: "ANSWER: ", then the echo in three pieces,
 * the last carrying finishReason and usage. */
static void build_stream(fake_conn *fc)
{
    if (fc->fault.kind == FAKE_KIND_REPLAY) {
        build_replay_stream(fc);
        return;
    }
    fc->chunks = ad_calloc(5, sizeof(char *));
    ad_buf j;
    ad_buf_init(&j);
    if (fc->fault.kind == FAKE_KIND_BLOCKED || fc->fault.kind == FAKE_KIND_SAFETY) {
        build_reply(&j, fc);
        fc->chunks[fc->nchunks++] = sse_event(&j);
        ad_buf_cleanup(&j);
        return;
    }
    const char *a = fc->answer;
    size_t n = strlen(a), cut1 = n / 3, cut2 = 2 * n / 3;
    while (cut1 > 0 && ((unsigned char)a[cut1] & 0xC0) == 0x80) cut1--;
    while (cut2 > cut1 && ((unsigned char)a[cut2] & 0xC0) == 0x80) cut2--;
    char *pieces[4] = {ad_strdup("ANSWER: "), ad_strndup(a, cut1), ad_strndup(a + cut1, cut2 - cut1),
                       ad_strdup(a + cut2)};
    for (int i = 0; i < 4; i++) {
        ad_buf_reset(&j);
        ad_buf_putc(&j, '{');
        const char *t = pieces[i];
        put_text_candidate(&j, &t, 1, i == 3 ? "STOP" : NULL);
        if (i == 3) {
            ad_buf_putc(&j, ',');
            put_usage(&j, fc, n + 8);
        }
        ad_buf_puts(&j, ",\"modelVersion\":\"fake-gemini\"}");
        fc->chunks[fc->nchunks++] = sse_event(&j);
        free(pieces[i]);
    }
    ad_buf_cleanup(&j);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    fake_conn *fc = cls;
    fake_gemini *f = fc->f;
    pthread_mutex_lock(&f->mu);
    int stopping = f->stopping;
    pthread_mutex_unlock(&f->mu);
    if (stopping) return MHD_CONTENT_READER_END_WITH_ERROR;
    if (fc->next == fc->nchunks) return MHD_CONTENT_READER_END_OF_STREAM;
    if (fc->cut_after && fc->next == fc->cut_after) return MHD_CONTENT_READER_END_WITH_ERROR;
    int64_t now = ad_clock_mono_ms();
    if (fc->off == 0 && now < fc->next_at) {
        conn_suspend_until(fc, fc->next_at);
        return 0;
    }
    const char *chunk = fc->chunks[fc->next];
    size_t left = strlen(chunk) - fc->off;
    size_t n = left < max ? left : max;
    memcpy(buf, chunk + fc->off, n);
    fc->off += n;
    if (fc->off == strlen(chunk)) {
        fc->next++;
        fc->off = 0;
        fc->next_at = now + fc->gap_ms;
    }
    return (ssize_t)n;
}

static enum MHD_Result queue_stream(fake_conn *fc)
{
    build_stream(fc);
    fc->gap_ms = fc->fault.kind == FAKE_KIND_SLOW_STREAM ? FAKE_SLOW_STREAM_GAP_MS : fc->f->gap_ms;
    if (fc->fault.kind == FAKE_KIND_STREAM_CUT) fc->cut_after = 2;
    fc->next_at = 0;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, fc, NULL);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    enum MHD_Result ret = MHD_queue_response(fc->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    fc->phase = PHASE_ANSWERED;
    fc->status = 200;
    return ret;
}

/* ---- the request ---- */

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    ad_buf_printf(cls, "%s: %s\n", key, value ? value : "");
    return MHD_YES;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    ad_buf *b = cls;
    ad_buf_putc(b, b->len ? '&' : '?');
    ad_buf_printf(b, "%s=%s", key, value ? value : "");
    return MHD_YES;
}

static void record(fake_gemini *f, fake_conn *fc, const char *method, const char *url)
{
    fake_gemini_request r;
    ad_buf u, h, q;
    ad_buf_init(&u);
    ad_buf_init(&h);
    ad_buf_init(&q);
    MHD_get_connection_values(fc->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
    ad_buf_puts(&u, url);
    if (q.len) ad_buf_append(&u, q.data, q.len);
    MHD_get_connection_values(fc->conn, MHD_HEADER_KIND, collect_header, &h);
    r.method = ad_strdup(method);
    r.url = ad_buf_steal(&u, NULL);
    r.headers = h.data ? ad_buf_steal(&h, NULL) : ad_strdup("");
    r.body = ad_strndup(fc->body.data ? fc->body.data : "", fc->body.len);
    ad_buf_cleanup(&q);
    pthread_mutex_lock(&f->mu);
    f->request_count++;
    if (f->recorded_len < FAKE_MAX_RECORDED) {
        f->recorded[f->recorded_len++] = r;
        r.method = NULL;
    }
    pthread_mutex_unlock(&f->mu);
    if (r.method) fake_gemini_request_cleanup(&r);
}

static fake_fault next_fault(fake_gemini *f)
{
    fake_fault none = {FAKE_KIND_NONE, -1, -1, 0, NULL};
    pthread_mutex_lock(&f->mu);
    if (f->fault_len > 0) {
        none = f->faults[f->fault_head];
        f->fault_head = (f->fault_head + 1) % FAKE_MAX_FAULTS;
        f->fault_len--;
    }
    pthread_mutex_unlock(&f->mu);
    return none;
}

/* GET models/{name}: what the model lookup sees. The key is checked first,
 * as for every call. */
static enum MHD_Result answer_model(fake_conn *fc, const char *name)
{
    const char *key = MHD_lookup_connection_value(fc->conn, MHD_HEADER_KIND, "x-goog-api-key");
    if (!key || strcmp(key, FAKE_GEMINI_KEY) != 0)
        return queue_error(fc, 400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                           NULL, NULL);
    ad_buf b;
    ad_buf_init(&b);
    enum MHD_Result ret;
    if (!strcmp(name, "gemini-2.5-flash") || !strncmp(name, "missing-", 8)) {
        ad_buf_printf(&b, "models/%s is not found for API version v1beta, or is not supported for "
                          "generateContent. Call ListModels to see the list of available models and "
                          "their supported methods.", name);
        ret = queue_error(fc, 404, "NOT_FOUND", b.data, NULL, NULL);
    } else {
        ad_buf_printf(&b, "{\"name\":\"models/%s\",\"version\":\"001\",\"displayName\":\"Fake\","
                          "\"inputTokenLimit\":1048576,\"outputTokenLimit\":65536,"
                          "\"supportedGenerationMethods\":[%s],\"thinking\":true}",
                      name, strncmp(name, "embed-", 6) ? "\"generateContent\",\"countTokens\""
                                                      : "\"embedContent\"");
        ret = queue_body(fc, 200, "application/json; charset=UTF-8", b.data, NULL);
    }
    ad_buf_cleanup(&b);
    return ret;
}

/* Routes the request; returns nonzero with *stream set when it is a model
 * call, or queues the error itself. */
static int route(fake_conn *fc, const char *method, const char *url, enum MHD_Result *ret)
{
    static const char prefix[] = "/v1beta/models/";
    const char *colon = strrchr(url, ':');
    if (strncmp(url, prefix, sizeof(prefix) - 1) == 0 && !colon && strcmp(method, "GET") == 0 &&
        url[sizeof(prefix) - 1] && !strchr(url + sizeof(prefix) - 1, '/')) {
        *ret = answer_model(fc, url + sizeof(prefix) - 1);
        return 0;
    }
    if (strncmp(url, prefix, sizeof(prefix) - 1) != 0 || !colon) {
        *ret = queue_error(fc, 404, "NOT_FOUND", "Requested entity was not found.", NULL, NULL);
        return 0;
    }
    if (strcmp(method, "POST") != 0) {
        *ret = queue_error(fc, 405, "METHOD_NOT_ALLOWED", "Method not allowed.", NULL, NULL);
        return 0;
    }
    const char *alt = MHD_lookup_connection_value(fc->conn, MHD_GET_ARGUMENT_KIND, "alt");
    if (strcmp(colon, ":generateContent") == 0) {
        fc->stream = 0;
    } else if (strcmp(colon, ":streamGenerateContent") == 0 && alt && strcmp(alt, "sse") == 0) {
        fc->stream = 1;
    } else {
        *ret = queue_error(fc, 404, "NOT_FOUND", "Requested entity was not found.", NULL, NULL);
        return 0;
    }
    const char *key = MHD_lookup_connection_value(fc->conn, MHD_HEADER_KIND, "x-goog-api-key");
    if (!key) key = MHD_lookup_connection_value(fc->conn, MHD_GET_ARGUMENT_KIND, "key");
    if (!key) {
        *ret = queue_error(fc, 403, "PERMISSION_DENIED",
                           "Method doesn't allow unregistered callers (callers without established "
                           "identity). Please use API Key or other form of API consumer identity "
                           "to call this API.",
                           NULL, NULL);
        return 0;
    }
    if (strcmp(key, FAKE_GEMINI_KEY) != 0) {
        *ret = queue_error(fc, 400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                           "[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\","
                           "\"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\"}]",
                           NULL);
        return 0;
    }
    return 1;
}

static enum MHD_Result answer_fault(fake_conn *fc)
{
    char header[32], details[256];
    switch (fc->fault.kind) {
    case FAKE_KIND_429: {
        const char *ra = NULL;
        const char *det = NULL;
        if (fc->fault.retry_after_s >= 0) {
            snprintf(header, sizeof(header), "%d", fc->fault.retry_after_s);
            ra = header;
        }
        if (fc->fault.retry_delay_ms >= 0) {
            snprintf(details, sizeof(details),
                     "[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":[]},"
                     "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"%lld.%03llds\"}]",
                     (long long)(fc->fault.retry_delay_ms / 1000),
                     (long long)(fc->fault.retry_delay_ms % 1000));
            det = details;
        }
        return queue_error(fc, 429, "RESOURCE_EXHAUSTED",
                           "You exceeded your current quota, please check your plan and billing details.",
                           det, ra);
    }
    case FAKE_KIND_500:
        return queue_error(fc, 500, "INTERNAL", "An internal error has occurred.", NULL, NULL);
    case FAKE_KIND_503:
        return queue_error(fc, 503, "UNAVAILABLE", "The model is overloaded. Please try again later.",
                           NULL, NULL);
    case FAKE_KIND_504:
        return queue_error(fc, 504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.",
                           NULL, NULL);
    case FAKE_KIND_400:
        return queue_error(fc, 400, "INVALID_ARGUMENT", FAKE_400_MESSAGE, NULL, NULL);
    case FAKE_KIND_NON_JSON:
        return queue_body(fc, 200, "text/html",
                          "<html><head><title>502 Bad Gateway</title></head><body>upstream</body></html>\n",
                          NULL);
    case FAKE_KIND_NO_CANDIDATES:
        if (fc->stream)
            return queue_body(fc, 200, "text/event-stream", "data: " FAKE_NO_CANDIDATES_REPLY "\r\n\r\n",
                              NULL);
        return queue_body(fc, 200, "application/json; charset=UTF-8", FAKE_NO_CANDIDATES_REPLY, NULL);
    default:
        return MHD_NO; /* not reached: only the kinds above are answered here */
    }
}

static enum MHD_Result answer(fake_conn *fc)
{
    if (fc->fault.kind == FAKE_KIND_REPLAY && (!fc->stream || fc->fault.status != 200))
        return queue_body(fc, (unsigned)fc->fault.status,
                          fc->stream ? "text/event-stream" : "application/json; charset=UTF-8",
                          fc->fault.body, NULL);
    switch (fc->fault.kind) {
    case FAKE_KIND_REPLAY:
    case FAKE_KIND_NONE:
    case FAKE_KIND_SLOW_STREAM:
    case FAKE_KIND_STREAM_CUT:
    case FAKE_KIND_BLOCKED:
    case FAKE_KIND_SAFETY:
        break;
    default:
        return answer_fault(fc);
    }
    cJSON *root = cJSON_ParseWithLength(fc->body.data ? fc->body.data : "", fc->body.len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return queue_error(fc, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.", NULL, NULL);
    }
    fc->answer = echo_of(last_user_text(root));
    cJSON_Delete(root);
    if (fc->stream) return queue_stream(fc);
    ad_buf b;
    ad_buf_init(&b);
    build_reply(&b, fc);
    enum MHD_Result ret = queue_body(fc, 200, "application/json; charset=UTF-8", b.data, NULL);
    ad_buf_cleanup(&b);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    fake_gemini *f = cls;
    fake_conn *fc = *con_cls;
    if (!fc) {
        fc = ad_calloc(1, sizeof(*fc));
        fc->f = f;
        fc->conn = conn;
        ad_buf_init(&fc->body);
        *con_cls = fc;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (fc->body.len + *upload_data_size > FAKE_BODY_MAX) return MHD_NO;
        ad_buf_append(&fc->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (fc->phase == PHASE_RECEIVING) {
        record(f, fc, method, url);
        enum MHD_Result ret;
        if (!route(fc, method, url, &ret)) return ret;
        fc->fault = next_fault(f);
        pthread_mutex_lock(&f->mu);
        int delay = f->delay_ms;
        pthread_mutex_unlock(&f->mu);
        int hang = fc->fault.kind == FAKE_KIND_HANG;
        if (hang || (delay > 0 && fc->fault.kind == FAKE_KIND_NONE)) {
            fc->phase = PHASE_DELAYED;
            conn_suspend_until(fc, hang ? FAKE_FOREVER : ad_clock_mono_ms() + delay);
            return MHD_YES;
        }
        return answer(fc);
    }
    if (fc->phase == PHASE_DELAYED) {
        pthread_mutex_lock(&f->mu);
        int stopping = f->stopping;
        pthread_mutex_unlock(&f->mu);
        if (stopping) return MHD_NO;
        return answer(fc);
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    fake_gemini *f = cls;
    fake_conn *fc = *con_cls;
    if (!fc) return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        pthread_mutex_lock(&f->mu);
        f->dropped++;
        pthread_mutex_unlock(&f->mu);
    }
    ad_buf_cleanup(&fc->body);
    free(fc->fault.body);
    for (size_t i = 0; i < fc->nchunks; i++) free(fc->chunks[i]);
    free(fc->chunks);
    free(fc->answer);
    free(fc);
    *con_cls = NULL;
}

/* ---- public ---- */

int fake_gemini_start(fake_gemini **out, unsigned *port)
{
    fake_gemini *f = ad_calloc(1, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cond, &ca);
    pthread_condattr_destroy(&ca);
    f->gap_ms = 20;
    f->recorded = ad_calloc(FAKE_MAX_RECORDED, sizeof(*f->recorded));

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)*port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
        on_request, f, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, f, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)2048, MHD_OPTION_END);
    if (!f->daemon) {
        pthread_cond_destroy(&f->cond);
        pthread_mutex_destroy(&f->mu);
        free(f->recorded);
        free(f);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(f->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : 0;
    pthread_create(&f->timer, NULL, timer_main, f);
    *out = f;
    return 0;
}

void fake_gemini_stop(fake_gemini *f)
{
    if (!f) return;
    int64_t next;
    pthread_mutex_lock(&f->mu);
    f->stopping = 1;
    fake_conn *due = timers_take_due(f, 0, &next);
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
    resume_all(due);
    pthread_join(f->timer, NULL);
    /* MHD may still be resuming connections suspended just before `stopping`
     * was set; those resume themselves at once (conn_suspend_until). */
    MHD_stop_daemon(f->daemon);
    for (size_t i = 0; i < f->fault_len; i++) free(f->faults[(f->fault_head + i) % FAKE_MAX_FAULTS].body);
    for (size_t i = 0; i < f->recorded_len; i++) fake_gemini_request_cleanup(&f->recorded[i]);
    free(f->recorded);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void fake_gemini_set_delay_ms(fake_gemini *f, int ms)
{
    pthread_mutex_lock(&f->mu);
    f->delay_ms = ms;
    pthread_mutex_unlock(&f->mu);
}

void fake_gemini_set_chunk_gap_ms(fake_gemini *f, int ms)
{
    pthread_mutex_lock(&f->mu);
    f->gap_ms = ms;
    pthread_mutex_unlock(&f->mu);
}

void fake_gemini_push_fault(fake_gemini *f, fake_fault fault)
{
    pthread_mutex_lock(&f->mu);
    if (f->fault_len < FAKE_MAX_FAULTS) {
        f->faults[(f->fault_head + f->fault_len) % FAKE_MAX_FAULTS] = fault;
        f->fault_len++;
    }
    pthread_mutex_unlock(&f->mu);
}

void fake_gemini_push_replay(fake_gemini *f, int status, const char *body)
{
    fake_fault fault = {FAKE_KIND_REPLAY, -1, -1, status, ad_strdup(body)};
    pthread_mutex_lock(&f->mu);
    if (f->fault_len < FAKE_MAX_FAULTS) {
        f->faults[(f->fault_head + f->fault_len) % FAKE_MAX_FAULTS] = fault;
        f->fault_len++;
        fault.body = NULL;
    }
    pthread_mutex_unlock(&f->mu);
    free(fault.body);
}

size_t fake_gemini_request_count(fake_gemini *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->request_count;
    pthread_mutex_unlock(&f->mu);
    return n;
}

int fake_gemini_request_get(fake_gemini *f, size_t i, fake_gemini_request *out)
{
    int rc = -1;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&f->mu);
    if (i < f->recorded_len) {
        const fake_gemini_request *r = &f->recorded[i];
        out->method = ad_strdup(r->method);
        out->url = ad_strdup(r->url);
        out->headers = ad_strdup(r->headers);
        out->body = ad_strdup(r->body);
        rc = 0;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void fake_gemini_request_cleanup(fake_gemini_request *r)
{
    free(r->method);
    free(r->url);
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

size_t fake_gemini_dropped_count(fake_gemini *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->dropped;
    pthread_mutex_unlock(&f->mu);
    return n;
}
