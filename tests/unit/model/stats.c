#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "model/stats.h"
#include "model/text.h"
#include "tests/unit/model/fixtures.h"

Suite *model_stats_suite(void);

static void add(stats *s, const char *t)
{
    stats_add_text(s, t, strlen(t));
}

START_TEST(test_stats_small_text)
{
    stats s;
    stats_init(&s, 0);
    add(&s, "Python is great. Python is fast!");
    add(&s, "Data science uses Python and data.");
    stats_add_passage(&s, "abc", 3);
    stats_add_passage(&s, "h\xc3\xa9llo", 6);
    ck_assert_uint_eq(s.documents, 2);
    ck_assert_uint_eq(s.tokens, 12);
    ck_assert_uint_eq(s.characters, 32 + 34);
    ck_assert_uint_eq(s.vocabulary_size, 8);
    ck_assert_int_eq(s.vocabulary_truncated, 0);
    ck_assert_uint_eq(s.passages, 2);
    ck_assert_uint_eq(s.min_passage_chars, 3);
    ck_assert_uint_eq(s.max_passage_chars, 5);
    ck_assert_double_eq_tol(stats_avg_passage_chars(&s), 4.0, 1e-9);

    stats_term *t;
    size_t k = stats_top_terms(&s, 4, &t);
    ck_assert_uint_eq(k, 4);
    ck_assert_str_eq(t[0].term, "python");
    ck_assert_uint_eq(t[0].count, 3);
    ck_assert_str_eq(t[1].term, "data");
    ck_assert_uint_eq(t[1].count, 2);
    ck_assert_str_eq(t[2].term, "fast"); /* ties of 1: alphabetical */
    ck_assert_str_eq(t[3].term, "great");
    stats_terms_free(t, k);
    k = stats_top_terms(&s, 100, &t);
    ck_assert_uint_eq(k, 6); /* "is" and "and" are stopwords */
    stats_terms_free(t, k);
    ck_assert_uint_eq(stats_top_terms(&s, 0, &t), 0);
    ck_assert_ptr_null(t);

    ad_buf b;
    ad_buf_init(&b);
    stats_to_json(&s, 2, &b);
    cJSON *j = cJSON_Parse(b.data);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "documents")->valueint, 2);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "passages")->valueint, 2);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "characters")->valueint, 66);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "tokens")->valueint, 12);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "vocabulary_size")->valueint, 8);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(j, "avg_passage_chars")->valuedouble, 4.0, 1e-9);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "min_passage_chars")->valueint, 3);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "max_passage_chars")->valueint, 5);
    cJSON *top = cJSON_GetObjectItem(j, "top_terms");
    ck_assert_int_eq(cJSON_GetArraySize(top), 2);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(top, 1), "term")->valuestring, "data");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(top, 1), "count")->valueint, 2);
    cJSON_Delete(j);
    ad_buf_cleanup(&b);
    stats_cleanup(&s);
}
END_TEST

START_TEST(test_stats_empty_json)
{
    stats s;
    stats_init(&s, 0);
    ad_buf b;
    ad_buf_init(&b);
    stats_to_json(&s, 10, &b);
    ck_assert_str_eq(b.data, "{\"documents\":0,\"passages\":0,\"characters\":0,\"tokens\":0,"
                             "\"vocabulary_size\":0,\"avg_passage_chars\":0.00,"
                             "\"min_passage_chars\":0,\"max_passage_chars\":0,\"top_terms\":[]}");
    ad_buf_cleanup(&b);
    stats_cleanup(&s);
}
END_TEST

START_TEST(test_stats_vocabulary_bound)
{
    stats s;
    stats_init(&s, 3);
    add(&s, "aa bb cc dd ee aa");
    ck_assert_uint_eq(s.tokens, 6);
    ck_assert_uint_eq(s.vocabulary_size, 3);
    ck_assert_int_eq(s.vocabulary_truncated, 1);
    stats_term *t;
    size_t k = stats_top_terms(&s, 1, &t);
    ck_assert_uint_eq(k, 1);
    ck_assert_str_eq(t[0].term, "aa");
    ck_assert_uint_eq(t[0].count, 2);
    stats_terms_free(t, k);
    stats_cleanup(&s);
}
END_TEST

START_TEST(test_stats_growth_and_datasets)
{
    /* Enough distinct terms to grow the table several times. */
    stats s;
    stats_init(&s, 0);
    ad_buf b;
    ad_buf_init(&b);
    for (int i = 0; i < 20000; i++) ad_buf_printf(&b, "w%d w%d ", i, i % 100);
    add(&s, b.data);
    ck_assert_uint_eq(s.vocabulary_size, 20000);
    ck_assert_uint_eq(s.tokens, 40000);
    stats_term *t;
    size_t k = stats_top_terms(&s, 3, &t);
    ck_assert_uint_eq(k, 3);
    ck_assert_str_eq(t[0].term, "w0"); /* 201 each for w0..w99: alphabetical */
    ck_assert_uint_eq(t[0].count, 201);
    ck_assert_str_eq(t[1].term, "w1");
    ck_assert_str_eq(t[2].term, "w10");
    stats_terms_free(t, k);
    stats_cleanup(&s);
    ad_buf_cleanup(&b);

    size_t n;
    char *answers = model_fixture_answers(&n);
    ck_assert_ptr_nonnull(answers);
    stats_init(&s, 0);
    add(&s, answers);
    text_tokens tt;
    text_tokens_init(&tt);
    ck_assert_uint_eq(s.tokens, text_tokenize(answers, n, &tt));
    text_tokens_cleanup(&tt);
    ck_assert_uint_gt(s.vocabulary_size, 300);
    k = stats_top_terms(&s, 10, &t);
    ck_assert_uint_eq(k, 10);
    for (size_t i = 1; i < k; i++) {
        ck_assert_uint_ge(t[i - 1].count, t[i].count);
        if (t[i - 1].count == t[i].count) ck_assert_int_lt(strcmp(t[i - 1].term, t[i].term), 0);
        ck_assert(!text_is_stopword(t[i].term, strlen(t[i].term)));
    }
    stats_terms_free(t, k);
    stats_cleanup(&s);
    free(answers);
}
END_TEST

Suite *model_stats_suite(void)
{
    Suite *s = suite_create("model_stats");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_stats_small_text);
    tcase_add_test(tc, test_stats_empty_json);
    tcase_add_test(tc, test_stats_vocabulary_bound);
    tcase_add_test(tc, test_stats_growth_and_datasets);
    suite_add_tcase(s, tc);
    return s;
}
