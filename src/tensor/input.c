/* Reading input files: see tensor/input.h. */
#include "tensor/input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "64 MiB" or "1000 bytes", for the too-large message. */
static void fmt_size(char *buf, size_t n, size_t bytes)
{
    size_t mib = (size_t)1 << 20;
    if (bytes >= mib && bytes % mib == 0) snprintf(buf, n, "%zu MiB", bytes / mib);
    else snprintf(buf, n, "%zu bytes", bytes);
}

cn_status cn_open_input(const char *path, int *fd_out)
{
    *fd_out = -1;
    /* O_NONBLOCK: open() of a FIFO with no writer returns at once instead of waiting for one; the
     * type is then checked on the open file itself (no window between a stat and the open). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return cn_error(CN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return cn_error(CN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return cn_error(CN_ERR_IO, "%s: is a directory, not a file", path);
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return cn_error(CN_ERR_ARG, "%s: not a regular file (a %s); give the path of a file on disk", path,
                        S_ISFIFO(sb.st_mode) ? "FIFO or pipe" : S_ISSOCK(sb.st_mode) ? "socket" : "device");
    }
    /* reads of a regular file never block anyway; the flag is cleared so the descriptor behaves
     * like one from a plain open() for whoever reads it */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return cn_error(CN_ERR_IO, "%s: cannot set the file to blocking reads: %s", path, strerror(e));
    }
    *fd_out = fd;
    return CN_OK;
}

cn_status cn_read_file(const char *path, size_t max_bytes, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd;
    cn_status st = cn_open_input(path, &fd);
    if (st) return st;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return cn_error(CN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    char lim[32];
    fmt_size(lim, sizeof lim, max_bytes);
    /* The size is known up front: refuse early and allocate once. A file that grows while we read
     * (a log still being written) takes the doubling path below. */
    if ((uintmax_t)sb.st_size > (uintmax_t)max_bytes) {
        close(fd);
        return cn_error(CN_ERR_ARG, "%s: file larger than %s", path, lim);
    }
    size_t cap = (uintmax_t)sb.st_size < SIZE_MAX - 1 ? (size_t)sb.st_size + 1 : 65536;
    char *buf = cn_malloc(cap);
    if (!buf) {
        close(fd);
        return cn_error(CN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, cap);
    }
    size_t n = 0;
    for (;;) {
        if (n + 1 == cap) {   /* full: one byte is kept for the NUL */
            size_t nc = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            char *nb = nc > cap ? cn_realloc(buf, nc) : NULL;
            if (!nb) {
                cn_free(buf);
                close(fd);
                return cn_error(CN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, nc);
            }
            buf = nb;
            cap = nc;
        }
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            cn_free(buf);
            close(fd);
            return cn_error(CN_ERR_IO, "%s: read error: %s", path, strerror(e));
        }
        if (k == 0) break;
        n += (size_t)k;
        if (n > max_bytes) {
            cn_free(buf);
            close(fd);
            return cn_error(CN_ERR_ARG, "%s: file larger than %s", path, lim);
        }
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return CN_OK;
}
