#include "handlers/dashboard.h"

#include <string.h>

#include "web/assets.h"

/* What the page may load and call: its own files and its own API, nothing
 * else (no CDN, no inline script, no framing); this is also what keeps the
 * page from any network fetch beyond agentd at run time. */
#define DASHBOARD_CSP                                                                              \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* 1 when the If-None-Match value `inm` names `etag`: a comma-separated list
 * of entity tags, weak ones (W/"...") compared weakly as RFC 9110 13.1.2
 * asks, or "*". */
static int dashboard_etag_matches(const char *inm, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p) break;
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == 1 && p[0] == '*') return 1;
        const char *tag = p;
        if (n > 2 && tag[0] == 'W' && tag[1] == '/') {
            tag += 2;
            n -= 2;
        }
        if (n == elen && memcmp(tag, etag, n) == 0) return 1;
        p = end ? end + 1 : p + strlen(p);
    }
    return 0;
}

static void dashboard_send(ad_request *req, ad_response *res, const web_asset *a)
{
    ad_response_header(res, "ETag", a->etag);
    ad_response_header(res, "Cache-Control", "no-cache");
    ad_response_header(res, "X-Content-Type-Options", "nosniff");
    ad_response_header(res, "Referrer-Policy", "no-referrer");
    ad_response_header(res, "Content-Security-Policy", DASHBOARD_CSP);
    res->content_type = a->content_type;
    if (dashboard_etag_matches(req->if_none_match, a->etag)) {
        res->status = 304;
        return;
    }
    res->status = 200;
    ad_buf_append(&res->body, a->data, a->len);
}

void handle_dashboard_index(ad_request *req, ad_response *res)
{
    const web_asset *a = web_asset_find("index.html");
    if (!a) {
        ad_response_error(res, req, 404, "not_found", "this build has no dashboard");
        return;
    }
    dashboard_send(req, res, a);
}

void handle_dashboard_asset(ad_request *req, ad_response *res)
{
    const web_asset *a = web_asset_find(req->params[0]);
    if (!a) {
        ad_response_error(res, req, 404, "not_found", "no dashboard file named '%.64s'",
                          req->params[0]);
        return;
    }
    dashboard_send(req, res, a);
}
