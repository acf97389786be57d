package ssi.launcher;

import ssi.comm.NodeAddress;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Starts a node the real way: {@code [ip netns exec ssi-n<i>] $SSI_HOME/native/target/bin/ssi-shim
 * --node i --run-dir DIR --detach -- $SSI_HOME/bin/ssid --node i --run-dir DIR}. The --detach parent
 * returns once the node is ready, or exits 1 after printing why.
 *
 * <p>stdout and stderr go to DIR/node-i.log (appended, so earlier runs stay readable), never to a
 * pipe: the detached shim and the daemon inherit these descriptors and live on, so a pipe would never
 * see end-of-file. To show the parent's error message we remember the log's size before starting and
 * read what was appended after it.
 */
final class ShimNodeStarter implements NodeStarter {
    private final Map<String, String> env;

    ShimNodeStarter(Map<String, String> env) {
        this.env = env;
    }

    private Path home() {
        String h = env.get("SSI_HOME");
        return h == null || h.isBlank() ? null : Path.of(h).toAbsolutePath();
    }

    static Path shim(Path home) { return home.resolve("native/target/bin/ssi-shim"); }

    static Path ssid(Path home) { return home.resolve("bin/ssid"); }

    @Override
    public void check() throws SsiException {
        Path home = home();
        if (home == null) {
            throw new SsiException("cluster start", "SSI_HOME is not set, so ssi-shim and ssid cannot be found",
                    "run ssi through the ssi script of the repository, or export SSI_HOME=<repository>");
        }
        if (!Files.isExecutable(shim(home))) {
            throw new SsiException("cluster start", "no executable ssi-shim at " + shim(home),
                    "build it with `mvn -q -DskipTests package` in " + home);
        }
        if (!Files.isExecutable(ssid(home))) {
            throw new SsiException("cluster start", "no executable ssid script at " + ssid(home),
                    "check SSI_HOME (" + home + ") points to the repository");
        }
    }

    /** The command line of node's shim; netns adds the `ip netns exec` prefix. */
    static List<String> command(Path home, Path runDir, int node, Optional<String> netns) {
        List<String> cmd = new ArrayList<>();
        netns.ifPresent(ns -> cmd.addAll(List.of(NetnsTopology.ipTool(), "netns", "exec", ns)));
        String id = Integer.toString(node);
        String dir = runDir.toString();
        cmd.addAll(Arrays.asList(shim(home).toString(), "--node", id, "--run-dir", dir, "--detach", "--",
                ssid(home).toString(), "--node", id, "--run-dir", dir));
        return cmd;
    }

    @Override
    public Launch start(Path runDir, NodeAddress node, Optional<String> netns) throws IOException {
        Path home = home();
        if (home == null) throw new IOException("SSI_HOME is not set");
        Path log = runDir.resolve("node-" + node.id() + ".log");
        long offset = Files.exists(log) ? Files.size(log) : 0;
        ProcessBuilder pb = new ProcessBuilder(command(home, runDir, node.id(), netns))
                .directory(runDir.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .redirectErrorStream(true);
        Process p = pb.start();
        return new Launch() {
            @Override
            public String await(Duration timeout) throws InterruptedException {
                if (!p.waitFor(Math.max(0, timeout.toMillis()), TimeUnit.MILLISECONDS)) {
                    p.destroy();
                    // the caller knows the overall deadline; this wait may only have had its remainder
                    return "ssi-shim --detach did not report the node ready in time";
                }
                int status = p.exitValue();
                if (status == 0) return null;
                String said = appendedSince(log, offset);
                return said.isEmpty() ? "ssi-shim exited with status " + status + " and printed nothing" : said;
            }

            @Override
            public void abort() {
                if (p.isAlive()) p.destroy();
            }
        };
    }

    /** The last lines appended to log after offset (the shim parent's message), joined with " / ". */
    static String appendedSince(Path log, long offset) {
        try (RandomAccessFile f = new RandomAccessFile(log.toFile(), "r")) {
            long len = f.length();
            long from = len < offset ? 0 : offset; // the file was truncated meanwhile: read all of it
            from = Math.max(from, len - 4096);     // an error message is short; do not dump a whole log
            byte[] b = new byte[(int) (len - from)];
            f.seek(from);
            f.readFully(b);
            List<String> lines = new ArrayList<>();
            for (String l : new String(b, StandardCharsets.UTF_8).split("\n")) {
                if (!l.isBlank()) lines.add(l.strip());
            }
            return String.join(" / ", lines.subList(Math.max(0, lines.size() - 5), lines.size()));
        } catch (IOException e) {
            return "";
        }
    }
}
