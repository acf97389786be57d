package ssi.ghost.dump;

import ssi.ghost.Ffm;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;

/**
 * process_vm_readv of many scattered ranges of a process into one direct buffer in a single system call
 * (the pages an incremental checkpoint stores are often single pages far apart; /proc/PID/mem costs a
 * call per range). Unlike /proc/PID/mem it does not force access, so it is for readable mappings only.
 * Stateless; any thread.
 */
final class RemoteRead {
    private RemoteRead() {}

    /** IOV_MAX: the most ranges one call takes. */
    static final int MAX_RANGES = 1024;

    private static final MethodHandle READV = Ffm.function("process_vm_readv", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_LONG), true, -1);

    /**
     * Reads n ranges (addrs[i], lens[i] bytes) of process pid into dst from its position on, back to back;
     * returns the bytes read (fewer than asked when a range faulted), or -errno.
     */
    static long read(int pid, long[] addrs, int[] lens, int n, ByteBuffer dst) {
        long total = 0;
        for (int i = 0; i < n; i++) total += lens[i];
        try (Arena a = Arena.ofConfined()) {
            MemorySegment local = a.allocate(16, 8);
            local.set(ValueLayout.JAVA_LONG, 0, MemorySegment.ofBuffer(dst).address());
            local.set(ValueLayout.JAVA_LONG, 8, total);
            MemorySegment remote = a.allocate(16L * n, 8);
            for (int i = 0; i < n; i++) {
                remote.set(ValueLayout.JAVA_LONG, 16L * i, addrs[i]);
                remote.set(ValueLayout.JAVA_LONG, 16L * i + 8, lens[i]);
            }
            MemorySegment cap = a.allocate(Ffm.CAPTURE);
            long r = (long) READV.invokeExact(cap, pid, local, 1L, remote, (long) n, 0L);
            return r < 0 ? -Ffm.errno(cap) : r;
        } catch (Throwable t) {
            throw new IllegalStateException("process_vm_readv did not run", t);
        }
    }
}
