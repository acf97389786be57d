package ssi.supervisor;

import java.util.List;

/**
 * The live processes of this node as the capability table needs them: identity (pid + start time, so a
 * reused pid is told apart), parent and real uid. {@link ProcessTable} reads it from /proc; tests model
 * trees of their own. Implementations must tolerate processes vanishing at any time.
 */
interface ProcessTree {
    /** One live process; startTime is /proc/pid/stat field 22 (clock ticks after boot). */
    record Node(int pid, int ppid, long startTime, int ruid) {}

    /** The cluster process with this pid, or null if there is none (gone, or not a cluster process). */
    Node node(int pid);

    /** Every live cluster process of this node. */
    List<Node> all();
}
