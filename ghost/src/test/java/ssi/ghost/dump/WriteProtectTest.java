package ssi.ghost.dump;

import org.junit.jupiter.api.Test;
import ssi.shim.ErrnoException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The kernel side of write tracking, on this JVM's own memory (a uffd made here is bound to this mm):
 * the ioctl numbers are the ones of linux/userfaultfd.h and linux/fs.h; after UFFDIO_API (WP_ASYNC),
 * REGISTER and WRITEPROTECT, writes go through without any handler (the kernel resolves them) and
 * PAGEMAP_SCAN lists exactly the pages written, kernel writes included; PM_SCAN_WP_MATCHING protects
 * them again; a range that is not registered is refused (EPERM) rather than guessed. process_vm_readv
 * of scattered pages returns them back to back.
 */
class WriteProtectTest {
    private static final int PAGE = 4096, PAGES = 64;

    @Test
    void ioctlNumbersAreTheKernels() {
        assertEquals(0xC018AA3FL, WriteProtect.UFFDIO_API);
        assertEquals(0xC020AA00L, WriteProtect.UFFDIO_REGISTER);
        assertEquals(0xC018AA06L, WriteProtect.UFFDIO_WRITEPROTECT);
        assertEquals(0xC0606610L, WriteProtect.PAGEMAP_SCAN);
    }

    private static MethodHandle handle(String name, FunctionDescriptor fd) {
        Linker l = Linker.nativeLinker();
        return l.downcallHandle(l.defaultLookup().find(name).orElseThrow(), fd);
    }

