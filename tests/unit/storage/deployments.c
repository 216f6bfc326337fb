/* Tests storage/deployments.c: create, push (switch or reject), remove with
 * rollback, listing, events, and that a failed switch leaves nothing. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "base/uuid.h"
#include "pipeline/plan.h"
#include "storage/agents.h"
#include "storage/db.h"
#include "storage/deployments.h"
#include "storage/versions.h"
#include "tests/unit/storage/fixtures.h"

Suite *storage_deployments_suite(void);

static int64_t make_agent(storage_conn *db, const char *user_id)
{
    agent_new a = {.user_id = user_id, .source = "dataset", .material = "[]", .material_len = 2};
    pipeline_plan_agent(&a);
    int64_t id = 0;
    ck_assert_int_eq(storage_agents_create(db, &a, &id, NULL), 0);
    return id;
}

static int64_t make_version(storage_conn *db, int64_t agent_id, const char *name, double quality)
{
    int64_t vid = 0;
    ad_err e = {0};
    ck_assert_msg(storage_versions_create(db, agent_id, name, "en", "{}", "p", "[]", &vid, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(storage_versions_set_metrics(db, vid, "{\"quality_score\":1}", quality, &e), 0);
    return vid;
}

static int64_t deployed(storage_conn *db, int64_t agent_id)
{
    return storage_fixture_count(db, "SELECT coalesce(max(deployed_version_id), 0) FROM agents WHERE id = ?1",
                                 agent_id);
}

/* Pushes a new deployment of `version_id` (deploy: the gate's answer) and
 * returns its uuid in `uuid`. */
static int push_new(storage_conn *db, int64_t agent_id, int64_t version_id, int deploy, char uuid[AD_UUID_LEN],
                    ad_err *e)
{
    ad_uuid_v4(uuid);
    version_verdict v = {.agent_id = agent_id,
                         .version_id = version_id,
                         .deploy = deploy,
                         .note = deploy ? "deployed: test" : "not deployed: test",
                         .expected_deployed = deployed(db, agent_id),
                         .uuid = uuid,
                         .created_by = "token:3",
                         .actor = "token:3",
                         .gate = "{\"quality\":0.5}"};
    return storage_deployments_push(db, &v, e);
}

static const char *status_of(storage_conn *db, int64_t agent_id, const char *uuid)
{
    deployment_row d;
    ad_err e = {0};
    ck_assert_msg(storage_deployments_get(db, agent_id, uuid, &d, &e) == 0, "%s", e.msg);
    const char *s = deployment_state_to_string(d.status);
    deployment_row_cleanup(&d);
    return s;
}

typedef struct event_words {
    char buf[256];
} event_words;

static void collect_event(void *ud, const deployment_event *ev)
{
    event_words *w = ud;
    size_t n = strlen(w->buf);
    snprintf(w->buf + n, sizeof(w->buf) - n, "%s%s", n ? " " : "", ev->event);
}

static const char *events_of(storage_conn *db, int64_t agent_id, const char *uuid, event_words *w)
{
    deployment_row d;
    w->buf[0] = '\0';
    ck_assert_int_eq(storage_deployments_get(db, agent_id, uuid, &d, NULL), 0);
    ck_assert_int_eq(storage_deployments_events(db, d.id, collect_event, w, NULL), 0);
    deployment_row_cleanup(&d);
    return w->buf;
}

