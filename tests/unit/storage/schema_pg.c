/* Tests storage/schema_pg.c and the PostgreSQL side of every statement whose
 * text storage/dialect.h or a cast made portable: the schema at version 11
 * is SQLite's, table for table and key for key, and the units of work that
 * run those statements give on a real server (tests/common/pgserver.h) what
 * they give on SQLite. */
#include <check.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/uuid.h"
#include "pipeline/plan.h"
#include "storage/agents.h"
#include "storage/audit.h"
#include "storage/deployments.h"
#include "storage/executions.h"
#include "storage/inferences.h"
#include "storage/jobs.h"
#include "storage/maintenance.h"
#include "storage/tokens.h"
#include "storage/trainings.h"
#include "storage/versions.h"
#include "tests/common/pgserver.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_schema_pg_suite(void);

/* A fresh database (its URL in pg_url), migrated by storage_open_url; `icu` makes its default
 * collation ICU's English, which sorts "_" and lower case before upper case,
 * unlike the bytewise order SQLite keeps. Returns the thread's connection. */
static char pg_url[512];

static storage_conn *pg_open_fresh(int icu)
{
    static atomic_int seq;
    char name[64], *url = pg_url;
    snprintf(name, sizeof(name), "dialect_%d_%d", (int)getpid(), atomic_fetch_add(&seq, 1));
    ad_log_set_level(AD_LOG_WARN);
    if (icu) {
        char conninfo[400], sql[256];
        snprintf(conninfo, sizeof(conninfo), "host=%s port=%d user=agentd dbname=postgres", storage_fixture_pg_server.dir,
                 storage_fixture_pg_server.port);
        snprintf(sql, sizeof(sql),
                 "CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu"
                 " ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'", name);
        PGconn *pc = PQconnectdb(conninfo);
        ck_assert_msg(PQstatus(pc) == CONNECTION_OK, "%s", PQerrorMessage(pc));
        PGresult *r = PQexec(pc, sql);
        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(pc));
        PQclear(r);
        PQfinish(pc);
        snprintf(url, sizeof(pg_url), "postgresql://agentd@/%s?host=%s&port=%d", name, storage_fixture_pg_server.dir, storage_fixture_pg_server.port);
    } else {
        ck_assert_int_eq(pgserver_create_db(&storage_fixture_pg_server, name, url, sizeof(pg_url)), 0);
    }
    ad_err e = {0};
    ck_assert_msg(storage_open_url(url, &e) == 0, "storage_open_url: %s", e.msg);
    storage_conn *db = storage_conn_get();
    ck_assert_ptr_nonnull(db);
    return db;
}


static int lines_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The rows of one-text-column queries, sorted and joined by newlines: a
 * schema's description. */
static char *describe(storage_conn *db, const char *const *queries, size_t n)
{
    char **lines = NULL;
    size_t count = 0, cap = 0, total = 1;
    for (size_t q = 0; q < n; q++) {
        sql_stmt *st = storage_stmt(db, queries[q]);
        int rc;
        while ((rc = sql_step(st)) == SQL_ROW) {
            const char *s = sql_column_text(st, 0);
            if (!s) continue;
            if (count == cap) {
                cap = cap ? cap * 2 : 256;
                lines = ad_realloc(lines, ad_size_mul(cap, sizeof(*lines)));
            }
            lines[count++] = ad_strdup(s);
            total = ad_size_add(total, strlen(s) + 1);
        }
        ck_assert_msg(rc == SQL_DONE, "%s: %s", queries[q], db->errmsg);
        sql_reset(st);
    }
    qsort(lines, count, sizeof(*lines), lines_cmp);
    char *out = ad_malloc(total), *p = out;
    for (size_t i = 0; i < count; i++) {
        p += sprintf(p, "%s\n", lines[i]);
        free(lines[i]);
    }
    *p = '\0';
    free(lines);
    return out;
}

/* Each backend's catalog, described in the same words: every column (its
 * position, type as PostgreSQL names it, nullability and default), primary
 * key, index (its columns, uniqueness, partiality, and name when made by
 * CREATE INDEX), foreign key with its ON DELETE, and CHECK, one line each. */
