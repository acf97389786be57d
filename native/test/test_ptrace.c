/* Tests of the shim's ptrace services (src/shim/ptrace_ops.c) on children of this process: spinning
 * children, a child blocked in read() on a pipe, a multithreaded child with a thread in nanosleep, a
 * child without a vDSO, and a child waiting for an fd to appear. The test process plays the shim: its
 * one thread is the tracer. Needs root (or CAP_SYS_PTRACE) for /proc/pid/mem writes. Prints one
 * PASS/FAIL line per check; exits 0 only when every check passed. */
#include "ptrace_ops.h"
#include <asm/prctl.h>
#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int failures;

static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (!ok)
        failures++;
}

/* ---- state shared with the children: fork gives them the same addresses ---- */

static char known[64] = "ssi ptrace test: a buffer the tracer knows";
static volatile int loaded_flag, go_flag;
static unsigned char pattern[32], pattern2[32], outbuf[32];
static int have_avx;
static int report_wr = -1;          /* in a child: where it reports to the test */
static char *ro_page, *hole_page;   /* a read-only page, and a page followed by an unmapped one */

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(90);
        c += w;
        n -= (size_t)w;
    }
}

/* Reads exactly n bytes or fails after timeout_ms, so a broken tracee fails a check instead of hanging. */
static int read_full(int fd, void *p, size_t n, int timeout_ms)
{
    char *c = p;
    while (n > 0) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        int r = poll(&pfd, 1, timeout_ms);
        if (r <= 0)
            return -1;
        ssize_t got = read(fd, c, n);
        if (got <= 0)
            return -1;
        c += got;
        n -= (size_t)got;
    }
    return 0;
}

/* Forks a child running fn(arg) with a report pipe to us; it dies with us (PDEATHSIG) so a failing
 * test leaves no spinning children behind. */
static pid_t spawn(void (*fn)(void *), void *arg, int *report_rd)
{
    int rep[2];
    if (pipe(rep) < 0) {
        perror("pipe");
        exit(2);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(rep[0]);
        report_wr = rep[1];
        fn(arg);
        _exit(0);
    }
    close(rep[1]);
    *report_rd = rep[0];
    return pid;
}

/* The child's exit status, or -1 if it is still running after timeout_ms (then it is killed). */
static int exit_status(pid_t pid, int timeout_ms)
{
    int st;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* Polls the child's memory (no attach needed) until *flag is nonzero. */
static int wait_flag(pid_t pid, volatile int *flag)
{
    for (int i = 0; i < 1000; i++) {
        int v = 0;
        if (pt_readmem(pid, (uint64_t)(uintptr_t)flag, &v, sizeof v) == 0 && v)
            return 0;
        usleep(5000);
    }
    return -1;
}

/* A child running fn (see spawn), checked to have set loaded_flag (what names it in the check). */
static pid_t spawn_ready(void (*fn)(void *), int *report_rd, const char *what)
{
    loaded_flag = 0;
    pid_t pid = spawn(fn, NULL, report_rd);
    check(wait_flag(pid, &loaded_flag) == 0, "%s", what);
    return pid;
}

/* Waits until thread tid of pid is blocked in syscall nr (first field of /proc/.../syscall). */
static int wait_in_syscall(pid_t pid, pid_t tid, long nr)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    for (int i = 0; i < 1000; i++) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (n > 0) {
                buf[n] = 0;
                if (strtol(buf, NULL, 10) == nr && buf[0] != 'r') /* "running" is not a syscall */
                    return 0;
            }
        }
        usleep(5000);
    }
    return -1;
}

static int inject(pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                  int64_t *ret)
{
    const uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };
    *ret = 0x7777777777777777;
    return pt_inject_syscall(tid, nr, args, ret);
}

static int fd_link(pid_t pid, int fd, char *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
    ssize_t n = readlink(path, out, cap - 1);
    if (n < 0)
        return -1;
    out[n] = 0;
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* The open fd numbers of pid, sorted; returns the count. */
static int list_fds(pid_t pid, int *fds, int cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < cap)
        if (e->d_name[0] != '.')
            fds[n++] = atoi(e->d_name);
    if (d)
        closedir(d);
    qsort(fds, n, sizeof *fds, cmp_int);
    return n;
}

static int lowest_free(const int *fds, int n)
{
    int want = 0;
    for (int i = 0; i < n; i++)
        if (fds[i] == want)
            want++;
    return want;
}

static int same_fds_plus(const int *before, int nb, const int *after, int na, int added)
{
    int expect[256], ne = 0;
    for (int i = 0; i < nb && ne < 255; i++)
        expect[ne++] = before[i];
    if (added >= 0)
        expect[ne++] = added;
    qsort(expect, ne, sizeof *expect, cmp_int);
    return ne == na && memcmp(expect, after, sizeof(int) * na) == 0;
}

