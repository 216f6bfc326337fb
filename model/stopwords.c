#include "model/stopwords.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/err.h"
#include "model/text.h"

/*
 * The lists are the Snowball project's (snowballstem.org, BSD licence), as
 * published, except where our tokenizer or a typo in them needed a change:
 * English contractions become the pieces the tokenizer makes of them
 * ("don't" is "don" + "t"; "won" and "let" stay out, they are words of their
 * own); Portuguese gains "é" and reads "têm" for the misspelt "tém"; French
 * gains "les", its commonest word after "de", without which a French text
 * ties with Spanish; Spanish reads "vosotros"/"vosotras" for
 * "vosostros"/"vosostras". Words appear as
 * the lists spell them: the set folds them as analysis folds a token.
 */
static const char *const english[] = {
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours",
    "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself",
    "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which",
    "who", "whom", "this", "that", "these", "those", "am", "is", "are", "was", "were", "be",
    "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "would",
    "should", "could", "ought", "a", "an", "the", "and", "but", "if", "or", "because", "as",
    "until", "while", "of", "at", "by", "for", "with", "about", "against", "between", "into",
    "through", "during", "before", "after", "above", "below", "to", "from", "up", "down", "in",
    "out", "on", "off", "over", "under", "again", "further", "then", "once", "here", "there",
    "when", "where", "why", "how", "all", "any", "both", "each", "few", "more", "most", "other",
    "some", "such", "no", "nor", "not", "only", "own", "same", "so", "than", "too", "very", "m",
    "re", "s", "ve", "d", "ll", "t", "isn", "aren", "wasn", "weren", "hasn", "haven", "hadn",
    "doesn", "don", "didn", "wouldn", "shan", "shouldn", "can", "cannot", "couldn", "mustn",
};

static const char *const portuguese[] = {
    "de", "a", "o", "que", "e", "do", "da", "em", "um", "para", "com", "não", "uma", "os", "no",
    "se", "na", "por", "mais", "as", "dos", "como", "mas", "ao", "ele", "das", "à", "seu",
    "sua", "ou", "quando", "muito", "nos", "já", "eu", "também", "só", "pelo", "pela", "até",
    "isso", "ela", "entre", "depois", "sem", "mesmo", "aos", "seus", "quem", "nas", "me",
    "esse", "eles", "você", "essa", "num", "nem", "suas", "meu", "às", "minha", "numa", "pelos",
    "elas", "qual", "nós", "lhe", "deles", "essas", "esses", "pelas", "este", "dele", "tu",
    "te", "vocês", "vos", "lhes", "meus", "minhas", "teu", "tua", "teus", "tuas", "nosso",
    "nossa", "nossos", "nossas", "dela", "delas", "esta", "estes", "estas", "aquele", "aquela",
    "aqueles", "aquelas", "isto", "aquilo", "estou", "está", "estamos", "estão", "estive",
    "esteve", "estivemos", "estiveram", "estava", "estávamos", "estavam", "estivera",
    "estivéramos", "esteja", "estejamos", "estejam", "estivesse", "estivéssemos", "estivessem",
    "estiver", "estivermos", "estiverem", "hei", "há", "havemos", "hão", "houve", "houvemos",
    "houveram", "houvera", "houvéramos", "haja", "hajamos", "hajam", "houvesse", "houvéssemos",
    "houvessem", "houver", "houvermos", "houverem", "houverei", "houverá", "houveremos",
    "houverão", "houveria", "houveríamos", "houveriam", "sou", "somos", "são", "era", "éramos",
    "eram", "fui", "foi", "fomos", "foram", "fora", "fôramos", "seja", "sejamos", "sejam",
    "fosse", "fôssemos", "fossem", "for", "formos", "forem", "serei", "será", "seremos",
    "serão", "seria", "seríamos", "seriam", "tenho", "tem", "temos", "têm", "tinha", "tínhamos",
    "tinham", "tive", "teve", "tivemos", "tiveram", "tivera", "tivéramos", "tenha", "tenhamos",
    "tenham", "tivesse", "tivéssemos", "tivessem", "tiver", "tivermos", "tiverem", "terei",
    "terá", "teremos", "terão", "teria", "teríamos", "teriam", "é",
};

