#define _DEFAULT_SOURCE   /* flock */
#include "io/files.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- directories ---- */

cn_status cn_lock_dir(const char *dir, const char *what, const char *hint, int create, int *fd_out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (create ? O_CREAT : 0), 0666);
    if (fd < 0) {
        if (!create && (errno == ENOENT || errno == ENOTDIR)) return CN_OK;
        return cn_error(CN_ERR_IO, "%s: cannot open the %s's lock file: %s", path, what, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return cn_error(CN_ERR_ARG, "%s: not a regular file; remove it", path);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char buf[32];
        ssize_t k = e == EWOULDBLOCK ? pread(fd, buf, sizeof buf - 1, 0) : -1;
        close(fd);
        if (e != EWOULDBLOCK) return cn_error(CN_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
        buf[k > 0 ? k : 0] = 0;
        long pid = strtol(buf, NULL, 10);
        if (pid > 0) return cn_error(CN_ERR_ARG, "%s: %s in use by pid %ld (%s)", dir, what, pid, hint);
        return cn_error(CN_ERR_ARG, "%s: %s in use by another process (%s)", dir, what, hint);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        cn_status st = cn_error(CN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    *fd_out = fd;
    return CN_OK;
}

void cn_unlock_dir(int fd)
{
    if (fd < 0) return;
    /* the pid goes first, so that between the next writer's lock and its own pid nobody reads this one;
       best effort: the lock is what counts */
    if (ftruncate(fd, 0) != 0) { /* a stale pid only */ }
    close(fd);
}

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
    if (stat(buf, &sb) != 0) return cn_error(CN_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return cn_error(CN_ERR_ARG, "%s: exists and is not a directory", buf);
    return CN_OK;
}

int cn_file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ---- atomic writes ---- */

cn_status cn_atomic_open(cn_atomic_file *af, const char *path)
{
    af->path = path;
    af->fd = -1;
    size_t tn = strlen(path) + 32;
    af->tmp = cn_malloc(tn);
    if (!af->tmp) return cn_error(CN_ERR_NOMEM, "%s: out of memory", path);
    snprintf(af->tmp, tn, "%s.tmp.%ld", path, (long)getpid());
    af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (af->fd < 0) {
        cn_status st = cn_error(CN_ERR_IO, "%s: cannot create temporary file %s: %s", path, af->tmp, strerror(errno));
        cn_free(af->tmp);
        af->tmp = NULL;   /* nothing was created */
        return st;
    }
    return CN_OK;
}

void cn_atomic_abort(cn_atomic_file *af)
{
    if (!af->tmp) return;
    if (af->fd >= 0) close(af->fd);
    unlink(af->tmp);
    cn_free(af->tmp);
    af->tmp = NULL;
    af->fd = -1;
}

/* Sets the message, then releases the handle (which may change errno, hence `e` first). */
static cn_status atomic_fail(cn_atomic_file *af, int e, const char *what)
{
    cn_status st = cn_error(CN_ERR_IO, "%s: %s %s failed: %s", af->path, what, af->tmp, strerror(e));
    cn_atomic_abort(af);
    return st;
}

cn_status cn_atomic_write(cn_atomic_file *af, const void *buf, size_t n)
{
    if (!af->tmp) return cn_error(CN_ERR_STATE, "%s: write to a released atomic file", af->path);
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(af->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return atomic_fail(af, k < 0 ? errno : EIO, "write to");
        p += k;
        n -= (size_t)k;
    }
    return CN_OK;
}

/* fsync of the directory holding `path`, so that the rename itself is durable. */
static cn_status sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) dir = cn_strdup(".");
    else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = cn_malloc(n + 1);
        if (dir) { memcpy(dir, path, n); dir[n] = 0; }
    }
    if (!dir) return cn_error(CN_ERR_NOMEM, "%s: out of memory", path);
    cn_status st = CN_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        st = cn_error(CN_ERR_IO, "%s: written, but cannot open directory %s to sync it: %s", path, dir, strerror(errno));
    } else {
        /* Some file systems do not support fsync on directories (EINVAL): nothing to do there. */
        if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
            st = cn_error(CN_ERR_IO, "%s: written, but fsync of directory %s failed: %s", path, dir, strerror(errno));
        close(fd);
    }
    cn_free(dir);
    return st;
}

