#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "model/metrics.h"

Suite *model_metrics_suite(void);

#define S(x) x, strlen(x)

START_TEST(test_identical_and_disjoint)
{
    const char *a = "The cat sat on the mat.";
    metrics_scores m;
    metrics_compare(S(a), S(a), &m);
    ck_assert_double_eq_tol(m.token_f1, 1.0, 1e-12);
    ck_assert_double_eq_tol(m.jaccard, 1.0, 1e-12);
    ck_assert_double_eq_tol(m.containment, 1.0, 1e-12);
    ck_assert_double_eq_tol(m.char_similarity, 1.0, 1e-12);
    ck_assert_double_eq_tol(m.overall, 1.0, 1e-12);
    ck_assert_str_eq(metrics_quality_label(m.overall), "HIGH");

    metrics_compare(S("apples and oranges"), S("cars or trucks"), &m);
    ck_assert_double_eq_tol(m.token_f1, 0.0, 1e-12);
    ck_assert_double_eq_tol(m.jaccard, 0.0, 1e-12);
    ck_assert_double_eq_tol(m.containment, 0.0, 1e-12);
    ck_assert(m.char_similarity >= 0.0 && m.char_similarity < 0.5);
    ck_assert_str_eq(metrics_quality_label(m.overall), "LOW");

    /* Case and whitespace do not matter. */
    ck_assert_double_eq_tol(metrics_token_f1(S("Hello   World"), S("hello world")), 1.0, 1e-12);
    ck_assert_double_eq_tol(metrics_char_similarity(S(" Hello \n World "), S("hello world")),
                            1.0, 1e-12);
}
END_TEST

START_TEST(test_computed_example)
{
    /* P = the cat sat, E = the cat ran away: 2 common of 3 and 4 -> F1 = 4/7. */
    const char *p = "the cat sat", *e = "The cat ran away";
    ck_assert_double_eq_tol(metrics_token_f1(S(p), S(e)), 4.0 / 7.0, 1e-12);
    /* Content sets {cat, sat} and {cat, ran, away}. */
    ck_assert_double_eq_tol(metrics_jaccard(S(p), S(e)), 1.0 / 4.0, 1e-12);
    ck_assert_double_eq_tol(metrics_containment(S(p), S(e)), 1.0 / 3.0, 1e-12);
    ck_assert_double_eq_tol(metrics_containment(S(e), S(p)), 1.0 / 2.0, 1e-12);
    /* Multisets: x x y vs x y y share 2 tokens. */
    ck_assert_double_eq_tol(metrics_token_f1(S("x x y"), S("x y y")), 2.0 / 3.0, 1e-12);
    /* kitten -> sitting is 3 edits over 7. */
    ck_assert_double_eq_tol(metrics_char_similarity(S("kitten"), S("sitting")), 4.0 / 7.0, 1e-12);
    /* Characters, not bytes: one substitution out of four. */
    ck_assert_double_eq_tol(metrics_char_similarity(S("caf\xc3\xa9"), S("cafe")), 0.75, 1e-12);

    metrics_scores m;
    metrics_compare(S(p), S(e), &m);
    ck_assert_double_eq_tol(m.token_f1, 4.0 / 7.0, 1e-12);
    double want = 0.4 * (4.0 / 7.0) + 0.2 * 0.25 + 0.2 * (1.0 / 3.0) +
                  0.2 * metrics_char_similarity(S(p), S(e));
    ck_assert_double_eq_tol(m.overall, want, 1e-12);
    metrics_scores w = {.token_f1 = 1.0};
    ck_assert_double_eq_tol(metrics_overall(&w), 0.4, 1e-12);
    w = (metrics_scores){.jaccard = 1.0, .containment = 1.0, .char_similarity = 1.0};
    ck_assert_double_eq_tol(metrics_overall(&w), 0.6, 1e-12);
}
END_TEST

