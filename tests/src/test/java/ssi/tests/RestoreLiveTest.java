package ssi.tests;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Restore at the same pid, for real: a node whose daemon is {@link RestoreProbeDaemon}; a C program
 * (resources restore/restore-counter.c) launched on it with ssi-run counts with 8 MiB of patterned
 * memory, a heap string, an open file at offset 77 and signal handlers. The probe captures it, SIGKILLs
 * it, and rebuilds it in a SPAWN_STUB stub with ssi.ghost.restore.Restorer. The restored program must
 * count on from where it was, write on at the right file offsets, run its SIGUSR1 handler, find its
 * memory intact and exit 0 by itself.
 */
@Timeout(value = 300)
class RestoreLiveTest {
    private static final int NODE = 21;
    private static final Duration BOUND = Duration.ofSeconds(120);
    private static final String HEADER = "H".repeat(76) + "\n"; // 77 bytes the program seeks past

    private TestCluster node;

    @AfterEach
    void cleanUp() {
        if (node != null) node.shutDown();
    }

    private Path compile() throws IOException, InterruptedException {
        Path src = node.dir.resolve("restore-counter.c");
        try (InputStream in = RestoreLiveTest.class.getResourceAsStream("/restore/restore-counter.c")) {
            assertNotNull(in, "restore/restore-counter.c is not on the test classpath");
            Files.copy(in, src);
        }
        Path bin = node.dir.resolve(RestoreProbeDaemon.PROGRAM);
        Cmd.Result cc = Cmd.run(Duration.ofSeconds(120), Cmd.env(), node.dir,
                List.of("cc", "-O1", "-Wall", "-o", bin.toString(), src.toString()));
        cc.expectExit(0);
        return bin;
    }

