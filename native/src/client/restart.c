/* The foreground restart (`ssi-run --restart DIR`, docs/ARCHITECTURE.md, "Foreground restart"): the launch
 * stub A brings a checkpoint image back as its own child, where launch.c would fork P, so the restored
 * process is in A's process group and the caller's session, and relay.c and job.c give the caller its
 * exit status, signals, stops and terminal exactly as for a launched program.
 *
 * A talks to the node daemon's control socket (node-N.ctl) from inside the node, so SO_PEERCRED names A
 * by its node pid and the caller's uid: RESTART_FG with stub 0 runs every check of a restart and answers
 * the image's gpid; A makes a child with that pid (clone3 set_tid: A still holds root for this one call);
 * the child closes every fd, blocks every signal and pauses; RESTART_FG with the child's pid makes the
 * daemon attach it through the shim and rebuild the process in it. A then waits for it like for P. */
#include "client.h"
#include "ctl_wire.h"
#include "ssi_stub.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#define CTL_RESTART_FG 10
#define CTL_MAX_REPLY 65536
#define STUB_READY_MS 5000

/* Connects to the daemon's control socket as the caller: in setuid mode A runs with euid 0 until its
 * clone3, and the daemon must check the restart against the caller's uid (SO_PEERCRED records the
 * effective ids of connect()). */
static int ctl_connect(const struct launch_req *req)
{
    char path[sizeof ((struct sockaddr_un *)0)->sun_path];
    int n = snprintf(path, sizeof path, "%s/node-%d.ctl", req->run_dir, req->node);
    if (n < 0 || n >= (int)sizeof path)
        die("the run directory path %s is too long for a unix socket", req->run_dir);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        die("cannot create a unix socket: %s", strerror(errno));
    if (req->keep_root && (setegid(req->rgid) < 0 || seteuid(req->ruid) < 0))
        die("cannot take the caller's identity to talk to node %d: %s", req->node, strerror(errno));
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, (size_t)n + 1);
    int rc = connect(s, (struct sockaddr *)&sa, sizeof sa);
    int err = errno;
    if (req->keep_root && (seteuid(0) < 0 || setegid(0) < 0))
        die("cannot get root back for the restore stub: %s", strerror(errno));
    if (rc < 0)
        die("cannot reach node %d's daemon at %s: %s; is the node up (`ssi nodes`)?", req->node, path,
            strerror(err));
    return s;
}

/* One RESTART_FG request (control protocol: big-endian u32 length, u16 type, UTF dir, i32 stub, i32
 * terminal fd). Returns the reply status (0, else an errno value with the daemon's message in msg); on
 * success *gpid is the image's root gpid and *ppid the pid its parent had in the image (0: unknown). */
static int ctl_restart(int s, const struct launch_req *req, int32_t stub, int32_t *gpid, int32_t *ppid, char *msg,
                       size_t cap)
{
    size_t dlen = strlen(req->restart_dir);
    if (dlen > 65535)
        die("the image path is too long");
    uint8_t out[4 + 2 + 2 + 65535 + 8];
    size_t body = 2 + 2 + dlen + 8;
    ctl_put32(out, (uint32_t)body);
    ctl_put16(out + 4, CTL_RESTART_FG);
    ctl_put16(out + 6, (uint16_t)dlen);
    memcpy(out + 8, req->restart_dir, dlen);
    ctl_put32(out + 8 + dlen, (uint32_t)stub);
    ctl_put32(out + 12 + dlen, (uint32_t)req->tty);
    uint8_t len[4];
    static uint8_t in[CTL_MAX_REPLY];
    if (ctl_write_all(s, out, 4 + body) < 0 || ctl_read_all(s, len, 4, -1) < 0)
        die("node %d's daemon closed the connection during the restart of %s; see node-%d.log in the run "
            "directory", req->node, req->restart_dir, req->node);
    uint32_t n = ctl_get32(len);
    if (n < 2 || n > sizeof in || ctl_read_all(s, in, n, -1) < 0)
        die("node %d's daemon sent a malformed reply (%u bytes) to the restart of %s", req->node, n,
            req->restart_dir);
    int status = ctl_get16(in);
    if (status) {
        size_t m = n >= 4 ? ctl_get16(in + 2) : 0;
        if (m > n - 4)
            m = n - 4;
        if (m >= cap)
            m = cap - 1;
        memcpy(msg, in + 4, m);
        msg[m] = '\0';
        return status;
    }
    if (n < 2 + 4 + 8 + 4)
        die("node %d's daemon sent a short reply to the restart of %s", req->node, req->restart_dir);
    *gpid = (int32_t)ctl_get32(in + 2);
    *ppid = (int32_t)ctl_get32(in + 2 + 4 + 8);
    return 0;
}

