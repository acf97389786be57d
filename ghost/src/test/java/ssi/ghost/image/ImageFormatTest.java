package ssi.ghost.image;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ssi.ghost.image.Records.*;
import static ssi.ghost.image.Records.*;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The image format on a synthetic image: write, read back equal, verify page data; every kind of damage
 * (wrong magic, wrong version, truncation, a flipped byte in metadata or page data, a missing file)
 * gives an ImageException naming the file and offset; the printer shows what `ssi image show` promises.
 */
class ImageFormatTest {
    @TempDir
    Path tmp;
    Path dir;
    static final int GPID = 16390, CHILD = 16391;

    @BeforeEach
    void writeImage() throws IOException {
        dir = tmp.resolve("img");
        Images.prepareDir(dir, 0);
        write(GPID, 7);
        write(CHILD, 3);
        Image.writeInventory(dir, new Inventory(1_700_000_000_000L, 1, 0, GPID, "host1"),
                List.of(new TreeEntry(GPID, 16385, GPID, 0, 1000, 4 | 1, 1), new TreeEntry(CHILD, GPID, GPID, 0, 1000, 4, 1)), 0);
    }

    private static ProcessImage image(int gpid, List<Pagemap> maps, List<Fd> fds) {
        long[] regs = new long[27];
        for (int i = 0; i < 27; i++) regs[i] = 0x1000L * i + gpid;
        List<SigAction> acts = new ArrayList<>();
        for (int s = 1; s <= 64; s++) acts.add(new SigAction(s, s == 10 ? 0x401234 : s == 13 ? 1 : 0, 0x04000000, 0x7f00, 0));
        long[] cur = new long[16], max = new long[16];
        Arrays.fill(cur, -1);
        Arrays.fill(max, -1);
        cur[7] = 1024; max[7] = 4096;
        return new ProcessImage(
                new ProcessRec(gpid, "pattern", List.of("./pattern", "32"), "/tmp/pattern", "/tmp/work", "/", 0),
                new Creds(new int[] {1000, 1000, 1000, 1000}, new int[] {100, 100, 100, 100}, new int[] {100, 27}, 027,
                        0, 0, 0, 0x1ffffffffffL, 0, false),
                new Rlimits(cur, max),
                List.of(new ThreadRec(gpid, regs, new byte[] {1, 2, 3}, 1L << 11, 0, 0, 2, 0)),
                new SigActs(1L << 11, acts),
                new Mm(0x400000, 0x401000, 0x600000, 0x601000, 0x602000, 0x623000, 0x7ffd0000, 1, 2, 3, 4, new byte[] {9, 9}),
                new ITimers(new long[] {0, 0, 0, 0, 1, 500000, 2, 0, 0, 0, 0, 0}),
                List.of(new Vma(0x10000000L, 0x10004000L, PROT_READ | PROT_WRITE, false, 0, 0, 0, 0, "", VMA_ANON, "rd wr mr mw me ac"),
                        new Vma(0x7fff0000L, 0x7fff2000L, PROT_READ | PROT_EXEC, false, 0, 0, 0, 0, "[vdso]", VMA_VDSO, "rd ex")),
                fds, maps);
    }

    private void write(int gpid, int fill) throws IOException {
        List<Pagemap> maps = new ArrayList<>();
        List<Fd> fds = new ArrayList<>();
        try (DataWriter pages = DataWriter.create(dir, ImageFormat.pagesFile(gpid), ImageFormat.MAGIC_PAGES, gpid);
             DataWriter data = DataWriter.create(dir, ImageFormat.fileDataFile(gpid), ImageFormat.MAGIC_FILEDATA, gpid)) {
            byte[] two = new byte[2 * ImageFormat.PAGE_SIZE];
            Arrays.fill(two, (byte) fill);
            DataWriter.Chunk a = pages.append(ByteBuffer.wrap(two));
            DataWriter.Chunk b = pages.append(ByteBuffer.wrap(Arrays.copyOf(two, ImageFormat.PAGE_SIZE)));
            maps.add(new Pagemap(0x10000000L, List.of(new PageRun(0, 2, a.offset(), a.crc()), new PageRun(3, 1, b.offset(), b.crc()))));
            DataWriter.Chunk d = data.append(ByteBuffer.wrap("gone but open".getBytes()));
            fds.add(new Fd(0, FD_CHR, 0, false, 0, "/dev/null", 5, -1, -1, 0));
            fds.add(new Fd(3, FD_REG, 02, true, 1234, "/tmp/work/data", 77, -1, -1, 0));
            fds.add(new Fd(4, FD_REG_DELETED, 0, false, 5, "/tmp/work/old", 78, d.offset(), d.length(), d.crc()));
            fds.add(new Fd(5, FD_PIPE, 1, false, 0, "pipe:[99]", 99, -1, -1, 0));
            image(gpid, maps, fds).write(dir, 0);
            pages.commit(0);
            data.commit(0);
        }
    }