START_TEST(test_push_switches_and_supersedes)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    int64_t v1 = make_version(f.db, a, "v1", 0.9), v2 = make_version(f.db, a, "v2", 0.8);
    ad_err e = {0};
    char d1[AD_UUID_LEN], d2[AD_UUID_LEN];
    ck_assert_msg(push_new(f.db, a, v1, 1, d1, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(deployed(f.db, a), v1);
    ck_assert_msg(push_new(f.db, a, v2, 1, d2, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(deployed(f.db, a), v2);
    ck_assert_str_eq(status_of(f.db, a, d1), "superseded");
    ck_assert_str_eq(status_of(f.db, a, d2), "live");
    event_words w;
    ck_assert_str_eq(events_of(f.db, a, d1, &w), "created gate live superseded");
    ck_assert_str_eq(events_of(f.db, a, d2, &w), "created gate live");
    deployment_row d;
    ck_assert_int_eq(storage_deployments_get(f.db, a, d2, &d, &e), 0);
    ck_assert_str_eq(d.model, "v2");
    ck_assert_str_eq(d.created_by, "token:3");
    ck_assert(d.has_quality && d.quality > 0.79 && d.quality < 0.81);
    ck_assert_ptr_nonnull(d.metrics);
    ck_assert_int_gt(d.live_at, 0);
    deployment_row_cleanup(&d);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE state = 'deployed'", 0), 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE id = ?1 AND state = 'retired'",
                                           v1), 1);
    /* The audit log has the switch, by the caller. */
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM audit_log WHERE action = 'deployment.live'"
                                                 " AND actor = 'token:3'", 0), 2);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_reject_and_pending)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    int64_t v1 = make_version(f.db, a, "v1", 0.9), v2 = make_version(f.db, a, "v2", 0.1);
    ad_err e = {0};
    char d1[AD_UUID_LEN], r[AD_UUID_LEN], p[AD_UUID_LEN];
    ck_assert_int_eq(push_new(f.db, a, v1, 1, d1, &e), 0);
    ck_assert_int_eq(push_new(f.db, a, v2, 0, r, &e), 0);
    ck_assert_str_eq(status_of(f.db, a, r), "rejected");
    ck_assert_int_eq(deployed(f.db, a), v1);
    event_words w;
    ck_assert_str_eq(events_of(f.db, a, r, &w), "created gate rejected");
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE id = ?1 AND state = 'rejected'",
                                           v2), 1);

    /* A pending one, pushed later; pushing it again is AD_ESTATE. */
    ad_uuid_v4(p);
    deployment_new n = {.agent_id = a, .version_id = v2, .uuid = p, .created_by = "admin"};
    ck_assert_int_eq(storage_deployments_create(f.db, &n, &e), 0);
    ck_assert_str_eq(status_of(f.db, a, p), "pending");
    deployment_row d;
    ck_assert_int_eq(storage_deployments_get(f.db, a, p, &d, &e), 0);
    version_verdict v = {.agent_id = a, .version_id = v2, .deploy = 1, .note = "forced", .forced = 1,
                         .expected_deployed = v1, .deployment_id = d.id, .actor = "admin"};
    ck_assert_int_eq(storage_deployments_push(f.db, &v, &e), 0);
    ck_assert_str_eq(status_of(f.db, a, p), "live");
    ck_assert_int_eq(deployed(f.db, a), v2);
    v.expected_deployed = v2;
    ck_assert_int_eq(storage_deployments_push(f.db, &v, &e), AD_ESTATE);
    ck_assert_ptr_nonnull(strstr(e.msg, "not pending"));
    deployment_row_cleanup(&d);

    /* A version of another agent is not found; a stale decision conflicts. */
    int64_t b = make_agent(f.db, "b");
    int64_t bv = make_version(f.db, b, "v1", 0.5);
    char x[AD_UUID_LEN];
    ad_uuid_v4(x);
    n = (deployment_new){.agent_id = a, .version_id = bv, .uuid = x, .created_by = "admin"};
    ck_assert_int_eq(storage_deployments_create(f.db, &n, &e), AD_ENOTFOUND);
    version_verdict stale = {.agent_id = a, .version_id = v1, .deploy = 1, .note = "n", .expected_deployed = v1,
                             .uuid = x, .created_by = "system"};
    ck_assert_int_eq(storage_deployments_push(f.db, &stale, &e), AD_ECONFLICT);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM deployments WHERE agent_id = ?1", a), 3);
    storage_fixture_close(&f);
}
END_TEST

