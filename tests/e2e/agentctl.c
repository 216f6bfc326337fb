/* agentctl, the real binary (AGENTCTL_BIN, or agentctl next to AGENTD_BIN)
 * against the real agentd: every verb, its exit code and --json output, the
 * checks `train` makes before sending anything (seed 000), login's config
 * file (mode 0600) and its prompts on a terminal, the progress bar on a
 * pseudo-terminal against plain lines through a pipe, and `ask` streaming
 * the answer piece by piece (the fake Gemini server, slow stream). */
#include "base/buf.h"
#include "tests/e2e/harness.h"
#include "tests/fake/gemini.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

Suite *e2e_agentctl_suite(void);

#define ADMIN_KEY "ctl-admin-key-0123456789"
#define DEAD_URL "http://127.0.0.1:1"

extern char **environ;

/* ---- running agentctl ------------------------------------------------------ */

typedef struct ctl_run {
    int code;               /* exit status */
    char *out;              /* stdout (with a pty: everything the terminal got) */
    char *err;              /* stderr ("" with a pty) */
    long long first_out_ms; /* when stdout's first byte came, from the start */
    long long end_ms;       /* when stdout closed */
} ctl_run;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *ctl_bin(void)
{
    static char path[1024];
    const char *bin = getenv("AGENTCTL_BIN");
    if (bin && *bin) return bin;
    const char *agentd = getenv("AGENTD_BIN");
    if (!agentd || !*agentd) return "bin/agentctl";
    char copy[1024];
    snprintf(copy, sizeof(copy), "%s", agentd);
    snprintf(path, sizeof(path), "%s/agentctl", dirname(copy));
    return path;
}

/* The child's environment: ours without the settings agentctl reads (each
 * test gives its own), plus `extra` ("K=V", NULL-terminated). */
static char **child_env(const char *const *extra, const char *home)
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    while (extra && extra[k])
        k++;
    char **env = calloc(n + k + 2, sizeof(char *));
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strncmp(environ[i], "AGENTD_URL=", 11) || !strncmp(environ[i], "AGENTD_TOKEN=", 13) ||
            !strncmp(environ[i], "XDG_CONFIG_HOME=", 16) || !strncmp(environ[i], "HOME=", 5))
            continue;
        env[j++] = environ[i];
    }
    static char home_var[400];
    snprintf(home_var, sizeof(home_var), "HOME=%s", home);
    env[j++] = home_var;
    for (size_t i = 0; i < k; i++)
        env[j++] = (char *)(uintptr_t)extra[i];
    env[j] = NULL;
    return env;
}

static void exec_ctl(const char *const *args, char **env)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = ctl_bin();
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    execve(argv[0], (char *const *)(uintptr_t)argv, env);
    _exit(127);
}

static int wait_code(pid_t pid)
{
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st), "agentctl died of signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    return WEXITSTATUS(st);
}

/* Runs agentctl with `args` (NULL-terminated) through pipes: `in` on its
 * stdin (NULL: empty), HOME=`home`, and `env`. */
static ctl_run run_ctl(const char *home, const char *const *env, const char *in,
                       const char *const *args)
{
    int pin[2], pout[2], perr[2];
    ck_assert(pipe(pin) == 0 && pipe(pout) == 0 && pipe(perr) == 0);
    char **envp = child_env(env, home);
    long long t0 = now_ms();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        close(pin[1]);
        close(pout[0]);
        close(perr[0]);
        exec_ctl(args, envp);
    }
    free(envp);
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    if (in) ck_assert_int_eq(write(pin[1], in, strlen(in)), (ssize_t)strlen(in));
    close(pin[1]);
    ad_buf out, err;
    ad_buf_init(&out);
    ad_buf_init(&err);
    ctl_run r = {.first_out_ms = -1};
    struct pollfd fds[2] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        ck_assert_int_ge(poll(fds, 2, 60000), 1);
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof(buf));
            if (n <= 0) {
                if (i == 0) r.end_ms = now_ms() - t0;
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            if (i == 0 && r.first_out_ms < 0) r.first_out_ms = now_ms() - t0;
            ad_buf_append(i == 0 ? &out : &err, buf, (size_t)n);
        }
    }
    r.code = wait_code(pid);
    if (!out.data) ad_buf_puts(&out, "");
    if (!err.data) ad_buf_puts(&err, "");
    r.out = ad_buf_steal(&out, NULL);
    r.err = ad_buf_steal(&err, NULL);
    return r;
}

/* Runs agentctl on a pseudo-terminal (stdin, stdout and stderr all on it);
 * `lines` are typed one at a time, each after the terminal shows its prompt
 * `prompts[i]`. Everything the terminal showed is in `out`. */
static ctl_run run_ctl_pty(const char *home, const char *const *env, const char *const *prompts,
                           const char *const *lines, const char *const *args)
{
    char **envp = child_env(env, home);
    int master = -1;
    struct winsize ws = {.ws_row = 24, .ws_col = 120};
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    ck_assert_int_ge(pid, 0);
    if (pid == 0) exec_ctl(args, envp);
    free(envp);
    ad_buf out;
    ad_buf_init(&out);
    int typed = 0;
    for (;;) {
        struct pollfd p = {master, POLLIN, 0};
        ck_assert_int_ge(poll(&p, 1, 60000), 1);
        char buf[4096];
        ssize_t n = read(master, buf, sizeof(buf));
        if (n <= 0) break; /* EIO: the child closed the terminal */
        ad_buf_append(&out, buf, (size_t)n);
        while (prompts && prompts[typed] && strstr(out.data, prompts[typed])) {
            ck_assert_int_eq(write(master, lines[typed], strlen(lines[typed])),
                             (ssize_t)strlen(lines[typed]));
            ck_assert_int_eq(write(master, "\n", 1), 1);
            typed++;
        }
    }
    close(master);
    ctl_run r = {.first_out_ms = -1};
    r.code = wait_code(pid);
    if (!out.data) ad_buf_puts(&out, "");
    r.out = ad_buf_steal(&out, NULL);
    r.err = calloc(1, 1);
    return r;
}

static void run_free(ctl_run *r)
{
    free(r->out);
    free(r->err);
}

/* A run that must exit `code`; `what` labels a failure. */
static void expect_code(const ctl_run *r, int code, const char *what)
{
    ck_assert_msg(r->code == code, "%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, r->code,
                  code, r->out, r->err);
}

/* stdout is exactly one JSON document (and nothing else); the caller frees it. */
static cJSON *one_json(const ctl_run *r, const char *what)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(r->out, &end, 0);
    ck_assert_msg(doc != NULL, "%s: stdout is not JSON: %s", what, r->out);
    while (end && (*end == '\n' || *end == ' '))
        end++;
    ck_assert_msg(end && !*end, "%s: more than one document on stdout: %s", what, r->out);
    return doc;
}

typedef struct ctl_env {
    e2e_server srv;
    char url[64];
    char url_var[80];
    char home[300];
    const char *env[8];
} ctl_env;

/* A temporary HOME for agentctl (inside the server's temp dir). */
static void make_home(ctl_env *c)
{
    snprintf(c->home, sizeof(c->home), "%s/home", c->srv.dir);
    ck_assert_int_eq(mkdir(c->home, 0755), 0);
}

/* Starts agentd (with `server_env`) and points AGENTD_URL at it. */
static void start(ctl_env *c, const char *const *server_env)
{
    memset(c, 0, sizeof(*c));
    e2e_start(&c->srv, NULL, server_env);
    snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d", c->srv.port);
    snprintf(c->url_var, sizeof(c->url_var), "AGENTD_URL=%s", c->url);
    c->env[0] = c->url_var;
    make_home(c);
}

static void stop(ctl_env *c)
{
    ck_assert_int_eq(e2e_stop(&c->srv), 0);
    e2e_cleanup(&c->srv);
}

/* A run of agentctl with the suite's environment: args as a list. */
#define CTL(c, ...) run_ctl((c)->home, (c)->env, NULL, (const char *const[]){__VA_ARGS__, NULL})

/* agents create ID --text FILE --wait (plain lines: a pipe); must succeed. */
static void create_text_agent(ctl_env *c, const char *id, const char *text)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s.txt", c->home, id);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ctl_run r = CTL(c, "agents", "create", id, "--text", path, "--wait");
    expect_code(&r, 0, "agents create --text --wait");
    run_free(&r);
}

