package ssi.supervisor;

import ssi.comm.control.ControlMessages.ProcessInfo;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads the processes of this node from /proc. The daemon runs in the node's pid and mount namespaces,
 * so every pid in its /proc is a gpid of this node; pids the {@link PidLayout} calls node-internal (the
 * shim, the daemon) are left out of every listing. Stateless apart from the passwd cache: any thread may
 * call it. A process can exit between any two reads; such a process is skipped (or read as null), never
 * an exception.
 */
public final class ProcessTable implements ProcessTree {

    /**
     * What /proc/pid/stat and /proc/pid/status say about one task. cpuTicks is utime + stime; uids are the
     * real, effective and saved uid; rssKiB is VmRSS (0 for zombies and kernel threads).
     */
    public record Entry(int pid, String comm, char state, int ppid, int pgid, int sid, long cpuTicks,
                        long startTime, int tgid, int ruid, int euid, int suid, long rssKiB) {
        boolean isZombie() { return state == 'Z' || state == 'X'; }
    }

    /** The numbers `ssi nodes` shows for a node. */
    public record NodeStatus(double load1, long memTotalBytes, long memAvailableBytes, int processes) {}

    private final Path proc;
    private final PidLayout layout;
    private final UserNames users;
    private final int ticksPerSecond;

    ProcessTable(Path procRoot, PidLayout layout, UserNames users, int ticksPerSecond) {
        this.proc = procRoot;
        this.layout = layout;
        this.users = users;
        this.ticksPerSecond = ticksPerSecond;
    }

    /** The task with this pid (any pid, cluster or not), or null if it does not exist (any more). */
    public Entry read(int pid) {
        if (pid <= 0) return null;
        return readDir(proc.resolve(Integer.toString(pid)), pid);
    }

    /**
     * A task (process or thread) of a cluster process, or null: pids below the node's range and the
     * node-internal processes' threads whose tids fell inside the range (the daemon's late threads) are
     * no cluster processes, so nobody may signal them through the cluster.
     */
    public Entry readClusterTask(int pid) {
        if (!layout.isClusterPid(pid)) return null;
        Entry e = read(pid);
        return e != null && layout.isClusterPid(e.tgid()) ? e : null;
    }

    /** One thread of a thread group, or null if tid is not a live thread of tgid. */
    public Entry readThread(int tgid, int tid) {
        if (tgid <= 0 || tid <= 0) return null;
        return readDir(proc.resolve(Integer.toString(tgid)).resolve("task").resolve(Integer.toString(tid)), tid);
    }

    /**
     * len bytes of a process's memory at addr (through /proc/pid/mem, which needs the ptrace access the
     * daemon has as root of the node), or null if the process is gone or the range is not mapped.
     */
    public byte[] readMemory(int pid, long addr, int len) {
        if (pid <= 0 || addr < 0) return null; // user addresses are below 2^47 on x86_64
        try (FileChannel mem = FileChannel.open(proc.resolve(Integer.toString(pid)).resolve("mem"), StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(len);
            while (b.hasRemaining()) {
                if (mem.read(b, addr + b.position()) <= 0) return null;
            }
            return b.array();
        } catch (IOException e) {
            return null; // EIO: unmapped address; ENOENT/ESRCH: the process is gone
        }
    }

    /** Every live cluster process of this node, in pid order. */
    public List<Entry> scan() {
        List<Entry> out = new ArrayList<>();
        for (int pid : pids()) {
            if (!layout.isClusterPid(pid)) continue;
            Entry e = read(pid);
            if (e != null) out.add(e);
        }
        return out;
    }

    /** The cluster processes of this node as `ssi ps` shows them; node is this node's id. */
    public List<ProcessInfo> ps(int node) {
        List<ProcessInfo> out = new ArrayList<>();
        for (Entry e : scan()) {
            String command = command(e);
            if (command == null) continue; // exited while we looked at it
            out.add(new ProcessInfo(e.pid(), e.ppid(), e.pgid(), e.sid(), node, e.ruid(), users.name(e.ruid()),
                    String.valueOf(e.state()), e.cpuTicks() * 1000 / ticksPerSecond, e.rssKiB(), command));
        }
        return out;
    }

    /** Load, memory and process count of this node. Missing files read as zeros (never throws). */
    public NodeStatus nodeStatus() {
        double load1 = 0;
        try {
            String s = Files.readString(proc.resolve("loadavg"), StandardCharsets.US_ASCII).trim();
            load1 = Double.parseDouble(s.substring(0, s.indexOf(' ')));
        } catch (IOException | RuntimeException ignored) {
            // leave 0: a node without loadavg still answers `ssi nodes`
        }
        long total = 0, available = 0;
        try {
            for (String line : Files.readAllLines(proc.resolve("meminfo"), StandardCharsets.US_ASCII)) {
                if (line.startsWith("MemTotal:")) total = kib(line) * 1024;
                else if (line.startsWith("MemAvailable:")) available = kib(line) * 1024;
            }
        } catch (IOException | RuntimeException ignored) {
            // leave zeros
        }
        int count = 0;
        for (int pid : pids()) {
            if (layout.isClusterPid(pid) && Files.exists(proc.resolve(Integer.toString(pid)))) count++;
        }
        return new NodeStatus(load1, total, available, count);
    }

    /** cmdline joined with spaces, "[comm]" when empty (zombies, kernel threads), null when gone. */
    String command(Entry e) {
        byte[] raw;
        try {
            raw = Files.readAllBytes(proc.resolve(Integer.toString(e.pid())).resolve("cmdline"));
        } catch (IOException ex) {
            return null;
        }
        int end = raw.length;
        while (end > 0 && raw[end - 1] == 0) end--;
        if (end == 0) return "[" + e.comm() + "]";
        StringBuilder b = new StringBuilder(end);
        String s = new String(raw, 0, end, StandardCharsets.UTF_8);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            b.append(c == '\0' ? ' ' : c);
        }
        return b.toString();
    }

