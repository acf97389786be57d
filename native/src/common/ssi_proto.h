/* Wire formats shared by the shim, the ssi-run client and (mirrored in Java) the daemon.
 * The contract is docs/ARCHITECTURE.md; keep both in the same commit. Little endian, packed. */
#ifndef SSI_PROTO_H
#define SSI_PROTO_H
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#define SSI_LINK_VERSION 1
#define SSI_PID_SHIFT 14                          /* node n owns [n << 14, (n + 1) << 14) */
#define SSI_NODE_OF(pid) ((int)((pid) >> SSI_PID_SHIFT))
#define SSI_MAX_NODE 255
#define SSI_MAX_FRAME (1u << 20)                  /* refuse larger frames as garbage */

struct ssi_hdr {
    uint32_t len;      /* whole frame, header included */
    uint16_t type;
    uint16_t flags;
    uint32_t req_id;
    uint32_t reserved;
} __attribute__((packed));

enum ssi_msg_type {
    SSI_HELLO = 0x0001,
    SSI_NOTIF = 0x0002,
    SSI_NOTIF_REPLY = 0x0003,
    SSI_LAUNCHED = 0x0004,
    SSI_LISTENER_GONE = 0x0005,
    SSI_ATTACH = 0x0010,
    SSI_DETACH = 0x0011,
    SSI_GETREGS = 0x0012,
    SSI_SETREGS = 0x0013,
    SSI_GETXSTATE = 0x0014,
    SSI_SETXSTATE = 0x0015,
    SSI_READMEM = 0x0016,
    SSI_WRITEMEM = 0x0017,
    SSI_INJECT = 0x0018,
    SSI_GIVEFD = 0x0019,
    SSI_SPAWN_STUB = 0x001A,  /* struct ssi_tid_req (the pid wanted); reply body: i32 pid */
    SSI_GETRSEQ = 0x001B,     /* struct ssi_tid_req; reply body: struct ssi_rseq_reply */
    /* struct ssi_tid_req (a stopped tracee, typically a restore stub); reply body: u32 listener_id. The
     * shim injects prctl(PR_SET_NO_NEW_PRIVS), a scratch mmap, seccomp(SET_MODE_FILTER, NEW_LISTENER) of
     * the node's trap filter, close of the listener and munmap, keeps a copy of the listener
     * (pidfd_getfd) and registers it like a LAUNCH's (LAUNCHED with the tracee's pid, real uid/gid and
     * exe). A failure before seccomp() succeeded leaves no scratch page and no fd behind (no_new_privs,
     * once set, cannot be cleared); a filter whose listener the shim could not adopt cannot be removed
     * (its traps then fail with ENOSYS): the caller should kill the tracee. Refused with EBUSY when the
     * tracee already runs under a seccomp filter, ESRCH when it is not traced by the shim. */
    SSI_INSTALL_FILTER = 0x001C,
    /* struct ssi_memfd_req; no reply body. Copies len bytes at offset of the daemon's fd daemon_fd (a
     * regular file, taken with pidfd_getfd) to addr in pid, without the bytes crossing the link: the
     * shim maps that part of the file and process_vm_writev's it (/proc/pid/mem for read-only pages,
     * like WRITEMEM). len is at most SSI_WRITEMEM_FD_MAX (the shim serves one request at a time, so
     * one request must stay short); a range past the end of the file is EINVAL, an unwritable address
     * EFAULT. */
    SSI_WRITEMEM_FD = 0x001D,
    /* struct ssi_clone_req; reply body: i32 tid. The shim injects clone3(flags, exit_signal, set_tid =
     * {new_tid}) into the stopped tracee `tid` with PTRACE_O_TRACEFORK/TRACECLONE set for that one call,
     * so the new process (flags without CLONE_THREAD) or thread (with it) starts traced by the shim and
     * held in its first stop; `scratch` is 128 writable bytes in the tracee for clone_args. */
    SSI_CLONE_INTO = 0x0020,
    /* struct ssi_peeksig_req; reply body: u32 count, then count x 128-byte siginfo (PTRACE_PEEKSIGINFO of
     * a stopped tracee's private queue, or its process's shared queue when shared != 0), at most 64, from
     * the offset-th queued signal on (a request without offset: from the first). */
    SSI_PEEKSIGINFO = 0x0021,
    /* struct ssi_tid_req; reply body: u64 mask. PTRACE_GETSIGMASK of a stopped tracee: its blocked mask,
     * or the mask it returns to when it is inside sigsuspend/ppoll/pselect/epoll_pwait (the kernel's
     * saved_sigmask), which /proc/PID/status SigBlk does not show. */
    SSI_GETSIGMASK = 0x0022,
    /* struct ssi_tid_req; reply body: u32 count, then count x struct ssi_held_sig, oldest first. The
     * signals the shim held back from a tracee while it held it (taken at their signal-delivery-stop with
     * their siginfo, to be queued again at DETACH): a checkpoint must save them, they are in no kernel
     * queue any more. At most SSI_HELD_SIGNALS_MAX; EOVERFLOW when more arrived (the rest were lost). */
    SSI_GETDEFERRED = 0x0023,
    /* struct ssi_inject_many_req, then count x struct ssi_inject_call; reply body: count x i64 (each
     * call's raw return). The calls run one after another in the stopped tracee as INJECT would run
     * them, but in one go: the shim maps a page of code and a table into it, lets the thread run the
     * loop, and unmaps both (or, when it cannot map code there, injects them one by one). at 0: the
     * kernel picks the place of that code and table, so only calls that leave the address space alone
     * may run (the checkpoint's rt_sigaction, prlimit64, getitimer); otherwise the page-aligned start of
     * SSI_INJECT_MANY_AREA free bytes that none of the calls touches (the restore's munmap, mremap and
     * mmap of the whole address space): taken there with MAP_FIXED_NOREPLACE, else one by one. at with
     * bit 0 set (SSI_INJECT_MANY_MAPPED): the caller has SSI_INJECT_MANY_AREA bytes mapped at at & ~1,
     * the first page executable and the others writable, and keeps them for this: the shim writes its
     * code and table there and maps, protects and unmaps nothing (no change to the address space, so no
     * wait on a walk of the page tables running meanwhile, and three resumes fewer). */
    SSI_INJECT_MANY = 0x0028,
    SSI_LAUNCH = 0x0101,
    SSI_GO = 0x0102,
    SSI_REPLY_BIT = 0x8000,
};

