package ssi.ghost.restore;

import ssi.shim.ErrnoException;
import ssi.shim.LocalFds;
import ssi.shim.ShimLink;
import ssi.shim.Tracee;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Rebuilds a process tree, like the kernel made it: the root in a restore stub (SPAWN_STUB), each child
 * forked by its restored parent with its own pid (CLONE_INTO: clone3 set_tid injected into the parent),
 * so parenthood, inherited fds and shared memory are the kernel's own again. Per process (parents
 * before children, depth first):
 *
 * <ol>
 * <li>{@link Restorer#body}: memory, fds, cwd, umask, mm fields, dispositions, limits; a child that
 *     led a session calls setsid first. A child starts as a copy of its restored parent: it keeps the
 *     shared anonymous memory and the fds it shares with the parent at the same place, and replaces the
 *     rest;
 * <li>the root gets the node's seccomp filter; every process forked after inherits it;
 * <li>its children, each rebuilt the same way before the next; a zombie (ended, not reaped) is forked
 *     and made to end again the way it did (exit_group with its code, or its signal), so the parent
 *     finds it to reap (the SIGCHLD its ending sends is taken back: the parent had it before);
 * <li>its own per-thread state, its other threads (CLONE_INTO with CLONE_THREAD), its queued signals.
 * </ol>
 * Then for the whole tree: process groups (leaders first), credentials and signal masks of every
 * thread, registers, and only then every thread is let go, so nothing runs before everything is in
 * place. On any failure every process made so far is killed and the pids are free again.
 *
 * <p>Objects that several processes share are made once, by the first process (in that order) that
 * has them: the daemon keeps a copy of every open file description made (pidfd_getfd) and installs it
 * in the others (GIVEFD), unless a child inherited it at the same fd number. Shared anonymous memory is
 * mapped from the first holder's /proc/PID/map_files by the others. The bytes queued in a pipe are
 * written back into it, those queued on a socket sent again from its peer. A named pipe is reopened by
 * path, each open file description by its first holder; the daemon holds it open for reading and
 * writing meanwhile, so no open blocks, and writes its bytes back through that.
 *
 * <p>One restore per instance, on the calling thread (it blocks on the shim link).
 */
final class TreeRestorer {
    /**
     * One process: its plan, its parent's pid (0 for the root), process group, session, exit signal; a
     * zombie has no plan and its wait status (else -1).
     */
    record Node(RestorePlan plan, int ppid, int pgid, int sid, int exitSignal, int gpid, int exitStatus, boolean stopped,
                boolean stopReportPending, boolean contReportPending) {
        Node(RestorePlan plan, int ppid, int pgid, int sid, int exitSignal) {
            this(plan, ppid, pgid, sid, exitSignal, plan.pid(), -1, false, false, false);
        }

        /**
         * stopReportPending: the parent had not collected the report of the stop (waitpid WUNTRACED);
         * contReportPending: it runs, and the parent had not collected the report of its continue (WCONTINUED).
         */
        Node(RestorePlan plan, int ppid, int pgid, int sid, int exitSignal, boolean stopped, boolean stopReportPending,
             boolean contReportPending) {
            this(plan, ppid, pgid, sid, exitSignal, plan.pid(), -1, stopped, stopReportPending, contReportPending);
        }

        static Node zombie(int gpid, int ppid, int pgid, int sid, int exitSignal, int exitStatus) {
            return new Node(null, ppid, pgid, sid, exitSignal, gpid, exitStatus, false, false, false);
        }

        boolean zombie() {
            return plan == null;
        }
    }

    /** Where shared anonymous memory was first mapped. */
    record Shmem(int pid, long start, long end) { }

    private static final int O_ACCMODE = 3, O_WRONLY = 1, DEFAULT_PIPE = 65536;

    /** Whether restarts are traced: every step logged with its time (ImageRestore.TRACE_ENV set in the daemon's environment). */
    static final boolean TRACE = System.getenv(ImageRestore.TRACE_ENV) != null;
    final List<String> log = TRACE ? new TimedLog() : new ArrayList<>();

    /** A restart's log whose lines start with the microseconds since the restart began. */
    private static final class TimedLog extends ArrayList<String> {
        private final long t0 = System.nanoTime();

        @Override
        public boolean add(String line) {
            return super.add(String.format("+%d us %s", (System.nanoTime() - t0) / 1000, line));
        }
    }
    /** Opens the caller's files with the caller's rights (null: the processes open them by path, root restart). */
    RestorePlan.Opener opener;
    private final List<Node> nodes;
    private final Map<Integer, Tracee> created = new LinkedHashMap<>();
    private final List<Node> zombies = new ArrayList<>();
    private final List<Tracee> threads = new ArrayList<>();
    /** Processes let go (stopped) before the end of the restore: killed too if it fails after. */
    private final List<Integer> letGo = new ArrayList<>();
    /** fileId -> the daemon's copy of that open file description. */
    private final Map<Integer, Integer> files = new HashMap<>();
    private final List<Integer> spare = new ArrayList<>();
    private final Map<Long, Shmem> shmem = new HashMap<>();
    /** "p:INODE:r|w" and "u:INODE" -> the first fd plan (tree order) of that pipe end or socket. */
    private final Map<String, RestorePlan.FdPlan> first = new HashMap<>();
    /** "p:INODE", "u:INODE", "f:INODE" -> the bytes that were queued there. */
    private final Map<String, RestorePlan.QueuedBytes> queued = new HashMap<>();
    /** The image's SysV shared memory (made by the root's stub) and the ids made so far. */
    private SysvRestore.Plan sysv = SysvRestore.Plan.NONE;
    private final List<Integer> sysvMade = new ArrayList<>();
    /** FIFO inode -> the daemon's O_RDWR copy that holds it open during the restore (also in spare). */
    private final Map<Long, Integer> fifoKeepers = new HashMap<>();

    private TreeRestorer(List<Node> nodes) {
        this.nodes = nodes;
        for (Node n : nodes) {
            if (n.zombie()) continue;
            for (RestorePlan.FdPlan f : n.plan().fds()) {
                String k = key(f);
                if (k == null) continue;
                first.putIfAbsent(k, f);
                if (f.queued() != null) queued.putIfAbsent(objectKey(f.kind(), f.object()), f.queued());
            }
        }
    }

    private static String key(RestorePlan.FdPlan f) {
        return switch (f.kind()) {
            case RestorePlan.FdPlan.PIPE -> "p:" + f.object() + ((f.flags() & O_ACCMODE) == O_WRONLY ? ":w" : ":r");
            case RestorePlan.FdPlan.UNIX -> "u:" + f.object();
            case RestorePlan.FdPlan.FIFO -> "f:" + f.object();
            default -> null;
        };
    }

    private static String objectKey(int kind, long object) {
        return (kind == RestorePlan.FdPlan.PIPE ? "p:" : kind == RestorePlan.FdPlan.FIFO ? "f:" : "u:") + object;
    }

    /**
     * Restores the tree (nodes: the root first, parents before children) and lets it run. rootStub is a
     * stub someone else made and attached for the root (null: SPAWN_STUB makes one, a child of the shim
     * that leads a session of its own).
     *
     * @return what was done, for logs
     */
    static List<String> restore(ShimLink link, List<Node> nodes, Tracee rootStub) throws IOException {
        return restore(link, nodes, rootStub, null);
    }

    /** As above; files (FdPlan.FILE, mapped files, the executable) are opened through opener when it is not null. */
    static List<String> restore(ShimLink link, List<Node> nodes, Tracee rootStub, RestorePlan.Opener opener)
            throws IOException {
        return restore(link, nodes, rootStub, opener, SysvRestore.Plan.NONE);
    }

    /** As above, with the SysV shared memory segments the application had. */
    static List<String> restore(ShimLink link, List<Node> nodes, Tracee rootStub, RestorePlan.Opener opener,
                                SysvRestore.Plan sysv) throws IOException {
        TreeRestorer tr = new TreeRestorer(nodes);
        tr.opener = opener;
        tr.sysv = sysv;
        Node root = nodes.getFirst();
        Tracee stub = rootStub;
        if (stub == null) {
            try {
                stub = link.spawnStub(root.plan().pid());
            } catch (ErrnoException e) {
                throw new RestoreException(e);
            }
        }
        tr.created(root.plan().pid(), stub);
        Map<Integer, Restorer> all = new LinkedHashMap<>();
        long t0 = System.nanoTime(), tBuilt, tGroups, tFinal;
        try {
            Restorer r = new Restorer(link, stub, root.plan(), null, tr);
            tr.build(r, root, all);
            SysvRestore.removeMarked(r, sysv);
            tBuilt = System.nanoTime();
            tr.groups(all);
            tGroups = System.nanoTime();
            // Children before parents: each gets its credentials, masks and registers; one job control had
            // stopped is let go right away with a SIGSTOP queued, so it stops before it runs a thing. That
            // stop notifies its parent (SIGCHLD, CLD_STOPPED), which had that notification before the
            // checkpoint: the parent takes it back first, while all its signals are still blocked (its
            // queued signals say what it had not handled yet), and collects the report of the new stop
            // (waitid) when it had collected the old one. Not the root: a stopped application restarts
            // running, as the restart is its new start.
            List<Integer> order = new ArrayList<>(all.keySet());
            java.util.Collections.reverse(order);
            Map<Integer, Node> byPid = new HashMap<>();
            for (Node n : nodes) byPid.put(n.gpid(), n);
            Map<Integer, List<Integer>> restopped = new HashMap<>(); // parent -> SIGCHLDs of its children stopped again
            Map<Integer, List<Integer>> collect = new HashMap<>(); // parent -> children whose stop it had collected
            for (int pid : order) {
                Restorer x = all.get(pid);
                x.takeBack(restopped.getOrDefault(pid, List.of()), "a child stopped again");
                x.collectStops(collect.getOrDefault(pid, List.of()));
                x.credsAndMasks();
                x.registers();
                Node n = byPid.get(pid);
                if (n != null && n.stopped() && n != root && tr.letGoStopped(x)) {
                    restopped.computeIfAbsent(n.ppid(), k -> new ArrayList<>()).add(17 /* SIGCHLD */);
                    if (!n.stopReportPending()) collect.computeIfAbsent(n.ppid(), k -> new ArrayList<>()).add(pid);
                } else if (n != null && n.contReportPending() && !n.stopped() && n != root && tr.letGoContinued(x, all.get(n.ppid()))) {
                    // stopped and continued: its parent has a continue to collect again (the stop's report is gone
                    // with the continue), and SIGCHLDs it did not have (a standard signal: taken back once)
                    restopped.computeIfAbsent(n.ppid(), k -> new ArrayList<>()).add(17 /* SIGCHLD */);
                }
            }
            tFinal = System.nanoTime();
        } catch (IOException | RuntimeException e) {
            for (Restorer x : all.values()) x.abortPages();
            tr.killAll();
            tr.closeCopies();
            if (e instanceof ssi.ghost.image.ImageException ie) throw ie; // a page run's checksum: the image's error, as prepare's
            throw e instanceof RestoreException re ? re : new RestoreException("restore of the tree of " + root.plan().pid()
                    + " failed after: " + (tr.log.isEmpty() ? "(nothing)" : tr.log.getLast()), e);
        }
        tr.closeCopies();
        // Everything is in place: let go, threads first, children before parents.
        List<Tracee> order = new ArrayList<>(tr.threads);
        List<Tracee> mains = new ArrayList<>(tr.created.values());
        java.util.Collections.reverse(mains);
        order.addAll(mains);
        for (Tracee t : order) t.close();
        tr.log.add("detached: " + all.size() + " process(es), " + (tr.threads.size() + all.size()) + " thread(s) run");
        tr.log.add(String.format("tree times: processes %d us, groups %d us, credentials/masks/registers %d us, let go %d us",
                (tBuilt - t0) / 1000, (tGroups - tBuilt) / 1000, (tFinal - tGroups) / 1000, (System.nanoTime() - tFinal) / 1000));
        return List.copyOf(tr.log);
    }

    private void build(Restorer r, Node node, Map<Integer, Restorer> all) throws IOException {
        all.put(node.plan().pid(), r);
        boolean child = node.ppid() != 0 && all.containsKey(node.ppid()) && node != nodes.getFirst();
        r.body(child && node.sid() == node.plan().pid());
        if (node == nodes.getFirst())
            r.filter();
        r.finishPages(); // every page in before a child is forked from it or a thread made in it
        for (Node c : nodes) {
            if (c.ppid() == node.plan().pid() && c != nodes.getFirst()) {
                if (c.zombie()) {
                    zombies.add(c); // made once the process groups exist, so it ends in its own
                    continue;
                }
                Restorer cr = r.fork(c);
                build(cr, c, all);
            }
        }
        r.threadsAndSignals();
    }

    /**
     * Process groups: every child sits in its parent's group after the fork. Live leaders make their
     * group; then the zombies are forked (leaders of their own group first) and put in their group; then
     * live members join theirs (a zombie may lead it); then the zombies end. A group whose leader is not
     * in the image (the caller's job, typically) is the root's group now.
     */
    private void groups(Map<Integer, Restorer> all) throws IOException {
        Node root = nodes.getFirst();
        // The root that led its own group (and not a session) leads it again; else it stays in the group
        // its stub is in (the stub's session, or the foreground restart's job).
        if (root.pgid() == root.gpid() && root.sid() != root.gpid() && pgidOf(root.gpid()) != root.gpid())
            all.get(root.gpid()).setPgid(root.gpid());
        int rootGroup = pgidOf(root.plan().pid());
        for (Node n : nodes) {
            int pid = n.gpid();
            if (n == root || n.zombie() || n.sid() == pid) continue;
            if (n.pgid() == pid) all.get(pid).setPgid(pid);
        }
        // A group whose leader (by pid) is alive in another group now: it makes the group again for a
        // moment, its members join below, then it goes back to its own group.
        Map<Integer, Node> byPid = new HashMap<>();
        for (Node n : nodes) byPid.put(n.gpid(), n);
        List<Node> lent = new ArrayList<>();
        for (Node n : nodes) {
            Node leader = byPid.get(n.pgid());
            if (n.zombie() || leader == null || leader == n || leader.zombie() || leader.pgid() == leader.gpid()
                    || leader.sid() == leader.gpid() || lent.contains(leader)) continue;
            all.get(leader.gpid()).setPgid(leader.gpid());
            lent.add(leader);
        }
        // A group whose leader ended and was reaped, with members in the image: a helper with the
        // leader's pid, forked by a member's parent, makes it again for them (their session is that
        // parent's), then ends and is reaped. A group of no process of the image (the restart caller's
        // job, where the root came from) is the root's group now.
        java.util.Set<Integer> inImage = new java.util.HashSet<>();
        for (Node n : nodes) inImage.add(n.gpid());
        Map<Integer, Tracee> helpers = new LinkedHashMap<>();
        Map<Integer, Restorer> helperHosts = new HashMap<>();
        for (Node n : nodes) {
            int p = n.pgid();
            if (n == root || p == n.gpid() || p == root.pgid() || inImage.contains(p) || helpers.containsKey(p)
                    || n.sid() == n.gpid() || !all.containsKey(n.ppid())) continue;
            Restorer host = all.get(n.ppid());
            try {
                helpers.put(p, host.forkHelper(p));
                helperHosts.put(p, host);
            } catch (RestoreException e) {
                log.add("process group " + p + " cannot be made again (" + e.getMessage() + "): its members join the root's");
            }
        }
        List<Node> order = new ArrayList<>();
        for (Node z : zombies) if (z.pgid() == z.gpid()) order.add(z);
        for (Node z : zombies) if (z.pgid() != z.gpid()) order.add(z);
        java.util.Set<Integer> zombieLeaders = new java.util.HashSet<>();
        Map<Node, Tracee> stubs = new LinkedHashMap<>();
        for (Node z : order) {
            int target = z.pgid() == z.gpid() || all.containsKey(z.pgid()) || zombieLeaders.contains(z.pgid())
                    || helpers.containsKey(z.pgid()) ? z.pgid() : rootGroup;
            stubs.put(z, all.get(z.ppid()).forkZombie(z, target));
            if (z.pgid() == z.gpid()) zombieLeaders.add(z.gpid());
        }
        for (Node n : nodes) {
            int pid = n.gpid();
            if (n == root || n.zombie() || n.sid() == pid || n.pgid() == pid || lent.contains(n)) continue;
            int target = all.containsKey(n.pgid()) || zombieLeaders.contains(n.pgid()) || helpers.containsKey(n.pgid())
                    ? n.pgid() : rootGroup;
            all.get(pid).setPgid(target);
        }
        for (Node n : lent) {
            int target = all.containsKey(n.pgid()) || zombieLeaders.contains(n.pgid()) ? n.pgid() : rootGroup;
            all.get(n.gpid()).setPgid(target);
        }
        for (var e : stubs.entrySet()) all.get(e.getKey().ppid()).endZombie(e.getKey(), e.getValue());
        Map<Integer, List<Node>> zombiesOf = new LinkedHashMap<>();
        for (Node z : order) zombiesOf.computeIfAbsent(z.ppid(), k -> new ArrayList<>()).add(z);
        for (var e : zombiesOf.entrySet()) all.get(e.getKey()).settleZombies(e.getValue());
        for (var e : helpers.entrySet()) helperHosts.get(e.getKey()).endHelper(e.getKey(), e.getValue());
    }

    /**
     * A process to restore stopped (job control had stopped it): SIGSTOP queued while it is held, then
     * its threads and itself let go, so the kernel stops it before it runs; waits for the stop. True
     * when it stopped (its parent was notified).
     */
    private boolean letGoStopped(Restorer x) throws IOException {
        int pid = x.pid;
        LocalFds.signal(pid, 19 /* SIGSTOP */);
        for (Tracee th : x.threads) {
            th.close();
            threads.remove(th);
        }
        Tracee t = created.remove(pid);
        if (t != null) t.close();
        letGo.add(pid);
        if (awaitStopped(pid)) return true;
        log.add(pid + ": not seen stopped again within 2 s");
        return false;
    }

    /**
     * A process whose parent had a continue of it to collect (it had been stopped, then got SIGCONT): let
     * go stopped ({@link #letGoStopped}), then continued with SIGCONT, so its parent has that report
     * again. The SIGCHLD of the continue comes from the child itself once it runs: waits (up to 1 s) until
     * the parent has a SIGCHLD pending, so the parent takes it back (a parent that ignores SIGCHLD or
     * set SA_NOCLDSTOP gets none: no wait). True when it was stopped and continued.
     */
    private boolean letGoContinued(Restorer x, Restorer parent) throws IOException {
        if (parent == null || !letGoStopped(x)) return false;
        LocalFds.signal(x.pid, 18 /* SIGCONT */);
        RestorePlan.SigAction chld = parent.plan.sigactions()[16];
        final long SA_NOCLDSTOP = 1;
        boolean notified = chld == null || (chld.handler() != 1 /* SIG_IGN */ && (chld.flags() & SA_NOCLDSTOP) == 0);
        if (notified && !awaitPending(parent.pid, 17)) log.add(x.pid + ": its parent got no SIGCHLD for the continue within 1 s");
        log.add(x.pid + ": stopped and continued, its parent has the continue to collect, as before");
        return true;
    }

    /** Waits (up to 1 s) until process pid has signal sig pending (its own or its group's queue). */
    private static boolean awaitPending(int pid, int sig) {
        java.nio.file.Path status = java.nio.file.Path.of("/proc", Integer.toString(pid), "status");
        long bit = 1L << (sig - 1), deadline = System.nanoTime() + 1_000_000_000L;
        while (System.nanoTime() < deadline) {
            try {
                for (String l : java.nio.file.Files.readAllLines(status))
                    if ((l.startsWith("ShdPnd:") || l.startsWith("SigPnd:")) && (Long.parseUnsignedLong(l.substring(7).trim(), 16) & bit) != 0)
                        return true;
            } catch (IOException | RuntimeException e) {
                return false;
            }
            java.util.concurrent.locks.LockSupport.parkNanos(200_000);
        }
        return false;
    }

    /** Waits (up to 2 s) until pid is in a group stop (state T); false if it is not by then, or gone. */
    private static boolean awaitStopped(int pid) {
        java.nio.file.Path stat = java.nio.file.Path.of("/proc", Integer.toString(pid), "stat");
        long deadline = System.nanoTime() + 2_000_000_000L;
        while (System.nanoTime() < deadline) {
            try {
                String st = java.nio.file.Files.readString(stat);
                if (st.charAt(st.lastIndexOf(')') + 2) == 'T') return true;
            } catch (IOException e) {
                return false;
            }
            java.util.concurrent.locks.LockSupport.parkNanos(200_000);
        }
        return false;
    }

    /** The process group pid is in now (the root's: its stub's own, or the foreground restart's job). */
    private static int pgidOf(int pid) throws IOException {
        String st = java.nio.file.Files.readString(java.nio.file.Path.of("/proc", Integer.toString(pid), "stat"));
        String[] f = st.substring(st.lastIndexOf(')') + 2).trim().split(" ");
        return Integer.parseInt(f[2]);
    }

    void created(int pid, Tracee t) {
        created.put(pid, t);
    }

    /** A zombie that ended: nothing to let go or kill any more. */
    void forget(int pid) {
        created.remove(pid);
    }

    void createdThread(Tracee t) {
        threads.add(t);
    }

    Shmem shmem(long id) {
        return shmem.get(id);
    }

    void shmemMapped(long id, Shmem where) {
        shmem.putIfAbsent(id, where);
    }

    /** The daemon's copy of an open file description made already, or null. */
    Integer file(int fileId) {
        return files.get(fileId);
    }

    void madeFile(int fileId, int pid, int fd) throws IOException {
        files.put(fileId, Tracee.takeFd(pid, fd));
    }

    /** A pipe made by pid (temporary fds r, w): keep both ends, set capacity and flags, refill it. */
    void madePipe(RestorePlan.FdPlan f, int pid, int r, int w) throws IOException {
        int rc = Tracee.takeFd(pid, r), wc = Tracee.takeFd(pid, w);
        keep(first.get("p:" + f.object() + ":r"), rc);
        keep(first.get("p:" + f.object() + ":w"), wc);
        if (f.aux() > 0 && f.aux() != DEFAULT_PIPE) LocalFds.setPipeSize(wc, f.aux());
        RestorePlan.QueuedBytes q = queued.get(objectKey(RestorePlan.FdPlan.PIPE, f.object()));
        if (q != null) LocalFds.writeAll(wc, q.read());
        flags(first.get("p:" + f.object() + ":r"), rc);
        flags(first.get("p:" + f.object() + ":w"), wc);
    }

    /** Is the named pipe of f held open by the daemon already ({@link #madeFifoKeeper})? */
    boolean hasFifoKeeper(RestorePlan.FdPlan f) {
        return fifoKeepers.containsKey(f.object());
    }

    /**
     * The first open of a named pipe in the restore (pid's temporary fd tmp, opened O_RDWR|O_NONBLOCK by
     * path): the daemon keeps a copy until the restore ends, so the FIFO has a reader and a writer while
     * the processes open their ends (none of those opens blocks), and refills it with the bytes that
     * were queued in it, at its capacity. The copy must be the very FIFO the checkpoint saw.
     */
    void madeFifoKeeper(RestorePlan.FdPlan f, int pid, int tmp) throws IOException {
        int k = Tracee.takeFd(pid, tmp);
        spare.add(k);
        Map<String, Object> a = java.nio.file.Files.readAttributes(java.nio.file.Path.of("/proc/self/fd/" + k), "unix:mode,ino");
        if ((((Integer) a.get("mode")) & 0170000) != 0010000 || (Long) a.get("ino") != f.object())
            throw new RestoreException(22, f.path() + " is not the named pipe the checkpoint saw (inode " + a.get("ino")
                    + ", was " + f.object() + ")");
        fifoKeepers.put(f.object(), k);
        if (f.aux() > 0 && f.aux() != DEFAULT_PIPE) LocalFds.setPipeSize(k, f.aux());
        RestorePlan.QueuedBytes q = queued.get(objectKey(RestorePlan.FdPlan.FIFO, f.object()));
        if (q != null) LocalFds.writeAll(k, q.read());
    }

    /** A socketpair made by pid (temporary fds a: this socket, p: its peer): keep both, resend what was queued. */
    void madeSocketPair(RestorePlan.FdPlan f, int pid, int a, int p) throws IOException {
        int ac = Tracee.takeFd(pid, a), pc = Tracee.takeFd(pid, p);
        keep(first.get("u:" + f.object()), ac);
        RestorePlan.FdPlan peer = f.peer() == 0 ? null : first.get("u:" + f.peer());
        keep(peer, pc);
        RestorePlan.QueuedBytes mine = queued.get(objectKey(RestorePlan.FdPlan.UNIX, f.object()));
        if (mine != null) send(pc, f.aux(), mine.read());
        RestorePlan.QueuedBytes theirs = f.peer() == 0 ? null : queued.get(objectKey(RestorePlan.FdPlan.UNIX, f.peer()));
        if (theirs != null) send(ac, f.aux(), theirs.read());
        flags(first.get("u:" + f.object()), ac);
        flags(peer, pc);
    }

    /**
     * Sends what was queued on a socket again from its peer's copy: a stream's bytes at once, a datagram or
     * seqpacket socket's messages one by one (saved as u32 length + bytes each).
     */
    private static void send(int from, int type, byte[] queued) throws IOException {
        if (type == 1) {
            LocalFds.writeAll(from, queued);
            return;
        }
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(queued);
        while (b.hasRemaining()) {
            if (b.remaining() < 4) throw new RestoreException(22, "the queued messages of a socket are damaged (a short length)");
            int n = b.getInt();
            if (n <= 0 || n > b.remaining())
                throw new RestoreException(22, "the queued messages of a socket are damaged (a message of " + n + " bytes)");
            byte[] m = new byte[n];
            b.get(m);
            LocalFds.writeAll(from, m); // one write, one message
        }
    }

    private void keep(RestorePlan.FdPlan f, int copy) {
        if (f == null || f.fileId() == 0 || files.containsKey(f.fileId())) spare.add(copy);
        else files.put(f.fileId(), copy);
    }

    /** O_NONBLOCK and the other status flags, on the shared open file description. */
    private static void flags(RestorePlan.FdPlan f, int copy) throws ErrnoException {
        if (f != null) LocalFds.setStatusFlags(copy, f.flags());
    }

    SysvRestore.Plan sysv() {
        return sysv;
    }

    /** The segments, made by the root's stub before its memory is mapped. */
    void makeSysv(Restorer root) throws IOException {
        SysvRestore.make(root, sysv, sysvMade);
    }

    private void killAll() {
        for (int pid : created.keySet()) ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        for (int pid : letGo) ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        for (int id : sysvMade) {
            try {
                LocalFds.shmRemove(id); // nothing half-made stays: the segment goes with the killed processes' detach
            } catch (ErrnoException e) {
                log.add("SysV shared memory segment " + id + " not removed: " + e.getMessage());
            }
        }
        for (Tracee t : threads) closeQuietly(t);
        for (Tracee t : created.values()) closeQuietly(t);
    }

    private static void closeQuietly(Tracee t) {
        try {
            t.close(); // DETACH of a dead tracee fails, and the shim forgets it
        } catch (IOException ignored) {
            // it is dead
        }
    }

    private void closeCopies() {
        for (int fd : files.values()) LocalFds.closeQuietly(fd);
        for (int fd : spare) LocalFds.closeQuietly(fd);
        files.clear();
        spare.clear();
        fifoKeepers.clear();
    }
}
