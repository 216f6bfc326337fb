/*
 * Tests the pure pieces of pipeline/training.c: the deterministic parameter
 * search (training_next_params) and the feedback-to-instruction rewrite
 * (training_suggestion).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/params.h"
#include "model/text.h"
#include "pipeline/training.h"

Suite *pipeline_training_suite(void);

#define MAX_ITER 1000

static int params_eq(const model_params *a, const model_params *b)
{
    return a->passage_chars == b->passage_chars && a->overlap == b->overlap && a->top_k == b->top_k &&
           a->w_question == b->w_question && a->w_body == b->w_body && a->fewshot == b->fewshot;
}

static char *params_str(const model_params *p)
{
    static char buf[4][160];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof(buf[0]), "{passage_chars %d, overlap %d, top_k %d, w_question %g, w_body %g, fewshot %d}",
             p->passage_chars, p->overlap, p->top_k, p->w_question, p->w_body, p->fewshot);
    return b;
}

/* The bounds model_params_from_json clamps to (model/params.c). */
static int params_in_bounds(const model_params *p)
{
    return p->passage_chars >= 200 && p->passage_chars <= 2000 && p->overlap >= 0 && p->overlap <= 3 &&
           p->top_k >= 1 && p->top_k <= 10 && p->w_question >= 0.0 && p->w_question <= 10.0 &&
           p->w_body >= 0.1 && p->w_body <= 10.0 && p->fewshot >= 0 && p->fewshot <= 8;
}

/* Baselines: the defaults, one in the middle of every range, and both corners. */
static void baselines(model_params out[4])
{
    model_params_default(&out[0]);
    out[1] = (model_params){.passage_chars = 1000, .overlap = 2, .top_k = 5, .w_question = 4.0,
                            .w_body = 2.0, .fewshot = 4};
    out[2] = (model_params){.passage_chars = 200, .overlap = 0, .top_k = 1, .w_question = 0.0,
                            .w_body = 0.1, .fewshot = 0};
    out[3] = (model_params){.passage_chars = 2000, .overlap = 3, .top_k = 10, .w_question = 10.0,
                            .w_body = 10.0, .fewshot = 8};
}

/* ---- training_next_params ------------------------------------------------ */

START_TEST(test_next_params_first_iteration_is_baseline)
{
    model_params base[4];
    baselines(base);
    for (int b = 0; b < 4; b++) {
        for (int is_text = 0; is_text <= 1; is_text++) {
            model_params out;
            memset(&out, 0x5a, sizeof(out));
            training_next_params(1, &base[b], is_text, &out);
            ck_assert_msg(params_eq(&out, &base[b]), "baseline %d, is_text %d: iteration 1 gave %s, want %s", b,
                          is_text, params_str(&out), params_str(&base[b]));
        }
    }
}
END_TEST

START_TEST(test_next_params_deterministic)
{
    model_params base[4];
    baselines(base);
    for (int b = 0; b < 4; b++) {
        for (int is_text = 0; is_text <= 1; is_text++) {
            for (int it = 1; it <= MAX_ITER; it++) {
                model_params x, y;
                memset(&x, 0x11, sizeof(x));
                memset(&y, 0x77, sizeof(y));
                training_next_params(it, &base[b], is_text, &x);
                training_next_params(it, &base[b], is_text, &y);
                ck_assert_msg(params_eq(&x, &y), "baseline %d, is_text %d, iteration %d: %s then %s", b, is_text,
                              it, params_str(&x), params_str(&y));
            }
        }
    }
    /* The baseline is an input only. */
    model_params d, before;
    model_params_default(&d);
    before = d;
    model_params out;
    training_next_params(7, &d, 1, &out);
    ck_assert(params_eq(&d, &before));
}
END_TEST

START_TEST(test_next_params_within_bounds)
{
    model_params base[4];
    baselines(base);
    for (int b = 0; b < 4; b++) {
        for (int is_text = 0; is_text <= 1; is_text++) {
            for (int it = 1; it <= MAX_ITER; it++) {
                model_params out;
                training_next_params(it, &base[b], is_text, &out);
                ck_assert_msg(params_in_bounds(&out), "baseline %d, is_text %d, iteration %d out of bounds: %s", b,
                              is_text, it, params_str(&out));
            }
        }
    }
}
END_TEST

START_TEST(test_next_params_differ_from_baseline)
{
    model_params base[4];
    baselines(base);
    /* From a baseline inside every range (defaults, middle), every later
     * iteration tries something new. */
    for (int b = 0; b < 2; b++) {
        for (int is_text = 0; is_text <= 1; is_text++) {
            for (int it = 2; it <= MAX_ITER; it++) {
                model_params out;
                training_next_params(it, &base[b], is_text, &out);
                ck_assert_msg(!params_eq(&out, &base[b]), "baseline %d, is_text %d: iteration %d repeats it: %s", b,
                              is_text, it, params_str(&out));
            }
        }
    }
}
END_TEST

