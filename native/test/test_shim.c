/* End-to-end test of ssi-shim (run by `make test`, as root): starts a node with target/bin/ssi-shim
 * --detach and target/test/tool_fake_daemon as its daemon, launches programs into it through the launch
 * protocol exactly as ssi-run does (SO_PEERCRED -> setns pid+mnt -> fork -> seccomp listener -> LAUNCH
 * -> GO), checks which traps the shim answers alone and which reach the daemon, that bad clients
 * cannot hurt the node, that concurrent programs each get every answer exactly once from their own
 * responder thread, and that a node whose daemon dies takes its processes with it. Also prints, without
 * asserting (timings on this shared VM are noise), what a trapped local kill costs against a bare
 * seccomp user-notification round trip measured in the same run, also in interleaved batches.
 * Prints PASS/FAIL/INFO lines; exits 0 when everything passed. Owner: the main thread of each process. */
#include "ssi_proto.h"
#include "shim.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

#define NODE 7
#define FG_NODE 9                                          /* the foreground (no --detach) node */
#define OTHER_PID (((NODE + 1) << SSI_PID_SHIFT) + 5)      /* a pid of node 8 */
#define BENCH_ROUNDS 3000
#define BENCH_BATCHES 9                                    /* interleaved shim / bare batches */
#define BENCH_BATCH 1000
#define CONC_PROGRAMS 4                                    /* programs trapping at the same time */
#define CONC_LOCAL 2000                                    /* local kill(self, 0) traps each */
#define CONC_REMOTE 5                                      /* kill(another node's pid, 0) each, + one kill(-1, 0) */
#define PROGRAM "/test/test_shim-program"

static int failures;
/* Inherited by the programs of the concurrent and bench modes: a start barrier, and a token / result
 * pair of pipes for the interleaved bench. */
static int start_fd = -1, bench_in = -1, bench_out = -1;
static char dir[PATH_MAX], shim_bin[PATH_MAX], fake_bin[PATH_MAX];

static void report(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int ok, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One write per line: several processes of this test print to the same stdout. */
    dprintf(STDOUT_FILENO, "%s %s\n", ok ? "PASS" : "FAIL", msg);
    if (!ok)
        failures++;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void node_path(char *out, int node, const char *suffix)
{
    /* dir is a short mkdtemp name under /tmp */
    if (snprintf(out, PATH_MAX, "%s/node-%d.%s", dir, node, suffix) >= PATH_MAX)
        abort();
}

/* The whole file as a string (empty if unreadable); each call returns a fresh buffer the test leaks. */
static char *slurp(const char *path)
{
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r;
        while ((r = read(fd, buf + got, cap - 1 - got)) > 0) {
            got += (size_t)r;
            if (got == cap - 1)
                buf = realloc(buf, cap *= 2);
        }
        close(fd);
    }
    buf[got] = 0;
    return buf;
}

/* Waits up to timeout_ms for a line of the file to contain needle. */
static int wait_log(const char *path, const char *needle, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        char *text = slurp(path);
        int found = strstr(text, needle) != NULL;
        free(text);
        if (found || waited >= timeout_ms)
            return found;
        usleep(20000);
    }
}

/* waitpid with a deadline; on timeout the process is killed and -1 returned. */
static int wait_for(pid_t pid, int *status, int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return -1;
        }
        usleep(10000);
    }
}

/* Runs ssi-shim with args; its stderr goes to err_path. Returns its pid. */
static pid_t spawn_shim(int node, int detach, const char *err_path)
{
    char nodestr[16];
    snprintf(nodestr, sizeof nodestr, "%d", node);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        char *fg[] = { shim_bin, "--node", nodestr, "--run-dir", dir, "--", fake_bin, "--node", nodestr,
                       "--run-dir", dir, NULL };
        char *bg[] = { shim_bin, "--node", nodestr, "--run-dir", dir, "--detach", "--", fake_bin, "--node",
                       nodestr, "--run-dir", dir, "--probe-ptrace", NULL };
        execv(shim_bin, detach ? bg : fg);
        _exit(127);
    }
    return pid;
}

