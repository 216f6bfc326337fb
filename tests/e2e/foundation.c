/* Issue 2: the service foundation, driven over HTTP against the real binary. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "tests/e2e/harness.h"

Suite *e2e_foundation_suite(void);

START_TEST(test_health_and_config)
{
    e2e_server s;
    /* The key turns the model lookup on: it goes to a closed loopback port, never out. */
    const char *env[] = {"AGENTD_API_KEY=", "GEMINI_API_KEY=sekrit-gemini-key-123",
                         "GEMINI_BASE_URL=http://127.0.0.1:9", NULL};
    e2e_start(&s, NULL, env);
    e2e_response r = e2e_get(&s, "/health");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "healthy");
    ck_assert_ptr_nonnull(e2e_json_str(r.json, "version"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(r.json, "uptime_s"));
    const char *ts = e2e_json_str(r.json, "timestamp");
    ck_assert_int_eq((int)strlen(ts), 24);
    ck_assert_int_eq(ts[23], 'Z');
    cJSON *checks = cJSON_GetObjectItem(r.json, "checks");
    ck_assert_str_eq(e2e_json_str(cJSON_GetObjectItem(checks, "database"), "status"), "ok");
    ck_assert_str_eq(e2e_json_str(cJSON_GetObjectItem(checks, "workers"), "status"), "ok");
    e2e_response_free(&r);

    r = e2e_get(&s, "/api/v1/config");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(e2e_json_str(r.json, "gemini_api_key"), "set");
    ck_assert_str_eq(e2e_json_str(r.json, "api_key"), "unset");
    ck_assert_ptr_null(strstr(r.body, "sekrit"));
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(r.json, "max_body_bytes")), 1 << 20);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    ck_assert_int_eq(e2e_log_count(&s, "sekrit"), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_health_unhealthy_when_database_unreadable)
{
    if (e2e_skip_on_pg("replaces the SQLite file by garbage")) return;
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    char cmd[1200];
    /* Replace the database file under the running server by garbage. */
    snprintf(cmd, sizeof(cmd), "rm -f %s/agentd.db-wal %s/agentd.db-shm; head -c 65536 /dev/urandom > %s/agentd.db",
             s.data_dir, s.data_dir, s.data_dir);
    ck_assert_int_eq(system(cmd), 0);
    /* New connections (a fresh server thread may open one) or cached ones
     * must both report it; retry a few requests to reach every thread. */
    int saw_503 = 0;
    for (int i = 0; i < 20 && !saw_503; i++) {
        e2e_response r = e2e_get(&s, "/health");
        if (r.status == 503) {
            saw_503 = 1;
            ck_assert_str_eq(e2e_json_str(r.json, "status"), "unhealthy");
        }
        e2e_response_free(&r);
    }
    ck_assert_msg(saw_503, "health stayed 200 with a corrupt database");
    e2e_kill(&s);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_errors_404_405_413_415_400)
{
    e2e_server s;
    const char *args[] = {"--max-body-bytes", "2048", NULL};
    e2e_start(&s, args, NULL);
    e2e_response r = e2e_get(&s, "/nope");
    e2e_assert_error(&r, 404, "not_found", NULL, "not_found");
    e2e_response_free(&r);

    r = e2e_request(&s, "PUT", "/health", "{}", NULL);
    e2e_assert_error(&r, 405, "method_not_allowed", NULL, "method_not_allowed");
    char *allow = e2e_header(&r, "Allow");
    ck_assert_ptr_nonnull(allow);
    ck_assert_ptr_nonnull(strstr(allow, "GET"));
    free(allow);
    e2e_response_free(&r);

    r = e2e_request(&s, "PATCH", "/api/v1/agents/x", "{}", NULL);
    e2e_assert_error(&r, 405, "method_not_allowed", NULL, "method_not_allowed");
    allow = e2e_header(&r, "Allow");
    ck_assert_ptr_nonnull(strstr(allow, "DELETE"));
    free(allow);
    e2e_response_free(&r);

    char big[4096];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "{\"x\":\"", 6);
    big[sizeof(big) - 3] = '"';
    big[sizeof(big) - 2] = '}';
    r = e2e_post(&s, "/api/v1/agents/x/evaluate", big);
    e2e_assert_error(&r, 413, "payload_too_large", NULL, "payload_too_large");
    e2e_response_free(&r);

    const char *text_ct[] = {"Content-Type: text/plain", NULL};
    r = e2e_request(&s, "POST", "/api/v1/agents", "{\"user_id\":\"a\"}", text_ct);
    e2e_assert_error(&r, 415, "unsupported_media_type", NULL, "unsupported_media_type");
    e2e_response_free(&r);

    r = e2e_post(&s, "/api/v1/agents", "{\"user_id\": \n  \"a\",, }");
    e2e_assert_error(&r, 400, "invalid_json", NULL, "invalid_json");
    ck_assert_ptr_nonnull(strstr(e2e_json_str(r.json, "error"), "line 2"));
    e2e_response_free(&r);

    r = e2e_post(&s, "/api/v1/agents", "[1,2]");
    e2e_assert_error(&r, 400, "invalid_body", NULL, "invalid_body");
    e2e_response_free(&r);

    /* The server still answers after all of that. */
    r = e2e_get(&s, "/health");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_chunked_body_over_limit_is_413)
{
    e2e_server s;
    const char *args[] = {"--max-body-bytes", "1024", NULL};
    e2e_start(&s, args, NULL);
    int fd = e2e_connect(&s);
    const char *head = "POST /api/v1/agents/x/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    char chunk[600];
    memset(chunk, ' ', sizeof(chunk));
    for (int i = 0; i < 4; i++) {
        char size[16];
        snprintf(size, sizeof(size), "%zx\r\n", sizeof(chunk));
        if (write(fd, size, strlen(size)) < 0 || write(fd, chunk, sizeof(chunk)) < 0 ||
            write(fd, "\r\n", 2) < 0)
            break;
    }
    if (write(fd, "0\r\n\r\n", 5) < 0) { /* the server may have answered and closed */ }
    char *resp = e2e_read_all(fd, 5000);
    close(fd);
    ck_assert_msg(strstr(resp, " 413 ") != NULL, "response: %s", resp);
    ck_assert_ptr_nonnull(strstr(resp, "payload_too_large"));
    free(resp);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* A raw NUL byte inside a JSON string would cut the C string short after
 * cJSON accepts it: the body is refused and nothing is created. */
START_TEST(test_raw_nul_in_body_is_400)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    static const char body[] = "{\"user_id\":\"nul\",\"training_data\":\"kept\0secret tail\"}";
    size_t n = sizeof(body) - 1;
    char head[256];
    snprintf(head, sizeof(head),
             "POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n", n);
    int fd = e2e_connect(&s);
    ck_assert_int_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    ck_assert_int_eq(write(fd, body, n), (ssize_t)n);
    char *resp = e2e_read_all(fd, 5000);
    close(fd);
    ck_assert_msg(strstr(resp, " 400 ") && strstr(resp, "invalid_json"), "response: %s", resp);
    free(resp);
    e2e_response r = e2e_get(&s, "/api/v1/agents/nul/status");
    ck_assert_int_eq(r.status, 404);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_request_id_echo_and_generate)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    const char *h[] = {"X-Request-Id: my-trace-42", NULL};
    e2e_response r = e2e_request(&s, "GET", "/nope", NULL, h);
    char *rid = e2e_header(&r, "X-Request-Id");
    ck_assert_str_eq(rid, "my-trace-42");
    ck_assert_str_eq(e2e_json_str(r.json, "request_id"), "my-trace-42");
    free(rid);
    e2e_response_free(&r);
    const char *bad[] = {"X-Request-Id: has space <script>", NULL};
    r = e2e_request(&s, "GET", "/health", NULL, bad);
    rid = e2e_header(&r, "X-Request-Id");
    ck_assert_ptr_nonnull(rid);
    ck_assert_ptr_null(strstr(rid, "script"));
    free(rid);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    /* One JSON access-log line per request, with the fields the issue names. */
    ck_assert_int_eq(e2e_log_count(&s, "\"msg\":\"request\""), 2);
    ck_assert_int_eq(e2e_log_count(&s, "\"request_id\":\"my-trace-42\",\"method\":\"GET\",\"path\":\"/nope\",\"status\":404,\"duration_ms\":"), 1);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_cors_preflight_and_origins)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    const char *pre[] = {"Origin: http://app.example", "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: content-type", NULL};
    e2e_response r = e2e_request(&s, "OPTIONS", "/api/v1/agents", NULL, pre);
    ck_assert_int_eq(r.status, 204);
    char *v = e2e_header(&r, "Access-Control-Allow-Origin");
    ck_assert_str_eq(v, "*");
    free(v);
    v = e2e_header(&r, "Access-Control-Allow-Methods");
    ck_assert_ptr_nonnull(strstr(v, "POST"));
    ck_assert_ptr_nonnull(strstr(v, "GET"));
    free(v);
    v = e2e_header(&r, "Access-Control-Allow-Headers");
    ck_assert_ptr_nonnull(strstr(v, "Content-Type"));
    ck_assert_ptr_nonnull(strstr(v, "Authorization"));
    free(v);
    e2e_response_free(&r);
    r = e2e_request(&s, "OPTIONS", "/nowhere", NULL, pre);
    ck_assert_int_eq(r.status, 404);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);

    const char *env[] = {"AGENTD_CORS_ORIGINS=http://a.example, http://b.example", NULL};
    e2e_start(&s, NULL, env);
    const char *ok[] = {"Origin: http://b.example", NULL};
    r = e2e_request(&s, "GET", "/health", NULL, ok);
    v = e2e_header(&r, "Access-Control-Allow-Origin");
    ck_assert_str_eq(v, "http://b.example");
    free(v);
    v = e2e_header(&r, "Vary");
    ck_assert_str_eq(v, "Origin");
    free(v);
    e2e_response_free(&r);
    const char *no[] = {"Origin: http://evil.example", NULL};
    r = e2e_request(&s, "GET", "/health", NULL, no);
    ck_assert_ptr_null(e2e_header(&r, "Access-Control-Allow-Origin"));
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_api_key_auth)
{
    e2e_server s;
    const char *env[] = {"AGENTD_API_KEY=topsecret-key", NULL};
    e2e_start(&s, NULL, env);
    e2e_response r = e2e_get(&s, "/api/v1/config");
    e2e_assert_error(&r, 401, "invalid_token", NULL, "invalid_token");
    e2e_response_free(&r);
    const char *wrong[] = {"Authorization: Bearer topsecret-kez", NULL};
    r = e2e_request(&s, "GET", "/api/v1/agents", NULL, wrong);
    e2e_assert_error(&r, 401, "invalid_token", NULL, "invalid_token");
    ck_assert_ptr_null(strstr(r.body, "topsecret"));
    e2e_response_free(&r);
    const char *basic[] = {"Authorization: Basic dG9wc2VjcmV0LWtleQ==", NULL};
    r = e2e_request(&s, "GET", "/api/v1/agents", NULL, basic);
    e2e_assert_error(&r, 401, "invalid_token", NULL, "invalid_token");
    e2e_response_free(&r);
    const char *right[] = {"Authorization: Bearer topsecret-key", NULL};
    r = e2e_request(&s, "GET", "/api/v1/config", NULL, right);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(e2e_json_str(r.json, "api_key"), "set");
    ck_assert_ptr_null(strstr(r.body, "topsecret"));
    e2e_response_free(&r);
    r = e2e_get(&s, "/health");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    ck_assert_int_eq(e2e_log_count(&s, "topsecret"), 0);
    e2e_cleanup(&s);

    e2e_start(&s, NULL, NULL);
    r = e2e_get(&s, "/api/v1/agents");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_graceful_shutdown_completes_in_flight_request)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    const char *body = "{\"user_id\":\"inflight\",\"training_data\":\"Graceful shutdown keeps this request.\"}";
    char head[256];
    snprintf(head, sizeof(head),
             "POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(body));
    int fd = e2e_connect(&s);
    ck_assert_int_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    ck_assert_int_eq(write(fd, body, 10), 10);
    usleep(200 * 1000);
    kill(s.pid, SIGTERM);
    usleep(300 * 1000);
    /* The server is draining: a new request is turned away... */
    e2e_response late = e2e_get(&s, "/api/v1/config");
    ck_assert_int_eq(late.status, 503);
    ck_assert_str_eq(e2e_json_str(late.json, "code"), "service_stopping");
    e2e_response_free(&late);
    /* ...while the one in flight completes. */
    ck_assert_int_eq(write(fd, body + 10, strlen(body) - 10), (ssize_t)(strlen(body) - 10));
    char *resp = e2e_read_all(fd, 5000);
    close(fd);
    ck_assert_msg(strstr(resp, " 201 ") != NULL, "in-flight request got: %s", resp);
    free(resp);
    int status = 0;
    for (int i = 0; i < 1000 && waitpid(s.pid, &status, WNOHANG) != s.pid; i++) usleep(10000);
    s.pid = 0;
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_int_eq(e2e_log_count(&s, "\"msg\":\"stopped\""), 1);

    /* ...and nothing was lost: the agent is there after a restart. */
    e2e_restart(&s, NULL, NULL);
    e2e_response r = e2e_get(&s, "/api/v1/agents/inflight/status");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* Runs the binary with arguments and returns its exit code and stderr. */
static int run_cli(const char *args, char *out, size_t cap)
{
    const char *bin = getenv("AGENTD_BIN");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", bin && *bin ? bin : "bin/agentd", args);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_cli_config_validation)
{
    char out[8192];
    ck_assert_int_eq(run_cli("--port 70000", out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "port"));
    ck_assert_int_eq(run_cli("--workers 0", out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "workers"));
    ck_assert_int_eq(run_cli("--config /nonexistent/agentd.json", out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "/nonexistent/agentd.json"));
    ck_assert_int_eq(run_cli("--bogus-flag 1", out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "--bogus-flag"));

    char path[] = "/tmp/agentd-cfg-XXXXXX";
    int fd = mkstemp(path);
    const char *bad = "{\"port\": 9000, \"wokers\": 3}";
    ck_assert_int_eq(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    char args[256];
    snprintf(args, sizeof(args), "--config %s --check-config", path);
    ck_assert_int_eq(run_cli(args, out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "wokers"));

    /* Precedence: file < environment < flag. */
    fd = open(path, O_WRONLY | O_TRUNC);
    const char *good = "{\"port\": 9000, \"workers\": 3, \"data_dir\": \"/tmp/from-file\", \"api_key\": \"file-secret\"}";
    ck_assert_int_eq(write(fd, good, strlen(good)), (ssize_t)strlen(good));
    close(fd);
    snprintf(args, sizeof(args), "--config %s --workers 5 --check-config", path);
    setenv("AGENTD_PORT", "9100", 1);
    setenv("AGENTD_WORKERS", "4", 1);
    ck_assert_int_eq(run_cli(args, out, sizeof(out)), 0);
    unsetenv("AGENTD_PORT");
    unsetenv("AGENTD_WORKERS");
    cJSON *cfg = cJSON_Parse(out);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "port")), 9100);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "workers")), 5);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "data_dir")), "/tmp/from-file");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "api_key")), "set");
    ck_assert_ptr_null(strstr(out, "file-secret"));
    cJSON_Delete(cfg);
    unlink(path);

    ck_assert_int_eq(run_cli("--version", out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "agentd"));
    ck_assert_int_eq(run_cli("--help", out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "AGENTD_PORT"));
}
END_TEST

