package ssi.ghost.image;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The records of the image format, one Java record per kind of kernel object, each with its encoding
 * (big endian, DataOutputStream; strings are writeUTF, byte arrays and lists are an i32 count then the
 * items). The byte layout of every record is listed in docs/IMAGE-FORMAT.md; change both together and
 * bump {@link ImageFormat#VERSION}. Immutable values (arrays are not copied: do not change them after
 * construction); any thread.
 */
public final class Records {
    private Records() {}

    private static final int MAX_COUNT = 1 << 24;

    /** Who made the image, when, where, of which application. */
    public record Inventory(long createdMillis, int node, int callerUid, int rootGpid, String hostname) {
        void write(DataOutputStream o) throws IOException {
            o.writeLong(createdMillis); o.writeInt(node); o.writeInt(callerUid); o.writeInt(rootGpid); o.writeUTF(hostname);
        }
        static Inventory read(DataInputStream i) throws IOException {
            return new Inventory(i.readLong(), i.readInt(), i.readInt(), i.readInt(), i.readUTF());
        }
    }

    /**
     * One process of the tree; ssiCaps is its effective SSI capability set (CAN_CHECKPOINT = 4),
     * exitSignal the signal its parent gets when it ends (SIGCHLD = 17, 0 for none). A zombie (it
     * ended, its parent has not reaped it yet) has threads 0, no process file, and exitStatus its wait
     * status (as waitpid reports it); a live process has exitStatus -1. flags: STOPPED, it was stopped
     * by job control (SIGSTOP, SIGTSTP...) when the checkpoint came; STOP_REPORT_PENDING, its parent had
     * not collected the report of that stop yet (waitpid WUNTRACED); CONT_REPORT_PENDING, it runs and its
     * parent had not collected the report of its last continue (SIGCONT after a stop; waitpid WCONTINUED).
     */
    public record TreeEntry(int gpid, int ppid, int pgid, int sid, int uid, int ssiCaps, int threads, int exitSignal,
                            int exitStatus, int flags) {
        public static final int STOPPED = 1, STOP_REPORT_PENDING = 2, CONT_REPORT_PENDING = 4;

        /** A live, running process whose parent gets SIGCHLD. */
        public TreeEntry(int gpid, int ppid, int pgid, int sid, int uid, int ssiCaps, int threads) {
            this(gpid, ppid, pgid, sid, uid, ssiCaps, threads, 17, -1, 0);
        }
        /** A live, running process. */
        public TreeEntry(int gpid, int ppid, int pgid, int sid, int uid, int ssiCaps, int threads, int exitSignal) {
            this(gpid, ppid, pgid, sid, uid, ssiCaps, threads, exitSignal, -1, 0);
        }
        public boolean zombie() {
            return exitStatus >= 0;
        }
        public boolean stopped() {
            return (flags & STOPPED) != 0;
        }
        public boolean stopReportPending() {
            return (flags & STOP_REPORT_PENDING) != 0;
        }
        public boolean contReportPending() {
            return (flags & CONT_REPORT_PENDING) != 0;
        }
        void write(DataOutputStream o) throws IOException {
            o.writeInt(gpid); o.writeInt(ppid); o.writeInt(pgid); o.writeInt(sid); o.writeInt(uid); o.writeInt(ssiCaps);
            o.writeInt(threads); o.writeInt(exitSignal); o.writeInt(exitStatus); o.writeInt(flags);
        }
        static TreeEntry read(DataInputStream i) throws IOException {
            return new TreeEntry(i.readInt(), i.readInt(), i.readInt(), i.readInt(), i.readInt(), i.readInt(), i.readInt(),
                    i.readInt(), i.readInt(), i.readInt());
        }
    }