START_TEST(test_edge_cases)
{
    ck_assert_double_eq_tol(metrics_token_f1(S(""), S("")), 1.0, 1e-12);
    ck_assert_double_eq_tol(metrics_token_f1(S("x"), S("")), 0.0, 1e-12);
    ck_assert_double_eq_tol(metrics_jaccard(S("..."), S("word")), 0.0, 1e-12);
    ck_assert_double_eq_tol(metrics_char_similarity(S(""), S("")), 1.0, 1e-12);
    ck_assert_double_eq_tol(metrics_char_similarity(S(""), S("a")), 0.0, 1e-12);
    /* Only stopwords on one side: sets fall back to every token. */
    ck_assert_double_eq_tol(metrics_jaccard(S("it is"), S("It is.")), 1.0, 1e-12);
    ck_assert_double_eq_tol(metrics_containment(S("yes it is"), S("it is")), 1.0, 1e-12);
    /* Invalid UTF-8 is compared byte by byte, without crashing. */
    double r = metrics_char_similarity(S("a\xff\xc3"), S("a\xfe\xc3"));
    ck_assert_double_eq_tol(r, 2.0 / 3.0, 1e-12);

    /* Inputs are capped: a difference past METRICS_CHAR_CAP is not seen. */
    ad_buf a, b;
    ad_buf_init(&a);
    ad_buf_init(&b);
    for (int i = 0; i < 3000; i++) {
        ad_buf_putc(&a, 'a');
        ad_buf_putc(&b, i < METRICS_CHAR_CAP ? 'a' : 'b');
    }
    ck_assert_double_eq_tol(metrics_char_similarity(a.data, a.len, b.data, b.len), 1.0, 1e-12);
    ad_buf_cleanup(&a);
    ad_buf_cleanup(&b);
}
END_TEST

START_TEST(test_quality_labels)
{
    ck_assert_str_eq(metrics_quality_label(1.0), "HIGH");
    ck_assert_str_eq(metrics_quality_label(0.8), "HIGH");
    ck_assert_str_eq(metrics_quality_label(0.7999999), "MEDIUM");
    ck_assert_str_eq(metrics_quality_label(0.5), "MEDIUM");
    ck_assert_str_eq(metrics_quality_label(0.4999999), "LOW");
    ck_assert_str_eq(metrics_quality_label(0.0), "LOW");
}
END_TEST

START_TEST(test_retrieval)
{
    metrics_retrieval r;
    metrics_retrieval_init(&r);
    ck_assert_double_eq_tol(metrics_retrieval_mrr(&r), 0.0, 1e-12);
    ck_assert_double_eq_tol(metrics_retrieval_hit_at_1(&r), 0.0, 1e-12);
    metrics_retrieval_add(&r, 1);
    metrics_retrieval_add(&r, 2);
    metrics_retrieval_add(&r, 0);
    metrics_retrieval_add(&r, 4);
    ck_assert_uint_eq(r.queries, 4);
    ck_assert_double_eq_tol(metrics_retrieval_hit_at_1(&r), 0.25, 1e-12);
    ck_assert_double_eq_tol(metrics_retrieval_hit_at_3(&r), 0.5, 1e-12);
    ck_assert_double_eq_tol(metrics_retrieval_mrr(&r), (1.0 + 0.5 + 0.25) / 4.0, 1e-12);
    metrics_retrieval_add(&r, 3);
    ck_assert_double_eq_tol(metrics_retrieval_hit_at_3(&r), 0.6, 1e-12);
}
END_TEST

Suite *model_metrics_suite(void)
{
    Suite *s = suite_create("model_metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_identical_and_disjoint);
    tcase_add_test(tc, test_computed_example);
    tcase_add_test(tc, test_edge_cases);
    tcase_add_test(tc, test_quality_labels);
    tcase_add_test(tc, test_retrieval);
    suite_add_tcase(s, tc);
    return s;
}
