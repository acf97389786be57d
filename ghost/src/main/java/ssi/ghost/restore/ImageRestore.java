package ssi.ghost.restore;

import ssi.ghost.dump.FsCredentials;
import ssi.ghost.image.DataFile;
import ssi.ghost.image.Image;
import ssi.ghost.image.ImageFormat;
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
 * verified (as the caller, when the caller is not root), the application is one single-threaded
 * process, every file it maps or has open is still the one the checkpoint saw (same inode), a non-root
 * caller owns the image and may open each of those files, and the gpid is free on this node. Only then
 * {@link #restart} spawns the stub and lets {@link Restorer} rebuild the process.
 *
 * <p>Not carried (the image does not record them, or the restorer does not set them yet, see
 * docs/IMAGE-FORMAT.md): the set_tid_address pointer, the robust futex list, pending signals, interval
 * timers, process group and session.
 *
 * <p>Owned by one thread (a platform thread: the fs identity switch is per thread); close it after the
 * restore, which closes the data files and removes the private copies of deleted files.
 */
public final class ImageRestore implements AutoCloseable {
    private static final int O_ACCMODE = 3, O_WRONLY = 1, O_RDWR = 2, O_CLOEXEC = 02000000;
    private static final int SS_DISABLE = 2;
    public static final int EPERM = 1, ESRCH = 3, EIO = 5, EEXIST = 17, EINVAL = 22, EOPNOTSUPP = 95;

    /** What a finished restart reports. */
    public record Result(int gpid, long micros, List<String> log) { }

    private final Image image;
    private final ProcessImage proc;
    private final List<AutoCloseable> open = new ArrayList<>();
    private Path privateDir;
    private RestorePlan plan;

    private ImageRestore(Image image) {
        this.image = image;
        this.proc = image.processes().get(image.inventory().rootGpid());
    }

    public Image image() {
        return image;
    }

    public RestorePlan plan() {
        return plan;
    }

    /** Reads the image in dir as callerUid (the fs identity callerUid/callerGid unless root), checks it, builds the plan. */
    public static ImageRestore prepare(Path dir, int callerUid, int callerGid, Path procRoot, int nodeId)
            throws IOException {
        AsCaller as = new AsCaller(callerUid, callerGid);
        Image image;
        try {
            image = as.run(() -> {
                if (!Files.isDirectory(dir))
                    throw new RestoreException(2, "no image directory " + dir);
                Image img = Image.load(dir);
                img.verifyData();
                return img;
            });
        } catch (AccessDeniedException e) {
            throw new RestoreException(EPERM, "uid " + callerUid + " may not read the image at " + e.getMessage());
        } catch (NoSuchFileException e) {
            throw new RestoreException(0, "not a complete image: " + e.getMessage() + " is missing");
        }
        ImageRestore r = new ImageRestore(image);
        try {
            r.checkShape();
            if (callerUid != 0) r.checkOwner(callerUid, callerGid);
            checkFree(procRoot, image.inventory().rootGpid(), nodeId);
            r.checkFiles();
            if (callerUid != 0) as.run(() -> { r.checkAccess(); return null; });
            r.plan = as.run(r::build);
            return r;
        } catch (IOException | RuntimeException e) {
            r.close();
            throw e;
        }
    }

    /**
     * The whole restart on this node: prepare (every check, nothing created), spawn the stub with the
     * image's gpid and rebuild the process; on any failure nothing is left (the stub is killed).
     */
    public static Result restart(ShimLink link, Path dir, int callerUid, int callerGid, Path procRoot, int nodeId)
            throws IOException {
        long t0 = System.nanoTime();
        try (ImageRestore r = prepare(dir, callerUid, callerGid, procRoot, nodeId)) {
            List<String> log = Restorer.restore(link, r.plan());
            return new Result(r.plan().pid(), (System.nanoTime() - t0) / 1000, log);
        }
    }

    void checkShape() throws RestoreException {
        checkShape(image);
    }

    /** One process, one thread, files and devices only: what the restorer rebuilds today. */
    static void checkShape(Image image) throws RestoreException {
        ProcessImage proc = image.processes().get(image.inventory().rootGpid());
        int processes = image.tree().size();
        int threads = image.tree().stream().mapToInt(Records.TreeEntry::threads).sum();
        if (processes != 1 || threads != 1 || proc.threads().size() != 1)
            throw new RestoreException(EOPNOTSUPP, "not supported yet: " + processes + " processes / " + threads
                    + " threads (a restart rebuilds one single-threaded process)");
        for (Records.Vma v : proc.vmas()) {
            if (v.kind() == Records.VMA_FILE && (v.path().endsWith(" (deleted)") || v.path().startsWith("/memfd:")
                    || v.path().startsWith("/dev/zero") || v.path().startsWith("/SYSV")))
                throw new RestoreException(EOPNOTSUPP, "not supported yet: the mapping "
                        + String.format("%x-%x", v.start(), v.end()) + " of " + v.path() + " (shared anonymous memory "
                        + "or a deleted file)");
        }
        for (Records.Fd f : proc.fds()) {
            if (f.kind() != Records.FD_REG && f.kind() != Records.FD_REG_DELETED && f.kind() != Records.FD_CHR)
                throw new RestoreException(EOPNOTSUPP, "not supported yet: fd " + f.fd() + " is a "
                        + Records.fdKind(f.kind()) + " (" + f.path() + ")");
        }
    }

    /**
     * A non-root caller restarts only an image it made, of a process that was its own: root restores
     * with the image's credentials, so an edited image must not hand anyone else's uid or groups.
     */
    void checkOwner(int callerUid, int callerGid) throws RestoreException {
        checkOwnerOf(image, callerUid, callerGid);
    }

    static void checkOwnerOf(Image image, int callerUid, int callerGid) throws RestoreException {
        ProcessImage proc = image.processes().get(image.inventory().rootGpid());
        int owner = image.inventory().callerUid();
        if (owner != callerUid)
            throw new RestoreException(EPERM, "uid " + callerUid + " may not restart the image at " + image.dir()
                    + ", which belongs to uid " + owner + ": only its owner or root may");
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

    /** Every file the process maps or has open by path is the one the checkpoint saw. */
    void checkFiles() throws IOException {
        Map<String, Long> seen = new HashMap<>();
        for (Records.Vma v : proc.vmas()) {
            if (v.kind() == Records.VMA_FILE) seen.put(v.path(), v.inode());
        }
        for (Records.Fd f : proc.fds()) {
            if (f.kind() == Records.FD_REG || f.kind() == Records.FD_CHR) seen.put(f.path(), f.inode());
        }
        if (!proc.process().exe().isEmpty() && !seen.containsKey(proc.process().exe()))
            seen.put(proc.process().exe(), -1L);
        for (var e : seen.entrySet()) checkFile(Path.of(e.getKey()), e.getValue());
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
    void checkAccess() throws IOException {
        for (Records.Fd f : proc.fds()) {
            if (f.kind() == Records.FD_REG_DELETED) continue;
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
            if (v.kind() == Records.VMA_FILE && !Files.isReadable(Path.of(v.path()))) throw denied(v.path());
        }
        Path cwd = Path.of(proc.process().cwd());
        if (!Files.isExecutable(cwd)) throw denied(cwd.toString());
    }

    private static RestoreException denied(String path) {
        return new RestoreException(EPERM, "the caller may not open " + path + ", which the process had open");
    }

    /** The gpid must be free here (a restart never replaces a running process). */
    static void checkFree(Path procRoot, int gpid, int nodeId) throws RestoreException {
        if (Files.exists(procRoot.resolve(Integer.toString(gpid)), LinkOption.NOFOLLOW_LINKS))
            throw new RestoreException(EEXIST, "gpid " + gpid + " is taken on node " + nodeId);
    }

    /** The plan: everything both the image and the restorer have. */
    RestorePlan build() throws IOException {
        int gpid = proc.gpid();
        Records.ThreadRec th = proc.threads().getFirst();
        Map<Long, Records.Pagemap> maps = new HashMap<>();
        for (Records.Pagemap m : proc.pagemaps()) maps.put(m.vmaStart(), m);
        DataFile pages = null;
        if (!proc.pagemaps().isEmpty()) {
            // held by a raw fd too: the shim copies the pages from it (prepare verified every run's CRC)
            pages = DataFile.openWithFd(image.dir().resolve(ImageFormat.pagesFile(gpid)), ImageFormat.MAGIC_PAGES, gpid);
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
            boolean file = v.kind() == Records.VMA_FILE;
            boolean growsDown = Arrays.asList(v.vmFlags().trim().split("\\s+")).contains("gd");
            Records.Pagemap m = maps.get(v.start());
            RestorePlan.PageSource ps = m == null ? RestorePlan.PageSource.NONE : pageSource(pages, v, m);
            vmas.add(new RestorePlan.Vma(v.start(), v.end(), v.prot(), v.shared(), growsDown, file ? v.path() : null,
                    file ? v.offset() : 0, ps));
        }
        List<RestorePlan.FdPlan> fds = new ArrayList<>();
        DataFile data = null;
        for (Records.Fd f : proc.fds()) {
            int flags = f.flags() | (f.cloexec() ? O_CLOEXEC : 0);
            String path = f.path();
            if (f.kind() == Records.FD_REG_DELETED) {
                if (data == null) {
                    data = DataFile.open(image.dir().resolve(ImageFormat.fileDataFile(gpid)), ImageFormat.MAGIC_FILEDATA, gpid);
                    open.add(data);
                }
                path = recreate(f, data).toString();
            }
            fds.add(new RestorePlan.FdPlan(f.fd(), path, flags, f.pos()));
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
        return new RestorePlan(gpid, vmas, specials, Regs.of(th.regs()), th.xstate().length == 0 ? null : th.xstate(),
                mmf, fds, proc.process().cwd(), c.umask(), acts, th.blocked(), alt, rlimits, creds,
                proc.process().comm(), 0, null, c.noNewPrivs(), proc.rseqs().stream().filter(x -> x.tid() == th.tid())
                        .findFirst().map(x -> new RestorePlan.Rseq(x.pointer(), x.size(), x.signature())).orElse(null));
    }

    /**
     * The pages of VMA v: as runs of the pages file for the shim to copy (the checksums were verified by
     * {@link #prepare}, before anything was created), or read and checked again through forEachRun.
     */
    private static RestorePlan.PageSource pageSource(DataFile src, Records.Vma v, Records.Pagemap m) {
        List<RestorePlan.FileRun> runs = new ArrayList<>();
        for (Records.PageRun run : m.runs())
            runs.add(new RestorePlan.FileRun(v.start() + run.firstPage() * ImageFormat.PAGE_SIZE, run.fileOffset(),
                    (long) run.pages() * ImageFormat.PAGE_SIZE));
        return new RestorePlan.PageSource() {
            @Override
            public void forEachRun(RestorePlan.PageSink sink) throws IOException {
                for (Records.PageRun run : m.runs()) {
                    long len = (long) run.pages() * ImageFormat.PAGE_SIZE;
                    byte[] data = src.read(run.fileOffset(), len, run.crc(), "pages " + run.firstPage() + ".."
                            + (run.firstPage() + run.pages() - 1) + " of the VMA at 0x" + Long.toHexString(v.start()));
                    sink.accept(v.start() + run.firstPage() * ImageFormat.PAGE_SIZE, data);
                }
            }

            @Override
            public List<RestorePlan.FileRun> fileRuns() {
                return src.daemonFd() < 0 ? List.of() : runs;
            }

            @Override
            public int daemonFd() {
                return src.daemonFd();
            }
        };
    }

    /**
     * A deleted-but-open file comes back as a file of its own in a private directory (root 0700), with
     * the saved bytes; the restored process opens it and {@link #close} removes the name, so it is a
     * deleted file again.
     */
    private Path recreate(Records.Fd f, DataFile data) throws IOException {
        if (privateDir == null)
            privateDir = Files.createTempDirectory("ssi-restart-", PosixFilePermissions.asFileAttribute(
                    PosixFilePermissions.fromString("rwx------")));
        byte[] bytes = f.dataLength() == 0 ? new byte[0]
                : data.read(f.dataOffset(), f.dataLength(), f.dataCrc(), "the saved contents of fd " + f.fd());
        Path p = privateDir.resolve("fd-" + f.fd());
        Files.write(p, bytes, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        return p;
    }

    @Override
    public void close() {
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
