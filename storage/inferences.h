/* The inference log: one row per call, and the agent's running totals. */
#ifndef AD_STORAGE_INFERENCES_H
#define AD_STORAGE_INFERENCES_H

#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"

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
int storage_inferences_record(storage_conn *db, const inference_record *r, ad_err *e);

/*
 * The recorder: calls are recorded by one writer thread, in batches (every
 * RECORDER_FLUSH_MS or sooner when many wait), so neither an HTTP thread nor
 * the llm loop waits on the write lock a long pipeline transaction may hold.
 * A crash loses at most the last few milliseconds of records.
 */
void storage_inferences_start(void);

/* Queues a copy of `r` and returns at once (written at once, on the calling
 * thread, when the recorder is not running). */
void storage_inferences_submit(const inference_record *r);

/* Returns once every record submitted before the call is written: a read
 * that follows sees them. */
void storage_inferences_flush(void);

/* Writes what is queued and stops the writer thread. */
void storage_inferences_stop(void);

#endif
