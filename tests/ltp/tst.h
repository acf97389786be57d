/*
 * tst.h: reporting helpers shared by the LTP-style regression programs in tests/ltp.
 *
 * A test prints one line per check, "PASS: ...", "FAIL: ..." or "CONF: ..." (the test does not apply
 * here), and exits 0 when every check passed, 1 when any failed, 32 when it was skipped (CONF).
 * Lines go out with a single write(2) each, unbuffered, so a forked child can report too without
 * stdio buffers being duplicated or interleaved mid-line. A child's own failures do not reach the
 * parent's count: children report through their exit status (see tst_reap_ok) and may print FAIL lines
 * themselves to say why.
 */
#ifndef SSI_TST_H
#define SSI_TST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TST_EXIT_PASS 0
#define TST_EXIT_FAIL 1
#define TST_EXIT_CONF 32

/* Failed checks so far in this process. */
static int tst_failures __attribute__((unused));

/* Every helper is static inline so that a test using only some of them compiles without warnings. */
#define TST_FN static inline __attribute__((unused))

TST_FN void tst_vres(const char *kind, const char *fmt, va_list ap)
{
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s: ", kind);
    n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (n > (int)sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(STDOUT_FILENO, line + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += w;
    }
}

__attribute__((format(printf, 1, 2)))
TST_FN void tst_pass(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tst_vres("PASS", fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 1, 2)))
TST_FN void tst_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tst_vres("FAIL", fmt, ap);
    va_end(ap);
    tst_failures++;
}

/* The whole test does not apply on this system: report why and exit as skipped. */
__attribute__((format(printf, 1, 2), noreturn))
TST_FN void tst_conf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tst_vres("CONF", fmt, ap);
    va_end(ap);
    exit(TST_EXIT_CONF);
}

/* A setup step failed and the test cannot go on: report it (with errno) and exit failed. */
#define tst_brk(fmt, ...) do { \
        tst_fail("%s:%d: " fmt ": %s", __FILE__, __LINE__, ##__VA_ARGS__, strerror(errno)); \
        exit(TST_EXIT_FAIL); \
    } while (0)

/* One check: PASS with the description when cond holds, else FAIL with the description and detail. */
#define tst_check(cond, desc, detail_fmt, ...) do { \
        if (cond) tst_pass("%s", desc); \
        else tst_fail("%s (" detail_fmt ")", desc, ##__VA_ARGS__); \
    } while (0)

/* Checks an int against the expected value, printing both on failure. */
#define tst_check_int(got, want, desc) do { \
        long long g_ = (long long)(got), w_ = (long long)(want); \
        if (g_ == w_) tst_pass("%s", desc); \
        else tst_fail("%s (got %lld, expected %lld)", desc, g_, w_); \
    } while (0)

/* Checks that a call returned -1 with the given errno. */
#define tst_check_errno(ret, err, desc) do { \
        long r_ = (long)(ret); int e_ = errno; \
        if (r_ == -1 && e_ == (err)) tst_pass("%s", desc); \
        else tst_fail("%s (returned %ld, errno %d %s, expected -1 %s)", desc, r_, \
                      r_ == -1 ? e_ : 0, r_ == -1 ? strerror(e_) : "-", strerror(err)); \
    } while (0)

TST_FN __attribute__((noreturn)) void tst_exit(void)
{
    exit(tst_failures ? TST_EXIT_FAIL : TST_EXIT_PASS);
}

/* In a forked child: exit with the child's verdict (its FAIL lines are already printed). */
TST_FN __attribute__((noreturn)) void tst_child_exit(void)
{
    _exit(tst_failures ? TST_EXIT_FAIL : TST_EXIT_PASS);
}

TST_FN pid_t tst_fork(void)
{
    pid_t pid = fork();
    if (pid < 0)
        tst_brk("fork");
    return pid;
}

TST_FN pid_t tst_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* Waits for a child and checks that it exited with status 0; desc names what the child checked. */
TST_FN int tst_reap_ok(pid_t pid, const char *desc)
{
    int st;
    pid_t r;
    while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
        ;
    if (r != pid) {
        tst_fail("%s: waitpid(%d) returned %d: %s", desc, (int)pid, (int)r, strerror(errno));
        return 0;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        tst_pass("%s", desc);
        return 1;
    }
    if (WIFEXITED(st))
        tst_fail("%s (child exited %d)", desc, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        tst_fail("%s (child killed by signal %d)", desc, WTERMSIG(st));
    else
        tst_fail("%s (child wait status 0x%x)", desc, st);
    return 0;
}

TST_FN void tst_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/*
 * Polls until *flag becomes non-zero. The bound only keeps a broken runtime from hanging the suite;
 * it is not a timing assertion (the machine is shared and noisy).
 */
TST_FN int tst_wait_flag(volatile sig_atomic_t *flag, int max_seconds)
{
    for (long i = 0; i < max_seconds * 1000L; i++) {
        if (*flag)
            return 1;
        tst_sleep_ms(1);
    }
    return *flag != 0;
}

/* Reads exactly n bytes (a short read means the writer went away). */
TST_FN ssize_t tst_read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? r : (ssize_t)got;
        got += r;
    }
    return got;
}

TST_FN ssize_t tst_write_full(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const char *)buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        done += w;
    }
    return done;
}

/* Reads a whole small file (such as a /proc file) into buf, NUL-terminated; returns its length or -1. */
TST_FN ssize_t tst_read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

/*
 * Field "state" (the 3rd) of /proc/<pid>/stat, or of /proc/<pid>/task/<tid>/stat when tid > 0;
 * 0 if unreadable. The comm field may hold spaces and parentheses, so parsing starts after the last ')'.
 */
TST_FN char tst_proc_state(pid_t pid, pid_t tid)
{
    char path[96], buf[1024];
    if (tid > 0)
        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    else
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (tst_read_file(path, buf, sizeof(buf)) <= 0)
        return 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

/* Polls until /proc/<pid>[/task/<tid>]/stat shows the state; bounded only as a hang guard. */
TST_FN int tst_wait_state(pid_t pid, pid_t tid, char state, int max_seconds)
{
    for (long i = 0; i < max_seconds * 1000L; i++) {
        if (tst_proc_state(pid, tid) == state)
            return 1;
        tst_sleep_ms(1);
    }
    return 0;
}

TST_FN void tst_watchdog_fired(int sig)
{
    static const char msg[] = "FAIL: watchdog: the test did not finish, something it waited for never came\n";
    (void)sig;
    (void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
    _exit(TST_EXIT_FAIL);
}

/* Fails the test instead of hanging if it has not finished after max_seconds (SIGALRM). */
TST_FN void tst_watchdog(unsigned max_seconds)
{
    signal(SIGALRM, tst_watchdog_fired);
    alarm(max_seconds);
}

#endif
