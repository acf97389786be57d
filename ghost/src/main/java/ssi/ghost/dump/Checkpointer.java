package ssi.ghost.dump;

import ssi.ghost.image.DataWriter;
import ssi.ghost.image.Image;
import ssi.ghost.image.ImageFormat;
import ssi.ghost.image.Images;
import ssi.ghost.image.PageChain;
import ssi.ghost.image.ProcessImage;
import ssi.ghost.image.Records;
import ssi.shim.ShimLink;
import ssi.shim.Tracee;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntUnaryOperator;

/**
 * Checkpoints a running application into an image directory (docs/IMAGE-FORMAT.md): the root process
 * and every descendant, each thread frozen through the shim (attach all, then read), every object
 * inspected (an unsupported one refuses the whole checkpoint before any final file exists), then the
 * files written (temporary name, rename; the inventory last) and the threads let go, or with stop the
 * files fsync'd and the processes killed once the image is safely on disk.
 *
 * <p>Threads: one checkpoint runs on the calling thread (a daemon worker) from start to end; it blocks
 * on the shim link and must never run on the "shim-link" thread. Checkpoints of disjoint trees may
 * run at once (the shim refuses a second attach to one thread).
 */
public final class Checkpointer {
    /**
     * What a finished checkpoint reports: parentPageBytes are the bytes of present pages an incremental
     * image refers to in its parent chain instead of storing them (0 for a full image); notes are
     * things worth a line in the node log (e.g. a process whose write tracking could not start).
     */
    public record Result(Path dir, long freezeMicros, int processes, long pageBytes, long parentPageBytes, Path parent,
                         List<String> notes) {
        public Result(Path dir, long freezeMicros, int processes, long pageBytes) {
            this(dir, freezeMicros, processes, pageBytes, 0, null, List.of());
        }
    }

    private static final int SIGCHLD = 17, EOVERFLOW = 75;

    /** Each round attaches everything new; an application that forks faster than we attach is refused. */
    private static final int MAX_FREEZE_ROUNDS = 1000;

    private final ShimLink link;
    private final ProcFs fs;
    private final int nodeId;
    private final WriteTracking tracking = new WriteTracking();
    private final java.util.concurrent.locks.ReentrantLock one = new java.util.concurrent.locks.ReentrantLock(true);

    /**
     * Set in a daemon's environment (any value), its checkpoints are traced: the node log gets the steps
     * of each with the microseconds since it began ("checkpoint of process G: trace: ..." lines).
     */
    public static final String TRACE_ENV = "SSI_TRACE_CHECKPOINT";
    private static final boolean TRACE = System.getenv(TRACE_ENV) != null;
    /** The trace of the checkpoint this thread runs (TRACE only): its start, then "+N us step" lines. */
    private static final ThreadLocal<List<String>> traced = new ThreadLocal<>();
    private static final ThreadLocal<Long> tracedFrom = new ThreadLocal<>();

    /** Notes a step of the checkpoint this thread runs, when traced. */
    static void mark(String step) {
        List<String> t = traced.get();
        if (t != null) t.add(String.format("trace: +%d us %s", (System.nanoTime() - tracedFrom.get()) / 1000, step));
    }

    public Checkpointer(ShimLink link, Path procRoot, int nodeId) {
        this.link = link;
        this.fs = new ProcFs(procRoot);
        this.nodeId = nodeId;
    }

    /** The write tracking of the processes this node checkpointed (their uffds): close it with the daemon. */
    public WriteTracking tracking() {
        return tracking;
    }

    /** A full checkpoint (see the other overload). */
    public Result checkpoint(int root, Path dir, boolean stop, int callerUid, int callerGid, IntUnaryOperator ssiCaps)
            throws IOException {
        return checkpoint(root, dir, stop, false, null, callerUid, callerGid, ssiCaps);
    }

    /**
     * Checkpoints the tree rooted at root into dir for callerUid (0: root, else the caller must own every
     * process: real, effective and saved uid). The image is written with the file-system identity
     * callerUid/callerGid, so the kernel applies the caller's permissions to the directory. ssiCaps gives the effective SSI capabilities of a pid for
     * the inventory. With stop, the application is killed (SIGKILL) after the image is written and fsync'd,
     * frozen until then; without, it is let go as soon as everything the image holds is in memory (the
     * files are written after, nothing is fsync'd: docs/IMAGE-FORMAT.md, "Durability"). Checkpoints on one
     * node run one at a time.
     *
     * <p>incremental: store only the pages written since the parent image (parent, or when null the last
     * image this node wrote of this application for callerUid) and refer to the others; a process or
     * mapping the write tracking does not cover since exactly that image is stored whole. Every
     * checkpoint that leaves the application running (re)starts the write tracking from its image.
     */
    public Result checkpoint(int root, Path dir, boolean stop, boolean incremental, Path parent, int callerUid,
                             int callerGid, IntUnaryOperator ssiCaps) throws IOException {
        long tEntry = System.nanoTime();
        if (TRACE) {
            traced.set(new ArrayList<>());
            tracedFrom.set(tEntry);
        }
        // One checkpoint at a time on a node: an application that is let go before its image is written
        // could otherwise be frozen by a second checkpoint (of it, or of a tree it is part of) whose write
        // tracking would then race with the first's.
        one.lock();
        try {
            return checkpointTraced(root, dir, stop, incremental, parent, callerUid, callerGid, ssiCaps, tEntry);
        } finally {
            one.unlock();
            traced.remove();
        }
    }

