package ssi.supervisor;

import ssi.comm.NodeAddress;
import ssi.comm.NodeState;
import ssi.comm.NodeUnreachableException;
import ssi.comm.control.ControlCodec;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.CapGet;
import ssi.comm.control.ControlMessages.CapSet;
import ssi.comm.control.ControlMessages.Checkpoint;
import ssi.comm.control.ControlMessages.Restart;
import ssi.comm.control.ControlMessages.Kill;
import ssi.comm.control.ControlMessages.NodeInfo;
import ssi.comm.control.ControlMessages.Nodes;
import ssi.comm.control.ControlMessages.Ping;
import ssi.comm.control.ControlMessages.ProcessInfo;
import ssi.comm.control.ControlMessages.Ps;
import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Request;
import ssi.comm.control.ControlMessages.Shutdown;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * What a control request means for the cluster: answers it here, or forwards it over RPC to the node
 * that owns the process (gpid >> 14) and merges the answers for cluster-wide requests (NODES, PS of all
 * nodes, SHUTDOWN of the whole cluster). Requests that arrive from another daemon ({@code fromPeer}) are
 * only ever answered locally, so forwarding never loops.
 *
 * <p>Threads: {@link #handle} is called on a control or RPC worker thread and may run local work there
 * (reading /proc); it never blocks on another node: remote answers are composed as futures, and work
 * after them runs on the worker executor, not on comm's threads.
 */
final class ControlService {
    private final LocalNode local;
    private final Cluster cluster;
    private final PidLayout layout;
    private final Executor workers;
    private final long rpcTimeoutMillis;
    private final long killGraceMillis;
    private final NodeLog log;

    ControlService(LocalNode local, Cluster cluster, PidLayout layout, Executor workers, long rpcTimeoutMillis,
                   long killGraceMillis, NodeLog log) {
        this.local = local;
        this.cluster = cluster;
        this.layout = layout;
        this.workers = workers;
        this.rpcTimeoutMillis = rpcTimeoutMillis;
        this.killGraceMillis = killGraceMillis;
        this.log = log;
    }

    /** True when this reply means the node must now stop (after the reply has gone out). */
    static boolean stopsNode(Request request, Reply reply) {
        return request instanceof Shutdown && reply.isOk();
    }

    CompletableFuture<Reply> handle(Caller caller, Request request, boolean fromPeer) {
        try {
            return switch (request) {
                case Ping p -> done(Reply.pong(local.nodeId()));
                case Nodes n -> fromPeer ? done(Reply.nodes(List.of(selfInfo()))) : nodes(caller);
                case Ps p -> p.allNodes() && !fromPeer ? psAll(caller) : done(Reply.processes(local.ps()));
                case Kill k -> {
                    if (k.gpid() <= 0) throw new Refused(ControlMessages.EINVAL, "give the GPID of one process (got " + k.gpid() + ")");
                    yield onOwner(caller, fromPeer, k.gpid(), k, () -> {
                        local.kill(caller.uid(), k.gpid(), k.signal());
                        return Reply.ok();
                    });
                }
                case CapGet c -> {
                    int gpid = c.gpid() == 0 ? local.parentOf(caller.pid()) : c.gpid();
                    yield onOwner(caller, fromPeer, gpid, new CapGet(gpid), () -> Reply.caps(local.capGet(gpid)));
                }
                case CapSet c -> {
                    int gpid = c.gpid() == 0 ? local.parentOf(caller.pid()) : c.gpid();
                    yield onOwner(caller, fromPeer, gpid, new CapSet(gpid, c.set(), c.raise(), c.lower()),
                            () -> Reply.caps(local.capSet(caller.uid(), gpid, c.set(), c.raise(), c.lower())));
                }
                case Shutdown s -> shutdown(caller, s.wholeCluster() && !fromPeer);
                case Checkpoint c -> {
                    if (c.gpid() <= 0) throw new Refused(ControlMessages.EINVAL, "give the GPID of the application's root process (got " + c.gpid() + ")");
                    // the node where the application lives freezes and writes it (the RPC carries the caller's uid)
                    yield onOwner(caller, fromPeer, c.gpid(), c,
                            () -> Reply.checkpointed(local.checkpoint(caller.uid(), c.gpid(), c.dir(), c.stop(), c.incremental(),
                                    c.parent())));
                }
                // the node that receives it restarts the image there (the CLI talks to that node's socket)
                case Restart r -> done(Reply.restarted(local.restart(caller.uid(), r.dir())));
                // from the launch stub of ssi-run --restart, inside this node (docs/ARCHITECTURE.md, "Foreground restart")
                case ControlMessages.RestartForeground f -> done(Reply.restarted(local.restartForeground(caller, f)));
            };
        } catch (Refused r) {
            return done(r.reply());
        }
    }

    private interface LocalAction { Reply run() throws Refused; }

    /**
     * Runs the action here if gpid lives on this node, else forwards the request to the node it lives on
     * (its birth node, or where it was restarted: {@link Locations}). A request from a peer is forwarded
     * again only by the gpid's birth node (to where it went), so no two nodes send it back and forth.
     */
    private CompletableFuture<Reply> onOwner(Caller caller, boolean fromPeer, int gpid, Request forward, LocalAction action)
            throws Refused {
        int owner = layout.nodeOf(gpid);
        if (owner == local.nodeId()) return done(action.run());
        if (fromPeer && layout.birthNode(gpid) != local.nodeId()) return done(action.run());
        if (owner <= 0) {
            throw new Refused(ControlMessages.ENODEV, "gpid " + gpid + " belongs to no node (gpids of node n start at n << "
                    + PidLayout.PID_SHIFT + ", so the smallest is " + (1 << PidLayout.PID_SHIFT) + ")");
        }
        if (cluster.node(owner) == null) {
            throw new Refused(ControlMessages.ENODEV, "no node " + owner + " in the cluster (gpid " + gpid
                    + " would live there); `ssi nodes` lists the nodes");
        }
        if (cluster.state(owner) == NodeState.DOWN) {
            throw new Refused(ControlMessages.ESRCH, "node " + owner + " is down, so process " + gpid + " is gone with it");
        }
        return rpc(owner, RpcEnvelope.control(caller.uid(), forward))
                .thenApply(bytes -> decode(forward.type(), bytes))
                .exceptionally(e -> failure(owner, e));
    }

    private CompletableFuture<Reply> nodes(Caller caller) {
        List<CompletableFuture<NodeInfo>> parts = new ArrayList<>();
        for (NodeAddress a : cluster.nodes()) {
            String address = a.host() + ":" + a.port();
            if (a.id() == local.nodeId()) {
                parts.add(done(local.info(address)));
                continue;
            }
            NodeState state = cluster.state(a.id());
            NodeInfo unknown = new NodeInfo(a.id(), address, state.name(), 0, 0, 0, 0);
            if (state == NodeState.DOWN) {
                parts.add(done(unknown));
                continue;
            }
            parts.add(rpc(a.id(), RpcEnvelope.control(caller.uid(), new Nodes()))
                    .thenApply(bytes -> {
                        for (NodeInfo n : decode(ControlMessages.NODES, bytes).nodes()) {
                            // the state is what our membership thinks, the numbers are the node's own
                            if (n.id() == a.id()) return new NodeInfo(n.id(), address, state.name(), n.load1(),
                                    n.memTotal(), n.memAvailable(), n.processes());
                        }
                        return unknown;
                    })
                    .exceptionally(e -> {
                        log.info("nodes: node " + a.id() + " did not answer: " + cause(e).getMessage());
                        return unknown;
                    }));
        }
        return CompletableFuture.allOf(parts.toArray(CompletableFuture[]::new))
                .thenApply(v -> Reply.nodes(parts.stream().map(CompletableFuture::join).toList()));
    }

    private CompletableFuture<Reply> psAll(Caller caller) {
        List<CompletableFuture<List<ProcessInfo>>> parts = new ArrayList<>();
        parts.add(done(local.ps()));
        for (NodeAddress a : cluster.nodes()) {
            if (a.id() == local.nodeId() || cluster.state(a.id()) != NodeState.UP) continue;
            parts.add(rpc(a.id(), RpcEnvelope.control(caller.uid(), new Ps(false)))
                    .thenApply(bytes -> decode(ControlMessages.PS, bytes).processes())
                    .exceptionally(e -> {
                        log.info("ps: node " + a.id() + " did not answer, its processes are left out: " + cause(e).getMessage());
                        return List.of();
                    }));
        }
        return CompletableFuture.allOf(parts.toArray(CompletableFuture[]::new)).thenApply(v -> {
            List<ProcessInfo> all = new ArrayList<>();
            for (CompletableFuture<List<ProcessInfo>> p : parts) all.addAll(p.join());
            all.sort(Comparator.comparingInt(ProcessInfo::gpid));
            return Reply.processes(all);
        });
    }

    private CompletableFuture<Reply> shutdown(Caller caller, boolean wholeCluster) throws Refused {
        if (caller.uid() != 0) {
            throw new Refused(ControlMessages.EPERM, "only root may shut down " + (wholeCluster ? "the cluster" : "node " + local.nodeId())
                    + " (you are uid " + caller.uid() + ")");
        }
        List<CompletableFuture<Void>> others = new ArrayList<>();
        if (wholeCluster) {
            for (NodeAddress a : cluster.nodes()) {
                if (a.id() == local.nodeId() || cluster.state(a.id()) == NodeState.DOWN) continue;
                others.add(rpc(a.id(), RpcEnvelope.control(caller.uid(), new Shutdown(false)))
                        .handle((bytes, e) -> {
                            if (e != null) log.info("shutdown: node " + a.id() + " did not confirm: " + cause(e).getMessage());
                            return null;
                        }));
            }
        }
        // terminateAll waits up to the grace time: run it on a worker, never on the thread that
        // completed the last remote answer (a comm thread)
        return CompletableFuture.allOf(others.toArray(CompletableFuture[]::new)).thenApplyAsync(v -> {
            log.info("shutdown requested by uid " + caller.uid() + (wholeCluster ? " for the whole cluster" : ""));
            local.terminateAll(killGraceMillis);
            return Reply.ok();
        }, workers);
    }

    private NodeInfo selfInfo() {
        NodeAddress a = cluster.node(local.nodeId());
        return local.info(a == null ? "?" : a.host() + ":" + a.port());
    }

    private CompletableFuture<byte[]> rpc(int node, byte[] request) {
        // comm has its own RPC timeout; this one only bounds a transport that never answers at all
        return cluster.call(node, request).orTimeout(rpcTimeoutMillis + 1_000, TimeUnit.MILLISECONDS);
    }

    private static Reply decode(int type, byte[] bytes) {
        try {
            return ControlCodec.decodeReply(type, bytes);
        } catch (ControlCodec.ProtocolException e) {
            throw new CompletionException(e);
        }
    }

    private Reply failure(int node, Throwable e) {
        Throwable c = cause(e);
        if (c instanceof NodeUnreachableException) {
            return Reply.error(ControlMessages.ESRCH, "node " + node + " is unreachable (" + c.getMessage() + "); its processes cannot be reached");
        }
        if (c instanceof TimeoutException) {
            return Reply.error(ControlMessages.EIO, "node " + node + " did not answer within " + rpcTimeoutMillis + " ms");
        }
        log.error("request forwarded to node " + node + " failed", c);
        return Reply.error(ControlMessages.EIO, "node " + node + " failed to answer: " + c.getMessage());
    }

    static Throwable cause(Throwable e) {
        while ((e instanceof CompletionException || e instanceof ExecutionException) && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    private static <T> CompletableFuture<T> done(T value) {
        return CompletableFuture.completedFuture(value);
    }
}
