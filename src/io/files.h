/* Files: directory creation, atomic whole-file writes (temp + fsync + rename),
 * CSV truncation on resume. */
#ifndef CN_FILES_H
#define CN_FILES_H

#include <stdint.h>
#include <stdio.h>
#include <cJSON.h>
#include "tensor/core.h"
#include "tensor/input.h"   /* cn_open_input, cn_read_file */

/* mkdir -p. An existing non-directory at `dir` is CN_ERR_ARG (a user error: `--out` naming a file);
 * other failures are CN_ERR_IO. */
cn_status cn_mkdirs(const char *dir);

/* One writer per directory: takes DIR/.lock (flock, exclusive, not waiting) and writes the holder's pid
 * into it for the message another process gets: "DIR: <what> in use by pid N (<hint>)", CN_ERR_ARG. The
 * kernel drops the lock when the process ends, however it ends, so a killed writer never leaves a
 * directory locked. create = 0: a missing lock file is not an error (*fd stays -1). */
cn_status cn_lock_dir(const char *dir, const char *what, const char *hint, int create, int *fd);
/* Releases it (fd < 0: nothing); the pid is removed first. */
void cn_unlock_dir(int fd);

/* Atomic whole-file replacement: bytes go to `path.tmp.<pid>` in the same directory, which is
 * fsync'd, renamed over `path`, and the directory fsync'd so the rename survives a power loss.
 * Readers see the old file or the new one, never a part. Usage:
 *     cn_atomic_file af;
 *     if ((st = cn_atomic_open(&af, path))) return st;
 *     st = cn_atomic_write(&af, p, n);            // any number of times
 *     if (!st) st = cn_atomic_commit(&af);
 * cn_atomic_write and cn_atomic_commit release the handle (and remove the temporary file) when they
 * fail; cn_atomic_abort is for the caller's own errors and is a no-op on a released handle. Every
 * failure is CN_ERR_IO, including a failed fsync of the directory after the rename (the file is then
 * in place but not known to be durable); file systems without directory fsync (EINVAL, EROFS) are
 * not an error. `path` is borrowed and must outlive the handle. */
typedef struct {
    const char *path;
    char *tmp;   /* NULL once released */
    int fd;
} cn_atomic_file;
cn_status cn_atomic_open(cn_atomic_file *af, const char *path);
cn_status cn_atomic_write(cn_atomic_file *af, const void *buf, size_t n);
cn_status cn_atomic_commit(cn_atomic_file *af);
void cn_atomic_abort(cn_atomic_file *af);

/* Writes `text` to path atomically (cn_atomic_*). */
cn_status cn_write_file_atomic(const char *path, const char *text, size_t len);
/* The same for a JSON document, pretty-printed with a final newline. */
cn_status cn_write_json_atomic(const char *path, const cJSON *j);
int cn_file_exists(const char *path);
/* Keeps the header and the rows whose first column (a step) is <= max_step, and drops a torn last
 * line (no newline: killed mid-write); used when a resumed run continues in its own directory. The
 * file is append-only in step order, so this truncates it in place at the first row with a larger
 * step (or at the torn line) without reading the rest. A missing file is not an error. */
cn_status cn_csv_truncate_steps(const char *path, long long max_step);
/* Writes a double as CSV/JSON text: %.9g, which round-trips a float32 exactly (not a double: the
 * logged columns are float32 quantities or are logged at float precision); nan, inf, -inf. */
void cn_fmt_num(char *buf, size_t n, double v);

/* Seconds on a monotonic clock (durations only). */
double cn_now_s(void);
/* A new run directory name, "runs/<name>[-<tag>]-<YYYYmmdd-HHMMSS>[-k]": k counts up from 2 while
 * the name exists, so two runs started in the same second get distinct directories. */
void cn_run_dir_name(char *out, size_t n, const char *name, const char *tag);

#endif
