/*
 * sig_thread: thread-directed signals. tgkill(getpid(), tid, sig) runs the handler in exactly that
 * thread (si_code SI_TKILL, si_pid the sender's pid); when that thread blocks the signal it stays
 * pending for that thread only; tgkill with a wrong tgid fails with ESRCH.
 */
#include "tst.h"

#include <pthread.h>

enum { NTHREADS = 4 };

static volatile sig_atomic_t got;
static volatile pid_t handler_tid, handler_si_pid;
static volatile int handler_code;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    handler_tid = tst_gettid();
    handler_si_pid = si->si_pid;
    handler_code = si->si_code;
    got = 1;
}

struct worker {
    pthread_t thread;
    volatile pid_t tid;
    volatile int block_usr1;
    volatile int pending_seen; /* -1 not yet checked */
};

static struct worker workers[NTHREADS];
static volatile int stop;
static volatile int check_pending;

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    if (w->block_usr1) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    }
    w->tid = tst_gettid();
    while (!stop) {
        if (w->block_usr1 && check_pending && w->pending_seen < 0) {
            sigset_t pend;
            sigpending(&pend);
            w->pending_seen = sigismember(&pend, SIGUSR1);
        }
        tst_sleep_ms(1);
    }
    return NULL;
}

int main(void)
{
    tst_watchdog(90);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);

    for (int i = 0; i < NTHREADS; i++) {
        workers[i].block_usr1 = i == NTHREADS - 1;
        workers[i].pending_seen = -1;
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
            tst_brk("pthread_create");
    }
    for (int i = 0; i < NTHREADS; i++)
        for (int k = 0; k < 30000 && !workers[i].tid; k++)
            tst_sleep_ms(1);

    /* each unblocked worker in turn: the handler must run in the targeted thread */
    int ok = 1;
    for (int i = 0; i < NTHREADS - 1; i++) {
        got = 0;
        int r = (int)syscall(SYS_tgkill, getpid(), workers[i].tid, SIGUSR1);
        if (r != 0) {
            tst_fail("tgkill(%d, %d, SIGUSR1): %s", (int)getpid(), (int)workers[i].tid, strerror(errno));
            ok = 0;
            continue;
        }
        if (!tst_wait_flag(&got, 30)) {
            tst_fail("tgkill to thread %d: the handler never ran", (int)workers[i].tid);
            ok = 0;
            continue;
        }
        if (handler_tid != workers[i].tid) {
            tst_fail("tgkill to thread %d: the handler ran in thread %d", (int)workers[i].tid, (int)handler_tid);
            ok = 0;
        }
        if (handler_si_pid != getpid() || handler_code != SI_TKILL) {
            tst_fail("tgkill: si_pid %d si_code %d, expected %d SI_TKILL", (int)handler_si_pid, handler_code,
                     (int)getpid());
            ok = 0;
        }
    }
    if (ok)
        tst_pass("tgkill runs the handler in the targeted thread, si_pid == getpid(), SI_TKILL");

    /* the main thread itself */
    got = 0;
    syscall(SYS_tgkill, getpid(), tst_gettid(), SIGUSR1);
    tst_check(got && handler_tid == getpid(), "tgkill to the main thread runs the handler in it, synchronously",
              "got=%d tid=%d", (int)got, (int)handler_tid);

    /* a thread that blocks SIGUSR1: pending for it, not for the main thread, not delivered elsewhere */
    struct worker *b = &workers[NTHREADS - 1];
    got = 0;
    tst_check(syscall(SYS_tgkill, getpid(), b->tid, SIGUSR1) == 0, "tgkill to a thread that blocks SIGUSR1",
              "%s", strerror(errno));
    sigset_t pend;
    sigpending(&pend);
    tst_check(sigismember(&pend, SIGUSR1) == 0, "the thread-directed signal is not pending in the main thread",
              "pending in main");
    check_pending = 1;
    for (int k = 0; k < 30000 && b->pending_seen < 0; k++)
        tst_sleep_ms(1);
    tst_check_int(b->pending_seen, 1, "it is pending in the blocking thread (its sigpending)");
    tst_check_int(got, 0, "no other thread ran the handler for it");

    tst_check_errno(syscall(SYS_tgkill, getppid(), workers[0].tid, SIGUSR1), ESRCH,
                    "tgkill with the wrong tgid fails with ESRCH");
    tst_check(syscall(SYS_tgkill, getpid(), workers[0].tid, 0) == 0, "tgkill(sig 0) probes a live thread",
              "%s", strerror(errno));

    stop = 1;
    /* the SIGUSR1 still pending in the blocking thread is discarded when that thread exits */
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(workers[i].thread, NULL);
    tst_exit();
}
