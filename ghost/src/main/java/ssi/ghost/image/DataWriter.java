package ssi.ghost.image;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/**
 * Writes a raw data file (pages or file data) under a temporary name: a 12-byte header padded to
 * {@link ImageFormat#DATA_START}, then chunks appended back to back; each {@link #append} returns the
 * chunk's offset and the caller stores it with the chunk's CRC32C in a metadata record. {@link #commit}
 * fsyncs and renames. Owned by one thread.
 */
public final class DataWriter implements AutoCloseable {
    private final Path target, temp;
    private final FileChannel ch;
    private long end = ImageFormat.DATA_START;
    private boolean committed;

    private DataWriter(Path target, Path temp, FileChannel ch) {
        this.target = target;
        this.temp = temp;
        this.ch = ch;
    }

    public static DataWriter create(Path dir, String name, int magic, int gpid) throws IOException {
        Path temp = dir.resolve("." + name + ".tmp");
        FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE);
        ByteBuffer h = ByteBuffer.allocate(ImageFormat.DATA_START);
        h.putInt(magic).putShort((short) ImageFormat.VERSION).putShort((short) 0).putInt(gpid).clear();
        while (h.hasRemaining()) ch.write(h);
        return new DataWriter(dir.resolve(name), temp, ch);
    }

    /** A chunk that was appended: where, how long, its CRC32C. */
    public record Chunk(long offset, long length, int crc) {}

    /** Appends the buffer's remaining bytes. */
    public Chunk append(ByteBuffer data) throws IOException {
        long at = end;
        CRC32C c = new CRC32C();
        c.update(data.duplicate());
        long n = data.remaining();
        while (data.hasRemaining()) end += ch.write(data, end);
        return new Chunk(at, n, (int) c.getValue());
    }

    /**
     * Appends the buffer's remaining bytes as n chunks of lens[0..n) bytes, back to back, in one write:
     * many small chunks (the scattered pages of an incremental checkpoint) cost one system call.
     */
    public Chunk[] appendSlices(ByteBuffer data, int[] lens, int n) throws IOException {
        Chunk[] out = new Chunk[n];
        long at = end;
        int pos = data.position();
        for (int i = 0; i < n; i++) {
            CRC32C c = new CRC32C();
            c.update(data.duplicate().position(pos).limit(pos + lens[i]));
            out[i] = new Chunk(at, lens[i], (int) c.getValue());
            at += lens[i];
            pos += lens[i];
        }
        if (pos != data.limit()) throw new IllegalArgumentException("slices of " + (pos - data.position()) + " bytes, buffer of " + data.remaining());
        while (data.hasRemaining()) end += ch.write(data, end);
        return out;
    }

    /** Appends everything src has left, streamed in 1 MiB pieces (one chunk, one CRC32C over all of it). */
    public Chunk appendAll(java.nio.channels.ReadableByteChannel src) throws IOException {
        long at = end;
        CRC32C c = new CRC32C();
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        while (src.read(buf.clear()) > 0) {
            buf.flip();
            c.update(buf.duplicate());
            while (buf.hasRemaining()) end += ch.write(buf, end);
        }
        return new Chunk(at, end - at, (int) c.getValue());
    }

    public long bytes() { return end - ImageFormat.DATA_START; }

    public void commit(int ownerUid) throws IOException {
        ch.force(true);
        ch.close();
        Images.restrict(temp, ownerUid, false);
        Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        committed = true;
    }

    @Override
    public void close() throws IOException {
        if (committed) return;
        ch.close();
        Files.deleteIfExists(temp);
    }
}