static const char *const spanish[] = {
    "de", "la", "que", "el", "en", "y", "a", "los", "del", "se", "las", "por", "un", "para",
    "con", "no", "una", "su", "al", "lo", "como", "más", "pero", "sus", "le", "ya", "o", "este",
    "sí", "porque", "esta", "entre", "cuando", "muy", "sin", "sobre", "también", "me", "hasta",
    "hay", "donde", "quien", "desde", "todo", "nos", "durante", "todos", "uno", "les", "ni",
    "contra", "otros", "ese", "eso", "ante", "ellos", "e", "esto", "mí", "antes", "algunos",
    "qué", "unos", "yo", "otro", "otras", "otra", "él", "tanto", "esa", "estos", "mucho",
    "quienes", "nada", "muchos", "cual", "poco", "ella", "estar", "estas", "algunas", "algo",
    "nosotros", "mi", "mis", "tú", "te", "ti", "tu", "tus", "ellas", "nosotras", "vosotros",
    "vosotras", "os", "mío", "mía", "míos", "mías", "tuyo", "tuya", "tuyos", "tuyas", "suyo",
    "suya", "suyos", "suyas", "nuestro", "nuestra", "nuestros", "nuestras", "vuestro",
    "vuestra", "vuestros", "vuestras", "esos", "esas", "estoy", "estás", "está", "estamos",
    "estáis", "están", "esté", "estés", "estemos", "estéis", "estén", "estaré", "estarás",
    "estará", "estaremos", "estaréis", "estarán", "estaría", "estarías", "estaríamos",
    "estaríais", "estarían", "estaba", "estabas", "estábamos", "estabais", "estaban", "estuve",
    "estuviste", "estuvo", "estuvimos", "estuvisteis", "estuvieron", "estuviera", "estuvieras",
    "estuviéramos", "estuvierais", "estuvieran", "estuviese", "estuvieses", "estuviésemos",
    "estuvieseis", "estuviesen", "estando", "estado", "estada", "estados", "estadas", "estad",
    "he", "has", "ha", "hemos", "habéis", "han", "haya", "hayas", "hayamos", "hayáis", "hayan",
    "habré", "habrás", "habrá", "habremos", "habréis", "habrán", "habría", "habrías",
    "habríamos", "habríais", "habrían", "había", "habías", "habíamos", "habíais", "habían",
    "hube", "hubiste", "hubo", "hubimos", "hubisteis", "hubieron", "hubiera", "hubieras",
    "hubiéramos", "hubierais", "hubieran", "hubiese", "hubieses", "hubiésemos", "hubieseis",
    "hubiesen", "habiendo", "habido", "habida", "habidos", "habidas", "soy", "eres", "es",
    "somos", "sois", "son", "sea", "seas", "seamos", "seáis", "sean", "seré", "serás", "será",
    "seremos", "seréis", "serán", "sería", "serías", "seríamos", "seríais", "serían", "era",
    "eras", "éramos", "erais", "eran", "fui", "fuiste", "fue", "fuimos", "fuisteis", "fueron",
    "fuera", "fueras", "fuéramos", "fuerais", "fueran", "fuese", "fueses", "fuésemos",
    "fueseis", "fuesen", "sintiendo", "sentido", "sentida", "sentidos", "sentidas", "siente",
    "sentid", "tengo", "tienes", "tiene", "tenemos", "tenéis", "tienen", "tenga", "tengas",
    "tengamos", "tengáis", "tengan", "tendré", "tendrás", "tendrá", "tendremos", "tendréis",
    "tendrán", "tendría", "tendrías", "tendríamos", "tendríais", "tendrían", "tenía", "tenías",
    "teníamos", "teníais", "tenían", "tuve", "tuviste", "tuvo", "tuvimos", "tuvisteis",
    "tuvieron", "tuviera", "tuvieras", "tuviéramos", "tuvierais", "tuvieran", "tuviese",
    "tuvieses", "tuviésemos", "tuvieseis", "tuviesen", "teniendo", "tenido", "tenida",
    "tenidos", "tenidas", "tened",
};

