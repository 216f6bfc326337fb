#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "model/text.h"

Suite *model_text_suite(void);

static int validate(const char *s, size_t n, size_t *bad)
{
    *bad = (size_t)-1;
    return ad_utf8_validate(s, n, bad);
}

START_TEST(test_utf8_accepts_valid)
{
    size_t bad;
    const char ok[] = "plain ascii, caf\xc3\xa9, \xe2\x82\xac, \xf0\x9f\x98\x80, "
                      "\xed\x9f\xbf \xee\x80\x80 \xf4\x8f\xbf\xbf";
    ck_assert_int_eq(validate(ok, sizeof(ok) - 1, &bad), 0);
    ck_assert_int_eq(validate("", 0, &bad), 0);
}
END_TEST

START_TEST(test_utf8_rejects_with_offset)
{
    static const struct {
        const char *s;
        size_t bad;
    } cases[] = {
        {"abc\xc0\xaf", 3},             /* overlong '/' */
        {"abcdefghij\xe0\x80\xaf", 10}, /* overlong 3-byte, after the ASCII fast path */
        {"x\xf0\x82\x82\xac", 1},       /* overlong 4-byte */
        {"ab\xed\xa0\x80", 2},          /* surrogate U+D800 */
        {"\xed\xbf\xbf", 0},            /* surrogate U+DFFF */
        {"ok\xf4\x90\x80\x80", 2},      /* U+110000 */
        {"\xf5\x80\x80\x80", 0},
        {"trunc\xe2\x82", 5},           /* truncated at end */
        {"trunc\xe2\x82 more", 5},      /* continuation missing */
        {"\x80", 0},                    /* stray continuation */
        {"12345678\xff", 8},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t bad;
        ck_assert_msg(validate(cases[i].s, strlen(cases[i].s), &bad) == AD_EINVAL, "case %zu", i);
        ck_assert_msg(bad == cases[i].bad, "case %zu: offset %zu", i, bad);
    }
}
END_TEST

static void check_normalize(const char *in, const char *want)
{
    ad_buf b;
    ad_buf_init(&b);
    ad_buf_puts(&b, "["); /* normalize appends */
    ck_assert_int_eq(text_normalize(in, strlen(in), &b, NULL), 0);
    ck_assert_str_eq(b.data + 1, want);
    ck_assert_int_eq(b.data[0], '[');
    ad_buf_cleanup(&b);
}

START_TEST(test_normalize_examples)
{
    check_normalize("  Hello,\t\t  world!  ", "Hello, world!");
    check_normalize("a\r\nb\rc\nd", "a\nb\nc\nd");
    check_normalize("one\n\ntwo", "one\n\ntwo");
    check_normalize("one\n\n\n\n\ntwo", "one\n\ntwo");
    check_normalize("one  \n \t \n  \n   two  ", "one\n\ntwo");
    check_normalize("\n\n  lead and trail \n\n", "lead and trail");
    check_normalize("bell\x07 and\x01nul\x7f", "bell andnul");
    check_normalize("c1\xc2\x85x nb\xc2\xa0sp \xef\xbb\xbf" "bom", "c1x nb sp bom");
    check_normalize("caf\xc3\xa9  \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac");
    check_normalize("", "");
    check_normalize(" \t\r\n ", "");
}
END_TEST

START_TEST(test_normalize_rejects_invalid)
{
    ad_buf b;
    ad_buf_init(&b);
    ad_err e = {0};
    const char in[] = "fine text \xed\xa0\x80 here";
    ck_assert_int_eq(text_normalize(in, sizeof(in) - 1, &b, &e), AD_EINVAL);
    ck_assert_int_eq(e.code, AD_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "offset 10"));
    ck_assert_uint_eq(b.len, 0);
    ad_buf_cleanup(&b);
}
END_TEST

