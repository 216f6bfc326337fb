/* agentctl: the command-line client of agentd. Finds the verb, takes the
 * global flags (--url, --token, --json, --help) wherever they appear before
 * "--", loads the settings, and runs the verb; the exit code is the verb's
 * (session.h has the table, --help prints it). */
#include "base/mem.h"
#include "ctl/agents.h"
#include "ctl/args.h"
#include "ctl/ask.h"
#include "ctl/config.h"
#include "ctl/deploy.h"
#include "ctl/login.h"
#include "ctl/session.h"
#include "ctl/tokens.h"
#include "ctl/training.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*verb_fn)(ctl_session *s, int argc, char **argv);

typedef struct verb {
    const char *group; /* "agents", or NULL for a one-word verb */
    const char *name;
    verb_fn fn;
    const char *usage; /* the synopsis line(s) */
    const char *help;  /* what it does, its options */
} verb;

static const verb VERBS[] = {
    {NULL, "login", NULL, "agentctl login [--url URL] [--token TOKEN|-]",
     "Checks URL and TOKEN against the server (GET /api/v1/config) and saves them in\n"
     "$XDG_CONFIG_HOME/agentctl/config (default ~/.config/agentctl/config; mode 0600,\n"
     "directory 0700). Without --url/--token, AGENTD_URL and AGENTD_TOKEN are saved;\n"
     "without those, on a terminal, they are asked for, the token without echo.\n"
     "--token - reads the token from stdin (echo off on a terminal). A token given as\n"
     "--token TOKEN is visible to every user of the machine (ps): prefer the prompt,\n"
     "--token - or AGENTD_TOKEN. Later commands read the file; AGENTD_URL and\n"
     "AGENTD_TOKEN override it; --url and --token override both on any command.\n"},
    {"agents", "create", ctl_agents_create,
     "agentctl agents create ID (--text FILE|- | --dataset FILE.json) [--description TEXT]\n"
     "                          [--language CODE] [--wait]",
     "Creates agent ID from free text (a file, or - for stdin) or from a dataset (a JSON\n"
     "array of {prompt, answer} pairs, or an object with one in training_data).\n"
     "--language: auto (default), en, pt, es, fr, de, it or nl.\n"
     "--wait: follow the pipeline until the agent is ready (a progress bar on a terminal,\n"
     "plain lines otherwise); exit 5 if it ends in error. With --json, the final status.\n"},
    {"agents", "list", ctl_agents_list,
     "agentctl agents list [--status S] [--limit N] [--cursor C]",
     "Lists agents (one page; 'more:' gives the next page's command).\n"},
    {"agents", "status", ctl_agents_status, "agentctl agents status ID",
     "Shows an agent's status, stage, progress, and a running training.\n"},
    {"agents", "delete", ctl_agents_delete, "agentctl agents delete ID",
     "Deletes an agent with everything stored for it.\n"},
    {NULL, "ask", ctl_ask, "agentctl ask AGENT PROMPT [--top-passages N] [--max-output-tokens N]",
     "Asks AGENT and prints the answer as it is produced (streamed), then its sources.\n"
     "With --json, one request without streaming; the server's JSON.\n"},
    {NULL, "train", ctl_train, "agentctl train AGENT -n N --name NAME [--no-wait]",
     "Starts a training run of N iterations (1 to 1000) whose best result becomes model\n"
     "version NAME (letters, digits, '_', '.', '-'; 1 to 64; not 'group-...'), then follows\n"
     "it (a progress bar on a terminal, plain lines otherwise); exit 5 if the run fails\n"
     "or is cancelled. Both are checked before anything is sent. --no-wait: only start it.\n"},
    {NULL, "replay", ctl_replay, "agentctl replay AGENT (--task-id ID | --task-index 0..3)",
     "Re-runs AGENT's pipeline from one stage (task ids: GET .../executions), reusing\n"
     "the stored outputs of the earlier stages.\n"},
    {"deploy", "create", ctl_deploy_create,
     "agentctl deploy create AGENT --model V [--no-push] [--force]",
     "Creates a deployment of model version V and pushes it (live, or rejected by the\n"
     "gate: exit 5) unless --no-push; --force passes the gate.\n"},
    {"deploy", "push", ctl_deploy_push, "agentctl deploy push AGENT UUID [--force]",
     "Pushes a pending deployment.\n"},
    {"deploy", "status", ctl_deploy_status, "agentctl deploy status AGENT UUID",
     "Shows one deployment.\n"},
    {"deploy", "logs", ctl_deploy_logs, "agentctl deploy logs AGENT UUID",
     "Shows a deployment's events (created, gate, live, superseded, removed...).\n"},
    {"deploy", "list", ctl_deploy_list, "agentctl deploy list AGENT [--limit N] [--cursor C]",
     "Lists AGENT's deployments, newest first.\n"},
    {"deploy", "remove", ctl_deploy_remove, "agentctl deploy remove AGENT UUID",
     "Removes a deployment; removing the live one brings back the previous live one.\n"},
    {"tokens", "create", ctl_tokens_create,
     "agentctl tokens create --name N --scope S [--scope S...] (--agent A [--agent A...] | "
     "--all-agents)\n"
     "                       [--expires-in SECONDS]",
     "Creates an API token (admin). Scopes: agents:read agents:write inference training\n"
     "deploy admin. The secret is printed once, on the last line (or in --json's \"token\").\n"},
    {"tokens", "list", ctl_tokens_list, "agentctl tokens list [--limit N] [--cursor C]",
     "Lists tokens (never their secrets).\n"},
    {"tokens", "revoke", ctl_tokens_revoke, "agentctl tokens revoke ID", "Revokes token ID.\n"},
    {"tokens", "rotate", ctl_tokens_rotate, "agentctl tokens rotate ID [--grace SECONDS]",
     "Gives token ID a new secret; the old one keeps working for --grace seconds (default 0).\n"},
};

