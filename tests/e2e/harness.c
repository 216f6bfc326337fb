#include "tests/e2e/harness.h"

#include <check.h>
#include <ctype.h>
#include <stdarg.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "base/buf.h"
#include "tests/common/pgserver.h"

/* The shared PostgreSQL server, started before the suites fork their tests:
 * each test process inherits its dir and port. */
static pgserver e2e_pg;
static int e2e_pg_running;

int e2e_backend_pg(void)
{
    const char *b = getenv("AGENTD_E2E_BACKEND");
    return b && !strcmp(b, "pg");
}

int e2e_skip_on_pg(const char *why)
{
    if (!e2e_backend_pg()) return 0;
    fprintf(stderr, "skipped on PostgreSQL: %s\n", why);
    return 1;
}

/* A connection to the server's PostgreSQL database. */
static PGconn *e2e_pg_connect(const e2e_server *s)
{
    PGconn *conn = PQconnectdb(s->database_url);
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    return conn;
}

/* The server's SQLite file, opened beside it (WAL: waits for its writes). */
static sqlite3 *e2e_lite_open(const e2e_server *s)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/agentd.db", s->data_dir);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    return db;
}

long long e2e_db_int(const e2e_server *s, const char *sql)
{
    long long v = -1;
    if (s->database_url[0]) {
        PGconn *conn = e2e_pg_connect(s);
        PGresult *res = PQexec(conn, sql);
        ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
        if (PQntuples(res) > 0) v = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
        PQfinish(conn);
        return v;
    }
    sqlite3 *db = e2e_lite_open(s);
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

char *e2e_db_rows(const e2e_server *s, const char *sql)
{
    ad_buf b;
    ad_buf_init(&b);
    if (s->database_url[0]) {
        PGconn *conn = e2e_pg_connect(s);
        PGresult *res = PQexec(conn, sql);
        ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
        for (int r = 0; r < PQntuples(res); r++) {
            for (int c = 0; c < PQnfields(res); c++)
                ad_buf_printf(&b, "%s%s", c ? "|" : "", PQgetisnull(res, r, c) ? "NULL" : PQgetvalue(res, r, c));
            ad_buf_putc(&b, '\n');
        }
        PQclear(res);
        PQfinish(conn);
        return ad_buf_steal(&b, NULL);
    }
    sqlite3 *db = e2e_lite_open(s);
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const unsigned char *v = sqlite3_column_text(st, c);
            ad_buf_printf(&b, "%s%s", c ? "|" : "", v ? (const char *)v : "NULL");
        }
        ad_buf_putc(&b, '\n');
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ad_buf_steal(&b, NULL);
}

long long e2e_db_exec(const e2e_server *s, const char *sql)
{
    long long n;
    if (s->database_url[0]) {
        PGconn *conn = e2e_pg_connect(s);
        PGresult *res = PQexec(conn, sql);
        ExecStatusType st = PQresultStatus(res);
        ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
        n = atoll(PQcmdTuples(res));
        PQclear(res);
        PQfinish(conn);
        return n;
    }
    sqlite3 *db = e2e_lite_open(s);
    char *err = NULL;
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql, err ? err : "?");
    n = sqlite3_changes(db);
    sqlite3_close(db);
    return n;
}

int e2e_pg_setup(void)
{
    if (!e2e_backend_pg()) return 0;
    if (pgserver_start(&e2e_pg) < 0) return -1;
    e2e_pg_running = 1;
    return 0;
}

void e2e_pg_teardown(void)
{
    if (!e2e_pg_running) return;
    pgserver_destroy(&e2e_pg);
    e2e_pg_running = 0;
}

/* A fresh database for `s` on the shared server. */
static void e2e_pg_create(e2e_server *s)
{
    static int seq;
    ck_assert_msg(e2e_pg_running, "AGENTD_E2E_BACKEND=pg but no PostgreSQL server was started");
    char name[64];
    snprintf(name, sizeof(name), "e2e_%d_%d", (int)getpid(), seq++);
    ck_assert_msg(pgserver_create_db(&e2e_pg, name, s->database_url, sizeof(s->database_url)) == 0,
                  "cannot create database %s", name);
}

