package ssi.tests;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.File;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The Java end of the shim link (ssi.shim.ShimLink, Tracee) against the real ssi-shim: a node whose
 * daemon is {@link TraceeProbeDaemon}, a program launched on it with the real ssi-run, attached, read,
 * injected into, given an fd, detached.
 */
@Timeout(value = 240)
class TraceeLiveTest {
    private static final int NODE = 20;
    private static final Duration BOUND = Duration.ofSeconds(60);

    private TestCluster node;

    @AfterEach
    void cleanUp() {
        if (node != null) node.shutDown(); // kills the shim and its node if they are still there
    }

    /** Starts ssi-shim --detach for node 20 with the probe as its daemon; returns once it has linked. */
    private void startProbeNode(String mode) throws IOException, InterruptedException {
        node = TestCluster.create("tracee");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = System.getProperty("java.class.path");
        assertTrue(cp.contains("test-classes") && cp.contains("syscall-shim"),
                () -> "the test classpath does not hold the probe and ssi.shim: " + cp);
        List<String> cmd = new ArrayList<>(List.of(
                TestCluster.home().resolve("native/target/bin/ssi-shim").toString(),
                "--node", Integer.toString(NODE), "--run-dir", node.dir.toString(), "--detach", "--",
                java, "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "--enable-native-access=ALL-UNNAMED",
                "-Dprobe.mode=" + mode, "-cp", cp, TraceeProbeDaemon.class.getName(),
                "--node", Integer.toString(NODE), "--run-dir", node.dir.toString()));
        Path log = node.dir.resolve("node-" + NODE + ".log");
        Process p = new ProcessBuilder(cmd)
                .directory(node.dir.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .redirectErrorStream(true)
                .start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("ssi-shim --detach did not return within 120 s\n" + node.logs());
        }
        assertEquals(0, p.exitValue(), () -> "ssi-shim --detach failed\n" + node.logs());
    }

