/* Issue 13: three agentd replicas over one PostgreSQL database, end to end.
 * Any request goes to any replica; a replica killed mid-pipeline leaves its
 * jobs to the others through their leases; PostgreSQL restarting under load
 * costs 503s, never a 500, and service comes back by itself; tokens,
 * idempotency keys and rate-limit windows are shared. The suite starts a
 * PostgreSQL server of its own (it stops and restarts it), so it runs the
 * same whichever backend the other suites use. */
#include <check.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "tests/common/pgserver.h"
#include "tests/e2e/harness.h"

Suite *e2e_replicas_suite(void);

#define ADMIN_KEY "replicas-admin-key"
#define AGENTS "/api/v1/agents"
enum { REPLICAS = 3 };

/* The suite's server: started once before the tests (in the runner's
 * process, so each forked test finds it), destroyed after them. */
static pgserver pg;
static int pg_up;

static void pg_setup(void)
{
    pg_up = pgserver_start(&pg) == 0;
}

static void pg_teardown(void)
{
    if (pg_up) pgserver_destroy(&pg);
    pg_up = 0;
}

typedef struct replica_set {
    char url[512];
    e2e_server r[REPLICAS];
} replica_set;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A fresh database `name` and three replicas on it, each with its own data
 * dir and port, a 2 s job lease (so a dead replica's jobs move on quickly),
 * `workers` workers, the admin key without a rate limit, and `extra` flags
 * (NULL-terminated). */
static void replicas_start(replica_set *set, const char *name, const char *workers, const char *const *extra)
{
    ck_assert_msg(pg_up, "the suite's PostgreSQL server did not start (see stderr)");
    ck_assert_msg(pgserver_create_db(&pg, name, set->url, sizeof(set->url)) == 0, "CREATE DATABASE %s", name);
    /* No admin rate limit: the suites' own requests would share one window. */
    const char *args[16] = {"--database-url", set->url, "--job-lease-ms", "2000", "--workers", workers,
                            "--rate-limit-per-min", "0"};
    size_t n = 8;
    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof(args) / sizeof(args[0]); i++) args[n++] = extra[i];
    args[n] = NULL;
    static const char *const env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};
    for (int i = 0; i < REPLICAS; i++) e2e_start(&set->r[i], args, env);
}

/* Stops every replica still running (a clean exit each) and removes their dirs. */
static void replicas_stop(replica_set *set)
{
    for (int i = 0; i < REPLICAS; i++) {
        if (set->r[i].pid > 0) ck_assert_int_eq(e2e_stop(&set->r[i]), 0);
        e2e_cleanup(&set->r[i]);
    }
}

/* One request as `cred` (NULL: the admin key), with an optional extra header. */
static e2e_response as(const e2e_server *s, const char *cred, const char *method, const char *path,
                       const char *body, const char *header)
{
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cred ? cred : ADMIN_KEY);
    const char *h[] = {auth, header, NULL};
    return e2e_request(s, method, path, body, h);
}

static long status_of(const e2e_server *s, const char *cred, const char *method, const char *path)
{
    e2e_response r = as(s, cred, method, path, NULL, NULL);
    long st = r.status;
    e2e_response_free(&r);
    return st;
}


static char *agent_body(const char *id, size_t bytes, unsigned seed)
{
    char *text = e2e_make_text(bytes, seed * 40503u);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", id);
    cJSON_AddStringToObject(o, "training_data", text);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(text);
    return s;
}

static void create_agent(const e2e_server *s, const char *id, size_t bytes, unsigned seed)
{
    char *body = agent_body(id, bytes, seed);
    e2e_response r = as(s, NULL, "POST", AGENTS, body, NULL);
    ck_assert_msg(r.status == 201, "create %s on :%d: %ld %s", id, s->port, r.status, r.body);
    e2e_response_free(&r);
    free(body);
}

