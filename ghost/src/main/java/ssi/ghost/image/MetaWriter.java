package ssi.ghost.image;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes one metadata file of an image: the file header, then framed records (u16 type, u32 length,
 * payload, u32 CRC32C), then END with the record count. Everything goes to a hidden temporary name
 * first; {@link #commit} sets mode 0600 and the owner and renames it into place (fsync'd first when the
 * image is to be durable), so a crash leaves either no file or a whole one, or, without the fsync, at
 * worst a file whose missing tail or records the frame checks and END count reject. Owned by one thread
 * (the checkpoint's).
 */
public final class MetaWriter implements AutoCloseable {
    /** Encodes one record's payload. */
    @FunctionalInterface
    public interface Body { void write(DataOutputStream out) throws IOException; }

    private final Path target, temp;
    private final FileChannel ch;
    private int records;
    private boolean committed;

    private MetaWriter(Path target, Path temp, FileChannel ch) {
        this.target = target;
        this.temp = temp;
        this.ch = ch;
    }

    public static MetaWriter create(Path dir, String name, int magic) throws IOException {
        Path temp = dir.resolve("." + name + ".tmp");
        FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE);
        MetaWriter w = new MetaWriter(dir.resolve(name), temp, ch);
        ByteBuffer h = ByteBuffer.allocate(ImageFormat.FILE_HEADER).putInt(magic).putShort((short) ImageFormat.VERSION)
                .putShort((short) 0).flip();
        w.writeFully(h);
        return w;
    }

    public void record(int type, Body body) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(256);
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            body.write(out);
        }
        writeFramed(ch, type, bytes.toByteArray());
        records++;
    }

    /** Frames payload as a record and writes it at the channel's position. */
    static void writeFramed(FileChannel ch, int type, byte[] payload) throws IOException {
        if (payload.length > ImageFormat.MAX_RECORD)
            throw new IOException(ImageFormat.recordName(type) + " record of " + payload.length + " bytes is too big");
        ByteBuffer b = ByteBuffer.allocate(ImageFormat.REC_HEADER + payload.length + ImageFormat.REC_TRAILER);
        b.putShort((short) type).putInt(payload.length).put(payload);
        b.putInt(ImageFormat.crc32c(b.array(), 0, b.position()));
        b.flip();
        while (b.hasRemaining()) ch.write(b);
    }

    /** END, fsync, mode 0600, owner uid, rename into place. */
    public void commit(int ownerUid) throws IOException {
        commit(ownerUid, true);
    }

    /** END, fsync when durable, mode 0600, owner uid, rename into place. */
    public void commit(int ownerUid, boolean durable) throws IOException {
        int count = records;
        record(ImageFormat.REC_END, out -> out.writeInt(count));
        if (durable) ch.force(true);
        ch.close();
        Images.restrict(temp, ownerUid, false);
        Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        committed = true;
    }

    private void writeFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    /** Without a commit: drops the temporary file. */
    @Override
    public void close() {
        if (committed) return;
        try {
            ch.close();
            Files.deleteIfExists(temp);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove the unfinished " + temp, e);
        }
    }

}
