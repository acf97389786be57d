package ssi.supervisor;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import ssi.comm.NodeState;
import ssi.comm.control.Capabilities;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.*;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Requests that cross nodes: two daemons in this JVM wired by an in-memory cluster (the RPC envelope
 * is encoded and decoded for real). Host pids put in {@link #onNode2} count as processes of node 2,
 * every other pid as node 1's; node 3 is down, node 4 is up but unreachable.
 */
class ClusterForwardingTest {
    static final Caller ROOT = new Caller(0, 0);
    final Set<Integer> onNode2 = ConcurrentHashMap.newKeySet();
    final List<Process> children = new ArrayList<>();
    InMemoryCluster cluster;
    TestNode n1, n2;

    @BeforeEach
    void start() {
        PidLayout layout = TestLayouts.split(1, 2, onNode2);
        cluster = new InMemoryCluster().node(1, NodeState.UP).node(2, NodeState.UP).node(3, NodeState.DOWN).node(4, NodeState.UP);
        n1 = new TestNode(1, layout, cluster.viewFrom(1), 3_000);
        n2 = new TestNode(2, layout, cluster.viewFrom(2), 3_000);
        cluster.serve(1, n1.rpc);
        cluster.serve(2, n2.rpc);
    }

    @AfterEach
    void stop() {
        children.forEach(Process::destroyForcibly);
        n1.close();
        n2.close();
        cluster.close();
    }

    Process spawnOnNode2(String... cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).start();
        children.add(p);
        onNode2.add((int) p.pid());
        return p;
    }

    Reply ask(TestNode node, Caller caller, Request r) throws Exception {
        return node.service.handle(caller, r, false).get(10, TimeUnit.SECONDS);
    }

    @Test
    void killIsForwardedToTheOwnerNode() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root");
        Process child = spawnOnNode2("sleep", "60");
        Reply denied = ask(n1, new Caller(1000, 0), new Kill((int) child.pid(), 9));
        assertEquals(ControlMessages.EPERM, denied.status());
        assertTrue(denied.message().contains("node 2"), "the owner node checked: " + denied.message());
        assertTrue(child.isAlive());
        Reply r = ask(n1, ROOT, new Kill((int) child.pid(), 9));
        assertTrue(r.isOk(), r.message());
        assertTrue(child.waitFor(5, TimeUnit.SECONDS));
        Reply gone = ask(n1, ROOT, new Kill((2 << 22) + 5, 9));
        assertEquals(ControlMessages.ESRCH, gone.status(), gone.message());
    }

    @Test
    void downUnknownAndUnreachableNodes() throws Exception {
        Reply down = ask(n1, ROOT, new Kill((3 << 22) + 5, 15));
        assertEquals(ControlMessages.ESRCH, down.status());
        assertTrue(down.message().contains("node 3 is down"), down.message());
        Reply unknown = ask(n1, ROOT, new Kill((7 << 22) + 5, 15));
        assertEquals(ControlMessages.ENODEV, unknown.status());
        assertTrue(unknown.message().contains("no node 7"), unknown.message());
        Reply unreachable = ask(n1, ROOT, new CapGet((4 << 22) + 5));
        assertEquals(ControlMessages.ESRCH, unreachable.status());
        assertTrue(unreachable.message().contains("unreachable"), unreachable.message());
    }

    @Test
    void nodesListsEveryNodeEvenDeadOnes() throws Exception {
        List<NodeInfo> nodes = ask(n1, ROOT, new Nodes()).nodes();
        assertEquals(List.of(1, 2, 3, 4), nodes.stream().map(NodeInfo::id).toList());
        NodeInfo self = nodes.get(0), two = nodes.get(1), three = nodes.get(2), four = nodes.get(3);
        assertEquals("UP", self.state());
        assertTrue(self.memTotal() > 0);
        assertEquals("UP", two.state());
        assertEquals("10.0.0.2:7002", two.address());
        assertTrue(two.memTotal() > 0 && two.processes() > 0, "node 2 answered with its own numbers");
        assertEquals(new NodeInfo(3, "10.0.0.3:7003", "DOWN", 0, 0, 0, 0), three);
        assertEquals(new NodeInfo(4, "10.0.0.4:7004", "UP", 0, 0, 0, 0), four, "listed with zeros when it does not answer");
    }

    @Test
    void psOfAllNodesMergesTheirLists() throws Exception {
        Process child = spawnOnNode2("sleep", "60");
        List<ProcessInfo> all = ask(n1, ROOT, new Ps(true)).processes();
        assertTrue(all.stream().anyMatch(p -> p.gpid() == child.pid() && p.node() == 2), "node 2's list is in");
        assertTrue(all.stream().anyMatch(p -> p.node() == 1), "node 1's own list is in");
        List<ProcessInfo> local = ask(n1, ROOT, new Ps(false)).processes();
        assertTrue(local.stream().allMatch(p -> p.node() == 1));
        // a request from a peer is answered locally even when it asks for all nodes
        List<ProcessInfo> peer = n2.service.handle(ROOT, new Ps(true), true).get(10, TimeUnit.SECONDS).processes();
        assertTrue(peer.stream().allMatch(p -> p.node() == 2));
    }

    @Test
    void capabilitiesLiveOnTheOwnerNode() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root");
        Process child = spawnOnNode2("sleep", "60");
        int pid = (int) child.pid();
        Reply set = ask(n1, ROOT, new CapSet(pid, Capabilities.EFFECTIVE, 0, Capabilities.CAN_CHECKPOINT));
        assertTrue(set.isOk(), set.message());
        assertEquals(Capabilities.CAN_MIGRATE, set.caps().effective());
        assertEquals(Capabilities.CAN_MIGRATE, n2.caps.get(pid).effective(), "node 2 holds the record");
        assertEquals(0, n1.caps.recordCount(), "node 1 keeps nothing for a process of node 2");
        Reply denied = ask(n1, new Caller(1000, 0), new CapSet(pid, Capabilities.EFFECTIVE, 0, Capabilities.CAN_MIGRATE));
        assertEquals(ControlMessages.EPERM, denied.status(), denied.message());
    }
}
