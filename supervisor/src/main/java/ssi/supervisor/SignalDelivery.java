package ssi.supervisor;

import ssi.comm.control.ControlMessages;

/**
 * The owner node's half of a trapped cross-node signal: checks the sender's right to signal the target
 * the way the kernel's check_kill_permission does (sender euid or ruid equal to the target's real or
 * saved uid, or a root sender), then queues the signal with rt_sigqueueinfo/rt_tgsigqueueinfo so the
 * target sees the sender's gpid and uid in si_pid/si_uid. Signal 0 only checks. Runs on RPC worker
 * threads; stateless.
 *
 * <p>Not modelled: the kernel's SIGCONT-within-one-session exception (sessions do not span nodes yet).
 */
final class SignalDelivery {
    private static final int EPERM = ControlMessages.EPERM, ESRCH = ControlMessages.ESRCH, EINVAL = ControlMessages.EINVAL;

    private final ProcessTable table;
    private final PidLayout layout;
    private final NativeSignals natives;

    SignalDelivery(ProcessTable table, PidLayout layout, NativeSignals natives) {
        this.table = table;
        this.layout = layout;
        this.natives = natives;
    }

    /** Delivers the order on this node; returns 0 or the errno the sender's syscall should fail with. */
    int deliver(SignalOrder o) {
        if (o.sig() < 0 || o.sig() > LocalNode.MAX_SIGNAL) return EINVAL;
        byte[] info = o.siginfo() == null ? SigInfo.queued(o.sig(), o.senderGpid(), o.senderRuid())
                : SigInfo.withSigno(o.siginfo(), o.sig());
        return switch (o.scope()) {
            case PROCESS -> toProcess(o, o.pid(), info);
            case THREAD -> toThread(o, o.pid(), o.tid(), info);
            case TID -> {
                ProcessTable.Entry t = table.readClusterTask(o.pid());
                yield t == null ? ESRCH : toThread(o, t.tgid(), o.pid(), info);
            }
            case GROUP -> toGroup(o, info);
            case ALL -> toAll(o, info);
        };
    }

    /** The kernel's check_kill_permission for an unprivileged sender (root may signal anyone). */
    static boolean maySignal(int senderRuid, int senderEuid, ProcessTable.Entry target) {
        return senderEuid == 0
                || senderEuid == target.ruid() || senderEuid == target.suid()
                || senderRuid == target.ruid() || senderRuid == target.suid();
    }

    private int toProcess(SignalOrder o, int pid, byte[] info) {
        ProcessTable.Entry t = table.readClusterTask(pid);
        if (t == null) return ESRCH;
        if (!maySignal(o.senderRuid(), o.senderEuid(), t)) return EPERM;
        return o.sig() == 0 ? 0 : natives.rtSigqueueinfo(pid, o.sig(), info);
    }

    private int toThread(SignalOrder o, int tgid, int tid, byte[] info) {
        ProcessTable.Entry t = layout.isClusterPid(tgid) ? table.readThread(tgid, tid) : null;
        if (t == null || t.tgid() != tgid) return ESRCH;
        if (!maySignal(o.senderRuid(), o.senderEuid(), t)) return EPERM;
        return o.sig() == 0 ? 0 : natives.rtTgsigqueueinfo(tgid, tid, o.sig(), info);
    }

    /** kill(-pgrp): like the kernel, success if any member got it, else the last member's error. */
    private int toGroup(SignalOrder o, byte[] info) {
        boolean any = false;
        int last = ESRCH;
        for (ProcessTable.Entry t : table.scan()) {
            if (t.pgid() != o.pid()) continue;
            int err = maySignal(o.senderRuid(), o.senderEuid(), t) ? (o.sig() == 0 ? 0 : natives.rtSigqueueinfo(t.pid(), o.sig(), info)) : EPERM;
            any |= err == 0;
            last = err;
        }
        return any ? 0 : last;
    }

    /**
     * kill(-1), this node's share: every cluster process here that the sender may signal, except the sender's
     * own (the kernel leaves out the caller too). Node-internal pids (the shim, this daemon) are never
     * candidates. The kernel's result for -1: 0 if any process got the signal, else ESRCH.
     */
    private int toAll(SignalOrder o, byte[] info) {
        boolean any = false;
        for (ProcessTable.Entry t : table.scan()) {
            if (!layout.isClusterPid(t.pid()) || t.pid() == o.senderGpid()) continue;
            if (!maySignal(o.senderRuid(), o.senderEuid(), t)) continue;
            int err = o.sig() == 0 ? 0 : natives.rtSigqueueinfo(t.pid(), o.sig(), info);
            any |= err == 0;
        }
        return any ? 0 : ESRCH;
    }
}
