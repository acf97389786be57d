package ssi.supervisor;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ssi.comm.NodeState;
import ssi.comm.control.Capabilities;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.CapSet;
import ssi.comm.control.ControlMessages.Checkpoint;
import ssi.comm.control.ControlMessages.Reply;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * CHECKPOINT through the control service: forwarded to the owner node, which applies Kerrighed's
 * CAN_CHECKPOINT rule and the image directory rules. These daemons have no shim link, so a request that
 * passes every rule ends in the "no link to its shim" answer of the owner node (the live checkpoint is
 * tests/CheckpointTest).
 */
class CheckpointRequestTest {
    static final Caller ROOT = new Caller(0, 0);
    final Set<Integer> onNode2 = ConcurrentHashMap.newKeySet();
    InMemoryCluster cluster;
    TestNode n1, n2;
    Process child;
    @TempDir
    Path tmp;

    @BeforeEach
    void start() throws Exception {
        PidLayout layout = TestLayouts.split(1, 2, onNode2);
        cluster = new InMemoryCluster().node(1, NodeState.UP).node(2, NodeState.UP);
        n1 = new TestNode(1, layout, cluster.viewFrom(1), 3_000);
        n2 = new TestNode(2, layout, cluster.viewFrom(2), 3_000);
        cluster.serve(1, n1.rpc);
        cluster.serve(2, n2.rpc);
        child = new ProcessBuilder("sleep", "60").start();
        onNode2.add((int) child.pid());
    }

    @AfterEach
    void stop() {
        child.destroyForcibly();
        n1.close();
        n2.close();
        cluster.close();
    }

    Reply ask(Caller caller, Checkpoint c) throws Exception {
        return n1.service.handle(caller, c, false).get(10, TimeUnit.SECONDS);
    }

    @Test
    void canCheckpointIsRequiredInTheEffectiveSetOnTheOwnerNode() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root");
        int pid = (int) child.pid();
        Path dir = tmp.resolve("img");
        Reply ok = ask(ROOT, new Checkpoint(pid, dir.toString(), false));
        assertEquals(ControlMessages.EIO, ok.status(), ok.message());
        assertTrue(ok.message().contains("node 2 has no link to its shim"), "answered by the owner node: " + ok.message());

        assertTrue(n1.service.handle(ROOT, new CapSet(pid, Capabilities.EFFECTIVE, 0, Capabilities.CAN_CHECKPOINT), false)
                .get(10, TimeUnit.SECONDS).isOk());
        Reply denied = ask(ROOT, new Checkpoint(pid, dir.toString(), false));
        assertEquals(ControlMessages.EPERM, denied.status());
        assertTrue(denied.message().contains("does not have CAN_CHECKPOINT in its effective SSI capability set")
                && denied.message().contains("node 2"), denied.message());
        assertFalse(Files.exists(dir));
    }

    @Test
    void imageDirectoryRules() throws Exception {
        assumeTrue(TestNode.isRoot(), "needs root");
        int pid = (int) child.pid();
        Reply relative = ask(ROOT, new Checkpoint(pid, "relative/img", false));
        assertEquals(ControlMessages.EINVAL, relative.status(), relative.message());
        // a non-root caller may not make root create an image in root's directory
        Reply foreign = ask(new Caller(1000, 0), new Checkpoint(pid, tmp.resolve("img").toString(), false));
        assertEquals(ControlMessages.EPERM, foreign.status(), foreign.message());
        assertTrue(foreign.message().contains("may not create"), foreign.message());
        Reply bad = ask(ROOT, new Checkpoint(0, "", false));
        assertEquals(ControlMessages.EINVAL, bad.status());
        Reply gone = ask(ROOT, new Checkpoint((2 << 22) + 5, "", false));
        assertEquals(ControlMessages.ESRCH, gone.status(), gone.message());
    }
}
