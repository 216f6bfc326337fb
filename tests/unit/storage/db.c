/* Tests storage/db.c: creation, migrations, reopening, and refusing a newer schema. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pipeline/plan.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/maintenance.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_db_suite(void);

static int64_t user_version(storage_conn *db)
{
    return storage_fixture_count(db, "PRAGMA user_version", 0);
}

START_TEST(test_storage_open_creates_and_migrates)
{
    storage_fixture f;
    storage_fixture_open(&f);
    struct stat sb;
    char path[160];
    snprintf(path, sizeof(path), "%s/agentd.db", f.data_dir);
    ck_assert_int_eq(stat(f.data_dir, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_ge(storage_schema_version(), 1);
    ck_assert_int_eq(user_version(f.db), storage_schema_version());
    static const char *const tables[] = {"agents",   "materials",        "jobs",
                                         "executions", "units",          "versions",
                                         "version_passages", "version_terms", "version_index"};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        ck_assert_msg(storage_fixture_count_text(f.db, "SELECT count(*) FROM sqlite_schema"
                                                       " WHERE type = 'table' AND name = ?1",
                                                 tables[i]) == 1,
                      "table %s missing", tables[i]);
    /* The shared FTS5 index of schemas 1 to 5 is gone. */
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT count(*) FROM sqlite_schema WHERE name = ?1",
                                                "passages"), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "PRAGMA foreign_keys", 0), 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM jobs WHERE id > ?1", 0), 0);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_storage_reopen_is_idempotent)
{
    storage_fixture f;
    storage_fixture_open(&f);
    agent_new a = {.user_id = "keep", .source = "text", .material = "hello", .material_len = 5};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ck_assert_int_eq(storage_agents_create(f.db, &a, &id, NULL), 0);
    storage_close();

    for (int round = 0; round < 2; round++) {
        ad_err e = {0};
        ck_assert_msg(storage_open(f.data_dir, &e) == 0, "reopen: %s", e.msg);
        storage_conn *db = storage_conn_get();
        ck_assert_ptr_nonnull(db);
        ck_assert_int_eq(user_version(db), storage_schema_version());
        agent_row row;
        ck_assert_int_eq(storage_agents_get(db, "keep", &row, NULL), 0);
        ck_assert_int_eq(row.id, id);
        agent_row_cleanup(&row);
        storage_close();
    }
    f.db = NULL;
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_storage_refuses_newer_schema)
{
    storage_fixture f;
    storage_fixture_open(&f);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", storage_schema_version() + 1);
    ck_assert_int_eq(sqlite3_exec(f.db->db, sql, NULL, NULL, NULL), SQLITE_OK);
    storage_close();

    ad_err e = {0};
    int rc = storage_open(f.data_dir, &e);
    ck_assert_int_lt(rc, 0);
    ck_assert_int_eq(rc, e.code);
    ck_assert_msg(strstr(e.msg, "newer") != NULL, "message: %s", e.msg);
    /* The refused database is left as it was. */
    storage_conn *db = storage_conn_get();
    ck_assert_ptr_nonnull(db);
    ck_assert_int_eq(user_version(db), storage_schema_version() + 1);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_storage_open_fails_on_unusable_dir)
{
    ad_err e = {0};
    /* A data dir whose parent does not exist. */
    int rc = storage_open("/nonexistent-agentd-parent/data", &e);
    ck_assert_int_eq(rc, AD_EIO);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent-agentd-parent/data"));
    storage_close();
}
END_TEST


/* A file a release of schema 4 made: the later migrations undone, no
 * auto-vacuum (SQLite's default). */
