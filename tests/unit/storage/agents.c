/* Tests storage/agents.c against a real database: create, read, list, delete. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/plan.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/executions.h"
#include "storage/index.h"
#include "storage/jobs.h"
#include "storage/trainings.h"
#include "storage/units.h"
#include "storage/versions.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_agents_suite(void);

static int64_t create_agent(storage_conn *db, const char *user_id)
{
    static const char material[] = "[{\"prompt\":\"p\",\"answer\":\"a\"}]";
    agent_new a = {.user_id = user_id,
                   .source = "dataset",
                   .material = material,
                   .material_len = sizeof(material) - 1,
                   .description = "desc"};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ad_err e = {0};
    ck_assert_msg(storage_agents_create(db, &a, &id, &e) == 0, "create %s: %s", user_id, e.msg);
    ck_assert_int_gt(id, 0);
    return id;
}

START_TEST(test_agents_create_and_get)
{
    storage_fixture f;
    storage_fixture_open(&f);
    agent_new a = {.user_id = "alice", .source = "text", .material = "some text here!",
                   .material_len = 9, .base_model = "bm"};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_create(f.db, &a, &id, &e), 0);

    agent_row row;
    ck_assert_int_eq(storage_agents_get(f.db, "alice", &row, &e), 0);
    ck_assert_int_eq(row.id, id);
    ck_assert_str_eq(row.user_id, "alice");
    ck_assert_int_eq(row.status, AGENT_INITIALIZING);
    ck_assert_str_eq(row.source, "text");
    ck_assert_int_eq(row.progress, 0);
    ck_assert_str_eq(row.base_model, "bm");
    ck_assert_ptr_null(row.description);
    ck_assert_ptr_null(row.error);
    ck_assert_int_eq(row.deployed_version_id, 0);
    ck_assert_int_gt(row.created_at, 0);
    ck_assert_int_eq(row.created_at, row.updated_at);
    agent_row_cleanup(&row);

    ck_assert_int_eq(storage_agents_get_by_id(f.db, id, &row, &e), 0);
    ck_assert_str_eq(row.user_id, "alice");
    agent_row_cleanup(&row);

    /* Only material_len bytes are stored. */
    char *m = NULL;
    size_t mlen = 0;
    ck_assert_int_eq(storage_agents_material(f.db, id, &m, &mlen, &e), 0);
    ck_assert_uint_eq(mlen, 9);
    ck_assert_str_eq(m, "some text");
    free(m);
    /* An agent with no material (gone, or never there) is not found. */
    ck_assert_int_eq(storage_agents_material(f.db, id + 100, &m, &mlen, &e), AD_ENOTFOUND);

    /* Creation wrote four pending execution rows and one queued pipeline job. */
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM executions WHERE agent_id = ?1"
                                                 " AND status = 'pending'", id), PIPELINE_STAGES);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE agent_id = ?1"
                                                 " AND state = 'queued' AND kind = 'pipeline'", id), 1);

    ck_assert_int_eq(storage_agents_get(f.db, "bob", &row, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_agents_get_by_id(f.db, id + 100, &row, &e), AD_ENOTFOUND);
    storage_fixture_close(&f);
}
END_TEST

/* Storage knows no stage and no job kind: the log's rows and the first job
 * are the caller's, stored as given; without a job kind no job is queued. */
