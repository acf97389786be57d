/*
 * zombie_sigchld: a parent with SIGCHLD blocked forks two children that end at once (exit 5, and
 * SIGUSR1), takes the one SIGCHLD their ends queue (sigtimedwait) and keeps them as zombies for about a
 * second and a half, then checks that no SIGCHLD is pending any more and reaps them with their status.
 * Under the suite's ckpt pass the zombies are made again by the restart: their parent must not get the
 * SIGCHLD of their ending a second time.
 */
#include "tst.h"
#include <sys/wait.h>

int main(void)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);

    pid_t a = tst_fork();
    if (a == 0)
        _exit(5);
    pid_t b = tst_fork();
    if (b == 0) {
        raise(SIGUSR1);
        _exit(0);
    }
    siginfo_t si;
    if (waitid(P_PID, a, &si, WEXITED | WNOWAIT) || waitid(P_PID, b, &si, WEXITED | WNOWAIT))
        tst_brk("waitid(WNOWAIT)");
    struct timespec zero = { 0, 0 };
    int got = sigtimedwait(&chld, &si, &zero);
    tst_check(got == SIGCHLD, "the children's ends queued a SIGCHLD", "sigtimedwait gave %d", got);

    for (int i = 0; i < 30; i++)
        tst_sleep_ms(50);

    sigset_t pend;
    sigpending(&pend);
    tst_check(!sigismember(&pend, SIGCHLD), "no SIGCHLD is pending: the parent had it once", "%s", "SIGCHLD pending again");
    int sa = -1, sb = -1;
    pid_t ra = waitpid(a, &sa, 0), rb = waitpid(b, &sb, 0);
    tst_check(ra == a && rb == b && WIFEXITED(sa) && WEXITSTATUS(sa) == 5 && WIFSIGNALED(sb) && WTERMSIG(sb) == SIGUSR1,
              "the zombies are reaped with their status (exit 5, SIGUSR1)", "status %#x and %#x", sa, sb);
    tst_exit();
}
