package ssi.comm;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.Set;

/**
 * The cluster secret, DIR/secret: 32 random bytes written as 64 hex characters, mode 0600. Every node link
 * proves knowledge of it (see {@link LinkCrypto}). Immutable; {@link #bytes()} hands out copies.
 */
public final class ClusterSecret {
    public static final int BYTES = 32;
    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");
    private static final Set<PosixFilePermission> GROUP_OR_OTHERS = EnumSet.of(
            PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_EXECUTE,
            PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_EXECUTE);
    private static final SecureRandom RANDOM = new SecureRandom();

    private final byte[] bytes;

    private ClusterSecret(byte[] bytes) {
        this.bytes = bytes;
    }

    /**
     * Reads a secret file. Refuses one that group or others may access (anyone who can read it can join the
     * cluster and run code on every node) and one that is not exactly 64 hex characters (a trailing newline
     * is allowed).
     */
    public static ClusterSecret load(Path file) throws IOException {
        Set<PosixFilePermission> mode;
        try {
            mode = Files.getPosixFilePermissions(file);
        } catch (IOException e) {
            throw new IOException("cannot read cluster secret " + file + ": " + e, e);
        }
        Set<PosixFilePermission> loose = EnumSet.noneOf(PosixFilePermission.class);
        loose.addAll(mode);
        loose.retainAll(GROUP_OR_OTHERS);
        if (!loose.isEmpty()) {
            throw new IOException("cluster secret " + file + " has mode " + PosixFilePermissions.toString(mode)
                    + ": group or others can access it, so anyone on this machine could join the cluster; run `chmod 600 "
                    + file + "`");
        }
        byte[] raw;
        try (InputStream in = Files.newInputStream(file)) {
            raw = in.readNBytes(2 * BYTES + 3); // enough to see a too-long file without reading a huge one
        }
        String text = new String(raw, StandardCharsets.US_ASCII).strip();
        if (text.length() != 2 * BYTES || !text.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
            throw new IOException("cluster secret " + file + " must hold exactly " + 2 * BYTES
                    + " hex characters; regenerate it with `ssi cluster start` on a stopped cluster");
        }
        return new ClusterSecret(HexFormat.of().parseHex(text));
    }

    /** Makes a new random secret and writes it to file (mode 0600, atomically, replacing any old one). */
    public static ClusterSecret generate(Path file) throws IOException {
        byte[] b = new byte[BYTES];
        RANDOM.nextBytes(b);
        AtomicFiles.write(file, (HexFormat.of().formatHex(b) + "\n").getBytes(StandardCharsets.US_ASCII), OWNER_ONLY);
        return new ClusterSecret(b);
    }

    /** A secret held only in memory (tests, or a secret obtained by other means). */
    public static ClusterSecret of(byte[] bytes) {
        if (bytes.length != BYTES) throw new IllegalArgumentException("a cluster secret is " + BYTES + " bytes, got " + bytes.length);
        return new ClusterSecret(bytes.clone());
    }

    /** A copy of the 32 secret bytes. */
    public byte[] bytes() {
        return bytes.clone();
    }

    @Override
    public String toString() {
        return "ClusterSecret[hidden]";
    }
}
