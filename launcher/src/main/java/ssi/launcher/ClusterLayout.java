package ssi.launcher;

import ssi.comm.ClusterConfig;
import ssi.comm.NodeAddress;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The cluster.conf that `ssi cluster start` writes. Without --netns every node listens on loopback,
 * node i at 127.0.0.1:(P+i) (one port each, as they share the host's network); with --netns node i is
 * alone in namespace ssi-n&lt;i&gt; at 10.213.0.(10+i):P (see {@link NetnsTopology}).
 */
final class ClusterLayout {
    private ClusterLayout() {}

    static final String LOOPBACK = "127.0.0.1";

    static ClusterConfig plain(int nodes, int basePort) {
        List<NodeAddress> list = new ArrayList<>();
        for (int i = 1; i <= nodes; i++) list.add(new NodeAddress(i, LOOPBACK, basePort + i));
        return ClusterConfig.of(list);
    }

    /**
     * Every node on loopback at a port the kernel says is free now. The sockets stay open until all
     * ports are chosen, so no two nodes get the same one; another program may still take one before the
     * node binds it (the node's start then fails and says so).
     */
    static ClusterConfig plainFreePorts(int nodes) throws SsiException {
        List<NodeAddress> list = new ArrayList<>();
        List<ServerSocket> held = new ArrayList<>();
        try {
            for (int i = 1; i <= nodes; i++) {
                ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(LOOPBACK));
                held.add(s);
                list.add(new NodeAddress(i, LOOPBACK, s.getLocalPort()));
            }
        } catch (IOException e) {
            throw new SsiException("cluster start", "cannot find free loopback ports (" + e.getMessage() + ")",
                    "give --base-port P");
        } finally {
            for (ServerSocket s : held) {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // closing a listening socket we never used cannot lose anything
                }
            }
        }
        return ClusterConfig.of(list);
    }

    static ClusterConfig netns(int nodes, int basePort) {
        List<NodeAddress> list = new ArrayList<>();
        Map<Integer, String> ns = new HashMap<>();
        for (int i = 1; i <= nodes; i++) {
            list.add(new NodeAddress(i, NetnsTopology.address(i), basePort));
            ns.put(i, NetnsTopology.namespace(i));
        }
        return ClusterConfig.of(list, ns);
    }

    /** Why (nodes, basePort) cannot be laid out, or null when it can. */
    static String problem(int nodes, int basePort, boolean netns) {
        int max = netns ? NetnsTopology.MAX_NODES : 255;
        if (nodes < 1 || nodes > max) {
            return "--nodes " + nodes + " out of range 1.." + max + (netns ? " (with --netns, 10.213.0.(10+N) must stay below .255)" : "");
        }
        int top = netns ? basePort : basePort + nodes;
        if (basePort < 1 || top > 65535) {
            return "--base-port " + basePort + " out of range: " + (netns ? "ports are 1..65535"
                    : "node N listens on P+N, so P+" + nodes + " must be at most 65535");
        }
        return null;
    }
}
