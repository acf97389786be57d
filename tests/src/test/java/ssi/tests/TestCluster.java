package ssi.tests;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * One cluster of the end-to-end tests, in a fresh run directory under /tmp (never the default
 * /run/ssi): starts it with the real {@code ./ssi cluster start}, runs {@code ./ssi} and
 * {@code ./ssi-run} against it, and on {@link #close} stops it, kills whatever of it is left (by pid),
 * removes the network namespaces it left and deletes the directory. What had to be cleaned up by force
 * is reported as a failure: a cluster that does not stop cleanly is a bug.
 */
final class TestCluster implements AutoCloseable {
    /** Gpids of node n are [n << PID_SHIFT, (n + 1) << PID_SHIFT). */
    static final int PID_SHIFT = 14;

    final Path dir;
    private int basePort = -1;
    private boolean netns;
    private final List<Cmd.Bg> background = new ArrayList<>();

    private TestCluster(Path dir) {
        this.dir = dir;
    }

    /** A fresh, empty run directory (mode 0755, so other users can reach its sockets); nothing started. */
    static TestCluster create(String tag) {
        try {
            Path d = Files.createTempDirectory(Path.of("/tmp"), "ssi-" + tag + "-");
            Files.setPosixFilePermissions(d, PosixFilePermissions.fromString("rwxr-xr-x"));
            return new TestCluster(d);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Path home() {
        String h = System.getProperty("ssi.home");
        Path p = h != null && !h.isBlank() ? Path.of(h) : Path.of(System.getProperty("user.dir")).getParent();
        return p.toAbsolutePath().normalize();
    }

    static String ssiScript() { return home().resolve("ssi").toString(); }

    static String ssiRunScript() { return home().resolve("ssi-run").toString(); }

    static int nodeOf(int gpid) { return gpid >> PID_SHIFT; }

    static int firstGpid(int node) { return node << PID_SHIFT; }

    static boolean inRange(int gpid, int node) { return nodeOf(gpid) == node; }

    /** The environment for commands on this cluster. */
    Map<String, String> env() {
        return Cmd.env("SSI_RUN_DIR", dir.toString());
    }

    int basePort() { return basePort; }

    // ---------------------------------------------------------------- start

    /** `ssi cluster start --nodes N [--netns] --base-port P` with a free P; fails with the node logs. */
    void start(int nodes, boolean withNetns) {
        this.netns = withNetns;
        if (withNetns) waitForFreeNetnsNames();
        basePort = pickBasePort(withNetns ? 1 : nodes);
        List<String> cmd = new ArrayList<>(List.of(ssiScript(), "cluster", "start", "--nodes", Integer.toString(nodes),
                "--base-port", Integer.toString(basePort)));
        if (withNetns) cmd.add("--netns");
        Cmd.Result r = Cmd.run(Duration.ofSeconds(150), env(), home(), cmd);
        if (r.exit() != 0) fail("cluster start failed: " + r.describe() + "\n" + logs());
    }

    /** A base port P such that P+1..P+n (plain) are free on loopback now. */
    private static int pickBasePort(int n) {
        for (int attempt = 0; attempt < 50; attempt++) {
            int p = ThreadLocalRandom.current().nextInt(20000, 60000);
            boolean free = true;
            for (int i = 0; i <= n && free; i++) free = portFree(p + i);
            if (free) return p;
        }
        throw new IllegalStateException("no free port range found");
    }

    static boolean portFree(int port) {
        try (ServerSocket s = new ServerSocket(port, 1, InetAddress.getByName("127.0.0.1"))) {
            s.setReuseAddress(true);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Namespace names (ssi-n*, ssi-sw) are machine-wide: a --netns cluster of someone else (another run
     * directory) blocks ours, which `cluster start` then refuses. Wait a while for it to go.
     */
    private static void waitForFreeNetnsNames() {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (System.nanoTime() < deadline) {
            boolean busy = false;
            for (String ns : netnsList()) {
                if (ns.startsWith("ssi-n") && !netnsPids(ns).isBlank()) busy = true;
            }
            if (!busy) return;
            Cmd.sleep(1000);
        }
    }

    // ---------------------------------------------------------------- commands

    Cmd.Result ssi(String... args) {
        return Cmd.run(env(), home(), Cmd.list(List.of(ssiScript()), args));
    }

    /** ./ssi run through a prefix (setpriv ... as another user). */
    Cmd.Result ssiAs(List<String> prefix, String... args) {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.add(ssiScript());
        cmd.addAll(List.of(args));
        return Cmd.run(env(), home(), cmd);
    }

    Cmd.Result ssiRun(int node, String... program) {
        return ssiRunIn(home(), node, program);
    }

    Cmd.Result ssiRunIn(Path cwd, int node, String... program) {
        return Cmd.run(env(), cwd, ssiRunCommand(node, program));
    }

    /** ssi-run in the background; stopped (if still running) by close(). */
    Cmd.Bg ssiRunBg(int node, String... program) {
        Cmd.Bg bg = Cmd.start(env(), home(), ssiRunCommand(node, program));
        synchronized (background) {
            background.add(bg);
        }
        return bg;
    }

    /** A program that prints its gpid on the first line, then becomes `sleep seconds` (same pid). */
    Cmd.Bg sleeper(int node, int seconds) {
        return ssiRunBg(node, "bash", "-c", "echo $$; exec sleep " + seconds);
    }

    static List<String> ssiRunCommand(int node, String... program) {
        List<String> cmd = new ArrayList<>(List.of(ssiRunScript(), "--node", Integer.toString(node), "--"));
        cmd.addAll(List.of(program));
        return cmd;
    }

    // ---------------------------------------------------------------- parsed views

    record NodeRow(int id, String address, String state) {}

    /** `ssi [--node ask] nodes`, parsed (fails unless it exits 0). */
    Map<Integer, NodeRow> nodes(int ask) {
        Cmd.Result r = ssi("--node", Integer.toString(ask), "nodes").expectExit(0);
        Map<Integer, NodeRow> rows = new LinkedHashMap<>();
        List<String> lines = r.outLines();
        assertTrue(!lines.isEmpty() && lines.getFirst().trim().startsWith("ID"), () -> "no header in " + r.describe());
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.trim().split("\\s+");
            rows.put(Integer.parseInt(f[0]), new NodeRow(Integer.parseInt(f[0]), f[1], f[2]));
        }
        return rows;
    }

    record PsRow(int gpid, int node, String user, String cmd, Map<String, String> columns) {}

    /** `ssi [--node ask] ps` (default columns), parsed by its header. */
    List<PsRow> ps(int ask) {
        Cmd.Result r = ssi("--node", Integer.toString(ask), "ps").expectExit(0);
        return parsePs(r);
    }

    static List<PsRow> parsePs(Cmd.Result r) {
        List<String> lines = r.outLines();
        assertTrue(!lines.isEmpty(), () -> "no header in " + r.describe());
        String[] header = lines.getFirst().trim().split("\\s+");
        List<PsRow> rows = new ArrayList<>();
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.trim().split("\\s+", header.length);
            Map<String, String> cols = new LinkedHashMap<>();
            for (int i = 0; i < header.length && i < f.length; i++) cols.put(header[i], f[i]);
            rows.add(new PsRow(Integer.parseInt(cols.get("GPID")), Integer.parseInt(cols.getOrDefault("NODE", "-1")),
                    cols.getOrDefault("USER", ""), cols.getOrDefault("CMD", ""), cols));
        }
        return rows;
    }

    record ConfNode(int id, String host, int port, String netns) {}

    /** DIR/cluster.conf, parsed. */
    List<ConfNode> conf() {
        List<ConfNode> out = new ArrayList<>();
        Path f = dir.resolve("cluster.conf");
        if (!Files.exists(f)) return out;
        try {
            for (String line : Files.readAllLines(f)) {
                String[] w = line.trim().split("\\s+");
                if (w.length >= 4 && w[0].equals("node")) {
                    String ns = w.length >= 6 && w[4].equals("netns") ? w[5] : null;
                    out.add(new ConfNode(Integer.parseInt(w[1]), w[2], Integer.parseInt(w[3]), ns));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /** The tails of the node logs, for failure messages. */
    String logs() {
        StringBuilder sb = new StringBuilder();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path log : s.filter(p -> p.getFileName().toString().endsWith(".log")).sorted().toList()) {
                List<String> lines = Cmd.read(log).lines().toList();
                sb.append("--- ").append(log).append(" (tail):\n");
                for (String l : lines.subList(Math.max(0, lines.size() - 30), lines.size())) sb.append(l).append('\n');
            }
        } catch (IOException e) {
            sb.append("(cannot list ").append(dir).append(": ").append(e.getMessage()).append(")\n");
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------- processes

    /** Host pids of the processes whose command line or environment mentions s (this JVM excluded). */
    static List<Long> processesMentioning(String s) {
        List<Long> out = new ArrayList<>();
        long self = ProcessHandle.current().pid();
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            for (Path p : procs.toList()) {
                String name = p.getFileName().toString();
                if (!name.chars().allMatch(Character::isDigit)) continue;
                long pid = Long.parseLong(name);
                if (pid == self) continue;
                if (cmdline(pid).contains(s) || readProc(p.resolve("environ")).contains(s)) out.add(pid);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /** /proc/pid/cmdline with NULs as spaces ("" if gone). */
    static String cmdline(long pid) {
        return readProc(Path.of("/proc", Long.toString(pid), "cmdline")).replace('\0', ' ').trim();
    }

    static List<String> argv(long pid) {
        String raw = readProc(Path.of("/proc", Long.toString(pid), "cmdline"));
        return raw.isEmpty() ? List.of() : List.of(raw.split("\0"));
    }

    private static String readProc(Path p) {
        try {
            return new String(Files.readAllBytes(p), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    /** Host pid of node's daemon JVM (ssi.supervisor.Ssid --node N --run-dir DIR), if running. */
    Optional<Long> daemonPid(int node) {
        for (long pid : processesMentioning(dir.toString())) {
            List<String> a = argv(pid);
            int i = a.indexOf("ssi.supervisor.Ssid");
            if (i >= 0 && a.subList(i, a.size()).equals(List.of("ssi.supervisor.Ssid", "--node", Integer.toString(node),
                    "--run-dir", dir.toString()))) {
                return Optional.of(pid);
            }
        }
        return Optional.empty();
    }

    // ---------------------------------------------------------------- network namespaces

    static String ipTool() {
        for (String p : new String[] {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
            if (Files.isExecutable(Path.of(p))) return p;
        }
        return "ip";
    }

    static List<String> netnsList() {
        Cmd.Result r = Cmd.run(Duration.ofSeconds(30), Cmd.env(), null, List.of(ipTool(), "netns", "list"));
        List<String> out = new ArrayList<>();
        for (String l : r.outLines()) {
            if (!l.isBlank()) out.add(l.trim().split("\\s+")[0]);
        }
        return out;
    }

    static String netnsPids(String ns) {
        return Cmd.run(Duration.ofSeconds(30), Cmd.env(), null, List.of(ipTool(), "netns", "pids", ns)).out().trim();
    }

    // ---------------------------------------------------------------- stop and clean up

    /**
     * Stops the cluster and removes every trace of it; returns what had to be cleaned up by force (empty
     * when `ssi cluster stop` did it all).
     */
    List<String> shutDown() {
        List<String> problems = new ArrayList<>();
        List<ConfNode> conf = conf();
        boolean hadCluster = Files.exists(dir.resolve("cluster.conf"));
        if (hadCluster) {
            Cmd.Result r = Cmd.run(Duration.ofSeconds(90), env(), home(), List.of(ssiScript(), "cluster", "stop"));
            if (r.exit() != 0 && !r.err().contains("no cluster is running")) {
                problems.add("`ssi cluster stop` failed: " + r.describe());
            }
        }
        List<Cmd.Bg> bgs;
        synchronized (background) {
            bgs = List.copyOf(background);
        }
        for (Cmd.Bg bg : bgs) {
            try {
                if (!bg.process.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)) {
                    problems.add("still running 20 s after the cluster stopped: " + bg.describe());
                    bg.kill();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                bg.kill();
            }
            bg.deleteFiles();
        }
        // Whatever of this cluster still runs: node inits first (the kernel then kills their nodes).
        List<Long> left = processesMentioning(dir.toString());
        if (!left.isEmpty()) {
            List<String> what = new ArrayList<>();
            left.sort(Comparator.comparing((Long pid) -> !cmdline(pid).contains("ssi-shim")));
            for (long pid : left) {
                String c = cmdline(pid);
                if (c.isEmpty()) continue; // a zombie or gone meanwhile
                what.add(pid + " " + c);
                ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            }
            if (!what.isEmpty() && hadCluster) problems.add("processes left after cluster stop, killed: " + what);
            Cmd.waitUntilQuietly(Duration.ofSeconds(10), () -> processesMentioning(dir.toString()).stream()
                    .allMatch(pid -> cmdline(pid).isEmpty()));
        }
        if (netns || conf.stream().anyMatch(n -> n.netns() != null)) {
            List<String> ours = conf.stream().map(ConfNode::netns).filter(n -> n != null).toList();
            List<String> present = netnsList();
            for (String ns : ours) {
                if (!present.contains(ns)) continue;
                if (!netnsPids(ns).isBlank()) {
                    problems.add("network namespace " + ns + " still holds processes " + netnsPids(ns) + "; left in place");
                    continue;
                }
                problems.add("network namespace " + ns + " was left behind (deleted)");
                Cmd.run(Duration.ofSeconds(30), Cmd.env(), null, List.of(ipTool(), "netns", "del", ns));
            }
            present = netnsList();
            if (present.contains("ssi-sw") && present.stream().noneMatch(n -> n.startsWith("ssi-n"))) {
                problems.add("network namespace ssi-sw was left behind (deleted)");
                Cmd.run(Duration.ofSeconds(30), Cmd.env(), null, List.of(ipTool(), "netns", "del", "ssi-sw"));
            }
        }
        deleteTree(dir);
        return problems;
    }

    @Override
    public void close() {
        List<String> problems = shutDown();
        assertEquals(List.of(), problems, "the cluster in " + dir + " did not stop cleanly");
    }

    static void deleteTree(Path root) {
        if (!Files.exists(root)) return;
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException e) {
            // best effort: a temp dir
        }
    }
}
