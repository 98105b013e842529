#include "tensor/core.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char errbuf[1024];

/* Both format into a local buffer first: the arguments may point into errbuf
 * (cn_error(st, "%s: %s", path, cn_errmsg()) is the normal way to add context),
 * and vsnprintf with overlapping source and destination is undefined. */
cn_status cn_error(cn_status st, const char *fmt, ...)
{
    char tmp[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(errbuf, tmp, sizeof errbuf);
    return st;
}

cn_status cn_error_prefix(cn_status st, const char *fmt, ...)
{
    char tmp[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k >= 0 && (size_t)k + 2 < sizeof tmp) {
        /* "prefix: old", the old message truncated to fit */
        size_t room = sizeof tmp - (size_t)k;
        memcpy(tmp + k, ": ", 2);
        size_t n = strlen(errbuf);
        if (n > room - 3) n = room - 3;
        memcpy(tmp + k + 2, errbuf, n);
        tmp[(size_t)k + 2 + n] = 0;
    }
    memcpy(errbuf, tmp, sizeof errbuf);
    return st;
}

const char *cn_errmsg(void) { return errbuf[0] ? errbuf : "no error"; }
void cn_error_clear(void) { errbuf[0] = 0; }

const char *cn_status_name(cn_status st)
{
    switch (st) {
    case CN_OK: return "ok";
    case CN_ERR_ARG: return "invalid argument";
    case CN_ERR_SHAPE: return "shape mismatch";
    case CN_ERR_NOMEM: return "out of memory";
    case CN_ERR_IO: return "I/O error";
    case CN_ERR_FORMAT: return "malformed input";
    case CN_ERR_NONFINITE: return "non-finite value";
    case CN_ERR_STATE: return "invalid state";
    }
    return "unknown error";
}

static atomic_uint_least64_t n_allocs;
static atomic_uint_least64_t fail_countdown;

/* Returns 1 when this allocation must fail (failure injection for tests). */
static int inject_failure(void)
{
    uint64_t k = atomic_load(&fail_countdown);
    while (k > 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &k, k - 1))
            return k == 1;
    }
    return 0;
}

void *cn_malloc(size_t n)
{
    if (inject_failure()) return NULL;
    void *p = malloc(n ? n : 1);
    if (p) atomic_fetch_add(&n_allocs, 1);
    return p;
}

void *cn_calloc(size_t count, size_t size)
{
    if (inject_failure()) return NULL;
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p) atomic_fetch_add(&n_allocs, 1);
    return p;
}

void *cn_realloc(void *p, size_t n)
{
    if (inject_failure()) return NULL;
    void *q = realloc(p, n ? n : 1);
    if (q) atomic_fetch_add(&n_allocs, 1);
    return q;
}

void cn_free(void *p) { free(p); }

void *cn_malloc_aligned(size_t n)
{
    if (inject_failure()) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? (n + 63) / 64 * 64 : 64) != 0) return NULL;
    atomic_fetch_add(&n_allocs, 1);
    return p;
}

void cn_free_aligned(void *p) { free(p); }

char *cn_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = cn_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

uint64_t cn_alloc_count(void) { return atomic_load(&n_allocs); }
void cn_alloc_fail_at(uint64_t k) { atomic_store(&fail_countdown, k); }

const char *cn_fmt_g(char *buf, size_t n, double v, int digits)
{
    if (isnan(v)) snprintf(buf, n, "nan");
    else if (isinf(v)) snprintf(buf, n, v > 0 ? "inf" : "-inf");
    else if (digits > 0) snprintf(buf, n, "%.*g", digits, v);
    else
        for (int d = 15; d <= 17; d++) {
            snprintf(buf, n, "%.*g", d, v);
            if (strtod(buf, NULL) == v) break;
        }
    return buf;
}
