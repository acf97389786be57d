/* ptrace services the shim performs for the daemon on stopped tracees (ptrace_ops.h; link protocol
 * 0x0010-0x001D in docs/ARCHITECTURE.md).
 *
 * Owner: the shim's single thread. It is the tracer of every tid in the table below, and ptrace is per
 * tracer thread, so nothing here is locked and nothing may be called from another thread.
 *
 * Invariant: between two pt_* calls every attached tid sits in a ptrace stop (the interrupt stop of
 * pt_attach, or the SIGTRAP stop left by the last injected syscall), so no wait status is pending for it
 * unless the tracee died.
 *
 * Signals. One that reaches a tracee before the interrupt stop of pt_attach is delivered as if it had come
 * before the attach. One that is dequeued while we hold the tracee (an injected syscall resumes it for a
 * single step, and the kernel first dequeues every pending unblocked signal, each with a
 * signal-delivery-stop) cannot run its handler in the middle of an injection: it is held back with its
 * whole siginfo (PTRACE_GETSIGINFO) and the queue it came from, in order, at most SSI_HELD_SIGNALS_MAX
 * per tracee (more are counted as lost, logged, and GETDEFERRED fails with EOVERFLOW), and queued again
 * just before PTRACE_DETACH. The queue: the kernel empties a thread's own queue before the process's
 * shared one, so a held signal came from the thread's queue when it was there in a look at that queue
 * (PTRACE_PEEKSIGINFO) taken right before the step. Queued again with rt_tgsigqueueinfo (thread) or
 * rt_sigqueueinfo (process) and its own siginfo when the kernel lets another task send that si_code
 * (negative and not SI_TKILL: sigqueue, POSIX timers, mq_notify, AIO); tgkill/kill of the number
 * otherwise (the siginfo then names the shim as the sender). */
#include "ptrace_ops.h"
#include "shim.h"
#include "ssi_proto.h"
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/sched.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

/* -4095..-1 in a syscall's raw return is an errno, anything else a result (mmap can return high
 * addresses, so "negative" is not the test). */
#define RAW_IS_ERR(v) ((uint64_t)(v) >= (uint64_t)-4095)

/* Kernel-internal restart codes a syscall returns when a signal interrupts it (never seen by user
 * code, but an injected syscall can be caught with one in rax). */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

struct tracee {
    pid_t tid;
    struct pt_held_sig *held; /* suppressed while we held the tracee, queued again at detach, oldest first */
    uint32_t n_held, cap_held;
    uint32_t lost;            /* held-back signals beyond SSI_HELD_SIGNALS_MAX: dropped (and logged) */
    uint64_t syscall_insn;    /* a `syscall` (0f 05) in the tracee's vDSO; 0 = look it up again */
};

/* The tracee's own queue as seen right before the current single step (see the header). */
#define SNAP_MAX 256
static siginfo_t snap[SNAP_MAX];
static int n_snap;

static struct tracee *tracees;
static size_t n_tracees, cap_tracees;

/* Wait statuses the shim's reaper took for traced tids, oldest first. */
struct stashed_status { pid_t tid; int status; };
static struct stashed_status *stash;
static size_t n_stash, cap_stash;

static struct tracee *find_tracee(pid_t tid)
{
    for (size_t i = 0; i < n_tracees; i++)
        if (tracees[i].tid == tid)
            return &tracees[i];
    return NULL;
}

static void purge_stash(pid_t tid)
{
    size_t j = 0;
    for (size_t i = 0; i < n_stash; i++)
        if (stash[i].tid != tid)
            stash[j++] = stash[i];
    n_stash = j;
}

static int take_stashed(pid_t tid, int *status)
{
    for (size_t i = 0; i < n_stash; i++) {
        if (stash[i].tid == tid) {
            *status = stash[i].status;
            memmove(&stash[i], &stash[i + 1], (n_stash - i - 1) * sizeof *stash);
            n_stash--;
            return 1;
        }
    }
    return 0;
}

static struct tracee *add_tracee(pid_t tid)
{
    if (n_tracees == cap_tracees) {
        size_t cap = cap_tracees ? cap_tracees * 2 : 16;
        struct tracee *t = realloc(tracees, cap * sizeof *t);
        if (!t)
            return NULL;
        tracees = t;
        cap_tracees = cap;
    }
    struct tracee *t = &tracees[n_tracees++];
    memset(t, 0, sizeof *t);
    t->tid = tid;
    return t;
}

/* Pointers into the table die here: callers must not touch their struct tracee * afterwards. */
static void drop_tracee(pid_t tid)
{
    struct tracee *t = find_tracee(tid);
    if (t) {
        free(t->held);
        *t = tracees[n_tracees - 1];
        n_tracees--;
    }
    purge_stash(tid);
}

int pt_is_traced(pid_t tid)
{
    return find_tracee(tid) != NULL;
}

