/*
 * The PostgreSQL backend (libpq): one connection per thread, statements
 * prepared on the server at their first run (when the bound types are known)
 * and results read in binary format, units of work serialized by one
 * transaction-scoped advisory lock, forward-only migrations recorded in
 * agentd_schema under a session advisory lock.
 *
 * The URL may carry a password: it is never logged nor put in an error;
 * messages name the server by host, port and database only.
 */
#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "storage/conn.h"
#include "storage/db.h"
#include "storage/internal.h"
#include "storage/schema.h"

/* Type OIDs (catalog/pg_type_d.h, a server header libpq-dev does not ship;
 * these values are fixed by PostgreSQL's catalog). */
enum {
    PG_BOOLOID = 16, PG_BYTEAOID = 17, PG_NAMEOID = 19, PG_INT8OID = 20, PG_INT2OID = 21,
    PG_INT4OID = 23, PG_TEXTOID = 25, PG_OIDOID = 26, PG_JSONOID = 114, PG_FLOAT4OID = 700,
    PG_FLOAT8OID = 701, PG_UNKNOWNOID = 705, PG_BPCHAROID = 1042, PG_VARCHAROID = 1043,
    PG_NUMERICOID = 1700, PG_JSONBOID = 3802
};

/* The advisory lock every unit of work takes ("agentd" and 1), and the one
 * the migrations run under (2). */
#define PG_UNIT_LOCK "7378469928541601793"
#define PG_MIGRATION_LOCK "7378469928541601794"

/* A broken connection is reopened at most this often. */
#define PG_RESET_INTERVAL_MS 500

/* Server-side prepared statements kept per statement, one per type
 * signature; a statement bound with yet other types runs unnamed. */
#define PG_MAX_VARIANTS 4

static const char PG_SESSION_SQL[] =
    "SET statement_timeout = 30000; SET lock_timeout = 30000; SET TIME ZONE 'UTC'";

static pthread_mutex_t pg_url_lock = PTHREAD_MUTEX_INITIALIZER;
static char *pg_url;
static const char *const *pg_migrations = storage_pg_migrations;
static size_t pg_migration_count;
static int pg_migrations_set;

struct pg_conn {
    PGconn *conn;
    int64_t last_reset_ms;    /* monotonic time of the last PQreset */
    unsigned generation;      /* bumped when the server forgot our prepared statements */
    unsigned next_name;       /* numbers the prepared statements' names */
    int lost_unit;            /* a unit of work or snapshot died with the connection and is not ended yet */
    int listening;            /* pg_listen succeeded in generation listen_generation */
    unsigned listen_generation;
};

typedef struct pg_variant {
    Oid *types;               /* the type signature it was prepared with */
    char name[24];
    unsigned generation;      /* the connection's generation it lives in */
} pg_variant;

typedef struct pg_param {
    Oid type;                 /* 0: NULL */
    const char *value;
    int length;
    int format;               /* 0 text, 1 binary (blobs) */
    char num[32];             /* an integer's or a double's text */
    char *own;                /* a copy of bound text (NUL-terminated for libpq) */
    size_t own_cap;
} pg_param;

struct pg_stmt {
    storage_conn *c;
    const char *given;        /* the statement as storage/ wrote it (for the log) */
    char *sql;                /* with $N for ?N */
    int nparams;
    pg_param *params;
    pg_variant variants[PG_MAX_VARIANTS];
    int nvariants;
    PGresult *res;
    int executed, row, nrows;
    int64_t changes;
    char (*colbuf)[32];       /* per column: an integer's or a double's text */
    int ncolbuf;
};

void pg_use_migrations(const char *const *list, size_t n)
{
    pthread_mutex_lock(&pg_url_lock);
    pg_migrations = list ? list : storage_pg_migrations;
    pg_migration_count = list ? n : storage_migration_count;
    pg_migrations_set = list != NULL;
    pthread_mutex_unlock(&pg_url_lock);
}

/* libpq's words on one line, without the trailing newline. */
static void pg_words(const char *msg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", msg && *msg ? msg : "unknown error");
    out[strcspn(out, "\n")] = '\0';
}