void e2e_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

char *e2e_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    ad_buf b;
    ad_buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) ad_buf_append(&b, chunk, n);
    fclose(f);
    return ad_buf_steal(&b, len);
}

const char *e2e_test_file(const char *rel)
{
    static char path[1024];
    snprintf(path, sizeof(path), "tests/%s", rel);
    return path;
}

char *e2e_dataset_body(const char *user_id, const char *rel)
{
    char *text = e2e_read_file(e2e_test_file(rel), NULL);
    ck_assert_msg(text != NULL, "cannot read %s (run from the repository root)", e2e_test_file(rel));
    cJSON *file = cJSON_Parse(text);
    free(text);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "user_id", user_id);
    cJSON_AddItemToObject(body, "dataset",
                          cJSON_DetachItemFromObject(file, "training_data"));
    char *out = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    cJSON_Delete(file);
    return out;
}

static void e2e_spawn(e2e_server *s, const char *const *args, const char *const *env)
{
    const char *bin = getenv("AGENTD_BIN");
    if (!bin || !*bin) bin = "bin/agentd";
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--data-dir";
    argv[n++] = s->data_dir;
    if (s->database_url[0]) {
        argv[n++] = "--database-url";
        argv[n++] = s->database_url;
    }
    for (int i = 0; args && args[i] && n < 62; i++) argv[n++] = args[i];
    argv[n] = NULL;
    truncate(s->log_path, 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) dup2(fd, 2);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) dup2(devnull, 0), dup2(devnull, 1);
        for (int i = 0; env && env[i]; i++) putenv((char *)(uintptr_t)env[i]);
        execv(bin, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    s->pid = pid;
    s->port = 0;
    for (int waited = 0; waited < 20000 && !s->port; waited += 10) {
        char *log = e2e_read_file(s->log_path, NULL);
        const char *line = log ? strstr(log, "\"msg\":\"listening\"") : NULL;
        const char *p = line ? strstr(line, "\"port\":") : NULL;
        if (p) s->port = atoi(p + 7);
        free(log);
        int status;
        if (!s->port && waitpid(pid, &status, WNOHANG) == pid) {
            char *l = e2e_read_file(s->log_path, NULL);
            ck_abort_msg("agentd exited during start-up: %s", l ? l : "");
        }
        if (!s->port) e2e_sleep_ms(10);
    }
    ck_assert_msg(s->port > 0, "agentd did not start listening");
}

void e2e_start(e2e_server *s, const char *const *args, const char *const *env)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/agentd-e2e-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s->dir));
    snprintf(s->log_path, sizeof(s->log_path), "%s/agentd.log", s->dir);
    snprintf(s->data_dir, sizeof(s->data_dir), "%s/data", s->dir);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (e2e_backend_pg()) e2e_pg_create(s);
    e2e_spawn(s, args, env);
}

void e2e_restart(e2e_server *s, const char *const *args, const char *const *env)
{
    e2e_spawn(s, args, env);
}

static void e2e_check_log(const e2e_server *s)
{
    char *log = e2e_read_file(s->log_path, NULL);
    if (!log) return;
    int bad = strstr(log, "AddressSanitizer") || strstr(log, "LeakSanitizer") ||
              strstr(log, "runtime error:") || strstr(log, "ThreadSanitizer");
    if (bad) fprintf(stderr, "---- agentd log with a sanitizer report ----\n%s\n", log);
    free(log);
    ck_assert_msg(!bad, "sanitizer report in agentd's log");
}

