package ssi.launcher;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ssi.comm.ClusterConfig;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.Reply;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `ssi cluster start` and `stop` against fake daemons on real UNIX sockets (the real JDK control
 * client talks to them), with fake node starters and a recording ip runner. Real shims and daemons
 * are exercised by the end-to-end tests of the tests module.
 */
class ClusterCommandsTest {
    @TempDir
    Path tmp;
    Path dir;
    FakeCluster cluster;
    final List<List<String>> ipCommands = new CopyOnWriteArrayList<>();
    String netnsList = "";

    @BeforeEach
    void setUp() {
        dir = tmp.resolve("run"); // start must create it
        cluster = new FakeCluster(dir);
    }

    @AfterEach
    void tearDown() {
        cluster.close();
    }

    private Cli cli() {
        Cli c = new Cli().realSockets();
        c.starter = cluster.starter();
        c.env.put("SSI_RUN_DIR", dir.toString());
        c.commands = cmd -> {
            ipCommands.add(cmd);
            String joined = String.join(" ", cmd.subList(1, cmd.size()));
            return new CommandRunner.Result(0, joined.equals("netns list") ? netnsList : "");
        };
        return c;
    }

    // ---- start ----

    @Test
    void startRefusesWhenANodeAnswersPing() throws IOException {
        Files.createDirectories(dir);
        try (FakeControlServer running = new FakeControlServer(dir.resolve("node-1.ctl"), r -> Reply.pong(1))) {
            Cli.Result r = cli().run("cluster", "start", "--nodes", "2");
            assertEquals(1, r.code());
            assertEquals("ssi: cluster already running: node 1 answers at " + dir.resolve("node-1.ctl")
                    + "; stop it with `ssi cluster stop`\n", r.err());
            assertEquals(List.of(new ControlMessages.Ping()), running.requests);
            assertTrue(cluster.starts.isEmpty(), "nothing may be started");
            assertFalse(Files.exists(dir.resolve("cluster.conf")), "nothing may be written");
        }
    }

    @Test
    void refusalNamesTheRunDirWhenGivenAsOption() throws IOException {
        Files.createDirectories(dir);
        try (FakeControlServer running = new FakeControlServer(dir.resolve("node-3.ctl"), r -> Reply.pong(3))) {
            Cli c = cli();
            c.env.remove("SSI_RUN_DIR");
            Cli.Result r = c.run("--run-dir", dir.toString(), "cluster", "start");
            assertEquals(1, r.code());
            assertEquals("ssi: cluster already running: node 3 answers at " + dir.resolve("node-3.ctl")
                    + "; stop it with `ssi --run-dir " + dir + " cluster stop`\n", r.err());
        }
    }

