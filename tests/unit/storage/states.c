/* storage/states.c: every state's word both ways, and words no state has refused. */
#include <check.h>
#include <string.h>

#include "storage/states.h"

Suite *storage_states_suite(void);

/* What the database holds and the API shows, in enum order: changing one is
 * a migration, so the words are spelled out here, not derived. */
static const char *const agent_words[] = {"initializing", "processing", "ready", "error"};
static const char *const job_words[] = {"queued", "running", "done", "failed", "cancelled"};
static const char *const version_words[] = {"building", "candidate", "trained",
                                            "deployed", "retired",   "rejected"};
static const char *const exec_words[] = {"pending", "running", "completed", "failed"};
static const char *const training_words[] = {"queued", "running", "done", "failed", "cancelled"};

/* Words no state of any kind has, or a near miss of one. */
static const char *const bad_words[] = {"", "READY", "Ready", "ready ", " queued", "unknown",
                                        "complete", "cancelled\n"};

#define N(w) (sizeof(w) / sizeof((w)[0]))

START_TEST(test_agent_state_both_ways)
{
    ck_assert_int_eq(N(agent_words), AGENT_ERROR + 1);
    for (int i = 0; i < (int)N(agent_words); i++) {
        ck_assert_str_eq(agent_state_to_string((agent_state)i), agent_words[i]);
        agent_state s = AGENT_ERROR;
        ck_assert_int_eq(agent_state_from_string(agent_words[i], &s, NULL), 0);
        ck_assert_int_eq(s, i);
    }
}
END_TEST

START_TEST(test_job_state_both_ways)
{
    ck_assert_int_eq(N(job_words), JOB_CANCELLED + 1);
    for (int i = 0; i < (int)N(job_words); i++) {
        ck_assert_str_eq(job_state_to_string((job_state)i), job_words[i]);
        job_state s = JOB_CANCELLED;
        ck_assert_int_eq(job_state_from_string(job_words[i], &s, NULL), 0);
        ck_assert_int_eq(s, i);
    }
}
END_TEST

START_TEST(test_version_state_both_ways)
{
    ck_assert_int_eq(N(version_words), VERSION_REJECTED + 1);
    for (int i = 0; i < (int)N(version_words); i++) {
        ck_assert_str_eq(version_state_to_string((version_state)i), version_words[i]);
        version_state s = VERSION_REJECTED;
        ck_assert_int_eq(version_state_from_string(version_words[i], &s, NULL), 0);
        ck_assert_int_eq(s, i);
    }
}
END_TEST

START_TEST(test_exec_status_both_ways)
{
    ck_assert_int_eq(N(exec_words), EXEC_FAILED + 1);
    for (int i = 0; i < (int)N(exec_words); i++) {
        ck_assert_str_eq(exec_status_to_string((exec_status)i), exec_words[i]);
        exec_status s = EXEC_FAILED;
        ck_assert_int_eq(exec_status_from_string(exec_words[i], &s, NULL), 0);
        ck_assert_int_eq(s, i);
    }
}
END_TEST

START_TEST(test_training_state_both_ways)
{
    ck_assert_int_eq(N(training_words), TRAINING_CANCELLED + 1);
    for (int i = 0; i < (int)N(training_words); i++) {
        ck_assert_str_eq(training_state_to_string((training_state)i), training_words[i]);
        training_state s = TRAINING_CANCELLED;
        ck_assert_int_eq(training_state_from_string(training_words[i], &s, NULL), 0);
        ck_assert_int_eq(s, i);
    }
}
END_TEST

/* An unknown word is AD_EINVAL naming the word, and leaves `*out` as it was. */
START_TEST(test_unknown_words_refused)
{
    for (size_t i = 0; i < N(bad_words); i++) {
        ad_err e = {0};
        agent_state a = AGENT_PROCESSING;
        ck_assert_int_eq(agent_state_from_string(bad_words[i], &a, &e), AD_EINVAL);
        ck_assert_int_eq(a, AGENT_PROCESSING);
        ck_assert_msg(strstr(e.msg, "agent status"), "%s", e.msg);
        job_state j = JOB_RUNNING;
        ck_assert_int_eq(job_state_from_string(bad_words[i], &j, NULL), AD_EINVAL);
        ck_assert_int_eq(j, JOB_RUNNING);
        version_state v = VERSION_TRAINED;
        ck_assert_int_eq(version_state_from_string(bad_words[i], &v, NULL), AD_EINVAL);
        ck_assert_int_eq(v, VERSION_TRAINED);
        exec_status x = EXEC_RUNNING;
        ck_assert_int_eq(exec_status_from_string(bad_words[i], &x, NULL), AD_EINVAL);
        ck_assert_int_eq(x, EXEC_RUNNING);
        training_state t = TRAINING_RUNNING;
        ck_assert_int_eq(training_state_from_string(bad_words[i], &t, NULL), AD_EINVAL);
        ck_assert_int_eq(t, TRAINING_RUNNING);
    }
    /* NULL (a NULL column) and one kind's word given to another kind. */
    agent_state a;
    ck_assert_int_eq(agent_state_from_string(NULL, &a, NULL), AD_EINVAL);
    ck_assert_int_eq(agent_state_from_string("queued", &a, NULL), AD_EINVAL);
    job_state j;
    ck_assert_int_eq(job_state_from_string(NULL, &j, NULL), AD_EINVAL);
    ck_assert_int_eq(job_state_from_string("ready", &j, NULL), AD_EINVAL);
    version_state v;
    ck_assert_int_eq(version_state_from_string(NULL, &v, NULL), AD_EINVAL);
    ck_assert_int_eq(version_state_from_string("done", &v, NULL), AD_EINVAL);
    exec_status x;
    ck_assert_int_eq(exec_status_from_string(NULL, &x, NULL), AD_EINVAL);
    ck_assert_int_eq(exec_status_from_string("done", &x, NULL), AD_EINVAL);
    training_state t;
    ck_assert_int_eq(training_state_from_string(NULL, &t, NULL), AD_EINVAL);
    ck_assert_int_eq(training_state_from_string("completed", &t, NULL), AD_EINVAL);
}
END_TEST

Suite *storage_states_suite(void)
{
    Suite *s = suite_create("storage_states");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_agent_state_both_ways);
    tcase_add_test(tc, test_job_state_both_ways);
    tcase_add_test(tc, test_version_state_both_ways);
    tcase_add_test(tc, test_exec_status_both_ways);
    tcase_add_test(tc, test_training_state_both_ways);
    tcase_add_test(tc, test_unknown_words_refused);
    suite_add_tcase(s, tc);
    return s;
}
