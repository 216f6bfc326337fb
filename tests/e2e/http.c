/* Issue 8: the HTTP layer under hostile or careless clients, and start-up
 * checks (port and data dir in use, --check-config, --healthcheck, make run),
 * driven against the real binary over real sockets. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/e2e/harness.h"

Suite *e2e_http_suite(void);

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A TCP connection to the server from source address `src` (127.0.0.x). */
static int connect_from(const e2e_server *s, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    return fd;
}

/* Sends `req` (n bytes) on a fresh connection and reads until the server
 * closes or `timeout_ms`; `*closed` says which. Returns malloc'ed text. */
static char *raw_exchange(const e2e_server *s, const char *req, size_t n, int timeout_ms, int *closed,
                          long long *elapsed_ms)
{
    int fd = e2e_connect(s);
    ck_assert_int_eq(write(fd, req, n), (ssize_t)n);
    long long t0 = now_ms();
    char *out = e2e_read_all(fd, timeout_ms);
    if (elapsed_ms) *elapsed_ms = now_ms() - t0;
    /* e2e_read_all stops on EOF or on a quiet `timeout_ms`: tell them apart. */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;
    *closed = poll(&p, 1, 0) == 1 && read(fd, &c, 1) <= 0;
    close(fd);
    return out;
}

/* Counts the status lines in a raw exchange: one per answered request. */
static int count_responses(const char *raw)
{
    int n = 0;
    for (const char *p = raw; (p = strstr(p, "HTTP/1.1 ")); p++) n++;
    return n;
}

/* The JSON body of a raw single response, parsed (NULL if not JSON). */
static cJSON *raw_json(const char *raw)
{
    const char *body = strstr(raw, "\r\n\r\n");
    return body ? cJSON_Parse(body + 4) : NULL;
}

static void assert_raw_error(const char *raw, const char *status_line, const char *code, const char *what)
{
    ck_assert_msg(strncmp(raw, status_line, strlen(status_line)) == 0, "%s: %s", what, raw);
    cJSON *j = raw_json(raw);
    ck_assert_msg(j != NULL, "%s: body is not JSON: %s", what, raw);
    ck_assert_str_eq(e2e_json_str(j, "code"), code);
    ck_assert_ptr_nonnull(e2e_json_str(j, "request_id"));
    cJSON_Delete(j);
}

/* Two Content-Length headers: a proxy that takes the last one forwards a body
 * that carries a second request. agentd must refuse the first and never
 * answer the second as a request. */
START_TEST(test_smuggling_repeated_content_length_is_400_and_closes)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    static const char *const heads[] = {
        "POST /api/v1/agents/x/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\nContent-Length: 40\r\n\r\n",
        "POST /api/v1/agents/x/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 40\r\nContent-Length: 40\r\n\r\n",
    };
    for (size_t i = 0; i < 2; i++) {
        char *req = e2e_fmt("%s{}GET /health HTTP/1.1\r\nHost: x\r\n\r\n", heads[i]);
        int closed;
        char *resp = raw_exchange(&s, req, strlen(req), 3000, &closed, NULL);
        assert_raw_error(resp, "HTTP/1.1 400", "invalid_request", "two Content-Length");
        ck_assert_msg(strstr(resp, "Content-Length") != NULL, "message names the header: %s", resp);
        ck_assert_msg(count_responses(resp) == 1, "the smuggled request was answered: %s", resp);
        ck_assert_ptr_null(strstr(resp, "healthy"));
        ck_assert_msg(closed, "connection left open after a framing error");
        free(resp);
        free(req);
    }
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_smuggling_content_length_with_transfer_encoding_is_400)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    static const char req[] =
        "POST /api/v1/agents/x/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    int closed;
    char *resp = raw_exchange(&s, req, sizeof(req) - 1, 3000, &closed, NULL);
    assert_raw_error(resp, "HTTP/1.1 400", "invalid_request", "CL + TE");
    ck_assert_msg(count_responses(resp) == 1, "the smuggled request was answered: %s", resp);
    ck_assert(closed);
    free(resp);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* "Content-Length : 41": libmicrohttpd keeps the space in the header's name,
 * so it reads no length at all and runs the body as the next request, while a
 * proxy that trims the space forwards a 41-byte body. RFC 9112 5.1: a
 * server must refuse whitespace between a field name and its colon. */
