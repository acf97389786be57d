package ssi.ghost.restore;

import ssi.ghost.image.Records;
import ssi.shim.Regs;

import java.io.IOException;
import java.util.List;
import java.util.Objects;

/**
 * Everything {@link Restorer} needs to rebuild one process of a tree (its threads included),
 * independent of how it was captured ({@link ImageRestore} maps the checkpoint image onto it; the tree
 * around it, groups and sessions, is {@link TreeRestorer}'s). Addresses are the process's own; all
 * values are x86_64 Linux ones. Immutable apart from what the page sources produce.
 *
 * <p>Not carried: personality, scheduling attributes, POSIX timers and the fd kinds the checkpoint
 * refuses.
 *
 * @param pid         the pid to restore at (the node must have it free)
 * @param vmas        the memory map, in address order, without the kernel's special mappings
 * @param specials    the kernel's special mappings ([vdso], [vvar], [vvar_vclock]) where the process
 *                    had them; [vsyscall] is fixed and left out
 * @param regs        the thread's general registers as captured (a syscall it was stopped in is
 *                    restarted, see {@link Restorer})
 * @param xstate      the XSAVE area (PTRACE_GETREGSET NT_X86_XSTATE), or null to keep the stub's
 * @param mm          the mm fields for PR_SET_MM_MAP
 * @param fds         the open files
 * @param cwd         the working directory
 * @param umask       the file mode creation mask
 * @param sigactions  64 entries, index sig - 1; null means SIG_DFL (entries for SIGKILL, SIGSTOP ignored)
 * @param blockedMask the blocked signal mask (bit sig - 1)
 * @param altStack    the signal alternate stack, or null for none
 * @param rlimits     resource limits to set (others stay as the stub has them)
 * @param creds       credentials, set last
 * @param comm        the thread's name (PR_SET_NAME), or null
 * @param tidAddress  set_tid_address, or 0 to leave it unset
 * @param robustList  set_robust_list head and length, or null
 * @param noNewPrivs  PR_SET_NO_NEW_PRIVS
 * @param rseq        the rseq area to register (glibc registers one per thread), or null for none
 * @param threads     the other threads
 * @param sigqueues   queued signals with their siginfo
 * @param itimers     ITIMER_REAL, VIRTUAL, PROF as (interval sec, usec, value sec, usec) each, or null
 * @param timers      the POSIX timers, made again with their ids (the image's own records: they say all
 *                    timer_create and timer_settime need)
 */
