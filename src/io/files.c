#include "io/files.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cn_status cn_mkdirs(const char *dir)
{
    char buf[4096];
    if (strlen(dir) >= sizeof buf) return cn_error(CN_ERR_IO, "%s: path too long", dir);
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return cn_error(CN_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return cn_error(CN_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
    struct stat sb;
    if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) return cn_error(CN_ERR_IO, "%s: exists and is not a directory", buf);
    return CN_OK;
}

int cn_file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

cn_status cn_write_file_atomic(const char *path, const char *text, size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return cn_error(CN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, text + off, len - off);
        if (k < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return cn_error(CN_ERR_IO, "%s: write failed: %s", path, strerror(e));
        }
        off += (size_t)k;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return cn_error(CN_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cn_error(CN_ERR_IO, "%s: cannot rename into place: %s", path, strerror(e));
    }
    /* make the rename itself durable (power loss), best effort */
    char dir[4200];
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
    else snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return CN_OK;
}

cn_status cn_write_json_atomic(const char *path, const cJSON *j)
{
    char *s = cJSON_Print(j);
    if (!s) return cn_error(CN_ERR_NOMEM, "%s: out of memory printing JSON", path);
    size_t n = strlen(s);
    /* a final newline for people reading it in a terminal */
    char *t = realloc(s, n + 2);
    if (!t) { free(s); return cn_error(CN_ERR_NOMEM, "%s: out of memory", path); }
    t[n] = '\n';
    t[n + 1] = 0;
    cn_status st = cn_write_file_atomic(path, t, n + 1);
    free(t);
    return st;
}

cn_status cn_csv_truncate_steps(const char *path, long long max_step)
{
    FILE *f = fopen(path, "rb");
    if (!f) return CN_OK;
    size_t cap = 1 << 16, len = 0;
    char *buf = cn_malloc(cap);
    if (!buf) { fclose(f); return cn_error(CN_ERR_NOMEM, "out of memory"); }
    size_t k;
    while ((k = fread(buf + len, 1, cap - len, f)) > 0) {
        len += k;
        if (len == cap) {
            char *nb = cn_realloc(buf, cap * 2);
            if (!nb) { cn_free(buf); fclose(f); return cn_error(CN_ERR_NOMEM, "out of memory"); }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    /* keep line 1 (header) and lines whose step <= max_step */
    size_t out = 0, i = 0;
    int line = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && buf[j] != '\n') j++;
        if (j == len) break;   /* a torn last line (killed mid-write) is dropped */
        int keep = line == 0 || strtoll(buf + i, NULL, 10) <= max_step;
        if (keep) { memmove(buf + out, buf + i, j + 1 - i); out += j + 1 - i; }
        i = j + 1;
        line++;
    }
    cn_status st = cn_write_file_atomic(path, buf, out);
    cn_free(buf);
    return st;
}

void cn_fmt_num(char *buf, size_t n, double v)
{
    if (isnan(v)) snprintf(buf, n, "nan");
    else if (isinf(v)) snprintf(buf, n, v > 0 ? "inf" : "-inf");
    else snprintf(buf, n, "%.9g", v);
}
