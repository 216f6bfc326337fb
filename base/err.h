/*
 * The one error convention of agentd.
 *
 * A function that can fail returns 0 on success or one of the negative AD_E*
 * codes below. When the caller needs words for a human, the function takes an
 * `ad_err *` as its last argument and fills it (a NULL `ad_err *` is allowed
 * and means "I only want the code"). A message never contains a secret.
 *
 * Out-of-memory is not an error code: base/mem.h aborts the process in one place.
 */
#ifndef AD_ERR_H
#define AD_ERR_H

#include <stddef.h>

enum {
    AD_OK = 0,
    AD_EINVAL = -1,   /* the input is wrong; the message says which field */
    AD_ENOTFOUND = -2,
    AD_EEXIST = -3,
    AD_EBUSY = -4,    /* the database is busy (lock contention); retrying may succeed */
    AD_ESTATE = -5,   /* the object is not in a state that allows this */
    AD_ETOOBIG = -6,
    AD_EIO = -7,      /* storage or file-system failure */
    AD_ECANCELLED = -8,
    AD_EUPSTREAM = -9,
    AD_EINTERNAL = -10,
    AD_ECONFLICT = -11, /* a conflicting operation is running (a job, a run, another agentd) */
    AD_EUNAVAILABLE = -12 /* the database server cannot be reached; retrying later may succeed */
};

#define AD_ERR_MSG_MAX 512

/* Caller-owned error detail; `code` repeats the returned code for convenience. */
typedef struct ad_err {
    int code;
    char msg[AD_ERR_MSG_MAX];
} ad_err;

/* Sets `e` (if not NULL) to `code` and a printf-style message; returns `code`,
 * so a failing path reads `return ad_err_set(e, AD_EINVAL, "...")`. */
int ad_err_set(ad_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short snake_case name for a code, e.g. "not_found". */
const char *ad_err_name(int code);

/* Assertion for invariants, kept in release builds, with file and line. */
#define ad_assert(cond) \
    ((cond) ? (void)0 : ad_assert_fail(#cond, __FILE__, __LINE__))
_Noreturn void ad_assert_fail(const char *expr, const char *file, int line);

#endif