    @Test
    void startWritesThePlainLayoutAndWaitsForEveryNode() throws IOException {
        Cli.Result r = cli().run("cluster", "start", "--nodes", "3", "--base-port", "9000");
        assertEquals(0, r.code(), r.err());
        assertEquals("cluster started: 3 nodes in " + dir + "\n", r.out());
        assertEquals("# SSI cluster: node <id> <host> <port> [netns <name>]\n"
                + "node 1 127.0.0.1 9001\n"
                + "node 2 127.0.0.1 9002\n"
                + "node 3 127.0.0.1 9003\n", Files.readString(dir.resolve("cluster.conf")));
        assertEquals(List.of("1:-", "2:-", "3:-"), cluster.starts);
        assertEquals("rwxr-xr-x", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
        Path secret = dir.resolve("secret");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(secret)));
        assertTrue(Files.readString(secret).strip().matches("[0-9a-f]{64}"));
        // every node was pinged, and node 1 was asked who is UP
        cluster.requests().forEach((id, reqs) -> assertTrue(reqs.contains(new ControlMessages.Ping()), "node " + id));
        assertTrue(cluster.requests().get(1).contains(new ControlMessages.Nodes()));
        assertTrue(ipCommands.isEmpty(), "no network namespaces without --netns");
    }

    @Test
    void startKeepsAnExistingSecretAndRemovesStaleSockets() throws IOException {
        Files.createDirectories(dir);
        String old = "ab".repeat(32) + "\n";
        Files.writeString(dir.resolve("secret"), old);
        new FakeControlServer(dir.resolve("node-1.ctl"), r -> Reply.pong(1)).close(); // a dead daemon's socket
        Files.createFile(dir.resolve("node-7.launch")); // and a dead shim's
        Cli.Result r = cli().run("cluster", "start");
        assertEquals(0, r.code(), r.err());
        assertEquals(old, Files.readString(dir.resolve("secret")));
        assertFalse(Files.exists(dir.resolve("node-7.launch")));
        // no --base-port: a free loopback port, so clusters in different run directories never collide
        String conf = Files.readString(dir.resolve("cluster.conf"));
        assertTrue(conf.matches("# SSI cluster: node <id> <host> <port> \\[netns <name>\\]\nnode 1 127\\.0\\.0\\.1 [1-9][0-9]*\n"),
                conf);
    }

    @Test
    void anExplicitBasePortPlacesNodeNAtPPlusN() throws IOException {
        Cli.Result r = cli().run("cluster", "start", "--nodes", "2", "--base-port", "7700");
        assertEquals(0, r.code(), r.err());
        assertEquals("# SSI cluster: node <id> <host> <port> [netns <name>]\nnode 1 127.0.0.1 7701\nnode 2 127.0.0.1 7702\n",
                Files.readString(dir.resolve("cluster.conf")));
    }

    @Test
    void freePortsAreDistinct() throws SsiException {
        var ports = ClusterLayout.plainFreePorts(8).nodes().stream().map(n -> n.port()).distinct().count();
        assertEquals(8, ports);
    }

    @Test
    void netnsLayoutBuildsTheNetworkAndStartsNodesInTheirNamespaces() throws IOException {
        Cli.Result r = cli().run("cluster", "start", "--nodes", "2", "--netns");
        assertEquals(0, r.code(), r.err());
        assertEquals("# SSI cluster: node <id> <host> <port> [netns <name>]\n"
                + "node 1 10.213.0.11 7700 netns ssi-n1\n"
                + "node 2 10.213.0.12 7700 netns ssi-n2\n", Files.readString(dir.resolve("cluster.conf")));
        assertEquals(List.of("1:ssi-n1", "2:ssi-n2"), cluster.starts);
        List<String> expected = List.of(
                "netns list",
                "netns add ssi-sw",
                "-n ssi-sw link set lo up",
                "-n ssi-sw link add ssibr0 type bridge",
                "-n ssi-sw link set ssibr0 up",
                "netns add ssi-n1",
                "-n ssi-n1 link set lo up",
                "link add ssi-v1 netns ssi-n1 type veth peer name ssi-b1 netns ssi-sw",
                "-n ssi-n1 addr add 10.213.0.11/24 dev ssi-v1",
                "-n ssi-n1 link set ssi-v1 up",
                "-n ssi-sw link set ssi-b1 master ssibr0",
                "-n ssi-sw link set ssi-b1 up",
                "netns add ssi-n2",
                "-n ssi-n2 link set lo up",
                "link add ssi-v2 netns ssi-n2 type veth peer name ssi-b2 netns ssi-sw",
                "-n ssi-n2 addr add 10.213.0.12/24 dev ssi-v2",
                "-n ssi-n2 link set ssi-v2 up",
                "-n ssi-sw link set ssi-b2 master ssibr0",
                "-n ssi-sw link set ssi-b2 up");
        assertEquals(expected, ipArgs());
        assertEquals("cluster started: 2 nodes in " + dir + " (network namespaces ssi-n1..ssi-n2)\n", r.out());
    }

    private List<String> ipArgs() {
        List<String> out = new ArrayList<>();
        for (List<String> c : ipCommands) {
            assertEquals(NetnsTopology.ipTool(), c.getFirst());
            out.add(String.join(" ", c.subList(1, c.size())));
        }
        return out;
    }

    @Test
    void aFailingNodeStopsTheOthersAndPointsToItsLog() throws IOException {
        cluster.failing.put(2, "ssi-shim: node 2: cannot mount /proc: Operation not permitted");
        Cli.Result r = cli().run("cluster", "start", "--nodes", "3");
        assertEquals(1, r.code());
        assertEquals("ssi: cluster start: node 2 failed: ssi-shim: node 2: cannot mount /proc: Operation not permitted; see "
                + dir.resolve("node-2.log") + "; the nodes that started were stopped\n", r.err());
        assertEquals("", r.out());
        for (int id : List.of(1, 3)) {
            assertTrue(cluster.servers.get(id).requests.contains(new ControlMessages.Shutdown(false)), "node " + id);
            assertTrue(cluster.servers.get(id).isClosed(), "node " + id);
            assertFalse(Files.exists(dir.resolve("node-" + id + ".ctl")), "stale socket of node " + id);
        }
    }

    @Test
    void aNodeThatNeverComesUpFailsTheStartAfterTheTimeout() {
        cluster.seenDown.add(3);
        Cli c = cli();
        c.tune = c.tune.andThen(s -> s.startTimeout = Duration.ofMillis(700));
        Cli.Result r = c.run("cluster", "start", "--nodes", "3", "--netns");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("ssi: cluster start: node 3 failed: node 1 sees it DOWN; see " + dir.resolve("node-3.log")),
                r.err());
        assertTrue(cluster.servers.values().stream().allMatch(FakeControlServer::isClosed), "everything was stopped");
        // the network went away too
        assertTrue(ipArgs().contains("netns del ssi-sw") || ipArgs().contains("netns del ssi-n1"), ipArgs().toString());
    }

    @Test
    void netnsSetupRefusesNamespacesWithLiveProcessesAndDeletesIdleLeftovers() {
        netnsList = "ssi-n1 (id: 3)\nssi-sw\nother-ns\n";
        Cli c = cli();
        c.commands = cmd -> {
            ipCommands.add(cmd);
            String args = String.join(" ", cmd.subList(1, cmd.size()));
            return new CommandRunner.Result(0, switch (args) {
                case "netns list" -> netnsList;
                case "netns pids ssi-n1" -> "4242\n4243";
                default -> "";
            });
        };
        Cli.Result r = c.run("cluster", "start", "--nodes", "2", "--netns");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("ssi: cluster start --netns: network namespace ssi-n1 is in use by process(es) 4242 4243"),
                r.err());
        assertTrue(cluster.starts.isEmpty());
        assertFalse(ipArgs().stream().anyMatch(a -> a.startsWith("netns del")), "a busy namespace must be left alone");

        ipCommands.clear();
        Cli idle = cli(); // the same leftovers, no process in them
        assertEquals(0, idle.run("cluster", "start", "--nodes", "1", "--netns").code());
        List<String> args = ipArgs();
        assertEquals(List.of("netns list", "netns pids ssi-n1", "netns del ssi-n1", "netns del ssi-sw", "netns add ssi-sw"),
                args.subList(0, 5));
        assertFalse(args.contains("netns del other-ns"), "only our namespaces are touched");
    }

    @Test
    void netnsFailureTearsDownWhatWasBuilt() {
        Cli c = cli();
        c.commands = cmd -> {
            ipCommands.add(cmd);
            String args = String.join(" ", cmd.subList(1, cmd.size()));
            if (args.startsWith("link add ssi-v1")) return new CommandRunner.Result(2, "RTNETLINK answers: Operation not permitted");
            return new CommandRunner.Result(0, args.equals("netns list") && ipCommands.size() > 3 ? "ssi-sw\nssi-n1" : "");
        };
        Cli.Result r = c.run("cluster", "start", "--netns");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("ssi: cluster start --netns: `ip link add ssi-v1 netns ssi-n1 type veth peer name ssi-b1 "
                + "netns ssi-sw` failed: RTNETLINK answers: Operation not permitted; --netns needs root"), r.err());
        List<String> args = ipArgs();
        assertTrue(args.containsAll(List.of("netns del ssi-n1", "netns del ssi-sw")), args.toString());
        assertTrue(cluster.starts.isEmpty());
    }

    // ---- stop ----

    @Test
    void stopAsksTheLowestReachableNodeAndCleansUp() throws IOException {
        Files.createDirectories(dir);
        ClusterLayout.plain(3, 7700).write(dir.resolve("cluster.conf"));
        new FakeControlServer(dir.resolve("node-1.ctl"), req -> Reply.pong(1)).close(); // node 1 is dead
        cluster.up(2);
        cluster.up(3);
        Cli.Result r = cli().run("cluster", "stop");
        assertEquals(0, r.code(), r.err());
        assertEquals("cluster stopped: " + dir + "\n", r.out());
        assertTrue(cluster.servers.get(2).requests.contains(new ControlMessages.Shutdown(true)));
        assertFalse(cluster.servers.get(3).requests.stream().anyMatch(q -> q instanceof ControlMessages.Shutdown));
        for (int id = 1; id <= 3; id++) assertFalse(Files.exists(dir.resolve("node-" + id + ".ctl")), "node " + id);
        assertTrue(Files.exists(dir.resolve("cluster.conf")), "the configuration stays");
        assertTrue(ipCommands.isEmpty(), "no namespaces to delete for a plain cluster");
    }

    @Test
    void stopDeletesTheNamespacesOfANetnsCluster() throws IOException {
        Files.createDirectories(dir);
        ClusterLayout.netns(2, 7700).write(dir.resolve("cluster.conf"));
        cluster.up(1);
        cluster.up(2);
        netnsList = "ssi-n2\nssi-sw\nssi-n1\n";
        assertEquals(0, cli().run("cluster", "stop").code());
        assertEquals(List.of("netns list", "netns pids ssi-n1", "netns del ssi-n1", "netns pids ssi-n2", "netns del ssi-n2",
                "netns del ssi-sw"), ipArgs());
    }

    @Test
    void stopLeavesNamespacesThatStillHoldProcesses() throws IOException {
        Files.createDirectories(dir);
        ClusterLayout.netns(2, 7700).write(dir.resolve("cluster.conf"));
        netnsList = "ssi-n1\nssi-n2\nssi-sw\n";
        Cli c = cli();
        c.commands = cmd -> {
            ipCommands.add(cmd);
            String args = String.join(" ", cmd.subList(1, cmd.size()));
            return new CommandRunner.Result(0, switch (args) {
                case "netns list" -> netnsList;
                case "netns pids ssi-n2" -> "777";
                default -> "";
            });
        };
        Cli.Result r = c.run("cluster", "stop"); // nothing runs in this run dir: a leftover clean-up
        assertEquals(1, r.code());
        assertFalse(ipArgs().contains("netns del ssi-n2"), ipArgs().toString());
        assertTrue(ipArgs().contains("netns del ssi-n1"), ipArgs().toString());
    }

    @Test
    void stopWithNothingRunning() throws IOException {
        Files.createDirectories(dir);
        new FakeControlServer(dir.resolve("node-2.ctl"), req -> Reply.pong(2)).close();
        Cli.Result r = cli().run("cluster", "stop");
        assertEquals(1, r.code());
        assertEquals("ssi: cluster stop: no cluster is running in " + dir + "; start one with `ssi cluster start`\n", r.err());
        assertFalse(Files.exists(dir.resolve("node-2.ctl")), "the stale socket is removed anyway");
    }

    @Test
    void stopReportsANodeThatDoesNotGoAway() throws IOException {
        Files.createDirectories(dir);
        cluster.up(1);
        cluster.up(2);
        cluster.stubborn.add(2);
        Cli c = cli();
        c.tune = c.tune.andThen(s -> s.stopTimeout = Duration.ofMillis(500));
        Cli.Result r = c.run("cluster", "stop");
        assertEquals(1, r.code());
        assertEquals("ssi: cluster stop: node(s) 2 still run after 0.5 s; see " + dir.resolve("node-2.log")
                + "; try again, or end the node's ssi-shim\n", r.err());
        assertTrue(Files.exists(dir.resolve("node-2.ctl")), "a live node's socket must stay");
    }

    @Test
    void stopRefusedByTheDaemon() throws IOException {
        Files.createDirectories(dir);
        cluster.up(1).handler(req -> req instanceof ControlMessages.Shutdown
                ? Reply.error(ControlMessages.EPERM, "only root may stop the cluster") : Reply.pong(1));
        Cli.Result r = cli().run("cluster", "stop");
        assertEquals(1, r.code());
        assertEquals("ssi: cluster stop: node 1 refused: Operation not permitted (only root may stop the cluster); "
                + "stopping the cluster needs root\n", r.err());
    }

    // ---- layouts ----

    @Test
    void layoutsAsConfigs() throws IOException {
        ClusterConfig plain = ClusterLayout.plain(255, 7700);
        assertEquals(255, plain.nodes().size());
        assertEquals("127.0.0.1:7955", plain.node(255).hostPort());
        assertTrue(plain.netns(1).isEmpty());
        ClusterConfig ns = ClusterLayout.netns(244, 7700);
        assertEquals("10.213.0.254:7700", ns.node(244).hostPort());
        assertEquals("ssi-n244", ns.netns(244).orElseThrow());
        // what is written is what the daemon will load
        Files.createDirectories(dir);
        ns.write(dir.resolve("cluster.conf"));
        ClusterConfig back = ClusterConfig.load(dir.resolve("cluster.conf"));
        assertEquals(ns.nodes(), back.nodes());
        assertEquals("ssi-n17", back.netns(17).orElseThrow());
        assertEquals(null, ClusterLayout.problem(244, 65535, true));
        assertEquals(null, ClusterLayout.problem(255, 65280, false));
        assertTrue(ClusterLayout.problem(255, 65281, false) != null);
    }
}
