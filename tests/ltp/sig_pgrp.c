/*
 * sig_pgrp: kill(0, sig) signals every process of the caller's own process group, the caller
 * included, and no process of another group. The test first becomes a group leader so that the
 * runner (and timeout(1)) are not in the group it signals.
 */
#include "tst.h"

static volatile sig_atomic_t got;
static volatile pid_t from;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    from = si->si_pid;
    got = 1;
}

enum { MEMBERS = 3 };

int main(void)
{
    tst_watchdog(90);
    if (getpgrp() != getpid() && setpgid(0, 0) < 0)
        tst_brk("setpgid(0, 0)");
    tst_check_int(getpgrp(), getpid(), "the test leads its own process group");

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);

    pid_t me = getpid();
    int ready[2], go[2], result[2];
    if (pipe(ready) < 0 || pipe(go) < 0 || pipe(result) < 0)
        tst_brk("pipe");

    pid_t kids[MEMBERS + 1];
    for (int i = 0; i <= MEMBERS; i++) {
        kids[i] = tst_fork();
        if (kids[i] == 0) {
            close(ready[0]);
            close(go[1]);
            close(result[0]);
            int outsider = i == MEMBERS;
            if (outsider && setpgid(0, 0) < 0)
                _exit(2);
            tst_write_full(ready[1], "r", 1);
            char c;
            if (!outsider) {
                /* a group member: wait for SIGUSR1 and report who sent it */
                while (!got)
                    sigsuspend(&old);
                pid_t f = from;
                tst_write_full(result[1], &f, sizeof(f));
                _exit(0);
            }
            /* the outsider: once told the signal was sent, it must not have one pending */
            if (tst_read_full(go[0], &c, 1) != 1)
                _exit(3);
            sigset_t pend;
            sigpending(&pend);
            _exit(sigismember(&pend, SIGUSR1) ? 1 : 0);
        }
    }
    close(ready[1]);
    close(go[0]);
    close(result[1]);
    if (setpgid(kids[MEMBERS], kids[MEMBERS]) < 0 && errno != EACCES)
        tst_fail("setpgid(outsider): %s", strerror(errno));
    char c;
    for (int i = 0; i <= MEMBERS; i++)
        if (tst_read_full(ready[0], &c, 1) != 1)
            tst_fail("child %d never became ready", i);
    tst_check(getpgid(kids[0]) == me && getpgid(kids[MEMBERS]) == kids[MEMBERS],
              "members are in our group, the outsider in its own", "pgid(member)=%d pgid(outsider)=%d",
              (int)getpgid(kids[0]), (int)getpgid(kids[MEMBERS]));

    tst_check(kill(0, 0) == 0, "kill(0, 0) succeeds", "%s", strerror(errno));
    tst_check(kill(0, SIGUSR1) == 0, "kill(0, SIGUSR1) succeeds", "%s", strerror(errno));

    /* kill() queues the signal on every target before it returns */
    sigset_t pend;
    sigpending(&pend);
    tst_check(sigismember(&pend, SIGUSR1) == 1, "the sender itself (a member of the group) got SIGUSR1",
              "not pending in the sender");
    tst_write_full(go[1], "g", 1);

    int senders_ok = 0;
    for (int i = 0; i < MEMBERS; i++) {
        pid_t f = 0;
        if (tst_read_full(result[0], &f, sizeof(f)) == sizeof(f) && f == me)
            senders_ok++;
        else
            tst_fail("a group member reported si_pid %d, expected %d", (int)f, (int)me);
    }
    tst_check_int(senders_ok, MEMBERS, "every other group member received SIGUSR1 with si_pid of the sender");
    for (int i = 0; i < MEMBERS; i++) {
        char desc[64];
        snprintf(desc, sizeof(desc), "group member %d exits 0", i);
        tst_reap_ok(kids[i], desc);
    }
    tst_reap_ok(kids[MEMBERS], "the process of another group did not get the signal");

    got = 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
    tst_check(got && from == me, "the sender's own SIGUSR1 is delivered on unblock", "got=%d from=%d", (int)got,
              (int)from);
    tst_exit();
}
