package ssi.supervisor;

import ssi.comm.NodeAddress;
import ssi.comm.NodeState;
import ssi.comm.NodeUnreachableException;
import ssi.shim.Notification;
import ssi.shim.SyscallTable;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The sending side of signal syscalls that cross nodes (syscalls.tsv: kill, tkill, tgkill,
 * rt_sigqueueinfo, rt_tgsigqueueinfo). The shim lets everything aimed at this node run natively, fails
 * what is aimed at node-internal pids (below 1 << 14) with ESRCH itself, and forwards the rest here: this
 * class identifies the caller from /proc, asks the owner node of the target to check permission and
 * deliver (a {@link SignalOrder} over RPC), and answers the trapped syscall with the result. kill(-1)
 * never continues natively (natively it would reach every process of the node's pid namespace, this
 * daemon included): every node, this one too, delivers it to the cluster processes the sender may signal
 * there, and the caller gets 0 if any process got it, else ESRCH.
 *
 * <p>Threads: {@link #onNotification} is called on the shim-link reader thread and only hands the
 * notification to the executor; the work and the reply happen on executor threads and on the threads
 * that complete RPC futures (replying to the shim is thread-safe and does not block).
 */
final class SignalHandlers {
    /** Answers one trapped syscall: error is 0 or a negative errno; cont lets the syscall run natively. */
    @FunctionalInterface
    interface Replier {
        void reply(Notification n, long val, int error, boolean cont);
    }

    static final int NR_KILL = 62, NR_TKILL = 200, NR_TGKILL = 234, NR_RT_SIGQUEUEINFO = 129, NR_RT_TGSIGQUEUEINFO = 297;
    private static final int EPERM = 1, ESRCH = 3, EIO = 5, EFAULT = 14, EINVAL = 22, ENOSYS = 38;

    /** What to answer: errno (positive, 0 for success), or let the syscall continue natively. */
    private record Answer(int errno, boolean cont) {
        static final Answer CONTINUE = new Answer(0, true);
        static Answer of(int errno) { return new Answer(errno, false); }
    }

    private final int self;
    private final PidLayout layout;
    private final ProcessTable table;
    private final Cluster cluster;
    private final Executor executor;
    private final Replier replier;
    private final SyscallTable syscalls;
    private final long rpcTimeoutMillis;
    private final NodeLog log;

    SignalHandlers(int self, PidLayout layout, ProcessTable table, Cluster cluster, Executor executor, Replier replier,
                   SyscallTable syscalls, long rpcTimeoutMillis, NodeLog log) {
        this.self = self;
        this.layout = layout;
        this.table = table;
        this.cluster = cluster;
        this.executor = executor;
        this.replier = replier;
        this.syscalls = syscalls;
        this.rpcTimeoutMillis = rpcTimeoutMillis;
        this.log = log;
    }

    /** Link-thread entry point: never blocks. */
    void onNotification(Notification n) {
        executor.execute(() -> handle(n));
    }

    /** Decides one trapped syscall and replies to it (possibly later, when the owner node answers). */
    void handle(Notification n) {
        CompletableFuture<Answer> answer;
        try {
            answer = decide(n);
        } catch (RuntimeException e) {
            log.error("trapped " + name(n.nr()) + " of process " + n.pid() + " failed", e);
            answer = CompletableFuture.completedFuture(Answer.of(EIO));
        }
        answer.whenComplete((a, e) -> {
            if (e != null) {
                log.error("trapped " + name(n.nr()) + " of process " + n.pid() + " failed", ControlService.cause(e));
                a = Answer.of(EIO);
            }
            replier.reply(n, 0, -a.errno(), a.cont());
        });
    }

    private CompletableFuture<Answer> decide(Notification n) {
        long[] a = n.args();
        return switch (n.nr()) {
            case NR_KILL -> {
                int pid = (int) a[0], sig = (int) a[1];
                if (!validSignal(sig)) yield done(EINVAL);
                if (pid == -1) yield broadcast(n, sig);
                if (pid > 0) yield send(n, SignalOrder.Scope.PROCESS, pid, 0, sig, null);
                if (pid < -1) yield send(n, SignalOrder.Scope.GROUP, -pid, 0, sig, null);
                yield CompletableFuture.completedFuture(Answer.CONTINUE); // kill(0, sig): the caller's own group
            }
            case NR_TKILL -> {
                int tid = (int) a[0], sig = (int) a[1];
                if (tid <= 0 || !validSignal(sig)) yield done(EINVAL);
                yield send(n, SignalOrder.Scope.TID, tid, 0, sig, null);
            }
            case NR_TGKILL -> {
                int tgid = (int) a[0], tid = (int) a[1], sig = (int) a[2];
                if (tgid <= 0 || tid <= 0 || !validSignal(sig)) yield done(EINVAL);
                yield send(n, SignalOrder.Scope.THREAD, tgid, tid, sig, null);
            }
            case NR_RT_SIGQUEUEINFO -> {
                int pid = (int) a[0], sig = (int) a[1];
                if (pid <= 0) yield CompletableFuture.completedFuture(Answer.CONTINUE); // not a remote target
                yield queue(n, SignalOrder.Scope.PROCESS, pid, 0, sig, a[2]);
            }
            case NR_RT_TGSIGQUEUEINFO -> {
                int tgid = (int) a[0], tid = (int) a[1], sig = (int) a[2];
                if (tgid <= 0 || tid <= 0) yield done(EINVAL);
                yield queue(n, SignalOrder.Scope.THREAD, tgid, tid, sig, a[3]);
            }
            default -> {
                log.once("nr:" + n.nr(), "the shim forwarded " + name(n.nr()) + ", which the daemon does not handle: "
                        + "answering ENOSYS (logged once)");
                yield done(ENOSYS);
            }
        };
    }

    /** rt_(tg)sigqueueinfo: the caller's own siginfo travels, checked like the kernel checks it. */
    private CompletableFuture<Answer> queue(Notification n, SignalOrder.Scope scope, int pid, int tid, int sig, long infoAddr) {
        byte[] info = table.readMemory(n.pid(), infoAddr, SigInfo.SIZE);
        if (info == null) return done(EFAULT);
        // Only the kernel may send non-negative codes, and SI_TKILL only to oneself; a remote target is
        // never the caller itself.
        int code = SigInfo.code(info);
        if (code >= 0 || code == SigInfo.SI_TKILL) return done(EPERM);
        if (!validSignal(sig)) return done(EINVAL);
        return send(n, scope, pid, tid, sig, info);
    }

    /** Sends an order to the node that owns target (a pid, tgid, tid or process group id). */
    private CompletableFuture<Answer> send(Notification n, SignalOrder.Scope scope, int target, int tid, int sig, byte[] info) {
        int owner = layout.nodeOf(target);
        if (owner == self) return CompletableFuture.completedFuture(Answer.CONTINUE); // native is right here
        if (owner <= 0 || cluster.node(owner) == null || cluster.state(owner) == NodeState.DOWN) return done(ESRCH);
        ProcessTable.Entry sender = table.read(n.pid());
        if (sender == null) return done(ESRCH); // the caller died; nobody reads the answer
        SignalOrder order = new SignalOrder(scope, target, tid, sig, sender.tgid(), sender.ruid(), sender.euid(), info);
        return cluster.call(owner, RpcEnvelope.signal(order))
                .orTimeout(rpcTimeoutMillis + 1_000, TimeUnit.MILLISECONDS)
                .handle((bytes, e) -> {
                    if (e == null) {
                        try {
                            return Answer.of(RpcEnvelope.decodeSignalReply(bytes));
                        } catch (Exception bad) {
                            e = bad;
                        }
                    }
                    Throwable c = ControlService.cause(e);
                    if (c instanceof NodeUnreachableException || c instanceof TimeoutException) {
                        // the target cannot be reached: for the sender it is as gone as a dead process
                        return Answer.of(ESRCH);
                    }
                    log.error(name(n.nr()) + " from process " + n.pid() + " to " + target + " on node " + owner + " failed", c);
                    return Answer.of(EIO);
                });
    }

    /**
     * kill(-1, sig): a {@link SignalOrder.Scope#ALL} order to every node that is up, this one included (its
     * own delivery goes through the same call), never native. Each node signals its cluster processes the
     * sender may signal, except the sender; the kernel's rule for -1 gives the answer: 0 if any node signalled
     * a process, else ESRCH. A node that cannot be reached counts as one where nothing was signalled.
     */
    private CompletableFuture<Answer> broadcast(Notification n, int sig) {
        ProcessTable.Entry sender = table.read(n.pid());
        if (sender == null) return done(ESRCH);
        SignalOrder order = new SignalOrder(SignalOrder.Scope.ALL, 0, 0, sig, sender.tgid(), sender.ruid(), sender.euid(), null);
        List<Integer> targets = new ArrayList<>();
        targets.add(self);
        for (NodeAddress a : cluster.nodes()) {
            if (a.id() != self && cluster.state(a.id()) == NodeState.UP) targets.add(a.id());
        }
        List<CompletableFuture<Integer>> sent = new ArrayList<>();
        for (int node : targets) {
            sent.add(cluster.call(node, RpcEnvelope.signal(order))
                    .orTimeout(rpcTimeoutMillis + 1_000, TimeUnit.MILLISECONDS)
                    .handle((bytes, e) -> {
                        if (e == null) {
                            try {
                                return RpcEnvelope.decodeSignalReply(bytes);
                            } catch (Exception bad) {
                                e = bad;
                            }
                        }
                        log.info("kill(-1) from process " + n.pid() + " did not reach node " + node + ": "
                                + ControlService.cause(e).getMessage());
                        return ESRCH;
                    }));
        }
        return CompletableFuture.allOf(sent.toArray(CompletableFuture[]::new))
                .thenApply(v -> Answer.of(sent.stream().anyMatch(f -> f.join() == 0) ? 0 : ESRCH));
    }

    private static boolean validSignal(int sig) {
        return sig >= 0 && sig <= LocalNode.MAX_SIGNAL;
    }

    private String name(int nr) {
        SyscallTable.Entry e = syscalls == null ? null : syscalls.byNr(nr);
        return e != null ? e.name() : "syscall " + nr;
    }

    private static CompletableFuture<Answer> done(int errno) {
        return CompletableFuture.completedFuture(Answer.of(errno));
    }
}
