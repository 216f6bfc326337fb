/* Tests storage/idempotency.c: claim, keep and replay an answer; another
 * fingerprint; a running claim; callers apart; a crashed claim taken over
 * after its lease; expiry after 24 h and the maintenance pruning. */
#include <check.h>
#include <string.h>

#include "base/clock.h"
#include "storage/db.h"
#include "storage/idempotency.h"
#include "storage/maintenance.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_idempotency_suite(void);

#define FP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static idem_claim_result claim(storage_conn *db, const char *caller, const char *key, const char *fp,
                               int64_t now, int64_t *row, idem_answer *a)
{
    idem_claim_result r;
    int64_t id = 0;
    idem_answer scratch;
    ad_err e = {0};
    ck_assert_int_eq(storage_idem_claim(db, caller, key, fp, now, &r, &id, a ? a : &scratch, &e), 0);
    if (!a) idem_answer_cleanup(&scratch);
    if (row) *row = id;
    return r;
}

START_TEST(test_idem_claim_keep_replay)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t now = ad_clock_now_ms(), row = 0;
    ck_assert_int_eq(claim(f.db, "admin", "k1", FP_A, now, &row, NULL), IDEM_CLAIMED);
    ck_assert_int_gt(row, 0);
    /* While it runs: the same request waits, another is refused. */
    ck_assert_int_eq(claim(f.db, "admin", "k1", FP_A, now + 10, NULL, NULL), IDEM_RUNNING);
    ck_assert_int_eq(claim(f.db, "admin", "k1", FP_B, now + 10, NULL, NULL), IDEM_MISMATCH);
    /* Another caller's key of the same name is its own. */
    int64_t other = 0;
    ck_assert_int_eq(claim(f.db, "token:2", "k1", FP_B, now, &other, NULL), IDEM_CLAIMED);
    ck_assert_int_ne(other, row);

    static const char body[] = "{\"user_id\":\"x\",\0\"odd\":1}"; /* bytes, NUL included */
    idem_result res = {201, "application/json", "/api/v1/agents/x", body, sizeof(body) - 1};
    ad_err e = {0};
    ck_assert_int_eq(storage_idem_complete(f.db, row, &res, &e), 0);
    idem_answer a;
    ck_assert_int_eq(claim(f.db, "admin", "k1", FP_A, now + 20, NULL, &a), IDEM_DONE);
    ck_assert_int_eq(a.status, 201);
    ck_assert_str_eq(a.content_type, "application/json");
    ck_assert_str_eq(a.location, "/api/v1/agents/x");
    ck_assert_uint_eq(a.body_len, sizeof(body) - 1);
    ck_assert_int_eq(memcmp(a.body, body, a.body_len), 0);
    idem_answer_cleanup(&a);
    ck_assert_int_eq(claim(f.db, "admin", "k1", FP_B, now + 20, NULL, NULL), IDEM_MISMATCH);

    /* Released (a 5xx): the key is free again, and the row is gone. */
    ck_assert_int_eq(storage_idem_release(f.db, other, &e), 0);
    ck_assert_int_eq(claim(f.db, "token:2", "k1", FP_A, now + 30, &other, NULL), IDEM_CLAIMED);
    /* Release touches only running rows: a done one stays. */
    ck_assert_int_eq(storage_idem_release(f.db, row, &e), 0);
    ck_assert_int_eq(claim(f.db, "admin", "k1", FP_A, now + 40, NULL, NULL), IDEM_DONE);
    storage_fixture_close(&f);
}
END_TEST

/* A claim whose process died is taken over after the lease, and the late
 * completion of the first claimer cannot overwrite the new owner's row. */
START_TEST(test_idem_lease_takeover)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t now = ad_clock_now_ms(), first = 0, second = 0;
    ck_assert_int_eq(claim(f.db, "admin", "k", FP_A, now, &first, NULL), IDEM_CLAIMED);
    /* A live request is never taken over: the longest one may wait on
     * Gemini for gemini_deadline_ms, at most 600 s (config/config.c). */
    ck_assert_int_eq(claim(f.db, "admin", "k", FP_A, now + 600000 + 1000, NULL, NULL), IDEM_RUNNING);
    ck_assert_int_eq(claim(f.db, "admin", "k", FP_A, now + STORAGE_IDEM_LEASE_MS - 1, NULL, NULL), IDEM_RUNNING);
    ck_assert_int_eq(claim(f.db, "admin", "k", FP_B, now + STORAGE_IDEM_LEASE_MS, &second, NULL), IDEM_CLAIMED);
    ck_assert_int_gt(second, first);
    idem_result res = {200, "application/json", NULL, "{}", 2};
    ad_err e = {0};
    ck_assert_int_eq(storage_idem_complete(f.db, first, &res, &e), 0);
    ck_assert_int_eq(claim(f.db, "admin", "k", FP_B, now + STORAGE_IDEM_LEASE_MS + 1, NULL, NULL), IDEM_RUNNING);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM idempotency_keys", 0), 1);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_idem_expiry_and_pruning)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t now = ad_clock_now_ms(), row = 0;
    idem_result res = {200, "application/json", NULL, "{}", 2};
    ad_err e = {0};
    /* Two keys answered 25 h ago, one an hour ago. */
    ck_assert_int_eq(claim(f.db, "admin", "old1", FP_A, now - 25 * 3600000LL, &row, NULL), IDEM_CLAIMED);
    ck_assert_int_eq(storage_idem_complete(f.db, row, &res, &e), 0);
    ck_assert_int_eq(claim(f.db, "admin", "old2", FP_A, now - 25 * 3600000LL, &row, NULL), IDEM_CLAIMED);
    ck_assert_int_eq(storage_idem_complete(f.db, row, &res, &e), 0);
    ck_assert_int_eq(claim(f.db, "admin", "new", FP_A, now - 3600000LL, &row, NULL), IDEM_CLAIMED);
    ck_assert_int_eq(storage_idem_complete(f.db, row, &res, &e), 0);
    /* Past 24 h a key is free, whatever it was used for, even before pruning. */
    ck_assert_int_eq(claim(f.db, "admin", "old1", FP_B, now, &row, NULL), IDEM_CLAIMED);
    ck_assert_int_eq(storage_idem_release(f.db, row, &e), 0);
    /* The maintenance pass prunes idempotency rows after 24 h, retention off. */
    storage_retention none = {0, 0};
    int64_t removed = 0;
    ck_assert_int_eq(storage_prune_logs(f.db, &none, NULL, &removed, &e), 0);
    ck_assert_int_eq(removed, 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM idempotency_keys", 0), 1);
    ck_assert_int_eq(claim(f.db, "admin", "new", FP_A, now, NULL, NULL), IDEM_DONE);
    storage_fixture_close(&f);
}
END_TEST

Suite *storage_idempotency_suite(void)
{
    Suite *s = suite_create("storage_idempotency");
    TCase *tc = tcase_create("idempotency");
    tcase_add_test(tc, test_idem_claim_keep_replay);
    tcase_add_test(tc, test_idem_lease_takeover);
    tcase_add_test(tc, test_idem_expiry_and_pruning);
    suite_add_tcase(s, tc);
    return s;
}
