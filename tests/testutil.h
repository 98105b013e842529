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

/* ---- end-to-end helpers (tests that run the clipnn program) ---- */
/* Absolute path of the program: $CLIPNN_BIN (set by `make test`), else ../build/clipnn. */
const char *tu_clipnn_bin(void);
/* Runs a shell command, stdout+stderr into out (NUL-terminated); returns the exit code,
 * 128 + signal if it was killed. */
int tu_shell(char *out, size_t n, const char *cmd);
/* Runs the program with args (a printf format giving a shell fragment), from directory dir when dir is not
 * NULL; stdout+stderr into out (NUL-terminated). Returns the exit code as tu_shell does. */
int tu_run_clipnn(char *out, size_t n, const char *dir, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The tensor bytes of a safetensors file (everything after its header), malloc'd, their count in *n;
 * fails the test if the file does not read. */
char *tu_tensor_bytes(const char *path, size_t *n);
/* Writes text to path (replacing it); fails the test if the file cannot be opened. */
void tu_write_text(const char *path, const char *text);
/* Fails the test unless two safetensors files hold the same tensor bytes. */
void tu_assert_same_tensors(const char *a, const char *b);
/* A whole file, NUL-terminated (free it); NULL if it cannot be read. *len may be NULL. */
char *tu_slurp(const char *path, size_t *len);
/* mkdtemp under base ("/tmp", "/dev/shm") with the given name prefix, into buf. */
void tu_make_tmpdir(char *buf, size_t n, const char *base, const char *prefix);
void tu_remove_tree(const char *dir);

#endif
