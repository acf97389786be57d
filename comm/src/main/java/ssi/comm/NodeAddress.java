package ssi.comm;

/**
 * Where one node's daemon listens for its peers: the node id (1..255, the high bits of the gpids the node
 * owns) and the TCP host and port from cluster.conf. Immutable value.
 */
public record NodeAddress(int id, String host, int port) {
    public NodeAddress {
        if (host == null || host.isBlank()) throw new IllegalArgumentException("node " + id + ": empty host");
    }

    /** host:port as a person types it (IPv6 literals in brackets). */
    public String hostPort() {
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }
}
