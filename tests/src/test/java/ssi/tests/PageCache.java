package ssi.tests;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/** What the page cache holds of a file, asked of the kernel with cachestat(2) (Linux 6.5+). */
final class PageCache {
    private PageCache() {}

    private static final long SYS_CACHESTAT = 451;
    private static final Linker L = Linker.nativeLinker();
    private static final MethodHandle SYSCALL = L.downcallHandle(L.defaultLookup().find("syscall").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT), Linker.Option.firstVariadicArg(1));
    private static final MethodHandle OPEN = L.downcallHandle(L.defaultLookup().find("open").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = L.downcallHandle(L.defaultLookup().find("close").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    /** Pages of file that are dirty or under write-back (0: everything it has is on disk). */
    static long unwritten(Path file) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            int fd = (int) OPEN.invokeExact(a.allocateFrom(file.toString()), 0);
            if (fd < 0) throw new IOException("cannot open " + file);
            try {
                MemorySegment range = a.allocate(16, 8); // offset 0, length 0: the whole file
                MemorySegment cs = a.allocate(40, 8);    // nr_cache, nr_dirty, nr_writeback, ...
                long r = (long) SYSCALL.invokeExact(SYS_CACHESTAT, fd, range, cs, 0);
                if (r != 0) throw new IOException("cachestat of " + file + " failed");
                return cs.get(ValueLayout.JAVA_LONG, 8) + cs.get(ValueLayout.JAVA_LONG, 16);
            } finally {
                int ignored = (int) CLOSE.invokeExact(fd);
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(t);
        }
    }
}
