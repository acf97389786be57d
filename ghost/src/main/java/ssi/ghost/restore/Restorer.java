package ssi.ghost.restore;

import ssi.shim.ErrnoException;
import ssi.shim.LinkFrames;
import ssi.shim.Regs;
import ssi.shim.ShimLink;
import ssi.shim.Tracee;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Rebuilds one process of a tree from its {@link RestorePlan}, in a restore stub (the root: link request
 * SPAWN_STUB, or the foreground restart's stub) or in a copy of its restored parent (a child: CLONE_INTO);
 * {@link TreeRestorer} calls the steps in order for the whole tree. Everything is injected syscalls
 * (Tracee.syscall) and memory writes over the link:
 *
 * <ol>
 * <li>{@link #body}: a scratch area at an address neither the stub nor the plan uses (paths, structs
 *     for syscalls); the root blocks every signal; a child that led a session calls setsid; munmap of
 *     every mapping but the vDSO/vvar (and [vsyscall], which cannot move) and, in a child, the shared
 *     memory it shares with its parent at the same place; mremap of the vDSO/vvar onto the plan's
 *     addresses (the kernel is the same on every node); every VMA mapped with MAP_FIXED_NOREPLACE (files
 *     opened in the process, or by the daemon with the caller's rights for a non-root restart), its
 *     pages written, mprotect to the final protection; the fds (kept, installed from the tree's copy, or
 *     made: open, pipe2, socketpair) with their flags and offsets; cwd, umask; prctl(PR_SET_MM_MAP) with
 *     the mm fields, auxv and exe; the name; the 64 dispositions and the alternate stack; rlimits;
 * <li>{@link #filter} (the root): the node's seccomp filter (INSTALL_FILTER), which the processes forked
 *     after inherit; only syscalls the filter lets through or the shim answers itself (signals to the
 *     node's own pids) may be injected after it;
 * <li>{@link #fork} of each child, {@link #forkZombie}/{@link #endZombie} of each zombie;
 * <li>{@link #threadsAndSignals}: tid address, robust list and rseq of the main thread, the other threads
 *     (CLONE_INTO with CLONE_THREAD) with theirs, the queued signals, the interval timers;
 * <li>{@link #setPgid}; {@link #credsAndMasks}: credentials of every thread (they are per thread), then
 *     each thread's mask; {@link #registers}: munmap of the scratch area, XSAVE state and registers.
 * </ol>
 *
 * <p>A thread captured inside an interrupted syscall resumes as the kernel would resume it after a
 * signal without handler: -ERESTARTSYS/-ERESTARTNOINTR/-ERESTARTNOHAND restart the call (rax = orig_rax,
 * rip -= 2). -ERESTART_RESTARTBLOCK is not resumed through restart_syscall: that replays the task's
 * restart_block, kernel state of the captured task that no image carries and the stub does not have
 * (it starts with a copy of the shim thread's). So the sleeping calls that use it (nanosleep,
 * clock_nanosleep, poll, futex) are restarted from the start with their original arguments, which are
 * still in the registers (a relative timeout then runs in full again); any other call returns -EINTR.
 *
 * <p>Not thread-safe: one restore per instance and thread; the methods block on the link.
 */
public final class Restorer {
    private static final int SYS_CLOSE = 3, SYS_LSEEK = 8, SYS_MMAP = 9, SYS_MPROTECT = 10, SYS_MUNMAP = 11,
            SYS_RT_SIGACTION = 13, SYS_RT_SIGPROCMASK = 14, SYS_MREMAP = 25, SYS_CHDIR = 80, SYS_UMASK = 95,
            SYS_SETGROUPS = 116, SYS_SETRESUID = 117, SYS_SETRESGID = 119, SYS_SIGALTSTACK = 131, SYS_PRCTL = 157,
            SYS_SET_TID_ADDRESS = 218, SYS_OPENAT = 257, SYS_SET_ROBUST_LIST = 273, SYS_DUP3 = 292,
            SYS_PRLIMIT64 = 302, SYS_RSEQ = 334, SYS_FCNTL = 72, SYS_SETSID = 112, SYS_SETPGID = 109,
            SYS_PIPE2 = 293, SYS_SOCKETPAIR = 53, SYS_RT_SIGQUEUEINFO = 129, SYS_RT_TGSIGQUEUEINFO = 297, SYS_SETITIMER = 38,
            SYS_EXIT_GROUP = 231, SYS_TGKILL = 234, RLIMIT_CORE = 4, SYS_IOCTL = 16, SYS_EVENTFD2 = 290,
            SYS_TIMERFD_CREATE = 283, SYS_TIMERFD_SETTIME = 286, SYS_SIGNALFD4 = 289, SYS_EPOLL_CREATE1 = 291,
            SYS_EPOLL_CTL = 233, SYS_TIMER_CREATE = 222, SYS_TIMER_SETTIME = 223, SYS_WAIT4 = 61, WALL = 0x40000000,
            WNOHANG = 1, SYS_WAITID = 247, P_PID = 1, WEXITED = 4, WSTOPPED = 2, WNOWAIT = 0x01000000;
    private static final int EFD_SEMAPHORE = 1, O_NONBLOCK = 04000, EPOLL_CTL_ADD = 1, PR_TIMER_CREATE_RESTORE_IDS = 77;
    /** _IOW('T', 0, u64): sets a timerfd's expiration count (CONFIG_CHECKPOINT_RESTORE). */
    private static final long TFD_IOC_SET_TICKS = 0x40085400L;
    private static final long CLONE_VM = 0x100, CLONE_FS = 0x200, CLONE_FILES = 0x400, CLONE_SIGHAND = 0x800,
            CLONE_THREAD = 0x10000, CLONE_SYSVSEM = 0x40000;
    private static final int F_SETFD = 2, FD_CLOEXEC = 1, AF_UNIX = 1, F_DUPFD_CLOEXEC = 1030;
    private static final int SYS_POLL = 7, SYS_NANOSLEEP = 35, SYS_FUTEX = 202, SYS_CLOCK_NANOSLEEP = 230;
    private static final int PROT_RW = 3, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20,
            MAP_GROWSDOWN = 0x100, MAP_FIXED_NOREPLACE = 0x100000, MREMAP_MAYMOVE = 1, MREMAP_FIXED = 2;
    private static final int O_RDONLY = 0, O_RDWR = 2, O_ACCMODE = 3, O_CREAT = 0100, O_EXCL = 0200,
            O_NOCTTY = 0400, O_TRUNC = 01000, O_CLOEXEC = 02000000;
    private static final long AT_FDCWD = -100;
    private static final int PR_SET_NAME = 15, PR_SET_MM = 35, PR_SET_MM_MAP = 14, PR_SET_NO_NEW_PRIVS = 38;
    private static final int SIG_SETMASK = 2, SS_DISABLE = 2;
    private static final int ERESTARTSYS = 512, ERESTARTNOINTR = 513, ERESTARTNOHAND = 514,
            ERESTART_RESTARTBLOCK = 516, EINTR = 4, EEXIST = 17;
    /** The scratch area: paths (up to PATH_MAX), the prctl_mm_map and auxv, groups. */
    private static final long SCRATCH_SIZE = 4 * RestorePlan.PAGE;
    /**
     * Kept free right after the scratch area: where the shim maps the code and table of a {@link Batch}
     * (INJECT_MANY), out of the way of the calls, which unmap, remap and map the whole address space.
     */
    private static final long BATCH_AREA = (LinkFrames.InjectManyReq.AREA + RestorePlan.PAGE - 1) & -RestorePlan.PAGE;
    /** Where free areas are looked for: above the 32-bit space, below the usual mmap area. */
    private static final long SEARCH_FROM = 1L << 32, SEARCH_TO = 0x7ff000000000L;
    private static final String[] SIGNAMES = {
        "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1",
        "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP",
        "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH",
        "SIGIO", "SIGPWR", "SIGSYS",
    };

    private final ShimLink link;
    final Tracee t;
    final RestorePlan plan;
    final int pid;
    /** The restored parent this process was forked from (it inherited its memory and fds), or null. */
    private final Restorer parent;
    private final TreeRestorer tree;
    final List<String> log;
    /** The other threads, once created. */
    final List<Tracee> threads = new ArrayList<>();
    /** Starts of the VMAs inherited from the parent and kept as they are (shared anonymous memory). */
    private final java.util.Set<Long> kept = new java.util.HashSet<>();
    long scratch;
    /** The userfaultfd the anonymous pages are copied through while the VMAs are mapped (see PageCopy). */
    private PageCopy pageCopy;
    /** VMAs whose protection is set once their pages are copied (see finishPages). */
    private final List<RestorePlan.Vma> protectLater = new ArrayList<>();
    /** Whether this process could not make one (its pages then go through the shim). */
    private boolean noPageCopy;

    Restorer(ShimLink link, Tracee t, RestorePlan plan, Restorer parent, TreeRestorer tree) {
        this.link = link;
        this.t = t;
        this.plan = plan;
        this.pid = plan.pid();
        this.parent = parent;
        this.tree = tree;
        this.log = tree.log;
    }

    /**
     * Starts a stub with the plan's pid (SPAWN_STUB), rebuilds the process in it and detaches: the
     * process runs on, a child of the shim. On failure the stub is killed (its pid is free again) and a
     * RestoreException says which step failed and with which errno.
     *
     * @return what was done, one line per step, for logs
     */
    public static List<String> restore(ShimLink link, RestorePlan plan) throws IOException {
        return restore(link, plan, null);
    }

    /** As above, into rootStub when it is not null: a stopped, traced stub with the plan's pid (see RootStub). */
    public static List<String> restore(ShimLink link, RestorePlan plan, Tracee rootStub) throws IOException {
        return TreeRestorer.restore(link, List.of(new TreeRestorer.Node(plan, 0, plan.pid(), plan.pid(), 17)), rootStub);
    }

    /**
     * The process's own state, in the stub (the root) or in the copy of its restored parent (a child):
     * memory, fds, working directory, umask, mm fields, name, dispositions, limits, session. Credentials,
     * threads, signals and registers come later (see {@link TreeRestorer}).
     */
    void body(boolean newSession) throws IOException {
        List<MapsLine> stubMaps = readMaps(pid);
        mapScratch(stubMaps);
        if (parent == null) {
            // Every signal blocked while we work: the queued ones stay queued until the final mask.
            put(scratch, le(8).putLong(0, -1L).array());
            call("rt_sigprocmask(SIG_SETMASK, all)", SYS_RT_SIGPROCMASK, SIG_SETMASK, scratch, 0, 8);
        }
        if (newSession)
            call("setsid", SYS_SETSID);
        if (parent == null)
            tree.makeSysv(this);
        List<SysvRestore.Attachment> sysv = tree.sysv().of(pid);
        java.util.Set<Long> sysvKept = parent == null ? java.util.Set.of() : SysvRestore.kept(sysv, tree.sysv().of(parent.pid), stubMaps);
        kept.addAll(sysvKept);
        if (parent != null)
            findKept(stubMaps);
        Batch clear = new Batch();
        unmapStub(stubMaps, clear);
        Map<Integer, SpecialMove> moves = moveSpecials(stubMaps, clear);
        checkMoves(clear.runChecked(), moves);
        SysvRestore.attach(this, tree.sysv(), sysv, sysvKept);
        try {
            mapVmas();
        } catch (IOException | RuntimeException e) {
            abortPages();
            throw e;
        }
        log.add(pid + ": mapped " + plan.vmas().size() + " VMAs" + (kept.isEmpty() ? "" : " (" + kept.size() + " shared with the parent kept)"));
        openFds();
        call("chdir " + plan.cwd(), SYS_CHDIR, putString(plan.cwd()));
        call("umask", SYS_UMASK, plan.umask());
        setMm();
        if (plan.comm() != null)
            call("prctl(PR_SET_NAME, " + plan.comm() + ")", SYS_PRCTL, PR_SET_NAME, putString(plan.comm()));
        signals();
        for (RestorePlan.Rlimit l : plan.rlimits())
            rlimit(l);
    }

    /** The node's seccomp filter; processes forked from this one afterwards inherit it. */
    void filter() throws IOException {
        int listener = link.installFilter(pid);
        log.add(pid + ": seccomp filter installed (listener " + listener + ")");
    }

    /** A child forked from this (restored) process with set_tid, traced and stopped. */
    Restorer fork(TreeRestorer.Node child) throws IOException {
        Tracee ct;
        try {
            ct = link.cloneInto(t, child.plan().pid(), 0, child.exitSignal(), scratch + 3 * RestorePlan.PAGE);
        } catch (ssi.shim.ErrnoException e) {
            throw new RestoreException(e);
        }
        tree.created(child.plan().pid(), ct);
        log.add(pid + ": forked " + child.plan().pid());
        return new Restorer(link, ct, child.plan(), this, tree);
    }

    /**
     * A child that had ended and was not reaped yet: forked like any child, then made to end the same
     * way, so that this process finds a zombie with that status to reap. A signal death goes through
     * the signal's default action (no core file: RLIMIT_CORE 0 first).
     */
    /** The first half of a zombie: forked from this process and put in its process group, still alive. */
    Tracee forkZombie(TreeRestorer.Node z, int pgid) throws IOException {
        Tracee zt;
        try {
            zt = link.cloneInto(t, z.gpid(), 0, z.exitSignal(), scratch + 3 * RestorePlan.PAGE);
        } catch (ssi.shim.ErrnoException e) {
            throw new RestoreException(e);
        }
        tree.created(z.gpid(), zt); // killed with the rest if the restore fails before it ends
        // waitpid(-pgid) and waitid(P_PGID) find a zombie by its group
        call(zt, "setpgid(0, " + pgid + ") of the zombie " + z.gpid(), SYS_SETPGID, 0, pgid);
        return zt;
    }

    /**
     * A group helper: a child with the pid of a process group's leader that ended and was reaped, so
     * that the group can exist again for its members in the image; no exit signal (this process never
     * hears of it). {@link #endHelper} ends and reaps it once the members joined.
     */
    Tracee forkHelper(int pgid) throws IOException {
        Tracee ht;
        try {
            ht = link.cloneInto(t, pgid, 0, 0, scratch + 3 * RestorePlan.PAGE);
        } catch (ssi.shim.ErrnoException e) {
            throw new RestoreException(e);
        }
        tree.created(pgid, ht);
        call(ht, "setpgid(0, 0) of the helper for process group " + pgid, SYS_SETPGID, 0, 0);
        log.add(pid + ": helper " + pgid + " makes process group " + pgid + " for its members");
        return ht;
    }

    void endHelper(int pgid, Tracee ht) throws IOException {
        try {
            ht.syscall(SYS_EXIT_GROUP, 0);
            throw new RestoreException(0, "the group helper " + pgid + " did not exit");
        } catch (ssi.shim.ErrnoException e) {
            if (e.errno() != 3) throw new RestoreException(e); // ESRCH: it ended
        }
        tree.forget(pgid);
        call("wait4 of the group helper " + pgid, SYS_WAIT4, pgid, 0, WALL | WNOHANG, 0);
    }

    /** The second half: the zombie ends the way it did (exit code, or its signal's default action). */
    void endZombie(TreeRestorer.Node z, Tracee zt) throws IOException {
        int st = z.exitStatus(), sig = st & 0x7f;
        try {
            if (sig == 0) {
                zt.syscall(SYS_EXIT_GROUP, (st >> 8) & 0xff);
                throw new RestoreException(0, "the zombie " + z.gpid() + " did not exit");
            }
            // the zombie's own copy of the scratch area (it is a copy of this process, not this process)
            if (sig != 9 && sig != 19) { // SIGKILL and SIGSTOP cannot be caught, their action is the default
                zt.write(scratch, new byte[32]); // SIG_DFL
                call(zt, "rt_sigaction(SIG_DFL) of the zombie", SYS_RT_SIGACTION, sig, scratch, 0, 8);
            }
            zt.write(scratch, new byte[16]);
            call(zt, "prlimit64(RLIMIT_CORE, 0) of the zombie", SYS_PRLIMIT64, 0, RLIMIT_CORE, scratch, 0);
            zt.write(scratch, le(8).putLong(0, ~(1L << (sig - 1))).array());
            call(zt, "rt_sigprocmask of the zombie", SYS_RT_SIGPROCMASK, SIG_SETMASK, scratch, 0, 8);
            // It sends the signal to itself once let go: it starts right after the clone3 its parent ran,
            // on the syscall instruction before, which now makes tgkill(self, self, sig).
            Regs r = zt.getRegs();
            zt.setRegs(r.withRip(r.rip() - 2).withRax(SYS_TGKILL).withOrigRax(-1).withRdi(z.gpid()).withRsi(z.gpid())
                    .withRdx(sig));
            zt.close();
        } catch (ssi.shim.ErrnoException e) {
            if (e.errno() != 3) throw new RestoreException(e); // ESRCH: it ended, as it should
        }
        tree.forget(z.gpid());
        log.add(pid + ": zombie " + z.gpid() + " made (" + (sig == 0 ? "exit " + ((st >> 8) & 0xff) : sigName(sig)) + ")");
    }

    /**
     * After this process's zombies were made (ended, not reaped): each ended for good (waitid WNOWAIT, it
     * stays a zombie), and the exit signals their ending sent this process are taken back (rt_sigtimedwait
     * with a zero timeout; every signal is still blocked here): the process had had those before the
     * checkpoint, and gets again only those it had not handled yet, its queued signals. A standard
     * signal it had pending at the checkpoint stays: the zombie's copy merged into it.
     */
    void settleZombies(List<TreeRestorer.Node> zombies) throws IOException {
        List<Integer> sigs = new ArrayList<>();
        for (TreeRestorer.Node z : zombies) {
            call("waitid(WNOWAIT) of the zombie " + z.gpid(), SYS_WAITID, P_PID, z.gpid(), scratch, WEXITED | WNOWAIT | WALL, 0);
            sigs.add(z.exitSignal());
        }
        takeBack(sigs, "a made zombie");
    }

    /**
     * Collects (waitid WSTOPPED|WNOHANG, not WNOWAIT) the report of the new stop of each of these children,
     * stopped again by the restore, whose old stop this process had collected before the checkpoint: a
     * waitpid(WUNTRACED) of it does not see that stop twice.
     */
    void collectStops(List<Integer> children) throws IOException {
        for (int c : children)
            call("waitid(WSTOPPED) of the child " + c + " stopped again", SYS_WAITID, P_PID, c, scratch, WSTOPPED | WNOHANG | WALL, 0);
        if (!children.isEmpty()) log.add(pid + ": the new stop of " + children + " collected, as the old one was");
    }

    /**
     * Takes back from the process's queue signals the restore itself made the kernel send it (one per
     * entry; a standard signal once, and not when the image has it queued for the process: the restored
     * one and the new one merged). Every signal must still be blocked (before {@link #credsAndMasks}): an
     * unblocked one would be delivered on the way into the injected call.
     */
    void takeBack(List<Integer> sigs, String why) throws IOException {
        final int SYS_RT_SIGTIMEDWAIT = 128, EAGAIN = 11;
        java.util.Set<Integer> pending = new java.util.HashSet<>();
        for (RestorePlan.SigQueue q : plan.sigqueues())
            if (q.tid() == 0)
                for (byte[] si : q.siginfos()) pending.add(ssi.ghost.image.Records.SigQueue.signo(si));
        List<Integer> take = new ArrayList<>();
        for (int sig : sigs) {
            if (sig <= 0 || sig > 64 || (sig < 32 && (pending.contains(sig) || take.contains(sig))))
                continue;
            take.add(sig);
        }
        for (int sig : take) {
            put(scratch, le(8).putLong(0, 1L << (sig - 1)).array());
            put(scratch + 64, new byte[16]); // timespec {0, 0}
            long rc = t.syscall(SYS_RT_SIGTIMEDWAIT, scratch, scratch + 128, scratch + 64, 8);
            if (rc == sig)
                log.add(pid + ": " + sigName(sig) + " of " + why + " taken back");
            else if (rc != -EAGAIN)
                throw new RestoreException(isError(rc) ? (int) -rc : 0, "rt_sigtimedwait of the " + sigName(sig)
                        + " of " + why + " returned " + rc);
        }
    }

    /** Per-thread state of the main thread, the other threads, then the queued signals. */
    void threadsAndSignals() throws IOException {
        threadState(t, plan.tidAddress(), plan.robustList(), plan.rseq());
        for (RestorePlan.ThreadPlan th : plan.threads()) {
            Tracee tt;
            try {
                tt = link.cloneInto(t, th.tid(), CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM,
                        0, scratch + 3 * RestorePlan.PAGE);
            } catch (ssi.shim.ErrnoException e) {
                throw new RestoreException(e);
            }
            threads.add(tt);
            tree.createdThread(tt);
            altStack(tt, th.altStack());
            threadState(tt, th.clearTid(), th.robustList(), th.rseq());
        }
        if (!plan.threads().isEmpty())
            log.add(pid + ": " + plan.threads().size() + " more thread(s) created");
        int n = 0;
        for (RestorePlan.SigQueue q : plan.sigqueues()) {
            for (byte[] si : q.siginfos()) {
                int sig = ssi.ghost.image.Records.SigQueue.signo(si);
                put(scratch, si);
                // The kernel lets a task queue any si_code only to itself: the process's queue from the main
                // thread (caller's pid == tgid), a thread's own queue from that thread (caller's tid == tid).
                if (q.tid() == 0) {
                    call("rt_sigqueueinfo of " + sigName(sig), SYS_RT_SIGQUEUEINFO, pid, sig, scratch);
                } else {
                    Tracee to = threadTracee(q.tid());
                    call(to, "rt_tgsigqueueinfo of " + sigName(sig) + " to thread " + q.tid(), SYS_RT_TGSIGQUEUEINFO, pid,
                            q.tid(), sig, scratch);
                }
                n++;
            }
        }
        if (n > 0)
            log.add(pid + ": " + n + " queued signal(s) put back");
        itimers();
        posixTimers();
    }

    /**
     * The POSIX timers, each with its own id: timer_create while prctl(PR_TIMER_CREATE_RESTORE_IDS) is on
     * takes the id to use from where it returns it; then timer_settime with what was left (relative).
     * After the threads exist, since SIGEV_THREAD_ID names one.
     */
    private void posixTimers() throws IOException {
        if (plan.timers().isEmpty())
            return;
        call("prctl(PR_TIMER_CREATE_RESTORE_IDS, ON)", SYS_PRCTL, PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0);
        try {
            for (ssi.ghost.image.Records.PosixTimer pt : plan.timers()) {
                String what = "POSIX timer " + pt.id();
                // struct sigevent (64 bytes): sigev_value, sigev_signo, sigev_notify, then the thread id
                ByteBuffer ev = le(64).putLong(0, pt.sigval()).putInt(8, pt.signal()).putInt(12, pt.how()).putInt(16, pt.tid());
                put(scratch, ev.array());
                put(scratch + 64, le(4).putInt(0, pt.id()).array());
                call("timer_create of " + what, SYS_TIMER_CREATE, pt.clockId(), scratch, scratch + 64);
                int id = ByteBuffer.wrap(t.read(scratch + 64, 4)).order(ByteOrder.LITTLE_ENDIAN).getInt(0);
                if (id != pt.id())
                    throw new RestoreException(0, "restore of pid " + pid + ": timer_create gave id " + id + " for " + what);
                long sec = pt.valueSec(), nsec = pt.valueNsec();
                if (sec == 0 && nsec == 0 && (pt.intervalSec() != 0 || pt.intervalNsec() != 0))
                    nsec = 1; // periodic and due now
                if (sec != 0 || nsec != 0) {
                    put(scratch, le(32).putLong(0, pt.intervalSec()).putLong(8, pt.intervalNsec()).putLong(16, sec)
                            .putLong(24, nsec).array());
                    call("timer_settime of " + what, SYS_TIMER_SETTIME, pt.id(), 0, scratch, 0);
                }
            }
        } finally {
            t.syscall(SYS_PRCTL, PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0);
        }
        log.add(pid + ": " + plan.timers().size() + " POSIX timer(s) made with their ids");
    }

    /** setitimer of ITIMER_REAL, VIRTUAL and PROF with what was left of each (0: disarmed). */
    private void itimers() throws IOException {
        long[] v = plan.itimers();
        if (v == null)
            return;
        for (int which = 0; which < 3 && 4 * which + 3 < v.length; which++) {
            long isec = v[4 * which], iusec = v[4 * which + 1], sec = v[4 * which + 2], usec = v[4 * which + 3];
            if (isec == 0 && iusec == 0 && sec == 0 && usec == 0)
                continue;
            if (sec == 0 && usec == 0)
                usec = 1; // armed but due now: a zero value would disarm it
            put(scratch, le(32).putLong(0, isec).putLong(8, iusec).putLong(16, sec).putLong(24, usec).array());
            call("setitimer " + which, SYS_SETITIMER, which, scratch, 0);
        }
    }

    private Tracee threadTracee(int tid) throws RestoreException {
        if (tid == pid)
            return t;
        for (int i = 0; i < threads.size(); i++)
            if (plan.threads().get(i).tid() == tid)
                return threads.get(i);
        throw new RestoreException(22, "queued signals for thread " + tid + ", which process " + pid + " does not have");
    }

    private void threadState(Tracee th, long tidAddress, RestorePlan.RobustList robust, RestorePlan.Rseq rseq) throws IOException {
        if (tidAddress != 0)
            call(th, "set_tid_address", SYS_SET_TID_ADDRESS, tidAddress);
        if (robust != null)
            call(th, "set_robust_list", SYS_SET_ROBUST_LIST, robust.head(), robust.len());
        if (rseq != null)
            call(th, String.format("rseq registration of %x", rseq.pointer()), SYS_RSEQ, rseq.pointer(), rseq.size(), 0,
                    rseq.signature());
    }

    /** setpgid(0, pgid) in this process. */
    void setPgid(int pgid) throws IOException {
        call("setpgid(0, " + pgid + ")", SYS_SETPGID, 0, pgid);
    }

    /** Credentials of every thread (they are per thread in the kernel), then each thread's mask. */
    void credsAndMasks() throws IOException {
        for (Tracee th : threads)
            creds(th);
        creds(t);
        for (int i = 0; i < threads.size(); i++)
            mask(threads.get(i), plan.threads().get(i).blockedMask());
        mask(t, plan.blockedMask());
    }

    private void mask(Tracee th, long mask) throws IOException {
        put(scratch, le(8).putLong(0, mask).array());
        call(th, "rt_sigprocmask(SIG_SETMASK)", SYS_RT_SIGPROCMASK, SIG_SETMASK, scratch, 0, 8);
    }

    /** The last steps: the scratch area goes, then the XSAVE state and registers of every thread. */
    void registers() throws IOException {
        call("munmap of the scratch area", SYS_MUNMAP, scratch, SCRATCH_SIZE);
        for (int i = 0; i < threads.size(); i++) {
            RestorePlan.ThreadPlan th = plan.threads().get(i);
            if (th.xstate() != null)
                threads.get(i).setXstate(th.xstate());
            threads.get(i).setRegs(resumeRegs(th.regs()));
        }
        if (plan.xstate() != null)
            t.setXstate(plan.xstate());
        Regs regs = resumeRegs(plan.regs());
        t.setRegs(regs);
        log.add(String.format("%d: registers set: rip %x rax %x (captured rip %x rax %x orig_rax %d)", pid, regs.rip(),
                regs.rax(), plan.regs().rip(), plan.regs().rax(), plan.regs().origRax()));
    }

    /**
     * The registers to resume with: a syscall the thread was stopped in is set up to run again (see the
     * class comment), and orig_rax becomes -1 so the kernel does not adjust them a second time.
     */
    static Regs resumeRegs(Regs r) {
        long orig = r.origRax(), rax = r.rax();
        if (orig >= 0) {
            if (rax == -ERESTARTSYS || rax == -ERESTARTNOINTR || rax == -ERESTARTNOHAND) {
                r = r.withRax(orig).withRip(r.rip() - 2);
            } else if (rax == -ERESTART_RESTARTBLOCK) {
                if (orig == SYS_NANOSLEEP || orig == SYS_CLOCK_NANOSLEEP || orig == SYS_POLL || orig == SYS_FUTEX)
                    r = r.withRax(orig).withRip(r.rip() - 2);
                else
                    r = r.withRax(-EINTR);
            }
        }
        return r.withOrigRax(-1);
    }

    // ---- memory

    /** One line of /proc/pid/maps. */
    record MapsLine(long start, long end, String perms, String name) {
        boolean special() {
            return name.startsWith("[v") && !name.equals("[vsyscall]");
        }
    }

    static List<MapsLine> readMaps(int pid) throws IOException {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc", Integer.toString(pid), "maps"));
        } catch (NoSuchFileException e) {
            throw new RestoreException(3, "the stub (pid " + pid + ") is gone");
        }
        List<MapsLine> out = new ArrayList<>();
        for (String line : lines)
            out.add(parseMapsLine(line));
        return out;
    }

    static MapsLine parseMapsLine(String line) {
        String[] f = line.trim().split("\\s+", 6);
        String[] range = f[0].split("-");
        return new MapsLine(Long.parseUnsignedLong(range[0], 16), Long.parseUnsignedLong(range[1], 16), f[1],
                f.length > 5 ? f[5] : "");
    }

    /** The lowest free, page-aligned area of size bytes in [SEARCH_FROM, SEARCH_TO) avoiding every busy range. */
    static long findFree(long size, List<long[]> busy) {
        List<long[]> b = new ArrayList<>(busy);
        b.sort(Comparator.comparingLong(x -> x[0]));
        long at = SEARCH_FROM;
        for (long[] r : b) {
            if (r[1] <= at)
                continue;
            if (r[0] >= at + size)
                break;
            at = (r[1] + RestorePlan.PAGE - 1) & -RestorePlan.PAGE;
        }
        if (at + size > SEARCH_TO)
            throw new IllegalStateException("no free area of " + size + " bytes");
        return at;
    }

    private List<long[]> busy(List<MapsLine> stubMaps) {
        List<long[]> busy = new ArrayList<>();
        for (MapsLine m : stubMaps)
            busy.add(new long[] {m.start(), m.end()});
        for (RestorePlan.Vma v : plan.vmas())
            busy.add(new long[] {v.start(), v.end()});
        for (RestorePlan.Special s : plan.specials())
            busy.add(new long[] {s.start(), s.end()});
        for (SysvRestore.Attachment a : tree.sysv().of(pid)) {
            // shmat maps the whole segment at its base before the pieces the process gave up go
            ssi.ghost.image.Records.SysvShm seg = tree.sysv().segment(a.id());
            long end = a.pieces().stream().mapToLong(SysvRestore.Piece::end).max().orElse(a.base());
            busy.add(new long[] {a.base(), Math.max(end, seg == null ? end : a.base() + seg.pages() * RestorePlan.PAGE)});
        }
        if (scratch != 0)
            busy.add(new long[] {scratch, scratch + SCRATCH_SIZE + BATCH_AREA});
        return busy;
    }

    private void mapScratch(List<MapsLine> stubMaps) throws IOException {
        long want = findFree(SCRATCH_SIZE + BATCH_AREA, busy(stubMaps));
        long got = call("mmap of the scratch area", SYS_MMAP, want, SCRATCH_SIZE, PROT_RW,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (got != want)
            throw new RestoreException(0, String.format("the scratch mmap at %x returned %x", want, got));
        scratch = got;
        log.add(String.format("scratch area at %x", scratch));
    }

    /**
     * Shared anonymous memory a child has at the very place its parent had the same object: the fork
     * gave it the parent's mapping, which is the one to keep (its pages are shared, and already there).
     */
    private void findKept(List<MapsLine> stubMaps) {
        for (RestorePlan.Vma v : plan.vmas()) {
            if (v.shmemId() == 0)
                continue;
            boolean inParent = parent.plan.vmas().stream().anyMatch(p -> p.shmemId() == v.shmemId() && p.start() == v.start()
                    && p.end() == v.end() && p.offset() == v.offset());
            boolean mapped = stubMaps.stream().anyMatch(m -> m.start() == v.start() && m.end() == v.end());
            if (inParent && mapped)
                kept.add(v.start());
        }
    }

    private void unmapStub(List<MapsLine> stubMaps, Batch b) {
        int n = 0;
        // consecutive mappings to go (in address order, nothing kept between them, nor the scratch area)
        // go in one munmap: the gaps between them are unmapped already
        List<MapsLine> sorted = new ArrayList<>(stubMaps);
        sorted.sort(java.util.Comparator.comparingLong(MapsLine::start));
        long from = -1, to = -1;
        String first = null;
        int in = 0;
        for (MapsLine m : sorted) {
            boolean go = !(m.special() || m.name().equals("[vsyscall]") || kept.contains(m.start()));
            boolean joins = go && from >= 0 && !(scratch < m.end() && scratch + SCRATCH_SIZE > to);
            if (from >= 0 && !joins) {
                unmapRange(b, from, to, first, in);
                from = -1;
            }
            if (!go)
                continue;
            if (from < 0) {
                from = m.start();
                first = m.toString();
                in = 0;
            }
            to = m.end();
            in++;
            n++;
        }
        if (from >= 0)
            unmapRange(b, from, to, first, in);
        // kernel special mappings the process did not have (another layout) go too
        for (MapsLine m : stubMaps) {
            if (m.special() && plan.specials().stream().noneMatch(s -> s.name().equals(m.name()))) {
                b.add("munmap of the stub's " + m, SYS_MUNMAP, m.start(), m.end() - m.start());
                n++;
            }
        }
        log.add("unmapped " + n + " mappings of the stub");
    }

    private void unmapRange(Batch b, long from, long to, String first, int mappings) {
        b.add("munmap of the stub's " + first + (mappings > 1 ? String.format(" and %d more up to %x", mappings - 1, to) : ""),
                SYS_MUNMAP, from, to - from);
    }

    /** Adds the mremaps of the kernel special mappings to b; returns them by their index in b. */
    private Map<Integer, SpecialMove> moveSpecials(List<MapsLine> stubMaps, Batch b) throws RestoreException {
        Map<String, long[]> now = new HashMap<>();
        for (MapsLine m : stubMaps)
            if (m.special() && plan.specials().stream().anyMatch(s -> s.name().equals(m.name())))
                now.put(m.name(), new long[] {m.start(), m.end()});
        List<SpecialMove> moves = planSpecialMoves(now, plan.specials(), busy(stubMaps));
        Map<Integer, SpecialMove> at = new HashMap<>();
        for (SpecialMove m : moves)
            at.put(b.add(String.format("mremap of %s from %x to %x", m.name(), m.from(), m.to()), SYS_MREMAP, m.from(),
                    m.len(), m.len(), MREMAP_MAYMOVE | MREMAP_FIXED, m.to()), m);
        log.add("moved " + plan.specials().size() + " kernel special mappings in " + moves.size() + " mremaps");
        return at;
    }

    private static void checkMoves(long[] rc, Map<Integer, SpecialMove> moves) throws RestoreException {
        for (Map.Entry<Integer, SpecialMove> e : moves.entrySet())
            if (rc[e.getKey()] != e.getValue().to())
                throw new RestoreException(0, String.format("mremap of %s to %x returned %x", e.getValue().name(),
                        e.getValue().to(), rc[e.getKey()]));
    }

    /** One mremap of a kernel special mapping. */
    record SpecialMove(String name, long from, long len, long to) { }

    /**
     * The mremaps that put the special mappings now at {@code now} (name to [start, end)) at the plan's
     * addresses without one landing on another (MREMAP_FIXED unmaps whatever is at the destination):
     * when any destination overlaps where any of them is now, every one that moves first goes to a free
     * area (avoiding busy), then each to its destination. Those already in place stay.
     */
    static List<SpecialMove> planSpecialMoves(Map<String, long[]> now, List<RestorePlan.Special> targets,
                                              List<long[]> busy) throws RestoreException {
        Map<String, long[]> at = new HashMap<>();
        now.forEach((k, v) -> at.put(k, v.clone()));
        List<RestorePlan.Special> moving = new ArrayList<>();
        for (RestorePlan.Special s : targets) {
            long[] cur = at.get(s.name());
            if (cur == null)
                throw new RestoreException(0, "the process had " + s.name() + " but the stub has none (a "
                        + "different kernel?)");
            if (cur[1] - cur[0] != s.end() - s.start())
                throw new RestoreException(0, String.format("%s is %d bytes here but was %d bytes in the process "
                        + "(a different kernel?)", s.name(), cur[1] - cur[0], s.end() - s.start()));
            if (cur[0] != s.start())
                moving.add(s);
        }
        boolean conflict = moving.stream().anyMatch(s -> at.values().stream()
                .anyMatch(c -> c[0] < s.end() && s.start() < c[1]));
        List<SpecialMove> out = new ArrayList<>();
        List<long[]> taken = new ArrayList<>(busy);
        at.values().forEach(c -> taken.add(c.clone()));
        if (conflict) {
            for (RestorePlan.Special s : moving) {
                long[] cur = at.get(s.name());
                long len = cur[1] - cur[0];
                long tmp = findFree(len, taken);
                taken.add(new long[] {tmp, tmp + len});
                out.add(new SpecialMove(s.name(), cur[0], len, tmp));
                at.put(s.name(), new long[] {tmp, tmp + len});
            }
        }
        for (RestorePlan.Special s : moving) {
            long[] cur = at.get(s.name());
            out.add(new SpecialMove(s.name(), cur[0], cur[1] - cur[0], s.start()));
            at.put(s.name(), new long[] {s.start(), s.end()});
        }
        return out;
    }

    /**
     * The plan's VMAs. The private anonymous ones whose pages the copy threads fill come first: mapped in
     * one {@link Batch}, their copies started (biggest first). Then the files the others map are opened
     * (one fd per file and mode, with the caller's rights when the restart has an opener), every other
     * VMA is mapped in one batch but those of shared anonymous memory another process, or an earlier VMA
     * of this one, mapped already (kept from the fork, or opened through map_files one by one after the
     * batch); the files' fds are closed; then each VMA gets its pages and its protection (the mprotects in
     * one batch too, those of VMAs still being filled in finishPages).
     */
    private void mapVmas() throws IOException {
        List<RestorePlan.Vma> batched = new ArrayList<>(), later = new ArrayList<>(), copied = new ArrayList<>();
        java.util.Set<Long> objects = new java.util.HashSet<>();
        for (RestorePlan.Vma v : plan.vmas()) {
            if (v.shmemId() != 0) {
                if (kept.contains(v.start()))
                    continue;
                if (tree.shmem(v.shmemId()) != null || !objects.add(v.shmemId())) {
                    later.add(v);
                    continue;
                }
            }
            (copiedByUffd(v) ? copied : batched).add(v);
        }
        // The private anonymous VMAs whose pages the copy threads fill go first, in a batch of their own,
        // the biggest copy started first: their copies are most of a restore's time, and they run while
        // the files are opened and mapped and the rest of the process is made.
        copied.sort(java.util.Comparator.comparingLong((RestorePlan.Vma v) -> v.pages().fileRuns().stream()
                .mapToLong(RestorePlan.FileRun::length).sum()).reversed());
        Batch protect = new Batch();
        if (!copied.isEmpty()) {
            mapBatch(copied, Map.of());
            for (RestorePlan.Vma v : copied)
                fill(v, protect);
        }
        mapBatch(batched, openMapped(batched));
        for (RestorePlan.Vma v : batched)
            fill(v, protect);
        protect.runChecked();
        for (RestorePlan.Vma v : later) {
            TreeRestorer.Shmem h = tree.shmem(v.shmemId());
            mapShared(v, h);
        }
    }

    /** Whether v's pages are copied by the copy threads (PageCopy) rather than written through the shim. */
    private boolean copiedByUffd(RestorePlan.Vma v) {
        return v.path() == null && !v.shared() && v.shmemId() == 0 && !noPageCopy && !v.pages().fileRuns().isEmpty();
    }

    /** mmaps every VMA of vs in one batch (fds: the files' fds by {@link #mapKey}, closed in the same batch). */
    private void mapBatch(List<RestorePlan.Vma> vs, Map<String, Long> fds) throws IOException {
        Batch maps = new Batch();
        for (RestorePlan.Vma v : vs) {
            long fd = v.path() == null ? -1 : fds.get(mapKey(v));
            maps.add("mmap of " + v, SYS_MMAP, v.start(), v.length(), writableFirst(v) ? v.prot() | PROT_RW : v.prot(),
                    MAP_FIXED_NOREPLACE | (v.shared() ? MAP_SHARED : MAP_PRIVATE) | (v.path() == null ? MAP_ANONYMOUS : 0)
                            | (v.growsDown() ? MAP_GROWSDOWN : 0), fd, v.path() == null ? 0 : v.offset());
        }
        int mapped = maps.nrs.size();
        for (long fd : fds.values())
            maps.add("close of a mapped file's fd", SYS_CLOSE, fd);
        if (maps.nrs.isEmpty())
            return;
        long[] rc = maps.run();
        for (int i = 0; i < mapped; i++)
            checkMapped(vs.get(i), rc[i]);
        for (int i = mapped; i < rc.length; i++)
            if (isError(rc[i]))
                throw new RestoreException((int) -rc[i], "restore of pid " + pid + ": " + maps.whats.get(i) + " failed");
    }

    /** v, mapped: its pages in (or their copy started), its protection set now or once they are in (protect, protectLater). */
    private void fill(RestorePlan.Vma v, Batch protect) throws IOException {
        if (TreeRestorer.TRACE) log.add(pid + ": mapped " + v);
        int prot = writableFirst(v) ? v.prot() | PROT_RW : v.prot();
        if (writableFirst(v)) {
            if (writePages(v) && prot != v.prot())
                protectLater.add(v); // once its pages are in (finishPages)
            else if (prot != v.prot())
                protect.add("mprotect of " + v, SYS_MPROTECT, v.start(), v.length(), v.prot());
        }
        if (v.shmemId() != 0)
            tree.shmemMapped(v.shmemId(), new TreeRestorer.Shmem(pid, v.start(), v.end()));
    }

    /** Mapped writable first (but a shared file mapping, whose pages are the file's) to take the pages. */
    private static boolean writableFirst(RestorePlan.Vma v) {
        return v.path() == null || !v.shared();
    }

    private static int mapOpenFlags(RestorePlan.Vma v) {
        return (v.shared() && (v.prot() & RestorePlan.PROT_WRITE) != 0 ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    }

    private static String mapKey(RestorePlan.Vma v) {
        return mapOpenFlags(v) + ":" + v.path();
    }

    /**
     * The process's fds of the files the VMAs map, by {@link #mapKey}: opened in the daemon with the
     * caller's rights and handed over when the restart has an opener, else opened by the process (in
     * batches, their paths side by side in the scratch area).
     */
    private Map<String, Long> openMapped(List<RestorePlan.Vma> vmas) throws IOException {
        Map<String, Long> fds = new java.util.LinkedHashMap<>();
        Map<String, RestorePlan.Vma> files = new java.util.LinkedHashMap<>();
        for (RestorePlan.Vma v : vmas)
            if (v.path() != null)
                files.putIfAbsent(mapKey(v), v);
        if (tree.opener != null) {
            for (Map.Entry<String, RestorePlan.Vma> e : files.entrySet())
                fds.put(e.getKey(), (long) giveOpened(e.getValue().path(), mapOpenFlags(e.getValue()) & ~O_CLOEXEC, -1));
            return fds;
        }
        List<String> keys = new ArrayList<>(files.keySet());
        for (int from = 0; from < keys.size(); ) {
            Batch opens = new Batch();
            java.io.ByteArrayOutputStream paths = new java.io.ByteArrayOutputStream();
            int to = from;
            while (to < keys.size()) {
                RestorePlan.Vma v = files.get(keys.get(to));
                byte[] b = v.path().getBytes(StandardCharsets.UTF_8);
                if (b.length + 1 > 2 * RestorePlan.PAGE)
                    throw new RestoreException(36, "path too long: " + v.path());
                if (paths.size() + b.length + 1 > SCRATCH_SIZE)
                    break;
                opens.add("open of " + v.path() + " to map " + v, SYS_OPENAT, AT_FDCWD, scratch + paths.size(), mapOpenFlags(v), 0);
                paths.write(b, 0, b.length);
                paths.write(0);
                to++;
            }
            put(scratch, paths.toByteArray());
            long[] rc = opens.runChecked(); // a failure fails the restore: the stub and its fds go
            for (int i = 0; i < rc.length; i++)
                fds.put(keys.get(from + i), rc[i]);
            from = to;
        }
        return fds;
    }

    /**
     * Shared anonymous memory another process of the tree restored already: the same object, opened
     * through that process's /proc/PID/map_files and mapped at this process's address and offset.
     */
    private void mapShared(RestorePlan.Vma v, TreeRestorer.Shmem h) throws IOException {
        String path = String.format("/proc/%d/map_files/%x-%x", h.pid(), h.start(), h.end());
        int oflags = ((v.prot() & RestorePlan.PROT_WRITE) != 0 ? O_RDWR : O_RDONLY) | O_CLOEXEC;
        long fd = call("open of " + path + " (memory shared with " + h.pid() + ")", SYS_OPENAT, AT_FDCWD, putString(path),
                oflags, 0);
        long got;
        try {
            got = t.syscall(SYS_MMAP, v.start(), v.length(), v.prot(), MAP_SHARED | MAP_FIXED_NOREPLACE, fd, v.offset());
        } finally {
            call("close of the shared memory's fd", SYS_CLOSE, fd);
        }
        checkMapped(v, got);
    }

    private void checkMapped(RestorePlan.Vma v, long got) throws RestoreException {
        if (isError(got))
            throw new RestoreException((int) -got, "mmap of " + v + " failed" + (got == -EEXIST
                    ? ": something is already mapped there" : ""));
        if (got != v.start())
            throw new RestoreException(0, String.format("mmap of %s returned %x", v, got));
    }

    /**
     * The VMA's saved pages into the mapping. Runs in the image's pages file: a private anonymous VMA's
     * are copied by the daemon with UFFDIO_COPY ({@link PageCopy}; each run's checksum checked just before
     * it is copied, when prepare did not check it), any other's (written pages of a private file
     * mapping, or when the process cannot make a userfaultfd) by the shim straight from the file
     * (WRITEMEM_FD, the run read and checked here first, when prepare did not); runs that only come as
     * bytes (an incremental image's chain) move through the link (WRITEMEM).
     */
    private boolean writePages(RestorePlan.Vma v) throws IOException {
        RestorePlan.PageSource src = v.pages();
        List<RestorePlan.FileRun> runs = src.fileRuns();
        if (!runs.isEmpty()) {
            for (RestorePlan.FileRun r : runs)
                checkInside(v, r.addr(), r.length());
            if (copiedByUffd(v)) {
                if (pageCopy == null) {
                    pageCopy = PageCopy.open(t, pid);
                    noPageCopy = pageCopy == null;
                    log.add(pid + (noPageCopy ? ": no userfaultfd: the pages go through the shim" : ": userfaultfd made for the page copies"));
                }
                if (pageCopy != null) {
                    pageCopy.start(v.start(), v.end(), runs, src);
                    return true;
                }
            }
            for (RestorePlan.FileRun r : runs) {
                if (!src.checked()) src.verify(r);
                t.writeFromFile(r.addr(), r.fd(), r.fileOffset(), r.length());
            }
            return false;
        }
        src.forEachRun((addr, data) -> {
            checkInside(v, addr, data.length);
            t.write(addr, data);
        });
        return false;
    }

    /**
     * Waits for the page copies {@link #writePages} queued (a checksum mismatch throws here, before the
     * process ever runs), closes the userfaultfd and gives those VMAs their protection. Called before
     * the process is forked or gets its threads (see TreeRestorer), which would not see pages still
     * being copied; nothing between reads the memory being filled.
     */
    void finishPages() throws IOException {
        if (pageCopy != null) {
            try {
                pageCopy.finish();
                pageCopy.trace().forEach(log::add);
            } finally {
                pageCopy.close();
                pageCopy = null;
            }
        }
        for (RestorePlan.Vma v : protectLater)
            call("mprotect of " + v, SYS_MPROTECT, v.start(), v.length(), v.prot());
        protectLater.clear();
    }

    /** After a failure: waits for the queued copies (their errors dropped) and closes the userfaultfd. */
    void abortPages() {
        if (pageCopy != null) pageCopy.close();
        pageCopy = null;
    }

    private static void checkInside(RestorePlan.Vma v, long addr, long len) throws RestoreException {
        if (addr < v.start() || addr + len > v.end())
            throw new RestoreException(0, String.format("a page run %x+%d lies outside %s", addr, len, v));
    }

    // ---- files

    /**
     * The fds: a child first closes what it inherited from its parent and does not share with it at the
     * same number; then, by number, an fd is kept (inherited), installed from the daemon's copy of an
     * open file description another process of the tree made already (GIVEFD), or made here (open,
     * pipe2, socketpair, eventfd2, timerfd_create, signalfd4; the tree keeps a copy of what was made, the
     * other end included); epoll sets made here come last, when every file they watch is in place.
     */
    private void openFds() throws IOException {
        java.util.Set<Integer> keep = new java.util.HashSet<>();
        if (parent != null) {
            Map<Integer, Integer> mine = new HashMap<>();
            for (RestorePlan.FdPlan f : plan.fds())
                mine.put(f.fd(), f.fileId());
            int closed = 0;
            for (RestorePlan.FdPlan pf : parent.plan.fds()) {
                Integer id = mine.get(pf.fd());
                if (id != null && id != 0 && id == pf.fileId()) {
                    keep.add(pf.fd());
                } else {
                    call("close of the inherited fd " + pf.fd(), SYS_CLOSE, pf.fd());
                    closed++;
                }
            }
            log.add(pid + ": " + keep.size() + " fds inherited, " + closed + " closed");
        }
        List<RestorePlan.FdPlan> fds = new ArrayList<>(plan.fds());
        fds.sort(Comparator.comparingInt(RestorePlan.FdPlan::fd));
        List<RestorePlan.FdPlan> epolls = new ArrayList<>();
        for (RestorePlan.FdPlan f : fds) {
            String what = "fd " + f.fd() + " (" + f.path() + ")";
            boolean cloexec = (f.flags() & O_CLOEXEC) != 0;
            if (keep.contains(f.fd())) {
                call("fcntl(F_SETFD) of " + what, SYS_FCNTL, f.fd(), F_SETFD, cloexec ? FD_CLOEXEC : 0);
                continue;
            }
            Integer copy = f.fileId() == 0 ? null : tree.file(f.fileId());
            if (copy != null) {
                int got = t.giveFd(copy, f.fd());
                if (got != f.fd())
                    throw new RestoreException(0, what + ": the shim installed fd " + got);
                if (cloexec)
                    call("fcntl(F_SETFD) of " + what, SYS_FCNTL, f.fd(), F_SETFD, FD_CLOEXEC);
                continue;
            }
            switch (f.kind()) {
                case RestorePlan.FdPlan.PIPE -> makePipe(f, what);
                case RestorePlan.FdPlan.FIFO -> openFifo(f, what);
                case RestorePlan.FdPlan.UNIX -> makeSocketPair(f, what);
                case RestorePlan.FdPlan.EVENTFD, RestorePlan.FdPlan.TIMERFD, RestorePlan.FdPlan.SIGNALFD -> makeAnon(f, what);
                case RestorePlan.FdPlan.EPOLL -> epolls.add(f);
                default -> openFile(f, what);
            }
        }
        makeEpolls(epolls);
        log.add(pid + ": " + fds.size() + " fds in place");
    }

    /**
     * eventfd2, timerfd_create + timerfd_settime (+ TFD_IOC_SET_TICKS for expirations not read yet), or
     * signalfd4, with the fd's O_NONBLOCK and FD_CLOEXEC; the tree keeps a copy for the other holders.
     */
    private void makeAnon(RestorePlan.FdPlan f, String what) throws IOException {
        int cloexec = f.flags() & O_CLOEXEC, nonblock = f.flags() & O_NONBLOCK;
        long got;
        switch (f.state()) {
            case ssi.ghost.image.Records.EventFd e -> {
                // eventfd2 takes an unsigned int; a bigger count is written through the daemon's copy below
                boolean fits = Long.compareUnsigned(e.count(), 0xffffffffL) <= 0;
                got = call("eventfd2 for " + what, SYS_EVENTFD2, fits ? e.count() : 0,
                        cloexec | nonblock | (e.semaphore() ? EFD_SEMAPHORE : 0));
                install(got, f.fd(), cloexec, what);
                if (!fits) {
                    madeAnon(f);
                    int copy = tree.file(f.fileId()) != null ? tree.file(f.fileId()) : Tracee.takeFd(pid, f.fd());
                    ssi.shim.LocalFds.writeAll(copy, le(8).putLong(0, e.count()).array());
                    if (tree.file(f.fileId()) == null) ssi.shim.LocalFds.closeQuietly(copy);
                    return;
                }
            }
            case ssi.ghost.image.Records.TimerFd tf -> {
                got = call("timerfd_create for " + what, SYS_TIMERFD_CREATE, tf.clockId(), cloexec | nonblock);
                install(got, f.fd(), cloexec, what);
                long sec = tf.valueSec(), nsec = tf.valueNsec();
                boolean periodic = tf.intervalSec() != 0 || tf.intervalNsec() != 0;
                if (sec == 0 && nsec == 0 && periodic) {
                    // Expired: a periodic timerfd is forwarded only when read, so fdinfo shows no time left.
                    // With expirations counted (ticks) the next one is an interval away; without, it is due now.
                    if (tf.ticks() != 0) {
                        sec = tf.intervalSec();
                        nsec = tf.intervalNsec();
                    } else {
                        nsec = 1; // a zero value would disarm it
                    }
                }
                if (sec != 0 || nsec != 0) {
                    put(scratch, le(32).putLong(0, tf.intervalSec()).putLong(8, tf.intervalNsec()).putLong(16, sec)
                            .putLong(24, nsec).array());
                    call("timerfd_settime of " + what, SYS_TIMERFD_SETTIME, f.fd(), tf.settimeFlags(), scratch, 0);
                }
                if (tf.ticks() != 0) {
                    put(scratch, le(8).putLong(0, tf.ticks()).array());
                    call("ioctl(TFD_IOC_SET_TICKS) of " + what, SYS_IOCTL, f.fd(), TFD_IOC_SET_TICKS, scratch);
                }
            }
            case ssi.ghost.image.Records.SignalFd sf -> {
                put(scratch, le(8).putLong(0, sf.sigmask()).array());
                got = call("signalfd4 for " + what, SYS_SIGNALFD4, -1, scratch, 8, cloexec | nonblock);
                install(got, f.fd(), cloexec, what);
            }
            case null, default -> throw new RestoreException(22, what + " has no state to make it from");
        }
        madeAnon(f);
    }

    private void madeAnon(RestorePlan.FdPlan f) throws IOException {
        if (f.fileId() != 0 && tree.file(f.fileId()) == null)
            tree.madeFile(f.fileId(), pid, f.fd());
    }

    /**
     * The epoll sets this process makes, once every other fd is in place: epoll_create1, then epoll_ctl
     * ADD of each watched file by the fd number it was added by (the checkpoint made sure that number is
     * still that file here). A set that watches another set comes after it.
     */
    private void makeEpolls(List<RestorePlan.FdPlan> epolls) throws IOException {
        java.util.Set<Integer> pending = new java.util.HashSet<>();
        for (RestorePlan.FdPlan f : epolls)
            pending.add(f.fd());
        List<RestorePlan.FdPlan> left = new ArrayList<>(epolls);
        while (!left.isEmpty()) {
            RestorePlan.FdPlan next = null;
            for (RestorePlan.FdPlan f : left) {
                boolean ready = ((ssi.ghost.image.Records.Epoll) f.state()).targets().stream()
                        .noneMatch(x -> x.tfd() != f.fd() && pending.contains(x.tfd()));
                if (ready) {
                    next = f;
                    break;
                }
            }
            if (next == null)
                next = left.getFirst(); // sets watching each other: the kernel refuses that loop anyway
            left.remove(next);
            makeEpoll(next);
            pending.remove(next.fd());
        }
    }

    private void makeEpoll(RestorePlan.FdPlan f) throws IOException {
        String what = "fd " + f.fd() + " (" + f.path() + ")";
        if (!(f.state() instanceof ssi.ghost.image.Records.Epoll ep))
            throw new RestoreException(22, what + " has no state to make it from");
        int cloexec = f.flags() & O_CLOEXEC;
        long got = call("epoll_create1 for " + what, SYS_EPOLL_CREATE1, cloexec);
        install(got, f.fd(), cloexec, what);
        for (ssi.ghost.image.Records.EpollTarget x : ep.targets()) {
            // struct epoll_event is packed on x86_64: u32 events, u64 data
            put(scratch, le(12).putInt(0, x.events()).putLong(4, x.data()).array());
            call("epoll_ctl(ADD) of fd " + x.tfd() + " to " + what, SYS_EPOLL_CTL, f.fd(), EPOLL_CTL_ADD, x.tfd(), scratch);
        }
        if ((f.flags() & O_NONBLOCK) != 0)
            call("fcntl(F_SETFL) of " + what, SYS_FCNTL, f.fd(), 4 /* F_SETFL */, O_NONBLOCK);
        madeAnon(f);
    }

    private void openFile(RestorePlan.FdPlan f, String what) throws IOException {
        int flags = f.flags() & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
        if (f.kind() == RestorePlan.FdPlan.FILE && tree.opener != null) {
            int got = giveOpened(f.path(), flags & ~O_CLOEXEC, f.fd());
            if (got != f.fd())
                throw new RestoreException(0, what + ": the shim installed fd " + got);
            if ((flags & O_CLOEXEC) != 0)
                call("fcntl(F_SETFD) of " + what, SYS_FCNTL, f.fd(), F_SETFD, FD_CLOEXEC);
        } else {
            long got = call("open of " + what, SYS_OPENAT, AT_FDCWD, putString(f.path()), flags, 0);
            install(got, f.fd(), flags & O_CLOEXEC, what);
        }
        if (f.pos() != 0) {
            long pos = call("lseek of " + what, SYS_LSEEK, f.fd(), f.pos(), 0);
            if (pos != f.pos())
                throw new RestoreException(0, what + ": lseek to " + f.pos() + " gave " + pos);
        }
        if (f.fileId() != 0)
            tree.madeFile(f.fileId(), pid, f.fd());
    }

    /**
     * A named pipe's end, opened by path with its flags: the first open of that FIFO in the restore is an
     * O_RDWR one the daemon keeps (TreeRestorer.madeFifoKeeper: it refills the bytes), so this open finds
     * a partner and does not block; it is made O_NONBLOCK and given its own status flags after.
     */
    private void openFifo(RestorePlan.FdPlan f, String what) throws IOException {
        if (!tree.hasFifoKeeper(f)) {
            // opened here (with the restore's rights: the caller may only read or only write it), checked by
            // the daemon to be the very FIFO; the process's own end below is opened with the caller's rights
            long k = call("open of " + what + " for the daemon", SYS_OPENAT, AT_FDCWD, putString(f.path()),
                    O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
            try {
                tree.madeFifoKeeper(f, pid, (int) k);
            } finally {
                call("close of the daemon's open of " + what, SYS_CLOSE, k);
            }
        }
        int flags = f.flags() & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
        long got;
        if (tree.opener != null) {
            got = giveOpened(f.path(), (flags | O_NONBLOCK) & ~O_CLOEXEC, -1);
        } else {
            got = call("open of " + what, SYS_OPENAT, AT_FDCWD, putString(f.path()), flags | O_NONBLOCK | O_CLOEXEC, 0);
        }
        if ((flags & O_NONBLOCK) == 0)
            call("fcntl(F_SETFL) of " + what, SYS_FCNTL, got, 4 /* F_SETFL */, flags & ~(O_ACCMODE | O_CLOEXEC));
        install(got, f.fd(), flags & O_CLOEXEC, what);
        if (f.fileId() != 0)
            tree.madeFile(f.fileId(), pid, f.fd());
    }

    /**
     * The caller's file, opened by the daemon with the caller's rights (TreeRestorer.opener) and
     * installed in the process at target (-1: the lowest free fd); returns the fd it got there.
     */
    private int giveOpened(String path, int flags, int target) throws IOException {
        int dfd = tree.opener.open(path, flags);
        try {
            return t.giveFd(dfd, target);
        } finally {
            ssi.shim.LocalFds.closeQuietly(dfd);
        }
    }

    /** Moves a temporary fd to its number (a no-op if it got it). */
    private void install(long tmp, int fd, int cloexec, String what) throws IOException {
        if (tmp != fd) {
            call("dup3 for " + what, SYS_DUP3, tmp, fd, cloexec);
            call("close of the temporary fd for " + what, SYS_CLOSE, tmp);
        } else {
            // made right at its number (pipe2 and socketpair make their fds close-on-exec): its own flag
            call("fcntl(F_SETFD) for " + what, SYS_FCNTL, fd, F_SETFD, cloexec != 0 ? FD_CLOEXEC : 0);
        }
    }

    /** pipe2 here; the tree keeps both ends, refills the bytes that were queued and sets the capacity. */
    private void makePipe(RestorePlan.FdPlan f, String what) throws IOException {
        call("pipe2 for " + what, SYS_PIPE2, scratch, O_CLOEXEC);
        ByteBuffer b = ByteBuffer.wrap(t.read(scratch, 8)).order(ByteOrder.LITTLE_ENDIAN);
        int r = b.getInt(0), w = b.getInt(4);
        boolean writeEnd = (f.flags() & O_ACCMODE) == 1;
        tree.madePipe(f, pid, r, w);
        installPair(writeEnd ? w : r, writeEnd ? r : w, f, what);
    }

    /**
     * Puts mine (a fresh temporary fd) at its number and closes other (the other end's temporary fd, a
     * copy of which the tree keeps). other may sit on the very number mine goes to: it is moved first,
     * else installing mine would close it and closing it would close mine.
     */
    private void installPair(long mine, long other, RestorePlan.FdPlan f, String what) throws IOException {
        if (other == f.fd())
            other = call("fcntl(F_DUPFD_CLOEXEC) of the other end of " + what, SYS_FCNTL, other, F_DUPFD_CLOEXEC, f.fd() + 1);
        install(mine, f.fd(), f.flags() & O_CLOEXEC, what);
        call("close of the other end of " + what, SYS_CLOSE, other);
    }

    /** socketpair here; the tree keeps both ends and sends the queued bytes from each peer. */
    private void makeSocketPair(RestorePlan.FdPlan f, String what) throws IOException {
        call("socketpair for " + what, SYS_SOCKETPAIR, AF_UNIX, f.aux() | O_CLOEXEC, 0, scratch);
        ByteBuffer b = ByteBuffer.wrap(t.read(scratch, 8)).order(ByteOrder.LITTLE_ENDIAN);
        int a = b.getInt(0), p = b.getInt(4);
        tree.madeSocketPair(f, pid, a, p);
        installPair(a, p, f, what);
    }

    // ---- mm

    private void setMm() throws IOException {
        RestorePlan.MmFields m = plan.mm();
        long exeFd = -1;
        // A forked child has its parent's executable already; the kernel refuses to replace an exe link
        // while the old file is still mapped (EBUSY), so an identical one is left alone.
        if (m.exePath() != null && !m.exePath().equals(currentExe()))
            exeFd = tree.opener != null ? giveOpened(m.exePath(), O_RDONLY, -1)
                    : call("open of the executable " + m.exePath(), SYS_OPENAT, AT_FDCWD, putString(m.exePath()),
                    O_RDONLY | O_CLOEXEC, 0);
        try {
            byte[] auxv = m.auxv() == null ? new byte[0] : m.auxv();
            long rc = prctlMmMap(m, auxv, exeFd);
            if (isError(rc))
                throw new RestoreException((int) -rc, "prctl(PR_SET_MM, PR_SET_MM_MAP) refused the mm fields of "
                        + "pid " + pid + ": " + diagnoseMm(m, auxv, exeFd, rc));
        } finally {
            if (exeFd >= 0)
                call("close of the executable's fd", SYS_CLOSE, exeFd);
        }
        log.add(String.format("mm fields set (brk %x, stack %x, exe %s)", m.brk(), m.startStack(), m.exePath()));
    }

    private String currentExe() {
        try {
            return Files.readSymbolicLink(Path.of("/proc", Integer.toString(pid), "exe")).toString();
        } catch (IOException e) {
            return null;
        }
    }

    /** struct prctl_mm_map (104 bytes) at scratch + 2 pages, the auxv after it. */
    private long prctlMmMap(RestorePlan.MmFields m, byte[] auxv, long exeFd) throws IOException {
        long at = scratch + 2 * RestorePlan.PAGE;
        ByteBuffer b = le(104 + auxv.length);
        long[] f = {m.startCode(), m.endCode(), m.startData(), m.endData(), m.startBrk(), m.brk(), m.startStack(),
            m.argStart(), m.argEnd(), m.envStart(), m.envEnd()};
        for (int i = 0; i < f.length; i++)
            b.putLong(8 * i, f[i]);
        b.putLong(88, auxv.length == 0 ? 0 : at + 104);
        b.putInt(96, auxv.length);
        b.putInt(100, (int) exeFd);
        b.put(104, auxv);
        put(at, b.array());
        return t.syscall(SYS_PRCTL, PR_SET_MM, PR_SET_MM_MAP, at, 104, 0);
    }

    /** Which field the kernel refused: the kernel's own checks, then the same call without exe, then without auxv. */
    private String diagnoseMm(RestorePlan.MmFields m, byte[] auxv, long exeFd, long rc) throws IOException {
        List<String> bad = new ArrayList<>();
        String[][] order = {{"start_code", "end_code"}, {"start_data", "end_data"}, {"start_brk", "brk"},
            {"arg_start", "arg_end"}, {"env_start", "env_end"}};
        long[][] pairs = {{m.startCode(), m.endCode()}, {m.startData(), m.endData()}, {m.startBrk(), m.brk()},
            {m.argStart(), m.argEnd()}, {m.envStart(), m.envEnd()}};
        for (int i = 0; i < pairs.length; i++) {
            boolean strict = i == 0;
            if (strict ? Long.compareUnsigned(pairs[i][0], pairs[i][1]) >= 0
                    : Long.compareUnsigned(pairs[i][0], pairs[i][1]) > 0)
                bad.add(String.format("%s %x is not %s %s %x", order[i][0], pairs[i][0], strict ? "below" : "at most",
                        order[i][1], pairs[i][1]));
        }
        long[] all = {m.startCode(), m.endCode(), m.startData(), m.endData(), m.startBrk(), m.brk(), m.startStack(),
            m.argStart(), m.argEnd(), m.envStart(), m.envEnd()};
        String[] names = {"start_code", "end_code", "start_data", "end_data", "start_brk", "brk", "start_stack",
            "arg_start", "arg_end", "env_start", "env_end"};
        for (int i = 0; i < all.length; i++)
            if (Long.compareUnsigned(all[i], 0x10000) < 0 || Long.compareUnsigned(all[i], 0x7ffffffff000L) >= 0)
                bad.add(String.format("%s %x is outside the user address space", names[i], all[i]));
        if (auxv.length > 0x1a0 || auxv.length % 16 != 0)
            bad.add("auxv of " + auxv.length + " bytes (at most 416, whole pairs)");
        if (!bad.isEmpty())
            return String.join("; ", bad);
        if (exeFd >= 0 && !isError(prctlMmMap(m, auxv, -1)))
            return "the executable " + m.exePath() + " (exe_fd); the other fields were accepted without it, "
                    + "so the exe link is the stub's";
        if (auxv.length > 0 && !isError(prctlMmMap(m, new byte[0], -1)))
            return "the auxv (" + auxv.length + " bytes); the other fields were accepted without it";
        return "no single field explains errno " + -rc + (rc == -1 ? " (EPERM: CAP_SYS_ADMIN or "
                + "CAP_CHECKPOINT_RESTORE missing?)" : "");
    }

    // ---- signals, limits, credentials

    private void signals() throws IOException {
        int set = 0;
        // every struct sigaction into the scratch area at once, then the calls in one batch (INJECT_MANY)
        List<Integer> sigs = new ArrayList<>();
        ByteBuffer all = le(32 * 64);
        for (int sig = 1; sig <= 64; sig++) {
            if (sig == 9 || sig == 19)
                continue;
            RestorePlan.SigAction a = plan.sigactions()[sig - 1];
            // a child inherited its restored parent's actions: only those that differ need a call (the root's
            // stub gets every one: what it inherited from the shim or the client is not known well enough;
            // /proc's SigIgn/SigCgt do not show a SIG_DFL action's flags, and skipping those broke sig_chld)
            if (parent != null && java.util.Objects.equals(a, parent.plan.sigactions()[sig - 1]))
                continue;
            int at = 32 * sigs.size();
            if (a != null)
                all.putLong(at, a.handler()).putLong(at + 8, a.flags()).putLong(at + 16, a.restorer()).putLong(at + 24, a.mask());
            sigs.add(sig);
            if (a != null && a.handler() != 0)
                set++;
        }
        if (!sigs.isEmpty()) {
            put(scratch, java.util.Arrays.copyOf(all.array(), 32 * sigs.size()));
            int[] nrs = new int[sigs.size()];
            long[][] args = new long[sigs.size()][];
            for (int i = 0; i < nrs.length; i++) {
                nrs[i] = SYS_RT_SIGACTION;
                args[i] = new long[] {sigs.get(i), scratch + 32L * i, 0, 8};
            }
            long[] rc = t.syscalls(nrs, args);
            for (int i = 0; i < rc.length; i++)
                if (isError(rc[i]))
                    throw new RestoreException((int) -rc[i], "rt_sigaction of " + sigName(sigs.get(i)) + " failed");
        }
        altStack(t, plan.altStack());
        log.add(pid + ": signal dispositions set (" + set + " not SIG_DFL)");
    }

    private void altStack(Tracee th, RestorePlan.AltStack as) throws IOException {
        ByteBuffer b = le(24);
        if (as == null)
            b.putInt(8, SS_DISABLE);
        else
            b.putLong(0, as.sp()).putInt(8, as.flags()).putLong(16, as.size());
        put(scratch, b.array());
        call(th, "sigaltstack", SYS_SIGALTSTACK, scratch, 0);
    }

    static String sigName(int sig) {
        return sig <= SIGNAMES.length ? SIGNAMES[sig - 1] : "SIGRT" + (sig - 32);
    }

    private void rlimit(RestorePlan.Rlimit l) throws IOException {
        // from the daemon (prlimit64 on the stopped process: same uid and gids, root, at this point), which
        // costs no injection; refused (EPERM: raising a hard limit, or ids that differ) it is injected,
        // for the process's own answer
        if (LocalCalls.prlimit(pid, l.resource(), l.cur(), l.max()) == 0)
            return;
        put(scratch, le(16).putLong(0, l.cur()).putLong(8, l.max()).array());
        long rc = t.syscall(SYS_PRLIMIT64, 0, l.resource(), scratch, 0);
        if (isError(rc))
            throw new RestoreException((int) -rc, "prlimit64 of resource " + l.resource() + " to " + l.cur() + "/"
                    + l.max() + " refused" + (rc == -1 ? " (raising a hard limit needs CAP_SYS_RESOURCE, which this "
                    + "node does not have)" : ""));
    }

    private void creds(Tracee th) throws IOException {
        RestorePlan.Creds c = plan.creds();
        ByteBuffer g = le(4 * Math.max(1, c.groups().length));
        for (int i = 0; i < c.groups().length; i++)
            g.putInt(4 * i, c.groups()[i]);
        put(scratch, g.array());
        call(th, "setgroups", SYS_SETGROUPS, c.groups().length, scratch);
        call(th, "setresgid", SYS_SETRESGID, c.rgid(), c.egid(), c.sgid());
        call(th, "setresuid", SYS_SETRESUID, c.ruid(), c.euid(), c.suid());
        if (th == t) log.add(pid + ": credentials set (uid " + c.ruid() + "/" + c.euid() + "/" + c.suid() + ", gid " + c.rgid() + "/"
                + c.egid() + "/" + c.sgid() + ", " + c.groups().length + " groups)");
    }

    // ---- helpers

    long putString(String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length + 1 > 2 * RestorePlan.PAGE)
            throw new RestoreException(36, "path too long: " + s);
        byte[] z = new byte[b.length + 1];
        System.arraycopy(b, 0, z, 0, b.length);
        put(scratch, z);
        return scratch;
    }

    void put(long addr, byte[] data) throws IOException {
        t.write(addr, data);
    }

    /**
     * Syscalls collected to run in the process in one go (INJECT_MANY, its code in the area kept free
     * after the scratch area, so the calls may unmap, remap and map anything else): one resume of the
     * process instead of one per call (up to four are injected one by one). Every call runs, in order,
     * whatever the others return.
     */
    final class Batch {
        private final List<String> whats = new ArrayList<>();
        private final List<Integer> nrs = new ArrayList<>();
        private final List<long[]> args = new ArrayList<>();

        /** Adds a call; returns its index in {@link #run}'s results. */
        int add(String what, int nr, long... a) {
            whats.add(what);
            nrs.add(nr);
            args.add(a);
            return nrs.size() - 1;
        }

        boolean isEmpty() {
            return nrs.isEmpty();
        }

        /** Runs the calls; their raw results. A few go one by one: a batch costs about five round trips of its own. */
        long[] run() throws IOException {
            long[] out = new long[nrs.size()];
            if (nrs.size() <= 4) {
                for (int i = 0; i < out.length; i++) out[i] = t.syscall(nrs.get(i), args.get(i));
                return out;
            }
            return t.syscalls(nrs.stream().mapToInt(Integer::intValue).toArray(), args.toArray(long[][]::new),
                    scratch + SCRATCH_SIZE);
        }

        /** Runs the calls; the first that failed throws as {@link #call} would. */
        long[] runChecked() throws IOException {
            long[] rc = run();
            for (int i = 0; i < rc.length; i++)
                if (isError(rc[i]))
                    throw new RestoreException((int) -rc[i], "restore of pid " + pid + ": " + whats.get(i) + " failed");
            return rc;
        }
    }

    /** An injected syscall that must succeed; its failure names what it was for and the errno. */
    long call(String what, int nr, long... args) throws IOException {
        return call(t, what, nr, args);
    }

    private long call(Tracee th, String what, int nr, long... args) throws IOException {
        long r = th.syscall(nr, args);
        if (isError(r))
            throw new RestoreException((int) -r, "restore of pid " + pid + (th == t ? "" : " thread " + th.tid()) + ": "
                    + what + " failed");
        return r;
    }

    static boolean isError(long raw) {
        return raw < 0 && raw >= -4095;
    }

    private static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }
}