START_TEST(test_remove_rolls_back_then_serves_nothing)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    int64_t v1 = make_version(f.db, a, "v1", 0.9), v2 = make_version(f.db, a, "v2", 0.9);
    ad_err e = {0};
    char d1[AD_UUID_LEN], d2[AD_UUID_LEN], d3[AD_UUID_LEN];
    ck_assert_int_eq(push_new(f.db, a, v1, 1, d1, &e), 0);
    ck_assert_int_eq(push_new(f.db, a, v2, 1, d2, &e), 0);
    ck_assert_int_eq(push_new(f.db, a, v1, 1, d3, &e), 0);
    deployment_row out;
    /* d3 live: removing it brings back d2 (the one superseded last). */
    ck_assert_msg(storage_deployments_remove(f.db, a, d3, "admin", "r-1", &out, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(out.status, DEPLOYMENT_REMOVED);
    deployment_row_cleanup(&out);
    ck_assert_str_eq(status_of(f.db, a, d2), "live");
    ck_assert_int_eq(deployed(f.db, a), v2);
    event_words w;
    ck_assert_str_eq(events_of(f.db, a, d3, &w), "created gate live removed rolled_back_to");
    ck_assert_str_eq(events_of(f.db, a, d2, &w), "created gate live superseded restored");
    /* Removing the removed one again changes nothing. */
    ck_assert_int_eq(storage_deployments_remove(f.db, a, d3, "admin", NULL, &out, &e), 0);
    deployment_row_cleanup(&out);
    ck_assert_str_eq(events_of(f.db, a, d3, &w), "created gate live removed rolled_back_to");
    /* d2 removed: d1 back; d1 removed: nothing serves. */
    ck_assert_int_eq(storage_deployments_remove(f.db, a, d2, "admin", NULL, &out, &e), 0);
    deployment_row_cleanup(&out);
    ck_assert_int_eq(deployed(f.db, a), v1);
    ck_assert_int_eq(storage_deployments_remove(f.db, a, d1, "admin", NULL, &out, &e), 0);
    deployment_row_cleanup(&out);
    ck_assert_int_eq(deployed(f.db, a), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE state = 'deployed'", 0), 0);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM deployments WHERE status = 'live'", 0), 0);
    ck_assert_int_eq(storage_deployments_remove(f.db, a, "0b7e5f3c-1d2a-4c3b-8a9d-0123456789ab", "admin", NULL,
                                                &out, &e), AD_ENOTFOUND);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM audit_log WHERE action = 'deployment.removed'"
                                                 " AND actor = 'admin'", 0), 3);
    storage_fixture_close(&f);
}
END_TEST

typedef struct page {
    char uuids[8][AD_UUID_LEN];
    int n;
} page;

static void collect_uuid(void *ud, const deployment_row *d)
{
    page *p = ud;
    snprintf(p->uuids[p->n++], AD_UUID_LEN, "%s", d->uuid);
}

START_TEST(test_list_newest_first_with_cursor)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    int64_t v1 = make_version(f.db, a, "v1", 0.9);
    char made[5][AD_UUID_LEN];
    for (int i = 0; i < 5; i++) {
        ad_uuid_v4(made[i]);
        deployment_new n = {.agent_id = a, .version_id = v1, .uuid = made[i], .created_by = "admin"};
        ck_assert_int_eq(storage_deployments_create(f.db, &n, NULL), 0);
    }
    page p = {0};
    ck_assert_int_eq(storage_deployments_list(f.db, a, NULL, 2, collect_uuid, &p, NULL), 0);
    ck_assert_int_eq(p.n, 2);
    ck_assert_str_eq(p.uuids[0], made[4]);
    ck_assert_str_eq(p.uuids[1], made[3]);
    char after[AD_UUID_LEN];
    snprintf(after, sizeof(after), "%s", p.uuids[1]);
    ck_assert_int_eq(storage_deployments_list(f.db, a, after, 10, collect_uuid, &p, NULL), 0);
    ck_assert_int_eq(p.n, 5);
    ck_assert_str_eq(p.uuids[4], made[0]);
    ad_err e = {0};
    ck_assert_int_eq(storage_deployments_list(f.db, a, "0b7e5f3c-1d2a-4c3b-8a9d-0123456789ab", 2, collect_uuid, &p,
                                              &e), AD_EINVAL);
    /* Another agent's cursor is not this agent's. */
    int64_t b = make_agent(f.db, "b");
    ck_assert_int_eq(storage_deployments_list(f.db, b, made[0], 2, collect_uuid, &p, &e), AD_EINVAL);
    storage_fixture_close(&f);
}
END_TEST

/* A switch whose last step fails writes nothing: no deployment, no event,
 * the live one still live, the agent still pointing at its version. */
