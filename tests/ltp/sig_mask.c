/*
 * sig_mask: sigprocmask blocks delivery and sigpending shows the held signal; unblocking delivers it;
 * standard signals do not queue; SIGKILL/SIGSTOP cannot be blocked; a fork child inherits the mask
 * but not the pending set; sigsuspend waits with a temporary mask, returns EINTR and restores the mask.
 */
#include "tst.h"

static volatile sig_atomic_t count;
static volatile pid_t from;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    from = si->si_pid;
    count++;
}

static void block_and_pending(void)
{
    sigset_t set, old, pend, cur;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, &old) < 0)
        tst_brk("sigprocmask");
    count = 0;
    kill(getpid(), SIGUSR1);
    tst_check_int(count, 0, "a blocked SIGUSR1 is not delivered");
    sigemptyset(&pend);
    sigpending(&pend);
    tst_check(sigismember(&pend, SIGUSR1) == 1, "sigpending() contains the blocked SIGUSR1", "not pending");
    tst_check(sigismember(&pend, SIGUSR2) == 0, "sigpending() does not contain SIGUSR2", "pending");

    kill(getpid(), SIGUSR1); /* a second one merges with the first */
    sigprocmask(SIG_SETMASK, &old, &cur);
    tst_check(sigismember(&cur, SIGUSR1) == 1, "sigprocmask returns the previous mask (with SIGUSR1)",
              "SIGUSR1 missing from old mask");
    tst_check_int(count, 1, "unblocking delivers it once: standard signals do not queue");
    sigpending(&pend);
    tst_check(sigismember(&pend, SIGUSR1) == 0, "nothing pending after delivery", "SIGUSR1 still pending");

    /* SIG_UNBLOCK / SIG_SETMASK / query */
    sigprocmask(SIG_BLOCK, &set, NULL);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    sigprocmask(SIG_SETMASK, NULL, &cur);
    tst_check(sigismember(&cur, SIGUSR1) == 0, "SIG_UNBLOCK removes SIGUSR1 from the mask", "still blocked");

    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    sigprocmask(SIG_SETMASK, NULL, &cur);
    tst_check(!sigismember(&cur, SIGKILL) && !sigismember(&cur, SIGSTOP) && sigismember(&cur, SIGTERM),
              "blocking all signals leaves SIGKILL and SIGSTOP unblocked", "kill %d stop %d term %d",
              sigismember(&cur, SIGKILL), sigismember(&cur, SIGSTOP), sigismember(&cur, SIGTERM));
    sigprocmask(SIG_SETMASK, &old, NULL);

    tst_check_errno(sigprocmask(12345, &set, NULL), EINVAL, "sigprocmask with a bad 'how' fails with EINVAL");
}

static void inherited_by_child(void)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    kill(getpid(), SIGUSR1); /* pending in the parent */

    pid_t child = tst_fork();
    if (child == 0) {
        sigset_t cur, pend;
        sigprocmask(SIG_SETMASK, NULL, &cur);
        sigpending(&pend);
        if (!sigismember(&cur, SIGUSR1))
            tst_fail("child: SIGUSR1 is not blocked, the mask was not inherited");
        if (sigismember(&pend, SIGUSR1))
            tst_fail("child: SIGUSR1 pending, but fork must clear the pending set");
        tst_child_exit();
    }
    tst_reap_ok(child, "fork child inherits the blocked mask and starts with no pending signal");
    count = 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
    tst_check_int(count, 1, "the parent's pending SIGUSR1 is still delivered on unblock");
}

static void suspend(void)
{
    sigset_t set, old, during, after;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    count = 0;
    from = 0;

    pid_t parent = getpid();
    pid_t child = tst_fork();
    if (child == 0) {
        kill(parent, SIGUSR1);
        _exit(0);
    }
    during = old;
    sigdelset(&during, SIGUSR1);
    int r = 0, e = 0;
    while (count == 0) {
        r = sigsuspend(&during);
        e = errno;
    }
    tst_check(r == -1 && e == EINTR, "sigsuspend returns -1 EINTR after the handler ran", "r=%d errno=%d", r, e);
    tst_check_int(from, child, "the signal that woke sigsuspend came from the child (si_pid)");
    sigprocmask(SIG_SETMASK, NULL, &after);
    tst_check(sigismember(&after, SIGUSR1) == 1, "sigsuspend restores the mask (SIGUSR1 blocked again)",
              "SIGUSR1 not blocked after sigsuspend");
    tst_reap_ok(child, "signalling child exits 0");

    /* a signal already pending when sigsuspend unblocks it: returns at once */
    count = 0;
    kill(getpid(), SIGUSR1);
    r = sigsuspend(&during);
    tst_check(r == -1 && count == 1, "sigsuspend with SIGUSR1 already pending returns after running the handler",
              "r=%d count=%d", r, (int)count);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

int main(void)
{
    tst_watchdog(90);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGUSR1, &sa, NULL) < 0)
        tst_brk("sigaction");
    block_and_pending();
    inherited_by_child();
    suspend();
    tst_exit();
}
