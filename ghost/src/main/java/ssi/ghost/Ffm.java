package ssi.ghost;

import ssi.shim.ErrnoException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The libc functions the ghost module calls through the FFM API (ioctl, mmap, process_vm_readv...): one
 * place that looks them up, lays out the captured errno and reads it back. Stateless; any thread.
 */
public final class Ffm {
    private Ffm() {}

    /** The segment a handle made with errno captured takes as its first argument (allocate one per call). */
    public static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    /** ioctl(int fd, unsigned long req, void *arg), errno captured. */
    public static final MethodHandle IOCTL = function("ioctl",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS), true, 2);

    /**
     * The libc function name as a downcall handle. errno: the errno it leaves is captured (the handle then
     * takes a {@link #CAPTURE} segment first); firstVariadic: the index of its first variadic argument,
     * or -1 for none.
     */
    public static MethodHandle function(String name, FunctionDescriptor d, boolean errno, int firstVariadic) {
        Linker l = Linker.nativeLinker();
        java.util.List<Linker.Option> options = new java.util.ArrayList<>();
        if (firstVariadic >= 0) options.add(Linker.Option.firstVariadicArg(firstVariadic));
        if (errno) options.add(Linker.Option.captureCallState("errno"));
        return l.downcallHandle(l.defaultLookup().find(name).orElseThrow(), d, options.toArray(Linker.Option[]::new));
    }

    /** The errno a call left in capture (a {@link #CAPTURE} segment). */
    public static int errno(MemorySegment capture) {
        return (int) ERRNO.get(capture, 0L);
    }

    /** ioctl(fd, req, arg); returns its result, or throws ErrnoException "what failed" with its errno. */
    public static int ioctl(int fd, long req, MemorySegment arg, String what) throws ErrnoException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment cap = a.allocate(CAPTURE);
            int r = (int) IOCTL.invokeExact(cap, fd, req, arg);
            if (r < 0) throw new ErrnoException(errno(cap), what + " failed");
            return r;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(what + ": the ioctl did not run", t);
        }
    }
}
