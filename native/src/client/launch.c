/* The launch stub A and the program's process P (docs/ARCHITECTURE.md, "Launch protocol"). Both run
 * inside the node's pid, mount and net namespaces, in the caller's session and in a process group of
 * their own that A creates (job.c). A only forks P and relays (relay.c). P installs the seccomp filter
 * that traps the syscalls of syscalls.tsv, hands the listener to the shim, waits for GO and execs the
 * program, reporting exec failures with the shell's words and statuses (127 not found, 126 not
 * executable). */
#include "client.h"
#include "ssi_filter.h"
#include "ssi_proto.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* The shell's command search, done before the filter exists: the first regular file with execute
 * permission in $PATH, else the first non-directory found (exec then fails with EACCES, as in bash).
 * execvp would instead try execve on every candidate, and execve may one day be trapped, costing a
 * round trip to the daemon per PATH entry. Returns NULL when nothing matches. */
static const char *find_program(const char *name, char *found, size_t cap)
{
    if (strchr(name, '/'))
        return name;
    if (!*name)
        return NULL;
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";   /* what glibc's execvp searches when PATH is unset */
    size_t nlen = strlen(name);
    char cand[PATH_MAX];
    int have_fallback = 0;
    for (const char *p = path;; ) {
        const char *end = strchrnul(p, ':');
        size_t dlen = (size_t)(end - p);
        /* an empty entry is the current directory; "./" keeps the result a path */
        const char *dir = dlen ? p : ".";
        if (!dlen)
            dlen = 1;
        struct stat st;
        if (dlen + 1 + nlen < sizeof cand) {
            memcpy(cand, dir, dlen);
            cand[dlen] = '/';
            memcpy(cand + dlen + 1, name, nlen + 1);
            if (stat(cand, &st) == 0 && !S_ISDIR(st.st_mode)) {
                if (S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
                    snprintf(found, cap, "%s", cand);
                    return found;
                }
                if (!have_fallback) {
                    snprintf(found, cap, "%s", cand);
                    have_fallback = 1;
                }
            }
        }
        if (!*end)
            break;
        p = end + 1;
    }
    return have_fallback ? found : NULL;
}

/* bash 5's messages and statuses for a failed exec. */
__attribute__((noreturn)) static void exec_failed(const char *path, int err)
{
    struct stat st;
    if (err == ENOENT) {
        if (stat(path, &st) == 0) {
            /* the file is there: its #! interpreter or ELF loader is not */
            say("%s: cannot execute: required file not found", path);
        } else {
            say("%s: No such file or directory", path);
        }
        _exit(127);
    }
    if (err == EACCES && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        say("%s: Is a directory", path);
    else
        say("%s: %s", path, strerror(err));
    _exit(126);
}

/* Sends LAUNCH with the listener and our credentials, then waits for GO. Until the shim holds the
 * listener, P must make no syscall the filter traps: nobody would answer it. */
static void handshake(const struct launch_req *req, const char *path, int listener)
{
    size_t plen = strlen(path) + 1;
    char payload[sizeof(struct ssi_launch) + PATH_MAX];
    struct ssi_launch l = { .pid = (int32_t)getpid(), .argc = (uint32_t)req->argc };
    memcpy(payload, &l, sizeof l);
    memcpy(payload + sizeof l, path, plen);
    int rc = ssi_send_frame(req->sock, SSI_LAUNCH, 0, payload, sizeof l + plen, listener, 1);
    close(listener);
    if (rc < 0)
        die("cannot hand %s to node %d's shim: %s; check the node with `ssi nodes`", req->argv[0],
            req->node, strerror(-rc));

    union { char buf[sizeof(struct ssi_hdr) + 4096]; struct ssi_hdr h; } reply;
    rc = ssi_recv_frame(req->sock, reply.buf, sizeof reply.buf, NULL, NULL);
    if (rc == -ECONNRESET)
        die("node %d closed the launch connection before starting %s; see its log (node-%d.log in "
            "the run directory)", req->node, req->argv[0], req->node);
    if (rc < 0)
        die("no answer from node %d to the launch of %s: %s", req->node, req->argv[0], strerror(-rc));
    size_t len = reply.h.len - sizeof(struct ssi_hdr);
    if (reply.h.type != SSI_GO || len < sizeof(struct ssi_go))
        die("node %d answered the launch with a frame of type 0x%04x and %zu bytes instead of GO; are "
            "ssi-run and the node from the same build?", req->node, reply.h.type, len);
    struct ssi_go go;
    memcpy(&go, reply.buf + sizeof(struct ssi_hdr), sizeof go);
    if (go.error == 0)
        return;
    const char *text = reply.buf + sizeof(struct ssi_hdr) + sizeof go;
    size_t tlen = len - sizeof go;
    if (tlen > 0 && text[tlen - 1] == '\0' && text[0])
        die("node %d refused to start %s: %s", req->node, req->argv[0], text);
    die("node %d refused to start %s: %s", req->node, req->argv[0], strerror(-go.error));
}

__attribute__((noreturn)) static void run_program(const struct launch_req *req)
{
    relay_restore_caller();
    char found[PATH_MAX];
    const char *path = find_program(req->argv[0], found, sizeof found);
    if (!path) {
        say("%s: command not found", req->argv[0]);
        _exit(127);
    }
    if (strlen(path) >= PATH_MAX)
        exec_failed(path, ENAMETOOLONG);

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        die("cannot set no_new_privs: %s", strerror(errno));
    int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                                ssi_trap_filter());
    if (listener < 0 && errno == EBUSY)
        die("%s already runs under a seccomp listener (ssi-run inside a program of the cluster?); run "
            "the program directly, it is on the cluster already", req->argv[0]);
    if (listener < 0)
        die("cannot install the syscall filter: %s", strerror(errno));
    handshake(req, path, listener);

    if (req->envp)
        environ = req->envp;
    /* execvp, not execve: a file without #! that the kernel refuses (ENOEXEC) runs under /bin/sh, as
     * a shell would do. path contains a '/', so there is no second search. */
    execvp(path, req->argv);
    exec_failed(path, errno);
}

void launch_stub(const struct launch_req *req)
{
    /* The program's process group, created here so that its id is our pid in the node: getpgrp() and
     * getpgid() in the program give a cluster pid, and setpgid() between its processes works as
     * natively. getsid() stays 0 there: the session leader is the caller's, outside the node (a
     * session of our own would lose the terminal). */
    if (setpgid(0, 0) < 0)
        die("cannot create the process group of %s: %s", req->argv[0], strerror(errno));
    if (req->tty_give) {
        /* The client does the same; taking it here too means the program never starts as a
         * background job of its own terminal. */
        tty_set_foreground(req->tty, getpid());
    }
    if (req->tty >= 0)
        close(req->tty);
    relay_take_parent_death();
    pid_t p = fork();
    if (p < 0)
        die("cannot fork the process for %s: %s", req->argv[0], strerror(errno));
    if (p == 0)
        run_program(req);
    relay_set_child(p);
    close(req->sock);
    close(req->shim_pidfd);
    /* Only the program should hold its stdin and stdout: a reader must see EOF, and a writer EPIPE,
     * when the program closes them, not when A exits. stderr stays for our own messages. */
    close(STDIN_FILENO);
    close(STDOUT_FILENO);
    relay_exit(relay_wait(p, 0), 0);
}
