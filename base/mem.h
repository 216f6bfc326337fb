/*
 * Allocation that never returns NULL: out-of-memory aborts the process here,
 * in one place, instead of being checked ad hoc at every call site.
 * Size arithmetic goes through ad_size_add/ad_size_mul, which abort on overflow
 * the same way; input must be bounded before it reaches them.
 */
#ifndef AD_MEM_H
#define AD_MEM_H

#include <stddef.h>

void *ad_malloc(size_t n);
void *ad_calloc(size_t count, size_t size);
/* May move the block: the old pointer is gone, use the returned one. */
void *ad_realloc(void *p, size_t n);
char *ad_strdup(const char *s);
char *ad_strndup(const char *s, size_t n);

/* Checked size arithmetic; aborts on overflow. */
size_t ad_size_add(size_t a, size_t b);
size_t ad_size_mul(size_t a, size_t b);

#endif
