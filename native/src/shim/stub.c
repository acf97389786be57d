/* SPAWN_STUB (link request 0x001A, docs/ARCHITECTURE.md): a restore stub with a chosen pid, started under
 * ptrace, for the daemon's restore engine (ssi.ghost.restore) to rebuild a process in with injected
 * syscalls.
 *
 * Owner: the shim's main thread, the only tracer. The shim has responder threads, so the child of
 * clone3 (a copy of this thread alone) may only make raw system calls before it stops: no malloc, no
 * stdio, no locks another thread might have held at the clone.
 *
 * What the stub is when the reply goes out: pid `pid` of the node namespace, child of the shim (pid 1),
 * leader of a session and process group of its own, no fds at all, held in a ptrace stop by the main thread (registered in ptrace_ops' table, so the
 * reaper routes its stops), its rseq registration (inherited from this thread, pointing into the
 * shim's TLS) removed, so that the kernel writes into no memory the restore is about to replace. Its
 * memory is still a copy of the shim's, its signal mask and dispositions the main thread's: the
 * restore replaces all of it. */
#include "ptrace_ops.h"
#include "shim.h"
#include "ssi_proto.h"
#include "ssi_stub.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <linux/sched.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#define RSEQ_FLAG_UNREGISTER 1

/* The kernel's struct ptrace_rseq_configuration (not in every libc's headers). */
struct stub_rseq_conf {
    uint64_t rseq_abi_pointer;
    uint32_t rseq_abi_size;
    uint32_t signature;
    uint32_t flags;
    uint32_t pad;
};

/* The child: raw syscalls only. Closing every fd also closes its copy of the sync pipe, which is how
 * the parent learns that no fd of the shim is left in it. */
static void __attribute__((noreturn)) stub_child(void)
{
    /* Out of the shim's session and process group: a kill(0, ...) by the restored process must not
     * reach the node init and the daemon. */
    syscall(SYS_setsid);
    syscall(SYS_close_range, 0U, ~0U, 0U);
    for (;;)
        syscall(SYS_pause);
}

int shim_get_rseq(pid_t tid, struct ssi_rseq_reply *out)
{
    struct stub_rseq_conf conf;
    memset(&conf, 0, sizeof conf);
    if (!pt_is_traced(tid))
        return -ESRCH;
    if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof conf, &conf) < 0)
        return -errno;
    memset(out, 0, sizeof *out);
    out->pointer = conf.rseq_abi_pointer;
    out->size = conf.rseq_abi_size;
    out->signature = conf.signature;
    out->flags = conf.flags;
    return 0;
}

/* Kills a stub that is in the tracee table and forgets it; the reaper reaps the zombie. */
static void kill_traced_stub(pid_t pid)
{
    kill(pid, SIGKILL);
    pt_detach(pid); /* fails on the dying stub, but drops it from the table */
}

int shim_spawn_stub(pid_t pid)
{
    if (pid < (1 << SSI_PID_SHIFT))
        return -EINVAL; /* node-internal pids are no cluster processes */
    int err = ssi_clone_stub(pid, stub_child, 5000);
    if (err == -EEXIST)
        shim_log("SPAWN_STUB: gpid %d is taken", (int)pid);
    if (err == -ETIMEDOUT)
        shim_log("SPAWN_STUB: the stub (pid %d) did not close its fds within 5 s; killed", (int)pid);
    if (err < 0)
        return err;
    err = pt_attach(pid);
    if (err) {
        kill(pid, SIGKILL);
        return err;
    }
    struct ssi_rseq_reply conf;
    err = shim_get_rseq(pid, &conf);
    if (err) {
        shim_log("SPAWN_STUB: PTRACE_GET_RSEQ_CONFIGURATION of the stub (pid %d) failed: %s", (int)pid,
                 strerror(-err));
        kill_traced_stub(pid);
        return err;
    }
    if (conf.pointer) {
        const uint64_t a[6] = { conf.pointer, conf.size, RSEQ_FLAG_UNREGISTER, conf.signature, 0, 0 };
        int64_t ret = 0;
        err = pt_inject_syscall(pid, SYS_rseq, a, &ret);
        if (!err && ret != 0)
            err = (int)ret;
        if (err) {
            shim_log("SPAWN_STUB: unregistering the stub's rseq (pid %d) failed: %s", (int)pid, strerror(-err));
            kill_traced_stub(pid);
            return err;
        }
    }
    return 0;
}
