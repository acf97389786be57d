package ssi.ghost.image;

import ssi.ghost.image.Records.Fd;
import ssi.ghost.image.Records.Pagemap;
import ssi.ghost.image.Records.SigAction;
import ssi.ghost.image.Records.ThreadRec;
import ssi.ghost.image.Records.TreeEntry;
import ssi.ghost.image.Records.Vma;

import java.io.PrintWriter;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;

/**
 * `ssi image show`: an image as text a person reads. The tree first, then per process its
 * credentials, cwd, rlimits, signal handlers that are not SIG_DFL, masks, threads, VMAs with their
 * stored page counts and fds. Stateless; any thread.
 */
public final class ImagePrinter {
    private ImagePrinter() {}

    private static final long RLIM_INFINITY = -1;

    public static void print(Image img, long verifiedBytes, PrintWriter out) {
        print(img, null, null, verifiedBytes, out);
    }

    /**
     * An image with its chain of parent images (null for a full image, or when chainError says why the
     * chain cannot be used): the parent is named, and per VMA which image of the chain holds its pages.
     */
    public static void print(Image img, PageChain chain, String chainError, long verifiedBytes, PrintWriter out) {
        Records.Inventory inv = img.inventory();
        out.printf("image %s: format version %d%n", img.dir(), ImageFormat.VERSION);
        out.printf("created %s on node %d (%s) by uid %d; root process %d%n", Instant.ofEpochMilli(inv.createdMillis()),
                inv.node(), inv.hostname(), inv.callerUid(), inv.rootGpid());
        Records.Parent parent = img.parent();
        if (parent != null) {
            out.printf("incremental: builds on the parent image %s (made %s, digest %08x)%n", parent.path(),
                    Instant.ofEpochMilli(parent.createdMillis()), parent.digest());
            if (chain != null) {
                StringBuilder b = new StringBuilder();
                for (int i = 0; i < chain.images().size(); i++) {
                    b.append(i == 0 ? "" : " <- ").append("[").append(i).append("] ").append(chain.images().get(i).dir());
                }
                out.printf("chain of %d images, newest first: %s%n", chain.images().size(), b);
            } else {
                out.printf("chain: cannot be used: %s%n", chainError);
            }
        }
        long pages = 0, inParent = 0;
        for (ProcessImage p : img.processes().values()) {
            pages += p.storedPages();
            inParent += p.parentPageCount();
        }
        out.printf("%d process(es), %d page(s) stored (%.1f MiB)%s%s%n", img.tree().size(), pages,
                pages * ImageFormat.PAGE_SIZE / 1048576.0,
                parent != null ? String.format(", %d page(s) in the parent chain (%.1f MiB)", inParent,
                        inParent * ImageFormat.PAGE_SIZE / 1048576.0) : "",
                verifiedBytes >= 0 ? (chain != null ? ", every checksum of the chain verified" : ", every checksum verified") : "");
        out.println();
        out.println("tree:");
        Map<Integer, Integer> depth = new HashMap<>();
        for (TreeEntry e : img.tree()) {
            int d = depth.getOrDefault(e.ppid(), -1) + 1;
            depth.put(e.gpid(), d);
            ProcessImage p = img.processes().get(e.gpid());
            out.printf("  %s%d  ppid %d pgid %d sid %d uid %d threads %d ssi-caps %s%s  %s%n", "  ".repeat(d), e.gpid(),
                    e.ppid(), e.pgid(), e.sid(), e.uid(), e.threads(), ssiCaps(e.ssiCaps()),
                    e.exitSignal() == 17 ? "" : " exit-signal " + (e.exitSignal() == 0 ? "none" : Signals.name(e.exitSignal())),
                    e.zombie() ? "(zombie, " + status(e.exitStatus()) + ")" : e.stopped() ? (e.stopReportPending() ? "(stopped, the stop not collected by the parent yet) " : "(stopped) ") + (p == null ? "?"
                    : String.join(" ", p.process().cmdline())) : (e.contReportPending() ? "(continued, not collected by the parent yet) " : "")
                    + (p == null ? "?" : String.join(" ", p.process().cmdline())));
        }
        if (!img.sysvShm().isEmpty()) {
            out.println();
            out.printf("SysV shared memory (%d):%n", img.sysvShm().size());
            for (Records.SysvShm x : img.sysvShm()) {
                long stored = x.runs().stream().mapToLong(Records.ShmRun::length).sum();
                out.printf("  shmid %d key %s mode 0%o owner %d:%d creator %d:%d size %d, %d bytes stored%s%n", x.id(),
                        x.key() == 0 ? "IPC_PRIVATE" : String.format("0x%08x", x.key()), x.mode(), x.uid(), x.gid(), x.cuid(),
                        x.cgid(), x.size(), stored, x.removed() ? " (removed, still attached)" : "");
            }
        }
        for (ProcessImage p : img.processes().values()) {
            out.println();
            printProcess(p, chain, out);
        }
        out.flush();
    }