void pt_note_wait_status(pid_t tid, int status)
{
    if (n_stash == cap_stash) {
        size_t cap = cap_stash ? cap_stash * 2 : 16;
        struct stashed_status *s = realloc(stash, cap * sizeof *s);
        if (!s)
            return; /* out of memory: the waiter would block; nothing better to do without a status */
        stash = s;
        cap_stash = cap;
    }
    stash[n_stash++] = (struct stashed_status){ tid, status };
}

/* The next wait status of tid: from the stash, else from waitpid. SIGCHLD is blocked around the
 * blocking wait so a reaper running as a signal handler cannot take the status between our look at
 * the stash and waitpid (we would then block forever). */
static int wait_status(pid_t tid, int *status)
{
    if (take_stashed(tid, status))
        return 0;
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    int rc = 0;
    if (!take_stashed(tid, status)) {
        for (;;) {
            pid_t r = waitpid(tid, status, __WALL);
            if (r == tid)
                break;
            if (r < 0 && errno == EINTR)
                continue;
            rc = r < 0 ? -errno : -ECHILD;
            break;
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* ptrace said ESRCH: either the tracee died (forget it) or it is not in a stop, which would break our
 * invariant. Either way the caller reports -ESRCH. */
static void forget_if_dead(pid_t tid)
{
    int st;
    for (size_t i = 0; i < n_stash; i++) {
        st = stash[i].status;
        if (stash[i].tid == tid && (WIFEXITED(st) || WIFSIGNALED(st))) {
            drop_tracee(tid);
            return;
        }
    }
    pid_t r = waitpid(tid, &st, __WALL | WNOHANG);
    if ((r == tid && (WIFEXITED(st) || WIFSIGNALED(st))) || (r < 0 && errno == ECHILD))
        drop_tracee(tid);
    else if (r == tid)
        pt_note_wait_status(tid, st);
}

/* Is a (a signal just dequeued) the same queue entry as b (seen queued before)? A POSIX timer's entry
 * is updated at its dequeue (its overrun count), so it is known by its timer id. */
static int same_entry(const siginfo_t *a, const siginfo_t *b)
{
    if (a->si_signo != b->si_signo || a->si_code != b->si_code)
        return 0;
    if (a->si_code == SI_TIMER)
        return a->si_timerid == b->si_timerid;
    return memcmp(a, b, sizeof *a) == 0;
}

/* Looks at tid's own queue before a single step (the tracee is stopped). */
static void snapshot_own_queue(pid_t tid)
{
    n_snap = 0;
    while (n_snap < SNAP_MAX) {
        int want = SNAP_MAX - n_snap < 64 ? SNAP_MAX - n_snap : 64;
        struct { uint64_t off; uint32_t flags; int32_t nr; } args = { (uint64_t)n_snap, 0, want };
        long n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, &snap[n_snap]);
        if (n <= 0)
            break;
        n_snap += (int)n;
        if (n < want)
            break;
    }
}

/* tid is in a signal-delivery-stop for sig: keep the signal (it will not be delivered now). */
static void hold_signal(pid_t tid, int sig)
{
    struct tracee *t = find_tracee(tid);
    if (!t)
        return;
    struct pt_held_sig h;
    memset(&h, 0, sizeof h);
    if (ptrace(PTRACE_GETSIGINFO, tid, 0, &h.si) < 0 || h.si.si_signo != sig) {
        memset(&h.si, 0, sizeof h.si);
        h.si.si_signo = sig;
        h.si.si_code = SI_KERNEL;
    }
    h.shared = 1;
    for (int i = 0; i < n_snap; i++) {
        if (same_entry(&h.si, &snap[i])) {
            h.shared = 0;
            memmove(&snap[i], &snap[i + 1], (size_t)(n_snap - i - 1) * sizeof *snap);
            n_snap--;
            break;
        }
    }
    if (t->n_held == SSI_HELD_SIGNALS_MAX) {
        t->lost++;
        return;
    }
    if (t->n_held == t->cap_held) {
        uint32_t cap = t->cap_held ? t->cap_held * 2 : 8;
        struct pt_held_sig *a = realloc(t->held, cap * sizeof *a);
        if (!a) {
            t->lost++;
            return;
        }
        t->held = a;
        t->cap_held = cap;
    }
    t->held[t->n_held++] = h;
}

/* Waits until the interrupt of pt_attach is reported (PTRACE_EVENT_STOP), delivering the signals whose
 * delivery stops come first. */
static int wait_interrupt_stop(pid_t tid)
{
    for (;;) {
        int st, rc = wait_status(tid, &st);
        if (rc)
            return rc;
        if (!WIFSTOPPED(st))
            return -ESRCH;
        if (((st >> 16) & 0xff) == PTRACE_EVENT_STOP)
            return 0;
        /* A signal-delivery-stop ends the pending interrupt (any ptrace stop does): let the signal be
         * delivered, as it would have been an instant earlier without us, and interrupt again. */
        if (ptrace(PTRACE_CONT, tid, 0, WSTOPSIG(st)) < 0 || ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
            return -errno;
    }
}

int pt_attach(pid_t tid)
{
    if (tid <= 0)
        return -EINVAL;
    /* A second attach would mean two owners of one tracee in the daemon; refuse instead of pretending. */
    if (find_tracee(tid))
        return -EALREADY;
    purge_stash(tid);
    /* In the table before the seize, so a failure to grow it cannot leave a seized tracee behind. */
    if (!add_tracee(tid))
        return -ENOMEM;
    /* No options: PTRACE_O_EXITKILL would kill the node's processes with the shim's thread, and the
     * event stops of the other options would need handling we do not want. */
    int rc = 0;
    if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
        rc = -errno;
        drop_tracee(tid);
        return rc;
    }
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
        rc = -errno;
    if (!rc)
        rc = wait_interrupt_stop(tid);
    if (rc) {
        /* PTRACE_DETACH needs a stop; if the tracee died there is nothing to detach anyway. */
        if (rc != -ESRCH && rc != -ECHILD)
            ptrace(PTRACE_DETACH, tid, 0, 0);
        drop_tracee(tid);
        return rc == -ECHILD ? -ESRCH : rc;
    }
    return 0;
}

/* Queues the held-back signals of t again, oldest first, in the queue each came from (see the header). */
static void requeue_held(struct tracee *t)
{
    pid_t tid = t->tid, tgid = (pid_t)shim_tgid_of(tid);
    if (tgid <= 0)
        tgid = tid;
    for (uint32_t i = 0; i < t->n_held; i++) {
        siginfo_t *si = &t->held[i].si;
        int sig = si->si_signo, shared = t->held[i].shared;
        long rc;
        if (si->si_code < 0 && si->si_code != SI_TKILL)
            rc = shared ? syscall(SYS_rt_sigqueueinfo, tgid, sig, si) : syscall(SYS_rt_tgsigqueueinfo, tgid, tid, sig, si);
        else
            rc = shared ? kill(tgid, sig) : syscall(SYS_tgkill, tgid, tid, sig);
        if (rc < 0)
            shim_log("could not give signal %d back to %s %d after holding it: %s", sig, shared ? "process" : "thread",
                     shared ? (int)tgid : (int)tid, strerror(errno));
    }
    if (t->lost)
        shim_log("%u signal(s) that reached thread %d while it was held were dropped: more than %d arrived", t->lost,
                 (int)tid, SSI_HELD_SIGNALS_MAX);
    t->n_held = 0;
    t->lost = 0;
}

int pt_detach(pid_t tid)
{
    struct tracee *t = find_tracee(tid);
    if (!t)
        return -ESRCH;
    if (t->n_held || t->lost) {
        /* Signals that came after the held ones and are still queued would be delivered before them once
         * they are queued again behind: one more step (a getpid) takes those too, keeping the order. */
        int64_t ret;
        const uint64_t none[6] = { 0 };
        pt_inject_syscall(tid, SYS_getpid, none, &ret);
        t = find_tracee(tid);
        if (!t)
            return -ESRCH;
        /* While ptrace-stopped the tracee cannot take these; they are delivered once it runs untraced. */
        requeue_held(t);
    }
    int rc = ptrace(PTRACE_DETACH, tid, 0, 0) < 0 ? -errno : 0;
    drop_tracee(tid);
    return rc;
}

int pt_getregs(pid_t tid, struct user_regs_struct *regs)
{
    if (ptrace(PTRACE_GETREGS, tid, 0, regs) < 0) {
        int rc = -errno;
        if (rc == -ESRCH)
            forget_if_dead(tid);
        return rc;
    }
    return 0;
}

int pt_setregs(pid_t tid, const struct user_regs_struct *regs)
{
    if (ptrace(PTRACE_SETREGS, tid, 0, regs) < 0) {
        int rc = -errno;
        if (rc == -ESRCH)
            forget_if_dead(tid);
        return rc;
    }
    return 0;
}

int pt_getxstate(pid_t tid, void *buf, size_t cap, size_t *len_out)
{
    struct iovec iov = { buf, cap };
    if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) < 0)
        return -errno;
    *len_out = iov.iov_len;
    return 0;
}

