/* Tests server/router.c against the service's real table in server/routes.c. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "handlers/agents.h"
#include "handlers/evaluate.h"
#include "handlers/system.h"
#include "server/router.h"

Suite *server_router_suite(void);

/* One match against ad_routes with a roomy scratch buffer. */
typedef struct match {
    ad_route_result result;
    const ad_route *route;
    const char *params[AD_MAX_PARAMS];
    size_t nparams;
    char scratch[256];
    unsigned allowed;
} match;

static void route(match *m, ad_method method, const char *path)
{
    memset(m, 0, sizeof(*m));
    m->result = ad_router_match(ad_routes, ad_nroutes, method, path, &m->route, m->params,
                                &m->nparams, m->scratch, sizeof(m->scratch), &m->allowed);
}

START_TEST(test_router_literal_beats_parameter)
{
    match m;
    route(&m, AD_DELETE, "/api/v1/agents/all");
    ck_assert_int_eq(m.result, AD_ROUTE_FOUND);
    ck_assert_ptr_eq(m.route->handler, handle_agents_delete_all);
    ck_assert_uint_eq(m.nparams, 0);

    /* GET has no literal /all route, so "all" is an agent id. */
    route(&m, AD_GET, "/api/v1/agents/all");
    ck_assert_int_eq(m.result, AD_ROUTE_FOUND);
    ck_assert_ptr_eq(m.route->handler, handle_agent_get);
    ck_assert_uint_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0], "all");

    route(&m, AD_POST, "/api/v1/agents/advanced");
    ck_assert_int_eq(m.result, AD_ROUTE_FOUND);
    ck_assert_ptr_eq(m.route->handler, handle_agents_create_advanced);
}
END_TEST

START_TEST(test_router_extracts_parameters)
{
    match m;
    route(&m, AD_DELETE, "/api/v1/agents/python_expert");
    ck_assert_int_eq(m.result, AD_ROUTE_FOUND);
    ck_assert_ptr_eq(m.route->handler, handle_agent_delete);
    ck_assert_uint_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0], "python_expert");

    route(&m, AD_GET, "/api/v1/agents/a.b-c/status");
    ck_assert_int_eq(m.result, AD_ROUTE_FOUND);
    ck_assert_ptr_eq(m.route->handler, handle_agent_status);
    ck_assert_str_eq(m.params[0], "a.b-c");

    route(&m, AD_POST, "/api/v1/agents/x/evaluate");
    ck_assert_int_eq(m.result, AD_ROUTE_FOUND);
    ck_assert_ptr_eq(m.route->handler, handle_agent_evaluate);
    ck_assert_str_eq(m.params[0], "x");

    route(&m, AD_GET, "/health");
    ck_assert_int_eq(m.result, AD_ROUTE_FOUND);
    ck_assert_ptr_eq(m.route->handler, handle_health);
    ck_assert_uint_eq(m.nparams, 0);
}
END_TEST

START_TEST(test_router_two_parameters_in_order)
{
    static const ad_route table[] = {
        {AD_GET, "/a/{x}/b/{y}", NULL, AD_BODY_DEFAULT, AD_SCOPE_NONE},
    };
    const ad_route *r;
    const char *params[AD_MAX_PARAMS];
    size_t n = 0;
    char scratch[64];
    unsigned allowed;
    ck_assert_int_eq(ad_router_match(table, 1, AD_GET, "/a/first/b/second", &r, params, &n, scratch,
                                     sizeof(scratch), &allowed),
                     AD_ROUTE_FOUND);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(params[0], "first");
    ck_assert_str_eq(params[1], "second");
}
END_TEST

START_TEST(test_router_unknown_paths_are_no_path)
{
    /* "/" is a route since issue 12 (the dashboard). */
    static const char *const paths[] = {
        "",
        "/nope",
        "/api/v1/agent",
        "/api/v1/agents/x/unknown",
        "/api/v1/agents/x/status/more",
        "/healthz",
        "/HEALTH",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        match m;
        route(&m, AD_GET, paths[i]);
        ck_assert_msg(m.result == AD_ROUTE_NO_PATH, "'%s' gave %d", paths[i], m.result);
        ck_assert_ptr_null(m.route);
        ck_assert_uint_eq(m.allowed, 0);
    }
}
END_TEST

