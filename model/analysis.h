/*
 * Language-aware text analysis: the one place that turns text into index
 * terms, run the same way when a version is indexed and when a prompt is
 * searched.
 *
 * A term is a token (model/text.h decides what a token is) that is
 * case-folded (Unicode), dropped when it is a stopword of the language,
 * stemmed by that language's Snowball stemmer (Debian's libstemmer), and then
 * stripped of diacritics (utf8proc), in that order: the stemmers' rules
 * expect accented lower-case words. Portuguese typed without accents gets
 * its accented endings back before it is stemmed, so "informação",
 * "informações" and "informacao" are one term.
 */
#ifndef AD_MODEL_ANALYSIS_H
#define AD_MODEL_ANALYSIS_H

#include <stddef.h>

#include "base/err.h"

/* The languages agentd analyses. Codes are ISO 639-1 ("en", "pt", ...). */
typedef enum analysis_language {
    ANALYSIS_EN,
    ANALYSIS_PT,
    ANALYSIS_ES,
    ANALYSIS_FR,
    ANALYSIS_DE,
    ANALYSIS_IT,
    ANALYSIS_NL,
    ANALYSIS_LANGUAGE_COUNT
} analysis_language;

/* The ISO 639-1 code of `l` ("en"); a string literal. */
const char *analysis_language_code(analysis_language l);

/* Reads a code (exact, lower case). AD_EINVAL for anything else, "auto"
 * included: detection is the caller's decision (analysis_detect). */
int analysis_language_from_code(const char *code, analysis_language *out);

/* The language text[0..n) is most likely written in, judged by which
 * language's stopwords its tokens hit most often; English when nothing
 * decides. Reads at most the first 64 KiB. Deterministic. */
analysis_language analysis_detect(const char *text, size_t n);

/* An analyzer for one language. Not thread-safe (the Snowball stemmer keeps
 * state): use one per thread or per call. Created cheaply. */
typedef struct analyzer analyzer;

/* Returns a new analyzer; never NULL (out of memory is fatal). */
analyzer *analyzer_new(analysis_language l);
void analyzer_free(analyzer *a);
analysis_language analyzer_language(const analyzer *a);

/* Called once per term, in text order; `term` (not NUL-terminated, `len`
 * bytes, valid UTF-8) is valid during the call only. `position` counts the
 * text's tokens, stopwords included, from 0. */
typedef void (*analysis_term_fn)(void *ud, const char *term, size_t len, size_t position);

/* Analyses text[0..n) and calls `fn` for each term; returns how many terms
 * were produced. Terms longer than ANALYSIS_MAX_TERM bytes are cut there (at
 * a UTF-8 boundary). Any byte string is accepted: a token with invalid
 * UTF-8 in it is kept unstemmed, ASCII lowercased, each invalid byte read as
 * the Latin-1 character it would be, so terms are always valid UTF-8. */
size_t analyzer_terms(analyzer *a, const char *text, size_t n, analysis_term_fn fn, void *ud);

#define ANALYSIS_MAX_TERM 64

#endif
