/* The agents API over HTTP against the real binary: create validation, the
 * Flask alias, 404s, listing, the detail/pipeline/executions views, evaluate,
 * the test datasets' hit rate and deletion. */
#include <check.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "tests/e2e/harness.h"

Suite *e2e_agents_api_suite(void);

#define AGENTS "/api/v1/agents"

/* An error body {error, code, request_id} with `status`, `code`, and (when
 * given) an error message that contains `needle`. */
static void assert_error_at(const e2e_response *r, long status, const char *code, const char *needle,
                            const char *what)
{
    ck_assert_msg(r->status == status, "%s: status %ld, want %ld: %s", what, r->status, status, r->body);
    ck_assert_msg(r->json != NULL, "%s: body is not JSON: %s", what, r->body);
    const char *c = e2e_json_str(r->json, "code");
    ck_assert_msg(c && !strcmp(c, code), "%s: code %s, want %s: %s", what, c ? c : "(none)", code, r->body);
    const char *msg = e2e_json_str(r->json, "error");
    ck_assert_msg(msg && *msg, "%s: no error message: %s", what, r->body);
    if (needle)
        ck_assert_msg(strstr(msg, needle) != NULL, "%s: error '%s' does not name '%s'", what, msg, needle);
    const char *rid = e2e_json_str(r->json, "request_id");
    ck_assert_msg(rid && *rid, "%s: no request_id", what);
}

/* POST `body` to `path` and assert the error; frees the response. */
static void post_expect(const e2e_server *s, const char *path, const char *body, long status,
                        const char *code, const char *needle, const char *what)
{
    e2e_response r = e2e_post(s, path, body);
    assert_error_at(&r, status, code, needle, what);
    e2e_response_free(&r);
}

/* POSTs a create body and asserts 201; frees `body`. */
static void create_ok(const e2e_server *s, const char *path, char *body)
{
    e2e_response r = e2e_post(s, path, body);
    ck_assert_msg(r.status == 201, "create: status %ld: %s", r.status, r.body);
    e2e_response_free(&r);
    free(body);
}

static void create_text(const e2e_server *s, const char *id, const char *text)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "user_id", id);
    cJSON_AddStringToObject(b, "training_data", text);
    create_ok(s, AGENTS, cJSON_PrintUnformatted(b));
    cJSON_Delete(b);
}

static void wait_ready(const e2e_server *s, const char *id, int timeout_ms)
{
    const char *st = e2e_wait_agent(s, id, timeout_ms);
    ck_assert_msg(!strcmp(st, "ready"), "agent %s ended %s", id, st);
}

static double list_total(const e2e_server *s)
{
    e2e_response r = e2e_get(s, AGENTS);
    ck_assert_int_eq(r.status, 200);
    double n = e2e_json_num(r.json, "total_users");
    e2e_response_free(&r);
    return n;
}

static int is_uuid(const char *u)
{
    if (!u || strlen(u) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (u[i] != '-') return 0;
        } else if (!isxdigit((unsigned char)u[i])) {
            return 0;
        }
    }
    return 1;
}

/* A request over a raw socket, for paths longer than the harness' URL buffer.
 * Returns the status; `body_out` (optional) gets the malloc'ed body. */
