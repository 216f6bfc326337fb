#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "model/passages.h"
#include "model/text.h"
#include "tests/unit/model/fixtures.h"

Suite *model_passages_suite(void);

static int span_is(const char *text, const passages_span *sp, const char *want)
{
    return sp->length == strlen(want) && memcmp(text + sp->offset, want, sp->length) == 0;
}

START_TEST(test_sentences_boundaries)
{
    const char *t = "Dr. Smith left at 3.14 p.m. today. He said hi! Really?! "
                    "Yes, e.g. this one (see J. Doe).\n1. First item\n\n\"Quoted end.\" Last";
    static const char *const want[] = {
        "Dr. Smith left at 3.14 p.m. today.", "He said hi!", "Really?!",
        "Yes, e.g. this one (see J. Doe).", "1. First item", "\"Quoted end.\"", "Last",
    };
    passages_list l;
    passages_list_init(&l);
    passages_sentences(t, strlen(t), 1000, &l);
    ck_assert_uint_eq(l.count, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < l.count; i++)
        ck_assert_msg(span_is(t, &l.items[i], want[i]), "sentence %zu: %.*s", i,
                      (int)l.items[i].length, t + l.items[i].offset);
    passages_sentences("   \n\n  ", 7, 1000, &l);
    ck_assert_uint_eq(l.count, 0);
    passages_list_cleanup(&l);
}
END_TEST

/* Checks every invariant of a split: bounds, UTF-8 boundaries, passages made
 * of whole sentences in order, every sentence covered, overlap present. */
static void check_split(const char *t, size_t n, const passages_params *pp)
{
    passages_list sent, pass;
    passages_list_init(&sent);
    passages_list_init(&pass);
    ck_assert_int_eq(passages_split(t, n, pp, &pass, NULL), 0);
    passages_sentences(t, n, pp->max_chars, &sent);
    ck_assert(sent.count == 0 || pass.count > 0);
    const unsigned char *u = (const unsigned char *)t;
    size_t next_sentence = 0; /* first sentence not yet covered */
    for (size_t i = 0; i < pass.count; i++) {
        const passages_span *p = &pass.items[i];
        ck_assert_uint_gt(p->length, 0);
        ck_assert_uint_le(p->length, pp->max_chars);
        ck_assert_uint_le(p->offset + p->length, n);
        ck_assert_msg((u[p->offset] & 0xC0) != 0x80, "passage %zu starts mid-character", i);
        ck_assert_msg(p->offset + p->length == n || (u[p->offset + p->length] & 0xC0) != 0x80,
                      "passage %zu ends mid-character", i);
        /* It starts at a sentence start and ends at a sentence end. */
        size_t first = 0;
        while (first < sent.count && sent.items[first].offset != p->offset) first++;
        ck_assert_msg(first < sent.count, "passage %zu does not start a sentence", i);
        size_t last = first;
        while (last < sent.count &&
               sent.items[last].offset + sent.items[last].length != p->offset + p->length)
            last++;
        ck_assert_msg(last < sent.count, "passage %zu does not end a sentence", i);
        ck_assert_msg(first <= next_sentence, "sentence %zu skipped", next_sentence);
        if (i > 0 && pp->overlap_sentences > 0) {
            /* The previous passage's last sentence is repeated when it fits. */
            const passages_span *prev_last = &sent.items[next_sentence - 1];
            size_t with_overlap = sent.items[next_sentence].offset +
                                  sent.items[next_sentence].length - prev_last->offset;
            if (with_overlap <= pp->target_chars)
                ck_assert_msg(first < next_sentence, "passage %zu has no overlap", i);
        }
        ck_assert_uint_ge(last + 1, next_sentence + 1);
        next_sentence = last + 1;
    }
    ck_assert_uint_eq(next_sentence, sent.count);
    passages_list_cleanup(&sent);
    passages_list_cleanup(&pass);
}

