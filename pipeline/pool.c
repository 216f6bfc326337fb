#include "pipeline/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "pipeline/runner.h"
#include "storage/db.h"
#include "storage/jobs.h"

/* A job claimed this many times without finishing has crashed the process
 * each time (or met a shutdown each time); it is failed instead of retried. */
#define POOL_MAX_ATTEMPTS 5
/* How long a worker waits before trying the database again after it refused
 * a write (disk full, I/O error). A job the database keeps refusing is run
 * again after twice the wait each time, up to the cap: a disk that stays full
 * for hours must not have every worker redo a whole pipeline (and log it)
 * twice a second. */
#define POOL_STORAGE_BACKOFF_MS 500
#define POOL_STORAGE_BACKOFF_MAX_MS 4000
/* The listener's wait is cut in slices this long, so that a stop is seen
 * soon (a notification ends a slice at once). */
#define POOL_LISTEN_SLICE_MS 200
/* How long the listener waits before reconnecting after a failure, doubled
 * each time in a row, up to the cap. */
#define POOL_LISTEN_BACKOFF_MS 250
#define POOL_LISTEN_BACKOFF_MAX_MS 5000

typedef struct pool_worker {
    pthread_t thread;
    pipeline_pool *pool;
    atomic_llong agent_id;   /* agent of the running job, 0 when idle */
    atomic_int cancel;       /* PIPELINE_RUN_* reason to stop, 0 to go on */
} pool_worker;

struct pipeline_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;     /* idle workers wait here, and only they */
    pthread_cond_t tick;     /* timed pauses wait here (monotonic clock); broadcast at the stop */
    int stopping;
    int beat_stop;           /* set once the workers are joined: the heartbeat ends */
    unsigned pending;        /* wake-ups not yet consumed, at most `size` */
    int size;                /* workers asked for (fixed before any starts) */
    int nworkers;            /* workers started */
    atomic_int busy;
    pool_worker *workers;
    char replica[STORAGE_JOBS_OWNER_MAX];
    int64_t lease_ms;
    pthread_t heartbeat, listener;
    int heartbeat_on, listener_on;
};

/* Wakes one idle worker, or has the next worker that would sleep try again
 * first. Wake-ups that nobody consumed are capped at the worker count: each
 * one costs a claim that may find nothing, and more cannot find more. */
static void pool_wake(pipeline_pool *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->pending < (unsigned)p->size) p->pending++;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

/* An idle worker sleeps until woken or the stop: no timed poll, since every
 * job that becomes claimable comes with a wake-up (a notify, the listener,
 * the worker that freed or claimed a job). */
static void pool_wait(pipeline_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (!p->stopping && p->pending == 0) pthread_cond_wait(&p->wake, &p->lock);
    if (p->pending) p->pending--;
    pthread_mutex_unlock(&p->lock);
}

/* Reads a flag of the pool's (`stopping`, `beat_stop`) under its lock. */
static int pool_flag(pipeline_pool *p, const int *flag)
{
    pthread_mutex_lock(&p->lock);
    int s = *flag;
    pthread_mutex_unlock(&p->lock);
    return s;
}

static int pool_stopping(pipeline_pool *p)
{
    return pool_flag(p, &p->stopping);
}

/* Sleeps `ms`, or less once `*until` (a flag of the pool's) is set. On the
 * monotonic clock: a wall clock stepped back must not stretch a pause (the
 * heartbeat's would let the leases lapse under live jobs). */
static void pool_pause_until(pipeline_pool *p, int64_t ms, const int *until)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&p->lock);
    while (!*until && pthread_cond_timedwait(&p->tick, &p->lock, &ts) != ETIMEDOUT) {}
    pthread_mutex_unlock(&p->lock);
}

/* Sleeps `ms`, or less when the pool stops. */
static void pool_pause(pipeline_pool *p, int64_t ms)
{
    pool_pause_until(p, ms, &p->stopping);
}

