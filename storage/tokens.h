/*
 * API tokens (issue 11): a token's settings and its secrets. A secret is
 * stored only as the SHA-256 of its text and found by its public prefix;
 * rotation adds a secret and bounds the previous ones. Nothing here is
 * cached: each authentication reads the row, so a revocation made by any
 * process sharing the database is seen by every other on its next request.
 */
#ifndef AD_STORAGE_TOKENS_H
#define AD_STORAGE_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/audit.h"
#include "storage/db.h"

#define TOKEN_PREFIX_LEN 12
#define TOKEN_HASH_LEN 32

/* What creating a token stores; strings borrowed for the call. */
typedef struct token_new {
    const char *name;
    unsigned scopes;                 /* OR of ad_scope (api/request.h) */
    const char *agents;              /* JSON array of user_ids; NULL: every agent */
    int64_t expires_at;              /* ms; 0: never */
    int rate_limit_per_min;          /* 0: the configured default */
    int max_concurrent_inferences;   /* 0: the configured default */
    const char *created_by;          /* the creator's label */
} token_new;

/* A stored token; the strings are owned (token_row_cleanup). */
typedef struct token_row {
    int64_t id;
    char *name;
    unsigned scopes;
    char *agents;                    /* JSON array, or NULL for every agent */
    int64_t created_at, expires_at, revoked_at, last_used_at; /* 0: none */
    int rate_limit_per_min, max_concurrent_inferences;        /* 0: default */
    char *created_by;
    char prefix[TOKEN_PREFIX_LEN + 1]; /* the newest secret's */
} token_row;

void token_row_cleanup(token_row *t);

/* Creates the token with its first secret (`prefix`, `hash` of the whole
 * secret) and `audit`'s row (its target filled in by the caller after, so
 * NULL target means "token:<new id>"), all or nothing. AD_EEXIST when the
 * prefix is taken (draw another). */
int storage_tokens_create(storage_conn *db, const token_new *t, const char *prefix,
                          const unsigned char hash[TOKEN_HASH_LEN], const audit_entry *audit,
                          int64_t *id, ad_err *e);

/* Reads one token; AD_ENOTFOUND when there is none. */
int storage_tokens_get(storage_conn *db, int64_t id, token_row *out, ad_err *e);

/* Visits up to `limit` tokens with id < `before` (0: from the newest),
 * newest first; the row is borrowed for the visit. */
typedef void (*token_visit_fn)(void *ud, const token_row *t);
int storage_tokens_list(storage_conn *db, int64_t before, int limit, token_visit_fn fn, void *ud,
                        int *more, ad_err *e);

/* Revokes the token (a revoked one keeps its first revocation time) and
 * writes `audit` when this call revoked it; *was_revoked says it already
 * was. AD_ENOTFOUND when there is no such token. */
int storage_tokens_revoke(storage_conn *db, int64_t id, const audit_entry *audit, int *was_revoked,
                          ad_err *e);

/* Adds a secret and ends every earlier one at `old_valid_until` (ms; an
 * earlier end is kept), with `audit`, all or nothing. AD_ENOTFOUND: no such
 * token; AD_ESTATE: it is revoked; AD_EEXIST: the prefix is taken. */
int storage_tokens_rotate(storage_conn *db, int64_t id, const char *prefix,
                          const unsigned char hash[TOKEN_HASH_LEN], int64_t old_valid_until,
                          const audit_entry *audit, ad_err *e);

/* What authenticating a secret needs: its token and the secret's own row. */
typedef struct token_secret {
    token_row token;
    unsigned char hash[TOKEN_HASH_LEN];
    int64_t valid_until;             /* 0: open-ended */
} token_secret;

/* Reads the secret with public `prefix` and its token (one indexed read);
 * AD_ENOTFOUND when no secret has that prefix. */
int storage_tokens_find_secret(storage_conn *db, const char *prefix, token_secret *out, ad_err *e);

/* Records that the token was used at `at` (ms). */
int storage_tokens_touch(storage_conn *db, int64_t id, int64_t at, ad_err *e);

#endif
