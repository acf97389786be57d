package ssi.tests;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A node daemon killed with SIGKILL: its programs die, their ssi-run say so, the other node carries on. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 240)
class NodeDeathTest {
    private TestCluster cluster;

    @BeforeAll
    void start() {
        cluster = TestCluster.create("death");
        cluster.start(2, false);
    }

    @AfterAll
    void stop() {
        if (cluster != null) cluster.close();
    }

    @Test
    void killingANodeDaemonEndsItsProgramsAndTheRestCarriesOn() {
        Cmd.Bg onNode2 = cluster.sleeper(2, 300);
        int gpid = Integer.parseInt(onNode2.awaitFirstLine(Duration.ofSeconds(60)).trim());
        assertTrue(TestCluster.inRange(gpid, 2), onNode2::describe);
        Cmd.Bg onNode1 = cluster.sleeper(1, 300);
        int gpid1 = Integer.parseInt(onNode1.awaitFirstLine(Duration.ofSeconds(60)).trim());

        long daemon = cluster.daemonPid(2).orElseThrow(() -> new AssertionError("no ssid process for node 2 of " + cluster.dir));
        assertTrue(ProcessHandle.of(daemon).orElseThrow().destroyForcibly(), "SIGKILL to node 2's daemon");

        // the program's ssi-run reports the node's end: 137 and a message, within a bound
        int status = onNode2.awaitExit(Duration.ofSeconds(30));
        assertEquals(137, status, onNode2::describe);
        assertTrue(onNode2.err().contains("node 2 stopped"), onNode2::describe);

        // node 1 notices
        AtomicReference<Map<Integer, TestCluster.NodeRow>> seen = new AtomicReference<>();
        Cmd.waitUntil(Duration.ofSeconds(60), () -> {
            seen.set(cluster.nodes(1));
            String s = seen.get().get(2).state();
            return s.equals("SUSPECT") || s.equals("DOWN");
        }, () -> "node 1 to see node 2 SUSPECT or DOWN; last: " + seen.get());

        // a gpid of node 2 cannot be signalled, and the CLI says why
        Cmd.Result kill = cluster.ssi("kill", Integer.toString(gpid));
        kill.expectExit(1);
        assertTrue(kill.err().contains("node 2"), () -> "the message does not name node 2: " + kill.describe());
        assertTrue(kill.err().contains(Integer.toString(gpid)), kill::describe);

        // node 1 works
        cluster.ssiRun(1, "true").expectExit(0);
        assertTrue(onNode1.isAlive(), onNode1::describe);
        Cmd.Result ps = cluster.ssi("ps");
        ps.expectExit(0);
        List<TestCluster.PsRow> rows = TestCluster.parsePs(ps);
        assertTrue(rows.stream().anyMatch(r -> r.gpid() == gpid1), ps::describe);
        assertTrue(rows.stream().noneMatch(r -> TestCluster.nodeOf(r.gpid()) == 2), () -> "node 2's processes still listed: " + ps.describe());

        // once node 2 is DOWN, a kill of its gpids is ESRCH with the reason
        Cmd.waitUntil(Duration.ofSeconds(60), () -> cluster.nodes(1).get(2).state().equals("DOWN"), () -> "node 2 DOWN");
        Cmd.Result killDown = cluster.ssi("kill", Integer.toString(gpid));
        killDown.expectExit(1);
        assertTrue(killDown.err().contains("No such process") && killDown.err().contains("node 2"), killDown::describe);

        // and the cluster can still be stopped as a whole
        cluster.ssi("cluster", "stop").expectExit(0);
        assertEquals(143, onNode1.awaitExit(Duration.ofSeconds(30)), onNode1::describe);
    }
}
