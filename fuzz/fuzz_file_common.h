/* Shared by the file-format fuzz targets: the readers take a path, so each input is
 * written to one private temporary file (created once per process, rewritten per input). */
#ifndef FUZZ_FILE_COMMON_H
#define FUZZ_FILE_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_tmp[64];

static void fuzz_tmp_cleanup(void) { if (fuzz_tmp[0]) unlink(fuzz_tmp); }

/* Writes the bytes to the temporary file; returns its path (NULL on failure). */
static const char *fuzz_write_tmp(const uint8_t *data, size_t size, const char *suffix)
{
    if (!fuzz_tmp[0]) {
        /* tmpfs when there is one: a disk-backed /tmp makes each input ~100x slower */
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_tmp, sizeof fuzz_tmp, "%s/clipnn-fuzz-XXXXXX%s", dir, suffix);
        int fd = mkstemps(fuzz_tmp, (int)strlen(suffix));
        if (fd < 0) { fuzz_tmp[0] = 0; return NULL; }
        close(fd);
        atexit(fuzz_tmp_cleanup);
    }
    FILE *f = fopen(fuzz_tmp, "wb");
    if (!f) return NULL;
    if (size && fwrite(data, 1, size, f) != size) { fclose(f); return NULL; }
    if (fclose(f) != 0) return NULL;
    return fuzz_tmp;
}

#endif
