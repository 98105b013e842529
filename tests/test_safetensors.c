/* safetensors reader/writer: round trips, the exact byte layout, every malformed
 * input the reader must refuse (each with the message it must give), and the
 * atomic-write guarantees. Bad files are written byte by byte into a fresh
 * directory under /tmp. */
#include "testutil.h"
#include "io/safetensors.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

static char tdir[64];

static void setup(void)
{
    strcpy(tdir, "/tmp/cn_st_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tdir));
}

/* Removes the directory tree made by setup (one level of subdirectories). */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) { chmod(p, 0755); rm_tree(p); }
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void teardown(void) { rm_tree(tdir); }

static const char *tpath(const char *name)
{
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tdir, name);
    return p[k];
}

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Writes 8-byte LE length of `header`, the header, then dlen bytes of data
 * (a ramp 0, 1, 2, ... when data is NULL). Returns the path. */
static const char *write_st(const char *name, const char *header, const void *data, size_t dlen)
{
    size_t hn = strlen(header);
    size_t n = 8 + hn + dlen;
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hn >> (8 * i));
    memcpy(b + 8, header, hn);
    for (size_t i = 0; i < dlen; i++) b[8 + hn + i] = data ? ((const unsigned char *)data)[i] : (unsigned char)i;
    const char *p = tpath(name);
    write_bytes(p, b, n);
    free(b);
    return p;
}

/* Reads `path`, expects status `want`, no file object, and a message naming the
 * file and containing each of the (up to two) fragments. */
static void expect_fail(const char *path, cn_status want, const char *frag1, const char *frag2)
{
    cn_st_file *f = (cn_st_file *)1;
    cn_status st = cn_st_read(path, &f);
    const char *m = cn_errmsg();
    ck_assert_msg(st == want, "status %s, expected %s (message: %s)", cn_status_name(st), cn_status_name(want), m);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(m, path) != NULL, "message does not name the file: %s", m);
    if (frag1) ck_assert_msg(strstr(m, frag1) != NULL, "message lacks \"%s\": %s", frag1, m);
    if (frag2) ck_assert_msg(strstr(m, frag2) != NULL, "message lacks \"%s\": %s", frag2, m);
}

static void expect_format(const char *header, size_t dlen, const char *frag1, const char *frag2)
{
    expect_fail(write_st("bad.safetensors", header, NULL, dlen), CN_ERR_FORMAT, frag1, frag2);
}

/* Number of entries in tdir (besides . and ..). */
static int dir_entries(const char *dir, char *first, size_t n)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int k = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (k++ == 0 && first) snprintf(first, n, "%s", e->d_name);
    }
    closedir(d);
    return k;
}