static void check_tokens(const char *in, const char *const *want, size_t nwant)
{
    text_tokens t;
    text_tokens_init(&t);
    ck_assert_uint_eq(text_tokenize(in, strlen(in), &t), nwant);
    for (size_t i = 0; i < nwant; i++) {
        ck_assert_uint_eq(t.items[i].length, strlen(want[i]));
        ck_assert_msg(memcmp(t.lower + t.items[i].offset, want[i], strlen(want[i])) == 0,
                      "token %zu", i);
    }
    text_tokens_cleanup(&t);
}

START_TEST(test_tokenize)
{
    static const char *const w1[] = {"hello", "world", "it", "s", "3", "14", "x2"};
    check_tokens("Hello, WORLD! It's 3.14 -- x2", w1, 7);
    /* Latin-1 capitals lowercase, non-ASCII letters stay inside words,
     * NBSP / em dash / curly quotes separate. */
    static const char *const w2[] = {"\xc3\xa9" "cole", "s\xc3\xa3o", "na\xc3\xafve", "ok"};
    check_tokens("\xc3\x89" "cole\xc2\xa0S\xc3\x83O\xe2\x80\x94\xe2\x80\x9cna\xc3\xafve\xe2\x80\x9d ok",
                 w2, 4);
    check_tokens("  ... !!! ", NULL, 0);

    /* Offsets point into the original text too. */
    text_tokens t;
    text_tokens_init(&t);
    const char *s = "ab  CD";
    ck_assert_uint_eq(text_tokenize(s, strlen(s), &t), 2);
    ck_assert_uint_eq(t.items[1].offset, 4);
    ck_assert_int_eq(memcmp(s + t.items[1].offset, "CD", 2), 0);
    /* Reuse shrinks the count and keeps working. */
    ck_assert_uint_eq(text_tokenize("z", 1, &t), 1);
    ck_assert_str_eq(t.lower, "z");
    text_tokens_cleanup(&t);
}
END_TEST

START_TEST(test_next_token_scanner)
{
    const char *s = "  Foo-bar9 ";
    size_t pos = 0, off, len;
    ck_assert_int_eq(text_next_token(s, strlen(s), &pos, &off, &len), 1);
    ck_assert_uint_eq(off, 2);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(text_next_token(s, strlen(s), &pos, &off, &len), 1);
    ck_assert_uint_eq(off, 6);
    ck_assert_uint_eq(len, 4);
    ck_assert_int_eq(text_next_token(s, strlen(s), &pos, &off, &len), 0);
}
END_TEST

START_TEST(test_stopwords)
{
    static const char *const yes[] = {"a", "the", "and", "yourselves", "de", "n\xc3\xa3o",
                                      "\xc3\xa9", "voc\xc3\xaas", "t\xc3\xaam", "whom",
                                      "t" /* don't */};
    static const char *const no[] = {"python", "data", "", "thee", "th", "model",
                                     "\xc3\xa9x", "zzz", "aaa"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        ck_assert_msg(text_is_stopword(yes[i], strlen(yes[i])), "%s", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!text_is_stopword(no[i], strlen(no[i])), "%s", no[i]);
    /* Length-bounded: a prefix of a stopword is not one. */
    ck_assert(text_is_stopword("them", 3)); /* "the" */
    ck_assert(!text_is_stopword("thei", 4));
}
END_TEST

START_TEST(test_hash64)
{
    ck_assert_uint_eq(text_hash64("", 0, TEXT_HASH_SEED), TEXT_HASH_SEED);
    /* FNV-1a 64 reference value for "a". */
    ck_assert_uint_eq(text_hash64("a", 1, TEXT_HASH_SEED), UINT64_C(0xaf63dc4c8601ec8c));
}
END_TEST

Suite *model_text_suite(void)
{
    Suite *s = suite_create("model_text");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_utf8_accepts_valid);
    tcase_add_test(tc, test_utf8_rejects_with_offset);
    tcase_add_test(tc, test_normalize_examples);
    tcase_add_test(tc, test_normalize_rejects_invalid);
    tcase_add_test(tc, test_tokenize);
    tcase_add_test(tc, test_next_token_scanner);
    tcase_add_test(tc, test_stopwords);
    tcase_add_test(tc, test_hash64);
    suite_add_tcase(s, tc);
    return s;
}
