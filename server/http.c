#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/async.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/series.h"
#include "base/utf8.h"
#include "handlers/auth.h"
#include "server/auth.h"
#include "handlers/idempotency.h"
#include "server/hangup.h"
#include "server/header_deadline.h"
#include "server/limits.h"
#include "server/router.h"
#include "server/sse.h"

struct ad_http {
    struct MHD_Daemon *daemon;
    const ad_app *app;
    uint16_t port;
    atomic_int stopping;       /* set by http_quiesce: new requests get 503 */
    atomic_int active;
    atomic_uint_fast64_t next_id;
    uint32_t id_prefix;
    limits *limits;            /* per-caller request rate and inferences in flight */
};

/* Per-request state: created on the first call of the access handler and
 * freed in exactly one place, the completion callback. */
typedef struct http_ctx {
    ad_async async;            /* req.async; its ops find the context again */
    struct ad_http *http;
    struct MHD_Connection *conn;
    int64_t start_ns;          /* monotonic, when the headers were in */
    char *path;
    char *scratch;             /* path parameters */
    const ad_route *route;
    size_t body_limit;
    const char *limit_key;     /* the setting that sets body_limit */
    int too_large;
    const char *bad_query;     /* a query parameter name with invalid UTF-8 ("" when the name itself is) */
    ad_buf body;
    char request_id[72];
    const char *origin;
    ad_request req;
    ad_principal principal;    /* req.who */
    char caller[40];           /* the caller's label, when it has limits */
    int rate_counted;          /* `rate` holds this request's count: RateLimit-* headers */
    limits_decision rate;
    int inference_slot;        /* holds one of the caller's inference slots */
    const char *idempotency_key; /* a POST's Idempotency-Key (libmicrohttpd's copy) */
    idempotency_ticket idem;   /* the claimed key until the response is kept */
    ad_response res;
    int queued;                /* a response went to libmicrohttpd */
    sse_hold *sse;             /* an event stream being sent, held until completion */
    int status_sent;
    size_t bytes_sent;

    pthread_mutex_t lock;      /* guards the deferred-response hand-off: */
    int deferred, suspended, completed;
    ad_response pending;       /* the completed response, until this connection's thread takes it */
    void (*hangup_fn)(void *);  /* told if the client leaves while suspended */
    void *hangup_ud;
    uint64_t hangup_ticket;
} http_ctx;

/* Per-connection state (libmicrohttpd's socket context): lives from accept
 * to close, across the requests of a keep-alive connection. */
typedef struct http_conn {
    uint64_t header_ticket;    /* the watched header deadline, 0 when unwatched */
} http_conn;

/* Our own bounds on the request head, answered in JSON. libmicrohttpd
 * answers larger heads itself, in HTML, once they overflow its per-connection
 * memory (about 24 KiB here; README names those answers). */
#define HTTP_MAX_TARGET_BYTES 8192
#define HTTP_MAX_HEADER_BYTES 12288
/* How much of a path an error message echoes. */
#define HTTP_ECHO_PATH_BYTES 200

static const char *http_header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* The length of the longest prefix of `s` of at most `max` bytes that does
 * not end inside a UTF-8 sequence. */
static int http_echo_len(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
    return (int)max;
}

static int request_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == ':'))
            return 0;
    }
    return 1;
}

static int content_type_is_json(const char *ct)
{
    if (!ct) return 0;
    while (*ct == ' ') ct++;
    size_t n = strcspn(ct, "; ");
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0) return 1;
    /* application/<anything>+json */
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Whether `origin` may read responses, per the configured list. A request
 * without Origin is not cross-origin: it needs no CORS headers. */
static const char *cors_allow_origin(const ad_config *cfg, const char *origin)
{
    if (!origin) return NULL;
    if (strcmp(cfg->cors_origins, "*") == 0) return "*";
    size_t n = strlen(origin);
    for (const char *p = cfg->cors_origins; *p;) {
        while (*p == ' ' || *p == ',') p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed && p[trimmed - 1] == ' ') trimmed--;
        if (trimmed == n && strncmp(p, origin, n) == 0) return origin;
        p += len;
    }
    return NULL;
}

/* The RateLimit-* fields of an authenticated caller's response. */
static void http_add_rate_headers(http_ctx *ctx, struct MHD_Response *r)
{
    if (!ctx->rate_counted) return;
    char v[24];
    snprintf(v, sizeof(v), "%d", ctx->rate.limit);
    MHD_add_response_header(r, "RateLimit-Limit", v);
    snprintf(v, sizeof(v), "%d", ctx->rate.remaining);
    MHD_add_response_header(r, "RateLimit-Remaining", v);
    snprintf(v, sizeof(v), "%d", ctx->rate.reset_s);
    MHD_add_response_header(r, "RateLimit-Reset", v);
}