static const char TEXT[] = "Alice runs the build farm. Builds are queued by priority. A failed "
                           "build is retried twice before anyone "
                           "is paged. Release builds are signed with the team key. The farm has "
                           "forty machines in two racks.";

/* ---- a scripted server: what agentd never does ------------------------------ */

/* A loopback listener that answers its i-th connection with replies[i]
 * (NULL: read the request, then close without a word), written a few bytes
 * at a time so that the client sees lines and events cut anywhere, then
 * `tail_bytes` more bytes of "data: x" with no event end (0: none). */
typedef struct raw_server {
    int fd;
    int port;
    const char *const *replies;
    int nreplies;
    size_t tail_bytes;
    int hold_ms;     /* how long to keep the connection open, silent, at the end */
    ad_buf requests; /* every request received, one after the other */
    pthread_t thread;
} raw_server;

/* Reads one request (headers, then Content-Length bytes of body). */
static void raw_read_request(int fd, ad_buf *into)
{
    ad_buf req;
    ad_buf_init(&req);
    long want = -1;
    for (;;) {
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        ad_buf_append(&req, buf, (size_t)n);
        const char *end = strstr(req.data, "\r\n\r\n");
        if (!end) continue;
        if (want < 0) {
            const char *cl = strcasestr(req.data, "Content-Length:");
            want = (long)(end + 4 - req.data) + (cl && cl < end ? atol(cl + 15) : 0);
        }
        if ((long)req.len >= want) break;
    }
    if (req.data) ad_buf_append(into, req.data, req.len);
    ad_buf_cleanup(&req);
}

static void *raw_main(void *arg)
{
    raw_server *rs = arg;
    for (int i = 0; i < rs->nreplies; i++) {
        int c = accept(rs->fd, NULL, NULL);
        if (c < 0) break;
        raw_read_request(c, &rs->requests);
        const char *r = rs->replies[i];
        for (size_t off = 0, len = r ? strlen(r) : 0; off < len; off += 7) {
            size_t k = len - off < 7 ? len - off : 7;
            if (send(c, r + off, k, MSG_NOSIGNAL) < 0) break;
            struct timespec ts = {0, 1000000L};
            nanosleep(&ts, NULL);
        }
        static const char tail[] =
            "data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
        for (size_t sent = 0; sent < rs->tail_bytes; sent += sizeof(tail) - 1)
            if (send(c, tail, sizeof(tail) - 1, MSG_NOSIGNAL) < 0) break;
        /* Silent until the client hangs up or the time is over. */
        struct pollfd peer = {c, POLLIN, 0};
        if (rs->hold_ms) poll(&peer, 1, rs->hold_ms);
        close(c);
    }
    return NULL;
}

static void raw_start(raw_server *rs, const char *const *replies, int n, size_t tail_bytes,
                      int hold_ms)
{
    memset(rs, 0, sizeof(*rs));
    rs->replies = replies;
    rs->nreplies = n;
    rs->tail_bytes = tail_bytes;
    rs->hold_ms = hold_ms;
    ad_buf_init(&rs->requests);
    rs->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(rs->fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    ck_assert_int_eq(bind(rs->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(rs->fd, 4), 0);
    ck_assert_int_eq(getsockname(rs->fd, (struct sockaddr *)&a, &alen), 0);
    rs->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&rs->thread, NULL, raw_main, rs), 0);
}

/* Waits for the script to end; `requests` stays for the caller to read. */
static void raw_stop(raw_server *rs)
{
    shutdown(rs->fd, SHUT_RDWR);
    pthread_join(rs->thread, NULL);
    close(rs->fd);
    if (!rs->requests.data) ad_buf_puts(&rs->requests, "");
}

/* Runs agentctl with --url the scripted server (`replies`, `n`,
 * `tail_bytes`, `hold_ms` as raw_start), `env` ("K=V", NULL-terminated, or
 * NULL), `args` and `in` on stdin; what the server received is left in
 * `requests` (the caller cleans it up). */
static ctl_run raw_run(const char *const *replies, int n, size_t tail_bytes, int hold_ms,
                       const char *const *env, const char *in, const char *const *args,
                       ad_buf *requests)
{
    char home[] = "/tmp/ctl-raw-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(home));
    raw_server rs;
    raw_start(&rs, replies, n, tail_bytes, hold_ms);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", rs.port);
    const char *argv[16] = {"--url", url};
    int k = 2;
    for (int i = 0; args[i] && k < 15; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    ctl_run r = run_ctl(home, env, in, argv);
    raw_stop(&rs);
    *requests = rs.requests;
    rmdir(home);
    return r;
}

/* ---- help and usage ------------------------------------------------------- */

START_TEST(test_help_on_every_verb)
{
    char home[] = "/tmp/ctl-help-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(home));
    const char *env[] = {"AGENTD_URL=" DEAD_URL, NULL};
    ctl_run r = run_ctl(home, env, NULL, (const char *const[]){"--help", NULL});
    expect_code(&r, 0, "--help");
    ck_assert_ptr_nonnull(strstr(r.out, "Exit codes"));
    const char *verbs[][2] = {{"login", NULL},      {"agents", "create"}, {"agents", "list"},
                              {"agents", "status"}, {"agents", "delete"}, {"ask", NULL},
                              {"train", NULL},      {"replay", NULL},     {"deploy", "create"},
                              {"deploy", "push"},   {"deploy", "status"}, {"deploy", "logs"},
                              {"deploy", "list"},   {"deploy", "remove"}, {"tokens", "create"},
                              {"tokens", "list"},   {"tokens", "revoke"}, {"tokens", "rotate"}};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        char usage[64];
        snprintf(usage, sizeof(usage), "agentctl %s%s%s", verbs[i][0], verbs[i][1] ? " " : "",
                 verbs[i][1] ? verbs[i][1] : "");
        ck_assert_msg(strstr(r.out, usage), "--help does not list '%s'", usage);
        ctl_run v =
            verbs[i][1]
                ? run_ctl(home, env, NULL,
                          (const char *const[]){verbs[i][0], verbs[i][1], "--help", NULL})
                : run_ctl(home, env, NULL, (const char *const[]){verbs[i][0], "--help", NULL});
        expect_code(&v, 0, usage);
        char want[80];
        snprintf(want, sizeof(want), "usage: %s", usage);
        ck_assert_msg(!strncmp(v.out, want, strlen(want)), "%s --help: %s", usage, v.out);
        run_free(&v);
    }
    run_free(&r);
    /* No verb, an unknown one, an unknown option: usage errors, exit 1. */
    r = run_ctl(home, env, NULL, (const char *const[]){NULL});
    expect_code(&r, 1, "no verb");
    run_free(&r);
    r = run_ctl(home, env, NULL, (const char *const[]){"fly", NULL});
    expect_code(&r, 1, "unknown verb");
    ck_assert_ptr_nonnull(strstr(r.err, "unknown verb 'fly'"));
    run_free(&r);
    r = run_ctl(home, env, NULL, (const char *const[]){"agents", "list", "--colour", NULL});
    expect_code(&r, 1, "unknown option");
    ck_assert_ptr_nonnull(strstr(r.err, "unknown option '--colour'"));
    run_free(&r);
    rmdir(home);
}
END_TEST

/* Seed 000's checks, made before any request: the URL points at nothing,
 * so a request would be exit 3 — exit 1 with the message proves none went. */
