package ssi.tests;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native control client (native/src/ctl/ssi-ctl.c), which the ssi script runs for `checkpoint` and
 * `restart`, says exactly what the Java commands say: each case runs the binary itself and the Java
 * command (SSI_NATIVE_CTL=0) against the same live node and compares exit status, stdout and stderr.
 * What the client leaves to Java (help, usage errors, an unreachable node) it refuses with exit 64
 * and no output, and the script then gives the Java answer. (The successful paths run through the
 * client in CheckpointTest, RestartTest and IncrementalCheckpointTest; here an incremental checkpoint by
 * each is compared, figures aside.)
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 300)
class NativeCtlTest {
    private static final int DELEGATE = 64;

    private TestCluster cluster;
    private Path work;

    @BeforeAll
    void start() throws IOException {
        work = Files.createTempDirectory("ssi-ctl-work-");
        cluster = TestCluster.create("ctl");
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

    private static String client() {
        return TestCluster.home().resolve("native/target/bin/ssi-ctl").toString();
    }

    private Cmd.Result viaClient(Path cwd, String... args) {
        return Cmd.run(cluster.env(), cwd, Cmd.list(List.of(client()), args));
    }

    private Cmd.Result viaJava(Path cwd, String... args) {
        Map<String, String> env = new java.util.HashMap<>(cluster.env());
        env.put("SSI_NATIVE_CTL", "0");
        return Cmd.run(env, cwd, Cmd.list(List.of(TestCluster.ssiScript()), args));
    }

    private void same(Path cwd, int exit, String... args) {
        Cmd.Result c = viaClient(cwd, args), j = viaJava(cwd, args);
        assertEquals(exit, j.exit(), j::describe);
        assertEquals(exit, c.exit(), () -> c.describe() + "\n--- java:\n" + j.describe());
        assertEquals(j.out(), c.out(), () -> c.describe() + "\n--- java:\n" + j.describe());
        assertEquals(j.err(), c.err(), () -> c.describe() + "\n--- java:\n" + j.describe());
    }

    @Test
    void failuresReadTheSameAsTheJavaCommands() {
        // errors the daemon answers, with the paths as typed and as the daemon gets them
        same(work, 1, "checkpoint", "16383");
        same(work, 1, "checkpoint", "999999", "--stop", "-o", "rel//img/");
        same(work, 1, "checkpoint", "999999", "--parent", "rel/../no//parent/");
        same(work, 1, "checkpoint", "999999", "-i");
        // (a detached restart: `ssi restart` without --detach runs in the foreground through ssi-run)
        same(work, 1, "restart", "--detach", "missing//image/");
        same(work, 1, "restart", "-d", "./a/../missing");
        same(work, 1, "restart", "/nonexistent/image", "--node", "1", "--detach");
        same(TestCluster.home(), 1, "--node=1", "restart", "--detach", "tests/../no-image");
        // a checkpoint by the client, then one more into the same directory: refused, in the same words
        Cmd.Bg s = cluster.sleeper(1, 120);
        int gpid = Integer.parseInt(s.awaitFirstLine(java.time.Duration.ofSeconds(30)).trim());
        Path img = work.resolve("img");
        Cmd.Result first = viaClient(work, "checkpoint", Integer.toString(gpid), "-o", "img");
        assertEquals(0, first.exit(), first::describe);
        assertTrue(first.out().matches("checkpoint of " + gpid + " \\(1 process, [0-9]+\\.[0-9] MiB\\) written to "
                + java.util.regex.Pattern.quote(img.toString()) + "; frozen [0-9]+ ms\n"), first::describe);
        assertTrue(Files.exists(img.resolve("inventory.img")), first::describe);
        same(work, 1, "checkpoint", Integer.toString(gpid), "-o", "img");
        // incremental checkpoints: a parent that is not there, named the same way
        same(work, 1, "checkpoint", Integer.toString(gpid), "-o", "img-x", "--parent", "no-such-image");
        // one by the client and one by Java on top of img: the same lines but for the figures
        String g = Integer.toString(gpid);
        Cmd.Result ci = viaClient(work, "checkpoint", g, "-o", "img-c", "--parent", "img");
        Cmd.Result ji = viaJava(work, "checkpoint", g, "-o", "img-j", "--parent", "img");
        assertEquals(0, ci.exit(), ci::describe);
        assertEquals(0, ji.exit(), ji::describe);
        assertEquals(figuresOut(ji.out()).replace("img-j", "img-c"), figuresOut(ci.out()), () -> ci.describe() + "\n--- java:\n" + ji.describe());
        assertTrue(ci.out().matches("(?s)checkpoint of " + gpid + " .*\nincremental: [0-9]+\\.[0-9] MiB of unchanged pages are in the parent "
                + java.util.regex.Pattern.quote(img.toString()) + "\n"), ci::describe);
        // --incremental alone: on top of the last image the node wrote of it (img-j)
        Cmd.Result cr = viaClient(work, "checkpoint", g, "-o", "img-r", "-i");
        assertEquals(0, cr.exit(), cr::describe);
        assertTrue(cr.out().endsWith(" MiB of unchanged pages are in the parent " + work.resolve("img-j") + "\n"), cr::describe);
    }

    /** A checkpoint's lines with its figures (MiB, freeze time) taken out. */
    private static String figuresOut(String out) {
        return out.replaceAll("[0-9]+\\.[0-9] MiB", "X MiB").replaceAll("frozen [0-9]+ ms", "frozen N ms");
    }

    @Test
    void whatItCannotAnswerGoesToJava() {
        List<String[]> cases = new ArrayList<>();
        cases.add(new String[] {"checkpoint", "--help"});
        cases.add(new String[] {"restart"});
        cases.add(new String[] {"restart", "/tmp/x"}); // the foreground restart is ssi-run's
        cases.add(new String[] {"checkpoint", "12x"});
        cases.add(new String[] {"checkpoint", "1", "--bogus"});
        cases.add(new String[] {"--node", "7", "restart", "/tmp/x"});   // no such node here
        cases.add(new String[] {"--node", "300", "restart", "/tmp/x"}); // not a node id
        cases.add(new String[] {"checkpoint", "1", "--stop", "--stop"});
        cases.add(new String[] {"checkpoint", "1", "-i", "--incremental"});
        cases.add(new String[] {"checkpoint", "1", "--parent"});
        cases.add(new String[] {"checkpoint", "1", "--parent="});
        for (String[] args : cases) {
            Cmd.Result c = viaClient(work, args);
            assertEquals(DELEGATE, c.exit(), c::describe);
            assertTrue(c.out().isEmpty() && c.err().isEmpty(), c::describe);
            Cmd.Result viaScript = cluster.ssi(args), j = viaJava(TestCluster.home(), args);
            assertEquals(j.exit(), viaScript.exit(), viaScript::describe);
            assertEquals(j.out(), viaScript.out(), viaScript::describe);
            assertEquals(j.err(), viaScript.err(), viaScript::describe);
        }
    }
}