    /** A wait status as a shell says it. */
    static String status(int st) {
        int sig = st & 0x7f;
        return sig == 0 ? "exited " + ((st >> 8) & 0xff) : "killed by " + Signals.name(sig) + ((st & 0x80) != 0 ? ", core" : "");
    }

    private static String ssiCaps(int caps) {
        StringBuilder b = new StringBuilder();
        String[] names = {"CAN_MIGRATE", "DISTANT_FORK", "CAN_CHECKPOINT", "SEE_LOCAL_PROC_STAT", "CHANGE_SSI_CAP"};
        for (int i = 0; i < names.length; i++) {
            if ((caps & (1 << i)) != 0) b.append(b.isEmpty() ? "" : ",").append(names[i]);
        }
        return b.isEmpty() ? "none" : b.toString();
    }

    static void printProcess(ProcessImage p, PrintWriter out) {
        printProcess(p, null, out);
    }

    static void printProcess(ProcessImage p, PageChain chain, PrintWriter out) {
        Records.ProcessRec r = p.process();
        out.printf("process %d (%s)%n", r.gpid(), r.comm());
        out.printf("  cmdline: %s%n", String.join(" ", r.cmdline()));
        out.printf("  exe: %s%n", r.exe());
        out.printf("  cwd: %s%n", r.cwd());
        out.printf("  root: %s%n", r.root());
        out.printf("  personality: 0x%x%n", r.personality());
        Records.Creds c = p.creds();
        out.printf("  uid: real %d effective %d saved %d fs %d%n", c.uids()[0], c.uids()[1], c.uids()[2], c.uids()[3]);
        out.printf("  gid: real %d effective %d saved %d fs %d%n", c.gids()[0], c.gids()[1], c.gids()[2], c.gids()[3]);
        StringBuilder g = new StringBuilder();
        for (int x : c.groups()) g.append(g.isEmpty() ? "" : " ").append(x);
        out.printf("  groups: %s%n", g.isEmpty() ? "-" : g);
        out.printf("  umask: %04o%n", c.umask());
        out.printf("  capabilities: inh %016x prm %016x eff %016x bnd %016x amb %016x%s%n", c.capInh(), c.capPrm(),
                c.capEff(), c.capBnd(), c.capAmb(), c.noNewPrivs() ? " no_new_privs" : "");
        out.println("  rlimits:");
        Records.Rlimits l = p.rlimits();
        for (int i = 0; i < l.cur().length; i++) {
            String name = i < Records.Rlimits.NAMES.length ? Records.Rlimits.NAMES[i] : "#" + i;
            out.printf("    %-10s %s / %s%n", name, limit(l.cur()[i]), limit(l.max()[i]));
        }
        Records.Mm mm = p.mm();
        out.printf("  mm: code %x-%x data %x-%x brk %x-%x stack %x args %x-%x env %x-%x auxv %d bytes%n", mm.startCode(),
                mm.endCode(), mm.startData(), mm.endData(), mm.startBrk(), mm.brk(), mm.startStack(), mm.argStart(),
                mm.argEnd(), mm.envStart(), mm.envEnd(), mm.auxv().length);
        out.printf("  shared pending signals: %s%n", sigset(p.sigacts().sharedPending()));
        out.println("  signal handlers (not SIG_DFL):");
        for (SigAction a : p.sigacts().actions()) {
            if (a.handler() == 0) continue;
            String h = a.handler() == 1 ? "SIG_IGN" : String.format("handler 0x%x", a.handler());
            out.printf("    %-9s %s flags 0x%x restorer 0x%x mask %s%n", Signals.name(a.sig()), h, a.flags(),
                    a.restorer(), sigset(a.mask()));
        }
        long[] t = p.itimers().values();
        String[] tn = {"real", "virtual", "prof"};
        for (int i = 0; i + 3 < t.length && i / 4 < tn.length; i += 4) {
            if (t[i] != 0 || t[i + 1] != 0 || t[i + 2] != 0 || t[i + 3] != 0) {
                out.printf("  itimer %s: value %d.%06d s interval %d.%06d s%n", tn[i / 4], t[i + 2], t[i + 3], t[i], t[i + 1]);
            }
        }
        for (ThreadRec th : p.threads()) {
            long[] regs = th.regs();
            out.printf("  thread %d: rip %x rsp %x fs_base %x, xstate %d bytes, blocked %s, pending %s%s%n", th.tid(),
                    regs.length > 16 ? regs[16] : 0, regs.length > 19 ? regs[19] : 0, regs.length > 21 ? regs[21] : 0,
                    th.xstate().length, sigset(th.blocked()), sigset(th.pending()),
                    th.altSize() != 0 && (th.altFlags() & 2) == 0 ? String.format(", altstack %x+%d", th.altSp(), th.altSize()) : "");
            if (th.clearTid() != 0 || th.robustHead() != 0)
                out.printf("    clear_child_tid %x, robust list %x (%d bytes)%n", th.clearTid(), th.robustHead(), th.robustLen());
        }
        for (Records.SigQueue q : p.sigqueues()) {
            StringBuilder b = new StringBuilder();
            for (byte[] si : q.siginfos())
            {
                int code = Records.SigQueue.code(si);
                b.append(b.isEmpty() ? "" : ", ").append(Signals.name(Records.SigQueue.signo(si))).append(" code ").append(code);
                // sigqueue, POSIX timers and mq_notify carry a value (si_value, at 24: its sival_int)
                if (code == -1 || code == -2 || code == -3)
                    b.append(" value ").append(java.nio.ByteBuffer.wrap(si).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(24));
            }
            out.printf("  queued signals of %s: %s%n", q.tid() == 0 ? "the process" : "thread " + q.tid(), b);
        }
        for (Records.RseqRec rs : p.rseqs()) {
            out.printf("  rseq of thread %d: at %x, %d bytes, signature %08x%n", rs.tid(), rs.pointer(), rs.size(), rs.signature());
        }
        Map<Long, Long> stored = new HashMap<>(), inParent = new HashMap<>();
        for (Pagemap m : p.pagemaps()) stored.put(m.vmaStart(), m.pages());
        for (Records.ParentPages m : p.parentPages()) inParent.put(m.vmaStart(), m.pages());
        out.printf("  vmas (%d):%n", p.vmas().size());
        for (Vma v : p.vmas()) {
            String from = "";
            if (inParent.containsKey(v.start())) {
                from = String.format(", %6d in parent", inParent.get(v.start()));
                if (chain != null) {
                    try {
                        long[] by = chain.pagesByImage(p.gpid(), v.start());
                        StringBuilder b = new StringBuilder();
                        for (int i = 1; i < by.length; i++) if (by[i] > 0) b.append(b.isEmpty() ? "" : " ").append("[").append(i).append("] ").append(by[i]);
                        from += " (" + b + ")";
                    } catch (java.io.IOException e) {
                        from += " (" + e.getMessage() + ")";
                    }
                }
            }
            out.printf("    %012x-%012x %s %-8s %6d pages, %6d stored%s  %s%n", v.start(), v.end(), perms(v),
                    Records.vmaKind(v.kind()), v.pages(), stored.getOrDefault(v.start(), 0L), from,
                    v.path().isEmpty() ? "" : v.path() + (v.kind() == Records.VMA_FILE ? " @" + v.offset() : ""));
        }
        out.printf("  fds (%d):%n", p.fds().size());
        for (Fd f : p.fds()) {
            String extra = (f.kind() == Records.FD_PIPE || f.kind() == Records.FD_FIFO ? " inode " + f.inode()
                    + ((f.flags() & 3) == 1 ? " write end" : (f.flags() & 3) == 2 ? " read-write" : " read end")
                    + (f.dataLength() > 0 ? ", " + f.dataLength() + " bytes queued" : "")
                    : f.kind() == Records.FD_UNIX ? " type " + f.aux() + " peer inode " + f.peer()
                    + (f.dataLength() > 0 ? ", " + f.dataLength() + (f.aux() == 1 ? " bytes queued" : " bytes of queued messages") : "")
                    : f.kind() == Records.FD_REG_DELETED ? " (" + f.dataLength() + " bytes saved)" : "")
                    + anonState(p.fdState(f.fd()))
                    + (f.fileId() != 0 ? " file #" + f.fileId() : "");
            out.printf("    %3d %-12s %s pos %d flags 0%o%s%s%n", f.fd(), Records.fdKind(f.kind()), f.path(), f.pos(),
                    f.flags(), f.cloexec() ? " cloexec" : "", extra);
        }
        if (!p.timers().isEmpty()) out.printf("  posix timers (%d):%n", p.timers().size());
        for (Records.PosixTimer pt : p.timers()) {
            String how = switch (pt.how()) {
                case Records.SIGEV_NONE -> "none";
                case Records.SIGEV_THREAD_ID -> Signals.name(pt.signal()) + " to thread " + pt.tid();
                default -> Signals.name(pt.signal());
            };
            out.printf("    timer %d clock %d notify %s value %x, left %s, interval %s, overrun %d%n", pt.id(), pt.clockId(), how,
                    pt.sigval(), span(pt.valueSec(), pt.valueNsec()), span(pt.intervalSec(), pt.intervalNsec()), pt.overrun());
        }
        if (!p.files().isEmpty()) out.printf("  files (%d):%n", p.files().size());
        for (Records.FileStat f : p.files()) {
            out.printf("    %s inode %d size %d mtime %s%n", f.path(), f.inode(), f.size(), Instant.ofEpochSecond(0, f.mtimeNanos()));
        }
    }

