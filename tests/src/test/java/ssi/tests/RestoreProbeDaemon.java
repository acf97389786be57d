package ssi.tests;

import ssi.ghost.restore.RestorePlan;
import ssi.ghost.restore.Restorer;
import ssi.shim.ErrnoException;
import ssi.shim.Launched;
import ssi.shim.Regs;
import ssi.shim.ShimLink;
import ssi.shim.Tracee;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.io.StringWriter;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/**
 * A stand-in node daemon for {@link RestoreLiveTest}: ssi-shim runs it as pid 2 of a node. It links, lets
 * every trapped syscall run, and on the first LAUNCHED program (a shell that execs restore-counter):
 * waits until restore-counter counts, checks that SPAWN_STUB of its (taken) pid says EEXIST, attaches
 * it, captures what a {@link RestorePlan} needs with plain code ({@link #capture}: a stand-in for the
 * ghost dump, which another engineer writes), SIGKILLs it, waits until its pid is free, restores it
 * with {@link Restorer} at the same pid, and then drives the restored program: SIGUSR1 (its handler must
 * report it), SIGUSR2 (it checks its memory and exits). What it saw goes to DIR/restore.properties.
 */
public final class RestoreProbeDaemon {
    static final String PROGRAM = "restore-counter", OUT = "counter.out", ERR = "counter.err", DATA = "counter.data",
            STATUS = "counter.status", SHARED = "counter.shared";
    private static final int SYS_MMAP = 9, SYS_MUNMAP = 11, SYS_BRK = 12, SYS_RT_SIGACTION = 13,
            SYS_SIGALTSTACK = 131, SYS_PRCTL = 157, SYS_GET_ROBUST_LIST = 274, SYS_PRLIMIT64 = 302;
    private static final int PR_GET_TID_ADDRESS = 40;
    private static final long PAGE = 4096;

