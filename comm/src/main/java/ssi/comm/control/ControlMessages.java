package ssi.comm.control;

import java.util.List;

/**
 * The control protocol's messages (docs/ARCHITECTURE.md, "Control protocol"): what the ssi CLI asks a
 * node daemon, and what daemons forward to each other over comm RPC. Immutable values; encoding is in
 * {@link ControlCodec}.
 */
public final class ControlMessages {
    private ControlMessages() {}

    public static final int PING = 1, NODES = 2, PS = 3, KILL = 4, CAPGET = 5, CAPSET = 6, SHUTDOWN = 7,
            CHECKPOINT = 8, RESTART = 9, RESTART_FG = 10;

    /** A request; {@link #type()} is its wire type. */
    public sealed interface Request permits Ping, Nodes, Ps, Kill, CapGet, CapSet, Shutdown,
            Checkpoint, Restart, RestartForeground {
        int type();
    }

    public record Ping() implements Request { public int type() { return PING; } }

    public record Nodes() implements Request { public int type() { return NODES; } }

    /** allNodes=false: only the processes of the node that receives it (used for forwarding). */
    public record Ps(boolean allNodes) implements Request { public int type() { return PS; } }

    public record Kill(int gpid, int signal) implements Request { public int type() { return KILL; } }

    /** gpid 0 means the caller's parent process (the shell that ran ssi). */
    public record CapGet(int gpid) implements Request { public int type() { return CAPGET; } }

    /** set: one of {@link Capabilities#EFFECTIVE} ..; raise/lower are capability bit masks. */
    public record CapSet(int gpid, int set, int raise, int lower) implements Request { public int type() { return CAPSET; } }

    public record Shutdown(boolean wholeCluster) implements Request { public int type() { return SHUTDOWN; } }

    /**
     * Checkpoint the application rooted at gpid into dir (absolute, on the owner node's file system; ""
     * means the daemon's default directory); stop: kill it once the image is safely written. incremental:
     * store only the pages written since the parent image (parent, absolute; "" = the last image the
     * node wrote of this application for the caller).
     */
    public record Checkpoint(int gpid, String dir, boolean stop, boolean incremental, String parent) implements Request {
        /** A full checkpoint. */
        public Checkpoint(int gpid, String dir, boolean stop) { this(gpid, dir, stop, false, ""); }
        public int type() { return CHECKPOINT; }
    }

    /**
     * Restart the image in dir (absolute, on the receiving node's file system) on the node that receives
     * the request, with the image's gpid.
     */
    public record Restart(String dir) implements Request { public int type() { return RESTART; } }

    /**
     * The foreground restart's two steps (docs/ARCHITECTURE.md, "Foreground restart"), sent by the launch
     * stub A of {@code ssi-run --restart} from inside the node: with stub 0, every check of a restart and
     * the image's root gpid back, nothing created; then, once A has made its child with that pid (a
     * restore stub), the restore into that stub. terminalFd: A's descriptor on the caller's terminal
     * (the image's terminal fds reopen it), or -1.
     */
    public record RestartForeground(String dir, int stub, int terminalFd) implements Request {
        public int type() { return RESTART_FG; }
    }

    /**
     * A restarted application: its root gpid, how long the restart took and (RESTART_FG only, 0 otherwise)
     * the pid the root's parent had in the image, which ssi-run's launch stub takes when it is free.
     */
    public record Restarted(int gpid, long micros, int ppid) {
        public Restarted(int gpid, long micros) {
            this(gpid, micros, 0);
        }
    }

    /**
     * A written checkpoint: where, how long the application was frozen, how many processes, page bytes
     * stored, and for an incremental one the parent image and the page bytes it refers to there.
     */
    public record Checkpointed(String dir, long freezeMicros, int processes, long pageBytes, String parent,
                               long parentPageBytes) {
        public Checkpointed(String dir, long freezeMicros, int processes, long pageBytes) {
            this(dir, freezeMicros, processes, pageBytes, "", 0);
        }
    }

    /** One node as `ssi nodes` shows it. */
    public record NodeInfo(int id, String address, String state, double load1, long memTotal, long memAvailable,
                           int processes) {}

    /** One process as `ssi ps` shows it. */
    public record ProcessInfo(int gpid, int ppid, int pgid, int sid, int node, int uid, String user, String state,
                              long cpuMillis, long rssKiB, String command) {}

    /** A process's four SSI capability sets. */
    public record CapSets(int gpid, int permitted, int effective, int inheritablePermitted, int inheritableEffective) {}

    /**
     * A reply: status 0 is success (then exactly one of the payload fields fits the request type), any
     * other status is an errno value and message says what went wrong in words a person can act on.
     */
    public record Reply(int status, String message, int nodeId, List<NodeInfo> nodes, List<ProcessInfo> processes,
                        CapSets caps, Checkpointed checkpoint, Restarted restart) {
        public Reply(int status, String message, int nodeId, List<NodeInfo> nodes, List<ProcessInfo> processes,
                     CapSets caps, Checkpointed checkpoint) {
            this(status, message, nodeId, nodes, processes, caps, checkpoint, null);
        }
        public static Reply ok() { return new Reply(0, "", 0, List.of(), List.of(), null, null); }
        public static Reply error(int errno, String message) { return new Reply(errno, message, 0, List.of(), List.of(), null, null); }
        public static Reply pong(int nodeId) { return new Reply(0, "", nodeId, List.of(), List.of(), null, null); }
        public static Reply nodes(List<NodeInfo> n) { return new Reply(0, "", 0, List.copyOf(n), List.of(), null, null); }
        public static Reply processes(List<ProcessInfo> p) { return new Reply(0, "", 0, List.of(), List.copyOf(p), null, null); }
        public static Reply caps(CapSets c) { return new Reply(0, "", 0, List.of(), List.of(), c, null); }
        public static Reply checkpointed(Checkpointed c) { return new Reply(0, "", 0, List.of(), List.of(), null, c); }
        public static Reply restarted(Restarted r) { return new Reply(0, "", 0, List.of(), List.of(), null, null, r); }
        public boolean isOk() { return status == 0; }
    }

    /** errno values used as reply statuses. */
    public static final int EPERM = 1, ENOENT = 2, ESRCH = 3, EIO = 5, EEXIST = 17, ENODEV = 19, EINVAL = 22, EPROTO = 71,
            EOPNOTSUPP = 95;
}