    /** " count 7 semaphore", " clock 1 ...", ...: what an anonymous-inode fd holds ("" for other fds). */
    static String anonState(Records.FdState s) {
        if (s == null) return "";
        return switch (s) {
            case Records.EventFd e -> " count " + Long.toUnsignedString(e.count()) + (e.semaphore() ? " semaphore" : "");
            case Records.TimerFd t -> " clock " + t.clockId() + ((t.settimeFlags() & 1) != 0 ? " expires at " + span(t.valueSec(),
                    t.valueNsec()) + " (absolute)" : " left " + span(t.valueSec(), t.valueNsec())) + " interval "
                    + span(t.intervalSec(), t.intervalNsec()) + " ticks " + Long.toUnsignedString(t.ticks());
            case Records.SignalFd g -> " mask " + sigset(g.sigmask());
            case Records.Epoll ep -> {
                StringBuilder b = new StringBuilder(" watching");
                if (ep.targets().isEmpty()) b.append(" nothing");
                for (Records.EpollTarget t : ep.targets())
                    b.append(String.format(" fd %d (events %x data %x)", t.tfd(), t.events(), t.data()));
                yield b.toString();
            }
        };
    }

    /** "1.250000000s", "off" for 0. */
    private static String span(long sec, long nsec) {
        return sec == 0 && nsec == 0 ? "off" : String.format("%d.%09ds", sec, nsec);
    }