static int run_status(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, STDERR_FILENO);
        dup2(nul, STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    if (wait_for(pid, &st, 10000) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int connect_unix(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Does the peer close fd within timeout_ms? (read returns 0 or ECONNRESET) */
static int closed_within(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    double end = now_us() + timeout_ms * 1000.0;
    while (now_us() < end) {
        int left = (int)((end - now_us()) / 1000) + 1;
        if (poll(&p, 1, left) <= 0)
            continue;
        char c[256];
        ssize_t r = read(fd, c, sizeof c);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 1;
    }
    return 0;
}

/* ---- the launched program's side (runs inside the node) ---- */

/* Traps kill and tgkill of x86_64 only: another arch's numbers mean other syscalls. */
static int install_filter(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_kill, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_tgkill, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

/* Sends a LAUNCH naming pid, with fd (or none) and our credentials; returns GO's error (or -1000 when
 * no GO came) and copies its message. */
static int launch_frame(int sock, int32_t pid, int fd, const char *path, char *msg, size_t msg_cap)
{
    char buf[sizeof(struct ssi_launch) + 64];
    struct ssi_launch l = { .pid = pid, .argc = 1 };
    memcpy(buf, &l, sizeof l);
    strcpy(buf + sizeof l, path);
    if (ssi_send_frame(sock, SSI_LAUNCH, 42, buf, sizeof l + strlen(path) + 1, fd, 1) < 0)
        return -1000;
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    _Alignas(8) char reply[1024];
    if (ssi_recv_frame(sock, reply, sizeof reply, NULL, NULL) < 0)
        return -1000;
    const struct ssi_hdr *h = (const void *)reply;
    if (h->type != SSI_GO || h->req_id != 42 || h->len < sizeof *h + sizeof(struct ssi_go))
        return -1000;
    struct ssi_go g;
    memcpy(&g, reply + sizeof *h, sizeof g);
    if (msg_cap) {
        size_t n = h->len - sizeof *h - sizeof g;
        snprintf(msg, msg_cap, "%.*s", (int)n, reply + sizeof *h + sizeof g);
    }
    return g.error;
}

static int launch_sock(void)
{
    char p[PATH_MAX];
    node_path(p, NODE, "launch");
    return connect_unix(p);
}

/* The launch itself, as the ssi-run stub P does it. Returns 0 when GO(0) came. */
static int launch_self(int sock, const char *path)
{
    int listener = install_filter();
    if (listener < 0) {
        report(0, "installing the seccomp filter: %s", strerror(errno));
        return -1;
    }
    char msg[256] = "";
    int err = launch_frame(sock, getpid(), listener, path, msg, sizeof msg);
    close(listener);
    close(sock);
    if (err) {
        report(0, "LAUNCH answered GO(%d) %s", err, msg);
        return -1;
    }
    return 0;
}

enum mode { MODE_CHECKS, MODE_SIMPLE, MODE_LONG, MODE_PTRACE, MODE_CONCURRENT, MODE_BENCH };

/* Waits for a byte on fd (up to timeout_ms); returns it, or 0 if none came. */
static char wait_byte(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char c;
    return poll(&p, 1, timeout_ms) == 1 && read(fd, &c, 1) == 1 ? c : 0;
}

/* One of CONC_PROGRAMS programs that trap at the same time: every local trap must be answered CONTINUE
 * by the shim and every remote one by the daemon, each exactly once (a lost answer hangs the program, a
 * duplicated or crossed one gives a wrong result). */
static int concurrent_body(pid_t me)
{
    if (!wait_byte(start_fd, 20000)) {
        report(0, "concurrent program %d: no start signal", me);
        return failures;
    }
    int bad_local = 0, bad_remote = 0, remote = 0;
    for (int i = 0; i < CONC_LOCAL; i++) {
        if (kill(me, 0) != 0)
            bad_local++;
        if (i % (CONC_LOCAL / CONC_REMOTE) == CONC_LOCAL / CONC_REMOTE / 2) {
            errno = 0;
            int rc = kill(OTHER_PID, 0);
            if (!(rc == -1 && errno == ESRCH))
                bad_remote++;
            remote++;
        }
    }
    errno = 0;
    if (kill(-1, 0) != 0)
        bad_remote++;
    remote++;
    report(bad_local == 0 && bad_remote == 0 && remote == CONC_REMOTE + 1,
           "concurrent program %d: %d local traps (shim) and %d remote ones (daemon) all answered right "
           "(%d wrong local, %d wrong remote)", me, CONC_LOCAL, remote, bad_local, bad_remote);
    return failures;
}

/* The shim side of the interleaved bench: one batch per 'b', its mean cost sent back; ends on 'q'. */
static int bench_body(pid_t me)
{
    for (;;) {
        if (wait_byte(bench_in, 60000) != 'b')
            return 0;
        double t0 = now_us();
        for (int i = 0; i < BENCH_BATCH; i++)
            kill(me, 0);
        double us = (now_us() - t0) / BENCH_BATCH;
        if (write(bench_out, &us, sizeof us) != sizeof us)
            return 1;
    }
}

/* Body of P. Returns the number of failures (its exit code). */
static int program(enum mode mode, int sock, int info_fd)
{
    char msg[256];
    if (mode == MODE_CHECKS) {
        /* Refusals first, each on a connection of its own (the shim closes it after GO). */
        int s = launch_sock();
        int pfd[2];
        if (pipe(pfd) < 0)
            return 1;
        int err = launch_frame(s, getpid(), pfd[0], PROGRAM, msg, sizeof msg);
        report(err == -EINVAL, "LAUNCH with an fd that is not a seccomp listener is refused (GO %d: %s)", err, msg);
        close(s);
        s = launch_sock();
        err = launch_frame(s, getpid(), -1, PROGRAM, msg, sizeof msg);
        report(err == -EBADF, "LAUNCH without a listener fd is refused (GO %d: %s)", err, msg);
        close(s);
        s = launch_sock();
        err = launch_frame(s, getpid() + 1, pfd[0], PROGRAM, msg, sizeof msg);
        report(err == -EPERM, "LAUNCH whose pid differs from its credentials is refused (GO %d: %s)", err, msg);
        close(s);
        close(pfd[0]);
        close(pfd[1]);
    }
    double native_us = 0;
    if (mode == MODE_CHECKS) {
        double t0 = now_us();
        for (int i = 0; i < BENCH_ROUNDS; i++)
            kill(getpid(), 0);
        native_us = (now_us() - t0) / BENCH_ROUNDS;
    }
    if (mode == MODE_CHECKS) {
        /* Not trapped yet (no filter): a process of the node cannot stop it by signalling its init
         * natively either. Once trapped, the shim refuses such a kill with ESRCH (checked below). */
        int rc = kill(1, SIGTERM);
        usleep(100000);
        report(rc == 0 && kill(getpid(), 0) == 0, "an untrapped kill(1, SIGTERM) from inside the node is "
               "ignored by the node init");
    }
    if (launch_self(sock, mode == MODE_PTRACE ? "/test/ptrace-probe" : PROGRAM) < 0)
        return failures;
    pid_t me = getpid();
    if (info_fd >= 0) {
        ssize_t w = write(info_fd, &me, sizeof me);
        (void)w;
    }
    if (mode == MODE_LONG) {
        for (;;)
            pause();
    }
    if (mode == MODE_CONCURRENT)
        return concurrent_body(me);
    if (mode == MODE_BENCH)
        return bench_body(me);
    if (mode == MODE_PTRACE) {
        /* The daemon attaches, pokes at us through the shim and installs /dev/zero as our fd 100; we
         * run again only after its DETACH. */
        for (int i = 0; i < 1000 && fcntl(100, F_GETFD) < 0; i++)
            usleep(10000);
        char target[64] = "";
        ssize_t tl = readlink("/proc/self/fd/100", target, sizeof target - 1);
        if (tl > 0)
            target[tl] = 0;
        uint32_t word = 1;
        int ok = !strcmp(target, "/dev/zero") && read(100, &word, sizeof word) == sizeof word && word == 0;
        report(ok, "GIVEFD through the link installed the daemon's /dev/zero as fd 100 of the traced program "
               "(fd 100 -> '%s')", target);
        int rc = kill(getpid(), 0);
        report(rc == 0, "the program runs normally after the daemon's DETACH");
        return failures;
    }
    int base = NODE << SSI_PID_SHIFT, limit = (NODE + 1) << SSI_PID_SHIFT;
    report(me >= base && me < limit, "launched program's pid %d is in node %d's range [%d, %d)", me, NODE, base,
           limit);
    int rc = kill(me, 0);
    report(rc == 0, "kill(own pid, 0) = %d (%s) (trapped, answered by the shim)", rc, rc ? strerror(errno) : "ok");
    if (mode == MODE_SIMPLE)
        return failures;

    errno = 0;
    rc = kill(OTHER_PID, 0);
    report(rc == -1 && errno == ESRCH, "kill(%d: node %d's pid, 0) fails with ESRCH from the daemon (got %d, %s)",
           OTHER_PID, NODE + 1, rc, strerror(errno));
    rc = (int)syscall(SYS_tgkill, me, me, 0);
    report(rc == 0, "tgkill(own tgid, own tid, 0) = %d (answered by the shim)", rc);
    errno = 0;
    rc = (int)syscall(SYS_tgkill, OTHER_PID, OTHER_PID, 0);
    report(rc == -1 && errno == ESRCH, "tgkill(another node's tgid) fails with ESRCH from the daemon (got %d, %s)",
           rc, strerror(errno));
    errno = 0;
    rc = kill(-1, 0);
    report(rc == 0, "kill(-1, 0) = %d (%s) after the daemon answered it", rc, rc ? strerror(errno) : "ok");

    /* Node-internal pids are no cluster processes: the shim refuses them without asking anyone. */
    errno = 0;
    rc = kill(2, 0);
    report(rc == -1 && errno == ESRCH, "kill(2: the node daemon, 0) fails with ESRCH (got %d, %s)", rc,
           strerror(errno));
    errno = 0;
    rc = kill(1, 0);
    report(rc == 0, "kill(1: the node init, every orphan's parent, 0) succeeds (got %d, %s)", rc,
           rc ? strerror(errno) : "ok");
    errno = 0;
    rc = kill(2, SIGKILL);
    report(rc == -1 && errno == ESRCH, "kill(2, SIGKILL) fails with ESRCH (got %d, %s)", rc, strerror(errno));
    errno = 0;
    rc = kill(-2, SIGTERM);
    report(rc == -1 && errno == ESRCH, "kill(-2: a node-internal process group, SIGTERM) fails with ESRCH "
           "(got %d, %s)", rc, strerror(errno));
    errno = 0;
    rc = (int)syscall(SYS_tgkill, 2, 2, SIGKILL);
    report(rc == -1 && errno == ESRCH, "tgkill(2, 2, SIGKILL) fails with ESRCH (got %d, %s)", rc, strerror(errno));

    FILE *f = fopen("/proc/self/stat", "r");
    int stat_pid = -1;
    if (f) {
        if (fscanf(f, "%d", &stat_pid) != 1)
            stat_pid = -1;
        fclose(f);
    }
    report(stat_pid == me, "/proc/self/stat shows pid %d, getpid() is %d (the node's own /proc)", stat_pid, me);
    char *pm = slurp("/proc/sys/kernel/pid_max");
    report(atol(pm) == limit, "the node's pid_max is %ld (want %d)", atol(pm), limit);

    /* Children inherit the filter (and so the listener) and get pids of the node too. */
    pid_t c = fork();
    if (c == 0) {
        pid_t cp = getpid();
        _exit(cp >= base && cp < limit && kill(getppid(), 0) == 0 && kill(cp, 0) == 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    report(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a child (pid %d) of the program is in range and its local "
           "kills are answered", c);

    /* The watchdog rewinds the pid cursor before it can wrap below the node's range. */
    int cur = open("/proc/sys/kernel/ns_last_pid", O_RDWR);
    char v[32];
    int vl = snprintf(v, sizeof v, "%d", limit - 10);
    int wrote = cur >= 0 && write(cur, v, (size_t)vl) == vl;
    long after = -1;
    for (int i = 0; i < 150 && wrote; i++) { /* the tick is 50 ms; allow for a loaded machine */
        usleep(20000);
        ssize_t r = pread(cur, v, sizeof v - 1, 0);
        v[r > 0 ? r : 0] = 0;
        after = atol(v);
        if (after < limit - 512)
            break;
    }
    if (cur >= 0)
        close(cur);
    report(wrote && after >= base - 1 && after < limit - 512,
           "the watchdog rewound ns_last_pid from %d to %ld (range [%d, %d))", limit - 10, after, base, limit);

    usleep(100000);
    report(kill(me, 0) == 0, "the node survived the kills aimed at its init and daemon");

    double t0 = now_us();
    for (int i = 0; i < BENCH_ROUNDS; i++)
        kill(me, 0);
    double shim_us = (now_us() - t0) / BENCH_ROUNDS;
    dprintf(STDOUT_FILENO, "INFO kill(own pid, 0): native %.2f us, trapped and answered by the shim %.2f us\n",
            native_us, shim_us);
    return failures;
}

/* The ssi-run side: enter the node's namespaces from its launch socket, fork P there, relay its end. */
static pid_t launch_in_node(enum mode mode, int info_fd)
{
    pid_t client = fork();
    if (client != 0)
        return client;
    failures = 0; /* this process reports only its own */
    int sock = launch_sock();
    if (sock < 0) {
        report(0, "connect to the launch socket: %s", strerror(errno));
        _exit(1);
    }
    struct ucred cr;
    socklen_t crl = sizeof cr;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0) {
        report(0, "SO_PEERCRED: %s", strerror(errno));
        _exit(1);
    }
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/pid", cr.pid);
    int pidns = open(p, O_RDONLY | O_CLOEXEC);
    snprintf(p, sizeof p, "/proc/%d/ns/mnt", cr.pid);
    int mntns = open(p, O_RDONLY | O_CLOEXEC);
    if (pidns < 0 || mntns < 0 || setns(pidns, CLONE_NEWPID) < 0 || setns(mntns, CLONE_NEWNS) < 0) {
        report(0, "entering the namespaces of the shim (host pid %d): %s", cr.pid, strerror(errno));
        _exit(1);
    }
    pid_t prog = fork();
    if (prog == 0)
        _exit(program(mode, sock, info_fd));
    close(sock);
    int st;
    while (waitpid(prog, &st, 0) < 0 && errno == EINTR)
        ;
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* ---- baseline: a bare user-notification round trip with a dedicated responder, no shim ---- */

static void bench_bare(void)
{
    pid_t b = fork();
    if (b != 0) {
        int st;
        wait_for(b, &st, 60000);
        return;
    }
    int listener = install_filter();
    if (listener < 0)
        _exit(1);
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    pid_t r = fork();
    if (r == 0) {
        for (;;) {
            struct seccomp_notif n;
            memset(&n, 0, sizeof n);
            if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) {
                if (errno == ENOENT || errno == EINTR)
                    continue;
                _exit(0);
            }
            struct seccomp_notif_resp resp = { .id = n.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
            ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
        }
    }
    close(listener);
    double t0 = now_us();
    for (int i = 0; i < BENCH_ROUNDS; i++)
        kill(getpid(), 0);
    double us = (now_us() - t0) / BENCH_ROUNDS;
    kill(r, SIGKILL);
    waitpid(r, NULL, 0);
    dprintf(STDOUT_FILENO, "INFO kill(own pid, 0): bare RECV+SEND responder (blocking RECV, no shim) %.2f us\n", us);
    _exit(0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs one batch of the program behind (to, from) and returns its mean cost, or -1. */
static double bench_batch(int to, int from)
{
    double us = -1;
    struct pollfd p = { .fd = from, .events = POLLIN };
    if (write(to, "b", 1) != 1 || poll(&p, 1, 30000) != 1 || read(from, &us, sizeof us) != sizeof us)
        return -1;
    return us;
}

/* A bare bench program: its own filter and a blocking RECV+SEND responder child (in a session of its own
 * when own_session: another autogroup, as the shim's responders are for the programs they serve). */
static pid_t start_bare(int to[2], int from[2], int own_session)
{
    pid_t bare = fork();
    if (bare != 0)
        return bare;
    int listener = install_filter();
    if (listener < 0)
        _exit(1);
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    pid_t r = fork();
    if (r == 0) {
        if (own_session)
            setsid();
        for (;;) {
            struct seccomp_notif n;
            memset(&n, 0, sizeof n);
            if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) {
                if (errno == ENOENT || errno == EINTR)
                    continue;
                _exit(0);
            }
            struct seccomp_notif_resp resp = { .id = n.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
            ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
        }
    }
    close(listener);
    bench_in = to[0];
    bench_out = from[1];
    int rc = bench_body(getpid());
    kill(r, SIGKILL);
    waitpid(r, NULL, 0);
    _exit(rc);
}

/* The same trapped kill(own pid, 0) through the shim and through bare blocking RECV+SEND responders, in
 * rotating batches so that all see the same load; prints medians and ratios (no assertion). The second
 * bare responder sits in a session of its own: with autogroup scheduling a responder in another session
 * than the trapped program (as the shim always is: it is a session leader) costs a little more. */
enum { VIA_SHIM, VIA_BARE, VIA_BARE_SESSION, VIA_COUNT };
static void bench_interleaved(void)
{
    int to[VIA_COUNT][2], from[VIA_COUNT][2];
    for (int v = 0; v < VIA_COUNT; v++)
        if (pipe(to[v]) < 0 || pipe(from[v]) < 0)
            return;
    pid_t pids[VIA_COUNT];
    bench_in = to[VIA_SHIM][0];
    bench_out = from[VIA_SHIM][1];
    pids[VIA_SHIM] = launch_in_node(MODE_BENCH, -1);
    bench_in = bench_out = -1;
    pids[VIA_BARE] = start_bare(to[VIA_BARE], from[VIA_BARE], 0);
    pids[VIA_BARE_SESSION] = start_bare(to[VIA_BARE_SESSION], from[VIA_BARE_SESSION], 1);
    for (int v = 0; v < VIA_COUNT; v++) {
        close(to[v][0]);
        close(from[v][1]);
    }
    double us[VIA_COUNT][BENCH_BATCHES];
    int got = 0;
    for (int b = 0; b < BENCH_BATCHES; b++, got++) {
        int ok = 1;
        for (int k = 0; k < VIA_COUNT && ok; k++) {
            int v = (b + k) % VIA_COUNT; /* who goes first rotates too */
            us[v][b] = bench_batch(to[v][1], from[v][0]);
            ok = us[v][b] >= 0;
        }
        if (!ok)
            break;
    }
    /* Every process here holds both ends of these pipes, so the end is said, not an EOF. */
    for (int v = 0; v < VIA_COUNT; v++) {
        ssize_t w = write(to[v][1], "q", 1);
        (void)w;
        close(to[v][1]);
    }
    int st;
    for (int v = 0; v < VIA_COUNT; v++) {
        wait_for(pids[v], &st, 30000);
        close(from[v][0]);
    }
    if (got < BENCH_BATCHES) {
        printf("INFO interleaved bench incomplete (%d of %d batches)\n", got, BENCH_BATCHES);
        return;
    }
    double med[VIA_COUNT], min[VIA_COUNT];
    for (int v = 0; v < VIA_COUNT; v++) {
        qsort(us[v], BENCH_BATCHES, sizeof(double), cmp_double);
        med[v] = us[v][BENCH_BATCHES / 2];
        min[v] = us[v][0];
    }
    printf("INFO kill(own pid, 0), %d interleaved batches of %d: through the shim median %.2f us (min %.2f), "
           "bare RECV+SEND responder median %.2f us (min %.2f), bare responder in another session median "
           "%.2f us (min %.2f); shim / bare = %.2f, shim / bare in another session = %.2f\n", BENCH_BATCHES,
           BENCH_BATCH, med[VIA_SHIM], min[VIA_SHIM], med[VIA_BARE], min[VIA_BARE], med[VIA_BARE_SESSION],
           min[VIA_BARE_SESSION], med[VIA_SHIM] / med[VIA_BARE], med[VIA_SHIM] / med[VIA_BARE_SESSION]);
}

/* ---- the test process's side ---- */

static int count_lines(const char *text, const char *a, const char *b);

/* How many threads of pid are responders (named ssi-notif-N)? */
static int count_responders(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/task", (int)pid);
    DIR *d = opendir(p);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char cp[300];
        snprintf(cp, sizeof cp, "/proc/%d/task/%s/comm", (int)pid, e->d_name);
        char *comm = slurp(cp);
        if (!strncmp(comm, "ssi-notif-", 10))
            n++;
        free(comm);
    }
    if (d)
        closedir(d);
    return n;
}

static int count_text(const char *text, const char *needle)
{
    int n = 0;
    for (const char *at = text; (at = strstr(at, needle)); at += strlen(needle))
        n++;
    return n;
}

/* CONC_PROGRAMS programs, released together, each trapping CONC_LOCAL local kills and a few remote ones:
 * every answer right, each remote trap seen by the daemon exactly once, LISTENER_GONE once for each
 * listener, and no responder thread left behind. */
static void concurrent_check(pid_t shim, const char *log_path)
{
    int info[2], start[2];
    if (pipe2(info, O_CLOEXEC) < 0 || pipe(start) < 0)
        return;
    char *before = slurp(log_path);
    size_t log_from = strlen(before); /* pids repeat once the watchdog rewound the cursor: look only later */
    free(before);
    start_fd = start[0];
    pid_t clients[CONC_PROGRAMS];
    for (int i = 0; i < CONC_PROGRAMS; i++)
        clients[i] = launch_in_node(MODE_CONCURRENT, info[1]);
    close(info[1]);
    close(start[0]);
    start_fd = -1;
    pid_t pids[CONC_PROGRAMS];
    int n = 0;
    while (n < CONC_PROGRAMS && read(info[0], &pids[n], sizeof pids[n]) == sizeof pids[n])
        n++;
    close(info[0]);
    report(n == CONC_PROGRAMS, "%d of %d concurrent programs launched", n, CONC_PROGRAMS);
    int threads = 0;
    for (int i = 0; i < 100 && (threads = count_responders(shim)) < n; i++)
        usleep(20000); /* a responder names itself when it first runs */
    report(threads >= n, "the shim runs a responder thread (ssi-notif-N) per listener: %d for %d waiting "
           "programs", threads, n);
    char go[CONC_PROGRAMS];
    memset(go, 'g', sizeof go);
    ssize_t w = write(start[1], go, sizeof go);
    (void)w;
    close(start[1]);
    int all_ok = 1;
    for (int i = 0; i < CONC_PROGRAMS; i++) {
        int st = 0;
        int ok = wait_for(clients[i], &st, 60000) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!ok)
            all_ok = 0;
    }
    report(all_ok, "%d concurrent programs trapping together all finished with every answer right", CONC_PROGRAMS);

    /* Each program's listener, from its LAUNCHED line, must end once; each remote trap reach the daemon once. */
    uint32_t lids[CONC_PROGRAMS];
    char *log = slurp(log_path);
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "LAUNCHED pid=%d ", pids[i]);
        char *at = strlen(log) >= log_from ? strstr(log + log_from, key) : NULL;
        char *l = at ? strstr(at, " listener=") : NULL;
        lids[i] = l ? (uint32_t)strtoul(l + 10, NULL, 10) : 0;
    }
    free(log);
    int gone_ok = 1, notif_ok = 1;
    char detail[256] = "";
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "LISTENER_GONE listener=%u\n", lids[i]);
        wait_log(log_path, key, 5000);
    }
    usleep(100000); /* a duplicate would come right after */
    char *whole = slurp(log_path);
    log = whole + (strlen(whole) >= log_from ? log_from : strlen(whole));
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "LISTENER_GONE listener=%u\n", lids[i]);
        int gone = lids[i] ? count_text(log, key) : 0;
        snprintf(key, sizeof key, "NOTIF listener=%u pid=%d ", lids[i], pids[i]);
        int notifs = count_lines(log, key, NULL);
        snprintf(key, sizeof key, "arg0=%d ", pids[i]);
        int local = count_lines(log, "NOTIF", key);
        if (gone != 1)
            gone_ok = 0;
        if (notifs != CONC_REMOTE + 1 || local != 0)
            notif_ok = 0;
        size_t dl = strlen(detail);
        snprintf(detail + dl, sizeof detail - dl, "%s%d: %d gone, %d notif, %d local", i ? "; " : "", pids[i],
                 gone, notifs, local);
    }
    free(whole);
    report(n > 0 && gone_ok, "the daemon was told LISTENER_GONE exactly once for each concurrent program (%s)",
           detail);
    report(n > 0 && notif_ok, "each concurrent program's %d remote traps reached the daemon exactly once and no "
           "local one did", CONC_REMOTE + 1);
    int left = -1;
    for (int i = 0; i < 100 && (left = count_responders(shim)) != 0; i++)
        usleep(20000);
    report(left == 0, "every responder thread was joined once its program ended (%d left)", left);
}

