package ssi.supervisor;

import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.CapSets;
import ssi.comm.control.ControlMessages.NodeInfo;
import ssi.comm.control.ControlMessages.ProcessInfo;

import java.util.ArrayList;
import java.util.List;

/**
 * What a control request does on the node that owns the process or is asked about itself: list, signal,
 * read and change capabilities of this node's processes, report this node's status, and terminate every
 * process at shutdown. Permission checks use the caller's uid as the control socket or the RPC envelope
 * gave it. Called from control and RPC worker threads; keeps no state of its own.
 */
final class LocalNode {
    static final int SIGKILL = 9, SIGTERM = 15, MAX_SIGNAL = 64;

    private final int nodeId;
    private final ProcessTable table;
    private final PidLayout layout;
    private final CapabilityTable caps;
    private final NativeSignals natives;
    private final NodeLog log;

    LocalNode(int nodeId, ProcessTable table, PidLayout layout, CapabilityTable caps, NativeSignals natives, NodeLog log) {
        this.nodeId = nodeId;
        this.table = table;
        this.layout = layout;
        this.caps = caps;
        this.natives = natives;
        this.log = log;
    }

    int nodeId() { return nodeId; }

    List<ProcessInfo> ps() {
        return table.ps(nodeId);
    }

    NodeInfo info(String address) {
        ProcessTable.NodeStatus s = table.nodeStatus();
        return new NodeInfo(nodeId, address, "UP", s.load1(), s.memTotalBytes(), s.memAvailableBytes(), s.processes());
    }

    /**
     * kill(2) on a process of this node for callerUid. Like the kernel, root may signal anything and
     * anyone else only processes whose real or saved uid is the caller's uid.
     */
    void kill(int callerUid, int gpid, int sig) throws Refused {
        if (sig < 0 || sig > MAX_SIGNAL) {
            throw new Refused(ControlMessages.EINVAL, "signal " + sig + " is out of range (0.." + MAX_SIGNAL + ")");
        }
        ProcessTable.Entry t = process(gpid);
        if (callerUid != 0 && callerUid != t.ruid() && callerUid != t.suid()) {
            throw new Refused(ControlMessages.EPERM, "uid " + callerUid + " may not signal process " + gpid
                    + " on node " + nodeId + ": it belongs to uid " + t.ruid());
        }
        int err = natives.kill(gpid, sig);
        if (err == ControlMessages.ESRCH) throw new Refused(err, "no process " + gpid + " on node " + nodeId);
        if (err != 0) throw new Refused(err, "kill(" + gpid + ", " + sig + ") failed on node " + nodeId + " with errno " + err);
    }

    CapSets capGet(int gpid) throws Refused {
        process(gpid);
        return caps.get(gpid).toWire(gpid);
    }

    CapSets capSet(int callerUid, int gpid, int set, int raise, int lower) throws Refused {
        process(gpid);
        return caps.set(gpid, set, raise, lower, callerUid).toWire(gpid);
    }

    /** The parent of a caller identified by its pid in this namespace (for "gpid 0" requests). */
    int parentOf(int callerPid) throws Refused {
        if (callerPid <= 0) {
            throw new Refused(ControlMessages.EINVAL, "give a GPID: ssi is not running inside the cluster, so it has no parent process here");
        }
        ProcessTable.Entry e = table.read(callerPid);
        if (e == null) throw new Refused(ControlMessages.ESRCH, "the calling process " + callerPid + " is gone");
        return e.ppid();
    }

    /**
     * SIGTERM to every cluster process of this node, up to graceMillis for them to exit, then SIGKILL to
     * whatever is left (including processes forked meanwhile). Zombies count as exited.
     */
    void terminateAll(long graceMillis) {
        List<ProcessTable.Entry> victims = new ArrayList<>();
        for (ProcessTable.Entry e : table.scan()) {
            if (!e.isZombie()) {
                victims.add(e);
                natives.kill(e.pid(), SIGTERM);
            }
        }
        long deadline = System.nanoTime() + graceMillis * 1_000_000;
        while (anyAlive(victims) && System.nanoTime() < deadline) {
            try {
                Thread.sleep(50);
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        int killed = 0;
        for (ProcessTable.Entry e : table.scan()) {
            if (!e.isZombie() && natives.kill(e.pid(), SIGKILL) == 0) killed++;
        }
        log.info("shutdown: sent SIGTERM to " + victims.size() + " process(es), SIGKILL to " + killed);
    }

    private boolean anyAlive(List<ProcessTable.Entry> victims) {
        for (ProcessTable.Entry v : victims) {
            ProcessTable.Entry now = table.read(v.pid());
            if (now != null && now.startTime() == v.startTime() && !now.isZombie()) return true;
        }
        return false;
    }

    private ProcessTable.Entry process(int gpid) throws Refused {
        ProcessTable.Entry e = layout.isClusterPid(gpid) ? table.read(gpid) : null;
        if (e == null) throw new Refused(ControlMessages.ESRCH, "no process " + gpid + " on node " + nodeId);
        return e;
    }
}
