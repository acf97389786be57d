/* The link socket (node-N.link, mode 0600): the one connection to the node daemon (pid 2). Carries the
 * daemon's HELLO, NOTIF/NOTIF_REPLY for traps the shim cannot decide, LAUNCHED/LISTENER_GONE, and the
 * daemon's ptrace requests, which the shim serves because it is the tracer (ptrace_ops.c).
 * Owner: the shim's main thread, the only one that writes the link (so frames never interleave) and
 * the only ptrace user; the listeners' responder threads hand it what must go to the daemon (notify.c).
 *
 * The peer is trusted (SO_PEERCRED must say uid 0, pid 2) and writes whole frames, so the socket stays
 * blocking; 5 s send/receive timeouts bound what a stuck daemon can cost the loop. Anything the shim
 * does not understand closes the link: the daemon then exits, and the node with it, which is better
 * than two sides that disagree on the contract going on. */
#include "shim.h"
#include "ssi_proto.h"
#include "ptrace_ops.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/time.h>

#define PAYLOAD_CAP (SSI_MAX_FRAME - sizeof(struct ssi_hdr))

/* stub.c: SPAWN_STUB. Returns 0 (the stub is pid, stopped and traced) or -errno (-EEXIST: pid taken). */
int shim_spawn_stub(pid_t pid);
/* stub.c: GETRSEQ of a thread we trace. */
int shim_get_rseq(pid_t tid, struct ssi_rseq_reply *out);

static int listen_fd = -1;
static int link_fd = -1;
static int daemon_pidfd = -1;  /* GIVEFD takes fds out of the daemon with pidfd_getfd */
static int hello_done;
static uint32_t next_req_id;
static uint32_t link_gen;      /* tags the link's epoll events: a stale one must not hit a new link */

/* One frame in, one reply out, both up to SSI_MAX_FRAME (WRITEMEM/READMEM): static, not on the stack. */
static _Alignas(16) uint8_t in_frame[SSI_MAX_FRAME];
static _Alignas(16) uint8_t out[PAYLOAD_CAP];

int shim_link_open(const char *path)
{
    listen_fd = shim_bind_unix(path, 0600, 0);
    if (listen_fd < 0)
        return listen_fd;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SHIM_EV(SHIM_SRC_LINK_LISTEN, 0) };
    if (epoll_ctl(shim_state.epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
        return -errno;
    return 0;
}

int shim_link_up(void)
{
    return link_fd >= 0 && hello_done;
}

static void link_close(const char *why)
{
    if (link_fd < 0)
        return;
    shim_log("closing the daemon link: %s", why);
    close(link_fd);
    link_fd = -1;
    if (daemon_pidfd >= 0)
        close(daemon_pidfd);
    daemon_pidfd = -1;
    hello_done = 0;
    shim_notif_fail_pending(-ENOSYS);
}

static int link_send(uint16_t type, uint32_t req_id, const void *payload, size_t len)
{
    if (link_fd < 0)
        return -ENOTCONN;
    int rc = ssi_send_frame(link_fd, type, req_id, payload, len, -1, 0);
    if (rc < 0) {
        char why[96];
        /* A partly written frame leaves the stream out of step: the link cannot be used any more. */
        strcpy(why, "sending to the daemon failed: ");
        strncat(why, rc == -EAGAIN ? "timed out" : strerror(-rc), sizeof why - strlen(why) - 1);
        link_close(why);
    }
    return rc;
}

int shim_link_send(uint16_t type, const void *payload, size_t len)
{
    return link_send(type, ++next_req_id, payload, len);
}

void shim_link_accept(void)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                shim_pause_accept(listen_fd, SHIM_SRC_LINK_LISTEN);
                return;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                shim_log("accept on the link socket failed: %s", strerror(errno));
            return;
        }
        struct ucred cr = { .pid = -1 };
        socklen_t crl = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0 || cr.uid != 0 ||
            cr.pid != shim_state.daemon_pid) {
            shim_log("refused a link connection from pid %d (uid %d): only the node daemon (pid %d, root) "
                     "may link", cr.pid, (int)cr.uid, (int)shim_state.daemon_pid);
            close(fd);
            continue;
        }
        if (link_fd >= 0) {
            shim_log("refused a second link connection from the daemon: one is already open");
            close(fd);
            continue;
        }
        struct timeval tv = { .tv_sec = 5 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int pfd = pidfd_open(shim_state.daemon_pid, 0);
        if (pfd < 0) {
            shim_log("cannot open a pidfd for the daemon (pid %d): %s", (int)shim_state.daemon_pid,
                     strerror(errno));
            close(fd);
            continue;
        }
        link_gen++;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = SHIM_EV(SHIM_SRC_LINK, link_gen) };
        if (epoll_ctl(shim_state.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            shim_log("cannot poll the link: %s", strerror(errno));
            close(pfd);
            close(fd);
            continue;
        }
        link_fd = fd;
        daemon_pidfd = pfd;
        hello_done = 0;
    }
}