    private Result checkpointTraced(int root, Path dir, boolean stop, boolean incremental, Path parent, int callerUid,
                                    int callerGid, IntUnaryOperator ssiCaps, long tEntry) throws IOException {
        tracking.sweep(fs);
        long[] phases = new long[5]; // ns: injections, /proc, pages, metadata files, data files
        // Durable (fsync'd) only with stop, when the image is about to be the program's only copy; otherwise
        // the kernel writes it back (a crash before that leaves files that fail their CRC32C checks, or an
        // image without inventory.img, never one that restores wrongly).
        boolean durable = stop;
        ProcTree tree = ProcTree.collect(fs, root);
        if (tree == null) throw new CheckpointException(CheckpointException.ESRCH, "no process " + root + " on node " + nodeId);
        checkOwner(tree, callerUid); // before stopping anybody's threads
        if (java.nio.file.Files.exists(dir.resolve(ImageFormat.INVENTORY))) {
            throw new CheckpointException(CheckpointException.EEXIST, dir + " already holds an image; give another directory");
        }
        long rootStart = startTime(root);
        Parent base = null;
        if (incremental) {
            Path p = parent != null ? parent : tracking.lastImage(root, rootStart, callerUid);
            if (p == null) {
                throw new CheckpointException(CheckpointException.ENOENT, "no earlier checkpoint of process " + root + " by uid "
                        + callerUid + " is known to node " + nodeId + " (a node remembers the last image of each application "
                        + "it checkpointed since it started): give the parent image with --parent DIR, or take a full checkpoint first");
            }
            base = loadParent(p.toAbsolutePath().normalize(), dir, root, new AsCaller(callerUid, callerGid));
        }
        // job-control stops as they were before the freeze (ptrace shows every frozen thread as 't')
        Map<Integer, Character> before = new HashMap<>();
        for (ProcTree.Member m : tree.members()) before.put(m.pid(), m.state());
        Freezer freezer = new Freezer(link, fs);
        boolean dirPrepared = false, createdDir = false;
        Map<Integer, java.util.Optional<String>> armed = null;
        Map<Integer, Long> startsOut = null;
        // processes whose written pages the incremental scan protected again already (TrackedBaseline)
        java.util.Set<Integer> reprotected = new java.util.HashSet<>();
        // each process's baseline (null: stored whole), made right after the freeze; closed at the end
        Map<Integer, Memory.Baseline> baselines = new HashMap<>();
        AsCaller caller = new AsCaller(0, 0);
        try {
            long t0 = System.nanoTime();
            tree = freezeAll(freezer, root, tree);
            long tFrozen = System.nanoTime();
            mark("frozen");
            checkOwner(tree, callerUid); // again: the frozen tree may hold processes forked meanwhile
            // Zombies (ended, not reaped) are only a PSTREE entry with their wait status; the rest is live.
            ProcTree full = tree;
            if (full.members().getFirst().zombie())
                throw new CheckpointException(CheckpointException.ESRCH, "process " + root + " exited");
            tree = new ProcTree(full.members().stream().filter(m -> !m.zombie()).toList());
            // Incremental: the scan of each tracked process's written pages starts now, on a thread of its
            // own, while the application is inspected; its copies wait for the process's page writer.
            Map<Integer, Long> starts = new HashMap<>();
            startsOut = starts;
            // what the copies ahead of all the processes may hold in memory until the image is written
            java.util.concurrent.atomic.AtomicLong holdBudget = new java.util.concurrent.atomic.AtomicLong(Memory.Ahead.HOLD_LIMIT);
            for (ProcTree.Member m : tree.members()) {
                long start = startTime(m.pid());
                starts.put(m.pid(), start);
                Memory.Baseline bl = baseline(base, m.pid(), start);
                baselines.put(m.pid(), bl);
                if (bl instanceof TrackedBaseline tb) {
                    reprotected.add(m.pid());
                    // the scratch page's mmap and brk(0) take the mmap lock for writing, which the scan holds
                    // for reading: they come first (dumpProcess takes the page over)
                    Tracee tt = freezer.any(m.pid());
                    tb.scratch = Scratch.map(tt, m.pid());
                    tb.brk = Memory.brk(tt);
                    tb.startPrefetch(fs, m.pid(), holdBudget);
                }
            }

            // Inspect first: every refusal comes before the first file is written.
            Map<Integer, Fds.Found> files = new LinkedHashMap<>();
            Map<Long, ssi.shim.UnixDiag.Info>[] unixCache = new Map[1];
            Fds.UnixSockets unix = () -> {
                if (unixCache[0] == null) unixCache[0] = ssi.shim.UnixDiag.all();
                return unixCache[0];
            };
            for (ProcTree.Member m : tree.members()) {
                if (m.state() == 'X') throw new CheckpointException(CheckpointException.EIO, "process " + m.pid() + " is dying; try again");
                files.put(m.pid(), Fds.dump(fs, m.pid(), unix));
            }
            SharedFds.checkVfork(tree.pids());
            Map<Integer, List<Records.Fd>> fdsByPid = new LinkedHashMap<>();
            files.forEach((pid, f) -> fdsByPid.put(pid, f.fds()));
            Fds.checkPipes(fdsByPid);
            Fds.checkPipeHolders(fs, fdsByPid);
            checkProcEntries(tree, fdsByPid);
            boolean sockets = fdsByPid.values().stream().flatMap(List::stream).anyMatch(f -> f.kind() == Records.FD_UNIX);
            Map<Long, ssi.shim.UnixDiag.Info> socks = sockets ? unix.get() : Map.of();
            if (sockets) SharedFds.checkSockets(fdsByPid, socks);
            Map<Integer, Map<Integer, byte[]>> queued = new HashMap<>();
            Map<Integer, List<Records.Fd>> shared = SharedFds.queues(SharedFds.identify(fdsByPid), socks, queued);
            Map<Integer, List<Records.FdState>> states = new HashMap<>();
            files.forEach((pid, f) -> states.put(pid, f.states()));
            AnonFds.checkEpolls(shared, states);
            SysvShm.Found shm = SysvShm.inspect(fs, tree.pids(), callerUid);
            SysvOther.refuseUsed(fs, tree.pids());
            for (var e : shared.entrySet()) {
                Fds.Found f = files.get(e.getKey());
                files.put(e.getKey(), new Fds.Found(e.getValue(), f.deleted(), queued.getOrDefault(e.getKey(), Map.of()),
                        f.states()));
            }

            // Every path operation on the image (create, rename, chmod, remove) runs with the caller's fs
            // identity; /proc is read with the daemon's own (a process that changed uid has root-owned
            // /proc files), and data goes to channels opened as the caller.
            caller = new AsCaller(callerUid, callerGid);
            long tInspected = System.nanoTime();
            mark("inspected (fds, pipes, sockets, SysV)");
            createdDir = caller.run(() -> Images.prepareDir(dir, callerUid));
            boolean createdDirFinal = createdDir;
            dirPrepared = true;
            long pageBytes = 0, parentBytes = 0, tDumped;
            // children whose parent has a wait report of them to collect: pid -> TreeEntry flag
            Map<Integer, Integer> pendingReports = new HashMap<>();
            List<Records.SysvShm> shmRecords = List.of();
            List<ProcessImage> images = new ArrayList<>();
            List<DataWriter> pending = new ArrayList<>();
            Map<Integer, Map<Long, List<long[]>>> scanned = new HashMap<>();
            // processes whose tracking was (re)armed while their pages were read, with arm's note
            Map<Integer, java.util.Optional<String>> armedEarly = new HashMap<>();
            armed = armedEarly;
            List<Records.TreeEntry> entries;
            List<String> lateNotes = new ArrayList<>();
            long micros = 0, tArmed = 0, tReleased = 0;
            try {
                for (ProcTree.Member m : tree.members()) {
                    DataWriter pages = caller.run(() -> DataWriter.createStriped(dir, k -> ImageFormat.pagesFile(m.pid(), k),
                            ImageFormat.PAGE_STRIPES, ImageFormat.MAGIC_PAGES, m.pid(), durable));
                    pending.add(pages);
                    DataWriter data = caller.run(() -> DataWriter.create(dir, ImageFormat.fileDataFile(m.pid()), ImageFormat.MAGIC_FILEDATA, m.pid(), durable));
                    pending.add(data);
                    long start = starts.get(m.pid());
                    Map<Long, List<long[]>> sc = new HashMap<>();
                    Memory.Baseline bl = baselines.get(m.pid());
                    // a process stored whole that stays running: its tracking starts while its pages are read
                    boolean armNow = !stop && bl == null && !ownSeccompFilter(m.pid());
                    List<int[]> kids = new ArrayList<>(); // {pid, 1 if job control had stopped it}
                    for (ProcTree.Member k : full.members())
                        if (k.ppid() == m.pid() && !k.zombie()) kids.add(new int[] {k.pid(), before.getOrDefault(k.pid(), 'R') == 'T' ? 1 : 0});
                    ProcessImage img;
                    try {
                        img = dumpProcess(freezer, m.pid(), files.get(m.pid()), pages, data, bl, sc, phases,
                                armNow ? armedEarly : null, start, kids, pendingReports);
                    } catch (IOException | RuntimeException e) {
                        if (bl instanceof AutoCloseable c) {
                            try {
                                closeBaseline(c); // (dumpProcess closes it once the pages are read)
                            } catch (IOException | RuntimeException ce) {
                                e.addSuppressed(ce);
                            }
                        }
                        throw e;
                    }
                    scanned.put(m.pid(), sc);
                    pageBytes += pages.bytes();
                    parentBytes += img.parentPageCount() * ImageFormat.PAGE_SIZE;
                    images.add(img);
                }
                if (!shm.segments().isEmpty()) {
                    DataWriter sd = caller.run(() -> DataWriter.create(dir, ImageFormat.SYSV_SHM_DATA, ImageFormat.MAGIC_FILEDATA, root, durable));
                    pending.add(sd);
                    shmRecords = SysvShm.save(fs, shm, sd);
                }
                tDumped = System.nanoTime();
                mark("every process dumped");
                // Everything the image holds is in memory now (the last pages in the writers' buffers). A
                // checkpoint that leaves the application running lets it go here, as CRIU's pre-dump does, once
                // the write tracking of every process starts from this point; the files are written after.
                // With --stop it stays frozen until the image is safely written and it is killed.
                entries = treeEntries(full, freezer, ssiCaps, before, pendingReports);
                if (!stop) {
                    for (ProcessImage img : images) {
                        if (armedEarly.containsKey(img.gpid())) continue; // armed while its pages were read
                        if (ownSeccompFilter(img.gpid())) {
                            // its filter could kill it for an injected userfaultfd (sandboxes often forbid it)
                            tracking.drop(img.gpid(), starts.get(img.gpid()));
                            lateNotes.add("process " + img.gpid() + " has a seccomp filter of its own: its writes are not "
                                    + "tracked, an incremental checkpoint saves it whole");
                            continue;
                        }
                        armedEarly.put(img.gpid(), java.util.Optional.ofNullable(tracking.arm(freezer.any(img.gpid()), img.gpid(),
                                starts.get(img.gpid()), fs.dir(img.gpid()).resolve("pagemap"), img.vmas(),
                                scanned.get(img.gpid()), null, 0)));
                    }
                    tArmed = System.nanoTime();
                    mark("tracking armed");
                    micros = freezer.release();
                    tReleased = System.nanoTime();
                    mark("let go");
                }
                long tw = System.nanoTime();
                for (ProcessImage img : images) caller.run(() -> { img.write(dir, callerUid, durable); return null; });
                long tm = System.nanoTime();
                phases[3] = tm - tw;
                for (DataWriter w : pending) caller.run(() -> { w.commit(callerUid); return null; });
                phases[4] = System.nanoTime() - tm;
            } finally {
                AsCaller c = caller;
                for (DataWriter w : pending) c.run(() -> { w.close(); return null; });
            }
            Records.Inventory inv = new Records.Inventory(System.currentTimeMillis(), nodeId, callerUid, root, hostname());
            Path parentDir = base == null ? null : base.dir();
            Records.Parent parentRec = base == null ? null : new Records.Parent(relative(dir, base.dir()),
                    base.image().inventory().createdMillis(), root, base.digest());
            List<Records.SysvShm> shmSaved = shmRecords;
            List<Records.TreeEntry> treeEntries = entries;
            caller.run(() -> {
                Image.writeInventory(dir, inv, treeEntries, parentRec, shmSaved, callerUid, durable);
                if (durable) {
                    Images.syncDir(dir);
                    // a directory this checkpoint made must be in its parent for good, too
                    Path up = dir.toAbsolutePath().getParent();
                    if (createdDirFinal && up != null) Images.syncDir(up);
                }
                return null;
            });
            long tWritten = System.nanoTime();
            mark("image written");
            // The image is safe: from here on nothing fails the checkpoint. Tracking restarts from this image.
            List<String> notes = new ArrayList<>();
            List<String> steps = traced.get();
            if (steps != null) notes.addAll(steps);
            notes.addAll(lateNotes);
            if (stop) {
                for (ProcTree.Member m : tree.members()) {
                    tracking.drop(m.pid(), starts.get(m.pid()));
                    ProcessHandle.of(m.pid()).ifPresent(ProcessHandle::destroyForcibly);
                }
                notes.addAll(SysvShm.removeAll(shmRecords)); // they went into the image with the application
            } else {
                List<Integer> pids = tree.pids();
                int digest;
                try {
                    digest = caller.run(() -> Image.digest(dir, pids));
                } catch (IOException e) {
                    for (ProcessImage img : images) tracking.drop(img.gpid(), starts.get(img.gpid()));
                    digest = 0;
                    notes.add("write tracking not restarted: cannot read back the image's digest (" + e.getMessage() + ")");
                    images = List.of();
                }
                for (ProcessImage img : images) {
                    java.util.Optional<String> armedNote = armedEarly.get(img.gpid());
                    if (armedNote == null) continue; // not tracked (see above)
                    // armed during the freeze: the tracking now starts from this image
                    tracking.bind(img.gpid(), starts.get(img.gpid()), dir, digest);
                    armedNote.ifPresent(notes::add);
                }
            }
            tracking.rememberImage(root, rootStart, callerUid, dir);
            if (stop) {
                tArmed = System.nanoTime();
                micros = freezer.release();
                notes.add(String.format("before the freeze %d us; frozen %d us: attach %d, inspect %d, read %d (inject %d, proc %d, "
                        + "pages %d), write %d (meta %d, data %d), detach %d", (t0 - tEntry) / 1000, micros, (tFrozen - t0) / 1000,
                        (tInspected - tFrozen) / 1000, (tDumped - tInspected) / 1000, phases[0] / 1000, phases[1] / 1000,
                        phases[2] / 1000, (tWritten - tDumped) / 1000, phases[3] / 1000, phases[4] / 1000,
                        (System.nanoTime() - tArmed) / 1000));
            } else {
                notes.add(String.format("before the freeze %d us; frozen %d us: attach %d, inspect %d, read %d (inject %d, proc %d, "
                        + "pages %d), write tracking %d, detach %d; then written in %d us (meta %d, data %d)", (t0 - tEntry) / 1000,
                        micros, (tFrozen - t0) / 1000, (tInspected - tFrozen) / 1000, (tDumped - tInspected) / 1000,
                        phases[0] / 1000, phases[1] / 1000, phases[2] / 1000, (tArmed - tDumped) / 1000,
                        (tReleased - tArmed) / 1000, (tWritten - tReleased) / 1000, phases[3] / 1000, phases[4] / 1000));
            }
            return new Result(dir, micros, tree.members().size(), pageBytes, parentBytes, parentDir, List.copyOf(notes));
        } catch (IOException | RuntimeException e) {
            // the scans still running end first (closing a baseline twice does nothing)
            for (Memory.Baseline bl : baselines.values()) {
                if (!(bl instanceof AutoCloseable c)) continue;
                try {
                    closeBaseline(c);
                } catch (IOException | RuntimeException ce) {
                    e.addSuppressed(ce);
                }
            }
            // tracking armed for this image, which does not exist (or protected again as if it did): the next
            // incremental stores those whole
            if (armed != null) for (Integer pid : armed.keySet()) tracking.drop(pid, startsOut.get(pid));
            if (startsOut != null) for (Integer pid : reprotected) tracking.drop(pid, startsOut.get(pid));
            freezer.release();
            if (dirPrepared) {
                List<Integer> pids = tree.pids();
                boolean created = createdDir;
                try {
                    caller.run(() -> { Images.removeImage(dir, pids, created); return null; });
                } catch (IOException cleanup) {
                    e.addSuppressed(cleanup);
                }
            }
            if (e instanceof CheckpointException) throw e;
            if (e instanceof java.nio.file.AccessDeniedException) {
                throw new CheckpointException(CheckpointException.EPERM, "uid " + callerUid + " may not write the image at "
                        + e.getMessage(), e);
            }
            throw new CheckpointException(CheckpointException.EIO, "checkpoint of process " + root + " failed: " + e.getMessage(), e);
        }
    }

