/*
 * Idempotency-Key on POST (issue 11): the server asks this module before
 * running a POST handler whether the caller's key was already answered, and
 * hands it the final response to keep (storage/idempotency.h holds the rows
 * for 24 hours).
 *
 * Kept: every other answer below 500, status, content type, Location and
 * body, replayed byte for byte with `Idempotent-Replayed: true`. Not kept (the
 * key is freed so that a retry can succeed): a 5xx, a 409 or 429, an answer
 * with Retry-After (refusals of a state that passes, nothing done), and a
 * non-JSON body. An
 * event stream has no body to replay: its key is kept as used, and a retry
 * gets 409 `idempotency_not_replayable` (the work was done; a new key asks
 * for it again). The success of a token create or rotate is kept the same
 * way, as spent with no body: its body is the token's secret, which is shown
 * once and stored nowhere.
 */
#ifndef AD_HANDLERS_IDEMPOTENCY_H
#define AD_HANDLERS_IDEMPOTENCY_H

#include <stdint.h>

#include "api/request.h"
#include "base/err.h"

#define IDEMPOTENCY_KEY_MAX 255

/* A claimed key, from idempotency_begin until idempotency_finish or
 * idempotency_abandon (row_id 0: nothing claimed). */
typedef struct idempotency_ticket {
    int64_t row_id;
} idempotency_ticket;

/* 0 when `key` is a valid Idempotency-Key value (1-255 printable ASCII
 * characters); AD_EINVAL with a message naming the header otherwise. */
int idempotency_key_check(const char *key, ad_err *e);

/* Looks `key` up for the request's caller, with the request's fingerprint
 * (SHA-256 of method, path, query and body). Returns 1 when the handler is to
 * run (the key is claimed in `*t`); 0 when `res` holds the answer: the stored
 * one, 422 idempotency_key_reused (another request used the key), 409
 * idempotency_in_progress, 409 idempotency_not_replayable, or a storage
 * error. */
int idempotency_begin(ad_request *req, ad_response *res, const char *key, idempotency_ticket *t);

/* Keeps `res`, the claimed request's final response (or frees the key, see
 * above), and clears `*t`. Called before the response is sent. */
void idempotency_finish(idempotency_ticket *t, const ad_request *req, const ad_response *res);

/* Frees a claimed key whose request ended without a response (the client
 * left first), and clears `*t`. */
void idempotency_abandon(idempotency_ticket *t);

#endif
