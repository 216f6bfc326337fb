/* Tests storage/versions.c: versions, their language, deployment and deletion. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "pipeline/plan.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/index.h"
#include "storage/jobs.h"
#include "storage/versions.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_versions_suite(void);

static int64_t make_agent(storage_conn *db, const char *user_id)
{
    agent_new a = {.user_id = user_id, .source = "dataset", .material = "[]", .material_len = 2};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ck_assert_int_eq(storage_agents_create(db, &a, &id, NULL), 0);
    return id;
}

static int64_t make_version(storage_conn *db, int64_t agent_id, const char *name)
{
    int64_t vid = 0;
    ad_err e = {0};
    ck_assert_msg(storage_versions_create(db, agent_id, name, "pt", "{\"top_k\":3}", "persona",
                                          "[]", &vid, &e) == 0, "%s", e.msg);
    return vid;
}

START_TEST(test_versions_create_and_names)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    char name[16];
    ck_assert_int_eq(storage_versions_next_name(f.db, a, name, sizeof(name), NULL), 0);
    ck_assert_str_eq(name, "v1");
    int64_t v1 = make_version(f.db, a, "v1");
    /* A hand-picked "v3" is stepped over. */
    make_version(f.db, a, "v3");
    ck_assert_int_eq(storage_versions_next_name(f.db, a, name, sizeof(name), NULL), 0);
    ck_assert_str_eq(name, "v4");

    ad_err e = {0};
    int64_t dup = -1;
    ck_assert_int_eq(storage_versions_create(f.db, a, "v1", "en", "{}", "p", "[]", &dup, &e), AD_EEXIST);
    ck_assert_ptr_nonnull(strstr(e.msg, "v1"));
    ck_assert_int_eq(dup, -1);
    /* Names are per agent. */
    int64_t b = make_agent(f.db, "b");
    make_version(f.db, b, "v1");
    ck_assert_int_eq(storage_versions_create(f.db, 999, "v9", "en", "{}", "p", "[]", &dup, &e), AD_ENOTFOUND);

    version_row v;
    ck_assert_int_eq(storage_versions_get(f.db, v1, &v, &e), 0);
    ck_assert_int_eq(v.agent_id, a);
    ck_assert_str_eq(v.name, "v1");
    ck_assert_int_eq(v.state, VERSION_BUILDING);
    ck_assert_str_eq(v.params, "{\"top_k\":3}");
    ck_assert_str_eq(v.language, "pt");
    ck_assert_ptr_null(v.metrics);
    version_row_cleanup(&v);

    ck_assert_int_eq(storage_versions_set_built(f.db, v1, 7, &e), 0);
    ck_assert_int_eq(storage_versions_set_metrics(f.db, v1, "{\"hit1\":1}", 0.75, &e), 0);
    ck_assert_int_eq(storage_versions_get_by_name(f.db, a, "v1", &v, &e), 0);
    ck_assert_int_eq(v.state, VERSION_TRAINED);
    ck_assert_int_eq(v.passages, 7);
    ck_assert_str_eq(v.metrics, "{\"hit1\":1}");
    ck_assert_double_eq(v.quality, 0.75);
    version_row_cleanup(&v);
    ck_assert_int_eq(storage_versions_get(f.db, 12345, &v, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_versions_set_built(f.db, 12345, 1, &e), AD_ENOTFOUND);
    storage_fixture_close(&f);
}
END_TEST

/* Collects visited version states, comma-separated. */
static void collect_state(void *ud, const version_row *v)
{
    char *out = ud;
    if (*out) strcat(out, ",");
    strcat(out, v->name);
    strcat(out, "=");
    strcat(out, version_state_to_string(v->state));
}

