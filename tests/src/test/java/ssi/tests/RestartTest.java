package ssi.tests;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `ssi restart` end to end on a live one-node cluster with the real daemon. The subject (resources
 * restart/restart-counter.c) counts every 50 ms into a file it holds open at an offset, has SIGUSR1 and
 * SIGUSR2 handlers and 4 MiB of patterned memory. It is checkpointed with --stop and restarted: it must
 * carry on counting from where it stopped (no gap, no repeat, through the same fd offset), run its
 * SIGUSR1 handler, run under the node's seccomp filter (its kill of a gpid of node 2 is forwarded), and
 * on SIGUSR2 find its memory intact and write PASS. A second restart while it runs
 * names the taken gpid and starts nothing; a corrupted pages file, a replaced backing file and a
 * non-owner are refused with nothing started. Those restarts run detached ({@code --detach}) where the
 * test goes on while the process runs; the refusals also run in the foreground ({@code ssi restart}
 * without it, which is {@code ssi-run --restart}).
 *
 * <p>The foreground restart (resources restart/fg-subject.c, a counter that exits 7, or 42 from its
 * SIGTERM handler): {@code ssi restart} waits for the restored program and exits with its status, the
 * program is the child of ssi-run's launch stub (not of the node's init), a SIGTERM sent to the
 * {@code ssi restart} process reaches the program's handler, and a restart of the image while the
 * restored program runs is refused with nothing started. With ssi-run installed setuid root, a non-root
 * caller restarts its own image in the foreground and another user is refused by the daemon.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 300)
class RestartTest {
    private static final Duration BOUND = Duration.ofSeconds(60);
    private static final String HEADER = "header line of 30 bytes......\n";
    /** ssi-run's status for its own failures, which a refused foreground restart shares: nothing ran. */
    private static final int REFUSED = 125;
    private static final List<String> AS_NOBODY = List.of("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups");

    private TestCluster cluster;
    private Path work, program, fgSubject, ghostObjects, ghostFds, ghostIpc, ghostFiles, ghostStops, rtHeld, idsSubject;

    @BeforeAll
    void start() throws IOException {
        work = Files.createTempDirectory("ssi-restart-work-");
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
        program = compile("tests/src/test/resources/restart/restart-counter.c");
        fgSubject = compile("tests/src/test/resources/restart/fg-subject.c");
        idsSubject = compile("tests/src/test/resources/restart/ids-subject.c");
        rtHeld = compile("tests/src/test/resources/restart/rt-held.c");
        ghostObjects = compile("tests/ltp/ghost_objects.c");
        ghostFds = compile("tests/ltp/ghost_fds.c");
        ghostIpc = compile("tests/ltp/ghost_ipc.c");
        ghostStops = compile("tests/ltp/ghost_stops.c");
        ghostFiles = compile("tests/ltp/ghost_files.c");
        cluster = TestCluster.create("restart");
        cluster.start(2, false);
    }

    /** Compiles a C program of the repo (the LTP-style ones with tests/ltp's tst.h) into work; its path there. */
    private Path compile(String source) {
        Path src = TestCluster.home().resolve(source), ltp = TestCluster.home().resolve("tests/ltp");
        String name = src.getFileName().toString();
        Path out = work.resolve(name.substring(0, name.length() - ".c".length()));
        Cmd.run(Cmd.env(), work, List.of("gcc", "-O1", "-Wall", "-pthread", "-I", ltp.toString(), "-o", out.toString(),
                src.toString())).expectExit(0);
        return out;
    }

    @AfterAll
    void stop() {
        try {
            if (cluster != null) cluster.close();
        } finally {
            TestCluster.deleteTree(work);
        }
    }

    /** Whether `ssi ps` (every node) lists gpid. */
    private boolean listed(int gpid) {
        return cluster.ps(1).stream().anyMatch(r -> r.gpid() == gpid);
    }

    /** The nodes `ssi ps` lists gpid on. */
    private List<Integer> listedOn(int gpid) {
        return cluster.ps(1).stream().filter(r -> r.gpid() == gpid).map(TestCluster.PsRow::node).toList();
    }

    /** The count lines of the data file after the header, checked to run 1, 2, 3... with no gap or repeat. */
    private static List<Long> counts(Path data, String context) {
        String all = Cmd.read(data);
        assertTrue(all.startsWith(HEADER), () -> "header overwritten: " + all + context);
        List<Long> out = new ArrayList<>();
        for (String l : all.substring(HEADER.length()).split("\n")) {
            if (l.isEmpty() || l.startsWith("usr1 ")) continue;
            long v = Long.parseLong(l);
            assertEquals(out.size() + 1L, v, () -> "count out of sequence after " + out.size() + ":\n" + all + context);
            out.add(v);
        }
        return out;
    }