    /** The parent of an incremental checkpoint: its directory, the image, its digest. */
    private record Parent(Path dir, Image image, int digest) {}

    /**
     * Loads the parent image as the caller and checks it can carry a child: complete, of this
     * application, every image of its own chain in place.
     */
    private Parent loadParent(Path p, Path dir, int root, AsCaller as) throws IOException {
        if (p.equals(dir.toAbsolutePath().normalize())) {
            throw new CheckpointException(CheckpointException.EINVAL, "the parent image " + p + " is the image directory itself");
        }
        try {
            return as.run(() -> {
                if (!java.nio.file.Files.isRegularFile(p.resolve(ImageFormat.INVENTORY))) {
                    throw new CheckpointException(CheckpointException.ENOENT, "the parent image " + p + " is missing (no "
                            + ImageFormat.INVENTORY + " there): give an existing image of process " + root + ", or take a full checkpoint");
                }
                Image img = Image.load(p);
                if (img.inventory().rootGpid() != root) {
                    throw new CheckpointException(CheckpointException.EINVAL, "the parent image " + p + " is of process "
                            + img.inventory().rootGpid() + ", not of " + root);
                }
                try (PageChain chain = PageChain.open(img)) {
                    return new Parent(p, img, img.digest()); // the chain above it is complete too
                }
            });
        } catch (CheckpointException e) {
            throw e;
        } catch (java.nio.file.AccessDeniedException e) {
            throw new CheckpointException(CheckpointException.EPERM, "the caller may not read the parent image at " + e.getMessage());
        } catch (IOException e) {
            throw new CheckpointException(CheckpointException.EINVAL, "the parent image " + p + " cannot be used: " + e.getMessage(), e);
        }
    }

