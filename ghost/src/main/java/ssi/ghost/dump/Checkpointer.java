package ssi.ghost.dump;

import ssi.ghost.image.DataWriter;
import ssi.ghost.image.Image;
import ssi.ghost.image.ImageFormat;
import ssi.ghost.image.Images;
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
 * files written (temporary name, fsync, rename; the inventory last) and the threads let go, or with
 * stop the processes killed once the image is safely on disk.
 *
 * <p>Threads: one checkpoint runs on the calling thread (a daemon worker) from start to end; it blocks
 * on the shim link and must never run on the "shim-link" thread. Checkpoints of disjoint trees may
 * run at once (the shim refuses a second attach to one thread).
 */
public final class Checkpointer {
    /** What a finished checkpoint reports. */
    public record Result(Path dir, long freezeMicros, int processes, long pageBytes) {}

    /** Each round attaches everything new; an application that forks faster than we attach is refused. */
    private static final int MAX_FREEZE_ROUNDS = 1000;

    private final ShimLink link;
    private final ProcFs fs;
    private final int nodeId;

    public Checkpointer(ShimLink link, Path procRoot, int nodeId) {
        this.link = link;
        this.fs = new ProcFs(procRoot);
        this.nodeId = nodeId;
    }

    /**
     * Checkpoints the tree rooted at root into dir for callerUid (0: root, else the caller must own every
     * process: real, effective and saved uid). The image is written with the file-system identity
     * callerUid/callerGid, so the kernel applies the caller's permissions to the directory. ssiCaps gives the effective SSI capabilities of a pid for
     * the inventory. With stop, the application is killed (SIGKILL) after the image is written and synced.
     */
    public Result checkpoint(int root, Path dir, boolean stop, int callerUid, int callerGid, IntUnaryOperator ssiCaps)
            throws IOException {
        ProcTree tree = ProcTree.collect(fs, root);
        if (tree == null) throw new CheckpointException(CheckpointException.ESRCH, "no process " + root + " on node " + nodeId);
        checkOwner(tree, callerUid); // before stopping anybody's threads
        if (java.nio.file.Files.exists(dir.resolve(ImageFormat.INVENTORY))) {
            throw new CheckpointException(CheckpointException.EEXIST, dir + " already holds an image; give another directory");
        }
        Freezer freezer = new Freezer(link, fs);
        boolean dirPrepared = false, createdDir = false;
        AsCaller caller = new AsCaller(0, 0);
        try {
            tree = freezeAll(freezer, root, tree);
            checkOwner(tree, callerUid); // again: the frozen tree may hold processes forked meanwhile

            // Inspect first: every refusal comes before the first file is written.
            Map<Integer, Fds.Found> files = new LinkedHashMap<>();
            Map<Long, ssi.shim.UnixDiag.Info>[] unixCache = new Map[1];
            Fds.UnixSockets unix = () -> {
                if (unixCache[0] == null) unixCache[0] = ssi.shim.UnixDiag.all();
                return unixCache[0];
            };
            for (ProcTree.Member m : tree.members()) {
                if (m.state() == 'Z' || m.state() == 'X') {
                    throw CheckpointException.unsupported("process " + m.pid() + " (" + m.comm() + ") is a zombie (it exited "
                            + "and its parent has not reaped it): not supported");
                }
                files.put(m.pid(), Fds.dump(fs, m.pid(), unix));
                refuseTimers(m.pid());
            }
            SharedFds.checkVfork(tree.pids());
            Map<Integer, List<Records.Fd>> fdsByPid = new LinkedHashMap<>();
            files.forEach((pid, f) -> fdsByPid.put(pid, f.fds()));
            Fds.checkPipes(fdsByPid);
            boolean sockets = fdsByPid.values().stream().flatMap(List::stream).anyMatch(f -> f.kind() == Records.FD_UNIX);
            Map<Long, ssi.shim.UnixDiag.Info> socks = sockets ? unix.get() : Map.of();
            if (sockets) SharedFds.checkSockets(fdsByPid, socks);
            Map<Integer, Map<Integer, byte[]>> queued = new HashMap<>();
            Map<Integer, List<Records.Fd>> shared = SharedFds.queues(SharedFds.identify(fdsByPid), socks, queued);
            for (var e : shared.entrySet()) {
                Fds.Found f = files.get(e.getKey());
                files.put(e.getKey(), new Fds.Found(e.getValue(), f.deleted(), queued.getOrDefault(e.getKey(), Map.of())));
            }

            // Every path operation on the image (create, rename, chmod, remove) runs with the caller's fs
            // identity; /proc is read with the daemon's own (a process that changed uid has root-owned
            // /proc files), and data goes to channels opened as the caller.
            caller = new AsCaller(callerUid, callerGid);
            createdDir = caller.run(() -> Images.prepareDir(dir, callerUid));
            dirPrepared = true;
            long pageBytes = 0;
            List<ProcessImage> images = new ArrayList<>();
            List<DataWriter> pending = new ArrayList<>();
            try {
                for (ProcTree.Member m : tree.members()) {
                    DataWriter pages = caller.run(() -> DataWriter.create(dir, ImageFormat.pagesFile(m.pid()), ImageFormat.MAGIC_PAGES, m.pid()));
                    pending.add(pages);
                    DataWriter data = caller.run(() -> DataWriter.create(dir, ImageFormat.fileDataFile(m.pid()), ImageFormat.MAGIC_FILEDATA, m.pid()));
                    pending.add(data);
                    ProcessImage img = dumpProcess(freezer, m.pid(), files.get(m.pid()), pages, data);
                    pageBytes += pages.bytes();
                    images.add(img);
                }
                for (ProcessImage img : images) caller.run(() -> { img.write(dir, callerUid); return null; });
                for (DataWriter w : pending) caller.run(() -> { w.commit(callerUid); return null; });
            } finally {
                AsCaller c = caller;
                for (DataWriter w : pending) c.run(() -> { w.close(); return null; });
            }
            List<Records.TreeEntry> entries = new ArrayList<>();
            for (ProcTree.Member m : tree.members()) {
                entries.add(new Records.TreeEntry(m.pid(), m.ppid(), m.pgid(), m.sid(), m.ruid(), ssiCaps.applyAsInt(m.pid()),
                        freezer.threads(m.pid()).size(), m.exitSignal()));
            }
            Records.Inventory inv = new Records.Inventory(System.currentTimeMillis(), nodeId, callerUid, root, hostname());
            caller.run(() -> {
                Image.writeInventory(dir, inv, entries, callerUid);
                Images.syncDir(dir);
                return null;
            });
            if (stop) {
                for (ProcTree.Member m : tree.members()) ProcessHandle.of(m.pid()).ifPresent(ProcessHandle::destroyForcibly);
            }
            long micros = freezer.release();
            return new Result(dir, micros, tree.members().size(), pageBytes);
        } catch (IOException | RuntimeException e) {
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

    /** POSIX timers (timer_create) are not in the image yet: refuse rather than restore without them. */
    private void refuseTimers(int pid) throws IOException {
        Path timers = fs.dir(pid).resolve("timers");
        if (!java.nio.file.Files.exists(timers)) return;
        long n = java.nio.file.Files.readAllLines(timers).stream().filter(l -> l.startsWith("ID:")).count();
        if (n > 0) {
            throw CheckpointException.unsupported("process " + pid + " has " + n + " POSIX timer(s) (timer_create): not supported");
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
    private ProcTree freezeAll(Freezer freezer, int root, ProcTree tree) throws IOException {
        for (int round = 0; ; round++) {
            if (round == MAX_FREEZE_ROUNDS) {
                throw new CheckpointException(CheckpointException.EIO, "the application of process " + root + " did not hold still: "
                        + "after " + round + " rounds some of its processes still could not be stopped (exiting?); try again");
            }
            boolean added = false;
            for (ProcTree.Member m : tree.members()) {
                if (freezer.frozen(m.pid()) || m.state() == 'Z' || m.state() == 'X') continue;
                if (freezer.freeze(m.pid())) added = true;
                else if (m.pid() == root) throw new CheckpointException(CheckpointException.ESRCH, "process " + root + " exited");
            }
            ProcTree again = ProcTree.collect(fs, root);
            if (again == null) throw new CheckpointException(CheckpointException.ESRCH, "process " + root + " exited");
            tree = again;
            if (!added) {
                // every live member frozen, and this look happened after the last attach
                boolean all = tree.members().stream().allMatch(m -> freezer.frozen(m.pid()) || m.state() == 'Z' || m.state() == 'X');
                if (all) return tree;
            }
        }
    }

    private ProcessImage dumpProcess(Freezer freezer, int pid, Fds.Found found, DataWriter pages, DataWriter data)
            throws IOException {
        Tracee t = freezer.any(pid);
        Records.Creds creds = Creds.dump(fs, pid);
        Records.Rlimits rlimits;
        Records.SigActs sigacts;
        Records.ITimers itimers;
        Records.Mm mm;
        List<Records.ThreadRec> threads = new ArrayList<>();
        List<Records.RseqRec> rseqs = new ArrayList<>();
        List<Records.SigQueue> sigqueues = new ArrayList<>();
        // Every injection happens between map and unmap of the scratch page, and the memory map is read
        // after the unmap, so the page is never part of the image.
        try (Scratch s = Scratch.map(t, pid)) {
            rlimits = Rlimits.dump(t, s);
            sigacts = Signals.dump(fs, pid, t, s);
            itimers = Signals.dumpITimers(t, s);
            for (Tracee th : freezer.threads(pid)) threads.add(Threads.dump(fs, pid, th, s));
            for (Tracee th : freezer.threads(pid)) {
                ssi.shim.Rseq rs = th.getRseq();
                if (rs.registered()) rseqs.add(new Records.RseqRec(th.tid(), rs.pointer(), rs.size(), rs.signature()));
            }
            mm = Memory.dumpMm(fs, pid, t);
        }
        // Queued signals with their siginfo: each thread's own queue, and the process's shared one.
        for (Tracee th : freezer.threads(pid)) {
            List<byte[]> q = link.peekSiginfo(th.tid(), false);
            if (!q.isEmpty()) sigqueues.add(new Records.SigQueue(th.tid(), q));
        }
        List<byte[]> sharedQ = link.peekSiginfo(t.tid(), true);
        if (!sharedQ.isEmpty()) sigqueues.add(new Records.SigQueue(0, sharedQ));
        ProcFs.Stat st = fs.stat(fs.dir(pid));
        String comm = st == null ? "?" : st.comm();
        Path d = fs.dir(pid);
        List<String> cmdline = new ArrayList<>();
        String raw = new String(java.nio.file.Files.readAllBytes(d.resolve("cmdline")), java.nio.charset.StandardCharsets.UTF_8);
        for (String a : raw.split("\0")) if (!a.isEmpty()) cmdline.add(a);
        int personality = (int) Long.parseLong(java.nio.file.Files.readString(d.resolve("personality")).trim(), 16);
        Records.ProcessRec proc = new Records.ProcessRec(pid, comm, cmdline, linkOr(d.resolve("exe")), linkOr(d.resolve("cwd")),
                linkOr(d.resolve("root")), personality);
        List<Records.Vma> vmas = Memory.vmas(fs, pid);
        List<Records.Pagemap> pagemaps = Memory.dumpPages(fs, pid, vmas, pages);
        List<Records.Fd> fds = Fds.saveDeleted(pid, found, data);
        return new ProcessImage(proc, creds, rlimits, threads, sigacts, mm, itimers, vmas, fds, pagemaps, rseqs,
                fileStats(proc, vmas, fds), sigqueues);
    }

    /**
     * stat of every regular file the process maps (not shared anonymous memory), has open by a path that
     * still names it, or runs: a restart compares them with what it finds then.
     */
    static List<Records.FileStat> fileStats(Records.ProcessRec proc, List<Records.Vma> vmas, List<Records.Fd> fds) {
        java.util.Set<String> paths = new java.util.LinkedHashSet<>();
        if (!proc.exe().isEmpty()) paths.add(proc.exe());
        for (Records.Vma v : vmas) if (v.kind() == Records.VMA_FILE) paths.add(v.path());
        for (Records.Fd f : fds) if (f.kind() == Records.FD_REG) paths.add(f.path());
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