START_TEST(test_train_checks_its_arguments_before_sending)
{
    char home[] = "/tmp/ctl-train-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(home));
    const char *env[] = {"AGENTD_URL=" DEAD_URL, NULL};
    static const struct {
        const char *n, *name, *msg;
    } cases[] = {
        {"abc", "v2", "-n must be a positive integer, got 'abc'"},
        {"0", "v2", "-n must be a positive integer, got '0'"},
        {"-3", "v2", "-n must be a positive integer, got '-3'"},
        {"1.5", "v2", "-n must be a positive integer, got '1.5'"},
        {"", "v2", "-n must be a positive integer, got ''"},
        {"5x", "v2", "-n must be a positive integer, got '5x'"},
        {"1001", "v2", "-n must be at most 1000, got '1001'"},
        {"99999999999999999999", "v2", "-n must be a positive integer, got '99999999999999999999'"},
        {NULL, "v2", "-n is required"},
        {"3", NULL, "--name is required"},
        {"3", "", "--name must be 1 to 64 characters, got ''"},
        {"3", "a b",
         "--name may contain only letters, digits, '_', '.' and '-', got 'a b' (' ' at 2)"},
        {"3", "v2/../x",
         "--name may contain only letters, digits, '_', '.' and '-', got 'v2/../x' ('/' at 3)"},
        {"3", "..", "--name must not be '.' or '..', got '..'"},
        {"3", "group-7",
         "--name must not begin with 'group-' (reserved for group training), got 'group-7'"},
        {"3", "a123456789b123456789c123456789d123456789e123456789f123456789g1234",
         "--name must be 1 to 64 characters"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[8];
        int k = 0;
        args[k++] = "train";
        args[k++] = "alice";
        if (cases[i].n) args[k++] = "-n", args[k++] = cases[i].n;
        if (cases[i].name) args[k++] = "--name", args[k++] = cases[i].name;
        args[k] = NULL;
        ctl_run r = run_ctl(home, env, NULL, args);
        expect_code(&r, 1, cases[i].msg);
        ck_assert_msg(strstr(r.err, cases[i].msg), "case %zu: stderr %s, want %s", i, r.err,
                      cases[i].msg);
        ck_assert_msg(strstr(r.err, "agentctl train --help"), "case %zu: no pointer to --help: %s",
                      i, r.err);
        ck_assert_str_eq(r.out, "");
        run_free(&r);
    }
    /* The long spelling and the = form take the same checks. */
    ctl_run r =
        run_ctl(home, env, NULL,
                (const char *const[]){"train", "alice", "--iterations=x", "--name=v2", NULL});
    expect_code(&r, 1, "--iterations=x");
    ck_assert_ptr_nonnull(strstr(r.err, "-n must be a positive integer, got 'x'"));
    run_free(&r);
    /* Valid arguments do reach for the server: exit 3, unreachable. */
    r = run_ctl(home, env, NULL,
                (const char *const[]){"train", "alice", "-n", "3", "--name", "v2", NULL});
    expect_code(&r, 3, "valid train against no server");
    ck_assert_ptr_nonnull(strstr(r.err, "cannot reach agentd at " DEAD_URL));
    run_free(&r);
    rmdir(home);
}
END_TEST

/* ---- login and the config file -------------------------------------------- */

static char *read_text(const char *path)
{
    return e2e_read_file(path, NULL);
}

static int file_mode(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
    return (int)(st.st_mode & 0777);
}

START_TEST(test_login_writes_a_private_config_file)
{
    ctl_env c;
    const char *server_env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};
    start(&c, server_env);
    const char *no_url[] = {NULL};
    char cfg[600], dir[500];
    snprintf(dir, sizeof(dir), "%s/.config/agentctl", c.home);
    snprintf(cfg, sizeof(cfg), "%s/config", dir);

    /* A wrong token: 401 from the server, exit 4, nothing written. */
    ctl_run r = run_ctl(c.home, no_url, NULL,
                        (const char *const[]){"login", "--url", c.url, "--token", "wrong", NULL});
    expect_code(&r, 4, "login with a wrong token");
    ck_assert_ptr_nonnull(strstr(r.err, "HTTP 401"));
    ck_assert_int_eq(access(cfg, F_OK), -1);
    run_free(&r);

    /* The right one: written under ~/.config/agentctl, 0600 in 0700. */
    r = run_ctl(c.home, no_url, NULL,
                (const char *const[]){"login", "--url", c.url, "--token", ADMIN_KEY, NULL});
    expect_code(&r, 0, "login");
    ck_assert_ptr_nonnull(strstr(r.out, cfg));
    ck_assert_ptr_null(strstr(r.out, ADMIN_KEY));
    ck_assert_int_eq(file_mode(cfg), 0600);
    ck_assert_int_eq(file_mode(dir), 0700);
    char *text = read_text(cfg);
    ck_assert_ptr_nonnull(strstr(text, c.url));
    ck_assert_ptr_nonnull(strstr(text, ADMIN_KEY));
    free(text);
    run_free(&r);

    /* Later commands use it, with no environment at all. */
    r = run_ctl(c.home, no_url, NULL, (const char *const[]){"agents", "list", NULL});
    expect_code(&r, 0, "agents list with the config file");
    run_free(&r);
    /* AGENTD_TOKEN overrides the file, --token overrides both. */
    const char *bad_token[] = {"AGENTD_TOKEN=wrong", NULL};
    r = run_ctl(c.home, bad_token, NULL, (const char *const[]){"agents", "list", NULL});
    expect_code(&r, 4, "AGENTD_TOKEN over the file");
    run_free(&r);
    r = run_ctl(c.home, bad_token, NULL,
                (const char *const[]){"agents", "list", "--token", ADMIN_KEY, NULL});
    expect_code(&r, 0, "--token over AGENTD_TOKEN");
    run_free(&r);
    /* AGENTD_URL overrides the file's URL, --url overrides both. */
    const char *dead[] = {"AGENTD_URL=" DEAD_URL, NULL};
    r = run_ctl(c.home, dead, NULL, (const char *const[]){"agents", "list", NULL});
    expect_code(&r, 3, "AGENTD_URL over the file");
    run_free(&r);
    r = run_ctl(c.home, dead, NULL, (const char *const[]){"--url", c.url, "agents", "list", NULL});
    expect_code(&r, 0, "--url over AGENTD_URL");
    run_free(&r);

    /* XDG_CONFIG_HOME moves the file; a umask of 0 still gives 0600. */
    char xdg[400], xdg_var[420], xdg_cfg[440];
    snprintf(xdg, sizeof(xdg), "%s/xdg", c.home);
    snprintf(xdg_var, sizeof(xdg_var), "XDG_CONFIG_HOME=%s", xdg);
    snprintf(xdg_cfg, sizeof(xdg_cfg), "%s/agentctl/config", xdg);
    const char *xdg_env[] = {xdg_var, NULL};
    mode_t old = umask(0);
    r = run_ctl(c.home, xdg_env, NULL,
                (const char *const[]){"login", "--url", c.url, "--token", ADMIN_KEY, NULL});
    umask(old);
    expect_code(&r, 0, "login with XDG_CONFIG_HOME");
    ck_assert_int_eq(file_mode(xdg_cfg), 0600);
    run_free(&r);
    /* --json: one document, and it does not carry the secret. */
    r = run_ctl(
        c.home, xdg_env, NULL,
        (const char *const[]){"login", "--json", "--url", c.url, "--token", ADMIN_KEY, NULL});
    expect_code(&r, 0, "login --json");
    cJSON *doc = one_json(&r, "login --json");
    ck_assert_str_eq(e2e_json_str(doc, "config"), xdg_cfg);
    ck_assert_ptr_null(strstr(r.out, ADMIN_KEY));
    cJSON_Delete(doc);
    run_free(&r);
    stop(&c);
}
END_TEST

START_TEST(test_login_prompts_on_a_terminal_without_echoing_the_token)
{
    ctl_env c;
    const char *server_env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};
    start(&c, server_env);
    const char *none[] = {NULL};
    const char *prompts[] = {"agentd URL", "token", NULL};
    const char *lines[] = {c.url, ADMIN_KEY, NULL};
    ctl_run r = run_ctl_pty(c.home, none, prompts, lines, (const char *const[]){"login", NULL});
    expect_code(&r, 0, "login on a terminal");
    ck_assert_msg(strstr(r.out, c.url), "the URL typed is echoed: %s", r.out);
    ck_assert_msg(!strstr(r.out, ADMIN_KEY), "the token was echoed: %s", r.out);
    char cfg[400];
    snprintf(cfg, sizeof(cfg), "%s/.config/agentctl/config", c.home);
    ck_assert_int_eq(file_mode(cfg), 0600);
    char *text = read_text(cfg);
    ck_assert_ptr_nonnull(strstr(text, ADMIN_KEY));
    free(text);
    run_free(&r);
    stop(&c);
}
END_TEST

/* ---- agents ---------------------------------------------------------------- */