static enum MHD_Result http_send(http_ctx *ctx)
{
    ad_response *res = &ctx->res;
    struct MHD_Response *r;
    size_t len = 0;
    /* The final answer of a POST that claimed its Idempotency-Key: kept
     * before it goes (the body is handed to libmicrohttpd below). */
    if (ctx->idem.row_id) idempotency_finish(&ctx->idem, &ctx->req, res);
    if (res->stream) {
        ad_stream *s = res->stream;
        res->stream = NULL;
        r = sse_response(s, ctx->conn, &ctx->sse);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
    } else {
        char *body = ad_buf_steal(&res->body, &len);
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!r) {
            free(body);
            return MHD_NO;
        }
        if (res->status != 204)
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    res->content_type ? res->content_type : "application/json");
    }
    MHD_add_response_header(r, "X-Request-Id", ctx->request_id);
    const char *allow = cors_allow_origin(ctx->http->app->cfg, ctx->origin);
    if (allow) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", allow);
        MHD_add_response_header(r, "Access-Control-Expose-Headers",
                                "X-Request-Id, Location, Retry-After, RateLimit-Limit, "
                                "RateLimit-Remaining, RateLimit-Reset, Idempotent-Replayed");
        if (strcmp(allow, "*") != 0) MHD_add_response_header(r, "Vary", "Origin");
    }
    for (size_t i = 0; i < res->nheaders; i++)
        MHD_add_response_header(r, res->headers[i].name, res->headers[i].value);
    http_add_rate_headers(ctx, r);
    ctx->status_sent = res->status;
    ctx->bytes_sent = len;
    ctx->queued = 1;
    enum MHD_Result ok = MHD_queue_response(ctx->conn, (unsigned)res->status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result http_fail(http_ctx *ctx, int status, const char *code, const char *msg)
{
    ad_response_error(&ctx->res, &ctx->req, status, code, "%s", msg);
    return http_send(ctx);
}

/* Collects the query parameters; ctx->bad_query names the first one that is
 * not valid UTF-8 (after percent-decoding). */
static enum MHD_Result http_collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                          const char *value)
{
    (void)kind;
    http_ctx *ctx = cls;
    ad_request *req = &ctx->req;
    if (!ctx->bad_query && (ad_utf8_validate(key, strlen(key), NULL) < 0 ||
                            (value && ad_utf8_validate(value, strlen(value), NULL) < 0)))
        ctx->bad_query = ad_utf8_validate(key, strlen(key), NULL) < 0 ? "" : key;
    if (req->nquery < AD_MAX_QUERY) {
        req->query[req->nquery].key = key;
        req->query[req->nquery].value = value ? value : "";
        req->nquery++;
    }
    return MHD_YES;
}

static void http_answer_options(http_ctx *ctx, unsigned allowed)
{
    char allow[128];
    ad_router_allow_header(allowed, allow, sizeof(allow));
    ctx->res.status = 204;
    ad_response_header(&ctx->res, "Allow", allow);
    if (http_header(ctx->conn, "Access-Control-Request-Method")) {
        ad_response_header(&ctx->res, "Access-Control-Allow-Methods", allow);
        ad_response_header(&ctx->res, "Access-Control-Allow-Headers",
                           "Authorization, Content-Type, Accept, X-Request-Id, Idempotency-Key");
        ad_response_header(&ctx->res, "Access-Control-Max-Age", "600");
    }
}

/* What the header block says about framing and credentials, counted over
 * every header line: MHD_lookup_connection_value sees only the first of a
 * repeated header, and a proxy in front may read another. */
typedef struct http_head {
    int content_length, transfer_encoding, authorization, idempotency_key;
    int bad_name;              /* a header name that is not an RFC 9110 token */
    size_t bytes;
} http_head;

/* Whether `s` is a token (RFC 9110 5.6.2), as every header name must be. */
static int http_is_token(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              (ch && strchr("!#$%&'*+-.^_`|~", ch))))
            return 0;
    }
    return 1;
}

static enum MHD_Result http_count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value)
{
    (void)kind;
    http_head *h = cls;
    /* libmicrohttpd 0.9.75 keeps whitespace before the colon in the name, so
     * "Content-Length : 5" frames nothing for it but 5 bytes for a proxy
     * that trims the name. It also glues a folded continuation line (obs-fold)
     * to the name, "Content-Length: 5\r\n x" becoming "Content-Lengthx": a
     * framing header's name followed by more is refused for the same reason. */
    if (!http_is_token(key) ||
        (strncasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH, 14) == 0 && key[14]) ||
        (strncasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING, 17) == 0 && key[17]))
        h->bad_name = 1;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) h->content_length++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) h->transfer_encoding++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0) h->authorization++;
    else if (strcasecmp(key, "Idempotency-Key") == 0) h->idempotency_key++;
    h->bytes += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

/* Answers a request whose framing cannot be trusted and closes the
 * connection after it: whatever follows on the socket may be another request
 * smuggled inside a body this server reads differently from a proxy. */
static enum MHD_Result http_refuse_framing(http_ctx *ctx, int status, const char *code, const char *msg)
{
    ad_response_error(&ctx->res, &ctx->req, status, code, "%s", msg);
    ad_response_header(&ctx->res, "Connection", "close");
    return http_send(ctx);
}

