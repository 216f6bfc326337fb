#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/utf8.h"
#include "model/analysis.h"
#include "model/text.h"
#include "tests/unit/model/fixtures.h"

Suite *model_analysis_suite(void);

#define TERMS_MAX 64

/* What one analyzer_terms call produced; every term is checked against the
 * header's promises as it arrives. */
typedef struct collected {
    char terms[TERMS_MAX][ANALYSIS_MAX_TERM + 1];
    size_t positions[TERMS_MAX];
    size_t count;
} collected;

/* Called for every term of long texts: Check records each passing assertion,
 * so only a failure reaches it. */
static void check_term(const char *term, size_t len)
{
    if (len == 0 || len > ANALYSIS_MAX_TERM || ad_utf8_validate(term, len, NULL) != 0)
        ck_abort_msg("term of %zu bytes: %.*s", len, (int)len, term);
}

static void collect(void *ud, const char *term, size_t len, size_t position)
{
    collected *c = ud;
    check_term(term, len);
    if (c->count) ck_assert_uint_gt(position, c->positions[c->count - 1]);
    ck_assert_uint_lt(c->count, TERMS_MAX);
    memcpy(c->terms[c->count], term, len);
    c->terms[c->count][len] = '\0';
    c->positions[c->count++] = position;
}

static collected *analyse(analysis_language l, const char *text)
{
    collected *c = calloc(1, sizeof(*c));
    analyzer *a = analyzer_new(l);
    ck_assert_int_eq(analyzer_language(a), l);
    ck_assert_uint_eq(analyzer_terms(a, text, strlen(text), collect, c), c->count);
    analyzer_free(a);
    return c;
}

/* The one term `word` gives in language l. */
static void check_one(analysis_language l, const char *word, const char *want)
{
    collected *c = analyse(l, word);
    ck_assert_msg(c->count == 1, "%s: %zu terms", word, c->count);
    ck_assert_msg(strcmp(c->terms[0], want) == 0, "%s: %s, want %s", word, c->terms[0], want);
    free(c);
}

static void check_terms(analysis_language l, const char *text, const char *const *want,
                        const size_t *positions, size_t n)
{
    collected *c = analyse(l, text);
    ck_assert_msg(c->count == n, "%s: %zu terms, want %zu", text, c->count, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(strcmp(c->terms[i], want[i]) == 0, "%s: term %zu is %s, want %s", text, i,
                      c->terms[i], want[i]);
        ck_assert_msg(c->positions[i] == positions[i], "%s: term %zu at %zu, want %zu", text, i,
                      c->positions[i], positions[i]);
    }
    free(c);
}

/* A term sequence too long to keep, as a hash. */
typedef struct sequence {
    uint64_t hash;
    size_t terms;
} sequence;

static void hash_term(void *ud, const char *term, size_t len, size_t position)
{
    sequence *s = ud;
    (void)position;
    check_term(term, len);
    s->hash = text_hash64(term, len, s->hash);
    s->hash = text_hash64("|", 1, s->hash);
    s->terms++;
}

START_TEST(test_language_codes)
{
    static const char *const codes[] = {"en", "pt", "es", "fr", "de", "it", "nl"};
    ck_assert_int_eq(ANALYSIS_LANGUAGE_COUNT, sizeof(codes) / sizeof(codes[0]));
    for (int l = 0; l < ANALYSIS_LANGUAGE_COUNT; l++) {
        analysis_language got = ANALYSIS_LANGUAGE_COUNT;
        ck_assert_str_eq(analysis_language_code((analysis_language)l), codes[l]);
        ck_assert_int_eq(analysis_language_from_code(codes[l], &got), 0);
        ck_assert_int_eq(got, l);
    }
    static const char *const bad[] = {"auto", "", "EN", "Pt", "english", "e", "pt-BR", "en "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        analysis_language got = ANALYSIS_NL;
        ck_assert_msg(analysis_language_from_code(bad[i], &got) == AD_EINVAL, "%s", bad[i]);
        ck_assert_int_eq(got, ANALYSIS_NL);
    }
    ck_assert_int_eq(analysis_language_from_code(NULL, &(analysis_language){0}), AD_EINVAL);
}
END_TEST

