/* Signal and status relay along the chain "client -> A -> P" (docs/ARCHITECTURE.md, "Processes of a
 * node"). A and P run in a process group of their own, A's (job.c), which has the terminal while the
 * program runs in the foreground, so the terminal delivers its own signals (Ctrl-C, Ctrl-\, Ctrl-Z,
 * background tty access) to P directly and the client never sees them. The client stays in the
 * caller's group: what reaches it (kill(2) aimed at its pid or at the caller's job, an alarm inherited
 * across exec) reached only it, and is passed down one hop at a time to P, once. Stops and deaths
 * travel back up so the caller's shell sees the job the way it would see the program itself. Each
 * process relays to exactly one child (relay_child, published once the fork returned); the handler
 * writes nothing. */
#include "client.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* Signals the client and A catch instead of the caller's disposition. A signal left out of this list
 * keeps the caller's disposition in all three processes untouched, so P has nothing to restore. */
static const int relayed[] = {
    SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU,   /* usually from the tty, to P's group directly */
    SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM,
};
#define N_RELAYED (sizeof relayed / sizeof relayed[0])

static struct {
    struct sigaction relayed[N_RELAYED];
    struct sigaction chld;
    struct sigaction pdeath;
    int pdeath_sig;            /* 0 in the client; A's parent-death signal in A (and so in P) */
    sigset_t mask;
} caller;

static volatile sig_atomic_t relay_child;
/* Set by the client's SIGCONT handler: tells a stop of ours that happened from one the kernel dropped. */
static volatile sig_atomic_t continued;

/* The client forwards to A with sigqueue and this value, so A can tell a forwarded signal from one
 * sent to the program's whole process group, which reached P directly already. Forging it gains
 * nothing: the sender could signal P itself. */
#define RELAY_COOKIE 0x53534952   /* "SSIR" */

static void relay_handler(int sig, siginfo_t *si, void *ctx)
{
    int saved = errno;
    pid_t child = relay_child;
    if (child <= 0) {
        /* nothing to relay to yet (cannot happen while the relayed signals are blocked) */
    } else if (caller.pdeath_sig) {
        /* in A */
        if (sig == caller.pdeath_sig) {
            /* The client is gone (kill -9 of ssi-run): take the program with it, as killing the
             * program itself would. */
            kill(child, SIGKILL);
        } else if (si->si_code == SI_QUEUE && si->si_value.sival_int == RELAY_COOKIE) {
            kill(child, sig);
        }
    } else if (si->si_code != SI_KERNEL || (sig != SIGTTIN && sig != SIGTTOU)) {
        /* In the client, which shares no process group with P, and which no process of the node can
         * name: whatever reaches us reached only us, so P gets it exactly once. That includes the
         * kernel's: our inherited alarm(2) timer, a hangup of our orphaned group, and the tty's
         * Ctrl-C while our group holds the terminal (in a pipeline, or made the foreground without
         * a SIGCONT; see job.c). Only a SIGTTIN or SIGTTOU of the kernel is about our own access to
         * the terminal, not the program's. */
        union sigval v = { .sival_int = RELAY_COOKIE };
        sigqueue(child, sig, v);
    }
    errno = saved;
}

static void relayed_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < N_RELAYED; i++)
        sigaddset(set, relayed[i]);
}

static void install(int sig, struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = relay_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    relayed_set(&sa.sa_mask);
    if (sigaction(sig, &sa, old) < 0)
        die("cannot install a handler for signal %d: %s", sig, strerror(errno));
}

void relay_take_signals(void)
{
    sigset_t block;
    relayed_set(&block);
    /* Held until the child's pid is published: a signal that arrives meanwhile waits instead of being
     * lost. The old mask is the caller's, which P gives back to the program. */
    sigprocmask(SIG_BLOCK, &block, &caller.mask);
    for (size_t i = 0; i < N_RELAYED; i++)
        install(relayed[i], &caller.relayed[i]);
    /* A caller that ignores SIGCHLD would make the kernel reap our child behind waitpid's back. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &dfl, &caller.chld);
}

void relay_take_parent_death(void)
{
    /* The highest realtime signal: no tty or job-control meaning, and glibc reserves only the lowest. */
    int sig = SIGRTMAX;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, sig);
    sigprocmask(SIG_BLOCK, &block, NULL);
    install(sig, &caller.pdeath);
    caller.pdeath_sig = sig;
    /* The client runs in another pid namespace (getppid() is 0 here), so a client killed between our
     * fork and this call goes unnoticed: that window is a few microseconds wide. */
    if (prctl(PR_SET_PDEATHSIG, sig) < 0)
        die("cannot set the parent-death signal: %s", strerror(errno));
}

