package ssi.launcher;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import ssi.comm.control.Capabilities;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.CapSets;
import ssi.comm.control.ControlMessages.Kill;
import ssi.comm.control.ControlMessages.NodeInfo;
import ssi.comm.control.ControlMessages.ProcessInfo;
import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Request;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every command's argument parsing, through picocli and a fake control source: which requests reach
 * which socket, exit statuses 0/1/2, and the "ssi: what: why; what to do" error lines.
 */
class CliParsingTest {

    private static final Path DEFAULT_SOCKET = Path.of("/run/ssi/node-1.ctl");

    /** A fake daemon good enough for every read-only command. */
    private static Reply daemon(Request r) {
        return switch (r) {
            case ControlMessages.Ping p -> Reply.pong(1);
            case ControlMessages.Nodes n -> Reply.nodes(List.of(new NodeInfo(1, "127.0.0.1:7701", "SELF", 0.5,
                    8L << 30, 6L << 30, 3)));
            case ControlMessages.Ps p -> Reply.processes(List.of(
                    new ProcessInfo(16385, 1, 16385, 16385, 1, 0, "root", "S", 1200, 2048, "bash")));
            case ControlMessages.Kill k -> Reply.ok();
            case ControlMessages.CapGet c -> Reply.caps(new CapSets(c.gpid(), 31, 1, 31, 0));
            case ControlMessages.CapSet c -> Reply.caps(new CapSets(c.gpid(), 31, 1, 31, 0));
            case ControlMessages.Shutdown s -> Reply.ok();
            case ControlMessages.Checkpoint c -> Reply.checkpointed(new ControlMessages.Checkpointed(
                    c.dir().isEmpty() ? "/var/lib/ssi/checkpoints/" + c.gpid() + "-1" : c.dir(), 12_400, 2, 3L << 20));
            case ControlMessages.Restart x -> Reply.restarted(new ControlMessages.Restarted(16390, 41_600));
            case ControlMessages.RestartForeground x -> Reply.error(ControlMessages.EPROTO, "the CLI never sends it");
        };
    }