int storage_url_parse(const char *url, storage_url_target *t)
{
    snprintf(t->host, sizeof(t->host), "(default)");
    snprintf(t->port, sizeof(t->port), "(default)");
    snprintf(t->db, sizeof(t->db), "(default)");
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    if (!opts) {
        PQfreemem(err);
        return -1;
    }
    const char *user = NULL;
    int db_set = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val) continue;
        if (!strcmp(o->keyword, "host")) snprintf(t->host, sizeof(t->host), "%s", o->val);
        else if (!strcmp(o->keyword, "port")) snprintf(t->port, sizeof(t->port), "%s", o->val);
        else if (!strcmp(o->keyword, "dbname")) db_set = snprintf(t->db, sizeof(t->db), "%s", o->val) > 0;
        else if (!strcmp(o->keyword, "user")) user = o->val;
    }
    /* libpq's default database is the user's name. */
    if (!db_set && user) snprintf(t->db, sizeof(t->db), "%s", user);
    PQconninfoFree(opts);
    return 0;
}

void storage_url_describe(const char *url, char *out, size_t cap)
{
    storage_url_target t;
    if (storage_url_parse(url, &t) < 0) snprintf(out, cap, "an unparsable database URL");
    else snprintf(out, cap, "host %s port %s database %s", t.host, t.port, t.db);
}

/* The server's notices (NOTICE, WARNING, a FATAL that arrives between
 * statements) go to the log at debug level, not to stderr. */
static void pg_notice(void *arg, const char *message)
{
    (void)arg;
    char words[200];
    pg_words(message, words, sizeof(words));
    ad_log(AD_LOG_DEBUG, "database notice: %s", words);
}

/* Connects to `url` (never NULL: a failed connection is CONNECTION_BAD).
 * statement_timeout is the server's: a server host that vanished (crashed,
 * cut off by the network) never answers, and a statement would wait for
 * the kernel to give up on the socket, a quarter of an hour. TCP keepalives
 * (probes after 10 s of silence, 3 unanswered 5 s apart) and
 * tcp_user_timeout (data unacknowledged for 35 s, past the statement
 * deadline) break such a connection instead, so the request gets its 503.
 * They come before dbname: a URL that sets them wins. */
static PGconn *pg_dial(const char *url)
{
    const char *keys[] = {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
                          "tcp_user_timeout", "dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {"1", "10", "5", "3", "35000", url, "5", "agentd", NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    PQsetNoticeProcessor(conn, pg_notice, NULL);
    return conn;
}

/* Runs the session settings on a new or reset connection: 0 or -1. */
static int pg_session(PGconn *conn)
{
    PGresult *res = PQexec(conn, PG_SESSION_SQL);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok ? 0 : -1;
}

/* The connection broke: the server rolled back the unit of work or
 * snapshot it held. Until that unit ends (rollback, commit, or a new
 * begin) or that snapshot ends, its next statements fail too rather than
 * run one by one on a new connection, outside it. The snapshot flag stays
 * set so that storage_snapshot_end reaches pg_snapshot_end, which clears
 * the loss. */
static void pg_lost(storage_conn *c)
{
    if (c->in_unit || c->snapshot) c->pg->lost_unit = 1;
    c->in_unit = 0;
}

/* The sql.h code for a failed result (or for no result), its words kept on
 * the connection. A broken connection ends the unit of work or snapshot it
 * held: the server rolled it back. */
static int pg_code(storage_conn *c, const PGresult *res)
{
    PGconn *conn = c->pg->conn;
    char words[200];
    pg_words(res ? PQresultErrorMessage(res) : PQerrorMessage(conn), words, sizeof(words));
    if (!res && !PQerrorMessage(conn)[0]) snprintf(words, sizeof(words), "no result from the server");
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int code = SQL_EERROR;
    if (PQstatus(conn) == CONNECTION_BAD) code = SQL_EDOWN;
    else if (!state) code = SQL_EERROR;
    else if (!strcmp(state, "23505")) code = SQL_EUNIQUE;
    else if (!strcmp(state, "23503")) code = SQL_EFOREIGN;
    else if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03") ||
             !strcmp(state, "57014"))
        code = SQL_EBUSY;
    else if (!strncmp(state, "53", 2)) code = SQL_EIO;
    else if (!strncmp(state, "08", 2) || !strcmp(state, "57P01") || !strcmp(state, "57P02") ||
             !strcmp(state, "57P03"))
        code = SQL_EDOWN;
    if (code == SQL_EDOWN) pg_lost(c);
    return storage_conn_failed(c, code, "%s%s%s", state ? state : "", state ? ": " : "", words);
}

/* Makes `c` usable before a statement: a connection the server closed while
 * it sat idle is noticed without sending anything, and a broken one is
 * reset (at most once per PG_RESET_INTERVAL_MS; otherwise SQL_EDOWN at
 * once). 0 or SQL_EDOWN. */