static char *read_text(const char *path)
{
    static char bufs[4][65536];
    static int next;
    char *b = bufs[next++ & 3];
    int fd = open(path, O_RDONLY);
    size_t got = 0;
    ssize_t n;
    while (fd >= 0 && got < sizeof bufs[0] - 1 && (n = read(fd, b + got, sizeof bufs[0] - 1 - got)) > 0)
        got += (size_t)n;
    if (fd >= 0)
        close(fd);
    b[got] = 0;
    return b;
}

static char *maps_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    return read_text(path);
}

/* ---- children ---- */

/* Loads `pattern` into ymm15 (xmm15 without AVX), says so in loaded_flag, spins until the tracer sets
 * go_flag, then reports what ymm15 holds: the tracer's setxstate must show up there. */
static void spin_child(void *arg)
{
    unsigned long fs = 0;
    syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
    write_all(report_wr, &fs, sizeof fs);
    if (have_avx)
        __asm__ volatile("vmovdqu (%[pat]), %%ymm15\n\t"
                         "movl $1, (%[loaded])\n\t"
                         "1: pause\n\t"
                         "cmpl $0, (%[go])\n\t"
                         "je 1b\n\t"
                         "vmovdqu %%ymm15, (%[out])\n\t"
                         : : [pat] "r"(pattern), [loaded] "r"(&loaded_flag), [go] "r"(&go_flag), [out] "r"(outbuf)
                         : "xmm15", "memory");
    else
        __asm__ volatile("movdqu (%[pat]), %%xmm15\n\t"
                         "movl $1, (%[loaded])\n\t"
                         "1: pause\n\t"
                         "cmpl $0, (%[go])\n\t"
                         "je 1b\n\t"
                         "movdqu %%xmm15, (%[out])\n\t"
                         : : [pat] "r"(pattern), [loaded] "r"(&loaded_flag), [go] "r"(&go_flag), [out] "r"(outbuf)
                         : "xmm15", "memory");
    write_all(report_wr, outbuf, sizeof outbuf);
    write_all(report_wr, known, sizeof known);
}

/* Where the setregs test sends the spinning child: reports its first argument. */
__attribute__((noinline, used)) static void report_and_exit(unsigned long v)
{
    write_all(report_wr, &v, sizeof v);
    _exit(0);
}

static void plain_spin_child(void *arg)
{
    loaded_flag = 1;
    for (;;)
        __asm__ volatile("pause" ::: "memory");
}

struct read_report { ssize_t n; int err; char buf[64]; };

static void reader_child(void *arg)
{
    int fd = *(int *)arg;
    struct read_report rep;
    memset(&rep, 0, sizeof rep);
    errno = 0;
    rep.n = read(fd, rep.buf, sizeof rep.buf);
    rep.err = errno;
    write_all(report_wr, &rep, sizeof rep);
}

struct sleep_report { long ret; int err; long long elapsed_ns; };
#define SLEEP_NS 400000000L

static void *sleeper(void *arg)
{
    pid_t tid = gettid();
    write_all(report_wr, &tid, sizeof tid);
    struct timespec req = { 0, SLEEP_NS }, a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct sleep_report rep;
    rep.ret = syscall(SYS_nanosleep, &req, NULL); /* the raw call: glibc would use clock_nanosleep */
    rep.err = errno;
    clock_gettime(CLOCK_MONOTONIC, &b);
    rep.elapsed_ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    write_all(report_wr, &rep, sizeof rep);
    return NULL;
}

static void threaded_child(void *arg)
{
    pthread_t th;
    if (pthread_create(&th, NULL, sleeper, NULL) != 0)
        _exit(91);
    pthread_join(th, NULL);
}

/* Unmaps its own vDSO (as a restore stub does), so injection must find another syscall instruction;
 * then spins until go_flag, then blocks in read() on the pipe in arg and reports what it got. */
static void no_vdso_child(void *arg)
{
    char *maps = read_text("/proc/self/maps");
    for (char *line = maps; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        unsigned long lo, hi;
        if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
            munmap((void *)lo, hi - lo);
        line = nl ? nl + 1 : NULL;
    }
    loaded_flag = 1;
    while (!go_flag)
        __asm__ volatile("pause" ::: "memory");
    reader_child(arg);
}

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
    got_usr1 = 1;
}

/* Spins until its SIGUSR1 handler ran. */
static void usr1_child(void *arg)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    loaded_flag = 1;
    while (!got_usr1)
        __asm__ volatile("pause" ::: "memory");
}

static const char fd42_msg[] = "written to fd 42 by the tracee";

static void fd42_child(void *arg)
{
    for (int i = 0; i < 20000; i++) {
        if (write(42, fd42_msg, sizeof fd42_msg - 1) == (ssize_t)(sizeof fd42_msg - 1))
            _exit(0);
        usleep(1000);
    }
    _exit(3);
}

/* ---- tests ---- */

