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
import java.util.List;

/**
 * The address space of a process: mm fields, every VMA (/proc/PID/smaps: the maps line and VmFlags),
 * and the contents of the pages a restore cannot get elsewhere. Which pages: /proc/PID/pagemap says
 * present (bit 63) or swapped (bit 62); of those, every page of an anonymous or shared-anonymous VMA,
 * and of a private file mapping only the pages that are not the file's own (bit 61 clear: written,
 * hence copied). Shared file mappings live in their file; vdso is recorded by address only, vvar and
 * vsyscall not at all. Pages are read from /proc/PID/mem in runs of up to {@link #CHUNK} bytes, each run
 * a PAGEMAP entry with its own CRC32C. Stateless.
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
        ProcFs.Stat st = fs.stat(fs.dir(pid));
        if (st == null) throw new CheckpointException(CheckpointException.ESRCH, "process " + pid + " is gone");
        long brk = t.syscall(SYS_BRK, 0);
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

    /** Does this VMA get its pages looked at at all, and does a file-backed page count? */
    private static boolean dumpsPages(Vma v) {
        return switch (v.kind()) {
            case Records.VMA_VDSO, Records.VMA_VVAR, Records.VMA_VSYSCALL -> false;
            case Records.VMA_FILE -> !v.shared() || isShmemLike(v);
            default -> true;
        };
    }

    /** Shared anonymous memory shows up as a file of the internal shmem mount. */
    private static boolean isShmemLike(Vma v) {
        return v.path().startsWith("/dev/zero") || v.path().startsWith("/memfd:") || v.path().startsWith("/SYSV");
    }

    /** Writes the stored pages of every VMA to pages; returns the PAGEMAP records. */
    static List<Records.Pagemap> dumpPages(ProcFs fs, int pid, List<Vma> vmas, DataWriter pages) throws IOException {
        List<Records.Pagemap> out = new ArrayList<>();
        Path dir = fs.dir(pid);
        try (FileChannel pagemap = FileChannel.open(dir.resolve("pagemap"), StandardOpenOption.READ);
             FileChannel mem = FileChannel.open(dir.resolve("mem"), StandardOpenOption.READ)) {
            for (Vma v : vmas) {
                if (!dumpsPages(v)) continue;
                boolean fileCounts = v.kind() != Records.VMA_FILE || isShmemLike(v);
                List<PageRun> runs = new ArrayList<>();
                long n = v.pages();
                long runStart = -1;
                ByteBuffer pm = ByteBuffer.allocate(8 * (int) Math.min(n, PAGEMAP_BATCH)).order(ByteOrder.LITTLE_ENDIAN);
                for (long base = 0; base < n; base += PAGEMAP_BATCH) {
                    int cnt = (int) Math.min(PAGEMAP_BATCH, n - base);
                    pm.clear().limit(8 * cnt);
                    long at = (v.start() / ImageFormat.PAGE_SIZE + base) * 8;
                    while (pm.hasRemaining()) {
                        if (pagemap.read(pm, at + pm.position()) <= 0) {
                            throw new CheckpointException(CheckpointException.EIO, "process " + pid
                                    + ": short read of /proc/pid/pagemap at VMA 0x" + Long.toHexString(v.start()));
                        }
                    }
                    for (int i = 0; i < cnt; i++) {
                        long e = pm.getLong(8 * i);
                        boolean keep = (e & (PM_PRESENT | PM_SWAPPED)) != 0 && (fileCounts || (e & PM_FILE) == 0);
                        long page = base + i;
                        if (keep && runStart < 0) runStart = page;
                        boolean flush = runStart >= 0 && (!keep || (page - runStart + 1) * ImageFormat.PAGE_SIZE == CHUNK);
                        if (flush) {
                            long last = keep ? page : page - 1;
                            runs.add(copy(mem, pid, v, runStart, (int) (last - runStart + 1), pages));
                            runStart = -1;
                        }
                    }
                }
                if (runStart >= 0) runs.add(copy(mem, pid, v, runStart, (int) (n - runStart), pages));
                if (!runs.isEmpty()) out.add(new Records.Pagemap(v.start(), List.copyOf(runs)));
            }
        }
        return out;
    }

    /** One run into a buffer of the pages writer, which writes it while the next run is read. */
    private static PageRun copy(FileChannel mem, int pid, Vma v, long first, int count, DataWriter pages)
            throws IOException {
        long addr = v.start() + first * ImageFormat.PAGE_SIZE;
        ByteBuffer buf = pages.buffer();
        buf.limit(count * ImageFormat.PAGE_SIZE);
        while (buf.hasRemaining()) {
            int r = mem.read(buf, addr + buf.position());
            if (r <= 0) {
                throw new CheckpointException(CheckpointException.EIO, "process " + pid + ": cannot read its memory at 0x"
                        + Long.toHexString(addr + buf.position()) + " (" + v.path() + ")");
            }
        }
        buf.flip();
        DataWriter.Chunk c = pages.appendBuffer(buf);
        return new PageRun(first, count, c.offset(), c.crc());
    }
}
