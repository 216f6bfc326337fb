/*
 * Dataset statistics, accumulated text by text: counts, passage lengths,
 * vocabulary and the most frequent terms, serialized as JSON.
 *
 * "Characters" here are Unicode code points (UTF-8 lead bytes), unlike
 * passages.h, whose bounds are in bytes. Tokens are those of model/text.h.
 */
#ifndef AD_MODEL_STATS_H
#define AD_MODEL_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "model/text.h"

/* Default bound on distinct terms kept; each costs at most 64 bytes of table
 * plus its own bytes (terms are at most 64 bytes). */
#define STATS_DEFAULT_MAX_VOCABULARY ((size_t)1 << 18)

/* One vocabulary slot; internal to stats.c. */
typedef struct stats_slot stats_slot;

/* An accumulator, caller-owned storage (stats_init/stats_cleanup). Fields are
 * readable; change them only through the functions below. */
typedef struct stats {
    uint64_t documents;
    uint64_t passages;
    uint64_t characters;
    uint64_t tokens;
    uint64_t passage_chars_total;
    uint64_t min_passage_chars; /* 0 until a passage is added */
    uint64_t max_passage_chars;
    size_t vocabulary_size;   /* distinct tokens kept */
    int vocabulary_truncated; /* 1 once max_vocabulary was reached: size is a lower bound */
    /* Vocabulary: open addressing with linear probing, power-of-two slots,
     * term bytes in `arena`. */
    stats_slot *slots;
    size_t slot_count;
    size_t max_vocabulary;
    ad_buf arena;
} stats;

/* Prepares an empty accumulator keeping at most max_vocabulary distinct terms
 * (0 means STATS_DEFAULT_MAX_VOCABULARY); memory stays bounded by it. */
void stats_init(stats *s, size_t max_vocabulary);

/* Frees what `s` owns; `s` may be stats_init'ed again. */
void stats_cleanup(stats *s);

/* Counts one document (a text, or a prompt/answer pair joined by the
 * caller): its characters, tokens and their terms. The text is not kept. */
void stats_add_text(stats *s, const char *text, size_t n);

/* Counts one passage of p[0..n) characters toward the passage statistics. */
void stats_add_passage(stats *s, const char *p, size_t n);

/* Mean passage length in characters, 0 with no passage. */
double stats_avg_passage_chars(const stats *s);

/* A term and how often it occurred; `term` is NUL-terminated. */
typedef struct stats_term {
    char *term;
    uint64_t count;
} stats_term;

/* Stores in *out an array, owned by the caller (stats_terms_free), of the up
 * to `n` most frequent terms, most frequent first, ties alphabetical (by
 * bytes); stopwords, one-byte terms and numbers are left out. Returns how
 * many were stored (*out is NULL when 0). */
size_t stats_top_terms(const stats *s, size_t n, stats_term **out);

/* Frees an array returned by stats_top_terms. */
void stats_terms_free(stats_term *terms, size_t count);

/* Appends to `out` a JSON object: documents, passages, characters, tokens,
 * vocabulary_size, avg_passage_chars, min_passage_chars, max_passage_chars,
 * top_terms:[{term,count}] (up to top_n). */
void stats_to_json(const stats *s, size_t top_n, ad_buf *out);

#endif
