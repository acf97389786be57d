package ssi.supervisor;

import java.util.Set;

/** Pid layouts for tests, which see the host's /proc where pids carry no node number. */
final class TestLayouts {
    private TestLayouts() {}

    /** Every host pid is a cluster process born on this node. */
    static PidLayout everyPidOn(int node) {
        return new PidLayout() {
            @Override public int nodeOf(int gpid) { return gpid > 0 ? node : 0; }
            @Override public boolean isClusterPid(int pid) { return pid > 0; }
        };
    }

    /** The given pids live on node other, every other pid on node home; gpids above 1 << 22 on their own node. */
    static PidLayout split(int home, int other, Set<Integer> otherPids) {
        return new PidLayout() {
            @Override public int nodeOf(int gpid) {
                if (gpid <= 0) return 0;
                if (gpid >= 1 << 22) return gpid >>> 22; // beyond any host pid: the test names the node
                return otherPids.contains(gpid) ? other : home;
            }
            @Override public boolean isClusterPid(int pid) { return pid > 0; }
        };
    }

    /** Only the given pids are cluster processes, all of this node: safe for SHUTDOWN, which signals them all. */
    static PidLayout only(int node, Set<Integer> pids) {
        return new PidLayout() {
            @Override public int nodeOf(int gpid) { return gpid > 0 ? node : 0; }
            @Override public boolean isClusterPid(int pid) { return pids.contains(pid); }
        };
    }
}
