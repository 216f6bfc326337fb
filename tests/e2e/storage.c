/* Storage faults and upkeep over HTTP against the real binary: requests
 * racing a delete, a full disk (a small tmpfs as the data dir), space given
 * back after deletes, log retention, and start-up on a database that is
 * corrupt or cannot be opened. */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "tests/common/pgserver.h"
#include "tests/e2e/harness.h"

/* The database server goes away under a running replica (issue 13): every
 * route that needs it answers 503 database_unavailable with Retry-After: 1
 * and the fixed words, promptly, never 500; a token check is the same 503,
 * never 401; /health is 503 with connection "unavailable". When the server
 * comes back, the same process serves again without a restart. Runs on a
 * PostgreSQL server of its own on either backend. */
START_TEST(test_database_down_503_then_recovers)
{
    pgserver pg;
    ck_assert_int_eq(pgserver_start(&pg), 0);
    char url[512], name[64];
    snprintf(name, sizeof(name), "e2e_down_%d", (int)getpid());
    ck_assert_int_eq(pgserver_create_db(&pg, name, url, sizeof(url)), 0);
    e2e_server s;
    const char *args[] = {"--database-url", url, "--api-key", "down-admin-key", NULL};
    e2e_start(&s, args, NULL);
    const char *admin[] = {"Authorization: Bearer down-admin-key", NULL};
    e2e_response r = e2e_request(&s, "POST", "/api/v1/tokens",
                                 "{\"name\":\"down\",\"scopes\":[\"agents:read\"],\"agents\":\"*\"}", admin);
    ck_assert_msg(r.status == 201, "create token: %ld %s", r.status, r.body);
    char *auth = e2e_fmt("Authorization: Bearer %s", e2e_json_str(r.json, "token"));
    e2e_response_free(&r);
    const char *tok[] = {auth, NULL};
    r = e2e_request(&s, "GET", "/api/v1/agents", NULL, tok);
    ck_assert_msg(r.status == 200, "list before: %ld %s", r.status, r.body);
    e2e_response_free(&r);

    ck_assert_int_eq(pgserver_stop(&pg), 0);
    static const struct {
        const char *method, *path, *body;
        int token;
    } calls[] = {
        {"GET", "/api/v1/agents", NULL, 0},
        {"GET", "/api/v1/agents", NULL, 1},
        {"GET", "/api/v1/agents/nobody/status", NULL, 0},
        {"POST", "/api/v1/tokens", "{\"name\":\"x\",\"scopes\":[\"agents:read\"],\"agents\":\"*\"}", 0},
        {"GET", "/api/v1/audit", NULL, 0},
    };
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            r = e2e_request(&s, calls[i].method, calls[i].path, calls[i].body, calls[i].token ? tok : admin);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
            char *what = e2e_fmt("%s %s%s (round %d)", calls[i].method, calls[i].path,
                                 calls[i].token ? " with a token" : "", round);
            e2e_assert_error(&r, 503, "database_unavailable", "the database cannot be reached; retry shortly", what);
            char *after = e2e_header(&r, "Retry-After");
            ck_assert_msg(after && strcmp(after, "1") == 0, "%s: Retry-After %s", what, after ? after : "none");
            ck_assert_msg(ms < 6000, "%s took %ld ms", what, ms);
            free(after);
            free(what);
            e2e_response_free(&r);
        }
        e2e_sleep_ms(600); /* past the driver's reconnect interval: the retry fails too */
    }
    r = e2e_get(&s, "/health");
    ck_assert_msg(r.status == 503, "health while down: %ld %s", r.status, r.body);
    const cJSON *checks = cJSON_GetObjectItemCaseSensitive(r.json, "checks");
    const cJSON *db = cJSON_GetObjectItemCaseSensitive(checks, "database");
    ck_assert_str_eq(e2e_json_str(db, "connection"), "unavailable");
    ck_assert_str_eq(e2e_json_str(db, "status"), "error");
    e2e_response_free(&r);

    ck_assert_int_eq(pgserver_restart(&pg), 0);
    long status = 0;
    for (int i = 0; i < 100 && status != 200; i++) {
        e2e_sleep_ms(100);
        r = e2e_request(&s, "GET", "/api/v1/agents", NULL, tok);
        status = r.status;
        e2e_response_free(&r);
    }
    ck_assert_int_eq(status, 200);
    /* Each HTTP thread holds its own connection and resets it on its next
     * use, at most every 500 ms: /health may land on a thread whose
     * connection has not been used since the restart, so it too gets a few
     * seconds to come back. */
    r = e2e_get(&s, "/health");
    for (int i = 0; i < 50 && r.status != 200; i++) {
        e2e_response_free(&r);
        e2e_sleep_ms(100);
        r = e2e_get(&s, "/health");
    }
    ck_assert_msg(r.status == 200, "health after: %ld %s", r.status, r.body);
    checks = cJSON_GetObjectItemCaseSensitive(r.json, "checks");
    db = cJSON_GetObjectItemCaseSensitive(checks, "database");
    ck_assert_str_eq(e2e_json_str(db, "connection"), "ok");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
    free(auth);
    pgserver_destroy(&pg);
}
END_TEST

