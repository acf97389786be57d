package ssi.ghost.restore;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ssi.ghost.image.DataWriter;
import ssi.ghost.image.Image;
import ssi.ghost.image.ImageFormat;
import ssi.ghost.image.Images;
import ssi.ghost.image.ProcessImage;
import ssi.ghost.image.Records.*;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;
import static ssi.ghost.image.Records.*;

/**
 * The image-to-plan adapter on synthetic images: every field lands where the restorer wants it, pages
 * come from the pages file at their addresses, a deleted file comes back with its bytes, and every
 * check (shape, files, owner, gpid, checksums) refuses before anything would be spawned.
 */
class ImageRestoreTest {
    @TempDir
    Path tmp;
    Path dir, work, exe, data, proc;
    static final int GPID = 16390;

    @BeforeEach
    void setUp() throws IOException {
        dir = tmp.resolve("img");
        work = Files.createDirectory(tmp.resolve("work"));
        exe = Files.writeString(work.resolve("prog"), "ELF?");
        data = Files.writeString(work.resolve("data"), "0123456789");
        proc = Files.createDirectory(tmp.resolve("proc"));
    }

    private static long ino(Path p) throws IOException {
        return (Long) Files.getAttribute(p, "unix:ino");
    }

    /** Writes an image of one process (threads threads, plus extra fds), and a tree of processes entries. */
    private void writeImage(int threads, int processes, List<Fd> extraFds) throws IOException {
        Images.prepareDir(dir, 0);
        long[] regs = new long[27];
        for (int i = 0; i < 27; i++) regs[i] = 0x100L * i + 1;
        List<SigAction> acts = new ArrayList<>();
        for (int s = 1; s <= 64; s++) acts.add(new SigAction(s, s == 10 ? 0x401234 : s == 13 ? 1 : 0, s == 10 ? 0x04000000 : 0,
                s == 10 ? 0x7f00 : 0, s == 10 ? 1L << 11 : 0));
        long[] cur = new long[16], max = new long[16];
        Arrays.fill(cur, -1);
        Arrays.fill(max, -1);
        cur[7] = 1024; max[7] = 4096;
        List<ThreadRec> ths = new ArrayList<>();
        for (int t = 0; t < threads; t++) ths.add(new ThreadRec(GPID + t, regs, new byte[] {1, 2, 3}, 1L << 11, 0, 0x7000, 0, 8192));
        List<Pagemap> maps = new ArrayList<>();
        List<Fd> fds = new ArrayList<>();
        try (DataWriter pages = DataWriter.create(dir, ImageFormat.pagesFile(GPID), ImageFormat.MAGIC_PAGES, GPID);
             DataWriter fdata = DataWriter.create(dir, ImageFormat.fileDataFile(GPID), ImageFormat.MAGIC_FILEDATA, GPID)) {
            byte[] two = new byte[2 * ImageFormat.PAGE_SIZE];
            Arrays.fill(two, (byte) 7);
            two[5000] = 42;
            DataWriter.Chunk a = pages.append(ByteBuffer.wrap(two));
            maps.add(new Pagemap(0x10000000L, List.of(new PageRun(1, 2, a.offset(), a.crc()))));
            DataWriter.Chunk d = fdata.append(ByteBuffer.wrap("gone but open".getBytes()));
            fds.add(new Fd(0, FD_CHR, 0, false, 0, "/dev/null", ino(Path.of("/dev/null")), -1, -1, 0));
            fds.add(new Fd(3, FD_REG, 02 | 02000, true, 7, data.toString(), ino(data), -1, -1, 0));
            fds.add(new Fd(4, FD_REG_DELETED, 02, false, 5, work.resolve("old").toString(), 78, d.offset(), d.length(), d.crc()));
            fds.addAll(extraFds);
            ProcessImage img = new ProcessImage(
                    new ProcessRec(GPID, "prog", List.of("./prog"), exe.toString(), work.toString(), "/", 0),
                    new Creds(new int[] {1000, 1001, 1002, 1000}, new int[] {100, 101, 102, 100}, new int[] {100, 27}, 027,
                            0, 0, 0, 0x1ffffffffffL, 0, true),
                    new Rlimits(cur, max), ths, new SigActs(0, acts),
                    new Mm(0x400000, 0x401000, 0x600000, 0x601000, 0x602000, 0x623000, 0x7ffd0000, 1, 2, 3, 4, new byte[] {9, 9}),
                    new ITimers(new long[12]),
                    List.of(new Vma(0x400000L, 0x401000L, PROT_READ | PROT_EXEC, false, 0, 8, 1, ino(exe), exe.toString(), VMA_FILE, "rd ex mr mw me"),
                            new Vma(0x10000000L, 0x10004000L, PROT_READ | PROT_WRITE, false, 0, 0, 0, 0, "", VMA_ANON, "rd wr mr mw me ac"),
                            new Vma(0x7ffd0000L, 0x7ffe0000L, PROT_READ | PROT_WRITE, false, 0, 0, 0, 0, "[stack]", VMA_STACK, "rd wr mr mw me gd ac"),
                            new Vma(0x7fff0000L, 0x7fff2000L, PROT_READ | PROT_EXEC, false, 0, 0, 0, 0, "[vdso]", VMA_VDSO, "rd ex"),
                            new Vma(0x7fff2000L, 0x7fff6000L, PROT_READ, false, 0, 0, 0, 0, "[vvar]", VMA_VVAR, "rd"),
                            new Vma(0xffffffffff600000L, 0xffffffffff601000L, PROT_EXEC, false, 0, 0, 0, 0, "[vsyscall]", VMA_VSYSCALL, "ex")),
                    fds, maps, List.of(new RseqRec(GPID, 0x7f0000001000L, 32, 0x53053053)),
                    List.of(stat(exe), stat(data)));
            img.write(dir, 0);
            pages.commit(0);
            fdata.commit(0);
        }
        List<TreeEntry> tree = new ArrayList<>();
        tree.add(new TreeEntry(GPID, 1, GPID, GPID, 1000, 4, threads));
        for (int k = 1; k < processes; k++) tree.add(new TreeEntry(GPID + 100 + k, GPID, GPID, GPID, 1000, 4, 1));
        Image.writeInventory(dir, new Inventory(1_700_000_000_000L, 1, 1000, GPID, "host1"), tree, 0);
    }