    /** Identity and file-system view of a process. */
    public record ProcessRec(int gpid, String comm, List<String> cmdline, String exe, String cwd, String root,
                             int personality) {
        void write(DataOutputStream o) throws IOException {
            o.writeInt(gpid); o.writeUTF(comm); strings(o, cmdline); o.writeUTF(exe); o.writeUTF(cwd); o.writeUTF(root);
            o.writeInt(personality);
        }
        static ProcessRec read(DataInputStream i) throws IOException {
            return new ProcessRec(i.readInt(), i.readUTF(), strings(i), i.readUTF(), i.readUTF(), i.readUTF(), i.readInt());
        }
    }

    /**
     * Credentials: uids and gids are {real, effective, saved, fs}; capabilities are the Linux sets
     * (inheritable, permitted, effective, bounding, ambient) as /proc/pid/status prints them.
     */
    public record Creds(int[] uids, int[] gids, int[] groups, int umask, long capInh, long capPrm, long capEff,
                        long capBnd, long capAmb, boolean noNewPrivs) {
        void write(DataOutputStream o) throws IOException {
            for (int k = 0; k < 4; k++) o.writeInt(uids[k]);
            for (int k = 0; k < 4; k++) o.writeInt(gids[k]);
            ints(o, groups);
            o.writeInt(umask);
            o.writeLong(capInh); o.writeLong(capPrm); o.writeLong(capEff); o.writeLong(capBnd); o.writeLong(capAmb);
            o.writeBoolean(noNewPrivs);
        }
        static Creds read(DataInputStream i) throws IOException {
            int[] u = new int[4], g = new int[4];
            for (int k = 0; k < 4; k++) u[k] = i.readInt();
            for (int k = 0; k < 4; k++) g[k] = i.readInt();
            return new Creds(u, g, ints(i), i.readInt(), i.readLong(), i.readLong(), i.readLong(), i.readLong(),
                    i.readLong(), i.readBoolean());
        }
    }

    /** RLIMIT_* 0..15 as prlimit64 reports them (RLIM_INFINITY is -1). */
    public record Rlimits(long[] cur, long[] max) {
        public static final int COUNT = 16;
        public static final String[] NAMES = {"cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile",
            "memlock", "as", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime"};
        void write(DataOutputStream o) throws IOException {
            o.writeInt(cur.length);
            for (int k = 0; k < cur.length; k++) { o.writeLong(cur[k]); o.writeLong(max[k]); }
        }
        static Rlimits read(DataInputStream i) throws IOException {
            int n = count(i);
            long[] c = new long[n], m = new long[n];
            for (int k = 0; k < n; k++) { c[k] = i.readLong(); m[k] = i.readLong(); }
            return new Rlimits(c, m);
        }
    }

    /**
     * One thread: user_regs_struct (27 values, kernel order, fs_base/gs_base included), the XSAVE area,
     * its blocked and pending (thread-directed) signal masks, its sigaltstack, its clear_child_tid
     * address (set_tid_address; what pthread_join waits on) and its robust futex list (head, length).
     */
    public record ThreadRec(int tid, long[] regs, byte[] xstate, long blocked, long pending, long altSp, int altFlags,
                            long altSize, long clearTid, long robustHead, long robustLen) {
        /** A thread without clear_child_tid and robust list. */
        public ThreadRec(int tid, long[] regs, byte[] xstate, long blocked, long pending, long altSp, int altFlags,
                         long altSize) {
            this(tid, regs, xstate, blocked, pending, altSp, altFlags, altSize, 0, 0, 0);
        }
        void write(DataOutputStream o) throws IOException {
            o.writeInt(tid);
            o.writeInt(regs.length);
            for (long r : regs) o.writeLong(r);
            bytes(o, xstate);
            o.writeLong(blocked); o.writeLong(pending); o.writeLong(altSp); o.writeInt(altFlags); o.writeLong(altSize);
            o.writeLong(clearTid); o.writeLong(robustHead); o.writeLong(robustLen);
        }
        static ThreadRec read(DataInputStream i) throws IOException {
            int tid = i.readInt();
            int n = count(i);
            long[] r = new long[n];
            for (int k = 0; k < n; k++) r[k] = i.readLong();
            return new ThreadRec(tid, r, bytes(i), i.readLong(), i.readLong(), i.readLong(), i.readInt(), i.readLong(),
                    i.readLong(), i.readLong(), i.readLong());
        }
    }