Suite *e2e_storage_suite(void);

#define AGENTS "/api/v1/agents"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void create_from(const e2e_server *s, const char *id, const char *shared_rel)
{
    char *body = e2e_dataset_body(id, shared_rel);
    e2e_response r = e2e_post(s, AGENTS, body);
    free(body);
    ck_assert_msg(r.status == 201, "create %s: %ld %s", id, r.status, r.body);
    e2e_response_free(&r);
}

static void wait_ready(const e2e_server *s, const char *id, int timeout_ms)
{
    const char *st = e2e_wait_agent(s, id, timeout_ms);
    ck_assert_msg(!strcmp(st, "ready"), "agent %s ended %s", id, st);
}

/* Size of a file, 0 when it does not exist. */
static long long file_size(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* About `bytes` of varied sentences, deterministic per `seed`. */
static char *sentences(size_t bytes, unsigned seed)
{
    static const char *const words[] = {
        "kernel", "thread", "socket", "buffer", "index",  "passage", "model",   "vector",
        "matrix", "tensor", "linker", "module", "packet", "latency", "cache",   "memory",
        "disk",   "queue",  "signal", "parser", "token",  "schema",  "replica", "journal"};
    const size_t nw = sizeof(words) / sizeof(words[0]);
    ad_buf b;
    ad_buf_init(&b);
    unsigned x = seed * 2654435761u + 1;
    while (b.len < bytes) {
        x = x * 1103515245u + 12345u;
        int k = 8 + (int)((x >> 16) % 8);
        for (int i = 0; i < k; i++) {
            x = x * 1103515245u + 12345u;
            if (i) ad_buf_putc(&b, ' ');
            ad_buf_puts(&b, words[(x >> 16) % nw]);
        }
        ad_buf_printf(&b, " %u. ", x % 100000);
    }
    return ad_buf_steal(&b, NULL);
}

static char *text_body(const char *id, size_t bytes, unsigned seed)
{
    char *text = sentences(bytes, seed);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", id);
    cJSON_AddStringToObject(o, "training_data", text);
    free(text);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return body;
}

/* ---- 1. requests racing a delete -------------------------------------------- */

/* What no response body may carry: the database's own words. */
static const char *leaked_storage_text(const char *body)
{
    static const char *const bad[] = {"constraint", "sqlite", "foreign key", "not found", "database is locked",
                                      "disk is full"};
    for (size_t i = 0; body && i < sizeof(bad) / sizeof(bad[0]); i++)
        if (strcasestr(body, bad[i])) return bad[i];
    return NULL;
}

typedef struct race_route {
    const char *name;
    const char *path;     /* below /api/v1/agents/racer */
    const char *body;
    long allowed[4];      /* 0-terminated */
} race_route;

static const race_route race_routes[] = {
    {"feedback", "/feedback", "{\"prompt\":\"p\",\"response\":\"r\",\"feedback\":\"f\"}", {201, 404}},
    {"inference", "/inference", "{\"prompt\":\"How do I create a REST API with Flask?\"}", {200, 404, 409}},
    {"evaluate", "/evaluate", "{\"test_prompt\":\"What is Flask?\",\"expected_answer\":\"A web framework.\"}",
     {200, 404, 409}},
    {"train", "/train", "{\"iterations\":1}", {202, 404, 409}},
    {"replay", "/replay", "{\"task_index\":2}", {202, 404, 409}},
    {"deploy", "/models/v1/deploy", NULL, {200, 404}},
};

typedef struct race_state {
    const e2e_server *s;
    const race_route *route;
    long long until;
    char failure[600];    /* the first unexpected answer, empty when none */
    int requests, answered_ok;
} race_state;

static void race_note(race_state *st, const char *what, const e2e_response *r)
{
    if (st->failure[0]) return;
    snprintf(st->failure, sizeof(st->failure), "%s: %ld %.400s", what, r->status, r->body ? r->body : "");
}

static void *race_requester(void *arg)
{
    race_state *st = arg;
    char *path = e2e_fmt(AGENTS "/racer%s", st->route->path);
    while (now_ms() < st->until) {
        e2e_response r = e2e_request(st->s, "POST", path, st->route->body, NULL);
        int ok = 0;
        for (int i = 0; st->route->allowed[i]; i++) ok |= r.status == st->route->allowed[i];
        if (!ok || leaked_storage_text(r.body)) race_note(st, st->route->name, &r);
        st->requests++;
        st->answered_ok += r.status >= 200 && r.status < 300;
        e2e_response_free(&r);
    }
    free(path);
    return NULL;
}

static void *race_deleter(void *arg)
{
    race_state *st = arg;
    char *body = e2e_dataset_body("racer", "data/python_expert_dataset.json");
    while (now_ms() < st->until) {
        e2e_response r = e2e_request(st->s, "DELETE", AGENTS "/racer", NULL, NULL);
        if ((r.status != 200 && r.status != 404) || leaked_storage_text(r.body)) race_note(st, "delete", &r);
        e2e_response_free(&r);
        r = e2e_post(st->s, AGENTS, body);
        if ((r.status != 201 && r.status != 409) || leaked_storage_text(r.body)) race_note(st, "create", &r);
        e2e_response_free(&r);
        /* Give the pipeline a moment, so that requests also meet a ready agent. */
        e2e_sleep_ms(15);
    }
    free(body);
    return NULL;
}

START_TEST(test_requests_racing_delete_never_500)
{
    e2e_server s;
    static const char *const args[] = {"--workers", "2", NULL};
    e2e_start(&s, args, NULL);
    for (size_t k = 0; k < sizeof(race_routes) / sizeof(race_routes[0]); k++) {
        e2e_response r = e2e_request(&s, "DELETE", AGENTS "/racer", NULL, NULL);
        e2e_response_free(&r);
        create_from(&s, "racer", "data/python_expert_dataset.json");
        wait_ready(&s, "racer", 30000);
        long long until = now_ms() + 1500;
        race_state st[3];
        pthread_t t[3];
        for (int i = 0; i < 3; i++) {
            st[i] = (race_state){.s = &s, .route = &race_routes[k], .until = until};
            pthread_create(&t[i], NULL, i == 2 ? race_deleter : race_requester, &st[i]);
        }
        int requests = 0, ok = 0;
        for (int i = 0; i < 3; i++) {
            pthread_join(t[i], NULL);
            ck_assert_msg(!st[i].failure[0], "%s racing a delete: %s", race_routes[k].name, st[i].failure);
            requests += st[i].requests;
            ok += st[i].answered_ok;
        }
        ck_assert_msg(requests >= 10, "%s: only %d requests in the race", race_routes[k].name, requests);
        fprintf(stderr, "race %s: %d requests, %d answered 2xx\n", race_routes[k].name, requests, ok);
    }
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 2. a full disk ------------------------------------------------------------ */

/* Fills the file system under `dir` with one file, then gives `slack`
 * bytes back; returns the file's path (static). */
static const char *fill_disk(const char *dir, off_t slack)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    static char chunk[4096];
    while (write(fd, chunk, sizeof(chunk)) > 0) {}
    while (write(fd, chunk, 1) > 0) {}
    off_t size = lseek(fd, 0, SEEK_END);
    ck_assert_int_eq(ftruncate(fd, size > slack ? size - slack : 0), 0);
    close(fd);
    return path;
}

static e2e_response health(const e2e_server *s)
{
    e2e_response r = e2e_get(s, "/health");
    ck_assert_msg(r.status == 200 || r.status == 503, "health: %ld %s", r.status, r.body);
    return r;
}

static const char *health_writes(const e2e_response *r)
{
    const cJSON *db = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r->json, "checks"),
                                                       "database");
    return e2e_json_str(db, "writes");
}

