package ssi.tests;

import ssi.shim.Launched;
import ssi.shim.Regs;
import ssi.shim.ShimLink;
import ssi.shim.Tracee;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.io.StringWriter;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Properties;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A stand-in node daemon for {@link TraceeLiveTest}: ssi-shim runs it as pid 2 of a node (`ssi-shim
 * --node N --run-dir DIR --detach -- java ... TraceeProbeDaemon --node N --run-dir DIR`). It links with
 * {@link ShimLink#connect}, lets every trapped syscall run (CONTINUE), and on the first LAUNCHED program
 * waits until the program has exec'd bash, attaches a {@link Tracee}, reads its registers and memory,
 * injects getpid and gives it a file at fd 77, detaches, and writes what it saw to DIR/probe.properties.
 * It then waits for the program's LISTENER_GONE, records it in DIR/probe-end.properties, and exits,
 * which stops the node.
 */
public final class TraceeProbeDaemon {
    static final int GIVEN_FD = 77;
    static final String GIVEN_FILE = "given-fd-target";
    private static final int SYS_GETPID = 39, SYS_GETPPID = 110, SYS_KILL = 62, SYS_MMAP = 9, SYS_MUNMAP = 11, SYS_MSYNC = 26;

    private TraceeProbeDaemon() {}

    public static void main(String[] args) throws Exception {
        int node = -1;
        Path dir = null;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--node" -> node = Integer.parseInt(args[i + 1]);
                case "--run-dir" -> dir = Path.of(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (node < 0 || dir == null) throw new IllegalArgumentException("usage: --node N --run-dir DIR");
        Properties out = new Properties();
        out.setProperty("daemon.pid", Long.toString(ProcessHandle.current().pid()));
        Path result = dir.resolve("probe.properties");
        BlockingQueue<Launched> launched = new LinkedBlockingQueue<>();
        CountDownLatch listenerGone = new CountDownLatch(1);
        int[] goneListener = {-1};
        int[] notifs = {0};
        ShimLink link = ShimLink.connect(dir.resolve("node-" + node + ".link"));
        try {
            out.setProperty("link.node", Integer.toString(link.nodeId()));
            out.setProperty("link.pidBase", Integer.toString(link.pidBase()));
            out.setProperty("link.pidLimit", Integer.toString(link.pidLimit()));
            link.start(n -> {
                synchronized (notifs) {
                    notifs[0]++;
                }
                try {
                    link.reply(n, 0, 0, true);
                } catch (IOException e) {
                    System.err.println("probe: cannot answer " + n + ": " + e);
                }
            }, launched::add, id -> {
                goneListener[0] = id;
                listenerGone.countDown();
            }, () -> System.err.println("probe: link closed"));

            Launched l = launched.poll(120, TimeUnit.SECONDS);
            if (l == null) throw new IllegalStateException("no LAUNCHED within 120 s");
            out.setProperty("launched.pid", Integer.toString(l.pid()));
            out.setProperty("launched.uid", Integer.toString(l.uid()));
            out.setProperty("launched.listener", Integer.toString(l.listenerId()));
            out.setProperty("launched.path", l.path());
            try {
                if (System.getProperty("probe.mode", "basic").equals("trapped-inject")) probeTrappedInject(link, l.pid(), dir, out);
                else probe(link, l.pid(), dir, out);
            } catch (Throwable t) {
                out.setProperty("error", stackTrace(t));
            }
            store(out, result);

            Properties end = new Properties();
            boolean gone = listenerGone.await(120, TimeUnit.SECONDS);
            end.setProperty("listenerGone", Boolean.toString(gone));
            end.setProperty("listenerGone.id", Integer.toString(goneListener[0]));
            synchronized (notifs) {
                end.setProperty("notifications", Integer.toString(notifs[0]));
            }
            store(end, dir.resolve("probe-end.properties"));
        } catch (Throwable t) {
            out.setProperty("error", stackTrace(t));
            store(out, result);
        } finally {
            link.close();
        }
    }

    private static void probe(ShimLink link, int pid, Path dir, Properties out) throws Exception {
        // LAUNCHED comes before GO: wait until the program runs bash (the script then waits for fd 77)
        awaitBash(pid);
        out.setProperty("exe", Files.readSymbolicLink(Path.of("/proc", Integer.toString(pid), "exe")).toString());

        Tracee t = link.attach(pid);
        try {
            out.setProperty("attached.state", state(pid));
            Regs regs = t.getRegs();
            out.setProperty("regs.rip", Long.toUnsignedString(regs.rip()));
            out.setProperty("regs.rsp", Long.toUnsignedString(regs.rsp()));
            out.setProperty("regs.fsBase", Long.toUnsignedString(regs.fsBase()));
            out.setProperty("regs.cs", Long.toUnsignedString(regs.cs()));

            byte[] stack = t.read(regs.rsp(), 256);
            out.setProperty("mem.len", Integer.toString(stack.length));
            out.setProperty("mem.hex", HexFormat.of().formatHex(stack, 0, 64));
            // the same bytes straight from /proc/pid/mem (the JVM is root in the node, the tracee is stopped)
            try (RandomAccessFile mem = new RandomAccessFile("/proc/" + pid + "/mem", "r")) {
                byte[] direct = new byte[256];
                mem.seek(regs.rsp());
                mem.readFully(direct);
                out.setProperty("mem.matchesProcMem", Boolean.toString(Arrays.equals(stack, direct)));
            } catch (IOException e) {
                out.setProperty("mem.matchesProcMem", "unreadable: " + e);
            }

            out.setProperty("inject.getpid", Long.toString(t.syscall(SYS_GETPID)));
            out.setProperty("inject.getppid", Long.toString(t.syscall(SYS_GETPPID)));
            out.setProperty("inject.badSyscall", Long.toString(t.syscall(100000)));
            // pipelined: every request sent before the first reply is awaited, results in order
            out.setProperty("inject.pipelined", Arrays.toString(t.syscalls(new int[] {SYS_GETPID, 100000, SYS_GETPPID, SYS_GETPID},
                    new long[][] {{}, {}, {}, {}})));
            // more calls than one INJECT_MANY takes (256): run as a loop in the thread, in two requests;
            // the page the shim maps for the loop is gone afterwards
            String mapsBefore = Files.readString(Path.of("/proc", Integer.toString(pid), "maps"));
            int[] many = new int[300];
            long[][] manyArgs = new long[300][];
            for (int i = 0; i < many.length; i++) {
                many[i] = i % 3 == 1 ? SYS_GETPPID : SYS_GETPID;
                manyArgs[i] = new long[] {};
            }
            long[] manyRet = t.syscalls(many, manyArgs);
            StringBuilder bad = new StringBuilder();
            for (int i = 0; i < many.length; i++) {
                long want = i % 3 == 1 ? Long.parseLong(out.getProperty("inject.getppid")) : Long.parseLong(out.getProperty("inject.getpid"));
                if (manyRet[i] != want) bad.append(i).append('=').append(manyRet[i]).append(' ');
            }
            out.setProperty("inject.many.wrong", bad.toString());
            out.setProperty("inject.many.mapsUnchanged",
                    Boolean.toString(mapsBefore.equals(Files.readString(Path.of("/proc", Integer.toString(pid), "maps")))));
            // at a place given (free, page aligned): the batch may map and unmap anything else; here it maps
            // two pages with MAP_FIXED_NOREPLACE right below that place and unmaps them again; msync of
            // the place answers 0 only while something is mapped there (the batch's own code), else ENOMEM
            long at = freeArea(pid, 64L << 20);
            long below = at - 2 * 4096;
            long[] placed = t.syscalls(new int[] {SYS_MMAP, SYS_GETPID, SYS_MSYNC, SYS_MUNMAP},
                    new long[][] {{below, 2 * 4096, 3, 0x22 | 0x100000, -1, 0}, {}, {at, 4096, 1}, {below, 2 * 4096}}, at);
            out.setProperty("inject.placed", Arrays.toString(placed));
            out.setProperty("inject.placed.want", Arrays.toString(new long[] {below, pid, 0, 0}));
            out.setProperty("inject.placed.mapsUnchanged",
                    Boolean.toString(mapsBefore.equals(Files.readString(Path.of("/proc", Integer.toString(pid), "maps")))));
            // in an area of the process mapped for it (code page executable, the rest writable), as a
            // checkpoint's scratch does: the batch maps, protects and unmaps nothing, and the area stays
            long areaLen = (ssi.shim.LinkFrames.InjectManyReq.AREA + 4095L) & -4096L;
            long area = t.syscall(SYS_MMAP, 0, areaLen, 3, 0x22, -1, 0);
            long prot = t.syscall(10 /* mprotect */, area, 4096, 5);
            String withArea = Files.readString(Path.of("/proc", Integer.toString(pid), "maps"));
            long[] inArea = t.syscallsIn(area, new int[] {SYS_GETPID, SYS_GETPPID, SYS_MSYNC},
                    new long[][] {{}, {}, {area, 4096, 1}});
            out.setProperty("inject.area", prot + " " + Arrays.toString(inArea));
            out.setProperty("inject.area.want", "0 " + Arrays.toString(new long[] {pid, Long.parseLong(out.getProperty("inject.getppid")), 0}));
            out.setProperty("inject.area.mapsUnchanged",
                    Boolean.toString(withArea.equals(Files.readString(Path.of("/proc", Integer.toString(pid), "maps")))));
            out.setProperty("inject.area.codeThere", Boolean.toString(!Arrays.equals(t.read(area, 16), new byte[16])));
            t.syscall(SYS_MUNMAP, area, areaLen);
            try {
                t.syscalls(new int[] {SYS_GETPID}, new long[][] {{}}, at + 1);
                out.setProperty("inject.placed.unaligned", "accepted");
            } catch (IllegalArgumentException e) {
                out.setProperty("inject.placed.unaligned", "refused: " + e.getMessage());
            }
            Regs after = t.getRegs();
            out.setProperty("regs.restored", Boolean.toString(after.equals(regs)));
            if (!after.equals(regs)) out.setProperty("regs.restored.diff", regs + " vs " + after);

            byte[] xstate = t.getXstate();
            out.setProperty("xstate.len", Integer.toString(xstate.length));

            Path given = dir.resolve(GIVEN_FILE);
            try (RandomAccessFile f = new RandomAccessFile(given.toFile(), "rw")) {
                int fd = fdOf(given);
                out.setProperty("givefd.daemonFd", Integer.toString(fd));
                out.setProperty("givefd.result", Integer.toString(t.giveFd(fd, GIVEN_FD)));
            }
            out.setProperty("givefd.path", given.toString());
            out.setProperty("stillStopped.state", state(pid));
        } finally {
            t.close();
        }
        out.setProperty("detached", "true");
        Thread.sleep(200);
        out.setProperty("detached.state", state(pid));
    }

    /**
     * Injects a syscall the program's seccomp filter traps: kill(pid, 0) on itself. Bounded: a shim that
     * cannot answer the trap while it waits for the injected syscall to finish would hang here, so the
     * call runs on its own thread and "timeout" is recorded after 15 s. DIR/probe-done tells the program
     * to end.
     */
    private static void probeTrappedInject(ShimLink link, int pid, Path dir, Properties out) throws Exception {
        awaitBash(pid);
        Tracee t = link.attach(pid);
        out.setProperty("attached.state", state(pid));
        java.util.concurrent.CompletableFuture<String> kill = new java.util.concurrent.CompletableFuture<>();
        Thread.ofPlatform().daemon(true).start(() -> {
            try {
                kill.complete(Long.toString(t.syscall(SYS_KILL, pid, 0)));
            } catch (Throwable e) {
                kill.complete("error: " + e);
            }
        });
        String result;
        try {
            result = kill.get(15, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            out.setProperty("inject.trappedKill", "timeout");
            out.setProperty("inject.trappedKill.state", state(pid));
            return; // the shim is stuck: detaching would wait forever too
        }
        out.setProperty("inject.trappedKill", result);
        out.setProperty("inject.getpidAfter", Long.toString(t.syscall(SYS_GETPID)));
        t.close();
        out.setProperty("detached", "true");
        Files.writeString(dir.resolve("probe-done"), "");
    }

    private static void awaitBash(int pid) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        Path exe = Path.of("/proc", Integer.toString(pid), "exe");
        while (true) {
            String target = "";
            try {
                target = Files.readSymbolicLink(exe).toString();
            } catch (IOException e) {
                // not readable yet, or gone
            }
            if (target.endsWith("/bash")) break;
            if (System.nanoTime() > deadline) throw new IllegalStateException("pid " + pid + " never exec'd bash: exe " + target);
            Thread.sleep(20);
        }
        // and give it a moment to enter its wait loop
        Thread.sleep(300);
    }

    /** The number of this JVM's fd open on path. */
    private static int fdOf(Path path) throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    if (Files.readSymbolicLink(fd).equals(path)) return Integer.parseInt(fd.getFileName().toString());
                } catch (IOException ignored) {
                    // the fd of the listing itself, closed meanwhile
                }
            }
        }
        throw new IOException("no fd of this JVM is open on " + path);
    }

    /** The State: line of /proc/pid/status, e.g. "t (tracing stop)". */
    /** A page-aligned address with size free bytes on both sides of it in pid's address space (above 4 GiB). */
    private static long freeArea(int pid, long size) throws IOException {
        long at = 1L << 32;
        for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "maps"))) {
            String[] r = line.substring(0, line.indexOf(' ')).split("-");
            long start = Long.parseUnsignedLong(r[0], 16), end = Long.parseUnsignedLong(r[1], 16);
            if (end + size <= at) continue;
            if (start >= at + size) break;
            at = end + size;
        }
        return at;
    }

    private static String state(int pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "status"))) {
                if (line.startsWith("State:")) return line.substring(6).trim();
            }
            return "?";
        } catch (IOException e) {
            return "gone";
        }
    }

    private static void store(Properties p, Path file) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (Writer w = Files.newBufferedWriter(tmp)) {
            p.store(w, "TraceeProbeDaemon");
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    private static String stackTrace(Throwable t) {
        StringWriter sw = new StringWriter();
        t.printStackTrace(new PrintWriter(sw));
        return sw.toString();
    }
}
