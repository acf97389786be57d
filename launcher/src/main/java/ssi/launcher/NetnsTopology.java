package ssi.launcher;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * The network of a `cluster start --netns` cluster, all of it in one place: a switch namespace ssi-sw
 * holding the bridge ssibr0, and per node i a namespace ssi-n&lt;i&gt; whose veth ssi-v&lt;i&gt; has
 * 10.213.0.(10+i)/24 and whose peer ssi-b&lt;i&gt; is a port of the bridge. Every veth is created directly
 * inside its namespace, so nothing appears in (or must be cleaned from) the host's namespace, and the
 * nodes' traffic never leaves these namespaces. Loopback is up everywhere. Leftovers of an earlier run
 * are deleted first, unless a process still lives in them (then another cluster is probably using
 * them, and we refuse instead of cutting its network).
 */
final class NetnsTopology {
    static final String SWITCH = "ssi-sw";
    static final String BRIDGE = "ssibr0";
    static final String SUBNET = "10.213.0.";
    /** Host part 10+i must stay a unicast address of the /24 (.255 is the broadcast address). */
    static final int MAX_NODES = 244;

    private static final Pattern OURS = Pattern.compile("ssi-sw|ssi-n\\d{1,3}");

    private final CommandRunner runner;
    private final String ip;

    NetnsTopology(CommandRunner runner) {
        this.runner = runner;
        this.ip = ipTool();
    }

    static String namespace(int node) { return "ssi-n" + node; }

    static String address(int node) { return SUBNET + (10 + node); }

    /** The ip program: sbin may be missing from a user's PATH, so look in the usual places first. */
    static String ipTool() {
        for (String p : new String[] {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
            if (Files.isExecutable(Path.of(p))) return p;
        }
        return "ip";
    }

    /** The words to put before a command to run it in node's namespace. */
    static List<String> execPrefix(int node) {
        return List.of(ipTool(), "netns", "exec", namespace(node));
    }

    /** Creates the switch and the nodes' namespaces, replacing unused leftovers. */
    void setup(Collection<Integer> nodes) throws SsiException {
        List<String> leftovers = existing();
        for (String ns : leftovers) {
            if (ns.equals(SWITCH)) continue; // nothing runs in the switch
            // a process in a node namespace means a live cluster (or what is left of one)
            Result pids = run("netns", "pids", ns);
            if (pids.ok() && !pids.output().isBlank()) {
                throw new SsiException("cluster start --netns", "network namespace " + ns
                        + " is in use by process(es) " + pids.output().replace('\n', ' ')
                        + " (a cluster of another run directory?)",
                        "stop that cluster with `ssi --run-dir DIR cluster stop`, or end those processes");
            }
        }
        for (String ns : leftovers) run("netns", "del", ns); // best effort: a failure shows up in "add" below
        try {
            must("netns", "add", SWITCH);
            must("-n", SWITCH, "link", "set", "lo", "up");
            must("-n", SWITCH, "link", "add", BRIDGE, "type", "bridge");
            must("-n", SWITCH, "link", "set", BRIDGE, "up");
            for (int n : nodes) {
                String ns = namespace(n);
                String veth = "ssi-v" + n;
                String port = "ssi-b" + n;
                must("netns", "add", ns);
                must("-n", ns, "link", "set", "lo", "up");
                must("link", "add", veth, "netns", ns, "type", "veth", "peer", "name", port, "netns", SWITCH);
                must("-n", ns, "addr", "add", address(n) + "/24", "dev", veth);
                must("-n", ns, "link", "set", veth, "up");
                must("-n", SWITCH, "link", "set", port, "master", BRIDGE);
                must("-n", SWITCH, "link", "set", port, "up");
            }
        } catch (SsiException e) {
            teardown(nodes); // leave no half-built network behind
            throw e;
        }
    }

    /**
     * Deletes the switch, the given nodes' namespaces and any other ssi-n* leftover (deleting a namespace
     * destroys its veths and the bridge), except node namespaces that still hold processes. Best
     * effort; returns the problems, empty when all went away.
     */
    List<String> teardown(Collection<Integer> nodes) {
        List<String> present = existing();
        SortedSet<String> names = new TreeSet<>(present);
        List<String> problems = new ArrayList<>();
        for (int n : nodes) names.add(namespace(n));
        names.add(SWITCH);
        for (String ns : names) {
            // `ip netns list` may fail to read /run/netns; then try every name we know of
            if (!present.isEmpty() && !present.contains(ns)) continue;
            if (!ns.equals(SWITCH)) {
                // processes there belong to a node we could not stop, or to another run dir's cluster
                // (namespace names are machine-wide): deleting the name would cut them off from ip.
                Result pids = run("netns", "pids", ns);
                if (pids.ok() && !pids.output().isBlank()) {
                    problems.add(ns + " still holds process(es) " + pids.output().replace('\n', ' ') + ", left in place");
                    continue;
                }
            }
            Result r = run("netns", "del", ns);
            if (!r.ok() && !present.contains(ns)) continue; // it was not there after all
            if (!r.ok()) problems.add("ip netns del " + ns + ": " + r.output());
        }
        return problems;
    }

    /** Our namespaces (ssi-sw, ssi-n*) that exist now, from `ip netns list` ("name" or "name (id: N)"). */
    List<String> existing() {
        Result r = run("netns", "list");
        List<String> out = new ArrayList<>();
        if (!r.ok()) return out;
        for (String line : r.output().split("\n")) {
            String name = line.strip().split("\\s+")[0];
            if (OURS.matcher(name).matches()) out.add(name);
        }
        return out;
    }

    private record Result(int exitCode, String output) {
        boolean ok() { return exitCode == 0; }
    }

    private Result run(String... args) {
        List<String> cmd = new ArrayList<>(args.length + 1);
        cmd.add(ip);
        cmd.addAll(List.of(args));
        try {
            CommandRunner.Result r = runner.run(cmd);
            return new Result(r.exitCode(), r.output());
        } catch (IOException e) {
            return new Result(-1, "cannot run " + ip + ": " + Ssi.cause(e));
        }
    }

    private void must(String... args) throws SsiException {
        Result r = run(args);
        if (!r.ok()) {
            throw new SsiException("cluster start --netns", "`ip " + String.join(" ", args) + "` failed: "
                    + (r.output().isBlank() ? "exit status " + r.exitCode() : r.output()),
                    "--netns needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and iproute2; start without --netns otherwise");
        }
    }
}