START_TEST(test_split_small_text)
{
    const char *t = "Alpha one is here. Beta two follows it. Gamma three is next. "
                    "Delta four ends the paragraph.\n\nEpsilon five starts anew. Zeta six.";
    passages_params pp = {.target_chars = 45, .max_chars = 70, .overlap_sentences = 1};
    check_split(t, strlen(t), &pp);
    passages_list l;
    passages_list_init(&l);
    ck_assert_int_eq(passages_split(t, strlen(t), &pp, &l, NULL), 0);
    ck_assert_uint_ge(l.count, 3);
    /* "Beta two follows it." closes passage 0 and opens passage 1. */
    ck_assert(span_is(t, &l.items[0], "Alpha one is here. Beta two follows it."));
    ck_assert_int_eq(strncmp(t + l.items[1].offset, "Beta two follows it.", 20), 0);
    pp.overlap_sentences = 0;
    check_split(t, strlen(t), &pp);
    passages_params_default(&pp);
    ck_assert_int_eq(passages_split(t, strlen(t), &pp, &l, NULL), 0);
    ck_assert_uint_eq(l.count, 1);
    ck_assert_uint_eq(l.items[0].length, strlen(t));
    ck_assert_int_eq(passages_split("", 0, &pp, &l, NULL), 0);
    ck_assert_uint_eq(l.count, 0);
    passages_list_cleanup(&l);
}
END_TEST

START_TEST(test_split_rejects_bad_params)
{
    passages_list l;
    passages_list_init(&l);
    ad_err e = {0};
    passages_params pp = {.target_chars = 100, .max_chars = 50, .overlap_sentences = 1};
    ck_assert_int_eq(passages_split("x", 1, &pp, &l, &e), AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "max_chars"));
    pp = (passages_params){.target_chars = 0, .max_chars = 50};
    ck_assert_int_eq(passages_split("x", 1, &pp, &l, NULL), AD_EINVAL);
    pp = (passages_params){.target_chars = 2, .max_chars = 3};
    ck_assert_int_eq(passages_split("x", 1, &pp, &l, NULL), AD_EINVAL);
    passages_list_cleanup(&l);
}
END_TEST

START_TEST(test_split_long_sentences)
{
    /* A 2000-byte word of two-byte characters, then words of three-byte ones:
     * cuts must land on character boundaries, and at spaces when there are. */
    ad_buf b;
    ad_buf_init(&b);
    for (int i = 0; i < 1000; i++) ad_buf_puts(&b, "\xc3\xa9");
    ad_buf_puts(&b, ". ");
    for (int i = 0; i < 300; i++) ad_buf_puts(&b, "\xe2\x82\xac\xe2\x82\xac ");
    ad_buf_puts(&b, "end.");
    static const size_t maxes[] = {4, 5, 7, 101, 1000};
    for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
        passages_params pp = {.target_chars = maxes[m] / 2 + 1, .max_chars = maxes[m],
                              .overlap_sentences = 1};
        check_split(b.data, b.len, &pp);
    }
    passages_list l;
    passages_list_init(&l);
    passages_params pp = {.target_chars = 50, .max_chars = 100, .overlap_sentences = 0};
    ck_assert_int_eq(passages_split(b.data, b.len, &pp, &l, NULL), 0);
    size_t total = 0;
    for (size_t i = 0; i < l.count; i++) {
        const passages_span *p = &l.items[i];
        if (p->offset >= 2002) /* the spaced part: cut at spaces only */
            ck_assert_msg(p->offset + p->length == b.len || b.data[p->offset + p->length] == ' ',
                          "passage %zu cut inside a word", i);
        total += p->length;
    }
    ck_assert_uint_ge(total, b.len - 400); /* only separators are left out */
    passages_list_cleanup(&l);
    ad_buf_cleanup(&b);
}
END_TEST

START_TEST(test_split_real_datasets)
{
    size_t n;
    char *raw = model_fixture_answers(&n);
    ck_assert_ptr_nonnull(raw);
    ad_buf norm;
    ad_buf_init(&norm);
    ck_assert_int_eq(text_normalize(raw, n, &norm, NULL), 0);
    passages_params pp;
    passages_params_default(&pp);
    check_split(norm.data, norm.len, &pp);
    pp = (passages_params){.target_chars = 120, .max_chars = 200, .overlap_sentences = 1};
    check_split(norm.data, norm.len, &pp);
    pp = (passages_params){.target_chars = 40, .max_chars = 60, .overlap_sentences = 2};
    check_split(norm.data, norm.len, &pp);
    ad_buf_cleanup(&norm);
    free(raw);
}
END_TEST

