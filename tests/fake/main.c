/*
 * fake_gemini: the fake Gemini server as a process, for benchmarks and the
 * browser tests.
 *   fake_gemini [--port N] [--delay-ms D] [--gap-ms G] [--fault KIND]...
 * Prints the port it listens on (one line, then flushes) and serves until
 * SIGTERM or SIGINT. The accepted key is FAKE_GEMINI_KEY (tests/fake/gemini.h).
 * Each --fault queues one fault, in order, for the coming model requests (a
 * process cannot call fake_gemini_push_fault, so the browser test that must
 * see "retries: 1" queues a 503 this way). KIND is one of fault_names below;
 * 429 carries Retry-After: 1.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fake/gemini.h"

static int parse_int(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 65535 * 1000L) return -1;
    *out = (int)v;
    return 0;
}

/* The --fault names, one per fake_fault_kind that needs no further data. */
static const struct {
    const char *name;
    fake_fault fault;
} fault_names[] = {
    {"429", FAKE_429_RETRY_AFTER(1)},
    {"500", FAKE_500},
    {"503", FAKE_503},
    {"504", FAKE_504},
    {"400", FAKE_400},
    {"non-json", FAKE_NON_JSON},
    {"hang", FAKE_HANG},
    {"slow-stream", FAKE_SLOW_STREAM},
    {"stream-cut", FAKE_STREAM_CUT},
    {"blocked", FAKE_BLOCKED},
    {"safety", FAKE_SAFETY},
    {"no-candidates", FAKE_NO_CANDIDATES},
};

#define MAX_FAULTS 64

static int parse_fault(const char *s, fake_fault *out)
{
    for (size_t i = 0; i < sizeof(fault_names) / sizeof(fault_names[0]); i++) {
        if (strcmp(s, fault_names[i].name) == 0) {
            *out = fault_names[i].fault;
            return 0;
        }
    }
    return -1;
}

static int usage(void)
{
    fprintf(stderr, "usage: fake_gemini [--port N] [--delay-ms D] [--gap-ms G] [--fault KIND]...\n"
                    "KIND:");
    for (size_t i = 0; i < sizeof(fault_names) / sizeof(fault_names[0]); i++)
        fprintf(stderr, " %s", fault_names[i].name);
    fprintf(stderr, "\n");
    return 2;
}

int main(int argc, char **argv)
{
    int port = 0, delay_ms = 0, gap_ms = -1;
    fake_fault faults[MAX_FAULTS];
    size_t nfaults = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fault") == 0) {
            if (i + 1 >= argc || nfaults == MAX_FAULTS || parse_fault(argv[++i], &faults[nfaults]) != 0)
                return usage();
            nfaults++;
            continue;
        }
        int *target = NULL;
        if (strcmp(argv[i], "--port") == 0) target = &port;
        else if (strcmp(argv[i], "--delay-ms") == 0) target = &delay_ms;
        else if (strcmp(argv[i], "--gap-ms") == 0) target = &gap_ms;
        if (!target || i + 1 >= argc || parse_int(argv[++i], target) != 0) return usage();
    }
    if (port > 65535) return usage();

    /* Block the signals before any thread starts, so only sigwait sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    fake_gemini *f;
    unsigned p = (unsigned)port;
    if (fake_gemini_start(&f, &p) != 0) {
        fprintf(stderr, "fake_gemini: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    fake_gemini_set_delay_ms(f, delay_ms);
    if (gap_ms >= 0) fake_gemini_set_chunk_gap_ms(f, gap_ms);
    for (size_t i = 0; i < nfaults; i++) fake_gemini_push_fault(f, faults[i]);
    printf("%u\n", p);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    fake_gemini_stop(f);
    return 0;
}
