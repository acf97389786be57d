package ssi.supervisor;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ssi.comm.NodeState;
import ssi.comm.control.Capabilities;
import ssi.comm.control.ControlClient;
import ssi.comm.control.ControlCodec;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.*;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The control socket end to end: a real epoll unix socket, ControlClient, a one-node cluster whose
 * processes are this host's (every host pid counts as a process of node 1). Runs as root; never sends a
 * successful SHUTDOWN on that layout (it would signal the whole host).
 */
class ControlServerTest {
    @TempDir Path dir;
    private final List<Process> children = new ArrayList<>();
    /** When set, the server believes this caller instead of SO_PEERCRED. */
    private final AtomicReference<Caller> pretend = new AtomicReference<>();
    private InMemoryCluster cluster;
    private TestNode node;
    private ControlServer server;
    private Path socket;
    private int shutdownCallbacks;

    @BeforeEach
    void start() throws IOException {
        cluster = new InMemoryCluster().node(1, NodeState.SELF);
        node = new TestNode(1, TestLayouts.everyPidOn(1), cluster.viewFrom(1), 3_000);
        socket = dir.resolve("node-1.ctl");
        PeerCredentialSource real = PeerCredentialSource.soPeerCred();
        server = ControlServer.start(socket, 64 << 10, node.service,
                ch -> pretend.get() != null ? pretend.get() : real.credentials(ch), node.workers,
                () -> shutdownCallbacks++, node.log);
    }

    @AfterEach
    void stop() {
        children.forEach(Process::destroyForcibly);
        server.close();
        node.close();
        cluster.close();
    }