static void test_spin_child(void)
{
    int rep;
    loaded_flag = go_flag = 0;
    pid_t pid = spawn(spin_child, NULL, &rep);
    unsigned long fs_reported = 0;
    check(read_full(rep, &fs_reported, sizeof fs_reported, 5000) == 0, "spin child reports its fs base");
    check(wait_flag(pid, &loaded_flag) == 0, "spin child loaded its vector register");

    check(pt_is_traced(pid) == 0, "not traced before attach");
    int rc = pt_attach(pid);
    check(rc == 0, "attach busy child (rc %d)", rc);
    check(pt_is_traced(pid) == 1, "traced after attach");
    rc = pt_attach(pid);
    check(rc == -EALREADY, "second attach refused (rc %d)", rc);

    struct user_regs_struct regs, again;
    rc = pt_getregs(pid, &regs);
    check(rc == 0, "getregs (rc %d)", rc);
    check(regs.fs_base != 0 && regs.fs_base == fs_reported, "fs_base %#llx nonzero and equal to ARCH_GET_FS %#lx",
          regs.fs_base, fs_reported);
    rc = pt_setregs(pid, &regs);
    check(rc == 0 && pt_getregs(pid, &again) == 0 && memcmp(&regs, &again, sizeof regs) == 0,
          "setregs of the same registers round-trips (rc %d)", rc);

    static unsigned char xs[65536];
    size_t xlen = 0;
    rc = pt_getxstate(pid, xs, sizeof xs, &xlen);
    check(rc == 0 && xlen > 512, "getxstate (rc %d, %zu bytes > 512)", rc, xlen);
    /* Legacy FXSAVE area: xmm0..15 at offset 160, 16 bytes each. */
    check(memcmp(xs + 160 + 15 * 16, pattern, 16) == 0, "xmm15 set by the child seen in xstate");
    unsigned ymm_off = 0;
    if (have_avx) {
        unsigned a, b, c, d;
        __cpuid_count(0xd, 2, a, b, c, d);
        ymm_off = b; /* standard-format offset of the YMM_Hi128 component */
        uint64_t xstate_bv;
        memcpy(&xstate_bv, xs + 512, sizeof xstate_bv);
        check((xstate_bv & 4) && ymm_off + 256 <= xlen && memcmp(xs + ymm_off + 15 * 16, pattern + 16, 16) == 0,
              "upper half of ymm15 seen in xstate (offset %u)", ymm_off);
    } else {
        printf("SKIP no AVX: ymm checks\n");
    }

    char got[64];
    rc = pt_readmem(pid, (uint64_t)(uintptr_t)known, got, sizeof got);
    check(rc == 0 && memcmp(got, known, sizeof got) == 0, "readmem of a known buffer (rc %d)", rc);
    rc = pt_readmem(pid, 16, got, 8);
    check(rc == -EFAULT, "readmem of an unmapped address is -EFAULT (rc %d)", rc);
    static char big[8192];
    rc = pt_readmem(pid, (uint64_t)(uintptr_t)hole_page, big, sizeof big);
    check(rc == -EFAULT, "readmem running into an unmapped page is -EFAULT (rc %d)", rc);
    static const char newtext[] = "changed by the tracer";
    rc = pt_writemem(pid, (uint64_t)(uintptr_t)known, newtext, sizeof newtext);
    check(rc == 0, "writemem into the known buffer (rc %d)", rc);
    rc = pt_writemem(pid, (uint64_t)(uintptr_t)ro_page + 100, newtext, sizeof newtext);
    check(rc == 0 && pt_readmem(pid, (uint64_t)(uintptr_t)ro_page + 100, got, sizeof newtext) == 0 &&
              memcmp(got, newtext, sizeof newtext) == 0 && ro_page[100] == 'R',
          "writemem into a read-only page of the child only (rc %d)", rc);
    rc = pt_writemem(pid, 16, newtext, sizeof newtext);
    check(rc == -EFAULT, "writemem to an unmapped address is -EFAULT (rc %d)", rc);

    int64_t ret;
    rc = inject(pid, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == 0 && ret == pid, "inject getpid in busy child = %lld (pid %d, rc %d)", (long long)ret, pid, rc);
    rc = inject(pid, 1000, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == 0 && ret == -ENOSYS, "inject of an unknown syscall returns -ENOSYS (%lld, rc %d)", (long long)ret, rc);
    rc = inject(pid, SYS_mmap, 0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &ret);
    check(rc == 0 && ret > 0 && (ret & 4095) == 0, "inject mmap (%#llx, rc %d)", (long long)ret, rc);
    if (rc == 0 && ret > 0) {
        uint64_t map = (uint64_t)ret;
        char line[32];
        snprintf(line, sizeof line, "%llx-", (unsigned long long)map);
        check(strstr(maps_of(pid), line) != NULL, "injected mapping listed in the child's maps");
        static const char msg[] = "into the injected mapping";
        rc = pt_writemem(pid, map + 4096, msg, sizeof msg);
        check(rc == 0 && pt_readmem(pid, map + 4096, got, sizeof msg) == 0 && memcmp(got, msg, sizeof msg) == 0,
              "writemem/readmem in the injected mapping (rc %d)", rc);
        rc = inject(pid, SYS_munmap, map, 8192, 0, 0, 0, 0, &ret);
        check(rc == 0 && ret == 0 && strstr(maps_of(pid), line) == NULL, "inject munmap removes it (rc %d)", rc);
    }
    rc = pt_getregs(pid, &again);
    check(rc == 0 && memcmp(&regs, &again, sizeof regs) == 0, "registers restored after injections");

    /* Change xmm15 (and the upper ymm15) and let the child report what it now holds. */
    memcpy(xs + 160 + 15 * 16, pattern2, 16);
    if (have_avx)
        memcpy(xs + ymm_off + 15 * 16, pattern2 + 16, 16);
    rc = pt_setxstate(pid, xs, xlen);
    check(rc == 0, "setxstate (rc %d)", rc);
    int one = 1;
    rc = pt_writemem(pid, (uint64_t)(uintptr_t)&go_flag, &one, sizeof one);
    check(rc == 0, "writemem of the child's go flag (rc %d)", rc);
    rc = pt_detach(pid);
    check(rc == 0 && !pt_is_traced(pid), "detach busy child (rc %d)", rc);
    unsigned char out[32];
    char known_after[64];
    int ok = read_full(rep, out, sizeof out, 5000) == 0;
    check(ok && memcmp(out, pattern2, have_avx ? 32 : 16) == 0, "child resumed and sees the vector register we set");
    ok = ok && read_full(rep, known_after, sizeof known_after, 5000) == 0;
    check(ok && strcmp(known_after, newtext) == 0, "child sees what writemem put in its buffer");
    int st = exit_status(pid, 5000);
    check(st == 0, "busy child exited normally (status %#x)", st);
    close(rep);
}