static const char *wait_ready(const e2e_server *s, const char *id, int timeout_ms)
{
    const char *h[] = {"Authorization: Bearer " ADMIN_KEY, NULL};
    return e2e_wait_agent_as(s, id, timeout_ms, h);
}

/* One integer from `sql` run on the suite's database `url` (a test reading
 * the shared database itself, as the SQLite suites read the file). */
static long long db_int(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect %s: %s", url, PQerrorMessage(c));
    PGresult *res = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "%s: %s", sql,
                  PQerrorMessage(c));
    long long v = PQgetisnull(res, 0, 0) ? -1 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(c);
    return v;
}

/* ---- any request on any replica ------------------------------------------ */

/* 100 agents created round-robin over A, B, C; each read back (status and
 * agent) from the two replicas that did not create it; the list, paged from
 * each replica, sees all 100. */
START_TEST(test_create_anywhere_read_anywhere)
{
    replica_set set;
    replicas_start(&set, "replicas_rw", "2", NULL);
    enum { N = 100 };
    double t0 = now_ms();
    for (int i = 0; i < N; i++) {
        char id[32], path[96];
        snprintf(id, sizeof(id), "rr-%03d", i);
        create_agent(&set.r[i % REPLICAS], id, 300, (unsigned)i);
        for (int k = 1; k < REPLICAS; k++) {
            const e2e_server *other = &set.r[(i + k) % REPLICAS];
            snprintf(path, sizeof(path), AGENTS "/%s/status", id);
            e2e_response r = as(other, NULL, "GET", path, NULL, NULL);
            ck_assert_msg(r.status == 200, "status of %s on replica %d: %ld %s", id, (i + k) % REPLICAS,
                          r.status, r.body);
            ck_assert_ptr_nonnull(e2e_json_str(r.json, "status"));
            e2e_response_free(&r);
            snprintf(path, sizeof(path), AGENTS "/%s", id);
            r = as(other, NULL, "GET", path, NULL, NULL);
            ck_assert_msg(r.status == 200, "agent %s on replica %d: %ld %s", id, (i + k) % REPLICAS,
                          r.status, r.body);
            e2e_response_free(&r);
        }
    }
    double created_ms = now_ms() - t0;
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof(id), "rr-%03d", i);
        ck_assert_str_eq(wait_ready(&set.r[(i + 1) % REPLICAS], id, 60000), "ready");
    }
    double ready_ms = now_ms() - t0;
    /* Paged from each replica (a different page size each), the list holds
     * the 100 once each, in id order. */
    static const int limits[REPLICAS] = {7, 30, 100};
    for (int k = 0; k < REPLICAS; k++) {
        int seen = 0;
        char last[32] = "";
        char *next = e2e_fmt(AGENTS "?limit=%d", limits[k]);
        while (next) {
            e2e_response r = as(&set.r[k], NULL, "GET", next, NULL, NULL);
            ck_assert_msg(r.status == 200, "%s on replica %d: %ld %s", next, k, r.status, r.body);
            ck_assert_int_eq((int)e2e_json_num(r.json, "total_users"), N);
            free(next);
            next = NULL;
            cJSON *it;
            cJSON_ArrayForEach(it, cJSON_GetObjectItem(r.json, "users")) {
                ck_assert_msg(strcmp(it->string, last) > 0, "%s after %s", it->string, last);
                snprintf(last, sizeof(last), "%s", it->string);
                seen++;
            }
            const char *cursor = e2e_json_str(r.json, "next_cursor");
            if (cursor) next = e2e_fmt(AGENTS "?limit=%d&cursor=%s", limits[k], cursor);
            e2e_response_free(&r);
        }
        ck_assert_msg(seen == N, "replica %d listed %d agents, want %d", k, seen, N);
    }
    printf("e2e_replicas: %d agents created round-robin over 3 replicas (each read from the two others) in "
           "%.0f ms; all ready after %.0f ms\n", N, created_ms, ready_ms);
    replicas_stop(&set);
}
END_TEST