public record RestorePlan(int pid, List<Vma> vmas, List<Special> specials, Regs regs, byte[] xstate, MmFields mm,
                          List<FdPlan> fds, String cwd, int umask, SigAction[] sigactions, long blockedMask,
                          AltStack altStack, List<Rlimit> rlimits, Creds creds, String comm, long tidAddress,
                          RobustList robustList, boolean noNewPrivs, Rseq rseq, List<ThreadPlan> threads,
                          List<SigQueue> sigqueues, long[] itimers, List<Records.PosixTimer> timers) {
    /** A process without POSIX timers. */
    public RestorePlan(int pid, List<Vma> vmas, List<Special> specials, Regs regs, byte[] xstate, MmFields mm,
                       List<FdPlan> fds, String cwd, int umask, SigAction[] sigactions, long blockedMask,
                       AltStack altStack, List<Rlimit> rlimits, Creds creds, String comm, long tidAddress,
                       RobustList robustList, boolean noNewPrivs, Rseq rseq, List<ThreadPlan> threads,
                       List<SigQueue> sigqueues, long[] itimers) {
        this(pid, vmas, specials, regs, xstate, mm, fds, cwd, umask, sigactions, blockedMask, altStack, rlimits, creds,
                comm, tidAddress, robustList, noNewPrivs, rseq, threads, sigqueues, itimers, List.of());
    }

    /** A single-threaded process without queued signals. */
    public RestorePlan(int pid, List<Vma> vmas, List<Special> specials, Regs regs, byte[] xstate, MmFields mm,
                       List<FdPlan> fds, String cwd, int umask, SigAction[] sigactions, long blockedMask,
                       AltStack altStack, List<Rlimit> rlimits, Creds creds, String comm, long tidAddress,
                       RobustList robustList, boolean noNewPrivs, Rseq rseq) {
        this(pid, vmas, specials, regs, xstate, mm, fds, cwd, umask, sigactions, blockedMask, altStack, rlimits, creds,
                comm, tidAddress, robustList, noNewPrivs, rseq, List.of(), List.of(), null, List.of());
    }

    public static final int PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    public static final long PAGE = 4096;

    public RestorePlan {
        Objects.requireNonNull(vmas, "vmas");
        Objects.requireNonNull(specials, "specials");
        Objects.requireNonNull(regs, "regs");
        Objects.requireNonNull(mm, "mm");
        Objects.requireNonNull(fds, "fds");
        Objects.requireNonNull(cwd, "cwd");
        Objects.requireNonNull(sigactions, "sigactions");
        Objects.requireNonNull(rlimits, "rlimits");
        Objects.requireNonNull(creds, "creds");
        if (sigactions.length != 64)
            throw new IllegalArgumentException("64 sigactions (index sig - 1), not " + sigactions.length);
        vmas = List.copyOf(vmas);
        specials = List.copyOf(specials);
        fds = List.copyOf(fds);
        rlimits = List.copyOf(rlimits);
        threads = List.copyOf(threads);
        sigqueues = List.copyOf(sigqueues);
        timers = timers == null ? List.of() : List.copyOf(timers);
        sigactions = sigactions.clone();
        long prevEnd = 0;
        for (Vma v : vmas) {
            if (v.start() < prevEnd)
                throw new IllegalArgumentException("VMAs overlap or are out of order at " + v);
            prevEnd = v.end();
        }
    }

    /**
     * The bytes of the pages that have contents (anonymous pages, private file pages that were written):
     * runs of whole pages in address order, inside the VMA. Called once, on the restoring thread.
     */
    @FunctionalInterface
    public interface PageSource {
        void forEachRun(PageSink sink) throws IOException;

        /**
         * The same runs as ranges of files the daemon holds open (each run names its fd): the restorer
         * then copies them straight from the file into the process (no byte through the link), checking
         * each run's CRC32C on the way unless {@link #checked} says it was checked before the plan was
         * made. Empty (the default) when the pages are only available through {@link #forEachRun}.
         */
        default List<FileRun> fileRuns() {
            return List.of();
        }

        /** Whether the {@link #fileRuns}' checksums were checked already (the copy then need not). */
        default boolean checked() {
            return true;
        }

        /** Throws the image's checksum error for run r, whose bytes have CRC32C computed (not r.crc()). */
        default IOException mismatch(FileRun r, int computed) {
            return new IOException(String.format("checksum mismatch at 0x%x (CRC32C stored %08x, computed %08x)", r.addr(),
                    r.crc(), computed));
        }

        /** Reads run r from the file and checks its CRC32C (for a copy that does not see the bytes). */
        default void verify(FileRun r) throws IOException {
        }

        PageSource NONE = sink -> { };
    }

    /**
     * A run of whole pages at addr, length bytes at fileOffset of the file the daemon holds as fd (an fd
     * of this JVM: the image's page file the run is in), with their CRC32C.
     */
    public record FileRun(long addr, int fd, long fileOffset, long length, int crc) { }

    @FunctionalInterface
    public interface PageSink {
        /** data.length is a multiple of the page size; addr is page aligned. */
        void accept(long addr, byte[] data) throws IOException;
    }

    /**
     * One VMA: [start, end), final protection (PROT_* bits), shared or private, stack-like (VM_GROWSDOWN),
     * a file path and offset, or path null for anonymous memory.
     */
    public record Vma(long start, long end, int prot, boolean shared, boolean growsDown, String path, long offset,
                      PageSource pages, long shmemId) {
        /** Not shared anonymous memory. */
        public Vma(long start, long end, int prot, boolean shared, boolean growsDown, String path, long offset,
                   PageSource pages) {
            this(start, end, prot, shared, growsDown, path, offset, pages, 0);
        }

        public Vma {
            if ((start & (PAGE - 1)) != 0 || (end & (PAGE - 1)) != 0 || end <= start)
                throw new IllegalArgumentException(String.format("VMA %x-%x is not whole pages", start, end));
            if ((offset & (PAGE - 1)) != 0)
                throw new IllegalArgumentException("file offset " + offset + " is not page aligned");
            Objects.requireNonNull(pages, "pages");
        }

        public long length() {
            return end - start;
        }

        @Override
        public String toString() {
            return String.format("%x-%x %s%s%s%s %s%s", start, end, (prot & PROT_READ) != 0 ? "r" : "-",
                    (prot & PROT_WRITE) != 0 ? "w" : "-", (prot & PROT_EXEC) != 0 ? "x" : "-", shared ? "s" : "p",
                    path == null ? "anon" : path, path == null ? "" : "@" + Long.toHexString(offset));
        }
    }

    /** A special mapping of the kernel, by its name in /proc/pid/maps ("[vdso]", "[vvar]", "[vvar_vclock]"). */
    public record Special(String name, long start, long end) { }

    /** The fields of struct prctl_mm_map; exePath is opened in the process for its exe_fd (null: keep). */
    public record MmFields(long startCode, long endCode, long startData, long endData, long startBrk, long brk,
                           long startStack, long argStart, long argEnd, long envStart, long envEnd, byte[] auxv,
                           String exePath) { }

    /**
     * An fd: kind FILE is opened by path with its open flags (O_APPEND, O_NONBLOCK, O_CLOEXEC...) and
     * position; PIPE and UNIX are made with pipe2/socketpair together with their other end (object is
     * the pipe's or socket's inode, peer the socket peer's inode, aux the pipe capacity or socket type).
     * fileId names the open file description: fds with one fileId share it (0: its own). queued are the
     * bytes to put back in the pipe, or to send to the socket from its peer (null: none). EVENTFD, TIMERFD,
     * SIGNALFD and EPOLL are made with eventfd2, timerfd_create, signalfd4, epoll_create1 from state (the
     * image's record of that fd: it holds exactly what those calls need); an epoll set last, once every
     * file it watches is in place.
     */
    public record FdPlan(int fd, int kind, String path, int flags, long pos, int fileId, long object, long peer, int aux,
                         QueuedBytes queued, Records.FdState state) {
        /**
         * FILE: a file of the caller's, opened with the caller's rights when the restart has an
         * {@link Opener}; PRIVATE: a file the restart made or checked itself (a deleted file's copy in
         * its private directory, the caller's terminal), opened by path in the process.
         */
        public static final int FILE = 1, PIPE = 2, UNIX = 3, PRIVATE = 4, EVENTFD = 5, TIMERFD = 6, SIGNALFD = 7, EPOLL = 8;
        /**
         * A named pipe, reopened by path with its flags (object: its inode, aux: its capacity); the first
         * open of it in the restore refills the bytes that were queued in it.
         */
        public static final int FIFO = 9;

        /** An fd without anonymous-inode state. */
        public FdPlan(int fd, int kind, String path, int flags, long pos, int fileId, long object, long peer, int aux,
                      QueuedBytes queued) {
            this(fd, kind, path, flags, pos, fileId, object, peer, aux, queued, null);
        }

        /** A file opened by path, of its own. */
        public FdPlan(int fd, String path, int flags, long pos) {
            this(fd, FILE, path, flags, pos, 0, 0, 0, 0, null, null);
        }
    }

    /**
     * Opens a file for the process with the restart caller's rights (in the daemon, with the caller's
     * file-system identity) and returns the daemon's fd, which the restorer hands over (GIVEFD) and
     * closes: a path swapped between the restart's checks and the open can then not make root open it.
     */
    @FunctionalInterface
    public interface Opener {
        int open(String path, int flags) throws IOException;
    }

    /** Bytes read on demand from the image (checksummed). */
    @FunctionalInterface
    public interface QueuedBytes {
        byte[] read() throws IOException;
    }

    /**
     * A thread other than the main one: tid, registers, XSAVE area (null: the creating thread's), blocked
     * mask, alternate stack (null: none), rseq (null: none), clear_child_tid (0: none), robust list (null).
     */
    public record ThreadPlan(int tid, Regs regs, byte[] xstate, long blockedMask, AltStack altStack, Rseq rseq,
                             long clearTid, RobustList robustList) { }

    /** Queued signals (siginfo, 128 bytes each) of thread tid, or of the process when tid is 0. */
    public record SigQueue(int tid, List<byte[]> siginfos) { }

    /** The kernel's struct sigaction (rt_sigaction): handler, flags, restorer, mask. */
    public record SigAction(long handler, long flags, long restorer, long mask) { }

    public record AltStack(long sp, int flags, long size) { }

    /** RLIMIT_* number, soft and hard limit (-1 = RLIM_INFINITY). */
    public record Rlimit(int resource, long cur, long max) { }

    public record Creds(int ruid, int euid, int suid, int rgid, int egid, int sgid, int[] groups) {
        public Creds {
            groups = groups.clone();
        }
    }

    public record RobustList(long head, long len) { }

    /** An rseq registration: area address, registered length, abort signature. */
    public record Rseq(long pointer, int size, int signature) { }
}