START_TEST(test_agents_verbs_exit_codes_and_json)
{
    ctl_env c;
    start(&c, NULL);
    /* From a dataset file (the object shape of tests/data/), waiting. */
    ctl_run r = CTL(&c, "--json", "agents", "create", "ml", "--dataset",
                    e2e_test_file("data/ml_expert_dataset.json"), "--wait");
    expect_code(&r, 0, "create --dataset --wait --json");
    cJSON *doc = one_json(&r, "create --wait --json");
    ck_assert_str_eq(e2e_json_str(doc, "status"), "ready");
    ck_assert_str_eq(e2e_json_str(doc, "user_id"), "ml");
    cJSON_Delete(doc);
    run_free(&r);
    /* From stdin, not waiting: --json is the server's 201 body. */
    r = run_ctl(c.home, c.env, TEXT,
                (const char *const[]){"agents", "create", "alice", "--text", "-", "--json",
                                      "--language", "en", NULL});
    expect_code(&r, 0, "create --text -");
    doc = one_json(&r, "create --json");
    ck_assert_str_eq(e2e_json_str(doc, "status"), "created");
    ck_assert_str_eq(e2e_json_str(doc, "language"), "en");
    cJSON_Delete(doc);
    run_free(&r);
    ck_assert_str_eq(e2e_wait_agent(&c.srv, "alice", 60000), "ready");

    /* Refused: the server's message and code on stderr, exit 2; with
     * --json its error document on stdout. */
    r = run_ctl(c.home, c.env, TEXT,
                (const char *const[]){"agents", "create", "alice", "--text", "-", NULL});
    expect_code(&r, 2, "create twice");
    ck_assert_msg(strstr(r.err, "agent_exists") && strstr(r.err, "HTTP 409") &&
                      strstr(r.err, "request "),
                  "stderr: %s", r.err);
    run_free(&r);
    r = CTL(&c, "agents", "status", "nobody", "--json");
    expect_code(&r, 2, "status of nobody");
    doc = one_json(&r, "status --json error");
    ck_assert_str_eq(e2e_json_str(doc, "code"), "agent_not_found");
    cJSON_Delete(doc);
    ck_assert_ptr_nonnull(strstr(r.err, "agent_not_found"));
    run_free(&r);
    r = CTL(&c, "agents", "create", "bob", "--text", "/nonexistent/file");
    expect_code(&r, 1, "unreadable --text");
    run_free(&r);
    r = CTL(&c, "agents", "create", "bob");
    expect_code(&r, 1, "create without material");
    ck_assert_ptr_nonnull(strstr(r.err, "give exactly one of --text"));
    run_free(&r);
    r = run_ctl(c.home, c.env, TEXT,
                (const char *const[]){"agents", "create", "bob", "--text", "-", "--language",
                                      "klingon", NULL});
    expect_code(&r, 2, "a bad language");
    ck_assert_ptr_nonnull(strstr(r.err, "invalid_language"));
    run_free(&r);

    /* list and status, human and --json. */
    r = CTL(&c, "agents", "list");
    expect_code(&r, 0, "list");
    ck_assert_ptr_nonnull(strstr(r.out, "alice"));
    ck_assert_ptr_nonnull(strstr(r.out, "ml"));
    run_free(&r);
    r = CTL(&c, "agents", "list", "--json", "--limit", "1");
    expect_code(&r, 0, "list --json");
    doc = one_json(&r, "list --json");
    ck_assert_int_eq((int)e2e_json_num(doc, "count"), 1);
    ck_assert_str_eq(e2e_json_str(doc, "next_cursor"), "alice");
    cJSON_Delete(doc);
    run_free(&r);
    r = CTL(&c, "agents", "status", "alice");
    expect_code(&r, 0, "status");
    ck_assert_ptr_nonnull(strstr(r.out, "alice: ready, 100%"));
    run_free(&r);
    r = CTL(&c, "agents", "status", "alice", "--json");
    expect_code(&r, 0, "status --json");
    doc = one_json(&r, "status --json");
    ck_assert_str_eq(e2e_json_str(doc, "status"), "ready");
    cJSON_Delete(doc);
    run_free(&r);

    /* delete, then it is gone. */
    r = CTL(&c, "agents", "delete", "alice", "--json");
    expect_code(&r, 0, "delete");
    doc = one_json(&r, "delete --json");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "deleted")));
    cJSON_Delete(doc);
    run_free(&r);
    r = CTL(&c, "agents", "delete", "alice");
    expect_code(&r, 2, "delete twice");
    run_free(&r);
    stop(&c);
}
END_TEST

START_TEST(test_unreachable_server_and_bad_token_exit_codes)
{
    ctl_env c;
    const char *server_env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};
    start(&c, server_env);
    const char *dead[] = {"AGENTD_URL=" DEAD_URL, NULL};
    ctl_run r = run_ctl(c.home, dead, NULL, (const char *const[]){"agents", "list", NULL});
    expect_code(&r, 3, "unreachable");
    ck_assert_ptr_nonnull(strstr(r.err, "cannot reach agentd"));
    ck_assert_str_eq(r.out, "");
    run_free(&r);
    r = CTL(&c, "agents", "list");
    expect_code(&r, 4, "no token against a keyed server");
    ck_assert_ptr_nonnull(strstr(r.err, "HTTP 401"));
    run_free(&r);
    r = CTL(&c, "agents", "list", "--token", "nope", "--json");
    expect_code(&r, 4, "a wrong token");
    cJSON *doc = one_json(&r, "401 --json");
    ck_assert_ptr_nonnull(e2e_json_str(doc, "code"));
    cJSON_Delete(doc);
    run_free(&r);
    r = CTL(&c, "agents", "list", "--token", ADMIN_KEY);
    expect_code(&r, 0, "the admin key");
    run_free(&r);
    stop(&c);
}
END_TEST

/* ---- progress: a bar on a terminal, lines through a pipe ------------------- */

