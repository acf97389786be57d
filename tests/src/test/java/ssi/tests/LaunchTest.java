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
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** ssi-run on a one-node cluster: pids, cwd, exit statuses, its own errors, and the embedded default cluster. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 240)
class LaunchTest {
    private TestCluster cluster;
    private Path work;

    @BeforeAll
    void startCluster() throws IOException {
        work = Files.createTempDirectory("ssi-launch-work-");
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
        for (int i = 0; i < 7; i++) Files.writeString(work.resolve("file-" + i), "x");
        cluster = TestCluster.create("launch");
        cluster.start(1, false);
    }

    @AfterAll
    void stopCluster() {
        try {
            if (cluster != null) cluster.close();
        } finally {
            TestCluster.deleteTree(work);
        }
    }

    @Test
    void runsInTheNodeWithTheCallersCwdAndExitStatus() {
        Cmd.Result direct = Cmd.run(Cmd.env(), work, List.of("bash", "-c", "ls | wc -l")).expectExit(0);
        Cmd.Result r = cluster.ssiRunIn(work, 1, "bash", "-c", "echo $$; ls | wc -l; exit 3");
        r.expectExit(3);
        List<String> lines = r.outLines();
        assertEquals(2, lines.size(), r::describe);
        int pid = Integer.parseInt(lines.get(0).trim());
        assertTrue(TestCluster.inRange(pid, 1), () -> "pid " + pid + " is not in node 1's range [16384, 32768): " + r.describe());
        assertEquals(direct.out().trim(), lines.get(1).trim(), () -> "line count differs from a direct run: " + r.describe());
    }

    @Test
    void missingProgramIs127AndNamesIt() {
        Cmd.Result abs = cluster.ssiRun(1, "/nonexistent-dir-ssi/no-such-prog-abs");
        abs.expectExit(127);
        assertTrue(abs.err().contains("no-such-prog-abs"), abs::describe);

        Cmd.Result viaPath = cluster.ssiRun(1, "no-such-prog-in-path");
        viaPath.expectExit(127);
        assertTrue(viaPath.err().contains("no-such-prog-in-path"), viaPath::describe);
    }

    @Test
    void nonExecutableFileIs126AndNamesIt() throws IOException {
        Path f = work.resolve("not-executable.sh");
        Files.writeString(f, "#!/bin/sh\necho should not run\n");
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
        try {
            Cmd.Result r = cluster.ssiRun(1, f.toString());
            r.expectExit(126);
            assertTrue(r.err().contains("not-executable.sh"), r::describe);
            assertTrue(!r.out().contains("should not run"), r::describe);
        } finally {
            Files.deleteIfExists(f);
        }
    }

    @Test
    void nodeThatDoesNotExistIs125AndNamesIt() {
        Cmd.Result r = cluster.ssiRun(9, "true");
        r.expectExit(125);
        assertTrue(r.err().contains("node 9"), r::describe);
    }

    /**
     * A fresh empty run dir and no cluster: ssi-run starts the embedded one-node cluster by itself
     * (it listens on 127.0.0.1:7701, the default base port + 1, which must be free for this).
     */
    @Test
    void startsTheEmbeddedOneNodeClusterOnFirstUse() {
        // Another default cluster on this machine (another run dir) may hold the port for a while.
        boolean free = Cmd.waitUntilQuietly(Duration.ofSeconds(60), () -> TestCluster.portFree(7701));
        if (!free) fail("127.0.0.1:7701 stayed busy for 60 s: the embedded cluster's fixed port is taken by another process");
        TestCluster embedded = TestCluster.create("embedded");
        try {
            Cmd.Result r = Cmd.run(Duration.ofSeconds(150), embedded.env(), work,
                    List.of(TestCluster.ssiRunScript(), "--", "/bin/echo", "hi"));
            r.expectExit(0);
            assertEquals("hi\n", r.out(), r::describe);
            assertTrue(Files.exists(embedded.dir.resolve("cluster.conf")), "no cluster.conf written in " + embedded.dir);
            Map<Integer, TestCluster.NodeRow> nodes = embedded.nodes(1);
            assertEquals(List.of(1), List.copyOf(nodes.keySet()), () -> "nodes: " + nodes);
            assertTrue(List.of("UP", "SELF").contains(nodes.get(1).state()), () -> "node 1 is not UP: " + nodes);
            embedded.ssi("cluster", "stop").expectExit(0);
        } finally {
            embedded.close();
        }
    }
}
