/*
 * fork_wait: fork, exit statuses and the wait family: WIFEXITED/WEXITSTATUS, WIFSIGNALED/WTERMSIG,
 * waitpid on a specific pid among several, WNOHANG on a running child, wait() for any child, ECHILD.
 */
#include "tst.h"

#include <sys/resource.h>

/* A child that blocks until the pipe's write end closes, then exits with code. */
static pid_t child_exit_on_eof(int rfd, int wfd, int code)
{
    pid_t pid = tst_fork();
    if (pid == 0) {
        char c;
        close(wfd);
        while (read(rfd, &c, 1) > 0)
            ;
        _exit(code);
    }
    return pid;
}

static void exit_codes(void)
{
    static const int codes[] = { 0, 1, 42, 255 };
    for (unsigned i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        pid_t pid = tst_fork();
        if (pid == 0)
            _exit(codes[i]);
        int st = 0;
        pid_t r = waitpid(pid, &st, 0);
        char desc[96];
        snprintf(desc, sizeof(desc), "child _exit(%d): WIFEXITED and WEXITSTATUS", codes[i]);
        tst_check(r == pid && WIFEXITED(st) && !WIFSIGNALED(st) && WEXITSTATUS(st) == codes[i], desc,
                  "waitpid=%d, pid=%d, status=0x%x", (int)r, (int)pid, st);
    }

    /* exit() (not _exit) must flush and still give the status */
    pid_t pid = tst_fork();
    if (pid == 0)
        exit(7);
    int st = 0;
    waitpid(pid, &st, 0);
    tst_check(WIFEXITED(st) && WEXITSTATUS(st) == 7, "child exit(7) through libc exit(): WEXITSTATUS == 7", "status=0x%x", st);
}

static void killed_children(void)
{
    /* killed by a signal it sends itself */
    pid_t pid = tst_fork();
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        kill(getpid(), SIGTERM);
        _exit(99);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    tst_check(WIFSIGNALED(st) && !WIFEXITED(st) && WTERMSIG(st) == SIGTERM,
              "child killed by its own SIGTERM: WIFSIGNALED, WTERMSIG == SIGTERM", "status=0x%x", st);

    /* killed by the parent while blocked */
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid = child_exit_on_eof(p[0], p[1], 0);
    close(p[0]);
    if (kill(pid, SIGKILL) < 0)
        tst_fail("kill(child, SIGKILL): %s", strerror(errno));
    st = 0;
    pid_t r = waitpid(pid, &st, 0);
    tst_check(r == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
              "parent SIGKILLs a blocked child: WTERMSIG == SIGKILL", "waitpid=%d status=0x%x", (int)r, st);
    close(p[1]);

    /* abort(): SIGABRT */
    pid = tst_fork();
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core); /* no core file in the caller's directory */
        abort();
    }
    st = 0;
    waitpid(pid, &st, 0);
    tst_check(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child abort(): WTERMSIG == SIGABRT",
              "status=0x%x", st);
}

static void specific_pids(void)
{
    enum { N = 4 };
    pid_t pids[N];
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    for (int i = 0; i < N; i++)
        pids[i] = child_exit_on_eof(p[0], p[1], 10 + i);
    close(p[0]);

    /* WNOHANG while they are all blocked */
    int st = 0;
    pid_t r = waitpid(pids[2], &st, WNOHANG);
    tst_check(r == 0, "waitpid(pid, WNOHANG) on a running child returns 0", "returned %d", (int)r);
    r = waitpid(-1, &st, WNOHANG);
    tst_check(r == 0, "waitpid(-1, WNOHANG) with only running children returns 0", "returned %d", (int)r);

    int distinct = 1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++)
            if (pids[i] == pids[j] || pids[i] == getpid())
                distinct = 0;
    tst_check(distinct, "forked children have distinct pids, none equal to the parent's", "pids %d %d %d %d",
              (int)pids[0], (int)pids[1], (int)pids[2], (int)pids[3]);

    close(p[1]); /* all of them exit now, in any order */

    /* reap in reverse order of creation: each waitpid must return exactly that child and its code */
    int ok = 1;
    for (int i = N - 1; i >= 0; i--) {
        st = 0;
        r = waitpid(pids[i], &st, 0);
        if (r != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 10 + i) {
            tst_fail("waitpid(pids[%d]=%d) returned %d status 0x%x, expected exit %d", i, (int)pids[i], (int)r,
                     st, 10 + i);
            ok = 0;
        }
    }
    if (ok)
        tst_pass("waitpid on a specific pid returns that child with its own exit code (reverse order)");

    r = waitpid(pids[0], &st, 0);
    tst_check_errno(r, ECHILD, "waitpid on an already reaped child fails with ECHILD");
}

static void wait_any(void)
{
    enum { N = 5 };
    pid_t pids[N];
    int seen[N] = { 0 };
    for (int i = 0; i < N; i++) {
        pids[i] = tst_fork();
        if (pids[i] == 0)
            _exit(20 + i);
    }
    int ok = 1;
    for (int k = 0; k < N; k++) {
        int st = 0;
        pid_t r = wait(&st);
        int idx = -1;
        for (int i = 0; i < N; i++)
            if (pids[i] == r)
                idx = i;
        if (idx < 0 || seen[idx] || !WIFEXITED(st) || WEXITSTATUS(st) != 20 + idx) {
            tst_fail("wait() returned %d status 0x%x, not an unreaped child with its code", (int)r, st);
            ok = 0;
        } else {
            seen[idx] = 1;
        }
    }
    if (ok)
        tst_pass("wait() returns each of %d children exactly once with the right status", N);

    int st;
    tst_check_errno(wait(&st), ECHILD, "wait() with no children left fails with ECHILD");
    tst_check_errno(waitpid(-1, &st, WNOHANG), ECHILD, "waitpid(-1, WNOHANG) with no children fails with ECHILD");
    tst_check_errno(waitpid(getppid(), &st, 0), ECHILD, "waitpid on our parent (not a child) fails with ECHILD");
}

static void grandchild_not_ours(void)
{
    /* a grandchild is not our child: only its parent can reap it */
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t child = tst_fork();
    if (child == 0) {
        close(p[0]);
        pid_t g = fork();
        if (g == 0)
            _exit(3);
        tst_write_full(p[1], &g, sizeof(g));
        int st = 0;
        pid_t r = waitpid(g, &st, 0);
        _exit(r == g && WIFEXITED(st) && WEXITSTATUS(st) == 3 ? 0 : 1);
    }
    close(p[1]);
    pid_t g = 0;
    tst_read_full(p[0], &g, sizeof(g));
    close(p[0]);
    int st;
    pid_t r = waitpid(g, &st, WNOHANG);
    tst_check(g > 0 && r == -1 && errno == ECHILD, "waitpid on a grandchild fails with ECHILD",
              "grandchild %d, returned %d", (int)g, (int)r);
    tst_reap_ok(child, "the middle child reaps its own child with its exit code");
}

int main(void)
{
    tst_watchdog(90);
    exit_codes();
    killed_children();
    specific_pids();
    wait_any();
    grandchild_not_ours();
    tst_exit();
}