START_TEST(test_failed_switch_leaves_nothing)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    int64_t v1 = make_version(f.db, a, "v1", 0.9), v2 = make_version(f.db, a, "v2", 0.9);
    ad_err e = {0};
    char d1[AD_UUID_LEN], d2[AD_UUID_LEN];
    ck_assert_int_eq(push_new(f.db, a, v1, 1, d1, &e), 0);
    int64_t events = storage_fixture_count(f.db, "SELECT count(*) FROM deployment_events", 0);
    storage_fixture_fail_statement(f.db, "UPDATE agents SET deployed_version_id", 0);
    int rc = push_new(f.db, a, v2, 1, d2, &e);
    ck_assert_int_eq(storage_fixture_fail_statement(f.db, NULL, 0), 1);
    ck_assert_int_eq(rc, AD_EINTERNAL);
    ck_assert_int_eq(deployed(f.db, a), v1);
    ck_assert_str_eq(status_of(f.db, a, d1), "live");
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM deployments", 0), 1);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM deployment_events", 0), events);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE id = ?1 AND state = 'deployed'",
                                           v1), 1);
    storage_fixture_close(&f);
}
END_TEST

/* The rollback target is this agent's deployment superseded last whose
 * version still exists: not one whose version is gone, not another agent's
 * (superseded later), not one removed. */
START_TEST(test_rollback_skips_gone_versions_and_other_agents)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a"), b = make_agent(f.db, "b");
    int64_t v1 = make_version(f.db, a, "v1", 0.9), v2 = make_version(f.db, a, "v2", 0.9),
            v3 = make_version(f.db, a, "v3", 0.9), v4 = make_version(f.db, a, "v4", 0.9);
    int64_t b1 = make_version(f.db, b, "v1", 0.9), b2 = make_version(f.db, b, "v2", 0.9);
    ad_err e = {0};
    char d1[AD_UUID_LEN], d2[AD_UUID_LEN], d3[AD_UUID_LEN], d4[AD_UUID_LEN], x1[AD_UUID_LEN], x2[AD_UUID_LEN];
    ck_assert_int_eq(push_new(f.db, a, v1, 1, d1, &e), 0);
    ck_assert_int_eq(push_new(f.db, a, v2, 1, d2, &e), 0);
    ck_assert_int_eq(push_new(f.db, a, v3, 1, d3, &e), 0);
    ck_assert_int_eq(push_new(f.db, a, v4, 1, d4, &e), 0);
    /* b's switch comes last: its superseded deployment is the newest of all. */
    ck_assert_int_eq(push_new(f.db, b, b1, 1, x1, &e), 0);
    ck_assert_int_eq(push_new(f.db, b, b2, 1, x2, &e), 0);
    /* d3's version is gone; d2 was removed while superseded. */
    storage_fixture_exec(f.db, "DELETE FROM versions WHERE id = ?1", v3);
    deployment_row out;
    ck_assert_int_eq(storage_deployments_remove(f.db, a, d2, "admin", NULL, &out, &e), 0);
    deployment_row_cleanup(&out);
    ck_assert_int_eq(deployed(f.db, a), v4);
    ck_assert_msg(storage_deployments_remove(f.db, a, d4, "admin", NULL, &out, &e) == 0, "%s", e.msg);
    deployment_row_cleanup(&out);
    ck_assert_str_eq(status_of(f.db, a, d1), "live");
    ck_assert_str_eq(status_of(f.db, a, d3), "superseded");
    ck_assert_int_eq(deployed(f.db, a), v1);
    ck_assert_str_eq(status_of(f.db, b, x1), "superseded");
    ck_assert_str_eq(status_of(f.db, b, x2), "live");
    ck_assert_int_eq(deployed(f.db, b), b2);
    storage_fixture_close(&f);
}
END_TEST

/* The rollback follows the order deployments went live in, not the clock:
 * after the wall clock stepped back, the one superseded last can have the
 * older updated_at, and it is still the one that comes back. */
