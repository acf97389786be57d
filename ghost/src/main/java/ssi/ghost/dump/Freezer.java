package ssi.ghost.dump;

import ssi.shim.ErrnoException;
import ssi.shim.ShimLink;
import ssi.shim.Tracee;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Holds every thread of the application stopped (PTRACE_SEIZE + PTRACE_INTERRUPT through the shim)
 * and lets them go again. A process is frozen when a fresh look at /proc/PID/task finds no thread that
 * is not attached yet (a thread created while we attached the others). Measures the freeze from the
 * first attach to the last detach. Owned by the checkpoint's thread.
 */
final class Freezer implements AutoCloseable {
    private final ShimLink link;
    private final ProcFs fs;
    private final Map<Integer, Map<Integer, Tracee>> byPid = new LinkedHashMap<>();
    private long firstAttachNanos = -1, releasedNanos = -1;

    Freezer(ShimLink link, ProcFs fs) {
        this.link = link;
        this.fs = fs;
    }

    boolean frozen(int pid) {
        return byPid.containsKey(pid);
    }

    /** Attaches every thread of pid; false when the process is gone. */
    boolean freeze(int pid) throws IOException {
        Map<Integer, Tracee> threads = byPid.computeIfAbsent(pid, k -> new LinkedHashMap<>());
        while (true) {
            List<Integer> tids = fs.tids(pid);
            boolean added = false;
            for (int tid : tids) {
                if (threads.containsKey(tid)) continue;
                if (firstAttachNanos < 0) firstAttachNanos = System.nanoTime();
                try {
                    threads.put(tid, link.attach(tid));
                    added = true;
                } catch (ErrnoException e) {
                    // the thread exited between the listing and the attach: gone (ESRCH), or a zombie now,
                    // which PTRACE_SEIZE refuses with EPERM (a child of a shell loop that just ended)
                    if (e.errno() == CheckpointException.ESRCH) continue;
                    if (e.errno() == CheckpointException.EPERM && ended(fs, pid, tid)) continue;
                    throw e;
                }
            }
            if (!added) break;
        }
        if (threads.isEmpty()) {
            byPid.remove(pid);
            return false;
        }
        return true;
    }

    /** Whether thread tid of pid has ended: gone, or a zombie or dead task. */
    static boolean ended(ProcFs fs, int pid, int tid) {
        ProcFs.Stat s = fs.stat(fs.dir(pid).resolve("task").resolve(Integer.toString(tid)));
        return s == null || s.state() == 'Z' || s.state() == 'X';
    }

    /** The attached threads of pid, the thread-group leader first when it is attached. */
    List<Tracee> threads(int pid) {
        Map<Integer, Tracee> t = byPid.get(pid);
        return t == null ? List.of() : new ArrayList<>(t.values());
    }

    /** A thread of pid to inject syscalls into (the leader if it is attached). */
    Tracee any(int pid) {
        Map<Integer, Tracee> t = byPid.get(pid);
        Tracee leader = t.get(pid);
        return leader != null ? leader : t.values().iterator().next();
    }

    List<Integer> pids() {
        return List.copyOf(byPid.keySet());
    }

    /** Detaches everything (errors of threads that died meanwhile are ignored); returns the freeze in µs. */
    long release() {
        for (Map<Integer, Tracee> threads : byPid.values()) {
            for (Tracee t : threads.values()) {
                try {
                    t.close();
                } catch (IOException e) {
                    // a thread killed while attached (--stop, or someone's SIGKILL) has nothing to detach
                }
            }
        }
        byPid.clear();
        releasedNanos = System.nanoTime();
        return freezeMicros();
    }

    long freezeMicros() {
        if (firstAttachNanos < 0) return 0;
        long end = releasedNanos < 0 ? System.nanoTime() : releasedNanos;
        return (end - firstAttachNanos) / 1000;
    }

    @Override
    public void close() {
        if (!byPid.isEmpty()) release();
    }
}