    /**
     * Signals queued and not yet delivered, with their siginfo (128 bytes each, PTRACE_PEEKSIGINFO):
     * tid's private queue, or the process's shared queue when tid is 0. Oldest first.
     */
    public record SigQueue(int tid, List<byte[]> siginfos) {
        void write(DataOutputStream o) throws IOException {
            o.writeInt(tid);
            o.writeInt(siginfos.size());
            for (byte[] b : siginfos) bytes(o, b);
        }
        static SigQueue read(DataInputStream i) throws IOException {
            int tid = i.readInt();
            int n = count(i);
            List<byte[]> l = new ArrayList<>(n);
            for (int k = 0; k < n; k++) {
                byte[] b = bytes(i);
                if (b.length != 128) throw new IOException("a siginfo of " + b.length + " bytes, expected 128");
                l.add(b);
            }
            return new SigQueue(tid, l);
        }
        /** si_signo of one siginfo. */
        public static int signo(byte[] si) {
            return (si[0] & 0xff) | (si[1] & 0xff) << 8 | (si[2] & 0xff) << 16 | (si[3] & 0xff) << 24;
        }
        /** si_code of one siginfo. */
        public static int code(byte[] si) {
            return (si[8] & 0xff) | (si[9] & 0xff) << 8 | (si[10] & 0xff) << 16 | (si[11] & 0xff) << 24;
        }
    }

    /** The kernel's struct sigaction of one signal (handler 0 = SIG_DFL, 1 = SIG_IGN). */
    public record SigAction(int sig, long handler, long flags, long restorer, long mask) {}

    /** Dispositions of signals 1..64 and the process-wide (shared) pending set. */
    public record SigActs(long sharedPending, List<SigAction> actions) {
        void write(DataOutputStream o) throws IOException {
            o.writeLong(sharedPending);
            o.writeInt(actions.size());
            for (SigAction a : actions) {
                o.writeInt(a.sig()); o.writeLong(a.handler()); o.writeLong(a.flags()); o.writeLong(a.restorer()); o.writeLong(a.mask());
            }
        }
        static SigActs read(DataInputStream i) throws IOException {
            long shared = i.readLong();
            int n = count(i);
            List<SigAction> l = new ArrayList<>(n);
            for (int k = 0; k < n; k++) l.add(new SigAction(i.readInt(), i.readLong(), i.readLong(), i.readLong(), i.readLong()));
            return new SigActs(shared, l);
        }
    }

    /** mm fields (/proc/pid/stat 26-28, 45-51, brk from an injected brk(0)) and the auxiliary vector. */
    public record Mm(long startCode, long endCode, long startData, long endData, long startBrk, long brk,
                     long startStack, long argStart, long argEnd, long envStart, long envEnd, byte[] auxv) {
        void write(DataOutputStream o) throws IOException {
            for (long v : new long[] {startCode, endCode, startData, endData, startBrk, brk, startStack, argStart, argEnd,
                envStart, envEnd}) o.writeLong(v);
            bytes(o, auxv);
        }
        static Mm read(DataInputStream i) throws IOException {
            return new Mm(i.readLong(), i.readLong(), i.readLong(), i.readLong(), i.readLong(), i.readLong(), i.readLong(),
                    i.readLong(), i.readLong(), i.readLong(), i.readLong(), bytes(i));
        }
    }

    public static final int VMA_ANON = 0, VMA_FILE = 1, VMA_HEAP = 2, VMA_STACK = 3, VMA_VDSO = 4, VMA_VVAR = 5,
            VMA_VSYSCALL = 6;
    private static final String[] VMA_KINDS = {"anon", "file", "heap", "stack", "vdso", "vvar", "vsyscall"};

