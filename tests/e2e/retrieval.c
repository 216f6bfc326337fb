/* Per-version retrieval against the real binary: one agent's sources do not
 * move when another agent comes and goes, `language` on create (validation,
 * auto detection, where it is shown), Portuguese analysis, and a database
 * made by the release before the per-version index (schema 5) migrating
 * forward. */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/e2e/harness.h"

Suite *e2e_retrieval_suite(void);

#define AGENTS "/api/v1/agents"

static void create_ok(const e2e_server *s, const char *body, const char *what)
{
    e2e_response r = e2e_post(s, AGENTS, body);
    ck_assert_msg(r.status == 201, "create %s: %ld %s", what, r.status, r.body);
    e2e_response_free(&r);
}

static void wait_ready(const e2e_server *s, const char *id)
{
    const char *st = e2e_wait_agent(s, id, 60000);
    ck_assert_msg(!strcmp(st, "ready"), "agent %s ended %s", id, st);
}

/* The inference response's `sources`, printed (caller frees). */
static char *sources_of(const e2e_server *s, const char *id, const char *prompt)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "prompt", prompt);
    cJSON_AddNumberToObject(b, "top_passages", 5);
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    char *path = e2e_fmt(AGENTS "/%s/inference", id);
    e2e_response r = e2e_post(s, path, body);
    ck_assert_msg(r.status == 200, "inference %s: %ld %s", id, r.status, r.body);
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(r.json, "sources");
    ck_assert_msg(cJSON_IsArray(src), "no sources: %s", r.body);
    char *out = cJSON_PrintUnformatted(src);
    e2e_response_free(&r);
    free(path);
    free(body);
    return out;
}

/* ---- isolation --------------------------------------------------------------- */

static const char *const iso_prompts[] = {
    "How do I create a virtual environment?", "What are Python decorators?",
    "How to handle exceptions in Python?",    "How to work with databases in Python?",
    "How does the interpreter lock threads?",  "How do list comprehensions work?",
    "How to optimize Python code performance?", "How to test Python code?",
    "What are generators and why use them?",   "How to create a REST API with Flask?",
};
#define ISO_PROMPTS (sizeof(iso_prompts) / sizeof(iso_prompts[0]))

static void iso_collect(const e2e_server *s, char **out)
{
    for (size_t i = 0; i < ISO_PROMPTS; i++) out[i] = sources_of(s, "iso_a", iso_prompts[i]);
}

static void iso_same(char **before, char **after, const char *when)
{
    for (size_t i = 0; i < ISO_PROMPTS; i++) {
        ck_assert_msg(!strcmp(before[i], after[i]), "%s, '%s': sources moved:\n%s\n%s", when,
                      iso_prompts[i], before[i], after[i]);
        free(after[i]);
    }
}

/* Agent A's sources (passages, scores to 4 decimals, snippets) for ten fixed
 * prompts are the same, byte for byte, before agent B exists, while B (the
 * same subject, most words shared) is stored, and after B is deleted. With
 * the shared FTS5 index of schema 5 every score moved with B's material. */
