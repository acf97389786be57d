package ssi.launcher;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.Charset;
import java.util.List;

/**
 * Runs a short helper program to completion and collects what it printed (stdout and stderr merged),
 * for the ip commands of --netns. An interface so tests can record the commands instead of changing
 * the machine's network namespaces.
 */
@FunctionalInterface
interface CommandRunner {

    /** Exit status and combined output of one finished command. */
    record Result(int exitCode, String output) {
        boolean ok() { return exitCode == 0; }
    }

    Result run(List<String> command) throws IOException;

    /** The real machine: ProcessBuilder, stdin from /dev/null, output read until the program exits. */
    static CommandRunner processes() {
        return command -> {
            ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
            Process p = pb.start();
            String output;
            try (InputStream in = p.getInputStream()) {
                output = new String(in.readAllBytes(), Charset.defaultCharset()).strip();
            }
            try {
                return new Result(p.waitFor(), output);
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while running " + String.join(" ", command), e);
            }
        };
    }
}
