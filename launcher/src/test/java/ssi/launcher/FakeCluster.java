package ssi.launcher;

import ssi.comm.NodeAddress;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.NodeInfo;
import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Request;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A cluster of fake daemons for `cluster start`/`stop` tests: its {@link NodeStarter} brings up one
 * {@link FakeControlServer} per node on the real node-N.ctl path, which answers PING with its id,
 * NODES with every node it knows, and SHUTDOWN by going away (the whole cluster for wholeCluster).
 */
final class FakeCluster implements AutoCloseable {
    final Path dir;
    final Map<Integer, FakeControlServer> servers = new ConcurrentHashMap<>();
    /** What start() was asked: node id and namespace. */
    final List<String> starts = new CopyOnWriteArrayList<>();
    /** Nodes whose starter reports this failure instead of starting. */
    final Map<Integer, String> failing = new ConcurrentHashMap<>();
    /** Nodes the others list as DOWN although they answer. */
    final Set<Integer> seenDown = ConcurrentHashMap.newKeySet();
    /** Nodes whose daemon ignores SHUTDOWN. */
    final Set<Integer> stubborn = ConcurrentHashMap.newKeySet();

    FakeCluster(Path dir) {
        this.dir = dir;
    }

    /** Brings node id up directly (as if started earlier). */
    FakeControlServer up(int id) throws IOException {
        FakeControlServer s = new FakeControlServer(ControlSource.socketOf(dir, id), r -> handle(id, r));
        servers.put(id, s);
        return s;
    }

    private Reply handle(int self, Request r) {
        return switch (r) {
            case ControlMessages.Ping p -> Reply.pong(self);
            case ControlMessages.Nodes n -> {
                List<NodeInfo> list = new ArrayList<>();
                for (int id : new TreeMap<>(servers).keySet()) {
                    String state = id == self ? "SELF" : seenDown.contains(id) ? "DOWN" : "UP";
                    list.add(new NodeInfo(id, "127.0.0.1:" + (7700 + id), state, 0, 1L << 30, 1L << 29, 1));
                }
                yield Reply.nodes(list);
            }
            case ControlMessages.Shutdown s -> {
                if (s.wholeCluster()) {
                    servers.forEach((id, srv) -> { if (!stubborn.contains(id)) srv.closeSoon(); });
                } else if (!stubborn.contains(self)) {
                    servers.get(self).closeSoon();
                }
                yield Reply.ok();
            }
            default -> Reply.error(ControlMessages.EINVAL, "not faked");
        };
    }

    NodeStarter starter() {
        return new NodeStarter() {
            @Override
            public void check() {}

            @Override
            public Launch start(Path runDir, NodeAddress node, Optional<String> netns) throws IOException {
                starts.add(node.id() + ":" + netns.orElse("-"));
                String failure = failing.get(node.id());
                if (failure == null) up(node.id());
                return new Launch() {
                    @Override
                    public String await(Duration timeout) {
                        return failure;
                    }

                    @Override
                    public void abort() {}
                };
            }
        };
    }

    /** All requests any fake daemon received, per node. */
    Map<Integer, List<Request>> requests() {
        Map<Integer, List<Request>> m = new TreeMap<>();
        servers.forEach((id, s) -> m.put(id, List.copyOf(s.requests)));
        return m;
    }

    @Override
    public void close() {
        servers.values().forEach(FakeControlServer::close);
    }
}
