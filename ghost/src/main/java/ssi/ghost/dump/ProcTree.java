package ssi.ghost.dump;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The application to checkpoint: a root process and all its descendants, found through the ppid
 * field of /proc/PID/stat, parents before children. Read again after the freeze, since processes may
 * fork while the first ones are being attached. Immutable; any thread.
 */
public record ProcTree(List<Member> members) {
    /** One process: identity, ids, uids (real, effective, saved), stat state and exit signal (stat field 38). */
    public record Member(int pid, int ppid, int pgid, int sid, int ruid, int euid, int suid, char state, String comm,
                         int exitSignal, int exitCode) {
        public Member(int pid, int ppid, int pgid, int sid, int ruid, int euid, int suid, char state, String comm) {
            this(pid, ppid, pgid, sid, ruid, euid, suid, state, comm, 17, 0);
        }
        /** Ended, not reaped yet. */
        public boolean zombie() {
            return state == 'Z';
        }
    }

    /** The tree under root, or null when root does not exist. */
    public static ProcTree collect(java.nio.file.Path procRoot, int root) {
        return collect(new ProcFs(procRoot), root);
    }

    static ProcTree collect(ProcFs fs, int root) {
        Map<Integer, List<Integer>> children = new HashMap<>();
        Map<Integer, ProcFs.Stat> stats = new HashMap<>();
        for (int pid : fs.pids()) {
            ProcFs.Stat s = fs.stat(fs.dir(pid));
            if (s == null) continue;
            stats.put(pid, s);
            children.computeIfAbsent(s.ppid(), k -> new ArrayList<>()).add(pid);
        }
        if (!stats.containsKey(root)) return null;
        List<Member> out = new ArrayList<>();
        ArrayDeque<Integer> todo = new ArrayDeque<>(List.of(root));
        while (!todo.isEmpty()) {
            int pid = todo.poll();
            ProcFs.Stat s = stats.get(pid);
            int[] uids = {-1, -1, -1};
            try {
                int[] u = ProcFs.ints(ProcFs.status(fs.dir(pid)), "Uid");
                if (u.length >= 3) uids = u;
            } catch (java.io.IOException e) {
                continue; // gone meanwhile
            }
            int exitSignal = 17, exitCode = 0;
            try {
                exitSignal = (int) s.field(38);
                exitCode = (int) s.field(52); // the wait status, for a zombie
            } catch (RuntimeException e) {
                // an old kernel's shorter stat: SIGCHLD
            }
            out.add(new Member(pid, s.ppid(), s.pgid(), s.sid(), uids[0], uids[1], uids[2], s.state(), s.comm(), exitSignal,
                    exitCode));
            todo.addAll(children.getOrDefault(pid, List.of()));
        }
        return new ProcTree(List.copyOf(out));
    }

    public List<Integer> pids() {
        return members.stream().map(Member::pid).toList();
    }
}