START_TEST(test_sources_do_not_depend_on_other_agents)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    char *a = e2e_dataset_body("iso_a", "data/python_expert_dataset.json");
    create_ok(&s, a, "iso_a");
    free(a);
    wait_ready(&s, "iso_a");
    char *before[ISO_PROMPTS], *now[ISO_PROMPTS];
    iso_collect(&s, before);

    /* B: A's own pairs with other answers' words mixed in, and more of them. */
    char *bt = e2e_dataset_body("iso_b", "data/python_expert_dataset.json");
    cJSON *body = cJSON_Parse(bt);
    free(bt);
    cJSON *ds = cJSON_GetObjectItemCaseSensitive(body, "dataset");
    int n = cJSON_GetArraySize(ds);
    for (int i = 0; i < n; i++) {
        cJSON *item = cJSON_GetArrayItem(ds, i);
        const char *q = e2e_json_str(item, "prompt");
        const char *next = e2e_json_str(cJSON_GetArrayItem(ds, (i + 1) % n), "answer");
        cJSON *extra = cJSON_CreateObject();
        cJSON_AddStringToObject(extra, "prompt", q);
        char *ans = e2e_fmt("Python python %s", next);
        cJSON_AddStringToObject(extra, "answer", ans);
        free(ans);
        cJSON_AddItemToArray(ds, extra);
    }
    char *b = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    create_ok(&s, b, "iso_b");
    free(b);
    wait_ready(&s, "iso_b");
    iso_collect(&s, now);
    iso_same(before, now, "with B stored");

    e2e_response r = e2e_request(&s, "DELETE", AGENTS "/iso_b", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    e2e_response_free(&r);
    iso_collect(&s, now);
    iso_same(before, now, "after B was deleted");
    for (size_t i = 0; i < ISO_PROMPTS; i++) free(before[i]);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- language ---------------------------------------------------------------- */

static const char pt_text[] =
    "Para solicitar a segunda via do cartão, o cliente precisa enviar as informações pessoais pelo "
    "aplicativo do banco. A análise dos documentos leva até cinco dias úteis.\n\n"
    "O limite de crédito é calculado a partir da renda declarada e do histórico de pagamentos. "
    "Quem paga as faturas em dia costuma receber aumentos automáticos do limite.\n\n"
    "As compras parceladas aparecem na fatura de cada mês com o valor da parcela. Os juros do "
    "rotativo são cobrados quando o pagamento mínimo é feito no lugar do valor total.";

static char *text_body(const char *id, const char *text, const char *language)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "user_id", id);
    cJSON_AddStringToObject(b, "training_data", text);
    if (language) cJSON_AddStringToObject(b, "language", language);
    char *out = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return out;
}

/* GET /agents/{id}'s language and language_requested, and its entry in the list. */
static void check_shown(const e2e_server *s, const char *id, const char *language, const char *requested)
{
    char *path = e2e_fmt(AGENTS "/%s", id);
    e2e_response r = e2e_get(s, path);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(e2e_json_str(r.json, "language"), language);
    ck_assert_str_eq(e2e_json_str(r.json, "language_requested"), requested);
    e2e_response_free(&r);
    free(path);
    r = e2e_get(s, AGENTS "?limit=500");
    ck_assert_int_eq(r.status, 200);
    const cJSON *entry = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r.json, "users"), id);
    ck_assert_str_eq(e2e_json_str(entry, "language"), language);
    e2e_response_free(&r);
}

START_TEST(test_language_on_create)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    /* Anything but auto or a code: 400 naming the field and the codes. */
    const char *const bad[] = {"\"xx\"", "\"EN\"", "\"\"", "42", "true", "[\"en\"]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *body = e2e_fmt("{\"user_id\":\"bad%zu\",\"training_data\":\"some text\",\"language\":%s}", i,
                             bad[i]);
        e2e_response r = e2e_post(&s, AGENTS, body);
        e2e_assert_error(&r, 400, "invalid_language", "language", body);
        const char *msg = e2e_json_str(r.json, "error");
        ck_assert_msg(strstr(msg, "auto") && strstr(msg, "en") && strstr(msg, "pt") && strstr(msg, "nl"),
                      "the codes are not listed: %s", msg);
        e2e_response_free(&r);
        free(body);
    }
    /* An explicit code is kept whatever the text; the 201 says it. */
    char *body = text_body("given_en", pt_text, "en");
    e2e_response r = e2e_post(&s, AGENTS, body);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(e2e_json_str(r.json, "language"), "en");
    e2e_response_free(&r);
    free(body);
    body = text_body("given_pt", "Python lists keep items in order.", "pt");
    create_ok(&s, body, "given_pt");
    free(body);
    /* auto, asked or by default: Portuguese text is pt, the English datasets en. */
    body = text_body("auto_pt", pt_text, "auto");
    create_ok(&s, body, "auto_pt");
    free(body);
    const char *const datasets[] = {"data/python_expert_dataset.json", "data/ml_expert_dataset.json"};
    const char *const ids[] = {"auto_py", "auto_ml"};
    for (int i = 0; i < 2; i++) {
        body = e2e_dataset_body(ids[i], datasets[i]);
        r = e2e_post(&s, AGENTS, body);
        ck_assert_int_eq(r.status, 201);
        ck_assert_str_eq(e2e_json_str(r.json, "language"), "en");
        e2e_response_free(&r);
        free(body);
    }
    /* The Flask alias takes it too, with the same check. */
    r = e2e_post(&s, AGENTS "/advanced",
                 "{\"user_id\":\"adv_bad\",\"json_dataset\":[{\"prompt\":\"a\",\"answer\":\"b\"}],\"language\":\"pt-BR\"}");
    e2e_assert_error(&r, 400, "invalid_language", "language", "advanced");
    e2e_response_free(&r);
    r = e2e_post(&s, AGENTS "/advanced",
                 "{\"user_id\":\"adv_pt\",\"json_dataset\":[{\"prompt\":\"Where?\",\"answer\":\"Here.\"}],\"language\":\"pt\"}");
    ck_assert_msg(r.status == 201, "advanced: %ld %s", r.status, r.body);
    ck_assert_str_eq(e2e_json_str(r.json, "language"), "pt");
    e2e_response_free(&r);
    check_shown(&s, "adv_pt", "pt", "pt");
    check_shown(&s, "given_en", "en", "en");
    check_shown(&s, "given_pt", "pt", "pt");
    check_shown(&s, "auto_pt", "pt", "auto");
    check_shown(&s, "auto_py", "en", "auto");
    check_shown(&s, "auto_ml", "en", "auto");

    /* A version is indexed in its agent's language, and says so. */
    wait_ready(&s, "auto_pt");
    r = e2e_get(&s, AGENTS "/auto_pt/models");
    ck_assert_int_eq(r.status, 200);
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(r.json, "models");
    ck_assert_int_eq(cJSON_GetArraySize(models), 1);
    ck_assert_str_eq(e2e_json_str(cJSON_GetArrayItem(models, 0), "language"), "pt");
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* Portuguese analysis: a question in other inflections ("informação",
 * "documento", "analisado") finds the answer written with "informações",
 * "documentos", "análise" (no word of the question appears in it as it is
 * written, accents folded or not). */
