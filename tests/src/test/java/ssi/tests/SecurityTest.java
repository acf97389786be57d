package ssi.tests;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Who may do what: an unprivileged caller of the CLI, an unprivileged program in the cluster, garbage on
 * the control socket and on a node link, and the secret's mode. Two --netns nodes.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 240)
class SecurityTest {
    private static final Duration BOUND = Duration.ofSeconds(60);
    private static final List<String> AS_NOBODY = List.of("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups");

    private TestCluster cluster;
    private Cmd.Bg rootSleep;
    private int rootGpid;

    @BeforeAll
    void start() {
        cluster = TestCluster.create("sec");
        cluster.start(2, true);
        rootSleep = cluster.sleeper(1, 300);
        rootGpid = Integer.parseInt(rootSleep.awaitFirstLine(BOUND).trim());
    }

    @AfterAll
    void stop() {
        if (cluster != null) cluster.close();
    }

    private void assertRootSleepAlive() {
        assertTrue(rootSleep.isAlive(), () -> "the root sleep died: " + rootSleep.describe());
        Cmd.Result ps = cluster.ssi("ps", "-p", Integer.toString(rootGpid));
        ps.expectExit(0);
        assertTrue(ps.out().contains("sleep 300"), ps::describe);
    }

    /** The CLI must be runnable by nobody for the refusals below to mean anything. */
    private void assertNobodyCanRunTheCli() {
        Cmd.Result r = cluster.ssiAs(AS_NOBODY, "nodes");
        assertEquals(0, r.exit(), () -> "nobody cannot use the CLI at all (is " + TestCluster.home()
                + " traversable and java readable by uid 65534? is " + cluster.dir + " reachable?): " + r.describe());
    }

    @Test
    void anotherUserCannotKillRootsProcessWithTheCli() {
        assertNobodyCanRunTheCli();
        Cmd.Result r = cluster.ssiAs(AS_NOBODY, "kill", Integer.toString(rootGpid));
        r.expectExit(1);
        assertTrue(r.err().contains("Operation not permitted"), r::describe);
        assertTrue(r.err().contains(Integer.toString(rootGpid)), r::describe);
        Cmd.Result r9 = cluster.ssiAs(AS_NOBODY, "kill", "-9", Integer.toString(rootGpid));
        r9.expectExit(1);
        assertTrue(r9.err().contains("Operation not permitted"), r9::describe);
        // and the cluster-wide stop is root's only
        Cmd.Result stop = cluster.ssiAs(AS_NOBODY, "cluster", "stop");
        stop.expectExit(1);
        assertTrue(stop.err().contains("root") || stop.err().contains("not permitted"), stop::describe);
        assertRootSleepAlive();
        assertEquals(2, cluster.nodes(1).size());
    }

    @Test
    void anotherUserCannotChangeRootsCapabilities() {
        assertNobodyCanRunTheCli();
        String before = cluster.ssi("capset", Integer.toString(rootGpid), "-l").expectExit(0).out();
        Cmd.Result r = cluster.ssiAs(AS_NOBODY, "capset", Integer.toString(rootGpid), "-e", "-CAN_MIGRATE");
        r.expectExit(1);
        assertTrue(r.err().contains("Operation not permitted"), r::describe);
        Cmd.Result raise = cluster.ssiAs(AS_NOBODY, "capset", Integer.toString(rootGpid), "-p", "+CHANGE_SSI_CAP", "-d", "+DISTANT_FORK");
        raise.expectExit(1);
        assertTrue(raise.err().contains("Operation not permitted"), raise::describe);
        assertEquals(before, cluster.ssi("capset", Integer.toString(rootGpid), "-l").expectExit(0).out(),
                "the sets changed after refused requests");
    }

    @Test
    void anUnprivilegedProgramInTheClusterGetsEpermOnAnotherNode() {
        List<String> prog = new java.util.ArrayList<>(AS_NOBODY);
        prog.addAll(List.of("bash", "-c", "id -u; kill -TERM " + rootGpid + "; echo rc=$?; kill -0 " + rootGpid + "; echo rc=$?"));
        Cmd.Result r = cluster.ssiRun(2, prog.toArray(String[]::new));
        r.expectExit(0);
        assertEquals(List.of("65534", "rc=1", "rc=1"), r.outLines(), r::describe);
        assertTrue(r.err().contains("Operation not permitted"), r::describe);
        // on its own node too (the native path)
        Cmd.Result local = cluster.ssiRun(1, Cmd.list(AS_NOBODY, "bash", "-c", "kill -TERM " + rootGpid + "; echo rc=$?")
                .toArray(String[]::new));
        local.expectExit(0);
        assertTrue(local.out().contains("rc=1") && local.err().contains("Operation not permitted"), local::describe);
        assertRootSleepAlive();
    }

