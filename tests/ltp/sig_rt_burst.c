/*
 * sig_rt_burst: a child sends its parent a long burst of real-time signals with values, SIGRTMIN with
 * sigqueue (the process's queue) and SIGRTMIN+1 with rt_tgsigqueueinfo to the parent's main thread (that
 * thread's own queue), while the parent takes them in its handler. Every value must arrive exactly once,
 * with si_code SI_QUEUE and the child as sender. In the checkpoint pass the checkpoint lands anywhere in
 * the burst: signals that reach the parent while it is frozen (the shim holds them back) must neither be
 * lost nor come twice, before or after the restart.
 */
#include "tst.h"

enum { N = 400, BATCH = 8 };

static volatile unsigned char seen[2][N + 1];
static volatile sig_atomic_t total, bad_code, bad_sender, bad_value;
static volatile pid_t child;

static void on_rt(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int k = sig == SIGRTMIN ? 0 : 1, v = si->si_value.sival_int;
    if (si->si_code != SI_QUEUE)
        bad_code++;
    if (si->si_pid != child)
        bad_sender++;
    if (v < 1 || v > N)
        bad_value++;
    else if (seen[k][v] < 255)
        seen[k][v]++;
    total++;
}

/* One signal with its value; retried while the queue is full (EAGAIN). */
static int send_one(pid_t to, int sig, int value, int thread)
{
    for (int tries = 0; tries < 2000; tries++) {
        int r;
        if (thread) {
            siginfo_t si;
            memset(&si, 0, sizeof(si));
            si.si_signo = sig;
            si.si_code = SI_QUEUE;
            si.si_pid = getpid();
            si.si_uid = getuid();
            si.si_value.sival_int = value;
            r = (int)syscall(SYS_rt_tgsigqueueinfo, to, to, sig, &si);
        } else {
            union sigval sv = { .sival_int = value };
            r = sigqueue(to, sig, sv);
        }
        if (r == 0)
            return 0;
        if (errno != EAGAIN)
            return -1;
        tst_sleep_ms(1);
    }
    return -1;
}

int main(void)
{
    tst_watchdog(100);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    if (sigaction(SIGRTMIN, &sa, NULL) < 0 || sigaction(SIGRTMIN + 1, &sa, NULL) < 0)
        tst_brk("sigaction");
    /* the child's pid must be known before its first signal arrives */
    sigset_t rt, old;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigaddset(&rt, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &rt, &old);
    pid_t parent = getpid();
    pid_t pid = tst_fork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        /* bursts of BATCH of each, spread over about 1.5 s */
        for (int v = 1; v <= N; v++) {
            if (send_one(parent, SIGRTMIN, v, 0) < 0 || send_one(parent, SIGRTMIN + 1, v, 1) < 0) {
                tst_fail("sending value %d: %s", v, strerror(errno));
                _exit(1);
            }
            if (v % BATCH == 0)
                tst_sleep_ms(30);
        }
        _exit(0);
    }
    child = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);

    int st = -1;
    while (total < 2 * N) {
        tst_sleep_ms(10);
        if (st == -1 && waitpid(pid, &st, WNOHANG) != pid)
            st = -1;
        if (st != -1) {
            /* the sender is done: whatever is still to come is already queued */
            for (int i = 0; i < 100 && total < 2 * N; i++)
                tst_sleep_ms(10);
            break;
        }
    }
    if (st == -1 && waitpid(pid, &st, 0) != pid)
        tst_brk("waitpid");
    tst_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the sender sent every value", "status %#x", st);

    int missing = 0, twice = 0, first_missing = 0, first_twice = 0;
    for (int k = 0; k < 2; k++) {
        for (int v = 1; v <= N; v++) {
            if (seen[k][v] == 0 && !missing++)
                first_missing = (k ? -v : v);
            if (seen[k][v] > 1 && !twice++)
                first_twice = (k ? -v : v);
        }
    }
    tst_check(missing == 0, "every value of both signals arrived", "%d missing (first: %s value %d), %d received in all",
              missing, first_missing < 0 ? "SIGRTMIN+1" : "SIGRTMIN", abs(first_missing), (int)total);
    tst_check(twice == 0, "no value arrived twice", "%d twice (first: %s value %d)", twice,
              first_twice < 0 ? "SIGRTMIN+1" : "SIGRTMIN", abs(first_twice));
    tst_check_int((int)bad_value, 0, "no value out of range");
    tst_check_int((int)bad_code, 0, "every one with si_code SI_QUEUE");
    tst_check_int((int)bad_sender, 0, "every one from the sender");
    tst_exit();
}
