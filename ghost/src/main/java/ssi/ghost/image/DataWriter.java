package ssi.ghost.image;

import ssi.shim.ErrnoException;
import ssi.shim.RawFile;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.zip.CRC32C;

/**
 * Writes a raw data file (pages or file data) under a temporary name: a 12-byte header padded to
 * {@link ImageFormat#DATA_START}, then chunks appended back to back; each append returns the chunk's
 * offset and the caller stores it with the chunk's CRC32C in a metadata record. {@link #commit}
 * renames it into place, fsync'd first when the writer is durable.
 *
 * <p>Bulk data (a checkpoint's pages) takes the pipelined path: the caller fills a {@link #buffer},
 * {@link #appendBuffer} checksums it and hands it to a writer thread ("image-writer", started on first
 * use), so reading the next chunk overlaps writing this one (when that thread has a buffer waiting
 * already, the caller writes this one itself: the copy into the filesystem is shared); a durable writer starts the write-back of
 * every {@link #WRITEBACK_STEP} bytes it wrote (sync_file_range), so the disk works while the dump goes on
 * and the fsync of commit has little left to wait for. A write error surfaces at the next call, at the
 * latest at commit.
 *
 * <p>Owned by one thread (plus its writer thread, which touches only the channel, the write-back
 * handle and the buffers it is given; both write to the channel at their own offsets).
 */
public final class DataWriter implements AutoCloseable {
    /** Capacity of the buffers of the pipelined path. */
    public static final int BUFFER_SIZE = DirectBuffers.SIZE;
    private static final int BUFFERS = 4;
    static final long WRITEBACK_STEP = 32L << 20;

    private final Path target, temp;
    private final FileChannel ch;
    private final RawFile writeback; // read-only handle for sync_file_range; null when it could not be had
    private long end = ImageFormat.DATA_START;
    private boolean committed;
    private final boolean durable;

    private record Job(ByteBuffer data, long at) {}
    private static final Job STOP = new Job(null, 0);
    private final BlockingQueue<ByteBuffer> free = new ArrayBlockingQueue<>(BUFFERS);
    private final BlockingQueue<Job> queue = new LinkedBlockingQueue<>();
    private int buffersMade;
    private Thread writer;
    private int queued; // guarded by queue: jobs handed over and not finished
    private volatile IOException failed;
    private long kicked = ImageFormat.DATA_START; // writer thread only

