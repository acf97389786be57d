package ssi.ghost.restore;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/** Syscalls the daemon makes on a process being restored, instead of injecting them into it. Stateless. */
final class LocalCalls {
    private LocalCalls() {}

    private static final MethodHandle PRLIMIT;
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    static {
        Linker l = Linker.nativeLinker();
        PRLIMIT = l.downcallHandle(l.defaultLookup().find("prlimit64").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS), Linker.Option.captureCallState("errno"));
    }

    /** prlimit64(pid, resource, {cur, max}, NULL): 0, or the errno it failed with. */
    static int prlimit(int pid, int resource, long cur, long max) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment lim = a.allocate(16, 8);
            lim.set(ValueLayout.JAVA_LONG, 0, cur);
            lim.set(ValueLayout.JAVA_LONG, 8, max);
            MemorySegment cap = a.allocate(CAPTURE);
            int rc = (int) PRLIMIT.invokeExact(cap, pid, resource, lim, MemorySegment.NULL);
            return rc == 0 ? 0 : (int) ERRNO.get(cap, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("prlimit64 did not run", t);
        }
    }
}
