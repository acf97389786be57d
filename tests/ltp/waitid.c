/*
 * waitid: P_PID, P_PGID and P_ALL; the siginfo it fills (si_pid, si_status, si_code, si_uid,
 * si_signo); WNOHANG with si_pid 0; WNOWAIT leaving the child waitable; ECHILD.
 */
#include "tst.h"

/* A child that blocks until the pipe's write end closes, then exits with code. */
static pid_t child_exit_on_eof(int rfd, int wfd, int code, pid_t pgid)
{
    pid_t pid = tst_fork();
    if (pid == 0) {
        char c;
        if (pgid >= 0 && setpgid(0, pgid) < 0)
            _exit(100);
        close(wfd);
        while (read(rfd, &c, 1) > 0)
            ;
        _exit(code);
    }
    /* set the group from both sides, so it holds whichever runs first */
    if (pgid >= 0 && setpgid(pid, pgid ? pgid : pid) < 0 && errno != EACCES)
        tst_fail("setpgid(%d, %d): %s", (int)pid, (int)pgid, strerror(errno));
    return pid;
}

static void by_pid(void)
{
    pid_t pid = tst_fork();
    if (pid == 0)
        _exit(7);
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int r = waitid(P_PID, pid, &si, WEXITED);
    tst_check(r == 0, "waitid(P_PID, child, WEXITED) returns 0", "returned %d: %s", r, strerror(errno));
    tst_check_int(si.si_pid, pid, "P_PID: si_pid is the child's pid");
    tst_check_int(si.si_status, 7, "P_PID: si_status is the exit code");
    tst_check_int(si.si_code, CLD_EXITED, "P_PID: si_code is CLD_EXITED");
    tst_check_int(si.si_signo, SIGCHLD, "P_PID: si_signo is SIGCHLD");
    tst_check_int(si.si_uid, getuid(), "P_PID: si_uid is the child's uid");

    /* killed child */
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid = child_exit_on_eof(p[0], p[1], 0, -1);
    close(p[0]);
    kill(pid, SIGKILL);
    memset(&si, 0, sizeof(si));
    r = waitid(P_PID, pid, &si, WEXITED);
    tst_check(r == 0 && si.si_pid == pid && si.si_code == CLD_KILLED && si.si_status == SIGKILL,
              "P_PID on a SIGKILLed child: CLD_KILLED, si_status == SIGKILL", "r=%d si_pid=%d code=%d status=%d",
              r, (int)si.si_pid, si.si_code, si.si_status);
    close(p[1]);
}

static void nohang_and_nowait(void)
{
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t pid = child_exit_on_eof(p[0], p[1], 9, -1);
    close(p[0]);

    siginfo_t si;
    memset(&si, 0xff, sizeof(si));
    si.si_pid = 12345;
    int r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG);
    tst_check(r == 0 && si.si_pid == 0, "waitid(P_ALL, WNOHANG) with a running child: returns 0, si_pid 0",
              "r=%d si_pid=%d", r, (int)si.si_pid);

    close(p[1]);
    memset(&si, 0, sizeof(si));
    r = waitid(P_PID, pid, &si, WEXITED | WNOWAIT);
    tst_check(r == 0 && si.si_pid == pid && si.si_status == 9, "waitid(WNOWAIT) reports the exited child",
              "r=%d si_pid=%d status=%d", r, (int)si.si_pid, si.si_status);
    memset(&si, 0, sizeof(si));
    r = waitid(P_ALL, 0, &si, WEXITED);
    tst_check(r == 0 && si.si_pid == pid && si.si_status == 9,
              "after WNOWAIT the child is still waitable (P_ALL returns it)", "r=%d si_pid=%d status=%d", r,
              (int)si.si_pid, si.si_status);
    tst_check_errno(waitid(P_PID, pid, &si, WEXITED), ECHILD, "waitid on the reaped child fails with ECHILD");
}

static void by_pgid(void)
{
    int p[2];
    if (pipe(p) < 0)
        tst_brk("pipe");
    pid_t a = child_exit_on_eof(p[0], p[1], 31, 0);  /* leader of a new group */
    pid_t b = child_exit_on_eof(p[0], p[1], 32, a);  /* joins a's group */
    pid_t c = child_exit_on_eof(p[0], p[1], 33, -1); /* stays in our group */
    close(p[0]);
    tst_check(getpgid(a) == a && getpgid(b) == a && getpgid(c) == getpgrp(), "children placed in their groups",
              "pgid(a)=%d pgid(b)=%d pgid(c)=%d a=%d ours=%d", (int)getpgid(a), (int)getpgid(b),
              (int)getpgid(c), (int)a, (int)getpgrp());
    close(p[1]);

    int got_a = 0, got_b = 0, bad = 0;
    for (int i = 0; i < 2; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_PGID, a, &si, WEXITED) < 0) {
            tst_fail("waitid(P_PGID, %d) #%d: %s", (int)a, i, strerror(errno));
            bad = 1;
            continue;
        }
        if (si.si_pid == a && si.si_status == 31)
            got_a++;
        else if (si.si_pid == b && si.si_status == 32)
            got_b++;
        else {
            tst_fail("waitid(P_PGID, %d) returned pid %d status %d, not a member of the group", (int)a,
                     (int)si.si_pid, si.si_status);
            bad = 1;
        }
    }
    if (!bad)
        tst_check(got_a == 1 && got_b == 1, "waitid(P_PGID) returns both members of the group once each",
                  "a %d times, b %d times", got_a, got_b);

    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int r = waitid(P_PGID, a, &si, WEXITED);
    tst_check(r == -1 && errno == ECHILD,
              "waitid(P_PGID) with only a child of another group left fails with ECHILD",
              "returned %d si_pid=%d", r, (int)si.si_pid);

    memset(&si, 0, sizeof(si));
    r = waitid(P_PGID, 0, &si, WEXITED); /* 0: our own group */
    tst_check(r == 0 && si.si_pid == c && si.si_status == 33, "waitid(P_PGID, 0) returns the child of our group",
              "r=%d si_pid=%d status=%d, expected pid %d", r, (int)si.si_pid, si.si_status, (int)c);
}

static void all_children(void)
{
    enum { N = 3 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = tst_fork();
        if (pids[i] == 0)
            _exit(40 + i);
    }
    int found = 0;
    for (int k = 0; k < N; k++) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_ALL, 0, &si, WEXITED) < 0)
            break;
        for (int i = 0; i < N; i++)
            if (si.si_pid == pids[i] && si.si_status == 40 + i)
                found |= 1 << i;
    }
    tst_check_int(found, (1 << N) - 1, "waitid(P_ALL) returns every child with its status");
    siginfo_t si;
    tst_check_errno(waitid(P_ALL, 0, &si, WEXITED), ECHILD, "waitid(P_ALL) with no children fails with ECHILD");
}

int main(void)
{
    tst_watchdog(90);
    by_pid();
    nohang_and_nowait();
    by_pgid();
    all_children();
    tst_exit();
}