START_TEST(test_case_and_diacritic_folding)
{
    /* Upper case, lower case, no accents and decomposed accents (NFD). */
    static const char *const acao[] = {"A\xc3\xa7\xc3\xa3o", "ACAO", "a\xc3\xa7\xc3\xa3o",
                                       "A\xc3\x87\xc3\x83O", "ac\xcc\xa7" "a\xcc\x83o"};
    collected *first = analyse(ANALYSIS_PT, acao[0]);
    ck_assert_uint_eq(first->count, 1);
    for (size_t i = 1; i < sizeof(acao) / sizeof(acao[0]); i++)
        check_one(ANALYSIS_PT, acao[i], first->terms[0]);
    free(first);
    check_one(ANALYSIS_FR, "\xc3\x89" "COLE", "ecol");
    check_one(ANALYSIS_FR, "\xc3\xa9" "cole", "ecol");
    /* Full Unicode case folding, not byte lowercasing: sharp s, Greek. */
    check_one(ANALYSIS_DE, "STRASSE", "strass");
    check_one(ANALYSIS_DE, "Stra\xc3\x9f" "e", "strass");
    check_one(ANALYSIS_EN, "\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91",
              "\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1"); /* ΣΟΦΙΑ: σοφια */
}
END_TEST

START_TEST(test_stemming)
{
    check_one(ANALYSIS_EN, "running", "run");
    check_one(ANALYSIS_EN, "runs", "run");
    check_one(ANALYSIS_EN, "Connections", "connect");
    check_one(ANALYSIS_EN, "connected", "connect");
    /* Portuguese: the plural, the singular and the singular typed without
     * accents are one term; so are other endings people type unaccented. */
    static const char *const same[][3] = {
        {"informa\xc3\xa7\xc3\xb5" "es", "informa\xc3\xa7\xc3\xa3o", "informacao"},
        {"aplica\xc3\xa7\xc3\xb5" "es", "aplica\xc3\xa7\xc3\xa3o", "aplicacoes"},
        {"import\xc3\xa2ncia", "importancia", "IMPORTANCIA"},
        {"experi\xc3\xaancias", "experiencia", "experi\xc3\xaancia"},
        {"dispon\xc3\xadvel", "disponivel", "DISPON\xc3\x8dVEL"},
        {"p\xc3\xa3o", "pao", "p\xc3\xa3" "es"},
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        collected *c = analyse(ANALYSIS_PT, same[i][0]);
        ck_assert_uint_eq(c->count, 1);
        check_one(ANALYSIS_PT, same[i][1], c->terms[0]);
        check_one(ANALYSIS_PT, same[i][2], c->terms[0]);
        free(c);
    }
    check_one(ANALYSIS_PT, "informa\xc3\xa7\xc3\xb5" "es", "inform");
    /* The restored endings are Portuguese only. */
    check_one(ANALYSIS_EN, "informacao", "informacao");
    check_one(ANALYSIS_ES, "informaci\xc3\xb3n", "inform");
}
END_TEST

START_TEST(test_stopwords_per_language)
{
    static const char *const en[] = {"cat", "de", "o", "gato"};
    static const size_t en_pos[] = {1, 2, 3, 4};
    check_terms(ANALYSIS_EN, "The cat de o gato", en, en_pos, 4);
    static const char *const pt[] = {"the", "cat", "gat"};
    static const size_t pt_pos[] = {0, 1, 4};
    check_terms(ANALYSIS_PT, "The cat de o gato", pt, pt_pos, 3);
    /* A stopword is checked folded and accented: "NÃO", and "nao" typed
     * without its accent. */
    static const char *const nao[] = {"sab"};
    static const size_t nao_pos[] = {2};
    check_terms(ANALYSIS_PT, "N\xc3\x83O nao sabe", nao, nao_pos, 1);
    static const char *const de[] = {"haus"};
    static const size_t de_pos[] = {2};
    check_terms(ANALYSIS_DE, "Da\xc3\x9f das Haus", de, de_pos, 1);
    static const char *const fr[] = {"maison"};
    static const size_t fr_pos[] = {2};
    check_terms(ANALYSIS_FR, "Les \xc3\xa9t\xc3\xa9 maison", fr, fr_pos, 1);
    /* A contraction is two tokens, and neither piece is a term. */
    static const char *const contraction[] = {"work"};
    static const size_t contraction_pos[] = {3};
    check_terms(ANALYSIS_EN, "It doesn't work", contraction, contraction_pos, 1);
    check_terms(ANALYSIS_EN, "It doesn\xe2\x80\x99t work", contraction, contraction_pos, 1);
    collected *c = analyse(ANALYSIS_EN, "the and of to a");
    ck_assert_uint_eq(c->count, 0);
    free(c);
}
END_TEST