START_TEST(test_agents_create_stores_the_callers_plan)
{
    storage_fixture f;
    storage_fixture_open(&f);
    static const char *const names[] = {"Fetch", "Index"};
    static const char *const outputs[] = {"the raw text", "an index"};
    agent_new a = {.user_id = "planned", .source = "text", .material = "words", .material_len = 5,
                   .log = {names, outputs, 2},
                   .first_job = {.kind = "custom", .start_stage = 1, .params = "{\"k\":2}"}};
    int64_t id = 0;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_create(f.db, &a, &id, &e), 0);
    exec_row rows[3];
    int n = 0;
    ck_assert_int_eq(storage_exec_list(f.db, id, rows, 3, &n, &e), 0);
    ck_assert_int_eq(n, 2);
    for (int i = 0; i < n; i++) {
        ck_assert_str_eq(rows[i].name, names[i]);
        ck_assert_str_eq(rows[i].expected_output, outputs[i]);
        ck_assert_int_eq(rows[i].status, EXEC_PENDING);
        exec_row_cleanup(&rows[i]);
    }
    job_row j;
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
    ck_assert_str_eq(j.kind, "custom");
    ck_assert_int_eq(j.start_stage, 1);
    ck_assert_str_eq(j.params, "{\"k\":2}");
    job_row_cleanup(&j);

    agent_new bare = {.user_id = "bare", .source = "text", .material = "w", .material_len = 1};
    ck_assert_int_eq(storage_agents_create(f.db, &bare, &id, &e), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE agent_id = ?1", id), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM executions WHERE agent_id = ?1", id), 0);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_agents_duplicate_user_id)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t first = create_agent(f.db, "dup");
    agent_new a = {.user_id = "dup", .source = "text", .material = "x", .material_len = 1};
    pipeline_plan_agent(&a);
    int64_t id = -1;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_create(f.db, &a, &id, &e), AD_EEXIST);
    ck_assert_int_eq(e.code, AD_EEXIST);
    ck_assert_ptr_nonnull(strstr(e.msg, "dup"));
    ck_assert_int_eq(id, -1);
    /* The failed creation left nothing behind and no transaction open. */
    ck_assert(sqlite3_get_autocommit(f.db->db));
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM agents", 0), 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs", 0), 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM executions", 0), PIPELINE_STAGES);
    agent_row row;
    ck_assert_int_eq(storage_agents_get(f.db, "dup", &row, &e), 0);
    ck_assert_int_eq(row.id, first);
    ck_assert_str_eq(row.source, "dataset");
    agent_row_cleanup(&row);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_agents_set_state)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create_agent(f.db, "s");
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_set_state(f.db, id, AGENT_ERROR, "ModelTrainer", 25, "boom", 0, &e), 0);
    agent_row row;
    ck_assert_int_eq(storage_agents_get(f.db, "s", &row, &e), 0);
    ck_assert_int_eq(row.status, AGENT_ERROR);
    ck_assert_str_eq(row.stage, "ModelTrainer");
    ck_assert_int_eq(row.progress, 25);
    ck_assert_str_eq(row.error, "boom");
    agent_row_cleanup(&row);
    ck_assert_int_eq(storage_agents_set_state(f.db, id, AGENT_READY, NULL, 100, NULL, 0, &e), 0);
    ck_assert_int_eq(storage_agents_get(f.db, "s", &row, &e), 0);
    ck_assert_ptr_null(row.error);
    ck_assert_str_eq(row.stage, "");
    agent_row_cleanup(&row);
    ck_assert_int_eq(storage_agents_set_state(f.db, id + 1, AGENT_READY, NULL, 100, NULL, 0, &e), AD_ENOTFOUND);
    storage_fixture_close(&f);
}
END_TEST

/* Collects visited user_ids, comma-separated. */
static void collect(void *ud, const agent_row *a)
{
    char *out = ud;
    if (*out) strcat(out, ",");
    strcat(out, a->user_id);
}

/* The enums store the same words as before (no migration), and a word no
 * state has, which only a database agentd did not write holds, is an
 * internal error rather than a made-up state. */
