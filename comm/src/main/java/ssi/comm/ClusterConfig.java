package ssi.comm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The cluster's membership list, DIR/cluster.conf (docs/ARCHITECTURE.md, "Run directory"): one line per node,
 * {@code node <id> <host> <port> [netns <name>]}, '#' starts a comment. Immutable once built, so any thread
 * may read it.
 */
public final class ClusterConfig {
    /** Node ids are the high bits of a gpid (gpid >> 14), so they fit in 1..255. */
    public static final int MIN_NODE_ID = 1, MAX_NODE_ID = 255;
    private static final Pattern NETNS_NAME = Pattern.compile("[A-Za-z0-9_.-]{1,64}");

    private final List<NodeAddress> nodes;
    private final Map<Integer, NodeAddress> byId;
    private final Map<Integer, String> netns;

    private ClusterConfig(List<NodeAddress> nodes, Map<Integer, String> netns) {
        Map<Integer, NodeAddress> ids = new TreeMap<>();
        for (NodeAddress n : nodes) ids.put(n.id(), n);
        this.byId = Collections.unmodifiableMap(ids);
        this.nodes = List.copyOf(ids.values());
        this.netns = Map.copyOf(netns);
    }

    /** Reads and checks a cluster.conf; an IOException names the file and line of the first problem. */
    public static ClusterConfig load(Path file) throws IOException {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IOException("cannot read cluster configuration " + file + ": " + e.getMessage(), e);
        }
        List<NodeAddress> nodes = new ArrayList<>();
        Map<Integer, String> netns = new HashMap<>();
        Set<String> endpoints = new HashSet<>();
        for (int i = 0; i < lines.size(); i++) {
            String where = file + ":" + (i + 1) + ": ";
            String line = lines.get(i);
            int hash = line.indexOf('#');
            if (hash >= 0) line = line.substring(0, hash);
            line = line.strip();
            if (line.isEmpty()) continue;
            String[] f = line.split("\\s+");
            if (!f[0].equals("node")) {
                throw new IOException(where + "unknown keyword '" + f[0] + "' (expected: node <id> <host> <port> [netns <name>])");
            }
            if (f.length != 4 && f.length != 6) {
                throw new IOException(where + "expected 'node <id> <host> <port> [netns <name>]', got " + f.length + " fields");
            }
            int id = number(f[1], MIN_NODE_ID, MAX_NODE_ID, where + "node id");
            int port = number(f[3], 1, 65535, where + "port");
            for (NodeAddress n : nodes) {
                if (n.id() == id) throw new IOException(where + "node " + id + " is listed twice");
            }
            NodeAddress node = new NodeAddress(id, f[2], port);
            if (!endpoints.add(node.hostPort())) {
                throw new IOException(where + "node " + id + " uses " + node.hostPort() + ", which another node already uses");
            }
            if (f.length == 6) {
                if (!f[4].equals("netns")) throw new IOException(where + "expected 'netns <name>' after the port, got '" + f[4] + "'");
                if (!NETNS_NAME.matcher(f[5]).matches()) {
                    throw new IOException(where + "bad netns name '" + f[5] + "' (letters, digits, '_', '.', '-')");
                }
                netns.put(id, f[5]);
            }
            nodes.add(node);
        }
        if (nodes.isEmpty()) throw new IOException(file + ": no 'node' lines; a cluster needs at least one node");
        return new ClusterConfig(nodes, netns);
    }

    /** A configuration built in code (no network namespaces); IllegalArgumentException on bad or duplicate nodes. */
    public static ClusterConfig of(List<NodeAddress> nodes) {
        return of(nodes, Map.of());
    }

    /** As {@link #of(List)}, with a network namespace name for some nodes. */
    public static ClusterConfig of(List<NodeAddress> nodes, Map<Integer, String> netns) {
        if (nodes.isEmpty()) throw new IllegalArgumentException("a cluster needs at least one node");
        Set<Integer> ids = new HashSet<>();
        Set<String> endpoints = new HashSet<>();
        for (NodeAddress n : nodes) {
            if (n.id() < MIN_NODE_ID || n.id() > MAX_NODE_ID) {
                throw new IllegalArgumentException("node id " + n.id() + " out of range " + MIN_NODE_ID + ".." + MAX_NODE_ID);
            }
            if (n.port() < 1 || n.port() > 65535) throw new IllegalArgumentException("node " + n.id() + ": bad port " + n.port());
            if (n.host().chars().anyMatch(c -> Character.isWhitespace(c) || c == '#')) {
                throw new IllegalArgumentException("node " + n.id() + ": host '" + n.host() + "' cannot be written to cluster.conf");
            }
            if (!ids.add(n.id())) throw new IllegalArgumentException("node " + n.id() + " is listed twice");
            if (!endpoints.add(n.hostPort())) throw new IllegalArgumentException("two nodes use " + n.hostPort());
        }
        netns.forEach((id, name) -> {
            if (!ids.contains(id)) throw new IllegalArgumentException("netns given for node " + id + ", which is not in the list");
            if (!NETNS_NAME.matcher(name).matches()) throw new IllegalArgumentException("bad netns name '" + name + "'");
        });
        return new ClusterConfig(nodes, netns);
    }

    /** All nodes, ordered by id. */
    public List<NodeAddress> nodes() { return nodes; }

    /** The node with this id, or null if the cluster has none. */
    public NodeAddress node(int id) { return byId.get(id); }

    /** The network namespace the node runs in, when cluster.conf isolates it. */
    public Optional<String> netns(int id) { return Optional.ofNullable(netns.get(id)); }

    /** Writes the configuration in load()'s format: a temp file in the same directory renamed over file, mode 0644. */
    public void write(Path file) throws IOException {
        StringBuilder text = new StringBuilder("# SSI cluster: node <id> <host> <port> [netns <name>]\n");
        for (NodeAddress n : nodes) {
            text.append("node ").append(n.id()).append(' ').append(n.host()).append(' ').append(n.port());
            String ns = netns.get(n.id());
            if (ns != null) text.append(" netns ").append(ns);
            text.append('\n');
        }
        AtomicFiles.write(file, text.toString().getBytes(StandardCharsets.UTF_8), PosixFilePermissions.fromString("rw-r--r--"));
    }

    private static int number(String s, int min, int max, String what) throws IOException {
        int v;
        try {
            v = Integer.parseInt(s);
        } catch (NumberFormatException e) {
            throw new IOException(what + " '" + s + "' is not a number");
        }
        if (v < min || v > max) throw new IOException(what + " " + v + " out of range " + min + ".." + max);
        return v;
    }

    @Override
    public String toString() {
        return "ClusterConfig" + nodes;
    }
}