static int raw_request(const e2e_server *s, const char *method, const char *path, char **body_out)
{
    int fd = e2e_connect(s);
    char *req = e2e_fmt("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method, path);
    size_t len = strlen(req), off = 0;
    while (off < len) {
        ssize_t n = write(fd, req + off, len - off);
        ck_assert_int_gt(n, 0);
        off += (size_t)n;
    }
    free(req);
    char *resp = e2e_read_all(fd, 10000);
    close(fd);
    int status = 0;
    ck_assert_msg(sscanf(resp, "HTTP/1.%*d %d", &status) == 1, "no status line: %s", resp);
    if (body_out) {
        const char *b = strstr(resp, "\r\n\r\n");
        *body_out = strdup(b ? b + 4 : "");
    }
    free(resp);
    return status;
}

static char *repeat_char(char c, size_t n)
{
    char *p = malloc(n + 1);
    memset(p, c, n);
    p[n] = '\0';
    return p;
}

/* Collapses runs of whitespace to one space and trims, in place. */
static char *squash(char *s)
{
    char *w = s;
    int space = 0;
    for (char *r = s; *r; r++) {
        if (isspace((unsigned char)*r)) {
            space = 1;
            continue;
        }
        if (space && w != s) *w++ = ' ';
        space = 0;
        *w++ = *r;
    }
    *w = '\0';
    return s;
}

/* ---- 1. create validation ------------------------------------------------ */

START_TEST(test_create_validation)
{
    e2e_server s;
    const char *args[] = {"--max-training-bytes", "2048", NULL};
    e2e_start(&s, args, NULL);
    const char *txt = ",\"training_data\":\"Some valid training text.\"}";

    /* user_id */
    post_expect(&s, AGENTS, "{\"training_data\":\"text\"}", 400, "invalid_user_id", "user_id", "user_id missing");
    post_expect(&s, AGENTS, "{\"user_id\":null,\"training_data\":\"text\"}", 400, "invalid_user_id", "user_id",
                "user_id null");
    post_expect(&s, AGENTS, "{\"user_id\":42,\"training_data\":\"text\"}", 400, "invalid_user_id", "user_id",
                "user_id number");
    post_expect(&s, AGENTS, "{\"user_id\":\"\",\"training_data\":\"text\"}", 400, "invalid_user_id", "user_id",
                "user_id empty");
    char *id65 = repeat_char('a', 65);
    char *b = e2e_fmt("{\"user_id\":\"%s\"%s", id65, txt);
    post_expect(&s, AGENTS, b, 400, "invalid_user_id", "user_id", "user_id 65 chars");
    free(b);
    free(id65);
    /* Long, but the body stays within --max-training-bytes (over it is 413). */
    char *id10k = repeat_char('b', 1900);
    b = e2e_fmt("{\"user_id\":\"%s\"%s", id10k, txt);
    post_expect(&s, AGENTS, b, 400, "invalid_user_id", "user_id", "user_id 1900 bytes");
    free(b);
    free(id10k);
    const char *bad_ids[] = {"../x", "a/b", "\xc3\xbcn\xc3\xaf", "all", "advanced", ".", "..", "has space",
                             "a\\\\b", "tab\\there"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        b = e2e_fmt("{\"user_id\":\"%s\"%s", bad_ids[i], txt);
        post_expect(&s, AGENTS, b, 400, "invalid_user_id", "user_id", bad_ids[i]);
        free(b);
    }

    /* training_data */
    post_expect(&s, AGENTS, "{\"user_id\":\"t1\",\"training_data\":\"\"}", 400, "invalid_training_data",
                "training_data", "training_data empty");
    post_expect(&s, AGENTS, "{\"user_id\":\"t1\",\"training_data\":\"   \\n\"}", 400, "invalid_training_data",
                "training_data", "training_data whitespace");
    post_expect(&s, AGENTS, "{\"user_id\":\"t1\",\"training_data\":12}", 400, "invalid_training_data",
                "training_data", "training_data number");
    post_expect(&s, AGENTS, "{\"user_id\":\"t1\",\"training_data\":[\"a\"]}", 400, "invalid_training_data",
                "training_data", "training_data array");
    /* Raw invalid bytes inside the JSON string (not \u escapes). */
    post_expect(&s, AGENTS, "{\"user_id\":\"t1\",\"training_data\":\"valid then \xff\xfe bytes\"}", 400,
                "invalid_utf8", "training_data", "training_data invalid UTF-8");
    post_expect(&s, AGENTS, "{\"user_id\":\"t1\",\"dataset\":[{\"prompt\":\"p\",\"answer\":\"a\xff\"}]}", 400,
                "invalid_utf8", "dataset[0].answer", "dataset answer invalid UTF-8");
    /* 3000 bytes of text over --max-training-bytes 2048: the creation body's
     * limit is that one number (well under the 1 MB request limit). */
    char *big = repeat_char('w', 3000);
    for (size_t i = 7; i < 3000; i += 8) big[i] = ' ';
    b = e2e_fmt("{\"user_id\":\"t1\",\"training_data\":\"%s\"}", big);
    post_expect(&s, AGENTS, b, 413, "payload_too_large", "max_training_bytes", "training_data over limit");
    free(b);
    free(big);

    /* dataset */
    struct {
        const char *ds, *needle;
    } bad_ds[] = {
        {"[]", "dataset"},
        {"{}", "dataset"},
        {"\"x\"", "dataset"},
        {"[1]", "dataset[0]"},
        {"[{\"prompt\":\"p\"}]", "dataset[0].answer"},
        {"[{\"prompt\":\"\",\"answer\":\"a\"}]", "dataset[0].prompt"},
        {"[{\"prompt\":\"  \",\"answer\":\"a\"}]", "dataset[0].prompt"},
        {"[{\"prompt\":\"p\",\"answer\":5}]", "dataset[0].answer"},
        {"[{\"prompt\":\"p\",\"answer\":\"a\",\"category\":7}]", "dataset[0].category"},
        {"[{\"prompt\":\"p\",\"answer\":\"a\"},{\"prompt\":\"q\",\"answer\":\"b\"},{\"prompt\":\"r\"}]", "dataset[2]"},
    };
    for (size_t i = 0; i < sizeof(bad_ds) / sizeof(bad_ds[0]); i++) {
        b = e2e_fmt("{\"user_id\":\"d1\",\"dataset\":%s}", bad_ds[i].ds);
        post_expect(&s, AGENTS, b, 400, "invalid_dataset", bad_ds[i].needle, bad_ds[i].ds);
        free(b);
    }
    /* A dataset over twice --max-training-bytes. */
    char *long_answer = repeat_char('z', 5000);
    b = e2e_fmt("{\"user_id\":\"d1\",\"dataset\":[{\"prompt\":\"p\",\"answer\":\"%s\"}]}", long_answer);
    post_expect(&s, AGENTS, b, 413, "payload_too_large", "max_training_bytes", "dataset over the byte limit");
    free(b);
    free(long_answer);
    /* Exactly one of training_data and dataset. */
    post_expect(&s, AGENTS, "{\"user_id\":\"d1\",\"training_data\":\"t\",\"dataset\":[{\"prompt\":\"p\",\"answer\":\"a\"}]}",
                400, "invalid_body", "training_data", "both");
    post_expect(&s, AGENTS, "{\"user_id\":\"d1\"}", 400, "invalid_body", "training_data", "neither");

    /* base_model must be a string. */
    post_expect(&s, AGENTS, "{\"user_id\":\"m1\",\"training_data\":\"t\",\"base_model\":3}", 400,
                "invalid_base_model", "base_model", "base_model number");
    post_expect(&s, AGENTS, "{\"user_id\":\"m1\",\"training_data\":\"t\",\"base_model\":{}}", 400,
                "invalid_base_model", "base_model", "base_model object");

    /* Nothing was created by any of it. */
    ck_assert_int_eq((int)list_total(&s), 0);
    e2e_response r = e2e_get(&s, AGENTS "/t1/status");
    ck_assert_int_eq(r.status, 404);
    e2e_response_free(&r);

    /* Valid edge: 64 characters from the whole alphabet. */
    char id64[65];
    const char *alpha = "abcXYZ019_.-";
    for (int i = 0; i < 64; i++) id64[i] = alpha[i % 12];
    id64[64] = '\0';
    b = e2e_fmt("{\"user_id\":\"%s\"%s", id64, txt);
    r = e2e_post(&s, AGENTS, b);
    free(b);
    ck_assert_msg(r.status == 201, "64-char id: %ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "user_id"), id64);
    char *loc = e2e_header(&r, "Location");
    char *want = e2e_fmt(AGENTS "/%s", id64);
    ck_assert_ptr_nonnull(loc);
    ck_assert_str_eq(loc, want);
    free(loc);
    free(want);
    e2e_response_free(&r);

    /* The 201 body and header; base_model echoed and stored. */
    r = e2e_post(&s, AGENTS,
                 "{\"user_id\":\"m1\",\"training_data\":\"Base model text.\",\"base_model\":\"gemini-2.0-flash\"}");
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    ck_assert_ptr_nonnull(e2e_json_str(r.json, "message"));
    ck_assert_int_gt((int)strlen(e2e_json_str(r.json, "message")), 0);
    ck_assert_str_eq(e2e_json_str(r.json, "user_id"), "m1");
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "created");
    ck_assert_str_eq(e2e_json_str(r.json, "base_model"), "gemini-2.0-flash");
    ck_assert_msg(e2e_is_iso_utc(e2e_json_str(r.json, "timestamp")), "timestamp %s", e2e_json_str(r.json, "timestamp"));
    loc = e2e_header(&r, "Location");
    ck_assert_ptr_nonnull(loc);
    ck_assert_str_eq(loc, AGENTS "/m1");
    free(loc);
    e2e_response_free(&r);
    r = e2e_get(&s, AGENTS "/m1");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(e2e_json_str(r.json, "base_model"), "gemini-2.0-flash");
    e2e_response_free(&r);

    /* Duplicate user_id: 409, whichever the material. */
    post_expect(&s, AGENTS, "{\"user_id\":\"m1\",\"training_data\":\"Other text.\"}", 409, "agent_exists", "m1",
                "duplicate");
    post_expect(&s, AGENTS, "{\"user_id\":\"m1\",\"dataset\":[{\"prompt\":\"p\",\"answer\":\"a\"}]}", 409,
                "agent_exists", "m1", "duplicate dataset");
    /* A body of exactly --max-training-bytes is accepted. */
    size_t edge_len = 2048 - strlen("{\"user_id\":\"edge\",\"training_data\":\"\"}");
    char *edge = repeat_char('e', edge_len);
    for (size_t i = 9; i < edge_len; i += 10) edge[i] = ' ';
    b = e2e_fmt("{\"user_id\":\"edge\",\"training_data\":\"%s\"}", edge);
    ck_assert_uint_eq(strlen(b), 2048);
    free(edge);
    create_ok(&s, AGENTS, b);
    ck_assert_int_eq((int)list_total(&s), 3);
    wait_ready(&s, "m1", 20000);
    wait_ready(&s, id64, 20000);

    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* 100,001 dataset items: a 400 naming the limit (the body itself fits). */
START_TEST(test_create_dataset_item_limit)
{
    e2e_server s;
    const char *args[] = {"--max-training-bytes", "8388608", NULL};
    e2e_start(&s, args, NULL);
    ad_buf b;
    ad_buf_init(&b);
    ad_buf_puts(&b, "{\"user_id\":\"many\",\"dataset\":[");
    for (int i = 0; i < 100001; i++) ad_buf_puts(&b, i ? ",{\"prompt\":\"p\",\"answer\":\"a\"}" : "{\"prompt\":\"p\",\"answer\":\"a\"}");
    ad_buf_puts(&b, "]}");
    char *body = ad_buf_steal(&b, NULL);
    post_expect(&s, AGENTS, body, 400, "invalid_dataset", "100000", "100,001 items");
    free(body);
    ck_assert_int_eq((int)list_total(&s), 0);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 2. the Flask alias --------------------------------------------------- */

START_TEST(test_advanced_alias)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    const char *adv = AGENTS "/advanced";
    char *file = e2e_read_file(e2e_test_file("data/ml_expert_dataset.json"), NULL);
    ck_assert_ptr_nonnull(file);
    cJSON *fj = cJSON_Parse(file);
    ck_assert_ptr_nonnull(fj);

    /* json_dataset as an array. */
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "user_id", "adv_array");
    cJSON_AddItemToObject(body, "json_dataset",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(fj, "training_data"), 1));
    char *txt = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    e2e_response r = e2e_post(&s, adv, txt);
    free(txt);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "created");
    char *loc = e2e_header(&r, "Location");
    ck_assert_str_eq(loc, AGENTS "/adv_array");
    free(loc);
    e2e_response_free(&r);

    /* json_dataset as the dataset file's whole object. */
    char *whole = e2e_fmt("{\"user_id\":\"adv_file\",\"json_dataset\":%s}", file);
    create_ok(&s, adv, whole);

    wait_ready(&s, "adv_array", 30000);
    wait_ready(&s, "adv_file", 30000);
    r = e2e_get(&s, AGENTS "/adv_file");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(e2e_json_str(r.json, "source"), "dataset");
    ck_assert_str_eq(e2e_json_str(r.json, "description"), e2e_json_str(fj, "description"));
    e2e_response_free(&r);

    /* Bad json_dataset shapes. */
    const char *bad[] = {"\"x\"", "5", "[]", "{}", "{\"training_data\":\"x\"}", "{\"training_data\":[]}",
                         "[{\"prompt\":\"p\"}]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *b = e2e_fmt("{\"user_id\":\"adv_bad\",\"json_dataset\":%s}", bad[i]);
        post_expect(&s, adv, b, 400, "invalid_dataset", "json_dataset", bad[i]);
        free(b);
    }
    post_expect(&s, adv, "{\"user_id\":\"adv_bad\"}", 400, "invalid_body", "json_dataset", "no json_dataset");
    r = e2e_get(&s, AGENTS "/adv_bad");
    ck_assert_int_eq(r.status, 404);
    e2e_response_free(&r);
    ck_assert_int_eq((int)list_total(&s), 2);

    cJSON_Delete(fj);
    free(file);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 3. unknown agents and bad path ids ------------------------------------ */

