package ssi.ghost.restore;

import ssi.ghost.dump.FsCredentials;
import ssi.ghost.image.DataFile;
import ssi.ghost.image.Image;
import ssi.ghost.image.ImageFormat;
import ssi.ghost.image.PageFiles;
import ssi.ghost.image.PageChain;
import ssi.ghost.image.ProcessImage;
import ssi.ghost.image.Records;
import ssi.shim.Regs;
import ssi.shim.ShimLink;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The bridge from a checkpoint image (ssi.ghost.image) to a {@link RestorePlan}, and the checks a
 * restart makes before anything is created: the image is read and every page and file data chunk
 * verified (as the caller, when the caller is not root), the application is a tree of what the
 * restorer rebuilds ({@link #checkShape}), every file it maps or has open is still the one the
 * checkpoint saw (same inode, size and mtime), a non-root caller owns the image and may open each of
 * those files, and every gpid and tid is free on this node. Only then {@link #restart} takes the stub
 * and lets {@link TreeRestorer} rebuild the tree.
 *
 * <p>Owned by one thread (a platform thread: the fs identity switch is per thread); close it after the
 * restore, which closes the data files and removes the private copies of deleted files.
 */
public final class ImageRestore implements AutoCloseable {
    private static final int O_ACCMODE = 3, O_WRONLY = 1, O_RDWR = 2, O_CLOEXEC = 02000000;
    private static final int SS_DISABLE = 2;
    public static final int EPERM = 1, ESRCH = 3, EIO = 5, EEXIST = 17, EINVAL = 22, EOPNOTSUPP = 95;
    /**
     * Set in a daemon's environment (any value), its restarts are traced: the node log gets every step of
     * each, with the microseconds since it began ("restart trace:" lines; docs/ARCHITECTURE.md).
     */
    public static final String TRACE_ENV = "SSI_TRACE_RESTORE";

    /** What a finished restart reports. */
    /**
     * What a finished restart reports; ssiCaps has, per restored process, {gpid, uid, effective SSI
     * capabilities at the checkpoint} for the daemon to give them back.
     */
    public record Result(int gpid, long micros, List<String> log, List<int[]> ssiCaps, int rootPpid) {
        public Result(int gpid, long micros, List<String> log) {
            this(gpid, micros, log, List.of(), 0);
        }
    }

    /** The pid the root's parent had at the checkpoint (PSTREE), 0 if unknown. */
    public int rootPpid() {
        int root = image.inventory().rootGpid();
        return image.tree().stream().filter(e -> e.gpid() == root).mapToInt(Records.TreeEntry::ppid).findFirst().orElse(0);
    }

    private final Image image;
    private final List<AutoCloseable> open = new ArrayList<>();
    /** The SysV shared memory to make again (prepare). */
    private SysvRestore.Plan sysv = SysvRestore.Plan.NONE;
    private Path privateDir;
    private List<TreeRestorer.Node> nodes;
    private RootStub stub = RootStub.spawned();
    /** The parent images of an incremental image (null for a full one): pages come through it. */
    private PageChain chain;
    /** Whether prepare checked the page runs' CRC32C (else the copy does). */
    private boolean pagesChecked = true;

    private ImageRestore(Image image) {
        this.image = image;
    }

    public Image image() {
        return image;
    }

    /** The root process's plan. */
    public RestorePlan plan() {
        return nodes.getFirst().plan();
    }

    /** Every process's plan, the root first, parents before children. */
    public List<RestorePlan> plans() {
        return nodes.stream().map(TreeRestorer.Node::plan).toList();
    }

    /** Reads the image in dir as callerUid (the fs identity callerUid/callerGid unless root), checks it, builds the plan. */
    public static ImageRestore prepare(Path dir, int callerUid, int callerGid, Path procRoot, int nodeId)
            throws IOException {
        return prepare(dir, callerUid, callerGid, procRoot, nodeId, RootStub.spawned());
    }

    /** As above, for a restart into stub (a foreground restart's checks skip the gpid's, which its stub holds). */
    public static ImageRestore prepare(Path dir, int callerUid, int callerGid, Path procRoot, int nodeId, RootStub stub)
            throws IOException {
        return prepare(dir, callerUid, callerGid, procRoot, nodeId, stub, true);
    }

    /**
     * As above; with checkPages false the page runs of a full image are only checked to lie inside their
     * file here, and their CRC32C as the restore copies them into the still-stopped processes (a
     * mismatch fails the restart and kills what it made, before any of it ran).
     */
    static ImageRestore prepare(Path dir, int callerUid, int callerGid, Path procRoot, int nodeId, RootStub stub,
                                boolean checkPages) throws IOException {
        AsCaller as = new AsCaller(callerUid, callerGid);
        boolean[] checked = {true};
        Image image;
        try {
            image = as.run(() -> {
                if (!Files.isDirectory(dir))
                    throw new RestoreException(2, "no image directory " + dir);
                Image img = Image.load(dir);
                // an incremental image's pages come through its chain (read and checked there): all checked now
                checked[0] = checkPages || img.incremental();
                img.verifyData(checked[0]);
                return img;
            });
        } catch (AccessDeniedException e) {
            throw new RestoreException(EPERM, "uid " + callerUid + " may not read the image at " + e.getMessage());
        } catch (NoSuchFileException e) {
            throw new RestoreException(0, "not a complete image: " + e.getMessage() + " is missing");
        }
        ImageRestore r = new ImageRestore(image);
        r.stub = stub;
        r.pagesChecked = checked[0];
        try {
            r.chain = as.run(() -> PageChain.forRestore(image));
            r.checkShape();
            for (ProcessImage p : image.processes().values())
                for (Records.Fd f : p.fds())
                    if (f.kind() == Records.FD_TTY) stub.checkTerminal(p.gpid(), f.fd(), f.path(), callerUid);
            if (callerUid != 0) r.checkOwner(callerUid, callerGid);
            for (Records.TreeEntry e : image.tree())
                if (e.zombie()) checkFree(procRoot, e.gpid(), nodeId);
            for (ProcessImage p : image.processes().values()) {
                if (p.gpid() != image.inventory().rootGpid() || stub.gpidMustBeFree()) checkFree(procRoot, p.gpid(), nodeId);
                for (Records.ThreadRec th : p.threads()) if (th.tid() != p.gpid()) checkFree(procRoot, th.tid(), nodeId);
            }
            for (ProcessImage p : image.processes().values()) r.checkFiles(p);
            SysvRestore.checkFree(image.sysvShm(), procRoot, nodeId, callerUid);
            if (callerUid != 0) as.run(() -> {
                for (ProcessImage p : image.processes().values()) r.checkAccess(p);
                return null;
            });
            r.nodes = as.run(r::buildTree);
            r.sysv = as.run(r::sysvPlan);
            return r;
        } catch (IOException | RuntimeException e) {
            r.close();
            throw e;
        }
    }

    /**
     * The whole restart on this node: prepare (every check, nothing created), spawn the stub with the
     * image's gpid (or take the foreground restart's, see {@link RootStub}) and rebuild the process; on
     * any failure nothing is left (the stub is killed).
     */
    public static Result restart(ShimLink link, Path dir, int callerUid, int callerGid, Path procRoot, int nodeId,
                                 RootStub stub) throws IOException {
        long t0 = System.nanoTime();
        try (ImageRestore r = prepare(dir, callerUid, callerGid, procRoot, nodeId, stub, false)) {
            // A non-root caller's files are opened with its rights, in the daemon (see RestorePlan.Opener).
            RestorePlan.Opener opener = callerUid == 0 ? null : (path, flags) -> new AsCaller(callerUid, callerGid).run(
                    () -> ssi.shim.LocalFds.open(path, flags));
            long tPrepared = System.nanoTime();
            ssi.shim.Tracee root = stub.take(link, r.plan().pid());
            long tStub = System.nanoTime();
            List<String> log = new ArrayList<>(TreeRestorer.restore(link, r.nodes, root, opener, r.sysv));
            List<int[]> caps = r.image.tree().stream().filter(e -> !e.zombie()).map(e -> new int[] {e.gpid(), e.uid(), e.ssiCaps()}).toList();
            long end = System.nanoTime();
            // the phases, for the node log (TreeRestorer's own breakdown is its last line)
            log.add(String.format("times: prepare %d us, stub %d us, tree %d us (%s)", (tPrepared - t0) / 1000,
                    (tStub - tPrepared) / 1000, (end - tStub) / 1000, log.stream().filter(l -> l.startsWith("tree times: "))
                            .map(l -> l.substring(12)).findFirst().orElse("-")));
            return new Result(r.plan().pid(), (end - t0) / 1000, log, caps, r.rootPpid());
        }
    }

    void checkShape() throws RestoreException {
        checkShape(image);
    }

    /**
     * What the restorer rebuilds: a tree whose every process has its parent in the image (the root
     * aside), files, devices, pipes and UNIX socketpairs, private and shared anonymous memory and file
     * mappings. Deleted files and memfds mapped, and SysV shared memory, are refused.
     */
    static void checkShape(Image image) throws RestoreException {
        java.util.Set<Integer> gpids = new java.util.HashSet<>();
        for (Records.TreeEntry e : image.tree()) gpids.add(e.gpid());
        for (Records.TreeEntry e : image.tree()) {
            if (e.gpid() != image.inventory().rootGpid() && !gpids.contains(e.ppid()))
                throw new RestoreException(EINVAL, "process " + e.gpid() + " of the image has its parent " + e.ppid()
                        + " outside the image");
            if (e.zombie()) continue; // only its status
            ProcessImage proc = image.processes().get(e.gpid());
            if (proc == null)
                throw new RestoreException(EINVAL, "process " + e.gpid() + " of the image tree has no process file");
            if (proc.threads().size() != e.threads())
                throw new RestoreException(EINVAL, "process " + e.gpid() + " has " + proc.threads().size()
                        + " THREAD records but the tree says " + e.threads());
            if (proc.threads().getFirst().tid() != e.gpid())
                throw new RestoreException(EINVAL, "the first thread of process " + e.gpid() + " is not its main thread");
            for (Records.Vma v : proc.vmas()) {
                if (SysvRestore.isSysv(v)) {
                    if (image.sysvShm((int) v.inode()) == null)
                        throw new RestoreException(EINVAL, "process " + e.gpid() + " maps SysV shared memory segment " + v.inode()
                                + ", which the image does not hold: the image is damaged");
                    continue;
                }
                if (v.kind() != Records.VMA_FILE || isSharedAnon(v)) continue;
                if (v.path().endsWith(" (deleted)") || v.path().startsWith("/memfd:") || v.path().startsWith("/SYSV"))
                    throw new RestoreException(EOPNOTSUPP, "not supported yet: the mapping "
                            + String.format("%x-%x", v.start(), v.end()) + " of " + v.path() + " in process " + e.gpid()
                            + " (SysV shared memory, a memfd or a deleted file)");
            }
            for (Records.Fd f : proc.fds()) {
                if (f.kind() != Records.FD_REG && f.kind() != Records.FD_REG_DELETED && f.kind() != Records.FD_CHR
                        && f.kind() != Records.FD_PIPE && f.kind() != Records.FD_FIFO && f.kind() != Records.FD_UNIX
                        && f.kind() != Records.FD_TTY
                        && anonKind(f.kind()) == 0)
                    throw new RestoreException(EOPNOTSUPP, "not supported yet: fd " + f.fd() + " of process " + e.gpid()
                            + " is a " + Records.fdKind(f.kind()) + " (" + f.path() + ")");
                if (anonKind(f.kind()) != 0 && !stateMatches(f.kind(), proc.fdState(f.fd())))
                    throw new RestoreException(EINVAL, "fd " + f.fd() + " of process " + e.gpid() + " is a "
                            + Records.fdKind(f.kind()) + " without its " + Records.fdKind(f.kind()).toUpperCase()
                            + " record: the image is damaged");
            }
        }
    }

    /** Shared anonymous memory (mmap MAP_SHARED|MAP_ANONYMOUS), which maps shows as /dev/zero (deleted). */
    static boolean isSharedAnon(Records.Vma v) {
        return v.kind() == Records.VMA_FILE && v.shared() && v.path().equals("/dev/zero (deleted)");
    }

    /**
     * A non-root caller restarts only an image it made, of a process that was its own: root restores
     * with the image's credentials, so an edited image must not hand anyone else's uid or groups.
     */
    void checkOwner(int callerUid, int callerGid) throws RestoreException {
        checkOwnerOf(image, callerUid, callerGid);
    }

    static void checkOwnerOf(Image image, int callerUid, int callerGid) throws RestoreException {
        int owner = image.inventory().callerUid();
        if (owner != callerUid)
            throw new RestoreException(EPERM, "uid " + callerUid + " may not restart the image at " + image.dir()
                    + ", which belongs to uid " + owner + ": only its owner or root may");
        for (ProcessImage proc : image.processes().values()) checkCreds(image, proc, callerUid, callerGid);
    }

    private static void checkCreds(Image image, ProcessImage proc, int callerUid, int callerGid) throws RestoreException {
        Records.Creds c = proc.creds();
        for (int k = 0; k < 3; k++) {
            if (c.uids()[k] != callerUid)
                throw new RestoreException(EPERM, "the image at " + image.dir() + " holds a process of uid " + c.uids()[k]
                        + ", not of the caller " + callerUid + ": only root may restart it");
        }
        int[] mine = groupsOf(callerUid, callerGid);
        for (int gid : Arrays.copyOf(c.gids(), 3)) {
            if (Arrays.stream(mine).noneMatch(g -> g == gid))
                throw new RestoreException(EPERM, "the image at " + image.dir() + " holds a process of gid " + gid
                        + ", which uid " + callerUid + " does not have: only root may restart it");
        }
        for (int g : c.groups()) {
            if (Arrays.stream(mine).noneMatch(x -> x == g))
                throw new RestoreException(EPERM, "the image at " + image.dir() + " holds a process in group " + g
                        + ", which uid " + callerUid + " is not in: only root may restart it");
        }
        if (c.capEff() != 0 || c.capPrm() != 0)
            throw new RestoreException(EPERM, "the image at " + image.dir() + " holds a process with capabilities: "
                    + "only root may restart it");
    }

    /** The primary gid and every group of /etc/group that lists the user. */
    private static int[] groupsOf(int uid, int gid) {
        List<Integer> out = new ArrayList<>(List.of(gid));
        try {
            String name = null;
            for (String line : Files.readAllLines(Path.of("/etc/passwd"))) {
                String[] f = line.split(":");
                if (f.length > 3 && f[2].equals(Integer.toString(uid))) {
                    name = f[0];
                    out.add(Integer.parseInt(f[3]));
                }
            }
            if (name != null) {
                for (String line : Files.readAllLines(Path.of("/etc/group"))) {
                    String[] f = line.split(":");
                    if (f.length > 3 && Arrays.asList(f[3].split(",")).contains(name)) out.add(Integer.parseInt(f[2]));
                }
            }
        } catch (IOException | RuntimeException ignored) {
            // no passwd or group file: only the primary gid
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * Whether path is in the /proc entry of proc or of one of its ancestors in the image (a checkpoint
     * refuses any other; an image that has another is checked like any file, and fails for it).
     */
    private boolean ownProcEntry(ProcessImage proc, String path) {
        int n = Records.Fd.procEntryPid(path);
        if (n < 0) return false;
        Map<Integer, Integer> parent = new HashMap<>();
        for (Records.TreeEntry e : image.tree()) parent.put(e.gpid(), e.ppid());
        for (Integer p = proc.gpid(); p != null && parent.containsKey(p); p = parent.get(p))
            if (p == n) return true;
        return false;
    }

    /** Every file the process maps or has open by path is the one the checkpoint saw. */
    void checkFiles(ProcessImage proc) throws IOException {
        Map<String, Long> seen = new HashMap<>();
        for (Records.Vma v : proc.vmas()) {
            if (v.kind() == Records.VMA_FILE && !isSharedAnon(v) && !SysvRestore.isSysv(v)) seen.put(v.path(), v.inode());
        }
        for (Records.Fd f : proc.fds()) {
            // a /proc entry of the process or an ancestor in the image (the checkpoint took no other): it
            // exists once that process is restored, and is opened then
            if (f.kind() == Records.FD_REG && ownProcEntry(proc, f.path())) continue;
            if (f.kind() == Records.FD_REG || f.kind() == Records.FD_CHR) seen.put(f.path(), f.inode());
        }
        if (!proc.process().exe().isEmpty() && !seen.containsKey(proc.process().exe()))
            seen.put(proc.process().exe(), -1L);
        for (var e : seen.entrySet()) checkFile(Path.of(e.getKey()), e.getValue());
        for (Records.Fd f : proc.fds()) {
            if (f.kind() != Records.FD_FIFO) continue;
            checkFile(Path.of(f.path()), f.inode());
            if ((((Integer) Files.getAttribute(Path.of(f.path()), "unix:mode")) & 0170000) != 0010000)
                throw new RestoreException(EINVAL, "file " + f.path() + " is not a named pipe any more; the checkpoint had it open as one");
        }
        for (Records.FileStat f : proc.files()) checkStat(f);
        if (!Files.isDirectory(Path.of(proc.process().cwd())))
            throw new RestoreException(2, "the working directory " + proc.process().cwd() + " of the process is missing");
    }

    /** inode -1: only that it exists. */
    static void checkFile(Path p, long inode) throws IOException {
        Object ino;
        try {
            ino = Files.getAttribute(p, "unix:ino");
        } catch (NoSuchFileException e) {
            throw new RestoreException(2, "file " + p + " is missing; the checkpoint used it");
        }
        if (inode >= 0 && ino instanceof Long now && now != inode)
            throw new RestoreException(EINVAL, "file " + p + " differs from the checkpoint (inode " + now + ", was "
                    + inode + ")");
    }

    /** The file's size and modification time are still what the checkpoint recorded (FILESTAT, version 2). */
    static void checkStat(Records.FileStat f) throws IOException {
        Path p = Path.of(f.path());
        java.util.Map<String, Object> a;
        try {
            a = Files.readAttributes(p, "unix:ino,size,lastModifiedTime");
        } catch (NoSuchFileException e) {
            throw new RestoreException(2, "file " + p + " is missing; the checkpoint used it");
        }
        long ino = (Long) a.get("ino"), size = (Long) a.get("size");
        long mtime = ((java.nio.file.attribute.FileTime) a.get("lastModifiedTime")).to(java.util.concurrent.TimeUnit.NANOSECONDS);
        if (ino != f.inode())
            throw new RestoreException(EINVAL, "file " + p + " differs from the checkpoint (inode " + ino + ", was " + f.inode() + ")");
        if (size != f.size())
            throw new RestoreException(EINVAL, "file " + p + " differs from the checkpoint (size " + size + ", was " + f.size() + ")");
        if (mtime != f.mtimeNanos())
            throw new RestoreException(EINVAL, "file " + p + " differs from the checkpoint (modified "
                    + java.time.Instant.ofEpochSecond(0, mtime) + ", was " + java.time.Instant.ofEpochSecond(0, f.mtimeNanos()) + ")");
    }

    /** With the caller's fs identity: each file opens with the mode the process had, the cwd is reachable. */
    void checkAccess(ProcessImage proc) throws IOException {
        for (Records.Fd f : proc.fds()) {
            if (f.kind() == Records.FD_FIFO) {
                // opening a named pipe to check it would block (or steal a partner): its mode says
                Path p = Path.of(f.path());
                int acc = f.flags() & O_ACCMODE;
                if ((acc != O_WRONLY && !Files.isReadable(p)) || (acc != 0 && !Files.isWritable(p))) throw denied(f.path());
            }
        }
        for (Records.Fd f : proc.fds()) {
            if (f.kind() != Records.FD_REG && f.kind() != Records.FD_CHR) continue;
            if (ownProcEntry(proc, f.path())) continue; // not there yet (see checkFiles)
            Path p = Path.of(f.path());
            if (Files.isDirectory(p)) {
                if (!Files.isReadable(p) || !Files.isExecutable(p)) throw denied(f.path());
                continue;
            }
            int acc = f.flags() & O_ACCMODE;
            List<StandardOpenOption> opts = acc == O_WRONLY ? List.of(StandardOpenOption.WRITE)
                    : acc == O_RDWR ? List.of(StandardOpenOption.READ, StandardOpenOption.WRITE) : List.of(StandardOpenOption.READ);
            try (FileChannel ignored = FileChannel.open(p, opts.toArray(StandardOpenOption[]::new))) {
                // it opens
            } catch (AccessDeniedException e) {
                throw denied(f.path());
            }
        }
        for (Records.Vma v : proc.vmas()) {
            if (v.kind() == Records.VMA_FILE && !isSharedAnon(v) && !SysvRestore.isSysv(v) && !Files.isReadable(Path.of(v.path())))
                throw denied(v.path());
        }
        Path cwd = Path.of(proc.process().cwd());
        if (!Files.isExecutable(cwd)) throw denied(cwd.toString());
    }

    private static RestoreException denied(String path) {
        return new RestoreException(EPERM, "the caller may not open " + path + ", which the process had open");
    }

    /** The image's SysV segments, their data (opened here, closed with the rest) and each process's attachments. */
    SysvRestore.Plan sysvPlan() throws IOException {
        if (image.sysvShm().isEmpty()) return SysvRestore.Plan.NONE;
        DataFile data = null;
        if (image.sysvShm().stream().anyMatch(x -> !x.runs().isEmpty())) {
            data = DataFile.open(image.dir().resolve(ImageFormat.SYSV_SHM_DATA), ImageFormat.MAGIC_FILEDATA,
                    image.inventory().rootGpid());
            open.add(data);
        }
        Map<Integer, List<SysvRestore.Attachment>> by = new HashMap<>();
        for (ProcessImage p : image.processes().values()) by.put(p.gpid(), SysvRestore.attachments(p.vmas()));
        return new SysvRestore.Plan(image.sysvShm(), data, by);
    }

    /** The gpid must be free here (a restart never replaces a running process). */
    static void checkFree(Path procRoot, int gpid, int nodeId) throws RestoreException {
        if (Files.exists(procRoot.resolve(Integer.toString(gpid)), LinkOption.NOFOLLOW_LINKS))
            throw new RestoreException(EEXIST, "gpid " + gpid + " is taken on node " + nodeId);
    }

    /** One node per process of the image, in the image's order (the root first, parents before children). */
    List<TreeRestorer.Node> buildTree() throws IOException {
        List<TreeRestorer.Node> out = new ArrayList<>();
        for (Records.TreeEntry e : image.tree()) {
            if (e.zombie()) {
                out.add(TreeRestorer.Node.zombie(e.gpid(), e.ppid(), e.pgid(), e.sid(), e.exitSignal(), e.exitStatus()));
                continue;
            }
            RestorePlan p = build(image.processes().get(e.gpid()));
            boolean root = e.gpid() == image.inventory().rootGpid();
            out.add(new TreeRestorer.Node(p, root ? 0 : e.ppid(), e.pgid(), e.sid(), e.exitSignal(), e.stopped(),
                    e.stopReportPending(), e.contReportPending()));
        }
        return out;
    }

    /** The plan of one process: everything both the image and the restorer have. */
    RestorePlan build(ProcessImage proc) throws IOException {
        int gpid = proc.gpid();
        Records.ThreadRec th = proc.threads().getFirst();
        Map<Long, Records.Pagemap> maps = new HashMap<>();
        for (Records.Pagemap m : proc.pagemaps()) maps.put(m.vmaStart(), m);
        PageFiles pages = null;
        if (!proc.pagemaps().isEmpty()) {
            // held by raw fds too: the shim or the page copy reads the pages from them (prepare verified every run's CRC)
            pages = new PageFiles(image.dir(), gpid, true);
            open.add(pages);
        }
        List<RestorePlan.Vma> vmas = new ArrayList<>();
        List<RestorePlan.Special> specials = new ArrayList<>();
        for (Records.Vma v : proc.vmas()) {
            switch (v.kind()) {
                case Records.VMA_VSYSCALL -> { continue; }
                case Records.VMA_VDSO, Records.VMA_VVAR -> {
                    specials.add(new RestorePlan.Special(v.path(), v.start(), v.end()));
                    continue;
                }
                default -> { }
            }
            if (SysvRestore.isSysv(v)) continue; // attached again by shmat (SysvRestore)
            boolean shmem = isSharedAnon(v);
            boolean file = v.kind() == Records.VMA_FILE && !shmem;
            boolean growsDown = Arrays.asList(v.vmFlags().trim().split("\\s+")).contains("gd");
            Records.Pagemap m = maps.get(v.start());
            RestorePlan.PageSource ps = m == null ? RestorePlan.PageSource.NONE : pageSource(pages, v, m);
            if (chain != null) { // incremental: each page from the newest image of the chain that holds it
                PageChain c = chain;
                ps = sink -> c.forEachRun(gpid, v.start(), sink::accept);
            }
            vmas.add(new RestorePlan.Vma(v.start(), v.end(), v.prot(), v.shared(), growsDown, file ? v.path() : null,
                    file || shmem ? v.offset() : 0, ps, shmem ? v.inode() : 0));
        }
        List<RestorePlan.FdPlan> fds = new ArrayList<>();
        DataFile[] data = {null};
        for (Records.Fd f : proc.fds()) {
            int flags = f.flags() | (f.cloexec() ? O_CLOEXEC : 0);
            String path = f.path();
            if ((f.kind() == Records.FD_REG_DELETED || f.dataLength() > 0) && data[0] == null) {
                data[0] = DataFile.open(image.dir().resolve(ImageFormat.fileDataFile(gpid)), ImageFormat.MAGIC_FILEDATA, gpid);
                open.add(data[0]);
            }
            if (f.kind() == Records.FD_REG_DELETED)
                path = recreate(gpid, f, data[0]).toString();
            else if (f.kind() == Records.FD_TTY)
                path = stub.terminal(); // the caller's terminal, checked in prepare
            int kind = f.kind() == Records.FD_PIPE ? RestorePlan.FdPlan.PIPE : f.kind() == Records.FD_FIFO
                    ? RestorePlan.FdPlan.FIFO : f.kind() == Records.FD_UNIX
                    ? RestorePlan.FdPlan.UNIX : anonKind(f.kind()) != 0 ? anonKind(f.kind())
                    : f.kind() == Records.FD_REG_DELETED || f.kind() == Records.FD_TTY ? RestorePlan.FdPlan.PRIVATE
                    : RestorePlan.FdPlan.FILE;
            DataFile src = data[0];
            RestorePlan.QueuedBytes q = kind == RestorePlan.FdPlan.FILE || f.dataLength() <= 0 ? null
                    : () -> src.read(f.dataOffset(), f.dataLength(), f.dataCrc(), "the bytes queued on fd " + f.fd() + " of process " + gpid);
            fds.add(new RestorePlan.FdPlan(f.fd(), kind, path, flags, f.pos(), f.fileId(), f.inode(), f.peer(), f.aux(), q,
                    proc.fdState(f.fd())));
        }
        RestorePlan.SigAction[] acts = new RestorePlan.SigAction[64];
        for (Records.SigAction a : proc.sigacts().actions()) {
            if (a.sig() < 1 || a.sig() > 64) continue;
            if (a.handler() != 0 || a.flags() != 0 || a.mask() != 0)
                acts[a.sig() - 1] = new RestorePlan.SigAction(a.handler(), a.flags(), a.restorer(), a.mask());
        }
        List<RestorePlan.Rlimit> rlimits = new ArrayList<>();
        Records.Rlimits rl = proc.rlimits();
        for (int r = 0; r < rl.cur().length; r++) rlimits.add(new RestorePlan.Rlimit(r, rl.cur()[r], rl.max()[r]));
        Records.Mm mm = proc.mm();
        String exe = proc.process().exe().isEmpty() ? null : proc.process().exe();
        RestorePlan.MmFields mmf = new RestorePlan.MmFields(mm.startCode(), mm.endCode(), mm.startData(), mm.endData(),
                mm.startBrk(), mm.brk(), mm.startStack(), mm.argStart(), mm.argEnd(), mm.envStart(), mm.envEnd(),
                mm.auxv(), exe);
        Records.Creds c = proc.creds();
        RestorePlan.Creds creds = new RestorePlan.Creds(c.uids()[0], c.uids()[1], c.uids()[2], c.gids()[0], c.gids()[1],
                c.gids()[2], c.groups());
        RestorePlan.AltStack alt = (th.altFlags() & SS_DISABLE) != 0 ? null
                : new RestorePlan.AltStack(th.altSp(), th.altFlags(), th.altSize());
        List<RestorePlan.ThreadPlan> others = new ArrayList<>();
        for (Records.ThreadRec o : proc.threads().subList(1, proc.threads().size())) {
            RestorePlan.AltStack oalt = (o.altFlags() & SS_DISABLE) != 0 ? null
                    : new RestorePlan.AltStack(o.altSp(), o.altFlags(), o.altSize());
            others.add(new RestorePlan.ThreadPlan(o.tid(), Regs.of(o.regs()), o.xstate().length == 0 ? null : o.xstate(),
                    o.blocked(), oalt, rseqOf(proc, o.tid()), o.clearTid(), robust(o)));
        }
        List<RestorePlan.SigQueue> queues = proc.sigqueues().stream()
                .map(q -> new RestorePlan.SigQueue(q.tid(), q.siginfos())).toList();
        return new RestorePlan(gpid, vmas, specials, Regs.of(th.regs()), th.xstate().length == 0 ? null : th.xstate(),
                mmf, fds, proc.process().cwd(), c.umask(), acts, th.blocked(), alt, rlimits, creds,
                proc.process().comm(), th.clearTid(), robust(th), c.noNewPrivs(), rseqOf(proc, th.tid()), others, queues,
                proc.itimers().values(), proc.timers());
    }

    /** The plan's kind for an anonymous-inode FD kind, 0 for any other. */
    static int anonKind(int fdKind) {
        return switch (fdKind) {
            case Records.FD_EVENTFD -> RestorePlan.FdPlan.EVENTFD;
            case Records.FD_TIMERFD -> RestorePlan.FdPlan.TIMERFD;
            case Records.FD_SIGNALFD -> RestorePlan.FdPlan.SIGNALFD;
            case Records.FD_EPOLL -> RestorePlan.FdPlan.EPOLL;
            default -> 0;
        };
    }

    private static boolean stateMatches(int fdKind, Records.FdState s) {
        return switch (fdKind) {
            case Records.FD_EVENTFD -> s instanceof Records.EventFd;
            case Records.FD_TIMERFD -> s instanceof Records.TimerFd;
            case Records.FD_SIGNALFD -> s instanceof Records.SignalFd;
            case Records.FD_EPOLL -> s instanceof Records.Epoll;
            default -> false;
        };
    }

    private static RestorePlan.Rseq rseqOf(ProcessImage proc, int tid) {
        return proc.rseqs().stream().filter(x -> x.tid() == tid).findFirst()
                .map(x -> new RestorePlan.Rseq(x.pointer(), x.size(), x.signature())).orElse(null);
    }

    private static RestorePlan.RobustList robust(Records.ThreadRec th) {
        return th.robustHead() == 0 ? null : new RestorePlan.RobustList(th.robustHead(), th.robustLen());
    }

    /**
     * The pages of VMA v: as runs of the pages file for the restorer to copy straight from the file
     * (their checksums checked by {@link #prepare} before anything was created, or, for a restart, by the
     * copy itself: see {@link RestorePlan.PageSource#checked}), or read and checked through forEachRun.
     */
    private RestorePlan.PageSource pageSource(PageFiles src, Records.Vma v, Records.Pagemap m) throws IOException {
        List<RestorePlan.FileRun> runs = new ArrayList<>();
        Map<RestorePlan.FileRun, Records.PageRun> records = new HashMap<>();
        for (Records.PageRun run : m.runs()) {
            RestorePlan.FileRun r = new RestorePlan.FileRun(v.start() + run.firstPage() * ImageFormat.PAGE_SIZE,
                    src.of(run).daemonFd(), run.fileOffset(), (long) run.pages() * ImageFormat.PAGE_SIZE, run.crc());
            runs.add(r);
            records.put(r, run);
        }
        boolean checked = pagesChecked;
        return new RestorePlan.PageSource() {
            @Override
            public void forEachRun(RestorePlan.PageSink sink) throws IOException {
                for (Records.PageRun run : m.runs()) {
                    long len = (long) run.pages() * ImageFormat.PAGE_SIZE;
                    byte[] data = src.of(run).read(run.fileOffset(), len, run.crc(), what(run));
                    sink.accept(v.start() + run.firstPage() * ImageFormat.PAGE_SIZE, data);
                }
            }

            private String what(Records.PageRun run) {
                return "pages " + run.firstPage() + ".." + (run.firstPage() + run.pages() - 1) + " of the VMA at 0x"
                        + Long.toHexString(v.start());
            }

            @Override
            public List<RestorePlan.FileRun> fileRuns() {
                return runs;
            }

            @Override
            public boolean checked() {
                return checked;
            }

            @Override
            public IOException mismatch(RestorePlan.FileRun r, int computed) {
                Records.PageRun run = records.get(r);
                try {
                    return src.of(run).mismatch(r.fileOffset(), what(run), r.crc(), computed);
                } catch (IOException e) {
                    return e; // (the file is open already: the run's copy read it)
                }
            }

            @Override
            public void verify(RestorePlan.FileRun r) throws IOException {
                Records.PageRun run = records.get(r);
                src.of(run).verify(r.fileOffset(), r.length(), r.crc(), what(run));
            }
        };
    }

    /**
     * A deleted-but-open file comes back as a file of its own in a private directory (root 0700), with
     * the saved bytes; the restored process opens it and {@link #close} removes the name, so it is a
     * deleted file again.
     */
    private Path recreate(int gpid, Records.Fd f, DataFile data) throws IOException {
        if (privateDir == null)
            privateDir = Files.createTempDirectory("ssi-restart-", PosixFilePermissions.asFileAttribute(
                    PosixFilePermissions.fromString("rwx------")));
        byte[] bytes = f.dataLength() == 0 ? new byte[0]
                : data.read(f.dataOffset(), f.dataLength(), f.dataCrc(), "the saved contents of fd " + f.fd());
        Path p = privateDir.resolve(gpid + "-fd-" + f.fd());
        Files.write(p, bytes, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        return p;
    }

    @Override
    public void close() {
        if (chain != null) open.add(chain);
        chain = null;
        for (AutoCloseable c : open) {
            try {
                c.close();
            } catch (Exception ignored) {
                // read-only channels
            }
        }
        open.clear();
        if (privateDir != null) {
            try (var s = Files.list(privateDir)) {
                for (Path p : s.toList()) Files.deleteIfExists(p);
                Files.deleteIfExists(privateDir);
            } catch (IOException ignored) {
                // a temp directory of root's, 0700
            }
            privateDir = null;
        }
    }

    /** Runs file operations with the caller's fs identity (nothing to switch for root). */
    private record AsCaller(int uid, int gid) {
        interface Op<T> { T run() throws IOException; }

        <T> T run(Op<T> op) throws IOException {
            if (uid == 0) return op.run();
            try (FsCredentials as = FsCredentials.become(uid, gid)) {
                return op.run();
            }
        }
    }
}
