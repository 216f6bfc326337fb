#include "storage/idempotency.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "storage/internal.h"

void idem_answer_cleanup(idem_answer *a)
{
    if (!a) return;
    free(a->content_type);
    free(a->location);
    free(a->body);
    memset(a, 0, sizeof(*a));
}

static char *idem_column_text(sql_stmt *st, int col)
{
    const char *t = sql_column_text(st, col);
    return t ? ad_strdup((const char *)t) : NULL;
}

/* Reads the row's answer columns (status 2, content_type 3, location 4, body 5). */
static void idem_read_answer(sql_stmt *st, idem_answer *a)
{
    a->status = sql_column_int(st, 2);
    a->content_type = idem_column_text(st, 3);
    a->location = idem_column_text(st, 4);
    const void *b = sql_column_blob(st, 5);
    size_t n = (size_t)sql_column_bytes(st, 5);
    a->body = ad_malloc(ad_size_add(n, 1));
    if (n) memcpy(a->body, b, n);
    a->body[n] = '\0';
    a->body_len = n;
}

/* Inside the claim's transaction: what the existing row says, if any.
 * `*free_id` is the id of a row that no longer holds the key (expired or
 * past its lease), 0 when there is none. */
static int idem_lookup(storage_conn *db, const char *caller, const char *key, const char *fingerprint,
                       int64_t now_ms, int *found, idem_claim_result *result, int64_t *free_id,
                       idem_answer *answer, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT id, created_at, status, content_type, location, body, state, fingerprint"
        " FROM idempotency_keys WHERE caller = ?1 AND idem_key = ?2");
    sql_bind_text(st, 1, caller);
    sql_bind_text(st, 2, key);
    int rc = sql_step(st);
    *found = 0;
    *free_id = 0;
    if (rc == SQL_ROW) {
        int64_t id = sql_column_int64(st, 0);
        int64_t created = sql_column_int64(st, 1);
        const char *state = sql_column_text(st, 6);
        const char *fp = sql_column_text(st, 7);
        int running = state && strcmp(state, "running") == 0;
        if (now_ms - created >= STORAGE_IDEM_TTL_MS || (running && now_ms - created >= STORAGE_IDEM_LEASE_MS)) {
            *free_id = id;
        } else {
            *found = 1;
            if (!fp || strcmp(fp, fingerprint) != 0) *result = IDEM_MISMATCH;
            else if (running) *result = IDEM_RUNNING;
            else {
                *result = IDEM_DONE;
                idem_read_answer(st, answer);
            }
        }
        rc = SQL_DONE;
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "look up idempotency key", e);
}

static int idem_delete(storage_conn *db, int64_t id, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "DELETE FROM idempotency_keys WHERE id = ?1");
    sql_bind_int64(st, 1, id);
    int rc = sql_step(st);
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "free idempotency key", e);
}

static int idem_insert(storage_conn *db, const char *caller, const char *key, const char *fingerprint,
                       int64_t now_ms, int64_t *row_id, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO idempotency_keys (caller, idem_key, fingerprint, state, created_at)"
        " VALUES (?1, ?2, ?3, 'running', ?4) RETURNING id");
    sql_bind_text(st, 1, caller);
    sql_bind_text(st, 2, key);
    sql_bind_text(st, 3, fingerprint);
    sql_bind_int64(st, 4, now_ms);
    int rc = sql_step_id(st, row_id);
    if (rc != SQL_DONE) return storage_fail(db, rc, "claim idempotency key", e);
    return 0;
}

int storage_idem_claim(storage_conn *db, const char *caller, const char *key, const char *fingerprint,
                       int64_t now_ms, idem_claim_result *result, int64_t *row_id, idem_answer *answer,
                       ad_err *e)
{
    memset(answer, 0, sizeof(*answer));
    *row_id = 0;
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    int found = 0;
    int64_t free_id = 0;
    rc = idem_lookup(db, caller, key, fingerprint, now_ms, &found, result, &free_id, answer, e);
    if (rc == 0 && !found) {
        if (free_id) rc = idem_delete(db, free_id, e);
        if (rc == 0) rc = idem_insert(db, caller, key, fingerprint, now_ms, row_id, e);
        if (rc == 0) *result = IDEM_CLAIMED;
    }
    rc = storage_end(db, rc, e);
    if (rc < 0) idem_answer_cleanup(answer);
    return rc;
}

/* The two writes below are one statement each but still open their own
 * transaction: they run after a handler, which may have left a read
 * snapshot open on this thread (storage_begin ends it). */
int storage_idem_complete(storage_conn *db, int64_t row_id, const idem_result *a, ad_err *e)
{
    if (a->body_len > INT_MAX) return ad_err_set(e, AD_EINVAL, "answer too large to keep");
    int code = storage_begin(db, e);
    if (code < 0) return code;
    sql_stmt *st = storage_stmt(db,
        "UPDATE idempotency_keys SET state = 'done', status = ?2, content_type = ?3, location = ?4,"
        " body = ?5 WHERE id = ?1 AND state = 'running'");
    sql_bind_int64(st, 1, row_id);
    sql_bind_int(st, 2, a->status);
    if (a->content_type) sql_bind_text(st, 3, a->content_type);
    if (a->location) sql_bind_text(st, 4, a->location);
    sql_bind_blob(st, 5, a->body ? a->body : "", (int)a->body_len);
    int rc = sql_step(st);
    sql_reset(st);
    code = rc == SQL_DONE ? 0 : storage_fail(db, rc, "store idempotent answer", e);
    return storage_end(db, code, e);
}

int storage_idem_release(storage_conn *db, int64_t row_id, ad_err *e)
{
    int code = storage_begin(db, e);
    if (code < 0) return code;
    sql_stmt *st = storage_stmt(db, "DELETE FROM idempotency_keys WHERE id = ?1 AND state = 'running'");
    sql_bind_int64(st, 1, row_id);
    int rc = sql_step(st);
    sql_reset(st);
    code = rc == SQL_DONE ? 0 : storage_fail(db, rc, "release idempotency key", e);
    return storage_end(db, code, e);
}
