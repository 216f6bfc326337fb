#include "storage/idempotency.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "storage/sqlite.h"

void idem_answer_cleanup(idem_answer *a)
{
    if (!a) return;
    free(a->content_type);
    free(a->location);
    free(a->body);
    memset(a, 0, sizeof(*a));
}

static char *idem_column_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? ad_strdup((const char *)t) : NULL;
}

/* Reads the row's answer columns (status 2, content_type 3, location 4, body 5). */
static void idem_read_answer(sqlite3_stmt *st, idem_answer *a)
{
    a->status = sqlite3_column_int(st, 2);
    a->content_type = idem_column_text(st, 3);
    a->location = idem_column_text(st, 4);
    const void *b = sqlite3_column_blob(st, 5);
    size_t n = (size_t)sqlite3_column_bytes(st, 5);
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
    sqlite3_stmt *st = storage_stmt(db,
        "SELECT id, created_at, status, content_type, location, body, state, fingerprint"
        " FROM idempotency_keys WHERE caller = ?1 AND idem_key = ?2");
    sqlite3_bind_text(st, 1, caller, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = 0;
    *free_id = 0;
    if (rc == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        int64_t created = sqlite3_column_int64(st, 1);
        const char *state = (const char *)sqlite3_column_text(st, 6);
        const char *fp = (const char *)sqlite3_column_text(st, 7);
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
        rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "look up idempotency key", e);
}

static int idem_delete(storage_conn *db, int64_t id, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db, "DELETE FROM idempotency_keys WHERE id = ?1");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "free idempotency key", e);
}

static int idem_insert(storage_conn *db, const char *caller, const char *key, const char *fingerprint,
                       int64_t now_ms, int64_t *row_id, ad_err *e)
{
    sqlite3_stmt *st = storage_stmt(db,
        "INSERT INTO idempotency_keys (caller, idem_key, fingerprint, state, created_at)"
        " VALUES (?1, ?2, ?3, 'running', ?4)");
    sqlite3_bind_text(st, 1, caller, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return storage_fail(db, rc, "claim idempotency key", e);
    *row_id = sqlite3_last_insert_rowid(db->db);
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
    sqlite3_stmt *st = storage_stmt(db,
        "UPDATE idempotency_keys SET state = 'done', status = ?2, content_type = ?3, location = ?4,"
        " body = ?5 WHERE id = ?1 AND state = 'running'");
    sqlite3_bind_int64(st, 1, row_id);
    sqlite3_bind_int(st, 2, a->status);
    if (a->content_type) sqlite3_bind_text(st, 3, a->content_type, -1, SQLITE_STATIC);
    if (a->location) sqlite3_bind_text(st, 4, a->location, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, a->body ? a->body : "", (int)a->body_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    code = rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "store idempotent answer", e);
    return storage_end(db, code, e);
}

int storage_idem_release(storage_conn *db, int64_t row_id, ad_err *e)
{
    int code = storage_begin(db, e);
    if (code < 0) return code;
    sqlite3_stmt *st = storage_stmt(db, "DELETE FROM idempotency_keys WHERE id = ?1 AND state = 'running'");
    sqlite3_bind_int64(st, 1, row_id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    code = rc == SQLITE_DONE ? 0 : storage_fail(db, rc, "release idempotency key", e);
    return storage_end(db, code, e);
}