int pt_setxstate(pid_t tid, const void *buf, size_t len)
{
    struct iovec iov = { (void *)buf, len };
    return ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &iov) < 0 ? -errno : 0;
}

int pt_readmem(pid_t pid, uint64_t addr, void *buf, size_t len)
{
    if (len == 0)
        return 0;
    struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EFAULT;
}

/* Writes through /proc/pid/mem, which (like a debugger's breakpoint) ignores the page protection and
 * copies-on-write into read-only private mappings such as program text. */
static int write_proc_mem(pid_t pid, uint64_t addr, const char *p, size_t len)
{
    char path[32];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    int rc = 0;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)addr);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = -EFAULT; /* the kernel says EIO for an unmapped address */
            break;
        }
        p += w;
        addr += (uint64_t)w;
        len -= (size_t)w;
    }
    close(fd);
    return rc;
}

int pt_writemem(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    struct iovec local = { (void *)buf, len }, remote = { (void *)(uintptr_t)addr, len };
    ssize_t n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
    if (n < 0 && errno != EFAULT)
        return -errno;
    size_t done = n < 0 ? 0 : (size_t)n;
    if (done == len)
        return 0;
    /* process_vm_writev stops at the first page it may not write (read-only or unmapped). */
    return write_proc_mem(pid, addr + done, (const char *)buf + done, len - done);
}

