/*
 * ghost_objects: what a checkpoint must carry across a restart, exercised for about a second and a half
 * so that the suite's ckpt pass (a checkpoint at a random point, then a restart) catches it mid-way:
 * a parent, a child and a grandchild (process tree, a process group of the child's own), threads that
 * hand a counter around with a mutex and condition variable (futexes in use) and are joined at the end
 * (clear_child_tid), a pipe and a UNIX socketpair with bytes in flight (written at the start, read at the
 * end), shared anonymous memory between parent and child (the LTP result page), a real-time signal
 * queued with its value while blocked (and 150 more of another, more than one PTRACE_PEEKSIGINFO page), an ITIMER_REAL that keeps firing, and three zombies (children
 * that ended at once: exit(3), SIGUSR2, SIGKILL) reaped only at the end.
 */
#include "tst.h"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>

#define ROUNDS 150
#define THREADS 3

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int turn, counter;
static volatile sig_atomic_t alarms;

static void on_alarm(int sig) { (void)sig; alarms++; }

static void *worker(void *arg)
{
    long me = (long)arg;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_mutex_lock(&mu);
        while (turn != me)
            pthread_cond_wait(&cv, &mu);
        counter++;
        turn = (turn + 1) % THREADS;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
        tst_sleep_ms(8);
    }
    return (void *)(me + 100);
}

int main(void)
{
    char ready[32];
    int rn = snprintf(ready, sizeof ready, "ready %d\n", (int)getpid());
    tst_write_full(STDOUT_FILENO, ready, rn); /* for tests that checkpoint it (RestartTest) */
    volatile int *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int p[2], sv[2];
    if (page == MAP_FAILED || pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        tst_brk("setup: %s", strerror(errno));
    tst_write_full(p[1], "through the pipe", 16);
    tst_write_full(sv[0], "through the socket", 18);

    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN + 2);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    union sigval v = { .sival_int = 4242 };
    sigqueue(getpid(), SIGRTMIN + 2, v);
    /* more queued than one PTRACE_PEEKSIGINFO page (64): every one must come back, in order */
    sigaddset(&rt, SIGRTMIN + 3);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    for (int i = 0; i < 150; i++) {
        union sigval w = { .sival_int = 1000 + i };
        if (sigqueue(getpid(), SIGRTMIN + 3, w))
            tst_brk("sigqueue %d: %s", i, strerror(errno));
    }

    signal(SIGALRM, on_alarm);
    struct itimerval it = { { 0, 100000 }, { 0, 100000 } };
    setitimer(ITIMER_REAL, &it, NULL);

    pid_t z_exit = tst_fork();
    if (z_exit == 0)
        _exit(3);
    pid_t z_sig = tst_fork();
    if (z_sig == 0) {
        signal(SIGUSR2, SIG_DFL);
        raise(SIGUSR2);
        _exit(0);
    }
    pid_t z_kill = tst_fork();
    if (z_kill == 0)
        for (;;)
            pause();
    kill(z_kill, SIGKILL);

    pid_t child = tst_fork();
    if (child == 0) {
        setpgid(0, 0);
        pid_t grand = tst_fork();
        if (grand == 0) {
            tst_sleep_ms(1000);
            page[1] = 77;
            _exit(5);
        }
        tst_sleep_ms(1400);
        char buf[32] = {0}, sb[32] = {0};
        ssize_t n = read(p[0], buf, sizeof buf);
        ssize_t m = recv(sv[1], sb, sizeof sb, 0);
        int st = 0;
        waitpid(grand, &st, 0);
        int ok = n == 16 && !memcmp(buf, "through the pipe", 16) && m == 18 && !memcmp(sb, "through the socket", 18)
                 && WIFEXITED(st) && WEXITSTATUS(st) == 5 && page[1] == 77 && getpgrp() == getpid();
        if (!ok)
            tst_fail("child: pipe %zd '%.*s', socket %zd '%.*s', grandchild status %#x, shared %d, pgrp %d", n, (int)n,
                     buf, m, (int)m, sb, st, page[1], (int)getpgrp());
        page[0] = 99;
        _exit(ok ? 0 : 1);
    }

    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    int joined = 1;
    for (long i = 0; i < THREADS; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        joined &= (long)rv == i + 100;
    }
    tst_check(joined && counter == THREADS * ROUNDS, "threads handed the counter around with a futex and were joined",
              "counter %d, joined %d", counter, joined);

    tst_check(tst_reap_ok(child, "child"), "the child read the bytes in flight, its grandchild and the shared page",
              "see the child's FAIL line");
    tst_check_int(page[0], 99, "the child's write reached the shared page");

    int zs1 = -1, zs2 = -1, zs3 = -1;
    waitpid(z_exit, &zs1, 0);
    waitpid(z_sig, &zs2, 0);
    waitpid(z_kill, &zs3, 0);
    tst_check(WIFEXITED(zs1) && WEXITSTATUS(zs1) == 3 && WIFSIGNALED(zs2) && WTERMSIG(zs2) == SIGUSR2
              && WIFSIGNALED(zs3) && WTERMSIG(zs3) == SIGKILL,
              "the zombies are reaped with their status (exit 3, SIGUSR2, SIGKILL)", "status %#x, %#x and %#x", zs1, zs2,
              zs3);

    siginfo_t si;
    struct timespec zero = { 0, 0 };
    sigset_t rt3;
    sigemptyset(&rt3);
    sigaddset(&rt3, SIGRTMIN + 3);
    int in_order = 0;
    while (sigtimedwait(&rt3, &si, &zero) == SIGRTMIN + 3 && si.si_value.sival_int == 1000 + in_order)
        in_order++;
    tst_check(in_order == 150, "150 queued real-time signals are all still pending, in order, with their values",
              "%d in order", in_order);
    int got = sigtimedwait(&rt, &si, &zero);
    tst_check(got == SIGRTMIN + 2 && si.si_value.sival_int == 4242 && si.si_code == SI_QUEUE,
              "the queued real-time signal is still pending, with its value", "got %d value %d code %d", got,
              si.si_value.sival_int, si.si_code);
    struct itimerval now;
    getitimer(ITIMER_REAL, &now);
    tst_check(alarms >= 5 && now.it_interval.tv_usec == 100000, "the interval timer kept firing",
              "%d alarms, interval %ld us", (int)alarms, (long)now.it_interval.tv_usec);
    tst_exit();
}
