package ssi.ghost.dump;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Makes the calling thread use a user's file-system identity (setfsuid/setfsgid, which Linux keeps per
 * thread) while a checkpoint writes its image: the daemon is root, and without this a user could have
 * it create files wherever a path (or a symlink swapped in at the right moment) points. With the fs
 * identity switched, the kernel itself applies the user's permissions to every create, and files are
 * born owned by the user. /proc reads are not affected: they are checked against the daemon's
 * CAP_SYS_PTRACE, which setfsuid does not drop. The supplementary groups stay the daemon's.
 *
 * <p>Owner: the thread that called {@link #become}; it must {@link #close} on that same thread (a
 * platform thread: a virtual thread could move to another carrier in between).
 */
public final class FsCredentials implements AutoCloseable {
    private static final MethodHandle SETFSUID, SETFSGID;
    static {
        Linker l = Linker.nativeLinker();
        FunctionDescriptor f = FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT);
        SETFSUID = l.downcallHandle(l.defaultLookup().find("setfsuid").orElseThrow(), f);
        SETFSGID = l.downcallHandle(l.defaultLookup().find("setfsgid").orElseThrow(), f);
    }

    private final Thread owner = Thread.currentThread();
    private final int oldUid, oldGid;

    private FsCredentials(int oldUid, int oldGid) {
        this.oldUid = oldUid;
        this.oldGid = oldGid;
    }

    /** Switches this thread's fs uid and gid; fails if the kernel did not take them. */
    public static FsCredentials become(int uid, int gid) throws IOException {
        if (Thread.currentThread().isVirtual()) throw new IllegalStateException("setfsuid on a virtual thread");
        int oldGid = call(SETFSGID, gid);
        int oldUid = call(SETFSUID, uid);
        // setfsuid reports the previous value even when it fails: a second call tells whether it took
        if (call(SETFSUID, uid) != uid || call(SETFSGID, gid) != gid) {
            call(SETFSUID, oldUid);
            call(SETFSGID, oldGid);
            throw new CheckpointException(CheckpointException.EIO, "cannot take the file-system identity of uid " + uid
                    + " for the image");
        }
        return new FsCredentials(oldUid, oldGid);
    }

    @Override
    public void close() {
        if (Thread.currentThread() != owner) throw new IllegalStateException("fs credentials restored on another thread");
        call(SETFSUID, oldUid);
        call(SETFSGID, oldGid);
    }

    private static int call(MethodHandle h, int id) {
        try {
            return (int) h.invokeExact(id);
        } catch (Throwable t) {
            throw new IllegalStateException("setfs*id(" + id + ") failed to run", t);
        }
    }
}