    public static String vmaKind(int k) { return k >= 0 && k < VMA_KINDS.length ? VMA_KINDS[k] : "kind" + k; }

    public static final int PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;

    /**
     * One mapping as /proc/pid/maps shows it; prot is PROT_* bits, shared is 's' (else private 'p'), vmFlags
     * the VmFlags line of smaps (e.g. "rd wr mr mw me ac gd").
     */
    public record Vma(long start, long end, int prot, boolean shared, long offset, int devMajor, int devMinor,
                      long inode, String path, int kind, String vmFlags) {
        public long pages() { return (end - start) / ImageFormat.PAGE_SIZE; }
        void write(DataOutputStream o) throws IOException {
            o.writeLong(start); o.writeLong(end); o.writeInt(prot); o.writeBoolean(shared); o.writeLong(offset);
            o.writeInt(devMajor); o.writeInt(devMinor); o.writeLong(inode); o.writeUTF(path); o.writeInt(kind);
            o.writeUTF(vmFlags);
        }
        static Vma read(DataInputStream i) throws IOException {
            return new Vma(i.readLong(), i.readLong(), i.readInt(), i.readBoolean(), i.readLong(), i.readInt(), i.readInt(),
                    i.readLong(), i.readUTF(), i.readInt(), i.readUTF());
        }
    }

    /** FD_TTY (version 3): the process's controlling terminal; a restart gives it the caller's terminal instead. */
    public static final int FD_REG = 1, FD_REG_DELETED = 2, FD_CHR = 3, FD_PIPE = 4, FD_UNIX = 5, FD_TTY = 6;
    /** Anonymous inodes; each has a record of its own state (EVENTFD, TIMERFD, SIGNALFD, EPOLL) for its fd. */
    public static final int FD_EVENTFD = 7, FD_TIMERFD = 8, FD_SIGNALFD = 9, FD_EPOLL = 10;
    /**
     * A named pipe (FIFO) opened by path: path, flags and the FIFO's inode; like FD_PIPE, aux is the pipe's
     * capacity and the first fd (tree order) of the FIFO holds the bytes that were queued in it.
     */
    public static final int FD_FIFO = 11;
    private static final String[] FD_KINDS = {"?", "file", "deleted file", "device", "pipe", "unix socket", "terminal",
        "eventfd", "timerfd", "signalfd", "epoll", "named pipe"};

    public static String fdKind(int k) { return k > 0 && k < FD_KINDS.length ? FD_KINDS[k] : "kind" + k; }