#define NVERBS (sizeof(VERBS) / sizeof(VERBS[0]))

static const char GLOBAL_HELP[] =
    "agentctl: the command-line client of agentd.\n"
    "\n"
    "Global flags (anywhere before --):\n"
    "  --url URL      the server (else AGENTD_URL, else the config file, else " CTL_DEFAULT_URL
    ")\n"
    "  --token TOKEN  the API token (else AGENTD_TOKEN, else the config file); argv is\n"
    "                 visible to every user (ps): prefer AGENTD_TOKEN or agentctl login\n"
    "  --json         print the server's JSON, one document, and nothing else on stdout\n"
    "  --idempotency-key KEY\n"
    "                 the Idempotency-Key of the command's POST (default: a random one per\n"
    "                 run); the same KEY again within 24 h gets the first answer back\n"
    "                 instead of doing the work twice. A POST whose connection breaks\n"
    "                 before any answer is sent once more with its key.\n"
    "                 A 429 is waited out as its Retry-After says (up to 60 s) and asked\n"
    "                 again, at most twice.\n"
    "  --help, -h     this text, or a verb's own help (agentctl train --help)\n"
    "\n"
    "A request that gets not one byte from the server for AGENTCTL_STALL_TIMEOUT_S\n"
    "seconds (default 300) is given up (exit 3).\n"
    "\n"
    "Exit codes:\n"
    "  0  ok\n"
    "  1  usage error (nothing was sent), or the config file cannot be read or written\n"
    "  2  the server refused the request (4xx other than 401/403)\n"
    "  3  the server failed (5xx), could not be reached, or broke the connection\n"
    "  4  authentication or permission refused (401, 403)\n"
    "  5  the request worked but what it started failed (the agent ended in error, the\n"
    "     training run failed or was cancelled, the deployment was rejected, the answer\n"
    "     stream broke off)\n"
    "\n"
    "Errors print the server's message, code, HTTP status and request id on stderr.\n"
    "\n"
    "Verbs:\n";

static void print_global_help(FILE *f)
{
    fputs(GLOBAL_HELP, f);
    for (size_t i = 0; i < NVERBS; i++)
        fprintf(f, "  %s\n", VERBS[i].usage);
}

static void print_verb_help(const verb *v)
{
    printf("usage: %s\n\n%s", v->usage, v->help);
    printf("\nGlobal flags: --url URL, --token TOKEN, --json, --idempotency-key KEY, --help\n"
           "(see agentctl --help).\n");
}

/* The verb for argv's first one or two words; `used` says how many. */
static const verb *find_verb(int argc, char **argv, int *used, const char **group_only)
{
    *group_only = NULL;
    if (argc < 1) return NULL;
    for (size_t i = 0; i < NVERBS; i++) {
        if (!VERBS[i].group && !strcmp(VERBS[i].name, argv[0])) {
            *used = 1;
            return &VERBS[i];
        }
        if (VERBS[i].group && !strcmp(VERBS[i].group, argv[0])) {
            *group_only = VERBS[i].group;
            if (argc >= 2 && !strcmp(VERBS[i].name, argv[1])) {
                *used = 2;
                return &VERBS[i];
            }
        }
    }
    return NULL;
}