    private static Cli cli() {
        return new Cli().answering(CliParsingTest::daemon);
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "cluster", "cluster start", "cluster stop", "nodes", "ps", "kill", "capset", "checkpoint",
            "restart", "image", "image show"})
    void everyCommandHasHelpAndADescription(String command) {
        String[] words = command.isEmpty() ? new String[0] : command.split(" ");
        String[] args = java.util.Arrays.copyOf(words, words.length + 1);
        args[words.length] = "--help";
        Cli.Result r = cli().run(args);
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("Usage: ssi"), r.out());
        // the line after the synopsis is the one-line description
        String description = r.out().lines().dropWhile(l -> l.startsWith("Usage:") || l.startsWith(" ")).findFirst().orElse("");
        assertTrue(description.length() > 10, "no description for '" + command + "': " + r.out());
    }

    @Test
    void checkpointSendsAnAbsoluteDirAndReportsTheResult() {
        Cli c = cli();
        Cli.Result r = c.run("checkpoint", "16390", "-o", "img", "--stop");
        assertEquals(0, r.code(), r.err());
        String abs = Path.of("img").toAbsolutePath().normalize().toString();
        assertEquals(List.of(new ControlMessages.Checkpoint(16390, abs, true)), c.requests());
        assertEquals("checkpoint of 16390 (2 processes, 3.0 MiB) written to " + abs + "; frozen 12 ms; application stopped\n",
                r.out());
        Cli d = cli();
        assertEquals(0, d.run("checkpoint", "16391").code());
        assertEquals(List.of(new ControlMessages.Checkpoint(16391, "", false)), d.requests());
        assertEquals(2, cli().run("checkpoint").code());
        assertEquals(2, cli().run("checkpoint", "x").code());
    }

    @Test
    void incrementalCheckpointSendsTheParentAbsoluteAndParentImpliesIncremental() {
        Cli c = cli();
        assertEquals(0, c.run("checkpoint", "16390", "--incremental").code());
        assertEquals(List.of(new ControlMessages.Checkpoint(16390, "", false, true, "")), c.requests());
        Cli d = cli();
        Cli.Result r = d.run("checkpoint", "16390", "-o", "img2", "--parent", "img1");
        assertEquals(0, r.code(), r.err());
        String img1 = Path.of("img1").toAbsolutePath().normalize().toString();
        String img2 = Path.of("img2").toAbsolutePath().normalize().toString();
        assertEquals(List.of(new ControlMessages.Checkpoint(16390, img2, false, true, img1)), d.requests());
        assertTrue(r.out().contains("incremental: "), r.out());
    }

    @Test
    void restartSendsAnAbsoluteDirAndReportsGpidNodeAndTime() {
        Cli c = cli();
        Cli.Result r = c.run("restart", "img");
        assertEquals(0, r.code(), r.err());
        String abs = Path.of("img").toAbsolutePath().normalize().toString();
        assertEquals(List.of(new ControlMessages.Restart(abs)), c.requests());
        assertEquals("restarted 16390 on node 1 in 42 ms\n", r.out());
        assertEquals(2, cli().run("restart").code());
    }

    @Test
    void restartRefusalIsOneLineAndExit1() {
        Cli c = new Cli().answering(req -> Reply.error(ControlMessages.EEXIST, "gpid 16390 is taken on node 1; nothing was started"));
        Cli.Result r = c.run("restart", "/tmp/img");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("ssi: restart /tmp/img: "), r.err());
        assertTrue(r.err().contains("gpid 16390 is taken on node 1"), r.err());
        assertEquals("", r.out());
    }

    @Test
    void checkpointRefusalIsOneLineWithTheDaemonsReason() {
        Cli c = new Cli().answering(req -> Reply.error(ControlMessages.EOPNOTSUPP,
                "process 16390 fd 5 is a TCP socket to 10.0.0.1:80: not supported"));
        Cli.Result r = c.run("checkpoint", "16390");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("ssi: checkpoint 16390: Operation not supported (process 16390 fd 5 is a TCP socket to "
                + "10.0.0.1:80: not supported)"), r.err());
    }

    @Test
    void missingCommandIsAUsageError() {
        Cli.Result r = cli().run();
        assertEquals(2, r.code());
        assertEquals("ssi: missing command (one of: cluster, nodes, ps, kill, capset, checkpoint, restart, image); see `ssi --help`\n", r.err());
        Cli.Result c = cli().run("cluster");
        assertEquals(2, c.code());
        assertTrue(c.err().startsWith("ssi: cluster: missing command (start or stop)"), c.err());
    }

    @Test
    void unknownOptionIsAUsageErrorNamingTheCommand() {
        Cli.Result r = cli().run("ps", "--bogus");
        assertEquals(2, r.code());
        assertTrue(r.err().startsWith("ssi: ps: Unknown option: '--bogus'"), r.err());
        assertTrue(r.err().strip().endsWith("see `ssi ps --help`"), r.err());
        assertEquals("", r.out());
    }

    @Test
    void globalOptionsWorkBeforeAndAfterTheCommand() {
        Cli a = cli();
        assertEquals(0, a.run("--run-dir", "/tmp/x", "--node", "3", "nodes").code());
        assertEquals(Path.of("/tmp/x/node-3.ctl"), a.sent.getFirst().socket());
        Cli b = cli();
        assertEquals(0, b.run("nodes", "--run-dir", "/tmp/y", "--node", "2").code());
        assertEquals(Path.of("/tmp/y/node-2.ctl"), b.sent.getFirst().socket());
        Cli.Result stop = cli().run("cluster", "stop", "--run-dir", "/tmp/ssi-nothing-here");
        assertEquals(1, stop.code());
        assertEquals("ssi: cluster stop: no cluster is running in /tmp/ssi-nothing-here; start one with "
                + "`ssi --run-dir /tmp/ssi-nothing-here cluster start`\n", stop.err());
    }

    @Test
    void defaultsComeFromTheEnvironmentThenBuiltIns() {
        Cli plain = cli();
        plain.run("nodes");
        assertEquals(DEFAULT_SOCKET, plain.sent.getFirst().socket());
        Cli env = cli();
        env.env.put("SSI_RUN_DIR", "/tmp/r");
        env.env.put("SSI_NODE", "4");
        env.run("nodes");
        assertEquals(Path.of("/tmp/r/node-4.ctl"), env.sent.getFirst().socket());
        // an explicit option beats the environment
        Cli both = cli();
        both.env.put("SSI_NODE", "4");
        both.run("--node", "5", "nodes");
        assertEquals(Path.of("/run/ssi/node-5.ctl"), both.sent.getFirst().socket());
    }

    @Test
    void insideANodeTheDefaultsAreThatNodeAndItsCluster() {
        Cli inside = cli().insideNode(3, Path.of("/tmp/c"));
        inside.run("nodes");
        assertEquals(Path.of("/tmp/c/node-3.ctl"), inside.sent.getFirst().socket());
        // the environment and the options still win
        Cli env = cli().insideNode(3, Path.of("/tmp/c"));
        env.env.put("SSI_NODE", "4");
        env.env.put("SSI_RUN_DIR", "/tmp/r");
        env.run("nodes");
        assertEquals(Path.of("/tmp/r/node-4.ctl"), env.sent.getFirst().socket());
        Cli opt = cli().insideNode(3, Path.of("/tmp/c"));
        opt.run("--node", "2", "nodes");
        assertEquals(Path.of("/tmp/c/node-2.ctl"), opt.sent.getFirst().socket());
    }

    @Test
    void badNodeIdsAreUsageErrors() {
        Cli.Result r = cli().run("--node", "0", "nodes");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--node 0 is not a node id (1..255)"), r.err());
        Cli env = cli();
        env.env.put("SSI_NODE", "abc");
        Cli.Result e = env.run("nodes");
        assertEquals(2, e.code());
        assertTrue(e.err().contains("SSI_NODE='abc' is not a node id"), e.err());
        assertEquals(2, cli().run("--node", "x", "ps").code());
    }

    @Test
    void nodesPrintsATable() {
        Cli.Result r = cli().run("nodes");
        assertEquals(0, r.code(), r.err());
        assertEquals("ID ADDRESS        STATE LOAD       MEM PROCS\n"
                + " 1 127.0.0.1:7701 SELF  0.50 2.0G/8.0G     3\n", r.out());
    }

    @Test
    void psAsksEveryNodeAndAcceptsPsOptions() {
        Cli c = cli();
        Cli.Result r = c.run("ps", "-e", "-u", "root,1000", "-u", "bob", "-p", "16385,16390", "--on", "1", "-o", "gpid,cmd");
        assertEquals(0, r.code(), r.err());
        assertEquals(List.of(new ControlMessages.Ps(true)), c.requests());
        assertEquals(" GPID CMD\n16385 bash\n", r.out());
        assertEquals(0, cli().run("ps", "-A").code());
    }

    @Test
    void psUsageErrors() {
        assertPsUsage("-o gpid,nope", "unknown column 'nope' (known: gpid,node,ppid,pgid,sid,user,uid,stat,time,rss,cmd)");
        assertPsUsage("-p abc", "'abc' is not an int");
        assertPsUsage("-p 0", "-p 0: a gpid is a positive number");
        assertPsUsage("--on 256", "--on 256: a node id is 1..255");
        assertPsUsage("-o gpid,,cmd", "empty column name");
    }

    private void assertPsUsage(String args, String expected) {
        Cli c = cli();
        List<String> argv = new java.util.ArrayList<>(List.of("ps"));
        argv.addAll(List.of(args.split(" ")));
        Cli.Result r = c.run(argv.toArray(String[]::new));
        assertEquals(2, r.code(), args + ": " + r.err());
        assertTrue(r.err().startsWith("ssi: ps: ") && r.err().contains(expected), args + ": " + r.err());
        assertTrue(c.sent.isEmpty(), "a usage error must not reach the daemon");
    }

    @Test
    void psWithAFilterThatSelectsNothingExitsOne() {
        Cli.Result r = cli().run("ps", "-p", "99999");
        assertEquals(1, r.code());
        assertEquals("GPID NODE PPID USER STAT TIME CMD\n", r.out());
        assertEquals("", r.err());
    }

    @Test
    void killSignalForms() {
        assertKill(15, "kill", "16390");
        assertKill(9, "kill", "-9", "16390");
        assertKill(9, "kill", "-KILL", "16390");
        assertKill(9, "kill", "-SIGKILL", "16390");
        assertKill(1, "kill", "-s", "HUP", "16390");
        assertKill(1, "kill", "-s", "sighup", "16390");
        assertKill(10, "kill", "-sUSR1", "16390");
        assertKill(26, "kill", "-VTALRM", "16390"); // not -V (version) followed by TALRM
        assertKill(0, "kill", "-0", "16390");
        assertKill(36, "kill", "-RTMIN+2", "16390");
        assertKill(9, "--node", "2", "kill", "-9", "16390");
    }

    private void assertKill(int signal, String... args) {
        Cli c = cli();
        Cli.Result r = c.run(args);
        assertEquals(0, r.code(), String.join(" ", args) + ": " + r.err());
        assertEquals(List.of(new Kill(16390, signal)), c.requests(), String.join(" ", args));
    }

    @Test
    void killSendsOneRequestPerGpidInOrder() {
        Cli c = cli();
        assertEquals(0, c.run("kill", "-STOP", "16390", "16391", "32770").code());
        assertEquals(List.of(new Kill(16390, 19), new Kill(16391, 19), new Kill(32770, 19)), c.requests());
    }

    @Test
    void killUsageErrors() {
        assertKillUsage("no GPID given", "kill");
        assertKillUsage("no GPID given", "kill", "-9");
        assertKillUsage("unknown signal 'FOO'", "kill", "-FOO", "1");
        assertKillUsage("unknown signal 'BAR'", "kill", "-s", "BAR", "1");
        assertKillUsage("signal number 65 out of range", "kill", "-65", "1");
        assertKillUsage("'abc' is not a gpid", "kill", "abc");
        assertKillUsage("'0' is not a gpid", "kill", "0");
        assertKillUsage("give the signal once", "kill", "-s", "KILL", "-TERM", "1");
        assertKillUsage("give the signal once", "kill", "1", "-2");
    }

    private void assertKillUsage(String expected, String... args) {
        Cli c = cli();
        Cli.Result r = c.run(args);
        assertEquals(2, r.code(), String.join(" ", args));
        assertTrue(r.err().startsWith("ssi: kill: ") && r.err().contains(expected), r.err());
        assertTrue(c.sent.isEmpty());
    }

    @Test
    void killReportsEachFailureAndExitsOne() {
        Cli c = new Cli().answering(req -> {
            Kill k = (Kill) req;
            return switch (k.gpid()) {
                case 16390 -> Reply.error(ControlMessages.EPERM, "owned by another user");
                case 16391 -> Reply.error(ControlMessages.ESRCH, "");
                default -> Reply.ok();
            };
        });
        Cli.Result r = c.run("kill", "16390", "16391", "16392");
        assertEquals(1, r.code());
        assertEquals("ssi: kill 16390: Operation not permitted (owned by another user)\n"
                + "ssi: kill 16391: No such process\n", r.err());
        assertEquals(3, c.sent.size(), "every gpid is tried even after a failure");
    }

    @Test
    void killList() {
        Cli.Result all = cli().run("kill", "-l");
        assertEquals(0, all.code());
        assertTrue(all.out().startsWith(" 1) SIGHUP"), all.out());
        assertTrue(all.out().contains(" 9) SIGKILL") && all.out().contains("64) SIGRTMAX"), all.out());
        Cli.Result conv = cli().run("kill", "-l", "9", "137", "TERM", "sigusr1");
        assertEquals("KILL\nKILL\n15\n10\n", conv.out());
        assertEquals(2, cli().run("kill", "-l", "NOPE").code());
    }

    @Test
    void capsetListsByDefaultForTheCallingShell() {
        Cli c = cli();
        Cli.Result r = c.run("capset");
        assertEquals(0, r.code(), r.err());
        assertEquals(List.of(new ControlMessages.CapGet(0)), c.requests());
        assertEquals("Permitted: CAN_MIGRATE,DISTANT_FORK,CAN_CHECKPOINT,SEE_LOCAL_PROC_STAT,CHANGE_SSI_CAP\n"
                + "Effective: CAN_MIGRATE\n"
                + "Inheritable Permitted: CAN_MIGRATE,DISTANT_FORK,CAN_CHECKPOINT,SEE_LOCAL_PROC_STAT,CHANGE_SSI_CAP\n"
                + "Inheritable Effective: none\n", r.out());
        Cli g = cli();
        assertEquals(0, g.run("capset", "16390", "-l").code());
        assertEquals(List.of(new ControlMessages.CapGet(16390)), g.requests());
    }

    @Test
    void capsetSendsChangesInARuleKeepingOrderAndPrintsNothing() {
        Cli c = cli();
        Cli.Result r = c.run("capset", "16390", "-e", "-can_migrate,+DISTANT_FORK", "-p", "+CAN_CHECKPOINT,-CAN_MIGRATE",
                "-d", "SEE_LOCAL_PROC_STAT", "-i", "-CHANGE_SSI_CAP");
        assertEquals(0, r.code(), r.err());
        assertEquals("", r.out());
        int ef = Capabilities.EFFECTIVE, pe = Capabilities.PERMITTED, ie = Capabilities.INHERITABLE_EFFECTIVE,
                ip = Capabilities.INHERITABLE_PERMITTED;
        assertEquals(List.of(
                new ControlMessages.CapSet(16390, pe, Capabilities.CAN_CHECKPOINT, 0),
                new ControlMessages.CapSet(16390, ef, Capabilities.DISTANT_FORK, 0),
                new ControlMessages.CapSet(16390, ie, Capabilities.SEE_LOCAL_PROC_STAT, 0),
                new ControlMessages.CapSet(16390, ef, 0, Capabilities.CAN_MIGRATE),
                new ControlMessages.CapSet(16390, ip, 0, Capabilities.CHANGE_SSI_CAP),
                new ControlMessages.CapSet(16390, pe, 0, Capabilities.CAN_MIGRATE)), c.requests());
    }

    @Test
    void capsetWithListPrintsTheSetsAfterTheChange() {
        Cli c = cli();
        Cli.Result r = c.run("capset", "-e", "+CAN_MIGRATE", "-l");
        assertEquals(0, r.code());
        assertEquals(List.of(new ControlMessages.CapSet(0, Capabilities.EFFECTIVE, 1, 0)), c.requests());
        assertTrue(r.out().startsWith("Permitted: "), r.out());
    }

    @Test
    void capsetUsageErrors() {
        Cli c = cli();
        Cli.Result r = c.run("capset", "-e", "+FLY");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("-e: unknown SSI capability 'FLY' (known: CAN_MIGRATE, DISTANT_FORK, CAN_CHECKPOINT, "
                + "SEE_LOCAL_PROC_STAT, CHANGE_SSI_CAP)"), r.err());
        assertEquals(2, cli().run("capset", "-p", "+CAN_MIGRATE,-CAN_MIGRATE").code());
        assertEquals(2, cli().run("capset", "-i", "").code());
        assertEquals(2, cli().run("capset", "-5").code());
        assertEquals(2, cli().run("capset", "1", "2").code());
        assertTrue(c.sent.isEmpty());
    }

    @Test
    void capsetFailureNamesTheStep() {
        Cli c = new Cli().answering(req -> req instanceof ControlMessages.CapSet s && s.set() == Capabilities.PERMITTED
                ? Reply.error(ControlMessages.EPERM, "needs CHANGE_SSI_CAP") : daemon(req));
        Cli.Result r = c.run("capset", "42", "-p", "+CAN_MIGRATE");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("ssi: capset 42: raise permitted CAN_MIGRATE: Operation not permitted "
                + "(needs CHANGE_SSI_CAP); "), r.err());
    }

    @Test
    void daemonErrorsBecomeOneLineAndExitOne() {
        Cli c = new Cli().answering(req -> Reply.error(ControlMessages.EIO, "node 2 did not answer"));
        Cli.Result r = c.run("ps");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("ssi: ps: Input/output error (node 2 did not answer); see "), r.err());
    }

    @Test
    void clusterStartUsageErrors() {
        assertEquals(2, cli().run("cluster", "start", "--nodes", "0").code());
        assertEquals(2, cli().run("cluster", "start", "--nodes", "256").code());
        Cli.Result ns = cli().run("cluster", "start", "--netns", "--nodes", "245");
        assertEquals(2, ns.code());
        assertTrue(ns.err().contains("--nodes 245 out of range 1..244"), ns.err());
        Cli.Result port = cli().run("cluster", "start", "--nodes", "3", "--base-port", "65533");
        assertEquals(2, port.code());
        assertTrue(port.err().contains("P+3 must be at most 65535"), port.err());
        assertEquals(2, cli().run("cluster", "start", "--nodes", "x").code());
        assertEquals(2, cli().run("cluster", "stop", "extra").code());
    }
}