__attribute__((noreturn)) static void refused(const struct launch_req *req, const char *msg)
{
    die("%s; nothing was started", msg);
}

/* The child: raw syscalls only, as the shim's SPAWN_STUB child (stub.c), but no setsid: it stays in
 * A's process group and the caller's session. Every signal is blocked until the restore sets the
 * image's mask, so none runs A's handlers in it; SIGKILL still ends it. Closing every fd closes its copy
 * of the sync pipe, which tells A it holds nothing of A's any more. */
static void __attribute__((noreturn)) stub_child(void)
{
    uint64_t all = ~0ULL;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof all);
    syscall(SYS_close_range, 0U, ~0U, 0U);
    for (;;)
        syscall(SYS_pause);
}

/* A child with pid gpid that waits, fd-less, to be rebuilt; -errno on failure. */
static pid_t make_stub(int32_t gpid)
{
    pid_t r = ssi_clone_stub(gpid, stub_child, STUB_READY_MS);
    if (r == -ETIMEDOUT)
        waitpid(gpid, NULL, 0); /* killed: A is its only reaper */
    return r;
}

void restart_check(const struct launch_req *req, int32_t *gpid, int32_t *ppid)
{
    int ctl = ctl_connect(req);
    char msg[4096];
    if (ctl_restart(ctl, req, 0, gpid, ppid, msg, sizeof msg))
        refused(req, msg);
    close(ctl);
}

pid_t restart_fork(pid_t ppid)
{
    if (ppid > 1) {
        long r = ssi_fork_as(ppid);
        if (r >= 0)
            return (pid_t)r;
        /* taken (EEXIST) or out of the namespace's range: A gets any pid; the daemon's log says so */
    }
    return fork();
}

void restart_stub(const struct launch_req *req)
{
    /* The group the restored process joins (a process whose group or session leader was outside the
     * image, the usual case: ssi-run's A led it), and that gets the terminal, as in launch_stub. */
    if (setpgid(0, 0) < 0)
        die("cannot create the process group for the restart of %s: %s", req->restart_dir, strerror(errno));
    if (req->tty_give)
        tty_set_foreground(req->tty, getpid());
    relay_take_parent_death();
    close(req->sock);
    close(req->shim_pidfd);

    int ctl = ctl_connect(req);
    char msg[4096];
    int32_t gpid = req->restart_gpid, ppid = 0;
    pid_t stub = make_stub(gpid);
    if (req->keep_root)
        drop_privileges(req->ruid, req->rgid);
    if (stub == -EEXIST) {
        snprintf(msg, sizeof msg, "restart of %s on node %d failed: gpid %d is taken on node %d", req->restart_dir,
                 req->node, (int)gpid, req->node);
        refused(req, msg);
    }
    if (stub < 0) {
        snprintf(msg, sizeof msg, "restart of %s on node %d failed: cannot make the restore stub with pid %d: %s",
                 req->restart_dir, req->node, (int)gpid, strerror(-stub));
        refused(req, msg);
    }
    int32_t got = 0;
    if (ctl_restart(ctl, req, stub, &got, &ppid, msg, sizeof msg)) {
        kill(stub, SIGKILL);
        while (waitpid(stub, NULL, 0) < 0 && errno == EINTR) {
        }
        refused(req, msg);
    }
    close(ctl);
    if (req->tty >= 0)
        close(req->tty);
    relay_set_child(stub);
    /* As in launch_stub: only the program holds its stdin and stdout. */
    close(STDIN_FILENO);
    close(STDOUT_FILENO);
    relay_exit(relay_wait(stub, 0), 0);
}