START_TEST(test_smuggling_malformed_header_names_are_400_and_closes)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    static const char smuggled[] = "GET /api/v1/agents/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    /* Each head is `before`, then (for a length) the smuggled request's
     * length and `after`. The last two fold a line into the framing header
     * (obs-fold): 0.9.75 glues the continuation to the header's name
     * ("Content-Lengthx"), so it reads no framing at all. */
    static const struct {
        const char *before, *after;
    } heads[] = {
        {"Content-Length : ", "\r\n\r\n"},
        {"Content-Length\t: ", "\r\n\r\n"},
        {"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", NULL},
        {"Content-Length: ", "\r\n x\r\n\r\n"},
        {"Transfer-Encoding: chunked\r\n x\r\n\r\n0\r\n\r\n", NULL},
    };
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        char *head = heads[i].after ? e2e_fmt("%s%zu%s", heads[i].before, sizeof(smuggled) - 1, heads[i].after)
                                    : e2e_fmt("%s", heads[i].before);
        char *req = e2e_fmt("POST /api/v1/agents/x/evaluate HTTP/1.1\r\nHost: x\r\n"
                            "Content-Type: application/json\r\n%s%s", head, smuggled);
        int closed;
        char *resp = raw_exchange(&s, req, strlen(req), 3000, &closed, NULL);
        assert_raw_error(resp, "HTTP/1.1 400", "invalid_request", head);
        ck_assert_msg(count_responses(resp) == 1, "%s: the smuggled request was answered: %s", head, resp);
        ck_assert_msg(strstr(resp, "smuggled") == NULL, "%s: %s", head, resp);
        ck_assert_msg(closed, "%s: connection left open", head);
        free(resp);
        free(req);
        free(head);
    }
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* A coding agentd cannot decode is refused at once, not after the idle timeout. */
START_TEST(test_unknown_transfer_coding_is_501_at_once)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    static const char *const reqs[] = {
        "POST /api/v1/agents/x/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: gzip\r\n\r\n{}",
        "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < 2; i++) {
        int closed;
        long long ms;
        char *resp = raw_exchange(&s, reqs[i], strlen(reqs[i]), 5000, &closed, &ms);
        assert_raw_error(resp, "HTTP/1.1 501", "not_implemented", "gzip");
        ck_assert_msg(ms < 1000, "answered after %lld ms", ms);
        ck_assert(closed);
        free(resp);
    }
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* More slow connections than connection_limit, all from 127.0.0.1: the
 * per-address limit keeps room for 127.0.0.2, and the header deadline closes
 * a connection that keeps dripping bytes. */
START_TEST(test_slow_clients_do_not_starve_other_addresses)
{
    e2e_server s;
    const char *args[] = {"--connection-limit", "16", "--per-ip-connection-limit", "8", "--header-timeout", "2",
                          NULL};
    e2e_start(&s, args, NULL);
    enum { SLOW = 24 };
    int fds[SLOW];
    for (int i = 0; i < SLOW; i++) {
        fds[i] = connect_from(&s, "127.0.0.1");
        /* Past the per-address limit the server closes at once: the send may fail. */
        (void)!send(fds[i], "GET /health HTTP/1.1\r\nHost", 26, MSG_NOSIGNAL);
    }
    e2e_sleep_ms(200);
    /* Connections over the per-address limit were closed at accept: writing
     * to them again fails with EPIPE, which must not raise SIGPIPE here. */
    for (int i = 0; i < SLOW; i++) (void)!send(fds[i], ":", 1, MSG_NOSIGNAL);

    long long t0 = now_ms();
    int fd = connect_from(&s, "127.0.0.2");
    static const char get[] = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(write(fd, get, sizeof(get) - 1), (ssize_t)(sizeof(get) - 1));
    char *resp = e2e_read_all(fd, 2000);
    long long ms = now_ms() - t0;
    close(fd);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "health from 127.0.0.2: %s", resp);
    ck_assert_msg(ms < 100, "health from 127.0.0.2 took %lld ms", ms);
    free(resp);

    /* Keep dripping: the deadline (2 s) closes every one all the same. */
    int open_left = SLOW;
    long long start = now_ms();
    while (open_left > 0 && now_ms() - start < 6000) {
        open_left = 0;
        for (int i = 0; i < SLOW; i++) {
            if (fds[i] < 0) continue;
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            char buf[256];
            if (poll(&p, 1, 0) == 1 && read(fds[i], buf, sizeof(buf)) <= 0) {
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
            (void)!send(fds[i], "a", 1, MSG_NOSIGNAL);
            open_left++;
        }
        e2e_sleep_ms(200);
    }
    long long took = now_ms() - start;
    for (int i = 0; i < SLOW; i++)
        if (fds[i] >= 0) close(fds[i]);
    ck_assert_msg(open_left == 0, "%d dripping connections still open after %lld ms", open_left, took);
    ck_assert_msg(took < 4500, "the header deadline took %lld ms", took);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* On a keep-alive connection the next request's headers have the same bound,
 * counted from the previous response; the first request's deadline was met,
 * so only the re-armed one can close this connection. */
START_TEST(test_header_deadline_rearms_on_keep_alive)
{
    e2e_server s;
    const char *args[] = {"--header-timeout", "1", NULL};
    e2e_start(&s, args, NULL);
    int fd = e2e_connect(&s);
    static const char get[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(send(fd, get, sizeof(get) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(get) - 1));
    char buf[4096];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, 3000), 1);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "first request: %s", buf);

    ck_assert_int_eq(send(fd, "GET /health HTTP/1.1\r\nHost", 26, MSG_NOSIGNAL), 26);
    long long start = now_ms();
    int closed = 0;
    while (!closed && now_ms() - start < 5000) {
        e2e_sleep_ms(200);
        if (poll(&p, 1, 0) == 1 && read(fd, buf, sizeof(buf)) <= 0) closed = 1;
        else (void)!send(fd, "a", 1, MSG_NOSIGNAL);
    }
    long long took = now_ms() - start;
    close(fd);
    ck_assert_msg(closed, "a dripping keep-alive request still open after %lld ms", took);
    ck_assert_msg(took < 2500, "the second request's deadline took %lld ms", took);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