START_TEST(test_agents_status_words_stored)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create_agent(f.db, "w");
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_set_state(f.db, id, AGENT_PROCESSING, NULL, 10, NULL, 0, &e), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM agents WHERE id = ?1 AND status = 'processing'", id), 1);
    ck_assert_int_eq(sqlite3_exec(f.db->db, "UPDATE agents SET status = 'paused'", NULL, NULL, NULL), SQLITE_OK);
    agent_row row;
    ck_assert_int_eq(storage_agents_get(f.db, "w", &row, &e), AD_EINTERNAL);
    ck_assert_msg(strstr(e.msg, "unknown status"), "%s", e.msg);
    agent_status st;
    ck_assert_int_eq(storage_agents_status(f.db, "w", &st, &e), AD_EINTERNAL);
    char seen[64] = "";
    int more = 0;
    int64_t total = 0;
    ck_assert_int_eq(storage_agents_list(f.db, NULL, NULL, NULL, 10, collect, seen, &more, &total, &e), AD_EINTERNAL);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_agents_list_pages_and_filters)
{
    storage_fixture f;
    storage_fixture_open(&f);
    /* Created out of order: the list is ordered by user_id. */
    static const char *const ids[] = {"e", "b", "a", "d", "c"};
    for (size_t i = 0; i < 5; i++) {
        int64_t id = create_agent(f.db, ids[i]);
        if (!strcmp(ids[i], "b") || !strcmp(ids[i], "d") || !strcmp(ids[i], "e"))
            ck_assert_int_eq(storage_agents_set_state(f.db, id, AGENT_READY, NULL, 100, NULL, 0, NULL), 0);
    }
    char seen[64] = "";
    int more = -1;
    int64_t total = -1;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_list(f.db, NULL, NULL, NULL, 2, collect, seen, &more, &total, &e), 0);
    ck_assert_str_eq(seen, "a,b");
    ck_assert_int_eq(more, 1);
    ck_assert_int_eq(total, 5);

    seen[0] = '\0';
    ck_assert_int_eq(storage_agents_list(f.db, NULL, NULL, "b", 2, collect, seen, &more, &total, &e), 0);
    ck_assert_str_eq(seen, "c,d");
    ck_assert_int_eq(more, 1);
    ck_assert_int_eq(total, 5);

    seen[0] = '\0';
    ck_assert_int_eq(storage_agents_list(f.db, NULL, NULL, "d", 2, collect, seen, &more, &total, &e), 0);
    ck_assert_str_eq(seen, "e");
    ck_assert_int_eq(more, 0);

    /* Exactly a page left: no more. */
    seen[0] = '\0';
    ck_assert_int_eq(storage_agents_list(f.db, NULL, NULL, "c", 2, collect, seen, &more, &total, &e), 0);
    ck_assert_str_eq(seen, "d,e");
    ck_assert_int_eq(more, 0);

    seen[0] = '\0';
    ck_assert_int_eq(storage_agents_list(f.db, &(agent_state){AGENT_READY}, NULL, NULL, 10, collect, seen, &more, &total, &e), 0);
    ck_assert_str_eq(seen, "b,d,e");
    ck_assert_int_eq(more, 0);
    ck_assert_int_eq(total, 3);

    seen[0] = '\0';
    ck_assert_int_eq(storage_agents_list(f.db, &(agent_state){AGENT_READY}, NULL, "b", 1, collect, seen, &more, &total, &e), 0);
    ck_assert_str_eq(seen, "d");
    ck_assert_int_eq(more, 1);
    ck_assert_int_eq(total, 3);

    seen[0] = '\0';
    ck_assert_int_eq(storage_agents_list(f.db, &(agent_state){AGENT_INITIALIZING}, NULL, NULL, 10, collect, seen, &more, &total, &e), 0);
    ck_assert_str_eq(seen, "a,c");
    ck_assert_int_eq(total, 2);

    seen[0] = '\0';
    ck_assert_int_eq(storage_agents_list(f.db, &(agent_state){AGENT_ERROR}, NULL, NULL, 10, collect, seen, &more, &total, &e), 0);
    ck_assert_str_eq(seen, "");
    ck_assert_int_eq(more, 0);
    ck_assert_int_eq(total, 0);

    /* A token's agents: only those, paged by the same cursor, counted alone. */
    seen[0] = '\0';
    ck_assert_int_eq(storage_agents_list(f.db, NULL, "[\"e\",\"b\",\"zz\"]", NULL, 1, collect, seen, &more, &total, &e), 0);
    ck_assert_str_eq(seen, "b");
    ck_assert_int_eq(more, 1);
    ck_assert_int_eq(total, 2);
    seen[0] = '\0';
    ck_assert_int_eq(storage_agents_list(f.db, NULL, "[\"e\",\"b\",\"zz\"]", "b", 1, collect, seen, &more, &total, &e), 0);
    ck_assert_str_eq(seen, "e");
    ck_assert_int_eq(more, 0);
    storage_fixture_close(&f);
}
END_TEST

