/*
 * threads: 8 pthreads meet at a condition variable, then add to a mutex-protected counter (the total
 * must be exact); their tids are distinct, differ from the pid, getpid() is the same in all of them and
 * /proc/self/task lists exactly them; raw futex FUTEX_WAIT/FUTEX_WAKE wakes sleeping waiters (and
 * FUTEX_WAIT on a changed word returns EAGAIN, with a timeout ETIMEDOUT); pthread_kill runs the
 * handler in the targeted thread; pthread_join returns each thread's value.
 */
#include "tst.h"

#include <dirent.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>

enum { NTHREADS = 8, ITERS = 20000 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrived_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t go_cv = PTHREAD_COND_INITIALIZER;
static int arrived, go, leave;
static long counter;

struct info {
    int index;
    pid_t tid, pid;
    volatile sig_atomic_t signalled;
};
static struct info infos[NTHREADS];
static pthread_t threads[NTHREADS];

static volatile pid_t handler_tid;
static volatile sig_atomic_t handler_ran;

static void on_usr1(int sig)
{
    (void)sig;
    handler_tid = tst_gettid();
    handler_ran = 1;
}

static void *worker(void *arg)
{
    struct info *in = arg;
    in->tid = tst_gettid();
    in->pid = getpid();

    pthread_mutex_lock(&lock);
    arrived++;
    pthread_cond_signal(&arrived_cv);
    while (!go)
        pthread_cond_wait(&go_cv, &lock);
    pthread_mutex_unlock(&lock);

    for (int i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }

    /* stay alive until main has looked at /proc/self/task and signalled us */
    pthread_mutex_lock(&lock);
    while (!leave)
        pthread_cond_wait(&go_cv, &lock);
    pthread_mutex_unlock(&lock);
    return (void *)(intptr_t)(in->index * 3 + 1);
}

static int tid_index(pid_t tid)
{
    for (int i = 0; i < NTHREADS; i++)
        if (infos[i].tid == tid)
            return i;
    return -1;
}

static void mutex_condvar(void)
{
    for (int i = 0; i < NTHREADS; i++) {
        infos[i].index = i;
        if (pthread_create(&threads[i], NULL, worker, &infos[i]) != 0)
            tst_brk("pthread_create %d", i);
    }
    pthread_mutex_lock(&lock);
    while (arrived < NTHREADS)
        pthread_cond_wait(&arrived_cv, &lock);
    tst_check_int(arrived, NTHREADS, "all 8 threads arrived (condvar wait in main)");
    go = 1;
    pthread_cond_broadcast(&go_cv);
    pthread_mutex_unlock(&lock);

    /* wait for the counting to finish (counter is under the mutex) */
    for (;;) {
        pthread_mutex_lock(&lock);
        long c = counter;
        pthread_mutex_unlock(&lock);
        if (c >= (long)NTHREADS * ITERS)
            break;
        tst_sleep_ms(1);
    }
    pthread_mutex_lock(&lock);
    tst_check_int(counter, (long)NTHREADS * ITERS, "mutex-protected counter is exact (8 x 20000)");
    pthread_mutex_unlock(&lock);

    int distinct = 1, same_pid = 1;
    for (int i = 0; i < NTHREADS; i++) {
        if (infos[i].pid != getpid())
            same_pid = 0;
        if (infos[i].tid <= 0 || infos[i].tid == getpid())
            distinct = 0;
        for (int j = 0; j < i; j++)
            if (infos[i].tid == infos[j].tid)
                distinct = 0;
    }
    tst_check(distinct, "thread ids are distinct and differ from the pid", "tids not distinct");
    tst_check(same_pid, "getpid() is the same in every thread", "a thread saw another pid");

    /* /proc/self/task: exactly main + the 8 */
    DIR *d = opendir("/proc/self/task");
    int seen = 0, extra = 0, main_seen = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        pid_t t = atoi(e->d_name);
        if (t == getpid())
            main_seen = 1;
        else if (tid_index(t) >= 0)
            seen++;
        else
            extra++;
    }
    if (d)
        closedir(d);
    tst_check(main_seen && seen == NTHREADS && extra == 0, "/proc/self/task lists the main thread and the 8 tids",
              "main %d, ours %d, unknown %d", main_seen, seen, extra);
    char path[96], buf[512];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)infos[3].tid);
    tst_check(tst_read_file(path, buf, sizeof(buf)) > 0 && atoi(buf) == infos[3].tid,
              "/proc/self/task/<tid>/stat names the thread", "%s", path);

    /* pthread_kill: the handler runs in the target thread */
    signal(SIGUSR1, on_usr1);
    int ok = 1;
    for (int i = 0; i < NTHREADS; i += 3) {
        handler_ran = 0;
        handler_tid = 0;
        int r = pthread_kill(threads[i], SIGUSR1);
        if (r != 0 || !tst_wait_flag(&handler_ran, 30) || handler_tid != infos[i].tid) {
            tst_fail("pthread_kill(thread %d, tid %d): r=%d, handler ran in %d", i, (int)infos[i].tid, r,
                     (int)handler_tid);
            ok = 0;
        }
    }
    if (ok)
        tst_pass("pthread_kill runs the handler in the targeted thread");

    pthread_mutex_lock(&lock);
    leave = 1;
    pthread_cond_broadcast(&go_cv);
    pthread_mutex_unlock(&lock);
    int ret_ok = 1;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret = NULL;
        if (pthread_join(threads[i], &ret) != 0 || (intptr_t)ret != i * 3 + 1)
            ret_ok = 0;
    }
    tst_check(ret_ok, "pthread_join returns every thread's return value", "a value differed");
    /* join returns when the kernel clears the tid, a moment before the task is released: poll */
    int gone = 0;
    for (int k = 0; k < 30000 && !gone; k++) {
        gone = syscall(SYS_tgkill, getpid(), infos[0].tid, 0) == -1 && errno == ESRCH;
        if (!gone)
            tst_sleep_ms(1);
    }
    tst_check(gone, "a joined thread's tid goes away (tgkill gives ESRCH)", "tid %d still there", (int)infos[0].tid);
}

