package ssi.shim;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The syscalls the seccomp filter traps, read from {@code /ssi/shim/syscalls.tsv} (the same file the
 * native build turns into the shim's C table, so Java and C cannot disagree). Immutable once loaded;
 * safe to share between threads.
 */
public final class SyscallTable {
    /** Where the table lives on the classpath. */
    public static final String RESOURCE = "/ssi/shim/syscalls.tsv";

    /**
     * One trapped syscall.
     *
     * @param decidedByShim true when the C shim answers alone for targets on this node (column
     *                      {@code shim}), false when the daemon always answers ({@code daemon})
     * @param fullySupported column {@code full}; false for {@code partial}, and {@link #what} says what is missing
     */
    public record Entry(String name, int nr, boolean decidedByShim, boolean fullySupported, String what) {}

    private final List<Entry> entries;
    private final Map<Integer, Entry> byNr;

    private SyscallTable(List<Entry> entries) {
        this.entries = Collections.unmodifiableList(entries);
        Map<Integer, Entry> m = new HashMap<>();
        for (Entry e : entries)
            m.put(e.nr(), e);
        this.byNr = m;
    }

    /** Loads the table shipped in this module's jar. */
    public static SyscallTable load() {
        InputStream in = SyscallTable.class.getResourceAsStream(RESOURCE);
        if (in == null)
            throw new IllegalStateException("the syscall table " + RESOURCE + " is not on the classpath: "
                    + "the syscall-shim jar is incomplete");
        try (Reader r = new InputStreamReader(in, StandardCharsets.UTF_8)) {
            return parse(r, RESOURCE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the syscall table " + RESOURCE, e);
        }
    }

    /**
     * Parses a table in the format of syscalls.tsv: '#' lines and blank lines are comments, every other
     * line has exactly five tab-separated columns. Throws {@link IllegalArgumentException} naming the
     * source and line of the first malformed line.
     */
    public static SyscallTable parse(Reader source, String sourceName) throws IOException {
        List<Entry> entries = new ArrayList<>();
        Map<Integer, String> nrs = new HashMap<>();
        Map<String, Integer> names = new HashMap<>();
        BufferedReader br = new BufferedReader(source);
        String line;
        int lineNo = 0;
        while ((line = br.readLine()) != null) {
            lineNo++;
            if (line.isBlank() || line.startsWith("#"))
                continue;
            String[] col = line.split("\t", -1);
            if (col.length != 5)
                throw malformed(sourceName, lineNo, line, "expected 5 tab-separated columns (name, nr, decide, "
                        + "support, what), found " + col.length);
            String name = col[0].strip();
            if (name.isEmpty() || !name.matches("[a-z0-9_]+"))
                throw malformed(sourceName, lineNo, line, "bad syscall name '" + col[0] + "'");
            int nr;
            try {
                nr = Integer.parseInt(col[1].strip());
            } catch (NumberFormatException e) {
                throw malformed(sourceName, lineNo, line, "syscall number '" + col[1] + "' is not a number");
            }
            if (nr < 0 || nr > 1023)
                throw malformed(sourceName, lineNo, line, "syscall number " + nr + " is out of range 0..1023");
            boolean shim = switch (col[2].strip()) {
                case "shim" -> true;
                case "daemon" -> false;
                default -> throw malformed(sourceName, lineNo, line, "decide must be 'shim' or 'daemon', not '"
                        + col[2] + "'");
            };
            boolean full = switch (col[3].strip()) {
                case "full" -> true;
                case "partial" -> false;
                default -> throw malformed(sourceName, lineNo, line, "support must be 'full' or 'partial', not '"
                        + col[3] + "'");
            };
            String what = col[4].strip();
            if (what.isEmpty())
                throw malformed(sourceName, lineNo, line, "the 'what' column is empty: say what the runtime does");
            if (nrs.containsKey(nr))
                throw malformed(sourceName, lineNo, line, "syscall number " + nr + " is already listed as "
                        + nrs.get(nr));
            if (names.containsKey(name))
                throw malformed(sourceName, lineNo, line, name + " is already listed with number " + names.get(name));
            nrs.put(nr, name);
            names.put(name, nr);
            entries.add(new Entry(name, nr, shim, full, what));
        }
        return new SyscallTable(entries);
    }

    private static IllegalArgumentException malformed(String source, int lineNo, String line, String why) {
        String shown = line.length() > 80 ? line.substring(0, 80) + "..." : line;
        return new IllegalArgumentException(source + " line " + lineNo + ": " + why + ": " + shown);
    }

    /** Every trapped syscall, in table order. */
    public List<Entry> entries() {
        return entries;
    }

    /** The entry for an x86_64 syscall number, or null if the filter does not trap it. */
    public Entry byNr(int nr) {
        return byNr.get(nr);
    }
}
