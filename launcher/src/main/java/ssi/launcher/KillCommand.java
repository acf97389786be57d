package ssi.launcher;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.Reply;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code ssi kill}: sends a signal to processes anywhere in the cluster, one KILL request per gpid to
 * the --node daemon (which forwards gpids born elsewhere). The signal is given as in kill(1):
 * {@code -s SIG}, {@code -SIG} or {@code -NUM}. The command line is built with unmatched options as
 * positionals (see {@link Ssi#commandLine()}), so a leading {@code -9} or {@code -KILL} arrives in
 * {@link #args} and is recognised here.
 */
@Command(name = "kill", description = "Send a signal (default TERM) to processes of the cluster, by gpid.",
        customSynopsis = {"ssi kill [-s SIG | -SIG | -NUM] GPID...", "ssi kill -l [SIG|NUM...]"},
        footer = {"", "SIG is a name with or without SIG (KILL, SIGKILL, RTMIN+2) or a number; 0 only checks that "
                + "the process exists. -l alone lists the signals; -l with arguments converts names to numbers and "
                + "numbers (or exit statuses 128+N) to names. Every gpid is tried; the exit status is 1 if any failed."})
final class KillCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    @Option(names = "-s", paramLabel = "SIG", description = "Signal to send (name or number).")
    String signalOption;

    @Option(names = "-l", description = "List signal names, or convert the arguments.")
    boolean list;

    @Parameters(paramLabel = "GPID", description = "Processes to signal (an optional -SIG or -NUM may come first).")
    List<String> args = new ArrayList<>();

    private final Ssi ssi;

    KillCommand(Ssi ssi) {
        this.ssi = ssi;
    }

    /** A parsed kill command line: the signal and the gpids. */
    record Target(int signal, List<Integer> gpids) {}

    @Override
    public Integer call() throws SsiException {
        if (list) {
            ssi.out().print(list(args));
            return 0;
        }
        Target t = parse(signalOption, args);
        boolean failed = false;
        int node = ssi.node();
        try (ControlSource.Connection c = ssi.open(node, "kill")) {
            for (int gpid : t.gpids()) {
                Reply r = ssi.call(c, node, new ControlMessages.Kill(gpid, t.signal()), "kill " + gpid);
                if (!r.isOk()) {
                    // report and go on: kill(1) also tries every pid it was given
                    ssi.err().println("ssi: kill " + gpid + ": " + Errno.describe(r));
                    failed = true;
                }
            }
        }
        return failed ? 1 : 0;
    }

    /** Reads [-SIG|-NUM] GPID... (with -s already taken by picocli); usage errors as ParameterException. */
    Target parse(String sOption, List<String> arguments) {
        String sig = sOption;
        List<Integer> gpids = new ArrayList<>();
        for (String a : arguments) {
            if (a.startsWith("-") && a.length() > 1) {
                if (sig != null || !gpids.isEmpty()) {
                    throw usage("unexpected '" + a + "': give the signal once, before the gpids (gpids are positive)");
                }
                sig = a.substring(1);
            } else {
                gpids.add(gpid(a));
            }
        }
        if (gpids.isEmpty()) throw usage("no GPID given");
        int signal;
        try {
            signal = sig == null ? 15 : Signals.parse(sig);
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        return new Target(signal, List.copyOf(gpids));
    }

    private int gpid(String a) {
        try {
            int g = Integer.parseInt(a);
            if (g > 0) return g;
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw usage("'" + a + "' is not a gpid (a positive number)");
    }

    /** kill -l: the table, or each argument converted (name -> number, number -> name, 128+N -> name of N). */
    String list(List<String> arguments) {
        if (arguments.isEmpty()) return Signals.table();
        StringBuilder sb = new StringBuilder();
        for (String a : arguments) {
            if (!a.isEmpty() && a.chars().allMatch(Character::isDigit) && a.length() <= 4) {
                int n = Integer.parseInt(a);
                if (n > 128) n -= 128; // an exit status like 137 means "killed by signal 9", as bash reads it
                String name = Signals.name(n);
                if (name == null) throw usage("no signal has number " + a);
                sb.append(name).append('\n');
            } else {
                try {
                    sb.append(Signals.parse(a)).append('\n');
                } catch (IllegalArgumentException e) {
                    throw usage(e.getMessage());
                }
            }
        }
        return sb.toString();
    }

    private ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }
}
