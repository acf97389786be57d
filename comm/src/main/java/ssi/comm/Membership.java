package ssi.comm;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * What this node believes about every node of the cluster. Any authenticated frame from a peer (heartbeat,
 * call, reply) makes it UP; a sweep demotes it to SUSPECT after suspectAfterMillis of silence and to DOWN
 * after downAfterMillis, always through SUSPECT. A peer never heard since start is DOWN. State changes happen
 * under this object's lock and are handed, in order, to one thread (ssi-comm-membership) that also runs the
 * sweep and calls the listeners; reads (members(), member()) are lock-free snapshots from any thread.
 */
public final class Membership {
    private static final System.Logger LOG = System.getLogger("ssi.comm");

    private final int selfId;
    private final NodeAddress self;
    private final long suspectNanos, downNanos, sweepMillis;
    private final Map<Integer, Peer> peers;
    private final List<Consumer<Member>> listeners = new CopyOnWriteArrayList<>();
    private final ScheduledThreadPoolExecutor events;

    private static final class Peer {
        final NodeAddress address;
        volatile NodeState state = NodeState.DOWN;
        volatile long heardNanos;
        volatile long heardWallMillis;

        Peer(NodeAddress address) { this.address = address; }
    }

    Membership(CommContext ctx, ThreadFactory threads) {
        this.selfId = ctx.nodeId();
        this.self = ctx.clusterConfig().node(selfId);
        this.suspectNanos = TimeUnit.MILLISECONDS.toNanos(ctx.suspectAfterMillis());
        this.downNanos = TimeUnit.MILLISECONDS.toNanos(ctx.downAfterMillis());
        // Fine enough that a state is seen late by a small fraction of its threshold.
        this.sweepMillis = Math.clamp(ctx.suspectAfterMillis() / 8, 5, 250);
        Map<Integer, Peer> m = new TreeMap<>();
        for (NodeAddress n : ctx.clusterConfig().nodes()) {
            if (n.id() != selfId) m.put(n.id(), new Peer(n));
        }
        this.peers = Collections.unmodifiableMap(m);
        this.events = new ScheduledThreadPoolExecutor(1, threads);
    }

    /** Every node of the cluster, this one included (as SELF), ordered by id. */
    public List<Member> members() {
        List<Member> out = new ArrayList<>(peers.size() + 1);
        boolean selfAdded = false;
        for (Map.Entry<Integer, Peer> e : peers.entrySet()) {
            if (!selfAdded && e.getKey() > selfId) {
                out.add(selfMember());
                selfAdded = true;
            }
            out.add(snapshot(e.getValue()));
        }
        if (!selfAdded) out.add(selfMember());
        return out;
    }

    /** One node, or null if the cluster has no node with this id. */
    public Member member(int id) {
        if (id == selfId) return selfMember();
        Peer p = peers.get(id);
        return p == null ? null : snapshot(p);
    }

    /**
     * Tells onStateChange of every later state change, with the node's new snapshot. It runs on the
     * ssi-comm-membership thread, one change at a time in the order they happened; it should return quickly.
     */
    public void addListener(Consumer<Member> onStateChange) {
        listeners.add(onStateChange);
    }

    public void removeListener(Consumer<Member> onStateChange) {
        listeners.remove(onStateChange);
    }

    NodeState state(int id) {
        Peer p = peers.get(id);
        return p == null ? null : p.state;
    }

    void start() {
        events.scheduleWithFixedDelay(this::sweep, sweepMillis, sweepMillis, TimeUnit.MILLISECONDS);
    }

    /** An authenticated frame came from id. Any thread; lock-free unless the state changes. */
    void heard(int id) {
        Peer p = peers.get(id);
        if (p == null) return;
        p.heardWallMillis = System.currentTimeMillis();
        p.heardNanos = System.nanoTime();
        if (p.state != NodeState.UP) {
            synchronized (this) {
                if (p.state != NodeState.UP) change(p, NodeState.UP, "heard from it");
            }
        }
    }

    private void sweep() {
        long now = System.nanoTime();
        synchronized (this) {
            for (Peer p : peers.values()) {
                NodeState s = p.state;
                if (s != NodeState.UP && s != NodeState.SUSPECT) continue;
                long heard = p.heardNanos;
                long silent = now - heard;
                boolean demoted = false;
                if (s == NodeState.UP && silent >= suspectNanos) {
                    change(p, NodeState.SUSPECT, "silent for " + TimeUnit.NANOSECONDS.toMillis(silent) + " ms");
                    demoted = true;
                }
                if (p.state == NodeState.SUSPECT && silent >= downNanos) {
                    change(p, NodeState.DOWN, "silent for " + TimeUnit.NANOSECONDS.toMillis(silent) + " ms");
                    demoted = true;
                }
                // heard() writes the time before it reads the state, and this reads the time again after
                // writing the state, so a frame that raced with the demotion is never lost.
                if (demoted && p.heardNanos != heard) change(p, NodeState.UP, "heard from it");
            }
        }
    }

    /** Caller holds the lock, which fixes the order in which listeners see the changes. */
    private void change(Peer p, NodeState to, String why) {
        NodeState from = p.state;
        p.state = to;
        LOG.log(Level.INFO, "node {0} ({1}) is {2} (was {3}): {4}", p.address.id(), p.address.hostPort(), to, from, why);
        Member m = snapshot(p);
        try {
            events.execute(() -> notifyListeners(m));
        } catch (RejectedExecutionException e) {
            // Closing: nobody is listening any more.
        }
    }

    private void notifyListeners(Member m) {
        for (Consumer<Member> l : listeners) {
            try {
                l.accept(m);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "membership listener failed on " + m, e);
            }
        }
    }

    private Member snapshot(Peer p) {
        return new Member(p.address.id(), p.address, p.state, p.heardWallMillis);
    }

    private Member selfMember() {
        return new Member(selfId, self, NodeState.SELF, System.currentTimeMillis());
    }

    void close() {
        events.shutdown();
    }
}
