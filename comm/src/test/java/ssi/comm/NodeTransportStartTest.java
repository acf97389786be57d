package ssi.comm;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class NodeTransportStartTest {
    @Test
    void busyPortFailsStartWithTheAddress() throws IOException {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            ClusterConfig config = ClusterConfig.of(List.of(new NodeAddress(1, "127.0.0.1", taken.getLocalPort()),
                    new NodeAddress(2, "127.0.0.1", 1)));
            CommContext ctx = new CommContext().nodeId(1).clusterConfig(config).secret(ClusterSecret.of(new byte[32]));
            IOException e = assertThrows(IOException.class, () -> NodeTransport.start(ctx, (from, req) -> req));
            assertTrue(e.getMessage().contains("node 1 cannot listen on 127.0.0.1:" + taken.getLocalPort()), e.getMessage());
        }
    }

    @Test
    void startConcludesTheContext() {
        CommContext ctx = new CommContext().nodeId(3)
                .clusterConfig(ClusterConfig.of(List.of(new NodeAddress(1, "127.0.0.1", 1))))
                .secret(ClusterSecret.of(new byte[32]));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> NodeTransport.start(ctx, (f, r) -> r));
        assertTrue(e.getMessage().contains("nodeId 3"), e.getMessage());
    }
}
