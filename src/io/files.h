/* Files: directory creation, atomic whole-file writes (temp + fsync + rename), CSV truncation on resume. */
#ifndef CN_FILES_H
#define CN_FILES_H

#include <stdio.h>
#include <cJSON.h>
#include "tensor/core.h"

/* mkdir -p. */
cn_status cn_mkdirs(const char *dir);
/* Writes `text` to path atomically (temporary file in the same directory, fsync, rename). */
cn_status cn_write_file_atomic(const char *path, const char *text, size_t len);
cn_status cn_write_json_atomic(const char *path, const cJSON *j);
int cn_file_exists(const char *path);
/* Keeps the header and the rows whose first column (a step) is <= max_step;
 * used when a resumed run continues in its own directory. */
cn_status cn_csv_truncate_steps(const char *path, long long max_step);
/* Writes a double as CSV/JSON text: shortest round-trip form; nan, inf, -inf. */
void cn_fmt_num(char *buf, size_t n, double v);

#endif