    /**
     * One open fd. flags are the file status flags of fdinfo (O_ACCMODE, O_APPEND...), cloexec its
     * FD_CLOEXEC; inode is the file's (or pipe's, or socket's) inode. fileId names the open file
     * description: fds of the application with the same fileId share one (dup, fork: one offset, one
     * set of status flags); 0 in images that do not say. A deleted file's bytes, the bytes queued in a
     * pipe (on its read end's record) or on a socket (on the receiving socket's record) are in the file
     * data file at dataOffset (dataLength bytes, CRC32C dataCrc); -1 when there are none. peer is the
     * inode of a unix socket's peer; aux the pipe's capacity (F_GETPIPE_SZ) or the socket's type
     * (SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5).
     */
    public record Fd(int fd, int kind, int flags, boolean cloexec, long pos, String path, long inode, long dataOffset,
                     long dataLength, int dataCrc, int fileId, long peer, int aux) {
        /** An fd of its own open file description, with no peer. */
        public Fd(int fd, int kind, int flags, boolean cloexec, long pos, String path, long inode, long dataOffset,
                  long dataLength, int dataCrc) {
            this(fd, kind, flags, cloexec, pos, path, inode, dataOffset, dataLength, dataCrc, 0, 0, 0);
        }
        /**
         * The pid N of a path in N's /proc entry ("/proc/N" or "/proc/N/..."), else -1. Such a file is
         * opened again by path once process N exists again; a checkpoint takes it only when N is the
         * process itself or one of its ancestors in the application (they exist when it opens its fds).
         */
        public static int procEntryPid(String path) {
            if (path == null || !path.startsWith("/proc/")) return -1;
            int end = path.indexOf('/', 6);
            String n = end < 0 ? path.substring(6) : path.substring(6, end);
            if (n.isEmpty() || n.length() > 9 || !n.chars().allMatch(Character::isDigit)) return -1;
            return Integer.parseInt(n);
        }

        public Fd withData(long offset, long length, int crc) {
            return new Fd(fd, kind, flags, cloexec, pos, path, inode, offset, length, crc, fileId, peer, aux);
        }
        public Fd withFileId(int id) {
            return new Fd(fd, kind, flags, cloexec, pos, path, inode, dataOffset, dataLength, dataCrc, id, peer, aux);
        }
        void write(DataOutputStream o) throws IOException {
            o.writeInt(fd); o.writeInt(kind); o.writeInt(flags); o.writeBoolean(cloexec); o.writeLong(pos); o.writeUTF(path);
            o.writeLong(inode); o.writeLong(dataOffset); o.writeLong(dataLength); o.writeInt(dataCrc);
            o.writeInt(fileId); o.writeLong(peer); o.writeInt(aux);
        }
        static Fd read(DataInputStream i) throws IOException {
            return new Fd(i.readInt(), i.readInt(), i.readInt(), i.readBoolean(), i.readLong(), i.readUTF(), i.readLong(),
                    i.readLong(), i.readLong(), i.readInt(), i.readInt(), i.readLong(), i.readInt());
        }
    }

    /**
     * pages consecutive pages from page index firstPage of a VMA, stored at fileOffset of the process's
     * page stripe file ({@link ImageFormat#pagesFile(int, int)}).
     */
    public record PageRun(long firstPage, int pages, int file, long fileOffset, int crc) {
        /** A run in the first page file. */
        public PageRun(long firstPage, int pages, long fileOffset, int crc) {
            this(firstPage, pages, 0, fileOffset, crc);
        }
    }

    /** Which pages of the VMA starting at vmaStart are stored, and where. */
    public record Pagemap(long vmaStart, List<PageRun> runs) {
        public long pages() {
            long n = 0;
            for (PageRun r : runs) n += r.pages();
            return n;
        }
        void write(DataOutputStream o) throws IOException {
            o.writeLong(vmaStart);
            o.writeInt(runs.size());
            for (PageRun r : runs) {
                o.writeLong(r.firstPage()); o.writeInt(r.pages()); o.writeByte(r.file()); o.writeLong(r.fileOffset()); o.writeInt(r.crc());
            }
        }
        static Pagemap read(DataInputStream i) throws IOException {
            long start = i.readLong();
            int n = count(i);
            List<PageRun> l = new ArrayList<>(n);
            for (int k = 0; k < n; k++) {
                long first = i.readLong();
                int pages = i.readInt(), file = i.readUnsignedByte();
                if (file >= ImageFormat.MAX_PAGE_STRIPES) throw new IOException("a page run of the VMA at 0x" + Long.toHexString(start)
                        + " names page file " + file + " (at most " + ImageFormat.MAX_PAGE_STRIPES + " exist)");
                l.add(new PageRun(first, pages, file, i.readLong(), i.readInt()));
            }
            return new Pagemap(start, l);
        }
    }

    /** A thread's rseq registration (PTRACE_GET_RSEQ_CONFIGURATION); only threads that have one get a record. */
    public record RseqRec(int tid, long pointer, int size, int signature) {
        void write(DataOutputStream o) throws IOException {
            o.writeInt(tid); o.writeLong(pointer); o.writeInt(size); o.writeInt(signature);
        }
        static RseqRec read(DataInputStream i) throws IOException {
            return new RseqRec(i.readInt(), i.readLong(), i.readInt(), i.readInt());
        }
    }

