/*
 * pgserver: tests/common/pgserver as a command, for scripts (the bench
 * scenarios) that need a throwaway PostgreSQL server as the e2e suites do.
 *
 *   pgserver start                      prints "DIR PORT" of a new server
 *   pgserver createdb DIR PORT NAME     CREATE DATABASE NAME; prints its --database-url
 *   pgserver stop|restart DIR PORT      pg_ctl stop -m fast / start again
 *   pgserver destroy DIR PORT           stop if running, remove DIR
 *
 * Exit status 0, or 1 with the reason on stderr; 2 for a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/common/pgserver.h"

static int usage(void)
{
    fprintf(stderr, "usage: pgserver start | createdb DIR PORT NAME | stop|restart|destroy DIR PORT\n");
    return 2;
}

/* Fills `s` from the DIR and PORT arguments `start` prints; 0 or -1. */
static int server_from_args(pgserver *s, const char *dir, const char *port)
{
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || p <= 0 || p > 65535 || strlen(dir) >= sizeof(s->dir) || strncmp(dir, "/tmp/agentd-pg-", 15) != 0)
        return -1;
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    s->port = (int)p;
    return 0;
}

int main(int argc, char **argv)
{
    pgserver s;
    if (argc == 2 && !strcmp(argv[1], "start")) {
        if (pgserver_start(&s) != 0) return 1;
        printf("%s %d\n", s.dir, s.port);
        return 0;
    }
    if (argc < 4 || server_from_args(&s, argv[2], argv[3]) != 0) return usage();
    if (argc == 5 && !strcmp(argv[1], "createdb")) {
        char url[512];
        if (pgserver_create_db(&s, argv[4], url, sizeof(url)) != 0) return 1;
        printf("%s\n", url);
        return 0;
    }
    if (argc != 4) return usage();
    if (!strcmp(argv[1], "stop")) return pgserver_stop(&s) == 0 ? 0 : 1;
    if (!strcmp(argv[1], "restart")) return pgserver_restart(&s) == 0 ? 0 : 1;
    if (!strcmp(argv[1], "destroy")) {
        pgserver_destroy(&s);
        return 0;
    }
    return usage();
}
