package ssi.launcher;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import ssi.comm.ClusterConfig;
import ssi.comm.NodeAddress;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.Reply;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.Callable;

/**
 * {@code ssi cluster stop}: asks the reachable node with the lowest id to shut the whole cluster down
 * (SHUTDOWN wholeCluster=true), waits until no node answers, removes the sockets they leave and, when
 * cluster.conf says the nodes ran in network namespaces, deletes the namespaces.
 */
@Command(name = "stop", description = "Stop every node of the cluster of this run directory.")
final class ClusterStopCommand implements Callable<Integer> {
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    private static final Duration PING_TIMEOUT = Duration.ofSeconds(2);

    private final Ssi ssi;

    ClusterStopCommand(Ssi ssi) {
        this.ssi = ssi;
    }

    @Override
    public Integer call() throws SsiException, InterruptedException {
        Path dir = ssi.runDir();
        ControlSource source = ssi.deps().control();
        ClusterConfig conf = loadConf(dir);
        SortedSet<Integer> ids = candidates(dir, conf);
        Integer target = null;
        for (int id : ids) {
            if (NodeProbe.ping(source, ControlSource.socketOf(dir, id), PING_TIMEOUT).isPresent()) {
                target = id;
                break;
            }
        }
        if (target == null) {
            cleanUp(dir, conf); // leftovers of a crashed cluster are garbage either way
            throw new SsiException("cluster stop", "no cluster is running in " + dir,
                    "start one with " + ssi.suggest("cluster start"));
        }
        try (ControlSource.Connection c = source.open(ControlSource.socketOf(dir, target))) {
            Reply r = NodeProbe.call(c, new ControlMessages.Shutdown(true), ssi.requestTimeout);
            if (!r.isOk()) {
                throw new SsiException("cluster stop", "node " + target + " refused: " + Errno.describe(r),
                        "stopping the cluster needs root");
            }
        } catch (IOException e) {
            // The daemon may close the connection as it goes down, before its reply is written; whether
            // the cluster stopped is decided by the wait below.
        }
        long deadline = System.nanoTime() + ssi.stopTimeout.toNanos();
        List<Integer> alive;
        while (true) {
            ids = candidates(dir, conf);
            alive = new ArrayList<>();
            for (int id : ids) {
                if (NodeProbe.alive(source, dir, id, NodeProbe.probeTimeout(deadline, PING_TIMEOUT))) alive.add(id);
            }
            if (alive.isEmpty() || System.nanoTime() >= deadline) break;
            NodeProbe.pause(deadline, ssi.pollInterval);
        }
        if (!alive.isEmpty()) {
            throw new SsiException("cluster stop", "node(s) " + ClusterStartCommand.ids(alive) + " still run after " + NodeProbe.seconds(ssi.stopTimeout),
                    "see " + dir.resolve("node-" + alive.getFirst() + ".log") + "; try again, or end the node's ssi-shim");
        }
        List<String> problems = cleanUp(dir, conf);
        if (!problems.isEmpty()) {
            throw new SsiException("cluster stop", "the nodes stopped, but removing their network namespaces failed: "
                    + String.join("; ", problems), "delete them with `ip netns del NAME`");
        }
        ssi.out().println("cluster stopped: " + dir);
        return 0;
    }

    /** cluster.conf, or null when it is missing or unreadable (stop still works from the sockets alone). */
    private static ClusterConfig loadConf(Path dir) {
        Path f = dir.resolve("cluster.conf");
        if (!Files.exists(f)) return null;
        try {
            return ClusterConfig.load(f);
        } catch (IOException e) {
            return null;
        }
    }

    /** Nodes that may run: those of cluster.conf and those with a ctl or launch socket, lowest first. */
    private static SortedSet<Integer> candidates(Path dir, ClusterConfig conf) {
        SortedSet<Integer> ids = new TreeSet<>(NodeProbe.socketIds(dir, "ctl"));
        ids.addAll(NodeProbe.socketIds(dir, "launch"));
        if (conf != null) conf.nodes().forEach(n -> ids.add(n.id()));
        return ids;
    }

    /** Removes stale sockets and, for a --netns cluster, the namespaces; returns the namespace problems. */
    private List<String> cleanUp(Path dir, ClusterConfig conf) {
        NodeProbe.removeStale(ssi.deps().control(), dir, PING_TIMEOUT);
        if (conf == null || conf.nodes().stream().noneMatch(n -> conf.netns(n.id()).isPresent())) return List.of();
        List<Integer> ids = conf.nodes().stream().map(NodeAddress::id).toList();
        return new NetnsTopology(ssi.deps().commands()).teardown(ids);
    }
}
