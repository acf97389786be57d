package ssi.supervisor;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import ssi.comm.NodeState;
import ssi.shim.Notification;
import ssi.shim.SyscallTable;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * kill(-1) as the daemons answer it: node 1's SignalHandlers gets the trap, and every node that is up,
 * node 1 included, delivers to its own cluster processes. Each node's cluster processes are exactly the
 * child processes the test puts in its set ({@link TestLayouts#only}), so no other process of the host
 * (this JVM included) can be hit; the trapping "sender" is a child of its own too. Node 3 is down, node 4
 * is up but unreachable.
 */
class SignalBroadcastTest {
    static final int SIGTERM = 15, ESRCH = 3, NOBODY = 65534;
    static final int AUDIT_ARCH_X86_64 = 0xC000003E;

    record Answer(long val, int error, boolean cont) {}

    static final Answer OK = new Answer(0, 0, false);
    static final Answer NO_SUCH_PROCESS = new Answer(0, -ESRCH, false);

    final Set<Integer> onNode1 = ConcurrentHashMap.newKeySet();
    final Set<Integer> onNode2 = ConcurrentHashMap.newKeySet();
    final List<Process> children = new ArrayList<>();
    final BlockingQueue<Answer> answers = new LinkedBlockingQueue<>();
    InMemoryCluster cluster;
    TestNode n1, n2;
    SignalHandlers handlers;
    long notifId;

    @BeforeEach
    void start() {
        PidLayout layout1 = TestLayouts.only(1, onNode1), layout2 = TestLayouts.only(2, onNode2);
        cluster = new InMemoryCluster().node(1, NodeState.UP).node(2, NodeState.UP).node(3, NodeState.DOWN)
                .node(4, NodeState.UP);
        n1 = new TestNode(1, layout1, cluster.viewFrom(1), 3_000);
        n2 = new TestNode(2, layout2, cluster.viewFrom(2), 3_000);
        cluster.serve(1, n1.rpc);
        cluster.serve(2, n2.rpc);
        handlers = new SignalHandlers(1, layout1, n1.table, cluster.viewFrom(1), n1.workers,
                (n, val, error, cont) -> answers.add(new Answer(val, error, cont)), SyscallTable.load(), 5_000, n1.log);
    }

    @AfterEach
    void stop() {
        children.forEach(Process::destroyForcibly);
        n1.close();
        n2.close();
        cluster.close();
    }

    Process spawn(Set<Integer> node, String... cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).start();
        children.add(p);
        if (node != null) node.add((int) p.pid());
        return p;
    }

    /** A `sleep 60` running as uid/gid nobody, once its exec made that visible in /proc. */
    Process spawnAsNobody(Set<Integer> node) throws Exception {
        Process p = spawn(node, "setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups", "sleep", "60");
        for (int i = 0; i < 250; i++) {
            ProcessTable.Entry e = ProcessTableTest.hostTable().read((int) p.pid());
            if (e != null && e.comm().equals("sleep") && e.ruid() == NOBODY && e.euid() == NOBODY) return p;
            Thread.sleep(20);
        }
        fail("setpriv did not become uid " + NOBODY + " in time");
        return p;
    }

    /** Traps kill(-1, sig) as called by process sender and waits for the daemon's answer. */
    Answer killAll(Process sender, int sig) throws InterruptedException {
        long[] args = {-1, sig, 0, 0, 0, 0};
        handlers.onNotification(new Notification(7, ++notifId, (int) sender.pid(), SignalHandlers.NR_KILL,
                AUDIT_ARCH_X86_64, 0x401000, args));
        Answer a = answers.poll(10, TimeUnit.SECONDS);
        assertNotNull(a, "no answer to the trapped kill(-1)");
        return a;
    }

    static void assertKilledBy(Process p, int sig, String what) throws InterruptedException {
        assertTrue(p.waitFor(5, TimeUnit.SECONDS), what + " did not die");
        assertEquals(128 + sig, p.exitValue(), what);
    }

    @Test
    void reachesEveryNodeIncludingThisOneButNotTheSender() throws Exception {
        Process sender = spawn(onNode1, "sleep", "60");
        Process here = spawn(onNode1, "sleep", "60");
        Process there = spawn(onNode2, "sleep", "60");
        Process internal = spawn(null, "sleep", "60"); // in no set: a node-internal process of both nodes

        Answer a = killAll(sender, SIGTERM);
        assertEquals(OK, a, "0 when any process got it; never CONTINUE (natively it would reach the daemon)");
        assertKilledBy(here, SIGTERM, "the process on the sender's own node");
        assertKilledBy(there, SIGTERM, "the process on node 2");
        assertFalse(sender.waitFor(300, TimeUnit.MILLISECONDS), "the sender is left out, as the kernel leaves out the caller");
        assertTrue(internal.isAlive(), "a pid that is no cluster process is never signalled");
    }

    @Test
    void nothingToSignalIsEsrch() throws Exception {
        Process sender = spawn(onNode1, "sleep", "60");
        assertEquals(NO_SUCH_PROCESS, killAll(sender, 0), "only the sender itself exists: ESRCH");
        assertEquals(NO_SUCH_PROCESS, killAll(sender, SIGTERM));
        assertTrue(sender.isAlive());

        Process other = spawn(onNode2, "sleep", "60");
        assertEquals(OK, killAll(sender, 0), "signal 0 only checks: a process of node 2 exists and may be signalled");
        assertTrue(other.isAlive() && sender.isAlive(), "signal 0 delivers nothing");
    }

    @Test
    void anUnprivilegedSenderReachesOnlyItsOwnUid() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root to run processes of another uid");
        Process sender = spawnAsNobody(onNode1);
        Process rootHere = spawn(onNode1, "sleep", "60");
        Process rootThere = spawn(onNode2, "sleep", "60");
        Process nobodyThere = spawnAsNobody(onNode2);

        assertEquals(OK, killAll(sender, SIGTERM));
        assertKilledBy(nobodyThere, SIGTERM, "the process of the sender's uid on node 2");
        assertTrue(rootHere.isAlive() && rootThere.isAlive(), "processes of another uid are not signalled");
        assertTrue(sender.isAlive(), "the sender is left out");

        onNode2.remove((int) nobodyThere.pid());
        assertEquals(NO_SUCH_PROCESS, killAll(sender, SIGTERM), "only root's processes are left: nothing may be signalled");
        assertEquals(NO_SUCH_PROCESS, killAll(sender, 0));
        assertTrue(rootHere.isAlive() && rootThere.isAlive() && sender.isAlive());
    }
}