static void hello(const struct ssi_hdr *h, const uint8_t *p, size_t n)
{
    uint32_t version = 0;
    if (n >= sizeof version)
        memcpy(&version, p, sizeof version);
    struct ssi_hello_reply r = { .error = 0, .version = SSI_LINK_VERSION, .node_id = shim_state.node,
                                 .pid_base = shim_state.pid_base, .pid_limit = shim_state.pid_limit };
    if (n < sizeof version || version != SSI_LINK_VERSION) {
        r.error = -EPROTONOSUPPORT;
        link_send(SSI_HELLO | SSI_REPLY_BIT, h->req_id, &r, sizeof r);
        shim_log("the daemon speaks link version %u; this shim speaks %d", version, SSI_LINK_VERSION);
        link_close("link version mismatch");
        return;
    }
    if (link_send(SSI_HELLO | SSI_REPLY_BIT, h->req_id, &r, sizeof r) < 0)
        return;
    hello_done = 1;
    shim_log("daemon linked (pid %d); node ready, cluster pids [%d, %d)", (int)shim_state.daemon_pid,
             shim_state.pid_base, shim_state.pid_limit);
    shim_node_linked();
}

/* Is tid the node init or a thread of the daemon? Stopping either would freeze the very loop that
 * has to answer the daemon: the node would hang. */
static int untraceable(pid_t tid)
{
    if (tid == 1 || tid == shim_state.daemon_pid)
        return 1;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* gone or never was: ptrace itself will say ESRCH */
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *t = strstr(buf, "\nTgid:");
    return t && atoi(t + 6) == shim_state.daemon_pid;
}

/* Replies carry the request's type | 0x8000 and req_id; out[0..4) is the error, the body follows. */
static void reply(const struct ssi_hdr *h, int32_t error, size_t body_len)
{
    memcpy(out, &error, sizeof error);
    link_send(h->type | SSI_REPLY_BIT, h->req_id, out, sizeof error + (error ? 0 : body_len));
}