    /**
     * A regular file the process maps or has open by path (or runs), as stat(2) saw it at the checkpoint:
     * a restart refuses when the file is not the same any more.
     */
    public record FileStat(String path, long dev, long inode, long size, long mtimeNanos) {
        void write(DataOutputStream o) throws IOException {
            o.writeUTF(path); o.writeLong(dev); o.writeLong(inode); o.writeLong(size); o.writeLong(mtimeNanos);
        }
        static FileStat read(DataInputStream i) throws IOException {
            return new FileStat(i.readUTF(), i.readLong(), i.readLong(), i.readLong(), i.readLong());
        }
    }

    /**
     * The image an incremental image builds on: its directory relative to this image's (so a chain moved
     * as a whole still holds), when it was made, its root process, and its {@link Image#digest digest}
     * (CRC32C of its metadata files, which hold the CRC32C of every page chunk), so a parent replaced by
     * another image is detected.
     */
    public record Parent(String path, long createdMillis, int rootGpid, int digest) {
        void write(DataOutputStream o) throws IOException {
            o.writeUTF(path); o.writeLong(createdMillis); o.writeInt(rootGpid); o.writeInt(digest);
        }
        static Parent read(DataInputStream i) throws IOException {
            return new Parent(i.readUTF(), i.readLong(), i.readInt(), i.readInt());
        }
    }

    /** pages consecutive pages from page index firstPage of a VMA. */
    public record PageSpan(long firstPage, int pages) {}

    /**
     * Present pages of the VMA starting at vmaStart whose contents did not change since the parent image:
     * they are read from the newest image of the parent chain that stores them. Runs in page order, not
     * overlapping each other nor the VMA's PAGEMAP runs.
     */
    public record ParentPages(long vmaStart, List<PageSpan> spans) {
        public long pages() {
            long n = 0;
            for (PageSpan s : spans) n += s.pages();
            return n;
        }
        void write(DataOutputStream o) throws IOException {
            o.writeLong(vmaStart);
            o.writeInt(spans.size());
            for (PageSpan s : spans) { o.writeLong(s.firstPage()); o.writeInt(s.pages()); }
        }
        static ParentPages read(DataInputStream i) throws IOException {
            long start = i.readLong();
            int n = count(i);
            List<PageSpan> l = new ArrayList<>(n);
            for (int k = 0; k < n; k++) l.add(new PageSpan(i.readLong(), i.readInt()));
            return new ParentPages(start, l);
        }
    }

    /** getitimer of ITIMER_REAL, VIRTUAL, PROF: per timer interval sec, usec, value sec, usec. */
    public record ITimers(long[] values) {
        void write(DataOutputStream o) throws IOException {
            o.writeInt(values.length);
            for (long v : values) o.writeLong(v);
        }
        static ITimers read(DataInputStream i) throws IOException {
            int n = count(i);
            long[] v = new long[n];
            for (int k = 0; k < n; k++) v[k] = i.readLong();
            return new ITimers(v);
        }
    }

    /**
     * The state of an anonymous-inode fd (FD_EVENTFD, FD_TIMERFD, FD_SIGNALFD, FD_EPOLL) of this process, as
     * its fdinfo shows it; fd is the FD record it belongs to. Every fd of such a kind has one (fds sharing
     * one open file description each carry the same state).
     */
    public sealed interface FdState permits EventFd, TimerFd, SignalFd, Epoll {
        int fd();
        int recordType();
        void write(DataOutputStream o) throws IOException;
    }

    /** eventfd: its counter and whether it is an EFD_SEMAPHORE one. */
    public record EventFd(int fd, long count, boolean semaphore) implements FdState {
        public int recordType() { return ImageFormat.REC_EVENTFD; }
        public void write(DataOutputStream o) throws IOException {
            o.writeInt(fd); o.writeLong(count); o.writeBoolean(semaphore);
        }
        static EventFd read(DataInputStream i) throws IOException {
            return new EventFd(i.readInt(), i.readLong(), i.readBoolean());
        }
    }