int e2e_stop(e2e_server *s)
{
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int status = 0;
    for (int waited = 0; waited < 30000; waited += 10) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) break;
        e2e_sleep_ms(10);
        if (waited + 10 >= 30000) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
        }
    }
    s->pid = 0;
    e2e_check_log(s);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void e2e_kill(e2e_server *s)
{
    if (s->pid <= 0) return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

void e2e_cleanup(e2e_server *s)
{
    if (s->pid > 0) e2e_kill(s);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", s->dir);
}

static size_t e2e_write_cb(char *p, size_t size, size_t n, void *ud)
{
    ad_buf_append(ud, p, size * n);
    return size * n;
}

e2e_response e2e_request(const e2e_server *s, const char *method, const char *path,
                         const char *body, const char *const *headers)
{
    e2e_response r = {0};
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    char url[8192 + 64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
    ad_buf b, h;
    ad_buf_init(&b);
    ad_buf_init(&h);
    struct curl_slist *hl = NULL;
    int has_ct = 0;
    for (int i = 0; headers && headers[i]; i++) {
        hl = curl_slist_append(hl, headers[i]);
        if (strncasecmp(headers[i], "Content-Type:", 13) == 0) has_ct = 1;
    }
    if (body && !has_ct) hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, e2e_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, e2e_write_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r.body = ad_buf_steal(&b, &r.body_len);
    r.headers = ad_buf_steal(&h, NULL);
    r.json = cJSON_Parse(r.body);
    char *content_type = e2e_header(&r, "Content-Type");
    e2e_contract_record(method, path, r.status, content_type, r.body);
    free(content_type);
    return r;
}

void e2e_contract_record(const char *method, const char *path, long status,
                         const char *content_type, const char *body)
{
    const char *log = getenv("AGENTD_CONTRACT_LOG");
    if (!log || !*log) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "test", tcase_name() ? tcase_name() : "");
    cJSON_AddStringToObject(o, "method", method);
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddNumberToObject(o, "status", (double)status);
    if (content_type) cJSON_AddStringToObject(o, "content_type", content_type);
    else cJSON_AddNullToObject(o, "content_type");
    cJSON_AddStringToObject(o, "body", body ? body : "");
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    ck_assert_ptr_nonnull(json);
    char *line = e2e_fmt("%s\n", json);
    free(json);
    /* One write() on an O_APPEND descriptor: lines from concurrent threads and
     * forked tests never interleave. */
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "cannot open the contract log %s: %s", log, strerror(errno));
    size_t len = strlen(line);
    ssize_t n = write(fd, line, len);
    close(fd);
    ck_assert_msg(n == (ssize_t)len, "short write to the contract log %s", log);
    free(line);
}

e2e_response e2e_get(const e2e_server *s, const char *path)
{
    return e2e_request(s, "GET", path, NULL, NULL);
}

e2e_response e2e_post(const e2e_server *s, const char *path, const char *json)
{
    return e2e_request(s, "POST", path, json, NULL);
}

void e2e_response_free(e2e_response *r)
{
    free(r->body);
    free(r->headers);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof(*r));
}

char *e2e_header(const e2e_response *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ') v++;
            return strndup(v, len - (size_t)(v - p));
        }
        p += len + (eol ? 2 : 0);
    }
    return NULL;
}

const char *e2e_wait_agent(const e2e_server *s, const char *user_id, int timeout_ms)
{
    return e2e_wait_agent_as(s, user_id, timeout_ms, NULL);
}

int e2e_file_holds(const char *path, const char *needle)
{
    size_t len = 0, n = strlen(needle);
    char *data = e2e_read_file(path, &len);
    int found = 0;
    for (size_t i = 0; data && !found && n <= len && i <= len - n; i++) found = !memcmp(data + i, needle, n);
    free(data);
    return found;
}

