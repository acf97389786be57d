/* Seccomp listeners: one per launched program (its descendants inherit the filter, so the listener
 * sees them too). The shim answers the traps it can decide alone and forwards the rest to the daemon.
 *
 * Threads. Every listener has a responder thread of its own (named ssi-notif-<slot>, all signals
 * blocked) that sleeps in SECCOMP_IOCTL_NOTIF_RECV itself: no epoll in between, so the kernel's
 * synchronous wake-up (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: the trapped task wakes the RECV waiter on its
 * own CPU, and the SEND wakes the task back the same way) is kept and a trap costs what a bare
 * user-notification round trip costs. An epoll wait in between loses it (epoll wakes its own waiter
 * with a plain wake-up), which is why the listeners are not in the main loop.
 *
 * Hot path (responder thread): NOTIF_RECV -> shim_decide_local -> NOTIF_SEND(CONTINUE, or -ESRCH for a
 * node-internal target). It does no allocation, no logging, no /proc access and takes no lock.
 *
 * Everything else belongs to the main thread (the only ptrace user and the only writer of the link):
 * the slot table, the pending table, the link. A notification the daemon must decide is handed over
 * through a queue (q_lock) and an eventfd the main loop polls; the main thread sends the NOTIF frame,
 * records it as pending and later answers it from the daemon's NOTIF_REPLY (SEND works from any thread).
 * When no task uses a filter any more, RECV fails with ENOENT and the listener polls POLLHUP (a blocked
 * RECV is woken by the filter's orphaning on the kernels the shim runs on, >= 6.14); the thread then puts
 * its listener on the ended list and exits; the main thread joins it, closes the fd and tells the daemon
 * LISTENER_GONE, once. A listener's fd stays open until its thread has been joined, so the thread never
 * sees it closed or reused. */
#include "shim.h"
#include "ssi_proto.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define X32_SYSCALL_BIT 0x40000000u
/* A responder needs little stack: RECV/SEND buffers and, on cold paths, one log line. */
#define RESPONDER_STACK (64 * 1024)

/* Which trapped syscalls the table lets the shim decide (column "decide" == shim). Built at compile
 * time from syscalls.tsv; an x86_64 number >= 512 would be an x32 number and fails the build here. */
static const uint8_t shim_decides[512] = {
#define SSI_SYSCALL(name, nr, by_shim) [nr] = (by_shim),
#include "ssi_syscalls.h"
#undef SSI_SYSCALL
};

/* Node-internal tasks whose tids fell inside the node's range: threads the daemon JVM (and the shim)
 * created after the pid cursor moved into the range. One byte per pid of the range, set for such tids;
 * rebuilt by the main thread every watchdog tick (shim_refresh_internal_tids) and read lock-free by the
 * responders, so a thread born since the last tick is unprotected for at most one tick. */
static uint8_t internal_tid[1 << SSI_PID_SHIFT];

/* The thread group a task belongs to, from /proc/<tid>/status (also for non-leader tids, which /proc
 * does not list but serves); -1 if it is gone. */
long shim_tgid_of(long tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/status", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    const char *t = strstr(buf, "\nTgid:");
    return t ? strtol(t + 6, NULL, 10) : -1;
}

/* Only marked pids pay for the /proc check, and it makes a stale mark harmless: a tid the daemon freed
 * may be handed to a new cluster process before the next refresh (the watchdog rewinds the cursor to
 * the bottom of the range), and that process must not be told it does not exist. */
static int is_internal_tid(int node, long pid)
{
    if (node != shim_state.node || shim_state.pid_base == 0)
        return 0;
    uint8_t *mark = &internal_tid[pid - shim_state.pid_base];
    if (!__atomic_load_n(mark, __ATOMIC_RELAXED))
        return 0;
    long tgid = shim_tgid_of(pid);
    if (tgid == 1 || tgid == shim_state.daemon_pid)
        return 1;
    __atomic_store_n(mark, 0, __ATOMIC_RELAXED);
    return 0;
}

