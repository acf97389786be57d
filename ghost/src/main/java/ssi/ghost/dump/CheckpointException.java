package ssi.ghost.dump;

import java.io.IOException;

/**
 * A checkpoint that was refused or failed, with the errno the control protocol answers (EPERM for a
 * permission rule, ESRCH for a vanished process, EOPNOTSUPP for an object the image cannot hold, EIO
 * for anything else) and a message naming the process and object. Nothing final was written when
 * this is thrown. Immutable.
 */
public final class CheckpointException extends IOException {
    private static final long serialVersionUID = 1L;

    public static final int EPERM = 1, ENOENT = 2, ESRCH = 3, EIO = 5, EEXIST = 17, EINVAL = 22, EOPNOTSUPP = 95;

    private final int errno;

    public CheckpointException(int errno, String message) {
        super(message);
        this.errno = errno;
    }

    public CheckpointException(int errno, String message, Throwable cause) {
        super(message, cause);
        this.errno = errno;
    }

    public int errno() { return errno; }

    static CheckpointException unsupported(String message) {
        return new CheckpointException(EOPNOTSUPP, message);
    }
}