    private static FileStat stat(Path p) throws IOException {
        var a = Files.readAttributes(p, "unix:dev,ino,size,lastModifiedTime");
        return new FileStat(p.toString(), (Long) a.get("dev"), (Long) a.get("ino"), (Long) a.get("size"),
                ((java.nio.file.attribute.FileTime) a.get("lastModifiedTime")).to(java.util.concurrent.TimeUnit.NANOSECONDS));
    }

    private ImageRestore prepare() throws IOException {
        return ImageRestore.prepare(dir, 0, 0, proc, 1);
    }

    @Test
    void everyFieldReachesThePlan() throws IOException {
        writeImage(1, 1, List.of());
        try (ImageRestore r = prepare()) {
            RestorePlan p = r.plan();
            assertEquals(GPID, p.pid());
            assertEquals(0x100L * 16 + 1, p.regs().toArray()[16]);
            assertArrayEquals(new byte[] {1, 2, 3}, p.xstate());
            assertEquals(work.toString(), p.cwd());
            assertEquals(027, p.umask());
            assertEquals(1L << 11, p.blockedMask());
            assertEquals(new RestorePlan.AltStack(0x7000, 0, 8192), p.altStack());
            assertEquals(new RestorePlan.SigAction(0x401234, 0x04000000, 0x7f00, 1L << 11), p.sigactions()[9]);
            assertEquals(1, p.sigactions()[12].handler()); // SIGPIPE ignored
            assertNull(p.sigactions()[0]); // SIGHUP default
            assertEquals(16, p.rlimits().size());
            assertEquals(new RestorePlan.Rlimit(7, 1024, 4096), p.rlimits().get(7));
            assertEquals(1000, p.creds().ruid());
            assertEquals(1001, p.creds().euid());
            assertEquals(1002, p.creds().suid());
            assertEquals(102, p.creds().sgid());
            assertArrayEquals(new int[] {100, 27}, p.creds().groups());
            assertTrue(p.noNewPrivs());
            assertEquals("prog", p.comm());
            assertEquals(0x623000, p.mm().brk());
            assertEquals(exe.toString(), p.mm().exePath());
            assertArrayEquals(new byte[] {9, 9}, p.mm().auxv());
            assertEquals(new RestorePlan.Rseq(0x7f0000001000L, 32, 0x53053053), p.rseq());

            // vsyscall left out, vdso/vvar as specials, the stack grows down, the file VMA keeps its path
            assertEquals(List.of(new RestorePlan.Special("[vdso]", 0x7fff0000L, 0x7fff2000L),
                    new RestorePlan.Special("[vvar]", 0x7fff2000L, 0x7fff6000L)), p.specials());
            assertEquals(3, p.vmas().size());
            assertEquals(exe.toString(), p.vmas().get(0).path());
            assertNull(p.vmas().get(1).path());
            assertFalse(p.vmas().get(1).growsDown());
            assertTrue(p.vmas().get(2).growsDown());

            // pages 1..2 of the anonymous VMA, at their addresses
            List<long[]> got = new ArrayList<>();
            List<byte[]> bytes = new ArrayList<>();
            p.vmas().get(1).pages().forEachRun((addr, b) -> { got.add(new long[] {addr, b.length}); bytes.add(b); });
            assertEquals(1, got.size());
            assertEquals(0x10001000L, got.getFirst()[0]);
            assertEquals(8192, got.getFirst()[1]);
            assertEquals(42, bytes.getFirst()[5000]);

            // fds: flags with O_CLOEXEC from the cloexec bit, positions; the deleted one re-created with its bytes
            assertEquals(new RestorePlan.FdPlan(0, RestorePlan.FdPlan.FILE, "/dev/null", 0, 0, 0, ino(Path.of("/dev/null")), 0, 0,
                    null), p.fds().get(0));
            assertEquals(new RestorePlan.FdPlan(3, RestorePlan.FdPlan.FILE, data.toString(), 02 | 02000 | 02000000, 7, 0, ino(data),
                    0, 0, null), p.fds().get(1));
            RestorePlan.FdPlan gone = p.fds().get(2);
            assertEquals(5, gone.pos());
            assertEquals("gone but open", Files.readString(Path.of(gone.path())));
            r.close();
            assertFalse(Files.exists(Path.of(gone.path())), "the private copy outlives the restore");
        }
    }