/* Gives the agent a row in every table that hangs off it. */
static void populate(storage_conn *db, int64_t agent_id)
{
    ad_err e = {0};
    storage_fixture_exec(db, "INSERT INTO units (agent_id, ord, question, body, answer, category, probe)"
                             " VALUES (?1, 0, 'question', 'body', 'answer', 'cat', 'probe')", agent_id);
    int64_t vid = 0;
    ck_assert_int_eq(storage_versions_create(db, agent_id, "v1", "en", "{}", "persona", "[]", &vid, &e), 0);
    ck_assert_int_eq(storage_index_put_passage(db, vid, 0, "shared question words",
                                               "shared body words", "answer", NULL, &e), 0);
    ck_assert_int_eq(storage_index_put_term(db, vid, "shar", 4, "\0\1\1", 3, &e), 0);
    index_stats_row st = {1, 3, 3};
    ck_assert_int_eq(storage_index_put_stats(db, vid, &st, "\3\0\3\0", 4, &e), 0);
    /* The jobs table already holds the agent's creation job, and a second
     * active job for the same agent is refused. */
    ck_assert_int_eq(storage_jobs_enqueue(db, agent_id, &(job_spec){"replay", 1, NULL}, NULL, &e), AD_ECONFLICT);
}

static int64_t rows_of(storage_conn *db, const char *table, int64_t agent_id)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE agent_id = ?1", table);
    return storage_fixture_count(db, sql, agent_id);
}

/* Rows of the version index tables, all agents together: a version's go
 * by cascade, so they cannot be found by agent once it is deleted. */
static const char *const index_tables[] = {"version_passages", "version_terms", "version_index"};

static void check_index_rows(storage_conn *db, int64_t want)
{
    for (size_t i = 0; i < 3; i++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", index_tables[i]);
        ck_assert_msg(storage_fixture_count(db, sql, 0) == want, "%s rows: want %lld", index_tables[i],
                      (long long)want);
    }
}

static const char *const agent_tables[] = {"materials", "jobs", "executions", "units", "versions"};

START_TEST(test_agents_delete_cascades)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t gone = create_agent(f.db, "gone");
    int64_t kept = create_agent(f.db, "kept");
    populate(f.db, gone);
    populate(f.db, kept);
    for (size_t i = 0; i < 5; i++) ck_assert_int_gt(rows_of(f.db, agent_tables[i], gone), 0);
    check_index_rows(f.db, 2);

    int64_t deleted = 0;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_delete(f.db, "gone", NULL, &deleted, &e), 0);
    ck_assert_int_eq(deleted, gone);
    for (size_t i = 0; i < 5; i++)
        ck_assert_msg(rows_of(f.db, agent_tables[i], gone) == 0, "%s rows remain", agent_tables[i]);
    check_index_rows(f.db, 1);
    agent_row row;
    ck_assert_int_eq(storage_agents_get(f.db, "gone", &row, &e), AD_ENOTFOUND);

    /* The other agent is untouched. */
    ck_assert_int_eq(rows_of(f.db, "materials", kept), 1);
    ck_assert_int_eq(rows_of(f.db, "jobs", kept), 1);
    ck_assert_int_eq(rows_of(f.db, "executions", kept), PIPELINE_STAGES);
    ck_assert_int_eq(rows_of(f.db, "units", kept), 1);
    ck_assert_int_eq(rows_of(f.db, "versions", kept), 1);

    ck_assert_int_eq(storage_agents_delete(f.db, "gone", NULL, &deleted, &e), AD_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "gone"));
    ck_assert(sqlite3_get_autocommit(f.db->db));
    storage_fixture_close(&f);
}
END_TEST