static void assert_utf8_refused(const e2e_server *s, const char *path, const char *body, const char *field)
{
    e2e_response r = e2e_post(s, path, body);
    char what[160];
    snprintf(what, sizeof(what), "%s %s", path, field);
    e2e_assert_error(&r, 400, "invalid_utf8", field, what);
    ck_assert_msg(strstr(r.body, "\xff") == NULL && strstr(r.body, "\xc3\"") == NULL, "echoed: %s", r.body);
    e2e_response_free(&r);
}

START_TEST(test_invalid_utf8_refused_everywhere)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    e2e_response r = e2e_post(&s, "/api/v1/agents",
                              "{\"user_id\":\"u8\",\"training_data\":\"Rust ownership moves values. "
                              "Borrowing lends references without moving. Lifetimes bound references.\"}");
    ck_assert_int_eq(r.status, 201);
    e2e_response_free(&r);
    ck_assert_str_eq(e2e_wait_agent(&s, "u8", 20000), "ready");

    assert_utf8_refused(&s, "/api/v1/agents/u8/evaluate",
                        "{\"test_prompt\":\"what \xff moves\",\"expected_answer\":\"values\"}", "test_prompt");
    assert_utf8_refused(&s, "/api/v1/agents/u8/evaluate",
                        "{\"test_prompt\":\"what moves\",\"expected_answer\":\"val\xc3\"}", "expected_answer");
    assert_utf8_refused(&s, "/api/v1/agents/u8/inference", "{\"prompt\":\"\xed\xa0\x80\"}", "prompt");
    assert_utf8_refused(&s, "/api/v1/agents/u8/feedback",
                        "{\"prompt\":\"p\",\"response\":\"r\",\"feedback\":\"good \xff\"}", "feedback");
    assert_utf8_refused(&s, "/api/v1/agents/u8/train", "{\"iterations\":1,\"name\":\"v\xc0\xaf\"}", "name");
    assert_utf8_refused(&s, "/api/v1/agents/u8/replay", "{\"task_id\":\"\xff\"}", "task_id");
    assert_utf8_refused(&s, "/api/v1/agents",
                        "{\"user_id\":\"u9\",\"dataset\":[{\"prompt\":\"p\",\"answer\":\"a\xff\"}]}",
                        "dataset[0].answer");
    assert_utf8_refused(&s, "/api/v1/agents/advanced",
                        "{\"user_id\":\"u9\",\"json_dataset\":{\"training_data\":[{\"prompt\":\"\xff\",\"answer\":\"a\"}]}}",
                        "json_dataset.training_data[0].prompt");

    /* Query parameters, after percent-decoding. */
    r = e2e_get(&s, "/api/v1/agents?cursor=%FF");
    e2e_assert_error(&r, 400, "invalid_query", "cursor", "query cursor");
    e2e_response_free(&r);
    r = e2e_get(&s, "/api/v1/agents/u8/feedback?limit=1&%C3=1");
    e2e_assert_error(&r, 400, "invalid_query", "name", "query name");
    e2e_response_free(&r);

    /* Paths: invalid UTF-8 (encoded and raw) is 400, a NUL stays "%00" and
     * matches no agent; every answer is valid JSON. */
    r = e2e_get(&s, "/api/v1/agents/%FFx/status");
    e2e_assert_error(&r, 400, "invalid_path", "UTF-8", "encoded path");
    e2e_response_free(&r);
    r = e2e_get(&s, "/api/v1/agents/u8%00x/status");
    e2e_assert_error(&r, 400, "invalid_user_id", NULL, "NUL in id");
    e2e_response_free(&r);
    r = e2e_get(&s, "/nowhere%00");
    e2e_assert_error(&r, 404, "not_found", NULL, "NUL in path");
    e2e_response_free(&r);
    static const char raw[] = "GET /raw\xff\xfe/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int closed;
    char *resp = raw_exchange(&s, raw, sizeof(raw) - 1, 3000, &closed, NULL);
    assert_raw_error(resp, "HTTP/1.1 400", "invalid_path", "raw path");
    free(resp);

    ck_assert_int_eq(e2e_stop(&s), 0);
    /* The access log stays one valid JSON object per line, the bytes escaped. */
    char *log = e2e_read_file(s.log_path, NULL);
    int lines = 0, escaped = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        ck_assert_msg(j != NULL, "log line is not JSON: %s", line);
        const char *path = e2e_json_str(j, "path");
        if (path && strcmp(path, "/raw\\xff\\xfe/x") == 0) escaped++;
        cJSON_Delete(j);
        lines++;
    }
    free(log);
    ck_assert_int_gt(lines, 10);
    ck_assert_int_eq(escaped, 1);
    e2e_cleanup(&s);
}
END_TEST