/* Where a positive pid (or tid, tgid, process group id) lives. Pid 1, the node init, is every
 * orphan's parent (getppid() says 1), so it stays visible: the kernel already drops signals a node
 * process sends it, and the init ignores SIGTERM/SIGINT from inside. The rest below 1 << 14, and the
 * daemon's threads inside the range, are node-internal: no cluster process, so a trapped program must
 * not reach them and is told they do not exist, as for any pid that names nobody. */
static inline int decide_pid(int node, long pid)
{
    if (pid == 1)
        return SHIM_CONTINUE;
    if (pid < (1L << SSI_PID_SHIFT))
        return -ESRCH;
    if ((pid >> SSI_PID_SHIFT) != node)
        return SHIM_ASK_DAEMON;
    return is_internal_tid(node, pid) ? -ESRCH : SHIM_CONTINUE;
}

/* Marks the tids of one node-internal process that lie in the node's range. */
static void mark_tasks(pid_t pid, uint8_t *marks)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long tid = strtol(e->d_name, NULL, 10);
        if (tid >= shim_state.pid_base && tid < shim_state.pid_limit)
            marks[tid - shim_state.pid_base] = 1;
    }
    closedir(d);
}

void shim_refresh_internal_tids(void)
{
    static uint8_t marks[1 << SSI_PID_SHIFT];
    if (shim_state.pid_base == 0)
        return;
    memset(marks, 0, sizeof marks);
    mark_tasks(1, marks);
    if (shim_state.daemon_pid > 0)
        mark_tasks(shim_state.daemon_pid, marks);
    for (size_t i = 0; i < sizeof marks; i++) {
        if (__atomic_load_n(&internal_tid[i], __ATOMIC_RELAXED) != marks[i])
            __atomic_store_n(&internal_tid[i], marks[i], __ATOMIC_RELAXED);
    }
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

/* ---- listeners: id = generation << 20 | slot, so a late reply for a reused slot misses ---- */

#define SLOT_BITS 20
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define GEN_MASK ((1u << (32 - SLOT_BITS)) - 1)

/* Allocated per listener, so its address stays put while the slot table grows: the responder thread
 * holds a pointer to it. fd and id never change while the thread runs; next_ended is under q_lock. */
struct listener {
    int fd;
    uint32_t id;
    int running;                 /* main thread: a responder was started and not joined yet */
    pthread_t thread;
    struct listener *next_ended; /* q_lock: link in the ended list */
};

/* Main thread only. */
struct slot {
    struct listener *l;  /* NULL: free */
    uint32_t id;         /* the last id given out for this slot (its generation survives reuse) */
    uint32_t next_free;  /* free-list link while free */
};
static struct slot *slots;
static uint32_t nslots, slots_cap, free_head = UINT32_MAX;

/* ---- hand-over from the responders to the main thread ---- */

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ssi_notif *q_items;    /* q_lock: NOTIF frames (payloads) waiting for the main thread */
static size_t q_len, q_cap;          /* q_lock */
static struct listener *q_ended;     /* q_lock: listeners whose responder has finished */
static int q_signalled;              /* q_lock: the eventfd was written and not drained since */
static int q_efd = -1;
/* Main thread only: the batch being worked on (swapped with q_items, so both keep their capacity). */
static struct ssi_notif *work_items;
static size_t work_cap;

/* The caller released q_lock; wake says whether it must ring the main loop. */
static void ring(int wake)
{
    if (!wake)
        return;
    uint64_t one = 1;
    ssize_t w = write(q_efd, &one, sizeof one);
    (void)w; /* cannot fail short of a counter at 2^64 - 1 */
}

int shim_notify_open(void)
{
    q_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q_efd < 0)
        return -errno;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SHIM_EV(SHIM_SRC_NOTIFY, 0) };
    if (epoll_ctl(shim_state.epfd, EPOLL_CTL_ADD, q_efd, &ev) < 0)
        return -errno;
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