    @Test
    void aSecondThreadGetsAThreadPlan() throws IOException {
        writeImage(2, 1, List.of());
        try (ImageRestore r = prepare()) {
            RestorePlan p = r.plan();
            assertEquals(1, p.threads().size());
            assertEquals(GPID + 1, p.threads().getFirst().tid());
            assertEquals(0x7000, p.threads().getFirst().altStack().sp());
        }
    }

    @Test
    void aProcessWhoseParentIsNotInTheImageIsRefused() throws IOException {
        writeImage(1, 1, List.of());
        Image one = Image.load(dir);
        ImageRestore.checkShape(one);
        List<TreeEntry> tree = new ArrayList<>(one.tree());
        tree.add(new TreeEntry(GPID + 1, GPID + 77, GPID, GPID, 1000, 4, 1));
        Image two = new Image(dir, one.inventory(), tree, one.processes());
        RestoreException e = assertThrows(RestoreException.class, () -> ImageRestore.checkShape(two));
        assertTrue(e.getMessage().startsWith("process " + (GPID + 1) + " of the image has its parent " + (GPID + 77)
                + " outside the image"), e.getMessage());
    }

    @Test
    void aPipeIsRestorableButAnUnknownFdKindIsRefused() throws IOException {
        writeImage(1, 1, List.of(new Fd(5, FD_PIPE, 1, false, 0, "pipe:[99]", 99, -1, -1, 0)));
        ImageRestore.checkShape(Image.load(dir));
        Images.removeImage(dir, List.of(GPID), true);
        writeImage(1, 1, List.of(new Fd(5, 99, 1, false, 0, "anon_inode:inotify", 99, -1, -1, 0)));
        RestoreException e = assertThrows(RestoreException.class, this::prepare);
        assertTrue(e.getMessage().contains("not supported yet: fd 5 of process " + GPID + " is a kind99"), e.getMessage());
        // a signalfd without its SIGNALFD record (its state) cannot be made
        Images.removeImage(dir, List.of(GPID), true);
        writeImage(1, 1, List.of(new Fd(5, FD_SIGNALFD, 1, false, 0, "anon_inode:[signalfd]", 99, -1, -1, 0)));
        e = assertThrows(RestoreException.class, this::prepare);
        assertTrue(e.getMessage().contains("fd 5 of process " + GPID + " is a signalfd without its SIGNALFD record"), e.getMessage());
    }