cn_status cn_atomic_commit(cn_atomic_file *af)
{
    if (!af->tmp) return cn_error(CN_ERR_STATE, "%s: commit of a released atomic file", af->path);
    if (fsync(af->fd) != 0) return atomic_fail(af, errno, "fsync of");
    int rc = close(af->fd);   /* NFS reports deferred write errors here */
    af->fd = -1;
    if (rc != 0) return atomic_fail(af, errno, "write to");
    if (rename(af->tmp, af->path) != 0) {
        cn_status st = cn_error(CN_ERR_IO, "%s: cannot rename %s into place: %s", af->path, af->tmp, strerror(errno));
        cn_atomic_abort(af);
        return st;
    }
    cn_free(af->tmp);
    af->tmp = NULL;
    return sync_dir(af->path);
}

cn_status cn_write_file_atomic(const char *path, const char *text, size_t len)
{
    cn_atomic_file af;
    cn_status st = cn_atomic_open(&af, path);
    if (!st) st = cn_atomic_write(&af, text, len);
    if (!st) st = cn_atomic_commit(&af);
    return st;
}

cn_status cn_write_json_atomic(const char *path, const cJSON *j)
{
    char *s = cJSON_Print(j);
    if (!s) return cn_error(CN_ERR_NOMEM, "%s: out of memory printing JSON", path);
    cn_atomic_file af;
    cn_status st = cn_atomic_open(&af, path);
    if (!st) st = cn_atomic_write(&af, s, strlen(s));
    if (!st) st = cn_atomic_write(&af, "\n", 1);   /* for people reading it in a terminal */
    if (!st) st = cn_atomic_commit(&af);
    cJSON_free(s);
    return st;
}

/* ---- CSV truncation on resume ---- */

cn_status cn_csv_truncate_steps(const char *path, long long max_step)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return CN_OK;
        return cn_error(CN_ERR_IO, "%s: cannot open to truncate: %s", path, strerror(errno));
    }
    /* One pass over the lines: keep line 1 (the header) and each complete row while its step is
     * <= max_step; the cut goes at the start of the first row past it or of a torn last line. */
    char chunk[65536];
    char head[32];   /* the start of the current line: its step */
    size_t hn = 0;
    off_t pos = 0, line_start = 0, cut = -1;
    long long line = 0;
    cn_status st = CN_OK;
    while (cut < 0) {
        ssize_t k = read(fd, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            st = cn_error(CN_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
        if (k == 0) {
            cut = line_start;   /* end of file: drops a torn last line, if any */
            break;
        }
        for (ssize_t i = 0; i < k && cut < 0; i++, pos++) {
            if (chunk[i] != '\n') {
                if (hn < sizeof head - 1) head[hn++] = chunk[i];
                continue;
            }
            head[hn] = 0;
            if (line > 0 && strtoll(head, NULL, 10) > max_step) cut = line_start;
            line++;
            line_start = pos + 1;
            hn = 0;
        }
    }
    if (!st) {
        struct stat sb;
        if (fstat(fd, &sb) != 0) st = cn_error(CN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        else if (cut < sb.st_size && (ftruncate(fd, cut) != 0 || fsync(fd) != 0))
            st = cn_error(CN_ERR_IO, "%s: cannot truncate to %lld bytes: %s", path, (long long)cut, strerror(errno));
    }
    close(fd);
    return st;
}

void cn_fmt_num(char *buf, size_t n, double v) { cn_fmt_g(buf, n, v, 9); }

double cn_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cn_run_dir_name(char *out, size_t n, const char *name, const char *tag)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", &tm);
    snprintf(out, n, "runs/%s%s%s-%s", name, tag ? "-" : "", tag ? tag : "", ts);
    for (int k = 2; cn_file_exists(out) && k < 1000; k++)
        snprintf(out, n, "runs/%s%s%s-%s-%d", name, tag ? "-" : "", tag ? tag : "", ts, k);
}
