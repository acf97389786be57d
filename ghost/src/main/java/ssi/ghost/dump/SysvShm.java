package ssi.ghost.dump;

import ssi.ghost.image.DataWriter;
import ssi.ghost.image.ImageFormat;
import ssi.ghost.image.Records;
import ssi.shim.LocalFds;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The SysV shared memory segments an application uses: every segment one of its processes has attached
 * (a /proc/PID/maps line "/SYSVkkkkkkkk (deleted)" whose inode is the shmid), and every segment one of
 * its processes made (shm_cpid) that nobody has attached. Their attributes come from
 * /proc/sysvipc/shm, their contents (the pages that hold data, SEEK_DATA) from the segment itself,
 * through an attaching process's /proc/PID/map_files or an attachment of the daemon's own. A segment
 * also attached by a process outside the application, or in another IPC namespace, is refused: a
 * restart could not give both sides one segment. Stateless.
 */
public final class SysvShm {
    private SysvShm() {}

    private static final int SHM_DEST = 01000, MODE_BITS = 0777;

    /** One line of /proc/sysvipc/shm. */
    public record Seg(int key, int id, int mode, long size, int cpid, long nattch, int uid, int gid, int cuid, int cgid) { }

    /** Where a process has a segment attached: shmid, the address of its offset 0, a maps range of it. */
    record Attach(int pid, int id, long base, long start, long end) { }

    /** What {@link #inspect} found: the segments to save, with a way to read each. */
    record Found(List<Seg> segments, Map<Integer, Attach> readVia) {
        static final Found NONE = new Found(List.of(), Map.of());
    }

    /** /proc/sysvipc/shm of the daemon's IPC namespace, by shmid (the restart's checks read it too). */
    public static Map<Integer, Seg> table(Path procRoot) throws IOException {
        Map<Integer, Seg> out = new LinkedHashMap<>();
        List<String> lines = Files.readAllLines(procRoot.resolve("sysvipc").resolve("shm"), StandardCharsets.US_ASCII);
        for (String l : lines.subList(Math.min(1, lines.size()), lines.size())) {
            String[] f = l.trim().split("\\s+");
            if (f.length < 11) continue;
            Seg s = new Seg((int) Long.parseLong(f[0]), Integer.parseInt(f[1]), Integer.parseInt(f[2], 8), Long.parseLong(f[3]),
                    Integer.parseInt(f[4]), Long.parseLong(f[6]), Integer.parseInt(f[7]), Integer.parseInt(f[8]),
                    Integer.parseInt(f[9]), Integer.parseInt(f[10]));
            out.put(s.id(), s);
        }
        return out;
    }

    /** The SysV attachments of pid, from /proc/PID/maps (cheap: no page walk), one per maps line. */
    static List<Attach> attachments(ProcFs fs, int pid) throws IOException {
        List<Attach> out = new ArrayList<>();
        for (String line : Files.readAllLines(fs.dir(pid).resolve("maps"), StandardCharsets.UTF_8)) {
            String[] f = line.split("\\s+", 6);
            if (f.length < 6 || !f[5].startsWith("/SYSV")) continue;
            String[] r = f[0].split("-");
            long start = Long.parseUnsignedLong(r[0], 16), end = Long.parseUnsignedLong(r[1], 16);
            long off = Long.parseUnsignedLong(f[2], 16);
            out.add(new Attach(pid, (int) Long.parseLong(f[4]), start - off, start, end));
        }
        return out;
    }