    @Test
    void aTerminalNeedsTheCallersTerminal() throws IOException {
        writeImage(1, 1, List.of(new Fd(1, FD_TTY, 02, false, 0, "/dev/pts/4", 7, -1, -1, 0)));
        // detached: refused, pointing at the foreground restart
        RestoreException e = assertThrows(RestoreException.class, this::prepare);
        assertTrue(e.getMessage().contains("had its terminal /dev/pts/4 open on fd 1: restart it in the foreground"), e.getMessage());
        assertEquals(22, e.errno());
        // in the foreground from a caller without a terminal: refused
        e = assertThrows(RestoreException.class, () -> ImageRestore.prepare(dir, 0, 0, proc, 1, RootStub.checkOnly(77, -1)));
        assertTrue(e.getMessage().contains("but `ssi restart` runs without a terminal"), e.getMessage());
        // the caller's "terminal" must be one: here it is /dev/null
        try (var devNull = new java.io.FileInputStream("/dev/null")) {
            int fd = -1;
            try (var fds = Files.list(Path.of("/proc/self/fd"))) {
                for (Path p : fds.toList()) {
                    try {
                        if (Files.readSymbolicLink(p).toString().equals("/dev/null")) fd = Integer.parseInt(p.getFileName().toString());
                    } catch (IOException gone) {
                        // the listing's own fd
                    }
                }
            }
            int self = (int) ProcessHandle.current().pid(), nullFd = fd;
            e = assertThrows(RestoreException.class, () -> ImageRestore.prepare(dir, 0, 0, proc, 1, RootStub.checkOnly(self, nullFd)));
            assertTrue(e.getMessage().contains("/proc/" + self + "/fd/" + nullFd + " is not a terminal device (char 1:3)"), e.getMessage());
        }
    }

