#include "tests/common/pgserver.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* The bin dir of the highest installed version, or NULL. */
static const char *pgserver_bindir(void)
{
    static char best[256];
    long best_version = -1;
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin", 0, NULL, &g) != 0) return NULL;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *v = g.gl_pathv[i] + strlen("/usr/lib/postgresql/");
        long version = strtol(v, NULL, 10);
        if (version > best_version && strlen(g.gl_pathv[i]) < sizeof(best)) {
            best_version = version;
            snprintf(best, sizeof(best), "%s", g.gl_pathv[i]);
        }
    }
    globfree(&g);
    return best_version < 0 ? NULL : best;
}

/* Runs PostgreSQL's `tool` with `args` (NULL-terminated, without argv[0]) as
 * the postgres user when we are root, its output appended to dir/tools.log;
 * the exit status, or -1. */
static int pgserver_run(const pgserver *s, const char *tool, const char *const *args)
{
    const char *bindir = pgserver_bindir();
    if (!bindir) {
        fprintf(stderr, "pgserver: no PostgreSQL under /usr/lib/postgresql/*/bin\n");
        return -1;
    }
    char path[512], log[300];
    snprintf(path, sizeof(path), "%s/%s", bindir, tool);
    snprintf(log, sizeof(log), "%s/tools.log", s->dir);
    const char *argv[24];
    size_t n = 0;
    if (geteuid() == 0) {
        argv[n++] = "runuser";
        argv[n++] = "-u";
        argv[n++] = "postgres";
        argv[n++] = "--";
    }
    argv[n++] = path;
    for (size_t i = 0; args[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++) argv[n++] = args[i];
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* The postgres user may not enter the caller's working directory. */
        if (chdir("/") != 0) _exit(126);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, STDIN_FILENO);
        /* exec wants mutable strings; copies, as the child ends here anyway. */
        char *copy[24];
        for (size_t i = 0; i <= n; i++) copy[i] = argv[i] ? strdup(argv[i]) : NULL;
        execvp(copy[0], copy);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Copies dir/tools.log to stderr: the tools' own reason for a failure. */
static void pgserver_dump_log(const pgserver *s, const char *what)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/tools.log", s->dir);
    fprintf(stderr, "pgserver: %s failed; its output:\n", what);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof(line), f)) fputs(line, stderr);
    fclose(f);
}

static int pgserver_ctl_start(pgserver *s)
{
    char data[300], logfile[300], opts[600];
    snprintf(data, sizeof(data), "%s/data", s->dir);
    snprintf(logfile, sizeof(logfile), "%s/server.log", s->dir);
    snprintf(opts, sizeof(opts),
             "-c listen_addresses='' -c unix_socket_directories=%s -p %d -c fsync=off"
             " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
             s->dir, s->port);
    const char *args[] = {"start", "-w", "-t", "60", "-D", data, "-l", logfile, "-o", opts, NULL};
    if (pgserver_run(s, "pg_ctl", args) != 0) {
        pgserver_dump_log(s, "pg_ctl start");
        return -1;
    }
    return 0;
}

/* A port whose socket file does not exist in the dir. The socket lives in a
 * dir of our own, so any port is free there; vary it anyway so that two
 * servers' URLs never look alike in a log. */
static int pgserver_pick_port(const pgserver *s)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned seed = (unsigned)(tv.tv_usec ^ (getpid() << 8));
    for (;;) {
        int port = 20000 + (int)(rand_r(&seed) % 40000);
        char sock[320];
        snprintf(sock, sizeof(sock), "%s/.s.PGSQL.%d", s->dir, port);
        if (access(sock, F_OK) != 0) return port;
    }
}

int pgserver_start(pgserver *s)
{
    memset(s, 0, sizeof(*s));
    /* /tmp, not $TMPDIR: a unix socket's path must fit in 107 bytes. */
    snprintf(s->dir, sizeof(s->dir), "/tmp/agentd-pg-XXXXXX");
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "pgserver: mkdtemp: %s\n", strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw || chown(s->dir, pw->pw_uid, pw->pw_gid) != 0) {
            fprintf(stderr, "pgserver: cannot give %s to the postgres user\n", s->dir);
            pgserver_destroy(s);
            return -1;
        }
    }
    chmod(s->dir, 0700);
    s->port = pgserver_pick_port(s);
    char data[300];
    snprintf(data, sizeof(data), "%s/data", s->dir);
    const char *args[] = {"-D", data, "-A", "trust", "-U", "agentd", "--no-sync",
                          "-E", "UTF8", "--locale=C", NULL};
    if (pgserver_run(s, "initdb", args) != 0) {
        pgserver_dump_log(s, "initdb");
        pgserver_destroy(s);
        return -1;
    }
    if (pgserver_ctl_start(s) != 0) {
        pgserver_destroy(s);
        return -1;
    }
    return 0;
}

int pgserver_stop(pgserver *s)
{
    char data[300];
    snprintf(data, sizeof(data), "%s/data", s->dir);
    const char *args[] = {"stop", "-w", "-m", "fast", "-D", data, NULL};
    if (pgserver_run(s, "pg_ctl", args) != 0) {
        pgserver_dump_log(s, "pg_ctl stop");
        return -1;
    }
    return 0;
}

int pgserver_restart(pgserver *s)
{
    return pgserver_ctl_start(s);
}

static int pgserver_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void pgserver_destroy(pgserver *s)
{
    if (!s->dir[0]) return;
    char pidfile[300];
    snprintf(pidfile, sizeof(pidfile), "%s/data/postmaster.pid", s->dir);
    if (access(pidfile, F_OK) == 0) pgserver_stop(s);
    nftw(s->dir, pgserver_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    s->dir[0] = '\0';
}

int pgserver_create_db(pgserver *s, const char *name, char *url, size_t cap)
{
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            fprintf(stderr, "pgserver: bad database name '%s'\n", name);
            return -1;
        }
    }
    char conninfo[400];
    snprintf(conninfo, sizeof(conninfo), "host=%s port=%d user=agentd dbname=postgres connect_timeout=10",
             s->dir, s->port);
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "pgserver: connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "pgserver: %s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
    if (!ok) return -1;
    int n = snprintf(url, cap, "postgresql://agentd@/%s?host=%s&port=%d", name, s->dir, s->port);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}
