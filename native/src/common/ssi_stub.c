/* ssi_clone_stub (ssi_stub.h). Owner: the calling thread; the child is a copy of that thread alone. */
#include "ssi_stub.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <linux/sched.h>
#include <sys/syscall.h>

long ssi_fork_as(pid_t pid)
{
    pid_t tid = pid;
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    args.set_tid = (uint64_t)(uintptr_t)&tid;
    args.set_tid_size = 1;
    return syscall(SYS_clone3, &args, sizeof args);
}

pid_t ssi_clone_stub(pid_t pid, void (*child)(void), int timeout_ms)
{
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) < 0)
        return -errno;
    long r = ssi_fork_as(pid);
    if (r == 0) {
        child();
        _exit(127); /* child() does not return */
    }
    int err = r < 0 ? -errno : 0;
    close(sync[1]);
    if (err) {
        close(sync[0]);
        return err;
    }
    if (r != pid) { /* cannot happen with set_tid; never leave a stray child behind */
        kill((pid_t)r, SIGKILL);
        close(sync[0]);
        return -EPROTO;
    }
    /* EOF once the child's close_range ran (or it died). Bounded: the caller serves others. */
    struct pollfd pf = { .fd = sync[0], .events = POLLIN };
    int pr;
    do
        pr = poll(&pf, 1, timeout_ms);
    while (pr < 0 && errno == EINTR);
    char c;
    ssize_t n = pr > 0 ? read(sync[0], &c, 1) : -1;
    close(sync[0]);
    if (n != 0) {
        kill(pid, SIGKILL);
        return -ETIMEDOUT;
    }
    return pid;
}
