/* libFuzzer target for the .npy reader (cn_npy_read) and the "npy" data kind built on it.
 * Built and run by fuzz/run.sh. Each input is one .npy file; when it reads, it is also
 * loaded as data {"kind": "npy", "x": FILE, "y": FILE} (x and y the same array), which
 * runs the shape, dtype, label and finiteness checks of npy_dataset.
 * Checks besides memory safety and leaks: an accepted array's data holds exactly
 * numel * itemsize bytes (ASan checks each), shape product == numel; errors name the file. */
#define _GNU_SOURCE
#include "fuzz_file_common.h"

#include "data/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_tmp(data, size, ".npy");
    if (!path) return 0;
    cn_npy a;
    cn_status st = cn_npy_read(path, &a);
    if (st) {
        if (!strstr(cn_errmsg(), path)) __builtin_trap();   /* every message names the file */
        if (a.data) __builtin_trap();
        return 0;
    }
    size_t numel = 1;
    for (int i = 0; i < a.ndim; i++) numel *= (size_t)a.shape[i];
    if (numel != a.numel || (a.kind != 'f' && a.kind != 'i') || (a.itemsize != 4 && a.itemsize != 8)) __builtin_trap();
    volatile unsigned char sink = 0;
    for (size_t k = 0; k < a.numel * (size_t)a.itemsize; k++) sink ^= ((const unsigned char *)a.data)[k];
    (void)sink;
    cn_npy_free(&a);

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "npy");
    cJSON_AddStringToObject(j, "x", path);
    cJSON_AddStringToObject(j, "y", path);
    cn_data d;
    st = cn_data_load(j, "data", 1, NULL, &d);
    if (st) {
        if (!cn_errmsg()[0] || d.train.x) __builtin_trap();
    } else {
        if (d.train.n < 1 || d.train.features < 1) __builtin_trap();
        cn_data_free(&d);
    }
    cJSON_Delete(j);
    return 0;
}