START_TEST(test_progress_bar_on_a_terminal_plain_lines_in_a_pipe)
{
    ctl_env c;
    start(&c, NULL);
    /* On a terminal: the bar, redrawn in place (\r), ending at 100%. */
    ctl_run r = run_ctl_pty(c.home, c.env, NULL, NULL,
                            (const char *const[]){"agents", "create", "ml", "--dataset",
                                                  e2e_test_file("data/ml_expert_dataset.json"),
                                                  "--wait", NULL});
    expect_code(&r, 0, "create --wait on a terminal");
    ck_assert_msg(strstr(r.out, "\rml [") && strstr(r.out, "100%") &&
                      strstr(r.out, "##############################]"),
                  "no bar: %s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "agent ml is ready"));
    run_free(&r);
    /* Through a pipe: plain lines "ml: N% stage", no \r, no bar. */
    r = run_ctl(c.home, c.env, TEXT,
                (const char *const[]){"agents", "create", "alice", "--text", "-", "--wait", NULL});
    expect_code(&r, 0, "create --wait in a pipe");
    ck_assert_msg(strstr(r.err, "alice: 100% ready\n"), "no plain line: %s", r.err);
    ck_assert_ptr_null(strchr(r.err, '\r'));
    ck_assert_ptr_null(strstr(r.err, "[#"));
    ck_assert_ptr_nonnull(strstr(r.out, "agent alice is ready"));
    run_free(&r);

    /* train follows the run's iterations the same two ways. */
    r = run_ctl_pty(c.home, c.env, NULL, NULL,
                    (const char *const[]){"train", "ml", "-n", "3", "--name", "v2", NULL});
    expect_code(&r, 0, "train on a terminal");
    ck_assert_msg(strstr(r.out, "\rml training [") && strstr(r.out, "3/3 iterations (done)"),
                  "no bar: %s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "training 1 of ml done"));
    run_free(&r);
    r = CTL(&c, "train", "ml", "-n", "2", "--name", "v3");
    expect_code(&r, 0, "train in a pipe");
    ck_assert_msg(strstr(r.err, "ml training: 100% 2/2 iterations (done)\n"), "no plain line: %s",
                  r.err);
    ck_assert_ptr_null(strchr(r.err, '\r'));
    ck_assert_ptr_nonnull(strstr(r.out, "training 2 of ml done"));
    run_free(&r);
    /* --json: no progress at all, one document. */
    r = CTL(&c, "train", "ml", "-n", "1", "--name", "v4", "--json");
    expect_code(&r, 0, "train --json");
    ck_assert_str_eq(r.err, "");
    cJSON *doc = one_json(&r, "train --json");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "training");
    ck_assert_str_eq(e2e_json_str(t, "status"), "done");
    ck_assert_str_eq(e2e_json_str(t, "name"), "v4");
    cJSON_Delete(doc);
    run_free(&r);
    stop(&c);
}
END_TEST

/* ---- train, replay --------------------------------------------------------- */

START_TEST(test_train_and_replay)
{
    ctl_env c;
    start(&c, NULL);
    create_text_agent(&c, "alice", TEXT);
    ctl_run r = CTL(&c, "train", "alice", "-n", "2", "--name", "v2", "--no-wait", "--json");
    expect_code(&r, 0, "train --no-wait");
    cJSON *doc = one_json(&r, "train --no-wait --json");
    ck_assert_str_eq(e2e_json_str(doc, "name"), "v2");
    ck_assert_int_eq((int)e2e_json_num(doc, "iterations"), 2);
    cJSON_Delete(doc);
    run_free(&r);
    /* One job per agent: a second run while the first goes, or later a
     * version name taken: the server says why, exit 2. */
    for (int i = 0; i < 300; i++) {
        e2e_response s = e2e_get(&c.srv, "/api/v1/agents/alice/training");
        int done =
            s.json &&
            !strcmp(e2e_json_str(cJSON_GetObjectItemCaseSensitive(s.json, "training"), "status"),
                    "done");
        e2e_response_free(&s);
        if (done) break;
        e2e_sleep_ms(100);
    }
    r = CTL(&c, "train", "alice", "-n", "2", "--name", "v2");
    expect_code(&r, 2, "a taken version name");
    ck_assert_ptr_nonnull(strstr(r.err, "version_exists"));
    run_free(&r);
    r = CTL(&c, "train", "nobody", "-n", "2", "--name", "v9");
    expect_code(&r, 2, "train an unknown agent");
    ck_assert_ptr_nonnull(strstr(r.err, "agent_not_found"));
    run_free(&r);

    /* replay from a stage by its task id (GET .../executions). */
    e2e_response ex = e2e_get(&c.srv, "/api/v1/agents/alice/executions");
    ck_assert_int_eq(ex.status, 200);
    const cJSON *first =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ex.json, "executions"), 2);
    char *task = strdup(e2e_json_str(first, "task_id"));
    e2e_response_free(&ex);
    r = CTL(&c, "replay", "alice", "--task-id", task);
    expect_code(&r, 0, "replay --task-id");
    ck_assert_ptr_nonnull(strstr(r.out, "replay of alice from stage 2 (ModelEvaluator) queued"));
    run_free(&r);
    ck_assert_str_eq(e2e_wait_agent(&c.srv, "alice", 60000), "ready");
    for (int i = 0; i < 100; i++) {
        /* The replay job must be over before the next one is accepted. */
        r = CTL(&c, "replay", "alice", "--task-id", task, "--json");
        if (r.code == 0 || i == 99) break;
        run_free(&r);
        e2e_sleep_ms(100);
    }
    expect_code(&r, 0, "replay --json");
    doc = one_json(&r, "replay --json");
    ck_assert_str_eq(e2e_json_str(doc, "task_id"), task);
    ck_assert_int_eq((int)e2e_json_num(doc, "replay_from"), 2);
    cJSON_Delete(doc);
    run_free(&r);
    free(task);
    r = CTL(&c, "replay", "alice", "--task-id", "no-such-task", "--json");
    expect_code(&r, 2, "replay of an unknown task");
    doc = one_json(&r, "replay error --json");
    ck_assert_str_eq(e2e_json_str(doc, "code"), "unknown_task_id");
    cJSON_Delete(doc);
    run_free(&r);
    r = CTL(&c, "replay", "alice");
    expect_code(&r, 1, "replay without a task");
    run_free(&r);
    r = CTL(&c, "replay", "alice", "--task-index", "7");
    expect_code(&r, 1, "replay --task-index 7");
    ck_assert_ptr_nonnull(strstr(r.err, "--task-index must be an integer from 0 to 3, got '7'"));
    run_free(&r);
    stop(&c);
}
END_TEST

/* ---- ask ------------------------------------------------------------------- */

START_TEST(test_ask_local_streams_and_json)
{
    ctl_env c;
    start(&c, NULL);
    ctl_run r = CTL(&c, "agents", "create", "ml", "--dataset",
                    e2e_test_file("data/ml_expert_dataset.json"), "--wait");
    expect_code(&r, 0, "create ml");
    run_free(&r);
    const char *q = "How to choose between Random Forest and XGBoost?";
    r = CTL(&c, "ask", "ml", q, "--json");
    expect_code(&r, 0, "ask --json");
    cJSON *doc = one_json(&r, "ask --json");
    char *answer = strdup(e2e_json_str(doc, "response"));
    ck_assert_str_eq(e2e_json_str(doc, "backend"), "local");
    cJSON_Delete(doc);
    run_free(&r);
    /* Streamed: the same answer, then the sources. */
    r = CTL(&c, "ask", "ml", q);
    expect_code(&r, 0, "ask");
    ck_assert_msg(!strncmp(r.out, answer, strlen(answer)) && r.out[strlen(answer)] == '\n',
                  "stream %s\nvs %s", r.out, answer);
    ck_assert_ptr_nonnull(strstr(r.out, "\nsources:\n  ["));
    free(answer);
    run_free(&r);
    r = CTL(&c, "ask", "nobody", q);
    expect_code(&r, 2, "ask an unknown agent");
    ck_assert_ptr_nonnull(strstr(r.err, "agent_not_found"));
    run_free(&r);
    r = CTL(&c, "ask", "ml");
    expect_code(&r, 1, "ask without a prompt");
    run_free(&r);
    stop(&c);
}
END_TEST

START_TEST(test_ask_prints_each_piece_as_it_arrives)
{
    fake_gemini *fake = NULL;
    unsigned port = 0;
    ck_assert_int_eq(fake_gemini_start(&fake, &port), 0);
    char base[80];
    snprintf(base, sizeof(base), "GEMINI_BASE_URL=http://127.0.0.1:%u", port);
    const char *server_env[] = {"GEMINI_API_KEY=" FAKE_GEMINI_KEY, base, "GEMINI_MODEL=gemini-test",
                                "GEMINI_CHECK_TIMEOUT_MS=0", NULL};
    ctl_env c;
    start(&c, server_env);
    ctl_run r = CTL(&c, "agents", "create", "ml", "--dataset",
                    e2e_test_file("data/ml_expert_dataset.json"), "--wait");
    expect_code(&r, 0, "create ml");
    run_free(&r);
    /* 200 ms between the fake's chunks: a client that printed only at the
     * end would show its first byte when the stream closes. */
    fake_gemini_push_fault(fake, FAKE_SLOW_STREAM);
    r = CTL(&c, "ask", "ml", "What is overfitting?");
    expect_code(&r, 0, "ask, streamed");
    ck_assert_msg(!strncmp(r.out, "ANSWER: ", 8), "stdout: %s", r.out);
    ck_assert_msg(r.first_out_ms >= 0 && r.end_ms - r.first_out_ms >= FAKE_SLOW_STREAM_GAP_MS,
                  "first byte at %lld ms, end at %lld ms: not streamed", r.first_out_ms, r.end_ms);
    run_free(&r);
    /* Gemini refuses before the first token: the server's 502 is exit 3,
     * streamed or not, with its message and code. */
    fake_gemini_push_fault(fake, FAKE_400);
    r = CTL(&c, "ask", "ml", "What is overfitting?");
    expect_code(&r, 3, "ask, Gemini refused");
    ck_assert_msg(strstr(r.err, "HTTP 502") && strstr(r.err, "(upstream_"), "stderr: %s", r.err);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
    fake_gemini_push_fault(fake, FAKE_400);
    r = CTL(&c, "ask", "ml", "What is overfitting?", "--json");
    expect_code(&r, 3, "ask --json, Gemini refused");
    cJSON *doc = one_json(&r, "ask --json 502");
    ck_assert_msg(!strncmp(e2e_json_str(doc, "code"), "upstream_", 9), "%s", r.out);
    cJSON_Delete(doc);
    run_free(&r);
    /* The stream cut after two chunks: what came is printed, then exit 5. */
    fake_gemini_push_fault(fake, FAKE_STREAM_CUT);
    for (int i = 0; i < 3; i++)
        fake_gemini_push_fault(fake, FAKE_STREAM_CUT);
    r = CTL(&c, "ask", "ml", "What is overfitting?");
    ck_assert_msg(r.code == 5, "a cut stream: exit %d\n%s\n%s", r.code, r.out, r.err);
    run_free(&r);
    stop(&c);
    fake_gemini_stop(fake);
}
END_TEST

