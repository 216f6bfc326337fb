/*
 * The process metrics every Prometheus client library exports, read from
 * /proc (Linux): memory, file descriptors, CPU time, threads, start time.
 */
#ifndef AD_PROCSTAT_H
#define AD_PROCSTAT_H

#include <stdint.h>

#include "base/buf.h"

/* What procstat_read found; a value it could not read is -1. */
typedef struct procstat {
    double resident_bytes;   /* /proc/self/statm: resident pages x page size */
    double virtual_bytes;    /* /proc/self/statm: total pages x page size */
    double open_fds;         /* entries of /proc/self/fd */
    double max_fds;          /* RLIMIT_NOFILE's soft limit */
    double start_time_s;     /* seconds since the epoch: boot time + starttime ticks */
    double cpu_seconds;      /* user + system time */
    double threads;          /* num_threads */
} procstat;

/* Fills `out` from /proc/self; 0, or AD_EIO when /proc/self/stat cannot be
 * read (the fields it gives are then -1). */
int procstat_read(procstat *out);

/* Appends the process_* families (resident and virtual memory, open and max
 * fds, start time, CPU seconds, threads) in the text exposition format; a
 * value that could not be read is left out with its family. */
void procstat_write(ad_buf *b);

#endif
