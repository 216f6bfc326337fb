#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void mem_oom(size_t n)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
    abort();
}

void *ad_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) mem_oom(n);
    return p;
}

void *ad_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) mem_oom(count * size);
    return p;
}

void *ad_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) mem_oom(n);
    return q;
}

char *ad_strndup(const char *s, size_t n)
{
    char *p = ad_malloc(ad_size_add(n, 1));
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ad_strdup(const char *s)
{
    return ad_strndup(s, strlen(s));
}

size_t ad_size_add(size_t a, size_t b)
{
    size_t r;
    if (__builtin_add_overflow(a, b, &r)) mem_oom((size_t)-1);
    return r;
}

size_t ad_size_mul(size_t a, size_t b)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) mem_oom((size_t)-1);
    return r;
}