static const char *const french[] = {
    "au", "aux", "avec", "ce", "ces", "dans", "de", "des", "du", "elle", "en", "et", "eux",
    "il", "je", "la", "le", "les", "leur", "lui", "ma", "mais", "me", "même", "mes", "moi", "mon",
    "ne", "nos", "notre", "nous", "on", "ou", "par", "pas", "pour", "qu", "que", "qui", "sa",
    "se", "ses", "son", "sur", "ta", "te", "tes", "toi", "ton", "tu", "un", "une", "vos",
    "votre", "vous", "c", "d", "j", "l", "à", "m", "n", "s", "t", "y", "été", "étée", "étées",
    "étés", "étant", "étante", "étants", "étantes", "suis", "es", "est", "sommes", "êtes",
    "sont", "serai", "seras", "sera", "serons", "serez", "seront", "serais", "serait",
    "serions", "seriez", "seraient", "étais", "était", "étions", "étiez", "étaient", "fus",
    "fut", "fûmes", "fûtes", "furent", "sois", "soit", "soyons", "soyez", "soient", "fusse",
    "fusses", "fût", "fussions", "fussiez", "fussent", "ayant", "ayante", "ayantes", "ayants",
    "eu", "eue", "eues", "eus", "ai", "as", "avons", "avez", "ont", "aurai", "auras", "aura",
    "aurons", "aurez", "auront", "aurais", "aurait", "aurions", "auriez", "auraient", "avais",
    "avait", "avions", "aviez", "avaient", "eut", "eûmes", "eûtes", "eurent", "aie", "aies",
    "ait", "ayons", "ayez", "aient", "eusse", "eusses", "eût", "eussions", "eussiez", "eussent",
};

static const char *const german[] = {
    "aber", "alle", "allem", "allen", "aller", "alles", "als", "also", "am", "an", "ander",
    "andere", "anderem", "anderen", "anderer", "anderes", "anderm", "andern", "anderr",
    "anders", "auch", "auf", "aus", "bei", "bin", "bis", "bist", "da", "damit", "dann", "der",
    "den", "des", "dem", "die", "das", "daß", "derselbe", "derselben", "denselben", "desselben",
    "demselben", "dieselbe", "dieselben", "dasselbe", "dazu", "dein", "deine", "deinem",
    "deinen", "deiner", "deines", "denn", "derer", "dessen", "dich", "dir", "du", "dies",
    "diese", "diesem", "diesen", "dieser", "dieses", "doch", "dort", "durch", "ein", "eine",
    "einem", "einen", "einer", "eines", "einig", "einige", "einigem", "einigen", "einiger",
    "einiges", "einmal", "er", "ihn", "ihm", "es", "etwas", "euer", "eure", "eurem", "euren",
    "eurer", "eures", "für", "gegen", "gewesen", "hab", "habe", "haben", "hat", "hatte",
    "hatten", "hier", "hin", "hinter", "ich", "mich", "mir", "ihr", "ihre", "ihrem", "ihren",
    "ihrer", "ihres", "euch", "im", "in", "indem", "ins", "ist", "jede", "jedem", "jeden",
    "jeder", "jedes", "jene", "jenem", "jenen", "jener", "jenes", "jetzt", "kann", "kein",
    "keine", "keinem", "keinen", "keiner", "keines", "können", "könnte", "machen", "man",
    "manche", "manchem", "manchen", "mancher", "manches", "mein", "meine", "meinem", "meinen",
    "meiner", "meines", "mit", "muss", "musste", "nach", "nicht", "nichts", "noch", "nun",
    "nur", "ob", "oder", "ohne", "sehr", "sein", "seine", "seinem", "seinen", "seiner",
    "seines", "selbst", "sich", "sie", "ihnen", "sind", "so", "solche", "solchem", "solchen",
    "solcher", "solches", "soll", "sollte", "sondern", "sonst", "über", "um", "und", "uns",
    "unse", "unsem", "unsen", "unser", "unses", "unter", "viel", "vom", "von", "vor", "während",
    "war", "waren", "warst", "was", "weg", "weil", "weiter", "welche", "welchem", "welchen",
    "welcher", "welches", "wenn", "werde", "werden", "wie", "wieder", "will", "wir", "wird",
    "wirst", "wo", "wollen", "wollte", "würde", "würden", "zu", "zum", "zur", "zwar", "zwischen",
};

