/* libFuzzer target for the "csv" data kind (src/data/csv.c). Built and run by fuzz/run.sh.
 * Input: one flags byte, then the CSV file. Flags bit 0: target_kind "class" (else "float");
 * bit 1: the same file is also the test_path. The target column is named "y".
 * Checks besides memory safety and leaks: errors name the file; an accepted dataset
 * has n >= 1 rows, features = columns - 1, finite values and labels < n_classes. */
#define _GNU_SOURCE
#include "fuzz_file_common.h"

#include <math.h>
#include "data/data.h"

static void check_set(const cn_dataset *ds)
{
    if (ds->n < 1 || ds->features < 1) __builtin_trap();
    for (size_t i = 0; i < (size_t)ds->n * (size_t)ds->features; i++)
        if (!isfinite(ds->x[i])) __builtin_trap();
    for (int i = 0; i < ds->n; i++) {
        if (ds->labels && (ds->labels[i] < 0 || ds->labels[i] >= ds->n_classes)) __builtin_trap();
        if (ds->y && !isfinite(ds->y[i])) __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int flags = data[0];
    const char *path = fuzz_write_tmp(data + 1, size - 1, ".csv");
    if (!path) return 0;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "csv");
    cJSON_AddStringToObject(j, "path", path);
    cJSON_AddStringToObject(j, "target", "y");
    cJSON_AddStringToObject(j, "target_kind", flags & 1 ? "class" : "float");
    if (flags & 2) cJSON_AddStringToObject(j, "test_path", path);
    cn_data d;
    cn_status st = cn_data_load(j, "data", 1, NULL, &d);
    if (st) {
        if (!strstr(cn_errmsg(), path) || d.train.x) __builtin_trap();
    } else {
        check_set(&d.train);
        if (flags & 2) check_set(&d.test);
        cn_data_free(&d);
    }
    cJSON_Delete(j);
    return 0;
}