/* Counts the agents told and checks each is named: x0, x1, x2. */
static void count_ids(void *ud, int64_t id, const char *user_id)
{
    (void)id;
    ck_assert(user_id[0] == 'x' && user_id[1] >= '0' && user_id[1] <= '2' && !user_id[2]);
    (*(int *)ud)++;
}

START_TEST(test_agents_delete_all)
{
    storage_fixture f;
    storage_fixture_open(&f);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "x%d", i);
        populate(f.db, create_agent(f.db, name));
    }
    int64_t count = 0;
    int told = 0;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_delete_all(f.db, NULL, &count, count_ids, &told, &e), 0);
    ck_assert_int_eq(count, 3);
    ck_assert_int_eq(told, 3);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM agents", 0), 0);
    for (size_t i = 0; i < 5; i++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", agent_tables[i]);
        ck_assert_int_eq(storage_fixture_count(f.db, sql, 0), 0);
    }
    check_index_rows(f.db, 0);
    /* Nothing left: zero, not an error. */
    ck_assert_int_eq(storage_agents_delete_all(f.db, NULL, &count, NULL, NULL, &e), 0);
    ck_assert_int_eq(count, 0);
    storage_fixture_close(&f);
}
END_TEST

/* A delete and its audit row are one unit of work: both or neither. */
START_TEST(test_agents_delete_audited_atomically)
{
    storage_fixture f;
    storage_fixture_open(&f);
    create_agent(f.db, "a");
    create_agent(f.db, "b");
    create_agent(f.db, "c");
    ad_err e = {0};
    int64_t id = 0, count = 0;
    /* An audit row the table refuses (no action) takes the delete back. */
    audit_entry bad = {.actor = "admin", .action = NULL, .request_id = "r0"};
    ck_assert_int_lt(storage_agents_delete(f.db, "a", &bad, &id, &e), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM agents WHERE user_id = 'a'", 0), 1);
    ck_assert_int_lt(storage_agents_delete_all(f.db, &bad, &count, NULL, NULL, &e), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM agents", 0), 3);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM audit_log", 0), 0);
    ck_assert(sqlite3_get_autocommit(f.db->db));

    audit_entry one = {.actor = "token:7", .action = "agent.deleted", .target = "a", .request_id = "r1"};
    ck_assert_int_eq(storage_agents_delete(f.db, "a", &one, &id, &e), 0);
    ck_assert_int_eq(storage_fixture_count(f.db,
                                           "SELECT count(*) FROM audit_log WHERE action = 'agent.deleted' AND "
                                           "target = 'a' AND actor = 'token:7' AND request_id = 'r1'",
                                           0),
                     1);
    audit_entry all = {.actor = "admin", .action = "agents.deleted_all", .request_id = "r2"};
    ck_assert_int_eq(storage_agents_delete_all(f.db, &all, &count, NULL, NULL, &e), 0);
    ck_assert_int_eq(count, 2);
    ck_assert_int_eq(storage_fixture_count(f.db,
                                           "SELECT count(*) FROM audit_log WHERE action = 'agents.deleted_all' AND "
                                           "detail = '{\"deleted\":2}' AND target IS NULL",
                                           0),
                     1);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_agents_count_inference)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create_agent(f.db, "inf");
    ck_assert_int_eq(storage_agents_count_inference(f.db, id, 1, 10, 20, NULL), 0);
    ck_assert_int_eq(storage_agents_count_inference(f.db, id, 0, 5, 0, NULL), 0);
    agent_row row;
    ck_assert_int_eq(storage_agents_get_by_id(f.db, id, &row, NULL), 0);
    ck_assert_int_eq(row.inference_count, 2);
    ck_assert_int_eq(row.inference_errors, 1);
    ck_assert_int_eq(row.prompt_tokens, 15);
    ck_assert_int_eq(row.output_tokens, 20);
    agent_row_cleanup(&row);
    storage_fixture_close(&f);
}
END_TEST

