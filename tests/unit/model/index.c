/* Tests model/index.c: BM25F ranking (hand-checked scores), ties, field
 * weights, prompts with nothing to search, the stored index ranking exactly
 * as the in-memory one, and one version's scores never moving with another
 * version in the same database. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/index.h"
#include "storage/agents.h"
#include "storage/index.h"
#include "storage/versions.h"
#include "tests/unit/model/fixtures.h"
#include "tests/unit/storage/fixtures.h"

Suite *model_index_suite(void);

static index_mem *build(const char *const *questions, const char *const *bodies, size_t n)
{
    index_mem *ix = index_new(ANALYSIS_EN);
    for (size_t i = 0; i < n; i++) index_add(ix, questions ? questions[i] : NULL, bodies[i]);
    index_finish(ix);
    return ix;
}

static model_params weights(double wq, double wb)
{
    model_params p;
    model_params_default(&p);
    p.w_question = wq;
    p.w_body = wb;
    return p;
}

/* Terms (English): cat chase mice garden | dog chase cat | bird sing |
 * mice run cat dog. */
static const char *const animals[] = {
    "Cats chase mice in the garden.",
    "Dogs chase cats.",
    "Birds sing.",
    "The mice run from the cats and the dogs.",
};

/* Expected scores computed apart (python, the formula in model/index.h,
 * k1 1.2, b 0.75): N = 4, average body length 13/4. */
START_TEST(test_bm25f_scores_and_order)
{
    index_mem *ix = build(NULL, animals, 4);
    ck_assert_uint_eq(index_passage_count(ix), 4);
    ck_assert_uint_eq(index_term_count(ix), 8);
    model_params p = weights(2.0, 1.0);
    index_score top[10];

    /* The shorter passage first; the two of equal length tie. */
    int n = index_search_mem(ix, &p, "cat", 10, top);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(top[0].ord, 1);
    ck_assert_double_eq_tol(top[0].score, 0.16739257296763616, 1e-12);
    ck_assert_int_eq(top[1].ord, 0);
    ck_assert_double_eq_tol(top[1].score, 0.14813975307359492, 1e-12);
    ck_assert_int_eq(top[2].ord, 3);

    /* Two terms add up; "chase" is rarer than "cat". */
    n = index_search_mem(ix, &p, "Who chases the cat?", 10, top);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(top[0].ord, 1);
    ck_assert_double_eq_tol(top[0].score, 0.49269630391634694, 1e-12);
    ck_assert_int_eq(top[1].ord, 0);
    ck_assert_double_eq_tol(top[1].score, 0.43602835841798115, 1e-12);
    ck_assert_int_eq(top[2].ord, 3);
    ck_assert_double_eq_tol(top[2].score, 0.14813975307359492, 1e-12);

    /* k bounds the hits, the best kept. */
    n = index_search_mem(ix, &p, "cats and dogs", 1, top);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(top[0].ord, 1);
    index_free(ix);
}
END_TEST

/* Equal scores: the lower ord first, whatever the order they are met in. */
START_TEST(test_ties_go_to_the_lower_ord)
{
    index_mem *ix = build(NULL, animals, 4);
    model_params p = weights(2.0, 1.0);
    index_score top[10];
    int n = index_search_mem(ix, &p, "Where do mice live?", 10, top);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(top[0].ord, 0);
    ck_assert_int_eq(top[1].ord, 3);
    ck_assert(memcmp(&top[0].score, &top[1].score, sizeof(double)) == 0);
    ck_assert_double_eq_tol(top[0].score, 0.28788860534438626, 1e-12);
    /* With one slot the first of the tie keeps it. */
    n = index_search_mem(ix, &p, "Where do mice live?", 1, top);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(top[0].ord, 0);
    index_free(ix);

    const char *const same[] = {"Birds sing.", "Birds sing.", "Birds sing."};
    ix = build(NULL, same, 3);
    n = index_search_mem(ix, &p, "sing", 2, top);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(top[0].ord, 0);
    ck_assert_int_eq(top[1].ord, 1);
    index_free(ix);
}
END_TEST

/* The question and body weights decide between a match in one field and a
 * match in the other; a field of weight 0 matches nothing. */
