/* safetensors reader and writer (the checkpoint format, docs/run-files.md).
 *
 * File layout (https://github.com/huggingface/safetensors, "Format"):
 *   u64 little-endian N | N bytes of JSON header | data section
 * The header is one JSON object: for every tensor
 *   "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
 * plus an optional "__metadata__": {"key": "string value", ...}. Offsets are byte
 * offsets relative to the start of the data section; the tensors tile it exactly
 * (no gaps, no overlap, nothing after the last one). Data is raw little-endian,
 * row-major. The writer pads the header with spaces so that 8 + N is a multiple
 * of 8, like the reference implementation.
 *
 * Dtypes: F32, F64, I32, I64 (cn_dtype); rank 0..4 (cn_state's limit). Any other
 * dtype or rank is a CN_ERR_FORMAT naming the tensor.
 *
 * The reader treats the file as hostile: every length and offset is checked
 * before use, and every error names the file, the tensor and what is wrong
 * (CN_ERR_FORMAT for bad content, CN_ERR_IO for open/read failures). Header key
 * order need not match data order (the reference writer sorts data by dtype);
 * cn_st_tensors() lists tensors in header order. */
#ifndef CN_SAFETENSORS_H
#define CN_SAFETENSORS_H

#include <cJSON.h>
#include "../tensor/core.h"
#include "../tensor/state.h"

/* Largest header accepted by the reader (the reference reader's limit). */
#define CN_ST_MAX_HEADER ((uint64_t)100000000)

/* Writes atomically with cn_atomic_open/write/commit (io/files.h): a temporary file
 * in the same directory (path.tmp.<pid>), write, fsync, close, rename, then fsync of
 * the directory. A crash never
 * leaves a torn file at `path`; on any error the temporary file is removed and
 * `path` is untouched.
 * tensors: written in list order, contiguous; names must be valid UTF-8 and not
 * "__metadata__". metadata: a cJSON object whose values are strings, or NULL.
 * Errors: CN_ERR_ARG (bad item, non-string metadata), CN_ERR_IO, CN_ERR_NOMEM.
 * The one error after the rename is a failed fsync of the directory: the new file
 * is then in place but may not survive a power loss (the message says so).
 * Not for concurrent writers of the same path within one process (same pid). */
cn_status cn_st_write(const char *path, const cn_state *tensors, const cJSON *metadata);

typedef struct cn_st_file cn_st_file;

/* Reads and validates the whole file into one 64-byte-aligned buffer. On error
 * *out is NULL. */
cn_status cn_st_read(const char *path, cn_st_file **out);
/* Views into the file's buffer, in header order; each view is aligned to its
 * element size (a tensor whose offset is not gets its own aligned copy). Valid
 * until cn_st_close. */
/* The same from bytes in memory (`name` is used in messages); copies what it
 * keeps. For tests and the fuzz target. */
cn_status cn_st_read_buffer(const char *name, const void *buf, size_t len, cn_st_file **out);
const cn_state *cn_st_tensors(const cn_st_file *f);
/* String value of __metadata__[key]; NULL if absent. */
const char *cn_st_meta(const cn_st_file *f, const char *key);
/* The __metadata__ object (an empty object when the file has none); never NULL. */
const cJSON *cn_st_metadata(const cn_st_file *f);
void cn_st_close(cn_st_file *f);

#endif
