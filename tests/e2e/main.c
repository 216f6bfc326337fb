/* Runs every suite in tests/e2e/list.h; `e2e_tests NAME` runs one. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/common/runner.h"
#include "tests/e2e/harness.h"

#define AD_SUITE(name) Suite *name##_suite(void);
#include "tests/e2e/list.h"
#undef AD_SUITE

int main(int argc, char **argv)
{
    static const test_suite suites[] = {
#define AD_SUITE(name) {#name, name##_suite},
#include "tests/e2e/list.h"
#undef AD_SUITE
    };
    /* Raw-socket tests write to connections the server may already have
     * closed (per-address limits, early answers): EPIPE, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    /* AGENTD_E2E_BACKEND=pg: one PostgreSQL server for every suite. */
    if (e2e_pg_setup() < 0) {
        fprintf(stderr, "cannot start PostgreSQL for AGENTD_E2E_BACKEND=pg\n");
        return EXIT_FAILURE;
    }
    int rc = test_run_suites(suites, sizeof(suites) / sizeof(suites[0]), argc, argv);
    e2e_pg_teardown();
    return rc;
}