    /**
     * The segments of the application of pids, or a refusal naming the segment. callerUid (0: root) must
     * own each (as owner or creator), since a checkpoint with --stop removes them.
     */
    static Found inspect(ProcFs fs, List<Integer> pids, int callerUid) throws IOException {
        Map<Integer, Set<String>> attachedBy = new LinkedHashMap<>(); // shmid -> "pid:base" attachments
        Map<Integer, Attach> readVia = new LinkedHashMap<>();
        for (int pid : pids) {
            for (Attach a : attachments(fs, pid)) {
                attachedBy.computeIfAbsent(a.id(), k -> new HashSet<>()).add(pid + ":" + a.base());
                readVia.putIfAbsent(a.id(), a);
            }
        }
        Path ownNs = Path.of("/proc/self/ns/ipc");
        boolean sameNs = true;
        for (int pid : pids) {
            if (!Files.readSymbolicLink(fs.dir(pid).resolve("ns").resolve("ipc")).equals(Files.readSymbolicLink(ownNs))) {
                if (!attachedBy.isEmpty())
                    throw CheckpointException.unsupported("process " + pid + " uses SysV shared memory in an IPC namespace of its own: "
                            + "not supported");
                sameNs = false;
            }
        }
        if (!sameNs) return Found.NONE;
        Map<Integer, Seg> table = table(fs.root());
        Set<Integer> inApp = new HashSet<>(pids);
        List<Seg> out = new ArrayList<>();
        for (var e : attachedBy.entrySet()) {
            Seg s = table.get(e.getKey());
            if (s == null)
                throw CheckpointException.unsupported("process " + readVia.get(e.getKey()).pid() + " maps SysV shared memory segment "
                        + e.getKey() + ", which /proc/sysvipc/shm does not list: not supported");
            if (s.nattch() > e.getValue().size())
                throw CheckpointException.unsupported("SysV shared memory segment " + s.id() + describeKey(s) + " is attached "
                        + s.nattch() + " times, " + (s.nattch() - e.getValue().size()) + " of them outside the application: not supported");
            out.add(s);
        }
        for (Seg s : table.values()) {
            if (!attachedBy.containsKey(s.id()) && s.nattch() == 0 && inApp.contains(s.cpid()) && (s.mode() & SHM_DEST) == 0)
                out.add(s);
        }
        for (Seg s : out) {
            if (callerUid != 0 && s.uid() != callerUid && s.cuid() != callerUid)
                throw new CheckpointException(CheckpointException.EPERM, "uid " + callerUid + " does not own SysV shared memory segment "
                        + s.id() + describeKey(s) + " (owner " + s.uid() + ", creator " + s.cuid() + ")");
        }
        return new Found(List.copyOf(out), readVia);
    }

    private static String describeKey(Seg s) {
        return s.key() == 0 ? "" : String.format(" (key 0x%08x)", s.key());
    }

    /** Saves the pages of each segment that hold data into data; returns the records. */
    static List<Records.SysvShm> save(ProcFs fs, Found found, DataWriter data) throws IOException {
        List<Records.SysvShm> out = new ArrayList<>();
        for (Seg s : found.segments()) {
            Attach a = found.readVia().get(s.id());
            long own = 0;
            Path file;
            if (a != null) {
                file = fs.dir(a.pid()).resolve("map_files").resolve(Long.toHexString(a.start()) + "-" + Long.toHexString(a.end()));
            } else {
                own = LocalFds.shmAttachReadOnly(s.id());
                long len = (s.size() + ImageFormat.PAGE_SIZE - 1) / ImageFormat.PAGE_SIZE * ImageFormat.PAGE_SIZE;
                file = Path.of("/proc/self/map_files/" + Long.toHexString(own) + "-" + Long.toHexString(own + len));
            }
            try {
                out.add(new Records.SysvShm(s.id(), s.key(), s.mode() & MODE_BITS, s.uid(), s.gid(), s.cuid(), s.cgid(), s.size(),
                        (s.mode() & SHM_DEST) != 0, contents(file, s.size(), data)));
            } finally {
                if (own != 0) LocalFds.shmDetach(own);
            }
        }
        return out;
    }

    /** The runs of the segment's file that hold data, copied into data. */
    private static List<Records.ShmRun> contents(Path file, long size, DataWriter data) throws IOException {
        List<long[]> ranges;
        int fd = LocalFds.open(file.toString(), 0);
        try {
            ranges = LocalFds.dataRanges(fd, 0, size);
        } finally {
            LocalFds.closeQuietly(fd);
        }
        List<Records.ShmRun> runs = new ArrayList<>();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            for (long[] r : ranges) {
                for (long at = r[0]; at < r[1]; ) {
                    int n = (int) Math.min(r[1] - at, DataWriter.BUFFER_SIZE);
                    ByteBuffer b = ByteBuffer.allocate(n);
                    while (b.hasRemaining()) {
                        if (ch.read(b, at + b.position()) <= 0)
                            throw new CheckpointException(CheckpointException.EIO, "short read of SysV shared memory through " + file);
                    }
                    b.flip();
                    DataWriter.Chunk c = data.append(b);
                    runs.add(new Records.ShmRun(at, n, c.offset(), c.crc()));
                    at += n;
                }
            }
        }
        return runs;
    }

    /**
     * After a checkpoint with --stop killed the application: its segments go with it (IPC_RMID; each
     * goes once the dying processes have detached), so a restart here finds their ids and keys free.
     * Returns notes on segments that could not be removed.
     */
    static List<String> removeAll(List<Records.SysvShm> saved) {
        List<String> notes = new ArrayList<>();
        for (Records.SysvShm s : saved) {
            if (s.removed()) continue;
            try {
                LocalFds.shmRemove(s.id());
            } catch (IOException e) {
                notes.add("SysV shared memory segment " + s.id() + " not removed: " + e.getMessage());
            }
        }
        return notes;
    }
}
