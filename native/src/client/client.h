/* The ssi-run client (docs/ARCHITECTURE.md, "Processes of a node" and "Launch protocol"): the pieces
 * shared by the three processes it becomes. The client (caller's pid namespace and process group) forks
 * the launch stub A inside the node's namespaces; A makes a process group of its own (job.c) and forks
 * P, which installs the filter, hands the listener to the shim and execs the program (or, with
 * --restart, makes the restore stub the daemon rebuilds a checkpointed process in: restart.c). All three are
 * single-threaded; the signal handlers (relay.c) read the pid of the one child each process relays to,
 * and otherwise only what was set before they were installed. */
#ifndef SSI_CLIENT_H
#define SSI_CLIENT_H
#include <signal.h>
#include <stdint.h>
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
    int tty;               /* the caller's controlling terminal, CLOEXEC, or -1; A closes it */
    int tty_give;          /* job_give_at_start(): A takes the terminal for its group */
    /* --restart (restart.c): the image directory (absolute), else NULL */
    const char *restart_dir;
    const char *run_dir;
    int32_t restart_gpid;  /* --restart: the image's root gpid (restart_check) */
    int keep_root;         /* setuid mode of a restart: A holds root until its clone3, then drops to: */
    uid_t ruid;
    gid_t rgid;
};

/* relay.c */
/* Client side, right before forking A: records the caller's mask and dispositions, installs the relay
 * handlers with the relayed signals blocked (unblock with relay_set_child once the child is known). */
void relay_take_signals(void);
/* A side, right before forking P: also catches the signal A asks for when the client dies. */
void relay_take_parent_death(void);
/* Publishes the pid the handlers forward to and unblocks the relayed signals. */
void relay_set_child(pid_t child);
/* P side: the caller's dispositions and mask back, before anything else runs in P. */
void relay_restore_caller(void);
/* Waits for child, mirroring its stops on ourselves (and continuing it when we are continued), until it
 * exits or is killed; returns that wait status. job: child leads the program's process group and the
 * job_* calls decide about the terminal and the stop (the client); 0 in A. */
int relay_wait(pid_t child, int job);
/* Ends this process the way status says the child ended: same exit code, or death by the same signal
 * (without a core dump) so the status climbs the chain as 128+N. group: the signal goes to our whole
 * process group, ourselves included. */
__attribute__((noreturn)) void relay_exit(int status, int group);

/* job.c: the program's process group and the caller's terminal. The job_* calls are the client's. */
/* tcsetpgrp with SIGTTOU blocked (a background caller would be stopped by it otherwise). */
int tty_set_foreground(int fd, pid_t pgrp);
/* Before entering the node's mount namespace: finds the caller's controlling terminal (stdin, stdout,
 * stderr, else /dev/tty) and keeps a CLOEXEC descriptor on it above 2; returns it, or -1. */
int job_find_tty(void);
/* Before the fork: the program's group gets the terminal from the start (our group is the terminal's
 * foreground, and the program's stdin and stdout are the terminal). */
int job_give_at_start(void);
/* Right after forking A: A's pid leads the program's group; give_now: job_give_at_start() before the
 * fork, the terminal goes to that group. */
void job_start(pid_t a, int give_now);
/* A's group stopped with sig: takes the terminal back if it had it, and says what to do. */
enum { JOB_RESUME, JOB_STOP_SELF, JOB_STOP_GROUP };
int job_stopped(int sig);
/* We run again after a stop: the terminal goes back to the program's group if we are the foreground. */
void job_continued(void);
/* The terminal back to our group if the program's group has it; on every way out of the client.
 * Returns whether it had it. */
int job_restore_tty(void);

/* launch.c */
/* Runs in the client's child, inside the node's namespaces: becomes A, forks P, never returns. */
__attribute__((noreturn)) void launch_stub(const struct launch_req *req);

/* restart.c */
/* Runs in the client's child, inside the node's namespaces: becomes A, restarts req->restart_dir as its
 * child (docs/ARCHITECTURE.md, "Foreground restart") and relays it; never returns. */
__attribute__((noreturn)) void restart_stub(const struct launch_req *req);
/* In a child of the client inside the node's namespaces, before A exists: every check of the restart
 * (RESTART_FG with stub 0); *gpid gets the image's root gpid, *ppid the pid its parent had (0: unknown).
 * A refusal is printed and the child exits SSI_RUN_FAILED. */
void restart_check(const struct launch_req *req, int32_t *gpid, int32_t *ppid);
/* The client's fork of A for a restart: A gets pid ppid when that is free in the node's pid namespace
 * (clone3 set_tid; the client is root there until after this), any pid otherwise. fork()'s returns. */
pid_t restart_fork(pid_t ppid);

/* ssi-run.c */
/* All three uids and gids become uid/gid for good; dies if any privilege is left. */
void drop_privileges(uid_t uid, gid_t gid);
/* "ssi-run: <message>" on stderr in one write, so lines of concurrent processes do not interleave. */
__attribute__((format(printf, 1, 2))) void say(const char *fmt, ...);
/* say(), then exit SSI_RUN_FAILED. */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);

#endif
