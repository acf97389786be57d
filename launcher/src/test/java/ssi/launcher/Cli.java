package ssi.launcher;

import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Request;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Optional;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;

/**
 * Test harness: an {@link Ssi} whose outside world is under the test's control (environment map,
 * control source, node starter, command runner) and whose stdout/stderr are captured.
 */
final class Cli {
    private Optional<EnclosingNode> enclosing = Optional.empty();
    /** Exit status and what the command printed. */
    record Result(int code, String out, String err) {}

    /** One request a fake connection received, with the socket it was sent to. */
    record Sent(Path socket, Request request) {}

    final Map<String, String> env = new HashMap<>();
    ControlSource control;
    NodeStarter starter = new NodeStarter() {
        @Override
        public void check() {}

        @Override
        public Launch start(Path runDir, ssi.comm.NodeAddress node, java.util.Optional<String> netns) throws IOException {
            throw new IOException("this test starts no node");
        }
    };
    CommandRunner commands = cmd -> {
        throw new IOException("this test runs no command: " + cmd);
    };
    /** Adjusts timeouts etc. of the Ssi instance before it runs. */
    java.util.function.Consumer<Ssi> tune = s -> {
        s.startTimeout = Duration.ofSeconds(5);
        s.stopTimeout = Duration.ofSeconds(5);
        s.pollInterval = Duration.ofMillis(20);
    };

    /** Requests sent through {@link #answering}'s fake connections. */
    final List<Sent> sent = new CopyOnWriteArrayList<>();

    /** A control source whose every socket answers with handler (no real socket involved). */
    Cli answering(Function<Request, Reply> handler) {
        control = socket -> new ControlSource.Connection() {
            @Override
            public Reply call(Request request) {
                sent.add(new Sent(socket, request));
                return handler.apply(request);
            }

            @Override
            public void close() {}
        };
        return this;
    }

    /** The real JDK control client: for tests with {@link FakeControlServer}s. */
    Cli realSockets() {
        control = ControlSource.unixSockets();
        return this;
    }

    /** Pretends ssi runs inside node `node` of the cluster in runDir (what /proc/1/cmdline would say). */
    Cli insideNode(int node, Path runDir) {
        enclosing = Optional.of(new EnclosingNode(node, runDir));
        return this;
    }

    Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        Ssi ssi = new Ssi(new Ssi.Deps(env, control == null ? ControlSource.unixSockets() : control, starter, commands, enclosing),
                new PrintWriter(out), new PrintWriter(err));
        tune.accept(ssi);
        int code = ssi.run(args);
        return new Result(code, out.toString(), err.toString());
    }

    List<Request> requests() {
        List<Request> r = new ArrayList<>();
        for (Sent s : sent) r.add(s.request());
        return r;
    }
}
