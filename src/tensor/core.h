/* clipnn core: status codes, error messages and the checked allocator.
 *
 * Library functions return a cn_status (0 = CN_OK) and never abort; the message
 * of the last error on the calling thread is in cn_errmsg(). Programs decide
 * whether to exit. All heap memory goes through cn_malloc/cn_free so that the
 * number of allocations can be counted (the training step must not allocate once
 * sized) and failures can be injected in tests. */
#ifndef CN_CORE_H
#define CN_CORE_H

#include <stddef.h>
#include <stdint.h>

#define CN_VERSION "0.1.0"

/* In the option structs of the C constructors (cn_optim_new, cn_clip_new, cn_model_new) a field left 0
 * takes the default of its JSON key, so `&(cn_optim_opts){.type = CN_OPTIM_ADAM}` is Adam with PyTorch's
 * defaults. CN_ZERO asks for an actual 0 where the default is not 0 (norm eps 0: the TF/Optax rule;
 * AdamW weight_decay 0; autoclip percentile 0). No valid option value is negative. */
#define CN_ZERO (-1.0)

typedef enum {
    CN_OK = 0,
    CN_ERR_ARG,       /* a bad argument or value (config, command line)        */
    CN_ERR_SHAPE,     /* tensor shapes that do not fit together                */
    CN_ERR_NOMEM,     /* allocation failed                                     */
    CN_ERR_IO,        /* a file could not be read or written                   */
    CN_ERR_FORMAT,    /* a file was read but its content is malformed          */
    CN_ERR_NONFINITE, /* NaN or Inf where a finite number is required          */
    CN_ERR_STATE      /* an object used in the wrong state                     */
} cn_status;

/* Sets the thread's error message (printf-style) and returns `st`. */
cn_status cn_error(cn_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prepends "prefix: " to the current message (to add context such as a file name). */
cn_status cn_error_prefix(cn_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *cn_errmsg(void);
void cn_error_clear(void);
const char *cn_status_name(cn_status st);
/* A double as text with `digits` significant digits (%.*g; 0: the fewest, 15 to 17, that read back as
 * the same double), non-finite values as "nan", "inf" and "-inf": printf writes a NaN with its sign
 * bit set as "-nan" (glibc), and the sign of a NaN carries no meaning. Returns buf, for use inside a
 * printf argument list. */
const char *cn_fmt_g(char *buf, size_t n, double v, int digits);

/* Checked allocation. cn_malloc(0) returns a unique non-NULL pointer. */
void *cn_malloc(size_t n);
void *cn_calloc(size_t count, size_t size);
void *cn_realloc(void *p, size_t n);
void  cn_free(void *p);
/* 64-byte aligned block (for tensor data); free with cn_free_aligned. */
void *cn_malloc_aligned(size_t n);
void  cn_free_aligned(void *p);
char *cn_strdup(const char *s);

/* Number of successful allocations since start (all threads). */
uint64_t cn_alloc_count(void);
/* Testing: make the k-th allocation from now fail (k >= 1); 0 disables. */
void cn_alloc_fail_at(uint64_t k);

#endif
