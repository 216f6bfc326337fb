/* ctl/training.c: the checks `train` makes before sending (seed 000). */
#include "ctl/training.h"

#include <check.h>
#include <string.h>

Suite *ctl_training_suite(void);

START_TEST(test_iterations_must_be_a_positive_integer)
{
    long long n = 0;
    ad_err e = {0};
    ck_assert_int_eq(ctl_training_check_iterations("7", &n, &e), 0);
    ck_assert_int_eq(n, 7);
    ck_assert_int_eq(ctl_training_check_iterations("1000", &n, &e), 0);
    ck_assert_int_eq(ctl_training_check_iterations("abc", &n, &e), AD_EINVAL);
    ck_assert_str_eq(e.msg, "-n must be a positive integer, got 'abc'");
    ck_assert_int_eq(ctl_training_check_iterations("0", &n, &e), AD_EINVAL);
    ck_assert_str_eq(e.msg, "-n must be a positive integer, got '0'");
    ck_assert_int_eq(ctl_training_check_iterations("1001", &n, &e), AD_EINVAL);
    ck_assert_str_eq(e.msg, "-n must be at most 1000, got '1001'");
    ck_assert_int_eq(ctl_training_check_iterations(NULL, &n, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "-n is required"));
}
END_TEST

START_TEST(test_name_is_a_valid_version_name)
{
    ad_err e = {0};
    ck_assert_int_eq(ctl_training_check_name("v2", &e), 0);
    ck_assert_int_eq(ctl_training_check_name("prod_model-1.2", &e), 0);
    ck_assert_int_eq(ctl_training_check_name("model.pkl", &e), 0);
    ck_assert_int_eq(ctl_training_check_name("a b", &e), AD_EINVAL);
    ck_assert_str_eq(
        e.msg, "--name may contain only letters, digits, '_', '.' and '-', got 'a b' (' ' at 2)");
    ck_assert_int_eq(ctl_training_check_name("", &e), AD_EINVAL);
    ck_assert_str_eq(e.msg, "--name must be 1 to 64 characters, got '' (0)");
    ck_assert_int_eq(ctl_training_check_name("..", &e), AD_EINVAL);
    ck_assert_int_eq(ctl_training_check_name("group-3", &e), AD_EINVAL);
    ck_assert_int_eq(ctl_training_check_name(NULL, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "--name is required"));
}
END_TEST

Suite *ctl_training_suite(void)
{
    Suite *s = suite_create("ctl_training");
    TCase *tc = tcase_create("training");
    tcase_add_test(tc, test_iterations_must_be_a_positive_integer);
    tcase_add_test(tc, test_name_is_a_valid_version_name);
    suite_add_tcase(s, tc);
    return s;
}
