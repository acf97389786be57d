package ssi.supervisor;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ssi.comm.NodeState;
import ssi.comm.control.ControlClient;
import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Shutdown;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * SHUTDOWN terminates every cluster process of the node: SIGTERM, then SIGKILL after the grace time.
 * The layouts here count only the test's own children as cluster processes, so nothing else is touched.
 */
class ShutdownTest {
    @TempDir Path dir;
    final List<Process> children = new ArrayList<>();
    final List<AutoCloseable> closers = new ArrayList<>();

    @AfterEach
    void cleanUp() throws Exception {
        children.forEach(Process::destroyForcibly);
        for (AutoCloseable c : closers.reversed()) c.close();
    }

    Process spawn(Set<Integer> clusterPids, String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).start();
        children.add(p);
        clusterPids.add((int) p.pid());
        return p;
    }

    /** A process that ignores SIGTERM (checked in /proc, so the test does not race its start-up). */
    Process spawnTermIgnoring(Set<Integer> clusterPids) throws Exception {
        Process p = spawn(clusterPids, "sh", "-c", "trap '' TERM; while :; do sleep 1; done");
        for (int i = 0; i < 250; i++) {
            String status = Files.readString(Path.of("/proc/" + p.pid() + "/status"));
            String ign = status.lines().filter(l -> l.startsWith("SigIgn:")).findFirst().orElseThrow().substring(7).trim();
            if ((Long.parseUnsignedLong(ign, 16) & (1L << (15 - 1))) != 0) return p;
            Thread.sleep(20);
        }
        fail("sh never ignored SIGTERM");
        return null;
    }

    @Test
    void shutdownTerminatesThenKillsAndStopsTheNode() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root");
        Set<Integer> pids = ConcurrentHashMap.newKeySet();
        InMemoryCluster cluster = new InMemoryCluster().node(1, NodeState.SELF);
        closers.add(cluster);
        TestNode node = new TestNode(1, TestLayouts.only(1, pids), cluster.viewFrom(1), 500);
        closers.add(node);
        AtomicInteger stopped = new AtomicInteger();
        Path socket = dir.resolve("node-1.ctl");
        ControlServer server = ControlServer.start(socket, 1024, node.service, PeerCredentialSource.soPeerCred(),
                node.workers, stopped::incrementAndGet, node.log);
        closers.add(server);

        Process polite = spawn(pids, "sleep", "60");
        Process stubborn = spawnTermIgnoring(pids);
        long t0 = System.nanoTime();
        Reply r;
        try (ControlClient c = ControlClient.connect(socket)) {
            r = c.call(new Shutdown(false));
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(r.isOk(), r.message());
        assertTrue(polite.waitFor(5, TimeUnit.SECONDS) && stubborn.waitFor(5, TimeUnit.SECONDS), "both are dead");
        assertEquals(128 + 15, polite.exitValue(), "SIGTERM first");
        assertEquals(128 + 9, stubborn.exitValue(), "SIGKILL for what ignores SIGTERM");
        assertTrue(ms >= 450, "waited the grace time before SIGKILL (" + ms + " ms)");
        for (int i = 0; i < 100 && stopped.get() == 0; i++) Thread.sleep(20);
        assertEquals(1, stopped.get(), "the node stops once the reply is out");
    }

    @Test
    void wholeClusterShutdownStopsTheOtherNodesFirst() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root");
        Set<Integer> pids1 = ConcurrentHashMap.newKeySet(), pids2 = ConcurrentHashMap.newKeySet();
        InMemoryCluster cluster = new InMemoryCluster().node(1, NodeState.UP).node(2, NodeState.UP).node(3, NodeState.DOWN);
        closers.add(cluster);
        TestNode n1 = new TestNode(1, TestLayouts.only(1, pids1), cluster.viewFrom(1), 500);
        TestNode n2 = new TestNode(2, TestLayouts.only(2, pids2), cluster.viewFrom(2), 500);
        closers.add(n1);
        closers.add(n2);
        cluster.serve(1, n1.rpc);
        cluster.serve(2, n2.rpc);
        Process a = spawn(pids1, "sleep", "60");
        Process b = spawn(pids2, "sleep", "60");

        Reply denied = n1.service.handle(new Caller(1000, 0), new Shutdown(true), false).get(10, TimeUnit.SECONDS);
        assertEquals(1, denied.status(), "EPERM for non-root");
        assertTrue(a.isAlive() && b.isAlive());

        Reply r = n1.service.handle(ClusterForwardingTest.ROOT, new Shutdown(true), false).get(10, TimeUnit.SECONDS);
        assertTrue(r.isOk(), r.message());
        ProcessTable.Entry bNow = n1.table.read((int) b.pid());
        assertTrue(bNow == null || bNow.isZombie(), "node 2 had finished before node 1 answered");
        assertTrue(a.waitFor(5, TimeUnit.SECONDS));
        for (int i = 0; i < 100 && n2.shutdowns.get() == 0; i++) Thread.sleep(20);
        assertEquals(1, n2.shutdowns.get(), "node 2 stops itself after answering");
        assertEquals(0, n1.shutdowns.get(), "node 1's stop is up to its control server, after its reply");
    }
}