/* ---- tokens and deployments (the auth and deploy branches' routes) --------- */

START_TEST(test_tokens_verbs)
{
    ctl_env c;
    const char *server_env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};
    start(&c, server_env);
    const char *admin[] = {c.url_var, "AGENTD_TOKEN=" ADMIN_KEY, NULL};
    ctl_run r =
        run_ctl(c.home, admin, NULL,
                (const char *const[]){"tokens", "create", "--name", "ci", "--scope", "agents:read",
                                      "--scope", "inference", "--agent", "alice", "--json", NULL});
    expect_code(&r, 0, "tokens create --json");
    cJSON *doc = one_json(&r, "tokens create --json");
    int id = (int)e2e_json_num(doc, "id");
    char *secret = strdup(e2e_json_str(doc, "token"));
    ck_assert_msg(!strncmp(secret, "agd_", 4), "secret %s", secret);
    cJSON_Delete(doc);
    run_free(&r);
    /* Human output: the secret alone on the last line. */
    r = run_ctl(c.home, admin, NULL,
                (const char *const[]){"tokens", "create", "--name", "ops", "--scope", "admin",
                                      "--all-agents", "--expires-in", "3600", NULL});
    expect_code(&r, 0, "tokens create");
    ck_assert_ptr_nonnull(strstr(r.out, "secret (shown only this once):\nagd_"));
    run_free(&r);
    /* Checked before sending: an unknown scope, no agents, both. */
    r = run_ctl(c.home, admin, NULL,
                (const char *const[]){"tokens", "create", "--name", "x", "--scope", "root",
                                      "--all-agents", NULL});
    expect_code(&r, 1, "an unknown scope");
    ck_assert_ptr_nonnull(strstr(r.err, "got 'root'"));
    run_free(&r);
    r = run_ctl(c.home, admin, NULL,
                (const char *const[]){"tokens", "create", "--name", "x", "--scope", "admin", NULL});
    expect_code(&r, 1, "no --agent nor --all-agents");
    run_free(&r);
    /* The new token works for what it may do, and is 403 (exit 4) for
     * what it may not. */
    char tok_var[200];
    snprintf(tok_var, sizeof(tok_var), "AGENTD_TOKEN=%s", secret);
    const char *as_token[] = {c.url_var, tok_var, NULL};
    r = run_ctl(c.home, as_token, NULL, (const char *const[]){"agents", "list", NULL});
    expect_code(&r, 0, "agents list with the token");
    run_free(&r);
    r = run_ctl(c.home, as_token, NULL, (const char *const[]){"tokens", "list", NULL});
    expect_code(&r, 4, "tokens list without admin");
    ck_assert_ptr_nonnull(strstr(r.err, "insufficient_scope"));
    run_free(&r);
    /* list, rotate, revoke. */
    r = run_ctl(c.home, admin, NULL, (const char *const[]){"tokens", "list", "--json", NULL});
    expect_code(&r, 0, "tokens list --json");
    doc = one_json(&r, "tokens list --json");
    ck_assert_int_eq((int)e2e_json_num(doc, "count"), 2);
    ck_assert_ptr_null(strstr(r.out, secret));
    cJSON_Delete(doc);
    run_free(&r);
    char ids[16];
    snprintf(ids, sizeof(ids), "%d", id);
    r = run_ctl(c.home, admin, NULL,
                (const char *const[]){"tokens", "rotate", ids, "--grace", "60", "--json", NULL});
    expect_code(&r, 0, "tokens rotate");
    doc = one_json(&r, "tokens rotate --json");
    ck_assert_str_ne(e2e_json_str(doc, "token"), secret);
    ck_assert_ptr_nonnull(e2e_json_str(doc, "previous_valid_until"));
    cJSON_Delete(doc);
    run_free(&r);
    r = run_ctl(c.home, admin, NULL, (const char *const[]){"tokens", "revoke", ids, NULL});
    expect_code(&r, 0, "tokens revoke");
    run_free(&r);
    r = run_ctl(c.home, as_token, NULL, (const char *const[]){"agents", "list", NULL});
    expect_code(&r, 4, "a revoked token");
    run_free(&r);
    r = run_ctl(c.home, admin, NULL, (const char *const[]){"tokens", "revoke", "abc", NULL});
    expect_code(&r, 1, "revoke abc");
    run_free(&r);
    r = run_ctl(c.home, admin, NULL, (const char *const[]){"tokens", "revoke", "999", NULL});
    expect_code(&r, 2, "revoke an unknown id");
    run_free(&r);
    free(secret);
    stop(&c);
}
END_TEST

START_TEST(test_deploy_verbs)
{
    ctl_env c;
    start(&c, NULL);
    create_text_agent(&c, "alice", TEXT);
    ctl_run r = CTL(&c, "train", "alice", "-n", "2", "--name", "v2");
    expect_code(&r, 0, "train v2");
    run_free(&r);
    /* create without push: pending; then push, status, logs, list. */
    r = CTL(&c, "deploy", "create", "alice", "--model", "v1", "--no-push", "--json");
    expect_code(&r, 0, "deploy create --no-push");
    cJSON *doc = one_json(&r, "deploy create --json");
    ck_assert_str_eq(e2e_json_str(doc, "status"), "pending");
    char *uuid = strdup(e2e_json_str(doc, "id"));
    cJSON_Delete(doc);
    run_free(&r);
    r = CTL(&c, "deploy", "push", "alice", uuid, "--force");
    expect_code(&r, 0, "deploy push");
    ck_assert_ptr_nonnull(strstr(r.out, "live"));
    run_free(&r);
    r = CTL(&c, "deploy", "push", "alice", uuid);
    expect_code(&r, 2, "push a live deployment");
    ck_assert_ptr_nonnull(strstr(r.err, "invalid_state"));
    run_free(&r);
    r = CTL(&c, "deploy", "status", "alice", uuid, "--json");
    expect_code(&r, 0, "deploy status");
    doc = one_json(&r, "deploy status --json");
    ck_assert_str_eq(e2e_json_str(doc, "status"), "live");
    ck_assert_str_eq(e2e_json_str(doc, "model"), "v1");
    cJSON_Delete(doc);
    run_free(&r);
    r = CTL(&c, "deploy", "logs", "alice", uuid);
    expect_code(&r, 0, "deploy logs");
    ck_assert_ptr_nonnull(strstr(r.out, "created"));
    ck_assert_ptr_nonnull(strstr(r.out, "live"));
    run_free(&r);
    r = CTL(&c, "deploy", "list", "alice", "--json");
    expect_code(&r, 0, "deploy list");
    doc = one_json(&r, "deploy list --json");
    ck_assert_int_ge((int)e2e_json_num(doc, "count"), 1);
    cJSON_Delete(doc);
    run_free(&r);
    /* A version clearly worse than the live one: the gate rejects it, the
     * request worked but what it started failed: exit 5, with the reason.
     * (The quality is lowered in the database, as e2e_deployments does.) */
    ck_assert_int_ge(e2e_db_exec(&c.srv, "UPDATE versions SET quality = 0.01 WHERE name = 'v2'"), 1);
    r = CTL(&c, "deploy", "create", "alice", "--model", "v2");
    expect_code(&r, 5, "a rejected deployment");
    ck_assert_msg(strstr(r.out, ", rejected") && strstr(r.out, "\nreason: "), "stdout: %s", r.out);
    ck_assert_ptr_nonnull(strstr(r.err, "the deployment was rejected"));
    run_free(&r);
    r = CTL(&c, "deploy", "create", "alice", "--model", "v2", "--json");
    expect_code(&r, 5, "a rejected deployment, --json");
    doc = one_json(&r, "rejected --json");
    ck_assert_str_eq(e2e_json_str(doc, "status"), "rejected");
    cJSON_Delete(doc);
    run_free(&r);
    /* An unknown model: 404, exit 2; remove the live one: rollback. */
    r = CTL(&c, "deploy", "create", "alice", "--model", "v99");
    expect_code(&r, 2, "deploy an unknown model");
    ck_assert_ptr_nonnull(strstr(r.err, "model_not_found"));
    run_free(&r);
    r = CTL(&c, "deploy", "create", "alice");
    expect_code(&r, 1, "deploy create without --model");
    run_free(&r);
    r = CTL(&c, "deploy", "remove", "alice", uuid, "--json");
    expect_code(&r, 0, "deploy remove");
    doc = one_json(&r, "deploy remove --json");
    ck_assert_str_eq(e2e_json_str(doc, "status"), "removed");
    cJSON_Delete(doc);
    run_free(&r);
    free(uuid);
    stop(&c);
}
END_TEST