static size_t slurp(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* --------------------------------------------------------------- round trip */

START_TEST(round_trip_all_dtypes_bit_exact)
{
    float f32[6] = {1.5f, -0.0f, 3.25e-38f, NAN, INFINITY, -1e30f};
    double f64[4] = {1.0 / 3.0, -2.5e300, 0.0, -INFINITY};
    int32_t i32[4] = {INT32_MIN, -1, 0, INT32_MAX};
    int64_t i64[3] = {INT64_MIN, 1234567890123456789LL, INT64_MAX};
    cn_state s;
    cn_state_init(&s);
    ck_assert_ok(cn_state_add(&s, "0.weight", CN_DT_F32, 2, (int64_t[]){2, 3}, f32));
    ck_assert_ok(cn_state_add(&s, "optim.step_f64", CN_DT_F64, 1, (int64_t[]){4}, f64));
    ck_assert_ok(cn_state_add(&s, "clip.hist", CN_DT_I32, 4, (int64_t[]){1, 2, 1, 2}, i32));
    ck_assert_ok(cn_state_add(&s, "rng", CN_DT_I64, 1, (int64_t[]){3}, i64));
    const char *p = tpath("rt.safetensors");
    ck_assert_ok(cn_st_write(p, &s, NULL));

    cn_st_file *f;
    ck_assert_ok(cn_st_read(p, &f));
    const cn_state *r = cn_st_tensors(f);
    ck_assert_int_eq(r->count, 4);
    for (int i = 0; i < 4; i++) {
        const cn_state_item *a = &s.items[i], *b = &r->items[i];
        ck_assert_str_eq(a->name, b->name);    /* header order = write order */
        ck_assert_int_eq(a->dtype, b->dtype);
        ck_assert_int_eq(a->ndim, b->ndim);
        for (int d = 0; d < a->ndim; d++) ck_assert_int_eq(a->shape[d], b->shape[d]);
        size_t nb = cn_state_item_numel(a) * cn_dtype_size(a->dtype);
        ck_assert_msg(memcmp(a->data, b->data, nb) == 0, "data of %s differs", a->name);
        ck_assert_uint_eq((uintptr_t)b->data % cn_dtype_size(b->dtype), 0);
    }
    /* A file with no __metadata__ still has an (empty) metadata object. */
    ck_assert_ptr_nonnull(cn_st_metadata(f));
    ck_assert_ptr_null(cn_st_metadata(f)->child);
    ck_assert_ptr_null(cn_st_meta(f, "step"));
    cn_st_close(f);
    cn_state_free(&s);
}
END_TEST

START_TEST(round_trip_scalar_shape_has_one_element)
{
    float x = 42.5f;
    int64_t step = 7;
    cn_state s;
    cn_state_init(&s);
    ck_assert_ok(cn_state_add(&s, "scalar", CN_DT_F32, 0, NULL, &x));
    ck_assert_ok(cn_state_add(&s, "step", CN_DT_I64, 0, NULL, &step));
    const char *p = tpath("scalar.safetensors");
    ck_assert_ok(cn_st_write(p, &s, NULL));
    cn_st_file *f;
    ck_assert_ok(cn_st_read(p, &f));
    const cn_state_item *a = cn_state_find(cn_st_tensors(f), "scalar");
    const cn_state_item *b = cn_state_find(cn_st_tensors(f), "step");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(a->ndim, 0);
    ck_assert_uint_eq(cn_state_item_numel(a), 1);
    ck_assert_float_eq(*(const float *)a->data, 42.5f);
    ck_assert_int_eq(*(const int64_t *)b->data, 7);
    cn_st_close(f);
    cn_state_free(&s);
}
END_TEST

START_TEST(round_trip_metadata_strings)
{
    float w[2] = {1, 2};
    cn_state s;
    cn_state_init(&s);
    ck_assert_ok(cn_state_add(&s, "w", CN_DT_F32, 1, (int64_t[]){2}, w));
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "format_version", "1");
    cJSON_AddStringToObject(m, "config", "{\"name\": \"q\\\"uote\",\n\t\"x\": 1}");   /* quotes, escapes, control chars */
    cJSON_AddStringToObject(m, "unicode", "\xc3\xa9t\xc3\xa9 \xe2\x88\x87");
    cJSON_AddStringToObject(m, "empty", "");
    const char *p = tpath("meta.safetensors");
    ck_assert_ok(cn_st_write(p, &s, m));
    cn_st_file *f;
    ck_assert_ok(cn_st_read(p, &f));
    for (const cJSON *c = m->child; c; c = c->next) {
        const char *v = cn_st_meta(f, c->string);
        ck_assert_msg(v != NULL, "metadata %s missing", c->string);
        ck_assert_str_eq(v, c->valuestring);
    }
    ck_assert_int_eq(cJSON_GetArraySize(cn_st_metadata(f)), 4);
    ck_assert_ptr_null(cn_st_meta(f, "absent"));
    cn_st_close(f);
    cJSON_Delete(m);
    cn_state_free(&s);
}
END_TEST

