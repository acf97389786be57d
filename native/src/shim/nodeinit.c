/* The node init: pid 1 of a node's pid namespace (docs/ARCHITECTURE.md, "Processes of a node").
 * Sets the node up (session, private /proc, pid range, sockets, the daemon as pid 2), then runs the one
 * epoll loop that reaps orphans, keeps the pid allocation cursor inside the node's range, and feeds
 * launch.c, link.c and notify.c. Owner: the shim's main thread, which is also the ptrace tracer
 * (ptrace is per tracer thread), so nothing here may ever be done from another thread. The other
 * threads are the listeners' responders (notify.c); they block every signal, so the signalfd below
 * gets them all. shim_log is the one function here they may call. */
#include "shim.h"
#include "ssi_proto.h"
#include "ptrace_ops.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>

/* The pid cursor may run this close to the top of the range before the watchdog rewinds it: far more
 * forks than two cores can make in one 50 ms tick. */
#define PID_HEADROOM 512
#define TICK_MS 50

struct shim_state shim_state = { .epfd = -1, .ready_fd = -1 };

static int sig_fd = -1, tick_fd = -1, ns_last_pid_fd = -1;
static int stop_requests;
static struct { int fd; enum shim_src_kind kind; } paused[2];
static int npaused;

/* Any thread: formats on the stack and writes once. */
void shim_log(const char *fmt, ...)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "ssi-shim: node %d: ", shim_state.node);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* One write per line: the log file is shared with the daemon (O_APPEND). */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

static int set_ns_last_pid(long v);
static int range_armed;

void shim_node_linked(void)
{
    /* The pid cursor enters the node's range only now, not right after the daemon's fork: the JVM
     * starts most of its threads before it links, and those must stay node-internal (below 1 << 14) as
     * docs/ARCHITECTURE.md says. Nothing can be launched before this point (GO refuses), so no cluster
     * process can get a pid outside the range. */
    if (!range_armed) {
        int rc = set_ns_last_pid(shim_state.pid_base - 1);
        if (rc < 0)
            shim_log("cannot set ns_last_pid: %s; cluster pids will not be in the node's range", strerror(-rc));
        range_armed = 1;
    }
    if (shim_state.ready_fd < 0)
        return;
    ssize_t w = write(shim_state.ready_fd, "R", 1);
    (void)w;
    close(shim_state.ready_fd);
    shim_state.ready_fd = -1;
}

/* Startup failed, or the node ends before it was ever ready: the --detach parent prints why. */
static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    shim_log("%s", msg);
    if (shim_state.ready_fd >= 0) {
        ssize_t w = write(shim_state.ready_fd, msg, strlen(msg));
        (void)w;
    }
    exit(1);
}

uint64_t shim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void shim_socket_path(char *out, size_t cap, const char *run_dir, int node, const char *suffix)
{
    snprintf(out, cap, "%s/node-%d.%s", run_dir, node, suffix);
}

