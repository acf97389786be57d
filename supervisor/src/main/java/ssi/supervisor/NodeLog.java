package ssi.supervisor;

import java.io.PrintStream;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The daemon's log: plain stderr lines "ssid[node N]: ...", which the shim redirects to
 * DIR/node-N.log. Any thread may log; PrintStream serialises the lines.
 */
public final class NodeLog {
    private final String prefix;
    private final PrintStream out;
    private final Set<Object> said = ConcurrentHashMap.newKeySet();

    public NodeLog(int nodeId) {
        this(nodeId, System.err);
    }

    NodeLog(int nodeId, PrintStream out) {
        this.prefix = "ssid[node " + nodeId + "]: ";
        this.out = out;
    }

    public void info(String message) {
        out.println(prefix + message);
    }

    public void error(String message, Throwable cause) {
        out.println(prefix + message + ": " + cause);
    }

    /** Logs a message the first time its key is seen, so a repeated condition does not flood the log. */
    public void once(Object key, String message) {
        if (said.add(key)) info(message);
    }
}