/* Heads libmicrohttpd would take but agentd bounds are answered in JSON. */
START_TEST(test_oversized_heads_answer_json)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    size_t n = 9000;
    char *path = malloc(n + 1);
    path[0] = '/';
    memset(path + 1, 'a', n - 1);
    path[n] = '\0';
    char *req = e2e_fmt("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    int closed;
    char *resp = raw_exchange(&s, req, strlen(req), 3000, &closed, NULL);
    assert_raw_error(resp, "HTTP/1.1 414", "uri_too_long", "long path");
    free(resp);
    free(req);
    free(path);

    char big[14 * 1100];
    size_t used = 0;
    for (int i = 0; i < 14; i++) {
        used += (size_t)snprintf(big + used, sizeof(big) - used, "X-Filler-%d: ", i);
        memset(big + used, 'v', 1000);
        used += 1000;
        memcpy(big + used, "\r\n", 2);
        used += 2;
    }
    big[used] = '\0';
    req = e2e_fmt("GET /health HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n", big);
    resp = raw_exchange(&s, req, strlen(req), 3000, &closed, NULL);
    assert_raw_error(resp, "HTTP/1.1 431", "headers_too_large", "big headers");
    free(resp);
    free(req);

    /* A 404 echoes at most 200 bytes of the path. */
    char longish[4001];
    longish[0] = '/';
    memset(longish + 1, 'b', sizeof(longish) - 2);
    longish[sizeof(longish) - 1] = '\0';
    e2e_response r = e2e_get(&s, longish);
    e2e_assert_error(&r, 404, "not_found", NULL, "long 404");
    ck_assert_uint_lt(strlen(e2e_json_str(r.json, "error")), 260);
    e2e_response_free(&r);
    /* So do 405 and 501, on a path that some route takes. */
    char *agent = e2e_fmt("/api/v1/agents%s", longish);
    r = e2e_request(&s, "PUT", agent, NULL, NULL);
    e2e_assert_error(&r, 405, "method_not_allowed", NULL, "long 405");
    ck_assert_uint_lt(strlen(e2e_json_str(r.json, "error")), 300);
    e2e_response_free(&r);
    r = e2e_request(&s, "FOO", agent, NULL, NULL);
    e2e_assert_error(&r, 501, "not_implemented", NULL, "long 501");
    ck_assert_uint_lt(strlen(e2e_json_str(r.json, "error")), 300);
    e2e_response_free(&r);
    free(agent);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_methods_allow_head_and_unknown)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    e2e_response r = e2e_request(&s, "FOO", "/health", NULL, NULL);
    e2e_assert_error(&r, 501, "not_implemented", "FOO", "unknown method");
    char *allow = e2e_header(&r, "Allow");
    ck_assert_ptr_nonnull(allow);
    ck_assert_str_eq(allow, "GET, HEAD, OPTIONS");
    ck_assert_ptr_null(strstr(r.body, "allowed: )"));
    free(allow);
    e2e_response_free(&r);

    static const char *const methods[] = {"FOO", "DELETE", "PUT", "HEAD", "OPTIONS"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        r = e2e_request(&s, methods[i], "/api/v1/nowhere", NULL, NULL);
        ck_assert_msg(r.status == 404, "%s /api/v1/nowhere: %ld", methods[i], r.status);
        e2e_response_free(&r);
    }

    r = e2e_request(&s, "PUT", "/health", NULL, NULL);
    e2e_assert_error(&r, 405, "method_not_allowed", "GET, HEAD, OPTIONS", "PUT /health");
    allow = e2e_header(&r, "Allow");
    ck_assert_str_eq(allow, "GET, HEAD, OPTIONS");
    free(allow);
    e2e_response_free(&r);
    r = e2e_request(&s, "HEAD", "/api/v1/agents/x/evaluate", NULL, NULL);
    ck_assert_int_eq(r.status, 405);
    allow = e2e_header(&r, "Allow");
    ck_assert_str_eq(allow, "POST, OPTIONS");
    free(allow);
    e2e_response_free(&r);
    r = e2e_request(&s, "OPTIONS", "/api/v1/agents", NULL, NULL);
    allow = e2e_header(&r, "Allow");
    ck_assert_str_eq(allow, "GET, HEAD, POST, OPTIONS");
    free(allow);
    e2e_response_free(&r);

    /* HEAD answers like GET, without a body. */
    static const char *const heads[] = {"/health", "/api/v1/agents", "/api/v1/config", "/api/v1/agents/nope/status"};
    static const long want[] = {200, 200, 200, 404};
    for (size_t i = 0; i < 4; i++) {
        char *req = e2e_fmt("HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", heads[i]);
        int closed;
        char *resp = raw_exchange(&s, req, strlen(req), 3000, &closed, NULL);
        char status[32];
        snprintf(status, sizeof(status), "HTTP/1.1 %ld", want[i]);
        ck_assert_msg(strncmp(resp, status, strlen(status)) == 0, "HEAD %s: %s", heads[i], resp);
        const char *end = strstr(resp, "\r\n\r\n");
        ck_assert_msg(end && end[4] == '\0', "HEAD %s has a body: %s", heads[i], resp);
        free(resp);
        free(req);
    }
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* A creation body of `n` bytes exactly: {"user_id":id,"training_data":"…"}. */
static char *create_body(const char *id, size_t n)
{
    char *head = e2e_fmt("{\"user_id\":\"%s\",\"training_data\":\"", id);
    size_t h = strlen(head);
    ck_assert_uint_gt(n, h + 2);
    char *b = malloc(n + 1);
    memcpy(b, head, h);
    static const char words[] = "Caching keeps hot data close. ";
    for (size_t i = h; i < n - 2; i++) b[i] = words[(i - h) % (sizeof(words) - 1)];
    memcpy(b + n - 2, "\"}", 2);
    b[n] = '\0';
    free(head);
    return b;
}

