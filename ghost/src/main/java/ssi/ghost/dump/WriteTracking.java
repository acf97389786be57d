package ssi.ghost.dump;

import ssi.ghost.image.Records;
import ssi.ghost.image.Records.Vma;
import ssi.shim.ErrnoException;
import ssi.shim.Tracee;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Which pages each checkpointed process wrote since its last checkpoint, for `ssi checkpoint
 * --incremental` (the kernel has no soft-dirty bits here). In every checkpoint that leaves the
 * application running (while the pages of a process stored whole are read, after the image is written
 * for one stored incrementally), each process gets a userfaultfd made in it (injected {@code userfaultfd}, so the
 * uffd is bound to its mm), taken into the daemon with pidfd_getfd and closed in the process, set up with
 * UFFD_FEATURE_WP_ASYNC; every private writable VMA is registered in write-protect mode and
 * write-protected. With WP_ASYNC the kernel resolves each write fault itself, clearing the page's
 * protection, so the program never waits and nothing has to read the uffd; PAGEMAP_SCAN then lists the
 * pages whose protection is gone, the pages written since. The next checkpoint reads that list and, once
 * its image is safely written, protects those pages again.
 *
 * <p>A tracker is keyed by pid and the process's start time (a recycled pid never matches) and records
 * the image it started from (its directory and digest): an incremental checkpoint uses a process's
 * written list only against that very image. The uffds stay with the daemon until the process's next
 * checkpoint, until the process is seen gone (swept at every checkpoint), or until the daemon closes.
 * The last image of each application (root pid and start time) per caller uid is remembered too, so
 * `--incremental` needs no `--parent`.
 *
 * <p>Threads: any daemon worker; a process's tracker is only used while its application is frozen by one
 * checkpoint (checkpoints of one tree do not overlap: the shim refuses a second attach).
 */
public final class WriteTracking implements AutoCloseable {
    private static final int SYS_USERFAULTFD = 323, SYS_CLOSE = 3;

    /** A process: pid and start time (field 22 of /proc/PID/stat, clock ticks since boot). */
    record Key(int pid, long startTime) {}

    /** The uffd of one process, the ranges registered through it, and the image the tracking started from. */
    static final class Tracker {
        final int uffd;
        /** [start, end) of the VMAs registered through this uffd at the last arming. */
        List<long[]> registered = new ArrayList<>();
        Path baseDir;
        int baseDigest;

        Tracker(int uffd) {
            this.uffd = uffd;
        }

        /** Whether v is registered through this uffd (it shows "uw" and lies in a range we registered). */
        boolean tracks(Vma v) {
            if (!Arrays.asList(v.vmFlags().trim().split("\\s+")).contains("uw")) return false;
            for (long[] r : registered) if (r[0] <= v.start() && v.end() <= r[1]) return true;
            return false;
        }
    }

    private final Map<Key, Tracker> trackers = new ConcurrentHashMap<>();
    private final Map<String, Path> lastImages = new ConcurrentHashMap<>();

    Tracker tracker(int pid, long startTime) {
        return trackers.get(new Key(pid, startTime));
    }

    /** Number of processes tracked now (tests, logs). */
    public int tracked() {
        return trackers.size();
    }

    /** The last image written of the application rooted at root (with that start time) for callerUid, or null. */
    Path lastImage(int root, long startTime, int callerUid) {
        return lastImages.get(root + "/" + startTime + "/" + callerUid);
    }

    void rememberImage(int root, long startTime, int callerUid, Path dir) {
        lastImages.put(root + "/" + startTime + "/" + callerUid, dir);
    }

    /** Private, writable memory whose pages a checkpoint stores: what is worth tracking. */
    static boolean eligible(Vma v) {
        return !v.shared() && (v.prot() & Records.PROT_WRITE) != 0 && switch (v.kind()) {
            case Records.VMA_ANON, Records.VMA_HEAP, Records.VMA_STACK, Records.VMA_FILE -> true;
            default -> false;
        };
    }

    /**
     * Starts (or restarts) tracking of a frozen process from the image just written (dir, digest): every
     * eligible VMA registered and write-protected; of a VMA already tracked only the pages written are
     * protected again when this checkpoint scanned it (scanned, by VMA start; PAGEMAP_SCAN on pagemap,
     * the process's /proc/PID/pagemap), and an unscanned one wholly.
     * Returns a note for the log when tracking could not start (the process is then dumped in full by the
     * next incremental checkpoint); the checkpoint itself has succeeded either way.
     */
    String arm(Tracee t, int pid, long startTime, Path pagemap, List<Vma> vmas, Map<Long, List<long[]>> scanned, Path dir,
               int digest) {
        Key key = new Key(pid, startTime);
        Tracker old = trackers.remove(key);
        if (old != null) {
            String note = arm(t, pid, key, old, pagemap, vmas, scanned, dir, digest, true);
            if (!STALE.equals(note)) return note;
        }
        return arm(t, pid, key, null, pagemap, vmas, scanned, dir, digest, false);
    }

