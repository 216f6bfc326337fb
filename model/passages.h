/*
 * Sentence-aware passage splitting, question derivation and deduplication
 * fingerprints, on text already passed through text_normalize.
 *
 * Sizes called "chars" here are UTF-8 bytes: a bound in bytes is also a bound
 * in characters, and a passage is never cut inside a UTF-8 sequence.
 */
#ifndef AD_MODEL_PASSAGES_H
#define AD_MODEL_PASSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* How passages are packed. max_chars is a hard bound; target_chars a soft one. */
typedef struct passages_params {
    size_t target_chars;      /* pack sentences up to this many bytes */
    size_t max_chars;         /* no passage is longer; >= target_chars and >= 4 */
    size_t overlap_sentences; /* sentences repeated at the start of the next passage */
} passages_params;

#define PASSAGES_DEFAULT_TARGET 600
#define PASSAGES_DEFAULT_MAX 1000
#define PASSAGES_DEFAULT_OVERLAP 1

/* Fills `p` with the defaults above. */
void passages_params_default(passages_params *p);

/* A span of the text the list was built from: bytes [offset, offset+length). */
typedef struct passages_span {
    size_t offset;
    size_t length;
} passages_span;

/* A growable array of spans, caller-owned storage (init/cleanup). The spans
 * point into the caller's text, which must outlive their use. */
typedef struct passages_list {
    passages_span *items;
    size_t count;
    size_t cap;
} passages_list;

/* Prepares an empty list. */
void passages_list_init(passages_list *l);

/* Frees what `l` owns and leaves it empty and reusable. */
void passages_list_cleanup(passages_list *l);

/* Replaces the contents of `out` with the sentences of text[0..n), without
 * surrounding whitespace, in order. A sentence ends at '.', '!' or '?' (plus
 * closing quotes/brackets) followed by whitespace or the end, or at a line
 * break; "e.g.", initials and titles like "Dr." do not end one, and "3.14"
 * never does. Sentences longer than max_chars are cut at a word boundary (a
 * UTF-8 boundary at worst) into pieces of at most max_chars (>= 4). O(n). */
void passages_sentences(const char *text, size_t n, size_t max_chars, passages_list *out);

/* Replaces the contents of `out` with the passages of text[0..n): runs of
 * consecutive sentences packed up to target_chars (a lone short passage may
 * grow past it, never past max_chars), each starting with the last
 * overlap_sentences sentences of the previous one when they fit. Every
 * sentence lies in some passage. O(n * (1 + overlap)). AD_EINVAL if the
 * params are inconsistent. */
int passages_split(const char *text, size_t n, const passages_params *params,
                   passages_list *out, ad_err *e);

/* Returns a question, NUL-terminated and owned by the caller (free()), whose
 * answer is passage p[0..n): "What is X?" / "What are X?" (Portuguese "O que
 * é X?") for the first sentence shaped "X is Y", else "What about a, b and
 * c?" on the passage's three most frequent content terms (ties: first seen).
 * Returns NULL if the passage has no token. Deterministic. */
char *passages_derive_question(const char *p, size_t n);

/* A 64-bit fingerprint of the lowercased token sequence of s[0..n): equal for
 * texts that differ only in case, whitespace or punctuation, so callers can
 * drop duplicates by comparing fingerprints. */
uint64_t passages_fingerprint(const char *s, size_t n);

#endif
