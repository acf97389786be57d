package ssi.tests;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `ssi checkpoint --incremental` end to end on a live one-node cluster. The subject (resources
 * incremental/incr-pages.c) holds 64 MiB of patterned memory in one VMA; it is checkpointed in full, then
 * dirties 1% of its pages (one of them through a kernel write, read(2) from a pipe) and is checkpointed
 * incrementally against the remembered image, then dirties another 1% and drops 10 pages with
 * MADV_DONTNEED and is checkpointed incrementally with an explicit --parent, then writes a third of its
 * pages (21 MiB: more than a checkpoint copies ahead and holds in memory during the freeze, so that VMA
 * is copied the ordinary way) and is checkpointed incrementally with --stop. Each incremental image must
 * store exactly the pages written in its round (image show, for the VMA) and refer to the rest; the
 * restart of the last image, which reads pages through all four images, must give back a process whose
 * every word is the latest pattern, with the pages dropped and not written since zero. Without a known
 * earlier image, with a missing parent at checkpoint or restart, or with the parent replaced by another
 * image, the command fails naming it and nothing is written or started.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 300)
class IncrementalCheckpointTest {
    private static final Duration BOUND = Duration.ofSeconds(60);
    private static final int MIB = 64, PAGES = MIB * 256;
    /** Pages a round dirties in the subject's VMA: p % 100 == 0 (164 of 16384) plus page 1; then p % 100 == 50. */
    private static final int ROUND1 = (PAGES + 99) / 100 + 1, ROUND2 = (PAGES - 50 + 99) / 100, DROPPED = 10;
    /** Pages outside the subject's VMA an incremental image may store (stack, libc data...), 1 MiB. */
    private static final int SLACK = 256;

    private TestCluster cluster;
    private Path work, program;