static void test_setregs_redirect(void)
{
    int rep;
    pid_t pid = spawn_ready(plain_spin_child, &rep, "redirect child spinning");
    int rc = pt_attach(pid);
    check(rc == 0, "attach redirect child (rc %d)", rc);
    struct user_regs_struct regs, again;
    rc = pt_getregs(pid, &regs);
    const unsigned long magic = 0x1122334455667788UL;
    regs.rip = (unsigned long)(uintptr_t)report_and_exit;
    regs.rdi = magic;
    /* As if just called: below the red zone, rsp + 8 16-byte aligned. */
    regs.rsp = ((regs.rsp - 1024) & ~15UL) - 8;
    if (!rc)
        rc = pt_setregs(pid, &regs);
    check(rc == 0 && pt_getregs(pid, &again) == 0 && again.rip == regs.rip && again.rdi == magic,
          "setregs of rip/rdi/rsp reads back (rc %d)", rc);
    rc = pt_detach(pid);
    check(rc == 0, "detach redirect child (rc %d)", rc);
    unsigned long v = 0;
    int ok = read_full(rep, &v, sizeof v, 5000) == 0;
    check(ok && v == magic, "child ran the function we pointed rip at (%#lx)", v);
    int st = exit_status(pid, 5000);
    check(st == 0, "redirect child exited normally (status %#x)", st);
    close(rep);
}

static void test_blocked_reader(void)
{
    int data[2], rep;
    if (pipe(data) < 0)
        exit(2);
    pid_t pid = spawn(reader_child, &data[0], &rep);
    close(data[0]);
    check(wait_in_syscall(pid, pid, SYS_read) == 0, "reader child blocked in read()");
    int rc = pt_attach(pid);
    check(rc == 0, "attach child blocked in read (rc %d)", rc);
    struct user_regs_struct regs, again;
    rc = pt_getregs(pid, &regs);
    check(rc == 0 && regs.orig_rax == SYS_read && (long long)regs.rax == -512,
          "stopped inside read: orig_rax %lld, rax %lld (-ERESTARTSYS)", (long long)regs.orig_rax, (long long)regs.rax);
    int64_t ret;
    rc = inject(pid, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == 0 && ret == pid, "inject getpid in blocked child = %lld (rc %d)", (long long)ret, rc);
    rc = inject(pid, SYS_getppid, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == 0 && ret == getpid(), "inject getppid in blocked child = %lld (rc %d)", (long long)ret, rc);
    rc = pt_getregs(pid, &again);
    check(rc == 0 && memcmp(&regs, &again, sizeof regs) == 0, "registers of the blocked child restored");
    rc = pt_detach(pid);
    check(rc == 0, "detach blocked child (rc %d)", rc);
    static const char msg[] = "hello, pipe";
    write_all(data[1], msg, sizeof msg - 1);
    struct read_report r;
    memset(&r, 0, sizeof r);
    int ok = read_full(rep, &r, sizeof r, 5000) == 0;
    check(ok && r.n == (ssize_t)(sizeof msg - 1) && memcmp(r.buf, msg, sizeof msg - 1) == 0,
          "child's read() restarted and got the data (n %zd, errno %d)", r.n, r.err);
    int st = exit_status(pid, 5000);
    check(st == 0, "reader child exited normally (status %#x)", st);
    close(data[1]);
    close(rep);
}

