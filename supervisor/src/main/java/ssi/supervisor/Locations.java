package ssi.supervisor;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where a gpid lives now, for routing requests and signals: a process restarted on another node than
 * the one it was born on keeps its gpid (docs/ARCHITECTURE.md, "Global PIDs"). A gpid that is a process
 * of this node (its /proc entry is here) is this node's, whatever its range; the birth node of a gpid
 * that left it remembers where it went (MOVED, sent by the node that restarted it) and forwards what it
 * receives for it there, once: a request that came from a peer is forwarded only by the gpid's birth
 * node, so two nodes never send one back and forth. A moved entry is only used while the birth node has
 * no process of that gpid itself, so a recycled pid is never misrouted. Thread-safe.
 */
final class Locations implements PidLayout {
    private final PidLayout base;
    private final int self;
    private final Path procRoot;
    private final Map<Integer, Integer> moved = new ConcurrentHashMap<>();

    Locations(PidLayout base, int self, Path procRoot) {
        this.base = base;
        this.self = self;
        this.procRoot = procRoot;
    }

    /** The node to send a request or signal for gpid to: here if it lives here, else where it went, else its birth node. */
    @Override
    public int nodeOf(int gpid) {
        int birth = base.nodeOf(gpid);
        if (birth <= 0) return birth;
        boolean here = Files.exists(procRoot.resolve(Integer.toString(gpid)), LinkOption.NOFOLLOW_LINKS);
        if (here) return self;
        if (birth == self) {
            Integer to = moved.get(gpid);
            if (to != null) return to;
        }
        return birth;
    }

    /** The node gpid was born on (its range). */
    @Override
    public int birthNode(int gpid) {
        return base.nodeOf(gpid);
    }

    @Override
    public boolean isClusterPid(int pid) {
        return base.isClusterPid(pid);
    }

    /** The node that restarted them says these gpids of this node's range live there now. */
    void moved(int node, List<Integer> gpids) {
        for (int g : gpids) {
            if (base.nodeOf(g) == self && node != self) moved.put(g, node);
        }
    }

    /** Where a gpid of this node's range went, or 0 (none, or it lives here). */
    int movedTo(int gpid) {
        Integer to = moved.get(gpid);
        return to == null || Files.exists(procRoot.resolve(Integer.toString(gpid)), LinkOption.NOFOLLOW_LINKS) ? 0 : to;
    }
}
