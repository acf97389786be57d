/* The launch socket (node-N.launch, mode 0666): an ssi-run launch stub P, already inside the node's pid
 * namespace, hands over the seccomp listener of the filter it installed, and waits for GO before it
 * execs. Owner: the shim's main thread.
 *
 * Clients are local and untrusted, and the same thread serves the daemon's link (forwarded traps,
 * ptrace requests), so nothing a client sends (or fails to send) may stall the loop: connections are
 * non-blocking and edge-triggered, a LAUNCH frame is read only once the kernel holds all of it (so the
 * blocking frame reader in proto.c never waits), anything that is not a LAUNCH header is dropped at
 * once, and a client that has not sent its frame within 5 s of connecting is dropped by the tick. */
#include "shim.h"
#include "ssi_proto.h"
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/seccomp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

#define MAX_CONNS 64
#define LAUNCH_DEADLINE_MS 5000
#define LAUNCH_MAX_FRAME (sizeof(struct ssi_hdr) + sizeof(struct ssi_launch) + PATH_MAX)

static int listen_fd = -1;
/* Events carry gen << 8 | slot: a slot dropped and reused within one epoll batch must not receive
 * the old connection's event (it could carry a hang-up that is not the new client's). */
static struct conn {
    int fd;              /* -1: free */
    uint32_t gen;
    uint64_t deadline_ms;
} conns[MAX_CONNS];

int shim_launch_open(const char *path)
{
    for (int i = 0; i < MAX_CONNS; i++)
        conns[i].fd = -1;
    /* SO_PASSCRED on the listening socket is inherited by accepted sockets, so it is on before the
     * client's first byte can be read. */
    listen_fd = shim_bind_unix(path, 0666, 1);
    if (listen_fd < 0)
        return listen_fd;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SHIM_EV(SHIM_SRC_LAUNCH_LISTEN, 0) };
    if (epoll_ctl(shim_state.epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
        return -errno;
    return 0;
}

static void drop(int slot)
{
    close(conns[slot].fd);
    conns[slot].fd = -1;
}

void shim_launch_accept(void)
{
    static int warned_full;
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                shim_pause_accept(listen_fd, SHIM_SRC_LAUNCH_LISTEN);
                return;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                shim_log("accept on the launch socket failed: %s", strerror(errno));
            return;
        }
        int slot = -1;
        for (int i = 0; i < MAX_CONNS; i++) {
            if (conns[i].fd < 0) {
                slot = i;
                break;
            }
        }
        if (slot < 0) {
            if (!warned_full++)
                shim_log("%d launch connections are pending; refusing more (logged once)", MAX_CONNS);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
        uint32_t gen = (conns[slot].gen + 1) & 0xffffff;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                                  .data.u64 = SHIM_EV(SHIM_SRC_LAUNCH_CONN, gen << 8 | (uint32_t)slot) };
        if (epoll_ctl(shim_state.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            shim_log("cannot poll a launch connection: %s", strerror(errno));
            close(fd);
            continue;
        }
        conns[slot].fd = fd;
        conns[slot].gen = gen;
        conns[slot].deadline_ms = shim_now_ms() + LAUNCH_DEADLINE_MS;
    }
}

static void go(int fd, uint32_t req_id, int error, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void go(int fd, uint32_t req_id, int error, const char *fmt, ...)
{
    char buf[sizeof(struct ssi_go) + 256];
    struct ssi_go g = { .error = error };
    memcpy(buf, &g, sizeof g);
    size_t len = sizeof g;
    if (error) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf + sizeof g, sizeof buf - sizeof g, fmt, ap);
        va_end(ap);
        if (n < 0)
            n = 0;
        if ((size_t)n >= sizeof buf - sizeof g)
            n = (int)(sizeof buf - sizeof g - 1);
        len += (size_t)n + 1;
        shim_log("launch refused: %s", buf + sizeof g);
    }
    /* A fresh connection's send buffer is empty, so this small frame never meets EAGAIN. */
    int rc = ssi_send_frame(fd, SSI_GO, req_id, buf, len, -1, 0);
    if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
        shim_log("sending GO failed: %s", strerror(-rc));
}

/* What a LAUNCH and an INSTALL_FILTER share once they hold a validated listener (filter.c). */
int shim_adopt_listener(int lfd, pid_t pid, uid_t uid, gid_t gid, const char *path, uint32_t *lid_out,
                        enum shim_adopt_stage *stage)
{
    /* The trapped task then wakes the listener's responder thread (blocked in NOTIF_RECV, notify.c) on
     * its own CPU and the answer wakes it back the same way: the cross-CPU wakeups this machine makes so
     * expensive are avoided. Older kernels lack it; still works. */
    if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) < 0) {
        static int warned;
        if (!warned++)
            shim_log("SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP unavailable (%s): traps will be slower (logged once)",
                     strerror(errno));
    }
    uint32_t lid;
    *stage = SHIM_ADOPT_TABLE;
    int rc = shim_listener_add(lfd, &lid);
    if (rc < 0) {
        close(lfd);
        return rc;
    }
    char msg[sizeof(struct ssi_launched) + PATH_MAX];
    size_t plen = strnlen(path, PATH_MAX - 1);
    struct ssi_launched l = { .pid = pid, .uid = uid, .gid = gid, .listener_id = lid };
    memcpy(msg, &l, sizeof l);
    memcpy(msg + sizeof l, path, plen);
    msg[sizeof l + plen] = 0;
    *stage = SHIM_ADOPT_LINK;
    if (shim_link_send(SSI_LAUNCHED, msg, sizeof l + plen + 1) < 0) {
        shim_listener_remove(lid);
        return -EHOSTDOWN;
    }
    /* The responder starts only now, so a listener that never became the daemon's has no thread to stop.
     * The process traps nothing before it is let go (GO, or the restore's DETACH), and a trap would
     * simply wait in the kernel until the thread runs. */
    *stage = SHIM_ADOPT_START;
    rc = shim_listener_start(lid);
    if (rc < 0) {
        shim_listener_end(lid); /* the daemon heard LAUNCHED: it hears the end too */
        return rc;
    }
    *lid_out = lid;
    return 0;
}

