/* ssi-run: runs an unmodified program on a node of the SSI cluster (docs/ARCHITECTURE.md, "Processes of
 * a node"). This file is the client half that runs in the caller's pid namespace: options, the
 * connection to the node's launch socket (starting the embedded one-node cluster on first use), entry
 * into the node's namespaces, and the fork of the launch stub A (launch.c), whose end it relays to
 * the caller (relay.c) while it lends the terminal to the program's process group (job.c); with
 * --restart, A restores a checkpoint image as its child instead (restart.c). It runs on
 * every program start, so it does no work the launch does not need: no JVM, no config parsing, a few
 * dozen syscalls. */
#include "client.h"
#include "ssi_proto.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#ifndef SSI_VERSION
#define SSI_VERSION "0.1.0-SNAPSHOT"   /* the Maven version of the project (pom.xml) */
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77                /* Linux 6.5; older libc headers lack it */
#endif

/* How long to wait for a node's launch socket after `ssi cluster start` returned, in case it returns
 * as soon as the node is forked. */
#define START_WAIT_MS 10000
/* After A died of SIGKILL: how long the shim may take to finish exiting when the node is going down
 * (it exits only once we have reaped A, the last of its namespace's processes). */
#define SHIM_EXIT_WAIT_MS 500

struct opts {
    int node;
    const char *run_dir;
    char **argv;
    int argc;
    const char *restart_dir;   /* --restart DIR */
};

static void vsay(const char *fmt, va_list ap)
{
    char msg[PATH_MAX + 512];
    int n = snprintf(msg, sizeof msg, "ssi-run: ");
    int m = vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    n = (m < 0 || n + m > (int)sizeof msg - 2) ? (int)sizeof msg - 2 : n + m;
    msg[n++] = '\n';
    (void)!write(STDERR_FILENO, msg, (size_t)n);
}

void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
}

void die(const char *fmt, ...)
{
    job_restore_tty();   /* a no-op but in the client, after it gave the terminal away */
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    _exit(SSI_RUN_FAILED);
}

static void usage(void)
{
    static const char text[] =
        "Usage: ssi-run [--node N] [--run-dir DIR] [--] program [args...]\n"
        "       ssi-run [--node N] [--run-dir DIR] --restart IMAGE\n"
        "Runs an unmodified program on node N of the SSI cluster, in this terminal, with this\n"
        "environment, working directory, umask and signal state, as if run directly.\n"
        "\n"
        "  --node N        the node to run on, 1..255 (default: $SSI_NODE, else 1)\n"
        "  --run-dir DIR   the cluster's run directory (default: $SSI_RUN_DIR, else /run/ssi)\n"
        "  --restart IMAGE restart the checkpoint image IMAGE on node N in this terminal, as if its\n"
        "                  program had been started here (what `ssi restart IMAGE` runs)\n"
        "  --help          print this help and exit\n"
        "  --version       print the version and exit\n"
        "\n"
        "If node 1 is not running and DIR holds no cluster.conf, a one-node cluster is started\n"
        "first (`ssi cluster start --nodes 1`).\n"
        "Needs root, or ssi-run installed setuid root (it drops privilege before the program runs).\n"
        "\n"
        "Exit status: the program's (128+N when it died of signal N); 126 the program cannot be\n"
        "executed; 127 not found; 125 ssi-run itself failed (or the restart was refused: nothing\n"
        "was started); 137 the node stopped under the program.\n";
    (void)!write(STDOUT_FILENO, text, sizeof text - 1);
    _exit(0);
}

static int parse_node(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (errno || end == s || *end || n < 1 || n > SSI_MAX_NODE)
        die("%s '%s' is not a node id (1..%d)", what, s, SSI_MAX_NODE);
    return (int)n;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    const char *env_dir = getenv("SSI_RUN_DIR");
    o->run_dir = env_dir && *env_dir ? env_dir : "/run/ssi";
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-' || !a[1])
            break;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
        } else if (!strcmp(a, "--version")) {
            static const char v[] = "ssi-run " SSI_VERSION "\n";
            (void)!write(STDOUT_FILENO, v, sizeof v - 1);
            _exit(0);
        } else if (!strcmp(a, "--node") || !strcmp(a, "--run-dir") || !strcmp(a, "--restart")) {
            if (i + 1 >= argc)
                die("%s needs a value; run `ssi-run --help`", a);
            if (a[2] == 'n')
                o->node = parse_node(argv[++i], "--node");
            else if (a[3] == 'u')
                o->run_dir = argv[++i];
            else
                o->restart_dir = argv[++i];
        } else if (!strncmp(a, "--restart=", 10)) {
            o->restart_dir = a + 10;
        } else if (!strncmp(a, "--node=", 7)) {
            o->node = parse_node(a + 7, "--node");
        } else if (!strncmp(a, "--run-dir=", 10)) {
            o->run_dir = a + 10;
        } else {
            die("unknown option '%s'; run `ssi-run --help` (put `--` before a program whose name "
                "starts with '-')", a);
        }
    }
    if (!o->node) {
        const char *env_node = getenv("SSI_NODE");
        o->node = env_node && *env_node ? parse_node(env_node, "SSI_NODE") : 1;
    }
    if (o->restart_dir) {
        if (i < argc)
            die("--restart takes no program ('%s' given)", argv[i]);
        if (!*o->restart_dir)
            die("--restart needs an image directory");
        return;
    }
    if (i >= argc)
        die("no program given; usage: ssi-run [--node N] [--run-dir DIR] [--] program [args...]");
    o->argv = argv + i;
    o->argc = argc - i;
}

