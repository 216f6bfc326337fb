/*
 * Tests storage/jobs.c on a real PostgreSQL (tests/common/pgserver.h), where
 * several replicas share the queue: claims that skip the rows other
 * replicas are taking and take no unit-of-work lock, claims in parallel that
 * take each job once, a lease taken over from a dead replica, start-up
 * recovery that touches no running job, and the notifications that enqueue,
 * release and postpone send at commit.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "pipeline/plan.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/executions.h"
#include "storage/internal.h"
#include "storage/jobs.h"
#include "storage/trainings.h"
#include "storage/versions.h"
#include "tests/common/pgserver.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_jobs_pg_suite(void);

static storage_conn *open_fresh(void)
{
    storage_conn *db = storage_fixture_pg_fresh("jobs");
    ck_assert_int_eq(storage_jobs_shared(db), 1);
    return db;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs a one-integer query, ?1 bound to `arg`. */
static int64_t one_int(storage_conn *db, const char *sql, int64_t arg)
{
    sql_stmt *st = storage_stmt(db, sql);
    sql_bind_int64(st, 1, arg);
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    int64_t v = sql_column_int64(st, 0);
    sql_reset(st);
    return v;
}

/* The job's lease owner into `out` ("" when none). */
static void owner_of(storage_conn *db, int64_t job_id, char *out, size_t cap)
{
    sql_stmt *st = storage_stmt(db, "SELECT coalesce(lease_owner, '') FROM jobs WHERE id = ?1");
    sql_bind_int64(st, 1, job_id);
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    snprintf(out, cap, "%s", sql_column_text(st, 0));
    sql_reset(st);
}

/* Creates an agent, which queues its pipeline job; returns that job's id. */
static int64_t agent_with_job(storage_conn *db, const char *user_id, int64_t *agent_id)
{
    agent_new a = {.user_id = user_id, .source = "text", .material = "m", .material_len = 1};
    pipeline_plan_agent(&a);
    ad_err e = {0};
    ck_assert_msg(storage_agents_create(db, &a, agent_id, &e) == 0, "%s", e.msg);
    return one_int(db, "SELECT max(id) FROM jobs WHERE agent_id = ?1", *agent_id);
}

/* A's lease lapses; B takes the job over; A, alive after all, is refused
 * at every unit of work and changes nothing. */