/* ---- what a broken or hostile server does to the client -------------------- */

#define SSE_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"

/* Events cut at every 7th byte, a comment, data over two lines, CRLF line
 * ends: the same answer as one clean event per piece. */
START_TEST(test_ask_parses_events_cut_anywhere)
{
    const char *replies[] = {
        SSE_HEAD ": keepalive\n\n"
                 "event: token\ndata: {\"text\":\ndata: \"Hel\"}\n\n"
                 "event: token\r\ndata: {\"text\": \"lo\"}\r\n\r\n"
                 "event: done\ndata: {\"sources\": [{\"passage_id\": 3, \"score\": 0.5, "
                 "\"snippet\": \"s\"}]}\n\n"};
    ad_buf req;
    ctl_run r =
        raw_run(replies, 1, 0, 0, NULL, NULL, (const char *const[]){"ask", "a", "q", NULL}, &req);
    expect_code(&r, 0, "ask, events cut anywhere");
    ck_assert_str_eq(r.out, "Hello\nsources:\n  [3] score 0.500  s\n");
    ck_assert_ptr_nonnull(strstr(req.data, "Accept: text/event-stream"));
    /* A stream is never replayed by agentd: it carries no key. */
    ck_assert_ptr_null(strstr(req.data, "Idempotency-Key"));
    run_free(&r);
    ad_buf_cleanup(&req);
}
END_TEST

/* The server stops mid-answer: what came stays on its own line, the error
 * says the connection broke (not that agentd cannot be reached), exit 3. */
START_TEST(test_ask_stream_broken_mid_answer)
{
    const char *replies[] = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             "Content-Length: 100000\r\n\r\n"
                             "event: token\ndata: {\"text\": \"Hel\"}\n\nevent: tok"};
    ad_buf req;
    ctl_run r =
        raw_run(replies, 1, 0, 0, NULL, NULL, (const char *const[]){"ask", "a", "q", NULL}, &req);
    expect_code(&r, 3, "ask, stream broken");
    ck_assert_str_eq(r.out, "Hel\n");
    ck_assert_msg(strstr(r.err, "the connection to agentd at ") && strstr(r.err, "broke off"),
                  "stderr: %s", r.err);
    run_free(&r);
    ad_buf_cleanup(&req);
}
END_TEST

/* A stream that never ends an event is not buffered without bound. */
START_TEST(test_ask_event_that_never_ends_is_bounded)
{
    const char *replies[] = {SSE_HEAD};
    ad_buf req;
    ctl_run r = raw_run(replies, 1, (size_t)6 << 20, 0, NULL, NULL,
                        (const char *const[]){"ask", "a", "q", NULL}, &req);
    expect_code(&r, 3, "ask, an endless event");
    ck_assert_msg(strstr(r.err, "over 4 MiB"), "stderr: %s", r.err);
    run_free(&r);
    ad_buf_cleanup(&req);
}
END_TEST

/* A server that goes silent mid-answer (no keep-alive either) is given up
 * after AGENTCTL_STALL_TIMEOUT_S, not waited for forever. */
START_TEST(test_ask_silent_server_is_given_up)
{
    const char *replies[] = {SSE_HEAD "event: token\ndata: {\"text\": \"Hel\"}\n\n"};
    const char *env[] = {"AGENTCTL_STALL_TIMEOUT_S=1", NULL};
    ad_buf req;
    ctl_run r = raw_run(replies, 1, 0, 60000, env, NULL,
                        (const char *const[]){"ask", "a", "q", NULL}, &req);
    expect_code(&r, 3, "ask, a silent server");
    ck_assert_str_eq(r.out, "Hel\n");
    ck_assert_msg(strstr(r.err, "sent nothing for 1 s"), "stderr: %s", r.err);
    /* libcurl averages the speed over 5 s: about 1 + 5 s, far from the 60. */
    ck_assert_msg(r.end_ms < 20000, "gave up after %lld ms", r.end_ms);
    run_free(&r);
    ad_buf_cleanup(&req);
    const char *bad[] = {"AGENTCTL_STALL_TIMEOUT_S=soon", NULL};
    r = run_ctl("/tmp", bad, NULL, (const char *const[]){"agents", "list", NULL});
    expect_code(&r, 1, "a bad AGENTCTL_STALL_TIMEOUT_S");
    ck_assert_ptr_nonnull(strstr(r.err, "got 'soon'"));
    run_free(&r);
}
END_TEST

/* The key of one header line "Idempotency-Key: K" found at or after `from`. */
static char *key_after(const char *from, const char **next)
{
    const char *k = strstr(from, "Idempotency-Key: ");
    if (!k) return NULL;
    k += 17;
    size_t n = strcspn(k, "\r\n");
    *next = k + n;
    return strndup(k, n);
}

/* A POST whose connection dies before any answer is sent again with the
 * same Idempotency-Key (agentd answers the retry from what the first did),
 * and the command succeeds. */
