package ssi.ghost.dump;

import ssi.shim.Tracee;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A page mapped into a stopped process by an injected mmap, where injected syscalls that report
 * through a pointer (rt_sigaction, prlimit64, sigaltstack, getitimer) write their answers for us to
 * read back; {@link #close} unmaps it, so the process's address space ends as it was. Created and
 * closed by the checkpoint's thread, before the memory map is read (so the page is never in the image).
 */
final class Scratch implements AutoCloseable {
    static final int SIZE = 4096;
    private static final int SYS_MMAP = 9, SYS_MUNMAP = 11;
    private static final int PROT_RW = 3, MAP_PRIVATE_ANON = 0x22;

    private final Tracee tracee;
    final long addr;
    private final int pid;

    private Scratch(Tracee tracee, long addr, int pid) {
        this.tracee = tracee;
        this.addr = addr;
        this.pid = pid;
    }

    static Scratch map(Tracee t, int pid) throws IOException {
        long a = t.syscall(SYS_MMAP, 0, SIZE, PROT_RW, MAP_PRIVATE_ANON, -1, 0);
        if (isError(a)) {
            throw new CheckpointException(CheckpointException.EIO, "cannot map a scratch page in process " + pid
                    + " (injected mmap failed with errno " + -a + ")");
        }
        return new Scratch(t, a, pid);
    }

    /** Runs a syscall in thread t of the process; a failure names what it was for. */
    long call(Tracee t, String what, int nr, long... args) throws IOException {
        long r = t.syscall(nr, args);
        if (isError(r)) {
            throw new CheckpointException(CheckpointException.EIO, "process " + pid + " thread " + t.tid() + ": injected "
                    + what + " failed with errno " + -r);
        }
        return r;
    }

    /**
     * Runs the same syscall with each argument list in thread t, pipelined ({@link Tracee#syscalls}); a
     * failure names what it was for (what.apply(i) for the i-th call).
     */
    void callAll(Tracee t, java.util.function.IntFunction<String> what, int nr, long[][] args) throws IOException {
        int[] nrs = new int[args.length];
        java.util.Arrays.fill(nrs, nr);
        long[] r = t.syscalls(nrs, args);
        for (int i = 0; i < r.length; i++) {
            if (isError(r[i])) {
                throw new CheckpointException(CheckpointException.EIO, "process " + pid + " thread " + t.tid() + ": injected "
                        + what.apply(i) + " failed with errno " + -r[i]);
            }
        }
    }

    /** len bytes of the scratch page, little endian. */
    ByteBuffer read(int len) throws IOException {
        return ByteBuffer.wrap(tracee.read(addr, len)).order(ByteOrder.LITTLE_ENDIAN);
    }

    static boolean isError(long raw) {
        return raw < 0 && raw >= -4095;
    }

    @Override
    public void close() throws IOException {
        long r = tracee.syscall(SYS_MUNMAP, addr, SIZE);
        if (isError(r)) {
            throw new CheckpointException(CheckpointException.EIO, "cannot unmap the scratch page of process " + pid
                    + " (errno " + -r + ")");
        }
    }
}
