#include "storage/index.h"

#include <pthread.h>
#include <stdio.h>
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

/* Terms go in batches of INDEX_TERM_BATCH rows per INSERT: a version has
 * thousands, and on PostgreSQL each statement is a round trip to the server
 * (one row at a time made a 10 KB agent's pipeline 270 round trips longer).
 * The statement's text is made once: ?1 the version, then a term and its
 * postings per row. */
#define INDEX_TERM_BATCH 64
static char index_batch_sql[64 + INDEX_TERM_BATCH * 24];
static pthread_once_t index_batch_once = PTHREAD_ONCE_INIT;

static void index_batch_build(void)
{
    size_t off = (size_t)snprintf(index_batch_sql, sizeof(index_batch_sql),
                                  "INSERT INTO version_terms (version_id, term, postings) VALUES");
    for (int i = 0; i < INDEX_TERM_BATCH; i++)
        off += (size_t)snprintf(index_batch_sql + off, sizeof(index_batch_sql) - off, "%s (?1, ?%d, ?%d)",
                                i ? "," : "", 2 + 2 * i, 3 + 2 * i);
    ad_assert(off < sizeof(index_batch_sql) - 1);
}

static int index_put_terms(storage_conn *db, int64_t version_id, const index_term_row *t, ad_err *e)
{
    pthread_once(&index_batch_once, index_batch_build);
    sql_stmt *st = storage_stmt(db, index_batch_sql);
    sql_bind_int64(st, 1, version_id);
    for (int i = 0; i < INDEX_TERM_BATCH; i++) {
        sql_bind_textn(st, 2 + 2 * i, t[i].term, t[i].len);
        sql_bind_blob(st, 3 + 2 * i, t[i].postings, t[i].n);
    }
    int rc = sql_step(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "store terms", e);
}

int storage_index_write(storage_conn *db, int64_t version_id, const index_rows *rows, ad_err *e)
{
    int rc = 0;
    size_t i = 0;
    for (; rc == 0 && i + INDEX_TERM_BATCH <= rows->nterms; i += INDEX_TERM_BATCH)
        rc = index_put_terms(db, version_id, &rows->terms[i], e);
    for (; rc == 0 && i < rows->nterms; i++) {
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

static char *index_col_dup(sql_stmt *st, int i)
{
    const char *s = sql_column_text(st, i);
    return s ? ad_strdup((const char *)s) : NULL;
}

/* "<head> IN (?2, ?3, ..., ?33)": a key list of STORAGE_INDEX_MANY slots
 * after ?1 (the version); slots left unbound are NULL, which IN never
 * matches. Built once per statement, into a buffer whose address is the
 * statement cache's key. */
typedef struct index_many_sql {
    const char *head;
    char text[256 + STORAGE_INDEX_MANY * 6];
    pthread_once_t once;
} index_many_sql;

static index_many_sql postings_many = {
    .head = "SELECT term, postings FROM version_terms WHERE version_id = ?1 AND term IN (",
    .once = PTHREAD_ONCE_INIT};
static index_many_sql passages_many = {
    .head = "SELECT ord, question, body, answer, category FROM version_passages"
            " WHERE version_id = ?1 AND ord IN (",
    .once = PTHREAD_ONCE_INIT};

static void index_many_fill(index_many_sql *m)
{
    size_t off = (size_t)snprintf(m->text, sizeof(m->text), "%s", m->head);
    for (int i = 0; i < STORAGE_INDEX_MANY; i++)
        off += (size_t)snprintf(m->text + off, sizeof(m->text) - off, "%s?%d", i ? ", " : "", i + 2);
    off += (size_t)snprintf(m->text + off, sizeof(m->text) - off, ")");
    ad_assert(off < sizeof(m->text) - 1);
}

static void postings_many_fill(void)
{
    index_many_fill(&postings_many);
}

static void passages_many_fill(void)
{
    index_many_fill(&passages_many);
}

int storage_index_get_postings_many(storage_conn *db, int64_t version_id, const char *const *terms,
                                    const size_t *lens, size_t n, ad_buf *out, size_t *offs,
                                    size_t *sizes, ad_err *e)
{
    ad_assert(n <= STORAGE_INDEX_MANY);
    pthread_once(&postings_many.once, postings_many_fill);
    sql_stmt *st = storage_stmt(db, postings_many.text);
    sql_bind_int64(st, 1, version_id);
    for (size_t i = 0; i < n; i++) {
        sql_bind_textn(st, (int)i + 2, terms[i], lens[i]);
        offs[i] = out->len;
        sizes[i] = 0;
    }
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW) {
        const char *term = sql_column_text(st, 0);
        size_t len = sql_column_bytes(st, 0);
        const void *p = sql_column_blob(st, 1);
        size_t bytes = sql_column_bytes(st, 1);
        for (size_t i = 0; term && i < n; i++) {
            if (lens[i] != len || memcmp(terms[i], term, len) != 0) continue;
            offs[i] = out->len;
            sizes[i] = p ? bytes : 0;
            if (sizes[i]) ad_buf_append(out, p, bytes);
            break;
        }
    }
    sql_reset(st);
    return rc == SQL_DONE ? 0 : storage_fail(db, rc, "read postings", e);
}

int storage_index_get_passages(storage_conn *db, int64_t version_id, const int *ords, int n,
                               passage_hit *out, ad_err *e)
{
    ad_assert(n >= 0 && n <= STORAGE_INDEX_MANY);
    pthread_once(&passages_many.once, passages_many_fill);
    sql_stmt *st = storage_stmt(db, passages_many.text);
    sql_bind_int64(st, 1, version_id);
    for (int i = 0; i < n; i++) {
        sql_bind_int64(st, i + 2, ords[i]);
        memset(&out[i], 0, sizeof(out[i]));
    }
    int rc;
    while ((rc = sql_step(st)) == SQL_ROW) {
        int ord = sql_column_int(st, 0);
        for (int i = 0; i < n; i++) {
            if (ords[i] != ord || out[i].body) continue;
            out[i].ord = ord;
            out[i].question = index_col_dup(st, 1);
            out[i].body = index_col_dup(st, 2);
            out[i].answer = index_col_dup(st, 3);
            out[i].category = index_col_dup(st, 4);
            break;
        }
    }
    sql_reset(st);
    if (rc == SQL_DONE) return 0;
    passage_hits_cleanup(out, n);
    return storage_fail(db, rc, "read passages", e);
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