const char *e2e_wait_agent_as(const e2e_server *s, const char *user_id, int timeout_ms,
                              const char *const *headers)
{
    static char last[32];
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/agents/%s/status", user_id);
    snprintf(last, sizeof(last), "timeout");
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        e2e_response r = e2e_request(s, "GET", path, NULL, headers);
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(r.json, "status"));
        if (r.status == 200 && st && (!strcmp(st, "ready") || !strcmp(st, "error"))) {
            snprintf(last, sizeof(last), "%s", st);
            e2e_response_free(&r);
            return last;
        }
        e2e_response_free(&r);
        e2e_sleep_ms(20);
    }
    return last;
}

int e2e_log_count(const e2e_server *s, const char *needle)
{
    char *log = e2e_read_file(s->log_path, NULL);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
    free(log);
    return n;
}

int e2e_log_wait(const e2e_server *s, const char *needle, int at_least, int timeout_ms)
{
    int n;
    for (int waited = 0; (n = e2e_log_count(s, needle)) < at_least && waited < timeout_ms; waited += 10)
        e2e_sleep_ms(10);
    return n;
}

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

int e2e_connect(const e2e_server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

char *e2e_read_all(int fd, int timeout_ms)
{
    ad_buf b;
    ad_buf_init(&b);
    char chunk[4096];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, timeout_ms) > 0) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0) break;
        ad_buf_append(&b, chunk, (size_t)n);
    }
    return ad_buf_steal(&b, NULL);
}

const char *e2e_json_str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

double e2e_json_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", k);
    return v->valuedouble;
}

char *e2e_fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *out = NULL;
    ck_assert_int_ge(vasprintf(&out, f, ap), 0);
    va_end(ap);
    return out;
}

int e2e_is_iso_utc(const char *t)
{
    const char *pat = "dddd-dd-ddTdd:dd:dd";
    if (!t) return 0;
    size_t i = 0;
    for (; pat[i]; i++) {
        if (pat[i] == 'd' ? !isdigit((unsigned char)t[i]) : t[i] != pat[i]) return 0;
    }
    if (t[i] == '.') {
        i++;
        if (!isdigit((unsigned char)t[i])) return 0;
        while (isdigit((unsigned char)t[i])) i++;
    }
    return t[i] == 'Z' && t[i + 1] == '\0';
}

void e2e_assert_error(const e2e_response *r, long status, const char *code, const char *needle,
                      const char *what)
{
    ck_assert_msg(r->status == status, "%s: status %ld, want %ld: %s", what, r->status, status, r->body);
    ck_assert_msg(r->json != NULL, "%s: body is not JSON: %s", what, r->body);
    const char *c = e2e_json_str(r->json, "code");
    ck_assert_msg(c && !strcmp(c, code), "%s: code %s, want %s: %s", what, c ? c : "(none)", code, r->body);
    const char *msg = e2e_json_str(r->json, "error");
    ck_assert_msg(msg && *msg, "%s: no error message: %s", what, r->body);
    if (needle)
        ck_assert_msg(strstr(msg, needle) != NULL, "%s: error '%s' does not contain '%s'", what, msg, needle);
    const char *rid = e2e_json_str(r->json, "request_id");
    ck_assert_msg(rid && *rid, "%s: no request_id", what);
}

char *e2e_make_text(size_t bytes, unsigned seed)
{
    static const char *const topics[] = {"compilers", "databases", "networks", "kernels",
                                         "parsers", "allocators", "schedulers", "codecs"};
    static const char *const verbs[] = {"optimize", "index", "route", "schedule", "tokenize",
                                        "allocate", "balance", "encode"};
    ad_buf b;
    ad_buf_init(&b);
    for (unsigned i = 0; b.len < bytes; i++) {
        unsigned k = (i * 2654435761u) ^ seed;
        ad_buf_printf(&b, "Section %u explains how %s %s data number %u under load. ", i,
                      topics[k % 8], verbs[(k >> 3) % 8], k % 9973);
        if (i % 7 == 6) ad_buf_puts(&b, "\n\n");
    }
    return ad_buf_steal(&b, NULL);
}