START_TEST(test_unknown_agent_and_bad_path_id)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    const char *gets[] = {AGENTS "/ghost", AGENTS "/ghost/status", AGENTS "/ghost/pipeline",
                          AGENTS "/ghost/executions"};
    for (size_t i = 0; i < 4; i++) {
        e2e_response r = e2e_get(&s, gets[i]);
        assert_error_at(&r, 404, "agent_not_found", "ghost", gets[i]);
        e2e_response_free(&r);
    }
    post_expect(&s, AGENTS "/ghost/evaluate", "{\"test_prompt\":\"q\",\"expected_answer\":\"a\"}", 404,
                "agent_not_found", "ghost", "evaluate");
    e2e_response r = e2e_request(&s, "DELETE", AGENTS "/ghost", NULL, NULL);
    assert_error_at(&r, 404, "agent_not_found", "ghost", "delete");
    e2e_response_free(&r);

    r = e2e_get(&s, AGENTS "/a%20b/status");
    assert_error_at(&r, 400, "invalid_user_id", "user_id", "GET a%20b");
    e2e_response_free(&r);
    r = e2e_request(&s, "DELETE", AGENTS "/a%20b", NULL, NULL);
    assert_error_at(&r, 400, "invalid_user_id", "user_id", "DELETE a%20b");
    e2e_response_free(&r);
    r = e2e_get(&s, AGENTS "/..%2Fx/status");
    ck_assert_msg(r.status == 400 || r.status == 404, "..%%2Fx: %ld", r.status);
    e2e_response_free(&r);

    /* A 6 KB id (longer than the harness' URL buffer: over a raw socket; a
     * path over 8 KiB is 414, tests/e2e/http.c). */
    char *id = repeat_char('k', 6000);
    char *path = e2e_fmt(AGENTS "/%s/status", id);
    char *body = NULL;
    int st = raw_request(&s, "GET", path, &body);
    cJSON *j = cJSON_Parse(body);
    ck_assert_msg(st == 400, "GET 6 KB id: %d %s", st, body);
    ck_assert_str_eq(e2e_json_str(j, "code"), "invalid_user_id");
    ck_assert_ptr_nonnull(strstr(e2e_json_str(j, "error"), "user_id"));
    cJSON_Delete(j);
    free(body);
    free(path);
    path = e2e_fmt(AGENTS "/%s", id);
    st = raw_request(&s, "DELETE", path, &body);
    j = cJSON_Parse(body);
    ck_assert_msg(st == 400, "DELETE 6 KB id: %d %s", st, body);
    ck_assert_str_eq(e2e_json_str(j, "code"), "invalid_user_id");
    cJSON_Delete(j);
    free(body);
    free(path);
    free(id);

    /* The server is still fine. */
    r = e2e_get(&s, "/health");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 4. listing ------------------------------------------------------------ */

