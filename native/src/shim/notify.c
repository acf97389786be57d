/* Seccomp listeners: one per launched program (its descendants inherit the filter, so the listener
 * sees them too). The shim answers the traps it can decide alone and forwards the rest to the daemon.
 * Owner: the shim's single thread.
 *
 * Hot path: shim_listener_event -> NOTIF_RECV -> shim_decide_local -> NOTIF_SEND(CONTINUE, or -ESRCH for
 * a node-internal target). It must cost no more than a bare user-notification round trip, so it does no
 * allocation, no logging and no /proc access; everything else (forwarding, errors) is off to the side. */
#include "shim.h"
#include "ssi_proto.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#define X32_SYSCALL_BIT 0x40000000u

/* Which trapped syscalls the table lets the shim decide (column "decide" == shim). Built at compile
 * time from syscalls.tsv; an x86_64 number >= 512 would be an x32 number and fails the build here. */
static const uint8_t shim_decides[512] = {
#define SSI_SYSCALL(name, nr, by_shim) [nr] = (by_shim),
#include "ssi_syscalls.h"
#undef SSI_SYSCALL
};

/* Where a positive pid (or tid, tgid, process group id) lives. Below 1 << 14 it is node-internal (the
 * node init, the daemon and its threads): no cluster process, so a trapped program must not reach it
 * and is told it does not exist, as for any pid that names nobody. */
static inline int decide_pid(int node, long pid)
{
    if (pid < (1L << SSI_PID_SHIFT))
        return -ESRCH;
    return (pid >> SSI_PID_SHIFT) == node ? SHIM_CONTINUE : SHIM_ASK_DAEMON;
}

int shim_decide_local(int node, uint32_t arch, int nr, uint64_t arg0, uint64_t arg1)
{
    /* Numbers of other arches (i386) mean other syscalls: only the daemon may interpret them. x32
     * shares x86_64's numbers for the signal calls once its marker bit is masked. */
    if (arch != AUDIT_ARCH_X86_64)
        return SHIM_ASK_DAEMON;
    unsigned int n = (unsigned int)nr & ~X32_SYSCALL_BIT;
    if (n >= sizeof shim_decides || !shim_decides[n])
        return SHIM_ASK_DAEMON;
    long target = (int)arg0; /* pid_t is an int: the kernel ignores the upper half too */
    switch (n) {
    case __NR_kill:
    case __NR_rt_sigqueueinfo:
        if (target > 0)
            return decide_pid(node, target);
        if (target == 0)
            return SHIM_CONTINUE;   /* own process group: always on this node */
        if (target == -1)
            return SHIM_ASK_DAEMON; /* every cluster process: the daemon delivers it on every node */
        /* -pgrp. INT_MIN has no negation: the daemon answers ESRCH like the kernel. */
        return decide_pid(node, -target);
    case __NR_tkill:
        /* A non-positive tid names nobody: the kernel answers EINVAL itself. */
        return target <= 0 ? SHIM_CONTINUE : decide_pid(node, target);
    case __NR_tgkill:
    case __NR_rt_tgsigqueueinfo:
        /* The kernel checks both ids for EINVAL before it looks either up: let it. */
        if (target <= 0 || (int)arg1 <= 0)
            return SHIM_CONTINUE;
        return decide_pid(node, target);
    default:
        return SHIM_ASK_DAEMON; /* the table says "shim" but no rule exists here yet */
    }
}

/* ---- listener table: id = generation << 20 | slot, so a late reply for a reused slot misses ---- */

#define SLOT_BITS 20
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define GEN_MASK ((1u << (32 - SLOT_BITS)) - 1)

struct listener {
    int fd;              /* -1: free */
    uint32_t id;
    uint32_t next_free;  /* free-list link while free */
};

static struct listener *slots;
static uint32_t nslots, slots_cap, free_head = UINT32_MAX;

