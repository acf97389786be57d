package ssi.supervisor;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Configuration of one node daemon, in one place: set the fields, call {@link #conclude()} once (it
 * validates and freezes), then hand the context to {@link NodeDaemon}. Built by {@link Ssid} on the main
 * thread; read-only afterwards, so any thread may read it.
 *
 * <p>Paths of the run directory follow docs/ARCHITECTURE.md ("Run directory").
 */
public final class NodeContext {
    /** Highest node id: gpids are 22 bits wide at most (pid_max 4194304 = 256 << 14). */
    public static final int MAX_NODE = 255;

    private int nodeId = -1;
    private Path runDir;
    private Path procRoot = Path.of("/proc");
    private Path passwdFile = Path.of("/etc/passwd");
    /** USER_HZ: the unit of utime/stime in /proc/pid/stat. 100 on every x86_64 Linux (getconf CLK_TCK). */
    private int clockTicksPerSecond = 100;
    private long rpcTimeoutMillis = 5_000;
    /** SHUTDOWN: how long cluster processes get between SIGTERM and SIGKILL. */
    private long killGraceMillis = 3_000;
    /** Control requests are a few bytes; anything bigger is garbage and closes the connection. */
    private int maxRequestBytes = 64 << 10;
    private int workerThreads = 4;
    private boolean concluded;

    public NodeContext nodeId(int id) { check(); this.nodeId = id; return this; }
    public NodeContext runDir(Path dir) { check(); this.runDir = dir; return this; }
    public NodeContext procRoot(Path p) { check(); this.procRoot = p; return this; }
    public NodeContext passwdFile(Path p) { check(); this.passwdFile = p; return this; }
    public NodeContext clockTicksPerSecond(int t) { check(); this.clockTicksPerSecond = t; return this; }
    public NodeContext rpcTimeoutMillis(long ms) { check(); this.rpcTimeoutMillis = ms; return this; }
    public NodeContext killGraceMillis(long ms) { check(); this.killGraceMillis = ms; return this; }
    public NodeContext maxRequestBytes(int n) { check(); this.maxRequestBytes = n; return this; }
    public NodeContext workerThreads(int n) { check(); this.workerThreads = n; return this; }

    /**
     * Validates every field once; afterwards the context cannot change. Throws IllegalArgumentException
     * with a message a person can act on.
     */
    public NodeContext conclude() {
        check();
        if (nodeId < 1 || nodeId > MAX_NODE) {
            throw new IllegalArgumentException("node id " + nodeId + " is out of range: give 1.." + MAX_NODE);
        }
        if (runDir == null) throw new IllegalArgumentException("no run directory given (--run-dir DIR)");
        if (!Files.isDirectory(runDir)) {
            throw new IllegalArgumentException("run directory " + runDir + " does not exist; start the cluster with `ssi cluster start`");
        }
        if (!Files.isDirectory(procRoot)) throw new IllegalArgumentException("no proc file system at " + procRoot);
        if (clockTicksPerSecond <= 0) throw new IllegalArgumentException("clock ticks per second must be > 0");
        if (rpcTimeoutMillis <= 0) throw new IllegalArgumentException("RPC timeout must be > 0 ms");
        if (killGraceMillis < 0) throw new IllegalArgumentException("kill grace time must be >= 0 ms");
        if (rpcTimeoutMillis <= killGraceMillis) {
            // a whole-cluster shutdown waits for each node's SIGTERM grace time inside one RPC
            throw new IllegalArgumentException("RPC timeout (" + rpcTimeoutMillis + " ms) must be longer than the kill grace time ("
                    + killGraceMillis + " ms)");
        }
        if (maxRequestBytes < 16) throw new IllegalArgumentException("max request size must be >= 16 bytes");
        if (workerThreads < 1) throw new IllegalArgumentException("worker threads must be >= 1");
        concluded = true;
        return this;
    }

    private void check() {
        if (concluded) throw new IllegalStateException("NodeContext is concluded; it cannot change");
    }

    public int nodeId() { return nodeId; }
    public Path runDir() { return runDir; }
    public Path procRoot() { return procRoot; }
    public Path passwdFile() { return passwdFile; }
    public int clockTicksPerSecond() { return clockTicksPerSecond; }
    public long rpcTimeoutMillis() { return rpcTimeoutMillis; }
    public long killGraceMillis() { return killGraceMillis; }
    public int maxRequestBytes() { return maxRequestBytes; }
    public int workerThreads() { return workerThreads; }

    public Path clusterConfFile() { return runDir.resolve("cluster.conf"); }
    public Path secretFile() { return runDir.resolve("secret"); }
    public Path linkSocket() { return runDir.resolve("node-" + nodeId + ".link"); }
    public Path controlSocket() { return runDir.resolve("node-" + nodeId + ".ctl"); }
}