START_TEST(test_field_weights)
{
    const char *const q[] = {"Where are lambdas used?", "What is a key function?"};
    const char *const b[] = {"Lambdas are used as key functions.", "It maps an item to a sort order."};
    index_mem *ix = build(q, b, 2);
    index_score top[10];
    model_params p = weights(10.0, 1.0);
    ck_assert_int_eq(index_search_mem(ix, &p, "key", 10, top), 2);
    ck_assert_int_eq(top[0].ord, 1);
    p = weights(1.0, 10.0);
    ck_assert_int_eq(index_search_mem(ix, &p, "key", 10, top), 2);
    ck_assert_int_eq(top[0].ord, 0);
    /* Body only (held-out evaluation): the question's match is no hit. */
    p = weights(0.0, 1.0);
    ck_assert_int_eq(index_search_mem(ix, &p, "key", 10, top), 1);
    ck_assert_int_eq(top[0].ord, 0);
    ck_assert_int_eq(index_search_mem(ix, &p, "What is it?", 10, top), 0);
    index_free(ix);
}
END_TEST

/* The default weights count a word in the question as much as one in the
 * body (issue 10, BENCHMARKS.md: the question weighted twice lost paraphrases
 * worded like the answer): a prompt sharing one word with one pair's short
 * question and one with another pair's answer goes to the answer's pair. */
START_TEST(test_default_weights_favour_no_field)
{
    const char *const q[] = {"How to handle imbalanced datasets?", "What are the steps for feature engineering?",
                             "How to evaluate a model?"};
    const char *const b[] = {
        "Oversample the rare class or weight the loss.",
        "Clean the data, create candidate features, transform them and select the useful ones.",
        "Use cross-validation and a metric that fits the task.",
    };
    index_mem *ix = build(q, b, 3);
    model_params p;
    model_params_default(&p);
    index_score top[10];
    /* "step" in pair 1's question, "rare" in pair 0's answer: with the
     * question weighted twice, pair 1 scored 0.592 to 0.497. */
    ck_assert_int_eq(index_search_mem(ix, &p, "What steps help with rare labels?", 10, top), 2);
    ck_assert_int_eq(top[0].ord, 0);
    ck_assert_int_eq(top[1].ord, 1);
    ck_assert_double_eq_tol(top[0].score, 0.4966, 1e-4);
    ck_assert_double_eq_tol(top[1].score, 0.4241, 1e-4);
    index_free(ix);
}
END_TEST

START_TEST(test_nothing_to_search_gives_no_hits)
{
    index_mem *ix = build(NULL, animals, 4);
    model_params p = weights(2.0, 1.0);
    index_score top[4];
    const char *const prompts[] = {"", "   ?!  ", "the of and", "What is it?", "zebra"};
    for (size_t i = 0; i < sizeof(prompts) / sizeof(prompts[0]); i++)
        ck_assert_msg(index_search_mem(ix, &p, prompts[i], 4, top) == 0, "'%s' found something", prompts[i]);
    index_free(ix);
    /* An empty index. */
    ix = build(NULL, NULL, 0);
    ck_assert_int_eq(index_search_mem(ix, &p, "cat", 4, top), 0);
    index_free(ix);
}
END_TEST

/* ---- stored ------------------------------------------------------------------ */

typedef struct pairs {
    const char *q[64], *a[64];
    size_t n;
} pairs;

static void pairs_load(cJSON *root, pairs *out)
{
    out->n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "training_data"))
    {
        if (out->n == 64) break;
        out->q[out->n] = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "prompt"));
        out->a[out->n] = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "answer"));
        out->n++;
    }
}

/* Creates an agent with one version holding `ix` and its passages. */
static int64_t store(storage_conn *db, const char *user_id, const index_mem *ix, const pairs *p)
{
    agent_new a = {.user_id = user_id, .source = "dataset", .material = "[]", .material_len = 2};
    int64_t id = 0, vid = 0;
    ad_err e = {0};
    ck_assert_int_eq(storage_agents_create(db, &a, &id, &e), 0);
    unit_row rows[64];
    for (size_t i = 0; i < p->n; i++) rows[i] = (unit_row){(int)i, p->q[i], p->a[i], p->a[i], NULL, NULL};
    index_rows r;
    index_rows_init(&r, ix);
    version_build b = {.agent_id = id, .name = "v1", .language = "en", .params = "{}", .persona = "p",
                       .fewshot = "[]", .passages = rows, .count = p->n, .index = &r,
                       .state = VERSION_TRAINED};
    ck_assert_msg(storage_versions_build(db, &b, NULL, &vid, &e) == 0, "%s", e.msg);
    index_rows_cleanup(&r);
    return vid;
}

static index_mem *build_pairs(const pairs *p)
{
    return build(p->q, p->a, p->n);
}

