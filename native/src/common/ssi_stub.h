/* A restore stub's birth, shared by the shim (SPAWN_STUB, stub.c) and ssi-run --restart's launch stub
 * (client/restart.c): a child made with clone3(set_tid = {pid}) that runs child(), which must make raw
 * syscalls only and close every fd (so closing its copy of a sync pipe), and never returns. */
#ifndef SSI_STUB_H
#define SSI_STUB_H
#include <sys/types.h>

/* pid once the child has closed its fds; -errno when clone3 failed (-EEXIST: pid taken), -EPROTO when
 * the kernel gave another pid, -ETIMEDOUT when it did not close them within timeout_ms (it is killed,
 * not reaped: the caller's reaper takes it). */
pid_t ssi_clone_stub(pid_t pid, void (*child)(void), int timeout_ms);

/* clone3(set_tid = {pid}, exit signal SIGCHLD), like fork() but with that pid: 0 in the child, pid in
 * the parent, -1 with errno (EEXIST: taken) when it cannot. */
long ssi_fork_as(pid_t pid);

#endif
