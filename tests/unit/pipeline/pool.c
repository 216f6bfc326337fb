/*
 * Tests pipeline/pool.c with its real threads on a real database: workers
 * that sleep until woken (no timed poll), start-up recovery that resumes an
 * interrupted job without waiting for its lease, the replica's id as the
 * lease owner, and a stop that hands a running job over at once; and on a
 * real PostgreSQL, the listener: a job queued by another replica wakes a
 * worker, and a dead replica's job is taken over once its lease lapses.
 */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "pipeline/plan.h"
#include "pipeline/pool.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/jobs.h"
#include "tests/common/pgserver.h"
#include "tests/unit/storage/fixtures.h"

Suite *pipeline_pool_suite(void);

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Text of about `bytes` bytes, varied enough to make passages of. */
static char *long_text(size_t bytes)
{
    static const char *const words[] = {"borrow", "checker", "lifetime", "cargo", "crate", "trait",
                                        "module", "closure", "iterator", "vector", "slice", "thread"};
    char *s = malloc(bytes + 64);
    ck_assert_ptr_nonnull(s);
    size_t n = 0;
    for (unsigned i = 0; n < bytes; i++) {
        n += (size_t)sprintf(s + n, "%s %s %u.%s", words[i % 12], words[(i * 7 + 3) % 12], i % 997,
                             i % 40 == 39 ? "\n\n" : " ");
    }
    return s;
}

static int64_t create_agent(storage_conn *db, const char *user_id, const char *text, size_t len)
{
    agent_new a = {.user_id = user_id, .source = "text", .material = text, .material_len = len};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ad_err e = {0};
    ck_assert_msg(storage_agents_create(db, &a, &id, &e) == 0, "%s", e.msg);
    return id;
}

static const char small_text[] =
    "Cargo is the Rust build tool and package manager. It downloads dependencies and compiles the "
    "project.\n\nThe borrow checker enforces ownership rules at compile time. Every value has a "
    "single owner.\n";

/* Waits up to `ms` for `sql` (?1 = arg) to count `want`; returns what it counted last. */
static int64_t wait_count(storage_conn *db, const char *sql, int64_t arg, int64_t want, int ms)
{
    int64_t got = -1;
    for (int64_t end = ad_clock_mono_ms() + ms; ad_clock_mono_ms() < end; sleep_ms(10)) {
        got = storage_fixture_count(db, sql, arg);
        if (got == want) break;
    }
    return got;
}

/* Idle workers sleep on the condition variable until a wake-up: a job
 * queued without one is not found by polling (the pool used to look every
 * 200 ms); pipeline_pool_notify runs it. */
START_TEST(test_pool_idle_workers_sleep_until_woken)
{
    storage_fixture f;
    storage_fixture_open(&f);
    pipeline_pool *p = NULL;
    ad_err e = {0};
    ck_assert_int_eq(pipeline_pool_start(&p, 2, PIPELINE_POOL_LEASE_MS, &e), 0);
    sleep_ms(300);   /* the workers find nothing and go to sleep */
    int64_t id = create_agent(f.db, "sleeper", small_text, sizeof(small_text) - 1);
    sleep_ms(700);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE agent_id = ?1"
                                                 " AND state = 'queued'", id), 1);
    pipeline_pool_notify(p);
    ck_assert_int_eq(wait_count(f.db, "SELECT count(*) FROM agents WHERE id = ?1 AND status = 'ready'", id, 1,
                                30000), 1);
    pipeline_pool_stop(p);
    storage_fixture_close(&f);
}
END_TEST

/* SQLite: a job left running by a process that died resumes as soon as the
 * pool starts, however long its dead lease had to run, and is claimed under
 * this replica's id, `<hostname>:<pid>:<8 hex>`. */
START_TEST(test_pool_start_resumes_interrupted_jobs_at_once)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create_agent(f.db, "crashed", small_text, sizeof(small_text) - 1);
    storage_fixture_exec(f.db, "UPDATE jobs SET state = 'running', attempts = 1,"
                               " lease_owner = 'dead:1:00000000', lease_expires_at = ?1",
                         ad_clock_now_ms() + 600000);
    pipeline_pool *p = NULL;
    ad_err e = {0};
    int64_t t0 = ad_clock_mono_ms();
    ck_assert_int_eq(pipeline_pool_start(&p, 1, PIPELINE_POOL_LEASE_MS, &e), 0);
    ck_assert_int_eq(wait_count(f.db, "SELECT count(*) FROM agents WHERE id = ?1 AND status = 'ready'", id, 1,
                                30000), 1);
    ck_assert_int_lt(ad_clock_mono_ms() - t0, PIPELINE_POOL_LEASE_MS);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT attempts FROM jobs WHERE agent_id = ?1", id), 2);

    const char *replica = pipeline_pool_replica(p);
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM jobs WHERE lease_owner = ?1",
                                                replica), 1);
    char host[128] = "", want[160];
    ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
    snprintf(want, sizeof(want), "%s:%ld:", host, (long)getpid());
    ck_assert_msg(strncmp(replica, want, strlen(want)) == 0, "replica %s", replica);
    const char *hex = replica + strlen(want);
    ck_assert_uint_eq(strlen(hex), 8);
    ck_assert_uint_eq(strspn(hex, "0123456789abcdef"), 8);
    char first[STORAGE_JOBS_OWNER_MAX];
    snprintf(first, sizeof(first), "%s", replica);
    pipeline_pool_stop(p);

    /* Every start is a new replica: a restarted process never renews the
     * leases of the one before it. */
    ck_assert_int_eq(pipeline_pool_start(&p, 1, PIPELINE_POOL_LEASE_MS, &e), 0);
    ck_assert_str_ne(pipeline_pool_replica(p), first);
    pipeline_pool_stop(p);
    storage_fixture_close(&f);
}
END_TEST