/* Responder thread: the trap needs the daemon. Queued for the main thread, which owns the link. */
static void hand_over(const struct listener *l, const struct seccomp_notif *n)
{
    struct ssi_notif m;
    memset(&m, 0, sizeof m);
    m.listener_id = l->id;
    m.notif_id = n->id;
    m.pid = (int32_t)n->pid;
    m.nr = n->data.nr;
    m.arch = n->data.arch;
    m.ip = n->data.instruction_pointer;
    memcpy(m.args, n->data.args, sizeof m.args);
    pthread_mutex_lock(&q_lock);
    if (q_len == q_cap) {
        size_t ncap = q_cap ? q_cap * 2 : 64;
        struct ssi_notif *grown = realloc(q_items, ncap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&q_lock);
            answer(l->fd, n->id, -ENOMEM);
            return;
        }
        q_items = grown;
        q_cap = ncap;
    }
    q_items[q_len++] = m;
    int wake = !q_signalled;
    q_signalled = 1;
    pthread_mutex_unlock(&q_lock);
    ring(wake);
}

/* Responder thread, after RECV failed with ENOENT: the trapped task died before we took its
 * notification, or no task uses the filter any more (POLLHUP), which ends the listener. */
static int orphaned(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL));
}

static void *responder(void *arg)
{
    struct listener *l = arg;
    const int fd = l->fd, node = shim_state.node;
    char name[32]; /* the kernel keeps the first 15 bytes: slots past 99999 share a prefix */
    snprintf(name, sizeof name, "ssi-notif-%u", l->id & SLOT_MASK);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    int failures = 0;
    for (;;) {
        struct seccomp_notif n;
        memset(&n, 0, sizeof n); /* RECV refuses a buffer that is not zeroed */
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            if (e == ENOENT) {
                if (orphaned(fd))
                    break;
                continue;
            }
            /* Nothing else is expected; do not spin on it. */
            if (failures++ < 3)
                shim_log("NOTIF_RECV on listener %u failed: %s", l->id, strerror(e));
            if (orphaned(fd))
                break;
            poll(NULL, 0, 100);
            continue;
        }
        int d = shim_decide_local(node, n.data.arch, n.data.nr, n.data.args[0], n.data.args[1]);
        if (d == SHIM_CONTINUE) {
            struct seccomp_notif_resp r = { .id = n.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
            if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &r) < 0 && errno != ENOENT)
                shim_log("NOTIF_SEND on listener %u failed: %s", l->id, strerror(errno));
        } else if (d < 0) {
            answer(fd, n.id, d);
        } else {
            hand_over(l, &n);
        }
    }
    /* The last touch of l: once q_lock is released the main thread may join us and free it. */
    pthread_mutex_lock(&q_lock);
    l->next_ended = q_ended;
    q_ended = l;
    int wake = !q_signalled;
    q_signalled = 1;
    pthread_mutex_unlock(&q_lock);
    ring(wake);
    return NULL;
}

/* ---- the slot table (main thread) ---- */

int shim_listener_add(int fd, uint32_t *id_out)
{
    struct listener *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    uint32_t slot;
    if (free_head != UINT32_MAX) {
        slot = free_head;
        free_head = slots[slot].next_free;
    } else {
        if (nslots == slots_cap) {
            uint32_t ncap = slots_cap ? slots_cap * 2 : 64;
            struct slot *n = ncap > SLOT_MASK + 1 ? NULL : realloc(slots, ncap * sizeof *n);
            if (!n) {
                free(l);
                return ncap > SLOT_MASK + 1 ? -EMFILE : -ENOMEM;
            }
            slots = n;
            slots_cap = ncap;
        }
        slot = nslots++;
        slots[slot].id = 0;
    }
    uint32_t gen = ((slots[slot].id >> SLOT_BITS) + 1) & GEN_MASK;
    uint32_t id = (gen << SLOT_BITS) | slot;
    l->fd = fd;
    l->id = id;
    slots[slot].l = l;
    slots[slot].id = id;
    *id_out = id;
    return 0;
}

