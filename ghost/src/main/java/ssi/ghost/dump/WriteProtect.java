package ssi.ghost.dump;

import ssi.ghost.Ffm;
import ssi.shim.ErrnoException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * The kernel interfaces of write tracking, called by the daemon on fds it holds: userfaultfd ioctls on a
 * uffd taken from the tracked process (UFFDIO_API with UFFD_FEATURE_WP_ASYNC, UFFDIO_REGISTER in
 * MODE_WP, UFFDIO_WRITEPROTECT), which act on the mm of the process that created the uffd, and the
 * PAGEMAP_SCAN ioctl on that process's /proc/PID/pagemap. Layouts from linux/userfaultfd.h and
 * linux/fs.h (the installed headers predate PAGEMAP_SCAN and WP_ASYNC, so they are spelled out here).
 * Stateless; any thread (errno is captured per call).
 */
final class WriteProtect {
    private WriteProtect() {}

    static final long UFFD_API = 0xAA;
    static final long UFFD_FEATURE_WP_ASYNC = 1L << 15;
    static final long UFFDIO_REGISTER_MODE_WP = 1L << 1;
    static final long UFFDIO_WRITEPROTECT_MODE_WP = 1L << 0;
    /** _IOWR(0xAA, nr, size): struct uffdio_api 24 bytes, uffdio_register 32, uffdio_writeprotect 24. */
    static final long UFFDIO_API = ioc(3, 0xAA, 0x3F, 24), UFFDIO_REGISTER = ioc(3, 0xAA, 0x00, 32),
            UFFDIO_WRITEPROTECT = ioc(3, 0xAA, 0x06, 24);
    /** _IOWR('f', 16, struct pm_scan_arg): 12 u64 fields. */
    static final long PAGEMAP_SCAN = ioc(3, 'f', 16, 96);
    static final long PM_SCAN_WP_MATCHING = 1L << 0, PM_SCAN_CHECK_WPASYNC = 1L << 1;
    static final long PAGE_IS_WRITTEN = 1L << 1, PAGE_IS_FILE = 1L << 2, PAGE_IS_PRESENT = 1L << 3, PAGE_IS_SWAPPED = 1L << 4;
    /** flags of the userfaultfd syscall: O_CLOEXEC | UFFD_USER_MODE_ONLY (no kernel-mode fault handling needed: WP_ASYNC resolves in the kernel). */
    static final long UFFD_FLAGS = 02000000 | 1;
    static final int EPERM = 1, ENOENT = 2, ESRCH = 3, EINVAL = 22, EBUSY = 16;

    private static final int O_RDONLY = 0, O_CLOEXEC = 02000000;
    /** page_region entries per PAGEMAP_SCAN call (a full vector is continued from walk_end). */
    private static final int REGIONS = 4096;