static const char *const lite_catalog[] = {
    "SELECT 'column ' || m.name || '.' || p.name || ' #' || p.cid || ' ' ||"
    " CASE upper(p.type) WHEN 'INTEGER' THEN 'bigint' WHEN 'TEXT' THEN 'text'"
    "   WHEN 'REAL' THEN 'double precision' WHEN 'BLOB' THEN 'bytea' ELSE p.type END ||"
    " CASE WHEN p.\"notnull\" OR p.pk > 0 THEN ' not null' ELSE '' END ||"
    " coalesce(' default ' || p.dflt_value, '')"
    " FROM sqlite_schema m JOIN pragma_table_info(m.name) p"
    " WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite%'",
    "SELECT 'primary key ' || m.name || ' (' || (SELECT group_concat(name, ',') FROM"
    "   (SELECT name FROM pragma_table_info(m.name) WHERE pk > 0 ORDER BY pk)) || ')'"
    " FROM sqlite_schema m WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite%'",
    "SELECT 'index ' || m.name || ' (' || (SELECT group_concat(name, ',') FROM"
    "   (SELECT name FROM pragma_index_info(l.name) ORDER BY seqno)) || ')' ||"
    " CASE WHEN l.\"unique\" THEN ' unique' ELSE '' END || CASE WHEN l.partial THEN ' partial' ELSE '' END ||"
    " CASE WHEN l.origin = 'c' THEN ' ' || l.name ELSE '' END"
    " FROM sqlite_schema m JOIN pragma_index_list(m.name) l"
    " WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite%' AND l.origin <> 'pk'",
    "SELECT 'foreign key ' || m.name || '.' || f.\"from\" || ' -> ' || f.\"table\" || '.' || f.\"to\" ||"
    " ' on delete ' || lower(f.on_delete)"
    " FROM sqlite_schema m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
    "SELECT 'check ' || m.name FROM sqlite_schema m WHERE m.type = 'table' AND m.sql LIKE '%CHECK (%'",
};

/* agentd_schema is the driver's record of the version, not a table of the
 * schema. */
#define PG_INDEX_COLUMNS                                                                        \
    "(SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)" \
    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)"
static const char *const pg_catalog[] = {
    "SELECT 'column ' || c.table_name || '.' || c.column_name || ' #' || (c.ordinal_position - 1) || ' ' ||"
    " c.data_type || CASE WHEN c.is_nullable = 'NO' THEN ' not null' ELSE '' END ||"
    " coalesce(' default ' || regexp_replace(c.column_default, '::[a-z ]+$', ''), '')"
    " FROM information_schema.columns c WHERE c.table_schema = 'public' AND c.table_name <> 'agentd_schema'",
    "SELECT 'primary key ' || t.relname || ' (' || " PG_INDEX_COLUMNS " || ')'"
    " FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace s ON s.oid = t.relnamespace"
    " WHERE s.nspname = 'public' AND i.indisprimary AND t.relname <> 'agentd_schema'",
    "SELECT 'index ' || t.relname || ' (' || " PG_INDEX_COLUMNS " || ')' ||"
    " CASE WHEN i.indisunique THEN ' unique' ELSE '' END ||"
    " CASE WHEN i.indpred IS NOT NULL THEN ' partial' ELSE '' END ||"
    " CASE WHEN NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid"
    "   AND k.contype IN ('p', 'u')) THEN ' ' || x.relname ELSE '' END"
    " FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid"
    " JOIN pg_namespace s ON s.oid = t.relnamespace WHERE s.nspname = 'public' AND NOT i.indisprimary",
    "SELECT 'foreign key ' || t.relname || '.' || a.attname || ' -> ' || r.relname || '.' || ra.attname ||"
    " ' on delete ' || CASE k.confdeltype WHEN 'c' THEN 'cascade' WHEN 'n' THEN 'set null'"
    "   WHEN 'a' THEN 'no action' WHEN 'r' THEN 'restrict' ELSE 'set default' END"
    " FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid"
    " JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]"
    " JOIN pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = k.confkey[1]"
    " WHERE k.contype = 'f'",
    "SELECT 'check ' || t.relname FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid"
    " JOIN pg_namespace s ON s.oid = t.relnamespace WHERE s.nspname = 'public' AND k.contype = 'c'",
};