static int pg_ready(storage_conn *c)
{
    pg_conn *p = c->pg;
    if (PQstatus(p->conn) == CONNECTION_OK && PQtransactionStatus(p->conn) == PQTRANS_IDLE) {
        /* A server going down sends FATAL, then closes: read until the
         * close shows, or nothing more is waiting. */
        for (int reads = 0; reads < 4 && PQstatus(p->conn) == CONNECTION_OK; reads++) {
            struct pollfd pfd = {.fd = PQsocket(p->conn), .events = POLLIN};
            if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0 || !PQconsumeInput(p->conn)) break;
        }
    }
    if (p->lost_unit)
        return storage_conn_failed(c, SQL_EDOWN, "the unit of work was lost with the database connection");
    if (PQstatus(p->conn) == CONNECTION_OK) return 0;
    pg_lost(c);
    if (p->lost_unit)
        return storage_conn_failed(c, SQL_EDOWN, "the unit of work was lost with the database connection");
    int64_t now = ad_clock_mono_ms();
    if (p->last_reset_ms && now - p->last_reset_ms < PG_RESET_INTERVAL_MS)
        return storage_conn_failed(c, SQL_EDOWN, "the connection to the database is lost");
    p->last_reset_ms = now;
    PQreset(p->conn);
    /* A new session, even a half-made one, knows none of our prepared names. */
    p->generation++;
    if (PQstatus(p->conn) != CONNECTION_OK || pg_session(p->conn) < 0) {
        char words[200];
        pg_words(PQerrorMessage(p->conn), words, sizeof(words));
        return storage_conn_failed(c, SQL_EDOWN, "cannot reconnect to the database: %s", words);
    }
    return 0;
}

/* Runs one statement without parameters on `c`: 0, or the failure's code
 * (words on the connection). */
static int pg_simple(storage_conn *c, const char *sql)
{
    int rc = pg_ready(c);
    if (rc < 0) return rc;
    PGresult *res = PQexec(c->pg->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pg_code(c, res);
    PQclear(res);
    return rc;
}

storage_conn *pg_connect(ad_err *e)
{
    pthread_mutex_lock(&pg_url_lock);
    char *url = pg_url ? ad_strdup(pg_url) : NULL;
    pthread_mutex_unlock(&pg_url_lock);
    if (!url) {
        ad_err_set(e, AD_EIO, "storage used before storage_open");
        return NULL;
    }
    storage_conn *c = ad_calloc(1, sizeof(*c));
    c->kind = STORAGE_PG;
    c->pg = ad_calloc(1, sizeof(*c->pg));
    c->pg->conn = pg_dial(url);
    free(url);
    /* A server that cannot be reached now gives a connection that the first
     * statement resets (pg_ready): its callers then get SQL_EDOWN, a 503,
     * and the thread reconnects once the server is back. */
    if (PQstatus(c->pg->conn) == CONNECTION_OK && pg_session(c->pg->conn) < 0)
        ad_log(AD_LOG_WARN, "database session settings failed: %s", PQerrorMessage(c->pg->conn));
    if (PQstatus(c->pg->conn) != CONNECTION_OK) c->pg->last_reset_ms = ad_clock_mono_ms();
    return c;
}

int pg_conn_option(storage_conn *c, const char *keyword, char *out, size_t cap)
{
    PQconninfoOption *opts = PQconninfo(c->pg->conn);
    int rc = -1;
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, keyword) == 0 && o->val) {
            snprintf(out, cap, "%s", o->val);
            rc = 0;
        }
    }
    PQconninfoFree(opts);
    return rc;
}

void pg_disconnect(storage_conn *c)
{
    storage_stmt_cache_free(c);
    PQfinish(c->pg->conn);
    free(c->pg);
    free(c);
}

/* Rewrites ?N to $N outside string literals, quoted identifiers and
 * comments; returns the highest N. */
static int pg_rewrite(char *sql)
{
    int highest = 0;
    for (char *p = sql; *p;) {
        if (*p == '\'' || *p == '"') {
            char q = *p;
            /* E'...' takes backslash escapes; a word that merely ends in
             * E (ELSE'...') does not make one. */
            int backslash = q == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                            (p - 1 == sql || !(isalnum((unsigned char)p[-2]) || p[-2] == '_'));
            for (p++; *p; p++) {
                if (backslash && *p == '\\' && p[1]) p++;
                else if (*p == q && p[1] == q) p++;
                else if (*p == q) break;
            }
            if (*p) p++;
        } else if (p[0] == '-' && p[1] == '-') {
            p += strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            char *end = strstr(p + 2, "*/");
            p = end ? end + 2 : p + strlen(p);
        } else if (*p == '?' && p[1] >= '0' && p[1] <= '9') {
            *p++ = '$';
            long n = strtol(p, &p, 10);
            if (n > highest && n < 65536) highest = (int)n;
        } else {
            p++;
        }
    }
    return highest;
}

