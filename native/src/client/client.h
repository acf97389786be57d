/* The ssi-run client (docs/ARCHITECTURE.md, "Processes of a node" and "Launch protocol"): the pieces
 * shared by the three processes it becomes. The client (caller's pid namespace) forks the launch stub
 * A inside the node's namespaces; A forks P, which installs the filter, hands the listener to the shim
 * and execs the program. All three are single-threaded; the signal handlers (relay.c) read the pid of
 * the one child each process relays to, and otherwise only what was set before they were installed. */
#ifndef SSI_CLIENT_H
#define SSI_CLIENT_H
#include <signal.h>
#include <sys/types.h>

/* Exit status for failures of ssi-run itself (as env(1), nohup(1) and timeout(1) do): distinct from
 * 126/127, which keep their shell meaning for the program's exec. */
#define SSI_RUN_FAILED 125

struct launch_req {
    int node;
    int sock;              /* connected launch socket, CLOEXEC */
    int shim_pidfd;        /* the shim (node init), CLOEXEC; only the client needs it after the fork */
    char **argv;           /* program and its arguments, NULL-terminated */
    int argc;
    char **envp;           /* NULL: the current environ; else the caller's environment as exec'd */
};

/* relay.c */
/* Client side, right before forking A: records the caller's mask and dispositions, installs the relay
 * handlers with the relayed signals blocked (unblock with relay_set_child once the child is known).
 * caller_proc: an O_PATH fd on the caller's /proc, taken before entering the node's mount namespace
 * (relay owns it from now on), or -1. */
void relay_take_signals(int caller_proc);
/* A side, right before forking P: also catches the signal A asks for when the client dies. */
void relay_take_parent_death(void);
/* Publishes the pid the handlers forward to and unblocks the relayed signals. */
void relay_set_child(pid_t child);
/* P side: the caller's dispositions and mask back, before anything else runs in P. */
void relay_restore_caller(void);
/* Waits for child, mirroring its stops on ourselves (and continuing it when we are continued), until it
 * exits or is killed; returns that wait status. */
int relay_wait(pid_t child);
/* Ends this process the way status says the child ended: same exit code, or death by the same signal
 * (without a core dump) so the status climbs the chain as 128+N. */
__attribute__((noreturn)) void relay_exit(int status);

/* launch.c */
/* Runs in the client's child, inside the node's namespaces: becomes A, forks P, never returns. */
__attribute__((noreturn)) void launch_stub(const struct launch_req *req);

/* ssi-run.c */
/* "ssi-run: <message>" on stderr in one write, so lines of concurrent processes do not interleave. */
__attribute__((format(printf, 1, 2))) void say(const char *fmt, ...);
/* say(), then exit SSI_RUN_FAILED. */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);

#endif
