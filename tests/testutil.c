#include "testutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void tu_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    cn_rng r;
    cn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = cn_rng_uniform(&r, lo, hi);
}

const char *tu_fixture(const char *rel)
{
    static _Thread_local char buf[512];
    snprintf(buf, sizeof buf, "%s", rel);
    return buf;
}

const char *tu_clipnn_bin(void)
{
    static char bin[2048];
    const char *b = getenv("CLIPNN_BIN");
    if (!b) b = "../build/clipnn";
    if (b[0] == '/') {
        snprintf(bin, sizeof bin, "%s", b);
    } else {
        char cwd[1024];
        ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
        ck_assert(strlen(cwd) + strlen(b) + 2 <= sizeof bin);
        snprintf(bin, sizeof bin, "%.1023s/%.1000s", cwd, b);
    }
    return bin;
}

int tu_shell(char *out, size_t n, const char *cmd)
{
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "cannot run: %s", cmd);
    size_t k = fread(out, 1, n - 1, p);
    out[k] = 0;
    /* drain the rest so the command is not killed by SIGPIPE */
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {}
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

char *tu_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0) { fclose(f); return NULL; }
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    size_t k = fread(s, 1, (size_t)n, f);
    s[k] = 0;
    fclose(f);
    if (len) *len = k;
    return s;
}

void tu_make_tmpdir(char *buf, size_t n, const char *base, const char *prefix)
{
    snprintf(buf, n, "%s/%s-XXXXXX", base, prefix);
    ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp %s failed", buf);
}

void tu_remove_tree(const char *dir)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%.1000s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int tu_run_clipnn(char *out, size_t n, const char *dir, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    if (dir) snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", dir, tu_clipnn_bin(), args);
    else snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", tu_clipnn_bin(), args);
    return tu_shell(out, n, cmd);
}

char *tu_tensor_bytes(const char *path, size_t *n)
{
    size_t len;
    char *s = tu_slurp(path, &len);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    ck_assert_uint_ge(len, 8);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | (unsigned char)s[i];
    ck_assert_uint_le(8 + h, len);
    *n = len - 8 - (size_t)h;
    memmove(s, s + 8 + h, *n);
    return s;
}

void tu_assert_same_tensors(const char *a, const char *b)
{
    size_t na, nb;
    char *x = tu_tensor_bytes(a, &na), *y = tu_tensor_bytes(b, &nb);
    ck_assert_msg(na == nb, "%s has %zu tensor bytes, %s %zu", a, na, b, nb);
    ck_assert_msg(memcmp(x, y, na) == 0, "tensors of %s and %s differ", a, b);
    free(x);
    free(y);
}

void tu_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}