    @Test
    void checkpointStopRestartCarriesOnAndRefusesBadRestarts() throws IOException {
        Path data = work.resolve("data");
        Path result = work.resolve("result");
        Files.writeString(data, HEADER);
        Path killfile = work.resolve("killfile");
        Cmd.Bg bg = cluster.ssiRunBg(1, program.toString(), data.toString(), result.toString(), killfile.toString());
        String first = bg.awaitFirstLine(BOUND);
        assertTrue(first.startsWith("ready "), bg::describe);
        int gpid = Integer.parseInt(first.substring(6).trim());
        Cmd.waitUntil(BOUND, () -> Cmd.read(data).split("\n").length > 6, () -> "no counting: " + Cmd.read(data) + bg.describe());

        Path img = work.resolve("img");
        cluster.ssi("checkpoint", Integer.toString(gpid), "-o", img.toString(), "--stop").expectExit(0);
        Cmd.waitUntil(BOUND, () -> !bg.isAlive() && !listed(gpid), () -> "still running after --stop: " + bg.describe());
        long stoppedAt = counts(data, "").size();
        long sizeAtStop = Files.size(data);
        // the image carries the rseq registration glibc made and the stat of the files it uses
        String show = cluster.ssi("image", "show", img.toString()).expectExit(0).out();
        assertTrue(Pattern.compile("(?m)^  rseq of thread " + gpid + ": at [0-9a-f]+").matcher(show).find(), show);
        assertTrue(show.contains("    " + data + " inode " + Files.getAttribute(data, "unix:ino") + " size " + sizeAtStop + " "), show);
        Cmd.sleep(300);
        assertEquals(sizeAtStop, Files.size(data), "the stopped program still wrote");

        // restart at the same gpid, same node, detached (the foreground restart would wait for it)
        Cmd.Result r = cluster.ssi("restart", img.toString(), "--detach").expectExit(0);
        assertTrue(Pattern.compile("restarted " + gpid + " on node 1 in \\d+ ms\n").matcher(r.out()).matches(), r::describe);
        assertTrue(listed(gpid), "ssi ps does not list the restarted " + gpid);
        String ctx = "\n" + cluster.logs();
        Cmd.waitUntil(BOUND, () -> counts(data, ctx).size() >= stoppedAt + 5, () -> "no counting after restart:\n" + Cmd.read(data) + ctx);
        // the first line after the restart continues the count exactly where the file stopped
        String after = Cmd.read(data).substring((int) sizeAtStop);
        assertTrue(after.startsWith((stoppedAt + 1) + "\n"), () -> "continued with " + after + ctx);

        // it runs under the node's seccomp filter with no_new_privs, as every program ssi-run launches...
        long host = hostPidOf(gpid, data.toString());
        assertTrue(host > 0, () -> "no process is gpid " + gpid + " in a node namespace" + ctx);
        String status = Files.readString(Path.of("/proc", Long.toString(host), "status"));
        assertTrue(Pattern.compile("(?m)^Seccomp:\\s+2$").matcher(status).find(), () -> status + ctx);
        assertTrue(Pattern.compile("(?m)^NoNewPrivs:\\s+1$").matcher(status).find(), () -> status + ctx);
        // the userfaultfd its pages were copied through left no trace: no fd, no VMA registered with it
        try (var fds = Files.list(Path.of("/proc", Long.toString(host), "fd"))) {
            for (Path fd : fds.toList()) {
                String to = Files.readSymbolicLink(fd).toString();
                assertFalse(to.contains("userfaultfd"), () -> fd + " -> " + to + ctx);
            }
        }
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(host), "smaps"))) {
            if (line.startsWith("VmFlags:"))
                assertFalse(Pattern.compile("\\b(um|uw|ui)\\b").matcher(line).find(), () -> line + ctx);
        }
        // ...so its kill(2) of a gpid of node 2 is trapped and forwarded there (natively it would be ESRCH)
        Cmd.Bg target = cluster.ssiRunBg(2, "/bin/sh", "-c", "echo ready $$; exec sleep 300");
        try {
            String tl = target.awaitFirstLine(BOUND);
            assertTrue(tl.startsWith("ready "), target::describe);
            int tgpid = Integer.parseInt(tl.substring(6).trim());
            assertEquals(2, TestCluster.nodeOf(tgpid));
            Path killed = work.resolve("killfile.out");
            Files.writeString(killfile, tgpid + "\n");
            Cmd.waitUntil(BOUND, () -> Files.exists(killed) && Cmd.read(killed).endsWith("\n"), () -> "no kill result" + ctx);
            assertEquals("kill " + tgpid + " 0 0\n", Cmd.read(killed), () -> "the restored process's kill" + ctx);
            assertEquals(128 + 15, target.awaitExit(BOUND), target::describe);
        } finally {
            if (target.isAlive()) target.kill();
        }

        // its SIGUSR1 handler runs
        cluster.ssi("kill", "-s", "USR1", Integer.toString(gpid)).expectExit(0);
        Cmd.waitUntil(BOUND, () -> Cmd.read(data).substring((int) sizeAtStop).contains("usr1 "), () -> "no usr1 line:\n" + Cmd.read(data) + ctx);

        // a second restart while it runs: the gpid is taken, nothing new starts (in the foreground, ssi-run's
        // status for a refused restart; detached, the CLI's)
        Cmd.Result twice = cluster.ssi("restart", img.toString());
        assertEquals(REFUSED, twice.exit(), twice::describe);
        assertTrue(twice.err().contains("gpid " + gpid + " is taken"), twice::describe);
        assertTrue(twice.err().contains("nothing was started"), twice::describe);
        assertEquals(List.of(1), listedOn(gpid), "ps after a refused restart");
        Cmd.Result twiceDetached = cluster.ssi("restart", img.toString(), "--detach");
        assertEquals(1, twiceDetached.exit(), twiceDetached::describe);
        assertTrue(twiceDetached.err().contains("gpid " + gpid + " is taken"), twiceDetached::describe);
        assertEquals(List.of(1), listedOn(gpid), "ps after a refused restart");

        // a non-owner may not restart it (detached: a foreground restart needs ssi-run installed setuid root)
        Cmd.Result nobody = cluster.ssiAs(AS_NOBODY, "restart", img.toString(), "--detach");
        assertEquals(1, nobody.exit(), nobody::describe);
        assertTrue(nobody.err().contains("may not"), nobody::describe);

        // SIGUSR2: it verifies its memory and reports
        cluster.ssi("kill", "-s", "USR2", Integer.toString(gpid)).expectExit(0);
        Cmd.waitUntil(BOUND, () -> Files.exists(result) && Cmd.read(result).endsWith("\n"), () -> "no result" + ctx);
        assertTrue(Cmd.read(result).startsWith("PASS "), () -> Cmd.read(result) + ctx);
        Cmd.waitUntil(BOUND, () -> !listed(gpid), () -> "it did not exit" + ctx);
        counts(data, ctx); // the whole file is still one unbroken sequence

        // a corrupted pages file: checksum error, nothing started
        Path bad = copyImage(img, "img-bad");
        Path pages = bad.resolve("pages-" + gpid + ".img");
        try (RandomAccessFile f = new RandomAccessFile(pages.toFile(), "rw")) {
            f.seek(4096 + 100);
            int b = f.read();
            f.seek(4096 + 100);
            f.write(b ^ 0xff);
        }
        Cmd.Result corrupt = cluster.ssi("restart", bad.toString());
        assertEquals(REFUSED, corrupt.exit(), corrupt::describe);
        assertTrue(corrupt.err().contains("checksum mismatch"), corrupt::describe);
        assertFalse(listed(gpid), "a stub or process is left after a refused restart");

        // a truncated process file
        Path cut = copyImage(img, "img-cut");
        Path proc = cut.resolve("proc-" + gpid + ".img");
        byte[] whole = Files.readAllBytes(proc);
        Files.write(proc, java.util.Arrays.copyOf(whole, whole.length / 2));
        Cmd.Result truncated = cluster.ssi("restart", cut.toString());
        assertEquals(REFUSED, truncated.exit(), truncated::describe);
        assertTrue(truncated.err().contains("truncated"), truncated::describe);
        assertFalse(listed(gpid));

        // the file it had open grew since the checkpoint: "differs" by size, nothing started
        long was = Files.size(data);
        Files.writeString(data, "more\n", java.nio.file.StandardOpenOption.APPEND);
        Cmd.Result grew = cluster.ssi("restart", img.toString());
        assertEquals(REFUSED, grew.exit(), grew::describe);
        assertTrue(grew.err().contains("file " + data + " differs from the checkpoint (size " + (was + 5) + ", was " + sizeAtStop + ")"),
                grew::describe);
        assertFalse(listed(gpid));

        // the file it had open was replaced by another: "differs", nothing started
        Path copy = work.resolve("data.new");
        Files.copy(data, copy);
        Files.move(copy, data, StandardCopyOption.REPLACE_EXISTING);
        Cmd.Result differs = cluster.ssi("restart", img.toString());
        assertEquals(REFUSED, differs.exit(), differs::describe);
        assertTrue(differs.err().contains("file " + data + " differs from the checkpoint"), differs::describe);
        assertFalse(listed(gpid));
    }

    /** The host pid of the process that is gpid in its node's namespace (last NSpid field), or -1. */
    private static long hostPidOf(int gpid, String mentioning) {
        for (long pid : TestCluster.processesMentioning(mentioning)) {
            try {
                for (String l : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                    if (!l.startsWith("NSpid:")) continue;
                    String[] f = l.substring(6).trim().split("\\s+");
                    if (f[f.length - 1].equals(Integer.toString(gpid))) return pid;
                }
            } catch (IOException e) {
                // gone meanwhile
            }
        }
        return -1;
    }

    /**
     * A restart on another node keeps the gpid (clone3 set_tid with a pid of node 1's range in node 2's
     * namespace): the process counts on there, its handler runs, and it verifies its memory.
     */
    @Test
    void restartOnAnotherNodeKeepsTheGpid() throws IOException {
        Path data = work.resolve("data-n2");
        Path result = work.resolve("result-n2");
        Files.writeString(data, HEADER);
        Cmd.Bg bg = cluster.ssiRunBg(1, program.toString(), data.toString(), result.toString());
        String first = bg.awaitFirstLine(BOUND);
        assertTrue(first.startsWith("ready "), bg::describe);
        int gpid = Integer.parseInt(first.substring(6).trim());
        assertEquals(1, TestCluster.nodeOf(gpid));
        Cmd.waitUntil(BOUND, () -> Cmd.read(data).split("\n").length > 4, () -> "no counting: " + Cmd.read(data) + bg.describe());
        Path img = work.resolve("img-n2");
        cluster.ssi("checkpoint", Integer.toString(gpid), "-o", img.toString(), "--stop").expectExit(0);
        Cmd.waitUntil(BOUND, () -> !bg.isAlive() && !listed(gpid), () -> "still running after --stop: " + bg.describe());
        long stoppedAt = counts(data, "").size();
        long sizeAtStop = Files.size(data);

        Cmd.Result r = cluster.ssi("restart", img.toString(), "--node", "2", "--detach").expectExit(0);
        assertTrue(Pattern.compile("restarted " + gpid + " on node 2 in \\d+ ms\n").matcher(r.out()).matches(), r::describe);
        String ctx = "\n" + cluster.logs();
        long host = hostPidOf(gpid, data.toString());
        assertTrue(host > 0, () -> "no process is gpid " + gpid + " in a node namespace" + ctx);
        try {
            carriesOnOnNode2(gpid, host, data, result, img, stoppedAt, sizeAtStop, ctx);
        } finally {
            if (hostPidOf(gpid, data.toString()) > 0) Cmd.run(Cmd.env(), work, List.of("kill", "-KILL", Long.toString(host)));
        }
    }

    private void carriesOnOnNode2(int gpid, long host, Path data, Path result, Path img, long stoppedAt, long sizeAtStop,
                                  String ctx) throws IOException {
        // it lives in node 2's namespace: node 2 reports it, node 1 does not
        assertEquals(List.of(2), listedOn(gpid), "ssi ps after a restart on node 2");
        Cmd.waitUntil(BOUND, () -> counts(data, ctx).size() >= stoppedAt + 5, () -> "no counting after restart:\n" + Cmd.read(data) + ctx);
        String after = Cmd.read(data).substring((int) sizeAtStop);
        assertTrue(after.startsWith((stoppedAt + 1) + "\n"), () -> "continued with " + after + ctx);
        Cmd.run(Cmd.env(), work, List.of("kill", "-USR1", Long.toString(host))).expectExit(0);
        Cmd.waitUntil(BOUND, () -> Cmd.read(data).substring((int) sizeAtStop).contains("usr1 "), () -> "no usr1 line:\n" + Cmd.read(data) + ctx);
        // `ssi kill` reaches it where it lives now: through its birth node 1 (which node 2 told where it
        // went, and which forwards), and through node 2 itself
        cluster.ssi("--node=1", "kill", "-s", "USR1", Integer.toString(gpid)).expectExit(0);
        Cmd.waitUntil(BOUND, () -> usr1Lines(data, sizeAtStop) >= 2, () -> "kill through node 1 did not arrive:\n" + Cmd.read(data) + ctx);
        cluster.ssi("--node=2", "kill", "-s", "USR1", Integer.toString(gpid)).expectExit(0);
        Cmd.waitUntil(BOUND, () -> usr1Lines(data, sizeAtStop) >= 3, () -> "kill through node 2 did not arrive:\n" + Cmd.read(data) + ctx);
        // node 2 refuses a second restart of the same gpid
        Cmd.Result twice = cluster.ssi("restart", img.toString(), "--node", "2");
        assertEquals(REFUSED, twice.exit(), twice::describe);
        assertTrue(twice.err().contains("gpid " + gpid + " is taken on node 2"), twice::describe);
        Cmd.run(Cmd.env(), work, List.of("kill", "-USR2", Long.toString(host))).expectExit(0);
        Cmd.waitUntil(BOUND, () -> Files.exists(result) && Cmd.read(result).endsWith("\n"), () -> "no result" + ctx);
        assertTrue(Cmd.read(result).startsWith("PASS "), () -> Cmd.read(result) + ctx);
        Cmd.waitUntil(BOUND, () -> hostPidOf(gpid, data.toString()) < 0, () -> "it did not exit" + ctx);
        counts(data, ctx);
    }

    private static long usr1Lines(Path data, long from) {
        return Cmd.read(data).substring((int) from).lines().filter(l -> l.startsWith("usr1 ")).count();
    }

    /** fg-subject ITERATIONS under ssi-run, checkpointed with --stop after a few iterations: its gpid and image. */
    private record Stopped(int gpid, Path img, Cmd.Bg original) {}

    private Stopped startAndCheckpoint(String name, int iterations) {
        Cmd.Bg bg = cluster.ssiRunBg(1, fgSubject.toString(), Integer.toString(iterations));
        String first = bg.awaitFirstLine(BOUND);
        assertTrue(first.startsWith("ready "), bg::describe);
        int gpid = Integer.parseInt(first.substring(6).trim());
        Cmd.sleep(400); // into the loop
        Path img = work.resolve(name);
        cluster.ssi("checkpoint", Integer.toString(gpid), "-o", img.toString(), "--stop").expectExit(0);
        Cmd.waitUntil(BOUND, () -> !bg.isAlive() && !listed(gpid), () -> "still running after --stop: " + bg.describe());
        assertEquals(137, bg.awaitExit(BOUND), bg::describe);
        assertFalse(bg.out().contains("done"), () -> "it finished before the checkpoint: " + bg.describe());
        return new Stopped(gpid, img, bg);
    }

    /** A ghost test program under ssi-run, checkpointed with --stop: its ssi-run, gpid, image and `ssi image show`. */
    private record GhostStopped(Cmd.Bg bg, int gpid, Path img, String show) { }

    /** Runs binary on node 1, checkpoints it with --stop after ms (the image: work/imgName), shows the image. */
    private GhostStopped startAndStop(Path binary, String imgName, long ms) {
        return startAndStop(List.of(binary.toString()), imgName, ms, "PASS");
    }

    /** As above for argv, which prints "ready GPID" first and done (not yet when stopped) when it ends. */
    private GhostStopped startAndStop(List<String> argv, String imgName, long ms, String done) {
        Cmd.Bg bg = cluster.ssiRunBg(1, argv.toArray(String[]::new));
        String first = bg.awaitFirstLine(BOUND);
        assertTrue(first.startsWith("ready "), bg::describe);
        int gpid = Integer.parseInt(first.substring(6).trim());
        Cmd.sleep(ms);
        Path img = work.resolve(imgName);
        cluster.ssi("checkpoint", Integer.toString(gpid), "-o", img.toString(), "--stop").expectExit(0);
        assertEquals(137, bg.awaitExit(BOUND), bg::describe);
        assertFalse(bg.out().contains(done), () -> "it finished before the checkpoint: " + bg.describe());
        return new GhostStopped(bg, gpid, img, cluster.ssi("image", "show", img.toString()).expectExit(0).out());
    }

    /** Restarts the image in the foreground: exit 0, no FAIL, a PASS line for each check, the gpid gone after. */
    private void restartAndPass(GhostStopped st, List<String> checks) {
        Cmd.Result r = cluster.ssi("restart", st.img().toString());
        String ctx = "\n" + cluster.logs();
        assertEquals(0, r.exit(), () -> r.describe() + "\n" + st.bg().out() + ctx);
        String out = st.bg().out();
        assertFalse(out.contains("FAIL"), () -> out + ctx);
        for (String check : checks)
            assertTrue(out.contains("PASS: " + check), () -> check + " missing:\n" + out + ctx);
        assertFalse(listed(st.gpid()), "still listed after its exit");
    }

    /** The State: letter of the process that is gpid, read in /proc through its host pid ('?' if none). */
    private char state(int gpid, String mentioning) {
        long host = hostPidOf(gpid, mentioning);
        if (host <= 0) return '?';
        try {
            for (String l : Files.readAllLines(Path.of("/proc", Long.toString(host), "status")))
                if (l.startsWith("State:")) return l.substring(6).trim().charAt(0);
        } catch (IOException e) {
            // gone meanwhile
        }
        return '?';
    }

    /**
     * Real-time signals with values that reach a process while a checkpoint holds it: the shim takes them
     * at their delivery and keeps their siginfo and queue, the image has them as queued signals (the
     * process's queue for sigqueue, the thread's own for rt_tgsigqueueinfo), the still-running original
     * gets each once after the thaw, and so does the restored one. Deterministic: the subject is stopped
     * (SIGSTOP) when they are sent, so they are pending, not yet delivered, when the checkpoint attaches,
     * and the checkpoint's first injected syscall makes the kernel deliver them to the shim.
     */
    @Test
    void signalsThatArriveDuringTheFreezeAreSavedAndDeliveredOnce() {
        Path result = work.resolve("rt-held.out");
        Cmd.Bg bg = cluster.ssiRunBg(1, rtHeld.toString(), "6", result.toString());
        String first = bg.awaitFirstLine(BOUND);
        assertTrue(first.startsWith("ready "), bg::describe);
        int gpid = Integer.parseInt(first.substring(6).trim());
        String ctx = "\n" + cluster.logs();
        cluster.ssi("kill", "-s", "STOP", Integer.toString(gpid)).expectExit(0);
        Cmd.waitUntil(BOUND, () -> state(gpid, rtHeld.toString()) == 'T', () -> "not stopped: " + bg.describe() + ctx);
        cluster.ssiRun(1, rtHeld.toString(), "send", Integer.toString(gpid)).expectExit(0);

        Path img = work.resolve("img-rt-held");
        cluster.ssi("checkpoint", Integer.toString(gpid), "-o", img.toString()).expectExit(0);
        String show = cluster.ssi("image", "show", img.toString()).expectExit(0).out();
        assertTrue(show.contains("queued signals of the process: SIGRTMIN+0 code -1 value 1, SIGRTMIN+0 code -1 value 2, "
                + "SIGRTMIN+0 code -1 value 3\n"), show);
        assertTrue(show.contains("queued signals of thread " + gpid + ": SIGRTMIN+1 code -1 value 4, SIGRTMIN+1 code -1 value 5, "
                + "SIGRTMIN+1 code -1 value 6\n"), show);

        // the original, still stopped, gets each once when it goes on
        assertEquals('T', state(gpid, rtHeld.toString()), "the checkpoint did not leave it stopped");
        cluster.ssi("kill", "-s", "CONT", Integer.toString(gpid)).expectExit(0);
        // ssi-run stopped itself with its program, as a shell's job does: it goes on too
        Cmd.run(Cmd.env(), work, List.of("kill", "-CONT", Long.toString(bg.process.pid()))).expectExit(0);
        String got = "got SIGRTMIN 1 2 3 SIGRTMIN+1 4 5 6 (6 in all)\n";
        assertEquals(0, bg.awaitExit(BOUND), () -> bg.describe() + ctx);
        assertEquals(got, Cmd.read(result), () -> bg.describe() + "\n" + cluster.logs());
        Cmd.waitUntil(BOUND, () -> !listed(gpid), () -> "still listed after its exit" + ctx);

        // the restored one too (a stopped root restarts running, docs/IMAGE-FORMAT.md)
        cluster.ssi("restart", img.toString(), "--detach").expectExit(0);
        Cmd.waitUntil(BOUND, () -> !listed(gpid), () -> "the restored one did not finish: " + Cmd.read(result) + "\n" + cluster.logs());
        assertEquals(got + got, Cmd.read(result), () -> bg.out() + "\n" + cluster.logs());
    }

    /**
     * A whole application: a parent with three threads (futexes in use, joined at the end), a child in a
     * group of its own and a grandchild, a pipe and a socketpair with bytes in flight, shared anonymous
     * memory, a queued real-time signal and an interval timer (tests/ltp/ghost_objects.c checks each
     * after the restart and says PASS or FAIL).
     */
    @Test
    void aProcessTreeWithThreadsPipesSocketsAndSharedMemoryComesBack() {
        // after 500 ms the child and grandchild exist, the bytes are in flight, the threads run
        GhostStopped st = startAndStop(ghostObjects, "img-tree", 500);
        String show = st.show();
        assertTrue(show.contains("6 process(es)"), show);
        assertTrue(show.contains("(zombie, killed by SIGKILL)"), show);
        assertTrue(show.contains("(zombie, exited 3)"), show);
        assertTrue(show.contains("(zombie, killed by SIGUSR2)"), show);
        assertTrue(show.contains("threads 4"), show);
        assertTrue(Pattern.compile("(?m)unix socket .* 18 bytes queued").matcher(show).find(), show);
        assertTrue(Pattern.compile("(?m) pipe .* 16 bytes queued").matcher(show).find(), show);
        assertTrue(show.contains("queued signals of the process: SIGRTMIN+2 code -1"), show);
        assertTrue(show.contains("itimer real: "), show);

        restartAndPass(st, List.of("threads handed the counter around", "the child read the bytes in flight",
                "the child's write reached the shared page", "the queued real-time signal is still pending",
                "150 queued real-time signals are all still pending, in order",
                "the interval timer kept firing", "the zombies are reaped with their status"));
    }

    /**
     * Anonymous-inode fds and POSIX timers: an eventfd with a count and a semaphore one, a periodic timerfd,
     * a signalfd with a queued signal, an epoll set watching them and a pipe, a periodic POSIX timer with
     * a value and one armed far ahead (tests/ltp/ghost_fds.c checks each after the restart).
     */
    @Test
    void eventfdTimerfdSignalfdEpollAndPosixTimersComeBack() {
        GhostStopped st = startAndStop(ghostFds, "img-fds", 400); // every object made, the timers running
        String show = st.show();
        assertTrue(show.contains("eventfd      anon_inode:[eventfd] pos 0 flags 04002 cloexec count 7 "), show);
        assertTrue(show.contains("count 3 semaphore"), show);
        assertTrue(Pattern.compile("(?m)timerfd +anon_inode:\\[timerfd\\] .* clock 1 .*interval 0\\.020000000s ticks \\d+")
                .matcher(show).find(), show);
        assertTrue(show.contains("signalfd     anon_inode:[signalfd] pos 0 flags 04002 mask SIGUSR1"), show);
        assertTrue(Pattern.compile("(?m)epoll +anon_inode:\\[eventpoll\\] .* watching .*fd \\d+ \\(events 19 data 1000\\)")
                .matcher(show).find(), show);
        assertTrue(show.contains("posix timers (2):"), show);
        assertTrue(Pattern.compile("(?m)timer \\d+ clock 1 notify SIGRTMIN\\+1 value 4d, left .*, interval 0\\.050000000s")
                .matcher(show).find(), show);
        assertTrue(Pattern.compile("(?m)timer \\d+ clock 0 notify none value 0, left 9\\d\\.").matcher(show).find(), show);

        restartAndPass(st, List.of("the epoll set reports the eventfd, timerfd, signalfd and pipe", "the eventfd kept its count",
                "the semaphore eventfd gives its count", "the timerfd kept ticking", "the signalfd delivers the queued SIGUSR1",
                "the POSIX timer kept its id and kept firing", "the SIGEV_NONE timer is still armed far ahead"));
    }

    /**
     * Named pipes and SysV shared memory (tests/ltp/ghost_ipc.c): a FIFO with 16 bytes in flight between
     * parent and child, one opened O_RDWR, a private segment both attach, a keyed one attached read-only,
     * one removed while attached, one attached by nobody. The segments go into the image and away with
     * the stopped application; a segment that takes one of their keys meanwhile makes the restart refuse
     * with nothing started; once it is gone, the restart brings every object back (the program checks).
     */
    @Test
    void namedPipesAndSysvSharedMemoryComeBack() {
        // after 400 ms the FIFO and the sockets hold their bytes; the child has not read them yet
        GhostStopped st = startAndStop(ghostIpc, "img-ipc", 400);
        int gpid = st.gpid();
        String show = st.show();
        assertTrue(show.contains("SysV shared memory (4):"), show);
        assertTrue(Pattern.compile("(?m)shmid \\d+ key IPC_PRIVATE mode 0600 owner 0:0 creator 0:0 size 12288, 8192 bytes stored$")
                .matcher(show).find(), show);
        String key = String.format("0x%08x", 0x5a000000 | (gpid & 0xffffff));
        assertTrue(show.contains("key " + key + " mode 0640"), show);
        assertTrue(show.contains("size 8192, 8192 bytes stored (removed, still attached)"), show);
        assertTrue(Pattern.compile("(?m)named pipe +/tmp/ghost_ipc\\.\\w+/fifo .* write end, 16 bytes queued").matcher(show).find()
                || Pattern.compile("(?m)named pipe +/tmp/ghost_ipc\\.\\w+/fifo .* read end, 16 bytes queued").matcher(show).find(), show);
        assertTrue(Pattern.compile("(?m)named pipe +/tmp/ghost_ipc\\.\\w+/back .* read-write").matcher(show).find(), show);
        assertTrue(Pattern.compile("(?m)unix socket .*type 2 peer inode \\d+, 3016 bytes of queued messages").matcher(show).find(), show);
        assertTrue(Pattern.compile("(?m)unix socket .*type 5 peer inode \\d+, 26 bytes of queued messages").matcher(show).find(), show);
        String ipcs = Cmd.run(Cmd.env(), work, List.of("ipcs", "-m")).expectExit(0).out();
        assertFalse(ipcs.contains(key), () -> "the keyed segment stayed after checkpoint --stop:\n" + ipcs);

        // a segment with the same key, made meanwhile: refused, nothing started
        Cmd.run(Cmd.env(), work, List.of("perl", "-e", "my $id = shmget(" + (0x5a000000 | (gpid & 0xffffff))
                + ", 4096, 01000 | 0600); defined $id or die $!; print $id")).expectExit(0);
        Cmd.Result taken = cluster.ssi("restart", "--detach", st.img().toString());
        assertNotEquals(0, taken.exit(), taken::describe);
        assertTrue(taken.err().contains("SysV shared memory key " + key + " is taken on node 1"), taken::describe);
        assertFalse(listed(gpid), "started although refused");
        Cmd.run(Cmd.env(), work, List.of("ipcrm", "-M", key)).expectExit(0);

        restartAndPass(st, List.of("the child read the bytes in flight in the FIFO, then its end of file, and the datagram",
                "the answer came back through the O_RDWR FIFO", "the child's write reached the private segment",
                "the private segment keeps its id, size, mode and attachments", "the keyed segment is found by its key",
                "the removed segment is still attached with its data, and still marked removed",
                "the segment nobody had attached kept its data"));
    }

    /**
     * File objects (tests/ltp/ghost_files.c): an O_APPEND log with a second writer, a file mapped shared and
     * one mapped private with a page of its own, the brk heap, /dev/null, zero and urandom, an fd on its own
     * /proc/PID/stat (opened again once the process exists: the restart must not look for it before); the
     * image has the private page and none of the shared mapping's, and the program checks each after the
     * restart.
     */
    @Test
    void filesMappingsAppendAndTheHeapComeBack() {
        GhostStopped st = startAndStop(ghostFiles, "img-files", 600);
        String show = st.show();
        assertTrue(Pattern.compile("(?m) rw-s file +4 pages, +0 stored .*/ghost_files\\.\\w+/shared @0$").matcher(show).find(), show);
        assertTrue(Pattern.compile("(?m) rw-p file +4 pages, +1 stored .*/ghost_files\\.\\w+/private @0$").matcher(show).find(), show);
        assertTrue(Pattern.compile("(?m)file +/tmp/ghost_files\\.\\w+/log pos \\d+ flags 0102001 ").matcher(show).find(), show);
        assertTrue(show.contains("/dev/urandom pos 0 flags 0"), show);
        assertTrue(show.contains("/proc/" + st.gpid() + "/stat pos 0 flags 0"), show);
        restartAndPass(st, List.of("the log fd kept O_APPEND", "the log holds every line once, in order",
                "every write through the shared mapping reached the file", "the private mapping keeps its own page",
                "the brk heap kept its end and contents", "/dev/null, /dev/zero and /dev/urandom still work",
                "the fd on /proc/<pid>/stat shows this process, running"));
    }

    /**
     * Wait reports of stopped children (tests/ltp/ghost_stops.c): a child whose stop its parent collected
     * and one whose stop it did not, and a continued one whose continue it did not; the image says which,
     * and after the restart only the second stop and the continue are reported to the parent, once each,
     * while both stopped children are stopped again and the continued one runs.
     */
    @Test
    void stoppedChildrenKeepWhetherTheirStopWasCollected() {
        GhostStopped st = startAndStop(ghostStops, "img-stops", 600);
        String show = st.show();
        assertTrue(show.contains("(stopped) " + ghostStops), show);
        assertTrue(show.contains("(stopped, the stop not collected by the parent yet) " + ghostStops), show);
        assertTrue(show.contains("(continued, not collected by the parent yet) " + ghostStops), show);
        restartAndPass(st, List.of("the stop of a, collected before, is not reported again",
                "the stop of b, not collected yet, is reported", "... once", "the continue of c, not collected yet, is reported",
                "... once, and no stop of c", "both are still stopped", "c runs (sleeps in pause)"));
    }

    /**
     * A SysV segment also attached by a process outside the application (python3 with ctypes) cannot be
     * given to both after a restart: the checkpoint refuses it by id and key, writes nothing, and the
     * program goes on to pass.
     */
    @Test
    void aSysvSegmentAlsoAttachedOutsideIsRefused() {
        Cmd.Bg bg = cluster.ssiRunBg(1, ghostIpc.toString());
        String first = bg.awaitFirstLine(BOUND);
        assertTrue(first.startsWith("ready "), bg::describe);
        int gpid = Integer.parseInt(first.substring(6).trim());
        int key = 0x5a000000 | (gpid & 0xffffff);
        Cmd.Bg outside = Cmd.start(Cmd.env(), work, List.of("python3", "-c", String.join("\n",
                "import ctypes, sys, time",
                "libc = ctypes.CDLL(None, use_errno=True)",
                "libc.shmat.restype = ctypes.c_void_p",
                "i = libc.shmget(" + key + ", 0, 0)",
                "a = libc.shmat(i, None, 0o10000) if i >= 0 else None",
                "print('attached', i if a not in (None, 2**64 - 1) else -1, flush=True)",
                "time.sleep(20)")));
        String att = outside.awaitFirstLine(BOUND);
        assertTrue(att.startsWith("attached ") && !att.equals("attached -1"), outside::describe);
        int id = Integer.parseInt(att.substring(9).trim());
        Path img = work.resolve("img-ipc-outside");
        Cmd.Result r = cluster.ssi("checkpoint", Integer.toString(gpid), "-o", img.toString());
        outside.kill();
        assertEquals(1, r.exit(), r::describe);
        // attached by the parent, by the child while it lives (the fork copies attachments), and from outside
        assertTrue(Pattern.compile(String.format("SysV shared memory segment %d \\(key 0x%08x\\) is attached [23] times, 1 of them "
                + "outside the application: not supported", id, key)).matcher(r.err()).find(), r::describe);
        assertFalse(Files.exists(img.resolve("inventory.img")), "a refused checkpoint wrote " + img);
        assertEquals(0, bg.awaitExit(BOUND), bg::describe);
        assertTrue(bg.out().contains("PASS: the keyed segment is found by its key"), bg::describe);
    }

    /**
     * python3 with a large heap (a 96 MiB bytearray and a dict of 200,000 objects) checkpointed in the
     * middle of its work, and a bash script paused mid-loop: both finish after the restart with the
     * results they would have had.
     */
    @Test
    void aPython3ProgramWithALargeHeapAndABashLoopCarryOn() {
        String py = String.join("\n",
                "import os, sys, time, zlib",
                "heap = bytearray(os.urandom(1 << 20)) * 96",
                "objs = {i: str(i) * 3 for i in range(200000)}",
                "want = zlib.crc32(heap)",
                "print('ready', os.getpid(), flush=True)",
                "total = 0",
                "for i in range(30):",
                "    heap[i * 4096] = (heap[i * 4096] + 1) % 256",
                "    total += len(objs[i * 1000])",
                "    time.sleep(0.05)",
                "for i in range(30):",
                "    heap[i * 4096] = (heap[i * 4096] - 1) % 256",
                "ok = zlib.crc32(heap) == want and total == sum(len(str(i * 1000)) * 3 for i in range(30))",
                "print('PASS python' if ok else 'FAIL python', flush=True)",
                "sys.exit(0 if ok else 1)");
        checkpointMidwayAndRestart("img-python", List.of("python3", "-c", py), 700, "PASS python");
        String sh = "echo ready $$; n=0; for i in $(seq 1 40); do n=$((n + i)); sleep 0.05; done; "
                + "if [ $n = 820 ]; then echo PASS bash; else echo FAIL bash $n; exit 1; fi";
        checkpointMidwayAndRestart("img-bash", List.of("bash", "-c", sh), 600, "PASS bash");
    }

    private void checkpointMidwayAndRestart(String name, List<String> argv, int afterMs, String pass) {
        GhostStopped st = startAndStop(argv, name, afterMs, pass);
        Cmd.Result r = cluster.ssi("restart", st.img().toString());
        String ctx = "\n" + cluster.logs();
        assertEquals(0, r.exit(), () -> r.describe() + "\n" + st.bg().out() + ctx);
        assertTrue(st.bg().out().contains(pass), () -> st.bg().out() + ctx);
    }

    @Test
    void foregroundRestartReturnsTheProgramsExitStatus() {
        Stopped s = startAndCheckpoint("img-fg-exit", 40);
        long t0 = System.nanoTime();
        Cmd.Result r = cluster.ssi("restart", s.img().toString());
        String ctx = "\n" + cluster.logs();
        assertEquals(7, r.exit(), () -> r.describe() + ctx);
        assertEquals("", r.out(), r::describe); // nothing of ssi's own on stdout: only the program's
        // the restored program finished its loop where the image left it (its stdout is the original's file)
        assertTrue(s.original().out().endsWith("done 40\n"), () -> s.original().describe() + ctx);
        assertTrue(System.nanoTime() - t0 > 200_000_000L, "ssi restart returned before the program can have finished");
        assertFalse(listed(s.gpid()), "the restored program is still listed after it exited");
    }

    /** The last line of out. */
    private static String lastLine(String out) {
        String[] l = out.split("\n");
        return l[l.length - 1];
    }

    /**
     * A foreground restart makes ssi-run's launch stub with the pid the root's parent had (the original's
     * launch stub, gone with it): getppid() and getpgrp() say after the restart what they said before.
     */
    @Test
    void foregroundRestartKeepsTheParentPidAndGroup() {
        Cmd.Bg bg = cluster.ssiRunBg(1, idsSubject.toString(), "30");
        String first = bg.awaitFirstLine(BOUND);
        String[] f = first.split(" ");
        assertTrue(first.startsWith("ready ") && f.length == 4, bg::describe);
        int gpid = Integer.parseInt(f[1]);
        Cmd.sleep(300);
        Path img = work.resolve("img-ids");
        cluster.ssi("checkpoint", Integer.toString(gpid), "-o", img.toString(), "--stop").expectExit(0);
        assertEquals(137, bg.awaitExit(BOUND), bg::describe);
        assertFalse(bg.out().contains("after"), () -> "it finished before the checkpoint: " + bg.describe());
        Cmd.Result r = cluster.ssi("restart", img.toString());
        String ctx = "\n" + cluster.logs();
        assertEquals(0, r.exit(), () -> r.describe() + ctx);
        // the original's parent was its launch stub, which led its group
        assertEquals(f[2], f[3], first);
        assertEquals("after " + f[2] + " " + f[3], lastLine(bg.out()), () -> bg.out() + ctx);
        assertFalse(cluster.logs().contains("the parent of gpid " + gpid + " had pid"), ctx);
    }

    /**
     * The root's parent was the node's init (an orphan): that pid is never free, so the launch stub gets
     * another one, the restart runs, and the daemon's log says the parent pid differs.
     */
    @Test
    void foregroundRestartOfAnOrphanSaysItsParentDiffers() {
        Cmd.Bg bg = cluster.ssiRunBg(1, "/bin/sh", "-c", "\"$0\" 40 & exit 0", idsSubject.toString());
        String first = bg.awaitFirstLine(BOUND);
        assertTrue(first.startsWith("ready "), bg::describe);
        int gpid = Integer.parseInt(first.split(" ")[1]);
        assertEquals(0, bg.awaitExit(BOUND), bg::describe);
        Cmd.waitUntil(BOUND, () -> cluster.ps(1).stream().anyMatch(x -> x.gpid() == gpid && x.columns().get("PPID").equals("1")),
                () -> "not reparented to the node's init: " + cluster.ps(1));
        Path img = work.resolve("img-orphan");
        cluster.ssi("checkpoint", Integer.toString(gpid), "-o", img.toString(), "--stop").expectExit(0);
        Cmd.waitUntil(BOUND, () -> !listed(gpid), () -> "still running after --stop");
        Cmd.Result r = cluster.ssi("restart", img.toString());
        String ctx = "\n" + cluster.logs();
        assertEquals(0, r.exit(), () -> r.describe() + ctx);
        String after = lastLine(bg.out());
        assertTrue(after.startsWith("after ") && !after.startsWith("after 1 "), () -> bg.out() + ctx);
        assertTrue(cluster.logs().contains("the parent of gpid " + gpid + " had pid 1, which was taken on node 1"), ctx);
    }

    @Test
    void foregroundRestartRelaysSignalsAndRefusesATakenGpid() {
        Stopped s = startAndCheckpoint("img-fg-signal", 100_000);
        Cmd.Bg fg = Cmd.start(cluster.env(), work, List.of(TestCluster.ssiScript(), "restart", s.img().toString()));
        try {
            String ctx = "\n" + cluster.logs();
            Cmd.waitUntil(BOUND, () -> listed(s.gpid()) || !fg.isAlive(), () -> "not restarted: " + fg.describe() + ctx);
            assertTrue(fg.isAlive(), () -> fg.describe() + ctx);
            // the restored process is the launch stub's child (in the node's range), not the node init's
            TestCluster.PsRow row = cluster.ps(1).stream().filter(x -> x.gpid() == s.gpid()).findFirst().orElseThrow();
            int ppid = Integer.parseInt(row.columns().get("PPID"));
            assertEquals(1, TestCluster.nodeOf(ppid), () -> "parent " + ppid + " of the restored " + s.gpid() + ctx);

            // its gpid is taken: a second foreground restart is refused and starts nothing
            Cmd.Result twice = cluster.ssi("restart", s.img().toString());
            assertEquals(REFUSED, twice.exit(), twice::describe);
            assertTrue(twice.err().contains("gpid " + s.gpid() + " is taken on node 1"), twice::describe);
            assertTrue(twice.err().contains("nothing was started"), twice::describe);
            assertEquals(List.of(1), listedOn(s.gpid()), "ps after a refused restart");
            assertTrue(fg.isAlive(), fg::describe);

            // SIGTERM to `ssi restart` (ssi-run's client) reaches the program's handler: it exits 42
            Cmd.run(Cmd.env(), work, List.of("kill", "-TERM", Long.toString(fg.process.pid()))).expectExit(0);
            assertEquals(42, fg.awaitExit(BOUND), () -> fg.describe() + ctx);
            assertTrue(s.original().out().contains("term after "), () -> s.original().describe() + ctx);
            Cmd.waitUntil(BOUND, () -> !listed(s.gpid()), () -> "still listed after its exit" + ctx);
        } finally {
            if (fg.isAlive()) fg.kill();
        }
    }

    /**
     * A non-root caller with ssi-run installed setuid root: ssi-run's launch stub keeps root only for its
     * clone3 of the gpid, the daemon checks the restart against the caller's uid (another user is
     * refused), and the restored program runs to its end with the caller's status.
     */
    @Test
    void foregroundRestartBySetuidSsiRunIsTheCallers() throws IOException {
        Path suid = work.resolve("suid-ssi-run");
        Files.copy(TestCluster.home().resolve("native/target/bin/ssi-run"), suid);
        Files.setPosixFilePermissions(suid, PosixFilePermissions.fromString("rwxr-xr-x"));
        Cmd.run(Cmd.env(), work, List.of("chmod", "u+s", suid.toString())).expectExit(0);
        Path home = work.resolve("nobody");
        Files.createDirectory(home);
        Path out = home.resolve("out");
        Files.createFile(out);
        Files.createFile(home.resolve("err"));
        Cmd.run(Cmd.env(), work, List.of("chown", "-R", "65534:65534", home.toString())).expectExit(0);
        List<String> run = new ArrayList<>(AS_NOBODY);
        run.addAll(List.of("sh", "-c", "exec \"$0\" -- \"$1\" 40 >out 2>err </dev/null", suid.toString(), fgSubject.toString()));
        Cmd.Bg bg = Cmd.start(cluster.env(), home, run);
        try {
            Cmd.waitUntil(BOUND, () -> Cmd.read(out).contains("\n") || !bg.isAlive(), () -> "not started: " + bg.describe() + Cmd.read(home.resolve("err")));
            String first = Cmd.read(out).lines().findFirst().orElse("");
            assertTrue(first.startsWith("ready "), () -> first + bg.describe() + Cmd.read(home.resolve("err")));
            int gpid = Integer.parseInt(first.substring(6).trim());
            Cmd.sleep(400);
            Path img = home.resolve("img");
            cluster.ssiAs(AS_NOBODY, "checkpoint", Integer.toString(gpid), "-o", img.toString(), "--stop").expectExit(0);
            assertEquals(137, bg.awaitExit(BOUND), bg::describe);

            List<String> other = new ArrayList<>(List.of("setpriv", "--reuid", "65533", "--regid", "65533", "--clear-groups"));
            other.addAll(List.of(suid.toString(), "--restart", img.toString()));
            Cmd.Result refused = Cmd.run(cluster.env(), work, other);
            assertEquals(REFUSED, refused.exit(), refused::describe);
            assertTrue(refused.err().contains("uid 65533 may not"), refused::describe);
            assertFalse(listed(gpid), "a refused restart left a process");

            List<String> mine = new ArrayList<>(AS_NOBODY);
            mine.addAll(List.of(suid.toString(), "--restart", img.toString()));
            Cmd.Result r = Cmd.run(cluster.env(), home, mine);
            String ctx = "\n" + cluster.logs();
            assertEquals(7, r.exit(), () -> r.describe() + ctx);
            assertTrue(Cmd.read(out).endsWith("done 40\n"), () -> Cmd.read(out) + ctx);
            assertTrue(cluster.logs().contains("restart of " + img + " for uid 65534: gpid " + gpid + " runs"), ctx);
        } finally {
            if (bg.isAlive()) bg.kill();
        }
    }

    private Path copyImage(Path img, String name) throws IOException {
        Path to = work.resolve(name);
        Cmd.run(Cmd.env(), work, List.of("cp", "-a", img.toString(), to.toString())).expectExit(0);
        return to;
    }
}
