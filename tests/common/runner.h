/* The one test runner: runs a list of Check suites, or the one named on the
 * command line, and returns the process exit code. `--list` prints the
 * suites' names, one a line (make runs the e2e suites a few at a time). */
#ifndef AD_TESTS_RUNNER_H
#define AD_TESTS_RUNNER_H

#include <check.h>
#include <stddef.h>

typedef struct test_suite {
    const char *name;
    Suite *(*make)(void);
} test_suite;

int test_run_suites(const test_suite *suites, size_t n, int argc, char **argv);

#endif