/* Checks framing (RFC 9112 6.1-6.3) before anything reads a body. */
static int http_check_framing(http_ctx *ctx, const http_head *h, enum MHD_Result *out)
{
    if (h->bad_name) {
        *out = http_refuse_framing(ctx, 400, "invalid_request",
                                   "a header name is malformed (whitespace before its colon, or a "
                                   "folded line)");
        return -1;
    }
    if (h->content_length > 1) {
        *out = http_refuse_framing(ctx, 400, "invalid_request",
                                   "more than one Content-Length header");
        return -1;
    }
    if (h->transfer_encoding > 1) {
        *out = http_refuse_framing(ctx, 400, "invalid_request",
                                   "more than one Transfer-Encoding header");
        return -1;
    }
    if (h->transfer_encoding && h->content_length) {
        *out = http_refuse_framing(ctx, 400, "invalid_request",
                                   "Content-Length and Transfer-Encoding must not both be sent");
        return -1;
    }
    const char *te = http_header(ctx->conn, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te) {
        while (*te == ' ' || *te == '\t') te++;
        size_t n = strlen(te);
        while (n && (te[n - 1] == ' ' || te[n - 1] == '\t')) n--;
        if (n != 7 || strncasecmp(te, "chunked", 7) != 0) {
            *out = http_refuse_framing(ctx, 501, "not_implemented",
                                       "Transfer-Encoding: only chunked is supported");
            return -1;
        }
    }
    return 0;
}

