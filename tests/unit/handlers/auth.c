/* handlers/auth.c: authenticating a token against a real SQLite file (the
 * principal it yields, what refuses it) and how often its use is written. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "handlers/auth.h"
#include "handlers/secret.h"
#include "storage/tokens.h"
#include "tests/unit/storage/fixtures.h"

Suite *handlers_auth_suite(void);

/* Mints a token for every agent with the agents:read scope; its secret in
 * `secret` (may be NULL). Returns its id. */
static int64_t mint(storage_conn *db, char secret[SECRET_TEXT_LEN + 1])
{
    char text[SECRET_TEXT_LEN + 1], prefix[TOKEN_PREFIX_LEN + 1];
    unsigned char hash[TOKEN_HASH_LEN];
    ad_err e = {0};
    ck_assert_int_eq(secret_mint(text, prefix, &e), 0);
    secret_hash(text, hash);
    token_new t = {.name = "t", .scopes = AD_SCOPE_AGENTS_READ, .created_by = "admin"};
    int64_t id = 0;
    ck_assert_msg(storage_tokens_create(db, &t, prefix, hash, NULL, &id, &e) == 0, "%s", e.msg);
    if (secret) memcpy(secret, text, sizeof(text));
    return id;
}

static int64_t last_used(storage_conn *db, int64_t id)
{
    return storage_fixture_count(db, "SELECT coalesce(last_used_at, 0) FROM tokens WHERE id = ?1", id);
}

static void authenticate(const char *secret, int64_t want_id)
{
    ad_principal p;
    ad_err e = {0};
    ck_assert_msg(auth_token_principal(secret, &p, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(p.token_id, want_id);
    ad_principal_cleanup(&p);
}

/* last_used_at is written at most once a minute per token, also when more
 * tokens are in use than the in-memory throttle has room for: two tokens
 * taking turns in one of its slots used to cost a write per request. */
START_TEST(test_last_used_at_written_once_a_minute)
{
    storage_fixture f;
    storage_fixture_open(&f);
    char a[SECRET_TEXT_LEN + 1], b[SECRET_TEXT_LEN + 1];
    int64_t ida = mint(f.db, a);
    /* Enough tokens in between that the last one's id shares a's slot. */
    int64_t idb = 0;
    for (int i = 0; i < 256; i++) idb = mint(f.db, i == 255 ? b : NULL);
    ck_assert_int_eq(idb, ida + 256);
    authenticate(a, ida);
    authenticate(b, idb);
    int64_t first_a = last_used(f.db, ida), first_b = last_used(f.db, idb);
    ck_assert_int_gt(first_a, 0);
    ck_assert_int_gt(first_b, 0);
    for (int i = 0; i < 4; i++) {
        /* A later millisecond each time, so that a write would show. */
        struct timespec ms = {0, 2000000};
        nanosleep(&ms, NULL);
        authenticate(a, ida);
        authenticate(b, idb);
    }
    ck_assert_int_eq(last_used(f.db, ida), first_a);
    ck_assert_int_eq(last_used(f.db, idb), first_b);
    storage_fixture_close(&f);
}
END_TEST

static void *revoke_thread(void *arg)
{
    ad_err e = {0};
    int was = 0;
    storage_conn *db = storage_conn_get();
    intptr_t rc = db ? storage_tokens_revoke(db, *(int64_t *)arg, NULL, &was, &e) : -1;
    storage_thread_release();
    return (void *)rc;
}

/* A revocation is seen on the next request even if something left a read
 * snapshot open on the thread's connection: authentication reads the
 * database as it is now. */
START_TEST(test_revocation_seen_through_a_left_snapshot)
{
    storage_fixture f;
    storage_fixture_open(&f);
    char a[SECRET_TEXT_LEN + 1];
    int64_t id = mint(f.db, a);
    authenticate(a, id);
    ad_err e = {0};
    ck_assert_int_eq(storage_snapshot_begin(f.db, &e), 0);
    authenticate(a, id);
    pthread_t t;
    void *rc = NULL;
    ck_assert_int_eq(pthread_create(&t, NULL, revoke_thread, &id), 0);
    pthread_join(t, &rc);
    ck_assert_int_eq((intptr_t)rc, 0);
    ad_principal p;
    ck_assert_int_eq(auth_token_principal(a, &p, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "revoked"));
    storage_snapshot_end(f.db);
    storage_fixture_close(&f);
}
END_TEST


static const char *header_of(const ad_response *res, const char *name)
{
    for (size_t h = 0; h < res->nheaders; h++)
        if (!strcmp(res->headers[h].name, name)) return res->headers[h].value;
    return NULL;
}

/* A token check that cannot reach the database is 503 database_unavailable
 * (never 401, 403 or 500: the token may be valid): no connection at all
 * makes auth_token_principal say AD_EUNAVAILABLE, and auth_answer_storage
 * answers it; other storage failures stay 503 storage_unavailable. */
START_TEST(test_unreachable_database_is_503_not_401)
{
    char text[SECRET_TEXT_LEN + 1], prefix[TOKEN_PREFIX_LEN + 1];
    ad_err e = {0};
    ck_assert_int_eq(secret_mint(text, prefix, &e), 0);
    storage_fixture f;
    storage_fixture_open(&f);
    storage_fixture_close(&f);
    ad_principal p;
    ck_assert_int_eq(auth_token_principal(text, &p, &e), AD_EUNAVAILABLE);
    static const ad_principal nobody = {.kind = AD_CALLER_OPEN};
    ad_request req = {.method = AD_GET, .who = &nobody, .accept = "", .body = "", .request_id = "auth-1"};
    ad_response res;
    ad_response_init(&res);
    auth_answer_storage(&req, &res, AD_EUNAVAILABLE, &e);
    ck_assert_int_eq(res.status, 503);
    ck_assert_msg(strstr(res.body.data, "\"database_unavailable\"") &&
                      strstr(res.body.data, "the database cannot be reached; retry shortly"),
                  "%s", res.body.data);
    ck_assert_str_eq(header_of(&res, "Retry-After"), "1");
    ad_response_cleanup(&res);
    ad_response_init(&res);
    ad_err_set(&e, AD_EBUSY, "database is locked");
    auth_answer_storage(&req, &res, AD_EBUSY, &e);
    ck_assert_int_eq(res.status, 503);
    ck_assert_msg(strstr(res.body.data, "\"storage_unavailable\"") && !strstr(res.body.data, "locked"), "%s",
                  res.body.data);
    ck_assert_str_eq(header_of(&res, "Retry-After"), "1");
    ad_response_cleanup(&res);
}
END_TEST

Suite *handlers_auth_suite(void)
{
    Suite *s = suite_create("handlers_auth");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_last_used_at_written_once_a_minute);
    tcase_add_test(tc, test_revocation_seen_through_a_left_snapshot);
    tcase_add_test(tc, test_unreachable_database_is_503_not_401);
    suite_add_tcase(s, tc);
    return s;
}
