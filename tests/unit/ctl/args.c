/* ctl/args.c: agentctl's option parser. */
#include "ctl/args.h"

#include <check.h>
#include <string.h>

Suite *ctl_args_suite(void);

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))

START_TEST(test_options_values_and_positionals)
{
    ctl_opt o[] = {{.name = "--iterations", .alias = "-n", .takes_value = 1},
                   {.name = "--scope", .takes_value = 1},
                   {.name = "--wait"}};
    char *argv[] = {"alice",  "-n", "-3", "--scope=a", "--scope", "b",
                    "--wait", "-",  "--", "--wait",    NULL};
    ctl_args a;
    ad_err e = {0};
    ck_assert_int_eq(ctl_args_parse(10, argv, o, NOPTS(o), &a, &e), 0);
    /* A value may start with '-': "-n -3" reaches the verb's own check. */
    ck_assert_str_eq(ctl_args_value(o, NOPTS(o), "-n"), "-3");
    ck_assert_str_eq(ctl_args_value(o, NOPTS(o), "--iterations"), "-3");
    ck_assert_int_eq(o[1].count, 2);
    ck_assert_str_eq(o[1].values[0], "a");
    ck_assert_str_eq(o[1].values[1], "b");
    ck_assert_int_eq(o[2].count, 1);
    /* "-" alone and everything after "--" are positional. */
    ck_assert_int_eq(a.npos, 3);
    ck_assert_str_eq(a.pos[0], "alice");
    ck_assert_str_eq(a.pos[1], "-");
    ck_assert_str_eq(a.pos[2], "--wait");
    ctl_args_cleanup(o, NOPTS(o));
    ck_assert_int_eq(o[1].count, 0);
}
END_TEST

START_TEST(test_errors_say_what_is_wrong)
{
    ctl_opt o[] = {{.name = "--name", .takes_value = 1}, {.name = "--force"}};
    ctl_args a;
    ad_err e = {0};
    char *unknown[] = {"--nmae", "x"};
    ck_assert_int_eq(ctl_args_parse(2, unknown, o, NOPTS(o), &a, &e), AD_EINVAL);
    ck_assert_str_eq(e.msg, "unknown option '--nmae'");
    char *missing[] = {"--name"};
    ck_assert_int_eq(ctl_args_parse(1, missing, o, NOPTS(o), &a, &e), AD_EINVAL);
    ck_assert_str_eq(e.msg, "--name needs a value");
    char *flag_value[] = {"--force=yes"};
    ck_assert_int_eq(ctl_args_parse(1, flag_value, o, NOPTS(o), &a, &e), AD_EINVAL);
    ck_assert_str_eq(e.msg, "--force takes no value");
    char *many[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9"};
    ck_assert_int_eq(ctl_args_parse(9, many, o, NOPTS(o), &a, &e), AD_EINVAL);
    ck_assert_str_eq(e.msg, "too many arguments (at '9')");
    ctl_args_cleanup(o, NOPTS(o));
}
END_TEST

START_TEST(test_integer_is_whole_and_in_range)
{
    long long v = 0;
    ck_assert_int_eq(ctl_args_integer("42", 1, 100, &v), 0);
    ck_assert_int_eq(v, 42);
    const char *bad[] = {"", "abc", "4x", "1.5", " 4", "0x10", "101", "0", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(ctl_args_integer(bad[i], 1, 100, &v) == AD_EINVAL, "'%s' accepted", bad[i]);
    ck_assert_int_eq(ctl_args_integer(NULL, 1, 100, &v), AD_EINVAL);
}
END_TEST

Suite *ctl_args_suite(void)
{
    Suite *s = suite_create("ctl_args");
    TCase *tc = tcase_create("args");
    tcase_add_test(tc, test_options_values_and_positionals);
    tcase_add_test(tc, test_errors_say_what_is_wrong);
    tcase_add_test(tc, test_integer_is_whole_and_in_range);
    suite_add_tcase(s, tc);
    return s;
}
