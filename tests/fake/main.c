/*
 * fake_gemini: the fake Gemini server as a process, for benchmarks.
 *   fake_gemini [--port N] [--delay-ms D] [--gap-ms G]
 * Prints the port it listens on (one line, then flushes) and serves until
 * SIGTERM or SIGINT. The accepted key is FAKE_GEMINI_KEY (tests/fake/gemini.h).
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

static int usage(void)
{
    fprintf(stderr, "usage: fake_gemini [--port N] [--delay-ms D] [--gap-ms G]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int port = 0, delay_ms = 0, gap_ms = -1;
    for (int i = 1; i < argc; i++) {
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
    printf("%u\n", p);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    fake_gemini_stop(f);
    return 0;
}
