package ssi.shim;

import jnr.ffi.LastError;
import jnr.ffi.LibraryLoader;
import jnr.ffi.annotations.SaveError;

/**
 * The few libc entry points the daemon calls itself (the rest goes through the shim), bound with
 * jnr-ffi on first use. Stateless; callable from any thread, and errno is per thread.
 */
final class Libc {
    static final long SYS_PIDFD_OPEN = 434, SYS_PIDFD_GETFD = 438;

    // public: jnr-ffi implements it in a class of its own class loader, which must be able to see it.
    public interface C {
        // glibc's syscall() is variadic, but it only moves registers (no va_arg), so a fixed
        // four-argument binding is safe on x86_64.
        @SaveError
        long syscall(long number, long a1, long a2, long a3);

        /**
         * syscall() with six arguments, bound to the same symbol (jnr-ffi does not overload by arity);
         * with one argument fewer jnr-ffi's call leaves the last one unset (seen under strace).
         */
        @SaveError
        long syscall6(long number, long a1, long a2, long a3, long a4, long a5, long a6);

        @SaveError
        int close(int fd);

        @SaveError
        int pipe2(@jnr.ffi.annotations.Out int[] fds, int flags);

        @SaveError
        long read(int fd, @jnr.ffi.annotations.Out byte[] buf, long count);

        @SaveError
        long recv(int fd, @jnr.ffi.annotations.Out byte[] buf, long len, int flags);

        @SaveError
        int fcntl(int fd, int cmd, int arg);

        @SaveError
        int socket(int domain, int type, int protocol);

        @SaveError
        int open(String path, int flags, int mode);

        @SaveError
        int poll(@jnr.ffi.annotations.In @jnr.ffi.annotations.Out byte[] fds, long nfds, int timeout);

        @SaveError
        long send(int fd, @jnr.ffi.annotations.In byte[] buf, long len, int flags);

        @SaveError
        long write(int fd, @jnr.ffi.annotations.In byte[] buf, long count);

        @SaveError
        int getsockopt(int fd, int level, int name, @jnr.ffi.annotations.Out int[] val,
                       @jnr.ffi.annotations.In @jnr.ffi.annotations.Out int[] len);

        @SaveError
        int setsockopt(int fd, int level, int name, @jnr.ffi.annotations.In int[] val, int len);

        @SaveError
        int sync_file_range(int fd, long offset, long nbytes, int flags);

        @SaveError
        long lseek(int fd, long offset, int whence);
    }

    private static final class Holder {
        static final C C = LibraryLoader.create(Libc.C.class).map("syscall6", "syscall").load("c");
        static final jnr.ffi.Runtime RUNTIME = jnr.ffi.Runtime.getRuntime(C);
    }

    private Libc() {}

    static C c() {
        return Holder.C;
    }

    /** errno of this thread's last call through {@link #c()}. */
    static int errno() {
        return LastError.getLastError(Holder.RUNTIME);
    }
}
