package ssi.launcher;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;

class EnclosingNodeTest {
    private static Optional<EnclosingNode> parse(String... args) {
        return EnclosingNode.parse(String.join("\0", args).concat("\0").getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void readsNodeAndRunDirFromTheShimsCommandLine() {
        assertEquals(Optional.of(new EnclosingNode(2, Path.of("/tmp/x"))),
                parse("/repo/native/target/bin/ssi-shim", "--node", "2", "--run-dir", "/tmp/x", "--detach", "--",
                        "/repo/bin/ssid", "--node", "9", "--run-dir", "/elsewhere"));
    }

    @Test
    void anythingElseIsNotANode() {
        assertEquals(Optional.empty(), parse("/sbin/init"));
        assertEquals(Optional.empty(), parse("/x/ssi-shim", "--node", "two", "--run-dir", "/tmp/x"));
        assertEquals(Optional.empty(), parse("/x/ssi-shim", "--run-dir", "/tmp/x"));
        assertEquals(Optional.empty(), parse("/x/ssi-shim", "--", "--node", "2", "--run-dir", "/tmp/x"));
        assertEquals(Optional.empty(), EnclosingNode.parse(new byte[0]));
    }
}