START_TEST(test_portuguese_inflections_match)
{
    e2e_server s;
    e2e_start(&s, NULL, NULL);
    const char *pairs =
        "[{\"prompt\":\"Como pedir a segunda via do cartão?\",\"answer\":\"Envie as informações "
        "pessoais pelo aplicativo; a análise dos documentos leva até cinco dias úteis.\"},"
        "{\"prompt\":\"Como é calculado o limite de crédito?\",\"answer\":\"O limite de crédito "
        "depende da renda declarada e do histórico de pagamentos.\"},"
        "{\"prompt\":\"O que são juros do rotativo?\",\"answer\":\"São cobrados quando se paga só "
        "o mínimo da fatura.\"}]";
    char *body = e2e_fmt("{\"user_id\":\"pt_cards\",\"dataset\":%s}", pairs);
    e2e_response r = e2e_post(&s, AGENTS, body);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(e2e_json_str(r.json, "language"), "pt");
    e2e_response_free(&r);
    free(body);
    wait_ready(&s, "pt_cards");
    r = e2e_post(&s, AGENTS "/pt_cards/inference",
                 "{\"prompt\":\"Qual informação pessoal o documento precisa para ser analisado?\"}");
    ck_assert_int_eq(r.status, 200);
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(r.json, "sources");
    ck_assert_msg(cJSON_GetArraySize(src) >= 1, "no source: %s", r.body);
    ck_assert_msg(strstr(e2e_json_str(cJSON_GetArrayItem(src, 0), "snippet"), "informações pessoais"),
                  "best source: %s", r.body);
    ck_assert_double_eq(e2e_json_num(cJSON_GetArrayItem(src, 0), "passage_id"), 1);
    /* Confidence counts the prompt's words found in the answer as retrieval
     * does (analysed in Portuguese): exact words would find none of them and
     * leave only the margin's quarter. */
    ck_assert_msg(e2e_json_num(r.json, "confidence") > 0.4, "confidence: %s", r.body);
    e2e_response_free(&r);
    ck_assert_int_eq(e2e_stop(&s), 0);
    e2e_cleanup(&s);
}
END_TEST

/* ---- migration from schema 5 ----------------------------------------------- */

static long long db_int(const char *data_dir, const char *sql)
{
    char *path = e2e_fmt("%s/agentd.db", data_dir);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return v;
}

/* tests/data/schema5.sql is a dump of a database the release before the
 * per-version index made (a text agent and a dataset agent, both ready).
 * Loaded into a fresh data dir, the new binary migrates it, builds the two
 * versions' indexes before it listens, and both agents answer with sources;
 * the FTS5 table is gone. */
