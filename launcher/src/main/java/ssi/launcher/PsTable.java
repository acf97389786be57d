package ssi.launcher;

import ssi.comm.control.ControlMessages.ProcessInfo;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * What `ssi ps` shows: the -o columns, the selection filters and the table. Pure functions over the
 * ProcessInfo list a PS reply carries, so they are tested on canned lists.
 */
final class PsTable {
    private PsTable() {}

    /** A column of `ssi ps -o`; numbers are right aligned as in ps. */
    enum Column {
        GPID(true, p -> Integer.toString(p.gpid())),
        NODE(true, p -> Integer.toString(p.node())),
        PPID(true, p -> Integer.toString(p.ppid())),
        PGID(true, p -> Integer.toString(p.pgid())),
        SID(true, p -> Integer.toString(p.sid())),
        USER(false, ProcessInfo::user),
        UID(true, p -> Integer.toString(p.uid())),
        STAT(false, ProcessInfo::state),
        TIME(true, p -> cpuTime(p.cpuMillis())),
        RSS(true, p -> Long.toString(p.rssKiB())),
        CMD(false, ProcessInfo::command);

        final boolean right;
        final Function<ProcessInfo, String> value;

        Column(boolean right, Function<ProcessInfo, String> value) {
            this.right = right;
            this.value = value;
        }
    }

    static final List<Column> DEFAULT = List.of(Column.GPID, Column.NODE, Column.PPID, Column.USER, Column.STAT,
            Column.TIME, Column.CMD);

    /** ps's own names for the same columns, so muscle memory (-o pid,args) works. */
    private static final Map<String, Column> ALIASES = aliases();

    private static Map<String, Column> aliases() {
        Map<String, Column> m = new LinkedHashMap<>();
        for (Column c : Column.values()) m.put(c.name().toLowerCase(Locale.ROOT), c);
        m.put("pid", Column.GPID);
        m.put("state", Column.STAT);
        m.put("s", Column.STAT);
        m.put("cputime", Column.TIME);
        m.put("rsz", Column.RSS);
        m.put("command", Column.CMD);
        m.put("args", Column.CMD);
        m.put("comm", Column.CMD);
        return m;
    }

    /** Parses -o values (each a comma list); IllegalArgumentException names the unknown column and the known ones. */
    static List<Column> columns(Collection<String> specs) {
        List<Column> out = new ArrayList<>();
        for (String spec : specs) {
            for (String name : spec.split(",", -1)) {
                String key = name.trim().toLowerCase(Locale.ROOT);
                if (key.isEmpty()) throw new IllegalArgumentException("empty column name in -o '" + spec + "'");
                Column c = ALIASES.get(key);
                if (c == null) {
                    throw new IllegalArgumentException("unknown column '" + name.trim() + "' (known: "
                            + String.join(",", java.util.Arrays.stream(Column.values())
                                    .map(k -> k.name().toLowerCase(Locale.ROOT)).toList()) + ")");
                }
                out.add(c);
            }
        }
        return out;
    }

    /**
     * The processes to show, sorted by gpid. As in ps, -u and -p select inclusively (a process shown by
     * either is shown); --on then restricts the result to the given nodes. Users match by name or, for
     * a number, by uid. Empty filters select everything.
     */
    static List<ProcessInfo> select(List<ProcessInfo> all, Collection<String> users, Collection<Integer> gpids,
                                    Collection<Integer> nodes) {
        Set<String> u = Set.copyOf(users);
        Set<Integer> g = Set.copyOf(gpids);
        Set<Integer> n = Set.copyOf(nodes);
        List<ProcessInfo> out = new ArrayList<>();
        for (ProcessInfo p : all) {
            boolean picked = (u.isEmpty() && g.isEmpty()) || g.contains(p.gpid()) || u.contains(p.user())
                    || u.contains(Integer.toString(p.uid()));
            if (picked && (n.isEmpty() || n.contains(p.node()))) out.add(p);
        }
        out.sort(Comparator.comparingInt(ProcessInfo::gpid));
        return out;
    }

    static String render(List<Column> columns, List<ProcessInfo> processes) {
        String[] headers = new String[columns.size()];
        boolean[] right = new boolean[columns.size()];
        for (int i = 0; i < headers.length; i++) {
            headers[i] = columns.get(i).name();
            right[i] = columns.get(i).right;
        }
        TextTable t = new TextTable(headers, right);
        for (ProcessInfo p : processes) {
            String[] row = new String[headers.length];
            for (int i = 0; i < row.length; i++) row[i] = columns.get(i).value.apply(p);
            t.add(row);
        }
        return t.render();
    }

    /** Cumulative CPU time as ps prints it: [DD-]HH:MM:SS. */
    static String cpuTime(long millis) {
        long s = Math.max(0, millis) / 1000;
        long days = s / 86400;
        String hms = String.format("%02d:%02d:%02d", (s / 3600) % 24, (s / 60) % 60, s % 60);
        return days > 0 ? days + "-" + hms : hms;
    }
}