static void check_question(const char *passage, const char *want)
{
    char *q = passages_derive_question(passage, strlen(passage));
    if (!want) {
        ck_assert_ptr_null(q);
        return;
    }
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q, want);
    free(q);
}

START_TEST(test_derive_question)
{
    check_question("Python is a programming language. It is popular.", "What is Python?");
    check_question("The GIL is a mutex that protects objects.", "What is the GIL?");
    check_question("Generators are lazy iterators.", "What are Generators?");
    check_question("Python \xc3\xa9 uma linguagem.", "O que \xc3\xa9 Python?");
    check_question("Use lists. The result is fine.", "What is the result?");
    check_question("Use lists. Then the result is fine.", "What about use, lists and result?");
    check_question("Decorators wrap functions. Decorators modify functions, and "
                   "decorators return functions.",
                   "What about decorators, functions and wrap?");
    /* Subjects that are clauses, too long or only stopwords are not asked about. */
    check_question("If you want speed, numpy is faster than loops.",
                   "What about want, speed and numpy?");
    check_question("It is 42.", "What about it, is and 42?");
    check_question("Trees generally win but is slow.", "What about trees, generally and win?");
    check_question("Steps: 1) install 2) run 3) test 4) run", "What about run, steps and install?");
    check_question("", NULL);
    check_question(" ... ", NULL);
}
END_TEST

START_TEST(test_derived_questions_on_datasets)
{
    size_t n;
    char *raw = model_fixture_answers(&n);
    ck_assert_ptr_nonnull(raw);
    passages_list l;
    passages_list_init(&l);
    passages_params pp;
    passages_params_default(&pp);
    ck_assert_int_eq(passages_split(raw, n, &pp, &l, NULL), 0);
    for (size_t i = 0; i < l.count; i++) {
        char *q = passages_derive_question(raw + l.items[i].offset, l.items[i].length);
        ck_assert_ptr_nonnull(q);
        size_t ql = strlen(q);
        ck_assert_uint_gt(ql, 8);
        ck_assert_int_eq(q[ql - 1], '?');
        ck_assert_int_eq(ad_utf8_validate(q, ql, NULL), 0);
        char *again = passages_derive_question(raw + l.items[i].offset, l.items[i].length);
        ck_assert_str_eq(q, again);
        free(again);
        free(q);
    }
    passages_list_cleanup(&l);
    free(raw);
}
END_TEST

START_TEST(test_fingerprint)
{
    const char *a = "Hello,   World!\n It's  fine.";
    const char *b = "hello world it s FINE";
    ck_assert_uint_eq(passages_fingerprint(a, strlen(a)), passages_fingerprint(b, strlen(b)));
    ck_assert_uint_ne(passages_fingerprint("hello world", 11),
                      passages_fingerprint("hello worlds", 12));
    ck_assert_uint_ne(passages_fingerprint("ab c", 4), passages_fingerprint("a bc", 4));
    ck_assert_uint_ne(passages_fingerprint("b a", 3), passages_fingerprint("a b", 3));
    ck_assert_uint_eq(passages_fingerprint("\xc3\x89t\xc3\xa9", 5),
                      passages_fingerprint("\xc3\xa9t\xc3\xa9", 5));
    ck_assert_uint_eq(passages_fingerprint("", 0), passages_fingerprint(" .. ", 4));
}
END_TEST

Suite *model_passages_suite(void)
{
    Suite *s = suite_create("model_passages");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_sentences_boundaries);
    tcase_add_test(tc, test_split_small_text);
    tcase_add_test(tc, test_split_rejects_bad_params);
    tcase_add_test(tc, test_split_long_sentences);
    tcase_add_test(tc, test_split_real_datasets);
    tcase_add_test(tc, test_derive_question);
    tcase_add_test(tc, test_derived_questions_on_datasets);
    tcase_add_test(tc, test_fingerprint);
    suite_add_tcase(s, tc);
    return s;
}
