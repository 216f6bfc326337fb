#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "model/perturb.h"
#include "model/text.h"
#include "tests/unit/model/fixtures.h"

Suite *model_perturb_suite(void);

/* Splits a copy of s on spaces; returns the count, words in w[]. */
static size_t words_of(char *s, char **w, size_t max)
{
    size_t k = 0;
    for (char *save = NULL, *t = strtok_r(s, " ", &save); t && k < max;
         t = strtok_r(NULL, " ", &save))
        w[k++] = t;
    return k;
}

static int is_content(const char *w)
{
    size_t pos = 0, off, len, n = strlen(w);
    char low[64];
    while (text_next_token(w, n, &pos, &off, &len)) {
        if (len >= sizeof(low)) return 1;
        text_lower_copy(low, w + off, len);
        if (!text_is_stopword(low, len)) return 1;
    }
    return 0;
}

static void lower_ascii(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s + 32);
}

/* Checks that `out` is a valid `op` perturbation of the single-spaced `in`. */
static void check_variant(const char *in, const char *out, perturb_op op)
{
    ck_assert_str_ne(in, out);
    char *a = strdup(in), *b = strdup(out);
    char *wa[256], *wb[256];
    size_t na = words_of(a, wa, 256), nb = words_of(b, wb, 256);
    if (op == PERTURB_DROP) {
        ck_assert_uint_lt(nb, na);
        ck_assert_uint_gt(nb, 0);
        size_t j = 0, content_in = 0, content_kept = 0;
        for (size_t i = 0; i < na; i++) {
            int c = is_content(wa[i]);
            content_in += (size_t)c;
            if (j < nb && strcmp(wa[i], wb[j]) == 0) {
                content_kept += (size_t)c;
                j++;
            }
        }
        ck_assert_uint_eq(j, nb); /* the output is a subsequence of the input */
        ck_assert_msg(content_kept * 10 >= content_in * 6, "kept %zu of %zu content words",
                      content_kept, content_in);
    } else if (op == PERTURB_SWAP) {
        ck_assert_uint_eq(na, nb);
        size_t diff = 0, first = 0;
        for (size_t i = 0; i < na; i++)
            if (strcmp(wa[i], wb[i]) != 0 && diff++ == 0) first = i;
        ck_assert_uint_eq(diff, 2);
        ck_assert_str_eq(wa[first], wb[first + 1]);
        ck_assert_str_eq(wa[first + 1], wb[first]);
    } else {
        ck_assert_int_eq(op, PERTURB_CASE);
        char *la = strdup(in), *lb = strdup(out);
        lower_ascii(la);
        lower_ascii(lb);
        ck_assert_str_eq(la, lb);
        free(la);
        free(lb);
    }
    free(a);
    free(b);
}

START_TEST(test_perturb_examples)
{
    const char *p = "How do I   choose between Random Forest and XGBoost models?";
    const char *canon = "How do I choose between Random Forest and XGBoost models?";
    int seen[4] = {0};
    for (uint64_t seed = 0; seed < 300; seed++) {
        perturb_op op, op2;
        char *v = perturb_prompt(p, strlen(p), seed, &op);
        char *again = perturb_prompt(p, strlen(p), seed, &op2);
        ck_assert_str_eq(v, again);
        ck_assert_int_eq(op, op2);
        ck_assert_int_ne(op, PERTURB_NONE);
        check_variant(canon, v, op);
        seen[op]++;
        free(v);
        free(again);
    }
    ck_assert_int_gt(seen[PERTURB_DROP], 0);
    ck_assert_int_gt(seen[PERTURB_SWAP], 0);
    ck_assert_int_gt(seen[PERTURB_CASE], 0);
    ck_assert_str_eq(perturb_op_name(PERTURB_SWAP), "swap");
}
END_TEST

START_TEST(test_perturb_degenerate)
{
    perturb_op op;
    char *v = perturb_prompt("python", 6, 7, &op);
    ck_assert_int_eq(op, PERTURB_CASE);
    ck_assert(strcmp(v, "PYTHON") == 0 || strcmp(v, "Python") == 0);
    free(v);
    v = perturb_prompt(" 42 ", 4, 7, &op);
    ck_assert_int_eq(op, PERTURB_NONE);
    ck_assert_str_eq(v, "42");
    free(v);
    v = perturb_prompt("", 0, 1, NULL);
    ck_assert_str_eq(v, "");
    free(v);
    /* Identical words cannot be swapped; two content words cannot lose one. */
    v = perturb_prompt("go go", 5, 3, &op);
    ck_assert_int_eq(op, PERTURB_CASE);
    free(v);
    v = perturb_prompt("fast code", 9, 11, &op);
    ck_assert(op == PERTURB_SWAP || op == PERTURB_CASE);
    free(v);
}
END_TEST

START_TEST(test_perturb_dataset_prompts)
{
    cJSON *root = model_fixture_dataset("python_expert_dataset.json");
    ck_assert_ptr_nonnull(root);
    const cJSON *pair;
    size_t prompts = 0;
    cJSON_ArrayForEach(pair, cJSON_GetObjectItem(root, "training_data"))
    {
        const char *p = cJSON_GetObjectItem(pair, "prompt")->valuestring;
        for (uint64_t seed = 1; seed <= 20; seed++) {
            perturb_op op;
            char *v = perturb_prompt(p, strlen(p), seed, &op);
            ck_assert_int_ne(op, PERTURB_NONE);
            ck_assert_str_ne(v, p);
            ck_assert_int_eq(ad_utf8_validate(v, strlen(v), NULL), 0);
            free(v);
        }
        prompts++;
    }
    ck_assert_uint_gt(prompts, 10);
    cJSON_Delete(root);
}
END_TEST

Suite *model_perturb_suite(void)
{
    Suite *s = suite_create("model_perturb");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_perturb_examples);
    tcase_add_test(tc, test_perturb_degenerate);
    tcase_add_test(tc, test_perturb_dataset_prompts);
    suite_add_tcase(s, tc);
    return s;
}
