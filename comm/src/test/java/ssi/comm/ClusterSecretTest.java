package ssi.comm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.*;

class ClusterSecretTest {
    @TempDir
    Path dir;

    @Test
    void generateWrites0600AndLoadReadsItBack() throws IOException {
        Path f = dir.resolve("secret");
        ClusterSecret s = ClusterSecret.generate(f);
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
        String text = Files.readString(f).strip();
        assertEquals(64, text.length());
        assertArrayEquals(HexFormat.of().parseHex(text), s.bytes());
        assertArrayEquals(s.bytes(), ClusterSecret.load(f).bytes());
        assertFalse(java.util.Arrays.equals(s.bytes(), ClusterSecret.generate(dir.resolve("other")).bytes()));
    }

    @Test
    void refusesFileReadableByOthers() throws IOException {
        Path f = dir.resolve("secret");
        ClusterSecret.generate(f);
        for (String mode : new String[] {"rw-r--r--", "rw-r-----", "rw-----w-"}) {
            Files.setPosixFilePermissions(f, PosixFilePermissions.fromString(mode));
            IOException e = assertThrows(IOException.class, () -> ClusterSecret.load(f), mode);
            assertTrue(e.getMessage().contains(mode) && e.getMessage().contains("chmod 600"), e.getMessage());
        }
    }

    @Test
    void refusesWrongContent() throws IOException {
        Path f = dir.resolve("secret");
        for (String content : new String[] {"ab".repeat(31) + "a", "zz".repeat(32), "ab".repeat(33), ""}) {
            Files.writeString(f, content);
            Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-------"));
            IOException e = assertThrows(IOException.class, () -> ClusterSecret.load(f), content);
            assertTrue(e.getMessage().contains("64 hex"), e.getMessage());
        }
        Files.writeString(f, "AB".repeat(32) + "\n");
        assertEquals((byte) 0xAB, ClusterSecret.load(f).bytes()[31]);
    }

    @Test
    void bytesAreACopy() {
        ClusterSecret s = ClusterSecret.of(new byte[32]);
        s.bytes()[0] = 1;
        assertEquals(0, s.bytes()[0]);
        assertFalse(s.toString().contains("00"));
    }
}
