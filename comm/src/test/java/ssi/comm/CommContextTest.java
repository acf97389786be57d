package ssi.comm;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class CommContextTest {
    private static final ClusterConfig CONFIG = ClusterConfig.of(List.of(new NodeAddress(1, "127.0.0.1", 7001),
            new NodeAddress(2, "127.0.0.1", 7002)));
    private static final ClusterSecret SECRET = ClusterSecret.of(new byte[32]);

    @Test
    void namesEverythingMissing() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new CommContext().conclude());
        assertTrue(e.getMessage().contains("nodeId"), e.getMessage());
        assertTrue(e.getMessage().contains("clusterConfig"), e.getMessage());
        assertTrue(e.getMessage().contains("secret"), e.getMessage());
    }

    @Test
    void nodeIdMustBeInTheConfig() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new CommContext().nodeId(7).clusterConfig(CONFIG).secret(SECRET).conclude());
        assertTrue(e.getMessage().contains("nodeId 7 is not in the cluster configuration (nodes: 1, 2)"), e.getMessage());
    }

    @Test
    void timingsMustBeOrdered() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new CommContext().nodeId(1)
                .clusterConfig(CONFIG).secret(SECRET).suspectAfterMillis(3000).downAfterMillis(3000).conclude());
        assertTrue(e.getMessage().contains("downAfterMillis"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> new CommContext().nodeId(1)
                .clusterConfig(CONFIG).secret(SECRET).heartbeatIntervalMillis(0).conclude());
        assertTrue(e.getMessage().contains("heartbeatIntervalMillis must be positive"), e.getMessage());
    }

    @Test
    void defaultsAndFrozenAfterConclude() {
        CommContext c = new CommContext().nodeId(2).clusterConfig(CONFIG).secret(SECRET).conclude();
        assertEquals(500, c.heartbeatIntervalMillis());
        assertEquals(2000, c.suspectAfterMillis());
        assertEquals(5000, c.downAfterMillis());
        assertEquals(5000, c.rpcTimeoutMillis());
        assertSame(c, c.conclude());
        assertThrows(IllegalStateException.class, () -> c.rpcTimeoutMillis(1));
    }
}