    private static final MethodHandle OPEN = Ffm.function("open",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT), true, 2);
    private static final MethodHandle CLOSE = Ffm.function("close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), false, -1);

    private static long ioc(long dir, long type, long nr, long size) {
        return dir << 30 | size << 16 | type << 8 | nr;
    }

    /** UFFDIO_API asking for asynchronous write protection (faults resolved by the kernel, no events). */
    static void api(int uffd) throws ErrnoException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(24, 8);
            s.set(ValueLayout.JAVA_LONG, 0, UFFD_API);
            s.set(ValueLayout.JAVA_LONG, 8, UFFD_FEATURE_WP_ASYNC);
            Ffm.ioctl(uffd, UFFDIO_API, s, "UFFDIO_API with UFFD_FEATURE_WP_ASYNC");
        }
    }

    /** UFFDIO_REGISTER of [start, end) in write-protect mode. */
    static void register(int uffd, long start, long end) throws ErrnoException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(32, 8);
            s.set(ValueLayout.JAVA_LONG, 0, start);
            s.set(ValueLayout.JAVA_LONG, 8, end - start);
            s.set(ValueLayout.JAVA_LONG, 16, UFFDIO_REGISTER_MODE_WP);
            Ffm.ioctl(uffd, UFFDIO_REGISTER, s, String.format("UFFDIO_REGISTER of %x-%x", start, end));
        }
    }

    /** UFFDIO_WRITEPROTECT of [start, end): the next write to each page there marks it written. */
    static void protect(int uffd, long start, long end) throws ErrnoException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(24, 8);
            s.set(ValueLayout.JAVA_LONG, 0, start);
            s.set(ValueLayout.JAVA_LONG, 8, end - start);
            s.set(ValueLayout.JAVA_LONG, 16, UFFDIO_WRITEPROTECT_MODE_WP);
            Ffm.ioctl(uffd, UFFDIO_WRITEPROTECT, s, String.format("UFFDIO_WRITEPROTECT of %x-%x", start, end));
        }
    }

    /** Opens a file read-only (close-on-exec) and returns the raw fd. */
    static int open(String path) throws ErrnoException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment cap = a.allocate(Ffm.CAPTURE);
            int fd = (int) OPEN.invokeExact(cap, a.allocateFrom(path), O_RDONLY | O_CLOEXEC);
            if (fd < 0) throw new ErrnoException(Ffm.errno(cap), "open of " + path + " failed");
            return fd;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("open of " + path + " did not run", t);
        }
    }

    static void close(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new IllegalStateException("close of fd " + fd + " did not run", t);
        }
    }

    /**
     * PAGEMAP_SCAN of [start, end) on an open /proc/PID/pagemap: the regions (start, end addresses) whose
     * pages were written since they were last write-protected. PM_SCAN_CHECK_WPASYNC makes the kernel
     * refuse (EPERM) a range that is not registered for asynchronous write protection, so an answer is
     * never a guess. Nothing is write-protected again here: that happens once the image is safe
     * ({@link #protectWritten}).
     */
    static List<long[]> written(int pagemapFd, long start, long end) throws ErrnoException {
        return scan(pagemapFd, start, end, false);
    }

    /**
     * PAGEMAP_SCAN of [start, end) with PM_SCAN_WP_MATCHING: write-protects again, in one walk of the
     * range, every page written since it was last protected (the regions are returned too).
     */
    static List<long[]> protectWritten(int pagemapFd, long start, long end) throws ErrnoException {
        return scan(pagemapFd, start, end, true);
    }

    private static List<long[]> scan(int pagemapFd, long start, long end, boolean protect) throws ErrnoException {
        List<long[]> out = new ArrayList<>();
        for (long[] r : regions(pagemapFd, start, end, protect ? PM_SCAN_WP_MATCHING : 0, PAGE_IS_WRITTEN, 0, PAGE_IS_WRITTEN)) {
            if (!out.isEmpty() && out.getLast()[1] == r[0]) out.getLast()[1] = r[1];
            else out.add(new long[] {r[0], r[1]});
        }
        return out;
    }

    /**
     * PAGEMAP_SCAN of [start, end) of a range registered for asynchronous write protection
     * (PM_SCAN_CHECK_WPASYNC, plus extra flags): regions {start, end, categories} of the pages that have
     * every category of categoryMask and one of anyofMask (0: no condition), in address order, with the
     * returnMask categories they have.
     */
    static List<long[]> regions(int pagemapFd, long start, long end, long flags, long categoryMask, long anyofMask,
                                long returnMask) throws ErrnoException {
        List<long[]> out = new ArrayList<>();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment arg = a.allocate(96, 8);
            MemorySegment vec = a.allocate(24L * REGIONS, 8);
            long at = start;
            while (at < end) {
                arg.fill((byte) 0);
                arg.set(ValueLayout.JAVA_LONG, 0, 96);                              // size
                arg.set(ValueLayout.JAVA_LONG, 8, PM_SCAN_CHECK_WPASYNC | flags);   // flags
                arg.set(ValueLayout.JAVA_LONG, 16, at);                             // start
                arg.set(ValueLayout.JAVA_LONG, 24, end);                            // end
                arg.set(ValueLayout.JAVA_LONG, 40, vec.address());                  // vec
                arg.set(ValueLayout.JAVA_LONG, 48, REGIONS);                        // vec_len
                arg.set(ValueLayout.JAVA_LONG, 72, categoryMask);                   // category_mask
                arg.set(ValueLayout.JAVA_LONG, 80, anyofMask);                      // category_anyof_mask
                arg.set(ValueLayout.JAVA_LONG, 88, returnMask);                     // return_mask
                int n = Ffm.ioctl(pagemapFd, PAGEMAP_SCAN, arg, String.format("PAGEMAP_SCAN of %x-%x", at, end));
                for (int i = 0; i < n; i++) {
                    out.add(new long[] {vec.get(ValueLayout.JAVA_LONG, 24L * i), vec.get(ValueLayout.JAVA_LONG, 24L * i + 8),
                        vec.get(ValueLayout.JAVA_LONG, 24L * i + 16)});
                }
                long walkEnd = arg.get(ValueLayout.JAVA_LONG, 32);
                if (walkEnd <= at) throw new ErrnoException(EINVAL, String.format("PAGEMAP_SCAN of %x-%x made no progress", at, end));
                at = walkEnd;
            }
        }
        return out;
    }
}