    /**
     * timerfd: its clock, the expirations not read yet (ticks), the timerfd_settime flags (TFD_TIMER_ABSTIME 1,
     * TFD_TIMER_CANCEL_ON_SET 2), the time left to the next expiration (relative, as fdinfo shows it; 0 0:
     * disarmed) and the interval.
     */
    public record TimerFd(int fd, int clockId, long ticks, int settimeFlags, long valueSec, long valueNsec,
                          long intervalSec, long intervalNsec) implements FdState {
        public int recordType() { return ImageFormat.REC_TIMERFD; }
        public void write(DataOutputStream o) throws IOException {
            o.writeInt(fd); o.writeInt(clockId); o.writeLong(ticks); o.writeInt(settimeFlags);
            o.writeLong(valueSec); o.writeLong(valueNsec); o.writeLong(intervalSec); o.writeLong(intervalNsec);
        }
        static TimerFd read(DataInputStream i) throws IOException {
            return new TimerFd(i.readInt(), i.readInt(), i.readLong(), i.readInt(), i.readLong(), i.readLong(), i.readLong(),
                    i.readLong());
        }
    }

    /** signalfd: the signals it takes (bit s-1 = signal s). */
    public record SignalFd(int fd, long sigmask) implements FdState {
        public int recordType() { return ImageFormat.REC_SIGNALFD; }
        public void write(DataOutputStream o) throws IOException {
            o.writeInt(fd); o.writeLong(sigmask);
        }
        static SignalFd read(DataInputStream i) throws IOException {
            return new SignalFd(i.readInt(), i.readLong());
        }
    }

    /**
     * One file an epoll set watches: tfd is the fd number it was added by (an fd of this process that is
     * still that file at the checkpoint), inode the file's, events the epoll_event mask, data its data.
     */
    public record EpollTarget(int tfd, long inode, int events, long data) {}

    /** An epoll set: what it watches, in fdinfo order. */
    public record Epoll(int fd, List<EpollTarget> targets) implements FdState {
        public int recordType() { return ImageFormat.REC_EPOLL; }
        public void write(DataOutputStream o) throws IOException {
            o.writeInt(fd);
            o.writeInt(targets.size());
            for (EpollTarget t : targets) { o.writeInt(t.tfd()); o.writeLong(t.inode()); o.writeInt(t.events()); o.writeLong(t.data()); }
        }
        static Epoll read(DataInputStream i) throws IOException {
            int fd = i.readInt();
            int n = count(i);
            List<EpollTarget> l = new ArrayList<>(n);
            for (int k = 0; k < n; k++) l.add(new EpollTarget(i.readInt(), i.readLong(), i.readInt(), i.readLong()));
            return new Epoll(fd, l);
        }
    }

    /** How a POSIX timer notifies (sigev_notify): SIGEV_SIGNAL 0, SIGEV_NONE 1, SIGEV_THREAD_ID 4. */
    public static final int SIGEV_SIGNAL = 0, SIGEV_NONE = 1, SIGEV_THREAD_ID = 4;

    /**
     * A POSIX timer (timer_create) of the process: its id, clock, how it notifies (sigev_notify, SIGEV_*, with the thread
     * for SIGEV_THREAD_ID), the signal and sigev_value it sends, the time left to the next expiration
     * (relative; 0 0: disarmed) and the interval (timer_gettime), and its overrun count (timer_getoverrun,
     * informative: a restore cannot set it).
     */
    public record PosixTimer(int id, int clockId, int how, int tid, int signal, long sigval, long valueSec,
                             long valueNsec, long intervalSec, long intervalNsec, int overrun) {
        void write(DataOutputStream o) throws IOException {
            o.writeInt(id); o.writeInt(clockId); o.writeInt(how); o.writeInt(tid); o.writeInt(signal); o.writeLong(sigval);
            o.writeLong(valueSec); o.writeLong(valueNsec); o.writeLong(intervalSec); o.writeLong(intervalNsec);
            o.writeInt(overrun);
        }
        static PosixTimer read(DataInputStream i) throws IOException {
            return new PosixTimer(i.readInt(), i.readInt(), i.readInt(), i.readInt(), i.readInt(), i.readLong(), i.readLong(),
                    i.readLong(), i.readLong(), i.readLong(), i.readInt());
        }
    }