static int try_connect(const char *path)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        die("cannot create a unix socket: %s", strerror(errno));
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0)
        return s;
    int err = errno;
    close(s);
    return -err;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* SSI_HOME as the ./ssi-run script exports it, else from where this binary sits in the tree. */
static void find_ssi_home(char *out, size_t cap)
{
    const char *env = getenv("SSI_HOME");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    if (n < 0)
        die("cannot read /proc/self/exe to find SSI_HOME (%s); set SSI_HOME to the repository", strerror(errno));
    out[n] = '\0';
    /* SSI_HOME/native/target/bin/ssi-run */
    for (int up = 0; up < 4; up++) {
        char *slash = strrchr(out, '/');
        if (!slash || slash == out)
            die("cannot find SSI_HOME from %s; set SSI_HOME to the repository", out);
        *slash = '\0';
    }
}

/* Runs `$SSI_HOME/ssi cluster start --nodes 1` and waits for it. Its output is shown only if it fails:
 * on success the program's stderr must stay the program's. Returns its wait status. */
static int start_default_cluster(const struct opts *o, char *cmd, size_t cap)
{
    char home[PATH_MAX];
    find_ssi_home(home, sizeof home);
    snprintf(cmd, cap, "%s/ssi", home);
    /* a memfd, not a pipe: we wait for the command, not for EOF, and a daemon it leaves behind may
     * keep the descriptor */
    int out = memfd_create("ssi-cluster-start", MFD_CLOEXEC);
    if (out < 0)
        out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0)
        die("cannot fork to start the cluster: %s", strerror(errno));
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0 && in != STDIN_FILENO)
            dup2(in, STDIN_FILENO);
        if (out >= 0) {
            dup2(out, STDOUT_FILENO);
            dup2(out, STDERR_FILENO);
        }
        setenv("SSI_HOME", home, 1);
        setenv("SSI_RUN_DIR", o->run_dir, 1);
        execl(cmd, cmd, "cluster", "start", "--nodes", "1", (char *)NULL);
        fprintf(stderr, "cannot execute %s: %s\n", cmd, strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            die("lost track of `%s cluster start`: %s", cmd, strerror(errno));
    }
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) && out >= 0) {
        char buf[4096];
        ssize_t n;
        off_t off = 0;
        while ((n = pread(out, buf, sizeof buf, off)) > 0) {
            (void)!write(STDERR_FILENO, buf, (size_t)n);
            off += n;
        }
    }
    if (out >= 0)
        close(out);
    return st;
}

/* Connects to the node's launch socket; on node 1 with no cluster configured, starts the default
 * one-node cluster first (only a real root may: a setuid ssi-run must not run $SSI_HOME's scripts). */
static int connect_node(const struct opts *o, const char *path, int may_start)
{
    int s = try_connect(path);
    if (s >= 0)
        return s;
    int err = -s;
    if ((err == ENOENT || err == ECONNREFUSED) && o->node == 1 && may_start) {
        char conf[PATH_MAX];
        snprintf(conf, sizeof conf, "%s/cluster.conf", o->run_dir);
        if (access(conf, F_OK) < 0 && errno == ENOENT) {
            char cmd[PATH_MAX + 8];
            int st = start_default_cluster(o, cmd, sizeof cmd);
            int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
            /* On failure, one more try: a concurrent ssi-run may have won the race to start it. */
            for (long waited = 0;; waited += 20) {
                s = try_connect(path);
                if (s >= 0)
                    return s;
                err = -s;
                if (!ok || waited >= START_WAIT_MS || (err != ENOENT && err != ECONNREFUSED))
                    break;
                sleep_ms(20);
            }
            if (!ok) {
                if (WIFEXITED(st))
                    die("could not start the default one-node cluster: `%s cluster start --nodes 1` "
                        "exited with status %d (its output is above)", cmd, WEXITSTATUS(st));
                die("could not start the default one-node cluster: `%s cluster start --nodes 1` died "
                    "of signal %d (its output is above)", cmd, WTERMSIG(st));
            }
            die("`%s cluster start --nodes 1` succeeded but %s did not appear within %d s; see %s/node-1.log",
                cmd, path, START_WAIT_MS / 1000, o->run_dir);
        }
    }
    if (err == ENOENT)
        die("node %d is not running (no %s); start the cluster with `ssi cluster start`", o->node, path);
    if (err == ECONNREFUSED)
        die("node %d is not running (%s refuses connections); start the cluster with `ssi cluster start`",
            o->node, path);
    die("cannot connect to node %d at %s: %s", o->node, path, strerror(err));
}