START_TEST(round_trip_empty_state_and_zero_size_tensor)
{
    cn_state s;
    cn_state_init(&s);
    const char *p = tpath("empty.safetensors");
    ck_assert_ok(cn_st_write(p, &s, NULL));
    unsigned char b[64];
    ck_assert_uint_eq(slurp(p, b, sizeof b), 16);   /* 8 + "{}" padded to 8 */
    ck_assert(memcmp(b, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
    cn_st_file *f;
    ck_assert_ok(cn_st_read(p, &f));
    ck_assert_int_eq(cn_st_tensors(f)->count, 0);
    cn_st_close(f);

    float one = 1;
    ck_assert_ok(cn_state_add(&s, "none", CN_DT_F32, 2, (int64_t[]){0, 5}, NULL));
    ck_assert_ok(cn_state_add(&s, "one", CN_DT_F32, 1, (int64_t[]){1}, &one));
    ck_assert_ok(cn_st_write(p, &s, NULL));
    ck_assert_ok(cn_st_read(p, &f));
    ck_assert_int_eq(cn_st_tensors(f)->count, 2);
    ck_assert_uint_eq(cn_state_item_numel(&cn_st_tensors(f)->items[0]), 0);
    ck_assert_float_eq(*(const float *)cn_st_tensors(f)->items[1].data, 1.0f);
    cn_st_close(f);
    cn_state_free(&s);
}
END_TEST

/* The exact bytes for a tiny file, written by hand from the format description:
 * u64 LE header length 88, compact JSON with __metadata__ first, 3 spaces of
 * padding to a multiple of 8, then 1.0f and -2.0f little-endian. */
START_TEST(header_bytes_match_hand_written_layout)
{
    static const char expected[] =
        "\x58\x00\x00\x00\x00\x00\x00\x00"
        "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   "
        "\x00\x00\x80\x3f\x00\x00\x00\xc0";
    float a[2] = {1.0f, -2.0f};
    cn_state s;
    cn_state_init(&s);
    ck_assert_ok(cn_state_add(&s, "a", CN_DT_F32, 1, (int64_t[]){2}, a));
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "format", "pt");
    const char *p = tpath("tiny.safetensors");
    ck_assert_ok(cn_st_write(p, &s, m));
    unsigned char b[256];
    size_t n = slurp(p, b, sizeof b);
    ck_assert_uint_eq(n, sizeof expected - 1);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(b[i] == (unsigned char)expected[i], "byte %zu is 0x%02x, expected 0x%02x", i, b[i], (unsigned char)expected[i]);
    cJSON_Delete(m);
    cn_state_free(&s);
}
END_TEST

START_TEST(header_of_every_written_file_is_padded_to_8)
{
    float x[3] = {0};
    cn_state s;
    cn_state_init(&s);
    const char *p = tpath("pad.safetensors");
    char name[16] = "";
    for (int len = 1; len <= 9; len++) {
        cn_state_free(&s);
        cn_state_init(&s);
        name[len - 1] = 'n';   /* names of growing length shift the header length */
        ck_assert_ok(cn_state_add(&s, name, CN_DT_F32, 1, (int64_t[]){3}, x));
        ck_assert_ok(cn_st_write(p, &s, NULL));
        unsigned char b[128];
        size_t n = slurp(p, b, sizeof b);
        ck_assert_uint_eq(b[0] % 8, 0);
        ck_assert_uint_eq(n, 8 + (size_t)b[0] + 12);
        /* The JSON ends at the last '}'; only 0..7 spaces may follow it. */
        size_t end = 8 + (size_t)b[0];
        while (end > 8 && b[end - 1] == ' ') end--;
        ck_assert_int_eq(b[end - 1], '}');
        ck_assert_uint_lt(8 + (size_t)b[0] - end, 8);
    }
    cn_state_free(&s);
}
END_TEST

/* Reference writers order data by dtype, not by header key; offsets need not be
 * aligned. The reader must accept both and still hand out aligned views. */
START_TEST(read_accepts_data_order_unlike_header_order_and_misaligned_offsets)
{
    unsigned char data[12];
    int32_t i = -7;
    double d = 0.1;
    memcpy(data, &i, 4);
    memcpy(data + 4, &d, 8);   /* the F64 starts at offset 4: misaligned */
    const char *p = write_st("order.safetensors",
        "{\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[4,12]},"
        " \"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}  \n", data, sizeof data);
    cn_st_file *f;
    ck_assert_ok(cn_st_read(p, &f));
    const cn_state *t = cn_st_tensors(f);
    ck_assert_int_eq(t->count, 2);
    ck_assert_str_eq(t->items[0].name, "d");   /* header order */
    ck_assert_uint_eq((uintptr_t)t->items[0].data % 8, 0);
    ck_assert(*(const double *)t->items[0].data == 0.1);
    ck_assert_int_eq(*(const int32_t *)t->items[1].data, -7);
    cn_st_close(f);
}
END_TEST

START_TEST(read_buffer_gives_same_result_as_file)
{
    float w[3] = {1, 2, 3};
    cn_state s;
    cn_state_init(&s);
    ck_assert_ok(cn_state_add(&s, "w", CN_DT_F32, 1, (int64_t[]){3}, w));
    const char *p = tpath("buf.safetensors");
    ck_assert_ok(cn_st_write(p, &s, NULL));
    unsigned char b[256];
    size_t n = slurp(p, b, sizeof b);
    cn_st_file *f;
    ck_assert_ok(cn_st_read_buffer("mem", b, n, &f));
    ck_assert_float_eq(((const float *)cn_st_tensors(f)->items[0].data)[2], 3.0f);
    cn_st_close(f);
    ck_assert_int_eq(cn_st_read_buffer("mem", b, n - 1, &f), CN_ERR_FORMAT);
    ck_assert_ptr_null(f);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "mem: "));
    cn_state_free(&s);
}
END_TEST

