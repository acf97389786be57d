package ssi.ghost.dump;

import ssi.shim.LocalFds;

import java.io.IOException;
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
                int last = LocalFds.semaphoreLastPid(id, i);
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
}
