/* Tests storage/pg.c, the PostgreSQL driver, against a real server of its
 * own (tests/common/pgserver.h), on a tiny schema of the tests' own. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "storage/conn.h"
#include "storage/db.h"
#include "storage/internal.h"
#include "storage/sql.h"
#include "tests/common/pgserver.h"

Suite *storage_pg_suite(void);

static pgserver shared;

/* The tests' schema: version 2, the first entry empty as PostgreSQL's own
 * list starts past SQLite's early versions. */
static const char *const tiny_schema[] = {
    NULL,
    "CREATE TABLE items (id BIGSERIAL PRIMARY KEY, name TEXT COLLATE \"C\" UNIQUE, n BIGINT,"
    " x DOUBLE PRECISION, b BYTEA, parent BIGINT REFERENCES items (id))",
};

static void shared_start(void)
{
    ck_assert_int_eq(pgserver_start(&shared), 0);
}

static void shared_stop(void)
{
    pgserver_destroy(&shared);
}

/* A fresh database on `s`, its URL in `url`. */
static void fresh_db(pgserver *s, char *url, size_t cap)
{
    static atomic_int seq;
    char name[64];
    snprintf(name, sizeof(name), "unit_%d_%d", (int)getpid(), atomic_fetch_add(&seq, 1));
    ck_assert_int_eq(pgserver_create_db(s, name, url, cap), 0);
}

/* Opens a fresh database on `s` with the tiny schema: the thread's connection. */
static storage_conn *open_tiny(pgserver *s, char *url, size_t cap)
{
    ad_log_set_level(AD_LOG_WARN);
    fresh_db(s, url, cap);
    pg_use_migrations(tiny_schema, sizeof(tiny_schema) / sizeof(tiny_schema[0]));
    ad_err e = {0};
    ck_assert_msg(storage_open_url(url, &e) == 0, "storage_open_url: %s", e.msg);
    storage_conn *c = storage_conn_get();
    ck_assert_ptr_nonnull(c);
    return c;
}

static void close_tiny(void)
{
    storage_close();
    pg_use_migrations(NULL, 0);
}

static int64_t count_items(storage_conn *c)
{
    sql_stmt *st = storage_stmt(c, "SELECT count(*) FROM items");
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    int64_t n = sql_column_int64(st, 0);
    sql_reset(st);
    return n;
}

START_TEST(test_pg_rewrites_numbered_parameters)
{
    char url[512];
    storage_conn *c = open_tiny(&shared, url, sizeof(url));
    /* ?1 in a literal, a quoted identifier and a comment stays as written;
     * ?2 may come before ?1; a bind past the highest is ignored. */
    sql_stmt *st = storage_stmt(c, "SELECT CAST(?2 AS TEXT) AS \"?1\", '?1 it''s', ?1 /* ?3 */ -- ?4\n");
    sql_bind_text(st, 1, "one");
    sql_bind_int64(st, 2, 42);
    sql_bind_int64(st, 3, 7);
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    ck_assert_str_eq(sql_column_text(st, 0), "42");
    ck_assert_str_eq(sql_column_text(st, 1), "?1 it's");
    ck_assert_str_eq(sql_column_text(st, 2), "one");
    ck_assert_int_eq(sql_step(st), SQL_DONE);

    /* The same statement with other types later runs (a second signature). */
    st = storage_stmt(c, "SELECT CAST(?2 AS TEXT) AS \"?1\", '?1 it''s', ?1 /* ?3 */ -- ?4\n");
    sql_bind_int64(st, 1, 5);
    sql_bind_text(st, 2, "two");
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    ck_assert_str_eq(sql_column_text(st, 0), "two");
    ck_assert_int_eq(sql_column_int64(st, 2), 5);
    sql_reset(st);

    /* A literal right after a word ending in E is no E'...' string: its
     * backslash escapes nothing, and the ?2 after it is a parameter. */
    st = storage_stmt(c, "SELECT CAST(?1 AS BIGINT) WHERE 'x\\' = CASE WHEN TRUE THEN 'x\\' ELSE'y\\' END"
                         " AND CAST(?2 AS BIGINT) = 2");
    sql_bind_int64(st, 1, 9);
    sql_bind_int64(st, 2, 2);
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    ck_assert_int_eq(sql_column_int64(st, 0), 9);
    sql_reset(st);
    close_tiny();
}
END_TEST

