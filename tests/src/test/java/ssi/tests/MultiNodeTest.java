package ssi.tests;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A 4-node --netns cluster: namespaces per node, cluster-wide ps, kill across nodes, a refused second start. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 240)
class MultiNodeTest {
    private static final int NODES = 4;
    private static final Duration BOUND = Duration.ofSeconds(60);

    private TestCluster cluster;
    /** node -> gpid of its `sleep 300`, and the ssi-run running it. */
    private final Map<Integer, Integer> sleepGpid = new TreeMap<>();
    private final Map<Integer, Cmd.Bg> sleepRun = new TreeMap<>();

    @BeforeAll
    void start() {
        cluster = TestCluster.create("multi");
        cluster.start(NODES, true);
    }

    @AfterAll
    void stop() {
        if (cluster != null) cluster.close();
    }

    @Test
    @Order(1)
    void nodesAreUpWithTheirNetnsAddresses() {
        Map<Integer, TestCluster.NodeRow> nodes = cluster.nodes(1);
        assertEquals(List.of(1, 2, 3, 4), List.copyOf(nodes.keySet()), () -> "nodes: " + nodes);
        for (TestCluster.NodeRow n : nodes.values()) {
            assertTrue(n.state().equals("UP") || (n.id() == 1 && n.state().equals("SELF")), () -> "not UP: " + n);
            assertTrue(n.address().startsWith("10.213.0." + (10 + n.id()) + ":"), () -> "address of " + n);
        }
        for (TestCluster.ConfNode c : cluster.conf()) {
            assertEquals("ssi-n" + c.id(), c.netns(), () -> "cluster.conf: " + c);
            assertEquals("10.213.0." + (10 + c.id()), c.host(), () -> "cluster.conf: " + c);
        }
    }

    @Test
    @Order(2)
    void eachNodeHasItsOwnNetworkAndPidNamespace() {
        Cmd.Result addr = cluster.ssiRun(3, "ip", "-o", "addr").expectExit(0);
        assertTrue(addr.out().contains("10.213.0.13/"), addr::describe);
        for (int other : List.of(1, 2, 4)) {
            assertFalse(addr.out().contains("10.213.0.1" + other + "/"), () -> "node 3 sees node " + other + "'s address: " + addr.describe());
        }
        Cmd.Result pid = cluster.ssiRun(3, "bash", "-c", "echo $$").expectExit(0);
        int p = Integer.parseInt(pid.out().trim());
        assertTrue(TestCluster.inRange(p, 3), () -> "pid " + p + " not in node 3's range: " + pid.describe());
        // and from node 1 the same program is elsewhere
        Cmd.Result addr1 = cluster.ssiRun(1, "ip", "-o", "addr").expectExit(0);
        assertTrue(addr1.out().contains("10.213.0.11/") && !addr1.out().contains("10.213.0.13/"), addr1::describe);
    }

    @Test
    @Order(3)
    void psListsTheProcessesOfEveryNodeFromAnyNode() {
        for (int k = 2; k <= 4; k++) {
            Cmd.Bg bg = cluster.sleeper(k, 300);
            sleepRun.put(k, bg);
            sleepGpid.put(k, Integer.parseInt(bg.awaitFirstLine(BOUND).trim()));
        }
        for (Map.Entry<Integer, Integer> e : sleepGpid.entrySet()) {
            assertTrue(TestCluster.inRange(e.getValue(), e.getKey()), () -> "gpid " + e.getValue() + " on node " + e.getKey());
        }
        for (int ask : List.of(1, 4)) {
            // the sleep may still be the bash that execs it for a moment: wait for the exec
            Cmd.waitUntil(BOUND, () -> psRows(ask).stream().filter(r -> sleepGpid.containsValue(r.gpid()))
                    .allMatch(r -> r.cmd().startsWith("sleep")), () -> "sleep commands in ssi ps");
            List<TestCluster.PsRow> rows = psRows(ask);
            for (Map.Entry<Integer, Integer> e : sleepGpid.entrySet()) {
                TestCluster.PsRow row = rows.stream().filter(r -> r.gpid() == e.getValue()).findFirst().orElse(null);
                assertNotNull(row, () -> "ssi --node " + ask + " ps does not list gpid " + e.getValue() + ": " + rows);
                assertEquals(e.getKey(), row.node(), () -> "NODE column of " + row);
                assertEquals("sleep 300", row.cmd(), () -> "CMD column of " + row);
                assertEquals("root", row.user(), () -> "USER column of " + row);
            }
        }
    }

    private List<TestCluster.PsRow> psRows(int ask) {
        return cluster.ps(ask);
    }