    private DataWriter(Path target, Path temp, FileChannel ch, RawFile writeback, boolean durable) {
        this.durable = durable;
        this.target = target;
        this.temp = temp;
        this.ch = ch;
        this.writeback = writeback;
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
            throw e;
        }
        return new DataWriter(dir.resolve(name), temp, ch, wb, durable);
    }

    /** A chunk that was appended: where, how long, its CRC32C. */
    public record Chunk(long offset, long length, int crc) {}

    /** Appends the buffer's remaining bytes (written before it returns). */
    public Chunk append(ByteBuffer data) throws IOException {
        checkFailed();
        long at = end;
        CRC32C c = new CRC32C();
        c.update(data.duplicate());
        long n = data.remaining();
        while (data.hasRemaining()) end += ch.write(data, end);
        return new Chunk(at, n, (int) c.getValue());
    }

    /**
     * An empty buffer of {@link #BUFFER_SIZE} bytes to fill and pass to {@link #appendBuffer}; waits while
     * every buffer is still being written.
     */
    public ByteBuffer buffer() throws IOException {
        checkFailed();
        ByteBuffer b = free.poll();
        if (b == null && buffersMade < BUFFERS) {
            buffersMade++;
            b = DirectBuffers.take();
        }
        if (b == null) {
            try {
                b = free.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while waiting to write " + temp);
            }
        }
        return b.clear();
    }

    /**
     * Appends the remaining bytes of b, a buffer from {@link #buffer}, which the writer thread now owns:
     * the checksum is taken here, the write happens there.
     */
    public Chunk appendBuffer(ByteBuffer b) throws IOException {
        checkFailed();
        long at = end;
        CRC32C c = new CRC32C();
        c.update(b.duplicate());
        long n = b.remaining();
        end += n;
        handOver(b, at);
        return new Chunk(at, n, (int) c.getValue());
    }

    /**
     * As {@link #appendBuffer}, for n chunks of lens[0..n) bytes back to back in b (a buffer from {@link
     * #buffer}): one checksum each, one write for all of them (on the writer thread).
     */
    public Chunk[] appendBufferSlices(ByteBuffer b, int[] lens, int n) throws IOException {
        checkFailed();
        Chunk[] out = new Chunk[n];
        long at = end;
        int pos = b.position();
        for (int i = 0; i < n; i++) {
            CRC32C c = new CRC32C();
            c.update(b.duplicate().position(pos).limit(pos + lens[i]));
            out[i] = new Chunk(at, lens[i], (int) c.getValue());
            at += lens[i];
            pos += lens[i];
        }
        if (pos != b.limit()) throw new IllegalArgumentException("slices of " + (pos - b.position()) + " bytes, buffer of " + b.remaining());
        end = at;
        handOver(b, out[0].offset());
        return out;
    }

    /**
     * b's remaining bytes go to the file at offset at: written by the writer thread, or here when it has
     * one more buffer waiting behind the one it writes. The copy into the filesystem is most of the time
     * of a checkpoint's pages; the caller, which reads the process's memory and checksums it, would
     * otherwise wait on it: so both threads write, the writer thread always has work, and the two cores
     * of a node share the copy.
     */
    private void handOver(ByteBuffer b, long at) throws IOException {
        boolean here;
        synchronized (queue) {
            here = queued >= 2;
            if (!here) queued++;
        }
        if (here) {
            try {
                int p0 = b.position();
                while (b.hasRemaining()) ch.write(b, at + b.position() - p0);
            } finally {
                free.add(b);
            }
            return;
        }
        if (writer == null) {
            writer = Thread.ofPlatform().name("image-writer").daemon(true).start(this::writeLoop);
        }
        queue.add(new Job(b, at));
    }

    /** Gives back a buffer from {@link #buffer} that is not to be written. */
    public void release(ByteBuffer b) {
        free.add(b);
    }

    private void writeLoop() {
        while (true) {
            Job j;
            try {
                j = queue.take();
            } catch (InterruptedException e) {
                return; // nobody interrupts it; close() stops it with STOP
            }
            if (j == STOP) return;
            try {
                if (failed == null) {
                    long to = j.at() + j.data().remaining();
                    int p0 = j.data().position();
                    while (j.data().hasRemaining()) ch.write(j.data(), j.at() + j.data().position() - p0);
                    if (writeback != null && to - kicked >= WRITEBACK_STEP) {
                        writeback.startWriteback(kicked, to - kicked);
                        kicked = to;
                    }
                }
            } catch (IOException e) {
                failed = e;
            } finally {
                free.add(j.data());
                synchronized (queue) {
                    queued--;
                    queue.notifyAll();
                }
            }
        }
    }

    /** Waits until every handed-over buffer is written. */
    private void drain() throws IOException {
        synchronized (queue) {
            while (queued > 0) {
                try {
                    queue.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new InterruptedIOException("interrupted while waiting for the writes to " + temp);
                }
            }
        }
        checkFailed();
    }

    private void checkFailed() throws IOException {
        IOException e = failed;
        if (e != null) throw new IOException("writing " + temp + " failed: " + e.getMessage(), e);
    }

    /** Appends everything src has left, streamed in 1 MiB pieces (one chunk, one CRC32C over all of it). */
    public Chunk appendAll(java.nio.channels.ReadableByteChannel src) throws IOException {
        checkFailed();
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
        drain();
        stopWriter();
        returnBuffers();
        if (durable) ch.force(true);
        ch.close();
        closeWriteback();
        Images.restrict(temp, ownerUid, false);
        Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        committed = true;
    }

    private void stopWriter() {
        if (writer == null) return;
        queue.add(STOP);
        boolean interrupted = false;
        while (true) {
            try {
                writer.join();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        writer = null;
        if (interrupted) Thread.currentThread().interrupt();
    }

    /** With the writer stopped, every buffer not lost to an exception is back in free. */
    private void returnBuffers() {
        for (ByteBuffer b; (b = free.poll()) != null; ) DirectBuffers.give(b);
    }

    private void closeWriteback() {
        if (writeback == null) return;
        try {
            writeback.close();
        } catch (ErrnoException ignored) {
            // a read-only fd: nothing was pending on it
        }
    }

    @Override
    public void close() throws IOException {
        if (committed) return;
        stopWriter();
        returnBuffers();
        closeWriteback();
        ch.close();
        Files.deleteIfExists(temp);
    }
}