pg_stmt *pg_prepare(storage_conn *c, const char *sql)
{
    pg_stmt *st = ad_calloc(1, sizeof(*st));
    st->c = c;
    st->given = sql;
    st->sql = ad_strdup(sql);
    st->nparams = pg_rewrite(st->sql);
    if (st->nparams) st->params = ad_calloc((size_t)st->nparams, sizeof(*st->params));
    return st;
}

void pg_reset(pg_stmt *st)
{
    PQclear(st->res);
    st->res = NULL;
    st->executed = st->row = st->nrows = 0;
}

void pg_finalize(pg_stmt *st)
{
    if (!st) return;
    pg_reset(st);
    for (int i = 0; i < st->nparams; i++) free(st->params[i].own);
    for (int i = 0; i < st->nvariants; i++) free(st->variants[i].types);
    free(st->params);
    free(st->colbuf);
    free(st->sql);
    free(st);
}

/* Parameter `i` (from 1), or NULL past the statement's highest: binds there
 * are ignored, as SQLite does. */
static pg_param *pg_param_at(pg_stmt *st, int i)
{
    return i >= 1 && i <= st->nparams ? &st->params[i - 1] : NULL;
}

void pg_bind_int64(pg_stmt *st, int i, int64_t v)
{
    pg_param *p = pg_param_at(st, i);
    if (!p) return;
    *p = (pg_param){.type = PG_INT8OID, .value = p->num, .own = p->own, .own_cap = p->own_cap};
    snprintf(p->num, sizeof(p->num), "%lld", (long long)v);
}

void pg_bind_double(pg_stmt *st, int i, double v)
{
    pg_param *p = pg_param_at(st, i);
    if (!p) return;
    *p = (pg_param){.type = PG_FLOAT8OID, .value = p->num, .own = p->own, .own_cap = p->own_cap};
    snprintf(p->num, sizeof(p->num), "%.17g", v);
}

void pg_bind_text(pg_stmt *st, int i, const char *s, size_t n)
{
    pg_param *p = pg_param_at(st, i);
    if (!p) return;
    /* Text goes in text format, which libpq sends up to its NUL: a copy
     * gives it one. */
    size_t need = ad_size_add(n, 1);
    if (need > p->own_cap) {
        p->own = ad_realloc(p->own, need);
        p->own_cap = need;
    }
    memcpy(p->own, s, n);
    p->own[n] = '\0';
    p->type = PG_TEXTOID;
    p->value = p->own;
    p->length = (int)n;
    p->format = 0;
}

void pg_bind_blob(pg_stmt *st, int i, const void *b, size_t n)
{
    pg_param *p = pg_param_at(st, i);
    if (!p) return;
    ad_assert(n <= (size_t)0x7fffffff);
    p->type = PG_BYTEAOID;
    p->value = b;
    p->length = (int)n;
    p->format = 1;
}

void pg_bind_null(pg_stmt *st, int i)
{
    pg_param *p = pg_param_at(st, i);
    if (!p) return;
    p->type = 0;
    p->value = NULL;
    p->length = 0;
    p->format = 0;
}

void pg_clear_bindings(pg_stmt *st)
{
    for (int i = 1; i <= st->nparams; i++) pg_bind_null(st, i);
}

/* The prepared variant whose types fit the bound ones (a NULL fits any),
 * preparing one when there is room: its name, or NULL to run unnamed. A
 * failure to prepare returns NULL with `*rc` set. */