/* Collects user_id:quality (or "-"), comma-separated. */
static void collect_quality(void *ud, const agent_row *a)
{
    char *out = ud;
    if (*out) strcat(out, ",");
    char one[AGENT_USER_ID_MAX + 16];
    if (a->has_quality) snprintf(one, sizeof(one), "%s:%.3f", a->user_id, a->quality);
    else snprintf(one, sizeof(one), "%s:-", a->user_id);
    strcat(out, one);
}

/* The material's size is stored with the agent; a running pipeline job's
 * end (eta_at) is written by its units of work and gone once it ends. */
START_TEST(test_agents_material_bytes_and_eta_at)
{
    storage_fixture f;
    storage_fixture_open(&f);
    /* 8 characters in 12 bytes: the size is counted in bytes. */
    static const char text[] = "gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac!";
    agent_new a = {.user_id = "m", .source = "text", .material = text, .material_len = sizeof(text) - 1};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_create(f.db, &a, &id, &e), 0);
    agent_row row;
    ck_assert_int_eq(storage_agents_get(f.db, "m", &row, &e), 0);
    ck_assert_int_eq(row.material_bytes, 12);
    agent_row_cleanup(&row);

    agent_status st;
    ck_assert_int_eq(storage_agents_status(f.db, "m", &st, &e), 0);
    ck_assert_int_eq(st.eta_at, 0);
    job_row j;
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(storage_exec_start_job(f.db, id, j.id, 0, "DataProcessor", 0, 0, 1234567, &e), 0);
    ck_assert_int_eq(storage_agents_status(f.db, "m", &st, &e), 0);
    ck_assert_int_eq(st.status, AGENT_PROCESSING);
    ck_assert_int_eq(st.eta_at, 1234567);
    ck_assert_int_eq(storage_exec_finish_job(f.db, id, j.id, &e), 0);
    ck_assert_int_eq(storage_agents_status(f.db, "m", &st, &e), 0);
    ck_assert_int_eq(st.status, AGENT_READY);
    ck_assert_int_eq(st.eta_at, 0);
    job_row_cleanup(&j);
    storage_fixture_close(&f);
}
END_TEST

/* Status shows the agent's latest training run unless it is done: a failed
 * one with its error and end, until the next run is queued. */
START_TEST(test_agents_status_shows_the_latest_run_unless_done)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create_agent(f.db, "t");
    ad_err e = {0};
    job_row j;
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(storage_exec_finish_job(f.db, id, j.id, &e), 0);
    job_row_cleanup(&j);
    agent_status st;
    ck_assert_int_eq(storage_agents_status(f.db, "t", &st, &e), 0);
    ck_assert_int_eq(st.training_id, 0);

    int64_t first = 0;
    ck_assert_int_eq(storage_trainings_create(f.db, id, "r1", 3, "train", &first, &e), 0);
    ck_assert_int_eq(storage_fixture_claim(f.db, &j, &e), 0);
    ck_assert_int_eq(storage_trainings_start(f.db, first, 0, &e), 0);
    ck_assert_int_eq(storage_agents_status(f.db, "t", &st, &e), 0);
    ck_assert_int_eq(st.training_id, first);
    ck_assert_int_eq(st.training_status, TRAINING_RUNNING);
    ck_assert_int_gt(st.training_started_at, 0);
    ck_assert_int_eq(st.training_finished_at, 0);
    ck_assert_str_eq(st.training_error, "");
    ck_assert_int_eq(storage_trainings_fail(f.db, first, id, j.id, "the index broke", &e), 0);
    job_row_cleanup(&j);
    ck_assert_int_eq(storage_agents_status(f.db, "t", &st, &e), 0);
    ck_assert_int_eq(st.training_id, first);
    ck_assert_int_eq(st.training_status, TRAINING_FAILED);
    ck_assert_str_eq(st.training_error, "the index broke");
    ck_assert_int_gt(st.training_finished_at, 0);
    ck_assert_int_eq(st.training_iterations, 3);

    /* The next run replaces it. */
    int64_t second = 0;
    ck_assert_int_eq(storage_trainings_create(f.db, id, "r2", 2, "train", &second, &e), 0);
    ck_assert_int_eq(storage_agents_status(f.db, "t", &st, &e), 0);
    ck_assert_int_eq(st.training_id, second);
    ck_assert_int_eq(st.training_status, TRAINING_QUEUED);
    ck_assert_str_eq(st.training_error, "");
    ck_assert_int_eq(st.training_finished_at, 0);
    /* Cancelled shows; done hides, and does not bring back the failed one. */
    storage_fixture_exec(f.db, "UPDATE trainings SET status = 'cancelled', finished_at = 77 WHERE id = ?1", second);
    ck_assert_int_eq(storage_agents_status(f.db, "t", &st, &e), 0);
    ck_assert_int_eq(st.training_status, TRAINING_CANCELLED);
    ck_assert_int_eq(st.training_finished_at, 77);
    storage_fixture_exec(f.db, "UPDATE trainings SET status = 'done' WHERE id = ?1", second);
    ck_assert_int_eq(storage_agents_status(f.db, "t", &st, &e), 0);
    ck_assert_int_eq(st.training_id, 0);
    storage_fixture_close(&f);
}
END_TEST