START_TEST(test_versions_deploy_retires_previous)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    int64_t b = make_agent(f.db, "b");
    int64_t v1 = make_version(f.db, a, "v1");
    int64_t v2 = make_version(f.db, a, "v2");
    int64_t bv = make_version(f.db, b, "v1");
    ad_err e = {0};
    ck_assert_int_eq(storage_versions_deploy(f.db, b, bv, NULL, &e), 0);
    ck_assert_int_eq(storage_versions_deploy(f.db, a, v1, "first", &e), 0);

    agent_row ar;
    ck_assert_int_eq(storage_agents_get_by_id(f.db, a, &ar, &e), 0);
    ck_assert_int_eq(ar.deployed_version_id, v1);
    agent_row_cleanup(&ar);
    version_row v;
    ck_assert_int_eq(storage_versions_get(f.db, v1, &v, &e), 0);
    ck_assert_int_eq(v.state, VERSION_DEPLOYED);
    ck_assert_str_eq(v.note, "first");
    ck_assert_int_gt(v.deployed_at, 0);
    version_row_cleanup(&v);

    ck_assert_int_eq(storage_versions_deploy(f.db, a, v2, NULL, &e), 0);
    char states[128] = "";
    ck_assert_int_eq(storage_versions_each(f.db, a, collect_state, states, &e), 0);
    ck_assert_str_eq(states, "v1=retired,v2=deployed");
    ck_assert_int_eq(storage_agents_get_by_id(f.db, a, &ar, &e), 0);
    ck_assert_int_eq(ar.deployed_version_id, v2);
    agent_row_cleanup(&ar);

    /* Redeploying the deployed version keeps it deployed. */
    ck_assert_int_eq(storage_versions_deploy(f.db, a, v2, NULL, &e), 0);
    states[0] = '\0';
    ck_assert_int_eq(storage_versions_each(f.db, a, collect_state, states, &e), 0);
    ck_assert_str_eq(states, "v1=retired,v2=deployed");

    /* Another agent's deployment is untouched by all of this. */
    states[0] = '\0';
    ck_assert_int_eq(storage_versions_each(f.db, b, collect_state, states, &e), 0);
    ck_assert_str_eq(states, "v1=deployed");

    /* A version of another agent is not found; in the caller's transaction
     * nothing changes. */
    ck_assert_int_eq(storage_begin(f.db, &e), 0);
    ck_assert_int_eq(storage_versions_deploy(f.db, a, bv, NULL, &e), AD_ENOTFOUND);
    storage_rollback(f.db);
    states[0] = '\0';
    ck_assert_int_eq(storage_versions_each(f.db, a, collect_state, states, &e), 0);
    ck_assert_str_eq(states, "v1=retired,v2=deployed");

    ck_assert_int_eq(storage_versions_reject(f.db, v1, "worse", &e), 0);
    ck_assert_int_eq(storage_versions_get(f.db, v1, &v, &e), 0);
    ck_assert_int_eq(v.state, VERSION_REJECTED);
    ck_assert_str_eq(v.note, "worse");
    version_row_cleanup(&v);
    storage_fixture_close(&f);
}
END_TEST

/* A deployment carried out against a serving version that has changed since
 * it was decided is refused whole: no version moves and no log row is
 * written. The verdict against the right one goes through. */
START_TEST(test_versions_settle_refuses_a_stale_verdict)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "settle");
    int64_t v1 = make_version(f.db, a, "v1"), v2 = make_version(f.db, a, "v2");
    ad_err e = {0};
    ck_assert_int_eq(storage_fixture_deploy(f.db, a, v1, &e), 0);
    job_row job;
    ck_assert_int_eq(storage_fixture_claim(f.db, &job, &e), 0);
    exec_step step = {.agent_id = a, .job_id = job.id, .task_index = 3, .inputs = "{}",
                      .output = "{\"deployed\":true}", .progress = 100};
    version_verdict stale = {.agent_id = a, .version_id = v2, .deploy = 1, .note = "n",
                             .expected_deployed = 0, .uuid = "0b7e5f3c-1d2a-4c3b-8a9d-0123456789ab",
                             .created_by = "system"};
    ck_assert_int_eq(storage_versions_settle(f.db, &stale, &step, &e), AD_ECONFLICT);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT deployed_version_id FROM agents WHERE id = ?1", a), v1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM executions WHERE agent_id = ?1"
                                                 " AND status = 'completed'", a), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE id = ?1"
                                                 " AND state = 'running'", job.id), 1);
    version_verdict fresh = stale;
    fresh.expected_deployed = v1;
    ck_assert_int_eq(storage_versions_settle(f.db, &fresh, &step, &e), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT deployed_version_id FROM agents WHERE id = ?1", a), v2);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE id = ?1"
                                                 " AND state = 'retired'", v1), 1);
    /* The last stage's record finishes the job and readies the agent. */
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE id = ?1"
                                                 " AND state = 'done'", job.id), 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM agents WHERE id = ?1"
                                                 " AND status = 'ready' AND progress = 100", a), 1);
    job_row_cleanup(&job);
    storage_fixture_close(&f);
}
END_TEST

/* Deleting a version deletes its index rows (by cascade) and nothing else. */
START_TEST(test_versions_delete_takes_its_index)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    int64_t v1 = make_version(f.db, a, "v1");
    int64_t v2 = make_version(f.db, a, "v2");
    ad_err e = {0};
    index_stats_row st = {1, 1, 1};
    for (int i = 0; i < 2; i++) {
        int64_t v = i ? v2 : v1;
        ck_assert_int_eq(storage_index_put_passage(f.db, v, 0, "q", "b", NULL, NULL, &e), 0);
        ck_assert_int_eq(storage_index_put_term(f.db, v, "b", 1, "\0\0\1", 3, &e), 0);
        ck_assert_int_eq(storage_index_put_stats(f.db, v, &st, "\1\0\1\0", 4, &e), 0);
    }
    ck_assert_int_eq(storage_versions_delete(f.db, v1, &e), 0);
    const char *tables[] = {"version_passages", "version_terms", "version_index"};
    for (int i = 0; i < 3; i++) {
        char sql[96];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE version_id = ?1", tables[i]);
        ck_assert_int_eq(storage_fixture_count(f.db, sql, v1), 0);
        ck_assert_int_eq(storage_fixture_count(f.db, sql, v2), 1);
    }
    storage_fixture_close(&f);
}
END_TEST