#define FULL_AGENTS 40

/* The process that runs the suite (forked tests inherit it): its tmpfs
 * mounts carry its pid, so the suite's teardown, which runs even when a
 * test failed half-way, unmounts its own and nobody else's. */
static pid_t suite_pid;

static void full_disk_prefix(char *out, size_t cap)
{
    snprintf(out, cap, "/tmp/agentd-full-%ld-", (long)suite_pid);
}

static void storage_suite_setup(void)
{
    suite_pid = getpid();
}

static void storage_suite_teardown(void)
{
    char prefix[64];
    full_disk_prefix(prefix, sizeof(prefix));
    FILE *f = fopen("/proc/mounts", "r");
    if (!f) return;
    char line[1024], left[16][256];
    int n = 0;
    while (fgets(line, sizeof(line), f) && n < 16) {
        char dev[256], dir[256];
        if (sscanf(line, "%255s %255s", dev, dir) == 2 && !strncmp(dir, prefix, strlen(prefix)))
            snprintf(left[n++], sizeof(left[0]), "%s", dir);
    }
    fclose(f);
    for (int i = 0; i < n; i++) {
        char *cmd = e2e_fmt("umount '%s' && rm -rf '%s'", left[i], left[i]);
        if (system(cmd) != 0) fprintf(stderr, "could not unmount %s\n", left[i]);
        free(cmd);
    }
}