/* Answers 401 invalid_token, and audits the failure. */
static int http_refuse_credential(http_ctx *ctx, const char *token, const char *reason)
{
    ad_response_error(&ctx->res, &ctx->req, 401, "invalid_token", "%s", reason);
    ad_response_header(&ctx->res, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    /* A CORS preflight carries no credentials by design: no failure. */
    if (ctx->req.method != AD_OPTIONS) auth_note_failure(token, reason, ctx->request_id);
    return -1;
}

/* The paths a credential guards when auth is on: the API and the metrics.
 * The dashboard's page and assets stay open: they carry no data, and the
 * page's own API calls carry the token. */
static int http_path_guarded(const char *path)
{
    return strncmp(path, "/api/", 5) == 0 || strcmp(path, "/metrics") == 0;
}

/* Whether the request may reach `path`, and as whom (ctx->principal: the
 * bootstrap key is the admin, an `agd_` token its own scopes and agents);
 * fills the 400/401/503 answer if not. */
static int http_authorize(http_ctx *ctx, const http_head *h, const char *path)
{
    const ad_config *cfg = ctx->http->app->cfg;
    if (!cfg->api_key || !http_path_guarded(path)) return 0;
    if (h->authorization > 1) {
        ad_response_error(&ctx->res, &ctx->req, 400, "invalid_request",
                          "more than one Authorization header");
        return -1;
    }
    ad_err e = {0};
    const char *token = NULL;
    if (auth_bearer(http_header(ctx->conn, MHD_HTTP_HEADER_AUTHORIZATION), &token, &e) < 0)
        return http_refuse_credential(ctx, NULL, e.msg);
    if (auth_equal(token, cfg->api_key)) {
        ctx->principal.kind = AD_CALLER_ADMIN;
        ctx->principal.scopes = AD_SCOPE_ALL;
        ctx->principal.all_agents = 1;
        return 0;
    }
    if (strncmp(token, "agd_", 4) != 0) return http_refuse_credential(ctx, NULL, "invalid API key or token");
    ad_principal p;
    int rc = auth_token_principal(token, &p, &e);
    if (rc == AD_EINVAL) {
        char msg[AD_ERR_MSG_MAX + 32];
        snprintf(msg, sizeof(msg), "invalid token (%s)", e.msg);
        return http_refuse_credential(ctx, token, msg);
    }
    if (rc < 0) {
        auth_answer_storage(&ctx->req, &ctx->res, rc, &e);
        return -1;
    }
    ctx->principal = p;
    return 0;
}

/* Counts the request of an authenticated caller against its rate limit
 * (its token's own, else rate_limit_per_min); fills the 429 if it is over.
 * With auth off nobody is limited. */
static int http_rate_limit(http_ctx *ctx, const char *path)
{
    const ad_config *cfg = ctx->http->app->cfg;
    const ad_principal *who = ctx->req.who;
    if (!cfg->api_key || strncmp(path, "/api/", 5) != 0 || who->kind == AD_CALLER_OPEN) return 0;
    ad_principal_label(who, ctx->caller, sizeof(ctx->caller));
    int limit = who->rate_limit_per_min > 0 ? who->rate_limit_per_min : cfg->rate_limit_per_min;
    if (limit <= 0) return 0;
    limits_take(ctx->http->limits, ctx->caller, limit, ad_clock_now_ms(), &ctx->rate);
    ctx->rate_counted = 1;
    if (ctx->rate.allowed) return 0;
    ad_response_error(&ctx->res, &ctx->req, 429, "rate_limited",
                      "rate limit of %d requests per minute reached; retry in %d s", limit,
                      ctx->rate.reset_s);
    char after[16];
    snprintf(after, sizeof(after), "%d", ctx->rate.reset_s);
    ad_response_header(&ctx->res, "Retry-After", after);
    return -1;
}

/* Takes one of the caller's inference slots for a route that runs a model
 * (the routes that need the inference scope), held until the request
 * completes, however it ends (http_completed); fills the 429 when all are
 * taken. */
static int http_inference_slot(http_ctx *ctx)
{
    const ad_config *cfg = ctx->http->app->cfg;
    const ad_principal *who = ctx->req.who;
    if (ctx->route->scope != AD_SCOPE_INFERENCE || !cfg->api_key || who->kind == AD_CALLER_OPEN) return 0;
    int cap = who->max_concurrent_inferences > 0 ? who->max_concurrent_inferences
                                                 : cfg->max_concurrent_inferences;
    if (cap <= 0) return 0;
    ad_principal_label(who, ctx->caller, sizeof(ctx->caller));
    if (limits_inference_enter(ctx->http->limits, ctx->caller, cap)) {
        ctx->inference_slot = 1;
        return 0;
    }
    ad_response_error(&ctx->res, &ctx->req, 429, "too_many_inferences",
                      "%d inference(s) of this caller are already running (the cap); retry when one "
                      "has finished", cap);
    ad_response_header(&ctx->res, "Retry-After", "1");
    return -1;
}

/* Every method some route of the service takes, for a CORS preflight that
 * may not learn which paths exist. */
static unsigned http_all_methods(void)
{
    unsigned all = AD_OPTIONS;
    for (size_t i = 0; i < ad_nroutes; i++) all |= ad_routes[i].method;
    return all & AD_GET ? all | AD_HEAD : all;
}

/* First call for a request: everything that can be decided from the headers. */
static enum MHD_Result http_begin(http_ctx *ctx, const char *url, const char *method_name)
{
    struct MHD_Connection *c = ctx->conn;
    const ad_config *cfg = ctx->http->app->cfg;
    const char *rid = http_header(c, "X-Request-Id");
    if (rid && request_id_valid(rid)) {
        snprintf(ctx->request_id, sizeof(ctx->request_id), "%s", rid);
    } else {
        uint64_t n = atomic_fetch_add(&ctx->http->next_id, 1);
        snprintf(ctx->request_id, sizeof(ctx->request_id), "%08x%08llx", ctx->http->id_prefix,
                 (unsigned long long)n);
    }
    ctx->req.request_id = ctx->request_id;
    ctx->req.app = ctx->http->app;
    ctx->req.async = &ctx->async;
    /* Auth off lets everything through. With a key, a caller holds nothing
     * until http_authorize finds the bootstrap key (every scope) or a token
     * (its own scopes and agents). */
    ctx->principal.kind = AD_CALLER_OPEN;
    ctx->principal.scopes = cfg->api_key ? 0 : AD_SCOPE_ALL;
    ctx->principal.all_agents = !cfg->api_key;
    ctx->req.who = &ctx->principal;
    ctx->origin = http_header(c, MHD_HTTP_HEADER_ORIGIN);
    ctx->path = ad_strdup(url);
    ctx->req.path = ctx->path;
    const char *accept = http_header(c, MHD_HTTP_HEADER_ACCEPT);
    ctx->req.accept = accept ? accept : "";
    const char *inm = http_header(c, MHD_HTTP_HEADER_IF_NONE_MATCH);
    ctx->req.if_none_match = inm ? inm : "";
    ad_method m = ad_method_from_string(method_name);
    ctx->req.method = m;

    http_head head = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, http_count_header, &head);
    enum MHD_Result framing_answer;
    if (http_check_framing(ctx, &head, &framing_answer) < 0) return framing_answer;
    if (strlen(url) > HTTP_MAX_TARGET_BYTES) {
        ad_response_error(&ctx->res, &ctx->req, 414, "uri_too_long",
                          "the request path is longer than %d bytes", HTTP_MAX_TARGET_BYTES);
        return http_send(ctx);
    }
    if (head.bytes > HTTP_MAX_HEADER_BYTES) {
        ad_response_error(&ctx->res, &ctx->req, 431, "headers_too_large",
                          "the request headers are larger than %d bytes", HTTP_MAX_HEADER_BYTES);
        return http_send(ctx);
    }
    size_t bad = 0;
    if (ad_utf8_validate(url, strlen(url), &bad) < 0) {
        ad_response_error(&ctx->res, &ctx->req, 400, "invalid_path",
                          "the request path is not valid UTF-8 (at byte %zu)", bad);
        return http_send(ctx);
    }

    size_t scratch_len = strlen(url) + 1;
    ctx->scratch = ad_malloc(scratch_len);
    unsigned allowed = 0;
    ad_route_result rr = ad_router_match(ad_routes, ad_nroutes, m, url, &ctx->route, ctx->req.params,
                                         &ctx->req.nparams, ctx->scratch, scratch_len, &allowed);
    if (atomic_load(&ctx->http->stopping)) {
        /* Keep-alive connections outlive the closed listener: a request that
         * arrives while draining is refused, so no handler starts work that
         * shutdown is about to take away; a route with a draining answer
         * (GET /health: "stopping") gives that one instead. */
        ad_handler draining = NULL;
        for (size_t i = 0; rr == AD_ROUTE_FOUND && i < ad_ndrain_answers; i++)
            if (ad_drain_answers[i].handler == ctx->route->handler) draining = ad_drain_answers[i].draining;
        if (draining)
            draining(&ctx->req, &ctx->res);
        else
            ad_response_error(&ctx->res, &ctx->req, 503, "service_stopping", "the service is shutting down");
        ad_response_header(&ctx->res, "Connection", "close");
        ad_response_header(&ctx->res, "Retry-After", "1");
        return http_send(ctx);
    }
    /* With an API key, /api/ answers nothing about its routes to a caller
     * without the key: 401 comes before 404 and 405. A CORS preflight carries
     * no credentials, so it gets the service's methods, whatever the path. */
    if (m == AD_OPTIONS && cfg->api_key && strncmp(url, "/api/", 5) == 0 &&
        http_authorize(ctx, &head, url) < 0) {
        ad_response_cleanup(&ctx->res);
        ad_response_init(&ctx->res);
        http_answer_options(ctx, http_all_methods());
        return http_send(ctx);
    }
    if (m != AD_OPTIONS && http_authorize(ctx, &head, url) < 0) return http_send(ctx);
    if (m != AD_OPTIONS && http_rate_limit(ctx, url) < 0) return http_send(ctx);
    if (rr == AD_ROUTE_NO_PATH) {
        ad_response_error(&ctx->res, &ctx->req, 404, "not_found", "no route for %.16s %.*s", method_name,
                          http_echo_len(url, HTTP_ECHO_PATH_BYTES), url);
        return http_send(ctx);
    }
    char allow[128];
    ad_router_allow_header(allowed, allow, sizeof(allow));
    if (m == AD_OPTIONS) {
        http_answer_options(ctx, allowed);
        return http_send(ctx);
    }
    if (!m) {
        ad_response_error(&ctx->res, &ctx->req, 501, "not_implemented",
                          "method %.16s is not implemented (%.*s allows %s)", method_name,
                          http_echo_len(url, HTTP_ECHO_PATH_BYTES), url, allow);
        ad_response_header(&ctx->res, "Allow", allow);
        return http_send(ctx);
    }
    if (rr == AD_ROUTE_NO_METHOD) {
        ad_response_error(&ctx->res, &ctx->req, 405, "method_not_allowed",
                          "%s is not allowed on %.*s (allowed: %s)", method_name,
                          http_echo_len(url, HTTP_ECHO_PATH_BYTES), url, allow);
        ad_response_header(&ctx->res, "Allow", allow);
        return http_send(ctx);
    }
    /* The route's scope is known before its body: a caller without it
     * uploads nothing. Whether it sees the agent is decided at dispatch,
     * after the body checks, so that another's agent and a missing one get
     * the same answers in the same order. */
    if (auth_check_scope(&ctx->req, ctx->route->scope, &ctx->res) < 0) return http_send(ctx);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, http_collect_query, ctx);
    if (ctx->bad_query) {
        if (*ctx->bad_query)
            ad_response_error(&ctx->res, &ctx->req, 400, "invalid_query",
                              "query parameter '%s' is not valid UTF-8", ctx->bad_query);
        else
            ad_response_error(&ctx->res, &ctx->req, 400, "invalid_query",
                              "a query parameter name is not valid UTF-8");
        return http_send(ctx);
    }
    if (m == AD_POST) {
        if (head.idempotency_key > 1) {
            ad_response_error(&ctx->res, &ctx->req, 400, "invalid_idempotency_key",
                              "more than one Idempotency-Key header");
            return http_send(ctx);
        }
        ctx->idempotency_key = http_header(c, "Idempotency-Key");
        ad_err ke = {0};
        if (ctx->idempotency_key && idempotency_key_check(ctx->idempotency_key, &ke) < 0) {
            ad_response_error(&ctx->res, &ctx->req, 400, "invalid_idempotency_key", "%s", ke.msg);
            return http_send(ctx);
        }
    }
    if (http_inference_slot(ctx) < 0) return http_send(ctx);

    /* One number per route: the whole body, JSON framing included. */
    if (ctx->route->body_limit == AD_BODY_TRAINING) {
        ctx->body_limit = (size_t)cfg->max_training_bytes;
        ctx->limit_key = "max_training_bytes";
    } else {
        ctx->body_limit = (size_t)cfg->max_body_bytes;
        ctx->limit_key = "max_body_bytes";
    }
    const char *cl = http_header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = http_header(c, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    int has_body = (cl && strcmp(cl, "0") != 0) || te;
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (*end == '\0' && n > ctx->body_limit) {
            char msg[160];
            snprintf(msg, sizeof(msg), "request body of %llu bytes exceeds the limit of %zu bytes (%s)", n,
                     ctx->body_limit, ctx->limit_key);
            return http_fail(ctx, 413, "payload_too_large", msg);
        }
    }
    if (has_body && (m == AD_POST || m == AD_PUT || m == AD_PATCH) &&
        !content_type_is_json(http_header(c, MHD_HTTP_HEADER_CONTENT_TYPE)))
        return http_fail(ctx, 415, "unsupported_media_type",
                         "request body must be JSON (Content-Type: application/json)");
    return MHD_YES;
}

