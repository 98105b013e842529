/* libFuzzer target for the safetensors reader (src/io/safetensors.c).
 *
 * Build and run (from the repo root; not part of the default `make`):
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *     -D_POSIX_C_SOURCE=200809L -Isrc $(pkg-config --cflags libcjson) \
 *     fuzz/fuzz_safetensors.c src/io/safetensors.c src/tensor/core.c src/tensor/state.c src/json/json.c \
 *     $(pkg-config --libs libcjson) -lm -o build-fuzz/fuzz_safetensors
 *   build-fuzz/fuzz_safetensors -dict=fuzz/safetensors.dict -max_total_time=60 \
 *     build-fuzz/corpus fuzz/corpus/safetensors
 * (build-fuzz/corpus collects new inputs; fuzz/corpus/safetensors is the committed seed corpus.)
 *
 * Besides memory safety, it checks the reader's promise on every accepted input:
 * the tensors tile the data section exactly, every view is aligned to its element
 * size, and names are unique. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

static uint64_t le64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static int check_one(const uint8_t *data, size_t size)
{
    cn_st_file *f = NULL;
    cn_status st = cn_st_read_buffer("fuzz", data, size, &f);
    if (st != CN_OK) {
        if (f) __builtin_trap();                        /* no object on error */
        if (!strstr(cn_errmsg(), "fuzz")) __builtin_trap();   /* every message names the file */
        return 0;
    }
    const cn_state *t = cn_st_tensors(f);
    uint64_t total = 0;
    volatile unsigned char sink = 0;
    for (int i = 0; i < t->count; i++) {
        const cn_state_item *it = &t->items[i];
        size_t es = cn_dtype_size(it->dtype);
        size_t nb = cn_state_item_numel(it) * es;
        if ((uintptr_t)it->data % es) __builtin_trap();
        for (size_t k = 0; k < nb; k++) sink ^= ((const unsigned char *)it->data)[k];   /* ASan checks each byte */
        total += nb;
        for (int j = 0; j < i; j++)
            if (!strcmp(t->items[j].name, it->name)) __builtin_trap();
    }
    if (total != size - 8 - le64(data)) __builtin_trap();   /* exact tiling of the data section */
    const cJSON *m = cn_st_metadata(f);
    for (const cJSON *c = m->child; c; c = c->next)
        if (!cJSON_IsString(c) || cn_st_meta(f, c->string) == NULL) __builtin_trap();
    (void)sink;
    cn_st_close(f);
    return 0;
}

/* Each input is read as is, and once more with the header length folded into
 * the input's size: most mutations break the length field, and the second pass
 * lets them still reach the JSON and layout checks. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size);
    if (size >= 8) {
        uint8_t *copy = malloc(size);
        if (!copy) return 0;
        memcpy(copy, data, size);
        uint64_t n = le64(copy) % (uint64_t)(size - 7);
        for (int i = 0; i < 8; i++) copy[i] = (uint8_t)(n >> (8 * i));
        check_one(copy, size);
        free(copy);
    }
    return 0;
}