START_TEST(test_pg_types_round_trip)
{
    char url[512];
    storage_conn *c = open_tiny(&shared, url, sizeof(url));
    static const char blob[] = {'a', 0, 'b', 0, (char)0xff};
    struct { const char *name; int64_t n; double x; } rows[] = {
        {"max", INT64_MAX, 3.25}, {"min", INT64_MIN, -1e-300}, {"h\xc3\xa9llo \xe2\x9c\x93", 0, 0.1}};
    int64_t ids[3] = {0};
    for (int i = 0; i < 3; i++) {
        sql_stmt *st = storage_stmt(c, "INSERT INTO items (name, n, x, b) VALUES (?1, ?2, ?3, ?4) RETURNING id");
        sql_bind_text(st, 1, rows[i].name);
        sql_bind_int64(st, 2, rows[i].n);
        sql_bind_double(st, 3, rows[i].x);
        sql_bind_blob(st, 4, blob, sizeof(blob));
        ck_assert_int_eq(sql_step_id(st, &ids[i]), SQL_DONE);
        ck_assert_int_eq(sql_changes(st), 1);
    }
    ck_assert_int_gt(ids[0], 0);
    ck_assert_int_eq(ids[1], ids[0] + 1);

    sql_stmt *st = storage_stmt(c, "SELECT name, n, x, b, id FROM items WHERE id = ?1");
    for (int i = 0; i < 3; i++) {
        sql_bind_int64(st, 1, ids[i]);
        ck_assert_int_eq(sql_step(st), SQL_ROW);
        ck_assert_str_eq(sql_column_text(st, 0), rows[i].name);
        ck_assert_uint_eq(sql_column_bytes(st, 0), strlen(rows[i].name));
        ck_assert(sql_column_int64(st, 1) == rows[i].n);
        ck_assert(sql_column_double(st, 2) == rows[i].x);
        ck_assert_uint_eq(sql_column_bytes(st, 3), sizeof(blob));
        ck_assert_mem_eq(sql_column_blob(st, 3), blob, sizeof(blob));
        ck_assert_int_eq(sql_column_int64(st, 4), ids[i]);
        ck_assert_int_eq(sql_step(st), SQL_DONE);
        sql_reset(st);
    }
    /* Integers read as decimal text, as SQLite gives them. */
    sql_bind_int64(st, 1, ids[1]);
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    ck_assert_str_eq(sql_column_text(st, 1), "-9223372036854775808");
    ck_assert_str_eq(sql_column_text(st, 4), "2");
    sql_reset(st);

    /* NULL binds and reads back as NULL, 0 and 0.0; a zero-length blob is not NULL. */
    sql_stmt *ins = storage_stmt(c, "INSERT INTO items (name, n, x, b) VALUES (?1, ?2, ?3, ?4) RETURNING id");
    sql_bind_null(ins, 1);
    sql_bind_text(ins, 2, NULL);
    sql_bind_null(ins, 3);
    sql_bind_blob(ins, 4, NULL, 0);
    int64_t id = 0;
    ck_assert_int_eq(sql_step_id(ins, &id), SQL_DONE);
    sql_bind_int64(st, 1, id);
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    ck_assert(sql_column_is_null(st, 0));
    ck_assert_ptr_null(sql_column_text(st, 0));
    ck_assert_int_eq(sql_column_int64(st, 1), 0);
    ck_assert(sql_column_double(st, 2) == 0.0);
    ck_assert(!sql_column_is_null(st, 3));
    ck_assert_uint_eq(sql_column_bytes(st, 3), 0);
    sql_reset(st);

    /* A comparison reads back as 0/1; count(*) as an integer. */
    sql_stmt *cmp = storage_stmt(c, "SELECT n > 0, count(*) FROM items WHERE id = ?1 GROUP BY n");
    sql_bind_int64(cmp, 1, ids[0]);
    ck_assert_int_eq(sql_step(cmp), SQL_ROW);
    ck_assert_int_eq(sql_column_int(cmp, 0), 1);
    ck_assert_str_eq(sql_column_text(cmp, 0), "1");
    ck_assert_int_eq(sql_column_int(cmp, 1), 1);
    sql_reset(cmp);

    sql_stmt *upd = storage_stmt(c, "UPDATE items SET n = n WHERE id >= ?1");
    sql_bind_int64(upd, 1, ids[1]);
    ck_assert_int_eq(sql_step(upd), SQL_DONE);
    ck_assert_int_eq(sql_changes(upd), 3);
    close_tiny();
}
END_TEST

