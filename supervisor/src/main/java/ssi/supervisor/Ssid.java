package ssi.supervisor;

import java.nio.file.Path;

/**
 * ssid, the node daemon: {@code ssid --node N --run-dir DIR}. Started by ssi-shim as pid 2 of the node's
 * pid namespace (docs/ARCHITECTURE.md); runs until SIGTERM, a SHUTDOWN request, or the shim closing the
 * link. Exit status: 0 after a shutdown, 1 when it cannot start or loses the shim, 2 for a usage error.
 * The main thread starts the daemon and then waits for a stop request.
 */
public final class Ssid {
    private Ssid() {}

    private static final String USAGE = "usage: ssid --node N --run-dir DIR   (started by ssi-shim; see `ssi cluster start`)";

    public static void main(String[] args) {
        NodeContext ctx;
        try {
            ctx = parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("ssid: " + e.getMessage());
            System.err.println(USAGE);
            System.exit(2);
            return;
        }
        try {
            ctx.conclude();
        } catch (IllegalArgumentException e) {
            System.err.println("ssid[node " + ctx.nodeId() + "]: cannot start: " + e.getMessage());
            System.exit(1);
            return;
        }
        NodeLog log = new NodeLog(ctx.nodeId());
        NodeDaemon daemon;
        try {
            daemon = NodeDaemon.start(ctx, log);
        } catch (NodeDaemon.StartException e) {
            log.info("cannot start: " + e.getMessage());
            System.exit(1);
            return;
        }
        // SIGTERM (and any other JVM exit) closes the sockets and the transport cleanly.
        Runtime.getRuntime().addShutdownHook(new Thread(daemon::close, "ssid-shutdown"));
        System.err.println("ssid: node " + ctx.nodeId() + " ready");
        int status;
        try {
            status = daemon.awaitStopRequest();
        } catch (InterruptedException e) {
            status = 1;
        }
        daemon.close();
        System.exit(status);
    }

    /** Parses the arguments into a context not yet concluded; IllegalArgumentException says what is wrong. */
    static NodeContext parse(String[] args) {
        Integer node = null;
        Path runDir = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--node" -> {
                    String v = value(args, ++i, a);
                    try {
                        node = Integer.parseInt(v);
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException("--node wants a number, got '" + v + "'");
                    }
                }
                case "--run-dir" -> runDir = Path.of(value(args, ++i, a));
                default -> throw new IllegalArgumentException("unknown argument '" + a + "'");
            }
        }
        if (node == null) throw new IllegalArgumentException("missing --node N");
        if (runDir == null) throw new IllegalArgumentException("missing --run-dir DIR");
        if (node < 1 || node > NodeContext.MAX_NODE) {
            throw new IllegalArgumentException("--node " + node + " is out of range: give 1.." + NodeContext.MAX_NODE);
        }
        return new NodeContext().nodeId(node).runDir(runDir);
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) throw new IllegalArgumentException(option + " needs a value");
        return args[i];
    }
}