/* ---- a replica killed mid-pipeline ---------------------------------------- */

/* Jobs running under the lease of the replica whose pid is `pid`. */
static long long running_under(const char *url, int pid)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM jobs WHERE state = 'running' AND lease_owner LIKE '%%:%d:%%'", pid);
    return db_int(url, sql);
}

typedef struct create_batch {
    const replica_set *set;
    int first, step, end;
} create_batch;

/* Creates agents kill-<first>, kill-<first+step>, ... below `end`, each of
 * 8 KB on replica i % 3. */
static void *create_some(void *arg)
{
    const create_batch *b = arg;
    for (int i = b->first; i < b->end; i += b->step) {
        char id[32];
        snprintf(id, sizeof(id), "kill-%02d", i);
        create_agent(&b->set->r[i % REPLICAS], id, 8 * 1024, (unsigned)i + 1000u);
    }
    return NULL;
}

/* 50 pipelines spread over three replicas of two workers each; the replica
 * holding running jobs is killed with SIGKILL; the two others take its jobs
 * over once their leases expire, and every agent reaches ready with one
 * version and one deployment; every job is done, claimed at most twice (one
 * takeover), the killed replica's ones exactly twice. */
START_TEST(test_sigkill_one_replica_mid_pipeline)
{
    replica_set set;
    replicas_start(&set, "replicas_kill", "2", NULL);
    enum { N = 50, THREADS = 10 };
    /* Created from 10 clients at once: the queue fills faster than six
     * workers empty it, so the kill finds most pipelines still to run. */
    create_batch batches[THREADS];
    pthread_t t[THREADS];
    for (int k = 0; k < THREADS; k++) {
        batches[k] = (create_batch){&set, k, THREADS, N};
        ck_assert_int_eq(pthread_create(&t[k], NULL, create_some, &batches[k]), 0);
    }
    for (int k = 0; k < THREADS; k++) pthread_join(t[k], NULL);
    /* The victim: the first replica seen holding a running job, so the kill
     * always interrupts work. */
    int victim = -1;
    long long held = 0;
    for (int waited = 0; victim < 0 && waited < 10000; waited += 5) {
        for (int k = 0; k < REPLICAS && victim < 0; k++) {
            held = running_under(set.url, set.r[k].pid);
            if (held > 0) victim = k;
        }
        if (victim < 0) e2e_sleep_ms(5);
    }
    ck_assert_msg(victim >= 0, "no replica ever held a running job");
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT min(id) FROM jobs WHERE state = 'running' AND lease_owner LIKE '%%:%d:%%'",
             set.r[victim].pid);
    e2e_kill(&set.r[victim]);
    double killed_at = now_ms();
    long long orphan = db_int(set.url, sql);
    const e2e_server *a = &set.r[(victim + 1) % REPLICAS], *b = &set.r[(victim + 2) % REPLICAS];
    e2e_response r = as(a, NULL, "GET", AGENTS "?status=ready&limit=1", NULL, NULL);
    int ready_before = (int)e2e_json_num(r.json, "total_users");
    e2e_response_free(&r);
    ck_assert_msg(ready_before < N, "all %d pipelines finished before the kill: the test proves nothing", N);

    for (int i = 0; i < N; i++) {
        char id[32], path[96];
        snprintf(id, sizeof(id), "kill-%02d", i);
        const e2e_server *s = i % 2 ? a : b;
        ck_assert_str_eq(wait_ready(s, id, 60000), "ready");
        snprintf(path, sizeof(path), AGENTS "/%s/models", id);
        r = as(s, NULL, "GET", path, NULL, NULL);
        ck_assert_int_eq(r.status, 200);
        cJSON *models = cJSON_GetObjectItem(r.json, "models");
        ck_assert_msg(cJSON_GetArraySize(models) == 1, "%s has %d versions: %s", id, cJSON_GetArraySize(models),
                      r.body);
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(models, 0), "deployed")));
        e2e_response_free(&r);
        snprintf(path, sizeof(path), AGENTS "/%s/deployments", id);
        r = as(s, NULL, "GET", path, NULL, NULL);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg((int)e2e_json_num(r.json, "count") == 1, "%s deployed twice: %s", id, r.body);
        e2e_response_free(&r);
        snprintf(path, sizeof(path), AGENTS "/%s/pipeline", id);
        r = as(s, NULL, "GET", path, NULL, NULL);
        cJSON *stage;
        cJSON_ArrayForEach(stage, cJSON_GetObjectItem(r.json, "stages"))
            ck_assert_str_eq(e2e_json_str(stage, "status"), "completed");
        e2e_response_free(&r);
    }
    double all_ready_ms = now_ms() - killed_at;
    ck_assert_int_eq(db_int(set.url, "SELECT count(*) FROM jobs"), N);
    ck_assert_int_eq(db_int(set.url, "SELECT count(*) FROM jobs WHERE state <> 'done'"), 0);
    ck_assert_int_le(db_int(set.url, "SELECT max(attempts) FROM jobs"), 2);
    ck_assert_int_eq(db_int(set.url, "SELECT count(*) FROM versions"), N);
    /* Every stage row was written by the job that finished it. */
    ck_assert_int_eq(db_int(set.url, "SELECT count(*) FROM executions e JOIN jobs j ON j.agent_id = e.agent_id"
                                     " WHERE e.status <> 'completed' OR e.job_id <> j.id"), 0);
    snprintf(sql, sizeof(sql), "SELECT attempts FROM jobs WHERE id = %lld", orphan);
    ck_assert_msg(db_int(set.url, sql) == 2, "job %lld of the killed replica was not taken over once", orphan);
    long long taken = db_int(set.url, "SELECT count(*) FROM jobs WHERE attempts = 2");
    printf("e2e_replicas: SIGKILL of 1 of 3 replicas holding %lld running job(s), %d/%d ready before; "
           "%lld job(s) taken over (lease 2000 ms); all %d ready %.0f ms after the kill\n",
           held, ready_before, N, taken, N, all_ready_ms);
    replicas_stop(&set);
}
END_TEST

