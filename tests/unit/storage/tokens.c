/* storage/tokens.c and storage/audit.c: a token's life in the database
 * (create with its audit row, find by prefix, rotate, revoke, list) against
 * a real SQLite file. */
#include <check.h>
#include <string.h>

#include "base/clock.h"
#include "storage/audit.h"
#include "storage/tokens.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_tokens_suite(void);

static const unsigned char hash_a[TOKEN_HASH_LEN] = {1, 2, 3};
static const unsigned char hash_b[TOKEN_HASH_LEN] = {9, 8, 7};

static int64_t create(storage_fixture *f, const char *prefix, const unsigned char *hash)
{
    token_new t = {.name = "ci", .scopes = 5, .agents = "[\"alice\"]", .created_by = "admin",
                   .rate_limit_per_min = 30};
    audit_entry a = {.actor = "admin", .action = "token.created", .request_id = "r1"};
    int64_t id = 0;
    ad_err e = {0};
    ck_assert_msg(storage_tokens_create(f->db, &t, prefix, hash, &a, &id, &e) == 0, "%s", e.msg);
    return id;
}

START_TEST(test_token_create_find_and_audit)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create(&f, "aaaaaaaaaaaa", hash_a);
    token_secret s;
    ad_err e = {0};
    ck_assert_int_eq(storage_tokens_find_secret(f.db, "aaaaaaaaaaaa", &s, &e), 0);
    ck_assert_int_eq(s.token.id, id);
    ck_assert_str_eq(s.token.name, "ci");
    ck_assert_uint_eq(s.token.scopes, 5);
    ck_assert_str_eq(s.token.agents, "[\"alice\"]");
    ck_assert_int_eq(s.token.rate_limit_per_min, 30);
    ck_assert_int_eq(s.token.max_concurrent_inferences, 0);
    ck_assert_int_eq(s.valid_until, 0);
    ck_assert(memcmp(s.hash, hash_a, TOKEN_HASH_LEN) == 0);
    token_row_cleanup(&s.token);
    ck_assert_int_eq(storage_tokens_find_secret(f.db, "bbbbbbbbbbbb", &s, &e), AD_ENOTFOUND);
    /* The creation and its audit row are one unit of work. */
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM audit_log WHERE target = ?1",
                                                "token:1"), 1);
    /* A prefix is unique: a second token drawing it is told to draw again. */
    token_new t = {.name = "x", .scopes = 1, .created_by = "admin"};
    int64_t other = 0;
    ck_assert_int_eq(storage_tokens_create(f.db, &t, "aaaaaaaaaaaa", hash_b, NULL, &other, &e), AD_EEXIST);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM tokens", 0), 1);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_token_rotate_and_revoke)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create(&f, "aaaaaaaaaaaa", hash_a);
    ad_err e = {0};
    int64_t until = ad_clock_now_ms() + 5000;
    ck_assert_int_eq(storage_tokens_rotate(f.db, id, "bbbbbbbbbbbb", hash_b, until, NULL, &e), 0);
    token_secret s;
    ck_assert_int_eq(storage_tokens_find_secret(f.db, "aaaaaaaaaaaa", &s, &e), 0);
    ck_assert_int_eq(s.valid_until, until);
    token_row_cleanup(&s.token);
    ck_assert_int_eq(storage_tokens_find_secret(f.db, "bbbbbbbbbbbb", &s, &e), 0);
    ck_assert_int_eq(s.valid_until, 0);
    token_row_cleanup(&s.token);
    token_row t;
    ck_assert_int_eq(storage_tokens_get(f.db, id, &t, &e), 0);
    ck_assert_str_eq(t.prefix, "bbbbbbbbbbbb");
    token_row_cleanup(&t);
    /* A later rotation with a longer grace never extends an earlier end. */
    ck_assert_int_eq(storage_tokens_rotate(f.db, id, "cccccccccccc", hash_a, until + 60000, NULL, &e), 0);
    ck_assert_int_eq(storage_tokens_find_secret(f.db, "aaaaaaaaaaaa", &s, &e), 0);
    ck_assert_int_eq(s.valid_until, until);
    token_row_cleanup(&s.token);

    int was = -1;
    audit_entry a = {.actor = "admin", .action = "token.revoked"};
    ck_assert_int_eq(storage_tokens_revoke(f.db, id, &a, &was, &e), 0);
    ck_assert_int_eq(was, 0);
    ck_assert_int_eq(storage_tokens_get(f.db, id, &t, &e), 0);
    int64_t revoked_at = t.revoked_at;
    ck_assert_int_gt(revoked_at, 0);
    token_row_cleanup(&t);
    ck_assert_int_eq(storage_tokens_revoke(f.db, id, &a, &was, &e), 0);
    ck_assert_int_eq(was, 1);
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM audit_log WHERE action = ?1",
                                                "token.revoked"), 1);
    ck_assert_int_eq(storage_tokens_rotate(f.db, id, "dddddddddddd", hash_b, 0, NULL, &e), AD_ESTATE);
    ck_assert_int_eq(storage_tokens_rotate(f.db, 99, "dddddddddddd", hash_b, 0, NULL, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_tokens_revoke(f.db, 99, &a, &was, &e), AD_ENOTFOUND);
    storage_fixture_close(&f);
}
END_TEST

