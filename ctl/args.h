/*
 * agentctl's command-line parsing: one verb's options and positional
 * arguments, checked against a table the verb owns. Every failure is a usage
 * error whose message says exactly what is wrong.
 */
#ifndef CTL_ARGS_H
#define CTL_ARGS_H

#include "base/err.h"

#include <stddef.h>

#define CTL_ARGS_MAX_POS 8

/* One option a verb accepts. The verb fills name/alias/takes_value; the
 * parser fills count and values (owned by the option: ctl_args_cleanup). */
typedef struct ctl_opt {
    const char *name;  /* "--model" */
    const char *alias; /* "-n", or NULL */
    int takes_value;
    int count;           /* how many times it was given */
    const char **values; /* each value given, in order (count of them) */
} ctl_opt;

/* The positional arguments (pointers into argv) after parsing. */
typedef struct ctl_args {
    const char *pos[CTL_ARGS_MAX_POS];
    int npos;
} ctl_args;

/* Parses argv[0..argc) into `opts` and `out`. "--name=value" and "--name
 * value" both work; a value may start with '-' ("-n -3" reaches the verb's
 * own check); "--" ends the options; "-" alone is positional. Returns 0, or
 * AD_EINVAL with the message in `e` (an unknown option, a missing value, too
 * many arguments). */
int ctl_args_parse(int argc, char **argv, ctl_opt *opts, size_t nopts, ctl_args *out, ad_err *e);

/* Frees the value arrays the parser allocated. */
void ctl_args_cleanup(ctl_opt *opts, size_t nopts);

/* The option named `name` in the table (it must be there). */
ctl_opt *ctl_args_opt(ctl_opt *opts, size_t nopts, const char *name);

/* The last value given for `name`, or NULL when it was not given. */
const char *ctl_args_value(ctl_opt *opts, size_t nopts, const char *name);

/* Parses `text` as a whole decimal integer in [min, max]; 0 or AD_EINVAL
 * ("-n must be a positive integer, got 'abc'" is the caller's wording: this
 * only says whether it is one). */
int ctl_args_integer(const char *text, long long min, long long max, long long *out);

#endif
