/* Tests storage/rates.c on a real SQLite file: a window opens, counts, ends
 * and reopens; callers apart; a clock stepped back; concurrent takes lose
 * no count; the maintenance pass prunes ended windows. */
#include <check.h>
#include <pthread.h>
#include <string.h>

#include "base/clock.h"
#include "storage/db.h"
#include "storage/maintenance.h"
#include "storage/rates.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_rates_suite(void);

#define W 60000

static void take(storage_conn *db, const char *caller, int64_t now, int64_t want_start, int64_t want_count)
{
    int64_t start = -1, count = -1;
    ad_err e = {0};
    ck_assert_msg(storage_rates_take(db, caller, now, W, &start, &count, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(start, want_start);
    ck_assert_int_eq(count, want_count);
}

START_TEST(test_rates_window_counts_ends_and_reopens)
{
    storage_fixture f;
    storage_fixture_open(&f);
    /* SQLite: one process owns the file, the limiter stays in memory. */
    ck_assert_int_eq(storage_is_shared(), 0);
    int64_t t0 = 1700000000000;
    take(f.db, "token:1", t0, t0, 1);
    take(f.db, "token:1", t0 + 10, t0, 2);
    take(f.db, "token:1", t0 + W - 1, t0, 3);
    /* Another caller counts on its own. */
    take(f.db, "admin", t0 + 5, t0 + 5, 1);
    /* The window ends at t0 + W exactly: a new one opens there. */
    take(f.db, "token:1", t0 + W, t0 + W, 1);
    take(f.db, "token:1", t0 + W + 1, t0 + W, 2);
    /* A few ms back (another replica's clock, a thread that read it a bit
     * earlier) counts in the open window ... */
    take(f.db, "token:1", t0 + W - 20, t0 + W, 3);
    /* ... a step back by more than a window opens a new one rather than
     * refusing the caller until the clock catches up. */
    take(f.db, "token:1", t0 - W - 1, t0 - W - 1, 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM rate_windows", 0), 2);
    storage_fixture_close(&f);
}
END_TEST

/* A take inside a read snapshot left open on the connection still counts
 * against the table as it is now, and leaves no transaction open. */
START_TEST(test_rates_take_ends_a_snapshot)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t t0 = 1700000000000;
    take(f.db, "token:1", t0, t0, 1);
    ad_err e = {0};
    ck_assert_int_eq(storage_snapshot_begin(f.db, &e), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM rate_windows", 0), 1);
    take(f.db, "token:1", t0 + 1, t0, 2);
    ck_assert_int_ne(sqlite3_get_autocommit(f.db->db), 0);
    storage_fixture_close(&f);
}
END_TEST

#define RACERS 4
#define RACER_TAKES 50

static void *racer(void *arg)
{
    (void)arg;
    storage_conn *db = storage_conn_get();
    ck_assert_ptr_nonnull(db);
    int64_t now = ad_clock_now_ms();
    for (int i = 0; i < RACER_TAKES; i++) {
        int64_t start = 0, count = 0;
        ad_err e = {0};
        int rc;
        /* SQLite may refuse a writer busy past its timeout: the limiter
         * admits then; here the count must come out exact, so retry. */
        while ((rc = storage_rates_take(db, "token:7", now, W, &start, &count, &e)) == AD_EBUSY) {}
        ck_assert_msg(rc == 0, "%s", e.msg);
    }
    storage_thread_release();
    return NULL;
}

/* Takes from several connections at once lose no count. */
START_TEST(test_rates_concurrent_takes_all_count)
{
    storage_fixture f;
    storage_fixture_open(&f);
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, racer, NULL), 0);
    for (int i = 0; i < RACERS; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count FROM rate_windows WHERE caller = ?1",
                                                "token:7"),
                     RACERS * RACER_TAKES);
    storage_fixture_close(&f);
}
END_TEST

/* Windows that ended more than a window ago go; younger ones stay, by the
 * maintenance pass as by the prune itself. */
START_TEST(test_rates_prune_ended_windows)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t now = ad_clock_now_ms();
    take(f.db, "old", now - 2 * W - 1, now - 2 * W - 1, 1);
    take(f.db, "ended", now - 2 * W + 1000, now - 2 * W + 1000, 1);
    take(f.db, "open", now - 10, now - 10, 1);
    ad_err e = {0};
    int64_t removed = -1;
    ck_assert_int_eq(storage_rates_prune(f.db, now, W, &removed, &e), 0);
    ck_assert_int_eq(removed, 1);
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM rate_windows WHERE caller = ?1",
                                                "old"), 0);
    take(f.db, "old2", now - 3 * W, now - 3 * W, 1);
    storage_retention none = {0, 0};
    ck_assert_int_eq(storage_prune_logs(f.db, &none, NULL, &removed, &e), 0);
    ck_assert_int_eq(removed, 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM rate_windows", 0), 2);
    storage_fixture_close(&f);
}
END_TEST

Suite *storage_rates_suite(void)
{
    Suite *s = suite_create("storage_rates");
    TCase *tc = tcase_create("rates");
    tcase_add_test(tc, test_rates_window_counts_ends_and_reopens);
    tcase_add_test(tc, test_rates_take_ends_a_snapshot);
    tcase_add_test(tc, test_rates_concurrent_takes_all_count);
    tcase_add_test(tc, test_rates_prune_ended_windows);
    suite_add_tcase(s, tc);
    return s;
}
