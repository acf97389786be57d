package ssi.ghost.image;

import ssi.shim.ErrnoException;
import ssi.shim.RawFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.IntFunction;
import java.util.zip.CRC32C;

/**
 * Writes a raw data file (pages or file data) under a temporary name: a 12-byte header padded to
 * {@link ImageFormat#DATA_START}, then chunks appended back to back; each append returns the chunk's
 * file, offset and CRC32C and the caller stores them in a metadata record. {@link #commit} renames it
 * into place, fsync'd first when the writer is durable.
 *
 * <p>A striped writer (a checkpoint's pages, {@link #createStriped}) writes several such files, its
 * stripes, so that several threads can write at once: a filesystem serializes the writes into one file
 * (the inode lock), and the copy into the filesystem is most of a checkpoint's time. A stripe nothing
 * was written to is removed at commit instead of renamed into place.
 *
 * <p>Bulk data takes {@link #buffer} (1 MiB direct buffers, reused across checkpoints) and {@link
 * #writeSlices}. A durable writer starts the write-back of every {@link #WRITEBACK_STEP} bytes a stripe
 * got (sync_file_range), so the disk works while the dump goes on and the fsync of commit has little left
 * to wait for.
 *
 * <p>Data read before the writer existed (an incremental checkpoint's written pages, copied while the
 * image directory is not made yet) comes in buffers of {@link #spareBuffer}: {@link #hold} gives each its
 * place at the end of a stripe and keeps it; {@link #writeHeld} (or {@link #commit}, at the latest) writes
 * it there, so a checkpoint can let the application go before that copy into the filesystem.
 *
 * <p>Thread-safety: {@link #buffer}, {@link #release} and {@link #writeSlices} may be called from several
 * threads as long as no two write the same stripe at once; everything else belongs to the owning thread
 * and follows every write (a thread's writes are done before it hands its results over).
 */
public final class DataWriter implements AutoCloseable {
    /** Capacity of the buffers of {@link #buffer}. */
    public static final int BUFFER_SIZE = DirectBuffers.SIZE;
    static final long WRITEBACK_STEP = 32L << 20;

    /** One file of the writer. */
    private static final class Stripe {
        final int index;
        final Path target, temp;
        final FileChannel ch;
        final RawFile writeback; // read-only handle for sync_file_range; null when it could not be had
        long end = ImageFormat.DATA_START;
        long kicked = ImageFormat.DATA_START;

        Stripe(int index, Path target, Path temp, FileChannel ch, RawFile writeback) {
            this.index = index;
            this.target = target;
            this.temp = temp;
            this.ch = ch;
            this.writeback = writeback;
        }

        void closeWriteback() {
            if (writeback == null) return;
            try {
                writeback.close();
            } catch (ErrnoException ignored) {
                // a read-only fd: nothing was pending on it
            }
        }
    }

    private final Stripe[] stripes;
    private final boolean durable;
    private final BlockingQueue<ByteBuffer> free = new LinkedBlockingQueue<>();
    /** Every buffer of {@link #buffer} not yet given back to {@link DirectBuffers}. */
    private final List<ByteBuffer> made = new ArrayList<>();
    private boolean committed;
    /** Buffers of {@link #hold} not written yet, with the stripe and offset each goes to. */
    private final List<Held> held = new ArrayList<>();

    private record Held(Stripe stripe, long at, ByteBuffer data) {}

    private DataWriter(Stripe[] stripes, boolean durable) {
        this.stripes = stripes;
        this.durable = durable;
    }

    public static DataWriter create(Path dir, String name, int magic, int gpid) throws IOException {
        return create(dir, name, magic, gpid, true);
    }

    /**
     * A writer for dir/name. durable: {@link #commit} fsyncs before the rename, and the write-back is
     * started as the file grows; otherwise the file is left to the kernel's write-back (and to the
     * chunks' CRC32C, which a restart checks, should a crash cut it short).
     */
    public static DataWriter create(Path dir, String name, int magic, int gpid, boolean durable) throws IOException {
        return createStriped(dir, k -> name, 1, magic, gpid, durable);
    }

    /**
     * A writer of n stripes, dir/names.apply(0) .. dir/names.apply(n - 1), every one made now (so under
     * the caller's file-system identity).
     */
    public static DataWriter createStriped(Path dir, IntFunction<String> names, int n, int magic, int gpid, boolean durable)
            throws IOException {
        Stripe[] made = new Stripe[n];
        DataWriter w = new DataWriter(made, durable);
        try {
            for (int k = 0; k < n; k++) made[k] = open(k, dir, names.apply(k), magic, gpid, durable);
        } catch (IOException | RuntimeException e) {
            try {
                w.close();
            } catch (IOException | RuntimeException ce) {
                e.addSuppressed(ce);
            }
            throw e;
        }
        return w;
    }

