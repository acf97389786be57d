package ssi.shim;

import java.nio.file.Path;

/**
 * A file this JVM holds open by its own fd number (open(2), read only, close-on-exec), for the link
 * requests that name a daemon fd for the shim to take a copy of (WRITEMEM_FD): a Java channel does not
 * show its fd. {@link #procPath} names the same open file, so a channel opened on it reads the very
 * inode the shim will copy from; {@link #startWriteback} works on any fd of a file, so a read-only one
 * lets a writer start the write-back of what it wrote. Owned by whoever opened it; close it once.
 */
public final class RawFile implements AutoCloseable {
    private static final int O_RDONLY = 0, O_CLOEXEC = 02000000, SYNC_FILE_RANGE_WRITE = 2;

    private final int fd;
    private boolean closed;

    private RawFile(int fd) {
        this.fd = fd;
    }

    /** Opens path read only with this thread's fs identity (so a caller's fsuid switch applies). */
    public static RawFile openRead(Path path) throws ErrnoException {
        int fd = Libc.c().open(path.toString(), O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0)
            throw new ErrnoException(Libc.errno(), "open of " + path + " failed");
        return new RawFile(fd);
    }

    public int fd() {
        return fd;
    }

    /** /proc/self/fd/N: opening it opens the same file again (same inode), with a fresh permission check. */
    public Path procPath() {
        return Path.of("/proc/self/fd/" + fd);
    }

    /**
     * Starts writing [offset, offset + len) of the file to its disk without waiting for it
     * (sync_file_range SYNC_FILE_RANGE_WRITE): a hint that makes a later fsync shorter, no durability.
     */
    public void startWriteback(long offset, long len) throws ErrnoException {
        if (Libc.c().sync_file_range(fd, offset, len, SYNC_FILE_RANGE_WRITE) < 0)
            throw new ErrnoException(Libc.errno(), "sync_file_range of fd " + fd + " failed");
    }

    @Override
    public synchronized void close() throws ErrnoException {
        if (closed)
            return;
        closed = true;
        if (Libc.c().close(fd) < 0)
            throw new ErrnoException(Libc.errno(), "close of fd " + fd + " failed");
    }
}