int shim_listener_add(int fd, uint32_t *id_out)
{
    uint32_t slot;
    if (free_head != UINT32_MAX) {
        slot = free_head;
        free_head = slots[slot].next_free;
    } else {
        if (nslots == slots_cap) {
            uint32_t ncap = slots_cap ? slots_cap * 2 : 64;
            if (ncap > SLOT_MASK + 1)
                return -EMFILE;
            struct listener *n = realloc(slots, ncap * sizeof *n);
            if (!n)
                return -ENOMEM;
            slots = n;
            slots_cap = ncap;
        }
        slot = nslots++;
        slots[slot].id = 0;
    }
    uint32_t gen = ((slots[slot].id >> SLOT_BITS) + 1) & GEN_MASK;
    uint32_t id = (gen << SLOT_BITS) | slot;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SHIM_EV(SHIM_SRC_LISTENER, id) };
    if (epoll_ctl(shim_state.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        slots[slot].fd = -1;
        slots[slot].id = id;
        slots[slot].next_free = free_head;
        free_head = slot;
        return -e;
    }
    slots[slot].fd = fd;
    slots[slot].id = id;
    *id_out = id;
    return 0;
}

static struct listener *listener_of(uint32_t id)
{
    uint32_t slot = id & SLOT_MASK;
    if (slot >= nslots || slots[slot].id != id || slots[slot].fd < 0)
        return NULL;
    return &slots[slot];
}

/* ---- notifications waiting for the daemon's NOTIF_REPLY ---- */

/* A dense array scanned linearly: only threads blocked on a remote decision live here, a handful in
 * practice, and a scan of a few entries beats any hash. */
struct pending {
    uint32_t listener_id;
    uint64_t notif_id;
};
static struct pending *pend;
static size_t npend, pend_cap;

static int pending_add(uint32_t lid, uint64_t nid)
{
    if (npend == pend_cap) {
        size_t ncap = pend_cap ? pend_cap * 2 : 64;
        struct pending *n = realloc(pend, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        pend = n;
        pend_cap = ncap;
    }
    pend[npend].listener_id = lid;
    pend[npend].notif_id = nid;
    npend++;
    return 0;
}

static int pending_take(uint32_t lid, uint64_t nid)
{
    for (size_t i = 0; i < npend; i++) {
        if (pend[i].listener_id == lid && pend[i].notif_id == nid) {
            pend[i] = pend[--npend];
            return 1;
        }
    }
    return 0;
}

static void answer(int fd, uint64_t notif_id, int error)
{
    struct seccomp_notif_resp r;
    memset(&r, 0, sizeof r);
    r.id = notif_id;
    r.error = error;
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &r) < 0 && errno != ENOENT)
        shim_log("answering a trapped syscall (notification %llu) failed: %s",
                 (unsigned long long)notif_id, strerror(errno));
}

void shim_notif_fail_pending(int error)
{
    if (npend)
        shim_log("failing %zu trapped syscall(s) still waiting for the daemon with %s", npend,
                 strerror(-error));
    while (npend) {
        struct pending p = pend[--npend];
        struct listener *l = listener_of(p.listener_id);
        if (l)
            answer(l->fd, p.notif_id, error);
    }
}

void shim_listener_remove(uint32_t id)
{
    struct listener *l = listener_of(id);
    if (!l)
        return;
    close(l->fd); /* also drops it from the epoll set: nobody else holds this file */
    l->fd = -1;
    for (size_t i = 0; i < npend;) {
        if (pend[i].listener_id == id)
            pend[i] = pend[--npend];
        else
            i++;
    }
    uint32_t slot = id & SLOT_MASK;
    slots[slot].next_free = free_head;
    free_head = slot;
}

static void listener_gone(uint32_t id)
{
    shim_listener_remove(id);
    if (shim_link_up()) {
        uint32_t lid = id;
        shim_link_send(SSI_LISTENER_GONE, &lid, sizeof lid);
    }
}