/* Every read of an agent carries its deployed version's quality, if measured. */
START_TEST(test_agents_read_the_deployed_quality)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t id = create_agent(f.db, "q");
    create_agent(f.db, "r");
    ad_err e = {0};
    agent_row row;
    ck_assert_int_eq(storage_agents_get(f.db, "q", &row, &e), 0);
    ck_assert_int_eq(row.has_quality, 0);
    agent_row_cleanup(&row);
    storage_fixture_exec(f.db, "INSERT INTO versions (agent_id, name, params, persona, fewshot, quality, state,"
                               " created_at) VALUES (?1, 'v1', '{}', '', '[]', 0.625, 'deployed', 1)", id);
    storage_fixture_exec(f.db, "UPDATE agents SET deployed_version_id = (SELECT max(id) FROM versions)"
                               " WHERE id = ?1", id);
    ck_assert_int_eq(storage_agents_get_by_id(f.db, id, &row, &e), 0);
    ck_assert_int_eq(row.has_quality, 1);
    ck_assert_double_eq_tol(row.quality, 0.625, 1e-9);
    agent_row_cleanup(&row);
    char seen[64] = "";
    int more = 0;
    int64_t total = 0;
    ck_assert_int_eq(storage_agents_list(f.db, NULL, NULL, NULL, 10, collect_quality, seen, &more, &total, &e), 0);
    ck_assert_str_eq(seen, "q:0.625,r:-");
    storage_fixture_close(&f);
}
END_TEST

Suite *storage_agents_suite(void)
{
    Suite *s = suite_create("storage_agents");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_agents_create_and_get);
    tcase_add_test(tc, test_agents_create_stores_the_callers_plan);
    tcase_add_test(tc, test_agents_duplicate_user_id);
    tcase_add_test(tc, test_agents_set_state);
    tcase_add_test(tc, test_agents_status_words_stored);
    tcase_add_test(tc, test_agents_list_pages_and_filters);
    tcase_add_test(tc, test_agents_delete_cascades);
    tcase_add_test(tc, test_agents_delete_all);
    tcase_add_test(tc, test_agents_delete_audited_atomically);
    tcase_add_test(tc, test_agents_count_inference);
    tcase_add_test(tc, test_agents_material_bytes_and_eta_at);
    tcase_add_test(tc, test_agents_status_shows_the_latest_run_unless_done);
    tcase_add_test(tc, test_agents_read_the_deployed_quality);
    suite_add_tcase(s, tc);
    return s;
}
