package ssi.launcher;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;
import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Request;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;

/**
 * {@code ssi}: the cluster administration command line (picocli). The root command holds the global
 * options (--run-dir, --node), builds the command tree, and turns every failure into one line on
 * stderr, {@code ssi: <what failed>: <why>; <what to do>}, with exit status 1 (operation failed) or 2
 * (usage error). Everything the commands touch outside the JVM (control sockets, the shim, the ip
 * tool, the environment) comes in through {@link Deps}, so tests run every command against fakes.
 *
 * <p>Start-up speed matters (people type ssi ps in a loop): the CLI path uses only picocli and the
 * JDK-only {@link ssi.comm.control.ControlClient}; nothing here touches Netty.
 */
@Command(name = "ssi", mixinStandardHelpOptions = true, version = "ssi 0.1.0",
        description = "Administer an SSI cluster: start and stop it, list its nodes and processes, signal processes, "
                + "change SSI capabilities, checkpoint applications and inspect their images.",
        footer = {"", "Exit status: 0 success, 1 the operation failed, 2 usage error.",
                "Environment: SSI_RUN_DIR and SSI_NODE give the defaults of --run-dir and --node; SSI_HOME (set by "
                        + "the ssi script) is where `cluster start` finds ssi-shim and ssid."})
public final class Ssi implements Callable<Integer> {
    static final String DEFAULT_RUN_DIR = "/run/ssi";

    /**
     * What the commands use from outside the JVM. {@link #system()} is the real machine; tests pass fakes.
     *
     * @param env      environment variables (SSI_RUN_DIR, SSI_NODE, SSI_HOME, SSI_DEBUG)
     * @param control  connections to node control sockets
     * @param starter  starts one node (ssi-shim --detach) for `cluster start`
     * @param commands runs helper programs (the ip tool for --netns)
     * @param enclosing the node this process runs inside (defaults of --node and --run-dir), if any
     */
    record Deps(Map<String, String> env, ControlSource control, NodeStarter starter, CommandRunner commands,
                Optional<EnclosingNode> enclosing) {
        static Deps system() {
            Map<String, String> env = System.getenv();
            return new Deps(env, ControlSource.unixSockets(), new ShimNodeStarter(env), CommandRunner.processes(),
                    EnclosingNode.detect());
        }
    }

    @Spec
    CommandSpec spec;

    // INHERIT: `ssi --node 2 ps` and `ssi ps --node 2` both work, on every subcommand.
    @Option(names = "--run-dir", paramLabel = "DIR", scope = ScopeType.INHERIT,
            description = "Run directory of the cluster (default: $SSI_RUN_DIR, else the cluster ssi runs in, else "
                    + DEFAULT_RUN_DIR + ").")
    String runDirOption;

    @Option(names = "--node", paramLabel = "N", scope = ScopeType.INHERIT,
            description = "Node whose control socket ssi talks to (default: $SSI_NODE, else the node ssi runs on, "
                    + "else 1); any node answers cluster-wide requests.")
    Integer nodeOption;

    private final Deps deps;
    private final PrintWriter out;
    private final PrintWriter err;

    /** How long an ordinary request may take (a cluster-wide ps waits for every node's answer). */
    Duration requestTimeout = Duration.ofSeconds(30);
    /** `cluster start`: until every node answers and node 1 sees all of them UP. */
    Duration startTimeout = Duration.ofSeconds(60);
    /** `cluster stop`: until no node answers any more. */
    Duration stopTimeout = Duration.ofSeconds(20);
    /** Period of the polls of start and stop. */
    Duration pollInterval = Duration.ofMillis(100);

    Ssi(Deps deps, PrintWriter out, PrintWriter err) {
        this.deps = deps;
        this.out = out;
        this.err = err;
    }

    public static void main(String[] args) {
        // stdout is buffered (ps of a big cluster prints thousands of lines) and flushed by run();
        // stderr flushes every line so errors appear in order with what the shell prints.
        PrintWriter out = new PrintWriter(new BufferedWriter(new OutputStreamWriter(System.out, System.out.charset())));
        PrintWriter err = new PrintWriter(new OutputStreamWriter(System.err, System.err.charset()), true);
        System.exit(new Ssi(Deps.system(), out, err).run(args));
    }

    /** Parses and runs one command line; returns the exit status. */
    int run(String... args) {
        try {
            return commandLine().execute(args);
        } finally {
            out.flush();
            err.flush();
        }
    }

    /** The command tree, wired to this instance's dependencies and writers. */
    CommandLine commandLine() {
        CommandLine cluster = new CommandLine(new ClusterCommand())
                .addSubcommand(new CommandLine(new ClusterStartCommand(this)))
                .addSubcommand(new CommandLine(new ClusterStopCommand(this)));
        CommandLine kill = new CommandLine(new KillCommand(this));
        // `ssi kill -9 GPID` and `ssi kill -KILL GPID`: a dash argument that is not -s/-l/-h reaches the
        // command as a positional argument, which KillCommand reads as the signal.
        kill.setUnmatchedOptionsArePositionalParams(true);
        CommandLine root = new CommandLine(this)
                .addSubcommand(cluster)
                .addSubcommand(new CommandLine(new NodesCommand(this)))
                .addSubcommand(new CommandLine(new PsCommand(this)))
                .addSubcommand(kill)
                .addSubcommand(new CommandLine(new CapsetCommand(this)))
                .addSubcommand(new CommandLine(new CheckpointCommand(this)))
                .addSubcommand(new CommandLine(new RestartCommand(this)))
                .addSubcommand(new CommandLine(new ImageCommand(), new ImageFactory(this)));
        // Set after the tree is built: picocli copies these settings to the subcommands present now.
        root.setOut(out);
        root.setErr(err);
        root.setParameterExceptionHandler((ex, args) -> {
            CommandLine where = ex.getCommandLine();
            String path = commandPath(where);
            err.println("ssi: " + (path.isEmpty() ? "" : path + ": ") + ex.getMessage()
                    + "; see `" + where.getCommandSpec().qualifiedName(" ") + " --help`");
            return 2;
        });
        root.setExecutionExceptionHandler((ex, where, parsed) -> {
            if (ex instanceof SsiException s) {
                err.println("ssi: " + s.getMessage());
                return 1;
            }
            // A bug, not an operational failure: say so instead of pretending it is the cluster's fault.
            err.println("ssi: " + commandPath(where) + ": internal error: " + ex
                    + "; please report it (run with SSI_DEBUG=1 for a stack trace)");
            if (deps.env().get("SSI_DEBUG") != null) ex.printStackTrace(err);
            return 1;
        });
        return root;
    }

