#include "pipeline/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

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

typedef struct pool_worker {
    pthread_t thread;
    pipeline_pool *pool;
    atomic_llong agent_id;   /* agent of the running job, 0 when idle */
    atomic_int cancel;       /* PIPELINE_RUN_* reason to stop, 0 to go on */
} pool_worker;

struct pipeline_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
    unsigned pending;        /* notifications not yet consumed */
    int nworkers;
    atomic_int busy;
    pool_worker *workers;
};

static void pool_wait(pipeline_pool *p)
{
    pthread_mutex_lock(&p->lock);
    if (!p->stopping && p->pending == 0) {
        /* A timed wait also picks up jobs left behind by a busy agent. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&p->wake, &p->lock, &ts);
    }
    if (p->pending) p->pending--;
    pthread_mutex_unlock(&p->lock);
}

static int pool_stopping(pipeline_pool *p)
{
    pthread_mutex_lock(&p->lock);
    int s = p->stopping;
    pthread_mutex_unlock(&p->lock);
    return s;
}

/* Sleeps `ms`, or less when the pool stops. */
static void pool_pause(pipeline_pool *p, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping && pthread_cond_timedwait(&p->wake, &p->lock, &ts) != ETIMEDOUT) {}
    pthread_mutex_unlock(&p->lock);
}

/* After a job returned: one the runner could neither finish nor put back,
 * because the database refused the write, is still `running` with no worker
 * on it. Put it back in the queue (uncounted), retrying until the database
 * takes the write or the pool stops (the next start requeues it then), and
 * back off (`*backoff_ms`, doubled each time in a row) before claiming
 * again; a job that ended normally resets the wait. */
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
        int rc = db ? storage_jobs_claim(db, &job, &e) : AD_EIO;
        if (rc == AD_ENOTFOUND || rc == AD_EBUSY) {
            pool_wait(p);
            continue;
        }
        if (rc == AD_EIO) {
            pool_pause(p, POOL_STORAGE_BACKOFF_MS);
            continue;
        }
        if (rc < 0) {
            ad_log(AD_LOG_ERROR, "worker cannot claim a job: %s", e.msg);
            pool_wait(p);
            continue;
        }
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

int pipeline_pool_start(pipeline_pool **out, int workers, ad_err *e)
{
    storage_conn *db = storage_conn_get();
    int requeued = 0;
    if (!db) return ad_err_set(e, AD_EIO, "database unavailable");
    int rc = storage_jobs_requeue_running(db, &requeued, e);
    if (rc < 0) return rc;
    if (requeued) ad_log(AD_LOG_INFO, "resuming %d interrupted job(s)", requeued);

    pipeline_pool *p = ad_calloc(1, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->workers = ad_calloc((size_t)workers, sizeof(*p->workers));
    for (int i = 0; i < workers; i++) {
        p->workers[i].pool = p;
        if (pthread_create(&p->workers[i].thread, NULL, pool_main, &p->workers[i]) != 0) {
            pipeline_pool_stop(p);
            return ad_err_set(e, AD_EIO, "cannot start worker thread %d", i);
        }
        p->nworkers++;
    }
    *out = p;
    return 0;
}

void pipeline_pool_notify(pipeline_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->pending++;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
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
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nworkers; i++) atomic_store(&p->workers[i].cancel, PIPELINE_RUN_STOPPING);
    for (int i = 0; i < p->nworkers; i++) pthread_join(p->workers[i].thread, NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->workers);
    free(p);
}
