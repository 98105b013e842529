/* Reading input files (a config, data, a checkpoint): regular files only, with a size cap. At the bottom
 * of the library so that every module that reads user input (json, io, data) can, without depending on a
 * module above it. */
#ifndef CN_TENSOR_INPUT_H
#define CN_TENSOR_INPUT_H

#include <stdint.h>
#include "tensor/core.h"

/* max_bytes for cn_read_file: no limit other than memory. */
#define CN_READ_UNLIMITED SIZE_MAX

/* Opens an input file (a config, data, a checkpoint) read-only into *fd (close it; O_CLOEXEC). Only
 * regular files are accepted: a FIFO with no writer would block open() and read() forever and a
 * device may never end, so both are refused without blocking. Errors name the path: CN_ERR_IO when
 * it cannot be opened (with the system's reason) or is a directory; CN_ERR_ARG when it is a FIFO,
 * socket or device. Every reader of user input goes through here. */
cn_status cn_open_input(const char *path, int *fd);

/* Reads a whole regular file (cn_open_input) into a NUL-terminated buffer from cn_malloc (free with
 * cn_free); *len excludes the NUL. Errors name the path: those of cn_open_input; CN_ERR_IO when a
 * read fails; CN_ERR_ARG when it holds more than max_bytes; CN_ERR_NOMEM. On error *out is NULL and
 * *len 0. */
cn_status cn_read_file(const char *path, size_t max_bytes, char **out, size_t *len);

#endif