static pid_t find_daemon(pid_t shim)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = -1;
    while (d && (e = readdir(d))) {
        char p[300];
        snprintf(p, sizeof p, "/proc/%s/status", e->d_name);
        char *s = slurp(p);
        char *pp = strstr(s, "\nPPid:\t"), *ns = strstr(s, "\nNSpid:\t");
        if (pp && ns && atoi(pp + 7) == shim) {
            char *line_end = strchr(ns + 1, '\n');
            if (line_end)
                *line_end = 0;
            char *last = strrchr(ns, '\t');
            if (last && atoi(last + 1) == 2)
                found = atoi(e->d_name);
        }
        free(s);
    }
    if (d)
        closedir(d);
    return found;
}

static int count_lines(const char *text, const char *a, const char *b)
{
    int n = 0;
    for (const char *l = text; l && *l;) {
        const char *end = strchr(l, '\n');
        size_t len = end ? (size_t)(end - l) : strlen(l);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)len, l);
        if (strstr(line, a) && (!b || strstr(line, b)))
            n++;
        l = end ? end + 1 : NULL;
    }
    return n;
}

static const char *decision_name(int d)
{
    static char buf[32];
    if (d == SHIM_CONTINUE)
        return "CONTINUE";
    if (d == SHIM_ASK_DAEMON)
        return "ask the daemon";
    snprintf(buf, sizeof buf, "%d (%s)", d, d < 0 ? strerror(-d) : "?");
    return buf;
}