/* Serves one ptrace request. Returns 0, or -1 when the frame does not match the contract. */
static int serve_ptrace(const struct ssi_hdr *h, const uint8_t *p, size_t n)
{
    uint8_t *body = out + sizeof(int32_t);
    const size_t body_cap = sizeof out - sizeof(int32_t);
    int32_t err;
    size_t body_len = 0;
    switch (h->type) {
    case SSI_ATTACH:
    case SSI_DETACH:
    case SSI_GETREGS:
    case SSI_GETXSTATE: {
        struct ssi_tid_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        if (h->type == SSI_ATTACH) {
            err = untraceable(r.tid) ? -EPERM : pt_attach(r.tid);
        } else if (h->type == SSI_DETACH) {
            err = pt_detach(r.tid);
        } else if (h->type == SSI_GETREGS) {
            struct user_regs_struct regs;
            err = pt_getregs(r.tid, &regs);
            memcpy(body, &regs, sizeof regs);
            body_len = sizeof regs;
        } else {
            size_t len = 0;
            err = pt_getxstate(r.tid, body + sizeof(uint32_t), body_cap - sizeof(uint32_t), &len);
            uint32_t l32 = (uint32_t)len;
            memcpy(body, &l32, sizeof l32);
            body_len = sizeof l32 + len;
        }
        break;
    }
    case SSI_SETREGS: {
        struct ssi_setregs_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        struct user_regs_struct regs = r.regs; /* aligned copy of a packed member */
        err = pt_setregs(r.tid, &regs);
        break;
    }
    case SSI_SETXSTATE: {
        struct ssi_xstate_req r;
        if (n < sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        if (r.len != n - sizeof r)
            return -1;
        err = pt_setxstate(r.tid, p + sizeof r, r.len);
        break;
    }
    case SSI_READMEM: {
        struct ssi_mem_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        if (r.len > body_cap) {
            err = -EINVAL; /* the reply would not fit in one frame: read in pieces */
            break;
        }
        err = pt_readmem(r.pid, r.addr, body, r.len);
        body_len = r.len;
        break;
    }
    case SSI_WRITEMEM: {
        struct ssi_mem_req r;
        if (n < sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        if (r.len != n - sizeof r)
            return -1;
        err = pt_writemem(r.pid, r.addr, p + sizeof r, r.len);
        break;
    }
    case SSI_INJECT: {
        struct ssi_inject_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        int64_t ret = 0;
        uint64_t args[6];
        memcpy(args, r.args, sizeof args);
        err = pt_inject_syscall(r.tid, r.nr, args, &ret);
        memcpy(body, &ret, sizeof ret);
        body_len = sizeof ret;
        break;
    }
    case SSI_INJECT_MANY: {
        struct ssi_inject_many_req r;
        if (n < sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        if (r.count > SSI_INJECT_MANY_MAX || n != sizeof r + (size_t)r.count * sizeof(struct ssi_inject_call))
            return -1;
        static int64_t nrs[SSI_INJECT_MANY_MAX], rets[SSI_INJECT_MANY_MAX];
        static uint64_t args[SSI_INJECT_MANY_MAX][6];
        for (uint32_t i = 0; i < r.count; i++) {
            struct ssi_inject_call c;
            memcpy(&c, p + sizeof r + (size_t)i * sizeof c, sizeof c);
            nrs[i] = c.nr;
            memcpy(args[i], c.args, sizeof args[i]);
        }
        err = pt_inject_many(r.tid, r.count, r.at, nrs, (const uint64_t (*)[6])args, rets);
        memcpy(body, rets, (size_t)r.count * sizeof(int64_t));
        body_len = (size_t)r.count * sizeof(int64_t);
        break;
    }
    case SSI_GIVEFD: {
        struct ssi_givefd_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        int local = pidfd_getfd(daemon_pidfd, r.daemon_fd, 0);
        if (local < 0) {
            err = -errno;
            break;
        }
        int installed = -1;
        err = pt_give_fd(r.tid, local, r.target_fd, &installed);
        close(local);
        int32_t fd32 = installed;
        memcpy(body, &fd32, sizeof fd32);
        body_len = sizeof fd32;
        break;
    }
    case SSI_WRITEMEM_FD: {
        struct ssi_memfd_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        if (r.len > SSI_WRITEMEM_FD_MAX) {
            err = -EINVAL;
            break;
        }
        int local = pidfd_getfd(daemon_pidfd, r.daemon_fd, 0);
        if (local < 0) {
            err = -errno;
            break;
        }
        err = pt_writemem_fd(r.pid, r.addr, local, r.offset, r.len);
        close(local);
        break;
    }
    case SSI_SPAWN_STUB: {
        struct ssi_tid_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        err = shim_spawn_stub(r.tid);
        int32_t pid32 = err ? 0 : r.tid;
        memcpy(body, &pid32, sizeof pid32);
        body_len = sizeof pid32;
        break;
    }
    case SSI_GETRSEQ: {
        struct ssi_tid_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        struct ssi_rseq_reply rs;
        err = shim_get_rseq(r.tid, &rs);
        memcpy(body, &rs, sizeof rs);
        body_len = sizeof rs;
        break;
    }
    case SSI_INSTALL_FILTER: {
        struct ssi_tid_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        uint32_t lid = 0;
        err = shim_install_filter(r.tid, &lid);
        memcpy(body, &lid, sizeof lid);
        body_len = sizeof lid;
        break;
    }
    case SSI_CLONE_INTO: {
        struct ssi_clone_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        err = pt_clone_into(r.tid, r.new_tid, r.flags, r.exit_signal, r.scratch);
        int32_t tid32 = err ? 0 : r.new_tid;
        memcpy(body, &tid32, sizeof tid32);
        body_len = sizeof tid32;
        break;
    }
    case SSI_PEEKSIGINFO: {
        struct ssi_peeksig_req r;
        memset(&r, 0, sizeof r);
        if (n != sizeof r && n != sizeof r - sizeof r.offset)
            return -1;
        memcpy(&r, p, n);
        int count = 0;
        err = pt_peek_siginfo(r.tid, r.shared != 0, r.offset, body + 4, 64, &count);
        uint32_t c32 = err ? 0 : (uint32_t)count;
        memcpy(body, &c32, sizeof c32);
        body_len = 4 + (size_t)c32 * 128;
        break;
    }
    case SSI_GETSIGMASK: {
        struct ssi_tid_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        uint64_t mask = 0;
        err = pt_get_sigmask(r.tid, &mask);
        memcpy(body, &mask, sizeof mask);
        body_len = sizeof mask;
        break;
    }
    case SSI_GETDEFERRED: {
        struct ssi_tid_req r;
        if (n != sizeof r)
            return -1;
        memcpy(&r, p, sizeof r);
        const struct pt_held_sig *held = NULL;
        uint32_t count = 0, lost = 0;
        err = pt_held_signals(r.tid, &held, &count, &lost);
        if (!err && lost)
            err = -EOVERFLOW;
        if (err)
            break;
        _Static_assert(sizeof(uint32_t) + SSI_HELD_SIGNALS_MAX * sizeof(struct ssi_held_sig) <= sizeof out - sizeof(int32_t),
                       "GETDEFERRED reply must fit one frame");
        memcpy(body, &count, sizeof count);
        for (uint32_t i = 0; i < count; i++) {
            struct ssi_held_sig w = { .shared = held[i].shared };
            memcpy(w.siginfo, &held[i].si, sizeof w.siginfo);
            memcpy(body + sizeof count + i * sizeof w, &w, sizeof w);
        }
        body_len = sizeof count + count * sizeof(struct ssi_held_sig);
        break;
    }
    default:
        return -1;
    }
    reply(h, err, body_len);
    return 0;
}

static void dispatch(void)
{
    const struct ssi_hdr *h = (const void *)in_frame;
    const uint8_t *p = in_frame + sizeof *h;
    size_t n = h->len - sizeof *h;
    char why[96];
    if (!hello_done) {
        if (h->type == SSI_HELLO) {
            hello(h, p, n);
            return;
        }
        snprintf(why, sizeof why, "frame type 0x%04x before HELLO", h->type);
        link_close(why);
        return;
    }
    switch (h->type) {
    case SSI_NOTIF_REPLY:
        if (n != sizeof(struct ssi_notif_reply))
            break;
        shim_notif_reply(p, n);
        return;
    case SSI_ATTACH ... SSI_WRITEMEM_FD:
    case SSI_CLONE_INTO ... SSI_GETDEFERRED:
    case SSI_INJECT_MANY:
        if (serve_ptrace(h, p, n) == 0)
            return;
        break;
    default:
        break;
    }
    snprintf(why, sizeof why, "unexpected frame type 0x%04x with %zu payload bytes", h->type, n);
    link_close(why);
}

void shim_link_event(uint32_t gen, uint32_t events)
{
    if (link_fd < 0 || gen != link_gen)
        return;
    if (events & EPOLLIN) {
        int rc = ssi_recv_frame(link_fd, in_frame, sizeof in_frame, NULL, NULL);
        if (rc == 0) {
            dispatch();
        } else if (rc == -ECONNRESET) {
            link_close("the daemon closed it");
        } else if (rc == -EAGAIN) {
            link_close("the daemon stopped in the middle of a frame for 5 s");
        } else if (rc == -EMSGSIZE) {
            link_close("garbage: a frame length out of range");
        } else {
            char why[96];
            snprintf(why, sizeof why, "receive failed: %s", strerror(-rc));
            link_close(why);
        }
        return;
    }
    if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP))
        link_close("the daemon closed it");
}
