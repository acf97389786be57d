package ssi.tests;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
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
 * `ssi checkpoint` and `ssi image show` on a live one-node cluster, with a C subject (resources
 * ghost/pattern.c) that holds 32 MiB of patterned memory, a file at offset 1234, a SIGUSR1 handler,
 * SIGUSR2 blocked, umask 027 and a cwd of its own: the image shows all of it and the process runs on;
 * a TCP socket, a non-owner, a missing CAN_CHECKPOINT are refused with nothing written; --stop ends the
 * application after writing; a flipped byte in the pages file is reported by image show.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 300)
class CheckpointTest {
    private static final Duration BOUND = Duration.ofSeconds(60);
    private static final List<String> AS_NOBODY = List.of("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups");
    private static final int SIZE = 32 << 20, PAGE = 4096;

    private TestCluster cluster;
    private Path work, program, semmsg;

    @BeforeAll
    void start() throws IOException {
        work = Files.createTempDirectory("ssi-ckpt-work-");
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
        program = work.resolve("pattern");
        Path src = TestCluster.home().resolve("tests/src/test/resources/ghost/pattern.c");
        Cmd.run(Cmd.env(), work, List.of("gcc", "-O2", "-Wall", "-pthread", "-o", program.toString(), src.toString())).expectExit(0);
        semmsg = work.resolve("sysv_semmsg");
        Cmd.run(Cmd.env(), work, List.of("gcc", "-O2", "-Wall", "-o", semmsg.toString(),
                TestCluster.home().resolve("tests/src/test/resources/ghost/sysv_semmsg.c").toString())).expectExit(0);
        cluster = TestCluster.create("ckpt");
        cluster.start(1, false);
    }

    @AfterAll
    void stop() {
        try {
            if (cluster != null) cluster.close();
        } finally {
            TestCluster.deleteTree(work);
        }
    }

    /** Starts the subject in a fresh cwd; returns its ssi-run and gpid. */
    private record Subject(Cmd.Bg bg, int gpid, Path cwd) {}

    private Subject subject(String tag, String... extra) throws IOException {
        Path cwd = Files.createDirectory(work.resolve("cwd-" + tag));
        List<String> argv = new ArrayList<>(List.of(program.toString(), cwd.toString(), cwd.resolve("data").toString()));
        argv.addAll(List.of(extra));
        Cmd.Bg bg = cluster.ssiRunBg(1, argv.toArray(String[]::new));
        String first = bg.awaitFirstLine(BOUND);
        assertTrue(first.startsWith("ready "), bg::describe);
        return new Subject(bg, Integer.parseInt(first.substring(6).trim()), cwd);
    }

    private String state(int gpid) {
        for (TestCluster.PsRow r : cluster.ps(1)) {
            if (r.gpid() == gpid) return r.columns().get("STAT");
        }
        return null;
    }

