/* Issue 12: the dashboard's page and files, served by the real binary from
 * what the build embedded (tools/embed_assets.c): content types, the
 * security headers, ETag and 304, HEAD, 404, and no token needed for them. */
#include "tests/e2e/harness.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *e2e_dashboard_suite(void);

#define DASHBOARD_CSP                                                                              \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* FNV-1a 64 over the bytes received, as the generator computed it. */
static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void assert_header(const e2e_response *r, const char *name, const char *want)
{
    char *v = e2e_header(r, name);
    ck_assert_msg(v != NULL, "no %s header", name);
    ck_assert_str_eq(v, want);
    free(v);
}

/* The headers every page file carries, and its ETag (malloc'ed). */
static char *assert_page_headers(const e2e_response *r)
{
    assert_header(r, "Cache-Control", "no-cache");
    assert_header(r, "X-Content-Type-Options", "nosniff");
    assert_header(r, "Referrer-Policy", "no-referrer");
    assert_header(r, "Content-Security-Policy", DASHBOARD_CSP);
    char *etag = e2e_header(r, "ETag");
    ck_assert_ptr_nonnull(etag);
    ck_assert_int_eq((int)strlen(etag), 18);
    ck_assert_int_eq(etag[0], '"');
    ck_assert_int_eq(etag[17], '"');
    return etag;
}

static const char *content_type_for(const char *name)
{
    const char *dot = strrchr(name, '.');
    ck_assert_ptr_nonnull(dot);
    if (strcmp(dot, ".js") == 0) return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0) return "text/css; charset=utf-8";
    if (strcmp(dot, ".svg") == 0) return "image/svg+xml";
    ck_abort_msg("the page references %s, of no known type", name);
    return NULL;
}

START_TEST(test_index_is_html_with_csp_and_etag)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    e2e_response r = e2e_get(&s, "/");
    ck_assert_int_eq(r.status, 200);
    assert_header(&r, "Content-Type", "text/html; charset=utf-8");
    char *etag = assert_page_headers(&r);
    ck_assert_ptr_nonnull(strstr(r.body, "<!doctype html>"));
    ck_assert_ptr_nonnull(strstr(r.body, "<script type=\"module\" src=\"/assets/app.js\">"));
    /* The tag is the hash of the bytes, so a changed page is fetched again. */
    char want[32];
    snprintf(want, sizeof(want), "\"%016llx\"", (unsigned long long)fnv1a(r.body, r.body_len));
    ck_assert_str_eq(etag, want);
    free(etag);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_if_none_match_is_304_without_body)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    e2e_response r = e2e_get(&s, "/assets/app.css");
    ck_assert_int_eq(r.status, 200);
    char *etag = e2e_header(&r, "ETag");
    ck_assert_ptr_nonnull(etag);
    e2e_response_free(&r);

    /* The tag itself, in a list, weak, and "*" all match (RFC 9110 13.1.2). */
    char *forms[] = {e2e_fmt("If-None-Match: %s", etag),
                     e2e_fmt("If-None-Match: \"0000000000000000\", %s", etag),
                     e2e_fmt("If-None-Match: W/%s", etag), e2e_fmt("If-None-Match: *")};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        const char *h[] = {forms[i], NULL};
        r = e2e_request(&s, "GET", "/assets/app.css", NULL, h);
        ck_assert_msg(r.status == 304, "%s: %ld", forms[i], r.status);
        ck_assert_int_eq((int)r.body_len, 0);
        char *again = assert_page_headers(&r);
        ck_assert_str_eq(again, etag);
        free(again);
        e2e_response_free(&r);
        free(forms[i]);
    }
    /* Another tag (an older page) gets the file. */
    const char *stale[] = {"If-None-Match: \"0123456789abcdef\"", NULL};
    r = e2e_request(&s, "GET", "/assets/app.css", NULL, stale);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_gt((int)r.body_len, 0);
    e2e_response_free(&r);
    /* The page's own tag does not match a file's. */
    r = e2e_get(&s, "/");
    char *page_etag = e2e_header(&r, "ETag");
    ck_assert_str_ne(page_etag, etag);
    e2e_response_free(&r);
    char *h304 = e2e_fmt("If-None-Match: %s", page_etag);
    const char *h[] = {h304, NULL};
    r = e2e_request(&s, "GET", "/", NULL, h);
    ck_assert_int_eq(r.status, 304);
    ck_assert_int_eq((int)r.body_len, 0);
    e2e_response_free(&r);
    free(h304);
    free(page_etag);
    free(etag);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* Adds to `names` (up to `cap`) every asset `text` refers to: "/assets/x"
 * in the page, and "./x.js" imports in a module. */
