#include "storage/inferences.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "storage/agents.h"
#include "storage/internal.h"

/* The row and the agent's totals, inside the caller's transaction; nothing
 * when the agent was deleted meanwhile. The insert checks for the agent
 * itself rather than let the foreign key refuse the row: on PostgreSQL a
 * failed statement aborts its transaction, and with it the other records
 * of the recorder's batch. */
static int inferences_insert(storage_conn *db, const inference_record *r, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO inferences (agent_id, backend, status, outcome, latency_ms, prompt_tokens,"
        " output_tokens, retries, prompt, created_at)"
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10"
        " WHERE EXISTS (SELECT 1 FROM agents WHERE id = ?1)");
    sql_bind_int64(st, 1, r->agent_id);
    sql_bind_text(st, 2, r->backend);
    sql_bind_int(st, 3, r->status);
    sql_bind_text(st, 4, r->outcome);
    sql_bind_int64(st, 5, r->latency_ms);
    sql_bind_int(st, 6, r->prompt_tokens);
    sql_bind_int(st, 7, r->output_tokens);
    sql_bind_int(st, 8, r->retries);
    if (r->prompt) sql_bind_text(st, 9, r->prompt);
    sql_bind_int64(st, 10, ad_clock_now_ms());
    int rc = sql_step(st);
    if (rc != SQL_DONE) return storage_fail(db, rc, "record inference", e);
    if (sql_changes(st) == 0) return 0;
    int ok = r->status >= 200 && r->status < 300;
    int code = storage_agents_count_inference(db, r->agent_id, ok, r->prompt_tokens, r->output_tokens, e);
    return code == AD_ENOTFOUND ? 0 : code;
}

int storage_inferences_record(storage_conn *db, const inference_record *r, ad_err *e)
{
    int code = storage_begin(db, e);
    if (code < 0) return code;
    code = inferences_insert(db, r, e);
    if (code < 0) {
        storage_rollback(db);
        return code;
    }
    return storage_commit(db, e);
}

#define RECORDER_FLUSH_MS 20
#define RECORDER_SOON 256        /* wake the writer early at this many */
#define RECORDER_MAX 100000      /* past this, callers write themselves */

typedef struct queued_record {
    inference_record r;
    char backend[16], outcome[24];
    char *prompt;
} queued_record;

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rec_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t rec_done = PTHREAD_COND_INITIALIZER;
static pthread_t rec_thread;
static int rec_running, rec_stopping;
static queued_record *rec_queue;
static size_t rec_len, rec_cap;
static uint64_t rec_submitted, rec_written;

static void rec_write_one(storage_conn *db, const inference_record *r)
{
    ad_err e = {0};
    if (!db || storage_inferences_record(db, r, &e) < 0)
        ad_log(AD_LOG_WARN, "inference not recorded: %s", db ? e.msg : "no database");
}

static void *rec_main(void *arg)
{
    (void)arg;
    storage_conn *db = storage_conn_get();
    pthread_mutex_lock(&rec_lock);
    for (;;) {
        if (rec_len == 0 && !rec_stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += RECORDER_FLUSH_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&rec_wake, &rec_lock, &ts);
        }
        if (rec_len == 0 && rec_stopping) break;
        /* Nothing came: no empty transaction (it would take the write lock,
         * and on PostgreSQL the unit-of-work lock, forty times a second). */
        if (rec_len == 0) continue;
        queued_record *batch = rec_queue;
        size_t n = rec_len;
        uint64_t upto = rec_submitted;
        rec_queue = NULL, rec_len = rec_cap = 0;
        pthread_mutex_unlock(&rec_lock);
        /* One transaction for the batch; a record that cannot be written is
         * logged and skipped, not allowed to lose the others. */
        ad_err e = {0};
        int rc = db ? storage_begin(db, &e) : AD_EIO;
        for (size_t i = 0; i < n; i++) {
            queued_record *q = &batch[i];
            q->r.backend = q->backend, q->r.outcome = q->outcome, q->r.prompt = q->prompt;
            if (rc == 0 && inferences_insert(db, &q->r, &e) < 0)
                ad_log(AD_LOG_WARN, "inference not recorded: %s", e.msg);
            free(batch[i].prompt);
        }
        if (rc == 0) rc = storage_commit(db, &e);
        if (rc < 0) ad_log(AD_LOG_WARN, "%zu inference record(s) lost: %s", n, db ? e.msg : "no database");
        free(batch);
        pthread_mutex_lock(&rec_lock);
        rec_written = upto;
        pthread_cond_broadcast(&rec_done);
    }
    pthread_mutex_unlock(&rec_lock);
    storage_thread_release();
    return NULL;
}

void storage_inferences_start(void)
{
    pthread_mutex_lock(&rec_lock);
    rec_stopping = 0;
    rec_running = pthread_create(&rec_thread, NULL, rec_main, NULL) == 0;
    pthread_mutex_unlock(&rec_lock);
}

void storage_inferences_submit(const inference_record *r)
{
    pthread_mutex_lock(&rec_lock);
    if (!rec_running || rec_len >= RECORDER_MAX) {
        pthread_mutex_unlock(&rec_lock);
        rec_write_one(storage_conn_get(), r);
        return;
    }
    if (rec_len == rec_cap) {
        rec_cap = rec_cap ? rec_cap * 2 : 64;
        rec_queue = ad_realloc(rec_queue, ad_size_mul(rec_cap, sizeof(*rec_queue)));
    }
    queued_record *q = &rec_queue[rec_len++];
    q->r = *r;
    snprintf(q->backend, sizeof(q->backend), "%s", r->backend);
    snprintf(q->outcome, sizeof(q->outcome), "%s", r->outcome);
    q->prompt = r->prompt ? ad_strdup(r->prompt) : NULL;
    /* The strings' pointers are set by the writer: this array moves as it grows. */
    rec_submitted++;
    if (rec_len >= RECORDER_SOON) pthread_cond_signal(&rec_wake);
    pthread_mutex_unlock(&rec_lock);
}

void storage_inferences_flush(void)
{
    pthread_mutex_lock(&rec_lock);
    uint64_t target = rec_submitted;
    if (rec_running && rec_written < target) pthread_cond_signal(&rec_wake);
    while (rec_running && rec_written < target) pthread_cond_wait(&rec_done, &rec_lock);
    pthread_mutex_unlock(&rec_lock);
}

void storage_inferences_stop(void)
{
    pthread_mutex_lock(&rec_lock);
    if (!rec_running) {
        pthread_mutex_unlock(&rec_lock);
        return;
    }
    rec_stopping = 1;
    pthread_cond_signal(&rec_wake);
    pthread_mutex_unlock(&rec_lock);
    pthread_join(rec_thread, NULL);
    pthread_mutex_lock(&rec_lock);
    rec_running = 0;
    pthread_cond_broadcast(&rec_done);
    pthread_mutex_unlock(&rec_lock);
}
