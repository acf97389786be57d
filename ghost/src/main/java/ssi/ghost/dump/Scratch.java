package ssi.ghost.dump;

import ssi.shim.Tracee;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A page mapped into a stopped process by an injected mmap, where injected syscalls that report
 * through a pointer (rt_sigaction, prlimit64, sigaltstack, getitimer) write their answers for us to
 * read back, followed by an area for the shim's batches of calls ({@link Batch}: its code page made
 * executable once, its table pages writable), so that a batch maps and unmaps nothing; {@link #close}
 * unmaps both, so the process's address space ends as it was. Created and closed by the checkpoint's
 * thread, before the memory map is read (so they are never in the image).
 */
final class Scratch implements AutoCloseable {
    static final int SIZE = 4096;
    private static final int SYS_MMAP = 9, SYS_MPROTECT = 10, SYS_MUNMAP = 11;
    private static final int PROT_RW = 3, PROT_RX = 5, MAP_PRIVATE_ANON = 0x22;
    /** The batches' area: the shim's code page and the table of its most calls, whole pages. */
    private static final long AREA = (ssi.shim.LinkFrames.InjectManyReq.AREA + 4095L) & -4096L;

    private final Tracee tracee;
    final long addr;
    private final int pid;
    /** Where the batches' area is, or 0 when its code page could not be made executable (then the shim maps its own). */
    private final long area;

    private Scratch(Tracee tracee, long addr, int pid, long area) {
        this.tracee = tracee;
        this.addr = addr;
        this.pid = pid;
        this.area = area;
    }

    static Scratch map(Tracee t, int pid) throws IOException {
        long a = t.syscall(SYS_MMAP, 0, SIZE + AREA, PROT_RW, MAP_PRIVATE_ANON, -1, 0);
        if (isError(a)) {
            throw new CheckpointException(CheckpointException.EIO, "cannot map a scratch page in process " + pid
                    + " (injected mmap failed with errno " + -a + ")");
        }
        // no executable memory for us here (a policy): the batches go the shim's way, one by one at worst
        long p;
        try {
            p = t.syscall(SYS_MPROTECT, a + SIZE, 4096, PROT_RX);
        } catch (IOException | RuntimeException e) {
            try {
                t.syscall(SYS_MUNMAP, a, SIZE + AREA);
            } catch (IOException | RuntimeException ue) {
                e.addSuppressed(ue);
            }
            throw e;
        }
        return new Scratch(t, a, pid, isError(p) ? 0 : a + SIZE);
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
     * Calls queued by several dumpers and run in thread t in one request ({@link Tracee#syscalls}); a
     * failure names what it was for. Only for calls that leave the address space alone.
     */
    final class Batch {
        private final java.util.List<Integer> nrs = new java.util.ArrayList<>();
        private final java.util.List<long[]> args = new java.util.ArrayList<>();
        private final java.util.List<java.util.function.Supplier<String>> what = new java.util.ArrayList<>();

        void add(java.util.function.Supplier<String> why, int nr, long... a) {
            nrs.add(nr);
            args.add(a);
            what.add(why);
        }

        /**
         * Runs the calls in t (a thread of the process); returns their results in the order queued. In
         * the scratch's area a batch costs one resume of t, so from two calls on it is one; without the
         * area (the shim maps its own, about five round trips) up to four are injected one by one.
         */
        long[] run(Tracee t) throws IOException {
            int[] n = nrs.stream().mapToInt(Integer::intValue).toArray();
            long[] r;
            if (n.length <= (area != 0 ? 1 : 4)) {
                r = new long[n.length];
                for (int i = 0; i < n.length; i++) r[i] = t.syscall(n[i], args.get(i));
            } else if (area != 0) {
                r = t.syscallsIn(area, n, args.toArray(new long[0][]));
            } else {
                r = t.syscalls(n, args.toArray(new long[0][]));
            }
            for (int i = 0; i < r.length; i++) {
                if (isError(r[i])) {
                    throw new CheckpointException(CheckpointException.EIO, "process " + pid + " thread " + t.tid()
                            + ": injected " + what.get(i).get() + " failed with errno " + -r[i]);
                }
            }
            return r;
        }

        /** Index the next {@link #add} gets in run's results. */
        int size() {
            return nrs.size();
        }
    }

    Batch batch() {
        return new Batch();
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
        long r = tracee.syscall(SYS_MUNMAP, addr, SIZE + AREA);
        if (isError(r)) {
            throw new CheckpointException(CheckpointException.EIO, "cannot unmap the scratch page of process " + pid
                    + " (errno " + -r + ")");
        }
    }
}