    @Override
    public Node node(int pid) {
        if (!layout.isClusterPid(pid)) return null;
        Entry e = read(pid);
        return e == null ? null : new Node(e.pid(), e.ppid(), e.startTime(), e.ruid());
    }

    @Override
    public List<Node> all() {
        List<Node> out = new ArrayList<>();
        for (Entry e : scan()) out.add(new Node(e.pid(), e.ppid(), e.startTime(), e.ruid()));
        return out;
    }

    private List<Integer> pids() {
        List<Integer> out = new ArrayList<>();
        try (DirectoryStream<Path> dir = Files.newDirectoryStream(proc)) {
            for (Path p : dir) {
                String name = p.getFileName().toString();
                if (!name.isEmpty() && Character.isDigit(name.charAt(0))) {
                    try {
                        out.add(Integer.parseInt(name));
                    } catch (NumberFormatException ignored) {
                        // not a pid directory
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            // /proc unreadable: report what we have (nothing) rather than failing a ps
        }
        out.sort(null);
        return out;
    }

    private static Entry readDir(Path dir, int pid) {
        try {
            String stat = Files.readString(dir.resolve("stat"), StandardCharsets.UTF_8);
            String status = Files.readString(dir.resolve("status"), StandardCharsets.UTF_8);
            return parse(pid, stat, status);
        } catch (IOException | RuntimeException e) {
            // gone between the reads (ENOENT/ESRCH), or a half-written file of a dying task
            return null;
        }
    }

    /** Parses stat and status; package-private for tests. comm may hold spaces and ')' so split at the last ')'. */
    static Entry parse(int pid, String stat, String status) {
        int open = stat.indexOf('(');
        int close = stat.lastIndexOf(')');
        String comm = stat.substring(open + 1, close);
        // fields from 3 (state) on; f[i] is field i + 3
        String[] f = stat.substring(close + 2).trim().split(" ");
        char state = f[0].charAt(0);
        int ppid = Integer.parseInt(f[1]);
        int pgid = Integer.parseInt(f[2]);
        int sid = Integer.parseInt(f[3]);
        long cpu = Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime (14) + stime (15)
        long start = Long.parseLong(f[19]);                      // starttime (22)
        int tgid = pid, ruid = -1, euid = -1, suid = -1;
        long rss = 0;
        boolean haveUids = false;
        for (String line : status.split("\n")) {
            if (line.startsWith("Tgid:")) {
                tgid = Integer.parseInt(line.substring(5).trim());
            } else if (line.startsWith("Uid:")) {
                String[] u = line.substring(4).trim().split("\\s+");
                ruid = Integer.parseUnsignedInt(u[0]);
                euid = Integer.parseUnsignedInt(u[1]);
                suid = Integer.parseUnsignedInt(u[2]);
                haveUids = true;
            } else if (line.startsWith("VmRSS:")) {
                rss = kib(line);
            }
        }
        if (!haveUids) throw new IllegalArgumentException("no Uid line in status of " + pid);
        return new Entry(pid, comm, state, ppid, pgid, sid, cpu, start, tgid, ruid, euid, suid, rss);
    }

    private static long kib(String line) {
        // "Name:   1234 kB"
        String v = line.substring(line.indexOf(':') + 1).trim();
        int sp = v.indexOf(' ');
        return Long.parseLong(sp < 0 ? v : v.substring(0, sp));
    }
}
