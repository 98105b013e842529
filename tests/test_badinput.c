/* Bad input, end to end: the clipnn program (CLIPNN_BIN, as in test_cli.c) is run on broken
 * configs, data files and checkpoints. Each case must exit 2 with a message that names the file
 * and what is wrong, must not crash (a sanitizer report would change the exit code), and must
 * not leave a run directory that looks complete (no summary.json).
 *
 * The fixtures are written by make_fixtures() into one temporary directory per test case run:
 * a small spirals MLP config (mlp.json), .npy / .csv / text files, safetensors files built
 * byte by byte, and one real checkpoint (real/, trained by the program) that some cases cut or
 * corrupt. Fuzz findings (fuzz/run.sh) become rows of the table below. */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char bin[2048], tmp[256];

static const char *at(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    return p;
}

static void put(const char *name, const void *bytes, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    FILE *f = fopen(p, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", p);
    if (n) ck_assert_int_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static void put_text(const char *name, const char *text) { put(name, text, strlen(text)); }

/* A .npy v1.0 file: header dict for descr/shape, padded to 64, then `nbytes` of data (every byte
 * `fill`); hdelta is added to the stored header length (a lying length). */
static void put_npy(const char *name, const char *descr, const char *shape, size_t nbytes, int fill, int hdelta)
{
    char h[256];
    int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    while ((10 + n + 1) % 64) h[n++] = ' ';
    h[n++] = '\n';
    size_t total = 10 + (size_t)n + nbytes;
    unsigned char *b = malloc(total);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    unsigned hl = (unsigned)(n + hdelta);
    b[8] = (unsigned char)(hl & 0xff);
    b[9] = (unsigned char)(hl >> 8);
    memcpy(b + 10, h, (size_t)n);
    memset(b + 10 + n, fill, nbytes);
    put(name, b, total);
    free(b);
}

/* A safetensors file: u64 header length (hlen_override if nonzero), the JSON header padded with
 * spaces to a multiple of 8, then `nbytes` zero bytes. */
static void put_st(const char *name, const char *header, size_t nbytes, uint64_t hlen_override)
{
    size_t hn = strlen(header), padded = (hn + 7) / 8 * 8;
    size_t total = 8 + padded + nbytes;
    unsigned char *b = calloc(1, total);
    uint64_t hl = hlen_override ? hlen_override : padded;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hl >> (8 * i));
    memcpy(b + 8, header, hn);
    memset(b + 8 + hn, ' ', padded - hn);
    put(name, b, total);
    free(b);
}

static char *slurp(const char *path, size_t *len) { return tu_slurp(path, len); }

/* Without sanitizers the program runs under a 4 GB address-space limit, so that a reader which
 * allocates what a corrupt header claims fails here (exit 1) instead of passing thanks to
 * overcommit. ASan reserves terabytes of shadow memory, so sanitized builds run unlimited. */
#if defined(__SANITIZE_ADDRESS__)
#define MEM_LIMIT ""
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_LIMIT ""
#endif
#endif
#ifndef MEM_LIMIT
#define MEM_LIMIT "ulimit -v 4000000 && "
#endif

/* Runs `cd tmp && clipnn ARGS`; returns the exit code (128 + signal if killed); stdout+stderr in out. */
static int run(char *out, size_t n, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && rm -rf o && " MEM_LIMIT "'%s' %s 2>&1", tmp, bin, args);
    return tu_shell(out, n, cmd);
}

/* The model of mlp.json: linear 2->8, tanh, linear 8->2 (tensor sizes 64 + 32 + 64 + 8 bytes). */
#define MLP_TENSORS(w0) \
    "\"0.weight\":{\"dtype\":\"" w0 "\",\"shape\":[8,2],\"data_offsets\":[0,64]}," \
    "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[64,96]}," \
    "\"2.weight\":{\"dtype\":\"F32\",\"shape\":[2,8],\"data_offsets\":[96,160]}," \
    "\"2.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[160,168]}"
#define CKPT_META "\"__metadata__\":{\"format\":\"clipnn-checkpoint\",\"format_version\":\"1\",\"step\":\"1\"},"

static const char *const mlp_model =
    "\"model\": [{\"type\": \"linear\", \"out\": 8}, {\"type\": \"tanh\"}, {\"type\": \"linear\", \"out\": 2}],"
    "\"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1},"
    "\"train\": {\"steps\": 6, \"batch_size\": 4, \"checkpoint_every\": 2}";

static void put_config(const char *name, const char *data, const char *extra)
{
    char c[2048];
    snprintf(c, sizeof c, "{\"name\": \"bad\", \"data\": %s, %s%s}\n", data, mlp_model, extra);
    put_text(name, c);
}

static void make_fixtures(void)
{
    put_config("mlp.json", "{\"kind\": \"spirals\", \"train_size\": 40, \"test_size\": 12}", "");
    /* configs */
    put_text("empty.json", "");
    ck_assert_int_eq(mkdir(at("adir"), 0777), 0);
    {
        char *c = slurp(at("mlp.json"), NULL);
        char g[4096];
        snprintf(g, sizeof g, "%s {\"x\": 1}\n", c);
        put_text("garbage.json", g);
        size_t n = strlen(c);
        c[n / 2] = 0;   /* a NUL byte inside the text */
        put("nul.json", c, n);
        free(c);
    }
    {
        char *deep = malloc(10001);
        memset(deep, '[', 10000);
        deep[10000] = 0;
        put_text("deep.json", deep);
        free(deep);
    }
    put_config("misfit.json", "{\"kind\": \"spirals\", \"classes\": 3, \"train_size\": 30}", "");
    put_config("wrongloss.json", "{\"kind\": \"sine\", \"seq_len\": 4, \"train_size\": 8}", "");
    /* npy: good y (4 int64 labels, all 0) and broken x files */
    put_npy("y.npy", "<i8", "(4,)", 32, 0, 0);
    put_npy("y3.npy", "<i8", "(3,)", 24, 0, 0);
    put_npy("x.npy", "<f4", "(4, 2)", 32, 0, 0);
    put_npy("trunc.npy", "<f4", "(4, 2)", 20, 0, 0);
    put_npy("hlen.npy", "<f4", "(4, 2)", 0, 0, 5000);
    put_npy("huge.npy", "<f4", "(4000000000, 2000000000)", 0, 0, 0);
    put_npy("bigshape.npy", "<f4", "(1000, 1000)", 32, 0, 0);
    put_npy("c8.npy", "<c8", "(4, 2)", 64, 0, 0);
    put_npy("nan.npy", "<f4", "(4, 2)", 32, 0xff, 0);
    put_text("empty.npy", "");
    put_text("text.npy", "x,y\n1,2\n");
    const char *npys[] = {"trunc", "hlen", "huge", "bigshape", "c8", "nan", "empty", "text", "missing", "adir"};
    for (size_t i = 0; i < sizeof npys / sizeof npys[0]; i++) {
        char name[64], data[256];
        snprintf(name, sizeof name, "npy_%s.json", npys[i]);
        snprintf(data, sizeof data, "{\"kind\": \"npy\", \"x\": \"%s%s\", \"y\": \"y.npy\"}", npys[i],
                 strcmp(npys[i], "adir") ? ".npy" : "");
        put_config(name, data, "");
    }
    put_config("npy_ylen.json", "{\"kind\": \"npy\", \"x\": \"x.npy\", \"y\": \"y3.npy\"}", "");
    /* fuzz findings, committed under tests/badinput/ */
    const char *found[] = {"fuzz_npy_oom.npy"};
    for (size_t i = 0; i < sizeof found / sizeof found[0]; i++) {
        char src[256], name[64], data[256];
        snprintf(src, sizeof src, "badinput/%s", found[i]);
        size_t n;
        char *b = slurp(src, &n);
        ck_assert_msg(b != NULL, "missing fixture %s", src);
        put(found[i], b, n);
        free(b);
        snprintf(name, sizeof name, "npy_%s.json", found[i]);
        snprintf(data, sizeof data, "{\"kind\": \"npy\", \"x\": \"%s\", \"y\": \"y.npy\"}", found[i]);
        put_config(name, data, "");
    }
    /* csv */
    put_text("ragged.csv", "a,b,y\n1,2,0\n3,4\n");
    put_text("nonnum.csv", "a,b,y\n1,2,0\n1,zz,1\n");
    put_text("empty.csv", "");
    put_text("notarget.csv", "a,b,c\n1,2,0\n");
    put_text("badlabel.csv", "a,b,y\n1,2,0\n1,2,0.5\n");
    const char *csvs[] = {"ragged", "nonnum", "empty", "notarget", "badlabel", "missing"};
    for (size_t i = 0; i < sizeof csvs / sizeof csvs[0]; i++) {
        char name[64], data[256];
        snprintf(name, sizeof name, "csv_%s.json", csvs[i]);
        snprintf(data, sizeof data, "{\"kind\": \"csv\", \"path\": \"%s.csv\", \"target\": \"y\", \"target_kind\": \"class\"}", csvs[i]);
        put_config(name, data, "");
    }
    /* text: bytes 1..255 (invalid UTF-8 included) must work; NUL bytes or an empty file must not */
    {
        unsigned char t[2000];
        for (int i = 0; i < 2000; i++) t[i] = (unsigned char)(1 + (i * 7) % 255);
        put("latin1.txt", t, sizeof t);
        t[100] = 0;
        put("nul.txt", t, sizeof t);
    }
    put_text("empty.txt", "");
    put_text("short.txt", "abc");
    const char *texts[] = {"latin1", "nul", "empty", "short", "missing"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char name[64], c[1024];
        snprintf(name, sizeof name, "text_%s.json", texts[i]);
        snprintf(c, sizeof c,
                 "{\"data\": {\"kind\": \"text\", \"path\": \"%s.txt\", \"seq_len\": 8},"
                 " \"model\": [{\"type\": \"embedding\", \"vocab\": 256, \"dim\": 4},"
                 " {\"type\": \"rnn\", \"hidden\": 8, \"output\": \"sequence\"}, {\"type\": \"linear\", \"out\": 256}],"
                 " \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01},"
                 " \"train\": {\"steps\": 4, \"batch_size\": 4}}\n", texts[i]);
        put_text(name, c);
    }
    /* safetensors */
    put_st("good.st", "{" MLP_TENSORS("F32") "}", 168, 0);
    put_st("hlen.st", "{" CKPT_META MLP_TENSORS("F32") "}", 168, 1000000);
    put_st("overlap.st", "{" CKPT_META
           "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[8,2],\"data_offsets\":[0,64]},"
           "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[60,92]},"
           "\"2.weight\":{\"dtype\":\"F32\",\"shape\":[2,8],\"data_offsets\":[92,156]},"
           "\"2.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[156,164]}}", 164, 0);
    put_st("dtype.st", "{" CKPT_META
           "\"0.weight\":{\"dtype\":\"F64\",\"shape\":[4,2],\"data_offsets\":[0,64]},"
           "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[64,96]},"
           "\"2.weight\":{\"dtype\":\"F32\",\"shape\":[2,8],\"data_offsets\":[96,160]},"
           "\"2.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[160,168]}}", 168, 0);
    put_st("huge.st", "{" CKPT_META
           "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,64]}}", 64, 0);
    put_st("bigshape.st", "{" CKPT_META
           "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[65536,65536],\"data_offsets\":[0,64]}}", 64, 0);
    put_st("bf16.st", "{" CKPT_META MLP_TENSORS("BF16") "}", 168, 0);
    put_st("extra.st", "{" MLP_TENSORS("F32") ",\"9.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[168,172]}}", 172, 0);
    put_text("empty.st", "");
    ck_assert_int_eq(mkdir(at("dir.st"), 0777), 0);
    const char *inits[] = {"overlap", "dtype", "hlen", "extra", "missing"};
    for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++) {
        char name[64], extra[128];
        snprintf(name, sizeof name, "init_%s.json", inits[i]);
        snprintf(extra, sizeof extra, ", \"init_from\": \"%s.st\"", inits[i]);
        put_config(name, "{\"kind\": \"spirals\", \"train_size\": 40, \"test_size\": 12}", extra);
    }
    /* a real checkpoint (step 6), then a copy cut short and one with a corrupted header length */
    char out[8192];
    int rc = run(out, sizeof out, "train mlp.json --out real --quiet");
    ck_assert_msg(rc == 0, "training the fixture checkpoint failed (%d): %s", rc, out);
    char p[512];
    snprintf(p, sizeof p, "%s/real/checkpoint.safetensors", tmp);
    size_t n;
    char *ck = slurp(p, &n);
    ck_assert_ptr_nonnull(ck);
    put("cut.st", ck, n - 13);
    put("cut_header.st", ck, 8 + 40);
    ck[3] = 0x7f;   /* header length ~ 2^31 */
    put("biglen.st", ck, n);
    free(ck);
}