    /**
     * arm's answer when the old uffd does not work any more (its mm is gone: the process exec'd since):
     * start over with a new uffd made in the process.
     */
    private static final String STALE = "stale";

    private String arm(Tracee t, int pid, Key key, Tracker tr, Path pagemap, List<Vma> vmas, Map<Long, List<long[]>> scanned,
                       Path dir, int digest, boolean mayBeStale) {
        int pagemapFd = -1;
        try {
            if (tr == null) tr = create(t, pid);
            List<long[]> mine = new ArrayList<>();
            int skipped = 0;
            for (Vma v : vmas) {
                if (!eligible(v)) continue;
                // scanned: this checkpoint's PAGEMAP_SCAN (PM_SCAN_CHECK_WPASYNC) found it tracked, whatever
                // its VmFlags say (an incremental checkpoint may take them from the parent image)
                if (scanned.containsKey(v.start()) || tr.tracks(v)) {
                    if (!scanned.containsKey(v.start())) WriteProtect.protect(tr.uffd, v.start(), v.end());
                    else if (!scanned.get(v.start()).isEmpty()) {
                        // the pages this checkpoint found written, in one walk (one ioctl per region is slower)
                        if (pagemapFd < 0) pagemapFd = WriteProtect.open(pagemap.toString());
                        WriteProtect.protectWritten(pagemapFd, v.start(), v.end());
                    }
                } else {
                    try {
                        WriteProtect.register(tr.uffd, v.start(), v.end());
                    } catch (ErrnoException e) {
                        // another uffd owns it, or a mapping userfaultfd does not take (VM_IO...): dumped in full
                        skipped++;
                        continue;
                    }
                    WriteProtect.protect(tr.uffd, v.start(), v.end());
                }
                mine.add(new long[] {v.start(), v.end()});
            }
            if (mayBeStale && mine.isEmpty() && skipped > 0) {
                closeQuietly(tr); // nothing takes: the uffd's mm is gone (the process exec'd)
                return STALE;
            }
            tr.registered = mine;
            tr.baseDir = dir;
            tr.baseDigest = digest;
            trackers.put(key, tr);
            return skipped == 0 ? null : "process " + pid + ": " + skipped + " mapping(s) cannot be write-protected and are saved whole each time";
        } catch (IOException | RuntimeException e) {
            if (tr != null) closeQuietly(tr);
            if (mayBeStale) return STALE; // try once more with a new uffd
            return "process " + pid + ": write tracking could not start (" + e.getMessage() + "); its next incremental "
                    + "checkpoint saves it whole";
        } finally {
            if (pagemapFd >= 0) WriteProtect.close(pagemapFd);
        }
    }

    /** userfaultfd made in the process (bound to its mm), moved into the daemon, set up for WP_ASYNC. */
    private static Tracker create(Tracee t, int pid) throws IOException {
        long fd = t.syscall(SYS_USERFAULTFD, WriteProtect.UFFD_FLAGS);
        if (fd < 0) throw new ErrnoException((int) -fd, "userfaultfd() in process " + pid + " failed");
        int mine;
        try {
            mine = Tracee.takeFd(pid, (int) fd);
        } finally {
            t.syscall(SYS_CLOSE, fd);
        }
        try {
            WriteProtect.api(mine);
        } catch (IOException | RuntimeException e) {
            Tracee.closeFd(mine);
            throw e;
        }
        return new Tracker(mine);
    }

    /**
     * Ties the tracking of a process armed by {@link #arm} before its image existed (dir null) to that
     * image, once written: an incremental checkpoint then compares with it. No tracker (arming failed):
     * nothing to do.
     */
    void bind(int pid, long startTime, Path dir, int digest) {
        Tracker tr = trackers.get(new Key(pid, startTime));
        if (tr == null) return;
        tr.baseDir = dir;
        tr.baseDigest = digest;
    }

    /** Stops tracking pid (killed by --stop, or its tracking is no longer trustworthy). */
    void drop(int pid, long startTime) {
        Tracker tr = trackers.remove(new Key(pid, startTime));
        if (tr != null) closeQuietly(tr);
    }

    /** Closes the uffds of processes that are gone (or whose pid now names another process). */
    void sweep(ProcFs fs) {
        for (Key k : List.copyOf(trackers.keySet())) {
            ProcFs.Stat st = fs.stat(fs.dir(k.pid()));
            if (st == null || st.field(22) != k.startTime()) drop(k.pid(), k.startTime());
        }
        lastImages.keySet().removeIf(s -> {
            String[] f = s.split("/");
            ProcFs.Stat st = fs.stat(fs.dir(Integer.parseInt(f[0])));
            return st == null || st.field(22) != Long.parseLong(f[1]);
        });
    }

    private static void closeQuietly(Tracker tr) {
        try {
            Tracee.closeFd(tr.uffd);
        } catch (ErrnoException ignored) {
            // the uffd goes away with the daemon anyway
        }
    }

    @Override
    public void close() {
        for (Tracker tr : trackers.values()) closeQuietly(tr);
        trackers.clear();
    }
}
