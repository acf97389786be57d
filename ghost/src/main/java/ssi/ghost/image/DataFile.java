package ssi.ghost.image;

import ssi.shim.ErrnoException;
import ssi.shim.RawFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/**
 * Reads a raw data file (pages-GPID.img, filedata-GPID.img): checks its header (magic, version, gpid)
 * and hands out chunks whose CRC32C matches the one their metadata record stored. Opened with
 * {@link #openWithFd} it also holds the file by a raw fd ({@link #daemonFd}) that the shim can copy
 * from (WRITEMEM_FD). Owned by one thread.
 */
public final class DataFile implements AutoCloseable {
    private final Path file;
    private final FileChannel ch;
    private final long size;
    private final RawFile raw;
    private ByteBuffer verifyBuf; // direct, made on first verify

    private DataFile(Path file, FileChannel ch, long size, RawFile raw) {
        this.file = file;
        this.ch = ch;
        this.size = size;
        this.raw = raw;
    }

    public static DataFile open(Path file, int magic, int gpid) throws IOException {
        FileChannel ch;
        try {
            ch = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new ImageException(file, 0, "missing, but the metadata refers to data in it");
        }
        return check(file, ch, magic, gpid, null);
    }

    /**
     * Like {@link #open}, holding the file by a raw fd as well: its channel reads that same open file,
     * so what {@link #read}/{@link #verify} check is what the shim copies from {@link #daemonFd}.
     */
    public static DataFile openWithFd(Path file, int magic, int gpid) throws IOException {
        RawFile raw;
        try {
            raw = RawFile.openRead(file);
        } catch (ErrnoException e) {
            if (e.errno() == 2) throw new ImageException(file, 0, "missing, but the metadata refers to data in it");
            if (e.errno() == 13) throw new java.nio.file.AccessDeniedException(file.toString());
            throw e;
        }
        FileChannel ch;
        try {
            ch = FileChannel.open(raw.procPath(), StandardOpenOption.READ);
        } catch (IOException | RuntimeException e) {
            raw.close();
            throw e;
        }
        return check(file, ch, magic, gpid, raw);
    }

    private static DataFile check(Path file, FileChannel ch, int magic, int gpid, RawFile raw) throws IOException {
        try {
            long size = ch.size();
            ByteBuffer h = ByteBuffer.allocate(ImageFormat.DATA_HEADER);
            ch.read(h, 0);
            MetaReader.checkHeader(file, h, magic, size);
            if (size < ImageFormat.DATA_HEADER) throw new ImageException(file, size, "truncated: shorter than its header");
            int g = h.getInt(8);
            if (g != gpid) throw new ImageException(file, 8, "holds data of process " + g + ", expected " + gpid);
            return new DataFile(file, ch, size, raw);
        } catch (IOException | RuntimeException e) {
            ch.close();
            if (raw != null) raw.close();
            throw e;
        }
    }

    private ByteBuffer verifyBuffer() {
        if (verifyBuf == null) verifyBuf = DirectBuffers.take();
        return verifyBuf;
    }

    /** The raw fd of {@link #openWithFd} (an fd of this JVM), or -1 when opened with {@link #open}. */
    public int daemonFd() {
        return raw == null ? -1 : raw.fd();
    }

    /** len bytes at offset, checked against crc; what names the chunk in an error. */
    public byte[] read(long offset, long len, int crc, String what) throws IOException {
        if (offset < ImageFormat.DATA_START || len < 0 || len > Integer.MAX_VALUE - 8) {
            throw new ImageException(file, offset, "bad chunk offset/length (" + offset + ", " + len + ") for " + what);
        }
        if (offset + len > size) {
            throw new ImageException(file, offset, "truncated: " + what + " needs " + len + " bytes here, the file ends at " + size);
        }
        ByteBuffer b = ByteBuffer.allocate((int) len);
        while (b.hasRemaining()) {
            if (ch.read(b, offset + b.position()) < 0) throw new ImageException(file, offset + b.position(), "truncated");
        }
        CRC32C c = new CRC32C();
        c.update(b.array());
        if ((int) c.getValue() != crc) throw mismatch(offset, what, crc, (int) c.getValue());
        return b.array();
    }

    /**
     * Checks the CRC32C of len bytes at offset without holding them: read in 1 MiB pieces into one direct
     * buffer (one copy, cache-warm for the hardware CRC32C). Not mapped: a file truncated under a mapping
     * would fault the JVM, and the image may belong to the caller.
     */
    public void verify(long offset, long len, int crc, String what) throws IOException {
        checkBounds(offset, len, what);
        CRC32C c = new CRC32C();
        ByteBuffer b = verifyBuffer();
        for (long done = 0; done < len; ) {
            b.clear().limit((int) Math.min(b.capacity(), len - done));
            int n = ch.read(b, offset + done);
            if (n <= 0) throw new ImageException(file, offset + done, "truncated");
            c.update(b.flip());
            done += n;
        }
        if ((int) c.getValue() != crc) throw mismatch(offset, what, crc, (int) c.getValue());
    }

    /** The chunk lies inside the data part of the file (what verify checks before reading). */
    public void checkBounds(long offset, long len, String what) throws IOException {
        if (offset < ImageFormat.DATA_START || len < 0) {
            throw new ImageException(file, offset, "bad chunk offset/length (" + offset + ", " + len + ") for " + what);
        }
        if (offset + len > size) {
            throw new ImageException(file, offset, "truncated: " + what + " needs " + len + " bytes here, the file ends at " + size);
        }
    }

    /** The error verify throws when a chunk's CRC32C is not the stored one. */
    public ImageException mismatch(long offset, String what, int stored, int computed) {
        return new ImageException(file, offset, String.format("checksum mismatch in %s (CRC32C stored %08x, computed %08x):"
                + " the image is corrupted", what, stored, computed));
    }

    @Override
    public void close() throws IOException {
        DirectBuffers.give(verifyBuf);
        verifyBuf = null;
        try {
            ch.close();
        } finally {
            if (raw != null) raw.close();
        }
    }
}
