/* ssi-shim entry point and its parent half, which runs in the host pid namespace: checks the node is
 * not already running, clears stale sockets, creates the node's pid namespace and forks the node init
 * (nodeinit.c) into it, then either waits for the node to be ready (--detach) or stays in the
 * foreground relaying SIGINT/SIGTERM and the node's exit status. Owner: the process's only thread. */
#include "shim.h"
#include "ssi_proto.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static const char usage_text[] =
    "usage: ssi-shim --node N --run-dir DIR [--detach] -- daemon-command [args...]\n"
    "  Runs node N (1..255) of the cluster: a pid namespace whose init is this shim, with the daemon\n"
    "  command as pid 2. Sockets and log live in DIR. --detach returns once the daemon has linked.\n";

static void usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "ssi-shim: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage_text);
    exit(2);
}

static volatile pid_t node_init;

/* The node init ignores nothing it gets through its signalfd; the host-side parent only relays. */
static void forward(int sig)
{
    if (node_init > 0)
        kill(node_init, sig);
}

static int answers(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void remove_stale(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (!S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "ssi-shim: %s exists and is not a socket; remove it and retry\n", path);
        exit(1);
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        fprintf(stderr, "ssi-shim: cannot remove the stale socket %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static int exit_code_of(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 1;
}

int main(int argc, char **argv)
{
    struct shim_config cfg = { 0 };
    const char *node_arg = NULL;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "--node") || !strcmp(a, "--run-dir")) {
            if (i + 1 >= argc)
                usage("%s needs a value", a);
            if (a[2] == 'n')
                node_arg = argv[++i];
            else
                cfg.run_dir = argv[++i];
        } else if (!strcmp(a, "--detach")) {
            cfg.detach = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else {
            usage("unknown argument '%s'", a);
        }
    }
    if (!node_arg)
        usage("%s", "--node is required");
    char *end;
    errno = 0;
    long node = strtol(node_arg, &end, 10);
    if (errno || end == node_arg || *end || node < 1 || node > SSI_MAX_NODE)
        usage("--node must be a number from 1 to 255, not '%s'", node_arg);
    cfg.node = (int)node;
    if (!cfg.run_dir)
        usage("%s", "--run-dir is required");
    if (i >= argc)
        usage("%s", "the daemon command is missing after --");
    cfg.daemon_argv = &argv[i];
    struct stat st;
    if (stat(cfg.run_dir, &st) < 0 || !S_ISDIR(st.st_mode))
        usage("the run directory '%s' does not exist or is not a directory", cfg.run_dir);

    char launch_path[PATH_MAX], link_path[PATH_MAX];
    shim_socket_path(launch_path, sizeof launch_path, cfg.run_dir, cfg.node, "launch");
    shim_socket_path(link_path, sizeof link_path, cfg.run_dir, cfg.node, "link");
    if (strlen(launch_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        usage("the run directory '%s' is too long for a unix socket path", cfg.run_dir);

    if (answers(launch_path)) {
        fprintf(stderr, "ssi-shim: node %d is already running (%s answers)\n", cfg.node, launch_path);
        return 1;
    }
    /* The node init holds this lock for its life (the descriptor is inherited across the fork, and
     * CLOEXEC keeps it out of the daemon): two starts racing between the check above and the bind of
     * the sockets cannot both win. */
    char log_path[PATH_MAX];
    shim_socket_path(log_path, sizeof log_path, cfg.run_dir, cfg.node, "log");
    int lock = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0) {
        fprintf(stderr, "ssi-shim: cannot open %s: %s\n", log_path, strerror(errno));
        return 1;
    }
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        fprintf(stderr, "ssi-shim: node %d is already running or starting (another ssi-shim holds %s)\n", cfg.node,
                log_path);
        return 1;
    }
    remove_stale(launch_path);
    remove_stale(link_path);

    int ready[2] = { -1, -1 };
    if (cfg.detach && pipe2(ready, O_CLOEXEC) < 0) {
        fprintf(stderr, "ssi-shim: pipe: %s\n", strerror(errno));
        return 1;
    }
    /* Held until the relay handler is in place, so a stop request that comes early is not lost. */
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, &old);
    /* Only our next child enters the new pid namespace; this half stays in the host's, and in the
     * host's mount namespace (the node init makes its own). */
    if (unshare(CLONE_NEWPID) < 0) {
        fprintf(stderr, "ssi-shim: cannot create a pid namespace for node %d: %s (run as root)\n", cfg.node,
                strerror(errno));
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "ssi-shim: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        if (ready[0] >= 0)
            close(ready[0]);
        shim_node_main(&cfg, ready[1]);
    }
    node_init = pid;
    close(lock);
    struct sigaction sa = { .sa_handler = forward };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);

    if (cfg.detach) {
        close(ready[1]);
        char msg[PATH_MAX + 512];
        size_t got = 0;
        for (;;) {
            ssize_t r = read(ready[0], msg + got, sizeof msg - 1 - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
            if (got == sizeof msg - 1)
                break;
        }
        msg[got] = 0;
        if (got > 0 && msg[0] == 'R')
            return 0;
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (got == 0) {
            fprintf(stderr, "ssi-shim: node %d failed to start: its init exited (%s %d) before the daemon "
                    "linked\n", cfg.node, WIFSIGNALED(status) ? "signal" : "exit code",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        } else {
            fprintf(stderr, "ssi-shim: node %d failed to start: %s\n", cfg.node, msg);
        }
        return 1;
    }

    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "ssi-shim: waitpid: %s\n", strerror(errno));
            return 1;
        }
    }
    return exit_code_of(status);
}
