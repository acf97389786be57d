/*
 * sig_chld: SIGCHLD on a child's exit carries the child's pid, CLD_EXITED and the exit code;
 * SIGCHLD for a stopped child (CLD_STOPPED) unless SA_NOCLDSTOP; SIGCHLD set to SIG_IGN makes
 * children reap themselves (wait then fails with ECHILD).
 */
#include "tst.h"

static volatile sig_atomic_t got;
static volatile pid_t chld_pid;
static volatile int chld_code, chld_status;

static void on_chld(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    chld_pid = si->si_pid;
    chld_code = si->si_code;
    chld_status = si->si_status;
    got++;
}

static void install(int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | flags;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        tst_brk("sigaction(SIGCHLD)");
}

static void on_exit_info(sigset_t *unblocked)
{
    install(0);
    got = 0;
    pid_t child = tst_fork();
    if (child == 0)
        _exit(3);
    while (!got)
        sigsuspend(unblocked);
    tst_check_int(chld_pid, child, "SIGCHLD si_pid is the exited child's pid");
    tst_check_int(chld_code, CLD_EXITED, "SIGCHLD si_code is CLD_EXITED");
    tst_check_int(chld_status, 3, "SIGCHLD si_status is the exit code");
    int st = 0;
    pid_t r = waitpid(child, &st, 0);
    tst_check(r == child && WIFEXITED(st) && WEXITSTATUS(st) == 3, "the child is still reapable after SIGCHLD",
              "waitpid=%d status=0x%x", (int)r, st);

    got = 0;
    child = tst_fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    kill(child, SIGTERM);
    while (!got)
        sigsuspend(unblocked);
    tst_check(chld_pid == child && chld_code == CLD_KILLED && chld_status == SIGTERM,
              "SIGCHLD for a killed child: si_pid, CLD_KILLED, si_status SIGTERM", "pid=%d code=%d status=%d",
              (int)chld_pid, chld_code, chld_status);
    waitpid(child, &st, 0);
}

static void on_stop(sigset_t *unblocked)
{
    install(0);
    got = 0;
    pid_t child = tst_fork();
    if (child == 0) {
        for (;;)
            pause();
    }
    kill(child, SIGSTOP);
    while (!got)
        sigsuspend(unblocked);
    tst_check(chld_pid == child && chld_code == CLD_STOPPED && chld_status == SIGSTOP,
              "SIGCHLD for a stopped child: CLD_STOPPED, si_status SIGSTOP", "pid=%d code=%d status=%d",
              (int)chld_pid, chld_code, chld_status);
    int st;
    waitpid(child, &st, WUNTRACED);

    /* SA_NOCLDSTOP: no SIGCHLD for the continue/stop, but one for the exit */
    install(SA_NOCLDSTOP);
    got = 0;
    kill(child, SIGCONT);
    kill(child, SIGSTOP);
    waitpid(child, &st, WUNTRACED); /* the stop has happened once this returns */
    sigset_t pend;
    sigpending(&pend); /* SIGCHLD is blocked here: one generated for the stop would be pending */
    int got_for_stop = got + sigismember(&pend, SIGCHLD);
    kill(child, SIGKILL);
    while (!got)
        sigsuspend(unblocked);
    tst_check(got_for_stop == 0 && chld_code == CLD_KILLED && chld_pid == child,
              "SA_NOCLDSTOP: no SIGCHLD for stop/continue, one for the kill", "signals before kill %d, code %d",
              got_for_stop, chld_code);
    waitpid(child, &st, 0);
}

static void ignored(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGCHLD, &sa, NULL);
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = tst_fork();
        if (kids[i] == 0)
            _exit(1);
    }
    int st;
    /* with SIGCHLD ignored, wait blocks until all children are gone, then fails with ECHILD */
    pid_t r = wait(&st);
    tst_check(r == -1 && errno == ECHILD, "SIGCHLD SIG_IGN: children reap themselves, wait() gives ECHILD",
              "wait returned %d", (int)r);
    tst_check_errno(kill(kids[0], 0), ESRCH, "SIGCHLD SIG_IGN: no zombie is left behind");
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
}

int main(void)
{
    tst_watchdog(90);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    sigdelset(&old, SIGCHLD);
    on_exit_info(&old);
    on_stop(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    ignored();
    tst_exit();
}
