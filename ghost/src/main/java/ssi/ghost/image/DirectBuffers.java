package ssi.ghost.image;

import java.nio.ByteBuffer;
import java.util.concurrent.BlockingDeque;
import java.util.concurrent.LinkedBlockingDeque;

/**
 * Spare 1 MiB direct buffers shared by the image writers and readers of this JVM, so that checkpoints
 * and restarts one after another reuse them: direct memory is freed only by a GC, and a JVM that keeps
 * allocating it runs into its direct-memory limit, where every allocation waits for a System.gc().
 * Keeps at most {@link #SPARE} buffers. Thread-safe.
 */
final class DirectBuffers {
    static final int SIZE = 1 << 20;
    private static final int SPARE = 16;
    // last in, first out: the buffer given back last is the likeliest to be in a cache still
    private static final BlockingDeque<ByteBuffer> spare = new LinkedBlockingDeque<>(SPARE);

    private DirectBuffers() {}

    /** A cleared buffer of {@link #SIZE} bytes, owned by the caller until {@link #give}. */
    static ByteBuffer take() {
        ByteBuffer b = spare.pollFirst();
        return b != null ? b.clear() : ByteBuffer.allocateDirect(SIZE);
    }

    /** Hands a buffer of {@link #take} back; the caller must not touch it any more. */
    static void give(ByteBuffer b) {
        if (b != null && b.isDirect() && b.capacity() == SIZE) spare.offerFirst(b);
    }
}
