package ssi.launcher;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.Checkpointed;
import ssi.comm.control.ControlMessages.Reply;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code ssi checkpoint}: saves a running application (a process and all its descendants) into an
 * image directory while it keeps running, or with --stop ends it once the image is written. One
 * CHECKPOINT request to the --node daemon, which forwards it to the node the process was born on.
 */
@Command(name = "checkpoint", description = "Save the application rooted at GPID (it and all its descendants) to an image.",
        footer = {"", "The application is frozen while its state is read and written, then runs on (or is killed, with "
                + "--stop). The freeze time is reported. With --stop every file of the image is fsync'd before the kill; "
                + "without it nothing is fsync'd (the kernel writes the image back later; `sync -f DIR` forces it), and a "
                + "crash before that leaves an image a restart refuses, never a wrong one. Needs CAN_CHECKPOINT in the effective SSI capability set of GPID, "
                + "and the caller must own every process of the application (or be root). Objects an image cannot hold "
                + "(sockets, terminals, devices other than /dev/null, zero, random, urandom, pipes to processes outside "
                + "the application or holding unread bytes, POSIX timers, zombies) make the checkpoint fail with a "
                + "message naming the process and fd; nothing is written then. The image format is described in "
                + "docs/IMAGE-FORMAT.md. Default DIR: /var/lib/ssi/checkpoints/GPID-TIMESTAMP on the process's node. "
                + "`ssi image show DIR` prints an image.",
                "",
                "Incremental checkpoints: every checkpoint that leaves the application running starts tracking the pages "
                + "its processes write (userfaultfd write-protection, resolved by the kernel: the program never waits). "
                + "With --incremental the image stores only the pages written since the parent image and refers to the "
                + "others there: the parent is --parent DIR, or by default the last image this node wrote of the "
                + "application for you since the node started. A process or mapping not tracked since exactly that image "
                + "(new, forked, remapped) is stored whole. `ssi restart` of an incremental image reads each page from "
                + "the newest image of the chain that holds it, so every image of the chain must stay in place (a missing "
                + "or replaced parent is refused, naming it)."})
final class CheckpointCommand implements Callable<Integer> {
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    @Parameters(index = "0", paramLabel = "GPID", description = "Root process of the application.")
    int gpid;

    @Option(names = {"-o", "--output"}, paramLabel = "DIR",
            description = "Image directory (created 0700; must not hold an image already). A relative path is taken from "
                    + "the current directory.")
    Path output;

    @Option(names = "--stop", description = "Kill the application (SIGKILL) once the image is written and fsync'd.")
    boolean stop;

    @Option(names = {"-i", "--incremental"}, description = "Store only the pages written since the parent image (see below).")
    boolean incremental;

    @Option(names = "--parent", paramLabel = "DIR", description = "Parent image of an incremental checkpoint (implies "
            + "--incremental; default: the last image of this application written for you by its node).")
    Path parent;

    /** Bounds a checkpoint that hangs; big applications take a while to write. */
    static final Duration TIMEOUT = Duration.ofMinutes(30);

    private final Ssi ssi;

    CheckpointCommand(Ssi ssi) {
        this.ssi = ssi;
    }

    @Override
    public Integer call() throws SsiException {
        String what = "checkpoint " + gpid;
        // The daemon runs elsewhere (another cwd, maybe another node): it gets an absolute path.
        String dir = output == null ? "" : output.toAbsolutePath().normalize().toString();
        int node = ssi.node();
        String parentDir = parent == null ? "" : parent.toAbsolutePath().normalize().toString();
        boolean incr = incremental || parent != null;
        Reply r = ssi.callOnce(node, new ControlMessages.Checkpoint(gpid, dir, stop, incr, parentDir), what, TIMEOUT);
        if (!r.isOk()) throw new SsiException(what, Errno.describe(r), "nothing was written; see " + ssi.logOf(node) + " for details");
        Checkpointed done = r.checkpoint();
        ssi.out().println(String.format(Locale.ROOT, "checkpoint of %d (%d process%s, %.1f MiB) written to %s; frozen %d ms%s",
                gpid, done.processes(), done.processes() == 1 ? "" : "es", done.pageBytes() / 1048576.0, done.dir(),
                Math.round(done.freezeMicros() / 1000.0), stop ? "; application stopped" : ""));
        if (incr) {
            ssi.out().println(String.format(Locale.ROOT, "incremental: %.1f MiB of unchanged pages are in the parent %s",
                    done.parentPageBytes() / 1048576.0, done.parent()));
        }
        return 0;
    }
}