/* A setuid-root ssi-run has had its environment trimmed by glibc (LD_LIBRARY_PATH, TMPDIR, ...), yet
 * the program must get the caller's. The kernel keeps the strings as exec'd; read them while we are
 * still root (/proc/self is root's while we are not dumpable). */
static char **caller_environment(void)
{
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("cannot read /proc/self/environ: %s", strerror(errno));
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            die("out of memory reading the environment");
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("cannot read /proc/self/environ: %s", strerror(errno));
        if (n == 0)
            break;
        len += (size_t)n;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[len] = '\0';
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += buf[i] == '\0';
    char **env = malloc((count + 2) * sizeof *env);
    if (!env)
        die("out of memory reading the environment");
    size_t k = 0;
    for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
        env[k++] = buf + i;
    env[k] = NULL;
    return env;
}

void drop_privileges(uid_t uid, gid_t gid)
{
    if (setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
        die("cannot drop root privilege: %s", strerror(errno));
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0 || r != uid || e != uid || s != uid
        || rg != gid || eg != gid || sg != gid)
        die("root privilege is still held after dropping it; refusing to run anything");
}

/* Enters the shim's net, pid (for our children) and mount namespaces in one setns on its pidfd: it
 * cannot pick up a recycled pid, and the kernel switches the mount namespace after the others. The
 * mount switch resets cwd and root to the namespace's root, so we go back to the caller's directory
 * by path (same tree in the node), or by a handle taken before if the path does not resolve there. */
static void enter_node(const struct opts *o, int pidfd, int drop, uid_t ruid, gid_t rgid)
{
    char cwd[PATH_MAX];
    int have_cwd = getcwd(cwd, sizeof cwd) != NULL;
    int cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (setns(pidfd, CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS) < 0) {
        if (errno == ESRCH)
            die("node %d stopped while ssi-run was connecting; start the cluster with `ssi cluster start`",
                o->node);
        die("cannot enter node %d's namespaces: %s", o->node, strerror(errno));
    }
    if (drop)
        drop_privileges(ruid, rgid);
    if (!(have_cwd && chdir(cwd) == 0) && !(cwd_fd >= 0 && fchdir(cwd_fd) == 0))
        die("cannot enter the working directory %s on node %d: %s", have_cwd ? cwd : "(unknown)", o->node,
            strerror(errno));
    if (cwd_fd >= 0)
        close(cwd_fd);
}

static int shim_gone(int pidfd)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    int r;
    while ((r = poll(&p, 1, SHIM_EXIT_WAIT_MS)) < 0 && errno == EINTR) {
    }
    return r > 0 && (p.revents & (POLLIN | POLLHUP));
}

/* A restart's checks, in a child inside the node (the daemon takes RESTART_FG only from there): the
 * image's gpid into req, the pid of its root's parent into *ppid; a refusal ends us as it ended the child. */