    /**
     * A striped writer written by two threads at once (stripe 0: buffers mixed with direct appends, past
     * the write-back step; stripe 1: buffers of several slices): every chunk is in the stripe and at the
     * offset it says, with its CRC, and commit renames the files only once all of it is written; a stripe
     * nothing was written to is not kept (nor an older file of that name). Nothing lands under the final
     * names before commit.
     */
    @Test
    void stripedWritesLandWhereTheirChunksSay() throws Exception {
        int gpid = 77777;
        int n = (int) (DataWriter.WRITEBACK_STEP / DataWriter.BUFFER_SIZE) + 9;
        List<DataWriter.Chunk> first = new ArrayList<>(), second = new ArrayList<>();
        Path f0 = dir.resolve(ImageFormat.pagesFile(gpid, 0)), f1 = dir.resolve(ImageFormat.pagesFile(gpid, 1)),
                f2 = dir.resolve(ImageFormat.pagesFile(gpid, 2));
        Files.write(f2, new byte[] {1}); // left by an older image in the same place
        try (DataWriter w = DataWriter.createStriped(dir, k -> ImageFormat.pagesFile(gpid, k), 3, ImageFormat.MAGIC_PAGES, gpid, true)) {
            assertEquals(3, w.stripes());
            Thread other = Thread.ofPlatform().start(() -> {
                try {
                    for (int i = 0; i < n / 2; i++) {
                        ByteBuffer b = w.buffer();
                        int[] lens = {ImageFormat.PAGE_SIZE, 3 * ImageFormat.PAGE_SIZE, (i % 4 + 1) * ImageFormat.PAGE_SIZE};
                        b.put(filled(lens[0] + lens[1] + lens[2], 1000 + i)).flip();
                        second.addAll(List.of(w.writeSlices(1, b, lens, 3)));
                    }
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            for (int i = 0; i < n; i++) {
                if (i % 7 == 3) {
                    first.add(w.append(ByteBuffer.wrap(filled(ImageFormat.PAGE_SIZE, i))));
                    continue;
                }
                ByteBuffer b = w.buffer();
                assertEquals(DataWriter.BUFFER_SIZE, b.capacity());
                int len = DataWriter.BUFFER_SIZE - (i % 5) * ImageFormat.PAGE_SIZE;
                b.put(filled(len, i)).flip();
                first.add(w.writeBuffer(0, b));
            }
            other.join();
            assertFalse(Files.exists(f0));
            assertFalse(Files.exists(f1));
            w.commit(0);
        }
        assertFalse(Files.exists(f2), "an empty stripe is not kept");
        assertTrue(Files.size(f0) > DataWriter.WRITEBACK_STEP);
        long expect = ImageFormat.DATA_START;
        try (DataFile f = DataFile.open(f0, ImageFormat.MAGIC_PAGES, gpid)) {
            for (int i = 0; i < n; i++) {
                DataWriter.Chunk c = first.get(i);
                assertEquals(0, c.file());
                assertEquals(expect, c.offset());
                expect += c.length();
                assertArrayEquals(filled((int) c.length(), i), f.read(c.offset(), c.length(), c.crc(), "chunk " + i), "chunk " + i);
            }
        }
        assertEquals(expect, Files.size(f0));
        expect = ImageFormat.DATA_START;
        try (DataFile f = DataFile.open(f1, ImageFormat.MAGIC_PAGES, gpid)) {
            for (int i = 0; i < n / 2; i++) {
                byte[] all = filled(5 * ImageFormat.PAGE_SIZE + (i % 4 + 1) * ImageFormat.PAGE_SIZE, 1000 + i);
                int at = 0;
                for (int k = 0; k < 3; k++) {
                    DataWriter.Chunk c = second.get(3 * i + k);
                    assertEquals(1, c.file());
                    assertEquals(expect, c.offset());
                    expect += c.length();
                    assertArrayEquals(Arrays.copyOfRange(all, at, at + (int) c.length()), f.read(c.offset(), c.length(), c.crc(), "slice"));
                    at += (int) c.length();
                }
            }
        }
        assertEquals(expect, Files.size(f1));
    }

    /**
     * Data read before the writer existed (an incremental checkpoint's pages copied ahead) is held: hold
     * gives each slice its place and CRC at once, later writes go after it, and the bytes reach the file
     * only at commit (or writeHeld), each at its place. A writer closed without commit writes nothing and
     * leaves no file; a hold whose slices do not add up to the buffer is refused.
     */
    @Test
    void heldChunksAreWrittenAtTheirPlacesAtCommit() throws IOException {
        int gpid = 77779, pg = ImageFormat.PAGE_SIZE;
        Path f0 = dir.resolve(ImageFormat.pagesFile(gpid, 0));
        byte[] a = filled(3 * pg, 1), c = filled(5 * pg, 3);
        DataWriter.Chunk[] held1, held2;
        DataWriter.Chunk mid;
        try (DataWriter w = DataWriter.createStriped(dir, k -> ImageFormat.pagesFile(gpid, k), 2, ImageFormat.MAGIC_PAGES, gpid, false)) {
            held1 = w.hold(0, spare(a), new int[] {pg, 2 * pg}, new int[] {crc(a, 0, pg), crc(a, pg, 3 * pg)}, 2);
            ByteBuffer b = w.buffer();
            b.put(filled(4 * pg, 2)).flip();
            mid = w.writeBuffer(0, b);
            held2 = w.hold(0, spare(c), new int[] {5 * pg}, new int[] {crc(c, 0, 5 * pg)}, 1);
            assertEquals(12L * pg, w.bytes(), "held bytes count as written");
            assertEquals(ImageFormat.DATA_START + 3L * pg, mid.offset(), "a write after a hold goes after the held data");
            IllegalArgumentException odd = assertThrows(IllegalArgumentException.class,
                    () -> w.hold(0, spare(c), new int[] {pg}, new int[] {0}, 1));
            assertTrue(odd.getMessage().contains("slices of 4096 bytes, buffer of 20480"), odd.getMessage());
            w.commit(0);
        }
        assertEquals(ImageFormat.DATA_START + 12L * pg, Files.size(f0));
        try (DataFile f = DataFile.open(f0, ImageFormat.MAGIC_PAGES, gpid)) {
            assertArrayEquals(Arrays.copyOfRange(a, 0, pg), f.read(held1[0].offset(), pg, held1[0].crc(), "held 1a"));
            assertArrayEquals(Arrays.copyOfRange(a, pg, 3 * pg), f.read(held1[1].offset(), 2 * pg, held1[1].crc(), "held 1b"));
            assertEquals(ImageFormat.DATA_START + pg, held1[1].offset());
            assertArrayEquals(filled(4 * pg, 2), f.read(mid.offset(), mid.length(), mid.crc(), "written"));
            assertEquals(ImageFormat.DATA_START + 7L * pg, held2[0].offset());
            assertArrayEquals(c, f.read(held2[0].offset(), 5 * pg, held2[0].crc(), "held 2"));
        }
        int gone = 77780;
        try (DataWriter w = DataWriter.createStriped(dir, k -> ImageFormat.pagesFile(gone, k), 1, ImageFormat.MAGIC_PAGES, gone, false)) {
            w.hold(0, spare(a), new int[] {3 * pg}, new int[] {crc(a, 0, 3 * pg)}, 1);
        }
        try (var left = Files.list(dir)) {
            assertTrue(left.noneMatch(p -> p.getFileName().toString().contains(Integer.toString(gone))), "a writer closed uncommitted left a file");
        }
    }

    private static ByteBuffer spare(byte[] data) {
        return DataWriter.spareBuffer().put(data).flip();
    }

    private static int crc(byte[] b, int from, int to) {
        java.util.zip.CRC32C c = new java.util.zip.CRC32C();
        c.update(b, from, to - from);
        return (int) c.getValue();
    }

    /** Checkpoints one after another reuse the direct buffers instead of piling up direct memory. */
    @Test
    void directBuffersAreReused() throws IOException {
        ByteBuffer a = DirectBuffers.take();
        a.put((byte) 1);
        DirectBuffers.give(a);
        ByteBuffer b = DirectBuffers.take();
        assertSame(a, b);
        assertEquals(0, b.position());
        assertEquals(DirectBuffers.SIZE, b.limit());
        DirectBuffers.give(ByteBuffer.allocate(DirectBuffers.SIZE)); // a heap buffer is not kept
        assertTrue(DirectBuffers.take().isDirect());
        int gpid = 77778;
        ByteBuffer used;
        try (DataWriter w = DataWriter.create(dir, ImageFormat.pagesFile(gpid), ImageFormat.MAGIC_PAGES, gpid)) {
            used = w.buffer();
            used.put(filled(ImageFormat.PAGE_SIZE, 1)).flip();
            w.writeBuffer(0, used);
            w.commit(0);
        }
        assertSame(used, DirectBuffers.take(), "the writer's buffer went back to the spares at commit");
    }

    private static byte[] filled(int len, int seed) {
        byte[] b = new byte[len];
        for (int i = 0; i < len; i++) b[i] = (byte) (i * 31 + seed * 7 + i / 4096);
        return b;
    }

    @Test
    void roundTrip() throws IOException {
        Image img = Image.load(dir);
        assertEquals(new Inventory(1_700_000_000_000L, 1, 0, GPID, "host1"), img.inventory());
        assertEquals(List.of(GPID, CHILD), img.tree().stream().map(TreeEntry::gpid).toList());
        ProcessImage p = img.processes().get(GPID);
        assertEquals("/tmp/work", p.process().cwd());
        assertEquals(027, p.creds().umask());
        assertArrayEquals(new int[] {100, 27}, p.creds().groups());
        assertEquals(1024, p.rlimits().cur()[7]);
        assertEquals(0x401234, p.sigacts().actions().get(9).handler());
        assertEquals(1L << 11, p.threads().getFirst().blocked());
        assertEquals(GPID + 0x1000L * 16, p.threads().getFirst().regs()[16]);
        assertArrayEquals(new byte[] {1, 2, 3}, p.threads().getFirst().xstate());
        assertEquals(0x623000, p.mm().brk());
        assertEquals("rd wr mr mw me ac", p.vmas().getFirst().vmFlags());
        assertEquals(1234, p.fds().get(1).pos());
        assertEquals(3, p.storedPages());
        assertEquals(2 * 3 * ImageFormat.PAGE_SIZE + 2 * "gone but open".length(), img.verifyData());
        try (DataFile pages = DataFile.open(dir.resolve(ImageFormat.pagesFile(CHILD)), ImageFormat.MAGIC_PAGES, CHILD)) {
            PageRun r = img.processes().get(CHILD).pagemaps().getFirst().runs().getFirst();
            byte[] b = pages.read(r.fileOffset(), 2L * ImageFormat.PAGE_SIZE, r.crc(), "run");
            assertEquals(3, b[0]);
            assertEquals(3, b[b.length - 1]);
        }
    }

    @Test
    void filesArePrivateAndNoTemporariesAreLeft() throws IOException {
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
        try (var s = Files.list(dir)) {
            for (Path p : s.toList()) {
                assertFalse(p.getFileName().toString().endsWith(".tmp"), p.toString());
                assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(p)), p.toString());
            }
        }
        IOException e = assertThrows(IOException.class, () -> Images.prepareDir(dir, 0));
        assertTrue(e.getMessage().contains("already holds an image"), e.getMessage());
    }

    private ImageException damaged() {
        return assertThrows(ImageException.class, () -> Image.load(dir).verifyData());
    }

    @Test
    void wrongMagic() throws IOException {
        Path f = dir.resolve(ImageFormat.processFile(GPID));
        byte[] b = Files.readAllBytes(f);
        b[0] = 'X';
        Files.write(f, b);
        ImageException e = damaged();
        assertEquals(f, e.file());
        assertEquals(0, e.offset());
        assertTrue(e.getMessage().contains("wrong magic") && e.getMessage().contains("not a process image file"), e.getMessage());
    }

    @Test
    void pagesFileUnderAProcessName() throws IOException {
        Files.copy(dir.resolve(ImageFormat.pagesFile(GPID)), dir.resolve(ImageFormat.processFile(GPID)),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertTrue(damaged().getMessage().contains("(pages), expected"));
    }

    @Test
    void version2RecordsRoundTripAndVersion1IsRefused() throws IOException {
        Path d2 = tmp.resolve("img2");
        Images.prepareDir(d2, 0);
        ProcessImage base = image(GPID, List.of(), List.of());
        ProcessImage withNew = new ProcessImage(base.process(), base.creds(), base.rlimits(), base.threads(), base.sigacts(),
                base.mm(), base.itimers(), base.vmas(), base.fds(), base.pagemaps(),
                List.of(new RseqRec(GPID, 0x7f0000001000L, 32, 0x53053053)),
                List.of(new FileStat("/tmp/pattern", 2049, 77, 12345, 1_700_000_000_123_456_789L)));
        withNew.write(d2, 0);
        ProcessImage back = ProcessImage.read(d2, GPID);
        assertEquals(withNew.rseqs(), back.rseqs());
        assertEquals(withNew.files(), back.files());
        assertEquals(List.of(), ProcessImage.read(dir, GPID).rseqs());
        // a file of version 1 (no RSEQ/FILESTAT records) is refused with the version message
        Path f = d2.resolve(ImageFormat.processFile(GPID));
        byte[] b = Files.readAllBytes(f);
        b[4] = 0;
        b[5] = 1;
        Files.write(f, b);
        ImageException e = assertThrows(ImageException.class, () -> ProcessImage.read(d2, GPID));
        assertTrue(e.getMessage().endsWith("image format version 1, this ssi reads " + ImageFormat.VERSION), e.getMessage());
    }

    @Test
    void anonymousFdsAndPosixTimersRoundTripAndPrint() throws IOException {
        Path d3 = tmp.resolve("img3");
        Images.prepareDir(d3, 0);
        List<Fd> fds = List.of(new Fd(3, FD_EVENTFD, 04002, true, 0, "anon_inode:[eventfd]", 1039, -1, -1, 0),
                new Fd(4, FD_TIMERFD, 04002, false, 0, "anon_inode:[timerfd]", 1039, -1, -1, 0),
                new Fd(5, FD_SIGNALFD, 04002, false, 0, "anon_inode:[signalfd]", 1039, -1, -1, 0),
                new Fd(6, FD_EPOLL, 02, true, 0, "anon_inode:[eventpoll]", 1039, -1, -1, 0),
                new Fd(7, FD_PIPE, 0, false, 0, "pipe:[99]", 99, -1, -1, 0));
        ProcessImage base = image(GPID, List.of(), fds);
        List<FdState> states = List.of(new EventFd(3, 0xfffffffffffffffeL, true),
                new TimerFd(4, 1, 3, 0, 0, 15_759_371, 0, 20_000_000),
                new SignalFd(5, 1L << 9),
                new Epoll(6, List.of(new EpollTarget(3, 1039, 0x19, 0x1000), new EpollTarget(7, 99, 0x80000001, -1L))));
        List<PosixTimer> timers = List.of(new PosixTimer(0, 1, SIGEV_SIGNAL, 0, 35, 0x4d, 0, 34_859_321, 0, 50_000_000, 5),
                new PosixTimer(1, 0, SIGEV_NONE, 0, 0, 0, 98, 1, 0, 0, 0),
                new PosixTimer(2, 1, SIGEV_THREAD_ID, GPID + 1, 34, 7, 1, 0, 1, 0, 0));
        ProcessImage withAnon = new ProcessImage(base.process(), base.creds(), base.rlimits(), base.threads(), base.sigacts(),
                base.mm(), base.itimers(), base.vmas(), base.fds(), base.pagemaps(), List.of(), List.of(), List.of(), List.of(),
                states, timers);
        withAnon.write(d3, 0);
        ProcessImage back = ProcessImage.read(d3, GPID);
        assertEquals(states, back.fdStates());
        assertEquals(timers, back.timers());
        assertEquals(fds, back.fds());
        assertEquals(new SignalFd(5, 1L << 9), back.fdState(5));
        assertNull(back.fdState(7));
        assertEquals(List.of(), ProcessImage.read(dir, GPID).timers());

        StringWriter sw = new StringWriter();
        PrintWriter pw = new PrintWriter(sw);
        ImagePrinter.printProcess(back, pw);
        pw.flush();
        String out = sw.toString();
        assertTrue(out.contains("3 eventfd      anon_inode:[eventfd] pos 0 flags 04002 cloexec count 18446744073709551614 semaphore"), out);
        assertTrue(out.contains("4 timerfd      anon_inode:[timerfd] pos 0 flags 04002 clock 1 left 0.015759371s interval 0.020000000s ticks 3"), out);
        assertTrue(out.contains("5 signalfd     anon_inode:[signalfd] pos 0 flags 04002 mask SIGUSR1"), out);
        assertTrue(out.contains("6 epoll        anon_inode:[eventpoll] pos 0 flags 02 cloexec watching fd 3 (events 19 data 1000) "
                + "fd 7 (events 80000001 data ffffffffffffffff)"), out);
        assertTrue(out.contains("posix timers (3):"), out);
        assertTrue(out.contains("timer 0 clock 1 notify SIGRTMIN+1 value 4d, left 0.034859321s, interval 0.050000000s, overrun 5"), out);
        assertTrue(out.contains("timer 1 clock 0 notify none value 0, left 98.000000001s, interval off"), out);
        assertTrue(out.contains("timer 2 clock 1 notify SIGRTMIN+0 to thread 16391 value 7, left 1.000000000s"), out);
        assertEquals("EPOLL", ImageFormat.recordName(ImageFormat.REC_EPOLL));
        assertEquals("POSIX_TIMER", ImageFormat.recordName(ImageFormat.REC_POSIX_TIMER));
    }

    /**
     * SysV segments in the inventory: read back equal, printed, their data checked by verifyData (a flipped
     * byte names the segment); a run outside its segment is refused when the inventory is read.
     */
    @Test
    void sysvSharedMemoryRoundTripVerifyAndPrint() throws IOException {
        List<SysvShm> segs;
        try (DataWriter data = DataWriter.create(dir, ImageFormat.SYSV_SHM_DATA, ImageFormat.MAGIC_FILEDATA, GPID)) {
            byte[] page = new byte[ImageFormat.PAGE_SIZE];
            Arrays.fill(page, (byte) 0x5a);
            DataWriter.Chunk c = data.append(ByteBuffer.wrap(page));
            segs = List.of(new SysvShm(32769, 0x5a001234, 0640, 1000, 100, 1000, 100, 3 * ImageFormat.PAGE_SIZE, false,
                            List.of(new ShmRun(2L * ImageFormat.PAGE_SIZE, ImageFormat.PAGE_SIZE, c.offset(), c.crc()))),
                    new SysvShm(5, 0, 0600, 1000, 100, 1000, 100, 100, true, List.of()));
            data.commit(0);
        }
        List<TreeEntry> tree = List.of(new TreeEntry(GPID, 16385, GPID, 0, 1000, 4 | 1, 1), new TreeEntry(CHILD, GPID, GPID, 0, 1000, 4, 1));
        Inventory inv = new Inventory(1_700_000_000_000L, 1, 0, GPID, "host1");
        Image.writeInventory(dir, inv, tree, null, segs, 0, true);
        Image img = Image.load(dir);
        assertEquals(segs, img.sysvShm());
        assertEquals(segs.getFirst(), img.sysvShm(32769));
        assertTrue(img.verifyData() >= ImageFormat.PAGE_SIZE);
        StringWriter sw = new StringWriter();
        PrintWriter pw = new PrintWriter(sw);
        ImagePrinter.print(img, -1, pw);
        pw.flush();
        String out = sw.toString();
        assertTrue(out.contains("SysV shared memory (2):"), out);
        assertTrue(out.contains("shmid 32769 key 0x5a001234 mode 0640 owner 1000:100 creator 1000:100 size 12288, 4096 bytes stored"), out);
        assertTrue(out.contains("shmid 5 key IPC_PRIVATE mode 0600 owner 1000:100 creator 1000:100 size 100, 0 bytes stored (removed, still attached)"), out);
        assertEquals("SYSV_SHM", ImageFormat.recordName(ImageFormat.REC_SYSV_SHM));

        Path f = dir.resolve(ImageFormat.SYSV_SHM_DATA);
        byte[] b = Files.readAllBytes(f);
        b[ImageFormat.DATA_START + 7] ^= 1;
        Files.write(f, b);
        IOException bad = assertThrows(IOException.class, () -> Image.load(dir).verifyData());
        assertTrue(bad.getMessage().contains("of SysV shared memory segment 32769"), bad.getMessage());

        Image.writeInventory(dir, inv, tree, null, List.of(new SysvShm(7, 0, 0600, 0, 0, 0, 0, 4096, false,
                List.of(new ShmRun(4096, 4096, ImageFormat.DATA_START, 0)))), 0, true);
        ImageException e = assertThrows(ImageException.class, () -> Image.load(dir));
        assertTrue(e.getMessage().contains("outside the segment"), e.getMessage());
    }

    @Test
    void wrongVersion() throws IOException {
        Path f = dir.resolve(ImageFormat.INVENTORY);
        byte[] b = Files.readAllBytes(f);
        b[4] = 0;
        b[5] = 7;
        Files.write(f, b);
        ImageException e = damaged();
        assertEquals(4, e.offset());
        assertTrue(e.getMessage().endsWith("image format version 7, this ssi reads " + ImageFormat.VERSION), e.getMessage());
    }

    @Test
    void truncatedMetadataAtEveryLength() throws IOException {
        Path f = dir.resolve(ImageFormat.processFile(CHILD));
        byte[] full = Files.readAllBytes(f);
        for (int len = 0; len < full.length; len += Math.max(1, len / 7)) {
            Files.write(f, Arrays.copyOf(full, len));
            ImageException e = damaged();
            assertEquals(f, e.file(), "length " + len);
            assertTrue(e.getMessage().contains("truncated"), "length " + len + ": " + e.getMessage());
        }
    }

    @Test
    void flippedMetadataByteFailsItsRecordChecksum() throws IOException {
        Path f = dir.resolve(ImageFormat.processFile(GPID));
        byte[] b = Files.readAllBytes(f);
        int at = ImageFormat.FILE_HEADER + ImageFormat.REC_HEADER + 5; // inside the first record's payload
        b[at] ^= 0x20;
        Files.write(f, b);
        ImageException e = damaged();
        assertEquals(ImageFormat.FILE_HEADER, e.offset());
        assertTrue(e.getMessage().contains("checksum mismatch in the PROCESS record"), e.getMessage());
    }

    @Test
    void flippedPageByteFailsItsChunkChecksum() throws IOException {
        Path f = dir.resolve(ImageFormat.pagesFile(GPID));
        byte[] b = Files.readAllBytes(f);
        b[ImageFormat.DATA_START + 2 * ImageFormat.PAGE_SIZE + 17] ^= 1; // the second run
        Files.write(f, b);
        Image img = Image.load(dir); // metadata is fine
        ImageException e = assertThrows(ImageException.class, img::verifyData);
        assertEquals(f, e.file());
        assertEquals(ImageFormat.DATA_START + 2 * ImageFormat.PAGE_SIZE, e.offset());
        assertTrue(e.getMessage().contains("checksum mismatch in pages 3..3 of the VMA at 0x10000000"), e.getMessage());
    }

    /**
     * Version 4: a run in page stripe 1 is read from pages-GPID-1.img (verify and the chain reader); that
     * file missing is the image's error naming it; a run naming stripe 16 or more is a corrupted record.
     */
    @Test
    void pageRunsInASecondStripe() throws IOException {
        Path d2 = tmp.resolve("striped");
        Images.prepareDir(d2, 0);
        int gpid = 16500;
        byte[] one = filledPages(1, 5), two = filledPages(2, 6);
        try (DataWriter pages = DataWriter.createStriped(d2, k -> ImageFormat.pagesFile(gpid, k), 2, ImageFormat.MAGIC_PAGES, gpid, false)) {
            DataWriter.Chunk a = pages.append(ByteBuffer.wrap(one));
            ByteBuffer b = pages.buffer();
            b.put(two).flip();
            DataWriter.Chunk c = pages.writeBuffer(1, b);
            assertEquals(1, c.file());
            List<Pagemap> maps = List.of(new Pagemap(0x10000000L, List.of(new PageRun(0, 1, a.file(), a.offset(), a.crc()),
                    new PageRun(1, 2, c.file(), c.offset(), c.crc()))));
            image(gpid, maps, List.of()).write(d2, 0);
            pages.commit(0);
        }
        Image.writeInventory(d2, new Inventory(1_700_000_000_000L, 1, 0, gpid, "host1"),
                List.of(new TreeEntry(gpid, 16385, gpid, 0, 1000, 4 | 1, 1)), 0);
        Path s1 = d2.resolve("pages-" + gpid + "-1.img");
        assertTrue(Files.exists(s1));
        Image img = Image.load(d2);
        assertEquals(1, img.processes().get(gpid).pagemaps().getFirst().runs().get(1).file());
        assertEquals(3L * ImageFormat.PAGE_SIZE, img.verifyData());
        ByteBuffer got = ByteBuffer.allocate(3 * ImageFormat.PAGE_SIZE);
        try (PageChain chain = PageChain.open(img)) {
            chain.forEachRun(gpid, 0x10000000L, (addr, data) -> got.put((int) (addr - 0x10000000L), data));
        }
        assertArrayEquals(one, Arrays.copyOfRange(got.array(), 0, ImageFormat.PAGE_SIZE));
        assertArrayEquals(two, Arrays.copyOfRange(got.array(), ImageFormat.PAGE_SIZE, 3 * ImageFormat.PAGE_SIZE));
        Files.delete(s1);
        ImageException e = assertThrows(ImageException.class, img::verifyData);
        assertEquals(s1, e.file());
        assertTrue(e.getMessage().contains("missing"), e.getMessage());

        java.io.ByteArrayOutputStream raw = new java.io.ByteArrayOutputStream();
        new Pagemap(0x10000000L, List.of(new PageRun(0, 1, ImageFormat.MAX_PAGE_STRIPES, 4096, 0)))
                .write(new java.io.DataOutputStream(raw));
        IOException bad = assertThrows(IOException.class,
                () -> Pagemap.read(new java.io.DataInputStream(new java.io.ByteArrayInputStream(raw.toByteArray()))));
        assertTrue(bad.getMessage().contains("names page file 16"), bad.getMessage());
    }

    private static byte[] filledPages(int pages, int seed) {
        byte[] b = new byte[pages * ImageFormat.PAGE_SIZE];
        for (int i = 0; i < b.length; i++) b[i] = (byte) (i * 13 + seed);
        return b;
    }

    @Test
    void truncatedPagesFile() throws IOException {
        Path f = dir.resolve(ImageFormat.pagesFile(CHILD));
        byte[] b = Files.readAllBytes(f);
        Files.write(f, Arrays.copyOf(b, b.length - 100));
        ImageException e = damaged();
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void flippedFileDataByte() throws IOException {
        Path f = dir.resolve(ImageFormat.fileDataFile(CHILD));
        byte[] b = Files.readAllBytes(f);
        b[ImageFormat.DATA_START] ^= 1;
        Files.write(f, b);
        assertTrue(damaged().getMessage().contains("checksum mismatch in the saved contents of fd 4"));
    }

    @Test
    void missingProcessFileAndGarbageAfterEnd() throws IOException {
        Path f = dir.resolve(ImageFormat.processFile(CHILD));
        byte[] b = Files.readAllBytes(f);
        Files.write(f, Arrays.copyOf(b, b.length + 3));
        assertTrue(damaged().getMessage().contains("garbage after the END record"));
        Files.delete(f);
        assertTrue(damaged().getMessage().contains("missing"));
    }

    @Test
    void printerShowsTreeCredsHandlersMasksVmasAndFds() throws IOException {
        Image img = Image.load(dir);
        StringWriter sw = new StringWriter();
        ImagePrinter.print(img, img.verifyData(), new PrintWriter(sw));
        String out = sw.toString();
        assertTrue(out.contains("format version " + ImageFormat.VERSION), out);
        assertFalse(out.contains("incremental"), "a full image names no parent: " + out);
        assertTrue(out.contains("2 process(es), 6 page(s) stored"), out);
        assertTrue(out.contains("every checksum verified"), out);
        assertTrue(out.contains("  16390  ppid 16385"), out);
        assertTrue(out.contains("    16391  ppid 16390"), out);
        assertTrue(out.contains("ssi-caps CAN_MIGRATE,CAN_CHECKPOINT"), out);
        assertTrue(out.contains("umask: 0027"), out);
        assertTrue(out.contains("cwd: /tmp/work"), out);
        assertTrue(out.contains("uid: real 1000 effective 1000 saved 1000 fs 1000"), out);
        assertTrue(out.contains("nofile     1024 / 4096"), out);
        assertTrue(out.contains("SIGUSR1   handler 0x401234"), out);
        assertTrue(out.contains("SIGPIPE   SIG_IGN"), out);
        assertFalse(out.contains("SIGTERM   "), "SIG_DFL handlers are not listed: " + out);
        assertTrue(out.contains("blocked SIGUSR2"), out);
        assertTrue(out.contains("itimer virtual: value 2.000000 s interval 1.500000 s"), out);
        assertTrue(out.contains("000010000000-000010004000 rw-p anon          4 pages,      3 stored"), out);
        assertTrue(out.contains("[vdso]"), out);
        assertTrue(out.contains("3 file         /tmp/work/data pos 1234 flags 02 cloexec"), out);
        assertTrue(out.contains("deleted file /tmp/work/old pos 5 flags 00 (13 bytes saved)"), out);
        assertTrue(out.contains("pipe         pipe:[99] pos 0 flags 01 inode 99 write end"), out);
    }
}
