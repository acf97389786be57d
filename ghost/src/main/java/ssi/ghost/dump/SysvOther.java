package ssi.ghost.dump;

import ssi.shim.ErrnoException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * SysV semaphore sets and message queues, which a checkpoint does not save: one the application used is
 * refused by name rather than silently left behind (a restart would find it gone, or holding other
 * values). "Used" is what the kernel tells per object: a message queue whose last sender or receiver
 * (lspid, lrpid of /proc/sysvipc/msg) is a process of the application, a semaphore set one of whose
 * semaphores a process of the application operated on last (semctl GETPID). A set or queue the
 * application used but someone else touched after it is not noticed. Stateless.
 */
final class SysvOther {
    private SysvOther() {}

    private static final int GETPID = 11;
    private static final MethodHandle SEMCTL;
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    static {
        Linker l = Linker.nativeLinker();
        // int semctl(int semid, int semnum, int cmd, ...): GETPID reads no fourth argument
        SEMCTL = l.downcallHandle(l.defaultLookup().find("semctl").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_LONG), Linker.Option.firstVariadicArg(3), Linker.Option.captureCallState("errno"));
    }

    /** Refuses (EOPNOTSUPP) when a process of pids last used a SysV semaphore set or message queue. */
    static void refuseUsed(ProcFs fs, List<Integer> pids) throws IOException {
        Set<Integer> mine = Set.copyOf(pids);
        for (String[] f : rows(fs.root().resolve("sysvipc").resolve("msg"), 7)) {
            int lspid = Integer.parseInt(f[5]), lrpid = Integer.parseInt(f[6]);
            int user = mine.contains(lspid) ? lspid : mine.contains(lrpid) ? lrpid : 0;
            if (user != 0)
                throw CheckpointException.unsupported(String.format("SysV message queue %s (key 0x%08x, %s message(s) queued) "
                        + "was last %s by process %d of the application: SysV message queues are not saved by a checkpoint; "
                        + "not supported", f[1], (int) Long.parseLong(f[0]), f[4], user == lspid ? "sent to" : "received from", user));
        }
        for (String[] f : rows(fs.root().resolve("sysvipc").resolve("sem"), 4)) {
            int id = Integer.parseInt(f[1]), n = Integer.parseInt(f[3]);
            for (int i = 0; i < n; i++) {
                int last = lastPid(id, i);
                if (mine.contains(last))
                    throw CheckpointException.unsupported(String.format("process %d of the application operated last on "
                            + "semaphore %d of SysV semaphore set %d (key 0x%08x): SysV semaphores are not saved by a "
                            + "checkpoint; not supported", last, i, id, (int) Long.parseLong(f[0])));
            }
        }
    }

    /** The rows of a /proc/sysvipc table (its heading line skipped) with at least min fields; none if it is missing. */
    private static List<String[]> rows(Path table, int min) throws IOException {
        List<String> lines;
        try {
            lines = Files.readAllLines(table, StandardCharsets.US_ASCII);
        } catch (NoSuchFileException e) {
            return List.of(); // a kernel without SysV IPC: nothing to use
        }
        return lines.stream().skip(1).map(l -> l.trim().split("\\s+")).filter(f -> f.length >= min).toList();
    }

    /** semctl(GETPID): the pid that operated last on semaphore num of set id (0: none; a set gone since: 0). */
    static int lastPid(int id, int num) throws ErrnoException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment cap = a.allocate(CAPTURE);
            int r = (int) SEMCTL.invokeExact(cap, id, num, GETPID, 0L);
            if (r >= 0) return r;
            int e = (int) ERRNO.get(cap, 0L);
            if (e == 22 || e == 43) return 0; // EINVAL, EIDRM: removed since the table was read
            throw new ErrnoException(e, "semctl(" + id + ", " + num + ", GETPID) failed");
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("semctl did not run", t);
        }
    }
}