/* Every allocation the reader makes may fail; it must then fail cleanly (ASan
 * checks for leaks in the SAN build). */
START_TEST(read_and_write_survive_each_allocation_failure)
{
    float w[3] = {1, 2, 3};
    cn_state s;
    cn_state_init(&s);
    ck_assert_ok(cn_state_add(&s, "a", CN_DT_F32, 1, (int64_t[]){3}, w));
    ck_assert_ok(cn_state_add(&s, "b", CN_DT_F32, 1, (int64_t[]){2}, w));
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "k", "v");
    const char *p = tpath("oom.safetensors");
    ck_assert_ok(cn_st_write(p, &s, m));
    int saw_nomem = 0;
    for (uint64_t k = 1; k < 40; k++) {
        cn_st_file *f = NULL;
        cn_alloc_fail_at(k);
        cn_status st = cn_st_read(p, &f);
        cn_alloc_fail_at(0);
        ck_assert_msg(st == CN_OK || st == CN_ERR_NOMEM, "k=%d: %s", (int)k, cn_errmsg());
        if (st == CN_OK) cn_st_close(f);
        else { saw_nomem = 1; ck_assert_ptr_null(f); }

        cn_alloc_fail_at(k);
        st = cn_st_write(p, &s, m);
        cn_alloc_fail_at(0);
        ck_assert_msg(st == CN_OK || st == CN_ERR_NOMEM, "write k=%d: %s", (int)k, cn_errmsg());
        ck_assert_int_eq(dir_entries(tdir, NULL, 0), 1);
    }
    ck_assert(saw_nomem);
    cJSON_Delete(m);
    cn_state_free(&s);
}
END_TEST

/* ------------------------------------------------------- malformed: framing */

START_TEST(bad_empty_file)
{
    const char *p = tpath("empty.safetensors");
    write_bytes(p, "", 0);
    expect_fail(p, CN_ERR_FORMAT, "file is empty", NULL);
}
END_TEST

START_TEST(bad_file_shorter_than_length_field)
{
    const char *p = tpath("short.safetensors");
    write_bytes(p, "\x10\0\0", 3);
    expect_fail(p, CN_ERR_FORMAT, "3 bytes", "too short");
}
END_TEST