static const char *const prompts[] = {
    "How do I create a virtual environment?", "What are Python decorators?",
    "How to handle exceptions in Python?",    "How to work with databases in Python?",
    "How does the interpreter lock threads?",  "How do list comprehensions work?",
    "How to optimize Python code performance?", "How to test Python code?",
    "What are generators and why use them?",   "How to create a REST API with Flask?",
};
#define NPROMPTS (sizeof(prompts) / sizeof(prompts[0]))
#define K 10

/* Every prompt's hits (ord and full-precision score) from storage. */
static void search_stored(storage_conn *db, int64_t vid, index_score out[NPROMPTS][K], int *counts)
{
    model_params p = weights(2.0, 1.0);
    for (size_t i = 0; i < NPROMPTS; i++) {
        passage_hit hits[K];
        ad_err e = {0};
        ck_assert_msg(index_search(db, vid, ANALYSIS_EN, &p, prompts[i], K, hits, &counts[i], &e) == 0,
                      "%s", e.msg);
        memset(out[i], 0, sizeof(out[i]));
        for (int h = 0; h < counts[i]; h++) {
            out[i][h].ord = hits[h].ord;
            out[i][h].score = hits[h].score;
            ck_assert_ptr_nonnull(hits[h].body);
        }
        passage_hits_cleanup(hits, counts[i]);
    }
}

