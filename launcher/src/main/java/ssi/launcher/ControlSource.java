package ssi.launcher;

import ssi.comm.control.ControlClient;
import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Request;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Where the CLI gets connections to node control sockets. Production code uses {@link #unixSockets()}
 * (the JDK-only {@link ControlClient}); tests inject fakes so every command can be exercised without a
 * running cluster.
 */
@FunctionalInterface
interface ControlSource {

    /** Opens a connection to the control socket at {@code socket}; IOException when nobody listens. */
    Connection open(Path socket) throws IOException;

    /** One open control connection: blocking request/reply, closed after use. */
    interface Connection extends AutoCloseable {
        Reply call(Request request) throws IOException;

        /** Must be safe to call from another thread while {@link #call} blocks (it is how timeouts work). */
        @Override
        void close();
    }

    /** The real thing: {@link ControlClient} over the node's UNIX socket. */
    static ControlSource unixSockets() {
        return socket -> {
            ControlClient client = ControlClient.connect(socket);
            return new Connection() {
                @Override
                public Reply call(Request request) throws IOException {
                    return client.call(request);
                }

                @Override
                public void close() {
                    try {
                        client.close();
                    } catch (IOException ignored) {
                        // closing a UNIX socket channel does not fail in a way we could act on
                    }
                }
            };
        };
    }

    /** The control socket of node {@code node} in run directory {@code runDir}. */
    static Path socketOf(Path runDir, int node) {
        return runDir.resolve("node-" + node + ".ctl");
    }
}
