/*
 * The training parameters of a model version: how material is cut into
 * passages, how retrieval ranks them, and how many few-shot examples the
 * persona carries. Stored with each version as JSON.
 */
#ifndef AD_MODEL_PARAMS_H
#define AD_MODEL_PARAMS_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct model_params {
    int passage_chars;    /* target passage length (free text) */
    int overlap;          /* sentences repeated between passages */
    int top_k;            /* passages retrieved per prompt */
    double w_question;    /* BM25 weight of the question column */
    double w_body;        /* BM25 weight of the body (answer / passage) column */
    int fewshot;          /* few-shot examples in the persona */
} model_params;

void model_params_default(model_params *p);

/* A new JSON object holding `p` (caller owns it). */
cJSON *model_params_to_json(const model_params *p);

/* Reads fields present in `obj` over the values already in `p`; fields out of
 * range are clamped to their bounds. */
void model_params_from_json(model_params *p, const cJSON *obj);

#endif