static const char *const italian[] = {
    "ad", "al", "allo", "ai", "agli", "all", "agl", "alla", "alle", "con", "col", "coi", "da",
    "dal", "dallo", "dai", "dagli", "dall", "dagl", "dalla", "dalle", "di", "del", "dello",
    "dei", "degli", "dell", "degl", "della", "delle", "in", "nel", "nello", "nei", "negli",
    "nell", "negl", "nella", "nelle", "su", "sul", "sullo", "sui", "sugli", "sull", "sugl",
    "sulla", "sulle", "per", "tra", "contro", "io", "tu", "lui", "lei", "noi", "voi", "loro",
    "mio", "mia", "miei", "mie", "tuo", "tua", "tuoi", "tue", "suo", "sua", "suoi", "sue",
    "nostro", "nostra", "nostri", "nostre", "vostro", "vostra", "vostri", "vostre", "mi", "ti",
    "ci", "vi", "lo", "la", "li", "le", "gli", "ne", "il", "un", "uno", "una", "ma", "ed", "se",
    "perché", "anche", "come", "dov", "dove", "che", "chi", "cui", "non", "più", "quale",
    "quanto", "quanti", "quanta", "quante", "quello", "quelli", "quella", "quelle", "questo",
    "questi", "questa", "queste", "si", "tutto", "tutti", "a", "c", "e", "i", "l", "o", "ho",
    "hai", "ha", "abbiamo", "avete", "hanno", "abbia", "abbiate", "abbiano", "avrò", "avrai",
    "avrà", "avremo", "avrete", "avranno", "avrei", "avresti", "avrebbe", "avremmo", "avreste",
    "avrebbero", "avevo", "avevi", "aveva", "avevamo", "avevate", "avevano", "ebbi", "avesti",
    "ebbe", "avemmo", "aveste", "ebbero", "avessi", "avesse", "avessimo", "avessero", "avendo",
    "avuto", "avuta", "avuti", "avute", "sono", "sei", "è", "siamo", "siete", "sia", "siate",
    "siano", "sarò", "sarai", "sarà", "saremo", "sarete", "saranno", "sarei", "saresti",
    "sarebbe", "saremmo", "sareste", "sarebbero", "ero", "eri", "era", "eravamo", "eravate",
    "erano", "fui", "fosti", "fu", "fummo", "foste", "furono", "fossi", "fosse", "fossimo",
    "fossero", "essendo", "faccio", "fai", "facciamo", "fanno", "faccia", "facciate",
    "facciano", "farò", "farai", "farà", "faremo", "farete", "faranno", "farei", "faresti",
    "farebbe", "faremmo", "fareste", "farebbero", "facevo", "facevi", "faceva", "facevamo",
    "facevate", "facevano", "feci", "facesti", "fece", "facemmo", "faceste", "fecero",
    "facessi", "facesse", "facessimo", "facessero", "facendo", "sto", "stai", "sta", "stiamo",
    "stanno", "stia", "stiate", "stiano", "starò", "starai", "starà", "staremo", "starete",
    "staranno", "starei", "staresti", "starebbe", "staremmo", "stareste", "starebbero", "stavo",
    "stavi", "stava", "stavamo", "stavate", "stavano", "stetti", "stesti", "stette", "stemmo",
    "steste", "stettero", "stessi", "stesse", "stessimo", "stessero", "stando",
};

static const char *const dutch[] = {
    "de", "en", "van", "ik", "te", "dat", "die", "in", "een", "hij", "het", "niet", "zijn",
    "is", "was", "op", "aan", "met", "als", "voor", "had", "er", "maar", "om", "hem", "dan",
    "zou", "of", "wat", "mijn", "men", "dit", "zo", "door", "over", "ze", "zich", "bij", "ook",
    "tot", "je", "mij", "uit", "der", "daar", "haar", "naar", "heb", "hoe", "heeft", "hebben",
    "deze", "u", "want", "nog", "zal", "me", "zij", "nu", "ge", "geen", "omdat", "iets",
    "worden", "toch", "al", "waren", "veel", "meer", "doen", "toen", "moet", "ben", "zonder",
    "kan", "hun", "dus", "alles", "onder", "ja", "eens", "hier", "wie", "werd", "altijd",
    "doch", "wordt", "wezen", "kunnen", "ons", "zelf", "tegen", "na", "reeds", "wil", "kon",
    "niets", "uw", "iemand", "geweest", "andere",
};