START_TEST(test_full_disk_503_then_recovers_without_restart)
{
    if (e2e_skip_on_pg("fills the file system under the SQLite file")) return;
    char mnt[96];
    full_disk_prefix(mnt, sizeof(mnt));
    strcat(mnt, "XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(mnt));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=4m") != 0) {
        fprintf(stderr,
                "\n*** SKIPPED test_full_disk_503_then_recovers_without_restart: cannot mount a tmpfs "
                "(%s); run the e2e suite as root (CI does) to test a full disk ***\n\n",
                strerror(errno));
        rmdir(mnt);
        return;
    }
    char data[200];
    snprintf(data, sizeof(data), "%s/data", mnt);
    e2e_server s;
    const char *const args[] = {"--data-dir", data, "--workers", "2", NULL};
    e2e_start(&s, args, NULL);
    snprintf(s.data_dir, sizeof(s.data_dir), "%s", data);

    /* Healthy, with an agent that serves. */
    create_from(&s, "before", "data/python_expert_dataset.json");
    wait_ready(&s, "before", 30000);
    e2e_response r = health(&s);
    ck_assert_msg(r.status == 200, "health before: %s", r.body);
    ck_assert_str_eq(health_writes(&r), "ok");
    e2e_response_free(&r);

    /* A little room: the first creates fit, their pipelines then meet the
     * full disk half-way (the jobs a restart used to be needed for). */
    const char *filler = fill_disk(mnt, 256 << 10);
    /* Creates until the database refuses them: 503 storage_unavailable with
     * Retry-After, never 500; what was accepted must end ready later. */
    char accepted[FULL_AGENTS][24];
    int naccepted = 0, refused = 0;
    for (int i = 0; i < FULL_AGENTS && refused < 3; i++) {
        char id[24];
        snprintf(id, sizeof(id), "full%d", i);
        char *body = text_body(id, 40000, (unsigned)i);
        r = e2e_post(&s, AGENTS, body);
        free(body);
        ck_assert_msg(r.status == 201 || r.status == 503, "create %s on a full disk: %ld %s", id, r.status,
                      r.body);
        ck_assert_msg(!leaked_storage_text(r.body), "create %s: database text in %s", id, r.body);
        if (r.status == 201) {
            snprintf(accepted[naccepted++], sizeof(accepted[0]), "%s", id);
        } else {
            e2e_assert_error(&r, 503, "storage_unavailable", NULL, "create on a full disk");
            char *ra = e2e_header(&r, "Retry-After");
            ck_assert_msg(ra && atoi(ra) > 0, "503 without Retry-After");
            free(ra);
            refused++;
            if (refused == 1) {
                /* Right after a refused write, /health says so. */
                e2e_response h = health(&s);
                ck_assert_msg(h.status == 503, "health while writes fail: %ld %s", h.status, h.body);
                ck_assert_str_eq(health_writes(&h), "failing");
                ck_assert_msg(!leaked_storage_text(h.body), "health carries database text: %s", h.body);
                e2e_response_free(&h);
            }
        }
        e2e_response_free(&r);
    }
    ck_assert_msg(refused > 0, "the full disk never refused a create (%d accepted)", naccepted);
    /* Reads still work. */
    r = e2e_get(&s, AGENTS "/before/status");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);

    /* Space comes back: no restart, /health recovers, every accepted agent
     * reaches ready (jobs the full disk interrupted run again). */
    ck_assert_int_eq(unlink(filler), 0);
    long long end = now_ms() + 20000;
    long status = 0;
    while (now_ms() < end) {
        r = health(&s);
        status = r.status;
        e2e_response_free(&r);
        if (status == 200) break;
        e2e_sleep_ms(100);
    }
    ck_assert_msg(status == 200, "health did not recover after space came back");
    for (int i = 0; i < naccepted; i++) wait_ready(&s, accepted[i], 30000);
    char *body = text_body("after", 20000, 999);
    r = e2e_post(&s, AGENTS, body);
    free(body);
    ck_assert_msg(r.status == 201, "create after recovery: %ld %s", r.status, r.body);
    e2e_response_free(&r);
    wait_ready(&s, "after", 30000);
    fprintf(stderr, "full disk: %d create(s) accepted, %d refused with 503, %d job(s) interrupted and run "
            "again, all ready after\n", naccepted, refused, e2e_log_count(&s, "run again"));

    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
    ck_assert_int_eq(umount(mnt), 0);
    rmdir(mnt);
}
END_TEST

