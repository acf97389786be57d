package ssi.ghost.restore;

import java.io.IOException;

/**
 * A restore that could not be completed: which step, on which process, and the errno the kernel gave
 * (positive, 0 when the failure is not a syscall's). The stub is killed before this is thrown, so the
 * pid is free again. Immutable.
 */
public final class RestoreException extends IOException {
    private static final long serialVersionUID = 1L;
    private final int errno;

    public RestoreException(int errno, String message) {
        super(message + (errno > 0 ? ": " + ssi.shim.ErrnoException.describe(errno) : ""));
        this.errno = errno;
    }

    /** A shim request that failed with an errno; its message already names both. */
    public RestoreException(ssi.shim.ErrnoException cause) {
        super(cause.getMessage(), cause);
        this.errno = cause.errno();
    }

    public RestoreException(String message, Throwable cause) {
        super(message + ": " + cause.getMessage(), cause);
        this.errno = cause instanceof RestoreException r ? r.errno : 0;
    }

    /** The positive errno of the failed syscall, or 0. */
    public int errno() {
        return errno;
    }
}
