package ssi.supervisor;

/**
 * Where a gpid lives (docs/ARCHITECTURE.md, "Global PIDs"): node n owns [n << 14, (n + 1) << 14), and
 * pids below 1 << 14 in a node's namespace are node-internal (the shim, the daemon). An interface so
 * tests, which see the host's /proc, can treat any host pid as a process of the node under test.
 * Implementations are immutable.
 */
public interface PidLayout {
    int PID_SHIFT = 14;

    /** The node a gpid was born on (0 for pids that are no gpid). */
    int nodeOf(int gpid);

    /** True for a process of the cluster in this node's namespace; false for node-internal pids. */
    boolean isClusterPid(int pid);

    /** The node whose range gpid is in (where it was born); {@link #nodeOf} may say it lives elsewhere now. */
    default int birthNode(int gpid) {
        return gpid > 0 ? gpid >>> PID_SHIFT : 0;
    }

    /** The layout of a real node. */
    static PidLayout standard() {
        return new PidLayout() {
            @Override public int nodeOf(int gpid) { return gpid > 0 ? gpid >>> PID_SHIFT : 0; }
            @Override public boolean isClusterPid(int pid) { return pid >= 1 << PID_SHIFT; }
        };
    }
}
