package ssi.launcher;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import ssi.comm.ClusterConfig;
import ssi.comm.ClusterSecret;
import ssi.comm.NodeAddress;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.NodeInfo;
import ssi.comm.control.ControlMessages.Reply;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.Callable;

/**
 * {@code ssi cluster start}: lays out the run directory (secret, cluster.conf), builds the --netns
 * network, starts every node's shim in parallel and waits until the cluster is whole: every node
 * answers PING and node 1 sees every node UP. Any failure stops what was started, so a failed start
 * leaves no half cluster behind, and names the node whose log explains it.
 */
@Command(name = "start", description = "Start a cluster of N nodes on this machine (needs root).",
        footer = {"", "Writes DIR/cluster.conf and DIR/secret (kept if present), logs to DIR/node-<i>.log, and "
                + "returns once every node is UP. Without --netns node i listens on 127.0.0.1:(P+i); with --netns "
                + "node i runs in network namespace ssi-n<i> at 10.213.0.(10+i):P (N at most 244), linked by the "
                + "bridge ssibr0 in namespace ssi-sw."})
final class ClusterStartCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    @Option(names = "--nodes", paramLabel = "N", defaultValue = "1", description = "Number of nodes, 1..255 (default 1).")
    int nodes;

    @Option(names = "--netns", description = "Put every node in a network namespace of its own.")
    boolean netns;

    @Option(names = "--base-port", paramLabel = "P",
            description = "Node N listens on TCP port P+N (with --netns: P on its own address; default 7700). "
                    + "Without it and without --netns, every node gets a free loopback port, so clusters in "
                    + "different run directories never collide.")
    Integer basePort;

    /** The port of the --netns layout when --base-port is not given: every node has an address of its own. */
    static final int NETNS_PORT = 7700;

    private static final Duration PING_TIMEOUT = Duration.ofSeconds(2);

    private final Ssi ssi;

    ClusterStartCommand(Ssi ssi) {
        this.ssi = ssi;
    }

    /** Which node made the start fail, and why. */
    record Failure(int node, String why) {}

    @Override
    public Integer call() throws SsiException, InterruptedException {
        String bad = ClusterLayout.problem(nodes, basePort != null ? basePort : NETNS_PORT, netns);
        if (bad != null) throw new ParameterException(spec.commandLine(), bad);
        Ssi.Deps deps = ssi.deps();
        Path dir = ssi.runDir();
        deps.starter().check();
        refuseIfRunning(dir);
        ClusterConfig conf = netns ? ClusterLayout.netns(nodes, basePort != null ? basePort : NETNS_PORT)
                : basePort != null ? ClusterLayout.plain(nodes, basePort) : ClusterLayout.plainFreePorts(nodes);
        prepareRunDir(dir, conf);
        List<Integer> ids = conf.nodes().stream().map(NodeAddress::id).toList();
        NetnsTopology topology = netns ? new NetnsTopology(deps.commands()) : null;
        if (topology != null) topology.setup(ids);

        long deadline = System.nanoTime() + ssi.startTimeout.toNanos();
        SortedMap<Integer, NodeStarter.Launch> launches = new TreeMap<>();
        SortedMap<Integer, String> failed = new TreeMap<>();
        // All shims are started before waiting for any: nodes come up in parallel.
        for (NodeAddress n : conf.nodes()) {
            try {
                launches.put(n.id(), deps.starter().start(dir, n, conf.netns(n.id())));
            } catch (IOException e) {
                failed.put(n.id(), "cannot run ssi-shim: " + Ssi.cause(e));
            }
        }
        for (Map.Entry<Integer, NodeStarter.Launch> e : launches.entrySet()) {
            String why = e.getValue().await(NodeProbe.remaining(deadline));
            if (why != null) failed.put(e.getKey(), why);
        }
        Failure failure = failed.isEmpty() ? waitUntilUp(dir, ids, deadline)
                : new Failure(failed.firstKey(), failed.get(failed.firstKey())
                        + (failed.size() > 1 ? " (nodes " + ids(failed.keySet()) + " failed)" : ""));
        if (failure != null) {
            String leftover = stopStarted(dir, ids, launches, topology);
            throw new SsiException("cluster start", "node " + failure.node() + " failed: " + failure.why(),
                    "see " + dir.resolve("node-" + failure.node() + ".log") + "; " + leftover);
        }
        ssi.out().println("cluster started: " + nodes + (nodes == 1 ? " node" : " nodes") + " in " + dir
                + (netns ? " (network namespaces ssi-n1..ssi-n" + nodes + ")" : ""));
        return 0;
    }

    /** "1, 2, 5": node ids as messages list them; a long list is cut ("1, 2, ..., 8, ... (30 in all)"). */
    static String ids(java.util.Collection<Integer> ids) {
        List<String> all = ids.stream().map(String::valueOf).toList();
        if (all.size() <= 8) return String.join(", ", all);
        return String.join(", ", all.subList(0, 8)) + ", ... (" + all.size() + " in all)";
    }

    /** Refuses to start over a cluster that runs: any node of this run dir answering PING. */
    private void refuseIfRunning(Path dir) throws SsiException {
        for (int id : NodeProbe.socketIds(dir, "ctl")) {
            Path socket = ControlSource.socketOf(dir, id);
            OptionalInt answer = NodeProbe.ping(ssi.deps().control(), socket, PING_TIMEOUT);
            if (answer.isPresent()) {
                throw new SsiException("cluster already running", "node " + id + " answers at " + socket,
                        "stop it with " + ssi.suggest("cluster stop"));
            }
        }
    }

    /** The run dir (0755), its secret (kept when present: nodes of other machines may share it) and cluster.conf. */
    private void prepareRunDir(Path dir, ClusterConfig conf) throws SsiException {
        try {
            if (!Files.isDirectory(dir)) {
                try {
                    Files.createDirectories(dir);
                    // set explicitly: createDirectories' mode would be filtered by the caller's umask
                    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
                } catch (FileAlreadyExistsException raced) {
                    // another start created it meanwhile; the PING check of the nodes is what guards us
                }
            }
            Path secret = dir.resolve("secret");
            if (!Files.exists(secret)) ClusterSecret.generate(secret);
            conf.write(dir.resolve("cluster.conf"));
        } catch (IOException e) {
            throw new SsiException("cluster start", "cannot prepare run directory " + dir + ": " + Ssi.cause(e),
                    "run as root, or choose a writable directory with --run-dir");
        }
        // Sockets of a crashed earlier cluster would make the new daemons' bind fail.
        NodeProbe.removeStale(ssi.deps().control(), dir, PING_TIMEOUT);
    }

    /**
     * Polls until every node answers PING and node 1's NODES lists every node UP (node 1 lists itself
     * as SELF). Returns null when the cluster is whole, else the first node that is not.
     */
    private Failure waitUntilUp(Path dir, List<Integer> ids, long deadline) throws InterruptedException {
        Set<Integer> answered = new TreeSet<>();
        Failure last = null;
        while (true) {
            last = null;
            for (int id : ids) {
                if (answered.contains(id)) continue;
                Duration t = NodeProbe.probeTimeout(deadline, Duration.ofSeconds(1));
                if (NodeProbe.ping(ssi.deps().control(), ControlSource.socketOf(dir, id), t).isPresent()) {
                    answered.add(id);
                } else if (last == null) {
                    last = new Failure(id, "it does not answer at " + ControlSource.socketOf(dir, id) + " after "
                            + NodeProbe.seconds(ssi.startTimeout));
                }
            }
            if (answered.size() == ids.size()) {
                last = notUp(dir, ids, deadline);
                if (last == null) return null;
            }
            if (System.nanoTime() >= deadline) return last;
            NodeProbe.pause(deadline, ssi.pollInterval);
        }
    }

    /** Null when node 1 sees every node UP, else the first node it does not see UP. */
    private Failure notUp(Path dir, List<Integer> ids, long deadline) {
        int first = ids.getFirst();
        Duration t = NodeProbe.probeTimeout(deadline, Duration.ofSeconds(2));
        try (ControlSource.Connection c = ssi.deps().control().open(ControlSource.socketOf(dir, first))) {
            Reply r = NodeProbe.call(c, new ControlMessages.Nodes(), t);
            if (!r.isOk()) return new Failure(first, "NODES failed: " + Errno.describe(r));
            Map<Integer, String> state = new HashMap<>();
            for (NodeInfo n : r.nodes()) state.put(n.id(), n.state());
            for (int id : ids) {
                String s = state.get(id);
                if (s == null) return new Failure(id, "node " + first + " does not list it");
                if (!NodesCommand.isUp(s)) return new Failure(id, "node " + first + " sees it " + s);
            }
            return null;
        } catch (IOException e) {
            return new Failure(first, "NODES got no answer: " + Ssi.cause(e));
        }
    }

    /**
     * Undoes a failed start: kills shims still starting, shuts down each daemon that answers (only
     * itself: the others may not have joined), waits for them to go, removes their sockets and the
     * network. Returns what to tell the user about what is left.
     */
    private String stopStarted(Path dir, List<Integer> ids, Map<Integer, NodeStarter.Launch> launches,
                               NetnsTopology topology) throws InterruptedException {
        launches.values().forEach(NodeStarter.Launch::abort);
        ControlSource source = ssi.deps().control();
        for (int id : ids) {
            try (ControlSource.Connection c = source.open(ControlSource.socketOf(dir, id))) {
                NodeProbe.call(c, new ControlMessages.Shutdown(false), PING_TIMEOUT);
            } catch (IOException e) {
                // not running, or exiting already
            }
        }
        long deadline = System.nanoTime() + ssi.stopTimeout.toNanos();
        List<Integer> alive = new ArrayList<>(ids);
        while (true) {
            alive.removeIf(id -> !NodeProbe.alive(source, dir, id, NodeProbe.probeTimeout(deadline, PING_TIMEOUT)));
            if (alive.isEmpty() || System.nanoTime() >= deadline) break;
            NodeProbe.pause(deadline, ssi.pollInterval);
        }
        NodeProbe.removeStale(source, dir, PING_TIMEOUT);
        List<String> netProblems = topology == null ? List.of() : topology.teardown(ids);
        if (!alive.isEmpty()) {
            return "node(s) " + ids(alive) + " still run; stop them with " + ssi.suggest("cluster stop");
        }
        return "the nodes that started were stopped"
                + (netProblems.isEmpty() ? "" : ", but removing the namespaces failed: " + String.join("; ", netProblems));
    }
}