    @Test
    void garbageOnTheControlSocketLeavesTheDaemonAnswering() throws Exception {
        Path ctl = cluster.dir.resolve("node-1.ctl");
        Random rnd = new Random(42);
        // random bytes (the first four are a random length)
        byte[] junk = new byte[64 * 1024];
        rnd.nextBytes(junk);
        sendAndClose(ctl, junk, false);
        // an oversized length with a little body
        ByteBuffer huge = ByteBuffer.allocate(4 + 100).putInt(0x7fffffff);
        sendAndClose(ctl, huge.array(), false);
        // a length of 0, and one of 1 (no room for a type)
        sendAndClose(ctl, new byte[] {0, 0, 0, 0, 0, 0, 0, 1, 5}, false);
        // a frame cut short: says 100 bytes, sends 10, then closes
        ByteBuffer cut = ByteBuffer.allocate(14).putInt(100);
        sendAndClose(ctl, cut.array(), false);
        // a whole frame with an unknown type: answered with an error, the connection stays usable
        ByteBuffer unknown = ByteBuffer.allocate(4 + 2).putInt(2).putShort((short) 0x7777);
        byte[] reply = sendAndClose(ctl, unknown.array(), true);
        assertTrue(reply.length >= 6, "no reply to a frame of unknown type");
        int status = ((reply[4] & 0xff) << 8) | (reply[5] & 0xff);
        assertNotEquals(0, status, "a request of unknown type was answered OK");
        // a PING with trailing garbage
        ByteBuffer ping = ByteBuffer.allocate(4 + 2 + 50).putInt(52).putShort((short) 1);
        sendAndClose(ctl, ping.array(), true);
        // many connections left open at once, with half a frame each
        List<SocketChannel> open = new java.util.ArrayList<>();
        try {
            for (int i = 0; i < 50; i++) {
                SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
                c.connect(UnixDomainSocketAddress.of(ctl));
                c.write(ByteBuffer.wrap(new byte[] {0, 0, 1}));
                open.add(c);
            }
            Map<Integer, TestCluster.NodeRow> nodes = cluster.nodes(1);
            assertEquals(2, nodes.size(), () -> "nodes: " + nodes);
        } finally {
            for (SocketChannel c : open) c.close();
        }
        Map<Integer, TestCluster.NodeRow> nodes = cluster.nodes(1);
        assertEquals(2, nodes.size(), () -> "nodes: " + nodes);
        assertRootSleepAlive();
    }

    /** Writes bytes to the socket (ignoring a reset), optionally reads what comes back within 5 s, closes. */
    private static byte[] sendAndClose(Path socket, byte[] bytes, boolean readReply) throws Exception {
        ExecutorService ex = Executors.newSingleThreadExecutor();
        try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            c.connect(UnixDomainSocketAddress.of(socket));
            try {
                ByteBuffer b = ByteBuffer.wrap(bytes);
                while (b.hasRemaining()) c.write(b);
            } catch (IOException closedByDaemon) {
                // the daemon may drop the connection before reading everything: that is the point
            }
            if (!readReply) return new byte[0];
            Future<byte[]> f = ex.submit(() -> {
                ByteBuffer in = ByteBuffer.allocate(4096);
                while (in.position() < 6 && c.read(in) >= 0) {
                    // read at least length + status
                }
                byte[] out = new byte[in.position()];
                in.flip().get(out);
                return out;
            });
            try {
                return f.get(5, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                return new byte[0];
            }
        } finally {
            ex.shutdownNow();
        }
    }

