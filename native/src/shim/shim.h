/* Internal interfaces of ssi-shim, the node init (pid 1 of a node's pid namespace).
 * Threads: the main thread runs the epoll loop and owns everything here (the link, launches, reaping,
 * the pid watchdog, the listener and pending tables) and is the only ptrace user (ptrace is per tracer
 * thread: only the thread that attached may drive a tracee). Each seccomp listener also has a responder
 * thread (notify.c) that answers the traps the shim decides alone and hands the others to the main
 * thread; it touches nothing here but its own listener and notify.c's hand-over queue. No signal
 * handler touches anything either.
 *
 * The Makefile links every test binary with all shim sources but main.c, so every global here is
 * prefixed shim_ and nothing outside main.c may depend on main.c. */
#ifndef SSI_SHIM_H
#define SSI_SHIM_H
#include <stdint.h>
#include <sys/types.h>

/* One epoll loop (the main thread's) serves every fd but the seccomp listeners, which their responder
 * threads wait on; the event's u64 says what it is: kind in the high 32 bits, an index or id in the low
 * 32 (indices, not pointers, so that growing a table never leaves a dangling event). */
enum shim_src_kind {
    SHIM_SRC_NOTIFY = 1,     /* notify.c's eventfd: responders handed over traps or ended */
    SHIM_SRC_SIGNALS,
    SHIM_SRC_TICK,
    SHIM_SRC_LAUNCH_LISTEN,
    SHIM_SRC_LAUNCH_CONN,    /* low bits: generation << 8 | connection slot */
    SHIM_SRC_LINK_LISTEN,
    SHIM_SRC_LINK,           /* low bits: link generation */
};
#define SHIM_EV(kind, low) (((uint64_t)(kind) << 32) | (uint32_t)(low))

struct shim_config {
    int node;                /* 1..SSI_MAX_NODE */
    const char *run_dir;
    int detach;              /* report readiness through ready_fd, log to node-N.log */
    char **daemon_argv;      /* NULL-terminated */
};

/* Node-wide state, set up once by shim_node_main before the loop starts. */
struct shim_state {
    int node;
    int pid_base, pid_limit; /* [node << 14, (node + 1) << 14) */
    const char *run_dir;
    int epfd;
    pid_t daemon_pid;        /* 2 once forked */
    int ready_fd;            /* --detach pipe to the parent half; -1 once readiness was reported */
};
extern struct shim_state shim_state;

/* nodeinit.c */
void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The daemon linked (HELLO answered): move the pid cursor into the node's range (first time only)
 * and tell a waiting --detach parent. */
void shim_node_linked(void);
/* Never returns: becomes the node (must run as pid 1 of a fresh pid namespace). */
void shim_node_main(const struct shim_config *cfg, int ready_fd) __attribute__((noreturn));
/* Binds a SOCK_STREAM unix socket at path (non-blocking, CLOEXEC, listening) and chmods it. */
int shim_bind_unix(const char *path, mode_t mode, int passcred);
void shim_socket_path(char *out, size_t cap, const char *run_dir, int node, const char *suffix);
/* The thread group a task belongs to, from /proc/<tid>/status (also for non-leader tids); -1 if gone
 * (notify.c). */
long shim_tgid_of(long tid);
uint64_t shim_now_ms(void);
/* Out of fds: a listening socket stays readable while its backlog cannot be accepted, so it leaves
 * the epoll set until the next tick instead of spinning the loop. */
void shim_pause_accept(int fd, enum shim_src_kind kind);

/* notify.c: seccomp listeners. Everything but shim_decide_local is for the main thread only. */
/* What the shim answers a trapped syscall alone. No allocation, and no /proc access except for a pid
 * marked as a daemon thread (verified, so a stale mark is harmless): arg0 and
 * arg1 are the syscall's first two arguments (target pid, tgid or tid; tgkill's tid). Returns
 * SHIM_CONTINUE (run it natively: the target is on this node), SHIM_ASK_DAEMON (forward it), or a
 * negative errno to fail it with (-ESRCH for a node-internal target: pid 2..16383, such a -pgrp, or a
 * daemon thread whose tid is in the node's range). */
enum { SHIM_ASK_DAEMON = 0, SHIM_CONTINUE = 1 };
int shim_decide_local(int node, uint32_t arch, int nr, uint64_t arg0, uint64_t arg1);
/* Main thread, every watchdog tick and when the daemon links: re-reads which tids of the node's range
 * belong to the node init or the daemon, for shim_decide_local. */
void shim_refresh_internal_tids(void);
/* Creates the hand-over eventfd and adds it to the epoll set. */
int shim_notify_open(void);
/* Takes ownership of fd (a validated seccomp listener); *id_out gets its listener id. Nothing answers
 * its traps until shim_listener_start. */
int shim_listener_add(int fd, uint32_t *id_out);
/* Starts the listener's responder thread (ssi-notif-<slot>). From then on the listener ends by itself
 * when no task uses its filter any more: the main thread then closes it and sends LISTENER_GONE. */
int shim_listener_start(uint32_t id);
/* Closes a listener whose responder was never started (or has been joined), without telling anyone. */
void shim_listener_remove(uint32_t id);
/* shim_listener_remove, then LISTENER_GONE to the daemon if it is linked. */
void shim_listener_end(uint32_t id);
/* SHIM_SRC_NOTIFY: forwards the handed-over traps to the daemon and ends the finished listeners. */
void shim_notify_event(void);
/* The daemon's answer to a forwarded notification. */
void shim_notif_reply(const void *reply, size_t len);
/* The link is gone: fail every notification still waiting for the daemon so no thread hangs. */
void shim_notif_fail_pending(int error);
/* Refuses to run on a kernel whose seccomp_notif is larger than the one compiled in. */
int shim_notify_check_abi(void);

/* launch.c: the launch socket (ssi-run clients). */
int shim_launch_open(const char *path);
void shim_launch_accept(void);
void shim_launch_event(uint32_t tag, uint32_t events);
void shim_launch_sweep(uint64_t now_ms);

/* Registers the seccomp listener lfd (validated by the caller) of process pid, which runs as uid/gid the
 * program at path, as the node's: SYNC_WAKE_UP, a listener id, LAUNCHED to the daemon, then its responder
 * thread. A LAUNCH and an INSTALL_FILTER (filter.c) both end here. Consumes lfd in every case. Returns 0
 * (*lid_out set) or -errno, with *stage saying which step failed (for the caller's message). */
enum shim_adopt_stage { SHIM_ADOPT_TABLE = 1, SHIM_ADOPT_LINK, SHIM_ADOPT_START };
int shim_adopt_listener(int lfd, pid_t pid, uid_t uid, gid_t gid, const char *path, uint32_t *lid_out,
                        enum shim_adopt_stage *stage);

/* filter.c: INSTALL_FILTER. Injects the trap filter (ssi_filter.h) into tid, a stopped tracee of ours,
 * and adopts a copy of its listener like a launch's. Returns 0 (*lid_out set) or -errno. */
int shim_install_filter(pid_t tid, uint32_t *lid_out);

/* link.c: the link socket (the node daemon). */
int shim_link_open(const char *path);
void shim_link_accept(void);
void shim_link_event(uint32_t gen, uint32_t events);
/* Is a daemon linked (HELLO done)? */
int shim_link_up(void);
/* Sends one frame to the daemon; on failure the link is closed and -errno returned. */
int shim_link_send(uint16_t type, const void *payload, size_t len);

#endif