/* A graceful stop releases a running job with its lease: any replica (here
 * "B") claims it at once, without waiting for the lease to lapse. */
START_TEST(test_pool_stop_hands_the_job_over)
{
    storage_fixture f;
    storage_fixture_open(&f);
    size_t len = 3u << 20;
    char *text = long_text(len);
    pipeline_pool *p = NULL;
    ad_err e = {0};
    ck_assert_int_eq(pipeline_pool_start(&p, 1, PIPELINE_POOL_LEASE_MS, &e), 0);
    int64_t id = create_agent(f.db, "big", text, strlen(text));
    free(text);
    pipeline_pool_notify(p);
    ck_assert_int_eq(wait_count(f.db, "SELECT count(*) FROM agents WHERE id = ?1 AND status = 'processing'", id,
                                1, 30000), 1);
    pipeline_pool_stop(p);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE agent_id = ?1 AND state = 'queued'"
                                                 " AND lease_owner IS NULL AND lease_expires_at IS NULL", id), 1);
    job_row j;
    ck_assert_int_eq(storage_jobs_claim(f.db, "B", 60000, &j, &e), 0);
    ck_assert_int_eq(j.agent_id, id);
    ck_assert_int_eq(j.attempts, 2);
    job_row_cleanup(&j);
    storage_fixture_close(&f);
}
END_TEST


static int64_t pg_wait_int(storage_conn *db, const char *sql, int64_t arg, int64_t want, int ms)
{
    int64_t got = -1;
    for (int64_t end = ad_clock_mono_ms() + ms; ad_clock_mono_ms() < end; sleep_ms(10)) {
        got = storage_fixture_int(db, sql, arg);
        if (got == want) break;
    }
    return got;
}

/* A job queued by another replica (this thread, which never calls
 * pipeline_pool_notify) reaches the idle workers through NOTIFY. */
START_TEST(test_pool_pg_notification_wakes_a_worker)
{
    storage_conn *db = storage_fixture_pg_fresh("pool");
    pipeline_pool *p = NULL;
    ad_err e = {0};
    ck_assert_int_eq(pipeline_pool_start(&p, 2, PIPELINE_POOL_LEASE_MS, &e), 0);
    sleep_ms(300);   /* the workers find nothing and go to sleep */
    int64_t id = create_agent(db, "remote", small_text, sizeof(small_text) - 1);
    int64_t t0 = ad_clock_mono_ms();
    ck_assert_int_eq(pg_wait_int(db, "SELECT count(*) FROM jobs WHERE agent_id = ?1 AND state <> 'queued'", id,
                                 1, 5000), 1);
    ck_assert_int_lt(ad_clock_mono_ms() - t0, 3000);
    ck_assert_int_eq(pg_wait_int(db, "SELECT count(*) FROM agents WHERE id = ?1 AND status = 'ready'", id, 1,
                                 30000), 1);
    pipeline_pool_stop(p);
    storage_close();
}
END_TEST

/* A job running under a dead replica's lease: start-up leaves it alone
 * while the lease holds (it could be a live replica's), and the listener
 * wakes a worker when it lapses; the job is taken over (attempt 2) and runs
 * to its end. */
START_TEST(test_pool_pg_takes_over_a_dead_replicas_job_when_its_lease_lapses)
{
    storage_conn *db = storage_fixture_pg_fresh("pool");
    int64_t id = create_agent(db, "orphan", small_text, sizeof(small_text) - 1);
    int64_t lapses = ad_clock_now_ms() + 1500;
    sql_stmt *st = storage_stmt(db, "UPDATE jobs SET state = 'running', attempts = 1,"
                                    " lease_owner = 'dead:1:00000000', lease_expires_at = ?1");
    sql_bind_int64(st, 1, lapses);
    ck_assert_int_eq(sql_step(st), SQL_DONE);
    pipeline_pool *p = NULL;
    ad_err e = {0};
    ck_assert_int_eq(pipeline_pool_start(&p, 1, PIPELINE_POOL_LEASE_MS, &e), 0);
    sleep_ms(700);
    ck_assert_int_eq(storage_fixture_int(db, "SELECT count(*) FROM jobs WHERE agent_id = ?1"
                                " AND lease_owner = 'dead:1:00000000' AND attempts = 1", id), 1);
    ck_assert_int_eq(pg_wait_int(db, "SELECT attempts FROM jobs WHERE agent_id = ?1", id, 2, 5000), 2);
    ck_assert_int_ge(ad_clock_now_ms(), lapses);
    ck_assert_int_lt(ad_clock_now_ms(), lapses + 2000);
    ck_assert_int_eq(pg_wait_int(db, "SELECT count(*) FROM agents WHERE id = ?1 AND status = 'ready'", id, 1,
                                 30000), 1);
    pipeline_pool_stop(p);
    storage_close();
}
END_TEST

Suite *pipeline_pool_suite(void)
{
    Suite *s = suite_create("pipeline_pool");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pool_idle_workers_sleep_until_woken);
    tcase_add_test(tc, test_pool_start_resumes_interrupted_jobs_at_once);
    tcase_add_test(tc, test_pool_stop_hands_the_job_over);
    suite_add_tcase(s, tc);
    TCase *pg = tcase_create("pg");
    tcase_set_timeout(pg, 120);
    tcase_add_unchecked_fixture(pg, storage_fixture_pg_start, storage_fixture_pg_stop);
    tcase_add_test(pg, test_pool_pg_notification_wakes_a_worker);
    tcase_add_test(pg, test_pool_pg_takes_over_a_dead_replicas_job_when_its_lease_lapses);
    suite_add_tcase(s, pg);
    return s;
}
