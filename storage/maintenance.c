#include "storage/maintenance.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "storage/idempotency.h"
#include "storage/conn.h"
#include "storage/internal.h"
#include "storage/rates.h"

/* Rows per pruning transaction: small enough that a waiting request's write
 * is delayed by milliseconds, not seconds. */
#define PRUNE_BATCH 500
/* A finished training run takes up to 1000 iteration rows with it. */
#define PRUNE_TRAINING_BATCH 10
/* Agents looked at per query when pruning by rows per agent. */
#define PRUNE_AGENT_BATCH 64
/* The database counts as idle once nothing has committed for this long. */
#define IDLE_MS 1000

/* An age-pruned log: a window of ids after the cursor, the age of the
 * window's newest row (the pass stops at the first window that reaches rows
 * younger than the cutoff), and the deletion within the window. The ids grow
 * with time, so the oldest rows are the first windows. */
typedef struct age_log {
    const char *window;   /* ?1 cursor, ?2 size -> max id of the window */
    const char *newest;   /* ?1 id -> the row's time */
    const char *prune;    /* ?1 after, ?2 up to, ?3 cutoff */
    int batch;
} age_log;

static const age_log age_logs[] = {
    {"SELECT max(id) FROM (SELECT id FROM inferences WHERE id > ?1 ORDER BY id LIMIT ?2) AS w",
     "SELECT created_at FROM inferences WHERE id = ?1",
     "DELETE FROM inferences WHERE id > ?1 AND id <= ?2 AND created_at < ?3", PRUNE_BATCH},
    {"SELECT max(id) FROM (SELECT id FROM jobs WHERE id > ?1 ORDER BY id LIMIT ?2) AS w",
     "SELECT updated_at FROM jobs WHERE id = ?1",
     "DELETE FROM jobs WHERE id > ?1 AND id <= ?2 AND updated_at < ?3"
     " AND state IN ('done', 'failed', 'cancelled')", PRUNE_BATCH},
    /* A training run is kept while it is its agent's latest (GET .../training
     * shows that one by default) or belongs to the latest group (GET
     * /api/v1/training/status reads that group's runs). */
    {"SELECT max(id) FROM (SELECT id FROM trainings WHERE id > ?1 ORDER BY id LIMIT ?2) AS w",
     "SELECT created_at FROM trainings WHERE id = ?1",
     "DELETE FROM trainings WHERE id > ?1 AND id <= ?2 AND created_at < ?3"
     " AND status IN ('done', 'failed', 'cancelled')"
     " AND id < (SELECT max(t.id) FROM trainings t WHERE t.agent_id = trainings.agent_id)"
     " AND (group_id IS NULL OR group_id < (SELECT max(g.id) FROM training_groups g))",
     PRUNE_TRAINING_BATCH},
};

/* Idempotency keys live STORAGE_IDEM_TTL_MS whatever the retention setting:
 * that is the promise the API makes about them. */
static const age_log idem_log = {
    "SELECT max(id) FROM (SELECT id FROM idempotency_keys WHERE id > ?1 ORDER BY id LIMIT ?2) AS w",
    "SELECT created_at FROM idempotency_keys WHERE id = ?1",
    "DELETE FROM idempotency_keys WHERE id > ?1 AND id <= ?2 AND created_at < ?3", PRUNE_BATCH};

/* A per-agent log capped at a number of rows: the agents that may exceed the
 * cap, the id of the newest row past the cap, and the deletion up to it. */
typedef struct capped_log {
    const char *agents;   /* ?1 cap, ?2 after agent id, ?3 limit -> agent ids */
    const char *cutoff;   /* ?1 agent, ?2 cap -> the newest id to delete */
    const char *prune;    /* ?1 agent, ?2 up to id, ?3 batch */
} capped_log;

static const capped_log capped_logs[] = {
    /* An agent's running total bounds its rows: only agents past the cap can
     * hold more than it, and the query reads the agents table alone. */
    {"SELECT id FROM agents WHERE inference_count > ?1 AND id > ?2 ORDER BY id LIMIT ?3",
     "SELECT id FROM inferences WHERE agent_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2",
     "DELETE FROM inferences WHERE id IN"
     " (SELECT id FROM inferences WHERE agent_id = ?1 AND id <= ?2 ORDER BY id LIMIT ?3)"},
    {"SELECT agent_id FROM feedback WHERE agent_id > ?2 GROUP BY agent_id HAVING count(*) > ?1"
     " ORDER BY agent_id LIMIT ?3",
     "SELECT id FROM feedback WHERE agent_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2",
     "DELETE FROM feedback WHERE id IN"
     " (SELECT id FROM feedback WHERE agent_id = ?1 AND id <= ?2 ORDER BY id LIMIT ?3)"},
};

