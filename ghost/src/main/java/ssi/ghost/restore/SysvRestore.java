package ssi.ghost.restore;

import ssi.ghost.image.DataFile;
import ssi.ghost.image.ImageFormat;
import ssi.ghost.image.Records;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * SysV shared memory at restart. Before anything is made, every segment's id and key must be free on
 * the node. Then, in the root's stub (the application's IPC namespace, still with the restore's
 * rights), each segment is made again with its id (the IPC namespace's shm_next_id, then shmget with
 * its key, size and mode), filled with its saved pages through a short attachment of the stub's, and
 * given its owner (IPC_SET). Each process attaches its segments where it had them (shmat at the
 * address of the segment's offset 0, read-only when no piece of it was writable), the pieces it had
 * unmapped are unmapped again and each piece gets its protection back; a child keeps an attachment
 * the fork gave it when its parent had the very same one. Once every process is in place, a segment
 * that had been removed while attached (IPC_RMID) is removed again. Not restored: the creator
 * (shm_cuid/cgid: the restore's), the creating and last pids, the times, SHM_LOCK.
 */
final class SysvRestore {
    private SysvRestore() {}

    private static final int SYS_SHMGET = 29, SYS_SHMAT = 30, SYS_SHMCTL = 31, SYS_SHMDT = 67, SYS_OPENAT = 257,
            SYS_WRITE = 1, SYS_CLOSE = 3, SYS_MPROTECT = 10, SYS_MUNMAP = 11;
    private static final int IPC_CREAT = 01000, IPC_EXCL = 02000, IPC_RMID = 0, IPC_SET = 1, SHM_RDONLY = 010000,
            SHM_EXEC = 0100000, O_WRONLY = 1, O_CLOEXEC = 02000000;
    private static final long AT_FDCWD = -100;

    /** A maps range of an attachment, with its protection. */
    record Piece(long start, long end, int prot) { }

    /** One shmat of segment id at base (its offset 0), as the pieces the process still has of it. */
    record Attachment(int id, long base, List<Piece> pieces) { }

    /** The segments of an image, their data file, and each process's attachments. */
    record Plan(List<Records.SysvShm> segments, DataFile data, Map<Integer, List<Attachment>> byPid) {
        static final Plan NONE = new Plan(List.of(), null, Map.of());

        List<Attachment> of(int pid) {
            return byPid.getOrDefault(pid, List.of());
        }

        Records.SysvShm segment(int id) {
            for (Records.SysvShm s : segments) if (s.id() == id) return s;
            return null;
        }
    }

    static boolean isSysv(Records.Vma v) {
        return v.kind() == Records.VMA_FILE && v.path().startsWith("/SYSV");
    }

    /** The attachments of a process, from its VMAs (an attachment mprotect split is several VMAs). */
    static List<Attachment> attachments(List<Records.Vma> vmas) {
        Map<String, List<Piece>> by = new LinkedHashMap<>();
        Map<String, int[]> ids = new LinkedHashMap<>();
        Map<String, Long> bases = new LinkedHashMap<>();
        for (Records.Vma v : vmas) {
            if (!isSysv(v)) continue;
            long base = v.start() - v.offset();
            String k = v.inode() + "@" + base;
            by.computeIfAbsent(k, x -> new ArrayList<>()).add(new Piece(v.start(), v.end(), v.prot()));
            ids.put(k, new int[] {(int) v.inode()});
            bases.put(k, base);
        }
        List<Attachment> out = new ArrayList<>();
        for (var e : by.entrySet()) out.add(new Attachment(ids.get(e.getKey())[0], bases.get(e.getKey()), List.copyOf(e.getValue())));
        return out;
    }

    /** Every segment id and key is free on this node, and a non-root caller owns each segment. */
    static void checkFree(List<Records.SysvShm> segments, Path procRoot, int nodeId, int callerUid) throws IOException {
        if (segments.isEmpty()) return;
        Map<Integer, ssi.ghost.dump.SysvShm.Seg> table = ssi.ghost.dump.SysvShm.table(procRoot);
        Set<Integer> ids = table.keySet();
        Set<Integer> keys = new HashSet<>();
        for (ssi.ghost.dump.SysvShm.Seg g : table.values()) keys.add(g.key());
        for (Records.SysvShm s : segments) {
            if (callerUid != 0 && s.uid() != callerUid && s.cuid() != callerUid)
                throw new RestoreException(1, "uid " + callerUid + " does not own SysV shared memory segment " + s.id()
                        + " of the image (owner " + s.uid() + ")");
            if (ids.contains(s.id()))
                throw new RestoreException(17, "SysV shared memory id " + s.id() + " is taken on node " + nodeId);
            if (s.key() != 0 && keys.contains(s.key()))
                throw new RestoreException(17, String.format("SysV shared memory key 0x%08x is taken on node %d", s.key(), nodeId));
        }
    }

    /** Makes every segment again in the root's stub r; made gets each id as soon as it exists. */
    static void make(Restorer r, Plan plan, List<Integer> made) throws IOException {
        for (Records.SysvShm s : plan.segments()) {
            long fd = r.call("open of /proc/sys/kernel/shm_next_id", SYS_OPENAT, AT_FDCWD,
                    r.putString("/proc/sys/kernel/shm_next_id"), O_WRONLY | O_CLOEXEC, 0);
            try {
                byte[] id = Integer.toString(s.id()).getBytes(StandardCharsets.US_ASCII);
                r.put(r.scratch, id);
                r.call("write of shm_next_id " + s.id(), SYS_WRITE, fd, r.scratch, id.length);
            } finally {
                r.call("close of shm_next_id", SYS_CLOSE, fd);
            }
            long got = r.call(String.format("shmget of SysV segment %d (key 0x%08x, %d bytes)", s.id(), s.key(), s.size()),
                    SYS_SHMGET, s.key(), s.size(), IPC_CREAT | IPC_EXCL | (s.mode() & 0777));
            made.add((int) got);
            if (got != s.id())
                throw new RestoreException(17, "SysV shared memory segment " + s.id() + " came back as " + got
                        + " (its id was taken meanwhile)");
            if (!s.runs().isEmpty()) {
                long at = r.call("shmat of SysV segment " + s.id() + " to fill it", SYS_SHMAT, s.id(), 0, 0);
                try {
                    for (Records.ShmRun run : s.runs())
                        r.put(at + run.offset(), plan.data().read(run.dataOffset(), run.length(), run.crc(), "bytes "
                                + run.offset() + "+" + run.length() + " of SysV shared memory segment " + s.id()));
                } finally {
                    r.call("shmdt of SysV segment " + s.id(), SYS_SHMDT, at);
                }
            }
            if (s.uid() != 0 || s.gid() != 0) {
                // struct shmid64_ds: ipc64_perm {key, uid, gid, cuid, cgid, mode u16, ...}; IPC_SET takes uid, gid, mode
                ByteBuffer ds = ByteBuffer.allocate(112).order(ByteOrder.LITTLE_ENDIAN);
                ds.putInt(0, s.key()).putInt(4, s.uid()).putInt(8, s.gid()).putShort(20, (short) (s.mode() & 0777));
                r.put(r.scratch, ds.array());
                r.call("shmctl(IPC_SET) of SysV segment " + s.id() + " to owner " + s.uid() + ":" + s.gid(), SYS_SHMCTL, s.id(),
                        IPC_SET, r.scratch);
            }
        }
        if (!plan.segments().isEmpty()) r.log.add(r.pid + ": " + plan.segments().size() + " SysV shared memory segment(s) made again");
    }

    /**
     * The starts of the pieces of mine that the fork gave the child as its parent has them (the same
     * attachment, whole, in the stub's maps): they are kept, not attached again.
     */
    static Set<Long> kept(List<Attachment> mine, List<Attachment> parents, List<Restorer.MapsLine> stubMaps) {
        Set<Long> out = new HashSet<>();
        for (Attachment a : mine) {
            if (!parents.contains(a)) continue;
            boolean all = a.pieces().stream().allMatch(p -> stubMaps.stream().anyMatch(m -> m.start() == p.start() && m.end() == p.end()));
            if (all) for (Piece p : a.pieces()) out.add(p.start());
        }
        return out;
    }

    /** Attaches the process's segments where it had them (but those kept from the fork). */
    static void attach(Restorer r, Plan plan, List<Attachment> mine, Set<Long> kept) throws IOException {
        for (Attachment a : mine) {
            if (kept.contains(a.pieces().getFirst().start())) continue;
            Records.SysvShm s = plan.segment(a.id());
            long len = s.pages() * ImageFormat.PAGE_SIZE;
            boolean write = a.pieces().stream().anyMatch(p -> (p.prot() & Records.PROT_WRITE) != 0);
            boolean exec = a.pieces().stream().anyMatch(p -> (p.prot() & Records.PROT_EXEC) != 0);
            int prot = Records.PROT_READ | (write ? Records.PROT_WRITE : 0) | (exec ? Records.PROT_EXEC : 0);
            long got = r.call(String.format("shmat of SysV segment %d at %x", a.id(), a.base()), SYS_SHMAT, a.id(), a.base(),
                    (write ? 0 : SHM_RDONLY) | (exec ? SHM_EXEC : 0));
            if (got != a.base())
                throw new RestoreException(0, String.format("shmat of SysV segment %d at %x returned %x", a.id(), a.base(), got));
            long at = a.base();
            List<Piece> pieces = new ArrayList<>(a.pieces());
            pieces.sort(java.util.Comparator.comparingLong(Piece::start));
            for (Piece p : pieces) {
                if (p.start() > at) r.call("munmap of an unmapped part of SysV segment " + a.id(), SYS_MUNMAP, at, p.start() - at);
                if (p.prot() != prot) r.call("mprotect of a piece of SysV segment " + a.id(), SYS_MPROTECT, p.start(), p.end() - p.start(), p.prot());
                at = p.end();
            }
            if (at < a.base() + len) r.call("munmap of the unmapped tail of SysV segment " + a.id(), SYS_MUNMAP, at, a.base() + len - at);
        }
    }

    /** Segments removed while attached at the checkpoint are removed again (they go with their last detach). */
    static void removeMarked(Restorer root, Plan plan) throws IOException {
        for (Records.SysvShm s : plan.segments())
            if (s.removed()) root.call("shmctl(IPC_RMID) of SysV segment " + s.id() + ", removed at the checkpoint", SYS_SHMCTL,
                    s.id(), IPC_RMID, 0);
    }
}
