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
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `ssi capset` on live processes: defaults, changes within the rules, refusals, inheritance at fork. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 240)
class CapabilitiesTest {
    private static final Duration BOUND = Duration.ofSeconds(60);
    /** What a process started by root with ssi-run gets (CapabilityTable.defaults). */
    private static final String DEFAULT_PERMITTED = "CAN_MIGRATE,DISTANT_FORK,CAN_CHECKPOINT,SEE_LOCAL_PROC_STAT,CHANGE_SSI_CAP";
    private static final String DEFAULT_EFFECTIVE = "CAN_MIGRATE,CAN_CHECKPOINT";

    private TestCluster cluster;
    private Path work;

    @BeforeAll
    void start() throws IOException {
        cluster = TestCluster.create("caps");
        cluster.start(2, false);
        work = Files.createTempDirectory("ssi-caps-work-");
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    @AfterAll
    void stop() {
        try {
            if (cluster != null) cluster.close();
        } finally {
            TestCluster.deleteTree(work);
        }
    }

    /** `ssi capset GPID -l`, parsed: "Permitted" -> "CAN_MIGRATE,...". */
    private Map<String, String> caps(int gpid) {
        return parse(cluster.ssi("capset", Integer.toString(gpid), "-l").expectExit(0));
    }

    private static Map<String, String> parse(Cmd.Result r) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : r.outLines()) {
            int colon = line.indexOf(':');
            if (colon > 0) m.put(line.substring(0, colon).trim(), line.substring(colon + 1).trim());
        }
        assertEquals(4, m.size(), r::describe);
        return m;
    }

    private static Map<String, String> sets(String p, String e, String ip, String ie) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("Permitted", p);
        m.put("Effective", e);
        m.put("Inheritable Permitted", ip);
        m.put("Inheritable Effective", ie);
        return m;
    }

    @Test
    void defaultsAndChangesOfTheEffectiveSet() {
        Cmd.Bg s = cluster.sleeper(1, 300);
        int g = Integer.parseInt(s.awaitFirstLine(BOUND).trim());
        assertEquals(sets(DEFAULT_PERMITTED, DEFAULT_EFFECTIVE, DEFAULT_PERMITTED, DEFAULT_EFFECTIVE), caps(g));

        // lower, then raise within the permitted set
        cluster.ssi("capset", Integer.toString(g), "-e", "-CAN_MIGRATE").expectExit(0);
        assertEquals("CAN_CHECKPOINT", caps(g).get("Effective"));
        Cmd.Result raised = cluster.ssi("capset", Integer.toString(g), "-e", "+DISTANT_FORK,+can_migrate", "-l").expectExit(0);
        assertEquals("CAN_MIGRATE,DISTANT_FORK,CAN_CHECKPOINT", parse(raised).get("Effective"), raised::describe);

        // shrink the permitted set (inheritable permitted first, it must stay inside), then try to raise
        // effective beyond it
        cluster.ssi("capset", Integer.toString(g), "-i", "-SEE_LOCAL_PROC_STAT", "-p", "-SEE_LOCAL_PROC_STAT").expectExit(0);
        Map<String, String> before = caps(g);
        assertEquals("CAN_MIGRATE,DISTANT_FORK,CAN_CHECKPOINT,CHANGE_SSI_CAP", before.get("Permitted"));
        Cmd.Result beyond = cluster.ssi("capset", Integer.toString(g), "-e", "+SEE_LOCAL_PROC_STAT");
        beyond.expectExit(1);
        assertTrue(beyond.err().contains("Invalid argument"), beyond::describe);
        assertTrue(beyond.err().contains("SEE_LOCAL_PROC_STAT") && beyond.err().contains("permitted"), beyond::describe);
        assertEquals(before, caps(g), "a refused change changed the sets");

        // the subset rules hold for the inheritable sets as well
        Cmd.Result ie = cluster.ssi("capset", Integer.toString(g), "-d", "+SEE_LOCAL_PROC_STAT");
        ie.expectExit(1);
        assertTrue(ie.err().contains("Invalid argument"), ie::describe);
        Cmd.Result unknown = cluster.ssi("capset", Integer.toString(g), "-e", "+NO_SUCH_CAP");
        unknown.expectExit(2);
        assertTrue(unknown.err().contains("NO_SUCH_CAP"), unknown::describe);
        assertEquals(before, caps(g));

        cluster.ssi("kill", Integer.toString(g)).expectExit(0);
        assertEquals(143, s.awaitExit(BOUND), s::describe);
        Cmd.Result gone = cluster.ssi("capset", Integer.toString(g), "-l");
        gone.expectExit(1);
        assertTrue(gone.err().contains("No such process"), gone::describe);
    }

    /**
     * `ssi capset` without a GPID acts on the calling shell ("the parent of ssi"), for a shell in the
     * cluster on any node, as krg_capset does on any node of a Kerrighed cluster.
     */
    @Test
    void capsetWithoutGpidActsOnTheCallingShell() {
        String ssi = TestCluster.ssiScript();
        // `; exit $?`: bash must stay the parent of the second ssi (it would exec a last command itself)
        String script = ssi + " capset -e -CAN_MIGRATE && " + ssi + " capset -l; exit $?";
        for (int node : new int[] {1, 2}) {
            Cmd.Result r = cluster.ssiRun(node, "bash", "-c", script);
            assertEquals(0, r.exit(), () -> "on node " + node + ": " + r.describe());
            assertEquals(sets(DEFAULT_PERMITTED, "CAN_CHECKPOINT", DEFAULT_PERMITTED, DEFAULT_EFFECTIVE), parse(r),
                    () -> "on node " + node + ": " + r.describe());
        }
    }

    @Test
    void aChildGetsTheInheritableSetsOfItsParentAtFork() throws IOException {
        Path parent = work.resolve("parent"), before = work.resolve("before"), after = work.resolve("after"), go = work.resolve("go");
        String script = "echo $$ > parent.tmp && mv parent.tmp parent; "
                + "sleep 300 & echo $! > before.tmp && mv before.tmp before; "
                + "while [ ! -e go ]; do sleep 0.1; done; "
                + "sleep 300 & echo $! > after.tmp && mv after.tmp after; "
                + "wait";
        Cmd.Bg run = Cmd.start(cluster.env(), work, TestCluster.ssiRunCommand(1, "bash", "-c", script));
        try {
            Cmd.waitUntil(BOUND, () -> Files.exists(parent) && Files.exists(before), run::describe);
            int p = Integer.parseInt(Files.readString(parent).trim());
            int b = Integer.parseInt(Files.readString(before).trim());
            assertEquals(sets(DEFAULT_PERMITTED, DEFAULT_EFFECTIVE, DEFAULT_PERMITTED, DEFAULT_EFFECTIVE), caps(p));

            // the parent's inheritable effective set gains DISTANT_FORK (within its inheritable permitted)
            Cmd.Result r = cluster.ssi("capset", Integer.toString(p), "-d", "+DISTANT_FORK", "-l").expectExit(0);
            assertEquals(sets(DEFAULT_PERMITTED, DEFAULT_EFFECTIVE, DEFAULT_PERMITTED, "CAN_MIGRATE,DISTANT_FORK,CAN_CHECKPOINT"), parse(r));

            Files.writeString(go, "");
            Cmd.waitUntil(BOUND, () -> Files.exists(after), run::describe);
            int a = Integer.parseInt(Files.readString(after).trim());

            Map<String, String> childAfter = caps(a);
            assertEquals("CAN_MIGRATE,DISTANT_FORK,CAN_CHECKPOINT", childAfter.get("Effective"),
                    () -> "a child forked after the change: " + childAfter);
            assertEquals("CAN_MIGRATE,DISTANT_FORK,CAN_CHECKPOINT", childAfter.get("Inheritable Effective"));
            assertEquals(DEFAULT_PERMITTED, childAfter.get("Permitted"));

            Map<String, String> childBefore = caps(b);
            assertEquals(sets(DEFAULT_PERMITTED, DEFAULT_EFFECTIVE, DEFAULT_PERMITTED, DEFAULT_EFFECTIVE), childBefore,
                    "a child forked before the change must keep what it got at fork");

            // the parent itself keeps its effective set
            assertEquals(DEFAULT_EFFECTIVE, caps(p).get("Effective"));
        } finally {
            // the sleeps first, then their bash
            for (Path f : new Path[] {before, after, parent}) {
                if (Files.exists(f)) cluster.ssi("kill", "-9", Files.readString(f).trim());
            }
            run.awaitExit(BOUND);
            run.deleteFiles();
        }
    }
}
