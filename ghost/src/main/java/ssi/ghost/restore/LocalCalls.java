package ssi.ghost.restore;

import ssi.ghost.Ffm;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/** Syscalls the daemon makes on a process being restored, instead of injecting them into it. Stateless. */
final class LocalCalls {
    private LocalCalls() {}

    private static final MethodHandle PRLIMIT = Ffm.function("prlimit64", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS), true, -1);

    /** prlimit64(pid, resource, {cur, max}, NULL): 0, or the errno it failed with. */
    static int prlimit(int pid, int resource, long cur, long max) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment lim = a.allocate(16, 8);
            lim.set(ValueLayout.JAVA_LONG, 0, cur);
            lim.set(ValueLayout.JAVA_LONG, 8, max);
            MemorySegment cap = a.allocate(Ffm.CAPTURE);
            int rc = (int) PRLIMIT.invokeExact(cap, pid, resource, lim, MemorySegment.NULL);
            return rc == 0 ? 0 : Ffm.errno(cap);
        } catch (Throwable t) {
            throw new IllegalStateException("prlimit64 did not run", t);
        }
    }
}