static size_t collect_refs(const char *text, char names[][64], size_t n, size_t cap)
{
    static const char *const marks[] = {"/assets/", "from './", "import('./"};
    for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++) {
        for (const char *p = strstr(text, marks[m]); p; p = strstr(p + 1, marks[m])) {
            const char *start = p + strlen(marks[m]);
            size_t len = strcspn(start, "\"')");
            ck_assert_int_lt((int)len, 64);
            char name[64];
            memcpy(name, start, len);
            name[len] = '\0';
            int seen = 0;
            for (size_t i = 0; i < n && !seen; i++)
                seen = strcmp(names[i], name) == 0;
            if (seen) continue;
            ck_assert_int_lt((int)n, (int)cap);
            memcpy(names[n++], name, len + 1);
        }
    }
    return n;
}

START_TEST(test_every_referenced_asset_is_served)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    e2e_response r = e2e_get(&s, "/");
    ck_assert_int_eq(r.status, 200);
    char names[64][64];
    size_t n = collect_refs(r.body, names, 0, 64);
    e2e_response_free(&r);
    ck_assert_int_ge((int)n, 3); /* the stylesheet, the icon, the entry module */
    size_t modules = 0;
    for (size_t i = 0; i < n; i++) {
        char *path = e2e_fmt("/assets/%s", names[i]);
        r = e2e_get(&s, path);
        ck_assert_msg(r.status == 200, "%s: %ld", path, r.status);
        ck_assert_int_gt((int)r.body_len, 0);
        char *ct = e2e_header(&r, "Content-Type");
        ck_assert_str_eq(ct, content_type_for(names[i]));
        free(ct);
        free(assert_page_headers(&r));
        /* A module's imports are part of the page too. */
        if (strstr(names[i], ".js")) {
            modules++;
            n = collect_refs(r.body, names, n, 64);
        }
        e2e_response_free(&r);
        free(path);
    }
    ck_assert_int_ge((int)modules, 5);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_unknown_asset_is_404)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    /* Files of web/ that are no part of the page are not built in either. */
    static const char *const paths[] = {"/assets/nope.js", "/assets/assets.h",
                                        "/assets/package.json"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        e2e_response r = e2e_get(&s, paths[i]);
        e2e_assert_error(&r, 404, "not_found", "no dashboard file named", paths[i]);
        e2e_response_free(&r);
    }
    /* A name is one segment: an encoded "../" is no way out of the table. */
    e2e_response r = e2e_get(&s, "/assets/%2e%2e%2fMakefile");
    e2e_assert_error(&r, 404, "not_found", NULL, "an encoded ../");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_head_gives_headers_without_body)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    static const char *const paths[] = {"/", "/assets/app.js"};
    for (size_t i = 0; i < 2; i++) {
        e2e_response g = e2e_get(&s, paths[i]);
        e2e_response r = e2e_request(&s, "HEAD", paths[i], NULL, NULL);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq((int)r.body_len, 0);
        char *etag = assert_page_headers(&r), *getag = e2e_header(&g, "ETag");
        ck_assert_str_eq(etag, getag);
        char *len = e2e_header(&r, "Content-Length");
        ck_assert_ptr_nonnull(len);
        ck_assert_int_eq(atoi(len), (int)g.body_len);
        free(len);
        free(etag);
        free(getag);
        e2e_response_free(&r);
        e2e_response_free(&g);
    }
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_page_needs_no_token_when_auth_is_on)
{
    e2e_server s;
    const char *env[] = {"AGENTD_API_KEY=dashboard-admin-key-0123456789", NULL};
    e2e_start(&s, NULL, env);
    e2e_response r = e2e_get(&s, "/api/v1/agents");
    ck_assert_int_eq(r.status, 401);
    e2e_response_free(&r);
    /* The page holds no data; it asks for the token the API wants. */
    r = e2e_get(&s, "/");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "API token"));
    e2e_response_free(&r);
    r = e2e_get(&s, "/assets/api.js");
    ck_assert_int_eq(r.status, 200);
    /* The token lives in sessionStorage and travels as a header only. */
    ck_assert_ptr_nonnull(strstr(r.body, "sessionStorage"));
    ck_assert_ptr_nonnull(strstr(r.body, "Authorization"));
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

Suite *e2e_dashboard_suite(void)
{
    Suite *s = suite_create("e2e_dashboard");
    TCase *tc = tcase_create("dashboard");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_index_is_html_with_csp_and_etag);
    tcase_add_test(tc, test_if_none_match_is_304_without_body);
    tcase_add_test(tc, test_every_referenced_asset_is_served);
    tcase_add_test(tc, test_unknown_asset_is_404);
    tcase_add_test(tc, test_head_gives_headers_without_body);
    tcase_add_test(tc, test_page_needs_no_token_when_auth_is_on);
    suite_add_tcase(s, tc);
    return s;
}
