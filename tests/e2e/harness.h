/*
 * The end-to-end harness: starts the real agentd binary (AGENTD_BIN) on an
 * ephemeral loopback port with a temporary data dir, and talks to it over
 * real HTTP with libcurl. Stopping checks the exit code and that the log has
 * no sanitizer report.
 */
#ifndef AD_TESTS_E2E_HARNESS_H
#define AD_TESTS_E2E_HARNESS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct e2e_server {
    pid_t pid;
    int port;
    char dir[256];        /* temp dir: data/ and agentd.log inside */
    char log_path[300];
    char data_dir[300];
    char database_url[512]; /* PostgreSQL (AGENTD_E2E_BACKEND=pg): this server's own database */
} e2e_server;

typedef struct e2e_response {
    long status;
    char *body;           /* NUL-terminated */
    size_t body_len;
    char *headers;        /* raw header block, lower-cased names kept as sent */
    cJSON *json;          /* parsed body, or NULL */
} e2e_response;

/* 1 when the suites run on PostgreSQL (AGENTD_E2E_BACKEND=pg): every
 * e2e_start then gets a fresh database on one shared throwaway server. */
int e2e_backend_pg(void);

/* For a test that works on the SQLite file itself: on PostgreSQL prints
 * "skipped on PostgreSQL: <why>" and returns 1 (the test returns). */
int e2e_skip_on_pg(const char *why);

/* One integer from the server's database, on a connection of the test's
 * own (its SQLite file, or its PostgreSQL database): what no route shows.
 * -1 when the query returns no row. `sql` must run on both backends. */
long long e2e_db_int(const e2e_server *s, const char *sql);

/* Every row `sql` returns from the server's database, as text: columns
 * joined by '|', NULL as "NULL", one line each. Free it. */
char *e2e_db_rows(const e2e_server *s, const char *sql);

/* Runs `sql` (one statement or more) on the server's database; returns the
 * rows the last one changed. */
long long e2e_db_exec(const e2e_server *s, const char *sql);

/* Starts the shared PostgreSQL server when e2e_backend_pg() (before the
 * suites run): 0, or -1 with the reason on stderr. */
int e2e_pg_setup(void);

/* Stops and removes the shared PostgreSQL server (after the suites). */
void e2e_pg_teardown(void);

/* Starts agentd with extra `args` (NULL-terminated) and extra environment
 * `env` ("K=V", NULL-terminated); aborts the test if it does not listen.
 * On PostgreSQL it creates the server's database and passes --database-url. */
void e2e_start(e2e_server *s, const char *const *args, const char *const *env);

/* Starts agentd again on the same data dir, or database (after a stop or a kill). */
void e2e_restart(e2e_server *s, const char *const *args, const char *const *env);

/* SIGTERM; returns the exit status (-1 if killed by a signal). Checks the log
 * for sanitizer reports. */
int e2e_stop(e2e_server *s);

/* SIGKILL and reap. */
void e2e_kill(e2e_server *s);

/* Removes the temp dir. */
void e2e_cleanup(e2e_server *s);

/* One HTTP request. `headers` is NULL-terminated ("Name: value"); a JSON body
 * gets Content-Type: application/json unless a header sets another. */
e2e_response e2e_request(const e2e_server *s, const char *method, const char *path,
                         const char *body, const char *const *headers);
e2e_response e2e_get(const e2e_server *s, const char *path);

/* Appends one exchange to the contract log named by $AGENTD_CONTRACT_LOG (a
 * JSON line: test case, method, path, status, content type, body), which
 * tests/contract/validate.mjs checks against openapi.yaml after the run; no-op
 * when the variable is unset. e2e_request records every exchange itself;
 * suites that speak HTTP with their own libcurl handle record complete
 * responses with this. Safe from concurrent threads and forked tests. */
void e2e_contract_record(const char *method, const char *path, long status,
                         const char *content_type, const char *body);
e2e_response e2e_post(const e2e_server *s, const char *path, const char *json);
void e2e_response_free(e2e_response *r);

/* The value of response header `name` (case-insensitive), malloc'ed, or NULL. */
char *e2e_header(const e2e_response *r, const char *name);

/* Polls GET /status until the agent is ready or error, or `timeout_ms`; returns the final status string (static). */
const char *e2e_wait_agent(const e2e_server *s, const char *user_id, int timeout_ms);
/* e2e_wait_agent sending `headers` (as e2e_request; e.g. a credential). */
const char *e2e_wait_agent_as(const e2e_server *s, const char *user_id, int timeout_ms,
                              const char *const *headers);

/* 1 when the file at `path` holds `needle` anywhere in its raw bytes (a
 * database file, a log); 0 when it does not or cannot be read. */
int e2e_file_holds(const char *path, const char *needle);

/* Free text of about `bytes` (malloc'ed), varied enough to make distinct
 * passages; different seeds give different texts. */
char *e2e_make_text(size_t bytes, unsigned seed);

/* Reads a whole file (test datasets); NULL when missing. */
char *e2e_read_file(const char *path, size_t *len);

/* Path of a file the repository carries under tests/ ("data/ml_expert_dataset.json"),
 * in a static buffer; the suites run from the repository root, so a bare clone
 * has every file they read. */
const char *e2e_test_file(const char *rel);

/* {"user_id": id, "dataset": <training_data of tests/`rel`>} as a string. */
char *e2e_dataset_body(const char *user_id, const char *rel);

/* Counts lines of the server log containing `needle`. */
int e2e_log_count(const e2e_server *s, const char *needle);

/* e2e_log_count once it reaches `at_least`, or after `timeout_ms`: the
 * server writes its log from a thread of its own every few milliseconds, so
 * a line logged before a response may reach the file after it. */
int e2e_log_wait(const e2e_server *s, const char *needle, int at_least, int timeout_ms);



/* A raw TCP connection to the server, for requests libcurl will not send
 * (slow uploads, hand-written chunked bodies). Returns the socket. */
int e2e_connect(const e2e_server *s);
/* Reads until the peer closes or `timeout_ms`; malloc'ed text. */
char *e2e_read_all(int fd, int timeout_ms);

/* Small helpers every suite uses. */
const char *e2e_json_str(const cJSON *o, const char *k);
/* The number at `k`; fails the test when it is not a number. */
double e2e_json_num(const cJSON *o, const char *k);
/* printf into a malloc'ed string (free it). */
char *e2e_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
void e2e_sleep_ms(int ms);
/* 1 when `t` is YYYY-MM-DDTHH:MM:SS[.fff]Z. */
int e2e_is_iso_utc(const char *t);
/* An error body {error, code, request_id} with `status` and `code`; the
 * message contains `needle` when given; `what` labels a failure. */
void e2e_assert_error(const e2e_response *r, long status, const char *code, const char *needle,
                      const char *what);
#endif