/* Validates a LAUNCH and adopts its listener. Consumes lfd in every case. */
static void launch(int fd, const uint8_t *frame, int lfd, const struct ucred *cr)
{
    const struct ssi_hdr *h = (const void *)frame;
    int node = shim_state.node;
    struct ssi_launch req;
    memcpy(&req, frame + sizeof *h, sizeof req);
    const char *path = (const char *)frame + sizeof *h + sizeof req;
    size_t path_room = h->len - sizeof *h - sizeof req;
    if (!memchr(path, 0, path_room)) {
        go(fd, h->req_id, -EINVAL, "malformed LAUNCH from pid %d: program path not NUL-terminated", req.pid);
        goto reject;
    }
    if (cr->pid == -1) {
        go(fd, h->req_id, -EPERM, "LAUNCH from pid %d carried no SCM_CREDENTIALS", req.pid);
        goto reject;
    }
    if (cr->pid == 0) {
        /* The kernel maps a sender outside our pid namespace to pid 0. */
        go(fd, h->req_id, -EPERM,
           "the launching process (pid %d) is not in node %d's pid namespace: setns into it before forking",
           req.pid, node);
        goto reject;
    }
    if (cr->pid != req.pid) {
        go(fd, h->req_id, -EPERM, "LAUNCH names pid %d but was sent by pid %d", req.pid, cr->pid);
        goto reject;
    }
    if (lfd < 0) {
        go(fd, h->req_id, -EBADF, "LAUNCH from pid %d carried no seccomp listener fd", req.pid);
        goto reject;
    }
    /* Only a seccomp listener knows notification ids: id 0 is never valid, so ENOENT proves the type;
     * any other fd answers ENOTTY or EINVAL. */
    uint64_t id0 = 0;
    if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id0) == 0 || errno != ENOENT) {
        go(fd, h->req_id, -EINVAL, "the fd pid %d passed with LAUNCH is not a seccomp listener", req.pid);
        goto reject;
    }
    if (!shim_link_up()) {
        go(fd, h->req_id, -EAGAIN, "node %d's daemon is not linked yet; retry in a moment", node);
        goto reject;
    }
    uint32_t lid;
    enum shim_adopt_stage stage;
    int rc = shim_adopt_listener(lfd, req.pid, cr->uid, cr->gid, path, &lid, &stage);
    lfd = -1; /* consumed */
    if (rc == 0)
        go(fd, h->req_id, 0, "%s", "");
    else if (stage == SHIM_ADOPT_TABLE)
        go(fd, h->req_id, rc, "cannot adopt the listener of pid %d: %s", req.pid, strerror(-rc));
    else if (stage == SHIM_ADOPT_LINK)
        go(fd, h->req_id, rc, "node %d lost its daemon link while launching pid %d", node, req.pid);
    else
        go(fd, h->req_id, rc, "cannot start a responder thread for pid %d: %s", req.pid, strerror(-rc));
    return;
reject:
    if (lfd >= 0)
        close(lfd);
}

void shim_launch_event(uint32_t tag, uint32_t events)
{
    uint32_t slot = tag & 0xff;
    if (slot >= MAX_CONNS || conns[slot].fd < 0 || conns[slot].gen != tag >> 8)
        return;
    int fd = conns[slot].fd;
    if (events & EPOLLERR) {
        drop(slot);
        return;
    }
    int queued = 0;
    if (ioctl(fd, FIONREAD, &queued) < 0) {
        drop(slot);
        return;
    }
    if ((size_t)queued >= sizeof(struct ssi_hdr)) {
        struct ssi_hdr h;
        ssize_t r = recv(fd, &h, sizeof h, MSG_PEEK | MSG_DONTWAIT);
        if (r == (ssize_t)sizeof h) {
            if (h.type != SSI_LAUNCH || h.len < sizeof h + sizeof(struct ssi_launch) + 1 ||
                h.len > LAUNCH_MAX_FRAME) {
                shim_log("dropped a launch connection that sent garbage (type 0x%x, length %u)", h.type, h.len);
                drop(slot);
                return;
            }
            if ((size_t)queued >= h.len) {
                _Alignas(8) uint8_t frame[LAUNCH_MAX_FRAME];
                int lfd = -1;
                struct ucred cr;
                int rc = ssi_recv_frame(fd, frame, sizeof frame, &lfd, &cr);
                if (rc == 0)
                    launch(fd, frame, lfd, &cr);
                else if (lfd >= 0)
                    close(lfd);
                drop(slot);
                return;
            }
        }
    }
    /* Not all there yet. A peer that hung up will never complete it. */
    if (events & (EPOLLHUP | EPOLLRDHUP))
        drop(slot);
}

void shim_launch_sweep(uint64_t now_ms)
{
    for (int i = 0; i < MAX_CONNS; i++) {
        if (conns[i].fd >= 0 && now_ms >= conns[i].deadline_ms) {
            shim_log("dropped a launch connection that sent no complete LAUNCH within %d s",
                     LAUNCH_DEADLINE_MS / 1000);
            drop(i);
        }
    }
}