START_TEST(bad_header_length_larger_than_file)
{
    const char *p = tpath("trunc.safetensors");
    unsigned char b[8 + 16] = {0x40, 0, 0, 0, 0, 0, 0, 0};   /* says 64, has 16 */
    memcpy(b + 8, "{}              ", 16);
    write_bytes(p, b, sizeof b);
    expect_fail(p, CN_ERR_FORMAT, "header length 64", "larger than the rest of the file (16 bytes");
}
END_TEST

START_TEST(bad_header_length_absurd)
{
    const char *p = tpath("huge.safetensors");
    unsigned char b[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};   /* 2^63 */
    write_bytes(p, b, sizeof b);
    expect_fail(p, CN_ERR_FORMAT, "header length 9223372036854775808", "limit");
}
END_TEST

START_TEST(bad_header_length_zero)
{
    const char *p = tpath("zero.safetensors");
    write_bytes(p, "\0\0\0\0\0\0\0\0", 8);
    expect_fail(p, CN_ERR_FORMAT, "header length 0", "too small");
}
END_TEST

START_TEST(bad_header_not_json)
{
    expect_format("{\"a\": {\"dtype\": \"F32\",, }}    ", 0, "header is not valid JSON", "byte");
}
END_TEST

START_TEST(bad_header_not_object)
{
    expect_format("[1, 2, 3]       ", 0, "not a JSON object", "[1, 2, 3]");
}
END_TEST

START_TEST(bad_header_trailing_garbage)
{
    expect_format("{}  x   ", 0, "unexpected characters after the header", "byte 4");
}
END_TEST

START_TEST(bad_header_invalid_utf8)
{
    expect_format("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, "not valid UTF-8", "byte 3");
}
END_TEST

START_TEST(bad_header_with_nul_byte)
{
    const char *p = tpath("nul.safetensors");
    unsigned char b[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', 0, ' ', ' ', ' ', ' '};
    write_bytes(p, b, sizeof b);
    expect_fail(p, CN_ERR_FORMAT, "NUL byte", "byte 3");
}
END_TEST

START_TEST(bad_header_escaped_nul_in_name)
{
    expect_format("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, "\\u0000", NULL);
}
END_TEST

START_TEST(bad_path_is_directory)
{
    expect_fail(tdir, CN_ERR_IO, "is a directory", NULL);
}
END_TEST

START_TEST(bad_path_missing)
{
    expect_fail(tpath("nope.safetensors"), CN_ERR_IO, "cannot open", "No such file");
}
END_TEST

/* ----------------------------------------------------- malformed: entries */

START_TEST(bad_unknown_dtype_is_named)
{
    expect_format("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "dtype \"BF16\" is not supported");
}
END_TEST

START_TEST(bad_dtype_not_string)
{
    expect_format("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "dtype must be a string");
}
END_TEST

START_TEST(bad_negative_shape_entry)
{
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': shape[1] is -1",
                  "non-negative integer");
}
END_TEST

START_TEST(bad_non_integer_shape_entry)
{
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "tensor 'w': shape[0] is 1.5",
                  "non-negative integer");
}
END_TEST

START_TEST(bad_string_shape_entry)
{
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, "tensor 'w': shape[0] is \"2\"", NULL);
}
END_TEST

START_TEST(bad_shape_not_array)
{
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "tensor 'w'", "shape must be an array");
}
END_TEST

START_TEST(bad_rank_above_four)
{
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "rank 5");
}
END_TEST

START_TEST(bad_shape_product_overflow)
{
    /* 2^32 * 2^32 * 16 overflows 64 bits; each entry alone is a valid integer. */
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4,
                  "tensor 'w'", "overflows 64 bits");
}
END_TEST