START_TEST(test_pg_expired_lease_is_taken_over)
{
    storage_conn *db = open_fresh();
    int64_t a = 0;
    int64_t ja = agent_with_job(db, "a", &a);
    ad_err e = {0};
    job_row j;
    storage_jobs_set_owner("A", 200);
    ck_assert_int_eq(storage_jobs_claim(db, "A", 200, &j, &e), 0);
    ck_assert_int_eq(j.id, ja);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_claim(db, "B", 200, &j, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_jobs_hold(db, ja, &e), 0);
    sleep_ms(300);
    ck_assert_int_eq(storage_jobs_claim(db, "A", 200, &j, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_jobs_claim(db, "B", 60000, &j, &e), 0);
    ck_assert_int_eq(j.id, ja);
    ck_assert_int_eq(j.attempts, 2);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_hold(db, ja, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_exec_start_job(db, a, ja, 0, "DataProcessor", 0, 0, 4242, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_jobs_finish(db, ja, JOB_DONE, NULL, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_jobs_fail_agent(db, ja, a, "A's failure", &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_jobs_release(db, ja, &e), 0);
    ck_assert_int_eq(storage_jobs_postpone(db, ja, &e), 0);
    /* A training worker's units of work hold the job too. */
    int64_t vid = 0;
    ck_assert_int_eq(storage_versions_create(db, a, "~b", "en", "{}", "p", "[]", &vid, &e), 0);
    ck_assert_int_eq(storage_versions_drop(db, vid, ja, &e), AD_ECANCELLED);
    ck_assert_int_eq(one_int(db, "SELECT count(*) FROM versions WHERE id = ?1", vid), 1);
    ck_assert_int_eq(storage_trainings_start(db, 0, ja, &e), AD_ECANCELLED);
    ck_assert_int_eq(storage_trainings_add_iteration(db, 0, ja, 1, "{}", "{}", 1, &e), AD_ECANCELLED);
    ck_assert_int_eq(one_int(db, "SELECT count(*) FROM jobs WHERE id = ?1 AND state = 'running'"
                                 " AND lease_owner = 'B' AND attempts = 2", ja), 1);
    ck_assert_int_eq(one_int(db, "SELECT count(*) FROM agents WHERE id = ?1 AND status = 'error'", a), 0);
    storage_jobs_set_owner("B", 60000);
    ck_assert_int_eq(storage_jobs_finish(db, ja, JOB_DONE, NULL, &e), 0);
    storage_close();
}
END_TEST

/* Start-up on PostgreSQL touches no running job (it may be a live
 * replica's); the lease, and next_expiry, tell when it becomes free. */
START_TEST(test_pg_recover_touches_nothing)
{
    storage_conn *db = open_fresh();
    int64_t a = 0;
    int64_t ja = agent_with_job(db, "a", &a);
    ad_err e = {0};
    job_row j;
    ck_assert_int_eq(storage_jobs_claim(db, "A", 600000, &j, &e), 0);
    job_row_cleanup(&j);
    int64_t expiry = one_int(db, "SELECT lease_expires_at FROM jobs WHERE id = ?1", ja);
    int n = -1;
    ck_assert_int_eq(storage_jobs_recover(db, &n, &e), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(one_int(db, "SELECT count(*) FROM jobs WHERE id = ?1 AND state = 'running'"
                                 " AND lease_owner = 'A'", ja), 1);
    ck_assert_int_eq(one_int(db, "SELECT lease_expires_at FROM jobs WHERE id = ?1", ja), expiry);
    ck_assert_int_eq(storage_jobs_claim(db, "B", 600000, &j, &e), AD_ENOTFOUND);
    int64_t at = 0;
    ck_assert_int_eq(storage_jobs_next_expiry(db, "B", &at, &e), 0);
    ck_assert_int_eq(at, expiry);
    ck_assert_int_eq(storage_jobs_next_expiry(db, "A", &at, &e), 0);
    ck_assert_int_eq(at, 0);
    storage_close();
}
END_TEST

typedef struct row_locker {
    int64_t job_id;
    atomic_int locked;     /* 1 once the row is locked inside a unit of work */
    atomic_int release;    /* set by the test: end the unit of work */
} row_locker;

/* Opens a unit of work (the advisory lock every unit takes) on a connection
 * of its own and locks one job's row, as a replica claiming or holding it
 * would, until told to end. */
static void *lock_row(void *arg)
{
    row_locker *l = arg;
    storage_conn *db = storage_conn_get();
    ad_err e = {0};
    ck_assert_int_eq(storage_begin(db, &e), 0);
    sql_stmt *st = storage_stmt(db, "SELECT id FROM jobs WHERE id = ?1 FOR UPDATE");
    sql_bind_int64(st, 1, l->job_id);
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    sql_reset(st);
    atomic_store(&l->locked, 1);
    while (!atomic_load(&l->release)) sleep_ms(5);
    storage_rollback(db);
    storage_thread_release();
    return NULL;
}

/* A claim neither waits for the unit-of-work lock nor for a row another
 * replica has locked: it skips that row and takes the next job. */
START_TEST(test_pg_claim_skips_locked_rows_without_the_unit_lock)
{
    storage_conn *db = open_fresh();
    int64_t a = 0, b = 0;
    int64_t ja = agent_with_job(db, "a", &a);
    int64_t jb = agent_with_job(db, "b", &b);
    row_locker l = {.job_id = ja};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, lock_row, &l), 0);
    while (!atomic_load(&l.locked)) sleep_ms(5);
    ad_err e = {0};
    job_row j;
    int64_t t0 = ad_clock_mono_ms();
    ck_assert_int_eq(storage_jobs_claim(db, "B", 60000, &j, &e), 0);
    ck_assert_int_lt(ad_clock_mono_ms() - t0, 2000);
    ck_assert_int_eq(j.id, jb);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_claim(db, "B", 60000, &j, &e), AD_ENOTFOUND);
    atomic_store(&l.release, 1);
    pthread_join(t, NULL);
    ck_assert_int_eq(storage_jobs_claim(db, "B", 60000, &j, &e), 0);
    ck_assert_int_eq(j.id, ja);
    job_row_cleanup(&j);
    storage_close();
}
END_TEST

/* The heartbeat's renew never waits for a row lock: a job whose row a unit
 * of work holds (which may go on to lock other jobs' rows, in its own
 * order) is skipped, and the others are renewed at once. */
/* Ends the row locker's unit of work after 1.5 s: a renew that waited for
 * the row ends then, and the test fails instead of hanging. */
static void *release_later(void *arg)
{
    sleep_ms(1500);
    atomic_store(&((row_locker *)arg)->release, 1);
    return NULL;
}

START_TEST(test_pg_renew_skips_locked_rows)
{
    storage_conn *db = open_fresh();
    int64_t a = 0, b = 0;
    int64_t ja = agent_with_job(db, "a", &a);
    int64_t jb = agent_with_job(db, "b", &b);
    ad_err e = {0};
    job_row j;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(storage_jobs_claim(db, "A", 60000, &j, &e), 0);
        job_row_cleanup(&j);
    }
    row_locker l = {.job_id = ja};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, lock_row, &l), 0);
    while (!atomic_load(&l.locked)) sleep_ms(5);
    pthread_t later;
    ck_assert_int_eq(pthread_create(&later, NULL, release_later, &l), 0);
    int64_t t0 = ad_clock_mono_ms();
    int n = -1;
    ck_assert_int_eq(storage_jobs_renew(db, "A", 90000, &n, &e), 0);
    int64_t took = ad_clock_mono_ms() - t0;
    pthread_join(later, NULL);
    pthread_join(t, NULL);
    ck_assert_msg(took < 1000, "renew waited %lld ms for a locked row", (long long)took);
    ck_assert_int_eq(n, 1);
    ck_assert_int_gt(one_int(db, "SELECT lease_expires_at FROM jobs WHERE id = ?1", jb),
                     one_int(db, "SELECT lease_expires_at FROM jobs WHERE id = ?1", ja));
    storage_close();
}
END_TEST

