package ssi.ghost.dump;

import ssi.ghost.image.DataWriter;
import ssi.ghost.image.ImageFormat;
import ssi.ghost.image.Records;
import ssi.ghost.image.Records.PageRun;
import ssi.ghost.image.Records.Vma;
import ssi.shim.Tracee;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;
import java.util.List;

/**
 * The address space of a process: mm fields, every VMA (/proc/PID/smaps: the maps line and VmFlags),
 * and the contents of the pages a restore cannot get elsewhere. Which pages: /proc/PID/pagemap says
 * present (bit 63) or swapped (bit 62, but not a pte marker); of those, every page of an anonymous or shared-anonymous VMA,
 * and of a private file mapping only the pages that are not the file's own (bit 61 clear: written,
 * hence copied). Shared file mappings live in their file; vdso is recorded by address only, vvar and
 * vsyscall not at all. Pages are read from /proc/PID/mem in runs of up to {@link #CHUNK} bytes, each run
 * a PAGEMAP entry with its own CRC32C. An incremental checkpoint stores only the pages written since the
 * parent image and refers to the others ({@link Baseline}, {@link WriteTracking}). Stateless.
 */
final class Memory {
    private Memory() {}

    private static final int SYS_BRK = 12;
    static final int CHUNK = DataWriter.BUFFER_SIZE;
    private static final long PM_PRESENT = 1L << 63, PM_SWAPPED = 1L << 62, PM_FILE = 1L << 61;
    /** pagemap entries read at once (512 KiB of entries, 256 MiB of address space). */
    private static final int PAGEMAP_BATCH = 64 * 1024;

    /** mm fields from /proc/PID/stat (fields 26-28, 45-51), brk by an injected brk(0), and auxv. */
    static Records.Mm dumpMm(ProcFs fs, int pid, Tracee t) throws IOException {
        return dumpMm(fs, pid, brk(t));
    }

    /**
     * The current break, by an injected brk(0) (it changes nothing, but takes the mmap lock for writing,
     * so it waits for a walk of the page tables that holds it for reading, such as PAGEMAP_SCAN).
     */
    static long brk(Tracee t) throws IOException {
        return t.syscall(SYS_BRK, 0);
    }

    /** As above, with the break already known ({@link #brk}). */
    static Records.Mm dumpMm(ProcFs fs, int pid, long brk) throws IOException {
        ProcFs.Stat st = fs.stat(fs.dir(pid));
        if (st == null) throw new CheckpointException(CheckpointException.ESRCH, "process " + pid + " is gone");
        byte[] auxv = Files.readAllBytes(fs.dir(pid).resolve("auxv"));
        return new Records.Mm(st.field(26), st.field(27), st.field(45), st.field(46), st.field(47), brk, st.field(28),
                st.field(48), st.field(49), st.field(50), st.field(51), auxv);
    }

    static List<Vma> vmas(ProcFs fs, int pid) throws IOException {
        List<Vma> out = new ArrayList<>();
        String[] h = null;
        String flags = "";
        for (String line : Files.readAllLines(fs.dir(pid).resolve("smaps"), StandardCharsets.UTF_8)) {
            if (isHeader(line)) {
                if (h != null) out.add(vma(h, flags));
                h = line.split("\\s+", 6);
                flags = "";
            } else if (line.startsWith("VmFlags:")) {
                flags = line.substring(8).trim();
            }
        }
        if (h != null) out.add(vma(h, flags));
        return out;
    }

