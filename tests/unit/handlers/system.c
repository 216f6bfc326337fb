/* Tests handlers/system.c: /health's database check says whether the
 * database can be reached, in the shape it reports a full disk with. */
#include <check.h>
#include <cjson/cJSON.h>
#include <string.h>

#include "api/app.h"
#include "api/request.h"
#include "config/config.h"
#include "handlers/system.h"
#include "storage/db.h"
#include "tests/unit/storage/fixtures.h"

Suite *handlers_system_suite(void);

/* GET /health's status code, and its body's checks.database. */
static cJSON *health(int *status, cJSON **root)
{
    ad_config cfg;
    config_init(&cfg);
    ad_app app = {.cfg = &cfg};
    static const ad_principal open_caller = {.kind = AD_CALLER_OPEN};
    ad_request req = {.method = AD_GET, .who = &open_caller, .accept = "", .body = "", .request_id = "h-1",
                      .app = &app};
    ad_response res;
    ad_response_init(&res);
    handle_health(&req, &res);
    *status = res.status;
    *root = cJSON_Parse(res.body.data);
    ad_response_cleanup(&res);
    config_cleanup(&cfg);
    ck_assert_ptr_nonnull(*root);
    cJSON *db = cJSON_GetObjectItem(cJSON_GetObjectItem(*root, "checks"), "database");
    ck_assert_ptr_nonnull(db);
    return db;
}

static const char *text_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(o, name);
    ck_assert_msg(cJSON_IsString(v), "no string %s", name);
    return v->valuestring;
}

START_TEST(test_health_says_when_the_database_cannot_be_reached)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int status;
    cJSON *root;
    cJSON *db = health(&status, &root);
    ck_assert_str_eq(text_of(db, "status"), "ok");
    ck_assert_str_eq(text_of(db, "connection"), "ok");
    ck_assert_str_eq(text_of(db, "writes"), "ok");
    cJSON_Delete(root);
    storage_fixture_close(&f);
    /* No connection: this thread's was closed and none can be opened. */
    db = health(&status, &root);
    ck_assert_int_eq(status, 503);
    ck_assert_str_eq(text_of(root, "status"), "unhealthy");
    ck_assert_str_eq(text_of(db, "status"), "error");
    ck_assert_str_eq(text_of(db, "connection"), "unavailable");
    ck_assert_str_eq(text_of(db, "message"), "the database cannot be reached; see the server log");
    ck_assert_str_eq(text_of(db, "writes"), "ok");
    cJSON_Delete(root);
}
END_TEST

Suite *handlers_system_suite(void)
{
    Suite *s = suite_create("handlers_system");
    TCase *tc = tcase_create("system");
    tcase_add_test(tc, test_health_says_when_the_database_cannot_be_reached);
    suite_add_tcase(s, tc);
    return s;
}