/* POSTs `body` with chunked transfer coding over a raw socket. */
static char *post_chunked(const e2e_server *s, const char *path, const char *body)
{
    int fd = e2e_connect(s);
    char *head = e2e_fmt("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", path);
    ck_assert_int_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    free(head);
    size_t n = strlen(body);
    for (size_t off = 0; off < n; off += 500) {
        size_t len = n - off < 500 ? n - off : 500;
        char size[16];
        snprintf(size, sizeof(size), "%zx\r\n", len);
        if (write(fd, size, strlen(size)) < 0 || write(fd, body + off, len) < 0 || write(fd, "\r\n", 2) < 0)
            break;
    }
    (void)!write(fd, "0\r\n\r\n", 5);
    char *resp = e2e_read_all(fd, 5000);
    close(fd);
    return resp;
}

START_TEST(test_create_body_limit_is_max_training_bytes)
{
    e2e_server s;
    const char *args[] = {"--max-training-bytes", "2048", NULL};
    e2e_start(&s, args, NULL);
    char *at = create_body("at_limit", 2048);
    e2e_response r = e2e_post(&s, "/api/v1/agents", at);
    ck_assert_msg(r.status == 201, "2048 bytes: %ld %s", r.status, r.body);
    e2e_response_free(&r);
    free(at);
    char *over = create_body("over_limit", 2049);
    r = e2e_post(&s, "/api/v1/agents", over);
    e2e_assert_error(&r, 413, "payload_too_large", "2048 bytes (max_training_bytes)", "2049 bytes");
    e2e_response_free(&r);
    r = e2e_post(&s, "/api/v1/agents/advanced", over);
    e2e_assert_error(&r, 413, "payload_too_large", "max_training_bytes", "advanced 2049 bytes");
    e2e_response_free(&r);

    char *resp = post_chunked(&s, "/api/v1/agents", over);
    ck_assert_msg(strstr(resp, " 413 ") && strstr(resp, "max_training_bytes"), "chunked 2049: %s", resp);
    free(resp);
    free(over);
    char *chunked_at = create_body("chunked_at", 2048);
    resp = post_chunked(&s, "/api/v1/agents", chunked_at);
    ck_assert_msg(strstr(resp, " 201 ") != NULL, "chunked 2048: %s", resp);
    free(resp);
    free(chunked_at);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_cursors_never_issued_are_400)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    static const char *const bad[] = {"!!", "a%20b", "..", "all"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *path = e2e_fmt("/api/v1/agents?cursor=%s", bad[i]);
        e2e_response r = e2e_get(&s, path);
        e2e_assert_error(&r, 400, "invalid_cursor", "cursor", path);
        e2e_response_free(&r);
        free(path);
    }
    e2e_response r = e2e_post(&s, "/api/v1/agents", "{\"user_id\":\"fb\",\"training_data\":\"Tea is brewed with hot water.\"}");
    ck_assert_int_eq(r.status, 201);
    e2e_response_free(&r);
    r = e2e_get(&s, "/api/v1/agents?limit=1&cursor=a");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    for (int i = 0; i < 3; i++) {
        r = e2e_post(&s, "/api/v1/agents/fb/feedback", "{\"prompt\":\"p\",\"response\":\"r\",\"feedback\":\"ok\"}");
        ck_assert_int_eq(r.status, 201);
        e2e_response_free(&r);
    }
    r = e2e_get(&s, "/api/v1/agents/fb/feedback?limit=1");
    ck_assert_int_eq(r.status, 200);
    char *next = e2e_fmt("/api/v1/agents/fb/feedback?limit=1&cursor=%s", e2e_json_str(r.json, "next_cursor"));
    e2e_response_free(&r);
    r = e2e_get(&s, next);
    ck_assert_msg(r.status == 200, "issued cursor: %s", r.body);
    e2e_response_free(&r);
    free(next);
    static const char *const bad_fb[] = {"99999", "0", "-1", "x"};
    for (size_t i = 0; i < sizeof(bad_fb) / sizeof(bad_fb[0]); i++) {
        char *path = e2e_fmt("/api/v1/agents/fb/feedback?cursor=%s", bad_fb[i]);
        r = e2e_get(&s, path);
        e2e_assert_error(&r, 400, "invalid_cursor", NULL, path);
        e2e_response_free(&r);
        free(path);
    }
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_health_while_draining_says_stopping)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    const char *body = "{\"user_id\":\"inflight\",\"training_data\":\"Draining keeps this request.\"}";
    char *head = e2e_fmt("POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(body));
    int fd = e2e_connect(&s);
    ck_assert_int_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    ck_assert_int_eq(write(fd, body, 10), 10);
    free(head);
    e2e_sleep_ms(200);
    kill(s.pid, SIGTERM);
    e2e_sleep_ms(300);
    e2e_response r = e2e_get(&s, "/health");
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "stopping");
    ck_assert_ptr_nonnull(e2e_json_str(r.json, "version"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(r.json, "checks"));
    ck_assert_ptr_null(cJSON_GetObjectItem(r.json, "code"));
    e2e_response_free(&r);
    r = e2e_get(&s, "/api/v1/config");
    e2e_assert_error(&r, 503, "service_stopping", NULL, "other routes while draining");
    e2e_response_free(&r);
    ck_assert_int_eq(write(fd, body + 10, strlen(body) - 10), (ssize_t)(strlen(body) - 10));
    char *resp = e2e_read_all(fd, 5000);
    close(fd);
    ck_assert_msg(strstr(resp, " 201 ") != NULL, "in-flight request got: %s", resp);
    free(resp);
    int status = 0;
    for (int i = 0; i < 1000 && waitpid(s.pid, &status, WNOHANG) != s.pid; i++) e2e_sleep_ms(10);
    s.pid = 0;
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_auth_comes_before_routing)
{
    e2e_server s;
    const char *env[] = {"AGENTD_API_KEY=k3y", NULL};
    e2e_start(&s, NULL, env);
    static const struct {
        const char *method, *path;
    } hidden[] = {{"GET", "/api/v1/nowhere"}, {"DELETE", "/api/v1/config"}, {"FOO", "/api/v1/agents"},
                  {"PATCH", "/api/v1/agents/x/nope"}};
    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
        e2e_response r = e2e_request(&s, hidden[i].method, hidden[i].path, NULL, NULL);
        e2e_assert_error(&r, 401, "invalid_token", NULL, hidden[i].path);
        e2e_response_free(&r);
    }
    /* A preflight carries no credentials and learns nothing about paths. */
    const char *pre[] = {"Origin: http://a.example", "Access-Control-Request-Method: GET", NULL};
    e2e_response a = e2e_request(&s, "OPTIONS", "/api/v1/nowhere", NULL, pre);
    e2e_response b = e2e_request(&s, "OPTIONS", "/api/v1/agents", NULL, pre);
    ck_assert_int_eq(a.status, 204);
    ck_assert_int_eq(b.status, 204);
    char *aa = e2e_header(&a, "Allow"), *ba = e2e_header(&b, "Allow");
    ck_assert_str_eq(aa, ba);
    free(aa);
    free(ba);
    e2e_response_free(&a);
    e2e_response_free(&b);

    const char *ok[] = {"Authorization: Bearer k3y", NULL};
    e2e_response r = e2e_request(&s, "GET", "/api/v1/nowhere", NULL, ok);
    ck_assert_int_eq(r.status, 404);
    e2e_response_free(&r);
    r = e2e_request(&s, "DELETE", "/api/v1/config", NULL, ok);
    ck_assert_int_eq(r.status, 405);
    e2e_response_free(&r);
    const char *lower[] = {"Authorization: bearer k3y", NULL};
    r = e2e_request(&s, "GET", "/api/v1/config", NULL, lower);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    const char *two_spaces[] = {"Authorization: Bearer  k3y", NULL};
    r = e2e_request(&s, "GET", "/api/v1/config", NULL, two_spaces);
    e2e_assert_error(&r, 401, "invalid_token", "exactly one space", "two spaces");
    e2e_response_free(&r);
    const char *twice[] = {"Authorization: Bearer k3y", "Authorization: Bearer k3y", NULL};
    r = e2e_request(&s, "GET", "/api/v1/config", NULL, twice);
    e2e_assert_error(&r, 400, "invalid_request", "Authorization", "two Authorization headers");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* Runs agentd (bounded by `timeout`, so a server that wrongly starts cannot
 * hang the test) and returns its exit code; output in `out`. */