    /**
     * The VMAs from /proc/PID/maps (no page table walk, unlike smaps) with the VmFlags of the parent
     * image's VMA at the same start, when every one of them is that VMA: the same range, protection,
     * sharing, offset, file and kind (gd, the flag a restart uses, goes with the VMA itself; uw, which the
     * write tracking adds, is not taken from here: the tracking asks PAGEMAP_SCAN). Null as soon as one
     * is not: the caller reads smaps.
     */
    static List<Vma> vmasAsParent(ProcFs fs, int pid, java.util.Map<Long, Vma> parent) throws IOException {
        List<Vma> out = new ArrayList<>();
        for (String line : Files.readAllLines(fs.dir(pid).resolve("maps"), StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            Vma v = vma(line.split("\\s+", 6), "");
            Vma p = parent.get(v.start());
            if (p == null || !v.equals(new Vma(p.start(), p.end(), p.prot(), p.shared(), p.offset(), p.devMajor(), p.devMinor(),
                    p.inode(), p.path(), p.kind(), ""))) return null;
            out.add(p);
        }
        return out;
    }

    // A header is "start-end perms offset dev inode [path]"; field lines are "Name:   value".
    private static boolean isHeader(String line) {
        int dash = line.indexOf('-'), sp = line.indexOf(' ');
        return dash > 0 && sp > dash && line.substring(0, dash).chars().allMatch(c -> Character.digit(c, 16) >= 0);
    }

    private static Vma vma(String[] h, String vmFlags) {
        String[] range = h[0].split("-");
        long start = Long.parseUnsignedLong(range[0], 16), end = Long.parseUnsignedLong(range[1], 16);
        String perms = h[1];
        int prot = (perms.charAt(0) == 'r' ? Records.PROT_READ : 0) | (perms.charAt(1) == 'w' ? Records.PROT_WRITE : 0)
                | (perms.charAt(2) == 'x' ? Records.PROT_EXEC : 0);
        boolean shared = perms.charAt(3) == 's';
        String[] dev = h[3].split(":");
        long inode = Long.parseLong(h[4]);
        String path = h.length > 5 ? h[5].trim() : "";
        int kind = switch (path) {
            case "[heap]" -> Records.VMA_HEAP;
            case "[stack]" -> Records.VMA_STACK;
            case "[vdso]" -> Records.VMA_VDSO;
            case "[vvar]", "[vvar_vclock]" -> Records.VMA_VVAR;
            case "[vsyscall]" -> Records.VMA_VSYSCALL;
            default -> inode != 0 && !path.isEmpty() && !path.startsWith("[") ? Records.VMA_FILE : Records.VMA_ANON;
        };
        return new Vma(start, end, prot, shared, Long.parseUnsignedLong(h[2], 16), Integer.parseInt(dev[0], 16),
                Integer.parseInt(dev[1], 16), inode, path, kind, vmFlags);
    }

    /**
     * A swapped-out page (pagemap bit 62) that has contents. The kernel reports its pte markers as swap
     * entries too, of swap type 31 (SWP_PTE_MARKER: the frame field's low 5 bits, visible to the daemon):
     * the uffd-wp marker write tracking leaves in the empty ptes of file-backed mappings, guard regions,
     * poisoned pages. They hold no data, so they are not pages to store.
     */
    static boolean swapped(long e) {
        return (e & PM_SWAPPED) != 0 && (e & PM_SWAP_TYPE) != SWP_PTE_MARKER;
    }

    private static final long PM_SWAP_TYPE = 0x1f, SWP_PTE_MARKER = 0x1f;

    /** Does this VMA get its pages looked at at all, and does a file-backed page count? */
    private static boolean dumpsPages(Vma v) {
        return switch (v.kind()) {
            case Records.VMA_VDSO, Records.VMA_VVAR, Records.VMA_VSYSCALL -> false;
            case Records.VMA_FILE -> !v.path().startsWith("/SYSV") && (!v.shared() || isShmemLike(v)); // SysV: SysvShm saves it
            default -> true;
        };
    }

    /** Shared anonymous memory shows up as a file of the internal shmem mount. */
    /** The pages of a shared memory VMA whose object holds data (SEEK_DATA on /proc/PID/map_files/START-END). */
    private static void sharedPages(Path dir, Vma v, Runs runs) throws IOException {
        Path f = dir.resolve("map_files").resolve(Long.toHexString(v.start()) + "-" + Long.toHexString(v.end()));
        int fd = ssi.shim.LocalFds.open(f.toString(), 0);
        List<long[]> data;
        try {
            data = ssi.shim.LocalFds.dataRanges(fd, v.offset(), v.offset() + (v.end() - v.start()));
        } finally {
            ssi.shim.LocalFds.closeQuietly(fd);
        }
        long page = ImageFormat.PAGE_SIZE;
        for (long[] r : data) {
            for (long p = (r[0] - v.offset()) / page; p < (r[1] - v.offset() + page - 1) / page; p++) runs.page(p, Runs.HERE);
        }
        runs.end(v.pages());
    }

    private static boolean isShmemLike(Vma v) {
        return v.path().startsWith("/dev/zero") || v.path().startsWith("/memfd:") || v.path().startsWith("/SYSV");
    }

    /** Writes the stored pages of every VMA to pages; returns the PAGEMAP records. */
    static List<Records.Pagemap> dumpPages(ProcFs fs, int pid, List<Vma> vmas, DataWriter pages) throws IOException {
        return dumpPages(fs, pid, vmas, pages, null).pagemaps();
    }

    /**
     * What an incremental checkpoint compares a process with: for each VMA tracked since the parent
     * image, its present pages and which of them were written since, and which pages the parent has.
     */
    interface Baseline {
        /**
         * Regions {start, end, PAGE_IS_* categories} of the present or swapped pages of v, with
         * PAGE_IS_WRITTEN on those written since the parent image (PAGEMAP_SCAN), or null: v is not
         * tracked from the parent (store it whole).
         */
        List<long[]> scan(Vma v) throws IOException;

        /** Pages of v present in the parent image (stored there or further up the chain), by page index in v. */
        BitSet parentPresent(Vma v);
    }

    /** PAGEMAP and PARENT_PAGES records of a process, and the written regions scanned, by VMA start. */
    /**
     * copyNanos: time spent by the copy's two lanes (the caller, then the helper) in process_vm_readv and
     * in checksums and writes (a checkpoint trace shows them).
     */
    record Dumped(List<Records.Pagemap> pagemaps, List<Records.ParentPages> parentPages, Map<Long, List<long[]>> scanned,
                  long[] copyNanos) {}

    /**
     * Writes the stored pages of every VMA to pages. With a baseline (an incremental checkpoint), a
     * present page of a tracked VMA that was not written since the parent image and is present there is
     * a PARENT_PAGES reference instead; every other present page is stored, as in a full image. Pages
     * that are not present now are in neither record, so a restore never takes them from the parent.
     */
    static Dumped dumpPages(ProcFs fs, int pid, List<Vma> vmas, DataWriter pages, Baseline base) throws IOException {
        return dumpPages(fs, pid, vmas, pages, base, null);
    }

    /**
     * As {@link #dumpPages(ProcFs, int, List, DataWriter, Baseline)}; a tracked VMA whose pages ahead
     * copied already (from the very scan base gives for it) is taken from there.
     */
    static Dumped dumpPages(ProcFs fs, int pid, List<Vma> vmas, DataWriter pages, Baseline base, Ahead ahead) throws IOException {
        List<Records.Pagemap> out = new ArrayList<>();
        List<Records.ParentPages> fromParent = new ArrayList<>();
        Map<Long, List<long[]>> scanned = new HashMap<>();
        Path dir = fs.dir(pid);
        long[] copyNanos = new long[4];
        List<Runs> done = new ArrayList<>();
        try (FileChannel pagemap = FileChannel.open(dir.resolve("pagemap"), StandardOpenOption.READ);
             FileChannel mem = FileChannel.open(dir.resolve("mem"), StandardOpenOption.READ);
             Copier copier = new Copier(pid, mem, pages, 2)) {
            for (Vma v : vmas) {
                if (!dumpsPages(v)) continue;
                boolean fileCounts = v.kind() != Records.VMA_FILE || isShmemLike(v);
                List<long[]> regions = base == null ? null : base.scan(v);
                Ahead.Done early = ahead == null || regions == null ? null : ahead.done.get(v.start());
                if (early != null && early.regions() == regions) {
                    ahead.place(early, pages);
                    scanned.put(v.start(), early.written());
                    done.add(early.runs());
                    continue;
                }
                Runs runs = new Runs(v, copier);
                if (regions == null && v.shared() && isShmemLike(v)) {
                    // Shared memory: every page of the object that holds data, whether or not this process
                    // has it in its page tables (a page only another process touched is still there).
                    sharedPages(dir, v, runs);
                } else if (regions == null) {
                    // every present page, from /proc/PID/pagemap
                    long n = v.pages();
                    ByteBuffer pm = ByteBuffer.allocate(8 * (int) Math.min(n, PAGEMAP_BATCH)).order(ByteOrder.LITTLE_ENDIAN);
                    for (long first = 0; first < n; first += PAGEMAP_BATCH) {
                        int cnt = (int) Math.min(PAGEMAP_BATCH, n - first);
                        readPagemap(pagemap, pid, v, first, cnt, pm);
                        for (int i = 0; i < cnt; ) {
                            int j = i;
                            while (j < cnt && stored(pm.getLong(8 * j), fileCounts)) j++;
                            runs.range(first + i, first + j, Runs.HERE); // the stretch of stored pages at i
                            if (j == i) j++; // page i is not stored: nothing to do for it
                            i = j;
                        }
                    }
                    runs.end(n);
                } else {
                    scanned.put(v.start(), tracked(pagemap, pid, v, regions, base.parentPresent(v), fileCounts, runs));
                }
                copier.flush();
                done.add(runs);
            }
            copier.finish();
            System.arraycopy(copier.nanos, 0, copyNanos, 0, 2);
            if (copier.helper != null) System.arraycopy(copier.helper.times, 0, copyNanos, 2, 2);
        }
        for (Runs runs : done) { // every run is written now, the helper's included
            long start = runs.v.start();
            if (!runs.stored.isEmpty()) out.add(new Records.Pagemap(start, List.copyOf(runs.stored)));
            if (!runs.spans.isEmpty()) fromParent.add(new Records.ParentPages(start, List.copyOf(runs.spans)));
        }
        return new Dumped(out, fromParent, scanned, copyNanos);
    }

    /**
     * The stored pages of the VMAs tracked since the parent, copied ahead: by the thread that scans them
     * for written pages, right after its scan, while the checkpoint's thread inspects the application and
     * injects its calls (the process is frozen, and those calls write only into the scratch page). The
     * image directory may not exist yet, so the copies are held in memory, at most {@link #HOLD_LIMIT}
     * bytes over all the processes of a checkpoint (their Aheads share one budget); the page writer gets them when {@link #dumpPages} takes their VMA ({@link #place}) and writes
     * them once the application is let go ({@link DataWriter#hold}). dumpPages takes a VMA from here only
     * when base's scan for it is the very one this copy used: a VMA that changed since is dumped as usual,
     * as is one past the limit, one that is not readable and one whose read faulted. Owned by the scanning
     * thread until it is done; read by the checkpoint's thread after it joined that thread.
     */
    static final class Ahead implements AutoCloseable {
        /**
         * The most bytes one checkpoint holds: 1% of a few GiB written between two checkpoints (what
         * incremental ones are for), within the spare direct buffers the JVM keeps for the image writers.
         */
        static final long HOLD_LIMIT = 16L << 20;

        /** A VMA copied ahead: the scan it used, its runs (their places filled by {@link #place}), its written regions. */
        record Done(List<long[]> regions, Runs runs, List<long[]> written, List<Copier.Held> held) {
            /** The stored runs (filled by {@link #place}). */
            List<PageRun> stored() {
                return runs.stored;
            }
        }

        final Map<Long, Done> done = new HashMap<>();
        private final int pid;
        private final FileChannel pagemap;
        private final Copier copier;
        /** Bytes the checkpoint may still hold, shared by the Aheads of its processes (they run at once). */
        private final java.util.concurrent.atomic.AtomicLong budget;

        Ahead(ProcFs fs, int pid, java.util.concurrent.atomic.AtomicLong budget) throws IOException {
            this.pid = pid;
            this.budget = budget;
            pagemap = FileChannel.open(fs.dir(pid).resolve("pagemap"), StandardOpenOption.READ);
            copier = new Copier(pid, null, null, 1); // holds its copies
        }

        /** Copies the stored pages of v (a VMA of the parent image, tracked), of which regions is the scan. */
        void vma(Vma v, List<long[]> regions, BitSet parentPresent) throws IOException {
            if (!dumpsPages(v) || (v.prot() & Records.PROT_READ) == 0) return; // (only /proc/PID/mem reads those)
            // room for the written pages, taken from the budget first (pages present but neither written
            // nor in the parent, rare, can make the copy need more: it then gives up, the VMA is copied
            // the ordinary way)
            long written = 0;
            for (long[] r : regions) if ((r[2] & WriteProtect.PAGE_IS_WRITTEN) != 0) written += r[1] - r[0];
            if (!take(written)) return;
            copier.room = written;
            Runs runs = new Runs(v, copier);
            List<long[]> w = null;
            boolean whole = false;
            try {
                w = tracked(pagemap, pid, v, regions, parentPresent, v.kind() != Records.VMA_FILE || isShmemLike(v), runs);
                copier.flush();
                whole = !copier.unfit;
            } finally {
                if (!whole) { // gave up, or failed: nothing of this VMA is kept
                    copier.giveBackHeld();
                    copier.unfit = false;
                    budget.addAndGet(written);
                }
            }
            if (!whole) return;
            budget.addAndGet(copier.room); // what it did not need
            done.put(v.start(), new Done(regions, runs, w, copier.takeHeld()));
        }

        /** n bytes off the budget, when it has them. */
        private boolean take(long n) {
            for (long left = budget.get(); ; left = budget.get()) {
                if (n > left) return false;
                if (budget.compareAndSet(left, left - n)) return true;
            }
        }

        /** Gives d's copies their places in the first page stripe of pages, which keeps them, and fills d's runs. */
        void place(Done d, DataWriter pages) {
            for (int j = 0; j < d.held().size(); j++) {
                Copier.Held h = d.held().get(j);
                d.held().set(j, null);
                DataWriter.Chunk[] chunks = pages.hold(0, h.data(), h.lens(), h.crcs(), h.n());
                for (int i = 0; i < h.n(); i++) {
                    h.out().set(h.slot() + i, new PageRun(h.firsts()[i], h.lens()[i] / ImageFormat.PAGE_SIZE, chunks[i].file(),
                            chunks[i].offset(), chunks[i].crc()));
                }
            }
        }

        /** Gives back the copies no page writer took. */
        @Override
        public void close() throws IOException {
            for (Done d : done.values()) {
                for (int j = 0; j < d.held().size(); j++) {
                    Copier.Held h = d.held().get(j);
                    if (h != null) DataWriter.giveBack(h.data());
                    d.held().set(j, null);
                }
            }
            done.clear();
            pagemap.close();
        }
    }

    /**
     * The pages of v, tracked since the parent image, into runs: regions is v's PAGEMAP_SCAN (present,
     * swapped and written pages), parentPresent the pages the parent chain has; returns the written
     * regions {start, end}.
     */
    private static List<long[]> tracked(FileChannel pagemap, int pid, Vma v, List<long[]> regions, BitSet parentPresent,
                                        boolean fileCounts, Runs runs) throws IOException {
        BitSet present = new BitSet(), dirty = new BitSet();
        List<long[]> written = new ArrayList<>();
        for (long[] r : regions) {
            int from = index(v, r[0]), to = index(v, r[1]);
            if ((r[2] & WriteProtect.PAGE_IS_WRITTEN) != 0) {
                dirty.set(from, to);
                written.add(new long[] {r[0], r[1]});
            }
            if ((r[2] & WriteProtect.PAGE_IS_PRESENT) != 0) {
                if (fileCounts || (r[2] & WriteProtect.PAGE_IS_FILE) == 0) present.set(from, to);
            } else if ((r[2] & WriteProtect.PAGE_IS_SWAPPED) != 0) {
                // swapped out, or a pte marker holding nothing: pagemap tells them apart
                ByteBuffer pm = ByteBuffer.allocate(8 * (to - from)).order(ByteOrder.LITTLE_ENDIAN);
                readPagemap(pagemap, pid, v, from, to - from, pm);
                for (int i = 0; i < to - from; i++) {
                    long e = pm.getLong(8 * i);
                    if (swapped(e) && (fileCounts || (e & PM_FILE) == 0)) present.set(from + i);
                }
            }
        }
        // by stretches, not page by page: from the parent are the present pages not written
        // since and present there, stored here the other present ones
        BitSet parentHas = (BitSet) present.clone();
        parentHas.andNot(dirty);
        parentHas.and(parentPresent);
        for (int i = present.nextSetBit(0); i >= 0; ) {
            int end = present.nextClearBit(i);
            while (i < end) {
                boolean parent = parentHas.get(i);
                int to = Math.min(end, parent ? parentHas.nextClearBit(i) : nextSet(parentHas, i, end));
                runs.range(i, to, parent ? Runs.PARENT : Runs.HERE);
                i = to;
            }
            i = present.nextSetBit(end);
        }
        runs.end(v.pages());
        return written;
    }

    /** Whether a page with pagemap entry e is stored (present or swapped; a file's own page only if fileCounts). */
    private static boolean stored(long e, boolean fileCounts) {
        return ((e & PM_PRESENT) != 0 || swapped(e)) && (fileCounts || (e & PM_FILE) == 0);
    }

    /** The first set bit of b in [from, limit), or limit. */
    private static int nextSet(BitSet b, int from, int limit) {
        int n = b.nextSetBit(from);
        return n < 0 || n > limit ? limit : n;
    }

    private static int index(Vma v, long addr) {
        return (int) ((Math.min(Math.max(addr, v.start()), v.end()) - v.start()) / ImageFormat.PAGE_SIZE);
    }

    /** cnt pagemap entries of v from its page first on, into pm (little endian). */
    private static void readPagemap(FileChannel pagemap, int pid, Vma v, long first, int cnt, ByteBuffer pm) throws IOException {
        pm.clear().limit(8 * cnt);
        long at = (v.start() / ImageFormat.PAGE_SIZE + first) * 8;
        while (pm.hasRemaining()) {
            if (pagemap.read(pm, at + pm.position()) <= 0) {
                throw new CheckpointException(CheckpointException.EIO, "process " + pid
                        + ": short read of /proc/pid/pagemap at VMA 0x" + Long.toHexString(v.start()));
            }
        }
    }

    /**
     * Turns the pages of one VMA, given in increasing order with what becomes of each (stored here,
     * in the parent, or nothing: a page not given is nothing), into stored runs of at most {@link
     * #CHUNK} bytes (copied through the Copier) and PARENT_PAGES spans.
     */
    private static final class Runs {
        static final int NONE = 0, HERE = 1, PARENT = 2;
        final List<PageRun> stored = new ArrayList<>();
        final List<Records.PageSpan> spans = new ArrayList<>();
        private final Vma v;
        private final Copier copier;
        private long runStart = -1, runEnd, spanStart = -1, spanEnd;

        Runs(Vma v, Copier copier) {
            this.v = v;
            this.copier = copier;
        }

        void page(long page, int kind) throws IOException {
            if (runStart >= 0 && (kind != HERE || page != runEnd || (runEnd - runStart) * ImageFormat.PAGE_SIZE == CHUNK)) {
                copier.add(v, runStart, (int) (runEnd - runStart), stored);
                runStart = -1;
            }
            if (spanStart >= 0 && (kind != PARENT || page != spanEnd)) {
                spans.add(new Records.PageSpan(spanStart, (int) (spanEnd - spanStart)));
                spanStart = -1;
            }
            if (kind == HERE) {
                if (runStart < 0) runStart = page;
                runEnd = page + 1;
            } else if (kind == PARENT) {
                if (spanStart < 0) spanStart = page;
                spanEnd = page + 1;
            }
        }

        /** As {@link #page} for every page of [from, to), kind HERE or PARENT, without going page by page. */
        void range(long from, long to, int kind) throws IOException {
            if (from >= to) return;
            page(from, kind); // closes what came before and opens the run or span at from
            long chunkPages = CHUNK / ImageFormat.PAGE_SIZE;
            if (kind == PARENT) {
                spanEnd = to;
                return;
            }
            // a stored run holds at most CHUNK bytes: full runs are cut here as page() would cut them
            while (to - runStart > chunkPages) {
                runEnd = runStart + chunkPages;
                copier.add(v, runStart, (int) chunkPages, stored);
                runStart = runEnd;
            }
            runEnd = to;
        }

        void end(long pages) throws IOException {
            page(pages, NONE);
        }
    }

    /**
     * Copies runs of pages into the pages files in batches: up to {@link RemoteRead#MAX_RANGES} runs or
     * {@link #CHUNK} bytes of a readable VMA are read with one process_vm_readv, checksummed and written
     * with one write; anything else (an unreadable mapping, which only /proc/PID/mem may read, or a batch
     * that faulted) goes run by run through /proc/PID/mem. Two lanes: the caller's thread, writing the
     * first page stripe, and a helper thread, writing the second, each reading, checksumming and writing
     * its own batches: reading another process's memory (~5 GB/s here, it pins every page) and the copy
     * into the filesystem both run on both cores of a node. A batch goes to the helper when it has fewer
     * than two waiting, else the caller copies it; each run's place in its VMA's list is taken when the
     * batch is made, so the runs stay in page order. {@link #finish} waits for the helper.
     */
    private static final class Copier implements AutoCloseable {
        private final int pid;
        private final FileChannel mem;
        private final DataWriter pages;
        private long[] addrs = new long[RemoteRead.MAX_RANGES], firsts = new long[RemoteRead.MAX_RANGES];
        private int[] lens = new int[RemoteRead.MAX_RANGES];
        private int n, bytes;
        private Vma vma;
        private List<PageRun> out;
        final Helper helper;
        /** Time of the caller in: process_vm_readv, checksums and writes. */
        final long[] nanos = new long[2];

        /** n runs of one VMA, from slot on in out. */
        private record Batch(Vma vma, long[] addrs, long[] firsts, int[] lens, int n, int bytes, List<PageRun> out, int slot) {}

        /** A batch read and checksummed, held (no pages writer): n runs of data, whose places in out from slot on are empty. */
        record Held(ByteBuffer data, long[] firsts, int[] lens, int[] crcs, int n, List<PageRun> out, int slot) {}

        /** Without a pages writer: the batches read, and whether one could not be (a fault, past room, an unreadable VMA). */
        private final List<Held> held = new ArrayList<>();
        boolean unfit;
        /** Without a pages writer: bytes that may be held still. */
        long room;

        /**
         * lanes: 2 to use the helper lane too (when pages has a second stripe), 1 for this thread alone.
         * Without pages (and mem), the batches are held ({@link #takeHeld}) for a writer to place later.
         */
        Copier(int pid, FileChannel mem, DataWriter pages, int lanes) {
            this.pid = pid;
            this.mem = mem;
            this.pages = pages;
            this.helper = lanes > 1 && pages != null && pages.stripes() > 1 ? new Helper() : null;
        }

        /** The batches held since the last call; the caller owns their buffers. */
        List<Held> takeHeld() {
            List<Held> h = new ArrayList<>(held);
            held.clear();
            return h;
        }

        /** Gives back the buffers of the batches held since the last {@link #takeHeld}. */
        void giveBackHeld() {
            for (Held h : held) DataWriter.giveBack(h.data());
            held.clear();
        }

        void add(Vma v, long first, int count, List<PageRun> runs) throws IOException {
            if (pages == null && (unfit || (v.prot() & Records.PROT_READ) == 0)) {
                unfit = true;
                return;
            }
            if ((v.prot() & Records.PROT_READ) == 0) {
                flush();
                PageRun r = copy(mem, pid, v, first, count, pages, 0);
                synchronized (runs) {
                    runs.add(r);
                }
                return;
            }
            int len = count * ImageFormat.PAGE_SIZE;
            if (n == RemoteRead.MAX_RANGES || bytes + len > CHUNK || (n > 0 && (vma != v || out != runs))) flush();
            vma = v;
            out = runs;
            addrs[n] = v.start() + first * ImageFormat.PAGE_SIZE;
            firsts[n] = first;
            lens[n] = len;
            n++;
            bytes += len;
        }

        void flush() throws IOException {
            if (n == 0) return;
            int slot;
            synchronized (out) {
                slot = out.size();
                for (int i = 0; i < n; i++) out.add(null);
            }
            Batch b = new Batch(vma, addrs, firsts, lens, n, bytes, out, slot);
            n = 0;
            bytes = 0;
            if (helper != null && helper.offer(b)) {
                // the helper owns those arrays now
                addrs = new long[RemoteRead.MAX_RANGES];
                firsts = new long[RemoteRead.MAX_RANGES];
                lens = new int[RemoteRead.MAX_RANGES];
                return;
            }
            copyBatch(b, 0, nanos);
        }

        /** Reads, checksums and writes batch b into page stripe k; fills its slots. Without a writer: holds it. */
        private void copyBatch(Batch b, int k, long[] times) throws IOException {
            if (pages == null) {
                hold(b, times);
                return;
            }
            ByteBuffer buf = pages.buffer();
            boolean whole = read(b, buf, times);
            long t2 = System.nanoTime();
            PageRun[] runs = new PageRun[b.n()];
            if (whole) {
                DataWriter.Chunk[] chunks = pages.writeSlices(k, buf.clear().limit(b.bytes()), b.lens(), b.n());
                for (int i = 0; i < b.n(); i++) {
                    runs[i] = new PageRun(b.firsts()[i], b.lens()[i] / ImageFormat.PAGE_SIZE, chunks[i].file(), chunks[i].offset(),
                            chunks[i].crc());
                }
            } else {
                pages.release(buf);
                for (int i = 0; i < b.n(); i++) runs[i] = copy(mem, pid, b.vma(), b.firsts()[i], b.lens()[i] / ImageFormat.PAGE_SIZE, pages, k);
            }
            synchronized (b.out()) {
                for (int i = 0; i < b.n(); i++) b.out().set(b.slot() + i, runs[i]);
            }
            times[1] += System.nanoTime() - t2;
        }

        /** process_vm_readv of batch b into buf (limited to its bytes), its time added to times[0]; whether all of it came. */
        private boolean read(Batch b, ByteBuffer buf, long[] times) {
            buf.limit(b.bytes());
            long t1 = System.nanoTime();
            long got = RemoteRead.read(pid, b.addrs(), b.lens(), b.n(), buf);
            times[0] += System.nanoTime() - t1;
            return got == b.bytes();
        }

        /** Reads and checksums batch b into a buffer of its own, held; unfit instead when it faults or has no room. */
        private void hold(Batch b, long[] times) {
            if (unfit || b.bytes() > room) {
                unfit = true;
                return;
            }
            ByteBuffer buf = DataWriter.spareBuffer();
            if (!read(b, buf, times)) {
                DataWriter.giveBack(buf);
                unfit = true;
                return;
            }
            long t2 = System.nanoTime();
            int[] crcs = DataWriter.sliceCrcs(buf.clear().limit(b.bytes()), b.lens(), b.n());
            room -= b.bytes();
            held.add(new Held(buf, java.util.Arrays.copyOf(b.firsts(), b.n()), java.util.Arrays.copyOf(b.lens(), b.n()), crcs, b.n(),
                    b.out(), b.slot()));
            times[1] += System.nanoTime() - t2;
        }

        /** Waits for the helper's batches; throws the first error one of them had. */
        void finish() throws IOException {
            if (helper != null) helper.finish();
        }

        /** Stops the helper, waiting for the batch it copies (after an error: it uses the writer's buffers). */
        @Override
        public void close() {
            if (helper != null) helper.stop();
        }

        /**
         * The second lane: batches offered to it are copied into page stripe 1 by {@link #LANE}, a thread
         * this JVM keeps for it (checkpoints on a node run one at a time; two at once would share it).
         */
        private final class Helper {
            private int inFlight; // guarded by this: offered and not finished
            private boolean stopping;
            private Throwable failed;
            final long[] times = new long[2];

            synchronized boolean offer(Batch b) {
                if (failed != null || stopping || inFlight >= 2) return false;
                inFlight++;
                LANE.execute(() -> run(b));
                return true;
            }

            private void run(Batch b) {
                Throwable err = null;
                try {
                    boolean skip;
                    synchronized (this) {
                        skip = failed != null || stopping;
                    }
                    if (!skip) copyBatch(b, 1, times);
                } catch (Throwable e) {
                    err = e;
                }
                synchronized (this) {
                    if (err != null && failed == null) failed = err;
                    inFlight--;
                    notifyAll();
                }
            }

            /** Waits until no batch of this helper is queued or being copied. */
            private synchronized void await() {
                boolean interrupted = false;
                while (inFlight > 0) {
                    try {
                        wait();
                    } catch (InterruptedException ie) {
                        interrupted = true; // a batch is bounded: it is waited for
                    }
                }
                if (interrupted) Thread.currentThread().interrupt();
            }

            void finish() throws IOException {
                await();
                Throwable e;
                synchronized (this) {
                    e = failed;
                }
                if (e instanceof IOException io) throw io;
                if (e instanceof RuntimeException re) throw re;
                if (e instanceof Error er) throw er;
            }

            void stop() {
                synchronized (this) {
                    stopping = true;
                }
                await();
            }
        }
    }

    /** The thread of every Copier's second lane (a daemon thread, made on first use). */
    private static final java.util.concurrent.ExecutorService LANE = java.util.concurrent.Executors.newSingleThreadExecutor(
            r -> Thread.ofPlatform().name("page-copy").daemon(true).unstarted(r));

    /** One run through /proc/PID/mem into a buffer of the pages writer, written into page stripe k. */
    private static PageRun copy(FileChannel mem, int pid, Vma v, long first, int count, DataWriter pages, int k)
            throws IOException {
        long addr = v.start() + first * ImageFormat.PAGE_SIZE;
        ByteBuffer buf = pages.buffer();
        buf.limit(count * ImageFormat.PAGE_SIZE);
        while (buf.hasRemaining()) {
            int r;
            try {
                r = mem.read(buf, addr + buf.position());
            } catch (IOException | RuntimeException e) {
                pages.release(buf);
                throw e;
            }
            if (r <= 0) {
                pages.release(buf);
                throw new CheckpointException(CheckpointException.EIO, "process " + pid + ": cannot read its memory at 0x"
                        + Long.toHexString(addr + buf.position()) + " (" + v.path() + ")");
            }
        }
        buf.flip();
        DataWriter.Chunk c = pages.writeBuffer(k, buf);
        return new PageRun(first, count, c.file(), c.offset(), c.crc());
    }
}