int pt_writemem_fd(pid_t pid, uint64_t addr, int fd, uint64_t off, uint64_t len)
{
    if (len == 0)
        return 0;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || off > (uint64_t)st.st_size || len > (uint64_t)st.st_size - off)
        return -EINVAL;
    /* MAP_POPULATE maps the page-cache pages up front: process_vm_writev then copies without faulting
     * on our side. The skew keeps the mapping's file offset page aligned. */
    uint64_t skew = off & 4095;
    void *map = mmap(NULL, len + skew, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, (off_t)(off - skew));
    if (map == MAP_FAILED)
        return -errno;
    int rc = pt_writemem(pid, addr, (const char *)map + skew, len);
    munmap(map, len + skew);
    return rc;
}

/* Finds a `syscall` instruction in the tracee's vDSO: executable in every process, shared by all its
 * threads and never written, so jumping there needs no patching (patching the text at rip would race
 * with the tracee's other threads running the same code). */
static uint64_t find_vdso_syscall(pid_t tid)
{
    char path[32], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned long lo = 0, hi = 0;
    char perms[8] = "";
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && strchr(perms, 'x')) {
            found = 1;
            break;
        }
    }
    fclose(f);
    if (!found || hi <= lo || hi - lo > (1u << 20))
        return 0;
    size_t size = hi - lo;
    unsigned char *text = malloc(size);
    if (!text)
        return 0;
    uint64_t at = 0;
    if (pt_readmem(tid, lo, text, size) == 0) {
        for (size_t i = 0; i + 1 < size; i++) {
            if (text[i] == 0x0f && text[i + 1] == 0x05) {
                at = lo + i;
                break;
            }
        }
    }
    free(text);
    return at;
}

static int is_syscall_insn(pid_t tid, uint64_t addr)
{
    unsigned char b[2];
    return pt_readmem(tid, addr, b, 2) == 0 && b[0] == 0x0f && b[1] == 0x05;
}

/* Syscalls that can move or unmap the vDSO, after which the cached address may be stale. */
static int may_remap(long nr)
{
    switch (nr) {
    case SYS_mmap: case SYS_mprotect: case SYS_munmap: case SYS_mremap: case SYS_arch_prctl:
    case SYS_remap_file_pages: case SYS_shmat: case SYS_pkey_mprotect: case SYS_execve: case SYS_execveat:
        return 1;
    default:
        return 0;
    }
}

/* Singlesteps the tracee over the syscall instruction it is parked on. Signals that show up first are
 * held back (see the header); a group-stop or stray interrupt stop is stepped through. */
/* Resumes tid with request (PTRACE_SINGLESTEP, PTRACE_CONT), its own signal queue looked at first (see
 * hold_signal), and waits for its next stop into *st; -errno, or -ESRCH when it is gone. */
static int resume_and_wait(pid_t tid, int request, int *st)
{
    snapshot_own_queue(tid);
    if (ptrace(request, tid, 0, 0) < 0) {
        int rc = -errno;
        if (rc == -ESRCH)
            forget_if_dead(tid);
        return rc;
    }
    int rc = wait_status(tid, st);
    if (rc || !WIFSTOPPED(*st)) {
        drop_tracee(tid);
        return -ESRCH;
    }
    return 0;
}

static int step_over_syscall(pid_t tid)
{
    for (;;) {
        int st, rc = resume_and_wait(tid, PTRACE_SINGLESTEP, &st);
        if (rc)
            return rc;
        int sig = WSTOPSIG(st), event = (st >> 16) & 0xff;
        if (event != 0)
            continue;
        if (sig == SIGTRAP) {
            siginfo_t si;
            /* The step trap is kernel generated (si_code > 0); a SIGTRAP from kill() is not ours. */
            if (ptrace(PTRACE_GETSIGINFO, tid, 0, &si) == 0 && si.si_code > 0)
                return 0;
        }
        hold_signal(tid, sig);
    }
}

/* Where the injected syscall instruction lives for this call, and what we must undo afterwards. */
struct insn_site {
    uint64_t addr;
    int patched;            /* we wrote 0f 05 over orig[] at addr */
    unsigned char orig[2];
};

