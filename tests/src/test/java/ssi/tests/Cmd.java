package ssi.tests;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs real processes for the end-to-end tests: foreground commands with a timeout that only bounds a
 * hang (never a duration we assert), and background ones. Output goes to files, never to pipes: a
 * program we start may leave a descendant (a node daemon, a sleep in a node) holding its stdout, and a
 * pipe would then never see end-of-file.
 */
final class Cmd {
    private Cmd() {}

    /** Generous bound for one ordinary command (a JVM start on a noisy 2-core machine included). */
    static final Duration TIMEOUT = Duration.ofSeconds(90);

    private static final Path SCRATCH;
    static {
        try {
            SCRATCH = Files.createTempDirectory("ssi-e2e-out-");
            SCRATCH.toFile().deleteOnExit();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A finished command. */
    record Result(List<String> command, int exit, String out, String err) {
        String describe() {
            return "`" + String.join(" ", command) + "` exited " + exit + "\n--- stdout:\n" + out + "--- stderr:\n" + err;
        }

        Result expectExit(int expected) {
            assertEquals(expected, exit, () -> "unexpected exit status of " + describe());
            return this;
        }

        List<String> outLines() {
            return out.isEmpty() ? List.of() : List.of(out.split("\n"));
        }
    }

    /** A process running in the background; its output is readable while it runs. */
    static final class Bg {
        final List<String> command;
        final Process process;
        private final Path out, err;

        private Bg(List<String> command, Process process, Path out, Path err) {
            this.command = command;
            this.process = process;
            this.out = out;
            this.err = err;
        }

        String out() { return read(out); }

        String err() { return read(err); }

        /** The first complete line of stdout, waiting for it (fails with the outputs on timeout or exit). */
        String awaitFirstLine(Duration timeout) {
            waitUntil(timeout, () -> out().contains("\n") || !process.isAlive(), () -> "first line of " + describe());
            String o = out();
            if (!o.contains("\n")) fail("no output line from " + describe());
            return o.substring(0, o.indexOf('\n'));
        }

        /** Waits for stdout to contain text. */
        void awaitOut(String text, Duration timeout) {
            waitUntil(timeout, () -> out().contains(text), () -> "'" + text + "' in the stdout of " + describe());
        }

        /** The exit status, failing (and killing it) if it does not end in time. */
        int awaitExit(Duration timeout) {
            try {
                if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    String d = describe();
                    kill();
                    fail("did not exit within " + timeout.toSeconds() + " s: " + d);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                fail("interrupted");
            }
            return process.exitValue();
        }

        boolean isAlive() { return process.isAlive(); }

        void kill() {
            process.descendants().forEach(ProcessHandle::destroyForcibly);
            process.destroyForcibly();
            try {
                process.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        void deleteFiles() {
            try {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            } catch (IOException ignored) {
                // scratch files; the directory goes at exit anyway
            }
        }

        String describe() {
            return "`" + String.join(" ", command) + "` (" + (process.isAlive() ? "running" : "exited " + process.exitValue())
                    + ")\n--- stdout:\n" + out() + "--- stderr:\n" + err();
        }
    }

    static Result run(Map<String, String> env, Path cwd, List<String> command) {
        return run(TIMEOUT, env, cwd, command);
    }

    static Result run(Duration timeout, Map<String, String> env, Path cwd, List<String> command) {
        Bg bg = start(env, cwd, command);
        try {
            int exit = bg.awaitExit(timeout);
            return new Result(command, exit, bg.out(), bg.err());
        } finally {
            bg.deleteFiles();
        }
    }

    static Bg start(Map<String, String> env, Path cwd, List<String> command) {
        try {
            Path out = Files.createTempFile(SCRATCH, "out-", ".txt");
            Path err = Files.createTempFile(SCRATCH, "err-", ".txt");
            ProcessBuilder pb = new ProcessBuilder(command)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectOutput(out.toFile())
                    .redirectError(err.toFile());
            if (cwd != null) pb.directory(cwd.toFile());
            if (env != null) {
                pb.environment().clear();
                pb.environment().putAll(env);
            }
            return new Bg(List.copyOf(command), pb.start(), out, err);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + command, e);
        }
    }

    /** The environment of this JVM, with overrides (a null value removes the variable). */
    static Map<String, String> env(String... keyValues) {
        Map<String, String> env = new HashMap<>(System.getenv());
        env.remove("SSI_NODE");
        env.remove("SSI_RUN_DIR");
        for (int i = 0; i < keyValues.length; i += 2) {
            if (keyValues[i + 1] == null) env.remove(keyValues[i]);
            else env.put(keyValues[i], keyValues[i + 1]);
        }
        return env;
    }

    static List<String> list(List<String> prefix, String... more) {
        List<String> l = new ArrayList<>(prefix);
        l.addAll(List.of(more));
        return l;
    }

    /** Polls cond every 100 ms; fails with what() once timeout has passed. */
    static void waitUntil(Duration timeout, BooleanSupplier cond, java.util.function.Supplier<String> what) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) fail("timed out after " + timeout.toSeconds() + " s waiting for " + what.get());
            sleep(100);
        }
    }

    /** Polls cond every 100 ms for at most timeout; returns whether it came true. */
    static boolean waitUntilQuietly(Duration timeout, BooleanSupplier cond) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) return false;
            sleep(100);
        }
        return true;
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    static String read(Path p) {
        try {
            return Files.exists(p) ? new String(Files.readAllBytes(p), StandardCharsets.UTF_8) : "";
        } catch (IOException e) {
            return "";
        }
    }
}
