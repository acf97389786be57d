package ssi.supervisor;

import ssi.comm.NodeAddress;
import ssi.comm.NodeState;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The cluster as this daemon sees it: the configured nodes, what the membership says about each, and
 * RPC to the others. {@link TransportCluster} is the real one over comm; the interface lets the control
 * logic be tested with daemons wired together in one JVM. Implementations are thread-safe.
 */
interface Cluster {
    int selfId();

    /** Every node of cluster.conf, in id order, this one included. */
    List<NodeAddress> nodes();

    /** The node with this id, or null if the cluster has no such node. */
    NodeAddress node(int id);

    /** SELF for this node; what membership says for the others (DOWN when it knows nothing). */
    NodeState state(int id);

    /** Sends an {@link RpcEnvelope} request; completes with the reply bytes or exceptionally. */
    CompletableFuture<byte[]> call(int id, byte[] request);
}
