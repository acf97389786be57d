package ssi.supervisor;

import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.CapSets;
import ssi.comm.control.ControlMessages.NodeInfo;
import ssi.comm.control.ControlMessages.ProcessInfo;

import ssi.comm.control.Capabilities;
import ssi.comm.control.ControlMessages.Checkpointed;
import ssi.ghost.dump.CheckpointException;
import ssi.ghost.dump.Checkpointer;

import ssi.ghost.restore.RootStub;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
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
    /** Null when the daemon has no shim link (unit tests): CHECKPOINT then fails with EIO. */
    private final Checkpointer checkpointer;
    private final Path checkpointRoot;

    /** Where `ssi checkpoint` without -o writes: DEFAULT_CHECKPOINTS/GPID-TIMESTAMP. */
    static final Path DEFAULT_CHECKPOINTS = Path.of("/var/lib/ssi/checkpoints");
    private static final int S_ISVTX = 01000, S_IWOTH = 02;

    LocalNode(int nodeId, ProcessTable table, PidLayout layout, CapabilityTable caps, NativeSignals natives, NodeLog log) {
        this(nodeId, table, layout, caps, natives, log, null, DEFAULT_CHECKPOINTS);
    }

    LocalNode(int nodeId, ProcessTable table, PidLayout layout, CapabilityTable caps, NativeSignals natives, NodeLog log,
              Checkpointer checkpointer, Path checkpointRoot) {
        this(nodeId, table, layout, caps, natives, log, checkpointer, checkpointRoot, null);
    }

    /**
     * Rebuilds an image's application on this node in stub (ssi.ghost.restore.ImageRestore#restart with the
     * node's link); checkOnly: every check and the root gpid (micros 0), nothing created.
     */
    interface Restarter {
        ssi.ghost.restore.ImageRestore.Result restart(Path dir, int callerUid, int callerGid, RootStub stub,
                                                      boolean checkOnly) throws IOException;
    }

    private final Restarter restarter;
    /** Told the gpids of every finished restart (NodeDaemon announces the foreign ones to their birth nodes). */
    private volatile java.util.function.Consumer<java.util.List<Integer>> onRestored = g -> { };

    LocalNode(int nodeId, ProcessTable table, PidLayout layout, CapabilityTable caps, NativeSignals natives, NodeLog log,
              Checkpointer checkpointer, Path checkpointRoot, Restarter restarter) {
        this.restarter = restarter;
        this.checkpointer = checkpointer;
        this.checkpointRoot = checkpointRoot;
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

    /**
     * Checkpoints the application rooted at gpid for callerUid (Kerrighed's rules: CAN_CHECKPOINT in the
     * root's effective set, and the caller owns every process of it or is root; the ownership part is
     * checked by the Checkpointer on the tree it freezes). dir "" means the default directory. Runs on
     * the calling worker thread for as long as the checkpoint takes.
     */
    Checkpointed checkpoint(int callerUid, int gpid, String dir, boolean stop) throws Refused {
        return checkpoint(callerUid, gpid, dir, stop, false, "");
    }

    /**
     * As above; incremental stores only the pages written since the parent image (parent: absolute path,
     * or "" for the last image this node wrote of the application for this caller).
     */
    Checkpointed checkpoint(int callerUid, int gpid, String dir, boolean stop, boolean incremental, String parent) throws Refused {
        process(gpid);
        if (!parent.isEmpty() && !Path.of(parent).isAbsolute()) {
            throw new Refused(ControlMessages.EINVAL, "the parent image directory must be an absolute path (got " + parent + ")");
        }
        int effective = caps.get(gpid).effective();
        if ((effective & Capabilities.CAN_CHECKPOINT) == 0) {
            throw new Refused(ControlMessages.EPERM, "process " + gpid + " on node " + nodeId + " does not have CAN_CHECKPOINT in its "
                    + "effective SSI capability set (" + Capabilities.names(effective) + "); its owner can raise it with "
                    + "`ssi capset " + gpid + " -e +CAN_CHECKPOINT`");
        }
        Path target;
        if (dir.isEmpty()) {
            String stamp = LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
            target = checkpointRoot.resolve(gpid + "-" + stamp);
            try {
                // 0711: owners reach their own 0700 image below it, nobody can list whose images exist
                Files.createDirectories(checkpointRoot, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx--x--x")));
                // made here as root (the caller may not write the root), handed to the caller, who then writes into it
                Files.createDirectory(target, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
                Files.setAttribute(target, "unix:uid", callerUid, LinkOption.NOFOLLOW_LINKS);
            } catch (IOException e) {
                throw new Refused(ControlMessages.EIO, "cannot create " + checkpointRoot + " on node " + nodeId + ": " + e.getMessage());
            }
        } else {
            target = Path.of(dir);
            if (!target.isAbsolute()) {
                throw new Refused(ControlMessages.EINVAL, "the image directory must be an absolute path (got " + dir + ")");
            }
            mayWriteImageAt(callerUid, target.normalize());
            target = target.normalize();
        }
        if (checkpointer == null) throw new Refused(ControlMessages.EIO, "node " + nodeId + " has no link to its shim: cannot freeze processes");
        try {
            Checkpointer.Result r = checkpointer.checkpoint(gpid, target, stop, incremental || !parent.isEmpty(),
                    parent.isEmpty() ? null : Path.of(parent).normalize(), callerUid, primaryGid(callerUid), pid -> {
                try {
                    return caps.get(pid).effective();
                } catch (Refused e) {
                    return 0; // gone since the freeze: the inventory records no capabilities for it
                }
            });
            log.info("checkpoint of process " + gpid + " for uid " + callerUid + ": " + r.processes() + " process(es), "
                    + r.pageBytes() + " page bytes, frozen " + r.freezeMicros() + " us, written to " + r.dir()
                    + (r.parent() != null ? "; incremental on " + r.parent() + ", " + r.parentPageBytes() + " page bytes there" : "")
                    + (stop ? "; application stopped" : ""));
            for (String note : r.notes()) log.info("checkpoint of process " + gpid + ": " + note);
            return new Checkpointed(r.dir().toString(), r.freezeMicros(), r.processes(), r.pageBytes(),
                    r.parent() == null ? "" : r.parent().toString(), r.parentPageBytes());
        } catch (CheckpointException e) {
            if (dir.isEmpty()) removeEmpty(target);
            throw new Refused(e.errno(), e.getMessage());
        } catch (IOException e) {
            if (dir.isEmpty()) removeEmpty(target);
            throw new Refused(ControlMessages.EIO, "checkpoint of process " + gpid + " on node " + nodeId + " failed: " + e.getMessage());
        }
    }

    /**
     * Restarts the image in dir on this node for callerUid (root, or the image's owner, who must be able to
     * read it: the image is read with the caller's file-system identity). Every check runs before the stub
     * is spawned; a failure leaves nothing behind. Runs on the calling worker thread.
     */
    void onRestored(java.util.function.Consumer<java.util.List<Integer>> listener) {
        this.onRestored = listener;
    }

    ControlMessages.Restarted restart(int callerUid, String dir) throws Refused {
        return restart(callerUid, dir, RootStub.spawned(), false);
    }

    /**
     * A foreground restart's step (docs/ARCHITECTURE.md, "Foreground restart") for the launch stub A, the
     * caller: stub 0 runs every check and names the gpid, else the image is rebuilt in stub, A's child.
     */
    ControlMessages.Restarted restartForeground(Caller caller, ControlMessages.RestartForeground r) throws Refused {
        if (caller.pid() <= 0)
            throw new Refused(ControlMessages.EINVAL, "a foreground restart comes from ssi-run --restart inside node " + nodeId);
        if (r.stub() == 0) return restart(caller.uid(), r.dir(), RootStub.checkOnly(caller.pid(), r.terminalFd()), true);
        ControlMessages.Restarted done = restart(caller.uid(), r.dir(), RootStub.adopted(r.stub(), caller.pid(), r.terminalFd()), false);
        // ssi-run's A takes the pid of the root's parent in the image when it is free (same getppid(), and
        // the same getpgrp() when A was the group leader)
        if (done.ppid() > 0 && done.ppid() != caller.pid())
            log.info("restart of " + r.dir() + ": the parent of gpid " + done.gpid() + " had pid " + done.ppid()
                    + ", which was taken on node " + nodeId + ": its parent is now ssi-run's launch stub " + caller.pid()
                    + ", so its getppid() (and its group, when that parent led it) differs from the checkpoint");
        return done;
    }

    private ControlMessages.Restarted restart(int callerUid, String dir, RootStub stub, boolean checkOnly) throws Refused {
        Path target = Path.of(dir);
        if (dir.isEmpty() || !target.isAbsolute())
            throw new Refused(ControlMessages.EINVAL, "the image directory must be an absolute path (got " + dir + ")");
        if (restarter == null) throw new Refused(ControlMessages.EIO, "node " + nodeId + " has no link to its shim: cannot restart processes");
        try {
            ssi.ghost.restore.ImageRestore.Result r = restarter.restart(target.normalize(), callerUid, primaryGid(callerUid), stub, checkOnly);
            if (!checkOnly) {
                // The SSI capabilities each process had (its effective set), within what its uid gets.
                for (int[] c : r.ssiCaps()) caps.restored(c[0], c[1], c[2]);
                if (System.getenv(ssi.ghost.restore.ImageRestore.TRACE_ENV) != null) r.log().forEach(l -> log.info("restart trace: " + l));
                onRestored.accept(r.ssiCaps().stream().map(c -> c[0]).toList());
                log.info("restart of " + target + " for uid " + callerUid + ": gpid " + r.gpid() + " runs, in " + r.micros() + " us"
                        + (r.log().isEmpty() || !r.log().getLast().startsWith("times: ") ? "" : "; " + r.log().getLast()));
            }
            return new ControlMessages.Restarted(r.gpid(), r.micros(), r.rootPpid());
        } catch (ssi.ghost.restore.RestoreException e) {
            int errno = switch (e.errno()) {
                case ControlMessages.EPERM, ControlMessages.EEXIST, ControlMessages.EOPNOTSUPP, ControlMessages.EINVAL,
                     ControlMessages.ESRCH -> e.errno();
                case 13 -> ControlMessages.EPERM;
                default -> ControlMessages.EIO;
            };
            throw new Refused(errno, "restart of " + target + " on node " + nodeId + " failed: " + e.getMessage());
        } catch (ssi.ghost.dump.CheckpointException e) {
            throw new Refused(e.errno(), "restart of " + target + " on node " + nodeId + " failed: " + e.getMessage());
        } catch (IOException | RuntimeException e) {
            throw new Refused(ControlMessages.EIO, "restart of " + target + " on node " + nodeId + " failed: " + e.getMessage());
        }
    }

    /** The default directory made for a checkpoint that then failed (it is empty: the checkpoint cleaned up). */
    private void removeEmpty(Path dir) {
        try {
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            log.info("cannot remove " + dir + " after a failed checkpoint: " + e.getMessage());
        }
    }

    /** The primary gid of uid in /etc/passwd (the image's files get it), or 65534 (nogroup) if unknown. */
    private static int primaryGid(int uid) {
        if (uid == 0) return 0;
        try {
            for (String line : Files.readAllLines(Path.of("/etc/passwd"))) {
                String[] f = line.split(":");
                if (f.length > 3 && f[2].equals(Integer.toString(uid))) return Integer.parseInt(f[3]);
            }
        } catch (IOException | RuntimeException e) {
            // fall through: no group of the caller's is known
        }
        return 65534;
    }

    /**
     * A clear refusal up front for what the kernel would refuse anyway once the image is written with the
     * caller's fs identity: a non-root caller may put an image only in a directory of its own, or a new
     * one inside a directory it owns or a sticky world-writable one such as /tmp.
     */
    private void mayWriteImageAt(int callerUid, Path dir) throws Refused {
        if (callerUid == 0) return;
        try {
            if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
                if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS) || (int) Files.getAttribute(dir, "unix:uid", LinkOption.NOFOLLOW_LINKS) != callerUid) {
                    throw new Refused(ControlMessages.EPERM, dir + " is not a directory of uid " + callerUid + ": give a new directory or one you own");
                }
                return;
            }
            Path parent = dir.getParent();
            if (parent == null || !Files.isDirectory(parent)) {
                throw new Refused(ControlMessages.EINVAL, "the parent of " + dir + " does not exist on node " + nodeId);
            }
            int owner = (int) Files.getAttribute(parent, "unix:uid");
            int mode = (int) Files.getAttribute(parent, "unix:mode");
            boolean stickyPublic = (mode & S_ISVTX) != 0 && (mode & S_IWOTH) != 0;
            if (owner != callerUid && !stickyPublic) {
                throw new Refused(ControlMessages.EPERM, "uid " + callerUid + " may not create " + dir + ": " + parent
                        + " belongs to uid " + owner);
            }
        } catch (IOException e) {
            throw new Refused(ControlMessages.EIO, "cannot look at " + dir + " on node " + nodeId + ": " + e.getMessage());
        }
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
        ProcessTable.Entry e = table.readClusterTask(gpid);
        if (e == null) throw new Refused(ControlMessages.ESRCH, "no process " + gpid + " on node " + nodeId);
        return e;
    }
}