    private Properties awaitProperties(String name) throws IOException {
        Path f = node.dir.resolve(name);
        Cmd.waitUntil(BOUND, () -> Files.exists(f), () -> name + "\n" + node.logs());
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(f)) {
            p.load(r);
        }
        return p;
    }

    @Test
    void attachReadInjectGiveFdAndDetachALaunchedProgram() throws Exception {
        startProbeNode("basic");
        String script = String.join("\n",
                "echo $$",
                "echo $PPID",
                // wait (bounded) until the probe has put fd 77 in place
                "for i in $(seq 1 600); do [ -e /proc/$$/fd/77 ] && break; sleep 0.1; done",
                "readlink /proc/$$/fd/77 || echo no-fd-77",
                "echo written-through-77 >&77 && echo wrote");
        Cmd.Result run = Cmd.run(Duration.ofSeconds(120), node.env(), node.dir,
                TestCluster.ssiRunCommand(NODE, "bash", "-c", script));
        Properties probe = awaitProperties("probe.properties");
        String context = run.describe() + "\nprobe: " + probe + "\n" + node.logs();
        assertNull(probe.getProperty("error"), () -> "the probe failed: " + context);
        run.expectExit(0);

        List<String> lines = run.outLines();
        assertEquals(4, lines.size(), context);
        int pid = Integer.parseInt(lines.get(0));
        int ppid = Integer.parseInt(lines.get(1));
        Path given = node.dir.resolve(TraceeProbeDaemon.GIVEN_FILE);
        assertEquals(given.toString(), lines.get(2), () -> "fd 77 of the program: " + context);
        assertEquals("wrote", lines.get(3), context);
        assertEquals("written-through-77\n", Files.readString(given), () -> "what came through fd 77: " + context);

        // HELLO
        assertEquals("20", probe.getProperty("link.node"), context);
        assertEquals(Integer.toString(NODE << 14), probe.getProperty("link.pidBase"), context);
        assertEquals(Integer.toString((NODE + 1) << 14), probe.getProperty("link.pidLimit"), context);
        assertEquals("2", probe.getProperty("daemon.pid"), () -> "the daemon is pid 2 of the node: " + context);
        // LAUNCHED
        assertEquals(Integer.toString(pid), probe.getProperty("launched.pid"), context);
        assertTrue(TestCluster.inRange(pid, NODE), context);
        assertEquals("0", probe.getProperty("launched.uid"), context);
        assertTrue(probe.getProperty("launched.path").endsWith("bash"), context);
        assertTrue(probe.getProperty("exe").endsWith("/bash"), context);
        // ATTACH holds it stopped until DETACH
        assertTrue(probe.getProperty("attached.state").startsWith("t"), () -> "not in a tracing stop after attach: " + context);
        assertTrue(probe.getProperty("stillStopped.state").startsWith("t"), context);
        assertFalse(probe.getProperty("detached.state").startsWith("t"), () -> "still stopped after detach: " + context);
        // GETREGS
        assertNotEquals("0", probe.getProperty("regs.rip"), context);
        assertNotEquals("0", probe.getProperty("regs.fsBase"), context);
        assertNotEquals("0", probe.getProperty("regs.rsp"), context);
        assertEquals("51", probe.getProperty("regs.cs"), () -> "cs of a 64-bit user thread is 0x33: " + context);
        // READMEM
        assertEquals("256", probe.getProperty("mem.len"), context);
        assertEquals("true", probe.getProperty("mem.matchesProcMem"), () -> "READMEM differs from /proc/pid/mem: " + context);
        // INJECT
        assertEquals(Integer.toString(pid), probe.getProperty("inject.getpid"), context);
        assertEquals(Integer.toString(ppid), probe.getProperty("inject.getppid"), context);
        assertEquals("-38", probe.getProperty("inject.badSyscall"), () -> "an unknown syscall is -ENOSYS: " + context);
        assertEquals("[" + probe.getProperty("inject.getpid") + ", -38, " + ppid + ", " + probe.getProperty("inject.getpid") + "]",
                probe.getProperty("inject.pipelined"), context);
        assertEquals("", probe.getProperty("inject.many.wrong"), () -> "300 batched calls, each its own result: " + context);
        assertEquals("true", probe.getProperty("inject.many.mapsUnchanged"), () -> "the batch leaves no mapping behind: " + context);
        assertEquals(probe.getProperty("inject.placed.want"), probe.getProperty("inject.placed"),
                () -> "a batch with its code at a given place maps and unmaps next to it: " + context);
        assertEquals("true", probe.getProperty("inject.placed.mapsUnchanged"), () -> "nothing left at that place: " + context);
        assertEquals(probe.getProperty("inject.area.want"), probe.getProperty("inject.area"),
                () -> "a batch in an area the caller mapped (mprotect's result, then the calls'): " + context);
        assertEquals("true", probe.getProperty("inject.area.mapsUnchanged"), () -> "a batch in the caller's area maps nothing: " + context);
        assertEquals("true", probe.getProperty("inject.area.codeThere"), () -> "the shim's code went into the caller's area: " + context);
        assertTrue(probe.getProperty("inject.placed.unaligned", "").startsWith("refused"),
                () -> "an unaligned place is refused before anything is sent: " + context);
        assertEquals("true", probe.getProperty("regs.restored"), () -> "INJECT changed the registers: " + context);
        // GETXSTATE: at least the legacy area and the XSAVE header
        assertTrue(Integer.parseInt(probe.getProperty("xstate.len")) >= 576, context);
        // GIVEFD
        assertEquals(Integer.toString(TraceeProbeDaemon.GIVEN_FD), probe.getProperty("givefd.result"), context);

        // the program's exit ends its listener, and the probe hears of it
        Properties end = awaitProperties("probe-end.properties");
        assertEquals("true", end.getProperty("listenerGone"), () -> "no LISTENER_GONE: " + end + "\n" + node.logs());
        assertEquals(probe.getProperty("launched.listener"), end.getProperty("listenerGone.id"));

        // the probe then exits, and the node with it
        assertTrue(Cmd.waitUntilQuietly(BOUND, () -> TestCluster.processesMentioning(node.dir.toString()).stream()
                        .allMatch(p -> TestCluster.cmdline(p).isEmpty())),
                () -> "the node did not stop after its daemon exited: " + TestCluster.processesMentioning(node.dir.toString())
                        + "\n" + node.logs());
    }

    /**
     * INJECT of a syscall the program's own seccomp filter traps (kill(self, 0), which the shim decides
     * alone): the injection must complete, and the node keep working.
     */
    @Test
    void injectingASyscallTheFilterTrapsCompletes() throws Exception {
        startProbeNode("trapped-inject");
        String script = "echo $$; for i in $(seq 1 600); do [ -e probe-done ] && exit 0; sleep 0.1; done; exit 9";
        Cmd.Bg run = Cmd.start(node.env(), node.dir, TestCluster.ssiRunCommand(NODE, "bash", "-c", script));
        try {
            Properties probe = awaitProperties("probe.properties");
            String context = "probe: " + probe + "\n" + node.logs();
            assertNull(probe.getProperty("error"), () -> "the probe failed: " + context);
            assertEquals("0", probe.getProperty("inject.trappedKill"),
                    () -> "kill(self, 0) injected into a program whose filter traps kill: " + context);
            assertEquals(probe.getProperty("launched.pid"), probe.getProperty("inject.getpidAfter"), context);
            assertEquals(0, run.awaitExit(BOUND), run::describe);
        } finally {
            if (run.isAlive()) run.kill();
            run.deleteFiles();
        }
    }
}
