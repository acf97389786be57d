package ssi.supervisor;

import ssi.comm.ClusterConfig;
import ssi.comm.Member;
import ssi.comm.NodeAddress;
import ssi.comm.NodeState;
import ssi.comm.NodeTransport;

import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/** {@link Cluster} over comm's {@link NodeTransport}; thread-safe because the transport is. */
final class TransportCluster implements Cluster {
    private final int self;
    private final ClusterConfig config;
    private final NodeTransport transport;
    private final List<NodeAddress> nodes;

    TransportCluster(int self, ClusterConfig config, NodeTransport transport) {
        this.self = self;
        this.config = config;
        this.transport = transport;
        this.nodes = config.nodes().stream().sorted(Comparator.comparingInt(NodeAddress::id)).toList();
    }

    @Override public int selfId() { return self; }

    @Override public List<NodeAddress> nodes() { return nodes; }

    @Override public NodeAddress node(int id) { return config.node(id); }

    @Override
    public NodeState state(int id) {
        if (id == self) return NodeState.SELF;
        Member m = transport.membership().member(id);
        return m == null ? NodeState.DOWN : m.state();
    }

    @Override
    public CompletableFuture<byte[]> call(int id, byte[] request) {
        return transport.call(id, request);
    }
}
