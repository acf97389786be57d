/*
 * pgrp_session: process groups and sessions. setpgid moves a child into a new group (seen with
 * getpgid from both sides), another child joins it, kill(-pgid) signals the whole group and only it;
 * setsid in a child makes it the leader of a new session and group (getsid() == getpid()); setsid by
 * a group leader fails with EPERM; setpgid across sessions fails with EPERM.
 */
#include "tst.h"

/* A child that blocks until the pipe's write end closes, then exits 0. */
static pid_t waiter(int rfd, int wfd, pid_t join_pgid)
{
    pid_t pid = tst_fork();
    if (pid == 0) {
        char c;
        close(wfd);
        if (join_pgid >= 0 && setpgid(0, join_pgid) < 0)
            _exit(100);
        while (read(rfd, &c, 1) > 0)
            ;
        _exit(0);
    }
    if (join_pgid >= 0 && setpgid(pid, join_pgid ? join_pgid : pid) < 0 && errno != EACCES)
        tst_fail("setpgid(%d, %d) in the parent: %s", (int)pid, (int)join_pgid, strerror(errno));
    return pid;
}

static void groups(void)
{
    pid_t mypgrp = getpgrp();
    tst_check_int(getpgid(0), mypgrp, "getpgid(0) == getpgrp()");
    tst_check_int(getpgid(getpid()), mypgrp, "getpgid(getpid()) == getpgrp()");

    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t bystander = waiter(p[0], p[1], -1);
    tst_check_int(getpgid(bystander), mypgrp, "a forked child starts in the parent's group");
    pid_t a = waiter(p[0], p[1], 0);
    pid_t b = waiter(p[0], p[1], a);
    close(p[0]);
    tst_check_int(getpgid(a), a, "setpgid(child, child): the child leads a new group");
    tst_check_int(getpgid(b), a, "a second child joins that group with setpgid(child, pgid)");
    tst_check_int(getpgrp(), mypgrp, "the parent's own group is unchanged");
    tst_check_int(getsid(a), getsid(0), "the new group stays in the parent's session");

    /* kill(-pgid): both members die, the bystander and we do not */
    tst_check(kill(-a, SIGTERM) == 0, "kill(-pgid, SIGTERM) succeeds", "%s", strerror(errno));
    int st = 0;
    pid_t r = waitpid(a, &st, 0);
    tst_check(r == a && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "the group leader got SIGTERM",
              "r=%d status=0x%x", (int)r, st);
    st = 0;
    r = waitpid(b, &st, 0);
    tst_check(r == b && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "the other member got SIGTERM",
              "r=%d status=0x%x", (int)r, st);
    r = waitpid(bystander, &st, WNOHANG);
    tst_check_int(r, 0, "the child of another group is still running");
    tst_check_errno(kill(-a, 0), ESRCH, "kill(-pgid) of an emptied group fails with ESRCH");
    close(p[1]);
    tst_reap_ok(bystander, "the bystander exits normally");

    /* waitpid(-pgid) */
    if (pipe(p) < 0)
        tst_brk("pipe");
    a = waiter(p[0], p[1], 0);
    close(p[0]);
    close(p[1]);
    r = waitpid(-a, &st, 0);
    tst_check_int(r, a, "waitpid(-pgid) reaps the member of that group");
}

static void sessions(void)
{
    pid_t mysid = getsid(0);
    int rep[2], hold[2];
    if (pipe(rep) < 0 || pipe(hold) < 0)
        tst_brk("pipe");
    pid_t child = tst_fork();
    if (child == 0) {
        close(rep[0]);
        close(hold[1]);
        pid_t before = getsid(0);
        pid_t s = setsid();
        pid_t info[5] = { before, s, getsid(0), getpgrp(), getpid() };
        tst_write_full(rep[1], info, sizeof(info));
        char c;
        while (read(hold[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(rep[1]);
    close(hold[0]);
    pid_t info[5] = { 0 };
    if (tst_read_full(rep[0], info, sizeof(info)) != sizeof(info))
        tst_fail("the setsid child did not report");
    tst_check_int(info[0], mysid, "a child starts in the parent's session");
    tst_check_int(info[1], child, "setsid() in a child returns the child's pid");
    tst_check(info[2] == info[4], "after setsid, getsid(0) == getpid() in the child", "getsid %d getpid %d",
              (int)info[2], (int)info[4]);
    tst_check(info[3] == info[4], "after setsid, the child leads a new group (getpgrp() == getpid())",
              "getpgrp %d getpid %d", (int)info[3], (int)info[4]);
    tst_check_int(getsid(child), child, "getsid(child) seen from the parent is the child's pid");
    tst_check_int(getpgid(child), child, "getpgid(child) seen from the parent is the child's pid");
    tst_check_int(getsid(0), mysid, "the parent's session is unchanged");
    tst_check_errno(setpgid(child, getpgrp()), EPERM, "setpgid on a session leader child fails with EPERM");
    pid_t bystander = tst_fork();
    if (bystander == 0)
        _exit(setpgid(0, child) == -1 && errno == EPERM ? 0 : 1);
    tst_reap_ok(bystander, "setpgid into the group of another session fails with EPERM");
    close(hold[1]);
    tst_reap_ok(child, "the session leader child exits 0");
    close(rep[0]);

    /* a group leader may not create a session */
    child = tst_fork();
    if (child == 0) {
        if (setpgid(0, 0) < 0)
            _exit(2);
        errno = 0;
        pid_t s = setsid();
        _exit(s == -1 && errno == EPERM ? 0 : 1);
    }
    tst_reap_ok(child, "setsid() by a process group leader fails with EPERM");

    /* setsid twice: the second fails, it is a group leader now */
    child = tst_fork();
    if (child == 0) {
        if (setsid() < 0)
            _exit(2);
        _exit(setsid() == -1 && errno == EPERM ? 0 : 1);
    }
    tst_reap_ok(child, "a second setsid() in the same process fails with EPERM");

    /* a grandchild of a new session's leader inherits that session */
    child = tst_fork();
    if (child == 0) {
        pid_t s = setsid();
        int gp[2];
        if (s < 0 || pipe(gp) < 0)
            _exit(2);
        pid_t g = fork();
        if (g == 0) {
            pid_t sg[2] = { getsid(0), getpgrp() };
            tst_write_full(gp[1], sg, sizeof(sg));
            _exit(0);
        }
        pid_t sg[2] = { 0, 0 };
        tst_read_full(gp[0], sg, sizeof(sg));
        waitpid(g, NULL, 0);
        _exit(sg[0] == s && sg[1] == s ? 0 : 1);
    }
    tst_reap_ok(child, "a child of the new session leader is in its session and group");
}

int main(void)
{
    tst_watchdog(90);
    groups();
    sessions();
    tst_exit();
}