void relay_set_child(pid_t child)
{
    relay_child = child;
    sigset_t mask = caller.mask;
    for (size_t i = 0; i < N_RELAYED; i++)
        sigdelset(&mask, relayed[i]);
    if (caller.pdeath_sig)
        sigdelset(&mask, caller.pdeath_sig);
    sigprocmask(SIG_SETMASK, &mask, NULL);
}

void relay_restore_caller(void)
{
    /* The client was just exec'd, so every recorded disposition is SIG_DFL or SIG_IGN: restoring them
     * runs no handler here, and a signal that arrives from now on acts on P as on the program. */
    for (size_t i = 0; i < N_RELAYED; i++)
        sigaction(relayed[i], &caller.relayed[i], NULL);
    sigaction(SIGCHLD, &caller.chld, NULL);
    if (caller.pdeath_sig)
        sigaction(caller.pdeath_sig, &caller.pdeath, NULL);
    sigprocmask(SIG_SETMASK, &caller.mask, NULL);
}

static void on_cont(int sig)
{
    continued = 1;
}

/* raise(sig) without glibc's cached thread id, which is the client's in a restart's A (restart.c). */
static void raise_self(int sig)
{
    syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
}

/* Stop ourselves (group: our whole process group, as the tty's Ctrl-Z would) with the child's stop
 * signal, so the shell's view (WSTOPSIG, "Stopped (tty input)") matches what stopped the program. The
 * tty stop signals are caught here, hence the brief SIG_DFL. Returns once we run again; in the client,
 * says whether we stopped at all: the kernel drops SIGTSTP, SIGTTIN and SIGTTOU in an orphaned
 * process group, where nobody could continue us. */
static int stop_like(int sig, int group)
{
    continued = 0;
    if (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU) {
        raise_self(SIGSTOP);
        return 1;
    }
    struct sigaction dfl, ours;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, &ours);
    if (!group || kill(0, sig) < 0)
        raise_self(sig);
    sigaction(sig, &ours, NULL);
    return continued;
}

int relay_wait(pid_t child, int job)
{
    if (job) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_cont;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGCONT, &sa, NULL);
        sigset_t cont;
        sigemptyset(&cont);
        sigaddset(&cont, SIGCONT);
        sigprocmask(SIG_UNBLOCK, &cont, NULL);
    }
    for (;;) {
        int st;
        if (waitpid(child, &st, WUNTRACED | WCONTINUED) < 0) {
            if (errno == EINTR)
                continue;
            die("lost track of process %d: %s", (int)child, strerror(errno));
        }
        if (WIFSTOPPED(st)) {
            int sig = WSTOPSIG(st);
            int how = job ? job_stopped(sig) : JOB_STOP_SELF;
            if (how != JOB_RESUME) {
                int stopped = stop_like(sig, how == JOB_STOP_GROUP);
                if (job && !stopped && (sig == SIGTTIN || sig == SIGTTOU)) {
                    /* Our group is orphaned: the program's group is not (we are its parent), so
                     * its terminal access stops it instead of failing with EIO, and it would stop
                     * again at once. Hang it up, as the kernel does to the stopped members of a
                     * group that becomes orphaned. */
                    kill(-child, SIGHUP);
                }
                if (job)
                    job_continued();
            }
            /* We run again, so whoever continued us (fg, bg, kill -CONT) meant the job to run. The
             * client continues the program's whole group, which the tty stopped as a whole. */
            if (!job || kill(-child, SIGCONT) < 0)
                kill(child, SIGCONT);
            continue;
        }
        if (WIFCONTINUED(st))
            continue;
        return st;
    }
}

void relay_exit(int status, int group)
{
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    int sig = WTERMSIG(status);
    /* The program may have dumped core; our copy of its death must not add a core of ours. Dumpable 0
     * also covers a piped core_pattern, which ignores RLIMIT_CORE. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur != 0) {
        rl.rlim_cur = 0;
        setrlimit(RLIMIT_CORE, &rl);
    }
    prctl(PR_SET_DUMPABLE, 0);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    if (!group || kill(0, sig) < 0)
        raise_self(sig);
    /* Only a signal whose default is to ignore could get here; no program dies of one. */
    _exit(128 + sig);
}