START_TEST(test_list_pagination_and_filters)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    const char *ids[] = {"list-c", "list-a", "list-e", "list-b", "list-d"};
    for (int i = 0; i < 5; i++) {
        char text[160];
        snprintf(text, sizeof(text), "Agent %s knows about topic number %d. It answers questions on it well.", ids[i], i);
        create_text(&s, ids[i], text);
    }
    for (int i = 0; i < 5; i++) wait_ready(&s, ids[i], 20000);

    /* Pages of two, following the cursor, visit every agent exactly once. */
    int seen[5] = {0}, pages = 0, total_seen = 0;
    char cursor[128] = "";
    for (;;) {
        char path[256];
        if (*cursor) snprintf(path, sizeof(path), AGENTS "?limit=2&cursor=%s", cursor);
        else snprintf(path, sizeof(path), AGENTS "?limit=2");
        e2e_response r = e2e_get(&s, path);
        ck_assert_msg(r.status == 200, "%s: %ld %s", path, r.status, r.body);
        pages++;
        ck_assert_int_eq((int)e2e_json_num(r.json, "total_users"), 5);
        int count = (int)e2e_json_num(r.json, "count");
        cJSON *users = cJSON_GetObjectItemCaseSensitive(r.json, "users");
        ck_assert(cJSON_IsObject(users));
        ck_assert_int_eq(cJSON_GetArraySize(users), count);
        cJSON *u;
        cJSON_ArrayForEach(u, users) {
            int k = -1;
            for (int i = 0; i < 5; i++)
                if (!strcmp(u->string, ids[i])) k = i;
            ck_assert_msg(k >= 0, "unknown user %s", u->string);
            seen[k]++;
            total_seen++;
            ck_assert_str_eq(e2e_json_str(u, "status"), "ready");
            ck_assert_int_eq((int)e2e_json_num(u, "progress"), 100);
            ck_assert_msg(e2e_is_iso_utc(e2e_json_str(u, "created_at")), "created_at of %s", u->string);
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(r.json, "next_cursor");
        ck_assert_msg(next != NULL, "no next_cursor key");
        if (pages < 3) {
            ck_assert_int_eq(count, 2);
            ck_assert_msg(cJSON_IsString(next), "page %d: next_cursor not a string", pages);
            snprintf(cursor, sizeof(cursor), "%s", next->valuestring);
            e2e_response_free(&r);
            continue;
        }
        ck_assert_int_eq(count, 1);
        ck_assert_msg(cJSON_IsNull(next), "last page: next_cursor not null");
        e2e_response_free(&r);
        break;
    }
    ck_assert_int_eq(pages, 3);
    ck_assert_int_eq(total_seen, 5);
    for (int i = 0; i < 5; i++) ck_assert_msg(seen[i] == 1, "%s seen %d times", ids[i], seen[i]);

    /* Exactly 5 with limit=5: no further page. */
    e2e_response r = e2e_get(&s, AGENTS "?limit=5");
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 5);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r.json, "next_cursor")));
    e2e_response_free(&r);

    /* Default list: all 5, with total_users and a timestamp. */
    r = e2e_get(&s, AGENTS);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(r.json, "total_users"), 5);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "users")), 5);
    ck_assert(e2e_is_iso_utc(e2e_json_str(r.json, "timestamp")));
    e2e_response_free(&r);

    /* Status filters. */
    r = e2e_get(&s, AGENTS "?status=ready");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 5);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "users")), 5);
    e2e_response_free(&r);
    r = e2e_get(&s, AGENTS "?status=processing");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 0);
    ck_assert_int_eq((int)e2e_json_num(r.json, "total_users"), 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "users")), 0);
    e2e_response_free(&r);

    /* Bad query parameters. */
    r = e2e_get(&s, AGENTS "?status=bogus");
    assert_error_at(&r, 400, "invalid_status", "status", "status=bogus");
    e2e_response_free(&r);
    const char *bad_limits[] = {"0", "501", "abc", "-1", "2x", ""};
    for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), AGENTS "?limit=%s", bad_limits[i]);
        r = e2e_get(&s, path);
        assert_error_at(&r, 400, "invalid_limit", "limit", path);
        e2e_response_free(&r);
    }
    char cpath[128];
    char *c65 = repeat_char('c', 65);
    snprintf(cpath, sizeof(cpath), AGENTS "?cursor=%s", c65);
    free(c65);
    r = e2e_get(&s, cpath);
    assert_error_at(&r, 400, "invalid_cursor", "cursor", "65-char cursor");
    e2e_response_free(&r);
    /* A cursor past the last id: an empty page. */
    r = e2e_get(&s, AGENTS "?cursor=zzz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 0);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r.json, "next_cursor")));
    e2e_response_free(&r);
    r = e2e_get(&s, AGENTS "?limit=500");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);

    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 5. detail, pipeline, executions ------------------------------------- */