static int stopped(atomic_int *stop)
{
    return stop && atomic_load(stop);
}

/* Runs a one-integer query; `*out` is 0 for no row or NULL. */
static int query_int(storage_conn *db, const char *sql, int64_t a, int64_t b, int64_t *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, sql);
    sql_bind_int64(st, 1, a);
    sql_bind_int64(st, 2, b);   /* ignored by a statement with one parameter */
    int rc = sql_step(st);
    *out = rc == SQL_ROW ? sql_column_int64(st, 0) : 0;
    sql_reset(st);
    return rc == SQL_ROW || rc == SQL_DONE ? 0 : storage_fail(db, rc, "read log", e);
}

/* One deletion in its own transaction; `*changed` says how many rows went. */
static int prune_step(storage_conn *db, const char *sql, int64_t a, int64_t b, int64_t c,
                      int64_t *changed, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    sql_stmt *st = storage_stmt(db, sql);
    sql_bind_int64(st, 1, a);
    sql_bind_int64(st, 2, b);
    sql_bind_int64(st, 3, c);
    int step = sql_step(st);
    sql_reset(st);
    if (step != SQL_DONE) {
        rc = storage_fail(db, step, "prune log", e);
        storage_rollback(db);
        return rc;
    }
    *changed = sql_changes(st);
    rc = storage_commit(db, e);
    /* Let writers that queued behind this batch go first. */
    struct timespec ts = {0, 2 * 1000000L};
    nanosleep(&ts, NULL);
    return rc;
}

static int prune_by_age(storage_conn *db, const age_log *l, int64_t cutoff, atomic_int *stop,
                        int64_t *removed, ad_err *e)
{
    int64_t cursor = 0;
    while (!stopped(stop)) {
        int64_t hi = 0, newest = 0, n = 0;
        int rc = query_int(db, l->window, cursor, l->batch, &hi, e);
        if (rc == 0 && hi) rc = query_int(db, l->newest, hi, 0, &newest, e);
        if (rc < 0) return rc;
        if (!hi) return 0;
        rc = prune_step(db, l->prune, cursor, hi, cutoff, &n, e);
        if (rc < 0) return rc;
        *removed += n;
        if (newest >= cutoff) return 0;
        cursor = hi;
    }
    return 0;
}

static int prune_by_rows(storage_conn *db, const capped_log *l, int64_t cap, atomic_int *stop,
                         int64_t *removed, ad_err *e)
{
    int64_t after = 0;
    while (!stopped(stop)) {
        int64_t ids[PRUNE_AGENT_BATCH];
        int n = 0;
        sql_stmt *st = storage_stmt(db, l->agents);
        sql_bind_int64(st, 1, cap);
        sql_bind_int64(st, 2, after);
        sql_bind_int(st, 3, PRUNE_AGENT_BATCH);
        int rc;
        while ((rc = sql_step(st)) == SQL_ROW && n < PRUNE_AGENT_BATCH)
            ids[n++] = sql_column_int64(st, 0);
        sql_reset(st);
        if (rc != SQL_DONE && rc != SQL_ROW) return storage_fail(db, rc, "find long logs", e);
        for (int i = 0; i < n && !stopped(stop); i++) {
            int64_t upto = 0, changed = PRUNE_BATCH;
            rc = query_int(db, l->cutoff, ids[i], cap, &upto, e);
            while (rc == 0 && upto && changed == PRUNE_BATCH && !stopped(stop)) {
                rc = prune_step(db, l->prune, ids[i], upto, PRUNE_BATCH, &changed, e);
                *removed += changed;
            }
            if (rc < 0) return rc;
        }
        if (n < PRUNE_AGENT_BATCH) return 0;
        after = ids[n - 1];
    }
    return 0;
}

int storage_prune_logs(storage_conn *db, const storage_retention *r, atomic_int *stop,
                       int64_t *removed, ad_err *e)
{
    int64_t count = 0;
    int rc = 0;
    if (r->max_age_ms > 0) {
        int64_t cutoff = ad_clock_now_ms() - r->max_age_ms;
        for (size_t i = 0; rc == 0 && i < sizeof(age_logs) / sizeof(age_logs[0]); i++)
            rc = prune_by_age(db, &age_logs[i], cutoff, stop, &count, e);
    }
    if (rc == 0) rc = prune_by_age(db, &idem_log, ad_clock_now_ms() - STORAGE_IDEM_TTL_MS, stop, &count, e);
    if (rc == 0) {
        int64_t n = 0;
        rc = storage_rates_prune(db, ad_clock_now_ms(), STORAGE_RATES_WINDOW_MS, &n, e);
        count += n;
    }
    if (rc == 0 && r->max_rows_per_agent > 0) {
        for (size_t i = 0; rc == 0 && i < sizeof(capped_logs) / sizeof(capped_logs[0]); i++)
            rc = prune_by_rows(db, &capped_logs[i], r->max_rows_per_agent, stop, &count, e);
    }
    if (removed) *removed = count;
    return rc;
}

