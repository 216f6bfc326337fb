#include "storage/tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "storage/internal.h"

/* The token's columns, then its newest secret's prefix. */
#define TOKEN_COLUMNS                                                                           \
    "t.id, t.name, t.scopes, t.agents, t.created_at, coalesce(t.expires_at, 0),"              \
    " coalesce(t.revoked_at, 0), coalesce(t.last_used_at, 0), coalesce(t.rate_limit_per_min, 0),"\
    " coalesce(t.max_concurrent_inferences, 0), t.created_by,"                                  \
    " (SELECT s.prefix FROM token_secrets s WHERE s.token_id = t.id ORDER BY s.id DESC LIMIT 1)"

void token_row_cleanup(token_row *t)
{
    free(t->name);
    free(t->agents);
    free(t->created_by);
    t->name = t->agents = t->created_by = NULL;
}

static char *tokens_col_dup(sql_stmt *st, int i)
{
    const char *s = sql_column_text(st, i);
    return s ? ad_strdup((const char *)s) : NULL;
}

/* Fills `t` from the TOKEN_COLUMNS starting at column 0. */
static void tokens_from_row(sql_stmt *st, token_row *t)
{
    memset(t, 0, sizeof(*t));
    t->id = sql_column_int64(st, 0);
    t->name = tokens_col_dup(st, 1);
    t->scopes = (unsigned)sql_column_int64(st, 2);
    t->agents = tokens_col_dup(st, 3);
    t->created_at = sql_column_int64(st, 4);
    t->expires_at = sql_column_int64(st, 5);
    t->revoked_at = sql_column_int64(st, 6);
    t->last_used_at = sql_column_int64(st, 7);
    t->rate_limit_per_min = sql_column_int(st, 8);
    t->max_concurrent_inferences = sql_column_int(st, 9);
    t->created_by = tokens_col_dup(st, 10);
    const char *p = sql_column_text(st, 11);
    snprintf(t->prefix, sizeof(t->prefix), "%s", p ? (const char *)p : "");
}

static int tokens_add_secret(storage_conn *db, int64_t id, const char *prefix,
                             const unsigned char hash[TOKEN_HASH_LEN], int64_t now, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO token_secrets (token_id, prefix, hash, created_at) VALUES (?1, ?2, ?3, ?4)");
    sql_bind_int64(st, 1, id);
    sql_bind_text(st, 2, prefix);
    sql_bind_blob(st, 3, hash, TOKEN_HASH_LEN);
    sql_bind_int64(st, 4, now);
    int rc = sql_step(st);
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "add token secret", e);
}

/* Writes `audit` with its target defaulting to "token:<id>". */
static int tokens_audit(storage_conn *db, int64_t id, const audit_entry *audit, ad_err *e)
{
    if (!audit) return 0;
    char target[32];
    audit_entry a = *audit;
    if (!a.target) {
        snprintf(target, sizeof(target), "token:%lld", (long long)id);
        a.target = target;
    }
    return storage_audit_insert(db, &a, e);
}

int storage_tokens_create(storage_conn *db, const token_new *t, const char *prefix,
                          const unsigned char hash[TOKEN_HASH_LEN], const audit_entry *audit,
                          int64_t *id, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    int64_t now = ad_clock_now_ms();
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO tokens (name, scopes, agents, created_at, expires_at, rate_limit_per_min,"
        " max_concurrent_inferences, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id");
    sql_bind_text(st, 1, t->name);
    sql_bind_int64(st, 2, t->scopes);
    if (t->agents) sql_bind_text(st, 3, t->agents);
    sql_bind_int64(st, 4, now);
    if (t->expires_at) sql_bind_int64(st, 5, t->expires_at);
    if (t->rate_limit_per_min) sql_bind_int(st, 6, t->rate_limit_per_min);
    if (t->max_concurrent_inferences) sql_bind_int(st, 7, t->max_concurrent_inferences);
    sql_bind_text(st, 8, t->created_by);
    int64_t new_id = 0;
    int s = sql_step_id(st, &new_id);
    rc = s == SQL_DONE ? 0 : storage_fail(db, s, "create token", e);
    if (rc == 0) rc = tokens_add_secret(db, new_id, prefix, hash, now, e);
    if (rc == 0) rc = tokens_audit(db, new_id, audit, e);
    rc = storage_end(db, rc, e);
    if (rc == 0) *id = new_id;
    return rc;
}

int storage_tokens_get(storage_conn *db, int64_t id, token_row *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "SELECT " TOKEN_COLUMNS " FROM tokens t WHERE t.id = ?1");
    sql_bind_int64(st, 1, id);
    int rc = sql_step(st);
    if (rc == SQL_ROW) tokens_from_row(st, out);
    sql_reset(st);
    if (rc == SQL_ROW) return 0;
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "no token with id %lld", (long long)id);
    return storage_fail(db, rc, "read token", e);
}

