package ssi.launcher;

import java.util.ArrayList;
import java.util.List;

/**
 * A plain text table as ps prints it: a header row, columns separated by one space, numbers right
 * aligned, text left aligned, and the last column never padded (a long command line must not drag
 * trailing blanks). Not thread-safe; build, then {@link #render()}.
 */
final class TextTable {
    private final String[] headers;
    private final boolean[] right;
    private final List<String[]> rows = new ArrayList<>();

    /** @param right per column: right-align it (numbers) */
    TextTable(String[] headers, boolean[] right) {
        if (headers.length != right.length) throw new IllegalArgumentException("headers and alignments differ in length");
        this.headers = headers.clone();
        this.right = right.clone();
    }

    TextTable add(String... cells) {
        if (cells.length != headers.length) {
            throw new IllegalArgumentException("row has " + cells.length + " cells, table has " + headers.length + " columns");
        }
        rows.add(cells.clone());
        return this;
    }

    String render() {
        int n = headers.length;
        int[] width = new int[n];
        for (int i = 0; i < n; i++) width[i] = headers[i].length();
        for (String[] r : rows) {
            for (int i = 0; i < n; i++) width[i] = Math.max(width[i], r[i].length());
        }
        StringBuilder sb = new StringBuilder();
        line(sb, headers, width);
        for (String[] r : rows) line(sb, r, width);
        return sb.toString();
    }

    private void line(StringBuilder sb, String[] cells, int[] width) {
        int start = sb.length();
        for (int i = 0; i < cells.length; i++) {
            if (i > 0) sb.append(' ');
            boolean last = i == cells.length - 1;
            int pad = width[i] - cells[i].length();
            if (right[i]) sb.repeat(' ', pad);
            sb.append(cells[i]);
            if (!right[i] && !last) sb.repeat(' ', pad);
        }
        // a left-aligned last column is unpadded already; strip what an empty cell leaves behind
        int end = sb.length();
        while (end > start && sb.charAt(end - 1) == ' ') end--;
        sb.setLength(end);
        sb.append('\n');
    }

    /** Bytes in the units free -h uses, one decimal below 10: 512B, 1.5K, 7.8G, 12G. */
    static String human(long bytes) {
        if (bytes < 1024) return bytes + "B";
        String units = "KMGTPE";
        double v = bytes;
        int u = -1;
        // 1023.96K would print as "1024.0K"; move such values up one unit
        while (v >= 1023.95 && u < units.length() - 1) {
            v /= 1024;
            u++;
        }
        String num = v < 9.95 ? String.format("%.1f", v) : String.format("%.0f", v);
        return num + units.charAt(u);
    }
}
