#include "handlers/idempotency.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "handlers/agents.h"
#include "storage/idempotency.h"

#define JSON_TYPE "application/json"
#define STREAM_TYPE "text/event-stream"
/* Kept in place of the content type of an answer that held a token's secret:
 * the row says the key is spent, and holds no body. */
#define SECRET_MARK "secret"
#define TOKENS_PATH "/api/v1/tokens"

int idempotency_key_check(const char *key, ad_err *e)
{
    size_t n = strlen(key);
    if (n == 0 || n > IDEMPOTENCY_KEY_MAX)
        return ad_err_set(e, AD_EINVAL, "Idempotency-Key must be 1 to %d characters long (got %zu)",
                          IDEMPOTENCY_KEY_MAX, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch < 0x20 || ch > 0x7e)
            return ad_err_set(e, AD_EINVAL,
                              "Idempotency-Key must be printable ASCII (byte %zu is 0x%02x)", i, ch);
    }
    return 0;
}

/* Each part with its length first, so no two requests hash alike by
 * moving bytes across a boundary. */
static void fp_part(EVP_MD_CTX *md, const char *s, size_t n)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)n >> (8 * i));
    EVP_DigestUpdate(md, len, sizeof(len));
    if (n) EVP_DigestUpdate(md, s, n);
}

/* Hex SHA-256 of method, path, query and body into `out` (65 bytes). */
static void idempotency_fingerprint(const ad_request *req, char out[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ad_assert(md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1);
    const char *m = ad_method_name(req->method);
    fp_part(md, m, strlen(m));
    fp_part(md, req->path, strlen(req->path));
    for (size_t i = 0; i < req->nquery; i++) {
        fp_part(md, req->query[i].key, strlen(req->query[i].key));
        fp_part(md, req->query[i].value, strlen(req->query[i].value));
    }
    fp_part(md, req->body ? req->body : "", req->body_len);
    ad_assert(EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == 32);
    EVP_MD_CTX_free(md);
    for (unsigned i = 0; i < dlen; i++) snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static void idempotency_replay(ad_request *req, ad_response *res, idem_answer *a)
{
    if (a->content_type && strcmp(a->content_type, STREAM_TYPE) == 0) {
        ad_response_error(res, req, 409, "idempotency_not_replayable",
                          "this Idempotency-Key was used for an event stream, which cannot be replayed; "
                          "send a new key to ask again");
        return;
    }
    if (a->content_type && strcmp(a->content_type, SECRET_MARK) == 0) {
        ad_response_error(res, req, 409, "idempotency_not_replayable",
                          "this Idempotency-Key was answered with a token secret, which is shown only once "
                          "and never stored; the token exists (GET /api/v1/tokens)");
        return;
    }
    ad_buf_cleanup(&res->body);
    ad_buf_init(&res->body);
    ad_buf_append(&res->body, a->body, a->body_len);
    res->status = a->status;
    res->content_type = NULL; /* only JSON is kept */
    if (a->location) ad_response_header(res, "Location", a->location);
    ad_response_header(res, "Idempotent-Replayed", "true");
}

int idempotency_begin(ad_request *req, ad_response *res, const char *key, idempotency_ticket *t)
{
    t->row_id = 0;
    storage_conn *db = agents_db(req, res);
    if (!db) return 0;
    char caller[40];
    ad_principal_label(req->who, caller, sizeof(caller));
    char fp[65];
    idempotency_fingerprint(req, fp);
    idem_claim_result r;
    idem_answer a;
    ad_err e = {0};
    int rc = storage_idem_claim(db, caller, key, fp, ad_clock_now_ms(), &r, &t->row_id, &a, &e);
    if (rc < 0) {
        agents_answer_storage(req, res, rc, NULL, &e);
        return 0;
    }
    switch (r) {
    case IDEM_CLAIMED: return 1;
    case IDEM_DONE: idempotency_replay(req, res, &a); break;
    case IDEM_RUNNING:
        ad_response_error(res, req, 409, "idempotency_in_progress",
                          "a request with this Idempotency-Key is still running; retry when it has answered");
        ad_response_header(res, "Retry-After", "1");
        break;
    case IDEM_MISMATCH:
        ad_response_error(res, req, 422, "idempotency_key_reused",
                          "this Idempotency-Key was already used with another method, path or body");
        break;
    }
    idem_answer_cleanup(&a);
    return 0;
}

static const char *idempotency_header(const ad_response *res, const char *name)
{
    for (size_t i = 0; i < res->nheaders; i++)
        if (strcasecmp(res->headers[i].name, name) == 0) return res->headers[i].value;
    return NULL;
}

/* A refusal that a retry may see go away: a 5xx, a 409 (the agent exists, is
 * not ready, a job runs), a 429, or anything that says when to retry. Nothing
 * was done, so keeping it would only replay a stale refusal for 24 hours. */
static int idempotency_transient(const ad_response *res)
{
    return res->status >= 500 || res->status == 409 || res->status == 429 ||
           idempotency_header(res, "Retry-After");
}

/* The success of POST /api/v1/tokens and .../rotate: its body is the secret,
 * which no database file may hold. */
static int idempotency_holds_secret(const ad_request *req, const ad_response *res)
{
    size_t n = strlen(TOKENS_PATH);
    return res->status < 300 && strncmp(req->path, TOKENS_PATH, n) == 0 &&
           (req->path[n] == '\0' || req->path[n] == '/');
}

void idempotency_finish(idempotency_ticket *t, const ad_request *req, const ad_response *res)
{
    if (!t->row_id) return;
    int64_t row = t->row_id;
    t->row_id = 0;
    storage_conn *db = storage_conn_get();
    if (!db) return; /* the row's lease ends it */
    ad_err e = {0};
    int rc;
    int json = !res->content_type || strncasecmp(res->content_type, JSON_TYPE, strlen(JSON_TYPE)) == 0;
    if (res->stream) {
        idem_result a = {.status = res->status, .content_type = STREAM_TYPE, .body = ""};
        rc = storage_idem_complete(db, row, &a, &e);
    } else if (idempotency_transient(res) || !json) {
        rc = storage_idem_release(db, row, &e);
    } else if (idempotency_holds_secret(req, res)) {
        idem_result a = {.status = res->status, .content_type = SECRET_MARK, .body = ""};
        rc = storage_idem_complete(db, row, &a, &e);
    } else {
        idem_result a = {.status = res->status, .content_type = JSON_TYPE,
                         .location = idempotency_header(res, "Location"),
                         .body = res->body.data, .body_len = res->body.len};
        rc = storage_idem_complete(db, row, &a, &e);
    }
    if (rc < 0) {
        ad_log(AD_LOG_WARN, "request %s: idempotent answer not kept: %s", req->request_id, e.msg);
        storage_idem_release(db, row, &e);
    }
}

void idempotency_abandon(idempotency_ticket *t)
{
    if (!t->row_id) return;
    int64_t row = t->row_id;
    t->row_id = 0;
    storage_conn *db = storage_conn_get();
    ad_err e = {0};
    if (db && storage_idem_release(db, row, &e) < 0)
        ad_log(AD_LOG_WARN, "idempotency key not released (its lease will free it): %s", e.msg);
}