static const char *const STAGES[4] = {"DataProcessor", "ModelTrainer", "ModelEvaluator", "ModelDeployer"};

START_TEST(test_agent_detail_pipeline_executions)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    create_ok(&s, AGENTS, e2e_dataset_body("ml", "data/ml_expert_dataset.json"));
    wait_ready(&s, "ml", 30000);

    e2e_response r = e2e_get(&s, AGENTS "/ml");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(e2e_json_str(r.json, "user_id"), "ml");
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "ready");
    ck_assert_int_eq((int)e2e_json_num(r.json, "progress"), 100);
    ck_assert_str_eq(e2e_json_str(r.json, "source"), "dataset");
    ck_assert(e2e_is_iso_utc(e2e_json_str(r.json, "created_at")));
    cJSON *stats = cJSON_GetObjectItemCaseSensitive(r.json, "statistics");
    ck_assert_msg(cJSON_IsObject(stats), "statistics: %s", r.body);
    ck_assert_int_gt((int)e2e_json_num(stats, "passages"), 0);
    ck_assert_int_gt((int)e2e_json_num(stats, "tokens"), 0);
    ck_assert_int_gt((int)e2e_json_num(stats, "vocabulary_size"), 0);
    cJSON *top = cJSON_GetObjectItemCaseSensitive(stats, "top_terms");
    ck_assert(cJSON_IsArray(top));
    ck_assert_int_gt(cJSON_GetArraySize(top), 0);
    cJSON *cats = cJSON_GetObjectItemCaseSensitive(stats, "categories");
    ck_assert(cJSON_IsObject(cats));
    ck_assert_int_gt(cJSON_GetArraySize(cats), 0);
    /* The dataset file's first item's category is counted. */
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(cats, "algorithm_selection"));

    cJSON *model = cJSON_GetObjectItemCaseSensitive(r.json, "model");
    ck_assert_msg(cJSON_IsObject(model), "model: %s", r.body);
    ck_assert_str_eq(e2e_json_str(model, "name"), "v1");
    ck_assert(e2e_is_iso_utc(e2e_json_str(model, "deployed_at")));
    cJSON *metrics = cJSON_GetObjectItemCaseSensitive(model, "metrics");
    ck_assert(cJSON_IsObject(metrics));
    double hit1 = e2e_json_num(metrics, "hit_at_1"), mrr = e2e_json_num(metrics, "mrr");
    ck_assert(hit1 >= 0 && hit1 <= 1);
    ck_assert(mrr >= hit1 && mrr <= 1);
    const char *ql = e2e_json_str(metrics, "quality_label");
    ck_assert_msg(ql && (!strcmp(ql, "HIGH") || !strcmp(ql, "MEDIUM") || !strcmp(ql, "LOW")), "label %s", ql);

    cJSON *timings = cJSON_GetObjectItemCaseSensitive(r.json, "timings");
    ck_assert(cJSON_IsObject(timings));
    ck_assert_int_eq(cJSON_GetArraySize(timings), 4);
    for (int i = 0; i < 4; i++) ck_assert_msg(e2e_json_num(timings, STAGES[i]) >= 0, "timing %s", STAGES[i]);
    cJSON *inf = cJSON_GetObjectItemCaseSensitive(r.json, "inference");
    ck_assert(cJSON_IsObject(inf));
    ck_assert_int_eq((int)e2e_json_num(inf, "count"), 0);
    ck_assert_int_eq((int)e2e_json_num(inf, "errors"), 0);
    e2e_response_free(&r);

    r = e2e_get(&s, AGENTS "/ml/pipeline");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(e2e_json_str(r.json, "status"), "ready");
    cJSON *stages = cJSON_GetObjectItemCaseSensitive(r.json, "stages");
    ck_assert(cJSON_IsArray(stages));
    ck_assert_int_eq(cJSON_GetArraySize(stages), 4);
    for (int i = 0; i < 4; i++) {
        cJSON *st = cJSON_GetArrayItem(stages, i);
        ck_assert_str_eq(e2e_json_str(st, "name"), STAGES[i]);
        ck_assert_int_eq((int)e2e_json_num(st, "task_index"), i);
        ck_assert_str_eq(e2e_json_str(st, "status"), "completed");
        ck_assert(e2e_json_num(st, "duration_ms") >= 0);
        const char *sum = e2e_json_str(st, "summary");
        ck_assert_msg(sum && *sum, "stage %s has no summary", STAGES[i]);
    }
    ck_assert_ptr_nonnull(strstr(e2e_json_str(cJSON_GetArrayItem(stages, 1), "summary"), "v1"));
    e2e_response_free(&r);

    char *first_ids[4] = {0};
    for (int round = 0; round < 2; round++) {
        r = e2e_get(&s, AGENTS "/ml/executions");
        ck_assert_int_eq(r.status, 200);
        cJSON *ex = cJSON_GetObjectItemCaseSensitive(r.json, "executions");
        ck_assert(cJSON_IsArray(ex));
        ck_assert_int_eq(cJSON_GetArraySize(ex), 4);
        for (int i = 0; i < 4; i++) {
            cJSON *e = cJSON_GetArrayItem(ex, i);
            const char *tid = e2e_json_str(e, "task_id");
            ck_assert_msg(is_uuid(tid), "task_id %s", tid ? tid : "(null)");
            ck_assert_int_eq((int)e2e_json_num(e, "task_index"), i);
            ck_assert_str_eq(e2e_json_str(e, "name"), STAGES[i]);
            const char *exp = e2e_json_str(e, "expected_output");
            ck_assert_msg(exp && *exp, "expected_output of %s", STAGES[i]);
            ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(e, "output")));
            ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(e, "inputs")));
            ck_assert(e2e_is_iso_utc(e2e_json_str(e, "timestamp")));
            ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "was_replayed")));
            if (round == 0) {
                for (int k = 0; k < i; k++) ck_assert_str_ne(first_ids[k], tid);
                first_ids[i] = strdup(tid);
            } else {
                ck_assert_str_eq(first_ids[i], tid);
            }
        }
        e2e_response_free(&r);
    }
    for (int i = 0; i < 4; i++) free(first_ids[i]);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 6. evaluate ----------------------------------------------------------- */