static void make_previous_release_file(const char *data_dir)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/agentd.db", data_dir);
    sqlite3 *raw = NULL;
    ck_assert_int_eq(sqlite3_open(path, &raw), SQLITE_OK);
    const char *sql =
        "DROP TABLE deployment_events; DROP TABLE deployments;"
        "DROP TABLE token_secrets; DROP TABLE tokens; DROP TABLE audit_log;"
        "DROP TABLE version_index; DROP TABLE version_terms; DROP TABLE version_passages;"
        "ALTER TABLE agents DROP COLUMN language; ALTER TABLE agents DROP COLUMN language_requested;"
        "ALTER TABLE agents DROP COLUMN material_bytes; ALTER TABLE agents DROP COLUMN eta_at;"
        "ALTER TABLE versions DROP COLUMN language;"
        "CREATE VIRTUAL TABLE passages USING fts5(scope, question, body, answer UNINDEXED,"
        " category UNINDEXED, ord UNINDEXED, tokenize = 'unicode61 remove_diacritics 2');"
        "DROP TABLE write_probe; DROP TABLE idempotency_keys;"
        "ALTER TABLE jobs DROP COLUMN lease_owner; ALTER TABLE jobs DROP COLUMN lease_expires_at;"
        "DROP TABLE rate_windows; PRAGMA user_version = 4; PRAGMA auto_vacuum = NONE; VACUUM";
    char *msg = NULL;
    ck_assert_msg(sqlite3_exec(raw, sql, NULL, NULL, &msg) == SQLITE_OK, "%s", msg ? msg : "");
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(raw, "PRAGMA auto_vacuum", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(raw);
}

START_TEST(test_previous_release_file_is_converted_to_auto_vacuum)
{
    storage_fixture f;
    storage_fixture_open(&f);
    static char material[1 << 20];
    memset(material, 'x', sizeof(material));
    agent_new a = {.user_id = "old", .source = "text", .material = material, .material_len = sizeof(material)};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ck_assert_int_eq(storage_agents_create(f.db, &a, &id, NULL), 0);
    storage_close();
    make_previous_release_file(f.data_dir);

    ad_err e = {0};
    ck_assert_msg(storage_open(f.data_dir, &e) == 0, "open the previous release's file: %s", e.msg);
    storage_conn *db = storage_conn_get();
    f.db = db;
    ck_assert_int_eq(user_version(db), storage_schema_version());
    ck_assert_int_eq(storage_fixture_count(db, "PRAGMA auto_vacuum", 0), 2);
    ck_assert_int_eq(storage_fixture_count_text(db, "SELECT count(*) FROM sqlite_schema WHERE name = ?1",
                                                "write_probe"), 1);
    agent_row row;
    ck_assert_int_eq(storage_agents_get(db, "old", &row, NULL), 0);
    ck_assert_int_eq(row.id, id);
    agent_row_cleanup(&row);

    /* Its freed pages now go back to the file system. */
    int64_t pages = storage_fixture_count(db, "PRAGMA page_count", 0);
    ck_assert_int_eq(storage_agents_delete(db, "old", NULL, &id, NULL), 0);
    ck_assert_int_gt(storage_fixture_count(db, "PRAGMA freelist_count", 0), 0);
    ck_assert_int_eq(storage_reclaim_space(db, 1, &e), 0);
    ck_assert_int_eq(storage_fixture_count(db, "PRAGMA freelist_count", 0), 0);
    /* At least 90% of the material's bytes left the file (whatever the page size). */
    int64_t page_size = storage_fixture_count(db, "PRAGMA page_size", 0);
    int64_t freed = (pages - storage_fixture_count(db, "PRAGMA page_count", 0)) * page_size;
    ck_assert_int_ge(freed, (int64_t)sizeof(material) * 9 / 10);
    storage_fixture_close(&f);
}
END_TEST

/* tests/data/schema9.sql: the release before migration 10. Opened, the
 * agents get their material's size in bytes (not characters) and no eta;
 * status, reads and the list work on them, and the deployed quality shows. */