enum { PARALLEL_JOBS = 40, PARALLEL_CLAIMERS = 4 };

typedef struct claimer {
    char owner[16];
    int claimed;
    int64_t ids[PARALLEL_JOBS];
} claimer;

static void *claim_all(void *arg)
{
    claimer *c = arg;
    storage_conn *db = storage_conn_get();
    job_row j;
    ad_err e = {0};
    int rc;
    while ((rc = storage_jobs_claim(db, c->owner, 60000, &j, &e)) == 0) {
        c->ids[c->claimed++] = j.id;
        job_row_cleanup(&j);
    }
    ck_assert_msg(rc == AD_ENOTFOUND, "claim: %s", e.msg);
    storage_thread_release();
    return NULL;
}

/* Replicas claiming at once take every job exactly once. */
START_TEST(test_pg_parallel_claims_take_each_job_once)
{
    storage_conn *db = open_fresh();
    for (int i = 0; i < PARALLEL_JOBS; i++) {
        char id[16];
        int64_t agent = 0;
        snprintf(id, sizeof(id), "p%02d", i);
        agent_with_job(db, id, &agent);
    }
    static claimer c[PARALLEL_CLAIMERS];
    pthread_t t[PARALLEL_CLAIMERS];
    memset(c, 0, sizeof(c));
    for (int i = 0; i < PARALLEL_CLAIMERS; i++) {
        snprintf(c[i].owner, sizeof(c[i].owner), "R%d", i);
        ck_assert_int_eq(pthread_create(&t[i], NULL, claim_all, &c[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < PARALLEL_CLAIMERS; i++) {
        pthread_join(t[i], NULL);
        total += c[i].claimed;
    }
    ck_assert_int_eq(total, PARALLEL_JOBS);
    ck_assert_int_eq(one_int(db, "SELECT count(*) FROM jobs WHERE state = 'running' AND attempts = ?1", 1),
                     PARALLEL_JOBS);
    /* No job twice, and each held by the replica that claimed it. */
    static int64_t seen[PARALLEL_JOBS];
    int n = 0;
    for (int i = 0; i < PARALLEL_CLAIMERS; i++) {
        for (int k = 0; k < c[i].claimed; k++) {
            for (int m = 0; m < n; m++) ck_assert_int_ne(seen[m], c[i].ids[k]);
            seen[n++] = c[i].ids[k];
            char owner[16];
            owner_of(db, c[i].ids[k], owner, sizeof(owner));
            ck_assert_str_eq(owner, c[i].owner);
        }
    }
    storage_close();
}
END_TEST

typedef struct listener {
    atomic_int ready;      /* 1 once it listens */
    atomic_int round;      /* rounds the test has asked for */
    atomic_int done;       /* rounds finished */
    int got[4];            /* storage_jobs_wait's result per round */
} listener;

/* Listens on a connection of its own, then waits (up to 5 s) once per round
 * the test asks for. */
static void *listen_rounds(void *arg)
{
    listener *l = arg;
    storage_conn *db = storage_conn_get();
    ad_err e = {0};
    ck_assert_int_eq(storage_jobs_wait(db, 0, &e), 0);   /* LISTENs, nothing yet */
    atomic_store(&l->ready, 1);
    for (int r = 0; r < 4; r++) {
        while (atomic_load(&l->round) <= r) sleep_ms(2);
        l->got[r] = storage_jobs_wait(db, r == 0 ? 300 : 5000, &e);
        atomic_store(&l->done, r + 1);
    }
    storage_thread_release();
    return NULL;
}

static int next_round(listener *l, int r)
{
    atomic_store(&l->round, r + 1);
    while (atomic_load(&l->done) <= r) sleep_ms(2);
    return l->got[r];
}

/* Enqueue, release and postpone each wake a listener on another connection
 * (another replica's), at their commit; nothing wakes it otherwise. */
START_TEST(test_pg_enqueue_release_postpone_notify)
{
    storage_conn *db = open_fresh();
    listener l = {0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, listen_rounds, &l), 0);
    while (!atomic_load(&l.ready)) sleep_ms(2);
    ck_assert_int_eq(next_round(&l, 0), 0);   /* nothing happened: a timeout */

    int64_t a = 0;
    int64_t ja = agent_with_job(db, "a", &a);
    ck_assert_int_eq(next_round(&l, 1), 1);   /* queued */

    ad_err e = {0};
    job_row j;
    storage_jobs_set_owner("A", 60000);
    ck_assert_int_eq(storage_jobs_claim(db, "A", 60000, &j, &e), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_release(db, ja, &e), 0);
    ck_assert_int_eq(next_round(&l, 2), 1);   /* released */

    ck_assert_int_eq(storage_jobs_claim(db, "A", 60000, &j, &e), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_jobs_postpone(db, ja, &e), 1);
    ck_assert_int_eq(next_round(&l, 3), 1);   /* postponed */
    pthread_join(t, NULL);
    storage_close();
}
END_TEST

Suite *storage_jobs_pg_suite(void)
{
    Suite *s = suite_create("storage_jobs_pg");
    TCase *tc = tcase_create("pg");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, storage_fixture_pg_start, storage_fixture_pg_stop);
    tcase_add_test(tc, test_pg_expired_lease_is_taken_over);
    tcase_add_test(tc, test_pg_recover_touches_nothing);
    tcase_add_test(tc, test_pg_claim_skips_locked_rows_without_the_unit_lock);
    tcase_add_test(tc, test_pg_renew_skips_locked_rows);
    tcase_add_test(tc, test_pg_parallel_claims_take_each_job_once);
    tcase_add_test(tc, test_pg_enqueue_release_postpone_notify);
    suite_add_tcase(s, tc);
    return s;
}