static struct listener *listener_of(uint32_t id)
{
    uint32_t slot = id & SLOT_MASK;
    if (slot >= nslots || slots[slot].id != id)
        return NULL;
    return slots[slot].l;
}

int shim_listener_start(uint32_t id)
{
    struct listener *l = listener_of(id);
    if (!l)
        return -ENOENT;
    if (l->running)
        return 0;
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc)
        return -rc;
    pthread_attr_setstacksize(&attr, RESPONDER_STACK);
    /* Created with every signal blocked (the new thread inherits the mask): the main thread reads its
     * signals from a signalfd, and a signal the kernel chose to deliver to a responder would be lost
     * to it (and would make its RECV fail with EINTR). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&l->thread, &attr, responder, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc)
        return -rc;
    l->running = 1;
    return 0;
}

/* ---- notifications waiting for the daemon's NOTIF_REPLY (main thread only) ---- */

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
    if (l->running) {
        /* Only a responder that has ended may be removed (it is joined first): a running one still
         * uses the fd. Nothing calls this for a running one; refuse rather than close under it. */
        shim_log("listener %u still has its responder running; not removed", id);
        return;
    }
    close(l->fd);
    free(l);
    for (size_t i = 0; i < npend;) {
        if (pend[i].listener_id == id)
            pend[i] = pend[--npend];
        else
            i++;
    }
    uint32_t slot = id & SLOT_MASK;
    slots[slot].l = NULL;
    slots[slot].next_free = free_head;
    free_head = slot;
}

void shim_listener_end(uint32_t id)
{
    if (!listener_of(id))
        return;
    shim_listener_remove(id);
    if (shim_link_up()) {
        uint32_t lid = id;
        shim_link_send(SSI_LISTENER_GONE, &lid, sizeof lid);
    }
}

/* The cold half of a trap: the daemon decides. */
static void forward(const struct ssi_notif *m)
{
    static int warned;
    /* Its responder queued this before it ended, and the listener is removed only once that end has
     * been seen, after this batch: it is still there. */
    struct listener *l = listener_of(m->listener_id);
    if (!l)
        return;
    if (!shim_link_up()) {
        /* What the kernel itself answers when a filter's supervisor is gone. */
        if (!warned++)
            shim_log("no daemon linked: failing trapped syscall %d of pid %d with ENOSYS (logged once)",
                     m->nr, m->pid);
        answer(l->fd, m->notif_id, -ENOSYS);
        return;
    }
    if (pending_add(m->listener_id, m->notif_id) < 0) {
        answer(l->fd, m->notif_id, -ENOMEM);
        return;
    }
    /* On failure the link is closed, which answers every pending notification, this one included. */
    shim_link_send(SSI_NOTIF, m, sizeof *m);
}

void shim_notify_event(void)
{
    uint64_t v;
    ssize_t r = read(q_efd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&q_lock);
    struct ssi_notif *batch = q_items;
    size_t n = q_len, cap = q_cap;
    q_items = work_items;
    q_cap = work_cap;
    q_len = 0;
    struct listener *ended = q_ended;
    q_ended = NULL;
    q_signalled = 0;
    pthread_mutex_unlock(&q_lock);
    work_items = batch;
    work_cap = cap;

    /* Forwards first: each came before its own listener's end. */
    for (size_t i = 0; i < n; i++)
        forward(&batch[i]);
    while (ended) {
        struct listener *next = ended->next_ended;
        /* It has left its loop and only returns now: the join waits for no more than that. */
        pthread_join(ended->thread, NULL);
        ended->running = 0;
        shim_listener_end(ended->id);
        ended = next;
    }
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