    @Test
    void writesAreTrackedPerPageAndProtectedAgain() throws Throwable {
        MethodHandle syscall = handle("syscall", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_LONG));
        MethodHandle mmap = handle("mmap", FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
        MethodHandle munmap = handle("munmap", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        MethodHandle pipe = handle("pipe", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        MethodHandle write = handle("write", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                ValueLayout.JAVA_LONG));
        MethodHandle read = handle("read", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                ValueLayout.JAVA_LONG));
        long len = (long) PAGES * PAGE;
        // a mapping of its own (PROT_READ|WRITE, MAP_PRIVATE|MAP_ANONYMOUS), every page touched
        MemorySegment m = ((MemorySegment) mmap.invokeExact(MemorySegment.NULL, len, 3, 0x22, -1, 0L)).reinterpret(len);
        long uffd = (long) syscall.invokeExact(323L, WriteProtect.UFFD_FLAGS);
        assertTrue(uffd >= 0, "userfaultfd: " + uffd);
        int pm = WriteProtect.open("/proc/self/pagemap");
        try {
            for (long p = 0; p < PAGES; p++) m.set(ValueLayout.JAVA_LONG, p * PAGE, 1);
            WriteProtect.api((int) uffd);
            long a = m.address();
            // not registered yet: PM_SCAN_CHECK_WPASYNC refuses to answer
            ErrnoException e = assertThrows(ErrnoException.class, () -> WriteProtect.written(pm, a, a + len));
            assertEquals(WriteProtect.EPERM, e.errno());
            WriteProtect.register((int) uffd, a, a + len);
            WriteProtect.protect((int) uffd, a, a + len);
            assertEquals(List.of(), regions(WriteProtect.written(pm, a, a + len), a));

            // pages 3, 10, 11 written from user space, page 20 by the kernel (read(2) from a pipe)
            m.set(ValueLayout.JAVA_LONG, 3L * PAGE + 8, 2);
            m.set(ValueLayout.JAVA_LONG, 10L * PAGE, 2);
            m.set(ValueLayout.JAVA_LONG, 11L * PAGE + 4000, 2);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment fds = arena.allocate(8, 4);
                assertEquals(0, (int) pipe.invokeExact(fds));
                MemorySegment src = arena.allocate(16);
                src.set(ValueLayout.JAVA_LONG, 0, 0x1122334455667788L);
                assertEquals(16L, (long) write.invokeExact(fds.get(ValueLayout.JAVA_INT, 4), src, 16L));
                assertEquals(16L, (long) read.invokeExact(fds.get(ValueLayout.JAVA_INT, 0), m.asSlice(20L * PAGE), 16L));
                closeFd(fds.get(ValueLayout.JAVA_INT, 0));
                closeFd(fds.get(ValueLayout.JAVA_INT, 4));
            }
            assertEquals(0x1122334455667788L, m.get(ValueLayout.JAVA_LONG, 20L * PAGE));
            assertEquals(List.of("3-4", "10-12", "20-21"), regions(WriteProtect.written(pm, a, a + len), a));
            // a scan alone protects nothing
            assertEquals(List.of("3-4", "10-12", "20-21"), regions(WriteProtect.written(pm, a, a + len), a));
            // protected again in one walk: nothing is written any more, until the next write
            assertEquals(List.of("3-4", "10-12", "20-21"), regions(WriteProtect.protectWritten(pm, a, a + len), a));
            assertEquals(List.of(), regions(WriteProtect.written(pm, a, a + len), a));
            m.set(ValueLayout.JAVA_LONG, 63L * PAGE, 3);
            assertEquals(List.of("63-64"), regions(WriteProtect.written(pm, a, a + len), a));

            // scattered pages of this process, read back to back in one call
            ByteBuffer dst = ByteBuffer.allocateDirect(3 * PAGE);
            long got = RemoteRead.read((int) ProcessHandle.current().pid(), new long[] {a + 3L * PAGE, a + 20L * PAGE},
                    new int[] {PAGE, 2 * PAGE}, 2, dst);
            assertEquals(3L * PAGE, got);
            assertEquals(2, dst.order(java.nio.ByteOrder.nativeOrder()).getLong(8));
            assertEquals(0x1122334455667788L, dst.getLong(PAGE));
        } finally {
            WriteProtect.close(pm);
            WriteProtect.close((int) uffd);
            assertEquals(0, (int) munmap.invokeExact(m, len));
        }
    }

    /**
     * Write tracking leaves uffd-wp pte markers in the empty ptes of a private file mapping, which
     * pagemap reports as swap entries: a checkpoint must not take them for swapped-out pages (it would
     * store, and fault in, the whole file). Only the page written before (copied on write) is stored.
     */
    @Test
    void markersOfAPrivateFileMappingAreNotPagesToStore(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Throwable {
        MethodHandle syscall = handle("syscall", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_LONG));
        MethodHandle mmap = handle("mmap", FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
        MethodHandle munmap = handle("munmap", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        java.nio.file.Path file = tmp.resolve("data");
        java.nio.file.Files.write(file, new byte[16 * PAGE]);
        int fd = WriteProtect.open(file.toString());
        long len = 16L * PAGE;
        // PROT_READ|WRITE, MAP_PRIVATE of a file opened read-only: writes are copied, the file stays
        MemorySegment m = ((MemorySegment) mmap.invokeExact(MemorySegment.NULL, len, 3, 0x02, fd, 0L)).reinterpret(len);
        long uffd = (long) syscall.invokeExact(323L, WriteProtect.UFFD_FLAGS);
        assertTrue(uffd >= 0, "userfaultfd: " + uffd);
        try {
            m.set(ValueLayout.JAVA_LONG, 0, 7); // page 0 is the process's own now
            WriteProtect.api((int) uffd);
            WriteProtect.register((int) uffd, m.address(), m.address() + len);
            WriteProtect.protect((int) uffd, m.address(), m.address() + len);
            ProcFs fs = new ProcFs(java.nio.file.Path.of("/proc"));
            int pid = (int) ProcessHandle.current().pid();
            List<ssi.ghost.image.Records.Vma> vma = Memory.vmas(fs, pid).stream().filter(v -> v.start() == m.address()).toList();
            assertEquals(1, vma.size());
            assertTrue(vma.getFirst().vmFlags().contains("uw"), vma.getFirst().vmFlags());
            java.nio.file.Path dir = java.nio.file.Files.createDirectory(tmp.resolve("img"));
            try (ssi.ghost.image.DataWriter pages = ssi.ghost.image.DataWriter.create(dir, "pages", 0x53534947, pid)) {
                List<ssi.ghost.image.Records.Pagemap> maps = Memory.dumpPages(fs, pid, vma, pages);
                assertEquals(1, maps.size());
                assertEquals(List.of(new ssi.ghost.image.Records.PageRun(0, 1, maps.getFirst().runs().getFirst().fileOffset(),
                        maps.getFirst().runs().getFirst().crc())), maps.getFirst().runs());
            }
        } finally {
            WriteProtect.close((int) uffd);
            assertEquals(0, (int) munmap.invokeExact(m, len));
            WriteProtect.close(fd);
        }
    }

    private static void closeFd(int fd) {
        WriteProtect.close(fd);
    }

    /** Regions as "first-end" page indexes relative to base. */
    private static List<String> regions(List<long[]> r, long base) {
        return r.stream().map(x -> (x[0] - base) / PAGE + "-" + (x[1] - base) / PAGE).toList();
    }
}