int storage_tokens_list(storage_conn *db, int64_t before, int limit, token_visit_fn fn, void *ud,
                        int *more, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT " TOKEN_COLUMNS " FROM tokens t WHERE CAST(?1 AS BIGINT) = 0 OR t.id < ?1"
        " ORDER BY t.id DESC LIMIT ?2");
    sql_bind_int64(st, 1, before);
    sql_bind_int(st, 2, limit + 1);
    int rc, n = 0;
    *more = 0;
    while ((rc = sql_step(st)) == SQL_ROW) {
        if (n++ == limit) {
            *more = 1;
            break;
        }
        token_row t;
        tokens_from_row(st, &t);
        fn(ud, &t);
        token_row_cleanup(&t);
    }
    sql_reset(st);
    return rc == SQL_ROW || rc == SQL_DONE ? 0 : storage_fail(db, rc, "list tokens", e);
}

/* Reads the token's revocation time inside a unit of work: -1 when there is
 * no such token. */
static int tokens_revoked_at(storage_conn *db, int64_t id, int64_t *revoked_at, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "SELECT coalesce(revoked_at, 0) FROM tokens WHERE id = ?1");
    sql_bind_int64(st, 1, id);
    int rc = sql_step(st);
    *revoked_at = rc == SQL_ROW ? sql_column_int64(st, 0) : -1;
    sql_reset(st);
    if (rc == SQL_ROW) return 0;
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "no token with id %lld", (long long)id);
    return storage_fail(db, rc, "read token", e);
}

int storage_tokens_revoke(storage_conn *db, int64_t id, const audit_entry *audit, int *was_revoked,
                          ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    int64_t revoked_at = 0;
    rc = tokens_revoked_at(db, id, &revoked_at, e);
    *was_revoked = rc == 0 && revoked_at > 0;
    if (rc == 0 && !*was_revoked) {
        sql_stmt *st = storage_stmt(db, "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1");
        sql_bind_int64(st, 1, id);
        sql_bind_int64(st, 2, ad_clock_now_ms());
        int s = sql_step(st);
        sql_reset(st);
        rc = s == SQL_DONE ? 0 : storage_fail(db, s, "revoke token", e);
        if (rc == 0) rc = tokens_audit(db, id, audit, e);
    }
    return storage_end(db, rc, e);
}

int storage_tokens_rotate(storage_conn *db, int64_t id, const char *prefix,
                          const unsigned char hash[TOKEN_HASH_LEN], int64_t old_valid_until,
                          const audit_entry *audit, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    int64_t revoked_at = 0;
    rc = tokens_revoked_at(db, id, &revoked_at, e);
    if (rc == 0 && revoked_at > 0) rc = ad_err_set(e, AD_ESTATE, "token %lld is revoked", (long long)id);
    if (rc == 0) {
        sql_stmt *st = storage_stmt(db,
            "UPDATE token_secrets SET valid_until = ?2"
            " WHERE token_id = ?1 AND (valid_until IS NULL OR valid_until > ?2)");
        sql_bind_int64(st, 1, id);
        sql_bind_int64(st, 2, old_valid_until);
        int s = sql_step(st);
        sql_reset(st);
        rc = s == SQL_DONE ? 0 : storage_fail(db, s, "end token secrets", e);
    }
    if (rc == 0) rc = tokens_add_secret(db, id, prefix, hash, ad_clock_now_ms(), e);
    if (rc == 0) rc = tokens_audit(db, id, audit, e);
    return storage_end(db, rc, e);
}

int storage_tokens_find_secret(storage_conn *db, const char *prefix, token_secret *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT " TOKEN_COLUMNS ", k.hash, coalesce(k.valid_until, 0)"
        " FROM token_secrets k JOIN tokens t ON t.id = k.token_id WHERE k.prefix = ?1");
    sql_bind_text(st, 1, prefix);
    int rc = sql_step(st);
    int bad = 0;
    if (rc == SQL_ROW) {
        if (sql_column_bytes(st, 12) != TOKEN_HASH_LEN) {
            bad = 1;
        } else {
            tokens_from_row(st, &out->token);
            memcpy(out->hash, sql_column_blob(st, 12), TOKEN_HASH_LEN);
            out->valid_until = sql_column_int64(st, 13);
        }
    }
    sql_reset(st);
    if (bad) return ad_err_set(e, AD_EINTERNAL, "a token secret row holds a hash of the wrong size");
    if (rc == SQL_ROW) return 0;
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "no token secret with that prefix");
    return storage_fail(db, rc, "find token secret", e);
}

int storage_tokens_touch(storage_conn *db, int64_t id, int64_t at, ad_err *e)
{
    sql_stmt *st = storage_stmt(db, "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1");
    sql_bind_int64(st, 1, id);
    sql_bind_int64(st, 2, at);
    int rc = sql_step(st);
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "record token use", e);
}