START_TEST(test_schema9_database_gets_material_bytes)
{
    storage_fixture f;
    memset(&f, 0, sizeof(f));
    snprintf(f.root, sizeof(f.root), "/tmp/agentd-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f.root));
    snprintf(f.data_dir, sizeof(f.data_dir), "%s/data", f.root);
    ck_assert_int_eq(mkdir(f.data_dir, 0750), 0);
    FILE *in = fopen("tests/data/schema9.sql", "rb");
    ck_assert_msg(in != NULL, "tests/data/schema9.sql not found (run from the repository root)");
    static char dump[256 * 1024];
    size_t n = fread(dump, 1, sizeof(dump) - 1, in);
    ck_assert(feof(in));
    fclose(in);
    dump[n] = '\0';
    char path[160];
    snprintf(path, sizeof(path), "%s/agentd.db", f.data_dir);
    sqlite3 *raw = NULL;
    ck_assert_int_eq(sqlite3_open(path, &raw), SQLITE_OK);
    char *msg = NULL;
    ck_assert_msg(sqlite3_exec(raw, dump, NULL, NULL, &msg) == SQLITE_OK, "load: %s", msg ? msg : "");
    sqlite3_close(raw);

    ad_err e = {0};
    ck_assert_msg(storage_open(f.data_dir, &e) == 0, "open the schema 9 file: %s", e.msg);
    f.db = storage_conn_get();
    ck_assert_int_eq(user_version(f.db), storage_schema_version());
    ck_assert_int_ge(storage_schema_version(), 10);
    /* 317 characters of German in 340 bytes, and 111 of ASCII. */
    ck_assert_int_eq(storage_fixture_count_text(f.db, "SELECT length(body) FROM materials m JOIN agents a"
                                                      " ON a.id = m.agent_id WHERE a.user_id = ?1", "old_umlauts"), 317);
    agent_row row;
    ck_assert_int_eq(storage_agents_get(f.db, "old_umlauts", &row, &e), 0);
    ck_assert_int_eq(row.material_bytes, 340);
    /* Its version scored 0 (the dump's one derived query missed): a quality, not none. */
    ck_assert_int_eq(row.has_quality, 1);
    ck_assert_double_eq_tol(row.quality, 0, 1e-9);
    agent_row_cleanup(&row);
    ck_assert_int_eq(storage_agents_get(f.db, "old_ascii", &row, &e), 0);
    ck_assert_int_eq(row.material_bytes, 111);
    ck_assert_double_eq_tol(row.quality, 1, 1e-9);
    agent_row_cleanup(&row);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM agents WHERE eta_at IS NOT NULL", 0), 0);
    agent_status st;
    ck_assert_int_eq(storage_agents_status(f.db, "old_umlauts", &st, &e), 0);
    ck_assert_int_eq(st.status, AGENT_READY);
    ck_assert_int_eq(st.eta_at, 0);
    ck_assert_int_eq(st.training_id, 0);
    storage_fixture_close(&f);
}
END_TEST

static void *read_on_borrowed_connection(void *db)
{
    agent_row row;
    storage_agents_get(db, "nobody", &row, NULL);
    return NULL;
}

/* A connection and its statement cache belong to the thread that opened it
 * (docs/threads.md): one handed to another thread is a bug that stops the
 * process at once, not a race on the cache. The assertion fires before any
 * SQL runs, so the files can go first. */
START_TEST(test_connection_used_on_another_thread_aborts)
{
    storage_fixture f;
    storage_fixture_open(&f);
    storage_fixture_remove_files(&f);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, read_on_borrowed_connection, f.db), 0);
    pthread_join(t, NULL);
    storage_fixture_close(&f);
}
END_TEST

Suite *storage_db_suite(void)
{
    Suite *s = suite_create("storage_db");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_storage_open_creates_and_migrates);
    tcase_add_test(tc, test_storage_reopen_is_idempotent);
    tcase_add_test(tc, test_storage_refuses_newer_schema);
    tcase_add_test(tc, test_storage_open_fails_on_unusable_dir);
    tcase_add_test(tc, test_previous_release_file_is_converted_to_auto_vacuum);
    tcase_add_test(tc, test_schema9_database_gets_material_bytes);
    tcase_add_test_raise_signal(tc, test_connection_used_on_another_thread_aborts, SIGABRT);
    suite_add_tcase(s, tc);
    return s;
}
