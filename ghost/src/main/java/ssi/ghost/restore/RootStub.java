package ssi.ghost.restore;

import ssi.ghost.dump.Terminals;
import ssi.shim.ErrnoException;
import ssi.shim.Rseq;
import ssi.shim.ShimLink;
import ssi.shim.Tracee;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The body a restart rebuilds the image's root process in (docs/ARCHITECTURE.md, "Foreground restart").
 * Detached ({@link #spawned}): the shim's SPAWN_STUB, a child of the node init, made by the restorer.
 * Foreground ({@link #adopted}): the child that the launch stub A of {@code ssi-run --restart} made with
 * {@code clone3(set_tid)}, so that the restored process is A's child, in A's process group and session,
 * and A relays its end, stops and signals like a launched program's. The stub only closed every fd and
 * blocks every signal in a pause loop; {@link #take} attaches it and removes its rseq registration (A's
 * glibc registered one, pointing into memory the restore replaces), as the shim does for SPAWN_STUB.
 * {@link #checkOnly} is the first step of a foreground restart: every check, the gpid must be free, and
 * nothing is created.
 *
 * <p>The terminal, when there is one, is A's descriptor on the caller's terminal as a path the restored
 * process opens, {@code /proc/A/fd/N}: each terminal fd of the image (FD_TTY) becomes a new open of the
 * caller's terminal with the image's flags. Immutable.
 */
public final class RootStub {
    private static final int SYS_RSEQ = 334, RSEQ_FLAG_UNREGISTER = 1;

    private final int pid;
    private final int parent;
    private final String terminal;

    private RootStub(int pid, int parent, String terminal) {
        this.pid = pid;
        this.parent = parent;
        this.terminal = terminal;
    }

    /** Today's restart: the restorer spawns the stub; an image with a terminal is refused. */
    public static RootStub spawned() {
        return new RootStub(0, 0, null);
    }

    /** The checks of a foreground restart for launch stub a: the gpid must be free; terminalFd is a's fd or -1. */
    public static RootStub checkOnly(int a, int terminalFd) {
        return new RootStub(0, a, terminalPath(a, terminalFd));
    }

    /** The foreground restart into stub, which a made; terminalFd is a's fd on the caller's terminal or -1. */
    public static RootStub adopted(int stub, int a, int terminalFd) {
        return new RootStub(stub, a, terminalPath(a, terminalFd));
    }

    private static String terminalPath(int a, int fd) {
        return fd < 0 ? null : "/proc/" + a + "/fd/" + fd;
    }

    boolean gpidMustBeFree() {
        return pid == 0;
    }

    /**
     * Refuses an image whose process had its controlling terminal open when no terminal comes with the
     * restart, and a terminal that is not the caller's: the path must be a terminal device that the
     * caller owns (root's restart takes any), since root opens it for the restored process, or /dev/tty.
     */
    void checkTerminal(int gpid, int ttyFd, String ttyPath, int callerUid) throws IOException {
        if (terminal == null)
            throw new RestoreException(ImageRestore.EINVAL, "process " + gpid + " had its terminal " + ttyPath + " open on fd "
                    + ttyFd + (parent == 0 ? ": restart it in the foreground (`ssi restart` without --detach) from a terminal"
                    : ", but `ssi restart` runs without a terminal: run it from one"));
        Path p = Path.of(terminal);
        long rdev;
        int owner;
        try {
            rdev = (Long) Files.getAttribute(p, "unix:rdev");
            owner = (Integer) Files.getAttribute(p, "unix:uid");
        } catch (IOException | RuntimeException e) {
            throw new RestoreException(ImageRestore.EINVAL, "cannot read the caller's terminal at " + terminal + ": " + e.getMessage());
        }
        if (!Terminals.isTerminal(rdev))
            throw new RestoreException(ImageRestore.EINVAL, terminal + " is not a terminal device (" + Terminals.describe(rdev) + ")");
        // /dev/tty (the caller had stdio redirected) opens the opener's own terminal: the stub's session is the caller's
        if (callerUid != 0 && rdev != Terminals.DEV_TTY && owner != callerUid)
            throw new RestoreException(ImageRestore.EPERM, "the terminal " + terminal + " belongs to uid " + owner + ", not to the caller "
                    + callerUid);
    }

    String terminal() {
        return terminal;
    }

    /**
     * The stopped, traced stub for the image's gpid, or null when the restorer is to spawn one. Refuses a
     * stub that is not gpid or not the launch stub's child.
     */
    Tracee take(ShimLink link, int gpid) throws IOException {
        if (pid == 0) return null;
        if (pid != gpid)
            throw new RestoreException(ImageRestore.EINVAL, "the stub is pid " + pid + " but the image's process is " + gpid);
        String stat;
        try {
            stat = Files.readString(Path.of("/proc", Integer.toString(pid), "stat"));
        } catch (IOException e) {
            throw new RestoreException(ImageRestore.ESRCH, "the stub " + pid + " is gone");
        }
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        if (Integer.parseInt(f[1]) != parent)
            throw new RestoreException(ImageRestore.EPERM, "process " + pid + " is not a child of the caller " + parent);
        Tracee t;
        try {
            t = link.attach(pid);
        } catch (ErrnoException e) {
            throw new RestoreException(e);
        }
        try {
            Rseq r = t.getRseq();
            if (r.pointer() != 0) {
                long ret = t.syscall(SYS_RSEQ, r.pointer(), r.size(), RSEQ_FLAG_UNREGISTER, r.signature());
                if (ret != 0)
                    throw new RestoreException((int) -ret, "unregistering the rseq area of the stub " + pid);
            }
            return t;
        } catch (IOException | RuntimeException e) {
            try {
                t.close(); // it waits in its pause loop; A kills it
            } catch (IOException ignored) {
                // gone
            }
            throw e;
        }
    }
}
