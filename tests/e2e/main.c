/* Runs every suite in tests/e2e/list.h; `e2e_tests NAME` runs one. */
#include <signal.h>

#include "tests/common/runner.h"

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
    return test_run_suites(suites, sizeof(suites) / sizeof(suites[0]), argc, argv);
}
