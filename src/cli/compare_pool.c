/* The process pool of `clipnn compare` (see compare_pool.h).
 *
 * Signals: the pool blocks SIGINT, SIGTERM and SIGCHLD while it looks at its children and waits in
 * sigsuspend, so no signal can slip between a check and the wait. A child is put in its own process
 * group (by itself and by the parent, whichever runs first) before it can be reached by a terminal's
 * Ctrl-C; a Ctrl-C that reached it before that is dropped, and it keeps SIGINT/SIGTERM blocked through
 * exec until `clipnn train` has installed its handler (cmd_train unblocks them), so a forwarded signal
 * is never lost and never kills a child that has not yet started. */
#include "cli/compare_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/files.h"

static void on_child(int sig) { (void)sig; }

typedef struct {
    pid_t pid;
    int forwarded;          /* SIGINTs sent */
    double t0;
} child;

/* In the child: its own process group, a clean signal state, stdout/stderr to the run's train.log
 * (appended when the run is resumed), then exec. Only async-signal-safe calls after fork. */
static void exec_child(const cn_compare_run *r, char **argv, const char *exe, const char *self,
                       const sigset_t *keep_blocked)
{
    setpgid(0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;   /* drops a Ctrl-C that arrived before setpgid: the parent forwards its own */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigprocmask(SIG_SETMASK, keep_blocked, NULL);
    int fd = open(r->log, O_WRONLY | O_CREAT | O_CLOEXEC | (r->action == CN_RUN_RESUME ? O_APPEND : O_TRUNC), 0644);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, STDIN_FILENO);
    if (*exe) execv(exe, argv);
    execvp(self, argv);
    static const char msg[] = "clipnn compare: cannot start clipnn train\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

static cn_status start(cn_compare_plan *p, int k, const char *exe, const char *self, const sigset_t *child_mask,
                       child *c)
{
    cn_compare_run *r = &p->runs[k];
    char **argv = calloc((size_t)r->n_args + 2, sizeof *argv);
    if (!argv) return cn_error(CN_ERR_NOMEM, "out of memory");
    argv[0] = (char *)self;
    for (int i = 0; i < r->n_args; i++) argv[i + 1] = r->args[i];
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(argv);
        return cn_error(CN_ERR_IO, "cannot start a training process: %s", strerror(errno));
    }
    if (pid == 0) exec_child(r, argv, exe, self, child_mask);
    free(argv);
    setpgid(pid, pid);   /* also here: the parent may forward a signal before the child has run */
    c->pid = pid;
    c->forwarded = 0;
    c->t0 = cn_now_s();
    return CN_OK;
}

static const char *what(int code)
{
    switch (code) {
    case 0: return "done";
    case 3: return "stopped: non-finite loss/gradient";
    case 130: return "interrupted (files and checkpoint written; resumable)";
    default: return "FAILED (see its train.log)";
    }
}

cn_status cli_compare_pool(cn_compare_plan *p, const char *self, int jobs, FILE *progress,
                           volatile sig_atomic_t *signals)
{
    cn_status st = CN_OK;
    child *kids = calloc((size_t)p->n_runs + 1, sizeof *kids);
    if (!kids) return cn_error(CN_ERR_NOMEM, "out of memory");
    struct sigaction sa, old_chld;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child;   /* only to wake sigsuspend */
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, &old_chld);
    sigset_t block, old, child_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    /* a child keeps the caller's mask plus SIGINT/SIGTERM until `train` has its handler */
    child_mask = old;
    sigaddset(&child_mask, SIGINT);
    sigaddset(&child_mask, SIGTERM);
    sigdelset(&child_mask, SIGCHLD);
    sigset_t wait_mask = old;
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGCHLD);

    /* this program's own file, read before any fork (under valgrind, exec of /proc/self/exe itself would
       start the tool, while its readlink names the program) */
    char exe[4096] = "";
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = '\0';
    int next = 0, running = 0, done = 0;
    for (;;) {
        /* reap */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int k = 0; k < p->n_runs; k++) {
                if (kids[k].pid != pid) continue;
                cn_compare_run *r = &p->runs[k];
                r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                kids[k].pid = 0;
                running--;
                done++;
                if (progress) {
                    fprintf(progress, "[%d/%d] %s seed %lld: %s (%.1f s)\n", done, p->n_todo,
                            p->variants[r->variant].name, r->seed, what(r->exit_code), cn_now_s() - kids[k].t0);
                    fflush(progress);
                }
            }
        }
        /* forward each signal received, once per running child */
        int nsig = signals ? (int)*signals : 0;
        for (int k = 0; k < p->n_runs; k++)
            while (kids[k].pid > 0 && kids[k].forwarded < nsig && kids[k].forwarded < 2) {
                kill(kids[k].pid, SIGINT);
                kids[k].forwarded++;
            }
        /* start */
        while (!nsig && !st && running < jobs && next < p->n_runs) {
            if (p->runs[next].action == CN_RUN_KEEP) { next++; continue; }
            if ((st = start(p, next, exe, self, &child_mask, &kids[next]))) break;
            next++;
            running++;
        }
        if (running == 0 && (nsig || st || next >= p->n_runs)) break;
        sigsuspend(&wait_mask);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    free(kids);
    return st;
}