int shim_bind_unix(const char *path, mode_t mode, int passcred)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof a.sun_path)
        return -ENAMETOOLONG;
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
        goto fail;
    /* Created with the final mode: the link socket is never connectable by others, not even briefly. */
    mode_t old = umask(~mode & 0777);
    int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    umask(old);
    if (rc < 0 || chmod(path, mode) < 0 || listen(fd, 64) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

static int write_sysctl(const char *path, long value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld", value);
    int rc = write(fd, buf, (size_t)n) == n ? 0 : -errno;
    close(fd);
    return rc;
}

static void describe_status(char *out, size_t cap, int st)
{
    if (WIFEXITED(st))
        snprintf(out, cap, "exit code %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(out, cap, "killed by signal %d, %s", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(out, cap, "wait status 0x%x", st);
}

void shim_pause_accept(int fd, enum shim_src_kind kind)
{
    for (int i = 0; i < npaused; i++)
        if (paused[i].fd == fd)
            return;
    if (npaused == (int)(sizeof paused / sizeof paused[0]))
        return;
    shim_log("out of file descriptors: not accepting connections until the next tick");
    struct epoll_event ev = { .events = 0, .data.u64 = SHIM_EV(kind, 0) };
    epoll_ctl(shim_state.epfd, EPOLL_CTL_MOD, fd, &ev);
    paused[npaused].fd = fd;
    paused[npaused].kind = kind;
    npaused++;
}

static void resume_accepts(void)
{
    for (int i = 0; i < npaused; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SHIM_EV(paused[i].kind, 0) };
        epoll_ctl(shim_state.epfd, EPOLL_CTL_MOD, paused[i].fd, &ev);
    }
    npaused = 0;
}

/* ---- the pid range ---- */

static long read_ns_last_pid(void)
{
    char buf[32];
    ssize_t r = pread(ns_last_pid_fd, buf, sizeof buf - 1, 0);
    if (r <= 0)
        return -1;
    buf[r] = 0;
    return strtol(buf, NULL, 10);
}

static int set_ns_last_pid(long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld", v);
    return pwrite(ns_last_pid_fd, buf, (size_t)n, 0) == n ? 0 : -errno;
}

/* Keeps the kernel's allocation cursor in [base, limit - headroom): near the top the kernel would wrap
 * to 300, below the node's range, so the cursor is rewound to the bottom of the range first. */
static void pid_watchdog(void)
{
    static int warned;
    if (!range_armed)
        return;
    shim_refresh_internal_tids();
    long last = read_ns_last_pid();
    if (last < 0) {
        if (!warned++)
            shim_log("cannot read ns_last_pid: %s (logged once)", strerror(errno));
        return;
    }
    if (last >= shim_state.pid_limit - PID_HEADROOM || last < shim_state.pid_base - 1) {
        int rc = set_ns_last_pid(shim_state.pid_base - 1);
        if (rc < 0 && !warned++)
            shim_log("cannot rewind ns_last_pid: %s (logged once)", strerror(-rc));
    }
}

/* ---- children and signals ---- */

static void daemon_exited(int st)
{
    char how[96];
    describe_status(how, sizeof how, st);
    /* Exiting as pid 1 makes the kernel kill every process of the node: a dead node's processes die
     * rather than hang on traps nobody will answer. */
    shim_log("daemon exited (status %s); stopping the node", how);
    if (shim_state.ready_fd >= 0) {
        char msg[PATH_MAX + 160];
        int n = snprintf(msg, sizeof msg, "the daemon exited (%s) before it linked; see %s/node-%d.log", how,
                         shim_state.run_dir, shim_state.node);
        ssize_t w = write(shim_state.ready_fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)w;
    }
    exit(1);
}

static void reap(void)
{
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG | __WALL);
        if (p <= 0)
            return;
        /* A tracee's stop (or death) belongs to whichever pt_* call waits for it next. */
        if (pt_is_traced(p)) {
            pt_note_wait_status(p, st);
            continue;
        }
        if (p == shim_state.daemon_pid && (WIFEXITED(st) || WIFSIGNALED(st)))
            daemon_exited(st);
    }
}

static void on_signals(void)
{
    struct signalfd_siginfo si;
    int stop = 0;
    while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo != SIGTERM && si.ssi_signo != SIGINT)
            continue;
        /* Only the host (whose pids we cannot see: 0) and the daemon may stop the node; a root process
         * of the node must not be able to take the whole node down with kill(1, SIGTERM). */
        if (si.ssi_pid != 0 && (pid_t)si.ssi_pid != shim_state.daemon_pid) {
            shim_log("ignored %s from pid %u of the node: only the host or the daemon may stop the node",
                     si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT", si.ssi_pid);
            continue;
        }
        stop = 1;
    }
    reap();
    if (stop && shim_state.daemon_pid > 0) {
        /* The daemon shuts the node down; a second request means it did not, so it is killed. */
        int sig = ++stop_requests == 1 ? SIGTERM : SIGKILL;
        shim_log("stop requested: sending %s to the daemon (pid %d)", sig == SIGTERM ? "SIGTERM" : "SIGKILL",
                 (int)shim_state.daemon_pid);
        kill(shim_state.daemon_pid, sig);
    }
}

static void on_tick(void)
{
    uint64_t expirations;
    ssize_t r = read(tick_fd, &expirations, sizeof expirations);
    (void)r;
    pid_watchdog();
    shim_launch_sweep(shim_now_ms());
    resume_accepts();
}

static void no_op(int sig) { (void)sig; }

static void watch(int fd, enum shim_src_kind kind)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SHIM_EV(kind, 0) };
    if (epoll_ctl(shim_state.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

static pid_t start_daemon(char **argv)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL); /* ignored dispositions survive exec */
    signal(SIGHUP, SIG_DFL);
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0 && nul != STDIN_FILENO) {
        dup2(nul, STDIN_FILENO);
        close(nul);
    }
    execvp(argv[0], argv);
    shim_log("cannot run the daemon command %s: %s", argv[0], strerror(errno));
    _exit(127);
}