START_TEST(test_next_params_first_sweep_is_distinct)
{
    /* One step up and one down along each dimension: the first sweep
     * (5 dimensions for text, 4 for datasets) tries no set twice. */
    model_params d;
    model_params_default(&d);
    for (int is_text = 0; is_text <= 1; is_text++) {
        int n = is_text ? 10 : 8;
        model_params seen[10];
        for (int i = 0; i < n; i++) {
            training_next_params(i + 2, &d, is_text, &seen[i]);
            for (int j = 0; j < i; j++)
                ck_assert_msg(!params_eq(&seen[i], &seen[j]), "is_text %d: iterations %d and %d both try %s", is_text,
                              j + 2, i + 2, params_str(&seen[i]));
        }
    }
    /* Free text searches the passage shape; datasets do not (their units do not depend on it). */
    for (int it = 2; it <= 200; it++) {
        model_params out;
        training_next_params(it, &d, 0, &out);
        ck_assert_int_eq(out.passage_chars, d.passage_chars);
        ck_assert_int_eq(out.overlap, d.overlap);
    }
    int moved = 0;
    for (int it = 2; it <= 11; it++) {
        model_params out;
        training_next_params(it, &d, 1, &out);
        moved |= out.passage_chars != d.passage_chars;
    }
    ck_assert_msg(moved, "the text search never changes passage_chars in its first sweep");
}
END_TEST

/* ---- training_suggestion ------------------------------------------------- */

static void suggestion_is(const char *feedback, const char *want)
{
    char *got = training_suggestion(feedback);
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(strcmp(got, want) == 0, "training_suggestion(\"%s\") = \"%s\", want \"%s\"", feedback, got, want);
    free(got);
}

START_TEST(test_suggestion_imperative_becomes_you_must)
{
    suggestion_is("Be concise", "You must be concise.");
    suggestion_is("Be concise.", "You must be concise.");
    suggestion_is("Cite the dataset when you answer", "You must cite the dataset when you answer.");
    /* Acronyms and "I" keep their capital. */
    suggestion_is("SQL examples are needed", "You must SQL examples are needed.");
    suggestion_is("I want sources", "You must I want sources.");
}
END_TEST

START_TEST(test_suggestion_you_must_is_kept)
{
    suggestion_is("You must cite sources.", "You must cite sources.");
    suggestion_is("You must cite sources", "You must cite sources.");
    suggestion_is("you must cite sources", "You must cite sources.");
    suggestion_is("YOU MUST cite sources!", "You must cite sources.");
}
END_TEST

START_TEST(test_suggestion_trims_punctuation_and_spaces)
{
    suggestion_is("  Be concise.  ", "You must be concise.");
    suggestion_is("\n\tBe concise!\n", "You must be concise.");
    suggestion_is("Be concise...", "You must be concise.");
    suggestion_is("Be concise!!! ", "You must be concise.");
    suggestion_is("Be concise. \n \n", "You must be concise.");
    suggestion_is("   You must cite sources.  \n", "You must cite sources.");
}
END_TEST

/* Whitespace is more than ' ' and '\n': a feedback typed on Windows ends in
 * "\r\n", and a tab may trail a pasted line. */
START_TEST(test_suggestion_trims_cr_and_tab)
{
    suggestion_is("Be concise.\r\n", "You must be concise.");
    suggestion_is("Be concise\t", "You must be concise.");
    suggestion_is("\r\nBe concise", "You must be concise.");
}
END_TEST

START_TEST(test_suggestion_long_feedback_is_bounded)
{
    char *in = malloc(5001);
    memset(in, 'x', 5000);
    in[5000] = '\0';
    in[0] = 'B';
    char *got = training_suggestion(in);
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(strncmp(got, "You must bxxx", 13) == 0, "got %.40s", got);
    ck_assert_uint_lt(strlen(got), 400);
    ck_assert_int_eq(got[strlen(got) - 1], '.');
    free(got);
    free(in);
}
END_TEST

/* Cutting a long feedback must not split a UTF-8 character: the suggestion
 * goes into the persona and into JSON answers. */
START_TEST(test_suggestion_long_utf8_stays_valid)
{
    /* "A" then 400 "é" (2 bytes each): byte 300 falls inside a character. */
    char *in = malloc(1 + 800 + 1);
    in[0] = 'A';
    for (int i = 0; i < 400; i++) in[1 + 2 * i] = (char)0xc3, in[2 + 2 * i] = (char)0xa9;
    in[801] = '\0';
    char *got = training_suggestion(in);
    size_t bad = 0;
    ck_assert_msg(ad_utf8_validate(got, strlen(got), &bad) == 0,
                  "suggestion is not valid UTF-8 at byte %zu of %zu", bad, strlen(got));
    free(got);
    free(in);
}
END_TEST

Suite *pipeline_training_suite(void)
{
    Suite *s = suite_create("pipeline_training");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_next_params_first_iteration_is_baseline);
    tcase_add_test(tc, test_next_params_deterministic);
    tcase_add_test(tc, test_next_params_within_bounds);
    tcase_add_test(tc, test_next_params_differ_from_baseline);
    tcase_add_test(tc, test_next_params_first_sweep_is_distinct);
    tcase_add_test(tc, test_suggestion_imperative_becomes_you_must);
    tcase_add_test(tc, test_suggestion_you_must_is_kept);
    tcase_add_test(tc, test_suggestion_trims_punctuation_and_spaces);
    tcase_add_test(tc, test_suggestion_trims_cr_and_tab);
    tcase_add_test(tc, test_suggestion_long_feedback_is_bounded);
    tcase_add_test(tc, test_suggestion_long_utf8_stays_valid);
    suite_add_tcase(s, tc);
    return s;
}