START_TEST(test_rollback_ignores_a_clock_stepped_back)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    int64_t v1 = make_version(f.db, a, "v1", 0.9), v2 = make_version(f.db, a, "v2", 0.9),
            v3 = make_version(f.db, a, "v3", 0.9);
    ad_err e = {0};
    char d1[AD_UUID_LEN], d2[AD_UUID_LEN], d3[AD_UUID_LEN];
    ck_assert_int_eq(push_new(f.db, a, v1, 1, d1, &e), 0);
    ck_assert_int_eq(push_new(f.db, a, v2, 1, d2, &e), 0);
    /* d1 was superseded "an hour later" than d2 will be: the clock went back. */
    storage_fixture_exec(f.db, "UPDATE deployments SET updated_at = updated_at + 3600000 WHERE agent_id = ?1"
                               " AND status = 'superseded'", a);
    ck_assert_int_eq(push_new(f.db, a, v3, 1, d3, &e), 0);
    deployment_row out;
    ck_assert_int_eq(storage_deployments_remove(f.db, a, d3, "admin", NULL, &out, &e), 0);
    deployment_row_cleanup(&out);
    ck_assert_str_eq(status_of(f.db, a, d2), "live");
    ck_assert_str_eq(status_of(f.db, a, d1), "superseded");
    ck_assert_int_eq(deployed(f.db, a), v2);
    storage_fixture_close(&f);
}
END_TEST

/* A removal whose last step fails writes nothing: the live one stays live,
 * the one it would have brought back stays superseded, no event, no audit
 * row; the same when no deployment would come back. */
START_TEST(test_failed_remove_leaves_nothing)
{
    storage_fixture f;
    storage_fixture_open(&f);
    int64_t a = make_agent(f.db, "a");
    int64_t v1 = make_version(f.db, a, "v1", 0.9), v2 = make_version(f.db, a, "v2", 0.9);
    ad_err e = {0};
    char d1[AD_UUID_LEN], d2[AD_UUID_LEN];
    ck_assert_int_eq(push_new(f.db, a, v1, 1, d1, &e), 0);
    ck_assert_int_eq(push_new(f.db, a, v2, 1, d2, &e), 0);
    int64_t events = storage_fixture_count(f.db, "SELECT count(*) FROM deployment_events", 0);
    int64_t audits = storage_fixture_count(f.db, "SELECT count(*) FROM audit_log", 0);
    deployment_row out;
    /* The rollback fails as it points the agent at d1's version. */
    storage_fixture_fail_statement(f.db, "UPDATE agents SET deployed_version_id", 0);
    int rc = storage_deployments_remove(f.db, a, d2, "admin", NULL, &out, &e);
    ck_assert_int_eq(storage_fixture_fail_statement(f.db, NULL, 0), 1);
    ck_assert_int_eq(rc, AD_EINTERNAL);
    ck_assert_str_eq(status_of(f.db, a, d2), "live");
    ck_assert_str_eq(status_of(f.db, a, d1), "superseded");
    ck_assert_int_eq(deployed(f.db, a), v2);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM deployment_events", 0), events);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM audit_log", 0), audits);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE id = ?1 AND state = 'deployed'",
                                           v2), 1);
    /* With nothing to come back to, it fails as it clears the agent's version. */
    ck_assert_int_eq(storage_deployments_remove(f.db, a, d1, "admin", NULL, &out, &e), 0);
    deployment_row_cleanup(&out);
    storage_fixture_fail_statement(f.db, "UPDATE agents SET deployed_version_id = NULL", 0);
    rc = storage_deployments_remove(f.db, a, d2, "admin", NULL, &out, &e);
    ck_assert_int_eq(storage_fixture_fail_statement(f.db, NULL, 0), 1);
    ck_assert_int_eq(rc, AD_EINTERNAL);
    ck_assert_str_eq(status_of(f.db, a, d2), "live");
    ck_assert_int_eq(deployed(f.db, a), v2);
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM versions WHERE id = ?1 AND state = 'deployed'",
                                           v2), 1);
    storage_fixture_close(&f);
}
END_TEST

Suite *storage_deployments_suite(void)
{
    Suite *s = suite_create("storage_deployments");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_push_switches_and_supersedes);
    tcase_add_test(tc, test_reject_and_pending);
    tcase_add_test(tc, test_remove_rolls_back_then_serves_nothing);
    tcase_add_test(tc, test_list_newest_first_with_cursor);
    tcase_add_test(tc, test_failed_switch_leaves_nothing);
    tcase_add_test(tc, test_rollback_skips_gone_versions_and_other_agents);
    tcase_add_test(tc, test_failed_remove_leaves_nothing);
    tcase_add_test(tc, test_rollback_ignores_a_clock_stepped_back);
    suite_add_tcase(s, tc);
    return s;
}
