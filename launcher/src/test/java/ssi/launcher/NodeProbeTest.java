package ssi.launcher;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.Reply;

import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Probing node sockets: PING, deadlines against a hung daemon, stale socket detection and removal. */
class NodeProbeTest {
    @TempDir
    Path dir;

    private static Reply hang(ControlMessages.Request r) {
        try {
            Thread.sleep(10_000);
        } catch (InterruptedException ignored) {
            // test over
        }
        return Reply.ok();
    }

    @Test
    void pingLiveStaleAndMissingSockets() throws IOException {
        try (FakeControlServer s = new FakeControlServer(dir.resolve("node-2.ctl"), r -> Reply.pong(2))) {
            assertEquals(OptionalInt.of(2), NodeProbe.ping(ControlSource.unixSockets(), s.socket, Duration.ofSeconds(2)));
        }
        // closed: the file stays, nobody listens
        assertTrue(Files.exists(dir.resolve("node-2.ctl")));
        assertEquals(OptionalInt.empty(), NodeProbe.ping(ControlSource.unixSockets(), dir.resolve("node-2.ctl"), Duration.ofSeconds(2)));
        assertEquals(OptionalInt.empty(), NodeProbe.ping(ControlSource.unixSockets(), dir.resolve("node-9.ctl"), Duration.ofSeconds(2)));
    }

    @Test
    void aHungDaemonCannotHangTheCli() throws IOException {
        try (FakeControlServer s = new FakeControlServer(dir.resolve("node-1.ctl"), NodeProbeTest::hang)) {
            long t0 = System.nanoTime();
            assertEquals(OptionalInt.empty(), NodeProbe.ping(ControlSource.unixSockets(), s.socket, Duration.ofMillis(300)));
            try (ControlSource.Connection c = ControlSource.unixSockets().open(s.socket)) {
                SocketTimeoutException e = assertThrows(SocketTimeoutException.class,
                        () -> NodeProbe.call(c, new ControlMessages.Nodes(), Duration.ofMillis(300)));
                assertEquals("no answer within 0.3 s", e.getMessage());
            }
            assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "timeouts must not wait for the daemon");
        }
    }

    @Test
    void cliReportsAHungDaemonAndExitsOne() throws IOException {
        try (FakeControlServer s = new FakeControlServer(dir.resolve("node-1.ctl"), NodeProbeTest::hang)) {
            Cli c = new Cli().realSockets();
            c.env.put("SSI_RUN_DIR", dir.toString());
            c.tune = c.tune.andThen(ssi -> ssi.requestTimeout = Duration.ofMillis(300));
            Cli.Result r = c.run("ps");
            assertEquals(1, r.code());
            assertEquals("ssi: ps: node 1 did not answer: no answer within 0.3 s; see " + dir.resolve("node-1.log")
                    + " for what its daemon did\n", r.err());
        }
    }

    @Test
    void cliReportsAStaleSocket() throws IOException {
        new FakeControlServer(dir.resolve("node-1.ctl"), r -> Reply.pong(1)).close();
        Cli c = new Cli().realSockets();
        c.env.put("SSI_RUN_DIR", dir.toString());
        Cli.Result r = c.run("nodes");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("ssi: nodes: cannot reach node 1 at " + dir.resolve("node-1.ctl") + ": "), r.err());
        assertTrue(r.err().strip().endsWith("is the cluster running? start it with `ssi cluster start`, or ask another node with --node"),
                r.err());
    }

    @Test
    void socketIdsOnlyCountsWellFormedNames() throws IOException {
        for (String f : List.of("node-1.ctl", "node-12.ctl", "node-3.launch", "node-x.ctl", "node-1.log", "node-1234.ctl", "xnode-5.ctl")) {
            Files.createFile(dir.resolve(f));
        }
        assertEquals(Set.of(1, 12), Set.copyOf(NodeProbe.socketIds(dir, "ctl")));
        assertEquals(Set.of(3), Set.copyOf(NodeProbe.socketIds(dir, "launch")));
        assertTrue(NodeProbe.socketIds(dir.resolve("absent"), "ctl").isEmpty());
    }

    @Test
    void removeStaleKeepsLiveNodes() throws IOException {
        try (FakeControlServer live = new FakeControlServer(dir.resolve("node-1.ctl"), r -> Reply.pong(1))) {
            Files.createFile(dir.resolve("node-1.link"));
            new FakeControlServer(dir.resolve("node-2.ctl"), r -> Reply.pong(2)).close();
            Files.createFile(dir.resolve("node-2.launch"));
            Files.createFile(dir.resolve("node-2.link"));
            List<Path> removed = NodeProbe.removeStale(ControlSource.unixSockets(), dir, Duration.ofSeconds(1));
            assertEquals(Set.of(dir.resolve("node-2.ctl"), dir.resolve("node-2.launch"), dir.resolve("node-2.link")), Set.copyOf(removed));
            assertTrue(Files.exists(live.socket));
            assertTrue(Files.exists(dir.resolve("node-1.link")), "a live node's link socket stays");
            assertFalse(Files.exists(dir.resolve("node-2.ctl")));
        }
    }

    @Test
    void probeTimeoutHasAFloor() {
        long past = System.nanoTime() - 1_000_000_000L;
        assertEquals(NodeProbe.MIN_PROBE, NodeProbe.probeTimeout(past, Duration.ofSeconds(2)));
        long far = System.nanoTime() + 60_000_000_000L;
        assertEquals(Duration.ofSeconds(2), NodeProbe.probeTimeout(far, Duration.ofSeconds(2)));
    }
}
