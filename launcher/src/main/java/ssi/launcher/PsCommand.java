package ssi.launcher;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.ProcessInfo;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code ssi ps}: every process of the cluster (PS with allNodes=true, answered by whichever node
 * --node names), filtered and formatted like ps. Unlike ps, which shows only the terminal's processes
 * without -e, the cluster-wide list is the default; -e/-A are accepted and change nothing.
 */
@Command(name = "ps", description = "List the processes of every node of the cluster, sorted by gpid.",
        footer = {"", "Unlike ps, ssi ps lists every process of the cluster even without -e: the cluster-wide view is "
                + "the point. -e and -A are accepted for ps habits and change nothing.",
                "", "-u and -p select inclusively, as in ps; --on then keeps only processes running on the given "
                + "nodes. When a filter selects nothing, only the header is printed and the exit status is 1 (as "
                + "ps does), so `ssi ps -p GPID >/dev/null` tests whether GPID exists."})
final class PsCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    @Option(names = {"-e", "-A"}, description = "All processes (already the default, see below).")
    boolean all;

    @Option(names = "-u", split = ",", paramLabel = "USER", description = "Processes of these users (names or uids).")
    List<String> users = new ArrayList<>();

    @Option(names = "-p", split = ",", paramLabel = "GPID", description = "Processes with these gpids.")
    List<Integer> gpids = new ArrayList<>();

    @Option(names = "--on", split = ",", paramLabel = "NODE", description = "Only processes running on these nodes.")
    List<Integer> nodes = new ArrayList<>();

    @Option(names = "-o", split = ",", paramLabel = "FORMAT",
            description = "Columns, comma separated, from: gpid,node,ppid,pgid,sid,user,uid,stat,time,rss,cmd "
                    + "(default gpid,node,ppid,user,stat,time,cmd; rss in KiB).")
    List<String> format = new ArrayList<>();

    private final Ssi ssi;

    PsCommand(Ssi ssi) {
        this.ssi = ssi;
    }

    @Override
    public Integer call() throws SsiException {
        List<PsTable.Column> columns;
        try {
            columns = format.isEmpty() ? PsTable.DEFAULT : PsTable.columns(format);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        for (int g : gpids) {
            if (g <= 0) throw new ParameterException(spec.commandLine(), "-p " + g + ": a gpid is a positive number");
        }
        for (int n : nodes) {
            if (n < 1 || n > 255) throw new ParameterException(spec.commandLine(), "--on " + n + ": a node id is 1..255");
        }
        for (String u : users) {
            if (u.isBlank()) throw new ParameterException(spec.commandLine(), "-u: empty user name");
        }
        int node = ssi.node();
        List<ProcessInfo> all = ssi.requestOk(node, new ControlMessages.Ps(true), "ps").processes();
        List<ProcessInfo> shown = PsTable.select(all, users, gpids, nodes);
        ssi.out().print(PsTable.render(columns, shown));
        boolean filtered = !users.isEmpty() || !gpids.isEmpty() || !nodes.isEmpty();
        return filtered && shown.isEmpty() ? 1 : 0;
    }
}