START_TEST(test_router_trailing_slash_and_empty_segments)
{
    static const char *const paths[] = {
        "/health/",
        "/api/v1/agents/",
        "/api/v1/agents/x/",
        "/api/v1/agents//status",
        "//api/v1/agents",
        "/api//v1/agents",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        match m;
        route(&m, AD_GET, paths[i]);
        ck_assert_msg(m.result == AD_ROUTE_NO_PATH, "'%s' gave %d", paths[i], m.result);
    }
}
END_TEST

START_TEST(test_router_wrong_method_reports_allowed)
{
    match m;
    route(&m, AD_PUT, "/api/v1/agents/all");
    ck_assert_int_eq(m.result, AD_ROUTE_NO_METHOD);
    ck_assert_ptr_null(m.route);
    ck_assert_uint_eq(m.allowed, AD_GET | AD_HEAD | AD_DELETE | AD_OPTIONS);

    route(&m, AD_DELETE, "/health");
    ck_assert_int_eq(m.result, AD_ROUTE_NO_METHOD);
    ck_assert_uint_eq(m.allowed, AD_GET | AD_HEAD | AD_OPTIONS);

    route(&m, AD_PATCH, "/api/v1/agents");
    ck_assert_int_eq(m.result, AD_ROUTE_NO_METHOD);
    ck_assert_uint_eq(m.allowed, AD_GET | AD_HEAD | AD_POST | AD_OPTIONS);

    route(&m, AD_GET, "/api/v1/agents/x/evaluate");
    ck_assert_int_eq(m.result, AD_ROUTE_NO_METHOD);
    ck_assert_uint_eq(m.allowed, AD_POST | AD_OPTIONS);

    /* A found route still reports the mask (the OPTIONS answer uses it). */
    route(&m, AD_GET, "/api/v1/agents/x");
    ck_assert_int_eq(m.result, AD_ROUTE_FOUND);
    ck_assert_uint_eq(m.allowed, AD_GET | AD_HEAD | AD_DELETE | AD_OPTIONS);
}
END_TEST

/* HEAD is answered by the GET route of a path, and only where GET exists. */
START_TEST(test_router_head_uses_the_get_route)
{
    match m;
    route(&m, AD_HEAD, "/api/v1/agents/x/status");
    ck_assert_int_eq(m.result, AD_ROUTE_FOUND);
    ck_assert_ptr_eq(m.route->handler, handle_agent_status);
    ck_assert_str_eq(m.params[0], "x");
    route(&m, AD_HEAD, "/api/v1/agents/x/evaluate");
    ck_assert_int_eq(m.result, AD_ROUTE_NO_METHOD);
    ck_assert_uint_eq(m.allowed, AD_POST | AD_OPTIONS);
}
END_TEST

/* An unknown method (0) matches no route but learns what the path allows,
 * so the answer can carry a non-empty Allow; an unknown path stays unknown. */
START_TEST(test_router_unknown_method_still_reports_allowed)
{
    match m;
    route(&m, (ad_method)0, "/health");
    ck_assert_int_eq(m.result, AD_ROUTE_NO_METHOD);
    ck_assert_ptr_null(m.route);
    ck_assert_uint_eq(m.allowed, AD_GET | AD_HEAD | AD_OPTIONS);
    route(&m, (ad_method)0, "/nowhere");
    ck_assert_int_eq(m.result, AD_ROUTE_NO_PATH);
    ck_assert_uint_eq(m.allowed, 0);
}
END_TEST