    @Test
    void garbageOnANodeLinkPortLeavesTheNodeUp() {
        TestCluster.ConfNode n2 = cluster.conf().stream().filter(n -> n.id() == 2).findFirst().orElseThrow();
        assertEquals("ssi-n1", cluster.conf().getFirst().netns());
        String target = n2.host() + ":" + n2.port();
        String script = String.join("\n",
                "import os, socket, struct, sys, time",
                "host, port = sys.argv[1], int(sys.argv[2])",
                "def send(data, read=False):",
                "    s = socket.create_connection((host, port), timeout=5)",
                "    try:",
                "        s.sendall(data)",
                "        if read:",
                "            try: s.recv(4096)",
                "            except OSError: pass",
                "    except OSError: pass",
                "    finally: s.close()",
                "send(os.urandom(65536))",
                "send(struct.pack('>I', 0x7fffffff) + os.urandom(300))",
                "send(struct.pack('>I', 0))",
                // a well-formed HELLO claiming to be node 1, then a forged AUTH proof
                "hello = bytes([1]) + b'SSIL' + struct.pack('>hi', 1, 1) + os.urandom(32)",
                "auth = bytes([2]) + os.urandom(32)",
                "s = socket.create_connection((host, port), timeout=5)",
                "try:",
                "    s.sendall(struct.pack('>I', len(hello)) + hello)",
                "    try: print('hello-reply', s.recv(4096)[5:9].decode('ascii', 'replace'))",
                "    except OSError as e: print('hello-reply', e)",
                "    s.sendall(struct.pack('>I', len(auth)) + auth)",
                // a sealed-looking CALL after the forged AUTH
                "    call = bytes([3]) + struct.pack('>q', 1) + os.urandom(40)",
                "    s.sendall(struct.pack('>I', len(call)) + call)",
                "    try: s.recv(4096)",
                "    except OSError: pass",
                "except OSError: pass",
                "finally: s.close()",
                "print('sent')");
        Cmd.Result r = Cmd.run(Cmd.env(), null, List.of(TestCluster.ipTool(), "netns", "exec", "ssi-n1",
                MultiNodeTest.python(), "-c", script, n2.host(), Integer.toString(n2.port())));
        r.expectExit(0);
        // the node answered the forged HELLO with its own: the bytes did reach its link port
        assertEquals(List.of("hello-reply SSIL", "sent"), r.outLines(), r::describe);

        // node 2 answers its own CLI, and node 1 still sees it UP and reaches its processes (over the real link)
        Cmd.Bg s2 = cluster.sleeper(2, 300);
        int g2 = Integer.parseInt(s2.awaitFirstLine(BOUND).trim());
        for (int i = 0; i < 3; i++) {
            Map<Integer, TestCluster.NodeRow> fromNode2 = cluster.nodes(2);
            assertEquals("UP", fromNode2.get(1).state(), () -> "node 2 sees node 1: " + fromNode2 + " (" + target + ")");
            Map<Integer, TestCluster.NodeRow> fromNode1 = cluster.nodes(1);
            assertEquals("UP", fromNode1.get(2).state(), () -> "node 1 sees node 2: " + fromNode1);
            Cmd.sleep(1000);
        }
        Cmd.Result ps = cluster.ssi("--node", "1", "ps", "-p", Integer.toString(g2));
        ps.expectExit(0);
        cluster.ssi("--node", "1", "kill", Integer.toString(g2)).expectExit(0);
        assertEquals(143, s2.awaitExit(BOUND), s2::describe);
        assertRootSleepAlive();
    }

