/* INSTALL_FILTER (link request 0x001C, docs/ARCHITECTURE.md): the node's trap filter (ssi_filter.h) put
 * into a stopped tracee with injected syscalls, for a process the restore engine rebuilt in a restore
 * stub: a program launched by ssi-run installs it itself before exec, a restored one never execs.
 *
 * Owner: the shim's main thread, the tracer (every pt_* call must come from it).
 *
 * Steps, each undone on a later failure: pidfd_open of the tracee (so that taking the listener cannot
 * fail for want of it), mmap of a scratch page in the tracee, the struct sock_fprog and the instructions
 * written there, prctl(PR_SET_NO_NEW_PRIVS) (needed by a tracee without CAP_SYS_ADMIN; it cannot be
 * cleared again, which is harmless: every cluster process runs with it), seccomp(SET_MODE_FILTER,
 * NEW_LISTENER) -> the listener's fd in the tracee, pidfd_getfd of it, close of it and munmap of the
 * scratch page in the tracee. From seccomp() on, the filter is in force and cannot be removed: the
 * syscalls injected after it (close, munmap) are not trapped. A failure after seccomp() leaves a filter
 * without supervisor (its traps fail ENOSYS, as when a supervisor dies): the daemon kills such a tracee.
 * The copy of the listener is then registered exactly like a LAUNCH's (shim_adopt_listener). */
#include "ptrace_ops.h"
#include "shim.h"
#include "ssi_filter.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define RAW_IS_ERR(v) ((uint64_t)(v) >= (uint64_t)-4095)
#define SCRATCH 4096

/* Real uid and gid, and the Seccomp mode, from /proc/tid/status. */
static int read_status(pid_t tid, uid_t *uid, gid_t *gid, int *seccomp)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int err = errno;
    close(fd);
    if (n <= 0)
        return n < 0 ? -err : -ESRCH;
    buf[n] = 0;
    const char *u = strstr(buf, "\nUid:"), *g = strstr(buf, "\nGid:"), *s = strstr(buf, "\nSeccomp:");
    if (!u || !g || !s)
        return -EPROTO;
    *uid = (uid_t)strtoul(u + 5, NULL, 10);
    *gid = (gid_t)strtoul(g + 5, NULL, 10);
    *seccomp = atoi(s + 9);
    return 0;
}

/* One injected syscall; 0 and *ret, or -errno (of the injection or of the call). */
static int inject(pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                  uint64_t a5, int64_t *ret)
{
    const uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };
    int64_t r = 0;
    int err = pt_inject_syscall(tid, nr, args, &r);
    if (err)
        return err;
    if (RAW_IS_ERR(r))
        return (int)r;
    if (ret)
        *ret = r;
    return 0;
}

int shim_install_filter(pid_t tid, uint32_t *lid_out)
{
    if (!pt_is_traced(tid))
        return -ESRCH;
    uid_t uid = 0;
    gid_t gid = 0;
    int mode = 0;
    int err = read_status(tid, &uid, &gid, &mode);
    if (err)
        return err;
    if (mode != 0)
        return -EBUSY; /* it has a filter already (a listener of its own, or a copy of ours) */
    char exe[PATH_MAX], link[64];
    snprintf(link, sizeof link, "/proc/%d/exe", (int)tid);
    ssize_t el = readlink(link, exe, sizeof exe - 1);
    if (el < 0)
        el = 0; /* no executable (yet): LAUNCHED with an empty path */
    exe[el] = 0;

    const struct sock_fprog *prog = ssi_trap_filter();
    size_t ilen = prog->len * sizeof(struct sock_filter);
    struct { uint16_t len; uint16_t pad[3]; uint64_t filter; } fprog; /* struct sock_fprog, x86_64 */
    _Static_assert(sizeof fprog == sizeof(struct sock_fprog), "sock_fprog layout");
    if (sizeof fprog + ilen > SCRATCH)
        return -E2BIG;

    int pidfd = (int)syscall(SYS_pidfd_open, tid, 0);
    if (pidfd < 0)
        return -errno;
    int64_t scratch = 0, lfd = -1;
    err = inject(tid, SYS_mmap, 0, SCRATCH, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0,
                 &scratch);
    if (err) {
        shim_log("INSTALL_FILTER: mmap of a scratch page in pid %d failed: %s", (int)tid, strerror(-err));
        close(pidfd);
        return err;
    }
    memset(&fprog, 0, sizeof fprog);
    fprog.len = prog->len;
    fprog.filter = (uint64_t)scratch + sizeof fprog;
    err = pt_writemem(tid, (uint64_t)scratch, &fprog, sizeof fprog);
    if (!err)
        err = pt_writemem(tid, (uint64_t)scratch + sizeof fprog, prog->filter, ilen);
    if (!err)
        err = inject(tid, SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0, NULL);
    if (!err)
        err = inject(tid, SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                     (uint64_t)scratch, 0, 0, 0, &lfd);
    int copy = -1;
    int installed = !err;
    if (installed) {
        copy = (int)syscall(SYS_pidfd_getfd, pidfd, (int)lfd, 0);
        if (copy < 0)
            err = -errno;
        else if (fcntl(copy, F_SETFD, FD_CLOEXEC) < 0) /* pidfd_getfd sets it; be sure */
            err = -errno;
        /* From here on nothing may be injected that the filter traps: close and munmap are not. */
        int e2 = inject(tid, SYS_close, (uint64_t)lfd, 0, 0, 0, 0, 0, NULL);
        if (e2 && !err)
            err = e2;
    }
    close(pidfd);
    int e3 = inject(tid, SYS_munmap, (uint64_t)scratch, SCRATCH, 0, 0, 0, 0, NULL);
    if (e3 && !err)
        err = e3;
    if (err) {
        if (copy >= 0)
            close(copy);
        shim_log("INSTALL_FILTER: pid %d: %s%s", (int)tid, strerror(-err),
                 installed ? " (after the filter was installed: it has no supervisor)" : "");
        return err;
    }
    enum shim_adopt_stage stage;
    err = shim_adopt_listener(copy, tid, uid, gid, exe, lid_out, &stage);
    if (err)
        shim_log("INSTALL_FILTER: pid %d: %s listener failed: %s", (int)tid,
                 stage == SHIM_ADOPT_TABLE ? "adopting the" : stage == SHIM_ADOPT_LINK ? "announcing the"
                 : "starting a responder for the", strerror(-err));
    return err;
}
