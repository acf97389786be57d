package ssi.supervisor;

import ssi.comm.ClusterConfig;
import ssi.comm.ClusterSecret;
import ssi.comm.CommContext;
import ssi.comm.NodeTransport;
import ssi.ghost.dump.Checkpointer;
import ssi.shim.ShimLink;
import ssi.shim.SyscallTable;

import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One node's daemon, wired together: the shim link (trapped syscalls and launch events), the node
 * transport (RPC to the other daemons), the control socket, and the process and capability tables
 * behind them. Owns every resource it starts and closes them in reverse order in {@link #close()}.
 *
 * <p>Threads: "shim-link" (ShimLink's reader) hands events to the "ssid-worker-N" pool; "ssid-control"
 * serves the control socket; comm runs its own I/O and RPC threads. Whoever decides the node must stop
 * (a SHUTDOWN, the shim closing the link) calls {@link #requestStop}; the main thread, waiting in
 * {@link #awaitStopRequest()}, then closes everything and exits.
 */
public final class NodeDaemon implements AutoCloseable {
    /** A start-up failure a person can fix; Ssid prints the message and exits with status 1. */
    public static final class StartException extends Exception {
        private static final long serialVersionUID = 1L;

        StartException(String message, Throwable cause) { super(message, cause); }
    }

    private final NodeLog log;
    private final ExecutorService workers;
    private final CountDownLatch stopRequested = new CountDownLatch(1);
    private final AtomicInteger exitStatus = new AtomicInteger();
    private final AtomicBoolean closed = new AtomicBoolean();
    private ShimLink link;
    private NodeTransport transport;
    private ControlServer control;

    private NodeDaemon(NodeLog log, ExecutorService workers) {
        this.log = log;
        this.workers = workers;
    }

    public static NodeDaemon start(NodeContext ctx, NodeLog log) throws StartException {
        int id = ctx.nodeId();
        ClusterConfig config;
        ClusterSecret secret;
        try {
            config = ClusterConfig.load(ctx.clusterConfFile());
        } catch (IOException | RuntimeException e) {
            throw new StartException(e.getMessage() + " (" + ctx.clusterConfFile().getFileName()
                    + " is written by `ssi cluster start`)", e);
        }
        if (config.node(id) == null) {
            throw new StartException("node " + id + " is not in " + ctx.clusterConfFile() + "; add a line `node " + id
                    + " <host> <port>` or start the daemon with the right --node", null);
        }
        try {
            secret = ClusterSecret.load(ctx.secretFile());
        } catch (IOException | RuntimeException e) {
            throw new StartException(e.getMessage() + " (" + ctx.secretFile().getFileName()
                    + " is written by `ssi cluster start`)", e);
        }

        // Work handed over after close() began is dropped, not thrown back at the shim-link thread: the
        // node is stopping and the trapped processes die with it. The queue is unbounded, so a running
        // daemon never drops anything.
        ExecutorService workers = new ThreadPoolExecutor(ctx.workerThreads(), ctx.workerThreads(), 0, TimeUnit.MILLISECONDS,
                new LinkedBlockingQueue<>(), new WorkerThreads(), new ThreadPoolExecutor.DiscardPolicy());
        NodeDaemon d = new NodeDaemon(log, workers);
        try {
            d.link = connectLink(ctx);
            PidLayout layout = PidLayout.standard();
            ProcessTable table = new ProcessTable(ctx.procRoot(), layout, new UserNames(ctx.passwdFile()), ctx.clockTicksPerSecond());
            CapabilityTable caps = new CapabilityTable(table);
            NativeSignals natives = new NativeSignals();
            // The checkpointer uses the link only when a CHECKPOINT arrives, after the link has started below.
            LocalNode local = new LocalNode(id, table, layout, caps, natives, log,
                    new Checkpointer(d.link, ctx.procRoot(), id), LocalNode.DEFAULT_CHECKPOINTS,
                    (dir, uid, gid, stub, checkOnly) -> {
                        if (!checkOnly) return ssi.ghost.restore.ImageRestore.restart(d.link, dir, uid, gid, ctx.procRoot(), id, stub);
                        try (var r = ssi.ghost.restore.ImageRestore.prepare(dir, uid, gid, ctx.procRoot(), id, stub)) {
                            return new ssi.ghost.restore.ImageRestore.Result(r.plan().pid(), 0, java.util.List.of(), java.util.List.of(),
                                    r.rootPpid());
                        }
                    });

            // The RPC handler must exist to start the transport, and the control service it serves needs
            // the started transport: the handler answers "starting" until serve() is called.
            Runnable stop = () -> d.requestStop(0, "shutdown requested");
            NodeRpcHandler rpc = new NodeRpcHandler(new SignalDelivery(table, layout, natives),
                    ctx.killGraceMillis() + ctx.rpcTimeoutMillis(), stop, log);
            try {
                d.transport = NodeTransport.start(new CommContext().nodeId(id).clusterConfig(config).secret(secret)
                        .rpcTimeoutMillis(ctx.rpcTimeoutMillis()).conclude(), rpc);
            } catch (IOException | RuntimeException e) {
                throw new StartException("cannot start the node transport on " + config.node(id).host() + ":"
                        + config.node(id).port() + ": " + e.getMessage(), e);
            }
            Cluster cluster = new TransportCluster(id, config, d.transport);
            // requests and signals go where a gpid lives now (a restart may have put it on another node)
            Locations locations = new Locations(layout, id, ctx.procRoot());
            local.onRestored(gpids -> announceMoved(id, gpids, locations, cluster, log));
            rpc.route(locations, cluster);
            ControlService service = new ControlService(local, cluster, locations, workers, ctx.rpcTimeoutMillis(),
                    ctx.killGraceMillis(), log);
            rpc.serve(service);

            try {
                d.control = ControlServer.start(ctx.controlSocket(), ctx.maxRequestBytes(), service,
                        PeerCredentialSource.soPeerCred(), workers, stop, log);
            } catch (IOException e) {
                throw new StartException(e.getMessage(), e);
            }

            ShimLink link = d.link;
            SignalHandlers.Replier replier = (n, val, error, cont) -> {
                try {
                    link.reply(n, val, error, cont);
                } catch (IOException e) {
                    // the link is gone, and with it the node: the trapped process dies with the shim
                    log.once("reply-failed", "cannot answer trapped syscalls, the shim link is closed: " + e.getMessage());
                }
            };
            SignalHandlers signals = new SignalHandlers(id, locations, table, cluster, workers, replier,
                    SyscallTable.load(), ctx.rpcTimeoutMillis(), log);
            d.link.start(signals::onNotification,
                    launched -> workers.execute(() -> {
                        caps.launched(launched.pid(), launched.uid());
                        log.info("launched " + launched.path() + " as process " + launched.pid() + " (uid " + launched.uid() + ")");
                    }),
                    listenerId -> workers.execute(caps::forgetGone),
                    () -> {
                        // our own close() also ends the link; only an unexpected end is news
                        if (!d.closed.get()) d.requestStop(1, "the shim closed the link socket; the node is going away");
                    });
        } catch (StartException e) {
            d.close();
            throw e;
        } catch (RuntimeException e) {
            d.close();
            throw new StartException("node " + id + " failed to start: " + e.getMessage(), e);
        }
        return d;
    }

    private static ShimLink connectLink(NodeContext ctx) throws StartException {
        ShimLink link;
        try {
            link = ShimLink.connect(ctx.linkSocket());
        } catch (IOException e) {
            throw new StartException("cannot connect to the shim's link socket " + ctx.linkSocket() + ": " + e.getMessage()
                    + " (ssid is started by ssi-shim; do not start it by hand)", e);
        }
        String mismatch = null;
        if (link.nodeId() != ctx.nodeId()) {
            mismatch = "the shim behind " + ctx.linkSocket() + " runs node " + link.nodeId() + ", not node " + ctx.nodeId();
        } else if (link.pidBase() != ctx.nodeId() << PidLayout.PID_SHIFT) {
            mismatch = "the shim of node " + ctx.nodeId() + " allocates pids from " + link.pidBase() + ", expected "
                    + (ctx.nodeId() << PidLayout.PID_SHIFT) + " (node << " + PidLayout.PID_SHIFT + ")";
        }
        if (mismatch != null) {
            try {
                link.close();
            } catch (Exception ignored) {
                // already failing
            }
            throw new StartException(mismatch, null);
        }
        return link;
    }

    /** Asks the main thread to stop the daemon with this exit status; the first request wins. */
    void requestStop(int status, String reason) {
        if (stopRequested.getCount() == 0) return;
        exitStatus.compareAndSet(0, status);
        log.info("stopping: " + reason);
        stopRequested.countDown();
    }

    /** Blocks until something asked the daemon to stop; returns the exit status to use. */
    int awaitStopRequest() throws InterruptedException {
        stopRequested.await();
        return exitStatus.get();
    }

    /** Closes everything this daemon started; idempotent, and safe from a shutdown hook. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        if (control != null) control.close();
        if (transport != null) {
            try {
                transport.close();
            } catch (RuntimeException e) {
                log.error("closing the node transport", e);
            }
        }
        if (link != null) {
            try {
                link.close();
            } catch (Exception e) {
                log.error("closing the shim link", e);
            }
        }
        workers.shutdownNow();
        try {
            workers.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException ignored) {
            Thread.currentThread().interrupt();
        }
    }

    private static final class WorkerThreads implements java.util.concurrent.ThreadFactory {
        private final AtomicInteger n = new AtomicInteger();

        @Override
        public Thread newThread(Runnable r) {
            Thread t = new Thread(r, "ssid-worker-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        }
    }

    /** Tells the birth node of each restored gpid of another range that it lives here now (best effort). */
    private static void announceMoved(int self, java.util.List<Integer> gpids, Locations locations, Cluster cluster, NodeLog log) {
        java.util.Map<Integer, java.util.List<Integer>> byBirth = new java.util.TreeMap<>();
        for (int g : gpids) {
            int birth = locations.birthNode(g);
            if (birth > 0 && birth != self) byBirth.computeIfAbsent(birth, k -> new java.util.ArrayList<>()).add(g);
        }
        byBirth.forEach((node, list) -> cluster.call(node, RpcEnvelope.moved(self, list)).whenComplete((r, e) -> {
            if (e != null) log.info("could not tell node " + node + " that " + list + " live on node " + self + " now: "
                    + ControlService.cause(e).getMessage());
        }));
    }
}