/* ---- 3. space given back ----------------------------------------------------- */

#define SPACE_AGENTS 24

START_TEST(test_deletes_give_space_back)
{
    if (e2e_skip_on_pg("measures the SQLite file's pages")) return;
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    for (int i = 0; i < SPACE_AGENTS; i++) {
        char id[24];
        snprintf(id, sizeof(id), "space%d", i);
        char *body = text_body(id, 60000, (unsigned)i + 100);
        e2e_response r = e2e_post(&s, AGENTS, body);
        free(body);
        ck_assert_msg(r.status == 201, "create %s: %ld %s", id, r.status, r.body);
        e2e_response_free(&r);
    }
    for (int i = 0; i < SPACE_AGENTS; i++) {
        char id[24];
        snprintf(id, sizeof(id), "space%d", i);
        wait_ready(&s, id, 60000);
    }
    long long db0 = file_size(s.data_dir, "agentd.db"), wal0 = file_size(s.data_dir, "agentd.db-wal");
    ck_assert_msg(db0 + wal0 > 4 << 20, "the files did not grow: db %lld, wal %lld", db0, wal0);

    e2e_response r = e2e_request(&s, "DELETE", AGENTS "/all", NULL, NULL);
    ck_assert_msg(r.status == 200, "delete all: %ld %s", r.status, r.body);
    e2e_response_free(&r);

    /* Within a bounded time, with the default maintenance interval (60 s):
     * the delete itself starts the reclaiming. */
    long long end = now_ms() + 10000, wal = -1, db = -1, free_pages = -1;
    while (now_ms() < end) {
        wal = file_size(s.data_dir, "agentd.db-wal");
        db = file_size(s.data_dir, "agentd.db");
        free_pages = e2e_db_int(&s, "PRAGMA freelist_count");
        if (wal == 0 && free_pages == 0 && db < db0 / 4) break;
        e2e_sleep_ms(100);
    }
    fprintf(stderr, "space: before db %lld + wal %lld bytes; after delete db %lld + wal %lld, %lld free pages\n",
            db0, wal0, db, wal, free_pages);
    ck_assert_msg(wal == 0, "WAL not truncated: %lld bytes", wal);
    ck_assert_msg(free_pages == 0, "%lld free pages not reclaimed", free_pages);
    ck_assert_msg(db < db0 / 4, "database file %lld bytes, was %lld", db, db0);
    ck_assert_int_eq(e2e_db_int(&s, "PRAGMA auto_vacuum"), 2);

    /* The server goes on as before. */
    create_from(&s, "again", "data/python_expert_dataset.json");
    wait_ready(&s, "again", 30000);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 4. log retention ----------------------------------------------------------- */

static long long agent_rows(const e2e_server *s, const char *table)
{
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE agent_id = (SELECT id FROM agents WHERE user_id='keep')",
             table);
    return e2e_db_int(s, sql);
}

