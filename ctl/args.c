/* agentctl's option parser (see args.h). */
#include "ctl/args.h"

#include "base/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static ctl_opt *find_opt(ctl_opt *opts, size_t nopts, const char *word, size_t len)
{
    for (size_t i = 0; i < nopts; i++) {
        if (strlen(opts[i].name) == len && !strncmp(opts[i].name, word, len)) return &opts[i];
        if (opts[i].alias && strlen(opts[i].alias) == len && !strncmp(opts[i].alias, word, len))
            return &opts[i];
    }
    return NULL;
}

static void add_value(ctl_opt *o, const char *v)
{
    size_t n = ad_size_add((size_t)o->count, 1);
    o->values = ad_realloc(o->values, ad_size_mul(n, sizeof(*o->values)));
    o->values[o->count] = v;
    o->count++;
}

int ctl_args_parse(int argc, char **argv, ctl_opt *opts, size_t nopts, ctl_args *out, ad_err *e)
{
    int options_done = 0;
    out->npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && !strcmp(a, "--")) {
            options_done = 1;
            continue;
        }
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (out->npos == CTL_ARGS_MAX_POS)
                return ad_err_set(e, AD_EINVAL, "too many arguments (at '%s')", a);
            out->pos[out->npos++] = a;
            continue;
        }
        const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        ctl_opt *o = find_opt(opts, nopts, a, len);
        if (!o) return ad_err_set(e, AD_EINVAL, "unknown option '%.*s'", (int)len, a);
        if (!o->takes_value) {
            if (eq) return ad_err_set(e, AD_EINVAL, "%s takes no value", o->name);
            add_value(o, "");
            continue;
        }
        if (eq) {
            add_value(o, eq + 1);
        } else {
            if (i + 1 >= argc) return ad_err_set(e, AD_EINVAL, "%.*s needs a value", (int)len, a);
            add_value(o, argv[++i]);
        }
    }
    return 0;
}

void ctl_args_cleanup(ctl_opt *opts, size_t nopts)
{
    for (size_t i = 0; i < nopts; i++) {
        free(opts[i].values);
        opts[i].values = NULL;
        opts[i].count = 0;
    }
}

ctl_opt *ctl_args_opt(ctl_opt *opts, size_t nopts, const char *name)
{
    ctl_opt *o = find_opt(opts, nopts, name, strlen(name));
    ad_assert(o);
    return o;
}

const char *ctl_args_value(ctl_opt *opts, size_t nopts, const char *name)
{
    ctl_opt *o = ctl_args_opt(opts, nopts, name);
    return o->count ? o->values[o->count - 1] : NULL;
}

int ctl_args_integer(const char *text, long long min, long long max, long long *out)
{
    if (!text || !*text) return AD_EINVAL;
    for (const char *p = text; *p; p++)
        if ((*p < '0' || *p > '9') && !(p == text && (*p == '-' || *p == '+'))) return AD_EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text || v < min || v > max) return AD_EINVAL;
    *out = v;
    return 0;
}
