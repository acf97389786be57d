package ssi.launcher;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import ssi.comm.control.Capabilities;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.CapSets;
import ssi.comm.control.ControlMessages.Reply;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code ssi capset}: shows or changes the four SSI capability sets of a process, like Kerrighed's
 * krg_capset. Without GPID it acts on the caller's parent (gpid 0 on the wire: the daemon resolves it
 * to the shell that ran ssi), so {@code ssi capset -e +CAN_MIGRATE} changes the shell and, through the
 * inheritable sets, what it starts next.
 */
@Command(name = "capset", description = "Show or change the SSI capabilities of a process (default: the calling shell).",
        footer = {"", "CHANGES is a comma list of +CAP or -CAP ('+' may be omitted), CAP one of CAN_MIGRATE, "
                + "DISTANT_FORK, CAN_CHECKPOINT, SEE_LOCAL_PROC_STAT, CHANGE_SSI_CAP (any case).",
                "", "Several sets in one call are applied so that the subset rules hold at every step: raises first "
                + "(permitted before effective), then lowers (effective before permitted). Without a change "
                + "option, or with -l, the four sets are printed."})
final class CapsetCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    @Parameters(index = "0", arity = "0..1", paramLabel = "GPID",
            description = "Process to act on (default: the parent of ssi, i.e. the shell).")
    Integer gpid;

    @Option(names = {"-l", "--list"}, description = "Print the four capability sets (after any change).")
    boolean list;

    @Option(names = {"-e", "--effective"}, paramLabel = "CHANGES", description = "Change the effective set.")
    String effective;

    @Option(names = {"-p", "--permitted"}, paramLabel = "CHANGES", description = "Change the permitted set.")
    String permitted;

    @Option(names = {"-d", "--inheritable-effective"}, paramLabel = "CHANGES",
            description = "Change the inheritable effective set.")
    String inheritableEffective;

    @Option(names = {"-i", "--inheritable-permitted"}, paramLabel = "CHANGES",
            description = "Change the inheritable permitted set.")
    String inheritablePermitted;

    private final Ssi ssi;

    CapsetCommand(Ssi ssi) {
        this.ssi = ssi;
    }

    @Override
    public Integer call() throws SsiException {
        Map<Integer, CapChanges.Change> changes = changes();
        if (gpid != null && gpid <= 0) throw new ParameterException(spec.commandLine(), "'" + gpid + "' is not a gpid (a positive number)");
        int target = gpid == null ? 0 : gpid;
        String who = target == 0 ? "capset (calling shell)" : "capset " + target;
        int node = ssi.node();
        try (ControlSource.Connection c = ssi.open(node, who)) {
            CapSets sets = null;
            for (CapChanges.Step s : CapChanges.plan(changes)) {
                String action = (s.raise() != 0 ? "raise " : "lower ") + CapChanges.setName(s.set()) + " "
                        + Capabilities.names(s.raise() | s.lower());
                Reply r = ssi.call(c, node, new ControlMessages.CapSet(target, s.set(), s.raise(), s.lower()), who);
                if (!r.isOk()) {
                    throw new SsiException(who + ": " + action, Errno.describe(r),
                            "steps before this one stay applied; see the sets with " + ssi.suggest("capset "
                                    + (target == 0 ? "" : target + " ") + "-l"));
                }
                sets = r.caps();
            }
            if (list || changes.isEmpty()) {
                if (sets == null) {
                    Reply r = ssi.call(c, node, new ControlMessages.CapGet(target), who);
                    if (!r.isOk()) throw new SsiException(who, Errno.describe(r), "check the gpid with " + ssi.suggest("ps"));
                    sets = r.caps();
                }
                ssi.out().print(format(sets));
            }
        }
        return 0;
    }

    /** The parsed change options, keyed by set number; usage errors for bad names. */
    Map<Integer, CapChanges.Change> changes() {
        Map<Integer, CapChanges.Change> m = new LinkedHashMap<>();
        put(m, Capabilities.EFFECTIVE, "-e", effective);
        put(m, Capabilities.PERMITTED, "-p", permitted);
        put(m, Capabilities.INHERITABLE_EFFECTIVE, "-d", inheritableEffective);
        put(m, Capabilities.INHERITABLE_PERMITTED, "-i", inheritablePermitted);
        return m;
    }

    private void put(Map<Integer, CapChanges.Change> m, int set, String option, String spec) {
        if (spec == null) return;
        try {
            m.put(set, CapChanges.parse(spec));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(this.spec.commandLine(), option + ": " + e.getMessage());
        }
    }

    static String format(CapSets s) {
        return "Permitted: " + Capabilities.names(s.permitted()) + "\n"
                + "Effective: " + Capabilities.names(s.effective()) + "\n"
                + "Inheritable Permitted: " + Capabilities.names(s.inheritablePermitted()) + "\n"
                + "Inheritable Effective: " + Capabilities.names(s.inheritableEffective()) + "\n";
    }
}