    /** Tids, as node 2's namespace numbers them, of the threads of a host process of node 2 ("tid comm"). */
    private static java.util.Map<Integer, String> nodeTids(long hostPid) throws IOException {
        java.util.Map<Integer, String> out = new java.util.TreeMap<>();
        try (java.util.stream.Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(hostPid), "task"))) {
            for (Path task : tasks.toList()) {
                try {
                    String comm = Files.readString(task.resolve("comm")).trim();
                    for (String line : Files.readAllLines(task.resolve("status"))) {
                        if (line.startsWith("NSpid:")) {
                            String[] f = line.substring(6).trim().split("\\s+");
                            out.put(Integer.parseInt(f[f.length - 1]), comm);
                        }
                    }
                } catch (IOException goneMeanwhile) {
                    // a thread that ended while we listed
                }
            }
        }
        return out;
    }

    /**
     * docs/ARCHITECTURE.md: pids below 1 << 14 of a node (the node init, the daemon JVM and its start-up
     * threads) are node-internal: not listed by `ssi ps`, and a signal aimed at one fails with ESRCH. The
     * daemon's later threads have range tids, which only root may signal (documented); an unprivileged
     * program gets EPERM and the node stays up.
     */
    @Test
    void nodeInternalPidsAreNotClusterProcesses() throws IOException {
        cluster.ssiRun(2, "true").expectExit(0); // the daemon's pools have grown by now
        long daemon = cluster.daemonPid(2).orElseThrow(() -> new AssertionError("no ssid for node 2"));
        java.util.Map<Integer, String> threads = nodeTids(daemon);
        assertTrue(threads.containsKey(2), () -> "the daemon is not pid 2 of node 2: " + threads);
        int startupTid = threads.keySet().stream().filter(t -> t > 2 && t < TestCluster.firstGpid(1)).findFirst()
                .orElseThrow(() -> new AssertionError("no start-up thread below 16384: " + threads));
        List<Integer> rangeTids = threads.keySet().stream().filter(t -> TestCluster.inRange(t, 2)).toList();

        // signals from cluster programs to node-internal pids: ESRCH, locally and across nodes; pid 1, the
        // node init and every orphan's parent, stays visible (the kernel protects it)
        Cmd.Result local = cluster.ssiRun(2, "bash", "-c",
                "for p in 1 2 " + startupTid + "; do kill -0 $p; echo rc=$?; done");
        local.expectExit(0);
        assertEquals(List.of("rc=0", "rc=1", "rc=1"), local.outLines(), local::describe);
        assertEquals(2, local.err().lines().filter(l -> l.contains("No such process")).count(), local::describe);
        Cmd.Result remote = cluster.ssiRun(1, "bash", "-c", "kill -0 " + startupTid + "; echo rc=$?");
        assertEquals(List.of("rc=1"), remote.outLines(), remote::describe);
        assertTrue(remote.err().contains("No such process"), remote::describe);

        // the daemon's threads whose tids fell inside the node's range are node-internal too, even for root:
        // neither a program on the node nor one on another node can stop the node through them
        if (!rangeTids.isEmpty()) {
            String tids = rangeTids.stream().map(String::valueOf).collect(java.util.stream.Collectors.joining(" "));
            Cmd.Result mine = cluster.ssiRun(2, "bash", "-c", "for t in " + tids + "; do kill -TERM $t; echo rc=$?; done");
            assertTrue(mine.outLines().stream().allMatch("rc=1"::equals), mine::describe);
            Cmd.Result theirs = cluster.ssiRun(1, "bash", "-c", "kill -TERM " + rangeTids.getFirst() + "; echo rc=$?");
            assertEquals(List.of("rc=1"), theirs.outLines(), theirs::describe);
            assertTrue(theirs.err().contains("No such process"), theirs::describe);
        }

        // ssi ps lists none of them, nor the daemon's range threads
        List<TestCluster.PsRow> ps = cluster.ps(1);
        assertTrue(ps.stream().noneMatch(r -> r.gpid() < TestCluster.firstGpid(1)), () -> "node-internal pids listed: " + ps);
        assertTrue(ps.stream().noneMatch(r -> threads.containsKey(r.gpid())), () -> "daemon threads listed: " + ps);

        // nor an unprivileged one: for it too the daemon's range tids do not exist
        if (!rangeTids.isEmpty()) {
            int t = rangeTids.getFirst();
            Cmd.Result r = cluster.ssiRun(1, Cmd.list(AS_NOBODY, "bash", "-c", "kill -TERM " + t + "; echo rc=$?")
                    .toArray(String[]::new));
            assertEquals(List.of("rc=1"), r.outLines(), r::describe);
            assertTrue(r.err().contains("No such process"), r::describe);
        }
        assertTrue(ProcessHandle.of(daemon).map(ProcessHandle::isAlive).orElse(false), "node 2's daemon died");
        assertEquals("UP", cluster.nodes(1).get(2).state());
        assertEquals(2, cluster.nodes(2).size());
    }

    @Test
    void runDirectoryFilesHaveTheDocumentedModes() throws IOException {
        Path secret = cluster.dir.resolve("secret");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(secret)));
        assertEquals("root", Files.getOwner(secret).getName());
        String hex = Files.readString(secret).trim();
        assertTrue(hex.matches("[0-9a-f]{64}"), "the secret is not 64 hex chars");
        assertEquals("rw-r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(cluster.dir.resolve("cluster.conf"))));
        for (int n = 1; n <= 2; n++) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(cluster.dir.resolve("node-" + n + ".link"))));
            assertEquals("rw-rw-rw-", PosixFilePermissions.toString(Files.getPosixFilePermissions(cluster.dir.resolve("node-" + n + ".ctl"))));
            assertEquals("rw-rw-rw-", PosixFilePermissions.toString(Files.getPosixFilePermissions(cluster.dir.resolve("node-" + n + ".launch"))));
        }
        // nobody cannot read the secret
        Cmd.Result cat = Cmd.run(Cmd.env(), null, Cmd.list(AS_NOBODY, "cat", secret.toString()));
        assertNotEquals(0, cat.exit(), cat::describe);
    }
}