START_TEST(test_post_retried_once_with_the_same_key)
{
    static const char body[] =
        "{\"user_id\": \"bob\", \"status\": \"created\", \"language\": \"en\"}";
    char created[300];
    snprintf(created, sizeof(created),
             "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             strlen(body), body);
    const char *replies[] = {NULL, created};
    ad_buf req;
    ctl_run r = raw_run(
        replies, 2, 0, 0, NULL, TEXT,
        (const char *const[]){"agents", "create", "bob", "--text", "-", "--json", NULL}, &req);
    expect_code(&r, 0, "create, the first connection dropped");
    char want[200];
    snprintf(want, sizeof(want), "%s\n", body);
    ck_assert_str_eq(r.out, want);
    const char *next = NULL;
    char *k1 = key_after(req.data, &next);
    ck_assert_msg(k1 != NULL, "no Idempotency-Key: %s", req.data);
    char *k2 = key_after(next, &next);
    ck_assert_msg(k2 != NULL, "one request only: %s", req.data);
    ck_assert_str_eq(k1, k2);
    ck_assert_msg(!strncmp(k1, "agentctl-", 9) && strlen(k1) == 41, "key %s", k1);
    free(k1);
    free(k2);
    run_free(&r);
    ad_buf_cleanup(&req);
}
END_TEST

/* A 429 is waited out as its Retry-After says and asked again; a wait
 * longer than agentctl takes on itself is the user's (exit 2, asked once). */
START_TEST(test_rate_limited_request_waits_and_asks_again)
{
    static const char body[] = "{\"user_id\": \"bob\", \"status\": \"ready\"}";
    static const char err[] = "{\"error\": \"slow down\", \"code\": \"rate_limited\", \"request_id\": \"r1\"}";
    char ok[300], limited[300], far[300];
    snprintf(ok, sizeof(ok),
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             strlen(body), body);
#define TOO_MANY                                                                                   \
    "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"                           \
    "Retry-After: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s"
    snprintf(limited, sizeof(limited), TOO_MANY, "1", strlen(err), err);
    snprintf(far, sizeof(far), TOO_MANY, "3600", strlen(err), err);
#undef TOO_MANY

    const char *replies[] = {limited, ok};
    ad_buf req;
    ctl_run r = raw_run(replies, 2, 0, 0, NULL, NULL,
                        (const char *const[]){"agents", "status", "bob", "--json", NULL}, &req);
    expect_code(&r, 0, "status after one 429");
    char want[200];
    snprintf(want, sizeof(want), "%s\n", body);
    ck_assert_str_eq(r.out, want);
    ck_assert_msg(strstr(r.err, "429") && strstr(r.err, "1 s"), "stderr: %s", r.err);
    int asked = 0;
    for (const char *p = req.data; (p = strstr(p, "GET /api/v1/agents/bob/status")); p++) asked++;
    ck_assert_int_eq(asked, 2);
    run_free(&r);
    ad_buf_cleanup(&req);

    const char *one[] = {far};
    r = raw_run(one, 1, 0, 0, NULL, NULL, (const char *const[]){"agents", "status", "bob", NULL}, &req);
    expect_code(&r, 2, "a 429 asking for an hour");
    ck_assert_msg(strstr(r.err, "rate_limited"), "stderr: %s", r.err);
    run_free(&r);
    ad_buf_cleanup(&req);
}
END_TEST

/* `agents status` prints what status carries (issue 12): the seconds left
 * while the pipeline runs, and a failed training run with its reason. */
START_TEST(test_agents_status_prints_eta_and_a_failed_run)
{
    static const char *const bodies[] = {
        "{\"user_id\": \"bob\", \"status\": \"processing\", \"stage\": \"ModelTrainer\","
        " \"progress\": 25, \"eta_s\": 7}",
        "{\"user_id\": \"bob\", \"status\": \"ready\", \"progress\": 100, \"training\": {\"training_id\": 4,"
        " \"status\": \"failed\", \"iteration\": 1, \"iterations\": 3, \"progress\": 33,"
        " \"error\": \"no processed material\", \"finished_at\": \"2026-11-30T01:00:00.000Z\"}}",
        "{\"user_id\": \"bob\", \"status\": \"ready\", \"progress\": 100, \"training\": {\"training_id\": 5,"
        " \"status\": \"running\", \"iteration\": 2, \"iterations\": 5, \"progress\": 40, \"eta_s\": 3}}"};
    static const char *const want[] = {
        "bob: processing, 25%, stage ModelTrainer, about 7 s left\n",
        "bob: ready, 100%\ntraining: failed, 1/3 iterations: no processed material\n",
        "bob: ready, 100%\ntraining: running, 2/5 iterations, about 3 s left\n"};
    for (int i = 0; i < 3; i++) {
        char reply[600];
        snprintf(reply, sizeof(reply),
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 strlen(bodies[i]), bodies[i]);
        const char *replies[] = {reply};
        ad_buf req;
        ctl_run r = raw_run(replies, 1, 0, 0, NULL, NULL, (const char *const[]){"agents", "status", "bob", NULL}, &req);
        expect_code(&r, 0, "agents status");
        ck_assert_str_eq(r.out, want[i]);
        run_free(&r);
        ad_buf_cleanup(&req);
    }
}
END_TEST

/* --idempotency-key: the same create run twice against agentd is one
 * agent and the same answer, not a 409 the second time. */
START_TEST(test_idempotency_key_makes_a_rerun_safe)
{
    ctl_env c;
    start(&c, NULL);
    const char *args[] = {
        "agents", "create", "bob", "--text", "-", "--json", "--idempotency-key", "ci-run-42", NULL};
    ctl_run r1 = run_ctl(c.home, c.env, TEXT, args);
    expect_code(&r1, 0, "create with a key");
    ctl_run r2 = run_ctl(c.home, c.env, TEXT, args);
    expect_code(&r2, 0, "the same create with the same key");
    ck_assert_str_eq(r1.out, r2.out);
    run_free(&r1);
    run_free(&r2);
    /* Another body under the same key: agentd's 422, exit 2. */
    r1 = run_ctl(c.home, c.env, "other text",
                 (const char *const[]){"agents", "create", "bob", "--text", "-",
                                       "--idempotency-key", "ci-run-42", NULL});
    expect_code(&r1, 2, "the key with another body");
    ck_assert_ptr_nonnull(strstr(r1.err, "idempotency_key_reused"));
    run_free(&r1);
    r1 = CTL(&c, "agents", "create", "bob", "--text", "-", "--idempotency-key", "");
    expect_code(&r1, 1, "an empty key");
    ck_assert_ptr_nonnull(strstr(r1.err, "--idempotency-key must be 1 to 255 characters"));
    run_free(&r1);
    ck_assert_str_eq(e2e_wait_agent(&c.srv, "bob", 60000), "ready");
    stop(&c);
}
END_TEST

/* login without the token in argv: from stdin (--token -) or from
 * AGENTD_URL / AGENTD_TOKEN. */
START_TEST(test_login_takes_the_token_outside_argv)
{
    ctl_env c;
    const char *server_env[] = {"AGENTD_API_KEY=" ADMIN_KEY, NULL};
    start(&c, server_env);
    char cfg[400];
    snprintf(cfg, sizeof(cfg), "%s/.config/agentctl/config", c.home);
    const char *none[] = {NULL};
    ctl_run r = run_ctl(c.home, none, ADMIN_KEY "\n",
                        (const char *const[]){"login", "--url", c.url, "--token", "-", NULL});
    expect_code(&r, 0, "login --token - (stdin)");
    char *text = read_text(cfg);
    ck_assert_ptr_nonnull(strstr(text, "token = " ADMIN_KEY "\n"));
    free(text);
    run_free(&r);
    ck_assert_int_eq(unlink(cfg), 0);
    r = run_ctl(c.home, none, "",
                (const char *const[]){"login", "--url", c.url, "--token", "-", NULL});
    expect_code(&r, 1, "login --token - with nothing on stdin");
    ck_assert_ptr_nonnull(strstr(r.err, "no token on stdin"));
    run_free(&r);
    const char *env[] = {c.url_var, "AGENTD_TOKEN=" ADMIN_KEY, NULL};
    r = run_ctl(c.home, env, NULL, (const char *const[]){"login", NULL});
    expect_code(&r, 0, "login from AGENTD_URL and AGENTD_TOKEN");
    text = read_text(cfg);
    ck_assert_ptr_nonnull(strstr(text, "token = " ADMIN_KEY "\n"));
    ck_assert_ptr_nonnull(strstr(text, c.url));
    free(text);
    run_free(&r);
    stop(&c);
}
END_TEST

Suite *e2e_agentctl_suite(void)
{
    Suite *s = suite_create("e2e_agentctl");
    TCase *tc = tcase_create("agentctl");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_help_on_every_verb);
    tcase_add_test(tc, test_train_checks_its_arguments_before_sending);
    tcase_add_test(tc, test_login_writes_a_private_config_file);
    tcase_add_test(tc, test_login_prompts_on_a_terminal_without_echoing_the_token);
    tcase_add_test(tc, test_agents_verbs_exit_codes_and_json);
    tcase_add_test(tc, test_unreachable_server_and_bad_token_exit_codes);
    tcase_add_test(tc, test_progress_bar_on_a_terminal_plain_lines_in_a_pipe);
    tcase_add_test(tc, test_train_and_replay);
    tcase_add_test(tc, test_ask_local_streams_and_json);
    tcase_add_test(tc, test_ask_prints_each_piece_as_it_arrives);
    tcase_add_test(tc, test_tokens_verbs);
    tcase_add_test(tc, test_deploy_verbs);
    tcase_add_test(tc, test_ask_parses_events_cut_anywhere);
    tcase_add_test(tc, test_ask_stream_broken_mid_answer);
    tcase_add_test(tc, test_ask_event_that_never_ends_is_bounded);
    tcase_add_test(tc, test_ask_silent_server_is_given_up);
    tcase_add_test(tc, test_post_retried_once_with_the_same_key);
    tcase_add_test(tc, test_rate_limited_request_waits_and_asks_again);
    tcase_add_test(tc, test_agents_status_prints_eta_and_a_failed_run);
    tcase_add_test(tc, test_idempotency_key_makes_a_rerun_safe);
    tcase_add_test(tc, test_login_takes_the_token_outside_argv);
    suite_add_tcase(s, tc);
    return s;
}