    /**
     * What process pid is compared with in an incremental checkpoint: its VMAs that the write tracking
     * covers since exactly the parent image and that the parent has with the same range. Null (store
     * everything) for a full checkpoint or a process not tracked from the parent.
     */
    private Memory.Baseline baseline(Parent base, int pid, long start) {
        if (base == null) return null;
        ProcessImage parentProc = base.image().processes().get(pid);
        WriteTracking.Tracker tr = tracking.tracker(pid, start);
        if (parentProc == null || tr == null || tr.baseDigest != base.digest()) return null;
        Map<Long, Records.Vma> parentVmas = new HashMap<>();
        for (Records.Vma v : parentProc.vmas()) parentVmas.put(v.start(), v);
        return new TrackedBaseline(fs.dir(pid).resolve("pagemap").toString(), tr, parentVmas, parentProc);
    }

    /** A baseline from a tracker; holds /proc/PID/pagemap open for PAGEMAP_SCAN until closed. */
    private static final class TrackedBaseline implements Memory.Baseline, AutoCloseable {
        private final String pagemapPath;
        private final WriteTracking.Tracker tracker;
        private final Map<Long, Records.Vma> parentVmas;
        private final ProcessImage parent;
        private int fd = -1;

        TrackedBaseline(String pagemapPath, WriteTracking.Tracker tracker, Map<Long, Records.Vma> parentVmas, ProcessImage parent) {
            this.pagemapPath = pagemapPath;
            this.tracker = tracker;
            this.parentVmas = parentVmas;
            this.parent = parent;
        }

        /** Scans of the parent's tracked ranges made before the memory map was known, by start ({@link #prefetch}). */
        private final Map<Long, List<long[]>> prefetched = new HashMap<>();

        /** {@link #prefetch} running on its own thread ({@link #startPrefetch}), or null. */
        java.util.concurrent.CompletableFuture<Void> prefetching;

        /** The pages {@link #prefetch} copied (held until the page writer takes them), or null. */
        Memory.Ahead ahead;
        /** Time {@link #prefetch} took scanning and copying, for the trace. */
        long scanNanos, copyNanos;

        /**
         * The process's scratch page, mapped (and its break asked) before the scan started, until
         * dumpProcess takes it over ({@link #takeScratch}); {@link #close} unmaps it if nobody did.
         */
        Scratch scratch;
        long brk;

        Scratch takeScratch() {
            Scratch s = scratch;
            scratch = null;
            return s;
        }

        /**
         * Runs {@link #prefetch} on a thread of its own, right after the freeze (while the rest of the
         * application is inspected); {@link #prefetching} completes with it.
         */
        void startPrefetch(ProcFs fs, int pid, java.util.concurrent.atomic.AtomicLong holdBudget) {
            java.util.concurrent.CompletableFuture<Void> f = new java.util.concurrent.CompletableFuture<>();
            prefetching = f;
            Thread.ofPlatform().name("written-pages-" + pid).daemon(true).start(() -> {
                try {
                    prefetch(fs, pid, holdBudget);
                    f.complete(null);
                } catch (Throwable e) {
                    f.completeExceptionally(e);
                }
            });
        }

