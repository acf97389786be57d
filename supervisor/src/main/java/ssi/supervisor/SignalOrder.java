package ssi.supervisor;

/**
 * A signal one node asks the owner node of the target to deliver on behalf of a trapped process
 * (docs/ARCHITECTURE.md: kill/tkill/tgkill/rt_sigqueueinfo/rt_tgsigqueueinfo aimed at another node).
 * Carried in an {@link RpcEnvelope}; immutable.
 *
 * @param scope     what pid/tid name
 * @param pid       PROCESS: the pid; THREAD: the tgid; TID: the tid; GROUP: the process group id; ALL: unused
 * @param tid       THREAD: the thread id; else 0
 * @param sig       0..64; 0 checks existence and permission only
 * @param senderGpid the sending process (thread group id), as si_pid
 * @param senderRuid the sender's real uid (si_uid, and the permission check)
 * @param senderEuid the sender's effective uid (permission check)
 * @param siginfo   the caller's siginfo for rt_sigqueueinfo/rt_tgsigqueueinfo (128 bytes), or null for
 *                  kill-style sends, which get SI_QUEUE with si_pid/si_uid of the sender
 */
record SignalOrder(Scope scope, int pid, int tid, int sig, int senderGpid, int senderRuid, int senderEuid,
                   byte[] siginfo) {
    enum Scope { PROCESS, THREAD, TID, GROUP, ALL }
}