/* Reports where a JSON body stopped parsing: offset, line and column. */
static void http_json_error(http_ctx *ctx, const char *end)
{
    const char *body = ctx->body.data;
    size_t off = end && end >= body ? (size_t)(end - body) : 0;
    if (off > ctx->body.len) off = ctx->body.len;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off; i++) {
        if (body[i] == '\n') line++, col = 1;
        else col++;
    }
    ad_response_error(&ctx->res, &ctx->req, 400, "invalid_json",
                      "malformed JSON at line %zu, column %zu (byte %zu)", line, col, off);
}

/* cJSON decodes \u0000 into a NUL that would silently cut every C string
 * after it: such a body is refused before parsing. */
static int http_body_has_nul_escape(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0) return 1;
        i++; /* skip the escaped character, so "\\\\u0000" is not taken for one */
    }
    return 0;
}

/* Moves the completed response into ctx->res; caller holds ctx->lock. */
static void http_take_pending(http_ctx *ctx)
{
    ad_response_cleanup(&ctx->res);
    ctx->res = ctx->pending;
    ad_response_init(&ctx->pending);
}

static enum MHD_Result http_dispatch(http_ctx *ctx)
{
    if (ctx->too_large) {
        char msg[160];
        snprintf(msg, sizeof(msg), "request body exceeds the limit of %zu bytes (%s)", ctx->body_limit,
                 ctx->limit_key);
        return http_fail(ctx, 413, "payload_too_large", msg);
    }
    ctx->req.body = ctx->body.data ? ctx->body.data : "";
    ctx->req.body_len = ctx->body.len;
    if (ctx->body.len > 0 && (memchr(ctx->body.data, 0, ctx->body.len) ||
                              http_body_has_nul_escape(ctx->body.data, ctx->body.len)))
        return http_fail(ctx, 400, "invalid_json", "JSON must not contain NUL characters (raw or \\u0000)");
    if (ctx->body.len > 0) {
        const char *end = NULL;
        ctx->req.json = cJSON_ParseWithLengthOpts(ctx->body.data, ctx->body.len, &end, 0);
        if (!ctx->req.json) {
            http_json_error(ctx, end);
            return http_send(ctx);
        }
        if (!cJSON_IsObject(ctx->req.json))
            return http_fail(ctx, 400, "invalid_body", "request body must be a JSON object");
        /* One check for every text field of every route: cJSON keeps any
         * byte it is given, and a handler must never store or echo one that
         * is not UTF-8. */
        ad_err e = {0};
        if (ad_json_check_utf8(ctx->req.json, &e) < 0) return http_fail(ctx, 400, "invalid_utf8", e.msg);
    }
    if (auth_check_agent(&ctx->req, ctx->route->pattern, &ctx->res) < 0) return http_send(ctx);
    if (ctx->idempotency_key && !idempotency_begin(&ctx->req, &ctx->res, ctx->idempotency_key, &ctx->idem))
        return http_send(ctx);
    ctx->route->handler(&ctx->req, &ctx->res);
    if (!ctx->res.deferred) return http_send(ctx);

