package ssi.shim;

import java.io.IOException;

/**
 * A failed system call or shim request, with the Linux errno it failed with (positive, e.g. 3 for ESRCH),
 * so callers can tell "the tracee is gone" from "the address is bad" without parsing messages.
 * Immutable; thrown on whichever thread saw the failure.
 */
public final class ErrnoException extends IOException {
    private static final long serialVersionUID = 1L;

    // x86_64 Linux numbering (asm-generic/errno-base.h, errno.h): the ones a tracer meets.
    private static final String[] NAMES = new String[134];
    static {
        String[] pairs = {
            "1", "EPERM", "2", "ENOENT", "3", "ESRCH", "4", "EINTR", "5", "EIO", "6", "ENXIO", "7", "E2BIG",
            "9", "EBADF", "10", "ECHILD", "11", "EAGAIN", "12", "ENOMEM", "13", "EACCES", "14", "EFAULT",
            "16", "EBUSY", "17", "EEXIST", "19", "ENODEV", "20", "ENOTDIR", "21", "EISDIR", "22", "EINVAL",
            "23", "ENFILE", "24", "EMFILE", "28", "ENOSPC", "32", "EPIPE", "34", "ERANGE", "38", "ENOSYS",
            "71", "EPROTO", "90", "EMSGSIZE", "93", "EPROTONOSUPPORT", "95", "EOPNOTSUPP", "104", "ECONNRESET",
            "107", "ENOTCONN", "110", "ETIMEDOUT", "111", "ECONNREFUSED", "114", "EALREADY",
        };
        for (int i = 0; i < pairs.length; i += 2)
            NAMES[Integer.parseInt(pairs[i])] = pairs[i + 1];
    }

    private final int errno;

    /** errno: the positive error number; message: what failed, on which process and fd, for a person. */
    public ErrnoException(int errno, String message) {
        super(message + ": " + describe(errno));
        this.errno = errno;
    }

    /** cause seen from the caller: its errno, the caller's context and stack (cause came from another thread). */
    ErrnoException(String context, ErrnoException cause) {
        super(context + ": " + cause.getMessage(), cause);
        this.errno = cause.errno;
    }

    /** The positive errno value. */
    public int errno() {
        return errno;
    }

    /** "ESRCH (errno 3)", or "errno N" for a number without a name here. */
    public static String describe(int errno) {
        String name = errno > 0 && errno < NAMES.length ? NAMES[errno] : null;
        return name != null ? name + " (errno " + errno + ")" : "errno " + errno;
    }
}