typedef struct seen_ids {
    int64_t ids[8];
    int n;
} seen_ids;

static void collect_token(void *ud, const token_row *t)
{
    seen_ids *s = ud;
    s->ids[s->n++] = t->id;
}

static void collect_audit(void *ud, const audit_row *r)
{
    seen_ids *s = ud;
    s->ids[s->n++] = r->id;
}

START_TEST(test_token_and_audit_pages)
{
    storage_fixture f;
    storage_fixture_open(&f);
    const char *prefixes[] = {"p00000000001", "p00000000002", "p00000000003"};
    for (int i = 0; i < 3; i++) create(&f, prefixes[i], hash_a);
    ad_err e = {0};
    seen_ids s = {0};
    int more = 0;
    ck_assert_int_eq(storage_tokens_list(f.db, 0, 2, collect_token, &s, &more, &e), 0);
    ck_assert_int_eq(s.n, 2);
    ck_assert_int_eq(s.ids[0], 3);
    ck_assert_int_eq(s.ids[1], 2);
    ck_assert_int_eq(more, 1);
    s.n = 0;
    ck_assert_int_eq(storage_tokens_list(f.db, 2, 2, collect_token, &s, &more, &e), 0);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.ids[0], 1);
    ck_assert_int_eq(more, 0);

    audit_entry a = {.actor = "system", .action = "agent.deleted", .target = "alice", .detail_json = "{}"};
    ck_assert_int_eq(storage_audit_add(f.db, &a, &e), 0);
    s.n = 0;
    ck_assert_int_eq(storage_audit_list(f.db, NULL, 0, 10, collect_audit, &s, &more, &e), 0);
    ck_assert_int_eq(s.n, 4);
    ck_assert_int_eq(s.ids[0], 4);
    s.n = 0;
    ck_assert_int_eq(storage_audit_list(f.db, "token.created", 3, 10, collect_audit, &s, &more, &e), 0);
    ck_assert_int_eq(s.n, 2);
    ck_assert_int_eq(s.ids[0], 2);
    ck_assert_int_eq(more, 0);
    storage_fixture_close(&f);
}
END_TEST

Suite *storage_tokens_suite(void)
{
    Suite *s = suite_create("storage_tokens");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_token_create_find_and_audit);
    tcase_add_test(tc, test_token_rotate_and_revoke);
    tcase_add_test(tc, test_token_and_audit_pages);
    suite_add_tcase(s, tc);
    return s;
}