    pthread_mutex_lock(&ctx->lock);
    ctx->deferred = 1;
    enum MHD_Result ok = MHD_YES;
    if (ctx->completed) {
        http_take_pending(ctx);
        ok = http_send(ctx);
    } else {
        MHD_suspend_connection(ctx->conn);
        ctx->suspended = 1;
        if (ctx->hangup_fn) {
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(ctx->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            if (ci) ctx->hangup_ticket = hangup_watch(ci->connect_fd, ctx->hangup_fn, ctx->hangup_ud);
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    return ok;
}

/* The request an ad_async handle belongs to. */
static http_ctx *http_ctx_of(ad_async *a)
{
    return (http_ctx *)((char *)a - offsetof(http_ctx, async));
}

static void http_async_on_hangup(ad_async *a, void (*fn)(void *ud), void *ud)
{
    http_ctx *ctx = http_ctx_of(a);
    ctx->hangup_fn = fn;
    ctx->hangup_ud = ud;
}

static void http_async_complete(ad_async *a, ad_response *res)
{
    http_ctx *ctx = http_ctx_of(a);
    /* The connection's own thread may still be inside the handler, using
     * ctx->res: the answer waits in `pending` until that thread takes it. */
    pthread_mutex_lock(&ctx->lock);
    /* After this, the hang-up callback is neither running nor going to run,
     * so the caller may free what it points to. */
    hangup_forget(ctx->hangup_ticket);
    ctx->hangup_ticket = 0;
    ctx->hangup_fn = NULL;
    ctx->pending = *res;
    ctx->pending.deferred = 0;
    ad_response_init(res);
    ctx->completed = 1;
    struct MHD_Connection *resume = ctx->suspended ? ctx->conn : NULL;
    ctx->suspended = 0;
    pthread_mutex_unlock(&ctx->lock);
    /* Resume last, with no lock held and ctx no longer touched: once resumed,
     * the connection may complete (a client that left) and free ctx at once.
     * Until then it cannot, being suspended. */
    if (resume) MHD_resume_connection(resume);
}

static const ad_async_ops http_async_ops = {http_async_on_hangup, http_async_complete};

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_size, void **con_cls)
{
    (void)version;
    http_ctx *ctx = *con_cls;
    if (!ctx) {
        ad_http *h = cls;
        ctx = ad_calloc(1, sizeof(*ctx));
        ctx->async.ops = &http_async_ops;
        ctx->http = h;
        ctx->conn = conn;
        ctx->start_ns = ad_clock_mono_ns();
        ad_buf_init(&ctx->body);
        ad_response_init(&ctx->res);
        ad_response_init(&ctx->pending);
        pthread_mutex_init(&ctx->lock, NULL);
        atomic_fetch_add(&h->active, 1);
        *con_cls = ctx;
        /* The headers are in: their deadline is met. */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        http_conn *hc = ci ? ci->socket_context : NULL;
        if (hc) header_deadline_pause(hc->header_ticket);
        return http_begin(ctx, url, method);
    }
    if (ctx->queued) {
        /* An early answer (413, 415, 404...) is out; drop the rest of the body. */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!ctx->too_large) {
            if (ctx->body.len + *upload_size > ctx->body_limit) {
                ctx->too_large = 1;
                ad_buf_cleanup(&ctx->body);
            } else {
                ad_buf_append(&ctx->body, upload_data, *upload_size);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (ctx->deferred) {
        pthread_mutex_lock(&ctx->lock);
        enum MHD_Result ok = MHD_YES;
        if (ctx->completed && !ctx->queued) {
            http_take_pending(ctx);
            ok = http_send(ctx);
        }
        pthread_mutex_unlock(&ctx->lock);
        return ok;
    }
    return http_dispatch(ctx);
}

static void http_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                            enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        http_conn *hc = ad_calloc(1, sizeof(*hc));
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) hc->header_ticket = header_deadline_watch(ci->connect_fd);
        *socket_context = hc;
    } else {
        http_conn *hc = *socket_context;
        if (!hc) return;
        header_deadline_forget(hc->header_ticket);
        free(hc);
        *socket_context = NULL;
    }
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    ad_http *h = cls;
    http_ctx *ctx = *con_cls;
    if (!ctx) return;
    *con_cls = NULL;
    /* A keep-alive connection's next request has the same bound on its
     * headers (the wait for it counts); a closing one is disarmed at close. */
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        http_conn *hc = ci ? ci->socket_context : NULL;
        if (hc) header_deadline_rearm(hc->header_ticket);
    }
    size_t slot = ctx->route ? (size_t)(ctx->route - ad_routes) : series_http_unmatched();
    if (ctx->queued) series_http_done(slot, ad_method_name(ctx->req.method), ctx->status_sent, ctx->start_ns);
    else series_http_aborted(slot, ad_method_name(ctx->req.method));
    if (ad_log_enabled(AD_LOG_INFO)) {
        ad_buf f;
        ad_buf_init(&f);
        ad_buf_puts(&f, "\"msg\":\"request\",\"request_id\":");
        ad_buf_json_string(&f, ctx->request_id, strlen(ctx->request_id));
        ad_buf_printf(&f, ",\"method\":\"%s\",\"path\":", ad_method_name(ctx->req.method));
        const char *path = ctx->path ? ctx->path : "";
        ad_buf_json_string(&f, path, strlen(path) > 256 ? 256 : strlen(path));
        ad_buf_printf(&f, ",\"status\":%d,\"duration_ms\":%lld,\"bytes\":%zu", ctx->status_sent,
                      (long long)((ad_clock_mono_ns() - ctx->start_ns) / 1000000), ctx->bytes_sent);
        char who[48];
        ad_buf_printf(&f, ",\"caller\":\"%s\"", ad_principal_label(&ctx->principal, who, sizeof(who)));
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) ad_buf_printf(&f, ",\"aborted\":%d", (int)toe);
        ad_log_fields(AD_LOG_INFO, &f);
        ad_buf_cleanup(&f);
    }
    hangup_forget(ctx->hangup_ticket);
    /* Whatever way the request ended (answered, client gone, stream over). */
    idempotency_abandon(&ctx->idem);
    if (ctx->inference_slot) limits_inference_leave(h->limits, ctx->caller);
    if (ctx->sse) sse_finished(ctx->sse, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    cJSON_Delete(ctx->req.json);
    ad_principal_cleanup(&ctx->principal);
    ad_response_cleanup(&ctx->res);
    ad_response_cleanup(&ctx->pending);
    ad_buf_cleanup(&ctx->body);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx->path);
    free(ctx->scratch);
    free(ctx);
    atomic_fetch_sub(&h->active, 1);
}

