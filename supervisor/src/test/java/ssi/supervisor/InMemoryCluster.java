package ssi.supervisor;

import ssi.comm.NodeAddress;
import ssi.comm.NodeState;
import ssi.comm.NodeUnreachableException;
import ssi.comm.RpcHandler;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Daemons of one test JVM wired together without sockets: a call runs the target node's RpcHandler on a
 * pool thread, as comm runs it on its worker executor. A node that is configured but has no handler is
 * unreachable; the test sets what membership says about each node.
 */
final class InMemoryCluster implements AutoCloseable {
    private final List<NodeAddress> nodes = new ArrayList<>();
    private final Map<Integer, NodeState> states = new ConcurrentHashMap<>();
    private final Map<Integer, RpcHandler> handlers = new ConcurrentHashMap<>();
    private final ExecutorService rpcThreads = Executors.newCachedThreadPool();

    InMemoryCluster node(int id, NodeState state) {
        nodes.add(new NodeAddress(id, "10.0.0." + id, 7000 + id));
        states.put(id, state);
        return this;
    }

    void serve(int id, RpcHandler handler) {
        handlers.put(id, handler);
    }

    void setState(int id, NodeState state) {
        states.put(id, state);
    }

    /** The cluster as node self sees it. */
    Cluster viewFrom(int self) {
        return new Cluster() {
            @Override public int selfId() { return self; }

            @Override public List<NodeAddress> nodes() { return List.copyOf(nodes); }

            @Override public NodeAddress node(int id) {
                return nodes.stream().filter(a -> a.id() == id).findFirst().orElse(null);
            }

            @Override public NodeState state(int id) {
                return id == self ? NodeState.SELF : states.getOrDefault(id, NodeState.DOWN);
            }

            @Override public CompletableFuture<byte[]> call(int id, byte[] request) {
                RpcHandler h = handlers.get(id);
                if (h == null) return CompletableFuture.failedFuture(new NodeUnreachableException(id, "no link to node " + id));
                return CompletableFuture.supplyAsync(() -> {
                    try {
                        return h.handle(self, request);
                    } catch (Exception e) {
                        throw new CompletionException(e);
                    }
                }, rpcThreads);
            }
        };
    }

    @Override
    public void close() {
        rpcThreads.shutdownNow();
    }
}
