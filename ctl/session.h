/*
 * One agentctl run: where the server is, who we are, how to print (human
 * text or --json), and the exit codes every verb returns:
 *
 *   0  ok
 *   1  usage error (nothing was sent), or the config file cannot be read
 *      or written
 *   2  the server refused the request (4xx other than 401/403)
 *   3  the server failed (5xx), could not be reached, or broke the
 *      connection
 *   4  authentication or permission (401, 403)
 *   5  the request worked but what it started failed: an agent's pipeline
 *      ended in error, a training run failed or was cancelled, a deployment
 *      was rejected, a stream ended with an error event
 */
#ifndef CTL_SESSION_H
#define CTL_SESSION_H

#include "base/buf.h"
#include "ctl/args.h"
#include "ctl/client.h"

#include <cjson/cJSON.h>

enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_USAGE = 1,
    CTL_EXIT_REFUSED = 2,
    CTL_EXIT_SERVER = 3,
    CTL_EXIT_AUTH = 4,
    CTL_EXIT_FAILED = 5
};

/* Caller-owned; the strings are borrowed for the run. */
typedef struct ctl_session {
    ctl_client client;
    int json;         /* --json: the server's JSON on stdout, nothing else */
    int tty;          /* stderr is a terminal: progress bars */
    const char *verb; /* "train", "deploy create": for messages */
} ctl_session;

/* The exit code for an HTTP status (2xx is 0). */
int ctl_session_exit_for_status(long status);

/* Sends the request; on a 2xx returns 0 with the reply in `out` (the caller
 * frees it). Otherwise prints the server's message and code (or why it could
 * not be reached) on stderr — and with --json the server's error document on
 * stdout — frees the reply and returns the exit code. */
int ctl_session_call(ctl_session *s, const char *method, const char *path, const cJSON *body,
                     ctl_reply *out);

/* What ctl_session_call does with a reply it got: 0 for a 2xx, else the
 * message printed, the reply freed and the exit code returned. */
int ctl_session_check(ctl_session *s, ctl_reply *out);

/* Parses a verb's arguments (ctl_args_parse) and checks how many positional
 * ones it got: `want` of them, named `what` in the message ("one agent id"),
 * or none when `want` is 0, or any number when it is negative. On a usage
 * error prints it, frees the options' values and returns CTL_EXIT_USAGE. */
int ctl_session_parse(const ctl_session *s, int argc, char **argv, ctl_opt *opts, size_t nopts,
                      int want, const char *what, ctl_args *a);

/* Prints a usage error for the current verb on stderr; returns CTL_EXIT_USAGE. */
int ctl_session_usage(const ctl_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends each option of `opts` that was given ("--limit 5") to `path` as
 * a query parameter ("?limit=5", then "&..."), its last value escaped. */
void ctl_session_add_query(ad_buf *path, const ctl_opt *opts, size_t nopts);

/* Prints a reply's JSON document on stdout (with --json), as the server sent it. */
void ctl_session_print_json(const ctl_reply *r);

/* The string member `k` of `o`, or `fallback` when missing or not a string. */
const char *ctl_json_str(const cJSON *o, const char *k, const char *fallback);

/* The number member `k` of `o`, or `fallback`. */
double ctl_json_num(const cJSON *o, const char *k, double fallback);

/* Sleeps `ms` milliseconds (the poll interval of the waits). */
void ctl_session_sleep_ms(int ms);

#endif