static int http_hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decoding in place that leaves %00 encoded: a NUL would cut the
 * path short and reach another route or agent. */
static size_t http_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (*r == '%' && (hi = http_hex(r[1])) >= 0 && (lo = http_hex(r[2])) >= 0 && (hi | lo)) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    ad_buf msg;
    ad_buf_init(&msg);
    ad_buf_vprintf(&msg, fmt, ap);
    while (msg.len && msg.data[msg.len - 1] == '\n') msg.data[--msg.len] = '\0';
    ad_log(AD_LOG_DEBUG, "libmicrohttpd: %s", msg.data ? msg.data : "");
    ad_buf_cleanup(&msg);
}

/* A libmicrohttpd panic is fatal (MHD marks what follows unreachable); the
 * handler only makes sure the reason and the batched log lines reach stderr. */
static void http_mhd_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    (void)cls;
    ad_log(AD_LOG_ERROR, "libmicrohttpd fatal error at %s:%u: %s", file ? file : "?", line,
           reason ? reason : "");
    ad_log_stop_async();
    abort();
}

/* Opens the listening socket. Without SO_REUSEPORT (which libmicrohttpd's
 * address-reuse option sets), a second agentd cannot bind a port in use and
 * share its connections; SO_REUSEADDR only lets a restart bind over
 * connections of the previous run still in TIME_WAIT. */