/* After a job returned: one the runner could neither finish nor put back,
 * because the database refused the write, is still `running` with no worker
 * on it. Put it back in the queue (uncounted), retrying until the database
 * takes the write or the pool stops (then its lease lapses, or on SQLite
 * the next start recovers it), and back off (`*backoff_ms`, doubled each
 * time in a row) before claiming again; a job that ended normally resets
 * the wait. */
static void pool_settle(pipeline_pool *p, storage_conn *db, int64_t job_id, int *backoff_ms)
{
    for (;;) {
        ad_err e = {0};
        int rc = storage_jobs_postpone(db, job_id, &e);
        if (rc == 0) {
            *backoff_ms = POOL_STORAGE_BACKOFF_MS;
            return;
        }
        if (rc > 0) {
            pool_pause(p, *backoff_ms);
            *backoff_ms = *backoff_ms * 2 > POOL_STORAGE_BACKOFF_MAX_MS ? POOL_STORAGE_BACKOFF_MAX_MS
                                                                          : *backoff_ms * 2;
            return;
        }
        if (pool_stopping(p)) return;
        pool_pause(p, POOL_STORAGE_BACKOFF_MS);
    }
}

static void *pool_main(void *arg)
{
    pool_worker *w = arg;
    pipeline_pool *p = w->pool;
    int backoff_ms = POOL_STORAGE_BACKOFF_MS;
    while (!pool_stopping(p)) {
        storage_conn *db = storage_conn_get();
        job_row job;
        ad_err e = {0};
        /* Reset before claiming, so a cancel or stop that arrives between the
         * claim and the publication of agent_id below is not overwritten. */
        atomic_store(&w->cancel, 0);
        int rc = db ? storage_jobs_claim(db, p->replica, p->lease_ms, &job, &e) : AD_EIO;
        if (rc == AD_ENOTFOUND) {
            pool_wait(p);
            continue;
        }
        if (rc < 0) {
            /* Busy, a refused write, a server away: no wake-up would come
             * for the jobs waiting, so try again after a pause. */
            if (rc != AD_EBUSY && rc != AD_EIO && rc != AD_EUNAVAILABLE)
                ad_log(AD_LOG_ERROR, "worker cannot claim a job: %s", e.msg);
            pool_pause(p, POOL_STORAGE_BACKOFF_MS);
            continue;
        }
        /* One wake-up may stand for several jobs (PostgreSQL folds
         * notifications together): another idle worker looks for more. */
        pool_wake(p);
        if (job.attempts > POOL_MAX_ATTEMPTS) {
            pipeline_fail_job(db, &job, "interrupted too many times (the process stopped while running it)");
            job_row_cleanup(&job);
            continue;
        }
        atomic_store(&w->agent_id, job.agent_id);
        /* A stop that scanned the workers before agent_id was published set
         * `stopping` first: see it now. */
        if (pool_stopping(p)) atomic_store(&w->cancel, PIPELINE_RUN_STOPPING);
        atomic_fetch_add(&p->busy, 1);
        pipeline_run_job(db, &job, &w->cancel);
        pool_settle(p, db, job.id, &backoff_ms);
        atomic_fetch_sub(&p->busy, 1);
        atomic_store(&w->agent_id, 0);
        job_row_cleanup(&job);
    }
    storage_thread_release();
    return NULL;
}

/* The heartbeat: renews the leases of this replica's running jobs every
 * lease_ms/3, so that two beats may fail before another replica takes them.
 * A failed beat is logged (once until one succeeds) and the next one tries
 * again; holds renew too. It beats on through a stop until the workers are
 * joined: a job interrupted by the stop runs until its next check, and
 * another replica must not take it over meanwhile. */
