package ssi.comm;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Everything {@link NodeTransport} needs, with defaults, checked once by {@link #conclude()}. Filled in by one
 * thread (the daemon's start-up) before start; after conclude() it is frozen and may be read from any thread.
 */
public final class CommContext {
    private int nodeId;
    private ClusterConfig clusterConfig;
    private ClusterSecret secret;
    private long heartbeatIntervalMillis = 500;
    private long suspectAfterMillis = 2000;
    private long downAfterMillis = 5000;
    private long rpcTimeoutMillis = 5000;
    private long connectTimeoutMillis = 3000;
    private long handshakeTimeoutMillis = 5000;
    private long reconnectMaxMillis = 2000;
    private int ioThreads = 2;
    private int rpcThreads = 8;
    private int rpcQueue = 4096;
    private volatile boolean concluded;

    /** This node's id; must be in the cluster configuration. */
    public CommContext nodeId(int id) { check(); this.nodeId = id; return this; }
    public int nodeId() { return nodeId; }

    public CommContext clusterConfig(ClusterConfig c) { check(); this.clusterConfig = c; return this; }
    public ClusterConfig clusterConfig() { return clusterConfig; }

    public CommContext secret(ClusterSecret s) { check(); this.secret = s; return this; }
    public ClusterSecret secret() { return secret; }

    /** How often each link sends a heartbeat. Default 500. */
    public CommContext heartbeatIntervalMillis(long ms) { check(); this.heartbeatIntervalMillis = ms; return this; }
    public long heartbeatIntervalMillis() { return heartbeatIntervalMillis; }

    /** Silence after which a peer is SUSPECT. Default 2000. */
    public CommContext suspectAfterMillis(long ms) { check(); this.suspectAfterMillis = ms; return this; }
    public long suspectAfterMillis() { return suspectAfterMillis; }

    /** Silence after which a peer is DOWN and its links are closed. Default 5000. */
    public CommContext downAfterMillis(long ms) { check(); this.downAfterMillis = ms; return this; }
    public long downAfterMillis() { return downAfterMillis; }

    /** How long a call waits for its reply. Default 5000. */
    public CommContext rpcTimeoutMillis(long ms) { check(); this.rpcTimeoutMillis = ms; return this; }
    public long rpcTimeoutMillis() { return rpcTimeoutMillis; }

    /** TCP connect timeout for outbound links. Default 3000. */
    public CommContext connectTimeoutMillis(long ms) { check(); this.connectTimeoutMillis = ms; return this; }
    public long connectTimeoutMillis() { return connectTimeoutMillis; }

    /** A connection that has not authenticated within this time is closed. Default 5000. */
    public CommContext handshakeTimeoutMillis(long ms) { check(); this.handshakeTimeoutMillis = ms; return this; }
    public long handshakeTimeoutMillis() { return handshakeTimeoutMillis; }

    /** Upper bound of the reconnect backoff (it starts at 50 ms and doubles). Default 2000. */
    public CommContext reconnectMaxMillis(long ms) { check(); this.reconnectMaxMillis = ms; return this; }
    public long reconnectMaxMillis() { return reconnectMaxMillis; }

    /** Event-loop threads (ssi-comm-io-N). Default 2. */
    public CommContext ioThreads(int n) { check(); this.ioThreads = n; return this; }
    public int ioThreads() { return ioThreads; }

    /** Threads that run the {@link RpcHandler} (ssi-comm-rpc-N). Default 8. */
    public CommContext rpcThreads(int n) { check(); this.rpcThreads = n; return this; }
    public int rpcThreads() { return rpcThreads; }

    /** Calls waiting for a worker beyond this are answered "overloaded" at once. Default 4096. */
    public CommContext rpcQueue(int n) { check(); this.rpcQueue = n; return this; }
    public int rpcQueue() { return rpcQueue; }

    /**
     * Checks the whole configuration and freezes it. Throws IllegalStateException listing every problem,
     * e.g. a node id that cluster.conf does not know. Calling it again is harmless.
     */
    public CommContext conclude() {
        if (concluded) return this;
        List<String> problems = new ArrayList<>();
        if (clusterConfig == null) problems.add("clusterConfig is not set");
        if (secret == null) problems.add("secret is not set");
        if (nodeId == 0) {
            problems.add("nodeId is not set");
        } else if (clusterConfig != null && clusterConfig.node(nodeId) == null) {
            problems.add("nodeId " + nodeId + " is not in the cluster configuration (nodes: "
                    + clusterConfig.nodes().stream().map(n -> String.valueOf(n.id())).collect(Collectors.joining(", ")) + ")");
        }
        positive(problems, "heartbeatIntervalMillis", heartbeatIntervalMillis);
        positive(problems, "rpcTimeoutMillis", rpcTimeoutMillis);
        positive(problems, "connectTimeoutMillis", connectTimeoutMillis);
        positive(problems, "handshakeTimeoutMillis", handshakeTimeoutMillis);
        positive(problems, "reconnectMaxMillis", reconnectMaxMillis);
        positive(problems, "ioThreads", ioThreads);
        positive(problems, "rpcThreads", rpcThreads);
        positive(problems, "rpcQueue", rpcQueue);
        // A peer must get a few heartbeats' chance before it is suspected, and be suspect before it is down.
        if (suspectAfterMillis <= heartbeatIntervalMillis) {
            problems.add("suspectAfterMillis (" + suspectAfterMillis + ") must exceed heartbeatIntervalMillis ("
                    + heartbeatIntervalMillis + ")");
        }
        if (downAfterMillis <= suspectAfterMillis) {
            problems.add("downAfterMillis (" + downAfterMillis + ") must exceed suspectAfterMillis (" + suspectAfterMillis + ")");
        }
        if (!problems.isEmpty()) throw new IllegalStateException("comm configuration: " + String.join("; ", problems));
        concluded = true;
        return this;
    }

    public boolean isConcluded() { return concluded; }

    private static void positive(List<String> problems, String name, long value) {
        if (value <= 0) problems.add(name + " must be positive, got " + value);
    }

    private void check() {
        if (concluded) throw new IllegalStateException("comm configuration is concluded and can no longer change");
    }
}
