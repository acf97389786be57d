package ssi.ghost.dump;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ssi.ghost.image.DataFile;
import ssi.ghost.image.DataWriter;
import ssi.ghost.image.ImageFormat;
import ssi.ghost.image.Images;
import ssi.ghost.image.Records;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The /proc readers of the dump on a real child process of this JVM (no shim needed: reading another
 * process's maps, pagemap, mem and fds needs only ptrace access, which a parent of the same uid has):
 * tree, VMAs, stored pages and their checksums, fds including a deleted file and a refused socket.
 */
class ProcReadersTest {
    @TempDir
    Path tmp;
    Process child;

    @AfterEach
    void kill() throws InterruptedException {
        if (child != null) {
            child.destroyForcibly();
            child.waitFor(5, TimeUnit.SECONDS);
        }
    }

    private int start(String script) throws IOException, InterruptedException {
        child = new ProcessBuilder("bash", "-c", script).directory(tmp.toFile()).redirectErrorStream(true).start();
        // the script prints a line once its fds are in place
        assertTrue(child.inputReader().readLine().startsWith("go"));
        return (int) child.pid();
    }

    /**
     * A thread that ended between the freezer's listing and its attach: a zombie (which PTRACE_SEIZE
     * refuses with EPERM, not ESRCH) or a task that is gone counts as ended, a sleeping one does not.
     */
    @Test
    void anEndedThreadIsToldFromALiveOne() throws Exception {
        // the child exits and, its parent exec'd into sleep, is never reaped: a zombie
        int pid = start("sleep 0.05 & echo $! > zpid; echo go; exec sleep 60");
        int zombie = Integer.parseInt(Files.readString(tmp.resolve("zpid")).trim());
        ProcFs fs = new ProcFs(Path.of("/proc"));
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (fs.stat(fs.dir(zombie)) != null && fs.stat(fs.dir(zombie)).state() != 'Z' && System.nanoTime() < until) Thread.sleep(10);
        assertEquals('Z', fs.stat(fs.dir(zombie)).state(), "the child is a zombie");
        assertTrue(Freezer.ended(fs, zombie, zombie), "a zombie has ended");
        assertFalse(Freezer.ended(fs, pid, pid), "the sleeping parent has not");
        assertTrue(Freezer.ended(fs, pid, Integer.MAX_VALUE - 1), "a task that is not there has");
    }

    @Test
    void treeVmasPagesAndFilesOfAChild() throws Exception {
        int pid = start("exec 7<>data; printf 0123456789 >&7; exec 8<>gone; printf abc >&8; rm gone; "
                + "sleep 60 & echo go; wait");
        ProcFs fs = new ProcFs(Path.of("/proc"));
        ProcTree tree = ProcTree.collect(fs, pid);
        assertNotNull(tree);
        assertEquals(pid, tree.members().getFirst().pid());
        assertTrue(tree.members().size() >= 2 && tree.members().get(1).ppid() == pid, tree.toString());
        assertNull(ProcTree.collect(fs, Integer.MAX_VALUE - 1));

        List<Records.Vma> vmas = Memory.vmas(fs, pid);
        assertTrue(vmas.stream().anyMatch(v -> v.kind() == Records.VMA_STACK), vmas.toString());
        assertTrue(vmas.stream().anyMatch(v -> v.kind() == Records.VMA_VDSO), vmas.toString());
        assertTrue(vmas.stream().anyMatch(v -> v.kind() == Records.VMA_FILE && v.path().endsWith("bash")), vmas.toString());
        assertTrue(vmas.stream().allMatch(v -> !v.vmFlags().isEmpty()), "VmFlags of every VMA");
        for (int i = 1; i < vmas.size(); i++) assertTrue(Long.compareUnsigned(vmas.get(i - 1).end(), vmas.get(i).start()) <= 0, "address order");

        Path dir = tmp.resolve("img");
        Images.prepareDir(dir, 0);
        List<Records.Pagemap> maps;
        try (DataWriter pages = DataWriter.create(dir, ImageFormat.pagesFile(pid), ImageFormat.MAGIC_PAGES, pid)) {
            maps = Memory.dumpPages(fs, pid, vmas, pages);
            pages.commit(0);
        }
        Records.Vma stack = vmas.stream().filter(v -> v.kind() == Records.VMA_STACK).findFirst().orElseThrow();
        assertTrue(maps.stream().anyMatch(m -> m.vmaStart() == stack.start() && m.pages() > 0), "stack pages are stored");
        assertTrue(maps.stream().noneMatch(m -> vmas.stream().anyMatch(v -> v.start() == m.vmaStart()
                && (v.kind() == Records.VMA_VDSO || v.kind() == Records.VMA_VVAR))), "no vdso/vvar pages");
        // bash's text is the file's: not stored
        assertTrue(maps.stream().noneMatch(m -> vmas.stream().anyMatch(v -> v.start() == m.vmaStart()
                && v.kind() == Records.VMA_FILE && v.prot() == (Records.PROT_READ | Records.PROT_EXEC))), "no clean text pages");
        try (DataFile f = DataFile.open(dir.resolve(ImageFormat.pagesFile(pid)), ImageFormat.MAGIC_PAGES, pid)) {
            for (Records.Pagemap m : maps) {
                for (Records.PageRun r : m.runs()) {
                    assertTrue(r.pages() <= Memory.CHUNK / ImageFormat.PAGE_SIZE);
                    f.verify(r.fileOffset(), (long) r.pages() * ImageFormat.PAGE_SIZE, r.crc(), "run");
                }
            }
        }

        Fds.Found found = Fds.dump(fs, pid, ssi.shim.UnixDiag::all);
        Map<Integer, Records.Fd> byFd = new java.util.HashMap<>();
        for (Records.Fd f : found.fds()) byFd.put(f.fd(), f);
        assertEquals(Records.FD_REG, byFd.get(7).kind());
        assertEquals(tmp.resolve("data").toString(), byFd.get(7).path());
        assertEquals(10, byFd.get(7).pos());
        assertEquals(2, byFd.get(7).flags() & 3, "O_RDWR");
        assertEquals(Records.FD_REG_DELETED, byFd.get(8).kind());
        assertEquals(tmp.resolve("gone").toString(), byFd.get(8).path());
        try (DataWriter data = DataWriter.create(dir, ImageFormat.fileDataFile(pid), ImageFormat.MAGIC_FILEDATA, pid)) {
            Records.Fd saved = Fds.saveDeleted(pid, found, data).stream().filter(f -> f.fd() == 8).findFirst().orElseThrow();
            assertEquals(3, saved.dataLength());
            data.commit(0);
            try (DataFile f = DataFile.open(dir.resolve(ImageFormat.fileDataFile(pid)), ImageFormat.MAGIC_FILEDATA, pid)) {
                assertArrayEquals("abc".getBytes(), f.read(saved.dataOffset(), 3, saved.dataCrc(), "fd 8"));
            }
        }
    }

    /**
     * The copies ahead of an incremental checkpoint (one per tracked process, running at once) share one
     * budget: a VMA whose written pages do not fit in what is left is not copied ahead (the dump then
     * copies it the ordinary way), and a VMA copied ahead takes only what it held. The held copy, placed
     * in a page file, is the process's memory.
     */
    @Test
    void copiesAheadShareOneBudget() throws Exception {
        int pid = start("echo go; sleep 60");
        ProcFs fs = new ProcFs(Path.of("/proc"));
        // stopped, so that its memory holds still between the copy and the check
        assertEquals(0, new ProcessBuilder("kill", "-STOP", Integer.toString(pid)).start().waitFor());
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (fs.stat(fs.dir(pid)).state() != 'T' && System.nanoTime() < until) Thread.sleep(10);
        assertEquals('T', fs.stat(fs.dir(pid)).state());
        Records.Vma stack = Memory.vmas(fs, pid).stream().filter(v -> v.kind() == Records.VMA_STACK).findFirst().orElseThrow();
        int pg = ImageFormat.PAGE_SIZE;
        // the stack's top 4 pages, present and written (bash has touched them)
        List<long[]> top = List.of(new long[] {stack.end() - 4L * pg, stack.end(), WriteProtect.PAGE_IS_PRESENT | WriteProtect.PAGE_IS_WRITTEN});
        java.util.concurrent.atomic.AtomicLong budget = new java.util.concurrent.atomic.AtomicLong(6L * pg);
        Path dir = tmp.resolve("img");
        Images.prepareDir(dir, 0);
        try (Memory.Ahead first = new Memory.Ahead(fs, pid, budget); Memory.Ahead second = new Memory.Ahead(fs, pid, budget)) {
            first.vma(stack, top, new java.util.BitSet());
            assertTrue(first.done.containsKey(stack.start()), "4 pages fit in a budget of 6");
            assertEquals(2L * pg, budget.get());
            second.vma(stack, top, new java.util.BitSet());
            assertTrue(second.done.isEmpty(), "4 more pages do not fit in the 2 left");
            assertEquals(2L * pg, budget.get(), "a VMA not copied ahead takes nothing");
            byte[] mem = new byte[4 * pg];
            try (var ch = java.nio.channels.FileChannel.open(fs.dir(pid).resolve("mem"))) {
                ch.read(java.nio.ByteBuffer.wrap(mem), stack.end() - 4L * pg);
            }
            try (DataWriter pages = DataWriter.create(dir, ImageFormat.pagesFile(pid), ImageFormat.MAGIC_PAGES, pid)) {
                Memory.Ahead.Done d = first.done.get(stack.start());
                first.place(d, pages);
                pages.commit(0);
                List<Records.PageRun> runs = d.stored();
                assertEquals(1, runs.size(), runs.toString());
                assertEquals(stack.pages() - 4, runs.getFirst().firstPage());
                try (DataFile f = DataFile.open(dir.resolve(ImageFormat.pagesFile(pid)), ImageFormat.MAGIC_PAGES, pid)) {
                    assertArrayEquals(mem, f.read(runs.getFirst().fileOffset(), 4L * pg, runs.getFirst().crc(), "held run"));
                }
            }
        }
    }

    @Test
    void aListeningSocketIsRefusedByName() throws Exception {
        try (var server = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            int port = server.getLocalPort();
            int pid = start("exec 5<>/dev/tcp/127.0.0.1/" + port + "; echo go; sleep 60");
            CheckpointException e = assertThrows(CheckpointException.class, () -> Fds.dump(new ProcFs(Path.of("/proc")), pid, ssi.shim.UnixDiag::all));
            assertEquals(CheckpointException.EOPNOTSUPP, e.errno());
            assertTrue(e.getMessage().startsWith("process " + pid + " fd 5 is a TCP socket to 127.0.0.1:" + port + ": not supported"),
                    e.getMessage());
        }
    }

    @Test
    void socketAddressesAsTheKernelPrintsThem() {
        assertEquals("127.0.0.1:80", Fds.Sockets.addr("0100007F:0050"));
        assertEquals("10.0.0.1:8080", Fds.Sockets.addr("0100000A:1F90"));
        assertEquals("[0:0:0:0:0:0:0:1]:22", Fds.Sockets.addr("00000000000000000000000001000000:0016"));
    }

    @Test
    void aPipeEndNeedsItsOtherEndInsideOrClosed() throws Exception {
        Records.Fd w = new Records.Fd(4, Records.FD_PIPE, 1, false, 0, "pipe:[9]", 9, -1, -1, 0);
        Records.Fd r = new Records.Fd(3, Records.FD_PIPE, 0, false, 0, "pipe:[9]", 9, -1, -1, 0);
        assertDoesNotThrow(() -> Fds.checkPipes(Map.of(100, List.of(w), 101, List.of(r))));
        // a real process whose stdout is a pipe this JVM reads: the reader is outside, refused
        Process p = new ProcessBuilder("sleep", "30").redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .start();
        try {
            int pid = (int) p.pid();
            String link = Files.readSymbolicLink(Path.of("/proc", Integer.toString(pid), "fd", "1")).toString();
            long ino = Long.parseLong(link.substring(6, link.length() - 1));
            Records.Fd out = new Records.Fd(1, Records.FD_PIPE, 1, false, 0, link, ino, -1, -1, 0);
            CheckpointException e = assertThrows(CheckpointException.class, () -> Fds.checkPipes(Map.of(pid, List.of(out))));
            assertEquals("process " + pid + " fd 1 is the write end of a pipe (inode " + ino + ") whose other end is outside "
                    + "the application: not supported", e.getMessage());
            // both ends in the application, but this JVM, outside it, holds the read end too: refused
            Records.Fd in = new Records.Fd(0, Records.FD_PIPE, 0, false, 0, link, ino, -1, -1, 0);
            Map<Integer, List<Records.Fd>> both = Map.of(pid, List.of(out), Integer.MAX_VALUE, List.of(in));
            assertDoesNotThrow(() -> Fds.checkPipes(both));
            CheckpointException held = assertThrows(CheckpointException.class, () -> Fds.checkPipeHolders(new ProcFs(Path.of("/proc")), both));
            assertTrue(held.getMessage().contains("is an end of a pipe (" + link + ") that process " + ProcessHandle.current().pid()
                    + " ("), held.getMessage());
            assertTrue(held.getMessage().contains("which is not part of the application, holds too (fd "), held.getMessage());
            assertTrue(held.getMessage().endsWith("no longer in the application's tree): not supported"), held.getMessage());
            assertDoesNotThrow(() -> Fds.checkPipeHolders(new ProcFs(Path.of("/proc")),
                    Map.of(pid, List.of(out), (int) ProcessHandle.current().pid(), List.of(in))));
            // once nobody reads it any more (a write would get EPIPE), the lone end is fine
            p.getInputStream().close();
            assertDoesNotThrow(() -> Fds.checkPipes(Map.of(pid, List.of(out))));
        } finally {
            p.destroyForcibly();
        }
    }
}