START_TEST(bad_byte_count_overflow)
{
    /* numel 2^62 fits in 64 bits, numel * 4 bytes does not. */
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,4]}}", 4,
                  "tensor 'w'", "overflows 64 bits");
}
END_TEST

START_TEST(bad_offsets_do_not_match_dtype_times_numel)
{
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12, "tensor 'w'",
                  "hold 12 bytes but F32 with 4 elements needs 16");
}
END_TEST

START_TEST(bad_offsets_out_of_order)
{
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "tensor 'w'", "out of order");
}
END_TEST

START_TEST(bad_offsets_out_of_bounds)
{
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "tensor 'w'",
                  "past the end of the data section (8 bytes");
}
END_TEST

START_TEST(bad_offsets_huge_beyond_exact_integers)
{
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1e300,4]}}", 4, "tensor 'w'",
                  "non-negative integers");
}
END_TEST

START_TEST(bad_offsets_not_a_pair)
{
    expect_format("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "tensor 'w'", "[begin, end]");
}
END_TEST

START_TEST(bad_offsets_overlap)
{
    expect_format("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "tensor 'b'", "overlap tensor 'a'");
}
END_TEST

START_TEST(bad_zero_size_tensor_inside_another)
{
    expect_format("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8, "tensor 'z'", "overlap tensor 'a'");
}
END_TEST

START_TEST(bad_gap_between_tensors)
{
    expect_format("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "tensor 'b': gap of 4 bytes",
                  "previous tensor 'a' ends at 4");
}
END_TEST

START_TEST(bad_gap_before_first_tensor)
{
    expect_format("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor 'a': gap of 4 bytes", NULL);
}
END_TEST

START_TEST(bad_bytes_after_last_tensor)
{
    expect_format("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12, "8 bytes after the end of the last tensor",
                  NULL);
}
END_TEST

START_TEST(bad_duplicate_tensor_name)
{
    expect_format("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor 'a' appears twice", NULL);
}
END_TEST

START_TEST(bad_entry_not_object)
{
    expect_format("{\"a\":[0,4]}", 0, "tensor 'a'", "expected an object");
}
END_TEST

START_TEST(bad_entry_unknown_key)
{
    expect_format("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"stride\":[1]}}", 4, "tensor 'a'",
                  "unknown key 'stride'");
}
END_TEST

START_TEST(bad_entry_missing_key)
{
    expect_format("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'a'", "missing 'shape'");
}
END_TEST

START_TEST(bad_entry_duplicate_key)
{
    expect_format("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a'",
                  "key 'dtype' appears twice");
}
END_TEST

/* ---------------------------------------------------- malformed: metadata */

START_TEST(bad_metadata_value_not_string)
{
    expect_format("{\"__metadata__\":{\"format\":\"pt\",\"step\":3}}", 0, "__metadata__ 'step'", "must be a string, got 3");
}
END_TEST

START_TEST(bad_metadata_not_object)
{
    expect_format("{\"__metadata__\":\"v1\"}", 0, "__metadata__ must be an object", NULL);
}
END_TEST

START_TEST(bad_metadata_twice)
{
    expect_format("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ appears twice", NULL);
}
END_TEST

START_TEST(bad_metadata_duplicate_key)
{
    expect_format("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "__metadata__ key 'k' appears twice", NULL);
}
END_TEST

/* ----------------------------------------------------------- atomic writes */

static void one_tensor(cn_state *s, float *x, int64_t n)
{
    cn_state_init(s);
    ck_assert_ok(cn_state_add(s, "x", CN_DT_F32, 1, &n, x));
}

START_TEST(write_leaves_no_temporary_files)
{
    float x[4] = {1, 2, 3, 4};
    cn_state s;
    one_tensor(&s, x, 4);
    const char *p = tpath("ck.safetensors");
    ck_assert_ok(cn_st_write(p, &s, NULL));
    ck_assert_ok(cn_st_write(p, &s, NULL));   /* replacing an existing file */
    char name[256];
    ck_assert_int_eq(dir_entries(tdir, name, sizeof name), 1);
    ck_assert_str_eq(name, "ck.safetensors");
    cn_state_free(&s);
}
END_TEST

START_TEST(write_into_missing_directory_fails_without_creating_anything)
{
    float x[1] = {1};
    cn_state s;
    one_tensor(&s, x, 1);
    const char *p = tpath("no/such/dir/ck.safetensors");
    ck_assert_int_eq(cn_st_write(p, &s, NULL), CN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), p));
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "No such file"));
    ck_assert_int_eq(dir_entries(tdir, NULL, 0), 0);
    cn_state_free(&s);
}
END_TEST

