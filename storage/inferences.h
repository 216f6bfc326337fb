/* The inference log: one row per call, and the agent's running totals. */
#ifndef AD_STORAGE_INFERENCES_H
#define AD_STORAGE_INFERENCES_H

#include <sqlite3.h>
#include <stdint.h>

#include "base/err.h"

typedef struct inference_record {
    int64_t agent_id;
    const char *backend;   /* "gemini" or "local" */
    int status;            /* the HTTP status the client got */
    const char *outcome;   /* "ok", "rejected", "timeout", ... */
    int64_t latency_ms;
    int prompt_tokens, output_tokens, retries;
    const char *prompt;    /* NULL unless the configuration asks to keep prompts */
} inference_record;

/* Appends the row and adds it to the agent's totals, in one transaction. An
 * agent deleted meanwhile is not an error (nothing is written). */
int storage_inferences_record(sqlite3 *db, const inference_record *r, ad_err *e);

#endif
