package ssi.launcher;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ssi.comm.NodeAddress;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real node starter: its command line, and real processes (small shell scripts standing in for
 * ssi-shim in a temporary SSI_HOME) to check exit statuses, log capture and timeouts.
 */
class ShimNodeStarterTest {
    @TempDir
    Path tmp;

    @Test
    void commandLine() {
        Path home = Path.of("/opt/ssi");
        Path dir = Path.of("/run/ssi");
        assertEquals(List.of("/opt/ssi/native/target/bin/ssi-shim", "--node", "3", "--run-dir", "/run/ssi", "--detach", "--",
                        "/opt/ssi/bin/ssid", "--node", "3", "--run-dir", "/run/ssi"),
                ShimNodeStarter.command(home, dir, 3, Optional.empty()));
        List<String> ns = ShimNodeStarter.command(home, dir, 2, Optional.of("ssi-n2"));
        assertEquals(List.of(NetnsTopology.ipTool(), "netns", "exec", "ssi-n2", "/opt/ssi/native/target/bin/ssi-shim"),
                ns.subList(0, 5));
        assertEquals(List.of("/opt/ssi/bin/ssid", "--node", "2", "--run-dir", "/run/ssi"), ns.subList(ns.size() - 5, ns.size()));
    }

    private Path home(String shimScript) throws IOException {
        Path home = tmp.resolve("home");
        Files.createDirectories(home.resolve("native/target/bin"));
        Files.createDirectories(home.resolve("bin"));
        script(home.resolve("native/target/bin/ssi-shim"), shimScript);
        script(home.resolve("bin/ssid"), "exit 0");
        return home;
    }

    private static void script(Path p, String body) throws IOException {
        Files.writeString(p, "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    private Path runDir() throws IOException {
        return Files.createDirectories(tmp.resolve("run"));
    }

    @Test
    void successReturnsNullAndPassesTheArguments() throws Exception {
        Path home = home("echo \"$@\" > \"$PWD/args\"; echo ready");
        Path dir = runDir();
        ShimNodeStarter s = new ShimNodeStarter(Map.of("SSI_HOME", home.toString()));
        s.check();
        NodeStarter.Launch l = s.start(dir, new NodeAddress(4, "127.0.0.1", 7704), Optional.empty());
        assertNull(l.await(Duration.ofSeconds(10)));
        assertEquals("--node 4 --run-dir " + dir + " --detach -- " + home.resolve("bin/ssid") + " --node 4 --run-dir " + dir,
                Files.readString(dir.resolve("args")).strip());
        assertEquals("ready\n", Files.readString(dir.resolve("node-4.log")));
    }

    @Test
    void failureReturnsWhatTheShimPrintedThisTimeOnly() throws Exception {
        Path home = home("echo \"ssi-shim: node 1: cannot bind $PWD/node-1.launch: Address in use\" >&2; exit 1");
        Path dir = runDir();
        Files.writeString(dir.resolve("node-1.log"), "an old run's noise\n");
        ShimNodeStarter s = new ShimNodeStarter(Map.of("SSI_HOME", home.toString()));
        String why = s.start(dir, new NodeAddress(1, "127.0.0.1", 7701), Optional.empty()).await(Duration.ofSeconds(10));
        assertEquals("ssi-shim: node 1: cannot bind " + dir + "/node-1.launch: Address in use", why);
        assertTrue(Files.readString(dir.resolve("node-1.log")).startsWith("an old run's noise\n"), "the log is appended to");
    }

    @Test
    void silentFailureSaysSo() throws Exception {
        Path home = home("exit 3");
        ShimNodeStarter s = new ShimNodeStarter(Map.of("SSI_HOME", home.toString()));
        assertEquals("ssi-shim exited with status 3 and printed nothing",
                s.start(runDir(), new NodeAddress(1, "127.0.0.1", 7701), Optional.empty()).await(Duration.ofSeconds(10)));
    }

    @Test
    void aShimThatNeverReturnsTimesOut() throws Exception {
        Path home = home("exec sleep 30");
        ShimNodeStarter s = new ShimNodeStarter(Map.of("SSI_HOME", home.toString()));
        long t0 = System.nanoTime();
        String why = s.start(runDir(), new NodeAddress(1, "127.0.0.1", 7701), Optional.empty()).await(Duration.ofMillis(300));
        assertEquals("ssi-shim --detach did not report the node ready in time", why);
        assertTrue(System.nanoTime() - t0 < 5_000_000_000L);
    }

    @Test
    void checkExplainsWhatIsMissing() throws IOException {
        SsiException noHome = assertThrows(SsiException.class, () -> new ShimNodeStarter(Map.of()).check());
        assertTrue(noHome.getMessage().startsWith("cluster start: SSI_HOME is not set"), noHome.getMessage());
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        SsiException noShim = assertThrows(SsiException.class,
                () -> new ShimNodeStarter(Map.of("SSI_HOME", empty.toString())).check());
        assertTrue(noShim.getMessage().startsWith("cluster start: no executable ssi-shim at " + empty + "/native/target/bin/ssi-shim"),
                noShim.getMessage());
    }

    @Test
    void appendedSinceReadsOnlyTheNewTail() throws IOException {
        Path log = tmp.resolve("x.log");
        Files.writeString(log, "old\n");
        long off = Files.size(log);
        Files.writeString(log, "old\nline one\n\nline two\n");
        assertEquals("line one / line two", ShimNodeStarter.appendedSince(log, off));
        Files.writeString(log, "truncated\n"); // shorter than the offset: read it all
        assertEquals("truncated", ShimNodeStarter.appendedSince(log, 100));
        assertEquals("", ShimNodeStarter.appendedSince(tmp.resolve("missing.log"), 0));
    }
}
