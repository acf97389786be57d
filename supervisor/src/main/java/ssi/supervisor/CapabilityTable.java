package ssi.supervisor;

import ssi.comm.control.Capabilities;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.CapSets;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The SSI capabilities of this node's processes, with Kerrighed's semantics: four sets per process
 * (permitted P, effective E, inheritable-permitted IP, inheritable-effective IE); a child gets
 * P = parent.IP, E = parent.IE and keeps the parent's IP and IE.
 *
 * <p>Forks are not trapped, so the table cannot copy a record at fork time. Instead it keeps records only
 * for processes whose sets were given or looked at (keyed by pid and start time, so a reused pid does not
 * inherit a dead process's record) and computes the others on demand from the nearest recorded ancestor.
 * That is exact as long as no ancestor's sets change after the fork, so a change first materialises a
 * record for every existing descendant of the target, computed with the old values, and only then
 * applies. A process whose ancestry is lost (reparented to the node init before anyone looked at it)
 * falls back to the node defaults.
 *
 * <p>Thread-safety: every method is synchronized; callers are control workers, RPC workers and the
 * executor that handles LAUNCHED/LISTENER_GONE events.
 */
final class CapabilityTable {
    /** The four sets of one process. */
    record Sets(int permitted, int effective, int inheritablePermitted, int inheritableEffective) {
        /** What a child forked now gets. */
        Sets inheritedByChild() {
            return new Sets(inheritablePermitted, inheritableEffective, inheritablePermitted, inheritableEffective);
        }

        int get(int set) {
            return switch (set) {
                case Capabilities.EFFECTIVE -> effective;
                case Capabilities.PERMITTED -> permitted;
                case Capabilities.INHERITABLE_EFFECTIVE -> inheritableEffective;
                case Capabilities.INHERITABLE_PERMITTED -> inheritablePermitted;
                default -> throw new IllegalArgumentException("capability set " + set);
            };
        }

        Sets with(int set, int value) {
            return switch (set) {
                case Capabilities.EFFECTIVE -> new Sets(permitted, value, inheritablePermitted, inheritableEffective);
                case Capabilities.PERMITTED -> new Sets(value, effective, inheritablePermitted, inheritableEffective);
                case Capabilities.INHERITABLE_EFFECTIVE -> new Sets(permitted, effective, inheritablePermitted, value);
                case Capabilities.INHERITABLE_PERMITTED -> new Sets(permitted, effective, value, inheritableEffective);
                default -> throw new IllegalArgumentException("capability set " + set);
            };
        }

        CapSets toWire(int gpid) {
            return new CapSets(gpid, permitted, effective, inheritablePermitted, inheritableEffective);
        }
    }

    /** The sets a process launched by ssi-run gets (and any process with no recorded ancestor). */
    static Sets defaults(int uid) {
        int p = Capabilities.CAN_MIGRATE | Capabilities.DISTANT_FORK | Capabilities.CAN_CHECKPOINT
                | Capabilities.SEE_LOCAL_PROC_STAT | (uid == 0 ? Capabilities.CHANGE_SSI_CAP : 0);
        int e = Capabilities.CAN_MIGRATE | Capabilities.CAN_CHECKPOINT;
        return new Sets(p, e, p, e);
    }

    private static final String[] SET_NAMES = {"effective", "permitted", "inheritable effective", "inheritable permitted"};
    /** Records added between two sweeps for dead processes. */
    private static final int SWEEP_EVERY = 512;

    private record Rec(long startTime, Sets sets) {}

    private final ProcessTree tree;
    private final Map<Integer, Rec> records = new HashMap<>();
    private int addedSinceSweep;

    CapabilityTable(ProcessTree tree) {
        this.tree = tree;
    }

    /** A process launched by ssi-run as uid: it gets the defaults. Ignored if it is already gone. */
    synchronized void launched(int pid, int uid) {
        ProcessTree.Node n = tree.node(pid);
        if (n != null) store(n, defaults(uid));
    }

    /**
     * A restored process of uid that had the effective set effective at its checkpoint: the defaults of
     * its uid, with that effective set as far as the defaults permit (an image cannot grant more).
     * Ignored if it is already gone.
     */
    synchronized void restored(int pid, int uid, int effective) {
        ProcessTree.Node n = tree.node(pid);
        if (n == null) return;
        Sets d = defaults(uid);
        store(n, new Sets(d.permitted(), effective & d.permitted(), d.inheritablePermitted(), d.inheritableEffective()));
    }

    /** The sets of a live process (ESRCH if there is none). */
    synchronized Sets get(int pid) throws Refused {
        ProcessTree.Node n = live(pid);
        Sets s = resolve(n);
        // Keeping what we computed is always right (it is what the process got at fork) and keeps it
        // right if the process is later reparented and loses its ancestry.
        store(n, s);
        return s;
    }

    /**
     * Raises and lowers bits of one set of a process, as caller uid. Refused with EPERM if the caller
     * does not own the process or may not raise into P, EINVAL if the result breaks E <= P, IE <= IP,
     * IP <= P or names unknown sets/bits, ESRCH if there is no such process.
     */
    synchronized Sets set(int pid, int set, int raise, int lower, int callerUid) throws Refused {
        ProcessTree.Node n = live(pid);
        if (callerUid != 0 && callerUid != n.ruid()) {
            throw new Refused(ControlMessages.EPERM, "uid " + callerUid + " may not change the SSI capabilities of process "
                    + pid + ", which belongs to uid " + n.ruid() + " (only its owner or root may)");
        }
        if (set < 0 || set >= SET_NAMES.length) {
            throw new Refused(ControlMessages.EINVAL, "unknown capability set " + set
                    + " (0 effective, 1 permitted, 2 inheritable effective, 3 inheritable permitted)");
        }
        int unknown = (raise | lower) & ~Capabilities.ALL;
        if (unknown != 0) {
            throw new Refused(ControlMessages.EINVAL, "unknown capability bits 0x" + Integer.toHexString(unknown));
        }
        if ((raise & lower) != 0) {
            throw new Refused(ControlMessages.EINVAL, "cannot raise and lower " + Capabilities.names(raise & lower) + " at once");
        }
        Sets cur = resolve(n);
        Sets next = cur.with(set, (cur.get(set) | raise) & ~lower);
        requireSubset(next.effective(), "effective", next.permitted(), "permitted", pid);
        requireSubset(next.inheritableEffective(), "inheritable effective", next.inheritablePermitted(), "inheritable permitted", pid);
        requireSubset(next.inheritablePermitted(), "inheritable permitted", next.permitted(), "permitted", pid);
        int gained = next.permitted() & ~cur.permitted();
        if (gained != 0 && callerUid != 0 && (cur.effective() & Capabilities.CHANGE_SSI_CAP) == 0) {
            throw new Refused(ControlMessages.EPERM, "raising " + Capabilities.names(gained) + " into the permitted set of process "
                    + pid + " needs CHANGE_SSI_CAP in its effective set, or root");
        }
        materializeDescendants(n);
        store(n, next);
        return next;
    }

    /** Drops the records of processes that are gone (or whose pid now belongs to another process). */
    synchronized void forgetGone() {
        Map<Integer, Long> live = new HashMap<>();
        for (ProcessTree.Node n : tree.all()) live.put(n.pid(), n.startTime());
        for (Iterator<Map.Entry<Integer, Rec>> it = records.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Integer, Rec> e = it.next();
            Long start = live.get(e.getKey());
            if (start == null || start != e.getValue().startTime()) it.remove();
        }
        addedSinceSweep = 0;
    }

    /** How many processes have a record (for tests and the log). */
    synchronized int recordCount() {
        return records.size();
    }

    private ProcessTree.Node live(int pid) throws Refused {
        ProcessTree.Node n = tree.node(pid);
        if (n == null) throw new Refused(ControlMessages.ESRCH, "no process " + pid);
        return n;
    }

    /** The sets of n: its own record, else inherited from the nearest recorded ancestor, else defaults. */
    private Sets resolve(ProcessTree.Node n) {
        ProcessTree.Node cur = n;
        ProcessTree.Node top = n;
        Set<Integer> seen = new HashSet<>(); // guards against a ppid loop in a tree read while it changed
        while (cur != null && seen.add(cur.pid())) {
            Rec r = records.get(cur.pid());
            if (r != null) {
                if (r.startTime() == cur.startTime()) {
                    // inheritedByChild is idempotent, so any number of unrecorded generations in between
                    // get the same sets as a direct child would
                    return cur == n ? r.sets() : r.sets().inheritedByChild();
                }
                records.remove(cur.pid()); // the pid was reused: that record belonged to a dead process
            }
            top = cur;
            cur = cur.ppid() > 0 ? tree.node(cur.ppid()) : null;
        }
        // No recorded ancestor: the top of the chain counts as launched; defaults are their own
        // inheritance (P = IP, E = IE), so every process below it has the defaults too.
        return defaults(top.ruid());
    }

    private void materializeDescendants(ProcessTree.Node root) {
        Map<Integer, List<ProcessTree.Node>> children = new HashMap<>();
        for (ProcessTree.Node n : tree.all()) {
            children.computeIfAbsent(n.ppid(), k -> new ArrayList<>()).add(n);
        }
        ArrayDeque<Integer> todo = new ArrayDeque<>();
        Set<Integer> seen = new HashSet<>();
        todo.add(root.pid());
        seen.add(root.pid());
        while (!todo.isEmpty()) {
            for (ProcessTree.Node child : children.getOrDefault(todo.poll(), List.of())) {
                if (!seen.add(child.pid())) continue;
                // parents are stored before their children, so this resolves from the parent's record
                store(child, resolve(child));
                todo.add(child.pid());
            }
        }
    }

    private void store(ProcessTree.Node n, Sets s) {
        if (records.put(n.pid(), new Rec(n.startTime(), s)) == null && ++addedSinceSweep >= SWEEP_EVERY) {
            forgetGone();
        }
    }

    private static void requireSubset(int sub, String subName, int sup, String supName, int pid) throws Refused {
        int extra = sub & ~sup;
        if (extra != 0) {
            throw new Refused(ControlMessages.EINVAL, "the " + subName + " set of process " + pid + " would hold "
                    + Capabilities.names(extra) + ", which is not in its " + supName + " set (it must stay a subset)");
        }
    }
}
