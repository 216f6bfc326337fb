/*
 * What the container image relies on, against the real binary: `docker stop`
 * sends SIGTERM and kills after 10 s, so with its default settings agentd must
 * have exited well before that even with a request stuck in flight; and the
 * image's HEALTHCHECK runs `agentd --healthcheck` with no flags, so the probe
 * must find the server from the same environment it was configured by.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/e2e/harness.h"

Suite *e2e_image_suite(void);

/* Docker's default stop grace, and the margin the drain must leave inside it
 * for the workers and the database to close. */
#define DOCKER_STOP_GRACE_MS 10000
#define STOP_MARGIN_MS 2000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(test_stop_with_a_stuck_request_ends_inside_docker_grace)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    /* A client that sent half its body and went quiet: the request stays in
     * flight until the drain deadline. */
    const char *head = "POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 100\r\n\r\n{\"user_id\":";
    int fd = e2e_connect(&s);
    ck_assert_int_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    e2e_sleep_ms(200);
    long long t0 = now_ms();
    kill(s.pid, SIGTERM);
    int status = 0;
    while (waitpid(s.pid, &status, WNOHANG) != s.pid) {
        if (now_ms() - t0 > DOCKER_STOP_GRACE_MS) {
            kill(s.pid, SIGKILL); /* what docker stop would do */
            waitpid(s.pid, &status, 0);
            break;
        }
        e2e_sleep_ms(10);
    }
    long long took = now_ms() - t0;
    s.pid = 0;
    close(fd);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "agentd did not exit 0 on SIGTERM with a request in flight (after %lld ms)", took);
    ck_assert_msg(took <= DOCKER_STOP_GRACE_MS - STOP_MARGIN_MS,
                  "SIGTERM to exit took %lld ms; docker stop kills at %d ms", took, DOCKER_STOP_GRACE_MS);
    e2e_cleanup(&s);
}
END_TEST

/* `agentd --healthcheck` with only `env` (a shell prefix) as configuration. */
static int healthcheck_with_env(const char *env)
{
    const char *bin = getenv("AGENTD_BIN");
    char *cmd = e2e_fmt("%s %s --healthcheck >/dev/null 2>&1", env, bin && *bin ? bin : "bin/agentd");
    int st = system(cmd);
    free(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_healthcheck_reads_the_environment)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    char *same = e2e_fmt("AGENTD_PORT=%d AGENTD_BIND=127.0.0.1", s.port);
    ck_assert_int_eq(healthcheck_with_env(same), 0);
    ck_assert_int_eq(e2e_stop(&s), 0);
    /* Nothing listens there any more: unhealthy. */
    ck_assert_int_eq(healthcheck_with_env(same), 1);
    free(same);
    e2e_cleanup(&s);
}
END_TEST

Suite *e2e_image_suite(void)
{
    Suite *s = suite_create("e2e_image");
    TCase *tc = tcase_create("image");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_stop_with_a_stuck_request_ends_inside_docker_grace);
    tcase_add_test(tc, test_healthcheck_reads_the_environment);
    suite_add_tcase(s, tc);
    return s;
}