START_TEST(test_pg_schema_is_sqlites)
{
    storage_fixture f;
    storage_fixture_open(&f);
    char *lite = describe(f.db, lite_catalog, sizeof(lite_catalog) / sizeof(lite_catalog[0]));
    storage_fixture_close(&f);

    storage_conn *db = pg_open_fresh(0);
    char *pg = describe(db, pg_catalog, sizeof(pg_catalog) / sizeof(pg_catalog[0]));
    /* Text in keys and indexes compares bytewise, as SQLite's does. */
    int64_t not_c = storage_fixture_int(db,
        "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
        " JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace s ON s.oid = t.relnamespace"
        " WHERE s.nspname = 'public' AND a.atttypid = 'text'::regtype"
        " AND a.attcollation <> (SELECT oid FROM pg_collation WHERE collname = 'C')", 0);
    storage_close();
    ck_assert_ptr_nonnull(strstr(lite, "column agents.user_id #1 text not null\n"));
    ck_assert_msg(strcmp(lite, pg) == 0, "the schemas differ:\n--- SQLite\n%s--- PostgreSQL\n%s", lite, pg);
    ck_assert_int_eq(not_c, 0);
    free(lite);
    free(pg);
}
END_TEST

/* An agent; with `quality` >= 0, its pipeline job done and a deployed
 * version of that quality. */
static int64_t make_agent(storage_conn *db, const char *user_id, double quality)
{
    static const char material[] = "some material";
    agent_new a = {.user_id = user_id, .source = "text", .material = material,
                   .material_len = sizeof(material) - 1};
    pipeline_plan_agent(&a);
    int64_t id = 0, vid = 0;
    ad_err e = {0};
    ck_assert_msg(storage_agents_create(db, &a, &id, &e) == 0, "create %s: %s", user_id, e.msg);
    if (quality < 0) return id;
    sql_stmt *st = storage_stmt(db, "UPDATE jobs SET state = 'done' WHERE agent_id = ?1");
    sql_bind_int64(st, 1, id);
    ck_assert_int_eq(sql_step(st), SQL_DONE);
    ck_assert_int_eq(storage_versions_create(db, id, "v1", "en", "{}", "p", "[]", &vid, &e), 0);
    ck_assert_int_eq(storage_versions_set_metrics(db, vid, "{}", quality, &e), 0);
    st = storage_stmt(db, "UPDATE agents SET deployed_version_id = ?2 WHERE id = ?1");
    sql_bind_int64(st, 1, id);
    sql_bind_int64(st, 2, vid);
    ck_assert_int_eq(sql_step(st), SQL_DONE);
    return id;
}

typedef struct names {
    char got[8][80];
    int n;
} names;

static void add_agent_name(void *ud, const agent_row *a)
{
    names *l = ud;
    if (l->n < 8) snprintf(l->got[l->n++], sizeof(l->got[0]), "%s", a->user_id);
}

static void add_training_name(void *ud, const agent_training *a)
{
    names *l = ud;
    if (l->n < 8) snprintf(l->got[l->n++], sizeof(l->got[0]), "%s", a->user_id);
}

START_TEST(test_pg_text_keys_sort_bytewise)
{
    /* In a database whose own collation puts "_x" and "a" before "B". */
    storage_conn *db = pg_open_fresh(1);
    const char *ids[] = {"b", "_x", "a", "B"};
    for (int i = 0; i < 4; i++) make_agent(db, ids[i], -1);
    ad_err e = {0};
    names l = {0};
    int more = 0;
    int64_t total = 0;
    ck_assert_int_eq(storage_agents_list(db, NULL, NULL, NULL, 2, add_agent_name, &l, &more, &total, &e), 0);
    ck_assert_int_eq(l.n, 2);
    ck_assert_str_eq(l.got[0], "B");
    ck_assert_str_eq(l.got[1], "_x");
    ck_assert_int_eq(more, 1);
    ck_assert_int_eq(total, 4);
    /* The next page starts past the cursor in the same order. */
    l.n = 0;
    ck_assert_int_eq(storage_agents_list(db, NULL, NULL, "_x", 2, add_agent_name, &l, &more, &total, &e), 0);
    ck_assert_int_eq(l.n, 2);
    ck_assert_str_eq(l.got[0], "a");
    ck_assert_str_eq(l.got[1], "b");
    ck_assert_int_eq(more, 0);
    l.n = 0;
    ck_assert_int_eq(storage_training_each(db, NULL, "B", 10, add_training_name, &l, &more, &e), 0);
    ck_assert_int_eq(l.n, 3);
    ck_assert_str_eq(l.got[0], "_x");
    ck_assert_str_eq(l.got[2], "b");
    storage_close();
}
END_TEST