static void print_group_help(const char *group, FILE *f)
{
    fprintf(f, "usage:\n");
    for (size_t i = 0; i < NVERBS; i++)
        if (VERBS[i].group && !strcmp(VERBS[i].group, group)) fprintf(f, "  %s\n", VERBS[i].usage);
    fprintf(f, "\nEach has its own --help.\n");
}

int main(int argc, char **argv)
{
    /* Global flags first, from anywhere before "--"; the rest stays in order. */
    const char *url = NULL, *token = NULL, *idem = NULL;
    int json = 0, help = 0, n = 0;
    char **rest = ad_calloc((size_t)argc + 1, sizeof(char *));
    int dashdash = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && !strcmp(a, "--")) dashdash = 1;
        if (dashdash) {
            rest[n++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help = 1;
        } else if (!strcmp(a, "--url") || !strcmp(a, "--token") ||
                   !strcmp(a, "--idempotency-key")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "agentctl: %s needs a value\n", a);
                free(rest);
                return CTL_EXIT_USAGE;
            }
            *(a[2] == 'u' ? &url : a[2] == 't' ? &token : &idem) = argv[++i];
        } else if (!strncmp(a, "--url=", 6)) {
            url = a + 6;
        } else if (!strncmp(a, "--token=", 8)) {
            token = a + 8;
        } else if (!strncmp(a, "--idempotency-key=", 18)) {
            idem = a + 18;
        } else {
            rest[n++] = argv[i];
        }
    }
    int used = 0;
    const char *group = NULL;
    const verb *v = find_verb(n, rest, &used, &group);
    int rc;
    if (!v) {
        if (n == 0 && help) {
            print_global_help(stdout);
            rc = CTL_EXIT_OK;
        } else if (group && (help || n == 1)) {
            print_group_help(group, help ? stdout : stderr);
            rc = help ? CTL_EXIT_OK : CTL_EXIT_USAGE;
        } else {
            if (n == 0)
                fprintf(stderr, "agentctl: no verb given\n\n");
            else if (group)
                fprintf(stderr, "agentctl: unknown verb '%s %s'\n\n", group, rest[1]);
            else
                fprintf(stderr, "agentctl: unknown verb '%s'\n\n", rest[0]);
            print_global_help(stderr);
            rc = CTL_EXIT_USAGE;
        }
        free(rest);
        return rc;
    }
    if (help) {
        print_verb_help(v);
        free(rest);
        return CTL_EXIT_OK;
    }
    char verb_name[64];
    snprintf(verb_name, sizeof(verb_name), "%s%s%s", v->group ? v->group : "", v->group ? " " : "",
             v->name);
    ctl_session s = {.json = json, .tty = isatty(STDERR_FILENO), .verb = verb_name};
    ad_err e = {0};
    /* One key for the run's POST: a retry after a broken connection, or a
     * script running the command again with the same --idempotency-key,
     * gets the first answer instead of doing the work twice. */
    char random_key[42];
    if (idem && ctl_client_check_key(idem, &e) < 0) {
        free(rest);
        return ctl_session_usage(&s, "%s", e.msg);
    }
    if (!idem && ctl_client_random_key(random_key, &e) < 0) {
        fprintf(stderr, "agentctl: %s\n", e.msg);
        free(rest);
        return CTL_EXIT_USAGE;
    }
    s.client.idempotency_key = idem ? idem : random_key;
    const char *stall = getenv("AGENTCTL_STALL_TIMEOUT_S");
    long long stall_s = 0;
    if (stall && *stall && ctl_args_integer(stall, 1, 86400, &stall_s) < 0) {
        free(rest);
        return ctl_session_usage(
            &s, "AGENTCTL_STALL_TIMEOUT_S must be a number of seconds from 1 to 86400, got '%s'",
            stall);
    }
    s.client.stall_s = (long)stall_s;
    if (ctl_client_global_init(&e) < 0) {
        fprintf(stderr, "agentctl: %s\n", e.msg);
        free(rest);
        return CTL_EXIT_SERVER;
    }
    if (!v->fn) {
        rc = ctl_login(&s, url, token, n - used, rest + used);
    } else {
        ctl_config c;
        if (ctl_config_load(&c, url, token, &e) < 0) {
            fprintf(stderr, "agentctl %s: %s\n", verb_name, e.msg);
            rc = CTL_EXIT_USAGE;
        } else {
            s.client.url = c.url;
            s.client.token = c.token;
            rc = v->fn(&s, n - used, rest + used);
        }
        ctl_config_cleanup(&c);
    }
    ctl_client_global_cleanup();
    free(rest);
    return rc;
}
