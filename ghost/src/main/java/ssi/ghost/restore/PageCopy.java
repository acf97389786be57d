package ssi.ghost.restore;

import ssi.ghost.Ffm;
import ssi.shim.ErrnoException;
import ssi.shim.Tracee;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.CRC32C;

/**
 * Copies a restored process's anonymous pages from the image's pages file with UFFDIO_COPY: a
 * userfaultfd is made in the stopped process (injected {@code userfaultfd}, so it is bound to that
 * process's mm), taken into the daemon with pidfd_getfd and closed in the process at once; each private
 * anonymous VMA is registered (missing mode) while its runs are copied and unregistered after, and the
 * daemon's copy is closed when the process's memory is done: the process keeps no fd, no registration
 * and no VMA flag of it. UFFDIO_COPY allocates each page and fills it from the daemon's mapping of the
 * pages file in one step (the kernel does not zero it first, as a fault from process_vm_writev does).
 *
 * <p>The copies run on two copy threads while the restoring thread goes on with the process (its other
 * VMAs, fds, dispositions...: nothing that reads the memory being filled); {@link #finish} waits for them
 * before the process is forked, gets threads or runs. Each run's CRC32C is computed from that mapping just
 * before the run is copied (when the plan did not check it up front), so the bytes checked are the bytes
 * copied; a VMA of 8 MiB or more is split between the two threads. Owned by the restoring thread.
 */
final class PageCopy implements AutoCloseable {
    private static final int SYS_USERFAULTFD = 323, SYS_CLOSE = 3;
    /** O_CLOEXEC | UFFD_USER_MODE_ONLY: no kernel-mode faults need handling (nothing ever waits on this uffd). */
    private static final long UFFD_FLAGS = 02000000 | 1;
    private static final long UFFD_API = 0xAA, UFFDIO_REGISTER_MODE_MISSING = 1;
    /** _IOWR(0xAA, nr, size) and _IOR: uffdio_api 24 bytes, uffdio_register 32, uffdio_range 16, uffdio_copy 40. */
    private static final long UFFDIO_API = ioc(3, 0x3F, 24), UFFDIO_REGISTER = ioc(3, 0x00, 32),
            UFFDIO_UNREGISTER = ioc(2, 0x01, 16), UFFDIO_COPY = ioc(3, 0x03, 40);
    private static final int PROT_READ = 1, MAP_PRIVATE = 2, MADV_POPULATE_READ = 22;
    private static final int EAGAIN = 11, EINTR = 4;
    /** A VMA with at least this many bytes of runs is copied by two threads. */
    static final long PARALLEL_FROM = 8L << 20;
    private static final long PAGE = 4096;

