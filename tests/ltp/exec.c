/*
 * exec: execve of /bin/true and /bin/false (exit statuses), of a missing file (ENOENT, the caller
 * goes on), of this program with arguments and an environment that arrive unchanged, the pid kept
 * across exec, FD_CLOEXEC honoured, signal dispositions and mask across exec, and execve from a
 * non-main thread (the new image runs as the process, with the original pid and one thread).
 *
 * The program re-executes itself in "child modes" (argv[1] starting with "--child-"); these check
 * their side and exit 0, or print FAIL lines and exit 1.
 */
#include "tst.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>

extern char **environ;

static char self[PATH_MAX];

static int count_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- child modes (after exec) ---- */

static int child_args(int argc, char **argv)
{
    static const char *want[] = { "exec-renamed", "--child-args", "two words", "", "tab\there", "last" };
    if (argc != 6)
        tst_fail("argc %d, expected 6", argc);
    for (int i = 0; i < argc && i < 6; i++)
        if (strcmp(argv[i], want[i]) != 0)
            tst_fail("argv[%d] '%s', expected '%s'", i, argv[i], want[i]);
    if (argv[argc] != NULL)
        tst_fail("argv[argc] is not NULL");
    int n = 0;
    for (char **e = environ; *e; e++)
        n++;
    if (n != 3)
        tst_fail("environment has %d entries, expected exactly the 3 passed to execve", n);
    const char *v = getenv("TST_EXEC_VAR");
    if (!v || strcmp(v, "value with spaces=and equals") != 0)
        tst_fail("TST_EXEC_VAR is '%s'", v ? v : "(unset)");
    v = getenv("TST_EMPTY");
    if (!v || *v)
        tst_fail("TST_EMPTY is '%s', expected empty", v ? v : "(unset)");
    v = getenv("TST_PID_BEFORE");
    if (!v || atoi(v) != getpid())
        tst_fail("pid changed across exec: before %s, now %d", v ? v : "?", (int)getpid());
    if (getenv("PATH"))
        tst_fail("PATH leaked into an environment that did not contain it");
    return tst_failures ? 1 : 0;
}

static int child_fds(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int keep = atoi(argv[2]), gone = atoi(argv[3]);
    if (fcntl(keep, F_GETFD) < 0)
        tst_fail("fd %d without FD_CLOEXEC was closed by exec", keep);
    else if (write(keep, "k", 1) != 1)
        tst_fail("fd %d kept across exec is not writable", keep);
    errno = 0;
    if (fcntl(gone, F_GETFD) != -1 || errno != EBADF)
        tst_fail("fd %d with FD_CLOEXEC is still open after exec", gone);
    return tst_failures ? 1 : 0;
}

static int child_signals(void)
{
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    if (sa.sa_handler != SIG_DFL)
        tst_fail("a caught signal (SIGUSR1) is not reset to SIG_DFL by exec");
    sigaction(SIGUSR2, NULL, &sa);
    if (sa.sa_handler != SIG_IGN)
        tst_fail("an ignored signal (SIGUSR2) is not kept ignored across exec");
    sigset_t cur, pend;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    if (!sigismember(&cur, SIGINT))
        tst_fail("the blocked mask (SIGINT) was not kept across exec");
    sigpending(&pend);
    if (!sigismember(&pend, SIGINT))
        tst_fail("a pending blocked signal (SIGINT) was lost across exec");
    /* do not let the pending SIGINT kill us on the way out */
    signal(SIGINT, SIG_IGN);
    return tst_failures ? 1 : 0;
}

static int child_after_thread(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    pid_t before = atoi(argv[2]);
    if (getpid() != before)
        tst_fail("after exec from a thread, getpid() %d differs from the process's pid %d", (int)getpid(),
                 (int)before);
    if (tst_gettid() != getpid())
        tst_fail("after exec from a thread, gettid() %d != getpid() %d", (int)tst_gettid(), (int)getpid());
    int n = count_tasks();
    if (n != 1)
        tst_fail("after exec from a thread, /proc/self/task lists %d threads, expected 1", n);
    return tst_failures ? 1 : 0;
}

/* ---- parent side ---- */

static int run_wait(pid_t child)
{
    int st = 0;
    if (waitpid(child, &st, 0) != child)
        return -1;
    return st;
}

static void exec_bin_true(void)
{
    static const char *progs[][2] = { { "/bin/true", "0" }, { "/bin/false", "1" } };
    for (int i = 0; i < 2; i++) {
        if (access(progs[i][0], X_OK) != 0) {
            tst_fail("%s is missing", progs[i][0]);
            continue;
        }
        pid_t child = tst_fork();
        if (child == 0) {
            char *argv[] = { (char *)progs[i][0], NULL };
            char *envp[] = { NULL };
            execve(progs[i][0], argv, envp);
            _exit(127);
        }
        int st = run_wait(child);
        char desc[64];
        snprintf(desc, sizeof(desc), "execve(%s) exits %s", progs[i][0], progs[i][1]);
        tst_check(WIFEXITED(st) && WEXITSTATUS(st) == atoi(progs[i][1]), desc, "status 0x%x", st);
    }

    char *argv[] = { "nope", NULL };
    int r = execve("/nonexistent/ssi-ltp-no-such-program", argv, environ);
    tst_check(r == -1 && errno == ENOENT, "execve of a missing file fails with ENOENT and returns", "r=%d", r);
    r = execve("/proc/self", argv, environ);
    tst_check(r == -1 && errno == EACCES, "execve of a directory fails with EACCES", "r=%d errno %d", r, errno);
}