static int pick_syscall_site(struct tracee *t, const struct user_regs_struct *regs, struct insn_site *site)
{
    pid_t tid = t->tid;
    site->patched = 0;
    if (t->syscall_insn && is_syscall_insn(tid, t->syscall_insn)) {
        site->addr = t->syscall_insn;
        return 0;
    }
    t->syscall_insn = find_vdso_syscall(tid);
    if (t->syscall_insn) {
        site->addr = t->syscall_insn;
        return 0;
    }
    /* No vDSO (e.g. a restore stub that unmapped it). A tracee stopped in a syscall has one right
     * before rip; only trust it inside rip's page, which is known to be executable. */
    uint64_t prev = regs->rip - 2;
    if ((prev >> 12) == (regs->rip >> 12) && is_syscall_insn(tid, prev)) {
        site->addr = prev;
        return 0;
    }
    /* Last resort: patch the text at rip. Other threads of the tracee executing it meanwhile would
     * run a stray syscall, so this is only safe for single-threaded tracees (restore stubs). */
    static const unsigned char insn[2] = { 0x0f, 0x05 };
    int rc = pt_readmem(tid, regs->rip, site->orig, 2);
    if (!rc)
        rc = pt_writemem(tid, regs->rip, insn, 2);
    if (rc)
        return rc;
    site->addr = regs->rip;
    site->patched = 1;
    return 0;
}

int pt_inject_syscall(pid_t tid, long nr, const uint64_t args[6], int64_t *ret_out)
{
    struct tracee *t = find_tracee(tid);
    if (!t)
        return -ESRCH;
    struct user_regs_struct saved, r;
    int rc = pt_getregs(tid, &saved);
    if (rc)
        return rc;
    struct insn_site site;
    rc = pick_syscall_site(t, &saved, &site);
    if (rc)
        return rc;
    if (may_remap(nr))
        t->syscall_insn = 0;

    /* An injected syscall that blocks can be interrupted by a signal (it then reports a restart code);
     * the signal is suppressed at its stop, so running the call again finishes it. */
    for (int attempt = 0; attempt < 8; attempt++) {
        r = saved;
        r.rip = site.addr;
        r.rax = (unsigned long long)nr;
        /* orig_rax -1 ("not in a syscall"): the tracee may be stopped inside its own syscall, and on
         * resume the kernel's restart check looks at orig_rax and rax. rax = nr is no restart code, so
         * that check already passes; this keeps it from depending on that. */
        r.orig_rax = (unsigned long long)-1;
        r.rdi = args[0];
        r.rsi = args[1];
        r.rdx = args[2];
        r.r10 = args[3];
        r.r8 = args[4];
        r.r9 = args[5];
        rc = pt_setregs(tid, &r);
        if (!rc)
            rc = step_over_syscall(tid);
        if (!rc)
            rc = pt_getregs(tid, &r);
        if (rc)
            break;
        int64_t ret = (int64_t)r.rax;
        if (ret != -ERESTARTSYS && ret != -ERESTARTNOINTR && ret != -ERESTARTNOHAND && ret != -ERESTART_RESTARTBLOCK) {
            *ret_out = ret;
            break;
        }
        rc = -EINTR;
    }

    if (rc == -ESRCH && !find_tracee(tid))
        return rc; /* died: nothing to restore */
    /* Restoring rip/rax/orig_rax as they were lets the kernel restart (or fail with EINTR) the
     * tracee's own interrupted syscall exactly as after a signal it did not handle. */
    int rrc = pt_setregs(tid, &saved);
    if (site.patched) {
        int prc = pt_writemem(tid, site.addr, site.orig, 2);
        if (!rrc)
            rrc = prc;
    }
    return rc ? rc : rrc;
}

static int inject6(pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                   uint64_t a5, int64_t *ret);

/* The loop pt_inject_many runs in the tracee: r12 points at a table of 64-byte entries {nr, six
 * arguments, return}, r13 holds their count; each entry's syscall runs and its return is stored, then
 * int3 hands the thread back. No stack, no absolute address: the bytes run wherever they are copied. */
extern const unsigned char ssi_many_loop[], ssi_many_loop_end[];
__asm__(".pushsection .rodata\n"
        ".globl ssi_many_loop\n"
        ".globl ssi_many_loop_end\n"
        "ssi_many_loop:\n"
        "1: movq 0(%r12), %rax\n"
        "   movq 8(%r12), %rdi\n"
        "   movq 16(%r12), %rsi\n"
        "   movq 24(%r12), %rdx\n"
        "   movq 32(%r12), %r10\n"
        "   movq 40(%r12), %r8\n"
        "   movq 48(%r12), %r9\n"
        "   syscall\n"
        "   movq %rax, 56(%r12)\n"
        "   addq $64, %r12\n"
        "   decq %r13\n"
        "   jnz 1b\n"
        "   int3\n"
        "ssi_many_loop_end:\n"
        ".popsection\n");

/* Lets the tracee run from regs until the loop's int3: signals that show up are held back as in
 * step_over_syscall; a fault of the loop itself (kernel-made SIGSEGV/SIGBUS/SIGILL) is -EFAULT. */
