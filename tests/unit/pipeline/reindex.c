/*
 * Tests pipeline/reindex.c: versions without an index (a database from
 * before schema 6, or a start-up reindex cut short by a crash) get one that
 * ranks bit for bit as the index built with the version, in the version's
 * own language; versions that have one are left alone, and a second run
 * finds nothing to do.
 */
#include <check.h>
#include <string.h>

#include "model/index.h"
#include "pipeline/reindex.h"
#include "storage/agents.h"
#include "storage/index.h"
#include "storage/versions.h"
#include "tests/unit/storage/fixtures.h"

Suite *pipeline_reindex_suite(void);

static const char *const en_bodies[] = {
    "Cats chase mice in the garden.",
    "Dogs chase cats.",
    "Birds sing at dawn.",
    "The mice run from the cats and the dogs.",
};
static const char *const en_prompts[] = {"Who chases the cat?", "Where do mice run?", "singing birds"};

/* Portuguese: the prompts use other inflections than the passages. */
static const char *const pt_bodies[] = {
    "Envie as informações pessoais pelo aplicativo do banco.",
    "A análise dos documentos leva até cinco dias úteis.",
    "O limite de crédito depende da renda declarada.",
};
static const char *const pt_prompts[] = {"Qual informação pessoal enviar?", "documento analisado",
                                         "limites de créditos"};

#define NB(a) (sizeof(a) / sizeof((a)[0]))
#define K 4

/* Builds a version of agent `agent` from `bodies`, indexed in `language`. */
static int64_t build_version(storage_conn *db, int64_t agent, const char *name, const char *language,
                             const char *const *bodies, size_t n)
{
    analysis_language l;
    ck_assert_int_eq(analysis_language_from_code(language, &l), 0);
    index_mem *ix = index_new(l);
    unit_row rows[8];
    for (size_t i = 0; i < n; i++) {
        index_add(ix, NULL, bodies[i]);
        rows[i] = (unit_row){(int)i, NULL, bodies[i], NULL, NULL, NULL};
    }
    index_finish(ix);
    index_rows r;
    index_rows_init(&r, ix);
    version_build b = {.agent_id = agent, .name = name, .language = language, .params = "{}",
                       .persona = "p", .fewshot = "[]", .passages = rows, .count = n, .index = &r,
                       .state = VERSION_TRAINED};
    int64_t vid = 0;
    ad_err e = {0};
    ck_assert_msg(storage_versions_build(db, &b, NULL, &vid, &e) == 0, "%s", e.msg);
    index_rows_cleanup(&r);
    index_free(ix);
    return vid;
}

/* Every prompt's hits, ords and full-precision scores, zero-padded. */
static void ranking(storage_conn *db, int64_t vid, analysis_language l, const char *const *prompts,
                    size_t n, index_score out[][K])
{
    model_params p;
    model_params_default(&p);
    for (size_t i = 0; i < n; i++) {
        passage_hit hits[K];
        int count = 0;
        ad_err e = {0};
        ck_assert_msg(index_search(db, vid, l, &p, prompts[i], K, hits, &count, &e) == 0, "%s", e.msg);
        ck_assert_msg(count > 0, "'%s' found nothing", prompts[i]);
        memset(out[i], 0, sizeof(out[i]));
        for (int h = 0; h < count; h++) out[i][h] = (index_score){hits[h].ord, hits[h].score};
        passage_hits_cleanup(hits, count);
    }
}

/* Drops a version's terms and statistics, keeping its passages: what
 * migration 6 leaves for the start-up reindex. */
static void drop_index(storage_conn *db, int64_t vid)
{
    storage_fixture_exec(db, "DELETE FROM version_terms WHERE version_id = ?1", vid);
    storage_fixture_exec(db, "DELETE FROM version_index WHERE version_id = ?1", vid);
}

START_TEST(test_reindex_rebuilds_what_is_missing)
{
    storage_fixture f;
    storage_fixture_open(&f);
    ad_err e = {0};
    int64_t a = 0, b = 0;
    agent_new na = {.user_id = "en_agent", .source = "text", .material = "x", .material_len = 1};
    ck_assert_int_eq(storage_agents_create(f.db, &na, &a, &e), 0);
    na.user_id = "pt_agent";
    na.language = "pt";
    ck_assert_int_eq(storage_agents_create(f.db, &na, &b, &e), 0);
    int64_t ven = build_version(f.db, a, "v1", "en", en_bodies, NB(en_bodies));
    int64_t vpt = build_version(f.db, b, "v1", "pt", pt_bodies, NB(pt_bodies));
    index_score en_before[NB(en_prompts)][K], pt_before[NB(pt_prompts)][K];
    index_score en_after[NB(en_prompts)][K], pt_after[NB(pt_prompts)][K];
    ranking(f.db, ven, ANALYSIS_EN, en_prompts, NB(en_prompts), en_before);
    ranking(f.db, vpt, ANALYSIS_PT, pt_prompts, NB(pt_prompts), pt_before);
    int64_t terms_en = storage_fixture_count(f.db, "SELECT count(*) FROM version_terms WHERE version_id = ?1", ven);

    /* Nothing missing: nothing built. */
    int64_t built = -1;
    ck_assert_int_eq(pipeline_reindex_versions(f.db, &built, &e), 0);
    ck_assert_int_eq(built, 0);

    /* The Portuguese version lost its index (a start cut short after the
     * English one was done): only it is built, in Portuguese. */
    drop_index(f.db, vpt);
    model_params p;
    model_params_default(&p);
    passage_hit hits[K];
    int count = 0;
    ck_assert_int_eq(index_search(f.db, vpt, ANALYSIS_PT, &p, pt_prompts[0], K, hits, &count, NULL),
                     AD_ENOTFOUND);
    ck_assert_msg(pipeline_reindex_versions(f.db, &built, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(built, 1);
    ranking(f.db, vpt, ANALYSIS_PT, pt_prompts, NB(pt_prompts), pt_after);
    ck_assert_msg(memcmp(pt_before, pt_after, sizeof(pt_before)) == 0, "the rebuilt pt index ranks differently");
    ck_assert_int_eq(storage_fixture_count(f.db, "SELECT count(*) FROM version_terms WHERE version_id = ?1", ven),
                     terms_en);

    /* Both missing (a database from before schema 6): both built. */
    drop_index(f.db, ven);
    drop_index(f.db, vpt);
    ck_assert_msg(pipeline_reindex_versions(f.db, &built, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(built, 2);
    ranking(f.db, ven, ANALYSIS_EN, en_prompts, NB(en_prompts), en_after);
    ranking(f.db, vpt, ANALYSIS_PT, pt_prompts, NB(pt_prompts), pt_after);
    ck_assert(memcmp(en_before, en_after, sizeof(en_before)) == 0);
    ck_assert(memcmp(pt_before, pt_after, sizeof(pt_before)) == 0);

    ck_assert_int_eq(pipeline_reindex_versions(f.db, &built, &e), 0);
    ck_assert_int_eq(built, 0);
    storage_fixture_close(&f);
}
END_TEST

Suite *pipeline_reindex_suite(void)
{
    Suite *s = suite_create("pipeline_reindex");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_reindex_rebuilds_what_is_missing);
    suite_add_tcase(s, tc);
    return s;
}
