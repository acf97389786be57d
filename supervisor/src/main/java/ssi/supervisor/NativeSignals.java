package ssi.supervisor;

import jnr.ffi.LastError;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;
import jnr.ffi.annotations.In;

/**
 * The signal system calls the daemon makes itself: kill(2), rt_sigqueueinfo(2) and rt_tgsigqueueinfo(2)
 * (the latter two through syscall(2): glibc has no wrapper). Every method returns 0 or a positive errno.
 * Stateless after loading; any thread may call it (errno is per thread).
 */
final class NativeSignals {
    /** x86_64 syscall numbers. */
    private static final long SYS_RT_SIGQUEUEINFO = 129, SYS_RT_TGSIGQUEUEINFO = 297;
    /** sizeof(siginfo_t) on Linux. */
    static final int SIGINFO_SIZE = 128;

    /** The libc functions used; syscall(2) is variadic, but on x86_64 integer varargs travel like fixed ones. */
    public interface LibC {
        int kill(int pid, int sig);

        long syscall(long nr, long a0, long a1, @In byte[] a2);

        long syscall(long nr, long a0, long a1, long a2, @In byte[] a3);
    }

    private final LibC libc;
    private final Runtime runtime;

    NativeSignals() {
        libc = LibraryLoader.create(LibC.class).load("c");
        runtime = Runtime.getRuntime(libc);
    }

    int kill(int pid, int sig) {
        return libc.kill(pid, sig) == 0 ? 0 : LastError.getLastError(runtime);
    }

    /** Queues sig with this siginfo (SIGINFO_SIZE bytes) to the thread group pid. */
    int rtSigqueueinfo(int pid, int sig, byte[] siginfo) {
        check(siginfo);
        return libc.syscall(SYS_RT_SIGQUEUEINFO, pid, sig, siginfo) == 0 ? 0 : LastError.getLastError(runtime);
    }

    /** Queues sig with this siginfo to thread tid of thread group tgid. */
    int rtTgsigqueueinfo(int tgid, int tid, int sig, byte[] siginfo) {
        check(siginfo);
        return libc.syscall(SYS_RT_TGSIGQUEUEINFO, tgid, tid, sig, siginfo) == 0 ? 0 : LastError.getLastError(runtime);
    }

    private static void check(byte[] siginfo) {
        if (siginfo.length != SIGINFO_SIZE) throw new IllegalArgumentException("siginfo must be " + SIGINFO_SIZE + " bytes");
    }
}
