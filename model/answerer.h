/*
 * Retrieval over a model version's passages and the local answerer: for a
 * prompt, the best-matching passage (free text) or dataset answer, with a
 * confidence in [0, 1]. Deterministic: the same version and prompt give the
 * same answer.
 */
#ifndef AD_MODEL_ANSWERER_H
#define AD_MODEL_ANSWERER_H

#include <stdint.h>

#include "base/err.h"
#include "model/analysis.h"
#include "model/params.h"
#include "storage/index.h"

#define ANSWERER_MAX_HITS 10

/* Where retrieval looks: both fields, or the body only (held-out evaluation:
 * a pair's prompt must not find its own indexed question; the question's
 * weight is then 0). */
typedef enum answerer_fields { ANSWERER_ALL, ANSWERER_BODY_ONLY } answerer_fields;

typedef struct answerer_result {
    passage_hit hits[ANSWERER_MAX_HITS];
    int nhits;
    const char *text;     /* points into hits[0]; NULL when nothing matched */
    double confidence;
} answerer_result;

/* Retrieves up to `k` passages (k <= ANSWERER_MAX_HITS) for `prompt` from
 * version `version_id`, indexed in `language` (model/index.h), and picks the
 * answer. A prompt with no searchable word yields no hits, not an error. */
int answerer_answer(storage_conn *db, int64_t version_id, analysis_language language,
                    const model_params *p, const char *prompt, int k, answerer_fields fields,
                    answerer_result *out, ad_err *e);

/* The analysis language of a stored code (a version's or an agent's);
 * English for a code this build does not know. */
analysis_language answerer_language(const char *code);

void answerer_result_cleanup(answerer_result *a);

#endif
