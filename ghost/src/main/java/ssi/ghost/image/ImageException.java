package ssi.ghost.image;

import java.io.IOException;
import java.nio.file.Path;

/**
 * An image that cannot be read as written: wrong magic, wrong version, truncated, failed checksum, or a
 * record that does not parse. The message names the file and the byte offset, so a person can tell a
 * damaged copy from a bug. Immutable; thrown by the reader on the caller's thread.
 */
public final class ImageException extends IOException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final long offset;

    public ImageException(Path file, long offset, String what) {
        super(file + " at offset " + offset + ": " + what);
        this.file = file;
        this.offset = offset;
    }

    public Path file() { return file; }

    public long offset() { return offset; }
}
