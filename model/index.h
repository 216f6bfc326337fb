/*
 * A model version's retrieval index: built in memory from its passages,
 * written as rows (storage/index.h), and searched with BM25F computed here,
 * from that version's rows alone. Nothing a ranking uses (document
 * frequencies, field lengths, postings) is shared with another version, so
 * one agent's scores and search cost never depend on another's material.
 *
 * Terms come from model/analysis.h, with the version's language, for both
 * fields of a passage (question and body) and for the prompt.
 *
 * Encoding (the rows' bytes, read back only by this module):
 *   postings  per passage containing the term, in passage order, three
 *             unsigned LEB128 varints: ord minus the previous entry's ord
 *             (the first: ord itself), the term's frequency in the question,
 *             its frequency in the body. The term's df is the entry count.
 *   lengths   per passage, at offset 4 * ord: the question's and the body's
 *             term counts as two little-endian uint16 (capped at 65535).
 *
 * Ranking (BM25F, Robertson & Zaragoza's "simple" form): for each distinct
 * prompt term t, in order of first appearance, at most INDEX_MAX_QUERY_TERMS,
 *   tf~(t,d) = w_question * tfq / Bq(d) + w_body * tfb / Bb(d),
 *   B_f(d)   = 1 - b + b * len_f(d) / avglen_f   (1 when avglen_f is 0),
 *   score(d) = sum over t of idf(t) * tf~ / (k1 + tf~),
 *   idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5)),
 * with N and df the version's own. Passages scoring 0 (matched only in a
 * field of weight 0) are not hits. Ties go to the lower ord. Deterministic:
 * the same rows and prompt give bit-identical scores.
 */
#ifndef AD_MODEL_INDEX_H
#define AD_MODEL_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "model/analysis.h"
#include "model/params.h"
#include "storage/db.h"
#include "storage/index.h"

/* BM25 saturation and length normalization. */
#define INDEX_K1 1.2
#define INDEX_B 0.75
/* Distinct prompt terms searched; the rest of a long prompt is ignored. */
#define INDEX_MAX_QUERY_TERMS 32

/* An index under construction or built (module-owned: index_free). */
typedef struct index_mem index_mem;

/* An empty index analysing with language `l`. Never NULL. */
index_mem *index_new(analysis_language l);
void index_free(index_mem *ix);

/* Adds the next passage (its ord is the count added before it); `question`
 * may be NULL or "". Not after index_finish. */
void index_add(index_mem *ix, const char *question, const char *body);

/* Encodes the postings; call once, after the last index_add. */
void index_finish(index_mem *ix);

/* How many passages and distinct terms the index holds. */
size_t index_passage_count(const index_mem *ix);
size_t index_term_count(const index_mem *ix);

/* The finished index as the rows storage keeps (storage/index.h): its
 * terms in byte order, its statistics and lengths, borrowing `ix`'s bytes
 * (valid while `ix` lives). index_rows_cleanup frees what this allocated. */
void index_rows_init(index_rows *out, const index_mem *ix);
void index_rows_cleanup(index_rows *r);

/* A ranked passage, without its text. */
typedef struct index_score {
    int ord;
    double score;
} index_score;

/* Searches a finished in-memory index: fills out[0..return) with the best
 * `k` passages for `prompt`, best first. Ranks exactly as index_search does
 * over the same index written to storage. */
int index_search_mem(const index_mem *ix, const model_params *p, const char *prompt, int k,
                     index_score *out);

/* Searches stored version `version_id`, indexed in `language`: analyses
 * `prompt`, reads only the prompt terms' postings, the version's statistics
 * and lengths, and the winners' passages. Fills hits[0..*count) (owned:
 * passage_hits_cleanup), best first, at most `k`. A prompt with no
 * searchable term gives no hits. AD_ENOTFOUND when the version has no
 * index. */
int index_search(storage_conn *db, int64_t version_id, analysis_language language,
                 const model_params *p, const char *prompt, int k, passage_hit *hits, int *count,
                 ad_err *e);

#endif