START_TEST(test_pg_constraint_errors_map_to_codes)
{
    char url[512];
    storage_conn *c = open_tiny(&shared, url, sizeof(url));
    sql_stmt *st = storage_stmt(c, "INSERT INTO items (name, parent) VALUES (?1, ?2)");
    sql_bind_text(st, 1, "dup");
    ck_assert_int_eq(sql_step(st), SQL_DONE);
    st = storage_stmt(c, "INSERT INTO items (name, parent) VALUES (?1, ?2)");
    sql_bind_text(st, 1, "dup");
    int rc = sql_step(st);
    ck_assert_int_eq(rc, SQL_EUNIQUE);
    ad_err e = {0};
    ck_assert_int_eq(storage_fail(c, rc, "insert item", &e), AD_EEXIST);
    ck_assert_ptr_nonnull(strstr(e.msg, "23505"));

    st = storage_stmt(c, "INSERT INTO items (name, parent) VALUES (?1, ?2)");
    sql_bind_text(st, 1, "orphan");
    sql_bind_int64(st, 2, 999);
    rc = sql_step(st);
    ck_assert_int_eq(rc, SQL_EFOREIGN);
    ck_assert_int_eq(storage_fail(c, rc, "insert item", &e), AD_ENOTFOUND);

    /* A failed statement inside a unit of work makes its commit fail. */
    ck_assert_int_eq(storage_begin(c, &e), 0);
    st = storage_stmt(c, "INSERT INTO items (name, parent) VALUES (?1, ?2)");
    sql_bind_text(st, 1, "dup");
    ck_assert_int_eq(sql_step(st), SQL_EUNIQUE);
    ck_assert_int_lt(storage_commit(c, &e), 0);
    ck_assert_int_eq(count_items(c), 1);
    close_tiny();
}
END_TEST

typedef struct unit_race {
    atomic_int first_holds;
    int64_t waited_ms;
} unit_race;

static void *unit_holder(void *arg)
{
    unit_race *r = arg;
    storage_conn *c = storage_conn_get();
    ad_err e = {0};
    ck_assert_int_eq(storage_begin(c, &e), 0);
    atomic_store(&r->first_holds, 1);
    usleep(400 * 1000);
    sql_stmt *st = storage_stmt(c, "INSERT INTO items (name) VALUES ('first')");
    ck_assert_int_eq(sql_step(st), SQL_DONE);
    ck_assert_int_eq(storage_commit(c, &e), 0);
    storage_thread_release();
    return NULL;
}

START_TEST(test_pg_units_of_work_run_one_at_a_time)
{
    char url[512];
    storage_conn *c = open_tiny(&shared, url, sizeof(url));
    unit_race r = {0};
    pthread_t t;
    pthread_create(&t, NULL, unit_holder, &r);
    while (!atomic_load(&r.first_holds)) usleep(1000);
    int64_t t0 = ad_clock_mono_ms();
    ad_err e = {0};
    ck_assert_int_eq(storage_begin(c, &e), 0);
    int64_t waited = ad_clock_mono_ms() - t0;
    /* The second unit of work sees the first's row: it began after that commit. */
    ck_assert_int_eq(count_items(c), 1);
    ck_assert_int_eq(storage_commit(c, &e), 0);
    pthread_join(t, NULL);
    ck_assert_msg(waited >= 300, "the second unit of work waited %lld ms", (long long)waited);
    close_tiny();
}
END_TEST

static void *insert_one(void *arg)
{
    (void)arg;
    storage_conn *c = storage_conn_get();
    sql_stmt *st = storage_stmt(c, "INSERT INTO items (name) VALUES ('later')");
    ck_assert_int_eq(sql_step(st), SQL_DONE);
    storage_thread_release();
    return NULL;
}

START_TEST(test_pg_snapshot_does_not_see_a_later_commit)
{
    char url[512];
    storage_conn *c = open_tiny(&shared, url, sizeof(url));
    ad_err e = {0};
    ck_assert_int_eq(storage_snapshot_begin(c, &e), 0);
    ck_assert_int_eq(count_items(c), 0);
    pthread_t t;
    pthread_create(&t, NULL, insert_one, NULL);
    pthread_join(t, NULL);
    ck_assert_int_eq(count_items(c), 0);
    storage_snapshot_end(c);
    ck_assert_int_eq(count_items(c), 1);
    close_tiny();
}
END_TEST