static void *pool_heartbeat_main(void *arg)
{
    pipeline_pool *p = arg;
    int failing = 0;
    for (;;) {
        pool_pause_until(p, p->lease_ms / 3, &p->beat_stop);
        if (pool_flag(p, &p->beat_stop)) break;
        /* No job runs here: nothing to renew, and no write at all. A job
         * claimed since holds a full lease already. */
        if (atomic_load(&p->busy) == 0) continue;
        storage_conn *db = storage_conn_get();
        ad_err e = {0};
        int rc = db ? storage_jobs_renew(db, p->replica, p->lease_ms, NULL, &e)
                    : ad_err_set(&e, AD_EUNAVAILABLE, "no database connection");
        if (rc < 0 && !failing)
            ad_log(AD_LOG_WARN, "job leases not renewed (other replicas may take the jobs over): %s", e.msg);
        if (rc == 0 && failing) ad_log(AD_LOG_INFO, "job leases renewed again");
        failing = rc < 0;
    }
    storage_thread_release();
    return NULL;
}

/* One round of the listener: reads when the next foreign lease lapses,
 * wakes a worker for one that has (once per expiry seen), then waits for a
 * notification until just after the next lapse, or a third of a lease (a
 * replica may have claimed jobs since, and die), and wakes a worker when
 * one comes. Returns 0, or a negative code when the connection failed. */
static int pool_listen_round(pipeline_pool *p, storage_conn *db, int64_t *woken_for, ad_err *e)
{
    int64_t expiry = 0;
    int rc = storage_jobs_next_expiry(db, p->replica, &expiry, e);
    if (rc < 0) return rc;
    int64_t now = ad_clock_now_ms();
    if (expiry && expiry < now && expiry != *woken_for) {
        /* A dead replica's job is free: a worker takes it over. */
        *woken_for = expiry;
        pool_wake(p);
    }
    int64_t wait_ms = p->lease_ms / 3;
    if (expiry >= now && expiry + 1 - now < wait_ms) wait_ms = expiry + 1 - now;
    /* Leases are wall-clock times (shared by replicas); the wait itself is
     * timed on the monotonic clock, which no clock step stretches. */
    int64_t until = ad_clock_mono_ms() + wait_ms;
    while (!pool_stopping(p)) {
        int64_t left = until - ad_clock_mono_ms();
        if (left <= 0) break;
        rc = storage_jobs_wait(db, (int)(left < POOL_LISTEN_SLICE_MS ? left : POOL_LISTEN_SLICE_MS), e);
        if (rc < 0) return rc;
        if (rc > 0) {
            pool_wake(p);
            break;
        }
    }
    return 0;
}

/* The listener (PostgreSQL): LISTENs on a connection of its own. After a
 * failure it waits (backing off) and listens again, waking a worker once it
 * does: notifications sent meanwhile were lost. */
static void *pool_listen_main(void *arg)
{
    pipeline_pool *p = arg;
    int64_t woken_for = 0;
    int backoff_ms = 0;
    while (!pool_stopping(p)) {
        storage_conn *db = storage_conn_get();
        ad_err e = {0};
        int rc = db ? pool_listen_round(p, db, &woken_for, &e)
                    : ad_err_set(&e, AD_EUNAVAILABLE, "no database connection");
        if (rc == 0) {
            if (backoff_ms) {
                ad_log(AD_LOG_INFO, "job notifications received again");
                pool_wake(p);
            }
            backoff_ms = 0;
            continue;
        }
        if (!backoff_ms) ad_log(AD_LOG_WARN, "job notifications lost, listening again: %s", e.msg);
        backoff_ms = backoff_ms ? backoff_ms * 2 : POOL_LISTEN_BACKOFF_MS;
        if (backoff_ms > POOL_LISTEN_BACKOFF_MAX_MS) backoff_ms = POOL_LISTEN_BACKOFF_MAX_MS;
        pool_pause(p, backoff_ms);
    }
    storage_thread_release();
    return NULL;
}

/* `<hostname>:<pid>:<8 random hex>`: the pid tells replicas on one host
 * apart, the random part a restarted process from its predecessor of the
 * same pid (a container's pid 1), whose leases must lapse, not be renewed. */
static int pool_make_replica(char out[STORAGE_JOBS_OWNER_MAX], ad_err *e)
{
    char host[128] = "";
    if (gethostname(host, sizeof(host)) != 0 || !host[0]) snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return ad_err_set(e, AD_EIO, "cannot make the replica id: getrandom failed");
    snprintf(out, STORAGE_JOBS_OWNER_MAX, "%s:%ld:%08x", host, (long)getpid(), (unsigned)r);
    return 0;
}