        /** Starts of the ranges {@link #prefetch} scanned (or tried to), whose written pages it protected again. */
        final java.util.Set<Long> protectedAgain = new java.util.HashSet<>();

        /**
         * Scans now every range of the parent's VMAs that the tracker registered, before the current memory
         * map is known (it is read later): {@link #scan} uses such a scan for a VMA of exactly that range. A
         * range that fails (it is not one async write-protected VMA now) is left to scan(). The same walk
         * protects the written pages again (PM_SCAN_WP_MATCHING: the process is frozen, the pages are read
         * before it runs), so arming after the image is written has nothing left to do for them; a
         * checkpoint that fails after this drops the process's tracking (its next incremental checkpoint
         * stores it whole). Then copies the stored pages of every range scanned ({@link Memory.Ahead}, held
         * in memory until the page writer takes them) while the checkpoint's thread inspects and injects.
         */
        void prefetch(ProcFs fs, int pid, java.util.concurrent.atomic.AtomicLong holdBudget) throws IOException {
            long t0 = System.nanoTime();
            List<Records.Vma> done = new ArrayList<>();
            for (Records.Vma old : parentVmas.values()) {
                boolean registered = false;
                for (long[] r : tracker.registered) registered |= r[0] <= old.start() && old.end() <= r[1];
                if (!registered || old.shared()) continue;
                // marked first: a scan that fails part way may have protected some pages already
                protectedAgain.add(old.start());
                try {
                    prefetched.put(old.start(), scanRange(old.start(), old.end(), old.kind() == Records.VMA_FILE, true));
                    prefetchedKind.put(old.start(), old.kind());
                    done.add(old);
                } catch (ssi.shim.ErrnoException e) {
                    if (e.errno() != WriteProtect.EPERM) throw e;
                }
            }
            scanNanos = System.nanoTime() - t0;
            if (done.isEmpty()) return;
            long t1 = System.nanoTime();
            ahead = new Memory.Ahead(fs, pid, holdBudget);
            for (Records.Vma old : done) ahead.vma(old, prefetched.get(old.start()), parentPresent(old));
            copyNanos = System.nanoTime() - t1;
        }

        private final Map<Long, Integer> prefetchedKind = new HashMap<>();

        /**
         * PAGEMAP_SCAN of [start, end): the present or swapped pages, written or not, and for a file
         * mapping (file: only there does it matter) whether a page is the file's own; protect: the written
         * ones are write-protected again in the same walk (their categories are as before it). Asking for
         * PAGE_IS_FILE makes the kernel look at every present page's struct page, which an anonymous VMA
         * does not need.
         */
        private List<long[]> scanRange(long start, long end, boolean file, boolean protect) throws IOException {
            if (fd < 0) fd = WriteProtect.open(pagemapPath);
            return WriteProtect.regions(fd, start, end, protect ? WriteProtect.PM_SCAN_WP_MATCHING : 0, 0,
                    WriteProtect.PAGE_IS_PRESENT | WriteProtect.PAGE_IS_SWAPPED, WriteProtect.PAGE_IS_PRESENT
                            | WriteProtect.PAGE_IS_SWAPPED | WriteProtect.PAGE_IS_WRITTEN | (file ? WriteProtect.PAGE_IS_FILE : 0));
        }

        @Override
        public List<long[]> scan(Records.Vma v) throws IOException {
            Records.Vma old = parentVmas.get(v.start());
            if (old == null || old.end() != v.end() || old.shared() != v.shared()) return null;
            List<long[]> early = prefetched.get(v.start());
            // same range and kind, and that scan (PM_SCAN_CHECK_WPASYNC) found it async write-protected: still
            // tracked, nothing ran in between (frozen). Another kind: stored whole (a second scan would find
            // nothing written, the first protected it all again).
            if (early != null) return prefetchedKind.get(v.start()) == v.kind() ? early : null;
            if (protectedAgain.contains(v.start()) || !tracker.tracks(v)) return null;
            try {
                return scanRange(v.start(), v.end(), v.kind() == Records.VMA_FILE, false);
            } catch (ssi.shim.ErrnoException e) {
                if (e.errno() == WriteProtect.EPERM) return null; // not (or no longer) async write-protected: store it whole
                throw e;
            }
        }

        @Override
        public java.util.BitSet parentPresent(Records.Vma v) {
            java.util.BitSet b = new java.util.BitSet();
            for (Records.Pagemap m : parent.pagemaps()) {
                if (m.vmaStart() != v.start()) continue;
                for (Records.PageRun r : m.runs()) b.set((int) r.firstPage(), (int) (r.firstPage() + r.pages()));
            }
            for (Records.ParentPages m : parent.parentPages()) {
                if (m.vmaStart() != v.start()) continue;
                for (Records.PageSpan r : m.spans()) b.set((int) r.firstPage(), (int) (r.firstPage() + r.pages()));
            }
            return b;
        }