static int http_listen(const ad_config *cfg, ad_err *e)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->bind, &addr.sin_addr) != 1)
        return ad_err_set(e, AD_EINVAL, "bind: '%s' is not an IPv4 address", cfg->bind);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return ad_err_set(e, AD_EIO, "cannot create the listening socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int err = errno;
        close(fd);
        if (err == EADDRINUSE) return ad_err_set(e, AD_ECONFLICT, "port %d is already in use", cfg->port);
        if (err == EADDRNOTAVAIL)
            return ad_err_set(e, AD_EIO, "cannot listen on %s:%d: the address is not one of this machine's",
                              cfg->bind, cfg->port);
        return ad_err_set(e, AD_EIO, "cannot listen on %s:%d: %s", cfg->bind, cfg->port, strerror(err));
    }
    if (listen(fd, 1024) < 0) {
        int err = errno;
        close(fd);
        if (err == EADDRINUSE) return ad_err_set(e, AD_ECONFLICT, "port %d is already in use", cfg->port);
        return ad_err_set(e, AD_EIO, "cannot listen on %s:%d: %s", cfg->bind, cfg->port, strerror(err));
    }
    return fd;
}

int http_start(ad_http **out, const ad_app *app, limits *lim, ad_err *e)
{
    MHD_set_panic_func(http_mhd_panic, NULL);
    const ad_config *cfg = app->cfg;
    int fd = http_listen(cfg, e);
    if (fd < 0) return fd;
    if (header_deadline_start(cfg->header_timeout_s * 1000) < 0) {
        close(fd);
        return ad_err_set(e, AD_EIO, "cannot start the header deadline watchdog");
    }

    /* The HTTP series' route labels are the table's patterns, never a path. */
    const char *patterns[SERIES_MAX_ROUTES], *methods[SERIES_MAX_ROUTES];
    ad_assert(ad_nroutes < SERIES_MAX_ROUTES);
    for (size_t i = 0; i < ad_nroutes; i++)
        patterns[i] = ad_routes[i].pattern, methods[i] = ad_method_name(ad_routes[i].method);
    series_http_init(patterns, methods, ad_nroutes);

    ad_http *h = ad_calloc(1, sizeof(*h));
    h->app = app;
    h->limits = lim;
    struct sockaddr_in bound;
    socklen_t bound_len = sizeof(bound);
    h->port = getsockname(fd, (struct sockaddr *)&bound, &bound_len) == 0 ? ntohs(bound.sin_port)
                                                                           : (uint16_t)cfg->port;
    if (getrandom(&h->id_prefix, sizeof(h->id_prefix), 0) != sizeof(h->id_prefix))
        h->id_prefix = (uint32_t)getpid();
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, http_access, h, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->connection_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->connection_limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->per_ip_connection_limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)24 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, h, MHD_OPTION_NOTIFY_CONNECTION, http_connection, h,
        MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, NULL, MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log,
        NULL, MHD_OPTION_END);
    if (!h->daemon) {
        /* Not close(fd): libmicrohttpd 0.9.75 closes the socket it was given
         * on most of its failure paths, and closing it again could close a
         * descriptor another thread (workers, logger) has just opened under
         * the same number. Where it does not, start-up ends right after. */
        free(h);
        header_deadline_stop();
        return ad_err_set(e, AD_EIO, "cannot start the HTTP server on %s:%d", cfg->bind, cfg->port);
    }
    *out = h;
    return 0;
}

void http_limits_stats(const ad_http *h, limits_stats *out)
{
    limits_get_stats(h->limits, out);
}

uint16_t http_port(const ad_http *h)
{
    return h->port;
}

int http_active_requests(const ad_http *h)
{
    return atomic_load(&h->active);
}

void http_quiesce(ad_http *h)
{
    /* Not MHD_quiesce_daemon: in libmicrohttpd 0.9.75 it races with the pool
     * workers over the listen socket's epoll registration and can abort the
     * process (an open MHD defect). The listener stays open until http_stop,
     * but every request that arrives from now on is answered 503. */
    atomic_store(&h->stopping, 1);
}

int http_drain(ad_http *h, int64_t deadline_mono_ms)
{
    while (atomic_load(&h->active) > 0 && ad_clock_mono_ms() < deadline_mono_ms) usleep(10 * 1000);
    return atomic_load(&h->active);
}

void http_stop(ad_http *h)
{
    if (!h) return;
    MHD_stop_daemon(h->daemon);
    header_deadline_stop();
    free(h);
}