    private static Stripe open(int index, Path dir, String name, int magic, int gpid, boolean durable) throws IOException {
        Path temp = dir.resolve("." + name + ".tmp");
        FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE);
        RawFile wb = null;
        try {
            ByteBuffer h = ByteBuffer.allocate(ImageFormat.DATA_START);
            h.putInt(magic).putShort((short) ImageFormat.VERSION).putShort((short) 0).putInt(gpid).clear();
            while (h.hasRemaining()) ch.write(h);
            if (durable) {
                try {
                    wb = RawFile.openRead(temp);
                } catch (ErrnoException | RuntimeException | LinkageError e) {
                    wb = null; // only a speed-up: commit's fsync is what makes the file durable
                }
            }
        } catch (IOException | RuntimeException e) {
            ch.close();
            Files.deleteIfExists(temp);
            throw e;
        }
        return new Stripe(index, dir.resolve(name), temp, ch, wb);
    }

    /** How many stripes (files) this writer has. */
    public int stripes() {
        return stripes.length;
    }

    /** A chunk that was appended: in which stripe (0 for a writer of one file), where, how long, its CRC32C. */
    public record Chunk(int file, long offset, long length, int crc) {}

    /** Appends the buffer's remaining bytes to the first stripe. */
    public Chunk append(ByteBuffer data) throws IOException {
        Stripe s = stripes[0];
        long at = s.end;
        CRC32C c = new CRC32C();
        c.update(data.duplicate());
        long n = data.remaining();
        write(s, data);
        return new Chunk(0, at, n, (int) c.getValue());
    }

    /** An empty buffer of {@link #BUFFER_SIZE} bytes to fill and pass to {@link #writeSlices} or {@link #release}. */
    public ByteBuffer buffer() {
        ByteBuffer b = free.poll();
        if (b == null) {
            b = DirectBuffers.take();
            synchronized (made) {
                made.add(b);
            }
        }
        return b.clear();
    }

    /** Appends the remaining bytes of b, a buffer of {@link #buffer}, to stripe k, and takes b back. */
    public Chunk writeBuffer(int k, ByteBuffer b) throws IOException {
        return writeSlices(k, b, new int[] {b.remaining()}, 1)[0];
    }

    /**
     * Appends the remaining bytes of b, a buffer of {@link #buffer}, to stripe k as n chunks of
     * lens[0..n) bytes back to back (one CRC32C each, one write for all), and takes b back. No other
     * thread may write stripe k meanwhile.
     */
    public Chunk[] writeSlices(int k, ByteBuffer b, int[] lens, int n) throws IOException {
        try {
            Stripe s = stripes[k];
            checkSlices(b, lens, n);
            Chunk[] out = atEnd(s, lens, sliceCrcs(b, lens, n), n);
            write(s, b);
            return out;
        } finally {
            free.add(b);
        }
    }

    /** The CRC32C of each of the n slices of lens[0..n) bytes that follow one another in b from its position. */
    public static int[] sliceCrcs(ByteBuffer b, int[] lens, int n) {
        int[] crcs = new int[n];
        for (int i = 0, pos = b.position(); i < n; pos += lens[i], i++) {
            CRC32C c = new CRC32C();
            c.update(b.duplicate().position(pos).limit(pos + lens[i]));
            crcs[i] = (int) c.getValue();
        }
        return crcs;
    }

    /** Refuses slices that are not exactly b's remaining bytes. */
    private static void checkSlices(ByteBuffer b, int[] lens, int n) {
        long total = 0;
        for (int i = 0; i < n; i++) total += lens[i];
        if (total != b.remaining()) throw new IllegalArgumentException("slices of " + total + " bytes, buffer of " + b.remaining());
    }

    /** The chunks of n slices of lens[0..n) bytes, CRC32Cs crcs[0..n), laid back to back from the end of stripe s. */
    private static Chunk[] atEnd(Stripe s, int[] lens, int[] crcs, int n) {
        Chunk[] out = new Chunk[n];
        long at = s.end;
        for (int i = 0; i < n; i++) {
            out[i] = new Chunk(s.index, at, lens[i], crcs[i]);
            at += lens[i];
        }
        return out;
    }

    /** A cleared 1 MiB direct buffer for data to {@link #hold} later, or to hand back with {@link #giveBack}. */
    public static ByteBuffer spareBuffer() {
        return DirectBuffers.take();
    }

    /** Hands back a buffer of {@link #spareBuffer} that is not to be held; the caller must not touch it any more. */
    public static void giveBack(ByteBuffer b) {
        DirectBuffers.give(b);
    }

    /**
     * Gives the remaining bytes of b (a buffer of {@link #spareBuffer}) their place at the end of stripe k
     * as n chunks of lens[0..n) bytes back to back whose CRC32Cs are crcs[0..n), and keeps b to write there
     * at {@link #writeHeld}; takes b over. The caller of {@link #writeSlices} for stripe k only.
     */
    public Chunk[] hold(int k, ByteBuffer b, int[] lens, int[] crcs, int n) {
        Stripe s = stripes[k];
        try {
            checkSlices(b, lens, n);
        } catch (IllegalArgumentException e) {
            DirectBuffers.give(b);
            throw e;
        }
        Chunk[] out = atEnd(s, lens, crcs, n);
        synchronized (held) {
            held.add(new Held(s, s.end, b));
        }
        s.end += b.remaining();
        return out;
    }

    /** Writes what {@link #hold} kept, each buffer at its place, and gives the buffers back. */
    public void writeHeld() throws IOException {
        List<Held> todo;
        synchronized (held) {
            todo = new ArrayList<>(held);
            held.clear();
        }
        try {
            for (int i = 0; i < todo.size(); i++) {
                Held h = todo.get(i);
                ByteBuffer b = h.data();
                long at = h.at();
                while (b.hasRemaining()) at += h.stripe().ch.write(b, at);
                DirectBuffers.give(b);
                todo.set(i, null);
            }
        } finally {
            for (Held h : todo) if (h != null) DirectBuffers.give(h.data());
        }
    }

    /** b's remaining bytes at the end of s; starts the write-back of what a durable writer wrote every so often. */
    private void write(Stripe s, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) s.end += s.ch.write(b, s.end);
        if (s.writeback != null && s.end - s.kicked >= WRITEBACK_STEP) {
            s.writeback.startWriteback(s.kicked, s.end - s.kicked);
            s.kicked = s.end;
        }
    }

    /** Gives back a buffer from {@link #buffer} that is not to be written. */
    public void release(ByteBuffer b) {
        free.add(b);
    }

    /** Appends everything src has left to the first stripe, streamed in 1 MiB pieces (one chunk, one CRC32C). */
    public Chunk appendAll(java.nio.channels.ReadableByteChannel src) throws IOException {
        Stripe s = stripes[0];
        long at = s.end;
        CRC32C c = new CRC32C();
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        while (src.read(buf.clear()) > 0) {
            buf.flip();
            c.update(buf.duplicate());
            write(s, buf);
        }
        return new Chunk(0, at, s.end - at, (int) c.getValue());
    }

    /** Bytes of data appended, over every stripe. */
    public long bytes() {
        long n = 0;
        for (Stripe s : stripes) n += s.end - ImageFormat.DATA_START;
        return n;
    }

    /**
     * Puts every stripe that holds data in place (fsync'd first when durable; the first stripe always,
     * even empty) and removes the others.
     */
    public void commit(int ownerUid) throws IOException {
        writeHeld();
        returnBuffers();
        for (Stripe s : stripes) {
            boolean keep = s.index == 0 || s.end > ImageFormat.DATA_START;
            if (keep && durable) s.ch.force(true);
            s.ch.close();
            s.closeWriteback();
            if (!keep) {
                Files.deleteIfExists(s.temp);
                Files.deleteIfExists(s.target); // a stripe of an older image in the same place
                continue;
            }
            Images.restrict(s.temp, ownerUid, false);
            Files.move(s.temp, s.target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
        committed = true;
    }

    /** Gives the buffers back to the spares (every thread is done with them by now). */
    private void returnBuffers() {
        synchronized (held) {
            for (Held h : held) DirectBuffers.give(h.data());
            held.clear();
        }
        free.clear();
        synchronized (made) {
            for (ByteBuffer b : made) DirectBuffers.give(b);
            made.clear();
        }
    }

    @Override
    public void close() throws IOException {
        if (committed) return;
        returnBuffers();
        IOException first = null;
        for (Stripe s : stripes) {
            if (s == null) continue;
            s.closeWriteback();
            try {
                s.ch.close();
                Files.deleteIfExists(s.temp);
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }
}
