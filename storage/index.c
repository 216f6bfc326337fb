#include "storage/index.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "storage/internal.h"

void passage_hits_cleanup(passage_hit *hits, int count)
{
    for (int i = 0; i < count; i++) {
        free(hits[i].question);
        free(hits[i].body);
        free(hits[i].answer);
        free(hits[i].category);
        memset(&hits[i], 0, sizeof(hits[i]));
    }
}

int storage_index_put_passage(storage_conn *db, int64_t version_id, int ord, const char *question,
                              const char *body, const char *answer, const char *category, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO version_passages (version_id, ord, question, body, answer, category)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    sql_bind_int64(st, 1, version_id);
    sql_bind_int(st, 2, ord);
    sql_bind_text(st, 3, question ? question : "");
    sql_bind_text(st, 4, body);
    if (answer) sql_bind_text(st, 5, answer);
    if (category) sql_bind_text(st, 6, category);
    int rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "store passage", e);
}

int storage_index_put_term(storage_conn *db, int64_t version_id, const char *term, size_t len,
                           const void *postings, size_t n, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO version_terms (version_id, term, postings) VALUES (?1, ?2, ?3)");
    sql_bind_int64(st, 1, version_id);
    sql_bind_textn(st, 2, term, len);
    sql_bind_blob(st, 3, postings, n);
    int rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "store term", e);
}

int storage_index_put_stats(storage_conn *db, int64_t version_id, const index_stats_row *s,
                            const void *lengths, size_t n, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "INSERT INTO version_index (version_id, passages, question_terms, body_terms, lengths)"
        " VALUES (?1, ?2, ?3, ?4, ?5)");
    sql_bind_int64(st, 1, version_id);
    sql_bind_int64(st, 2, s->passages);
    sql_bind_int64(st, 3, s->question_terms);
    sql_bind_int64(st, 4, s->body_terms);
    /* A zero-length blob, not NULL, for a version without passages. */
    sql_bind_blob(st, 5, n ? lengths : "", n);
    int rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "store index statistics", e);
}

int storage_index_write(storage_conn *db, int64_t version_id, const index_rows *rows, ad_err *e)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < rows->nterms; i++) {
        const index_term_row *t = &rows->terms[i];
        rc = storage_index_put_term(db, version_id, t->term, t->len, t->postings, t->n, e);
    }
    if (rc == 0) rc = storage_index_put_stats(db, version_id, &rows->stats, rows->lengths, rows->lengths_len, e);
    return rc;
}

int storage_index_store(storage_conn *db, int64_t version_id, const index_rows *rows, ad_err *e)
{
    int rc = storage_begin(db, e);
    if (rc < 0) return rc;
    rc = storage_index_write(db, version_id, rows, e);
    return storage_end(db, rc, e);
}

int storage_index_get_stats(storage_conn *db, int64_t version_id, index_stats_row *out,
                            ad_buf *lengths, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT passages, question_terms, body_terms, lengths FROM version_index"
        " WHERE version_id = ?1");
    sql_bind_int64(st, 1, version_id);
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        out->passages = sql_column_int64(st, 0);
        out->question_terms = sql_column_int64(st, 1);
        out->body_terms = sql_column_int64(st, 2);
        const void *p = sql_column_blob(st, 3);
        int n = sql_column_bytes(st, 3);
        if (p && n > 0) ad_buf_append(lengths, p, (size_t)n);
    }
    sql_reset(st);
    if (rc == SQL_ROW) return 0;
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "model version has no index");
    return storage_fail(db, rc, "read index statistics", e);
}

int storage_index_get_postings(storage_conn *db, int64_t version_id, const char *term, size_t len,
                               ad_buf *out, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT postings FROM version_terms WHERE version_id = ?1 AND term = ?2");
    sql_bind_int64(st, 1, version_id);
    sql_bind_textn(st, 2, term, len);
    int rc = sql_step(st);
    if (rc == SQL_ROW) {
        const void *p = sql_column_blob(st, 0);
        int n = sql_column_bytes(st, 0);
        if (p && n > 0) ad_buf_append(out, p, (size_t)n);
    }
    sql_reset(st);
    return rc == SQL_ROW || rc == SQL_DONE ? 0 : storage_fail(db, rc, "read postings", e);
}

static char *index_col_dup(sql_stmt *st, int i)
{
    const char *s = sql_column_text(st, i);
    return s ? ad_strdup((const char *)s) : NULL;
}

int storage_index_get_passage(storage_conn *db, int64_t version_id, int ord, passage_hit *out,
                              ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT question, body, answer, category FROM version_passages"
        " WHERE version_id = ?1 AND ord = ?2");
    sql_bind_int64(st, 1, version_id);
    sql_bind_int(st, 2, ord);
    int rc = sql_step(st);
    memset(out, 0, sizeof(*out));
    if (rc == SQL_ROW) {
        out->ord = ord;
        out->question = index_col_dup(st, 0);
        out->body = index_col_dup(st, 1);
        out->answer = index_col_dup(st, 2);
        out->category = index_col_dup(st, 3);
    }
    sql_reset(st);
    if (rc == SQL_ROW) return 0;
    if (rc == SQL_DONE) return ad_err_set(e, AD_ENOTFOUND, "passage not found");
    return storage_fail(db, rc, "read passage", e);
}

int storage_index_each_passage(storage_conn *db, int64_t version_id, passage_visit_fn fn, void *ud,
                               ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT ord, question, body, answer, category FROM version_passages"
        " WHERE version_id = ?1 ORDER BY ord");
    sql_bind_int64(st, 1, version_id);
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW) {
        passage_hit p = {
            .ord = sql_column_int(st, 0),
            .question = index_col_dup(st, 1),
            .body = index_col_dup(st, 2),
            .answer = index_col_dup(st, 3),
            .category = index_col_dup(st, 4),
        };
        fn(ud, &p);
        passage_hits_cleanup(&p, 1);
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "read passages", e);
}

int storage_index_missing(storage_conn *db, int64_t after, int64_t *ids, int max, int *n, ad_err *e)
{
    sql_stmt *st = storage_stmt(db,
        "SELECT id FROM versions v WHERE id > ?1"
        " AND NOT EXISTS (SELECT 1 FROM version_index x WHERE x.version_id = v.id)"
        " ORDER BY id LIMIT ?2");
    sql_bind_int64(st, 1, after);
    sql_bind_int(st, 2, max);
    int rc = SQL_DONE;
    *n = 0;
    while (*n < max && (rc = sql_step(st)) == SQL_ROW) ids[(*n)++] = sql_column_int64(st, 0);
    if (*n == max) rc = SQL_DONE;
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "list versions without an index", e);
}