/* The temporary file is created, but the rename fails (target is a non-empty
 * directory): the temporary file is removed and the target is untouched. */
START_TEST(write_rename_failure_removes_temporary_file)
{
    float x[1] = {1};
    cn_state s;
    one_tensor(&s, x, 1);
    const char *p = tpath("target");
    ck_assert_int_eq(mkdir(p, 0755), 0);
    write_bytes(tpath("target/keep"), "k", 1);
    ck_assert_int_eq(cn_st_write(p, &s, NULL), CN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "cannot rename"));
    char name[256];
    ck_assert_int_eq(dir_entries(tdir, name, sizeof name), 1);
    ck_assert_str_eq(name, "target");
    ck_assert_int_eq(dir_entries(p, NULL, 0), 1);
    cn_state_free(&s);
}
END_TEST

/* A write that fails half-way (file size limit: EFBIG) keeps the previous
 * checkpoint intact and leaves no temporary file. */
START_TEST(write_failing_midway_keeps_previous_file)
{
    static float big[1 << 16];
    float small[2] = {5, 6};
    cn_state s;
    one_tensor(&s, small, 2);
    const char *p = tpath("ck.safetensors");
    ck_assert_ok(cn_st_write(p, &s, NULL));
    unsigned char before[256], after[256];
    size_t nb = slurp(p, before, sizeof before);
    cn_state_free(&s);

    one_tensor(&s, big, 1 << 16);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 4096;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cn_status st = cn_st_write(p, &s, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    ck_assert_int_eq(st, CN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "write to"));
    ck_assert_uint_eq(slurp(p, after, sizeof after), nb);
    ck_assert(memcmp(before, after, nb) == 0);
    ck_assert_int_eq(dir_entries(tdir, NULL, 0), 1);
    cn_state_free(&s);
}
END_TEST

START_TEST(write_rejects_non_string_metadata_and_keeps_target)
{
    float x[1] = {1};
    cn_state s;
    one_tensor(&s, x, 1);
    const char *p = tpath("ck.safetensors");
    write_bytes(p, "old", 3);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "step", 3);
    ck_assert_int_eq(cn_st_write(p, &s, m), CN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "metadata 'step' must be a string"));
    unsigned char b[8];
    ck_assert_uint_eq(slurp(p, b, sizeof b), 3);
    ck_assert_int_eq(dir_entries(tdir, NULL, 0), 1);
    cJSON_Delete(m);
    cn_state_free(&s);
}
END_TEST

START_TEST(write_rejects_reserved_and_duplicate_names)
{
    float x[1] = {1};
    cn_state s;
    one_tensor(&s, x, 1);
    cn_free(s.items[0].name);
    s.items[0].name = cn_strdup("__metadata__");
    const char *p = tpath("ck.safetensors");
    ck_assert_int_eq(cn_st_write(p, &s, NULL), CN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "__metadata__"));
    /* cn_state_add refuses duplicates, but a hand-built list could hold them. */
    ck_assert_ok(cn_state_add(&s, "y", CN_DT_F32, 1, (int64_t[]){1}, x));
    cn_free(s.items[0].name);
    s.items[0].name = cn_strdup("y");
    ck_assert_int_eq(cn_st_write(p, &s, NULL), CN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "'y' appears twice"));
    ck_assert_int_eq(dir_entries(tdir, NULL, 0), 0);
    cn_state_free(&s);
}
END_TEST