/* ---- raw futex ---- */

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

enum { NWAITERS = 4 };
static uint32_t word;
static struct {
    pthread_t t;
    volatile pid_t tid;
    volatile sig_atomic_t about_to_wait;
    volatile long ret;
    volatile int err;
} waiters[NWAITERS];

static void *futex_waiter(void *arg)
{
    int i = (int)(intptr_t)arg;
    waiters[i].tid = tst_gettid();
    waiters[i].about_to_wait = 1;
    long r = futex(&word, FUTEX_WAIT_PRIVATE, 0, NULL);
    waiters[i].err = errno;
    waiters[i].ret = r;
    return NULL;
}

static void futexes(void)
{
    uint32_t w = 1;
    long r = futex(&w, FUTEX_WAIT_PRIVATE, 0, NULL);
    tst_check(r == -1 && errno == EAGAIN, "FUTEX_WAIT on a word that differs from val returns EAGAIN", "r=%ld", r);
    struct timespec ts = { 0, 2000000 };
    w = 0;
    r = futex(&w, FUTEX_WAIT_PRIVATE, 0, &ts);
    tst_check(r == -1 && errno == ETIMEDOUT, "FUTEX_WAIT with a timeout and no waker returns ETIMEDOUT", "r=%ld",
              r);
    r = futex(&w, FUTEX_WAKE_PRIVATE, 1, NULL);
    tst_check_int(r, 0, "FUTEX_WAKE with no waiters wakes 0");

    word = 0;
    for (int i = 0; i < NWAITERS; i++) {
        waiters[i].ret = 99;
        if (pthread_create(&waiters[i].t, NULL, futex_waiter, (void *)(intptr_t)i) != 0)
            tst_brk("pthread_create");
    }
    /* each waiter is asleep once its flag is set and its task state is S (it does nothing else) */
    int asleep = 0;
    for (int i = 0; i < NWAITERS; i++) {
        if (!tst_wait_flag(&waiters[i].about_to_wait, 30))
            continue;
        asleep += tst_wait_state(getpid(), waiters[i].tid, 'S', 30);
    }
    tst_check_int(asleep, NWAITERS, "4 threads sleep in FUTEX_WAIT (task state S)");

    __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
    r = futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL);
    tst_check_int(r, 1, "FUTEX_WAKE(1) wakes exactly one waiter");
    r = futex(&word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
    tst_check_int(r, NWAITERS - 1, "FUTEX_WAKE(INT_MAX) wakes the other three");
    int woken = 0;
    for (int i = 0; i < NWAITERS; i++) {
        pthread_join(waiters[i].t, NULL);
        if (waiters[i].ret == 0)
            woken++;
        else
            tst_fail("futex waiter %d returned %ld errno %d", i, (long)waiters[i].ret, waiters[i].err);
    }
    tst_check_int(woken, NWAITERS, "every waiter's FUTEX_WAIT returned 0 (woken, not EAGAIN)");
}

int main(void)
{
    tst_watchdog(90);
    mutex_condvar();
    futexes();
    tst_exit();
}