/* About `bytes` of distinct sentences. */
static char *gen_text(size_t bytes)
{
    static const char *const subj[] = {"The engineer", "A careful analyst", "Our team", "The gardener",
                                       "Every student", "The old captain", "A curious child", "The baker"};
    static const char *const verb[] = {"studies", "repairs", "describes", "measures", "paints", "collects",
                                       "explains", "remembers"};
    static const char *const obj[] = {"river stones", "copper engines", "quiet forests", "winter harvests",
                                      "ancient maps", "glass lanterns", "mountain trails", "paper kites"};
    ad_buf b;
    ad_buf_init(&b);
    for (unsigned i = 0; b.len < bytes; i++)
        ad_buf_printf(&b, "%s %s %s near village %u on day %u. ", subj[i % 8], verb[(i / 8) % 8],
                      obj[(i / 64) % 8], i, i * 7 % 1000);
    return ad_buf_steal(&b, NULL);
}

START_TEST(test_evaluate)
{
    e2e_server s;
    const char *args[] = {"--workers", "1", NULL};
    e2e_start(&s, args, NULL);
    char *text = gen_text(3u << 20);
    create_text(&s, "bulk", text);
    free(text);
    create_ok(&s, AGENTS, e2e_dataset_body("evalme", "data/ml_expert_dataset.json"));

    /* Queued behind "bulk" on the only worker: not ready yet. */
    const char *good = "{\"test_prompt\":\"How to choose between Random Forest and XGBoost?\","
                       "\"expected_answer\":\"Choose Random Forest\"}";
    post_expect(&s, AGENTS "/evalme/evaluate", good, 409, "agent_not_ready", "evalme", "before ready");
    /* The body is still validated first. */
    post_expect(&s, AGENTS "/evalme/evaluate", "{\"expected_answer\":\"a\"}", 400, "invalid_body", "test_prompt",
                "missing test_prompt");

    wait_ready(&s, "bulk", 120000);
    wait_ready(&s, "evalme", 60000);

    e2e_response r = e2e_post(&s, AGENTS "/evalme/evaluate", good);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "user_id"), "evalme");
    cJSON *ev = cJSON_GetObjectItemCaseSensitive(r.json, "evaluation");
    ck_assert(cJSON_IsObject(ev));
    ck_assert_str_eq(e2e_json_str(ev, "test_prompt"), "How to choose between Random Forest and XGBoost?");
    ck_assert_str_eq(e2e_json_str(ev, "expected_answer"), "Choose Random Forest");
    ck_assert_ptr_nonnull(e2e_json_str(ev, "predicted_answer"));
    ck_assert_int_gt((int)strlen(e2e_json_str(ev, "predicted_answer")), 0);
    const char *fields[] = {"model_confidence", "jaccard_similarity", "character_similarity",
                            "contains_similarity", "token_f1", "overall_similarity"};
    for (int i = 0; i < 6; i++) {
        double v = e2e_json_num(ev, fields[i]);
        ck_assert_msg(v >= 0.0 && v <= 1.0, "%s = %g", fields[i], v);
    }
    /* The expected answer is the first words of the stored answer: fully contained. */
    ck_assert_msg(e2e_json_num(ev, "contains_similarity") > 0.99, "contains %g", e2e_json_num(ev, "contains_similarity"));
    const char *ql = e2e_json_str(ev, "quality_label");
    ck_assert_msg(ql && (!strcmp(ql, "HIGH") || !strcmp(ql, "MEDIUM") || !strcmp(ql, "LOW")), "label %s", ql);
    ck_assert(e2e_is_iso_utc(e2e_json_str(ev, "evaluated_at")));
    e2e_response_free(&r);

    /* A dataset prompt verbatim with its own answer: a perfect score. */
    char *file = e2e_read_file(e2e_test_file("data/ml_expert_dataset.json"), NULL);
    cJSON *fj = cJSON_Parse(file);
    free(file);
    cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(fj, "training_data"), 3);
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "test_prompt", e2e_json_str(item, "prompt"));
    cJSON_AddStringToObject(q, "expected_answer", e2e_json_str(item, "answer"));
    char *qs = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    r = e2e_post(&s, AGENTS "/evalme/evaluate", qs);
    free(qs);
    ck_assert_int_eq(r.status, 200);
    ev = cJSON_GetObjectItemCaseSensitive(r.json, "evaluation");
    ck_assert_msg(e2e_json_num(ev, "overall_similarity") == 1.0, "overall %g: %s", e2e_json_num(ev, "overall_similarity"), r.body);
    ck_assert_str_eq(e2e_json_str(ev, "quality_label"), "HIGH");
    ck_assert_msg(e2e_json_num(ev, "model_confidence") > 0.0, "confidence 0");
    e2e_response_free(&r);

    /* An unrelated expected answer scores LOW. */
    r = e2e_post(&s, AGENTS "/evalme/evaluate",
                 "{\"test_prompt\":\"How to choose between Random Forest and XGBoost?\","
                 "\"expected_answer\":\"zebra quartz violin\"}");
    ck_assert_int_eq(r.status, 200);
    ev = cJSON_GetObjectItemCaseSensitive(r.json, "evaluation");
    ck_assert_str_eq(e2e_json_str(ev, "quality_label"), "LOW");
    ck_assert_msg(e2e_json_num(ev, "overall_similarity") < 0.5, "overall %g", e2e_json_num(ev, "overall_similarity"));
    e2e_response_free(&r);
    cJSON_Delete(fj);

    /* Body validation after ready. */
    post_expect(&s, AGENTS "/evalme/evaluate", "{\"expected_answer\":\"a\"}", 400, "invalid_body", "test_prompt",
                "missing test_prompt");
    post_expect(&s, AGENTS "/evalme/evaluate", "{\"test_prompt\":7,\"expected_answer\":\"a\"}", 400, "invalid_body",
                "test_prompt", "numeric test_prompt");
    post_expect(&s, AGENTS "/evalme/evaluate", "{\"test_prompt\":\"q\",\"expected_answer\":5}", 400, "invalid_body",
                "expected_answer", "numeric expected_answer");
    post_expect(&s, AGENTS "/evalme/evaluate", "{\"test_prompt\":\"q\"}", 400, "invalid_body", "expected_answer",
                "missing expected_answer");

    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 7. the test datasets answer their own prompts ------------------------ */

