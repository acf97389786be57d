package ssi.launcher;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import ssi.comm.control.ControlMessages;
import ssi.comm.control.ControlMessages.NodeInfo;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code ssi nodes}: the NODES request, printed as a table ID ADDRESS STATE LOAD MEM PROCS. MEM is
 * used/total (used = total - available), in bytes shown human readable. Load, memory and processes of
 * a node that is not UP are stale or unknown, so they print as "-".
 */
@Command(name = "nodes", description = "List the nodes of the cluster: state, load, memory (used/total) and processes.")
final class NodesCommand implements Callable<Integer> {
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    private final Ssi ssi;

    NodesCommand(Ssi ssi) {
        this.ssi = ssi;
    }

    @Override
    public Integer call() throws SsiException {
        int node = ssi.node();
        List<NodeInfo> nodes = ssi.requestOk(node, new ControlMessages.Nodes(), "nodes").nodes();
        ssi.out().print(format(nodes));
        return 0;
    }

    static String format(List<NodeInfo> nodes) {
        List<NodeInfo> sorted = new ArrayList<>(nodes);
        sorted.sort(Comparator.comparingInt(NodeInfo::id));
        TextTable t = new TextTable(new String[] {"ID", "ADDRESS", "STATE", "LOAD", "MEM", "PROCS"},
                new boolean[] {true, false, false, true, true, true});
        for (NodeInfo n : sorted) {
            boolean live = isUp(n.state());
            String mem = live && n.memTotal() > 0
                    ? TextTable.human(Math.max(0, n.memTotal() - n.memAvailable())) + "/" + TextTable.human(n.memTotal())
                    : "-";
            t.add(Integer.toString(n.id()), n.address(), n.state(),
                    live ? String.format(Locale.ROOT, "%.2f", n.load1()) : "-", mem,
                    live ? Integer.toString(n.processes()) : "-");
        }
        return t.render();
    }

    /** UP, or SELF (how the answering node lists itself): the node is alive and its figures are current. */
    static boolean isUp(String state) {
        return "UP".equalsIgnoreCase(state) || "SELF".equalsIgnoreCase(state);
    }
}