static void pool_log_replica(const pipeline_pool *p, int recovered)
{
    ad_buf f;
    ad_buf_init(&f);
    ad_buf_printf(&f, "\"msg\":\"job queue\",\"replica\":");
    ad_buf_json_string(&f, p->replica, strlen(p->replica));
    ad_buf_printf(&f, ",\"lease_ms\":%lld,\"recovered\":%d", (long long)p->lease_ms, recovered);
    ad_log_fields(AD_LOG_INFO, &f);
    ad_buf_cleanup(&f);
}

int pipeline_pool_start(pipeline_pool **out, int workers, int64_t lease_ms, ad_err *e)
{
    storage_conn *db = storage_conn_get();
    if (!db) return ad_err_set(e, AD_EIO, "database unavailable");
    char replica[STORAGE_JOBS_OWNER_MAX];
    int rc = pool_make_replica(replica, e);
    if (rc < 0) return rc;
    int recovered = 0;
    rc = storage_jobs_recover(db, &recovered, e);
    if (rc < 0) return rc;
    storage_jobs_set_owner(replica, lease_ms);

    pipeline_pool *p = ad_calloc(1, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&p->tick, &monotonic);
    pthread_condattr_destroy(&monotonic);
    memcpy(p->replica, replica, sizeof(p->replica));
    p->lease_ms = lease_ms;
    p->size = workers;
    pool_log_replica(p, recovered);
    if (recovered) ad_log(AD_LOG_INFO, "resuming %d interrupted job(s)", recovered);
    p->workers = ad_calloc((size_t)workers, sizeof(*p->workers));
    for (int i = 0; i < workers; i++) {
        p->workers[i].pool = p;
        if (pthread_create(&p->workers[i].thread, NULL, pool_main, &p->workers[i]) != 0) {
            pipeline_pool_stop(p);
            return ad_err_set(e, AD_EIO, "cannot start worker thread %d", i);
        }
        p->nworkers++;
    }
    if (pthread_create(&p->heartbeat, NULL, pool_heartbeat_main, p) != 0) {
        pipeline_pool_stop(p);
        return ad_err_set(e, AD_EIO, "cannot start the job heartbeat thread");
    }
    p->heartbeat_on = 1;
    if (storage_jobs_shared(db)) {
        if (pthread_create(&p->listener, NULL, pool_listen_main, p) != 0) {
            pipeline_pool_stop(p);
            return ad_err_set(e, AD_EIO, "cannot start the job listener thread");
        }
        p->listener_on = 1;
    }
    *out = p;
    return 0;
}

const char *pipeline_pool_replica(const pipeline_pool *p)
{
    return p->replica;
}

void pipeline_pool_notify(pipeline_pool *p)
{
    pool_wake(p);
}

void pipeline_pool_cancel_agent(pipeline_pool *p, int64_t agent_id)
{
    for (int i = 0; i < p->nworkers; i++)
        if (atomic_load(&p->workers[i].agent_id) == agent_id)
            atomic_store(&p->workers[i].cancel, PIPELINE_RUN_CANCELLED);
}

void pipeline_pool_stats(pipeline_pool *p, int *workers, int *busy)
{
    *workers = p->nworkers;
    *busy = atomic_load(&p->busy);
}

void pipeline_pool_stop(pipeline_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_cond_broadcast(&p->tick);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nworkers; i++) atomic_store(&p->workers[i].cancel, PIPELINE_RUN_STOPPING);
    for (int i = 0; i < p->nworkers; i++) pthread_join(p->workers[i].thread, NULL);
    pthread_mutex_lock(&p->lock);
    p->beat_stop = 1;
    pthread_cond_broadcast(&p->tick);
    pthread_mutex_unlock(&p->lock);
    if (p->heartbeat_on) pthread_join(p->heartbeat, NULL);
    if (p->listener_on) pthread_join(p->listener, NULL);
    pthread_cond_destroy(&p->tick);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->workers);
    free(p);
}
