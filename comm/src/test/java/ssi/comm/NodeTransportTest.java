package ssi.comm;

import io.netty.channel.epoll.Epoll;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Nodes 1..3 form an honest cluster in this JVM on 127.0.0.1. cluster.conf also lists node 4 (started only
 * with a wrong secret) and node 5 (never started: its id is what the raw test peers claim). Timings are short
 * so failures show quickly; waits poll up to a generous deadline, no test asserts a duration.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class NodeTransportTest {
    private static final long WAIT = 15_000;

    private ClusterConfig config;
    private final ClusterSecret secret = ClusterSecret.of(bytes(32, 7));
    private final NodeTransport[] nodes = new NodeTransport[6];
    private final Recorder[] handlers = new Recorder[6];
    private final Logger commLog = Logger.getLogger("ssi.comm"); // held: JUL keeps loggers weakly
    private final List<String> logLines = Collections.synchronizedList(new ArrayList<>());
    private final Handler logCapture = new Handler() {
        private final SimpleFormatter f = new SimpleFormatter();
        @Override public void publish(LogRecord r) { logLines.add(f.formatMessage(r)); }
        @Override public void flush() {}
        @Override public void close() {}
    };

    /** Answers "node<id>:<request>", throws for "fail:<msg>", waits on gate for "slow"; records "<from>:<request>". */
    static final class Recorder implements RpcHandler {
        final int id;
        final List<String> seen = Collections.synchronizedList(new ArrayList<>());
        final List<String> threads = Collections.synchronizedList(new ArrayList<>());
        volatile CountDownLatch gate = new CountDownLatch(0);

        Recorder(int id) { this.id = id; }

        @Override
        public byte[] handle(int fromNode, byte[] request) throws Exception {
            String s = new String(request, StandardCharsets.UTF_8);
            if (s.length() > 100) s = "big" + request.length;
            seen.add(fromNode + ":" + s);
            threads.add(Thread.currentThread().getName());
            if (s.startsWith("fail:")) throw new IllegalStateException(s.substring(5));
            if (s.equals("slow")) gate.await(WAIT, TimeUnit.MILLISECONDS);
            if (s.startsWith("big")) return request;
            return ("node" + id + ":" + s).getBytes(StandardCharsets.UTF_8);
        }
    }

    @BeforeAll
    void startCluster() throws IOException {
        commLog.addHandler(logCapture);
        List<NodeAddress> list = new ArrayList<>();
        for (int id = 1; id <= 5; id++) list.add(new NodeAddress(id, "127.0.0.1", freePort()));
        config = ClusterConfig.of(list);
        for (int id = 1; id <= 3; id++) start(id, secret);
    }

    @AfterAll
    void stopCluster() {
        for (NodeTransport t : nodes) {
            if (t != null) t.close();
        }
        commLog.removeHandler(logCapture);
    }

    @BeforeEach
    void honestClusterUp() throws InterruptedException {
        for (int i = 1; i <= 3; i++) {
            for (int j = 1; j <= 3; j++) {
                if (i == j) continue;
                int a = i, b = j;
                await("node " + a + " to see node " + b + " UP", () -> nodes[a].membership().member(b).state() == NodeState.UP);
            }
        }
    }

    @Test
    @Order(1)
    void threeNodesSeeEachOtherUpOverEpoll() {
        assertTrue(Epoll.isAvailable(), "native epoll should load on this Linux x86_64 machine: " + Epoll.unavailabilityCause());
        List<Member> members = nodes[2].membership().members();
        assertEquals(List.of(1, 2, 3, 4, 5), members.stream().map(Member::id).toList());
        assertEquals(List.of(NodeState.UP, NodeState.SELF, NodeState.UP, NodeState.DOWN, NodeState.DOWN),
                members.stream().map(Member::state).toList());
        assertTrue(members.get(0).lastHeardMillis() > 0);
        assertEquals(0, members.get(4).lastHeardMillis(), "node 5 never ran");
        assertNull(nodes[2].membership().member(9));
        List<String> names = Thread.getAllStackTraces().keySet().stream().map(Thread::getName).toList();
        assertTrue(names.contains("ssi-comm-boss"), names.toString());
        assertTrue(names.stream().anyMatch(n -> n.startsWith("ssi-comm-io-")), names.toString());
    }

    @Test
    @Order(2)
    void callsWorkInBothDirectionsAndToSelf() throws Exception {
        for (int from = 1; from <= 3; from++) {
            for (int to = 1; to <= 3; to++) {
                String req = "hi-" + from + "-" + to;
                assertEquals("node" + to + ":" + req, text(nodes[from].call(to, utf8(req)).get(WAIT, TimeUnit.MILLISECONDS)));
                assertTrue(handlers[to].seen.contains(from + ":" + req), handlers[to].seen.toString());
            }
        }
        assertTrue(handlers[1].threads.stream().allMatch(n -> n.startsWith("ssi-comm-rpc-")), handlers[1].threads.toString());
    }

    @Test
    @Order(3)
    void largePayloadsCrossTheLink() throws Exception {
        byte[] big = bytes(4 << 20, 3);
        assertArrayEquals(big, nodes[3].call(1, big).get(WAIT, TimeUnit.MILLISECONDS));
        assertTrue(handlers[1].seen.contains("3:big" + big.length));
    }

    @Test
    @Order(4)
    void handlerExceptionArrivesAsRemoteException() {
        ExecutionException e = assertThrows(ExecutionException.class,
                () -> nodes[1].call(2, utf8("fail:disk on fire")).get(WAIT, TimeUnit.MILLISECONDS));
        RemoteException r = assertInstanceOf(RemoteException.class, e.getCause());
        assertEquals("disk on fire", r.getMessage());
        assertEquals(2, r.nodeId());
        assertEquals(IllegalStateException.class.getName(), r.remoteClass());
    }

    @Test
    @Order(5)
    void unknownNeverStartedAndSlowNodesAreUnreachable() throws Exception {
        assertUnreachable(nodes[1].call(42, utf8("x")), "not in the cluster configuration");
        assertUnreachable(nodes[1].call(5, utf8("x")), "DOWN");
        handlers[2].gate = new CountDownLatch(1);
        try {
            assertUnreachable(nodes[1].call(2, utf8("slow")), "did not answer within");
        } finally {
            handlers[2].gate.countDown();
        }
        // the link survives a timed-out call
        assertEquals("node2:after", text(nodes[1].call(2, utf8("after")).get(WAIT, TimeUnit.MILLISECONDS)));
    }

    @Test
    @Order(6)
    void nodeWithWrongSecretNeverGetsUp() throws Exception {
        List<Member> honestSawNode4 = Collections.synchronizedList(new ArrayList<>());
        for (int id = 1; id <= 3; id++) {
            nodes[id].membership().addListener(m -> { if (m.id() == 4) honestSawNode4.add(m); });
        }
        NodeTransport intruder = start(4, ClusterSecret.of(bytes(32, 8)));
        List<Member> intruderSaw = Collections.synchronizedList(new ArrayList<>());
        intruder.membership().addListener(intruderSaw::add);
        // Both sides try, and both sides refuse: node 4 dials the others, and they dial node 4.
        await("the honest nodes to reject node 4", () -> logged("node 4 failed authentication"));
        await("node 4 to reject the honest nodes", () -> logged("node 1 failed authentication"));
        Thread.sleep(1000); // a few more retries, in which a broken check would let it through
        assertUnreachable(intruder.call(1, utf8("let me in")), "");
        assertTrue(honestSawNode4.isEmpty(), "honest nodes saw node 4 change state: " + honestSawNode4);
        assertTrue(intruderSaw.isEmpty(), "node 4 saw someone change state: " + intruderSaw);
        for (int id = 1; id <= 3; id++) {
            assertEquals(NodeState.DOWN, nodes[id].membership().member(4).state());
            assertTrue(handlers[id].seen.stream().noneMatch(s -> s.startsWith("4:")), handlers[id].seen.toString());
        }
        assertTrue(intruder.membership().members().stream().allMatch(m -> m.id() == 4 || m.state() == NodeState.DOWN));
        assertTrue(handlers[4].seen.isEmpty(), handlers[4].seen.toString());
        intruder.close();
        nodes[4] = null;
    }

    @Test
    @Order(7)
    void garbageAndOversizedFramesAreDisconnected() throws Exception {
        int port = config.node(1).port();
        byte[] badKind = ByteBuffer.allocate(4 + 43).putInt(43).put((byte) 9).array();
        byte[][] junk = {
                utf8("GET / HTTP/1.1\r\nHost: node1\r\n\r\n"), // read as a length of ~1.2 GB
                badKind,
                ByteBuffer.allocate(4).putInt(Integer.MAX_VALUE).array(),
                ByteBuffer.allocate(4).putInt(-1).array(), // 4 GiB - 1 as u32
                ByteBuffer.allocate(4).putInt(LinkWire.MAX_HANDSHAKE_FRAME + 1).array(),
                ByteBuffer.allocate(4).putInt(0).array(),
                RawPeer.frame(new LinkWire.Hello(9, LinkCrypto.nonce()), null, 0), // id not in cluster.conf
                RawPeer.frame(new LinkWire.Hello(1, LinkCrypto.nonce()), null, 0), // claims to be node 1 itself
                RawPeer.frame(new LinkWire.Auth(new byte[32]), null, 0), // AUTH before HELLO
        };
        for (byte[] j : junk) {
            try (RawPeer p = new RawPeer(port)) {
                p.send(j);
                assertTrue(p.closedByNode(WAIT), "node kept a connection that sent " + Arrays.toString(Arrays.copyOf(j, 8)));
            }
        }
        try (RawPeer silent = new RawPeer(port)) {
            assertTrue(silent.closedByNode(WAIT), "a connection that never authenticates must be dropped");
        }
        try (RawPeer p = new RawPeer(port)) {
            assertTrue(p.authenticate(secret.bytes(), 5, () -> new byte[0]));
            p.send(ByteBuffer.allocate(4).putInt(LinkWire.MAX_FRAME).array()); // plus its own 4 bytes: one too many
            assertTrue(p.closedByNode(WAIT), "an authenticated peer may not send a frame over 16 MiB");
        }
        assertTrue(logged("longer than 256 bytes before authenticating"));
        assertTrue(logged("longer than 16777216 bytes"));
        assertTrue(logged("claims node id 9"));
        assertTrue(logged("did not authenticate within"));
        assertEquals("node1:still here", text(nodes[2].call(1, utf8("still here")).get(WAIT, TimeUnit.MILLISECONDS)));
        assertTrue(handlers[1].seen.stream().noneMatch(s -> s.startsWith("9:") || s.startsWith("5:")), handlers[1].seen.toString());
    }

    @Test
    @Order(8)
    void tamperedReplayedAndReorderedFramesAreRejected() throws Exception {
        // Honest until the second call: its payload gets one bit flipped after sealing.
        try (RawPeer p = new RawPeer(config.node(1).port())) {
            // The first call travels in the same write as AUTH, so it crosses the frame-decoder swap.
            assertTrue(p.authenticate(secret.bytes(), 5, () -> p.sealed(new LinkWire.Call(1, utf8("raw-1")))));
            LinkWire.Reply r = assertInstanceOf(LinkWire.Reply.class, p.readMessage());
            assertEquals(1, r.callId());
            assertEquals("node1:raw-1", text(r.payload()));
            byte[] tampered = p.sealed(new LinkWire.Call(2, utf8("raw-2")));
            tampered[tampered.length - LinkCrypto.MAC_BYTES - 1] ^= 1; // "raw-2" becomes "raw-3"
            p.send(tampered);
            assertTrue(p.closedByNode(WAIT));
        }
        assertEquals(List.of("5:raw-1"), handlers[1].seen.stream().filter(s -> s.startsWith("5:")).toList());

        try (RawPeer p = new RawPeer(config.node(2).port())) {
            assertTrue(p.authenticate(secret.bytes(), 5, () -> new byte[0]));
            byte[] once = p.sealed(new LinkWire.Call(7, utf8("once")));
            p.send(once);
            assertEquals("node2:once", text(assertInstanceOf(LinkWire.Reply.class, p.readMessage()).payload()));
            p.send(once);
            assertTrue(p.closedByNode(WAIT), "a replayed frame must close the link");
        }
        try (RawPeer p = new RawPeer(config.node(2).port())) {
            assertTrue(p.authenticate(secret.bytes(), 5, () -> new byte[0]));
            byte[] first = p.sealed(new LinkWire.Call(8, utf8("first")));
            byte[] second = p.sealed(new LinkWire.Call(9, utf8("second")));
            p.send(second);
            p.send(first);
            assertTrue(p.closedByNode(WAIT), "reordered frames must close the link");
        }
        assertEquals(List.of("5:once"), handlers[2].seen.stream().filter(s -> s.startsWith("5:")).toList());
        assertTrue(logged("failed its MAC check"));
        assertEquals("node1:ok", text(nodes[3].call(1, utf8("ok")).get(WAIT, TimeUnit.MILLISECONDS)));
    }

    @Test
    @Order(9)
    void closedNodeGoesSuspectThenDownAndComesBackAfterRestart() throws Exception {
        List<NodeState> seenBy1 = Collections.synchronizedList(new ArrayList<>());
        List<NodeState> seenBy2 = Collections.synchronizedList(new ArrayList<>());
        nodes[1].membership().addListener(m -> { if (m.id() == 3) seenBy1.add(m.state()); });
        nodes[2].membership().addListener(m -> { if (m.id() == 3) seenBy2.add(m.state()); });

        // A call still running on node 3 when it goes away fails on the caller.
        handlers[3].gate = new CountDownLatch(1);
        CompletableFuture<byte[]> inFlight = nodes[1].call(3, utf8("slow"));
        await("node 3 to run the slow call", () -> handlers[3].seen.contains("1:slow"));
        NodeTransport old = nodes[3];
        Thread closer = Thread.ofPlatform().start(old::close);
        assertUnreachable(inFlight, "");
        handlers[3].gate.countDown();
        closer.join(WAIT);
        old.close(); // idempotent

        await("node 1 to see node 3 DOWN", () -> seenBy1.contains(NodeState.DOWN));
        await("node 2 to see node 3 DOWN", () -> seenBy2.contains(NodeState.DOWN));
        assertEquals(List.of(NodeState.SUSPECT, NodeState.DOWN), tail(seenBy1, 2));
        assertEquals(List.of(NodeState.SUSPECT, NodeState.DOWN), tail(seenBy2, 2));
        assertUnreachable(nodes[1].call(3, utf8("anyone?")), "");
        assertUnreachable(old.call(1, utf8("from the dead")), "closed");

        start(3, secret);
        honestClusterUp();
        // listeners hear of changes on the membership thread, a little after the state itself changed
        await("node 1's listener to hear node 3 is UP", () -> tail(seenBy1, 1).equals(List.of(NodeState.UP)));
        await("node 1 to reach the restarted node 3", () -> callWorks(1, 3));
        await("the restarted node 3 to reach node 2", () -> callWorks(3, 2));
    }

    // ---- helpers ----

    private NodeTransport start(int id, ClusterSecret s) throws IOException {
        CommContext ctx = new CommContext().nodeId(id).clusterConfig(config).secret(s)
                .heartbeatIntervalMillis(100).suspectAfterMillis(800).downAfterMillis(2000)
                .rpcTimeoutMillis(3000).handshakeTimeoutMillis(2000).reconnectMaxMillis(300);
        handlers[id] = new Recorder(id);
        nodes[id] = NodeTransport.start(ctx, handlers[id]);
        return nodes[id];
    }

    private boolean callWorks(int from, int to) {
        try {
            return text(nodes[from].call(to, utf8("ping")).get(WAIT, TimeUnit.MILLISECONDS)).equals("node" + to + ":ping");
        } catch (Exception e) {
            return false;
        }
    }

    private boolean logged(String words) {
        synchronized (logLines) {
            return logLines.stream().anyMatch(l -> l.contains(words));
        }
    }

    private static void assertUnreachable(CompletableFuture<byte[]> f, String words) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(WAIT, TimeUnit.MILLISECONDS));
        NodeUnreachableException u = assertInstanceOf(NodeUnreachableException.class, e.getCause());
        assertTrue(u.getMessage().contains(words), "expected '" + words + "' in: " + u.getMessage());
    }

    private static void await(String what, BooleanSupplier done) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT);
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) fail("gave up waiting for " + what);
            Thread.sleep(20);
        }
    }

    private static <T> List<T> tail(List<T> list, int n) {
        synchronized (list) {
            return List.copyOf(list.subList(Math.max(0, list.size() - n), list.size()));
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static byte[] bytes(int n, int seed) {
        byte[] b = new byte[n];
        new java.util.Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] utf8(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    private static String text(byte[] b) { return new String(b, StandardCharsets.UTF_8); }
}
