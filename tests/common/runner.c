#include "tests/common/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int test_run_suites(const test_suite *suites, size_t n, int argc, char **argv)
{
    SRunner *runner = NULL;
    if (argc > 1 && !strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < n; i++) printf("%s\n", suites[i].name);
        return EXIT_SUCCESS;
    }
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], suites[i].name) != 0) continue;
        if (!runner) runner = srunner_create(suites[i].make());
        else srunner_add_suite(runner, suites[i].make());
    }
    if (!runner) {
        fprintf(stderr, "no suite named '%s'\n", argc > 1 ? argv[1] : "");
        return EXIT_FAILURE;
    }
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