    @BeforeAll
    void start() throws IOException {
        work = Files.createTempDirectory("ssi-incr-work-");
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
        program = work.resolve("incr-pages");
        Path src = TestCluster.home().resolve("tests/src/test/resources/incremental/incr-pages.c");
        Cmd.run(Cmd.env(), work, List.of("gcc", "-O2", "-Wall", "-o", program.toString(), src.toString())).expectExit(0);
        cluster = TestCluster.create("incr");
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

    private boolean listed(int gpid) {
        return cluster.ps(1).stream().anyMatch(r -> r.gpid() == gpid);
    }

    /** One VMA line of `ssi image show`: pages, stored, in parent (-1 when the line has none), by image. */
    private record VmaLine(long pages, long stored, long inParent, String byImage) {}

    private static VmaLine vmaLine(String show, String range) {
        Matcher m = Pattern.compile("(?m)^    " + range + " rw-p anon\\s+(\\d+) pages,\\s+(\\d+) stored(?:,\\s+(\\d+) in parent \\(([^)]*)\\))?")
                .matcher(show);
        assertTrue(m.find(), () -> "no line for the VMA " + range + " in:\n" + show);
        return new VmaLine(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)), m.group(3) == null ? -1 : Long.parseLong(m.group(3)),
                m.group(4) == null ? "" : m.group(4));
    }

    private static long totalStored(String show) {
        Matcher m = Pattern.compile("(?m)^1 process\\(es\\), (\\d+) page\\(s\\) stored").matcher(show);
        assertTrue(m.find(), show);
        return Long.parseLong(m.group(1));
    }

    private void round(int gpid, Path status, int n, Cmd.Bg bg) {
        cluster.ssi("kill", "-s", "USR1", Integer.toString(gpid)).expectExit(0);
        Cmd.waitUntil(BOUND, () -> Files.exists(status) && Cmd.read(status).equals("round " + n + "\n"),
                () -> "no round " + n + ": " + bg.describe());
    }

    @Test
    void chainOfIncrementalImagesRestoresTheLatestStateAndRefusesBrokenChains() throws IOException {
        Path status = work.resolve("status"), result = work.resolve("result");
        Cmd.Bg bg = cluster.ssiRunBg(1, program.toString(), Integer.toString(MIB), status.toString(), result.toString());
        String first = bg.awaitFirstLine(BOUND);
        String[] f = first.trim().split(" ");
        assertTrue(f.length == 4 && f[0].equals("ready"), bg::describe);
        int gpid = Integer.parseInt(f[1]);
        long addr = Long.parseUnsignedLong(f[2], 16);
        assertEquals(PAGES, Integer.parseInt(f[3]));
        String range = String.format("%012x-%012x", addr, addr + (long) PAGES * 4096);
        String g = Integer.toString(gpid);
        Path img0 = work.resolve("img0"), img1 = work.resolve("img1"), img2 = work.resolve("img2"), img3 = work.resolve("img3");

        // --incremental before any checkpoint of it: refused, nothing written
        Cmd.Result none = cluster.ssi("checkpoint", g, "-o", work.resolve("img-none").toString(), "--incremental");
        assertEquals(1, none.exit(), none::describe);
        assertTrue(none.err().contains("no earlier checkpoint of process " + gpid), none::describe);
        assertFalse(Files.exists(work.resolve("img-none")), "a refused checkpoint left its directory");
        // a parent that does not exist: refused naming it
        Path nowhere = work.resolve("no-such-image");
        Cmd.Result missing = cluster.ssi("checkpoint", g, "-o", work.resolve("img-x").toString(), "--parent", nowhere.toString());
        assertEquals(1, missing.exit(), missing::describe);
        assertTrue(missing.err().contains("the parent image " + nowhere + " is missing"), missing::describe);
        assertFalse(Files.exists(work.resolve("img-x")));

        // full checkpoint: every page of the VMA stored; the program runs on
        cluster.ssi("checkpoint", g, "-o", img0.toString()).expectExit(0);
        String show0 = cluster.ssi("image", "show", img0.toString()).expectExit(0).out();
        assertEquals(new VmaLine(PAGES, PAGES, -1, ""), vmaLine(show0, range), show0);
        assertTrue(totalStored(show0) >= PAGES, show0);

        // round 1, incremental against the remembered last image (img0)
        round(gpid, status, 1, bg);
        Cmd.Result c1 = cluster.ssi("checkpoint", g, "-o", img1.toString(), "--incremental").expectExit(0);
        assertTrue(c1.out().contains("incremental: ") && c1.out().contains("in the parent " + img0), c1::describe);
        String show1 = cluster.ssi("image", "show", img1.toString()).expectExit(0).out();
        assertTrue(show1.contains("incremental: builds on the parent image ../img0 "), show1);
        assertTrue(show1.contains("every checksum of the chain verified"), show1);
        assertEquals(new VmaLine(PAGES, ROUND1, PAGES - ROUND1, "[1] " + (PAGES - ROUND1)), vmaLine(show1, range), show1);
        long total1 = totalStored(show1);
        assertTrue(total1 >= ROUND1 && total1 <= ROUND1 + SLACK, "the incremental image stores " + total1 + " pages:\n" + show1);

        // round 2 (and 10 pages dropped), incremental with an explicit parent
        round(gpid, status, 2, bg);
        cluster.ssi("checkpoint", g, "-o", img2.toString(), "--parent", img1.toString()).expectExit(0);
        String show2 = cluster.ssi("image", "show", img2.toString()).expectExit(0).out();
        // img1's round-1 pages minus page 200 (dropped) come from [1], the rest of the untouched pages from [2]
        long inParent2 = PAGES - ROUND2 - DROPPED;
        assertEquals(new VmaLine(PAGES, ROUND2, inParent2, "[1] " + (ROUND1 - 1) + " [2] " + (inParent2 - (ROUND1 - 1))),
                vmaLine(show2, range), show2);
        assertTrue(show2.contains("chain of 3 images, newest first: [0] " + img2 + " <- [1] " + img1 + " <- [2] " + img0), show2);

        // round 3: a third of the pages (the dropped ones among them come back), incremental against the
        // remembered image, and the application stopped
        round(gpid, status, 3, bg);
        cluster.ssi("checkpoint", g, "-o", img3.toString(), "--incremental", "--stop").expectExit(0);
        Cmd.waitUntil(BOUND, () -> !bg.isAlive() && !listed(gpid), () -> "still running after --stop: " + bg.describe());
        String show3 = cluster.ssi("image", "show", img3.toString()).expectExit(0).out();
        // which image holds each page's latest contents: 0 this one, 1 img2, 2 img1, 3 img0, -1 none (dropped)
        int[] from = new int[5];
        for (int p = 0; p < PAGES; p++) {
            int at = p % 3 == 2 ? 0 : p >= 200 && p < 200 + DROPPED ? -1 : p % 100 == 50 ? 1 : p % 100 == 0 || p == 1 ? 2 : 3;
            from[at + 1]++;
        }
        assertEquals(new VmaLine(PAGES, from[1], from[2] + from[3] + from[4], "[1] " + from[2] + " [2] " + from[3] + " [3] " + from[4]),
                vmaLine(show3, range), show3);
        assertTrue(from[1] * 4096L > 16L << 20, "round 3 writes more than a checkpoint holds during the freeze");
        assertTrue(show3.contains("chain of 4 images, newest first: [0] " + img3 + " <- [1] " + img2 + " <- [2] " + img1 + " <- [3] "
                + img0), show3);

        // restart from the newest image: the pages come through the whole chain
        String ctx = "\n" + cluster.logs();
        cluster.ssi("restart", "--detach", img3.toString()).expectExit(0);
        cluster.ssi("kill", "-s", "USR2", g).expectExit(0);
        Cmd.waitUntil(BOUND, () -> Files.exists(result) && Cmd.read(result).endsWith("\n"), () -> "no result" + ctx);
        assertEquals("PASS 3\n", Cmd.read(result), () -> Cmd.read(result) + ctx);
        Cmd.waitUntil(BOUND, () -> !listed(gpid), () -> "the restored process did not exit" + ctx);

        // the middle image missing: restart and image show fail naming it, nothing starts
        Path away = work.resolve("img1.away");
        Files.move(img1, away);
        Cmd.Result gone = cluster.ssi("restart", "--detach", img3.toString());
        assertEquals(1, gone.exit(), gone::describe);
        assertTrue(gone.err().contains("its parent image " + img1 + " (../img1, made "), gone::describe);
        assertTrue(gone.err().contains("is missing"), gone::describe);
        assertFalse(listed(gpid), "a process was started from a broken chain");
        Cmd.Result showGone = cluster.ssi("image", "show", img3.toString());
        assertEquals(1, showGone.exit(), showGone::describe);
        assertTrue(showGone.out().contains("chain: cannot be used: "), showGone::describe);

        // another image in the parent's place: "not the one it was made from", nothing starts
        Cmd.run(Cmd.env(), work, List.of("cp", "-a", img0.toString(), img1.toString())).expectExit(0);
        Cmd.Result swapped = cluster.ssi("restart", "--detach", img3.toString());
        assertEquals(1, swapped.exit(), swapped::describe);
        assertTrue(swapped.err().contains("its parent image " + img1 + " is not the one it was made from"), swapped::describe);
        assertFalse(listed(gpid), "a process was started from a swapped chain");
    }
}