    private static final MethodHandle MMAP = Ffm.function("mmap", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
            ValueLayout.JAVA_LONG), true, -1);
    private static final MethodHandle MUNMAP = Ffm.function("munmap",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), false, -1);
    private static final MethodHandle MADVISE = Ffm.function("madvise",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT), true, -1);
    /** The copy threads, one per CPU of this machine's two (daemon threads, shared by all restores). */
    private static final ExecutorService THREADS = Executors.newFixedThreadPool(2, r -> {
        Thread t = new Thread(r, "restore-page-copy");
        t.setDaemon(true);
        return t;
    });

    private final int uffd;
    private final int pid;
    /** {start, end} of the VMAs registered, {address, length} of the file mapped, the copies queued. */
    private final List<long[]> registered = new ArrayList<>(), mapped = new ArrayList<>();
    private final List<Future<Void>> pending = new ArrayList<>();

    private final long opened = System.nanoTime();
    /** Where each copy thread's times go (a restart trace: SSI_TRACE_RESTORE), or null. */
    private final List<String> trace;

    private PageCopy(int uffd, int pid, boolean trace) {
        this.trace = trace ? java.util.Collections.synchronizedList(new ArrayList<>()) : null;
        this.uffd = uffd;
        this.pid = pid;
    }

    private static long ioc(long dir, long nr, long size) {
        return dir << 30 | size << 16 | 0xAAL << 8 | nr;
    }

    /**
     * A userfaultfd for the stopped process t (pid), or null when the process cannot make one (the
     * caller then copies another way); the process's own fd is closed before this returns.
     */
    static PageCopy open(Tracee t, int pid) throws IOException {
        long fd = t.syscall(SYS_USERFAULTFD, UFFD_FLAGS);
        if (fd < 0) return null;
        int mine;
        try {
            mine = Tracee.takeFd(pid, (int) fd);
        } catch (ErrnoException e) {
            return null;
        } finally {
            long rc = t.syscall(SYS_CLOSE, fd);
            if (rc < 0) throw new RestoreException((int) -rc, "close of the userfaultfd made to copy the pages");
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(24, 8);
            s.set(ValueLayout.JAVA_LONG, 0, UFFD_API);
            Ffm.ioctl(mine, UFFDIO_API, s, "UFFDIO_API");
            return new PageCopy(mine, pid, TreeRestorer.TRACE);
        } catch (ErrnoException e) {
            closeQuietly(mine);
            return null;
        }
    }

    /**
     * Registers the private anonymous VMA [start, end) and queues the copy of its runs (all inside it,
     * each lying in the file its fd names, an fd of this JVM) on the copy threads; each run's CRC32C is
     * checked first unless src says it was. Returns at once: {@link #finish} waits for the copies.
     */
    void start(long start, long end, List<RestorePlan.FileRun> runs, RestorePlan.PageSource src) throws IOException {
        if (runs.isEmpty()) return;
        // each file's part that the runs lie in, mapped once: {lowest offset, highest end, where it is mapped - lowest}
        java.util.Map<Integer, long[]> files = new java.util.HashMap<>();
        long bytes = 0;
        for (RestorePlan.FileRun r : runs) {
            long[] f = files.computeIfAbsent(r.fd(), k -> new long[] {Long.MAX_VALUE, 0, 0});
            f[0] = Math.min(f[0], r.fileOffset());
            f[1] = Math.max(f[1], r.fileOffset() + r.length());
            bytes += r.length();
        }
        for (var e : files.entrySet()) {
            long[] f = e.getValue();
            long mapOff = f[0] & -PAGE, mapLen = f[1] - mapOff;
            long base = mmap(mapLen, e.getKey(), mapOff);
            mapped.add(new long[] {base, mapLen});
            f[2] = base - mapOff;
        }
        range(UFFDIO_REGISTER, start, end, "UFFDIO_REGISTER");
        registered.add(new long[] {start, end});
        boolean check = !src.checked();
        // where each run's bytes are mapped in this JVM
        long[] from = new long[runs.size()];
        for (int i = 0; i < runs.size(); i++) from[i] = runs.get(i).fileOffset() + files.get(runs.get(i).fd())[2];
        if (bytes < PARALLEL_FROM) {
            pending.add(THREADS.submit(() -> copyRuns(runs, from, 0, runs.size(), check, src)));
            return;
        }
        // two halves by bytes, one per copy thread
        long half = 0;
        int cut = 0;
        while (cut < runs.size() && half < bytes / 2) half += runs.get(cut++).length();
        int c = cut;
        pending.add(THREADS.submit(() -> copyRuns(runs, from, 0, c, check, src)));
        pending.add(THREADS.submit(() -> copyRuns(runs, from, c, runs.size(), check, src)));
    }

    /**
     * Waits for every queued copy, then unregisters every VMA and has the file unmapped; throws the first
     * copy's error (a checksum mismatch: the image's error), else the first unregister's.
     */
    void finish() throws IOException {
        IOException err = null;
        RuntimeException bug = null;
        boolean interrupted = false;
        for (Future<Void> f : pending) {
            while (true) {
                try {
                    f.get();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true; // the copies are bounded: they are waited for, not left to run on
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof IOException io) { if (err == null) err = io; }
                    else if (e.getCause() instanceof RuntimeException re) { if (bug == null) bug = re; }
                    else if (bug == null) bug = new IllegalStateException(e.getCause());
                    break;
                }
            }
        }
        pending.clear();
        if (interrupted) Thread.currentThread().interrupt();
        for (long[] r : registered) {
            try {
                range(UFFDIO_UNREGISTER, r[0], r[1], "UFFDIO_UNREGISTER");
            } catch (IOException e) {
                if (err == null) err = e;
            }
        }
        registered.clear();
        // the file's mappings go on a copy thread, after the restore goes on: unmapping tens of MiB of
        // populated page tables takes milliseconds, and nothing needs them any more
        List<long[]> unmap = List.copyOf(mapped);
        mapped.clear();
        if (!unmap.isEmpty()) THREADS.execute(() -> unmap.forEach(m -> munmap(m[0], m[1])));
        if (bug != null) throw bug;
        if (err != null) throw err;
    }

    /** The copy threads' times so far (empty unless the restart is traced). */
    List<String> trace() {
        return trace == null ? List.of() : List.copyOf(trace);
    }

    /** Copies runs [lo, hi), run i's bytes mapped at from[i]; checks each first when check is set. */
    private Void copyRuns(List<RestorePlan.FileRun> runs, long[] from, int lo, int hi, boolean check, RestorePlan.PageSource src)
            throws IOException {
        long t0 = System.nanoTime(), populate = 0, crc = 0, copy = 0;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment arg = a.allocate(40, 8);
            MemorySegment cap = a.allocate(Ffm.CAPTURE);
            for (int i = lo; i < hi; i++) {
                RestorePlan.FileRun r = runs.get(i);
                long at = from[i];
                // page tables filled in one call; a file cut short since the checks is EFAULT here, not a SIGBUS
                long x0 = System.nanoTime();
                madvise(at & -PAGE, r.length() + (at & (PAGE - 1)), cap);
                long x1 = System.nanoTime();
                if (check) {
                    CRC32C c = new CRC32C();
                    c.update(MemorySegment.ofAddress(at).reinterpret(r.length()).asByteBuffer());
                    if ((int) c.getValue() != r.crc()) throw src.mismatch(r, (int) c.getValue());
                }
                long x2 = System.nanoTime();
                copyOne(arg, cap, r.addr(), at, r.length());
                long x3 = System.nanoTime();
                populate += x1 - x0;
                crc += x2 - x1;
                copy += x3 - x2;
            }
        }
        if (trace != null)
            trace.add(String.format("%d: %d page run(s) copied by a copy thread from +%d us: %d us (populating the file "
                    + "mapping %d, checksums %d, UFFDIO_COPY %d)", pid, hi - lo, (t0 - opened) / 1000,
                    (System.nanoTime() - t0) / 1000, populate / 1000, crc / 1000, copy / 1000));
        return null;
    }

    private void copyOne(MemorySegment arg, MemorySegment cap, long dst, long src, long len) throws IOException {
        long done = 0;
        while (done < len) {
            arg.set(ValueLayout.JAVA_LONG, 0, dst + done);
            arg.set(ValueLayout.JAVA_LONG, 8, src + done);
            arg.set(ValueLayout.JAVA_LONG, 16, len - done);
            arg.set(ValueLayout.JAVA_LONG, 24, 0);
            arg.set(ValueLayout.JAVA_LONG, 32, 0);
            int rc;
            try {
                rc = (int) Ffm.IOCTL.invokeExact(cap, uffd, UFFDIO_COPY, arg);
            } catch (Throwable t) {
                throw new IllegalStateException("UFFDIO_COPY did not run", t);
            }
            long copied = arg.get(ValueLayout.JAVA_LONG, 32);
            if (copied > 0) done += copied;
            if (rc == 0) continue;
            int e = Ffm.errno(cap);
            if ((e == EAGAIN || e == EINTR) && copied >= 0) continue;
            throw new RestoreException(e, String.format("UFFDIO_COPY of %d bytes to 0x%x in process %d failed", len - done,
                    dst + done, pid));
        }
    }

    private void range(long req, long start, long end, String what) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(32, 8);
            s.set(ValueLayout.JAVA_LONG, 0, start);
            s.set(ValueLayout.JAVA_LONG, 8, end - start);
            if (req == UFFDIO_REGISTER) s.set(ValueLayout.JAVA_LONG, 16, UFFDIO_REGISTER_MODE_MISSING);
            try {
                Ffm.ioctl(uffd, req, s, String.format("%s of %x-%x in process %d", what, start, end, pid));
            } catch (ErrnoException e) {
                throw new RestoreException(e);
            }
        }
    }

    private long mmap(long len, int fd, long off) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment cap = a.allocate(Ffm.CAPTURE);
            long p = (long) MMAP.invokeExact(cap, 0L, len, PROT_READ, MAP_PRIVATE, fd, off);
            if (p == -1L) throw new RestoreException(Ffm.errno(cap), "mmap of the pages file to copy them");
            return p;
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("mmap did not run", t);
        }
    }

    private static void munmap(long addr, long len) {
        try {
            int ignored = (int) MUNMAP.invokeExact(addr, len);
        } catch (Throwable t) {
            throw new IllegalStateException("munmap did not run", t);
        }
    }

    private static void madvise(long addr, long len, MemorySegment cap) throws IOException {
        int rc;
        try {
            rc = (int) MADVISE.invokeExact(cap, addr, len, MADV_POPULATE_READ);
        } catch (Throwable t) {
            throw new IllegalStateException("madvise did not run", t);
        }
        if (rc != 0) {
            int e = Ffm.errno(cap);
            throw new RestoreException(e, "the pages file cannot be read where the image says pages are (cut short "
                    + "since the restart checked it?)");
        }
    }

    /** Waits for what is queued (errors dropped: the restore failed already) and closes the uffd. */
    @Override
    public void close() {
        try {
            finish();
        } catch (IOException | RuntimeException ignored) {
            // the restore is failing for another reason, or finish() reported this already
        }
        closeQuietly(uffd);
    }

    private static void closeQuietly(int fd) {
        try {
            Tracee.closeFd(fd);
        } catch (ErrnoException ignored) {
            // an fd of ours that is open: close does not fail
        }
    }
}