    private static String perms(Vma v) {
        return ((v.prot() & Records.PROT_READ) != 0 ? "r" : "-") + ((v.prot() & Records.PROT_WRITE) != 0 ? "w" : "-")
                + ((v.prot() & Records.PROT_EXEC) != 0 ? "x" : "-") + (v.shared() ? "s" : "p");
    }

    private static String limit(long v) {
        return v == RLIM_INFINITY ? "unlimited" : Long.toString(v);
    }

    /** "SIGUSR2,SIGRTMIN+1" or "-". */
    public static String sigset(long mask) {
        StringBuilder b = new StringBuilder();
        for (int s = 1; s <= 64; s++) {
            if ((mask & (1L << (s - 1))) != 0) b.append(b.isEmpty() ? "" : ",").append(Signals.name(s));
        }
        return b.isEmpty() ? "-" : b.toString();
    }

    /** Signal names of x86_64 Linux. */
    static final class Signals {
        private static final String[] NAMES = {null, "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS",
            "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD",
            "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF",
            "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS"};

        static String name(int sig) {
            if (sig > 0 && sig < NAMES.length) return NAMES[sig];
            if (sig == 32 || sig == 33) return "SIG" + sig;
            return sig >= 34 && sig <= 64 ? "SIGRTMIN+" + (sig - 34) : "SIG" + sig;
        }
    }
}