static const char *pg_variant_for(pg_stmt *st, const Oid *types, int *rc)
{
    pg_conn *p = st->c->pg;
    pg_variant *slot = NULL;
    for (int v = 0; v < st->nvariants; v++) {
        pg_variant *var = &st->variants[v];
        if (var->generation != p->generation) {
            if (!slot) slot = var;
            continue;
        }
        int fits = 1;
        for (int i = 0; i < st->nparams && fits; i++) fits = !types[i] || types[i] == var->types[i];
        if (fits) return var->name;
    }
    if (!slot && st->nvariants < PG_MAX_VARIANTS) slot = &st->variants[st->nvariants];
    if (!slot) return NULL;
    char name[24];
    snprintf(name, sizeof(name), "s%u", ++p->next_name);
    PGresult *res = PQprepare(p->conn, name, st->sql, st->nparams, types);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        *rc = pg_code(st->c, res);
        PQclear(res);
        if (*rc == SQL_EERROR) ad_log(AD_LOG_ERROR, "statement failed to prepare: %s: %s", st->c->errmsg, st->given);
        return NULL;
    }
    PQclear(res);
    if (slot == &st->variants[st->nvariants]) st->nvariants++;
    free(slot->types);
    slot->types = ad_malloc(ad_size_mul((size_t)(st->nparams ? st->nparams : 1), sizeof(Oid)));
    if (st->nparams) memcpy(slot->types, types, (size_t)st->nparams * sizeof(Oid));
    slot->generation = p->generation;
    snprintf(slot->name, sizeof(slot->name), "%s", name);
    return slot->name;
}

/* The statement's first sql_step: sends it with its bindings. */
static int pg_execute(pg_stmt *st)
{
    storage_conn *c = st->c;
    int rc = pg_ready(c);
    if (rc < 0) return rc;
    int n = st->nparams;
    Oid types[n ? n : 1];
    const char *values[n ? n : 1];
    int lengths[n ? n : 1], formats[n ? n : 1];
    for (int i = 0; i < n; i++) {
        types[i] = st->params[i].type;
        values[i] = st->params[i].value;
        lengths[i] = st->params[i].length;
        formats[i] = st->params[i].format;
    }
    rc = 0;
    const char *name = pg_variant_for(st, types, &rc);
    if (rc < 0) return rc;
    PGresult *res = name ? PQexecPrepared(c->pg->conn, name, n, values, lengths, formats, 1)
                         : PQexecParams(c->pg->conn, st->sql, n, types, values, lengths, formats, 1);
    ExecStatusType status = PQresultStatus(res);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        rc = pg_code(c, res);
        PQclear(res);
        if (rc == SQL_EERROR) ad_log(AD_LOG_ERROR, "statement failed: %s: %s", c->errmsg, st->given);
        return rc;
    }
    st->res = res;
    st->executed = 1;
    st->nrows = PQntuples(res);
    st->row = 0;
    st->changes = strtoll(PQcmdTuples(res), NULL, 10);
    int nf = PQnfields(res);
    if (nf > st->ncolbuf) {
        st->colbuf = ad_realloc(st->colbuf, ad_size_mul((size_t)nf, sizeof(*st->colbuf)));
        st->ncolbuf = nf;
    }
    for (int i = 0; i < nf; i++) {
        if (PQftype(res, i) != PG_NUMERICOID) continue;
        /* sum() of integers and the like widen to numeric, which sql.h's
         * subset casts back (CAST(... AS BIGINT)): this statement forgot. */
        ad_log(AD_LOG_ERROR, "statement returns a numeric column %d (cast it to BIGINT): %s", i, st->given);
        ad_assert(!"numeric column in a statement's result");
    }
    return st->nrows > 0 ? SQL_ROW : SQL_DONE;
}

int pg_step(pg_stmt *st)
{
    if (!st->executed) return pg_execute(st);
    if (st->row < st->nrows) st->row++;
    return st->row < st->nrows ? SQL_ROW : SQL_DONE;
}

int64_t pg_changes(pg_stmt *st)
{
    return st->changes;
}

/* Column `i` of the current row: its bytes, or NULL when the value is NULL
 * (or there is no row). */
static const char *pg_value(pg_stmt *st, int i, int *len, Oid *type)
{
    if (!st->res || st->row >= st->nrows || i < 0 || i >= PQnfields(st->res)) return NULL;
    if (PQgetisnull(st->res, st->row, i)) return NULL;
    *len = PQgetlength(st->res, st->row, i);
    *type = PQftype(st->res, i);
    return PQgetvalue(st->res, st->row, i);
}

static uint64_t pg_be(const char *v, int len)
{
    uint64_t x = 0;
    for (int k = 0; k < len; k++) x = (x << 8) | (unsigned char)v[k];
    return x;
}