static void restart_checked(struct launch_req *req, int32_t *ppid)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        die("cannot create a pipe: %s", strerror(errno));
    pid_t h = fork();
    if (h < 0)
        die("cannot fork: %s", strerror(errno));
    if (h == 0) {
        close(p[0]);
        int32_t ids[2] = { 0, 0 };
        restart_check(req, &ids[0], &ids[1]);
        _exit(write(p[1], ids, sizeof ids) == (ssize_t)sizeof ids ? 0 : SSI_RUN_FAILED);
    }
    close(p[1]);
    int32_t ids[2];
    ssize_t n;
    do
        n = read(p[0], ids, sizeof ids);
    while (n < 0 && errno == EINTR);
    close(p[0]);
    int st;
    while (waitpid(h, &st, 0) < 0 && errno == EINTR) {
    }
    if (n != (ssize_t)sizeof ids || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        _exit(WIFEXITED(st) && WEXITSTATUS(st) ? WEXITSTATUS(st) : SSI_RUN_FAILED); /* it said why */
    req->restart_gpid = ids[0];
    *ppid = ids[1];
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_args(argc, argv, &o);

    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    getresuid(&ruid, &euid, &suid);
    getresgid(&rgid, &egid, &sgid);
    if (euid != 0) {
        char self[PATH_MAX] = "ssi-run";
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0)
            self[n] = '\0';
        die("entering a node's namespaces needs root: run ssi-run as root, or install it setuid root "
            "(chown root:root %s && chmod u+s %s)", self, self);
    }
    int setuid_mode = ruid != 0;
    char **envp = setuid_mode && getauxval(AT_SECURE) ? caller_environment() : NULL;

    char path[sizeof ((struct sockaddr_un *)0)->sun_path];
    int plen = snprintf(path, sizeof path, "%s/node-%d.launch", o.run_dir, o.node);
    if (plen < 0 || plen >= (int)sizeof path)
        die("the run directory path %s is too long for a unix socket (max %zu bytes); use a shorter "
            "--run-dir", o.run_dir, sizeof path - 16);
    /* The image path as the caller means it, before the node's mount namespace resets the cwd. */
    char image[PATH_MAX];
    if (o.restart_dir && o.restart_dir[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            die("cannot read the working directory to find %s: %s", o.restart_dir, strerror(errno));
        if (snprintf(image, sizeof image, "%s/%s", cwd, o.restart_dir) >= (int)sizeof image)
            die("the image path %s/%s is too long", cwd, o.restart_dir);
        o.restart_dir = image;
    }
    /* a restart never starts a cluster: there would be nothing to restart on */
    int sock = connect_node(&o, path, !setuid_mode && !o.restart_dir);

    struct ucred peer;
    socklen_t sl = sizeof peer;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &sl) < 0)
        die("cannot identify the process behind %s: %s", path, strerror(errno));
    if (peer.uid != 0)
        die("%s is served by uid %u, not root; refusing to enter its namespaces (is %s the cluster's "
            "run directory?)", path, (unsigned)peer.uid, o.run_dir);
    if (peer.pid <= 0)
        die("the shim of node %d lives outside this pid namespace; run ssi-run in the pid namespace "
            "the cluster was started from", o.node);
    int pidfd;
    sl = sizeof pidfd;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &sl) < 0)
        pidfd = (int)syscall(SYS_pidfd_open, peer.pid, 0);   /* kernels before 6.5 */
    if (pidfd < 0)
        die("node %d stopped while ssi-run was connecting (%s); start the cluster with `ssi cluster "
            "start`", o.node, strerror(errno));

    /* before the node's mount namespace hides the caller's /dev */
    int tty = job_find_tty();
    /* A restart's A needs root for its clone3(set_tid) of the image's gpid; it drops right after. */
    int keep_root = setuid_mode && o.restart_dir;
    enter_node(&o, pidfd, setuid_mode && !keep_root, ruid, rgid);

    struct launch_req req = {
        .node = o.node, .sock = sock, .shim_pidfd = pidfd, .argv = o.argv, .argc = o.argc, .envp = envp,
        .tty = tty, .tty_give = job_give_at_start(), .restart_dir = o.restart_dir, .run_dir = o.run_dir,
        .keep_root = keep_root, .ruid = ruid, .rgid = rgid,
    };
    const char *what = o.restart_dir ? o.restart_dir : o.argv[0];
    int32_t ppid = 0;
    if (o.restart_dir)
        restart_checked(&req, &ppid);
    relay_take_signals();
    pid_t a = o.restart_dir ? restart_fork(ppid) : fork();
    if (a < 0)
        die("cannot fork: %s", strerror(errno));
    if (a == 0) {
        if (o.restart_dir)
            restart_stub(&req);
        launch_stub(&req);
    }
    if (keep_root)
        drop_privileges(ruid, rgid);
    job_start(a, req.tty_give);
    relay_set_child(a);
    close(sock);
    /* As in A: the program alone holds its stdin and stdout (stderr stays for our messages). A caller
     * that started us with 0 or 1 closed may have had the pidfd land there. */
    for (int fd = STDIN_FILENO; fd <= STDOUT_FILENO; fd++) {
        if (fd != pidfd)
            close(fd);
    }

    int st = relay_wait(a, 1);
    int had_tty = job_restore_tty();
    /* The kernel kills a node's processes with SIGKILL when its shim (pid 1 there) dies. */
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && shim_gone(pidfd)) {
        say("node %d stopped while %s was running", o.node, what);
        _exit(137);
    }
    /* Ctrl-C and Ctrl-\ natively signal the caller's whole foreground job, which the program's group
     * replaced on the terminal: a program that died of one while holding the terminal passes it on to
     * our group, so that a non-interactive caller (a script's loop, make) ends as it would natively. */
    relay_exit(st, had_tty && WIFSIGNALED(st) && (WTERMSIG(st) == SIGINT || WTERMSIG(st) == SIGQUIT));
}
