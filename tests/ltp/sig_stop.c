/*
 * sig_stop: job-control stops. SIGSTOP stops a child (waitpid WUNTRACED: WIFSTOPPED, WSTOPSIG; /proc
 * state T); SIGCONT resumes it (WCONTINUED: WIFCONTINUED; state no longer T); the same seen through
 * waitid (CLD_STOPPED / CLD_CONTINUED); a SIGTSTP handler; a stopped child can still be killed.
 */
#include "tst.h"

#include <fcntl.h>

static pid_t spinner(int *report_fd)
{
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t child = tst_fork();
    if (child == 0) {
        /* counts SIGCONT-resumed laps through the pipe: proves it runs again after SIGCONT */
        close(p[0]);
        for (;;) {
            if (write(p[1], "x", 1) < 0)
                _exit(1);
            tst_sleep_ms(5);
        }
    }
    close(p[1]);
    *report_fd = p[0];
    return child;
}

static void with_waitpid(void)
{
    int rfd;
    pid_t child = spinner(&rfd);
    char c;
    tst_check(read(rfd, &c, 1) == 1, "child runs", "no output from the child");

    kill(child, SIGSTOP);
    int st = 0;
    pid_t r = waitpid(child, &st, WUNTRACED);
    tst_check(r == child && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP,
              "waitpid(WUNTRACED) after SIGSTOP: WIFSTOPPED, WSTOPSIG == SIGSTOP", "r=%d status=0x%x", (int)r, st);
    tst_check(tst_proc_state(child, 0) == 'T', "/proc/<child>/stat shows state T while stopped", "state '%c'",
              tst_proc_state(child, 0));

    r = waitpid(child, &st, WUNTRACED | WNOHANG);
    tst_check_int(r, 0, "the stop is reported only once (second WUNTRACED|WNOHANG returns 0)");
    r = waitpid(child, &st, WNOHANG);
    tst_check_int(r, 0, "waitpid without WUNTRACED does not report a stopped child");

    /* drain what it wrote before the stop; a stopped child writes no more */
    int fl = fcntl(rfd, F_GETFL);
    fcntl(rfd, F_SETFL, fl | O_NONBLOCK);
    while (read(rfd, &c, 1) == 1)
        ;
    fcntl(rfd, F_SETFL, fl);

    kill(child, SIGCONT);
    st = 0;
    r = waitpid(child, &st, WCONTINUED);
    tst_check(r == child && WIFCONTINUED(st), "waitpid(WCONTINUED) after SIGCONT: WIFCONTINUED",
              "r=%d status=0x%x", (int)r, st);
    tst_check(read(rfd, &c, 1) == 1, "the continued child runs again (writes to the pipe)", "no output");
    tst_check(tst_proc_state(child, 0) != 'T', "state is no longer T after SIGCONT", "state '%c'",
              tst_proc_state(child, 0));

    kill(child, SIGSTOP);
    waitpid(child, &st, WUNTRACED);
    kill(child, SIGKILL); /* SIGKILL ends a stopped process without SIGCONT */
    r = waitpid(child, &st, 0);
    tst_check(r == child && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "a stopped child dies from SIGKILL",
              "r=%d status=0x%x", (int)r, st);
    close(rfd);
}

static void with_waitid(void)
{
    int rfd;
    pid_t child = spinner(&rfd);
    char c;
    if (read(rfd, &c, 1) != 1)
        tst_fail("the child did not start");

    kill(child, SIGSTOP);
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int r = waitid(P_PID, child, &si, WSTOPPED);
    tst_check(r == 0 && si.si_pid == child && si.si_code == CLD_STOPPED && si.si_status == SIGSTOP,
              "waitid(WSTOPPED): si_pid, CLD_STOPPED, si_status SIGSTOP", "r=%d pid=%d code=%d status=%d", r,
              (int)si.si_pid, si.si_code, si.si_status);

    kill(child, SIGCONT);
    memset(&si, 0, sizeof(si));
    r = waitid(P_PID, child, &si, WCONTINUED);
    tst_check(r == 0 && si.si_pid == child && si.si_code == CLD_CONTINUED && si.si_status == SIGCONT,
              "waitid(WCONTINUED): si_pid, CLD_CONTINUED, si_status SIGCONT", "r=%d pid=%d code=%d status=%d", r,
              (int)si.si_pid, si.si_code, si.si_status);

    kill(child, SIGTERM);
    memset(&si, 0, sizeof(si));
    r = waitid(P_PID, child, &si, WEXITED);
    tst_check(r == 0 && si.si_code == CLD_KILLED && si.si_status == SIGTERM, "waitid(WEXITED) after SIGTERM",
              "r=%d code=%d status=%d", r, si.si_code, si.si_status);
    close(rfd);
}

static volatile sig_atomic_t tstp_seen;
static void on_tstp(int sig)
{
    (void)sig;
    tstp_seen = 1;
    raise(SIGSTOP); /* what a shell-aware program does after tidying up */
}

static void tstp_handler(void)
{
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t child = tst_fork();
    if (child == 0) {
        close(p[0]);
        signal(SIGTSTP, on_tstp);
        /* SIGTSTP stays blocked except inside sigsuspend: with a check-then-pause() loop, a signal
         * landing between the check and pause() would leave the child paused for good. */
        sigset_t block, wait_mask;
        sigemptyset(&block);
        sigaddset(&block, SIGTSTP);
        sigprocmask(SIG_BLOCK, &block, &wait_mask);
        sigdelset(&wait_mask, SIGTSTP);
        tst_write_full(p[1], "r", 1);
        while (!tstp_seen)
            sigsuspend(&wait_mask);
        /* back from the stop */
        tst_write_full(p[1], "c", 1);
        _exit(5);
    }
    close(p[1]);
    char c = 0;
    if (read(p[0], &c, 1) != 1)
        tst_fail("the child did not become ready");
    kill(child, SIGTSTP);
    int st = 0;
    pid_t r = waitpid(child, &st, WUNTRACED);
    tst_check(r == child && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP,
              "SIGTSTP handler that raises SIGSTOP: the child stops", "r=%d status=0x%x", (int)r, st);
    kill(child, SIGCONT);
    c = 0;
    tst_check(read(p[0], &c, 1) == 1 && c == 'c', "after SIGCONT the handler returns and the child goes on",
              "read '%c'", c);
    r = waitpid(child, &st, 0);
    tst_check(r == child && WIFEXITED(st) && WEXITSTATUS(st) == 5, "the resumed child exits normally",
              "r=%d status=0x%x", (int)r, st);
    close(p[0]);
}

int main(void)
{
    tst_watchdog(90);
    with_waitpid();
    with_waitid();
    tstp_handler();
    tst_exit();
}