/* 1 when `type` reads as an integer, with its value in `*out`. */
static int pg_integer(const char *v, int len, Oid type, int64_t *out)
{
    switch (type) {
    case PG_INT2OID: *out = len == 2 ? (int16_t)pg_be(v, 2) : 0; return 1;
    case PG_INT4OID: *out = len == 4 ? (int32_t)pg_be(v, 4) : 0; return 1;
    case PG_INT8OID: *out = len == 8 ? (int64_t)pg_be(v, 8) : 0; return 1;
    case PG_OIDOID: *out = len == 4 ? (int64_t)(uint32_t)pg_be(v, 4) : 0; return 1;
    case PG_BOOLOID: *out = len == 1 && v[0] != 0; return 1;
    default: return 0;
    }
}

/* 1 when `type` is a float, with its value in `*out`. */
static int pg_float(const char *v, int len, Oid type, double *out)
{
    if (type == PG_FLOAT8OID && len == 8) {
        uint64_t bits = pg_be(v, 8);
        memcpy(out, &bits, sizeof(*out));
        return 1;
    }
    if (type == PG_FLOAT4OID && len == 4) {
        uint32_t bits = (uint32_t)pg_be(v, 4);
        float f;
        memcpy(&f, &bits, sizeof(f));
        *out = f;
        return 1;
    }
    return 0;
}

/* Text-like columns, whose binary form is the text itself; jsonb's carries
 * a version byte first. */
static const char *pg_textual(const char *v, int *len, Oid type)
{
    switch (type) {
    case PG_TEXTOID: case PG_VARCHAROID: case PG_NAMEOID: case PG_JSONOID: case PG_BPCHAROID:
    case PG_UNKNOWNOID: case PG_BYTEAOID:
        return v;
    case PG_JSONBOID:
        if (*len < 1) return v;
        (*len)--;
        return v + 1;
    default:
        return NULL;
    }
}

int pg_column_is_null(pg_stmt *st, int i)
{
    int len;
    Oid type;
    return pg_value(st, i, &len, &type) == NULL;
}

int64_t pg_column_int64(pg_stmt *st, int i)
{
    int len = 0;
    Oid type = 0;
    const char *v = pg_value(st, i, &len, &type);
    if (!v) return 0;
    int64_t n;
    double d;
    if (pg_integer(v, len, type, &n)) return n;
    if (pg_float(v, len, type, &d)) return (int64_t)d;
    const char *t = pg_textual(v, &len, type);
    return t ? strtoll(t, NULL, 10) : 0;
}

double pg_column_double(pg_stmt *st, int i)
{
    int len = 0;
    Oid type = 0;
    const char *v = pg_value(st, i, &len, &type);
    if (!v) return 0;
    int64_t n;
    double d;
    if (pg_float(v, len, type, &d)) return d;
    if (pg_integer(v, len, type, &n)) return (double)n;
    const char *t = pg_textual(v, &len, type);
    return t ? strtod(t, NULL) : 0;
}

/* The column as text, with its length. */
static const char *pg_column_chars(pg_stmt *st, int i, int *len)
{
    Oid type = 0;
    const char *v = pg_value(st, i, len, &type);
    if (!v) return NULL;
    int64_t n;
    double d;
    if (pg_integer(v, *len, type, &n)) {
        *len = snprintf(st->colbuf[i], sizeof(st->colbuf[i]), "%lld", (long long)n);
        return st->colbuf[i];
    }
    if (pg_float(v, *len, type, &d)) {
        *len = snprintf(st->colbuf[i], sizeof(st->colbuf[i]), "%.17g", d);
        return st->colbuf[i];
    }
    const char *t = pg_textual(v, len, type);
    if (!t) {
        ad_log(AD_LOG_ERROR, "statement returns column %d of type oid %u, which storage/ does not read: %s", i,
               (unsigned)type, st->given);
        ad_assert(!"column of an unsupported type");
    }
    return t;
}

const char *pg_column_text(pg_stmt *st, int i)
{
    int len = 0;
    return pg_column_chars(st, i, &len);
}

const void *pg_column_blob(pg_stmt *st, int i)
{
    int len = 0;
    return pg_column_chars(st, i, &len);
}

size_t pg_column_bytes(pg_stmt *st, int i)
{
    int len = 0;
    return pg_column_chars(st, i, &len) ? (size_t)len : 0;
}

int pg_exec(storage_conn *c, const char *sql, ad_err *e)
{
    int rc = pg_simple(c, sql);
    return rc < 0 ? storage_fail(c, rc, "run statements", e) : 0;
}

