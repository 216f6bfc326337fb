/*
 * Idempotency keys (issue 11): what a POST with an Idempotency-Key answered,
 * kept for STORAGE_IDEM_TTL_MS per (caller, key), so a retry gets the same
 * answer without the work being done twice, across restarts and (issue 13)
 * across replicas sharing the database.
 *
 * A row is "running" from the claim until the request completes, then
 * "done" with the answer, or deleted (an answer not worth keeping, such as a
 * 5xx, so that a retry can succeed). A running row whose request died with
 * its process is taken over by the next claim once STORAGE_IDEM_LEASE_MS
 * have passed since it was claimed: a rule that needs no start-up cleanup,
 * so it holds when several replicas share the table.
 */
#ifndef AD_STORAGE_IDEMPOTENCY_H
#define AD_STORAGE_IDEMPOTENCY_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/db.h"

/* How long a key's answer is replayed (the maintenance thread prunes older rows). */
#define STORAGE_IDEM_TTL_MS (24LL * 3600 * 1000)
/* How long a running row blocks its key before a claim may take it over:
 * longer than any live request runs (a deferred inference waits on Gemini
 * for gemini_deadline_ms, at most 10 minutes), so only a request that died
 * with its process loses its key. */
#define STORAGE_IDEM_LEASE_MS (15LL * 60 * 1000)

typedef enum idem_claim_result {
    IDEM_CLAIMED,     /* the caller runs the request; `row_id` is its row */
    IDEM_DONE,        /* same fingerprint, answered: replay `answer` */
    IDEM_RUNNING,     /* same fingerprint, still running elsewhere */
    IDEM_MISMATCH     /* the key was used with another fingerprint */
} idem_claim_result;

/* A stored answer. Strings are malloc'ed and owned by the struct. */
typedef struct idem_answer {
    int status;
    char *content_type;   /* as the response had it */
    char *location;       /* the Location header, or NULL */
    char *body;           /* NUL-terminated; `body_len` bytes */
    size_t body_len;
} idem_answer;

/* Frees what `a` owns. */
void idem_answer_cleanup(idem_answer *a);

/* One unit of work: looks the key up for `caller` and claims it when it is
 * free (no row, a row older than STORAGE_IDEM_TTL_MS, or a running row past
 * its lease); `fingerprint` is a hex digest. On IDEM_DONE `*answer` is
 * filled (clean it up); on IDEM_CLAIMED `*row_id` is set. `now_ms` is the
 * wall clock (a parameter so tests can age rows). */
int storage_idem_claim(storage_conn *db, const char *caller, const char *key, const char *fingerprint,
                       int64_t now_ms, idem_claim_result *result, int64_t *row_id, idem_answer *answer,
                       ad_err *e);

/* What storage_idem_complete keeps; the caller owns the strings. */
typedef struct idem_result {
    int status;
    const char *content_type;
    const char *location;   /* NULL: none */
    const char *body;
    size_t body_len;
} idem_result;

/* Stores the answer of claimed row `row_id` and marks it done. A row taken
 * over meanwhile is left alone (not an error). */
int storage_idem_complete(storage_conn *db, int64_t row_id, const idem_result *answer, ad_err *e);

/* Deletes claimed row `row_id` while it is still running: the key is free
 * again. */
int storage_idem_release(storage_conn *db, int64_t row_id, ad_err *e);

#endif