START_TEST(test_healthcheck_flag)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    char out[256], args[64];
    snprintf(args, sizeof(args), "--healthcheck --port %d --bind 127.0.0.1", s.port);
    ck_assert_int_eq(run_cli(args, out, sizeof(out)), 0);
    ck_assert_int_eq(e2e_stop(&s), 0);
    ck_assert_int_eq(run_cli(args, out, sizeof(out)), 1);
    e2e_cleanup(&s);
}
END_TEST

Suite *e2e_foundation_suite(void)
{
    Suite *s = suite_create("e2e_foundation");
    TCase *tc = tcase_create("foundation");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_health_and_config);
    tcase_add_test(tc, test_health_unhealthy_when_database_unreadable);
    tcase_add_test(tc, test_errors_404_405_413_415_400);
    tcase_add_test(tc, test_chunked_body_over_limit_is_413);
    tcase_add_test(tc, test_raw_nul_in_body_is_400);
    tcase_add_test(tc, test_request_id_echo_and_generate);
    tcase_add_test(tc, test_cors_preflight_and_origins);
    tcase_add_test(tc, test_api_key_auth);
    tcase_add_test(tc, test_graceful_shutdown_completes_in_flight_request);
    tcase_add_test(tc, test_cli_config_validation);
    tcase_add_test(tc, test_healthcheck_flag);
    suite_add_tcase(s, tc);
    return s;
}