START_TEST(test_log_retention_prunes_in_background)
{
    e2e_server s;
    static const char *const args[] = {"--log-max-rows-per-agent", "5", "--maintenance-interval", "1s", NULL};
    e2e_start(&s, args, NULL);
    create_from(&s, "keep", "data/python_expert_dataset.json");
    wait_ready(&s, "keep", 30000);
    for (int i = 0; i < 12; i++) {
        e2e_response r = e2e_post(&s, AGENTS "/keep/inference", "{\"prompt\":\"What is a decorator?\"}");
        ck_assert_int_eq(r.status, 200);
        e2e_response_free(&r);
    }
    for (int i = 0; i < 8; i++) {
        e2e_response r = e2e_post(&s, AGENTS "/keep/feedback",
                                  "{\"prompt\":\"p\",\"response\":\"r\",\"feedback\":\"more examples\"}");
        ck_assert_int_eq(r.status, 201);
        e2e_response_free(&r);
    }
    /* Rows per agent: the newest 5 stay, pruned within a few intervals. */
    long long end = now_ms() + 8000, inf = -1, fb = -1;
    while (now_ms() < end) {
        inf = agent_rows(&s, "inferences");
        fb = agent_rows(&s, "feedback");
        if (inf == 5 && fb == 5) break;
        e2e_sleep_ms(100);
    }
    ck_assert_msg(inf == 5 && fb == 5, "rows kept: %lld inferences, %lld feedback (cap 5)", inf, fb);
    /* The newest feedback is what stays; the counters are not a log. */
    e2e_response r = e2e_get(&s, AGENTS "/keep/feedback");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)e2e_json_num(r.json, "count"), 5);
    e2e_response_free(&r);
    r = e2e_get(&s, AGENTS "/keep");
    ck_assert_int_eq((int)e2e_json_num(cJSON_GetObjectItemCaseSensitive(r.json, "inference"), "count"), 12);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);

    /* By age: with a 1 s retention everything old goes, the finished
     * pipeline job included; the agent itself stays and serves. */
    static const char *const aged[] = {"--log-retention", "1s", "--maintenance-interval", "1", NULL};
    e2e_restart(&s, aged, NULL);
    end = now_ms() + 8000;
    long long jobs = -1;
    while (now_ms() < end) {
        inf = agent_rows(&s, "inferences");
        fb = agent_rows(&s, "feedback");
        jobs = agent_rows(&s, "jobs");
        if (inf == 0 && jobs == 0) break;
        e2e_sleep_ms(100);
    }
    ck_assert_msg(inf == 0 && jobs == 0, "after the retention age: %lld inferences, %lld jobs", inf, jobs);
    ck_assert_msg(fb == 5, "feedback is capped by rows, not age: %lld", fb);
    r = e2e_post(&s, AGENTS "/keep/inference", "{\"prompt\":\"What is a decorator?\"}");
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- 5. start-up on a database that cannot be used ------------------------------ */

/* Runs agentd on `data_dir` (as `uid`:`gid` when uid >= 0) expecting it to
 * exit; returns the exit status and its stderr in `*log` (free it). */
static int run_to_exit(const char *data_dir, int uid, int gid, char **log)
{
    char log_path[] = "/tmp/agentd-start-XXXXXX";
    int fd = mkstemp(log_path);
    ck_assert_int_ge(fd, 0);
    const char *bin = getenv("AGENTD_BIN");
    if (!bin || !*bin) bin = "bin/agentd";
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd, 2);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) dup2(devnull, 0), dup2(devnull, 1);
        if (uid >= 0 && (setgroups(0, NULL) < 0 || setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) < 0 ||
                         setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0))
            _exit(126);
        execl(bin, bin, "--port", "0", "--bind", "127.0.0.1", "--data-dir", data_dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    for (int waited = 0;; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        if (waited > 15000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            ck_abort_msg("agentd kept running on an unusable data dir");
        }
        e2e_sleep_ms(10);
    }
    close(fd);
    *log = e2e_read_file(log_path, NULL);
    unlink(log_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The error lines of a start-up log. */
static int error_lines(const char *log)
{
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, "\"level\":\"error\"")); p++) n++;
    return n;
}

