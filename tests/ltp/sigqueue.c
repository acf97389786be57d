/*
 * sigqueue: sigqueue() carries a value to the handler (si_value, si_code SI_QUEUE, si_pid of the
 * sender); real-time signals queue each instance in order while blocked; a child can sigqueue its
 * parent; sigtimedwait/sigwaitinfo receive a queued signal with its value synchronously.
 */
#include "tst.h"

enum { MAXQ = 16 };

static volatile sig_atomic_t nrecv;
static volatile int values[MAXQ];
static volatile pid_t senders[MAXQ];
static volatile int codes[MAXQ];

static void on_rt(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    if (nrecv < MAXQ) {
        values[nrecv] = si->si_value.sival_int;
        senders[nrecv] = si->si_pid;
        codes[nrecv] = si->si_code;
    }
    nrecv++;
}

int main(void)
{
    tst_watchdog(90);
    int rt = SIGRTMIN + 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(rt, &sa, NULL) < 0)
        tst_brk("sigaction(SIGRTMIN+1)");

    /* to self, unblocked: delivered before sigqueue returns */
    nrecv = 0;
    union sigval v = { .sival_int = 1234 };
    int r = sigqueue(getpid(), rt, v);
    tst_check(r == 0 && nrecv == 1, "sigqueue to self runs the handler before returning", "r=%d n=%d", r,
              (int)nrecv);
    tst_check_int(values[0], 1234, "si_value.sival_int carries the queued value");
    tst_check_int(codes[0], SI_QUEUE, "si_code is SI_QUEUE");
    tst_check_int(senders[0], getpid(), "si_pid is the sender's getpid()");

    /* blocked: every instance queues, delivered in order */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, rt);
    sigprocmask(SIG_BLOCK, &set, &old);
    nrecv = 0;
    for (int i = 1; i <= 5; i++) {
        v.sival_int = i * 11;
        if (sigqueue(getpid(), rt, v) < 0)
            tst_fail("sigqueue #%d: %s", i, strerror(errno));
    }
    tst_check_int(nrecv, 0, "blocked real-time signals are held");
    sigprocmask(SIG_SETMASK, &old, NULL);
    int in_order = nrecv == 5;
    for (int i = 0; i < 5 && in_order; i++)
        in_order = values[i] == (i + 1) * 11;
    tst_check(in_order, "5 queued real-time signals are all delivered, in order, with their values",
              "received %d, first values %d %d %d", (int)nrecv, values[0], values[1], values[2]);

    /* from a child to the parent */
    sigprocmask(SIG_BLOCK, &set, NULL);
    nrecv = 0;
    pid_t parent = getpid();
    pid_t child = tst_fork();
    if (child == 0) {
        union sigval cv = { .sival_int = (int)getpid() };
        _exit(sigqueue(parent, rt, cv) == 0 ? 0 : 1);
    }
    sigset_t during = old;
    sigdelset(&during, rt);
    while (nrecv == 0)
        sigsuspend(&during);
    tst_check(senders[0] == child && values[0] == child && codes[0] == SI_QUEUE,
              "child sigqueue(parent, value = its getpid()): si_pid == si_value == the child's pid",
              "si_pid=%d value=%d code=%d child=%d", (int)senders[0], values[0], codes[0], (int)child);
    tst_reap_ok(child, "the sigqueue sender child exits 0");

    /* synchronous receipt */
    v.sival_int = 777;
    sigqueue(getpid(), rt, v);
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    struct timespec ts = { 30, 0 };
    r = sigtimedwait(&set, &si, &ts);
    tst_check(r == rt && si.si_value.sival_int == 777 && si.si_pid == getpid() && si.si_code == SI_QUEUE,
              "sigtimedwait receives the queued signal with value, pid and SI_QUEUE",
              "r=%d value=%d pid=%d code=%d", r, si.si_value.sival_int, (int)si.si_pid, si.si_code);
    ts.tv_sec = 0;
    ts.tv_nsec = 1000000;
    /* A stop and continue (Ctrl-Z/fg, or a checkpoint freezing the process) wakes sigtimedwait with
     * EINTR, as signal(7) says; a program waits again */
    do
        r = sigtimedwait(&set, &si, &ts);
    while (r == -1 && errno == EINTR);
    int e = errno;
    tst_check(r == -1 && e == EAGAIN, "sigtimedwait with nothing queued times out with EAGAIN", "r=%d errno %s", r,
              strerror(e));
    sigprocmask(SIG_SETMASK, &old, NULL);

    tst_check_errno(sigqueue(getpid(), 0x7fff, v), EINVAL, "sigqueue with an invalid signal fails with EINVAL");
    tst_exit();
}