static void test_threads(void)
{
    int rep;
    pid_t pid = spawn(threaded_child, NULL, &rep);
    pid_t tid = 0;
    int ok = read_full(rep, &tid, sizeof tid, 5000) == 0;
    check(ok && tid > 0 && tid != pid, "thread reports its tid %d", tid);
    check(wait_in_syscall(pid, tid, SYS_nanosleep) == 0, "thread blocked in nanosleep");
    check(wait_in_syscall(pid, pid, SYS_futex) == 0, "main thread blocked in pthread_join");
    int rc = pt_attach(tid);
    check(rc == 0, "attach the sleeping thread (rc %d)", rc);
    int rc2 = pt_attach(pid);
    check(rc2 == 0, "attach the main thread too (rc %d)", rc2);
    int64_t ret;
    rc = inject(tid, SYS_gettid, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == 0 && ret == tid, "inject gettid in the sleeping thread = %lld (rc %d)", (long long)ret, rc);
    rc = inject(tid, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == 0 && ret == pid, "inject getpid in the sleeping thread = tgid %lld (rc %d)", (long long)ret, rc);
    rc = inject(pid, SYS_gettid, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == 0 && ret == pid, "inject gettid in the main thread = %lld (rc %d)", (long long)ret, rc);
    check(pt_detach(tid) == 0 && pt_detach(pid) == 0, "detach both threads");
    struct sleep_report r;
    memset(&r, 0, sizeof r);
    ok = read_full(rep, &r, sizeof r, 5000) == 0;
    check(ok && r.ret == 0 && r.elapsed_ns >= SLEEP_NS,
          "nanosleep restarted and slept its full time (ret %ld, errno %d, %lld ns)", r.ret, r.err, r.elapsed_ns);
    int st = exit_status(pid, 5000);
    check(st == 0, "threaded child exited normally (status %#x)", st);
    close(rep);
}

static void test_no_vdso(void)
{
    int data[2], rep;
    if (pipe(data) < 0)
        exit(2);
    loaded_flag = go_flag = 0;
    pid_t pid = spawn(no_vdso_child, &data[0], &rep);
    close(data[0]);
    check(wait_flag(pid, &loaded_flag) == 0 && strstr(maps_of(pid), "[vdso]") == NULL, "child without a vDSO spinning");
    int rc = pt_attach(pid);
    check(rc == 0, "attach child without vDSO (rc %d)", rc);
    struct user_regs_struct regs;
    unsigned char text_before[16], text_after[16];
    rc = pt_getregs(pid, &regs);
    if (!rc)
        rc = pt_readmem(pid, regs.rip, text_before, sizeof text_before);
    int64_t ret;
    if (!rc)
        rc = inject(pid, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == 0 && ret == pid, "inject getpid with the text patched at rip = %lld (rc %d)", (long long)ret, rc);
    check(pt_readmem(pid, regs.rip, text_after, sizeof text_after) == 0 &&
              memcmp(text_before, text_after, sizeof text_before) == 0,
          "text at rip restored after the injection");
    int one = 1;
    rc = pt_writemem(pid, (uint64_t)(uintptr_t)&go_flag, &one, sizeof one);
    check(rc == 0 && pt_detach(pid) == 0, "let the child go on to read()");

    check(wait_in_syscall(pid, pid, SYS_read) == 0, "child without vDSO blocked in read()");
    rc = pt_attach(pid);
    if (!rc)
        rc = inject(pid, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == 0 && ret == pid, "inject getpid through the syscall instruction before rip = %lld (rc %d)",
          (long long)ret, rc);
    check(pt_detach(pid) == 0, "detach child without vDSO");
    static const char msg[] = "no vdso";
    write_all(data[1], msg, sizeof msg - 1);
    struct read_report r;
    memset(&r, 0, sizeof r);
    int ok = read_full(rep, &r, sizeof r, 5000) == 0;
    check(ok && r.n == (ssize_t)(sizeof msg - 1) && memcmp(r.buf, msg, sizeof msg - 1) == 0,
          "read() of the child without vDSO restarted and got the data (n %zd, errno %d)", r.n, r.err);
    int st = exit_status(pid, 5000);
    check(st == 0, "child without vDSO exited normally (status %#x)", st);
    close(data[1]);
    close(rep);
}

static int fd_flags(pid_t pid, int fd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)pid, fd);
    char *t = strstr(read_text(path), "flags:");
    return t ? (int)strtol(t + 6, NULL, 8) : -1;
}