/* ---- PostgreSQL restarting under load --------------------------------------- */

typedef struct load_loop {
    const replica_set *set;
    atomic_int stop;
    int ok, unavailable, bad, requests;
    char bad_body[512];
} load_loop;

/* Sends reads and creates to every replica in turn until told to stop: every
 * answer is a success or a 503 database_unavailable with Retry-After. */
static void *load_run(void *arg)
{
    load_loop *l = arg;
    for (int i = 0; !atomic_load(&l->stop); i++) {
        const e2e_server *s = &l->set->r[i % REPLICAS];
        e2e_response r;
        if (i % 4 == 3) {
            char id[32];
            snprintf(id, sizeof(id), "load-%05d", i);
            char *body = agent_body(id, 200, (unsigned)i);
            r = as(s, NULL, "POST", AGENTS, body, NULL);
            free(body);
        } else {
            r = as(s, NULL, "GET", AGENTS "/steady/status", NULL, NULL);
        }
        l->requests++;
        char *retry = e2e_header(&r, "Retry-After");
        const char *code = e2e_json_str(r.json, "code");
        if (r.status == 200 || r.status == 201) {
            l->ok++;
        } else if (r.status == 503 && retry && code && !strcmp(code, "database_unavailable")) {
            l->unavailable++;
        } else {
            if (!l->bad++)
                snprintf(l->bad_body, sizeof(l->bad_body), "replica %d: %ld %s", i % REPLICAS, r.status, r.body);
        }
        free(retry);
        e2e_response_free(&r);
        e2e_sleep_ms(2);
    }
    return NULL;
}

/* PostgreSQL stops (fast shutdown) while a client loop keeps all three
 * replicas busy, and starts again: no 500 ever, 503 database_unavailable
 * with Retry-After while it is down, and every replica answers 200 again
 * within seconds of the restart, without being restarted itself. */