static void hit_rate(const e2e_server *s, const char *id, const char *rel)
{
    create_ok(s, AGENTS, e2e_dataset_body(id, rel));
    wait_ready(s, id, 30000);
    char *file = e2e_read_file(e2e_test_file(rel), NULL);
    cJSON *fj = cJSON_Parse(file);
    free(file);
    cJSON *items = cJSON_GetObjectItemCaseSensitive(fj, "training_data");
    int n = cJSON_GetArraySize(items), hits = 0;
    ck_assert_int_gt(n, 0);
    char path[128];
    snprintf(path, sizeof(path), AGENTS "/%s/evaluate", id);
    cJSON *item;
    cJSON_ArrayForEach(item, items) {
        cJSON *q = cJSON_CreateObject();
        cJSON_AddStringToObject(q, "test_prompt", e2e_json_str(item, "prompt"));
        cJSON_AddStringToObject(q, "expected_answer", e2e_json_str(item, "answer"));
        char *qs = cJSON_PrintUnformatted(q);
        cJSON_Delete(q);
        e2e_response r = e2e_post(s, path, qs);
        free(qs);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
        const char *pred = e2e_json_str(cJSON_GetObjectItemCaseSensitive(r.json, "evaluation"), "predicted_answer");
        ck_assert_ptr_nonnull(pred);
        char *a = squash(strdup(pred)), *b = squash(strdup(e2e_json_str(item, "answer")));
        if (!strcmp(a, b)) hits++;
        else fprintf(stderr, "%s: miss for '%s'\n", id, e2e_json_str(item, "prompt"));
        free(a);
        free(b);
        e2e_response_free(&r);
    }
    cJSON_Delete(fj);
    fprintf(stderr, "%s: %d/%d exact answers (%.1f%%)\n", rel, hits, n, 100.0 * hits / n);
    ck_assert_msg(hits * 100 >= n * 95, "%s: hit rate %d/%d below 95%%", rel, hits, n);
}

START_TEST(test_datasets_hit_rate)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    hit_rate(&s, "ml_expert", "data/ml_expert_dataset.json");
    hit_rate(&s, "python_expert", "data/python_expert_dataset.json");
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 8. delete ------------------------------------------------------------- */