static void test_give_fd(void)
{
    int rep;
    pid_t pid = spawn(fd42_child, NULL, &rep);
    int p[2]; /* after the fork, so only the tracee's fd 42 will hold the write end */
    if (pipe(p) < 0)
        exit(2);
    int rc = pt_attach(pid);
    check(rc == 0, "attach fd child (rc %d)", rc);
    int before[256], after[256];
    int nb = list_fds(pid, before, 256);
    char maps_before[65536];
    snprintf(maps_before, sizeof maps_before, "%s", maps_of(pid));
    char want_link[128], link[128];
    fd_link(getpid(), p[1], want_link, sizeof want_link);

    int got = -1;
    rc = pt_give_fd(pid, p[1], 42, &got);
    check(rc == 0 && got == 42, "give_fd at 42 (rc %d, fd %d)", rc, got);
    check(fd_link(pid, 42, link, sizeof link) == 0 && strcmp(link, want_link) == 0, "child's fd 42 is our pipe (%s)",
          link);
    int fl = fd_flags(pid, 42);
    check(fl >= 0 && !(fl & O_CLOEXEC), "given fd is not close-on-exec (flags %o)", fl);
    int na = list_fds(pid, after, 256);
    check(same_fds_plus(before, nb, after, na, 42), "no other fd left in the child (%d before, %d after)", nb, na);
    check(strcmp(maps_before, maps_of(pid)) == 0, "scratch page unmapped again");

    int lowest = lowest_free(after, na);
    rc = pt_give_fd(pid, p[1], -1, &got);
    check(rc == 0 && got == lowest, "give_fd without target takes the lowest free fd %d (rc %d, fd %d)", lowest, rc,
          got);
    nb = list_fds(pid, before, 256);
    check(same_fds_plus(after, na, before, nb, lowest), "exactly that fd added");

    /* The tracee's helper socket lands on the lowest free fd: giving the fd exactly there makes dup3
     * replace the socket, which must not then be closed a second time. */
    int target = lowest_free(before, nb);
    rc = pt_give_fd(pid, p[1], target, &got);
    check(rc == 0 && got == target && fd_link(pid, target, link, sizeof link) == 0 && strcmp(link, want_link) == 0,
          "give_fd onto the helper socket's number %d (rc %d, fd %d)", target, rc, got);
    na = list_fds(pid, after, 256);
    check(same_fds_plus(before, nb, after, na, target), "still no leftover fd");

    rc = pt_give_fd(pid, 987, 50, &got);
    nb = list_fds(pid, before, 256);
    check(rc == -EBADF, "give_fd of a closed fd fails with -EBADF (rc %d)", rc);
    check(same_fds_plus(after, na, before, nb, -1) && strcmp(maps_before, maps_of(pid)) == 0,
          "failed give_fd cleaned up the child's fds and scratch page");

    rc = pt_detach(pid);
    check(rc == 0, "detach fd child (rc %d)", rc);
    close(p[1]);
    char buf[64] = "";
    int ok = read_full(p[0], buf, sizeof fd42_msg - 1, 5000) == 0;
    check(ok && memcmp(buf, fd42_msg, sizeof fd42_msg - 1) == 0, "child wrote to fd 42 and we read it");
    int st = exit_status(pid, 5000);
    check(st == 0, "fd child exited normally (status %#x)", st);
    close(p[0]);
    close(rep);
}

/* WRITEMEM_FD's copy: a file range lands in the tracee byte for byte, from an unaligned offset and into a
 * read-only page; a range past the end of the file, a non-file and an unmapped address fail. */
static unsigned char fdcopy_buf[300 * 1024];

static void test_writemem_fd(void)
{
    static unsigned char data[280 * 1024], back[sizeof data];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + i / 4096 + 3);
    char path[] = "/tmp/ssi-test-writemem-fd-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        exit(2);
    unlink(path);
    write_all(fd, data, sizeof data);

    int rep;
    pid_t pid = spawn_ready(usr1_child, &rep, "copy child started");
    int rc = pt_attach(pid);
    check(rc == 0, "attach copy child (rc %d)", rc);

    const size_t off = 4096 + 123, len = 200 * 1024 + 5;
    rc = pt_writemem_fd(pid, (uint64_t)(uintptr_t)fdcopy_buf + 9, fd, off, len);
    memset(back, 0, sizeof back);
    check(rc == 0 && pt_readmem(pid, (uint64_t)(uintptr_t)fdcopy_buf + 9, back, len) == 0
          && memcmp(back, data + off, len) == 0, "writemem_fd copies an unaligned file range exactly (rc %d)", rc);
    check(pt_readmem(pid, (uint64_t)(uintptr_t)fdcopy_buf + 9 + len, back, 16) == 0
          && memcmp(back, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) == 0, "nothing written past the range");
    rc = pt_writemem_fd(pid, (uint64_t)(uintptr_t)ro_page + 10, fd, 0, 100);
    check(rc == 0 && pt_readmem(pid, (uint64_t)(uintptr_t)ro_page + 10, back, 100) == 0
          && memcmp(back, data, 100) == 0 && ro_page[10] == 'R', "writemem_fd into a read-only page of the child only (rc %d)", rc);
    rc = pt_writemem_fd(pid, (uint64_t)(uintptr_t)fdcopy_buf, fd, sizeof data - 10, 100);
    check(rc == -EINVAL, "a range past the end of the file is -EINVAL (rc %d)", rc);
    rc = pt_writemem_fd(pid, (uint64_t)(uintptr_t)fdcopy_buf, fd, (uint64_t)-4096, 8192);
    check(rc == -EINVAL, "an offset that wraps is -EINVAL (rc %d)", rc);
    rc = pt_writemem_fd(pid, 16, fd, 0, 100);
    check(rc == -EFAULT, "writemem_fd to an unmapped address is -EFAULT (rc %d)", rc);
    int p[2];
    if (pipe(p) < 0)
        exit(2);
    rc = pt_writemem_fd(pid, (uint64_t)(uintptr_t)fdcopy_buf, p[0], 0, 1);
    check(rc == -EINVAL, "writemem_fd from a pipe is -EINVAL (rc %d)", rc);
    close(p[0]);
    close(p[1]);

    rc = pt_detach(pid);
    check(rc == 0, "detach copy child (rc %d)", rc);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fd);
    close(rep);
}

