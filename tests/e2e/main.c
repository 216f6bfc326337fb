/* Runs the end-to-end suites in tests/e2e/list.h; `e2e_tests NAME` runs one. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#define AD_SUITE(name) Suite *name##_suite(void);
#include "tests/e2e/list.h"
#undef AD_SUITE

int main(int argc, char **argv)
{
    struct {
        const char *name;
        Suite *(*make)(void);
    } suites[] = {
#define AD_SUITE(name) {#name, name##_suite},
#include "tests/e2e/list.h"
#undef AD_SUITE
    };
    SRunner *runner = NULL;
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        if (argc > 1 && strcmp(argv[1], suites[i].name) != 0) continue;
        if (!runner) runner = srunner_create(suites[i].make());
        else srunner_add_suite(runner, suites[i].make());
    }
    if (!runner) return EXIT_FAILURE;
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