START_TEST(test_stored_index_ranks_as_in_memory)
{
    storage_fixture f;
    storage_fixture_open(&f);
    cJSON *root = model_fixture_dataset("python_expert_dataset.json");
    ck_assert_ptr_nonnull(root);
    pairs p;
    pairs_load(root, &p);
    index_mem *ix = build_pairs(&p);
    int64_t vid = store(f.db, "py", ix, &p);
    index_score stored[NPROMPTS][K];
    int counts[NPROMPTS];
    search_stored(f.db, vid, stored, counts);
    model_params mp = weights(2.0, 1.0);
    for (size_t i = 0; i < NPROMPTS; i++) {
        index_score mem[K];
        memset(mem, 0, sizeof(mem));
        int n = index_search_mem(ix, &mp, prompts[i], K, mem);
        ck_assert_int_eq(n, counts[i]);
        ck_assert_int_gt(n, 0);
        ck_assert_msg(memcmp(mem, stored[i], sizeof(mem)) == 0, "'%s' ranks differently", prompts[i]);
    }
    /* The stored passage comes with the hit. */
    passage_hit hits[1];
    int n = 0;
    ck_assert_int_eq(index_search(f.db, vid, ANALYSIS_EN, &mp, p.q[3], 1, hits, &n, NULL), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(hits[0].ord, 3);
    ck_assert_str_eq(hits[0].question, p.q[3]);
    ck_assert_str_eq(hits[0].answer, p.a[3]);
    passage_hits_cleanup(hits, n);
    /* A version without an index is an error, not an empty result. */
    ck_assert_int_eq(index_search(f.db, vid + 1, ANALYSIS_EN, &mp, "python", 1, hits, &n, NULL), AD_ENOTFOUND);
    index_free(ix);
    cJSON_Delete(root);
    storage_fixture_close(&f);
}
END_TEST

/* One version's scores (full precision, memcmp) for ten prompts are the same
 * before another agent's version exists, while it does (sharing most of the
 * vocabulary, with different frequencies), and after it is deleted. */
START_TEST(test_scores_ignore_other_versions)
{
    storage_fixture f;
    storage_fixture_open(&f);
    cJSON *root = model_fixture_dataset("python_expert_dataset.json");
    pairs p;
    pairs_load(root, &p);
    index_mem *ix = build_pairs(&p);
    int64_t va = store(f.db, "a", ix, &p);
    index_free(ix);
    static index_score before[NPROMPTS][K], now[NPROMPTS][K];
    int cb[NPROMPTS], cn[NPROMPTS];
    search_stored(f.db, va, before, cb);

    /* B: the same questions, each answer followed by the next two. */
    static char answers[64][4096];
    pairs pb = p;
    for (size_t i = 0; i < p.n; i++) {
        snprintf(answers[i], sizeof(answers[i]), "%s %s %s", p.a[i], p.a[(i + 1) % p.n], p.a[(i + 2) % p.n]);
        pb.a[i] = answers[i];
    }
    ix = build_pairs(&pb);
    store(f.db, "b", ix, &pb);
    index_free(ix);
    search_stored(f.db, va, now, cn);
    ck_assert(memcmp(cb, cn, sizeof(cb)) == 0);
    ck_assert_msg(memcmp(before, now, sizeof(before)) == 0, "scores moved when B was added");

    int64_t gone = 0;
    ck_assert_int_eq(storage_agents_delete(f.db, "b", NULL, &gone, NULL), 0);
    search_stored(f.db, va, now, cn);
    ck_assert(memcmp(cb, cn, sizeof(cb)) == 0);
    ck_assert_msg(memcmp(before, now, sizeof(before)) == 0, "scores moved when B was deleted");
    cJSON_Delete(root);
    storage_fixture_close(&f);
}
END_TEST

/* Rows that are not what index_finish wrote (a damaged database, a bad
 * copy): truncated, overlong or garbage postings, a short lengths blob,
 * statistics out of range. A search reads none of them out of bounds,
 * returns, and never names one passage twice. */
START_TEST(test_damaged_rows_never_crash)
{
    storage_fixture f;
    storage_fixture_open(&f);
    cJSON *root = model_fixture_dataset("python_expert_dataset.json");
    pairs p;
    pairs_load(root, &p);
    index_mem *ix = build_pairs(&p);
    int64_t vid = store(f.db, "py", ix, &p);
    index_free(ix);
    const char *const damage[] = {
        /* postings cut inside their last varint */
        "UPDATE version_terms SET postings = substr(postings, 1, length(postings) - 1) WHERE version_id = ?1",
        /* every entry names passage 0 again (delta 0) */
        "UPDATE version_terms SET postings = x'000101000101000101000101' WHERE version_id = ?1",
        /* a varint that never ends, and one longer than 64 bits */
        "UPDATE version_terms SET postings = x'8080808080' WHERE version_id = ?1",
        "UPDATE version_terms SET postings = x'FFFFFFFFFFFFFFFFFFFFFFFF7F0101' WHERE version_id = ?1",
        /* an ord past every passage, and one past INT32_MAX */
        "UPDATE version_terms SET postings = x'E807' || x'0101' WHERE version_id = ?1",
        "UPDATE version_terms SET postings = x'FFFFFFFF0F0101' WHERE version_id = ?1",
        /* deltas that wrap around */
        "UPDATE version_terms SET postings = x'050101FFFFFFFFFFFFFFFFFF010101' WHERE version_id = ?1",
        /* statistics and lengths that do not fit */
        "UPDATE version_index SET lengths = x'01' WHERE version_id = ?1",
        "UPDATE version_index SET passages = -3, question_terms = -1, body_terms = -1 WHERE version_id = ?1",
        "UPDATE version_index SET passages = 9223372036854775807 WHERE version_id = ?1",
        "UPDATE version_index SET passages = 0, lengths = x'' WHERE version_id = ?1",
    };
    model_params mp = weights(2.0, 1.0);
    for (size_t d = 0; d < sizeof(damage) / sizeof(damage[0]); d++) {
        storage_fixture_exec(f.db, "SAVEPOINT damage", 0);
        storage_fixture_exec(f.db, damage[d], vid);
        for (size_t i = 0; i < NPROMPTS; i++) {
            passage_hit hits[K];
            int n = -1;
            ad_err e = {0};
            ck_assert_msg(index_search(f.db, vid, ANALYSIS_EN, &mp, prompts[i], K, hits, &n, &e) == 0,
                          "%s: %s", damage[d], e.msg);
            ck_assert_int_ge(n, 0);
            ck_assert_int_le(n, K);
            for (int a = 0; a < n; a++)
                for (int b = a + 1; b < n; b++)
                    ck_assert_msg(hits[a].ord != hits[b].ord, "%s: passage %d twice", damage[d], hits[a].ord);
            passage_hits_cleanup(hits, n);
        }
        storage_fixture_exec(f.db, "ROLLBACK TO damage", 0);
        storage_fixture_exec(f.db, "RELEASE damage", 0);
    }
    cJSON_Delete(root);
    storage_fixture_close(&f);
}
END_TEST

Suite *model_index_suite(void)
{
    Suite *s = suite_create("model_index");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_bm25f_scores_and_order);
    tcase_add_test(tc, test_ties_go_to_the_lower_ord);
    tcase_add_test(tc, test_field_weights);
    tcase_add_test(tc, test_default_weights_favour_no_field);
    tcase_add_test(tc, test_nothing_to_search_gives_no_hits);
    tcase_add_test(tc, test_stored_index_ranks_as_in_memory);
    tcase_add_test(tc, test_scores_ignore_other_versions);
    tcase_add_test(tc, test_damaged_rows_never_crash);
    suite_add_tcase(s, tc);
    return s;
}