    @Test
    void checkpointWhileRunningThenShowTheImage() throws IOException {
        Subject s = subject("run");
        Path img = work.resolve("img-run");
        Cmd.Result r = cluster.ssi("checkpoint", Integer.toString(s.gpid()), "-o", img.toString()).expectExit(0);
        Matcher m = Pattern.compile("checkpoint of " + s.gpid() + " \\(1 process, ([0-9.]+) MiB\\) written to "
                + Pattern.quote(img.toString()) + "; frozen (\\d+) ms\\n").matcher(r.out());
        assertTrue(m.matches(), r::describe);
        double mib = Double.parseDouble(m.group(1));
        assertTrue(mib >= 32 && mib < 40, r::describe);

        // It runs on, not stopped, its memory intact (it checks its pattern and would say so).
        Cmd.sleep(500);
        assertTrue(s.bg().isAlive(), s.bg()::describe);
        String st = state(s.gpid());
        assertTrue(st != null && !st.startsWith("T"), "state " + st);
        assertFalse(s.bg().out().contains("pattern broken"), s.bg()::describe);

        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(img)));
        Cmd.Result show = cluster.ssi("image", "show", img.toString()).expectExit(0);
        String out = show.out();
        assertTrue(out.contains("every checksum verified"), out);
        assertTrue(Pattern.compile("(?m)^\\s+SIGUSR1\\s+handler 0x[0-9a-f]+").matcher(out).find(), out);
        assertTrue(out.contains("blocked SIGUSR2"), out);
        assertTrue(out.contains("umask: 0027"), out);
        assertTrue(out.contains("cwd: " + s.cwd()), out);
        assertTrue(Pattern.compile("(?m)^\\s+3 file\\s+" + Pattern.quote(s.cwd().resolve("data").toString()) + " pos 1234 ")
                .matcher(out).find(), out);
        Matcher pages = Pattern.compile("(\\d+) page\\(s\\) stored").matcher(out);
        assertTrue(pages.find(), out);
        long stored = Long.parseLong(pages.group(1));
        assertTrue(stored >= SIZE / PAGE && stored < SIZE / PAGE + 2048, "pages stored: " + stored);
        // the 32 MiB VMA is stored whole (the kernel may have merged it with a few anonymous pages next to it:
        // its 2 MiB-aligned place can end right where ld.so's small anonymous mapping starts)
        Matcher big = Pattern.compile("(?m)rw-p anon\\s+(\\d+) pages,\\s+(\\d+) stored").matcher(out);
        boolean whole = false;
        while (big.find()) {
            long vp = Long.parseLong(big.group(1)), vs = Long.parseLong(big.group(2));
            whole |= vp >= SIZE / PAGE && vp < SIZE / PAGE + 64 && vs >= SIZE / PAGE;
        }
        assertTrue(whole, out);

        // the page data is the program's pattern (the VMA is page aligned, so every page starts at i*7+3 of its index)
        byte[] data = Files.readAllBytes(img.resolve("pages-" + s.gpid() + ".img"));
        byte[] page = new byte[PAGE];
        for (int i = 0; i < PAGE; i++) page[i] = (byte) (i * 7 + 3);
        assertTrue(indexOf(data, page) >= 0, "the pattern page is not in the pages file");
        s.bg().kill();
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i += PAGE) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        return -1;
    }

    @Test
    void aTreeWithThreadsADeletedFileAndAnInnerPipe() throws IOException {
        Subject s = subject("tree", "tree");
        Path img = work.resolve("img-tree");
        Cmd.Result r = cluster.ssi("checkpoint", Integer.toString(s.gpid()), "-o", img.toString()).expectExit(0);
        assertTrue(r.out().contains("(2 processes, "), r::describe);
        String out = cluster.ssi("image", "show", img.toString()).expectExit(0).out();
        // parent with 2 threads, child (one thread, forked by the main thread) one level below
        Matcher parent = Pattern.compile("(?m)^  " + s.gpid() + "  ppid \\d+ .* threads 2 ").matcher(out);
        assertTrue(parent.find(), out);
        Matcher child = Pattern.compile("(?m)^    (\\d+)  ppid " + s.gpid() + " .* threads 1 ").matcher(out);
        assertTrue(child.find(), out);
        assertEquals(2, Pattern.compile("(?m)^  thread \\d+: ").matcher(out.substring(0, out.indexOf("process " + child.group(1) + " ("))).results().count(), out);
        assertTrue(Pattern.compile("(?m)^\\s+4 deleted file\\s+" + Pattern.quote(s.cwd().resolve("gone").toString())
                + " pos 12 .*\\(12 bytes saved\\)").matcher(out).find(), out);
        assertTrue(Pattern.compile("(?m)^\\s+\\d+ pipe\\s+pipe:\\[\\d+\\] .* write end").matcher(out).find(), out);
        assertTrue(Pattern.compile("(?m)^\\s+\\d+ pipe\\s+pipe:\\[\\d+\\] .* read end").matcher(out).find(), out);
        Cmd.sleep(300);
        assertTrue(s.bg().isAlive(), s.bg()::describe);
        s.bg().kill();
    }

    @Test
    void aPipeHoldingUnreadBytesIsSavedWithThemAndLeftFull() throws IOException {
        Subject s = subject("queued", "tree-queued");
        Path img = work.resolve("img-queued");
        cluster.ssi("checkpoint", Integer.toString(s.gpid()), "-o", img.toString()).expectExit(0);
        String show = cluster.ssi("image", "show", img.toString()).expectExit(0).out();
        // the 5 bytes are in the image, on the pipe's record, and still in the pipe (tee(2) copies them)
        assertTrue(Pattern.compile("(?m) pipe +pipe:\\[\\d+\\] .*5 bytes queued").matcher(show).find(), show);
        // a second checkpoint finds them again: the first took nothing out of the pipe
        Path again = work.resolve("img-queued-again");
        cluster.ssi("checkpoint", Integer.toString(s.gpid()), "-o", again.toString()).expectExit(0);
        String show2 = cluster.ssi("image", "show", again.toString()).expectExit(0).out();
        assertTrue(Pattern.compile("(?m) pipe +pipe:\\[\\d+\\] .*5 bytes queued").matcher(show2).find(), show2);
        assertTrue(s.bg().isAlive(), s.bg()::describe);
        s.bg().kill();
    }

    /**
     * SysV semaphores and message queues are not saved: a set or queue the application used last is
     * refused by name (tests/src/test/resources/ghost/sysv_semmsg.c), nothing is written, it runs on.
     */
    @Test
    void sysvSemaphoresAndMessageQueuesTheApplicationUsedAreRefusedByName() {
        for (String kind : List.of("sem", "msg")) {
            Cmd.Bg bg = cluster.ssiRunBg(1, semmsg.toString(), kind, "4");
            String[] ready = bg.awaitFirstLine(BOUND).trim().split(" ");
            assertTrue(ready.length == 3 && ready[0].equals("ready"), bg::describe);
            String gpid = ready[1], id = ready[2];
            Path img = work.resolve("img-" + kind);
            Cmd.Result r = cluster.ssi("checkpoint", gpid, "-o", img.toString());
            assertEquals(1, r.exit(), r::describe);
            String want = kind.equals("sem")
                    ? "process " + gpid + " of the application operated last on semaphore 1 of SysV semaphore set " + id + " (key 0x00000000)"
                    : "SysV message queue " + id + " (key 0x00000000, 1 message(s) queued) was last sent to by process " + gpid;
            assertTrue(r.err().contains(want) && r.err().contains("not supported"), () -> "wanted '" + want + "' in " + r.describe());
            assertFalse(Files.exists(img), "a refused checkpoint wrote " + img);
            assertEquals(0, bg.awaitExit(Duration.ofSeconds(30)), bg::describe); // it ran on, and removed its object
        }
    }

    @Test
    void aTcpConnectionIsRefusedNamingTheFd() throws IOException {
        try (ServerSocket server = new ServerSocket(0, 5, InetAddress.getByName("127.0.0.1"))) {
            Subject s = subject("tcp", Integer.toString(server.getLocalPort()));
            Path img = work.resolve("img-tcp");
            Cmd.Result r = cluster.ssi("checkpoint", Integer.toString(s.gpid()), "-o", img.toString());
            assertEquals(1, r.exit(), r::describe);
            assertTrue(r.err().contains("process " + s.gpid() + " fd 4 is a TCP socket to 127.0.0.1:" + server.getLocalPort()
                    + ": not supported"), r::describe);
            assertFalse(Files.exists(img), "a refused checkpoint wrote " + img);
            Cmd.sleep(300);
            assertTrue(s.bg().isAlive(), s.bg()::describe);
            String st = state(s.gpid());
            assertTrue(st != null && !st.startsWith("T"), "state " + st);
            s.bg().kill();
        }
    }

    @Test
    void aNonOwnerAndAMissingCapabilityAreRefused() throws IOException {
        Subject s = subject("perm");
        Path img = work.resolve("img-perm");
        Cmd.Result r = cluster.ssiAs(AS_NOBODY, "checkpoint", Integer.toString(s.gpid()), "-o", img.toString());
        assertEquals(1, r.exit(), r::describe);
        assertTrue(r.err().contains("Operation not permitted"), r::describe);
        assertFalse(Files.exists(img), "a refused checkpoint wrote " + img);

        cluster.ssi("capset", Integer.toString(s.gpid()), "-e", "-CAN_CHECKPOINT").expectExit(0);
        Cmd.Result c = cluster.ssi("checkpoint", Integer.toString(s.gpid()), "-o", img.toString());
        assertEquals(1, c.exit(), c::describe);
        assertTrue(c.err().contains("does not have CAN_CHECKPOINT"), c::describe);
        assertFalse(Files.exists(img), "a refused checkpoint wrote " + img);
        assertTrue(s.bg().isAlive(), s.bg()::describe);
        s.bg().kill();
    }

    @Test
    void anOwnerWhoIsNotRootWritesWithItsOwnPermissions() throws IOException {
        Subject s = subject("nobody", "nobody");
        // work is root's 0755: nobody may not create an image there, and the daemon (root) must not do it for them
        Path denied = work.resolve("img-nobody");
        Cmd.Result r = cluster.ssiAs(AS_NOBODY, "checkpoint", Integer.toString(s.gpid()), "-o", denied.toString());
        assertEquals(1, r.exit(), r::describe);
        assertTrue(r.err().contains("Operation not permitted") && r.err().contains("may not create"), r::describe);
        assertFalse(Files.exists(denied));

        Path home = Files.createDirectory(work.resolve("nobody-home"));
        Files.setAttribute(home, "unix:uid", 65534);
        Path img = home.resolve("img");
        cluster.ssiAs(AS_NOBODY, "checkpoint", Integer.toString(s.gpid()), "-o", img.toString()).expectExit(0);
        try (var files = Files.list(img)) {
            for (Path f : files.toList()) assertEquals(65534, Files.getAttribute(f, "unix:uid"), f.toString());
        }
        assertEquals(65534, Files.getAttribute(img, "unix:uid"));
        String out = cluster.ssiAs(AS_NOBODY, "image", "show", img.toString()).expectExit(0).out();
        assertTrue(out.contains("uid: real 65534 effective 65534 saved 65534"), out);
        assertTrue(s.bg().isAlive(), s.bg()::describe);
        s.bg().kill();
    }

    @Test
    void stopEndsTheApplicationAfterWriting() throws IOException {
        Subject s = subject("stop");
        Path img = work.resolve("img-stop");
        Cmd.Result r = cluster.ssi("checkpoint", Integer.toString(s.gpid()), "-o", img.toString(), "--stop").expectExit(0);
        assertTrue(r.out().contains("written to " + img) && r.out().contains("application stopped"), r::describe);
        int status = s.bg().awaitExit(BOUND);
        assertEquals(128 + 9, status, s.bg()::describe);
        assertTrue(Files.exists(img.resolve("inventory.img")));
        // the only copy of the program now: every file of it is on disk (fsync'd), none left to write back
        assertNotEquals("tmpfs", Files.getFileStore(img).type(), "the test needs a disk file system for this check");
        try (var files = Files.list(img)) {
            for (Path f : files.toList()) assertEquals(0, PageCache.unwritten(f), f + " has pages not written to disk");
        }
        cluster.ssi("image", "show", "--no-verify", img.toString()).expectExit(0);
    }

    @Test
    void withoutDashOTheImageGoesToTheDefaultDirectory() throws IOException {
        Path root = Path.of("/var/lib/ssi/checkpoints");
        boolean existed = Files.exists(root);
        Subject s = subject("default");
        try {
            Cmd.Result r = cluster.ssi("checkpoint", Integer.toString(s.gpid())).expectExit(0);
            Matcher m = Pattern.compile("written to (" + Pattern.quote(root.toString()) + "/" + s.gpid() + "-\\d{8}-\\d{6});")
                    .matcher(r.out());
            assertTrue(m.find(), r::describe);
            Path img = Path.of(m.group(1));
            assertTrue(Files.exists(img.resolve("inventory.img")), img.toString());
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(img)));
            TestCluster.deleteTree(img);
        } finally {
            s.bg().kill();
            if (!existed) {
                TestCluster.deleteTree(root);
                Files.deleteIfExists(root.getParent()); // /var/lib/ssi, if the checkpoint made it and it is empty now
            }
        }
    }

    @Test
    void aFlippedPageByteIsReportedByImageShow() throws IOException {
        Subject s = subject("flip");
        Path img = work.resolve("img-flip");
        cluster.ssi("checkpoint", Integer.toString(s.gpid()), "-o", img.toString()).expectExit(0);
        s.bg().kill();
        cluster.ssi("image", "show", img.toString()).expectExit(0);
        Path pages = img.resolve("pages-" + s.gpid() + ".img");
        byte[] b = Files.readAllBytes(pages);
        b[4096 + 12345] ^= 0x40;
        Files.write(pages, b);
        Cmd.Result r = cluster.ssi("image", "show", img.toString());
        assertEquals(1, r.exit(), r::describe);
        assertTrue(r.err().contains(pages.toString()) && r.err().contains("checksum mismatch"), r::describe);
        assertNotEquals("", r.err());
    }
}
