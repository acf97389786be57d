package ssi.comm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.*;

class ClusterConfigTest {
    @TempDir
    Path dir;

    private Path conf(String text) throws IOException {
        Path f = dir.resolve("cluster.conf");
        Files.writeString(f, text);
        return f;
    }

    @Test
    void parsesNodesCommentsAndNetns() throws IOException {
        ClusterConfig c = ClusterConfig.load(conf("""
                # test cluster
                node 2 10.0.0.2 7002 netns ssi-n2   # second

                node 1 10.0.0.1 7001
                """));
        assertEquals(List.of(new NodeAddress(1, "10.0.0.1", 7001), new NodeAddress(2, "10.0.0.2", 7002)), c.nodes());
        assertEquals(new NodeAddress(2, "10.0.0.2", 7002), c.node(2));
        assertNull(c.node(3));
        assertEquals(Optional.of("ssi-n2"), c.netns(2));
        assertEquals(Optional.empty(), c.netns(1));
    }

    @Test
    void errorsNameFileAndLine() throws IOException {
        assertLoadFails("node 1 h 7001\n\nnode 2 h 70x2\n", ":3:", "port");
        assertLoadFails("node 1 h 7001\nnode 1 h 7002\n", ":2:", "listed twice");
        assertLoadFails("# c\nnod 1 h 7001\n", ":2:", "unknown keyword");
        assertLoadFails("node 1 h\n", ":1:", "fields");
        assertLoadFails("node 300 h 7001\n", ":1:", "out of range");
        assertLoadFails("node 1 h 7001\nnode 2 h 7001\n", ":2:", "already uses");
        assertLoadFails("node 1 h 7001 netz x\n", ":1:", "netns");
        assertLoadFails("node 1 h 7001 netns bad/name\n", ":1:", "netns name");
        IOException empty = assertThrows(IOException.class, () -> ClusterConfig.load(conf("# nothing\n")));
        assertTrue(empty.getMessage().contains("no 'node' lines"), empty.getMessage());
    }

    private void assertLoadFails(String text, String line, String words) throws IOException {
        Path f = conf(text);
        IOException e = assertThrows(IOException.class, () -> ClusterConfig.load(f));
        assertTrue(e.getMessage().contains(f + line), "no file:line in: " + e.getMessage());
        assertTrue(e.getMessage().contains(words), "expected '" + words + "' in: " + e.getMessage());
    }

    @Test
    void writeRoundTripsAtomicallyWithMode0644() throws IOException {
        ClusterConfig c = ClusterConfig.of(List.of(new NodeAddress(1, "127.0.0.1", 7001), new NodeAddress(3, "::1", 7003)),
                Map.of(3, "n3"));
        Path f = dir.resolve("cluster.conf");
        Files.writeString(f, "old content\n");
        c.write(f);
        assertEquals("rw-r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
        ClusterConfig back = ClusterConfig.load(f);
        assertEquals(c.nodes(), back.nodes());
        assertEquals(Optional.of("n3"), back.netns(3));
        try (var files = Files.list(dir)) {
            assertEquals(List.of(f), files.toList(), "temp file left behind");
        }
    }

    @Test
    void ofRejectsDuplicates() {
        assertThrows(IllegalArgumentException.class,
                () -> ClusterConfig.of(List.of(new NodeAddress(1, "h", 1), new NodeAddress(1, "h", 2))));
        assertThrows(IllegalArgumentException.class,
                () -> ClusterConfig.of(List.of(new NodeAddress(1, "h", 1), new NodeAddress(2, "h", 1))));
        assertThrows(IllegalArgumentException.class, () -> ClusterConfig.of(List.of(new NodeAddress(0, "h", 1))));
    }
}