START_TEST(test_positions_count_every_token)
{
    /* Stopwords, a token of combining marks only (no term left once marks
     * are stripped) and digits all take a position. */
    static const char *const want[] = {"quick", "brown", "fox", "2024", "dog"};
    static const size_t pos[] = {1, 2, 3, 6, 8};
    check_terms(ANALYSIS_EN, "The quick brown fox, and \xcc\x81\xcc\x83 2024: the dog!", want, pos,
                5);
    collected *c = analyse(ANALYSIS_EN, "");
    ck_assert_uint_eq(c->count, 0);
    free(c);
    c = analyse(ANALYSIS_EN, " ... \xe2\x80\x94 !");
    ck_assert_uint_eq(c->count, 0);
    free(c);
}
END_TEST

START_TEST(test_digits_kept_as_they_are)
{
    check_one(ANALYSIS_EN, "0042", "0042");
    check_one(ANALYSIS_PT, "1999", "1999");
    check_one(ANALYSIS_EN, "3rd", "3rd");
}
END_TEST

START_TEST(test_max_term_cut_at_utf8_boundary)
{
    char text[256];
    memset(text, '7', 100);
    text[100] = '\0';
    collected *c = analyse(ANALYSIS_EN, text);
    ck_assert_uint_eq(c->count, 1);
    ck_assert_uint_eq(strlen(c->terms[0]), ANALYSIS_MAX_TERM);
    free(c);
    /* 30 three-byte letters (U+65E5): 64 bytes would split the 22nd. */
    for (size_t i = 0; i < 30; i++) memcpy(text + 3 * i, "\xe6\x97\xa5", 3);
    text[90] = '\0';
    c = analyse(ANALYSIS_EN, text);
    ck_assert_uint_eq(c->count, 1);
    ck_assert_uint_eq(strlen(c->terms[0]), 63);
    ck_assert_int_eq(memcmp(c->terms[0], text, 63), 0);
    free(c);
    /* A token far longer than any word still gives one bounded term. */
    size_t n = 3 * 1024 * 1024;
    char *huge = malloc(n + 1);
    for (size_t i = 0; i < n; i += 2) memcpy(huge + i, "\xc3\xa9", 2);
    huge[n] = '\0';
    c = analyse(ANALYSIS_FR, huge);
    ck_assert_uint_eq(c->count, 1);
    ck_assert_uint_le(strlen(c->terms[0]), ANALYSIS_MAX_TERM);
    free(c);
    /* ... even when it has no UTF-8 boundary to cut at. */
    huge[0] = '\xe2';
    memset(huge + 1, 0x80, 4096);
    huge[4097] = '\0';
    c = analyse(ANALYSIS_PT, huge);
    ck_assert_uint_eq(c->count, 1);
    ck_assert_uint_eq(strlen(c->terms[0]), ANALYSIS_MAX_TERM);
    free(c);
    free(huge);
}
END_TEST

START_TEST(test_invalid_utf8_accepted)
{
    /* Kept unstemmed, ASCII lowercased; each invalid byte reads as its
     * Latin-1 letter so the term is valid UTF-8. */
    check_one(ANALYSIS_EN, "Caf\xe9", "caf\xc3\xa9");
    check_one(ANALYSIS_EN, "RUNNING\xff", "running\xc3\xbf");
    check_one(ANALYSIS_EN, "\x80\xc3\xa9X", "\xc2\x80\xc3\xa9x");
    check_one(ANALYSIS_PT, "A\xed\xa0\x80" "B", "a\xc3\xad\xc2\xa0\xc2\x80" "b"); /* surrogate */
    check_one(ANALYSIS_EN, "trunc\xe2\x82", "trunc\xc3\xa2\xc2\x82");
    /* Every byte string goes through, with valid terms (collect checks). */
    char all[256 * 3];
    for (size_t i = 0; i < sizeof(all); i++) all[i] = (char)(i * 7 + 3);
    for (int l = 0; l < ANALYSIS_LANGUAGE_COUNT; l++) {
        analyzer *a = analyzer_new((analysis_language)l);
        sequence seq = {TEXT_HASH_SEED, 0};
        ck_assert_uint_eq(analyzer_terms(a, all, sizeof(all), hash_term, &seq), seq.terms);
        analyzer_free(a);
    }
}
END_TEST