START_TEST(test_delete)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    create_ok(&s, AGENTS, e2e_dataset_body("gone", "data/python_expert_dataset.json"));
    create_text(&s, "keep1", "The first kept agent talks about sailing boats and wind.");
    create_text(&s, "keep2", "The second kept agent talks about baking bread and ovens.");
    wait_ready(&s, "gone", 30000);

    e2e_response r = e2e_request(&s, "DELETE", AGENTS "/gone", NULL, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "deleted")));
    ck_assert_str_eq(e2e_json_str(r.json, "user_id"), "gone");
    e2e_response_free(&r);
    const char *views[] = {AGENTS "/gone", AGENTS "/gone/status", AGENTS "/gone/pipeline", AGENTS "/gone/executions"};
    for (int i = 0; i < 4; i++) {
        r = e2e_get(&s, views[i]);
        assert_error_at(&r, 404, "agent_not_found", "gone", views[i]);
        e2e_response_free(&r);
    }
    r = e2e_request(&s, "DELETE", AGENTS "/gone", NULL, NULL);
    assert_error_at(&r, 404, "agent_not_found", "gone", "second delete");
    e2e_response_free(&r);
    ck_assert_int_eq((int)list_total(&s), 2);

    /* The same id again: a fresh agent that reaches ready, with its own log. */
    create_ok(&s, AGENTS, e2e_dataset_body("gone", "data/ml_expert_dataset.json"));
    wait_ready(&s, "gone", 30000);
    r = e2e_get(&s, AGENTS "/gone");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(e2e_json_str(cJSON_GetObjectItemCaseSensitive(r.json, "model"), "name"), "v1");
    e2e_response_free(&r);
    r = e2e_get(&s, AGENTS "/gone/executions");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "executions")), 4);
    e2e_response_free(&r);
    /* It answers from the new material, not the deleted one. */
    r = e2e_post(&s, AGENTS "/gone/evaluate",
                 "{\"test_prompt\":\"How to choose between Random Forest and XGBoost?\",\"expected_answer\":\"x\"}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(e2e_json_str(cJSON_GetObjectItemCaseSensitive(r.json, "evaluation"), "predicted_answer"),
                                 "XGBoost"));
    e2e_response_free(&r);

    r = e2e_request(&s, "DELETE", AGENTS "/all", NULL, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_int_eq((int)e2e_json_num(r.json, "deleted"), 3);
    e2e_response_free(&r);
    ck_assert_int_eq((int)list_total(&s), 0);
    r = e2e_get(&s, AGENTS "/keep1/status");
    ck_assert_int_eq(r.status, 404);
    e2e_response_free(&r);
    r = e2e_request(&s, "DELETE", AGENTS "/all", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(r.json, "deleted"), 0);
    e2e_response_free(&r);

    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- NUL bytes smuggled through escapes (regression tests) -------------------- */

/*
 * A JSON \u0000 escape would be decoded by cJSON into a NUL byte that every
 * C-string reader after it takes for the end: {"user_id":"nul\u0000x"} once
 * created the agent "nul". The server refuses such bodies with invalid_json.
 */
START_TEST(test_nul_escape_in_body_is_rejected)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    post_expect(&s, AGENTS, "{\"user_id\":\"nul\\u0000x\",\"training_data\":\"Some text.\"}", 400,
                "invalid_json", "u0000", "user_id with \\u0000");
    e2e_response r = e2e_get(&s, AGENTS "/nul/status");
    ck_assert_int_eq(r.status, 404);
    e2e_response_free(&r);
    e2e_response rt = e2e_post(&s, AGENTS, "{\"user_id\":\"t0\",\"training_data\":\"kept\\u0000dropped\"}");
    ck_assert_msg(rt.status == 400, "training_data with \\u0000: %ld %s", rt.status, rt.body);
    e2e_response_free(&rt);
    ck_assert_int_eq((int)list_total(&s), 0);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/*
 * libmicrohttpd's default URL unescaping turned %00 in the path into a NUL,
 * so DELETE /api/v1/agents/a%00zzz once deleted agent "a". The server keeps
 * %00 encoded, so the id fails validation with invalid_user_id.
 */
START_TEST(test_nul_in_path_id_is_rejected)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    create_text(&s, "a", "Agent a knows about lighthouses and foghorns.");
    wait_ready(&s, "a", 20000);
    e2e_response r = e2e_get(&s, AGENTS "/a%00b/status");
    assert_error_at(&r, 400, "invalid_user_id", "user_id", "GET a%00b/status");
    e2e_response_free(&r);
    r = e2e_request(&s, "DELETE", AGENTS "/a%00zzz", NULL, NULL);
    assert_error_at(&r, 400, "invalid_user_id", "user_id", "DELETE a%00zzz");
    e2e_response_free(&r);
    r = e2e_get(&s, AGENTS "/a/status");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

Suite *e2e_agents_api_suite(void)
{
    Suite *s = suite_create("e2e_agents_api");
    TCase *tc = tcase_create("agents_api");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_create_validation);
    tcase_add_test(tc, test_create_dataset_item_limit);
    tcase_add_test(tc, test_advanced_alias);
    tcase_add_test(tc, test_unknown_agent_and_bad_path_id);
    tcase_add_test(tc, test_list_pagination_and_filters);
    tcase_add_test(tc, test_agent_detail_pipeline_executions);
    tcase_add_test(tc, test_evaluate);
    tcase_add_test(tc, test_datasets_hit_rate);
    tcase_add_test(tc, test_delete);
    tcase_add_test(tc, test_nul_escape_in_body_is_rejected);
    tcase_add_test(tc, test_nul_in_path_id_is_rejected);
    suite_add_tcase(s, tc);
    return s;
}
