#include "base/procstat.h"

#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/err.h"
#include "base/prom.h"

/* The whole of a small /proc file, NUL-terminated, or -1. */
static int procstat_slurp(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

/* Boot time in seconds since the epoch (/proc/stat's btime), or -1. */
static double procstat_boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[256];
    double bt = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static double procstat_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    double n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)))
        if (ent->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

int procstat_read(procstat *out)
{
    out->resident_bytes = out->virtual_bytes = out->start_time_s = out->cpu_seconds = out->threads = -1;
    double page = (double)sysconf(_SC_PAGESIZE);
    char buf[1024];
    unsigned long long size, resident;
    if (procstat_slurp("/proc/self/statm", buf, sizeof(buf)) == 0 &&
        sscanf(buf, "%llu %llu", &size, &resident) == 2) {
        out->virtual_bytes = (double)size * page;
        out->resident_bytes = (double)resident * page;
    }
    out->open_fds = procstat_count_fds();
    struct rlimit rl;
    /* No limit is +Inf, so the series is there on every host (docs/metrics.md). */
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) out->max_fds = -1;
    else out->max_fds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
    if (procstat_slurp("/proc/self/stat", buf, sizeof(buf)) < 0) return AD_EIO;
    /* The command name (field 2) may hold spaces and parentheses: the
     * fields that follow start after its last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return AD_EIO;
    unsigned long long utime = 0, stime = 0, threads = 0, start = 0;
    int field = 3;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 14) utime = strtoull(tok, NULL, 10);
        else if (field == 15) stime = strtoull(tok, NULL, 10);
        else if (field == 20) threads = strtoull(tok, NULL, 10);
        else if (field == 22) {
            start = strtoull(tok, NULL, 10);
            break;
        }
    }
    if (field != 22) return AD_EIO;
    double tick = (double)sysconf(_SC_CLK_TCK);
    out->cpu_seconds = (double)(utime + stime) / tick;
    out->threads = (double)threads;
    double boot = procstat_boot_time();
    if (boot >= 0) out->start_time_s = boot + (double)start / tick;
    return 0;
}

void procstat_write(ad_buf *b)
{
    procstat p;
    procstat_read(&p);
    static const struct {
        prom_type type;
        const char *name;
        const char *help;
        size_t offset;
    } rows[] = {
        {PROM_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.",
         offsetof(procstat, resident_bytes)},
        {PROM_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
         offsetof(procstat, virtual_bytes)},
        {PROM_GAUGE, "process_open_fds", "Number of open file descriptors.", offsetof(procstat, open_fds)},
        {PROM_GAUGE, "process_max_fds", "Maximum number of open file descriptors.",
         offsetof(procstat, max_fds)},
        {PROM_GAUGE, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
         offsetof(procstat, start_time_s)},
        {PROM_COUNTER, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
         offsetof(procstat, cpu_seconds)},
        {PROM_GAUGE, "process_threads", "Number of OS threads in the process.", offsetof(procstat, threads)},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        double v;
        memcpy(&v, (const char *)&p + rows[i].offset, sizeof(v));
        if (v >= 0) prom_write_simple(b, rows[i].type, rows[i].name, rows[i].help, NULL, NULL, &v, 1);
    }
}
