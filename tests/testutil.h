/* Helpers shared by the Check suites. */
#ifndef CN_TESTUTIL_H
#define CN_TESTUTIL_H

#include <check.h>
#include <math.h>
#include "clipnn.h"

/* Asserts |a - b| <= tol (NaN fails). */
#define ck_assert_near(a, b, tol) do { \
    double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol); \
    ck_assert_msg(fabs(a_ - b_) <= t_, "%s = %.9g, expected %.9g (tol %.3g)", #a, a_, b_, t_); \
} while (0)

/* Asserts a call returned CN_OK, printing the library's message otherwise. */
#define ck_assert_ok(expr) do { \
    cn_status s_ = (expr); \
    ck_assert_msg(s_ == CN_OK, "%s failed: %s", #expr, cn_errmsg()); \
} while (0)

/* Fills x with uniform values in [lo, hi) from a fixed seed. */
void tu_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);
/* Path of a fixture under tests/ (tests run with tests/ as working directory). */
const char *tu_fixture(const char *rel);

#endif