    private void startProbeNode() throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = System.getProperty("java.class.path");
        assertTrue(cp.contains("test-classes") && cp.contains("syscall-shim") && cp.contains("ghost"),
                () -> "the test classpath does not hold the probe, ssi.shim and ssi.ghost: " + cp);
        List<String> cmd = new ArrayList<>(List.of(
                TestCluster.home().resolve("native/target/bin/ssi-shim").toString(),
                "--node", Integer.toString(NODE), "--run-dir", node.dir.toString(), "--detach", "--",
                java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "--enable-native-access=ALL-UNNAMED",
                "-cp", cp, RestoreProbeDaemon.class.getName(),
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

    @Test
    void aKilledProgramRestoredAtItsPidCarriesOn() throws Exception {
        node = TestCluster.create("restore");
        Path bin = compile();
        Path dir = node.dir;
        Files.writeString(dir.resolve(RestoreProbeDaemon.DATA), HEADER);
        Files.write(dir.resolve(RestoreProbeDaemon.SHARED), new byte[4096]);
        startProbeNode();
        String script = "exec " + bin + " " + RestoreProbeDaemon.DATA + " " + RestoreProbeDaemon.STATUS + " "
                + RestoreProbeDaemon.SHARED + " >"
                + RestoreProbeDaemon.OUT + " 2>>" + RestoreProbeDaemon.ERR + " </dev/null";
        Cmd.Bg run = Cmd.start(node.env(), dir, TestCluster.ssiRunCommand(NODE, "/bin/sh", "-c", script));
        try {
            Path result = dir.resolve("restore.properties");
            Cmd.waitUntil(BOUND, () -> Files.exists(result), () -> "restore.properties\n" + run.describe() + "\n"
                    + node.logs() + "\n--- program stdout:\n" + Cmd.read(dir.resolve(RestoreProbeDaemon.OUT)));
            Properties probe = new Properties();
            try (Reader r = Files.newBufferedReader(result)) {
                probe.load(r);
            }
            String out = Cmd.read(dir.resolve(RestoreProbeDaemon.OUT));
            String err = Cmd.read(dir.resolve(RestoreProbeDaemon.ERR));
            String data = Cmd.read(dir.resolve(RestoreProbeDaemon.DATA));
            String context = "probe: " + probe + "\n--- program stdout:\n" + out + "--- program stderr:\n" + err
                    + "\n" + node.logs();
            assertNull(probe.getProperty("error"), () -> "the probe failed: " + context);

            int pid = Integer.parseInt(probe.getProperty("launched.pid"));
            // SPAWN_STUB with the pid while the program still had it
            assertEquals("17", probe.getProperty("eexist.errno"), () -> "SPAWN_STUB of a pid in use: " + context);
            assertTrue(probe.getProperty("eexist.message").contains("gpid " + pid + " is taken"), context);

            assertEquals("17", probe.getProperty("restoreTaken.errno"), () -> "Restorer on a pid in use: " + context);
            assertTrue(probe.getProperty("restoreTaken.message").contains("gpid " + pid + " is taken"), context);
            // a restore failing half way names the step and errno, and leaves no stub behind
            assertEquals("2", probe.getProperty("restoreBroken.errno"), context);
            assertTrue(probe.getProperty("restoreBroken.message").contains("/nonexistent/restore-probe"), context);
            assertEquals("true", probe.getProperty("restoreBroken.stubGone"), context);

            // the original was killed: its ssi-run reports it
            assertEquals(137, run.awaitExit(BOUND), run::describe);

            // restored at the same pid, a child of the shim, running the same program
            assertEquals("1", probe.getProperty("restored.ppid"), context);
            assertTrue(probe.getProperty("restored.exe").endsWith("/" + RestoreProbeDaemon.PROGRAM), context);
            assertEquals(bin + " " + RestoreProbeDaemon.DATA + " " + RestoreProbeDaemon.STATUS + " " + RestoreProbeDaemon.SHARED,
                    probe.getProperty("restored.cmdline"), () -> "cmdline (PR_SET_MM_MAP arg_start/arg_end): " + context);
            assertEquals(RestoreProbeDaemon.PROGRAM, probe.getProperty("restored.comm"), context);
            // in a session and process group of its own, not the node init's
            assertEquals(Integer.toString(pid), probe.getProperty("restored.pgrp"), context);
            assertEquals(Integer.toString(pid), probe.getProperty("restored.session"), context);
            assertEquals(probe.getProperty("captured.sigcgt"), probe.getProperty("restored.sigcgt"),
                    () -> "the caught signals: " + context);
            assertTrue((Integer.parseInt(probe.getProperty("restored.fd2.flags"), 8) & 02000) != 0,
                    () -> "stderr keeps O_APPEND: " + context);
            assertEquals(dir.resolve(RestoreProbeDaemon.DATA).toString(), probe.getProperty("restored.fd3.target"), context);

            assertTrue(probe.getProperty("captured.rseq").startsWith("Rseq[pointer=")
                    && !probe.getProperty("captured.rseq").startsWith("Rseq[pointer=0,"), () -> "glibc's rseq: " + context);
            assertEquals(probe.getProperty("captured.rseq"), probe.getProperty("restored.rseq"),
                    () -> "the rseq registration: " + context);

            // it counted on from where it was: every count exactly once, in order, in stdout and in the data
            // file after its 77-byte header (the file offsets were restored)
            long captured = Long.parseLong(probe.getProperty("captured.count"));
            List<String> lines = List.of(out.split("\n"));
            List<Long> counts = new ArrayList<>();
            String usr1 = null, last = lines.getLast();
            for (String line : lines) {
                if (line.startsWith("count ")) counts.add(Long.parseLong(line.substring(6)));
                else if (line.startsWith("usr1 at ")) usr1 = line;
            }
            assertTrue(counts.size() > captured + 4, () -> "it did not count on after the restore: " + context);
            for (int i = 0; i < counts.size(); i++) {
                final int at = i;
                assertEquals(i + 1, counts.get(i), () -> "count line " + (at + 1) + ": " + context);
            }
            StringBuilder want = new StringBuilder(HEADER);
            for (long c : counts) want.append(c).append('\n');
            assertEquals(want.toString(), data, () -> "the data file (written through fd 3 from offset 77): " + context);

            // its MAP_SHARED file mapping is the file again: the last count went to the file
            assertTrue(probe.getProperty("captured.sharedFileVmas").contains("rw-s " + dir.resolve(RestoreProbeDaemon.SHARED)),
                    () -> "the shared file mapping: " + context);
            String sharedText = Cmd.read(dir.resolve(RestoreProbeDaemon.SHARED));
            assertTrue(sharedText.startsWith("shared count " + counts.getLast() + "\n"),
                    () -> "the shared file starts with " + sharedText.substring(0, Math.min(40, sharedText.length()))
                            + ": " + context);

            // its SIGUSR1 handler ran after the restore
            assertNotNull(usr1, () -> "no SIGUSR1 report: " + context);
            long usr1At = Long.parseLong(usr1.substring(8));
            assertTrue(usr1At > captured, () -> "SIGUSR1 reported at " + usr1At + ", before the capture at " + captured);
            assertEquals("started as pid " + pid + "\nusr1 at " + usr1At + "\n", err,
                    () -> "stderr, appended to across the restore: " + context);

            // its own verdict on its memory (8 MiB pattern, heap string, counter) and its exit status
            assertEquals("PASS counter=" + counts.getLast() + " badwords=0 heap=ok usr2=1", last, context);
            assertEquals("exit 0", probe.getProperty("status"), context);
            assertEquals("true", probe.getProperty("restored.reaped"), context);
            System.out.println("restore-live: captured " + probe.getProperty("captured.vmas") + " VMAs, "
                    + probe.getProperty("captured.bytes") + " bytes in " + probe.getProperty("captured.ms")
                    + " ms; restored in " + probe.getProperty("restore.ms") + " ms: " + probe.getProperty("restore.log")
                    + "\nrestore-live: on a pid in use: " + probe.getProperty("restoreTaken.message")
                    + "\nrestore-live: with a missing file: " + probe.getProperty("restoreBroken.message"));
        } finally {
            if (run.isAlive()) run.kill();
            run.deleteFiles();
        }
    }
}