START_TEST(test_pg_server_down_is_unavailable_then_reconnects)
{
    pgserver own;
    ck_assert_int_eq(pgserver_start(&own), 0);
    char url[512];
    storage_conn *c = open_tiny(&own, url, sizeof(url));
    ck_assert_int_eq(count_items(c), 0);
    ad_err e = {0};
    ck_assert_int_eq(storage_begin(c, &e), 0);
    ck_assert_int_eq(pgserver_stop(&own), 0);

    int64_t t0 = ad_clock_mono_ms();
    sql_stmt *st = storage_stmt(c, "SELECT count(*) FROM items");
    int rc = sql_step(st);
    ck_assert_int_eq(rc, SQL_EDOWN);
    ck_assert_int_eq(storage_fail(c, rc, "count items", &e), AD_EUNAVAILABLE);
    /* The unit of work died with the connection. */
    ck_assert_int_eq(c->in_unit, 0);
    storage_rollback(c);
    /* And again, without blocking, while the server is down. */
    st = storage_stmt(c, "SELECT count(*) FROM items");
    ck_assert_int_eq(sql_step(st), SQL_EDOWN);
    usleep(600 * 1000);
    st = storage_stmt(c, "SELECT count(*) FROM items");
    ck_assert_int_eq(sql_step(st), SQL_EDOWN);
    ck_assert_int_eq(storage_begin(c, &e), AD_EUNAVAILABLE);
    int64_t took = ad_clock_mono_ms() - t0;
    ck_assert_msg(took < 1000 + 600, "failing took %lld ms", (long long)took);

    ck_assert_int_eq(pgserver_restart(&own), 0);
    usleep(600 * 1000);
    /* The same connection works again, its prepared statements made anew. */
    ck_assert_ptr_eq(storage_conn_get(), c);
    ck_assert_int_eq(count_items(c), 0);
    ck_assert_int_eq(storage_begin(c, &e), 0);
    st = storage_stmt(c, "INSERT INTO items (name) VALUES ('back')");
    ck_assert_int_eq(sql_step(st), SQL_DONE);
    ck_assert_int_eq(storage_commit(c, &e), 0);
    ck_assert_int_eq(count_items(c), 1);

    /* A restart while the connection sits idle is noticed before the next
     * statement is sent: that statement just works. */
    ck_assert_int_eq(pgserver_stop(&own), 0);
    ck_assert_int_eq(pgserver_restart(&own), 0);
    usleep(600 * 1000);
    ck_assert_int_eq(count_items(c), 1);

    /* A unit of work that died with the connection stays dead until it is
     * ended: its next writes do not run outside it on a new connection. */
    ck_assert_int_eq(storage_begin(c, &e), 0);
    ck_assert_int_eq(pgserver_stop(&own), 0);
    ck_assert_int_eq(pgserver_restart(&own), 0);
    st = storage_stmt(c, "INSERT INTO items (name) VALUES ('lost')");
    ck_assert_int_eq(sql_step(st), SQL_EDOWN);
    usleep(600 * 1000);
    st = storage_stmt(c, "INSERT INTO items (name) VALUES ('lost')");
    ck_assert_int_eq(sql_step(st), SQL_EDOWN);
    ck_assert_int_eq(storage_commit(c, &e), AD_EUNAVAILABLE);
    ck_assert_int_eq(count_items(c), 1);

    /* So does a read snapshot: its next reads do not run, one by one, on
     * the new connection outside it; once it is ended, reads work. */
    ck_assert_int_eq(storage_snapshot_begin(c, &e), 0);
    ck_assert_int_eq(count_items(c), 1);
    ck_assert_int_eq(pgserver_stop(&own), 0);
    ck_assert_int_eq(pgserver_restart(&own), 0);
    st = storage_stmt(c, "SELECT count(*) FROM items");
    ck_assert_int_eq(sql_step(st), SQL_EDOWN);
    usleep(600 * 1000);
    st = storage_stmt(c, "SELECT count(*) FROM items");
    ck_assert_int_eq(sql_step(st), SQL_EDOWN);
    storage_snapshot_end(c);
    ck_assert_int_eq(count_items(c), 1);
    close_tiny();
    pgserver_destroy(&own);
}
END_TEST