int pg_begin(storage_conn *c, ad_err *e)
{
    c->pg->lost_unit = 0;
    int rc = pg_simple(c, "BEGIN");
    if (rc < 0) return storage_fail(c, rc, "begin transaction", e);
    rc = pg_simple(c, "SELECT pg_advisory_xact_lock(" PG_UNIT_LOCK ")");
    if (rc < 0) {
        int code = storage_fail(c, rc, "wait for the unit of work lock", e);
        pg_rollback(c);
        return code;
    }
    return 0;
}

int pg_commit(storage_conn *c, ad_err *e)
{
    if (c->pg->lost_unit || PQstatus(c->pg->conn) != CONNECTION_OK)
        return storage_fail(c, storage_conn_failed(c, SQL_EDOWN, "the connection to the database is lost"),
                            "commit", e);
    PGresult *res = PQexec(c->pg->conn, "COMMIT");
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) rc = pg_code(c, res);
    else if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
        /* A transaction a failed statement aborted ends in a ROLLBACK. */
        rc = storage_conn_failed(c, SQL_EERROR, "the transaction was rolled back after a failed statement");
    PQclear(res);
    return rc < 0 ? storage_fail(c, rc, "commit", e) : 0;
}

void pg_rollback(storage_conn *c)
{
    c->pg->lost_unit = 0;
    if (PQstatus(c->pg->conn) != CONNECTION_OK || PQtransactionStatus(c->pg->conn) == PQTRANS_IDLE) return;
    PQclear(PQexec(c->pg->conn, "ROLLBACK"));
}

int pg_snapshot_begin(storage_conn *c, ad_err *e)
{
    c->pg->lost_unit = 0;
    int rc = pg_simple(c, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    return rc < 0 ? storage_fail(c, rc, "begin read snapshot", e) : 0;
}

void pg_snapshot_end(storage_conn *c)
{
    c->pg->lost_unit = 0;
    if (PQstatus(c->pg->conn) != CONNECTION_OK || PQtransactionStatus(c->pg->conn) == PQTRANS_IDLE) return;
    PQclear(PQexec(c->pg->conn, "COMMIT"));
}

int pg_listen(storage_conn *c, const char *channel, ad_err *e)
{
    int rc = pg_ready(c);
    if (rc < 0) return storage_fail(c, rc, "listen", e);
    char *ident = PQescapeIdentifier(c->pg->conn, channel, strlen(channel));
    if (!ident) return storage_fail(c, pg_code(c, NULL), "listen", e);
    size_t n = ad_size_add(strlen(ident), sizeof("LISTEN "));
    char *sql = ad_malloc(n);
    snprintf(sql, n, "LISTEN %s", ident);
    PQfreemem(ident);
    rc = pg_simple(c, sql);
    free(sql);
    if (rc < 0) return storage_fail(c, rc, "listen", e);
    c->pg->listening = 1;
    c->pg->listen_generation = c->pg->generation;
    return 0;
}

/* Frees the notifications that arrived: 1 when there was one. */
static int pg_drain_notifies(PGconn *conn)
{
    int got = 0;
    PGnotify *n;
    while ((n = PQnotifies(conn))) {
        PQfreemem(n);
        got = 1;
    }
    return got;
}

int pg_wait_notify(storage_conn *c, int timeout_ms)
{
    PGconn *conn = c->pg->conn;
    if (PQstatus(conn) != CONNECTION_OK) return AD_EUNAVAILABLE;
    /* A statement since pg_listen reset the connection: the new session
     * listens to nothing, and would wait out every timeout. */
    if (c->pg->listening && c->pg->listen_generation != c->pg->generation) {
        c->pg->listening = 0;
        return AD_EUNAVAILABLE;
    }
    if (pg_drain_notifies(conn)) return 1;
    int64_t deadline = ad_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int64_t left = deadline - ad_clock_mono_ms();
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        if (pfd.fd < 0) return AD_EUNAVAILABLE;
        int r = poll(&pfd, 1, left > 0 ? (int)left : 0);
        if (r < 0 && errno != EINTR) return AD_EUNAVAILABLE;
        if (r > 0 && (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)) return AD_EUNAVAILABLE;
        if (pg_drain_notifies(conn)) return 1;
        if (left <= 0) return 0;
    }
}

/* Runs `sql` on the migration connection; 0, or -1 with `e` filled. */
static int pg_migration_exec(PGconn *conn, const char *sql, const char *what, ad_err *e)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return 0;
    }
    char words[200];
    pg_words(PQresultErrorMessage(res), words, sizeof(words));
    if (!words[0] || !strcmp(words, "unknown error")) pg_words(PQerrorMessage(conn), words, sizeof(words));
    PQclear(res);
    return ad_err_set(e, PQstatus(conn) == CONNECTION_OK ? AD_EIO : AD_EUNAVAILABLE, "%s: %s", what, words);
}