/* Long texts go through the analyzer's cache of recent tokens; the terms must
 * be the ones each token gives on its own. */
START_TEST(test_long_text_terms_match_short_ones)
{
    size_t n;
    char *answers = model_fixture_answers(&n);
    ck_assert_ptr_nonnull(answers);
    static const char pt[] = "\n\nA informa\xc3\xa7\xc3\xa3o do USU\xc3\x81RIO \xc3\xa9 guardada "
                             "em blocos; as aplicacoes leem os blocos \xe6\x97\xa5 1234.\n\n";
    ad_buf big;
    ad_buf_init(&big);
    while (big.len < 200 * 1024) {
        ad_buf_append(&big, answers, n);
        ad_buf_puts(&big, pt);
    }
    for (int l = 0; l < ANALYSIS_LANGUAGE_COUNT; l++) {
        sequence whole = {TEXT_HASH_SEED, 0}, parts = {TEXT_HASH_SEED, 0};
        analyzer *a = analyzer_new((analysis_language)l);
        analyzer_terms(a, big.data, big.len, hash_term, &whole);
        analyzer_free(a);
        /* Paragraph by paragraph, each too short for the cache. */
        const char *p = big.data, *end = big.data + big.len;
        while (p < end) {
            const char *q = strstr(p, "\n\n");
            size_t len = q ? (size_t)(q - p) : (size_t)(end - p);
            analyzer *b = analyzer_new((analysis_language)l);
            analyzer_terms(b, p, len, hash_term, &parts);
            analyzer_free(b);
            p += len + (q ? 2 : 0);
        }
        ck_assert_uint_gt(whole.terms, 10000);
        ck_assert_uint_eq(whole.terms, parts.terms);
        ck_assert_msg(whole.hash == parts.hash, "language %d: terms differ", l);
    }
    ad_buf_cleanup(&big);
    free(answers);
}
END_TEST

static char *dataset_text(const char *name)
{
    cJSON *root = model_fixture_dataset(name);
    ck_assert_ptr_nonnull(root);
    ad_buf b;
    ad_buf_init(&b);
    const cJSON *pair;
    cJSON_ArrayForEach(pair, cJSON_GetObjectItemCaseSensitive(root, "training_data"))
    {
        ad_buf_printf(&b, "%s\n%s\n\n",
                      cJSON_GetObjectItemCaseSensitive(pair, "prompt")->valuestring,
                      cJSON_GetObjectItemCaseSensitive(pair, "answer")->valuestring);
    }
    cJSON_Delete(root);
    return ad_buf_steal(&b, NULL);
}

static analysis_language detect(const char *text)
{
    return analysis_detect(text, strlen(text));
}

START_TEST(test_detect_datasets_english)
{
    static const char *const names[] = {"ml_expert_dataset.json", "python_expert_dataset.json"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *text = dataset_text(names[i]);
        ck_assert_msg(detect(text) == ANALYSIS_EN, "%s", names[i]);
        free(text);
    }
}
END_TEST

/* Short paragraphs, as one user's material might start. */
static const char *const portuguese[] = {
    "O sistema guarda os dados em blocos de tamanho fixo. Quando um bloco fica cheio, o "
    "pr\xc3\xb3ximo \xc3\xa9 alocado automaticamente e a tabela de \xc3\xadndices \xc3\xa9 "
    "atualizada.",
    "Para treinar o modelo, voc\xc3\xaa precisa de exemplos rotulados. Quanto mais variados "
    "forem os exemplos, melhor ser\xc3\xa1 a generaliza\xc3\xa7\xc3\xa3o.",
    "A fotoss\xc3\xadntese transforma luz em energia qu\xc3\xadmica. As plantas usam essa "
    "energia para crescer e liberam oxig\xc3\xaanio no processo.",
    "N\xc3\xa3o sei onde est\xc3\xa1 a chave do carro.",
    "nao sei como configurar a aplicacao no servidor",
    "COMO INSTALAR O PYTHON NO WINDOWS? BAIXE O INSTALADOR DO SITE OFICIAL E MARQUE A OP\xc3\x87\xc3"
    "\x83O QUE ADICIONA O PYTHON AO PATH.",
};