START_TEST(test_postgres_restart_under_load)
{
    replica_set set;
    replicas_start(&set, "replicas_restart", "2", NULL);
    create_agent(&set.r[0], "steady", 300, 7);
    ck_assert_str_eq(wait_ready(&set.r[1], "steady", 30000), "ready");
    load_loop l = {.set = &set};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, load_run, &l), 0);
    e2e_sleep_ms(300);
    ck_assert_int_eq(pgserver_stop(&pg), 0);
    e2e_sleep_ms(1500);
    double restarted = now_ms();
    int up = pgserver_restart(&pg) == 0;
    double started_ms = now_ms() - restarted;
    /* Back: each replica's reads answer 200 five times in a row. */
    double back_ms[REPLICAS] = {0};
    for (int k = 0; up && k < REPLICAS; k++) {
        int streak = 0;
        while (streak < 5 && now_ms() - restarted < 20000) {
            long st = status_of(&set.r[k], NULL, "GET", AGENTS "/steady/status");
            streak = st == 200 ? streak + 1 : 0;
            if (!streak) e2e_sleep_ms(20);
        }
        back_ms[k] = now_ms() - restarted;
    }
    e2e_sleep_ms(500);
    atomic_store(&l.stop, 1);
    pthread_join(t, NULL);
    ck_assert_msg(up, "PostgreSQL did not start again");
    ck_assert_msg(l.bad == 0, "%d answers neither a success nor a 503 database_unavailable, first: %s", l.bad,
                  l.bad_body);
    ck_assert_msg(l.unavailable > 0, "no 503 while PostgreSQL was down: the test proves nothing");
    for (int k = 0; k < REPLICAS; k++)
        ck_assert_msg(back_ms[k] < 10000, "replica %d answered 200 again only %.0f ms after the restart", k,
                      back_ms[k]);
    for (int k = 0; k < REPLICAS; k++) ck_assert_int_eq(e2e_log_count(&set.r[k], "\"status\":500"), 0);
    printf("e2e_replicas: PostgreSQL down 1.5 s under load: %d requests, %d ok, %d 503 database_unavailable, "
           "0 other; pg_ctl start took %.0f ms; replicas back (5 x 200 in a row) %.0f / %.0f / %.0f ms after "
           "the restart began\n",
           l.requests, l.ok, l.unavailable, started_ms, back_ms[0], back_ms[1], back_ms[2]);
    replicas_stop(&set);
}
END_TEST

/* ---- shared tokens, idempotency keys and rate windows --------------------- */

/* A token minted on A works on B; revoked on C, A and B refuse it on their
 * next request. An Idempotency-Key replayed on another replica gets the first
 * answer. A token's rate-limit window is one for all replicas. */