    /**
     * A SysV shared memory segment the application uses (attached by its processes, or made by one of
     * them and attached by nobody): its id and key (0: IPC_PRIVATE), mode (permission bits), owner and
     * creator, size in bytes, whether it was removed (IPC_RMID) while still attached, and where its
     * pages that hold data are in {@link ImageFormat#SYSV_SHM_DATA} (the holes read as zeros).
     */
    public record SysvShm(int id, int key, int mode, int uid, int gid, int cuid, int cgid, long size, boolean removed,
                          List<ShmRun> runs) {
        public long pages() {
            return (size + ImageFormat.PAGE_SIZE - 1) / ImageFormat.PAGE_SIZE;
        }

        void write(DataOutputStream o) throws IOException {
            o.writeInt(id); o.writeInt(key); o.writeInt(mode); o.writeInt(uid); o.writeInt(gid); o.writeInt(cuid);
            o.writeInt(cgid); o.writeLong(size); o.writeBoolean(removed);
            o.writeInt(runs.size());
            for (ShmRun r : runs) {
                o.writeLong(r.offset()); o.writeLong(r.length()); o.writeLong(r.dataOffset()); o.writeInt(r.crc());
            }
        }

        static SysvShm read(DataInputStream i) throws IOException {
            int id = i.readInt(), key = i.readInt(), mode = i.readInt(), uid = i.readInt(), gid = i.readInt(),
                    cuid = i.readInt(), cgid = i.readInt();
            long size = i.readLong();
            boolean removed = i.readBoolean();
            int n = count(i);
            List<ShmRun> runs = new java.util.ArrayList<>(n);
            for (int k = 0; k < n; k++) runs.add(new ShmRun(i.readLong(), i.readLong(), i.readLong(), i.readInt()));
            if (id < 0 || size <= 0) throw new IOException("SysV segment id " + id + " of size " + size);
            for (ShmRun r : runs)
                if (r.offset() < 0 || r.length() <= 0 || r.offset() + r.length() > size)
                    throw new IOException("a data run " + r.offset() + "+" + r.length() + " outside the segment of " + size + " bytes");
            return new SysvShm(id, key, mode, uid, gid, cuid, cgid, size, removed, List.copyOf(runs));
        }
    }

    /** length bytes of a segment from offset on, stored at dataOffset with their CRC32C. */
    public record ShmRun(long offset, long length, long dataOffset, int crc) { }

    static int count(DataInputStream i) throws IOException {
        int n = i.readInt();
        if (n < 0 || n > MAX_COUNT) throw new IOException("count " + n + " out of range");
        return n;
    }

    static void strings(DataOutputStream o, List<String> l) throws IOException {
        o.writeInt(l.size());
        for (String s : l) o.writeUTF(s);
    }

    static List<String> strings(DataInputStream i) throws IOException {
        int n = count(i);
        List<String> l = new ArrayList<>(n);
        for (int k = 0; k < n; k++) l.add(i.readUTF());
        return l;
    }

    static void ints(DataOutputStream o, int[] a) throws IOException {
        o.writeInt(a.length);
        for (int v : a) o.writeInt(v);
    }

    static int[] ints(DataInputStream i) throws IOException {
        int[] a = new int[count(i)];
        for (int k = 0; k < a.length; k++) a[k] = i.readInt();
        return a;
    }

    static void bytes(DataOutputStream o, byte[] a) throws IOException {
        o.writeInt(a.length);
        o.write(a);
    }

    static byte[] bytes(DataInputStream i) throws IOException {
        byte[] a = new byte[count(i)];
        i.readFully(a);
        return a;
    }
}
