package ssi.launcher;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.Reply;
import ssi.comm.control.ControlMessages.Restarted;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code ssi restart DIR [--node N] --detach}: brings the application saved in an image back, with its
 * gpid, on node N (default: the local node), as a child of the node's init. One RESTART request to node
 * N's own control socket; that daemon reads the image with the caller's rights, checks it and rebuilds
 * the process. Without --detach the ssi script never reaches this class: it runs the foreground restart
 * {@code ssi-run --restart DIR} (docs/ARCHITECTURE.md, "Foreground restart").
 */
@Command(name = "restart", description = "Bring the application saved in the image DIR back to life, with the same gpid.",
        footer = {"", "The application comes back on node N (--node, default the local node): every process with its "
                + "gpid, parent, process group and session, threads, memory (shared memory too), registers, open "
                + "files at their offsets, pipes and socketpairs with the bytes in flight, signal handlers, masks and "
                + "queued signals, timers, cwd, umask, rlimits and credentials; zombies come back as zombies. Every "
                + "check runs before anything is created: the image must be complete and every checksum right, the "
                + "files the processes used must be the same ones (a changed file is reported as differing), every "
                + "gpid must be free on that node, and the caller must be root or the image's owner."})
final class RestartCommand implements Callable<Integer> {
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    @Option(names = {"-d", "--detach"}, description = "Return at once: the process runs on as a child of the node's "
            + "init, and its exit status is lost. Without it, the ssi script runs `ssi-run --restart DIR`, which "
            + "waits for the restored program in this terminal, as ssi-run does for a program, and exits with its "
            + "status; this command itself always restarts detached.")
    boolean detach;

    @Parameters(index = "0", paramLabel = "DIR", description = "Image directory (as `ssi checkpoint -o` wrote it). A "
            + "relative path is taken from the current directory.")
    Path dir;

    /** Bounds a restart that hangs; big images take a while to load. */
    static final Duration TIMEOUT = Duration.ofMinutes(30);

    private final Ssi ssi;

    RestartCommand(Ssi ssi) {
        this.ssi = ssi;
    }

    @Override
    public Integer call() throws SsiException {
        String what = "restart " + dir;
        String abs = dir.toAbsolutePath().normalize().toString();
        int node = ssi.node();
        Reply r = ssi.callOnce(node, new ControlMessages.Restart(abs), what, TIMEOUT);
        if (!r.isOk()) throw new SsiException(what, Errno.describe(r), "nothing was started; see " + ssi.logOf(node) + " for details");
        Restarted done = r.restart();
        ssi.out().println(String.format(Locale.ROOT, "restarted %d on node %d in %d ms", done.gpid(), node,
                Math.round(done.micros() / 1000.0)));
        return 0;
    }
}