/* The cold half of a trap: the daemon decides. */
static void forward(uint32_t id, int fd, const struct seccomp_notif *n)
{
    static int warned;
    if (!shim_link_up()) {
        /* What the kernel itself answers when a filter's supervisor is gone. */
        if (!warned++)
            shim_log("no daemon linked: failing trapped syscall %d of pid %d with ENOSYS (logged once)",
                     n->data.nr, n->pid);
        answer(fd, n->id, -ENOSYS);
        return;
    }
    if (pending_add(id, n->id) < 0) {
        answer(fd, n->id, -ENOMEM);
        return;
    }
    struct ssi_notif m;
    memset(&m, 0, sizeof m);
    m.listener_id = id;
    m.notif_id = n->id;
    m.pid = (int32_t)n->pid;
    m.nr = n->data.nr;
    m.arch = n->data.arch;
    m.ip = n->data.instruction_pointer;
    memcpy(m.args, n->data.args, sizeof m.args);
    /* On failure the link is closed, which answers every pending notification, this one included. */
    shim_link_send(SSI_NOTIF, &m, sizeof m);
}

void shim_listener_event(uint32_t id, uint32_t events)
{
    uint32_t slot = id & SLOT_MASK;
    if (slot >= nslots || slots[slot].id != id || slots[slot].fd < 0)
        return; /* stale event for a listener closed earlier in this batch */
    int fd = slots[slot].fd;
    if (events & (EPOLLHUP | EPOLLERR)) {
        /* No task uses the filter any more, so no notification can be pending on it. */
        listener_gone(id);
        return;
    }
    struct seccomp_notif n;
    memset(&n, 0, sizeof n);
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) {
        /* ENOENT: the trapped task was killed between the wakeup and RECV. */
        if (errno != ENOENT && errno != EINTR)
            shim_log("NOTIF_RECV on listener %u failed: %s", id, strerror(errno));
        return;
    }
    int d = shim_decide_local(shim_state.node, n.data.arch, n.data.nr, n.data.args[0], n.data.args[1]);
    if (d == SHIM_CONTINUE) {
        struct seccomp_notif_resp r = { .id = n.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &r) < 0 && errno != ENOENT)
            shim_log("NOTIF_SEND on listener %u failed: %s", id, strerror(errno));
        return;
    }
    if (d < 0) {
        answer(fd, n.id, d);
        return;
    }
    forward(id, fd, &n);
}

void shim_notif_reply(const void *payload, size_t len)
{
    struct ssi_notif_reply r;
    memcpy(&r, payload, sizeof r < len ? sizeof r : len);
    if (!pending_take(r.listener_id, r.notif_id)) {
        /* The listener closed meanwhile (its tasks are gone), or the daemon answered twice. */
        return;
    }
    struct listener *l = listener_of(r.listener_id);
    if (!l)
        return;
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = r.notif_id;
    if (r.flags & SSI_REPLY_CONTINUE) {
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    } else {
        resp.val = r.val;
        resp.error = r.error;
    }
    if (ioctl(l->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0 || errno == ENOENT)
        return;
    /* The daemon's answer is invalid (e.g. a positive errno): the thread must still not hang. */
    shim_log("the daemon's answer to notification %llu (flags %u, val %lld, error %d) was refused by "
             "the kernel (%s); failing the syscall with EIO",
             (unsigned long long)r.notif_id, r.flags, (long long)r.val, r.error, strerror(errno));
    answer(l->fd, r.notif_id, -EIO);
}

int shim_notify_check_abi(void)
{
    struct seccomp_notif_sizes sz;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0)
        return -errno;
    /* RECV writes the kernel's struct size; a bigger one would overrun our stack copy. */
    if (sz.seccomp_notif > sizeof(struct seccomp_notif) ||
        sz.seccomp_notif_resp > sizeof(struct seccomp_notif_resp))
        return -EOVERFLOW;
    return 0;
}