Suite *suite_safetensors(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("roundtrip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip_all_dtypes_bit_exact);
    tcase_add_test(tc, round_trip_scalar_shape_has_one_element);
    tcase_add_test(tc, round_trip_metadata_strings);
    tcase_add_test(tc, round_trip_empty_state_and_zero_size_tensor);
    tcase_add_test(tc, header_bytes_match_hand_written_layout);
    tcase_add_test(tc, header_of_every_written_file_is_padded_to_8);
    tcase_add_test(tc, read_accepts_data_order_unlike_header_order_and_misaligned_offsets);
    tcase_add_test(tc, read_buffer_gives_same_result_as_file);
    tcase_add_test(tc, read_and_write_survive_each_allocation_failure);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, bad_empty_file);
    tcase_add_test(tc, bad_file_shorter_than_length_field);
    tcase_add_test(tc, bad_header_length_larger_than_file);
    tcase_add_test(tc, bad_header_length_absurd);
    tcase_add_test(tc, bad_header_length_zero);
    tcase_add_test(tc, bad_header_not_json);
    tcase_add_test(tc, bad_header_not_object);
    tcase_add_test(tc, bad_header_trailing_garbage);
    tcase_add_test(tc, bad_header_invalid_utf8);
    tcase_add_test(tc, bad_header_with_nul_byte);
    tcase_add_test(tc, bad_header_escaped_nul_in_name);
    tcase_add_test(tc, bad_path_is_directory);
    tcase_add_test(tc, bad_path_missing);
    tcase_add_test(tc, bad_unknown_dtype_is_named);
    tcase_add_test(tc, bad_dtype_not_string);
    tcase_add_test(tc, bad_negative_shape_entry);
    tcase_add_test(tc, bad_non_integer_shape_entry);
    tcase_add_test(tc, bad_string_shape_entry);
    tcase_add_test(tc, bad_shape_not_array);
    tcase_add_test(tc, bad_rank_above_four);
    tcase_add_test(tc, bad_shape_product_overflow);
    tcase_add_test(tc, bad_byte_count_overflow);
    tcase_add_test(tc, bad_offsets_do_not_match_dtype_times_numel);
    tcase_add_test(tc, bad_offsets_out_of_order);
    tcase_add_test(tc, bad_offsets_out_of_bounds);
    tcase_add_test(tc, bad_offsets_huge_beyond_exact_integers);
    tcase_add_test(tc, bad_offsets_not_a_pair);
    tcase_add_test(tc, bad_offsets_overlap);
    tcase_add_test(tc, bad_zero_size_tensor_inside_another);
    tcase_add_test(tc, bad_gap_between_tensors);
    tcase_add_test(tc, bad_gap_before_first_tensor);
    tcase_add_test(tc, bad_bytes_after_last_tensor);
    tcase_add_test(tc, bad_duplicate_tensor_name);
    tcase_add_test(tc, bad_entry_not_object);
    tcase_add_test(tc, bad_entry_unknown_key);
    tcase_add_test(tc, bad_entry_missing_key);
    tcase_add_test(tc, bad_entry_duplicate_key);
    tcase_add_test(tc, bad_metadata_value_not_string);
    tcase_add_test(tc, bad_metadata_not_object);
    tcase_add_test(tc, bad_metadata_twice);
    tcase_add_test(tc, bad_metadata_duplicate_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("atomic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, write_leaves_no_temporary_files);
    tcase_add_test(tc, write_into_missing_directory_fails_without_creating_anything);
    tcase_add_test(tc, write_rename_failure_removes_temporary_file);
    tcase_add_test(tc, write_failing_midway_keeps_previous_file);
    tcase_add_test(tc, write_rejects_non_string_metadata_and_keeps_target);
    tcase_add_test(tc, write_rejects_reserved_and_duplicate_names);
    suite_add_tcase(s, tc);
    return s;
}