int storage_reclaim_space(storage_conn *db, int truncate_wal, ad_err *e)
{
    /* PostgreSQL's autovacuum does this on the server. */
    if (storage_is_pg(db)) return 0;
    /* Bounded: pages freed meanwhile wait for the next pass. */
    for (int i = 0; i < 256; i++) {
        int free_pages = storage_pragma_int(db, "PRAGMA freelist_count");
        if (free_pages <= 0) break;
        int rc = storage_begin(db, e);
        if (rc < 0) return rc;
        /* 1024 pages (4 MiB) per transaction. */
        sql_stmt *st = storage_stmt(db, "PRAGMA incremental_vacuum(1024)");
        int step;
        while ((step = sql_step(st)) == SQL_ROW) {}
        sql_reset(st);
        if (step != SQL_DONE) {
            rc = storage_fail(db, step, "incremental vacuum", e);
            storage_rollback(db);
            return rc;
        }
        rc = storage_commit(db, e);
        if (rc < 0) return rc;
    }
    int rc = sqlite3_wal_checkpoint_v2(db->db, NULL,
                                       truncate_wal ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
                                       NULL, NULL);
    return rc == SQLITE_OK ? 0 : ad_err_set(e, AD_EIO, "checkpoint: %s", sqlite3_errstr(rc));
}

/* ---- the thread ---- */

static pthread_mutex_t mt_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mt_wake = PTHREAD_COND_INITIALIZER;
static pthread_t mt_thread;
static int mt_running, mt_poked;
static atomic_int mt_stop;
static storage_retention mt_policy;
static int mt_interval_s;

static void maintenance_pass(storage_conn *db, int poked)
{
    ad_err e = {0};
    int64_t removed = 0;
    if (storage_prune_logs(db, &mt_policy, &mt_stop, &removed, &e) < 0)
        ad_log(AD_LOG_WARN, "log retention: %s", e.msg);
    if (removed) ad_log(AD_LOG_INFO, "log retention removed %lld row(s)", (long long)removed);
    if (atomic_load(&mt_stop)) return;
    int idle = ad_clock_now_ms() - storage_last_commit_ms() >= IDLE_MS;
    if (storage_reclaim_space(db, poked || idle, &e) < 0 && e.code != AD_EBUSY)
        ad_log(AD_LOG_WARN, "reclaiming space: %s", e.msg);
}

static void *maintenance_main(void *arg)
{
    (void)arg;
    storage_conn *db = storage_conn_get();
    pthread_mutex_lock(&mt_lock);
    while (!atomic_load(&mt_stop)) {
        if (!mt_poked) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += mt_interval_s;
            pthread_cond_timedwait(&mt_wake, &mt_lock, &ts);
        }
        if (atomic_load(&mt_stop)) break;
        int poked = mt_poked;
        mt_poked = 0;
        pthread_mutex_unlock(&mt_lock);
        if (db) maintenance_pass(db, poked);
        pthread_mutex_lock(&mt_lock);
    }
    pthread_mutex_unlock(&mt_lock);
    storage_thread_release();
    return NULL;
}

void storage_maintenance_start(const storage_retention *r, int interval_s)
{
    pthread_mutex_lock(&mt_lock);
    mt_policy = *r;
    mt_interval_s = interval_s > 0 ? interval_s : 60;
    mt_poked = 0;
    atomic_store(&mt_stop, 0);
    mt_running = pthread_create(&mt_thread, NULL, maintenance_main, NULL) == 0;
    pthread_mutex_unlock(&mt_lock);
    if (!mt_running) ad_log(AD_LOG_WARN, "cannot start the maintenance thread");
}

void storage_maintenance_poke(void)
{
    pthread_mutex_lock(&mt_lock);
    if (mt_running) {
        mt_poked = 1;
        pthread_cond_signal(&mt_wake);
    }
    pthread_mutex_unlock(&mt_lock);
}

void storage_maintenance_stop(void)
{
    pthread_mutex_lock(&mt_lock);
    if (!mt_running) {
        pthread_mutex_unlock(&mt_lock);
        return;
    }
    atomic_store(&mt_stop, 1);
    pthread_cond_signal(&mt_wake);
    pthread_mutex_unlock(&mt_lock);
    pthread_join(mt_thread, NULL);
    pthread_mutex_lock(&mt_lock);
    mt_running = 0;
    pthread_mutex_unlock(&mt_lock);
}
