/*
 * Answer similarity and retrieval metrics for evaluation. Every score is in
 * [0, 1]; token scores use the tokens of model/text.h (lowercased).
 *
 * Token F1 is SQuAD-style: on the multisets of all tokens, stopwords kept, so
 * "is" vs "is not" still differ. Jaccard and containment compare sets of
 * distinct content tokens (stopwords dropped) so that shared filler words do
 * not inflate them; when either side has no content token they fall back to
 * all tokens on both sides. Two texts without any token score 1 (identical),
 * one without tokens against one with scores 0.
 */
#ifndef AD_MODEL_METRICS_H
#define AD_MODEL_METRICS_H

#include <stddef.h>

/* Inputs past this many code points are ignored by metrics_char_similarity,
 * which bounds its O(n*m) time and O(m) memory. */
#define METRICS_CHAR_CAP 2000

/* Token-overlap F1 between a predicted and an expected answer. */
double metrics_token_f1(const char *pred, size_t pn, const char *expected, size_t en);

/* Size of the intersection over size of the union of the distinct content
 * token sets. */
double metrics_jaccard(const char *pred, size_t pn, const char *expected, size_t en);

/* Fraction of the expected answer's distinct content tokens found in the
 * prediction. */
double metrics_containment(const char *pred, size_t pn, const char *expected, size_t en);

/* 1 - Levenshtein distance / longer length, on code points of both texts after
 * ASCII lowercasing and collapsing whitespace, each capped at METRICS_CHAR_CAP. */
double metrics_char_similarity(const char *pred, size_t pn, const char *expected, size_t en);

/* All similarity scores of one comparison. */
typedef struct metrics_scores {
    double token_f1;
    double jaccard;
    double containment;
    double char_similarity;
    double overall;
} metrics_scores;

/* Weighted mean of the four scores in `s`: 0.4 token F1 + 0.2 Jaccard +
 * 0.2 containment + 0.2 character similarity (F1 weighs most: it rewards both
 * precision and recall of the answer's words). `s->overall` is ignored. */
double metrics_overall(const metrics_scores *s);

/* Fills every field of `out` for one prediction, tokenizing each text once. */
void metrics_compare(const char *pred, size_t pn, const char *expected, size_t en,
                     metrics_scores *out);

/* "HIGH" for score >= 0.8, "MEDIUM" for >= 0.5, else "LOW"; a static string. */
/* The token metrics only (F1, Jaccard, containment), with `overall` their
 * mean and `char_similarity` left 0: what the pipeline's evaluator scores,
 * without the quadratic edit distance. */
void metrics_compare_tokens(const char *pred, size_t pn, const char *expected, size_t en,
                            metrics_scores *out);

const char *metrics_quality_label(double score);

/* Retrieval accumulator over queries, caller-owned; plain counters. */
typedef struct metrics_retrieval {
    size_t queries;
    size_t hits_at_1;
    size_t hits_at_3;
    double reciprocal_rank_sum;
} metrics_retrieval;

/* Resets the accumulator to no queries. */
void metrics_retrieval_init(metrics_retrieval *r);

/* Counts one query whose expected item came at 1-based `rank`; 0 = not found. */
void metrics_retrieval_add(metrics_retrieval *r, size_t rank);

/* Fraction of queries with the expected item first; 0 with no query. */
double metrics_retrieval_hit_at_1(const metrics_retrieval *r);

/* Fraction of queries with the expected item in the top 3; 0 with no query. */
double metrics_retrieval_hit_at_3(const metrics_retrieval *r);

/* Mean reciprocal rank (not found counts 0); 0 with no query. */
double metrics_retrieval_mrr(const metrics_retrieval *r);

#endif
