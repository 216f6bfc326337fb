/* ctl/config.c: agentctl's settings, their order of precedence, and the
 * file login writes. */
#include "ctl/config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

Suite *ctl_config_suite(void);

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ctl-config-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("HOME", dir, 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("AGENTD_URL");
    unsetenv("AGENTD_TOKEN");
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int mode_of(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (int)(st.st_mode & 0777);
}

START_TEST(test_defaults_without_anything)
{
    ctl_config c;
    ck_assert_int_eq(ctl_config_load(&c, NULL, NULL, NULL), 0);
    ck_assert_str_eq(c.url, CTL_DEFAULT_URL);
    ck_assert_ptr_null(c.token);
    ctl_config_cleanup(&c);
}
END_TEST

START_TEST(test_flags_over_environment_over_file)
{
    mode_t old = umask(0);
    ck_assert_int_eq(ctl_config_save("http://file:1/", "file-token", NULL), 0);
    umask(old);
    char path[160], cfg_dir[128];
    snprintf(cfg_dir, sizeof(cfg_dir), "%s/.config/agentctl", dir);
    snprintf(path, sizeof(path), "%s/config", cfg_dir);
    /* 0600 in 0700 whatever the umask: the file holds a secret. */
    ck_assert_int_eq(mode_of(path), 0600);
    ck_assert_int_eq(mode_of(cfg_dir), 0700);

    ctl_config c;
    ck_assert_int_eq(ctl_config_load(&c, NULL, NULL, NULL), 0);
    ck_assert_str_eq(c.url, "http://file:1"); /* the trailing '/' dropped */
    ck_assert_str_eq(c.token, "file-token");
    ctl_config_cleanup(&c);

    setenv("AGENTD_URL", "http://env:2", 1);
    setenv("AGENTD_TOKEN", "env-token", 1);
    ck_assert_int_eq(ctl_config_load(&c, NULL, NULL, NULL), 0);
    ck_assert_str_eq(c.url, "http://env:2");
    ck_assert_str_eq(c.token, "env-token");
    ctl_config_cleanup(&c);

    ck_assert_int_eq(ctl_config_load(&c, "http://flag:3", "flag-token", NULL), 0);
    ck_assert_str_eq(c.url, "http://flag:3");
    ck_assert_str_eq(c.token, "flag-token");
    ctl_config_cleanup(&c);

    /* An empty AGENTD_TOKEN means no token, not the file's. */
    setenv("AGENTD_TOKEN", "", 1);
    ck_assert_int_eq(ctl_config_load(&c, NULL, NULL, NULL), 0);
    ck_assert_ptr_null(c.token);
    ctl_config_cleanup(&c);
}
END_TEST

START_TEST(test_xdg_config_home_moves_the_file)
{
    char xdg[128];
    snprintf(xdg, sizeof(xdg), "%s/xdg", dir);
    setenv("XDG_CONFIG_HOME", xdg, 1);
    char *path = NULL;
    ck_assert_int_eq(ctl_config_path(&path, NULL), 0);
    char want[160];
    snprintf(want, sizeof(want), "%s/agentctl/config", xdg);
    ck_assert_str_eq(path, want);
    free(path);
    ck_assert_int_eq(ctl_config_save("http://x:4", NULL, NULL), 0);
    ck_assert_int_eq(mode_of(want), 0600);
    ctl_config c;
    ck_assert_int_eq(ctl_config_load(&c, NULL, NULL, NULL), 0);
    ck_assert_str_eq(c.url, "http://x:4");
    ck_assert_ptr_null(c.token);
    ctl_config_cleanup(&c);
}
END_TEST

Suite *ctl_config_suite(void)
{
    Suite *s = suite_create("ctl_config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults_without_anything);
    tcase_add_test(tc, test_flags_over_environment_over_file);
    tcase_add_test(tc, test_xdg_config_home_moves_the_file);
    suite_add_tcase(s, tc);
    return s;
}