START_TEST(test_tokens_keys_and_windows_are_shared)
{
    replica_set set;
    replicas_start(&set, "replicas_shared", "2", NULL);
    const e2e_server *a = &set.r[0], *b = &set.r[1], *c = &set.r[2];

    e2e_response r = as(a, NULL, "POST", "/api/v1/tokens",
                        "{\"name\":\"roaming\",\"scopes\":[\"agents:read\"],\"agents\":\"*\"}", NULL);
    ck_assert_msg(r.status == 201, "mint on A: %ld %s", r.status, r.body);
    char *tok = strdup(e2e_json_str(r.json, "token"));
    long id = (long)e2e_json_num(r.json, "id");
    e2e_response_free(&r);
    ck_assert_int_eq(status_of(b, tok, "GET", AGENTS), 200);
    ck_assert_int_eq(status_of(a, tok, "GET", AGENTS), 200);
    char *path = e2e_fmt("/api/v1/tokens/%ld", id);
    r = as(c, NULL, "DELETE", path, NULL, NULL);
    ck_assert_msg(r.status == 200, "revoke on C: %ld %s", r.status, r.body);
    e2e_response_free(&r);
    free(path);
    r = as(a, tok, "GET", AGENTS, NULL, NULL);
    e2e_assert_error(&r, 401, "invalid_token", NULL, "revoked token on A");
    e2e_response_free(&r);
    ck_assert_int_eq(status_of(b, tok, "GET", AGENTS), 401);
    free(tok);

    /* The same create with the same key on A then B: one agent, B replays A's answer. */
    char *body = agent_body("idem", 300, 3);
    e2e_response first = as(a, NULL, "POST", AGENTS, body, "Idempotency-Key: roam-1");
    ck_assert_msg(first.status == 201, "%ld %s", first.status, first.body);
    e2e_response again = as(b, NULL, "POST", AGENTS, body, "Idempotency-Key: roam-1");
    ck_assert_msg(again.status == 201, "replay on B: %ld %s", again.status, again.body);
    char *replayed = e2e_header(&again, "Idempotent-Replayed");
    ck_assert_msg(replayed && !strcmp(replayed, "true"), "B ran the request again: %s", again.headers);
    free(replayed);
    ck_assert_str_eq(again.body, first.body);
    e2e_response_free(&first);
    e2e_response_free(&again);
    r = as(c, NULL, "POST", AGENTS, body, "Idempotency-Key: roam-1");
    ck_assert_int_eq(r.status, 201);
    e2e_response_free(&r);
    free(body);

    /* A token allowed 6 requests a minute, asked 12 times over the three
     * replicas in turn: 6 answers, then 429s — not 18. */
    r = as(a, NULL, "POST", "/api/v1/tokens",
           "{\"name\":\"metered\",\"scopes\":[\"agents:read\"],\"agents\":\"*\",\"rate_limit_per_min\":6}", NULL);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    tok = strdup(e2e_json_str(r.json, "token"));
    e2e_response_free(&r);
    int ok = 0, limited = 0;
    for (int i = 0; i < 12; i++) {
        long st = status_of(&set.r[i % REPLICAS], tok, "GET", AGENTS);
        ok += st == 200;
        limited += st == 429;
        ck_assert_msg(st == 200 || st == 429, "request %d: %ld", i, st);
        if (i < 6) ck_assert_msg(st == 200, "request %d of 6 refused", i);
    }
    ck_assert_msg(ok == 6 && limited == 6, "%d answered, %d limited: the window is not shared", ok, limited);
    free(tok);
    printf("e2e_replicas: token minted on A, used on B, revoked on C: 401 on A and B at once; "
           "Idempotency-Key replayed on B and C; rate limit 6/min over 3 replicas: %d ok, %d 429\n", ok, limited);
    replicas_stop(&set);
}
END_TEST

/* ---- one answer whichever backend holds the index ------------------------ */

/* The same material on SQLite and on PostgreSQL trains the same model: the
 * evaluation's metrics (every figure the evaluator computed from its
 * rankings), and for each prompt the answer, its confidence and every
 * source with its score, are equal to the digit. A version's index is rows
 * of bytes on both (storage/index.h) and the ranking is model/index.c's, so
 * nothing may differ. */