        /** Ends the prefetch (without its copies if they never started) and closes what it holds; again is nothing. */
        @Override
        public void close() {
            // a checkpoint that failed while prefetch ran: it ends first (it uses fd)
            if (prefetching != null) prefetching.exceptionally(e -> null).join();
            if (fd >= 0) WriteProtect.close(fd);
            fd = -1;
            if (ahead != null) {
                try {
                    ahead.close();
                } catch (IOException ignored) {
                    // closing /proc files it read: nothing was pending on them
                }
                ahead = null;
            }
            Scratch s = takeScratch();
            if (s != null) {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // a checkpoint that failed before dumping this process, which may be gone: nothing to undo there
                }
            }
        }
    }

    private static void closeBaseline(AutoCloseable c) throws IOException {
        try {
            c.close();
        } catch (IOException | RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IOException(e);
        }
    }

    /** The parent's directory as the child records it: relative to the child's, so a moved chain holds. */
    private static String relative(Path child, Path parent) {
        return child.toAbsolutePath().normalize().relativize(parent.toAbsolutePath().normalize()).toString();
    }

    /** More seccomp filters than the node's one (Seccomp_filters in /proc/PID/status), or unknown. */
    private boolean ownSeccompFilter(int pid) {
        try {
            String n = ProcFs.status(fs.dir(pid)).get("Seccomp_filters");
            return n == null || Integer.parseInt(n.trim()) > 1;
        } catch (IOException | RuntimeException e) {
            return true;
        }
    }

    /** Start time of pid (field 22 of its stat), which tells a recycled pid from the process it was. */
    private long startTime(int pid) throws CheckpointException {
        ProcFs.Stat st = fs.stat(fs.dir(pid));
        if (st == null) throw new CheckpointException(CheckpointException.ESRCH, "process " + pid + " exited");
        return st.field(22);
    }

    /** Runs path operations on the image with the caller's fs identity (nothing to switch for root). */
    private record AsCaller(int uid, int gid) {
        interface Op<T> { T run() throws IOException; }

        <T> T run(Op<T> op) throws IOException {
            if (uid == 0) return op.run();
            try (FsCredentials as = FsCredentials.become(uid, gid)) {
                return op.run();
            }
        }
    }

    private static void checkOwner(ProcTree tree, int callerUid) throws CheckpointException {
        if (callerUid == 0) return;
        for (ProcTree.Member m : tree.members()) {
            if (m.ruid() != callerUid || m.euid() != callerUid || m.suid() != callerUid) {
                throw new CheckpointException(CheckpointException.EPERM, "uid " + callerUid + " may not checkpoint process "
                        + m.pid() + " (" + m.comm() + "), which belongs to uid " + m.ruid() + (m.euid() != m.ruid() ? " (effective "
                        + m.euid() + ")" : "") + ": the caller must own every process of the application, or be root");
            }
        }
    }

    /** Freezes the tree, then looks again until no process of it is left running (forks raced us). */
    /**
     * The wait reports this process (t, a frozen thread of it; s its scratch page) has not collected yet
     * of its children (kids: {pid, 1 if stopped}): a stopped child's stop (waitpid WUNTRACED) and a
     * running child's continue (WCONTINUED), asked without taking them (waitid WNOWAIT|WNOHANG), a batch
     * of calls per 7 children, each answer (a siginfo, whose si_pid is 0 when there is none) in its own
     * slot of the scratch page. The restart makes the stop again (and the continue, with a stop before
     * it), and collects the new stop's report when the old one had been.
     */
    private static void waitReports(Scratch s, Tracee t, List<int[]> kids, Map<Integer, Integer> pendingReports)
            throws IOException {
        final int SYS_WAITID = 247, P_PID = 1, WSTOPPED = 2, WCONTINUED = 8, WNOHANG = 1, WNOWAIT = 0x01000000,
                WALL = 0x40000000, INFO_AT = 3200, SLOTS = (Scratch.SIZE - INFO_AT) / 128;
        for (int from = 0; from < kids.size(); from += SLOTS) {
            int n = Math.min(SLOTS, kids.size() - from);
            Scratch.Batch b = s.batch();
            for (int i = 0; i < n; i++) {
                int[] k = kids.get(from + i);
                String what = k[1] == 1 ? "waitid(WSTOPPED|WNOWAIT) of the stopped child " : "waitid(WCONTINUED|WNOWAIT) of the child ";
                b.add(() -> what + k[0], SYS_WAITID, P_PID, k[0], s.addr + INFO_AT + 128L * i,
                        (k[1] == 1 ? WSTOPPED : WCONTINUED) | WNOHANG | WNOWAIT | WALL, 0);
            }
            b.run(t);
            java.nio.ByteBuffer si = java.nio.ByteBuffer.wrap(t.read(s.addr + INFO_AT, 128 * n)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) {
                int[] k = kids.get(from + i);
                if (si.getInt(128 * i + 16) == k[0]) // si_pid: a report is waiting
                    pendingReports.put(k[0], k[1] == 1 ? Records.TreeEntry.STOP_REPORT_PENDING : Records.TreeEntry.CONT_REPORT_PENDING);
            }
        }
    }

    /** What a helper thread's future gives, its failure thrown as it was. */
    private static <T> T join(java.util.concurrent.CompletableFuture<T> f) throws IOException {
        try {
            return f.join();
        } catch (java.util.concurrent.CompletionException e) {
            if (e.getCause() instanceof IOException io) throw io;
            if (e.getCause() instanceof RuntimeException re) throw re;
            throw new IOException(e.getCause());
        }
    }

    /** The PSTREE entries of the frozen tree (thread counts from the freezer, SSI capabilities, stops). */
    private static List<Records.TreeEntry> treeEntries(ProcTree full, Freezer freezer, IntUnaryOperator ssiCaps,
                                                       Map<Integer, Character> before, Map<Integer, Integer> pendingReports) {
        List<Records.TreeEntry> entries = new ArrayList<>();
        for (ProcTree.Member m : full.members()) {
            entries.add(new Records.TreeEntry(m.pid(), m.ppid(), m.pgid(), m.sid(), m.ruid(),
                    m.zombie() ? 0 : ssiCaps.applyAsInt(m.pid()), m.zombie() ? 0 : freezer.threads(m.pid()).size(),
                    m.exitSignal(), m.zombie() ? m.exitCode() & 0xffff : -1,
                    (!m.zombie() && before.getOrDefault(m.pid(), 'R') == 'T' ? Records.TreeEntry.STOPPED : 0)
                            | pendingReports.getOrDefault(m.pid(), 0)));
        }
        return entries;
    }

    private ProcTree freezeAll(Freezer freezer, int root, ProcTree tree) throws IOException {
        for (int round = 0; ; round++) {
            if (round == MAX_FREEZE_ROUNDS) {
                throw new CheckpointException(CheckpointException.EIO, "the application of process " + root + " did not hold still: "
                        + "after " + round + " rounds some of its processes still could not be stopped (exiting?); try again");
            }
            for (ProcTree.Member m : tree.members()) {
                if (freezer.frozen(m.pid()) || m.state() == 'Z' || m.state() == 'X') continue;
                if (!freezer.freeze(m.pid()) && m.pid() == root)
                    throw new CheckpointException(CheckpointException.ESRCH, "process " + root + " exited");
            }
            ProcTree again = ProcTree.collect(fs, root);
            if (again == null) throw new CheckpointException(CheckpointException.ESRCH, "process " + root + " exited");
            tree = again;
            // This look came after every attach so far: when it finds every live member frozen, none of them
            // can fork any more, so there is nobody left to find (a member it finds running was forked
            // meanwhile: another round attaches it and looks again).
            boolean all = tree.members().stream().allMatch(m -> freezer.frozen(m.pid()) || m.state() == 'Z' || m.state() == 'X');
            if (all) return tree;
        }
    }

    /**
     * The signal queues of pid's threads into sigqueues, and its PROCESS record (/proc: stat, cmdline,
     * personality, exe, cwd, root). An incremental checkpoint reads them while its copy of the written
     * pages runs (before the scratch page is unmapped), a full one while the memory map is read.
     */
    private Records.ProcessRec queuesAndProc(Freezer freezer, int pid, Tracee t, List<Records.SigQueue> sigqueues) throws IOException {
        // Queued signals with their siginfo: each thread's own queue, and the process's shared one. Those
        // that arrived during the freeze were taken by the shim at their delivery (it held the thread) and
        // are in no queue: they come first (they were queued before what is still queued), each in the
        // queue it came from. SIGCHLD too: the SIGCHLDs the restart itself makes (zombies end again, stopped
        // children stop again) are taken back from the parent, so this one comes once. Not the job-control
        // signals (SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU): whether the process is stopped is its STOPPED state.
        List<byte[]> sharedQ = new ArrayList<>();
        for (Tracee th : freezer.threads(pid)) {
            List<byte[]> q = new ArrayList<>();
            List<Tracee.HeldSignal> held;
            try {
                held = th.getHeldSignals();
            } catch (ssi.shim.ErrnoException e) {
                if (e.errno() != EOVERFLOW) throw e;
                throw new CheckpointException(CheckpointException.EIO, "more signals reached thread " + th.tid() + " of process "
                        + pid + " during the freeze than the shim keeps (" + ssi.shim.LinkFrames.HeldSig.MAX + "): the ones beyond "
                        + "were lost, so the checkpoint would not hold them; try again when fewer are sent");
            }
            for (Tracee.HeldSignal h : held) {
                int sig = Records.SigQueue.signo(h.siginfo());
                if (sig > SIGCHLD && sig <= 22) continue;
                (h.shared() ? sharedQ : q).add(h.siginfo());
            }
            q.addAll(link.peekSiginfo(th.tid(), false));
            if (!q.isEmpty()) sigqueues.add(new Records.SigQueue(th.tid(), q));
        }
        sharedQ.addAll(link.peekSiginfo(t.tid(), true));
        if (!sharedQ.isEmpty()) sigqueues.add(new Records.SigQueue(0, sharedQ));
        ProcFs.Stat st = fs.stat(fs.dir(pid));
        String comm = st == null ? "?" : st.comm();
        Path d = fs.dir(pid);
        List<String> cmdline = new ArrayList<>();
        String raw = new String(java.nio.file.Files.readAllBytes(d.resolve("cmdline")), java.nio.charset.StandardCharsets.UTF_8);
        for (String a : raw.split("\0")) if (!a.isEmpty()) cmdline.add(a);
        int personality = (int) Long.parseLong(java.nio.file.Files.readString(d.resolve("personality")).trim(), 16);
        return new Records.ProcessRec(pid, comm, cmdline, linkOr(d.resolve("exe")), linkOr(d.resolve("cwd")),
                linkOr(d.resolve("root")), personality);
    }

    private ProcessImage dumpProcess(Freezer freezer, int pid, Fds.Found found, DataWriter pages, DataWriter data,
                                     Memory.Baseline baseline, Map<Long, List<long[]>> scannedOut, long[] phases,
                                     Map<Integer, java.util.Optional<String>> armEarly, long start, List<int[]> kids,
                                     Map<Integer, Integer> pendingReports) throws IOException {
        Tracee t = freezer.any(pid);
        Records.Creds creds = Creds.dump(fs, pid);
        Records.Rlimits rlimits;
        Records.SigActs sigacts;
        Records.ITimers itimers;
        Records.Mm mm;
        List<Records.ThreadRec> threads = new ArrayList<>();
        List<Records.RseqRec> rseqs = new ArrayList<>();
        List<Records.SigQueue> sigqueues = new ArrayList<>();
        List<Records.PosixTimer> timers;
        Records.ProcessRec proc = null; // (queuesAndProc)
        long t0 = System.nanoTime();
        // An incremental checkpoint's scan of the pages written since the parent (which protects them again)
        // started on a second thread right after the freeze, and the copy of the pages it found (Memory.Ahead,
        // held in memory until dumpPages gives it to the page writer) follows there: the process is frozen,
        // and they cover only the parent's tracked ranges, which the scratch page and the injected calls'
        // code do not touch (a VMA registered for write protection merges with no other). The scratch page's mmap and brk(0) take the mmap lock for
        // writing: they came before the scan (which holds it for reading) and before the copy (whose many
        // short holds would keep a writer waiting up to the lock's hand-off time, ~4 ms); the calls injected
        // here neither change a mapping nor take that lock for writing, so they run alongside the copy, and
        // the scratch page is unmapped once the copy is done.
        // Every injection happens between map and unmap of the scratch page, and the memory map is read
        // after the unmap, so the page is never part of the image.
        mark(pid + ": creds read");
        Scratch pre = baseline instanceof TrackedBaseline tb ? tb.takeScratch() : null;
        try (Scratch s = pre != null ? pre : Scratch.map(t, pid)) {
            long brk = pre != null ? ((TrackedBaseline) baseline).brk : Memory.brk(t);
            mark(pid + ": scratch page mapped");
            // rlimits, signal actions and itimers: one batch of injected calls (one resume of the thread)
            Scratch.Batch batch = s.batch();
            Signals.queue(batch, s);
            Rlimits.queue(batch, s);
            Signals.queueITimers(batch, s);
            Threads.queue(batch, s); // t's own: t runs the batch
            batch.run(t);
            mark(pid + ": batch of " + batch.size() + " injected calls run");
            java.nio.ByteBuffer answers = s.read(Threads.SCRATCH_BYTES);
            sigacts = Signals.read(fs, pid, answers);
            rlimits = Rlimits.read(answers);
            itimers = Signals.readITimers(answers);
            timers = PosixTimers.dump(fs, pid, t, s);
            mark(pid + ": answers read, POSIX timers");
            for (Tracee th : freezer.threads(pid)) threads.add(Threads.dump(fs, pid, th, s, th == t ? answers : null));
            mark(pid + ": threads");
            for (Tracee th : freezer.threads(pid)) {
                ssi.shim.Rseq rs = th.getRseq();
                if (rs.registered()) rseqs.add(new Records.RseqRec(th.tid(), rs.pointer(), rs.size(), rs.signature()));
            }
            mm = Memory.dumpMm(fs, pid, brk);
            mark(pid + ": rseq, mm");
            waitReports(s, t, kids, pendingReports);
            if (baseline instanceof TrackedBaseline tb) {
                proc = queuesAndProc(freezer, pid, t, sigqueues);
                mark(pid + ": signal queues, /proc files");
                join(tb.prefetching);
                mark(String.format("%d: written pages scanned (on its thread: scans %d us, copies of the stored pages %d us)",
                        pid, tb.scanNanos / 1000, tb.copyNanos / 1000));
            }
        }
        long t1 = System.nanoTime();
        mark(pid + ": scratch page unmapped");
        // The memory map (smaps: its read walks every page table) is read on a second thread while, for a
        // full checkpoint, the signal queues and the rest of /proc are read here.
        java.util.concurrent.CompletableFuture<List<Records.Vma>> vmasRead = new java.util.concurrent.CompletableFuture<>();
        // An incremental checkpoint whose VMAs all are the parent image's, as /proc/PID/maps shows them,
        // takes their VmFlags from there and walks no page table here (the scan of what was written does).
        Map<Long, Records.Vma> parentVmas = baseline instanceof TrackedBaseline tb ? tb.parentVmas : null;
        Thread.ofPlatform().name("smaps-" + pid).daemon(true).start(() -> {
            try {
                List<Records.Vma> same = parentVmas == null ? null : Memory.vmasAsParent(fs, pid, parentVmas);
                vmasRead.complete(same != null ? same : Memory.vmas(fs, pid));
            } catch (Throwable e) {
                vmasRead.completeExceptionally(e);
            }
        });
        if (proc == null) {
            proc = queuesAndProc(freezer, pid, t, sigqueues);
            mark(pid + ": signal queues, /proc files");
        }
        List<Records.Vma> vmas = join(vmasRead);
        long t2 = System.nanoTime();
        mark(pid + ": memory map read");
        Memory.Dumped dumped;
        // Write tracking of a process stored whole starts on another thread while the pages are read: the
        // process is frozen, so no write comes between its protection and the read of its pages.
        java.util.concurrent.CompletableFuture<String> arming = null;
        long[] armNanos = {-1};
        if (armEarly != null) {
            arming = new java.util.concurrent.CompletableFuture<>();
            java.util.concurrent.CompletableFuture<String> f = arming;
            Path pagemap = fs.dir(pid).resolve("pagemap");
            Thread.ofPlatform().name("write-tracking-" + pid).daemon(true).start(() -> {
                try {
                    long a0 = System.nanoTime();
                    String note = tracking.arm(t, pid, start, pagemap, vmas, Map.of(), null, 0);
                    armNanos[0] = System.nanoTime() - a0;
                    f.complete(note);
                } catch (Throwable e) {
                    f.completeExceptionally(e);
                }
            });
        }
        try {
            dumped = Memory.dumpPages(fs, pid, vmas, pages, baseline, baseline instanceof TrackedBaseline tb ? tb.ahead : null);
        } finally {
            if (baseline instanceof AutoCloseable c) closeBaseline(c);
            if (arming != null) {
                String note;
                try {
                    note = arming.join();
                } catch (java.util.concurrent.CompletionException e) {
                    note = "process " + pid + ": write tracking could not start (" + e.getCause() + ")";
                }
                armEarly.put(pid, java.util.Optional.ofNullable(note));
            }
        }
        scannedOut.putAll(dumped.scanned());
        // what the scan protected again already: arming has no written page left to protect there
        if (baseline instanceof TrackedBaseline tb) for (Long at : tb.protectedAgain) scannedOut.computeIfPresent(at, (k, w) -> List.of());
        long t3 = System.nanoTime();
        long[] cn = dumped.copyNanos();
        mark(String.format("%d: pages read (%d bytes; this thread: process_vm_readv %d us, checksums and writes %d; helper: "
                + "process_vm_readv %d, checksums and writes %d%s)", pid, pages.bytes(), cn[0] / 1000, cn[1] / 1000, cn[2] / 1000, cn[3] / 1000,
                armNanos[0] < 0 ? "" : "; write tracking armed meanwhile in " + armNanos[0] / 1000 + " us"));
        phases[0] += t1 - t0; phases[1] += t2 - t1; phases[2] += t3 - t2;
        List<Records.Fd> fds = Fds.saveDeleted(pid, found, data);
        return new ProcessImage(proc, creds, rlimits, threads, sigacts, mm, itimers, vmas, fds, dumped.pagemaps(), rseqs,
                fileStats(proc, vmas, fds), sigqueues, dumped.parentPages(), found.states(), timers);
    }

    /**
     * A file of a /proc/N entry that a process has open is opened again by its path once N exists again:
     * N must be the process itself or one of its ancestors in the application (made before it); another
     * process's entry is refused by name (after a restart N could be a process of another application,
     * or none yet).
     */
    static void checkProcEntries(ProcTree tree, Map<Integer, List<Records.Fd>> fds) throws CheckpointException {
        Map<Integer, Integer> parent = new HashMap<>();
        for (ProcTree.Member m : tree.members()) parent.put(m.pid(), m.ppid());
        for (var e : fds.entrySet()) {
            for (Records.Fd f : e.getValue()) {
                if (f.kind() != Records.FD_REG) continue;
                int n = Records.Fd.procEntryPid(f.path());
                if (n < 0) continue;
                boolean mine = false;
                // up the tree from the process, within the application (the root's parent is not in it)
                for (Integer p = e.getKey(); p != null && parent.containsKey(p) && !mine; p = parent.get(p)) mine = p == n;
                if (!mine)
                    throw new CheckpointException(CheckpointException.EOPNOTSUPP, "process " + e.getKey() + " has fd " + f.fd()
                            + " open on " + f.path() + ", the /proc entry of process " + n + (parent.containsKey(n)
                            ? ", not one of its ancestors" : ", which is not part of the application") + ": a restart can "
                            + "open again only the process's own /proc entry or its ancestors' (they exist before it)");
            }
        }
    }

    /**
     * stat of every regular file the process maps (not shared anonymous memory), has open by a path that
     * still names it, or runs: a restart compares them with what it finds then.
     */
    static List<Records.FileStat> fileStats(Records.ProcessRec proc, List<Records.Vma> vmas, List<Records.Fd> fds) {
        java.util.Set<String> paths = new java.util.LinkedHashSet<>();
        if (!proc.exe().isEmpty()) paths.add(proc.exe());
        for (Records.Vma v : vmas) if (v.kind() == Records.VMA_FILE) paths.add(v.path());
        // (a /proc entry's files are the restored process's own then, made anew: nothing to compare)
        for (Records.Fd f : fds) if (f.kind() == Records.FD_REG && Records.Fd.procEntryPid(f.path()) < 0) paths.add(f.path());
        List<Records.FileStat> out = new ArrayList<>();
        for (String p : paths) {
            if (!p.startsWith("/") || p.endsWith(" (deleted)")) continue;
            try {
                Path path = Path.of(p);
                if (!java.nio.file.Files.isRegularFile(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) continue;
                Map<String, Object> a = java.nio.file.Files.readAttributes(path, "unix:dev,ino,size,lastModifiedTime",
                        java.nio.file.LinkOption.NOFOLLOW_LINKS);
                out.add(new Records.FileStat(p, (Long) a.get("dev"), (Long) a.get("ino"), (Long) a.get("size"),
                        ((java.nio.file.attribute.FileTime) a.get("lastModifiedTime")).to(java.util.concurrent.TimeUnit.NANOSECONDS)));
            } catch (IOException | RuntimeException e) {
                // not reachable by that path (shmem, another mount namespace): nothing to compare later
            }
        }
        return out;
    }

    private static String linkOr(Path p) {
        try {
            return ProcFs.link(p);
        } catch (IOException e) {
            return "";
        }
    }

    private static String hostname() {
        try {
            return java.nio.file.Files.readString(Path.of("/proc/sys/kernel/hostname")).trim();
        } catch (IOException e) {
            return "?";
        }
    }
}
