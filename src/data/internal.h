/* Shared between the files of src/data (not public). */
#ifndef CN_DATA_INTERNAL_H
#define CN_DATA_INTERNAL_H

#include "data/data.h"

/* Elements allowed in one array (x of a dataset): keeps every index well inside size_t and int64,
 * and turns absurd sizes into a clear error instead of a failed allocation. */
#define CN_DATA_MAX_ELEMS ((size_t)1 << 31)

/* Allocates x (n*max(T,1)*F floats) and y (float: n*(T if target_seq)*D) or labels (class) of ds, whose
 * shape fields must be filled. `what` names the set for messages ("data: train set"). */
cn_status cn_data_alloc(cn_dataset *ds, const char *what);

/* Resolves `file` against base_dir unless absolute or base_dir is empty. Error if it does not fit. */
cn_status cn_data_resolve(char *out, size_t n, const char *base_dir, const char *file, const char *jpath);

/* Reads a whole file into a fresh buffer (NUL-terminated, len excludes the NUL). jpath names the JSON
 * key for open errors ("data.path: cannot open ..."). */
cn_status cn_data_read_file(const char *file, const char *jpath, unsigned char **buf, size_t *len);

/* Independent stream for `tag` from the run's seed (SplitMix64 finaliser of seed ^ tag). */
uint64_t cn_data_stream_seed(uint64_t seed, uint64_t tag);

cn_status cn_data_load_task(cJSON *obj, const char *path, const char *kind, uint64_t seed, cn_data *out);
cn_status cn_data_load_npy(cJSON *obj, const char *path, const char *base_dir, cn_data *out);
cn_status cn_data_load_csv(cJSON *obj, const char *path, const char *base_dir, cn_data *out);
cn_status cn_data_load_text(cJSON *obj, const char *path, const char *base_dir, cn_data *out);

#endif
