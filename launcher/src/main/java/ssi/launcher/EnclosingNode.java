package ssi.launcher;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * The node this ssi process runs inside, if any: inside a node's pid namespace, pid 1 is that node's
 * ssi-shim, whose command line names the node and its run directory. Used as the default of --node and
 * --run-dir, so that `ssi capset` or `ssi ps` typed in a shell started by ssi-run talks to the node and
 * cluster that shell lives on. Immutable.
 */
record EnclosingNode(int node, Path runDir) {

    /** Reads /proc/1/cmdline; empty when pid 1 is not an ssi-shim (ssi runs outside the cluster). */
    static Optional<EnclosingNode> detect() {
        try {
            return parse(Files.readAllBytes(Path.of("/proc/1/cmdline")));
        } catch (IOException | SecurityException e) {
            return Optional.empty();
        }
    }

    /** Parses a NUL-separated command line of the form `.../ssi-shim --node N --run-dir DIR ...`. */
    static Optional<EnclosingNode> parse(byte[] cmdline) {
        List<String> args = List.of(new String(cmdline, StandardCharsets.UTF_8).split("\0"));
        if (args.isEmpty() || !args.get(0).endsWith("ssi-shim")) return Optional.empty();
        Integer node = null;
        Path runDir = null;
        for (int i = 1; i + 1 < args.size(); i++) {
            String a = args.get(i);
            if (a.equals("--")) break;
            if (a.equals("--node")) {
                try {
                    node = Integer.parseInt(args.get(i + 1));
                } catch (NumberFormatException e) {
                    return Optional.empty();
                }
            } else if (a.equals("--run-dir")) {
                runDir = Path.of(args.get(i + 1));
            }
        }
        return node == null || runDir == null ? Optional.empty() : Optional.of(new EnclosingNode(node, runDir));
    }
}