static int run_agentd(const char *args, char *out, size_t cap)
{
    const char *bin = getenv("AGENTD_BIN");
    char *cmd = e2e_fmt("timeout 10 %s %s 2>&1", bin && *bin ? bin : "bin/agentd", args);
    FILE *p = popen(cmd, "r");
    free(cmd);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_second_server_on_a_port_in_use_fails)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    char out[4096];
    char *args = e2e_fmt("--bind 127.0.0.1 --port %d --data-dir %s/other", s.port, s.dir);
    ck_assert_int_eq(run_agentd(args, out, sizeof(out)), 1);
    char *want = e2e_fmt("port %d is already in use", s.port);
    ck_assert_msg(strstr(out, want) != NULL, "output: %s", out);
    free(want);
    free(args);
    /* Other bind failures keep their own words. */
    args = e2e_fmt("--bind 192.0.2.1 --port 0 --data-dir %s/other", s.dir);
    ck_assert_int_eq(run_agentd(args, out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, "192.0.2.1") && !strstr(out, "already in use"), "output: %s", out);
    free(args);
    e2e_response r = e2e_get(&s, "/health");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_second_server_on_a_data_dir_in_use_fails)
{
    if (e2e_skip_on_pg("the data dir lock guards the SQLite file; replicas share a PostgreSQL database")) return;
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    char out[4096];
    char *args = e2e_fmt("--bind 127.0.0.1 --port 0 --data-dir %s", s.data_dir);
    ck_assert_int_eq(run_agentd(args, out, sizeof(out)), 1);
    char *pid = e2e_fmt("pid %d", (int)s.pid);
    ck_assert_msg(strstr(out, s.data_dir) && strstr(out, pid), "output: %s", out);
    free(pid);
    /* Once the first one stops, the dir is free again. */
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_restart(&s, NULL, NULL);
    ck_assert_int_eq(e2e_stop(&s), 0);
    free(args);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_healthcheck_prints_what_it_found)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    char out[512];
    char *args = e2e_fmt("--healthcheck --port %d --bind 127.0.0.1", s.port);
    ck_assert_int_eq(run_agentd(args, out, sizeof(out)), 0);
    char *want = e2e_fmt("healthy: http://127.0.0.1:%d/health 200 in ", s.port);
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0 && strstr(out, " ms\n"), "output: %s", out);
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    free(want);
    ck_assert_int_eq(e2e_stop(&s), 0);
    ck_assert_int_eq(run_agentd(args, out, sizeof(out)), 1);
    want = e2e_fmt("unreachable: http://127.0.0.1:%d/health: Connection refused\n", s.port);
    ck_assert_str_eq(out, want);
    free(want);
    free(args);
    e2e_cleanup(&s);
}
END_TEST