    private RestoreProbeDaemon() {}

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
        Path result = dir.resolve("restore.properties");
        BlockingQueue<Launched> launched = new LinkedBlockingQueue<>();
        ShimLink link = ShimLink.connect(dir.resolve("node-" + node + ".link"));
        try {
            link.start(n -> {
                try {
                    link.reply(n, 0, 0, true);
                } catch (IOException e) {
                    System.err.println("restore-probe: cannot answer " + n + ": " + e);
                }
            }, launched::add, id -> { }, () -> System.err.println("restore-probe: link closed"));
            Launched l = launched.poll(120, TimeUnit.SECONDS);
            if (l == null) throw new IllegalStateException("no LAUNCHED within 120 s");
            out.setProperty("launched.pid", Integer.toString(l.pid()));
            try {
                run(link, l.pid(), dir, out);
            } catch (Throwable t) {
                out.setProperty("error", stackTrace(t));
            }
        } catch (Throwable t) {
            out.setProperty("error", stackTrace(t));
        } finally {
            store(out, result);
            link.close();
        }
    }

    private static void run(ShimLink link, int pid, Path dir, Properties out) throws Exception {
        Path exe = Path.of("/proc", Integer.toString(pid), "exe");
        Path progOut = dir.resolve(OUT);
        await(60, () -> {
            try {
                return Files.readSymbolicLink(exe).toString().endsWith("/" + PROGRAM) && lastCount(progOut) >= 5;
            } catch (IOException e) {
                return false;
            }
        }, "pid " + pid + " running " + PROGRAM + " and counting to 5");

        // a stub cannot take a pid in use
        try {
            Tracee stub = link.spawnStub(pid);
            out.setProperty("eexist", "no error: got a stub for " + stub.tid());
        } catch (ErrnoException e) {
            out.setProperty("eexist.errno", Integer.toString(e.errno()));
            out.setProperty("eexist.message", e.getMessage());
        }

        Tracee t = link.attach(pid);
        RestorePlan plan;
        long t0 = System.nanoTime();
        try {
            plan = capture(t, pid, out);
            out.setProperty("captured.count", Long.toString(lastCount(progOut)));
            out.setProperty("captured.ms", Long.toString((System.nanoTime() - t0) / 1_000_000));
            // Restorer on a pid in use: refused before anything is touched
            try {
                Restorer.restore(link, plan);
                out.setProperty("restoreTaken", "no error");
            } catch (ssi.ghost.restore.RestoreException e) {
                out.setProperty("restoreTaken.errno", Integer.toString(e.errno()));
                out.setProperty("restoreTaken.message", e.getMessage());
            }
        } finally {
            // killed while still stopped: nothing runs between the capture and the kill
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            try {
                t.close();
            } catch (IOException expected) {
                // DETACH of a killed tracee fails; the shim forgets it either way
            }
        }
        await(30, () -> !Files.exists(Path.of("/proc", Integer.toString(pid))), "pid " + pid + " to be gone");
        out.setProperty("original.gone", "true");

        // a restore that fails half way (a file to map is missing) kills its stub: the pid is free again
        int other = pid + 1000;
        List<RestorePlan.Vma> bad = new ArrayList<>(plan.vmas());
        bad.add(0, new RestorePlan.Vma(0x10000000L, 0x10001000L, 1, false, false, "/nonexistent/restore-probe",
                0, RestorePlan.PageSource.NONE));
        RestorePlan broken = new RestorePlan(other, bad, plan.specials(), plan.regs(), plan.xstate(), plan.mm(),
                plan.fds(), plan.cwd(), plan.umask(), plan.sigactions(), plan.blockedMask(), plan.altStack(),
                plan.rlimits(), plan.creds(), plan.comm(), plan.tidAddress(), plan.robustList(), plan.noNewPrivs(),
                plan.rseq());
        try {
            Restorer.restore(link, broken);
            out.setProperty("restoreBroken", "no error");
        } catch (ssi.ghost.restore.RestoreException e) {
            out.setProperty("restoreBroken.errno", Integer.toString(e.errno()));
            out.setProperty("restoreBroken.message", e.getMessage());
        }
        await(30, () -> !Files.exists(Path.of("/proc", Integer.toString(other))), "the failed stub " + other + " to be gone");
        out.setProperty("restoreBroken.stubGone", "true");

        t0 = System.nanoTime();
        List<String> log = Restorer.restore(link, plan);
        out.setProperty("restore.ms", Long.toString((System.nanoTime() - t0) / 1_000_000));
        out.setProperty("restore.log", String.join(" | ", log));
        String procPid = "/proc/" + pid;
        out.setProperty("restored.ppid", statusField(pid, "PPid"));
        out.setProperty("restored.exe", Files.readSymbolicLink(Path.of(procPid, "exe")).toString());
        out.setProperty("restored.cmdline", Files.readString(Path.of(procPid, "cmdline")).replace('\0', ' ').trim());
        out.setProperty("restored.comm", Files.readString(Path.of(procPid, "comm")).trim());
        String st = Files.readString(Path.of(procPid, "stat"));
        String[] sf = st.substring(st.lastIndexOf(')') + 2).trim().split(" ");
        out.setProperty("restored.pgrp", sf[2]);
        out.setProperty("restored.session", sf[3]);
        out.setProperty("restored.fd2.flags", fdinfo(pid, 2, "flags"));
        out.setProperty("restored.fd3.target", Files.readSymbolicLink(Path.of(procPid, "fd", "3")).toString());
        out.setProperty("restored.sigcgt", statusField(pid, "SigCgt"));

        // the restored thread's rseq registration, seen by the shim (a short ATTACH; nanosleep restarts natively)
        try (Tracee again = link.attach(pid)) {
            out.setProperty("restored.rseq", again.getRseq().toString());
        }

        long captured = Long.parseLong(out.getProperty("captured.count"));
        await(30, () -> lastCount(progOut) >= captured + 5, "the restored program to count on past " + captured);
        out.setProperty("restored.counting", "true");

        signal("USR1", pid);
        await(30, () -> Cmd.read(progOut).contains("usr1 at "), "the restored program to report SIGUSR1");
        signal("USR2", pid);
        Path status = dir.resolve(STATUS);
        await(30, () -> Cmd.read(status).endsWith("\n"), "the restored program's status file");
        out.setProperty("status", Cmd.read(status).trim());
        // its parent is the shim (pid 1), which reaps it: the pid goes away entirely
        await(30, () -> !Files.exists(Path.of(procPid)), "the restored program to be reaped");
        out.setProperty("restored.reaped", "true");
    }

    /**
     * What the plan needs, read with simple code from /proc and injected syscalls. Stands in for the ghost
     * dump (single-threaded, files by path only).
     */
    static RestorePlan capture(Tracee t, int pid, Properties out) throws IOException {
        Regs regs = t.getRegs();
        byte[] xstate = t.getXstate();
        ssi.shim.Rseq rseq = t.getRseq();
        out.setProperty("captured.rseq", rseq.toString());
        out.setProperty("captured.regs", regs.toString());

        long scratch = t.syscall(SYS_MMAP, 0, PAGE, 3, 0x22, -1, 0);
        if (scratch < 0 && scratch > -4096) throw new IOException("scratch mmap in " + pid + ": " + scratch);
        RestorePlan.SigAction[] acts = new RestorePlan.SigAction[64];
        for (int sig = 1; sig <= 64; sig++) {
            long rc = t.syscall(SYS_RT_SIGACTION, sig, 0, scratch, 8);
            if (rc != 0) throw new IOException("rt_sigaction(" + sig + ") query: " + rc);
            ByteBuffer b = le(t.read(scratch, 32));
            if (b.getLong(0) != 0 || b.getLong(8) != 0 || b.getLong(24) != 0)
                acts[sig - 1] = new RestorePlan.SigAction(b.getLong(0), b.getLong(8), b.getLong(16), b.getLong(24));
        }
        long brk = t.syscall(SYS_BRK, 0);
        check(t.syscall(SYS_PRCTL, PR_GET_TID_ADDRESS, scratch, 0, 0, 0), "PR_GET_TID_ADDRESS");
        long tidAddress = le(t.read(scratch, 8)).getLong(0);
        check(t.syscall(SYS_GET_ROBUST_LIST, 0, scratch, scratch + 8), "get_robust_list");
        ByteBuffer rl = le(t.read(scratch, 16));
        RestorePlan.RobustList robust = rl.getLong(0) == 0 ? null : new RestorePlan.RobustList(rl.getLong(0), rl.getLong(8));
        check(t.syscall(SYS_SIGALTSTACK, 0, scratch), "sigaltstack");
        ByteBuffer ss = le(t.read(scratch, 24));
        RestorePlan.AltStack alt = (ss.getInt(8) & 2) != 0 ? null
                : new RestorePlan.AltStack(ss.getLong(0), ss.getInt(8), ss.getLong(16));
        List<RestorePlan.Rlimit> rlimits = new ArrayList<>();
        for (int r = 0; r < 16; r++) {
            check(t.syscall(SYS_PRLIMIT64, 0, r, 0, scratch), "prlimit64 " + r);
            ByteBuffer b = le(t.read(scratch, 16));
            rlimits.add(new RestorePlan.Rlimit(r, b.getLong(0), b.getLong(8)));
        }
        check(t.syscall(SYS_MUNMAP, scratch, PAGE), "munmap scratch");

        String proc = "/proc/" + pid;
        // memory: smaps for the flags, pagemap for which pages have contents, mem for the bytes
        List<RestorePlan.Vma> vmas = new ArrayList<>();
        List<RestorePlan.Special> specials = new ArrayList<>();
        long bytes = 0;
        try (RandomAccessFile pagemap = new RandomAccessFile(proc + "/pagemap", "r");
             RandomAccessFile mem = new RandomAccessFile(proc + "/mem", "r")) {
            String header = null;
            List<String> smaps = Files.readAllLines(Path.of(proc, "smaps"));
            for (String line : smaps) {
                if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                    header = line;
                    continue;
                }
                if (!line.startsWith("VmFlags:") || header == null) continue;
                String[] f = header.trim().split("\\s+", 6);
                String[] range = f[0].split("-");
                long start = Long.parseUnsignedLong(range[0], 16), end = Long.parseUnsignedLong(range[1], 16);
                String perms = f[1];
                String name = f.length > 5 ? f[5] : "";
                header = null;
                if (name.equals("[vsyscall]")) continue;
                if (name.equals("[vdso]") || name.startsWith("[vvar")) {
                    specials.add(new RestorePlan.Special(name, start, end));
                    continue;
                }
                if (name.endsWith(" (deleted)")) throw new IOException("pid " + pid + " maps a deleted file: " + header);
                boolean file = name.startsWith("/");
                boolean shared = perms.charAt(3) == 's';
                int prot = (perms.charAt(0) == 'r' ? 1 : 0) | (perms.charAt(1) == 'w' ? 2 : 0) | (perms.charAt(2) == 'x' ? 4 : 0);
                boolean growsDown = Arrays.asList(line.substring(8).trim().split("\\s+")).contains("gd");
                List<long[]> runs = new ArrayList<>();
                List<byte[]> data = new ArrayList<>();
                if (!(file && shared)) {
                    long n = (end - start) / PAGE;
                    byte[] pm = new byte[(int) (n * 8)];
                    pagemap.seek(start / PAGE * 8);
                    pagemap.readFully(pm);
                    ByteBuffer pmb = le(pm);
                    long runStart = -1;
                    for (long i = 0; i <= n; i++) {
                        boolean take = false;
                        if (i < n) {
                            long e = pmb.getLong((int) (i * 8));
                            boolean present = e < 0, swapped = (e & (1L << 62)) != 0, filePage = (e & (1L << 61)) != 0;
                            take = swapped || (present && (!file || !filePage));
                        }
                        if (take && runStart < 0) runStart = start + i * PAGE;
                        if (!take && runStart >= 0) {
                            long runEnd = start + i * PAGE;
                            byte[] b = new byte[(int) (runEnd - runStart)];
                            mem.seek(runStart);
                            mem.readFully(b);
                            runs.add(new long[] {runStart});
                            data.add(b);
                            bytes += b.length;
                            runStart = -1;
                        }
                    }
                }
                RestorePlan.PageSource pages = sink -> {
                    for (int i = 0; i < runs.size(); i++) sink.accept(runs.get(i)[0], data.get(i));
                };
                long offset = file ? Long.parseUnsignedLong(f[2], 16) : 0;
                vmas.add(new RestorePlan.Vma(start, end, prot, shared, growsDown, file ? name : null, offset, pages));
            }
        }
        out.setProperty("captured.vmas", Integer.toString(vmas.size()));
        out.setProperty("captured.sharedFileVmas", vmas.stream().filter(v -> v.shared() && v.path() != null)
                .map(RestorePlan.Vma::toString).toList().toString());
        out.setProperty("captured.bytes", Long.toString(bytes));
        out.setProperty("captured.specials", specials.toString());

        List<RestorePlan.FdPlan> fds = new ArrayList<>();
        try (Stream<Path> list = Files.list(Path.of(proc, "fd"))) {
            for (Path p : list.toList()) {
                int fd = Integer.parseInt(p.getFileName().toString());
                String target = Files.readSymbolicLink(p).toString();
                if (!target.startsWith("/")) throw new IOException("fd " + fd + " of " + pid + " is " + target
                        + ": only files by path are restored yet");
                fds.add(new RestorePlan.FdPlan(fd, target, Integer.parseInt(fdinfo(pid, fd, "flags"), 8),
                        Long.parseLong(fdinfo(pid, fd, "pos"))));
            }
        }
        out.setProperty("captured.fds", fds.toString());

        String stat = Files.readString(Path.of(proc, "stat"));
        String[] s = stat.substring(stat.lastIndexOf(')') + 2).trim().split(" ");
        // field k of proc(5) is s[k - 3]
        RestorePlan.MmFields mm = new RestorePlan.MmFields(ul(s[23]), ul(s[24]), ul(s[42]), ul(s[43]), ul(s[44]), brk,
                ul(s[25]), ul(s[45]), ul(s[46]), ul(s[47]), ul(s[48]), Files.readAllBytes(Path.of(proc, "auxv")),
                Files.readSymbolicLink(Path.of(proc, "exe")).toString());
        out.setProperty("captured.mm", mm.toString());

        String[] uid = statusField(pid, "Uid").split("\\s+"), gid = statusField(pid, "Gid").split("\\s+");
        String groups = statusField(pid, "Groups");
        int[] g = groups.isBlank() ? new int[0] : Arrays.stream(groups.trim().split("\\s+")).mapToInt(Integer::parseInt).toArray();
        RestorePlan.Creds creds = new RestorePlan.Creds(Integer.parseInt(uid[0]), Integer.parseInt(uid[1]),
                Integer.parseInt(uid[2]), Integer.parseInt(gid[0]), Integer.parseInt(gid[1]), Integer.parseInt(gid[2]), g);
        out.setProperty("captured.sigcgt", statusField(pid, "SigCgt"));
        return new RestorePlan(pid, vmas, specials, regs, xstate, mm, fds,
                Files.readSymbolicLink(Path.of(proc, "cwd")).toString(), Integer.parseInt(statusField(pid, "Umask"), 8),
                acts, Long.parseUnsignedLong(statusField(pid, "SigBlk"), 16), alt, rlimits, creds,
                Files.readString(Path.of(proc, "comm")).trim(), tidAddress, robust,
                statusField(pid, "NoNewPrivs").equals("1"),
                rseq.registered() ? new RestorePlan.Rseq(rseq.pointer(), rseq.size(), rseq.signature()) : null);
    }

    private static void check(long rc, String what) throws IOException {
        if (rc < 0 && rc > -4096) throw new IOException("injected " + what + " failed: errno " + -rc);
    }

    private static long ul(String s) {
        return Long.parseUnsignedLong(s);
    }

    private static ByteBuffer le(byte[] b) {
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    }

    static String statusField(int pid, String name) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "status")))
            if (line.startsWith(name + ":")) return line.substring(name.length() + 1).trim();
        return "";
    }

    static String fdinfo(int pid, int fd, String name) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "fdinfo", Integer.toString(fd))))
            if (line.startsWith(name + ":")) return line.substring(name.length() + 1).trim();
        throw new IOException("no " + name + " in fdinfo " + fd + " of " + pid);
    }

    /** The N of the last complete "count N" line of the program's stdout, 0 if none. */
    static long lastCount(Path out) {
        long last = 0;
        for (String line : Cmd.read(out).split("\n"))
            if (line.startsWith("count ")) last = Long.parseLong(line.substring(6).trim());
        return last;
    }

    private static void signal(String sig, int pid) throws Exception {
        Process p = new ProcessBuilder("kill", "-" + sig, Integer.toString(pid)).redirectErrorStream(true).start();
        String o = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) throw new IOException("kill -" + sig + " " + pid + ": " + o);
    }

    private static void await(int seconds, BooleanSupplier cond, String what) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("timed out after " + seconds + " s waiting for " + what);
            Thread.sleep(50);
        }
    }

    private static void store(Properties p, Path file) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (Writer w = Files.newBufferedWriter(tmp)) {
            p.store(w, "RestoreProbeDaemon");
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    private static String stackTrace(Throwable t) {
        StringWriter sw = new StringWriter();
        t.printStackTrace(new PrintWriter(sw));
        return sw.toString();
    }
}