static void assert_says(const char *log, const char *needle)
{
    ck_assert_msg(log && strstr(log, needle), "start-up message lacks \"%s\": %s", needle, log ? log : "(none)");
}

START_TEST(test_startup_on_corrupt_database)
{
    if (e2e_skip_on_pg("corrupts the SQLite file")) return;
    char dir[] = "/tmp/agentd-corrupt-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *path = e2e_fmt("%s/agentd.db", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 2000; i++) fputs("this is not a database, just text. ", f);
    fclose(f);
    char *log = NULL;
    ck_assert_int_eq(run_to_exit(dir, -1, -1, &log), 1);
    assert_says(log, path);
    assert_says(log, "corrupt");
    assert_says(log, "backup");
    assert_says(log, "move it aside");
    ck_assert_msg(error_lines(log) == 1, "not one message: %s", log);
    /* The file is left as it was, for the operator to inspect. */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 2000 * 35);
    free(log);
    free(path);
    char *cmd = e2e_fmt("rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}
END_TEST

START_TEST(test_startup_on_unusable_data_dir)
{
    if (e2e_skip_on_pg("makes the SQLite file's data dir unusable")) return;
    char dir[] = "/tmp/agentd-perm-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chmod(dir, 0755), 0);

    /* A data dir whose parent is a regular file (permissions aside, which
     * root does not meet). */
    char *file = e2e_fmt("%s/plainfile", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    char *under = e2e_fmt("%s/data", file);
    char *log = NULL;
    ck_assert_int_eq(run_to_exit(under, -1, -1, &log), 1);
    assert_says(log, under);
    assert_says(log, "runs as uid");
    assert_says(log, "--data-dir");
    ck_assert_msg(error_lines(log) == 1, "not one message: %s", log);
    free(log);

    /* A data dir the process may not write: root-owned, as a container
     * volume, with agentd running as another uid (--user 12345); without
     * root, our own directory made read-only. */
    char *data = e2e_fmt("%s/data", dir);
    ck_assert_int_eq(mkdir(data, 0755), 0);
    int root = geteuid() == 0;
    if (!root) ck_assert_int_eq(chmod(data, 0500), 0);
    ck_assert_int_eq(run_to_exit(data, root ? 12345 : -1, root ? 12345 : -1, &log), 1);
    char *agentd_db = e2e_fmt("%s/agentd.db", data);
    assert_says(log, agentd_db);
    char *who = e2e_fmt("uid %u", root ? 12345u : (unsigned)geteuid());
    assert_says(log, who);
    assert_says(log, "chown");
    assert_says(log, "--user");
    ck_assert_msg(error_lines(log) == 1, "not one message: %s", log);
    free(who);
    free(agentd_db);
    free(log);
    chmod(data, 0755);
    free(data);
    free(under);
    free(file);
    char *cmd = e2e_fmt("rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}
END_TEST

Suite *e2e_storage_suite(void)
{
    Suite *s = suite_create("e2e_storage");
    TCase *tc = tcase_create("storage");
    tcase_set_timeout(tc, 180);
    tcase_add_unchecked_fixture(tc, storage_suite_setup, storage_suite_teardown);
    tcase_add_test(tc, test_startup_on_corrupt_database);
    tcase_add_test(tc, test_startup_on_unusable_data_dir);
    tcase_add_test(tc, test_requests_racing_delete_never_500);
    tcase_add_test(tc, test_log_retention_prunes_in_background);
    tcase_add_test(tc, test_deletes_give_space_back);
    tcase_add_test(tc, test_full_disk_503_then_recovers_without_restart);
    tcase_add_test(tc, test_database_down_503_then_recovers);
    suite_add_tcase(s, tc);
    return s;
}
