/*
 * A throwaway PostgreSQL server for tests: initdb into a temp dir, a server
 * listening on a unix socket in that dir only (no TCP), fsync off; databases
 * created on it one per agentd start; everything removed at the end.
 * The binaries are Debian's, under /usr/lib/postgresql/<version>/bin (the
 * highest version). Run as root, the server runs as the `postgres` user
 * (initdb refuses root) and the temp dir is chowned to it.
 */
#ifndef AD_TESTS_PGSERVER_H
#define AD_TESTS_PGSERVER_H

#include <stddef.h>

typedef struct pgserver {
    char dir[256];        /* temp dir: data/ and the unix socket live here */
    int port;             /* the socket's port number (a free one, picked at start) */
} pgserver;

/* initdb (as the `postgres` user when run as root: initdb refuses root; the
 * temp dir is chowned to it) and pg_ctl start -w with listen_addresses=''
 * unix_socket_directories=dir, fsync off; 0, or -1 with the reason on stderr. */
int pgserver_start(pgserver *s);

/* pg_ctl stop -m fast (data kept); 0 or -1. */
int pgserver_stop(pgserver *s);

/* Starts again on the same dir and port; 0 or -1. */
int pgserver_restart(pgserver *s);

/* Stops the server if it runs and removes the dir. */
void pgserver_destroy(pgserver *s);

/* CREATE DATABASE `name` (an identifier: letters, digits, underscores);
 * writes its --database-url into `url`: 0 or -1. */
int pgserver_create_db(pgserver *s, const char *name, char *url, size_t cap);

#endif