static void unit_decisions(void)
{
    const uint32_t X = AUDIT_ARCH_X86_64;
    const int C = SHIM_CONTINUE, D = SHIM_ASK_DAEMON, S = -ESRCH;
    const long INTERNAL_TOP = (1L << SSI_PID_SHIFT) - 1; /* the last node-internal pid */
    int n = NODE, own = (NODE << SSI_PID_SHIFT) + 3;
    struct { int nr; long arg0, arg1; uint32_t arch; int want; const char *what; } cases[] = {
        { SYS_kill, own, 0, X, C, "kill of a pid of this node" },
        { SYS_kill, NODE << SSI_PID_SHIFT, 0, X, C, "kill of the first pid of this node's range" },
        { SYS_kill, ((NODE + 1) << SSI_PID_SHIFT) - 1, 0, X, C, "kill of the last pid of this node's range" },
        { SYS_kill, 2, 0, X, S, "kill of the node daemon (pid 2)" },
        { SYS_kill, 1, 0, X, C, "kill of the node init (pid 1, the orphans' parent; the kernel protects it)" },
        { SYS_kill, INTERNAL_TOP, 0, X, S, "kill of the last node-internal pid" },
        { SYS_kill, 1L << SSI_PID_SHIFT, 0, X, D, "kill of node 1's first pid (no longer node-internal)" },
        { SYS_kill, 0, 0, X, C, "kill of the own process group" },
        { SYS_kill, -own, 0, X, C, "kill of a process group of this node" },
        { SYS_kill, -2, 0, X, S, "kill of a node-internal process group (-2)" },
        { SYS_kill, -INTERNAL_TOP, 0, X, S, "kill of the last node-internal process group" },
        { SYS_kill, OTHER_PID, 0, X, D, "kill of another node's pid" },
        { SYS_kill, -OTHER_PID, 0, X, D, "kill of another node's process group" },
        { SYS_kill, -1, 0, X, D, "kill(-1): the daemon delivers it on every node" },
        { SYS_kill, INT_MIN, 0, X, D, "kill(INT_MIN): the daemon answers it" },
        { SYS_kill, (long)(uint32_t)own | (5L << 32), 0, X, C, "kill with junk in the upper half of the pid" },
        { SYS_kill, 2L | (5L << 32), 0, X, S, "kill of pid 2 with junk in the upper half" },
        { SYS_kill | 0x40000000, own, 0, X, C, "x32 kill of a pid of this node" },
        { SYS_kill | 0x40000000, 2, 0, X, S, "x32 kill of the node daemon" },
        { SYS_kill, own, 0, AUDIT_ARCH_I386, D, "i386 syscall numbers" },
        { SYS_kill, 2, 0, AUDIT_ARCH_I386, D, "i386 syscall numbers, small first argument" },
        { SYS_tgkill, own, own, X, C, "tgkill of a tgid of this node" },
        { SYS_tgkill, OTHER_PID, OTHER_PID, X, D, "tgkill of another node's tgid" },
        { SYS_tgkill, 2, 2, X, S, "tgkill of the node daemon's main thread" },
        { SYS_tgkill, 2, 0, X, C, "tgkill(2, 0): the kernel answers EINVAL before any lookup" },
        { SYS_tgkill, 0, own, X, C, "tgkill(0, tid): the kernel answers EINVAL" },
        { SYS_tkill, OTHER_PID, 0, X, D, "tkill of another node's tid" },
        { SYS_tkill, own, 0, X, C, "tkill of a tid of this node" },
        { SYS_tkill, 40, 0, X, S, "tkill of a node-internal tid (a daemon thread)" },
        { SYS_tkill, 0, 0, X, C, "tkill(0): the kernel answers EINVAL" },
        { SYS_rt_sigqueueinfo, own, 0, X, C, "rt_sigqueueinfo of a pid of this node" },
        { SYS_rt_sigqueueinfo, 2, 0, X, S, "rt_sigqueueinfo of the node daemon" },
        { SYS_rt_tgsigqueueinfo, OTHER_PID, OTHER_PID, X, D, "rt_tgsigqueueinfo of another node's tgid" },
        { SYS_rt_tgsigqueueinfo, 2, 2, X, S, "rt_tgsigqueueinfo of the node daemon" },
        { SYS_getpid, 0, 0, X, D, "a syscall the table does not give the shim" },
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = shim_decide_local(n, cases[i].arch, cases[i].nr, (uint64_t)cases[i].arg0, (uint64_t)cases[i].arg1);
        if (got != cases[i].want) {
            char want[64];
            snprintf(want, sizeof want, "%s", decision_name(cases[i].want));
            report(0, "decision for %s: shim_decide_local says %s, want %s", cases[i].what, decision_name(got), want);
            bad++;
        }
    }
    if (!bad)
        report(1, "shim_decide_local: %zu trap decisions (continue / ask the daemon / ESRCH) as the contract says",
               sizeof cases / sizeof cases[0]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (geteuid() != 0) {
        printf("FAIL test_shim must run as root (pid namespaces, seccomp, setns)\n");
        return 1;
    }
    /* The detached shim is orphaned by its parent half; as subreaper we get it and can wait for it. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0)
        return 1;
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    if (snprintf(shim_bin, sizeof shim_bin, "%s/../bin/ssi-shim", exe) >= (int)sizeof shim_bin ||
        snprintf(fake_bin, sizeof fake_bin, "%s/tool_fake_daemon", exe) >= (int)sizeof fake_bin)
        return 1;
    strcpy(dir, "/tmp/ssi-test-shim.XXXXXX");
    if (!mkdtemp(dir)) {
        printf("FAIL mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    char launch_path[PATH_MAX], link_path[PATH_MAX], log_path[PATH_MAX], err_path[PATH_MAX];
    node_path(launch_path, NODE, "launch");
    node_path(link_path, NODE, "link");
    node_path(log_path, NODE, "log");
    snprintf(err_path, sizeof err_path, "%s/start.err", dir);

    unit_decisions();

    {   /* usage errors */
        char *a1[] = { shim_bin, "--node", "0", "--run-dir", dir, "--", "/bin/true", NULL };
        char *a2[] = { shim_bin, "--node", "256", "--run-dir", dir, "--", "/bin/true", NULL };
        char *a3[] = { shim_bin, "--node", "3", "--run-dir", dir, NULL };
        char *a4[] = { shim_bin, "--node", "3x", "--run-dir", dir, "--", "/bin/true", NULL };
        int r1 = run_status(a1), r2 = run_status(a2), r3 = run_status(a3), r4 = run_status(a4);
        report(r1 == 2 && r2 == 2 && r3 == 2 && r4 == 2, "bad usage exits 2 (node 0: %d, node 256: %d, no "
               "command: %d, node 3x: %d)", r1, r2, r3, r4);
    }

    /* A stale socket from a crashed node must not stop the start. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s", launch_path) >= (int)sizeof sa.sun_path)
        return 1;
    bind(stale, (struct sockaddr *)&sa, sizeof sa);
    close(stale);

    pid_t starter = spawn_shim(NODE, 1, err_path);
    int st;
    int started = wait_for(starter, &st, 30000) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    report(started, "ssi-shim --detach returns 0 once the fake daemon linked (stale socket replaced)");
    if (!started) {
        printf("---- start output:\n%s---- node log:\n%s----\n", slurp(err_path), slurp(log_path));
        return 1;
    }
    int probe = connect_unix(launch_path);
    struct ucred cr = { .pid = -1 };
    socklen_t crl = sizeof cr;
    getsockopt(probe, SOL_SOCKET, SO_PEERCRED, &cr, &crl);
    close(probe);
    pid_t shim = cr.pid;
    report(shim > 0, "SO_PEERCRED of the launch socket names the shim's host pid (%d)", shim);
    struct stat sl, sk;
    int modes_ok = stat(launch_path, &sl) == 0 && stat(link_path, &sk) == 0 && S_ISSOCK(sl.st_mode) &&
                   S_ISSOCK(sk.st_mode) && (sl.st_mode & 0777) == 0666 && (sk.st_mode & 0777) == 0600;
    report(modes_ok, "node-%d.launch is a 0666 socket and node-%d.link a 0600 socket (%o, %o)", NODE, NODE,
           sl.st_mode & 0777, sk.st_mode & 0777);

    pid_t second = spawn_shim(NODE, 1, err_path);
    int refused = wait_for(second, &st, 10000) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 1;
    char *err = slurp(err_path);
    report(refused && strstr(err, "already running"), "a second start of node %d is refused: %s", NODE,
           strtok(err, "\n") ? err : "(no message)");

    int intruder = connect_unix(link_path);
    report(intruder >= 0 && closed_within(intruder, 3000),
           "the link socket drops a peer that is not the node daemon (pid 2)");
    if (intruder >= 0)
        close(intruder);

    {   /* a LAUNCH from outside the node's pid namespace */
        pid_t h = fork();
        if (h == 0) {
            int s = launch_sock();
            int l = install_filter();
            char msg[256] = "";
            int e = launch_frame(s, getpid(), l, PROGRAM, msg, sizeof msg);
            report(e == -EPERM, "a LAUNCH from outside the node's pid namespace is refused (GO %d: %s)", e, msg);
            _exit(e == -EPERM ? 0 : 1);
        }
        wait_for(h, &st, 15000);
        if (!WIFEXITED(st))
            report(0, "the outside LAUNCH process did not finish");
    }

    int info[2];
    if (pipe2(info, O_CLOEXEC) < 0)
        return 1;
    pid_t client = launch_in_node(MODE_CHECKS, info[1]);
    close(info[1]); /* a program that fails before its report must not leave us blocked below */
    pid_t prog_pid = -1;
    if (read(info[0], &prog_pid, sizeof prog_pid) != sizeof prog_pid)
        prog_pid = -1;
    close(info[0]);
    int ok = wait_for(client, &st, 60000) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    report(ok, "the launched program's checks all passed (client exit status 0x%x)", st);
    bench_bare();

    /* The daemon hears of the program's end asynchronously: its last line comes last. */
    wait_log(log_path, "LISTENER_GONE", 5000);
    char *log = slurp(log_path);
    char want[64], launched[64];
    snprintf(want, sizeof want, "arg0=%d ", OTHER_PID);
    snprintf(launched, sizeof launched, "LAUNCHED pid=%d ", prog_pid);
    report(count_lines(log, launched, "path=/test/test_shim-program") == 1,
           "the daemon was told LAUNCHED for pid %d", prog_pid);
    report(count_lines(log, "NOTIF", want) == 2, "both traps aimed at node %d's pid reached the daemon (%d)",
           NODE + 1, count_lines(log, "NOTIF", want));
    report(count_lines(log, "NOTIF", "arg0=-1 ") == 1, "kill(-1) reached the daemon");
    report(count_lines(log, "NOTIF", "arg0=1 ") == 0 && count_lines(log, "NOTIF", "arg0=2 ") == 0 &&
           count_lines(log, "NOTIF", "arg0=-2 ") == 0,
           "no trap aimed at a node-internal pid reached the daemon (the shim answered them)");
    snprintf(want, sizeof want, "arg0=%d ", prog_pid);
    report(prog_pid > 0 && count_lines(log, "NOTIF", want) == 0,
           "no trap aimed at the program's own pid reached the daemon (%d lines; %d local kills were made)",
           count_lines(log, "NOTIF", want), BENCH_ROUNDS + 3);
    report(count_lines(log, "LISTENER_GONE", NULL) >= 1, "the daemon was told LISTENER_GONE when the program ended");
    report(count_lines(log, "ignored SIGTERM from pid", NULL) == 1, "the node log says the inside SIGTERM was ignored");

    concurrent_check(shim, log_path);
    bench_interleaved();

    /* Bad clients: garbage, silence, half a frame. None may stall the node. */
    int garbage = connect_unix(launch_path);
    char junk[64];
    memset(junk, 0xff, sizeof junk);
    ssize_t w = write(garbage, junk, sizeof junk);
    (void)w;
    report(closed_within(garbage, 3000), "the shim drops a launch client that sends garbage");
    close(garbage);
    int silent = connect_unix(launch_path);
    int partial = connect_unix(launch_path);
    struct ssi_hdr half = { .len = 64, .type = SSI_LAUNCH };
    w = write(partial, &half, 8);
    (void)w;
    double t_idle = now_us();
    client = launch_in_node(MODE_SIMPLE, -1);
    ok = wait_for(client, &st, 20000) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    report(ok, "a launch succeeds while a silent and a half-frame client are connected");
    int dropped = closed_within(silent, 9000) && closed_within(partial, 9000);
    report(dropped, "idle launch clients are dropped (after %.1f s)", (now_us() - t_idle) / 1e6);
    close(silent);
    close(partial);

    /* The daemon's ptrace requests, served by the shim (the tracer). */
    if (pipe2(info, O_CLOEXEC) < 0)
        return 1;
    client = launch_in_node(MODE_PTRACE, info[1]);
    close(info[1]);
    pid_t traced = -1;
    if (read(info[0], &traced, sizeof traced) != sizeof traced)
        traced = -1;
    close(info[0]);
    ok = wait_for(client, &st, 30000) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    report(ok, "the traced program's checks passed (client exit status 0x%x)", st);
    {
        char line[512] = "";
        char key[64];
        snprintf(key, sizeof key, "PTRACE-PROBE pid=%d ", traced);
        wait_log(log_path, key, 5000);
        char *at = strstr(slurp(log_path), key);
        if (at)
            snprintf(line, sizeof line, "%.*s", (int)strcspn(at, "\n"), at);
        char want[400];
        snprintf(want, sizeof want, "PTRACE-PROBE pid=%d attach=0 getregs=0 readmem=0 writemem=0 inject=0 ret=%d "
                 "givefd=0 fd=100 setregs=0 getxstate=0 xlen=", traced, traced);
        report(at && !strncmp(line, want, strlen(want)) && strstr(line, " detach=0") &&
               atoi(line + strlen(want)) > 512,
               "every ptrace request of the link is served by the shim: %s", at ? line : "(no PTRACE-PROBE line)");
    }
    {
        /* SPAWN_STUB: the traced program's pid is taken; a free one gives a stopped, fd-less child of
         * the shim that runs injected syscalls and resumes on DETACH. */
        char line[512] = "";
        char key0[64];
        wait_log(log_path, "SPAWN-STUB ", 10000);
        char *at = strstr(slurp(log_path), "SPAWN-STUB ");
        if (at)
            snprintf(line, sizeof line, "%.*s", (int)strcspn(at, "\n"), at);
        char want[400];
        int stub = traced + 4000;
        snprintf(want, sizeof want, "SPAWN-STUB taken=%d spawn=0 pid=%d state=t ppid=1 pgrp=%d sid=%d fds=0 rseq=0:0 "
                 "inject=0 ret=%d detach=0 after=S untraced-getrseq=%d", -EEXIST, stub, stub, stub, stub, -ESRCH);
        report(at && !strcmp(line, want), "SPAWN_STUB refuses a taken pid with EEXIST and starts a traced, "
               "fd-less stub child of the shim, in a session of its own, with no rseq registration at a free one: %s",
               at ? line : "(no SPAWN-STUB line)");
        /* INSTALL_FILTER: the stub runs under the node's filter with no_new_privs, nothing of the injection
         * is left in it, a second one is refused, and the shim announced its listener like a launch's. */
        snprintf(key0, sizeof key0, "INSTALL-FILTER pid=%d ", stub);
        wait_log(log_path, key0, 5000);
        at = strstr(slurp(log_path), key0);
        line[0] = 0;
        if (at)
            snprintf(line, sizeof line, "%.*s", (int)strcspn(at, "\n"), at);
        unsigned lid = 0;
        const char *l_at = at ? strstr(line, " listener=") : NULL;
        if (l_at)
            lid = (unsigned)strtoul(l_at + 10, NULL, 10);
        snprintf(want, sizeof want, "INSTALL-FILTER pid=%d filter=0 listener=%u fds=0 maps-same=1 again=%d "
                 "seccomp=2 nnp=1", stub, lid, -EBUSY);
        report(at && lid != 0 && !strcmp(line, want), "INSTALL_FILTER puts the node's filter and no_new_privs into a "
               "restore stub, leaving no fd or mapping, and refuses a second one: %s", at ? line : "(no line)");
        char launched0[128];
        snprintf(launched0, sizeof launched0, "LAUNCHED pid=%d uid=0 gid=0 listener=%u path=", stub, lid);
        char *lg = slurp(log_path);
        report(lid != 0 && strstr(lg, launched0) != NULL, "the shim announced the stub's listener to the daemon: %s",
               launched0);
        /* glibc registers rseq in every thread: GETRSEQ sees the probed program's */
        char key[64];
        snprintf(key, sizeof key, "RSEQ-PROBE pid=%d ", traced);
        at = strstr(slurp(log_path), key);
        line[0] = 0;
        if (at)
            snprintf(line, sizeof line, "%.*s", (int)strcspn(at, "\n"), at);
        char want2[128];
        snprintf(want2, sizeof want2, "RSEQ-PROBE pid=%d getrseq=0 registered=1 size=", traced);
        report(at && !strncmp(line, want2, strlen(want2)) && atoi(line + strlen(want2)) >= 32 &&
               strstr(line, " sig=0x53053053"), "GETRSEQ reports the traced program's rseq area: %s",
               at ? line : "(no RSEQ-PROBE line)");
    }

    /* A node whose daemon dies dies with all its processes. */
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return 1;
    client = launch_in_node(MODE_LONG, ready[1]);
    close(ready[1]);
    pid_t long_pid = -1;
    ok = read(ready[0], &long_pid, sizeof long_pid) == sizeof long_pid;
    report(ok, "a long-running program (pid %d in the node) is running", long_pid);
    pid_t daemon = find_daemon(shim);
    report(daemon > 0, "found the fake daemon as pid 2 of the node (host pid %d)", daemon);
    if (daemon > 0)
        kill(daemon, SIGKILL);
    int shim_st = 0;
    ok = wait_for(shim, &shim_st, 10000) == 0;
    report(ok && WIFEXITED(shim_st) && WEXITSTATUS(shim_st) == 1,
           "the shim exits (status 1) when its daemon dies (wait status 0x%x)", shim_st);
    ok = wait_for(client, &st, 10000) == 0;
    report(ok && WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGKILL,
           "the long-running program was killed with the node (client exit %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    log = slurp(log_path);
    report(strstr(log, "daemon exited (status killed by signal 9") != NULL, "the node log says why it stopped");

    {   /* A daemon that dies before linking fails a --detach start with the reason. */
        char out[PATH_MAX];
        snprintf(out, sizeof out, "%s/false.out", dir);
        pid_t f = fork();
        if (f == 0) {
            int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(fd, STDERR_FILENO);
            char *args[] = { shim_bin, "--node", "11", "--run-dir", dir, "--detach", "--", "/bin/false", NULL };
            execv(shim_bin, args);
            _exit(127);
        }
        ok = wait_for(f, &st, 10000) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 1;
        char *msg = slurp(out);
        report(ok && strstr(msg, "the daemon exited (exit code 1) before it linked"),
               "a --detach start whose daemon exits early fails with: %.*s", (int)strcspn(msg, "\n"), msg);
    }

    /* Foreground mode: SIGTERM to the parent half reaches the daemon through the node init. */
    char fg_err[PATH_MAX];
    snprintf(fg_err, sizeof fg_err, "%s/fg.out", dir);
    pid_t fg = spawn_shim(FG_NODE, 0, fg_err);
    int linked = 0;
    for (int i = 0; i < 1000 && !linked; i++) {
        char *o = slurp(fg_err);
        linked = strstr(o, "fake-daemon: node 9: linked") != NULL;
        free(o);
        if (!linked)
            usleep(10000);
    }
    report(linked, "node %d runs in the foreground (no --detach) and its daemon linked", FG_NODE);
    kill(fg, SIGTERM);
    ok = wait_for(fg, &st, 10000) == 0;
    char *out = slurp(fg_err);
    report(ok && WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(out, "stop requested") &&
           strstr(out, "daemon exited (status killed by signal 15"),
           "SIGTERM to the foreground shim stops the daemon and the node (exit %d)",
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    /* Leave nothing behind. */
    if (kill(shim, 0) == 0) {
        kill(shim, SIGKILL);
        wait_for(shim, &st, 5000);
    }
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    if (failures) {
        printf("---- node %d log:\n%s---- node %d output:\n%s----\n", NODE, slurp(log_path), FG_NODE, slurp(fg_err));
    }
    char rm[PATH_MAX + 16];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0)
        printf("INFO could not remove %s\n", dir);
    printf("%s test_shim: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