    @Test
    void aReplacedFileDiffers() throws IOException {
        writeImage(1, 1, List.of());
        long was = ino(data);
        Path copy = work.resolve("copy");
        Files.copy(data, copy);
        Files.move(copy, data, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        RestoreException e = assertThrows(RestoreException.class, this::prepare);
        assertTrue(e.getMessage().startsWith("file " + data + " differs from the checkpoint (inode " + ino(data) + ", was " + was + ")"),
                e.getMessage());
    }

    @Test
    void aFileWrittenSinceTheCheckpointDiffersBySize() throws IOException {
        writeImage(1, 1, List.of());
        Files.writeString(data, "0123456789abc");
        RestoreException e = assertThrows(RestoreException.class, this::prepare);
        assertTrue(e.getMessage().startsWith("file " + data + " differs from the checkpoint (size 13, was 10)"), e.getMessage());
    }

    @Test
    void aFileRewrittenInPlaceDiffersByMtime() throws IOException {
        writeImage(1, 1, List.of());
        Files.setLastModifiedTime(data, java.nio.file.attribute.FileTime.fromMillis(1_000_000_000_000L));
        RestoreException e = assertThrows(RestoreException.class, this::prepare);
        assertTrue(e.getMessage().startsWith("file " + data + " differs from the checkpoint (modified 2001-09-09T01:46:40Z, was "),
                e.getMessage());
    }

    @Test
    void aMissingBackingFileIsNamed() throws IOException {
        writeImage(1, 1, List.of());
        Files.delete(exe);
        RestoreException e = assertThrows(RestoreException.class, this::prepare);
        assertTrue(e.getMessage().startsWith("file " + exe + " is missing"), e.getMessage());
    }

    /**
     * A file of the process's own /proc entry is not looked for before the restart (it is not there yet:
     * the process is made by it); an image (crafted: a checkpoint refuses it) with another process's
     * entry gets the checks of any file, and fails them.
     */
    @Test
    void ownProcEntryIsOpenedLaterAnotherIsCheckedLikeAFile() throws IOException {
        writeImage(1, 1, List.of(new Fd(5, FD_REG, 0, false, 0, "/proc/" + GPID + "/stat", 4242, -1, -1, 0)));
        try (ImageRestore ignored = prepare()) {
            // prepared: nothing looked for /proc/GPID/stat
        }
        dir = tmp.resolve("img-other-entry");
        writeImage(1, 1, List.of(new Fd(5, FD_REG, 0, false, 0, "/proc/1/status", 4242, -1, -1, 0)));
        RestoreException e = assertThrows(RestoreException.class, this::prepare);
        assertTrue(e.getMessage().startsWith("file /proc/1/status differs from the checkpoint"), e.getMessage());
    }

    @Test
    void aTakenGpidIsNamedWithItsNode() throws IOException {
        writeImage(1, 1, List.of());
        Files.createDirectory(proc.resolve(Integer.toString(GPID)));
        RestoreException e = assertThrows(RestoreException.class, this::prepare);
        assertTrue(e.getMessage().startsWith("gpid " + GPID + " is taken on node 1"), e.getMessage());
        assertEquals(17, e.errno());
    }

    @Test
    void aFlippedPageByteIsAChecksumErrorBeforeAnything() throws IOException {
        writeImage(1, 1, List.of());
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve(ImageFormat.pagesFile(GPID)).toFile(), "rw")) {
            f.seek(ImageFormat.DATA_START + 10);
            f.write(99);
        }
        IOException e = assertThrows(IOException.class, this::prepare);
        assertTrue(e.getMessage().contains("checksum mismatch in pages 1..2 of the VMA at 0x10000000"), e.getMessage());
    }

    @Test
    void aRestartLeavesThePageChecksumsToTheCopyButNotTheFileBounds() throws IOException {
        writeImage(1, 1, List.of());
        Path pages = dir.resolve(ImageFormat.pagesFile(GPID));
        try (RandomAccessFile f = new RandomAccessFile(pages.toFile(), "rw")) {
            f.seek(ImageFormat.DATA_START + 10);
            f.write(99);
        }
        // the copy checks each run as it copies it: prepare lets the flipped byte through, its runs say so
        try (ImageRestore r = ImageRestore.prepare(dir, 0, 0, proc, 1, RootStub.spawned(), false)) {
            RestorePlan.PageSource src = r.plan().vmas().stream().filter(v -> !v.pages().fileRuns().isEmpty())
                    .findFirst().orElseThrow().pages();
            assertFalse(src.checked());
            RestorePlan.FileRun run = src.fileRuns().getFirst();
            IOException e = assertThrows(IOException.class, () -> src.verify(run));
            assertTrue(e.getMessage().contains("checksum mismatch in pages 1..2 of the VMA at 0x10000000"), e.getMessage());
            assertTrue(src.mismatch(run, 0).getMessage().contains("checksum mismatch in pages 1..2 of the VMA at 0x10000000"));
        }
        // a pages file cut short is refused before anything, as ever
        try (RandomAccessFile f = new RandomAccessFile(pages.toFile(), "rw")) {
            f.setLength(ImageFormat.DATA_START + 4096);
        }
        IOException e = assertThrows(IOException.class, () -> ImageRestore.prepare(dir, 0, 0, proc, 1, RootStub.spawned(), false));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void aWrongVersionIsRefused() throws IOException {
        writeImage(1, 1, List.of());
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve(ImageFormat.processFile(GPID)).toFile(), "rw")) {
            f.seek(4);
            f.writeShort(9);
        }
        IOException e = assertThrows(IOException.class, this::prepare);
        assertTrue(e.getMessage().contains("image format version 9, this ssi reads " + ImageFormat.VERSION), e.getMessage());
    }

    @Test
    void theOwnerMustBeTheCallerAndTheCredsTheCallers() throws IOException {
        writeImage(1, 1, List.of());
        Image img = Image.load(dir);
        RestoreException e = assertThrows(RestoreException.class, () -> ImageRestore.checkOwnerOf(img, 1001, 100));
        assertTrue(e.getMessage().contains("uid 1001 may not restart the image at " + dir + ", which belongs to uid 1000"),
                e.getMessage());
        // owner 1000, but the process's effective uid is 1001: only root
        RestoreException creds = assertThrows(RestoreException.class, () -> ImageRestore.checkOwnerOf(img, 1000, 100));
        assertTrue(creds.getMessage().contains("holds a process of uid 1001, not of the caller 1000"), creds.getMessage());
    }
}
