/* ptrace services the shim performs for the daemon on a stopped tracee (docs/ARCHITECTURE.md, link
 * protocol 0x0010-0x001D). Owner: the shim's single thread; ptrace is per tracer thread, so every call
 * for a tracee must come from the thread that attached it. All functions return 0 or -errno. */
#ifndef SSI_PTRACE_OPS_H
#define SSI_PTRACE_OPS_H
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>

/* Most signals kept per tracee while it is held (the GETDEFERRED reply must fit one link frame). */
#define SSI_HELD_SIGNALS_MAX 4096

/* PTRACE_SEIZE + PTRACE_INTERRUPT, then waits until tid is in a ptrace stop. */
int pt_attach(pid_t tid);
/* PTRACE_DETACH; the tracee resumes. */
int pt_detach(pid_t tid);
/* Is tid attached by us? (the reaper uses it to route wait statuses) */
int pt_is_traced(pid_t tid);
/* The shim's reaper got a wait status for a traced tid (a stop it must not swallow): hand it over so the
 * next pt_* call that waits for tid consumes it instead of blocking. */
void pt_note_wait_status(pid_t tid, int status);

int pt_getregs(pid_t tid, struct user_regs_struct *regs);
int pt_setregs(pid_t tid, const struct user_regs_struct *regs);
/* PTRACE_GETREGSET/SETREGSET NT_X86_XSTATE; *len_out gets the size the kernel filled. */
int pt_getxstate(pid_t tid, void *buf, size_t cap, size_t *len_out);
int pt_setxstate(pid_t tid, const void *buf, size_t len);
/* process_vm_readv/writev (pid need not be attached for these); short transfers are -EFAULT. */
int pt_readmem(pid_t pid, uint64_t addr, void *buf, size_t len);
int pt_writemem(pid_t pid, uint64_t addr, const void *buf, size_t len);
/* Copies len bytes at offset off of fd (a regular file) to addr in pid through a read-only mapping of
 * the file, so the bytes are copied once (page cache -> tracee); read-only pages as pt_writemem. A range
 * past the end of the file is -EINVAL. */
int pt_writemem_fd(pid_t pid, uint64_t addr, int fd, uint64_t off, uint64_t len);
/* Runs one syscall in the stopped tracee and restores its registers; *ret_out gets the raw return
 * (a negative errno on failure). */
int pt_inject_syscall(pid_t tid, long nr, const uint64_t args[6], int64_t *ret_out);
/* Runs n syscalls (nrs[i] with args[i]) in the stopped tracee one after another, in one resume: a
 * loop of code in a page mapped for it (then unmapped); rets[i] gets each raw return. Falls back to
 * pt_inject_syscall one by one when the page cannot be made. Not for calls that map or unmap memory.
 * at | SSI_INJECT_MANY_MAPPED: the caller's area at at (SSI_INJECT_MANY_AREA bytes, the first page
 * executable, the rest writable) holds the code and table, and nothing is mapped or unmapped. */
int pt_inject_many(pid_t tid, uint32_t n, uint64_t at, const int64_t *nrs, const uint64_t (*args)[6], int64_t *rets);
/* Installs a copy of local_fd (an fd of the shim) in the tracee at target_fd (or the lowest free fd when
 * target_fd < 0); *installed_fd_out gets the number. */
int pt_give_fd(pid_t tid, int local_fd, int target_fd, int *installed_fd_out);
/* clone3 injected into the stopped tracee tid with set_tid = {new_tid}, PTRACE_O_TRACEFORK/TRACECLONE
 * set for that call only: the new process or thread is in the tracee table and held in its first stop
 * when this returns. scratch: 128 writable bytes in the tracee (clone_args and the tid array). */
int pt_clone_into(pid_t tid, pid_t new_tid, uint64_t flags, uint32_t exit_signal, uint64_t scratch);
/* PTRACE_PEEKSIGINFO of a stopped tracee: up to max siginfos (128 bytes each) of its private queue, or
 * of the shared queue of its thread group, from the offset-th one on; *n_out gets the count. */
int pt_peek_siginfo(pid_t tid, int shared, uint32_t offset, void *buf, int max, int *n_out);
/* PTRACE_GETSIGMASK: the blocked mask, or the saved one while the tracee is in sigsuspend and kin. */
int pt_get_sigmask(pid_t tid, uint64_t *mask);
/* A signal held back from a tracee while we held it (ptrace_ops.c's header): its siginfo and whether it
 * came from the process's shared queue (1) or the thread's own (0). */
struct pt_held_sig {
    int shared;
    siginfo_t si;
};
/* The signals held back from tid while we held it, oldest first (queued again at pt_detach); *lost
 * counts those beyond SSI_HELD_SIGNALS_MAX, which are not kept. The list lives until the next pt_* call. */
int pt_held_signals(pid_t tid, const struct pt_held_sig **held, uint32_t *n, uint32_t *lost);

#endif
