#include <check.h>
#include <string.h>

#include "model/analysis.h"
#include "model/stopwords.h"

Suite *model_stopwords_suite(void);

static unsigned languages(const char *w)
{
    return stopwords_languages(w, strlen(w));
}

#define BIT(l) (1u << (l))

START_TEST(test_each_language)
{
    static const struct {
        const char *word;
        unsigned want;
    } cases[] = {
        {"the", BIT(ANALYSIS_EN)},
        {"yourselves", BIT(ANALYSIS_EN)},
        {"don", BIT(ANALYSIS_EN)}, /* don't */
        {"t", BIT(ANALYSIS_EN) | BIT(ANALYSIS_FR)}, /* don't; French t' */
        {"n\xc3\xa3o", BIT(ANALYSIS_PT)},
        {"voc\xc3\xaas", BIT(ANALYSIS_PT)},
        {"t\xc3\xaam", BIT(ANALYSIS_PT)},
        {"\xc3\xa9", BIT(ANALYSIS_PT)},
        {"vosotros", BIT(ANALYSIS_ES)},
        {"est\xc3\xa1" "bamos", BIT(ANALYSIS_ES)},
        {"\xc3\xa9t\xc3\xa9", BIT(ANALYSIS_FR)},
        {"les", BIT(ANALYSIS_FR) | BIT(ANALYSIS_ES)},
        {"dass", BIT(ANALYSIS_DE)}, /* the list's "daß", case-folded */
        {"w\xc3\xbcrde", BIT(ANALYSIS_DE)},
        {"perch\xc3\xa9", BIT(ANALYSIS_IT)},
        {"niet", BIT(ANALYSIS_NL)},
        {"de", BIT(ANALYSIS_PT) | BIT(ANALYSIS_ES) | BIT(ANALYSIS_FR) | BIT(ANALYSIS_NL)},
        {"a", BIT(ANALYSIS_EN) | BIT(ANALYSIS_PT) | BIT(ANALYSIS_ES) | BIT(ANALYSIS_IT)},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(languages(cases[i].word) == cases[i].want, "%s: %#x, want %#x",
                      cases[i].word, languages(cases[i].word), cases[i].want);
}
END_TEST

START_TEST(test_not_stopwords)
{
    static const char *const no[] = {"python", "data", "", "thee", "th", "The", "N\xc3\x83O",
                                     "da\xc3\x9f", "t\xc3\xa9m", "vosostros", "won", "let"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(languages(no[i]) == 0, "%s", no[i]);
    /* Bounded by the length given, not by a NUL. */
    ck_assert_uint_eq(stopwords_languages("them", 3), BIT(ANALYSIS_EN));
    ck_assert_uint_eq(stopwords_languages("thei", 4), 0);
    char long_word[STOPWORDS_MAX_LEN + 2];
    memset(long_word, 'a', sizeof(long_word));
    ck_assert_uint_eq(stopwords_languages(long_word, sizeof(long_word)), 0);
}
END_TEST

Suite *model_stopwords_suite(void)
{
    Suite *s = suite_create("model_stopwords");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_each_language);
    tcase_add_test(tc, test_not_stopwords);
    suite_add_tcase(s, tc);
    return s;
}
