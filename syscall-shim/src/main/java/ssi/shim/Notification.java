package ssi.shim;

import java.util.Arrays;

/**
 * A trapped syscall the shim forwarded to the daemon (link NOTIF, 0x0002): the process is blocked in it
 * until {@link ShimLink#reply} answers. Immutable.
 *
 * @param listenerId the shim's id of the seccomp listener that caught it (identifies the process tree)
 * @param id         the kernel's notification id, echoed in the reply
 * @param pid        the calling thread, as a pid of this node's namespace (a gpid)
 * @param nr         x86_64 syscall number
 * @param arch       AUDIT_ARCH_* of the call
 * @param ip         instruction pointer of the caller
 * @param args       the six syscall arguments
 */
public record Notification(int listenerId, long id, int pid, int nr, int arch, long ip, long[] args) {
    public Notification {
        if (args.length != 6)
            throw new IllegalArgumentException("a syscall has 6 argument registers, got " + args.length);
        args = args.clone();
    }

    /** A copy: the record stays immutable. */
    @Override
    public long[] args() {
        return args.clone();
    }

    /** Argument i (0..5) without copying the array. */
    public long arg(int i) {
        return args[i];
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Notification n && listenerId == n.listenerId && id == n.id && pid == n.pid && nr == n.nr
                && arch == n.arch && ip == n.ip && Arrays.equals(args, n.args);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(id) * 31 + Arrays.hashCode(args);
    }

    @Override
    public String toString() {
        return "Notification[listener=" + listenerId + " id=" + id + " pid=" + pid + " nr=" + nr + " arch=0x"
                + Integer.toHexString(arch) + " ip=0x" + Long.toHexString(ip) + " args=" + Arrays.toString(args) + "]";
    }
}