START_TEST(test_check_config_validates_bind)
{
    char out[1024];
    ck_assert_int_eq(run_agentd("--check-config --bind not-an-address", out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "bind") && strstr(out, "not-an-address"), "output: %s", out);
    ck_assert_int_eq(run_agentd("--check-config --bind 127.0.0.1", out, sizeof(out)), 0);
}
END_TEST

/* `make run` passes --port/--data-dir only for PORT/DATA_DIR given to make,
 * so AGENTD_PORT and AGENTD_DATA_DIR are not overridden behind the user's back. */
START_TEST(test_make_run_passes_only_given_settings)
{
    if (access("Makefile", R_OK) != 0) return; /* not run from the source tree */
    char out[16384];
    FILE *p = popen("env -u PORT -u DATA_DIR make -n --no-print-directory run PORT=9123 DATA_DIR=/tmp/agentd-x 2>&1", "r");
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    pclose(p);
    ck_assert_msg(strstr(out, "bin/agentd --port 9123 --data-dir /tmp/agentd-x"), "make -n run: %s", out);
    p = popen("env -u PORT -u DATA_DIR AGENTD_PORT=9555 make -n --no-print-directory run 2>&1", "r");
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    pclose(p);
    ck_assert_msg(strstr(out, "bin/agentd") && !strstr(out, "--port") && !strstr(out, "--data-dir"),
                  "make -n run without PORT: %s", out);
    /* PORT and DATA_DIR in the environment belong to other programs (many
     * platforms set PORT): only make's command line gives them to agentd. */
    p = popen("env PORT=3000 DATA_DIR=/elsewhere AGENTD_PORT=9555 make -n --no-print-directory run 2>&1", "r");
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    pclose(p);
    ck_assert_msg(strstr(out, "bin/agentd") && !strstr(out, "--port") && !strstr(out, "--data-dir"),
                  "make -n run with PORT in the environment: %s", out);
}
END_TEST

