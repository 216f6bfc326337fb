/*
 * A model version's retrieval index as rows: its passages, one postings blob
 * per analysed term, and its statistics (passage count, field-length totals,
 * and every passage's field lengths as one fixed-width blob). Everything is
 * keyed by the version and deleted with it (by cascade), so no ranking ever
 * reads another version's rows.
 *
 * Storage keeps bytes: what a postings or lengths blob encodes, and how a
 * search ranks, is model/index.c's. Callers pass analysed terms, never query
 * syntax. A version's index is written whole in the unit of work that
 * builds the version (storage_versions_build).
 */
#ifndef AD_STORAGE_INDEX_H
#define AD_STORAGE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "storage/db.h"

/* One passage of a version. As a search hit it carries its score. */
typedef struct passage_hit {
    int ord;               /* the passage's place in its version, from 0 */
    double score;          /* set by the search; larger is better */
    char *question;        /* owned: passage_hits_cleanup */
    char *body;
    char *answer;          /* NULL for text passages */
    char *category;
} passage_hit;

/* Frees what hits[0..count) own and zeroes them. */
void passage_hits_cleanup(passage_hit *hits, int count);

/* A version's statistics, as stored. */
typedef struct index_stats_row {
    int64_t passages;
    int64_t question_terms;   /* sum of the question fields' lengths */
    int64_t body_terms;       /* sum of the body fields' lengths */
} index_stats_row;

/* One term's row of a version's index: the term's bytes (not
 * NUL-terminated) and its postings blob, borrowed. */
typedef struct index_term_row {
    const char *term;
    size_t len;
    const void *postings;
    size_t n;
} index_term_row;

/* A version's whole index as the rows to store, borrowed from its builder
 * (model/index.h): its terms, its statistics and its lengths blob. */
typedef struct index_rows {
    index_term_row *terms;
    size_t nterms;
    index_stats_row stats;
    const void *lengths;
    size_t lengths_len;
} index_rows;

/* Stores the index of a version whose passages are already stored (one
 * built before the per-version index), in one unit of work: all its terms
 * and its statistics, or nothing. A version's passages never change once it
 * is built, so `rows` may be made from a read of them before this call.
 * AD_ENOTFOUND when the version is gone. */
int storage_index_store(storage_conn *db, int64_t version_id, const index_rows *rows, ad_err *e);

/* Reads the statistics and appends the lengths blob to `lengths`.
 * AD_ENOTFOUND when the version has no index (yet). */
int storage_index_get_stats(storage_conn *db, int64_t version_id, index_stats_row *out,
                            ad_buf *lengths, ad_err *e);

/* Up to STORAGE_INDEX_MANY keys read in one statement (one round trip to a
 * PostgreSQL server instead of one per key). */
#define STORAGE_INDEX_MANY 32

/* Appends the postings blobs of terms[0..n) (term i: terms[i], lens[i]
 * bytes; n <= STORAGE_INDEX_MANY, terms distinct) to `out`; term i's blob is
 * at offs[i], sizes[i] bytes long (0 when the version has no such term). */
int storage_index_get_postings_many(storage_conn *db, int64_t version_id, const char *const *terms,
                                    const size_t *lens, size_t n, ad_buf *out, size_t *offs,
                                    size_t *sizes, ad_err *e);

/* Fills out[i] (owned strings, score 0) with passage ords[i] for i in
 * [0, n), n <= STORAGE_INDEX_MANY, ords distinct; a passage that does not
 * exist leaves out[i] zeroed with its `body` NULL. */
int storage_index_get_passages(storage_conn *db, int64_t version_id, const int *ords, int n,
                               passage_hit *out, ad_err *e);

/* Visits a version's passages in order; `p` is valid during the call only. */
typedef void (*passage_visit_fn)(void *ud, const passage_hit *p);
int storage_index_each_passage(storage_conn *db, int64_t version_id, passage_visit_fn fn, void *ud,
                               ad_err *e);

/* Fills ids[0..*n) with up to `max` versions with id > `after` that have no
 * index yet (a database from before migration 6: their passages moved over,
 * their terms and statistics are to be built), in id order. */
int storage_index_missing(storage_conn *db, int64_t after, int64_t *ids, int max, int *n, ad_err *e);

#endif