/* A signal that arrives while we hold the tracee must not run its handler mid-injection, and must not
 * be lost either. */
static void test_signal_during_injection(void)
{
    int rep;
    got_usr1 = 0;
    pid_t pid = spawn_ready(usr1_child, &rep, "signal child ready");
    int rc = pt_attach(pid);
    kill(pid, SIGUSR1);
    int64_t ret = 0;
    if (!rc)
        rc = inject(pid, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == 0 && ret == pid, "inject getpid with a SIGUSR1 pending = %lld (rc %d)", (long long)ret, rc);
    int v = -1;
    pt_readmem(pid, (uint64_t)(uintptr_t)&got_usr1, &v, sizeof v);
    check(v == 0, "handler did not run while attached");
    check(pt_detach(pid) == 0, "detach signal child");
    /* It only leaves its loop once the handler ran. */
    int st = exit_status(pid, 5000);
    check(st == 0, "SIGUSR1 handled after detach: child exited normally (status %#x)", st);
    close(rep);
}

/* Real-time signals with values that arrive while we hold the tracee: held back with their siginfo and
 * the queue they came from, in order, and queued again at the detach, so the child's handler sees each
 * value once, with its si_code, in the order sent. */
#define RT_WANT 5
static volatile int rt_count;
static volatile int rt_sig[16], rt_val[16], rt_code[16];

static void on_rt(int sig, siginfo_t *si, void *uc)
{
    int i = rt_count;
    if (i < 16) {
        rt_sig[i] = sig;
        rt_val[i] = si->si_value.sival_int;
        rt_code[i] = si->si_code;
    }
    rt_count = i + 1;
}

static void rt_child(void *arg)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN, &sa, NULL);
    sigaction(SIGRTMIN + 1, &sa, NULL);
    loaded_flag = 1;
    while (rt_count < RT_WANT)
        __asm__ volatile("pause" ::: "memory");
    int out[3 * RT_WANT + 1];
    out[0] = rt_count;
    for (int i = 0; i < RT_WANT; i++) {
        out[1 + 3 * i] = rt_sig[i];
        out[2 + 3 * i] = rt_val[i];
        out[3 + 3 * i] = rt_code[i];
    }
    write_all(report_wr, out, sizeof out);
}

/* rt_tgsigqueueinfo(pid, pid, sig) with si_code SI_QUEUE and a value: the thread's own queue. */
static int tgsigqueue(pid_t pid, int sig, int value)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = value;
    return (int)syscall(SYS_rt_tgsigqueueinfo, pid, pid, sig, &si);
}