void shim_node_main(const struct shim_config *cfg, int ready_fd)
{
    shim_state.node = cfg->node;
    shim_state.pid_base = cfg->node << SSI_PID_SHIFT;
    shim_state.pid_limit = (cfg->node + 1) << SSI_PID_SHIFT;
    shim_state.run_dir = cfg->run_dir;
    shim_state.ready_fd = ready_fd;
    char path[PATH_MAX];

    if (getpid() != 1)
        die("the node init must be pid 1 of a new pid namespace (it is pid %d)", (int)getpid());
    setsid();
    if (cfg->detach) {
        shim_socket_path(path, sizeof path, cfg->run_dir, cfg->node, "log");
        int log = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (log < 0)
            die("cannot open the log %s: %s", path, strerror(errno));
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nul < 0)
            die("cannot open /dev/null: %s", strerror(errno));
        dup2(nul, STDIN_FILENO);
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        close(nul);
        close(log);
    }

    /* Signals arrive through the signalfd only. The no-op handlers matter: the kernel drops a signal
     * whose disposition is SIG_DFL when it is sent to a namespace's init. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigaction sa = { .sa_handler = no_op };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0)
        die("signalfd: %s", strerror(errno));

    /* A mount namespace whose /proc shows this pid namespace; MS_SLAVE so the host's later mounts
     * still reach the node while nothing of ours leaks back. */
    if (unshare(CLONE_NEWNS) < 0)
        die("cannot create the node's mount namespace: %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
        die("cannot make / a slave mount: %s", strerror(errno));
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        die("cannot mount /proc for the node: %s", strerror(errno));
    int rc = write_sysctl("/proc/sys/kernel/pid_max", shim_state.pid_limit);
    if (rc < 0)
        die("cannot set the node's pid_max to %d: %s (needs Linux >= 6.14: per-namespace pid_max)",
            shim_state.pid_limit, strerror(-rc));
    ns_last_pid_fd = open("/proc/sys/kernel/ns_last_pid", O_RDWR | O_CLOEXEC);
    if (ns_last_pid_fd < 0)
        die("cannot open ns_last_pid: %s", strerror(errno));
    rc = shim_notify_check_abi();
    if (rc < 0)
        die("this kernel's seccomp notification ABI is not the one ssi-shim was built for: %s", strerror(-rc));

    shim_state.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (shim_state.epfd < 0)
        die("epoll_create1: %s", strerror(errno));
    if ((rc = shim_notify_open()) < 0)
        die("cannot create the trap hand-over eventfd: %s", strerror(-rc));
    shim_socket_path(path, sizeof path, cfg->run_dir, cfg->node, "launch");
    if ((rc = shim_launch_open(path)) < 0)
        die("cannot listen on %s: %s", path, strerror(-rc));
    shim_socket_path(path, sizeof path, cfg->run_dir, cfg->node, "link");
    if ((rc = shim_link_open(path)) < 0)
        die("cannot listen on %s: %s", path, strerror(-rc));

    shim_state.daemon_pid = start_daemon(cfg->daemon_argv);
    if (shim_state.daemon_pid < 0)
        die("cannot fork the daemon: %s", strerror(errno));
    /* One listener fd per launched program: take the whole hard limit (no privilege needed), after
     * the fork so the daemon keeps the limits it was given. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    /* Checked now so a node that could not keep its range fails at start, not at its first launch;
     * the cursor itself moves into the range when the daemon links (shim_node_linked). */
    long cursor = read_ns_last_pid();
    if (cursor < 0)
        die("cannot read ns_last_pid: %s", strerror(errno));
    if ((rc = set_ns_last_pid(cursor)) < 0)
        die("cannot write ns_last_pid: %s", strerror(-rc));

    tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tick_fd < 0)
        die("timerfd_create: %s", strerror(errno));
    struct itimerspec its = { .it_interval = { 0, TICK_MS * 1000000L }, .it_value = { 0, TICK_MS * 1000000L } };
    timerfd_settime(tick_fd, 0, &its, NULL);
    watch(sig_fd, SHIM_SRC_SIGNALS);
    watch(tick_fd, SHIM_SRC_TICK);
    shim_log("node init started: cluster pids [%d, %d), daemon pid %d", shim_state.pid_base,
             shim_state.pid_limit, (int)shim_state.daemon_pid);

    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(shim_state.epfd, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            uint32_t kind = (uint32_t)(evs[i].data.u64 >> 32), low = (uint32_t)evs[i].data.u64;
            switch (kind) {
            case SHIM_SRC_NOTIFY:
                shim_notify_event();
                break;
            case SHIM_SRC_SIGNALS:
                on_signals();
                break;
            case SHIM_SRC_TICK:
                on_tick();
                break;
            case SHIM_SRC_LAUNCH_LISTEN:
                shim_launch_accept();
                break;
            case SHIM_SRC_LAUNCH_CONN:
                shim_launch_event(low, evs[i].events);
                break;
            case SHIM_SRC_LINK_LISTEN:
                shim_link_accept();
                break;
            case SHIM_SRC_LINK:
                shim_link_event(low, evs[i].events);
                break;
            }
        }
    }
}
