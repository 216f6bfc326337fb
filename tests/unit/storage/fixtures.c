#include "tests/unit/storage/fixtures.h"

#include "base/uuid.h"
#include "storage/deployments.h"
#include "storage/jobs.h"

#include <check.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "storage/db.h"

void storage_fixture_open(storage_fixture *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->root, sizeof(f->root), "/tmp/agentd-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->root));
    snprintf(f->data_dir, sizeof(f->data_dir), "%s/data", f->root);
    ad_log_set_level(AD_LOG_WARN);
    ad_err e = {0};
    int rc = storage_open(f->data_dir, &e);
    ck_assert_msg(rc == 0, "storage_open: %s", e.msg);
    f->db = storage_conn_get();
    ck_assert_ptr_nonnull(f->db);
    storage_jobs_set_owner(FIXTURE_REPLICA, FIXTURE_LEASE_MS);
}

int storage_fixture_claim(storage_conn *db, job_row *out, ad_err *e)
{
    return storage_jobs_claim(db, FIXTURE_REPLICA, FIXTURE_LEASE_MS, out, e);
}

static int fixture_remove(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void storage_fixture_remove_files(storage_fixture *f)
{
    if (f->root[0]) nftw(f->root, fixture_remove, 8, FTW_DEPTH | FTW_PHYS);
}

void storage_fixture_close(storage_fixture *f)
{
    storage_close();
    f->db = NULL;
    storage_fixture_remove_files(f);
}

static int64_t fixture_count(storage_conn *db, const char *sql, const int64_t *iarg, const char *targ)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db->db));
    if (sqlite3_bind_parameter_count(st) > 0) {
        if (iarg) sqlite3_bind_int64(st, 1, *iarg);
        else sqlite3_bind_text(st, 1, targ, -1, SQLITE_TRANSIENT);
    }
    rc = sqlite3_step(st);
    ck_assert_msg(rc == SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db->db));
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int64_t storage_fixture_count(storage_conn *db, const char *sql, int64_t arg)
{
    return fixture_count(db, sql, &arg, NULL);
}

int64_t storage_fixture_count_text(storage_conn *db, const char *sql, const char *arg)
{
    return fixture_count(db, sql, NULL, arg);
}

void storage_fixture_exec(storage_conn *db, const char *sql, int64_t arg)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db->db));
    if (sqlite3_bind_parameter_count(st) > 0) sqlite3_bind_int64(st, 1, arg);
    rc = sqlite3_step(st);
    ck_assert_msg(rc == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db->db));
    sqlite3_finalize(st);
}

typedef struct fixture_failure {
    const char *sql_part;
    int after_rows;
    int armed;       /* the matching statement is running */
    int rows;
    int fired;
} fixture_failure;

static fixture_failure fixture_fail;

static int fixture_fail_trace(unsigned type, void *ud, void *p, void *x)
{
    fixture_failure *f = ud;
    sqlite3_stmt *st = p;
    if (type == SQLITE_TRACE_STMT) {
        f->armed = !f->fired && strstr(sqlite3_sql(st), f->sql_part) != NULL;
        f->rows = 0;
        if (f->armed && f->after_rows == 0) {
            f->fired++;
            sqlite3_interrupt(sqlite3_db_handle(st));
        }
    } else if (type == SQLITE_TRACE_ROW && f->armed && !f->fired && ++f->rows == f->after_rows) {
        f->fired++;
        sqlite3_interrupt(sqlite3_db_handle(st));
    }
    (void)x;
    return 0;
}

int storage_fixture_fail_statement(storage_conn *db, const char *sql_part, int after_rows)
{
    int fired = fixture_fail.fired;
    fixture_fail = (fixture_failure){.sql_part = sql_part, .after_rows = after_rows};
    if (sql_part) sqlite3_trace_v2(db->db, SQLITE_TRACE_STMT | SQLITE_TRACE_ROW, fixture_fail_trace, &fixture_fail);
    else sqlite3_trace_v2(db->db, 0, NULL, NULL);
    return fired;
}

int storage_fixture_deploy(storage_conn *db, int64_t agent_id, int64_t version_id, ad_err *e)
{
    char uuid[AD_UUID_LEN];
    ad_uuid_v4(uuid);
    int64_t deployed = fixture_count(db, "SELECT coalesce(max(deployed_version_id), 0) FROM agents WHERE id = ?1",
                                     &agent_id, NULL);
    version_verdict v = {.agent_id = agent_id,
                         .version_id = version_id,
                         .deploy = 1,
                         .note = "deployed by a test",
                         .expected_deployed = deployed,
                         .uuid = uuid,
                         .created_by = "system",
                         .actor = "system",
                         .forced = 1};
    return storage_deployments_push(db, &v, e);
}

pgserver storage_fixture_pg_server;

void storage_fixture_pg_start(void)
{
    ck_assert_int_eq(pgserver_start(&storage_fixture_pg_server), 0);
}

void storage_fixture_pg_stop(void)
{
    pgserver_destroy(&storage_fixture_pg_server);
}

storage_conn *storage_fixture_pg_fresh(const char *prefix)
{
    static atomic_int seq;
    char name[64], url[512];
    snprintf(name, sizeof(name), "%s_%d_%d", prefix, (int)getpid(), atomic_fetch_add(&seq, 1));
    ad_log_set_level(AD_LOG_WARN);
    ck_assert_int_eq(pgserver_create_db(&storage_fixture_pg_server, name, url, sizeof(url)), 0);
    ad_err e = {0};
    ck_assert_msg(storage_open_url(url, &e) == 0, "storage_open_url: %s", e.msg);
    storage_conn *db = storage_conn_get();
    ck_assert_ptr_nonnull(db);
    return db;
}

int64_t storage_fixture_int(storage_conn *db, const char *sql, int64_t arg)
{
    sql_stmt *st = storage_stmt(db, sql);
    sql_bind_int64(st, 1, arg);
    ck_assert_msg(sql_step(st) == SQL_ROW, "%s: %s", sql, db->errmsg);
    int64_t v = sql_column_int64(st, 0);
    sql_reset(st);
    return v;
}
