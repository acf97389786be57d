/* Signal and status relay along the chain "client -> A -> P" (docs/ARCHITECTURE.md, "Processes of a
 * node"). The client and A stay in the caller's session and process group, so the terminal delivers its
 * own signals (Ctrl-C, Ctrl-\, Ctrl-Z, background tty access, hangup) to P directly; what only the
 * client can receive (kill(2) aimed at its pid, an alarm inherited across exec) is passed down one hop
 * at a time. Stops and deaths travel back up so the caller's shell sees the job the way it would see
 * the program itself. Each process relays to exactly one child (relay_child, published once
 * the fork returned); the handler writes nothing. */
#include "client.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* Signals the client and A catch instead of the caller's disposition. A signal left out of this list
 * keeps the caller's disposition in all three processes untouched, so P has nothing to restore. */
static const int relayed[] = {
    SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU,   /* usually from the tty, which also signals P */
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
/* The client's handle on the caller's /proc (its own /proc is the node's once it entered the mount
 * namespace, where the pids of the caller's world do not exist); -1 in A and P. */
static int host_proc = -1;

/* The client forwards to A with sigqueue and this value, so A can tell a forwarded signal from one
 * sent to the whole process group, which reached P directly already. Forging it gains nothing: the
 * sender could signal P itself. */
#define RELAY_COOKIE 0x53534952   /* "SSIR" */

/* prefix + decimal pid, without stdio, which a signal handler must not use. */
static void pid_path(char *buf, const char *prefix, pid_t pid)
{
    char digits[16];
    int n = 0;
    size_t plen = strlen(prefix);
    memcpy(buf, prefix, plen);
    buf += plen;
    do {
        digits[n++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid > 0);
    while (n > 0)
        *buf++ = digits[--n];
    *buf = '\0';
}

/* Was this sent from inside the node? Such a sender cannot see the client's pid, so it aimed at the
 * caller's process group (kill(0), as in `trap 'kill 0' EXIT`): P got it directly if it is still a
 * member, and natively nobody else would get it. The kernel reports a sender from a descendant pid
 * namespace by its pid in that namespace, so: a pid that names a process in the node's /proc (our
 * /proc now) but none in the caller's. When both exist we cannot tell, and forward. */
static int sent_from_node(pid_t sender)
{
    if (host_proc < 0 || sender <= 0)
        return 0;
    char hp[24], np[32];
    struct stat st;
    pid_path(hp, "", sender);
    pid_path(np, "/proc/", sender);
    return fstatat(host_proc, hp, &st, 0) < 0 && errno == ENOENT && stat(np, &st) == 0;
}

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
    } else if (si->si_code == SI_KERNEL ? sig == SIGALRM : !sent_from_node(si->si_pid)) {
        /* In the client. SI_KERNEL means the tty (or an orphaned-group hangup) signalled the whole
         * foreground group, P included; forwarding would deliver it twice. SIGALRM from the kernel is
         * the client's inherited alarm(2) timer, which only the client receives. A kill(2) of our
         * process group from outside the node is forwarded although P got it too: nothing tells it
         * from a kill of our pid, which only we receive. */
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

void relay_take_signals(int caller_proc)
{
    host_proc = caller_proc;
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
    if (host_proc >= 0)
        close(host_proc);
    host_proc = -1;
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

/* Stop ourselves with the child's stop signal, so the shell's view (WSTOPSIG, "Stopped (tty input)")
 * matches what stopped the program. The tty stop signals are caught here, hence the brief SIG_DFL. */
static void stop_like(int sig)
{
    if (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU) {
        raise(SIGSTOP);
        return;
    }
    struct sigaction dfl, ours;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, &ours);
    raise(sig);
    sigaction(sig, &ours, NULL);
}

int relay_wait(pid_t child)
{
    for (;;) {
        int st;
        if (waitpid(child, &st, WUNTRACED | WCONTINUED) < 0) {
            if (errno == EINTR)
                continue;
            die("lost track of process %d: %s", (int)child, strerror(errno));
        }
        if (WIFSTOPPED(st)) {
            stop_like(WSTOPSIG(st));
            /* We run again, so whoever continued us (fg, bg, kill -CONT) meant the job to run. */
            kill(child, SIGCONT);
            continue;
        }
        if (WIFCONTINUED(st))
            continue;
        return st;
    }
}

void relay_exit(int status)
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
    raise(sig);
    /* Only a signal whose default is to ignore could get here; no program dies of one. */
    _exit(128 + sig);
}