struct ssi_hello_reply { int32_t error; uint32_t version; int32_t node_id; int32_t pid_base; int32_t pid_limit; } __attribute__((packed));

struct ssi_notif {
    uint32_t listener_id, pad;
    uint64_t notif_id;
    int32_t pid, nr;
    uint32_t arch, pad2;
    uint64_t ip;
    uint64_t args[6];
} __attribute__((packed));

#define SSI_REPLY_CONTINUE 1u
struct ssi_notif_reply {
    uint32_t listener_id, flags;
    uint64_t notif_id;
    int64_t val;
    int32_t error;
} __attribute__((packed));

struct ssi_launched { int32_t pid; uint32_t uid, gid, listener_id; /* then NUL-terminated path */ } __attribute__((packed));
struct ssi_launch { int32_t pid; uint32_t argc; /* then NUL-terminated program path */ } __attribute__((packed));
struct ssi_go { int32_t error; /* then, if error != 0, a NUL-terminated message */ } __attribute__((packed));

/* ptrace requests (daemon -> shim); replies start with int32_t error. */
struct ssi_tid_req { int32_t tid; } __attribute__((packed));
struct ssi_setregs_req { int32_t tid; uint32_t pad; struct user_regs_struct regs; } __attribute__((packed));
struct ssi_xstate_req { int32_t tid; uint32_t len; /* then u8 xsave[len] */ } __attribute__((packed));
struct ssi_mem_req { int32_t pid; uint32_t len; uint64_t addr; /* WRITEMEM: then u8 data[len] */ } __attribute__((packed));
struct ssi_inject_req { int32_t tid; int32_t nr; uint64_t args[6]; } __attribute__((packed));
struct ssi_inject_many_req { int32_t tid; uint32_t count; uint64_t at; } __attribute__((packed));
struct ssi_inject_call { int64_t nr; uint64_t args[6]; } __attribute__((packed));
#define SSI_INJECT_MANY_MAX 256u
/* the most the code page and the table of SSI_INJECT_MANY_MAX calls take in the tracee */
#define SSI_INJECT_MANY_AREA (4096u + SSI_INJECT_MANY_MAX * 64u)
/* bit 0 of ssi_inject_many_req.at: the area is the caller's, mapped already (see SSI_INJECT_MANY) */
#define SSI_INJECT_MANY_MAPPED 1u
struct ssi_memfd_req { int32_t pid; int32_t daemon_fd; uint64_t offset; uint64_t len; uint64_t addr; } __attribute__((packed));
#define SSI_WRITEMEM_FD_MAX (64u << 20)
struct ssi_givefd_req { int32_t tid; int32_t daemon_fd; int32_t target_fd; } __attribute__((packed));
/* PTRACE_GET_RSEQ_CONFIGURATION: the thread's rseq area (pointer 0: none registered). */
struct ssi_clone_req { int32_t tid, new_tid; uint64_t flags; uint32_t exit_signal, pad; uint64_t scratch; } __attribute__((packed));
struct ssi_peeksig_req { int32_t tid; uint32_t shared; uint32_t offset; } __attribute__((packed));
/* shared: 1 when the signal came from the process's shared queue, 0 from the thread's own. */
struct ssi_held_sig { int32_t shared; uint32_t pad; uint8_t siginfo[128]; } __attribute__((packed));
struct ssi_rseq_reply { uint64_t pointer; uint32_t size, signature, flags, pad; } __attribute__((packed));

/* Frame I/O on a stream unix socket (src/common/proto.c). All return 0 on success or -errno.
 * send: fd_to_pass < 0 means no SCM_RIGHTS; with_creds attaches SCM_CREDENTIALS of the caller.
 * recv: buf must hold cap bytes; *fd_out (if non-NULL) receives a passed fd or -1; *cred_out (if
 * non-NULL) receives SCM_CREDENTIALS (pid -1 when absent; enable SO_PASSCRED on the socket first). */
struct ucred;
int ssi_send_frame(int sock, uint16_t type, uint32_t req_id, const void *payload, size_t len,
                   int fd_to_pass, int with_creds);
int ssi_recv_frame(int sock, void *buf, size_t cap, int *fd_out, struct ucred *cred_out);

#endif