START_TEST(test_detect_portuguese)
{
    for (size_t i = 0; i < sizeof(portuguese) / sizeof(portuguese[0]); i++)
        ck_assert_msg(detect(portuguese[i]) == ANALYSIS_PT, "%s", portuguese[i]);
}
END_TEST

START_TEST(test_detect_other_languages)
{
    static const struct {
        const char *text;
        analysis_language want;
    } cases[] = {
        {"Photosynthesis turns light into chemical energy. Plants use it to grow.", ANALYSIS_EN},
        {"El sistema guarda los datos en bloques y los usuarios pueden consultarlos cuando "
         "quieran.",
         ANALYSIS_ES},
        {"Le syst\xc3\xa8me garde les donn\xc3\xa9" "es dans des blocs et les utilisateurs "
         "peuvent les consulter quand ils veulent.",
         ANALYSIS_FR},
        {"Das System speichert die Daten in Bl\xc3\xb6" "cken, und die Benutzer k\xc3\xb6nnen "
         "sie jederzeit abfragen.",
         ANALYSIS_DE},
        {"Il sistema conserva i dati in blocchi e gli utenti possono consultarli quando "
         "vogliono.",
         ANALYSIS_IT},
        {"Het systeem bewaart de gegevens in blokken en de gebruikers kunnen ze altijd "
         "opvragen.",
         ANALYSIS_NL},
        /* Nothing decides: English. */
        {"", ANALYSIS_EN},
        {"12345 XGBoost", ANALYSIS_EN},
        {"o", ANALYSIS_EN}, /* pt, es and it tie */
        {"\xff\xfe\xfd", ANALYSIS_EN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(detect(cases[i].text) == cases[i].want, "%s: %s", cases[i].text,
                      analysis_language_code(detect(cases[i].text)));
}
END_TEST

START_TEST(test_detect_reads_first_64k)
{
    char *english = dataset_text("ml_expert_dataset.json");
    ad_buf b;
    ad_buf_init(&b);
    while (b.len < 64 * 1024) ad_buf_puts(&b, english);
    size_t english_len = b.len;
    while (b.len < 4 * english_len) {
        for (size_t i = 0; i < sizeof(portuguese) / sizeof(portuguese[0]); i++) {
            ad_buf_puts(&b, portuguese[i]);
            ad_buf_puts(&b, "\n\n");
        }
    }
    ck_assert_int_eq(analysis_detect(b.data, b.len), ANALYSIS_EN);
    /* The Portuguese part alone, and the whole with less English first. */
    ck_assert_int_eq(analysis_detect(b.data + english_len, b.len - english_len), ANALYSIS_PT);
    ck_assert_int_eq(analysis_detect(b.data + english_len - 4096, b.len - english_len + 4096),
                     ANALYSIS_PT);
    ad_buf_cleanup(&b);
    free(english);
}
END_TEST

Suite *model_analysis_suite(void)
{
    Suite *s = suite_create("model_analysis");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_language_codes);
    tcase_add_test(tc, test_case_and_diacritic_folding);
    tcase_add_test(tc, test_stemming);
    tcase_add_test(tc, test_stopwords_per_language);
    tcase_add_test(tc, test_positions_count_every_token);
    tcase_add_test(tc, test_digits_kept_as_they_are);
    tcase_add_test(tc, test_max_term_cut_at_utf8_boundary);
    tcase_add_test(tc, test_invalid_utf8_accepted);
    tcase_add_test(tc, test_long_text_terms_match_short_ones);
    tcase_add_test(tc, test_detect_datasets_english);
    tcase_add_test(tc, test_detect_portuguese);
    tcase_add_test(tc, test_detect_other_languages);
    tcase_add_test(tc, test_detect_reads_first_64k);
    suite_add_tcase(s, tc);
    return s;
}