START_TEST(test_schema5_database_migrates)
{
    if (e2e_skip_on_pg("migrates a SQLite file of schema version 5")) return;
    char dir[] = "/tmp/agentd-schema5-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *data = e2e_fmt("%s/data", dir);
    ck_assert_int_eq(mkdir(data, 0750), 0);
    char *path = e2e_fmt("%s/agentd.db", data);
    char *dump = e2e_read_file(e2e_test_file("data/schema5.sql"), NULL);
    ck_assert_ptr_nonnull(dump);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    ck_assert_msg(sqlite3_exec(db, dump, NULL, NULL, &msg) == SQLITE_OK, "load: %s", msg ? msg : "");
    sqlite3_close(db);
    free(dump);
    ck_assert_int_eq(db_int(data, "PRAGMA user_version"), 5);

    e2e_server s;
    const char *const args[] = {"--data-dir", data, NULL};
    e2e_start(&s, args, NULL);
    snprintf(s.data_dir, sizeof(s.data_dir), "%s", data);
    ck_assert_int_eq(e2e_log_wait(&s, "built the retrieval index of 2 model version(s)", 1, 5000), 1);
    const char *const ids[] = {"old_text", "old_dataset"};
    const char *const prompts[] = {"Where does Cargo download dependencies from?",
                                   "How do I create a virtual environment?"};
    const char *const expect[] = {"crates.io", "python -m venv"};
    for (int i = 0; i < 2; i++) {
        char *p = e2e_fmt(AGENTS "/%s/inference", ids[i]);
        char *b = e2e_fmt("{\"prompt\":\"%s\"}", prompts[i]);
        e2e_response r = e2e_post(&s, p, b);
        ck_assert_msg(r.status == 200, "%s: %ld %s", ids[i], r.status, r.body);
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(r.json, "sources");
        ck_assert_msg(cJSON_GetArraySize(src) >= 1, "%s: no sources: %s", ids[i], r.body);
        ck_assert_msg(strstr(e2e_json_str(r.json, "response"), expect[i]), "%s answered: %s", ids[i], r.body);
        e2e_response_free(&r);
        free(p);
        free(b);
        /* Old agents are English, the language they were analysed in before. */
        p = e2e_fmt(AGENTS "/%s", ids[i]);
        r = e2e_get(&s, p);
        ck_assert_str_eq(e2e_json_str(r.json, "language"), "en");
        ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r.json, "language_requested")));
        e2e_response_free(&r);
        free(p);
    }
    ck_assert_int_eq(e2e_stop(&s), 0);
    ck_assert_int_eq(db_int(data, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'passages%'"), 0);
    ck_assert_int_eq(db_int(data, "SELECT count(*) FROM version_index"), 2);
    ck_assert_int_eq(db_int(data, "SELECT count(*) FROM version_passages"), 22);
    /* Each column landed in its own: the text version's two passages have
     * no question, answer or category, the dataset's twenty all three, and
     * both keep their places. */
    ck_assert_int_eq(db_int(data, "SELECT count(*) FROM version_passages WHERE version_id = 1 AND question = ''"
                                  " AND answer IS NULL AND category IS NULL AND ord BETWEEN 0 AND 1"), 2);
    ck_assert_int_eq(db_int(data, "SELECT count(*) FROM version_passages WHERE version_id = 2 AND question <> ''"
                                  " AND answer IS NOT NULL AND category IS NOT NULL AND ord BETWEEN 0 AND 19"), 20);
    /* Migrated all the way: to the last slot (11, issue 13's). */
    ck_assert_int_eq(db_int(data, "PRAGMA user_version"), 11);

    /* A second start finds nothing to build (read once stopped: the log
     * is written behind, and the stop flushes it). */
    e2e_restart(&s, args, NULL);
    ck_assert_int_eq(e2e_stop(&s), 0);
    ck_assert_int_eq(e2e_log_count(&s, "built the retrieval index"), 0);
    e2e_cleanup(&s);
    char *cmd = e2e_fmt("rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    free(path);
    free(data);
}
END_TEST

Suite *e2e_retrieval_suite(void)
{
    Suite *s = suite_create("e2e_retrieval");
    TCase *tc = tcase_create("retrieval");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sources_do_not_depend_on_other_agents);
    tcase_add_test(tc, test_language_on_create);
    tcase_add_test(tc, test_portuguese_inflections_match);
    tcase_add_test(tc, test_schema5_database_migrates);
    suite_add_tcase(s, tc);
    return s;
}
