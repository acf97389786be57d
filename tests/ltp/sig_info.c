/*
 * sig_info: SA_SIGINFO handlers see who sent a signal. si_pid/si_uid equal the sender's getpid()/
 * getuid() for kill() from a child to its parent, from the parent to a child and to oneself; si_code is
 * SI_USER for kill() and SI_TKILL for raise(); the handler gets the signal number it was installed for.
 */
#include "tst.h"

static volatile sig_atomic_t got;
static volatile pid_t got_pid;
static volatile uid_t got_uid;
static volatile int got_code, got_signo, got_arg;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_arg = sig;
    got_signo = si->si_signo;
    got_pid = si->si_pid;
    got_uid = si->si_uid;
    got_code = si->si_code;
    got = 1;
}

static void install(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) < 0)
        tst_brk("sigaction(%d)", sig);
}

/* Waits with the signal blocked, so it cannot slip in between the test of the flag and the sleep. */
static void wait_for_signal(const sigset_t *unblocked)
{
    while (!got)
        sigsuspend(unblocked);
}

static void child_to_parent(void)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    install(SIGUSR1);
    got = 0;

    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t parent = getpid();
    pid_t child = tst_fork();
    if (child == 0) {
        struct { pid_t pid; uid_t uid; int kill_ret; } me = { getpid(), getuid(), 0 };
        me.kill_ret = kill(parent, SIGUSR1);
        tst_write_full(p[1], &me, sizeof(me));
        _exit(0);
    }
    close(p[1]);
    struct { pid_t pid; uid_t uid; int kill_ret; } sender = { 0, 0, -1 };
    if (tst_read_full(p[0], &sender, sizeof(sender)) != sizeof(sender))
        tst_fail("child did not report its pid");
    close(p[0]);
    tst_check(sender.kill_ret == 0, "child kill(getppid(), SIGUSR1) succeeds", "returned %d", sender.kill_ret);
    wait_for_signal(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);

    tst_check_int(got_arg, SIGUSR1, "child->parent: handler's signal number is SIGUSR1");
    tst_check_int(got_signo, SIGUSR1, "child->parent: si_signo is SIGUSR1");
    tst_check_int(got_pid, sender.pid, "child->parent: si_pid equals the sender's getpid()");
    tst_check_int(got_pid, child, "child->parent: si_pid equals the pid fork() returned");
    tst_check_int(got_uid, sender.uid, "child->parent: si_uid equals the sender's getuid()");
    tst_check_int(got_code, SI_USER, "child->parent: si_code is SI_USER");
    tst_reap_ok(child, "sender child exits 0");
}

static void parent_to_child(void)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, &old);
    install(SIGUSR2);
    got = 0;

    int ready[2];
    if (pipe(ready) < 0)
        tst_brk("pipe");
    pid_t parent = getpid();
    uid_t parent_uid = getuid();
    pid_t child = tst_fork();
    if (child == 0) {
        close(ready[0]);
        /* the handler is inherited and SIGUSR2 is still blocked: report ready, then wait */
        tst_write_full(ready[1], "r", 1);
        wait_for_signal(&old);
        if (got_pid != parent)
            tst_fail("parent->child: si_pid %d, expected the parent's getpid() %d", (int)got_pid, (int)parent);
        if (got_pid != getppid())
            tst_fail("parent->child: si_pid %d is not the child's getppid() %d", (int)got_pid, (int)getppid());
        if (got_uid != parent_uid)
            tst_fail("parent->child: si_uid %d, expected %d", (int)got_uid, (int)parent_uid);
        if (got_code != SI_USER || got_signo != SIGUSR2)
            tst_fail("parent->child: si_code %d si_signo %d, expected SI_USER SIGUSR2", got_code, got_signo);
        tst_child_exit();
    }
    close(ready[1]);
    char c;
    if (tst_read_full(ready[0], &c, 1) != 1)
        tst_fail("child never became ready");
    close(ready[0]);
    tst_check(kill(child, SIGUSR2) == 0, "kill(child, SIGUSR2) succeeds", "%s", strerror(errno));
    tst_reap_ok(child, "child's SA_SIGINFO handler sees si_pid/si_uid of the parent, SI_USER");
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void to_self(void)
{
    install(SIGUSR1);
    got = 0;
    /* a signal a single-threaded process sends itself, unblocked, is delivered before kill() returns */
    int r = kill(getpid(), SIGUSR1);
    tst_check(r == 0 && got, "kill(getpid(), SIGUSR1) runs the handler before kill returns", "r=%d got=%d", r,
              (int)got);
    tst_check_int(got_pid, getpid(), "kill to self: si_pid == getpid()");
    tst_check_int(got_uid, getuid(), "kill to self: si_uid == getuid()");
    tst_check_int(got_code, SI_USER, "kill to self: si_code is SI_USER");

    got = 0;
    raise(SIGUSR1);
    tst_check(got && got_pid == getpid() && got_code == SI_TKILL,
              "raise(SIGUSR1): handler ran with si_pid == getpid(), si_code SI_TKILL",
              "got=%d si_pid=%d code=%d", (int)got, (int)got_pid, got_code);
}

static void errors(void)
{
    tst_check_errno(kill(getpid(), 65), EINVAL, "kill with an invalid signal number fails with EINVAL");
    tst_check(kill(getpid(), 0) == 0, "kill(getpid(), 0) probes an existing process", "%s", strerror(errno));

    pid_t child = tst_fork();
    if (child == 0)
        _exit(0);
    int st;
    waitpid(child, &st, 0);
    /* pids are handed out upwards, so a just-reaped pid is not reused this soon */
    tst_check_errno(kill(child, 0), ESRCH, "kill on a reaped child's pid fails with ESRCH");
}

int main(void)
{
    tst_watchdog(90);
    child_to_parent();
    parent_to_child();
    to_self();
    errors();
    tst_exit();
}
