/*
 * The stopword lists of the languages agentd analyses (model/analysis.h), and
 * the one set built from them that every stopword check reads: analysis
 * drops a language's stopwords, analysis_detect counts them, and
 * text_is_stopword (model/text.h) asks for English or Portuguese ones.
 */
#ifndef AD_MODEL_STOPWORDS_H
#define AD_MODEL_STOPWORDS_H

#include <stddef.h>

#include "model/analysis.h"

/* No stopword is longer than this many bytes once case-folded; a longer
 * word needs no lookup. */
#define STOPWORDS_MAX_LEN 32

/* The languages whose list holds w[0..len), which must be case-folded and
 * composed (NFC) the way analysis folds a token ("não", "dass"): bit
 * (1u << l) for each such language l, 0 for none. Thread-safe; the set is
 * built on the first call. */
unsigned stopwords_languages(const char *w, size_t len);

#endif