    private Process spawn(String... cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).start();
        children.add(p);
        return p;
    }

    private Reply call(Request r) throws IOException {
        try (ControlClient c = ControlClient.connect(socket)) {
            return c.call(r);
        }
    }

    @Test
    void pingAnswersTheNodeId() throws IOException {
        assertEquals(PosixFilePermissions.fromString("rw-rw-rw-"), Files.getPosixFilePermissions(socket),
                "anyone may connect; SO_PEERCRED decides the rest");
        Reply r = call(new Ping());
        assertTrue(r.isOk(), r.message());
        assertEquals(1, r.nodeId());
    }

    @Test
    void killsOwnChildAsRoot() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(TestNode.isRoot(), "needs root");
        Process child = spawn("sleep", "60");
        Reply r = call(new Kill((int) child.pid(), 9));
        assertTrue(r.isOk(), r.message());
        assertTrue(child.waitFor(5, TimeUnit.SECONDS), "the child died");
        assertEquals(128 + 9, child.exitValue());
    }

    @Test
    void killOfANonexistentGpidIsEsrch() throws Exception {
        int pidMax;
        // not Files.readString: it reads sysctl files a byte first, and sysctl answers EOF at any offset but 0
        try (var in = Files.newBufferedReader(Path.of("/proc/sys/kernel/pid_max"))) {
            pidMax = Integer.parseInt(in.readLine().trim());
        }
        assertTrue(pidMax >= 32768, "pid_max " + pidMax);
        Reply r = call(new Kill(pidMax + 1, 15));
        assertEquals(ControlMessages.ESRCH, r.status(), r.toString());
        assertTrue(r.message().contains("no process " + (pidMax + 1)), r.message());
        assertEquals(ControlMessages.EINVAL, call(new Kill(0, 15)).status());
        Process child = spawn("sleep", "60");
        assertEquals(ControlMessages.EINVAL, call(new Kill((int) child.pid(), 65)).status(), "signal out of range");
        assertTrue(child.isAlive());
    }

    @Test
    void garbageClosesOnlyThatConnection() throws Exception {
        // a frame with a type the daemon does not know: EPROTO, and the connection still serves
        try (SocketChannel raw = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            raw.connect(UnixDomainSocketAddress.of(socket));
            write(raw, ByteBuffer.allocate(7).putInt(3).put(new byte[]{0x7f, 0x7f, 0x7f}).flip());
            Reply bad = ControlCodec.decodeReply(ControlMessages.PING, readFrame(raw));
            assertEquals(ControlMessages.EPROTO, bad.status());
            byte[] ping = ControlCodec.encodeRequest(new Ping());
            write(raw, ByteBuffer.allocate(4 + ping.length).putInt(ping.length).put(ping).flip());
            assertEquals(1, ControlCodec.decodeReply(ControlMessages.PING, readFrame(raw)).nodeId());
        }
        // an absurd length: the server hangs up
        try (SocketChannel raw = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            raw.connect(UnixDomainSocketAddress.of(socket));
            write(raw, ByteBuffer.allocate(12).putInt(0xffff_fff0).putLong(0x0123456789abcdefL).flip());
            assertTrue(closedByPeer(raw), "an oversized frame closes the connection");
        }
        // an empty frame has no type to answer
        try (SocketChannel raw = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            raw.connect(UnixDomainSocketAddress.of(socket));
            write(raw, ByteBuffer.allocate(4).putInt(0).flip());
            assertTrue(closedByPeer(raw));
        }
        // a client that sends half a frame and leaves
        try (SocketChannel raw = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            raw.connect(UnixDomainSocketAddress.of(socket));
            write(raw, ByteBuffer.allocate(6).putInt(100).putShort((short) 1).flip());
        }
        Reply r = call(new Ping());
        assertTrue(r.isOk(), "the server keeps answering new clients");
        assertEquals(1, r.nodeId());
    }

    @Test
    void permissionsFollowTheCallersUid() throws Exception {
        Process child = spawn("sleep", "60");
        org.junit.jupiter.api.Assumptions.assumeTrue(TestNode.isRoot(), "the child must belong to root");
        pretend.set(new Caller(1000, 0));
        Reply kill = call(new Kill((int) child.pid(), 9));
        assertEquals(ControlMessages.EPERM, kill.status());
        assertTrue(kill.message().contains("uid 1000"), kill.message());
        assertFalse(child.waitFor(200, TimeUnit.MILLISECONDS), "the child survived");

        Reply capset = call(new CapSet((int) child.pid(), Capabilities.EFFECTIVE, 0, Capabilities.CAN_MIGRATE));
        assertEquals(ControlMessages.EPERM, capset.status(), capset.message());
        Reply shutdown = call(new Shutdown(false));
        assertEquals(ControlMessages.EPERM, shutdown.status());
        assertTrue(shutdown.message().contains("only root"), shutdown.message());
        Reply parentless = call(new CapGet(0));
        assertEquals(ControlMessages.EINVAL, parentless.status());
        assertTrue(parentless.message().contains("give a GPID"), parentless.message());
        assertEquals(0, shutdownCallbacks);

        pretend.set(null); // the real credentials: root
        assertTrue(call(new Kill((int) child.pid(), 9)).isOk());
        assertTrue(child.waitFor(5, TimeUnit.SECONDS));
    }

    @Test
    void capabilitiesThroughTheSocket() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(TestNode.isRoot(), "needs root");
        Process child = spawn("sleep", "60");
        int pid = (int) child.pid();
        Reply got = call(new CapGet(pid));
        assertTrue(got.isOk(), got.message());
        assertEquals(CapabilityTable.defaults(0).toWire(pid), got.caps());
        Reply set = call(new CapSet(pid, Capabilities.EFFECTIVE, 0, Capabilities.CAN_MIGRATE));
        assertTrue(set.isOk(), set.message());
        assertEquals(Capabilities.CAN_CHECKPOINT, set.caps().effective());
        assertEquals(Capabilities.CAN_CHECKPOINT, call(new CapGet(pid)).caps().effective());
        Reply bad = call(new CapSet(pid, Capabilities.EFFECTIVE, Capabilities.CHANGE_SSI_CAP | Capabilities.DISTANT_FORK, 0));
        assertTrue(bad.isOk(), "both are in root's permitted set: " + bad.message());
        Reply tooMuch = call(new CapSet(pid, Capabilities.PERMITTED, 0, Capabilities.DISTANT_FORK));
        assertEquals(ControlMessages.EINVAL, tooMuch.status());

        // gpid 0 with the real SO_PEERCRED: the caller is this JVM, its parent is whoever started it
        Reply parent = call(new CapGet(0));
        assertTrue(parent.isOk(), parent.message());
        assertEquals(ProcessHandle.current().parent().orElseThrow().pid(), parent.caps().gpid());
    }

    @Test
    void psAndNodesDescribeThisNode() throws Exception {
        Process child = spawn("sleep", "60");
        ProcessInfo mine = null;
        for (int i = 0; i < 100 && mine == null; i++) {
            for (ProcessInfo p : call(new Ps(true)).processes()) {
                if (p.gpid() == child.pid() && p.command().equals("sleep 60")) mine = p;
            }
            if (mine == null) Thread.sleep(20);
        }
        assertNotNull(mine, "ps shows the child");
        assertEquals(ProcessHandle.current().pid(), mine.ppid());
        assertEquals(1, mine.node());

        List<NodeInfo> nodes = call(new Nodes()).nodes();
        assertEquals(1, nodes.size());
        NodeInfo n = nodes.get(0);
        assertEquals(1, n.id());
        assertEquals("10.0.0.1:7001", n.address());
        assertEquals("UP", n.state());
        assertTrue(n.memTotal() > 0 && n.processes() > 0);
    }

    @Test
    void repliesKeepTheOrderOfPipelinedRequests() throws Exception {
        try (SocketChannel raw = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            raw.connect(UnixDomainSocketAddress.of(socket));
            byte[] ps = ControlCodec.encodeRequest(new Ps(false));
            byte[] ping = ControlCodec.encodeRequest(new Ping());
            int pairs = 25; // more than the server queues per connection before it stops reading
            ByteBuffer all = ByteBuffer.allocate(pairs * (8 + ps.length + ping.length));
            for (int i = 0; i < pairs; i++) all.putInt(ps.length).put(ps).putInt(ping.length).put(ping);
            write(raw, all.flip());
            for (int i = 0; i < pairs; i++) {
                assertFalse(ControlCodec.decodeReply(ControlMessages.PS, readFrame(raw)).processes().isEmpty());
                assertEquals(1, ControlCodec.decodeReply(ControlMessages.PING, readFrame(raw)).nodeId());
            }
        }
    }

    private static void write(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    private static byte[] readFrame(SocketChannel ch) throws Exception {
        return CompletableFuture.supplyAsync(() -> {
            try {
                ByteBuffer len = readN(ch, 4);
                return readN(ch, len.getInt()).array();
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }).get(5, TimeUnit.SECONDS);
    }

    private static ByteBuffer readN(SocketChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) throw new IOException("closed");
        }
        return b.flip();
    }

    /** True if the server closes the connection (read hits EOF) within 5 s. */
    private static boolean closedByPeer(SocketChannel ch) throws Exception {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return ch.read(ByteBuffer.allocate(64)) < 0;
            } catch (IOException e) {
                return true; // reset also means closed
            }
        }).get(5, TimeUnit.SECONDS);
    }
}