static void test_rt_signals_during_injection(void)
{
    int rep;
    pid_t pid = spawn_ready(rt_child, &rep, "rt child ready");
    int rc = pt_attach(pid);
    check(rc == 0, "attach rt child (rc %d)", rc);
    union sigval v;
    v.sival_int = 1;
    sigqueue(pid, SIGRTMIN, v);
    v.sival_int = 2;
    sigqueue(pid, SIGRTMIN, v);
    tgsigqueue(pid, SIGRTMIN + 1, 3);
    v.sival_int = 4;
    sigqueue(pid, SIGRTMIN, v);
    int64_t ret = 0;
    rc = inject(pid, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == 0 && ret == pid, "inject getpid with four real-time signals pending (rc %d)", rc);
    const struct pt_held_sig *held = NULL;
    uint32_t n = 0, lost = 0;
    rc = pt_held_signals(pid, &held, &n, &lost);
    check(rc == 0 && n == 4 && lost == 0, "four signals held back (rc %d, %u held, %u lost)", rc, n, lost);
    /* the kernel takes the thread's own queue first, then the process's, each oldest first */
    static const int want_sig[4] = { 1, 0, 0, 0 }, want_val[4] = { 3, 1, 2, 4 }, want_shared[4] = { 0, 1, 1, 1 };
    for (uint32_t i = 0; i < n && i < 4; i++) {
        const siginfo_t *si = &held[i].si;
        check(si->si_signo == SIGRTMIN + want_sig[i] && si->si_code == SI_QUEUE && si->si_value.sival_int == want_val[i] &&
                  si->si_pid == getpid() && held[i].shared == want_shared[i],
              "held %u: signal %d code %d value %d from %d, %s queue", i, si->si_signo, si->si_code, si->si_value.sival_int,
              (int)si->si_pid, held[i].shared ? "process" : "thread");
    }
    /* one more while held: it must come after the held ones */
    v.sival_int = 5;
    sigqueue(pid, SIGRTMIN, v);
    check(pt_detach(pid) == 0, "detach rt child");
    int got[3 * RT_WANT + 1];
    memset(got, 0, sizeof got);
    int r = read_full(rep, got, sizeof got, 5000);
    check(r == 0 && got[0] == RT_WANT, "the handler ran %d times after the detach (want %d)", got[0], RT_WANT);
    /* SIGRTMIN's values in the order sent, SIGRTMIN+1's once (where it falls among them is the kernel's
     * nesting of handler frames, as without us) */
    int next = 0, seen3 = 0;
    static const int order_val[4] = { 1, 2, 4, 5 };
    for (int i = 0; i < RT_WANT; i++) {
        int sig = got[1 + 3 * i], val = got[2 + 3 * i], code = got[3 + 3 * i];
        int ok = code == SI_QUEUE && ((sig == SIGRTMIN && next < 4 && val == order_val[next]) || (sig == SIGRTMIN + 1 && val == 3 && !seen3));
        if (sig == SIGRTMIN && ok)
            next++;
        else if (ok)
            seen3 = 1;
        check(ok, "delivery %d: signal %d value %d code %d", i, sig, val, code);
    }
    int st = exit_status(pid, 5000);
    check(st == 0, "rt child exited normally (status %#x)", st);
    close(rep);

    /* More than the shim keeps: counted as lost, never silently. */
    pid = spawn_ready(plain_spin_child, &rep, "spin child ready");
    sigset_t rt;
    sigemptyset(&rt);
    rc = pt_attach(pid);
    int sent = 0;
    for (int i = 0; i < SSI_HELD_SIGNALS_MAX + 3; i++) {
        v.sival_int = i;
        if (sigqueue(pid, SIGRTMIN, v) == 0)
            sent++;
    }
    rc = rc ? rc : inject(pid, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret);
    rc = rc ? rc : pt_held_signals(pid, &held, &n, &lost);
    check(rc == 0 && sent == SSI_HELD_SIGNALS_MAX + 3 && n == SSI_HELD_SIGNALS_MAX && lost == 3,
          "%d signals during one hold: %u held, %u counted as lost (rc %d)", sent, n, lost, rc);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, __WALL);
    pt_detach(pid);
    close(rep);
}

static void test_dead_tracees(void)
{
    int rep;
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    waitpid(gone, NULL, 0);
    int rc = pt_attach(gone);
    check(rc == -ESRCH && !pt_is_traced(gone), "attach to a pid that is gone: -ESRCH (rc %d)", rc);

    /* The shim's reaper takes the death of a traced child and hands it over. */
    loaded_flag = 0;
    pid_t pid = spawn(plain_spin_child, NULL, &rep);
    wait_flag(pid, &loaded_flag);
    rc = pt_attach(pid);
    kill(pid, SIGKILL);
    int st = 0;
    pid_t r = waitpid(pid, &st, __WALL);
    check(rc == 0 && r == pid && WIFSIGNALED(st), "killed tracee reaped by the 'reaper'");
    pt_note_wait_status(pid, st);
    int64_t ret;
    rc = inject(pid, SYS_getpid, 0, 0, 0, 0, 0, 0, &ret);
    check(rc == -ESRCH && !pt_is_traced(pid), "inject on it: -ESRCH and forgotten (rc %d)", rc);
    close(rep);

    /* Dies while attached and nobody reaped it yet. */
    loaded_flag = 0;
    pid = spawn(plain_spin_child, NULL, &rep);
    wait_flag(pid, &loaded_flag);
    rc = pt_attach(pid);
    kill(pid, SIGKILL);
    usleep(50000);
    int rc2 = pt_detach(pid);
    check(rc == 0 && rc2 == -ESRCH && !pt_is_traced(pid), "detach of a tracee that died: -ESRCH (rc %d)", rc2);
    waitpid(pid, NULL, __WALL);
    close(rep);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(120); /* a hang is a failure too */
    have_avx = __builtin_cpu_supports("avx");
    for (int i = 0; i < 32; i++) {
        pattern[i] = (unsigned char)(0xa0 + i);
        pattern2[i] = (unsigned char)(0x31 * (i + 1));
    }
    ro_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(ro_page, 'R', 4096);
    mprotect(ro_page, 4096, PROT_READ);
    hole_page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole_page + 4096, 4096);

    test_spin_child();
    test_setregs_redirect();
    test_blocked_reader();
    test_threads();
    test_no_vdso();
    test_give_fd();
    test_writemem_fd();
    test_signal_during_injection();
    test_rt_signals_during_injection();
    test_dead_tracees();

    printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