static int run_to_trap(pid_t tid, uint64_t trap_end)
{
    int sig = 0;
    for (;;) {
        int st, rc = resume_and_wait(tid, PTRACE_CONT, &st);
        if (rc)
            return rc;
        int event = (st >> 16) & 0xff;
        sig = WSTOPSIG(st);
        if (event != 0)
            continue;
        siginfo_t si;
        int kernel = ptrace(PTRACE_GETSIGINFO, tid, 0, &si) == 0 && si.si_code > 0;
        if (sig == SIGTRAP && kernel) {
            struct user_regs_struct r;
            if ((rc = pt_getregs(tid, &r)))
                return rc;
            if (r.rip == trap_end)
                return 0;
            return -EFAULT;
        }
        if (kernel && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE))
            return -EFAULT;
        hold_signal(tid, sig);
    }
}

int pt_inject_many(pid_t tid, uint32_t n, uint64_t at, const int64_t *nrs, const uint64_t (*args)[6], int64_t *rets)
{
    if (n == 0)
        return 0;
    /* bit 0: the caller mapped the area at at (code page executable, table pages writable) */
    int mapped = (int)(at & SSI_INJECT_MANY_MAPPED);
    at &= ~(uint64_t)SSI_INJECT_MANY_MAPPED;
    if ((at & 4095) || (mapped && !at))
        return -EINVAL;
    if (!find_tracee(tid))
        return -ESRCH;
    const size_t page = 4096, code = (size_t)(ssi_many_loop_end - ssi_many_loop);
    size_t size = page + (((size_t)n * 64 + page - 1) & ~(page - 1));
    int64_t addr = (int64_t)at;
    int rc = 0;
    /* at a place the caller keeps free for it, when it gave one: its calls may remap everything else */
    if (!mapped)
        rc = inject6(tid, SYS_mmap, at, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED_NOREPLACE : 0), (uint64_t)-1, 0, &addr);
    if (rc)
        return rc;
    if (addr < 0 && addr >= -4095)
        goto one_by_one;
    if (at && (uint64_t)addr != at) { /* a kernel without MAP_FIXED_NOREPLACE took it as a hint */
        if ((rc = inject6(tid, SYS_munmap, (uint64_t)addr, size, 0, 0, 0, 0, &(int64_t){0})))
            return rc;
        goto one_by_one;
    }
    uint64_t *table = calloc(n, 64);
    if (!table) {
        inject6(tid, SYS_munmap, (uint64_t)addr, size, 0, 0, 0, 0, &(int64_t){0});
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        table[8 * i] = (uint64_t)nrs[i];
        memcpy(&table[8 * i + 1], args[i], 6 * sizeof(uint64_t));
    }
    rc = pt_writemem(tid, (uint64_t)addr, ssi_many_loop, code);
    if (!rc)
        rc = pt_writemem(tid, (uint64_t)addr + page, table, (size_t)n * 64);
    int64_t prc = 0;
    if (!rc && !mapped)
        rc = inject6(tid, SYS_mprotect, (uint64_t)addr, page, PROT_READ | PROT_EXEC, 0, 0, 0, &prc);
    int fallback = !rc && prc < 0; /* no executable memory for us here (a policy): one by one */
    if (!rc && !fallback) {
        struct user_regs_struct saved, r;
        rc = pt_getregs(tid, &saved);
        if (!rc) {
            r = saved;
            r.rip = (uint64_t)addr;
            r.r12 = (uint64_t)addr + page;
            r.r13 = n;
            r.orig_rax = (unsigned long long)-1; /* as in pt_inject_syscall: no restart of the tracee's call */
            rc = pt_setregs(tid, &r);
            if (!rc)
                rc = run_to_trap(tid, (uint64_t)addr + code);
            if (rc == -ESRCH && !find_tracee(tid)) {
                free(table);
                return rc; /* died: nothing to restore */
            }
            int rrc = pt_setregs(tid, &saved);
            if (!rc)
                rc = rrc;
        }
        if (!rc)
            rc = pt_readmem(tid, (uint64_t)addr + page, table, (size_t)n * 64);
        for (uint32_t i = 0; !rc && i < n; i++)
            rets[i] = (int64_t)table[8 * i + 7];
    }
    free(table);
    if (mapped)
        return rc; /* the caller's area stays */
    int64_t mrc = 0;
    int urc = inject6(tid, SYS_munmap, (uint64_t)addr, size, 0, 0, 0, 0, &mrc);
    if (rc)
        return rc;
    if (urc)
        return urc;
    if (mrc < 0)
        return (int)mrc;
    if (!fallback)
        return 0;
one_by_one:
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = pt_inject_syscall(tid, nrs[i], args[i], &rets[i])))
            return rc;
    }
    return 0;
}

static int inject6(pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                   uint64_t a5, int64_t *ret)
{
    const uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };
    return pt_inject_syscall(tid, nr, args, ret);
}

/* The tracee's scratch page during pt_give_fd; the tracee is x86_64 like the shim, so the shim's own
 * struct layouts are the tracee's. */
struct givefd_scratch {
    struct sockaddr_un addr;
    socklen_t addr_len;
    struct msghdr msg;
    struct iovec iov;
    union { char buf[CMSG_SPACE(sizeof(int) * 4)]; struct cmsghdr align; } ctl;
    char data[8];
};