Suite *e2e_http_suite(void)
{
    Suite *s = suite_create("e2e_http");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_smuggling_repeated_content_length_is_400_and_closes);
    tcase_add_test(tc, test_smuggling_content_length_with_transfer_encoding_is_400);
    tcase_add_test(tc, test_smuggling_malformed_header_names_are_400_and_closes);
    tcase_add_test(tc, test_unknown_transfer_coding_is_501_at_once);
    tcase_add_test(tc, test_slow_clients_do_not_starve_other_addresses);
    tcase_add_test(tc, test_header_deadline_rearms_on_keep_alive);
    tcase_add_test(tc, test_invalid_utf8_refused_everywhere);
    tcase_add_test(tc, test_oversized_heads_answer_json);
    tcase_add_test(tc, test_methods_allow_head_and_unknown);
    tcase_add_test(tc, test_create_body_limit_is_max_training_bytes);
    tcase_add_test(tc, test_cursors_never_issued_are_400);
    tcase_add_test(tc, test_health_while_draining_says_stopping);
    tcase_add_test(tc, test_auth_comes_before_routing);
    tcase_add_test(tc, test_second_server_on_a_port_in_use_fails);
    tcase_add_test(tc, test_second_server_on_a_data_dir_in_use_fails);
    tcase_add_test(tc, test_healthcheck_prints_what_it_found);
    tcase_add_test(tc, test_check_config_validates_bind);
    tcase_add_test(tc, test_make_run_passes_only_given_settings);
    suite_add_tcase(s, tc);
    return s;
}