    @Test
    @Order(4)
    void killFromNode1EndsAProcessOnNode3() {
        int g = sleepGpid.get(3);
        Cmd.Result r = cluster.ssi("kill", Integer.toString(g));
        r.expectExit(0);
        int status = sleepRun.get(3).awaitExit(BOUND);
        assertEquals(143, status, () -> sleepRun.get(3).describe());
        Cmd.waitUntil(BOUND, () -> psRows(1).stream().noneMatch(row -> row.gpid() == g), () -> "gpid " + g + " to leave ssi ps");
        // the others live on
        assertTrue(sleepRun.get(2).isAlive() && sleepRun.get(4).isAlive());
    }

    @Test
    @Order(5)
    void aProgramOnNode1SignalsAProcessOnNode2WithItsGpidAsSiPid() {
        String script = String.join("\n",
                "import os, signal",
                "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])",
                "print(os.getpid(), flush=True)",
                "info = signal.sigwaitinfo([signal.SIGUSR1])",
                "print('si_pid', info.si_pid, 'si_signo', info.si_signo, 'si_code', info.si_code, flush=True)");
        Cmd.Bg receiver = cluster.ssiRunBg(2, python(), "-c", script);
        int rpid = Integer.parseInt(receiver.awaitFirstLine(BOUND).trim());
        assertTrue(TestCluster.inRange(rpid, 2), receiver::describe);

        // bash's builtin kill: the sender is the bash itself, whose pid $$ prints first
        Cmd.Result sender = cluster.ssiRun(1, "bash", "-c", "echo $$; kill -USR1 " + rpid + "; echo rc=$?");
        sender.expectExit(0);
        List<String> s = sender.outLines();
        assertEquals("rc=0", s.get(1), sender::describe);
        int senderPid = Integer.parseInt(s.get(0).trim());
        assertTrue(TestCluster.inRange(senderPid, 1), sender::describe);

        assertEquals(0, receiver.awaitExit(BOUND), receiver::describe);
        String[] got = receiver.out().lines().skip(1).findFirst().orElse("").split(" ");
        assertEquals("si_pid", got[0], receiver::describe);
        assertEquals(senderPid, Integer.parseInt(got[1]), () -> "si_pid is not the sender's gpid: " + receiver.describe());
        assertEquals("10", got[3], receiver::describe);
    }

    @Test
    @Order(6)
    void signalsToANodeThatDoesNotExistFailWithEsrch() {
        int nowhere = TestCluster.firstGpid(200) + 5;
        Cmd.Result prog = cluster.ssiRun(1, "bash", "-c", "kill -USR1 " + nowhere + "; echo rc=$?; kill -0 " + nowhere + "; echo rc=$?");
        prog.expectExit(0);
        assertEquals(List.of("rc=1", "rc=1"), prog.outLines(), prog::describe);
        assertTrue(prog.err().contains("No such process"), () -> "kill(2) must fail with ESRCH: " + prog.describe());

        Cmd.Result cli = cluster.ssi("kill", Integer.toString(nowhere));
        cli.expectExit(1);
        assertTrue(cli.err().contains("node 200") && cli.err().contains(Integer.toString(nowhere)), cli::describe);
    }

    @Test
    @Order(7)
    void aSecondStartIsRefusedAndTheClusterIsUnharmed() {
        Cmd.Result again = cluster.ssi("cluster", "start", "--nodes", "4", "--netns");
        again.expectExit(1);
        assertTrue(again.err().contains("already running"), again::describe);
        Cmd.Result plain = cluster.ssi("cluster", "start", "--nodes", "2", "--base-port", Integer.toString(cluster.basePort() + 100));
        plain.expectExit(1);
        assertTrue(plain.err().contains("already running"), plain::describe);

        Map<Integer, TestCluster.NodeRow> nodes = cluster.nodes(1);
        assertEquals(4, nodes.size(), () -> "nodes: " + nodes);
        nodes.values().forEach(n -> assertTrue(n.state().equals("UP") || n.state().equals("SELF"), () -> "not UP: " + n));
        assertEquals(4, cluster.nodes(3).size());
        List<TestCluster.PsRow> rows = psRows(1);
        for (int k : List.of(2, 4)) {
            assertTrue(sleepRun.get(k).isAlive(), () -> sleepRun.get(k).describe());
            int g = sleepGpid.get(k);
            assertTrue(rows.stream().anyMatch(r -> r.gpid() == g), () -> "gpid " + g + " missing from " + rows);
        }
        cluster.ssiRun(4, "true").expectExit(0);
    }

    static String python() {
        return Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3";
    }
}