static void exec_self_args(void)
{
    pid_t child = tst_fork();
    if (child == 0) {
        char pidvar[64];
        snprintf(pidvar, sizeof(pidvar), "TST_PID_BEFORE=%d", (int)getpid());
        char *argv[] = { "exec-renamed", "--child-args", "two words", "", "tab\there", "last", NULL };
        char *envp[] = { "TST_EXEC_VAR=value with spaces=and equals", "TST_EMPTY=", pidvar, NULL };
        execve(self, argv, envp);
        tst_fail("execve(%s): %s", self, strerror(errno));
        _exit(127);
    }
    int st = run_wait(child);
    tst_check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "execve of itself: argv (with empty and spaced args), envp and pid preserved", "child status 0x%x",
              st);
}

static void exec_cloexec(void)
{
    int keep[2], gone[2];
    if (pipe(keep) < 0 || pipe2(gone, O_CLOEXEC) < 0)
        tst_brk("pipe");
    pid_t child = tst_fork();
    if (child == 0) {
        close(keep[0]);
        char k[16], g[16];
        snprintf(k, sizeof(k), "%d", keep[1]);
        snprintf(g, sizeof(g), "%d", gone[1]);
        char *argv[] = { self, "--child-fds", k, g, NULL };
        execve(self, argv, environ);
        _exit(127);
    }
    close(keep[1]);
    close(gone[1]);
    int st = run_wait(child);
    tst_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exec keeps plain fds and closes FD_CLOEXEC ones",
              "child status 0x%x", st);
    char c = 0;
    tst_check(read(keep[0], &c, 1) == 1 && c == 'k', "the kept fd carried data from the new image", "read '%c'", c);
    close(keep[0]);
    close(gone[0]);

    /* fcntl(F_SETFD) after the fact works the same as O_CLOEXEC */
    int fd = open("/dev/null", O_RDONLY);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    tst_check(fcntl(fd, F_GETFD) == FD_CLOEXEC, "F_SETFD FD_CLOEXEC reads back", "flags %d", fcntl(fd, F_GETFD));
    close(fd);
}

static void on_usr1(int sig)
{
    (void)sig;
}

static void exec_signals(void)
{
    pid_t child = tst_fork();
    if (child == 0) {
        signal(SIGUSR1, on_usr1);
        signal(SIGUSR2, SIG_IGN);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigprocmask(SIG_BLOCK, &set, NULL);
        kill(getpid(), SIGINT);
        char *argv[] = { self, "--child-signals", NULL };
        execve(self, argv, environ);
        _exit(127);
    }
    int st = run_wait(child);
    tst_check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "exec resets caught signals, keeps ignored ones, the mask and pending signals", "child status 0x%x",
              st);
}

static void *exec_thread_main(void *arg)
{
    char *pid = arg;
    char *argv[] = { self, "--child-after-thread", pid, NULL };
    execve(self, argv, environ);
    tst_fail("execve from a thread: %s", strerror(errno));
    _exit(127);
}

static void *idle_thread(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void exec_from_thread(void)
{
    pid_t child = tst_fork();
    if (child == 0) {
        static char pid[16];
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        pthread_t idle, t;
        pthread_create(&idle, NULL, idle_thread, NULL);
        if (pthread_create(&t, NULL, exec_thread_main, pid) != 0)
            _exit(126);
        for (;;)
            pause(); /* exec from the other thread ends this one */
    }
    int st = run_wait(child);
    tst_check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "execve from a non-main thread: same pid, gettid() == getpid(), one thread left",
              "child status 0x%x", st);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strncmp(argv[1], "--child-", 8) == 0) {
        if (!strcmp(argv[1], "--child-args"))
            return child_args(argc, argv);
        if (!strcmp(argv[1], "--child-fds"))
            return child_fds(argc, argv);
        if (!strcmp(argv[1], "--child-signals"))
            return child_signals();
        if (!strcmp(argv[1], "--child-after-thread"))
            return child_after_thread(argc, argv);
        tst_fail("unknown child mode %s", argv[1]);
        return 1;
    }
    tst_watchdog(90);
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        tst_brk("readlink(/proc/self/exe)");
    self[n] = '\0';

    exec_bin_true();
    exec_self_args();
    exec_cloexec();
    exec_signals();
    exec_from_thread();
    tst_exit();
}