static void setup(void)
{
    snprintf(bin, sizeof bin, "%s", tu_clipnn_bin());
    snprintf(tmp, sizeof tmp, "/tmp/clipnn-bad-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    make_fixtures();
}

static void teardown(void) { tu_remove_tree(tmp); }

/* args run in the fixture directory; every train case writes (or must not write) into ./o.
 * needles: the file named, and what is wrong with it. */
static const struct { const char *args; const char *file; const char *what; } cases[] = {
    /* config files */
    {"train nope.json --out o", "nope.json", "cannot open"},
    {"train empty.json --out o", "empty.json", "empty"},
    {"train adir --out o", "adir", "directory"},
    {"train garbage.json --out o", "garbage.json", "text after the end"},
    {"train deep.json --out o", "deep.json", "nested deeper"},
    {"train nul.json --out o", "nul.json", "NUL"},
    {"train misfit.json --out o", "misfit.json", "3 classes"},
    {"train wrongloss.json --out o", "wrongloss.json", "cross_entropy"},
    {"train mlp.json --out o --set model.2.out=0", "mlp.json", "model.2.out"},
    {"train mlp.json --out o --set data.kind=npy", "mlp.json", "data.train_size: unknown key"},
    /* npy */
    {"train npy_trunc.json --out o", "trunc.npy", "truncated"},
    {"train npy_hlen.json --out o", "hlen.npy", "truncated"},
    {"train npy_huge.json --out o", "huge.npy", "too large"},
    {"train npy_bigshape.json --out o", "bigshape.npy", "truncated"},
    {"train npy_c8.json --out o", "c8.npy", "unsupported dtype '<c8'"},
    {"train npy_nan.json --out o", "nan.npy", "NaN"},
    {"train npy_empty.json --out o", "empty.npy", "not a NumPy"},
    {"train npy_text.json --out o", "text.npy", "bad magic"},
    {"train npy_missing.json --out o", "missing.npy", "cannot open"},
    {"train npy_adir.json --out o", "adir", "directory"},
    {"train npy_ylen.json --out o", "y3.npy", "does not match"},
    /* fuzz/fuzz_npy.c: 138 bytes whose header claims 1.4e9 floats; the reader allocated 5.7 GB first */
    {"train npy_fuzz_npy_oom.npy.json --out o", "fuzz_npy_oom.npy", "truncated: the header's shape needs 5742091680"},
    /* csv */
    {"train csv_ragged.json --out o", "ragged.csv:3", "expected 3 fields"},
    {"train csv_nonnum.json --out o", "nonnum.csv:3", "not a number"},
    {"train csv_empty.json --out o", "empty.csv", "empty file"},
    {"train csv_notarget.json --out o", "notarget.csv", "no column named \"y\""},
    {"train csv_badlabel.json --out o", "badlabel.csv:3", "class label"},
    {"train csv_missing.json --out o", "missing.csv", "cannot open"},
    /* text */
    {"train text_nul.json --out o", "nul.txt", "NUL byte"},
    {"train text_empty.json --out o", "empty.txt", "empty"},
    {"train text_short.json --out o", "short.txt", "seq_len"},
    {"train text_missing.json --out o", "missing.txt", "cannot open"},
    /* init_from */
    {"train init_overlap.json --out o", "overlap.st", "overlap"},
    {"train init_dtype.json --out o", "dtype.st", "F64"},
    {"train init_hlen.json --out o", "hlen.st", "header length"},
    {"train init_extra.json --out o", "extra.st", "'9.weight' is not a parameter"},
    {"train init_missing.json --out o", "missing.st", "cannot open"},
    /* --resume */
    {"train mlp.json --out o --resume hlen.st", "hlen.st", "header length"},
    {"train mlp.json --out o --resume overlap.st", "overlap.st", "overlap"},
    {"train mlp.json --out o --resume dtype.st", "dtype.st", "F64"},
    {"train mlp.json --out o --resume huge.st", "huge.st", "overflows"},
    {"train mlp.json --out o --resume bigshape.st", "bigshape.st", "data_offsets"},
    {"train mlp.json --out o --resume bf16.st", "bf16.st", "BF16"},
    {"train mlp.json --out o --resume good.st", "good.st", "not a clipnn checkpoint"},
    {"train mlp.json --out o --resume cut.st", "cut.st", "truncated"},
    {"train mlp.json --out o --resume cut_header.st", "cut_header.st", "header length"},
    {"train mlp.json --out o --resume biglen.st", "biglen.st", "header length"},
    {"train mlp.json --out o --resume empty.st", "empty.st", "empty"},
    {"train mlp.json --out o --resume dir.st", "dir.st", "directory"},
    {"train mlp.json --out o --resume nope.st", "nope.st", "cannot open"},
    {"train mlp.json --out o --resume real/checkpoint.safetensors --set train.steps=3", "checkpoint.safetensors", "train.steps"},
    {"train text_latin1.json --out o --resume real/checkpoint.safetensors", "checkpoint.safetensors", "the model needs F32 [256, 4]"},
    /* eval --checkpoint */
    {"eval mlp.json --checkpoint hlen.st", "hlen.st", "header length"},
    {"eval mlp.json --checkpoint overlap.st", "overlap.st", "overlap"},
    {"eval mlp.json --checkpoint dtype.st", "dtype.st", "F64"},
    {"eval mlp.json --checkpoint huge.st", "huge.st", "overflows"},
    {"eval mlp.json --checkpoint cut.st", "cut.st", "truncated"},
    {"eval mlp.json --checkpoint empty.st", "empty.st", "empty"},
    {"eval mlp.json --checkpoint dir.st", "dir.st", "directory"},
    {"eval mlp.json --checkpoint nope.st", "nope.st", "cannot open"},
    {"eval text_latin1.json --checkpoint real/checkpoint.safetensors", "checkpoint.safetensors", "the model needs F32 [256, 4]"},
    {"sample text_latin1.json --checkpoint cut.st", "cut.st", "truncated"},
};

START_TEST(bad_input_exits_2_names_the_file_and_writes_no_run)
{
    char out[16384];
    int rc = run(out, sizeof out, "%s", cases[_i].args);
    ck_assert_msg(rc == 2, "'%s' exited %d (want 2): %s", cases[_i].args, rc, out);
    ck_assert_msg(strstr(out, cases[_i].file) != NULL, "'%s': message does not name '%s': %s", cases[_i].args,
                  cases[_i].file, out);
    ck_assert_msg(strstr(out, cases[_i].what) != NULL, "'%s': message lacks '%s': %s", cases[_i].args,
                  cases[_i].what, out);
    ck_assert_msg(strstr(out, "clipnn: error:") != NULL || strstr(out, "usage:") != NULL, "'%s': %s", cases[_i].args, out);
    ck_assert_msg(!strstr(out, "Sanitizer") && !strstr(out, "runtime error"), "'%s': %s", cases[_i].args, out);
    char p[512];
    snprintf(p, sizeof p, "%s/o/summary.json", tmp);
    ck_assert_msg(access(p, F_OK) != 0, "'%s' wrote %s", cases[_i].args, p);
}
END_TEST

START_TEST(text_that_is_not_utf8_trains)
{
    char out[16384], p[512];
    int rc = run(out, sizeof out, "train text_latin1.json --out o --quiet");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(p, sizeof p, "%s/o/summary.json", tmp);
    ck_assert_msg(access(p, F_OK) == 0, "no summary.json: %s", out);
    /* and the checkpoint samples (its vocabulary holds bytes >= 0x80) */
    rc = run(out, sizeof out, "train text_latin1.json --out t --quiet && '%s' sample text_latin1.json --checkpoint "
                              "t/checkpoint.safetensors --length 20", bin);
    ck_assert_msg(rc == 0, "sample exit %d: %s", rc, out);
}
END_TEST

Suite *suite_badinput(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc = tcase_create("cli");
    /* the fixtures are made once per test case: the table runs in one forked test each */
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, bad_input_exits_2_names_the_file_and_writes_no_run, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, text_that_is_not_utf8_trains);
    suite_add_tcase(s, tc);
    return s;
}