#define SCRATCH_SIZE 4096
#define REMOTE(base, field) ((base) + offsetof(struct givefd_scratch, field))

int pt_give_fd(pid_t tid, int local_fd, int target_fd, int *installed_fd_out)
{
    if (!find_tracee(tid))
        return -ESRCH;
    if (local_fd < 0)
        return -EBADF;
    int64_t scratch = -1, sock = -1, fd = -1, ret;
    int lsock = -1, rc;

    rc = inject6(tid, SYS_mmap, 0, SCRATCH_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 (uint64_t)-1, 0, &ret);
    if (!rc && RAW_IS_ERR(ret))
        rc = (int)ret;
    if (rc)
        goto out;
    scratch = ret;

    rc = inject6(tid, SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, 0, 0, 0, &ret);
    if (!rc && ret < 0)
        rc = (int)ret;
    if (rc)
        goto out;
    sock = ret;

    /* Autobind (an address of just the family) gives the socket a fresh abstract name: nothing in a
     * file system to clean up, and no predictable name another process could take first. The tracee
     * shares the shim's network namespace, where abstract names live. */
    struct givefd_scratch s;
    memset(&s, 0, sizeof s);
    s.addr.sun_family = AF_UNIX;
    s.addr_len = sizeof s.addr;
    s.iov.iov_base = (void *)REMOTE(scratch, data);
    s.iov.iov_len = sizeof s.data;
    s.msg.msg_iov = (struct iovec *)REMOTE(scratch, iov);
    s.msg.msg_iovlen = 1;
    s.msg.msg_control = (void *)REMOTE(scratch, ctl);
    s.msg.msg_controllen = sizeof s.ctl.buf;
    rc = pt_writemem(tid, (uint64_t)scratch, &s, sizeof s);
    if (rc)
        goto out;
    rc = inject6(tid, SYS_bind, (uint64_t)sock, REMOTE(scratch, addr), sizeof(sa_family_t), 0, 0, 0, &ret);
    if (!rc && ret < 0)
        rc = (int)ret;
    if (!rc)
        rc = inject6(tid, SYS_getsockname, (uint64_t)sock, REMOTE(scratch, addr), REMOTE(scratch, addr_len), 0, 0, 0,
                     &ret);
    if (!rc && ret < 0)
        rc = (int)ret;
    if (!rc)
        rc = pt_readmem(tid, (uint64_t)scratch, &s, offsetof(struct givefd_scratch, msg));
    if (rc)
        goto out;
    if (s.addr_len <= sizeof(sa_family_t) || s.addr_len > sizeof s.addr) {
        rc = -EPROTO;
        goto out;
    }

    lsock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (lsock < 0) {
        rc = -errno;
        goto out;
    }
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
    memset(&ctl, 0, sizeof ctl);
    char byte = 'F';
    struct iovec iov = { &byte, 1 };
    struct msghdr mh = { .msg_name = &s.addr, .msg_namelen = s.addr_len, .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &local_fd, sizeof(int));
    if (sendmsg(lsock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        rc = -errno;
        goto out;
    }

    /* MSG_DONTWAIT: the datagram is already queued; if it were not, blocking the tracee would block the
     * shim's only thread in waitpid for good. */
    rc = inject6(tid, SYS_recvmsg, (uint64_t)sock, REMOTE(scratch, msg), MSG_DONTWAIT, 0, 0, 0, &ret);
    if (!rc && ret < 0)
        rc = (int)ret;
    if (rc)
        goto out;
    struct givefd_scratch got;
    rc = pt_readmem(tid, (uint64_t)scratch, &got, sizeof got);
    if (rc)
        goto out;
    struct cmsghdr *gc = (struct cmsghdr *)got.ctl.buf;
    if (got.msg.msg_controllen >= CMSG_LEN(sizeof(int)) && gc->cmsg_level == SOL_SOCKET &&
        gc->cmsg_type == SCM_RIGHTS && gc->cmsg_len == CMSG_LEN(sizeof(int))) {
        int v;
        memcpy(&v, CMSG_DATA(gc), sizeof v);
        fd = v;
    }
    if (fd < 0) {
        /* The kernel truncates the control data when the tracee cannot take the fd (RLIMIT_NOFILE). */
        rc = (got.msg.msg_flags & MSG_CTRUNC) ? -EMFILE : -EPROTO;
        goto out;
    }

    /* With no target, the lowest free number is what the tracee would get from open(): our socket
     * held a lower one than the received fd, and it is about to be freed. */
    int64_t want = target_fd >= 0 ? target_fd : (sock < fd ? sock : fd);
    if (want != fd) {
        rc = inject6(tid, SYS_dup3, (uint64_t)fd, (uint64_t)want, 0, 0, 0, 0, &ret);
        if (!rc && ret < 0)
            rc = (int)ret;
        if (rc)
            goto out;
        if (want == sock)
            sock = -1; /* dup3 closed it */
        int64_t first = fd;
        fd = want; /* from here an error must close the installed copy */
        rc = inject6(tid, SYS_close, (uint64_t)first, 0, 0, 0, 0, 0, &ret);
        if (!rc && ret < 0)
            rc = (int)ret;
        if (rc)
            goto out;
    }
    *installed_fd_out = (int)fd;
    fd = -1; /* installed: not ours to close any more */

out:
    /* Cleanup injections on a dead tracee fail fast with -ESRCH (it left the table). */
    if (fd >= 0)
        inject6(tid, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ret);
    if (sock >= 0)
        inject6(tid, SYS_close, (uint64_t)sock, 0, 0, 0, 0, 0, &ret);
    if (scratch != -1)
        inject6(tid, SYS_munmap, (uint64_t)scratch, SCRATCH_SIZE, 0, 0, 0, 0, &ret);
    if (lsock >= 0)
        close(lsock);
    return rc;
}

/* struct clone_args up to set_tid_size (CLONE_ARGS_SIZE_VER1, 80 bytes), then the one-entry tid array. */
struct clone_scratch {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size;
    int32_t tid_array[2];
};

int pt_clone_into(pid_t tid, pid_t new_tid, uint64_t flags, uint32_t exit_signal, uint64_t scratch)
{
    if (!find_tracee(tid))
        return -ESRCH;
    if (new_tid <= 0)
        return -EINVAL;
    if (find_tracee(new_tid))
        return -EALREADY;
    /* clone3 with these would make a child we cannot hold or that shares what it must not */
    const uint64_t refused = CLONE_VFORK | CLONE_PTRACE | CLONE_UNTRACED | CLONE_PIDFD | CLONE_PARENT_SETTID |
                             CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | CLONE_SETTLS | CLONE_NEWPID |
                             CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_INTO_CGROUP;
    if (flags & refused)
        return -EINVAL;
    struct clone_scratch cs;
    memset(&cs, 0, sizeof cs);
    cs.flags = flags;
    cs.exit_signal = (flags & CLONE_THREAD) ? 0 : exit_signal;
    cs.set_tid = scratch + offsetof(struct clone_scratch, tid_array);
    cs.set_tid_size = 1;
    cs.tid_array[0] = new_tid;
    int rc = pt_writemem(tid, scratch, &cs, sizeof cs);
    if (rc)
        return rc;
    /* In the table before the child exists, so the reaper stashes its first stop for us. */
    if (!add_tracee(new_tid))
        return -ENOMEM;
    long opts = PTRACE_O_TRACEFORK | PTRACE_O_TRACECLONE;
    if (ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)opts) < 0) {
        rc = -errno;
        drop_tracee(new_tid);
        return rc;
    }
    int64_t ret = 0;
    rc = inject6(tid, SYS_clone3, scratch, offsetof(struct clone_scratch, tid_array), 0, 0, 0, 0, &ret);
    ptrace(PTRACE_SETOPTIONS, tid, 0, 0);
    if (!rc && ret < 0)
        rc = (int)ret;
    if (!rc && ret != new_tid) {
        /* cannot happen with set_tid: never leave a stray task */
        kill((pid_t)ret, SIGKILL);
        rc = -EPROTO;
    }
    if (rc) {
        drop_tracee(new_tid);
        return rc;
    }
    /* An auto-attached child of a seized tracee starts in a PTRACE_EVENT_STOP; it inherited the options. */
    rc = wait_interrupt_stop(new_tid);
    if (!rc && ptrace(PTRACE_SETOPTIONS, new_tid, 0, 0) < 0)
        rc = -errno;
    if (rc) {
        syscall(SYS_tgkill, (flags & CLONE_THREAD) ? tid : new_tid, new_tid, SIGKILL);
        drop_tracee(new_tid);
        return rc;
    }
    return 0;
}

#ifndef PTRACE_PEEKSIGINFO_SHARED
#define PTRACE_PEEKSIGINFO_SHARED 1
#endif

int pt_peek_siginfo(pid_t tid, int shared, uint32_t offset, void *buf, int max, int *n_out)
{
    if (!find_tracee(tid))
        return -ESRCH;
    struct { uint64_t off; uint32_t flags; int32_t nr; } args = { offset, shared ? PTRACE_PEEKSIGINFO_SHARED : 0, max };
    long n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, buf);
    if (n < 0)
        return -errno;
    *n_out = (int)n;
    return 0;
}

int pt_get_sigmask(pid_t tid, uint64_t *mask)
{
    if (!find_tracee(tid))
        return -ESRCH;
    if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof *mask, mask) < 0)
        return -errno;
    return 0;
}

int pt_held_signals(pid_t tid, const struct pt_held_sig **held, uint32_t *n, uint32_t *lost)
{
    struct tracee *t = find_tracee(tid);
    if (!t)
        return -ESRCH;
    *held = t->held;
    *n = t->n_held;
    *lost = t->lost;
    return 0;
}
