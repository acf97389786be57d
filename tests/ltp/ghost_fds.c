/*
 * ghost_fds: the anonymous-inode fds and POSIX timers a checkpoint must carry across a restart, in use
 * for about a second and a half so that the suite's ckpt pass catches them mid-way: an eventfd with a
 * count and a semaphore eventfd, a periodic timerfd that keeps ticking (read as it goes), a signalfd
 * with a queued signal waiting in it, an epoll set watching those three and a pipe holding bytes, a
 * POSIX timer (SIGEV_SIGNAL, with a value) that keeps firing, and one (SIGEV_NONE) armed far ahead;
 * a child shares the eventfd and the epoll set (it closed its copy of the pipe the set watches) and
 * adds to the count at its end. At the end each must still work, with plausible counts.
 */
#include "tst.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <stdint.h>

#define RUN_MS 1500
#define TICK_MS 20
#define TIMER_MS 50

static volatile sig_atomic_t fired, bad_value;

static void on_timer(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    if (si->si_code != SI_TIMER || si->si_value.sival_int != 77)
        bad_value = 1;
    fired++;
}

int main(void)
{
    char ready[32];
    int rn = snprintf(ready, sizeof ready, "ready %d\n", (int)getpid());
    tst_write_full(STDOUT_FILENO, ready, rn); /* for tests that checkpoint it (RestartTest) */

    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int esem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    int sfd = signalfd(-1, &usr1, SFD_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int p[2];
    if (efd < 0 || esem < 0 || tfd < 0 || sfd < 0 || ep < 0 || pipe(p))
        tst_brk("setup: %s", strerror(errno));

    uint64_t seven = 7;
    if (write(efd, &seven, 8) != 8)
        tst_brk("eventfd write: %s", strerror(errno));
    struct itimerspec tick = { { 0, TICK_MS * 1000000L }, { 0, TICK_MS * 1000000L } };
    timerfd_settime(tfd, 0, &tick, NULL);
    union sigval v = { .sival_int = 55 };
    sigqueue(getpid(), SIGUSR1, v);
    tst_write_full(p[1], "epoll me", 8);
    int watched[] = { efd, tfd, sfd, p[0] };
    for (int i = 0; i < 4; i++) {
        struct epoll_event e = { .events = EPOLLIN, .data.u64 = 0x1000 + i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, watched[i], &e))
            tst_brk("epoll_ctl: %s", strerror(errno));
    }

    pid_t child = tst_fork();
    if (child == 0) {
        close(p[0]);
        close(tfd);
        tst_sleep_ms(RUN_MS - 100);
        struct epoll_event ce[8];
        int cn = epoll_wait(ep, ce, 8, 0), has_efd = 0;
        for (int i = 0; i < cn; i++)
            has_efd |= ce[i].data.u64 == 0x1000;
        uint64_t five = 5;
        int ok = has_efd && write(efd, &five, 8) == 8;
        if (!ok)
            tst_fail("child: the shared epoll set gave %d events without the eventfd (%d), or the write failed", cn, has_efd);
        _exit(ok ? 0 : 1);
    }

    struct sigaction sa = { .sa_sigaction = on_timer, .sa_flags = SA_SIGINFO | SA_RESTART };
    sigaction(SIGRTMIN + 1, &sa, NULL);
    struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 1, .sigev_value.sival_int = 77 };
    struct sigevent none = { .sigev_notify = SIGEV_NONE };
    timer_t pt, far;
    if (timer_create(CLOCK_MONOTONIC, &sev, &pt) || timer_create(CLOCK_REALTIME, &none, &far))
        tst_brk("timer_create: %s", strerror(errno));
    struct itimerspec every = { { 0, TIMER_MS * 1000000L }, { 0, TIMER_MS * 1000000L } };
    struct itimerspec later = { { 0, 0 }, { 100, 0 } };
    timer_settime(pt, 0, &every, NULL);
    timer_settime(far, 0, &later, NULL);

    /* Counted in steps, not by the clock: time spent stopped for a checkpoint does not count. */
    uint64_t ticks = 0;
    int reads = 0;
    for (int step = 0; step < RUN_MS / 5; step++) {
        tst_sleep_ms(5);
        uint64_t n;
        if (read(tfd, &n, 8) == 8) {
            ticks += n;
            reads++;
        }
    }

    /* Everything the epoll set watches is readable: it reports each with its data. */
    tst_sleep_ms(2 * TICK_MS);
    struct epoll_event got[8];
    int n = epoll_wait(ep, got, 8, 1000);
    unsigned seen = 0;
    for (int i = 0; i < n; i++)
        if (got[i].data.u64 >= 0x1000 && got[i].data.u64 < 0x1004 && (got[i].events & EPOLLIN))
            seen |= 1u << (got[i].data.u64 - 0x1000);
    tst_check(seen == 0xf, "the epoll set reports the eventfd, timerfd, signalfd and pipe with their data",
              "%d events, seen mask %#x", n, seen);

    tst_check(tst_reap_ok(child, "child"), "the child saw the shared epoll set and wrote to the shared eventfd",
              "see the child's FAIL line");
    uint64_t c = 0;
    tst_check(read(efd, &c, 8) == 8 && c == 12, "the eventfd kept its count, and the child's addition",
              "count %llu", (unsigned long long)c);
    int sem = 0;
    while (read(esem, &c, 8) == 8 && c == 1)
        sem++;
    tst_check_int(sem, 3, "the semaphore eventfd gives its count one read at a time");

    uint64_t more = 0;
    read(tfd, &more, 8);
    ticks += more;
    struct itimerspec cur;
    timerfd_gettime(tfd, &cur);
    tst_check(ticks >= 20 && reads >= 10 && more >= 1 && cur.it_interval.tv_nsec == TICK_MS * 1000000L,
              "the timerfd kept ticking periodically", "%llu ticks in %d reads, %llu at the end, interval %ld ns",
              (unsigned long long)ticks, reads, (unsigned long long)more, cur.it_interval.tv_nsec);

    struct signalfd_siginfo ssi;
    ssize_t r = read(sfd, &ssi, sizeof ssi);
    tst_check(r == sizeof ssi && ssi.ssi_signo == SIGUSR1 && ssi.ssi_int == 55 && ssi.ssi_code == SI_QUEUE,
              "the signalfd delivers the queued SIGUSR1 with its value", "read %zd, signo %u, value %d, code %d", r,
              r > 0 ? ssi.ssi_signo : 0, r > 0 ? ssi.ssi_int : 0, r > 0 ? ssi.ssi_code : 0);
    kill(getpid(), SIGUSR1);
    r = read(sfd, &ssi, sizeof ssi);
    tst_check(r == sizeof ssi && ssi.ssi_signo == SIGUSR1, "the signalfd still takes new signals of its mask",
              "read %zd", r);

    char buf[16] = {0};
    tst_check(read(p[0], buf, sizeof buf) == 8 && !memcmp(buf, "epoll me", 8), "the pipe watched by epoll kept its bytes",
              "got '%s'", buf);

    int before = fired;
    tst_sleep_ms(3 * TIMER_MS);
    struct itimerspec pv, fv;
    int g1 = timer_gettime(pt, &pv), g2 = timer_gettime(far, &fv);
    tst_check(before >= 10 && fired > before && !bad_value && g1 == 0 && pv.it_interval.tv_nsec == TIMER_MS * 1000000L,
              "the POSIX timer kept its id and kept firing with its value", "%d then %d signals, bad value %d, gettime %d",
              before, (int)fired, (int)bad_value, g1);
    tst_check(g2 == 0 && fv.it_value.tv_sec >= 80 && fv.it_value.tv_sec < 100 && fv.it_interval.tv_sec == 0,
              "the SIGEV_NONE timer is still armed far ahead", "gettime %d, %ld s left", g2, (long)fv.it_value.tv_sec);
    timer_delete(pt);
    timer_delete(far);
    tst_exit();
}