START_TEST(test_router_allow_header_text)
{
    char out[128];
    ad_router_allow_header(AD_GET | AD_DELETE | AD_OPTIONS, out, sizeof(out));
    ck_assert_str_eq(out, "GET, DELETE, OPTIONS");
    ad_router_allow_header(AD_OPTIONS | AD_POST, out, sizeof(out));
    ck_assert_str_eq(out, "POST, OPTIONS");
    ad_router_allow_header(AD_GET | AD_HEAD | AD_POST | AD_PUT | AD_PATCH | AD_DELETE | AD_OPTIONS,
                           out, sizeof(out));
    ck_assert_str_eq(out, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    ad_router_allow_header(0, out, sizeof(out));
    ck_assert_str_eq(out, "");
}
END_TEST

/* Regression: server/router.c ad_router_allow_header: when the next item does not fit,
 * snprintf has already written a partial ", DEL..." before the loop breaks, so
 * the header ends in a dangling separator. One-line fix: on truncation write
 * `out[used] = '\0';` before `break`. */
START_TEST(test_router_allow_header_truncates_at_whole_names)
{
    char out[6];
    ad_router_allow_header(AD_GET | AD_DELETE, out, sizeof(out));
    ck_assert_str_eq(out, "GET");
}
END_TEST

START_TEST(test_router_parameter_too_long_for_scratch_matches_nothing)
{
    const ad_route *r = (const ad_route *)1;
    const char *params[AD_MAX_PARAMS];
    size_t n = 0;
    char scratch[8];
    unsigned allowed = 99;
    /* "12345678" needs 9 bytes with its NUL. */
    ck_assert_int_eq(ad_router_match(ad_routes, ad_nroutes, AD_GET, "/api/v1/agents/12345678", &r,
                                     params, &n, scratch, sizeof(scratch), &allowed),
                     AD_ROUTE_NO_PATH);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(allowed, 0);
    /* One byte shorter fits exactly. */
    ck_assert_int_eq(ad_router_match(ad_routes, ad_nroutes, AD_GET, "/api/v1/agents/1234567", &r,
                                     params, &n, scratch, sizeof(scratch), &allowed),
                     AD_ROUTE_FOUND);
    ck_assert_str_eq(params[0], "1234567");
}
END_TEST

START_TEST(test_router_every_table_route_matches_itself)
{
    for (size_t i = 0; i < ad_nroutes; i++) {
        /* Substitute a concrete value for each parameter: p0, p1, ... */
        char path[256];
        size_t used = 0, nbraces = 0;
        for (const char *p = ad_routes[i].pattern; *p && used + 8 < sizeof(path);) {
            if (*p == '{') {
                used += (size_t)snprintf(path + used, sizeof(path) - used, "p%zu", nbraces++);
                p = strchr(p, '}') + 1;
            } else {
                path[used++] = *p++;
            }
        }
        path[used] = '\0';
        match m;
        route(&m, ad_routes[i].method, path);
        ck_assert_msg(m.result == AD_ROUTE_FOUND && m.route == &ad_routes[i], "%s %s",
                      ad_method_name(ad_routes[i].method), path);
        ck_assert_uint_eq(m.nparams, nbraces);
        for (size_t k = 0; k < nbraces; k++) {
            char want[24];
            snprintf(want, sizeof(want), "p%zu", k);
            ck_assert_str_eq(m.params[k], want);
        }
    }
}
END_TEST

Suite *server_router_suite(void)
{
    Suite *s = suite_create("server_router");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_router_literal_beats_parameter);
    tcase_add_test(tc, test_router_extracts_parameters);
    tcase_add_test(tc, test_router_two_parameters_in_order);
    tcase_add_test(tc, test_router_unknown_paths_are_no_path);
    tcase_add_test(tc, test_router_trailing_slash_and_empty_segments);
    tcase_add_test(tc, test_router_wrong_method_reports_allowed);
    tcase_add_test(tc, test_router_head_uses_the_get_route);
    tcase_add_test(tc, test_router_unknown_method_still_reports_allowed);
    tcase_add_test(tc, test_router_allow_header_text);
    tcase_add_test(tc, test_router_allow_header_truncates_at_whole_names);
    tcase_add_test(tc, test_router_parameter_too_long_for_scratch_matches_nothing);
    tcase_add_test(tc, test_router_every_table_route_matches_itself);
    suite_add_tcase(s, tc);
    return s;
}
