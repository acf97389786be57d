/* unotify_baseline [N [PIN [WAIT [SYNC]]]]: the cost of a bare seccomp user-notification round trip,
 * the floor for a trapped syscall under ssi-run.
 *
 * A child installs ssi-run's own filter (SECCOMP_FILTER_FLAG_NEW_LISTENER), which traps the signal
 * syscalls, and passes the listener to the parent
 * over a socketpair (SCM_RIGHTS). The parent asks for SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP and answers
 * every notification with SECCOMP_USER_NOTIF_FLAG_CONTINUE in a tight loop; the child times N calls of
 * kill(getpid(), 0).
 *   PIN   none (default) | same (both on CPU 0) | cross (parent on CPU 0, child on CPU 1)
 *   WAIT  recv (default: blocking SECCOMP_IOCTL_NOTIF_RECV) | poll (poll() first) | epoll
 *   SYNC  sync (default) | nosync (do not set SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
 * Prints one line: "<microseconds per call> sync=<1|0>". A refused SYNC_WAKE_UP is reported on stderr
 * and the run continues without it (sync=0). */
#include "bench_util.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <linux/seccomp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

#define SENTINEL_PID 2147480001 /* kill(SENTINEL_PID, 0): "done", answered with ESRCH */

static volatile sig_atomic_t child_gone;
static void on_chld(int sig) { (void)sig; child_gone = 1; }

static int send_fd(int sock, int fd)
{
    char byte = 'L';
    struct iovec iov = { &byte, 1 };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                          .msg_controllen = sizeof u.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
    char byte;
    struct iovec iov = { &byte, 1 };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                          .msg_controllen = sizeof u.buf };
    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

static int child_main(int sock, long n, int cpu)
{
    int lfd = install_trap_filter();
    if (lfd < 0) {
        fprintf(stderr, "unotify_baseline: seccomp(NEW_LISTENER): %s\n", strerror(errno));
        return 1;
    }
    if (send_fd(sock, lfd) != 0) {
        perror("unotify_baseline: sendmsg");
        return 1;
    }
    close(lfd);
    char go;
    if (read(sock, &go, 1) != 1)
        return 1;
    pin_cpu(cpu, "unotify_baseline (child)");
    pid_t me = getpid();
    long warm = n / 100 < 1000 ? n / 100 : 1000;
    for (long i = 0; i < warm; i++)
        if (kill(me, 0) != 0) { perror("unotify_baseline: kill"); return 1; }
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (kill(me, 0) != 0) { perror("unotify_baseline: kill"); return 1; }
    double t1 = now_ns();
    kill(SENTINEL_PID, 0); /* tells the parent to stop answering */
    double us = (t1 - t0) / (double)n / 1000.0;
    /* the result goes back to the parent, which prints it with the sync flag */
    return write(sock, &us, sizeof us) == sizeof us ? 0 : 1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? arg_long(argv[1], "unotify_baseline") : 200000;
    const char *pin = argc > 2 ? argv[2] : "none";
    const char *wait_mode = argc > 3 ? argv[3] : "recv";
    int want_sync = !(argc > 4 && strcmp(argv[4], "nosync") == 0);
    int parent_cpu = -1, child_cpu = -1;
    if (strcmp(pin, "same") == 0)
        parent_cpu = child_cpu = 0;
    else if (strcmp(pin, "cross") == 0)
        parent_cpu = 0, child_cpu = 1;
    else if (strcmp(pin, "none") != 0) {
        fprintf(stderr, "unotify_baseline: PIN is none, same or cross\n");
        return 2;
    }
    int mode = strcmp(wait_mode, "recv") == 0 ? 0 : strcmp(wait_mode, "poll") == 0 ? 1
             : strcmp(wait_mode, "epoll") == 0 ? 2 : -1;
    if (mode < 0) {
        fprintf(stderr, "unotify_baseline: WAIT is recv, poll or epoll\n");
        return 2;
    }

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        perror("unotify_baseline: socketpair");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld; /* no SA_RESTART: a dead child interrupts a blocking RECV */
    sigaction(SIGCHLD, &sa, NULL);

    pid_t child = fork();
    if (child < 0) {
        perror("unotify_baseline: fork");
        return 1;
    }
    if (child == 0) {
        close(sv[0]);
        _exit(child_main(sv[1], n, child_cpu));
    }
    close(sv[1]);
    int lfd = recv_fd(sv[0]);
    if (lfd < 0) {
        fprintf(stderr, "unotify_baseline: did not get the listener from the child\n");
        waitpid(child, NULL, 0);
        return 1;
    }
    int sync_on = 0;
    if (want_sync) {
        if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) == 0)
            sync_on = 1;
        else
            fprintf(stderr, "unotify_baseline: note: kernel refused SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (%s); "
                    "continuing without it\n", strerror(errno));
    }
    pin_cpu(parent_cpu, "unotify_baseline (parent)");
    int ep = -1;
    if (mode == 2) {
        ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
            perror("unotify_baseline: epoll");
            return 1;
        }
    }
    if (write(sv[0], "g", 1) != 1)
        return 1;

    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    int rc = 0;
    for (;;) {
        if (child_gone)
            break;
        if (mode == 1) {
            struct pollfd p = { .fd = lfd, .events = POLLIN };
            if (poll(&p, 1, -1) < 0 && errno != EINTR) { perror("unotify_baseline: poll"); rc = 1; break; }
            if (p.revents & POLLHUP) break;
            if (!(p.revents & POLLIN)) continue;
        } else if (mode == 2) {
            struct epoll_event ev;
            int k = epoll_wait(ep, &ev, 1, -1);
            if (k < 0 && errno != EINTR) { perror("unotify_baseline: epoll_wait"); rc = 1; break; }
            if (k <= 0) continue;
            if (ev.events & EPOLLHUP) break;
        }
        memset(&req, 0, sizeof req);
        if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
            if (errno == EINTR || errno == ENOENT)
                continue;
            perror("unotify_baseline: NOTIF_RECV");
            rc = 1;
            break;
        }
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        int done = req.data.nr == __NR_kill && (int)req.data.args[0] == SENTINEL_PID;
        if (done)
            resp.error = -ESRCH;
        else
            resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0 && errno != ENOENT) {
            perror("unotify_baseline: NOTIF_SEND");
            rc = 1;
            break;
        }
        if (done)
            break;
    }
    double us = -1;
    ssize_t got;
    while ((got = read(sv[0], &us, sizeof us)) < 0 && errno == EINTR)
        ;
    int read_errno = errno;
    int st = 0;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR)
        ;
    if (rc || got != (ssize_t)sizeof us || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "unotify_baseline: run failed (answer loop %s, result read %zd bytes%s%s, child %s %d)\n",
                rc ? "failed" : child_gone ? "saw the child exit" : "ok", got,
                got < 0 ? ": " : "", got < 0 ? strerror(read_errno) : "",
                WIFSIGNALED(st) ? "killed by signal" : "exit status",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        return 1;
    }
    printf("%.4f sync=%d\n", us, sync_on);
    return 0;
}