START_TEST(test_scores_identical_to_sqlite)
{
    ck_assert_msg(pg_up, "the suite's PostgreSQL server did not start (see stderr)");
    char url[512];
    ck_assert(pgserver_create_db(&pg, "same_scores", url, sizeof(url)) == 0);
    static const char *const env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};
    /* An empty --database-url (last, so it wins over the harness's own on
     * a PostgreSQL run) is SQLite under the data dir. */
    const char *lite_args[] = {"--rate-limit-per-min", "0", "--database-url", "", NULL};
    const char *pg_args[] = {"--rate-limit-per-min", "0", "--database-url", url, NULL};
    e2e_server lite, pgs;
    e2e_start(&lite, lite_args, env);
    e2e_start(&pgs, pg_args, env);
    e2e_server *both[2] = {&lite, &pgs};
    for (int b = 0; b < 2; b++) {
        create_agent(both[b], "same", 24 * 1024, 7);
        ck_assert_str_eq(wait_ready(both[b], "same", 60000), "ready");
    }
    char *metrics[2] = {0};
    for (int b = 0; b < 2; b++) {
        e2e_response r = as(both[b], NULL, "GET", AGENTS "/same/models", NULL, NULL);
        ck_assert_int_eq(r.status, 200);
        cJSON *list = r.json ? cJSON_GetObjectItem(r.json, "models") : NULL;
        ck_assert_msg(cJSON_IsArray(list) && cJSON_GetArraySize(list) == 1, "%s", r.body);
        cJSON *m = cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "metrics");
        ck_assert_ptr_nonnull(m);
        metrics[b] = cJSON_PrintUnformatted(m);
        e2e_response_free(&r);
    }
    ck_assert_str_eq(metrics[0], metrics[1]);
    static const char *const prompts[] = {"how do compilers optimize data under load",
                                          "which section explains kernels that schedule",
                                          "codecs encode data number", "balance the networks",
                                          "nothing here matches at all"};
    for (size_t i = 0; i < sizeof(prompts) / sizeof(prompts[0]); i++) {
        char body[160], *got[2] = {0};
        snprintf(body, sizeof(body), "{\"prompt\": \"%s\"}", prompts[i]);
        for (int b = 0; b < 2; b++) {
            e2e_response r = as(both[b], NULL, "POST", AGENTS "/same/inference", body, NULL);
            ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
            cJSON *keep = cJSON_CreateObject();
            const char *fields[] = {"response", "confidence", "sources"};
            for (int f = 0; f < 3; f++) {
                cJSON *v = cJSON_GetObjectItem(r.json, fields[f]);
                if (v) cJSON_AddItemToObject(keep, fields[f], cJSON_Duplicate(v, 1));
            }
            ck_assert_msg(cJSON_GetObjectItem(keep, "response"), "%s", r.body);
            got[b] = cJSON_PrintUnformatted(keep);
            cJSON_Delete(keep);
            e2e_response_free(&r);
        }
        ck_assert_msg(strcmp(got[0], got[1]) == 0, "prompt '%s': SQLite %s, PostgreSQL %s", prompts[i], got[0],
                      got[1]);
        free(got[0]);
        free(got[1]);
    }
    printf("e2e_replicas: the same 24 KB agent on SQLite and PostgreSQL: metrics %s; 5 answers with their sources "
           "and scores identical\n", metrics[0]);
    free(metrics[0]);
    free(metrics[1]);
    for (int b = 0; b < 2; b++) ck_assert_int_eq(e2e_stop(both[b]), 0);
    e2e_cleanup(&lite);
    e2e_cleanup(&pgs);
}
END_TEST

/* The suite starts a PostgreSQL of its own whichever backend the run is
 * on, so it runs once, in the PostgreSQL pass (AGENTD_E2E_BACKEND=pg: `make
 * test` runs it under ASan; `make check-pg SUITE=e2e_replicas` alone), and
 * is empty in the SQLite one. */
Suite *e2e_replicas_suite(void)
{
    Suite *s = suite_create("e2e_replicas");
    if (!e2e_backend_pg()) return s;
    TCase *tc = tcase_create("replicas");
    tcase_set_timeout(tc, 180);
    tcase_add_unchecked_fixture(tc, pg_setup, pg_teardown);
    tcase_add_test(tc, test_create_anywhere_read_anywhere);
    tcase_add_test(tc, test_sigkill_one_replica_mid_pipeline);
    tcase_add_test(tc, test_tokens_keys_and_windows_are_shared);
    tcase_add_test(tc, test_postgres_restart_under_load);
    tcase_add_test(tc, test_scores_identical_to_sqlite);
    suite_add_tcase(s, tc);
    return s;
}