    private static String commandPath(CommandLine c) {
        String q = c.getCommandSpec().qualifiedName(" ");
        return q.startsWith("ssi ") ? q.substring(4) : q.equals("ssi") ? "" : q;
    }

    @Override
    public Integer call() {
        throw new ParameterException(spec.commandLine(), "missing command (one of: cluster, nodes, ps, kill, capset, checkpoint, restart, image)");
    }

    /** Builds the `image` subcommands with this instance (they print through its writers). */
    private record ImageFactory(Ssi ssi) implements CommandLine.IFactory {
        @Override
        public <K> K create(Class<K> cls) throws Exception {
            if (cls == ImageCommand.Show.class) return cls.cast(new ImageCommand.Show(ssi));
            return CommandLine.defaultFactory().create(cls);
        }
    }

    Deps deps() { return deps; }

    PrintWriter out() { return out; }

    PrintWriter err() { return err; }

    /** --run-dir, else $SSI_RUN_DIR, else /run/ssi; absolute, because the shim and ssid get it too. */
    Path runDir() {
        String d = runDirOption;
        if (d == null || d.isEmpty()) d = deps.env().get("SSI_RUN_DIR");
        if ((d == null || d.isEmpty()) && deps.enclosing().isPresent()) d = deps.enclosing().get().runDir().toString();
        if (d == null || d.isEmpty()) d = DEFAULT_RUN_DIR;
        return Path.of(d).toAbsolutePath().normalize();
    }

    /** "ssi " or "ssi --run-dir DIR ": the prefix of a command we suggest, so it acts on the same cluster. */
    String suggest(String command) {
        return "`ssi " + (runDirOption != null ? "--run-dir " + runDir() + " " : "") + command + "`";
    }

    /** --node, else $SSI_NODE, else the node ssi runs on, else 1; a bad value is a usage error. */
    int node() {
        Integer n = nodeOption;
        String source = "--node";
        if (n == null) {
            String env = deps.env().get("SSI_NODE");
            if (env != null && !env.isBlank()) {
                source = "SSI_NODE";
                try {
                    n = Integer.parseInt(env.trim());
                } catch (NumberFormatException e) {
                    throw new ParameterException(spec.commandLine(), "SSI_NODE='" + env + "' is not a node id (1..255)");
                }
            } else {
                n = deps.enclosing().map(EnclosingNode::node).orElse(1);
            }
        }
        if (n < 1 || n > 255) throw new ParameterException(spec.commandLine(), source + " " + n + " is not a node id (1..255)");
        return n;
    }

    Path logOf(int node) {
        return runDir().resolve("node-" + node + ".log");
    }

    /** Opens node's control socket, or explains why it cannot be reached. */
    ControlSource.Connection open(int node, String what) throws SsiException {
        Path socket = ControlSource.socketOf(runDir(), node);
        try {
            return deps.control().open(socket);
        } catch (IOException e) {
            String why = Files.exists(socket)
                    ? "cannot reach node " + node + " at " + socket + ": " + cause(e)
                    : "no node " + node + " in " + runDir() + " (" + socket.getFileName() + " does not exist)";
            throw new SsiException(what, why, "is the cluster running? start it with " + suggest("cluster start")
                    + ", or ask another node with --node");
        }
    }

    /** One request on an open connection, with the ordinary timeout; transport failures become SsiException. */
    Reply call(ControlSource.Connection c, int node, Request request, String what) throws SsiException {
        return call(c, node, request, what, requestTimeout);
    }

    /** Opens, sends one request that may take up to timeout (a checkpoint, a restart), closes. */
    Reply callOnce(int node, Request request, String what, Duration timeout) throws SsiException {
        try (ControlSource.Connection c = open(node, what)) {
            return call(c, node, request, what, timeout);
        }
    }

    private Reply call(ControlSource.Connection c, int node, Request request, String what, Duration timeout)
            throws SsiException {
        try {
            return NodeProbe.call(c, request, timeout);
        } catch (IOException e) {
            throw new SsiException(what, "node " + node + " did not answer: " + e.getMessage(),
                    "see " + logOf(node) + " for what its daemon did");
        }
    }

    /** Opens, sends one request, closes; a non-OK reply becomes an SsiException. */
    Reply requestOk(int node, Request request, String what) throws SsiException {
        try (ControlSource.Connection c = open(node, what)) {
            Reply r = call(c, node, request, what);
            if (!r.isOk()) {
                throw new SsiException(what, Errno.describe(r), "see " + logOf(node) + " if the reason is unclear");
            }
            return r;
        }
    }

    /** The innermost message of an exception chain: "Connection refused" rather than a wrapper's prose. */
    static String cause(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) t = t.getCause();
        return t.getMessage() != null ? t.getMessage() : t.toString();
    }
}