/* The batched index reads (one statement for a query's terms, one for its
 * ranked passages) and the batched term insert: 130 terms go in as two
 * batches of 64 and two single rows; a term or passage that is not there
 * reads as missing, in its own slot, without moving the others. */
START_TEST(test_index_reads_and_writes_many)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    int64_t v = make_version(f.db, a, "v1");
    ad_err e = {0};
    static char names[130][16];
    static index_term_row rows[130];
    for (int i = 0; i < 130; i++) {
        snprintf(names[i], sizeof(names[i]), "t%03d", i);
        rows[i] = (index_term_row){names[i], 4, names[i], (size_t)(i % 5)};
    }
    index_rows ir = {.terms = rows, .nterms = 130, .stats = {2, 2, 2}, .lengths = "\1\0\1\0", .lengths_len = 4};
    ck_assert_int_eq(storage_index_store(f.db, v, &ir, &e), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM version_terms WHERE version_id = ?1", v), 130);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(storage_index_put_passage(f.db, v, i * 2, "q", i ? "b" : "a", NULL, NULL, &e), 0);

    const char *terms[] = {"t129", "nope", "t064", "t003"};
    size_t lens[] = {4, 4, 4, 4}, offs[4], sizes[4];
    ad_buf post;
    ad_buf_init(&post);
    ck_assert_int_eq(storage_index_get_postings_many(f.db, v, terms, lens, 4, &post, offs, sizes, &e), 0);
    ck_assert_uint_eq(sizes[0], 4);
    ck_assert_uint_eq(sizes[1], 0);
    ck_assert_uint_eq(sizes[2], 4);
    ck_assert_uint_eq(sizes[3], 3);
    ck_assert_int_eq(memcmp(post.data + offs[0], "t129", 4), 0);
    ck_assert_int_eq(memcmp(post.data + offs[3], "t00", 3), 0);
    ad_buf_cleanup(&post);

    int ords[] = {4, 1, 0};
    passage_hit hits[3];
    ck_assert_int_eq(storage_index_get_passages(f.db, v, ords, 3, hits, &e), 0);
    ck_assert_int_eq(hits[0].ord, 4);
    ck_assert_str_eq(hits[0].body, "b");
    ck_assert_ptr_null(hits[1].body);
    ck_assert_int_eq(hits[2].ord, 0);
    ck_assert_str_eq(hits[2].body, "a");
    passage_hits_cleanup(hits, 3);
    storage_fixture_close(&f);
}
END_TEST

/* A read that fails inside a deployment keeps its code: the ownership check
 * that cannot read is the database's failure (answered 5xx, or retried by a
 * worker), not "model version not found" (a 404 for an agent that exists,
 * or a worker failing its agent). Nothing moves. */
START_TEST(test_versions_deploy_keeps_a_failed_reads_code)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "owner");
    int64_t v1 = make_version(f.db, a, "v1"), v2 = make_version(f.db, a, "v2");
    ad_err e = {0};
    ck_assert_int_eq(storage_fixture_deploy(f.db, a, v1, &e), 0);
    storage_fixture_fail_statement(f.db, "SELECT 1 FROM versions WHERE id = ?1 AND agent_id = ?2", 0);
    int rc = storage_fixture_deploy(f.db, a, v2, &e);
    ck_assert_int_eq(storage_fixture_fail_statement(f.db, NULL, 0), 1);
    ck_assert_msg(rc == AD_EINTERNAL, "%s: %s", ad_err_name(rc), e.msg);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT deployed_version_id FROM agents WHERE id = ?1", a), v1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE id = ?1"
                                                 " AND state = 'deployed'", v1), 1);
    storage_fixture_close(&f);
}
END_TEST

Suite *storage_versions_suite(void)
{
    Suite *s = suite_create("storage_versions");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_versions_create_and_names);
    tcase_add_test(tc, test_versions_deploy_retires_previous);
    tcase_add_test(tc, test_versions_settle_refuses_a_stale_verdict);
    tcase_add_test(tc, test_versions_delete_takes_its_index);
    tcase_add_test(tc, test_index_reads_and_writes_many);
    tcase_add_test(tc, test_versions_deploy_keeps_a_failed_reads_code);
    suite_add_tcase(s, tc);
    return s;
}
