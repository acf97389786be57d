/* Job control of the client (docs/ARCHITECTURE.md, "Processes of a node"), done the way a job-control
 * shell or sudo does it. The program runs in a process group of its own, A's, created inside the node
 * so that getpgrp() there is A's gpid, a real cluster pid (the caller's group has no pid in the node's
 * namespace). The session stays the caller's: its leader lives outside the node, so getsid() says 0
 * inside, and a new session would lose the terminal.
 *
 * When the caller ran us in the terminal's foreground, the terminal goes to the program's group while
 * the program runs (so Ctrl-C, Ctrl-\ and Ctrl-Z reach only the program, and its reads and tcgetpgrp()
 * behave as in a foreground job), and comes back to our group, the caller's job, when the program stops
 * or ends. Started in the background, we leave the terminal alone: the program gets SIGTTIN as
 * natively, and the stop climbs up to the caller's shell like any other.
 *
 * One exception keeps pipelines working: our group is the caller's whole job, and in `ssi-run cmd |
 * less` less shares it and reads the terminal too. So the terminal goes to the program's group at once
 * only when the program's stdin and stdout are both the terminal (no pipeline member has both).
 * Otherwise it goes there when the program needs it: a program that reads it, or changes its modes,
 * stops with SIGTTIN or SIGTTOU, and we then hand it the terminal and continue it (job_stopped). Until
 * then the terminal's Ctrl-C and Ctrl-Z reach our group, and the relay forwards them to the program. */
#include "client.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>

static struct {
    int fd;        /* the caller's controlling terminal, CLOEXEC, >= 3; -1: none */
    pid_t own;     /* our process group, the caller's job */
    pid_t prog;    /* the program's process group: A's pid as we see it; 0 before the fork */
    int want;      /* the program's group gets the terminal whenever we are the foreground */
    int given;     /* the terminal went to the program's group and has not come back yet */
} term = { -1, 0, 0, 0, 0 };

int tty_set_foreground(int fd, pid_t pgrp)
{
    /* From a background group, tcsetpgrp raises SIGTTOU unless it is blocked or ignored. */
    sigset_t ttou, old;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    sigprocmask(SIG_BLOCK, &ttou, &old);
    int rc = tcsetpgrp(fd, pgrp);
    int err = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return rc;
}

/* A descriptor at 3 or above, so that closing our stdin and stdout later keeps it. */
static int high_fd(int fd)
{
    if (fd < 0 || fd > STDERR_FILENO)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    close(fd);
    return high;
}

int job_find_tty(void)
{
    term.own = getpgrp();
    /* tcgetpgrp() answers only on our controlling terminal (ENOTTY on any other tty). */
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO && term.fd < 0; fd++) {
        if (tcgetpgrp(fd) >= 0)
            term.fd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    }
    /* stdio redirected: the program may still open /dev/tty (a password prompt) */
    if (term.fd < 0)
        term.fd = high_fd(open("/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
    struct stat t, in, out;
    term.want = term.fd >= 0 && fstat(term.fd, &t) == 0 && fstat(STDIN_FILENO, &in) == 0
        && fstat(STDOUT_FILENO, &out) == 0 && S_ISCHR(in.st_mode) && S_ISCHR(out.st_mode)
        && in.st_rdev == t.st_rdev && out.st_rdev == t.st_rdev;
    return term.fd;
}

static int job_foreground(void)
{
    return term.fd >= 0 && tcgetpgrp(term.fd) == term.own;
}

int job_give_at_start(void)
{
    return term.want && job_foreground();
}

static void give(void)
{
    tty_set_foreground(term.fd, term.prog);
    term.given = 1;
}

void job_start(pid_t a, int give_now)
{
    term.prog = a;
    /* A does the same from inside: whichever runs first creates the group, so that it exists when
     * either hands it the terminal, and the program never runs outside it. */
    setpgid(a, a);
    if (give_now)
        give();
}

int job_restore_tty(void)
{
    if (!term.given)
        return 0;
    /* As a shell does when its foreground job stops or ends, whichever group the program left the
     * terminal to (a job of its own, a group that is gone). */
    tty_set_foreground(term.fd, term.own);
    term.given = 0;
    return 1;
}

int job_stopped(int sig)
{
    if (term.fd < 0)
        return JOB_STOP_SELF;
    if (!term.given && (sig == SIGTTIN || sig == SIGTTOU) && job_foreground()) {
        /* The program touched the terminal while our group holds it: it did not get the terminal
         * at start (see above), or the caller's shell made us the foreground without stopping us
         * (bash's fg of a running background job sends no SIGCONT). Pass the terminal on, for good,
         * and let the program retry, as it would natively. */
        term.want = 1;
        give();
        return JOB_RESUME;
    }
    int was_given = term.given;
    job_restore_tty();
    /* With the terminal ours before, a SIGTSTP stop is (nearly always) Ctrl-Z, which natively stops
     * the caller's whole foreground job, not only us: a non-interactive caller (make, bash -c) must
     * stop too, or its shell would see nothing stopped. */
    return was_given && sig == SIGTSTP ? JOB_STOP_GROUP : JOB_STOP_SELF;
}

void job_continued(void)
{
    /* fg gives the terminal to our group before SIGCONT; bg does not. */
    if (term.want && !term.given && job_foreground())
        give();
}