static void count_audit(void *ud, const audit_row *r)
{
    (void)r;
    (*(int *)ud)++;
}

static void count_tokens(void *ud, const token_row *t)
{
    (void)t;
    (*(int *)ud)++;
}

static void count_feedback(void *ud, const feedback_row *f)
{
    ck_assert_int_eq(f->rating, 0);
    (*(int *)ud)++;
}

START_TEST(test_pg_lists_limited_and_paged)
{
    storage_conn *db = pg_open_fresh(0);
    int64_t ann = make_agent(db, "ann", 0.9);
    make_agent(db, "bob", 0.4);
    make_agent(db, "cy", -1);
    ad_err e = {0};
    /* Limited to the agents of a JSON array of user_ids. */
    names l = {0};
    int more = 0;
    int64_t total = 0;
    ck_assert_int_eq(storage_agents_list(db, NULL, "[\"cy\",\"ann\",\"nobody\"]", NULL, 10, add_agent_name, &l,
                                         &more, &total, &e), 0);
    ck_assert_int_eq(total, 2);
    ck_assert_int_eq(l.n, 2);
    ck_assert_str_eq(l.got[0], "ann");
    ck_assert_str_eq(l.got[1], "cy");
    agent_state ready = AGENT_INITIALIZING;
    l.n = 0;
    ck_assert_int_eq(storage_agents_list(db, &ready, "[\"cy\",\"ann\"]", NULL, 10, add_agent_name, &l, &more,
                                         &total, &e), 0);
    ck_assert_int_eq(total, 2);
    training_totals t;
    ck_assert_int_eq(storage_training_totals(db, 0.8, NULL, &t, &e), 0);
    ck_assert_int_eq(t.total_users, 3);
    ck_assert_int_eq(t.users_with_metrics, 2);
    ck_assert(t.average_quality > 0.649 && t.average_quality < 0.651);
    ck_assert_int_eq(t.high_performers, 1);
    ck_assert_int_eq(storage_training_totals(db, 0.8, "[\"bob\",\"cy\"]", &t, &e), 0);
    ck_assert_int_eq(t.total_users, 2);
    ck_assert_int_eq(t.high_performers, 0);
    l.n = 0;
    ck_assert_int_eq(storage_training_each(db, "[\"bob\"]", NULL, 10, add_training_name, &l, &more, &e), 0);
    ck_assert_int_eq(l.n, 1);
    ck_assert_str_eq(l.got[0], "bob");

    /* Pages by id: 0 is "from the newest". */
    for (int i = 0; i < 3; i++) {
        audit_entry a = {.actor = "admin", .action = i ? "token.created" : "agent.deleted"};
        ck_assert_int_eq(storage_audit_add(db, &a, &e), 0);
    }
    int n = 0;
    ck_assert_int_eq(storage_audit_list(db, NULL, 0, 2, count_audit, &n, &more, &e), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(more, 1);
    n = 0;
    ck_assert_int_eq(storage_audit_list(db, "token.created", 0, 10, count_audit, &n, &more, &e), 0);
    ck_assert_int_eq(n, 2);
    unsigned char hash[TOKEN_HASH_LEN] = {1};
    token_new tn = {.name = "t", .scopes = 1, .created_by = "admin"};
    int64_t tid = 0;
    ck_assert_int_eq(storage_tokens_create(db, &tn, "pfx1", hash, NULL, &tid, &e), 0);
    ck_assert_int_eq(storage_tokens_create(db, &tn, "pfx2", hash, NULL, &tid, &e), 0);
    n = 0;
    ck_assert_int_eq(storage_tokens_list(db, 0, 10, count_tokens, &n, &more, &e), 0);
    ck_assert_int_eq(n, 2);
    n = 0;
    ck_assert_int_eq(storage_tokens_list(db, tid, 10, count_tokens, &n, &more, &e), 0);
    ck_assert_int_eq(n, 1);
    /* A rating of 0 is stored as none. */
    int64_t fid = 0;
    ck_assert_int_eq(storage_feedback_add(db, ann, "p", "r", "f", 0, &fid, &e), 0);
    ck_assert_int_eq(storage_feedback_add(db, ann, "p", "r", "f", 0, &fid, &e), 0);
    ck_assert_int_eq(storage_fixture_int(db, "SELECT count(*) FROM feedback WHERE rating IS NULL", 0), 2);
    n = 0;
    ck_assert_int_eq(storage_feedback_each(db, ann, 0, 10, count_feedback, &n, &e), 0);
    ck_assert_int_eq(n, 2);
    n = 0;
    ck_assert_int_eq(storage_feedback_each(db, ann, fid, 10, count_feedback, &n, &e), 0);
    ck_assert_int_eq(n, 1);
    storage_close();
}
END_TEST

typedef struct runs_seen {
    double best[2];
    int n;
} runs_seen;

static void note_run(void *ud, const group_run *r)
{
    runs_seen *s = ud;
    if (s->n < 2) s->best[s->n++] = r->best_quality;
}

START_TEST(test_pg_training_groups_read_their_json)
{
    storage_conn *db = pg_open_fresh(0);
    int64_t ann = make_agent(db, "ann", 0.5);
    int64_t bob = make_agent(db, "bob", 0.5);
    ad_err e = {0};
    const char *both[] = {"ann", "bob"};
    group_refusal why[2];
    int64_t gid = 0;
    ck_assert_int_eq(storage_groups_start(db, both, 2, 3, PIPELINE_JOB_TRAIN, &gid, why, &e), 0);
    group_row g;
    ck_assert_int_eq(storage_groups_latest(db, "[\"bob\"]", &g, &e), 0);
    ck_assert_int_eq(g.id, gid);
    ck_assert_int_eq(storage_groups_latest(db, "[\"nobody\"]", &g, &e), AD_ENOTFOUND);
    /* A second group is refused: the agents are busy (the CASE columns). */
    ck_assert_int_eq(storage_groups_start(db, both, 2, 3, PIPELINE_JOB_TRAIN, &gid, why, &e), AD_ESTATE);
    ck_assert_int_eq(why[0], GROUP_BUSY);

    training_row tr;
    ck_assert_int_eq(storage_trainings_get(db, ann, 0, &tr, &e), 0);
    training_row_cleanup(&tr);
    ck_assert_int_eq(storage_trainings_start(db, tr.id, 0, &e), 0);
    ck_assert_int_eq(storage_trainings_add_iteration(db, tr.id, 0, 1, "{}", "{\"quality_score\":0.75}", 3, &e), 0);
    ck_assert_int_eq(storage_trainings_add_iteration(db, tr.id, 0, 2, "{}", "{\"quality_score\":0.25}", 3, &e), 0);
    runs_seen seen = {0};
    ck_assert_int_eq(storage_groups_runs(db, g.id, note_run, &seen, &e), 0);
    ck_assert_int_eq(seen.n, 2);
    ck_assert(seen.best[0] == 0.75);
    ck_assert(seen.best[1] == -1);

    /* Stopping ann's run cancels her job (found by the run id in its
     * params), not bob's. */
    int stopped = 0;
    int64_t stopped_gid = 0, at = 0;
    ck_assert_int_eq(storage_groups_stop(db, "stopped", "[\"ann\"]", &stopped_gid, &stopped, &at, NULL, NULL, &e),
                     0);
    ck_assert_int_eq(stopped, 1);
    ck_assert_int_eq(storage_fixture_int(db, "SELECT count(*) FROM jobs WHERE agent_id = ?1 AND state = 'cancelled'", ann), 1);
    ck_assert_int_eq(storage_fixture_int(db, "SELECT count(*) FROM jobs WHERE agent_id = ?1 AND state = 'queued'", bob), 1);
    /* A run's end keeps no best iteration nor version for 0. */
    ck_assert_int_eq(storage_trainings_get(db, bob, 0, &tr, &e), 0);
    training_row_cleanup(&tr);
    ck_assert_int_eq(storage_trainings_finish(db, tr.id, TRAINING_FAILED, 0, 0, NULL, "why", &e), 0);
    ck_assert_int_eq(storage_fixture_int(db, "SELECT count(*) FROM trainings WHERE id = ?1 AND best_iteration IS NULL"
                                 " AND version_id IS NULL", tr.id), 1);
    storage_close();
}
END_TEST

START_TEST(test_pg_stage_samples)
{
    storage_conn *db = pg_open_fresh(0);
    make_agent(db, "ann", -1);
    make_agent(db, "bob", -1);
    ad_err e = {0};
    /* Two completed first stages: their summed durations and sizes. */
    sql_stmt *st = storage_stmt(db, "UPDATE executions SET status = 'completed', duration_ms = 40 + ?1,"
                                    " finished_at = 1000 + ?1 WHERE task_index = 0");
    sql_bind_int64(st, 1, 2);
    ck_assert_int_eq(sql_step(st), SQL_DONE);
    exec_stage_sample s[4];
    ck_assert_int_eq(storage_exec_stage_samples(db, 4, 10, 1, s, &e), 0);
    ck_assert_int_eq(s[0].count, 2);
    ck_assert_int_eq(s[0].total_ms, 84);
    ck_assert_int_eq(s[0].total_bytes, 2 * (int64_t)strlen("some material"));
    ck_assert_int_eq(s[1].count, 0);
    storage_close();
}
END_TEST

START_TEST(test_pg_recorder_skips_a_deleted_agent)
{
    storage_conn *db = pg_open_fresh(0);
    int64_t ann = make_agent(db, "ann", -1);
    int64_t bob = make_agent(db, "bob", -1);
    /* The recorder's batch: a record for an agent that is gone writes
     * nothing and costs the others nothing. */
    storage_inferences_start();
    inference_record r = {.agent_id = ann, .backend = "local", .status = 200, .outcome = "ok", .latency_ms = 5,
                          .prompt_tokens = 3, .output_tokens = 4};
    storage_inferences_submit(&r);
    r.agent_id = bob + 1000;
    storage_inferences_submit(&r);
    r.agent_id = bob;
    storage_inferences_submit(&r);
    storage_inferences_flush();
    storage_inferences_stop();
    ck_assert_int_eq(storage_fixture_int(db, "SELECT count(*) FROM inferences", 0), 2);
    ck_assert_int_eq(storage_fixture_int(db, "SELECT inference_count FROM agents WHERE id = ?1", ann), 1);
    storage_close();
}
END_TEST

START_TEST(test_pg_logs_pruned)
{
    storage_conn *db = pg_open_fresh(0);
    make_agent(db, "ann", -1);
    int64_t bob = make_agent(db, "bob", -1);
    ad_err e = {0};
    inference_record r = {.agent_id = bob, .backend = "local", .status = 200, .outcome = "ok", .latency_ms = 5,
                          .prompt_tokens = 3, .output_tokens = 4};
    ck_assert_int_eq(storage_inferences_record(db, &r, &e), 0);

    /* Pruned by rows per agent, then by age. */
    for (int i = 0; i < 3; i++) ck_assert_int_eq(storage_inferences_record(db, &r, &e), 0);
    storage_retention keep = {.max_rows_per_agent = 2};
    int64_t removed = 0;
    ck_assert_int_eq(storage_prune_logs(db, &keep, NULL, &removed, &e), 0);
    ck_assert_int_eq(removed, 2);
    ck_assert_int_eq(storage_fixture_int(db, "SELECT count(*) FROM inferences WHERE agent_id = ?1", bob), 2);
    usleep(5000);
    keep = (storage_retention){.max_age_ms = 1};
    ck_assert_int_eq(storage_prune_logs(db, &keep, NULL, &removed, &e), 0);
    ck_assert_int_eq(storage_fixture_int(db, "SELECT count(*) FROM inferences", 0), 0);
    storage_close();
}
END_TEST

/* Puts `version_id` live for `agent_id`, forced. */
static void deploy(storage_conn *db, int64_t agent_id, int64_t version_id, char uuid[AD_UUID_LEN])
{
    ad_uuid_v4(uuid);
    version_verdict v = {.agent_id = agent_id, .version_id = version_id, .deploy = 1, .note = "test",
                         .expected_deployed = storage_fixture_int(db, "SELECT coalesce(deployed_version_id, 0) FROM agents"
                                                          " WHERE id = ?1", agent_id),
                         .uuid = uuid, .created_by = "system", .actor = "system", .forced = 1};
    ad_err e = {0};
    ck_assert_msg(storage_deployments_push(db, &v, &e) == 0, "%s", e.msg);
}

START_TEST(test_pg_deployment_removed_rolls_back)
{
    storage_conn *db = pg_open_fresh(0);
    int64_t ann = make_agent(db, "ann", 0.5);
    int64_t v1 = storage_fixture_int(db, "SELECT deployed_version_id FROM agents WHERE id = ?1", ann), v2 = 0;
    ad_err e = {0};
    ck_assert_int_eq(storage_versions_create(db, ann, "v2", "en", "{}", "p", "[]", &v2, &e), 0);
    char first[AD_UUID_LEN], second[AD_UUID_LEN];
    deploy(db, ann, v1, first);
    deploy(db, ann, v2, second);
    ck_assert_int_eq(storage_fixture_int(db, "SELECT count(*) FROM deployments WHERE replaced_id IS NOT NULL", 0), 1);
    deployment_row d;
    ck_assert_int_eq(storage_deployments_remove(db, ann, second, "admin", NULL, &d, &e), 0);
    deployment_row_cleanup(&d);
    ck_assert_int_eq(storage_fixture_int(db, "SELECT deployed_version_id FROM agents WHERE id = ?1", ann), v1);
    storage_close();
}
END_TEST

typedef struct reset_call {
    int64_t agent_id;
    atomic_int done;
    int rc;
} reset_call;

static void *reset_thread(void *arg)
{
    reset_call *c = arg;
    int count = 0;
    ad_err e = {0};
    c->rc = storage_exec_reset(storage_conn_get(), c->agent_id, &count, &e);
    atomic_store(&c->done, 1);
    storage_thread_release();
    return NULL;
}

START_TEST(test_pg_reset_waits_for_a_job_being_queued)
{
    storage_conn *db = pg_open_fresh(0);
    int64_t ann = make_agent(db, "ann", 0.5);
    sql_stmt *st = storage_stmt(db, "UPDATE executions SET status = 'completed' WHERE agent_id = ?1");
    sql_bind_int64(st, 1, ann);
    ck_assert_int_eq(sql_step(st), SQL_DONE);
    /* A replay's job, queued by a single insert (no unit of work) that has
     * not committed yet. */
    PGconn *other = PQconnectdb(pg_url);
    ck_assert_msg(PQstatus(other) == CONNECTION_OK, "%s", PQerrorMessage(other));
    char sql[256];
    snprintf(sql, sizeof(sql), "BEGIN; INSERT INTO jobs (agent_id, kind, start_stage, state, created_at, updated_at)"
             " VALUES (%lld, 'replay', 1, 'queued', 0, 0)", (long long)ann);
    PGresult *r = PQexec(other, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(other));
    PQclear(r);
    reset_call call = {.agent_id = ann};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, reset_thread, &call), 0);
    usleep(300 * 1000);
    /* The reset waits for the insert, then sees its job and resets nothing. */
    int waited = !atomic_load(&call.done);
    r = PQexec(other, "COMMIT");
    PQclear(r);
    pthread_join(t, NULL);
    PQfinish(other);
    ck_assert_int_eq(waited, 1);
    ck_assert_int_eq(call.rc, AD_ECONFLICT);
    ck_assert_int_eq(storage_fixture_int(db, "SELECT count(*) FROM executions WHERE agent_id = ?1 AND status = 'pending'", ann),
                     0);
    storage_close();
}
END_TEST

Suite *storage_schema_pg_suite(void)
{
    Suite *s = suite_create("storage_schema_pg");
    TCase *tc = tcase_create("schema_pg");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, storage_fixture_pg_start, storage_fixture_pg_stop);
    tcase_add_test(tc, test_pg_schema_is_sqlites);
    tcase_add_test(tc, test_pg_text_keys_sort_bytewise);
    tcase_add_test(tc, test_pg_lists_limited_and_paged);
    tcase_add_test(tc, test_pg_training_groups_read_their_json);
    tcase_add_test(tc, test_pg_stage_samples);
    tcase_add_test(tc, test_pg_recorder_skips_a_deleted_agent);
    tcase_add_test(tc, test_pg_logs_pruned);
    tcase_add_test(tc, test_pg_deployment_removed_rolls_back);
    tcase_add_test(tc, test_pg_reset_waits_for_a_job_being_queued);
    suite_add_tcase(s, tc);
    return s;
}