START_TEST(test_pg_refuses_a_newer_schema)
{
    char url[512];
    storage_conn *c = open_tiny(&shared, url, sizeof(url));
    ad_err e = {0};
    ck_assert_int_eq(storage_exec(c, "UPDATE agentd_schema SET version = 7", &e), 0);
    storage_close();
    int rc = storage_open_url(url, &e);
    ck_assert_int_eq(rc, AD_EIO);
    ck_assert_msg(strstr(e.msg, "schema version 7, newer than this agentd (2): upgrade agentd"), "%s", e.msg);
    pg_use_migrations(NULL, 0);
}
END_TEST

static const char *const slow_schema[] = {
    "SELECT pg_sleep(0.3); CREATE TABLE once (x int); INSERT INTO once VALUES (1)",
};

typedef struct open_race {
    const char *url;
    int rc;
    char msg[AD_ERR_MSG_MAX];
} open_race;

static void *race_open(void *arg)
{
    open_race *r = arg;
    ad_err e = {0};
    r->rc = pg_open(r->url, &e);
    snprintf(r->msg, sizeof(r->msg), "%s", e.msg);
    return NULL;
}

START_TEST(test_pg_racing_opens_migrate_once)
{
    char url[512];
    fresh_db(&shared, url, sizeof(url));
    ad_log_set_level(AD_LOG_WARN);
    pg_use_migrations(slow_schema, 1);
    open_race r[2] = {{.url = url}, {.url = url}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, race_open, &r[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) ck_assert_msg(r[i].rc == 0, "pg_open %d: %s", i, r[i].msg);
    ad_err e = {0};
    ck_assert_int_eq(storage_open_url(url, &e), 0);
    storage_conn *c = storage_conn_get();
    sql_stmt *st = storage_stmt(c, "SELECT count(*), (SELECT version FROM agentd_schema) FROM once");
    ck_assert_int_eq(sql_step(st), SQL_ROW);
    ck_assert_int_eq(sql_column_int(st, 0), 1);
    ck_assert_int_eq(sql_column_int(st, 1), 1);
    sql_reset(st);
    close_tiny();
}
END_TEST

static void *notify_once(void *arg)
{
    (void)arg;
    storage_conn *c = storage_conn_get();
    ad_err e = {0};
    ck_assert_int_eq(storage_exec(c, "NOTIFY agentd_test", &e), 0);
    storage_thread_release();
    return NULL;
}

START_TEST(test_pg_listen_wakes_on_notify)
{
    char url[512];
    storage_conn *c = open_tiny(&shared, url, sizeof(url));
    ad_err e = {0};
    ck_assert_int_eq(pg_listen(c, "agentd_test", &e), 0);
    int64_t t0 = ad_clock_mono_ms();
    ck_assert_int_eq(pg_wait_notify(c, 100), 0);
    ck_assert_int_ge(ad_clock_mono_ms() - t0, 90);
    pthread_t t;
    pthread_create(&t, NULL, notify_once, NULL);
    ck_assert_int_eq(pg_wait_notify(c, 5000), 1);
    pthread_join(t, NULL);
    close_tiny();
}
END_TEST

/* A reset made by an ordinary statement gives a new session, which LISTENs
 * to nothing: the next wait says the connection failed, so that its caller
 * listens again, instead of timing out forever with no notification. */
START_TEST(test_pg_listen_lost_with_a_reset_is_reported)
{
    pgserver own;
    ck_assert_int_eq(pgserver_start(&own), 0);
    char url[512];
    storage_conn *c = open_tiny(&own, url, sizeof(url));
    ad_err e = {0};
    ck_assert_int_eq(pg_listen(c, "agentd_test", &e), 0);
    ck_assert_int_eq(pgserver_stop(&own), 0);
    ck_assert_int_eq(pgserver_restart(&own), 0);
    ck_assert_int_eq(count_items(c), 0);
    ck_assert_int_eq(pg_wait_notify(c, 100), AD_EUNAVAILABLE);
    ck_assert_int_eq(pg_listen(c, "agentd_test", &e), 0);
    pthread_t t;
    pthread_create(&t, NULL, notify_once, NULL);
    ck_assert_int_eq(pg_wait_notify(c, 5000), 1);
    pthread_join(t, NULL);
    close_tiny();
    pgserver_destroy(&own);
}
END_TEST

START_TEST(test_pg_url_description_hides_the_password)
{
    char out[256];
    storage_url_describe("postgresql://agentd:s3cret@db.example:5433/prod?sslmode=disable", out, sizeof(out));
    ck_assert_str_eq(out, "host db.example port 5433 database prod");
    storage_url_describe("host=/run/pg dbname=x password=s3cret", out, sizeof(out));
    ck_assert_ptr_null(strstr(out, "s3cret"));
    ck_assert_str_eq(out, "host /run/pg port (default) database x");
    storage_url_describe("postgresql://agentd@/?host=/s", out, sizeof(out));
    ck_assert_str_eq(out, "host /s port (default) database agentd");
    /* A connection failure names the server, never the password. */
    ad_err e = {0};
    ck_assert_int_eq(pg_open("postgresql://agentd:s3cret@/nodb?host=/nonexistent&port=1", &e), AD_EUNAVAILABLE);
    ck_assert_ptr_null(strstr(e.msg, "s3cret"));
    ck_assert_ptr_nonnull(strstr(e.msg, "database nodb"));
}
END_TEST

/* libpq's words for a URL it cannot parse quote the token it choked on: a
 * password with a bad %-escape, or the tail of an unquoted one. */
START_TEST(test_pg_unparsable_url_error_hides_the_password)
{
    static const char *const urls[] = {
        "postgresql://agentd:s3%zzcret@/nodb?host=/nonexistent",
        "host=/nonexistent dbname=nodb password=s3 cret",
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        ad_err e = {0};
        ck_assert_int_eq(pg_open(urls[i], &e), AD_EINVAL);
        ck_assert_msg(!strstr(e.msg, "cret"), "%s", e.msg);
        ck_assert_msg(strstr(e.msg, "does not parse"), "%s", e.msg);
    }
}
END_TEST

/* A server host that vanishes mid-statement breaks the connection within
 * about half a minute (TCP keepalives, tcp_user_timeout): statement_timeout
 * alone is the server's and would never fire. A URL's own values win. */
START_TEST(test_pg_connections_detect_a_vanished_server)
{
    char url[512], v[32];
    storage_conn *c = open_tiny(&shared, url, sizeof(url));
    ck_assert_int_eq(pg_conn_option(c, "keepalives", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "1");
    ck_assert_int_eq(pg_conn_option(c, "keepalives_idle", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "10");
    ck_assert_int_eq(pg_conn_option(c, "tcp_user_timeout", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "35000");
    ck_assert_int_eq(count_items(c), 0);
    close_tiny();

    char own[600];
    snprintf(own, sizeof(own), "%s&keepalives_idle=30", url);
    pg_use_migrations(tiny_schema, sizeof(tiny_schema) / sizeof(tiny_schema[0]));
    ad_err e = {0};
    ck_assert_msg(storage_open_url(own, &e) == 0, "storage_open_url: %s", e.msg);
    c = storage_conn_get();
    ck_assert_int_eq(pg_conn_option(c, "keepalives_idle", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "30");
    ck_assert_int_eq(count_items(c), 0);
    close_tiny();
}
END_TEST

Suite *storage_pg_suite(void)
{
    Suite *s = suite_create("storage_pg");
    TCase *tc = tcase_create("pg");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, shared_start, shared_stop);
    tcase_add_test(tc, test_pg_rewrites_numbered_parameters);
    tcase_add_test(tc, test_pg_types_round_trip);
    tcase_add_test(tc, test_pg_constraint_errors_map_to_codes);
    tcase_add_test(tc, test_pg_units_of_work_run_one_at_a_time);
    tcase_add_test(tc, test_pg_snapshot_does_not_see_a_later_commit);
    tcase_add_test(tc, test_pg_server_down_is_unavailable_then_reconnects);
    tcase_add_test(tc, test_pg_refuses_a_newer_schema);
    tcase_add_test(tc, test_pg_racing_opens_migrate_once);
    tcase_add_test(tc, test_pg_listen_wakes_on_notify);
    tcase_add_test(tc, test_pg_listen_lost_with_a_reset_is_reported);
    tcase_add_test(tc, test_pg_url_description_hides_the_password);
    tcase_add_test(tc, test_pg_unparsable_url_error_hides_the_password);
    tcase_add_test(tc, test_pg_connections_detect_a_vanished_server);
    suite_add_tcase(s, tc);
    return s;
}