#define LIST(a) {a, sizeof(a) / sizeof(a[0])}

static const struct {
    const char *const *words;
    size_t count;
} lists[ANALYSIS_LANGUAGE_COUNT] = {
    [ANALYSIS_EN] = LIST(english), [ANALYSIS_PT] = LIST(portuguese),
    [ANALYSIS_ES] = LIST(spanish), [ANALYSIS_FR] = LIST(french),
    [ANALYSIS_DE] = LIST(german),  [ANALYSIS_IT] = LIST(italian),
    [ANALYSIS_NL] = LIST(dutch),
};

#define WORDS_MAX                                                                         \
    (sizeof(english) / sizeof(*english) + sizeof(portuguese) / sizeof(*portuguese) +      \
     sizeof(spanish) / sizeof(*spanish) + sizeof(french) / sizeof(*french) +              \
     sizeof(german) / sizeof(*german) + sizeof(italian) / sizeof(*italian) +              \
     sizeof(dutch) / sizeof(*dutch))

/* Open addressing at a load under one half: a lookup is one hash and a
 * compare or two, which matters because analysis checks every token. */
#define SLOTS 4096

typedef struct stopword {
    char word[STOPWORDS_MAX_LEN];
    unsigned char len;
    unsigned char languages;
} stopword;

static stopword words[WORDS_MAX];
static uint16_t slots[SLOTS]; /* index + 1 into words; 0 is empty */
static pthread_once_t built = PTHREAD_ONCE_INIT;

static uint32_t word_slot(const char *w, size_t len)
{
    return (uint32_t)(text_hash64(w, len, TEXT_HASH_SEED) & (SLOTS - 1));
}

static void set_add(const char *w, size_t len, analysis_language l)
{
    static size_t used;
    for (uint32_t s = word_slot(w, len);; s = (s + 1) & (SLOTS - 1)) {
        if (slots[s] == 0) {
            ad_assert(used < WORDS_MAX);
            stopword *e = &words[used++];
            memcpy(e->word, w, len);
            e->len = (unsigned char)len;
            e->languages = (unsigned char)(1u << l);
            slots[s] = (uint16_t)used;
            return;
        }
        stopword *e = &words[slots[s] - 1];
        if (e->len == len && memcmp(e->word, w, len) == 0) {
            e->languages |= (unsigned char)(1u << l);
            return;
        }
    }
}

static void set_build(void)
{
    _Static_assert(ANALYSIS_LANGUAGE_COUNT <= 8, "a language is a bit of an unsigned char");
    _Static_assert(WORDS_MAX < SLOTS / 2 && SLOTS <= UINT16_MAX, "the set's load stays low");
    for (int l = 0; l < ANALYSIS_LANGUAGE_COUNT; l++) {
        for (size_t i = 0; i < lists[l].count; i++) {
            utf8proc_uint8_t *folded = NULL;
            utf8proc_ssize_t n =
                utf8proc_map((const utf8proc_uint8_t *)lists[l].words[i], 0, &folded,
                             UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                                 UTF8PROC_CASEFOLD);
            ad_assert(n > 0 && n <= STOPWORDS_MAX_LEN);
            set_add((const char *)folded, (size_t)n, (analysis_language)l);
            free(folded);
        }
    }
}

unsigned stopwords_languages(const char *w, size_t len)
{
    if (len == 0 || len > STOPWORDS_MAX_LEN) return 0;
    pthread_once(&built, set_build);
    for (uint32_t s = word_slot(w, len); slots[s]; s = (s + 1) & (SLOTS - 1)) {
        const stopword *e = &words[slots[s] - 1];
        if (e->len == len && memcmp(e->word, w, len) == 0) return e->languages;
    }
    return 0;
}