/* Reads agentd_schema's version, creating the table (version 0) on a new
 * database: the version, or -1 with `e` filled. */
static int pg_schema_version(PGconn *conn, ad_err *e)
{
    if (pg_migration_exec(conn, "CREATE TABLE IF NOT EXISTS agentd_schema (version int NOT NULL)",
                          "create agentd_schema", e) < 0)
        return -1;
    PGresult *res = PQexec(conn, "SELECT version FROM agentd_schema");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char words[200];
        pg_words(PQresultErrorMessage(res), words, sizeof(words));
        PQclear(res);
        ad_err_set(e, AD_EIO, "read schema version: %s", words);
        return -1;
    }
    int version = PQntuples(res) > 0 ? atoi(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    if (version >= 0) return version;
    return pg_migration_exec(conn, "INSERT INTO agentd_schema (version) VALUES (0)", "record schema version", e) < 0
               ? -1
               : 0;
}

/* Runs the migrations above the database's version on `conn`, which holds
 * the migration lock. */
static int pg_migrate(PGconn *conn, const char *where, ad_err *e)
{
    int version = pg_schema_version(conn, e);
    if (version < 0) return e ? e->code : AD_EIO;
    pthread_mutex_lock(&pg_url_lock);
    const char *const *list = pg_migrations;
    int latest = (int)(pg_migrations_set ? pg_migration_count : storage_migration_count);
    pthread_mutex_unlock(&pg_url_lock);
    if (version > latest)
        return ad_err_set(e, AD_EIO,
                          "database at %s has schema version %d, newer than this agentd (%d): upgrade agentd",
                          where, version, latest);
    for (int v = version; v < latest; v++) {
        if (!list[v]) continue;
        char update[96], what[64];
        snprintf(update, sizeof(update), "UPDATE agentd_schema SET version = %d", v + 1);
        snprintf(what, sizeof(what), "migration to schema version %d", v + 1);
        if (pg_migration_exec(conn, "BEGIN", what, e) < 0) return e ? e->code : AD_EIO;
        if (pg_migration_exec(conn, list[v], what, e) < 0 || pg_migration_exec(conn, update, what, e) < 0 ||
            pg_migration_exec(conn, "COMMIT", what, e) < 0) {
            PQclear(PQexec(conn, "ROLLBACK"));
            return e ? e->code : AD_EIO;
        }
        ad_log(AD_LOG_INFO, "database migrated to schema version %d", v + 1);
    }
    return 0;
}

int pg_open(const char *url, ad_err *e)
{
    char where[300];
    /* libpq's words for a URL it cannot parse quote the token it choked on,
     * which may be the password (a bad %-escape in it): none of them here. */
    if (storage_url_parse(url, &(storage_url_target){0}) < 0)
        return ad_err_set(e, AD_EINVAL,
                          "database_url does not parse as a PostgreSQL URL (check its %%-escapes and parameters)");
    storage_url_describe(url, where, sizeof(where));
    PGconn *conn = pg_dial(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        char words[200];
        pg_words(PQerrorMessage(conn), words, sizeof(words));
        PQfinish(conn);
        return ad_err_set(e, AD_EUNAVAILABLE, "cannot connect to the database at %s: %s", where, words);
    }
    /* Migrations may take long on a big database, and another replica's may
     * hold the lock for as long: no deadline here but connect_timeout's. */
    int rc = pg_migration_exec(conn, "SET statement_timeout = 0; SET lock_timeout = 0; SET TIME ZONE 'UTC'",
                               "session settings", e);
    if (rc == 0)
        rc = pg_migration_exec(conn, "SELECT pg_advisory_lock(" PG_MIGRATION_LOCK ")", "take the migration lock", e);
    if (rc == 0) {
        rc = pg_migrate(conn, where, e);
        PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" PG_MIGRATION_LOCK ")"));
    }
    PQfinish(conn);
    if (rc < 0) return rc;
    pthread_mutex_lock(&pg_url_lock);
    free(pg_url);
    pg_url = ad_strdup(url);
    pthread_mutex_unlock(&pg_url_lock);
    return 0;
}

void pg_close(void)
{
    pthread_mutex_lock(&pg_url_lock);
    free(pg_url);
    pg_url = NULL;
    pthread_mutex_unlock(&pg_url_lock);
}
